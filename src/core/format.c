/* ---- formats and the sidecar --------------------------------------------- */

/* One row per blob format: everything the reader, the writer and the store ask
 * of a format. A test build may append rows with CAS_EXTRA_FORMATS, in this order. */
typedef struct cas__format_row {
    int format;       /* CAS_FORMAT_* */
    const char *name; /* cas_format_name() */
    int codec;        /* what its bytes are in */
    int raw;          /* the sidecar's cas_raw */
    int64_t version;  /* the sidecar's cas_version */
    const char *meta; /* the sidecar byte for byte as Metaflow's json.dumps writes it; NULL = none */
    int writable;     /* put may write it (and migrate, unless raw) */
    int reads_as;     /* a blob in this format is already in that one (legacy is v1 without its sidecar) */
    const char *says; /* what the sidecar (or its absence) promised, for messages */
    int lost;         /* without a sidecar: a mismatch may mean a lost one */
} cas__format_row;

static const cas__format_row cas__formats[] = {
    {CAS_FORMAT_V1, "v1", CAS_CODEC_GZIP, 0, 1, "{\"cas_raw\": false, \"cas_version\": 1}", 1, CAS_FORMAT_V1,
     "metadata says cas_version 1 (gzip)", 0},
    {CAS_FORMAT_V2, "v2", CAS_CODEC_LZ4, 0, 2, "{\"cas_raw\": false, \"cas_version\": 2}", 1, CAS_FORMAT_V2,
     "metadata says cas_version 2 (LZ4 frame)", 0},
    {CAS_FORMAT_RAW, "raw", CAS_CODEC_RAW, 1, 1, "{\"cas_raw\": true, \"cas_version\": 1}", 1, CAS_FORMAT_RAW,
     "metadata says cas_raw", 0},
    {CAS_FORMAT_LEGACY, "legacy", CAS_CODEC_GZIP, 0, 0, NULL, 0, CAS_FORMAT_V1,
     "no metadata, so legacy gzip was assumed,", 1},
#ifdef CAS_EXTRA_FORMATS
    CAS_EXTRA_FORMATS
#endif
};
#define CAS__FORMAT_ROWS (sizeof cas__formats / sizeof cas__formats[0])

static const cas__format_row *cas__format_find(int format) {
    return (const cas__format_row *)cas__row_find(cas__formats, CAS__FORMAT_ROWS, sizeof cas__formats[0], format);
}

/* CAS_OK when put may write the format in this build; CAS_E_ARG or CAS_E_UNSUPPORTED. */
static int cas__format_writable(int64_t format) {
    const cas__format_row *f = format > 0 && format <= INT_MAX ? cas__format_find((int)format) : NULL;
    if (!f || !f->writable) return CAS_E_ARG;
    return cas_codec_available(f->codec) ? CAS_OK : CAS_E_UNSUPPORTED;
}

CASDEF const char *cas_format_name(int format) {
    const cas__format_row *f = cas__format_find(format);
    return f ? f->name : "?";
}

CASDEF int cas_format_codec(int format) {
    const cas__format_row *f = cas__format_find(format);
    return f ? f->codec : 0;
}

CASDEF int cas_meta_json(int format, char *buf, size_t cap, size_t *len) {
    const cas__format_row *f = cas__format_find(format);
    size_t l;
    if (len) *len = 0;
    if (!f || !f->meta) return CAS_E_ARG;
    l = strlen(f->meta);
    if (!buf || cap <= l) return CAS_NEED_OUTPUT;
    memcpy(buf, f->meta, l + 1);
    if (len) *len = l;
    return CAS_OK;
}

/* Metaflow's read rules; *vtok gets the version token for messages. */
static int cas__meta_rules(const cas__json *j, int *format, int64_t *version, size_t *vtok) {
    size_t raw, ver, i;
    int64_t v = -1;
    int r;
    *vtok = 0;
    if (!j->count || j->t[0].type != CAS__J_OBJ) return CAS_E_META;
    /* `meta and meta.get('cas_raw')`: an empty object is falsy, so {} falls through */
    raw = cas__json_get(j, 0, "cas_raw");
    if (raw && cas__json_truthy(j, raw))
        for (i = 0; i < CAS__FORMAT_ROWS; i++)
            if (cas__formats[i].raw && cas__formats[i].meta) {
                *format = cas__formats[i].format;
                return CAS_OK;
            }
    ver = cas__json_get(j, 0, "cas_version");
    if (!ver) return CAS_E_VERSION_MISSING;
    *vtok = ver;
    r = cas__json_int(j, ver, &v);
    if (r < 0) return CAS_E_VERSION_MISSING; /* a string or object cannot name a version */
    if (r > 0) {                             /* beyond int64: the sign comes from the text */
        *version = j->s[j->t[ver].start] == '-' ? INT64_MIN : INT64_MAX;
        return CAS_E_VERSION_UNKNOWN;
    }
    *version = v;
    if (v == -1) return CAS_E_VERSION_MISSING; /* Metaflow's own "missing" sentinel */
    for (i = 0; i < CAS__FORMAT_ROWS; i++)
        if (!cas__formats[i].raw && cas__formats[i].meta && cas__formats[i].version == v) {
            *format = cas__formats[i].format;
            return CAS_OK;
        }
    return CAS_E_VERSION_UNKNOWN;
}

/* The sidecars Metaflow (and this library) write, recognised without parsing. */
static int cas__meta_exact(const char *m, size_t n) {
    size_t i;
    for (i = 0; i < CAS__FORMAT_ROWS; i++)
        if (cas__formats[i].meta && strlen(cas__formats[i].meta) == n && !memcmp(m, cas__formats[i].meta, n))
            return cas__formats[i].format;
    return 0;
}

CASDEF int cas_meta_parse(const char *json, size_t len, int *format, int64_t *version) {
    cas__json j;
    int fmt = 0, r;
    int64_t v = 0;
    size_t vt;
    if (format) *format = 0;
    if (version) *version = 0;
    if (!json && len) return CAS_E_ARG;
    if (len > 65536) return CAS_E_META; /* sidecars are 36 bytes; refuse to parse megabytes */
    r = cas__json_parse(&j, json ? json : "", len, NULL);
    if (r == CAS_E_NOMEM) {
        cas__json_free(&j);
        return r;
    }
    r = r < 0 ? CAS_E_META : cas__meta_rules(&j, &fmt, &v, &vt);
    cas__json_free(&j);
    if (format) *format = fmt;
    if (version) *version = v;
    return r;
}
