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
