/* The storage-backend seam, with a backend of a user's own: objects in memory,
 * with a fetch (batch gets with requests "in flight") that can be switched off.
 * Every store call runs over it as over a local directory or S3: puts in each
 * format, gets, batch, streams (also after the store is closed), migrate with
 * its metadata-only repair, listings, tasks, delete, and the store's wording
 * of a backend's failure. */

typedef struct mem_obj {
    char name[200];
    unsigned char *data;
    size_t len;
    char meta[128];
    int has_meta;
} mem_obj;

typedef struct mem_be {
    mem_obj objs[256];
    int n, destroyed, fail_write, fetches, opens;
    pthread_mutex_t mu;
} mem_be;

typedef struct mem_rd {
    unsigned char *data;
    size_t len, pos;
    char meta[128];
} mem_rd;

typedef struct mem_wr {
    char name[200], meta[128];
    size_t ml;
    unsigned char *buf;
    size_t len;
} mem_wr;

static mem_obj *mem_find(mem_be *m, const char *name) {
    int i;
    for (i = 0; i < m->n; i++)
        if (!strcmp(m->objs[i].name, name)) return &m->objs[i];
    return NULL;
}

static int mem_open(void *u, const char *name, unsigned flags, void **obj, cas_object_info *info, char *msg,
                    size_t cap) {
    mem_be *m = (mem_be *)u;
    mem_obj *o;
    mem_rd *r;
    (void)flags;
    pthread_mutex_lock(&m->mu);
    m->opens++;
    if (!(o = mem_find(m, name))) {
        pthread_mutex_unlock(&m->mu);
        snprintf(msg, cap, "no such object");
        return CAS_E_NOTFOUND;
    }
    r = (mem_rd *)calloc(1, sizeof *r);
    r->data = (unsigned char *)malloc(o->len + 1);
    memcpy(r->data, o->data, o->len); /* a snapshot: one version, as the seam asks */
    r->len = o->len;
    memcpy(r->meta, o->meta, sizeof r->meta);
    memset(info, 0, sizeof *info);
    info->size = o->len;
    info->meta = o->has_meta ? r->meta : NULL;
    info->meta_len = strlen(r->meta);
    pthread_mutex_unlock(&m->mu);
    *obj = r;
    return CAS_OK;
}

static int mem_read(void *u, void *obj, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    mem_rd *r = (mem_rd *)obj;
    size_t k = r->len - r->pos < cap ? r->len - r->pos : cap;
    (void)u, (void)msg, (void)mcap;
    if (k > 1000) k = 1000; /* small pieces: the store must loop */
    memcpy(buf, r->data + r->pos, k);
    r->pos += k;
    *got = k;
    return CAS_OK;
}

static void mem_close(void *u, void *obj) {
    mem_rd *r = (mem_rd *)obj;
    (void)u;
    if (r) free(r->data), free(r);
}

static int mem_create(void *u, const char *dir, const char *name, const char *meta, size_t ml, void **w, char *msg,
                      size_t cap) {
    mem_wr *x = (mem_wr *)calloc(1, sizeof *x);
    (void)u, (void)dir, (void)msg, (void)cap;
    if (name) snprintf(x->name, sizeof x->name, "%s", name);
    memcpy(x->meta, meta, ml);
    x->ml = ml;
    *w = x;
    return CAS_OK;
}

static int mem_write(void *u, void *w, const void *p, size_t n, char *msg, size_t cap) {
    mem_be *m = (mem_be *)u;
    mem_wr *x = (mem_wr *)w;
    if (m->fail_write) {
        snprintf(msg, cap, "the disk of the test backend is full");
        return CAS_E_IO;
    }
    x->buf = (unsigned char *)realloc(x->buf, x->len + n + 1);
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    return CAS_OK;
}

static int mem_commit(void *u, void *w, const char *name, int mode, int *stored, char *msg, size_t cap) {
    mem_be *m = (mem_be *)u;
    mem_wr *x = (mem_wr *)w;
    mem_obj *o;
    (void)msg, (void)cap;
    *stored = 0;
    pthread_mutex_lock(&m->mu);
    o = mem_find(m, name);
    if (mode == CAS_COMMIT_META) {
        if (o) memcpy(o->meta, x->meta, x->ml), o->meta[x->ml] = 0, o->has_meta = 1, *stored = 1;
    } else if (!(o && mode == CAS_COMMIT_CREATE)) {
        if (!o) o = &m->objs[m->n++], snprintf(o->name, sizeof o->name, "%s", name);
        free(o->data);
        o->data = x->buf, o->len = x->len, x->buf = NULL;
        memcpy(o->meta, x->meta, x->ml), o->meta[x->ml] = 0, o->has_meta = 1;
        *stored = 1;
    }
    pthread_mutex_unlock(&m->mu);
    return CAS_OK;
}

