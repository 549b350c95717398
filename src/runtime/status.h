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
