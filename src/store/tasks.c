/* ---- tasks: parsing (bytes in hand) ---- */

typedef struct cas__art {
    const char *name, *key, *encoding, *type;
    int64_t size;
} cas__art;

struct cas_task {
    cas_allocator alloc;
    int attempt;
    size_t count;
    cas__art *arts;
    char *arena;
    char flow[256];
};

CASDEF void cas_task_close(cas_task *t) {
    cas_allocator a;
    if (!t) return;
    a = t->alloc;
    cas__free(&a, t->arts);
    cas__free(&a, t->arena);
    cas__free(&a, t);
}

/* Copies a decoded JSON string into the arena; "" when it is not a usable
 * string (not a string, a NUL or lone surrogate inside, or no room). */
static const char *cas__arena_str(const cas__json *j, size_t tok, char **arena, size_t *left) {
    size_t l;
    const char *p = *arena;
    if (*left == 0) return "";
    if (!tok || j->t[tok].type != CAS__J_STR || (l = cas__json_str(j, tok, *arena, *left)) == (size_t)-1) {
        (*arena)[0] = 0;
        l = 0;
    }
    *arena += l + 1, *left -= l + 1;
    return p;
}

typedef struct cas__name_pos {
    const char *name;
    size_t pos;
} cas__name_pos;

static int cas__name_pos_cmp(const void *a, const void *b) {
    const cas__name_pos *x = (const cas__name_pos *)a, *y = (const cas__name_pos *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* A name repeated in "objects" keeps its first position and its last value,
 * as Python's json.loads builds the dict. scratch holds at least 4*m size_t. */
static size_t cas__dedupe_arts(cas__art *a, size_t m, size_t *scratch) {
    cas__name_pos *np = (cas__name_pos *)(void *)scratch; /* 2 size_t each: fits in 4*m */
    size_t i, k, n = 0;
    int dup = 0;
    for (i = 0; i < m; i++) np[i].name = a[i].name, np[i].pos = i;
    qsort(np, m, sizeof *np, cas__name_pos_cmp);
    for (i = 0; i < m; i = k) {
        for (k = i + 1; k < m && !strcmp(np[k].name, np[i].name); k++) {
        }
        if (k - i > 1) {
            size_t first = np[i].pos, last = np[k - 1].pos, d;
            a[first].key = a[last].key, a[first].size = a[last].size;
            a[first].encoding = a[last].encoding, a[first].type = a[last].type;
            for (d = i + 1; d < k; d++) a[np[d].pos].name = NULL; /* dropped below */
            dup = 1;
        }
    }
    if (!dup) return m;
    for (i = 0; i < m; i++)
        if (a[i].name) a[n++] = a[i];
    return n;
}

CASDEF int cas_task_pick_attempt(const char *names, size_t count) {
    int i, attempt = -1;
    /* Metaflow's rule: attempts 0..5, the last of the consecutive run of N.attempt.json */
    for (i = 0; i < 6; i++) {
        char want[32];
        const char *p = names;
        size_t k;
        int found = 0;
        snprintf(want, sizeof want, "%d.attempt.json", i);
        for (k = 0; k < count && !found; k++, p += strlen(p) + 1) found = !strcmp(p, want);
        if (found) attempt = i;
        else if (attempt >= 0) break;
    }
    if (attempt >= 0) { /* and it finished */
        char want[32];
        const char *p = names;
        size_t k;
        snprintf(want, sizeof want, "%d.DONE.lock", attempt);
        for (k = 0; k < count; k++, p += strlen(p) + 1)
            if (!strcmp(p, want)) return attempt;
        return -1;
    }
    return attempt;
}

/* Raw-text order of two string tokens, then document order: info's keys sorted so
 * that each lookup is a binary search, the last duplicate winning as in Python. */
static int cas__tok_cmp(const cas__json *j, size_t a, size_t b) {
    size_t la = j->t[a].end - j->t[a].start, lb = j->t[b].end - j->t[b].start;
    int c = memcmp(j->s + j->t[a].start, j->s + j->t[b].start, la < lb ? la : lb);
    if (c) return c;
    if (la != lb) return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Merge sort of token indices by cas__tok_cmp (no qsort: it takes no context, and
 * parses run on many threads at once). tmp holds n. */
static void cas__tok_sort(const cas__json *j, size_t *v, size_t *tmp, size_t n) {
    size_t width, i;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            size_t lo = i, mid = i + width < n ? i + width : n, hi = i + 2 * width < n ? i + 2 * width : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) tmp[o++] = cas__tok_cmp(j, v[a], v[b]) <= 0 ? v[a++] : v[b++];
            while (a < mid) tmp[o++] = v[a++];
            while (b < hi) tmp[o++] = v[b++];
        }
        memcpy(v, tmp, n * sizeof *v);
    }
}

