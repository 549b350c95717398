/* ---- writer -------------------------------------------------------------- */

#define CAS__CODEC_PARAM_ROWS (sizeof cas__codec_params / sizeof cas__codec_params[0])

#ifndef CAS_NO_THREADS
typedef struct cas__hash_job {
    int algo;
    const void *data;
    size_t n;
    char key[CAS_KEY_BUF];
    int rc;
} cas__hash_job;

/* A writer's kept hashing thread for large inputs: a thread started per pack costs
 * 30-45 us on a small VM. Started on the first large pack, joined by
 * cas_writer_free. A forked child's copy of the writer has no such thread: pid
 * tells it to start its own. */
typedef struct cas__helper {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a job posted, or the job done: one waiter at a time */
    cas__hash_job *job; /* posted, until the helper takes it */
    int busy, stop;
    long pid; /* the process it runs in; 0: none */
} cas__helper;
#endif

struct cas_writer {
    cas_allocator alloc;
    int format, hash_algo, threads;
#ifndef CAS_NO_THREADS
    cas__helper helper;
#endif
    int64_t params[CAS__CODEC_PARAM_ROWS]; /* codec parameters, by row of cas__codec_params */
    unsigned params_set;                   /* bit i: params[i] was set */
    cas_codec *codec;
    int codec_id;
    cas_hasher *hasher;
    int hasher_algo;
    int done;
    char key[CAS_KEY_BUF];
};

/* Below this, the hash runs after the compression on the caller's thread. Handing
 * a mid-size hash (52 KB) to a kept helper won in a tight loop of packs (53 us vs
 * 75) but lost where packs come between file writes, as a save's do: waking the
 * helper's idle core and the cross-core traffic cost more than the hash (a one-blob
 * save of 52 KB: 0.81-0.97x PR #3090 with the handoff, 0.97x without). */
#define CAS__PARALLEL_MIN ((size_t)256 * 1024)

