/* fuzz_stream: the streaming reader (cas_reader_update) and the codec layer
 * (cas_codec_update) under random chunking of input and output room, compared
 * with the one-shot paths.
 *
 * Input: [sidecar][flags][mode][8 input-chunk bytes][8 output-room bytes][construct params + payload...]
 *   sidecar  index into fuzz_sidecars
 *   flags    bits 0-1 reader gzip backend (0 auto, 1 zlib, 2 ISA-L, 3 auto); bit 2 strict;
 *            bit 3 limit 64 KiB instead of 1 MiB; bit 4 end announced by a separate empty
 *            call instead of with the last bytes; bit 5 skip the codec-level comparison;
 *            bit 6 also read the blob from a file through cas_stream_open_file/_read
 *   mode     how the blob is made from the rest (low 3 bits):
 *            0 as is; 1 gzip members around raw deflate bytes from the input, trailer
 *            computed by zlib; 2 zlib-compressed payload (level, strategy, window, members)
 *            then mutated; 3 LZ4F-compressed payload (block size/mode, checksums, content
 *            size, level) then mutated; 4 a handmade LZ4 frame whose header checksum, block
 *            checksums, content size and content checksum are fixed up as asked; else as is
 *   chunks   the chunk-size schedules (fuzz_sched)
 *
 * Checks, reader level: cas_reader_update returns the same status class as
 * cas_reader_unpack (success or failure) and on success the same bytes; it
 * honours the contract (CAS_NEED_INPUT only with all input consumed and never
 * after end, CAS_NEED_OUTPUT only with the room filled, errors sticky, CAS_DONE
 * repeatable); a streamed success verifies against its key.
 * Store level: cas_stream_read of the blob in a file (sidecar beside it) agrees.
 * Codec level: gzip through zlib and through ISA-L, chunked, agree with each
 * other and with one-shot cas_decode (libdeflate); LZ4 chunked agrees with
 * one-shot; same contract checks.
 */
#include "fuzz_common.h"

#define NAME "FuzzFlow/data/a9/a9993e364706816aba3e25717850c26c9cd0d89d"
#define OBUF ((size_t)256 << 10)
#define CODEC_MAX ((size_t)1 << 20) /* codec-level output cap: beyond it the pass is "over" */

static unsigned char obuf[OBUF];

/* ---- building blobs ------------------------------------------------------- */

/* Raw inflate of body (window 15) to learn the trailer a gzip member needs. */
static int raw_inflate(const unsigned char *p, size_t n, uint32_t *crc, uint32_t *isize) {
    z_stream z;
    unsigned char out[16384];
    int r;
    uint64_t total = 0;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) return -1;
    z.next_in = (Bytef *)(uintptr_t)p, z.avail_in = (uInt)n;
    *crc = (uint32_t)crc32(0, Z_NULL, 0);
    do {
        z.next_out = out, z.avail_out = sizeof out;
        r = inflate(&z, Z_NO_FLUSH);
        *crc = (uint32_t)crc32(*crc, out, (uInt)(sizeof out - z.avail_out));
        total += sizeof out - z.avail_out;
        if (total > CODEC_MAX) r = Z_DATA_ERROR;
    } while (r == Z_OK);
    inflateEnd(&z);
    *isize = (uint32_t)total;
    return r == Z_STREAM_END ? 0 : -1;
}

static void put_gz_header(fuzz_buf *b, fuzz_in *in, unsigned flg) {
    size_t start = b->len, k;
    const uint8_t *p;
    fb_byte(b, 0x1f), fb_byte(b, 0x8b), fb_byte(b, 8), fb_byte(b, flg);
    fb_le32(b, 0), fb_byte(b, 0), fb_byte(b, 0xff);
    if (flg & 4) { /* FEXTRA */
        k = fz_take(in, fz_u8(in) % 16, &p);
        fb_byte(b, (unsigned)k), fb_byte(b, 0);
        fb_put(b, p, k);
    }
    if (flg & 8) fb_put(b, "blobtmp.abcdefgh", 17); /* FNAME, NUL included */
    if (flg & 16) fb_put(b, "c", 2);                /* FCOMMENT */
    if (flg & 2) {                                  /* FHCRC */
        uint32_t c = (uint32_t)crc32(0, b->p + start, (uInt)(b->len - start));
        fb_byte(b, c & 0xff), fb_byte(b, (c >> 8) & 0xff);
    }
}

