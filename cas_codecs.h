/* cas_codecs.h - gzip, LZ4 frame and raw codecs for cas.h, one streaming shape
 *
 * The lower layer of cas.h (Metaflow's content-addressed artifact store in C).
 * It can be used on its own; cas.h includes it.
 *
 *   #define CAS_CODECS_IMPLEMENTATION   (or CAS_IMPLEMENTATION, which implies it)
 *   #include "cas_codecs.h"
 *
 * Usage (streaming; every codec has this one shape):
 *
 *   cas_codec *c;
 *   if (cas_decoder_create(&c, CAS_CODEC_GZIP, NULL) != CAS_OK) ...;
 *   for (;;) {
 *       size_t used, made;
 *       int st = cas_codec_update(c, in, in_len, &used, out, out_cap, &made, at_eof);
 *       consume(out, made); in += used; in_len -= used;
 *       if (st == CAS_DONE) break;
 *       if (st < 0) { fprintf(stderr, "%s\n", cas_codec_message(c)); break; }
 *       if (st == CAS_NEED_INPUT) refill(&in, &in_len, &at_eof);
 *   }
 *   cas_codec_free(c);
 *
 * Config macros (define before including the implementation):
 *
 *   CAS_CODECS_IMPLEMENTATION  emit the implementation in this translation unit
 *   CAS_STATIC                 make every function static (CASDEF = static)
 *   CASDEF                     override the linkage/visibility of public functions
 *   CAS_NO_GZIP                compile gzip out (no zlib needed)
 *   CAS_NO_LZ4                 compile the LZ4 frame codec out (no liblz4 needed)
 *   CAS_NO_RAW                 compile the raw (stored as is) codec out
 *   CAS_USE_ISAL               gzip encode and decode through ISA-L igzip (-lisal),
 *                              10-30x faster than zlib level 3, same format
 *   CAS_USE_LIBDEFLATE         libdeflate (-ldeflate): whole-buffer gzip encode of compressible
 *                              data (beside ISA-L), or whole-buffer decode (without ISA-L: it
 *                              accepts the reserved length symbols 286/287 zlib and Python refuse)
 *   CAS_MALLOC(n), CAS_FREE(p) the default allocator (malloc/free); both or neither
 *   CAS_EXTRA_CODECS           test builds: more rows for the codec table (CAS__CODEC_ROW;
 *                              CAS_EXTRA_CODEC_PARAMS: their parameter tables),
 *                              as tests/test_toy_codec.c does
 *
 * Link with -lz (gzip) and -llz4 (LZ4), plus -lisal / -ldeflate when enabled.
 *
 * Contracts shared by every function here:
 * - errors are negative codes from CAS_STATUS_LIST; cas_strerror() names them;
 * - sizes come back through out-parameters; a NULL allocator means malloc/free;
 * - a codec object is used by one thread at a time; distinct objects are
 *   independent, so one per thread is safe.
 */
#ifndef CAS_CODECS_H
#define CAS_CODECS_H

/* The one place the version is defined; amalgamate.py reads these lines. */
#define CAS_VERSION_MAJOR 0
#define CAS_VERSION_MINOR 1
#define CAS_VERSION_PATCH 0
#define CAS_VERSION_STRING "0.1.0"

#include <stddef.h>
#include <stdint.h>

#ifndef CASDEF
#ifdef CAS_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define CASDEF static __attribute__((unused)) /* callers use a subset */
#else
#define CASDEF static
#endif
#else
#define CASDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One list generates the status codes and their names (as lz4frame does).
 * 0 and the positive values are progress; negative values are errors. */
#define CAS_STATUS_LIST(X)                                              \
    X(CAS_OK, 0, "ok")                                                  \
    X(CAS_NEED_INPUT, 1, "more input needed")                           \
    X(CAS_NEED_OUTPUT, 2, "more output space needed")                   \
    X(CAS_E_NOMEM, -1, "out of memory")                                 \
    X(CAS_E_ARG, -2, "invalid argument")                                \
    X(CAS_E_STATE, -3, "call out of sequence")                          \
    X(CAS_E_UNSUPPORTED, -4, "codec or hash not compiled in")           \
    X(CAS_E_CORRUPT, -5, "corrupt compressed data")                     \
    X(CAS_E_TRUNCATED, -6, "compressed data ended early")               \
    X(CAS_E_TRAILING, -7, "unexpected bytes after the compressed data") \
    X(CAS_E_LIMIT, -8, "decoded size exceeds the configured limit")     \
    X(CAS_E_META, -9, "metadata is not a JSON object")                  \
    X(CAS_E_VERSION_MISSING, -10, "metadata has no encoding version")   \
    X(CAS_E_VERSION_UNKNOWN, -11, "unknown encoding version")           \
    X(CAS_E_MISMATCH, -12, "metadata disagrees with the blob's bytes")  \
    X(CAS_E_HASH, -13, "content does not hash to its key")              \
    X(CAS_E_KEY, -14, "invalid key")                                    \
    X(CAS_E_NAME, -15, "invalid flow name, pathspec or artifact name")  \
    X(CAS_E_NOTFOUND, -16, "not found")                                 \
    X(CAS_E_IO, -17, "I/O error")                                       \
    X(CAS_E_JSON, -18, "malformed JSON")                                \
    X(CAS_E_SIZE, -19, "content size differs from the recorded size")

#define CAS__STATUS_ENUM(name, value, text) name = value,
typedef enum cas_status { CAS_STATUS_LIST(CAS__STATUS_ENUM) CAS__STATUS_END_ } cas_status;
#undef CAS__STATUS_ENUM
#define CAS_DONE CAS_OK /* a stream is complete */

/* The longest message any object or call of this library writes, its NUL
 * included: an err buffer this size never cuts one. */
#define CAS_MESSAGE_MAX 512

/* Never NULL; unknown codes give "unknown status". */
CASDEF const char *cas_strerror(int code);
/* The enumerator's name, e.g. "CAS_E_TRUNCATED"; never NULL. */
CASDEF const char *cas_status_name(int code);
CASDEF const char *cas_version_string(void);
/* MAJOR * 10000 + MINOR * 100 + PATCH, for bindings that cannot see macros. */
CASDEF int cas_version_number(void);

/* Per-object allocator. A NULL pointer, or alloc == NULL, means CAS_MALLOC/CAS_FREE.
 * The struct is copied at create time. */
typedef struct cas_allocator {
    void *(*alloc)(void *user, size_t size);
    void (*free)(void *user, void *ptr);
    void *user;
} cas_allocator;
/* Codec ids. The numbers are part of the ABI. */
#define CAS_CODEC_RAW 1  /* stored as is */
#define CAS_CODEC_GZIP 2 /* RFC 1952, what cas_version 1 stores */
#define CAS_CODEC_LZ4 3  /* LZ4 frame, what cas_version 2 stores */

/* Returns 1 when the codec was compiled in. */
CASDEF int cas_codec_available(int codec);
CASDEF const char *cas_codec_name(int codec); /* "raw", "gzip", "lz4", "?" */

/* Parameters (cas_codec_set_param), all optional. Set before the first update
 * or right after cas_codec_reset. */
#define CAS_PARAM_LEVEL 1 /* encoder: gzip 1..9 (zlib's scale, default 3); lz4 1..12 (default 1) */
/* encoder: total input size, or -1 (unknown, the default); LZ4 stores it as the frame's content
 * size */
#define CAS_PARAM_PLEDGED_SIZE 2
#define CAS_PARAM_GZIP_BACKEND 3 /* encoder/decoder: CAS_BACKEND_* */
/* encoder: LZ4 block size id 4 (64 KiB, python-lz4's) .. 7 (4 MiB, the default: 2-4x faster on big
 * artifacts; inputs under a block get the smallest size that holds them, as python-lz4 does) */
#define CAS_PARAM_LZ4_BLOCK 4
/* decoder: 1 = reject bytes after the LZ4 frame (python-lz4 and Metaflow PR #3090 ignore them;
 * default 0) */
#define CAS_PARAM_STRICT 5
#define CAS_PARAM_MTIME 6 /* gzip encoder: header mtime (default 0) */

#define CAS_BACKEND_AUTO 0 /* the fastest compiled in */
#define CAS_BACKEND_ZLIB 1 /* zlib: byte-identical to CPython's gzip at the same level and mtime */
#define CAS_BACKEND_ISAL 2 /* ISA-L igzip (CAS_USE_ISAL) */

typedef struct cas_codec cas_codec;

CASDEF int cas_encoder_create(cas_codec **out, int codec, const cas_allocator *alloc);
CASDEF int cas_decoder_create(cas_codec **out, int codec, const cas_allocator *alloc);
CASDEF int cas_codec_set_param(cas_codec *c, int param, int64_t value);

