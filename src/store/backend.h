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
