/* ---- JSON: a small bounded parser ---------------------------------------- */
/* Sidecars and data.json are small documents from untrusted stores. Tokens go
 * in one flat array in document order, each with the index just past its
 * subtree, so lookups skip whole values without recursion. Depth is capped and
 * nothing is recursive, so hostile nesting costs neither stack nor time. */

enum { CAS__J_OBJ = 1, CAS__J_ARR, CAS__J_STR, CAS__J_NUM, CAS__J_TRUE, CAS__J_FALSE, CAS__J_NULL };
#define CAS__JSON_DEPTH 64

typedef struct cas__jtok {
    int type;
    size_t start, end; /* text span; strings exclude the quotes */
    size_t next;       /* token index just past this value's subtree */
    size_t count;      /* members (objects: key+value pairs) or elements */
} cas__jtok;

typedef struct cas__json {
    const char *s;
    size_t n;
    cas__jtok *t;
    size_t count, cap;
    const cas_allocator *alloc;
    char err[96];
} cas__json;

static int cas__json_push(cas__json *j, int type, size_t start) {
    if (j->count == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 32;
        cas__jtok *nt;
        if (nc > ((size_t)-1) / sizeof *nt) return CAS_E_NOMEM;
        nt = (cas__jtok *)cas__alloc(j->alloc, nc * sizeof *nt);
        if (!nt) return CAS_E_NOMEM;
        if (j->count) memcpy(nt, j->t, j->count * sizeof *nt);
        cas__free(j->alloc, j->t);
        j->t = nt, j->cap = nc;
    }
    j->t[j->count].type = type;
    j->t[j->count].start = start;
    j->t[j->count].end = start;
    j->t[j->count].next = j->count + 1;
    j->t[j->count].count = 0;
    j->count++;
    return CAS_OK;
}

static int cas__json_fail(cas__json *j, size_t at, const char *what) {
    cas__fmt(j->err, sizeof j->err, "%s at byte %lu", what, (unsigned long)at);
    return CAS_E_JSON;
}

static size_t cas__json_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* Scans a string starting after its opening quote; returns the index of the
 * closing quote or 0 on error (a string never closes at index 0). */
static size_t cas__json_scan_str(cas__json *j, size_t i) {
    const char *s = j->s;
    while (i < j->n) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"') return i;
        if (ch < 0x20) {
            cas__json_fail(j, i, "control character in string");
            return 0;
        }
        if (ch == '\\') {
            if (i + 1 >= j->n) break;
            ch = (unsigned char)s[i + 1];
            if (ch == 'u') {
                int k;
                for (k = 2; k < 6; k++) {
                    char h = i + k < j->n ? s[i + k] : 0;
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'))) {
                        cas__json_fail(j, i, "bad \\u escape");
                        return 0;
                    }
                }
                i += 6;
                continue;
            }
            if (!ch || !strchr("\"\\/bfnrt", ch)) {
                cas__json_fail(j, i, "bad escape");
                return 0;
            }
            i += 2;
            continue;
        }
        i++;
    }
    cas__json_fail(j, i, "unterminated string");
    return 0;
}

static size_t cas__json_scan_num(const char *s, size_t i, size_t n) {
    size_t st = i;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return st;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return st;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t d;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return st;
    }
    return i;
}

static void cas__json_free(cas__json *j) {
    cas__free(j->alloc, j->t);
    j->t = NULL;
    j->count = j->cap = 0;
}