/* Consumes from in and writes to out; reports both counts separately.
 * end = 1 says no input follows the in_size bytes given now.
 * Returns CAS_NEED_INPUT (all input consumed, give more or set end),
 * CAS_NEED_OUTPUT (out is full, call again with room), CAS_DONE, or an error.
 * Encoders return CAS_DONE once end was set and everything is written.
 * Decoders return CAS_DONE when the stream is complete: gzip only once end is
 * set (members may follow); LZ4 at the end of the first frame, with *in_used
 * short of in_size when bytes follow it (an error under CAS_PARAM_STRICT).
 * After an error the codec stays failed until cas_codec_reset. */
CASDEF int cas_codec_update(cas_codec *c, const void *in, size_t in_size, size_t *in_used, void *out, size_t out_cap,
                            size_t *out_made, int end);
/* Ready for a new stream, same codec and parameters; keeps its allocations. */
CASDEF int cas_codec_reset(cas_codec *c);
CASDEF void cas_codec_free(cas_codec *c);
/* The reason of the last error in Python's words where Python has some
 * (e.g. "Compressed file ended before the end-of-stream marker was reached");
 * "" when there was none. Never NULL. */
CASDEF const char *cas_codec_message(const cas_codec *c);
CASDEF uint64_t cas_codec_total_in(const cas_codec *c);
CASDEF uint64_t cas_codec_total_out(const cas_codec *c);

/* One-shot helpers. The bound is the most an encoder can write for n bytes. */
CASDEF size_t cas_encode_bound(int codec, size_t n);
/* Encodes with default parameters and the given level (0 = default). */
CASDEF int cas_encode(int codec, int level, const void *in, size_t n, void *out, size_t cap, size_t *out_len);
/* Decodes a whole stream; CAS_NEED_OUTPUT when cap is too small. */
CASDEF int cas_decode(int codec, const void *in, size_t n, void *out, size_t cap, size_t *out_len);
/* Whole-buffer encode/decode through an existing codec (reset first): reuses its
 * tables, which is what small blobs cost. Decoding prefers libdeflate when built
 * with it. */
CASDEF int cas_codec_encode_all(cas_codec *c, const void *in, size_t n, void *out, size_t cap, size_t *out_len);
CASDEF int cas_codec_decode_all(cas_codec *c, const void *in, size_t n, void *out, size_t cap, size_t *out_len);
/* What the stream itself says its decoded size is: the LZ4 frame's content
 * size, or the gzip trailer's length when the buffer is a single member.
 * CAS_OK with *size set, or CAS_NOTFOUND-like CAS_E_NOTFOUND when it does not say.
 * A hint only: hostile input can lie, decoders check. */
CASDEF int cas_decoded_size_hint(int codec, const void *in, size_t n, uint64_t *size);

/* Magic-number sniffing of a blob's first bytes. */
#define CAS_SNIFF_UNKNOWN 0
#define CAS_SNIFF_GZIP 1 /* 1f 8b */
#define CAS_SNIFF_LZ4 2  /* 04 22 4d 18 */
#define CAS_SNIFF_ZSTD 3 /* 28 b5 2f fd */
#define CAS_SNIFF_EMPTY 4
#define CAS_SNIFF_SHORT 5 /* fewer bytes than needed, consistent with a magic so far */
CASDEF int cas_sniff(const void *p, size_t n);
CASDEF const char *cas_sniff_name(int sniff); /* "gzip", "an LZ4 frame", ... */

/* Python-style repr of bytes, e.g. b'\x1f' (used in gzip's messages).
 * Writes at most cap bytes including the NUL; returns the length written. */
CASDEF size_t cas_bytes_repr(const void *p, size_t n, char *buf, size_t cap);
#ifdef __cplusplus
}
#endif
#endif /* CAS_CODECS_H */

/* ========================================================================== */
/*                               IMPLEMENTATION                               */
/* ========================================================================== */

#if (defined(CAS_CODECS_IMPLEMENTATION) || defined(CAS_IMPLEMENTATION)) && !defined(CAS_CODECS_IMPLEMENTED)
#define CAS_CODECS_IMPLEMENTED

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CAS_NO_GZIP
#include <zlib.h>
#ifdef CAS_USE_ISAL
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#endif
#ifdef CAS_USE_LIBDEFLATE
#include <libdeflate.h>
#endif
#else
#undef CAS_USE_ISAL
#undef CAS_USE_LIBDEFLATE
#endif

#ifndef CAS_NO_LZ4
#define LZ4F_STATIC_LINKING_ONLY /* for the allocator-taking constructors */
#include <lz4.h> /* the block decoder: cas_unpack_v2_fd decodes a frame's blocks itself */
#include <lz4frame.h>
#endif

#if defined(CAS_MALLOC) != defined(CAS_FREE)
#error "define CAS_MALLOC and CAS_FREE together, or neither"
#endif
#ifndef CAS_MALLOC
#define CAS_MALLOC(n) malloc(n)
#define CAS_FREE(p) free(p)
#endif

#define CAS__MIN(a, b) ((a) < (b) ? (a) : (b))
#if defined(__GNUC__) || defined(__clang__)
#define CAS__UNUSED __attribute__((unused)) /* used by some configurations only */
#else
#define CAS__UNUSED
#endif
/* zlib and ISA-L count in 32-bit fields; feed them at most this much at once. */
#define CAS__CHUNK_MAX ((size_t)1 << 30)

#ifdef __cplusplus
extern "C" {
#endif

CASDEF const char *cas_strerror(int code) {
    switch (code) {
#define CAS__STATUS_TEXT(name, value, text) \
    case value: return text;
        CAS_STATUS_LIST(CAS__STATUS_TEXT)
#undef CAS__STATUS_TEXT
    default: return "unknown status";
    }
}

CASDEF const char *cas_status_name(int code) {
    switch (code) {
#define CAS__STATUS_NAME(name, value, text) \
    case value: return #name;
        CAS_STATUS_LIST(CAS__STATUS_NAME)
#undef CAS__STATUS_NAME
    default: return "CAS_UNKNOWN";
    }
}

CASDEF const char *cas_version_string(void) { return CAS_VERSION_STRING; }
CASDEF int cas_version_number(void) { return CAS_VERSION_MAJOR * 10000 + CAS_VERSION_MINOR * 100 + CAS_VERSION_PATCH; }
/* ---- allocation ---------------------------------------------------------- */

static void *cas__alloc(const cas_allocator *a, size_t n) {
    if (n == 0) n = 1;
    if (a && a->alloc) return a->alloc(a->user, n);
    return CAS_MALLOC(n);
}

static void cas__free(const cas_allocator *a, void *p) {
    if (!p) return;
    if (a && a->alloc) {
        if (a->free) a->free(a->user, p);
        return;
    }
    CAS_FREE(p);
}

static void *cas__calloc(const cas_allocator *a, size_t n) {
    void *p = cas__alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

static void cas__copy_allocator(cas_allocator *dst, const cas_allocator *src) {
    if (src && src->alloc) *dst = *src;
    else memset(dst, 0, sizeof *dst);
}

/* A zeroed object whose first member is the allocator it came from (a copy of a). */
static void *cas__obj_new(size_t size, const cas_allocator *a) {
    cas_allocator *o = (cas_allocator *)cas__calloc(a, size);
    if (o) cas__copy_allocator(o, a);
    return o;
}

/* A formatted message into a fixed buffer; never overflows, always terminated. */
static void cas__fmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    if (!cap) return;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

CASDEF size_t cas_bytes_repr(const void *p, size_t n, char *buf, size_t cap) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i, o = 0;
    char q = '\'';
    char tmp[8];
    if (!cap) return 0;
    /* Python switches to double quotes when ' occurs and " does not. */
    if (memchr(s, '\'', n) && !memchr(s, '"', n)) q = '"';
#define CAS__PUT(str)                 \
    do {                              \
        size_t l_ = strlen(str);      \
        if (o + l_ >= cap) goto done; \
        memcpy(buf + o, str, l_);     \
        o += l_;                      \
    } while (0)
    tmp[0] = 'b', tmp[1] = q, tmp[2] = 0;
    CAS__PUT(tmp);
    for (i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c == '\\') CAS__PUT("\\\\");
        else if (c == (unsigned char)q) {
            tmp[0] = '\\', tmp[1] = q, tmp[2] = 0;
            CAS__PUT(tmp);
        } else if (c == '\t') CAS__PUT("\\t");
        else if (c == '\n') CAS__PUT("\\n");
        else if (c == '\r') CAS__PUT("\\r");
        else if (c < 32 || c >= 127) {
            cas__fmt(tmp, sizeof tmp, "\\x%02x", c);
            CAS__PUT(tmp);
        } else {
            tmp[0] = (char)c, tmp[1] = 0;
            CAS__PUT(tmp);
        }
    }
    tmp[0] = q, tmp[1] = 0;
    CAS__PUT(tmp);
#undef CAS__PUT
done:
    buf[o] = 0;
    return o;
}
/* ---- parameters and rows: one row type, one lookup, one check ------------- */

