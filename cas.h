/* cas.h - Metaflow's content-addressed artifact store, in one C header
 *
 * Turns an artifact's bytes into a stored blob and back exactly as Metaflow
 * does: the key is the SHA-1 of the raw bytes, the blob is gzip (cas_version 1)
 * or an LZ4 frame (cas_version 2, Metaflow PR #3090) or the bytes as is (raw),
 * and a `_meta` sidecar says which. Reads every blob real stores hold.
 *
 * Do this:
 *   #define CAS_IMPLEMENTATION
 * before you include this file in *one* C or C++ file to create the
 * implementation; include it plainly everywhere else. It includes
 * cas_codecs.h (keep the two side by side) or comes amalgamated as one file.
 * Link with -lz -llz4 (and -lpthread, -lcrypto, -lisal, -ldeflate as configured).
 *
 * Usage:
 *
 *   char key[CAS_KEY_BUF];
 *   size_t cap = cas_pack_bound(CAS_FORMAT_V1, n), blob_len;
 *   void *blob = malloc(cap);
 *   cas_pack(NULL, data, n, blob, cap, &blob_len, key);   // key + gzip blob
 *
 *   cas_reader *r; void *out; size_t out_len;
 *   cas_reader_create(&r, NULL);
 *   cas_reader_begin(r, meta_json, meta_len, "MyFlow/data/a9/a999...", key);
 *   if (cas_reader_unpack(r, blob, blob_len, &out, &out_len) < 0)
 *       fprintf(stderr, "%s\n", cas_reader_message(r));  // Metaflow's wording
 *   cas_reader_free_buffer(r, out); cas_reader_free(r);
 *
 *   cas_store *s;                                         // a datastore root
 *   cas_store_open(&s, ".metaflow", NULL, err, sizeof err);
 *   cas_store_put(s, "MyFlow", data, n, key, NULL, err, sizeof err);
 *
 * Config macros (define before including the implementation):
 *
 *   CAS_IMPLEMENTATION   emit the implementation (also cas_codecs.h's)
 *   CAS_STATIC           every function static to the including file
 *   CASDEF               linkage/visibility of the public functions
 *   CAS_KEY_XXH3         keys default to XXH3-128 (32 hex) instead of SHA-1 (40 hex)
 *   CAS_NO_XXH3          no XXH3-128 (no xxhash.h needed)
 *   CAS_SHA1_OPENSSL     SHA-1 through OpenSSL's libcrypto (-lcrypto), ~3x the
 *                        built-in portable SHA-1
 *   CAS_NO_THREADS       no pthreads: pack hashes and compresses on one core,
 *                        batch calls run serially
 *   CAS_NO_STORE         no POSIX file I/O: no store, task resolution or streams
 *   CAS_NO_GZIP, CAS_NO_LZ4, CAS_NO_RAW, CAS_USE_ISAL, CAS_USE_LIBDEFLATE,
 *   CAS_MALLOC, CAS_FREE see cas_codecs.h
 *
 * Contracts:
 * - Functions return CAS_OK (0), progress codes (> 0) or errors (< 0);
 *   cas_strerror() names any code and never returns NULL.
 * - Objects (cas_hasher, cas_writer, cas_reader, cas_codec, cas_stream) are
 *   used by one thread at a time. A cas_store is safe to share between threads
 *   once configured: every store call reports into the caller's err buffer.
 * - Keys are lowercase hex, NUL-terminated, in char[CAS_KEY_BUF].
 */
#ifndef CAS_H
#define CAS_H

#include "cas_codecs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- keys ---------------------------------------------------------------- */

#define CAS_HASH_SHA1 1 /* Metaflow's key: 40 hex */
#define CAS_HASH_XXH3 2 /* XXH3-128: 32 hex, ~10x faster, not Metaflow-compatible */
#ifdef CAS_KEY_XXH3
#define CAS_HASH_DEFAULT CAS_HASH_XXH3
#else
#define CAS_HASH_DEFAULT CAS_HASH_SHA1
#endif
#define CAS_KEY_MAX 40
#define CAS_KEY_BUF 41

CASDEF int cas_hash_available(int algo);
/* 40 for SHA-1, 32 for XXH3-128, 0 for anything else. */
CASDEF size_t cas_key_length(int algo);
/* CAS_OK when key[0..len) is exactly the hex length of a known hash and
 * lowercase hex; CAS_E_KEY otherwise. Tells the algorithm through *algo (nullable). */
CASDEF int cas_key_check(const char *key, size_t len, int *algo);

typedef struct cas_hasher cas_hasher;
CASDEF int cas_hasher_create(cas_hasher **out, int algo, const cas_allocator *alloc);
CASDEF int cas_hasher_update(cas_hasher *h, const void *data, size_t n);
/* Writes the hex key and a NUL. The hasher must be reset before reuse. */
CASDEF int cas_hasher_final(cas_hasher *h, char key[CAS_KEY_BUF]);
CASDEF int cas_hasher_reset(cas_hasher *h);
CASDEF void cas_hasher_free(cas_hasher *h);
CASDEF int cas_hash(int algo, const void *data, size_t n, char key[CAS_KEY_BUF]);

/* ---- blob formats and the _meta sidecar ----------------------------------- */

#define CAS_FORMAT_V1 1     /* gzip:   {"cas_raw": false, "cas_version": 1} */
#define CAS_FORMAT_V2 2     /* LZ4:    {"cas_raw": false, "cas_version": 2} */
#define CAS_FORMAT_RAW 3    /* as is:  {"cas_raw": true, "cas_version": 1}  */
#define CAS_FORMAT_LEGACY 4 /* no sidecar at all: read as gzip (before Metaflow 2.4) */
#define CAS_META_MAX 40     /* the longest sidecar this library writes, plus NUL */

CASDEF const char *cas_format_name(int format); /* "v1", "v2", "raw", "legacy", "?" */
/* The codec a format's bytes are in (CAS_CODEC_*), 0 if none. */
CASDEF int cas_format_codec(int format);
/* The sidecar JSON byte for byte as Metaflow writes it (json.dumps), NUL-terminated. */
CASDEF int cas_meta_json(int format, char *buf, size_t cap, size_t *len);
/* Applies Metaflow's read rules to a sidecar: CAS_OK with *format set (V1, V2 or RAW),
 * CAS_E_VERSION_MISSING ({} or no cas_version), CAS_E_VERSION_UNKNOWN (*version set),
 * CAS_E_META (not a JSON object). Both out-parameters are nullable. */
CASDEF int cas_meta_parse(const char *json, size_t len, int *format, int64_t *version);

/* ---- writing: bytes in, key + blob out ----------------------------------- */

/* Writer and reader parameters, beside the codec ones (CAS_PARAM_LEVEL,
 * CAS_PARAM_GZIP_BACKEND, CAS_PARAM_LZ4_BLOCK, CAS_PARAM_STRICT, ...). */
#define CAS_PARAM_HASH 32    /* writer: CAS_HASH_* for the key (default CAS_HASH_DEFAULT) */
#define CAS_PARAM_THREADS 33 /* writer: threads cas_pack may use, 1 or 2 (default 2) */
#define CAS_PARAM_LIMIT 34   /* reader: most bytes a blob may decode to; 0 = no limit (default) */
#define CAS_PARAM_EXPECT_SIZE 35 /* reader: the decoded size the caller knows (data.json's
                                    size); -1 = unknown (default). A difference is CAS_E_SIZE */

typedef struct cas_writer cas_writer;
CASDEF int cas_writer_create(cas_writer **out, int format, const cas_allocator *alloc);
CASDEF int cas_writer_set_param(cas_writer *w, int param, int64_t value);
/* Feeds bytes of the artifact: reports bytes consumed and blob bytes produced.
 * CAS_NEED_INPUT once all of in is consumed, CAS_NEED_OUTPUT when out is full. */
CASDEF int cas_writer_update(cas_writer *w, const void *in, size_t n, size_t *in_used, void *out, size_t cap,
                             size_t *out_made);
/* No more input: flushes the blob's tail. CAS_NEED_OUTPUT until CAS_DONE. */
CASDEF int cas_writer_finish(cas_writer *w, void *out, size_t cap, size_t *out_made);
/* After CAS_DONE: the key, and the sidecar to store beside the blob. */
CASDEF int cas_writer_key(const cas_writer *w, char key[CAS_KEY_BUF]);
CASDEF int cas_writer_meta(const cas_writer *w, char *buf, size_t cap, size_t *len);
CASDEF uint64_t cas_writer_size_in(const cas_writer *w);
CASDEF uint64_t cas_writer_size_out(const cas_writer *w);
CASDEF int cas_writer_format(const cas_writer *w);
/* New blob, same parameters; format 0 keeps the current one. Keeps allocations. */
CASDEF int cas_writer_reset(cas_writer *w, int format);
CASDEF void cas_writer_free(cas_writer *w);

/* The largest blob n bytes can become in this format. */
CASDEF size_t cas_pack_bound(int format, size_t n);
/* Whole artifact to key + blob. w may be NULL (a v1 writer for this call).
 * Large inputs hash on a second thread while the first compresses.
 * CAS_NEED_OUTPUT if cap < the blob (cas_pack_bound is always enough). */
CASDEF int cas_pack(cas_writer *w, const void *in, size_t n, void *out, size_t cap, size_t *blob_len,
                    char key[CAS_KEY_BUF]);

/* ---- reading: blob in, bytes out ----------------------------------------- */

typedef struct cas_reader cas_reader;
CASDEF int cas_reader_create(cas_reader **out, const cas_allocator *alloc);
CASDEF int cas_reader_set_param(cas_reader *r, int param, int64_t value);
/* Starts a blob. meta/meta_len: its sidecar JSON, or meta == NULL when it has
 * none. name: what messages call it (the store-relative path; NULL allowed).
 * key: when not NULL, the decoded bytes must hash to it (verify on read).
 * Errors for the sidecar itself come back here, with cas_reader_message set. */
CASDEF int cas_reader_begin(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key);
/* Decodes piece by piece: any input size, any output room, memory bounded by
 * the codec's window whatever the blob's size. end = 1: no input follows. */
CASDEF int cas_reader_update(cas_reader *r, const void *in, size_t n, size_t *in_used, void *out, size_t cap,
                             size_t *out_made, int end);
/* The whole blob at once into dst: CAS_DONE, CAS_NEED_OUTPUT if cap is short
 * (nothing is promised about dst then), or an error. */
CASDEF int cas_reader_unpack_into(cas_reader *r, const void *blob, size_t n, void *dst, size_t cap,
                                  size_t *out_len);
/* The whole blob at once into a buffer allocated with the reader's allocator;
 * release it with cas_reader_free_buffer. */
CASDEF int cas_reader_unpack(cas_reader *r, const void *blob, size_t n, void **out, size_t *out_len);
CASDEF void cas_reader_free_buffer(cas_reader *r, void *p);
/* begin + unpack_into in one call, for bindings that pay per call (ctypes):
 * CAS_DONE, an error, or CAS_NEED_OUTPUT with *out_len set to the size the
 * blob states (0 if it states none) so that a retry can size its buffer. */
CASDEF int cas_reader_decode(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key,
                             const void *blob, size_t n, void *dst, size_t cap, size_t *out_len);
/* What the blob says it decodes to (LZ4 content size, gzip length field) after
 * begin, or CAS_E_NOTFOUND. A hint for sizing buffers; never trusted. */
CASDEF int cas_reader_size_hint(cas_reader *r, const void *blob, size_t n, uint64_t *size);
/* The last error in Metaflow's words, e.g. "Could not unpack artifact 'F/data/ab/abcd..':
 * Compressed file ended before the end-of-stream marker was reached"; "" if none. */
CASDEF const char *cas_reader_message(const cas_reader *r);
/* The same without the "Could not unpack artifact '<name>': " prefix, for callers
 * (like a Metaflow extension) that wrap it in their own; sidecar errors, which
 * have no such prefix, come back whole. */
CASDEF const char *cas_reader_reason(const cas_reader *r);
CASDEF int cas_reader_format(const cas_reader *r);
CASDEF uint64_t cas_reader_total_in(const cas_reader *r);
CASDEF uint64_t cas_reader_total_out(const cas_reader *r);
CASDEF void cas_reader_free(cas_reader *r);

#ifdef __cplusplus
}
#endif

/* ---- the store: a Metaflow datastore root (POSIX) ------------------------- */
#ifndef CAS_NO_STORE
#ifdef __cplusplus
extern "C" {
#endif

/* Store parameters (cas_store_set_param), beside CAS_PARAM_LEVEL, CAS_PARAM_GZIP_BACKEND,
 * CAS_PARAM_LZ4_BLOCK, CAS_PARAM_HASH, CAS_PARAM_LIMIT and CAS_PARAM_STRICT. */
#define CAS_PARAM_FORMAT 40 /* what put writes: CAS_FORMAT_V1 (default), _V2 or _RAW */
#define CAS_PARAM_FSYNC 41  /* 1: fsync blob, sidecar and directory before a put returns */
#define CAS_PARAM_VERIFY 42 /* 1: every read rehashes and compares with the key */

typedef struct cas_store cas_store;
typedef struct cas_stream cas_stream;
typedef struct cas_task cas_task;

/* Every store call is thread-safe once configured and reports failures into the
 * caller's err buffer (nullable, any size) naming the blob and the cause. */
CASDEF int cas_store_open(cas_store **out, const char *root, const cas_allocator *alloc, char *err, size_t errcap);
CASDEF void cas_store_close(cas_store *s);
CASDEF const char *cas_store_root(const cas_store *s);
/* Configure before sharing the store between threads. */
CASDEF int cas_store_set_param(cas_store *s, int param, int64_t value);

/* Flow names and pathspec parts: 1-255 of [A-Za-z0-9_.-], not starting with '.'. */
CASDEF int cas_name_check(const char *name);
/* "Flow/run/step/task": four valid parts. */
CASDEF int cas_pathspec_check(const char *pathspec);
/* The store-relative path "Flow/data/ab/abcd..." into buf. */
CASDEF int cas_store_blob_name(const char *flow, const char *key, char *buf, size_t cap);

/* Stores bytes; the key comes back in key. format 0 = the store's default.
 * An existing key writes nothing (*stored = 0). The sidecar lands before the
 * blob becomes visible; a crash leaves only temp files, which cas_store_gc removes. */
CASDEF int cas_store_put(cas_store *s, const char *flow, const void *data, size_t n, int format,
                         char key[CAS_KEY_BUF], int *stored, char *err, size_t errcap);
/* Same, streaming from a file descriptor until EOF, memory bounded. */
CASDEF int cas_store_put_fd(cas_store *s, const char *flow, int fd, int format, char key[CAS_KEY_BUF],
                            int *stored, char *err, size_t errcap);
/* 1 if the blob exists, 0 if not, < 0 for an invalid flow or key. */
CASDEF int cas_store_exists(cas_store *s, const char *flow, const char *key);
/* Decoded bytes in a buffer from the store's allocator (cas_store_free_buffer). */
CASDEF int cas_store_get(cas_store *s, const char *flow, const char *key, void **out, size_t *len, char *err,
                         size_t errcap);
CASDEF void cas_store_free_buffer(cas_store *s, void *p);
/* Format (CAS_FORMAT_*, from the sidecar or LEGACY) and size on disk. */
CASDEF int cas_store_stat(cas_store *s, const char *flow, const char *key, int *format, uint64_t *stored_size,
                          char *err, size_t errcap);
/* Decodes the whole blob and rehashes it against its key. */
CASDEF int cas_store_verify(cas_store *s, const char *flow, const char *key, uint64_t *decoded_size, char *err,
                            size_t errcap);
/* Re-encodes one blob to CAS_FORMAT_V1 or _V2 in place, key unchanged; raw blobs
 * are left alone. Repairs a blob whose sidecar disagrees with its bytes (an
 * interrupted migrate). *changed = 1 if anything was rewritten. */
CASDEF int cas_store_migrate(cas_store *s, const char *flow, const char *key, int format, int *changed,
                             char *err, size_t errcap);
/* Removes temp files left by crashed writers (dead pid, or older than an hour). */
CASDEF int cas_store_gc(cas_store *s, uint64_t *removed, char *err, size_t errcap);
/* Flow names ("A\0B\0") or a flow's keys (count * CAS_KEY_BUF chars, each NUL-
 * terminated), in a buffer from the store's allocator (cas_store_free_buffer). */
CASDEF int cas_store_flows(cas_store *s, char **names, size_t *count, char *err, size_t errcap);
CASDEF int cas_store_keys(cas_store *s, const char *flow, char **keys, size_t *count, char *err, size_t errcap);

/* Batch calls spread the items over `threads` threads (0 = 2). They return
 * CAS_OK or the first failure's code; status[i] (nullable) holds each item's.
 * put: keys receives count * CAS_KEY_BUF chars. get: outs[i] as cas_store_get. */
CASDEF int cas_store_put_batch(cas_store *s, const char *flow, size_t count, const void *const *data,
                               const size_t *sizes, int format, char *keys, int *status, int threads, char *err,
                               size_t errcap);
CASDEF int cas_store_get_batch(cas_store *s, const char *flow, size_t count, const char *const *keys, void **outs,
                               size_t *lens, int *status, int threads, char *err, size_t errcap);

/* Streams: decode a blob piece by piece with a fixed window (64 KiB of input
 * plus the codec's state), whatever its size. */
CASDEF int cas_store_open_stream(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err,
                                 size_t errcap);
/* Any blob file; its sidecar is path + "_meta" when present. key (nullable)
 * turns on verification; limit 0 = none. */
CASDEF int cas_stream_open_file(cas_stream **out, const char *path, const char *key, uint64_t limit,
                                const cas_allocator *alloc, char *err, size_t errcap);
/* Up to cap decoded bytes; *got == 0 with CAS_OK means the end of the blob. */
CASDEF int cas_stream_read(cas_stream *st, void *buf, size_t cap, size_t *got);
/* CAS_PARAM_LIMIT or CAS_PARAM_EXPECT_SIZE for this stream, before the end. */
CASDEF int cas_stream_set_param(cas_stream *st, int param, int64_t value);
CASDEF const char *cas_stream_message(const cas_stream *st);
CASDEF int cas_stream_format(const cas_stream *st);
CASDEF uint64_t cas_stream_stored_size(const cas_stream *st);
CASDEF void cas_stream_close(cas_stream *st);

/* Tasks: "Flow/run/step/task" to its latest attempt and its artifacts. */
CASDEF int cas_task_open(cas_store *s, const char *pathspec, cas_task **out, char *err, size_t errcap);
CASDEF int cas_task_attempt(const cas_task *t);
CASDEF size_t cas_task_count(const cas_task *t);
/* Artifact i: pointers stay valid until cas_task_close; *size is -1 if unknown. */
CASDEF int cas_task_artifact(const cas_task *t, size_t i, const char **name, const char **key, int64_t *size,
                             const char **encoding, const char **type);
/* Index of an artifact by name, or CAS_E_NOTFOUND. */
CASDEF int cas_task_find(const cas_task *t, const char *name, size_t *index);
CASDEF const char *cas_task_flow(const cas_task *t);
CASDEF void cas_task_close(cas_task *t);

#ifdef __cplusplus
}
#endif
#endif /* CAS_NO_STORE */