/* Parses one JSON value spanning the whole text (whitespace around allowed). */
static int cas__json_parse(cas__json *j, const char *s, size_t n, const cas_allocator *alloc) {
    size_t stack[CAS__JSON_DEPTH];
    int expect_key[CAS__JSON_DEPTH];
    int depth = 0, r;
    size_t i = 0;
    memset(j, 0, sizeof *j);
    j->s = s, j->n = n, j->alloc = alloc;
    for (;;) {
        size_t tok;
        i = cas__json_ws(s, i, n);
        if (i >= n) return cas__json_fail(j, i, "unexpected end");
        if (depth && expect_key[depth - 1]) { /* inside an object: a key or '}' */
            cas__jtok *o = &j->t[stack[depth - 1]];
            if (s[i] == '}' && o->count == 0) goto close;
            if (o->count) {
                if (s[i] == '}') goto close;
                if (s[i] != ',') return cas__json_fail(j, i, "expected ',' or '}'");
                i = cas__json_ws(s, i + 1, n);
            }
            if (i >= n || s[i] != '"') return cas__json_fail(j, i, "expected a string key");
            if ((r = cas__json_push(j, CAS__J_STR, i + 1)) < 0) return r;
            tok = j->count - 1;
            if (!(j->t[tok].end = cas__json_scan_str(j, i + 1))) return CAS_E_JSON;
            i = cas__json_ws(s, j->t[tok].end + 1, n);
            if (i >= n || s[i] != ':') return cas__json_fail(j, i, "expected ':'");
            i = cas__json_ws(s, i + 1, n);
            if (i >= n) return cas__json_fail(j, i, "unexpected end");
            j->t[stack[depth - 1]].count++; /* not o: the push may have moved the array */
        } else if (depth) {                 /* inside an array: a value or ']' */
            cas__jtok *a = &j->t[stack[depth - 1]];
            if (s[i] == ']') goto close;
            if (a->count) {
                if (s[i] != ',') return cas__json_fail(j, i, "expected ',' or ']'");
                i = cas__json_ws(s, i + 1, n);
                if (i >= n) return cas__json_fail(j, i, "unexpected end");
            }
            a->count++;
        }
        /* a value */
        if (s[i] == '{' || s[i] == '[') {
            if (depth == CAS__JSON_DEPTH) return cas__json_fail(j, i, "nesting too deep");
            if ((r = cas__json_push(j, s[i] == '{' ? CAS__J_OBJ : CAS__J_ARR, i)) < 0) return r;
            expect_key[depth] = s[i] == '{';
            stack[depth++] = j->count - 1;
            i++;
            continue;
        }
        if (s[i] == '"') {
            if ((r = cas__json_push(j, CAS__J_STR, i + 1)) < 0) return r;
            tok = j->count - 1;
            if (!(j->t[tok].end = cas__json_scan_str(j, i + 1))) return CAS_E_JSON;
            i = j->t[tok].end + 1;
        } else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
            size_t e = cas__json_scan_num(s, i, n);
            if (e == i) return cas__json_fail(j, i, "bad number");
            if ((r = cas__json_push(j, CAS__J_NUM, i)) < 0) return r;
            j->t[j->count - 1].end = e;
            i = e;
        } else if (n - i >= 4 && !memcmp(s + i, "true", 4)) {
            if ((r = cas__json_push(j, CAS__J_TRUE, i)) < 0) return r;
            i += 4, j->t[j->count - 1].end = i;
        } else if (n - i >= 5 && !memcmp(s + i, "false", 5)) {
            if ((r = cas__json_push(j, CAS__J_FALSE, i)) < 0) return r;
            i += 5, j->t[j->count - 1].end = i;
        } else if (n - i >= 4 && !memcmp(s + i, "null", 4)) {
            if ((r = cas__json_push(j, CAS__J_NULL, i)) < 0) return r;
            i += 4, j->t[j->count - 1].end = i;
        } else {
            return cas__json_fail(j, i, "unexpected character");
        }
        if (!depth) goto top_done;
        continue;
    close:
        depth--;
        j->t[stack[depth]].end = i + 1;
        j->t[stack[depth]].next = j->count;
        i++;
        if (!depth) goto top_done;
        continue;
    }
top_done:
    i = cas__json_ws(s, i, n);
    if (i != n) return cas__json_fail(j, i, "extra data after the value");
    return CAS_OK;
}

/* Compares a string token's raw text with a plain key (keys we look up have no escapes). */
static int cas__json_str_is(const cas__json *j, size_t tok, const char *lit) {
    size_t l = strlen(lit);
    const cas__jtok *t = &j->t[tok];
    return t->type == CAS__J_STR && t->end - t->start == l && !memcmp(j->s + t->start, lit, l);
}

/* The value token of member `key` in object token obj, or 0 (token 0 is never a member).
 * Python's json keeps the last of duplicate keys; so does this. */
static size_t cas__json_get(const cas__json *j, size_t obj, const char *key) {
    size_t i, k, found = 0;
    if (obj >= j->count || j->t[obj].type != CAS__J_OBJ) return 0;
    i = obj + 1;
    for (k = 0; k < j->t[obj].count; k++) {
        size_t v = i + 1;
        if (cas__json_str_is(j, i, key)) found = v;
        i = j->t[v].next;
    }
    return found;
}

