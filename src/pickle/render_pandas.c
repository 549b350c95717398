/* ---- rendering: pandas (walking the generic values its pickles make) ---------------- */

static cas__pv *cas__dict_get(cas__pv *d, const char *key) {
    uint32_t k;
    if (!d || d->kind != CAS__PV_DICT) return NULL;
    for (k = 0; k + 1 < d->nkids; k += 2)
        if (cas__pv_is_text(d->kids[k], key)) return d->kids[k + 1];
    return NULL;
}

/* The ndarray behind a column or an index's data: an ndarray, or a pandas array
 * backed by one (DatetimeArray: its BUILD state is (dtype, ndarray, attrs)). One
 * hop: a backed array's state holds an ndarray, never another backed array (a
 * pickle can make one hold itself). */
static cas__pv *cas__pd_ndarray(cas__pv *v) {
    if (v && v->kind == CAS__PV_PANDAS && v->sub == CAS__PD_BACKED && v->aux && v->aux->kind == CAS__PV_TUPLE)
        v = cas__pv_kid(v->aux, 1);
    return v && v->kind == CAS__PV_NDARRAY ? v : NULL;
}

#define CAS__PD_LEVELS 8

typedef struct cas__pdix {
    uint64_t len;
    int64_t start, step; /* a RangeIndex */
    cas__pv *arr, *name, *cls;
    int nlev; /* a MultiIndex: each level's values and the codes into them */
    cas__pv *lev[CAS__PD_LEVELS], *codes[CAS__PD_LEVELS];
} cas__pdix;

/* Integer element i of a 1-D integer array (codes), or -1 when it is not there. */
static int64_t cas__arr_int(cas_preview *p, const cas__pv *v, uint64_t i) {
    cas__arr a;
    int64_t at;
    uint64_t u;
    if (!v || cas__arr_open(p, v, &a) < 0 || (a.kind != 'i' && a.kind != 'u') || !a.isz || a.isz > 8 || a.ndim != 1 ||
        i >= a.shape[0] || (at = cas__arr_kept(&a, i)) < 0 || (uint64_t)at + a.isz > a.data->tlen)
        return -1;
    u = cas__load((const unsigned char *)a.data->text + at, a.isz, a.big);
    if (a.kind == 'i' && a.isz < 8 && (u >> (a.isz * 8 - 1)) & 1) return -1; /* negative: a missing value */
    return (int64_t)u;
}

/* The count of a range: |stop - start| / |step|, rounded up, in unsigned arithmetic
 * (int64_t overflows for RangeIndex(-2**63, 2**63 - 1)). */
static uint64_t cas__range_len(int64_t start, int64_t stop, int64_t step) {
    uint64_t span, by;
    if (step > 0 ? stop <= start : stop >= start) return 0;
    span = step > 0 ? (uint64_t)stop - (uint64_t)start : (uint64_t)start - (uint64_t)stop;
    by = step > 0 ? (uint64_t)step : (uint64_t)0 - (uint64_t)step;
    return (span - 1) / by + 1;
}

/* An index from _new_Index(cls, {...}) or _new_DatetimeIndex(cls, {...}). `level`:
 * a MultiIndex's level, which is never a MultiIndex itself (a pickle can make an
 * index its own level). */