/* Who takes a parameter. The layer that numbers a parameter lists its row, in a
 * table of cas__param_row, whatever the object: codecs, writers, readers and stores
 * here and in cas.h, object-store backends in cas_cloud.h, previews in
 * cas_pickle.h. One row type, one lookup (cas__param_find), one check
 * (cas__param_check). */
#define CAS__FOR_CODEC 1
#define CAS__FOR_WRITER 2
#define CAS__FOR_READER 4
#define CAS__FOR_STORE 8
#define CAS__FOR_BACKEND 16
#define CAS__FOR_PREVIEW 32

typedef struct cas__param_row {
    int id;
    unsigned who;            /* CAS__FOR_* */
    int64_t lo, hi;          /* outside: CAS_E_ARG */
    int (*built)(int64_t v); /* nullable: CAS_OK, or why an in-bounds value cannot be had here */
    int64_t dflt;            /* where the owner keeps values by row: a new object's value */
    const char *env;         /* where that default may come from instead (object stores), or NULL */
    int64_t env_scale;       /* the variable's unit in the parameter's (seconds for ms: 1000) */
} cas__param_row;
#define CAS__PARAM(id, who, lo, hi, built) \
    { id, who, lo, hi, built, 0, NULL, 0 }
#define CAS__PARAM_DEFAULT(id, who, lo, hi, dflt) \
    { id, who, lo, hi, NULL, dflt, NULL, 0 }
#define CAS__PARAM_ENV(id, who, lo, hi, dflt, env, scale) \
    { id, who, lo, hi, NULL, dflt, env, scale }

/* The row whose first member, an int key, is key: every table here starts so. */
static const void *cas__row_find(const void *table, size_t rows, size_t size, int key) {
    const char *p = (const char *)table;
    size_t i;
    for (i = 0; i < rows; i++, p += size)
        if (*(const int *)(const void *)p == key) return p;
    return NULL;
}

static const cas__param_row *cas__param_find(const cas__param_row *t, size_t n, int id) {
    return (const cas__param_row *)cas__row_find(t, n, sizeof *t, id);
}
#define CAS__PARAM_FIND(table, id) cas__param_find(table, sizeof table / sizeof table[0], id)

/* The one check: CAS_E_ARG for a parameter `who` does not take or a value out of
 * bounds, CAS_E_UNSUPPORTED for one this build lacks, else CAS_OK. */
static int cas__param_check(const cas__param_row *row, unsigned who, int64_t v) {
    if (!row || !(row->who & who) || v < row->lo || v > row->hi) return CAS_E_ARG;
    return row->built ? row->built(v) : CAS_OK;
}
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
/* ---- gzip ---------------------------------------------------------------- */
#ifndef CAS_NO_GZIP

