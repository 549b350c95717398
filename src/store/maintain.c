/* ---- migrate ---- */

static int cas__pull_stream(void *ctx, void *buf, size_t cap, size_t *got, char *err, size_t errcap) {
    cas_stream *st = (cas_stream *)ctx;
    int rc = cas_stream_read(st, buf, cap, got);
    return rc < 0 ? cas__serr(err, errcap, rc, "%s", cas_stream_message(st)) : CAS_OK;
}

/* What a migration of a blob must do, from its metadata and its first bytes:
 * 0 nothing, else the format the bytes are in (decode as that). The bytes are
 * authoritative: an interrupted migrate leaves them ahead of the metadata. */
static int cas__migrate_plan(int meta_fmt, int sniff, int target, int *bytes_fmt) {
    const cas__format_row *m = cas__format_find(meta_fmt);
    size_t i;
    *bytes_fmt = 0;
    for (i = 0; i < CAS__FORMAT_ROWS && !*bytes_fmt; i++) { /* the first writable format with such bytes */
        const cas__codec_row *c = cas__codec_find(cas__formats[i].codec);
        if (cas__formats[i].writable && c->sniff && (sniff == c->sniff || (sniff == CAS_SNIFF_EMPTY && c->empty_ok)))
            *bytes_fmt = cas__formats[i].format;
    }
    if (m && m->raw) return 0; /* raw blobs are read by URI as they are: never re-encode */
    if (!*bytes_fmt) return CAS_E_CORRUPT;
    if (*bytes_fmt == target && m && m->reads_as == target) return 0; /* already there */
    return *bytes_fmt;
}

CASDEF int cas_store_migrate(cas_store *s, const char *flow, const char *key, int format, int *changed, char *err,
                             size_t errcap) {
    const cas_backend *b;
    unsigned char head[4] = {0};
    size_t hl = 0, ml = 0;
    char bname[512], what[600], mjson[CAS_META_MAX], msg[CAS__MSG] = "";
    int rc, mfmt = CAS_FORMAT_LEGACY, bfmt, plan, dummy, stored = 0;
    cas_object_info info;
    cas_stream *st = NULL;
    cas_writer *w = NULL;
    void *obj, *bw = NULL;
    if (!changed) changed = &dummy;
    *changed = 0;
    if (cas__format_writable(format) < 0 || cas__format_find(format)->raw)
        return cas__serr(err, errcap, CAS_E_ARG, "migrate writes cas_version 1 or 2 only");
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    b = &s->be->b;
    if (info.meta) {
        int64_t v;
        rc = cas_meta_parse(info.meta, info.meta_len, &mfmt, &v);
        if (rc < 0) {
            b->close(b->user, obj);
            return cas__serr(err, errcap, rc, "Cannot migrate '%s': its sidecar: %s", bname, cas_strerror(rc));
        }
    }
    if ((rc = cas__stream_alloc(&st, s->be, obj, -1, info.size, &s->alloc, err, errcap)) < 0) return rc;
    snprintf(what, sizeof what, "Cannot migrate '%s'", bname);
    if (!cas__format_find(mfmt)->raw && (rc = cas__stream_peek(st, head, 4, &hl)) < 0) {
        rc = cas__serr(err, errcap, rc, "%s: %s", what, st->msg);
        goto out;
    }
    plan = cas__migrate_plan(mfmt, cas_sniff(head, hl), format, &bfmt);
    if (plan <= 0) {
        rc = plan < 0 ? cas__serr(err, errcap, plan, "%s: the bytes are %s", what, cas_sniff_name(cas_sniff(head, hl)))
                      : CAS_OK;
        goto out;
    }
    /* decode as the bytes say, always verifying: migrate never writes bytes that do not hash to the key */
    cas_meta_json(bfmt, mjson, sizeof mjson, &ml);
    if ((rc = cas__stream_begin(st, mjson, ml, bname, key, (uint64_t)CAS__SP(s, CAS_PARAM_LIMIT), 0, err, errcap)) < 0)
        goto out;
    if ((rc = cas__blob_create(s, flow, bname, format, &bw, what, err, errcap)) < 0) goto out;
    if (bfmt == format) { /* only the metadata is behind: check the bytes, then fix it */
        if ((rc = cas__stream_drain(st, NULL, err, errcap)) < 0) goto out;
    } else {
        if ((rc = cas__get_writer(s, format, &w)) < 0) {
            rc = cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
            goto out;
        }
        if ((rc = cas__encode_into(s, w, cas__pull_stream, st, bw, what, err, errcap)) < 0) goto out;
    }
    rc = b->commit(b->user, bw, bname, bfmt == format ? CAS_COMMIT_META : CAS_COMMIT_REPLACE, &stored, msg, sizeof msg);
    if (rc < 0) rc = cas__serr(err, errcap, rc, "%s: %s", what, msg);
    else *changed = 1;
out:
    if (bw) b->abort(b->user, bw);
    cas_stream_close(st);
    if (w) cas__put_writer(s, w);
    return rc;
}

