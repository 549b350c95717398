/* ---- credentials: the AWS SDKs' chain ------------------------------------- */

enum { CAS__CRED_ENV = 1, CAS__CRED_WEB, CAS__CRED_FILES, CAS__CRED_CONTAINER, CAS__CRED_IMDS };

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

/* The value of `key` in section `section` of an AWS shared config/credentials
 * file (INI: "[section]", "key = value", '#' or ';' comments, indented lines
 * belong to a nested block and are skipped). Written by hand: the format is
 * AWS's own (nested blocks, "profile " prefixes) and twenty lines long. */
static int cas__ini_get(const char *text, size_t len, const char *section, const char *key, char *out, size_t cap) {
    size_t i = 0, sl = strlen(section), kl = strlen(key);
    int in = 0, found = 0;
    while (i < len) {
        size_t e = i, n;
        char *line;
        while (e < len && text[e] != '\n') e++;
        line = (char *)text + i, n = e - i;
        i = e + 1;
        if (!n) continue;
        if (line[0] == ' ' || line[0] == '\t') continue; /* a nested block's line */
        cas__trim(&line, &n);
        if (!n || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '[') {
            char *nm = line + 1;
            size_t nl = n > 1 && line[n - 1] == ']' ? n - 2 : 0;
            cas__trim(&nm, &nl);
            in = nl == sl && !memcmp(nm, section, sl);
            continue;
        }
        if (in && n > kl && !memcmp(line, key, kl)) {
            char *v = line + kl;
            size_t vl = n - kl;
            cas__trim(&v, &vl);
            if (!vl || v[0] != '=') continue;
            v++, vl--;
            cas__trim(&v, &vl);
            if (vl + 1 > cap) return CAS_NEED_OUTPUT;
            memcpy(out, v, vl), out[vl] = 0;
            found = 1; /* the last one wins, as in botocore */
        }
    }
    return found ? CAS_OK : CAS_E_NOTFOUND;
}