static void mem_abort(void *u, void *w) {
    mem_wr *x = (mem_wr *)w;
    (void)u;
    if (x) free(x->buf), free(x);
}

static int mem_exists(void *u, const char *name, char *msg, size_t cap) {
    mem_be *m = (mem_be *)u;
    int r;
    (void)msg, (void)cap;
    pthread_mutex_lock(&m->mu);
    r = mem_find(m, name) != NULL;
    pthread_mutex_unlock(&m->mu);
    return r;
}

/* Folders are implied by names, as in an object store. */
static int mem_list(void *u, const char *dir, int recursive, cas_list_fn fn, void *ctx, char *msg, size_t cap) {
    mem_be *m = (mem_be *)u;
    char seen[256][200];
    int i, k, ns = 0, found = 0;
    size_t dl = strlen(dir);
    for (i = 0; i < m->n; i++) {
        const char *nm = m->objs[i].name, *rest, *slash;
        if (dl && (strncmp(nm, dir, dl) || nm[dl] != '/')) continue;
        rest = nm + (dl ? dl + 1 : 0);
        found = 1;
        slash = strchr(rest, '/');
        if (!slash || recursive) {
            if (fn(ctx, rest, CAS_ENTRY_FILE, m->objs[i].len, 0) > 0) return CAS_OK;
            continue;
        }
        for (k = 0; k < ns && strncmp(seen[k], rest, (size_t)(slash - rest)); k++) {
        }
        if (k < ns) continue;
        snprintf(seen[ns++], 200, "%.*s", (int)(slash - rest), rest);
        if (fn(ctx, seen[ns - 1], CAS_ENTRY_DIR, 0, 0) > 0) return CAS_OK;
    }
    if (!found) snprintf(msg, cap, "nothing there");
    return found ? CAS_OK : CAS_E_NOTFOUND;
}

static int mem_remove(void *u, const char *name, char *msg, size_t cap) {
    mem_be *m = (mem_be *)u;
    mem_obj *o = mem_find(m, name);
    (void)msg, (void)cap;
    if (!o) return 0;
    free(o->data);
    *o = m->objs[--m->n];
    return 1;
}

static int mem_fetch(void *u, size_t count, const char *const *names, const cas_allocator *a, cas_fetch_fn fn,
                     void *ctx, char *msg, size_t cap) {
    mem_be *m = (mem_be *)u;
    size_t i;
    (void)msg, (void)cap;
    m->fetches++;
    for (i = count; i-- > 0;) { /* out of order, as answers arrive */
        mem_obj *o = mem_find(m, names[i]);
        void *data;
        if (!o) {
            fn(ctx, i, CAS_E_NOTFOUND, "no such object", NULL, 0, NULL, 0);
            continue;
        }
        data = a && a->alloc ? a->alloc(a->user, o->len + 1) : malloc(o->len + 1);
        memcpy(data, o->data, o->len);
        fn(ctx, i, CAS_OK, NULL, o->has_meta ? o->meta : NULL, strlen(o->meta), data, o->len);
    }
    return CAS_OK;
}

static void mem_destroy(void *u) {
    mem_be *m = (mem_be *)u;
    int i;
    for (i = 0; i < m->n; i++) free(m->objs[i].data);
    m->n = 0;
    m->destroyed++;
    pthread_mutex_destroy(&m->mu);
}

static cas_store *mem_store(mem_be *m, int with_fetch) {
    cas_backend b;
    cas_store *s = NULL;
    char err[256];
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    memset(&b, 0, sizeof b);
    b.user = m, b.root = "mem://test";
    b.open = mem_open, b.read = mem_read, b.close = mem_close, b.create = mem_create, b.write = mem_write;
    b.commit = mem_commit, b.abort = mem_abort, b.exists = mem_exists, b.list = mem_list, b.remove = mem_remove;
    b.fetch = with_fetch ? mem_fetch : NULL;
    b.destroy = mem_destroy;
    if (cas_store_open_backend(&s, &b, NULL, err, sizeof err) != CAS_OK) return NULL;
    return s;
}

