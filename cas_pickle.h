/* cas_pickle.h - see an artifact's value without unpickling it
 *
 * Every Metaflow artifact is a pickle. This header reads pickle opcodes from a
 * byte stream (a blob's decoded bytes, from any store) and renders the value as
 * Python-repr-like text or as a JSON tree, executing nothing: globals are only
 * ever compared with a list of known (module, name) pairs, never imported.
 * Built-ins, datetime, Decimal, OrderedDict/defaultdict, numpy arrays, dtypes
 * and scalars, pandas DataFrames and Series are shown as what they are; any
 * other object as `module.Class(field=...)` from its pickled state.
 *
 * Do this, in the one C or C++ file that has cas.h's implementation:
 *
 *   #define CAS_IMPLEMENTATION
 *   #define CAS_PICKLE_IMPLEMENTATION
 *   #include "cas_pickle.h"          // includes cas.h
 *
 * (the implementation shares cas.h's internals: it must be in the same file).
 *
 * Usage:
 *
 *   cas_preview *p;
 *   cas_preview_create(&p, NULL);
 *   cas_preview_set_param(p, CAS_PREVIEW_MAX_ITEMS, 5);
 *   rc = cas_preview_bytes(p, pickle, n);            // or cas_preview_run(p, read_fn, user)
 *   printf("%s\n", cas_preview_text(p, NULL));       // always some text, also on errors
 *   if (rc < 0) fprintf(stderr, "%s\n", cas_preview_message(p));
 *   cas_preview_free(p);
 *
 *   // an artifact of a store, decoding only as much of the blob as the preview needs:
 *   cas_store_preview(store, "MyFlow", key, p, err, sizeof err);
 *
 * Results: CAS_OK, the whole value; CAS_E_LIMIT, a limit stopped the reading or
 * the rendering: the text is a partial preview with explicit markers (`...`,
 * `<truncated: ...>`); CAS_E_CORRUPT / CAS_E_TRUNCATED / CAS_E_TRAILING, the
 * pickle is malformed (the message names the offset), the text shows what came
 * before; CAS_E_IO / CAS_E_NOMEM as their names say. cas_store_preview also
 * returns the store's own errors (CAS_E_NOTFOUND, ...) with its message in err,
 * and then the text is "" (err names the blob in every case).
 *
 * Link: what cas.h needs, and -lm.
 *
 * Limits (cas_preview_set_param; CAS_E_ARG outside the range), with their defaults:
 *   CAS_PREVIEW_MAX_OUTPUT  4096    bytes of text                          64 .. 2^30
 *   CAS_PREVIEW_MAX_ITEMS   10      items shown per container (and array   1 .. 1000
 *                                   values per row)
 *   CAS_PREVIEW_MAX_DEPTH   8       nesting levels shown                   1 .. 200
 *   CAS_PREVIEW_MAX_MEMO    200000  memo entries                           1 .. 2^28
 *   CAS_PREVIEW_MAX_READ    0       decoded bytes read (0: no limit)       0 ..
 *   CAS_PREVIEW_MAX_OPS     0       opcodes (0: no limit)                  0 ..
 *   CAS_PREVIEW_MAX_VALUES  400000  values held at once, and references on 16 .. 2^28
 *                                   the pickle machine's stack
 *   CAS_PREVIEW_MAX_MEMORY  256 MiB bytes the preview holds at once, its   1 MiB .. 2^40
 *                                   text aside (every allocation counted)
 *   CAS_PREVIEW_JSON        0       1: a JSON tree instead of text         0, 1
 * The JSON tree is valid JSON whatever stopped it: a tree the output limit cut is
 * closed after its last whole value (a few bytes past the limit) and its root says
 * "output_truncated": true; a limit or a fault reached while reading is named in
 * the root's "limit" or "incomplete". Text is cut on whole UTF-8 characters.
 * Memory is bounded by these whatever the pickle says: declared lengths are never
 * allocated up front, containers keep only their first items, strings and bytes
 * their first bytes. A top-level ndarray stops the reading once its first values
 * are in (a 1 GiB array previews from its first MiBs); anything else, pandas
 * frames included (their column names come after their data), is read to the end,
 * skipping what it does not keep: time grows with the size, memory does not.
 *
 * What a hostile pickle cannot do: run code (globals are names, compared, never
 * looked up); hold more memory than CAS_PREVIEW_MAX_MEMORY plus the text
 * (CAS_PREVIEW_MAX_OUTPUT); take time beyond a constant per decoded byte read,
 * which CAS_PREVIEW_MAX_READ caps (every opcode is O(1) amortised, the memo hash
 * is seeded per run, every loop over a value's elements is bounded by the bytes
 * it holds, not by the count it declares, and rendering is bounded by the output,
 * item and depth limits); recurse without bound (every walk of the value graph,
 * pandas' and numpy's included, has a depth limit, and shared values are shown
 * once).
 *
 * Thread rules: a cas_preview is used by one thread at a time.
 */
#ifndef CAS_PICKLE_H
#define CAS_PICKLE_H

#include "cas.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CAS_PREVIEW_MAX_OUTPUT 1
#define CAS_PREVIEW_MAX_ITEMS 2
#define CAS_PREVIEW_MAX_DEPTH 3
#define CAS_PREVIEW_MAX_MEMO 4
#define CAS_PREVIEW_MAX_READ 5
#define CAS_PREVIEW_MAX_OPS 6
#define CAS_PREVIEW_MAX_VALUES 7
#define CAS_PREVIEW_JSON 8 /* 1: cas_preview_text gives a JSON tree, not repr-like text */
#define CAS_PREVIEW_MAX_MEMORY 9

typedef struct cas_preview cas_preview;

/* A source of bytes: up to cap into buf, *got = 0 at the end. CAS_OK or an error. */
typedef int (*cas_preview_read_fn)(void *user, void *buf, size_t cap, size_t *got);

CASDEF int cas_preview_create(cas_preview **out, const cas_allocator *alloc);
CASDEF int cas_preview_set_param(cas_preview *p, int param, int64_t value);
/* Reads a pickle and renders it; see Results above. The preview may be run again. */
CASDEF int cas_preview_run(cas_preview *p, cas_preview_read_fn read, void *user);
CASDEF int cas_preview_bytes(cas_preview *p, const void *pickle, size_t n);
/* The rendered text (NUL-terminated; never NULL), valid until the next run or free. */
CASDEF const char *cas_preview_text(const cas_preview *p, size_t *len);
/* Why the last run did not end with CAS_OK ("" if it did). */
CASDEF const char *cas_preview_message(const cas_preview *p);
/* Decoded bytes the last run read (less than the pickle when it stopped early). */
CASDEF uint64_t cas_preview_bytes_read(const cas_preview *p);
CASDEF void cas_preview_free(cas_preview *p);

/* An artifact that is not a pickle (cas_encoding_is_pickle(encoding) == 0): never
 * parsed; the preview names the encoding and the size (-1: unknown) and shows the
 * first bytes (8 per CAS_PREVIEW_MAX_ITEMS, at most 1 KiB), the only ones read:
 * <'json' artifact, not a pickle, 123 bytes: b'{"a": 1, '...>, or in JSON
 * {"type": "encoded", "encoding": "json", "size": 123, "repr": "<...>"}. */
CASDEF int cas_preview_encoded(cas_preview *p, const char *encoding, int64_t size, cas_preview_read_fn read,
                               void *user);

#ifndef CAS_NO_STORE
/* A blob of a store (any backend), decoded only as far as the preview reads. */
CASDEF int cas_store_preview(cas_store *s, const char *flow, const char *key, cas_preview *p, char *err, size_t errcap);
/* A stream opened by the caller (cas_stream_open, cas_stream_open_file). */
CASDEF int cas_stream_preview(cas_stream *st, cas_preview *p);
/* cas_preview_encoded of a blob of a store. */
CASDEF int cas_store_preview_encoded(cas_store *s, const char *flow, const char *key, const char *encoding,
                                     int64_t size, cas_preview *p, char *err, size_t errcap);
#endif
#ifdef __cplusplus
}
#endif
#endif /* CAS_PICKLE_H */

/* ========================================================================== */
/*                               IMPLEMENTATION                               */
/* ========================================================================== */

#if defined(CAS_PICKLE_IMPLEMENTATION) && !defined(CAS_PICKLE_IMPLEMENTED)
#define CAS_PICKLE_IMPLEMENTED
#ifndef CAS_IMPLEMENTED
#error "cas_pickle.h's implementation shares cas.h's internals: define CAS_IMPLEMENTATION in the same file"
#endif

#include <math.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layers, top down:
 *   renderers (text, JSON)          what a value looks like; output, items, depth limits
 *   recognisers                     known (module, name) pairs made into typed values:
 *                                   builtins, datetime, Decimal, numpy, pandas
 *   the pickle machine              opcodes 0-5 on a stack, marks and a memo; no code runs
 *   values                          reference-counted nodes, freed iteratively
 *   the byte source                 a pull callback, a window, skipping what is not kept */

/* ---- values ------------------------------------------------------------------ */

enum {
    CAS__PV_NONE = 1,
    CAS__PV_BOOL,
    CAS__PV_INT,
    CAS__PV_BIGINT,
    CAS__PV_FLOAT,
    CAS__PV_COMPLEX,
    CAS__PV_STR,
    CAS__PV_BYTES,
    CAS__PV_BYTEARRAY,
    CAS__PV_TUPLE,
    CAS__PV_LIST,
    CAS__PV_DICT,
    CAS__PV_SET,
    CAS__PV_FROZENSET,
    CAS__PV_GLOBAL,
    CAS__PV_CALL,
    CAS__PV_OBJ,
    CAS__PV_MARK_,
    CAS__PV_OPAQUE,
    CAS__PV_SLICE,
    CAS__PV_DATETIME,
    CAS__PV_DECIMAL,
    CAS__PV_NDARRAY,
    CAS__PV_DTYPE,
    CAS__PV_NPSCALAR,
    CAS__PV_PANDAS
};

/* flags */
#define CAS__PVF_CUT 1    /* text holds only the first bytes of the value */
#define CAS__PVF_BUSY 2   /* being rendered (a cycle shows as [...]) */
#define CAS__PVF_SHOWN 4  /* rendered once; later occurrences are back-references */
#define CAS__PVF_LATIN1 8 /* STR that turned out to be latin-1 bytes (_codecs.encode) */
#define CAS__PVF_EARLY 16 /* ndarray whose reading stopped after its first values */

/* dict flavours (sub) */
#define CAS__DICT_PLAIN 0
#define CAS__DICT_ORDERED 1
#define CAS__DICT_DEFAULT 2

typedef struct cas__pv cas__pv;
struct cas__pv {
    uint8_t kind, flags, sub;
    uint32_t refs;
    uint32_t seen, label; /* rendering: visits in the shown tree, and the #N of a shared value */
    int64_t i;            /* INT, BOOL; ndarray: fortran order */
    double f, f2;         /* FLOAT, COMPLEX */
    char *text;           /* kept bytes: STR (UTF-8), BYTES, BIGINT digits, GLOBAL "module\nname", ... */
    size_t tlen;
    uint64_t full;  /* the value's whole length (bytes of STR/BYTES, items of containers) */
    cas__pv **kids; /* kept children (containers: the first items; dicts: key, value pairs) */
    uint32_t nkids, kcap;
    cas__pv *aux;         /* one more child: a defaultdict's factory, a datetime's tzinfo */
    cas__pv *prev, *next; /* every live value, for the final sweep (cycles never reach 0 refs) */
};

#define CAS__PK_KEEP_TEXT 256                 /* bytes of a str/bytes kept for display */
#define CAS__PK_KEEP_KIDS 32                  /* children a container keeps at least (more when MAX_ITEMS asks) */
#define CAS__PK_KEEP_ARRAY ((size_t)64 << 10) /* bytes of array data kept (windows) */
#define CAS__PK_LINE_MAX ((size_t)1 << 16)    /* a protocol-0 text line */
#define CAS__MAX64(a, b) ((a) > (b) ? (a) : (b))
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
/* ---- the byte source ------------------------------------------------------------- */

#define CAS__PK_WINDOW ((size_t)64 << 10)

/* Makes at least one byte available: 1, or 0 at the end, or < 0 on failure. */
static int cas__pk_fill(cas_preview *p) {
    size_t got = 0;
    int rc;
    if (p->wpos < p->wlen) return 1;
    if (p->eof) return 0;
    if (p->max_read && p->off >= (uint64_t)p->max_read) {
        cas__pk_fail(p, CAS_E_LIMIT, "read %llu decoded bytes (CAS_PREVIEW_MAX_READ)", (unsigned long long)p->off);
        return -1;
    }
    /* never past the read limit: the window ends where the limit does */
    rc = p->read(p->user, p->win,
                 p->max_read ? (size_t)CAS__MIN((uint64_t)CAS__PK_WINDOW, (uint64_t)p->max_read - p->off)
                             : CAS__PK_WINDOW,
                 &got);
    if (rc < 0) {
        cas__pk_fail(p, rc, "reading the pickle at byte %llu: %s", (unsigned long long)p->off, cas_strerror(rc));
        return -1;
    }
    p->wpos = 0, p->wlen = got;
    if (!got) p->eof = 1;
    return got ? 1 : 0;
}

/* cas__pk_fill, the end of the bytes being a truncated pickle: 0, or -1 (failed). */
static int cas__pk_more(cas_preview *p, const char *where) {
    int r = cas__pk_fill(p);
    if (r > 0) return 0;
    if (!r) cas__pk_fail(p, CAS_E_TRUNCATED, "the pickle ends at byte %llu, %s", (unsigned long long)p->off, where);
    return -1;
}

static int cas__pk_byte(cas_preview *p, unsigned char *c) {
    if (p->wpos == p->wlen && cas__pk_more(p, "before its STOP") < 0) return -1;
    *c = p->win[p->wpos++];
    p->off++;
    return 0;
}

/* n bytes into dst (n small: arguments of opcodes). */
static int cas__pk_bytes(cas_preview *p, void *dst, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    while (n) {
        size_t k;
        if (cas__pk_more(p, "inside an opcode's argument") < 0) return -1;
        k = CAS__MIN(n, p->wlen - p->wpos);
        memcpy(d, p->win + p->wpos, k);
        p->wpos += k, p->off += k, d += k, n -= k;
    }
    return 0;
}

static uint64_t cas__le(const unsigned char *b, int n) {
    uint64_t v = 0;
    while (n--) v = v << 8 | b[n];
    return v;
}

/* A payload of `len` bytes: the byte ranges of `win` (sorted, [start, end) pairs,
 * nwin of them) are kept into keep (in order), the rest is read past. With
 * stop_after, reading stops once the last range is in: the caller stops parsing. */
static int cas__pk_payload(cas_preview *p, uint64_t len, const uint64_t *win, size_t nwin, unsigned char *keep,
                           int stop_after, int *stopped, size_t *kept_out) {
    uint64_t pos = 0;
    size_t w = 0, kept = 0;
    *stopped = 0, *kept_out = 0;
    while (pos < len) {
        size_t k;
        int r = cas__pk_fill(p);
        if (r <= 0) {
            if (!r)
                cas__pk_fail(p, CAS_E_TRUNCATED,
                             "the pickle ends at byte %llu, %llu bytes into a value it says is %llu bytes long",
                             (unsigned long long)p->off, (unsigned long long)pos, (unsigned long long)len);
            return -1;
        }
        k = (size_t)CAS__MIN((uint64_t)(p->wlen - p->wpos), len - pos);
        while (w < nwin && win[2 * w + 1] <= pos) w++;
        {
            size_t j = w;
            for (; j < nwin && win[2 * j] < pos + k; j++) { /* the ranges this piece touches */
                uint64_t a = CAS__MAX64(win[2 * j], pos), b = CAS__MIN(win[2 * j + 1], pos + k);
                if (b > a) {
                    memcpy(keep + kept, p->win + p->wpos + (a - pos), (size_t)(b - a));
                    kept += (size_t)(b - a);
                }
            }
        }
        p->wpos += k, p->off += k, pos += k;
        *kept_out = kept;
        if (stop_after && nwin && pos >= win[2 * nwin - 1]) {
            *stopped = 1;
            return 0;
        }
    }
    return 0;
}

/* A protocol-0 line, without its '\n', NUL-terminated in a new buffer. */
static char *cas__pk_line(cas_preview *p, size_t *len) {
    size_t n = 0, cap = 64;
    char *s = (char *)cas__alloc(&p->alloc, cap);
    if (!s) {
        cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        return NULL;
    }
    for (;;) {
        unsigned char c;
        if (cas__pk_byte(p, &c) < 0) break;
        if (c == '\n') {
            s[n] = 0;
            *len = n;
            return s;
        }
        if (n + 2 > cap) {
            char *ns;
            if (cap >= CAS__PK_LINE_MAX) {
                cas__pk_fail(p, CAS_E_CORRUPT, "a text argument over 64 KiB at byte %llu", (unsigned long long)p->off);
                break;
            }
            if (!(ns = (char *)cas__alloc(&p->alloc, cap * 2))) {
                cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
                break;
            }
            memcpy(ns, s, n);
            cas__free(&p->alloc, s);
            s = ns, cap *= 2;
        }
        s[n++] = (char)c;
    }
    cas__free(&p->alloc, s);
    return NULL;
}
/* ---- the machine: stack, marks, memo ---------------------------------------------- */

static int cas__pk_push(cas_preview *p, cas__pv *v) {
    if (!v) return -1;                     /* its creation failed and said why */
    if ((int64_t)p->sp >= p->max_values) { /* DUP, GET: references the values limit does not see */
        cas__pv_unref(p, v);
        return cas__pk_fail(p, CAS_E_LIMIT, "the pickle's stack holds more than %lld values (CAS_PREVIEW_MAX_VALUES)",
                            (long long)p->max_values);
    }
    if (p->sp == p->scap) {
        void *stack = p->stack;
        if (cas__pk_grow(p, &stack, p->sp, &p->scap, sizeof *p->stack, 64, (size_t)-1 / sizeof *p->stack) < 0) {
            cas__pv_unref(p, v);
            return -1;
        }
        p->stack = (cas__pv **)stack;
    }
    p->stack[p->sp++] = v;
    return 0;
}

/* 1 (and the preview failed) when op finds nothing above the innermost mark. */
static int cas__pk_underflow(cas_preview *p, unsigned op) {
    size_t floor = p->nmarks ? p->marks[p->nmarks - 1] : 0;
    if (p->sp > floor) return 0;
    cas__pk_fail(p, CAS_E_CORRUPT, "stack underflow at byte %llu (opcode 0x%02x)", (unsigned long long)p->off - 1, op);
    return 1;
}

/* The caller owns the reference it gets. */
static cas__pv *cas__pk_pop(cas_preview *p, unsigned op) { return cas__pk_underflow(p, op) ? NULL : p->stack[--p->sp]; }

static cas__pv *cas__pk_top(cas_preview *p, unsigned op) {
    return cas__pk_underflow(p, op) ? NULL : p->stack[p->sp - 1];
}

static int cas__pk_mark(cas_preview *p) {
    if (p->nmarks == p->mcap) {
        void *marks = p->marks;
        if ((int64_t)(p->mcap ? p->mcap * 2 : 16) > p->max_values * 2 + 16)
            return cas__pk_fail(p, CAS_E_LIMIT, "too many marks");
        if (cas__pk_grow(p, &marks, p->nmarks, &p->mcap, sizeof *p->marks, 16, (size_t)-1 / sizeof *p->marks) < 0)
            return -1;
        p->marks = (size_t *)marks;
    }
    p->marks[p->nmarks++] = p->sp;
    return 0;
}

