/* ---- the backend's state ------------------------------------------------- */

/* How a request proves who sends it. */
enum { CAS__AUTH_SIGV4, CAS__AUTH_SHARED_KEY, CAS__AUTH_SAS, CAS__AUTH_BEARER };

typedef struct cas__cred {
    int refs, kind;  /* kind: CAS__AUTH_*; akid is Azure's account name, secret its key, token a SAS or bearer token */
    int64_t expires; /* 0: does not expire */
    char *akid, *secret, *token; /* inside page; token "" when none */
    void *page;
    size_t page_len;
} cas__cred;

typedef struct cas__pool {
    void *item[32];
    int n;
} cas__pool;

/* What differs between S3 and Azure Blob Storage, the two dialects one backend
 * speaks (the table rows, cas__s3_dialect and cas__az_dialect, are below the
 * functions they name). */
typedef struct cas__dialect cas__dialect;
#define CAS__PART_ID 64 /* a part's name in the completion: Azure's base64 block id (36 bytes) */
struct cas__cloudw;
struct cas__rq;

typedef struct cas__cloud {
    cas_allocator alloc;
    char *bucket, *prefix;          /* prefix is "" or ends with '/' */
    char *endpoint;                 /* scheme://host[:port][/path], no trailing '/' */
    char *write_header, *ca_bundle; /* write_header: a line every write carries (S3: the encryption asked for) */
    int path_style;
    const cas__dialect *d; /* S3's or Azure's (where the bucket is the container) */
    void *own;             /* what only the dialect reads (S3: the region, the profile); plain memory */
    char url[1100];        /* "s3://bucket/prefix": what messages call the store */
    int64_t param[CAS__CLOUD_NPARAMS];
    cas__mutex cmu; /* the credentials */
    cas__cred *cred;
    int cred_source;
    cas__mutex pmu; /* the handle pools and the random state */
    cas__pool easy, multi;
    uint64_t rng;
    int64_t down_until; /* ms: the endpoint was unreachable just now */
} cas__cloud;

/* ---- the two dialects ------------------------------------------------------ */

struct cas__dialect {
    const char *meta_header; /* the user metadata Metaflow's clients write, in one header */
    const char *put_header;  /* what a whole-object PUT also says (Azure: the blob type), or NULL */
    int root_slash;          /* a request to the bucket itself ends in '/' (S3; Azure: "container?...") */
    int drops_uploads;       /* the service drops unfinished multipart uploads itself: none to abort or collect */
    int cred_last;           /* the credential chain's last link */
    int (*cred_link)(cas__cloud *cs, int which, cas__cred **out, char *msg, size_t cap);
    void (*no_creds)(const cas__cloud *cs, char *msg, size_t cap); /* where the chain looked, in vain */
    /* a listing page's query, every parameter in sorted order (SigV4 signs it as written) */
    void (*list_query)(const cas__cloud *cs, cas__buf *q, const char *strip, const char *next, int delimiter);
    int (*upload_begin)(struct cas__cloudw *w, char *msg, size_t cap);
    /* part n's query; id (CAS__PART_ID bytes): what its entry in the completion names it by */
    void (*part_query)(struct cas__cloudw *w, int n, cas__buf *q, char *id);
    /* the part's entry in the completion, if the answer r says it is in (else 0) */
    int (*part_entry)(const struct cas__rq *r, int n, const char *id, char *entry, size_t cap);
    const char *complete_method, *complete_open, *complete_close;
    void (*complete_query)(struct cas__cloudw *w, cas__buf *q);
    int complete_meta; /* the completion carries the metadata (Azure); S3 took it at the start */
    /* judges the completion's answer: CAS_OK (the upload is done) or why not */
    int (*complete_answer)(struct cas__cloudw *w, struct cas__rq *r, char *msg, size_t cap);
    int (*set_meta)(struct cas__cloudw *w, int *stored, char *msg, size_t cap); /* new metadata, the same bytes */
    /* its own settings' names: CAS_S3_X is, for this dialect, env_prefix + X first,
     * then CAS_S3_X (the name every dialect took before) */
    const char *env_prefix;
    /* signs a request (r->sign) with the credentials c: headers into *h, curl
     * options on e. CAS_OK, or CAS_E_NOMEM */
    int (*authorize)(cas__cloud *cs, CURL *e, const struct cas__rq *r, const cas__cred *c, struct curl_slist **h);
    const char *code_header; /* a header that carries the error code (Azure's, also on a HEAD), or NULL */
    /* refuses, at open, credentials this store's endpoint may not be sent: CAS_OK or
     * an error with the reason in msg; NULL: any may go */
    int (*cred_check)(const cas__cloud *cs, const cas__cred *c, char *msg, size_t cap);
};


