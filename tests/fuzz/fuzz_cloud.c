/* fuzz_cloud: the parsers of cas_cloud.h, on what an S3 server (or a
 * credentials endpoint, or a config file) could send.
 *
 * Input: one selector byte, then the document.
 *   0  a ListObjectsV2 / ListMultipartUploads page through the listing parser:
 *      every name handed out is NUL-terminated, shorter than S3's key limit, and
 *      under the listed prefix (relative to it, never empty); records stop when
 *      the callback says so
 *   1  an S3 <Error> body: Code and Message come back NUL-terminated within their caps;
 *      a leaf picked into a small buffer says it was cut exactly when it did not fit
 *      (credentials are never sent cut)
 *   2  an AWS shared config / credentials file: the value of a few keys in a few
 *      sections, NUL-terminated, within the cap, equal to what an independent
 *      line-by-line model of the format says
 *   3  a container / instance-metadata credentials JSON answer: either refused,
 *      or credentials whose key id and secret are the JSON's strings; the same text
 *      as a Microsoft Entra ID token answer: refused with a reason, or a bearer token
 *      (not empty) with an expiry
 *   4  response header lines, one by one, through the header callback: the
 *      metadata and ETag kept are NUL-terminated and within their caps; a
 *      Content-Range accepted is "bytes A-B/T" with A <= B < T, the numbers those
 *      digits spell (an independent split)
 *   5  percent-decoding (listings come URL-encoded) and ISO 8601 times: a time
 *      that parses formats back to the very text it came from; the text as a URL a
 *      secret might go to: accepted only with https, or http to a loopback host,
 *      never with a user ('@') before the host
 *   6  as 0, a ListMultipartUploads page
 *   7  Azure: the text as a connection string (each field read back is NUL-terminated,
 *      within its cap, and equal to an independent split of the text on ';' and the
 *      first '='; one longer than its cap is refused by name, never cut), then as a request URL and header lines through SharedKey's
 *      canonical form: it names the method first and the account's resource, and
 *      holds each x-ms-* header's value (lists of Azure's Blobs / BlobPrefix go
 *      through selector 0)
 */
#include "fuzz_common.h"

#define CAS_CLOUD_IMPLEMENTATION
#include "../../cas_cloud.h"

#include <arpa/inet.h>
#include <time.h>

typedef struct page_ctx {
    int count, stop_at;
} page_ctx;

static int on_entry(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    page_ctx *p = (page_ctx *)ctx;
    size_t l = strlen(name);
    (void)size, (void)mtime;
    FUZZ_ASSERT(l > 0 && l < 1100, "entry name of %zu bytes", l);
    FUZZ_ASSERT(kind == CAS_ENTRY_FILE || kind == CAS_ENTRY_DIR, "kind %d", kind);
    return ++p->count == p->stop_at ? 1 : 0;
}

static int on_upload(void *ctx, const char *key, const char *id, int64_t began) {
    page_ctx *p = (page_ctx *)ctx;
    (void)began;
    FUZZ_ASSERT(strlen(key) > 0 && strlen(key) < 1100, "upload key of %zu bytes", strlen(key));
    FUZZ_ASSERT(strlen(id) < 512, "upload id of %zu bytes", strlen(id));
    p->count++;
    return 0;
}

static void check_page(const char *doc, size_t n, int uploads) {
    cas__cloud_page pg;
    page_ctx ctx;
    char msg[256];
    memset(&pg, 0, sizeof pg);
    ctx.count = 0, ctx.stop_at = n % 7 ? (int)(n % 7) : -1;
    pg.strip = "mf/", pg.strip_len = 3, pg.ctx = &ctx;
    if (uploads) pg.ufn = on_upload;
    else pg.fn = on_entry;
    msg[0] = 0;
    if (cas__xml_parse(doc, n, cas__cloud_page_leaf, cas__cloud_page_end, &pg, msg, sizeof msg) < 0)
        FUZZ_ASSERT(msg[0] != 0, "refused without a reason");
    FUZZ_ASSERT(strlen(pg.next) < sizeof pg.next && strlen(pg.next_upload) < sizeof pg.next_upload, "markers");
    if (ctx.stop_at > 0 && !uploads)
        FUZZ_ASSERT(ctx.count <= ctx.stop_at, "%d records after a stop at %d", ctx.count, ctx.stop_at);
}

