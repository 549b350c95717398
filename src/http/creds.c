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

/* An unsigned request to a credentials endpoint; its body back (wipe it). */
static int cas__cred_fetch(cas__cloud *cs, const char *method, const char *url, const char *h1, const char *h2,
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
    if ((rc = cas__rq_run(cs, r, msg, cap)) < 0) return rc;
    if (r->status != 200) { /* CAS_E_IO even for a 404: CAS_E_NOTFOUND would pass on to the chain's next link */
        cas__rq_why(r, CURLE_OK, msg, cap);
        return CAS_E_IO;
    }
    if (!r->body.p) cas__buf_put(&r->body, "", 0);
    return CAS_OK;
}

/* The store's credentials, refreshed five minutes before they expire (or now,
 * with force). The first success fixes which link serves this store. */
static int cas__cred_get(cas__cloud *cs, int force, cas__cred **out, char *msg, size_t cap) {
    int rc = CAS_OK, k, last = cs->d->cred_last;
    cas__mu_lock(&cs->cmu);
    if (!cs->cred || force || (cs->cred->expires && cas__now() > cs->cred->expires - 300)) {
        cas__cred *fresh = NULL;
        char why[400];
        why[0] = 0;
        rc = CAS_E_NOTFOUND;
        for (k = cs->cred_source ? cs->cred_source : 1; k <= last; k++) {
            rc = cs->d->cred_link(cs, k, &fresh, why, sizeof why);
            if (rc != CAS_E_NOTFOUND || cs->cred_source) break;
        }
        if (rc == CAS_OK) {
            cas__cred *old = cs->cred;
            cs->cred = fresh, cs->cred_source = k;
            if (old && --old->refs == 0) cas__cred_destroy(old);
        } else if (cs->cred && (!cs->cred->expires || cas__now() < cs->cred->expires)) {
            rc = CAS_OK; /* refresh failed, the old ones still hold: use them */
        } else if (rc == CAS_E_NOTFOUND) {
            cs->d->no_creds(cs, msg, cap);
        } else {
            cas__fmt(msg, cap, "%s", why);
        }
    }
    if (rc == CAS_OK) {
        cs->cred->refs++;
        *out = cs->cred;
    }
    cas__mu_unlock(&cs->cmu);
    return rc;
}
