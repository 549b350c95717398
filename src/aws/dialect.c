/* ---- S3's dialect: multipart uploads, listings, its row, its backend -------------- */

#define CAS__S3_META_HEADER "x-amz-meta-metaflow-user-attributes"

/* POST ?uploads=: a new multipart upload, with the object's metadata. */
static int cas__s3_upload_begin(cas__cloudw *w, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__rq r;
    cas__xml_pick p;
    int rc;
    cas__rq_init(&r, "POST", &cs->alloc);
    r.keep = (size_t)1 << 20; /* repeated after a lost answer, it leaves an empty upload behind, which gc removes */
    if (cas__cloud_url(cs, &r.url, w->name, "uploads=") < 0 ||
        cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0)
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK && r.status != 200)
        rc = cas__cloud_answer_fail(&r, msg, cap);
    if (rc == CAS_OK) {
        memset(&p, 0, sizeof p);
        w->upload[0] = 0;
        p.suffix[0] = "UploadId", p.out[0] = w->upload, p.cap[0] = sizeof w->upload;
        if (cas__xml_parse(r.body.p ? r.body.p : "", r.body.len, cas__xml_pick_leaf, NULL, &p, msg, cap) < 0 ||
            !w->upload[0])
            rc = cas__cloudw_fail(msg, cap, "starting a multipart upload", "no UploadId in the answer");
    } else {
        char why[400];
        snprintf(why, sizeof why, "%s", msg);
        cas__cloudw_fail(msg, cap, "starting a multipart upload", why);
    }
    cas__rq_free(&r);
    return rc;
}

/* S3: part n of the upload; its entry names it by number and ETag. */
static void cas__s3_part_query(cas__cloudw *w, int n, cas__buf *q, char *id) {
    cas__buf_fmt(q, "partNumber=%d&uploadId=", n);
    cas__uri_encode(q, w->upload, 0);
    id[0] = 0;
}

static int cas__s3_part_entry(const cas__rq *r, int n, const char *id, char *entry, size_t cap) {
    (void)id;
    if (r->status != 200 || !r->etag[0]) return 0;
    snprintf(entry, cap, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, r->etag);
    return 1;
}

static int cas__s3_set_meta(cas__cloudw *w, int *stored, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__rq r;
    cas__buf src;
    int rc;
    memset(&src, 0, sizeof src);
    src.a = &cs->alloc;
    cas__buf_addz(&src, "x-amz-copy-source: /");
    cas__uri_encode(&src, cs->bucket, 0);
    cas__buf_addz(&src, "/");
    cas__uri_encode(&src, cs->prefix, 1);
    cas__uri_encode(&src, w->name, 1);
    cas__rq_init(&r, "PUT", &cs->alloc);
    r.keep = (size_t)1 << 20;
    if (!src.p || cas__cloud_url(cs, &r.url, w->name, NULL) < 0 || !(r.hdr = curl_slist_append(r.hdr, src.p)) ||
        !(r.hdr = curl_slist_append(r.hdr, "x-amz-metadata-directive: REPLACE")) ||
        cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0)
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
        char code[64], message[256];
        cas__xml_error(r.body.p ? r.body.p : "", r.body.len, code, sizeof code, message, sizeof message);
        if (r.status != 200 || code[0]) { /* a copy can fail with 200 and an <Error> */
            if (code[0])
                snprintf(r.code, sizeof r.code, "%s", code), snprintf(r.message, sizeof r.message, "%s", message);
            rc = cas__cloud_answer_fail(&r, msg, cap);
            if (rc == CAS_E_NOTFOUND) rc = CAS_E_IO;
        } else {
            *stored = 1;
        }
    }
    cas__free(&cs->alloc, src.p);
    cas__rq_free(&r);
    return rc;
}

static void cas__s3_complete_query(cas__cloudw *w, cas__buf *q) {
    cas__buf_addz(q, "uploadId=");
    cas__uri_encode(q, w->upload, 0);
}

/* S3 answers 200 with an <Error> too; a retry that finds the upload gone asks the
 * object whether the first try landed. */
static int cas__s3_complete_answer(cas__cloudw *w, cas__rq *r, char *msg, size_t cap) {
    char code[64], message[256];
    int rc;
    cas__xml_error(r->body.p ? r->body.p : "", r->body.len, code, sizeof code, message, sizeof message);
    if (r->tries > 1 && r->status == 404 && !strcmp(code, "NoSuchUpload") && cas__cloudw_landed(w))
        return CAS_OK; /* an earlier try completed it; only its answer was lost */
    if (r->status == 200 && !code[0]) return CAS_OK;
    if (code[0]) snprintf(r->code, sizeof r->code, "%s", code), snprintf(r->message, sizeof r->message, "%s", message);
    return (rc = cas__cloud_answer_fail(r, msg, cap)) == CAS_E_NOTFOUND ? CAS_E_IO : rc;
}

/* S3's rules for bucket names, loosely (other servers allow more): 3-63 of [a-z0-9.-_]. */
static int cas__bucket_ok(const char *b, size_t n) {
    size_t i;
    if (n < 3 || n > 63) return 0;
    for (i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-' ||
              b[i] == '_' || (b[i] >= 'A' && b[i] <= 'Z')))
            return 0;
    return 1;
}

