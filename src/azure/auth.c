/* ---- Azure: SharedKey, SAS and bearer authorization ---------------------------- */
/* libcurl signs SigV4 itself but knows nothing of Azure. SharedKey is an
 * HMAC-SHA256 over a canonical form of the request ("Authorize with Shared Key"
 * in Azure's Storage REST reference): the verb, eleven standard headers (empty
 * when absent; Content-Length empty when zero), the x-ms-* headers sorted, and
 * the resource: /account/path, then each query parameter sorted, URL-decoded. */

#define CAS__AZ_VERSION "2021-08-06"

static const char *cas__hdr_find(const struct curl_slist *h, const char *name, size_t *vl) {
    const char *v;
    for (; h; h = h->next)
        if (cas__header_is(h->data, strlen(h->data), name, &v, vl)) return v;
    return NULL;
}

static int cas__starts_ci(const char *s, const char *lower) {
    for (; *lower; s++, lower++)
        if (tolower((unsigned char)*s) != *lower) return 0;
    return 1;
}

static int cas__hdr_cmp(const char *a, const char *b) { /* by lower-case name, up to ':' */
    for (; *a && *a != ':' && tolower((unsigned char)*a) == tolower((unsigned char)*b); a++, b++) {
    }
    return (*a == ':' ? 0 : tolower((unsigned char)*a)) - (*b == ':' ? 0 : tolower((unsigned char)*b));
}

static int cas__az_string_to_sign(cas__buf *sts, const char *method, const struct curl_slist *h, size_t body_len,
                                  const char *account, const char *url) {
    static const char *const std[] = {
        "content-encoding",  "content-language", "content-length", "content-md5",         "content-type", "date",
        "if-modified-since", "if-match",         "if-none-match",  "if-unmodified-since", "range"};
    const char *ms[32], *q[16], *qv[16], *path, *qs, *v;
    char *query = NULL;
    size_t i, j, n = 0, nq = 0, vl;
    cas__buf_addz(sts, method);
    for (i = 0; i < sizeof std / sizeof std[0]; i++) {
        cas__buf_addz(sts, "\n");
        if (!strcmp(std[i], "content-length")) {
            if (body_len) cas__buf_fmt(sts, "%lu", (unsigned long)body_len);
        } else if ((v = cas__hdr_find(h, std[i], &vl)) != NULL) {
            cas__buf_put(sts, v, vl);
        }
    }
    cas__buf_addz(sts, "\n");
    for (; h; h = h->next) /* the x-ms-* headers, sorted by name (insertion sort: a handful) */
        if (cas__starts_ci(h->data, "x-ms-")) {
            if (n == sizeof ms / sizeof ms[0]) return CAS_E_LIMIT; /* never signs a part of them */
            for (j = n++; j && cas__hdr_cmp(ms[j - 1], h->data) > 0; j--) ms[j] = ms[j - 1];
            ms[j] = h->data;
        }
    for (i = 0; i < n; i++) {
        const char *colon = strchr(ms[i], ':');
        if (!colon) continue;
        for (v = ms[i]; v < colon; v++) {
            char c = (char)tolower((unsigned char)*v);
            cas__buf_put(sts, &c, 1);
        }
        cas__buf_addz(sts, ":");
        for (v = colon + 1; *v == ' '; v++) {
        }
        cas__buf_addz(sts, v);
        cas__buf_addz(sts, "\n");
    }
    path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    qs = strchr(url, '?');
    cas__buf_fmt(sts, "/%s", account);
    if (!path || (qs && path > qs)) cas__buf_addz(sts, "/");
    else cas__buf_put(sts, path, qs ? (size_t)(qs - path) : strlen(path));
    if (qs && qs[1]) { /* the query's parameters, sorted by name (lower case), values decoded */
        char *t, *next, *c;
        size_t ql = strlen(qs + 1);
        if (!(query = (char *)malloc(ql + 1))) return CAS_E_NOMEM;
        memcpy(query, qs + 1, ql + 1);
        for (t = query; t; t = next) {
            char *eq;
            if ((next = strchr(t, '&')) != NULL) *next++ = 0;
            if (nq == sizeof q / sizeof q[0]) {
                free(query);
                return CAS_E_LIMIT; /* never signs a part of them */
            }
            if ((eq = strchr(t, '=')) != NULL) *eq = 0, cas__uri_decode(eq + 1);
            for (c = t; *c; c++) *c = (char)tolower((unsigned char)*c);
            for (j = nq++; j && strcmp(q[j - 1], t) > 0; j--) q[j] = q[j - 1], qv[j] = qv[j - 1];
            q[j] = t, qv[j] = eq ? eq + 1 : "";
        }
        for (i = 0; i < nq; i++) {
            cas__buf_addz(sts, "\n");
            cas__buf_addz(sts, q[i]);
            cas__buf_addz(sts, ":");
            cas__buf_addz(sts, qv[i]);
        }
        free(query);
    }
    return sts->p ? CAS_OK : CAS_E_NOMEM;
}

