/* ---- writing: one path for put, put_fd and migrate ---- */

/* Bytes in hand go to a new backend object; commits it under name. */
static int cas__write_object(cas_store *s, const char *dir, const char *name, const void *p, size_t n, const char *meta,
                             size_t ml, int mode, int *stored, char *msg, size_t cap) {
    const cas_backend *b = &s->be->b;
    void *w;
    int rc = b->create(b->user, dir, name, meta, ml, &w, msg, cap);
    if (rc < 0) return rc;
    if (mode != CAS_COMMIT_META && n) rc = b->write(b->user, w, p, n, msg, cap);
    if (rc >= 0) rc = b->commit(b->user, w, name, mode, stored, msg, cap);
    b->abort(b->user, w);
    return rc;
}

/* A new blob object in flow's data folder with format's metadata, for bytes that
 * come a buffer at a time (name: its final name, or NULL when the key comes last).
 * On failure *bw is NULL and err says what, with the backend's reason. */
static int cas__blob_create(cas_store *s, const char *flow, const char *name, int format, void **bw, const char *what,
                            char *err, size_t errcap) {
    char dir[300], meta[CAS_META_MAX], msg[CAS__MSG] = "";
    size_t ml = 0;
    int rc;
    snprintf(dir, sizeof dir, "%s/data", flow);
    cas_meta_json(format, meta, sizeof meta, &ml);
    if ((rc = s->be->b.create(s->be->b.user, dir, name, meta, ml, bw, msg, sizeof msg)) < 0) {
        *bw = NULL;
        return cas__serr(err, errcap, rc, "%s: %s", what, msg);
    }
    return CAS_OK;
}

/* ---- the datastore's other objects (data.json, markers, logs) ---- */

#define CAS__FILE_NAME_MAX 1024
#define CAS__FILE_META_MAX 2048

static int cas__file_name_check(const char *name) {
    const char *part = name, *c;
    if (!name || !*name || strlen(name) > CAS__FILE_NAME_MAX) return CAS_E_NAME;
    for (c = name;; c++) {
        if (*c == '/' || !*c) {
            size_t n = (size_t)(c - part);
            if (!n || (n == 1 && part[0] == '.') || (n == 2 && part[0] == '.' && part[1] == '.')) return CAS_E_NAME;
            if (!*c) return CAS_OK;
            part = c + 1;
        } else if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            return CAS_E_NAME;
        }
    }
}

/* A refused name as messages show it: its first 300 bytes, control characters as '?'
 * (a message is one line, whatever a caller passed). */
