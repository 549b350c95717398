/* ---- object stores: existence, listings, removal, gc --------------------- */

static int cas__cloud_exists(void *u, const char *name, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__rq r;
    int rc;
    cas__rq_init(&r, "HEAD", &cs->alloc);
    if (cas__cloud_url(cs, &r.url, name, NULL) < 0) rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
        if (r.status == 200) rc = 1;
        else if (r.status == 404) rc = 0;
        else rc = cas__cloud_answer_fail(&r, msg, cap);
    }
    cas__rq_free(&r);
    return rc;
}

/* One ListObjectsV2 (or ListMultipartUploads) page, record by record. */
typedef struct cas__cloud_page {
    const char *strip; /* the key prefix names are given relative to */
    size_t strip_len;
    cas_list_fn fn;                                                               /* objects and folders */
    int (*ufn)(void *ctx, const char *key, const char *upload_id, int64_t began); /* or uploads */
    void *ctx;
    int rc, stop, truncated;
    uint64_t entries;
    char key[1100], size[32], mtime[64], upload_id[512];
    char next[1100], next_upload[512]; /* NextContinuationToken / NextKeyMarker, NextUploadIdMarker */
    int url_encoded, bad;
} cas__cloud_page;

static void cas__cloud_page_leaf(void *ctx, const char *path, const char *text, size_t len, int cut) {
    cas__cloud_page *pg = (cas__cloud_page *)ctx;
    char *dst = NULL;
    size_t dcap = 0;
    /* S3's ListObjectsV2 and ListMultipartUploads, Azure's List Blobs */
    if (cas__ends_with(path, "Contents/Key") || cas__ends_with(path, "CommonPrefixes/Prefix") ||
        cas__ends_with(path, "Upload/Key") || cas__ends_with(path, "Blob/Name") ||
        cas__ends_with(path, "BlobPrefix/Name"))
        dst = pg->key, dcap = sizeof pg->key;
    else if (cas__ends_with(path, "Contents/Size") || cas__ends_with(path, "Blob/Properties/Content-Length"))
        dst = pg->size, dcap = sizeof pg->size;
    else if (cas__ends_with(path, "Contents/LastModified") || cas__ends_with(path, "Upload/Initiated") ||
             cas__ends_with(path, "Blob/Properties/Last-Modified"))
        dst = pg->mtime, dcap = sizeof pg->mtime;
    else if (cas__ends_with(path, "Upload/UploadId")) dst = pg->upload_id, dcap = sizeof pg->upload_id;
    else if (cas__ends_with(path, "NextContinuationToken") || cas__ends_with(path, "NextKeyMarker") ||
             cas__ends_with(path, "EnumerationResults/NextMarker")) {
        dst = pg->next, dcap = sizeof pg->next;
        if (cas__ends_with(path, "NextMarker")) pg->truncated = len > 0; /* Azure says so by a marker alone */
    } else if (cas__ends_with(path, "NextUploadIdMarker")) dst = pg->next_upload, dcap = sizeof pg->next_upload;
    else if (cas__ends_with(path, "IsTruncated")) pg->truncated = len == 4 && !memcmp(text, "true", 4);
    else if (cas__ends_with(path, "EncodingType")) pg->url_encoded = len == 3 && !memcmp(text, "url", 3);
    if (!dst) return;
    if (cut || len + 1 > dcap) { /* a value longer than S3 allows: this record is skipped */
        pg->bad = 1;
        return;
    }
    memcpy(dst, text, len), dst[len] = 0;
}