#endif /* CAS_H */

/* ========================================================================== */
/*                               IMPLEMENTATION                               */
/* ========================================================================== */

#if defined(CAS_IMPLEMENTATION) && !defined(CAS_IMPLEMENTED)
#define CAS_IMPLEMENTED

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CAS_NO_THREADS
#include <pthread.h>
#endif
#if defined(__linux__) && !defined(CAS_NO_STORE)
#include <sys/mman.h>
#endif
#ifdef CAS_SHA1_OPENSSL
#include <openssl/evp.h>
#endif
#ifndef CAS_NO_XXH3
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include "xxhash.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- hashing ------------------------------------------------------------- */

/* The portable SHA-1 is the dependency-free default; no Debian library offers
 * SHA-1 without pulling a crypto library in, and CAS_SHA1_OPENSSL uses one. */
#ifndef CAS_SHA1_OPENSSL
typedef struct cas__sha1 {
    uint32_t h[5];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
} cas__sha1;

#define CAS__ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define CAS__BE32(p) \
    ((uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 | (uint32_t)(p)[3])

static void cas__sha1_blocks(uint32_t st[5], const unsigned char *p, size_t nblocks) {
    uint32_t w[16];
    while (nblocks--) {
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4];
        int t;
#define CAS__W(i) w[(i) & 15]
#define CAS__MIX(i) (CAS__W(i) = CAS__ROL(CAS__W((i) + 13) ^ CAS__W((i) + 8) ^ CAS__W((i) + 2) ^ CAS__W(i), 1))
#define CAS__R(a, b, c, d, e, f, k, x) \
    e += CAS__ROL(a, 5) + (f) + (k) + (x); \
    b = CAS__ROL(b, 30)
#define CAS__F1(b, c, d) ((((c) ^ (d)) & (b)) ^ (d))
#define CAS__F2(b, c, d) ((b) ^ (c) ^ (d))
#define CAS__F3(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))
        for (t = 0; t < 16; t++) w[t] = CAS__BE32(p + 4 * t);
        for (t = 0; t < 15; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F1(b, c, d), 0x5a827999u, w[t]);
            CAS__R(e, a, b, c, d, CAS__F1(a, b, c), 0x5a827999u, w[t + 1]);
            CAS__R(d, e, a, b, c, CAS__F1(e, a, b), 0x5a827999u, w[t + 2]);
            CAS__R(c, d, e, a, b, CAS__F1(d, e, a), 0x5a827999u, w[t + 3]);
            CAS__R(b, c, d, e, a, CAS__F1(c, d, e), 0x5a827999u, w[t + 4]);
        }
        CAS__R(a, b, c, d, e, CAS__F1(b, c, d), 0x5a827999u, w[15]);
        CAS__R(e, a, b, c, d, CAS__F1(a, b, c), 0x5a827999u, CAS__MIX(16));
        CAS__R(d, e, a, b, c, CAS__F1(e, a, b), 0x5a827999u, CAS__MIX(17));
        CAS__R(c, d, e, a, b, CAS__F1(d, e, a), 0x5a827999u, CAS__MIX(18));
        CAS__R(b, c, d, e, a, CAS__F1(c, d, e), 0x5a827999u, CAS__MIX(19));
        for (t = 20; t < 40; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F2(b, c, d), 0x6ed9eba1u, CAS__MIX(t));
            CAS__R(e, a, b, c, d, CAS__F2(a, b, c), 0x6ed9eba1u, CAS__MIX(t + 1));
            CAS__R(d, e, a, b, c, CAS__F2(e, a, b), 0x6ed9eba1u, CAS__MIX(t + 2));
            CAS__R(c, d, e, a, b, CAS__F2(d, e, a), 0x6ed9eba1u, CAS__MIX(t + 3));
            CAS__R(b, c, d, e, a, CAS__F2(c, d, e), 0x6ed9eba1u, CAS__MIX(t + 4));
        }
        for (t = 40; t < 60; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F3(b, c, d), 0x8f1bbcdcu, CAS__MIX(t));
            CAS__R(e, a, b, c, d, CAS__F3(a, b, c), 0x8f1bbcdcu, CAS__MIX(t + 1));
            CAS__R(d, e, a, b, c, CAS__F3(e, a, b), 0x8f1bbcdcu, CAS__MIX(t + 2));
            CAS__R(c, d, e, a, b, CAS__F3(d, e, a), 0x8f1bbcdcu, CAS__MIX(t + 3));
            CAS__R(b, c, d, e, a, CAS__F3(c, d, e), 0x8f1bbcdcu, CAS__MIX(t + 4));
        }
        for (t = 60; t < 80; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F2(b, c, d), 0xca62c1d6u, CAS__MIX(t));
            CAS__R(e, a, b, c, d, CAS__F2(a, b, c), 0xca62c1d6u, CAS__MIX(t + 1));
            CAS__R(d, e, a, b, c, CAS__F2(e, a, b), 0xca62c1d6u, CAS__MIX(t + 2));
            CAS__R(c, d, e, a, b, CAS__F2(d, e, a), 0xca62c1d6u, CAS__MIX(t + 3));
            CAS__R(b, c, d, e, a, CAS__F2(c, d, e), 0xca62c1d6u, CAS__MIX(t + 4));
        }
#undef CAS__W
#undef CAS__MIX
#undef CAS__R
#undef CAS__F1
#undef CAS__F2
#undef CAS__F3
        st[0] += a, st[1] += b, st[2] += c, st[3] += d, st[4] += e;
        p += 64;
    }
}

static void cas__sha1_init(cas__sha1 *s) {
    s->h[0] = 0x67452301u, s->h[1] = 0xefcdab89u, s->h[2] = 0x98badcfeu;
    s->h[3] = 0x10325476u, s->h[4] = 0xc3d2e1f0u;
    s->len = 0, s->fill = 0;
}

static void cas__sha1_update(cas__sha1 *s, const unsigned char *p, size_t n) {
    s->len += n;
    if (s->fill) {
        size_t k = CAS__MIN(n, 64 - s->fill);
        memcpy(s->buf + s->fill, p, k);
        s->fill += k, p += k, n -= k;
        if (s->fill < 64) return;
        cas__sha1_blocks(s->h, s->buf, 1);
        s->fill = 0;
    }
    if (n >= 64) {
        cas__sha1_blocks(s->h, p, n / 64);
        p += n & ~(size_t)63, n &= 63;
    }
    memcpy(s->buf, p, n);
    s->fill = n;
}

static void cas__sha1_final(cas__sha1 *s, unsigned char out[20]) {
    uint64_t bits = s->len * 8;
    int i;
    s->buf[s->fill++] = 0x80;
    if (s->fill > 56) {
        memset(s->buf + s->fill, 0, 64 - s->fill);
        cas__sha1_blocks(s->h, s->buf, 1);
        s->fill = 0;
    }
    memset(s->buf + s->fill, 0, 56 - s->fill);
    for (i = 0; i < 8; i++) s->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    cas__sha1_blocks(s->h, s->buf, 1);
    for (i = 0; i < 20; i++) out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}
#endif /* !CAS_SHA1_OPENSSL */

struct cas_hasher {
    cas_allocator alloc;
    int algo, finished;
#ifdef CAS_SHA1_OPENSSL
    EVP_MD_CTX *evp;
#else
    cas__sha1 sha;
#endif
#ifndef CAS_NO_XXH3
    void *xraw;        /* allocation holding the 64-byte aligned state */
    XXH3_state_t *xst; /* XXH3 wants 64-byte alignment, more than malloc promises */
#endif
};

#ifdef CAS_SHA1_OPENSSL
/* EVP_sha1() makes OpenSSL 3 look the algorithm up on every init; fetching it
 * once halves the cost of hashing a small artifact. */
static const EVP_MD *cas__sha1_md_ptr;
#ifndef CAS_NO_THREADS
static pthread_once_t cas__sha1_once = PTHREAD_ONCE_INIT;
#endif
static void cas__sha1_fetch(void) {
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA1", NULL); /* kept for the process's life */
    cas__sha1_md_ptr = md ? md : EVP_sha1();
}
static const EVP_MD *cas__sha1_md(void) {
#ifndef CAS_NO_THREADS
    pthread_once(&cas__sha1_once, cas__sha1_fetch);
#else
    if (!cas__sha1_md_ptr) cas__sha1_fetch();
#endif
    return cas__sha1_md_ptr;
}
#endif

CASDEF int cas_hash_available(int algo) {
#ifndef CAS_NO_XXH3
    if (algo == CAS_HASH_XXH3) return 1;
#endif
    return algo == CAS_HASH_SHA1;
}

CASDEF size_t cas_key_length(int algo) { return algo == CAS_HASH_SHA1 ? 40 : algo == CAS_HASH_XXH3 ? 32 : 0; }

CASDEF int cas_key_check(const char *key, size_t len, int *algo) {
    size_t i;
    if (algo) *algo = 0;
    if (!key || (len != 40 && len != 32)) return CAS_E_KEY;
    for (i = 0; i < len; i++)
        if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f'))) return CAS_E_KEY;
    if (algo) *algo = len == 40 ? CAS_HASH_SHA1 : CAS_HASH_XXH3;
    return CAS_OK;
}

static void cas__hex(const unsigned char *d, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) out[2 * i] = hx[d[i] >> 4], out[2 * i + 1] = hx[d[i] & 15];
    out[2 * n] = 0;
}

CASDEF int cas_hasher_reset(cas_hasher *h) {
    if (!h) return CAS_E_ARG;
    h->finished = 0;
#ifndef CAS_NO_XXH3
    if (h->algo == CAS_HASH_XXH3) {
        XXH3_128bits_reset(h->xst);
        return CAS_OK;
    }
#endif
#ifdef CAS_SHA1_OPENSSL
    if (EVP_DigestInit_ex(h->evp, cas__sha1_md(), NULL) != 1) return CAS_E_NOMEM;
#else
    cas__sha1_init(&h->sha);
#endif
    return CAS_OK;
}

CASDEF void cas_hasher_free(cas_hasher *h) {
    cas_allocator a;
    if (!h) return;
#ifdef CAS_SHA1_OPENSSL
    if (h->evp) EVP_MD_CTX_free(h->evp);
#endif
#ifndef CAS_NO_XXH3
    cas__free(&h->alloc, h->xraw);
#endif
    a = h->alloc;
    cas__free(&a, h);
}

CASDEF int cas_hasher_create(cas_hasher **out, int algo, const cas_allocator *alloc) {
    cas_hasher *h;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!cas_key_length(algo)) return CAS_E_ARG;
    if (!cas_hash_available(algo)) return CAS_E_UNSUPPORTED;
    h = (cas_hasher *)cas__calloc(alloc, sizeof *h);
    if (!h) return CAS_E_NOMEM;
    cas__copy_allocator(&h->alloc, alloc);
    h->algo = algo;
#ifndef CAS_NO_XXH3
    if (algo == CAS_HASH_XXH3) {
        h->xraw = cas__alloc(&h->alloc, sizeof(XXH3_state_t) + 64);
        if (!h->xraw) {
            cas_hasher_free(h);
            return CAS_E_NOMEM;
        }
        h->xst = (XXH3_state_t *)(void *)(((uintptr_t)h->xraw + 63) & ~(uintptr_t)63);
        XXH3_INITSTATE(h->xst);
    }
#endif
#ifdef CAS_SHA1_OPENSSL
    if (algo == CAS_HASH_SHA1 && !(h->evp = EVP_MD_CTX_new())) {
        cas_hasher_free(h);
        return CAS_E_NOMEM;
    }
#endif
    if (cas_hasher_reset(h) < 0) {
        cas_hasher_free(h);
        return CAS_E_NOMEM;
    }
    *out = h;
    return CAS_OK;
}

CASDEF int cas_hasher_update(cas_hasher *h, const void *data, size_t n) {
    if (!h || (!data && n)) return CAS_E_ARG;
    if (h->finished) return CAS_E_STATE;
    if (!n) return CAS_OK;
#ifndef CAS_NO_XXH3
    if (h->algo == CAS_HASH_XXH3) {
        XXH3_128bits_update(h->xst, data, n);
        return CAS_OK;
    }
#endif
#ifdef CAS_SHA1_OPENSSL
    if (EVP_DigestUpdate(h->evp, data, n) != 1) return CAS_E_STATE;
#else
    cas__sha1_update(&h->sha, (const unsigned char *)data, n);
#endif
    return CAS_OK;
}

CASDEF int cas_hasher_final(cas_hasher *h, char key[CAS_KEY_BUF]) {
    unsigned char d[20];
    if (!h || !key) return CAS_E_ARG;
    if (h->finished) return CAS_E_STATE;
    h->finished = 1;
#ifndef CAS_NO_XXH3
    if (h->algo == CAS_HASH_XXH3) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xst));
        cas__hex(c.digest, 16, key);
        return CAS_OK;
    }
#endif
#ifdef CAS_SHA1_OPENSSL
    {
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(h->evp, d, &len) != 1 || len != 20) return CAS_E_STATE;
    }
#else
    cas__sha1_final(&h->sha, d);
#endif
    cas__hex(d, 20, key);
    return CAS_OK;
}

CASDEF int cas_hash(int algo, const void *data, size_t n, char key[CAS_KEY_BUF]) {
    if (!key || (!data && n)) return CAS_E_ARG;
    if (!cas_key_length(algo)) return CAS_E_ARG;
    if (!cas_hash_available(algo)) return CAS_E_UNSUPPORTED;
#ifndef CAS_NO_XXH3
    if (algo == CAS_HASH_XXH3) { /* one-shot XXH3 needs no state at all */
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
        cas__hex(c.digest, 16, key);
        return CAS_OK;
    }
#endif
#ifdef CAS_SHA1_OPENSSL
    {
        unsigned char d[20];
        unsigned int len = 0;
        if (EVP_Digest(data, n, d, &len, cas__sha1_md(), NULL) != 1 || len != 20) return CAS_E_NOMEM;
        cas__hex(d, 20, key);
    }
#else
    {
        cas__sha1 s;
        unsigned char d[20];
        cas__sha1_init(&s);
        cas__sha1_update(&s, (const unsigned char *)data, n);
        cas__sha1_final(&s, d);
        cas__hex(d, 20, key);
    }
#endif
    return CAS_OK;
}

/* ---- JSON: a small bounded parser ---------------------------------------- */
/* Sidecars and data.json are small documents from untrusted stores. Tokens go
 * in one flat array in document order, each with the index just past its
 * subtree, so lookups skip whole values without recursion. Depth is capped and
 * nothing is recursive, so hostile nesting costs neither stack nor time. */

enum { CAS__J_OBJ = 1, CAS__J_ARR, CAS__J_STR, CAS__J_NUM, CAS__J_TRUE, CAS__J_FALSE, CAS__J_NULL };
#define CAS__JSON_DEPTH 64

typedef struct cas__jtok {
    int type;
    size_t start, end; /* text span; strings exclude the quotes */
    size_t next;       /* token index just past this value's subtree */
    size_t count;      /* members (objects: key+value pairs) or elements */
} cas__jtok;

typedef struct cas__json {
    const char *s;
    size_t n;
    cas__jtok *t;
    size_t count, cap;
    const cas_allocator *alloc;
    char err[96];
} cas__json;

static int cas__json_push(cas__json *j, int type, size_t start) {
    if (j->count == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 32;
        cas__jtok *nt;
        if (nc > ((size_t)-1) / sizeof *nt) return CAS_E_NOMEM;
        nt = (cas__jtok *)cas__alloc(j->alloc, nc * sizeof *nt);
        if (!nt) return CAS_E_NOMEM;
        if (j->count) memcpy(nt, j->t, j->count * sizeof *nt);
        cas__free(j->alloc, j->t);
        j->t = nt, j->cap = nc;
    }
    j->t[j->count].type = type;
    j->t[j->count].start = start;
    j->t[j->count].end = start;
    j->t[j->count].next = j->count + 1;
    j->t[j->count].count = 0;
    j->count++;
    return CAS_OK;
}

static int cas__json_fail(cas__json *j, size_t at, const char *what) {
    cas__fmt(j->err, sizeof j->err, "%s at byte %lu", what, (unsigned long)at);
    return CAS_E_JSON;
}

static size_t cas__json_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* Scans a string starting after its opening quote; returns the index of the
 * closing quote or 0 on error (a string never closes at index 0). */
static size_t cas__json_scan_str(cas__json *j, size_t i) {
    const char *s = j->s;
    while (i < j->n) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"') return i;
        if (ch < 0x20) {
            cas__json_fail(j, i, "control character in string");
            return 0;
        }
        if (ch == '\\') {
            if (i + 1 >= j->n) break;
            ch = (unsigned char)s[i + 1];
            if (ch == 'u') {
                int k;
                for (k = 2; k < 6; k++) {
                    char h = i + k < j->n ? s[i + k] : 0;
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        {
                        cas__json_fail(j, i, "bad \\u escape");
                        return 0;
                    }
                }
                i += 6;
                continue;
            }
            if (!ch || !strchr("\"\\/bfnrt", ch)) {
                cas__json_fail(j, i, "bad escape");
                return 0;
            }
            i += 2;
            continue;
        }
        i++;
    }
    cas__json_fail(j, i, "unterminated string");
    return 0;
}

