/* ---- output ------------------------------------------------------------------------- */

#define CAS__PK_MARKER " <truncated: output limit>"

static void cas__out_put(cas_preview *p, const char *s, size_t n) {
    size_t room, limit = (size_t)p->max_output;
    size_t need; /* what this call writes at most, with the NUL: a cut writes up to the limit and the marker */
    if (p->out_full || !n) return;
    need = (p->olen + n > limit ? CAS__MAX64(limit, p->olen) + sizeof CAS__PK_MARKER : p->olen + n + 1);
    if (need > p->ocap) {
        size_t nc = p->ocap ? p->ocap : 256;
        char *no;
        while (nc < need) nc *= 2;
        if (nc > limit + sizeof CAS__PK_MARKER) nc = CAS__MAX64(need, limit + sizeof CAS__PK_MARKER);
        if (!(no = (char *)cas__alloc(&p->user_alloc, nc))) { /* the text is bounded by its own limit */
            p->out_full = 1;
            cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
            return;
        }
        if (p->olen) memcpy(no, p->out, p->olen);
        cas__free(&p->user_alloc, p->out);
        p->out = no, p->ocap = nc;
    }
    room = limit > p->olen ? limit - p->olen : 0;
    if (n > room) { /* the limit: what fits (whole UTF-8 characters), and a marker that says so */
        while (room && ((unsigned char)s[room] & 0xC0) == 0x80) room--;
        memcpy(p->out + p->olen, s, room);
        p->olen += room;
        memcpy(p->out + p->olen, CAS__PK_MARKER, sizeof CAS__PK_MARKER - 1);
        p->olen += sizeof CAS__PK_MARKER - 1;
        p->out_full = 1;
        cas__pk_fail(p, CAS_E_LIMIT, "the preview reached CAS_PREVIEW_MAX_OUTPUT (%lld bytes)",
                     (long long)p->max_output);
    } else {
        memcpy(p->out + p->olen, s, n);
        p->olen += n;
    }
    p->out[p->olen] = 0;
}

static void cas__out_s(cas_preview *p, const char *s) { cas__out_put(p, s, strlen(s)); }

