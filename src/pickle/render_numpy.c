/* ---- rendering: numpy ---------------------------------------------------------------- */

static int cas__pv_scalar(const cas__pv *v) {
    return v->kind <= CAS__PV_BYTEARRAY || v->kind == CAS__PV_GLOBAL || v->kind == CAS__PV_OPAQUE ||
           v->kind == CAS__PV_DATETIME || v->kind == CAS__PV_DECIMAL;
}

/* A dtype's name as numpy prints it ("float64", "<U10", "datetime64[ns]"). */
static void cas__dtype_name(const cas__pv *dt, char *out, size_t cap) {
    char kind;
    size_t isz = cas__dtype_item(dt, &kind), bits = isz * 8;
    const char *d = dt && dt->text ? dt->text : "?";
    char unit[32];
    const cas__pv *meta = cas__pv_kid(dt, 2);
    unit[0] = 0;
    if (meta && meta->nkids >= 1 && meta->kids[0]->kind == CAS__PV_BYTES)
        snprintf(unit, sizeof unit, "[%.*s]", (int)CAS__MIN(meta->kids[0]->tlen, (size_t)8), meta->kids[0]->text);
    else if (strchr(d, '[')) snprintf(unit, sizeof unit, "%.20s", strchr(d, '['));
    switch (kind) {
    case 'f': snprintf(out, cap, "float%u", (unsigned)bits); break;
    case 'i': snprintf(out, cap, "int%u", (unsigned)bits); break;
    case 'u': snprintf(out, cap, "uint%u", (unsigned)bits); break;
    case 'c': snprintf(out, cap, "complex%u", (unsigned)bits); break;
    case 'b': snprintf(out, cap, "bool"); break;
    case 'O': snprintf(out, cap, "object"); break;
    case 'M': snprintf(out, cap, "datetime64%s", unit); break;
    case 'm': snprintf(out, cap, "timedelta64%s", unit); break;
    case 'U': snprintf(out, cap, "<U%u", (unsigned)(isz / 4)); break;
    case 'S': snprintf(out, cap, "|S%u", (unsigned)isz); break;
    default: snprintf(out, cap, "%.40s", d);
    }
    if (dt && dt->sub == '>' && isz > 1 && kind != 'U' && kind != 'S' && kind != 'O' && kind != 'V') { /* not native */
        char t[64];
        snprintf(t, sizeof t, ">%c%u", kind, (unsigned)isz);
        snprintf(out, cap, "%s", t);
    }
    for (; *out; out++) /* type strings and units come from the pickle: printable ASCII only */
        if ((unsigned char)*out < 0x20 || (unsigned char)*out >= 0x7f || *out == '\\' || *out == '"') *out = '?';
}

static uint64_t cas__load(const unsigned char *b, size_t n, int big) {
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < n; i++) v |= (uint64_t)b[big ? n - 1 - i : i] << (8 * i);
    return v;
}

