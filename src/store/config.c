/* ---- Metaflow's configuration ---- */

/* The value of "METAFLOW_<name>" in a config.json, if the file has one. */
static int cas__config_file(const char *path, const char *key, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = CAS_E_NOTFOUND;
    unsigned char *text = NULL;
    size_t n = 0, tok;
    cas__json j;
    if (fd < 0) return CAS_E_NOTFOUND;
    if (cas__read_all(fd, NULL, (size_t)1 << 20, &text, &n) != 0) {
        close(fd);
        return CAS_E_NOTFOUND;
    }
    close(fd);
    if (cas__json_parse(&j, (const char *)text, n, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ &&
        (tok = cas__json_get(&j, 0, key)) != 0) {
        if (j.t[tok].type == CAS__J_STR) {
            rc = cas__json_str(&j, tok, buf, cap) == (size_t)-1 ? CAS_NEED_OUTPUT : CAS_OK;
        } else if (j.t[tok].type != CAS__J_NULL) { /* numbers and booleans as their JSON text */
            size_t l = j.t[tok].end - j.t[tok].start;
            if (l + 1 > cap) rc = CAS_NEED_OUTPUT;
            else memcpy(buf, j.s + j.t[tok].start, l), buf[l] = 0, rc = CAS_OK;
        }
    }
    cas__json_free(&j);
    cas__free(NULL, text);
    return rc;
}

/* The nearest `.metaflow` folder above the working directory (Metaflow's walk). */
static int cas__find_dot_metaflow(char *buf, size_t cap) {
    char cwd[4096];
    struct stat st;
    size_t l;
    if (!getcwd(cwd, sizeof cwd)) return CAS_E_NOTFOUND;
    for (;;) {
        l = strlen(cwd);
        snprintf(buf, cap, "%s/.metaflow", l == 1 ? "" : cwd);
        if (strlen(buf) + 1 < cap && stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return CAS_OK;
        if (l <= 1) return CAS_E_NOTFOUND;
        while (l > 1 && cwd[l - 1] != '/') l--;
        cwd[l > 1 ? l - 1 : 1] = 0;
    }
}

CASDEF int cas_metaflow_config(const char *name, char *buf, size_t cap) {
    char key[300], path[4200];
    const char *v, *home, *profile;
    int rc;
    if (!name || !buf || !cap || strlen(name) > 200) return CAS_E_ARG;
    snprintf(key, sizeof key, "METAFLOW_%s", name);
    if ((v = getenv(key)) != NULL) {
        if (strlen(v) + 1 > cap) return CAS_NEED_OUTPUT;
        memcpy(buf, v, strlen(v) + 1);
        return CAS_OK;
    }
    if (cas__find_dot_metaflow(path, sizeof path - 16) == CAS_OK) { /* the local config */
        strcat(path, "/config.json");
        if ((rc = cas__config_file(path, key, buf, cap)) != CAS_E_NOTFOUND) return rc;
    }
    home = getenv("METAFLOW_HOME");
    profile = getenv("METAFLOW_PROFILE");
    if (home && home[0]) snprintf(path, sizeof path, "%s", home);
    else if ((v = getenv("HOME")) != NULL) snprintf(path, sizeof path, "%s/.metaflowconfig", v);
    else return CAS_E_NOTFOUND;
    if (path[0] == '~' && (v = getenv("HOME")) != NULL) { /* os.path.expanduser */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s%s", v, path + 1);
        snprintf(path, sizeof path, "%s", tmp);
    }
    if (profile && profile[0]) snprintf(path + strlen(path), sizeof path - strlen(path), "/config_%s.json", profile);
    else snprintf(path + strlen(path), sizeof path - strlen(path), "/config.json");
    return cas__config_file(path, key, buf, cap);
}

/* Metaflow's rule for every datastore: its root is DATASTORE_SYSROOT_<NAME>, and a
 * root without a scheme (Azure's "container/prefix") is under the datastore's own
 * name. The backend that serves the scheme is found when the root is opened, so
 * the core names none. */
CASDEF int cas_store_default_root(char *buf, size_t cap, char *err, size_t errcap) {
    char ds[64], var[96], sys[4096];
    size_t i;
    int rc;
    if (!buf || !cap) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    buf[0] = 0;
    rc = cas_metaflow_config("DEFAULT_DATASTORE", ds, sizeof ds);
    if (rc == CAS_NEED_OUTPUT)
        return cas__serr(err, errcap, CAS_E_UNSUPPORTED,
                         "METAFLOW_DEFAULT_DATASTORE is longer than a datastore name (at most 15); pass a root");
    if (rc != CAS_OK) snprintf(ds, sizeof ds, "local");
    /* a name that can be a scheme the registry takes (cas__scheme_ok) and a variable's suffix */
    for (i = 0; ds[i]; i++)
        if (!((ds[i] >= 'a' && ds[i] <= 'z') || (i && ds[i] >= '0' && ds[i] <= '9'))) break;
    if (ds[i] || !i || i > 15)
        return cas__serr(err, errcap, CAS_E_UNSUPPORTED,
                         "METAFLOW_DEFAULT_DATASTORE '%.40s' is not a datastore name (a-z and 0-9, at most 15); "
                         "pass a root",
                         ds);
    if (strcmp(ds, "local")) {
        snprintf(var, sizeof var, "DATASTORE_SYSROOT_");
        for (i = 0; ds[i]; i++) var[18 + i] = (char)(ds[i] >= 'a' && ds[i] <= 'z' ? ds[i] - 'a' + 'A' : ds[i]);
        var[18 + i] = 0;
        rc = cas_metaflow_config(var, sys, sizeof sys);
        if (rc != CAS_OK || !sys[0])
            return cas__serr(err, errcap, CAS_E_NOTFOUND,
                             "METAFLOW_DEFAULT_DATASTORE is '%s' but METAFLOW_%s is not set", ds, var);
        if ((strstr(sys, "://") ? 0 : strlen(ds) + 3) + strlen(sys) + 1 > cap)
            return cas__serr(err, errcap, CAS_NEED_OUTPUT, "root too long");
        if (strstr(sys, "://")) snprintf(buf, cap, "%s", sys);
        else snprintf(buf, cap, "%s://%s", ds, sys);
        return CAS_OK;
    }
    if (cas_metaflow_config("DATASTORE_SYSROOT_LOCAL", sys, sizeof sys - 16) == CAS_OK && sys[0]) {
        if (strlen(sys) + 11 > cap) return cas__serr(err, errcap, CAS_NEED_OUTPUT, "root too long");
        snprintf(buf, cap, "%s/.metaflow", sys);
        return CAS_OK;
    }
    if (cas__find_dot_metaflow(buf, cap) == CAS_OK) return CAS_OK;
    buf[0] = 0;
    return cas__serr(err, errcap, CAS_E_NOTFOUND,
                     "no datastore found: no .metaflow above the working directory and "
                     "METAFLOW_DATASTORE_SYSROOT_LOCAL is not set");
}