/* Base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes). */
static void cas__b64(const unsigned char *p, size_t n, char *out) { EVP_EncodeBlock((unsigned char *)out, p, (int)n); }

/* Decodes base64 text; the length, or -1 if it is not base64. */
static int cas__unb64(const char *s, unsigned char *out, size_t cap) {
    size_t n = strlen(s), pad = 0;
    int k;
    if (!n || n % 4 || n / 4 * 3 > cap) return -1;
    if (s[n - 1] == '=') pad++;
    if (s[n - 2] == '=') pad++;
    k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    return k < 0 ? -1 : k - (int)pad;
}

/* SharedKey's signature of a canonical request, into "Authorization: SharedKey account:sig". */
static int cas__az_shared_key(const cas__cred *c, const cas__buf *sts, char *line, size_t cap) {
    unsigned char key[256], mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    char sig[EVP_MAX_MD_SIZE * 2];
    int kl = cas__unb64(c->secret, key, sizeof key);
    if (kl <= 0 || !HMAC(EVP_sha256(), key, kl, (const unsigned char *)sts->p, sts->len, mac, &ml)) {
        cas__wipe(key, sizeof key);
        return CAS_E_ARG;
    }
    cas__wipe(key, sizeof key);
    cas__b64(mac, ml, sig);
    snprintf(line, cap, "Authorization: SharedKey %s:%s", c->akid, sig);
    return CAS_OK;
}

/* Adds Azure's date and version to *h, then the proof c holds: a SharedKey
 * signature, a bearer token, or a SAS token appended to the URL libcurl gets. */
static int cas__az_authorize(cas__cloud *cs, CURL *e, const cas__rq *r, const cas__cred *c, struct curl_slist **h) {
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char line[512];
    struct tm tm;
    time_t now = time(NULL);
    int rc = CAS_OK;
    gmtime_r(&now, &tm);
    snprintf(line, sizeof line, "x-ms-date: %s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday], tm.tm_mday,
             mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (!(*h = curl_slist_append(*h, line)) || !(*h = curl_slist_append(*h, "x-ms-version: " CAS__AZ_VERSION)))
        return CAS_E_NOMEM;
    if (c->kind == CAS__AUTH_SHARED_KEY) {
        cas__buf sts;
        memset(&sts, 0, sizeof sts);
        sts.a = &cs->alloc;
        if ((rc = cas__az_string_to_sign(&sts, r->method, *h, !strcmp(r->method, "PUT") ? r->up_len : 0, c->akid,
                                         r->url.p)) == CAS_OK &&
            (rc = cas__az_shared_key(c, &sts, line, sizeof line)) == CAS_OK && !(*h = curl_slist_append(*h, line)))
            rc = CAS_E_NOMEM;
        cas__free(&cs->alloc, sts.p);
    } else { /* a token: in a header (bearer) or in the URL (SAS); wiped from our copies after */
        size_t ul = strlen(r->url.p), tl = strlen(c->token), need = ul + tl + 32;
        char *t;
        if (c->kind == CAS__AUTH_BEARER && cas__secret_may_go(r->url.p, "bearer token", line, sizeof line) < 0)
            return CAS_E_ARG; /* refused at open already (cas__az_cred_check): this is the last line */
        if (!(t = (char *)malloc(need))) return CAS_E_NOMEM;
        if (c->kind == CAS__AUTH_BEARER) {
            snprintf(t, need, "Authorization: Bearer %s", c->token);
            if (!(*h = curl_slist_append(*h, t))) rc = CAS_E_NOMEM;
        } else {
            snprintf(t, need, "%s%c%s", r->url.p, strchr(r->url.p, '?') ? '&' : '?', c->token);
            curl_easy_setopt(e, CURLOPT_URL, t);
        }
        cas__wipe(t, need);
        free(t);
    }
    cas__wipe(line, sizeof line);
    return rc;
}

/* The dialect's cred_check: Entra ID tokens go over https only, or to an emulator here. */
static int cas__az_cred_check(const cas__cloud *cs, const cas__cred *c, char *msg, size_t cap) {
    if (c->kind != CAS__AUTH_BEARER) return CAS_OK;
    return cas__secret_may_go(cs->endpoint, "the Azure endpoint, with a Microsoft Entra ID token", msg, cap);
}