static size_t cas__json_scan_num(const char *s, size_t i, size_t n) {
    size_t st = i;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return st;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return st;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t d;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return st;
    }
    return i;
}

static void cas__json_free(cas__json *j) {
    cas__free(j->alloc, j->t);
    j->t = NULL;
    j->count = j->cap = 0;
}

/* Parses one JSON value spanning the whole text (whitespace around allowed). */
static int cas__json_parse(cas__json *j, const char *s, size_t n, const cas_allocator *alloc) {
    size_t stack[CAS__JSON_DEPTH];
    int expect_key[CAS__JSON_DEPTH];
    int depth = 0, r;
    size_t i = 0;
    memset(j, 0, sizeof *j);
    j->s = s, j->n = n, j->alloc = alloc;
    for (;;) {
        size_t tok;
        i = cas__json_ws(s, i, n);
        if (i >= n) return cas__json_fail(j, i, "unexpected end");
        if (depth && expect_key[depth - 1]) { /* inside an object: a key or '}' */
            cas__jtok *o = &j->t[stack[depth - 1]];
            if (s[i] == '}' && o->count == 0) goto close;
            if (o->count) {
                if (s[i] == '}') goto close;
                if (s[i] != ',') return cas__json_fail(j, i, "expected ',' or '}'");
                i = cas__json_ws(s, i + 1, n);
            }
            if (i >= n || s[i] != '"') return cas__json_fail(j, i, "expected a string key");
            if ((r = cas__json_push(j, CAS__J_STR, i + 1)) < 0) return r;
            tok = j->count - 1;
            if (!(j->t[tok].end = cas__json_scan_str(j, i + 1))) return CAS_E_JSON;
            i = cas__json_ws(s, j->t[tok].end + 1, n);
            if (i >= n || s[i] != ':') return cas__json_fail(j, i, "expected ':'");
            i = cas__json_ws(s, i + 1, n);
            if (i >= n) return cas__json_fail(j, i, "unexpected end");
            j->t[stack[depth - 1]].count++; /* not o: the push may have moved the array */
        } else if (depth) { /* inside an array: a value or ']' */
            cas__jtok *a = &j->t[stack[depth - 1]];
            if (s[i] == ']') goto close;
            if (a->count) {
                if (s[i] != ',') return cas__json_fail(j, i, "expected ',' or ']'");
                i = cas__json_ws(s, i + 1, n);
                if (i >= n) return cas__json_fail(j, i, "unexpected end");
            }
            a->count++;
        }
        /* a value */
        if (s[i] == '{' || s[i] == '[') {
            if (depth == CAS__JSON_DEPTH) return cas__json_fail(j, i, "nesting too deep");
            if ((r = cas__json_push(j, s[i] == '{' ? CAS__J_OBJ : CAS__J_ARR, i)) < 0) return r;
            expect_key[depth] = s[i] == '{';
            stack[depth++] = j->count - 1;
            i++;
            continue;
        }
        if (s[i] == '"') {
            if ((r = cas__json_push(j, CAS__J_STR, i + 1)) < 0) return r;
            tok = j->count - 1;
            if (!(j->t[tok].end = cas__json_scan_str(j, i + 1))) return CAS_E_JSON;
            i = j->t[tok].end + 1;
        } else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
            size_t e = cas__json_scan_num(s, i, n);
            if (e == i) return cas__json_fail(j, i, "bad number");
            if ((r = cas__json_push(j, CAS__J_NUM, i)) < 0) return r;
            j->t[j->count - 1].end = e;
            i = e;
        } else if (n - i >= 4 && !memcmp(s + i, "true", 4)) {
            if ((r = cas__json_push(j, CAS__J_TRUE, i)) < 0) return r;
            i += 4, j->t[j->count - 1].end = i;
        } else if (n - i >= 5 && !memcmp(s + i, "false", 5)) {
            if ((r = cas__json_push(j, CAS__J_FALSE, i)) < 0) return r;
            i += 5, j->t[j->count - 1].end = i;
        } else if (n - i >= 4 && !memcmp(s + i, "null", 4)) {
            if ((r = cas__json_push(j, CAS__J_NULL, i)) < 0) return r;
            i += 4, j->t[j->count - 1].end = i;
        } else {
            return cas__json_fail(j, i, "unexpected character");
        }
        if (!depth) goto top_done;
        continue;
    close:
        depth--;
        j->t[stack[depth]].end = i + 1;
        j->t[stack[depth]].next = j->count;
        i++;
        if (!depth) goto top_done;
        continue;
    }
top_done:
    i = cas__json_ws(s, i, n);
    if (i != n) return cas__json_fail(j, i, "extra data after the value");
    return CAS_OK;
}

/* Compares a string token's raw text with a plain key (keys we look up have no escapes). */
static int cas__json_str_is(const cas__json *j, size_t tok, const char *lit) {
    size_t l = strlen(lit);
    const cas__jtok *t = &j->t[tok];
    return t->type == CAS__J_STR && t->end - t->start == l && !memcmp(j->s + t->start, lit, l);
}

/* The value token of member `key` in object token obj, or 0 (token 0 is never a member).
 * Python's json keeps the last of duplicate keys; so does this. */
static size_t cas__json_get(const cas__json *j, size_t obj, const char *key) {
    size_t i, k, found = 0;
    if (obj >= j->count || j->t[obj].type != CAS__J_OBJ) return 0;
    i = obj + 1;
    for (k = 0; k < j->t[obj].count; k++) {
        size_t v = i + 1;
        if (cas__json_str_is(j, i, key)) found = v;
        i = j->t[v].next;
    }
    return found;
}

/* Decodes a string token into buf (UTF-8, escapes resolved). Returns the length,
 * or (size_t)-1 when it does not fit or holds a NUL or a lone surrogate. */