static void cas__s3_no_creds(const cas__cloud *cs, char *msg, size_t cap) {
    cas__fmt(msg, cap,
             "no AWS credentials found (looked for AWS_ACCESS_KEY_ID, web identity, profile '%s' in the shared "
             "files, the container endpoint and EC2 instance metadata)",
             cas__aws_of(cs)->profile);
}

/* ListObjectsV2, keys URL-encoded in the answer. */
static void cas__s3_list_query(const cas__cloud *cs, cas__buf *q, const char *strip, const char *next, int delimiter) {
    if (next[0]) cas__buf_addz(q, "continuation-token="), cas__uri_encode(q, next, 0), cas__buf_addz(q, "&");
    if (delimiter) cas__buf_addz(q, "delimiter=%2F&");
    cas__buf_fmt(q,
                 "encoding-type=url&list-type=2&max-keys=%d&prefix=", (int)cas__cloudp(cs, CAS_PARAM_CLOUD_LIST_PAGE));
    cas__uri_encode(q, strip, 0);
}

static const cas__dialect cas__s3_dialect = {CAS__S3_META_HEADER,
                                             NULL,
                                             1,
                                             0,
                                             CAS__CRED_IMDS,
                                             cas__cred_link,
                                             cas__s3_no_creds,
                                             cas__s3_list_query,
                                             cas__s3_upload_begin,
                                             cas__s3_part_query,
                                             cas__s3_part_entry,
                                             "POST",
                                             "<CompleteMultipartUpload>",
                                             "</CompleteMultipartUpload>",
                                             cas__s3_complete_query,
                                             0,
                                             cas__s3_complete_answer,
                                             cas__s3_set_meta,
                                             "CAS_S3_",
                                             cas__s3_authorize,
                                             NULL,
                                             NULL};
static int cas__s3_backend(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    cas__cloud *cs;
    cas__aws *aws;
    const char *v;
    char tmp[2048];
    size_t k;
    int rc = cas__cloud_new(&cs, &cas__s3_dialect, url, 5, cas__bucket_ok,
                            "s3://BUCKET[/PREFIX] with a valid bucket name", alloc, err, errcap);
    if (rc < 0) return rc;
    /* the profile, the region, the endpoint and its addressing */
    if (!(cs->own = aws = (cas__aws *)cas__calloc(&cs->alloc, sizeof *aws))) goto nomem;
    v = cas__env("AWS_PROFILE");
    if (!v) v = cas__env("AWS_DEFAULT_PROFILE");
    snprintf(aws->profile, sizeof aws->profile, "%s", v ? v : "default");
    if ((v = cas__env("AWS_REGION")) || (v = cas__env("AWS_DEFAULT_REGION")))
        snprintf(aws->region, sizeof aws->region, "%s", v);
    else if (cas__profile_get(cs, 0, "region", tmp, sizeof tmp) == CAS_OK)
        snprintf(aws->region, sizeof aws->region, "%.63s", tmp);
    else snprintf(aws->region, sizeof aws->region, "us-east-1");
    for (k = 0; aws->region[k]; k++)
        if (!isalnum((unsigned char)aws->region[k]) && aws->region[k] != '-') {
            cas__cloud_destroy(cs);
            return cas__serr(err, errcap, CAS_E_ARG, "'%.60s' is not an AWS region", v ? v : tmp);
        }
    snprintf(aws->sigv4, sizeof aws->sigv4, "aws:amz:%s:s3", aws->region);
    if (cas_metaflow_config("S3_ENDPOINT_URL", tmp, sizeof tmp) == CAS_OK && tmp[0]) v = tmp;
    else if (!(v = cas__env("AWS_ENDPOINT_URL_S3")) && !(v = cas__env("AWS_ENDPOINT_URL"))) {
        snprintf(tmp, sizeof tmp, "https://s3.%s.amazonaws.com", aws->region);
        v = tmp;
    }
    if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, CAS_E_ARG, "the S3 endpoint '%.300s' is not an http(s) URL", v);
    }
    k = strlen(v);
    while (k && v[k - 1] == '/') k--;
    if (!(cs->endpoint = cas__strdup_a(&cs->alloc, v, k))) goto nomem;
    v = cas__env("CAS_S3_ADDRESSING_STYLE");
    if (v && strcmp(v, "path") && strcmp(v, "virtual")) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, CAS_E_ARG, "CAS_S3_ADDRESSING_STYLE is 'path' or 'virtual', not '%.40s'", v);
    }
    if (v) cs->path_style = !strcmp(v, "path");
    else /* AWS: virtual-hosted, unless the name cannot be a host name; anything else: path-style */
        cs->path_style = !strstr(cs->endpoint, ".amazonaws.com") || strchr(cs->bucket, '.') ||
                         strpbrk(cs->bucket, "_ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (cas_metaflow_config("S3_SERVER_SIDE_ENCRYPTION", tmp, sizeof tmp) == CAS_OK && tmp[0]) {
        char line[160]; /* Azure encrypts every blob: only S3 is asked */
        snprintf(line, sizeof line, "x-amz-server-side-encryption: %.100s", tmp);
        if (!(cs->write_header = cas__strdup_a(&cs->alloc, line, strlen(line)))) goto nomem;
    }
    if ((v = cas__env("AWS_CA_BUNDLE")) && !(cs->ca_bundle = cas__strdup_a(&cs->alloc, v, strlen(v)))) goto nomem;
    return cas__cloud_ready(cs, out, url, err, errcap);
nomem:
    cas__cloud_destroy(cs);
    return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
}
