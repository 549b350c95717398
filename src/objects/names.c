/* ---- object stores: names, URLs, answers --------------------------------- */

/* The URL of an object (name relative to the store's prefix, NULL for the
 * bucket itself) with an already sorted and encoded query (SigV4 signs it as written). */
static int cas__cloud_url(const cas__cloud *cs, cas__buf *u, const char *name, const char *query) {
    const char *sep = strstr(cs->endpoint, "://");
    u->len = 0;
    if (cs->path_style || !sep) {
        cas__buf_addz(u, cs->endpoint);
        cas__buf_addz(u, "/");
        cas__uri_encode(u, cs->bucket, 0);
    } else { /* virtual-hosted: https://bucket.host */
        cas__buf_put(u, cs->endpoint, (size_t)(sep + 3 - cs->endpoint));
        cas__buf_addz(u, cs->bucket);
        cas__buf_addz(u, ".");
        cas__buf_addz(u, sep + 3);
    }
    if (name || cs->d->root_slash) cas__buf_addz(u, "/");
    if (name) {
        cas__uri_encode(u, cs->prefix, 1);
        cas__uri_encode(u, name, 1);
    }
    if (query) cas__buf_addz(u, "?"), cas__buf_addz(u, query);
    return u->p ? CAS_OK : CAS_E_NOMEM;
}

/* The headers every write of an object carries: its metadata, and the
 * line its dialect adds (S3: the encryption Metaflow asks for). */
static int cas__cloud_write_headers(const cas__cloud *cs, struct curl_slist **h, const char *meta, size_t ml) {
    char line[CAS__CLOUD_META_MAX + 64];
    if (meta && ml > CAS__CLOUD_META_MAX) return CAS_E_ARG;
    if (meta && ml) { /* none: no header (curl would drop an empty one after it was signed) */
        snprintf(line, sizeof line, "%s: %.*s", cs->d->meta_header, (int)ml, meta);
        if (!(*h = curl_slist_append(*h, line))) return CAS_E_NOMEM;
    }
    if (cs->write_header && !(*h = curl_slist_append(*h, cs->write_header))) return CAS_E_NOMEM;
    return CAS_OK;
}

/* A final answer that is not what was wanted, as a status and a reason. */
static int cas__cloud_answer_fail(const cas__rq *r, char *msg, size_t cap) {
    cas__rq_why(r, CURLE_OK, msg, cap);
    if (r->status == 404 && strcmp(r->code, "NoSuchBucket") && strcmp(r->code, "NoSuchUpload") &&
        strcmp(r->code, "ContainerNotFound"))
        return CAS_E_NOTFOUND;
    return CAS_E_IO;
}