CAS__UNUSED static size_t cas__json_str(const cas__json *j, size_t tok, char *buf, size_t cap) {
    const cas__jtok *t = &j->t[tok];
    size_t i = t->start, o = 0;
    if (t->type != CAS__J_STR || !cap) return (size_t)-1;
    while (i < t->end) {
        unsigned long cp;
        char ch = j->s[i];
        if (ch != '\\') {
            if (o + 1 >= cap) return (size_t)-1;
            buf[o++] = ch, i++;
            continue;
        }
        ch = j->s[i + 1];
        i += 2;
        if (ch != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            if (o + 1 >= cap) return (size_t)-1;
            buf[o++] = to[strchr(from, ch) - from];
            continue;
        }
        {
            char hx[5];
            memcpy(hx, j->s + i, 4), hx[4] = 0;
            cp = strtoul(hx, NULL, 16);
            i += 4;
        }
        if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
            char hx[5];
            unsigned long lo;
            if (i + 6 > t->end || j->s[i] != '\\' || j->s[i + 1] != 'u') return (size_t)-1;
            memcpy(hx, j->s + i + 2, 4), hx[4] = 0;
            lo = strtoul(hx, NULL, 16);
            if (lo < 0xdc00 || lo >= 0xe000) return (size_t)-1;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            return (size_t)-1;
        }
        if (cp == 0) return (size_t)-1; /* NUL would cut the C string */
        if (o + 5 >= cap) return (size_t)-1;
        if (cp < 0x80) buf[o++] = (char)cp;
        else if (cp < 0x800) {
            buf[o++] = (char)(0xc0 | (cp >> 6));
            buf[o++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            buf[o++] = (char)(0xe0 | (cp >> 12));
            buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            buf[o++] = (char)(0xf0 | (cp >> 18));
            buf[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    buf[o] = 0;
    return o;
}

/* An integer token (JSON number without fraction or exponent, or true/false as
 * Python's int() would take them). 0 on success; -1 if not integral; 1 if out of
 * int64 range (the text stays available through the token). */
static int cas__json_int(const cas__json *j, size_t tok, int64_t *v) {
    const cas__jtok *t = &j->t[tok];
    size_t i = t->start;
    int neg = 0;
    uint64_t acc = 0;
    if (t->type == CAS__J_TRUE || t->type == CAS__J_FALSE) {
        *v = t->type == CAS__J_TRUE;
        return 0;
    }
    if (t->type != CAS__J_NUM) return -1;
    if (j->s[i] == '-') neg = 1, i++;
    for (; i < t->end; i++) {
        char ch = j->s[i];
        if (ch == '.' || ch == 'e' || ch == 'E') { /* integral floats (1.0, 2e0) count, like "%d" % 1.0 */
            double d = strtod(j->s + t->start, NULL);
            if (d != d || d < -9.2e18 || d > 9.2e18) return 1;
            if ((double)(int64_t)d != d) return -1;
            *v = (int64_t)d;
            return 0;
        }
        if (acc > (UINT64_MAX - 9) / 10) return 1;
        acc = acc * 10 + (uint64_t)(ch - '0');
    }
    if (acc > (uint64_t)INT64_MAX + (uint64_t)neg) return 1;
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 0;
}

/* Python truthiness of a JSON value, for cas_raw. */
static int cas__json_truthy(const cas__json *j, size_t tok) {
    const cas__jtok *t = &j->t[tok];
    switch (t->type) {
    case CAS__J_TRUE: return 1;
    case CAS__J_FALSE:
    case CAS__J_NULL: return 0;
    case CAS__J_STR: return t->end > t->start;
    case CAS__J_OBJ:
    case CAS__J_ARR: return t->count > 0;
    case CAS__J_NUM: return strtod(j->s + t->start, NULL) != 0.0;
    default: return 0;
    }
}

/* ---- formats and the sidecar --------------------------------------------- */

CASDEF const char *cas_format_name(int format) {
    switch (format) {
    case CAS_FORMAT_V1: return "v1";
    case CAS_FORMAT_V2: return "v2";
    case CAS_FORMAT_RAW: return "raw";
    case CAS_FORMAT_LEGACY: return "legacy";
    default: return "?";
    }
}

CASDEF int cas_format_codec(int format) {
    switch (format) {
    case CAS_FORMAT_V1:
    case CAS_FORMAT_LEGACY: return CAS_CODEC_GZIP;
    case CAS_FORMAT_V2: return CAS_CODEC_LZ4;
    case CAS_FORMAT_RAW: return CAS_CODEC_RAW;
    default: return 0;
    }
}

CASDEF int cas_meta_json(int format, char *buf, size_t cap, size_t *len) {
    const char *s;
    size_t l;
    if (len) *len = 0;
    switch (format) {
    case CAS_FORMAT_V1: s = "{\"cas_raw\": false, \"cas_version\": 1}"; break;
    case CAS_FORMAT_V2: s = "{\"cas_raw\": false, \"cas_version\": 2}"; break;
    case CAS_FORMAT_RAW: s = "{\"cas_raw\": true, \"cas_version\": 1}"; break;
    default: return CAS_E_ARG;
    }
    l = strlen(s);
    if (!buf || cap <= l) return CAS_NEED_OUTPUT;
    memcpy(buf, s, l + 1);
    if (len) *len = l;
    return CAS_OK;
}

/* Metaflow's read rules; *vtok gets the version token for messages. */
static int cas__meta_rules(const cas__json *j, int *format, int64_t *version, size_t *vtok) {
    size_t raw, ver;
    int64_t v = -1;
    int r;
    *vtok = 0;
    if (!j->count || j->t[0].type != CAS__J_OBJ) return CAS_E_META;
    /* `meta and meta.get('cas_raw')`: an empty object is falsy, so {} falls through */
    raw = cas__json_get(j, 0, "cas_raw");
    if (raw && cas__json_truthy(j, raw)) {
        *format = CAS_FORMAT_RAW;
        return CAS_OK;
    }
    ver = cas__json_get(j, 0, "cas_version");
    if (!ver) return CAS_E_VERSION_MISSING;
    *vtok = ver;
    r = cas__json_int(j, ver, &v);
    if (r < 0) return CAS_E_VERSION_MISSING; /* a string or object cannot name a version */
    if (r > 0) { /* beyond int64: the sign comes from the text */
        *version = j->s[j->t[ver].start] == '-' ? INT64_MIN : INT64_MAX;
        return CAS_E_VERSION_UNKNOWN;
    }
    *version = v;
    if (v == -1) return CAS_E_VERSION_MISSING; /* Metaflow's own "missing" sentinel */
    if (v == 1) *format = CAS_FORMAT_V1;
    else if (v == 2) *format = CAS_FORMAT_V2;
    else return CAS_E_VERSION_UNKNOWN;
    return CAS_OK;
}

/* The three sidecars Metaflow (and this library) write, recognised without parsing. */
static int cas__meta_exact(const char *m, size_t n) {
    static const char v1[] = "{\"cas_raw\": false, \"cas_version\": 1}";
    static const char v2[] = "{\"cas_raw\": false, \"cas_version\": 2}";
    static const char raw[] = "{\"cas_raw\": true, \"cas_version\": 1}";
    if (n == sizeof v1 - 1 && !memcmp(m, v1, n)) return CAS_FORMAT_V1;
    if (n == sizeof v2 - 1 && !memcmp(m, v2, n)) return CAS_FORMAT_V2;
    if (n == sizeof raw - 1 && !memcmp(m, raw, n)) return CAS_FORMAT_RAW;
    return 0;
}

CASDEF int cas_meta_parse(const char *json, size_t len, int *format, int64_t *version) {
    cas__json j;
    int fmt = 0, r;
    int64_t v = 0;
    size_t vt;
    if (format) *format = 0;
    if (version) *version = 0;
    if (!json && len) return CAS_E_ARG;
    if (len > 65536) return CAS_E_META; /* sidecars are 36 bytes; refuse to parse megabytes */
    r = cas__json_parse(&j, json ? json : "", len, NULL);
    if (r == CAS_E_NOMEM) {
        cas__json_free(&j);
        return r;
    }
    r = r < 0 ? CAS_E_META : cas__meta_rules(&j, &fmt, &v, &vt);
    cas__json_free(&j);
    if (format) *format = fmt;
    if (version) *version = v;
    return r;
}

/* ---- writer -------------------------------------------------------------- */

struct cas_writer {
    cas_allocator alloc;
    int format, hash_algo, threads;
    int64_t params[8]; /* codec parameters by id, -2 = unset */
    cas_codec *codec;
    int codec_id;
    cas_hasher *hasher;
    int hasher_algo;
    int done;
    char key[CAS_KEY_BUF];
};

#define CAS__CODEC_PARAMS 7 /* codec parameter ids are 1..6 */

static int cas__writer_codec(cas_writer *w) {
    int id = cas_format_codec(w->format), r, p;
    if (w->codec && w->codec_id != id) {
        cas_codec_free(w->codec);
        w->codec = NULL;
    }
    if (!w->codec) {
        if ((r = cas_encoder_create(&w->codec, id, &w->alloc)) < 0) return r;
        w->codec_id = id;
        for (p = 1; p < CAS__CODEC_PARAMS; p++)
            if (w->params[p] != -2 && (r = cas_codec_set_param(w->codec, p, w->params[p])) < 0 && r != CAS_E_ARG)
                return r;
    }
    return cas_codec_reset(w->codec);
}

CASDEF int cas_writer_reset(cas_writer *w, int format) {
    int r;
    if (!w) return CAS_E_ARG;
    if (format) {
        if (format != CAS_FORMAT_V1 && format != CAS_FORMAT_V2 && format != CAS_FORMAT_RAW) return CAS_E_ARG;
        if (!cas_codec_available(cas_format_codec(format))) return CAS_E_UNSUPPORTED;
        w->format = format;
    }
    w->done = 0, w->key[0] = 0;
    if ((r = cas__writer_codec(w)) < 0) return r;
    if (w->hasher && w->hasher_algo == w->hash_algo) return cas_hasher_reset(w->hasher);
    cas_hasher_free(w->hasher);
    w->hasher = NULL;
    if ((r = cas_hasher_create(&w->hasher, w->hash_algo, &w->alloc)) < 0) return r;
    w->hasher_algo = w->hash_algo;
    return CAS_OK;
}

CASDEF void cas_writer_free(cas_writer *w) {
    cas_allocator a;
    if (!w) return;
    cas_codec_free(w->codec);
    cas_hasher_free(w->hasher);
    a = w->alloc;
    cas__free(&a, w);
}

CASDEF int cas_writer_create(cas_writer **out, int format, const cas_allocator *alloc) {
    cas_writer *w;
    int r, p;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    w = (cas_writer *)cas__calloc(alloc, sizeof *w);
    if (!w) return CAS_E_NOMEM;
    cas__copy_allocator(&w->alloc, alloc);
    w->hash_algo = CAS_HASH_DEFAULT, w->threads = 2;
    for (p = 0; p < 8; p++) w->params[p] = -2;
    if ((r = cas_writer_reset(w, format ? format : CAS_FORMAT_V1)) < 0) {
        cas_writer_free(w);
        return r;
    }
    *out = w;
    return CAS_OK;
}

CASDEF int cas_writer_set_param(cas_writer *w, int param, int64_t v) {
    int r;
    if (!w) return CAS_E_ARG;
    if (param == CAS_PARAM_HASH) {
        if (!cas_key_length((int)v)) return CAS_E_ARG;
        if (!cas_hash_available((int)v)) return CAS_E_UNSUPPORTED;
        w->hash_algo = (int)v;
        return cas_writer_reset(w, 0);
    }
    if (param == CAS_PARAM_THREADS) {
        if (v < 1 || v > 2) return CAS_E_ARG;
        w->threads = (int)v;
        return CAS_OK;
    }
    if (param < 1 || param >= CAS__CODEC_PARAMS || param == CAS_PARAM_STRICT) return CAS_E_ARG;
    /* validate against a codec that takes it, then remember for later codecs */
    if ((r = cas_codec_reset(w->codec)) < 0) return r;
    r = cas_codec_set_param(w->codec, param, v);
    if (r < 0 && r != CAS_E_ARG) return r;
    if (r == CAS_E_ARG) {
        /* e.g. an LZ4 level on a gzip writer: accept when some codec takes it */
        cas_codec *probe;
        int ok = 0, id;
        for (id = CAS_CODEC_GZIP; id <= CAS_CODEC_LZ4 && !ok; id++) {
            if (!cas_codec_available(id) || cas_encoder_create(&probe, id, &w->alloc) < 0) continue;
            ok = cas_codec_set_param(probe, param, v) == CAS_OK;
            cas_codec_free(probe);
        }
        if (!ok) return CAS_E_ARG;
    }
    w->params[param] = v;
    return cas_writer_reset(w, 0);
}

CASDEF int cas_writer_update(cas_writer *w, const void *in, size_t n, size_t *in_used, void *out, size_t cap,
                             size_t *out_made) {
    size_t u = 0, m = 0;
    int r;
    if (in_used) *in_used = 0;
    if (out_made) *out_made = 0;
    if (!w || (!in && n)) return CAS_E_ARG;
    if (w->done) return CAS_E_STATE;
    r = cas_codec_update(w->codec, in, n, &u, out, cap, &m, 0);
    if (u) cas_hasher_update(w->hasher, in, u);
    if (in_used) *in_used = u;
    if (out_made) *out_made = m;
    return r;
}

CASDEF int cas_writer_finish(cas_writer *w, void *out, size_t cap, size_t *out_made) {
    size_t u = 0, m = 0;
    int r;
    if (out_made) *out_made = 0;
    if (!w) return CAS_E_ARG;
    if (w->done) return CAS_DONE;
    r = cas_codec_update(w->codec, NULL, 0, &u, out, cap, &m, 1);
    if (out_made) *out_made = m;
    if (r == CAS_DONE) {
        int hr = cas_hasher_final(w->hasher, w->key);
        if (hr < 0) return hr;
        w->done = 1;
    }
    return r;
}

CASDEF int cas_writer_key(const cas_writer *w, char key[CAS_KEY_BUF]) {
    if (!w || !key) return CAS_E_ARG;
    if (!w->done) return CAS_E_STATE;
    memcpy(key, w->key, CAS_KEY_BUF);
    return CAS_OK;
}

CASDEF int cas_writer_meta(const cas_writer *w, char *buf, size_t cap, size_t *len) {
    if (!w) return CAS_E_ARG;
    return cas_meta_json(w->format, buf, cap, len);
}

CASDEF uint64_t cas_writer_size_in(const cas_writer *w) { return w ? cas_codec_total_in(w->codec) : 0; }
CASDEF uint64_t cas_writer_size_out(const cas_writer *w) { return w ? cas_codec_total_out(w->codec) : 0; }
CASDEF int cas_writer_format(const cas_writer *w) { return w ? w->format : 0; }

CASDEF size_t cas_pack_bound(int format, size_t n) { return cas_encode_bound(cas_format_codec(format), n); }

/* Below this, a thread costs more than the overlap saves. */
#define CAS__PARALLEL_MIN ((size_t)256 * 1024)

#ifndef CAS_NO_THREADS
typedef struct cas__hash_job {
    int algo;
    const void *data;
    size_t n;
    char key[CAS_KEY_BUF];
    int rc;
} cas__hash_job;

static void *cas__hash_thread(void *arg) {
    cas__hash_job *j = (cas__hash_job *)arg;
    j->rc = cas_hash(j->algo, j->data, j->n, j->key);
    return NULL;
}
#endif

CASDEF int cas_pack(cas_writer *w, const void *in, size_t n, void *out, size_t cap, size_t *blob_len,
                    char key[CAS_KEY_BUF]) {
    cas_writer *tmp = NULL;
    size_t len = 0;
    int r, hashed = 0;
    if (blob_len) *blob_len = 0;
    if ((!in && n) || !key) return CAS_E_ARG;
    key[0] = 0;
    if (!w) {
        if ((r = cas_writer_create(&tmp, CAS_FORMAT_V1, NULL)) < 0) return r;
        w = tmp;
    } else if ((r = cas_writer_reset(w, 0)) < 0) {
        return r;
    }
#ifndef CAS_NO_THREADS
    if (w->threads > 1 && n >= CAS__PARALLEL_MIN) {
        pthread_t th;
        cas__hash_job job;
        job.algo = w->hash_algo, job.data = in, job.n = n, job.rc = CAS_E_STATE;
        if (pthread_create(&th, NULL, cas__hash_thread, &job) == 0) {
            r = cas_codec_encode_all(w->codec, in, n, out, cap, &len);
            pthread_join(th, NULL);
            if (r == CAS_DONE && job.rc < 0) r = job.rc;
            memcpy(w->key, job.key, CAS_KEY_BUF);
            hashed = 1;
        }
    }
#endif
    if (!hashed) { /* the writer's own hasher: its context is already set up */
        r = cas_codec_encode_all(w->codec, in, n, out, cap, &len);
        if (r == CAS_DONE && (r = cas_hasher_update(w->hasher, in, n)) == CAS_OK) r = cas_hasher_final(w->hasher, w->key);
        if (r == CAS_OK) r = CAS_DONE;
    }
    if (r == CAS_DONE) {
        w->done = 1;
        memcpy(key, w->key, CAS_KEY_BUF);
        if (blob_len) *blob_len = len;
    } else if (r > 0) {
        r = CAS_NEED_OUTPUT; /* encode_all only stops short when out is too small */
    }
    cas_writer_free(tmp);
    return r;
}

/* ---- reader -------------------------------------------------------------- */

struct cas_reader {
    cas_allocator alloc;
    int format, codec_id;
    cas_codec *codecs[4]; /* by codec id, created on first use, reused */
    cas_hasher *hasher;
    int hash_algo, state; /* 0 idle, 1 sniffing, 2 decoding, 3 done, <0 failed */
    char key[CAS_KEY_BUF];
    uint64_t limit, total_in, total_out;
    int64_t expect_size;
    int strict, backend;
    unsigned char sniff[4];
    size_t sniff_len, sniff_fed;
    char *name;
    size_t name_cap;
    char msg[512];
    char reason[400]; /* msg without Metaflow's "Could not unpack artifact '...': " */
};

CASDEF int cas_reader_create(cas_reader **out, const cas_allocator *alloc) {
    cas_reader *r;
    if (!out) return CAS_E_ARG;
    r = (cas_reader *)cas__calloc(alloc, sizeof *r);
    *out = r;
    if (!r) return CAS_E_NOMEM;
    cas__copy_allocator(&r->alloc, alloc);
    r->expect_size = -1;
    return CAS_OK;
}

CASDEF void cas_reader_free(cas_reader *r) {
    cas_allocator a;
    int i;
    if (!r) return;
    for (i = 0; i < 4; i++) cas_codec_free(r->codecs[i]);
    cas_hasher_free(r->hasher);
    a = r->alloc;
    cas__free(&a, r->name);
    cas__free(&a, r);
}

CASDEF void cas_reader_free_buffer(cas_reader *r, void *p) {
    if (r) cas__free(&r->alloc, p);
}

CASDEF int cas_reader_set_param(cas_reader *r, int param, int64_t v) {
    if (!r) return CAS_E_ARG;
    switch (param) {
    case CAS_PARAM_LIMIT:
        if (v < 0) return CAS_E_ARG;
        r->limit = (uint64_t)v;
        return CAS_OK;
    case CAS_PARAM_EXPECT_SIZE:
        if (v < -1) return CAS_E_ARG;
        r->expect_size = v;
        return CAS_OK;
    case CAS_PARAM_STRICT: r->strict = v != 0; return CAS_OK;
    case CAS_PARAM_GZIP_BACKEND:
        if (v < CAS_BACKEND_AUTO || v > CAS_BACKEND_ISAL) return CAS_E_ARG;
#ifndef CAS_USE_ISAL
        if (v == CAS_BACKEND_ISAL) return CAS_E_UNSUPPORTED;
#endif
        r->backend = (int)v;
        return CAS_OK;
    default: return CAS_E_ARG;
    }
}

CASDEF const char *cas_reader_message(const cas_reader *r) { return r ? r->msg : ""; }
CASDEF const char *cas_reader_reason(const cas_reader *r) { return r ? (r->reason[0] ? r->reason : r->msg) : ""; }
CASDEF int cas_reader_format(const cas_reader *r) { return r ? r->format : 0; }
CASDEF uint64_t cas_reader_total_in(const cas_reader *r) { return r ? r->total_in : 0; }
CASDEF uint64_t cas_reader_total_out(const cas_reader *r) { return r ? r->total_out : 0; }

static const char *cas__rname(const cas_reader *r) { return r->name ? r->name : "(unnamed blob)"; }

/* Fails the reader with Metaflow's "Could not unpack artifact" wording. */
static int cas__rfail(cas_reader *r, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': %s", cas__rname(r), r->reason);
    r->state = code;
    return code;
}

CASDEF int cas_reader_begin(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key) {
    int rc, algo = 0;
    if (!r) return CAS_E_ARG;
    r->state = 0, r->format = 0, r->msg[0] = 0, r->reason[0] = 0;
    r->total_in = r->total_out = 0;
    r->sniff_len = r->sniff_fed = 0;
    r->key[0] = 0;
    if (name) {
        size_t l = strlen(name);
        if (l + 1 > r->name_cap) {
            cas__free(&r->alloc, r->name);
            r->name = (char *)cas__alloc(&r->alloc, l + 1);
            r->name_cap = r->name ? l + 1 : 0;
            if (!r->name) return r->state = CAS_E_NOMEM;
        }
        memcpy(r->name, name, l + 1);
    } else if (r->name) {
        cas__free(&r->alloc, r->name);
        r->name = NULL, r->name_cap = 0;
    }
    if (key) {
        if (cas_key_check(key, strlen(key), &algo) < 0) {
            cas__fmt(r->msg, sizeof r->msg, "Invalid key for '%s': not 40 or 32 lowercase hex digits",
                     cas__rname(r));
            return r->state = CAS_E_KEY;
        }
        if (!cas_hash_available(algo)) {
            cas__fmt(r->msg, sizeof r->msg, "Cannot verify '%s': its hash is not compiled in", cas__rname(r));
            return r->state = CAS_E_UNSUPPORTED;
        }
        memcpy(r->key, key, cas_key_length(algo) + 1);
        if (r->hasher && r->hash_algo != algo) {
            cas_hasher_free(r->hasher);
            r->hasher = NULL;
        }
        if (!r->hasher) {
            if ((rc = cas_hasher_create(&r->hasher, algo, &r->alloc)) < 0) return r->state = rc;
            r->hash_algo = algo;
        } else if ((rc = cas_hasher_reset(r->hasher)) < 0) {
            return r->state = rc;
        }
    }
    if (!meta) {
        r->format = CAS_FORMAT_LEGACY;
    } else if ((r->format = cas__meta_exact(meta, meta_len)) != 0) {
        /* byte for byte what Metaflow writes: no parse needed (small blobs pay for it) */
    } else {
        cas__json j;
        int64_t v = 0;
        size_t vt = 0;
        int fmt = 0;
        rc = meta_len > 65536 ? CAS_E_JSON : cas__json_parse(&j, meta, meta_len, &r->alloc);
        if (rc == CAS_E_NOMEM) {
            cas__json_free(&j);
            return r->state = rc;
        }
        if (rc < 0) {
            cas__fmt(r->msg, sizeof r->msg, "Could not extract encoding version for '%s': metadata is not valid JSON (%s)",
                     cas__rname(r), meta_len > 65536 ? "over 64 KiB" : j.err);
            cas__json_free(&j);
            return r->state = CAS_E_META;
        }
        rc = cas__meta_rules(&j, &fmt, &v, &vt);
        if (rc == CAS_E_VERSION_UNKNOWN) {
            /* print the version as the JSON has it: giant numbers stay exact */
            int len = (int)CAS__MIN(j.t[vt].end - j.t[vt].start, 64);
            cas__fmt(r->msg, sizeof r->msg,
                     "Unknown encoding version %.*s for '%s' -- the artifact is either corrupt or you need to update "
                     "Metaflow to the latest version",
                     len, j.s + j.t[vt].start, cas__rname(r));
        } else if (rc == CAS_E_VERSION_MISSING || rc == CAS_E_META) {
            cas__fmt(r->msg, sizeof r->msg, "Could not extract encoding version for '%s'", cas__rname(r));
        }
        cas__json_free(&j);
        if (rc < 0) return r->state = rc;
        r->format = fmt;
    }
    r->codec_id = cas_format_codec(r->format);
    if (!cas_codec_available(r->codec_id)) {
        cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': the %s codec is not compiled in",
                 cas__rname(r), cas_codec_name(r->codec_id));
        return r->state = CAS_E_UNSUPPORTED;
    }
    if (!r->codecs[r->codec_id]) {
        if ((rc = cas_decoder_create(&r->codecs[r->codec_id], r->codec_id, &r->alloc)) < 0) return r->state = rc;
    }
    if ((rc = cas_codec_reset(r->codecs[r->codec_id])) < 0) return r->state = rc;
    if ((rc = cas_codec_set_param(r->codecs[r->codec_id], CAS_PARAM_STRICT, r->strict)) < 0) return r->state = rc;
    if (r->codec_id == CAS_CODEC_GZIP &&
        (rc = cas_codec_set_param(r->codecs[r->codec_id], CAS_PARAM_GZIP_BACKEND, r->backend)) < 0)
        return r->state = rc;
    r->state = r->codec_id == CAS_CODEC_RAW ? 2 : 1;
    return CAS_OK;
}

/* Checks the first bytes against what the sidecar promised. 0 = decided and
 * consistent, 1 = need more bytes, < 0 = failed. */
static int cas__reader_decide(cas_reader *r, int end) {
    int s = cas_sniff(r->sniff, r->sniff_len);
    char rep[40];
    if (r->codec_id == CAS_CODEC_RAW) return 0;
    if (r->sniff_len < 4 && !end) return 1; /* decide on 4 bytes, as the one-shot path does */
    if (r->codec_id == CAS_CODEC_GZIP) {
        if (s == CAS_SNIFF_GZIP || s == CAS_SNIFF_EMPTY) return 0;
        /* Python's gzip reads a 2-byte magic and shows it: Not a gzipped file (b'ra') */
        cas_bytes_repr(r->sniff, CAS__MIN(r->sniff_len, 2), rep, sizeof rep);
        if (r->format == CAS_FORMAT_LEGACY) {
            if (s == CAS_SNIFF_LZ4 || s == CAS_SNIFF_ZSTD)
                return cas__rfail(r, CAS_E_MISMATCH,
                                  "no metadata, so legacy gzip was assumed, but the bytes are %s (a blob whose _meta "
                                  "sidecar was lost?)",
                                  cas_sniff_name(s));
            return cas__rfail(r, CAS_E_MISMATCH,
                              "Not a gzipped file (%s); no metadata, so legacy gzip was assumed, but the bytes are %s "
                              "(a raw blob whose _meta sidecar was lost?)",
                              rep, cas_sniff_name(s));
        }
        if (s == CAS_SNIFF_LZ4 || s == CAS_SNIFF_ZSTD)
            return cas__rfail(r, CAS_E_MISMATCH, "metadata says cas_version 1 (gzip) but the bytes are %s",
                              cas_sniff_name(s));
        return 0; /* the gzip decoder words it as Python does: Not a gzipped file (...) */
    }
    if (s == CAS_SNIFF_LZ4) return 0; /* what a v2 sidecar promised */
    cas_bytes_repr(r->sniff, r->sniff_len, rep, sizeof rep);
    if (s == CAS_SNIFF_EMPTY || s == CAS_SNIFF_SHORT)
        return cas__rfail(r, CAS_E_TRUNCATED, "LZ4 frame ended before the end-of-stream marker was reached");
    return cas__rfail(r, CAS_E_MISMATCH, "metadata says cas_version 2 (LZ4 frame) but the bytes are %s (%s)",
                      cas_sniff_name(s), rep);
}

static int cas__reader_done(cas_reader *r) {
    if (r->expect_size >= 0 && r->total_out != (uint64_t)r->expect_size)
        return cas__rfail(r, CAS_E_SIZE, "decoded to %llu bytes where %lld were recorded",
                          (unsigned long long)r->total_out, (long long)r->expect_size);
    if (r->key[0]) {
        char got[CAS_KEY_BUF];
        int rc = cas_hasher_final(r->hasher, got);
        if (rc < 0) return r->state = rc;
        if (strcmp(got, r->key))
            return cas__rfail(r, CAS_E_HASH, "content hashes to %s, not to its key %s", got, r->key);
    }
    r->state = 3;
    return CAS_DONE;
}

/* Runs the codec on in; applies the limit, the hash and the counters. */
static int cas__reader_run(cas_reader *r, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas_codec *c = r->codecs[r->codec_id];
    size_t room = cap;
    int rc;
    if (r->limit && (uint64_t)room > r->limit - r->total_out + 1) room = (size_t)(r->limit - r->total_out + 1);
    rc = cas_codec_update(c, in, n, used, out, room, made, end);
    r->total_in += *used;
    if (rc < 0) return cas__rfail(r, rc, "%s", cas_codec_message(c)[0] ? cas_codec_message(c) : cas_strerror(rc));
    if (r->limit && r->total_out + *made > r->limit) {
        *made = (size_t)(r->limit - r->total_out); /* report no byte past the limit */
        return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes",
                          (unsigned long long)r->limit);
    }
    r->total_out += *made;
    if (r->key[0] && *made) cas_hasher_update(r->hasher, out, *made);
    if (rc == CAS_NEED_OUTPUT && room < cap) rc = CAS_NEED_OUTPUT;
    return rc;
}

CASDEF int cas_reader_update(cas_reader *r, const void *in, size_t n, size_t *in_used, void *out, size_t cap,
                             size_t *out_made, int end) {
    const unsigned char *ip = (const unsigned char *)in;
    unsigned char *op = (unsigned char *)out;
    size_t i = 0, o = 0;
    int rc = CAS_NEED_INPUT;
    if (in_used) *in_used = 0;
    if (out_made) *out_made = 0;
    if (!r || (!in && n) || (!out && cap)) return CAS_E_ARG;
    if (r->state < 0) return r->state;
    if (r->state == 0) return CAS_E_STATE;
    if (r->state == 3) {
        if (n && r->strict) return cas__rfail(r, CAS_E_TRAILING, "unexpected bytes after the end of the blob");
        return CAS_DONE;
    }
    if (r->state == 1) { /* collect up to 4 bytes to compare with what the sidecar says */
        while (r->sniff_len < 4 && i < n) r->sniff[r->sniff_len++] = ip[i++];
        rc = cas__reader_decide(r, end && i == n);
        if (rc < 0) return rc;
        if (rc == 1) {
            if (in_used) *in_used = i;
            return CAS_NEED_INPUT;
        }
        r->state = 2;
    }
    if (r->sniff_fed < r->sniff_len) { /* replay the sniffed bytes to the decoder */
        size_t u = 0, m = 0;
        rc = cas__reader_run(r, r->sniff + r->sniff_fed, r->sniff_len - r->sniff_fed, &u, op, cap, &m,
                             end && i == n);
        r->sniff_fed += u, o += m;
        if (rc < 0) return rc;
        if (r->sniff_fed < r->sniff_len || rc == CAS_NEED_OUTPUT) {
            if (in_used) *in_used = i;
            if (out_made) *out_made = o;
            return rc == CAS_DONE ? cas__reader_done(r) : CAS_NEED_OUTPUT;
        }
    }
    if (rc != CAS_DONE) {
        size_t u = 0, m = 0;
        rc = cas__reader_run(r, ip + i, n - i, &u, op + o, cap - o, &m, end);
        i += u, o += m;
    }
    if (in_used) *in_used = i;
    if (out_made) *out_made = o;
    if (rc == CAS_DONE) {
        if (i < n && r->strict) return cas__rfail(r, CAS_E_TRAILING, "unexpected bytes after the end of the blob");
        return cas__reader_done(r);
    }
    return rc;
}

CASDEF int cas_reader_size_hint(cas_reader *r, const void *blob, size_t n, uint64_t *size) {
    if (!r || !size) return CAS_E_ARG;
    if (r->state <= 0) return r->state < 0 ? r->state : CAS_E_STATE;
    return cas_decoded_size_hint(r->codec_id, blob, n, size);
}

CASDEF int cas_reader_unpack_into(cas_reader *r, const void *blob, size_t n, void *dst, size_t cap,
                                  size_t *out_len) {
    const unsigned char *ip = (const unsigned char *)blob;
    size_t len = 0, room = cap;
    int rc;
    if (out_len) *out_len = 0;
    if (!r || (!blob && n) || (!dst && cap)) return CAS_E_ARG;
    if (r->state < 0) return r->state;
    if (r->state != 1 && r->state != 2) return CAS_E_STATE;
    if (r->state == 1) { /* the whole blob is here: decide on its first bytes at once */
        r->sniff_len = CAS__MIN(n, 4);
        if (n) memcpy(r->sniff, ip, r->sniff_len);
        r->sniff_fed = r->sniff_len; /* the decoder gets them from blob itself */
        if ((rc = cas__reader_decide(r, 1)) < 0) return rc;
        r->state = 2;
    }
    if (r->limit && (uint64_t)room > r->limit + 1) room = (size_t)(r->limit + 1);
    rc = cas_codec_decode_all(r->codecs[r->codec_id], ip, n, dst, room, &len);
    r->total_in = n;
    if (rc < 0) {
        const char *m = cas_codec_message(r->codecs[r->codec_id]);
        return cas__rfail(r, rc, "%s", m[0] ? m : cas_strerror(rc));
    }
    if (r->limit && (uint64_t)len > r->limit)
        return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes", (unsigned long long)r->limit);
    if (rc != CAS_DONE) {
        if (room < cap) /* output stopped at the limit, not at the buffer's end */
            return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes",
                              (unsigned long long)r->limit);
        /* may be retried with a bigger buffer */
        r->state = r->codec_id == CAS_CODEC_RAW ? 2 : 1, r->sniff_len = r->sniff_fed = 0;
        r->total_in = 0;
        cas_codec_reset(r->codecs[r->codec_id]);
        return CAS_NEED_OUTPUT;
    }
    r->total_out = len;
    if (r->key[0] && len) cas_hasher_update(r->hasher, dst, len);
    if (out_len) *out_len = len;
    return cas__reader_done(r);
}

