/* fuzz_roundtrip: pack then unpack gives the input back, with every writer
 * parameter, one-shot (cas_pack) and streamed (cas_writer_update/finish).
 *
 * Input: [fmt][level][block][opts][8 input-chunk bytes][8 output-room bytes][data...]
 *   fmt    bits 0-1 format (0 v1, 1 v2, 2 raw, 3 v1); bits 2-3 gzip backend (0 auto,
 *          1 zlib, 2 ISA-L, 3 auto); bit 4 one thread; bit 5 a gzip mtime; bit 6 XXH3
 *          keys; bit 7 pledge the size (LZ4 content size)
 *   level  CAS_PARAM_LEVEL = level % 13 (0: not set; gzip refuses 10..12 itself)
 *   block  CAS_PARAM_LZ4_BLOCK = 4 + block % 4
 *   opts   bits 0-1 pledge n, n + 1, n - 1 or 0 (when bit 7 of fmt); when >= 0x80
 *          the data is repeated 4 * (opts - 0x7f) times (at most 1 MiB in all), so
 *          inputs can pass cas_pack's two-thread threshold (256 KiB) now and then
 *
 * Checks: cas_pack succeeds (a wrong pledge may fail, cleanly) within
 * cas_pack_bound, its key is cas_hash of the data, the sidecar parses back to
 * the format, raw blobs are the data; the blob unpacks to the data with key
 * verification, through both gzip backends, as legacy (no sidecar) for v1 and
 * through cas_decode; with zlib at mtime 0 the v1 blob is byte for byte what
 * CPython's gzip writes; the streaming writer under random chunking honours
 * its contract, gives the same key and a blob that unpacks to the data.
 */
#include "fuzz_common.h"

#define OBUF ((size_t)256 << 10)
static unsigned char obuf[OBUF];

