/* ---- a backend shared by a store and its streams ---- */

typedef struct cas__be {
    cas_backend b;
    cas_allocator alloc;
    int refs;
    cas__mutex mu;
} cas__be;

static void cas__be_unref(cas__be *be) {
    int left;
    cas_allocator a;
    if (!be) return;
    cas__mu_lock(&be->mu);
    left = --be->refs;
    cas__mu_unlock(&be->mu);
    if (left) return;
    if (be->b.destroy) be->b.destroy(be->b.user);
    cas__mu_destroy(&be->mu);
    a = be->alloc;
    cas__free(&a, be);
}

static cas__be *cas__be_ref(cas__be *be) {
    cas__mu_lock(&be->mu);
    be->refs++;
    cas__mu_unlock(&be->mu);
    return be;
}

/* Reads a whole object (max bytes at most, 0 = no limit) into a buffer from a. */
static int cas__slurp(const cas_backend *b, void *obj, uint64_t size_hint, const cas_allocator *a, size_t max,
                      unsigned char **out, size_t *len, char *msg, size_t msgcap) {
    size_t cap, n = 0;
    unsigned char *buf;
    *out = NULL, *len = 0;
    if ((max && size_hint > max) || size_hint >= (uint64_t)((size_t)-1) / 2) {
        cas__fmt(msg, msgcap, "over %lu bytes", (unsigned long)max);
        return CAS_E_LIMIT;
    }
    cap = (size_t)size_hint + 1; /* +1 sees the end without a second allocation */
    if (!(buf = (unsigned char *)cas__alloc(a, cap))) {
        cas__fmt(msg, msgcap, "%s", strerror(ENOMEM));
        return CAS_E_NOMEM;
    }
    for (;;) {
        size_t got = 0;
        int rc;
        if (n == cap) { /* larger than it said (a file that grew) */
            size_t nc = cap * 2;
            unsigned char *nb;
            if ((max && cap > max) || !(nb = (unsigned char *)cas__alloc(a, nc))) {
                cas__free(a, buf);
                cas__fmt(msg, msgcap, "%s", max && cap > max ? "over the limit" : strerror(ENOMEM));
                return max && cap > max ? CAS_E_LIMIT : CAS_E_NOMEM;
            }
            memcpy(nb, buf, n);
            cas__free(a, buf);
            buf = nb, cap = nc;
        }
        if ((rc = b->read(b->user, obj, buf + n, CAS__MIN(cap - n, CAS__CHUNK_MAX), &got, msg, msgcap)) < 0) {
            cas__free(a, buf);
            return rc;
        }
        if (!got) break;
        n += got;
    }
    if (max && n > max) {
        cas__free(a, buf);
        cas__fmt(msg, msgcap, "over %lu bytes", (unsigned long)max);
        return CAS_E_LIMIT;
    }
    *out = buf, *len = n;
    return CAS_OK;
}

/* ---- store lifetime and pools ---- */

#define CAS__PARAM_IDS 48               /* every id in the bounds tables is below */
#define CAS__SP(s, id) ((s)->param[id]) /* a store setting */

struct cas_store {
    cas_allocator alloc;
    cas__be *be;
    char *root;
    int64_t param[CAS__PARAM_IDS]; /* the table's parameters by id, as set or by default */
    uint64_t param_set;            /* bit id: set by the caller, so handed on to writers and readers */
    cas__mutex mu;
    void *wpool[CAS__POOL]; /* cas_writer *: a codec's tables and buffers, kept for the next blob */
    void *rpool[CAS__POOL]; /* cas_reader * */
    int nw, nr;
};

/* ---- backends by scheme ---- */

#define CAS__SCHEMES 16
static struct {
    char scheme[16];
    cas_backend_opener open;
} cas__schemes[CAS__SCHEMES];
#ifndef CAS_NO_THREADS
static pthread_mutex_t cas__schemes_mu = PTHREAD_MUTEX_INITIALIZER;
#define CAS__SCHEMES_LOCK() pthread_mutex_lock(&cas__schemes_mu)
#define CAS__SCHEMES_UNLOCK() pthread_mutex_unlock(&cas__schemes_mu)
#else
#define CAS__SCHEMES_LOCK() (void)0
#define CAS__SCHEMES_UNLOCK() (void)0
#endif