/* Truncates, flips a byte or appends junk, as the input says. */
static void mutate(fuzz_buf *b, fuzz_in *in) {
    unsigned kind = fz_u8(in) % 5;
    size_t pos = fz_u16(in);
    uint8_t x = fz_u8(in);
    if (kind == 1 && b->len) b->p[pos % b->len] ^= x ? x : 1;
    if (kind == 2 && b->len) b->len = pos % b->len;
    if (kind == 3) {
        size_t k = (x & 63) + 1;
        while (k--) fb_byte(b, 0);
    }
    if (kind == 4) fb_byte(b, x);
}

static void build_gzip_wrap(fuzz_buf *b, fuzz_in *in) {
    unsigned members = fz_u8(in) % 3 + 1, m;
    for (m = 0; m < members; m++) {
        unsigned flg = fz_u8(in) & 0x1e;
        size_t blen = fz_u16(in), pad = fz_u8(in) % 4;
        const uint8_t *body;
        uint32_t crc = 0, isize = 0;
        if (m + 1 == members) blen = in->n; /* the last member takes the rest */
        put_gz_header(b, in, flg);
        blen = fz_take(in, blen, &body);
        fb_put(b, body, blen);
        (void)raw_inflate(body, blen, &crc, &isize);
        fb_le32(b, crc), fb_le32(b, isize);
        while (pad--) fb_byte(b, 0);
    }
}

static void build_gzip_zlib(fuzz_buf *b, fuzz_in *in) {
    int level = fz_u8(in) % 10, strategy = fz_u8(in) % 5, wbits = 9 + fz_u8(in) % 7, mem = fz_u8(in) % 9 + 1;
    unsigned members = fz_u8(in) % 3 + 1, flg = fz_u8(in) & 0x1e, m;
    fuzz_in mut;
    /* mutation parameters come first so the payload is the tail */
    uint8_t mp[4];
    mp[0] = fz_u8(in), mp[1] = fz_u8(in), mp[2] = fz_u8(in), mp[3] = fz_u8(in);
    for (m = 0; m < members; m++) {
        z_stream z;
        const uint8_t *p;
        size_t k = m + 1 == members ? in->n : in->n / (members - m);
        uint32_t crc;
        k = fz_take(in, k, &p);
        put_gz_header(b, in, m ? 0 : flg);
        memset(&z, 0, sizeof z);
        FUZZ_ASSERT(deflateInit2(&z, level, Z_DEFLATED, -wbits, mem, strategy) == Z_OK, "deflateInit2");
        fb_reserve(b, deflateBound(&z, (uLong)k) + 16);
        z.next_in = (Bytef *)(uintptr_t)p, z.avail_in = (uInt)k;
        z.next_out = b->p + b->len, z.avail_out = (uInt)(b->cap - b->len);
        FUZZ_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
        b->len += (size_t)(z.next_out - (b->p + b->len));
        deflateEnd(&z);
        crc = (uint32_t)crc32(0, p, (uInt)k);
        fb_le32(b, crc), fb_le32(b, (uint32_t)k);
    }
    mut.p = mp, mut.n = 4;
    mutate(b, &mut);
}

static void build_lz4f(fuzz_buf *b, fuzz_in *in) {
    LZ4F_preferences_t prefs;
    uint8_t f = fz_u8(in), lv = fz_u8(in), mp[4];
    size_t bound, r;
    const uint8_t *p;
    size_t k;
    fuzz_in mut;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = (LZ4F_blockSizeID_t)(4 + (f & 3));
    prefs.frameInfo.blockMode = (f & 4) ? LZ4F_blockIndependent : LZ4F_blockLinked;
    prefs.frameInfo.contentChecksumFlag = (f & 8) ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum;
    prefs.frameInfo.blockChecksumFlag = (f & 16) ? LZ4F_blockChecksumEnabled : LZ4F_noBlockChecksum;
    prefs.compressionLevel = (int)(lv % 16) - 3;
    prefs.favorDecSpeed = (f >> 6) & 1;
    mp[0] = fz_u8(in), mp[1] = fz_u8(in), mp[2] = fz_u8(in), mp[3] = fz_u8(in);
    k = fz_take(in, in->n, &p);
    if (f & 32) prefs.frameInfo.contentSize = k;
    bound = LZ4F_compressFrameBound(k, &prefs);
    fb_reserve(b, bound);
    r = LZ4F_compressFrame(b->p + b->len, bound, p, k, &prefs);
    FUZZ_ASSERT(!LZ4F_isError(r), "LZ4F_compressFrame: %s", LZ4F_getErrorName(r));
    b->len += r;
    mut.p = mp, mut.n = 4;
    mutate(b, &mut);
}

