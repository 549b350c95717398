/* ---- the byte source ------------------------------------------------------------- */

#define CAS__PK_WINDOW ((size_t)64 << 10)

/* Makes at least one byte available: 1, or 0 at the end, or < 0 on failure. */
static int cas__pk_fill(cas_preview *p) {
    size_t got = 0;
    int rc;
    if (p->wpos < p->wlen) return 1;
    if (p->eof) return 0;
    if (p->max_read && p->off >= (uint64_t)p->max_read) {
        cas__pk_fail(p, CAS_E_LIMIT, "read %llu decoded bytes (CAS_PREVIEW_MAX_READ)", (unsigned long long)p->off);
        return -1;
    }
    /* never past the read limit: the window ends where the limit does */
    rc = p->read(p->user, p->win,
                 p->max_read ? (size_t)CAS__MIN((uint64_t)CAS__PK_WINDOW, (uint64_t)p->max_read - p->off)
                             : CAS__PK_WINDOW,
                 &got);
    if (rc < 0) {
        cas__pk_fail(p, rc, "reading the pickle at byte %llu: %s", (unsigned long long)p->off, cas_strerror(rc));
        return -1;
    }
    p->wpos = 0, p->wlen = got;
    if (!got) p->eof = 1;
    return got ? 1 : 0;
}

/* cas__pk_fill, the end of the bytes being a truncated pickle: 0, or -1 (failed). */
static int cas__pk_more(cas_preview *p, const char *where) {
    int r = cas__pk_fill(p);
    if (r > 0) return 0;
    if (!r) cas__pk_fail(p, CAS_E_TRUNCATED, "the pickle ends at byte %llu, %s", (unsigned long long)p->off, where);
    return -1;
}

static int cas__pk_byte(cas_preview *p, unsigned char *c) {
    if (p->wpos == p->wlen && cas__pk_more(p, "before its STOP") < 0) return -1;
    *c = p->win[p->wpos++];
    p->off++;
    return 0;
}

/* n bytes into dst (n small: arguments of opcodes). */
static int cas__pk_bytes(cas_preview *p, void *dst, size_t n) {
    unsigned char *d = (unsigned char *)dst;
    while (n) {
        size_t k;
        if (cas__pk_more(p, "inside an opcode's argument") < 0) return -1;
        k = CAS__MIN(n, p->wlen - p->wpos);
        memcpy(d, p->win + p->wpos, k);
        p->wpos += k, p->off += k, d += k, n -= k;
    }
    return 0;
}

static uint64_t cas__le(const unsigned char *b, int n) {
    uint64_t v = 0;
    while (n--) v = v << 8 | b[n];
    return v;
}

/* A payload of `len` bytes: the byte ranges of `win` (sorted, [start, end) pairs,
 * nwin of them) are kept into keep (in order), the rest is read past. With
 * stop_after, reading stops once the last range is in: the caller stops parsing. */
static int cas__pk_payload(cas_preview *p, uint64_t len, const uint64_t *win, size_t nwin, unsigned char *keep,
                           int stop_after, int *stopped, size_t *kept_out) {
    uint64_t pos = 0;
    size_t w = 0, kept = 0;
    *stopped = 0, *kept_out = 0;
    while (pos < len) {
        size_t k;
        int r = cas__pk_fill(p);
        if (r <= 0) {
            if (!r)
                cas__pk_fail(p, CAS_E_TRUNCATED,
                             "the pickle ends at byte %llu, %llu bytes into a value it says is %llu bytes long",
                             (unsigned long long)p->off, (unsigned long long)pos, (unsigned long long)len);
            return -1;
        }
        k = (size_t)CAS__MIN((uint64_t)(p->wlen - p->wpos), len - pos);
        while (w < nwin && win[2 * w + 1] <= pos) w++;
        {
            size_t j = w;
            for (; j < nwin && win[2 * j] < pos + k; j++) { /* the ranges this piece touches */
                uint64_t a = CAS__MAX64(win[2 * j], pos), b = CAS__MIN(win[2 * j + 1], pos + k);
                if (b > a) {
                    memcpy(keep + kept, p->win + p->wpos + (a - pos), (size_t)(b - a));
                    kept += (size_t)(b - a);
                }
            }
        }
        p->wpos += k, p->off += k, pos += k;
        *kept_out = kept;
        if (stop_after && nwin && pos >= win[2 * nwin - 1]) {
            *stopped = 1;
            return 0;
        }
    }
    return 0;
}

/* A protocol-0 line, without its '\n', NUL-terminated in a new buffer. */
static char *cas__pk_line(cas_preview *p, size_t *len) {
    size_t n = 0, cap = 64;
    char *s = (char *)cas__alloc(&p->alloc, cap);
    if (!s) {
        cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        return NULL;
    }
    for (;;) {
        unsigned char c;
        if (cas__pk_byte(p, &c) < 0) break;
        if (c == '\n') {
            s[n] = 0;
            *len = n;
            return s;
        }
        if (n + 2 > cap) {
            char *ns;
            if (cap >= CAS__PK_LINE_MAX) {
                cas__pk_fail(p, CAS_E_CORRUPT, "a text argument over 64 KiB at byte %llu", (unsigned long long)p->off);
                break;
            }
            if (!(ns = (char *)cas__alloc(&p->alloc, cap * 2))) {
                cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
                break;
            }
            memcpy(ns, s, n);
            cas__free(&p->alloc, s);
            s = ns, cap *= 2;
        }
        s[n++] = (char)c;
    }
    cas__free(&p->alloc, s);
    return NULL;
}
