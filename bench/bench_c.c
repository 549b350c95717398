/* bench_c.c - the C half of cas.h's benchmark: cas.h's paths and the raw
 * libraries they are built on (the physical limits), timed in one process.
 *
 * Built by bench/run.py (cc -O2, linked against build/libcas.a). Modes:
 *
 *   bench_c ops PAYLOAD OP[,OP...] [TARGET_MS [GZIP_BLOB]]
 *       Loads PAYLOAD, prepares every buffer (touched once, so no page faults
 *       are timed unless the operation itself allocates), checks each operation
 *       once for correctness, calibrates an inner repeat count per operation
 *       (so one sample lasts about TARGET_MS, default 25), prints one JSON line
 *       {"ready":...}, then serves stdin: each line "round" runs every
 *       operation once (in a rotated order) and prints one JSON line of
 *       nanoseconds per operation; "quit" ends. run.py interleaves these rounds
 *       with the Python baselines so that drift hits both sides alike.
 *       GZIP_BLOB: the v1 blob Python's gzip wrote for this payload; the v1
 *       read paths decode it (default: the zlib level 3 blob made here).
 *
 *   bench_c batch DIR COUNT SIZE FORMAT
 *       COUNT distinct SIZE-byte float32 blobs; each "round" line puts them all
 *       with cas_store_put_batch, threads=1 and threads=2 (order alternating),
 *       each into a fresh store under DIR that is removed afterwards (untimed).
 *
 *   bench_c gen-f32 BYTES SEED
 *       Writes BYTES of a deterministic float32 stream to stdout, 1 MiB at a
 *       time (the 1 GiB payload is never in memory at once).
 *
 *   bench_c stream ROOT FLOW KEY
 *       Streams one blob with cas_stream_open into a 64 KiB buffer and
 *       prints the decoded size: the process whose peak RSS run.py reports.
 *
 *   bench_c rss OUTFILE COMMAND [ARG...]
 *       Runs COMMAND (stdin/stdout inherited) and writes its peak RSS and exit
 *       status as JSON to OUTFILE.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libdeflate.h>
#include <lz4frame.h>
#include <openssl/evp.h>
#include <zlib.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "../cas.h"

/* ---- helpers ------------------------------------------------------------- */

/* Every sample starts with the vector registers' upper halves clean. ISA-L's
 * igzip returns with them dirty (no VZEROUPPER), and legacy-SSE code run after
 * that on the same thread - XXH3's SSE2 loop as xxhash.h compiles at -O2 -
 * slows ~4x (bench/probes.c "upper" shows it). Without this, whichever
 * operation ran after an ISA-L one in a round would be charged for it. */
static void clean_upper(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int avx = -1;
    if (avx < 0) avx = __builtin_cpu_supports("avx");
    if (avx) __asm__ volatile("vzeroupper");
#endif
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "bench_c: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void *xmalloc(size_t n) {
    unsigned char *p = (unsigned char *)malloc(n ? n : 1);
    size_t i;
    if (!p) die("out of memory", NULL);
    for (i = 0; i < n; i += 4096) p[i] = 1; /* fault every page in now, not while timing */
    if (n) p[n - 1] = 1;
    return p;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *p;
    long len;
    if (!f) die("cannot open payload", path);
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) die("cannot size", path);
    p = (unsigned char *)xmalloc((size_t)len);
    if (len && fread(p, 1, (size_t)len, f) != (size_t)len) die("short read", path);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void hex(const unsigned char *d, size_t n, char *out) {
    static const char *h = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) out[2 * i] = h[d[i] >> 4], out[2 * i + 1] = h[d[i] & 15];
    out[2 * n] = 0;
}

/* splitmix64 -> a float32 stream shaped like trained weights or sensor data:
 * roughly normal (sum of four uniforms), so the low mantissa bits are noise
 * and the exponents repeat - what real float artifacts look like to a codec. */
