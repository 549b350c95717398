/* ---- the preview object -------------------------------------------------------- */

typedef struct cas__memo_slot {
    uint32_t key;
    cas__pv *v; /* NULL: empty */
} cas__memo_slot;

struct cas_preview {
    cas_allocator alloc;      /* every allocation but the text's: counted against max_memory */
    cas_allocator user_alloc; /* the caller's: the object itself and its text */
    int64_t max_output, max_items, max_depth, max_memo, max_read, max_ops, max_values, max_memory, json;
    uint64_t mem_now;
    int mem_over; /* an allocation was refused by max_memory (not by the system) */
    /* the byte source */
    cas_preview_read_fn read;
    void *user;
    unsigned char *win;
    size_t wpos, wlen;
    int eof;
    uint64_t off; /* decoded bytes consumed */
    /* the machine */
    cas__pv *live;
    size_t nlive;
    cas__pv **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    cas__memo_slot *memo;
    size_t memo_n, memo_cap;
    uint64_t memo_seed; /* the memo hash's key, new every run: the pickle cannot aim at its slots */
    int proto, stopped_early;
    uint64_t ops;
    cas__pv *result;
    cas__pv **work; /* the free worklist */
    size_t nwork, wcap;
    /* the outcome */
    int rc;
    char msg[CAS_MESSAGE_MAX]; /* it may carry a stream's message */
    char *out;
    size_t olen, ocap;
    int out_full;
    uint32_t next_id;
};

static int cas__pk_fail(cas_preview *p, int rc, const char *fmt, ...) {
    va_list ap;
    if (rc == CAS_E_NOMEM && p->mem_over) rc = CAS_E_LIMIT; /* the preview's own budget said no, not the system */
    if (p->rc != CAS_OK && p->rc != CAS_E_LIMIT) return rc; /* the first fault is the one told */
    if (rc == CAS_E_LIMIT && p->mem_over) {
        snprintf(p->msg, sizeof p->msg, "the preview would hold more than %lld bytes (CAS_PREVIEW_MAX_MEMORY)",
                 (long long)p->max_memory);
    } else {
        va_start(ap, fmt);
        vsnprintf(p->msg, sizeof p->msg, fmt, ap);
        va_end(ap);
    }
    p->rc = rc;
    return rc;
}

/* The preview's allocator: the caller's, each block counted (a size word in front),
 * refused past CAS_PREVIEW_MAX_MEMORY. */
#define CAS__PK_HDR 16 /* keeps the caller's alignment */
static void *cas__pk_mem_alloc(void *user, size_t n) {
    cas_preview *p = (cas_preview *)user;
    unsigned char *b;
    if (n > (uint64_t)p->max_memory - CAS__MIN(p->mem_now, (uint64_t)p->max_memory) || n > (size_t)-1 - CAS__PK_HDR) {
        p->mem_over = 1;
        return NULL;
    }
    if (!(b = (unsigned char *)cas__alloc(&p->user_alloc, n + CAS__PK_HDR))) return NULL;
    memcpy(b, &n, sizeof n);
    p->mem_now += n;
    return b + CAS__PK_HDR;
}

static void cas__pk_mem_free(void *user, void *ptr) {
    cas_preview *p = (cas_preview *)user;
    unsigned char *b = (unsigned char *)ptr - CAS__PK_HDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    p->mem_now -= n;
    cas__free(&p->user_alloc, b);
}

static cas__pv *cas__pv_new(cas_preview *p, int kind) {
    cas__pv *v;
    if ((int64_t)p->nlive >= p->max_values) {
        cas__pk_fail(p, CAS_E_LIMIT, "the pickle holds more than %lld values at once (CAS_PREVIEW_MAX_VALUES)",
                     (long long)p->max_values);
        return NULL;
    }
    if (!(v = (cas__pv *)cas__calloc(&p->alloc, sizeof *v))) {
        cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        return NULL;
    }
    v->kind = (uint8_t)kind, v->refs = 1;
    v->next = p->live;
    if (p->live) p->live->prev = v;
    p->live = v;
    p->nlive++;
    return v;
}

static cas__pv *cas__pv_ref(cas__pv *v) {
    if (v) v->refs++;
    return v;
}

