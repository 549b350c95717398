/* ---- a new object-store backend: the root, the settings, the credentials ------------ */

/* The variable that sets a parameter for dialect d, or NULL: the dialect's own name
 * (CAS_AZURE_CONNECTIONS), else the one all dialects took first (CAS_S3_CONNECTIONS). */
static const char *cas__cloud_env(const cas__dialect *d, const char *name, char *own, size_t cap) {
    if (name && !strncmp(name, "CAS_S3_", 7) && strcmp(d->env_prefix, "CAS_S3_")) {
        snprintf(own, cap, "%s%s", d->env_prefix, name + 7);
        if (cas__env(own)) return own;
    }
    return name && cas__env(name) ? name : NULL;
}

/* What every object store starts with: "SCHEME://BUCKET[/PREFIX]" split, the
 * parameters from their table and the environment, the locks. */
static int cas__cloud_new(cas__cloud **out, const cas__dialect *d, const char *url, size_t scheme_len,
                          int (*name_ok)(const char *, size_t), const char *form, const cas_allocator *alloc, char *err,
                          size_t errcap) {
    cas__cloud *cs;
    const char *rest = url + scheme_len, *slash = strchr(rest, '/'), *v;
    size_t bl = slash ? (size_t)(slash - rest) : strlen(rest), k, pl;
    *out = NULL;
    if (!name_ok(rest, bl)) return cas__serr(err, errcap, CAS_E_ARG, "'%.300s' is not %s", url, form);
    if (!cas__curl_ready()) return cas__serr(err, errcap, CAS_E_UNSUPPORTED, "libcurl failed to initialise");
    if (!(cs = (cas__cloud *)cas__calloc(alloc, sizeof *cs)))
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    cas__copy_allocator(&cs->alloc, alloc);
    cs->d = d;
    if (cas__mu_init(&cs->cmu) < 0 || cas__mu_init(&cs->pmu) < 0) {
        cas__free(alloc, cs);
        return cas__serr(err, errcap, CAS_E_NOMEM, "cannot create a mutex");
    }
    /* bucket and prefix share one allocation: "bucket\0prefix/" */
    v = slash ? slash : "";
    while (*v == '/') v++;
    pl = strlen(v);
    while (pl && v[pl - 1] == '/') pl--;
    if (!(cs->bucket = (char *)cas__alloc(&cs->alloc, bl + pl + 3))) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    memcpy(cs->bucket, rest, bl), cs->bucket[bl] = 0;
    cs->prefix = cs->bucket + bl + 1;
    memcpy(cs->prefix, v, pl), cs->prefix[pl] = 0;
    if (pl) cs->prefix[pl] = '/', cs->prefix[pl + 1] = 0;
    snprintf(cs->url, sizeof cs->url, "%.*s%s%s%.*s", (int)scheme_len, url, cs->bucket, pl ? "/" : "", (int)pl, v);
    for (k = 0; k < CAS__CLOUD_NPARAMS; k++) { /* defaults, then the environment's */
        const cas__param_row *p = &cas__cloud_params[k];
        char own[64];
        const char *name = cas__cloud_env(d, p->env, own, sizeof own);
        cs->param[k] = p->dflt;
        if (name && (v = cas__env(name)) != NULL) {
            char *end;
            double scaled = strtod(v, &end) * (double)p->env_scale;
            if (*end || !(scaled >= (double)p->lo && scaled <= (double)p->hi)) { /* NaN and 1e300 too */
                cas__cloud_destroy(cs);
                return cas__serr(err, errcap, CAS_E_ARG, "%s=%.40s is out of range", name, v);
            }
            cs->param[k] = (int64_t)scaled;
        }
    }
    cs->rng = (uint64_t)cas__ms() * 6364136223846793005ULL ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)cs;
    if (!cs->rng) cs->rng = 88172645463325252ULL;
    *out = cs;
    return CAS_OK;
}

/* A server on this machine (127.0.0.0/8, localhost, [::1]): one stream from it is not
 * the limit, so large objects are read in one GET unless CAS_S3_RANGED_MIN says otherwise. */
static int cas__endpoint_local(const char *endpoint) {
    char scheme[16], host[256];
    int user = 0;
    return cas__url_host(endpoint, scheme, sizeof scheme, host, sizeof host, &user) == CAS_OK &&
           cas__host_loopback(host);
}

/* The store's credentials now, so that a store with none fails at open, not at
 * its first read; then the backend's callbacks (one set for every object store). */
static int cas__cloud_ready(cas__cloud *cs, cas_backend *out, const char *url, char *err, size_t errcap) {
    char why[CAS__MSG], own[64];
    cas__cred *c = NULL;
    int rc, ranged = cas__cloud_param_index(CAS_PARAM_CLOUD_RANGED_MIN);
    if (cas__endpoint_local(cs->endpoint) && !cas__cloud_env(cs->d, cas__cloud_params[ranged].env, own, sizeof own))
        cs->param[ranged] = 0; /* see cas__ahead_start */
    rc = cas__cred_get(cs, 0, &c, why, sizeof why);
    if (rc == CAS_OK && cs->d->cred_check) rc = cs->d->cred_check(cs, c, why, sizeof why);
    cas__cred_unref(cs, c);
    if (rc < 0) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, rc, "Cannot open '%.300s': %s", url, why);
    }
    memset(out, 0, sizeof *out);
    out->user = cs, out->root = cs->url, out->flags = CAS_BACKEND_REMOTE;
    out->open = cas__cloud_open, out->read = cas__cloud_read, out->close = cas__cloud_close;
    out->create = cas__cloud_create, out->write = cas__cloud_write, out->commit = cas__cloud_commit;
    out->abort = cas__cloud_abort, out->exists = cas__cloud_exists, out->list = cas__cloud_list;
    out->remove = cas__cloud_remove, out->gc = cas__cloud_gc, out->set_param = cas__cloud_set_param;
    out->fetch = cas__cloud_fetch, out->destroy = cas__cloud_destroy;
    return CAS_OK;
}