/* The value token of the last member of info whose key is kt's text, or 0. */
static size_t cas__info_find(const cas__json *j, const size_t *sorted, size_t n, size_t kt) {
    size_t lo = 0, hi = n, found = 0;
    size_t lk = j->t[kt].end - j->t[kt].start;
    while (lo < hi) { /* the first key >= kt's text */
        size_t mid = lo + (hi - lo) / 2, lm = j->t[sorted[mid]].end - j->t[sorted[mid]].start;
        int c = memcmp(j->s + j->t[sorted[mid]].start, j->s + j->t[kt].start, lm < lk ? lm : lk);
        if (c < 0 || (c == 0 && lm < lk)) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < n; lo++) { /* equal texts, in document order: the last wins */
        size_t q = sorted[lo];
        if (j->t[q].end - j->t[q].start != lk || memcmp(j->s + j->t[q].start, j->s + j->t[kt].start, lk)) break;
        found = q + 1;
    }
    return found;
}

CASDEF int cas_task_parse(cas_task **out, const char *pathspec, int attempt, const void *data_json, size_t tlen,
                          const cas_allocator *alloc, char *err, size_t errcap) {
    char parts[4][256], fname[32];
    const char *text = (const char *)data_json;
    cas__json j;
    cas_task *t;
    size_t objs, info, k, m, arena_size, left, ti, *toks = NULL, *ikeys = NULL, ni = 0;
    char *ap;
    int rc;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (!data_json && tlen) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas__split(pathspec, parts, 4) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid pathspec '%.300s': expected Flow/run/step/task",
                         pathspec ? pathspec : "");
    snprintf(fname, sizeof fname, "%d.data.json", attempt);
    rc = cas__json_parse(&j, text ? text : "", tlen, alloc);
    if (rc < 0 || j.t[0].type != CAS__J_OBJ) {
        rc = cas__serr(err, errcap, rc == CAS_E_NOMEM ? rc : CAS_E_JSON, "Malformed '%s/%s': %s", pathspec, fname,
                       rc < 0 ? j.err : "not a JSON object");
        cas__json_free(&j);
        return rc;
    }
    objs = cas__json_get(&j, 0, "objects");
    info = cas__json_get(&j, 0, "info");
    if (!objs || j.t[objs].type != CAS__J_OBJ) {
        cas__json_free(&j);
        return cas__serr(err, errcap, CAS_E_JSON, "Malformed '%s/%s': no \"objects\" map", pathspec, fname);
    }
    if (info && j.t[info].type != CAS__J_OBJ) info = 0; /* not a map: as if absent */
    m = j.t[objs].count;
    t = (cas_task *)cas__calloc(alloc, sizeof *t);
    if (t) {
        cas__copy_allocator(&t->alloc, alloc);
        t->arts = (cas__art *)cas__calloc(alloc, (m + 1) * sizeof *t->arts);
        toks = (size_t *)cas__alloc(alloc, (m + 1) * 4 * sizeof *toks);
    }
    if (!t || !t->arts || !toks) goto fail;
    if (info && (ni = j.t[info].count) > 0) { /* info's keys, sorted once */
        size_t c, q, *tmp = (size_t *)cas__alloc(alloc, 2 * ni * sizeof *ikeys);
        if (!(ikeys = tmp)) goto fail;
        for (c = 0, q = info + 1; c < ni; c++, q = j.t[q + 1].next) ikeys[c] = q;
        cas__tok_sort(&j, ikeys, ikeys + ni, ni);
    }
    /* pass 1: the tokens of each artifact (name, key, encoding, type) and the
     * arena they need: a decoded string is never longer than its JSON text */
    arena_size = 1;
    for (k = 0, ti = objs + 1; k < m; k++) {
        size_t kt = ti, vt = kt + 1, c, *tk = toks + 4 * k;
        size_t it = ni ? cas__info_find(&j, ikeys, ni, kt) : 0; /* keyed by the same names; the last match wins */
        tk[0] = kt, tk[1] = vt;
        tk[2] = it ? cas__json_get(&j, it, "encoding") : 0;
        tk[3] = it ? cas__json_get(&j, it, "type") : 0;
        for (c = 0; c < 4; c++) arena_size += (tk[c] ? j.t[tk[c]].end - j.t[tk[c]].start : 0) + 1;
        {
            size_t st = it ? cas__json_get(&j, it, "size") : 0;
            int64_t sz;
            t->arts[k].size = -1;
            if (st && j.t[st].type == CAS__J_NUM && cas__json_int(&j, st, &sz) == 0 && sz >= 0) t->arts[k].size = sz;
        }
        ti = j.t[vt].next;
    }
    if (!(t->arena = (char *)cas__alloc(alloc, arena_size))) goto fail;
    t->attempt = attempt;
    snprintf(t->flow, sizeof t->flow, "%s", parts[0]);
    ap = t->arena, left = arena_size;
    for (k = 0; k < m; k++) { /* pass 2: decode */
        size_t *tk = toks + 4 * k;
        cas__art *a = &t->arts[k];
        a->name = cas__arena_str(&j, tk[0], &ap, &left);
        a->key = cas__arena_str(&j, tk[1], &ap, &left);
        /* Metaflow's default for datastores older than the info map */
        a->encoding = tk[2] ? cas__arena_str(&j, tk[2], &ap, &left) : "gzip+pickle-v2";
        a->type = cas__arena_str(&j, tk[3], &ap, &left);
    }
    t->count = cas__dedupe_arts(t->arts, m, toks);
    cas__free(alloc, toks);
    cas__free(alloc, ikeys);
    cas__json_free(&j);
    *out = t;
    return CAS_OK;