/* CPython's gzip.compress(data, compresslevel, mtime): the v1 blob zlib must equal. */
static void cpython_gzip(const unsigned char *d, size_t n, int level, uint32_t mtime, fuzz_buf *b) {
    z_stream z;
    uint32_t crc = (uint32_t)crc32(0, d, (uInt)n);
    fb_byte(b, 0x1f), fb_byte(b, 0x8b), fb_byte(b, 8), fb_byte(b, 0);
    fb_le32(b, mtime);
    fb_byte(b, level == 9 ? 2 : level == 1 ? 4 : 0), fb_byte(b, 0xff);
    memset(&z, 0, sizeof z);
    FUZZ_ASSERT(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
    fb_reserve(b, deflateBound(&z, (uLong)n) + 16);
    z.next_in = (Bytef *)(uintptr_t)d, z.avail_in = (uInt)n;
    z.next_out = b->p + b->len, z.avail_out = (uInt)(b->cap - b->len);
    FUZZ_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
    b->len += (size_t)(z.next_out - (b->p + b->len));
    deflateEnd(&z);
    fb_le32(b, crc), fb_le32(b, (uint32_t)n);
}

/* Unpacks blob with sidecar meta (NULL: none) through backend; must give d back. */
static void unpack_check(const char *what, const void *blob, size_t bl, const char *meta, const char *key, int backend,
                         const unsigned char *d, size_t n) {
    cas_reader *r;
    void *out = NULL;
    size_t len = 0;
    int rc;
    FUZZ_ASSERT(cas_reader_create(&r, NULL) == CAS_OK, "reader");
    if (backend) cas_reader_set_param(r, CAS_PARAM_GZIP_BACKEND, backend);
    cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, (int64_t)n);
    rc = cas_reader_begin(r, meta, meta ? strlen(meta) : 0, "F/data/ab/abcd", key);
    FUZZ_ASSERT(rc == CAS_OK, "%s: begin %s (%s)", what, cas_status_name(rc), cas_reader_message(r));
    rc = cas_reader_unpack(r, blob, bl, &out, &len);
    FUZZ_ASSERT(rc == CAS_DONE, "%s: unpack %s (%s)", what, cas_status_name(rc), cas_reader_message(r));
    FUZZ_ASSERT(len == n && (!n || !memcmp(out, d, n)), "%s: %zu bytes back for %zu", what, len, n);
    cas_reader_free_buffer(r, out);
    cas_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int formats[4] = {CAS_FORMAT_V1, CAS_FORMAT_V2, CAS_FORMAT_RAW, CAS_FORMAT_V1};
    fuzz_in in;
    unsigned fb, lv, blk, opts;
    int format, backend, algo, rc, pledge_ok = 1;
    int64_t pledge = -1;
    fuzz_sched is, os;
    unsigned char *d;
    size_t n, rep, bound, blob_len = 0, k;
    unsigned char *blob;
    char key[CAS_KEY_BUF], want[CAS_KEY_BUF], key2[CAS_KEY_BUF], meta[CAS_META_MAX];
    cas_writer *w;

    in.p = data, in.n = size;
    fb = fz_u8(&in), lv = fz_u8(&in), blk = fz_u8(&in), opts = fz_u8(&in);
    fz_sched_init(&is, &in);
    fz_sched_init(&os, &in);
    format = formats[fb & 3];
    backend = (int)((fb >> 2) & 3) == 3 ? CAS_BACKEND_AUTO : (int)((fb >> 2) & 3);
    algo = (fb & 64) ? CAS_HASH_XXH3 : CAS_HASH_SHA1;
    rep = opts >= 0x80 ? (size_t)(opts - 0x7f) * 4 : 1; /* up to 512 */
    if (rep > 1 && in.n * rep > ((size_t)1 << 20)) rep = ((size_t)1 << 20) / (in.n ? in.n : 1);
    if (!rep) rep = 1;
    n = in.n * rep;
    d = (unsigned char *)malloc(n ? n : 1);
    for (k = 0; k < rep; k++) memcpy(d + k * in.n, in.p, in.n);
    if (fb & 128) {
        static const int64_t delta[4] = {0, 1, -1, 0};
        pledge = (opts & 3) == 3 ? 0 : (int64_t)n + delta[opts & 3];
        if (pledge < 0) pledge = 0;
        pledge_ok = pledge == (int64_t)n || format != CAS_FORMAT_V2;
    }

    FUZZ_ASSERT(cas_writer_create(&w, format, NULL) == CAS_OK, "writer");
    FUZZ_ASSERT(cas_writer_set_param(w, CAS_PARAM_GZIP_BACKEND, backend) == CAS_OK, "backend");
    FUZZ_ASSERT(cas_writer_set_param(w, CAS_PARAM_HASH, algo) == CAS_OK, "hash");
    FUZZ_ASSERT(cas_writer_set_param(w, CAS_PARAM_LZ4_BLOCK, 4 + blk % 4) == CAS_OK, "block");
    if (fb & 16) FUZZ_ASSERT(cas_writer_set_param(w, CAS_PARAM_THREADS, 1) == CAS_OK, "threads");
    if (fb & 32) FUZZ_ASSERT(cas_writer_set_param(w, CAS_PARAM_MTIME, 0x5eadbeef) == CAS_OK, "mtime");
    if (lv % 13) FUZZ_ASSERT(cas_writer_set_param(w, CAS_PARAM_LEVEL, lv % 13) == CAS_OK, "level %u", lv % 13);
    if (pledge >= 0) FUZZ_ASSERT(cas_writer_set_param(w, CAS_PARAM_PLEDGED_SIZE, pledge) == CAS_OK, "pledge");
    FUZZ_ASSERT(cas_writer_format(w) == format, "format");

    /* ---- one shot ---- */
    bound = cas_pack_bound(format, n);
    blob = (unsigned char *)malloc(bound ? bound : 1);
    rc = cas_pack(w, d, n, blob, bound, &blob_len, key);
    fuzz_log("pack %s level %u: %s, %zu -> %zu bytes\n", cas_format_name(format), lv % 13, cas_status_name(rc), n,
             blob_len);
    FUZZ_ASSERT(cas_hash(algo, d, n, want) == CAS_OK, "hash");
    if (rc != CAS_DONE) {
        FUZZ_ASSERT(!pledge_ok && rc < 0, "cas_pack(%zu bytes, %s) failed: %s", n, cas_format_name(format),
                    cas_status_name(rc));
    } else {
        FUZZ_ASSERT(blob_len <= bound, "blob %zu > bound %zu", blob_len, bound);
        FUZZ_ASSERT(!strcmp(key, want), "key %s, hash %s", key, want);
        FUZZ_ASSERT(cas_writer_key(w, key2) == CAS_OK && !strcmp(key2, key), "writer key");
        FUZZ_ASSERT(cas_writer_meta(w, meta, sizeof meta, NULL) == CAS_OK, "meta");
        {
            int f = 0;
            FUZZ_ASSERT(cas_meta_parse(meta, strlen(meta), &f, NULL) == CAS_OK && f == format, "meta %s", meta);
        }
        if (format == CAS_FORMAT_RAW) FUZZ_ASSERT(blob_len == n && (!n || !memcmp(blob, d, n)), "raw blob differs");
        if (format == CAS_FORMAT_V2 && pledge > 0) {
            uint64_t hint = 0;
            FUZZ_ASSERT(cas_decoded_size_hint(CAS_CODEC_LZ4, blob, blob_len, &hint) == CAS_OK && hint == n,
                        "content size %llu for %zu", (unsigned long long)hint, n);
        }
        unpack_check("one-shot", blob, blob_len, meta, key, CAS_BACKEND_AUTO, d, n);
        if (format == CAS_FORMAT_V1) {
            unpack_check("one-shot, zlib reader", blob, blob_len, meta, key, CAS_BACKEND_ZLIB, d, n);
            unpack_check("one-shot, ISA-L reader", blob, blob_len, meta, key, CAS_BACKEND_ISAL, d, n);
            unpack_check("one-shot, legacy", blob, blob_len, NULL, key, CAS_BACKEND_AUTO, d, n);
            if (backend == CAS_BACKEND_ZLIB && !(fb & 32) && lv % 13 <= 9) {
                fuzz_buf py = {0, 0, 0};
                cpython_gzip(d, n, lv % 13 ? (int)(lv % 13) : 3, 0, &py);
                FUZZ_ASSERT(py.len == blob_len && !memcmp(py.p, blob, blob_len),
                            "zlib v1 blob (%zu bytes) is not CPython's gzip (%zu bytes)", blob_len, py.len);
                fb_free(&py);
            }
        }
        {
            unsigned char *back = (unsigned char *)malloc(n + 1);
            size_t bl2 = 0;
            rc = cas_decode(cas_format_codec(format), blob, blob_len, back, n + 1, &bl2);
            FUZZ_ASSERT(rc == CAS_DONE && bl2 == n && (!n || !memcmp(back, d, n)), "cas_decode: %s, %zu bytes",
                        cas_status_name(rc), bl2);
            free(back);
        }
    }

    /* ---- streamed, same writer ---- */
    FUZZ_ASSERT(cas_writer_reset(w, 0) == CAS_OK, "reset");
    {
        fuzz_buf b2 = {0, 0, 0};
        size_t pos = 0, used, made;
        unsigned stall = 0;
        rc = CAS_NEED_INPUT;
        while (pos < n) {
            size_t kk = fz_sched_next(&is, stall > 8), room = fz_sched_next(&os, stall > 8);
            if (kk < n / 4096) kk = n / 4096; /* big inputs: at most ~4096 calls, not a million */
            if (room && room < n / 4096) room = n / 4096;
            if (kk > n - pos) kk = n - pos;
            if (room > OBUF) room = OBUF;
            rc = cas_writer_update(w, d + pos, kk, &used, obuf, room, &made);
            if (rc < 0) break;
            FUZZ_ASSERT(used <= kk && made <= room, "writer_update: used %zu of %zu, made %zu of %zu", used, kk, made,
                        room);
            if (rc == CAS_NEED_INPUT) FUZZ_ASSERT(used == kk, "CAS_NEED_INPUT with %zu of %zu used", used, kk);
            else if (rc == CAS_NEED_OUTPUT)
                FUZZ_ASSERT(made == room, "CAS_NEED_OUTPUT with %zu of %zu room", made, room);
            else FUZZ_ASSERT(0, "writer_update returned %s", cas_status_name(rc));
            fb_put(&b2, obuf, made);
            pos += used;
            stall = (used || made) ? 0 : stall + 1;
            FUZZ_ASSERT(stall < 64, "writer_update makes no progress at %zu of %zu", pos, n);
        }
        while (rc >= 0) {
            size_t room = fz_sched_next(&os, stall > 8);
            if (room && room < n / 4096) room = n / 4096;
            if (room > OBUF) room = OBUF;
            rc = cas_writer_finish(w, obuf, room, &made);
            if (rc < 0) break;
            FUZZ_ASSERT(made <= room, "finish made %zu of %zu", made, room);
            fb_put(&b2, obuf, made);
            if (rc == CAS_DONE) break;
            FUZZ_ASSERT(rc == CAS_NEED_OUTPUT, "finish returned %s", cas_status_name(rc));
            FUZZ_ASSERT(made == room, "finish: CAS_NEED_OUTPUT with %zu of %zu room", made, room);
            stall = made ? 0 : stall + 1;
            FUZZ_ASSERT(stall < 64, "finish makes no progress");
        }
        fuzz_log("streamed: %s, %zu bytes\n", cas_status_name(rc), b2.len);
        if (rc != CAS_DONE) {
            FUZZ_ASSERT(!pledge_ok && rc < 0, "streaming writer failed: %s", cas_status_name(rc));
        } else {
            FUZZ_ASSERT(cas_writer_key(w, key2) == CAS_OK && !strcmp(key2, want), "streamed key %s, want %s", key2,
                        want);
            FUZZ_ASSERT(cas_writer_total_in(w) == n && cas_writer_total_out(w) == b2.len, "sizes %llu/%llu for %zu/%zu",
                        (unsigned long long)cas_writer_total_in(w), (unsigned long long)cas_writer_total_out(w), n,
                        b2.len);
            FUZZ_ASSERT(b2.len <= bound, "streamed blob %zu > cas_pack_bound %zu", b2.len, bound);
            FUZZ_ASSERT(cas_writer_finish(w, obuf, 16, &made) == CAS_DONE && made == 0, "finish after CAS_DONE");
            FUZZ_ASSERT(cas_writer_update(w, d, n ? 1 : 0, &used, obuf, 16, &made) == CAS_E_STATE,
                        "update after CAS_DONE");
            cas_writer_meta(w, meta, sizeof meta, NULL);
            unpack_check("streamed", b2.p ? b2.p : (unsigned char *)"", b2.len, meta, want, CAS_BACKEND_AUTO, d, n);
            if (format == CAS_FORMAT_V1)
                unpack_check("streamed, zlib reader", b2.p ? b2.p : (unsigned char *)"", b2.len, meta, want,
                             CAS_BACKEND_ZLIB, d, n);
        }
        fb_free(&b2);
    }
    cas_writer_free(w);
    free(blob);
    free(d);
    return 0;
}