CASDEF int cas_reader_decode(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key,
                             const void *blob, size_t n, void *dst, size_t cap, size_t *out_len) {
    uint64_t hint = 0;
    int rc;
    if (out_len) *out_len = 0;
    if ((rc = cas_reader_begin(r, meta, meta_len, name, key)) < 0) return rc;
    rc = cas_reader_unpack_into(r, blob, n, dst, cap, out_len);
    if (rc == CAS_NEED_OUTPUT && out_len) {
        if (r->codec_id == CAS_CODEC_RAW) *out_len = n;
        else if (cas_decoded_size_hint(r->codec_id, blob, n, &hint) == CAS_OK && hint <= (uint64_t)(size_t)-1)
            *out_len = (size_t)hint;
    }
    return rc;
}

/* A big output buffer from malloc is faulted in 4 KiB at a time: asking for
 * huge pages halves the cost of decoding 64 MiB into fresh memory. */
static void cas__hint_huge(void *p, size_t n) {
#if defined(__linux__) && !defined(CAS_NO_STORE) && defined(MADV_HUGEPAGE)
    uintptr_t a = ((uintptr_t)p + ((uintptr_t)2 << 20) - 1) & ~(((uintptr_t)2 << 20) - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(((uintptr_t)2 << 20) - 1);
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#else
    (void)p, (void)n;
#endif
}

CASDEF int cas_reader_unpack(cas_reader *r, const void *blob, size_t n, void **out, size_t *out_len) {
    uint64_t hint = 0;
    size_t cap;
    int rc, codec;
    /* the most one input byte can become: LZ4 ~255x, deflate ~1032x */
    uint64_t ratio;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!r || !out || (!blob && n)) return CAS_E_ARG;
    if (r->state < 0) return r->state;
    if (r->state != 1 && r->state != 2) return CAS_E_STATE;
    codec = r->codec_id;
    ratio = codec == CAS_CODEC_LZ4 ? 256 : codec == CAS_CODEC_GZIP ? 1040 : 1;
    if (cas_decoded_size_hint(codec, blob, n, &hint) == CAS_OK) {
        if (codec == CAS_CODEC_LZ4 && hint > (uint64_t)n * ratio + 65536 &&
            cas_sniff(blob, n) == CAS_SNIFF_LZ4)
            return cas__rfail(r, CAS_E_CORRUPT,
                              "LZ4 frame's content size field (%llu bytes) is more than %lu bytes of frame can hold",
                              (unsigned long long)hint, (unsigned long)n);
        if (hint > (uint64_t)n * ratio + 65536) hint = 0; /* a gzip length field can only be a hint */
    } else {
        hint = 0;
    }
    if (r->limit && hint > r->limit) {
        if (codec == CAS_CODEC_LZ4 && cas_sniff(blob, n) == CAS_SNIFF_LZ4)
            return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes",
                              (unsigned long long)r->limit);
        hint = r->limit;
    }
    cap = hint ? (size_t)hint : CAS__MIN((size_t)n * 4 + 4096, (size_t)64 << 20);
    if (r->limit && cap > r->limit + 1) cap = (size_t)r->limit + 1;
    for (;;) {
        void *buf = cas__alloc(&r->alloc, cap);
        size_t len = 0;
        if (buf && !r->alloc.alloc && cap >= ((size_t)4 << 20)) cas__hint_huge(buf, cap);
        if (!buf) {
            cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': out of memory (%llu bytes)",
                     cas__rname(r), (unsigned long long)cap);
            return r->state = CAS_E_NOMEM;
        }
        rc = cas_reader_unpack_into(r, blob, n, buf, cap, &len);
        if (rc == CAS_NEED_OUTPUT) {
            size_t next = cap < ((size_t)1 << 20) ? ((size_t)1 << 20) : cap * 2;
            cas__free(&r->alloc, buf);
            if (next < cap) return cas__rfail(r, CAS_E_NOMEM, "decoded size overflows memory");
            if (r->limit && next > r->limit + 1) next = (size_t)r->limit + 1;
            if (next == cap) return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit");
            cap = next;
            continue;
        }
        if (rc < 0) {
            cas__free(&r->alloc, buf);
            return rc;
        }
        *out = buf;
        if (out_len) *out_len = len;
        return rc;
    }
}

/* ---- the store ----------------------------------------------------------- */
#ifndef CAS_NO_STORE
#ifdef __cplusplus
}
#endif
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifdef __cplusplus
extern "C" {
#endif

/* The store's I/O goes through these, so tests can inject failures. */
#ifndef CAS_SYS_WRITE
#define CAS_SYS_WRITE(fd, p, n) write(fd, p, n)
#endif
#ifndef CAS_SYS_RENAMEAT
#define CAS_SYS_RENAMEAT(ofd, old, nfd, nw) renameat(ofd, old, nfd, nw)
#endif
#ifndef CAS_SYS_FSYNC
#define CAS_SYS_FSYNC(fd) fsync(fd)
#endif
#ifndef CAS_SYS_READ
#define CAS_SYS_READ(fd, p, n) read(fd, p, n)
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#define CAS__DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define CAS__POOL 8
#define CAS__TMP_TAG ".cas-tmp-"
#define CAS__IO_CHUNK ((size_t)1 << 20)
#define CAS__STREAM_WINDOW ((size_t)64 << 10)
#define CAS__JSON_FILE_MAX ((size_t)256 << 20)

struct cas_store {
    cas_allocator alloc;
    int rootfd;
    char *root;
    int format, fsync_on, verify, strict, backend, level, lz4_block, hash;
    uint64_t limit;
    unsigned long seq;
#ifndef CAS_NO_THREADS
    pthread_mutex_t mu;
#endif
    cas_writer *wpool[CAS__POOL];
    cas_reader *rpool[CAS__POOL];
    int nw, nr;
};

static int cas__serr(char *err, size_t cap, int code, const char *fmt, ...) {
    va_list ap;
    if (err && cap) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void cas__lock(cas_store *s) {
#ifndef CAS_NO_THREADS
    pthread_mutex_lock(&s->mu);
#else
    (void)s;
#endif
}
static void cas__unlock(cas_store *s) {
#ifndef CAS_NO_THREADS
    pthread_mutex_unlock(&s->mu);
#else
    (void)s;
#endif
}

CASDEF int cas_name_check(const char *name) {
    size_t i;
    if (!name || !name[0] || name[0] == '.') return CAS_E_NAME;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        if (i >= 255) return CAS_E_NAME;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return CAS_E_NAME;
    }
    return CAS_OK;
}

/* Splits "a/b/c/d" into `want` valid parts of at most 255 bytes. */
static int cas__split(const char *spec, char parts[][256], int want) {
    int k = 0;
    const char *p = spec;
    if (!spec) return CAS_E_NAME;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (k == want || l == 0 || l > 255) return CAS_E_NAME;
        memcpy(parts[k], p, l), parts[k][l] = 0;
        if (cas_name_check(parts[k]) < 0) return CAS_E_NAME;
        k++;
        if (!e) break;
        p = e + 1;
    }
    return k == want ? CAS_OK : CAS_E_NAME;
}

CASDEF int cas_pathspec_check(const char *pathspec) {
    char parts[4][256];
    return cas__split(pathspec, parts, 4);
}

static int cas__key_ok(const char *key) { return key && cas_key_check(key, strlen(key), NULL) == CAS_OK; }

CASDEF int cas_store_blob_name(const char *flow, const char *key, char *buf, size_t cap) {
    int n;
    if (cas_name_check(flow) < 0) return CAS_E_NAME;
    if (!cas__key_ok(key)) return CAS_E_KEY;
    n = snprintf(buf, cap, "%s/data/%.2s/%s", flow, key, key);
    return n < 0 || (size_t)n >= cap ? CAS_NEED_OUTPUT : CAS_OK;
}

/* Opens a directory below parent, never through a symlink; creates it on demand. */
static int cas__open_dir(int parent, const char *name, int create) {
    int fd = openat(parent, name, CAS__DIR_FLAGS);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(parent, name, 0777) < 0 && errno != EEXIST) return -1;
        fd = openat(parent, name, CAS__DIR_FLAGS);
    }
    return fd;
}

static const char *cas__errno_text(int e) {
    if (e == ELOOP || e == ENOTDIR) return "a symlink or non-directory inside the store (not followed)";
    return strerror(e);
}

/* Opens <root>/<flow>/data and, with key, data/<ab>. */
static int cas__dirs(cas_store *s, const char *flow, const char *key, int create, int *datafd, int *abfd) {
    int f, d, a;
    char ab[3];
    *datafd = *abfd = -1;
    if ((f = cas__open_dir(s->rootfd, flow, create)) < 0) return -1;
    d = cas__open_dir(f, "data", create);
    close(f);
    if (d < 0) return -1;
    *datafd = d;
    if (!key) return 0;
    ab[0] = key[0], ab[1] = key[1], ab[2] = 0;
    if ((a = cas__open_dir(d, ab, create)) < 0) {
        int e = errno;
        close(d);
        *datafd = -1;
        errno = e;
        return -1;
    }
    *abfd = a;
    return 0;
}

static void cas__close2(int a, int b) {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
}

/* flock on a directory: the commit of a blob and its sidecar happens under it, and
 * readers open both under a shared lock, so a reader never pairs a sidecar with
 * the other format's bytes. Where flock is unsupported, best effort without. */
static void cas__flock(int fd, int op) {
    while (flock(fd, op) < 0 && errno == EINTR) {
    }
}

static int cas__write_all(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n) {
        ssize_t w = CAS_SYS_WRITE(fd, c, CAS__MIN(n, CAS__CHUNK_MAX));
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (w == 0) return ENOSPC;
        c += w, n -= (size_t)w;
    }
    return 0;
}

/* Reads a whole file; max bounds it (0 = none). Returns 0 or an errno; EFBIG when over max. */
static int cas__read_all(int fd, const cas_allocator *a, size_t max, unsigned char **out, size_t *len) {
    struct stat st;
    size_t cap, n = 0;
    unsigned char *buf;
    *out = NULL, *len = 0;
    if (fstat(fd, &st) < 0) return errno;
    if (st.st_size < 0 || (max && (uint64_t)st.st_size > max)) return EFBIG;
    if ((uint64_t)st.st_size >= (uint64_t)((size_t)-1) / 2) return EFBIG;
    cap = (size_t)st.st_size + 1; /* +1 sees EOF without a second allocation */
    buf = (unsigned char *)cas__alloc(a, cap);
    if (!buf) return ENOMEM;
    for (;;) {
        ssize_t r;
        if (n == cap) { /* the file grew while we read it */
            size_t nc = cap * 2;
            unsigned char *nb;
            if (max && cap > max) {
                cas__free(a, buf);
                return EFBIG;
            }
            nb = (unsigned char *)cas__alloc(a, nc);
            if (!nb) {
                cas__free(a, buf);
                return ENOMEM;
            }
            memcpy(nb, buf, n);
            cas__free(a, buf);
            buf = nb, cap = nc;
        }
        r = CAS_SYS_READ(fd, buf + n, CAS__MIN(cap - n, CAS__CHUNK_MAX));
        if (r < 0) {
            int e = errno;
            if (e == EINTR) continue;
            cas__free(a, buf);
            return e ? e : EIO;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (max && n > max) {
        cas__free(a, buf);
        return EFBIG;
    }
    *out = buf, *len = n;
    return 0;
}

/* ---- store lifetime and pools ---- */

CASDEF int cas_store_open(cas_store **out, const char *root, const cas_allocator *alloc, char *err, size_t errcap) {
    cas_store *s;
    size_t l;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!root || !root[0]) return cas__serr(err, errcap, CAS_E_ARG, "no datastore root given");
    s = (cas_store *)cas__calloc(alloc, sizeof *s);
    if (!s) return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    cas__copy_allocator(&s->alloc, alloc);
    l = strlen(root);
    s->root = (char *)cas__alloc(&s->alloc, l + 1);
    if (!s->root) {
        cas__free(&s->alloc, s);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    memcpy(s->root, root, l + 1);
    /* the root itself may be a symlink (a user's choice); nothing below it is followed */
    s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->rootfd < 0) {
        int e = errno;
        cas__free(&s->alloc, s->root);
        cas__free(&s->alloc, s);
        return cas__serr(err, errcap, e == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO,
                         "Cannot open the datastore root '%s': %s", root, strerror(e));
    }
    s->format = CAS_FORMAT_V1, s->hash = CAS_HASH_DEFAULT, s->lz4_block = -1, s->level = 0;
    s->backend = CAS_BACKEND_AUTO;
#ifndef CAS_NO_THREADS
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        close(s->rootfd);
        cas__free(&s->alloc, s->root);
        cas__free(&s->alloc, s);
        return cas__serr(err, errcap, CAS_E_NOMEM, "cannot create a mutex");
    }
#endif
    *out = s;
    return CAS_OK;
}

static void cas__pool_flush(cas_store *s) {
    while (s->nw) cas_writer_free(s->wpool[--s->nw]);
    while (s->nr) cas_reader_free(s->rpool[--s->nr]);
}

CASDEF void cas_store_close(cas_store *s) {
    cas_allocator a;
    if (!s) return;
    cas__pool_flush(s);
    close(s->rootfd);
#ifndef CAS_NO_THREADS
    pthread_mutex_destroy(&s->mu);
#endif
    a = s->alloc;
    cas__free(&a, s->root);
    cas__free(&a, s);
}

CASDEF const char *cas_store_root(const cas_store *s) { return s ? s->root : ""; }