#ifndef CAS_NO_THREADS
static void *cas__helper_main(void *arg) {
    cas__helper *h = (cas__helper *)arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        cas__hash_job *j;
        while (!h->job && !h->stop) pthread_cond_wait(&h->cv, &h->mu);
        if (!h->job) break; /* stop */
        j = h->job, h->job = NULL;
        pthread_mutex_unlock(&h->mu);
        j->rc = cas_hash(j->algo, j->data, j->n, j->key);
        pthread_mutex_lock(&h->mu);
        h->busy = 0;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* 1 when w's helper runs in this process (started now if need be), 0 when it
 * cannot start: the caller hashes on its own thread. */
static int cas__helper_ready(cas_writer *w) {
    cas__helper *h = &w->helper;
    long pid = (long)getpid();
    if (h->pid == pid) return 1;
    /* none yet, or the parent's (after fork): its mutex may hold the parent's state */
    memset(h, 0, sizeof *h);
    if (pthread_mutex_init(&h->mu, NULL) != 0) return 0;
    if (pthread_cond_init(&h->cv, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        return 0;
    }
    if (pthread_create(&h->th, NULL, cas__helper_main, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        return 0;
    }
    h->pid = pid;
    return 1;
}

static void cas__helper_post(cas__helper *h, cas__hash_job *j) {
    pthread_mutex_lock(&h->mu);
    h->job = j, h->busy = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* 1 once the helper has done the posted job. 0 when it had not yet taken it: the job
 * is taken back and the caller does it itself. Between artifacts the helper's core
 * often sleeps, and waking it on a VM can take longer than the hash. */
static int cas__helper_finish(cas__helper *h) {
    int back;
    pthread_mutex_lock(&h->mu);
    back = h->job != NULL;
    if (back) h->job = NULL, h->busy = 0;
    while (h->busy) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return !back;
}

static void cas__helper_end(cas__helper *h) {
    if (!h->pid || h->pid != (long)getpid()) return; /* none, or the parent's */
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->th, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    h->pid = 0;
}
#endif

/* The writer's codec for its format, with every codec parameter set on the writer
 * that this codec takes (an LZ4 level on a gzip writer waits for an LZ4 format). */
static int cas__writer_codec(cas_writer *w) {
    int id = cas_format_codec(w->format), r;
    size_t i;
    if (w->codec && w->codec_id != id) {
        cas_codec_free(w->codec);
        w->codec = NULL;
    }
    if (!w->codec) {
        if ((r = cas_encoder_create(&w->codec, id, &w->alloc)) < 0) return r;
        w->codec_id = id;
        for (i = 0; i < CAS__CODEC_PARAM_ROWS; i++)
            if ((w->params_set >> i & 1) &&
                (r = cas_codec_set_param(w->codec, cas__codec_params[i].id, w->params[i])) < 0 && r != CAS_E_ARG)
                return r;
    }
    return cas_codec_reset(w->codec);
}

CASDEF int cas_writer_reset(cas_writer *w, int format) {
    int r;
    if (!w) return CAS_E_ARG;
    if (format) {
        if ((r = cas__format_writable(format)) < 0) return r;
        w->format = format;
    }
    w->done = 0, w->key[0] = 0;
    if ((r = cas__writer_codec(w)) < 0) return r;
    if (w->hasher && w->hasher_algo == w->hash_algo) return cas_hasher_reset(w->hasher);
    cas_hasher_free(w->hasher);
    w->hasher = NULL;
    if ((r = cas_hasher_create(&w->hasher, w->hash_algo, &w->alloc)) < 0) return r;
    w->hasher_algo = w->hash_algo;
    return CAS_OK;
}

CASDEF void cas_writer_free(cas_writer *w) {
    cas_allocator a;
    if (!w) return;
#ifndef CAS_NO_THREADS
    cas__helper_end(&w->helper);
#endif
    cas_codec_free(w->codec);
    cas_hasher_free(w->hasher);
    a = w->alloc;
    cas__free(&a, w);
}

CASDEF int cas_writer_create(cas_writer **out, int format, const cas_allocator *alloc) {
    cas_writer *w;
    int r;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!(w = (cas_writer *)cas__obj_new(sizeof *w, alloc))) return CAS_E_NOMEM;
    w->hash_algo = CAS_HASH_DEFAULT, w->threads = 2;
    if ((r = cas_writer_reset(w, format ? format : CAS_FORMAT_V1)) < 0) {
        cas_writer_free(w);
        return r;
    }
    *out = w;
    return CAS_OK;
}

CASDEF int cas_writer_set_param(cas_writer *w, int param, int64_t v) {
    const cas__param_row *row = cas__param_row_of(param);
    int r;
    if (!w) return CAS_E_ARG;
    if ((r = cas__param_check(row, CAS__FOR_WRITER, v)) < 0) return r;
    if (param == CAS_PARAM_HASH) {
        w->hash_algo = (int)v;
    } else if (param == CAS_PARAM_THREADS) {
        w->threads = (int)v;
        return CAS_OK;
    } else {
        size_t i = (size_t)(row - cas__codec_params);
        w->params[i] = v, w->params_set |= 1u << i; /* for this codec and the next */
        if ((r = cas_codec_reset(w->codec)) < 0) return r;
        if ((r = cas_codec_set_param(w->codec, param, v)) < 0 && r != CAS_E_ARG) return r;
    }
    return cas_writer_reset(w, 0);
}

/* The blob alone, for a caller that has the key already: no hashing. The writer
 * is fresh from a reset. CAS_NEED_OUTPUT when cap is short. */
static int cas__writer_encode(cas_writer *w, const void *in, size_t n, void *out, size_t cap, size_t *len) {
    int rc = cas_codec_encode_all(w->codec, in, n, out, cap, len);
    return rc > 0 ? CAS_NEED_OUTPUT : rc; /* encode_all only stops short when out is too small */
}

CASDEF int cas_writer_update(cas_writer *w, const void *in, size_t n, size_t *in_used, void *out, size_t cap,
                             size_t *out_made) {
    size_t u = 0, m = 0;
    int r;
    if (in_used) *in_used = 0;
    if (out_made) *out_made = 0;
    if (!w || (!in && n)) return CAS_E_ARG;
    if (w->done) return CAS_E_STATE;
    r = cas_codec_update(w->codec, in, n, &u, out, cap, &m, 0);
    if (u) cas_hasher_update(w->hasher, in, u);
    if (in_used) *in_used = u;
    if (out_made) *out_made = m;
    return r;
}

CASDEF int cas_writer_finish(cas_writer *w, void *out, size_t cap, size_t *out_made) {
    size_t u = 0, m = 0;
    int r;
    if (out_made) *out_made = 0;
    if (!w) return CAS_E_ARG;
    if (w->done) return CAS_DONE;
    r = cas_codec_update(w->codec, NULL, 0, &u, out, cap, &m, 1);
    if (out_made) *out_made = m;
    if (r == CAS_DONE) {
        int hr = cas_hasher_final(w->hasher, w->key);
        if (hr < 0) return hr;
        w->done = 1;
    }
    return r;
}

CASDEF int cas_writer_key(const cas_writer *w, char key[CAS_KEY_BUF]) {
    if (!w || !key) return CAS_E_ARG;
    if (!w->done) return CAS_E_STATE;
    memcpy(key, w->key, CAS_KEY_BUF);
    return CAS_OK;
}

CASDEF int cas_writer_meta(const cas_writer *w, char *buf, size_t cap, size_t *len) {
    if (!w) return CAS_E_ARG;
    return cas_meta_json(w->format, buf, cap, len);
}

CASDEF uint64_t cas_writer_total_in(const cas_writer *w) { return w ? cas_codec_total_in(w->codec) : 0; }
CASDEF uint64_t cas_writer_total_out(const cas_writer *w) { return w ? cas_codec_total_out(w->codec) : 0; }
CASDEF uint64_t cas_writer_size_in(const cas_writer *w) { return cas_writer_total_in(w); }
CASDEF uint64_t cas_writer_size_out(const cas_writer *w) { return cas_writer_total_out(w); }
CASDEF int cas_writer_format(const cas_writer *w) { return w ? w->format : 0; }

CASDEF size_t cas_pack_bound(int format, size_t n) { return cas_encode_bound(cas_format_codec(format), n); }

/* A mutex that compiles away under CAS_NO_THREADS. */
#ifndef CAS_NO_THREADS
typedef pthread_mutex_t cas__mutex;
static int cas__mu_init(cas__mutex *m) { return pthread_mutex_init(m, NULL) == 0 ? 0 : -1; }
static void cas__mu_lock(cas__mutex *m) { pthread_mutex_lock(m); }
static void cas__mu_unlock(cas__mutex *m) { pthread_mutex_unlock(m); }
static void cas__mu_destroy(cas__mutex *m) { pthread_mutex_destroy(m); }
#else
typedef int cas__mutex;
static int cas__mu_init(cas__mutex *m) {
    *m = 0;
    return 0;
}
static void cas__mu_lock(cas__mutex *m) { (void)m; }
static void cas__mu_unlock(cas__mutex *m) { (void)m; }
static void cas__mu_destroy(cas__mutex *m) { (void)m; }
#endif

/* Runs fn(arg) on the caller's thread and on threads - 1 more (threads <= 0: 2,
 * at most 16); returns when all have. Without threads, on the caller's alone. */
static void cas__workers(void *arg, int threads, void *(*fn)(void *)) {
#ifndef CAS_NO_THREADS
    pthread_t th[16];
    int i, started = 0;
    if (threads <= 0) threads = 2;
    if (threads > 16) threads = 16;
    for (i = 1; i < threads; i++) /* a thread that cannot start leaves its share to the others */
        if (pthread_create(&th[started], NULL, fn, arg) == 0) started++;
    fn(arg);
    for (i = 0; i < started; i++) pthread_join(th[i], NULL);
#else
    (void)threads;
    fn(arg);
#endif
}

CASDEF int cas_pack(cas_writer *w, const void *in, size_t n, void *out, size_t cap, size_t *blob_len,
                    char key[CAS_KEY_BUF]) {
    cas_writer *tmp = NULL;
    size_t len = 0;
    int r, hashed = 0;
    if (blob_len) *blob_len = 0;
    if ((!in && n) || !key) return CAS_E_ARG;
    key[0] = 0;
    if (!w) {
        if ((r = cas_writer_create(&tmp, CAS_FORMAT_V1, NULL)) < 0) return r;
        w = tmp;
    } else if ((r = cas_writer_reset(w, 0)) < 0) {
        return r;
    }
#ifndef CAS_NO_THREADS
    /* the hash beside the compression, on the writer's kept helper */
    if (w->threads > 1 && n >= CAS__PARALLEL_MIN && cas__helper_ready(w)) {
        cas__hash_job job;
        job.algo = w->hash_algo, job.data = in, job.n = n, job.rc = CAS_E_STATE;
        cas__helper_post(&w->helper, &job);
        r = cas_codec_encode_all(w->codec, in, n, out, cap, &len);
        if (!cas__helper_finish(&w->helper)) job.rc = cas_hash(job.algo, in, n, job.key);
        if (r == CAS_DONE && job.rc < 0) r = job.rc;
        memcpy(w->key, job.key, CAS_KEY_BUF);
        hashed = 1;
    }
#endif
    if (!hashed) { /* the writer's own hasher: its context is already set up */
        r = cas_codec_encode_all(w->codec, in, n, out, cap, &len);
        if (r == CAS_DONE && (r = cas_hasher_update(w->hasher, in, n)) == CAS_OK)
            r = cas_hasher_final(w->hasher, w->key);
        if (r == CAS_OK) r = CAS_DONE;
    }
    if (r == CAS_DONE) {
        w->done = 1;
        memcpy(key, w->key, CAS_KEY_BUF);
        if (blob_len) *blob_len = len;
    } else if (r > 0) {
        r = CAS_NEED_OUTPUT; /* encode_all only stops short when out is too small */
    }
    cas_writer_free(tmp);
    return r;
}
