/* ---- running a preview ----------------------------------------------------------------- */

/* Visits of each shown value, with the renderer's own limits: what is met twice is shared. */
static void cas__pv_count(cas_preview *p, cas__pv *v, int depth, int64_t *budget) {
    uint32_t k, per, shown;
    if (!v || cas__pv_scalar(v) || --*budget < 0) return;
    if (++v->seen > 1 || depth >= p->max_depth) return;
    per = v->kind == CAS__PV_DICT ? 2 : 1;
    for (k = 0, shown = 0; k < v->nkids && (shown < (uint32_t)p->max_items * per || v->kind >= CAS__PV_GLOBAL);
         k++, shown++)
        cas__pv_count(p, v->kids[k], depth + 1, budget);
    cas__pv_count(p, v->aux, depth + 1, budget);
}

/* After a stop short of STOP (a limit, an error, an early stop): the values under
 * construction are closed as they stand, so what was read can be shown. */
static void cas__pk_complete(cas_preview *p) {
    while (p->nmarks) {
        size_t from = p->marks[--p->nmarks];
        cas__pv *below = from ? p->stack[from - 1] : NULL, *t;
        if (from > p->sp) continue;
        if (below && (below->kind == CAS__PV_LIST || below->kind == CAS__PV_SET || below->kind == CAS__PV_FROZENSET)) {
            cas__pk_extend(p, 'e', from, 0);
        } else if (below && below->kind == CAS__PV_DICT && (p->sp - from) % 2 == 0) {
            cas__pk_extend(p, 'u', from, 1);
        } else if ((t = cas__pk_collect(p, CAS__PV_TUPLE, from)) != NULL) {
            if (below && below->kind == CAS__PV_NDARRAY && t->nkids == 5) { /* an array whose data came in: its BUILD */
                cas__pk_build(p, below, t);
                if (p->stopped_early) below->flags |= CAS__PVF_EARLY;
            } else if (cas__pk_push(p, t) < 0) {
                return;
            }
        }
    }
}

/* The JSON tree stays valid JSON whatever stopped it: a tree cut by the output limit
 * is cut back to its last whole value and closed; the root then says why it is not
 * whole ("output_truncated", "limit", "incomplete"). The closing may go a few bytes
 * past CAS_PREVIEW_MAX_OUTPUT. */
static void cas__json_finish(cas_preview *p) {
    char open[256];
    size_t depth = 0, safe = 0, safe_depth = 0, i, n = p->olen;
    int instr = 0, esc = 0, cut = p->out_full;
    if (!p->out || !n || (p->rc == CAS_OK && !cut)) return;
    if (cut) n -= sizeof CAS__PK_MARKER - 1;
    for (i = 0; i < n; i++) {
        char c = p->out[i];
        if (instr) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') instr = 0;
        } else if (c == '"') instr = 1;
        else if (c == '{' || c == '[') {
            if (depth == sizeof open) break;
            open[depth++] = c, safe = i + 1, safe_depth = depth;
        } else if (c == '}' || c == ']') {
            if (depth) depth--;
            safe = i + 1, safe_depth = depth;
        } else if (c == ',') safe = i, safe_depth = depth;
    }
    if (!cut) { /* whole, but not the whole value: reopen the root to say so */
        while (n && p->out[n - 1] != '}') n--;
        if (!n) return;
        safe = n - 1, safe_depth = 1, open[0] = '{';
    }
    if (!safe_depth) return;
    p->olen = safe, p->out[safe] = 0, p->out_full = 0;
    p->max_output = (int64_t)(safe + safe_depth + sizeof p->msg * 2 + 64);
    while (safe_depth > 1) cas__out_s(p, open[--safe_depth] == '{' ? "}" : "]");
    if (open[0] == '{') {
        for (i = p->olen; i && (p->out[i - 1] == ' ' || p->out[i - 1] == '\n'); i--) {
        }
        if (i && p->out[i - 1] != '{') cas__out_s(p, ", ");
        cas__out_s(p, cut ? "\"output_truncated\": true" : p->rc == CAS_E_LIMIT ? "\"limit\": " : "\"incomplete\": ");
        if (!cut) cas__json_out_str(p, p->msg, strlen(p->msg));
        cas__out_s(p, "}");
    } else cas__out_s(p, "]");
}

static void cas__pk_reset(cas_preview *p) {
    size_t i;
    while (p->sp) cas__pv_unref(p, p->stack[--p->sp]);
    for (i = 0; i < p->memo_cap; i++) cas__pv_unref(p, p->memo[i].v);
    cas__free(&p->alloc, p->memo);
    p->memo = NULL, p->memo_cap = p->memo_n = 0;
    cas__pv_unref(p, p->result);
    p->result = NULL;
    while (p->live) cas__pv_destroy(p, p->live); /* cycles, whose counts never reach zero */
    /* a hostile run's stacks are not kept for the next (they would count against its budget) */
    if (p->scap > 1024) cas__free(&p->alloc, p->stack), p->stack = NULL, p->scap = 0;
    if (p->mcap > 1024) cas__free(&p->alloc, p->marks), p->marks = NULL, p->mcap = 0;
    if (p->wcap > 1024) cas__free(&p->alloc, p->work), p->work = NULL, p->wcap = 0;
    p->nmarks = 0, p->proto = 0, p->stopped_early = 0, p->ops = 0;
    p->wpos = p->wlen = 0, p->eof = 0, p->off = 0;
    p->rc = CAS_OK, p->msg[0] = 0, p->mem_over = 0;
    p->olen = 0, p->out_full = 0, p->next_id = 0;
    if (p->out) p->out[0] = 0;
}