static void cas__out_f(cas_preview *p, const char *fmt, ...) {
    char t[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    if (n > 0) cas__out_put(p, t, CAS__MIN((size_t)n, sizeof t - 1));
}

/* Python's repr of a float: the shortest digits that read back the same, in fixed
 * notation for exponents -4..15 and scientific beyond, "inf", "nan", "-0.0".
 * numpy_style drops the 0 of "1.0" ("1.") as numpy prints array values. */
static void cas__fmt_float(double d, char *out, size_t cap, int numpy_style) {
    char e[40], digits[24];
    int prec, exp10, nd = 0, neg = 0, i, pass;
    const char *m;
    if (d != d) {
        snprintf(out, cap, "nan");
        return;
    }
    if (d == HUGE_VAL || d == -HUGE_VAL) {
        snprintf(out, cap, "%sinf", d < 0 ? "-" : "");
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    for (pass = 0;; pass++) {
        int keep;
        m = e, nd = neg = 0;
        if (*m == '-') neg = 1, m++;
        for (; *m && *m != 'e'; m++)
            if (*m >= '0' && *m <= '9' && nd < 20) digits[nd++] = *m;
        exp10 = atoi(m + 1);
        while (nd > 1 && digits[nd - 1] == '0') nd--;
        digits[nd] = 0;
        /* numpy's default: at most 8 digits after the point, or in a mantissa */
        keep = exp10 >= -4 && exp10 < 16 ? exp10 + 9 : 9;
        if (!numpy_style || nd <= keep || pass) break;
        snprintf(e, sizeof e, "%.*e", keep - 1, d);
    }
    {
        char t[64];
        size_t o = 0;
        if (neg) t[o++] = '-';
        if (exp10 >= -4 && exp10 < 16) {
            if (exp10 < 0) {
                t[o++] = '0', t[o++] = '.';
                for (i = -1; i > exp10; i--) t[o++] = '0';
                for (i = 0; i < nd; i++) t[o++] = digits[i];
            } else {
                for (i = 0; i <= exp10; i++) t[o++] = i < nd ? digits[i] : '0';
                t[o++] = '.';
                if (nd > exp10 + 1)
                    for (i = exp10 + 1; i < nd; i++) t[o++] = digits[i];
                else if (!numpy_style) t[o++] = '0';
            }
        } else {
            t[o++] = digits[0];
            if (nd > 1) {
                t[o++] = '.';
                for (i = 1; i < nd; i++) t[o++] = digits[i];
            }
            o += (size_t)snprintf(t + o, sizeof t - o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        }
        t[o] = 0;
        snprintf(out, cap, "%s", t);
    }
}

/* Python's repr of a str (UTF-8 in) or bytes: quotes as Python picks them, escapes
 * for what is not printable; invalid UTF-8 shows as \x escapes of its bytes. */
/* Code points Python's repr escapes (str.isprintable() is false), as far as they are
 * known without Unicode's tables: controls, separators other than ' ', format
 * characters (bidi overrides among them: shown, they could reorder the text around
 * them), private use, noncharacters. Unassigned code points are shown as they are. */
static int cas__unprintable(uint32_t cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || cp == 0x61c || cp == 0x1680 || cp == 0x180e ||
           (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) ||
           cp == 0x3000 || (cp >= 0xd800 && cp <= 0xf8ff) || (cp >= 0xfdd0 && cp <= 0xfdef) || cp == 0xfeff ||
           (cp >= 0xfff9 && cp <= 0xfffb) || (cp & 0xfffe) == 0xfffe || (cp >= 0xe0000 && cp <= 0xe007f) ||
           cp >= 0xf0000;
}

/* Text as Python's repr shows it: mode CAS__Q_STR 'str', CAS__Q_BYTES b'bytes', or
 * CAS__Q_BARE: no quotes (names, fields, table cells), escaped all the same. */
#define CAS__Q_STR 0
#define CAS__Q_BYTES 1
#define CAS__Q_BARE 2
#define CAS__Q_CUT 4 /* the first bytes only: Python's choice of quotes depends on all of them, so ' */

static void cas__out_quoted(cas_preview *p, const char *s, size_t n, int mode) {
    int sq = 0, dq = 0, bytes = (mode & 3) == CAS__Q_BYTES;
    char q, t[16];
    size_t i;
    for (i = 0; i < n; i++) sq |= s[i] == '\'', dq |= s[i] == '"';
    q = (mode & 3) == CAS__Q_BARE ? 0 : sq && !dq && !(mode & CAS__Q_CUT) ? '"' : '\'';
    if (bytes) cas__out_s(p, "b");
    if (q) cas__out_put(p, &q, 1);
    for (i = 0; i < n && !p->out_full;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int len;
        if (c == '\\' || (q && c == (unsigned char)q)) {
            t[0] = '\\', t[1] = (char)c;
            cas__out_put(p, t, 2), i++;
            continue;
        }
        if (c == '\n' || c == '\r' || c == '\t') {
            cas__out_s(p, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t"), i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
            snprintf(t, sizeof t, "\\x%02x", c);
            cas__out_s(p, t), i++;
            continue;
        }
        if (c < 0x80) {
            cas__out_put(p, s + i, 1), i++;
            continue;
        }
        /* a UTF-8 sequence: shown when valid and printable, escaped otherwise */
        if (!(len = cas__utf8_seq((const unsigned char *)s + i, n - i, &cp))) {
            snprintf(t, sizeof t, "\\x%02x", c); /* not UTF-8: its byte, escaped */
            cas__out_s(p, t), i++;
            continue;
        }
        if (cas__unprintable(cp)) {
            snprintf(t, sizeof t, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
            cas__out_s(p, t);
        } else {
            cas__out_put(p, s + i, (size_t)len);
        }
        i += (size_t)len;
    }
    if (q) cas__out_put(p, &q, 1);
}