static void mem_put_raw(mem_be *m, const char *name, const void *p, size_t n, const char *meta) {
    mem_obj *o = &m->objs[m->n++];
    snprintf(o->name, sizeof o->name, "%s", name);
    o->data = (unsigned char *)malloc(n + 1);
    memcpy(o->data, p, n);
    o->len = n;
    o->has_meta = meta != NULL;
    snprintf(o->meta, sizeof o->meta, "%s", meta ? meta : "");
}

static void test_backend_user_store(void) {
    static mem_be m;
    static unsigned char data[200000];
    char key[CAS_KEY_BUF], keys[3 * CAS_KEY_BUF], err[600], *list = NULL;
    cas_store *s;
    void *out;
    size_t len, n;
    int stored, f, fmt, changed, with_fetch;
    t_fill(data, sizeof data, 2);
    for (with_fetch = 0; with_fetch < 2; with_fetch++) {
        t_setnote("fetch %d", with_fetch);
        CHECK((s = mem_store(&m, with_fetch)) != NULL);
        CHECK_STR(cas_store_root(s), "mem://test");
        for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_RAW; f++) {
            data[0] = (unsigned char)f;
            CHECK_EQ_INT(cas_store_put(s, "MemFlow", data, sizeof data, f, key, &stored, err, sizeof err), CAS_OK);
            CHECK(stored == 1);
            CHECK_EQ_INT(cas_store_put(s, "MemFlow", data, sizeof data, f, key, &stored, err, sizeof err), CAS_OK);
            CHECK(stored == 0);
            CHECK_EQ_INT(cas_store_exists(s, "MemFlow", key), 1);
            CHECK_EQ_INT(cas_store_get(s, "MemFlow", key, &out, &len, err, sizeof err), CAS_OK);
            CHECK(len == sizeof data && !memcmp(out, data, len));
            cas_store_free_buffer(s, out);
            CHECK_EQ_INT(cas_store_stat(s, "MemFlow", key, &fmt, NULL, err, sizeof err), CAS_OK);
            CHECK_EQ_INT(fmt, f);
            CHECK_EQ_INT(cas_store_verify(s, "MemFlow", key, NULL, err, sizeof err), CAS_OK);
        }
        /* batch: through fetch (out of order) or through threads; a missing key fails alone */
        {
            const void *d[3];
            size_t sz[3] = {10, 5000, 0};
            const char *gk[4];
            void *outs[4];
            size_t lens[4];
            int st[4], i;
            d[0] = data, d[1] = data + 10, d[2] = data;
            CHECK_EQ_INT(cas_store_put_batch(s, "MemFlow", 3, d, sz, CAS_FORMAT_V2, keys, st, 0, err, sizeof err),
                         CAS_OK);
            for (i = 0; i < 3; i++) gk[i] = keys + i * CAS_KEY_BUF;
            gk[3] = "0000000000000000000000000000000000000000";
            CHECK_EQ_INT(cas_store_get_batch(s, "MemFlow", 4, gk, outs, lens, st, 2, err, sizeof err), CAS_E_NOTFOUND);
            CHECK(strstr(err, "No blob 'MemFlow/data/00/0000000000000000000000000000000000000000' in 'mem://test'") ==
                  err);
            for (i = 0; i < 3; i++) {
                CHECK_EQ_INT(st[i], CAS_OK);
                CHECK(lens[i] == sz[i] && !memcmp(outs[i], d[i], sz[i]));
                cas_store_free_buffer(s, outs[i]);
            }
            CHECK_EQ_INT(st[3], CAS_E_NOTFOUND);
            CHECK(outs[3] == NULL);
            CHECK_EQ_INT(m.fetches, with_fetch);
        }
        /* listings from names alone */
        CHECK_EQ_INT(cas_store_flows(s, &list, &n, err, sizeof err), CAS_OK);
        CHECK(n == 1 && !strcmp(list, "MemFlow"));
        cas_store_free_buffer(s, list);
        CHECK_EQ_INT(cas_store_keys(s, "MemFlow", &list, &n, err, sizeof err), CAS_OK);
        CHECK_EQ_INT(n, 6); /* three formats of 200 KB (differing first byte) + the 3 batch blobs */
        cas_store_free_buffer(s, list);
        /* migrate: a rewrite, then a metadata-only repair of bytes ahead of their metadata */
        CHECK_EQ_INT(cas_store_migrate(s, "MemFlow", key, CAS_FORMAT_V2, &changed, err, sizeof err), CAS_OK);
        CHECK(changed == 0); /* raw: left alone */
        data[0] = CAS_FORMAT_V1;
        cas_hash(CAS_HASH_SHA1, data, sizeof data, key);
        CHECK_EQ_INT(cas_store_migrate(s, "MemFlow", key, CAS_FORMAT_V2, &changed, err, sizeof err), CAS_OK);
        CHECK(changed == 1);
        {
            char name[200];
            mem_obj *o;
            cas_store_blob_name("MemFlow", key, name, sizeof name);
            o = mem_find(&m, name);
            CHECK(o && !strcmp(o->meta, "{\"cas_raw\": false, \"cas_version\": 2}"));
            snprintf(o->meta, sizeof o->meta, "{\"cas_raw\": false, \"cas_version\": 1}");
            CHECK(cas_store_get(s, "MemFlow", key, &out, &len, err, sizeof err) == CAS_E_MISMATCH);
            CHECK_EQ_INT(cas_store_migrate(s, "MemFlow", key, CAS_FORMAT_V2, &changed, err, sizeof err), CAS_OK);
            CHECK(changed == 1 && !strcmp(o->meta, "{\"cas_raw\": false, \"cas_version\": 2}"));
        }
        CHECK_EQ_INT(cas_store_verify(s, "MemFlow", key, NULL, err, sizeof err), CAS_OK);
        /* the backend's failure, in the store's words */
        m.fail_write = 1;
        CHECK_EQ_INT(cas_store_put(s, "MemFlow", "new", 3, 0, key, &stored, err, sizeof err), CAS_E_IO);
        CHECK_STR(err, "Could not store artifact 'MemFlow/data/c2/c2a6b03f190dfb2b4aa91f8af8d477a9bc3401dc': "
                       "the disk of the test backend is full");
        m.fail_write = 0;
        CHECK_EQ_INT(cas_store_delete(s, "MemFlow", keys, err, sizeof err), 1);
        CHECK_EQ_INT(cas_store_delete(s, "MemFlow", keys, err, sizeof err), 0);
        CHECK_EQ_INT(cas_store_exists(s, "MemFlow", keys), 0);
        cas_store_close(s);
        CHECK_EQ_INT(m.destroyed, 1);
    }
    t_note[0] = 0;
}

