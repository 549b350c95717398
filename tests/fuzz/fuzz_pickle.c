/* fuzz_pickle: hostile pickles through cas_pickle.h's previewer.
 *
 * Input: byte 0 = mode (bit 0: JSON; bits 1-2: items 1/3/10/40; bits 3-4: depth
 * 2/4/8/12; bits 5-7: output limit 64 << k); byte 1 = read-size schedule of the
 * second run (0: whole windows, else 1..255 bytes a call); bytes 2-3 = memo and
 * value limits (0: defaults); the rest is the pickle, or with byte 3 = 0xff a
 * program for pickle_gen.h, which builds numpy and pandas values, references and
 * cycles, lying shapes and lengths (the values limit then stays at its default).
 *
 * Checks: no crash, leak or read past the input; the status is one of the
 * documented ones and a message is set exactly when it is not CAS_OK; the text
 * is NUL-terminated, as long as it says, valid UTF-8, within the output limit
 * (plus the marker; JSON's closing may add a few bytes) and never empty; a JSON
 * preview parses as JSON with an object at its root; bytes read never exceed
 * the input; memory stays bounded by the input and by CAS_PREVIEW_MAX_MEMORY (an
 * allocator counts every byte, the text and the size words aside); a second run reading the same bytes in other slices gives the same status and
 * text; a preview object can be run again.
 */
#include "fuzz_common.h"
#define CAS_PICKLE_IMPLEMENTATION
#include "../../cas_pickle.h"
#include "pickle_gen.h"

#define FZ_MEMORY ((size_t)8 << 20) /* the budget the runs get: what a pickle may hold */

typedef struct fz_alloc {
    size_t now, peak;
} fz_alloc;

static void *fz_malloc(void *user, size_t n) {
    fz_alloc *a = (fz_alloc *)user;
    size_t *b = (size_t *)malloc(n + sizeof(size_t) * 2);
    if (!b) return NULL;
    b[0] = n;
    a->now += n;
    if (a->now > a->peak) a->peak = a->now;
    return b + 2;
}

static void fz_free(void *user, void *ptr) {
    fz_alloc *a = (fz_alloc *)user;
    size_t *b;
    if (!ptr) return;
    b = (size_t *)ptr - 2;
    a->now -= b[0];
    free(b);
}

typedef struct fz_src {
    const uint8_t *p;
    size_t n, at, slice;
    const char *enc; /* set: an artifact of another serializer (cas_preview_encoded) */
} fz_src;

static int fz_read(void *user, void *buf, size_t cap, size_t *got) {
    fz_src *s = (fz_src *)user;
    size_t k = s->n - s->at;
    if (k > cap) k = cap;
    if (s->slice && k > s->slice) k = s->slice;
    memcpy(buf, s->p + s->at, k);
    s->at += k;
    *got = k;
    return CAS_OK;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xbf;
        size_t len = c < 0x80                 ? 1
                     : c >= 0xc2 && c <= 0xdf ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        size_t k;
        if (!len || i + len > n) return 0;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        for (k = 1; k < len; k++) {
            if (s[i + k] < (k == 1 ? lo : 0x80) || s[i + k] > (k == 1 ? hi : 0xbf)) return 0;
        }
        i += len;
    }
    return 1;
}

