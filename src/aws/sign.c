/* ---- S3: SigV4 (libcurl signs; the payload's hash and a session token are ours) ---- */

/* What only S3 reads, in the store's own state (cs->own). */
typedef struct cas__aws {
    char region[64], sigv4[128], profile[128]; /* sigv4: libcurl's "aws:amz:REGION:s3" */
} cas__aws;

static cas__aws *cas__aws_of(const cas__cloud *cs) { return (cas__aws *)cs->own; }

#define CAS__EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The dialect's authorize: what S3 needs on a signed request beside the headers
 * already in h. CAS_OK, or CAS_E_NOMEM. */
static int cas__s3_authorize(cas__cloud *cs, CURL *e, const cas__rq *r, const cas__cred *c, struct curl_slist **h) {
    char line[200], sha[65];
    struct curl_slist *n;
    if (!r->up_sha && r->up_len) cas__sha256_hex(r->up, r->up_len, sha);
    snprintf(line, sizeof line, "x-amz-content-sha256: %s",
             r->up_sha   ? r->up_sha
             : r->up_len ? sha
                         : CAS__EMPTY_SHA256);
    if (!(n = curl_slist_append(*h, line))) return CAS_E_NOMEM;
    *h = n;
    if (c->token[0]) {
        size_t tl = strlen(c->token);
        char *t = (char *)malloc(tl + 32);
        n = NULL;
        if (t) {
            snprintf(t, tl + 32, "x-amz-security-token: %s", c->token);
            n = curl_slist_append(*h, t);
            cas__wipe(t, tl + 32);
            free(t);
        }
        if (!n) return CAS_E_NOMEM;
        *h = n;
    }
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, cas__aws_of(cs)->sigv4);
    curl_easy_setopt(e, CURLOPT_USERNAME, c->akid);
    curl_easy_setopt(e, CURLOPT_PASSWORD, c->secret);
    return CAS_OK;
}
