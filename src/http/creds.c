/* ---- credentials: the cache every dialect's chain fills, and what the chains share ---- */

/* A small file read whole (config files, tokens); NULL if unreadable or larger than max. */
static char *cas__slurp_file(const char *path, size_t max, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char *t = NULL;
    size_t n = 0;
    if (fd < 0) return NULL;
    if (cas__read_all(fd, NULL, max, &t, &n) != 0) t = NULL;
    close(fd);
    if (len) *len = n;
    return (char *)t;
}
static void cas__trim(char **s, size_t *n) {
    while (*n && isspace((unsigned char)(*s)[0])) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}
/* A JSON string member, whole, in a new buffer ("" when it is optional and absent or
 * not a string, as a null Token): its length is what the caller judges, nothing is
 * cut. NULL if a required one is not a string (or holds a NUL). */
static char *cas__json_dup(const cas__json *j, const char *key, int optional) {
    size_t x = cas__json_get(j, 0, key), n;
    char *s;
    if (optional && (!x || j->t[x].type != CAS__J_STR)) return (char *)calloc(1, 1);
    if (!x || j->t[x].type != CAS__J_STR) return NULL;
    n = j->t[x].end - j->t[x].start + 1;
    if ((s = (char *)malloc(n)) != NULL && cas__json_str(j, x, s, n) == (size_t)-1) free(s), s = NULL;
    return s;
}
static void cas__free_secret(char *s) {
    if (s) cas__wipe(s, strlen(s)), free(s);
}
/* {"AccessKeyId": .., "SecretAccessKey": .., "Token": .., "Expiration": ..} (container, IMDS) */
static int cas__cred_from_json(const char *doc, size_t len, cas__cred **out, char *msg, size_t cap) {
    cas__json j;
    char *akid = NULL, *secret = NULL, *token = NULL, exp[64];
    size_t x;
    int rc = CAS_E_CORRUPT;
    *out = NULL;
    exp[0] = 0;
    if (cas__json_parse(&j, doc, len, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ) {
        akid = cas__json_dup(&j, "AccessKeyId", 0), secret = cas__json_dup(&j, "SecretAccessKey", 0);
        token = cas__json_dup(&j, "Token", 1);
        if ((x = cas__json_get(&j, 0, "Expiration")) != 0 && j.t[x].type == CAS__J_STR)
            cas__json_str(&j, x, exp, sizeof exp);
        if (akid && secret && token) {
            *out = cas__cred_new(CAS__AUTH_SIGV4, akid, secret, token, exp[0] ? cas__iso8601(exp) : 0, msg, cap);
            rc = *out ? CAS_OK : CAS_E_CORRUPT;
        } else {
            cas__fmt(msg, cap, "the credentials answer is not the expected JSON");
        }
    } else {
        cas__fmt(msg, cap, "the credentials answer is not the expected JSON");
    }
    cas__json_free(&j);
    cas__free_secret(akid), cas__free_secret(secret), cas__free_secret(token);
    return rc;
}
/* An unsigned request to a credentials endpoint; its body back (wipe it). */
static int cas__cred_fetch(cas__s3 *s3, const char *method, const char *url, const char *h1, const char *h2,
                           const char *body, cas__rq *r, char *msg, size_t cap) {
    int rc;
    cas__rq_init(r, method, NULL);
    r->sign = 0, r->quick = 1, r->keep = (size_t)1 << 20;
    r->body.secret = 1; /* credentials come in it */
    if (body) r->up = (const unsigned char *)body, r->up_len = strlen(body);
    if (cas__buf_addz(&r->url, url) < 0 || (h1 && !(r->hdr = curl_slist_append(r->hdr, h1))) ||
        (h2 && !(r->hdr = curl_slist_append(r->hdr, h2)))) {
        return cas__oom(msg, cap);
    }
    if ((rc = cas__rq_run(s3, r, msg, cap)) < 0) return rc;
    if (r->status != 200) { /* CAS_E_IO even for a 404: CAS_E_NOTFOUND would pass on to the chain's next link */
        cas__rq_why(r, CURLE_OK, msg, cap);
        return CAS_E_IO;
    }
    if (!r->body.p) cas__buf_put(&r->body, "", 0);
    return CAS_OK;
}
/* The store's credentials, refreshed five minutes before they expire (or now,
 * with force). The first success fixes which link serves this store. */
static int cas__cred_get(cas__s3 *s3, int force, cas__cred **out, char *msg, size_t cap) {
    int rc = CAS_OK, k, last = s3->d->cred_last;
    cas__mu_lock(&s3->cmu);
    if (!s3->cred || force || (s3->cred->expires && cas__now() > s3->cred->expires - 300)) {
        cas__cred *fresh = NULL;
        char why[400];
        why[0] = 0;
        rc = CAS_E_NOTFOUND;
        for (k = s3->cred_source ? s3->cred_source : 1; k <= last; k++) {
            rc = s3->d->cred_link(s3, k, &fresh, why, sizeof why);
            if (rc != CAS_E_NOTFOUND || s3->cred_source) break;
        }
        if (rc == CAS_OK) {
            cas__cred *old = s3->cred;
            s3->cred = fresh, s3->cred_source = k;
            if (old && --old->refs == 0) cas__cred_destroy(old);
        } else if (s3->cred && (!s3->cred->expires || cas__now() < s3->cred->expires)) {
            rc = CAS_OK; /* refresh failed, the old ones still hold: use them */
        } else if (rc == CAS_E_NOTFOUND) {
            s3->d->no_creds(s3, msg, cap);
        } else {
            cas__fmt(msg, cap, "%s", why);
        }
    }
    if (rc == CAS_OK) {
        s3->cred->refs++;
        *out = s3->cred;
    }
    cas__mu_unlock(&s3->cmu);
    return rc;
}
