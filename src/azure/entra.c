/* ---- Azure: Microsoft Entra ID tokens (what Metaflow's DefaultAzureCredential gets) ---- */

/* Azure's links (cas__az_cred_link): a shared key, a SAS token, Entra ID tokens */
enum {
    CAS__AZC_KEY = 1,
    CAS__AZC_SAS,
    CAS__AZC_SECRET,
    CAS__AZC_WORKLOAD,
    CAS__AZC_MANAGED,
    CAS__AZC_LAST = CAS__AZC_MANAGED
};

/* A service principal's secret, or a workload identity's federated token, each
 * traded at the tenant's token endpoint (OAuth client credentials), or a managed
 * identity's token from App Service's identity endpoint or the instance metadata
 * service. Every answer is the same JSON: access_token and when it expires. */

#define CAS__AZ_SCOPE "https%3A%2F%2Fstorage.azure.com%2F.default"
#define CAS__AZ_RESOURCE "https%3A%2F%2Fstorage.azure.com%2F"

/* expires_on / expires_in: a number, or a string of digits; 0 if absent or not one. */
static int64_t cas__az_when(const cas__json *j, const char *key) {
    size_t x = cas__json_get(j, 0, key);
    char num[32], *end;
    int64_t v = 0;
    long long l;
    if (!x) return 0;
    if (j->t[x].type == CAS__J_NUM) return cas__json_int(j, x, &v) == 0 && v > 0 ? v : 0;
    if (j->t[x].type != CAS__J_STR || cas__json_str(j, x, num, sizeof num) == (size_t)-1) return 0;
    l = strtoll(num, &end, 10);
    return end != num && !*end && l > 0 ? (int64_t)l : 0;
}

