/* ---- many blobs at once ---------------------------------------------------- */

typedef struct cas__job {
    size_t weight, job;
} cas__job;

typedef struct cas__many {
    size_t count, jobs, next, first_i; /* jobs: count, or 2 * count when large items split */
    const void *const *in;
    const size_t *in_len, *cap;
    void *const *out;
    size_t *out_len;
    char *keys;               /* pack: written */
    const char *const *vkeys; /* unpack: checked */
    const int *formats;       /* unpack */
    const int *fds;           /* unpack from files */
    int format, algo, inner, first_rc;
    int *status;
    int *hash_rc;    /* pack, split: job count + i hashes large item i (its status here) */
    cas__job *order; /* the jobs as workers take them, largest first; NULL: index order */
    cas__mutex mu;
} cas__many;

static int cas__job_cmp(const void *a, const void *b) {
    const cas__job *x = (const cas__job *)a, *y = (const cas__job *)b;
    if (x->weight != y->weight) return x->weight > y->weight ? -1 : 1;
    return x->job < y->job ? -1 : x->job > y->job;
}

/* Largest first (LPT): the item that takes longest starts first, and the small ones
 * fill in on the other cores, rather than a large item taken last holding one core
 * while the rest wait. A job weighs its output room (a decode's size) or input
 * length. Without memory for the order, index order: the same results, slower. */
static void cas__many_order(cas__many *m) {
    size_t j;
    if (m->jobs < 2 || !(m->order = (cas__job *)CAS_MALLOC(m->jobs * sizeof *m->order))) return;
    for (j = 0; j < m->jobs; j++) {
        size_t i = j % m->count;
        m->order[j].weight = m->out ? m->cap[i] : m->in_len[i];
        m->order[j].job = j;
    }
    qsort(m->order, m->jobs, sizeof *m->order, cas__job_cmp);
}

static size_t cas__many_take(cas__many *m) {
    size_t i;
    cas__mu_lock(&m->mu);
    i = m->next++;
    cas__mu_unlock(&m->mu);
    return m->order && i < m->jobs ? m->order[i].job : i;
}

static void cas__many_done(cas__many *m, size_t i, int rc) {
    if (m->status) m->status[i] = rc;
    if (rc == CAS_OK) return;
    cas__mu_lock(&m->mu);
    if (m->first_rc == CAS_OK || i < m->first_i) m->first_rc = rc, m->first_i = i;
    cas__mu_unlock(&m->mu);
}

/* One worker's share of a pack: its own writer, reused item after item. */
static void *cas__pack_worker(void *arg) {
    cas__many *m = (cas__many *)arg;
    cas_writer *w = NULL;
    size_t i, j;
    int made = cas_writer_create(&w, m->format, NULL);
    if (made == CAS_OK) made = cas_writer_set_param(w, CAS_PARAM_THREADS, m->inner);
    if (made == CAS_OK && m->algo) made = cas_writer_set_param(w, CAS_PARAM_HASH, m->algo);
    while ((j = cas__many_take(m)) < m->jobs) {
        char *key;
        size_t len = 0;
        int rc = made, split;
        i = j < m->count ? j : j - m->count;
        key = m->keys ? m->keys + i * CAS_KEY_BUF : NULL;
        /* a large item's hash is a job of its own, so both cores share the largest items */
        split = m->hash_rc && m->in_len[i] >= CAS__PARALLEL_MIN;
        if (rc == CAS_OK && !m->in[i] && m->in_len[i]) rc = CAS_E_ARG;
        if (j >= m->count) {
            if (split) m->hash_rc[i] = rc == CAS_OK ? cas_hash(w->hash_algo, m->in[i], m->in_len[i], key) : rc;
            continue;
        }
        if (rc == CAS_OK) {
            if (m->out && key && !split) {
                rc = cas_pack(w, m->in[i], m->in_len[i], m->out[i], m->cap[i], &len, key);
            } else if (m->out) {
                if ((rc = cas_writer_reset(w, 0)) == CAS_OK)
                    rc = cas__writer_encode(w, m->in[i], m->in_len[i], m->out[i], m->cap[i], &len);
            } else {
                rc = cas_hash(w->hash_algo, m->in[i], m->in_len[i], key);
            }
        }
        if (m->out_len) m->out_len[i] = len;
        cas__many_done(m, i, rc);
    }
    cas_writer_free(w);
    return NULL;
}

