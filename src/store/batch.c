/* ---- batch ---- */

typedef struct cas__batch {
    cas_store *s;
    const char *flow;
    size_t count, next;
    int put, format;
    const void *const *data;
    const size_t *sizes;
    char *keys;
    const char *const *gkeys;
    void **outs;
    size_t *lens;
    int *status;
    int first_rc;
    char *err;
    size_t errcap;
    cas__mutex mu;
    /* get through the backend's fetch: fetched blobs wait in a queue for the decoders */
#ifndef CAS_NO_THREADS
    pthread_cond_t cv;
#endif
    size_t *queue, qhead, qtail, *fidx, nfetch;
    unsigned char **raw;
    size_t *rawlen;
    char **meta;
    size_t *metalen;
    int fetching;
} cas__batch;

static void cas__batch_fail(cas__batch *b, size_t i, int rc, const char *msg) {
    if (b->status) b->status[i] = rc;
    if (rc >= 0) return;
    cas__mu_lock(&b->mu);
    if (!b->first_rc) {
        b->first_rc = rc;
        cas__serr(b->err, b->errcap, rc, "%s", msg);
    }
    cas__mu_unlock(&b->mu);
}

static void *cas__batch_worker(void *arg) {
    cas__batch *b = (cas__batch *)arg;
    char msg[512];
    for (;;) {
        size_t i;
        int rc;
        cas__mu_lock(&b->mu);
        i = b->next++;
        cas__mu_unlock(&b->mu);
        if (i >= b->count) break;
        msg[0] = 0;
        if (b->put)
            rc = cas__store_put(b->s, b->flow, b->data[i], b->sizes[i], b->format, b->keys + i * CAS_KEY_BUF, NULL, msg,
                                sizeof msg, 1);
        else rc = cas_store_get(b->s, b->flow, b->gkeys[i], &b->outs[i], &b->lens[i], msg, sizeof msg);
        cas__batch_fail(b, i, rc, msg);
    }
    return NULL;
}

static int cas__batch_run(cas__batch *b, int threads) {
    if ((size_t)(threads <= 0 ? 2 : threads) > b->count) threads = (int)(b->count ? b->count : 1);
    if (cas__mu_init(&b->mu) < 0) threads = 1;
    cas__workers(b, threads, cas__batch_worker);
    cas__mu_destroy(&b->mu);
    return b->first_rc;
}

CASDEF int cas_store_put_batch(cas_store *s, const char *flow, size_t count, const void *const *data,
                               const size_t *sizes, int format, char *keys, int *status, int threads, char *err,
                               size_t errcap) {
    cas__batch b;
    if (!s || (count && (!data || !sizes || !keys))) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    memset(&b, 0, sizeof b);
    b.s = s, b.flow = flow, b.count = count, b.put = 1, b.format = format;
    b.data = data, b.sizes = sizes, b.keys = keys, b.status = status, b.err = err, b.errcap = errcap;
    if (threads <= 0 && (s->be->b.flags & CAS_BACKEND_REMOTE)) threads = 16; /* latency-bound: more in flight */
    return cas__batch_run(&b, threads);
}

static void *cas__batch_decoder(void *arg);

/* fetch's callback, on the fetching thread: queue the blob for the decoders. */
static void cas__batch_fetched(void *ctx, size_t j, int status, const char *msg, const char *meta, size_t ml,
                               void *data, size_t len) {
    cas__batch *b = (cas__batch *)ctx;
    char bname[512], text[600];
    size_t i;
    if (j >= b->nfetch) {
        cas__free(&b->s->alloc, data);
        return;
    }
    i = b->fidx[j];
    cas_store_blob_name(b->flow, b->gkeys[i], bname, sizeof bname);
    if (status < 0) {
        if (status == CAS_E_NOTFOUND) snprintf(text, sizeof text, "No blob '%s' in '%s'", bname, b->s->root);
        else snprintf(text, sizeof text, "Cannot open '%s': %s", bname, msg ? msg : "");
        cas__free(&b->s->alloc, data);
        cas__batch_fail(b, i, status, text);
        return;
    }
    if (meta && !(b->meta[i] = (char *)cas__alloc(&b->s->alloc, ml + 1))) {
        cas__free(&b->s->alloc, data);
        snprintf(text, sizeof text, "Cannot read '%s': %s", bname, strerror(ENOMEM));
        cas__batch_fail(b, i, CAS_E_NOMEM, text);
        return;
    }
    if (meta) memcpy(b->meta[i], meta, ml), b->meta[i][ml] = 0, b->metalen[i] = ml;
    b->raw[i] = (unsigned char *)data, b->rawlen[i] = len;
    cas__mu_lock(&b->mu);
    b->queue[b->qtail++] = i;
#ifndef CAS_NO_THREADS
    pthread_cond_signal(&b->cv);
#endif
    cas__mu_unlock(&b->mu);
#ifdef CAS_NO_THREADS
    cas__batch_decoder(b);
#endif
}

/* Decodes queued blobs until the fetch is over and the queue is empty. */
static void *cas__batch_decoder(void *arg) {
    cas__batch *b = (cas__batch *)arg;
    char msg[512], bname[512];
    for (;;) {
        size_t i;
        int rc;
        cas__mu_lock(&b->mu);
#ifndef CAS_NO_THREADS
        while (b->qhead == b->qtail && b->fetching) pthread_cond_wait(&b->cv, &b->mu);
#endif
        if (b->qhead == b->qtail) {
            cas__mu_unlock(&b->mu);
            break;
        }
        i = b->queue[b->qhead++];
        cas__mu_unlock(&b->mu);
        cas_store_blob_name(b->flow, b->gkeys[i], bname, sizeof bname);
        msg[0] = 0;
        rc = cas__decode_blob(b->s, bname, b->gkeys[i], b->meta[i], b->metalen[i], b->raw[i], b->rawlen[i], &b->outs[i],
                              &b->lens[i], msg, sizeof msg);
        cas__free(&b->s->alloc, b->raw[i]);
        cas__free(&b->s->alloc, b->meta[i]);
        b->raw[i] = NULL, b->meta[i] = NULL;
        cas__batch_fail(b, i, rc, msg);
    }
    return NULL;
}

