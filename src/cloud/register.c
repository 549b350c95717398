CASDEF int cas_cloud_backend(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    if (!out || !url) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    memset(out, 0, sizeof *out);
    if (!strncmp(url, "s3://", 5)) return cas__s3_backend(out, url, alloc, err, errcap);
    if (!strncmp(url, "azure://", 8)) return cas__az_backend(out, url, alloc, err, errcap);
    return cas__serr(err, errcap, CAS_E_UNSUPPORTED, "'%.300s': cas_cloud.h knows s3:// and azure:// roots", url);
}

CASDEF int cas_cloud_register(int (*add)(const char *scheme, cas_backend_opener open)) {
    int rc;
    if (!add) return CAS_E_ARG;
    rc = add("s3", cas_cloud_backend);
    return rc < 0 ? rc : add("azure", cas_cloud_backend);
}
