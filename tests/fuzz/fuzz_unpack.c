/* fuzz_unpack: sidecar + sniff + one-shot unpack of v1 (gzip), v2 (LZ4 frame),
 * raw and legacy blobs.
 *
 * Input: [sidecar][flags][oom][blob...]
 *   sidecar  index into fuzz_sidecars (none / v1 / v2 / raw / malformed ones)
 *   flags    bits 0-1 gzip backend (0 auto, 1 zlib, 2 ISA-L, 3 auto);
 *            bit 2 CAS_PARAM_STRICT; bit 3 limit 64 KiB instead of 1 MiB;
 *            bit 4 no name; bit 5 no limit at all when the blob is under 1 KiB;
 *            bit 6 also run a pass whose allocator fails at allocation #oom
 *   oom      which allocation fails in that pass
 *
 * Checks: cas_reader_unpack never crashes, hangs or leaks, never returns more
 * than the limit, reports errors with a message; on success the bytes verify
 * against their own SHA-1 and XXH3 keys (verify on read), a wrong key gives
 * CAS_E_HASH, unpack_into agrees (exact room: CAS_DONE; one byte short:
 * CAS_NEED_OUTPUT, then a retry on the same reader succeeds), and
 * CAS_PARAM_EXPECT_SIZE accepts the right size and rejects another; cas_unpack_many
 * asked for sizes alone answers the size the blob states.
 */
#include "fuzz_common.h"

#define NAME "FuzzFlow/data/a9/a9993e364706816aba3e25717850c26c9cd0d89d"

typedef struct oom_state {
    unsigned long count, fail_at;
} oom_state;

static void *oom_alloc(void *user, size_t n) {
    oom_state *s = (oom_state *)user;
    if (++s->count == s->fail_at) return NULL;
    return malloc(n);
}
static void oom_free(void *user, void *p) {
    (void)user;
    free(p);
}

static void setup(cas_reader *r, unsigned flags, int64_t limit) {
    int backend = (int)(flags & 3) == 3 ? CAS_BACKEND_AUTO : (int)(flags & 3);
    FUZZ_ASSERT(cas_reader_set_param(r, CAS_PARAM_GZIP_BACKEND, backend) == CAS_OK, "backend %d", backend);
    FUZZ_ASSERT(cas_reader_set_param(r, CAS_PARAM_STRICT, (flags >> 2) & 1) == CAS_OK, "strict");
    FUZZ_ASSERT(cas_reader_set_param(r, CAS_PARAM_LIMIT, limit) == CAS_OK, "limit");
}

static int begin(cas_reader *r, const char *meta, const char *name, const char *key) {
    return cas_reader_begin(r, meta, meta ? strlen(meta) : 0, name, key);
}

/* A pass whose allocator fails once: any outcome but a crash or a leak is fine,
 * and a success must still give the right bytes. */
static void oom_pass(const char *meta, const char *name, unsigned flags, int64_t limit, const uint8_t *blob, size_t n,
                     unsigned long fail_at, const void *want, size_t want_len, int want_ok) {
    oom_state st;
    cas_allocator a;
    cas_reader *r = NULL;
    void *out = NULL;
    size_t len = 0;
    int rc;
    st.count = 0, st.fail_at = fail_at;
    a.alloc = oom_alloc, a.free = oom_free, a.user = &st;
    if (cas_reader_create(&r, &a) != CAS_OK) {
        FUZZ_ASSERT(r == NULL, "failed create left a reader");
        return;
    }
    setup(r, flags, limit);
    rc = begin(r, meta, name, NULL);
    if (rc == CAS_OK) {
        rc = cas_reader_unpack(r, blob, n, &out, &len);
        if (rc == CAS_DONE) {
            FUZZ_ASSERT(want_ok, "succeeded under allocation failure #%lu where the normal pass failed", fail_at);
            FUZZ_ASSERT(len == want_len && (!len || !memcmp(out, want, len)),
                        "different bytes under allocation failure #%lu", fail_at);
            cas_reader_free_buffer(r, out);
        } else {
            FUZZ_ASSERT(rc < 0, "unpack returned %d", rc);
            FUZZ_ASSERT(out == NULL, "failed unpack left a buffer");
        }
    }
    cas_reader_free(r);
}

/* cas_unpack_v2_fd, the file path for large v2 blobs, is an accelerator of the
 * general decoder: where it succeeds the general path must give the same bytes
 * (or stop at its own limit); where the general path succeeds, it may decline. */