/* Decodes a whole frame with LZ4F itself (the reference), for the content checksum. */
static int lz4_ref_decode(const unsigned char *p, size_t n, fuzz_buf *out) {
    LZ4F_dctx *d;
    size_t r = 1;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return -1;
    while (n) {
        size_t ss = n, ds = 65536;
        fb_reserve(out, ds);
        r = LZ4F_decompress(d, out->p + out->len, &ds, p, &ss, NULL);
        if (LZ4F_isError(r)) break;
        out->len += ds, p += ss, n -= ss;
        if (r == 0 || out->len > CODEC_MAX || (!ss && !ds)) break;
    }
    LZ4F_freeDecompressionContext(d);
    return (!LZ4F_isError(r) && r == 0) ? 0 : -1;
}

static void lz4_frame(fuzz_buf *b, unsigned flg, unsigned bd, uint64_t csize, const uint8_t *blocks, size_t nb,
                      uint8_t bsel, int has_cc, uint32_t cc) {
    unsigned char desc[15];
    size_t dl = 0, i = 0, k;
    fb_le32(b, 0x184D2204);
    desc[dl++] = (unsigned char)flg, desc[dl++] = (unsigned char)bd;
    if (flg & 8)
        for (k = 0; k < 8; k++) desc[dl++] = (unsigned char)(csize >> (8 * k));
    if (flg & 1)
        for (k = 0; k < 4; k++) desc[dl++] = (unsigned char)(0x11 * k);
    fb_put(b, desc, dl);
    fb_byte(b, (XXH32(desc, dl, 0) >> 8) & 0xff);
    /* blocks: the payload cut in up to 4 pieces, compressed-or-stored as bsel says */
    for (k = 0; k < 4 && i < nb; k++) {
        size_t len = (k == 3) ? nb - i : CAS__MIN(nb - i, (size_t)1 << (4 + ((bsel >> (2 * k)) & 3) * 3));
        uint32_t word = (uint32_t)len | ((bsel >> (2 * k)) & 1 ? 0x80000000u : 0);
        fb_le32(b, word);
        fb_put(b, blocks + i, len);
        if (flg & 0x10) fb_le32(b, XXH32(blocks + i, len, 0));
        i += len;
    }
    fb_le32(b, 0); /* end mark */
    if (has_cc) fb_le32(b, cc);
}

static void build_lz4_hand(fuzz_buf *b, fuzz_in *in) {
    /* FLG: version 01, the rest from the input (dictID and the reserved bit too) */
    unsigned flg = 0x40 | (fz_u8(in) & 0x3f), bd = fz_u8(in) & 0xf0, fix = fz_u8(in);
    uint8_t bsel = fz_u8(in);
    uint64_t csize = fz_u32(in);
    uint32_t cc = fz_u32(in);
    const uint8_t *blocks;
    size_t nb = fz_take(in, in->n, &blocks);
    if ((fix & 1) || (flg & 4)) {
        /* decode a version without the content fields, then fill them in */
        fuzz_buf tmp = {0, 0, 0}, dec = {0, 0, 0};
        lz4_frame(&tmp, flg & ~0x0cu, bd, 0, blocks, nb, bsel, 0, 0);
        if (lz4_ref_decode(tmp.p, tmp.len, &dec) == 0) {
            if (fix & 1) csize = dec.len;
            if (fix & 2) cc = XXH32(dec.p, dec.len, 0);
        }
        fb_free(&tmp), fb_free(&dec);
    }
    lz4_frame(b, flg, bd, csize, blocks, nb, bsel, (flg & 4) != 0, cc);
}

/* ---- driving a streaming object ------------------------------------------ */

typedef int (*step_fn)(void *o, const void *in, size_t n, size_t *used, void *out, size_t cap, size_t *made, int end);