/* `key` of the active profile: the credentials file, then the config file. */
static int cas__profile_get(const cas__cloud *cs, int creds_file, const char *key, char *out, size_t cap) {
    const char *home = getenv("HOME"), *f, *profile = cas__aws_of(cs)->profile;
    char path[4096], section[200];
    char *text;
    size_t len = 0;
    int rc;
    f = cas__env(creds_file ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE");
    if (f && f[0] == '~' && home) snprintf(path, sizeof path, "%s%s", home, f + 1);
    else if (f) snprintf(path, sizeof path, "%s", f);
    else if (home) snprintf(path, sizeof path, "%s/.aws/%s", home, creds_file ? "credentials" : "config");
    else return CAS_E_NOTFOUND;
    if (!(text = cas__slurp_file(path, (size_t)1 << 20, &len))) return CAS_E_NOTFOUND;
    if (creds_file || !strcmp(profile, "default")) snprintf(section, sizeof section, "%s", profile);
    else snprintf(section, sizeof section, "profile %s", profile);
    rc = cas__ini_get(text, len, section, key, out, cap);
    if (rc == CAS_E_NOTFOUND && !creds_file && !strcmp(profile, "default"))
        rc = cas__ini_get(text, len, "profile default", key, out, cap);
    cas__wipe(text, len); /* the credentials file holds secrets */
    free(text);
    return rc;
}

/* STS AssumeRoleWithWebIdentity (EKS IRSA): unsigned, the token is the proof. */
static int cas__cred_web(cas__cloud *cs, const char *token_file, const char *role, cas__cred **out, char *msg,
                         size_t cap) {
    cas__buf form, url;
    cas__rq r;
    char akid[CAS__KEY_MAX + 2], secret[CAS__KEY_MAX + 2], *token, exp[64], session[128];
    cas__xml_pick p;
    char *jwt;
    size_t jl = 0;
    const char *ep = cas__env("AWS_ENDPOINT_URL_STS"), *sn = cas__env("AWS_ROLE_SESSION_NAME");
    int rc;
    if (!(jwt = cas__slurp_file(token_file, (size_t)64 << 10, &jl))) {
        cas__fmt(msg, cap, "cannot read the web identity token file '%.300s'", token_file);
        return CAS_E_IO;
    }
    memset(&form, 0, sizeof form), memset(&url, 0, sizeof url);
    form.secret = 1; /* it will hold the web identity token */
    if (sn) snprintf(session, sizeof session, "%s", sn);
    else snprintf(session, sizeof session, "cas-h-%ld", (long)cas__now());
    {
        char *t = jwt;
        cas__trim(&t, &jl);
        t[jl] = 0;
        cas__buf_addz(&form, "Action=AssumeRoleWithWebIdentity&RoleArn=");
        cas__uri_encode(&form, role, 0);
        cas__buf_addz(&form, "&RoleSessionName=");
        cas__uri_encode(&form, session, 0);
        cas__buf_addz(&form, "&Version=2011-06-15&WebIdentityToken=");
        cas__uri_encode(&form, t, 0);
    }
    cas__wipe(jwt, jl), free(jwt);
    if (!ep) ep = cas__env("AWS_ENDPOINT_URL");
    if (ep) cas__buf_addz(&url, ep);
    else cas__buf_fmt(&url, "https://sts.%s.amazonaws.com", cas__aws_of(cs)->region);
    if (url.len && url.p[url.len - 1] != '/') cas__buf_addz(&url, "/");
    if (!form.p || !url.p) {
        cas__free(NULL, form.p), cas__free(NULL, url.p);
        return cas__oom(msg, cap);
    }
    cas__rq_init(&r, "POST", NULL);
    rc = cas__secret_may_go(url.p, "the STS endpoint, with a web identity token", msg, cap);
    if (rc == CAS_OK)
        rc = cas__cred_fetch(cs, "POST", url.p, "Content-Type: application/x-www-form-urlencoded", NULL, form.p, &r,
                             msg, cap);
    cas__wipe(form.p, form.len);
    cas__free(NULL, form.p);
    cas__free(NULL, url.p);
    if (rc == CAS_OK && !(token = (char *)malloc(CAS__TOKEN_MAX + 2))) {
        rc = cas__oom(msg, cap);
    } else if (rc == CAS_OK) { /* each field whole: a cut one (cut[i]) is refused, not sent */
        char why[200];
        memset(&p, 0, sizeof p);
        akid[0] = secret[0] = token[0] = exp[0] = 0;
        p.suffix[0] = "Credentials/AccessKeyId", p.out[0] = akid, p.cap[0] = sizeof akid;
        p.suffix[1] = "Credentials/SecretAccessKey", p.out[1] = secret, p.cap[1] = sizeof secret;
        p.suffix[2] = "Credentials/SessionToken", p.out[2] = token, p.cap[2] = CAS__TOKEN_MAX + 2;
        p.suffix[3] = "Credentials/Expiration", p.out[3] = exp, p.cap[3] = sizeof exp;
        why[0] = 0;
        if (cas__xml_parse(r.body.p, r.body.len, cas__xml_pick_leaf, NULL, &p, why, sizeof why) < 0 || !akid[0] ||
            !secret[0]) {
            cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity gave no credentials%s%s", why[0] ? ": " : "", why);
            rc = CAS_E_CORRUPT;
        } else if (p.cut[0] || p.cut[1] || p.cut[2]) {
            cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity gave a%s longer than cas.h keeps (%d bytes)",
                     p.cut[2]   ? " SessionToken"
                     : p.cut[1] ? " SecretAccessKey"
                                : "n AccessKeyId",
                     p.cut[2] ? CAS__TOKEN_MAX : CAS__KEY_MAX);
            rc = CAS_E_LIMIT;
        } else if (!(*out = cas__cred_new(CAS__AUTH_SIGV4, akid, secret, token, cas__iso8601(exp), why, sizeof why))) {
            cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity: %s", why);
            rc = CAS_E_CORRUPT;
        }
        cas__wipe(secret, sizeof secret), cas__wipe(token, CAS__TOKEN_MAX + 2);
        free(token);
    } else {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity for %.200s: %s", role, why);
    }
    cas__rq_free(&r);
    return rc;
}

/* A container credentials URL, as the AWS SDKs judge it: https to any host, or
 * http to this machine or the ECS / EKS pod identity agents (169.254.170.2,
 * 169.254.170.23, fd00:ec2::23); no user in it. The pod's authorization token
 * goes with the request. */