fail:
    cas__free(alloc, toks);
    cas__free(alloc, ikeys);
    cas_task_close(t);
    cas__json_free(&j);
    return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
}

/* ---- tasks: over a store ---- */

static int cas__list_names(void *ctx, const char *name, int kind, uint64_t size, int64_t mtime) {
    (void)kind, (void)size, (void)mtime;
    return cas__buf_add((cas__buf *)ctx, name, strlen(name) + 1);
}

CASDEF int cas_task_open(cas_store *s, const char *pathspec, cas_task **out, char *err, size_t errcap) {
    char parts[4][256], name[1100], msg[CAS__MSG] = "";
    const cas_backend *b;
    cas__buf names;
    cas_object_info info;
    unsigned char *text = NULL;
    size_t tlen = 0;
    void *obj;
    int attempt, rc;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas__split(pathspec, parts, 4) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid pathspec '%.300s': expected Flow/run/step/task",
                         pathspec ? pathspec : "");
    b = &s->be->b;
    memset(&names, 0, sizeof names);
    names.a = &s->alloc;
    if ((rc = b->list(b->user, pathspec, 0, cas__list_names, &names, msg, sizeof msg)) < 0) {
        cas__free(&s->alloc, names.p);
        return cas__serr(err, errcap, rc, "Cannot open task '%s': %s", pathspec,
                         rc == CAS_E_NOTFOUND ? "no such task in this datastore" : CAS__WHY(rc, msg));
    }
    attempt = cas_task_pick_attempt(names.p ? names.p : "", names.count);
    cas__free(&s->alloc, names.p);
    if (attempt < 0)
        return cas__serr(err, errcap, CAS_E_NOTFOUND, "No completed attempts of the task was found for task '%s'",
                         pathspec);
    snprintf(name, sizeof name, "%s/%d.data.json", pathspec, attempt);
    if ((rc = b->open(b->user, name, 0, &obj, &info, msg, sizeof msg)) < 0)
        return cas__serr(err, errcap, rc, "Cannot open '%s': %s", name, msg);
    rc = cas__slurp(b, obj, info.size, &s->alloc, CAS__JSON_FILE_MAX, &text, &tlen, msg, sizeof msg);
    b->close(b->user, obj);
    if (rc < 0)
        return cas__serr(err, errcap, rc == CAS_E_LIMIT ? CAS_E_IO : rc, "Cannot read '%s': %s", name,
                         rc == CAS_E_LIMIT ? "over 256 MiB" : msg);
    rc = cas_task_parse(out, pathspec, attempt, text, tlen, &s->alloc, err, errcap);
    cas__free(&s->alloc, text);
    return rc;
}