/* The items since the last mark are stack[*from .. p->sp); the mark is gone. */
static int cas__pk_popmark(cas_preview *p, unsigned op, size_t *from) {
    if (!p->nmarks)
        return cas__pk_fail(p, CAS_E_CORRUPT, "no mark for opcode 0x%02x at byte %llu", op,
                            (unsigned long long)p->off - 1);
    *from = p->marks[--p->nmarks];
    return 0;
}

static void cas__pk_drop_to(cas_preview *p, size_t from) {
    while (p->sp > from) cas__pv_unref(p, p->stack[--p->sp]);
}

/* The memo: an open-addressing table keyed by the index the pickle gives (any 32-bit
 * number: LONG_BINPUT may name 4,000,000,000), holding a reference each. The slot
 * comes from a keyed mix (splitmix64's finaliser over key ^ seed, a new seed each
 * run): keys chosen to share slots under a fixed hash made the probes quadratic. */
static uint64_t cas__pk_mix(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static size_t cas__memo_slot_of(const cas_preview *p, uint32_t key, size_t mask) {
    return (size_t)cas__pk_mix(key ^ p->memo_seed) & mask;
}

/* A run's seed: what the pickle's author cannot know (where this process's heap and
 * stack are, the time), stirred with the last seed. */
static void cas__memo_reseed(cas_preview *p) {
    uint64_t here = (uint64_t)(uintptr_t)&here;
    p->memo_seed = cas__pk_mix(p->memo_seed ^ (uint64_t)(uintptr_t)p ^ here << 21 ^ (uint64_t)time(NULL) << 40 ^
                               (uint64_t)clock() ^ 0x9e3779b97f4a7c15u);
}

static int cas__memo_put(cas_preview *p, uint32_t key, cas__pv *v) {
    size_t i, mask;
    if (p->memo_n * 2 + 2 > p->memo_cap) {
        size_t nc = p->memo_cap ? p->memo_cap * 2 : 256, k;
        cas__memo_slot *nm;
        if ((int64_t)p->memo_n >= p->max_memo)
            return cas__pk_fail(p, CAS_E_LIMIT, "more than %lld memo entries (CAS_PREVIEW_MAX_MEMO)",
                                (long long)p->max_memo);
        if (!(nm = (cas__memo_slot *)cas__calloc(&p->alloc, nc * sizeof *nm)))
            return cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        for (k = 0; k < p->memo_cap; k++) {
            if (!p->memo[k].v) continue;
            for (i = cas__memo_slot_of(p, p->memo[k].key, nc - 1); nm[i].v; i = (i + 1) & (nc - 1)) {
            }
            nm[i] = p->memo[k];
        }
        cas__free(&p->alloc, p->memo);
        p->memo = nm, p->memo_cap = nc;
    }
    mask = p->memo_cap - 1;
    for (i = cas__memo_slot_of(p, key, mask); p->memo[i].v; i = (i + 1) & mask)
        if (p->memo[i].key == key) { /* a PUT again under the same index replaces the value */
            cas__pv_unref(p, p->memo[i].v);
            p->memo[i].v = cas__pv_ref(v);
            return 0;
        }
    p->memo[i].key = key, p->memo[i].v = cas__pv_ref(v);
    p->memo_n++;
    return 0;
}

static cas__pv *cas__memo_get(cas_preview *p, uint32_t key) {
    size_t i, mask;
    if (!p->memo_cap) return NULL;
    mask = p->memo_cap - 1;
    for (i = cas__memo_slot_of(p, key, mask); p->memo[i].v; i = (i + 1) & mask)
        if (p->memo[i].key == key) return p->memo[i].v;
    return NULL;
}

static int cas__pk_get(cas_preview *p, uint64_t key) {
    cas__pv *v = key <= 0xffffffffu ? cas__memo_get(p, (uint32_t)key) : NULL;
    if (!v)
        return cas__pk_fail(p, CAS_E_CORRUPT, "memo entry %llu is not there (byte %llu)", (unsigned long long)key,
                            (unsigned long long)p->off);
    return cas__pk_push(p, cas__pv_ref(v));
}
/* ---- values from opcodes -------------------------------------------------------- */

static cas__pv *cas__pv_int(cas_preview *p, int64_t i) {
    cas__pv *v = cas__pv_new(p, CAS__PV_INT);
    if (v) v->i = i;
    return v;
}

static cas__pv *cas__pv_textval(cas_preview *p, int kind, const char *s, size_t n) {
    cas__pv *v = cas__pv_new(p, kind);
    if (v && cas__pv_set_text(p, v, s, n, n) < 0) {
        cas__pv_unref(p, v);
        return NULL;
    }
    return v;
}

/* Little-endian two's complement (LONG1, LONG4): an int when it fits 64 bits, else
 * its decimal digits (up to CAS__PK_BIGINT_MAX bytes; beyond, only its size). */
#define CAS__PK_BIGINT_MAX 512
static cas__pv *cas__pv_long(cas_preview *p, const unsigned char *b, size_t n, uint64_t full) {
    cas__pv *v;
    size_t i;
    int neg = n && (b[n - 1] & 0x80);
    if (full <= 8) {
        uint64_t u = 0;
        for (i = n; i-- > 0;) u = u << 8 | b[i];
        if (neg && n < 8) u |= ~(uint64_t)0 << (8 * n);
        return cas__pv_int(p, (int64_t)u);
    }
    if (!(v = cas__pv_new(p, CAS__PV_BIGINT))) return NULL;
    if (full > CAS__PK_BIGINT_MAX || n < full) {
        char t[80];
        snprintf(t, sizeof t, "<int of %llu bits>", (unsigned long long)full * 8);
        if (cas__pv_set_text(p, v, t, strlen(t), strlen(t)) < 0) return cas__pv_unref(p, v), (cas__pv *)NULL;
        return v;
    }
    { /* magnitude in base 2^32 words, then repeated division by 10^9 */
        uint32_t w[CAS__PK_BIGINT_MAX / 4 + 1];
        size_t nw = (n + 3) / 4, k;
        char digits[CAS__PK_BIGINT_MAX * 3 + 4], *d = digits + sizeof digits;
        uint32_t carry = 1;
        memset(w, 0, sizeof w);
        for (i = 0; i < n; i++) w[i / 4] |= (uint32_t)b[i] << (8 * (i % 4));
        if (n % 4 && neg)
            for (i = n; i < nw * 4; i++) w[i / 4] |= (uint32_t)0xff << (8 * (i % 4));
        if (neg) /* two's complement: invert and add one */
            for (k = 0; k < nw; k++) {
                uint64_t t = (uint64_t)(uint32_t)~w[k] + carry;
                w[k] = (uint32_t)t, carry = (uint32_t)(t >> 32);
            }
        *--d = 0;
        while (nw && !w[nw - 1]) nw--;
        while (nw) {
            uint64_t rem = 0;
            int j;
            for (k = nw; k-- > 0;) {
                uint64_t cur = rem << 32 | w[k];
                w[k] = (uint32_t)(cur / 1000000000u), rem = cur % 1000000000u;
            }
            while (nw && !w[nw - 1]) nw--;
            for (j = 0; j < 9 && (nw || rem); j++) *--d = (char)('0' + rem % 10), rem /= 10;
        }
        if (!*d) *--d = '0';
        if (neg) *--d = '-';
        if (cas__pv_set_text(p, v, d, strlen(d), strlen(d)) < 0) return cas__pv_unref(p, v), (cas__pv *)NULL;
    }
    return v;
}
/* ---- array data: which bytes to keep ----------------------------------------------- */

#define CAS__PVF_WIN 32 /* BYTES holding an array's kept windows, not a prefix */
#define CAS__PK_WINDOWS 128
#define CAS__PK_NDIM 32

static int cas__pv_is_global(const cas__pv *v, const char *module, const char *name) {
    size_t ml = strlen(module);
    return v && v->kind == CAS__PV_GLOBAL && v->tlen == ml + 1 + strlen(name) && !memcmp(v->text, module, ml) &&
           v->text[ml] == '\n' && !strcmp(v->text + ml + 1, name);
}

/* numpy's own modules moved in numpy 2 (numpy.core -> numpy._core): either. */
static int cas__pv_is_np(const cas__pv *v, const char *sub, const char *name) {
    char m1[64], m2[64];
    snprintf(m1, sizeof m1, "numpy.core.%s", sub);
    snprintf(m2, sizeof m2, "numpy._core.%s", sub);
    return cas__pv_is_global(v, m1, name) || cas__pv_is_global(v, m2, name);
}

/* A dtype's descr ("f8", "<U10", "M8[ns]") to its kind letter and item size in bytes (0: unknown, or objects). */
static size_t cas__dtype_item(const cas__pv *dt, char *kind) {
    const char *s;
    size_t n = 0;
    *kind = 0;
    if (!dt || dt->kind != CAS__PV_DTYPE || !dt->text) return 0;
    s = dt->text;
    while (*s == '<' || *s == '>' || *s == '|' || *s == '=') s++;
    *kind = *s;
    if (!*s || *s == 'O') return 0; /* "" or "<": no kind letter, nothing to step past (found by fuzz_pickle) */
    for (s++; *s >= '0' && *s <= '9' && n < ((size_t)1 << 32); s++) n = n * 10 + (size_t)(*s - '0');
    if (*kind == 'U') n *= 4; /* UCS-4 */
    if (*kind == 'b' && !n) n = 1;
    if (*kind == 'V' && dt->i > 0) n = (size_t)dt->i; /* structured: elsize from its state */
    return n;
}

/* An array's shape from a tuple of ints: ndim, or -1 if it is not one. */
static int cas__shape_of(const cas__pv *t, uint64_t *shape) {
    uint32_t k;
    if (!t || t->kind != CAS__PV_TUPLE || t->full > CAS__PK_NDIM || t->nkids != t->full) return -1;
    for (k = 0; k < t->nkids; k++) {
        if (t->kids[k]->kind != CAS__PV_INT || t->kids[k]->i < 0) return -1;
        shape[k] = (uint64_t)t->kids[k]->i;
    }
    return (int)t->nkids;
}

/* The windows a display of `items` values per row reads: the first `items`
 * elements along the fastest axis, for the first `items` indices of each other
 * axis (capped), as byte ranges [start, end) in increasing order. */
static size_t cas__array_windows(const uint64_t *shape, int ndim, int fortran, size_t isz, size_t items, uint64_t *win,
                                 size_t maxwin) {
    uint64_t idx[CAS__PK_NDIM], stride[CAS__PK_NDIM], total = 1;
    int d, fast = fortran ? 0 : ndim - 1;
    size_t n = 0, kept = 0;
    if (ndim < 0 || !isz || !items) return 0;
    for (d = 0; d < ndim; d++) {
        if (shape[d] && total > UINT64_MAX / shape[d]) return 0;
        total *= shape[d];
    }
    if (!total) return 0;
    if (ndim == 0) {
        win[0] = 0, win[1] = isz;
        return 1;
    }
    /* strides in elements */
    if (fortran)
        for (d = 0, stride[0] = 1; d + 1 < ndim; d++) stride[d + 1] = stride[d] * shape[d];
    else
        for (d = ndim - 1, stride[ndim - 1] = 1; d > 0; d--) stride[d - 1] = stride[d] * shape[d];
    memset(idx, 0, sizeof idx);
    for (;;) {
        uint64_t off = 0, len = CAS__MIN((uint64_t)items, shape[fast]);
        for (d = 0; d < ndim; d++)
            if (d != fast) off += idx[d] * stride[d];
        if (n == maxwin || kept + len * isz > CAS__PK_KEEP_ARRAY) break;
        win[2 * n] = off * isz, win[2 * n + 1] = (off + len) * isz;
        kept += (size_t)(len * isz), n++;
        /* the next index tuple over the other axes, in increasing offset order:
         * C order bumps the last of them first, Fortran order the first */
        if (fortran) {
            for (d = 1; d < ndim; d++) {
                if (++idx[d] < CAS__MIN((uint64_t)items, shape[d])) break;
                idx[d] = 0;
            }
            if (d >= ndim) break;
        } else {
            for (d = ndim - 2; d >= 0; d--) {
                if (++idx[d] < CAS__MIN((uint64_t)items, shape[d])) break;
                idx[d] = 0;
            }
            if (d < 0) break;
        }
    }
    return n;
}

/* Is the value about to be read an ndarray's raw data (its BUILD state so far on
 * the stack: NDARRAY, MARK, version, shape, dtype, fortran[, _codecs.encode])?
 * Then the windows to keep (none for protocol 2's latin-1 text and protocol 5's
 * _frombuffer, whose shape comes too late: *latin1 asks for a longer prefix), and
 * whether the array is the whole pickle (its reading may stop after them). */
static size_t cas__pk_array_context(cas_preview *p, uint64_t len, uint64_t *win, int *top, int *latin1) {
    size_t m, n;
    uint64_t shape[CAS__PK_NDIM], total = 1;
    int ndim, d;
    char kind;
    size_t isz;
    *top = 0, *latin1 = 0;
    if (!p->nmarks) return 0;
    m = p->marks[p->nmarks - 1], n = p->sp - m;
    if (m >= 1 && n == 0 && cas__pv_is_np(p->stack[m - 1], "numeric", "_frombuffer")) {
        *latin1 = 1; /* protocol 5: the data comes before its dtype and shape: a longer prefix */
        return 0;
    }
    if (m < 1 || (n != 4 && n != 5) || p->stack[m - 1]->kind != CAS__PV_NDARRAY) return 0;
    if (p->stack[m]->kind != CAS__PV_INT || p->stack[m + 3]->kind != CAS__PV_BOOL) return 0;
    if (n == 5 && !cas__pv_is_global(p->stack[m + 4], "_codecs", "encode")) return 0;
    if ((ndim = cas__shape_of(p->stack[m + 1], shape)) < 0) return 0;
    if (!(isz = cas__dtype_item(p->stack[m + 2], &kind))) return 0;
    *top = m == 1 && p->nmarks == 1;
    if (n == 5) {
        *latin1 = 1;
        return 0;
    }
    /* windows only for data as long as the shape says: they cost up to CAS__PK_WINDOWS x
     * ndim steps, which a lying shape could otherwise ask for with every 2-byte payload */
    for (d = 0; d < ndim; d++) total = shape[d] && total > UINT64_MAX / shape[d] ? UINT64_MAX : total * shape[d];
    if (total > UINT64_MAX / isz || total * isz != len) return 0;
    return cas__array_windows(shape, ndim, (int)p->stack[m + 3]->i, isz, (size_t)p->max_items, win, CAS__PK_WINDOWS);
}

/* A sized str/bytes/bytearray: its first bytes kept (or an array's windows), the rest read past. */
static int cas__pk_sized(cas_preview *p, int kind, uint64_t len) {
    uint64_t win[2 * CAS__PK_WINDOWS];
    size_t nwin, keep = 0, kept = 0, k;
    int top = 0, latin1 = 0, stopped = 0;
    unsigned char *buf;
    cas__pv *v = cas__pv_new(p, kind);
    if (!v) return -1;
    nwin = kind == CAS__PV_STR || kind == CAS__PV_BYTES || kind == CAS__PV_BYTEARRAY
               ? cas__pk_array_context(p, len, win, &top, &latin1)
               : 0;
    if (nwin) {
        v->flags |= CAS__PVF_WIN;
        for (k = 0; k < nwin; k++) keep += (size_t)(win[2 * k + 1] - win[2 * k]);
    } else {
        keep = (size_t)CAS__MIN(len, latin1 ? (uint64_t)CAS__PK_KEEP_ARRAY : (uint64_t)CAS__PK_KEEP_TEXT);
        win[0] = 0, win[1] = keep, nwin = 1;
    }
    if (!(buf = (unsigned char *)cas__alloc(&p->alloc, keep + 1))) {
        cas__pv_unref(p, v);
        return cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
    }
    if (cas__pk_payload(p, len, win, nwin, buf, top && (v->flags & CAS__PVF_WIN), &stopped, &kept) < 0) {
        cas__free(&p->alloc, buf);
        cas__pv_unref(p, v);
        return -1;
    }
    buf[kept] = 0;
    cas__free(&p->alloc, v->text);
    v->text = (char *)buf, v->tlen = kept, v->full = len;
    if (len > kept) v->flags |= CAS__PVF_CUT;
    if (stopped) p->stopped_early = 1;
    return cas__pk_push(p, v);
}
/* ---- recognisers and text arguments (below) ------------------------------------------ */
static cas__pv *cas__pk_textnum(cas_preview *p, unsigned op, const char *s, size_t n);
static cas__pv *cas__pk_textstr(cas_preview *p, unsigned op, const char *s, size_t n);
static cas__pv *cas__pk_global(cas_preview *p, const char *mod, size_t ml, const char *name, size_t nl);
static cas__pv *cas__pk_reduce(cas_preview *p, cas__pv *func, cas__pv *args);
static cas__pv *cas__pk_newobj(cas_preview *p, cas__pv *cls, cas__pv *args, cas__pv *kwargs);
static int cas__pk_build(cas_preview *p, cas__pv *obj, cas__pv *state);

/* A container from stack[from..sp) (the items since a mark, or the last n). */
static cas__pv *cas__pk_collect(cas_preview *p, int kind, size_t from) {
    cas__pv *v = cas__pv_new(p, kind);
    size_t i;
    if (!v) {
        cas__pk_drop_to(p, from);
        return NULL;
    }
    for (i = from; i < p->sp; i++) cas__pv_add(p, v, p->stack[i], cas__pk_keep(p));
    p->sp = from;
    return v;
}

/* APPEND(S) / SETITEM(S) / ADDITEMS: the items since `from` into the container below. */
static int cas__pk_extend(cas_preview *p, unsigned op, size_t from, int pairs) {
    cas__pv *c;
    size_t i;
    if (from < 1 || from > p->sp) {
        cas__pk_drop_to(p, from > p->sp ? p->sp : from);
        return cas__pk_fail(p, CAS_E_CORRUPT, "opcode 0x%02x at byte %llu has nothing to add to", op,
                            (unsigned long long)p->off - 1);
    }
    c = p->stack[from - 1];
    if (pairs && (p->sp - from) % 2) {
        cas__pk_drop_to(p, from);
        return cas__pk_fail(p, CAS_E_CORRUPT, "SETITEMS with an odd number of items at byte %llu",
                            (unsigned long long)p->off - 1);
    }
    for (i = from; i < p->sp; i++) {
        /* a dict keeps key, value pairs: a pair is kept or dropped whole */
        uint32_t keep = pairs ? cas__pk_keep(p) * 2 : cas__pk_keep(p);
        if (pairs && (i - from) % 2 == 1 && c->nkids % 2 == 0) keep = 0; /* its key was dropped */
        cas__pv_add(p, c, p->stack[i], keep); /* into whatever is below: a custom class's items show as its own */
    }
    if (pairs) c->full -= (p->sp - from) / 2; /* count pairs, not keys and values */
    p->sp = from;
    return 0;
}

/* The opcodes, protocols 0 to 5. Nothing is executed: REDUCE, NEWOBJ, BUILD and the
 * like only make values that describe the call. Returns 0 at STOP (or at an early
 * stop), < 0 with p->rc set. */
static int cas__pk_loop(cas_preview *p) {
    for (;;) {
        unsigned char op, b[8];
        cas__pv *v, *a, *f;
        size_t from = 0, len;
        char *line;
        if (p->stopped_early) return 0;
        if (p->max_ops && ++p->ops > (uint64_t)p->max_ops)
            return cas__pk_fail(p, CAS_E_LIMIT, "more than %lld opcodes (CAS_PREVIEW_MAX_OPS)", (long long)p->max_ops);
        if (cas__pk_byte(p, &op) < 0) return -1;
        switch (op) {
        case 0x80: /* PROTO */
            if (cas__pk_bytes(p, b, 1) < 0) return -1;
            if (b[0] > 5)
                return cas__pk_fail(p, CAS_E_CORRUPT, "protocol %u is beyond 5 (byte %llu)", b[0],
                                    (unsigned long long)p->off - 2);
            p->proto = b[0];
            break;
        case 0x95: /* FRAME: a length; the frame's opcodes follow as usual */
            if (cas__pk_bytes(p, b, 8) < 0) return -1;
            break;
        case '.': /* STOP */
            if (p->nmarks || p->sp != 1)
                return cas__pk_fail(p, CAS_E_CORRUPT, "STOP at byte %llu with %s", (unsigned long long)p->off - 1,
                                    p->nmarks ? "a mark still open"
                                    : p->sp   ? "more than one value left"
                                              : "an empty stack");
            return 0;
        case '(': /* MARK */
            if (cas__pk_mark(p) < 0) return -1;
            break;
        case '0':                                                /* POP */
            if (p->nmarks && p->marks[p->nmarks - 1] == p->sp) { /* pops a mark (as Python does) */
                p->nmarks--;
                break;
            }
            if (!(v = cas__pk_pop(p, op))) return -1;
            cas__pv_unref(p, v);
            break;
        case '1': /* POP_MARK */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            cas__pk_drop_to(p, from);
            break;
        case '2': /* DUP */
            if (!(v = cas__pk_top(p, op)) || cas__pk_push(p, cas__pv_ref(v)) < 0) return -1;
            break;
        case 'N': /* NONE */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_NONE)) < 0) return -1;
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if (!(v = cas__pv_new(p, CAS__PV_BOOL))) return -1;
            v->i = op == 0x88;
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'J': /* BININT */
            if (cas__pk_bytes(p, b, 4) < 0 || cas__pk_push(p, cas__pv_int(p, (int32_t)(uint32_t)cas__le(b, 4))) < 0)
                return -1;
            break;
        case 'K': /* BININT1 */
            if (cas__pk_bytes(p, b, 1) < 0 || cas__pk_push(p, cas__pv_int(p, b[0])) < 0) return -1;
            break;
        case 'M': /* BININT2 */
            if (cas__pk_bytes(p, b, 2) < 0 || cas__pk_push(p, cas__pv_int(p, (int64_t)cas__le(b, 2))) < 0) return -1;
            break;
        case 0x8a:   /* LONG1 */
        case 0x8b: { /* LONG4 */
            unsigned char digits[CAS__PK_BIGINT_MAX];
            uint64_t n;
            size_t kept = 0;
            int stopped;
            uint64_t win[2];
            if (cas__pk_bytes(p, b, op == 0x8a ? 1 : 4) < 0) return -1;
            n = cas__le(b, op == 0x8a ? 1 : 4);
            if (op == 0x8b && (int32_t)(uint32_t)n < 0)
                return cas__pk_fail(p, CAS_E_CORRUPT, "LONG4 with a negative length at byte %llu",
                                    (unsigned long long)p->off - 5);
            win[0] = 0, win[1] = CAS__MIN(n, (uint64_t)sizeof digits);
            if (cas__pk_payload(p, n, win, 1, digits, 0, &stopped, &kept) < 0) return -1;
            /* the sign lives in the last byte: a long beyond what is kept shows only its size */
            if (cas__pk_push(p, cas__pv_long(p, digits, kept, n)) < 0) return -1;
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            uint64_t u = 0;
            int i;
            double d;
            if (cas__pk_bytes(p, b, 8) < 0) return -1;
            for (i = 0; i < 8; i++) u = u << 8 | b[i];
            memcpy(&d, &u, sizeof d);
            if (!(v = cas__pv_new(p, CAS__PV_FLOAT))) return -1;
            v->f = d;
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        }
        case 'I': /* INT (protocol 0 text; "01"/"00" are True/False) */
        case 'L': /* LONG */
        case 'F': /* FLOAT */
            if (!(line = cas__pk_line(p, &len))) return -1;
            v = cas__pk_textnum(p, op, line, len);
            cas__free(&p->alloc, line);
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'S': /* STRING: a quoted repr (protocol 0 bytes) */
        case 'V': /* UNICODE: raw-unicode-escape */
        case 'P': /* PERSID */
            if (!(line = cas__pk_line(p, &len))) return -1;
            v = op == 'P' ? cas__pv_textval(p, CAS__PV_OPAQUE, "persistent id", 13) : cas__pk_textstr(p, op, line, len);
            cas__free(&p->alloc, line);
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'Q': /* BINPERSID */
            if (!(v = cas__pk_pop(p, op))) return -1;
            cas__pv_unref(p, v);
            if (cas__pk_push(p, cas__pv_textval(p, CAS__PV_OPAQUE, "persistent id", 13)) < 0) return -1;
            break;
        case 'T': /* BINSTRING */
        case 'B': /* BINBYTES */
        case 'X': /* BINUNICODE */
            if (cas__pk_bytes(p, b, 4) < 0) return -1;
            if (op == 'T' && (int32_t)(uint32_t)cas__le(b, 4) < 0)
                return cas__pk_fail(p, CAS_E_CORRUPT, "BINSTRING with a negative length at byte %llu",
                                    (unsigned long long)p->off - 5);
            if (cas__pk_sized(p, op == 'X' ? CAS__PV_STR : CAS__PV_BYTES, cas__le(b, 4)) < 0) return -1;
            break;
        case 'U':  /* SHORT_BINSTRING */
        case 'C':  /* SHORT_BINBYTES */
        case 0x8c: /* SHORT_BINUNICODE */
            if (cas__pk_bytes(p, b, 1) < 0) return -1;
            if (cas__pk_sized(p, op == 0x8c ? CAS__PV_STR : CAS__PV_BYTES, b[0]) < 0) return -1;
            break;
        case 0x8d: /* BINUNICODE8 */
        case 0x8e: /* BINBYTES8 */
        case 0x96: /* BYTEARRAY8 */
            if (cas__pk_bytes(p, b, 8) < 0) return -1;
            if (cas__pk_sized(p,
                              op == 0x8d   ? CAS__PV_STR
                              : op == 0x8e ? CAS__PV_BYTES
                                           : CAS__PV_BYTEARRAY,
                              cas__le(b, 8)) < 0)
                return -1;
            break;
        case 0x97: /* NEXT_BUFFER: out of band, not in this stream */
            if (cas__pk_push(p, cas__pv_textval(p, CAS__PV_OPAQUE, "out-of-band buffer", 18)) < 0) return -1;
            break;
        case 0x98: /* READONLY_BUFFER */
            if (!cas__pk_top(p, op)) return -1;
            break;
        case 0x82:   /* EXT1 */
        case 0x83:   /* EXT2 */
        case 0x84: { /* EXT4 */
            char t[48];
            int n = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
            if (cas__pk_bytes(p, b, (size_t)n) < 0) return -1;
            snprintf(t, sizeof t, "extension code %llu", (unsigned long long)cas__le(b, n));
            if (cas__pk_push(p, cas__pv_textval(p, CAS__PV_OPAQUE, t, strlen(t))) < 0) return -1;
            break;
        }
        case ')': /* EMPTY_TUPLE */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_TUPLE)) < 0) return -1;
            break;
        case ']': /* EMPTY_LIST */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_LIST)) < 0) return -1;
            break;
        case '}': /* EMPTY_DICT */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_DICT)) < 0) return -1;
            break;
        case 0x8f: /* EMPTY_SET */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_SET)) < 0) return -1;
            break;
        case 0x85:   /* TUPLE1 */
        case 0x86:   /* TUPLE2 */
        case 0x87: { /* TUPLE3 */
            size_t n = (size_t)(op - 0x84), floor = p->nmarks ? p->marks[p->nmarks - 1] : 0;
            if (p->sp < floor + n)
                return cas__pk_fail(p, CAS_E_CORRUPT, "stack underflow at byte %llu (TUPLE%u)",
                                    (unsigned long long)p->off - 1, (unsigned)n);
            if (cas__pk_push(p, cas__pk_collect(p, CAS__PV_TUPLE, p->sp - n)) < 0) return -1;
            break;
        }
        case 't':  /* TUPLE */
        case 'l':  /* LIST */
        case 0x91: /* FROZENSET */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            if (cas__pk_push(p, cas__pk_collect(p,
                                                op == 't'   ? CAS__PV_TUPLE
                                                : op == 'l' ? CAS__PV_LIST
                                                            : CAS__PV_FROZENSET,
                                                from)) < 0)
                return -1;
            break;
        case 'd': { /* DICT */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            if ((p->sp - from) % 2) {
                cas__pk_drop_to(p, from);
                return cas__pk_fail(p, CAS_E_CORRUPT, "DICT with an odd number of items at byte %llu",
                                    (unsigned long long)p->off - 1);
            }
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_DICT)) < 0) return -1;
            /* the dict sits below its items now: extend it like SETITEMS */
            v = p->stack[--p->sp];
            memmove(p->stack + from + 1, p->stack + from, (p->sp - from) * sizeof *p->stack);
            p->stack[from] = v, p->sp++;
            if (cas__pk_extend(p, op, from + 1, 1) < 0) return -1;
            break;
        }
        case 'a': /* APPEND */
        case 's': /* SETITEM */
            if (p->sp < (op == 'a' ? 2u : 3u) + (p->nmarks ? p->marks[p->nmarks - 1] : 0))
                return cas__pk_fail(p, CAS_E_CORRUPT, "stack underflow at byte %llu (opcode 0x%02x)",
                                    (unsigned long long)p->off - 1, op);
            if (cas__pk_extend(p, op, p->sp - (op == 'a' ? 1 : 2), op == 's') < 0) return -1;
            break;
        case 'e':  /* APPENDS */
        case 'u':  /* SETITEMS */
        case 0x90: /* ADDITEMS */
            if (cas__pk_popmark(p, op, &from) < 0 || cas__pk_extend(p, op, from, op == 'u') < 0) return -1;
            break;
        case 'c':   /* GLOBAL module\nname\n */
        case 'i': { /* INST module\nname\n, args since the mark */
            char *mod, *name;
            size_t ml, nl;
            if (!(mod = cas__pk_line(p, &ml))) return -1;
            if (!(name = cas__pk_line(p, &nl))) {
                cas__free(&p->alloc, mod);
                return -1;
            }
            v = cas__pk_global(p, mod, ml, name, nl);
            cas__free(&p->alloc, mod), cas__free(&p->alloc, name);
            if (!v) return -1;
            if (op == 'i') {
                if (cas__pk_popmark(p, op, &from) < 0) return cas__pv_unref(p, v), -1;
                a = cas__pk_collect(p, CAS__PV_TUPLE, from);
                if (cas__pk_push(p, cas__pk_reduce(p, v, a)) < 0) return -1;
            } else if (cas__pk_push(p, v) < 0) {
                return -1;
            }
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, a), -1;
            v = f->kind == CAS__PV_STR && a->kind == CAS__PV_STR && !(f->flags & CAS__PVF_CUT) &&
                        !(a->flags & CAS__PVF_CUT)
                    ? cas__pk_global(p, f->text, f->tlen, a->text, a->tlen)
                    : NULL;
            if (!v && p->rc == CAS_OK)
                cas__pk_fail(p, CAS_E_CORRUPT, "STACK_GLOBAL at byte %llu without two strings",
                             (unsigned long long)p->off - 1);
            cas__pv_unref(p, a), cas__pv_unref(p, f);
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'o': /* OBJ: class and args since the mark */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            if (from >= p->sp)
                return cas__pk_fail(p, CAS_E_CORRUPT, "OBJ without a class at byte %llu",
                                    (unsigned long long)p->off - 1);
            f = p->stack[from];
            memmove(p->stack + from, p->stack + from + 1, (p->sp - from - 1) * sizeof *p->stack);
            p->sp--;
            a = cas__pk_collect(p, CAS__PV_TUPLE, from);
            if (cas__pk_push(p, cas__pk_reduce(p, f, a)) < 0) return -1;
            break;
        case 'R': /* REDUCE */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, a), -1;
            if (cas__pk_push(p, cas__pk_reduce(p, f, a)) < 0) return -1;
            break;
        case 0x81: /* NEWOBJ */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, a), -1;
            if (cas__pk_push(p, cas__pk_newobj(p, f, a, NULL)) < 0) return -1;
            break;
        case 0x92: { /* NEWOBJ_EX */
            cas__pv *kw;
            if (!(kw = cas__pk_pop(p, op))) return -1;
            if (!(a = cas__pk_pop(p, op))) return cas__pv_unref(p, kw), -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, kw), cas__pv_unref(p, a), -1;
            if (cas__pk_push(p, cas__pk_newobj(p, f, a, kw)) < 0) return -1;
            break;
        }
        case 'b': /* BUILD */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(v = cas__pk_top(p, op))) return cas__pv_unref(p, a), -1;
            if (cas__pk_build(p, v, a) < 0) return -1;
            break;
        case 'p':   /* PUT (text) */
        case 'g': { /* GET (text) */
            char *end;
            unsigned long long k;
            if (!(line = cas__pk_line(p, &len))) return -1;
            k = strtoull(line, &end, 10);
            if (!len || *end) {
                cas__free(&p->alloc, line);
                return cas__pk_fail(p, CAS_E_CORRUPT, "a bad memo index at byte %llu", (unsigned long long)p->off);
            }
            cas__free(&p->alloc, line);
            if (op == 'g') {
                if (cas__pk_get(p, k) < 0) return -1;
            } else if (!(v = cas__pk_top(p, op)) || k > 0xffffffffu || cas__memo_put(p, (uint32_t)k, v) < 0) {
                return p->rc < 0 ? -1
                                 : cas__pk_fail(p, CAS_E_CORRUPT, "a bad memo index at byte %llu",
                                                (unsigned long long)p->off);
            }
            break;
        }
        case 'q': /* BINPUT */
        case 'r': /* LONG_BINPUT */
            if (cas__pk_bytes(p, b, op == 'q' ? 1 : 4) < 0 || !(v = cas__pk_top(p, op)) ||
                cas__memo_put(p, (uint32_t)cas__le(b, op == 'q' ? 1 : 4), v) < 0)
                return -1;
            break;
        case 0x94: /* MEMOIZE */
            if (!(v = cas__pk_top(p, op)) || cas__memo_put(p, (uint32_t)p->memo_n, v) < 0) return -1;
            break;
        case 'h': /* BINGET */
        case 'j': /* LONG_BINGET */
            if (cas__pk_bytes(p, b, op == 'h' ? 1 : 4) < 0 || cas__pk_get(p, cas__le(b, op == 'h' ? 1 : 4)) < 0)
                return -1;
            break;
        default:
            return cas__pk_fail(p, CAS_E_CORRUPT, "unknown opcode 0x%02x at byte %llu", op,
                                (unsigned long long)p->off - 1);
        }
    }
}