static void test_backend_tasks_and_streams(void) {
    static mem_be m;
    static unsigned char data[300000];
    char key[CAS_KEY_BUF], err[600], json[600];
    cas_store *s;
    cas_task *t;
    cas_stream *st;
    unsigned char buf[7000];
    size_t got, total = 0;
    int stored;
    const char *name;
    t_fill(data, sizeof data, 3);
    CHECK((s = mem_store(&m, 0)) != NULL);
    CHECK_EQ_INT(cas_store_put(s, "F", data, sizeof data, CAS_FORMAT_V1, key, &stored, err, sizeof err), CAS_OK);
    /* a task as Metaflow writes it, attempt 1 finished */
    snprintf(json, sizeof json,
             "{\"objects\": {\"model\": \"%s\"}, \"info\": {\"model\": {\"size\": %lu, "
             "\"type\": \"<class 'bytes'>\", \"encoding\": \"pickle-v4\"}}}",
             key, (unsigned long)sizeof data);
    mem_put_raw(&m, "F/7/train/3/0.attempt.json", "{}", 2, NULL);
    mem_put_raw(&m, "F/7/train/3/0.DONE.lock", "", 0, NULL);
    mem_put_raw(&m, "F/7/train/3/1.attempt.json", "{}", 2, NULL);
    mem_put_raw(&m, "F/7/train/3/1.DONE.lock", "", 0, NULL);
    mem_put_raw(&m, "F/7/train/3/1.data.json", json, strlen(json), NULL);
    CHECK_EQ_INT(cas_task_open(s, "F/7/train/3", &t, err, sizeof err), CAS_OK);
    CHECK_EQ_INT(cas_task_attempt(t), 1);
    CHECK(cas_task_artifact(t, 0, &name, NULL, NULL, NULL, NULL) == CAS_OK && !strcmp(name, "model"));
    cas_task_close(t);
    CHECK_EQ_INT(cas_task_open(s, "F/8/train/3", &t, err, sizeof err), CAS_E_NOTFOUND);
    CHECK_STR(err, "Cannot open task 'F/8/train/3': no such task in this datastore");
    /* a stream outlives its store: the backend goes when the stream does */
    CHECK_EQ_INT(cas_stream_open(s, "F", key, &st, err, sizeof err), CAS_OK);
    cas_store_close(s);
    CHECK_EQ_INT(m.destroyed, 0);
    while (cas_stream_read(st, buf, sizeof buf, &got) == CAS_OK && got) total += got;
    CHECK_EQ_INT(total, sizeof data);
    cas_stream_close(st);
    CHECK_EQ_INT(m.destroyed, 1);
}

