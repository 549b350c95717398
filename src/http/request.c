/* ---- requests: signing, retries, the service's error codes --------------- */

typedef struct cas__rq {
    /* the request */
    const char *method; /* GET, HEAD, PUT, POST, DELETE */
    cas__buf url;
    struct curl_slist *hdr;  /* the caller's headers (all signed) */
    const unsigned char *up; /* PUT / POST body */
    size_t up_len;
    const char *up_sha; /* its hex SHA-256, or NULL to compute it */
    int sign;           /* authorized with the store's credentials, as its dialect does */
    int quick;          /* credential endpoints: short timeouts, few tries */
    size_t keep;        /* bytes of a 2xx body to keep */
    long recv_buf;      /* libcurl's receive buffer (CURLOPT_BUFFERSIZE); 0: its default */
    const cas_allocator *body_alloc;
    /* the response */
    CURL *e;
    long status;
    cas__buf body;
    int64_t length; /* Content-Length, -1 if none */
    char etag[130], range[128];
    char meta[CAS__CLOUD_META_MAX + 1];
    size_t meta_len;
    int has_meta, too_big, hdr_done;
    int64_t mtime;
    char code[64], message[256]; /* the service's error (S3's <Error>, Azure's code header) */
    char curlerr[CURL_ERROR_SIZE];
    size_t up_pos;
    int tries;
    const char *meta_name, *code_name; /* the dialect's metadata and error-code headers */
} cas__rq;

static void cas__rq_init(cas__rq *r, const char *method, const cas_allocator *a) {
    memset(r, 0, sizeof *r);
    r->method = method;
    r->url.a = r->body.a = r->body_alloc = a;
    r->length = -1;
    r->sign = 1;
}

static void cas__rq_reset_response(cas__rq *r) {
    if (r->body.p) cas__wipe(r->body.p, r->body.len);
    r->body.len = 0;
    if (r->body.p) r->body.p[0] = 0;
    r->status = 0, r->length = -1, r->has_meta = 0, r->meta_len = 0, r->too_big = 0, r->mtime = 0, r->hdr_done = 0;
    r->etag[0] = r->range[0] = r->code[0] = r->message[0] = r->curlerr[0] = 0;
    r->up_pos = 0;
}

static void cas__rq_free(cas__rq *r) {
    cas__free(r->url.a, r->url.p);
    if (r->body.p) cas__wipe(r->body.p, r->body.len); /* credential answers pass through here */
    cas__free(r->body.a, r->body.p);
    curl_slist_free_all(r->hdr);
    memset(&r->url, 0, sizeof r->url), memset(&r->body, 0, sizeof r->body);
    r->hdr = NULL;
}

/* The body handed over to the caller (allocated with body_alloc). */
static unsigned char *cas__rq_take_body(cas__rq *r, size_t *len) {
    unsigned char *p = (unsigned char *)r->body.p;
    *len = r->body.len;
    memset(&r->body, 0, sizeof r->body);
    r->body.a = r->body_alloc;
    return p;
}

static long cas__rq_status(cas__rq *r);

static int cas__header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen) {
    size_t l = strlen(name), i;
    if (n <= l || line[l] != ':') return 0;
    for (i = 0; i < l; i++)
        if (tolower((unsigned char)line[i]) != name[i]) return 0;
    i = l + 1;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    *val = line + i;
    *vlen = n - i;
    while (*vlen && (line[i + *vlen - 1] == '\r' || line[i + *vlen - 1] == '\n' || line[i + *vlen - 1] == ' '))
        (*vlen)--;
    return 1;
}

/* Content-Range: "bytes FIRST-LAST/TOTAL" (RFC 9110 14.4), digits only; 0 if not that
 * (a "*" total included: a resume needs the object's size). */
static int cas__content_range(const char *s, uint64_t *first, uint64_t *last, uint64_t *total) {
    uint64_t *v[3];
    const char seps[3] = {'-', '/', 0};
    int k;
    v[0] = first, v[1] = last, v[2] = total;
    if (strncasecmp(s, "bytes ", 6)) return 0;
    for (s += 6, k = 0; k < 3; k++, s++) {
        const char *d = s;
        for (*v[k] = 0; *s >= '0' && *s <= '9' && s - d < 19; s++) *v[k] = *v[k] * 10 + (uint64_t)(*s - '0');
        if (s == d || *s != seps[k]) return 0;
    }
    return *first <= *last && *last < *total;
}