/* ---- protocol 0's text arguments -------------------------------------------------- */

static cas__pv *cas__pk_textnum(cas_preview *p, unsigned op, const char *s, size_t n) {
    cas__pv *v;
    char *end;
    size_t k;
    if (op == 'F') {
        double d = n ? strtod(s, &end) : 0;
        if (!n || *end)
            return cas__pk_fail(p, CAS_E_CORRUPT, "a bad FLOAT at byte %llu", (unsigned long long)p->off),
                   (cas__pv *)NULL;
        if ((v = cas__pv_new(p, CAS__PV_FLOAT)) != NULL) v->f = d;
        return v;
    }
    if (op == 'I' && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) { /* protocol 0's bools */
        if ((v = cas__pv_new(p, CAS__PV_BOOL)) != NULL) v->i = s[1] == '1';
        return v;
    }
    if (op == 'L' && n && s[n - 1] == 'L') n--;
    for (k = s[0] == '-' || s[0] == '+' ? 1 : 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9') break;
    if (!n || k != n || (n == 1 && (s[0] == '-' || s[0] == '+')))
        return cas__pk_fail(p, CAS_E_CORRUPT, "a bad INT/LONG at byte %llu", (unsigned long long)p->off),
               (cas__pv *)NULL;
    if (n <= 18) return cas__pv_int(p, strtoll(s, NULL, 10));
    return cas__pv_textval(p, CAS__PV_BIGINT, s[0] == '+' ? s + 1 : s, s[0] == '+' ? n - 1 : n);
}

/* STRING ('...' with Python escapes, as protocol 0 bytes) and UNICODE (raw-unicode-escape). */
static cas__pv *cas__pk_textstr(cas_preview *p, unsigned op, const char *s, size_t n) {
    char *d = (char *)cas__alloc(&p->alloc, n * 4 + 1);
    size_t i = 0, o = 0;
    cas__pv *v;
    if (!d) return cas__pk_fail(p, CAS_E_NOMEM, "out of memory"), (cas__pv *)NULL;
    if (op == 'S') {
        if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0]) {
            cas__free(&p->alloc, d);
            return cas__pk_fail(p, CAS_E_CORRUPT, "a STRING that is not quoted at byte %llu",
                                (unsigned long long)p->off),
                   (cas__pv *)NULL;
        }
        for (i = 1; i + 1 < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\' && i + 2 < n) {
                char e = s[++i];
                int h, l;
                if (e == 'n') c = '\n';
                else if (e == 't') c = '\t';
                else if (e == 'r') c = '\r';
                else if (e == 'x' && i + 2 < n && (h = cas__hexval(s[i + 1])) >= 0 && (l = cas__hexval(s[i + 2])) >= 0)
                    c = (unsigned char)(h * 16 + l), i += 2;
                else c = (unsigned char)e;
            }
            o += (size_t)cas__utf8_put(d + o, c); /* bytes shown as latin-1 text, as Python 2 strings read */
        }
    } else {
        for (i = 0; i < n; i++) {
            uint32_t c = (unsigned char)s[i];
            int w = 0, k, ok = 1;
            if (c == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U')) w = s[i + 1] == 'u' ? 4 : 8;
            if (w && i + 1 + (size_t)w < n) {
                uint32_t u = 0;
                for (k = 0; k < w && ok; k++) {
                    int h = cas__hexval(s[i + 2 + k]);
                    if (h < 0) ok = 0;
                    u = u << 4 | (uint32_t)(h < 0 ? 0 : h);
                }
                if (ok && u <= 0x10ffff) c = u, i += 1 + (size_t)w;
            }
            o += (size_t)cas__utf8_put(d + o, c);
        }
    }
    v = cas__pv_textval(p, CAS__PV_STR, d, o);
    cas__free(&p->alloc, d);
    return v;
}

/* Python 2's module names, as the unpickler's fix_imports maps them. */
static cas__pv *cas__pk_global(cas_preview *p, const char *mod, size_t ml, const char *name, size_t nl) {
    char buf[600];
    if (!ml || !nl || ml > 255 || nl > 255)
        return cas__pk_fail(p, CAS_E_CORRUPT, "a global with an empty or overlong name at byte %llu",
                            (unsigned long long)p->off),
               (cas__pv *)NULL;
    if (ml == 11 && !memcmp(mod, "__builtin__", 11)) mod = "builtins", ml = 8;
    else if (ml == 8 && !memcmp(mod, "copy_reg", 8)) mod = "copyreg", ml = 7;
    memcpy(buf, mod, ml), buf[ml] = '\n';
    memcpy(buf + ml + 1, name, nl);
    return cas__pv_textval(p, CAS__PV_GLOBAL, buf, ml + 1 + nl);
}