/* A token answer into bearer credentials for `account`. */
static int cas__az_token_from_json(const char *doc, size_t len, const char *account, cas__cred **out, char *msg,
                                   size_t cap) {
    cas__json j;
    char *tok = NULL;
    size_t t, tl = 0;
    int64_t on, in;
    int rc = CAS_E_CORRUPT;
    *out = NULL;
    if (cas__json_parse(&j, doc, len, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ &&
        (t = cas__json_get(&j, 0, "access_token")) != 0 && j.t[t].type == CAS__J_STR) {
        on = cas__az_when(&j, "expires_on"), in = cas__az_when(&j, "expires_in");
        tl = j.t[t].end - j.t[t].start + 1;
        if (!(tok = (char *)malloc(tl))) rc = CAS_E_NOMEM;
        else if (cas__json_str(&j, t, tok, tl) != (size_t)-1 && (on || in))
            rc = (*out = cas__cred_new(CAS__AUTH_BEARER, account, "", tok, on ? on : cas__now() + in, msg, cap)) != NULL
                     ? CAS_OK
                     : CAS_E_LIMIT; /* its reason said */
    }
    if (tok) cas__wipe(tok, tl), free(tok);
    cas__json_free(&j);
    if (rc == CAS_E_NOMEM) cas__fmt(msg, cap, "out of memory");
    else if (rc == CAS_E_CORRUPT)
        cas__fmt(msg, cap, "the token answer is not the expected JSON (access_token and its expiry)");
    return rc;
}

/* An endpoint's refusal: its OAuth error code and the first line of its description. */
static void cas__az_token_why(const cas__rq *r, const char *what, char *msg, size_t cap) {
    cas__json j;
    char code[64], desc[200];
    size_t e, d;
    code[0] = desc[0] = 0;
    if (r->body.len && cas__json_parse(&j, r->body.p, r->body.len, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ) {
        if ((e = cas__json_get(&j, 0, "error")) != 0 && j.t[e].type == CAS__J_STR &&
            cas__json_str(&j, e, code, sizeof code) == (size_t)-1)
            code[0] = 0;
        if ((d = cas__json_get(&j, 0, "error_description")) != 0 && j.t[d].type == CAS__J_STR) {
            char *big = (char *)malloc(j.t[d].end - j.t[d].start + 1);
            if (big && cas__json_str(&j, d, big, j.t[d].end - j.t[d].start + 1) != (size_t)-1)
                snprintf(desc, sizeof desc, "%.*s", (int)strcspn(big, "\r\n"), big);
            free(big);
        }
        cas__json_free(&j);
    }
    if (code[0]) cas__fmt(msg, cap, "%s: HTTP %ld %s%s%s", what, r->status, code, desc[0] ? ": " : "", desc);
}

/* POST {AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token, client credentials: proof is
 * "client_secret=..." or "client_assertion=...&client_assertion_type=...". */
static int cas__az_token_grant(cas__cloud *cs, const char *tenant, const char *client, const char *proof_name,
                               const char *proof, const char *extra, const char *what, const char *account,
                               cas__cred **out, char *msg, size_t cap) {
    const char *auth = cas__env("AZURE_AUTHORITY_HOST");
    cas__buf url, form;
    cas__rq r;
    int rc;
    memset(&url, 0, sizeof url), memset(&form, 0, sizeof form);
    form.secret = 1; /* it will hold the client secret or assertion */
    cas__rq_init(&r, "POST", NULL);
    cas__buf_addz(&url, auth ? auth : "https://login.microsoftonline.com");
    if (url.len && url.p[url.len - 1] == '/') url.p[--url.len] = 0;
    cas__buf_addz(&url, "/");
    cas__uri_encode(&url, tenant, 0);
    cas__buf_addz(&url, "/oauth2/v2.0/token");
    cas__buf_addz(&form, extra);
    cas__buf_addz(&form, proof_name);
    cas__buf_addz(&form, "=");
    cas__uri_encode(&form, proof, 0);
    cas__buf_addz(&form, "&client_id=");
    cas__uri_encode(&form, client, 0);
    cas__buf_addz(&form, "&grant_type=client_credentials&scope=" CAS__AZ_SCOPE);
    if (!url.p || !form.p) {
        rc = cas__oom(msg, cap);
    } else if ((rc = cas__secret_may_go(url.p, auth ? "AZURE_AUTHORITY_HOST" : "the token endpoint", msg, cap)) == 0) {
        rc = cas__cred_fetch(cs, "POST", url.p, "Content-Type: application/x-www-form-urlencoded", NULL, form.p, &r,
                             msg, cap);
        if (rc == CAS_OK) rc = cas__az_token_from_json(r.body.p, r.body.len, account, out, msg, cap);
        else cas__az_token_why(&r, what, msg, cap);
    }
    cas__rq_free(&r);
    if (form.p) cas__wipe(form.p, form.len);
    cas__free(NULL, form.p), cas__free(NULL, url.p);
    if (rc < 0 && rc != CAS_E_NOMEM && strncmp(msg, what, strlen(what))) {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "%s: %s", what, why);
    }
    return rc;
}

/* A managed identity: App Service / Functions / Container Apps (IDENTITY_ENDPOINT and
 * IDENTITY_HEADER), else the instance metadata service (VMs, AKS; unreachable: the end
 * of the chain). AZURE_CLIENT_ID picks a user-assigned identity. */
static int cas__az_managed(cas__cloud *cs, const char *account, cas__cred **out, char *msg, size_t cap) {
    const char *ep = cas__env("IDENTITY_ENDPOINT"), *hv = cas__env("IDENTITY_HEADER"),
               *id = cas__env("AZURE_CLIENT_ID");
    const char *imds = cas__env("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    char hdr[600];
    cas__buf url;
    cas__rq r;
    int rc;
    memset(&url, 0, sizeof url);
    if (ep && hv) {
        cas__buf_addz(&url, ep);
        cas__buf_addz(&url, strchr(ep, '?') ? "&" : "?");
        cas__buf_addz(&url, "api-version=2019-08-01&resource=" CAS__AZ_RESOURCE);
        snprintf(hdr, sizeof hdr, "X-IDENTITY-HEADER: %.500s", hv);
    } else {
        cas__buf_addz(&url, imds ? imds : "http://169.254.169.254");
        if (url.len && url.p[url.len - 1] == '/') url.p[--url.len] = 0;
        cas__buf_addz(&url, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" CAS__AZ_RESOURCE);
        snprintf(hdr, sizeof hdr, "Metadata: true");
    }
    if (id) cas__buf_addz(&url, "&client_id="), cas__uri_encode(&url, id, 0);
    if (!url.p) return cas__oom(msg, cap);
    rc = cas__cred_fetch(cs, "GET", url.p, hdr, NULL, NULL, &r, msg, cap);
    if (rc == CAS_OK) rc = cas__az_token_from_json(r.body.p, r.body.len, account, out, msg, cap);
    else if (!(ep && hv) && (r.status == 0 || r.status == 400))
        rc = CAS_E_NOTFOUND; /* no metadata service (not on Azure), or no identity assigned */
    else cas__az_token_why(&r, "managed identity", msg, cap);
    cas__wipe(hdr, sizeof hdr);
    cas__rq_free(&r);
    cas__free(NULL, url.p);
    if (rc < 0 && rc != CAS_E_NOTFOUND && strncmp(msg, "managed identity", 16)) {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "managed identity: %s", why);
    }
    return rc;
}

/* The Azure links of the credential chain: static secrets first, then Entra ID as
 * DefaultAzureCredential orders it (environment, workload identity, managed identity). */
static int cas__az_cred_link(cas__cloud *cs, int which, cas__cred **out, char *msg, size_t cap) {
    cas__az_cfg g;
    unsigned char k[256];
    int rc = cas__az_settings(&g, msg, cap);
    *out = NULL;
    if (rc == CAS_OK && which == CAS__AZC_KEY) {
        if (!g.key[0]) rc = CAS_E_NOTFOUND;
        else if (cas__unb64(g.key, k, sizeof k) <= 0)
            rc = CAS_E_ARG, cas__fmt(msg, cap, "the Azure storage key is not base64");
        else if (!(*out = cas__cred_new(CAS__AUTH_SHARED_KEY, g.account, g.key, NULL, 0, msg, cap))) rc = CAS_E_ARG;
        cas__wipe(k, sizeof k);
    } else if (rc == CAS_OK && which == CAS__AZC_SAS) {
        if (!g.sas[0]) rc = CAS_E_NOTFOUND;
        else if (!(*out = cas__cred_new(CAS__AUTH_SAS, g.account, "", g.sas, 0, msg, cap))) rc = CAS_E_ARG;
    } else if (rc == CAS_OK) {
        const char *ten = cas__env("AZURE_TENANT_ID"), *cl = cas__env("AZURE_CLIENT_ID");
        const char *sec = cas__env("AZURE_CLIENT_SECRET"), *file = cas__env("AZURE_FEDERATED_TOKEN_FILE");
        if (which == CAS__AZC_SECRET) {
            rc = ten && cl && sec ? cas__az_token_grant(cs, ten, cl, "client_secret", sec, "", "service principal",
                                                        g.account, out, msg, cap)
                                  : CAS_E_NOTFOUND;
        } else if (which == CAS__AZC_WORKLOAD) {
            char *jwt, *t;
            size_t jl = 0;
            if (!ten || !cl || !file) rc = CAS_E_NOTFOUND;
            else if (!(jwt = cas__slurp_file(file, (size_t)64 << 10, &jl)))
                rc = CAS_E_IO, cas__fmt(msg, cap, "cannot read AZURE_FEDERATED_TOKEN_FILE '%.300s'", file);
            else {
                t = jwt;
                cas__trim(&t, &jl);
                t[jl] = 0;
                rc = cas__az_token_grant(cs, ten, cl, "client_assertion", t,
                                         "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type"
                                         "%3Ajwt-bearer&",
                                         "workload identity", g.account, out, msg, cap);
                cas__wipe(jwt, jl), free(jwt);
            }
        } else {
            rc = cas__az_managed(cs, g.account, out, msg, cap);
        }
    }
    cas__az_cfg_wipe(&g);
    return rc;
}
