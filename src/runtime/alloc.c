/* ---- allocation ---------------------------------------------------------- */

static void *cas__alloc(const cas_allocator *a, size_t n) {
    if (n == 0) n = 1;
    if (a && a->alloc) return a->alloc(a->user, n);
    return CAS_MALLOC(n);
}

static void cas__free(const cas_allocator *a, void *p) {
    if (!p) return;
    if (a && a->alloc) {
        if (a->free) a->free(a->user, p);
        return;
    }
    CAS_FREE(p);
}

static void *cas__calloc(const cas_allocator *a, size_t n) {
    void *p = cas__alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

static void cas__copy_allocator(cas_allocator *dst, const cas_allocator *src) {
    if (src && src->alloc) *dst = *src;
    else memset(dst, 0, sizeof *dst);
}

/* A zeroed object whose first member is the allocator it came from (a copy of a). */
static void *cas__obj_new(size_t size, const cas_allocator *a) {
    cas_allocator *o = (cas_allocator *)cas__calloc(a, size);
    if (o) cas__copy_allocator(o, a);
    return o;
}

/* A formatted message into a fixed buffer; never overflows, always terminated. */
static void cas__fmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    if (!cap) return;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

CASDEF size_t cas_bytes_repr(const void *p, size_t n, char *buf, size_t cap) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i, o = 0;
    char q = '\'';
    char tmp[8];
    if (!cap) return 0;
    /* Python switches to double quotes when ' occurs and " does not. */
    if (memchr(s, '\'', n) && !memchr(s, '"', n)) q = '"';
#define CAS__PUT(str)                 \
    do {                              \
        size_t l_ = strlen(str);      \
        if (o + l_ >= cap) goto done; \
        memcpy(buf + o, str, l_);     \
        o += l_;                      \
    } while (0)
    tmp[0] = 'b', tmp[1] = q, tmp[2] = 0;
    CAS__PUT(tmp);
    for (i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c == '\\') CAS__PUT("\\\\");
        else if (c == (unsigned char)q) {
            tmp[0] = '\\', tmp[1] = q, tmp[2] = 0;
            CAS__PUT(tmp);
        } else if (c == '\t') CAS__PUT("\\t");
        else if (c == '\n') CAS__PUT("\\n");
        else if (c == '\r') CAS__PUT("\\r");
        else if (c < 32 || c >= 127) {
            cas__fmt(tmp, sizeof tmp, "\\x%02x", c);
            CAS__PUT(tmp);
        } else {
            tmp[0] = (char)c, tmp[1] = 0;
            CAS__PUT(tmp);
        }
    }
    tmp[0] = q, tmp[1] = 0;
    CAS__PUT(tmp);
#undef CAS__PUT
done:
    buf[o] = 0;
    return o;
}