/* Writes code point c (at most U+10FFFF) as UTF-8 at d; returns its length (1-4). */
CAS__UNUSED static int cas__utf8_put(char *d, uint32_t c) {
    if (c < 0x80) return d[0] = (char)c, 1;
    if (c < 0x800) return d[0] = (char)(0xc0 | c >> 6), d[1] = (char)(0x80 | (c & 63)), 2;
    if (c < 0x10000)
        return d[0] = (char)(0xe0 | c >> 12), d[1] = (char)(0x80 | (c >> 6 & 63)), d[2] = (char)(0x80 | (c & 63)), 3;
    return d[0] = (char)(0xf0 | c >> 18), d[1] = (char)(0x80 | (c >> 12 & 63)), d[2] = (char)(0x80 | (c >> 6 & 63)),
           d[3] = (char)(0x80 | (c & 63)), 4;
}

/* The length of the valid UTF-8 sequence at s (overlong forms, surrogates and code
 * points past U+10FFFF are not), with its code point; 0 if there is none. */
CAS__UNUSED static int cas__utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0, k;
    uint32_t v = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    if (!len || (size_t)len > n) return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[k] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)) || (v >= 0xd800 && v < 0xe000)) return 0;
    *cp = v;
    return len;
}

/* Decodes a string token into buf (UTF-8, escapes resolved). Returns the length,
 * or (size_t)-1 when it does not fit or holds a NUL or a lone surrogate. */
CAS__UNUSED static size_t cas__json_str(const cas__json *j, size_t tok, char *buf, size_t cap) {
    const cas__jtok *t = &j->t[tok];
    size_t i = t->start, o = 0;
    if (t->type != CAS__J_STR || !cap) return (size_t)-1;
    while (i < t->end) {
        unsigned long cp;
        char ch = j->s[i];
        if (ch != '\\') {
            if (o + 1 >= cap) return (size_t)-1;
            buf[o++] = ch, i++;
            continue;
        }
        ch = j->s[i + 1];
        i += 2;
        if (ch != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            if (o + 1 >= cap) return (size_t)-1;
            buf[o++] = to[strchr(from, ch) - from];
            continue;
        }
        {
            char hx[5];
            memcpy(hx, j->s + i, 4), hx[4] = 0;
            cp = strtoul(hx, NULL, 16);
            i += 4;
        }
        if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
            char hx[5];
            unsigned long lo;
            if (i + 6 > t->end || j->s[i] != '\\' || j->s[i + 1] != 'u') return (size_t)-1;
            memcpy(hx, j->s + i + 2, 4), hx[4] = 0;
            lo = strtoul(hx, NULL, 16);
            if (lo < 0xdc00 || lo >= 0xe000) return (size_t)-1;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            return (size_t)-1;
        }
        if (cp == 0) return (size_t)-1; /* NUL would cut the C string */
        if (o + 5 >= cap) return (size_t)-1;
        o += (size_t)cas__utf8_put(buf + o, (uint32_t)cp);
    }
    buf[o] = 0;
    return o;
}

/* An integer token (JSON number without fraction or exponent, or true/false as
 * Python's int() would take them). 0 on success; -1 if not integral; 1 if out of
 * int64 range (the text stays available through the token). */
static int cas__json_int(const cas__json *j, size_t tok, int64_t *v) {
    const cas__jtok *t = &j->t[tok];
    size_t i = t->start;
    int neg = 0;
    uint64_t acc = 0;
    if (t->type == CAS__J_TRUE || t->type == CAS__J_FALSE) {
        *v = t->type == CAS__J_TRUE;
        return 0;
    }
    if (t->type != CAS__J_NUM) return -1;
    if (j->s[i] == '-') neg = 1, i++;
    for (; i < t->end; i++) {
        char ch = j->s[i];
        if (ch == '.' || ch == 'e' || ch == 'E') { /* integral floats (1.0, 2e0) count, like "%d" % 1.0 */
            double d = strtod(j->s + t->start, NULL);
            if (d != d || d < -9.2e18 || d > 9.2e18) return 1;
            if ((double)(int64_t)d != d) return -1;
            *v = (int64_t)d;
            return 0;
        }
        if (acc > (UINT64_MAX - 9) / 10) return 1;
        acc = acc * 10 + (uint64_t)(ch - '0');
    }
    if (acc > (uint64_t)INT64_MAX + (uint64_t)neg) return 1;
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 0;
}

/* Python truthiness of a JSON value, for cas_raw. */
static int cas__json_truthy(const cas__json *j, size_t tok) {
    const cas__jtok *t = &j->t[tok];
    switch (t->type) {
    case CAS__J_TRUE: return 1;
    case CAS__J_FALSE:
    case CAS__J_NULL: return 0;
    case CAS__J_STR: return t->end > t->start;
    case CAS__J_OBJ:
    case CAS__J_ARR: return t->count > 0;
    case CAS__J_NUM: return strtod(j->s + t->start, NULL) != 0.0;
    default: return 0;
    }
}