static uint64_t sm_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void gen_f32(uint64_t *state, float *out, size_t count) {
    size_t i;
    for (i = 0; i < count; i++) {
        uint64_t a = sm_next(state);
        float u = (float)(a & 0xffff) + (float)((a >> 16) & 0xffff) + (float)((a >> 32) & 0xffff) + (float)(a >> 48);
        out[i] = (u - 131070.0f) * (0.02f / 37837.0f);
    }
}

/* ---- the operations ------------------------------------------------------ */

typedef struct ctx {
    const unsigned char *in;
    size_t n;
    unsigned char *out, *out2; /* scratch for encoders, decoders */
    size_t out_cap, out2_cap;
    size_t out_len; /* what the last run produced */
    cas_writer *w_v1, *w_v1_l7, *w_v2, *w_v2_t1, *w_v2_b4m, *w_v2_xxh3, *w_v2_xxh3_b4m, *w_v2_xxh3_t1, *w_v1_t1,
        *w_v1_zlib;
    cas_reader *r;
    LZ4F_dctx *dctx;
    struct libdeflate_decompressor *ld;
    /* blobs made once at setup for the read paths */
    unsigned char *blob_v1, *blob_v2, *blob_zlib3;
    size_t blob_v1_len, blob_v2_len, blob_zlib3_len, zlib3_len;
    const char *gz_path;
    char meta_v1[CAS_META_MAX], meta_v2[CAS_META_MAX];
    char sha1_hex[41];
} ctx;

typedef int (*op_fn)(ctx *c);

static int op_memcpy(ctx *c) {
    memcpy(c->out, c->in, c->n);
    c->out_len = c->n;
    return 0;
}

static int op_sha1(ctx *c) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (!EVP_Digest(c->in, c->n, md, &ml, EVP_sha1(), NULL)) return -1;
    hex(md, ml, (char *)c->out2); /* the hex key, as Metaflow's hexdigest() */
    c->out_len = ml;
    return 0;
}

/* Two threads, each hashing the whole payload: how much of a second core this
 * machine gives right now (t(sha1) / t(sha1_par2) = 1.0 is perfect scaling). */
static void *sha1_thread(void *arg) {
    ctx *c = (ctx *)arg;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    EVP_Digest(c->in, c->n, md, &ml, EVP_sha1(), NULL);
    return NULL;
}
static int op_sha1_par2(ctx *c) {
    pthread_t th;
    if (pthread_create(&th, NULL, sha1_thread, c) != 0) return -1;
    sha1_thread(c);
    pthread_join(th, NULL);
    c->out_len = 20;
    return 0;
}

static int op_xxh3(ctx *c) {
    XXH128_hash_t h = XXH3_128bits(c->in, c->n);
    XXH128_canonical_t can;
    XXH128_canonicalFromHash(&can, h);
    hex(can.digest, 16, (char *)c->out2);
    c->out_len = 16;
    return 0;
}

/* The key alone, through the library (cas_hash): its SHA-1 and XXH3 builds. */
static int op_cas_hash_sha1(ctx *c) {
    c->out_len = 20;
    return cas_hash(CAS_HASH_SHA1, c->in, c->n, (char *)c->out2) == CAS_OK ? 0 : -1;
}
static int op_cas_hash_xxh3(ctx *c) {
    c->out_len = 16;
    return cas_hash(CAS_HASH_XXH3, c->in, c->n, (char *)c->out2) == CAS_OK ? 0 : -1;
}

/* lz4.frame.compress(data) with python-lz4's defaults: fast level, 64 KiB
 * linked blocks, content size stored, no checksums. */
static int lz4f_compress(ctx *c, LZ4F_blockSizeID_t bs) {
    LZ4F_preferences_t p;
    size_t r;
    memset(&p, 0, sizeof p);
    p.frameInfo.blockSizeID = bs;
    p.frameInfo.blockMode = LZ4F_blockLinked;
    p.frameInfo.contentSize = c->n;
    r = LZ4F_compressFrame(c->out, c->out_cap, c->in, c->n, &p);
    if (LZ4F_isError(r)) return -1;
    c->out_len = r;
    return 0;
}
static int op_lz4f_c(ctx *c) { return lz4f_compress(c, LZ4F_max64KB); }
static int op_lz4f_c4m(ctx *c) { return lz4f_compress(c, LZ4F_max4MB); }