#ifdef CAS_BACKEND_MODULE
/* The registrar of a module compiled in this or another translation unit: it adds
 * its schemes through the function it is given. */
CASDEF int CAS_BACKEND_MODULE(int (*add)(const char *scheme, cas_backend_opener open));
#endif

static int cas__scheme_ok(const char *s, size_t n) {
    size_t i;
    if (!n || n > 15) return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '+' || s[i] == '-' || s[i] == '.'))
            return 0;
    return 1;
}

/* Sets scheme's opener (replace = 0: only if it has none). */
static int cas__scheme_set(const char *scheme, cas_backend_opener open, int replace) {
    int i, free_slot = -1, rc = CAS_OK;
    if (!scheme || !cas__scheme_ok(scheme, strlen(scheme))) return CAS_E_ARG;
    CAS__SCHEMES_LOCK();
    for (i = 0; i < CAS__SCHEMES; i++) {
        if (!strcmp(cas__schemes[i].scheme, scheme)) break;
        if (free_slot < 0 && !cas__schemes[i].scheme[0]) free_slot = i;
    }
    if (i < CAS__SCHEMES && !replace) {
        CAS__SCHEMES_UNLOCK();
        return CAS_OK;
    }
    if (i == CAS__SCHEMES) i = free_slot;
    if (i < 0) rc = open ? CAS_E_LIMIT : CAS_OK;
    else if (open) memcpy(cas__schemes[i].scheme, scheme, strlen(scheme) + 1), cas__schemes[i].open = open;
    else cas__schemes[i].scheme[0] = 0, cas__schemes[i].open = NULL;
    CAS__SCHEMES_UNLOCK();
    return rc;
}

/* A module's schemes, added once, before any lookup and before any of the user's
 * registrations (which then replace them): every caller waits for it to be done. */
/* The thread running the modules' registrar (a registrar that calls
 * cas_backend_register itself must not wait on its own initialisation). */
#ifndef CAS_NO_THREADS
static pthread_t cas__modules_thread;
static int cas__modules_running;
#define CAS__IN_MODULES() (cas__modules_running && pthread_equal(cas__modules_thread, pthread_self()))
#else
static int cas__modules_running;
#define CAS__IN_MODULES() cas__modules_running
#endif

#ifdef CAS_BACKEND_MODULE
static int cas__scheme_add(const char *scheme, cas_backend_opener open) { return cas__scheme_set(scheme, open, 0); }
#endif
static void cas__modules(void) {
    CAS__SCHEMES_LOCK();
#ifndef CAS_NO_THREADS
    cas__modules_thread = pthread_self();
#endif
    cas__modules_running = 1;
    CAS__SCHEMES_UNLOCK();
#ifdef CAS_BACKEND_MODULE
    CAS_BACKEND_MODULE(cas__scheme_add);
#endif
    CAS__SCHEMES_LOCK();
    cas__modules_running = 0;
    CAS__SCHEMES_UNLOCK();
}
#ifndef CAS_NO_THREADS
static pthread_once_t cas__modules_once = PTHREAD_ONCE_INIT;
#define CAS__MODULES() pthread_once(&cas__modules_once, cas__modules)
#else
static int cas__modules_done;
#define CAS__MODULES() (cas__modules_done ? (void)0 : (cas__modules_done = 1, cas__modules()))
#endif

CASDEF int cas_backend_register(const char *scheme, cas_backend_opener open) {
    int inside;
    CAS__SCHEMES_LOCK();
    inside = CAS__IN_MODULES();
    CAS__SCHEMES_UNLOCK();
    if (inside) return cas__scheme_set(scheme, open, 0); /* a module's own, from its registrar */
    CAS__MODULES();
    return cas__scheme_set(scheme, open, 1);
}

/* The opener for url's scheme; NULL with the reason in err when none is registered. */
static cas_backend_opener cas__opener(const char *url, char *err, size_t errcap) {
    const char *sep = strstr(url, "://");
    cas_backend_opener open = NULL;
    size_t n = (size_t)(sep - url);
    int i;
    CAS__MODULES();
    CAS__SCHEMES_LOCK();
    for (i = 0; i < CAS__SCHEMES && cas__scheme_ok(url, n); i++)
        if (strlen(cas__schemes[i].scheme) == n && !memcmp(cas__schemes[i].scheme, url, n)) open = cas__schemes[i].open;
    CAS__SCHEMES_UNLOCK();
    if (!open)
        cas__serr(err, errcap, CAS_E_UNSUPPORTED,
                  "'%.300s': no backend is registered for '%.*s://' roots in this build of cas.h "
                  "(cas_backend_register)",
                  url, (int)(n < 16 ? n : 16), url);
    return open;
}