static int cas__gz_reset(cas_codec *c) {
    cas__gz_state *g = CAS__GZ(c);
    int be = cas__gzip_backend(c);
    g->hb_len = g->hb_pos = 0, g->spill_n = 0;
    g->gz_state = CAS__GZ_MAGIC, g->gz_flags = 0, g->gz_members = 0, g->gz_need = 0;
    g->crc = 0, g->isize = 0;
    g->use_isal = be == CAS_BACKEND_ISAL;
    if (c->encode) {
        int lvl = c->level ? c->level : 3;
        unsigned char *h = g->hb;
        uint32_t mt = (uint32_t)c->mtime;
        /* CPython's header: XFL 2 at level 9, 4 at level 1, else 0; OS 255. */
        memcpy(h, CAS__GZIP_MAGIC, 2), h[2] = 8, h[3] = 0;
        h[4] = (unsigned char)mt, h[5] = (unsigned char)(mt >> 8);
        h[6] = (unsigned char)(mt >> 16), h[7] = (unsigned char)(mt >> 24);
        h[8] = (unsigned char)(lvl == 9 ? 2 : lvl == 1 ? 4 : 0), h[9] = 0xff;
        g->hb_len = 10;
        g->gz_state = CAS__GZ_HEAD; /* encoder: header pending */
#ifdef CAS_USE_ISAL
        if (g->use_isal) {
            int il = cas__isal_level(lvl);
            size_t need = cas__isal_level_buf(il);
            if (!g->iz) {
                g->iz = (struct isal_zstream *)cas__alloc(&c->alloc, sizeof *g->iz);
                if (!g->iz) return cas__fail(c, CAS_E_NOMEM, "out of memory");
            }
            if (g->ilevel_size < need) {
                cas__free(&c->alloc, g->ilevel_buf);
                g->ilevel_buf = (unsigned char *)cas__alloc(&c->alloc, need);
                g->ilevel_size = g->ilevel_buf ? need : 0;
                if (!g->ilevel_buf) return cas__fail(c, CAS_E_NOMEM, "out of memory");
            }
            isal_deflate_init(g->iz);
            g->iz->level = (uint32_t)il;
            g->iz->level_buf = g->ilevel_buf;
            g->iz->level_buf_size = (uint32_t)need;
            g->iz->gzip_flag = IGZIP_GZIP_NO_HDR; /* ISA-L writes CRC and length */
            return CAS_OK;
        }
#endif
        if (g->zinit == 1 && g->zlevel == lvl) {
            if (deflateReset(&g->z) != Z_OK) return cas__fail(c, CAS_E_NOMEM, "deflateReset failed");
        } else {
            if (g->zinit == 1) deflateEnd(&g->z);
            g->zinit = 0;
            memset(&g->z, 0, sizeof g->z);
            g->z.zalloc = cas__z_alloc, g->z.zfree = cas__z_free, g->z.opaque = &c->alloc;
            /* CPython's GzipFile: raw deflate, window 15, memLevel 8, default strategy */
            if (deflateInit2(&g->z, lvl, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                return cas__fail(c, CAS_E_NOMEM, "deflateInit2 failed");
            g->zinit = 1, g->zlevel = lvl;
        }
    } else {
#ifdef CAS_USE_ISAL
        if (g->use_isal) {
            if (!g->ii) {
                g->ii = (struct inflate_state *)cas__alloc(&c->alloc, sizeof *g->ii);
                if (!g->ii) return cas__fail(c, CAS_E_NOMEM, "out of memory");
            }
            isal_inflate_init(g->ii);
            g->ii->crc_flag = ISAL_DEFLATE;
            return CAS_OK;
        }
#endif
        if (g->zinit == 2) {
            if (inflateReset(&g->z) != Z_OK) return cas__fail(c, CAS_E_NOMEM, "inflateReset failed");
        } else {
            memset(&g->z, 0, sizeof g->z);
            g->z.zalloc = cas__z_alloc, g->z.zfree = cas__z_free, g->z.opaque = &c->alloc;
            if (inflateInit2(&g->z, -15) != Z_OK) return cas__fail(c, CAS_E_NOMEM, "inflateInit2 failed");
            g->zinit = 2;
        }
    }
    return CAS_OK;
}

static void cas__gz_release(cas_codec *c) {
    cas__gz_state *g = CAS__GZ(c);
    if (g->zinit == 1) deflateEnd(&g->z);
    if (g->zinit == 2) inflateEnd(&g->z);
    g->zinit = 0;
#ifdef CAS_USE_ISAL
    cas__free(&c->alloc, g->iz), g->iz = NULL;
    cas__free(&c->alloc, g->ii), g->ii = NULL;
    cas__free(&c->alloc, g->ilevel_buf), g->ilevel_buf = NULL;
#endif
#ifdef CAS_USE_LIBDEFLATE
    if (g->ld) libdeflate_free_decompressor(g->ld);
    if (g->lc_def) libdeflate_free_compressor(g->lc_def);
    g->ld = NULL, g->lc_def = NULL;
#endif
}


/* Moves pending header/trailer bytes (hb[hb_pos..hb_len)) to out. */
static size_t cas__drain_hb(cas_codec *c, unsigned char *out, size_t cap) {
    cas__gz_state *g = CAS__GZ(c);
    size_t k = CAS__MIN(cap, g->hb_len - g->hb_pos);
    memcpy(out, g->hb + g->hb_pos, k);
    g->hb_pos += k;
    return k;
}

#ifdef CAS_USE_ISAL
/* Raw deflate of a whole buffer with ISA-L's stateless compressor (no internal
 * copies). Level 0 is static Huffman or stored: for tiny inputs it is 20x
 * cheaper than any table-building level and the bytes saved are noise. */
static int cas__isal_whole(cas_codec *c, int level, const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                           size_t *len) {
    struct isal_zstream *s;
    int r;
    if (n > CAS__CHUNK_MAX || cap > CAS__CHUNK_MAX * 2) return 1;
    if (!CAS__GZ(c)->iz && !(CAS__GZ(c)->iz = (struct isal_zstream *)cas__alloc(&c->alloc, sizeof *CAS__GZ(c)->iz)))
        return cas__fail(c, CAS_E_NOMEM, "out of memory");
    s = CAS__GZ(c)->iz;
    isal_deflate_stateless_init(s);
    s->level = (uint32_t)level;
    if (level) {
        size_t need = cas__isal_level_buf(level);
        if (CAS__GZ(c)->ilevel_size < need) {
            cas__free(&c->alloc, CAS__GZ(c)->ilevel_buf);
            CAS__GZ(c)->ilevel_buf = (unsigned char *)cas__alloc(&c->alloc, need);
            CAS__GZ(c)->ilevel_size = CAS__GZ(c)->ilevel_buf ? need : 0;
            if (!CAS__GZ(c)->ilevel_buf) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        }
        s->level_buf = CAS__GZ(c)->ilevel_buf, s->level_buf_size = (uint32_t)need;
    }
    s->next_in = (uint8_t *)(uintptr_t)in, s->avail_in = (uint32_t)n;
    s->next_out = out, s->avail_out = (uint32_t)CAS__MIN(cap, (size_t)UINT32_MAX);
    s->end_of_stream = 1, s->flush = NO_FLUSH, s->gzip_flag = 0;
    r = isal_deflate_stateless(s);
    cas__vzeroupper();
    if (r != COMP_OK) return 1; /* e.g. output overflow: the streaming path takes over */
    *len = s->total_out;
    return 0;
}
#endif

#ifdef CAS_USE_ISAL
#define CAS__STORED_BLOB 1024 /* well inside one filesystem block: stored as is */
#define CAS__SMALL_BLOB 4096  /* one filesystem block: static Huffman at most */

/* The whole input at once with room for the worst case: pick the fastest
 * encoder for these bytes. Returns CAS_DONE, an error, or 1 to fall back to
 * the streaming path (which is also the zlib path, byte-identical to CPython). */
static int cas__gz_encode_whole(cas_codec *c, const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                                size_t *made) {
    cas__gz_state *g = CAS__GZ(c);
    size_t body = 0;
    int r = 1, lvl = c->level ? c->level : 3;
    uint32_t crc;
    if (!g->use_isal || cap < cas_encode_bound(CAS_CODEC_GZIP, n)) return 1;
    if (n <= CAS__STORED_BLOB) {
        /* one stored block: it takes the same filesystem block as any encoding
         * of these bytes, and costs a copy where a Huffman pass costs 10x more */
        unsigned char *b = out + 10;
        b[0] = 1, b[1] = (unsigned char)n, b[2] = (unsigned char)(n >> 8);
        b[3] = (unsigned char)~n, b[4] = (unsigned char)(~n >> 8);
        if (n) memcpy(b + 5, in, n);
        body = n + 5, r = 0;
    } else if (n <= CAS__SMALL_BLOB) {
        r = cas__isal_whole(c, 0, in, n, out + 10, cap - 18, &body);
    } else {
#ifdef CAS_USE_LIBDEFLATE
        /* Compressible data (text, JSON, pickled strings) costs ISA-L ~10 % in
         * size against zlib; libdeflate's level 1 stays within ~5 % at 2.5x
         * zlib's speed. Incompressible data (floats, random) is where ISA-L is
         * 25x zlib. A 32 KiB sample through ISA-L level 1 tells them apart. */
        size_t sample = 0;
        int compressible = 0;
        if (cas__isal_whole(c, 1, in + (n - CAS__MIN(n, 32768)) / 2, CAS__MIN(n, 32768), out, cap, &sample) == 0)
            compressible = sample * 4 < CAS__MIN(n, 32768) * 3;
        if (c->failed) return c->failed;
        if (compressible) {
            int dl = lvl <= 3 ? 1 : lvl <= 6 ? lvl - 1 : lvl + 3; /* zlib's scale onto libdeflate's 1..12 */
            if (g->lc_def && g->lc_def_level != dl) libdeflate_free_compressor(g->lc_def), g->lc_def = NULL;
            if (!g->lc_def && !(g->lc_def = libdeflate_alloc_compressor(dl)))
                return cas__fail(c, CAS_E_NOMEM, "out of memory");
            g->lc_def_level = dl;
            body = libdeflate_deflate_compress(g->lc_def, in, n, out + 10, cap - 18);
            r = body ? 0 : 1;
        }
        if (r == 1)
#endif
            r = cas__isal_whole(c, cas__isal_level(lvl), in, n, out + 10, cap - 18, &body);
    }
    if (r) return c->failed ? c->failed : 1;
    crc = cas__crc32(0, in, n);
    memcpy(out, g->hb, 10); /* the header the reset prepared */
    out[10 + body] = (unsigned char)crc, out[11 + body] = (unsigned char)(crc >> 8);
    out[12 + body] = (unsigned char)(crc >> 16), out[13 + body] = (unsigned char)(crc >> 24);
    out[14 + body] = (unsigned char)n, out[15 + body] = (unsigned char)(n >> 8);
    out[16 + body] = (unsigned char)(n >> 16), out[17 + body] = (unsigned char)(n >> 24);
    *made = body + 18;
    c->total_in += n, c->total_out += body + 18;
    g->gz_state = CAS__GZ_END, c->done = 1;
    return CAS_DONE;
}
#endif /* CAS_USE_ISAL */

static int cas__gz_encode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                          size_t *made, int end) {
    cas__gz_state *g = CAS__GZ(c);
    size_t o = 0, i = 0;
#ifdef CAS_USE_ISAL
    if (end && g->gz_state == CAS__GZ_HEAD && g->hb_pos == 0 && c->total_in == 0) {
        int r = cas__gz_encode_whole(c, in, n, out, cap, made);
        if (r != 1) {
            *used = r == CAS_DONE ? n : 0;
            return r;
        }
        *made = 0;
    }
#endif
    for (;;) {
        if (g->gz_state == CAS__GZ_HEAD || g->gz_state == CAS__GZ_TRAILER) {
            o += cas__drain_hb(c, out + o, cap - o);
            if (g->hb_pos < g->hb_len) break; /* out full */
            if (g->gz_state == CAS__GZ_TRAILER) {
                g->gz_state = CAS__GZ_END;
                continue;
            }
            g->gz_state = CAS__GZ_BODY;
            continue;
        }
        if (g->gz_state == CAS__GZ_END) {
            *used = i, *made = o;
            c->total_out += o;
            c->done = 1;
            return CAS_DONE;
        }
        /* body */
        {
            size_t in_take = CAS__MIN(n - i, CAS__CHUNK_MAX);
            size_t out_take = CAS__MIN(cap - o, CAS__CHUNK_MAX);
            int finishing = end && in_take == n - i;
            size_t got_in, got_out;
            int finished = 0;
#ifdef CAS_USE_ISAL
            if (g->use_isal) {
                struct isal_zstream *s = g->iz;
                int r;
                s->next_in = (uint8_t *)(uintptr_t)(in + i), s->avail_in = (uint32_t)in_take;
                s->next_out = out + o, s->avail_out = (uint32_t)out_take;
                s->end_of_stream = (uint16_t)finishing;
                s->flush = NO_FLUSH;
                r = isal_deflate(s);
                cas__vzeroupper();
                if (r != COMP_OK) return cas__fail(c, CAS_E_CORRUPT, "ISA-L deflate failed (%d)", r);
                got_in = in_take - s->avail_in, got_out = out_take - s->avail_out;
                finished = s->internal_state.state == ZSTATE_END;
            } else
#endif
            {
                int r;
                g->z.next_in = (Bytef *)(uintptr_t)(in + i), g->z.avail_in = (uInt)in_take;
                g->z.next_out = out + o, g->z.avail_out = (uInt)out_take;
                r = deflate(&g->z, finishing ? Z_FINISH : Z_NO_FLUSH);
                if (r == Z_STREAM_ERROR) return cas__fail(c, CAS_E_STATE, "deflate stream error");
                got_in = in_take - g->z.avail_in, got_out = out_take - g->z.avail_out;
                finished = r == Z_STREAM_END;
            }
#ifdef CAS_USE_ISAL
            if (!g->use_isal)
#endif
                g->crc = cas__crc32(g->crc, in + i, got_in);
            g->isize += got_in;
            i += got_in, o += got_out;
            c->total_in += got_in;
            if (finished) {
#ifdef CAS_USE_ISAL
                if (g->use_isal) { /* ISA-L already wrote CRC32 and ISIZE */
                    g->gz_state = CAS__GZ_END;
                    continue;
                }
#endif
                {
                    unsigned char *t = g->hb;
                    uint32_t crc = g->crc, len = (uint32_t)g->isize;
                    t[0] = (unsigned char)crc, t[1] = (unsigned char)(crc >> 8);
                    t[2] = (unsigned char)(crc >> 16), t[3] = (unsigned char)(crc >> 24);
                    t[4] = (unsigned char)len, t[5] = (unsigned char)(len >> 8);
                    t[6] = (unsigned char)(len >> 16), t[7] = (unsigned char)(len >> 24);
                    g->hb_len = 8, g->hb_pos = 0;
                    g->gz_state = CAS__GZ_TRAILER;
                }
                continue;
            }
            if (o == cap) break;
            if (i == n && !end) break;
            if (!got_in && !got_out) break; /* no progress possible */
        }
    }
    *used = i, *made = o;
    c->total_out += o;
    if (o == cap && (g->gz_state != CAS__GZ_END)) return CAS_NEED_OUTPUT;
    return end ? CAS_NEED_OUTPUT : CAS_NEED_INPUT;
}

/* Inflates raw deflate from in into out; sets *finished at the end of the stream. */
static int cas__inflate_step(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                             size_t cap, size_t *made, int *finished) {
    cas__gz_state *g = CAS__GZ(c);
    size_t in_take = CAS__MIN(n, CAS__CHUNK_MAX), out_take = CAS__MIN(cap, CAS__CHUNK_MAX);
    *finished = 0;
#ifdef CAS_USE_ISAL
    if (g->use_isal) {
        struct inflate_state *s = g->ii;
        int r;
        s->next_in = (uint8_t *)(uintptr_t)in, s->avail_in = (uint32_t)in_take;
        s->next_out = out, s->avail_out = (uint32_t)out_take;
        r = isal_inflate(s);
        cas__vzeroupper();
        *used = in_take - s->avail_in, *made = out_take - s->avail_out;
        if (r < 0) {
            const char *why = r == ISAL_INVALID_BLOCK      ? "invalid block type"
                              : r == ISAL_INVALID_SYMBOL   ? "invalid code"
                              : r == ISAL_INVALID_LOOKBACK ? "invalid distance too far back"
                                                           : "invalid deflate data";
            return cas__fail(c, CAS_E_CORRUPT, "Error -3 while decompressing data: %s", why);
        }
        *finished = s->block_state == ISAL_BLOCK_FINISH;
        if (*finished && s->read_in_length >= 8) {
            /* ISA-L reads up to 8 bytes ahead into its bit buffer; past the last
             * block they are the trailer: hand them to the trailer state. */
            uint64_t v = s->read_in >> (s->read_in_length % 8);
            int k, nb = s->read_in_length / 8;
            for (k = 0; k < nb && g->hb_len < 8; k++) g->hb[g->hb_len++] = (unsigned char)(v >> (8 * k));
            s->read_in = 0, s->read_in_length = 0;
        }
        return CAS_OK;
    }
#endif
    {
        int r;
        g->z.next_in = (Bytef *)(uintptr_t)in, g->z.avail_in = (uInt)in_take;
        g->z.next_out = out, g->z.avail_out = (uInt)out_take;
        r = inflate(&g->z, Z_NO_FLUSH);
        *used = in_take - g->z.avail_in, *made = out_take - g->z.avail_out;
        if (r == Z_STREAM_END) *finished = 1;
        else if (r == Z_DATA_ERROR || r == Z_NEED_DICT)
            return cas__fail(c, CAS_E_CORRUPT, "Error -3 while decompressing data: %s",
                             g->z.msg ? g->z.msg : "invalid data");
        else if (r == Z_MEM_ERROR) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        return CAS_OK;
    }
}

static int cas__inflate_restart(cas_codec *c) {
    cas__gz_state *g = CAS__GZ(c);
#ifdef CAS_USE_ISAL
    if (g->use_isal) {
        isal_inflate_reset(g->ii);
        g->ii->crc_flag = ISAL_DEFLATE;
        return CAS_OK;
    }
#endif
    if (inflateReset(&g->z) != Z_OK) return cas__fail(c, CAS_E_STATE, "inflateReset failed");
    return CAS_OK;
}

#define CAS__GZ_TRUNC "Compressed file ended before the end-of-stream marker was reached"

static int cas__gz_not_gzip(cas_codec *c, const unsigned char *p, size_t n) {
    char rep[24];
    cas_bytes_repr(p, n, rep, sizeof rep);
    return cas__fail(c, CAS__GZ(c)->gz_members ? CAS_E_TRAILING : CAS_E_CORRUPT, CAS__GZ_NOT_OURS, rep);
}

/* Python's gzip reader, as a state machine: members back to back, NUL padding
 * between and after them, every header field, CRC and length checked. */
static int cas__gz_decode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                          size_t *made, int end) {
    cas__gz_state *g = CAS__GZ(c);
    size_t i = 0, o = 0;
    int r;
    if (g->spill_n) { /* the probed byte first */
        if (!cap) goto need_output;
        out[o++] = g->spill, g->spill_n = 0;
    }
    for (;;) {
        switch (g->gz_state) {
        case CAS__GZ_PAD: /* after a member: skip NULs, then another member or the end */
            while (i < n && in[i] == 0) i++;
            if (i == n) goto need_input;
            g->gz_state = CAS__GZ_MAGIC;
            /* fall through */
        case CAS__GZ_MAGIC:
            while (g->hb_len < 2 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 2) {
                if (!end) goto need_input;
                if (g->hb_len == 0) { /* clean end: zero members is empty output */
                    if (g->spill_n) goto need_output;
                    *used = i, *made = o;
                    c->total_in += i, c->total_out += o;
                    c->done = 1;
                    return CAS_DONE;
                }
                return cas__gz_not_gzip(c, g->hb, g->hb_len);
            }
            if (memcmp(g->hb, CAS__GZIP_MAGIC, 2)) return cas__gz_not_gzip(c, g->hb, 2);
            g->gz_state = CAS__GZ_HEAD;
            break;
        case CAS__GZ_HEAD: /* method, flags, mtime, xfl, os */
            while (g->hb_len < 10 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 10) goto need_input;
            if (g->hb[2] != 8) return cas__fail(c, CAS_E_CORRUPT, "Unknown compression method");
            g->gz_flags = g->hb[3];
            g->hb_len = 0;
            g->gz_state = CAS__GZ_XLEN;
            break;
        case CAS__GZ_XLEN:
            if (!(g->gz_flags & 4)) {
                g->gz_state = CAS__GZ_NAME;
                break;
            }
            while (g->hb_len < 2 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 2) goto need_input;
            g->gz_need = (uint32_t)g->hb[0] | (uint32_t)g->hb[1] << 8;
            g->hb_len = 0;
            g->gz_state = CAS__GZ_EXTRA;
            /* fall through */
        case CAS__GZ_EXTRA: {
            size_t k = CAS__MIN((size_t)g->gz_need, n - i);
            i += k, g->gz_need -= (uint32_t)k;
            if (g->gz_need) goto need_input;
            g->gz_state = CAS__GZ_NAME;
            break;
        }
        case CAS__GZ_NAME:
        case CAS__GZ_COMMENT: {
            int bit = g->gz_state == CAS__GZ_NAME ? 8 : 16;
            if (g->gz_flags & bit) {
                const unsigned char *z = (const unsigned char *)memchr(in + i, 0, n - i);
                if (!z) {
                    i = n;
                    goto need_input;
                }
                i = (size_t)(z - in) + 1;
            }
            g->gz_state = g->gz_state == CAS__GZ_NAME ? CAS__GZ_COMMENT : CAS__GZ_HCRC;
            break;
        }
        case CAS__GZ_HCRC: /* Python reads and ignores the header CRC; so do we */
            if (g->gz_flags & 2) {
                while (g->hb_len < 2 && i < n) g->hb[g->hb_len++] = in[i++];
                if (g->hb_len < 2) goto need_input;
            }
            g->hb_len = 0;
            g->crc = 0, g->isize = 0;
            g->gz_state = CAS__GZ_BODY;
            break;
        case CAS__GZ_BODY: {
            size_t u, m, room = cap - o;
            unsigned char *dst = out + o, one;
            int fin;
            /* With the output full the member may still end without another
             * byte (an empty last block, an empty member): probe with a 1-byte
             * spill so that an exactly sized buffer ends in CAS_DONE. */
            if (!room) {
                if (g->spill_n) goto need_output; /* one probed byte at a time */
                dst = &one, room = 1;
            }
            r = cas__inflate_step(c, in + i, n - i, &u, dst, room, &m, &fin);
            if (r < 0) return r;
            g->crc = cas__crc32(g->crc, dst, m);
            g->isize += m;
            i += u;
            if (dst == &one) {
                if (m) g->spill = one, g->spill_n = 1;
            } else {
                o += m;
            }
            if (fin) {
                g->gz_state = CAS__GZ_TRAILER;
                break;
            }
            if (g->spill_n || o == cap) goto need_output;
            if (i == n) goto need_input;
            if (!u && !m) goto need_input;
            break;
        }
        case CAS__GZ_TRAILER: {
            uint32_t crc, len;
            while (g->hb_len < 8 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 8) goto need_input;
            crc = (uint32_t)g->hb[0] | (uint32_t)g->hb[1] << 8 | (uint32_t)g->hb[2] << 16 | (uint32_t)g->hb[3] << 24;
            len = (uint32_t)g->hb[4] | (uint32_t)g->hb[5] << 8 | (uint32_t)g->hb[6] << 16 | (uint32_t)g->hb[7] << 24;
            if (crc != g->crc)
                return cas__fail(c, CAS_E_CORRUPT, "CRC check failed 0x%lx != 0x%lx", (unsigned long)crc,
                                 (unsigned long)g->crc);
            if (len != (uint32_t)g->isize) return cas__fail(c, CAS_E_CORRUPT, "Incorrect length of data produced");
            g->gz_members++;
            g->hb_len = 0;
            r = cas__inflate_restart(c);
            if (r < 0) return r;
            g->gz_state = CAS__GZ_PAD;
            break;
        }
        default: return cas__fail(c, CAS_E_STATE, "gzip decoder in a bad state");
        }
    }
need_output:
    *used = i, *made = o;
    c->total_in += i, c->total_out += o;
    return CAS_NEED_OUTPUT;
need_input:
    *used = i, *made = o;
    c->total_in += i, c->total_out += o;
    if (g->spill_n) return CAS_NEED_OUTPUT;
    if (end && i == n) {
        if (g->gz_state == CAS__GZ_PAD) { /* members then only NULs: the end */
            c->done = 1;
            return CAS_DONE;
        }
        /* a body that still has output pending is not truncated yet */
        if (g->gz_state == CAS__GZ_BODY && o == cap) return CAS_NEED_OUTPUT;
        return cas__fail(c, CAS_E_TRUNCATED, CAS__GZ_TRUNC);
    }
    return CAS_NEED_INPUT;
}

