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
