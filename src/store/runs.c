/* ---- runs: a flow's runs as Metaflow lays them out ---- */

/* A run's, step's or task's folder (not "_meta", not a flow's "data"). */
static int cas__is_part(const cas_file_entry *e) { return e->is_dir && cas_part_check(e->name) == CAS_OK; }

/* The earliest object time of a step's first task (what a run's _parameters step
 * writes first), 0 if none; or (done) 1 if some task of the step has an attempt
 * Metaflow counts as done (cas_task_pick_attempt). */
static int64_t cas__step_probe(cas_store *s, const char *dir, int done) {
    cas_file_entry *tasks, *files;
    size_t nt, nf, i, j;
    int64_t best = 0;
    char sub[1100];
    if (cas__file_list(s, dir, 0, 0, &tasks, &nt, NULL, 0) < 0) return 0;
    for (i = 0; i < nt && !best; i++) {
        cas__buf names;
        if (!cas__is_part(&tasks[i])) continue;
        snprintf(sub, sizeof sub, "%s/%s", dir, tasks[i].name);
        if (cas__file_list(s, sub, 0, 0, &files, &nf, NULL, 0) < 0) continue;
        memset(&names, 0, sizeof names);
        names.a = &s->alloc;
        for (j = 0; j < nf; j++) {
            if (done) cas__buf_add(&names, files[j].name, strlen(files[j].name) + 1);
            else if (!files[j].is_dir && files[j].mtime > 0 && (!best || files[j].mtime < best)) best = files[j].mtime;
        }
        if (done && names.p && cas_task_pick_attempt(names.p, names.count) >= 0) best = 1;
        cas__free(&s->alloc, names.p);
        cas__free(&s->alloc, files);
        if (!done) break;
    }
    cas__free(&s->alloc, tasks);
    return best;
}

typedef struct cas__runrec {
    size_t id, user, tags, system_tags; /* offsets in the text */
    int64_t started;
    int finished;
} cas__runrec;

/* What Metaflow's local metadata keeps in FLOW/RUN/_meta/_self.json: the start time
 * (ts_epoch, ms), the user, the tags. Absent (an object store's datastore keeps
 * metadata in a service): nothing is set. */
/* Appends a JSON value's text as one line (whitespace outside strings only: a raw
 * newline cannot be inside one), NUL-terminated; its offset, or 0 ("") on failure. */
static size_t cas__run_text(cas__buf *text, const char *p, size_t n) {
    size_t at = text->len, i;
    for (i = 0; i < n; i++) {
        char ch = p[i] == '\n' || p[i] == '\r' || p[i] == '\t' ? ' ' : p[i];
        if (cas__buf_put(text, &ch, 1) < 0) break;
    }
    if (i < n || cas__buf_put(text, "", 1) < 0) {
        if (text->p) text->len = at, text->p[at] = 0;
        return 0;
    }
    return at;
}

static void cas__run_self(cas_store *s, const char *dir, cas__runrec *r, cas__buf *text) {
    char name[1100], user[256];
    void *doc;
    size_t len, tok;
    cas__json j;
    int64_t ms;
    snprintf(name, sizeof name, "%s/_meta/_self.json", dir);
    if (cas_store_file_get(s, name, 1 << 20, &doc, &len, NULL, NULL, 0) < 0) return;
    if (cas__json_parse(&j, (const char *)doc, len, &s->alloc) == CAS_OK && j.t[0].type == CAS__J_OBJ) {
        if ((tok = cas__json_get(&j, 0, "ts_epoch")) && cas__json_int(&j, tok, &ms) == 0 && ms > 0)
            r->started = ms / 1000;
        if ((tok = cas__json_get(&j, 0, "user_name")) && cas__json_str(&j, tok, user, sizeof user) != (size_t)-1)
            r->user = cas__run_text(text, user, strlen(user));
        if ((tok = cas__json_get(&j, 0, "tags")) && j.t[tok].type == CAS__J_ARR)
            r->tags = cas__run_text(text, j.s + j.t[tok].start, j.t[tok].end - j.t[tok].start);
        if ((tok = cas__json_get(&j, 0, "system_tags")) && j.t[tok].type == CAS__J_ARR)
            r->system_tags = cas__run_text(text, j.s + j.t[tok].start, j.t[tok].end - j.t[tok].start);
    }
    cas__json_free(&j);
    cas__free(&s->alloc, doc);
}

