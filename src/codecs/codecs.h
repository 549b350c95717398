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
