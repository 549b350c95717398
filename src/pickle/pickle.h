#define CAS_PREVIEW_MAX_OUTPUT 1
#define CAS_PREVIEW_MAX_ITEMS 2
#define CAS_PREVIEW_MAX_DEPTH 3
#define CAS_PREVIEW_MAX_MEMO 4
#define CAS_PREVIEW_MAX_READ 5
#define CAS_PREVIEW_MAX_OPS 6
#define CAS_PREVIEW_MAX_VALUES 7
#define CAS_PREVIEW_JSON 8 /* 1: cas_preview_text gives a JSON tree, not repr-like text */
#define CAS_PREVIEW_MAX_MEMORY 9

typedef struct cas_preview cas_preview;

/* A source of bytes: up to cap into buf, *got = 0 at the end. CAS_OK or an error. */
typedef int (*cas_preview_read_fn)(void *user, void *buf, size_t cap, size_t *got);

CASDEF int cas_preview_create(cas_preview **out, const cas_allocator *alloc);
CASDEF int cas_preview_set_param(cas_preview *p, int param, int64_t value);
/* Reads a pickle and renders it; see Results above. The preview may be run again. */
CASDEF int cas_preview_run(cas_preview *p, cas_preview_read_fn read, void *user);
CASDEF int cas_preview_bytes(cas_preview *p, const void *pickle, size_t n);
/* The rendered text (NUL-terminated; never NULL), valid until the next run or free. */
CASDEF const char *cas_preview_text(const cas_preview *p, size_t *len);
/* Why the last run did not end with CAS_OK ("" if it did). */
CASDEF const char *cas_preview_message(const cas_preview *p);
/* Decoded bytes the last run read (less than the pickle when it stopped early). */
CASDEF uint64_t cas_preview_bytes_read(const cas_preview *p);
CASDEF void cas_preview_free(cas_preview *p);

/* An artifact that is not a pickle (cas_encoding_is_pickle(encoding) == 0): never
 * parsed; the preview names the encoding and the size (-1: unknown) and shows the
 * first bytes (8 per CAS_PREVIEW_MAX_ITEMS, at most 1 KiB), the only ones read:
 * <'json' artifact, not a pickle, 123 bytes: b'{"a": 1, '...>, or in JSON
 * {"type": "encoded", "encoding": "json", "size": 123, "repr": "<...>"}. */
CASDEF int cas_preview_encoded(cas_preview *p, const char *encoding, int64_t size, cas_preview_read_fn read,
                               void *user);

#ifndef CAS_NO_STORE
/* A blob of a store (any backend), decoded only as far as the preview reads. */
CASDEF int cas_store_preview(cas_store *s, const char *flow, const char *key, cas_preview *p, char *err, size_t errcap);
/* A stream opened by the caller (cas_stream_open, cas_stream_open_file). */
CASDEF int cas_stream_preview(cas_stream *st, cas_preview *p);
/* cas_preview_encoded of a blob of a store. */
CASDEF int cas_store_preview_encoded(cas_store *s, const char *flow, const char *key, const char *encoding,
                                     int64_t size, cas_preview *p, char *err, size_t errcap);
#endif
