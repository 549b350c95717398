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
 * Layers (each calls only those below it; the tables are the one place a format,
 * a codec or a parameter's bounds are written):
 *   store: put/get/verify/migrate/gc/batch/streams/tasks   names, dedup, the attempt rule
 *     backend seam (cas_backend, experimental)             objects + metadata, listings: a local
 *       directory here; URL roots by scheme from a registry   S3 and Azure (cas_cloud.h registers
 *       (cas_backend_register)                                them), or your own
 *   reader / writer                                        Metaflow's read rules, keys, sidecars;
 *     format table (cas__formats)                          name, codec, sidecar, what it promises
 *   parameters: one row type, one check (cas__param_row)   cas__params + cas__codec_params; object
 *                                                          stores' and previews' rows in their headers
 *   codecs (cas_codecs.h): codec table (cas__codecs)       gzip, LZ4 frame, raw
 *
 * Errors, one rule:
 * - Every call returns CAS_OK (0), a progress code (> 0) or an error (< 0);
 *   cas_strerror() names any code and never returns NULL.
 * - Objects one thread uses (cas_codec, cas_reader, cas_stream) keep the words of
 *   their last failure: cas_codec_message(), cas_reader_message(), cas_stream_message().
 * - Calls that open something or work on a shared object (every cas_store_* call,
 *   cas_stream_open_file, cas_task_*, cas_backend_local, cas_store_default_root) write
 *   the words into the caller's err buffer (nullable, any size; CAS_MESSAGE_MAX bytes
 *   hold any message whole) naming the object and the reason, never a secret.
 * - Yes/no questions (cas_*_available, cas_store_exists, the *_check functions)
 *   answer with the code alone.
 *
 * Usage:
 *
 *   char key[CAS_KEY_BUF], err[512];
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
 *   cas_store_open(&s, ".metaflow", NULL, err, sizeof err); // or "s3://bucket/prefix", "azure://container/prefix"
 *   cas_store_put(s, "MyFlow", data, n, 0, key, NULL, err, sizeof err);
 *
 * Config macros (define before including the implementation):
 *
 *   CAS_IMPLEMENTATION   emit the implementation (also cas_codecs.h's)
 *   CAS_STATIC           every function static to the including file
 *   CASDEF               linkage/visibility of the public functions
 *   CAS_EXPERIMENTAL     declare the experimental part (the backend seam)
 *   CAS_USE_XXH3_KEYS    keys default to XXH3-128 (32 hex) instead of SHA-1 (40 hex)
 *                        (0.1.0's CAS_KEY_XXH3 still works)
 *   CAS_USE_OPENSSL      SHA-1 through OpenSSL's libcrypto (-lcrypto), ~3x the
 *                        built-in portable SHA-1 (0.1.0's CAS_SHA1_OPENSSL still works)
 *   CAS_NO_XXH3          no XXH3-128 (no xxhash.h needed)
 *   CAS_NO_THREADS       no pthreads: pack hashes and compresses on one core,
 *                        batch calls run serially
 *   CAS_NO_STORE         no POSIX file I/O: no store, task resolution or streams
 *   CAS_BACKEND_MODULE   a registrar, int f(int (*add)(const char *, cas_backend_opener)), run
 *                        before the first URL root opens: cas_cloud.h sets it to its own
 *                        (s3://, azure://) when you include it
 *   CAS_SYS_WRITE, CAS_SYS_READ, CAS_SYS_RENAMEAT, CAS_SYS_FSYNC
 *                        the local store's system calls (fault injection in tests)
 *   CAS_EXTRA_FORMATS    test builds: more rows for the format table (cas__format_row)
 *   CAS_NO_GZIP, CAS_NO_LZ4, CAS_NO_RAW, CAS_USE_ISAL, CAS_USE_LIBDEFLATE,
 *   CAS_MALLOC, CAS_FREE, CAS_EXTRA_CODECS see cas_codecs.h
 *
 * Contracts:
 * - Objects (cas_hasher, cas_writer, cas_reader, cas_codec, cas_stream) are
 *   used by one thread at a time. A cas_store is safe to share between threads
 *   once configured.
 * - A cas_writer with CAS_PARAM_THREADS 2 (the default) that packs a large input
 *   (256 KiB on) keeps one helper thread, idle between packs, until
 *   cas_writer_free joins it. After
 *   fork() the child's copy of the writer starts its own; free it in either.
 * - Keys are lowercase hex, NUL-terminated, in char[CAS_KEY_BUF].
 */

/* 0.1.0's names for two config macros */
#if defined(CAS_SHA1_OPENSSL) && !defined(CAS_USE_OPENSSL)
#define CAS_USE_OPENSSL
#endif
#if defined(CAS_KEY_XXH3) && !defined(CAS_USE_XXH3_KEYS)
#define CAS_USE_XXH3_KEYS
#endif

/* The store uses POSIX.1-2008 calls (openat, renameat) and flock; under a strict
 * -std=c99 nothing declares them unless asked before the first system header. */
#if defined(CAS_IMPLEMENTATION) && !defined(CAS_NO_STORE) && defined(__STRICT_ANSI__) && \
    !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE 1
#endif
/* Outside the guard: cas.h included again with CAS_IMPLEMENTATION brings the
 * codecs' implementation too (cas_codecs.h has its own guards). */
#include "cas_codecs.h"
#ifndef CAS_H
#define CAS_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- keys ---------------------------------------------------------------- */

#define CAS_HASH_SHA1 1 /* Metaflow's key: 40 hex */
#define CAS_HASH_XXH3 2 /* XXH3-128: 32 hex, ~10x faster, not Metaflow-compatible */
#ifdef CAS_USE_XXH3_KEYS
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
/* reader: the decoded size the caller knows (data.json's size); -1 = unknown (default). A
 * difference is CAS_E_SIZE */
#define CAS_PARAM_EXPECT_SIZE 35

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
/* Bytes in and blob bytes out so far, as cas_codec_total_in/out and cas_reader_total_in/out. */
CASDEF uint64_t cas_writer_total_in(const cas_writer *w);
CASDEF uint64_t cas_writer_total_out(const cas_writer *w);
CASDEF uint64_t cas_writer_size_in(const cas_writer *w);  /* 0.1.0's name of cas_writer_total_in */
CASDEF uint64_t cas_writer_size_out(const cas_writer *w); /* 0.1.0's name of cas_writer_total_out */
CASDEF int cas_writer_format(const cas_writer *w);
/* New blob, same parameters; format 0 keeps the current one. Keeps allocations. */
CASDEF int cas_writer_reset(cas_writer *w, int format);
CASDEF void cas_writer_free(cas_writer *w);

/* The largest blob n bytes can become in this format. */
CASDEF size_t cas_pack_bound(int format, size_t n);
/* Whole artifact to key + blob. w may be NULL (a v1 writer for this call).
 * With CAS_PARAM_THREADS 2, inputs of 256 KiB and more hash on a second thread
 * while the first compresses; on a writer used again, inputs from 32 KiB do, on
 * the writer's kept helper thread (see Contracts).
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
CASDEF int cas_reader_unpack_into(cas_reader *r, const void *blob, size_t n, void *dst, size_t cap, size_t *out_len);
/* The whole blob at once into a buffer allocated with the reader's allocator;
 * release it with cas_reader_free_buffer. */
CASDEF int cas_reader_unpack(cas_reader *r, const void *blob, size_t n, void **out, size_t *out_len);
CASDEF void cas_reader_free_buffer(cas_reader *r, void *p);
/* begin + unpack_into in one call, for bindings that pay per call (ctypes):
 * CAS_DONE, an error, or CAS_NEED_OUTPUT with *out_len set to the size the
 * blob states (0 if it states none, or one cas_reader_size_hint refuses) so that
 * a retry can size its buffer. */
CASDEF int cas_reader_decode(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key,
                             const void *blob, size_t n, void *dst, size_t cap, size_t *out_len);
/* What the blob says it decodes to (LZ4 content size, gzip length field) after
 * begin, or CAS_E_NOTFOUND when it states nothing, or more than its n bytes of its
 * codec can decode to (then *size is 0). A size to allocate for the output, never
 * trusted: a blob that decodes to more fails with CAS_NEED_OUTPUT. */
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
/* ---- many blobs at once (a task's artifacts) ------------------------------ */
/* One call for count independent items, spread over `threads` threads (<= 0: 2):
 * what a binding that pays per call (ctypes) hands over whole. Item i reads
 * in[i] (in_len[i] bytes) and writes out[i] (cap[i] bytes of room), out_len[i]
 * and status[i] (CAS_OK or the item's error; status may be NULL). An item's
 * failure stops no other; the call returns CAS_OK or the status of the lowest
 * failing item. Messages are not kept: redo a failed item alone (cas_pack,
 * cas_reader_decode) for its words. Experimental until 1.0. */
/* Keys and blobs in a format (CAS_FORMAT_V1, V2, RAW), keys by algo (CAS_HASH_*;
 * 0: CAS_HASH_DEFAULT): with out == NULL only the keys (count * CAS_KEY_BUF
 * bytes, key i at keys + i * CAS_KEY_BUF); with keys == NULL only the blobs;
 * with both, both (a large item's hash and its compression are two jobs, so
 * that two threads share it, as cas_pack's own two do). An item whose room is short is
 * CAS_NEED_OUTPUT (cas_pack_bound is always enough). */
CASDEF int cas_pack_many(int format, int algo, size_t count, const void *const *in, const size_t *in_len,
                         void *const *out, const size_t *cap, size_t *out_len, char *keys, int *status, int threads);
/* Blobs to bytes: format[i] says how item i is stored (CAS_FORMAT_V1, V2, RAW or
 * LEGACY, as cas_meta_parse tells from its sidecar); keys, when not NULL, are
 * checked (item i must decode to bytes that hash to key i, or CAS_E_HASH). An item
 * whose room is short is CAS_NEED_OUTPUT with out_len[i] set to the size the
 * blob states (0 if none): out == NULL asks every item for that size alone (on the
 * calling thread: no item is decoded but those that state no size). */
CASDEF int cas_unpack_many(size_t count, const int *format, const void *const *in, const size_t *in_len,
                           void *const *out, const size_t *cap, size_t *out_len, const char *const *keys, int *status,
                           int threads);
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
/* 1: every read rehashes and compares with the key (default 0, and 1 on an object store,
 * CAS_BACKEND_REMOTE: a server's answer is never trusted) */
#define CAS_PARAM_VERIFY 42

typedef struct cas_store cas_store;
typedef struct cas_stream cas_stream;
typedef struct cas_task cas_task;

/* Every store call is thread-safe once configured and reports failures into the
 * caller's err buffer (nullable, any size) naming the blob and the cause.
 * root: a local directory, or a URL whose scheme has a registered backend
 * (cas_backend_register: "s3://bucket/prefix" and "azure://container/prefix" when
 * cas_cloud.h's implementation is built in, as in libcas.so, `cas` and the Python
 * binding); NULL or "" = cas_store_default_root(). */
CASDEF int cas_store_open(cas_store **out, const char *root, const cas_allocator *alloc, char *err, size_t errcap);
CASDEF void cas_store_close(cas_store *s);
CASDEF const char *cas_store_root(const cas_store *s);
/* Configure before sharing the store between threads. */
CASDEF int cas_store_set_param(cas_store *s, int param, int64_t value);

/* Flow names and pathspec parts: 1-255 of [A-Za-z0-9_.-], not starting with '.'. */
CASDEF int cas_name_check(const char *name);
/* A folder name that can be a run, a step or a task below a flow (a valid name,
 * neither "_meta" nor "data"): CAS_OK or CAS_E_NAME. */
CASDEF int cas_part_check(const char *name);
/* "Flow/run/step/task": four valid parts. */
CASDEF int cas_pathspec_check(const char *pathspec);
/* The store-relative path "Flow/data/ab/abcd..." into buf. */
CASDEF int cas_store_blob_name(const char *flow, const char *key, char *buf, size_t cap);

/* Stores bytes; the key comes back in key. format 0 = the store's default.
 * An existing key writes nothing (*stored = 0). The sidecar lands before the
 * blob becomes visible; a crash leaves only temp files, which cas_store_gc removes. */
CASDEF int cas_store_put(cas_store *s, const char *flow, const void *data, size_t n, int format, char key[CAS_KEY_BUF],
                         int *stored, char *err, size_t errcap);
/* Same, streaming from a file descriptor until EOF, memory bounded. */
CASDEF int cas_store_put_fd(cas_store *s, const char *flow, int fd, int format, char key[CAS_KEY_BUF], int *stored,
                            char *err, size_t errcap);
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
CASDEF int cas_store_migrate(cas_store *s, const char *flow, const char *key, int format, int *changed, char *err,
                             size_t errcap);
/* Removes temp files left by crashed writers (dead pid, or older than an hour). */
CASDEF int cas_store_gc(cas_store *s, uint64_t *removed, char *err, size_t errcap);
/* Flow names ("A\0B\0") or a flow's keys (count * CAS_KEY_BUF chars, each NUL-
 * terminated), in a buffer from the store's allocator (cas_store_free_buffer). */
CASDEF int cas_store_flows(cas_store *s, char **names, size_t *count, char *err, size_t errcap);
CASDEF int cas_store_keys(cas_store *s, const char *flow, char **keys, size_t *count, char *err, size_t errcap);

/* The datastore's other objects, as Metaflow's storage layer keeps them (a task's
 * N.data.json and N.attempt.json, its DONE marker, logs): store-relative names
 * ("Flow/12/start/3/0.data.json": '/'-separated parts, none empty, "." or "..", no
 * control character, at most 1024 bytes), bytes as they are, and the object's
 * metadata JSON (Metaflow's user attributes; NULL: none). exists: 1, 0 or < 0.
 * get: the whole object (at most max bytes; 0: 256 MiB) and its metadata (meta
 * nullable; NULL if none), both NUL-terminated, in buffers for cas_store_free_buffer.
 * put: replace = 0 keeps an object already there (*stored = 0); the metadata is
 * printable ASCII, at most 2 KiB (what S3 and Azure take in a header). */
CASDEF int cas_store_file_exists(cas_store *s, const char *name, char *err, size_t errcap);
CASDEF int cas_store_file_get(cas_store *s, const char *name, size_t max, void **out, size_t *len, char **meta,
                              char *err, size_t errcap);
CASDEF int cas_store_file_put(cas_store *s, const char *name, const void *data, size_t n, const char *meta, int replace,
                              int *stored, char *err, size_t errcap);

/* A folder's entries ("" = the root; "Flow/12" a run's steps), sorted by name: its
 * objects and its folders (an object store's common prefixes), in one buffer for
 * cas_store_free_buffer. Names are the last part; an entry whose name the store would
 * refuse is skipped. CAS_E_NOTFOUND if there is no such folder (on an object store: if
 * nothing is under it). Object stores are listed page by page inside. */
typedef struct cas_file_entry {
    const char *name;
    int is_dir;
    uint64_t size; /* bytes; 0 for a folder */
    int64_t mtime; /* seconds since the epoch; 0 if unknown (an object store's folders) */
    int other;     /* 1: a symbolic link or special file (a local store's), which the store never follows */
} cas_file_entry;
CASDEF int cas_store_file_list(cas_store *s, const char *dir, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap);
/* Every object below dir, in one listing (an object store's pages, no request per
 * folder): names relative to dir ("start/3/0.data.json"), no folders, sorted. Strict:
 * it fails, naming the entry, where it cannot see everything below (a symbolic link,
 * a special file, a name the store refuses, a folder it cannot read or too deep), as
 * a caller deciding what nothing refers to must. */
CASDEF int cas_store_file_walk(cas_store *s, const char *dir, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap);
/* A flow's blob files in one listing of its data folder, with sizes and times:
 * names "ab/KEY" (and a local store's orphan sidecars, "ab/KEY_meta"). Unlike the
 * walk, an entry it cannot take (a hostile name, a link) is skipped: no blob is
 * found through it. */
CASDEF int cas_store_blob_list(cas_store *s, const char *flow, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap);
/* Removes an object by name (with its sidecar on a local store), or an empty folder
 * of a local store (object stores have none to remove). 1 if it was there, 0 if not. */
CASDEF int cas_store_file_remove(cas_store *s, const char *name, char *err, size_t errcap);

/* Batch calls spread the items over `threads` threads (0 = 2). They return
 * CAS_OK or the first failure's code; status[i] (nullable) holds each item's.
 * put: keys receives count * CAS_KEY_BUF chars. get: outs[i] as cas_store_get. */
CASDEF int cas_store_put_batch(cas_store *s, const char *flow, size_t count, const void *const *data,
                               const size_t *sizes, int format, char *keys, int *status, int threads, char *err,
                               size_t errcap);
CASDEF int cas_store_get_batch(cas_store *s, const char *flow, size_t count, const char *const *keys, void **outs,
                               size_t *lens, int *status, int threads, char *err, size_t errcap);

/* Streams: decode a blob piece by piece with a fixed window (64 KiB of input
 * plus the codec's state), whatever its size. Opened from a store as a task is
 * (cas_task_open): store, what to open, the handle, err. */
CASDEF int cas_stream_open(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err, size_t errcap);
/* 0.1.0's name of cas_stream_open. */
CASDEF int cas_store_open_stream(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err,
                                 size_t errcap);
/* Any blob file; its sidecar is path + "_meta" when present. key (nullable)
 * turns on verification; limit 0 = none. */
CASDEF int cas_stream_open_file(cas_stream **out, const char *path, const char *key, uint64_t limit,
                                const cas_allocator *alloc, char *err, size_t errcap);
/* Up to cap decoded bytes; *got == 0 with CAS_OK means the end of the blob. */
CASDEF int cas_stream_read(cas_stream *st, void *buf, size_t cap, size_t *got);
/* A cas_version 2 blob file (an LZ4 frame) decoded straight into dst[cap], its
 * stored blocks read into place (no mapping, no copy through a buffer): what a
 * large blob on a local disk costs least to load, whatever the machine's memory
 * state. Plain frames only (no checksums, no dictionary, nothing after the end
 * mark, as cas.h and Metaflow write them); anything else is CAS_E_UNSUPPORTED,
 * and any failure the caller's cue to take the general path, which words it.
 * Experimental until 1.0. */
#ifndef CAS_NO_LZ4
CASDEF int cas_unpack_v2_fd(int fd, void *dst, size_t cap, size_t *out_len);
/* Many such files on `threads` threads (0: two), largest room first, as
 * cas_unpack_many does; item i's status in status[i] (when not NULL), the
 * first failure returned. Experimental until 1.0. */
CASDEF int cas_unpack_v2_fd_many(size_t count, const int *fd, void *const *dst, const size_t *cap, size_t *out_len,
                                 int *status, int threads);
#endif
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
/* 1 if data.json's encoding names a pickle (Metaflow's PickleSerializer takes
 * "pickle-vN" and "gzip+pickle-vN"; NULL, no encoding recorded, is "gzip+pickle-v2"),
 * 0 for another serializer's bytes (Metaflow PR #3117: "json", an extension's...),
 * which must never be parsed as a pickle. */
CASDEF int cas_encoding_is_pickle(const char *encoding);
/* Index of an artifact by name, or CAS_E_NOTFOUND. */
CASDEF int cas_task_find(const cas_task *t, const char *name, size_t *index);
CASDEF const char *cas_task_flow(const cas_task *t);
CASDEF void cas_task_close(cas_task *t);

/* A flow's runs, newest first, in one buffer for cas_store_free_buffer: the id; the
 * start time in seconds (ts_epoch of FLOW/RUN/_meta/_self.json, where Metaflow's local
 * metadata wrote it, else the earliest object of the run's _parameters task; 0 if
 * unknown); finished (its end step has a task with an attempt Metaflow counts as done);
 * the user and the tags, as the JSON arrays _self.json holds ("" where it has none: an
 * object store's datastore keeps them in the metadata service). */
typedef struct cas_run_info {
    const char *id, *user, *tags, *system_tags;
    int64_t started;
    int finished;
} cas_run_info;
CASDEF int cas_store_runs(cas_store *s, const char *flow, cas_run_info **runs, size_t *count, char *err, size_t errcap);

/* The same, from bytes already in hand (no I/O): a task's N.data.json, and the
 * attempt Metaflow's rule picks from the names a task folder holds ("a\0b\0",
 * count names): the last of the run of N.attempt.json from 0 (N <= 5), if
 * N.DONE.lock is there too; -1 if none. cas_task_open is these two over a store. */
CASDEF int cas_task_parse(cas_task **out, const char *pathspec, int attempt, const void *data_json, size_t len,
                          const cas_allocator *alloc, char *err, size_t errcap);
CASDEF int cas_task_pick_attempt(const char *names, size_t count);

/* Metaflow's configuration, read as Metaflow reads it: the environment
 * (METAFLOW_<NAME>), then .metaflow/config.json above the working directory,
 * then $METAFLOW_HOME/config.json (config_$METAFLOW_PROFILE.json; METAFLOW_HOME
 * defaults to ~/.metaflowconfig). name is without the prefix ("DEFAULT_DATASTORE").
 * CAS_OK with the value in buf, CAS_E_NOTFOUND if unset, CAS_NEED_OUTPUT if cap is short. */
CASDEF int cas_metaflow_config(const char *name, char *buf, size_t cap);
/* The datastore root Metaflow would use: METAFLOW_DATASTORE_SYSROOT_<NAME> when
 * METAFLOW_DEFAULT_DATASTORE names another datastore than local (a root without
 * "://", Azure's form, is taken as <name>://root), else the local rule
 * ($METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow, else the nearest .metaflow above
 * the working directory). CAS_E_NOTFOUND, with the reason in err, if there is none. */
CASDEF int cas_store_default_root(char *buf, size_t cap, char *err, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif /* CAS_NO_STORE */
#endif /* CAS_H */

/* ---- experimental: seen with CAS_EXPERIMENTAL ------------------------------
 * What 1.0 does not freeze yet, in the manner of LZ4F_STATIC_LINKING_ONLY: the
 * store's backend seam. Define CAS_EXPERIMENTAL before including cas.h to use
 * it (cas_cloud.h does); the implementation always sees it. */
#if (defined(CAS_EXPERIMENTAL) || defined(CAS_IMPLEMENTATION)) && !defined(CAS_NO_STORE) && !defined(CAS_H_EXPERIMENTAL)
#define CAS_H_EXPERIMENTAL
#ifdef __cplusplus
extern "C" {
#endif

/* ---- storage backends: the store's I/O seam ------------------------------
 *
 * Every store call above runs over this small interface, so that the same
 * logic (names, dedup, formats, verify, migrate, batch, streams, tasks) serves
 * a local directory (cas_backend_local), an object store (cas_cloud.h) or a
 * backend of your own, in the manner of stbi_io_callbacks / cgltf_file_options.
 *
 * Names are store-relative object names with '/' separators, already
 * validated by the store ("Flow/data/ab/abcd...", "Flow/12/step/3/0.data.json").
 * A blob's metadata is the sidecar JSON ({"cas_raw": false, "cas_version": 1});
 * where it lives (a _meta file, S3 user metadata) is the backend's business.
 * Every callback returns CAS_OK (or a count, where stated) or a negative status
 * and, on failure, writes the reason into msg[msgcap] (msgcap >= 64): no object
 * name (the store adds it), never a secret. CAS_E_NOTFOUND means "no such object".
 * Callbacks may be called from several threads at once on distinct objects. */

typedef struct cas_object_info {
    uint64_t size;    /* stored bytes */
    int64_t mtime;    /* seconds since the epoch; 0 if unknown */
    const char *meta; /* metadata JSON, NULL when the object has none; owned by the object */
    size_t meta_len;
} cas_object_info;

#define CAS_OPEN_HEAD 1 /* open: only the size and metadata are wanted; read is not called */

#define CAS_COMMIT_CREATE 1  /* only if absent: an existing object wins (*stored = 0) */
#define CAS_COMMIT_REPLACE 2 /* the bytes and the metadata replace the object's */
#define CAS_COMMIT_META 3    /* only the metadata changes; no bytes were written */

#define CAS_ENTRY_FILE 0  /* list: an object */
#define CAS_ENTRY_DIR 1   /* a folder (an object store's common prefix) */
#define CAS_ENTRY_OTHER 2 /* neither (a symlink, a device): the store skips it */

#define CAS_BACKEND_REMOTE 1 /* latency-bound: batch calls use more requests in flight */

/* One entry of a listing; name is relative to the listed folder. Return 0 to go
 * on, 1 to stop (the listing then returns CAS_OK), < 0 to fail with that code. */
typedef int (*cas_list_fn)(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime);
/* One object of a fetch: status CAS_OK with its metadata (meta NULL if none) and
 * bytes (data is the callee's, allocated with the fetch's allocator), or an error
 * and its reason. Called from the thread that called fetch, in any order. */
typedef void (*cas_fetch_fn)(void *ctx, size_t index, int status, const char *msg, const char *meta, size_t meta_len,
                             void *data, size_t len);

typedef struct cas_backend {
    void *user;       /* passed to every callback */
    const char *root; /* what messages call the store ("/data/.metaflow", "s3://bucket/mf") */
    unsigned flags;   /* CAS_BACKEND_* */
    /* Reading: an object's size and metadata, then its bytes from the start; read
     * gives *got == 0 at the end. The object's bytes and metadata are one version. */
    int (*open)(void *user, const char *name, unsigned flags, void **obj, cas_object_info *info, char *msg,
                size_t msgcap);
    int (*read)(void *user, void *obj, void *buf, size_t cap, size_t *got, char *msg, size_t msgcap);
    void (*close)(void *user, void *obj);
    /* Writing: create a writer for an object with this metadata (dir is the folder
     * it will live in; name is NULL when it is not known yet, as when the key is
     * the hash of bytes still to come), write the bytes, then commit it under its
     * name: the object becomes visible whole, with its metadata, or not at all.
     * abort drops an uncommitted writer; after commit (even a failed one) only
     * abort may follow, and it then only frees the writer. */
    int (*create)(void *user, const char *dir, const char *name, const char *meta, size_t meta_len, void **w, char *msg,
                  size_t msgcap);
    int (*write)(void *user, void *w, const void *p, size_t n, char *msg, size_t msgcap);
    int (*commit)(void *user, void *w, const char *name, int mode, int *stored, char *msg, size_t msgcap);
    void (*abort)(void *user, void *w);
    /* 1 if the object exists, 0 if not, < 0 on failure. */
    int (*exists)(void *user, const char *name, char *msg, size_t msgcap);
    /* The entries under a folder ("" = the root): with recursive == 0 its objects
     * and folders, else every object below it (names with '/'). Pages inside.
     * CAS_E_NOTFOUND if the folder does not exist (an object store's folder exists
     * when something is under it). */
    int (*list)(void *user, const char *dir, int recursive, cas_list_fn fn, void *ctx, char *msg, size_t msgcap);
    int (*remove)(void *user, const char *name, char *msg, size_t msgcap);
    /* Optional (NULL): */
    int (*gc)(void *user, uint64_t *removed, char *msg, size_t msgcap); /* drop what crashed writers left */
    int (*set_param)(void *user, int param, int64_t value);             /* CAS_E_ARG for a parameter it does not know */
    /* many objects whole, with requests in flight at once; returns when all are reported */
    int (*fetch)(void *user, size_t count, const char *const *names, const cas_allocator *alloc, cas_fetch_fn fn,
                 void *ctx, char *msg, size_t msgcap);
    void (*destroy)(void *user); /* after the last object and writer of it are gone */
} cas_backend;

/* A local datastore directory: blobs with _meta sidecar files, temp files and
 * rename under flock, never following a symlink below the root. */
CASDEF int cas_backend_local(cas_backend *out, const char *root, const cas_allocator *alloc, char *err, size_t errcap);
/* A store over any backend; the store owns it from here (destroy is called
 * when the store and every stream opened from it are closed), also on failure. */
CASDEF int cas_store_open_backend(cas_store **out, const cas_backend *backend, const cas_allocator *alloc, char *err,
                                  size_t errcap);
/* Removes a blob (the store itself never does; for tools that prune). 1 if it
 * was there, 0 if not. */
CASDEF int cas_store_delete(cas_store *s, const char *flow, const char *key, char *err, size_t errcap);

/* Backends by URL scheme, in the manner of sqlite's VFS: cas_store_open("mem://shelf")
 * calls the opener registered for "mem" with the whole URL and opens the store on the
 * backend it fills. Schemes: letters, digits, '+', '-', '.' (at most 15); registering a
 * scheme again replaces its opener, NULL removes it. Process-wide and thread-safe, at
 * most 16 schemes. A module built with cas.h names its registrar,
 * int f(int (*add)(const char *scheme, cas_backend_opener open)), in CAS_BACKEND_MODULE
 * (cas_cloud.h does, for s3 and azure): it runs once, before the first lookup or
 * registration, and adds its schemes where none is registered (a user's win). */
typedef int (*cas_backend_opener)(cas_backend *out, const char *url, const cas_allocator *alloc, char *err,
                                  size_t errcap);
CASDEF int cas_backend_register(const char *scheme, cas_backend_opener open);

#ifdef __cplusplus
}
#endif
#endif /* CAS_H_EXPERIMENTAL */
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
#include <unistd.h> /* getpid: a forked child's writer starts its own helper */
#endif
#ifdef __linux__
#include <sys/mman.h> /* madvise: the reader's huge-page hint, the store's locked pages */
#endif
#ifdef CAS_USE_OPENSSL
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
 * SHA-1 without pulling a crypto library in, and CAS_USE_OPENSSL uses one. */
#ifndef CAS_USE_OPENSSL
typedef struct cas__sha1 {
    uint32_t h[5];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
} cas__sha1;

#define CAS__ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define CAS__BE32(p) ((uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 | (uint32_t)(p)[3])

static void cas__sha1_blocks(uint32_t st[5], const unsigned char *p, size_t nblocks) {
    uint32_t w[16];
    while (nblocks--) {
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4];
        int t;
#define CAS__W(i) w[(i)&15]
#define CAS__MIX(i) (CAS__W(i) = CAS__ROL(CAS__W((i) + 13) ^ CAS__W((i) + 8) ^ CAS__W((i) + 2) ^ CAS__W(i), 1))
#define CAS__R(a, b, c, d, e, f, k, x)     \
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
#endif /* !CAS_USE_OPENSSL */

struct cas_hasher {
    cas_allocator alloc;
    int algo, finished;
#ifdef CAS_USE_OPENSSL
    EVP_MD_CTX *evp;
#else
    cas__sha1 sha;
#endif
#ifndef CAS_NO_XXH3
    void *xraw;        /* allocation holding the 64-byte aligned state */
    XXH3_state_t *xst; /* XXH3 wants 64-byte alignment, more than malloc promises */
#endif
};

#ifdef CAS_USE_OPENSSL
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

/* A hex digit's value, -1 if it is not one (cas_cloud.h's URL decoding, cas_pickle.h's text). */
CAS__UNUSED static int cas__hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
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
#ifdef CAS_USE_OPENSSL
    if (EVP_DigestInit_ex(h->evp, cas__sha1_md(), NULL) != 1) return CAS_E_NOMEM;
#else
    cas__sha1_init(&h->sha);
#endif
    return CAS_OK;
}

CASDEF void cas_hasher_free(cas_hasher *h) {
    cas_allocator a;
    if (!h) return;
#ifdef CAS_USE_OPENSSL
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
    if (!(h = (cas_hasher *)cas__obj_new(sizeof *h, alloc))) return CAS_E_NOMEM;
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
#ifdef CAS_USE_OPENSSL
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
#ifdef CAS_USE_OPENSSL
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
#ifdef CAS_USE_OPENSSL
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
#ifdef CAS_USE_OPENSSL
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
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'))) {
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
        } else if (depth) {                 /* inside an array: a value or ']' */
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

/* Writes code point c (at most U+10FFFF) as UTF-8 at d; returns its length (1-4). */
CAS__UNUSED static int cas__utf8_put(char *d, uint32_t c) {
    if (c < 0x80) return d[0] = (char)c, 1;
    if (c < 0x800) return d[0] = (char)(0xc0 | c >> 6), d[1] = (char)(0x80 | (c & 63)), 2;
    if (c < 0x10000)
        return d[0] = (char)(0xe0 | c >> 12), d[1] = (char)(0x80 | (c >> 6 & 63)), d[2] = (char)(0x80 | (c & 63)), 3;
    return d[0] = (char)(0xf0 | c >> 18), d[1] = (char)(0x80 | (c >> 12 & 63)), d[2] = (char)(0x80 | (c >> 6 & 63)),
           d[3] = (char)(0x80 | (c & 63)), 4;
}

/* The length of the valid UTF-8 sequence at s (overlong forms, surrogates and code
 * points past U+10FFFF are not), with its code point; 0 if there is none. */
CAS__UNUSED static int cas__utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0, k;
    uint32_t v = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    if (!len || (size_t)len > n) return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[k] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) || (v >= 0xd800 && v < 0xe000)) return 0;
    *cp = v;
    return len;
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
        o += (size_t)cas__utf8_put(buf + o, (uint32_t)cp);
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

/* One row per blob format: everything the reader, the writer and the store ask
 * of a format. A test build may append rows with CAS_EXTRA_FORMATS, in this order. */
typedef struct cas__format_row {
    int format;       /* CAS_FORMAT_* */
    const char *name; /* cas_format_name() */
    int codec;        /* what its bytes are in */
    int raw;          /* the sidecar's cas_raw */
    int64_t version;  /* the sidecar's cas_version */
    const char *meta; /* the sidecar byte for byte as Metaflow's json.dumps writes it; NULL = none */
    int writable;     /* put may write it (and migrate, unless raw) */
    int reads_as;     /* a blob in this format is already in that one (legacy is v1 without its sidecar) */
    const char *says; /* what the sidecar (or its absence) promised, for messages */
    int lost;         /* without a sidecar: a mismatch may mean a lost one */
} cas__format_row;

static const cas__format_row cas__formats[] = {
    {CAS_FORMAT_V1, "v1", CAS_CODEC_GZIP, 0, 1, "{\"cas_raw\": false, \"cas_version\": 1}", 1, CAS_FORMAT_V1,
     "metadata says cas_version 1 (gzip)", 0},
    {CAS_FORMAT_V2, "v2", CAS_CODEC_LZ4, 0, 2, "{\"cas_raw\": false, \"cas_version\": 2}", 1, CAS_FORMAT_V2,
     "metadata says cas_version 2 (LZ4 frame)", 0},
    {CAS_FORMAT_RAW, "raw", CAS_CODEC_RAW, 1, 1, "{\"cas_raw\": true, \"cas_version\": 1}", 1, CAS_FORMAT_RAW,
     "metadata says cas_raw", 0},
    {CAS_FORMAT_LEGACY, "legacy", CAS_CODEC_GZIP, 0, 0, NULL, 0, CAS_FORMAT_V1,
     "no metadata, so legacy gzip was assumed,", 1},
#ifdef CAS_EXTRA_FORMATS
    CAS_EXTRA_FORMATS
#endif
};
#define CAS__FORMAT_ROWS (sizeof cas__formats / sizeof cas__formats[0])

static const cas__format_row *cas__format_find(int format) {
    return (const cas__format_row *)cas__row_find(cas__formats, CAS__FORMAT_ROWS, sizeof cas__formats[0], format);
}

/* CAS_OK when put may write the format in this build; CAS_E_ARG or CAS_E_UNSUPPORTED. */
static int cas__format_writable(int64_t format) {
    const cas__format_row *f = format > 0 && format <= INT_MAX ? cas__format_find((int)format) : NULL;
    if (!f || !f->writable) return CAS_E_ARG;
    return cas_codec_available(f->codec) ? CAS_OK : CAS_E_UNSUPPORTED;
}

CASDEF const char *cas_format_name(int format) {
    const cas__format_row *f = cas__format_find(format);
    return f ? f->name : "?";
}

CASDEF int cas_format_codec(int format) {
    const cas__format_row *f = cas__format_find(format);
    return f ? f->codec : 0;
}

CASDEF int cas_meta_json(int format, char *buf, size_t cap, size_t *len) {
    const cas__format_row *f = cas__format_find(format);
    size_t l;
    if (len) *len = 0;
    if (!f || !f->meta) return CAS_E_ARG;
    l = strlen(f->meta);
    if (!buf || cap <= l) return CAS_NEED_OUTPUT;
    memcpy(buf, f->meta, l + 1);
    if (len) *len = l;
    return CAS_OK;
}

/* Metaflow's read rules; *vtok gets the version token for messages. */
static int cas__meta_rules(const cas__json *j, int *format, int64_t *version, size_t *vtok) {
    size_t raw, ver, i;
    int64_t v = -1;
    int r;
    *vtok = 0;
    if (!j->count || j->t[0].type != CAS__J_OBJ) return CAS_E_META;
    /* `meta and meta.get('cas_raw')`: an empty object is falsy, so {} falls through */
    raw = cas__json_get(j, 0, "cas_raw");
    if (raw && cas__json_truthy(j, raw))
        for (i = 0; i < CAS__FORMAT_ROWS; i++)
            if (cas__formats[i].raw && cas__formats[i].meta) {
                *format = cas__formats[i].format;
                return CAS_OK;
            }
    ver = cas__json_get(j, 0, "cas_version");
    if (!ver) return CAS_E_VERSION_MISSING;
    *vtok = ver;
    r = cas__json_int(j, ver, &v);
    if (r < 0) return CAS_E_VERSION_MISSING; /* a string or object cannot name a version */
    if (r > 0) {                             /* beyond int64: the sign comes from the text */
        *version = j->s[j->t[ver].start] == '-' ? INT64_MIN : INT64_MAX;
        return CAS_E_VERSION_UNKNOWN;
    }
    *version = v;
    if (v == -1) return CAS_E_VERSION_MISSING; /* Metaflow's own "missing" sentinel */
    for (i = 0; i < CAS__FORMAT_ROWS; i++)
        if (!cas__formats[i].raw && cas__formats[i].meta && cas__formats[i].version == v) {
            *format = cas__formats[i].format;
            return CAS_OK;
        }
    return CAS_E_VERSION_UNKNOWN;
}

/* The sidecars Metaflow (and this library) write, recognised without parsing. */
static int cas__meta_exact(const char *m, size_t n) {
    size_t i;
    for (i = 0; i < CAS__FORMAT_ROWS; i++)
        if (cas__formats[i].meta && strlen(cas__formats[i].meta) == n && !memcmp(m, cas__formats[i].meta, n))
            return cas__formats[i].format;
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
/* ---- parameters beyond the codecs' (the same bounds table, one check) ----- */

static int cas__hash_built(int64_t v) { return cas_hash_available((int)v) ? CAS_OK : CAS_E_UNSUPPORTED; }

static const cas__param_row cas__params[] = {
    CAS__PARAM(CAS_PARAM_HASH, CAS__FOR_WRITER | CAS__FOR_STORE, CAS_HASH_SHA1, CAS_HASH_XXH3, cas__hash_built),
    CAS__PARAM(CAS_PARAM_THREADS, CAS__FOR_WRITER, 1, 2, NULL),
    CAS__PARAM(CAS_PARAM_LIMIT, CAS__FOR_READER | CAS__FOR_STORE, 0, INT64_MAX, NULL),
    CAS__PARAM(CAS_PARAM_EXPECT_SIZE, CAS__FOR_READER, -1, INT64_MAX, NULL),
};

/* Any parameter's row: cas.h's, else the codecs'; NULL when none has the id. */
static const cas__param_row *cas__param_row_of(int id) {
    const cas__param_row *r = CAS__PARAM_FIND(cas__params, id);
    return r ? r : CAS__CODEC_PARAM(id);
}
/* ---- writer -------------------------------------------------------------- */

#define CAS__CODEC_PARAM_ROWS (sizeof cas__codec_params / sizeof cas__codec_params[0])

#ifndef CAS_NO_THREADS
typedef struct cas__hash_job {
    int algo;
    const void *data;
    size_t n;
    char key[CAS_KEY_BUF];
    int rc;
} cas__hash_job;

/* A writer's kept hashing thread for large inputs: a thread started per pack costs
 * 30-45 us on a small VM. Started on the first large pack, joined by
 * cas_writer_free. A forked child's copy of the writer has no such thread: pid
 * tells it to start its own. */
typedef struct cas__helper {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a job posted, or the job done: one waiter at a time */
    cas__hash_job *job; /* posted, until the helper takes it */
    int busy, stop;
    long pid; /* the process it runs in; 0: none */
} cas__helper;
#endif

struct cas_writer {
    cas_allocator alloc;
    int format, hash_algo, threads;
#ifndef CAS_NO_THREADS
    cas__helper helper;
#endif
    int64_t params[CAS__CODEC_PARAM_ROWS]; /* codec parameters, by row of cas__codec_params */
    unsigned params_set;                   /* bit i: params[i] was set */
    cas_codec *codec;
    int codec_id;
    cas_hasher *hasher;
    int hasher_algo;
    int done;
    char key[CAS_KEY_BUF];
};

/* Below this, the hash runs after the compression on the caller's thread. Handing
 * a mid-size hash (52 KB) to a kept helper won in a tight loop of packs (53 us vs
 * 75) but lost where packs come between file writes, as a save's do: waking the
 * helper's idle core and the cross-core traffic cost more than the hash (a one-blob
 * save of 52 KB: 0.81-0.97x PR #3090 with the handoff, 0.97x without). */
#define CAS__PARALLEL_MIN ((size_t)256 * 1024)

#ifndef CAS_NO_THREADS
static void *cas__helper_main(void *arg) {
    cas__helper *h = (cas__helper *)arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        cas__hash_job *j;
        while (!h->job && !h->stop) pthread_cond_wait(&h->cv, &h->mu);
        if (!h->job) break; /* stop */
        j = h->job, h->job = NULL;
        pthread_mutex_unlock(&h->mu);
        j->rc = cas_hash(j->algo, j->data, j->n, j->key);
        pthread_mutex_lock(&h->mu);
        h->busy = 0;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* 1 when w's helper runs in this process (started now if need be), 0 when it
 * cannot start: the caller hashes on its own thread. */
static int cas__helper_ready(cas_writer *w) {
    cas__helper *h = &w->helper;
    long pid = (long)getpid();
    if (h->pid == pid) return 1;
    /* none yet, or the parent's (after fork): its mutex may hold the parent's state */
    memset(h, 0, sizeof *h);
    if (pthread_mutex_init(&h->mu, NULL) != 0) return 0;
    if (pthread_cond_init(&h->cv, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        return 0;
    }
    if (pthread_create(&h->th, NULL, cas__helper_main, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        return 0;
    }
    h->pid = pid;
    return 1;
}

static void cas__helper_post(cas__helper *h, cas__hash_job *j) {
    pthread_mutex_lock(&h->mu);
    h->job = j, h->busy = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* 1 once the helper has done the posted job. 0 when it had not yet taken it: the job
 * is taken back and the caller does it itself. Between artifacts the helper's core
 * often sleeps, and waking it on a VM can take longer than the hash. */
static int cas__helper_finish(cas__helper *h) {
    int back;
    pthread_mutex_lock(&h->mu);
    back = h->job != NULL;
    if (back) h->job = NULL, h->busy = 0;
    while (h->busy) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return !back;
}

static void cas__helper_end(cas__helper *h) {
    if (!h->pid || h->pid != (long)getpid()) return; /* none, or the parent's */
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->th, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    h->pid = 0;
}
#endif

/* The writer's codec for its format, with every codec parameter set on the writer
 * that this codec takes (an LZ4 level on a gzip writer waits for an LZ4 format). */
static int cas__writer_codec(cas_writer *w) {
    int id = cas_format_codec(w->format), r;
    size_t i;
    if (w->codec && w->codec_id != id) {
        cas_codec_free(w->codec);
        w->codec = NULL;
    }
    if (!w->codec) {
        if ((r = cas_encoder_create(&w->codec, id, &w->alloc)) < 0) return r;
        w->codec_id = id;
        for (i = 0; i < CAS__CODEC_PARAM_ROWS; i++)
            if ((w->params_set >> i & 1) &&
                (r = cas_codec_set_param(w->codec, cas__codec_params[i].id, w->params[i])) < 0 && r != CAS_E_ARG)
                return r;
    }
    return cas_codec_reset(w->codec);
}

CASDEF int cas_writer_reset(cas_writer *w, int format) {
    int r;
    if (!w) return CAS_E_ARG;
    if (format) {
        if ((r = cas__format_writable(format)) < 0) return r;
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
#ifndef CAS_NO_THREADS
    cas__helper_end(&w->helper);
#endif
    cas_codec_free(w->codec);
    cas_hasher_free(w->hasher);
    a = w->alloc;
    cas__free(&a, w);
}

CASDEF int cas_writer_create(cas_writer **out, int format, const cas_allocator *alloc) {
    cas_writer *w;
    int r;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!(w = (cas_writer *)cas__obj_new(sizeof *w, alloc))) return CAS_E_NOMEM;
    w->hash_algo = CAS_HASH_DEFAULT, w->threads = 2;
    if ((r = cas_writer_reset(w, format ? format : CAS_FORMAT_V1)) < 0) {
        cas_writer_free(w);
        return r;
    }
    *out = w;
    return CAS_OK;
}

CASDEF int cas_writer_set_param(cas_writer *w, int param, int64_t v) {
    const cas__param_row *row = cas__param_row_of(param);
    int r;
    if (!w) return CAS_E_ARG;
    if ((r = cas__param_check(row, CAS__FOR_WRITER, v)) < 0) return r;
    if (param == CAS_PARAM_HASH) {
        w->hash_algo = (int)v;
    } else if (param == CAS_PARAM_THREADS) {
        w->threads = (int)v;
        return CAS_OK;
    } else {
        size_t i = (size_t)(row - cas__codec_params);
        w->params[i] = v, w->params_set |= 1u << i; /* for this codec and the next */
        if ((r = cas_codec_reset(w->codec)) < 0) return r;
        if ((r = cas_codec_set_param(w->codec, param, v)) < 0 && r != CAS_E_ARG) return r;
    }
    return cas_writer_reset(w, 0);
}

/* The blob alone, for a caller that has the key already: no hashing. The writer
 * is fresh from a reset. CAS_NEED_OUTPUT when cap is short. */
static int cas__writer_encode(cas_writer *w, const void *in, size_t n, void *out, size_t cap, size_t *len) {
    int rc = cas_codec_encode_all(w->codec, in, n, out, cap, len);
    return rc > 0 ? CAS_NEED_OUTPUT : rc; /* encode_all only stops short when out is too small */
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

CASDEF uint64_t cas_writer_total_in(const cas_writer *w) { return w ? cas_codec_total_in(w->codec) : 0; }
CASDEF uint64_t cas_writer_total_out(const cas_writer *w) { return w ? cas_codec_total_out(w->codec) : 0; }
CASDEF uint64_t cas_writer_size_in(const cas_writer *w) { return cas_writer_total_in(w); }
CASDEF uint64_t cas_writer_size_out(const cas_writer *w) { return cas_writer_total_out(w); }
CASDEF int cas_writer_format(const cas_writer *w) { return w ? w->format : 0; }

CASDEF size_t cas_pack_bound(int format, size_t n) { return cas_encode_bound(cas_format_codec(format), n); }

/* A mutex that compiles away under CAS_NO_THREADS. */
#ifndef CAS_NO_THREADS
typedef pthread_mutex_t cas__mutex;
static int cas__mu_init(cas__mutex *m) { return pthread_mutex_init(m, NULL) == 0 ? 0 : -1; }
static void cas__mu_lock(cas__mutex *m) { pthread_mutex_lock(m); }
static void cas__mu_unlock(cas__mutex *m) { pthread_mutex_unlock(m); }
static void cas__mu_destroy(cas__mutex *m) { pthread_mutex_destroy(m); }
#else
typedef int cas__mutex;
static int cas__mu_init(cas__mutex *m) {
    *m = 0;
    return 0;
}
static void cas__mu_lock(cas__mutex *m) { (void)m; }
static void cas__mu_unlock(cas__mutex *m) { (void)m; }
static void cas__mu_destroy(cas__mutex *m) { (void)m; }
#endif

/* Runs fn(arg) on the caller's thread and on threads - 1 more (threads <= 0: 2,
 * at most 16); returns when all have. Without threads, on the caller's alone. */
static void cas__workers(void *arg, int threads, void *(*fn)(void *)) {
#ifndef CAS_NO_THREADS
    pthread_t th[16];
    int i, started = 0;
    if (threads <= 0) threads = 2;
    if (threads > 16) threads = 16;
    for (i = 1; i < threads; i++) /* a thread that cannot start leaves its share to the others */
        if (pthread_create(&th[started], NULL, fn, arg) == 0) started++;
    fn(arg);
    for (i = 0; i < started; i++) pthread_join(th[i], NULL);
#else
    (void)threads;
    fn(arg);
#endif
}

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
    /* the hash beside the compression, on the writer's kept helper */
    if (w->threads > 1 && n >= CAS__PARALLEL_MIN && cas__helper_ready(w)) {
        cas__hash_job job;
        job.algo = w->hash_algo, job.data = in, job.n = n, job.rc = CAS_E_STATE;
        cas__helper_post(&w->helper, &job);
        r = cas_codec_encode_all(w->codec, in, n, out, cap, &len);
        if (!cas__helper_finish(&w->helper)) job.rc = cas_hash(job.algo, in, n, job.key);
        if (r == CAS_DONE && job.rc < 0) r = job.rc;
        memcpy(w->key, job.key, CAS_KEY_BUF);
        hashed = 1;
    }
#endif
    if (!hashed) { /* the writer's own hasher: its context is already set up */
        r = cas_codec_encode_all(w->codec, in, n, out, cap, &len);
        if (r == CAS_DONE && (r = cas_hasher_update(w->hasher, in, n)) == CAS_OK)
            r = cas_hasher_final(w->hasher, w->key);
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
    const cas__format_row *frow;
    const cas__codec_row *crow;
    cas_codec *codecs[CAS__CODEC_ROWS]; /* by row of cas__codecs, created on first use, reused */
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
    char msg[CAS_MESSAGE_MAX];
    char reason[400]; /* msg without Metaflow's "Could not unpack artifact '...': " */
};

CASDEF int cas_reader_create(cas_reader **out, const cas_allocator *alloc) {
    cas_reader *r;
    if (!out) return CAS_E_ARG;
    *out = r = (cas_reader *)cas__obj_new(sizeof *r, alloc);
    if (!r) return CAS_E_NOMEM;
    r->expect_size = -1;
    return CAS_OK;
}

CASDEF void cas_reader_free(cas_reader *r) {
    cas_allocator a;
    size_t i;
    if (!r) return;
    for (i = 0; i < CAS__CODEC_ROWS; i++) cas_codec_free(r->codecs[i]);
    cas_hasher_free(r->hasher);
    a = r->alloc;
    cas__free(&a, r->name);
    cas__free(&a, r);
}

CASDEF void cas_reader_free_buffer(cas_reader *r, void *p) {
    if (r) cas__free(&r->alloc, p);
}

CASDEF int cas_reader_set_param(cas_reader *r, int param, int64_t v) {
    int rc;
    if (!r) return CAS_E_ARG;
    if ((rc = cas__param_check(cas__param_row_of(param), CAS__FOR_READER, v)) < 0) return rc;
    switch (param) {
    case CAS_PARAM_LIMIT: r->limit = (uint64_t)v; break;
    case CAS_PARAM_EXPECT_SIZE: r->expect_size = v; break;
    case CAS_PARAM_STRICT: r->strict = v != 0; break;
    case CAS_PARAM_GZIP_BACKEND: r->backend = (int)v; break;
    default: return CAS_E_ARG;
    }
    return CAS_OK;
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

/* The name messages give the blob, kept in the reader. */
static int cas__reader_name(cas_reader *r, const char *name) {
    size_t l = name ? strlen(name) : 0;
    if (!name) {
        cas__free(&r->alloc, r->name);
        r->name = NULL, r->name_cap = 0;
        return CAS_OK;
    }
    if (l + 1 > r->name_cap) {
        cas__free(&r->alloc, r->name);
        r->name = (char *)cas__alloc(&r->alloc, l + 1);
        r->name_cap = r->name ? l + 1 : 0;
        if (!r->name) return CAS_E_NOMEM;
    }
    memcpy(r->name, name, l + 1);
    return CAS_OK;
}

/* The key the decoded bytes must hash to, and a hasher for it. */
static int cas__reader_key(cas_reader *r, const char *key) {
    int algo = 0, rc;
    if (cas_key_check(key, strlen(key), &algo) < 0) {
        cas__fmt(r->msg, sizeof r->msg, "Invalid key for '%s': not 40 or 32 lowercase hex digits", cas__rname(r));
        return CAS_E_KEY;
    }
    if (!cas_hash_available(algo)) {
        cas__fmt(r->msg, sizeof r->msg, "Cannot verify '%s': its hash is not compiled in", cas__rname(r));
        return CAS_E_UNSUPPORTED;
    }
    memcpy(r->key, key, cas_key_length(algo) + 1);
    if (r->hasher && r->hash_algo != algo) {
        cas_hasher_free(r->hasher);
        r->hasher = NULL;
    }
    if (r->hasher) return cas_hasher_reset(r->hasher);
    if ((rc = cas_hasher_create(&r->hasher, algo, &r->alloc)) < 0) return rc;
    r->hash_algo = algo;
    return CAS_OK;
}

/* The format a sidecar names, by Metaflow's rules and in Metaflow's words. */
static int cas__reader_sidecar(cas_reader *r, const char *meta, size_t meta_len, int *format) {
    cas__json j;
    int64_t v = 0;
    size_t vt = 0;
    int rc;
    if (!meta) return *format = CAS_FORMAT_LEGACY, CAS_OK;
    if ((*format = cas__meta_exact(meta, meta_len)) != 0) return CAS_OK; /* what Metaflow writes: no parse */
    memset(&j, 0, sizeof j); /* an oversized sidecar is refused unparsed, and j freed all the same */
    rc = meta_len > 65536 ? CAS_E_JSON : cas__json_parse(&j, meta, meta_len, &r->alloc);
    if (rc < 0 && rc != CAS_E_NOMEM) {
        cas__fmt(r->msg, sizeof r->msg, "Could not extract encoding version for '%s': metadata is not valid JSON (%s)",
                 cas__rname(r), meta_len > 65536 ? "over 64 KiB" : j.err);
        rc = CAS_E_META;
    } else if (rc >= 0) {
        rc = cas__meta_rules(&j, format, &v, &vt);
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
    }
    cas__json_free(&j);
    return rc;
}

CASDEF int cas_reader_begin(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key) {
    cas_codec **c;
    int rc;
    if (!r) return CAS_E_ARG;
    r->state = 0, r->format = 0, r->msg[0] = 0, r->reason[0] = 0;
    r->total_in = r->total_out = 0;
    r->sniff_len = r->sniff_fed = 0;
    r->key[0] = 0;
    if ((rc = cas__reader_name(r, name)) < 0 || (key && (rc = cas__reader_key(r, key)) < 0) ||
        (rc = cas__reader_sidecar(r, meta, meta_len, &r->format)) < 0)
        return r->state = rc;
    r->frow = cas__format_find(r->format);
    r->codec_id = r->frow->codec, r->crow = cas__codec_find(r->codec_id);
    if (!cas_codec_available(r->codec_id)) {
        cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': the %s codec is not compiled in",
                 cas__rname(r), cas_codec_name(r->codec_id));
        return r->state = CAS_E_UNSUPPORTED;
    }
    c = &r->codecs[r->crow - cas__codecs];
    if (!*c && (rc = cas_decoder_create(c, r->codec_id, &r->alloc)) < 0) return r->state = rc;
    if ((rc = cas_codec_reset(*c)) < 0) return r->state = rc;
    if ((rc = cas_codec_set_param(*c, CAS_PARAM_STRICT, r->strict)) < 0) return r->state = rc;
    if ((rc = cas_codec_set_param(*c, CAS_PARAM_GZIP_BACKEND, r->backend)) < 0) return r->state = rc;
    r->state = r->crow->sniff ? 1 : 2;
    return CAS_OK;
}

/* Checks the first bytes against what the sidecar promised. 0 = decided and
 * consistent, 1 = need more bytes, < 0 = failed. */
static int cas__reader_decide(cas_reader *r, int end) {
    const cas__codec_row *c = r->crow;
    int s = cas_sniff(r->sniff, r->sniff_len), foreign;
    char rep[40], ours[64];
    if (!c->sniff) return 0;
    if (r->sniff_len < 4 && !end) return 1; /* decide on 4 bytes, as the one-shot path does */
    if (s == c->sniff || (s == CAS_SNIFF_EMPTY && c->empty_ok)) return 0;
    if ((s == CAS_SNIFF_EMPTY || s == CAS_SNIFF_SHORT) && c->cut_magic)
        return cas__rfail(r, CAS_E_TRUNCATED, "%s", c->cut_magic);
    foreign = s == CAS_SNIFF_GZIP || s == CAS_SNIFF_LZ4 || s == CAS_SNIFF_ZSTD;
    if (c->not_ours) { /* the decoder's own words, as Python's gzip shows a 2-byte magic: b'ra' */
        cas_bytes_repr(r->sniff, CAS__MIN(r->sniff_len, 2), rep, sizeof rep);
        cas__fmt(ours, sizeof ours, c->not_ours, rep);
        if (!foreign && !r->frow->lost) return 0; /* the decoder says it */
    } else {
        cas_bytes_repr(r->sniff, r->sniff_len, rep, sizeof rep);
    }
    if (r->frow->lost && foreign)
        return cas__rfail(r, CAS_E_MISMATCH, "%s but the bytes are %s (a blob whose _meta sidecar was lost?)",
                          r->frow->says, cas_sniff_name(s));
    if (r->frow->lost)
        return cas__rfail(r, CAS_E_MISMATCH, "%s%s%s but the bytes are %s (a raw blob whose _meta sidecar was lost?)",
                          c->not_ours ? ours : "", c->not_ours ? "; " : "", r->frow->says, cas_sniff_name(s));
    if (c->not_ours) return cas__rfail(r, CAS_E_MISMATCH, "%s but the bytes are %s", r->frow->says, cas_sniff_name(s));
    return cas__rfail(r, CAS_E_MISMATCH, "%s but the bytes are %s (%s)", r->frow->says, cas_sniff_name(s), rep);
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
    cas_codec *c = r->codecs[r->crow - cas__codecs];
    size_t room = cap;
    int rc;
    if (r->limit && (uint64_t)room > r->limit - r->total_out + 1) room = (size_t)(r->limit - r->total_out + 1);
    rc = cas_codec_update(c, in, n, used, out, room, made, end);
    r->total_in += *used;
    if (rc < 0) return cas__rfail(r, rc, "%s", cas_codec_message(c)[0] ? cas_codec_message(c) : cas_strerror(rc));
    if (r->limit && r->total_out + *made > r->limit) {
        *made = (size_t)(r->limit - r->total_out); /* report no byte past the limit */
        return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes", (unsigned long long)r->limit);
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
        rc = cas__reader_run(r, r->sniff + r->sniff_fed, r->sniff_len - r->sniff_fed, &u, op, cap, &m, end && i == n);
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

/* The most n bytes of the reader's codec can decode to: a stated size beyond it is a lie. */
static uint64_t cas__reader_most(const cas_reader *r, size_t n) { return (uint64_t)n * r->crow->ratio + 65536; }

CASDEF int cas_reader_size_hint(cas_reader *r, const void *blob, size_t n, uint64_t *size) {
    int rc;
    if (!r || !size) return CAS_E_ARG;
    *size = 0;
    if (r->state <= 0) return r->state < 0 ? r->state : CAS_E_STATE;
    rc = cas_decoded_size_hint(r->codec_id, blob, n, size);
    if (rc == CAS_OK && *size > cas__reader_most(r, n)) {
        *size = 0;
        return CAS_E_NOTFOUND;
    }
    return rc;
}

CASDEF int cas_reader_unpack_into(cas_reader *r, const void *blob, size_t n, void *dst, size_t cap, size_t *out_len) {
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
    rc = cas_codec_decode_all(r->codecs[r->crow - cas__codecs], ip, n, dst, room, &len);
    r->total_in = n;
    if (rc < 0) {
        const char *m = cas_codec_message(r->codecs[r->crow - cas__codecs]);
        return cas__rfail(r, rc, "%s", m[0] ? m : cas_strerror(rc));
    }
    if (r->limit && (uint64_t)len > r->limit)
        return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes", (unsigned long long)r->limit);
    if (rc != CAS_DONE) {
        if (room < cap) /* output stopped at the limit, not at the buffer's end */
            return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes",
                              (unsigned long long)r->limit);
        /* may be retried with a bigger buffer */
        r->state = r->crow->sniff ? 1 : 2, r->sniff_len = r->sniff_fed = 0;
        r->total_in = 0;
        cas_codec_reset(r->codecs[r->crow - cas__codecs]);
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
        if (cas_reader_size_hint(r, blob, n, &hint) == CAS_OK && hint <= (uint64_t)(size_t)-1) *out_len = (size_t)hint;
    }
    return rc;
}

/* A big output buffer from malloc is faulted in 4 KiB at a time: asking for
 * huge pages halves the cost of decoding 64 MiB into fresh memory. */
static void cas__hint_huge(void *p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
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
    int rc, enforced, framed;
    uint64_t most;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!r || !out || (!blob && n)) return CAS_E_ARG;
    if (r->state < 0) return r->state;
    if (r->state != 1 && r->state != 2) return CAS_E_STATE;
    most = cas__reader_most(r, n);
    /* a size field the decoder holds the stream to can be refused now; others are hints */
    framed = r->crow->sniff && cas_sniff(blob, n) == r->crow->sniff;
    enforced = r->crow->hint_enforced && framed;
    if (cas_decoded_size_hint(r->codec_id, blob, n, &hint) == CAS_OK) {
        if (enforced && hint > most)
            return cas__rfail(r, CAS_E_CORRUPT,
                              "the content size field of %s (%llu bytes) is more than %lu bytes of it can hold",
                              cas_sniff_name(r->crow->sniff), (unsigned long long)hint, (unsigned long)n);
        if (hint > most) hint = 0;
    } else {
        hint = 0;
    }
    if (r->limit && hint > r->limit) {
        if (enforced)
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
            cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': out of memory (%llu bytes)", cas__rname(r),
                     (unsigned long long)cap);
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
/* ---- many blobs at once ---------------------------------------------------- */

typedef struct cas__job {
    size_t weight, job;
} cas__job;

typedef struct cas__many {
    size_t count, jobs, next, first_i; /* jobs: count, or 2 * count when large items split */
    const void *const *in;
    const size_t *in_len, *cap;
    void *const *out;
    size_t *out_len;
    char *keys;               /* pack: written */
    const char *const *vkeys; /* unpack: checked */
    const int *formats;       /* unpack */
    const int *fds;           /* unpack from files */
    int format, algo, inner, first_rc;
    int *status;
    int *hash_rc;    /* pack, split: job count + i hashes large item i (its status here) */
    cas__job *order; /* the jobs as workers take them, largest first; NULL: index order */
    cas__mutex mu;
} cas__many;

static int cas__job_cmp(const void *a, const void *b) {
    const cas__job *x = (const cas__job *)a, *y = (const cas__job *)b;
    if (x->weight != y->weight) return x->weight > y->weight ? -1 : 1;
    return x->job < y->job ? -1 : x->job > y->job;
}

/* Largest first (LPT): the item that takes longest starts first, and the small ones
 * fill in on the other cores, rather than a large item taken last holding one core
 * while the rest wait. A job weighs its output room (a decode's size) or input
 * length. Without memory for the order, index order: the same results, slower. */
static void cas__many_order(cas__many *m) {
    size_t j;
    if (m->jobs < 2 || !(m->order = (cas__job *)CAS_MALLOC(m->jobs * sizeof *m->order))) return;
    for (j = 0; j < m->jobs; j++) {
        size_t i = j % m->count;
        m->order[j].weight = m->out ? m->cap[i] : m->in_len[i];
        m->order[j].job = j;
    }
    qsort(m->order, m->jobs, sizeof *m->order, cas__job_cmp);
}

static size_t cas__many_take(cas__many *m) {
    size_t i;
    cas__mu_lock(&m->mu);
    i = m->next++;
    cas__mu_unlock(&m->mu);
    return m->order && i < m->jobs ? m->order[i].job : i;
}

static void cas__many_done(cas__many *m, size_t i, int rc) {
    if (m->status) m->status[i] = rc;
    if (rc == CAS_OK) return;
    cas__mu_lock(&m->mu);
    if (m->first_rc == CAS_OK || i < m->first_i) m->first_rc = rc, m->first_i = i;
    cas__mu_unlock(&m->mu);
}

/* One worker's share of a pack: its own writer, reused item after item. */
static void *cas__pack_worker(void *arg) {
    cas__many *m = (cas__many *)arg;
    cas_writer *w = NULL;
    size_t i, j;
    int made = cas_writer_create(&w, m->format, NULL);
    if (made == CAS_OK) made = cas_writer_set_param(w, CAS_PARAM_THREADS, m->inner);
    if (made == CAS_OK && m->algo) made = cas_writer_set_param(w, CAS_PARAM_HASH, m->algo);
    while ((j = cas__many_take(m)) < m->jobs) {
        char *key;
        size_t len = 0;
        int rc = made, split;
        i = j < m->count ? j : j - m->count;
        key = m->keys ? m->keys + i * CAS_KEY_BUF : NULL;
        /* a large item's hash is a job of its own, so both cores share the largest items */
        split = m->hash_rc && m->in_len[i] >= CAS__PARALLEL_MIN;
        if (rc == CAS_OK && !m->in[i] && m->in_len[i]) rc = CAS_E_ARG;
        if (j >= m->count) {
            if (split) m->hash_rc[i] = rc == CAS_OK ? cas_hash(w->hash_algo, m->in[i], m->in_len[i], key) : rc;
            continue;
        }
        if (rc == CAS_OK) {
            if (m->out && key && !split) {
                rc = cas_pack(w, m->in[i], m->in_len[i], m->out[i], m->cap[i], &len, key);
            } else if (m->out) {
                if ((rc = cas_writer_reset(w, 0)) == CAS_OK)
                    rc = cas__writer_encode(w, m->in[i], m->in_len[i], m->out[i], m->cap[i], &len);
            } else {
                rc = cas_hash(w->hash_algo, m->in[i], m->in_len[i], key);
            }
        }
        if (m->out_len) m->out_len[i] = len;
        cas__many_done(m, i, rc);
    }
    cas_writer_free(w);
    return NULL;
}

/* One worker's share of an unpack: its own reader, reused. */
static void *cas__unpack_worker(void *arg) {
    cas__many *m = (cas__many *)arg;
    cas_reader *r = NULL;
    size_t i;
    int made = cas_reader_create(&r, NULL);
    while ((i = cas__many_take(m)) < m->count) {
        const cas__format_row *f = cas__format_find(m->formats[i]);
        int rc = f ? made : CAS_E_ARG;
        const char *meta = f ? f->meta : NULL; /* a format without a sidecar (legacy) is read as such */
        size_t meta_len = meta ? strlen(meta) : 0;
        uint64_t size = 0;
        m->out_len[i] = 0;
        /* sizes alone: a size the blob states is the answer (what a decode into no
         * room ends with), without setting up its decoder; the rest are decoded so */
        if (rc == CAS_OK && !m->out && cas_reader_begin(r, meta, meta_len, NULL, NULL) == CAS_OK &&
            cas_reader_size_hint(r, m->in[i], m->in_len[i], &size) == CAS_OK && size && size <= (size_t)-1) {
            m->out_len[i] = (size_t)size;
            rc = CAS_NEED_OUTPUT;
        } else if (rc == CAS_OK) {
            rc = cas_reader_decode(r, meta, meta_len, NULL, m->vkeys ? m->vkeys[i] : NULL, m->in[i], m->in_len[i],
                                   m->out ? m->out[i] : NULL, m->out ? m->cap[i] : 0, &m->out_len[i]);
        }
        cas__many_done(m, i, rc);
    }
    cas_reader_free(r);
    return NULL;
}

static int cas__many_run(cas__many *m, int threads, void *(*fn)(void *)) {
    if (threads <= 0) threads = 2;
    /* spare threads go inside the items (cas_pack's hash beside its compression) */
    m->inner = m->count == 1 && threads > 1 ? 2 : 1;
    if (!m->jobs) m->jobs = m->count;
    if ((size_t)threads > m->count) threads = (int)(m->count ? m->count : 1);
    if (!m->count) return CAS_OK;
    if (cas__mu_init(&m->mu) < 0) return CAS_E_NOMEM;
    if (threads > 1) cas__many_order(m);
    cas__workers(m, threads, fn);
    if (m->order) CAS_FREE(m->order);
    cas__mu_destroy(&m->mu);
    return m->first_rc;
}

CASDEF int cas_pack_many(int format, int algo, size_t count, const void *const *in, const size_t *in_len,
                         void *const *out, const size_t *cap, size_t *out_len, char *keys, int *status, int threads) {
    cas__many m;
    int rc;
    if (count && (!in || !in_len || (!out && !keys) || (out && (!cap || !out_len)))) return CAS_E_ARG;
    memset(&m, 0, sizeof m);
    m.format = format, m.algo = algo, m.count = count, m.in = in, m.in_len = in_len, m.out = out, m.cap = cap;
    m.out_len = out_len, m.keys = keys, m.status = status;
    if (out && keys && count > 1 && threads != 1) { /* threads <= 0: the default, 2 */
        size_t i;
        for (i = 0; i < count && in_len[i] < CAS__PARALLEL_MIN; i++) {
        }
        /* without the room for the hashes' statuses, items are not split */
        if (i < count && (m.hash_rc = (int *)CAS_MALLOC(count * sizeof *m.hash_rc)) != NULL) {
            memset(m.hash_rc, 0, count * sizeof *m.hash_rc);
            m.jobs = 2 * count;
        }
    }
    rc = cas__many_run(&m, threads, cas__pack_worker);
    if (m.hash_rc) { /* the workers are done: a hash's failure joins its item's */
        size_t i;
        for (i = 0; i < count; i++) {
            if (m.hash_rc[i] == CAS_OK || (status && status[i] < 0)) continue;
            if (status) status[i] = m.hash_rc[i];
            if (rc == CAS_OK || i < m.first_i) rc = m.hash_rc[i], m.first_i = i;
        }
        CAS_FREE(m.hash_rc);
    }
    return rc;
}

CASDEF int cas_unpack_many(size_t count, const int *format, const void *const *in, const size_t *in_len,
                           void *const *out, const size_t *cap, size_t *out_len, const char *const *keys, int *status,
                           int threads) {
    cas__many m;
    if (count && (!format || !in || !in_len || !out_len || (out && !cap))) return CAS_E_ARG;
    memset(&m, 0, sizeof m);
    m.count = count, m.formats = format, m.in = in, m.in_len = in_len, m.out = out, m.cap = cap;
    m.out_len = out_len, m.vkeys = keys, m.status = status;
    /* sizes alone cost less than starting a thread */
    return cas__many_run(&m, out ? threads : 1, cas__unpack_worker);
}
/* ---- the store ----------------------------------------------------------- */
/* Layers, top down; each may call only those below it:
 *   store calls (put/get/verify/migrate/batch/streams/tasks)  policy: names, dedup, formats
 *     -> the backend seam (cas_backend)                       I/O: objects, metadata, listings
 *        -> local backend (this file) / cas_cloud.h            files + sidecars / HTTP
 *   task parsing and attempt picking take bytes, never I/O. */
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

/* The local backend's I/O goes through these, so tests can inject failures. */
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
#define CAS__META_FILE_MAX ((size_t)64 << 10)
#define CAS__MSG 400 /* a backend's reason */
/* The reason a backend gave, or the status's name when it gave none (a callback's own failure). */
#define CAS__WHY(rc, msg) ((msg)[0] ? (msg) : cas_strerror(rc))

static int cas__serr(char *err, size_t cap, int code, const char *fmt, ...) {
    va_list ap;
    if (cap > CAS_MESSAGE_MAX) cap = CAS_MESSAGE_MAX; /* the same words whatever the caller's buffer */
    if (err && cap) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}
/* ---- names ---- */

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

CASDEF int cas_part_check(const char *name) {
    if (cas_name_check(name) < 0 || !strcmp(name, "_meta") || !strcmp(name, "data")) return CAS_E_NAME;
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
/* ---- POSIX helpers (the local backend, plain files) ---- */

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

/* read() of a plain file, restarted on EINTR: bytes, 0 at the end, or -errno. */
static ssize_t cas__read_fd(int fd, void *buf, size_t cap) {
    for (;;) {
        ssize_t r = CAS_SYS_READ(fd, buf, CAS__MIN(cap, CAS__CHUNK_MAX));
        if (r >= 0) return r;
        if (errno != EINTR) return -(ssize_t)(errno ? errno : EIO);
    }
}

/* ---- the local backend ---------------------------------------------------- */

typedef struct cas__local {
    cas_allocator alloc;
    int rootfd, fsync_on;
    unsigned long seq;
    char *root;
    cas__mutex mu;
} cas__local;

typedef struct cas__lobj { /* an object open for reading */
    int fd;
    unsigned char *meta;
} cas__lobj;

typedef struct cas__lw { /* a writer: a temp file in `dir`, renamed at commit */
    int dirfd, tfd;
    char tmp[160], base[128];
    size_t meta_len;
    char meta[1]; /* the sidecar's bytes, allocated to size */
} cas__lw;

/* An errno as a backend failure; ENOENT is "not found" only where reading. */
static int cas__lfail(char *msg, size_t cap, int e) {
    cas__fmt(msg, cap, "%s", cas__errno_text(e));
    return e == ENOENT ? CAS_E_NOTFOUND : e == ENOMEM ? CAS_E_NOMEM : CAS_E_IO;
}
static int cas__lfail_w(char *msg, size_t cap, int e) {
    int rc = cas__lfail(msg, cap, e);
    return rc == CAS_E_NOTFOUND ? CAS_E_IO : rc;
}

/* Opens the folder `path` (its first len bytes; "" is the root) below the root,
 * component by component, never through a symlink; creates missing ones on demand. */
static int cas__local_dir(cas__local *l, const char *path, size_t len, int create) {
    int fd = -1;
    size_t i = 0;
    char part[256];
    if (!len) return openat(l->rootfd, ".", CAS__DIR_FLAGS);
    while (i < len) {
        size_t j = i;
        int nfd, e;
        while (j < len && path[j] != '/') j++;
        if (j == i || j - i > 255) {
            if (fd >= 0) close(fd);
            errno = EINVAL;
            return -1;
        }
        memcpy(part, path + i, j - i), part[j - i] = 0;
        nfd = cas__open_dir(fd >= 0 ? fd : l->rootfd, part, create);
        e = errno;
        if (fd >= 0) close(fd);
        errno = e;
        if ((fd = nfd) < 0) return -1;
        i = j + 1;
    }
    return fd;
}

/* The folder holding `name`, and the name's last part. */
static int cas__local_parent(cas__local *l, const char *name, int create, const char **base) {
    const char *slash = strrchr(name, '/');
    *base = slash ? slash + 1 : name;
    return cas__local_dir(l, name, slash ? (size_t)(slash - name) : 0, create);
}

static int cas__local_open(void *u, const char *name, unsigned flags, void **obj, cas_object_info *info, char *msg,
                           size_t cap) {
    cas__local *l = (cas__local *)u;
    const char *base;
    char meta_name[300];
    int dfd, fd, mfd, e = 0;
    unsigned char *meta = NULL;
    size_t ml = 0;
    struct stat st;
    cas__lobj *o;
    (void)flags;
    *obj = NULL;
    if ((dfd = cas__local_parent(l, name, 0, &base)) < 0) return cas__lfail(msg, cap, errno);
    snprintf(meta_name, sizeof meta_name, "%s_meta", base);
    cas__flock(dfd, LOCK_SH);
    fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    e = errno;
    mfd = fd >= 0 ? openat(dfd, meta_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (fd >= 0 && mfd < 0 && errno != ENOENT) {
        e = errno;
        close(fd);
        fd = -1;
    }
    if (mfd >= 0) {
        e = cas__read_all(mfd, &l->alloc, CAS__META_FILE_MAX, &meta, &ml);
        close(mfd);
        if (e) {
            close(fd);
            fd = -1;
        }
    }
    cas__flock(dfd, LOCK_UN);
    close(dfd);
    if (fd < 0) {
        cas__free(&l->alloc, meta);
        if (e == EFBIG) {
            cas__fmt(msg, cap, "its _meta sidecar is over 64 KiB");
            return CAS_E_IO;
        }
        return cas__lfail(msg, cap, e);
    }
    if (!(o = (cas__lobj *)cas__alloc(&l->alloc, sizeof *o))) {
        close(fd);
        cas__free(&l->alloc, meta);
        return cas__lfail(msg, cap, ENOMEM);
    }
    o->fd = fd, o->meta = meta;
    memset(info, 0, sizeof *info);
    if (fstat(fd, &st) == 0) info->size = (uint64_t)st.st_size, info->mtime = (int64_t)st.st_mtime;
    info->meta = (const char *)meta, info->meta_len = ml;
    *obj = o;
    return CAS_OK;
}

static int cas__local_read(void *u, void *obj, void *buf, size_t cap, size_t *got, char *msg, size_t msgcap) {
    ssize_t r = cas__read_fd(((cas__lobj *)obj)->fd, buf, cap);
    (void)u;
    *got = 0;
    if (r < 0) {
        cas__fmt(msg, msgcap, "%s", strerror((int)-r));
        return CAS_E_IO;
    }
    *got = (size_t)r;
    return CAS_OK;
}

static void cas__local_close(void *u, void *obj) {
    cas__local *l = (cas__local *)u;
    cas__lobj *o = (cas__lobj *)obj;
    if (!o) return;
    close(o->fd);
    cas__free(&l->alloc, o->meta);
    cas__free(&l->alloc, o);
}

/* Creates an exclusive temp file in dirfd; its name goes into name. */
static int cas__tmp_open(cas__local *l, int dirfd, const char *base, char *name, size_t cap) {
    int tries;
    for (tries = 0; tries < 100; tries++) {
        unsigned long seq;
        struct timespec ts;
        int fd;
        cas__mu_lock(&l->mu);
        seq = ++l->seq;
        cas__mu_unlock(&l->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(name, cap, ".%s%s%ld-%lu-%lx", base, CAS__TMP_TAG, (long)getpid(), seq,
                 (unsigned long)ts.tv_nsec ^ (unsigned long)(uintptr_t)name);
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* Writes bytes into a new temp file; closes it. 0 or an errno (the file is removed). */
static int cas__tmp_write(cas__local *l, int dirfd, const char *base, const void *p, size_t n, char *name, size_t cap) {
    int fd = cas__tmp_open(l, dirfd, base, name, cap), e;
    if (fd < 0) return errno;
    e = cas__write_all(fd, p, n);
    if (!e && l->fsync_on && CAS_SYS_FSYNC(fd) < 0) e = errno ? errno : EIO;
    if (close(fd) < 0 && !e) e = errno ? errno : EIO;
    if (e) unlinkat(dirfd, name, 0);
    return e;
}

static int cas__local_create(void *u, const char *dir, const char *name, const char *meta, size_t ml, void **out,
                             char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    cas__lw *w;
    const char *base = name ? strrchr(name, '/') : NULL;
    *out = NULL;
    if (!(w = (cas__lw *)cas__calloc(&l->alloc, sizeof *w + ml))) return cas__lfail(msg, cap, ENOMEM);
    w->tfd = -1;
    if (ml) memcpy(w->meta, meta, ml);
    w->meta_len = ml;
    snprintf(w->base, sizeof w->base, "%s", name ? (base ? base + 1 : name) : "stream");
    if ((w->dirfd = cas__local_dir(l, dir, strlen(dir), 1)) < 0) {
        int e = errno;
        cas__free(&l->alloc, w);
        return cas__lfail_w(msg, cap, e);
    }
    *out = w;
    return CAS_OK;
}

static int cas__local_write(void *u, void *wp, const void *p, size_t n, char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    cas__lw *w = (cas__lw *)wp;
    int e;
    if (w->tfd < 0 && (w->tfd = cas__tmp_open(l, w->dirfd, w->base, w->tmp, sizeof w->tmp)) < 0) {
        e = errno;
        w->tmp[0] = 0;
        return cas__lfail_w(msg, cap, e);
    }
    if ((e = cas__write_all(w->tfd, p, n)) != 0) {
        cas__fmt(msg, cap, "%s", strerror(e));
        return CAS_E_IO;
    }
    return CAS_OK;
}

/* CREATE: sidecar first, then the blob, under the folder's lock; an existing blob
 * wins. REPLACE: blob first, then sidecar (a crash between the two leaves bytes
 * whose magic contradicts the sidecar, which readers report and cas_store_migrate
 * repairs; readers of this library take the lock and never see the gap). META:
 * the sidecar alone. */
static int cas__local_commit(void *u, void *wp, const char *name, int mode, int *stored, char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    cas__lw *w = (cas__lw *)wp;
    const char *base;
    char meta_name[300], tm[160];
    int abfd, e = 0;
    struct stat st;
    *stored = 0;
    tm[0] = 0;
    if (mode != CAS_COMMIT_META) {
        if (w->tfd < 0 && cas__local_write(u, wp, "", 0, msg, cap) < 0) return CAS_E_IO;
        if (l->fsync_on && CAS_SYS_FSYNC(w->tfd) < 0) e = errno ? errno : EIO;
        if (close(w->tfd) < 0 && !e) e = errno ? errno : EIO;
        w->tfd = -1;
        if (e) {
            cas__fmt(msg, cap, "%s", strerror(e));
            return CAS_E_IO;
        }
    }
    if ((abfd = cas__local_parent(l, name, 1, &base)) < 0) return cas__lfail_w(msg, cap, errno);
    snprintf(meta_name, sizeof meta_name, "%s_meta", base);
    if (!w->meta_len && mode != CAS_COMMIT_META) { /* an object without metadata (data.json): no sidecar */
        cas__flock(abfd, LOCK_EX);
        if (mode == CAS_COMMIT_CREATE && fstatat(abfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) *stored = 0;
        else if (CAS_SYS_RENAMEAT(w->dirfd, w->tmp, abfd, base) < 0) e = errno ? errno : EIO;
        else *stored = 1;
        cas__flock(abfd, LOCK_UN);
        if (!*stored) unlinkat(w->dirfd, w->tmp, 0);
        w->tmp[0] = 0;
        if (!e && *stored && l->fsync_on && CAS_SYS_FSYNC(abfd) < 0) e = errno ? errno : EIO;
        if (e) cas__fmt(msg, cap, "%s", strerror(e));
        close(abfd);
        return e ? CAS_E_IO : CAS_OK;
    }
    if ((e = cas__tmp_write(l, w->dirfd, meta_name, w->meta, w->meta_len, tm, sizeof tm)) != 0) {
        close(abfd);
        cas__fmt(msg, cap, "%s", strerror(e));
        return CAS_E_IO;
    }
    cas__flock(abfd, LOCK_EX);
    if (mode == CAS_COMMIT_CREATE) {
        if (fstatat(abfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            *stored = 0;
        } else if (CAS_SYS_RENAMEAT(w->dirfd, tm, abfd, meta_name) < 0) {
            e = errno ? errno : EIO;
        } else if (CAS_SYS_RENAMEAT(w->dirfd, w->tmp, abfd, base) < 0) {
            e = errno ? errno : EIO;
            unlinkat(abfd, meta_name, 0); /* no blob: take its sidecar back */
        } else {
            *stored = 1;
        }
    } else {
        if (mode == CAS_COMMIT_REPLACE && CAS_SYS_RENAMEAT(w->dirfd, w->tmp, abfd, base) < 0) e = errno ? errno : EIO;
        else if (CAS_SYS_RENAMEAT(w->dirfd, tm, abfd, meta_name) < 0) e = errno ? errno : EIO;
        else *stored = 1;
    }
    cas__flock(abfd, LOCK_UN);
    unlinkat(w->dirfd, tm, 0);
    if (w->tmp[0]) unlinkat(w->dirfd, w->tmp, 0);
    w->tmp[0] = 0;
    if (e) cas__fmt(msg, cap, "%s", strerror(e));
    else if (*stored && l->fsync_on && CAS_SYS_FSYNC(abfd) < 0) {
        e = errno ? errno : EIO;
        cas__fmt(msg, cap, "fsync: %s", strerror(e));
    }
    close(abfd);
    return e ? CAS_E_IO : CAS_OK;
}

static void cas__local_abort(void *u, void *wp) {
    cas__local *l = (cas__local *)u;
    cas__lw *w = (cas__lw *)wp;
    if (!w) return;
    if (w->tfd >= 0) close(w->tfd);
    if (w->tmp[0]) unlinkat(w->dirfd, w->tmp, 0);
    close(w->dirfd);
    cas__free(&l->alloc, w);
}

static int cas__local_exists(void *u, const char *name, char *msg, size_t cap) {
    const char *base;
    struct stat st;
    int dfd = cas__local_parent((cas__local *)u, name, 0, &base), ok;
    (void)msg, (void)cap;
    if (dfd < 0) return 0;
    ok = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    close(dfd);
    return ok;
}

/* Lists dirfd into fn: its entries, or with recursive every object below it
 * (depth folders deep at most), never through a symlink. A walk that cannot see
 * everything below it fails (a folder it cannot open or read, one too deep, a name
 * too long): its caller may be deciding what nothing refers to. An entry removed
 * meanwhile is not an error. */
/* A walk's failure at the entry `what` (prefix + name): its words name it. */
static int cas__walk_fail(char *msg, size_t mcap, const char *prefix, size_t plen, const char *name, int e) {
    int rc = cas__lfail_w(msg, mcap, e);
    cas__fmt(msg, mcap, "'%.*s%.200s': %s", (int)(plen < 300 ? plen : 300), prefix, name, cas__errno_text(e));
    return rc;
}

static int cas__local_walk(int fd, char *prefix, size_t plen, size_t pcap, int recursive, int depth, cas_list_fn fn,
                           void *ctx, int *stop, char *msg, size_t mcap) {
    DIR *d = fdopendir(fd);
    struct dirent *de;
    int rc = CAS_OK;
    if (!d) {
        close(fd);
        return cas__lfail_w(msg, mcap, errno);
    }
    while (!*stop) {
        struct stat st;
        size_t nl;
        int kind;
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno) rc = cas__walk_fail(msg, mcap, prefix, plen, "", errno);
            break;
        }
        nl = strlen(de->d_name);
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (plen + nl + 2 > pcap) {
            if (!recursive) continue; /* a name no store call could use */
            cas__fmt(msg, mcap, "a name below it is over %lu bytes", (unsigned long)(pcap - 2));
            rc = CAS_E_IO;
            break;
        }
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue;
            rc = cas__walk_fail(msg, mcap, prefix, plen, de->d_name, errno);
            break;
        }
        kind = S_ISDIR(st.st_mode) ? CAS_ENTRY_DIR : S_ISREG(st.st_mode) ? CAS_ENTRY_FILE : CAS_ENTRY_OTHER;
        if (kind == CAS_ENTRY_FILE && nl > 5 && !strcmp(de->d_name + nl - 5, "_meta")) {
            /* X_meta is X's metadata (an object store keeps it on the object): not an
             * entry of its own while X is there; an orphan one is listed */
            char of[256];
            struct stat xs;
            if (nl - 5 < sizeof of) {
                memcpy(of, de->d_name, nl - 5), of[nl - 5] = 0;
                if (fstatat(dirfd(d), of, &xs, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(xs.st_mode)) continue;
            }
        }
        memcpy(prefix + plen, de->d_name, nl + 1);
        if (recursive && kind == CAS_ENTRY_DIR) {
            int sub;
            if (depth <= 0) {
                cas__fmt(msg, mcap, "folders below it nest deeper than this walk goes ('%.300s')", prefix);
                rc = CAS_E_IO;
                break;
            }
            if ((sub = openat(dirfd(d), de->d_name, CAS__DIR_FLAGS)) < 0) {
                if (errno == ENOENT) continue;
                rc = cas__walk_fail(msg, mcap, prefix, plen, de->d_name, errno);
                break;
            }
            prefix[plen + nl] = '/', prefix[plen + nl + 1] = 0;
            rc = cas__local_walk(sub, prefix, plen + nl + 1, pcap, recursive, depth - 1, fn, ctx, stop, msg, mcap);
            if (rc < 0) break;
            continue;
        }
        rc = fn(ctx, prefix, kind, (uint64_t)st.st_size, (int64_t)st.st_mtime);
        if (rc > 0) *stop = 1, rc = CAS_OK;
        if (rc < 0) break;
    }
    closedir(d);
    return rc;
}

static int cas__local_list(void *u, const char *dir, int recursive, cas_list_fn fn, void *ctx, char *msg, size_t cap) {
    char prefix[1024];
    int fd = cas__local_dir((cas__local *)u, dir, strlen(dir), 0), stop = 0;
    if (fd < 0) return cas__lfail(msg, cap, errno);
    prefix[0] = 0;
    if (cap) msg[0] = 0;
    return cas__local_walk(fd, prefix, 0, sizeof prefix, recursive, 8, fn, ctx, &stop, msg, cap);
}

static int cas__local_remove(void *u, const char *name, char *msg, size_t cap) {
    const char *base;
    char meta_name[300];
    struct stat st, xs;
    int dfd = cas__local_parent((cas__local *)u, name, 0, &base), rc = 1;
    size_t bl;
    if (dfd < 0) return errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    bl = strlen(base);
    snprintf(meta_name, sizeof meta_name, "%s_meta", base);
    cas__flock(dfd, LOCK_EX); /* writers take it to rename a blob in: no put lands halfway through */
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    } else if (S_ISDIR(st.st_mode)) { /* a folder goes only when empty (a pruned run's); no sidecar of its own */
        if (unlinkat(dfd, base, AT_REMOVEDIR) < 0) rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    } else if (S_ISREG(st.st_mode) && bl > 5 && !strcmp(base + bl - 5, "_meta")) {
        /* X_meta alone: only an orphan (X gone); a put of X that landed meanwhile keeps it */
        char of[300];
        snprintf(of, sizeof of, "%.*s", (int)(bl - 5), base);
        if (fstatat(dfd, of, &xs, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(xs.st_mode)) rc = 0;
        else if (unlinkat(dfd, base, 0) < 0) rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    } else { /* the blob first: a blob without its sidecar would read as legacy gzip */
        if (unlinkat(dfd, base, 0) < 0) rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
        if (rc >= 0 && unlinkat(dfd, meta_name, 0) < 0 && errno != ENOENT) rc = cas__lfail(msg, cap, errno);
    }
    cas__flock(dfd, LOCK_UN);
    close(dfd);
    return rc;
}

/* ".<base>.cas-tmp-<pid>-..." : the writer's pid, or 0 if the name is not ours. */
static long cas__tmp_pid(const char *name) {
    const char *t;
    if (name[0] != '.' || !(t = strstr(name, CAS__TMP_TAG))) return 0;
    return strtol(t + strlen(CAS__TMP_TAG), NULL, 10);
}

/* Temp files of dead writers (or an hour old: another host's, or stuck) in every <Flow>/data. */
static int cas__local_gc(void *u, uint64_t *removed, char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    DIR *root;
    struct dirent *fe;
    int rfd = cas__local_dir(l, "", 0, 0);
    uint64_t gone = 0;
    if (rfd < 0 || !(root = fdopendir(rfd))) {
        if (rfd >= 0) close(rfd);
        cas__fmt(msg, cap, "%s", strerror(errno));
        return CAS_E_IO;
    }
    while ((fe = readdir(root)) != NULL) {
        int ffd, datafd;
        DIR *d;
        struct dirent *de;
        time_t now = time(NULL);
        if (cas_name_check(fe->d_name) < 0) continue;
        if ((ffd = openat(dirfd(root), fe->d_name, CAS__DIR_FLAGS)) < 0) continue;
        datafd = openat(ffd, "data", CAS__DIR_FLAGS);
        close(ffd);
        if (datafd < 0) continue;
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
            dead = (pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) || now - st.st_mtime > 3600;
            if (dead && unlinkat(dirfd(d), de->d_name, 0) == 0) gone++;
        }
        closedir(d);
    }
    closedir(root);
    *removed = gone;
    return CAS_OK;
}

static int cas__local_set_param(void *u, int param, int64_t v) {
    if (param != CAS_PARAM_FSYNC) return CAS_E_ARG;
    ((cas__local *)u)->fsync_on = v != 0;
    return CAS_OK;
}

static void cas__local_destroy(void *u) {
    cas__local *l = (cas__local *)u;
    cas_allocator a;
    if (!l) return;
    close(l->rootfd);
    cas__mu_destroy(&l->mu);
    a = l->alloc;
    cas__free(&a, l->root);
    cas__free(&a, l);
}

CASDEF int cas_backend_local(cas_backend *out, const char *root, const cas_allocator *alloc, char *err, size_t errcap) {
    cas__local *l;
    size_t n;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    memset(out, 0, sizeof *out);
    if (!root || !root[0]) return cas__serr(err, errcap, CAS_E_ARG, "no datastore root given");
    if (!(l = (cas__local *)cas__calloc(alloc, sizeof *l))) return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    cas__copy_allocator(&l->alloc, alloc);
    n = strlen(root);
    if (!(l->root = (char *)cas__alloc(&l->alloc, n + 1)) || cas__mu_init(&l->mu) < 0) {
        cas__free(&l->alloc, l->root);
        cas__free(&l->alloc, l);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    memcpy(l->root, root, n + 1);
    /* the root itself may be a symlink (a user's choice); nothing below it is followed */
    if ((l->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        cas__mu_destroy(&l->mu);
        cas__free(&l->alloc, l->root);
        cas__free(&l->alloc, l);
        return cas__serr(err, errcap, e == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO,
                         "Cannot open the datastore root '%s': %s", root, strerror(e));
    }
    out->user = l, out->root = l->root;
    out->open = cas__local_open, out->read = cas__local_read, out->close = cas__local_close;
    out->create = cas__local_create, out->write = cas__local_write, out->commit = cas__local_commit;
    out->abort = cas__local_abort, out->exists = cas__local_exists, out->list = cas__local_list;
    out->remove = cas__local_remove, out->gc = cas__local_gc, out->set_param = cas__local_set_param;
    out->destroy = cas__local_destroy;
    return CAS_OK;
}
/* ---- a backend shared by a store and its streams ---- */

typedef struct cas__be {
    cas_backend b;
    cas_allocator alloc;
    int refs;
    cas__mutex mu;
} cas__be;

static void cas__be_unref(cas__be *be) {
    int left;
    cas_allocator a;
    if (!be) return;
    cas__mu_lock(&be->mu);
    left = --be->refs;
    cas__mu_unlock(&be->mu);
    if (left) return;
    if (be->b.destroy) be->b.destroy(be->b.user);
    cas__mu_destroy(&be->mu);
    a = be->alloc;
    cas__free(&a, be);
}

static cas__be *cas__be_ref(cas__be *be) {
    cas__mu_lock(&be->mu);
    be->refs++;
    cas__mu_unlock(&be->mu);
    return be;
}

/* Reads a whole object (max bytes at most, 0 = no limit) into a buffer from a. */
static int cas__slurp(const cas_backend *b, void *obj, uint64_t size_hint, const cas_allocator *a, size_t max,
                      unsigned char **out, size_t *len, char *msg, size_t msgcap) {
    size_t cap, n = 0;
    unsigned char *buf;
    *out = NULL, *len = 0;
    if ((max && size_hint > max) || size_hint >= (uint64_t)((size_t)-1) / 2) {
        cas__fmt(msg, msgcap, "over %lu bytes", (unsigned long)max);
        return CAS_E_LIMIT;
    }
    cap = (size_t)size_hint + 1; /* +1 sees the end without a second allocation */
    if (!(buf = (unsigned char *)cas__alloc(a, cap))) {
        cas__fmt(msg, msgcap, "%s", strerror(ENOMEM));
        return CAS_E_NOMEM;
    }
    for (;;) {
        size_t got = 0;
        int rc;
        if (n == cap) { /* larger than it said (a file that grew) */
            size_t nc = cap * 2;
            unsigned char *nb;
            if ((max && cap > max) || !(nb = (unsigned char *)cas__alloc(a, nc))) {
                cas__free(a, buf);
                cas__fmt(msg, msgcap, "%s", max && cap > max ? "over the limit" : strerror(ENOMEM));
                return max && cap > max ? CAS_E_LIMIT : CAS_E_NOMEM;
            }
            memcpy(nb, buf, n);
            cas__free(a, buf);
            buf = nb, cap = nc;
        }
        if ((rc = b->read(b->user, obj, buf + n, CAS__MIN(cap - n, CAS__CHUNK_MAX), &got, msg, msgcap)) < 0) {
            cas__free(a, buf);
            return rc;
        }
        if (!got) break;
        n += got;
    }
    if (max && n > max) {
        cas__free(a, buf);
        cas__fmt(msg, msgcap, "over %lu bytes", (unsigned long)max);
        return CAS_E_LIMIT;
    }
    *out = buf, *len = n;
    return CAS_OK;
}

/* ---- store lifetime and pools ---- */

#define CAS__PARAM_IDS 48               /* every id in the bounds tables is below */
#define CAS__SP(s, id) ((s)->param[id]) /* a store setting */

struct cas_store {
    cas_allocator alloc;
    cas__be *be;
    char *root;
    int64_t param[CAS__PARAM_IDS]; /* the table's parameters by id, as set or by default */
    uint64_t param_set;            /* bit id: set by the caller, so handed on to writers and readers */
    cas__mutex mu;
    void *wpool[CAS__POOL]; /* cas_writer *: a codec's tables and buffers, kept for the next blob */
    void *rpool[CAS__POOL]; /* cas_reader * */
    int nw, nr;
};

/* ---- backends by scheme ---- */

#define CAS__SCHEMES 16
static struct {
    char scheme[16];
    cas_backend_opener open;
} cas__schemes[CAS__SCHEMES];
#ifndef CAS_NO_THREADS
static pthread_mutex_t cas__schemes_mu = PTHREAD_MUTEX_INITIALIZER;
#define CAS__SCHEMES_LOCK() pthread_mutex_lock(&cas__schemes_mu)
#define CAS__SCHEMES_UNLOCK() pthread_mutex_unlock(&cas__schemes_mu)
#else
#define CAS__SCHEMES_LOCK() (void)0
#define CAS__SCHEMES_UNLOCK() (void)0
#endif

#ifdef CAS_BACKEND_MODULE
/* The registrar of a module compiled in this or another translation unit: it adds
 * its schemes through the function it is given. */
CASDEF int CAS_BACKEND_MODULE(int (*add)(const char *scheme, cas_backend_opener open));
#endif

static int cas__scheme_ok(const char *s, size_t n) {
    size_t i;
    if (!n || n > 15) return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '+' || s[i] == '-' || s[i] == '.'))
            return 0;
    return 1;
}

/* Sets scheme's opener (replace = 0: only if it has none). */
static int cas__scheme_set(const char *scheme, cas_backend_opener open, int replace) {
    int i, free_slot = -1, rc = CAS_OK;
    if (!scheme || !cas__scheme_ok(scheme, strlen(scheme))) return CAS_E_ARG;
    CAS__SCHEMES_LOCK();
    for (i = 0; i < CAS__SCHEMES; i++) {
        if (!strcmp(cas__schemes[i].scheme, scheme)) break;
        if (free_slot < 0 && !cas__schemes[i].scheme[0]) free_slot = i;
    }
    if (i < CAS__SCHEMES && !replace) {
        CAS__SCHEMES_UNLOCK();
        return CAS_OK;
    }
    if (i == CAS__SCHEMES) i = free_slot;
    if (i < 0) rc = open ? CAS_E_LIMIT : CAS_OK;
    else if (open) memcpy(cas__schemes[i].scheme, scheme, strlen(scheme) + 1), cas__schemes[i].open = open;
    else cas__schemes[i].scheme[0] = 0, cas__schemes[i].open = NULL;
    CAS__SCHEMES_UNLOCK();
    return rc;
}

/* A module's schemes, added once, before any lookup and before any of the user's
 * registrations (which then replace them): every caller waits for it to be done. */
/* The thread running the modules' registrar (a registrar that calls
 * cas_backend_register itself must not wait on its own initialisation). */
#ifndef CAS_NO_THREADS
static pthread_t cas__modules_thread;
static int cas__modules_running;
#define CAS__IN_MODULES() (cas__modules_running && pthread_equal(cas__modules_thread, pthread_self()))
#else
static int cas__modules_running;
#define CAS__IN_MODULES() cas__modules_running
#endif

#ifdef CAS_BACKEND_MODULE
static int cas__scheme_add(const char *scheme, cas_backend_opener open) { return cas__scheme_set(scheme, open, 0); }
#endif
static void cas__modules(void) {
    CAS__SCHEMES_LOCK();
#ifndef CAS_NO_THREADS
    cas__modules_thread = pthread_self();
#endif
    cas__modules_running = 1;
    CAS__SCHEMES_UNLOCK();
#ifdef CAS_BACKEND_MODULE
    CAS_BACKEND_MODULE(cas__scheme_add);
#endif
    CAS__SCHEMES_LOCK();
    cas__modules_running = 0;
    CAS__SCHEMES_UNLOCK();
}
#ifndef CAS_NO_THREADS
static pthread_once_t cas__modules_once = PTHREAD_ONCE_INIT;
#define CAS__MODULES() pthread_once(&cas__modules_once, cas__modules)
#else
static int cas__modules_done;
#define CAS__MODULES() (cas__modules_done ? (void)0 : (cas__modules_done = 1, cas__modules()))
#endif

CASDEF int cas_backend_register(const char *scheme, cas_backend_opener open) {
    int inside;
    CAS__SCHEMES_LOCK();
    inside = CAS__IN_MODULES();
    CAS__SCHEMES_UNLOCK();
    if (inside) return cas__scheme_set(scheme, open, 0); /* a module's own, from its registrar */
    CAS__MODULES();
    return cas__scheme_set(scheme, open, 1);
}

/* The opener for url's scheme; NULL with the reason in err when none is registered. */
static cas_backend_opener cas__opener(const char *url, char *err, size_t errcap) {
    const char *sep = strstr(url, "://");
    cas_backend_opener open = NULL;
    size_t n = (size_t)(sep - url);
    int i;
    CAS__MODULES();
    CAS__SCHEMES_LOCK();
    for (i = 0; i < CAS__SCHEMES && cas__scheme_ok(url, n); i++)
        if (strlen(cas__schemes[i].scheme) == n && !memcmp(cas__schemes[i].scheme, url, n)) open = cas__schemes[i].open;
    CAS__SCHEMES_UNLOCK();
    if (!open)
        cas__serr(err, errcap, CAS_E_UNSUPPORTED,
                  "'%.300s': no backend is registered for '%.*s://' roots in this build of cas.h "
                  "(cas_backend_register)",
                  url, (int)(n < 16 ? n : 16), url);
    return open;
}

CASDEF int cas_store_open(cas_store **out, const char *root, const cas_allocator *alloc, char *err, size_t errcap) {
    cas_backend b;
    char dflt[4096];
    int rc;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!root || !root[0]) {
        if ((rc = cas_store_default_root(dflt, sizeof dflt, err, errcap)) < 0) return rc;
        root = dflt;
    }
    memset(&b, 0, sizeof b);
    if (strstr(root, "://")) {
        cas_backend_opener open = cas__opener(root, err, errcap);
        if (!open) return CAS_E_UNSUPPORTED;
        rc = open(&b, root, alloc, err, errcap);
    } else {
        rc = cas_backend_local(&b, root, alloc, err, errcap);
    }
    if (rc < 0) return rc;
    return cas_store_open_backend(out, &b, alloc, err, errcap);
}

CASDEF int cas_store_open_backend(cas_store **out, const cas_backend *b, const cas_allocator *alloc, char *err,
                                  size_t errcap) {
    cas_store *s = NULL;
    cas__be *be = NULL;
    size_t l;
    if (!out) {
        if (b && b->destroy) b->destroy(b->user);
        return CAS_E_ARG;
    }
    *out = NULL;
    if (!b || !b->open || !b->read || !b->close || !b->create || !b->write || !b->commit || !b->abort || !b->exists ||
        !b->list || !b->remove) {
        if (b && b->destroy) b->destroy(b->user);
        return cas__serr(err, errcap, CAS_E_ARG, "a backend without one of its required callbacks");
    }
    l = strlen(b->root ? b->root : "");
    if ((be = (cas__be *)cas__calloc(alloc, sizeof *be)) != NULL && cas__mu_init(&be->mu) < 0) {
        cas__free(alloc, be);
        be = NULL;
    }
    if (be) s = (cas_store *)cas__calloc(alloc, sizeof *s);
    if (s) s->root = (char *)cas__alloc(alloc, l + 1);
    if (!s || !s->root || cas__mu_init(&s->mu) < 0) {
        if (s) cas__free(alloc, s->root);
        cas__free(alloc, s);
        if (be) cas__mu_destroy(&be->mu), cas__free(alloc, be);
        if (b->destroy) b->destroy(b->user);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    be->b = *b, be->refs = 1;
    cas__copy_allocator(&be->alloc, alloc);
    cas__copy_allocator(&s->alloc, alloc);
    memcpy(s->root, b->root ? b->root : "", l + 1);
    be->b.root = s->root;
    s->be = be;
    s->param[CAS_PARAM_FORMAT] = CAS_FORMAT_V1, s->param[CAS_PARAM_HASH] = CAS_HASH_DEFAULT;
    s->param[CAS_PARAM_VERIFY] = (b->flags & CAS_BACKEND_REMOTE) != 0;
    *out = s;
    return CAS_OK;
}

static void cas__pool_flush(cas_store *s) {
    while (s->nw) cas_writer_free((cas_writer *)s->wpool[--s->nw]);
    while (s->nr) cas_reader_free((cas_reader *)s->rpool[--s->nr]);
}

CASDEF void cas_store_close(cas_store *s) {
    cas_allocator a;
    if (!s) return;
    cas__pool_flush(s);
    cas__mu_destroy(&s->mu);
    a = s->alloc;
    cas__free(&a, s->root); /* the backend's root pointer goes with it: only messages used it */
    s->be->b.root = "";
    cas__be_unref(s->be);
    cas__free(&a, s);
}

CASDEF const char *cas_store_root(const cas_store *s) { return s ? s->root : ""; }

/* The store's own rows; the rest are the writer's, reader's and codecs'. */
static const cas__param_row cas__store_params[] = {
    CAS__PARAM(CAS_PARAM_FORMAT, CAS__FOR_STORE, 1, INT_MAX, cas__format_writable),
    CAS__PARAM(CAS_PARAM_VERIFY, CAS__FOR_STORE, INT64_MIN, INT64_MAX, NULL), /* a flag: 0 or not */
};

static const cas__param_row *cas__store_param_row(int id) {
    const cas__param_row *r = CAS__PARAM_FIND(cas__store_params, id);
    return r ? r : cas__param_row_of(id);
}

CASDEF int cas_store_set_param(cas_store *s, int param, int64_t v) {
    const cas__param_row *row = cas__store_param_row(param);
    int rc;
    if (!s) return CAS_E_ARG;
    if (!row || !(row->who & CAS__FOR_STORE) || param >= CAS__PARAM_IDS) {
        /* the backend's own (CAS_PARAM_FSYNC, object-store settings) */
        if (!s->be->b.set_param) return param == CAS_PARAM_FSYNC ? CAS_OK : CAS_E_ARG;
        rc = s->be->b.set_param(s->be->b.user, param, v);
        if (rc == CAS_E_ARG && param == CAS_PARAM_FSYNC) rc = CAS_OK; /* nothing to sync there */
        return rc;
    }
    if ((rc = cas__param_check(row, CAS__FOR_STORE, v)) < 0) return rc;
    cas__mu_lock(&s->mu);
    s->param[param] = v, s->param_set |= (uint64_t)1 << param;
    cas__pool_flush(s); /* pooled objects carry the old settings */
    cas__mu_unlock(&s->mu);
    return CAS_OK;
}

/* Hands the store's settings that `who` takes to a new writer or reader. */
static int cas__apply_params(const cas_store *s, unsigned who, cas_writer *w, cas_reader *r) {
    int id, rc = CAS_OK;
    for (id = 1; id < CAS__PARAM_IDS && rc >= 0; id++)
        if ((s->param_set >> id & 1) && (cas__store_param_row(id)->who & who))
            rc = w ? cas_writer_set_param(w, id, s->param[id]) : cas_reader_set_param(r, id, s->param[id]);
    return rc;
}

/* A pooled writer or reader, or NULL when the pool is empty. */
static void *cas__store_pool_take(cas_store *s, void **pool, int *n) {
    void *x = NULL;
    cas__mu_lock(&s->mu);
    if (*n) x = pool[--*n];
    cas__mu_unlock(&s->mu);
    return x;
}

/* Keeps x for the next blob: NULL, or x when the pool is full (the caller frees it). */
static void *cas__store_pool_keep(cas_store *s, void **pool, int *n, void *x) {
    cas__mu_lock(&s->mu);
    if (*n < CAS__POOL) pool[(*n)++] = x, x = NULL;
    cas__mu_unlock(&s->mu);
    return x;
}

static int cas__get_writer(cas_store *s, int format, cas_writer **out) {
    cas_writer *w = (cas_writer *)cas__store_pool_take(s, s->wpool, &s->nw);
    int r;
    if (!w) {
        if ((r = cas_writer_create(&w, format, &s->alloc)) < 0) return r;
        if ((r = cas__apply_params(s, CAS__FOR_WRITER, w, NULL)) < 0) {
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
    cas_writer_free((cas_writer *)cas__store_pool_keep(s, s->wpool, &s->nw, w));
}

static int cas__get_reader(cas_store *s, cas_reader **out) {
    cas_reader *r = (cas_reader *)cas__store_pool_take(s, s->rpool, &s->nr);
    int rc;
    if (!r) {
        if ((rc = cas_reader_create(&r, &s->alloc)) < 0) return rc;
        if ((rc = cas__apply_params(s, CAS__FOR_READER, NULL, r)) < 0) {
            cas_reader_free(r);
            return rc;
        }
    }
    cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, -1);
    *out = r;
    return CAS_OK;
}

static void cas__put_reader(cas_store *s, cas_reader *r) {
    cas_reader_free((cas_reader *)cas__store_pool_keep(s, s->rpool, &s->nr, r));
}

CASDEF void cas_store_free_buffer(cas_store *s, void *p) {
    if (s) cas__free(&s->alloc, p);
}
/* ---- writing: one path for put, put_fd and migrate ---- */

/* Bytes in hand go to a new backend object; commits it under name. */
static int cas__write_object(cas_store *s, const char *dir, const char *name, const void *p, size_t n, const char *meta,
                             size_t ml, int mode, int *stored, char *msg, size_t cap) {
    const cas_backend *b = &s->be->b;
    void *w;
    int rc = b->create(b->user, dir, name, meta, ml, &w, msg, cap);
    if (rc < 0) return rc;
    if (mode != CAS_COMMIT_META && n) rc = b->write(b->user, w, p, n, msg, cap);
    if (rc >= 0) rc = b->commit(b->user, w, name, mode, stored, msg, cap);
    b->abort(b->user, w);
    return rc;
}

/* A new blob object in flow's data folder with format's metadata, for bytes that
 * come a buffer at a time (name: its final name, or NULL when the key comes last).
 * On failure *bw is NULL and err says what, with the backend's reason. */
static int cas__blob_create(cas_store *s, const char *flow, const char *name, int format, void **bw, const char *what,
                            char *err, size_t errcap) {
    char dir[300], meta[CAS_META_MAX], msg[CAS__MSG] = "";
    size_t ml = 0;
    int rc;
    snprintf(dir, sizeof dir, "%s/data", flow);
    cas_meta_json(format, meta, sizeof meta, &ml);
    if ((rc = s->be->b.create(s->be->b.user, dir, name, meta, ml, bw, msg, sizeof msg)) < 0) {
        *bw = NULL;
        return cas__serr(err, errcap, rc, "%s: %s", what, msg);
    }
    return CAS_OK;
}

/* ---- the datastore's other objects (data.json, markers, logs) ---- */

#define CAS__FILE_NAME_MAX 1024
#define CAS__FILE_META_MAX 2048

static int cas__file_name_check(const char *name) {
    const char *part = name, *c;
    if (!name || !*name || strlen(name) > CAS__FILE_NAME_MAX) return CAS_E_NAME;
    for (c = name;; c++) {
        if (*c == '/' || !*c) {
            size_t n = (size_t)(c - part);
            if (!n || (n == 1 && part[0] == '.') || (n == 2 && part[0] == '.' && part[1] == '.')) return CAS_E_NAME;
            if (!*c) return CAS_OK;
            part = c + 1;
        } else if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            return CAS_E_NAME;
        }
    }
}

/* A refused name as messages show it: its first 300 bytes, control characters as '?'
 * (a message is one line, whatever a caller passed). */
static int cas__file_name_refused(const char *name, char *err, size_t errcap) {
    char shown[301];
    size_t i;
    for (i = 0; name && name[i] && i < sizeof shown - 1; i++)
        shown[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
    shown[i] = 0;
    return cas__serr(err, errcap, CAS_E_NAME, "Invalid object name '%s'", shown);
}

#define CAS__FILE_NAME_OK(s, name, err, errcap)                                               \
    do {                                                                                      \
        if (!(s)) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");               \
        if (cas__file_name_check(name) < 0) return cas__file_name_refused(name, err, errcap); \
    } while (0)

/* A yes/no object call of the backend (exists, remove): its answer, or its failure in words. */
static int cas__file_ask(cas_store *s, const char *name, int remove, char *err, size_t errcap) {
    char msg[CAS__MSG] = "";
    int rc;
    CAS__FILE_NAME_OK(s, name, err, errcap);
    rc = remove ? s->be->b.remove(s->be->b.user, name, msg, sizeof msg)
                : s->be->b.exists(s->be->b.user, name, msg, sizeof msg);
    return rc < 0 ? cas__serr(err, errcap, rc, "Cannot %s '%s' in '%s': %s", remove ? "remove" : "check", name, s->root,
                              CAS__WHY(rc, msg))
                  : rc;
}

CASDEF int cas_store_file_exists(cas_store *s, const char *name, char *err, size_t errcap) {
    return cas__file_ask(s, name, 0, err, errcap);
}

CASDEF int cas_store_file_get(cas_store *s, const char *name, size_t max, void **out, size_t *len, char **meta,
                              char *err, size_t errcap) {
    const cas_backend *b;
    cas_object_info info;
    unsigned char *text = NULL;
    char msg[CAS__MSG] = "", *m = NULL;
    size_t tlen = 0;
    void *obj;
    int rc;
    if (out) *out = NULL;
    if (len) *len = 0;
    if (meta) *meta = NULL;
    if (!out || !len) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    CAS__FILE_NAME_OK(s, name, err, errcap);
    b = &s->be->b;
    if ((rc = b->open(b->user, name, 0, &obj, &info, msg, sizeof msg)) < 0) {
        if (rc == CAS_E_NOTFOUND) return cas__serr(err, errcap, rc, "No object '%s' in '%s'", name, s->root);
        return cas__serr(err, errcap, rc, "Cannot open '%s' in '%s': %s", name, s->root, CAS__WHY(rc, msg));
    }
    if (meta && info.meta && !(m = (char *)cas__alloc(&s->alloc, info.meta_len + 1))) rc = CAS_E_NOMEM;
    if (m) memcpy(m, info.meta, info.meta_len), m[info.meta_len] = 0;
    if (rc >= 0)
        rc = cas__slurp(b, obj, info.size, &s->alloc, max ? max : CAS__JSON_FILE_MAX, &text, &tlen, msg, sizeof msg);
    b->close(b->user, obj);
    if (rc < 0) {
        cas__free(&s->alloc, m);
        return cas__serr(err, errcap, rc, "Cannot read '%s' in '%s': %s", name, s->root, CAS__WHY(rc, msg));
    }
    *out = text, *len = tlen;
    if (meta) *meta = m;
    return CAS_OK;
}

CASDEF int cas_store_file_remove(cas_store *s, const char *name, char *err, size_t errcap) {
    return cas__file_ask(s, name, 1, err, errcap);
}

CASDEF int cas_store_file_put(cas_store *s, const char *name, const void *data, size_t n, const char *meta, int replace,
                              int *stored, char *err, size_t errcap) {
    char dir[CAS__FILE_NAME_MAX + 1], msg[CAS__MSG] = "";
    const char *slash, *c;
    int rc, dummy;
    if (!stored) stored = &dummy;
    *stored = 0;
    if (!data && n) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    CAS__FILE_NAME_OK(s, name, err, errcap);
    for (c = meta; c && *c; c++)
        if (*c < 0x20 || *c > 0x7e || c - meta >= CAS__FILE_META_MAX)
            return cas__serr(err, errcap, CAS_E_ARG, "The metadata of '%s' is not printable ASCII of at most %d bytes",
                             name, CAS__FILE_META_MAX);
    slash = strrchr(name, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - name) : 0, name);
    rc = cas__write_object(s, dir, name, data, n, meta, meta ? strlen(meta) : 0,
                           replace ? CAS_COMMIT_REPLACE : CAS_COMMIT_CREATE, stored, msg, sizeof msg);
    return rc < 0 ? cas__serr(err, errcap, rc, "Could not write '%s' in '%s': %s", name, s->root, CAS__WHY(rc, msg))
                  : CAS_OK;
}

/* Pulls bytes from a source until it ends, through the writer, into a backend
 * writer. The source reports its own failures in full (err); packing and backend
 * failures are reported as "<what>: <reason>". */
typedef int (*cas__pull_fn)(void *ctx, void *buf, size_t cap, size_t *got, char *err, size_t errcap);

static int cas__encode_into(cas_store *s, cas_writer *w, cas__pull_fn pull, void *pctx, void *bw, const char *what,
                            char *err, size_t errcap) {
    const cas_backend *b = &s->be->b;
    unsigned char *ibuf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
    unsigned char *obuf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
    char msg[CAS__MSG] = "";
    int rc = CAS_OK, last = 0;
    if (!ibuf || !obuf) {
        rc = cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
        goto out;
    }
    while (!last) {
        size_t got = 0, off = 0;
        if ((rc = pull(pctx, ibuf, CAS__IO_CHUNK, &got, err, errcap)) < 0) goto out;
        last = got == 0;
        for (;;) { /* drain this chunk (or, at the end, the tail) through the writer */
            size_t u = 0, m = 0;
            rc = last ? cas_writer_finish(w, obuf, CAS__IO_CHUNK, &m)
                      : cas_writer_update(w, ibuf + off, got - off, &u, obuf, CAS__IO_CHUNK, &m);
            off += u;
            if (rc < 0) {
                rc = cas__serr(err, errcap, rc, "%s: %s", what, cas_strerror(rc));
                goto out;
            }
            if (m) {
                int wr = b->write(b->user, bw, obuf, m, msg, sizeof msg);
                if (wr < 0) {
                    rc = cas__serr(err, errcap, wr, "%s: %s", what, msg);
                    goto out;
                }
            }
            if (rc == CAS_DONE || (!last && rc == CAS_NEED_INPUT)) break;
        }
    }
    rc = CAS_OK;
out:
    cas__free(&s->alloc, ibuf);
    cas__free(&s->alloc, obuf);
    return rc;
}

static int cas__blob_exists(cas_store *s, const char *flow, const char *key) {
    char name[512], msg[CAS__MSG] = "";
    cas_store_blob_name(flow, key, name, sizeof name);
    return s->be->b.exists(s->be->b.user, name, msg, sizeof msg) > 0;
}

CASDEF int cas_store_exists(cas_store *s, const char *flow, const char *key) {
    if (!s) return CAS_E_ARG;
    if (cas_name_check(flow) < 0) return CAS_E_NAME;
    if (!cas__key_ok(key)) return CAS_E_KEY;
    return cas__blob_exists(s, flow, key);
}

static int cas__store_blob(cas_store *s, const char *flow, const char *key, int format, const void *blob, size_t n,
                           int *stored, char *err, size_t errcap) {
    char bname[512], dir[300], meta[CAS_META_MAX], msg[CAS__MSG] = "";
    size_t ml = 0;
    int rc;
    cas_store_blob_name(flow, key, bname, sizeof bname);
    snprintf(dir, sizeof dir, "%s/data", flow);
    cas_meta_json(format, meta, sizeof meta, &ml);
    rc = cas__write_object(s, dir, bname, blob, n, meta, ml, CAS_COMMIT_CREATE, stored, msg, sizeof msg);
    if (rc < 0) return cas__serr(err, errcap, rc, "Could not store artifact '%s': %s", bname, msg);
    return CAS_OK;
}

/* threads: 2 lets a large blob hash on a second thread while it compresses;
 * batch workers pass 1 so that N workers use N cores, not 2N threads. */
static int cas__store_put(cas_store *s, const char *flow, const void *data, size_t n, int format, char key[CAS_KEY_BUF],
                          int *stored, char *err, size_t errcap, int threads) {
    cas_writer *w;
    unsigned char *blob = NULL;
    size_t blen = 0, cap;
    int rc, dummy, parallel, as_is;
    if (!stored) stored = &dummy;
    *stored = 0;
    if (!s || !key || (!data && n)) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    key[0] = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!format) format = (int)CAS__SP(s, CAS_PARAM_FORMAT);
    if ((rc = cas__format_writable(format)) < 0) return cas__serr(err, errcap, rc, "invalid format %d", format);
    as_is = cas_format_codec(format) == CAS_CODEC_RAW;
    parallel = threads > 1 && n >= CAS__PARALLEL_MIN && !as_is;
    if (!parallel) { /* hash first: what is already stored costs no compression */
        if ((rc = cas_hash((int)CAS__SP(s, CAS_PARAM_HASH), data, n, key)) < 0)
            return cas__serr(err, errcap, rc, "hashing failed");
        if (cas__blob_exists(s, flow, key)) return CAS_OK;
        if (as_is) return cas__store_blob(s, flow, key, format, data, n, stored, err, errcap);
    }
    if ((rc = cas__get_writer(s, format, &w)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    cap = cas_pack_bound(format, n);
    blob = (unsigned char *)cas__alloc(&s->alloc, cap);
    if (!blob) {
        cas__put_writer(s, w);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory (%lu bytes)", (unsigned long)cap);
    }
    if (parallel) rc = cas_pack(w, data, n, blob, cap, &blen, key); /* key and blob at once */
    else rc = cas__writer_encode(w, data, n, blob, cap, &blen);
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

CASDEF int cas_store_put(cas_store *s, const char *flow, const void *data, size_t n, int format, char key[CAS_KEY_BUF],
                         int *stored, char *err, size_t errcap) {
    return cas__store_put(s, flow, data, n, format, key, stored, err, errcap, 2);
}

static int cas__pull_fd(void *ctx, void *buf, size_t cap, size_t *got, char *err, size_t errcap) {
    ssize_t r = cas__read_fd(*(int *)ctx, buf, cap);
    *got = 0;
    if (r < 0) return cas__serr(err, errcap, CAS_E_IO, "Could not read the input: %s", strerror((int)-r));
    *got = (size_t)r;
    return CAS_OK;
}

CASDEF int cas_store_put_fd(cas_store *s, const char *flow, int fd, int format, char key[CAS_KEY_BUF], int *stored,
                            char *err, size_t errcap) {
    const cas_backend *b;
    cas_writer *w = NULL;
    void *bw = NULL;
    char what[320], bname[512], msg[CAS__MSG] = "";
    int rc, dummy;
    if (!stored) stored = &dummy;
    *stored = 0;
    if (!s || !key || fd < 0) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    key[0] = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    b = &s->be->b;
    if (!format) format = (int)CAS__SP(s, CAS_PARAM_FORMAT);
    if ((rc = cas__get_writer(s, format, &w)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    snprintf(what, sizeof what, "Could not store into flow '%s'", flow);
    if ((rc = cas__blob_create(s, flow, NULL, format, &bw, what, err, errcap)) < 0) goto out;
    if ((rc = cas__encode_into(s, w, cas__pull_fd, &fd, bw, what, err, errcap)) < 0) goto out;
    cas_writer_key(w, key);
    cas_store_blob_name(flow, key, bname, sizeof bname);
    if (cas__blob_exists(s, flow, key)) goto out; /* dedup: the writer goes */
    if ((rc = b->commit(b->user, bw, bname, CAS_COMMIT_CREATE, stored, msg, sizeof msg)) < 0)
        rc = cas__serr(err, errcap, rc, "Could not store artifact '%s': %s", bname, msg);
out:
    if (bw) b->abort(b->user, bw);
    if (w) cas__put_writer(s, w);
    return rc;
}
/* ---- reading ---- */

/* Opens a blob through the backend: *info has its size and metadata (meta NULL
 * when it has none). Close *obj with the backend's close. */
static int cas__open_blob(cas_store *s, const char *flow, const char *key, unsigned flags, void **obj,
                          cas_object_info *info, const char *bname, char *err, size_t errcap) {
    char msg[CAS__MSG] = "";
    int rc;
    *obj = NULL;
    memset(info, 0, sizeof *info);
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!cas__key_ok(key)) return cas__serr(err, errcap, CAS_E_KEY, "Invalid key '%.100s'", key ? key : "");
    rc = s->be->b.open(s->be->b.user, bname, flags, obj, info, msg, sizeof msg);
    if (rc == CAS_E_NOTFOUND) return cas__serr(err, errcap, rc, "No blob '%s' in '%s'", bname, s->root);
    if (rc < 0) return cas__serr(err, errcap, rc, "Cannot open '%s': %s", bname, msg);
    return CAS_OK;
}

/* Decodes a whole blob held in memory with a pooled reader. */
static int cas__decode_blob(cas_store *s, const char *bname, const char *key, const char *meta, size_t ml,
                            const unsigned char *blob, size_t bl, void **out, size_t *len, char *err, size_t errcap) {
    cas_reader *r;
    int rc;
    if ((rc = cas__get_reader(s, &r)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    rc = cas_reader_begin(r, meta, ml, bname, CAS__SP(s, CAS_PARAM_VERIFY) ? key : NULL);
    if (rc >= 0) rc = cas_reader_unpack(r, blob, bl, out, len);
    if (rc < 0) cas__serr(err, errcap, rc, "%s", cas_reader_message(r)[0] ? cas_reader_message(r) : cas_strerror(rc));
    else rc = CAS_OK;
    cas__put_reader(s, r); /* same allocator: *out outlives the reader */
    return rc;
}

CASDEF int cas_store_get(cas_store *s, const char *flow, const char *key, void **out, size_t *len, char *err,
                         size_t errcap) {
    unsigned char *blob = NULL;
    size_t bl = 0;
    char bname[512], msg[CAS__MSG] = "";
    cas_object_info info;
    void *obj;
    int rc;
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    rc = cas__slurp(&s->be->b, obj, info.size, &s->alloc, 0, &blob, &bl, msg, sizeof msg);
    if (rc < 0) rc = cas__serr(err, errcap, rc, "Cannot read '%s': %s", bname, msg);
    else rc = cas__decode_blob(s, bname, key, info.meta, info.meta_len, blob, bl, out, len, err, errcap);
    s->be->b.close(s->be->b.user, obj);
    cas__free(&s->alloc, blob);
    return rc;
}

CASDEF int cas_store_stat(cas_store *s, const char *flow, const char *key, int *format, uint64_t *stored_size,
                          char *err, size_t errcap) {
    char bname[512];
    cas_object_info info;
    void *obj;
    int rc, fmt = CAS_FORMAT_LEGACY;
    if (format) *format = 0;
    if (stored_size) *stored_size = 0;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, CAS_OPEN_HEAD, &obj, &info, bname, err, errcap)) < 0) return rc;
    if (stored_size) *stored_size = info.size;
    if (info.meta) {
        int64_t v = 0;
        rc = cas_meta_parse(info.meta, info.meta_len, &fmt, &v);
        if (rc < 0) cas__serr(err, errcap, rc, "'%s': %s", bname, cas_strerror(rc));
    }
    s->be->b.close(s->be->b.user, obj);
    if (rc < 0) return rc;
    if (format) *format = fmt;
    return CAS_OK;
}

CASDEF int cas_store_delete(cas_store *s, const char *flow, const char *key, char *err, size_t errcap) {
    char bname[512], msg[CAS__MSG] = "";
    int rc;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!cas__key_ok(key)) return cas__serr(err, errcap, CAS_E_KEY, "Invalid key '%.100s'", key ? key : "");
    cas_store_blob_name(flow, key, bname, sizeof bname);
    rc = s->be->b.remove(s->be->b.user, bname, msg, sizeof msg);
    if (rc < 0) return cas__serr(err, errcap, rc, "Cannot delete '%s': %s", bname, msg);
    return rc;
}

/* ---- streams ---- */

/* A stream reads a backend object (store streams) or a plain file
 * (cas_stream_open_file) through a fixed window into its reader. */
struct cas_stream {
    cas_allocator alloc;
    cas__be *be; /* with obj, or NULL with fd */
    void *obj;
    int fd, eof, done, failed;
    cas_reader *r;
    unsigned char *in;
    size_t in_len, in_pos;
    uint64_t stored;
    char msg[CAS_MESSAGE_MAX];
};

/* A stream over a source, before its reader begins. The source is the stream's
 * from here, also on failure. */
static int cas__stream_alloc(cas_stream **out, cas__be *be, void *obj, int fd, uint64_t stored,
                             const cas_allocator *alloc, char *err, size_t errcap) {
    cas_stream *st = (cas_stream *)cas__calloc(alloc, sizeof *st);
    int rc;
    *out = NULL;
    if (st) {
        cas__copy_allocator(&st->alloc, alloc);
        st->be = be, st->obj = obj, st->fd = fd, st->stored = stored;
        if (be) cas__be_ref(be);
        st->in = (unsigned char *)cas__alloc(&st->alloc, CAS__STREAM_WINDOW);
    }
    rc = st && st->in ? cas_reader_create(&st->r, &st->alloc) : CAS_E_NOMEM;
    if (rc < 0 || !st) {
        if (st) cas_stream_close(st);
        else if (be) be->b.close(be->b.user, obj);
        else close(fd);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    *out = st;
    return CAS_OK;
}

static int cas__stream_begin(cas_stream *st, const char *meta, size_t ml, const char *name, const char *key,
                             uint64_t limit, int strict, char *err, size_t errcap) {
    int rc;
    cas_reader_set_param(st->r, CAS_PARAM_LIMIT, (int64_t)limit);
    cas_reader_set_param(st->r, CAS_PARAM_STRICT, strict);
    rc = cas_reader_begin(st->r, meta, ml, name, key);
    if (rc < 0) cas__serr(err, errcap, rc, "%s", cas_reader_message(st->r));
    return rc < 0 ? rc : CAS_OK;
}

/* Refills the window when it is used up: CAS_OK (st->eof at the end) or an error. */
static int cas__stream_fill(cas_stream *st) {
    size_t got = 0;
    char msg[CAS__MSG] = "";
    int rc;
    if (st->in_pos < st->in_len || st->eof) return CAS_OK;
    if (st->be) {
        rc = st->be->b.read(st->be->b.user, st->obj, st->in, CAS__STREAM_WINDOW, &got, msg, sizeof msg);
        if (rc < 0) {
            cas__fmt(st->msg, sizeof st->msg, "Cannot read '%s': %s", cas__rname(st->r), msg);
            return st->failed = rc;
        }
    } else {
        ssize_t r = cas__read_fd(st->fd, st->in, CAS__STREAM_WINDOW);
        if (r < 0) {
            cas__fmt(st->msg, sizeof st->msg, "Cannot read blob: %s", strerror((int)-r));
            return st->failed = CAS_E_IO;
        }
        got = (size_t)r;
    }
    st->in_pos = 0, st->in_len = got;
    if (!got) st->eof = 1;
    return CAS_OK;
}

/* The first bytes of the source without consuming them (fewer at its end). */
static int cas__stream_peek(cas_stream *st, unsigned char *head, size_t want, size_t *got) {
    int rc;
    *got = 0;
    while (st->in_len < want && !st->eof) {
        size_t n = 0;
        char msg[CAS__MSG] = "";
        if (st->be) {
            rc = st->be->b.read(st->be->b.user, st->obj, st->in + st->in_len, CAS__STREAM_WINDOW - st->in_len, &n, msg,
                                sizeof msg);
            if (rc < 0) {
                cas__fmt(st->msg, sizeof st->msg, "%s", msg);
                return st->failed = rc;
            }
        } else {
            ssize_t r = cas__read_fd(st->fd, st->in + st->in_len, CAS__STREAM_WINDOW - st->in_len);
            if (r < 0) {
                cas__fmt(st->msg, sizeof st->msg, "%s", strerror((int)-r));
                return st->failed = CAS_E_IO;
            }
            n = (size_t)r;
        }
        if (!n) st->eof = 1;
        st->in_len += n;
    }
    *got = CAS__MIN(want, st->in_len);
    memcpy(head, st->in, *got);
    return CAS_OK;
}

CASDEF int cas_store_open_stream(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err,
                                 size_t errcap) {
    return cas_stream_open(s, flow, key, out, err, errcap);
}

CASDEF int cas_stream_open(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err,
                           size_t errcap) {
    char bname[512];
    cas_object_info info;
    void *obj;
    int rc;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    /* the stream holds the backend, so it outlives the store if need be */
    if ((rc = cas__stream_alloc(out, s->be, obj, -1, info.size, &s->alloc, err, errcap)) < 0) return rc;
    rc = cas__stream_begin(*out, info.meta, info.meta_len, bname, CAS__SP(s, CAS_PARAM_VERIFY) ? key : NULL,
                           (uint64_t)CAS__SP(s, CAS_PARAM_LIMIT), (int)CAS__SP(s, CAS_PARAM_STRICT), err, errcap);
    if (rc < 0) {
        cas_stream_close(*out);
        *out = NULL;
    }
    return rc;
}

#ifndef CAS_NO_LZ4
/* pread until n bytes are in, or the file ends (CAS_E_TRUNCATED). */
static int cas__pread_all(int fd, void *buf, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (unsigned char *)buf + got, CAS__MIN(n - got, CAS__CHUNK_MAX), (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return CAS_E_IO;
        if (r == 0) return CAS_E_TRUNCATED;
        got += (size_t)r;
    }
    return CAS_OK;
}

CASDEF int cas_unpack_v2_fd(int fd, void *dst, size_t cap, size_t *out_len) {
    static const unsigned char magic[4] = {0x04, 0x22, 0x4d, 0x18};
    unsigned char hdr[LZ4F_HEADER_SIZE_MAX], word[4], *buf = NULL;
    LZ4F_dctx *dc = NULL;
    LZ4F_frameInfo_t fi;
    struct stat sb;
    uint64_t off, fsize;
    size_t hsz, o = 0, bmax;
    int rc;
    if (out_len) *out_len = 0;
    if (fd < 0 || (!dst && cap) || !out_len) return CAS_E_ARG;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) return CAS_E_UNSUPPORTED;
    fsize = (uint64_t)sb.st_size;
    hsz = (size_t)CAS__MIN(fsize, (uint64_t)sizeof hdr);
    if ((rc = cas__pread_all(fd, hdr, hsz, 0)) < 0) return rc;
    if (hsz < 7 || memcmp(hdr, magic, 4)) return CAS_E_UNSUPPORTED;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dc, LZ4F_VERSION))) return CAS_E_NOMEM;
    memset(&fi, 0, sizeof fi);
    rc = LZ4F_isError(LZ4F_getFrameInfo(dc, &fi, hdr, &hsz)) ? CAS_E_CORRUPT : CAS_OK;
    LZ4F_freeDecompressionContext(dc);
    if (rc < 0) return rc;
    if (fi.blockChecksumFlag || fi.contentChecksumFlag || fi.dictID || fi.frameType != LZ4F_frame)
        return CAS_E_UNSUPPORTED; /* plain frames only: the general path checks the rest */
    bmax = fi.blockSizeID == LZ4F_max256KB ? (size_t)256 << 10
           : fi.blockSizeID == LZ4F_max1MB ? (size_t)1 << 20
           : fi.blockSizeID == LZ4F_max4MB ? (size_t)4 << 20
                                           : (size_t)64 << 10;
    for (off = hsz;;) {
        uint32_t n;
        if ((rc = cas__pread_all(fd, word, 4, off)) < 0) break;
        off += 4;
        n = (uint32_t)word[0] | (uint32_t)word[1] << 8 | (uint32_t)word[2] << 16 | (uint32_t)word[3] << 24;
        if (!n) { /* the end mark: the frame must end the file and hold what it says */
            rc = off != fsize                                                ? CAS_E_UNSUPPORTED
                 : fi.contentSize && fi.contentSize != (unsigned long long)o ? CAS_E_CORRUPT
                                                                             : CAS_OK;
            break;
        }
        if ((n & 0x7fffffffu) > bmax || off + (n & 0x7fffffffu) > fsize) {
            rc = CAS_E_CORRUPT;
            break;
        }
        if (n & 0x80000000u) { /* a stored block: read into place, no copy through a buffer */
            n &= 0x7fffffffu;
            if (n > cap - o) {
                rc = CAS_NEED_OUTPUT;
                break;
            }
            if ((rc = cas__pread_all(fd, (unsigned char *)dst + o, n, off)) < 0) break;
            o += n;
        } else {
            int d;
            size_t dict = fi.blockMode == LZ4F_blockLinked ? CAS__MIN(o, (size_t)64 << 10) : 0;
            if (!buf && !(buf = (unsigned char *)malloc(bmax))) {
                rc = CAS_E_NOMEM;
                break;
            }
            if ((rc = cas__pread_all(fd, buf, n, off)) < 0) break;
            d = LZ4_decompress_safe_usingDict((const char *)buf, (char *)dst + o, (int)n, (int)CAS__MIN(cap - o, bmax),
                                              (const char *)dst + o - dict, (int)dict);
            if (d < 0) {
                rc = cap - o < bmax ? CAS_NEED_OUTPUT : CAS_E_CORRUPT;
                break;
            }
            o += (size_t)d;
        }
        off += n;
    }
    free(buf);
    if (rc == CAS_OK) *out_len = o;
    return rc;
}

static void *cas__unpack_fd_worker(void *arg) {
    cas__many *m = (cas__many *)arg;
    size_t i;
    while ((i = cas__many_take(m)) < m->count)
        cas__many_done(m, i, cas_unpack_v2_fd(m->fds[i], m->out[i], m->cap[i], &m->out_len[i]));
    return NULL;
}

CASDEF int cas_unpack_v2_fd_many(size_t count, const int *fd, void *const *dst, const size_t *cap, size_t *out_len,
                                 int *status, int threads) {
    cas__many m;
    if (count && (!fd || !dst || !cap || !out_len)) return CAS_E_ARG;
    memset(&m, 0, sizeof m);
    m.count = count, m.fds = fd, m.out = dst, m.cap = cap, m.out_len = out_len, m.status = status;
    return cas__many_run(&m, threads, cas__unpack_fd_worker);
}
#endif

CASDEF int cas_stream_open_file(cas_stream **out, const char *path, const char *key, uint64_t limit,
                                const cas_allocator *alloc, char *err, size_t errcap) {
    unsigned char *meta = NULL;
    size_t ml = 0, pl;
    char *mpath;
    struct stat sb;
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
        e = cas__read_all(mfd, alloc, CAS__META_FILE_MAX, &meta, &ml);
        close(mfd);
        if (e) {
            close(fd);
            return cas__serr(err, errcap, CAS_E_IO, "Cannot read the sidecar of '%s': %s", path,
                             e == EFBIG ? "over 64 KiB" : strerror(e));
        }
    }
    if ((rc = cas__stream_alloc(out, NULL, NULL, fd, fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0, alloc, err,
                                errcap)) >= 0 &&
        (rc = cas__stream_begin(*out, (const char *)meta, ml, path, key, limit, 0, err, errcap)) < 0) {
        cas_stream_close(*out);
        *out = NULL;
    }
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
        if ((rc = cas__stream_fill(st)) < 0) return rc;
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
    if (st->be) {
        st->be->b.close(st->be->b.user, st->obj);
        cas__be_unref(st->be);
    } else if (st->fd >= 0) {
        close(st->fd);
    }
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
    char bname[512];
    cas_object_info info;
    cas_stream *st;
    void *obj;
    int rc;
    if (decoded_size) *decoded_size = 0;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    if ((rc = cas__stream_alloc(&st, s->be, obj, -1, info.size, &s->alloc, err, errcap)) < 0) return rc;
    rc = cas__stream_begin(st, info.meta, info.meta_len, bname, key, (uint64_t)CAS__SP(s, CAS_PARAM_LIMIT),
                           (int)CAS__SP(s, CAS_PARAM_STRICT), err, errcap);
    if (rc >= 0) rc = cas__stream_drain(st, decoded_size, err, errcap);
    cas_stream_close(st);
    return rc;
}
/* ---- migrate ---- */

static int cas__pull_stream(void *ctx, void *buf, size_t cap, size_t *got, char *err, size_t errcap) {
    cas_stream *st = (cas_stream *)ctx;
    int rc = cas_stream_read(st, buf, cap, got);
    return rc < 0 ? cas__serr(err, errcap, rc, "%s", cas_stream_message(st)) : CAS_OK;
}

/* What a migration of a blob must do, from its metadata and its first bytes:
 * 0 nothing, else the format the bytes are in (decode as that). The bytes are
 * authoritative: an interrupted migrate leaves them ahead of the metadata. */
static int cas__migrate_plan(int meta_fmt, int sniff, int target, int *bytes_fmt) {
    const cas__format_row *m = cas__format_find(meta_fmt);
    size_t i;
    *bytes_fmt = 0;
    for (i = 0; i < CAS__FORMAT_ROWS && !*bytes_fmt; i++) { /* the first writable format with such bytes */
        const cas__codec_row *c = cas__codec_find(cas__formats[i].codec);
        if (cas__formats[i].writable && c->sniff && (sniff == c->sniff || (sniff == CAS_SNIFF_EMPTY && c->empty_ok)))
            *bytes_fmt = cas__formats[i].format;
    }
    if (m && m->raw) return 0; /* raw blobs are read by URI as they are: never re-encode */
    if (!*bytes_fmt) return CAS_E_CORRUPT;
    if (*bytes_fmt == target && m && m->reads_as == target) return 0; /* already there */
    return *bytes_fmt;
}

CASDEF int cas_store_migrate(cas_store *s, const char *flow, const char *key, int format, int *changed, char *err,
                             size_t errcap) {
    const cas_backend *b;
    unsigned char head[4] = {0};
    size_t hl = 0, ml = 0;
    char bname[512], what[600], mjson[CAS_META_MAX], msg[CAS__MSG] = "";
    int rc, mfmt = CAS_FORMAT_LEGACY, bfmt, plan, dummy, stored = 0;
    cas_object_info info;
    cas_stream *st = NULL;
    cas_writer *w = NULL;
    void *obj, *bw = NULL;
    if (!changed) changed = &dummy;
    *changed = 0;
    if (cas__format_writable(format) < 0 || cas__format_find(format)->raw)
        return cas__serr(err, errcap, CAS_E_ARG, "migrate writes cas_version 1 or 2 only");
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    b = &s->be->b;
    if (info.meta) {
        int64_t v;
        rc = cas_meta_parse(info.meta, info.meta_len, &mfmt, &v);
        if (rc < 0) {
            b->close(b->user, obj);
            return cas__serr(err, errcap, rc, "Cannot migrate '%s': its sidecar: %s", bname, cas_strerror(rc));
        }
    }
    if ((rc = cas__stream_alloc(&st, s->be, obj, -1, info.size, &s->alloc, err, errcap)) < 0) return rc;
    snprintf(what, sizeof what, "Cannot migrate '%s'", bname);
    if (!cas__format_find(mfmt)->raw && (rc = cas__stream_peek(st, head, 4, &hl)) < 0) {
        rc = cas__serr(err, errcap, rc, "%s: %s", what, st->msg);
        goto out;
    }
    plan = cas__migrate_plan(mfmt, cas_sniff(head, hl), format, &bfmt);
    if (plan <= 0) {
        rc = plan < 0 ? cas__serr(err, errcap, plan, "%s: the bytes are %s", what, cas_sniff_name(cas_sniff(head, hl)))
                      : CAS_OK;
        goto out;
    }
    /* decode as the bytes say, always verifying: migrate never writes bytes that do not hash to the key */
    cas_meta_json(bfmt, mjson, sizeof mjson, &ml);
    if ((rc = cas__stream_begin(st, mjson, ml, bname, key, (uint64_t)CAS__SP(s, CAS_PARAM_LIMIT), 0, err, errcap)) < 0)
        goto out;
    if ((rc = cas__blob_create(s, flow, bname, format, &bw, what, err, errcap)) < 0) goto out;
    if (bfmt == format) { /* only the metadata is behind: check the bytes, then fix it */
        if ((rc = cas__stream_drain(st, NULL, err, errcap)) < 0) goto out;
    } else {
        if ((rc = cas__get_writer(s, format, &w)) < 0) {
            rc = cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
            goto out;
        }
        if ((rc = cas__encode_into(s, w, cas__pull_stream, st, bw, what, err, errcap)) < 0) goto out;
    }
    rc = b->commit(b->user, bw, bname, bfmt == format ? CAS_COMMIT_META : CAS_COMMIT_REPLACE, &stored, msg, sizeof msg);
    if (rc < 0) rc = cas__serr(err, errcap, rc, "%s: %s", what, msg);
    else *changed = 1;
out:
    if (bw) b->abort(b->user, bw);
    cas_stream_close(st);
    if (w) cas__put_writer(s, w);
    return rc;
}

/* ---- listing and gc ---- */

/* Wipes a buffer in a way the compiler keeps (secrets: cas__buf's, cas_cloud.h's). */
static void cas__wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

/* A growable byte buffer from the store's allocator. */
typedef struct cas__buf {
    char *p;
    size_t len, cap, count;
    const cas_allocator *a;
    int secret; /* a block it outgrows is wiped before it is freed (a form holding a client secret) */
} cas__buf;

/* Appends n bytes (and keeps a NUL after them). */
static int cas__buf_put(cas__buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        char *np;
        while (nc < b->len + n + 1) nc *= 2;
        np = (char *)cas__alloc(b->a, nc);
        if (!np) return CAS_E_NOMEM;
        if (b->len) memcpy(np, b->p, b->len);
        if (b->secret && b->p) cas__wipe(b->p, b->cap);
        cas__free(b->a, b->p);
        b->p = np, b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return CAS_OK;
}

/* Appends one item of a list (counted). */
static int cas__buf_add(cas__buf *b, const char *s, size_t n) {
    int rc = cas__buf_put(b, s, n);
    if (rc == CAS_OK) b->count++;
    return rc;
}

static int cas__strcmp_qsort(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static int cas__list_folders(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    (void)size, (void)mtime;
    if (kind != CAS_ENTRY_DIR || cas_name_check(name) < 0) return 0;
    return cas__buf_add((cas__buf *)ctx, name, strlen(name) + 1);
}

static int cas__list_any(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    (void)ctx, (void)name, (void)kind, (void)size, (void)mtime;
    return 1; /* one entry is enough */
}

/* A key from a listing is used only once it checks out like any other. */
static int cas__list_keys(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    size_t l = strlen(name);
    char k[CAS_KEY_BUF];
    (void)size, (void)mtime;
    if (kind != CAS_ENTRY_FILE || l < 4 || name[2] != '/' || cas_key_check(name + 3, l - 3, NULL) < 0 ||
        memcmp(name, name + 3, 2))
        return 0;
    memset(k, 0, sizeof k);
    memcpy(k, name + 3, l - 3);
    return cas__buf_add((cas__buf *)ctx, k, CAS_KEY_BUF);
}

CASDEF int cas_store_flows(cas_store *s, char **names, size_t *count, char *err, size_t errcap) {
    cas__buf all, b;
    const cas_backend *be;
    char msg[CAS__MSG] = "", dir[300];
    const char *f;
    size_t i;
    int rc;
    if (!s || !names || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *names = NULL, *count = 0;
    be = &s->be->b;
    memset(&all, 0, sizeof all), memset(&b, 0, sizeof b);
    all.a = b.a = &s->alloc;
    if ((rc = be->list(be->user, "", 0, cas__list_folders, &all, msg, sizeof msg)) < 0 && rc != CAS_E_NOTFOUND) {
        cas__free(&s->alloc, all.p);
        return cas__serr(err, errcap, rc, "Cannot list '%s': %s", s->root, CAS__WHY(rc, msg));
    }
    for (i = 0, f = all.p; i < all.count; i++, f += strlen(f) + 1) { /* a flow is a folder with a data folder */
        snprintf(dir, sizeof dir, "%s/data", f);
        if (be->list(be->user, dir, 0, cas__list_any, NULL, msg, sizeof msg) < 0) continue;
        if (cas__buf_add(&b, f, strlen(f) + 1) < 0) {
            cas__free(&s->alloc, all.p);
            cas__free(&s->alloc, b.p);
            return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
        }
    }
    cas__free(&s->alloc, all.p);
    *names = b.p, *count = b.count;
    return CAS_OK;
}

typedef struct cas__entry_rec {
    size_t off; /* of the name, in the names buffer */
    int is_dir, other;
    uint64_t size;
    int64_t mtime;
} cas__entry_rec;

typedef struct cas__listing {
    cas__buf recs, names;
    int recursive, lenient; /* lenient: a walk that skips what it cannot take (a blob listing) */
    char why[400];          /* a walk's refusal: the entry it could not take */
} cas__listing;

static int cas__list_entry(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    cas__listing *l = (cas__listing *)ctx;
    cas__entry_rec r;
    int rc;
    if (!l->recursive && strchr(name, '/')) return 0;
    if (l->recursive && !l->lenient && (kind == CAS_ENTRY_OTHER || cas__file_name_check(name) < 0)) { /* all, or fail */
        size_t i;
        cas__fmt(l->why, sizeof l->why, "%s below it: '%.300s'",
                 kind == CAS_ENTRY_OTHER ? "a symbolic link or special file, never followed"
                                         : "a name the store refuses",
                 name);
        for (i = 0; l->why[i]; i++)
            if ((unsigned char)l->why[i] < 0x20 || l->why[i] == 0x7f) l->why[i] = '?';
        return CAS_E_IO;
    }
    if (cas__file_name_check(name) < 0 || (l->lenient && kind == CAS_ENTRY_OTHER)) return 0;
    if (l->recursive && kind == CAS_ENTRY_DIR) return 0;
    r.off = l->names.len, r.is_dir = kind == CAS_ENTRY_DIR, r.size = r.is_dir ? 0 : size, r.mtime = mtime;
    r.other = kind == CAS_ENTRY_OTHER;
    if ((rc = cas__buf_put(&l->names, name, strlen(name) + 1)) < 0) return rc;
    return cas__buf_add(&l->recs, (const char *)&r, sizeof r);
}

static int cas__entry_cmp(const void *a, const void *b) {
    return strcmp(((const cas_file_entry *)a)->name, ((const cas_file_entry *)b)->name);
}

static int cas__file_list(cas_store *s, const char *dir, int recursive, int lenient, cas_file_entry **entries,
                          size_t *count, char *err, size_t errcap) {
    cas__listing l;
    char msg[CAS__MSG] = "";
    cas_file_entry *e;
    size_t i, head;
    int rc;
    if (!s || !dir || !entries || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *entries = NULL, *count = 0;
    if (*dir && cas__file_name_check(dir) < 0) return cas__file_name_refused(dir, err, errcap);
    memset(&l, 0, sizeof l);
    l.recs.a = l.names.a = &s->alloc;
    l.recursive = recursive, l.lenient = lenient;
    rc = s->be->b.list(s->be->b.user, dir, recursive, cas__list_entry, &l, msg, sizeof msg);
    if (rc >= 0) { /* one block: the entries, then their names */
        head = l.recs.count * sizeof *e;
        if (!(e = (cas_file_entry *)cas__alloc(&s->alloc, head + l.names.len + 1))) rc = CAS_E_NOMEM;
        for (i = 0; rc >= 0 && i < l.recs.count; i++) {
            cas__entry_rec r;
            memcpy(&r, l.recs.p + i * sizeof r, sizeof r);
            e[i].name = (const char *)e + head + r.off, e[i].is_dir = r.is_dir, e[i].size = r.size;
            e[i].mtime = r.mtime, e[i].other = r.other;
        }
        if (rc >= 0) {
            if (l.names.len) memcpy((char *)e + head, l.names.p, l.names.len);
            qsort(e, l.recs.count, sizeof *e, cas__entry_cmp);
            *entries = e, *count = l.recs.count;
        }
    }
    cas__free(&s->alloc, l.recs.p);
    cas__free(&s->alloc, l.names.p);
    if (rc < 0)
        return cas__serr(err, errcap, rc, "Cannot list '%s' in '%s': %s", *dir ? dir : "/", s->root,
                         l.why[0] ? l.why : CAS__WHY(rc, msg));
    return CAS_OK;
}

CASDEF int cas_store_file_list(cas_store *s, const char *dir, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap) {
    return cas__file_list(s, dir, 0, 0, entries, count, err, errcap);
}

CASDEF int cas_store_file_walk(cas_store *s, const char *dir, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap) {
    return cas__file_list(s, dir, 1, 0, entries, count, err, errcap);
}

CASDEF int cas_store_blob_list(cas_store *s, const char *flow, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap) {
    char dir[300];
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.200s'", flow ? flow : "");
    snprintf(dir, sizeof dir, "%s/data", flow);
    return cas__file_list(s, dir, 1, 1, entries, count, err, errcap);
}

CASDEF int cas_store_keys(cas_store *s, const char *flow, char **keys, size_t *count, char *err, size_t errcap) {
    cas__buf b;
    char dir[300], msg[CAS__MSG] = "";
    int rc;
    if (!s || !keys || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *keys = NULL, *count = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    memset(&b, 0, sizeof b);
    b.a = &s->alloc;
    snprintf(dir, sizeof dir, "%s/data", flow);
    if ((rc = s->be->b.list(s->be->b.user, dir, 1, cas__list_keys, &b, msg, sizeof msg)) < 0) {
        cas__free(&s->alloc, b.p);
        return cas__serr(err, errcap, rc, "Cannot open '%s/data': %s", flow, CAS__WHY(rc, msg));
    }
    if (b.count) qsort(b.p, b.count, CAS_KEY_BUF, cas__strcmp_qsort);
    *keys = b.p, *count = b.count;
    return CAS_OK;
}

CASDEF int cas_store_gc(cas_store *s, uint64_t *removed, char *err, size_t errcap) {
    char msg[CAS__MSG] = "";
    uint64_t gone = 0;
    int rc;
    if (removed) *removed = 0;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (!s->be->b.gc) return CAS_OK;
    if ((rc = s->be->b.gc(s->be->b.user, &gone, msg, sizeof msg)) < 0)
        return cas__serr(err, errcap, rc, "Cannot clean up '%s': %s", s->root, msg);
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
    cas__mutex mu;
    /* get through the backend's fetch: fetched blobs wait in a queue for the decoders */
#ifndef CAS_NO_THREADS
    pthread_cond_t cv;
#endif
    size_t *queue, qhead, qtail, *fidx, nfetch;
    unsigned char **raw;
    size_t *rawlen;
    char **meta;
    size_t *metalen;
    int fetching;
} cas__batch;

static void cas__batch_fail(cas__batch *b, size_t i, int rc, const char *msg) {
    if (b->status) b->status[i] = rc;
    if (rc >= 0) return;
    cas__mu_lock(&b->mu);
    if (!b->first_rc) {
        b->first_rc = rc;
        cas__serr(b->err, b->errcap, rc, "%s", msg);
    }
    cas__mu_unlock(&b->mu);
}

static void *cas__batch_worker(void *arg) {
    cas__batch *b = (cas__batch *)arg;
    char msg[512];
    for (;;) {
        size_t i;
        int rc;
        cas__mu_lock(&b->mu);
        i = b->next++;
        cas__mu_unlock(&b->mu);
        if (i >= b->count) break;
        msg[0] = 0;
        if (b->put)
            rc = cas__store_put(b->s, b->flow, b->data[i], b->sizes[i], b->format, b->keys + i * CAS_KEY_BUF, NULL, msg,
                                sizeof msg, 1);
        else rc = cas_store_get(b->s, b->flow, b->gkeys[i], &b->outs[i], &b->lens[i], msg, sizeof msg);
        cas__batch_fail(b, i, rc, msg);
    }
    return NULL;
}

static int cas__batch_run(cas__batch *b, int threads) {
    if ((size_t)(threads <= 0 ? 2 : threads) > b->count) threads = (int)(b->count ? b->count : 1);
    if (cas__mu_init(&b->mu) < 0) threads = 1;
    cas__workers(b, threads, cas__batch_worker);
    cas__mu_destroy(&b->mu);
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
    if (threads <= 0 && (s->be->b.flags & CAS_BACKEND_REMOTE)) threads = 16; /* latency-bound: more in flight */
    return cas__batch_run(&b, threads);
}

static void *cas__batch_decoder(void *arg);

/* fetch's callback, on the fetching thread: queue the blob for the decoders. */
static void cas__batch_fetched(void *ctx, size_t j, int status, const char *msg, const char *meta, size_t ml,
                               void *data, size_t len) {
    cas__batch *b = (cas__batch *)ctx;
    char bname[512], text[600];
    size_t i;
    if (j >= b->nfetch) {
        cas__free(&b->s->alloc, data);
        return;
    }
    i = b->fidx[j];
    cas_store_blob_name(b->flow, b->gkeys[i], bname, sizeof bname);
    if (status < 0) {
        if (status == CAS_E_NOTFOUND) snprintf(text, sizeof text, "No blob '%s' in '%s'", bname, b->s->root);
        else snprintf(text, sizeof text, "Cannot open '%s': %s", bname, msg ? msg : "");
        cas__free(&b->s->alloc, data);
        cas__batch_fail(b, i, status, text);
        return;
    }
    if (meta && !(b->meta[i] = (char *)cas__alloc(&b->s->alloc, ml + 1))) {
        cas__free(&b->s->alloc, data);
        snprintf(text, sizeof text, "Cannot read '%s': %s", bname, strerror(ENOMEM));
        cas__batch_fail(b, i, CAS_E_NOMEM, text);
        return;
    }
    if (meta) memcpy(b->meta[i], meta, ml), b->meta[i][ml] = 0, b->metalen[i] = ml;
    b->raw[i] = (unsigned char *)data, b->rawlen[i] = len;
    cas__mu_lock(&b->mu);
    b->queue[b->qtail++] = i;
#ifndef CAS_NO_THREADS
    pthread_cond_signal(&b->cv);
#endif
    cas__mu_unlock(&b->mu);
#ifdef CAS_NO_THREADS
    cas__batch_decoder(b);
#endif
}

/* Decodes queued blobs until the fetch is over and the queue is empty. */
static void *cas__batch_decoder(void *arg) {
    cas__batch *b = (cas__batch *)arg;
    char msg[512], bname[512];
    for (;;) {
        size_t i;
        int rc;
        cas__mu_lock(&b->mu);
#ifndef CAS_NO_THREADS
        while (b->qhead == b->qtail && b->fetching) pthread_cond_wait(&b->cv, &b->mu);
#endif
        if (b->qhead == b->qtail) {
            cas__mu_unlock(&b->mu);
            break;
        }
        i = b->queue[b->qhead++];
        cas__mu_unlock(&b->mu);
        cas_store_blob_name(b->flow, b->gkeys[i], bname, sizeof bname);
        msg[0] = 0;
        rc = cas__decode_blob(b->s, bname, b->gkeys[i], b->meta[i], b->metalen[i], b->raw[i], b->rawlen[i], &b->outs[i],
                              &b->lens[i], msg, sizeof msg);
        cas__free(&b->s->alloc, b->raw[i]);
        cas__free(&b->s->alloc, b->meta[i]);
        b->raw[i] = NULL, b->meta[i] = NULL;
        cas__batch_fail(b, i, rc, msg);
    }
    return NULL;
}

/* A batch get over the backend's fetch: the caller's thread runs the requests
 * (many in flight), `threads` decoder threads decode what arrives. */
static int cas__batch_fetch(cas__batch *b, int threads) {
    cas_store *s = b->s;
    const cas_allocator *a = &s->alloc;
    const cas_backend *be = &s->be->b;
    char **names = NULL, msg[CAS__MSG] = "", bname[512];
    size_t i, n = b->count;
    int rc = CAS_OK;
#ifndef CAS_NO_THREADS
    pthread_t th[16];
    int k, started = 0, cv = 0;
#endif
    if (cas__mu_init(&b->mu) < 0) return cas__serr(b->err, b->errcap, CAS_E_NOMEM, "cannot create a mutex");
    b->queue = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->queue);
    b->fidx = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->fidx);
    b->raw = (unsigned char **)cas__calloc(a, (n + 1) * sizeof *b->raw);
    b->rawlen = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->rawlen);
    b->meta = (char **)cas__calloc(a, (n + 1) * sizeof *b->meta);
    b->metalen = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->metalen);
    names = (char **)cas__calloc(a, (n + 1) * sizeof *names);
    if (!b->queue || !b->fidx || !b->raw || !b->rawlen || !b->meta || !b->metalen || !names) {
        rc = cas__serr(b->err, b->errcap, CAS_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) { /* invalid items fail as cas_store_get fails them; the rest are fetched */
        const char *key = b->gkeys[i];
        if (cas_name_check(b->flow) < 0) {
            snprintf(msg, sizeof msg, "Invalid flow name '%.300s'", b->flow ? b->flow : "");
            cas__batch_fail(b, i, CAS_E_NAME, msg);
        } else if (!cas__key_ok(key)) {
            snprintf(msg, sizeof msg, "Invalid key '%.100s'", key ? key : "");
            cas__batch_fail(b, i, CAS_E_KEY, msg);
        } else {
            size_t l;
            cas_store_blob_name(b->flow, key, bname, sizeof bname);
            l = strlen(bname) + 1;
            if (!(names[b->nfetch] = (char *)cas__alloc(a, l))) {
                rc = cas__serr(b->err, b->errcap, CAS_E_NOMEM, "out of memory");
                goto out;
            }
            memcpy(names[b->nfetch], bname, l);
            b->fidx[b->nfetch++] = i;
        }
    }
    if (!b->nfetch) goto out;
    b->fetching = 1;
#ifndef CAS_NO_THREADS
    if (pthread_cond_init(&b->cv, NULL) != 0) {
        rc = cas__serr(b->err, b->errcap, CAS_E_NOMEM, "cannot create a condition variable");
        goto out;
    }
    cv = 1;
    if (threads <= 0) threads = 2;
    if (threads > 16) threads = 16;
    for (k = 0; k < threads; k++)
        if (pthread_create(&th[started], NULL, cas__batch_decoder, b) == 0) started++;
#else
    (void)threads;
#endif
    msg[0] = 0;
    rc = be->fetch(be->user, b->nfetch, (const char *const *)names, a, cas__batch_fetched, b, msg, sizeof msg);
    cas__mu_lock(&b->mu);
    b->fetching = 0;
    if (rc < 0 && !b->first_rc) { /* every object was reported; this is the fetch's own failure */
        b->first_rc = rc;
        cas__serr(b->err, b->errcap, rc, "Cannot read from '%s': %s", s->root, msg);
    }
#ifndef CAS_NO_THREADS
    pthread_cond_broadcast(&b->cv);
#endif
    cas__mu_unlock(&b->mu);
#ifndef CAS_NO_THREADS
    if (!started) cas__batch_decoder(b);
    for (k = 0; k < started; k++) pthread_join(th[k], NULL);
#endif
    rc = CAS_OK;
out:
#ifndef CAS_NO_THREADS
    if (cv) pthread_cond_destroy(&b->cv);
#endif
    for (i = 0; i < n; i++) {
        if (names) cas__free(a, names[i]);
        if (b->raw) cas__free(a, b->raw[i]);
        if (b->meta) cas__free(a, b->meta[i]);
    }
    cas__free(a, names);
    cas__free(a, b->queue);
    cas__free(a, b->fidx);
    cas__free(a, b->raw);
    cas__free(a, b->rawlen);
    cas__free(a, b->meta);
    cas__free(a, b->metalen);
    cas__mu_destroy(&b->mu);
    return rc < 0 ? rc : b->first_rc;
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
    if (s->be->b.fetch && count) return cas__batch_fetch(&b, threads);
    return cas__batch_run(&b, threads);
}
/* ---- tasks: parsing (bytes in hand) ---- */

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

CASDEF int cas_task_pick_attempt(const char *names, size_t count) {
    int i, attempt = -1;
    /* Metaflow's rule: attempts 0..5, the last of the consecutive run of N.attempt.json */
    for (i = 0; i < 6; i++) {
        char want[32];
        const char *p = names;
        size_t k;
        int found = 0;
        snprintf(want, sizeof want, "%d.attempt.json", i);
        for (k = 0; k < count && !found; k++, p += strlen(p) + 1) found = !strcmp(p, want);
        if (found) attempt = i;
        else if (attempt >= 0) break;
    }
    if (attempt >= 0) { /* and it finished */
        char want[32];
        const char *p = names;
        size_t k;
        snprintf(want, sizeof want, "%d.DONE.lock", attempt);
        for (k = 0; k < count; k++, p += strlen(p) + 1)
            if (!strcmp(p, want)) return attempt;
        return -1;
    }
    return attempt;
}

/* Raw-text order of two string tokens, then document order: info's keys sorted so
 * that each lookup is a binary search, the last duplicate winning as in Python. */
static int cas__tok_cmp(const cas__json *j, size_t a, size_t b) {
    size_t la = j->t[a].end - j->t[a].start, lb = j->t[b].end - j->t[b].start;
    int c = memcmp(j->s + j->t[a].start, j->s + j->t[b].start, la < lb ? la : lb);
    if (c) return c;
    if (la != lb) return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Merge sort of token indices by cas__tok_cmp (no qsort: it takes no context, and
 * parses run on many threads at once). tmp holds n. */
static void cas__tok_sort(const cas__json *j, size_t *v, size_t *tmp, size_t n) {
    size_t width, i;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            size_t lo = i, mid = i + width < n ? i + width : n, hi = i + 2 * width < n ? i + 2 * width : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) tmp[o++] = cas__tok_cmp(j, v[a], v[b]) <= 0 ? v[a++] : v[b++];
            while (a < mid) tmp[o++] = v[a++];
            while (b < hi) tmp[o++] = v[b++];
        }
        memcpy(v, tmp, n * sizeof *v);
    }
}

/* The value token of the last member of info whose key is kt's text, or 0. */
static size_t cas__info_find(const cas__json *j, const size_t *sorted, size_t n, size_t kt) {
    size_t lo = 0, hi = n, found = 0;
    size_t lk = j->t[kt].end - j->t[kt].start;
    while (lo < hi) { /* the first key >= kt's text */
        size_t mid = lo + (hi - lo) / 2, lm = j->t[sorted[mid]].end - j->t[sorted[mid]].start;
        int c = memcmp(j->s + j->t[sorted[mid]].start, j->s + j->t[kt].start, lm < lk ? lm : lk);
        if (c < 0 || (c == 0 && lm < lk)) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < n; lo++) { /* equal texts, in document order: the last wins */
        size_t q = sorted[lo];
        if (j->t[q].end - j->t[q].start != lk || memcmp(j->s + j->t[q].start, j->s + j->t[kt].start, lk)) break;
        found = q + 1;
    }
    return found;
}

CASDEF int cas_task_parse(cas_task **out, const char *pathspec, int attempt, const void *data_json, size_t tlen,
                          const cas_allocator *alloc, char *err, size_t errcap) {
    char parts[4][256], fname[32];
    const char *text = (const char *)data_json;
    cas__json j;
    cas_task *t;
    size_t objs, info, k, m, arena_size, left, ti, *toks = NULL, *ikeys = NULL, ni = 0;
    char *ap;
    int rc;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (!data_json && tlen) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas__split(pathspec, parts, 4) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid pathspec '%.300s': expected Flow/run/step/task",
                         pathspec ? pathspec : "");
    snprintf(fname, sizeof fname, "%d.data.json", attempt);
    rc = cas__json_parse(&j, text ? text : "", tlen, alloc);
    if (rc < 0 || j.t[0].type != CAS__J_OBJ) {
        rc = cas__serr(err, errcap, rc == CAS_E_NOMEM ? rc : CAS_E_JSON, "Malformed '%s/%s': %s", pathspec, fname,
                       rc < 0 ? j.err : "not a JSON object");
        cas__json_free(&j);
        return rc;
    }
    objs = cas__json_get(&j, 0, "objects");
    info = cas__json_get(&j, 0, "info");
    if (!objs || j.t[objs].type != CAS__J_OBJ) {
        cas__json_free(&j);
        return cas__serr(err, errcap, CAS_E_JSON, "Malformed '%s/%s': no \"objects\" map", pathspec, fname);
    }
    if (info && j.t[info].type != CAS__J_OBJ) info = 0; /* not a map: as if absent */
    m = j.t[objs].count;
    t = (cas_task *)cas__calloc(alloc, sizeof *t);
    if (t) {
        cas__copy_allocator(&t->alloc, alloc);
        t->arts = (cas__art *)cas__calloc(alloc, (m + 1) * sizeof *t->arts);
        toks = (size_t *)cas__alloc(alloc, (m + 1) * 4 * sizeof *toks);
    }
    if (!t || !t->arts || !toks) goto fail;
    if (info && (ni = j.t[info].count) > 0) { /* info's keys, sorted once */
        size_t c, q, *tmp = (size_t *)cas__alloc(alloc, 2 * ni * sizeof *ikeys);
        if (!(ikeys = tmp)) goto fail;
        for (c = 0, q = info + 1; c < ni; c++, q = j.t[q + 1].next) ikeys[c] = q;
        cas__tok_sort(&j, ikeys, ikeys + ni, ni);
    }
    /* pass 1: the tokens of each artifact (name, key, encoding, type) and the
     * arena they need: a decoded string is never longer than its JSON text */
    arena_size = 1;
    for (k = 0, ti = objs + 1; k < m; k++) {
        size_t kt = ti, vt = kt + 1, c, *tk = toks + 4 * k;
        size_t it = ni ? cas__info_find(&j, ikeys, ni, kt) : 0; /* keyed by the same names; the last match wins */
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
    if (!(t->arena = (char *)cas__alloc(alloc, arena_size))) goto fail;
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
    cas__free(alloc, toks);
    cas__free(alloc, ikeys);
    cas__json_free(&j);
    *out = t;
    return CAS_OK;
fail:
    cas__free(alloc, toks);
    cas__free(alloc, ikeys);
    cas_task_close(t);
    cas__json_free(&j);
    return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
}

/* ---- tasks: over a store ---- */

static int cas__list_names(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    (void)kind, (void)size, (void)mtime;
    return cas__buf_add((cas__buf *)ctx, name, strlen(name) + 1);
}

CASDEF int cas_task_open(cas_store *s, const char *pathspec, cas_task **out, char *err, size_t errcap) {
    char parts[4][256], name[1100], msg[CAS__MSG] = "";
    const cas_backend *b;
    cas__buf names;
    cas_object_info info;
    unsigned char *text = NULL;
    size_t tlen = 0;
    void *obj;
    int attempt, rc;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas__split(pathspec, parts, 4) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid pathspec '%.300s': expected Flow/run/step/task",
                         pathspec ? pathspec : "");
    b = &s->be->b;
    memset(&names, 0, sizeof names);
    names.a = &s->alloc;
    if ((rc = b->list(b->user, pathspec, 0, cas__list_names, &names, msg, sizeof msg)) < 0) {
        cas__free(&s->alloc, names.p);
        return cas__serr(err, errcap, rc, "Cannot open task '%s': %s", pathspec,
                         rc == CAS_E_NOTFOUND ? "no such task in this datastore" : CAS__WHY(rc, msg));
    }
    attempt = cas_task_pick_attempt(names.p ? names.p : "", names.count);
    cas__free(&s->alloc, names.p);
    if (attempt < 0)
        return cas__serr(err, errcap, CAS_E_NOTFOUND, "No completed attempts of the task was found for task '%s'",
                         pathspec);
    snprintf(name, sizeof name, "%s/%d.data.json", pathspec, attempt);
    if ((rc = b->open(b->user, name, 0, &obj, &info, msg, sizeof msg)) < 0)
        return cas__serr(err, errcap, rc, "Cannot open '%s': %s", name, msg);
    rc = cas__slurp(b, obj, info.size, &s->alloc, CAS__JSON_FILE_MAX, &text, &tlen, msg, sizeof msg);
    b->close(b->user, obj);
    if (rc < 0)
        return cas__serr(err, errcap, rc == CAS_E_LIMIT ? CAS_E_IO : rc, "Cannot read '%s': %s", name,
                         rc == CAS_E_LIMIT ? "over 256 MiB" : msg);
    rc = cas_task_parse(out, pathspec, attempt, text, tlen, &s->alloc, err, errcap);
    cas__free(&s->alloc, text);
    return rc;
}
/* ---- runs: a flow's runs as Metaflow lays them out ---- */

/* A run's, step's or task's folder (not "_meta", not a flow's "data"). */
static int cas__is_part(const cas_file_entry *e) { return e->is_dir && cas_part_check(e->name) == CAS_OK; }

/* The earliest object time of a step's first task (what a run's _parameters step
 * writes first), 0 if none; or (done) 1 if some task of the step has an attempt
 * Metaflow counts as done (cas_task_pick_attempt). */
static int64_t cas__step_probe(cas_store *s, const char *dir, int done) {
    cas_file_entry *tasks, *files;
    size_t nt, nf, i, j;
    int64_t best = 0;
    char sub[1100];
    if (cas__file_list(s, dir, 0, 0, &tasks, &nt, NULL, 0) < 0) return 0;
    for (i = 0; i < nt && !best; i++) {
        cas__buf names;
        if (!cas__is_part(&tasks[i])) continue;
        snprintf(sub, sizeof sub, "%s/%s", dir, tasks[i].name);
        if (cas__file_list(s, sub, 0, 0, &files, &nf, NULL, 0) < 0) continue;
        memset(&names, 0, sizeof names);
        names.a = &s->alloc;
        for (j = 0; j < nf; j++) {
            if (done) cas__buf_add(&names, files[j].name, strlen(files[j].name) + 1);
            else if (!files[j].is_dir && files[j].mtime > 0 && (!best || files[j].mtime < best)) best = files[j].mtime;
        }
        if (done && names.p && cas_task_pick_attempt(names.p, names.count) >= 0) best = 1;
        cas__free(&s->alloc, names.p);
        cas__free(&s->alloc, files);
        if (!done) break;
    }
    cas__free(&s->alloc, tasks);
    return best;
}

typedef struct cas__runrec {
    size_t id, user, tags, system_tags; /* offsets in the text */
    int64_t started;
    int finished;
} cas__runrec;

/* What Metaflow's local metadata keeps in FLOW/RUN/_meta/_self.json: the start time
 * (ts_epoch, ms), the user, the tags. Absent (an object store's datastore keeps
 * metadata in a service): nothing is set. */
/* Appends a JSON value's text as one line (whitespace outside strings only: a raw
 * newline cannot be inside one), NUL-terminated; its offset, or 0 ("") on failure. */
static size_t cas__run_text(cas__buf *text, const char *p, size_t n) {
    size_t at = text->len, i;
    for (i = 0; i < n; i++) {
        char ch = p[i] == '\n' || p[i] == '\r' || p[i] == '\t' ? ' ' : p[i];
        if (cas__buf_put(text, &ch, 1) < 0) break;
    }
    if (i < n || cas__buf_put(text, "", 1) < 0) {
        if (text->p) text->len = at, text->p[at] = 0;
        return 0;
    }
    return at;
}

static void cas__run_self(cas_store *s, const char *dir, cas__runrec *r, cas__buf *text) {
    char name[1100], user[256];
    void *doc;
    size_t len, tok;
    cas__json j;
    int64_t ms;
    snprintf(name, sizeof name, "%s/_meta/_self.json", dir);
    if (cas_store_file_get(s, name, 1 << 20, &doc, &len, NULL, NULL, 0) < 0) return;
    if (cas__json_parse(&j, (const char *)doc, len, &s->alloc) == CAS_OK && j.t[0].type == CAS__J_OBJ) {
        if ((tok = cas__json_get(&j, 0, "ts_epoch")) && cas__json_int(&j, tok, &ms) == 0 && ms > 0)
            r->started = ms / 1000;
        if ((tok = cas__json_get(&j, 0, "user_name")) && cas__json_str(&j, tok, user, sizeof user) != (size_t)-1)
            r->user = cas__run_text(text, user, strlen(user));
        if ((tok = cas__json_get(&j, 0, "tags")) && j.t[tok].type == CAS__J_ARR)
            r->tags = cas__run_text(text, j.s + j.t[tok].start, j.t[tok].end - j.t[tok].start);
        if ((tok = cas__json_get(&j, 0, "system_tags")) && j.t[tok].type == CAS__J_ARR)
            r->system_tags = cas__run_text(text, j.s + j.t[tok].start, j.t[tok].end - j.t[tok].start);
    }
    cas__json_free(&j);
    cas__free(&s->alloc, doc);
}

static int cas__run_cmp(const void *a, const void *b) {
    const cas_run_info *x = (const cas_run_info *)a, *y = (const cas_run_info *)b;
    if (x->started != y->started) return x->started > y->started ? -1 : 1;
    return strcmp(y->id, x->id);
}

CASDEF int cas_store_runs(cas_store *s, const char *flow, cas_run_info **runs, size_t *count, char *err,
                          size_t errcap) {
    cas_file_entry *e;
    cas__buf recs, text;
    cas_run_info *out;
    size_t n, i;
    char dir[600];
    int rc;
    if (!s || !runs || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *runs = NULL, *count = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if ((rc = cas__file_list(s, flow, 0, 0, &e, &n, err, errcap)) < 0) return rc;
    memset(&recs, 0, sizeof recs), memset(&text, 0, sizeof text);
    recs.a = text.a = &s->alloc;
    cas__buf_put(&text, "", 1); /* offset 0: "" */
    for (i = 0; i < n && rc >= 0; i++) {
        cas__runrec r;
        if (!cas__is_part(&e[i])) continue;
        memset(&r, 0, sizeof r);
        r.id = text.len;
        rc = cas__buf_put(&text, e[i].name, strlen(e[i].name) + 1);
        snprintf(dir, sizeof dir, "%s/%s", flow, e[i].name);
        cas__run_self(s, dir, &r, &text);
        if (!r.started) {
            snprintf(dir, sizeof dir, "%s/%s/_parameters", flow, e[i].name);
            r.started = cas__step_probe(s, dir, 0);
        }
        snprintf(dir, sizeof dir, "%s/%s/end", flow, e[i].name);
        r.finished = cas__step_probe(s, dir, 1) != 0;
        if (rc >= 0) rc = cas__buf_add(&recs, (const char *)&r, sizeof r);
    }
    cas__free(&s->alloc, e);
    if (rc >= 0 && !text.p) rc = CAS_E_NOMEM;
    if (rc >= 0) { /* one block: the records, then their text */
        size_t head = recs.count * sizeof *out;
        if (!(out = (cas_run_info *)cas__alloc(&s->alloc, head + text.len + 1))) rc = CAS_E_NOMEM;
        else {
            char *t = (char *)out + head;
            memcpy(t, text.p, text.len);
            t[text.len] = 0;
            for (i = 0; i < recs.count; i++) {
                cas__runrec r;
                memcpy(&r, recs.p + i * sizeof r, sizeof r);
                out[i].id = t + r.id, out[i].user = t + r.user, out[i].tags = t + r.tags;
                out[i].system_tags = t + r.system_tags, out[i].started = r.started, out[i].finished = r.finished;
            }
            qsort(out, recs.count, sizeof *out, cas__run_cmp);
            *runs = out, *count = recs.count;
        }
    }
    cas__free(&s->alloc, recs.p);
    cas__free(&s->alloc, text.p);
    if (rc < 0) return cas__serr(err, errcap, rc, "Cannot list the runs of '%s': %s", flow, cas_strerror(rc));
    return CAS_OK;
}

CASDEF int cas_task_attempt(const cas_task *t) { return t ? t->attempt : -1; }
CASDEF size_t cas_task_count(const cas_task *t) { return t ? t->count : 0; }
CASDEF const char *cas_task_flow(const cas_task *t) { return t ? t->flow : ""; }

CASDEF int cas_encoding_is_pickle(const char *encoding) {
    const char *e = encoding;
    if (!e) return 1;
    if (!strncmp(e, "gzip+", 5)) e += 5;
    if (strncmp(e, "pickle-v", 8) || !e[8]) return 0;
    for (e += 8; *e; e++)
        if (*e < '0' || *e > '9') return 0;
    return 1;
}

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
/* ---- Metaflow's configuration ---- */

/* The value of "METAFLOW_<name>" in a config.json, if the file has one. */
static int cas__config_file(const char *path, const char *key, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = CAS_E_NOTFOUND;
    unsigned char *text = NULL;
    size_t n = 0, tok;
    cas__json j;
    if (fd < 0) return CAS_E_NOTFOUND;
    if (cas__read_all(fd, NULL, (size_t)1 << 20, &text, &n) != 0) {
        close(fd);
        return CAS_E_NOTFOUND;
    }
    close(fd);
    if (cas__json_parse(&j, (const char *)text, n, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ &&
        (tok = cas__json_get(&j, 0, key)) != 0) {
        if (j.t[tok].type == CAS__J_STR) {
            rc = cas__json_str(&j, tok, buf, cap) == (size_t)-1 ? CAS_NEED_OUTPUT : CAS_OK;
        } else if (j.t[tok].type != CAS__J_NULL) { /* numbers and booleans as their JSON text */
            size_t l = j.t[tok].end - j.t[tok].start;
            if (l + 1 > cap) rc = CAS_NEED_OUTPUT;
            else memcpy(buf, j.s + j.t[tok].start, l), buf[l] = 0, rc = CAS_OK;
        }
    }
    cas__json_free(&j);
    cas__free(NULL, text);
    return rc;
}

/* The nearest `.metaflow` folder above the working directory (Metaflow's walk). */
static int cas__find_dot_metaflow(char *buf, size_t cap) {
    char cwd[4096];
    struct stat st;
    size_t l;
    if (!getcwd(cwd, sizeof cwd)) return CAS_E_NOTFOUND;
    for (;;) {
        l = strlen(cwd);
        snprintf(buf, cap, "%s/.metaflow", l == 1 ? "" : cwd);
        if (strlen(buf) + 1 < cap && stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return CAS_OK;
        if (l <= 1) return CAS_E_NOTFOUND;
        while (l > 1 && cwd[l - 1] != '/') l--;
        cwd[l > 1 ? l - 1 : 1] = 0;
    }
}

CASDEF int cas_metaflow_config(const char *name, char *buf, size_t cap) {
    char key[300], path[4200];
    const char *v, *home, *profile;
    int rc;
    if (!name || !buf || !cap || strlen(name) > 200) return CAS_E_ARG;
    snprintf(key, sizeof key, "METAFLOW_%s", name);
    if ((v = getenv(key)) != NULL) {
        if (strlen(v) + 1 > cap) return CAS_NEED_OUTPUT;
        memcpy(buf, v, strlen(v) + 1);
        return CAS_OK;
    }
    if (cas__find_dot_metaflow(path, sizeof path - 16) == CAS_OK) { /* the local config */
        strcat(path, "/config.json");
        if ((rc = cas__config_file(path, key, buf, cap)) != CAS_E_NOTFOUND) return rc;
    }
    home = getenv("METAFLOW_HOME");
    profile = getenv("METAFLOW_PROFILE");
    if (home && home[0]) snprintf(path, sizeof path, "%s", home);
    else if ((v = getenv("HOME")) != NULL) snprintf(path, sizeof path, "%s/.metaflowconfig", v);
    else return CAS_E_NOTFOUND;
    if (path[0] == '~' && (v = getenv("HOME")) != NULL) { /* os.path.expanduser */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s%s", v, path + 1);
        snprintf(path, sizeof path, "%s", tmp);
    }
    if (profile && profile[0]) snprintf(path + strlen(path), sizeof path - strlen(path), "/config_%s.json", profile);
    else snprintf(path + strlen(path), sizeof path - strlen(path), "/config.json");
    return cas__config_file(path, key, buf, cap);
}

/* Metaflow's rule for every datastore: its root is DATASTORE_SYSROOT_<NAME>, and a
 * root without a scheme (Azure's "container/prefix") is under the datastore's own
 * name. The backend that serves the scheme is found when the root is opened, so
 * the core names none. */
CASDEF int cas_store_default_root(char *buf, size_t cap, char *err, size_t errcap) {
    char ds[64], var[96], sys[4096];
    size_t i;
    int rc;
    if (!buf || !cap) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    buf[0] = 0;
    rc = cas_metaflow_config("DEFAULT_DATASTORE", ds, sizeof ds);
    if (rc == CAS_NEED_OUTPUT)
        return cas__serr(err, errcap, CAS_E_UNSUPPORTED,
                         "METAFLOW_DEFAULT_DATASTORE is longer than a datastore name (at most 15); pass a root");
    if (rc != CAS_OK) snprintf(ds, sizeof ds, "local");
    /* a name that can be a scheme the registry takes (cas__scheme_ok) and a variable's suffix */
    for (i = 0; ds[i]; i++)
        if (!((ds[i] >= 'a' && ds[i] <= 'z') || (i && ds[i] >= '0' && ds[i] <= '9'))) break;
    if (ds[i] || !i || i > 15)
        return cas__serr(err, errcap, CAS_E_UNSUPPORTED,
                         "METAFLOW_DEFAULT_DATASTORE '%.40s' is not a datastore name (a-z and 0-9, at most 15); "
                         "pass a root",
                         ds);
    if (strcmp(ds, "local")) {
        snprintf(var, sizeof var, "DATASTORE_SYSROOT_");
        for (i = 0; ds[i]; i++) var[18 + i] = (char)(ds[i] >= 'a' && ds[i] <= 'z' ? ds[i] - 'a' + 'A' : ds[i]);
        var[18 + i] = 0;
        rc = cas_metaflow_config(var, sys, sizeof sys);
        if (rc != CAS_OK || !sys[0])
            return cas__serr(err, errcap, CAS_E_NOTFOUND,
                             "METAFLOW_DEFAULT_DATASTORE is '%s' but METAFLOW_%s is not set", ds, var);
        if ((strstr(sys, "://") ? 0 : strlen(ds) + 3) + strlen(sys) + 1 > cap)
            return cas__serr(err, errcap, CAS_NEED_OUTPUT, "root too long");
        if (strstr(sys, "://")) snprintf(buf, cap, "%s", sys);
        else snprintf(buf, cap, "%s://%s", ds, sys);
        return CAS_OK;
    }
    if (cas_metaflow_config("DATASTORE_SYSROOT_LOCAL", sys, sizeof sys - 16) == CAS_OK && sys[0]) {
        if (strlen(sys) + 11 > cap) return cas__serr(err, errcap, CAS_NEED_OUTPUT, "root too long");
        snprintf(buf, cap, "%s/.metaflow", sys);
        return CAS_OK;
    }
    if (cas__find_dot_metaflow(buf, cap) == CAS_OK) return CAS_OK;
    buf[0] = 0;
    return cas__serr(err, errcap, CAS_E_NOTFOUND,
                     "no datastore found: no .metaflow above the working directory and "
                     "METAFLOW_DATASTORE_SYSROOT_LOCAL is not set");
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