/* LZ4F_decompress of the v2 blob (what cas_pack wrote) into a preallocated buffer. */
static int op_lz4f_d(ctx *c) {
    size_t dst = c->out_cap, src = c->blob_v2_len, r;
    r = LZ4F_decompress(c->dctx, c->out, &dst, c->blob_v2, &src, NULL);
    if (r != 0 || src != c->blob_v2_len) {
        LZ4F_resetDecompressionContext(c->dctx);
        return -1;
    }
    c->out_len = dst;
    return 0;
}

/* zlib level 3 with a gzip wrapper, as CPython's gzip.GzipFile(compresslevel=3)
 * drives it (deflateInit per file, default memLevel and strategy). */
static int op_zlib3(ctx *c) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 3, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    z.next_in = (Bytef *)c->in;
    z.avail_in = (uInt)c->n;
    z.next_out = c->out;
    z.avail_out = (uInt)c->out_cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        return -1;
    }
    c->out_len = z.total_out;
    deflateEnd(&z);
    return 0;
}

/* zlib inflate of the zlib-3 blob (what Python's gzip module runs underneath). */
static int op_zlib_d(ctx *c) {
    z_stream z;
    int r;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 31) != Z_OK) return -1;
    z.next_in = c->blob_zlib3;
    z.avail_in = (uInt)c->blob_zlib3_len;
    z.next_out = c->out;
    z.avail_out = (uInt)c->out_cap;
    r = inflate(&z, Z_FINISH);
    c->out_len = z.total_out;
    inflateEnd(&z);
    return r == Z_STREAM_END ? 0 : -1;
}

static int op_libdeflate_d(ctx *c) {
    size_t ain = 0, aout = 0;
    if (libdeflate_gzip_decompress_ex(c->ld, c->blob_zlib3, c->blob_zlib3_len, c->out, c->out_cap, &ain, &aout) !=
        LIBDEFLATE_SUCCESS)
        return -1;
    c->out_len = aout;
    return 0;
}

static int pack(ctx *c, cas_writer *w) {
    size_t len = 0;
    if (cas_pack(w, c->in, c->n, c->out, c->out_cap, &len, (char *)c->out2) != CAS_DONE) return -1;
    c->out_len = len;
    return 0;
}
static int op_cas_v1(ctx *c) { return pack(c, c->w_v1); }
static int op_cas_v1_l7(ctx *c) { return pack(c, c->w_v1_l7); }
static int op_cas_v1_zlib(ctx *c) { return pack(c, c->w_v1_zlib); }
static int op_cas_v2(ctx *c) { return pack(c, c->w_v2); }
static int op_cas_v2_t1(ctx *c) { return pack(c, c->w_v2_t1); }
static int op_cas_v2_b4m(ctx *c) { return pack(c, c->w_v2_b4m); }
static int op_cas_v2_xxh3(ctx *c) { return pack(c, c->w_v2_xxh3); }
static int op_cas_v2_xxh3_b4m(ctx *c) { return pack(c, c->w_v2_xxh3_b4m); }
static int op_cas_v2_xxh3_t1(ctx *c) { return pack(c, c->w_v2_xxh3_t1); }
static int op_cas_v1_t1(ctx *c) { return pack(c, c->w_v1_t1); }