static double cas__half(uint16_t h) {
    int e = h >> 10 & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : HUGE_VAL) : ldexp(m + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

/* One array element as numpy prints it. */
static void cas__fmt_elem(const unsigned char *b, char kind, size_t isz, int big, const cas__pv *dt, char *out,
                          size_t cap, int numpy_style) {
    uint64_t u = isz <= 8 ? cas__load(b, isz, big) : 0;
    double d;
    char t[128], t2[64];
    switch (kind) {
    case 'f':
        if (isz == 2) d = cas__half((uint16_t)u);
        else if (isz == 4) {
            float f;
            uint32_t w = (uint32_t)u;
            memcpy(&f, &w, 4);
            d = f;
        } else if (isz == 8) memcpy(&d, &u, 8);
        else {
            snprintf(out, cap, "<float%u>", (unsigned)isz * 8);
            return;
        }
        if (isz == 4) { /* float32: the shortest digits that float32 reads back */
            int prec;
            for (prec = 1; prec <= 9; prec++) {
                snprintf(t, sizeof t, "%.*g", prec, d);
                if ((float)strtod(t, NULL) == (float)d) break;
            }
            d = strtod(t, NULL);
        }
        cas__fmt_float(d, out, cap, numpy_style);
        return;
    case 'i':
        if (isz && isz < 8 && (u >> (isz * 8 - 1) & 1)) u |= ~(uint64_t)0 << (isz * 8);
        snprintf(out, cap, "%lld", (long long)(int64_t)u);
        return;
    case 'u': snprintf(out, cap, "%llu", (unsigned long long)u); return;
    case 'b': snprintf(out, cap, "%s", u ? "True" : "False"); return;
    case 'c': {
        double re, im;
        if (isz == 8) {
            float a, c2;
            uint32_t w1 = (uint32_t)cas__load(b, 4, big), w2 = (uint32_t)cas__load(b + 4, 4, big);
            memcpy(&a, &w1, 4), memcpy(&c2, &w2, 4);
            re = a, im = c2;
        } else if (isz == 16) {
            uint64_t w1 = cas__load(b, 8, big), w2 = cas__load(b + 8, 8, big);
            memcpy(&re, &w1, 8), memcpy(&im, &w2, 8);
        } else {
            snprintf(out, cap, "<complex%u>", (unsigned)isz * 8);
            return;
        }
        cas__fmt_float(re, t, sizeof t, 1), cas__fmt_float(im, t2, sizeof t2, 1);
        snprintf(out, cap, "%.40s%s%.40sj", t, im < 0 || t2[0] == '-' ? "" : "+", t2);
        return;
    }
    case 'M':
    case 'm': {
        int64_t x = (int64_t)u;
        const cas__pv *meta = cas__pv_kid(dt, 2);
        char unit[12] = "";
        char *u;
        if (meta && meta->nkids && meta->kids[0]->kind == CAS__PV_BYTES)
            snprintf(unit, sizeof unit, "%.*s", (int)CAS__MIN(meta->kids[0]->tlen, (size_t)8), meta->kids[0]->text);
        for (u = unit; *u; u++) /* from the pickle: printable ASCII only */
            if ((unsigned char)*u <= 0x20 || (unsigned char)*u >= 0x7f || *u == '\\' || *u == '\'') *u = '?';
        if (x == INT64_MIN) {
            snprintf(out, cap, "'NaT'");
            return;
        }
        if (kind == 'm') {
            snprintf(out, cap, "%lld %s", (long long)x, unit[0] ? unit : "units");
            return;
        }
        { /* a count of units since 1970-01-01, as an ISO date-time */
            int64_t per = !strcmp(unit, "ns")   ? 1000000000
                          : !strcmp(unit, "us") ? 1000000
                          : !strcmp(unit, "ms") ? 1000
                          : !strcmp(unit, "s")  ? 1
                          : !strcmp(unit, "D")  ? -86400
                                                : 0;
            int64_t secs, frac = 0, days, z, era, doe, yoe, y, doy, mp, dd, mm;
            /* units numpy has but this does not format, and days too far out for seconds: the count */
            if (!per || (per < 0 && (x > INT64_MAX / 86400 || x < -(INT64_MAX / 86400)))) {
                snprintf(out, cap, "%lld [%s]", (long long)x, unit);
                return;
            }
            if (per < 0) secs = x * 86400;
            else secs = x / per - (x % per < 0), frac = x - secs * per;
            days = secs / 86400 - (secs % 86400 < 0);
            secs -= days * 86400;
            z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
            yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, y = yoe + era * 400;
            doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
            dd = doy - (153 * mp + 2) / 5 + 1, mm = mp < 10 ? mp + 3 : mp - 9;
            if (per < 0) {
                snprintf(out, cap, "'%04lld-%02lld-%02lld'", (long long)(y + (mm <= 2)), (long long)mm, (long long)dd);
                return;
            }
            snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d", (int)((y + (mm <= 2)) % 100000), (int)mm, (int)dd,
                     (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
            if (per > 1)
                snprintf(out, cap, "'%.40s.%0*lld'", t, per == 1000 ? 3 : per == 1000000 ? 6 : 9, (long long)frac);
            else snprintf(out, cap, "'%.40s'", t);
        }
        return;
    }
    default: snprintf(out, cap, "<%u bytes>", (unsigned)isz);
    }
}

static void cas__render(cas_preview *p, cas__pv *v, int depth);

typedef struct cas__arr {
    const cas__pv *dt, *data;
    int py_floats; /* floats as Python prints them ("1.0"), not numpy ("1.") */
    uint64_t shape[CAS__PK_NDIM], stride[CAS__PK_NDIM];
    int ndim, fortran, big;
    char kind;
    size_t isz;
    uint64_t win[2 * CAS__PK_WINDOWS];
    size_t nwin;
} cas__arr;

/* An array's view for rendering: 0, or -1 when it is not a whole array description. */
static int cas__arr_open(cas_preview *p, const cas__pv *v, cas__arr *a) {
    int d;
    memset(a, 0, sizeof *a);
    if (v->nkids < 3) return -1;
    a->dt = v->kids[0], a->data = v->kids[2], a->fortran = (int)v->i;
    if ((a->ndim = cas__shape_of(v->kids[1], a->shape)) < 0 || a->dt->kind != CAS__PV_DTYPE) return -1;
    a->isz = cas__dtype_item(a->dt, &a->kind);
    a->big = a->dt->sub == '>';
    if (a->ndim) {
        if (a->fortran)
            for (d = 0, a->stride[0] = 1; d + 1 < a->ndim; d++) a->stride[d + 1] = a->stride[d] * a->shape[d];
        else
            for (d = a->ndim - 1, a->stride[a->ndim - 1] = 1; d > 0; d--) a->stride[d - 1] = a->stride[d] * a->shape[d];
    }
    if (a->data->flags & CAS__PVF_WIN)
        a->nwin = cas__array_windows(a->shape, a->ndim, a->fortran, a->isz ? a->isz : 1, (size_t)p->max_items, a->win,
                                     CAS__PK_WINDOWS);
    return 0;
}

/* Where element `e` (a flat index in storage order) was kept: its position among
 * the kept units (bytes, or list items for objects), or -1 if it was not. */
static int64_t cas__arr_kept(const cas__arr *a, uint64_t e) {
    uint64_t unit = a->isz ? a->isz : 1, off = e * unit, before = 0;
    size_t w;
    if (!(a->data->flags & CAS__PVF_WIN)) return (int64_t)off;
    for (w = 0; w < a->nwin; w++) {
        if (off >= a->win[2 * w] && off + unit <= a->win[2 * w + 1]) return (int64_t)(before + off - a->win[2 * w]);
        before += a->win[2 * w + 1] - a->win[2 * w];
    }
    return -1;
}

static void cas__arr_elem(cas_preview *p, const cas__arr *a, uint64_t e, int depth) {
    int64_t at = cas__arr_kept(a, e);
    char t[96];
    if (a->data->kind == CAS__PV_LIST) { /* object arrays: the pickled objects themselves */
        if (at >= 0 && (uint64_t)at < a->data->nkids) cas__render(p, a->data->kids[at], depth + 1);
        else cas__out_s(p, "?");
        return;
    }
    if (at < 0 || (uint64_t)at + a->isz > a->data->tlen || a->isz > 64 || !a->data->text) {
        cas__out_s(p, "?");
        return;
    }
    if (a->kind == 'U' || a->kind == 'S') { /* UCS-4 or bytes, NUL-padded */
        char s[256];
        size_t n = 0, k;
        const unsigned char *b = (const unsigned char *)a->data->text + at;
        for (k = 0; k < a->isz && n + 4 < sizeof s; k += a->kind == 'U' ? 4 : 1) {
            uint32_t c = a->kind == 'U' ? (uint32_t)cas__load(b + k, 4, a->big) : b[k];
            if (!c) break;
            n += (size_t)(a->kind == 'U' && c <= 0x10ffff ? cas__utf8_put(s + n, c) : (s[n] = (char)c, 1));
        }
        cas__out_quoted(p, s, n, a->kind == 'S');
        return;
    }
    cas__fmt_elem((const unsigned char *)a->data->text + at, a->kind, a->isz, a->big, a->dt, t, sizeof t,
                  !a->py_floats);
    cas__out_s(p, t);
}

/* The nested [..] of axis d from storage offset base, the first `items` of each axis. */
static void cas__arr_nest(cas_preview *p, const cas__arr *a, int d, uint64_t base, int depth) {
    uint64_t i, n = a->shape[d], shown = CAS__MIN(n, (uint64_t)p->max_items);
    cas__out_s(p, "[");
    for (i = 0; i < shown && !p->out_full; i++) {
        if (i) cas__out_s(p, ", ");
        if (d + 1 < a->ndim) cas__arr_nest(p, a, d + 1, base + i * a->stride[d], depth);
        else cas__arr_elem(p, a, base + i * a->stride[d], depth);
    }
    if (shown < n) cas__out_s(p, ", ...");
    cas__out_s(p, "]");
}

static void cas__render_ndarray(cas_preview *p, const cas__pv *v, int depth) {
    cas__arr a;
    char dn[64];
    uint64_t total = 1, want;
    int d;
    if (cas__arr_open(p, v, &a) < 0) {
        cas__out_s(p, "array(<no state>)");
        return;
    }
    cas__dtype_name(a.dt, dn, sizeof dn);
    for (d = 0; d < a.ndim; d++)
        total = a.shape[d] && total > UINT64_MAX / a.shape[d] ? UINT64_MAX : total * a.shape[d];
    want = a.isz && total <= UINT64_MAX / a.isz ? total * a.isz : UINT64_MAX;
    cas__out_s(p, "array(");
    if (a.data->kind == CAS__PV_LIST && a.kind == 'O') {
        if (a.data->full != total)
            cas__out_f(p, "<%llu objects for %llu elements>", (unsigned long long)a.data->full,
                       (unsigned long long)total);
        else if (!a.ndim) cas__arr_elem(p, &a, 0, depth);
        else cas__arr_nest(p, &a, 0, 0, depth);
    } else if ((a.data->kind != CAS__PV_BYTES && a.data->kind != CAS__PV_BYTEARRAY) || !a.isz) {
        cas__out_s(p, "<data not understood>");
    } else if (a.data->full != want && !(a.data->flags & CAS__PVF_LATIN1)) {
        cas__out_f(p, "<%llu bytes of data; shape x itemsize says %llu>", (unsigned long long)a.data->full,
                   (unsigned long long)want);
    } else if (!a.ndim) {
        cas__arr_elem(p, &a, 0, depth);
    } else {
        cas__arr_nest(p, &a, 0, 0, depth);
    }
    cas__out_f(p, ", dtype=%s, shape=(", dn);
    for (d = 0; d < a.ndim; d++) cas__out_f(p, d ? ", %llu" : "%llu", (unsigned long long)a.shape[d]);
    cas__out_s(p, a.ndim == 1 ? ",))" : "))");
}

/* ---- rendering: pandas ------------------------------------------------------------------ */

static void cas__render_pandas(cas_preview *p, cas__pv *v, int depth);