static int cas__gz_update(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                          size_t *made, int end) {
    if (c->done) return cas__after_done(c, n);
    return c->encode ? cas__gz_encode(c, in, n, used, out, cap, made, end)
                     : cas__gz_decode(c, in, n, used, out, cap, made, end);
}
#endif /* CAS_NO_GZIP */

/* zlib's deflateBound is n + n/4096 + n/16384 + 7; ISA-L's stored-block
 * fallback costs a little more on incompressible input, so keep a margin. */
static size_t cas__gz_bound(size_t n) {
    size_t b = n + (n >> 8) + 1024;
    return b < n ? (size_t)-1 : b + 18;
}

/* The last member's length field (mod 2^32): a hint only. */
static int cas__gz_hint(const unsigned char *p, size_t n, uint64_t *size) {
    if (n == 0) return CAS_OK;
    if (n < 18 || memcmp(p, CAS__GZIP_MAGIC, 2)) return CAS_E_NOTFOUND;
    *size = (uint64_t)p[n - 4] | (uint64_t)p[n - 3] << 8 | (uint64_t)p[n - 2] << 16 | (uint64_t)p[n - 1] << 24;
    return CAS_OK;
}
/* ---- LZ4 frame ----------------------------------------------------------- */
#ifndef CAS_NO_LZ4