static int cas__pd_index(cas_preview *p, cas__pv *ix, cas__pdix *o, int level) {
    cas__pv *cls = NULL, *d = NULL;
    cas__arr a;
    memset(o, 0, sizeof *o);
    if (ix && ix->kind == CAS__PV_PANDAS && ix->sub == CAS__PD_INDEX) cls = cas__pv_kid(ix, 0), d = cas__pv_kid(ix, 1);
    else if (ix && ix->kind == CAS__PV_CALL && cas__pv_kid(ix, 1) && cas__pv_kid(ix, 1)->kind == CAS__PV_TUPLE)
        cls = cas__pv_kid(ix->kids[1], 0), d = cas__pv_kid(ix->kids[1], 1);
    if (!d || d->kind != CAS__PV_DICT) return -1;
    o->cls = cls, o->name = cas__dict_get(d, "name");
    if (cas__pv_is_global(cls, "pandas.core.indexes.range", "RangeIndex")) {
        cas__pv *st = cas__dict_get(d, "start"), *sp = cas__dict_get(d, "stop"), *se = cas__dict_get(d, "step");
        int64_t a0 = st && st->kind == CAS__PV_INT ? st->i : 0, b0 = sp && sp->kind == CAS__PV_INT ? sp->i : 0;
        o->start = a0, o->step = se && se->kind == CAS__PV_INT && se->i ? se->i : 1;
        o->len = cas__range_len(a0, b0, o->step);
        return 0;
    }
    if (cas__pv_is_global(cls, "pandas.core.indexes.multi", "MultiIndex")) {
        if (level) return -1;
        cas__pv *lv = cas__dict_get(d, "levels"), *cd = cas__dict_get(d, "codes");
        o->name = cas__dict_get(d, "names");
        if (!lv || !cd || (lv->kind != CAS__PV_LIST && lv->kind != CAS__PV_TUPLE) || lv->nkids != cd->nkids ||
            !lv->nkids || !cd->kids[0] || cas__arr_open(p, cd->kids[0], &a) < 0 || a.ndim != 1)
            return -1;
        o->len = a.shape[0];
        for (o->nlev = 0; o->nlev < (int)lv->nkids && o->nlev < CAS__PD_LEVELS; o->nlev++) {
            cas__pdix l;
            o->lev[o->nlev] = cas__pd_index(p, lv->kids[o->nlev], &l, 1) < 0 ? NULL : l.arr;
            o->codes[o->nlev] = cd->kids[o->nlev];
        }
        return 0;
    }
    if (!(o->arr = cas__pd_ndarray(cas__dict_get(d, "data"))) || cas__arr_open(p, o->arr, &a) < 0 || a.ndim != 1)
        return -1;
    o->len = a.shape[0];
    return 0;
}

/* A Categorical column (NDArrayBacked, state (CategoricalDtype, codes, attrs)): its categories' array. */
static cas__pv *cas__pd_categories(cas_preview *p, cas__pv *v) {
    cas__pv *dt;
    cas__pdix ix;
    if (!v || v->kind != CAS__PV_PANDAS || v->sub != CAS__PD_BACKED || !v->aux || v->aux->kind != CAS__PV_TUPLE)
        return NULL;
    dt = cas__pv_kid(v->aux, 0);
    if (!dt || dt->kind != CAS__PV_OBJ ||
        !cas__pv_is_global(cas__pv_kid(dt, 0), "pandas.core.dtypes.dtypes", "CategoricalDtype") ||
        cas__pd_index(p, cas__dict_get(cas__pv_kid(dt, 2), "categories"), &ix, 1) < 0)
        return NULL;
    return ix.arr;
}

/* Renders into a small buffer instead of the output (a table's cell). */
static void cas__capture(cas_preview *p, char *buf, size_t cap, void (*fn)(cas_preview *, void *, uint64_t), void *ctx,
                         uint64_t arg) {
    size_t mark = p->olen;
    int64_t lim = p->max_output;
    int full = p->out_full, rc = p->rc;
    char msg[sizeof p->msg];
    memcpy(msg, p->msg, sizeof msg);
    /* room for the text and the marker, so that the cut is on whole characters and seen */
    p->max_output = (int64_t)(mark + (cap > sizeof CAS__PK_MARKER + 8 ? cap - sizeof CAS__PK_MARKER : 8));
    p->out_full = 0;
    fn(p, ctx, arg);
    snprintf(buf, cap, "%.*s", (int)(p->olen - mark), p->out ? p->out + mark : "");
    if (p->out_full) { /* the cell was cut: not the preview's limit */
        char *m = strstr(buf, CAS__PK_MARKER);
        if (m) strcpy(m, "...");
    }
    p->olen = mark;
    if (p->out) p->out[mark] = 0;
    p->max_output = lim, p->out_full = full;
    if (p->rc != CAS_E_NOMEM || rc != CAS_OK) { /* the cell's own limit is not the preview's; memory is */
        p->rc = rc;
        memcpy(p->msg, msg, sizeof msg);
    }
}

typedef struct cas__cellx {
    cas__arr a;
} cas__cellx;

static void cas__cell_elem(cas_preview *p, void *ctx, uint64_t flat) {
    cas__cellx *c = (cas__cellx *)ctx;
    int64_t at = cas__arr_kept(&c->a, flat);
    if (c->a.data->kind == CAS__PV_LIST && at >= 0 && (uint64_t)at < c->a.data->nkids &&
        c->a.data->kids[at]->kind == CAS__PV_STR) { /* pandas shows strings bare; 40 bytes, whole characters */
        const cas__pv *str = c->a.data->kids[at];
        size_t n = CAS__MIN(str->tlen, (size_t)40);
        while (n < str->tlen && n && ((unsigned char)str->text[n] & 0xc0) == 0x80) n--;
        cas__out_quoted(p, str->text, n, CAS__Q_BARE);
    } else cas__arr_elem(p, &c->a, flat, (int)p->max_depth - 1);
}

