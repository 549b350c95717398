/* ---- array data: which bytes to keep ----------------------------------------------- */

#define CAS__PVF_WIN 32 /* BYTES holding an array's kept windows, not a prefix */
#define CAS__PK_WINDOWS 128
#define CAS__PK_NDIM 32

static int cas__pv_is_global(const cas__pv *v, const char *module, const char *name) {
    size_t ml = strlen(module);
    return v && v->kind == CAS__PV_GLOBAL && v->tlen == ml + 1 + strlen(name) && !memcmp(v->text, module, ml) &&
           v->text[ml] == '\n' && !strcmp(v->text + ml + 1, name);
}

/* numpy's own modules moved in numpy 2 (numpy.core -> numpy._core): either. */
static int cas__pv_is_np(const cas__pv *v, const char *sub, const char *name) {
    char m1[64], m2[64];
    snprintf(m1, sizeof m1, "numpy.core.%s", sub);
    snprintf(m2, sizeof m2, "numpy._core.%s", sub);
    return cas__pv_is_global(v, m1, name) || cas__pv_is_global(v, m2, name);
}

/* A dtype's descr ("f8", "<U10", "M8[ns]") to its kind letter and item size in bytes (0: unknown, or objects). */
static size_t cas__dtype_item(const cas__pv *dt, char *kind) {
    const char *s;
    size_t n = 0;
    *kind = 0;
    if (!dt || dt->kind != CAS__PV_DTYPE || !dt->text) return 0;
    s = dt->text;
    while (*s == '<' || *s == '>' || *s == '|' || *s == '=') s++;
    *kind = *s;
    if (!*s || *s == 'O') return 0; /* "" or "<": no kind letter, nothing to step past (found by fuzz_pickle) */
    for (s++; *s >= '0' && *s <= '9' && n < ((size_t)1 << 32); s++) n = n * 10 + (size_t)(*s - '0');
    if (*kind == 'U') n *= 4; /* UCS-4 */
    if (*kind == 'b' && !n) n = 1;
    if (*kind == 'V' && dt->i > 0) n = (size_t)dt->i; /* structured: elsize from its state */
    return n;
}

/* An array's shape from a tuple of ints: ndim, or -1 if it is not one. */
static int cas__shape_of(const cas__pv *t, uint64_t *shape) {
    uint32_t k;
    if (!t || t->kind != CAS__PV_TUPLE || t->full > CAS__PK_NDIM || t->nkids != t->full) return -1;
    for (k = 0; k < t->nkids; k++) {
        if (t->kids[k]->kind != CAS__PV_INT || t->kids[k]->i < 0) return -1;
        shape[k] = (uint64_t)t->kids[k]->i;
    }
    return (int)t->nkids;
}

/* The windows a display of `items` values per row reads: the first `items`
 * elements along the fastest axis, for the first `items` indices of each other
 * axis (capped), as byte ranges [start, end) in increasing order. */
static size_t cas__array_windows(const uint64_t *shape, int ndim, int fortran, size_t isz, size_t items, uint64_t *win,
                                 size_t maxwin) {
    uint64_t idx[CAS__PK_NDIM], stride[CAS__PK_NDIM], total = 1;
    int d, fast = fortran ? 0 : ndim - 1;
    size_t n = 0, kept = 0;
    if (ndim < 0 || !isz || !items) return 0;
    for (d = 0; d < ndim; d++) {
        if (shape[d] && total > UINT64_MAX / shape[d]) return 0;
        total *= shape[d];
    }
    if (!total) return 0;
    if (ndim == 0) {
        win[0] = 0, win[1] = isz;
        return 1;
    }
    /* strides in elements */
    if (fortran)
        for (d = 0, stride[0] = 1; d + 1 < ndim; d++) stride[d + 1] = stride[d] * shape[d];
    else
        for (d = ndim - 1, stride[ndim - 1] = 1; d > 0; d--) stride[d - 1] = stride[d] * shape[d];
    memset(idx, 0, sizeof idx);
    for (;;) {
        uint64_t off = 0, len = CAS__MIN((uint64_t)items, shape[fast]);
        for (d = 0; d < ndim; d++)
            if (d != fast) off += idx[d] * stride[d];
        if (n == maxwin || kept + len * isz > CAS__PK_KEEP_ARRAY) break;
        win[2 * n] = off * isz, win[2 * n + 1] = (off + len) * isz;
        kept += (size_t)(len * isz), n++;
        /* the next index tuple over the other axes, in increasing offset order:
         * C order bumps the last of them first, Fortran order the first */
        if (fortran) {
            for (d = 1; d < ndim; d++) {
                if (++idx[d] < CAS__MIN((uint64_t)items, shape[d])) break;
                idx[d] = 0;
            }
            if (d >= ndim) break;
        } else {
            for (d = ndim - 2; d >= 0; d--) {
                if (++idx[d] < CAS__MIN((uint64_t)items, shape[d])) break;
                idx[d] = 0;
            }
            if (d < 0) break;
        }
    }
    return n;
}