static int step_reader(void *o, const void *in, size_t n, size_t *used, void *out, size_t cap, size_t *made, int end) {
    return cas_reader_update((cas_reader *)o, in, n, used, out, cap, made, end);
}
static int step_codec(void *o, const void *in, size_t n, size_t *used, void *out, size_t cap, size_t *made, int end) {
    return cas_codec_update((cas_codec *)o, in, n, used, out, cap, made, end);
}

/* Feeds blob in scheduled pieces into room of scheduled sizes; output goes to acc.
 * Returns the final status; *over = 1 when acc passed out_max (status then CAS_E_LIMIT). */
static int drive(step_fn f, void *o, const char *what, const uint8_t *blob, size_t n, fuzz_sched is, fuzz_sched os,
                 int sep_end, size_t out_max, fuzz_buf *acc, int *over) {
    size_t pos = 0;
    unsigned stall = 0;
    unsigned long calls = 0;
    int rc, rc2;
    size_t used, made;
    *over = 0;
    for (;;) {
        size_t avail = n - pos, k = fz_sched_next(&is, stall > 8), room = fz_sched_next(&os, stall > 8);
        int end;
        if (k > avail) k = avail;
        if (room > OBUF) room = OBUF;
        end = k == avail && (!sep_end || k == 0);
        used = made = 0;
        rc = f(o, blob + pos, k, &used, obuf, room, &made, end);
        calls++;
        FUZZ_ASSERT(used <= k && made <= room, "%s: used %zu of %zu, made %zu of %zu", what, used, k, made, room);
        fb_put(acc, obuf, made);
        pos += used;
        if (rc < 0) break;
        if (rc == CAS_DONE) {
            if (pos < n) { /* bytes after the end: strict readers refuse them */
                rc2 = f(o, blob + pos, n - pos, &used, obuf, sizeof obuf, &made, 1);
                FUZZ_ASSERT(made == 0, "%s: output after CAS_DONE", what);
                FUZZ_ASSERT(rc2 == CAS_DONE || rc2 == CAS_E_TRAILING, "%s: %s after CAS_DONE", what,
                            cas_status_name(rc2));
                rc = rc2;
                if (rc < 0) break;
            }
            rc2 = f(o, NULL, 0, &used, obuf, 16, &made, 1);
            FUZZ_ASSERT(rc2 == CAS_DONE && made == 0, "%s: CAS_DONE not repeatable (%s)", what, cas_status_name(rc2));
            return rc;
        }
        if (rc == CAS_NEED_INPUT) {
            FUZZ_ASSERT(used == k, "%s: CAS_NEED_INPUT with %zu of %zu bytes used", what, used, k);
            FUZZ_ASSERT(!end, "%s: CAS_NEED_INPUT after end with all %zu bytes consumed (a caller hangs)", what, n);
        } else if (rc == CAS_NEED_OUTPUT) {
            FUZZ_ASSERT(made == room, "%s: CAS_NEED_OUTPUT with %zu of %zu bytes of room used", what, made, room);
        } else {
            FUZZ_ASSERT(0, "%s: unexpected status %d", what, rc);
        }
        if (acc->len > out_max) {
            *over = 1;
            return CAS_E_LIMIT;
        }
        stall = (used || made) ? 0 : stall + 1;
        FUZZ_ASSERT(stall < 64 && calls < 50000000UL, "%s: no progress (%u calls in a row, pos %zu of %zu, %s)", what,
                    stall, pos, n, cas_status_name(rc));
    }
    /* errors are sticky */
    rc2 = f(o, blob, n ? 1 : 0, &used, obuf, 16, &made, 0);
    FUZZ_ASSERT(rc2 == rc && made == 0, "%s: error %s not sticky (then %s)", what, cas_status_name(rc),
                cas_status_name(rc2));
    return rc;
}

/* ---- the checks ----------------------------------------------------------- */