/* The model of AWS's INI: the last "key = value" of the section, indented lines skipped. */
static int ini_model(const char *t, size_t n, const char *section, const char *key, char *out, size_t cap) {
    char *copy = (char *)malloc(n + 1), *line, *save = NULL;
    int in = 0, found = 0;
    memcpy(copy, t, n);
    copy[n] = 0;
    for (line = copy; line; line = save) {
        char *nl = memchr(line, '\n', (size_t)(copy + n - line)), *s, *e;
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        if (line[0] == ' ' || line[0] == '\t') continue;
        for (s = line; *s && isspace((unsigned char)*s); s++) {
        }
        for (e = line + strlen(line); e > s && isspace((unsigned char)e[-1]); e--) {
        }
        *e = 0;
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *a = s + 1, *b = e > s + 1 && e[-1] == ']' ? e - 1 : a;
            while (a < b && isspace((unsigned char)*a)) a++;
            while (b > a && isspace((unsigned char)b[-1])) b--;
            in = (size_t)(b - a) == strlen(section) && !memcmp(a, section, strlen(section));
            continue;
        }
        if (in && strlen(s) > strlen(key) && !memcmp(s, key, strlen(key))) {
            char *v = s + strlen(key);
            while (*v && isspace((unsigned char)*v)) v++;
            if (*v != '=') continue;
            v++;
            while (*v && isspace((unsigned char)*v)) v++;
            if (strlen(v) + 1 > cap) {
                free(copy);
                return CAS_NEED_OUTPUT;
            }
            strcpy(out, v);
            found = 1;
        }
    }
    free(copy);
    return found ? CAS_OK : CAS_E_NOTFOUND;
}

static void check_ini(const char *t, size_t n) {
    static const char *const sections[] = {"default", "profile team", "team"};
    static const char *const keys[] = {"aws_access_key_id", "region", "role_arn"};
    size_t i, k;
    if (memchr(t, 0, n)) return; /* text files; the model uses C strings */
    for (i = 0; i < 3; i++)
        for (k = 0; k < 3; k++) {
            char got[64], want[64];
            int rc = cas__ini_get(t, n, sections[i], keys[k], got, sizeof got);
            int rm = ini_model(t, n, sections[i], keys[k], want, sizeof want);
            FUZZ_ASSERT(rc == rm, "[%s] %s: %s, the model says %s", sections[i], keys[k], cas_status_name(rc),
                        cas_status_name(rm));
            if (rc == CAS_OK)
                FUZZ_ASSERT(!strcmp(got, want), "[%s] %s: '%s', the model says '%s'", sections[i], keys[k], got, want);
        }
}

static void check_creds(const char *t, size_t n) {
    cas__cred *c = NULL;
    char msg[128];
    int rc = cas__cred_from_json(t, n, &c, msg, sizeof msg);
    if (rc == CAS_OK) {
        FUZZ_ASSERT(c && c->akid[0] && c->secret[0], "credentials without a key id or secret");
        FUZZ_ASSERT(strlen(c->akid) <= CAS__KEY_MAX && strlen(c->secret) <= CAS__KEY_MAX &&
                        strlen(c->token) <= CAS__TOKEN_MAX,
                    "oversized credentials");
        cas__cred_destroy(c);
    } else {
        FUZZ_ASSERT(!c && msg[0], "refused without a reason, or with credentials");
    }
    msg[0] = 0;
    rc = cas__az_token_from_json(t, n, "acct", &c, msg, sizeof msg);
    if (rc == CAS_OK) {
        FUZZ_ASSERT(c && c->kind == CAS__AUTH_BEARER && c->token[0] && c->expires > 0, "a token without its parts");
        FUZZ_ASSERT(!strcmp(c->akid, "acct"), "the account");
        cas__cred_destroy(c);
    } else {
        FUZZ_ASSERT(!c && msg[0], "token refused without a reason, or with credentials");
    }
}

