/* ---- the backend: settings, lifetime ---------------------------------------- */

static int cas__s3_set_param(void *u, int param, int64_t v) {
    cas__s3 *s3 = (cas__s3 *)u;
    int k = cas__s3_param_index(param), rc;
    if ((rc = cas__param_check(k < 0 ? NULL : &cas__s3_params[k], CAS__FOR_BACKEND, v)) < 0) return rc;
    s3->param[k] = v;
    return CAS_OK;
}

static void cas__s3_destroy(void *u) {
    cas__s3 *s3 = (cas__s3 *)u;
    cas_allocator a;
    if (!s3) return;
    while (s3->easy.n) curl_easy_cleanup((CURL *)s3->easy.item[--s3->easy.n]);
    while (s3->multi.n) curl_multi_cleanup((CURLM *)s3->multi.item[--s3->multi.n]);
    if (s3->cred) cas__cred_destroy(s3->cred);
    cas__mu_destroy(&s3->cmu);
    cas__mu_destroy(&s3->pmu);
    a = s3->alloc;
    cas__free(&a, s3->bucket);
    cas__free(&a, s3->endpoint);
    cas__free(&a, s3->write_header);
    cas__free(&a, s3->ca_bundle);
    cas__free(&a, s3->own);
    cas__free(&a, s3);
}

static char *cas__strdup_a(const cas_allocator *a, const char *s, size_t n) {
    char *p = (char *)cas__alloc(a, n + 1);
    if (p) memcpy(p, s, n), p[n] = 0;
    return p;
}