static int cas__lz4_reset(cas_codec *c) {
    cas__lz4_state *z = CAS__LZ4(c);
    /* A decoder's lz4_begun: a frame is open in ld4. LZ4F_resetDecompressionContext
     * (lz4 1.9.4) keeps the unfinished frame's remaining size, which fails the next
     * frame that states none ("content size disagrees"): such a context is replaced. */
    if (!c->encode && z->ld4 && z->lz4_begun) {
        LZ4F_freeDecompressionContext(z->ld4);
        z->ld4 = NULL;
    }
    z->stage_len = z->stage_pos = 0;
    z->lz4_begun = 0, z->lz4_magic_ok = 0, z->lz4_magic_len = 0;
    if (c->encode) {
        if (!z->lc) {
            z->lc = LZ4F_createCompressionContext_advanced(cas__lz4_mem(c), LZ4F_VERSION);
            if (!z->lc) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        }
        z->lz4_block_bytes = (size_t)1 << (8 + 2 * c->lz4_block);
    } else {
        if (!z->ld4) {
            z->ld4 = LZ4F_createDecompressionContext_advanced(cas__lz4_mem(c), LZ4F_VERSION);
            if (!z->ld4) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        } else {
            LZ4F_resetDecompressionContext(z->ld4);
        }
    }
    return CAS_OK;
}

static void cas__lz4_release(cas_codec *c) {
    cas__lz4_state *z = CAS__LZ4(c);
    if (z->lc) LZ4F_freeCompressionContext(z->lc);
    if (z->ld4) LZ4F_freeDecompressionContext(z->ld4);
    z->lc = NULL, z->ld4 = NULL;
    cas__free(&c->alloc, z->stage), z->stage = NULL, z->stage_cap = 0;
}


static void cas__lz4_prefs(const cas_codec *c, LZ4F_preferences_t *p, int64_t content) {
    memset(p, 0, sizeof *p);
    p->frameInfo.blockSizeID = (LZ4F_blockSizeID_t)c->lz4_block;
    p->frameInfo.blockMode = LZ4F_blockLinked;
    p->frameInfo.contentSize = content > 0 ? (unsigned long long)content : 0;
    p->compressionLevel = c->level > 1 ? c->level : 0;
}

static int cas__lz4_err(cas_codec *c, size_t r, const char *what) {
    const char *name = LZ4F_getErrorName(r);
    if (!strncmp(name, "ERROR_", 6)) name += 6;
    if (LZ4F_getErrorCode(r) == LZ4F_ERROR_allocation_failed) return cas__fail(c, CAS_E_NOMEM, "out of memory");
    return cas__fail(c, CAS_E_CORRUPT, "LZ4 frame is corrupt: %s failed (%s)", what, name);
}

/* Makes sure the staging buffer holds the bound of one block. */
static int cas__lz4_stage(cas_codec *c, size_t need) {
    cas__lz4_state *z = CAS__LZ4(c);
    if (z->stage_cap >= need) return CAS_OK;
    cas__free(&c->alloc, z->stage);
    z->stage = (unsigned char *)cas__alloc(&c->alloc, need);
    z->stage_cap = z->stage ? need : 0;
    return z->stage ? CAS_OK : cas__fail(c, CAS_E_NOMEM, "out of memory");
}

static int cas__lz4_encode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas__lz4_state *z = CAS__LZ4(c);
    size_t i = 0, o = 0, r;
    LZ4F_preferences_t prefs;
    LZ4F_compressOptions_t opt;
    memset(&opt, 0, sizeof opt);
    /* Whole input in one call with room for the worst case: one frame call,
     * which also picks independent blocks and a small table for small inputs. */
    if (!z->lz4_begun && end && z->stage_len == 0) {
        int64_t content = c->pledged >= 0 ? c->pledged : (int64_t)n;
        cas__lz4_prefs(c, &prefs, content);
        if (cap >= LZ4F_compressFrameBound(n, &prefs) && (c->pledged < 0 || (size_t)c->pledged == n)) {
            r = LZ4F_compressFrame_usingCDict(z->lc, out, cap, in, n, NULL, &prefs);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressFrame");
            *used = n, *made = r;
            c->total_in += n, c->total_out += r;
            c->done = 1;
            return CAS_DONE;
        }
    }
    for (;;) {
        if (z->stage_pos < z->stage_len) { /* drain first */
            size_t k = CAS__MIN(cap - o, z->stage_len - z->stage_pos);
            memcpy(out + o, z->stage + z->stage_pos, k);
            o += k, z->stage_pos += k;
            if (z->stage_pos < z->stage_len) break;
            z->stage_pos = z->stage_len = 0;
        }
        if (c->done) break;
        if (!z->lz4_begun) {
            cas__lz4_prefs(c, &prefs, c->pledged);
            if (cas__lz4_stage(c, LZ4F_compressBound(z->lz4_block_bytes, &prefs) + LZ4F_HEADER_SIZE_MAX) < 0)
                return c->failed;
            r = LZ4F_compressBegin(z->lc, z->stage, z->stage_cap, &prefs);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressBegin");
            z->stage_len = r;
            z->lz4_begun = 1;
            continue;
        }
        if (i < n) { /* one block's worth at a time keeps the stage bounded */
            size_t k = CAS__MIN(n - i, z->lz4_block_bytes);
            r = LZ4F_compressUpdate(z->lc, z->stage, z->stage_cap, in + i, k, &opt);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressUpdate");
            i += k, z->stage_len = r;
            c->total_in += k;
            continue;
        }
        if (!end) break;
        r = LZ4F_compressEnd(z->lc, z->stage, z->stage_cap, &opt);
        if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressEnd");
        z->stage_len = r;
        c->done = 1;
    }
    *used = i, *made = o;
    c->total_out += o;
    if (z->stage_pos < z->stage_len) return CAS_NEED_OUTPUT;
    if (c->done) return CAS_DONE;
    return CAS_NEED_INPUT;
}

