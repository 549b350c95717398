/* ---- Azure: settings ---------------------------------------------------------- */
/* Where Metaflow's Azure datastore and the Azure SDKs look: the blob endpoint
 * (METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT, a connection string's
 * BlobEndpoint, else https://ACCOUNT.blob.core.windows.net), the account
 * (AZURE_STORAGE_ACCOUNT, the connection string's, else the endpoint's: the
 * first label of its host, or on an emulator the first part of its path), and
 * one secret: a shared key (AZURE_STORAGE_KEY or AccountKey=), or a SAS token
 * (AZURE_STORAGE_SAS_TOKEN, SharedAccessSignature=, or the endpoint's query). */

typedef struct cas__az_cfg {
    char endpoint[1024], account[256], key[256], sas[4096];
} cas__az_cfg;

/* A setting into its buffer whole, or not at all: the first that does not fit is
 * named in *cut (a key or a SAS cut short would fail later, unexplained). */
static int cas__setting(char *dst, size_t cap, const char *src, size_t n, const char *name, const char **cut) {
    if (n >= cap) {
        if (!*cut) *cut = name;
        return 0;
    }
    memcpy(dst, src, n), dst[n] = 0;
    return 1;
}

/* "Name=value" of a connection string ("A=1;B=2"), into out; 0 if absent. */
static int cas__conn_get(const char *conn, const char *name, char *out, size_t cap, const char **cut) {
    size_t nl = strlen(name);
    while (conn && *conn) {
        const char *end = strchr(conn, ';');
        size_t l = end ? (size_t)(end - conn) : strlen(conn);
        while (l && *conn == ' ') conn++, l--;
        if (l > nl && conn[nl] == '=' && !strncmp(conn, name, nl))
            return cas__setting(out, cap, conn + nl + 1, l - nl - 1, name, cut);
        conn = end ? end + 1 : NULL;
    }
    return 0;
}

static void cas__az_cfg_wipe(cas__az_cfg *g) { cas__wipe(g, sizeof *g); }

static int cas__az_settings(cas__az_cfg *g, char *msg, size_t cap) {
    const char *conn = cas__env("AZURE_STORAGE_CONNECTION_STRING"), *v, *cut = NULL;
    char tmp[sizeof g->endpoint + sizeof g->sas], proto[16] = "https", suffix[128] = "core.windows.net", *q;
    int rc;
    memset(g, 0, sizeof *g);
    if (conn && cas__conn_get(conn, "UseDevelopmentStorage", tmp, sizeof tmp, &cut) && !strcmp(tmp, "true")) {
        /* the emulator's well-known account (azurite's documentation) */
        snprintf(g->endpoint, sizeof g->endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        snprintf(g->account, sizeof g->account, "devstoreaccount1");
        snprintf(g->key, sizeof g->key,
                 "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
                 "KBHBeksoGMGw==");
    }
    if (conn) {
        cas__conn_get(conn, "AccountName", g->account, sizeof g->account, &cut);
        cas__conn_get(conn, "AccountKey", g->key, sizeof g->key, &cut);
        cas__conn_get(conn, "SharedAccessSignature", g->sas, sizeof g->sas, &cut);
        cas__conn_get(conn, "BlobEndpoint", g->endpoint, sizeof g->endpoint, &cut);
        cas__conn_get(conn, "DefaultEndpointsProtocol", proto, sizeof proto, &cut);
        cas__conn_get(conn, "EndpointSuffix", suffix, sizeof suffix, &cut);
    }
    if ((v = cas__env("AZURE_STORAGE_ACCOUNT")) != NULL)
        cas__setting(g->account, sizeof g->account, v, strlen(v), "AZURE_STORAGE_ACCOUNT", &cut);
    if ((v = cas__env("AZURE_STORAGE_KEY")) != NULL)
        cas__setting(g->key, sizeof g->key, v, strlen(v), "AZURE_STORAGE_KEY", &cut);
    if ((v = cas__env("AZURE_STORAGE_SAS_TOKEN")) != NULL)
        cas__setting(g->sas, sizeof g->sas, v, strlen(v), "AZURE_STORAGE_SAS_TOKEN", &cut);
    rc = cas_metaflow_config("AZURE_STORAGE_BLOB_SERVICE_ENDPOINT", tmp, sizeof tmp);
    if (rc == CAS_NEED_OUTPUT && !cut) cut = "METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT";
    else if (rc == CAS_OK && tmp[0])
        cas__setting(g->endpoint, sizeof g->endpoint, tmp, strlen(tmp), "METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT",
                     &cut);
    if (cut) {
        cas__fmt(msg, cap, "%s is longer than cas.h keeps", cut);
        return CAS_E_ARG;
    }
    if (!g->endpoint[0] && g->account[0])
        snprintf(g->endpoint, sizeof g->endpoint, "%s://%s.blob.%s", proto, g->account, suffix);
    if (!g->endpoint[0]) {
        cas__fmt(msg, cap,
                 "no Azure endpoint: set METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT, AZURE_STORAGE_ACCOUNT "
                 "or AZURE_STORAGE_CONNECTION_STRING");
        return CAS_E_NOTFOUND;
    }
    if ((q = strchr(g->endpoint, '?')) != NULL) { /* a SAS in the endpoint (the portal's "Blob SAS URL") */
        if (!g->sas[0]) snprintf(g->sas, sizeof g->sas, "%s", q + 1); /* it fits: the endpoint is shorter */
        *q = 0;
    }
    if (g->sas[0] == '?') memmove(g->sas, g->sas + 1, strlen(g->sas));
    if (strncmp(g->endpoint, "http://", 7) && strncmp(g->endpoint, "https://", 8)) {
        cas__fmt(msg, cap, "the Azure endpoint '%.300s' is not an http(s) URL", g->endpoint);
        return CAS_E_ARG;
    }
    if (!g->account[0]) { /* https://ACCOUNT.blob..., or an emulator's http://host:port/ACCOUNT */
        const char *host = strstr(g->endpoint, "://") + 3, *path = strchr(host, '/');
        size_t l;
        if (path && path[1]) host = path + 1;
        l = strcspn(host, path && path[1] ? "/" : ".:/");
        snprintf(g->account, sizeof g->account, "%.*s", (int)l, host);
    }
    return CAS_OK;
}