static void reader_level(const char *meta, unsigned flags, const uint8_t *blob, size_t n, fuzz_sched is,
                         fuzz_sched os) {
    cas_reader *a, *s;
    int backend = (flags & 3) == 3 ? 0 : (int)(flags & 3), strict = (flags >> 2) & 1, rca, rcs, over;
    int64_t limit = (flags & 8) ? 64 << 10 : 1 << 20;
    void *out = NULL;
    size_t len = 0;
    fuzz_buf acc = {0, 0, 0};
    FUZZ_ASSERT(cas_reader_create(&a, NULL) == CAS_OK && cas_reader_create(&s, NULL) == CAS_OK, "create");
    cas_reader_set_param(a, CAS_PARAM_GZIP_BACKEND, backend), cas_reader_set_param(s, CAS_PARAM_GZIP_BACKEND, backend);
    cas_reader_set_param(a, CAS_PARAM_STRICT, strict), cas_reader_set_param(s, CAS_PARAM_STRICT, strict);
    cas_reader_set_param(a, CAS_PARAM_LIMIT, limit), cas_reader_set_param(s, CAS_PARAM_LIMIT, limit);

    rca = cas_reader_begin(a, meta, meta ? strlen(meta) : 0, NAME, NULL);
    rcs = cas_reader_begin(s, meta, meta ? strlen(meta) : 0, NAME, NULL);
    FUZZ_ASSERT(rca == rcs, "begin differs");
    if (rca < 0) {
        size_t u, m;
        FUZZ_ASSERT(cas_reader_update(s, blob, n, &u, obuf, 16, &m, 1) == rcs, "failed begin not sticky");
        goto out;
    }
    rca = cas_reader_unpack(a, blob, n, &out, &len);
    rcs = drive(step_reader, s, "reader", blob, n, is, os, (flags >> 4) & 1, (size_t)-1, &acc, &over);
    fuzz_log("reader: one-shot %s (%zu bytes), streamed %s (%zu bytes) %s\n", cas_status_name(rca), len,
             cas_status_name(rcs), acc.len, cas_reader_message(s));
    FUZZ_ASSERT((rca == CAS_DONE) == (rcs == CAS_DONE), "one-shot %s (%s) but streamed %s (%s)", cas_status_name(rca),
                cas_reader_message(a), cas_status_name(rcs), cas_reader_message(s));
    if (rca == CAS_DONE) {
        char key[CAS_KEY_BUF];
        FUZZ_ASSERT(acc.len == len && (!len || !memcmp(acc.p, out, len)), "streamed %zu bytes, one-shot %zu, differ",
                    acc.len, len);
        FUZZ_ASSERT(cas_reader_total_out(s) == len, "total_out");
        /* streamed again, verifying against the key */
        cas_hash(CAS_HASH_SHA1, out, len, key);
        FUZZ_ASSERT(cas_reader_begin(s, meta, meta ? strlen(meta) : 0, NAME, key) == CAS_OK, "begin with key");
        acc.len = 0;
        rcs = drive(step_reader, s, "reader+key", blob, n, os, is, 0, (size_t)-1, &acc, &over);
        FUZZ_ASSERT(rcs == CAS_DONE, "verified stream: %s (%s)", cas_status_name(rcs), cas_reader_message(s));
    } else {
        FUZZ_ASSERT(cas_reader_message(s)[0] != 0, "streamed failure %s without a message", cas_status_name(rcs));
    }
out:
    cas_reader_free_buffer(a, out);
    cas_reader_free(a);
    cas_reader_free(s);
    fb_free(&acc);
}

/* The store's streaming read (cas_stream_open_file + cas_stream_read) of the blob
 * written to a file, its sidecar beside it: agrees with the one-shot reader. */
static char sdir[64];
static void rm_sdir(void) {
    char p[128];
    snprintf(p, sizeof p, "%s/blob", sdir), unlink(p);
    snprintf(p, sizeof p, "%s/blob_meta", sdir), unlink(p);
    rmdir(sdir);
}

static void put_file(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_ASSERT(fd >= 0, "cannot create %s", path);
    FUZZ_ASSERT(cas__write_all(fd, p, n) == 0, "cannot write %s", path);
    close(fd);
}