CASDEF int cas_store_set_param(cas_store *s, int param, int64_t v) {
    if (!s) return CAS_E_ARG;
    switch (param) {
    case CAS_PARAM_FORMAT:
        if (v != CAS_FORMAT_V1 && v != CAS_FORMAT_V2 && v != CAS_FORMAT_RAW) return CAS_E_ARG;
        if (!cas_codec_available(cas_format_codec((int)v))) return CAS_E_UNSUPPORTED;
        s->format = (int)v;
        break;
    case CAS_PARAM_FSYNC: s->fsync_on = v != 0; break;
    case CAS_PARAM_VERIFY: s->verify = v != 0; break;
    case CAS_PARAM_STRICT: s->strict = v != 0; break;
    case CAS_PARAM_LIMIT:
        if (v < 0) return CAS_E_ARG;
        s->limit = (uint64_t)v;
        break;
    case CAS_PARAM_LEVEL:
        if (v < 0 || v > 12) return CAS_E_ARG;
        s->level = (int)v;
        break;
    case CAS_PARAM_LZ4_BLOCK:
        if (v < 4 || v > 7) return CAS_E_ARG;
        s->lz4_block = (int)v;
        break;
    case CAS_PARAM_GZIP_BACKEND:
        if (v < CAS_BACKEND_AUTO || v > CAS_BACKEND_ISAL) return CAS_E_ARG;
#ifndef CAS_USE_ISAL
        if (v == CAS_BACKEND_ISAL) return CAS_E_UNSUPPORTED;
#endif
        s->backend = (int)v;
        break;
    case CAS_PARAM_HASH:
        if (!cas_key_length((int)v)) return CAS_E_ARG;
        if (!cas_hash_available((int)v)) return CAS_E_UNSUPPORTED;
        s->hash = (int)v;
        break;
    default: return CAS_E_ARG;
    }
    cas__lock(s);
    cas__pool_flush(s); /* pooled objects carry the old settings */
    cas__unlock(s);
    return CAS_OK;
}

static int cas__get_writer(cas_store *s, int format, cas_writer **out) {
    cas_writer *w = NULL;
    int r;
    cas__lock(s);
    if (s->nw) w = s->wpool[--s->nw];
    cas__unlock(s);
    if (!w) {
        if ((r = cas_writer_create(&w, format, &s->alloc)) < 0) return r;
        r = cas_writer_set_param(w, CAS_PARAM_HASH, s->hash);
        if (r >= 0 && s->level) r = cas_writer_set_param(w, CAS_PARAM_LEVEL, s->level);
        if (r >= 0 && s->lz4_block > 0) r = cas_writer_set_param(w, CAS_PARAM_LZ4_BLOCK, s->lz4_block);
        if (r >= 0) r = cas_writer_set_param(w, CAS_PARAM_GZIP_BACKEND, s->backend);
        if (r < 0) {
            cas_writer_free(w);
            return r;
        }
    }
    if ((r = cas_writer_reset(w, format)) < 0) {
        cas_writer_free(w);
        return r;
    }
    *out = w;
    return CAS_OK;
}

static void cas__put_writer(cas_store *s, cas_writer *w) {
    cas__lock(s);
    if (s->nw < CAS__POOL) s->wpool[s->nw++] = w, w = NULL;
    cas__unlock(s);
    cas_writer_free(w);
}

static int cas__get_reader(cas_store *s, cas_reader **out) {
    cas_reader *r = NULL;
    int rc;
    cas__lock(s);
    if (s->nr) r = s->rpool[--s->nr];
    cas__unlock(s);
    if (!r) {
        if ((rc = cas_reader_create(&r, &s->alloc)) < 0) return rc;
        cas_reader_set_param(r, CAS_PARAM_LIMIT, (int64_t)s->limit);
        cas_reader_set_param(r, CAS_PARAM_STRICT, s->strict);
        cas_reader_set_param(r, CAS_PARAM_GZIP_BACKEND, s->backend);
    }
    cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, -1);
    *out = r;
    return CAS_OK;
}

static void cas__put_reader(cas_store *s, cas_reader *r) {
    cas__lock(s);
    if (s->nr < CAS__POOL) s->rpool[s->nr++] = r, r = NULL;
    cas__unlock(s);
    cas_reader_free(r);
}

CASDEF void cas_store_free_buffer(cas_store *s, void *p) {
    if (s) cas__free(&s->alloc, p);
}

/* ---- writing: temp files, then an atomic commit ---- */

/* Creates an exclusive temp file in dirfd; its name goes into name. */
static int cas__tmp_open(cas_store *s, int dirfd, const char *base, char *name, size_t cap) {
    int tries;
    for (tries = 0; tries < 100; tries++) {
        unsigned long seq;
        struct timespec ts;
        int fd;
        cas__lock(s);
        seq = ++s->seq;
        cas__unlock(s);
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(name, cap, ".%s%s%ld-%lu-%lx", base, CAS__TMP_TAG, (long)getpid(), seq,
                 (unsigned long)ts.tv_nsec ^ (unsigned long)(uintptr_t)name);
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* Writes bytes into a new temp file; closes it. 0 or an errno (the file is removed). */
static int cas__tmp_write(cas_store *s, int dirfd, const char *base, const void *p, size_t n, char *name,
                          size_t cap) {
    int fd = cas__tmp_open(s, dirfd, base, name, cap), e;
    if (fd < 0) return errno;
    e = cas__write_all(fd, p, n);
    if (!e && s->fsync_on && CAS_SYS_FSYNC(fd) < 0) e = errno ? errno : EIO;
    if (close(fd) < 0 && !e) e = errno ? errno : EIO;
    if (e) unlinkat(dirfd, name, 0);
    return e;
}

/* Sidecar first, then the blob, under the directory lock; an existing blob wins. */
static int cas__commit(cas_store *s, int datafd, int abfd, const char *key, const char *tmp_blob,
                       const char *tmp_meta, int *stored, const char *bname, char *err, size_t errcap) {
    struct stat st;
    char meta_name[CAS_KEY_BUF + 8];
    int e = 0, rc = CAS_OK;
    snprintf(meta_name, sizeof meta_name, "%s_meta", key);
    cas__flock(abfd, LOCK_EX);
    if (fstatat(abfd, key, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        *stored = 0;
    } else if (CAS_SYS_RENAMEAT(datafd, tmp_meta, abfd, meta_name) < 0) {
        e = errno ? errno : EIO;
    } else if (CAS_SYS_RENAMEAT(datafd, tmp_blob, abfd, key) < 0) {
        e = errno ? errno : EIO;
        unlinkat(abfd, meta_name, 0); /* no blob: take its sidecar back */
    } else {
        *stored = 1;
    }
    cas__flock(abfd, LOCK_UN);
    unlinkat(datafd, tmp_meta, 0);
    unlinkat(datafd, tmp_blob, 0);
    if (e) rc = cas__serr(err, errcap, CAS_E_IO, "Could not store artifact '%s': %s", bname, strerror(e));
    else if (*stored && s->fsync_on && CAS_SYS_FSYNC(abfd) < 0)
        rc = cas__serr(err, errcap, CAS_E_IO, "Could not store artifact '%s': fsync: %s", bname, strerror(errno));
    return rc;
}

/* Writes blob + sidecar temps into data/ and commits them. */
static int cas__store_blob(cas_store *s, const char *flow, const char *key, int format, const void *blob,
                           size_t n, int *stored, char *err, size_t errcap) {
    char bname[512], tb[128], tm[128], meta[CAS_META_MAX];
    size_t ml = 0;
    int datafd, abfd, e, rc;
    cas_store_blob_name(flow, key, bname, sizeof bname);
    if (cas__dirs(s, flow, key, 1, &datafd, &abfd) < 0)
        return cas__serr(err, errcap, CAS_E_IO, "Could not store artifact '%s': %s", bname, cas__errno_text(errno));
    cas_meta_json(format, meta, sizeof meta, &ml);
    e = cas__tmp_write(s, datafd, key, blob, n, tb, sizeof tb);
    if (!e) {
        char mbase[CAS_KEY_BUF + 8];
        snprintf(mbase, sizeof mbase, "%s_meta", key);
        e = cas__tmp_write(s, datafd, mbase, meta, ml, tm, sizeof tm);
        if (e) unlinkat(datafd, tb, 0);
    }
    if (e) rc = cas__serr(err, errcap, CAS_E_IO, "Could not store artifact '%s': %s", bname, strerror(e));
    else rc = cas__commit(s, datafd, abfd, key, tb, tm, stored, bname, err, errcap);
    cas__close2(datafd, abfd);
    return rc;
}

static int cas__blob_exists(cas_store *s, const char *flow, const char *key) {
    int datafd, abfd, ok;
    struct stat st;
    if (cas__dirs(s, flow, key, 0, &datafd, &abfd) < 0) return 0;
    ok = fstatat(abfd, key, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    cas__close2(datafd, abfd);
    return ok;
}

CASDEF int cas_store_exists(cas_store *s, const char *flow, const char *key) {
    if (!s) return CAS_E_ARG;
    if (cas_name_check(flow) < 0) return CAS_E_NAME;
    if (!cas__key_ok(key)) return CAS_E_KEY;
    return cas__blob_exists(s, flow, key);
}

/* threads: 2 lets a large blob hash on a second thread while it compresses;
 * batch workers pass 1 so that N workers use N cores, not 2N threads. */
static int cas__store_put(cas_store *s, const char *flow, const void *data, size_t n, int format,
                          char key[CAS_KEY_BUF], int *stored, char *err, size_t errcap, int threads) {
    cas_writer *w;
    unsigned char *blob = NULL;
    size_t blen = 0, cap;
    int rc, dummy, parallel;
    if (!stored) stored = &dummy;
    *stored = 0;
    if (!s || !key || (!data && n)) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    key[0] = 0;
    if (cas_name_check(flow) < 0) return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!format) format = s->format;
    if (format != CAS_FORMAT_V1 && format != CAS_FORMAT_V2 && format != CAS_FORMAT_RAW)
        return cas__serr(err, errcap, CAS_E_ARG, "invalid format %d", format);
    parallel = threads > 1 && n >= CAS__PARALLEL_MIN && format != CAS_FORMAT_RAW;
    if (!parallel) { /* hash first: what is already stored costs no compression */
        if ((rc = cas_hash(s->hash, data, n, key)) < 0) return cas__serr(err, errcap, rc, "hashing failed");
        if (cas__blob_exists(s, flow, key)) return CAS_OK;
        if (format == CAS_FORMAT_RAW) return cas__store_blob(s, flow, key, format, data, n, stored, err, errcap);
    }
    if ((rc = cas__get_writer(s, format, &w)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    cap = cas_pack_bound(format, n);
    blob = (unsigned char *)cas__alloc(&s->alloc, cap);
    if (!blob) {
        cas__put_writer(s, w);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory (%lu bytes)", (unsigned long)cap);
    }
    if (parallel) rc = cas_pack(w, data, n, blob, cap, &blen, key); /* key and blob at once */
    else rc = cas_codec_encode_all(w->codec, data, n, blob, cap, &blen);
    cas__put_writer(s, w);
    if (rc < 0) {
        cas__free(&s->alloc, blob);
        return cas__serr(err, errcap, rc, "Could not pack artifact: %s", cas_strerror(rc));
    }
    if (parallel && cas__blob_exists(s, flow, key)) rc = CAS_OK;
    else rc = cas__store_blob(s, flow, key, format, blob, blen, stored, err, errcap);
    cas__free(&s->alloc, blob);
    return rc;
}

CASDEF int cas_store_put(cas_store *s, const char *flow, const void *data, size_t n, int format,
                         char key[CAS_KEY_BUF], int *stored, char *err, size_t errcap) {
    return cas__store_put(s, flow, data, n, format, key, stored, err, errcap, 2);
}

CASDEF int cas_store_put_fd(cas_store *s, const char *flow, int fd, int format, char key[CAS_KEY_BUF],
                            int *stored, char *err, size_t errcap) {
    cas_writer *w = NULL;
    unsigned char *ibuf = NULL, *obuf = NULL;
    char tb[128], tm[128], bname[512], meta[CAS_META_MAX];
    int datafd = -1, abfd = -1, tfd = -1, rc = CAS_OK, e = 0, eof = 0, dummy;
    size_t ml = 0;
    if (!stored) stored = &dummy;
    *stored = 0;
    tb[0] = tm[0] = 0;
    if (!s || !key || fd < 0) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    key[0] = 0;
    if (cas_name_check(flow) < 0) return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!format) format = s->format;
    if ((rc = cas__get_writer(s, format, &w)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    ibuf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
    obuf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
    if (!ibuf || !obuf) {
        rc = cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
        goto out;
    }
    if (cas__dirs(s, flow, NULL, 1, &datafd, &abfd) < 0) {
        rc = cas__serr(err, errcap, CAS_E_IO, "Could not store into flow '%s': %s", flow, cas__errno_text(errno));
        goto out;
    }
    if ((tfd = cas__tmp_open(s, datafd, "stream", tb, sizeof tb)) < 0) {
        rc = cas__serr(err, errcap, CAS_E_IO, "Could not create a temp file in '%s/data': %s", flow, strerror(errno));
        tb[0] = 0;
        goto out;
    }
    while (!eof) {
        ssize_t got = CAS_SYS_READ(fd, ibuf, CAS__IO_CHUNK);
        size_t off = 0;
        if (got < 0) {
            if (errno == EINTR) continue;
            rc = cas__serr(err, errcap, CAS_E_IO, "Could not read the input: %s", strerror(errno));
            goto out;
        }
        if (got == 0) eof = 1;
        for (;;) { /* drain this chunk (or, at EOF, the tail) through the writer */
            size_t u = 0, m = 0;
            rc = eof ? cas_writer_finish(w, obuf, CAS__IO_CHUNK, &m)
                     : cas_writer_update(w, ibuf + off, (size_t)got - off, &u, obuf, CAS__IO_CHUNK, &m);
            off += u;
            if (rc < 0) {
                rc = cas__serr(err, errcap, rc, "Could not pack the input: %s", cas_strerror(rc));
                goto out;
            }
            if (m && (e = cas__write_all(tfd, obuf, m)) != 0) {
                rc = cas__serr(err, errcap, CAS_E_IO, "Could not write a temp file in '%s/data': %s", flow,
                               strerror(e));
                goto out;
            }
            if (rc == CAS_DONE || (!eof && rc == CAS_NEED_INPUT)) break;
        }
    }
    rc = CAS_OK;
    if (s->fsync_on && CAS_SYS_FSYNC(tfd) < 0) e = errno ? errno : EIO;
    if (close(tfd) < 0 && !e) e = errno ? errno : EIO;
    tfd = -1;
    cas_writer_key(w, key);
    cas_store_blob_name(flow, key, bname, sizeof bname);
    if (e) {
        rc = cas__serr(err, errcap, CAS_E_IO, "Could not store artifact '%s': %s", bname, strerror(e));
        goto out;
    }
    if (cas__blob_exists(s, flow, key)) goto out; /* dedup: the temp goes */
    {
        char ab[3], mbase[CAS_KEY_BUF + 8];
        ab[0] = key[0], ab[1] = key[1], ab[2] = 0;
        if ((abfd = cas__open_dir(datafd, ab, 1)) < 0) {
            rc = cas__serr(err, errcap, CAS_E_IO, "Could not store artifact '%s': %s", bname,
                           cas__errno_text(errno));
            goto out;
        }
        cas_meta_json(format, meta, sizeof meta, &ml);
        snprintf(mbase, sizeof mbase, "%s_meta", key);
        if ((e = cas__tmp_write(s, datafd, mbase, meta, ml, tm, sizeof tm)) != 0) {
            tm[0] = 0;
            rc = cas__serr(err, errcap, CAS_E_IO, "Could not store artifact '%s': %s", bname, strerror(e));
            goto out;
        }
        rc = cas__commit(s, datafd, abfd, key, tb, tm, stored, bname, err, errcap);
        tb[0] = tm[0] = 0;
    }
out:
    if (tfd >= 0) close(tfd);
    if (datafd >= 0 && tb[0]) unlinkat(datafd, tb, 0);
    if (datafd >= 0 && tm[0]) unlinkat(datafd, tm, 0);
    cas__close2(datafd, abfd);
    cas__free(&s->alloc, ibuf);
    cas__free(&s->alloc, obuf);
    if (w) cas__put_writer(s, w);
    return rc;
}

/* ---- reading ---- */

/* Opens a blob and reads its sidecar, both under the directory's shared lock.
 * *meta is NULL when there is no sidecar. */
static int cas__open_blob(cas_store *s, const char *flow, const char *key, int *blobfd, unsigned char **meta,
                          size_t *meta_len, const char *bname, char *err, size_t errcap) {
    int datafd, abfd, fd, mfd, e;
    char meta_name[CAS_KEY_BUF + 8];
    *blobfd = -1, *meta = NULL, *meta_len = 0;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_name_check(flow) < 0) return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!cas__key_ok(key)) return cas__serr(err, errcap, CAS_E_KEY, "Invalid key '%.100s'", key ? key : "");
    if (cas__dirs(s, flow, key, 0, &datafd, &abfd) < 0) {
        e = errno;
        if (e == ENOENT) return cas__serr(err, errcap, CAS_E_NOTFOUND, "No blob '%s' in '%s'", bname, s->root);
        return cas__serr(err, errcap, CAS_E_IO, "Cannot open '%s': %s", bname, cas__errno_text(e));
    }
    snprintf(meta_name, sizeof meta_name, "%s_meta", key);
    cas__flock(abfd, LOCK_SH);
    fd = openat(abfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    e = errno;
    mfd = fd >= 0 ? openat(abfd, meta_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (fd >= 0 && mfd < 0 && errno != ENOENT) {
        e = errno;
        close(fd);
        fd = -1;
    }
    if (mfd >= 0) {
        e = cas__read_all(mfd, &s->alloc, 65536, meta, meta_len);
        close(mfd);
        if (e) {
            close(fd);
            fd = -1;
        }
    }
    cas__flock(abfd, LOCK_UN);
    cas__close2(datafd, abfd);
    if (fd < 0) {
        cas__free(&s->alloc, *meta);
        *meta = NULL;
        if (e == ENOENT) return cas__serr(err, errcap, CAS_E_NOTFOUND, "No blob '%s' in '%s'", bname, s->root);
        return cas__serr(err, errcap, e == ENOMEM ? CAS_E_NOMEM : CAS_E_IO, "Cannot open '%s': %s", bname,
                         e == EFBIG ? "its _meta sidecar is over 64 KiB" : cas__errno_text(e));
    }
    *blobfd = fd;
    return CAS_OK;
}

CASDEF int cas_store_get(cas_store *s, const char *flow, const char *key, void **out, size_t *len, char *err,
                         size_t errcap) {
    unsigned char *meta = NULL, *blob = NULL;
    size_t ml = 0, bl = 0;
    char bname[512];
    cas_reader *r = NULL;
    int fd, rc, e;
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, &fd, &meta, &ml, bname, err, errcap)) < 0) return rc;
    e = cas__read_all(fd, &s->alloc, 0, &blob, &bl);
    close(fd);
    if (e) {
        cas__free(&s->alloc, meta);
        return cas__serr(err, errcap, e == ENOMEM ? CAS_E_NOMEM : CAS_E_IO, "Cannot read '%s': %s", bname,
                         strerror(e));
    }
    if ((rc = cas__get_reader(s, &r)) < 0) {
        cas__free(&s->alloc, meta);
        cas__free(&s->alloc, blob);
        return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    }
    rc = cas_reader_begin(r, (const char *)meta, ml, bname, s->verify ? key : NULL);
    if (rc >= 0) rc = cas_reader_unpack(r, blob, bl, out, len);
    if (rc < 0) cas__serr(err, errcap, rc, "%s", cas_reader_message(r)[0] ? cas_reader_message(r) : cas_strerror(rc));
    else rc = CAS_OK;
    cas__put_reader(s, r); /* same allocator: *out outlives the reader */
    cas__free(&s->alloc, meta);
    cas__free(&s->alloc, blob);
    return rc;
}

CASDEF int cas_store_stat(cas_store *s, const char *flow, const char *key, int *format, uint64_t *stored_size,
                          char *err, size_t errcap) {
    unsigned char *meta = NULL;
    size_t ml = 0;
    char bname[512];
    struct stat st;
    int fd, rc, fmt = CAS_FORMAT_LEGACY;
    if (format) *format = 0;
    if (stored_size) *stored_size = 0;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, &fd, &meta, &ml, bname, err, errcap)) < 0) return rc;
    if (fstat(fd, &st) == 0 && stored_size) *stored_size = (uint64_t)st.st_size;
    close(fd);
    if (meta) {
        int64_t v = 0;
        rc = cas_meta_parse((const char *)meta, ml, &fmt, &v);
        cas__free(&s->alloc, meta);
        if (rc < 0) return cas__serr(err, errcap, rc, "'%s': %s", bname, cas_strerror(rc));
    }
    if (format) *format = fmt;
    return CAS_OK;
}