static void cas__cloud_page_end(void *ctx, const char *path) {
    cas__cloud_page *pg = (cas__cloud_page *)ctx;
    int kind, rc;
    size_t kl;
    char *name;
    /* only the records of the listing asked for (an <Upload> in an object listing is
     * not an object; found by fuzz_cloud) */
    if (!pg->ufn && (cas__ends_with(path, "ListBucketResult/Contents") || cas__ends_with(path, "Blobs/Blob")))
        kind = CAS_ENTRY_FILE;
    else if (!pg->ufn &&
             (cas__ends_with(path, "ListBucketResult/CommonPrefixes") || cas__ends_with(path, "Blobs/BlobPrefix")))
        kind = CAS_ENTRY_DIR;
    else if (pg->ufn && cas__ends_with(path, "Upload")) kind = CAS_ENTRY_OTHER;
    else return;
    if (!pg->bad && !pg->stop && pg->rc >= 0) {
        kl = pg->url_encoded ? cas__uri_decode(pg->key) : strlen(pg->key);
        if (memchr(pg->key, 0, kl)) kl = 0; /* "%00" in a name: refused (skipped), not cut at the NUL */
        if (kind == CAS_ENTRY_DIR && kl && pg->key[kl - 1] == '/') pg->key[--kl] = 0;
        if (kl > pg->strip_len && !memcmp(pg->key, pg->strip, pg->strip_len)) { /* only what is under the folder */
            name = pg->key + pg->strip_len;
            pg->entries++;
            if (pg->ufn) {
                rc = pg->ufn(pg->ctx, name, pg->upload_id, cas__iso8601(pg->mtime));
            } else {
                int64_t t = cas__iso8601(pg->mtime);
                if (t < 0) t = (int64_t)curl_getdate(pg->mtime, NULL); /* Azure's: RFC 1123 */
                rc = pg->fn(pg->ctx, name, kind, (uint64_t)strtoull(pg->size, NULL, 10), t < 0 ? 0 : t);
            }
            if (rc > 0) pg->stop = 1;
            else if (rc < 0) pg->rc = rc;
        }
    }
    pg->key[0] = pg->size[0] = pg->mtime[0] = pg->upload_id[0] = 0, pg->bad = 0;
}

/* Pages through a listing under key prefix `strip` (ListObjectsV2, or with
 * uploads ListMultipartUploads), each record to fn. Returns the count of
 * records seen, or an error. */
static int64_t cas__cloud_list_pages(cas__cloud *cs, const char *strip, int delimiter, cas_list_fn fn,
                                     int (*ufn)(void *, const char *, const char *, int64_t), void *ctx, char *msg,
                                     size_t cap) {
    cas__cloud_page *pg = (cas__cloud_page *)cas__calloc(&cs->alloc, sizeof *pg);
    cas__buf q;
    int64_t total = 0;
    int rc = CAS_OK;
    if (!pg) return cas__oom(msg, cap);
    memset(&q, 0, sizeof q);
    q.a = &cs->alloc;
    pg->strip = strip, pg->strip_len = strlen(strip), pg->fn = fn, pg->ufn = ufn, pg->ctx = ctx;
    for (;;) {
        cas__rq r;
        char next[1100], next_upload[512];
        q.len = 0;
        /* every query in sorted order: SigV4 signs it as written */
        if (ufn) {
            if (pg->next[0]) cas__buf_addz(&q, "key-marker="), cas__uri_encode(&q, pg->next, 0), cas__buf_addz(&q, "&");
            cas__buf_addz(&q, "prefix="), cas__uri_encode(&q, strip, 0);
            if (pg->next_upload[0]) cas__buf_addz(&q, "&upload-id-marker="), cas__uri_encode(&q, pg->next_upload, 0);
            cas__buf_addz(&q, "&uploads=");
        } else {
            cs->d->list_query(cs, &q, strip, pg->next, delimiter);
        }
        cas__rq_init(&r, "GET", &cs->alloc);
        r.keep = CAS__CLOUD_XML_MAX;
        if (!q.p || cas__cloud_url(cs, &r.url, NULL, q.p) < 0) rc = cas__oom(msg, cap);
        else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK && r.status != 200)
            rc = cas__cloud_answer_fail(&r, msg, cap);
        if (rc == CAS_OK) {
            snprintf(next, sizeof next, "%s", pg->next);
            snprintf(next_upload, sizeof next_upload, "%s", pg->next_upload);
            pg->truncated = 0, pg->next[0] = pg->next_upload[0] = 0;
            rc = cas__xml_parse(r.body.p ? r.body.p : "", r.body.len, cas__cloud_page_leaf, cas__cloud_page_end, pg,
                                msg, cap);
            if (rc == CAS_OK && pg->rc < 0) rc = pg->rc, cas__fmt(msg, cap, "%s", cas_strerror(rc));
            if (rc == CAS_OK && pg->truncated && !strcmp(next, pg->next) && !strcmp(next_upload, pg->next_upload)) {
                cas__fmt(msg, cap, "the listing does not advance (the same continuation twice)");
                rc = CAS_E_CORRUPT;
            }
        }
        cas__rq_free(&r);
        if (rc < 0 || pg->stop || !pg->truncated || (!pg->next[0] && !pg->next_upload[0])) break;
    }
    total = (int64_t)pg->entries;
    cas__free(&cs->alloc, q.p);
    cas__free(&cs->alloc, pg);
    return rc < 0 ? rc : total;
}