static void file_level(const char *meta, unsigned flags, const uint8_t *blob, size_t n, fuzz_sched os) {
    char path[128], mpath[128], err[512];
    cas_reader *a;
    cas_stream *st = NULL;
    void *out = NULL;
    size_t len = 0, got;
    int64_t limit = (flags & 8) ? 64 << 10 : 1 << 20;
    int rca, rcs;
    unsigned long calls = 0;
    fuzz_buf acc = {0, 0, 0};
    if (!sdir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(sdir, sizeof sdir, "%s/casfuzz-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
        FUZZ_ASSERT(mkdtemp(sdir) != NULL, "mkdtemp");
        atexit(rm_sdir);
    }
    snprintf(path, sizeof path, "%s/blob", sdir);
    snprintf(mpath, sizeof mpath, "%s/blob_meta", sdir);
    put_file(path, blob, n);
    if (meta) put_file(mpath, meta, strlen(meta));
    else unlink(mpath);

    FUZZ_ASSERT(cas_reader_create(&a, NULL) == CAS_OK, "create");
    cas_reader_set_param(a, CAS_PARAM_LIMIT, limit);
    rca = cas_reader_begin(a, meta, meta ? strlen(meta) : 0, path, NULL);
    if (rca == CAS_OK) rca = cas_reader_unpack(a, blob, n, &out, &len);
    err[0] = 0;
    rcs = cas_stream_open_file(&st, path, NULL, (uint64_t)limit, NULL, err, sizeof err);
    if (rcs == CAS_OK) {
        for (;;) {
            size_t cap = fz_sched_next(&os, 1); /* cap 0 would read as the end of the blob */
            if (cap > OBUF) cap = OBUF;
            rcs = cas_stream_read(st, obuf, cap, &got);
            if (rcs < 0) break;
            FUZZ_ASSERT(rcs == CAS_OK && got <= cap, "cas_stream_read: %s, %zu of %zu", cas_status_name(rcs), got, cap);
            if (!got) break;
            fb_put(&acc, obuf, got);
            FUZZ_ASSERT(++calls < 50000000UL, "cas_stream_read never ends");
        }
        if (rcs < 0)
            FUZZ_ASSERT(cas_stream_message(st)[0] != 0, "stream failed (%s) without a message", cas_status_name(rcs));
        cas_stream_close(st);
    } else {
        FUZZ_ASSERT(st == NULL && err[0], "failed open: %s, stream %p, '%s'", cas_status_name(rcs), (void *)st, err);
    }
    fuzz_log("file: one-shot %s (%zu bytes), cas_stream_read %s (%zu bytes) %s\n", cas_status_name(rca), len,
             cas_status_name(rcs), acc.len, err);
    FUZZ_ASSERT((rca == CAS_DONE) == (rcs == CAS_OK), "one-shot %s (%s) but cas_stream_read %s", cas_status_name(rca),
                cas_reader_message(a), cas_status_name(rcs));
    if (rca == CAS_DONE)
        FUZZ_ASSERT(acc.len == len && (!len || !memcmp(acc.p, out, len)),
                    "cas_stream_read gave %zu bytes, one-shot %zu, differ", acc.len, len);
    cas_reader_free_buffer(a, out);
    cas_reader_free(a);
    fb_free(&acc);
}

/* Chunked decode through one codec; *over when output passed CODEC_MAX. */
static int codec_pass(int codec, int backend, const char *what, const uint8_t *blob, size_t n, fuzz_sched is,
                      fuzz_sched os, int sep_end, fuzz_buf *acc, int *over) {
    cas_codec *c;
    int rc;
    FUZZ_ASSERT(cas_decoder_create(&c, codec, NULL) == CAS_OK, "decoder_create");
    if (backend) FUZZ_ASSERT(cas_codec_set_param(c, CAS_PARAM_GZIP_BACKEND, backend) == CAS_OK, "backend");
    rc = drive(step_codec, c, what, blob, n, is, os, sep_end, CODEC_MAX, acc, over);
    if (rc < 0 && !*over)
        FUZZ_ASSERT(cas_codec_message(c)[0] != 0, "%s: %s without a message", what, cas_status_name(rc));
    cas_codec_free(c);
    return rc;
}

/* One-shot cas_decode with room for CODEC_MAX bytes: NEED_OUTPUT means over. */
static int oneshot(int codec, const uint8_t *blob, size_t n, fuzz_buf *acc, int *over) {
    size_t len = 0;
    int rc;
    fb_reserve(acc, CODEC_MAX + 1);
    rc = cas_decode(codec, blob, n, acc->p, CODEC_MAX + 1, &len);
    acc->len = len;
    *over = rc == CAS_NEED_OUTPUT || len > CODEC_MAX;
    FUZZ_ASSERT(rc <= 0 || rc == CAS_NEED_OUTPUT, "cas_decode returned %d", rc);
    return *over ? CAS_E_LIMIT : rc;
}

static void same(const char *an, int ra, const fuzz_buf *a, int oa, const char *bn, int rb, const fuzz_buf *b, int ob) {
    if (oa || ob) return; /* one stopped at the cap: nothing to compare */
    FUZZ_ASSERT((ra == CAS_DONE) == (rb == CAS_DONE), "%s gave %s but %s gave %s", an, cas_status_name(ra), bn,
                cas_status_name(rb));
    if (ra == CAS_DONE)
        FUZZ_ASSERT(a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len)),
                    "%s and %s decode differently (%zu vs %zu bytes)", an, bn, a->len, b->len);
}

