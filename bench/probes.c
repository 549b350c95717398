/* probes.c - evidence for tuning cas.h, outside `make bench`: the building
 * blocks cas.h could choose between, timed side by side in one process.
 *
 *   probes tiny FILE      per-call costs on a small payload: SHA-1 set-up
 *                         variants, gzip encoders (ISA-L levels, libdeflate,
 *                         zlib with a reused stream), gzip decoders, LZ4F with a
 *                         reused context
 *   probes levels FILE    gzip encoders on a large payload: speed and size of
 *                         ISA-L levels 1-3, libdeflate levels 1-6, zlib 1 and 3
 *   probes upper FILE     XXH3-128 (SSE2, as cas.h compiles it) and SHA-1 right
 *                         after an ISA-L isal_deflate call on the same thread,
 *                         with and without a VZEROUPPER in between: ISA-L
 *                         returns with the upper vector state dirty
 *   probes xxh FILE       XXH3-128 as cas.h compiles it (xxhash.h inline, -O2:
 *                         SSE2) against the same code built -mavx2 and Debian's
 *                         libxxhash with its runtime dispatch
 *
 * Built by bench/probes.py. Prints "name  median-ns  output-bytes" lines.
 */
#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#define LZ4F_STATIC_LINKING_ONLY
#include <lz4frame.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zlib.h>

size_t probe_xxh_sse2(const void *p, size_t n);
size_t probe_xxh_avx2(const void *p, size_t n);
size_t probe_xxh_lib(const void *p, size_t n);

static const unsigned char *IN;
static size_t N;
static unsigned char *OUT, *DEC;
static size_t CAP;
static size_t out_len;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median over 9 samples of ~20 ms each */
static void timeit(const char *name, void (*fn)(void)) {
    double s[9], t0, t;
    size_t k = 1, i, j;
    for (;;) {
        t0 = now_ns();
        for (j = 0; j < k; j++) fn();
        t = now_ns() - t0;
        if (t > 10e6 || k > ((size_t)1 << 24)) break;
        k = t < 1e3 ? k * 16 : (size_t)((double)k * 20e6 / t) + 1;
    }
    for (i = 0; i < 9; i++) {
        t0 = now_ns();
        for (j = 0; j < k; j++) fn();
        s[i] = (now_ns() - t0) / (double)k;
    }
    qsort(s, 9, sizeof s[0], cmpd);
    printf("%-40s %14.1f ns %12zu B  %8.3f GB/s\n", name, s[4], out_len, (double)N / s[4]);
    fflush(stdout);
}

/* ---- SHA-1 ---- */
static EVP_MD *md_fetched;
static EVP_MD_CTX *md_ctx;
static void sha_evp_digest(void) {
    unsigned char d[20];
    unsigned int l;
    EVP_Digest(IN, N, d, &l, EVP_sha1(), NULL);
    out_len = l;
}
static void sha_evp_fetched_reused(void) {
    unsigned char d[20];
    unsigned int l;
    EVP_DigestInit_ex2(md_ctx, md_fetched, NULL);
    EVP_DigestUpdate(md_ctx, IN, N);
    EVP_DigestFinal_ex(md_ctx, d, &l);
    out_len = l;
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void sha_legacy(void) {
    unsigned char d[20];
    SHA1(IN, N, d);
    out_len = 20;
}
#pragma GCC diagnostic pop

/* ---- gzip encoders ---- */
static struct isal_zstream iz;
static unsigned char *ilvl_buf;
static int ilevel;
static void isal_enc(void) {
    isal_deflate_init(&iz);
    iz.level = (uint32_t)ilevel;
    iz.level_buf = ilvl_buf;
    iz.level_buf_size = ilevel == 0   ? 0
                        : ilevel == 1 ? ISAL_DEF_LVL1_DEFAULT
                        : ilevel == 2 ? ISAL_DEF_LVL2_DEFAULT
                                      : ISAL_DEF_LVL3_DEFAULT;
    iz.gzip_flag = IGZIP_GZIP;
    iz.end_of_stream = 1;
    iz.flush = NO_FLUSH;
    iz.next_in = (uint8_t *)IN;
    iz.avail_in = (uint32_t)N;
    iz.next_out = OUT;
    iz.avail_out = (uint32_t)CAP;
    isal_deflate(&iz);
    out_len = iz.total_out;
}
static void isal_enc_stateless(void) {
    isal_deflate_stateless_init(&iz);
    iz.level = (uint32_t)ilevel;
    iz.level_buf = ilvl_buf;
    iz.level_buf_size = ilevel == 0 ? 0 : ilevel == 1 ? ISAL_DEF_LVL1_DEFAULT : ISAL_DEF_LVL2_DEFAULT;
    iz.gzip_flag = IGZIP_GZIP;
    iz.end_of_stream = 1;
    iz.next_in = (uint8_t *)IN;
    iz.avail_in = (uint32_t)N;
    iz.next_out = OUT;
    iz.avail_out = (uint32_t)CAP;
    isal_deflate_stateless(&iz);
    out_len = iz.total_out;
}
static void isal_enc_static_huff(void) { /* level 1, fixed (static) Huffman tables: no table building */
    isal_deflate_init(&iz);
    iz.level = 1;
    iz.level_buf = ilvl_buf;
    iz.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    isal_deflate_set_hufftables(&iz, NULL, IGZIP_HUFFTABLE_STATIC);
    iz.gzip_flag = IGZIP_GZIP;
    iz.end_of_stream = 1;
    iz.next_in = (uint8_t *)IN;
    iz.avail_in = (uint32_t)N;
    iz.next_out = OUT;
    iz.avail_out = (uint32_t)CAP;
    isal_deflate(&iz);
    out_len = iz.total_out;
}
static struct libdeflate_compressor *ldc[13];
static int ldlevel;
static void ld_enc(void) { out_len = libdeflate_gzip_compress(ldc[ldlevel], IN, N, OUT, CAP); }
static z_stream zs;
static int zlevel;
static void zlib_enc_reused(void) {
    deflateReset(&zs);
    zs.next_in = (Bytef *)IN;
    zs.avail_in = (uInt)N;
    zs.next_out = OUT;
    zs.avail_out = (uInt)CAP;
    deflate(&zs, Z_FINISH);
    out_len = zs.total_out;
}
/* small-window zlib streams kept and reset per blob: the reset clears a hash
 * table of 2^(memLevel+7) entries instead of 32768 */
static z_stream zsm[3];
static int zsm_i;
static void zlib_enc_small(void) {
    z_stream *z = &zsm[zsm_i];
    deflateReset(z);
    z->next_in = (Bytef *)IN;
    z->avail_in = (uInt)N;
    z->next_out = OUT;
    z->avail_out = (uInt)CAP;
    deflate(z, Z_FINISH);
    out_len = z->total_out;
}
static void zlib_enc_fresh(void) {
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, zlevel, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)IN;
    z.avail_in = (uInt)N;
    z.next_out = OUT;
    z.avail_out = (uInt)CAP;
    deflate(&z, Z_FINISH);
    out_len = z.total_out;
    deflateEnd(&z);
}

