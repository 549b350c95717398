/* ---- values ------------------------------------------------------------------ */

enum {
    CAS__PV_NONE = 1,
    CAS__PV_BOOL,
    CAS__PV_INT,
    CAS__PV_BIGINT,
    CAS__PV_FLOAT,
    CAS__PV_COMPLEX,
    CAS__PV_STR,
    CAS__PV_BYTES,
    CAS__PV_BYTEARRAY,
    CAS__PV_TUPLE,
    CAS__PV_LIST,
    CAS__PV_DICT,
    CAS__PV_SET,
    CAS__PV_FROZENSET,
    CAS__PV_GLOBAL,
    CAS__PV_CALL,
    CAS__PV_OBJ,
    CAS__PV_MARK_,
    CAS__PV_OPAQUE,
    CAS__PV_SLICE,
    CAS__PV_DATETIME,
    CAS__PV_DECIMAL,
    CAS__PV_NDARRAY,
    CAS__PV_DTYPE,
    CAS__PV_NPSCALAR,
    CAS__PV_PANDAS
};

/* flags */
#define CAS__PVF_CUT 1    /* text holds only the first bytes of the value */
#define CAS__PVF_BUSY 2   /* being rendered (a cycle shows as [...]) */
#define CAS__PVF_SHOWN 4  /* rendered once; later occurrences are back-references */
#define CAS__PVF_LATIN1 8 /* STR that turned out to be latin-1 bytes (_codecs.encode) */
#define CAS__PVF_EARLY 16 /* ndarray whose reading stopped after its first values */

/* dict flavours (sub) */
#define CAS__DICT_PLAIN 0
#define CAS__DICT_ORDERED 1
#define CAS__DICT_DEFAULT 2

typedef struct cas__pv cas__pv;
struct cas__pv {
    uint8_t kind, flags, sub;
    uint32_t refs;
    uint32_t seen, label; /* rendering: visits in the shown tree, and the #N of a shared value */
    int64_t i;            /* INT, BOOL; ndarray: fortran order */
    double f, f2;         /* FLOAT, COMPLEX */
    char *text;           /* kept bytes: STR (UTF-8), BYTES, BIGINT digits, GLOBAL "module\nname", ... */
    size_t tlen;
    uint64_t full;  /* the value's whole length (bytes of STR/BYTES, items of containers) */
    cas__pv **kids; /* kept children (containers: the first items; dicts: key, value pairs) */
    uint32_t nkids, kcap;
    cas__pv *aux;         /* one more child: a defaultdict's factory, a datetime's tzinfo */
    cas__pv *prev, *next; /* every live value, for the final sweep (cycles never reach 0 refs) */
};

#define CAS__PK_KEEP_TEXT 256                 /* bytes of a str/bytes kept for display */
#define CAS__PK_KEEP_KIDS 32                  /* children a container keeps at least (more when MAX_ITEMS asks) */
#define CAS__PK_KEEP_ARRAY ((size_t)64 << 10) /* bytes of array data kept (windows) */
#define CAS__PK_LINE_MAX ((size_t)1 << 16)    /* a protocol-0 text line */
#define CAS__MAX64(a, b) ((a) > (b) ? (a) : (b))
