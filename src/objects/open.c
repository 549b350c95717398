/* ---- the backend: settings, lifetime ---------------------------------------- */

static int cas__cloud_set_param(void *u, int param, int64_t v) {
    cas__cloud *cs = (cas__cloud *)u;
    int k = cas__cloud_param_index(param), rc;
    if ((rc = cas__param_check(k < 0 ? NULL : &cas__cloud_params[k], CAS__FOR_BACKEND, v)) < 0) return rc;
    cs->param[k] = v;
    return CAS_OK;
}

static void cas__cloud_destroy(void *u) {
    cas__cloud *cs = (cas__cloud *)u;
    cas_allocator a;
    if (!cs) return;
    while (cs->easy.n) curl_easy_cleanup((CURL *)cs->easy.item[--cs->easy.n]);
    while (cs->multi.n) curl_multi_cleanup((CURLM *)cs->multi.item[--cs->multi.n]);
    if (cs->cred) cas__cred_destroy(cs->cred);
    cas__mu_destroy(&cs->cmu);
    cas__mu_destroy(&cs->pmu);
    a = cs->alloc;
    cas__free(&a, cs->bucket);
    cas__free(&a, cs->endpoint);
    cas__free(&a, cs->write_header);
    cas__free(&a, cs->ca_bundle);
    cas__free(&a, cs->own);
    cas__free(&a, cs);
}

static char *cas__strdup_a(const cas_allocator *a, const char *s, size_t n) {
    char *p = (char *)cas__alloc(a, n + 1);
    if (p) memcpy(p, s, n), p[n] = 0;
    return p;
}