/* ---- recognisers: known (module, name) pairs made into what they build ----------- */

enum { CAS__PD_FRAME = 1, CAS__PD_SERIES, CAS__PD_MGR, CAS__PD_BLOCK, CAS__PD_INDEX, CAS__PD_BACKED };
enum { CAS__DT_DATETIME = 1, CAS__DT_DATE, CAS__DT_TIME, CAS__DT_TIMEDELTA, CAS__DT_TIMEZONE };

/* kids[i] = v (a reference taken), growing kids as needed; the old one is released. */
static int cas__pv_setkid(cas_preview *p, cas__pv *parent, uint32_t i, cas__pv *v) {
    while (parent->nkids <= i) {
        cas__pv *none = cas__pv_new(p, CAS__PV_NONE);
        if (!none || cas__pv_add(p, parent, none, i + 1) < 0) return cas__pv_unref(p, v), -1;
        parent->full--;
    }
    cas__pv_unref(p, parent->kids[i]);
    parent->kids[i] = v;
    return 0;
}

/* A value of kind `kind` whose kids are the given values (references taken). */
static cas__pv *cas__pv_with(cas_preview *p, int kind, int sub, cas__pv *a, cas__pv *b, cas__pv *c) {
    cas__pv *v = cas__pv_new(p, kind), *k[3];
    int i;
    k[0] = a, k[1] = b, k[2] = c;
    if (!v) {
        for (i = 0; i < 3; i++) cas__pv_unref(p, k[i]);
        return NULL;
    }
    v->sub = (uint8_t)sub;
    for (i = 0; i < 3 && k[i]; i++) cas__pv_add(p, v, k[i], 3);
    v->full = 0;
    return v;
}

static int cas__pv_is_text(const cas__pv *v, const char *s) {
    return v && v->kind == CAS__PV_STR && v->tlen == strlen(s) && !memcmp(v->text, s, v->tlen);
}

/* datetime's pickled states: packed bytes (year hi/lo, month, day, hour, minute,
 * second, microsecond 3 bytes; time: hour first), made into the repr Python gives. */