static void check_headers(const char *t, size_t n) {
    cas__rq r;
    size_t i = 0;
    cas__rq_init(&r, "GET", NULL);
    while (i < n) {
        size_t e = i;
        while (e < n && t[e] != '\n') e++;
        if (e < n) e++;
        cas__rq_header((char *)t + i, 1, e - i, &r);
        i = e;
    }
    FUZZ_ASSERT(strlen(r.etag) < sizeof r.etag && strlen(r.range) < sizeof r.range, "etag/range");
    { /* Content-Range: what is accepted is exactly "bytes A-B/T", A <= B < T */
        uint64_t a, b, tot;
        if (cas__content_range(r.range, &a, &b, &tot)) {
            char *d = r.range + 6, *m = strchr(d, '-'), *sl = m ? strchr(m, '/') : NULL;
            FUZZ_ASSERT(!strncasecmp(r.range, "bytes ", 6) && m && sl, "'%s' accepted", r.range);
            FUZZ_ASSERT(strspn(d, "0123456789") == (size_t)(m - d) &&
                            strspn(m + 1, "0123456789") == (size_t)(sl - m - 1) &&
                            strspn(sl + 1, "0123456789") == strlen(sl + 1),
                        "'%s' accepted with other than digits", r.range);
            FUZZ_ASSERT(a == strtoull(d, NULL, 10) && b == strtoull(m + 1, NULL, 10) &&
                            tot == strtoull(sl + 1, NULL, 10),
                        "'%s' read as %llu-%llu/%llu", r.range, (unsigned long long)a, (unsigned long long)b,
                        (unsigned long long)tot);
            FUZZ_ASSERT(a <= b && b < tot, "'%s' accepted out of order", r.range);
        }
    }
    if (r.has_meta)
        FUZZ_ASSERT(r.meta_len <= CAS__CLOUD_META_MAX && r.meta[r.meta_len] == 0, "meta of %zu", r.meta_len);
    cas__rq_free(&r);
}

static void check_decode_and_time(const char *t, size_t n) {
    char *s = (char *)malloc(n + 1);
    size_t l;
    int64_t sec;
    memcpy(s, t, n);
    s[n] = 0;
    l = cas__uri_decode(s);
    FUZZ_ASSERT(l <= n, "decoding grew the text");
    FUZZ_ASSERT(s[l] == 0, "not terminated");
    memcpy(s, t, n);
    s[n] = 0;
    { /* where a secret may go: https, or http to this machine, never with a user */
        char msg[160];
        if (cas__secret_may_go(s, "fuzz", msg, sizeof msg) == CAS_OK) {
            /* the authority as libcurl takes it: after the scheme's colon and any slashes ("https:/host" too) */
            const char *auth = strchr(s, ':');
            size_t al;
            FUZZ_ASSERT(auth && (!strncasecmp(s, "https:", 6) || !strncasecmp(s, "http:", 5)), "'%s' accepted", s);
            while (*++auth == '/' || *auth == '\\') {
            }
            al = strcspn(auth, "/\\?#");
            FUZZ_ASSERT(!memchr(auth, '@', al), "'%s' accepted with a user", s);
            if (!strncasecmp(s, "http:", 5)) { /* the host as inet_aton reads it (127.1 too): loopback */
                char host[300];
                struct in_addr in;
                size_t hl = al < sizeof host - 1 ? al : sizeof host - 1;
                memcpy(host, auth, hl), host[hl] = 0;
                if (host[0] != '[') host[strcspn(host, ":")] = 0;
                if (inet_aton(host, &in))
                    FUZZ_ASSERT((ntohl(in.s_addr) >> 24) == 127, "'%s' accepted over http to %s", s, host);
            }
        } else {
            FUZZ_ASSERT(strstr(msg, "fuzz: ") == msg, "refused without a reason: '%s'", msg);
        }
        (void)cas__container_url_ok(s);
    }
    sec = cas__iso8601(s);
    if (sec >= 0) { /* what parses is exactly the date it spells */
        time_t tt = (time_t)sec;
        struct tm tm;
        char back[32];
        FUZZ_ASSERT(gmtime_r(&tt, &tm) != NULL, "gmtime");
        strftime(back, sizeof back, "%Y-%m-%dT%H:%M:%S", &tm);
        FUZZ_ASSERT(!strncmp(s, back, 19), "'%.30s' became %s", s, back);
    }
    free(s);
}

/* The model of a connection string: the first "name=" field's value; -1 when it does
 * not fit the cap (refused, never cut). */
static int conn_model(const char *t, const char *name, char *out, size_t cap) {
    const char *f = t;
    size_t nl = strlen(name);
    while (f) {
        const char *end = strchr(f, ';');
        size_t l = end ? (size_t)(end - f) : strlen(f);
        while (l && *f == ' ') f++, l--;
        if (l > nl && f[nl] == '=' && !strncmp(f, name, nl)) {
            if (l - nl - 1 >= cap) return -1;
            memcpy(out, f + nl + 1, l - nl - 1), out[l - nl - 1] = 0;
            return 1;
        }
        f = end ? end + 1 : NULL;
    }
    return 0;
}