static size_t cas__rq_header(char *line, size_t size, size_t nitems, void *u) {
    cas__rq *r = (cas__rq *)u;
    size_t n = size * nitems, vl;
    const char *v;
    if (n >= 5 && !memcmp(line, "HTTP/", 5)) { /* a new response (after a 100 Continue, say) */
        r->length = -1, r->has_meta = 0, r->meta_len = 0, r->etag[0] = r->range[0] = r->code[0] = 0, r->mtime = 0;
    } else if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) { /* the end of a response's headers */
        r->hdr_done = cas__rq_status(r) >= 200;
    } else if (cas__header_is(line, n, "content-length", &v, &vl)) {
        char tmp[32];
        if (vl && vl < sizeof tmp) memcpy(tmp, v, vl), tmp[vl] = 0, r->length = (int64_t)strtoll(tmp, NULL, 10);
    } else if (cas__header_is(line, n, "etag", &v, &vl)) {
        if (vl < sizeof r->etag) memcpy(r->etag, v, vl), r->etag[vl] = 0;
    } else if (cas__header_is(line, n, "content-range", &v, &vl)) {
        if (vl < sizeof r->range) memcpy(r->range, v, vl), r->range[vl] = 0;
    } else if (r->meta_name && cas__header_is(line, n, r->meta_name, &v, &vl)) {
        if (vl <= CAS__CLOUD_META_MAX) memcpy(r->meta, v, vl), r->meta[vl] = 0, r->meta_len = vl, r->has_meta = 1;
    } else if (r->code_name && cas__header_is(line, n, r->code_name, &v, &vl)) { /* the reason, also on a HEAD */
        if (vl < sizeof r->code) memcpy(r->code, v, vl), r->code[vl] = 0;
    } else if (cas__header_is(line, n, "last-modified", &v, &vl)) {
        char tmp[64];
        time_t t;
        if (vl < sizeof tmp) {
            memcpy(tmp, v, vl), tmp[vl] = 0;
            if ((t = curl_getdate(tmp, NULL)) > 0) r->mtime = (int64_t)t;
        }
    }
    return n;
}

static long cas__rq_status(cas__rq *r) {
    long st = 0;
    if (r->e) curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

/* Keeps a 2xx body up to r->keep bytes, and any error body up to 64 KiB. */
static size_t cas__rq_write(char *p, size_t size, size_t nitems, void *u) {
    cas__rq *r = (cas__rq *)u;
    size_t n = size * nitems;
    long st = cas__rq_status(r);
    size_t cap = st >= 200 && st < 300 ? r->keep : (size_t)64 << 10;
    if (r->body.len + n > cap) {
        if (st >= 200 && st < 300) {
            r->too_big = 1;
            return 0; /* aborts the transfer */
        }
        n = cap > r->body.len ? cap - r->body.len : 0;
        if (!n) return size * nitems;
    }
    if (r->length > 0 && !r->body.cap && st >= 200 && st < 300 && (uint64_t)r->length < (uint64_t)cap) {
        /* one allocation of the announced size */
        r->body.p = (char *)cas__alloc(r->body.a, (size_t)r->length + 1);
        r->body.cap = r->body.p ? (size_t)r->length + 1 : 0;
    }
    if (cas__buf_put(&r->body, p, n) < 0) return 0;
    return size * nitems;
}

static size_t cas__rq_read(char *dst, size_t size, size_t nitems, void *u) {
    cas__rq *r = (cas__rq *)u;
    size_t n = CAS__MIN(size * nitems, r->up_len - r->up_pos);
    if (n) memcpy(dst, r->up + r->up_pos, n);
    r->up_pos += n;
    return n;
}

/* Rewinding the body for a resend (a redirect, or an authentication retry). */
static int cas__rq_seek(void *u, curl_off_t off, int origin) {
    cas__rq *r = (cas__rq *)u;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->up_len) return CURL_SEEKFUNC_CANTSEEK;
    r->up_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* Frees a header list whose strings may hold a token, wiping them first. */
static void cas__slist_wipe(struct curl_slist *l) {
    struct curl_slist *i;
    for (i = l; i; i = i->next) cas__wipe(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static int cas__cred_get(cas__cloud *cs, int force, cas__cred **out, char *msg, size_t cap);