static int cas__run_cmp(const void *a, const void *b) {
    const cas_run_info *x = (const cas_run_info *)a, *y = (const cas_run_info *)b;
    if (x->started != y->started) return x->started > y->started ? -1 : 1;
    return strcmp(y->id, x->id);
}

CASDEF int cas_store_runs(cas_store *s, const char *flow, cas_run_info **runs, size_t *count, char *err,
                          size_t errcap) {
    cas_file_entry *e;
    cas__buf recs, text;
    cas_run_info *out;
    size_t n, i;
    char dir[600];
    int rc;
    if (!s || !runs || !count) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *runs = NULL, *count = 0;
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if ((rc = cas__file_list(s, flow, 0, 0, &e, &n, err, errcap)) < 0) return rc;
    memset(&recs, 0, sizeof recs), memset(&text, 0, sizeof text);
    recs.a = text.a = &s->alloc;
    cas__buf_put(&text, "", 1); /* offset 0: "" */
    for (i = 0; i < n && rc >= 0; i++) {
        cas__runrec r;
        if (!cas__is_part(&e[i])) continue;
        memset(&r, 0, sizeof r);
        r.id = text.len;
        rc = cas__buf_put(&text, e[i].name, strlen(e[i].name) + 1);
        snprintf(dir, sizeof dir, "%s/%s", flow, e[i].name);
        cas__run_self(s, dir, &r, &text);
        if (!r.started) {
            snprintf(dir, sizeof dir, "%s/%s/_parameters", flow, e[i].name);
            r.started = cas__step_probe(s, dir, 0);
        }
        snprintf(dir, sizeof dir, "%s/%s/end", flow, e[i].name);
        r.finished = cas__step_probe(s, dir, 1) != 0;
        if (rc >= 0) rc = cas__buf_add(&recs, (const char *)&r, sizeof r);
    }
    cas__free(&s->alloc, e);
    if (rc >= 0 && !text.p) rc = CAS_E_NOMEM;
    if (rc >= 0) { /* one block: the records, then their text */
        size_t head = recs.count * sizeof *out;
        if (!(out = (cas_run_info *)cas__alloc(&s->alloc, head + text.len + 1))) rc = CAS_E_NOMEM;
        else {
            char *t = (char *)out + head;
            memcpy(t, text.p, text.len);
            t[text.len] = 0;
            for (i = 0; i < recs.count; i++) {
                cas__runrec r;
                memcpy(&r, recs.p + i * sizeof r, sizeof r);
                out[i].id = t + r.id, out[i].user = t + r.user, out[i].tags = t + r.tags;
                out[i].system_tags = t + r.system_tags, out[i].started = r.started, out[i].finished = r.finished;
            }
            qsort(out, recs.count, sizeof *out, cas__run_cmp);
            *runs = out, *count = recs.count;
        }
    }
    cas__free(&s->alloc, recs.p);
    cas__free(&s->alloc, text.p);
    if (rc < 0) return cas__serr(err, errcap, rc, "Cannot list the runs of '%s': %s", flow, cas_strerror(rc));
    return CAS_OK;
}

CASDEF int cas_task_attempt(const cas_task *t) { return t ? t->attempt : -1; }
CASDEF size_t cas_task_count(const cas_task *t) { return t ? t->count : 0; }
CASDEF const char *cas_task_flow(const cas_task *t) { return t ? t->flow : ""; }

CASDEF int cas_encoding_is_pickle(const char *encoding) {
    const char *e = encoding;
    if (!e) return 1;
    if (!strncmp(e, "gzip+", 5)) e += 5;
    if (strncmp(e, "pickle-v", 8) || !e[8]) return 0;
    for (e += 8; *e; e++)
        if (*e < '0' || *e > '9') return 0;
    return 1;
}

CASDEF int cas_task_artifact(const cas_task *t, size_t i, const char **name, const char **key, int64_t *size,
                             const char **encoding, const char **type) {
    const cas__art *a;
    if (!t || i >= t->count) return CAS_E_ARG;
    a = &t->arts[i];
    if (name) *name = a->name;
    if (key) *key = a->key;
    if (size) *size = a->size;
    if (encoding) *encoding = a->encoding;
    if (type) *type = a->type;
    return CAS_OK;
}

CASDEF int cas_task_find(const cas_task *t, const char *name, size_t *index) {
    size_t i;
    if (!t || !name) return CAS_E_ARG;
    for (i = 0; i < t->count; i++)
        if (!strcmp(t->arts[i].name, name)) {
            if (index) *index = i;
            return CAS_OK;
        }
    return CAS_E_NOTFOUND;
}