/* ---- listing and gc ---- */

/* Wipes a buffer in a way the compiler keeps (secrets: cas__buf's, cas_cloud.h's). */
static void cas__wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

/* A growable byte buffer from the store's allocator. */
typedef struct cas__buf {
    char *p;
    size_t len, cap, count;
    const cas_allocator *a;
    int secret; /* a block it outgrows is wiped before it is freed (a form holding a client secret) */
} cas__buf;

/* Appends n bytes (and keeps a NUL after them). */
static int cas__buf_put(cas__buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        char *np;
        while (nc < b->len + n + 1) nc *= 2;
        np = (char *)cas__alloc(b->a, nc);
        if (!np) return CAS_E_NOMEM;
        if (b->len) memcpy(np, b->p, b->len);
        if (b->secret && b->p) cas__wipe(b->p, b->cap);
        cas__free(b->a, b->p);
        b->p = np, b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return CAS_OK;
}

/* Appends one item of a list (counted). */
static int cas__buf_add(cas__buf *b, const char *s, size_t n) {
    int rc = cas__buf_put(b, s, n);
    if (rc == CAS_OK) b->count++;
    return rc;
}

static int cas__strcmp_qsort(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static int cas__list_folders(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    (void)size, (void)mtime;
    if (kind != CAS_ENTRY_DIR || cas_name_check(name) < 0) return 0;
    return cas__buf_add((cas__buf *)ctx, name, strlen(name) + 1);
}

static int cas__list_any(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    (void)ctx, (void)name, (void)kind, (void)size, (void)mtime;
    return 1; /* one entry is enough */
}

/* A key from a listing is used only once it checks out like any other. */
static int cas__list_keys(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    size_t l = strlen(name);
    char k[CAS_KEY_BUF];
    (void)size, (void)mtime;
    if (kind != CAS_ENTRY_FILE || l < 4 || name[2] != '/' || cas_key_check(name + 3, l - 3, NULL) < 0 ||
        memcmp(name, name + 3, 2))
        return 0;
    memset(k, 0, sizeof k);
    memcpy(k, name + 3, l - 3);
    return cas__buf_add((cas__buf *)ctx, k, CAS_KEY_BUF);
}

CASDEF int cas_store_flows(cas_store *s, char **names, size_t *count, char *err, size_t errcap) {
    cas__buf all, b;
    const cas_backend *be;
    char msg[CAS__MSG] = "", dir[300];
    const char *f;
    size_t i;
    int rc;
    if (!s || !names || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *names = NULL, *count = 0;
    be = &s->be->b;
    memset(&all, 0, sizeof all), memset(&b, 0, sizeof b);
    all.a = b.a = &s->alloc;
    if ((rc = be->list(be->user, "", 0, cas__list_folders, &all, msg, sizeof msg)) < 0 && rc != CAS_E_NOTFOUND) {
        cas__free(&s->alloc, all.p);
        return cas__serr(err, errcap, rc, "Cannot list '%s': %s", s->root, CAS__WHY(rc, msg));
    }
    for (i = 0, f = all.p; i < all.count; i++, f += strlen(f) + 1) { /* a flow is a folder with a data folder */
        snprintf(dir, sizeof dir, "%s/data", f);
        if (be->list(be->user, dir, 0, cas__list_any, NULL, msg, sizeof msg) < 0) continue;
        if (cas__buf_add(&b, f, strlen(f) + 1) < 0) {
            cas__free(&s->alloc, all.p);
            cas__free(&s->alloc, b.p);
            return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
        }
    }
    cas__free(&s->alloc, all.p);
    *names = b.p, *count = b.count;
    return CAS_OK;
}

typedef struct cas__entry_rec {
    size_t off; /* of the name, in the names buffer */
    int is_dir, other;
    uint64_t size;
    int64_t mtime;
} cas__entry_rec;

typedef struct cas__listing {
    cas__buf recs, names;
    int recursive, lenient; /* lenient: a walk that skips what it cannot take (a blob listing) */
    char why[400];          /* a walk's refusal: the entry it could not take */
} cas__listing;

static int cas__list_entry(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    cas__listing *l = (cas__listing *)ctx;
    cas__entry_rec r;
    int rc;
    if (!l->recursive && strchr(name, '/')) return 0;
    if (l->recursive && !l->lenient && (kind == CAS_ENTRY_OTHER || cas__file_name_check(name) < 0)) { /* all, or fail */
        size_t i;
        cas__fmt(l->why, sizeof l->why, "%s below it: '%.300s'",
                 kind == CAS_ENTRY_OTHER ? "a symbolic link or special file, never followed"
                                         : "a name the store refuses",
                 name);
        for (i = 0; l->why[i]; i++)
            if ((unsigned char)l->why[i] < 0x20 || l->why[i] == 0x7f) l->why[i] = '?';
        return CAS_E_IO;
    }
    if (cas__file_name_check(name) < 0 || (l->lenient && kind == CAS_ENTRY_OTHER)) return 0;
    if (l->recursive && kind == CAS_ENTRY_DIR) return 0;
    r.off = l->names.len, r.is_dir = kind == CAS_ENTRY_DIR, r.size = r.is_dir ? 0 : size, r.mtime = mtime;
    r.other = kind == CAS_ENTRY_OTHER;
    if ((rc = cas__buf_put(&l->names, name, strlen(name) + 1)) < 0) return rc;
    return cas__buf_add(&l->recs, (const char *)&r, sizeof r);
}

static int cas__entry_cmp(const void *a, const void *b) {
    return strcmp(((const cas_file_entry *)a)->name, ((const cas_file_entry *)b)->name);
}

static int cas__file_list(cas_store *s, const char *dir, int recursive, int lenient, cas_file_entry **entries,
                          size_t *count, char *err, size_t errcap) {
    cas__listing l;
    char msg[CAS__MSG] = "";
    cas_file_entry *e;
    size_t i, head;
    int rc;
    if (!s || !dir || !entries || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *entries = NULL, *count = 0;
    if (*dir && cas__file_name_check(dir) < 0) return cas__file_name_refused(dir, err, errcap);
    memset(&l, 0, sizeof l);
    l.recs.a = l.names.a = &s->alloc;
    l.recursive = recursive, l.lenient = lenient;
    rc = s->be->b.list(s->be->b.user, dir, recursive, cas__list_entry, &l, msg, sizeof msg);
    if (rc >= 0) { /* one block: the entries, then their names */
        head = l.recs.count * sizeof *e;
        if (!(e = (cas_file_entry *)cas__alloc(&s->alloc, head + l.names.len + 1))) rc = CAS_E_NOMEM;
        for (i = 0; rc >= 0 && i < l.recs.count; i++) {
            cas__entry_rec r;
            memcpy(&r, l.recs.p + i * sizeof r, sizeof r);
            e[i].name = (const char *)e + head + r.off, e[i].is_dir = r.is_dir, e[i].size = r.size;
            e[i].mtime = r.mtime, e[i].other = r.other;
        }
        if (rc >= 0) {
            if (l.names.len) memcpy((char *)e + head, l.names.p, l.names.len);
            qsort(e, l.recs.count, sizeof *e, cas__entry_cmp);
            *entries = e, *count = l.recs.count;
        }
    }
    cas__free(&s->alloc, l.recs.p);
    cas__free(&s->alloc, l.names.p);
    if (rc < 0)
        return cas__serr(err, errcap, rc, "Cannot list '%s' in '%s': %s", *dir ? dir : "/", s->root,
                         l.why[0] ? l.why : CAS__WHY(rc, msg));
    return CAS_OK;
}

CASDEF int cas_store_file_list(cas_store *s, const char *dir, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap) {
    return cas__file_list(s, dir, 0, 0, entries, count, err, errcap);
}

CASDEF int cas_store_file_walk(cas_store *s, const char *dir, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap) {
    return cas__file_list(s, dir, 1, 0, entries, count, err, errcap);
}

CASDEF int cas_store_blob_list(cas_store *s, const char *flow, cas_file_entry **entries, size_t *count, char *err,
                               size_t errcap) {
    char dir[300];
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.200s'", flow ? flow : "");
    snprintf(dir, sizeof dir, "%s/data", flow);
    return cas__file_list(s, dir, 1, 1, entries, count, err, errcap);
}

CASDEF int cas_store_keys(cas_store *s, const char *flow, char **keys, size_t *count, char *err, size_t errcap) {
    cas__buf b;
    char dir[300], msg[CAS__MSG] = "";
    int rc;
    if (!s || !keys || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *keys = NULL, *count = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    memset(&b, 0, sizeof b);
    b.a = &s->alloc;
    snprintf(dir, sizeof dir, "%s/data", flow);
    if ((rc = s->be->b.list(s->be->b.user, dir, 1, cas__list_keys, &b, msg, sizeof msg)) < 0) {
        cas__free(&s->alloc, b.p);
        return cas__serr(err, errcap, rc, "Cannot open '%s/data': %s", flow, CAS__WHY(rc, msg));
    }
    if (b.count) qsort(b.p, b.count, CAS_KEY_BUF, cas__strcmp_qsort);
    *keys = b.p, *count = b.count;
    return CAS_OK;
}

CASDEF int cas_store_gc(cas_store *s, uint64_t *removed, char *err, size_t errcap) {
    char msg[CAS__MSG] = "";
    uint64_t gone = 0;
    int rc;
    if (removed) *removed = 0;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (!s->be->b.gc) return CAS_OK;
    if ((rc = s->be->b.gc(s->be->b.user, &gone, msg, sizeof msg)) < 0)
        return cas__serr(err, errcap, rc, "Cannot clean up '%s': %s", s->root, msg);
    if (removed) *removed = gone;
    return CAS_OK;
}