/* Loads as an application does: sidecar + blob in, a fresh buffer out. */
static int unpack_alloc(ctx *c, const char *meta, const unsigned char *blob, size_t n) {
    void *p = NULL;
    size_t len = 0;
    if (cas_reader_begin(c->r, meta, strlen(meta), "Bench/data/00/00", NULL) != CAS_OK) return -1;
    if (cas_reader_unpack(c->r, blob, n, &p, &len) != CAS_DONE) return -1;
    c->out_len = len;
    cas_reader_free_buffer(c->r, p);
    return 0;
}
static int unpack_into(ctx *c, const char *meta, const unsigned char *blob, size_t n) {
    size_t len = 0;
    if (cas_reader_begin(c->r, meta, strlen(meta), "Bench/data/00/00", NULL) != CAS_OK) return -1;
    if (cas_reader_unpack_into(c->r, blob, n, c->out, c->out_cap, &len) != CAS_DONE) return -1;
    c->out_len = len;
    return 0;
}
/* the v1 blob Python's gzip (zlib level 3) wrote: what real stores hold */
static int op_read_v1_zlib(ctx *c) { return unpack_alloc(c, c->meta_v1, c->blob_zlib3, c->blob_zlib3_len); }
static int op_read_v1_zlib_into(ctx *c) { return unpack_into(c, c->meta_v1, c->blob_zlib3, c->blob_zlib3_len); }
static int op_read_v1_own(ctx *c) { return unpack_alloc(c, c->meta_v1, c->blob_v1, c->blob_v1_len); }
static int op_read_v2(ctx *c) { return unpack_alloc(c, c->meta_v2, c->blob_v2, c->blob_v2_len); }
static int op_read_v2_into(ctx *c) { return unpack_into(c, c->meta_v2, c->blob_v2, c->blob_v2_len); }

/* A whole save + load, as a small artifact costs: key + blob, then back. */
static int roundtrip(ctx *c, cas_writer *w, const char *meta) {
    size_t len = 0, dlen = 0;
    void *p = NULL;
    if (cas_pack(w, c->in, c->n, c->out, c->out_cap, &len, (char *)c->out2) != CAS_DONE) return -1;
    if (cas_reader_begin(c->r, meta, strlen(meta), "Bench/data/00/00", NULL) != CAS_OK) return -1;
    if (cas_reader_unpack(c->r, c->out, len, &p, &dlen) != CAS_DONE) return -1;
    cas_reader_free_buffer(c->r, p);
    c->out_len = dlen;
    return 0;
}
static int op_rt_v1(ctx *c) { return roundtrip(c, c->w_v1, c->meta_v1); }
static int op_rt_v2(ctx *c) { return roundtrip(c, c->w_v2, c->meta_v2); }

/* checks: what the op must leave behind */
enum { CHK_NONE, CHK_DECODED, CHK_SHA1, CHK_XXH3, CHK_GZIP, CHK_LZ4, CHK_V1, CHK_V2 };

static const struct opdef {
    const char *name;
    op_fn fn;
    int check;
} OPS[] = {
    {"memcpy", op_memcpy, CHK_DECODED},
    {"sha1", op_sha1, CHK_SHA1},
    {"sha1_par2", op_sha1_par2, CHK_NONE},
    {"xxh3", op_xxh3, CHK_NONE},
    {"cas_hash_sha1", op_cas_hash_sha1, CHK_SHA1},
    {"cas_hash_xxh3", op_cas_hash_xxh3, CHK_NONE},
    {"lz4f_c", op_lz4f_c, CHK_LZ4},
    {"lz4f_c4m", op_lz4f_c4m, CHK_LZ4},
    {"lz4f_d", op_lz4f_d, CHK_DECODED},
    {"zlib3", op_zlib3, CHK_GZIP},
    {"zlib_d", op_zlib_d, CHK_DECODED},
    {"libdeflate_d", op_libdeflate_d, CHK_DECODED},
    {"cas_v1", op_cas_v1, CHK_V1},
    {"cas_v1_l7", op_cas_v1_l7, CHK_V1},
    {"cas_v1_zlib", op_cas_v1_zlib, CHK_V1},
    {"cas_v2", op_cas_v2, CHK_V2},
    {"cas_v2_t1", op_cas_v2_t1, CHK_V2},
    {"cas_v2_b4m", op_cas_v2_b4m, CHK_V2},
    {"cas_v2_xxh3", op_cas_v2_xxh3, CHK_V2},
    {"cas_v2_xxh3_b4m", op_cas_v2_xxh3_b4m, CHK_V2},
    {"cas_v2_xxh3_t1", op_cas_v2_xxh3_t1, CHK_V2},
    {"cas_v1_t1", op_cas_v1_t1, CHK_V1},
    {"read_v1_zlib", op_read_v1_zlib, CHK_NONE},
    {"read_v1_zlib_into", op_read_v1_zlib_into, CHK_DECODED},
    {"read_v1_own", op_read_v1_own, CHK_NONE},
    {"read_v2", op_read_v2, CHK_NONE},
    {"read_v2_into", op_read_v2_into, CHK_DECODED},
    {"rt_v1", op_rt_v1, CHK_NONE},
    {"rt_v2", op_rt_v2, CHK_NONE},
};
#define NOPS (sizeof OPS / sizeof OPS[0])

