/* pickle_gen.h - a structure-aware pickle generator for fuzz_pickle (tests only).
 *
 * Random bytes seldom make a pickle that numpy's and pandas' recognisers take
 * apart: a DataFrame is a NEWOBJ, a BUILD of a dict holding a BlockManager made
 * by REDUCE from blocks made by REDUCE from ndarrays made by REDUCE and BUILD from
 * a dtype made by REDUCE and BUILD... This reads the fuzz input as a program that
 * builds such values, well formed, with the lies an attacker tells:
 *
 *   - shapes and lengths that disagree (2**62 elements over 8 bytes; data longer
 *     or shorter than shape x itemsize; 32 axes; dtypes with odd item sizes);
 *   - integers at their limits (RangeIndex(-2**63, 2**63 - 1), steps of -2**63);
 *   - memo references: shared values, forward references to containers filled in
 *     later (SETITEMS / APPENDS after use: an index whose levels hold it, a frame
 *     whose manager holds the frame), BUILD states that hold their own object;
 *   - memo keys dense (as Python writes them), sparse, colliding or reused;
 *   - every pickled form the previewer knows (both BlockManager forms, Series,
 *     Index / RangeIndex / MultiIndex / DatetimeIndex, DatetimeArray and
 *     Categorical over NDArrayBacked, numpy 1 and 2 module paths, protocol 2's
 *     _codecs.encode data and protocol 5's _frombuffer) next to generic calls.
 *
 * Every choice takes a byte of the program (0 when it runs out), so libFuzzer's
 * mutations of the program are mutations of the structure.
 *
 *   size_t n = pg_generate(program, len, &out);   // out.p: a pickle of n bytes
 */
#ifndef CAS_PICKLE_GEN_H
#define CAS_PICKLE_GEN_H

#define PG_VALUES 160 /* values per pickle, at most */
#define PG_DEPTH 10
#define PG_OPEN 8
#define PG_MAX_OUT ((size_t)48 << 10) /* generation winds down past this */

typedef struct pg {
    fuzz_in in;
    fuzz_buf out;
    uint32_t keys[32]; /* memo keys put so far (a ring) */
    unsigned nkeys;
    uint32_t next_key;
    int budget, proto;
    struct {
        uint32_t key;
        int dict;
    } open[PG_OPEN]; /* containers memoised empty, to be filled at the end (cycles) */
    int nopen;
} pg;

static uint8_t pg_u8(pg *g) { return fz_u8(&g->in); }
static unsigned pg_pick(pg *g, unsigned n) { return pg_u8(g) % n; }
static void pg_op(pg *g, unsigned op) { fb_byte(&g->out, op); }
static void pg_raw(pg *g, const void *p, size_t n) { fb_put(&g->out, p, n); }

static const int64_t pg_limits[] = {0, 1, -1, 2, 7, 255, 256, 65535, 2147483647LL, -2147483647LL - 1,
                                    (int64_t)1 << 31, (int64_t)1 << 32, (int64_t)1 << 62, INT64_MAX, INT64_MIN,
                                    INT64_MIN + 1, -((int64_t)1 << 62), 1000000007};

