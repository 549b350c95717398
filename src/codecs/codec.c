/* ---- sniffing ------------------------------------------------------------ */

CASDEF const char *cas_sniff_name(int sniff) {
    switch (sniff) {
    case CAS_SNIFF_GZIP: return "gzip";
    case CAS_SNIFF_LZ4: return "an LZ4 frame";
    case CAS_SNIFF_ZSTD: return "a zstd frame";
    case CAS_SNIFF_EMPTY: return "empty";
    case CAS_SNIFF_SHORT: return "too short to tell";
    default: return "neither gzip, LZ4 nor zstd";
    }
}

#define CAS__GZIP_MAGIC "\x1f\x8b"
#define CAS__LZ4_MAGIC "\x04\x22\x4d\x18"
#define CAS__GZ_NOT_OURS "Not a gzipped file (%s)" /* Python's words */
#define CAS__LZ4_TRUNC "LZ4 frame ended before the end-of-stream marker was reached"

/* ---- the codec object ---------------------------------------------------- */

/* One row per codec: everything the layers above ask of a codec (the table,
 * cas__codecs, is at the end of the codecs). Adding a codec is its functions, its
 * state (a struct, allocated with each codec object), one row built by
 * CAS__CODEC_ROW and one CAS_NO_* switch; a test build may append rows with
 * CAS_EXTRA_CODECS. A compiled-out codec keeps its row, without functions. */
typedef struct cas__codec_row {
    int id;                       /* CAS_CODEC_*, part of the ABI */
    const char *name;             /* cas_codec_name() */
    int level_max;                /* CAS_PARAM_LEVEL: 0 (the default) .. level_max; 0 = no levels (any is ignored) */
    int sniff;                    /* the CAS_SNIFF_* its streams begin with; 0 = any bytes */
    const unsigned char *magic;   /* the bytes its streams begin with (cas_sniff reads them here) */
    size_t magic_len;             /* 0: none */
    int empty_ok;                 /* zero bytes are a valid, empty stream */
    uint32_t ratio;               /* the most one input byte can decode to */
    int hint_enforced;            /* the size hint is a field its decoder holds the stream to */
    const char *not_ours;         /* the decoder's words for other bytes (%s: repr of 2 bytes); NULL = the reader's */
    const char *cut_magic;        /* the words for a stream that ends inside its magic; NULL = the decoder's */
    size_t state_size;            /* its own state (cas_codec.state), zeroed at creation */
    const cas__param_row *params; /* parameters of its own, beyond cas__codec_params; NULL if none */
    size_t nparams;
    int (*set_param)(cas_codec *c, int param, int64_t v); /* one of params, checked against its row */
    size_t (*bound)(size_t n);
    int (*size_hint)(const unsigned char *p, size_t n, uint64_t *size);
    int (*reset)(cas_codec *c); /* NULL: compiled out */
    int (*update)(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                  size_t *made, int end);
    void (*release)(cas_codec *c);
} cas__codec_row;

/* A row, in cas__codec_row's order. magic is a string literal ("" for none); the
 * build fails when it is longer than CAS__MAGIC_MAX, the most a reader holds back
 * to sniff. params: CAS__NO_PARAMS or CAS__PARAMS(table). Then the functions:
 * set_param (or NULL), bound, size_hint, reset, update, release. */
#define CAS__MAGIC_MAX 4
#define CAS__CODEC_ROW(id, name, level_max, sniff, magic, empty_ok, ratio, hint_enforced, not_ours, cut_magic,   \
                       state_size, params, ...)                                                                  \
    {                                                                                                            \
        id, name, level_max, sniff, (const unsigned char *)magic,                                                \
            sizeof(magic) - 1 + 0 * sizeof(char[sizeof(magic) <= CAS__MAGIC_MAX + 1 ? 1 : -1]), empty_ok, ratio, \
            hint_enforced, not_ours, cut_magic, state_size, params, __VA_ARGS__                                  \
    }
#define CAS__NO_PARAMS NULL, 0
#define CAS__PARAMS(table) table, sizeof table / sizeof table[0]

static const cas__codec_row *cas__codec_find(int id);

enum {
    CAS__GZ_MAGIC,
    CAS__GZ_HEAD,
    CAS__GZ_XLEN,
    CAS__GZ_EXTRA,
    CAS__GZ_NAME,
    CAS__GZ_COMMENT,
    CAS__GZ_HCRC,
    CAS__GZ_BODY,
    CAS__GZ_TRAILER,
    CAS__GZ_PAD,
    CAS__GZ_END
};