/* ---- gzip decoders (of the zlib level 3 blob) ---- */
static unsigned char *GZ;
static size_t GZN;
static struct libdeflate_decompressor *ldd;
static void ld_dec(void) {
    size_t got = 0;
    libdeflate_gzip_decompress(ldd, GZ, GZN, DEC, N, &got);
    out_len = got;
}
static struct inflate_state is;
static void isal_dec(void) {
    isal_inflate_init(&is);
    is.crc_flag = ISAL_GZIP;
    is.next_in = GZ;
    is.avail_in = (uint32_t)GZN;
    is.next_out = DEC;
    is.avail_out = (uint32_t)N;
    isal_inflate_stateless(&is);
    out_len = is.total_out;
}
static z_stream zi;
static void zlib_dec_reused(void) {
    inflateReset(&zi);
    zi.next_in = GZ;
    zi.avail_in = (uInt)GZN;
    zi.next_out = DEC;
    zi.avail_out = (uInt)N;
    inflate(&zi, Z_FINISH);
    out_len = zi.total_out;
}

/* ---- LZ4F ---- */
static LZ4F_cctx *cctx;
static void lz4_frame_fresh(void) {
    LZ4F_preferences_t p;
    memset(&p, 0, sizeof p);
    p.frameInfo.contentSize = N;
    out_len = LZ4F_compressFrame(OUT, CAP, IN, N, &p);
}
static void lz4_frame_reused(void) {
    LZ4F_preferences_t p;
    memset(&p, 0, sizeof p);
    p.frameInfo.contentSize = N;
    out_len = LZ4F_compressFrame_usingCDict(cctx, OUT, CAP, IN, N, NULL, &p);
}

static void xxh_sse2(void) { out_len = probe_xxh_sse2(IN, N); }
static void xxh_avx2(void) { out_len = probe_xxh_avx2(IN, N); }
static void xxh_lib(void) { out_len = probe_xxh_lib(IN, N); }

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *p;
    long len;
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)len + 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) exit(1);
    fclose(f);
    *n = (size_t)len;
    return p;
}