static cas__pv *cas__pk_datetime(cas_preview *p, int sub, cas__pv *args) {
    cas__pv *st = cas__pv_kid(args, 0), *v;
    const unsigned char *b;
    char t[160];
    if (sub == CAS__DT_TIMEDELTA) {
        int64_t d = 0, s = 0, us = 0;
        size_t n = 0;
        if (args->nkids > 0 && args->kids[0]->kind == CAS__PV_INT) d = args->kids[0]->i;
        if (args->nkids > 1 && args->kids[1]->kind == CAS__PV_INT) s = args->kids[1]->i;
        if (args->nkids > 2 && args->kids[2]->kind == CAS__PV_INT) us = args->kids[2]->i;
        n = (size_t)snprintf(t, sizeof t, "datetime.timedelta(");
        if (d) n += (size_t)snprintf(t + n, sizeof t - n, "days=%lld", (long long)d);
        if (s) n += (size_t)snprintf(t + n, sizeof t - n, "%sseconds=%lld", d ? ", " : "", (long long)s);
        if (us) n += (size_t)snprintf(t + n, sizeof t - n, "%smicroseconds=%lld", d || s ? ", " : "", (long long)us);
        if (!d && !s && !us) n += (size_t)snprintf(t + n, sizeof t - n, "0");
        snprintf(t + n, sizeof t - n, ")");
    } else {
        size_t need = sub == CAS__DT_DATE ? 4 : sub == CAS__DT_TIME ? 6 : 10;
        if (!st || (st->kind != CAS__PV_BYTES && st->kind != CAS__PV_STR) || st->tlen < need) return NULL;
        b = (const unsigned char *)st->text;
        if (st->kind == CAS__PV_STR) return NULL; /* protocol 2 latin-1 text: left generic */
        if (sub == CAS__DT_DATE) snprintf(t, sizeof t, "datetime.date(%d, %d, %d)", b[0] * 256 + b[1], b[2], b[3]);
        else if (sub == CAS__DT_TIME) {
            int us = b[3] << 16 | b[4] << 8 | b[5];
            size_t n = (size_t)snprintf(t, sizeof t, "datetime.time(%d, %d", b[0], b[1]);
            if (b[2] || us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", b[2]);
            if (us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", us);
            snprintf(t + n, sizeof t - n, ")");
        } else {
            int us = b[7] << 16 | b[8] << 8 | b[9];
            size_t n = (size_t)snprintf(t, sizeof t, "datetime.datetime(%d, %d, %d, %d, %d", b[0] * 256 + b[1], b[2],
                                        b[3], b[4], b[5]);
            if (b[6] || us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", b[6]);
            if (us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", us);
            snprintf(t + n, sizeof t - n, ")");
        }
    }
    if (!(v = cas__pv_textval(p, CAS__PV_DATETIME, t, strlen(t)))) return NULL;
    v->sub = (uint8_t)sub;
    if (sub != CAS__DT_TIMEDELTA && sub != CAS__DT_DATE && args->nkids > 1 && args->kids[1]->kind != CAS__PV_NONE)
        v->aux = cas__pv_ref(args->kids[1]); /* tzinfo */
    return v;
}

/* REDUCE (and INST, OBJ): func(*args), described, never called. Takes both references. */
static cas__pv *cas__pk_reduce(cas_preview *p, cas__pv *func, cas__pv *args) {
    cas__pv *v = NULL, *a0, *a1;
    if (!func || !args) {
        cas__pv_unref(p, func), cas__pv_unref(p, args);
        return NULL;
    }
    a0 = cas__pv_kid(args, 0), a1 = cas__pv_kid(args, 1);
    if (args->kind != CAS__PV_TUPLE) {
        /* not a tuple of arguments: described as is */
    } else if ((cas__pv_is_global(func, "builtins", "set") || cas__pv_is_global(func, "builtins", "frozenset")) &&
               args->full <= 1 && (!a0 || a0->kind == CAS__PV_LIST || a0->kind == CAS__PV_TUPLE)) {
        uint32_t k;
        v = cas__pv_new(p, cas__pv_is_global(func, "builtins", "set") ? CAS__PV_SET : CAS__PV_FROZENSET);
        if (v && a0) {
            for (k = 0; k < a0->nkids; k++) cas__pv_add(p, v, cas__pv_ref(a0->kids[k]), cas__pk_keep(p));
            v->full = a0->full;
        }
    } else if (cas__pv_is_global(func, "builtins", "bytes") && args->full == 0) { /* protocols 0-2: b'' */
        v = cas__pv_new(p, CAS__PV_BYTES);
    } else if (cas__pv_is_global(func, "_codecs", "encode") && a0 && a0->kind == CAS__PV_STR &&
               (cas__pv_is_text(a1, "latin1") || cas__pv_is_text(a1, "latin-1"))) {
        /* protocol 2's bytes: the str's code points are the bytes */
        size_t i = 0, o = 0;
        v = cas__pv_new(p, CAS__PV_BYTES);
        if (v && (v->text = (char *)cas__alloc(&p->alloc, a0->tlen + 1)) != NULL) {
            const unsigned char *s = (const unsigned char *)a0->text;
            while (i < a0->tlen) {
                uint32_t cp;
                int len = cas__utf8_seq(s + i, a0->tlen - i, &cp);
                if (!len || cp > 0xff) break; /* beyond latin-1, or a sequence cut at the end of what was kept */
                v->text[o++] = (char)cp, i += (size_t)len;
            }
            v->tlen = o, v->text[o] = 0;
            v->full = a0->flags & CAS__PVF_CUT ? o + 1 : o; /* its true length is unknown when cut */
            if (a0->flags & CAS__PVF_CUT) v->flags |= CAS__PVF_CUT | CAS__PVF_LATIN1;
        } else if (v) {
            cas__pv_unref(p, v);
            v = NULL;
            cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        }
    } else if (cas__pv_is_global(func, "builtins", "bytearray") &&
               (!a0 || a0->kind == CAS__PV_BYTES || (a0->kind == CAS__PV_STR && a1))) {
        v = cas__pv_new(p, CAS__PV_BYTEARRAY);
        if (v && a0 && cas__pv_set_text(p, v, a0->text, a0->tlen, a0->full) < 0) v = NULL;
    } else if (cas__pv_is_global(func, "builtins", "complex") && a0 &&
               (a0->kind == CAS__PV_FLOAT || a0->kind == CAS__PV_INT)) {
        if ((v = cas__pv_new(p, CAS__PV_COMPLEX)) != NULL) {
            v->f = a0->kind == CAS__PV_FLOAT ? a0->f : (double)a0->i;
            v->f2 = !a1 ? 0 : a1->kind == CAS__PV_FLOAT ? a1->f : a1->kind == CAS__PV_INT ? (double)a1->i : 0;
        }
    } else if (cas__pv_is_global(func, "builtins", "slice") && args->full == 3) {
        v = cas__pv_with(p, CAS__PV_SLICE, 0, cas__pv_ref(a0), cas__pv_ref(a1), cas__pv_ref(cas__pv_kid(args, 2)));
    } else if (cas__pv_is_global(func, "collections", "OrderedDict") ||
               cas__pv_is_global(func, "collections", "defaultdict")) {
        int dd = cas__pv_is_global(func, "collections", "defaultdict");
        if ((v = cas__pv_new(p, CAS__PV_DICT)) != NULL) {
            v->sub = dd ? CAS__DICT_DEFAULT : CAS__DICT_ORDERED;
            if (dd) v->aux = cas__pv_ref(a0); /* the factory */
            else if (a0 && (a0->kind == CAS__PV_LIST || a0->kind == CAS__PV_TUPLE)) { /* [(k, v), ...] */ uint32_t k;
                for (k = 0; k < a0->nkids; k++)
                    if (a0->kids[k]->kind == CAS__PV_TUPLE && a0->kids[k]->nkids == 2) {
                        cas__pv_add(p, v, cas__pv_ref(a0->kids[k]->kids[0]), cas__pk_keep(p) * 2);
                        cas__pv_add(p, v, cas__pv_ref(a0->kids[k]->kids[1]), cas__pk_keep(p) * 2);
                    }
                v->full = a0->full;
            }
        }
    } else if (cas__pv_is_global(func, "datetime", "datetime")) {
        v = cas__pk_datetime(p, CAS__DT_DATETIME, args);
    } else if (cas__pv_is_global(func, "datetime", "date")) {
        v = cas__pk_datetime(p, CAS__DT_DATE, args);
    } else if (cas__pv_is_global(func, "datetime", "time")) {
        v = cas__pk_datetime(p, CAS__DT_TIME, args);
    } else if (cas__pv_is_global(func, "datetime", "timedelta")) {
        v = cas__pk_datetime(p, CAS__DT_TIMEDELTA, args);
    } else if (cas__pv_is_global(func, "decimal", "Decimal") && a0 && a0->kind == CAS__PV_STR) {
        if ((v = cas__pv_textval(p, CAS__PV_DECIMAL, a0->text, a0->tlen)) != NULL) v->flags |= a0->flags & CAS__PVF_CUT;
    } else if (cas__pv_is_np(func, "multiarray", "_reconstruct")) {
        v = cas__pv_new(p, CAS__PV_NDARRAY); /* empty until its BUILD */
    } else if (cas__pv_is_global(func, "numpy", "dtype") && a0 && a0->kind == CAS__PV_STR) {
        v = cas__pv_textval(p, CAS__PV_DTYPE, a0->text, a0->tlen);
    } else if (cas__pv_is_np(func, "multiarray", "scalar") && a0 && a0->kind == CAS__PV_DTYPE) {
        v = cas__pv_with(p, CAS__PV_NPSCALAR, 0, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_np(func, "numeric", "_frombuffer") &&
               args->full == 4) { /* protocol 5: (buffer, dtype, shape, order) */
        cas__pv *order = cas__pv_kid(args, 3);
        if ((v = cas__pv_with(p, CAS__PV_NDARRAY, 0, cas__pv_ref(a1), cas__pv_ref(cas__pv_kid(args, 2)),
                              cas__pv_ref(a0))))
            v->i = cas__pv_is_text(order, "F");
    } else if (cas__pv_is_global(func, "pandas._libs.internals", "_unpickle_block") ||
               cas__pv_is_global(func, "pandas.core.internals.blocks", "_unpickle_block")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_BLOCK, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_global(func, "pandas.core.internals.managers", "BlockManager") ||
               cas__pv_is_global(func, "pandas.core.internals.managers", "SingleBlockManager")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_MGR, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_global(func, "pandas.core.indexes.base", "_new_Index")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_INDEX, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_global(func, "pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_BACKED, cas__pv_ref(a0), cas__pv_ref(cas__pv_kid(args, 2)), NULL);
    } else if (cas__pv_is_global(func, "copyreg", "_reconstructor") && a0) {
        /* object.__reduce_ex__(<2): cls, base, state: the instance of cls, its state by BUILD */
        v = cas__pv_with(p, CAS__PV_OBJ, 0, cas__pv_ref(a0), cas__pv_new(p, CAS__PV_TUPLE), NULL);
    }
    if (!v && p->rc != CAS_OK && p->rc != CAS_E_LIMIT) {
        cas__pv_unref(p, func), cas__pv_unref(p, args);
        return NULL;
    }
    if (!v) /* anything else: the call itself, shown as func(args) */
        return cas__pv_with(p, CAS__PV_CALL, 0, func, args, NULL);
    cas__pv_unref(p, func), cas__pv_unref(p, args);
    return v;
}

/* NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args). Takes the references. */
static cas__pv *cas__pk_newobj(cas_preview *p, cas__pv *cls, cas__pv *args, cas__pv *kwargs) {
    cas__pv_unref(p, kwargs);
    if (!cls || !args) {
        cas__pv_unref(p, cls), cas__pv_unref(p, args);
        return NULL;
    }
    if (cas__pv_is_global(cls, "pandas.core.frame", "DataFrame"))
        return cas__pv_unref(p, args), cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_FRAME, cls, NULL, NULL);
    if (cas__pv_is_global(cls, "pandas.core.series", "Series"))
        return cas__pv_unref(p, args), cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_SERIES, cls, NULL, NULL);
    return cas__pv_with(p, CAS__PV_OBJ, 0, cls, args, NULL);
}

/* BUILD: obj.__setstate__(state), or its __dict__ updated. Takes state's reference. */
static int cas__pk_build(cas_preview *p, cas__pv *obj, cas__pv *state) {
    if (obj->kind == CAS__PV_NDARRAY && !obj->nkids && state->kind == CAS__PV_TUPLE && state->nkids == 5) {
        /* (version, shape, dtype, is_fortran, raw data or object list) */
        obj->i = state->kids[3]->kind == CAS__PV_BOOL && state->kids[3]->i;
        cas__pv_add(p, obj, cas__pv_ref(state->kids[2]), 3);
        cas__pv_add(p, obj, cas__pv_ref(state->kids[1]), 3);
        cas__pv_add(p, obj, cas__pv_ref(state->kids[4]), 3);
        obj->full = 0;
        cas__pv_unref(p, state);
        return 0;
    }
    if (obj->kind == CAS__PV_DTYPE && state->kind == CAS__PV_TUPLE && state->nkids >= 8) {
        /* (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata]) */
        cas__pv *bo = state->kids[1], *meta = cas__pv_kid(state, 8);
        if (bo->kind == CAS__PV_STR && bo->tlen == 1) obj->sub = (uint8_t)bo->text[0];
        if (state->kids[5]->kind == CAS__PV_INT) obj->i = state->kids[5]->i;
        cas__pv_setkid(p, obj, 0, cas__pv_ref(state->kids[3])); /* names */
        cas__pv_setkid(p, obj, 1, cas__pv_ref(state->kids[4])); /* fields */
        /* datetime64's unit: (b'ns', num, den, events), alone or beside a metadata dict */
        if (meta && meta->kind == CAS__PV_TUPLE && meta->nkids == 2 && meta->kids[1]->kind == CAS__PV_TUPLE)
            meta = meta->kids[1];
        if (meta && meta->kind == CAS__PV_TUPLE && meta->nkids >= 2 && meta->kids[0]->kind == CAS__PV_BYTES)
            cas__pv_setkid(p, obj, 2, cas__pv_ref(meta));
        obj->full = 0;
        cas__pv_unref(p, state);
        return 0;
    }
    if (obj->kind == CAS__PV_PANDAS && (obj->sub == CAS__PD_FRAME || obj->sub == CAS__PD_SERIES)) {
        obj->full = 0;
        return cas__pv_setkid(p, obj, 1, state);
    }
    if (obj->kind == CAS__PV_OBJ || obj->kind == CAS__PV_CALL) /* generic: kids are class/func, args, state */
        return cas__pv_setkid(p, obj, 2, state);
    /* anything else (a dict subclass's extra state, ...): kept as its aux, shown with it */
    cas__pv_unref(p, obj->aux);
    obj->aux = state;
    return 0;
}
/* ---- output ------------------------------------------------------------------------- */

#define CAS__PK_MARKER " <truncated: output limit>"

static void cas__out_put(cas_preview *p, const char *s, size_t n) {
    size_t room, limit = (size_t)p->max_output;
    size_t need; /* what this call writes at most, with the NUL: a cut writes up to the limit and the marker */
    if (p->out_full || !n) return;
    need = (p->olen + n > limit ? CAS__MAX64(limit, p->olen) + sizeof CAS__PK_MARKER : p->olen + n + 1);
    if (need > p->ocap) {
        size_t nc = p->ocap ? p->ocap : 256;
        char *no;
        while (nc < need) nc *= 2;
        if (nc > limit + sizeof CAS__PK_MARKER) nc = CAS__MAX64(need, limit + sizeof CAS__PK_MARKER);
        if (!(no = (char *)cas__alloc(&p->user_alloc, nc))) { /* the text is bounded by its own limit */
            p->out_full = 1;
            cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
            return;
        }
        if (p->olen) memcpy(no, p->out, p->olen);
        cas__free(&p->user_alloc, p->out);
        p->out = no, p->ocap = nc;
    }
    room = limit > p->olen ? limit - p->olen : 0;
    if (n > room) { /* the limit: what fits (whole UTF-8 characters), and a marker that says so */
        while (room && ((unsigned char)s[room] & 0xC0) == 0x80) room--;
        memcpy(p->out + p->olen, s, room);
        p->olen += room;
        memcpy(p->out + p->olen, CAS__PK_MARKER, sizeof CAS__PK_MARKER - 1);
        p->olen += sizeof CAS__PK_MARKER - 1;
        p->out_full = 1;
        cas__pk_fail(p, CAS_E_LIMIT, "the preview reached CAS_PREVIEW_MAX_OUTPUT (%lld bytes)",
                     (long long)p->max_output);
    } else {
        memcpy(p->out + p->olen, s, n);
        p->olen += n;
    }
    p->out[p->olen] = 0;
}

static void cas__out_s(cas_preview *p, const char *s) { cas__out_put(p, s, strlen(s)); }

static void cas__out_f(cas_preview *p, const char *fmt, ...) {
    char t[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    if (n > 0) cas__out_put(p, t, CAS__MIN((size_t)n, sizeof t - 1));
}

/* Python's repr of a float: the shortest digits that read back the same, in fixed
 * notation for exponents -4..15 and scientific beyond, "inf", "nan", "-0.0".
 * numpy_style drops the 0 of "1.0" ("1.") as numpy prints array values. */
static void cas__fmt_float(double d, char *out, size_t cap, int numpy_style) {
    char e[40], digits[24];
    int prec, exp10, nd = 0, neg = 0, i, pass;
    const char *m;
    if (d != d) {
        snprintf(out, cap, "nan");
        return;
    }
    if (d == HUGE_VAL || d == -HUGE_VAL) {
        snprintf(out, cap, "%sinf", d < 0 ? "-" : "");
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    for (pass = 0;; pass++) {
        int keep;
        m = e, nd = neg = 0;
        if (*m == '-') neg = 1, m++;
        for (; *m && *m != 'e'; m++)
            if (*m >= '0' && *m <= '9' && nd < 20) digits[nd++] = *m;
        exp10 = atoi(m + 1);
        while (nd > 1 && digits[nd - 1] == '0') nd--;
        digits[nd] = 0;
        /* numpy's default: at most 8 digits after the point, or in a mantissa */
        keep = exp10 >= -4 && exp10 < 16 ? exp10 + 9 : 9;
        if (!numpy_style || nd <= keep || pass) break;
        snprintf(e, sizeof e, "%.*e", keep - 1, d);
    }
    {
        char t[64];
        size_t o = 0;
        if (neg) t[o++] = '-';
        if (exp10 >= -4 && exp10 < 16) {
            if (exp10 < 0) {
                t[o++] = '0', t[o++] = '.';
                for (i = -1; i > exp10; i--) t[o++] = '0';
                for (i = 0; i < nd; i++) t[o++] = digits[i];
            } else {
                for (i = 0; i <= exp10; i++) t[o++] = i < nd ? digits[i] : '0';
                t[o++] = '.';
                if (nd > exp10 + 1)
                    for (i = exp10 + 1; i < nd; i++) t[o++] = digits[i];
                else if (!numpy_style) t[o++] = '0';
            }
        } else {
            t[o++] = digits[0];
            if (nd > 1) {
                t[o++] = '.';
                for (i = 1; i < nd; i++) t[o++] = digits[i];
            }
            o += (size_t)snprintf(t + o, sizeof t - o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        }
        t[o] = 0;
        snprintf(out, cap, "%s", t);
    }
}

/* Python's repr of a str (UTF-8 in) or bytes: quotes as Python picks them, escapes
 * for what is not printable; invalid UTF-8 shows as \x escapes of its bytes. */
/* Code points Python's repr escapes (str.isprintable() is false), as far as they are
 * known without Unicode's tables: controls, separators other than ' ', format
 * characters (bidi overrides among them: shown, they could reorder the text around
 * them), private use, noncharacters. Unassigned code points are shown as they are. */
static int cas__unprintable(uint32_t cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || cp == 0x61c || cp == 0x1680 || cp == 0x180e ||
           (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) ||
           cp == 0x3000 || (cp >= 0xd800 && cp <= 0xf8ff) || (cp >= 0xfdd0 && cp <= 0xfdef) || cp == 0xfeff ||
           (cp >= 0xfff9 && cp <= 0xfffb) || (cp & 0xfffe) == 0xfffe || (cp >= 0xe0000 && cp <= 0xe007f) ||
           cp >= 0xf0000;
}

/* Text as Python's repr shows it: mode CAS__Q_STR 'str', CAS__Q_BYTES b'bytes', or
 * CAS__Q_BARE: no quotes (names, fields, table cells), escaped all the same. */
#define CAS__Q_STR 0
#define CAS__Q_BYTES 1
#define CAS__Q_BARE 2
#define CAS__Q_CUT 4 /* the first bytes only: Python's choice of quotes depends on all of them, so ' */

static void cas__out_quoted(cas_preview *p, const char *s, size_t n, int mode) {
    int sq = 0, dq = 0, bytes = (mode & 3) == CAS__Q_BYTES;
    char q, t[16];
    size_t i;
    for (i = 0; i < n; i++) sq |= s[i] == '\'', dq |= s[i] == '"';
    q = (mode & 3) == CAS__Q_BARE ? 0 : sq && !dq && !(mode & CAS__Q_CUT) ? '"' : '\'';
    if (bytes) cas__out_s(p, "b");
    if (q) cas__out_put(p, &q, 1);
    for (i = 0; i < n && !p->out_full;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int len;
        if (c == '\\' || (q && c == (unsigned char)q)) {
            t[0] = '\\', t[1] = (char)c;
            cas__out_put(p, t, 2), i++;
            continue;
        }
        if (c == '\n' || c == '\r' || c == '\t') {
            cas__out_s(p, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t"), i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
            snprintf(t, sizeof t, "\\x%02x", c);
            cas__out_s(p, t), i++;
            continue;
        }
        if (c < 0x80) {
            cas__out_put(p, s + i, 1), i++;
            continue;
        }
        /* a UTF-8 sequence: shown when valid and printable, escaped otherwise */
        if (!(len = cas__utf8_seq((const unsigned char *)s + i, n - i, &cp))) {
            snprintf(t, sizeof t, "\\x%02x", c); /* not UTF-8: its byte, escaped */
            cas__out_s(p, t), i++;
            continue;
        }
        if (cas__unprintable(cp)) {
            snprintf(t, sizeof t, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
            cas__out_s(p, t);
        } else {
            cas__out_put(p, s + i, (size_t)len);
        }
        i += (size_t)len;
    }
    if (q) cas__out_put(p, &q, 1);
}
/* ---- rendering: numpy ---------------------------------------------------------------- */

static int cas__pv_scalar(const cas__pv *v) {
    return v->kind <= CAS__PV_BYTEARRAY || v->kind == CAS__PV_GLOBAL || v->kind == CAS__PV_OPAQUE ||
           v->kind == CAS__PV_DATETIME || v->kind == CAS__PV_DECIMAL;
}

/* A dtype's name as numpy prints it ("float64", "<U10", "datetime64[ns]"). */
static void cas__dtype_name(const cas__pv *dt, char *out, size_t cap) {
    char kind;
    size_t isz = cas__dtype_item(dt, &kind), bits = isz * 8;
    const char *d = dt && dt->text ? dt->text : "?";
    char unit[32];
    const cas__pv *meta = cas__pv_kid(dt, 2);
    unit[0] = 0;
    if (meta && meta->nkids >= 1 && meta->kids[0]->kind == CAS__PV_BYTES)
        snprintf(unit, sizeof unit, "[%.*s]", (int)CAS__MIN(meta->kids[0]->tlen, (size_t)8), meta->kids[0]->text);
    else if (strchr(d, '[')) snprintf(unit, sizeof unit, "%.20s", strchr(d, '['));
    switch (kind) {
    case 'f': snprintf(out, cap, "float%u", (unsigned)bits); break;
    case 'i': snprintf(out, cap, "int%u", (unsigned)bits); break;
    case 'u': snprintf(out, cap, "uint%u", (unsigned)bits); break;
    case 'c': snprintf(out, cap, "complex%u", (unsigned)bits); break;
    case 'b': snprintf(out, cap, "bool"); break;
    case 'O': snprintf(out, cap, "object"); break;
    case 'M': snprintf(out, cap, "datetime64%s", unit); break;
    case 'm': snprintf(out, cap, "timedelta64%s", unit); break;
    case 'U': snprintf(out, cap, "<U%u", (unsigned)(isz / 4)); break;
    case 'S': snprintf(out, cap, "|S%u", (unsigned)isz); break;
    default: snprintf(out, cap, "%.40s", d);
    }
    if (dt && dt->sub == '>' && isz > 1 && kind != 'U' && kind != 'S' && kind != 'O' && kind != 'V') { /* not native */
        char t[64];
        snprintf(t, sizeof t, ">%c%u", kind, (unsigned)isz);
        snprintf(out, cap, "%s", t);
    }
    for (; *out; out++) /* type strings and units come from the pickle: printable ASCII only */
        if ((unsigned char)*out < 0x20 || (unsigned char)*out >= 0x7f || *out == '\\' || *out == '"') *out = '?';
}

static uint64_t cas__load(const unsigned char *b, size_t n, int big) {
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < n; i++) v |= (uint64_t)b[big ? n - 1 - i : i] << (8 * i);
    return v;
}

static double cas__half(uint16_t h) {
    int e = h >> 10 & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : HUGE_VAL) : ldexp(m + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

/* One array element as numpy prints it. */
static void cas__fmt_elem(const unsigned char *b, char kind, size_t isz, int big, const cas__pv *dt, char *out,
                          size_t cap, int numpy_style) {
    uint64_t u = isz <= 8 ? cas__load(b, isz, big) : 0;
    double d;
    char t[128], t2[64];
    switch (kind) {
    case 'f':
        if (isz == 2) d = cas__half((uint16_t)u);
        else if (isz == 4) {
            float f;
            uint32_t w = (uint32_t)u;
            memcpy(&f, &w, 4);
            d = f;
        } else if (isz == 8) memcpy(&d, &u, 8);
        else {
            snprintf(out, cap, "<float%u>", (unsigned)isz * 8);
            return;
        }
        if (isz == 4) { /* float32: the shortest digits that float32 reads back */
            int prec;
            for (prec = 1; prec <= 9; prec++) {
                snprintf(t, sizeof t, "%.*g", prec, d);
                if ((float)strtod(t, NULL) == (float)d) break;
            }
            d = strtod(t, NULL);
        }
        cas__fmt_float(d, out, cap, numpy_style);
        return;
    case 'i':
        if (isz && isz < 8 && (u >> (isz * 8 - 1) & 1)) u |= ~(uint64_t)0 << (isz * 8);
        snprintf(out, cap, "%lld", (long long)(int64_t)u);
        return;
    case 'u': snprintf(out, cap, "%llu", (unsigned long long)u); return;
    case 'b': snprintf(out, cap, "%s", u ? "True" : "False"); return;
    case 'c': {
        double re, im;
        if (isz == 8) {
            float a, c2;
            uint32_t w1 = (uint32_t)cas__load(b, 4, big), w2 = (uint32_t)cas__load(b + 4, 4, big);
            memcpy(&a, &w1, 4), memcpy(&c2, &w2, 4);
            re = a, im = c2;
        } else if (isz == 16) {
            uint64_t w1 = cas__load(b, 8, big), w2 = cas__load(b + 8, 8, big);
            memcpy(&re, &w1, 8), memcpy(&im, &w2, 8);
        } else {
            snprintf(out, cap, "<complex%u>", (unsigned)isz * 8);
            return;
        }
        cas__fmt_float(re, t, sizeof t, 1), cas__fmt_float(im, t2, sizeof t2, 1);
        snprintf(out, cap, "%.40s%s%.40sj", t, im < 0 || t2[0] == '-' ? "" : "+", t2);
        return;
    }
    case 'M':
    case 'm': {
        int64_t x = (int64_t)u;
        const cas__pv *meta = cas__pv_kid(dt, 2);
        char unit[12] = "";
        char *u;
        if (meta && meta->nkids && meta->kids[0]->kind == CAS__PV_BYTES)
            snprintf(unit, sizeof unit, "%.*s", (int)CAS__MIN(meta->kids[0]->tlen, (size_t)8), meta->kids[0]->text);
        for (u = unit; *u; u++) /* from the pickle: printable ASCII only */
            if ((unsigned char)*u <= 0x20 || (unsigned char)*u >= 0x7f || *u == '\\' || *u == '\'') *u = '?';
        if (x == INT64_MIN) {
            snprintf(out, cap, "'NaT'");
            return;
        }
        if (kind == 'm') {
            snprintf(out, cap, "%lld %s", (long long)x, unit[0] ? unit : "units");
            return;
        }
        { /* a count of units since 1970-01-01, as an ISO date-time */
            int64_t per = !strcmp(unit, "ns")   ? 1000000000
                          : !strcmp(unit, "us") ? 1000000
                          : !strcmp(unit, "ms") ? 1000
                          : !strcmp(unit, "s")  ? 1
                          : !strcmp(unit, "D")  ? -86400
                                                : 0;
            int64_t secs, frac = 0, days, z, era, doe, yoe, y, doy, mp, dd, mm;
            /* units numpy has but this does not format, and days too far out for seconds: the count */
            if (!per || (per < 0 && (x > INT64_MAX / 86400 || x < -(INT64_MAX / 86400)))) {
                snprintf(out, cap, "%lld [%s]", (long long)x, unit);
                return;
            }
            if (per < 0) secs = x * 86400;
            else secs = x / per - (x % per < 0), frac = x - secs * per;
            days = secs / 86400 - (secs % 86400 < 0);
            secs -= days * 86400;
            z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
            yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, y = yoe + era * 400;
            doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
            dd = doy - (153 * mp + 2) / 5 + 1, mm = mp < 10 ? mp + 3 : mp - 9;
            if (per < 0) {
                snprintf(out, cap, "'%04lld-%02lld-%02lld'", (long long)(y + (mm <= 2)), (long long)mm, (long long)dd);
                return;
            }
            snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d", (int)((y + (mm <= 2)) % 100000), (int)mm, (int)dd,
                     (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
            if (per > 1)
                snprintf(out, cap, "'%.40s.%0*lld'", t, per == 1000 ? 3 : per == 1000000 ? 6 : 9, (long long)frac);
            else snprintf(out, cap, "'%.40s'", t);
        }
        return;
    }
    default: snprintf(out, cap, "<%u bytes>", (unsigned)isz);
    }
}

static void cas__render(cas_preview *p, cas__pv *v, int depth);

typedef struct cas__arr {
    const cas__pv *dt, *data;
    int py_floats; /* floats as Python prints them ("1.0"), not numpy ("1.") */
    uint64_t shape[CAS__PK_NDIM], stride[CAS__PK_NDIM];
    int ndim, fortran, big;
    char kind;
    size_t isz;
    uint64_t win[2 * CAS__PK_WINDOWS];
    size_t nwin;
} cas__arr;

/* An array's view for rendering: 0, or -1 when it is not a whole array description. */
static int cas__arr_open(cas_preview *p, const cas__pv *v, cas__arr *a) {
    int d;
    memset(a, 0, sizeof *a);
    if (v->nkids < 3) return -1;
    a->dt = v->kids[0], a->data = v->kids[2], a->fortran = (int)v->i;
    if ((a->ndim = cas__shape_of(v->kids[1], a->shape)) < 0 || a->dt->kind != CAS__PV_DTYPE) return -1;
    a->isz = cas__dtype_item(a->dt, &a->kind);
    a->big = a->dt->sub == '>';
    if (a->ndim) {
        if (a->fortran)
            for (d = 0, a->stride[0] = 1; d + 1 < a->ndim; d++) a->stride[d + 1] = a->stride[d] * a->shape[d];
        else
            for (d = a->ndim - 1, a->stride[a->ndim - 1] = 1; d > 0; d--) a->stride[d - 1] = a->stride[d] * a->shape[d];
    }
    if (a->data->flags & CAS__PVF_WIN)
        a->nwin = cas__array_windows(a->shape, a->ndim, a->fortran, a->isz ? a->isz : 1, (size_t)p->max_items, a->win,
                                     CAS__PK_WINDOWS);
    return 0;
}

/* Where element `e` (a flat index in storage order) was kept: its position among
 * the kept units (bytes, or list items for objects), or -1 if it was not. */
static int64_t cas__arr_kept(const cas__arr *a, uint64_t e) {
    uint64_t unit = a->isz ? a->isz : 1, off = e * unit, before = 0;
    size_t w;
    if (!(a->data->flags & CAS__PVF_WIN)) return (int64_t)off;
    for (w = 0; w < a->nwin; w++) {
        if (off >= a->win[2 * w] && off + unit <= a->win[2 * w + 1]) return (int64_t)(before + off - a->win[2 * w]);
        before += a->win[2 * w + 1] - a->win[2 * w];
    }
    return -1;
}

static void cas__arr_elem(cas_preview *p, const cas__arr *a, uint64_t e, int depth) {
    int64_t at = cas__arr_kept(a, e);
    char t[96];
    if (a->data->kind == CAS__PV_LIST) { /* object arrays: the pickled objects themselves */
        if (at >= 0 && (uint64_t)at < a->data->nkids) cas__render(p, a->data->kids[at], depth + 1);
        else cas__out_s(p, "?");
        return;
    }
    if (at < 0 || (uint64_t)at + a->isz > a->data->tlen || a->isz > 64 || !a->data->text) {
        cas__out_s(p, "?");
        return;
    }
    if (a->kind == 'U' || a->kind == 'S') { /* UCS-4 or bytes, NUL-padded */
        char s[256];
        size_t n = 0, k;
        const unsigned char *b = (const unsigned char *)a->data->text + at;
        for (k = 0; k < a->isz && n + 4 < sizeof s; k += a->kind == 'U' ? 4 : 1) {
            uint32_t c = a->kind == 'U' ? (uint32_t)cas__load(b + k, 4, a->big) : b[k];
            if (!c) break;
            n += (size_t)(a->kind == 'U' && c <= 0x10ffff ? cas__utf8_put(s + n, c) : (s[n] = (char)c, 1));
        }
        cas__out_quoted(p, s, n, a->kind == 'S');
        return;
    }
    cas__fmt_elem((const unsigned char *)a->data->text + at, a->kind, a->isz, a->big, a->dt, t, sizeof t,
                  !a->py_floats);
    cas__out_s(p, t);
}

/* The nested [..] of axis d from storage offset base, the first `items` of each axis. */
static void cas__arr_nest(cas_preview *p, const cas__arr *a, int d, uint64_t base, int depth) {
    uint64_t i, n = a->shape[d], shown = CAS__MIN(n, (uint64_t)p->max_items);
    cas__out_s(p, "[");
    for (i = 0; i < shown && !p->out_full; i++) {
        if (i) cas__out_s(p, ", ");
        if (d + 1 < a->ndim) cas__arr_nest(p, a, d + 1, base + i * a->stride[d], depth);
        else cas__arr_elem(p, a, base + i * a->stride[d], depth);
    }
    if (shown < n) cas__out_s(p, ", ...");
    cas__out_s(p, "]");
}

static void cas__render_ndarray(cas_preview *p, const cas__pv *v, int depth) {
    cas__arr a;
    char dn[64];
    uint64_t total = 1, want;
    int d;
    if (cas__arr_open(p, v, &a) < 0) {
        cas__out_s(p, "array(<no state>)");
        return;
    }
    cas__dtype_name(a.dt, dn, sizeof dn);
    for (d = 0; d < a.ndim; d++)
        total = a.shape[d] && total > UINT64_MAX / a.shape[d] ? UINT64_MAX : total * a.shape[d];
    want = a.isz && total <= UINT64_MAX / a.isz ? total * a.isz : UINT64_MAX;
    cas__out_s(p, "array(");
    if (a.data->kind == CAS__PV_LIST && a.kind == 'O') {
        if (a.data->full != total)
            cas__out_f(p, "<%llu objects for %llu elements>", (unsigned long long)a.data->full,
                       (unsigned long long)total);
        else if (!a.ndim) cas__arr_elem(p, &a, 0, depth);
        else cas__arr_nest(p, &a, 0, 0, depth);
    } else if ((a.data->kind != CAS__PV_BYTES && a.data->kind != CAS__PV_BYTEARRAY) || !a.isz) {
        cas__out_s(p, "<data not understood>");
    } else if (a.data->full != want && !(a.data->flags & CAS__PVF_LATIN1)) {
        cas__out_f(p, "<%llu bytes of data; shape x itemsize says %llu>", (unsigned long long)a.data->full,
                   (unsigned long long)want);
    } else if (!a.ndim) {
        cas__arr_elem(p, &a, 0, depth);
    } else {
        cas__arr_nest(p, &a, 0, 0, depth);
    }
    cas__out_f(p, ", dtype=%s, shape=(", dn);
    for (d = 0; d < a.ndim; d++) cas__out_f(p, d ? ", %llu" : "%llu", (unsigned long long)a.shape[d]);
    cas__out_s(p, a.ndim == 1 ? ",))" : "))");
}

/* ---- rendering: pandas ------------------------------------------------------------------ */

static void cas__render_pandas(cas_preview *p, cas__pv *v, int depth);
/* ---- rendering: everything ------------------------------------------------------------- */

static void cas__out_global(cas_preview *p, const cas__pv *g) { /* module.name, escaped: they come from the pickle */
    const char *nl = (const char *)memchr(g->text, '\n', g->tlen);
    size_t ml = nl ? (size_t)(nl - g->text) : g->tlen;
    cas__out_quoted(p, g->text, ml, CAS__Q_BARE);
    if (nl) {
        cas__out_s(p, ".");
        cas__out_quoted(p, nl + 1, g->tlen - ml - 1, CAS__Q_BARE);
    }
}

static const char *cas__global_name(const cas__pv *g) { /* the part after the module */
    const char *nl = g && g->kind == CAS__PV_GLOBAL ? strchr(g->text, '\n') : NULL;
    return nl ? nl + 1 : "?";
}

/* The items of a container: items shown, ", ..." and how many more. */
static void cas__render_items(cas_preview *p, cas__pv *v, int depth, int pairs) {
    uint32_t k, shown = 0, per = pairs ? 2 : 1;
    uint64_t total = v->full;
    for (k = 0; k + per <= v->nkids && shown < (uint64_t)p->max_items && !p->out_full; k += per, shown++) {
        if (shown) cas__out_s(p, ", ");
        cas__render(p, v->kids[k], depth + 1);
        if (pairs) {
            cas__out_s(p, ": ");
            cas__render(p, v->kids[k + 1], depth + 1);
        }
    }
    if (total > shown) cas__out_f(p, "%s...<%llu more>", shown ? ", " : "", (unsigned long long)(total - shown));
}

/* A generic object from its class (or callable), arguments and pickled state:
 * module.Class(arg, ..., field=value, ...). */
static void cas__render_object(cas_preview *p, cas__pv *v, int depth) {
    cas__pv *cls = cas__pv_kid(v, 0), *args = cas__pv_kid(v, 1), *st = cas__pv_kid(v, 2);
    int any = 0;
    uint32_t k;
    if (cls && cls->kind == CAS__PV_GLOBAL) cas__out_global(p, cls);
    else if (cls) cas__render(p, cls, depth + 1);
    cas__out_s(p, "(");
    if (args && args->kind == CAS__PV_TUPLE && args->full) {
        cas__render_items(p, args, depth, 0);
        any = 1;
    } else if (args && args->kind != CAS__PV_TUPLE && args->kind != CAS__PV_NONE) {
        cas__render(p, args, depth + 1);
        any = 1;
    }
    if (st && st->kind == CAS__PV_TUPLE && st->nkids == 2 && st->kids[0]->kind == CAS__PV_DICT) st = st->kids[0];
    if (st && st->kind == CAS__PV_DICT) { /* __dict__: field=value */
        uint32_t shown = 0;
        for (k = 0; k + 1 < st->nkids && shown < (uint64_t)p->max_items && !p->out_full; k += 2, shown++) {
            if (any) cas__out_s(p, ", ");
            if (st->kids[k]->kind == CAS__PV_STR) cas__out_quoted(p, st->kids[k]->text, st->kids[k]->tlen, CAS__Q_BARE);
            else cas__render(p, st->kids[k], depth + 1);
            cas__out_s(p, "=");
            cas__render(p, st->kids[k + 1], depth + 1);
            any = 1;
        }
        if (st->full > shown) cas__out_f(p, ", ...<%llu more>", (unsigned long long)(st->full - shown));
    } else if (st && st->kind != CAS__PV_NONE) {
        if (any) cas__out_s(p, ", ");
        cas__out_s(p, "state=");
        cas__render(p, st, depth + 1);
    }
    cas__out_s(p, ")");
}

static void cas__render(cas_preview *p, cas__pv *v, int depth) {
    char t[96];
    if (p->out_full || !v) return;
    if (depth > p->max_depth) { /* a scalar's own parts past the depth limit (a datetime whose tzinfo is itself) */
        cas__out_s(p, "...");
        return;
    }
    if (!cas__pv_scalar(v)) {
        if (v->flags & CAS__PVF_SHOWN) { /* shown before (a shared value, or a cycle): its number */
            cas__out_f(p, "#%u#", v->label);
            return;
        }
        if (v->seen > 1) { /* shared: numbered where it is first shown */
            v->label = ++p->next_id;
            cas__out_f(p, "#%u=", v->label);
        }
        if (depth >= p->max_depth) {
            cas__out_f(p, "<%s, %llu item%s>",
                       v->kind == CAS__PV_LIST                                  ? "list"
                       : v->kind == CAS__PV_TUPLE                               ? "tuple"
                       : v->kind == CAS__PV_DICT                                ? "dict"
                       : v->kind == CAS__PV_SET || v->kind == CAS__PV_FROZENSET ? "set"
                                                                                : "object",
                       (unsigned long long)v->full, v->full == 1 ? "" : "s");
            return;
        }
        v->flags |= CAS__PVF_SHOWN;
    }
    switch (v->kind) {
    case CAS__PV_NONE: cas__out_s(p, "None"); break;
    case CAS__PV_BOOL: cas__out_s(p, v->i ? "True" : "False"); break;
    case CAS__PV_INT: cas__out_f(p, "%lld", (long long)v->i); break;
    case CAS__PV_BIGINT:
        if (v->tlen > 60 && v->text[0] != '<') /* a digit cap: the first digits and how many */
            cas__out_f(p, "%.40s...<%llu digits>", v->text, (unsigned long long)(v->tlen - (v->text[0] == '-')));
        else cas__out_put(p, v->text, v->tlen);
        break;
    case CAS__PV_FLOAT:
        cas__fmt_float(v->f, t, sizeof t, 0);
        cas__out_s(p, t);
        break;
    case CAS__PV_COMPLEX: { /* Python: 2j, (1+2j), (1-2j) */
        char im[48];
        cas__fmt_float(v->f2, im, sizeof im, 0);
        if (!strcmp(im + strlen(im) - 2, ".0")) im[strlen(im) - 2] = 0;
        if (v->f == 0 && !signbit(v->f)) cas__out_f(p, "%sj", im);
        else {
            cas__fmt_float(v->f, t, sizeof t, 0);
            if (!strcmp(t + strlen(t) - 2, ".0")) t[strlen(t) - 2] = 0;
            cas__out_f(p, "(%s%s%sj)", t, im[0] == '-' ? "" : "+", im);
        }
        break;
    }
    case CAS__PV_STR:
    case CAS__PV_BYTES:
    case CAS__PV_BYTEARRAY:
        if (v->kind == CAS__PV_BYTEARRAY) cas__out_s(p, "bytearray(");
        cas__out_quoted(p, v->text ? v->text : "", v->tlen,
                        (v->kind != CAS__PV_STR ? CAS__Q_BYTES : CAS__Q_STR) |
                            (v->flags & CAS__PVF_CUT ? CAS__Q_CUT : 0));
        if (v->flags & CAS__PVF_CUT) {
            if (v->flags & CAS__PVF_LATIN1) cas__out_s(p, "...<more>");
            else cas__out_f(p, "...<%llu bytes in all>", (unsigned long long)v->full);
        }
        if (v->kind == CAS__PV_BYTEARRAY) cas__out_s(p, ")");
        break;
    case CAS__PV_TUPLE:
        cas__out_s(p, "(");
        cas__render_items(p, v, depth, 0);
        cas__out_s(p, v->full == 1 ? ",)" : ")");
        break;
    case CAS__PV_LIST:
        cas__out_s(p, "[");
        cas__render_items(p, v, depth, 0);
        cas__out_s(p, "]");
        break;
    case CAS__PV_DICT:
        if (v->sub == CAS__DICT_ORDERED) { /* Python 3.11: OrderedDict([('a', 1)]) */
            uint32_t k, shown = 0;
            cas__out_s(p, "OrderedDict([");
            for (k = 0; k + 1 < v->nkids && shown < (uint64_t)p->max_items && !p->out_full; k += 2, shown++) {
                cas__out_s(p, shown ? ", (" : "(");
                cas__render(p, v->kids[k], depth + 1);
                cas__out_s(p, ", ");
                cas__render(p, v->kids[k + 1], depth + 1);
                cas__out_s(p, ")");
            }
            if (v->full > shown) cas__out_f(p, ", ...<%llu more>", (unsigned long long)(v->full - shown));
            cas__out_s(p, "])");
            break;
        }
        if (v->sub == CAS__DICT_DEFAULT) {
            cas__out_s(p, "defaultdict(");
            if (v->aux && v->aux->kind == CAS__PV_GLOBAL && !strncmp(v->aux->text, "builtins\n", 9)) {
                const char *nm = cas__global_name(v->aux);
                cas__out_s(p, "<class '");
                cas__out_quoted(p, nm, strlen(nm), CAS__Q_BARE);
                cas__out_s(p, "'>");
            } else cas__render(p, v->aux, depth + 1);
            cas__out_s(p, ", ");
        }
        cas__out_s(p, "{");
        cas__render_items(p, v, depth, 1);
        cas__out_s(p, v->sub == CAS__DICT_DEFAULT ? "})" : "}");
        break;
    case CAS__PV_SET:
    case CAS__PV_FROZENSET:
        if (!v->full) {
            cas__out_s(p, v->kind == CAS__PV_SET ? "set()" : "frozenset()");
            break;
        }
        cas__out_s(p, v->kind == CAS__PV_SET ? "{" : "frozenset({");
        cas__render_items(p, v, depth, 0);
        cas__out_s(p, v->kind == CAS__PV_SET ? "}" : "})");
        break;
    case CAS__PV_GLOBAL:
        cas__out_s(p, "<");
        cas__out_global(p, v);
        cas__out_s(p, ">");
        break;
    case CAS__PV_CALL:
    case CAS__PV_OBJ: cas__render_object(p, v, depth); break;
    case CAS__PV_OPAQUE:
        cas__out_s(p, "<");
        cas__out_put(p, v->text, v->tlen);
        cas__out_s(p, ">");
        break;
    case CAS__PV_SLICE:
        cas__out_s(p, "slice(");
        cas__render(p, cas__pv_kid(v, 0), depth + 1);
        cas__out_s(p, ", ");
        cas__render(p, cas__pv_kid(v, 1), depth + 1);
        cas__out_s(p, ", ");
        cas__render(p, cas__pv_kid(v, 2), depth + 1);
        cas__out_s(p, ")");
        break;
    case CAS__PV_DATETIME:
        if (v->aux) { /* tzinfo goes inside the parentheses */
            cas__out_put(p, v->text, v->tlen - 1);
            cas__out_s(p, ", tzinfo=");
            cas__render(p, v->aux, depth + 1);
            cas__out_s(p, ")");
        } else {
            cas__out_put(p, v->text, v->tlen);
        }
        break;
    case CAS__PV_DECIMAL:
        cas__out_s(p, "Decimal(");
        cas__out_quoted(p, v->text, v->tlen, 0);
        cas__out_s(p, ")");
        break;
    case CAS__PV_NDARRAY: cas__render_ndarray(p, v, depth); break;
    case CAS__PV_DTYPE:
        cas__dtype_name(v, t, sizeof t);
        cas__out_f(p, "dtype('%s')", t);
        break;
    case CAS__PV_NPSCALAR: {
        cas__pv *dt = cas__pv_kid(v, 0), *b = cas__pv_kid(v, 1);
        char kind, dn[64];
        size_t isz = cas__dtype_item(dt, &kind);
        cas__dtype_name(dt, dn, sizeof dn);
        if (b && b->kind == CAS__PV_BYTES && isz && b->tlen >= isz && isz <= 16) {
            char e[96];
            cas__fmt_elem((const unsigned char *)b->text, kind, isz, dt->sub == '>', dt, e, sizeof e, 0);
            cas__out_f(p, "numpy.%s(%s)", dn, e);
        } else {
            cas__out_f(p, "numpy.%s(?)", dn);
        }
        break;
    }
    case CAS__PV_PANDAS: cas__render_pandas(p, v, depth); break;
    default: cas__out_s(p, "<?>");
    }
}
/* ---- rendering: pandas (walking the generic values its pickles make) ---------------- */

static cas__pv *cas__dict_get(cas__pv *d, const char *key) {
    uint32_t k;
    if (!d || d->kind != CAS__PV_DICT) return NULL;
    for (k = 0; k + 1 < d->nkids; k += 2)
        if (cas__pv_is_text(d->kids[k], key)) return d->kids[k + 1];
    return NULL;
}

/* The ndarray behind a column or an index's data: an ndarray, or a pandas array
 * backed by one (DatetimeArray: its BUILD state is (dtype, ndarray, attrs)). One
 * hop: a backed array's state holds an ndarray, never another backed array (a
 * pickle can make one hold itself). */
static cas__pv *cas__pd_ndarray(cas__pv *v) {
    if (v && v->kind == CAS__PV_PANDAS && v->sub == CAS__PD_BACKED && v->aux && v->aux->kind == CAS__PV_TUPLE)
        v = cas__pv_kid(v->aux, 1);
    return v && v->kind == CAS__PV_NDARRAY ? v : NULL;
}

#define CAS__PD_LEVELS 8

typedef struct cas__pdix {
    uint64_t len;
    int64_t start, step; /* a RangeIndex */
    cas__pv *arr, *name, *cls;
    int nlev; /* a MultiIndex: each level's values and the codes into them */
    cas__pv *lev[CAS__PD_LEVELS], *codes[CAS__PD_LEVELS];
} cas__pdix;

/* Integer element i of a 1-D integer array (codes), or -1 when it is not there. */
static int64_t cas__arr_int(cas_preview *p, const cas__pv *v, uint64_t i) {
    cas__arr a;
    int64_t at;
    uint64_t u;
    if (!v || cas__arr_open(p, v, &a) < 0 || (a.kind != 'i' && a.kind != 'u') || !a.isz || a.isz > 8 || a.ndim != 1 ||
        i >= a.shape[0] || (at = cas__arr_kept(&a, i)) < 0 || (uint64_t)at + a.isz > a.data->tlen)
        return -1;
    u = cas__load((const unsigned char *)a.data->text + at, a.isz, a.big);
    if (a.kind == 'i' && a.isz < 8 && (u >> (a.isz * 8 - 1)) & 1) return -1; /* negative: a missing value */
    return (int64_t)u;
}

/* The count of a range: |stop - start| / |step|, rounded up, in unsigned arithmetic
 * (int64_t overflows for RangeIndex(-2**63, 2**63 - 1)). */
static uint64_t cas__range_len(int64_t start, int64_t stop, int64_t step) {
    uint64_t span, by;
    if (step > 0 ? stop <= start : stop >= start) return 0;
    span = step > 0 ? (uint64_t)stop - (uint64_t)start : (uint64_t)start - (uint64_t)stop;
    by = step > 0 ? (uint64_t)step : (uint64_t)0 - (uint64_t)step;
    return (span - 1) / by + 1;
}

/* An index from _new_Index(cls, {...}) or _new_DatetimeIndex(cls, {...}). `level`:
 * a MultiIndex's level, which is never a MultiIndex itself (a pickle can make an
 * index its own level). */
static int cas__pd_index(cas_preview *p, cas__pv *ix, cas__pdix *o, int level) {
    cas__pv *cls = NULL, *d = NULL;
    cas__arr a;
    memset(o, 0, sizeof *o);
    if (ix && ix->kind == CAS__PV_PANDAS && ix->sub == CAS__PD_INDEX) cls = cas__pv_kid(ix, 0), d = cas__pv_kid(ix, 1);
    else if (ix && ix->kind == CAS__PV_CALL && cas__pv_kid(ix, 1) && cas__pv_kid(ix, 1)->kind == CAS__PV_TUPLE)
        cls = cas__pv_kid(ix->kids[1], 0), d = cas__pv_kid(ix->kids[1], 1);
    if (!d || d->kind != CAS__PV_DICT) return -1;
    o->cls = cls, o->name = cas__dict_get(d, "name");
    if (cas__pv_is_global(cls, "pandas.core.indexes.range", "RangeIndex")) {
        cas__pv *st = cas__dict_get(d, "start"), *sp = cas__dict_get(d, "stop"), *se = cas__dict_get(d, "step");
        int64_t a0 = st && st->kind == CAS__PV_INT ? st->i : 0, b0 = sp && sp->kind == CAS__PV_INT ? sp->i : 0;
        o->start = a0, o->step = se && se->kind == CAS__PV_INT && se->i ? se->i : 1;
        o->len = cas__range_len(a0, b0, o->step);
        return 0;
    }
    if (cas__pv_is_global(cls, "pandas.core.indexes.multi", "MultiIndex")) {
        if (level) return -1;
        cas__pv *lv = cas__dict_get(d, "levels"), *cd = cas__dict_get(d, "codes");
        o->name = cas__dict_get(d, "names");
        if (!lv || !cd || (lv->kind != CAS__PV_LIST && lv->kind != CAS__PV_TUPLE) || lv->nkids != cd->nkids ||
            !lv->nkids || !cd->kids[0] || cas__arr_open(p, cd->kids[0], &a) < 0 || a.ndim != 1)
            return -1;
        o->len = a.shape[0];
        for (o->nlev = 0; o->nlev < (int)lv->nkids && o->nlev < CAS__PD_LEVELS; o->nlev++) {
            cas__pdix l;
            o->lev[o->nlev] = cas__pd_index(p, lv->kids[o->nlev], &l, 1) < 0 ? NULL : l.arr;
            o->codes[o->nlev] = cd->kids[o->nlev];
        }
        return 0;
    }
    if (!(o->arr = cas__pd_ndarray(cas__dict_get(d, "data"))) || cas__arr_open(p, o->arr, &a) < 0 || a.ndim != 1)
        return -1;
    o->len = a.shape[0];
    return 0;
}

/* A Categorical column (NDArrayBacked, state (CategoricalDtype, codes, attrs)): its categories' array. */
static cas__pv *cas__pd_categories(cas_preview *p, cas__pv *v) {
    cas__pv *dt;
    cas__pdix ix;
    if (!v || v->kind != CAS__PV_PANDAS || v->sub != CAS__PD_BACKED || !v->aux || v->aux->kind != CAS__PV_TUPLE)
        return NULL;
    dt = cas__pv_kid(v->aux, 0);
    if (!dt || dt->kind != CAS__PV_OBJ ||
        !cas__pv_is_global(cas__pv_kid(dt, 0), "pandas.core.dtypes.dtypes", "CategoricalDtype") ||
        cas__pd_index(p, cas__dict_get(cas__pv_kid(dt, 2), "categories"), &ix, 1) < 0)
        return NULL;
    return ix.arr;
}

/* Renders into a small buffer instead of the output (a table's cell). */
static void cas__capture(cas_preview *p, char *buf, size_t cap, void (*fn)(cas_preview *, void *, uint64_t), void *ctx,
                         uint64_t arg) {
    size_t mark = p->olen;
    int64_t lim = p->max_output;
    int full = p->out_full, rc = p->rc;
    char msg[sizeof p->msg];
    memcpy(msg, p->msg, sizeof msg);
    /* room for the text and the marker, so that the cut is on whole characters and seen */
    p->max_output = (int64_t)(mark + (cap > sizeof CAS__PK_MARKER + 8 ? cap - sizeof CAS__PK_MARKER : 8));
    p->out_full = 0;
    fn(p, ctx, arg);
    snprintf(buf, cap, "%.*s", (int)(p->olen - mark), p->out ? p->out + mark : "");
    if (p->out_full) { /* the cell was cut: not the preview's limit */
        char *m = strstr(buf, CAS__PK_MARKER);
        if (m) strcpy(m, "...");
    }
    p->olen = mark;
    if (p->out) p->out[mark] = 0;
    p->max_output = lim, p->out_full = full;
    if (p->rc != CAS_E_NOMEM || rc != CAS_OK) { /* the cell's own limit is not the preview's; memory is */
        p->rc = rc;
        memcpy(p->msg, msg, sizeof msg);
    }
}

typedef struct cas__cellx {
    cas__arr a;
} cas__cellx;

static void cas__cell_elem(cas_preview *p, void *ctx, uint64_t flat) {
    cas__cellx *c = (cas__cellx *)ctx;
    int64_t at = cas__arr_kept(&c->a, flat);
    if (c->a.data->kind == CAS__PV_LIST && at >= 0 && (uint64_t)at < c->a.data->nkids &&
        c->a.data->kids[at]->kind == CAS__PV_STR) { /* pandas shows strings bare; 40 bytes, whole characters */
        const cas__pv *str = c->a.data->kids[at];
        size_t n = CAS__MIN(str->tlen, (size_t)40);
        while (n < str->tlen && n && ((unsigned char)str->text[n] & 0xc0) == 0x80) n--;
        cas__out_quoted(p, str->text, n, CAS__Q_BARE);
    } else cas__arr_elem(p, &c->a, flat, (int)p->max_depth - 1);
}

/* Element i of a 1-D array (an index), or (k, r) of a block's 2-D values, as a cell. */
static void cas__pd_cell(cas_preview *p, cas__pv *arr, uint64_t k, uint64_t r, char *buf, size_t cap) {
    cas__cellx c;
    uint64_t flat;
    if (!arr || cas__arr_open(p, arr, &c.a) < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    c.a.py_floats = 1;
    flat = c.a.ndim == 2 ? k * c.a.stride[0] + r * c.a.stride[1] : r * (c.a.ndim ? c.a.stride[0] : 1);
    if (c.a.ndim > 2 || (c.a.ndim == 2 && (k >= c.a.shape[0] || r >= c.a.shape[1])) ||
        (c.a.ndim == 1 && r >= c.a.shape[0])) {
        snprintf(buf, cap, "?");
        return;
    }
    cas__capture(p, buf, cap, cas__cell_elem, &c, flat);
    if (c.a.kind == 'M' && buf[0] == '\'') { /* datetimes unquoted; midnight as a date, as pandas shows them */
        size_t n = strlen(buf);
        char *z;
        if (n < 2 || buf[n - 1] != '\'') return;
        memmove(buf, buf + 1, n - 2);
        buf[n - 2] = 0;
        if ((z = strchr(buf, 'T')) != NULL) *z = ' ';
        if (z && strspn(z + 1, ":.0") == strlen(z + 1)) *z = 0;
    }
}

/* Row r of a column: its values array, or a Categorical's category at codes[r]. */
static void cas__pd_value(cas_preview *p, cas__pv *col, uint64_t k, uint64_t r, char *buf, size_t cap) {
    cas__pv *cats = cas__pd_categories(p, col);
    if (cats) {
        int64_t code = cas__arr_int(p, cas__pd_ndarray(col), r);
        if (code < 0) snprintf(buf, cap, "NaN");
        else cas__pd_cell(p, cats, 0, (uint64_t)code, buf, cap);
    } else cas__pd_cell(p, cas__pd_ndarray(col), k, r, buf, cap);
}

static void cas__pd_label(cas_preview *p, const cas__pdix *ix, uint64_t i, char *buf, size_t cap) {
    int l;
    size_t n;
    if (ix->nlev) { /* a MultiIndex: (level values) */
        snprintf(buf, cap, "(");
        for (l = 0; l < ix->nlev && (n = strlen(buf)) + 4 < cap; l++) {
            int64_t code = cas__arr_int(p, ix->codes[l], i);
            if (l) snprintf(buf + n, cap - n, ", "), n += 2;
            if (code < 0 || !ix->lev[l]) snprintf(buf + n, cap - n, code < 0 ? "NaN" : "?");
            else cas__pd_cell(p, ix->lev[l], 0, (uint64_t)code, buf + n, cap - n);
        }
        n = strlen(buf);
        snprintf(buf + n, cap - n, ")");
    } else if (!ix->arr) /* start + i * step, wrapping as numbers in two's complement do, never overflowing */
        snprintf(buf, cap, "%lld", (long long)(int64_t)((uint64_t)ix->start + i * (uint64_t)ix->step));
    else cas__pd_cell(p, ix->arr, 0, i, buf, cap);
}

/* A manager's axes and blocks (values array, placement), from either pickled form:
 * BlockManager(blocks, axes) by REDUCE, or __setstate__'s
 * (axes, values, items, {'0.14.1': {'axes': .., 'blocks': [{'values', 'mgr_locs'}]}}). */
typedef struct cas__pdmgr {
    cas__pv *axes;
    cas__pv *values[CAS__PK_KEEP_KIDS], *place[CAS__PK_KEEP_KIDS];
    int nblocks;
} cas__pdmgr;

static int cas__pd_mgr(cas__pv *m, cas__pdmgr *o) {
    uint32_t k;
    memset(o, 0, sizeof *o);
    if (m && m->kind == CAS__PV_PANDAS && m->sub == CAS__PD_MGR) {
        cas__pv *blocks = cas__pv_kid(m, 0);
        o->axes = cas__pv_kid(m, 1);
        for (k = 0; blocks && k < blocks->nkids && o->nblocks < CAS__PK_KEEP_KIDS; k++) {
            cas__pv *b = blocks->kids[k];
            if (b->kind != CAS__PV_PANDAS || b->sub != CAS__PD_BLOCK) continue;
            o->values[o->nblocks] = cas__pv_kid(b, 0), o->place[o->nblocks++] = cas__pv_kid(b, 1);
        }
        return o->axes ? 0 : -1;
    }
    if (m && m->kind == CAS__PV_OBJ && cas__pv_kid(m, 2) && m->kids[2]->kind == CAS__PV_TUPLE) {
        cas__pv *st = m->kids[2], *extra = cas__pv_kid(st, 3), *d = NULL, *bl;
        for (k = 0; extra && extra->kind == CAS__PV_DICT && k + 1 < extra->nkids; k += 2)
            if (extra->kids[k + 1]->kind == CAS__PV_DICT) d = extra->kids[k + 1];
        o->axes = d ? cas__dict_get(d, "axes") : cas__pv_kid(st, 0);
        bl = d ? cas__dict_get(d, "blocks") : NULL;
        for (k = 0; bl && k < bl->nkids && o->nblocks < CAS__PK_KEEP_KIDS; k++) {
            o->values[o->nblocks] = cas__dict_get(bl->kids[k], "values");
            o->place[o->nblocks++] = cas__dict_get(bl->kids[k], "mgr_locs");
        }
        return o->axes ? 0 : -1;
    }
    return -1;
}

/* Which block holds column j, and at which of its rows (2-D values are (columns, rows)).
 * A placement array is searched only through the values it holds: its shape may
 * claim 2**62 of them over 8 bytes. */
static int cas__pd_find(cas_preview *p, const cas__pdmgr *m, uint64_t j, uint64_t *pos) {
    int b;
    for (b = 0; b < m->nblocks; b++) {
        cas__pv *pl = m->place[b];
        if (pl && pl->kind == CAS__PV_SLICE) {
            cas__pv *a = cas__pv_kid(pl, 0), *z = cas__pv_kid(pl, 1), *st = cas__pv_kid(pl, 2);
            int64_t s0 = a && a->kind == CAS__PV_INT ? a->i : 0, s1 = z && z->kind == CAS__PV_INT ? z->i : 0;
            uint64_t sp = st && st->kind == CAS__PV_INT && st->i > 0 ? (uint64_t)st->i : 1;
            uint64_t from = (uint64_t)j - (uint64_t)s0; /* j - s0, which int64_t may not hold */
            if (j <= (uint64_t)INT64_MAX && (int64_t)j >= s0 && (int64_t)j < s1 && from % sp == 0) {
                *pos = from / sp;
                return b;
            }
        } else if (pl && pl->kind == CAS__PV_NDARRAY) { /* an int64 array of column numbers */
            cas__arr a;
            uint64_t i;
            int64_t at;
            if (cas__arr_open(p, pl, &a) < 0 || a.kind != 'i' || a.isz != 8 || a.ndim != 1) continue;
            /* 1-D: what is held is a prefix; the first element not held ends the search */
            for (i = 0; i < a.shape[0] && (at = cas__arr_kept(&a, i)) >= 0 && (uint64_t)at + 8 <= a.data->tlen; i++)
                if (cas__load((const unsigned char *)a.data->text + at, 8, a.big) == j) {
                    *pos = i;
                    return b;
                }
        }
    }
    return -1;
}

#define CAS__PD_CELL 64 /* a table cell: 36 bytes of text, then "..." */

static void cas__pd_dtype(cas_preview *p, cas__pv *col, char *dn, size_t cap) {
    cas__pv *arr = cas__pd_ndarray(col);
    if (cas__pd_categories(p, col)) snprintf(dn, cap, "category");
    else if (arr && arr->nkids) cas__dtype_name(arr->kids[0], dn, cap);
}

static void cas__render_pandas(cas_preview *p, cas__pv *v, int depth) {
    cas__pv *st = cas__pv_kid(v, 1), *mgr;
    cas__pdmgr m;
    cas__pdix cols, rows;
    int frame = v->sub == CAS__PD_FRAME;
    uint64_t nr, nc, r, j, shownr, shownc, pos[CAS__PK_KEEP_KIDS];
    int blk[CAS__PK_KEEP_KIDS]; /* where each shown column is: its block, and its row there */
    char(*cell)[CAS__PD_CELL];
    size_t w[CAS__PK_KEEP_KIDS + 1], ncell;
    if (v->sub == CAS__PD_BLOCK || v->sub == CAS__PD_MGR || v->sub == CAS__PD_INDEX || v->sub == CAS__PD_BACKED ||
        !(mgr = cas__dict_get(st, "_mgr")) || cas__pd_mgr(mgr, &m) < 0 ||
        cas__pd_index(p, cas__pv_kid(m.axes, frame ? 1 : 0), &rows, 0) < 0 ||
        (frame && cas__pd_index(p, cas__pv_kid(m.axes, 0), &cols, 0) < 0)) {
        /* a part of a frame seen alone, or a layout not understood: the generic object */
        cas__out_s(p, v->sub == CAS__PD_FRAME    ? "pandas.DataFrame"
                      : v->sub == CAS__PD_SERIES ? "pandas.Series"
                                                 : "pandas");
        cas__out_s(p, "(<state not understood>)");
        return;
    }
    if (!frame) cols.len = 1, cols.arr = NULL;
    nr = rows.len, nc = cols.len;
    shownr = CAS__MIN(nr, (uint64_t)p->max_items);
    shownc = CAS__MIN(CAS__MIN(nc, (uint64_t)p->max_items), (uint64_t)CAS__PK_KEEP_KIDS); /* w[] */
    for (j = 0; j < shownc; j++) {
        pos[j] = 0;
        blk[j] = frame ? cas__pd_find(p, &m, j, &pos[j]) : 0;
    }
    if (frame) {
        cas__out_f(p, "DataFrame(shape=(%llu, %llu), columns=[", (unsigned long long)nr, (unsigned long long)nc);
        for (j = 0; j < shownc && !p->out_full; j++) {
            char lab[CAS__PD_CELL], dn[64] = "?";
            cas__pd_label(p, &cols, j, lab, sizeof lab);
            if (blk[j] >= 0) cas__pd_dtype(p, m.values[blk[j]], dn, sizeof dn);
            cas__out_f(p, "%s%s: %s", j ? ", " : "", lab, dn);
        }
        if (nc > shownc) cas__out_f(p, ", ...<%llu more>", (unsigned long long)(nc - shownc));
        cas__out_s(p, "])");
    } else {
        cas__pv *name = cas__dict_get(st, "name");
        if (!name) name = cas__dict_get(st, "_name");
        char dn[64] = "?";
        if (m.nblocks) cas__pd_dtype(p, m.values[0], dn, sizeof dn);
        cas__out_s(p, "Series(name=");
        cas__render(p, name, depth + 1);
        cas__out_f(p, ", length=%llu, dtype=%s)", (unsigned long long)nr, dn);
    }
    if (!shownr || depth + 1 >= p->max_depth) return;
    /* the first rows as a table: labels, then one column per shown column */
    ncell = (size_t)((shownr + 1) * (shownc + 1));
    if (!(cell = (char(*)[CAS__PD_CELL])cas__calloc(&p->alloc, ncell * CAS__PD_CELL))) {
        cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        return;
    }
    for (j = 0; j < shownc; j++) {
        if (frame) cas__pd_label(p, &cols, j, cell[j + 1], CAS__PD_CELL);
    }
    for (r = 0; r < shownr; r++) {
        char *row = cell[(r + 1) * (shownc + 1)];
        cas__pd_label(p, &rows, r, row, CAS__PD_CELL);
        for (j = 0; j < shownc; j++) {
            char *c = cell[(r + 1) * (shownc + 1) + j + 1];
            if (blk[j] >= 0 && blk[j] < m.nblocks) cas__pd_value(p, m.values[blk[j]], pos[j], r, c, CAS__PD_CELL);
            else snprintf(c, CAS__PD_CELL, "?");
        }
    }
    for (j = 0; j <= shownc; j++) {
        w[j] = 0;
        for (r = 0; r <= shownr; r++) w[j] = CAS__MAX64(w[j], strlen(cell[r * (shownc + 1) + j]));
    }
    for (r = frame ? 0 : 1; r <= shownr && !p->out_full; r++) { /* a series has no header row */
        cas__out_s(p, "\n");
        for (j = 0; j <= shownc; j++) {
            const char *c = cell[r * (shownc + 1) + j];
            cas__out_f(p, j ? "  %*s" : "%-*s", (int)w[j], c);
        }
        if (nc > shownc) cas__out_s(p, "  ...");
    }
    if (nr > shownr) cas__out_f(p, "\n...<%llu more rows>", (unsigned long long)(nr - shownr));
    cas__free(&p->alloc, cell);
}
/* ---- rendering: a JSON tree for user interfaces --------------------------------------- */

/* A JSON string of UTF-8 text: escapes as JSON wants; bytes that are not UTF-8 become U+FFFD. */
static void cas__json_out_str(cas_preview *p, const char *s, size_t n) {
    size_t i = 0;
    char t[8];
    cas__out_s(p, "\"");
    while (i < n && !p->out_full) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int len;
        if (c == '"' || c == '\\') t[0] = '\\', t[1] = (char)c, cas__out_put(p, t, 2), i++;
        else if (c < 0x20) snprintf(t, sizeof t, "\\u%04x", c), cas__out_s(p, t), i++;
        else if ((len = cas__utf8_seq((const unsigned char *)s + i, n - i, &cp)) != 0)
            cas__out_put(p, s + i, (size_t)len), i += (size_t)len;
        else cas__out_s(p, "\\ufffd"), i++;
    }
    cas__out_s(p, "\"");
}

static void cas__repr_into(cas_preview *p, void *ctx, uint64_t depth) { cas__render(p, (cas__pv *)ctx, (int)depth); }

/* "repr": this value's text (its own sub-budget), for any node a UI shows as text. */
static void cas__json_repr(cas_preview *p, cas__pv *v, int depth) {
    char *buf;
    size_t cap = (size_t)CAS__MIN((uint64_t)p->max_output, (uint64_t)4096) + 1;
    if (!(buf = (char *)cas__alloc(&p->alloc, cap))) {
        cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        return;
    }
    v->flags &= (uint8_t)~CAS__PVF_SHOWN;
    cas__capture(p, buf, cap, cas__repr_into, v, (uint64_t)depth);
    cas__out_s(p, ", \"repr\": ");
    cas__json_out_str(p, buf, strlen(buf));
    cas__free(&p->alloc, buf);
}

static const char *cas__pv_typename(const cas__pv *v) {
    static const char *const names[] = {
        "?",         "None",   "bool",  "int",      "int",     "float",     "complex", "str",          "bytes",
        "bytearray", "tuple",  "list",  "dict",     "set",     "frozenset", "global",  "call",         "object",
        "mark",      "opaque", "slice", "datetime", "Decimal", "ndarray",   "dtype",   "numpy scalar", "pandas"};
    if (v->kind == CAS__PV_PANDAS)
        return v->sub == CAS__PD_FRAME ? "DataFrame" : v->sub == CAS__PD_SERIES ? "Series" : "pandas";
    return v->kind < sizeof names / sizeof names[0] ? names[v->kind] : "?";
}

static void cas__render_json(cas_preview *p, cas__pv *v, int depth) {
    uint32_t k, shown = 0;
    char t[96];
    if (p->out_full || !v) return;
    if (!cas__pv_scalar(v) && (v->flags & CAS__PVF_SHOWN)) {
        cas__out_f(p, "{\"type\": \"ref\", \"ref\": %u}", v->label);
        return;
    }
    cas__out_f(p, "{\"type\": \"%s\"", cas__pv_typename(v));
    if (!cas__pv_scalar(v)) {
        if (v->seen > 1) v->label = ++p->next_id, cas__out_f(p, ", \"id\": %u", v->label);
        v->flags |= CAS__PVF_SHOWN;
    }
    switch (v->kind) {
    case CAS__PV_NONE: break;
    case CAS__PV_BOOL: cas__out_s(p, v->i ? ", \"value\": true" : ", \"value\": false"); break;
    case CAS__PV_INT: cas__out_f(p, ", \"value\": %lld", (long long)v->i); break;
    case CAS__PV_FLOAT:
        cas__fmt_float(v->f, t, sizeof t, 0);
        if (v->f == v->f && v->f != HUGE_VAL && v->f != -HUGE_VAL) cas__out_f(p, ", \"value\": %s", t);
        else cas__out_f(p, ", \"value\": \"%s\"", t);
        break;
    case CAS__PV_STR:
        cas__out_s(p, ", \"value\": ");
        cas__json_out_str(p, v->text, v->tlen);
        cas__out_f(p, ", \"length\": %llu, \"truncated\": %s", (unsigned long long)v->full,
                   v->flags & CAS__PVF_CUT ? "true" : "false");
        break;
    case CAS__PV_TUPLE:
    case CAS__PV_LIST:
    case CAS__PV_SET:
    case CAS__PV_FROZENSET:
    case CAS__PV_DICT: {
        int pairs = v->kind == CAS__PV_DICT;
        if (depth >= p->max_depth) {
            cas__out_f(p, ", \"length\": %llu, \"truncated\": true}", (unsigned long long)v->full);
            return;
        }
        if (v->sub == CAS__DICT_ORDERED) cas__out_s(p, ", \"ordered\": true");
        cas__out_f(p, ", \"length\": %llu, \"items\": [", (unsigned long long)v->full);
        for (k = 0; k + (pairs ? 1 : 0) < v->nkids && shown < (uint64_t)p->max_items && !p->out_full;
             k += pairs ? 2 : 1, shown++) {
            if (shown) cas__out_s(p, ", ");
            if (pairs) cas__out_s(p, "[");
            cas__render_json(p, v->kids[k], depth + 1);
            if (pairs) cas__out_s(p, ", "), cas__render_json(p, v->kids[k + 1], depth + 1), cas__out_s(p, "]");
        }
        cas__out_f(p, "], \"truncated\": %s", v->full > shown ? "true" : "false");
        break;
    }
    case CAS__PV_OBJ:
    case CAS__PV_CALL: {
        cas__pv *cls = cas__pv_kid(v, 0);
        if (cls && cls->kind == CAS__PV_GLOBAL) { /* "module.name", as JSON escapes it */
            char name[512];
            size_t i, n = CAS__MIN(cls->tlen, sizeof name);
            for (i = 0; i < n; i++) name[i] = cls->text[i] == '\n' ? '.' : cls->text[i];
            cas__out_s(p, ", \"class\": ");
            cas__json_out_str(p, name, n);
        }
        v->flags &= (uint8_t)~CAS__PVF_SHOWN;
        cas__json_repr(p, v, depth);
        v->flags |= CAS__PVF_SHOWN;
        break;
    }
    case CAS__PV_NDARRAY: {
        cas__arr a;
        if (cas__arr_open(p, v, &a) == 0) {
            int d;
            cas__dtype_name(a.dt, t, sizeof t);
            cas__out_f(p, ", \"dtype\": \"%s\", \"shape\": [", t);
            for (d = 0; d < a.ndim; d++) cas__out_f(p, d ? ", %llu" : "%llu", (unsigned long long)a.shape[d]);
            cas__out_s(p, "]");
        }
        cas__json_repr(p, v, depth);
        v->flags |= CAS__PVF_SHOWN;
        break;
    }
    default:
        cas__json_repr(p, v, depth);
        if (!cas__pv_scalar(v)) v->flags |= CAS__PVF_SHOWN;
    }
    cas__out_s(p, "}");
}
/* ---- running a preview ----------------------------------------------------------------- */

/* Visits of each shown value, with the renderer's own limits: what is met twice is shared. */
static void cas__pv_count(cas_preview *p, cas__pv *v, int depth, int64_t *budget) {
    uint32_t k, per, shown;
    if (!v || cas__pv_scalar(v) || --*budget < 0) return;
    if (++v->seen > 1 || depth >= p->max_depth) return;
    per = v->kind == CAS__PV_DICT ? 2 : 1;
    for (k = 0, shown = 0; k < v->nkids && (shown < (uint32_t)p->max_items * per || v->kind >= CAS__PV_GLOBAL);
         k++, shown++)
        cas__pv_count(p, v->kids[k], depth + 1, budget);
    cas__pv_count(p, v->aux, depth + 1, budget);
}

/* After a stop short of STOP (a limit, an error, an early stop): the values under
 * construction are closed as they stand, so what was read can be shown. */
static void cas__pk_complete(cas_preview *p) {
    while (p->nmarks) {
        size_t from = p->marks[--p->nmarks];
        cas__pv *below = from ? p->stack[from - 1] : NULL, *t;
        if (from > p->sp) continue;
        if (below && (below->kind == CAS__PV_LIST || below->kind == CAS__PV_SET || below->kind == CAS__PV_FROZENSET)) {
            cas__pk_extend(p, 'e', from, 0);
        } else if (below && below->kind == CAS__PV_DICT && (p->sp - from) % 2 == 0) {
            cas__pk_extend(p, 'u', from, 1);
        } else if ((t = cas__pk_collect(p, CAS__PV_TUPLE, from)) != NULL) {
            if (below && below->kind == CAS__PV_NDARRAY && t->nkids == 5) { /* an array whose data came in: its BUILD */
                cas__pk_build(p, below, t);
                if (p->stopped_early) below->flags |= CAS__PVF_EARLY;
            } else if (cas__pk_push(p, t) < 0) {
                return;
            }
        }
    }
}

/* The JSON tree stays valid JSON whatever stopped it: a tree cut by the output limit
 * is cut back to its last whole value and closed; the root then says why it is not
 * whole ("output_truncated", "limit", "incomplete"). The closing may go a few bytes
 * past CAS_PREVIEW_MAX_OUTPUT. */
static void cas__json_finish(cas_preview *p) {
    char open[256];
    size_t depth = 0, safe = 0, safe_depth = 0, i, n = p->olen;
    int instr = 0, esc = 0, cut = p->out_full;
    if (!p->out || !n || (p->rc == CAS_OK && !cut)) return;
    if (cut) n -= sizeof CAS__PK_MARKER - 1;
    for (i = 0; i < n; i++) {
        char c = p->out[i];
        if (instr) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') instr = 0;
        } else if (c == '"') instr = 1;
        else if (c == '{' || c == '[') {
            if (depth == sizeof open) break;
            open[depth++] = c, safe = i + 1, safe_depth = depth;
        } else if (c == '}' || c == ']') {
            if (depth) depth--;
            safe = i + 1, safe_depth = depth;
        } else if (c == ',') safe = i, safe_depth = depth;
    }
    if (!cut) { /* whole, but not the whole value: reopen the root to say so */
        while (n && p->out[n - 1] != '}') n--;
        if (!n) return;
        safe = n - 1, safe_depth = 1, open[0] = '{';
    }
    if (!safe_depth) return;
    p->olen = safe, p->out[safe] = 0, p->out_full = 0;
    p->max_output = (int64_t)(safe + safe_depth + sizeof p->msg * 2 + 64);
    while (safe_depth > 1) cas__out_s(p, open[--safe_depth] == '{' ? "}" : "]");
    if (open[0] == '{') {
        for (i = p->olen; i && (p->out[i - 1] == ' ' || p->out[i - 1] == '\n'); i--) {
        }
        if (i && p->out[i - 1] != '{') cas__out_s(p, ", ");
        cas__out_s(p, cut ? "\"output_truncated\": true" : p->rc == CAS_E_LIMIT ? "\"limit\": " : "\"incomplete\": ");
        if (!cut) cas__json_out_str(p, p->msg, strlen(p->msg));
        cas__out_s(p, "}");
    } else cas__out_s(p, "]");
}

static void cas__pk_reset(cas_preview *p) {
    size_t i;
    while (p->sp) cas__pv_unref(p, p->stack[--p->sp]);
    for (i = 0; i < p->memo_cap; i++) cas__pv_unref(p, p->memo[i].v);
    cas__free(&p->alloc, p->memo);
    p->memo = NULL, p->memo_cap = p->memo_n = 0;
    cas__pv_unref(p, p->result);
    p->result = NULL;
    while (p->live) cas__pv_destroy(p, p->live); /* cycles, whose counts never reach zero */
    /* a hostile run's stacks are not kept for the next (they would count against its budget) */
    if (p->scap > 1024) cas__free(&p->alloc, p->stack), p->stack = NULL, p->scap = 0;
    if (p->mcap > 1024) cas__free(&p->alloc, p->marks), p->marks = NULL, p->mcap = 0;
    if (p->wcap > 1024) cas__free(&p->alloc, p->work), p->work = NULL, p->wcap = 0;
    p->nmarks = 0, p->proto = 0, p->stopped_early = 0, p->ops = 0;
    p->wpos = p->wlen = 0, p->eof = 0, p->off = 0;
    p->rc = CAS_OK, p->msg[0] = 0, p->mem_over = 0;
    p->olen = 0, p->out_full = 0, p->next_id = 0;
    if (p->out) p->out[0] = 0;
}

CASDEF int cas_preview_run(cas_preview *p, cas_preview_read_fn read, void *user) {
    int64_t budget;
    cas__pv *v;
    if (!p || !read) return CAS_E_ARG;
    cas__pk_reset(p);
    cas__memo_reseed(p);
    p->read = read, p->user = user;
    if (cas__pk_loop(p) == 0 && !p->stopped_early) { /* STOP: nothing may follow it */
        unsigned char c;
        if (p->wpos < p->wlen || (cas__pk_fill(p) > 0 && p->wpos < p->wlen)) {
            c = p->win[p->wpos];
            cas__pk_fail(p, CAS_E_TRAILING, "bytes after the pickle's STOP, at byte %llu (0x%02x)",
                         (unsigned long long)p->off, c);
        }
    }
    if (p->sp && (p->nmarks || p->sp > 1 || p->stopped_early || p->rc != CAS_OK)) cas__pk_complete(p);
    v = p->sp ? p->stack[0] : NULL;
    if (v) { /* the outermost value under construction, or the whole result */
        cas__pv_ref(v);
        p->result = v;
        budget = p->max_output;
        cas__pv_count(p, v, 0, &budget);
        if (p->json) {
            int64_t lim = p->max_output;
            cas__render_json(p, v, 0);
            cas__json_finish(p);
            p->max_output = lim;
        } else {
            cas__render(p, v, 0);
            if (p->rc != CAS_OK && p->rc != CAS_E_LIMIT) cas__out_f(p, " <incomplete: %.200s>", p->msg);
            else if (p->rc == CAS_E_LIMIT && !p->out_full) cas__out_s(p, " <truncated: a limit was reached>");
        }
    } else if (p->json) { /* whole, whatever the limit: JSON is never cut inside (a few hundred bytes) */
        int64_t lim = p->max_output;
        p->max_output = (int64_t)sizeof p->msg * 2 + 64;
        cas__out_s(p, "{\"type\": \"nothing\", \"incomplete\": ");
        cas__json_out_str(p, p->msg, strlen(p->msg));
        cas__out_s(p, "}");
        p->max_output = lim;
    } else if (p->rc != CAS_OK) {
        cas__out_f(p, "<nothing: %.200s>", p->msg);
    } else {
        cas__out_s(p, "<nothing>");
    }
    if (!p->out) cas__out_put(p, "", 0);
    return p->rc;
}

typedef struct cas__membuf {
    const unsigned char *p;
    size_t n, at;
} cas__membuf;

static int cas__read_mem(void *user, void *buf, size_t cap, size_t *got) {
    cas__membuf *m = (cas__membuf *)user;
    size_t k = CAS__MIN(cap, m->n - m->at);
    if (k) memcpy(buf, m->p + m->at, k);
    m->at += k;
    *got = k;
    return CAS_OK;
}

CASDEF int cas_preview_bytes(cas_preview *p, const void *pickle, size_t n) {
    cas__membuf m;
    if (!p || (!pickle && n)) return CAS_E_ARG;
    m.p = (const unsigned char *)pickle, m.n = n, m.at = 0;
    return cas_preview_run(p, cas__read_mem, &m);
}

/* The previewer's rows of the one parameter table type (cas_codecs.h): bounds and
 * the default a new previewer starts with. */
#define CAS__PK_PARAM(id, lo, hi, dflt) CAS__PARAM_DEFAULT(id, CAS__FOR_PREVIEW, lo, hi, dflt)
static const cas__param_row cas__preview_params[] = {
    CAS__PK_PARAM(CAS_PREVIEW_MAX_OUTPUT, 64, (int64_t)1 << 30, 4096),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_ITEMS, 1, 1000, 10),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_DEPTH, 1, 200, 8),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_MEMO, 1, (int64_t)1 << 28, 200000),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_READ, 0, INT64_MAX, 0),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_OPS, 0, INT64_MAX, 0),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_VALUES, 16, (int64_t)1 << 28, 400000),
    CAS__PK_PARAM(CAS_PREVIEW_JSON, 0, 1, 0),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_MEMORY, (int64_t)1 << 20, (int64_t)1 << 40, (int64_t)256 << 20),
};

CASDEF int cas_preview_create(cas_preview **out, const cas_allocator *alloc) {
    cas_preview *p;
    size_t i;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!(p = (cas_preview *)cas__calloc(alloc, sizeof *p))) return CAS_E_NOMEM;
    cas__copy_allocator(&p->user_alloc, alloc);
    p->alloc.alloc = cas__pk_mem_alloc, p->alloc.free = cas__pk_mem_free, p->alloc.user = p;
    for (i = 0; i < sizeof cas__preview_params / sizeof cas__preview_params[0]; i++)
        cas_preview_set_param(p, cas__preview_params[i].id, cas__preview_params[i].dflt);
    if (!(p->win = (unsigned char *)cas__alloc(&p->alloc, CAS__PK_WINDOW))) {
        cas__free(&p->user_alloc, p);
        return CAS_E_NOMEM;
    }
    *out = p;
    return CAS_OK;
}
/* ---- artifacts of other serializers: named, never parsed --------------------------------- */

#define CAS__ENC_HEAD 1024

typedef struct cas__encoded {
    const char *encoding;
    const unsigned char *head;
    size_t n;
    int cut;
    int64_t size;
} cas__encoded;

static void cas__encoded_text(cas_preview *p, void *ctx, uint64_t depth) {
    const cas__encoded *e = (const cas__encoded *)ctx;
    (void)depth;
    cas__out_s(p, "<");
    cas__out_quoted(p, e->encoding, strlen(e->encoding), CAS__Q_STR);
    cas__out_s(p, " artifact, not a pickle");
    if (e->size >= 0) cas__out_f(p, ", %lld bytes", (long long)e->size);
    cas__out_s(p, ": ");
    cas__out_quoted(p, (const char *)e->head, e->n, CAS__Q_BYTES | (e->cut ? CAS__Q_CUT : 0));
    cas__out_s(p, e->cut ? "...>" : ">");
}

CASDEF int cas_preview_encoded(cas_preview *p, const char *encoding, int64_t size, cas_preview_read_fn read,
                               void *user) {
    unsigned char head[CAS__ENC_HEAD + 1];
    size_t want, got;
    cas__encoded e;
    int rc = CAS_OK;
    if (!p || !encoding || !read) return CAS_E_ARG;
    cas__pk_reset(p);
    want = (size_t)CAS__MIN((uint64_t)p->max_items * 8, (uint64_t)CAS__ENC_HEAD);
    e.encoding = encoding, e.head = head, e.n = 0, e.size = size;
    while (e.n <= want && rc == CAS_OK) { /* one byte past the head: whether it is all */
        if ((rc = read(user, head + e.n, want + 1 - e.n, &got)) < 0 || !got) break;
        e.n += got;
    }
    e.cut = e.n > want;
    if (e.cut) e.n = want;
    p->off = e.n;
    if (rc < 0) cas__pk_fail(p, rc, "reading the artifact: %s", cas_strerror(rc));
    if (p->json) { /* cut by the output limit as a pickle's tree is: back to a whole value, closed */
        char buf[4200];
        int64_t lim = p->max_output;
        cas__capture(p, buf, sizeof buf, cas__encoded_text, &e, 0);
        cas__out_s(p, "{\"type\": \"encoded\", \"encoding\": ");
        cas__json_out_str(p, encoding, strlen(encoding));
        if (size >= 0) cas__out_f(p, ", \"size\": %lld", (long long)size);
        else cas__out_s(p, ", \"size\": null");
        cas__out_s(p, ", \"repr\": ");
        cas__json_out_str(p, buf, strlen(buf));
        cas__out_s(p, "}");
        cas__json_finish(p);
        p->max_output = lim;
    } else {
        cas__encoded_text(p, &e, 0);
    }
    if (!p->out) cas__out_put(p, "", 0);
    return p->rc;
}

CASDEF int cas_preview_set_param(cas_preview *p, int param, int64_t v) {
    int rc;
    if (!p) return CAS_E_ARG;
    if ((rc = cas__param_check(CAS__PARAM_FIND(cas__preview_params, param), CAS__FOR_PREVIEW, v)) < 0) return rc;
    switch (param) {
    case CAS_PREVIEW_MAX_OUTPUT: p->max_output = v; break;
    case CAS_PREVIEW_MAX_ITEMS: p->max_items = v; break;
    case CAS_PREVIEW_MAX_DEPTH: p->max_depth = v; break;
    case CAS_PREVIEW_MAX_MEMO: p->max_memo = v; break;
    case CAS_PREVIEW_MAX_READ: p->max_read = v; break;
    case CAS_PREVIEW_MAX_OPS: p->max_ops = v; break;
    case CAS_PREVIEW_MAX_VALUES: p->max_values = v; break;
    case CAS_PREVIEW_MAX_MEMORY: p->max_memory = v; break;
    default: p->json = v; break;
    }
    return CAS_OK;
}

CASDEF const char *cas_preview_text(const cas_preview *p, size_t *len) {
    if (len) *len = p && p->out ? p->olen : 0;
    return p && p->out ? p->out : "";
}

CASDEF const char *cas_preview_message(const cas_preview *p) { return p ? p->msg : ""; }
CASDEF uint64_t cas_preview_bytes_read(const cas_preview *p) { return p ? p->off : 0; }

CASDEF void cas_preview_free(cas_preview *p) {
    cas_allocator a;
    if (!p) return;
    cas__pk_reset(p);
    cas__free(&p->alloc, p->stack);
    cas__free(&p->alloc, p->marks);
    cas__free(&p->alloc, p->work);
    cas__free(&p->alloc, p->win);
    a = p->user_alloc;
    cas__free(&a, p->out);
    cas__free(&a, p);
}

#ifndef CAS_NO_STORE
static int cas__read_stream(void *user, void *buf, size_t cap, size_t *got) {
    return cas_stream_read((cas_stream *)user, buf, cap, got);
}

CASDEF int cas_stream_preview(cas_stream *st, cas_preview *p) {
    int rc;
    if (!st || !p) return CAS_E_ARG;
    rc = cas_preview_run(p, cas__read_stream, st);
    if (rc < 0 && cas_stream_message(st)[0] && (rc == CAS_E_IO || p->rc == rc) && strstr(p->msg, "reading the pickle"))
        snprintf(p->msg, sizeof p->msg, "%s", cas_stream_message(st)); /* the blob's own error, in its words */
    return rc;
}

/* A blob of a store previewed as a pickle (encoding NULL) or as another serializer's
 * bytes; no preview ("" and the reason) when the blob cannot be opened. */
static int cas__store_preview_as(cas_store *s, const char *flow, const char *key, const char *encoding, int64_t size,
                                 cas_preview *p, char *err, size_t errcap) {
    cas_stream *st;
    int rc;
    if (!p) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if ((rc = cas_stream_open(s, flow, key, &st, err, errcap)) < 0) {
        cas__pk_reset(p);
        p->rc = rc;
        snprintf(p->msg, sizeof p->msg, "%s", err && errcap ? err : cas_strerror(rc));
        return rc;
    }
    rc = encoding ? cas_preview_encoded(p, encoding, size, cas__read_stream, st) : cas_stream_preview(st, p);
    if (rc < 0) cas__serr(err, errcap, rc, "blob %s of flow %s: %s", key, flow, cas_preview_message(p));
    cas_stream_close(st);
    return rc;
}

CASDEF int cas_store_preview_encoded(cas_store *s, const char *flow, const char *key, const char *encoding,
                                     int64_t size, cas_preview *p, char *err, size_t errcap) {
    if (!encoding) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    return cas__store_preview_as(s, flow, key, encoding, size, p, err, errcap);
}


CASDEF int cas_store_preview(cas_store *s, const char *flow, const char *key, cas_preview *p, char *err,
                             size_t errcap) {
    return cas__store_preview_as(s, flow, key, NULL, -1, p, err, errcap);
}
#endif
#ifdef __cplusplus
}
#endif
#endif /* CAS_PICKLE_IMPLEMENTATION */