static cas_writer *mk_writer(int format, int hash, int threads, int level, int block, int backend) {
    cas_writer *w;
    if (cas_writer_create(&w, format, NULL) != CAS_OK) die("cas_writer_create", NULL);
    if (hash && cas_writer_set_param(w, CAS_PARAM_HASH, hash) < 0) die("CAS_PARAM_HASH", NULL);
    if (threads && cas_writer_set_param(w, CAS_PARAM_THREADS, threads) < 0) die("CAS_PARAM_THREADS", NULL);
    if (level && cas_writer_set_param(w, CAS_PARAM_LEVEL, level) < 0) die("CAS_PARAM_LEVEL", NULL);
    if (block && cas_writer_set_param(w, CAS_PARAM_LZ4_BLOCK, block) < 0) die("CAS_PARAM_LZ4_BLOCK", NULL);
    if (backend && cas_writer_set_param(w, CAS_PARAM_GZIP_BACKEND, backend) < 0) die("CAS_PARAM_GZIP_BACKEND", NULL);
    return w;
}

static void setup(ctx *c) {
    size_t cap = c->n + (c->n >> 6) + 65536;
    size_t b1 = cas_pack_bound(CAS_FORMAT_V1, c->n), b2 = cas_pack_bound(CAS_FORMAT_V2, c->n);
    LZ4F_preferences_t p;
    memset(&p, 0, sizeof p);
    p.frameInfo.blockSizeID = LZ4F_max64KB;
    if (b1 > cap) cap = b1;
    if (b2 > cap) cap = b2;
    if (LZ4F_compressFrameBound(c->n, &p) > cap) cap = LZ4F_compressFrameBound(c->n, &p);
    if (compressBound((uLong)c->n) + 64 > cap) cap = compressBound((uLong)c->n) + 64;
    c->out_cap = cap;
    c->out = (unsigned char *)xmalloc(cap);
    c->out2_cap = 256;
    c->out2 = (unsigned char *)xmalloc(c->out2_cap);
    c->w_v1 = mk_writer(CAS_FORMAT_V1, CAS_HASH_SHA1, 0, 0, 0, 0);
    c->w_v1_l7 = mk_writer(CAS_FORMAT_V1, CAS_HASH_SHA1, 0, 7, 0, 0);
    c->w_v1_zlib = mk_writer(CAS_FORMAT_V1, CAS_HASH_SHA1, 0, 0, 0, CAS_BACKEND_ZLIB);
    c->w_v2 = mk_writer(CAS_FORMAT_V2, CAS_HASH_SHA1, 0, 0, 0, 0);
    c->w_v2_t1 = mk_writer(CAS_FORMAT_V2, CAS_HASH_SHA1, 1, 0, 0, 0);
    c->w_v2_b4m = mk_writer(CAS_FORMAT_V2, CAS_HASH_SHA1, 0, 0, 7, 0);
    c->w_v2_xxh3 = mk_writer(CAS_FORMAT_V2, CAS_HASH_XXH3, 0, 0, 0, 0);
    c->w_v2_xxh3_b4m = mk_writer(CAS_FORMAT_V2, CAS_HASH_XXH3, 0, 0, 7, 0);
    c->w_v2_xxh3_t1 = mk_writer(CAS_FORMAT_V2, CAS_HASH_XXH3, 1, 0, 0, 0);
    c->w_v1_t1 = mk_writer(CAS_FORMAT_V1, CAS_HASH_SHA1, 1, 0, 0, 0);
    if (cas_reader_create(&c->r, NULL) != CAS_OK) die("cas_reader_create", NULL);
    if (LZ4F_isError(LZ4F_createDecompressionContext(&c->dctx, LZ4F_VERSION))) die("LZ4F dctx", NULL);
    if (!(c->ld = libdeflate_alloc_decompressor())) die("libdeflate", NULL);
    cas_meta_json(CAS_FORMAT_V1, c->meta_v1, sizeof c->meta_v1, NULL);
    cas_meta_json(CAS_FORMAT_V2, c->meta_v2, sizeof c->meta_v2, NULL);
    /* the read paths' inputs */
    if (op_sha1(c)) die("sha1", NULL);
    memcpy(c->sha1_hex, c->out2, 41);
    if (op_cas_v1(c)) die("cas_pack v1", NULL);
    c->blob_v1_len = c->out_len;
    c->blob_v1 = (unsigned char *)xmalloc(c->out_len);
    memcpy(c->blob_v1, c->out, c->out_len);
    if (op_cas_v2(c)) die("cas_pack v2", NULL);
    c->blob_v2_len = c->out_len;
    c->blob_v2 = (unsigned char *)xmalloc(c->out_len);
    memcpy(c->blob_v2, c->out, c->out_len);
    if (op_zlib3(c)) die("zlib level 3", NULL);
    c->zlib3_len = c->out_len;
    if (c->gz_path) { /* the blob Python's gzip wrote: the v1 reads decode exactly it */
        c->blob_zlib3 = read_file(c->gz_path, &c->blob_zlib3_len);
    } else {
        c->blob_zlib3_len = c->out_len;
        c->blob_zlib3 = (unsigned char *)xmalloc(c->out_len);
        memcpy(c->blob_zlib3, c->out, c->out_len);
    }
}