static void pg_int(pg *g, int64_t v) {
    if (v >= 0 && v < 256) {
        pg_op(g, 'K'), fb_byte(&g->out, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        pg_op(g, 'J'), fb_le32(&g->out, (uint32_t)(int32_t)v);
    } else { /* LONG1, 8 bytes two's complement (pickle trims it; the previewer takes either) */
        uint64_t u = (uint64_t)v;
        int k;
        pg_op(g, 0x8a), fb_byte(&g->out, 8);
        for (k = 0; k < 8; k++) fb_byte(&g->out, (unsigned)(u >> (8 * k)) & 0xff);
    }
}

static void pg_some_int(pg *g) {
    uint8_t c = pg_u8(g);
    if (c < 128) pg_int(g, c % 12);
    else pg_int(g, pg_limits[c % (sizeof pg_limits / sizeof *pg_limits)]);
}

static void pg_str_n(pg *g, const char *s, size_t n) {
    if (n < 256 && g->proto >= 4) pg_op(g, 0x8c), fb_byte(&g->out, (unsigned)n);
    else pg_op(g, 'X'), fb_le32(&g->out, (uint32_t)n);
    pg_raw(g, s, n);
}

static void pg_str(pg *g, const char *s) { pg_str_n(g, s, strlen(s)); }

static void pg_bytes(pg *g, const void *p, size_t n) {
    if (n < 256) pg_op(g, 'C'), fb_byte(&g->out, (unsigned)n);
    else pg_op(g, 'B'), fb_le32(&g->out, (uint32_t)n);
    pg_raw(g, p, n);
}

/* n bytes of the program as data (zeros past its end), as a BINBYTES. */
static void pg_data(pg *g, size_t n) {
    const uint8_t *p;
    size_t k = fz_take(&g->in, n, &p);
    if (n < 256) pg_op(g, 'C'), fb_byte(&g->out, (unsigned)n);
    else pg_op(g, 'B'), fb_le32(&g->out, (uint32_t)n);
    pg_raw(g, p, k);
    while (k++ < n) fb_byte(&g->out, k & 0xff);
}

static void pg_global(pg *g, const char *mod, const char *name) {
    if (g->proto >= 4 && pg_u8(g) & 1) { /* STACK_GLOBAL, as protocol 4 writes */
        pg_str(g, mod), pg_str(g, name), pg_op(g, 0x93);
        return;
    }
    pg_op(g, 'c'), pg_raw(g, mod, strlen(mod)), pg_op(g, '\n'), pg_raw(g, name, strlen(name)), pg_op(g, '\n');
}

/* numpy 1's module path or numpy 2's */
static void pg_np(pg *g, const char *sub, const char *name) {
    char m[64];
    snprintf(m, sizeof m, "numpy.%s.%s", pg_u8(g) & 1 ? "_core" : "core", sub);
    pg_global(g, m, name);
}

static const char *const pg_names[] = {"data", "name", "levels", "codes", "names", "start", "stop", "step",
                                       "_mgr", "categories", "ordered", "axes", "blocks", "values", "mgr_locs",
                                       "0.14.1", "_typ", "attrs", "freq", "tz", "latin1", "F", "C", "<", "ns", "x",
                                       "\xff\xfe", "caf\xc3\xa9", ""};

static void pg_name(pg *g) { pg_str(g, pg_names[pg_pick(g, sizeof pg_names / sizeof *pg_names)]); }

/* A memo PUT of the value on top: dense keys mostly, sometimes the keys a fixed hash
 * would crowd, the largest, or one already used. Returns the key. */
static uint32_t pg_put(pg *g) {
    uint8_t c = pg_u8(g);
    uint32_t k;
    if (c < 200 || !g->nkeys) k = g->next_key++;
    else if (c < 220) k = (uint32_t)(c - 200) << 19;
    else if (c < 235) k = 0xffffffffu - (c - 220);
    else k = g->keys[c % (g->nkeys < 32 ? g->nkeys : 32)];
    if (g->proto >= 4 && k == g->next_key - 1 && k == (uint32_t)g->nkeys && !(c & 1)) pg_op(g, 0x94); /* MEMOIZE */
    else if (k < 256) pg_op(g, 'q'), fb_byte(&g->out, k);
    else pg_op(g, 'r'), fb_le32(&g->out, k);
    g->keys[g->nkeys++ % 32] = k;
    return k;
}

static void pg_get(pg *g, uint32_t k) {
    if (k < 256) pg_op(g, 'h'), fb_byte(&g->out, k);
    else pg_op(g, 'j'), fb_le32(&g->out, k);
}

static void pg_value(pg *g, int depth);

/* A tuple of n values the callback pushes. */
#define PG_TUPLE(g, body)      \
    do {                       \
        pg_op(g, '(');         \
        body;                  \
        pg_op(g, 't');         \
    } while (0)

static const char *const pg_descrs[] = {"<f8", "<i8", "<u4", "|b1", "<c16", "<M8[ns]", "<m8[s]", "<U5", "|S3", "|O",
                                        "|V16", ">f4", "<f2", "<i2", "|u1", "<M8[D]", "<c8", ">i8", "<U1", "<M8"};

/* numpy.dtype(descr) and its BUILD state; returns the item size (0: objects). */
static size_t pg_dtype(pg *g, const char **descr_out) {
    const char *d = pg_descrs[pg_pick(g, sizeof pg_descrs / sizeof *pg_descrs)];
    uint8_t c = pg_u8(g);
    size_t isz = 0;
    const char *s = d + 2; /* past the byte order and the kind */
    for (; *s >= '0' && *s <= '9'; s++) isz = isz * 10 + (size_t)(*s - '0');
    if (d[1] == 'U') isz *= 4;
    if (d[1] == 'O') isz = 0;
    if (descr_out) *descr_out = d;
    pg_global(g, "numpy", "dtype");
    PG_TUPLE(g, (pg_str(g, d + (c & 1)), pg_op(g, 0x89), pg_op(g, 0x88)));
    pg_op(g, 'R');
    if (c & 2) pg_put(g);
    /* (3, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]) */
    pg_op(g, '(');
    pg_int(g, 3), pg_str(g, d[0] == '>' ? ">" : d[0] == '|' ? "|" : "<"), pg_op(g, 'N');
    pg_op(g, 'N'), pg_op(g, 'N');
    if (c & 4) pg_some_int(g); /* elsize: structured dtypes take theirs from here */
    else pg_int(g, d[1] == 'V' ? 16 : -1);
    pg_int(g, -1), pg_int(g, 0);
    if (d[1] == 'M' || d[1] == 'm' || (c & 8)) { /* datetime64's unit: (b'ns', num, den, events) */
        static const char *const units[] = {"ns", "us", "ms", "s", "D", "W", "\xff", ""};
        const char *u = units[(c >> 4) & 7];
        if (c & 0x80) pg_op(g, '}');
        PG_TUPLE(g, (pg_bytes(g, u, strlen(u)), pg_some_int(g), pg_int(g, 1), pg_int(g, 1)));
        if (c & 0x80) pg_op(g, 0x86);
    }
    pg_op(g, 't'), pg_op(g, 'b');
    return isz;
}

/* An ndarray: _reconstruct + BUILD (protocols 2-4, data raw or through
 * _codecs.encode), or protocol 5's _frombuffer; the shape true or lying. `axes`:
 * what the place it goes to wants (1 for an index, 2 for a block), mostly given. */
static void pg_ndarray(pg *g, int depth, int axes) {
    uint64_t shape[32], total = 1;
    uint8_t c = pg_u8(g), lie = pg_u8(g);
    unsigned ndim = axes && !(lie & 0x40) ? (unsigned)axes : pg_pick(g, 4), k;
    const char *descr;
    size_t isz, len;
    if (c == 0xff) ndim = 32;
    for (k = 0; k < ndim; k++) {
        uint8_t s = pg_u8(g);
        shape[k] = s < 200 ? s % 5 : s < 230 ? (uint64_t)1 << 62 : s < 250 ? 2147483648u : 100000;
        total = shape[k] && total > UINT64_MAX / shape[k] ? UINT64_MAX : total * shape[k];
    }
    if (c & 1) { /* protocol 5: _frombuffer(buffer, dtype, shape, order) */
        pg_np(g, "numeric", "_frombuffer");
        pg_op(g, '(');
        pg_data(g, lie % 64);
        pg_dtype(g, NULL);
        pg_op(g, '(');
        for (k = 0; k < ndim; k++) pg_int(g, (int64_t)shape[k]);
        pg_op(g, 't');
        pg_str(g, c & 2 ? "F" : "C");
        pg_op(g, 't'), pg_op(g, 'R');
        return;
    }
    pg_np(g, "multiarray", "_reconstruct");
    PG_TUPLE(g, (pg_global(g, "numpy", "ndarray"), pg_op(g, '('), pg_int(g, 0), pg_op(g, 't'), pg_bytes(g, "b", 1)));
    pg_op(g, 'R');
    if (c & 2) pg_put(g);
    pg_op(g, '(');
    pg_int(g, 1);
    pg_op(g, '(');
    for (k = 0; k < ndim; k++) pg_int(g, (int64_t)shape[k]);
    pg_op(g, 't');
    isz = pg_dtype(g, &descr);
    pg_op(g, c & 4 ? 0x88 : 0x89); /* Fortran order */
    if (!isz) { /* objects: a list of values */
        unsigned n = lie % 6;
        pg_op(g, ']'), pg_op(g, '(');
        for (k = 0; k < n; k++) pg_value(g, depth + 1);
        pg_op(g, 'e');
    } else {
        len = total <= 4096 / isz && !(lie & 0x80) ? (size_t)(total * isz) : lie % 40; /* true, or a lie */
        if (c & 8) { /* protocol 2: _codecs.encode(str of the bytes as code points, 'latin1') */
            size_t i;
            const uint8_t *p;
            size_t got = fz_take(&g->in, len, &p);
            fuzz_buf s = {NULL, 0, 0};
            for (i = 0; i < len; i++) {
                unsigned b = i < got ? p[i] : 0;
                if (b < 0x80) fb_byte(&s, b);
                else fb_byte(&s, 0xc0 | b >> 6), fb_byte(&s, 0x80 | (b & 0x3f));
            }
            pg_global(g, "_codecs", "encode");
            PG_TUPLE(g, (pg_str_n(g, s.p ? (const char *)s.p : "", s.len), pg_str(g, "latin1")));
            pg_op(g, 'R');
            fb_free(&s);
        } else {
            pg_data(g, len);
        }
    }
    pg_op(g, 't'), pg_op(g, 'b');
}

static void pg_index(pg *g, int depth);

/* Index / RangeIndex / MultiIndex / DatetimeIndex, by _new_Index(cls, {...}). */
static void pg_index(pg *g, int depth) {
    uint8_t c = pg_u8(g), late = pg_u8(g);
    unsigned kind = c % 4, k, n;
    if (kind == 3) pg_global(g, "pandas.core.indexes.datetimes", "_new_DatetimeIndex");
    else pg_global(g, "pandas.core.indexes.base", "_new_Index");
    pg_op(g, '(');
    if (kind == 0) pg_global(g, "pandas.core.indexes.base", "Index");
    else if (kind == 1) pg_global(g, "pandas.core.indexes.range", "RangeIndex");
    else if (kind == 2) pg_global(g, "pandas.core.indexes.multi", "MultiIndex");
    else pg_global(g, "pandas.core.indexes.datetimes", "DatetimeIndex");
    if (late >= 0xf0 && g->nopen < PG_OPEN) { /* its dict now, empty; its items at the end (it may hold the index) */
        pg_op(g, '}');
        g->open[g->nopen].key = pg_put(g), g->open[g->nopen++].dict = 1;
    } else if (kind == 1) {
        pg_op(g, '}'), pg_op(g, '(');
        pg_str(g, "name"), pg_op(g, 'N');
        pg_str(g, "start"), pg_some_int(g);
        pg_str(g, "stop"), pg_some_int(g);
        pg_str(g, "step"), pg_some_int(g);
        pg_op(g, 'u');
    } else if (kind == 2) {
        n = 1 + pg_pick(g, 3);
        pg_op(g, '}'), pg_op(g, '(');
        pg_str(g, "levels"), pg_op(g, ']'), pg_op(g, '(');
        for (k = 0; k < n; k++) depth < 3 && g->out.len < PG_MAX_OUT ? pg_index(g, depth + 1) : pg_ndarray(g, depth + 1, 1);
        pg_op(g, 'e');
        pg_str(g, "codes"), pg_op(g, ']'), pg_op(g, '(');
        for (k = 0; k < n + (late == 0xe0); k++) pg_ndarray(g, depth + 1, 1); /* sometimes one code array too many */
        pg_op(g, 'e');
        pg_str(g, "names"), pg_op(g, ']'), pg_op(g, '(');
        for (k = 0; k < n; k++) pg_op(g, 'N');
        pg_op(g, 'e');
        pg_op(g, 'u');
    } else {
        pg_op(g, '}'), pg_op(g, '(');
        pg_str(g, "data");
        if (c & 0x20) pg_value(g, depth + 1);
        else pg_ndarray(g, depth + 1, 1);
        pg_str(g, "name"), pg_value(g, depth + 1);
        pg_op(g, 'u');
    }
    pg_op(g, 't'), pg_op(g, 'R');
    if (c & 0x40) pg_put(g); /* what a late fill may name: an index that holds itself */
}

/* DatetimeArray or Categorical: NDArrayBacked, its BUILD state (dtype, ndarray, attrs),
 * which may hold the array itself. */
static void pg_backed(pg *g, int depth) {
    uint8_t c = pg_u8(g);
    uint32_t self;
    int cat = c & 1;
    pg_global(g, "pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked");
    pg_op(g, '(');
    pg_global(g, "pandas.core.arrays", cat ? "Categorical" : "DatetimeArray");
    pg_int(g, 0), pg_op(g, 'N');
    pg_op(g, 't'), pg_op(g, 'R');
    self = pg_put(g);
    pg_op(g, '(');
    if (cat) { /* CategoricalDtype(categories=Index, ordered) */
        pg_global(g, "pandas.core.dtypes.dtypes", "CategoricalDtype");
        pg_op(g, ')'), pg_op(g, 0x81);
        pg_op(g, '}'), pg_op(g, '(');
        pg_str(g, "categories");
        if (c & 2) pg_get(g, self);
        else pg_index(g, depth + 1);
        pg_str(g, "ordered"), pg_op(g, 0x89);
        pg_op(g, 'u'), pg_op(g, 'b');
    } else {
        pg_dtype(g, NULL);
    }
    if (c & 4) pg_get(g, self);
    else pg_ndarray(g, depth + 1, 1);
    pg_op(g, '}');
    pg_op(g, 't'), pg_op(g, 'b');
}

static void pg_column_values(pg *g, int depth) {
    if (pg_u8(g) & 3) pg_ndarray(g, depth + 1, 2);
    else pg_backed(g, depth + 1);
}

/* A block: _unpickle_block(values, placement (a slice or an int64 array), ndim). */
static void pg_block(pg *g, int depth) {
    uint8_t c = pg_u8(g);
    pg_global(g, c & 1 ? "pandas._libs.internals" : "pandas.core.internals.blocks", "_unpickle_block");
    pg_op(g, '(');
    pg_column_values(g, depth);
    if (c & 2) {
        pg_ndarray(g, depth + 1, 1);
    } else {
        pg_global(g, "builtins", "slice");
        PG_TUPLE(g, (pg_some_int(g), pg_some_int(g), pg_some_int(g)));
        pg_op(g, 'R');
    }
    pg_int(g, 2);
    pg_op(g, 't'), pg_op(g, 'R');
}

/* A manager: BlockManager(blocks, axes) by REDUCE, or the older __setstate__ form
 * (axes, values, items, {'0.14.1': {'axes': [...], 'blocks': [{'values', 'mgr_locs'}]}}). */
static void pg_manager(pg *g, int depth, int single) {
    uint8_t c = pg_u8(g);
    unsigned nb = 1 + pg_pick(g, 3), na = single ? 1 : 2, k;
    if (c & 1) {
        pg_global(g, "pandas.core.internals.managers", single ? "SingleBlockManager" : "BlockManager");
        pg_op(g, '('), pg_op(g, '(');
        for (k = 0; k < nb; k++) pg_block(g, depth + 1);
        pg_op(g, 't');
        pg_op(g, ']'), pg_op(g, '(');
        for (k = 0; k < na; k++) pg_index(g, depth + 1);
        pg_op(g, 'e');
        pg_op(g, 't'), pg_op(g, 'R');
        return;
    }
    pg_global(g, "pandas.core.internals.managers", "BlockManager");
    pg_op(g, ')'), pg_op(g, 0x81);
    pg_op(g, '('); /* the state tuple */
    pg_op(g, ']'), pg_op(g, ']'), pg_op(g, ']');
    pg_op(g, '}'), pg_op(g, '(');
    pg_str(g, "0.14.1");
    pg_op(g, '}'), pg_op(g, '(');
    pg_str(g, "axes"), pg_op(g, ']'), pg_op(g, '(');
    for (k = 0; k < na; k++) pg_index(g, depth + 1);
    pg_op(g, 'e');
    pg_str(g, "blocks"), pg_op(g, ']'), pg_op(g, '(');
    for (k = 0; k < nb; k++) {
        pg_op(g, '}'), pg_op(g, '(');
        pg_str(g, "values"), pg_column_values(g, depth);
        pg_str(g, "mgr_locs");
        if (pg_u8(g) & 1) {
            pg_ndarray(g, depth + 1, 1);
        } else {
            pg_global(g, "builtins", "slice");
            PG_TUPLE(g, (pg_some_int(g), pg_some_int(g), pg_int(g, 1)));
            pg_op(g, 'R');
        }
        pg_op(g, 'u');
    }
    pg_op(g, 'e');
    pg_op(g, 'u'), pg_op(g, 'u');
    pg_op(g, 't'), pg_op(g, 'b');
}

/* DataFrame or Series: NEWOBJ, then BUILD of {'_mgr': manager, ...}; the frame may be memoised
 * and its state dict filled at the end (a manager that holds its frame). */
static void pg_frame(pg *g, int depth, int series) {
    uint8_t c = pg_u8(g);
    pg_global(g, series ? "pandas.core.series" : "pandas.core.frame", series ? "Series" : "DataFrame");
    pg_op(g, ')'), pg_op(g, 0x81);
    if (c & 1) pg_put(g);
    pg_op(g, '}'), pg_op(g, '(');
    pg_str(g, "_mgr"), pg_manager(g, depth + 1, series && !(c & 2));
    if (series) pg_str(g, "name"), pg_value(g, depth + 1);
    if (c & 4) pg_str(g, "attrs"), pg_op(g, '}');
    pg_op(g, 'u'), pg_op(g, 'b');
}

static const char *const pg_globals[][2] = {
    {"datetime", "datetime"}, {"datetime", "date"}, {"datetime", "time"}, {"datetime", "timedelta"},
    {"decimal", "Decimal"}, {"builtins", "set"}, {"builtins", "frozenset"}, {"builtins", "bytearray"},
    {"builtins", "complex"}, {"builtins", "slice"}, {"collections", "OrderedDict"}, {"collections", "defaultdict"},
    {"copyreg", "_reconstructor"}, {"_codecs", "encode"}, {"builtins", "bytes"}, {"numpy", "dtype"},
    {"__main__", "Thing"}, {"os", "system"}, {"builtins", "eval"}, {"numpy.core.multiarray", "scalar"},
};

/* Any value; containers, calls and references as often as scalars. */
static void pg_value(pg *g, int depth) {
    uint8_t c;
    unsigned k, n;
    if (--g->budget < 0 || depth > PG_DEPTH || !g->in.n || g->out.len > PG_MAX_OUT) {
        pg_op(g, 'N');
        return;
    }
    c = pg_u8(g);
    switch (c % 20) {
    case 0: pg_op(g, c & 0x20 ? 'N' : c & 0x40 ? 0x88 : 0x89); break;
    case 1: pg_some_int(g); break;
    case 2: { /* BINFLOAT: 8 bytes of the program */
        const uint8_t *p;
        size_t got = fz_take(&g->in, 8, &p);
        pg_op(g, 'G'), pg_raw(g, p, got);
        for (k = (unsigned)got; k < 8; k++) fb_byte(&g->out, 0);
        break;
    }
    case 3: pg_name(g); break;
    case 4: pg_data(g, pg_pick(g, 48)); break;
    case 5: /* a tuple */
        n = pg_pick(g, 5);
        if (n >= 1 && n <= 3) {
            for (k = 0; k < n; k++) pg_value(g, depth + 1);
            pg_op(g, 0x84 + n);
        } else {
            pg_op(g, '(');
            for (k = 0; k < n; k++) pg_value(g, depth + 1);
            pg_op(g, 't');
        }
        break;
    case 6:   /* a list, memoised before its items: they may name it */
    case 7: { /* a dict, the same */
        int dict = c % 20 == 7;
        pg_op(g, dict ? '}' : ']');
        if (c & 0x20) pg_put(g);
        n = pg_pick(g, 5);
        if (n) {
            pg_op(g, '(');
            for (k = 0; k < n; k++) {
                if (dict) pg_value(g, depth + 1);
                pg_value(g, depth + 1);
            }
            pg_op(g, dict ? 'u' : 'e');
        }
        break;
    }
    case 8: /* a reference to something memoised (shared, or the container being built) */
        if (g->nkeys) pg_get(g, g->keys[pg_u8(g) % (g->nkeys < 32 ? g->nkeys : 32)]);
        else pg_op(g, 'N');
        break;
    case 9:
    case 10: pg_ndarray(g, depth, 0); break;
    case 11: pg_dtype(g, NULL); break;
    case 12: pg_index(g, depth); break;
    case 13:
    case 14: pg_frame(g, depth, 0); break;
    case 15: pg_frame(g, depth, 1); break;
    case 16: pg_backed(g, depth); break;
    case 17:   /* a call of a known or unknown global, described, never made */
    case 18: { /* NEWOBJ and a BUILD whose state may hold the object */
        const char *const *gl = pg_globals[pg_pick(g, sizeof pg_globals / sizeof *pg_globals)];
        pg_global(g, gl[0], gl[1]);
        n = pg_pick(g, 4);
        pg_op(g, '(');
        if (!strcmp(gl[0], "datetime") && n) pg_data(g, 4 + pg_pick(g, 8)), n--; /* its packed state */
        for (k = 0; k < n; k++) pg_value(g, depth + 1);
        pg_op(g, 't');
        pg_op(g, c % 20 == 17 ? 'R' : 0x81);
        if (c & 0x40) {
            uint32_t self = pg_put(g);
            if (c & 0x80) pg_get(g, self);
            else pg_value(g, depth + 1);
            pg_op(g, 'b');
        }
        break;
    }
    default: /* a dict memoised now and filled at the very end: it may come to hold anything */
        if (g->nopen < PG_OPEN) {
            pg_op(g, c & 1 ? '}' : ']');
            g->open[g->nopen].key = pg_put(g), g->open[g->nopen++].dict = c & 1;
        } else {
            pg_op(g, 'N');
        }
    }
}

/* The pickle a program describes: PROTO, a value, the late fills, STOP. */
static size_t pg_generate(const uint8_t *prog, size_t n, fuzz_buf *out) {
    pg g;
    int k;
    memset(&g, 0, sizeof g);
    g.in.p = prog, g.in.n = n;
    g.budget = PG_VALUES;
    g.proto = 2 + pg_pick(&g, 4);
    pg_op(&g, 0x80), fb_byte(&g.out, (unsigned)g.proto);
    pg_value(&g, 0);
    for (k = 0; k < g.nopen; k++) { /* fill what was left open: references to anything, itself included */
        unsigned i, items = 1 + pg_pick(&g, 3);
        pg_get(&g, g.open[k].key);
        pg_op(&g, '(');
        for (i = 0; i < items; i++) {
            if (g.open[k].dict) pg_name(&g);
            if (pg_u8(&g) & 1 && g.nkeys) pg_get(&g, g.keys[pg_u8(&g) % (g.nkeys < 32 ? g.nkeys : 32)]);
            else g.budget = g.budget < 4 ? 4 : g.budget, pg_value(&g, PG_DEPTH - 2);
        }
        pg_op(&g, g.open[k].dict ? 'u' : 'e');
        pg_op(&g, '0');
    }
    pg_op(&g, '.');
    *out = g.out;
    return g.out.len;
}

#endif /* CAS_PICKLE_GEN_H */
