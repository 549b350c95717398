/* ---- artifacts of other serializers: named, never parsed --------------------------------- */

#define CAS__ENC_HEAD 1024

typedef struct cas__encoded {
    const char *encoding;
    const unsigned char *head;
    size_t n;
    int cut;
    int64_t size;
} cas__encoded;

static void cas__encoded_text(cas_preview *p, void *ctx, uint64_t depth) {
    const cas__encoded *e = (const cas__encoded *)ctx;
    (void)depth;
    cas__out_s(p, "<");
    cas__out_quoted(p, e->encoding, strlen(e->encoding), CAS__Q_STR);
    cas__out_s(p, " artifact, not a pickle");
    if (e->size >= 0) cas__out_f(p, ", %lld bytes", (long long)e->size);
    cas__out_s(p, ": ");
    cas__out_quoted(p, (const char *)e->head, e->n, CAS__Q_BYTES | (e->cut ? CAS__Q_CUT : 0));
    cas__out_s(p, e->cut ? "...>" : ">");
}

CASDEF int cas_preview_encoded(cas_preview *p, const char *encoding, int64_t size, cas_preview_read_fn read,
                               void *user) {
    unsigned char head[CAS__ENC_HEAD + 1];
    size_t want, got;
    cas__encoded e;
    int rc = CAS_OK;
    if (!p || !encoding || !read) return CAS_E_ARG;
    cas__pk_reset(p);
    want = (size_t)CAS__MIN((uint64_t)p->max_items * 8, (uint64_t)CAS__ENC_HEAD);
    e.encoding = encoding, e.head = head, e.n = 0, e.size = size;
    while (e.n <= want && rc == CAS_OK) { /* one byte past the head: whether it is all */
        if ((rc = read(user, head + e.n, want + 1 - e.n, &got)) < 0 || !got) break;
        e.n += got;
    }
    e.cut = e.n > want;
    if (e.cut) e.n = want;
    p->off = e.n;
    if (rc < 0) cas__pk_fail(p, rc, "reading the artifact: %s", cas_strerror(rc));
    if (p->json) { /* cut by the output limit as a pickle's tree is: back to a whole value, closed */
        char buf[4200];
        int64_t lim = p->max_output;
        cas__capture(p, buf, sizeof buf, cas__encoded_text, &e, 0);
        cas__out_s(p, "{\"type\": \"encoded\", \"encoding\": ");
        cas__json_out_str(p, encoding, strlen(encoding));
        if (size >= 0) cas__out_f(p, ", \"size\": %lld", (long long)size);
        else cas__out_s(p, ", \"size\": null");
        cas__out_s(p, ", \"repr\": ");
        cas__json_out_str(p, buf, strlen(buf));
        cas__out_s(p, "}");
        cas__json_finish(p);
        p->max_output = lim;
    } else {
        cas__encoded_text(p, &e, 0);
    }
    if (!p->out) cas__out_put(p, "", 0);
    return p->rc;
}

CASDEF int cas_preview_set_param(cas_preview *p, int param, int64_t v) {
    int rc;
    if (!p) return CAS_E_ARG;
    if ((rc = cas__param_check(CAS__PARAM_FIND(cas__preview_params, param), CAS__FOR_PREVIEW, v)) < 0) return rc;
    switch (param) {
    case CAS_PREVIEW_MAX_OUTPUT: p->max_output = v; break;
    case CAS_PREVIEW_MAX_ITEMS: p->max_items = v; break;
    case CAS_PREVIEW_MAX_DEPTH: p->max_depth = v; break;
    case CAS_PREVIEW_MAX_MEMO: p->max_memo = v; break;
    case CAS_PREVIEW_MAX_READ: p->max_read = v; break;
    case CAS_PREVIEW_MAX_OPS: p->max_ops = v; break;
    case CAS_PREVIEW_MAX_VALUES: p->max_values = v; break;
    case CAS_PREVIEW_MAX_MEMORY: p->max_memory = v; break;
    default: p->json = v; break;
    }
    return CAS_OK;
}

CASDEF const char *cas_preview_text(const cas_preview *p, size_t *len) {
    if (len) *len = p && p->out ? p->olen : 0;
    return p && p->out ? p->out : "";
}

CASDEF const char *cas_preview_message(const cas_preview *p) { return p ? p->msg : ""; }
CASDEF uint64_t cas_preview_bytes_read(const cas_preview *p) { return p ? p->off : 0; }

CASDEF void cas_preview_free(cas_preview *p) {
    cas_allocator a;
    if (!p) return;
    cas__pk_reset(p);
    cas__free(&p->alloc, p->stack);
    cas__free(&p->alloc, p->marks);
    cas__free(&p->alloc, p->work);
    cas__free(&p->alloc, p->win);
    a = p->user_alloc;
    cas__free(&a, p->out);
    cas__free(&a, p);
}

#ifndef CAS_NO_STORE
static int cas__read_stream(void *user, void *buf, size_t cap, size_t *got) {
    return cas_stream_read((cas_stream *)user, buf, cap, got);
}

CASDEF int cas_stream_preview(cas_stream *st, cas_preview *p) {
    int rc;
    if (!st || !p) return CAS_E_ARG;
    rc = cas_preview_run(p, cas__read_stream, st);
    if (rc < 0 && cas_stream_message(st)[0] && (rc == CAS_E_IO || p->rc == rc) && strstr(p->msg, "reading the pickle"))
        snprintf(p->msg, sizeof p->msg, "%s", cas_stream_message(st)); /* the blob's own error, in its words */
    return rc;
}

/* A blob of a store previewed as a pickle (encoding NULL) or as another serializer's
 * bytes; no preview ("" and the reason) when the blob cannot be opened. */
static int cas__store_preview_as(cas_store *s, const char *flow, const char *key, const char *encoding, int64_t size,
                                 cas_preview *p, char *err, size_t errcap) {
    cas_stream *st;
    int rc;
    if (!p) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if ((rc = cas_stream_open(s, flow, key, &st, err, errcap)) < 0) {
        cas__pk_reset(p);
        p->rc = rc;
        snprintf(p->msg, sizeof p->msg, "%s", err && errcap ? err : cas_strerror(rc));
        return rc;
    }
    rc = encoding ? cas_preview_encoded(p, encoding, size, cas__read_stream, st) : cas_stream_preview(st, p);
    if (rc < 0) cas__serr(err, errcap, rc, "blob %s of flow %s: %s", key, flow, cas_preview_message(p));
    cas_stream_close(st);
    return rc;
}

CASDEF int cas_store_preview_encoded(cas_store *s, const char *flow, const char *key, const char *encoding,
                                     int64_t size, cas_preview *p, char *err, size_t errcap) {
    if (!encoding) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    return cas__store_preview_as(s, flow, key, encoding, size, p, err, errcap);
}


CASDEF int cas_store_preview(cas_store *s, const char *flow, const char *key, cas_preview *p, char *err,
                             size_t errcap) {
    return cas__store_preview_as(s, flow, key, NULL, -1, p, err, errcap);
}
#endif