/* Runs the op once and checks what it left behind against the payload. */
static void check(ctx *c, const struct opdef *d) {
    size_t dl = 0;
    int fmt = 0;
    if (d->fn(c) != 0) die("operation failed", d->name);
    switch (d->check) {
    case CHK_DECODED:
        if (c->out_len != c->n || memcmp(c->out, c->in, c->n)) die("decoded bytes differ", d->name);
        break;
    case CHK_SHA1:
        if (strcmp((char *)c->out2, c->sha1_hex)) die("wrong SHA-1", d->name);
        break;
    case CHK_GZIP:
    case CHK_LZ4:
    case CHK_V1:
    case CHK_V2: {
        unsigned char *tmp = (unsigned char *)malloc(c->n + 1);
        int codec = d->check == CHK_GZIP || d->check == CHK_V1 ? CAS_CODEC_GZIP : CAS_CODEC_LZ4;
        if (!tmp) die("out of memory", NULL);
        if (cas_decode(codec, c->out, c->out_len, tmp, c->n + 1, &dl) != CAS_DONE || dl != c->n ||
            memcmp(tmp, c->in, c->n))
            die("encoded blob does not decode to the payload", d->name);
        free(tmp);
        if ((d->check == CHK_V1 || d->check == CHK_V2) && strncmp(d->name, "cas_v2_xxh3", 11) != 0 &&
            strcmp((char *)c->out2, c->sha1_hex))
            die("cas_pack key is not the SHA-1", d->name);
        (void)fmt;
        break;
    }
    default: break;
    }
}