/* ---- streams ---- */

struct cas_stream {
    cas_allocator alloc;
    int fd, eof, done, failed;
    cas_reader *r;
    unsigned char *in;
    size_t in_len, in_pos;
    uint64_t stored;
    char msg[512];
};

static int cas__stream_new(cas_stream **out, int fd, const unsigned char *meta, size_t ml, const char *name,
                           const char *key, uint64_t limit, int strict, const cas_allocator *alloc, char *err,
                           size_t errcap) {
    cas_stream *st;
    struct stat sb;
    int rc;
    *out = NULL;
    st = (cas_stream *)cas__calloc(alloc, sizeof *st);
    if (!st) {
        close(fd);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    cas__copy_allocator(&st->alloc, alloc);
    st->fd = fd;
    if (fstat(fd, &sb) == 0) st->stored = (uint64_t)sb.st_size;
    st->in = (unsigned char *)cas__alloc(&st->alloc, CAS__STREAM_WINDOW);
    rc = st->in ? cas_reader_create(&st->r, &st->alloc) : CAS_E_NOMEM;
    if (rc >= 0) {
        cas_reader_set_param(st->r, CAS_PARAM_LIMIT, (int64_t)limit);
        cas_reader_set_param(st->r, CAS_PARAM_STRICT, strict);
        rc = cas_reader_begin(st->r, (const char *)meta, ml, name, key);
        if (rc < 0) cas__serr(err, errcap, rc, "%s", cas_reader_message(st->r));
    } else {
        cas__serr(err, errcap, rc, "out of memory");
    }
    if (rc < 0) {
        cas_stream_close(st);
        return rc;
    }
    *out = st;
    return CAS_OK;
}

CASDEF int cas_store_open_stream(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err,
                                 size_t errcap) {
    unsigned char *meta = NULL;
    size_t ml = 0;
    char bname[512];
    int fd, rc;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, &fd, &meta, &ml, bname, err, errcap)) < 0) return rc;
    rc = cas__stream_new(out, fd, meta, ml, bname, s->verify ? key : NULL, s->limit, s->strict, &s->alloc, err,
                         errcap);
    cas__free(&s->alloc, meta);
    return rc;
}

CASDEF int cas_stream_open_file(cas_stream **out, const char *path, const char *key, uint64_t limit,
                                const cas_allocator *alloc, char *err, size_t errcap) {
    unsigned char *meta = NULL;
    size_t ml = 0, pl;
    char *mpath;
    int fd, mfd, rc, e;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (!path) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    pl = strlen(path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return cas__serr(err, errcap, errno == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO, "Cannot open '%s': %s", path,
                         strerror(errno));
    mpath = (char *)cas__alloc(alloc, pl + 6);
    if (!mpath) {
        close(fd);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    memcpy(mpath, path, pl), memcpy(mpath + pl, "_meta", 6);
    mfd = open(mpath, O_RDONLY | O_CLOEXEC);
    cas__free(alloc, mpath);
    if (mfd >= 0) {
        e = cas__read_all(mfd, alloc, 65536, &meta, &ml);
        close(mfd);
        if (e) {
            close(fd);
            return cas__serr(err, errcap, CAS_E_IO, "Cannot read the sidecar of '%s': %s", path,
                             e == EFBIG ? "over 64 KiB" : strerror(e));
        }
    }
    rc = cas__stream_new(out, fd, meta, ml, path, key, limit, 0, alloc, err, errcap);
    cas__free(alloc, meta);
    return rc;
}

CASDEF int cas_stream_read(cas_stream *st, void *buf, size_t cap, size_t *got) {
    if (got) *got = 0;
    if (!st || !got || (!buf && cap)) return CAS_E_ARG;
    if (st->failed) return st->failed;
    if (st->done || !cap) return CAS_OK;
    for (;;) {
        size_t u = 0, m = 0;
        int rc;
        if (st->in_pos == st->in_len && !st->eof) {
            ssize_t r = CAS_SYS_READ(st->fd, st->in, CAS__STREAM_WINDOW);
            if (r < 0) {
                if (errno == EINTR) continue;
                cas__fmt(st->msg, sizeof st->msg, "Cannot read blob: %s", strerror(errno));
                return st->failed = CAS_E_IO;
            }
            st->in_pos = 0, st->in_len = (size_t)r;
            if (r == 0) st->eof = 1;
        }
        rc = cas_reader_update(st->r, st->in + st->in_pos, st->in_len - st->in_pos, &u, buf, cap, &m, st->eof);
        st->in_pos += u;
        if (rc < 0) {
            cas__fmt(st->msg, sizeof st->msg, "%s", cas_reader_message(st->r));
            return st->failed = rc;
        }
        if (rc == CAS_DONE) st->done = 1;
        if (m || st->done) {
            *got = m;
            return CAS_OK;
        }
        if (st->eof && st->in_pos == st->in_len && !u) { /* cannot happen: end=1 ends or fails */
            cas__fmt(st->msg, sizeof st->msg, "decoder made no progress at the end of the blob");
            return st->failed = CAS_E_STATE;
        }
    }
}

CASDEF int cas_stream_set_param(cas_stream *st, int param, int64_t v) {
    if (!st || (param != CAS_PARAM_LIMIT && param != CAS_PARAM_EXPECT_SIZE)) return CAS_E_ARG;
    if (st->done || st->failed) return CAS_E_STATE;
    return cas_reader_set_param(st->r, param, v);
}

CASDEF const char *cas_stream_message(const cas_stream *st) { return st ? st->msg : ""; }
CASDEF int cas_stream_format(const cas_stream *st) { return st ? cas_reader_format(st->r) : 0; }
CASDEF uint64_t cas_stream_stored_size(const cas_stream *st) { return st ? st->stored : 0; }

CASDEF void cas_stream_close(cas_stream *st) {
    cas_allocator a;
    if (!st) return;
    if (st->fd >= 0) close(st->fd);
    cas_reader_free(st->r);
    a = st->alloc;
    cas__free(&a, st->in);
    cas__free(&a, st);
}

/* Decodes a stream to the end, discarding the bytes. */
static int cas__stream_drain(cas_stream *st, uint64_t *total, char *err, size_t errcap) {
    unsigned char buf[16384];
    size_t got;
    uint64_t t = 0;
    int rc;
    for (;;) {
        rc = cas_stream_read(st, buf, sizeof buf, &got);
        if (rc < 0) return cas__serr(err, errcap, rc, "%s", cas_stream_message(st));
        if (!got) break;
        t += got;
    }
    if (total) *total = t;
    return CAS_OK;
}

CASDEF int cas_store_verify(cas_store *s, const char *flow, const char *key, uint64_t *decoded_size, char *err,
                            size_t errcap) {
    unsigned char *meta = NULL;
    size_t ml = 0;
    char bname[512];
    cas_stream *st;
    int fd, rc;
    if (decoded_size) *decoded_size = 0;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, &fd, &meta, &ml, bname, err, errcap)) < 0) return rc;
    rc = cas__stream_new(&st, fd, meta, ml, bname, key, s->limit, s->strict, &s->alloc, err, errcap);
    cas__free(&s->alloc, meta);
    if (rc < 0) return rc;
    rc = cas__stream_drain(st, decoded_size, err, errcap);
    cas_stream_close(st);
    return rc;
}

/* ---- migrate ---- */

CASDEF int cas_store_migrate(cas_store *s, const char *flow, const char *key, int format, int *changed,
                             char *err, size_t errcap) {
    unsigned char *meta = NULL, head[4];
    size_t ml = 0, hl = 0;
    char bname[512], tb[128], tm[128], mjson[CAS_META_MAX], mbase[CAS_KEY_BUF + 8];
    int fd = -1, rc, mfmt = CAS_FORMAT_LEGACY, bfmt, sn, datafd = -1, abfd = -1, tfd = -1, dummy, e;
    cas_stream *st = NULL;
    cas_writer *w = NULL;
    unsigned char *buf = NULL, *obuf = NULL;
    if (!changed) changed = &dummy;
    *changed = 0;
    tb[0] = tm[0] = 0;
    if (format != CAS_FORMAT_V1 && format != CAS_FORMAT_V2)
        return cas__serr(err, errcap, CAS_E_ARG, "migrate writes cas_version 1 or 2 only");
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, &fd, &meta, &ml, bname, err, errcap)) < 0) return rc;
    if (meta) {
        int64_t v;
        rc = cas_meta_parse((const char *)meta, ml, &mfmt, &v);
        if (rc < 0) {
            close(fd);
            cas__free(&s->alloc, meta);
            return cas__serr(err, errcap, rc, "Cannot migrate '%s': its sidecar: %s", bname, cas_strerror(rc));
        }
    }
    cas__free(&s->alloc, meta);
    meta = NULL;
    if (mfmt == CAS_FORMAT_RAW) { /* raw blobs are read by URI as they are: never re-encode */
        close(fd);
        return CAS_OK;
    }
    while (hl < 4) {
        ssize_t r = pread(fd, head + hl, 4 - hl, (off_t)hl);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        hl += (size_t)r;
    }
    sn = cas_sniff(head, hl);
    /* the bytes are authoritative: an interrupted migrate leaves them ahead of the sidecar */
    bfmt = sn == CAS_SNIFF_GZIP || sn == CAS_SNIFF_EMPTY ? CAS_FORMAT_V1 : sn == CAS_SNIFF_LZ4 ? CAS_FORMAT_V2 : 0;
    if (!bfmt) {
        close(fd);
        return cas__serr(err, errcap, CAS_E_CORRUPT, "Cannot migrate '%s': the bytes are %s", bname,
                         cas_sniff_name(sn));
    }
    if (bfmt == format && (mfmt == format || (mfmt == CAS_FORMAT_LEGACY && format == CAS_FORMAT_V1))) {
        close(fd);
        return CAS_OK; /* already there */
    }
    /* decode as the bytes say, always verifying: migrate never writes bytes that do not hash to the key */
    cas_meta_json(bfmt, mjson, sizeof mjson, &ml);
    rc = cas__stream_new(&st, fd, (const unsigned char *)mjson, ml, bname, key, s->limit, 0, &s->alloc, err, errcap);
    fd = -1;
    if (rc < 0) return rc;
    if (cas__dirs(s, flow, key, 0, &datafd, &abfd) < 0) {
        rc = cas__serr(err, errcap, CAS_E_IO, "Cannot migrate '%s': %s", bname, cas__errno_text(errno));
        goto out;
    }
    if (bfmt == format) { /* only the sidecar is behind: check the bytes, then fix it */
        if ((rc = cas__stream_drain(st, NULL, err, errcap)) < 0) goto out;
    } else {
        if ((rc = cas__get_writer(s, format, &w)) < 0) {
            rc = cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
            goto out;
        }
        buf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
        obuf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
        if (!buf || !obuf) {
            rc = cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
            goto out;
        }
        if ((tfd = cas__tmp_open(s, datafd, key, tb, sizeof tb)) < 0) {
            tb[0] = 0;
            rc = cas__serr(err, errcap, CAS_E_IO, "Cannot migrate '%s': %s", bname, strerror(errno));
            goto out;
        }
        for (;;) {
            size_t got = 0, off = 0;
            int last;
            if ((rc = cas_stream_read(st, buf, CAS__IO_CHUNK, &got)) < 0) {
                rc = cas__serr(err, errcap, rc, "%s", cas_stream_message(st));
                goto out;
            }
            last = got == 0;
            for (;;) {
                size_t u = 0, m = 0;
                rc = last ? cas_writer_finish(w, obuf, CAS__IO_CHUNK, &m)
                          : cas_writer_update(w, buf + off, got - off, &u, obuf, CAS__IO_CHUNK, &m);
                off += u;
                if (rc < 0) {
                    rc = cas__serr(err, errcap, rc, "Cannot migrate '%s': %s", bname, cas_strerror(rc));
                    goto out;
                }
                if (m && (e = cas__write_all(tfd, obuf, m)) != 0) {
                    rc = cas__serr(err, errcap, CAS_E_IO, "Cannot migrate '%s': %s", bname, strerror(e));
                    goto out;
                }
                if (rc == CAS_DONE || (!last && rc == CAS_NEED_INPUT)) break;
            }
            if (last) break;
        }
        e = s->fsync_on && CAS_SYS_FSYNC(tfd) < 0 ? (errno ? errno : EIO) : 0;
        if (close(tfd) < 0 && !e) e = errno ? errno : EIO;
        tfd = -1;
        if (e) {
            rc = cas__serr(err, errcap, CAS_E_IO, "Cannot migrate '%s': %s", bname, strerror(e));
            goto out;
        }
    }
    cas_meta_json(format, mjson, sizeof mjson, &ml);
    snprintf(mbase, sizeof mbase, "%s_meta", key);
    if ((e = cas__tmp_write(s, datafd, mbase, mjson, ml, tm, sizeof tm)) != 0) {
        tm[0] = 0;
        rc = cas__serr(err, errcap, CAS_E_IO, "Cannot migrate '%s': %s", bname, strerror(e));
        goto out;
    }
    /* Blob first, then sidecar, under the lock: a crash between the two leaves
     * bytes whose magic contradicts the sidecar, which readers report and a
     * rerun repairs; cas.h readers take the lock and never see the gap. */
    cas__flock(abfd, LOCK_EX);
    rc = CAS_OK;
    if (tb[0] && CAS_SYS_RENAMEAT(datafd, tb, abfd, key) < 0) e = errno ? errno : EIO;
    else if (CAS_SYS_RENAMEAT(datafd, tm, abfd, mbase) < 0) e = errno ? errno : EIO;
    cas__flock(abfd, LOCK_UN);
    if (e) rc = cas__serr(err, errcap, CAS_E_IO, "Cannot migrate '%s': %s", bname, strerror(e));
    else {
        *changed = 1;
        tb[0] = tm[0] = 0;
        if (s->fsync_on && CAS_SYS_FSYNC(abfd) < 0)
            rc = cas__serr(err, errcap, CAS_E_IO, "Cannot migrate '%s': fsync: %s", bname, strerror(errno));
    }
out:
    if (fd >= 0) close(fd);
    if (tfd >= 0) close(tfd);
    if (datafd >= 0 && tb[0]) unlinkat(datafd, tb, 0);
    if (datafd >= 0 && tm[0]) unlinkat(datafd, tm, 0);
    cas__close2(datafd, abfd);
    cas_stream_close(st);
    if (w) cas__put_writer(s, w);
    cas__free(&s->alloc, buf);
    cas__free(&s->alloc, obuf);
    return rc;
}

/* ---- listing and gc ---- */

/* A growable byte buffer from the store's allocator. */
typedef struct cas__buf {
    char *p;
    size_t len, cap;
    const cas_allocator *a;
} cas__buf;

static int cas__buf_add(cas__buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        char *np;
        while (nc < b->len + n + 1) nc *= 2;
        np = (char *)cas__alloc(b->a, nc);
        if (!np) return CAS_E_NOMEM;
        if (b->len) memcpy(np, b->p, b->len);
        cas__free(b->a, b->p);
        b->p = np, b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return CAS_OK;
}