/* A backend without its required callbacks is refused, and still destroyed. */
static void test_backend_contract(void) {
    static mem_be m;
    cas_backend b;
    cas_store *s = NULL;
    char err[200];
    memset(&m, 0, sizeof m);
    pthread_mutex_init(&m.mu, NULL);
    memset(&b, 0, sizeof b);
    b.user = &m, b.open = mem_open, b.destroy = mem_destroy;
    CHECK_EQ_INT(cas_store_open_backend(&s, &b, NULL, err, sizeof err), CAS_E_ARG);
    CHECK(s == NULL && m.destroyed == 1);
    CHECK(strstr(err, "required callbacks") != NULL);
#ifndef CAS_CLOUD /* this runner builds cas.h alone: a URL root says what is missing */
    CHECK_EQ_INT(cas_store_open(&s, "s3://bucket/x", NULL, err, sizeof err), CAS_E_UNSUPPORTED);
    CHECK(strstr(err, "no backend is registered for 's3://' roots") != NULL);
#endif
}

/* A user's backend under its own scheme: cas_store_open("mem://...") finds it by the
 * registry, as it finds s3:// and azure://; replaced, removed, refused names. */
static mem_be reg_mem;
static int reg_opens;

static int mem_opener(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    (void)alloc, (void)err, (void)errcap;
    reg_opens++;
    memset(out, 0, sizeof *out);
    pthread_mutex_init(&reg_mem.mu, NULL);
    reg_mem.destroyed = 0;
    out->user = &reg_mem, out->root = url;
    out->open = mem_open, out->read = mem_read, out->close = mem_close, out->create = mem_create;
    out->write = mem_write, out->commit = mem_commit, out->abort = mem_abort, out->exists = mem_exists;
    out->list = mem_list, out->remove = mem_remove, out->destroy = mem_destroy;
    return CAS_OK;
}

static void test_backend_registry(void) {
    cas_store *s = NULL;
    char key[CAS_KEY_BUF], err[300];
    int stored;
    void *out;
    size_t len;
    CHECK_EQ_INT(cas_store_open(&s, "mem://shelf", NULL, err, sizeof err), CAS_E_UNSUPPORTED);
    CHECK(strstr(err, "no backend is registered for 'mem://' roots") != NULL);
    CHECK_EQ_INT(cas_backend_register("mem", mem_opener), CAS_OK);
    CHECK_EQ_INT(cas_store_open(&s, "mem://shelf", NULL, err, sizeof err), CAS_OK);
    CHECK(reg_opens == 1);
    CHECK_STR(cas_store_root(s), "mem://shelf");
    CHECK_EQ_INT(cas_store_put(s, "RegFlow", "hello", 5, CAS_FORMAT_V2, key, &stored, err, sizeof err), CAS_OK);
    CHECK_EQ_INT(cas_store_get(s, "RegFlow", key, &out, &len, err, sizeof err), CAS_OK);
    CHECK(len == 5 && !memcmp(out, "hello", 5));
    cas_store_free_buffer(s, out);
    cas_store_close(s);
    CHECK(reg_mem.destroyed == 1);
    CHECK_EQ_INT(cas_store_open(&s, "mem://shelf", NULL, err, sizeof err), CAS_OK); /* opened anew */
    CHECK(reg_opens == 2);
    cas_store_close(s);
    CHECK_EQ_INT(cas_backend_register("mem", NULL), CAS_OK); /* removed */
    CHECK_EQ_INT(cas_store_open(&s, "mem://shelf", NULL, err, sizeof err), CAS_E_UNSUPPORTED);
    CHECK_EQ_INT(cas_store_open(&s, "me/m://shelf", NULL, err, sizeof err), CAS_E_UNSUPPORTED);
    CHECK(!strpbrk(err, "\n"));
    CHECK_EQ_INT(cas_backend_register("", mem_opener), CAS_E_ARG);
    CHECK_EQ_INT(cas_backend_register("a/b", mem_opener), CAS_E_ARG);
    CHECK_EQ_INT(cas_backend_register("sixteen-bytes-xx", mem_opener), CAS_E_ARG);
    CHECK_EQ_INT(cas_backend_register(NULL, mem_opener), CAS_E_ARG);
}

static test_case backend_tests[] = {
    {"backend_registry", test_backend_registry},
    {"backend_user_store", test_backend_user_store},
    {"backend_tasks_and_streams", test_backend_tasks_and_streams},
    {"backend_contract", test_backend_contract},
};