static int mode_ops(int argc, char **argv) {
    ctx c;
    const struct opdef *sel[NOPS];
    size_t nsel = 0, i, j, k[NOPS], round = 0;
    double target_ns = (argc > 4 ? atof(argv[4]) : 25.0) * 1e6;
    char *list, *tok, line[64];
    memset(&c, 0, sizeof c);
    c.in = read_file(argv[2], &c.n);
    list = strdup(argv[3]);
    for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        for (i = 0; i < NOPS && strcmp(OPS[i].name, tok); i++) {
        }
        if (i == NOPS) die("unknown operation", tok);
        sel[nsel++] = &OPS[i];
    }
    if (argc > 5 && argv[5][0]) c.gz_path = argv[5];
    setup(&c);
    printf("{\"ready\":true,\"n\":%zu,\"sizes\":{\"v1\":%zu,\"v2\":%zu,\"zlib3\":%zu,\"v1_read\":%zu},\"ops\":{", c.n,
           c.blob_v1_len, c.blob_v2_len, c.zlib3_len, c.blob_zlib3_len);
    for (i = 0; i < nsel; i++) {
        double t0, t;
        size_t reps = 1;
        check(&c, sel[i]);
        /* calibrate: grow the inner count until one sample lasts ~target */
        for (;;) {
            clean_upper();
            t0 = now_ns();
            for (j = 0; j < reps; j++)
                if (sel[i]->fn(&c)) die("operation failed", sel[i]->name);
            t = now_ns() - t0;
            if (t >= target_ns * 0.5 || reps >= ((size_t)1 << 24)) break;
            reps = t < 1e3 ? reps * 16 : (size_t)((double)reps * target_ns / t) + 1;
        }
        k[i] = reps;
        printf("%s\"%s\":{\"k\":%zu,\"out_len\":%zu}", i ? "," : "", sel[i]->name, reps, c.out_len);
    }
    printf("}}\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        double ns[NOPS];
        if (!strncmp(line, "quit", 4)) break;
        if (strncmp(line, "round", 5)) die("unknown command", line);
        for (j = 0; j < nsel; j++) { /* rotated start: no op always runs first */
            size_t ii = (j + round) % nsel, r;
            double t0;
            clean_upper();
            t0 = now_ns();
            for (r = 0; r < k[ii]; r++) sel[ii]->fn(&c);
            ns[ii] = (now_ns() - t0) / (double)k[ii];
        }
        round++;
        printf("{");
        for (i = 0; i < nsel; i++) printf("%s\"%s\":%.1f", i ? "," : "", sel[i]->name, ns[i]);
        printf("}\n");
        fflush(stdout);
    }
    free(list);
    return 0;
}

/* ---- batch --------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static double batch_once(const char *dir, int tag, size_t count, const void *const *data, const size_t *sizes,
                         int format, int threads) {
    char root[4096], err[1024];
    cas_store *s;
    char *keys = (char *)malloc(count * CAS_KEY_BUF);
    double t0, t;
    snprintf(root, sizeof root, "%s/store-%d-t%d", dir, tag, threads);
    if (mkdir(root, 0755) != 0 && errno != EEXIST) die("mkdir", root);
    if (cas_store_open(&s, root, NULL, err, sizeof err) != CAS_OK) die("cas_store_open", err);
    t0 = now_ns();
    if (cas_store_put_batch(s, "Bench", count, data, sizes, format, keys, NULL, threads, err, sizeof err) != CAS_OK)
        die("cas_store_put_batch", err);
    t = now_ns() - t0;
    cas_store_close(s);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(keys);
    return t;
}

static int mode_batch(int argc, char **argv) {
    const char *dir = argv[2];
    size_t count = (size_t)atol(argv[3]), size = (size_t)atol(argv[4]), i;
    int format = !strcmp(argv[5], "v2") ? CAS_FORMAT_V2 : CAS_FORMAT_V1, round = 0;
    const void **data = (const void **)malloc(count * sizeof *data);
    size_t *sizes = (size_t *)malloc(count * sizeof *sizes);
    unsigned char *all = (unsigned char *)xmalloc(count * size);
    uint64_t seed = 5;
    char line[64];
    (void)argc;
    gen_f32(&seed, (float *)all, count * size / 4);
    for (i = 0; i < count; i++) data[i] = all + i * size, sizes[i] = size;
    batch_once(dir, -1, count, data, sizes, format, 2); /* warm-up: directories, page cache, allocator */
    printf("{\"ready\":true,\"count\":%zu,\"size\":%zu}\n", count, size);
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        double t1, t2;
        if (!strncmp(line, "quit", 4)) break;
        if (round & 1) {
            t2 = batch_once(dir, round, count, data, sizes, format, 2);
            t1 = batch_once(dir, round, count, data, sizes, format, 1);
        } else {
            t1 = batch_once(dir, round, count, data, sizes, format, 1);
            t2 = batch_once(dir, round, count, data, sizes, format, 2);
        }
        round++;
        printf("{\"batch_t1\":%.1f,\"batch_t2\":%.1f}\n", t1, t2);
        fflush(stdout);
    }
    return 0;
}