/* A batch get over the backend's fetch: the caller's thread runs the requests
 * (many in flight), `threads` decoder threads decode what arrives. */
static int cas__batch_fetch(cas__batch *b, int threads) {
    cas_store *s = b->s;
    const cas_allocator *a = &s->alloc;
    const cas_backend *be = &s->be->b;
    char **names = NULL, msg[CAS__MSG] = "", bname[512];
    size_t i, n = b->count;
    int rc = CAS_OK;
#ifndef CAS_NO_THREADS
    pthread_t th[16];
    int k, started = 0, cv = 0;
#endif
    if (cas__mu_init(&b->mu) < 0) return cas__serr(b->err, b->errcap, CAS_E_NOMEM, "cannot create a mutex");
    b->queue = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->queue);
    b->fidx = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->fidx);
    b->raw = (unsigned char **)cas__calloc(a, (n + 1) * sizeof *b->raw);
    b->rawlen = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->rawlen);
    b->meta = (char **)cas__calloc(a, (n + 1) * sizeof *b->meta);
    b->metalen = (size_t *)cas__calloc(a, (n + 1) * sizeof *b->metalen);
    names = (char **)cas__calloc(a, (n + 1) * sizeof *names);
    if (!b->queue || !b->fidx || !b->raw || !b->rawlen || !b->meta || !b->metalen || !names) {
        rc = cas__serr(b->err, b->errcap, CAS_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) { /* invalid items fail as cas_store_get fails them; the rest are fetched */
        const char *key = b->gkeys[i];
        if (cas_name_check(b->flow) < 0) {
            snprintf(msg, sizeof msg, "Invalid flow name '%.300s'", b->flow ? b->flow : "");
            cas__batch_fail(b, i, CAS_E_NAME, msg);
        } else if (!cas__key_ok(key)) {
            snprintf(msg, sizeof msg, "Invalid key '%.100s'", key ? key : "");
            cas__batch_fail(b, i, CAS_E_KEY, msg);
        } else {
            size_t l;
            cas_store_blob_name(b->flow, key, bname, sizeof bname);
            l = strlen(bname) + 1;
            if (!(names[b->nfetch] = (char *)cas__alloc(a, l))) {
                rc = cas__serr(b->err, b->errcap, CAS_E_NOMEM, "out of memory");
                goto out;
            }
            memcpy(names[b->nfetch], bname, l);
            b->fidx[b->nfetch++] = i;
        }
    }
    if (!b->nfetch) goto out;
    b->fetching = 1;
#ifndef CAS_NO_THREADS
    if (pthread_cond_init(&b->cv, NULL) != 0) {
        rc = cas__serr(b->err, b->errcap, CAS_E_NOMEM, "cannot create a condition variable");
        goto out;
    }
    cv = 1;
    if (threads <= 0) threads = 2;
    if (threads > 16) threads = 16;
    for (k = 0; k < threads; k++)
        if (pthread_create(&th[started], NULL, cas__batch_decoder, b) == 0) started++;
#else
    (void)threads;
#endif
    msg[0] = 0;
    rc = be->fetch(be->user, b->nfetch, (const char *const *)names, a, cas__batch_fetched, b, msg, sizeof msg);
    cas__mu_lock(&b->mu);
    b->fetching = 0;
    if (rc < 0 && !b->first_rc) { /* every object was reported; this is the fetch's own failure */
        b->first_rc = rc;
        cas__serr(b->err, b->errcap, rc, "Cannot read from '%s': %s", s->root, msg);
    }
#ifndef CAS_NO_THREADS
    pthread_cond_broadcast(&b->cv);
#endif
    cas__mu_unlock(&b->mu);
#ifndef CAS_NO_THREADS
    if (!started) cas__batch_decoder(b);
    for (k = 0; k < started; k++) pthread_join(th[k], NULL);
#endif
    rc = CAS_OK;
out:
#ifndef CAS_NO_THREADS
    if (cv) pthread_cond_destroy(&b->cv);
#endif
    for (i = 0; i < n; i++) {
        if (names) cas__free(a, names[i]);
        if (b->raw) cas__free(a, b->raw[i]);
        if (b->meta) cas__free(a, b->meta[i]);
    }
    cas__free(a, names);
    cas__free(a, b->queue);
    cas__free(a, b->fidx);
    cas__free(a, b->raw);
    cas__free(a, b->rawlen);
    cas__free(a, b->meta);
    cas__free(a, b->metalen);
    cas__mu_destroy(&b->mu);
    return rc < 0 ? rc : b->first_rc;
}

CASDEF int cas_store_get_batch(cas_store *s, const char *flow, size_t count, const char *const *keys, void **outs,
                               size_t *lens, int *status, int threads, char *err, size_t errcap) {
    cas__batch b;
    size_t i;
    if (!s || (count && (!keys || !outs || !lens))) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    for (i = 0; i < count; i++) outs[i] = NULL, lens[i] = 0;
    memset(&b, 0, sizeof b);
    b.s = s, b.flow = flow, b.count = count, b.put = 0;
    b.gkeys = keys, b.outs = outs, b.lens = lens, b.status = status, b.err = err, b.errcap = errcap;
    if (s->be->b.fetch && count) return cas__batch_fetch(&b, threads);
    return cas__batch_run(&b, threads);
}