#ifndef CAS_NO_GZIP
/* A gzip codec's own state (cas_codec.state), both directions. */
typedef struct cas__gz_state {
    /* header/trailer bytes pending or being collected */
    unsigned char hb[16];
    size_t hb_len, hb_pos;
    unsigned char spill; /* decoder: one byte made while probing a full output */
    int spill_n;
    int gz_state, gz_flags, gz_members;
    uint32_t gz_need; /* bytes of FEXTRA left to skip */
    uint32_t crc;
    uint64_t isize;
    int zinit;  /* 1 deflate, 2 inflate */
    int zlevel; /* the level deflate was set up with */
    int use_isal;
    z_stream z;
#ifdef CAS_USE_ISAL
    struct isal_zstream *iz;
    struct inflate_state *ii;
    unsigned char *ilevel_buf;
    size_t ilevel_size;
#endif
#ifdef CAS_USE_LIBDEFLATE
    struct libdeflate_decompressor *ld;
    struct libdeflate_compressor *lc_def;
    int lc_def_level;
#endif
} cas__gz_state;
#define CAS__GZ(c) ((cas__gz_state *)(c)->state)
#endif

#ifndef CAS_NO_LZ4
/* An LZ4 frame codec's own state (cas_codec.state). */
typedef struct cas__lz4_state {
    LZ4F_cctx *lc;
    LZ4F_dctx *ld4;
    unsigned char *stage; /* compressed bytes waiting for output room */
    size_t stage_cap, stage_len, stage_pos;
    size_t lz4_block_bytes;
    int lz4_begun, lz4_magic_ok; /* lz4_begun: a frame is under way (encoder or ld4) */
    unsigned char lz4_magic[4];
    size_t lz4_magic_len;
} cas__lz4_state;
#define CAS__LZ4(c) ((cas__lz4_state *)(c)->state)
#endif

struct cas_codec {
    cas_allocator alloc;
    const cas__codec_row *row;
    int codec, encode;
    int failed; /* the error code, sticky until reset */
    int done;
    uint64_t total_in, total_out;
    /* parameters */
    int level, backend, strict, lz4_block;
    int64_t pledged, mtime;
    char msg[160];
    void *state; /* the codec's own: row->state_size bytes, allocated with the object */
};

static int cas__fail(cas_codec *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    c->failed = code;
    return code;
}

#ifndef CAS_NO_LZ4
static void *cas__lz4_alloc(void *opaque, size_t n) { return cas__alloc((const cas_allocator *)opaque, n); }
static void *cas__lz4_calloc(void *opaque, size_t n) { return cas__calloc((const cas_allocator *)opaque, n); }
static void cas__lz4_free(void *opaque, void *p) { cas__free((const cas_allocator *)opaque, p); }
static LZ4F_CustomMem cas__lz4_mem(cas_codec *c) {
    LZ4F_CustomMem m;
    m.customAlloc = cas__lz4_alloc;
    m.customCalloc = cas__lz4_calloc;
    m.customFree = cas__lz4_free;
    m.opaqueState = &c->alloc;
    return m;
}
#endif

#ifndef CAS_NO_GZIP
static voidpf cas__z_alloc(voidpf opaque, uInt items, uInt size) {
    if (size && items > (size_t)-1 / size) return Z_NULL;
    return cas__alloc((const cas_allocator *)opaque, (size_t)items * size);
}
static void cas__z_free(voidpf opaque, voidpf p) { cas__free((const cas_allocator *)opaque, p); }

#ifdef CAS_USE_ISAL
/* ISA-L's AVX code can return with the upper vector state dirty, which makes
 * the SSE code that runs next on this thread (XXH3, zlib, the caller's) pay a
 * transition penalty on every instruction; clear it once after each call. */
static void cas__vzeroupper(void) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    static int avx = -1;
    if (avx < 0) avx = __builtin_cpu_supports("avx") ? 1 : 0;
    if (avx) __asm__ __volatile__("vzeroupper" ::: "memory");
#endif
}

#endif