static void check_azure(const char *t, size_t n) {
    static const char *const names[] = {"AccountName", "AccountKey", "BlobEndpoint", "SharedAccessSignature"};
    char *s = (char *)malloc(n + 1), got[64], want[64];
    struct curl_slist *h = NULL;
    const char *nl;
    cas__buf sts;
    size_t i;
    memcpy(s, t, n);
    s[n] = 0;
    for (i = 0; i < 4; i++) {
        const char *cut = NULL;
        int a = cas__conn_get(s, names[i], got, sizeof got, &cut), b = conn_model(s, names[i], want, sizeof want);
        FUZZ_ASSERT(a == (b > 0) && (b < 0) == (cut != NULL), "%s: found %d (cut: %s), the model says %d", names[i], a,
                    cut ? cut : "no", b);
        if (a) FUZZ_ASSERT(strlen(got) < sizeof got && !strcmp(got, want), "%s: '%s' vs '%s'", names[i], got, want);
    }
    /* first line: the URL; the rest: header lines */
    nl = strchr(s, '\n');
    if (nl) {
        const char *line = nl + 1;
        s[nl - s] = 0;
        while (*line) {
            const char *e = strchr(line, '\n');
            size_t l = e ? (size_t)(e - line) : strlen(line);
            char hb[512];
            snprintf(hb, sizeof hb, "%.*s", (int)(l < 511 ? l : 511), line);
            h = curl_slist_append(h, hb);
            line = e ? e + 1 : line + l;
        }
    }
    memset(&sts, 0, sizeof sts);
    if (cas__az_string_to_sign(&sts, "PUT", h, n, "acct", s) == CAS_OK) {
        struct curl_slist *k;
        FUZZ_ASSERT(sts.len >= 4 && !memcmp(sts.p, "PUT\n", 4), "the method first");
        FUZZ_ASSERT(strstr(sts.p, "\n/acct") != NULL, "the account's resource");
        for (k = h; k; k = k->next) {
            const char *c = strchr(k->data, ':');
            if (cas__starts_ci(k->data, "x-ms-") && c && (size_t)(c - k->data) < 64 && !strchr(k->data, '\r')) {
                while (*++c == ' ') {
                }
                FUZZ_ASSERT(strstr(sts.p, c) != NULL, "x-ms header value '%s' not signed", c);
            }
        }
    }
    cas__free(NULL, sts.p);
    curl_slist_free_all(h);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *t = (const char *)data + 1;
    size_t n = size ? size - 1 : 0;
    if (!size) return 0;
    switch (data[0] % 8) {
    case 0: check_page(t, n, 0); break;
    case 1: {
        char code[64], message[256], whole[CAS__XML_TEXT + 1], small[9], why[64];
        cas__xml_pick big, tiny;
        cas__xml_error(t, n, code, sizeof code, message, sizeof message);
        FUZZ_ASSERT(strlen(code) < sizeof code && strlen(message) < sizeof message, "error fields");
        memset(&big, 0, sizeof big), memset(&tiny, 0, sizeof tiny);
        whole[0] = small[0] = 0;
        big.suffix[0] = tiny.suffix[0] = "Error/Code";
        big.out[0] = whole, big.cap[0] = sizeof whole, tiny.out[0] = small, tiny.cap[0] = sizeof small;
        if (cas__xml_parse(t, n, cas__xml_pick_leaf, NULL, &big, why, sizeof why) == CAS_OK &&
            cas__xml_parse(t, n, cas__xml_pick_leaf, NULL, &tiny, why, sizeof why) == CAS_OK && !big.cut[0]) {
            /* cut exactly when the whole text does not fit, and then its first bytes */
            FUZZ_ASSERT(tiny.cut[0] == (strlen(whole) >= sizeof small), "'%s' in %zu bytes: cut %d", whole,
                        sizeof small, tiny.cut[0]);
            FUZZ_ASSERT(!strncmp(small, whole, sizeof small - 1), "'%s' picked as '%s'", whole, small);
        }
        break;
    }
    case 2: check_ini(t, n); break;
    case 3: check_creds(t, n); break;
    case 4: check_headers(t, n); break;
    case 5: check_decode_and_time(t, n); break;
    case 6: check_page(t, n, 1); break;
    case 7: check_azure(t, n); break;
    }
    return 0;
}
