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