static int cas__container_url_ok(const char *url) {
    static const char *const agents[] = {"169.254.170.2", "169.254.170.23", "fd00:ec2::23"};
    char scheme[16], host[256];
    unsigned char a[16], b[16];
    int user = 0, i, fam;
    if (cas__url_host(url, scheme, sizeof scheme, host, sizeof host, &user) < 0 || user) return 0;
    if (!strcasecmp(scheme, "https")) return 1;
    if (strcasecmp(scheme, "http")) return 0;
    if (cas__host_loopback(host)) return 1;
    fam = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, host, a) != 1) return 0;
    for (i = 0; i < 3; i++)
        if (inet_pton(fam, agents[i], b) == 1 && !memcmp(a, b, fam == AF_INET ? 4 : 16)) return 1;
    return 0;
}

static int cas__cred_container(cas__cloud *cs, cas__cred **out, char *msg, size_t cap) {
    const char *rel = cas__env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = cas__env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *tok = cas__env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *tokf = cas__env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    char url[2048], *auth = NULL;
    cas__rq r;
    int rc;
    if (rel) snprintf(url, sizeof url, "http://169.254.170.2%s%s", rel[0] == '/' ? "" : "/", rel);
    else if (full) snprintf(url, sizeof url, "%s", full);
    else return CAS_E_NOTFOUND;
    if (!cas__container_url_ok(url)) { /* the relative form too: "@host/..." would make 169.254.170.2 a user */
        cas__fmt(msg, cap, "%s must be https, or http to this machine or the ECS/EKS credential agent, without a user",
                 rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" : "AWS_CONTAINER_CREDENTIALS_FULL_URI");
        return CAS_E_ARG;
    }
    if (tokf || tok) {
        size_t tl = 0;
        char *t = tokf ? cas__slurp_file(tokf, (size_t)16 << 10, &tl) : NULL, *v = t;
        if (tokf && !t) {
            cas__fmt(msg, cap, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '%.300s'", tokf);
            return CAS_E_IO;
        }
        if (!t) v = (char *)tok, tl = strlen(tok);
        cas__trim(&v, &tl);
        if ((auth = (char *)malloc(tl + 32)) != NULL) snprintf(auth, tl + 32, "Authorization: %.*s", (int)tl, v);
        if (t) cas__wipe(t, strlen(t)), free(t);
        if (!auth) {
            cas__fmt(msg, cap, "out of memory");
            return CAS_E_NOMEM;
        }
    }
    rc = cas__cred_fetch(cs, "GET", url, auth, NULL, NULL, &r, msg, cap);
    if (auth) cas__wipe(auth, strlen(auth)), free(auth);
    if (rc == CAS_OK) rc = cas__cred_from_json(r.body.p, r.body.len, out, msg, cap);
    else {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "the container credentials endpoint: %s", why);
    }
    cas__rq_free(&r);
    return rc;
}

/* EC2 instance metadata, IMDSv2: a session token, the role's name, its credentials. */
static int cas__cred_imds(cas__cloud *cs, cas__cred **out, char *msg, size_t cap) {
    const char *ep = cas__env("AWS_EC2_METADATA_SERVICE_ENDPOINT"), *dis = cas__env("AWS_EC2_METADATA_DISABLED");
    char base[512], url[1024], tokh[512], role[256];
    cas__rq r;
    int rc;
    size_t n;
    if (dis && !strcasecmp(dis, "true")) return CAS_E_NOTFOUND;
    snprintf(base, sizeof base, "%s", ep ? ep : "http://169.254.169.254");
    n = strlen(base);
    if (n && base[n - 1] == '/') base[n - 1] = 0;
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    if ((rc = cas__cred_fetch(cs, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL, NULL, &r, msg,
                              cap)) < 0) {
        cas__rq_free(&r);
        return CAS_E_NOTFOUND; /* not on EC2 (or IMDS is off): the chain ends here */
    }
    snprintf(tokh, sizeof tokh, "X-aws-ec2-metadata-token: %.400s", r.body.p);
    cas__rq_free(&r);
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
    rc = cas__cred_fetch(cs, "GET", url, tokh, NULL, NULL, &r, msg, cap);
    if (rc == CAS_OK) {
        char *nl;
        snprintf(role, sizeof role, "%s", r.body.p);
        if ((nl = strchr(role, '\n')) != NULL) *nl = 0;
        cas__rq_free(&r);
        if (!role[0] || strchr(role, '/')) {
            cas__fmt(msg, cap, "instance metadata names no IAM role");
            rc = CAS_E_NOTFOUND;
        } else {
            snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base, role);
            rc = cas__cred_fetch(cs, "GET", url, tokh, NULL, NULL, &r, msg, cap);
            if (rc == CAS_OK) rc = cas__cred_from_json(r.body.p, r.body.len, out, msg, cap);
            cas__rq_free(&r);
        }
    } else {
        cas__rq_free(&r);
    }
    cas__wipe(tokh, sizeof tokh);
    if (rc < 0 && rc != CAS_E_NOTFOUND) {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "EC2 instance metadata: %s", why);
    }
    return rc;
}

