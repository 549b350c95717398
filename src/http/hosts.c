/* ---- where a secret may go ---------------------------------------------------- */
/* A URL as libcurl itself will read it (curl_url): its scheme and host, and whether
 * it names a user ("http://127.0.0.1@elsewhere/" is elsewhere). CAS_E_ARG if it is
 * not a URL. IPv6 hosts come without their brackets. */
static int cas__url_host(const char *url, char *scheme, size_t scap, char *host, size_t hcap, int *userinfo) {
    CURLU *u = curl_url();
    char *s = NULL, *h = NULL, *usr = NULL, *pw = NULL;
    int rc = CAS_E_ARG;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK) {
        size_t hl = strlen(h);
        if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') memmove(h, h + 1, hl -= 2), h[hl] = 0;
        *userinfo = curl_url_get(u, CURLUPART_USER, &usr, 0) == CURLUE_OK ||
                    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK;
        if (strlen(s) < scap && hl < hcap) {
            memcpy(scheme, s, strlen(s) + 1), memcpy(host, h, hl + 1);
            rc = CAS_OK;
        }
    }
    curl_free(s), curl_free(h), curl_free(usr), curl_free(pw);
    curl_url_cleanup(u);
    return rc;
}

/* This machine: localhost, 127.0.0.0/8, ::1. */
static int cas__host_loopback(const char *host) {
    unsigned char a[16];
    static const unsigned char one6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (!strcasecmp(host, "localhost")) return 1;
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    return inet_pton(AF_INET6, host, a) == 1 && !memcmp(a, one6, 16);
}

/* May a secret (a bearer token, a client secret, a web identity token) be sent to
 * url? Over https, yes; over plain http only to this machine (an emulator, a
 * stand-in), as the Azure and AWS SDKs allow; never with a user in the URL.
 * Otherwise CAS_E_ARG, with the reason in msg naming `what`. */
static int cas__secret_may_go(const char *url, const char *what, char *msg, size_t cap) {
    char scheme[16], host[256];
    int user = 0;
    if (cas__url_host(url, scheme, sizeof scheme, host, sizeof host, &user) < 0) {
        cas__fmt(msg, cap, "%s: '%.200s' is not a URL", what, url);
        return CAS_E_ARG;
    }
    if (user) {
        cas__fmt(msg, cap, "%s: the URL names a user (userinfo before '@'): refused", what);
        return CAS_E_ARG;
    }
    if (!strcasecmp(scheme, "https") || (!strcasecmp(scheme, "http") && cas__host_loopback(host))) return CAS_OK;
    cas__fmt(msg, cap, "%s: a secret is not sent over plain HTTP to '%.200s' (https, or http to this machine only)",
             what, host);
    return CAS_E_ARG;
}