static void cas__pv_destroy(cas_preview *p, cas__pv *v) {
    if (v->prev) v->prev->next = v->next;
    else p->live = v->next;
    if (v->next) v->next->prev = v->prev;
    p->nlive--;
    cas__free(&p->alloc, v->text);
    cas__free(&p->alloc, v->kids);
    cas__free(&p->alloc, v);
}

/* Drops a reference; what reaches zero is freed with its children, iteratively
 * (a pickle can nest 200,000 levels deep). */
static void cas__pv_unref(cas_preview *p, cas__pv *v) {
    if (!v || --v->refs) return;
    p->nwork = 0;
    for (;;) {
        uint32_t k;
        for (k = 0; k <= v->nkids; k++) {
            cas__pv *c = k < v->nkids ? v->kids[k] : v->aux;
            if (!c || --c->refs) continue;
            if (p->nwork == p->wcap) {
                size_t nc = p->wcap ? p->wcap * 2 : 64;
                cas__pv **nw = (cas__pv **)cas__alloc(&p->alloc, nc * sizeof *nw);
                if (!nw) { /* no room to walk: leave it to the final sweep */
                    c->refs = 1;
                    continue;
                }
                if (p->nwork) memcpy(nw, p->work, p->nwork * sizeof *nw);
                cas__free(&p->alloc, p->work);
                p->work = nw, p->wcap = nc;
            }
            p->work[p->nwork++] = c;
        }
        v->nkids = 0, v->aux = NULL;
        cas__pv_destroy(p, v);
        if (!p->nwork) return;
        v = p->work[--p->nwork];
    }
}

/* Keeps text: the first `keep` of n bytes (the rest counted in full). */
static int cas__pv_set_text(cas_preview *p, cas__pv *v, const void *s, size_t n, uint64_t full) {
    cas__free(&p->alloc, v->text);
    v->text = (char *)cas__alloc(&p->alloc, n + 1);
    if (!v->text) {
        v->tlen = 0;
        return cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
    }
    if (n) memcpy(v->text, s, n);
    v->text[n] = 0;
    v->tlen = n, v->full = full;
    if (full > n) v->flags |= CAS__PVF_CUT;
    return CAS_OK;
}

/* Adds a child, taking the caller's reference; past the keep limit it is only counted. */
/* Room for one more element in a growable array (*arr, *cap elements of `size`, `used`
 * of them in use): doubles from `first`, up to `most`. 0, or CAS_E_NOMEM said. */
static int cas__pk_grow(cas_preview *p, void **arr, size_t used, size_t *cap, size_t size, size_t first, size_t most) {
    size_t nc = *cap ? *cap * 2 : first;
    void *na;
    if (used < *cap) return 0;
    if (nc > most) nc = most;
    if (nc <= used) nc = used + 1;
    if (!(na = cas__alloc(&p->alloc, nc * size))) return cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
    if (used) memcpy(na, *arr, used * size);
    cas__free(&p->alloc, *arr);
    *arr = na, *cap = nc;
    return 0;
}

/* Children a container keeps: what MAX_ITEMS shows (at least CAS__PK_KEEP_KIDS, which
 * pandas frames need for their blocks and columns); the values limit bounds the rest. */
static uint32_t cas__pk_keep(const cas_preview *p) {
    return (uint32_t)CAS__MAX64((int64_t)CAS__PK_KEEP_KIDS, p->max_items);
}

static int cas__pv_add(cas_preview *p, cas__pv *parent, cas__pv *kid, uint32_t keep) {
    parent->full++;
    if (parent->nkids >= keep) {
        cas__pv_unref(p, kid);
        return CAS_OK;
    }
    if (parent->nkids == parent->kcap) {
        size_t cap = parent->kcap;
        void *kids = parent->kids;
        if (cas__pk_grow(p, &kids, parent->nkids, &cap, sizeof *parent->kids, 4, keep) < 0) {
            cas__pv_unref(p, kid);
            return -1;
        }
        parent->kids = (cas__pv **)kids, parent->kcap = (uint32_t)cap;
    }
    parent->kids[parent->nkids++] = kid;
    return CAS_OK;
}

static cas__pv *cas__pv_kid(const cas__pv *v, uint32_t i) { return v && i < v->nkids ? v->kids[i] : NULL; }