CASDEF int cas_preview_run(cas_preview *p, cas_preview_read_fn read, void *user) {
    int64_t budget;
    cas__pv *v;
    if (!p || !read) return CAS_E_ARG;
    cas__pk_reset(p);
    cas__memo_reseed(p);
    p->read = read, p->user = user;
    if (cas__pk_loop(p) == 0 && !p->stopped_early) { /* STOP: nothing may follow it */
        unsigned char c;
        if (p->wpos < p->wlen || (cas__pk_fill(p) > 0 && p->wpos < p->wlen)) {
            c = p->win[p->wpos];
            cas__pk_fail(p, CAS_E_TRAILING, "bytes after the pickle's STOP, at byte %llu (0x%02x)",
                         (unsigned long long)p->off, c);
        }
    }
    if (p->sp && (p->nmarks || p->sp > 1 || p->stopped_early || p->rc != CAS_OK)) cas__pk_complete(p);
    v = p->sp ? p->stack[0] : NULL;
    if (v) { /* the outermost value under construction, or the whole result */
        cas__pv_ref(v);
        p->result = v;
        budget = p->max_output;
        cas__pv_count(p, v, 0, &budget);
        if (p->json) {
            int64_t lim = p->max_output;
            cas__render_json(p, v, 0);
            cas__json_finish(p);
            p->max_output = lim;
        } else {
            cas__render(p, v, 0);
            if (p->rc != CAS_OK && p->rc != CAS_E_LIMIT) cas__out_f(p, " <incomplete: %.200s>", p->msg);
            else if (p->rc == CAS_E_LIMIT && !p->out_full) cas__out_s(p, " <truncated: a limit was reached>");
        }
    } else if (p->json) { /* whole, whatever the limit: JSON is never cut inside (a few hundred bytes) */
        int64_t lim = p->max_output;
        p->max_output = (int64_t)sizeof p->msg * 2 + 64;
        cas__out_s(p, "{\"type\": \"nothing\", \"incomplete\": ");
        cas__json_out_str(p, p->msg, strlen(p->msg));
        cas__out_s(p, "}");
        p->max_output = lim;
    } else if (p->rc != CAS_OK) {
        cas__out_f(p, "<nothing: %.200s>", p->msg);
    } else {
        cas__out_s(p, "<nothing>");
    }
    if (!p->out) cas__out_put(p, "", 0);
    return p->rc;
}

typedef struct cas__membuf {
    const unsigned char *p;
    size_t n, at;
} cas__membuf;

static int cas__read_mem(void *user, void *buf, size_t cap, size_t *got) {
    cas__membuf *m = (cas__membuf *)user;
    size_t k = CAS__MIN(cap, m->n - m->at);
    if (k) memcpy(buf, m->p + m->at, k);
    m->at += k;
    *got = k;
    return CAS_OK;
}

CASDEF int cas_preview_bytes(cas_preview *p, const void *pickle, size_t n) {
    cas__membuf m;
    if (!p || (!pickle && n)) return CAS_E_ARG;
    m.p = (const unsigned char *)pickle, m.n = n, m.at = 0;
    return cas_preview_run(p, cas__read_mem, &m);
}

/* The previewer's rows of the one parameter table type (cas_codecs.h): bounds and
 * the default a new previewer starts with. */
#define CAS__PK_PARAM(id, lo, hi, dflt) CAS__PARAM_DEFAULT(id, CAS__FOR_PREVIEW, lo, hi, dflt)
static const cas__param_row cas__preview_params[] = {
    CAS__PK_PARAM(CAS_PREVIEW_MAX_OUTPUT, 64, (int64_t)1 << 30, 4096),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_ITEMS, 1, 1000, 10),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_DEPTH, 1, 200, 8),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_MEMO, 1, (int64_t)1 << 28, 200000),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_READ, 0, INT64_MAX, 0),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_OPS, 0, INT64_MAX, 0),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_VALUES, 16, (int64_t)1 << 28, 400000),
    CAS__PK_PARAM(CAS_PREVIEW_JSON, 0, 1, 0),
    CAS__PK_PARAM(CAS_PREVIEW_MAX_MEMORY, (int64_t)1 << 20, (int64_t)1 << 40, (int64_t)256 << 20),
};

CASDEF int cas_preview_create(cas_preview **out, const cas_allocator *alloc) {
    cas_preview *p;
    size_t i;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!(p = (cas_preview *)cas__calloc(alloc, sizeof *p))) return CAS_E_NOMEM;
    cas__copy_allocator(&p->user_alloc, alloc);
    p->alloc.alloc = cas__pk_mem_alloc, p->alloc.free = cas__pk_mem_free, p->alloc.user = p;
    for (i = 0; i < sizeof cas__preview_params / sizeof cas__preview_params[0]; i++)
        cas_preview_set_param(p, cas__preview_params[i].id, cas__preview_params[i].dflt);
    if (!(p->win = (unsigned char *)cas__alloc(&p->alloc, CAS__PK_WINDOW))) {
        cas__free(&p->user_alloc, p);
        return CAS_E_NOMEM;
    }
    *out = p;
    return CAS_OK;
}