static int cas__cloud_list(void *u, const char *dir, int recursive, cas_list_fn fn, void *ctx, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__buf strip;
    int64_t n;
    memset(&strip, 0, sizeof strip);
    strip.a = &cs->alloc;
    cas__buf_addz(&strip, cs->prefix);
    if (dir[0]) cas__buf_addz(&strip, dir), cas__buf_addz(&strip, "/");
    if (!strip.p) cas__buf_put(&strip, "", 0);
    n = strip.p ? cas__cloud_list_pages(cs, strip.p, !recursive, fn, NULL, ctx, msg, cap) : cas__oom(msg, cap);
    cas__free(&cs->alloc, strip.p);
    if (n == 0) { /* an object store's folder exists when something is under it */
        cas__fmt(msg, cap, "nothing under '%.300s'", dir);
        return CAS_E_NOTFOUND;
    }
    return n < 0 ? (int)n : CAS_OK;
}

static int cas__cloud_remove(void *u, const char *name, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__rq r;
    int rc = cas__cloud_exists(u, name, msg, cap);
    if (rc <= 0) return rc;
    cas__rq_init(&r, "DELETE", &cs->alloc);
    if (cas__cloud_url(cs, &r.url, name, NULL) < 0) rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK)
        rc = r.status == 204 || r.status == 200 || r.status == 202 ? 1 : cas__cloud_answer_fail(&r, msg, cap);
    cas__rq_free(&r);
    return rc;
}

typedef struct cas__cloud_gcx {
    cas__cloud *cs;
    int64_t before;
    uint64_t aborted;
} cas__cloud_gcx;

static int cas__cloud_gc_one(void *ctx, const char *name, const char *upload_id, int64_t initiated) {
    cas__cloud_gcx *g = (cas__cloud_gcx *)ctx;
    cas__cloudw w;
    if (initiated < 0 || initiated > g->before) return 0; /* a live writer's, or undated: left alone */
    memset(&w, 0, sizeof w);
    w.cs = g->cs, w.name = (char *)name;
    snprintf(w.upload, sizeof w.upload, "%s", upload_id);
    cas__cloudw_abort_upload(&w);
    g->aborted++;
    return 0;
}

/* Multipart uploads under the prefix older than CAS_PARAM_CLOUD_GC_AGE: a killed
 * writer's parts, which S3 keeps (and bills) until someone aborts them. */
static int cas__cloud_gc(void *u, uint64_t *removed, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloud_gcx g;
    int64_t n;
    g.cs = cs, g.aborted = 0;
    *removed = 0;
    if (cs->d->drops_uploads) return CAS_OK; /* Azure: a killed writer's uncommitted blocks go by themselves */
    g.before = cas__now() - cas__cloudp(cs, CAS_PARAM_CLOUD_GC_AGE);
    n = cas__cloud_list_pages(cs, cs->prefix, 0, NULL, cas__cloud_gc_one, &g, msg, cap);
    *removed = g.aborted;
    return n < 0 ? (int)n : CAS_OK;
}