static uint32_t cas__crc32(uint32_t crc, const unsigned char *p, size_t n) {
#ifdef CAS_USE_ISAL
    uint32_t r = crc32_gzip_refl(crc, p, (uint64_t)n);
    cas__vzeroupper();
    return r;
#elif defined(CAS_USE_LIBDEFLATE)
    return libdeflate_crc32(crc, p, n); /* PCLMUL: ~10x zlib 1.2's table loop */
#else
    while (n) {
        uInt k = (uInt)CAS__MIN(n, CAS__CHUNK_MAX);
        crc = (uint32_t)crc32(crc, p, k);
        p += k, n -= k;
    }
    return crc;
#endif
}

static int cas__gzip_backend(const cas_codec *c) {
#ifdef CAS_USE_ISAL
    return c->backend == CAS_BACKEND_ZLIB ? CAS_BACKEND_ZLIB : CAS_BACKEND_ISAL;
#else
    (void)c;
    return CAS_BACKEND_ZLIB;
#endif
}

#ifdef CAS_USE_ISAL
/* zlib levels map onto ISA-L's 1..3; level 0 would expand incompressible data. */
static int cas__isal_level(int level) { return level <= 2 ? 1 : level <= 6 ? 2 : 3; }
static size_t cas__isal_level_buf(int l) {
    return l == 1 ? ISAL_DEF_LVL1_DEFAULT : l == 2 ? ISAL_DEF_LVL2_DEFAULT : ISAL_DEF_LVL3_DEFAULT;
}
#endif
#endif

static int cas__codec_create(cas_codec **out, int codec, int encode, const cas_allocator *a) {
    cas_codec *c;
    size_t head;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!cas__codec_find(codec)) return CAS_E_ARG;
    if (!cas_codec_available(codec)) return CAS_E_UNSUPPORTED;
    head = (sizeof *c + 15) & ~(size_t)15; /* the state after the object, aligned */
    if (!(c = (cas_codec *)cas__obj_new(head + cas__codec_find(codec)->state_size, a))) return CAS_E_NOMEM;
    c->codec = codec, c->row = cas__codec_find(codec), c->encode = encode;
    c->state = c->row->state_size ? (char *)c + head : NULL;
    c->level = 0, c->pledged = -1, c->lz4_block = 7;
    *out = c;
    return cas_codec_reset(c);
}

CASDEF int cas_encoder_create(cas_codec **out, int codec, const cas_allocator *a) {
    return cas__codec_create(out, codec, 1, a);
}
CASDEF int cas_decoder_create(cas_codec **out, int codec, const cas_allocator *a) {
    return cas__codec_create(out, codec, 0, a);
}

CASDEF void cas_codec_free(cas_codec *c) {
    cas_allocator a;
    if (!c) return;
    c->row->release(c);
    a = c->alloc;
    cas__free(&a, c);
}

CASDEF const char *cas_codec_message(const cas_codec *c) { return c ? c->msg : ""; }
CASDEF uint64_t cas_codec_total_in(const cas_codec *c) { return c ? c->total_in : 0; }
CASDEF uint64_t cas_codec_total_out(const cas_codec *c) { return c ? c->total_out : 0; }

CASDEF int cas_codec_reset(cas_codec *c) {
    if (!c) return CAS_E_ARG;
    c->failed = 0, c->done = 0, c->msg[0] = 0;
    c->total_in = c->total_out = 0;
    return c->row->reset(c);
}

/* ---- raw ----------------------------------------------------------------- */

/* A finished stream takes no more input; a decoder calls it trailing. */
static int cas__after_done(cas_codec *c, size_t n) {
    if (n && !c->encode) return cas__fail(c, CAS_E_TRAILING, "unexpected bytes after the end of the stream");
    return n ? CAS_E_STATE : CAS_DONE;
}

static size_t cas__raw_bound(size_t n) { return n; }
static int cas__raw_hint(const unsigned char *p, size_t n, uint64_t *size) {
    (void)p;
    *size = n;
    return CAS_OK;
}

#ifndef CAS_NO_RAW
static int cas__raw_reset(cas_codec *c) {
    (void)c;
    return CAS_OK;
}
static void cas__raw_release(cas_codec *c) { (void)c; }

static int cas__raw_update(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    size_t k = CAS__MIN(n, cap);
    if (c->done) return cas__after_done(c, n);
    if (k) memcpy(out, in, k);
    *used = k, *made = k;
    c->total_in += k, c->total_out += k;
    if (k < n) return CAS_NEED_OUTPUT;
    if (end) {
        c->done = 1;
        return CAS_DONE;
    }
    return CAS_NEED_INPUT;
}
#endif
