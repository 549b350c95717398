/* ---- names ---- */

CASDEF int cas_name_check(const char *name) {
    size_t i;
    if (!name || !name[0] || name[0] == '.') return CAS_E_NAME;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        if (i >= 255) return CAS_E_NAME;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return CAS_E_NAME;
    }
    return CAS_OK;
}

CASDEF int cas_part_check(const char *name) {
    if (cas_name_check(name) < 0 || !strcmp(name, "_meta") || !strcmp(name, "data")) return CAS_E_NAME;
    return CAS_OK;
}

/* Splits "a/b/c/d" into `want` valid parts of at most 255 bytes. */
static int cas__split(const char *spec, char parts[][256], int want) {
    int k = 0;
    const char *p = spec;
    if (!spec) return CAS_E_NAME;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (k == want || l == 0 || l > 255) return CAS_E_NAME;
        memcpy(parts[k], p, l), parts[k][l] = 0;
        if (cas_name_check(parts[k]) < 0) return CAS_E_NAME;
        k++;
        if (!e) break;
        p = e + 1;
    }
    return k == want ? CAS_OK : CAS_E_NAME;
}

CASDEF int cas_pathspec_check(const char *pathspec) {
    char parts[4][256];
    return cas__split(pathspec, parts, 4);
}

static int cas__key_ok(const char *key) { return key && cas_key_check(key, strlen(key), NULL) == CAS_OK; }

CASDEF int cas_store_blob_name(const char *flow, const char *key, char *buf, size_t cap) {
    int n;
    if (cas_name_check(flow) < 0) return CAS_E_NAME;
    if (!cas__key_ok(key)) return CAS_E_KEY;
    n = snprintf(buf, cap, "%s/data/%.2s/%s", flow, key, key);
    return n < 0 || (size_t)n >= cap ? CAS_NEED_OUTPUT : CAS_OK;
}