static void run(cas_preview *p, fz_src *src, int *rc, char **text, size_t *len) {
    const char *t;
    src->at = 0;
    *rc = src->enc ? cas_preview_encoded(p, src->enc, (int64_t)src->n, fz_read, src) : cas_preview_run(p, fz_read, src);
    t = cas_preview_text(p, len);
    FUZZ_ASSERT(t != NULL && strlen(t) == *len, "text of %zu bytes, strlen %zu", *len, t ? strlen(t) : 0);
    *text = (char *)malloc(*len + 1);
    memcpy(*text, t, *len + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t mode = fz_u8(&in), sched = fz_u8(&in), memo = fz_u8(&in), vals = fz_u8(&in);
    static const int items[4] = {1, 3, 10, 40},
                     depth[4] = {2, 4, 8, 12}; /* JSON nests 3 deep a level: cas.h's parser takes 64 */
    int json = mode & 1, rc, rc2;
    int64_t limit = (int64_t)64 << (mode >> 5);
    fz_alloc counts = {0, 0};
    cas_allocator al;
    cas_preview *p;
    fz_src src;
    fuzz_buf gen = {NULL, 0, 0};
    char *t1, *t2, encname[25];
    size_t n1, n2, slack;
    const char *msg;

    al.alloc = fz_malloc, al.free = fz_free, al.user = &counts;
    FUZZ_ASSERT(cas_preview_create(&p, &al) == CAS_OK, "create");
    FUZZ_ASSERT(cas_preview_set_param(p, CAS_PREVIEW_MAX_ITEMS, items[(mode >> 1) & 3]) == CAS_OK, "items");
    FUZZ_ASSERT(cas_preview_set_param(p, CAS_PREVIEW_MAX_DEPTH, depth[(mode >> 3) & 3]) == CAS_OK, "depth");
    FUZZ_ASSERT(cas_preview_set_param(p, CAS_PREVIEW_MAX_OUTPUT, limit) == CAS_OK, "output");
    FUZZ_ASSERT(cas_preview_set_param(p, CAS_PREVIEW_JSON, json) == CAS_OK, "json");
    if (memo) FUZZ_ASSERT(cas_preview_set_param(p, CAS_PREVIEW_MAX_MEMO, memo * 16) == CAS_OK, "memo");
    if (vals && vals != 0xff)
        FUZZ_ASSERT(cas_preview_set_param(p, CAS_PREVIEW_MAX_VALUES, vals * 64) == CAS_OK, "values");
    FUZZ_ASSERT(cas_preview_set_param(p, CAS_PREVIEW_MAX_MEMORY, (int64_t)FZ_MEMORY) == CAS_OK, "memory");
    if (vals == 0xff) { /* a program: the pickle it builds */
        pg_generate(in.p, in.n, &gen);
        in.p = gen.p, in.n = gen.len;
        fuzz_log("generated %zu bytes\n", gen.len);
    }
    src.p = in.p, src.n = in.n, src.slice = 0, src.enc = NULL;
    if (memo == 0xfe) { /* another serializer's artifact: its first bytes name it (hostile quotes and all) */
        size_t k = in.n < 24 ? in.n : 24;
        memcpy(encname, in.p, k), encname[k] = 0;
        src.enc = encname;
        src.p = in.p + k, src.n = in.n - k;
    }

    run(p, &src, &rc, &t1, &n1);
    msg = cas_preview_message(p);
    fuzz_log("%s (%s), %llu bytes read: %s\n", cas_status_name(rc), msg, (unsigned long long)cas_preview_bytes_read(p),
             t1);
    FUZZ_ASSERT(rc == CAS_OK || rc == CAS_E_LIMIT || rc == CAS_E_CORRUPT || rc == CAS_E_TRUNCATED ||
                    rc == CAS_E_TRAILING,
                "status %s", cas_status_name(rc));
    FUZZ_ASSERT((rc == CAS_OK) == (msg[0] == 0), "status %s with message '%s'", cas_status_name(rc), msg);
    FUZZ_ASSERT(n1 > 0, "empty preview (%s)", cas_status_name(rc));
    FUZZ_ASSERT(utf8_ok((const unsigned char *)t1, n1), "not UTF-8: %s", t1);
    slack = sizeof " <truncated: output limit>" + (json ? 2 * 512 + 400 : 220); /* markers, JSON's closing */
    FUZZ_ASSERT(n1 <= (size_t)limit + slack, "%zu bytes of text for a limit of %lld", n1, (long long)limit);
    FUZZ_ASSERT(cas_preview_bytes_read(p) <= in.n, "read %llu of %zu bytes",
                (unsigned long long)cas_preview_bytes_read(p), in.n);
    FUZZ_ASSERT(!src.enc || cas_preview_bytes_read(p) <= 1024, "an encoded artifact read past its head");
    FUZZ_ASSERT(counts.peak <= ((size_t)1 << 20) + 1024 * in.n, "peak memory %zu for %zu input bytes", counts.peak,
                in.n);
    /* the budget counts payloads; each block has a 16-byte size word before it (and one of ours) */
    FUZZ_ASSERT(counts.peak <= FZ_MEMORY / 2 * 3 + (size_t)limit * 2 + 4096, "peak memory %zu past the budget",
                counts.peak);
    if (json) {
        cas__json j;
        FUZZ_ASSERT(cas__json_parse(&j, t1, n1, NULL) == CAS_OK, "not JSON: %s", t1);
        FUZZ_ASSERT(j.count > 0 && j.t[0].type == CAS__J_OBJ, "the root is not an object: %s", t1);
        cas__json_free(&j);
    }

    /* the same bytes in other slices: the same preview */
    src.slice = sched;
    run(p, &src, &rc2, &t2, &n2);
    FUZZ_ASSERT(rc2 == rc && n2 == n1 && !memcmp(t1, t2, n1), "slices of %u: %s '%s' vs %s '%s'", sched,
                cas_status_name(rc2), t2, cas_status_name(rc), t1);
    free(t1), free(t2);
    fb_free(&gen);
    cas_preview_free(p);
    FUZZ_ASSERT(counts.now == 0, "%zu bytes not freed", counts.now);
    return 0;
}