/* One link of the chain: CAS_OK with *out, CAS_E_NOTFOUND when this link is not
 * configured here (the next is tried), or an error when it is and fails. */
static int cas__cred_link(cas__cloud *cs, int which, cas__cred **out, char *msg, size_t cap) {
    char a[CAS__KEY_MAX + 1], s[CAS__KEY_MAX + 1], *t, file[1024], role[512];
    const char *ak, *sk;
    int rc = CAS_E_NOTFOUND, f;
    *out = NULL;
    switch (which) {
    case CAS__CRED_ENV:
        ak = cas__env("AWS_ACCESS_KEY_ID"), sk = cas__env("AWS_SECRET_ACCESS_KEY");
        if (!ak && !sk) return CAS_E_NOTFOUND;
        if (!ak || !sk) {
            cas__fmt(msg, cap, "AWS_%s is set but AWS_%s is not", ak ? "ACCESS_KEY_ID" : "SECRET_ACCESS_KEY",
                     ak ? "SECRET_ACCESS_KEY" : "ACCESS_KEY_ID");
            return CAS_E_ARG;
        }
        if ((*out = cas__cred_new(CAS__AUTH_SIGV4, ak, sk, cas__env("AWS_SESSION_TOKEN"), 0, role, sizeof role)))
            return CAS_OK;
        cas__fmt(msg, cap, "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN: %s", role);
        return CAS_E_ARG;
    case CAS__CRED_WEB:
        if (cas__env("AWS_WEB_IDENTITY_TOKEN_FILE") && cas__env("AWS_ROLE_ARN"))
            return cas__cred_web(cs, cas__env("AWS_WEB_IDENTITY_TOKEN_FILE"), cas__env("AWS_ROLE_ARN"), out, msg, cap);
        if (cas__profile_get(cs, 0, "web_identity_token_file", file, sizeof file) == CAS_OK &&
            cas__profile_get(cs, 0, "role_arn", role, sizeof role) == CAS_OK)
            return cas__cred_web(cs, file, role, out, msg, cap);
        return CAS_E_NOTFOUND;
    case CAS__CRED_FILES: /* the credentials file, then the config file: the first with a key and a secret */
        if (!(t = (char *)malloc(CAS__TOKEN_MAX + 1))) return cas__oom(msg, cap);
        for (f = 1; f >= 0 && rc == CAS_E_NOTFOUND; f--) {
            static const char *const keys[3] = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"};
            char *outs[3];
            size_t caps[3];
            int k, got[3];
            outs[0] = a, outs[1] = s, outs[2] = t, caps[0] = caps[1] = CAS__KEY_MAX + 1, caps[2] = CAS__TOKEN_MAX + 1;
            for (k = 0; k < 3; k++) {
                outs[k][0] = 0;
                got[k] = cas__profile_get(cs, f, keys[k], outs[k], caps[k]);
                if (got[k] == CAS_NEED_OUTPUT) { /* never cut: a cut secret only fails later, unexplained */
                    cas__fmt(msg, cap, "%s of profile '%s' in the shared %s file is longer than cas.h keeps (%d bytes)",
                             keys[k], cas__aws_of(cs)->profile, f ? "credentials" : "config",
                             k < 2 ? CAS__KEY_MAX : CAS__TOKEN_MAX);
                    rc = CAS_E_LIMIT;
                    break;
                }
            }
            if (rc == CAS_E_NOTFOUND && got[0] == CAS_OK && got[1] == CAS_OK)
                rc = (*out = cas__cred_new(CAS__AUTH_SIGV4, a, s, t, 0, msg, cap)) != NULL ? CAS_OK : CAS_E_ARG;
        }
        cas__wipe(s, sizeof s), cas__wipe(t, CAS__TOKEN_MAX + 1);
        free(t);
        return rc;
    case CAS__CRED_CONTAINER: return cas__cred_container(cs, out, msg, cap);
    case CAS__CRED_IMDS: return cas__cred_imds(cs, out, msg, cap);
    }
    return rc;
}