static int cas__is_dir_at(int dirfd, const char *name) {
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int cas__strcmp_qsort(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

CASDEF int cas_store_flows(cas_store *s, char **names, size_t *count, char *err, size_t errcap) {
    cas__buf b;
    DIR *d;
    struct dirent *de;
    int fd;
    size_t n = 0;
    if (!s || !names || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *names = NULL, *count = 0;
    memset(&b, 0, sizeof b);
    b.a = &s->alloc;
    if ((fd = openat(s->rootfd, ".", CAS__DIR_FLAGS)) < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0) close(fd);
        return cas__serr(err, errcap, CAS_E_IO, "Cannot list '%s': %s", s->root, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        int ffd;
        if (cas_name_check(de->d_name) < 0 || !cas__is_dir_at(s->rootfd, de->d_name)) continue;
        if ((ffd = openat(s->rootfd, de->d_name, CAS__DIR_FLAGS)) < 0) continue;
        if (cas__is_dir_at(ffd, "data")) {
            if (cas__buf_add(&b, de->d_name, strlen(de->d_name) + 1) < 0) {
                close(ffd);
                closedir(d);
                cas__free(&s->alloc, b.p);
                return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
            }
            n++;
        }
        close(ffd);
    }
    closedir(d);
    *names = b.p, *count = n;
    return CAS_OK;
}

CASDEF int cas_store_keys(cas_store *s, const char *flow, char **keys, size_t *count, char *err, size_t errcap) {
    cas__buf b;
    DIR *d, *sd;
    struct dirent *de, *se;
    int datafd, dummy, fd;
    size_t n = 0;
    if (!s || !keys || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *keys = NULL, *count = 0;
    if (cas_name_check(flow) < 0) return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    memset(&b, 0, sizeof b);
    b.a = &s->alloc;
    if (cas__dirs(s, flow, NULL, 0, &datafd, &dummy) < 0)
        return cas__serr(err, errcap, errno == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO, "Cannot open '%s/data': %s",
                         flow, cas__errno_text(errno));
    if (!(d = fdopendir(datafd))) {
        close(datafd);
        return cas__serr(err, errcap, CAS_E_IO, "Cannot list '%s/data': %s", flow, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        const char *ab = de->d_name;
        if (strlen(ab) != 2 || !strchr("0123456789abcdef", ab[0]) || !strchr("0123456789abcdef", ab[1])) continue;
        if ((fd = openat(dirfd(d), ab, CAS__DIR_FLAGS)) < 0) continue;
        if (!(sd = fdopendir(fd))) {
            close(fd);
            continue;
        }
        while ((se = readdir(sd)) != NULL) {
            size_t l = strlen(se->d_name);
            char k[CAS_KEY_BUF];
            struct stat st;
            if (cas_key_check(se->d_name, l, NULL) < 0 || memcmp(se->d_name, ab, 2)) continue;
            if (fstatat(dirfd(sd), se->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) continue;
            memset(k, 0, sizeof k);
            memcpy(k, se->d_name, l);
            if (cas__buf_add(&b, k, CAS_KEY_BUF) < 0) {
                closedir(sd);
                closedir(d);
                cas__free(&s->alloc, b.p);
                return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
            }
            n++;
        }
        closedir(sd);
    }
    closedir(d);
    if (n) qsort(b.p, n, CAS_KEY_BUF, cas__strcmp_qsort);
    *keys = b.p, *count = n;
    return CAS_OK;
}

/* ".<base>.cas-tmp-<pid>-..." : the writer's pid, or 0 if the name is not ours. */
static long cas__tmp_pid(const char *name) {
    const char *t;
    if (name[0] != '.' || !(t = strstr(name, CAS__TMP_TAG))) return 0;
    return strtol(t + strlen(CAS__TMP_TAG), NULL, 10);
}

CASDEF int cas_store_gc(cas_store *s, uint64_t *removed, char *err, size_t errcap) {
    char *flows = NULL;
    size_t nf = 0, i;
    const char *f;
    uint64_t gone = 0;
    int rc;
    if (removed) *removed = 0;
    if ((rc = cas_store_flows(s, &flows, &nf, err, errcap)) < 0) return rc;
    for (i = 0, f = flows; i < nf; i++, f += strlen(f) + 1) {
        int datafd, dummy;
        DIR *d;
        struct dirent *de;
        time_t now = time(NULL);
        if (cas__dirs(s, f, NULL, 0, &datafd, &dummy) < 0) continue;
        if (!(d = fdopendir(datafd))) {
            close(datafd);
            continue;
        }
        while ((de = readdir(d)) != NULL) {
            long pid = cas__tmp_pid(de->d_name);
            struct stat st;
            int dead;
            if (pid <= 0 || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue;
            /* a live writer's temp stays, unless it is an hour old (another host's, or stuck) */
            dead = (pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) || now - st.st_mtime > 3600;
            if (dead && unlinkat(dirfd(d), de->d_name, 0) == 0) gone++;
        }
        closedir(d);
    }
    cas__free(&s->alloc, flows);
    if (removed) *removed = gone;
    return CAS_OK;
}

/* ---- batch ---- */

typedef struct cas__batch {
    cas_store *s;
    const char *flow;
    size_t count, next;
    int put, format;
    const void *const *data;
    const size_t *sizes;
    char *keys;
    const char *const *gkeys;
    void **outs;
    size_t *lens;
    int *status;
    int first_rc;
    char *err;
    size_t errcap;
#ifndef CAS_NO_THREADS
    pthread_mutex_t mu;
#endif
} cas__batch;

static void *cas__batch_worker(void *arg) {
    cas__batch *b = (cas__batch *)arg;
    char msg[512];
    for (;;) {
        size_t i;
        int rc;
#ifndef CAS_NO_THREADS
        pthread_mutex_lock(&b->mu);
#endif
        i = b->next++;
#ifndef CAS_NO_THREADS
        pthread_mutex_unlock(&b->mu);
#endif
        if (i >= b->count) break;
        msg[0] = 0;
        if (b->put)
            rc = cas__store_put(b->s, b->flow, b->data[i], b->sizes[i], b->format, b->keys + i * CAS_KEY_BUF, NULL,
                                msg, sizeof msg, 1);
        else
            rc = cas_store_get(b->s, b->flow, b->gkeys[i], &b->outs[i], &b->lens[i], msg, sizeof msg);
        if (b->status) b->status[i] = rc;
        if (rc < 0) {
#ifndef CAS_NO_THREADS
            pthread_mutex_lock(&b->mu);
#endif
            if (!b->first_rc) {
                b->first_rc = rc;
                cas__serr(b->err, b->errcap, rc, "%s", msg);
            }
#ifndef CAS_NO_THREADS
            pthread_mutex_unlock(&b->mu);
#endif
        }
    }
    return NULL;
}

static int cas__batch_run(cas__batch *b, int threads) {
    int started = 0;
#ifndef CAS_NO_THREADS
    pthread_t th[16];
    int i;
    if (threads <= 0) threads = 2;
    if (threads > 16) threads = 16;
    if ((size_t)threads > b->count) threads = (int)b->count;
    if (pthread_mutex_init(&b->mu, NULL) != 0) threads = 1;
    else
        for (i = 1; i < threads; i++) /* the caller's thread is the first worker */
            if (pthread_create(&th[started], NULL, cas__batch_worker, b) == 0) started++;
    cas__batch_worker(b);
    for (i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (threads > 1 || started) pthread_mutex_destroy(&b->mu);
#else
    (void)threads;
    (void)started;
    cas__batch_worker(b);
#endif
    return b->first_rc;
}

CASDEF int cas_store_put_batch(cas_store *s, const char *flow, size_t count, const void *const *data,
                               const size_t *sizes, int format, char *keys, int *status, int threads, char *err,
                               size_t errcap) {
    cas__batch b;
    if (!s || (count && (!data || !sizes || !keys))) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    memset(&b, 0, sizeof b);
    b.s = s, b.flow = flow, b.count = count, b.put = 1, b.format = format;
    b.data = data, b.sizes = sizes, b.keys = keys, b.status = status, b.err = err, b.errcap = errcap;
    return cas__batch_run(&b, threads);
}

CASDEF int cas_store_get_batch(cas_store *s, const char *flow, size_t count, const char *const *keys, void **outs,
                               size_t *lens, int *status, int threads, char *err, size_t errcap) {
    cas__batch b;
    size_t i;
    if (!s || (count && (!keys || !outs || !lens))) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    for (i = 0; i < count; i++) outs[i] = NULL, lens[i] = 0;
    memset(&b, 0, sizeof b);
    b.s = s, b.flow = flow, b.count = count, b.put = 0;
    b.gkeys = keys, b.outs = outs, b.lens = lens, b.status = status, b.err = err, b.errcap = errcap;
    return cas__batch_run(&b, threads);
}

/* ---- tasks ---- */

typedef struct cas__art {
    const char *name, *key, *encoding, *type;
    int64_t size;
} cas__art;

struct cas_task {
    cas_allocator alloc;
    int attempt;
    size_t count;
    cas__art *arts;
    char *arena;
    char flow[256];
};

CASDEF void cas_task_close(cas_task *t) {
    cas_allocator a;
    if (!t) return;
    a = t->alloc;
    cas__free(&a, t->arts);
    cas__free(&a, t->arena);
    cas__free(&a, t);
}

/* Copies a decoded JSON string into the arena; "" when it is not a usable
 * string (not a string, a NUL or lone surrogate inside, or no room). */
static const char *cas__arena_str(const cas__json *j, size_t tok, char **arena, size_t *left) {
    size_t l;
    const char *p = *arena;
    if (*left == 0) return "";
    if (!tok || j->t[tok].type != CAS__J_STR || (l = cas__json_str(j, tok, *arena, *left)) == (size_t)-1) {
        (*arena)[0] = 0;
        l = 0;
    }
    *arena += l + 1, *left -= l + 1;
    return p;
}

typedef struct cas__name_pos {
    const char *name;
    size_t pos;
} cas__name_pos;

static int cas__name_pos_cmp(const void *a, const void *b) {
    const cas__name_pos *x = (const cas__name_pos *)a, *y = (const cas__name_pos *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* A name repeated in "objects" keeps its first position and its last value,
 * as Python's json.loads builds the dict. scratch holds at least 4*m size_t. */
static size_t cas__dedupe_arts(cas__art *a, size_t m, size_t *scratch) {
    cas__name_pos *np = (cas__name_pos *)(void *)scratch; /* 2 size_t each: fits in 4*m */
    size_t i, k, n = 0;
    int dup = 0;
    for (i = 0; i < m; i++) np[i].name = a[i].name, np[i].pos = i;
    qsort(np, m, sizeof *np, cas__name_pos_cmp);
    for (i = 0; i < m; i = k) {
        for (k = i + 1; k < m && !strcmp(np[k].name, np[i].name); k++) {
        }
        if (k - i > 1) {
            size_t first = np[i].pos, last = np[k - 1].pos, d;
            a[first].key = a[last].key, a[first].size = a[last].size;
            a[first].encoding = a[last].encoding, a[first].type = a[last].type;
            for (d = i + 1; d < k; d++) a[np[d].pos].name = NULL; /* dropped below */
            dup = 1;
        }
    }
    if (!dup) return m;
    for (i = 0; i < m; i++)
        if (a[i].name) a[n++] = a[i];
    return n;
}

CASDEF int cas_task_open(cas_store *s, const char *pathspec, cas_task **out, char *err, size_t errcap) {
    char parts[4][256], fname[32];
    int fd = -1, tfd, attempt = -1, i, e, rc;
    unsigned char *text = NULL;
    size_t tlen = 0;
    cas__json j;
    cas_task *t;
    size_t objs, info, k, m, arena_size, left, ti, *toks = NULL;
    char *ap;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas__split(pathspec, parts, 4) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid pathspec '%.300s': expected Flow/run/step/task",
                         pathspec ? pathspec : "");
    tfd = s->rootfd;
    for (i = 0; i < 4; i++) {
        int nfd = openat(tfd, parts[i], CAS__DIR_FLAGS);
        e = errno;
        if (i) close(tfd);
        if (nfd < 0)
            return cas__serr(err, errcap, e == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO, "Cannot open task '%s': %s",
                             pathspec, e == ENOENT ? "no such task in this datastore" : cas__errno_text(e));
        tfd = nfd;
    }
    /* Metaflow's rule: attempts 0..5, the last of the consecutive run of N.attempt.json */
    for (i = 0; i < 6; i++) {
        struct stat st;
        snprintf(fname, sizeof fname, "%d.attempt.json", i);
        if (fstatat(tfd, fname, &st, AT_SYMLINK_NOFOLLOW) == 0) attempt = i;
        else if (attempt >= 0) break;
    }
    if (attempt >= 0) {
        struct stat st;
        snprintf(fname, sizeof fname, "%d.DONE.lock", attempt);
        if (fstatat(tfd, fname, &st, AT_SYMLINK_NOFOLLOW) < 0) attempt = -1;
    }
    if (attempt < 0) {
        close(tfd);
        return cas__serr(err, errcap, CAS_E_NOTFOUND, "No completed attempts of the task was found for task '%s'",
                         pathspec);
    }
    snprintf(fname, sizeof fname, "%d.data.json", attempt);
    fd = openat(tfd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    e = errno;
    close(tfd);
    if (fd < 0)
        return cas__serr(err, errcap, e == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO, "Cannot open '%s/%s': %s", pathspec,
                         fname, cas__errno_text(e));
    e = cas__read_all(fd, &s->alloc, CAS__JSON_FILE_MAX, &text, &tlen);
    close(fd);
    if (e)
        return cas__serr(err, errcap, e == ENOMEM ? CAS_E_NOMEM : CAS_E_IO, "Cannot read '%s/%s': %s", pathspec,
                         fname, e == EFBIG ? "over 256 MiB" : strerror(e));
    rc = cas__json_parse(&j, (const char *)text, tlen, &s->alloc);
    if (rc < 0 || j.t[0].type != CAS__J_OBJ) {
        rc = cas__serr(err, errcap, rc == CAS_E_NOMEM ? rc : CAS_E_JSON, "Malformed '%s/%s': %s", pathspec, fname,
                       rc < 0 ? j.err : "not a JSON object");
        cas__json_free(&j);
        cas__free(&s->alloc, text);
        return rc;
    }
    objs = cas__json_get(&j, 0, "objects");
    info = cas__json_get(&j, 0, "info");
    if (!objs || j.t[objs].type != CAS__J_OBJ) {
        cas__json_free(&j);
        cas__free(&s->alloc, text);
        return cas__serr(err, errcap, CAS_E_JSON, "Malformed '%s/%s': no \"objects\" map", pathspec, fname);
    }
    if (info && j.t[info].type != CAS__J_OBJ) info = 0; /* not a map: as if absent */
    m = j.t[objs].count;
    t = (cas_task *)cas__calloc(&s->alloc, sizeof *t);
    if (t) {
        cas__copy_allocator(&t->alloc, &s->alloc);
        t->arts = (cas__art *)cas__calloc(&s->alloc, (m + 1) * sizeof *t->arts);
        toks = (size_t *)cas__alloc(&s->alloc, (m + 1) * 4 * sizeof *toks);
    }
    if (!t || !t->arts || !toks) {
        rc = CAS_E_NOMEM;
        goto fail;
    }
    /* pass 1: the tokens of each artifact (name, key, encoding, type) and the
     * arena they need: a decoded string is never longer than its JSON text */
    arena_size = 1;
    for (k = 0, ti = objs + 1; k < m; k++) {
        size_t kt = ti, vt = kt + 1, it = 0, c, q, *tk = toks + 4 * k;
        if (info) /* info is keyed by the same names; the last match wins, as in Python */
            for (c = 0, q = info + 1; c < j.t[info].count; c++, q = j.t[q + 1].next)
                if (j.t[q].end - j.t[q].start == j.t[kt].end - j.t[kt].start &&
                    !memcmp(j.s + j.t[q].start, j.s + j.t[kt].start, j.t[kt].end - j.t[kt].start))
                    it = q + 1;
        tk[0] = kt, tk[1] = vt;
        tk[2] = it ? cas__json_get(&j, it, "encoding") : 0;
        tk[3] = it ? cas__json_get(&j, it, "type") : 0;
        for (c = 0; c < 4; c++) arena_size += (tk[c] ? j.t[tk[c]].end - j.t[tk[c]].start : 0) + 1;
        {
            size_t st = it ? cas__json_get(&j, it, "size") : 0;
            int64_t sz;
            t->arts[k].size = -1;
            if (st && j.t[st].type == CAS__J_NUM && cas__json_int(&j, st, &sz) == 0 && sz >= 0) t->arts[k].size = sz;
        }
        ti = j.t[vt].next;
    }
    if (!(t->arena = (char *)cas__alloc(&s->alloc, arena_size))) {
        rc = CAS_E_NOMEM;
        goto fail;
    }
    t->attempt = attempt;
    snprintf(t->flow, sizeof t->flow, "%s", parts[0]);
    ap = t->arena, left = arena_size;
    for (k = 0; k < m; k++) { /* pass 2: decode */
        size_t *tk = toks + 4 * k;
        cas__art *a = &t->arts[k];
        a->name = cas__arena_str(&j, tk[0], &ap, &left);
        a->key = cas__arena_str(&j, tk[1], &ap, &left);
        /* Metaflow's default for datastores older than the info map */
        a->encoding = tk[2] ? cas__arena_str(&j, tk[2], &ap, &left) : "gzip+pickle-v2";
        a->type = cas__arena_str(&j, tk[3], &ap, &left);
    }
    t->count = cas__dedupe_arts(t->arts, m, toks);
    cas__free(&s->alloc, toks);
    cas__json_free(&j);
    cas__free(&s->alloc, text);
    *out = t;
    return CAS_OK;
fail:
    cas__free(&s->alloc, toks);
    cas_task_close(t);
    cas__json_free(&j);
    cas__free(&s->alloc, text);
    return cas__serr(err, errcap, rc, "out of memory");
}

CASDEF int cas_task_attempt(const cas_task *t) { return t ? t->attempt : -1; }
CASDEF size_t cas_task_count(const cas_task *t) { return t ? t->count : 0; }
CASDEF const char *cas_task_flow(const cas_task *t) { return t ? t->flow : ""; }

CASDEF int cas_task_artifact(const cas_task *t, size_t i, const char **name, const char **key, int64_t *size,
                             const char **encoding, const char **type) {
    const cas__art *a;
    if (!t || i >= t->count) return CAS_E_ARG;
    a = &t->arts[i];
    if (name) *name = a->name;
    if (key) *key = a->key;
    if (size) *size = a->size;
    if (encoding) *encoding = a->encoding;
    if (type) *type = a->type;
    return CAS_OK;
}

CASDEF int cas_task_find(const cas_task *t, const char *name, size_t *index) {
    size_t i;
    if (!t || !name) return CAS_E_ARG;
    for (i = 0; i < t->count; i++)
        if (!strcmp(t->arts[i].name, name)) {
            if (index) *index = i;
            return CAS_OK;
        }
    return CAS_E_NOTFOUND;
}

#endif /* CAS_NO_STORE */


#ifdef __cplusplus
}
#endif
#endif /* CAS_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License. Copyright (c) 2026 the cas.h authors.
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions: the above copyright notice and this
permission notice shall be included in all copies or substantial portions of
the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
------------------------------------------------------------------------------
*/
