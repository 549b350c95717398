/* ---- object stores: many objects at once (batch gets) -------------------- */
/* One multi handle, up to CAS_PARAM_CLOUD_CONNECTIONS requests in flight, each
 * object whole into a buffer from the caller's allocator; a failed request waits
 * its backoff without holding up the others. */

typedef struct cas__fitem {
    cas__xfer x; /* first: the driver hands back &x */
    cas__rq r;
    int state; /* 0 waiting (x.due), 1 in flight, 2 reported */
} cas__fitem;

typedef struct cas__fetch_turn {
    cas__cloud *cs;
    cas__fitem *it;
    const cas_allocator *a;
    cas_fetch_fn fn;
    void *ctx;
    size_t *done, *active;
    int attempts;
} cas__fetch_turn;

/* A GET that ended: reported (its bytes, or why not), or due again after its backoff. */
static int cas__fetch_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__fetch_turn *t = (cas__fetch_turn *)ctx;
    cas__fitem *f = (cas__fitem *)(void *)x;
    size_t i = (size_t)(f - t->it);
    char why[CAS__MSG];
    (*t->active)--;
    if (again && f->r.tries < t->attempts) {
        f->state = 0, f->x.due = cas__ms() + cas__cloud_backoff_ms(t->cs, f->r.tries);
        return CAS_OK;
    }
    f->state = 2, (*t->done)++;
    if (cc == CURLE_OK && f->r.status == 200) {
        size_t len;
        unsigned char *data = cas__rq_take_body(&f->r, &len);
        if (!data && (data = (unsigned char *)cas__alloc(t->a, 1)) == NULL) { /* an empty object */
            t->fn(t->ctx, i, CAS_E_NOMEM, "out of memory", NULL, 0, NULL, 0);
            return CAS_OK;
        }
        t->fn(t->ctx, i, CAS_OK, NULL, f->r.has_meta ? f->r.meta : NULL, f->r.meta_len, data, len);
    } else {
        int rc = cc != CURLE_OK ? CAS_E_IO : cas__cloud_answer_fail(&f->r, why, sizeof why);
        if (cc != CURLE_OK) cas__rq_why(&f->r, cc, why, sizeof why);
        t->fn(t->ctx, i, rc, why, NULL, 0, NULL, 0);
    }
    return CAS_OK;
}

static int cas__cloud_fetch(void *u, size_t count, const char *const *names, const cas_allocator *a, cas_fetch_fn fn,
                            void *ctx, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__fitem *it = (cas__fitem *)cas__calloc(&cs->alloc, (count + 1) * sizeof *it);
    CURLM *m = cas__multi_get(cs);
    long conns = (long)cas__cloudp(cs, CAS_PARAM_CLOUD_CONNECTIONS);
    size_t i, done = 0, active = 0;
    char why[CAS__MSG];
    cas__fetch_turn turn;
    if (!it || !m) {
        cas__free(&cs->alloc, it);
        cas__multi_put(cs, m);
        for (i = 0; i < count; i++) fn(ctx, i, CAS_E_NOMEM, "out of memory", NULL, 0, NULL, 0);
        return cas__oom(msg, cap);
    }
    turn.cs = cs, turn.it = it, turn.a = a, turn.fn = fn, turn.ctx = ctx, turn.done = &done, turn.active = &active;
    turn.attempts = (int)cas__cloudp(cs, CAS_PARAM_CLOUD_ATTEMPTS);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    for (i = 0; i < count; i++) {
        cas__rq_init(&it[i].r, "GET", a);
        it[i].x.r = &it[i].r;
        it[i].r.keep = (size_t)-1;
    }
    while (done < count) {
        int64_t now = cas__ms(), wake = now + 1000;
        for (i = 0; i < count && active < (size_t)conns; i++) { /* start what is due */
            cas__fitem *f = &it[i];
            int rc;
            if (f->state != 0) continue;
            if (f->x.due > now) {
                if (f->x.due < wake) wake = f->x.due;
                continue;
            }
            why[0] = 0;
            if (!f->r.url.len && cas__cloud_url(cs, &f->r.url, names[i], NULL) < 0) rc = cas__oom(why, sizeof why);
            else rc = cas__xfer_start(cs, m, &f->x, NULL, NULL, why, sizeof why);
            if (rc < 0) {
                fn(ctx, i, rc, why[0] ? why : "out of memory", NULL, 0, NULL, 0);
                f->state = 2, done++;
                continue;
            }
            f->state = 1, active++;
        }
        cas__multi_turn(cs, m, cas__fetch_ended, &turn);
        if (done < count) {
            int64_t t = cas__ms();
            int timeout = active ? 1000 : (int)CAS__MAXZ(wake - t, 1);
            cas__multi_wait(m, timeout > 1000 ? 1000 : timeout);
        }
    }
    for (i = 0; i < count; i++) cas__rq_free(&it[i].r);
    cas__free(&cs->alloc, it);
    cas__multi_put(cs, m);
    return CAS_OK;
}