static int64_t cas__cloudp(const cas__cloud *cs, int id) { return cs->param[cas__cloud_param_index(id)]; }

static uint64_t cas__cloud_random(cas__cloud *cs) {
    uint64_t x;
    cas__mu_lock(&cs->pmu);
    x = cs->rng ^= cs->rng << 13, x = cs->rng ^= cs->rng >> 7, x = cs->rng ^= cs->rng << 17;
    cas__mu_unlock(&cs->pmu);
    return x;
}

#ifndef CAS_NO_THREADS
static pthread_once_t cas__curl_once = PTHREAD_ONCE_INIT;
#endif
static CURLcode cas__curl_init_rc = CURLE_FAILED_INIT;

/* libcurl's memory, wiped when it is freed: its request buffers held the
 * Authorization header or the session token, its receive buffers a credentials
 * answer. Each block carries its size in front (a portable malloc_usable_size). */
#define CAS__CW_HDR 16
static void *cas__cw_malloc(size_t n) {
    unsigned char *b = n <= (size_t)-1 - CAS__CW_HDR ? (unsigned char *)malloc(n + CAS__CW_HDR) : NULL;
    if (!b) return NULL;
    memcpy(b, &n, sizeof n);
    return b + CAS__CW_HDR;
}

static size_t cas__cw_size(void *p) {
    size_t n;
    memcpy(&n, (unsigned char *)p - CAS__CW_HDR, sizeof n);
    return n;
}

static void cas__cw_free(void *p) {
    if (!p) return;
    cas__wipe(p, cas__cw_size(p));
    free((unsigned char *)p - CAS__CW_HDR);
}

static void *cas__cw_realloc(void *p, size_t n) { /* moves, so that the old block is wiped */
    void *q;
    if (!p) return cas__cw_malloc(n);
    if (!(q = cas__cw_malloc(n ? n : 1))) return NULL;
    memcpy(q, p, CAS__MIN(n, cas__cw_size(p)));
    cas__cw_free(p);
    return q;
}

static char *cas__cw_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)cas__cw_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void *cas__cw_calloc(size_t k, size_t n) {
    void *p = k && n > (size_t)-1 / k ? NULL : cas__cw_malloc(k * n);
    if (p) memset(p, 0, k * n);
    return p;
}

/* libcurl takes these only when it is first initialised in the process: a program
 * that set libcurl up before cas.h keeps its own allocator (see "Secrets" above). */
static void cas__curl_init(void) {
    cas__curl_init_rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, cas__cw_malloc, cas__cw_free, cas__cw_realloc,
                                             cas__cw_strdup, cas__cw_calloc);
}

static int cas__curl_ready(void) {
#ifndef CAS_NO_THREADS
    pthread_once(&cas__curl_once, cas__curl_init);
#else
    if (cas__curl_init_rc != CURLE_OK) cas__curl_init();
#endif
    return cas__curl_init_rc == CURLE_OK;
}

/* Pools of libcurl handles: a handle keeps its connections open for the next request. */
static void *cas__pool_take(cas__cloud *cs, cas__pool *p) {
    void *x = NULL;
    cas__mu_lock(&cs->pmu);
    if (p->n) x = p->item[--p->n];
    cas__mu_unlock(&cs->pmu);
    return x;
}

/* NULL, or the handle when the pool is full (the caller frees it). */
static void *cas__pool_give(cas__cloud *cs, cas__pool *p, void *x) {
    cas__mu_lock(&cs->pmu);
    if (p->n < (int)(sizeof p->item / sizeof p->item[0])) p->item[p->n++] = x, x = NULL;
    cas__mu_unlock(&cs->pmu);
    return x;
}

static CURL *cas__easy_get(cas__cloud *cs) {
    CURL *e = (CURL *)cas__pool_take(cs, &cs->easy);
    return e ? e : curl_easy_init();
}

/* Back to the pool: reset drops every option (libcurl's copy of a secret with
 * them) but keeps the handle's open connections for the next request. */
static void cas__easy_put(cas__cloud *cs, CURL *e) {
    if (!e) return;
    curl_easy_reset(e);
    if ((e = (CURL *)cas__pool_give(cs, &cs->easy, e)) != NULL) curl_easy_cleanup(e);
}

/* Multi handles keep their own connection caches: pooled, they are reused. */
static CURLM *cas__multi_get(cas__cloud *cs) {
    CURLM *m = (CURLM *)cas__pool_take(cs, &cs->multi);
    return m ? m : curl_multi_init();
}

static void cas__multi_put(cas__cloud *cs, CURLM *m) {
    if (!m) return;
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L); /* a batch's limits are not the next user's */
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    if ((m = (CURLM *)cas__pool_give(cs, &cs->multi, m)) != NULL) curl_multi_cleanup(m);
}