/* Is the value about to be read an ndarray's raw data (its BUILD state so far on
 * the stack: NDARRAY, MARK, version, shape, dtype, fortran[, _codecs.encode])?
 * Then the windows to keep (none for protocol 2's latin-1 text and protocol 5's
 * _frombuffer, whose shape comes too late: *latin1 asks for a longer prefix), and
 * whether the array is the whole pickle (its reading may stop after them). */
static size_t cas__pk_array_context(cas_preview *p, uint64_t len, uint64_t *win, int *top, int *latin1) {
    size_t m, n;
    uint64_t shape[CAS__PK_NDIM], total = 1;
    int ndim, d;
    char kind;
    size_t isz;
    *top = 0, *latin1 = 0;
    if (!p->nmarks) return 0;
    m = p->marks[p->nmarks - 1], n = p->sp - m;
    if (m >= 1 && n == 0 && cas__pv_is_np(p->stack[m - 1], "numeric", "_frombuffer")) {
        *latin1 = 1; /* protocol 5: the data comes before its dtype and shape: a longer prefix */
        return 0;
    }
    if (m < 1 || (n != 4 && n != 5) || p->stack[m - 1]->kind != CAS__PV_NDARRAY) return 0;
    if (p->stack[m]->kind != CAS__PV_INT || p->stack[m + 3]->kind != CAS__PV_BOOL) return 0;
    if (n == 5 && !cas__pv_is_global(p->stack[m + 4], "_codecs", "encode")) return 0;
    if ((ndim = cas__shape_of(p->stack[m + 1], shape)) < 0) return 0;
    if (!(isz = cas__dtype_item(p->stack[m + 2], &kind))) return 0;
    *top = m == 1 && p->nmarks == 1;
    if (n == 5) {
        *latin1 = 1;
        return 0;
    }
    /* windows only for data as long as the shape says: they cost up to CAS__PK_WINDOWS x
     * ndim steps, which a lying shape could otherwise ask for with every 2-byte payload */
    for (d = 0; d < ndim; d++) total = shape[d] && total > UINT64_MAX / shape[d] ? UINT64_MAX : total * shape[d];
    if (total > UINT64_MAX / isz || total * isz != len) return 0;
    return cas__array_windows(shape, ndim, (int)p->stack[m + 3]->i, isz, (size_t)p->max_items, win, CAS__PK_WINDOWS);
}

/* A sized str/bytes/bytearray: its first bytes kept (or an array's windows), the rest read past. */
static int cas__pk_sized(cas_preview *p, int kind, uint64_t len) {
    uint64_t win[2 * CAS__PK_WINDOWS];
    size_t nwin, keep = 0, kept = 0, k;
    int top = 0, latin1 = 0, stopped = 0;
    unsigned char *buf;
    cas__pv *v = cas__pv_new(p, kind);
    if (!v) return -1;
    nwin = kind == CAS__PV_STR || kind == CAS__PV_BYTES || kind == CAS__PV_BYTEARRAY
               ? cas__pk_array_context(p, len, win, &top, &latin1)
               : 0;
    if (nwin) {
        v->flags |= CAS__PVF_WIN;
        for (k = 0; k < nwin; k++) keep += (size_t)(win[2 * k + 1] - win[2 * k]);
    } else {
        keep = (size_t)CAS__MIN(len, latin1 ? (uint64_t)CAS__PK_KEEP_ARRAY : (uint64_t)CAS__PK_KEEP_TEXT);
        win[0] = 0, win[1] = keep, nwin = 1;
    }
    if (!(buf = (unsigned char *)cas__alloc(&p->alloc, keep + 1))) {
        cas__pv_unref(p, v);
        return cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
    }
    if (cas__pk_payload(p, len, win, nwin, buf, top && (v->flags & CAS__PVF_WIN), &stopped, &kept) < 0) {
        cas__free(&p->alloc, buf);
        cas__pv_unref(p, v);
        return -1;
    }
    buf[kept] = 0;
    cas__free(&p->alloc, v->text);
    v->text = (char *)buf, v->tlen = kept, v->full = len;
    if (len > kept) v->flags |= CAS__PVF_CUT;
    if (stopped) p->stopped_early = 1;
    return cas__pk_push(p, v);
}
