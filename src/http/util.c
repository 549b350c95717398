/* ---- small helpers -------------------------------------------------------- */

static int cas__buf_addz(cas__buf *b, const char *s) { return cas__buf_put(b, s, strlen(s)); }


static void cas__buf_fmt(cas__buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    cas__buf_addz(b, tmp);
}

/* RFC 3986 percent-encoding (what SigV4 signs); '/' kept when keep_slash. */
static void cas__uri_encode(cas__buf *b, const char *s, int keep_slash) {
    static const char hx[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~' || (c == '/' && keep_slash)) {
            char ch = (char)c;
            cas__buf_put(b, &ch, 1);
        } else {
            char e[3];
            e[0] = '%', e[1] = hx[c >> 4], e[2] = hx[c & 15];
            cas__buf_put(b, e, 3);
        }
    }
}

/* Decodes %XX in place (listings come URL-encoded); returns the new length. */
static size_t cas__uri_decode(char *s) {
    size_t i, o = 0;
    for (i = 0; s[i]; i++) {
        int h, l;
        if (s[i] == '%' && s[i + 1] && s[i + 2] && (h = cas__hexval(s[i + 1])) >= 0 &&
            (l = cas__hexval(s[i + 2])) >= 0) {
            s[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            s[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    s[o] = 0;
    return o;
}

/* "2026-11-29T21:29:58.945Z" (ISO 8601, UTC: S3's and the credential endpoints'
 * times) to seconds since the epoch; -1 for anything else, a field out of its
 * range (Feb 30th) included. Digits are checked one by one: sscanf's %d would
 * take "-9" for a minute (found by fuzz_cloud). */
static int64_t cas__iso8601(const char *s) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int v[6] = {0, 0, 0, 0, 0, 0}, f = 0, i;
    int64_t days, yy;
    unsigned m;
    if (!s) return -1;
    for (i = 0; shape[i]; i++) {
        if (shape[i] == 'd') {
            if (s[i] < '0' || s[i] > '9') return -1;
            v[f] = v[f] * 10 + (s[i] - '0');
        } else if (s[i] != shape[i]) {
            return -1;
        } else {
            f++;
        }
    }
    s += i;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++) {
        }
    if (*s == 'Z') s++;
    else if (!strncmp(s, "+00:00", 6)) s += 6;
    if (*s) return -1;
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59) return -1;
    if (v[2] > mdays[v[1] - 1] + (v[1] == 2 && v[0] % 4 == 0 && (v[0] % 100 != 0 || v[0] % 400 == 0))) return -1;
    /* days from civil (Howard Hinnant's algorithm) */
    yy = v[0] - (v[1] <= 2);
    m = (unsigned)v[1];
    days = 365 * yy + yy / 4 - yy / 100 + yy / 400 + (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + v[2] - 1 - 719468;
    return days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
}

static void cas__sha256_hex(const void *p, size_t n, char out[65]) {
    unsigned char d[32];
    unsigned int len = 0;
    if (EVP_Digest(p, n, d, &len, EVP_sha256(), NULL) != 1 || len != 32) memset(d, 0, sizeof d);
    cas__hex(d, 32, out);
}

static int cas__oom(char *msg, size_t cap) {
    cas__fmt(msg, cap, "out of memory");
    return CAS_E_NOMEM;
}

static void cas__sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000, ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int64_t cas__now(void) { return (int64_t)time(NULL); }

static int64_t cas__ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* A getenv that treats "" as unset, as the AWS SDKs do. */
static const char *cas__env(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}