static int cas__lz4_decode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas__lz4_state *z = CAS__LZ4(c);
    size_t i = 0, o = 0;
    if (c->done) { /* the frame is over: what follows is trailing */
        *used = 0, *made = 0;
        if (c->strict && n) return cas__fail(c, CAS_E_TRAILING, "unexpected bytes after the LZ4 frame");
        return CAS_DONE;
    }
    /* Check the magic ourselves: LZ4F would also accept skippable frames. */
    while (!z->lz4_magic_ok && z->lz4_magic_len < 4 && i < n) z->lz4_magic[z->lz4_magic_len++] = in[i++];
    if (!z->lz4_magic_ok) {
        if (memcmp(z->lz4_magic, CAS__LZ4_MAGIC, z->lz4_magic_len))
            return cas__fail(c, CAS_E_CORRUPT, "not an LZ4 frame (bad magic number)");
        if (z->lz4_magic_len < 4) {
            *used = i, *made = 0;
            c->total_in += i;
            if (end) return cas__fail(c, CAS_E_TRUNCATED, CAS__LZ4_TRUNC);
            return CAS_NEED_INPUT;
        }
        z->lz4_magic_ok = z->lz4_begun = 1;
        {
            size_t ds = 0, ss = 4;
            size_t r = LZ4F_decompress(z->ld4, NULL, &ds, CAS__LZ4_MAGIC, &ss, NULL);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "decompress");
        }
    }
    for (;;) {
        size_t ss = n - i, ds = cap - o, r;
        r = LZ4F_decompress(z->ld4, out + o, &ds, in + i, &ss, NULL);
        if (LZ4F_isError(r)) {
            if (LZ4F_getErrorCode(r) == LZ4F_ERROR_frameSize_wrong)
                return cas__fail(c, CAS_E_CORRUPT, "LZ4 frame's content size field disagrees with its data");
            return cas__lz4_err(c, r, "decompress");
        }
        i += ss, o += ds;
        if (r == 0) { /* end of frame */
            c->done = 1, z->lz4_begun = 0;
            *used = i, *made = o;
            c->total_in += i, c->total_out += o;
            if (c->strict && i < n) return cas__fail(c, CAS_E_TRAILING, "unexpected bytes after the LZ4 frame");
            return CAS_DONE;
        }
        if (o == cap && (ss || ds) && i < n)
            continue; /* headers, empty blocks and the end mark
                                                          need no room: an exact buffer ends here */
        if (o == cap) {
            *used = i, *made = o;
            c->total_in += i, c->total_out += o;
            return CAS_NEED_OUTPUT;
        }
        if (i == n || (!ss && !ds)) break;
    }
    *used = i, *made = o;
    c->total_in += i, c->total_out += o;
    if (end && i == n) return cas__fail(c, CAS_E_TRUNCATED, CAS__LZ4_TRUNC);
    return CAS_NEED_INPUT;
}

static int cas__lz4_update(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas__lz4_state *z = CAS__LZ4(c);
    /* a decoder past its frame words what follows itself (trailing bytes, CAS_PARAM_STRICT) */
    if (c->done && c->encode && z->stage_pos == z->stage_len) return n ? CAS_E_STATE : CAS_DONE;
    return c->encode ? cas__lz4_encode(c, in, n, used, out, cap, made, end)
                     : cas__lz4_decode(c, in, n, used, out, cap, made, end);
}

static size_t cas__lz4_bound(size_t n) {
    LZ4F_preferences_t p;
    size_t b1, b2;
    memset(&p, 0, sizeof p);
    p.frameInfo.contentSize = n;
    /* valid for every block size this library writes */
    p.frameInfo.blockSizeID = LZ4F_max64KB;
    b1 = LZ4F_compressFrameBound(n, &p);
    p.frameInfo.blockSizeID = LZ4F_max4MB;
    b2 = LZ4F_compressFrameBound(n, &p);
    return (b1 > b2 ? b1 : b2) + 64;
}

/* The frame's content size field: FLG bit 3 says 8 bytes follow FLG and BD. */
static int cas__lz4_hint(const unsigned char *p, size_t n, uint64_t *size) {
    if (n < 15 || memcmp(p, CAS__LZ4_MAGIC, 4) || !(p[4] & 8)) return CAS_E_NOTFOUND;
    *size = (uint64_t)p[6] | (uint64_t)p[7] << 8 | (uint64_t)p[8] << 16 | (uint64_t)p[9] << 24 | (uint64_t)p[10] << 32 |
            (uint64_t)p[11] << 40 | (uint64_t)p[12] << 48 | (uint64_t)p[13] << 56;
    return CAS_OK;
}
#endif /* CAS_NO_LZ4 */
/* ---- the codec table ------------------------------------------------------ */

#ifndef CAS_NO_RAW
#define CAS__RAW_FUNCS NULL, cas__raw_bound, cas__raw_hint, cas__raw_reset, cas__raw_update, cas__raw_release
#else
#define CAS__RAW_FUNCS NULL, cas__raw_bound, cas__raw_hint, NULL, NULL, NULL
#endif
#ifndef CAS_NO_GZIP
#define CAS__GZIP_FUNCS NULL, cas__gz_bound, cas__gz_hint, cas__gz_reset, cas__gz_update, cas__gz_release
#define CAS__GZIP_STATE sizeof(cas__gz_state)
#else
#define CAS__GZIP_FUNCS NULL, cas__gz_bound, cas__gz_hint, NULL, NULL, NULL
#define CAS__GZIP_STATE 0
#endif
#ifndef CAS_NO_LZ4
#define CAS__LZ4_FUNCS NULL, cas__lz4_bound, cas__lz4_hint, cas__lz4_reset, cas__lz4_update, cas__lz4_release
#define CAS__LZ4_STATE sizeof(cas__lz4_state)
#else
#define CAS__LZ4_FUNCS NULL, NULL, NULL, NULL, NULL, NULL
#define CAS__LZ4_STATE 0
#endif

#ifdef CAS_EXTRA_CODEC_PARAMS
CAS_EXTRA_CODEC_PARAMS
#endif

/* Ratios: deflate reaches ~1032 bytes per input byte; an LZ4 sequence ~255. */
static const cas__codec_row cas__codecs[] = {
    CAS__CODEC_ROW(CAS_CODEC_RAW, "raw", 0, 0, "", 1, 1, 0, NULL, NULL, 0, CAS__NO_PARAMS, CAS__RAW_FUNCS),
    CAS__CODEC_ROW(CAS_CODEC_GZIP, "gzip", 9, CAS_SNIFF_GZIP, CAS__GZIP_MAGIC, 1, 1040, 0, CAS__GZ_NOT_OURS, NULL,
                   CAS__GZIP_STATE, CAS__NO_PARAMS, CAS__GZIP_FUNCS),
    CAS__CODEC_ROW(CAS_CODEC_LZ4, "lz4", 12, CAS_SNIFF_LZ4, CAS__LZ4_MAGIC, 0, 256, 1, NULL, CAS__LZ4_TRUNC,
                   CAS__LZ4_STATE, CAS__NO_PARAMS, CAS__LZ4_FUNCS),
#ifdef CAS_EXTRA_CODECS
    CAS_EXTRA_CODECS
#endif
};
#define CAS__CODEC_ROWS (sizeof cas__codecs / sizeof cas__codecs[0])

/* ---- sniffing: the codecs' magic, and a format no codec here reads ---------- */

#define CAS__ZSTD_MAGIC "\x28\xb5\x2f\xfd" /* no codec here reads it; named so that a message can say what it is */

/* 1 if s begins with the magic, -1 if s is a shorter prefix of it, 0 if neither. */
static int cas__magic_at(const unsigned char *s, size_t n, const unsigned char *m, size_t ml) {
    if (!ml) return 0;
    if (n >= ml) return !memcmp(s, m, ml);
    return memcmp(s, m, n) ? 0 : -1;
}

CASDEF int cas_sniff(const void *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i;
    int cut = 0, at;
    if (n == 0) return CAS_SNIFF_EMPTY;
    for (i = 0; i < CAS__CODEC_ROWS; i++) {
        if (!cas__codecs[i].sniff) continue;
        if ((at = cas__magic_at(s, n, cas__codecs[i].magic, cas__codecs[i].magic_len)) > 0) return cas__codecs[i].sniff;
        cut |= at < 0; /* no magic is another's prefix */
    }
    if ((at = cas__magic_at(s, n, (const unsigned char *)CAS__ZSTD_MAGIC, 4)) > 0) return CAS_SNIFF_ZSTD;
    return cut || at < 0 ? CAS_SNIFF_SHORT : CAS_SNIFF_UNKNOWN;
}