static int cas__file_name_refused(const char *name, char *err, size_t errcap) {
    char shown[301];
    size_t i;
    for (i = 0; name && name[i] && i < sizeof shown - 1; i++)
        shown[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
    shown[i] = 0;
    return cas__serr(err, errcap, CAS_E_NAME, "Invalid object name '%s'", shown);
}

#define CAS__FILE_NAME_OK(s, name, err, errcap)                                               \
    do {                                                                                      \
        if (!(s)) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");               \
        if (cas__file_name_check(name) < 0) return cas__file_name_refused(name, err, errcap); \
    } while (0)

/* A yes/no object call of the backend (exists, remove): its answer, or its failure in words. */
static int cas__file_ask(cas_store *s, const char *name, int remove, char *err, size_t errcap) {
    char msg[CAS__MSG] = "";
    int rc;
    CAS__FILE_NAME_OK(s, name, err, errcap);
    rc = remove ? s->be->b.remove(s->be->b.user, name, msg, sizeof msg)
                : s->be->b.exists(s->be->b.user, name, msg, sizeof msg);
    return rc < 0 ? cas__serr(err, errcap, rc, "Cannot %s '%s' in '%s': %s", remove ? "remove" : "check", name, s->root,
                              CAS__WHY(rc, msg))
                  : rc;
}

CASDEF int cas_store_file_exists(cas_store *s, const char *name, char *err, size_t errcap) {
    return cas__file_ask(s, name, 0, err, errcap);
}

CASDEF int cas_store_file_get(cas_store *s, const char *name, size_t max, void **out, size_t *len, char **meta,
                              char *err, size_t errcap) {
    const cas_backend *b;
    cas_object_info info;
    unsigned char *text = NULL;
    char msg[CAS__MSG] = "", *m = NULL;
    size_t tlen = 0;
    void *obj;
    int rc;
    if (out) *out = NULL;
    if (len) *len = 0;
    if (meta) *meta = NULL;
    if (!out || !len) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    CAS__FILE_NAME_OK(s, name, err, errcap);
    b = &s->be->b;
    if ((rc = b->open(b->user, name, 0, &obj, &info, msg, sizeof msg)) < 0) {
        if (rc == CAS_E_NOTFOUND) return cas__serr(err, errcap, rc, "No object '%s' in '%s'", name, s->root);
        return cas__serr(err, errcap, rc, "Cannot open '%s' in '%s': %s", name, s->root, CAS__WHY(rc, msg));
    }
    if (meta && info.meta && !(m = (char *)cas__alloc(&s->alloc, info.meta_len + 1))) rc = CAS_E_NOMEM;
    if (m) memcpy(m, info.meta, info.meta_len), m[info.meta_len] = 0;
    if (rc >= 0)
        rc = cas__slurp(b, obj, info.size, &s->alloc, max ? max : CAS__JSON_FILE_MAX, &text, &tlen, msg, sizeof msg);
    b->close(b->user, obj);
    if (rc < 0) {
        cas__free(&s->alloc, m);
        return cas__serr(err, errcap, rc, "Cannot read '%s' in '%s': %s", name, s->root, CAS__WHY(rc, msg));
    }
    *out = text, *len = tlen;
    if (meta) *meta = m;
    return CAS_OK;
}

CASDEF int cas_store_file_remove(cas_store *s, const char *name, char *err, size_t errcap) {
    return cas__file_ask(s, name, 1, err, errcap);
}

CASDEF int cas_store_file_put(cas_store *s, const char *name, const void *data, size_t n, const char *meta, int replace,
                              int *stored, char *err, size_t errcap) {
    char dir[CAS__FILE_NAME_MAX + 1], msg[CAS__MSG] = "";
    const char *slash, *c;
    int rc, dummy;
    if (!stored) stored = &dummy;
    *stored = 0;
    if (!data && n) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    CAS__FILE_NAME_OK(s, name, err, errcap);
    for (c = meta; c && *c; c++)
        if (*c < 0x20 || *c > 0x7e || c - meta >= CAS__FILE_META_MAX)
            return cas__serr(err, errcap, CAS_E_ARG, "The metadata of '%s' is not printable ASCII of at most %d bytes",
                             name, CAS__FILE_META_MAX);
    slash = strrchr(name, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - name) : 0, name);
    rc = cas__write_object(s, dir, name, data, n, meta, meta ? strlen(meta) : 0,
                           replace ? CAS_COMMIT_REPLACE : CAS_COMMIT_CREATE, stored, msg, sizeof msg);
    return rc < 0 ? cas__serr(err, errcap, rc, "Could not write '%s' in '%s': %s", name, s->root, CAS__WHY(rc, msg))
                  : CAS_OK;
}

/* Pulls bytes from a source until it ends, through the writer, into a backend
 * writer. The source reports its own failures in full (err); packing and backend
 * failures are reported as "<what>: <reason>". */
typedef int (*cas__pull_fn)(void *ctx, void *buf, size_t cap, size_t *got, char *err, size_t errcap);

static int cas__encode_into(cas_store *s, cas_writer *w, cas__pull_fn pull, void *pctx, void *bw, const char *what,
                            char *err, size_t errcap) {
    const cas_backend *b = &s->be->b;
    unsigned char *ibuf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
    unsigned char *obuf = (unsigned char *)cas__alloc(&s->alloc, CAS__IO_CHUNK);
    char msg[CAS__MSG] = "";
    int rc = CAS_OK, last = 0;
    if (!ibuf || !obuf) {
        rc = cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
        goto out;
    }
    while (!last) {
        size_t got = 0, off = 0;
        if ((rc = pull(pctx, ibuf, CAS__IO_CHUNK, &got, err, errcap)) < 0) goto out;
        last = got == 0;
        for (;;) { /* drain this chunk (or, at the end, the tail) through the writer */
            size_t u = 0, m = 0;
            rc = last ? cas_writer_finish(w, obuf, CAS__IO_CHUNK, &m)
                      : cas_writer_update(w, ibuf + off, got - off, &u, obuf, CAS__IO_CHUNK, &m);
            off += u;
            if (rc < 0) {
                rc = cas__serr(err, errcap, rc, "%s: %s", what, cas_strerror(rc));
                goto out;
            }
            if (m) {
                int wr = b->write(b->user, bw, obuf, m, msg, sizeof msg);
                if (wr < 0) {
                    rc = cas__serr(err, errcap, wr, "%s: %s", what, msg);
                    goto out;
                }
            }
            if (rc == CAS_DONE || (!last && rc == CAS_NEED_INPUT)) break;
        }
    }
    rc = CAS_OK;
out:
    cas__free(&s->alloc, ibuf);
    cas__free(&s->alloc, obuf);
    return rc;
}

static int cas__blob_exists(cas_store *s, const char *flow, const char *key) {
    char name[512], msg[CAS__MSG] = "";
    cas_store_blob_name(flow, key, name, sizeof name);
    return s->be->b.exists(s->be->b.user, name, msg, sizeof msg) > 0;
}

CASDEF int cas_store_exists(cas_store *s, const char *flow, const char *key) {
    if (!s) return CAS_E_ARG;
    if (cas_name_check(flow) < 0) return CAS_E_NAME;
    if (!cas__key_ok(key)) return CAS_E_KEY;
    return cas__blob_exists(s, flow, key);
}

static int cas__store_blob(cas_store *s, const char *flow, const char *key, int format, const void *blob, size_t n,
                           int *stored, char *err, size_t errcap) {
    char bname[512], dir[300], meta[CAS_META_MAX], msg[CAS__MSG] = "";
    size_t ml = 0;
    int rc;
    cas_store_blob_name(flow, key, bname, sizeof bname);
    snprintf(dir, sizeof dir, "%s/data", flow);
    cas_meta_json(format, meta, sizeof meta, &ml);
    rc = cas__write_object(s, dir, bname, blob, n, meta, ml, CAS_COMMIT_CREATE, stored, msg, sizeof msg);
    if (rc < 0) return cas__serr(err, errcap, rc, "Could not store artifact '%s': %s", bname, msg);
    return CAS_OK;
}

/* threads: 2 lets a large blob hash on a second thread while it compresses;
 * batch workers pass 1 so that N workers use N cores, not 2N threads. */
static int cas__store_put(cas_store *s, const char *flow, const void *data, size_t n, int format, char key[CAS_KEY_BUF],
                          int *stored, char *err, size_t errcap, int threads) {
    cas_writer *w;
    unsigned char *blob = NULL;
    size_t blen = 0, cap;
    int rc, dummy, parallel, as_is;
    if (!stored) stored = &dummy;
    *stored = 0;
    if (!s || !key || (!data && n)) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    key[0] = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!format) format = (int)CAS__SP(s, CAS_PARAM_FORMAT);
    if ((rc = cas__format_writable(format)) < 0) return cas__serr(err, errcap, rc, "invalid format %d", format);
    as_is = cas_format_codec(format) == CAS_CODEC_RAW;
    parallel = threads > 1 && n >= CAS__PARALLEL_MIN && !as_is;
    if (!parallel) { /* hash first: what is already stored costs no compression */
        if ((rc = cas_hash((int)CAS__SP(s, CAS_PARAM_HASH), data, n, key)) < 0)
            return cas__serr(err, errcap, rc, "hashing failed");
        if (cas__blob_exists(s, flow, key)) return CAS_OK;
        if (as_is) return cas__store_blob(s, flow, key, format, data, n, stored, err, errcap);
    }
    if ((rc = cas__get_writer(s, format, &w)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    cap = cas_pack_bound(format, n);
    blob = (unsigned char *)cas__alloc(&s->alloc, cap);
    if (!blob) {
        cas__put_writer(s, w);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory (%lu bytes)", (unsigned long)cap);
    }
    if (parallel) rc = cas_pack(w, data, n, blob, cap, &blen, key); /* key and blob at once */
    else rc = cas__writer_encode(w, data, n, blob, cap, &blen);
    cas__put_writer(s, w);
    if (rc < 0) {
        cas__free(&s->alloc, blob);
        return cas__serr(err, errcap, rc, "Could not pack artifact: %s", cas_strerror(rc));
    }
    if (parallel && cas__blob_exists(s, flow, key)) rc = CAS_OK;
    else rc = cas__store_blob(s, flow, key, format, blob, blen, stored, err, errcap);
    cas__free(&s->alloc, blob);
    return rc;
}

CASDEF int cas_store_put(cas_store *s, const char *flow, const void *data, size_t n, int format, char key[CAS_KEY_BUF],
                         int *stored, char *err, size_t errcap) {
    return cas__store_put(s, flow, data, n, format, key, stored, err, errcap, 2);
}

static int cas__pull_fd(void *ctx, void *buf, size_t cap, size_t *got, char *err, size_t errcap) {
    ssize_t r = cas__read_fd(*(int *)ctx, buf, cap);
    *got = 0;
    if (r < 0) return cas__serr(err, errcap, CAS_E_IO, "Could not read the input: %s", strerror((int)-r));
    *got = (size_t)r;
    return CAS_OK;
}

CASDEF int cas_store_put_fd(cas_store *s, const char *flow, int fd, int format, char key[CAS_KEY_BUF], int *stored,
                            char *err, size_t errcap) {
    const cas_backend *b;
    cas_writer *w = NULL;
    void *bw = NULL;
    char what[320], bname[512], msg[CAS__MSG] = "";
    int rc, dummy;
    if (!stored) stored = &dummy;
    *stored = 0;
    if (!s || !key || fd < 0) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    key[0] = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    b = &s->be->b;
    if (!format) format = (int)CAS__SP(s, CAS_PARAM_FORMAT);
    if ((rc = cas__get_writer(s, format, &w)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    snprintf(what, sizeof what, "Could not store into flow '%s'", flow);
    if ((rc = cas__blob_create(s, flow, NULL, format, &bw, what, err, errcap)) < 0) goto out;
    if ((rc = cas__encode_into(s, w, cas__pull_fd, &fd, bw, what, err, errcap)) < 0) goto out;
    cas_writer_key(w, key);
    cas_store_blob_name(flow, key, bname, sizeof bname);
    if (cas__blob_exists(s, flow, key)) goto out; /* dedup: the writer goes */
    if ((rc = b->commit(b->user, bw, bname, CAS_COMMIT_CREATE, stored, msg, sizeof msg)) < 0)
        rc = cas__serr(err, errcap, rc, "Could not store artifact '%s': %s", bname, msg);
out:
    if (bw) b->abort(b->user, bw);
    if (w) cas__put_writer(s, w);
    return rc;
}