CASDEF int cas_store_open(cas_store **out, const char *root, const cas_allocator *alloc, char *err, size_t errcap) {
    cas_backend b;
    char dflt[4096];
    int rc;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!root || !root[0]) {
        if ((rc = cas_store_default_root(dflt, sizeof dflt, err, errcap)) < 0) return rc;
        root = dflt;
    }
    memset(&b, 0, sizeof b);
    if (strstr(root, "://")) {
        cas_backend_opener open = cas__opener(root, err, errcap);
        if (!open) return CAS_E_UNSUPPORTED;
        rc = open(&b, root, alloc, err, errcap);
    } else {
        rc = cas_backend_local(&b, root, alloc, err, errcap);
    }
    if (rc < 0) return rc;
    return cas_store_open_backend(out, &b, alloc, err, errcap);
}

CASDEF int cas_store_open_backend(cas_store **out, const cas_backend *b, const cas_allocator *alloc, char *err,
                                  size_t errcap) {
    cas_store *s = NULL;
    cas__be *be = NULL;
    size_t l;
    if (!out) {
        if (b && b->destroy) b->destroy(b->user);
        return CAS_E_ARG;
    }
    *out = NULL;
    if (!b || !b->open || !b->read || !b->close || !b->create || !b->write || !b->commit || !b->abort || !b->exists ||
        !b->list || !b->remove) {
        if (b && b->destroy) b->destroy(b->user);
        return cas__serr(err, errcap, CAS_E_ARG, "a backend without one of its required callbacks");
    }
    l = strlen(b->root ? b->root : "");
    if ((be = (cas__be *)cas__calloc(alloc, sizeof *be)) != NULL && cas__mu_init(&be->mu) < 0) {
        cas__free(alloc, be);
        be = NULL;
    }
    if (be) s = (cas_store *)cas__calloc(alloc, sizeof *s);
    if (s) s->root = (char *)cas__alloc(alloc, l + 1);
    if (!s || !s->root || cas__mu_init(&s->mu) < 0) {
        if (s) cas__free(alloc, s->root);
        cas__free(alloc, s);
        if (be) cas__mu_destroy(&be->mu), cas__free(alloc, be);
        if (b->destroy) b->destroy(b->user);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    be->b = *b, be->refs = 1;
    cas__copy_allocator(&be->alloc, alloc);
    cas__copy_allocator(&s->alloc, alloc);
    memcpy(s->root, b->root ? b->root : "", l + 1);
    be->b.root = s->root;
    s->be = be;
    s->param[CAS_PARAM_FORMAT] = CAS_FORMAT_V1, s->param[CAS_PARAM_HASH] = CAS_HASH_DEFAULT;
    s->param[CAS_PARAM_VERIFY] = (b->flags & CAS_BACKEND_REMOTE) != 0;
    *out = s;
    return CAS_OK;
}

static void cas__pool_flush(cas_store *s) {
    while (s->nw) cas_writer_free((cas_writer *)s->wpool[--s->nw]);
    while (s->nr) cas_reader_free((cas_reader *)s->rpool[--s->nr]);
}

CASDEF void cas_store_close(cas_store *s) {
    cas_allocator a;
    if (!s) return;
    cas__pool_flush(s);
    cas__mu_destroy(&s->mu);
    a = s->alloc;
    cas__free(&a, s->root); /* the backend's root pointer goes with it: only messages used it */
    s->be->b.root = "";
    cas__be_unref(s->be);
    cas__free(&a, s);
}

CASDEF const char *cas_store_root(const cas_store *s) { return s ? s->root : ""; }

/* The store's own rows; the rest are the writer's, reader's and codecs'. */
static const cas__param_row cas__store_params[] = {
    CAS__PARAM(CAS_PARAM_FORMAT, CAS__FOR_STORE, 1, INT_MAX, cas__format_writable),
    CAS__PARAM(CAS_PARAM_VERIFY, CAS__FOR_STORE, INT64_MIN, INT64_MAX, NULL), /* a flag: 0 or not */
};

static const cas__param_row *cas__store_param_row(int id) {
    const cas__param_row *r = CAS__PARAM_FIND(cas__store_params, id);
    return r ? r : cas__param_row_of(id);
}

CASDEF int cas_store_set_param(cas_store *s, int param, int64_t v) {
    const cas__param_row *row = cas__store_param_row(param);
    int rc;
    if (!s) return CAS_E_ARG;
    if (!row || !(row->who & CAS__FOR_STORE) || param >= CAS__PARAM_IDS) {
        /* the backend's own (CAS_PARAM_FSYNC, object-store settings) */
        if (!s->be->b.set_param) return param == CAS_PARAM_FSYNC ? CAS_OK : CAS_E_ARG;
        rc = s->be->b.set_param(s->be->b.user, param, v);
        if (rc == CAS_E_ARG && param == CAS_PARAM_FSYNC) rc = CAS_OK; /* nothing to sync there */
        return rc;
    }
    if ((rc = cas__param_check(row, CAS__FOR_STORE, v)) < 0) return rc;
    cas__mu_lock(&s->mu);
    s->param[param] = v, s->param_set |= (uint64_t)1 << param;
    cas__pool_flush(s); /* pooled objects carry the old settings */
    cas__mu_unlock(&s->mu);
    return CAS_OK;
}

/* Hands the store's settings that `who` takes to a new writer or reader. */
static int cas__apply_params(const cas_store *s, unsigned who, cas_writer *w, cas_reader *r) {
    int id, rc = CAS_OK;
    for (id = 1; id < CAS__PARAM_IDS && rc >= 0; id++)
        if ((s->param_set >> id & 1) && (cas__store_param_row(id)->who & who))
            rc = w ? cas_writer_set_param(w, id, s->param[id]) : cas_reader_set_param(r, id, s->param[id]);
    return rc;
}

/* A pooled writer or reader, or NULL when the pool is empty. */
static void *cas__store_pool_take(cas_store *s, void **pool, int *n) {
    void *x = NULL;
    cas__mu_lock(&s->mu);
    if (*n) x = pool[--*n];
    cas__mu_unlock(&s->mu);
    return x;
}

/* Keeps x for the next blob: NULL, or x when the pool is full (the caller frees it). */
static void *cas__store_pool_keep(cas_store *s, void **pool, int *n, void *x) {
    cas__mu_lock(&s->mu);
    if (*n < CAS__POOL) pool[(*n)++] = x, x = NULL;
    cas__mu_unlock(&s->mu);
    return x;
}

static int cas__get_writer(cas_store *s, int format, cas_writer **out) {
    cas_writer *w = (cas_writer *)cas__store_pool_take(s, s->wpool, &s->nw);
    int r;
    if (!w) {
        if ((r = cas_writer_create(&w, format, &s->alloc)) < 0) return r;
        if ((r = cas__apply_params(s, CAS__FOR_WRITER, w, NULL)) < 0) {
            cas_writer_free(w);
            return r;
        }
    }
    if ((r = cas_writer_reset(w, format)) < 0) {
        cas_writer_free(w);
        return r;
    }
    *out = w;
    return CAS_OK;
}

static void cas__put_writer(cas_store *s, cas_writer *w) {
    cas_writer_free((cas_writer *)cas__store_pool_keep(s, s->wpool, &s->nw, w));
}

static int cas__get_reader(cas_store *s, cas_reader **out) {
    cas_reader *r = (cas_reader *)cas__store_pool_take(s, s->rpool, &s->nr);
    int rc;
    if (!r) {
        if ((rc = cas_reader_create(&r, &s->alloc)) < 0) return rc;
        if ((rc = cas__apply_params(s, CAS__FOR_READER, NULL, r)) < 0) {
            cas_reader_free(r);
            return rc;
        }
    }
    cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, -1);
    *out = r;
    return CAS_OK;
}

static void cas__put_reader(cas_store *s, cas_reader *r) {
    cas_reader_free((cas_reader *)cas__store_pool_keep(s, s->rpool, &s->nr, r));
}

CASDEF void cas_store_free_buffer(cas_store *s, void *p) {
    if (s) cas__free(&s->alloc, p);
}