int main(int argc, char **argv) {
    int l;
    char name[64];
    if (argc < 3) {
        fprintf(stderr, "usage: probes tiny|levels|xxh FILE\n");
        return 2;
    }
    IN = slurp(argv[2], &N);
    CAP = N + N / 8 + 65536;
    OUT = malloc(CAP);
    DEC = malloc(N + 1);
    memset(OUT, 1, CAP);
    memset(DEC, 1, N + 1);
    ilvl_buf = malloc(ISAL_DEF_LVL3_DEFAULT);
    for (l = 1; l <= 12; l++) ldc[l] = libdeflate_alloc_compressor(l);
    ldd = libdeflate_alloc_decompressor();
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 3, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    memset(&zi, 0, sizeof zi);
    inflateInit2(&zi, 31);
    zlevel = 3;
    zlib_enc_fresh();
    GZN = out_len;
    GZ = malloc(GZN);
    memcpy(GZ, OUT, GZN);
    printf("payload %s: %zu bytes; zlib level 3 gzip: %zu bytes\n", argv[2], N, GZN);
    if (!strcmp(argv[1], "tiny")) {
        md_fetched = EVP_MD_fetch(NULL, "SHA1", NULL);
        md_ctx = EVP_MD_CTX_new();
        LZ4F_createCompressionContext(&cctx, LZ4F_VERSION);
        timeit("sha1 EVP_Digest(EVP_sha1()) [cas.h now]", sha_evp_digest);
        timeit("sha1 fetched EVP_MD + reused ctx", sha_evp_fetched_reused);
        timeit("sha1 SHA1() (deprecated API)", sha_legacy);
        for (ilevel = 1; ilevel <= 3; ilevel++) {
            snprintf(name, sizeof name, "gzip ISA-L level %d%s", ilevel, ilevel == 2 ? " [cas.h level 3]" : "");
            timeit(name, isal_enc);
        }
        ilevel = 1;
        timeit("gzip ISA-L level 1 stateless", isal_enc_stateless);
        timeit("gzip ISA-L level 1 static Huffman", isal_enc_static_huff);
        for (ldlevel = 1; ldlevel <= 6; ldlevel += (ldlevel == 1 ? 2 : 3)) {
            snprintf(name, sizeof name, "gzip libdeflate level %d (reused)", ldlevel);
            timeit(name, ld_enc);
        }
        timeit("gzip zlib level 3 deflateReset (reused)", zlib_enc_reused);
        memset(zsm, 0, sizeof zsm);
        deflateInit2(&zsm[0], 3, Z_DEFLATED, 31, 1, Z_DEFAULT_STRATEGY);
        deflateInit2(&zsm[1], 1, Z_DEFLATED, 31, 1, Z_FIXED);
        deflateInit2(&zsm[2], 0, Z_DEFLATED, 31, 1, Z_DEFAULT_STRATEGY);
        zsm_i = 0, timeit("gzip zlib L3 memLevel 1 (reused)", zlib_enc_small);
        zsm_i = 1, timeit("gzip zlib L1 memLevel 1 fixed Huffman (reused)", zlib_enc_small);
        zsm_i = 2, timeit("gzip zlib L0 stored (reused)", zlib_enc_small);
        zlevel = 3;
        timeit("gzip zlib level 3 deflateInit2 (fresh)", zlib_enc_fresh);
        timeit("gunzip libdeflate [cas.h now]", ld_dec);
        timeit("gunzip ISA-L stateless", isal_dec);
        timeit("gunzip zlib inflateReset (reused)", zlib_dec_reused);
        timeit("lz4 LZ4F_compressFrame (fresh ctx)", lz4_frame_fresh);
        timeit("lz4 compressFrame_usingCDict (reused) [cas.h]", lz4_frame_reused);
    } else if (!strcmp(argv[1], "levels")) {
        for (ilevel = 1; ilevel <= 3; ilevel++) {
            snprintf(name, sizeof name, "gzip ISA-L level %d%s", ilevel, ilevel == 2 ? " [cas.h level 3]" : "");
            timeit(name, isal_enc);
        }
        for (ldlevel = 1; ldlevel <= 6; ldlevel++) {
            snprintf(name, sizeof name, "gzip libdeflate level %d", ldlevel);
            timeit(name, ld_enc);
        }
        for (zlevel = 1; zlevel <= 3; zlevel += 2) {
            snprintf(name, sizeof name, "gzip zlib level %d", zlevel);
            timeit(name, zlib_enc_fresh);
        }
    } else if (!strcmp(argv[1], "upper")) {
        int i;
        md_fetched = EVP_MD_fetch(NULL, "SHA1", NULL);
        md_ctx = EVP_MD_CTX_new();
        for (i = 0; i < 3; i++) {
            double t0, t_clean, t_dirty, s_clean, s_dirty;
            ilevel = 2;
            __asm__ volatile("vzeroupper");
            t0 = now_ns(), xxh_sse2(), t_clean = now_ns() - t0;
            t0 = now_ns(), sha_evp_fetched_reused(), s_clean = now_ns() - t0;
            isal_enc(); /* returns with the upper halves of the vector registers dirty */
            t0 = now_ns(), xxh_sse2(), t_dirty = now_ns() - t0;
            isal_enc();
            t0 = now_ns(), sha_evp_fetched_reused(), s_dirty = now_ns() - t0;
            printf("xxh3-128 SSE2: clean %9.0f ns, after isal_deflate %9.0f ns (%.1fx);  "
                   "SHA-1: clean %9.0f ns, after isal_deflate %9.0f ns\n",
                   t_clean, t_dirty, t_dirty / t_clean, s_clean, s_dirty);
        }
    } else if (!strcmp(argv[1], "xxh")) {
        timeit("xxh3-128 inline -O2 (SSE2) [cas.h now]", xxh_sse2);
        timeit("xxh3-128 inline -O2 -mavx2", xxh_avx2);
        timeit("xxh3-128 libxxhash XXH3_128bits_dispatch", xxh_lib);
    }
    return 0;
}