static void codec_level(const uint8_t *blob, size_t n, fuzz_sched is, fuzz_sched os, int sep_end) {
    fuzz_buf z = {0, 0, 0}, i = {0, 0, 0}, one = {0, 0, 0};
    int rz, ri, r1, oz, oi, o1;
    int s = cas_sniff(blob, n);
    if (s == CAS_SNIFF_GZIP || s == CAS_SNIFF_EMPTY || s == CAS_SNIFF_SHORT || s == CAS_SNIFF_UNKNOWN) {
        rz = codec_pass(CAS_CODEC_GZIP, CAS_BACKEND_ZLIB, "gzip/zlib", blob, n, is, os, sep_end, &z, &oz);
        ri = codec_pass(CAS_CODEC_GZIP, CAS_BACKEND_ISAL, "gzip/isal", blob, n, is, os, sep_end, &i, &oi);
        r1 = oneshot(CAS_CODEC_GZIP, blob, n, &one, &o1);
        fuzz_log("gzip: zlib %s, isal %s, one-shot %s\n", cas_status_name(rz), cas_status_name(ri),
                 cas_status_name(r1));
        same("gzip/zlib", rz, &z, oz, "gzip/isal", ri, &i, oi);
        same("gzip/zlib", rz, &z, oz, "gzip one-shot", r1, &one, o1);
    }
    if (s == CAS_SNIFF_LZ4 || s == CAS_SNIFF_SHORT || s == CAS_SNIFF_EMPTY) {
        z.len = one.len = 0;
        rz = codec_pass(CAS_CODEC_LZ4, 0, "lz4", blob, n, is, os, sep_end, &z, &oz);
        r1 = oneshot(CAS_CODEC_LZ4, blob, n, &one, &o1);
        fuzz_log("lz4: chunked %s, one-shot %s\n", cas_status_name(rz), cas_status_name(r1));
        same("lz4 chunked", rz, &z, oz, "lz4 one-shot", r1, &one, o1);
    }
    fb_free(&z), fb_free(&i), fb_free(&one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in;
    const char *meta;
    unsigned flags, mode;
    fuzz_sched is, os;
    fuzz_buf blob = {0, 0, 0};
    const uint8_t *b;
    size_t n;

    in.p = data, in.n = size;
    meta = fuzz_sidecars[fz_u8(&in) % FUZZ_NSIDECARS];
    flags = fz_u8(&in);
    mode = fz_u8(&in) & 7;
    fz_sched_init(&is, &in);
    fz_sched_init(&os, &in);
    switch (mode) {
    case 1: build_gzip_wrap(&blob, &in); break;
    case 2: build_gzip_zlib(&blob, &in); break;
    case 3: build_lz4f(&blob, &in); break;
    case 4: build_lz4_hand(&blob, &in); break;
    default: break;
    }
    if (mode >= 1 && mode <= 4) b = blob.p ? blob.p : (const uint8_t *)"", n = blob.len;
    else b = in.p, n = in.n;

#ifdef CAS_FUZZ_REPLAY
    if (getenv("FUZZ_DUMP")) { /* the blob this input builds, for a closer look */
        FILE *f = fopen(getenv("FUZZ_DUMP"), "wb");
        if (f) fwrite(b, 1, n, f), fclose(f);
    }
#endif
    reader_level(meta, flags, b, n, is, os);
    if (flags & 64) file_level(meta, flags, b, n, os);
    if (!(flags & 32)) codec_level(b, n, is, os, (flags >> 4) & 1);
    fb_free(&blob);
    return 0;
}