/* Element i of a 1-D array (an index), or (k, r) of a block's 2-D values, as a cell. */
static void cas__pd_cell(cas_preview *p, cas__pv *arr, uint64_t k, uint64_t r, char *buf, size_t cap) {
    cas__cellx c;
    uint64_t flat;
    if (!arr || cas__arr_open(p, arr, &c.a) < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    c.a.py_floats = 1;
    flat = c.a.ndim == 2 ? k * c.a.stride[0] + r * c.a.stride[1] : r * (c.a.ndim ? c.a.stride[0] : 1);
    if (c.a.ndim > 2 || (c.a.ndim == 2 && (k >= c.a.shape[0] || r >= c.a.shape[1])) ||
        (c.a.ndim == 1 && r >= c.a.shape[0])) {
        snprintf(buf, cap, "?");
        return;
    }
    cas__capture(p, buf, cap, cas__cell_elem, &c, flat);
    if (c.a.kind == 'M' && buf[0] == '\'') { /* datetimes unquoted; midnight as a date, as pandas shows them */
        size_t n = strlen(buf);
        char *z;
        if (n < 2 || buf[n - 1] != '\'') return;
        memmove(buf, buf + 1, n - 2);
        buf[n - 2] = 0;
        if ((z = strchr(buf, 'T')) != NULL) *z = ' ';
        if (z && strspn(z + 1, ":.0") == strlen(z + 1)) *z = 0;
    }
}

/* Row r of a column: its values array, or a Categorical's category at codes[r]. */
static void cas__pd_value(cas_preview *p, cas__pv *col, uint64_t k, uint64_t r, char *buf, size_t cap) {
    cas__pv *cats = cas__pd_categories(p, col);
    if (cats) {
        int64_t code = cas__arr_int(p, cas__pd_ndarray(col), r);
        if (code < 0) snprintf(buf, cap, "NaN");
        else cas__pd_cell(p, cats, 0, (uint64_t)code, buf, cap);
    } else cas__pd_cell(p, cas__pd_ndarray(col), k, r, buf, cap);
}

static void cas__pd_label(cas_preview *p, const cas__pdix *ix, uint64_t i, char *buf, size_t cap) {
    int l;
    size_t n;
    if (ix->nlev) { /* a MultiIndex: (level values) */
        snprintf(buf, cap, "(");
        for (l = 0; l < ix->nlev && (n = strlen(buf)) + 4 < cap; l++) {
            int64_t code = cas__arr_int(p, ix->codes[l], i);
            if (l) snprintf(buf + n, cap - n, ", "), n += 2;
            if (code < 0 || !ix->lev[l]) snprintf(buf + n, cap - n, code < 0 ? "NaN" : "?");
            else cas__pd_cell(p, ix->lev[l], 0, (uint64_t)code, buf + n, cap - n);
        }
        n = strlen(buf);
        snprintf(buf + n, cap - n, ")");
    } else if (!ix->arr) /* start + i * step, wrapping as numbers in two's complement do, never overflowing */
        snprintf(buf, cap, "%lld", (long long)(int64_t)((uint64_t)ix->start + i * (uint64_t)ix->step));
    else cas__pd_cell(p, ix->arr, 0, i, buf, cap);
}

/* A manager's axes and blocks (values array, placement), from either pickled form:
 * BlockManager(blocks, axes) by REDUCE, or __setstate__'s
 * (axes, values, items, {'0.14.1': {'axes': .., 'blocks': [{'values', 'mgr_locs'}]}}). */
typedef struct cas__pdmgr {
    cas__pv *axes;
    cas__pv *values[CAS__PK_KEEP_KIDS], *place[CAS__PK_KEEP_KIDS];
    int nblocks;
} cas__pdmgr;

static int cas__pd_mgr(cas__pv *m, cas__pdmgr *o) {
    uint32_t k;
    memset(o, 0, sizeof *o);
    if (m && m->kind == CAS__PV_PANDAS && m->sub == CAS__PD_MGR) {
        cas__pv *blocks = cas__pv_kid(m, 0);
        o->axes = cas__pv_kid(m, 1);
        for (k = 0; blocks && k < blocks->nkids && o->nblocks < CAS__PK_KEEP_KIDS; k++) {
            cas__pv *b = blocks->kids[k];
            if (b->kind != CAS__PV_PANDAS || b->sub != CAS__PD_BLOCK) continue;
            o->values[o->nblocks] = cas__pv_kid(b, 0), o->place[o->nblocks++] = cas__pv_kid(b, 1);
        }
        return o->axes ? 0 : -1;
    }
    if (m && m->kind == CAS__PV_OBJ && cas__pv_kid(m, 2) && m->kids[2]->kind == CAS__PV_TUPLE) {
        cas__pv *st = m->kids[2], *extra = cas__pv_kid(st, 3), *d = NULL, *bl;
        for (k = 0; extra && extra->kind == CAS__PV_DICT && k + 1 < extra->nkids; k += 2)
            if (extra->kids[k + 1]->kind == CAS__PV_DICT) d = extra->kids[k + 1];
        o->axes = d ? cas__dict_get(d, "axes") : cas__pv_kid(st, 0);
        bl = d ? cas__dict_get(d, "blocks") : NULL;
        for (k = 0; bl && k < bl->nkids && o->nblocks < CAS__PK_KEEP_KIDS; k++) {
            o->values[o->nblocks] = cas__dict_get(bl->kids[k], "values");
            o->place[o->nblocks++] = cas__dict_get(bl->kids[k], "mgr_locs");
        }
        return o->axes ? 0 : -1;
    }
    return -1;
}

/* Which block holds column j, and at which of its rows (2-D values are (columns, rows)).
 * A placement array is searched only through the values it holds: its shape may
 * claim 2**62 of them over 8 bytes. */
static int cas__pd_find(cas_preview *p, const cas__pdmgr *m, uint64_t j, uint64_t *pos) {
    int b;
    for (b = 0; b < m->nblocks; b++) {
        cas__pv *pl = m->place[b];
        if (pl && pl->kind == CAS__PV_SLICE) {
            cas__pv *a = cas__pv_kid(pl, 0), *z = cas__pv_kid(pl, 1), *st = cas__pv_kid(pl, 2);
            int64_t s0 = a && a->kind == CAS__PV_INT ? a->i : 0, s1 = z && z->kind == CAS__PV_INT ? z->i : 0;
            uint64_t sp = st && st->kind == CAS__PV_INT && st->i > 0 ? (uint64_t)st->i : 1;
            uint64_t from = (uint64_t)j - (uint64_t)s0; /* j - s0, which int64_t may not hold */
            if (j <= (uint64_t)INT64_MAX && (int64_t)j >= s0 && (int64_t)j < s1 && from % sp == 0) {
                *pos = from / sp;
                return b;
            }
        } else if (pl && pl->kind == CAS__PV_NDARRAY) { /* an int64 array of column numbers */
            cas__arr a;
            uint64_t i;
            int64_t at;
            if (cas__arr_open(p, pl, &a) < 0 || a.kind != 'i' || a.isz != 8 || a.ndim != 1) continue;
            /* 1-D: what is held is a prefix; the first element not held ends the search */
            for (i = 0; i < a.shape[0] && (at = cas__arr_kept(&a, i)) >= 0 && (uint64_t)at + 8 <= a.data->tlen; i++)
                if (cas__load((const unsigned char *)a.data->text + at, 8, a.big) == j) {
                    *pos = i;
                    return b;
                }
        }
    }
    return -1;
}

#define CAS__PD_CELL 64 /* a table cell: 36 bytes of text, then "..." */

static void cas__pd_dtype(cas_preview *p, cas__pv *col, char *dn, size_t cap) {
    cas__pv *arr = cas__pd_ndarray(col);
    if (cas__pd_categories(p, col)) snprintf(dn, cap, "category");
    else if (arr && arr->nkids) cas__dtype_name(arr->kids[0], dn, cap);
}

static void cas__render_pandas(cas_preview *p, cas__pv *v, int depth) {
    cas__pv *st = cas__pv_kid(v, 1), *mgr;
    cas__pdmgr m;
    cas__pdix cols, rows;
    int frame = v->sub == CAS__PD_FRAME;
    uint64_t nr, nc, r, j, shownr, shownc, pos[CAS__PK_KEEP_KIDS];
    int blk[CAS__PK_KEEP_KIDS]; /* where each shown column is: its block, and its row there */
    char(*cell)[CAS__PD_CELL];
    size_t w[CAS__PK_KEEP_KIDS + 1], ncell;
    if (v->sub == CAS__PD_BLOCK || v->sub == CAS__PD_MGR || v->sub == CAS__PD_INDEX || v->sub == CAS__PD_BACKED ||
        !(mgr = cas__dict_get(st, "_mgr")) || cas__pd_mgr(mgr, &m) < 0 ||
        cas__pd_index(p, cas__pv_kid(m.axes, frame ? 1 : 0), &rows, 0) < 0 ||
        (frame && cas__pd_index(p, cas__pv_kid(m.axes, 0), &cols, 0) < 0)) {
        /* a part of a frame seen alone, or a layout not understood: the generic object */
        cas__out_s(p, v->sub == CAS__PD_FRAME    ? "pandas.DataFrame"
                      : v->sub == CAS__PD_SERIES ? "pandas.Series"
                                                 : "pandas");
        cas__out_s(p, "(<state not understood>)");
        return;
    }
    if (!frame) cols.len = 1, cols.arr = NULL;
    nr = rows.len, nc = cols.len;
    shownr = CAS__MIN(nr, (uint64_t)p->max_items);
    shownc = CAS__MIN(CAS__MIN(nc, (uint64_t)p->max_items), (uint64_t)CAS__PK_KEEP_KIDS); /* w[] */
    for (j = 0; j < shownc; j++) {
        pos[j] = 0;
        blk[j] = frame ? cas__pd_find(p, &m, j, &pos[j]) : 0;
    }
    if (frame) {
        cas__out_f(p, "DataFrame(shape=(%llu, %llu), columns=[", (unsigned long long)nr, (unsigned long long)nc);
        for (j = 0; j < shownc && !p->out_full; j++) {
            char lab[CAS__PD_CELL], dn[64] = "?";
            cas__pd_label(p, &cols, j, lab, sizeof lab);
            if (blk[j] >= 0) cas__pd_dtype(p, m.values[blk[j]], dn, sizeof dn);
            cas__out_f(p, "%s%s: %s", j ? ", " : "", lab, dn);
        }
        if (nc > shownc) cas__out_f(p, ", ...<%llu more>", (unsigned long long)(nc - shownc));
        cas__out_s(p, "])");
    } else {
        cas__pv *name = cas__dict_get(st, "name");
        if (!name) name = cas__dict_get(st, "_name");
        char dn[64] = "?";
        if (m.nblocks) cas__pd_dtype(p, m.values[0], dn, sizeof dn);
        cas__out_s(p, "Series(name=");
        cas__render(p, name, depth + 1);
        cas__out_f(p, ", length=%llu, dtype=%s)", (unsigned long long)nr, dn);
    }
    if (!shownr || depth + 1 >= p->max_depth) return;
    /* the first rows as a table: labels, then one column per shown column */
    ncell = (size_t)((shownr + 1) * (shownc + 1));
    if (!(cell = (char(*)[CAS__PD_CELL])cas__calloc(&p->alloc, ncell * CAS__PD_CELL))) {
        cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        return;
    }
    for (j = 0; j < shownc; j++) {
        if (frame) cas__pd_label(p, &cols, j, cell[j + 1], CAS__PD_CELL);
    }
    for (r = 0; r < shownr; r++) {
        char *row = cell[(r + 1) * (shownc + 1)];
        cas__pd_label(p, &rows, r, row, CAS__PD_CELL);
        for (j = 0; j < shownc; j++) {
            char *c = cell[(r + 1) * (shownc + 1) + j + 1];
            if (blk[j] >= 0 && blk[j] < m.nblocks) cas__pd_value(p, m.values[blk[j]], pos[j], r, c, CAS__PD_CELL);
            else snprintf(c, CAS__PD_CELL, "?");
        }
    }
    for (j = 0; j <= shownc; j++) {
        w[j] = 0;
        for (r = 0; r <= shownr; r++) w[j] = CAS__MAX64(w[j], strlen(cell[r * (shownc + 1) + j]));
    }
    for (r = frame ? 0 : 1; r <= shownr && !p->out_full; r++) { /* a series has no header row */
        cas__out_s(p, "\n");
        for (j = 0; j <= shownc; j++) {
            const char *c = cell[r * (shownc + 1) + j];
            cas__out_f(p, j ? "  %*s" : "%-*s", (int)w[j], c);
        }
        if (nc > shownc) cas__out_s(p, "  ...");
    }
    if (nr > shownr) cas__out_f(p, "\n...<%llu more rows>", (unsigned long long)(nr - shownr));
    cas__free(&p->alloc, cell);
}
