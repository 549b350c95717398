/* ---- Azure's dialect: blocks and block lists, listings, its row, its backend ------ */

#define CAS__AZ_META_HEADER "x-ms-meta-metaflow_user_attributes" /* Azure's names are identifiers */

/* Azure has nothing to start: the block ids carry a nonce of this writer's. */
static int cas__az_upload_begin(cas__cloudw *w, char *msg, size_t cap) {
    (void)msg, (void)cap;
    snprintf(w->upload, sizeof w->upload, "%016llx", (unsigned long long)cas__cloud_random(w->cs));
    return CAS_OK;
}

/* Azure: block ids of one length (its rule), unique to this writer, base64. */
static void cas__az_part_query(cas__cloudw *w, int n, cas__buf *q, char *id) {
    char raw[32]; /* "cas-" 16 hex "-" 5 digits: base64 of it is 36 bytes */
    snprintf(raw, sizeof raw, "cas-%.16s-%05d", w->upload, n);
    cas__b64((const unsigned char *)raw, strlen(raw), id);
    cas__buf_addz(q, "blockid=");
    cas__uri_encode(q, id, 0);
    cas__buf_addz(q, "&comp=block");
}

static int cas__az_part_entry(const cas__rq *r, int n, const char *id, char *entry, size_t cap) {
    (void)n;
    if (r->status != 201) return 0;
    snprintf(entry, cap, "<Latest>%s</Latest>", id);
    return 1;
}

/* Azure: PUT ?comp=metadata. S3: PUT with x-amz-copy-source onto itself: new
 * metadata, the same bytes. */
static int cas__az_set_meta(cas__cloudw *w, int *stored, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__rq r;
    int rc;
    cas__rq_init(&r, "PUT", &cs->alloc);
    if (cas__cloud_url(cs, &r.url, w->name, "comp=metadata") < 0 ||
        cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0)
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
        if (r.status == 200) *stored = 1;
        else if ((rc = cas__cloud_answer_fail(&r, msg, cap)) == CAS_E_NOTFOUND) rc = CAS_E_IO;
    }
    cas__rq_free(&r);
    return rc;
}

/* Azure: Put Block List makes the blocks the blob, with its metadata (repeatable). */
static void cas__az_complete_query(cas__cloudw *w, cas__buf *q) {
    (void)w;
    cas__buf_addz(q, "comp=blocklist");
}

static int cas__az_complete_answer(cas__cloudw *w, cas__rq *r, char *msg, size_t cap) {
    int rc;
    (void)w;
    if (r->status == 201) return CAS_OK;
    return (rc = cas__cloud_answer_fail(r, msg, cap)) == CAS_E_NOTFOUND ? CAS_E_IO : rc;
}

/* Azure's rule for container names: 3-63 of [a-z0-9-]. */
static int cas__container_ok(const char *b, size_t n) {
    size_t i;
    if (n < 3 || n > 63) return 0;
    for (i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-')) return 0;
    return 1;
}

static void cas__az_no_creds(const cas__cloud *cs, char *msg, size_t cap) {
    (void)cs;
    cas__fmt(msg, cap,
             "no Azure credentials found (looked for AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, "
             "AZURE_STORAGE_CONNECTION_STRING, a SAS in the endpoint, a service principal "
             "(AZURE_CLIENT_SECRET), workload identity (AZURE_FEDERATED_TOKEN_FILE) and a managed "
             "identity)");
}

/* List Blobs. */
static void cas__az_list_query(const cas__cloud *cs, cas__buf *q, const char *strip, const char *next, int delimiter) {
    cas__buf_addz(q, "comp=list");
    if (delimiter) cas__buf_addz(q, "&delimiter=%2F");
    if (next[0]) cas__buf_addz(q, "&marker="), cas__uri_encode(q, next, 0);
    cas__buf_fmt(q, "&maxresults=%d&prefix=", (int)cas__cloudp(cs, CAS_PARAM_CLOUD_LIST_PAGE));
    cas__uri_encode(q, strip, 0);
    cas__buf_addz(q, "&restype=container");
}

static const cas__dialect cas__az_dialect = {CAS__AZ_META_HEADER,
                                             "x-ms-blob-type: BlockBlob",
                                             0,
                                             1,
                                             CAS__AZC_LAST,
                                             cas__az_cred_link,
                                             cas__az_no_creds,
                                             cas__az_list_query,
                                             cas__az_upload_begin,
                                             cas__az_part_query,
                                             cas__az_part_entry,
                                             "PUT",
                                             "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>",
                                             "</BlockList>",
                                             cas__az_complete_query,
                                             1,
                                             cas__az_complete_answer,
                                             cas__az_set_meta,
                                             "CAS_AZURE_",
                                             cas__az_authorize,
                                             "x-ms-error-code",
                                             cas__az_cred_check};

static int cas__az_backend(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    cas__cloud *cs;
    cas__az_cfg g;
    const char *v;
    size_t k;
    char why[CAS__MSG];
    int rc = cas__cloud_new(&cs, &cas__az_dialect, url, 8, cas__container_ok,
                            "azure://CONTAINER[/PREFIX] with a valid container name", alloc, err, errcap);
    if (rc < 0) return rc;
    cs->path_style = 1;
    if ((rc = cas__az_settings(&g, why, sizeof why)) < 0) {
        cas__az_cfg_wipe(&g);
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, rc, "Cannot open '%.300s': %s", url, why);
    }
    k = strlen(g.endpoint);
    while (k && g.endpoint[k - 1] == '/') k--;
    cs->endpoint = cas__strdup_a(&cs->alloc, g.endpoint, k);
    cas__az_cfg_wipe(&g);
    /* what the Azure SDK's HTTP stack (requests) takes for other CA certificates */
    if ((v = cas__env("REQUESTS_CA_BUNDLE")) || (v = cas__env("CURL_CA_BUNDLE")))
        cs->ca_bundle = cas__strdup_a(&cs->alloc, v, strlen(v));
    if (!cs->endpoint || (v && !cs->ca_bundle)) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    return cas__cloud_ready(cs, out, url, err, errcap);
}