/* ---- generator and streaming reader -------------------------------------- */

static int mode_gen(int argc, char **argv) {
    unsigned long long total = strtoull(argv[2], NULL, 10), done = 0;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    size_t chunk = (size_t)1 << 20;
    float *buf = (float *)xmalloc(chunk);
    while (done < total) {
        size_t n = total - done < chunk ? (size_t)(total - done) : chunk, off = 0;
        gen_f32(&seed, buf, (n + 3) / 4);
        while (off < n) {
            ssize_t w = write(1, (unsigned char *)buf + off, n - off);
            if (w < 0) {
                if (errno == EINTR) continue;
                return 1; /* reader went away */
            }
            off += (size_t)w;
        }
        done += n;
    }
    return 0;
}

static int mode_stream(int argc, char **argv) {
    cas_store *s;
    cas_stream *st;
    char err[1024];
    static unsigned char buf[1 << 16];
    unsigned long long total = 0;
    (void)argc;
    if (cas_store_open(&s, argv[2], NULL, err, sizeof err) != CAS_OK) die("cas_store_open", err);
    if (cas_stream_open(s, argv[3], argv[4], &st, err, sizeof err) != CAS_OK) die("open_stream", err);
    for (;;) {
        size_t got = 0;
        if (cas_stream_read(st, buf, sizeof buf, &got) < 0) die("cas_stream_read", cas_stream_message(st));
        if (!got) break;
        total += got;
    }
    cas_stream_close(st);
    cas_store_close(s);
    printf("%llu\n", total);
    return 0;
}

/* Runs a command and writes its peak RSS (KiB) and exit status to OUTFILE.
 * Measured from this small launcher rather than from Python: Linux keeps a
 * process's RSS high-water mark across fork + exec, so a child forked from
 * the benchmark's Python process would report Python's own ~35 MiB. */
static int mode_rss(int argc, char **argv) {
    struct rusage ru;
    int status = 0;
    pid_t pid;
    FILE *f;
    (void)argc;
    pid = fork();
    if (pid < 0) die("fork", strerror(errno));
    if (pid == 0) {
        execvp(argv[3], argv + 3);
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0) die("wait4", strerror(errno));
    if (!(f = fopen(argv[2], "w"))) die("cannot write", argv[2]);
    fprintf(f, "{\"maxrss_kib\":%ld,\"exit\":%d}\n", ru.ru_maxrss,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "ops")) return mode_ops(argc, argv);
    if (argc >= 6 && !strcmp(argv[1], "batch")) return mode_batch(argc, argv);
    if (argc >= 3 && !strcmp(argv[1], "gen-f32")) return mode_gen(argc, argv);
    if (argc >= 5 && !strcmp(argv[1], "stream")) return mode_stream(argc, argv);
    if (argc >= 4 && !strcmp(argv[1], "rss")) return mode_rss(argc, argv);
    fprintf(stderr, "usage: bench_c ops PAYLOAD OP[,OP...] [TARGET_MS [GZIP_BLOB]]\n"
                    "       bench_c batch DIR COUNT SIZE v1|v2\n"
                    "       bench_c gen-f32 BYTES [SEED]\n"
                    "       bench_c stream ROOT FLOW KEY\n"
                    "       bench_c rss OUTFILE COMMAND [ARG...]\n");
    return 2;
}