static const cas__codec_row *cas__codec_find(int id) {
    return (const cas__codec_row *)cas__row_find(cas__codecs, CAS__CODEC_ROWS, sizeof cas__codecs[0], id);
}

CASDEF int cas_codec_available(int codec) {
    const cas__codec_row *r = cas__codec_find(codec);
    return r && r->update;
}

CASDEF const char *cas_codec_name(int codec) {
    const cas__codec_row *r = cas__codec_find(codec);
    return r ? r->name : "?";
}

/* ---- parameters: one bounds table ----------------------------------------- */


static int cas__level_built(int64_t v) { /* some codec compiled in takes it */
    size_t i;
    for (i = 0; i < CAS__CODEC_ROWS; i++)
        if (cas__codecs[i].update && v <= cas__codecs[i].level_max) return CAS_OK;
    return CAS_E_ARG;
}
static int cas__backend_built(int64_t v) {
#ifndef CAS_USE_ISAL
    if (v == CAS_BACKEND_ISAL) return CAS_E_UNSUPPORTED;
#endif
    (void)v;
    return CAS_OK;
}

static const cas__param_row cas__codec_params[] = {
    CAS__PARAM(CAS_PARAM_LEVEL, CAS__FOR_CODEC | CAS__FOR_WRITER | CAS__FOR_STORE, 0, INT32_MAX, cas__level_built),
    CAS__PARAM(CAS_PARAM_PLEDGED_SIZE, CAS__FOR_CODEC | CAS__FOR_WRITER, -1, INT64_MAX, NULL),
    CAS__PARAM(CAS_PARAM_GZIP_BACKEND, CAS__FOR_CODEC | CAS__FOR_WRITER | CAS__FOR_READER | CAS__FOR_STORE,
               CAS_BACKEND_AUTO, CAS_BACKEND_ISAL, cas__backend_built),
    CAS__PARAM(CAS_PARAM_LZ4_BLOCK, CAS__FOR_CODEC | CAS__FOR_WRITER | CAS__FOR_STORE, 4, 7, NULL),
    CAS__PARAM(CAS_PARAM_STRICT, CAS__FOR_CODEC | CAS__FOR_READER | CAS__FOR_STORE, INT64_MIN, INT64_MAX,
               NULL) /* flags: 0 or not */,
    CAS__PARAM(CAS_PARAM_MTIME, CAS__FOR_CODEC | CAS__FOR_WRITER, 0, 0xffffffffLL, NULL),
};

#define CAS__CODEC_PARAM(id) CAS__PARAM_FIND(cas__codec_params, id)

CASDEF int cas_codec_set_param(cas_codec *c, int param, int64_t v) {
    int r;
    if (!c) return CAS_E_ARG;
    if (c->total_in || c->total_out) return CAS_E_STATE;
    if (!CAS__CODEC_PARAM(param) && c->row->set_param) { /* one of the codec's own */
        r = cas__param_check(cas__param_find(c->row->params, c->row->nparams, param), CAS__FOR_CODEC, v);
        return r < 0 ? r : c->row->set_param(c, param, v);
    }
    if ((r = cas__param_check(CAS__CODEC_PARAM(param), CAS__FOR_CODEC, v)) < 0) return r;
    switch (param) {
    case CAS_PARAM_LEVEL:
        if (v > c->row->level_max && c->row->level_max) return CAS_E_ARG;
        c->level = (int)v;
        break;
    case CAS_PARAM_PLEDGED_SIZE: c->pledged = v; break;
    case CAS_PARAM_GZIP_BACKEND: c->backend = (int)v; break;
    case CAS_PARAM_LZ4_BLOCK: c->lz4_block = (int)v; break;
    case CAS_PARAM_STRICT: c->strict = v != 0; break;
    case CAS_PARAM_MTIME: c->mtime = v; break;
    default: return CAS_E_ARG;
    }
    return cas_codec_reset(c); /* re-apply parameters to the backend */
}

CASDEF int cas_codec_update(cas_codec *c, const void *in, size_t in_size, size_t *in_used, void *out, size_t out_cap,
                            size_t *out_made, int end) {
    size_t dummy_u, dummy_m;
    const unsigned char *ip = (const unsigned char *)in;
    unsigned char *op = (unsigned char *)out;
    if (!in_used) in_used = &dummy_u;
    if (!out_made) out_made = &dummy_m;
    *in_used = 0, *out_made = 0;
    if (!c || (!in && in_size) || (!out && out_cap)) return CAS_E_ARG;
    if (c->failed) return c->failed;
    if (!in) ip = (const unsigned char *)"";
    if (!out) op = (unsigned char *)c->msg; /* never written: cap is 0 */
    return c->row->update(c, ip, in_size, in_used, op, out_cap, out_made, end);
}

/* ---- one-shot ------------------------------------------------------------ */

CASDEF size_t cas_encode_bound(int codec, size_t n) {
    const cas__codec_row *r = cas__codec_find(codec);
    return r && r->bound ? r->bound(n) : 0;
}

CASDEF int cas_codec_encode_all(cas_codec *c, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    size_t used = 0, made = 0;
    int r;
    if (out_len) *out_len = 0;
    if (!c || !c->encode) return CAS_E_ARG;
    if ((r = cas_codec_reset(c)) < 0) return r;
    r = cas_codec_update(c, in, n, &used, out, cap, &made, 1);
    if (out_len) *out_len = made;
    if (r == CAS_DONE && used != n) return CAS_E_STATE;
    return r;
}

CASDEF int cas_codec_decode_all(cas_codec *c, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    size_t used = 0, made = 0;
    int r;
    if (out_len) *out_len = 0;
    if (!c || c->encode) return CAS_E_ARG;
    if ((r = cas_codec_reset(c)) < 0) return r;
#if defined(CAS_USE_LIBDEFLATE) && !defined(CAS_USE_ISAL)
    /* libdeflate wants the whole output at once; members are decoded one by one,
     * anything it does not accept is retried by the streaming path for the message.
     * Not with ISA-L compiled in: libdeflate accepts the reserved length symbols
     * 286 and 287 that zlib, Python and ISA-L refuse, and ISA-L is within ~15 %. */
    if (c->codec == CAS_CODEC_GZIP && c->backend != CAS_BACKEND_ZLIB && n >= 18 && out) {
        const unsigned char *ip = (const unsigned char *)in;
        cas__gz_state *g = CAS__GZ(c);
        size_t i = 0, o = 0;
        int ok = 1;
        if (!g->ld) g->ld = libdeflate_alloc_decompressor();
        if (!g->ld) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        while (i < n) {
            size_t ain = 0, aout = 0;
            enum libdeflate_result lr;
            if (ip[i] == 0 && i > 0) { /* NUL padding after a member */
                while (i < n && ip[i] == 0) i++;
                continue;
            }
            lr = libdeflate_gzip_decompress_ex(g->ld, ip + i, n - i, (unsigned char *)out + o, cap - o, &ain, &aout);
            if (lr != LIBDEFLATE_SUCCESS) {
                ok = 0;
                break;
            }
            i += ain, o += aout;
        }
        if (ok) {
            c->total_in = n, c->total_out = o, c->done = 1;
            if (out_len) *out_len = o;
            return CAS_DONE;
        }
        if ((r = cas_codec_reset(c)) < 0) return r;
    }
#endif
    r = cas_codec_update(c, in, n, &used, out, cap, &made, 1);
    if (out_len) *out_len = made;
    return r;
}

CASDEF int cas_encode(int codec, int level, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    cas_codec *c;
    int r = cas_encoder_create(&c, codec, NULL);
    if (r < 0) return r;
    if (level && (r = cas_codec_set_param(c, CAS_PARAM_LEVEL, level)) < 0) {
        cas_codec_free(c);
        return r;
    }
    r = cas_codec_encode_all(c, in, n, out, cap, out_len);
    cas_codec_free(c);
    return r;
}

CASDEF int cas_decode(int codec, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    cas_codec *c;
    int r = cas_decoder_create(&c, codec, NULL);
    if (r < 0) return r;
    r = cas_codec_decode_all(c, in, n, out, cap, out_len);
    cas_codec_free(c);
    return r;
}

CASDEF int cas_decoded_size_hint(int codec, const void *in, size_t n, uint64_t *size) {
    const cas__codec_row *r = cas__codec_find(codec);
    if (!size || (!in && n)) return CAS_E_ARG;
    *size = 0;
    if (!r || !r->size_hint) return CAS_E_UNSUPPORTED;
    return r->size_hint((const unsigned char *)(in ? in : ""), n, size);
}
#ifdef __cplusplus
}
#endif
#endif /* implementation */