/* One worker's share of an unpack: its own reader, reused. */
static void *cas__unpack_worker(void *arg) {
    cas__many *m = (cas__many *)arg;
    cas_reader *r = NULL;
    size_t i;
    int made = cas_reader_create(&r, NULL);
    while ((i = cas__many_take(m)) < m->count) {
        const cas__format_row *f = cas__format_find(m->formats[i]);
        int rc = f ? made : CAS_E_ARG;
        const char *meta = f ? f->meta : NULL; /* a format without a sidecar (legacy) is read as such */
        size_t meta_len = meta ? strlen(meta) : 0;
        uint64_t size = 0;
        m->out_len[i] = 0;
        /* sizes alone: a size the blob states is the answer (what a decode into no
         * room ends with), without setting up its decoder; the rest are decoded so */
        if (rc == CAS_OK && !m->out && cas_reader_begin(r, meta, meta_len, NULL, NULL) == CAS_OK &&
            cas_reader_size_hint(r, m->in[i], m->in_len[i], &size) == CAS_OK && size && size <= (size_t)-1) {
            m->out_len[i] = (size_t)size;
            rc = CAS_NEED_OUTPUT;
        } else if (rc == CAS_OK) {
            rc = cas_reader_decode(r, meta, meta_len, NULL, m->vkeys ? m->vkeys[i] : NULL, m->in[i], m->in_len[i],
                                   m->out ? m->out[i] : NULL, m->out ? m->cap[i] : 0, &m->out_len[i]);
        }
        cas__many_done(m, i, rc);
    }
    cas_reader_free(r);
    return NULL;
}

static int cas__many_run(cas__many *m, int threads, void *(*fn)(void *)) {
    if (threads <= 0) threads = 2;
    /* spare threads go inside the items (cas_pack's hash beside its compression) */
    m->inner = m->count == 1 && threads > 1 ? 2 : 1;
    if (!m->jobs) m->jobs = m->count;
    if ((size_t)threads > m->count) threads = (int)(m->count ? m->count : 1);
    if (!m->count) return CAS_OK;
    if (cas__mu_init(&m->mu) < 0) return CAS_E_NOMEM;
    if (threads > 1) cas__many_order(m);
    cas__workers(m, threads, fn);
    if (m->order) CAS_FREE(m->order);
    cas__mu_destroy(&m->mu);
    return m->first_rc;
}

CASDEF int cas_pack_many(int format, int algo, size_t count, const void *const *in, const size_t *in_len,
                         void *const *out, const size_t *cap, size_t *out_len, char *keys, int *status, int threads) {
    cas__many m;
    int rc;
    if (count && (!in || !in_len || (!out && !keys) || (out && (!cap || !out_len)))) return CAS_E_ARG;
    memset(&m, 0, sizeof m);
    m.format = format, m.algo = algo, m.count = count, m.in = in, m.in_len = in_len, m.out = out, m.cap = cap;
    m.out_len = out_len, m.keys = keys, m.status = status;
    if (out && keys && count > 1 && threads != 1) { /* threads <= 0: the default, 2 */
        size_t i;
        for (i = 0; i < count && in_len[i] < CAS__PARALLEL_MIN; i++) {
        }
        /* without the room for the hashes' statuses, items are not split */
        if (i < count && (m.hash_rc = (int *)CAS_MALLOC(count * sizeof *m.hash_rc)) != NULL) {
            memset(m.hash_rc, 0, count * sizeof *m.hash_rc);
            m.jobs = 2 * count;
        }
    }
    rc = cas__many_run(&m, threads, cas__pack_worker);
    if (m.hash_rc) { /* the workers are done: a hash's failure joins its item's */
        size_t i;
        for (i = 0; i < count; i++) {
            if (m.hash_rc[i] == CAS_OK || (status && status[i] < 0)) continue;
            if (status) status[i] = m.hash_rc[i];
            if (rc == CAS_OK || i < m.first_i) rc = m.hash_rc[i], m.first_i = i;
        }
        CAS_FREE(m.hash_rc);
    }
    return rc;
}

CASDEF int cas_unpack_many(size_t count, const int *format, const void *const *in, const size_t *in_len,
                           void *const *out, const size_t *cap, size_t *out_len, const char *const *keys, int *status,
                           int threads) {
    cas__many m;
    if (count && (!format || !in || !in_len || !out_len || (out && !cap))) return CAS_E_ARG;
    memset(&m, 0, sizeof m);
    m.count = count, m.formats = format, m.in = in, m.in_len = in_len, m.out = out, m.cap = cap;
    m.out_len = out_len, m.vkeys = keys, m.status = status;
    /* sizes alone cost less than starting a thread */
    return cas__many_run(&m, out ? threads : 1, cas__unpack_worker);
}
