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