static void direct_agrees(cas_reader *r, const uint8_t *blob, size_t n, int rc, const void *out, size_t len) {
    char path[] = "/tmp/fuzz_unpack_XXXXXX";
    int fd, drc;
    size_t cap = (size_t)4 << 20, got = 0;
    void *dst;
    if (cas_reader_format(r) != CAS_FORMAT_V2) return;
    if ((fd = mkstemp(path)) < 0) return;
    unlink(path);
    if (write(fd, blob, n) != (ssize_t)n || !(dst = malloc(cap))) {
        close(fd);
        return;
    }
    drc = cas_unpack_v2_fd(fd, dst, cap, &got);
    fuzz_log("direct: %s, %zu bytes\n", cas_status_name(drc), got);
    if (drc == CAS_OK)
        FUZZ_ASSERT(rc == CAS_E_LIMIT || (rc == CAS_DONE && got == len && (!len || !memcmp(dst, out, len))),
                    "the file path decoded %zu bytes where the reader gave %s, %zu bytes", got, cas_status_name(rc),
                    len);
    else FUZZ_ASSERT(got == 0 && drc < 0, "the file path failed (%s) but says %zu bytes", cas_status_name(drc), got);
    { /* the batch call: each item as the call alone, on two threads */
        int fds[2], st[2], mrc;
        void *dsts[2];
        size_t caps[2], gots[2];
        fds[0] = fds[1] = fd, caps[0] = caps[1] = cap / 2;
        dsts[0] = dst, dsts[1] = (char *)dst + cap / 2;
        mrc = cas_unpack_v2_fd_many(2, fds, dsts, caps, gots, st, 2);
        if (drc == CAS_OK && got <= cap / 2)
            FUZZ_ASSERT(mrc == CAS_OK && gots[0] == got && gots[1] == got &&
                            (rc != CAS_DONE || !got || (!memcmp(dst, out, got) && !memcmp(dsts[1], out, got))),
                        "the batch file path gave %s, %zu and %zu bytes, where alone it decoded %zu",
                        cas_status_name(mrc), gots[0], gots[1], got);
        else
            FUZZ_ASSERT(mrc != CAS_OK && st[0] == mrc && st[1] == mrc,
                        "the batch file path gave %s (%s, %s) where alone %s", cas_status_name(mrc),
                        cas_status_name(st[0]), cas_status_name(st[1]), cas_status_name(drc));
    }
    free(dst);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in;
    const char *meta, *name;
    unsigned flags, oom;
    int64_t limit;
    cas_reader *r;
    void *out = NULL;
    size_t len = 0;
    int rc, rc_into;
    const uint8_t *blob;
    size_t n;
    uint64_t hint;
    char msg1[512];

    in.p = data, in.n = size;
    meta = fuzz_sidecars[fz_u8(&in) % FUZZ_NSIDECARS];
    flags = fz_u8(&in);
    oom = fz_u8(&in);
    blob = in.p, n = in.n;
    name = (flags & 16) ? NULL : NAME;
    limit = (flags & 8) ? 64 << 10 : 1 << 20;
    if ((flags & 32) && n < 1024) limit = 0; /* 1 KiB decodes to at most ~1 MiB */

    FUZZ_ASSERT(cas_reader_create(&r, NULL) == CAS_OK, "create");
    setup(r, flags, limit);

    rc = begin(r, meta, name, NULL);
    if (rc < 0) {
        fuzz_log("begin: %s %s\n", cas_status_name(rc), cas_reader_message(r));
        /* the sidecar itself is refused: a message, and the reader stays failed */
        FUZZ_ASSERT(cas_reader_message(r)[0] != 0, "begin failed with %d but no message", rc);
        FUZZ_ASSERT(cas_reader_unpack(r, blob, n, &out, &len) == rc, "failed reader did not stay failed");
        FUZZ_ASSERT(out == NULL && len == 0, "failed reader produced output");
        cas_reader_free(r);
        return 0;
    }
    FUZZ_ASSERT(rc == CAS_OK, "begin returned %d", rc);
    { /* cas_unpack_many asked for sizes alone: what size_hint states (decoded into no
         room when it states none) */
        int fmt = cas_reader_format(r), st = 1;
        const void *ins[1];
        size_t lens[1], sz[1] = {7};
        int hrc = cas_reader_size_hint(r, blob, n, &hint);
        ins[0] = blob, lens[0] = n;
        rc = cas_unpack_many(1, &fmt, ins, lens, NULL, NULL, sz, NULL, &st, 1);
        FUZZ_ASSERT(rc == st, "cas_unpack_many returned %d, its item %d", rc, st);
        if (hrc == CAS_OK && hint)
            FUZZ_ASSERT(st == CAS_NEED_OUTPUT && sz[0] == hint, "sizes alone: %s, %zu where the blob states %llu",
                        cas_status_name(st), sz[0], (unsigned long long)hint);
        else
            FUZZ_ASSERT(st == CAS_OK ? sz[0] == 0 : st == CAS_NEED_OUTPUT || st < 0, "sizes alone: %s, %zu",
                        cas_status_name(st), sz[0]);
    }

    rc = cas_reader_unpack(r, blob, n, &out, &len);
    fuzz_log("sidecar %s flags %#x: %s, %zu bytes %s\n", meta ? meta : "(none)", flags, cas_status_name(rc), len,
             cas_reader_message(r));
    direct_agrees(r, blob, n, rc, out, len);
    if (rc != CAS_DONE) {
        void *dst;
        size_t cap = limit ? (size_t)limit + 1 : (size_t)2 << 20, got = 0;
        FUZZ_ASSERT(rc < 0, "cas_reader_unpack returned %d (%s)", rc, cas_status_name(rc));
        FUZZ_ASSERT(out == NULL && len == 0, "failed unpack returned output");
        FUZZ_ASSERT(cas_reader_message(r)[0] != 0, "unpack failed with %s but no message", cas_status_name(rc));
        snprintf(msg1, sizeof msg1, "%s", cas_reader_message(r));
        /* unpack_into with all the room the limit allows must fail too */
        dst = malloc(cap);
        FUZZ_ASSERT(begin(r, meta, name, NULL) == CAS_OK, "begin again");
        rc_into = cas_reader_unpack_into(r, blob, n, dst, cap, &got);
        FUZZ_ASSERT(rc_into != CAS_DONE, "unpack failed with %s (%s) but unpack_into(cap %zu) succeeded with %zu bytes",
                    cas_status_name(rc), msg1, cap, got);
        /* cas_reader_decode (begin + unpack_into) agrees, and its reason is the message's tail */
        got = 0;
        rc_into = cas_reader_decode(r, meta, meta ? strlen(meta) : 0, name, NULL, blob, n, dst, cap, &got);
        FUZZ_ASSERT(rc_into != CAS_DONE, "unpack failed with %s (%s) but cas_reader_decode succeeded",
                    cas_status_name(rc), msg1);
        if (cas_reader_message(r)[0]) { /* a genuine failure, not a tolerated success */
            const char *m = cas_reader_message(r), *why = cas_reader_reason(r);
            size_t ml = strlen(m), wl = strlen(why);
            FUZZ_ASSERT(wl && wl <= ml && !strcmp(m + ml - wl, why), "reason '%s' is not the end of message '%s'", why,
                        m);
        }
        free(dst);
        if ((flags & 64) && oom) oom_pass(meta, name, flags, limit, blob, n, oom, NULL, 0, 0);
        cas_reader_free(r);
        return 0;
    }

    FUZZ_ASSERT(!limit || len <= (size_t)limit, "%zu bytes over the limit %lld", len, (long long)limit);
    FUZZ_ASSERT(cas_reader_total_out(r) == len, "total_out %llu != %zu", (unsigned long long)cas_reader_total_out(r),
                len);
    FUZZ_ASSERT(len == 0 || out != NULL, "no buffer for %zu bytes", len);
    {
        char key[CAS_KEY_BUF], xkey[CAS_KEY_BUF], bad[CAS_KEY_BUF];
        void *out2 = NULL, *dst;
        size_t len2 = 0, got = 0;
        int fmt = cas_reader_format(r);
        FUZZ_ASSERT(fmt == CAS_FORMAT_V1 || fmt == CAS_FORMAT_V2 || fmt == CAS_FORMAT_RAW || fmt == CAS_FORMAT_LEGACY,
                    "format %d", fmt);
        FUZZ_ASSERT(cas_hash(CAS_HASH_SHA1, out, len, key) == CAS_OK, "hash");

        /* verify on read with the right key */
        FUZZ_ASSERT(begin(r, meta, name, key) == CAS_OK, "begin with key");
        rc = cas_reader_unpack(r, blob, n, &out2, &len2);
        FUZZ_ASSERT(rc == CAS_DONE, "second pass with key %s: %s (%s)", key, cas_status_name(rc),
                    cas_reader_message(r));
        FUZZ_ASSERT(len2 == len && (!len || !memcmp(out, out2, len)), "second pass gave other bytes");
        cas_reader_free_buffer(r, out2);

        /* and with an XXH3-128 key */
        FUZZ_ASSERT(cas_hash(CAS_HASH_XXH3, out, len, xkey) == CAS_OK, "xxh3");
        FUZZ_ASSERT(begin(r, meta, name, xkey) == CAS_OK, "begin with xxh3 key");
        out2 = NULL;
        rc = cas_reader_unpack(r, blob, n, &out2, &len2);
        FUZZ_ASSERT(rc == CAS_DONE, "xxh3 pass: %s (%s)", cas_status_name(rc), cas_reader_message(r));
        cas_reader_free_buffer(r, out2);

        /* a wrong key */
        memcpy(bad, key, sizeof bad);
        bad[7] = bad[7] == '0' ? '1' : '0';
        FUZZ_ASSERT(begin(r, meta, name, bad) == CAS_OK, "begin with a wrong key");
        out2 = NULL;
        rc = cas_reader_unpack(r, blob, n, &out2, &len2);
        FUZZ_ASSERT(rc == CAS_E_HASH, "wrong key gave %s", cas_status_name(rc));
        FUZZ_ASSERT(out2 == NULL, "hash failure returned a buffer");

        /* unpack_into with exactly the room, and the expected size */
        dst = malloc(len + 1);
        FUZZ_ASSERT(begin(r, meta, name, key) == CAS_OK, "begin");
        FUZZ_ASSERT(cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, (int64_t)len) == CAS_OK, "expect");
        rc = cas_reader_unpack_into(r, blob, n, dst, len, &got);
        FUZZ_ASSERT(rc == CAS_DONE, "unpack_into(exact cap %zu): %s (%s)", len, cas_status_name(rc),
                    cas_reader_message(r));
        FUZZ_ASSERT(got == len && (!len || !memcmp(dst, out, len)), "unpack_into gave other bytes");

        /* one byte short: CAS_NEED_OUTPUT, then a retry with room succeeds */
        if (len) {
            FUZZ_ASSERT(begin(r, meta, name, key) == CAS_OK, "begin");
            rc = cas_reader_unpack_into(r, blob, n, dst, len - 1, &got);
            FUZZ_ASSERT(rc == CAS_NEED_OUTPUT, "unpack_into(cap %zu of %zu) gave %s (%s)", len - 1, len,
                        cas_status_name(rc), cas_reader_message(r));
            rc = cas_reader_unpack_into(r, blob, n, dst, len + 1, &got);
            FUZZ_ASSERT(rc == CAS_DONE && got == len && !memcmp(dst, out, len),
                        "retry after CAS_NEED_OUTPUT gave %s (%s), %zu bytes", cas_status_name(rc),
                        cas_reader_message(r), got);
        }

        /* cas_reader_decode: the exact room works; too little says CAS_NEED_OUTPUT */
        got = 0;
        rc = cas_reader_decode(r, meta, meta ? strlen(meta) : 0, name, key, blob, n, dst, len + 1, &got);
        FUZZ_ASSERT(rc == CAS_DONE && got == len && (!len || !memcmp(dst, out, len)), "cas_reader_decode: %s (%s)",
                    cas_status_name(rc), cas_reader_message(r));
        if (len) {
            rc = cas_reader_decode(r, meta, meta ? strlen(meta) : 0, name, key, blob, n, dst, len - 1, &got);
            FUZZ_ASSERT(rc == CAS_NEED_OUTPUT, "cas_reader_decode(cap %zu of %zu): %s", len - 1, len,
                        cas_status_name(rc));
        }

        /* a recorded size that differs */
        FUZZ_ASSERT(begin(r, meta, name, NULL) == CAS_OK, "begin");
        FUZZ_ASSERT(cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, (int64_t)len + 1) == CAS_OK, "expect");
        rc = cas_reader_unpack_into(r, blob, n, dst, len + 1, &got);
        FUZZ_ASSERT(rc == CAS_E_SIZE, "expect size %zu for %zu bytes gave %s", len + 1, len, cas_status_name(rc));
        FUZZ_ASSERT(cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, -1) == CAS_OK, "expect");
        free(dst);

        if ((flags & 64) && oom) oom_pass(meta, name, flags, limit, blob, n, oom, out, len, 1);
    }
    cas_reader_free_buffer(r, out);
    cas_reader_free(r);
    return 0;
}
