/* ---- parameters and rows: one row type, one lookup, one check ------------- */

/* Who takes a parameter. The layer that numbers a parameter lists its row, in a
 * table of cas__param_row, whatever the object: codecs, writers, readers and stores
 * here and in cas.h, object-store backends in cas_cloud.h, previews in
 * cas_pickle.h. One row type, one lookup (cas__param_find), one check
 * (cas__param_check). */
#define CAS__FOR_CODEC 1
#define CAS__FOR_WRITER 2
#define CAS__FOR_READER 4
#define CAS__FOR_STORE 8
#define CAS__FOR_BACKEND 16
#define CAS__FOR_PREVIEW 32

typedef struct cas__param_row {
    int id;
    unsigned who;            /* CAS__FOR_* */
    int64_t lo, hi;          /* outside: CAS_E_ARG */
    int (*built)(int64_t v); /* nullable: CAS_OK, or why an in-bounds value cannot be had here */
    int64_t dflt;            /* where the owner keeps values by row: a new object's value */
    const char *env;         /* where that default may come from instead (object stores), or NULL */
    int64_t env_scale;       /* the variable's unit in the parameter's (seconds for ms: 1000) */
} cas__param_row;
#define CAS__PARAM(id, who, lo, hi, built) \
    { id, who, lo, hi, built, 0, NULL, 0 }
#define CAS__PARAM_DEFAULT(id, who, lo, hi, dflt) \
    { id, who, lo, hi, NULL, dflt, NULL, 0 }
#define CAS__PARAM_ENV(id, who, lo, hi, dflt, env, scale) \
    { id, who, lo, hi, NULL, dflt, env, scale }

/* The row whose first member, an int key, is key: every table here starts so. */
static const void *cas__row_find(const void *table, size_t rows, size_t size, int key) {
    const char *p = (const char *)table;
    size_t i;
    for (i = 0; i < rows; i++, p += size)
        if (*(const int *)(const void *)p == key) return p;
    return NULL;
}

static const cas__param_row *cas__param_find(const cas__param_row *t, size_t n, int id) {
    return (const cas__param_row *)cas__row_find(t, n, sizeof *t, id);
}
#define CAS__PARAM_FIND(table, id) cas__param_find(table, sizeof table / sizeof table[0], id)

/* The one check: CAS_E_ARG for a parameter `who` does not take or a value out of
 * bounds, CAS_E_UNSUPPORTED for one this build lacks, else CAS_OK. */
static int cas__param_check(const cas__param_row *row, unsigned who, int64_t v) {
    if (!row || !(row->who & who) || v < row->lo || v > row->hi) return CAS_E_ARG;
    return row->built ? row->built(v) : CAS_OK;
}
