/* cas_cloud.h - object-store backends for cas.h: Metaflow datastores in S3 and
 * Azure Blob Storage
 *
 * Production Metaflow keeps its artifacts in S3: the object keys are the local
 * datastore's paths under METAFLOW_DATASTORE_SYSROOT_S3, and the _meta sidecar
 * is the object's user metadata (x-amz-meta-metaflow-user-attributes), sent in
 * the same PUT as the bytes. On Azure the same, in a container
 * (METAFLOW_DATASTORE_SYSROOT_AZURE), the metadata named
 * x-ms-meta-metaflow_user_attributes. This header is a cas_backend for such
 * stores, so every store call of cas.h (put/get/verify/migrate/gc/batch/streams/
 * tasks) works on "s3://bucket/prefix" and "azure://container/prefix" as on a
 * local directory. Both dialects share one HTTP layer (requests, retries,
 * streaming reads, batches, multipart writes, listings); they differ in URLs,
 * authorization, a few answers, and the names of the multipart steps.
 *
 * Do this, in the one C or C++ file that has cas.h's implementation:
 *
 *   #define CAS_IMPLEMENTATION
 *   #define CAS_CLOUD_IMPLEMENTATION
 *   #include "cas_cloud.h"        // includes cas.h, with CAS_CLOUD defined
 *
 * and link -lcurl -lcrypto -lexpat besides cas.h's libraries. A program that
 * needs only local stores includes cas.h alone and links none of them.
 * (The implementation shares cas.h's internals: it must be in the same file.)
 *
 * Usage:
 *
 *   cas_store *s;
 *   char err[512];
 *   if (cas_store_open(&s, "s3://my-bucket/metaflow", NULL, err, sizeof err) < 0)
 *       fprintf(stderr, "%s\n", err);
 *   // then any store call: cas_task_open(s, "MyFlow/12/train/3", ...), cas_store_get(...)
 *
 * S3's settings (the AWS SDKs' and Metaflow's own places):
 *
 *   endpoint     METAFLOW_S3_ENDPOINT_URL (environment or Metaflow's config.json),
 *                AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else https://s3.REGION.amazonaws.com
 *   region       AWS_REGION, AWS_DEFAULT_REGION, the profile's region in ~/.aws/config,
 *                else us-east-1
 *   addressing   virtual-hosted (bucket.host) on AWS, path-style (host/bucket) on any
 *                other endpoint; CAS_S3_ADDRESSING_STYLE=path|virtual overrides
 *   credentials  1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
 *                2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (STS
 *                   AssumeRoleWithWebIdentity; EKS IRSA), or the profile's
 *                   web_identity_token_file + role_arn
 *                3. the shared files (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE,
 *                   AWS_PROFILE): aws_access_key_id, aws_secret_access_key,
 *                   aws_session_token
 *                4. the container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *                   _FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]; ECS, EKS pod identity)
 *                5. EC2 instance metadata, IMDSv2 (AWS_EC2_METADATA_DISABLED=true skips it;
 *                   AWS_EC2_METADATA_SERVICE_ENDPOINT moves it)
 *                Temporary credentials are refreshed before they expire.
 *   encryption   METAFLOW_S3_SERVER_SIDE_ENCRYPTION (x-amz-server-side-encryption on writes)
 *   TLS          verified; AWS_CA_BUNDLE names other CA certificates
 *   retries      AWS_MAX_ATTEMPTS tries per request (default 5), exponential backoff with
 *                full jitter, on 5xx, SlowDown, throttling, resets and timeouts, for
 *                requests that are safe to repeat; CAS_S3_CONNECT_TIMEOUT (s, default 10)
 *                and CAS_S3_STALL_TIMEOUT (s without a byte, default 60);
 *                CAS_S3_CONNECTIONS (requests in flight in a batch, default 16);
 *                CAS_S3_PART_SIZE (bytes per multipart part, default 8 MiB)
 *   or per store with cas_store_set_param and the CAS_PARAM_CLOUD_* below.
 *
 * Azure (the Azure SDKs' and Metaflow's own places):
 *
 *   endpoint     METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT (environment or config.json),
 *                AZURE_STORAGE_CONNECTION_STRING's BlobEndpoint, else
 *                https://ACCOUNT.blob.core.windows.net (a SAS in the endpoint's query is used)
 *   account      AZURE_STORAGE_ACCOUNT, the connection string's AccountName, else the
 *                endpoint's first host label (an emulator's: the first part of its path)
 *   credentials  1. a shared key: AZURE_STORAGE_KEY or AccountKey= (SharedKey, HMAC-SHA256)
 *                2. a SAS token: AZURE_STORAGE_SAS_TOKEN, SharedAccessSignature=, or the
 *                   endpoint's query
 *                3. Microsoft Entra ID, in DefaultAzureCredential's order: a service
 *                   principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET),
 *                   workload identity (AZURE_FEDERATED_TOKEN_FILE), a managed identity
 *                   (IDENTITY_ENDPOINT + IDENTITY_HEADER, else IMDS); AZURE_AUTHORITY_HOST.
 *                   Tokens are replaced before they expire.
 *   TLS          verified; REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names other CA certificates
 *   tuning       the CAS_PARAM_CLOUD_* and their environment variables, as for S3
 *
 * Answers: a resumed GET must be a 206 whose Content-Range starts where asked and
 * states the object's size, with the first answer's ETag (or the whole object
 * again); a ranged GET exactly its range. Otherwise it is retried, then refused.
 * Reads of an object store rehash by default (CAS_PARAM_VERIFY): a server lying
 * in its headers too cannot make a read return wrong bytes.
 *
 * Secrets: a secret key or token (AWS's, or Azure's key, SAS or Entra ID token)
 * never appears in a message and is never sent cut (tokens up to CAS__TOKEN_MAX,
 * 64 KiB, keys up to 256 bytes; longer ones are refused by name). Bearer tokens,
 * client secrets and assertions, web identity tokens go over https only, or
 * plain http to this machine; a container credentials URL is parsed (curl_url),
 * never names a user, and over http names this machine or the ECS/EKS agent.
 * In memory: cas.h's copies sit in one page, locked, excluded from core dumps,
 * wiped when replaced; every buffer that held one is wiped before it is freed,
 * libcurl's included (a wiping allocator through curl_global_init_mem, which
 * libcurl takes when cas.h is the first in the process to initialise it). Not
 * covered: a dump taken while a request is in flight (libcurl's live buffers,
 * OpenSSL's TLS records, socket buffers), and the environment a secret came from.
 *
 * Thread rules: as for every store, one store may be used by many threads at
 * once; streams are used by one thread at a time.
 */
#ifndef CAS_CLOUD_H
#define CAS_CLOUD_H

#ifndef CAS_CLOUD
#define CAS_CLOUD /* this build has the object-store backends */
#endif
#ifndef CAS_BACKEND_MODULE
#define CAS_BACKEND_MODULE cas_cloud_register /* cas_store_open() registers s3:// and azure:// first */
#endif
#ifndef CAS_EXPERIMENTAL
#define CAS_EXPERIMENTAL /* cas_cloud_backend() gives a cas_backend, from cas.h's experimental part */
#endif
#include "cas.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Object-store settings (cas_store_set_param on a store opened on a URL), for S3 and
 * Azure alike. Each also comes from the environment: CAS_S3_X on S3, CAS_AZURE_X
 * (else CAS_S3_X, the name both took first) on Azure; tries from AWS_MAX_ATTEMPTS. */
#define CAS_PARAM_CLOUD_ATTEMPTS 60        /* tries per request, 1-100 (AWS_MAX_ATTEMPTS; default 5) */
#define CAS_PARAM_CLOUD_CONNECT_TIMEOUT 61 /* ms to connect, 1-600000 (default 10000) */
#define CAS_PARAM_CLOUD_STALL_TIMEOUT 62   /* ms without a byte before a request is dropped (default 60000) */
#define CAS_PARAM_CLOUD_CONNECTIONS 63     /* requests in flight in a batch or fetch, 1-256 (default 16) */
#define CAS_PARAM_CLOUD_PART_SIZE 64       /* multipart part (Azure: block) size, 5 MiB - 5 GiB (default 8 MiB) */
#define CAS_PARAM_CLOUD_RETRY_BASE 65      /* ms, first backoff step, 1-60000 (default 100) */
#define CAS_PARAM_CLOUD_GC_AGE 66          /* s: gc aborts multipart uploads older than this (default 86400) */
/* names per listing page asked for, 1-5000 (default 1000; S3 gives 1000 at most) */
#define CAS_PARAM_CLOUD_LIST_PAGE 67
/* bytes: objects this large and more are read in ranged GETs, four in flight (default 32 MiB, and 0
 * for a server on this machine; 0: one GET) */
#define CAS_PARAM_CLOUD_RANGED_MIN 68
/* Their first names, kept as aliases: the same settings, on Azure too. */
#define CAS_PARAM_S3_ATTEMPTS CAS_PARAM_CLOUD_ATTEMPTS
#define CAS_PARAM_S3_CONNECT_TIMEOUT CAS_PARAM_CLOUD_CONNECT_TIMEOUT
#define CAS_PARAM_S3_STALL_TIMEOUT CAS_PARAM_CLOUD_STALL_TIMEOUT
#define CAS_PARAM_S3_CONNECTIONS CAS_PARAM_CLOUD_CONNECTIONS
#define CAS_PARAM_S3_PART_SIZE CAS_PARAM_CLOUD_PART_SIZE
#define CAS_PARAM_S3_RETRY_BASE CAS_PARAM_CLOUD_RETRY_BASE
#define CAS_PARAM_S3_GC_AGE CAS_PARAM_CLOUD_GC_AGE
#define CAS_PARAM_S3_LIST_PAGE CAS_PARAM_CLOUD_LIST_PAGE
#define CAS_PARAM_S3_RANGED_MIN CAS_PARAM_CLOUD_RANGED_MIN
/* A backend for an object-store URL: "s3://bucket[/prefix]" or
 * "azure://container[/prefix]". Settings come from
 * the environment and config files as listed above. The backend is usually
 * handed straight to cas_store_open_backend; cas_store_open does this for you. */
CASDEF int cas_cloud_backend(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap);
/* Adds cas_cloud_backend for the s3 and azure schemes through add: cas.h calls it
 * with its own adder before the first URL root opens (a scheme the user registered
 * stays theirs); cas_cloud_register(cas_backend_register) makes them win instead. */
CASDEF int cas_cloud_register(int (*add)(const char *scheme, cas_backend_opener open));
#ifdef __cplusplus
}
#endif
#endif /* CAS_CLOUD_H */

/* ========================================================================== */
/*                               IMPLEMENTATION                               */
/* ========================================================================== */

#if defined(CAS_CLOUD_IMPLEMENTATION) && !defined(CAS_CLOUD_IMPLEMENTED)
#define CAS_CLOUD_IMPLEMENTED
#ifndef CAS_IMPLEMENTED
#error "cas_cloud.h's implementation shares cas.h's internals: define CAS_IMPLEMENTATION in the same file"
#endif
#ifdef CAS_NO_STORE
#error "cas_cloud.h is a backend of cas.h's store, which CAS_NO_STORE compiles out"
#endif

#include <ctype.h>
#include <curl/curl.h>
#include <expat.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <arpa/inet.h> /* inet_pton: which hosts may be sent a secret over plain HTTP */
#include <sys/mman.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Modules, top down; each calls only those below it (amalgamate.py --layers checks):
 *   cloud     s3:// and azure:// registered (cas_cloud_backend, cas_cloud_register)
 *   aws       S3's dialect: SigV4, the AWS SDKs' credential chain, multipart uploads
 *   azure     Azure's: SharedKey, SAS and Entra ID tokens, blocks and block lists
 *             (the two dialects never see each other; each is one cas__dialect row)
 *   objects   the backend over any dialect: objects, streams, listings, batches, gc
 *   http      requests, retries, error codes, the credentials' cache, one multi
 *             driver, XML (expat), secret pages; libcurl underneath */

#define CAS__CLOUD_META_MAX 2048              /* S3 holds at most 2 KB of user metadata (Azure 8 KB) */
#define CAS__CLOUD_XML_MAX ((size_t)16 << 20) /* a listing page or an error, at most */
#define CAS__CLOUD_SINGLE_PUT_MAX ((uint64_t)5 << 30)
#define CAS__CLOUD_MAX_PARTS 10000
#define CAS__CLOUD_STREAM_BUF ((size_t)1 << 20) /* at least CURLOPT_BUFFERSIZE */
#define CAS__MAXZ(a, b) ((a) > (b) ? (a) : (b))

/* ---- parameters: one table, one check ------------------------------------ */

/* Rows of the one parameter table type (cas_codecs.h's cas__param_row): bounds, the
 * default, and the environment variable that may set it. */
#define CAS__CLOUD_PARAM(id, lo, hi, dflt, env, scale) CAS__PARAM_ENV(id, CAS__FOR_BACKEND, lo, hi, dflt, env, scale)
static const cas__param_row cas__cloud_params[] = {
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_ATTEMPTS, 1, 100, 5, "AWS_MAX_ATTEMPTS", 1),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_CONNECT_TIMEOUT, 1, 600000, 10000, "CAS_S3_CONNECT_TIMEOUT", 1000),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_STALL_TIMEOUT, 1000, 3600000, 60000, "CAS_S3_STALL_TIMEOUT", 1000),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_CONNECTIONS, 1, 256, 16, "CAS_S3_CONNECTIONS", 1),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_PART_SIZE, (int64_t)5 << 20, (int64_t)5 << 30, (int64_t)8 << 20,
                     "CAS_S3_PART_SIZE", 1),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_RETRY_BASE, 1, 60000, 100, "CAS_S3_RETRY_BASE", 1),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_GC_AGE, 0, (int64_t)1 << 40, 86400, "CAS_S3_GC_AGE", 1),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_LIST_PAGE, 1, 5000, 1000, "CAS_S3_LIST_PAGE", 1),
    CAS__CLOUD_PARAM(CAS_PARAM_CLOUD_RANGED_MIN, 0, (int64_t)1 << 50, (int64_t)32 << 20, "CAS_S3_RANGED_MIN", 1),
};
#define CAS__CLOUD_NPARAMS (sizeof cas__cloud_params / sizeof cas__cloud_params[0])

static int cas__cloud_param_index(int id) {
    const cas__param_row *r = CAS__PARAM_FIND(cas__cloud_params, id);
    return r ? (int)(r - cas__cloud_params) : -1;
}
/* ---- small helpers -------------------------------------------------------- */

static int cas__buf_addz(cas__buf *b, const char *s) { return cas__buf_put(b, s, strlen(s)); }


static void cas__buf_fmt(cas__buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    cas__buf_addz(b, tmp);
}

/* RFC 3986 percent-encoding (what SigV4 signs); '/' kept when keep_slash. */
static void cas__uri_encode(cas__buf *b, const char *s, int keep_slash) {
    static const char hx[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~' || (c == '/' && keep_slash)) {
            char ch = (char)c;
            cas__buf_put(b, &ch, 1);
        } else {
            char e[3];
            e[0] = '%', e[1] = hx[c >> 4], e[2] = hx[c & 15];
            cas__buf_put(b, e, 3);
        }
    }
}

/* Decodes %XX in place (listings come URL-encoded); returns the new length. */
static size_t cas__uri_decode(char *s) {
    size_t i, o = 0;
    for (i = 0; s[i]; i++) {
        int h, l;
        if (s[i] == '%' && s[i + 1] && s[i + 2] && (h = cas__hexval(s[i + 1])) >= 0 &&
            (l = cas__hexval(s[i + 2])) >= 0) {
            s[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            s[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    s[o] = 0;
    return o;
}

/* "2026-11-29T21:29:58.945Z" (ISO 8601, UTC: S3's and the credential endpoints'
 * times) to seconds since the epoch; -1 for anything else, a field out of its
 * range (Feb 30th) included. Digits are checked one by one: sscanf's %d would
 * take "-9" for a minute (found by fuzz_cloud). */
static int64_t cas__iso8601(const char *s) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int v[6] = {0, 0, 0, 0, 0, 0}, f = 0, i;
    int64_t days, yy;
    unsigned m;
    if (!s) return -1;
    for (i = 0; shape[i]; i++) {
        if (shape[i] == 'd') {
            if (s[i] < '0' || s[i] > '9') return -1;
            v[f] = v[f] * 10 + (s[i] - '0');
        } else if (s[i] != shape[i]) {
            return -1;
        } else {
            f++;
        }
    }
    s += i;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++) {
        }
    if (*s == 'Z') s++;
    else if (!strncmp(s, "+00:00", 6)) s += 6;
    if (*s) return -1;
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59) return -1;
    if (v[2] > mdays[v[1] - 1] + (v[1] == 2 && v[0] % 4 == 0 && (v[0] % 100 != 0 || v[0] % 400 == 0))) return -1;
    /* days from civil (Howard Hinnant's algorithm) */
    yy = v[0] - (v[1] <= 2);
    m = (unsigned)v[1];
    days = 365 * yy + yy / 4 - yy / 100 + yy / 400 + (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + v[2] - 1 - 719468;
    return days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
}

static void cas__sha256_hex(const void *p, size_t n, char out[65]) {
    unsigned char d[32];
    unsigned int len = 0;
    if (EVP_Digest(p, n, d, &len, EVP_sha256(), NULL) != 1 || len != 32) memset(d, 0, sizeof d);
    cas__hex(d, 32, out);
}

static int cas__oom(char *msg, size_t cap) {
    cas__fmt(msg, cap, "out of memory");
    return CAS_E_NOMEM;
}

static void cas__sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000, ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int64_t cas__now(void) { return (int64_t)time(NULL); }

static int64_t cas__ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* A getenv that treats "" as unset, as the AWS SDKs do. */
static const char *cas__env(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}
/* ---- where a secret may go ---------------------------------------------------- */
/* A URL as libcurl itself will read it (curl_url): its scheme and host, and whether
 * it names a user ("http://127.0.0.1@elsewhere/" is elsewhere). CAS_E_ARG if it is
 * not a URL. IPv6 hosts come without their brackets. */
static int cas__url_host(const char *url, char *scheme, size_t scap, char *host, size_t hcap, int *userinfo) {
    CURLU *u = curl_url();
    char *s = NULL, *h = NULL, *usr = NULL, *pw = NULL;
    int rc = CAS_E_ARG;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK) {
        size_t hl = strlen(h);
        if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') memmove(h, h + 1, hl -= 2), h[hl] = 0;
        *userinfo = curl_url_get(u, CURLUPART_USER, &usr, 0) == CURLUE_OK ||
                    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK;
        if (strlen(s) < scap && hl < hcap) {
            memcpy(scheme, s, strlen(s) + 1), memcpy(host, h, hl + 1);
            rc = CAS_OK;
        }
    }
    curl_free(s), curl_free(h), curl_free(usr), curl_free(pw);
    curl_url_cleanup(u);
    return rc;
}

/* This machine: localhost, 127.0.0.0/8, ::1. */
static int cas__host_loopback(const char *host) {
    unsigned char a[16];
    static const unsigned char one6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (!strcasecmp(host, "localhost")) return 1;
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    return inet_pton(AF_INET6, host, a) == 1 && !memcmp(a, one6, 16);
}

/* May a secret (a bearer token, a client secret, a web identity token) be sent to
 * url? Over https, yes; over plain http only to this machine (an emulator, a
 * stand-in), as the Azure and AWS SDKs allow; never with a user in the URL.
 * Otherwise CAS_E_ARG, with the reason in msg naming `what`. */
static int cas__secret_may_go(const char *url, const char *what, char *msg, size_t cap) {
    char scheme[16], host[256];
    int user = 0;
    if (cas__url_host(url, scheme, sizeof scheme, host, sizeof host, &user) < 0) {
        cas__fmt(msg, cap, "%s: '%.200s' is not a URL", what, url);
        return CAS_E_ARG;
    }
    if (user) {
        cas__fmt(msg, cap, "%s: the URL names a user (userinfo before '@'): refused", what);
        return CAS_E_ARG;
    }
    if (!strcasecmp(scheme, "https") || (!strcasecmp(scheme, "http") && cas__host_loopback(host))) return CAS_OK;
    cas__fmt(msg, cap, "%s: a secret is not sent over plain HTTP to '%.200s' (https, or http to this machine only)",
             what, host);
    return CAS_E_ARG;
}
/* ---- XML: expat underneath, element paths and leaf texts on top ---------- */
/* S3's answers are small documents of a known shape. Each leaf's text comes to
 * `leaf` with its path ("ListBucketResult/Contents/Key"), each element's end to
 * `end`. DOCTYPEs and entity declarations are refused (S3 sends neither), depth
 * is capped, texts are cut at CAS__XML_TEXT bytes (and flagged: a reader that
 * needs the whole text, a credential, refuses a cut one). */

#define CAS__XML_DEPTH 16
#define CAS__XML_TEXT 65536 /* as long as a credential may be (CAS__TOKEN_MAX) */

typedef struct cas__xml {
    XML_Parser p;
    char path[512];
    size_t mark[CAS__XML_DEPTH + 1];
    int depth, failed;
    char *text; /* CAS__XML_TEXT + 1 bytes */
    size_t tlen;
    int cut;
    void (*leaf)(void *ctx, const char *path, const char *text, size_t len, int cut);
    void (*end)(void *ctx, const char *path);
    void *ctx;
} cas__xml;

static void XMLCALL cas__xml_start(void *u, const XML_Char *name, const XML_Char **attrs) {
    cas__xml *x = (cas__xml *)u;
    size_t l = strlen(name), at = x->depth ? x->mark[x->depth] : 0;
    (void)attrs;
    if (x->failed) return;
    if (x->depth >= CAS__XML_DEPTH || at + l + 2 > sizeof x->path) {
        x->failed = 1;
        XML_StopParser(x->p, XML_FALSE);
        return;
    }
    if (x->depth) x->path[at++] = '/';
    memcpy(x->path + at, name, l + 1);
    x->mark[++x->depth] = at + l;
    x->tlen = 0, x->cut = 0;
}

static void XMLCALL cas__xml_chars(void *u, const XML_Char *s, int n) {
    cas__xml *x = (cas__xml *)u;
    size_t k;
    if (x->failed || n <= 0) return;
    k = CAS__MIN((size_t)n, CAS__XML_TEXT - x->tlen);
    memcpy(x->text + x->tlen, s, k);
    x->tlen += k;
    if (k < (size_t)n) x->cut = 1;
}

static void XMLCALL cas__xml_finish(void *u, const XML_Char *name) {
    cas__xml *x = (cas__xml *)u;
    (void)name;
    if (x->failed || !x->depth) return;
    x->text[x->tlen] = 0;
    if (x->leaf) x->leaf(x->ctx, x->path, x->text, x->tlen, x->cut);
    if (x->end) x->end(x->ctx, x->path);
    x->tlen = 0, x->cut = 0;
    x->depth--;
    x->path[x->depth ? x->mark[x->depth] : 0] = 0;
}

static void XMLCALL cas__xml_doctype(void *u, const XML_Char *a, const XML_Char *b, const XML_Char *c, int d) {
    cas__xml *x = (cas__xml *)u;
    (void)a, (void)b, (void)c, (void)d;
    x->failed = 1;
    XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL cas__xml_entity(void *u, const XML_Char *a, int b, const XML_Char *c, int d, const XML_Char *e,
                                    const XML_Char *f, const XML_Char *g, const XML_Char *h) {
    cas__xml *x = (cas__xml *)u;
    (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h;
    x->failed = 1;
    XML_StopParser(x->p, XML_FALSE);
}

/* CAS_OK, or CAS_E_CORRUPT with the reason in msg. */
static int cas__xml_parse(const char *doc, size_t len, void (*leaf)(void *, const char *, const char *, size_t, int),
                          void (*end)(void *, const char *), void *ctx, char *msg, size_t cap) {
    cas__xml xs, *x = &xs;
    int ok;
    memset(x, 0, sizeof *x);
    if (len > (size_t)INT_MAX || !(x->text = (char *)malloc(CAS__XML_TEXT + 1)) ||
        !(x->p = XML_ParserCreate("UTF-8"))) {
        free(x->text);
        cas__fmt(msg, cap, "cannot parse the XML answer");
        return CAS_E_CORRUPT;
    }
    x->leaf = leaf, x->end = end, x->ctx = ctx;
    XML_SetUserData(x->p, x);
    XML_SetElementHandler(x->p, cas__xml_start, cas__xml_finish);
    XML_SetCharacterDataHandler(x->p, cas__xml_chars);
    XML_SetStartDoctypeDeclHandler(x->p, cas__xml_doctype);
    XML_SetEntityDeclHandler(x->p, cas__xml_entity);
    ok = XML_Parse(x->p, doc, (int)len, XML_TRUE) == XML_STATUS_OK && !x->failed;
    if (!ok)
        cas__fmt(msg, cap, "malformed XML answer (%s at line %lu)",
                 x->failed ? "a DOCTYPE, an entity or nesting too deep" : XML_ErrorString(XML_GetErrorCode(x->p)),
                 (unsigned long)XML_GetCurrentLineNumber(x->p));
    cas__wipe(x->text, CAS__XML_TEXT + 1); /* it may have held a secret (STS) */
    free(x->text);
    XML_ParserFree(x->p);
    return ok ? CAS_OK : CAS_E_CORRUPT;
}

/* The leaf at `suffix` (a path's tail, "Error/Code") into a fixed buffer; cut[i]
 * says the text did not fit (the buffer holds its start). */
typedef struct cas__xml_pick {
    const char *suffix[4];
    char *out[4];
    size_t cap[4];
    int cut[4];
} cas__xml_pick;

static int cas__ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail) && (a == b || s[a - b - 1] == '/');
}

static void cas__xml_pick_leaf(void *ctx, const char *path, const char *text, size_t len, int cut) {
    cas__xml_pick *p = (cas__xml_pick *)ctx;
    int i;
    for (i = 0; i < 4 && p->suffix[i]; i++)
        if (cas__ends_with(path, p->suffix[i])) {
            size_t k = CAS__MIN(len, p->cap[i] - 1);
            memcpy(p->out[i], text, k);
            p->out[i][k] = 0;
            p->cut[i] = cut || k < len;
        }
}

/* S3's <Error><Code>..</Code><Message>..</Message></Error> (also STS's ErrorResponse). */
static void cas__xml_error(const char *doc, size_t len, char *code, size_t ccap, char *message, size_t mcap) {
    cas__xml_pick p;
    char scratch[64];
    memset(&p, 0, sizeof p);
    code[0] = message[0] = 0;
    p.suffix[0] = "Error/Code", p.out[0] = code, p.cap[0] = ccap;
    p.suffix[1] = "Error/Message", p.out[1] = message, p.cap[1] = mcap;
    cas__xml_parse(doc, len, cas__xml_pick_leaf, NULL, &p, scratch, sizeof scratch);
    message[strcspn(message, "\r\n")] = 0; /* Azure's goes on with "RequestId:..." lines */
}
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
/* ---- secrets ---------------------------------------------------------------- */
/* Credentials live in one page of their own: locked (never swapped), excluded from
 * core dumps, wiped before it is unmapped. */

/* The longest credentials kept: a key id or an account name, a secret or a shared
 * key, and a session token, SAS or bearer token (STS tokens with session tags and
 * policies run to several KiB; Entra ID tokens to a few). Longer ones are refused,
 * never cut. */
#define CAS__KEY_MAX 256
#define CAS__TOKEN_MAX 65536

/* kind: CAS__AUTH_*; a secret is required but for the token kinds (SAS, bearer).
 * NULL with the reason in msg (which never holds a secret). */
static cas__cred *cas__cred_new(int kind, const char *akid, const char *secret, const char *token, int64_t expires,
                                char *msg, size_t cap) {
    int tokens = kind == CAS__AUTH_SAS || kind == CAS__AUTH_BEARER;
    size_t al = strlen(akid), sl = strlen(secret), tl = token ? strlen(token) : 0, need = al + sl + tl + 3, pl;
    long pg = sysconf(_SC_PAGESIZE);
    cas__cred *c;
    void *page;
    if (pg <= 0) pg = 4096;
    pl = (need + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
    if (!al || (tokens ? !tl : !sl)) {
        cas__fmt(msg, cap, "the credentials have an empty %s", !al ? "key id or account" : tokens ? "token" : "secret");
        return NULL;
    }
    if (al > CAS__KEY_MAX || sl > CAS__KEY_MAX || tl > CAS__TOKEN_MAX) {
        int key = al > CAS__KEY_MAX || sl > CAS__KEY_MAX;
        cas__fmt(msg, cap, "the credentials' %s is %lu bytes long, more than cas.h keeps (%d)",
                 al > CAS__KEY_MAX   ? "key id or account"
                 : sl > CAS__KEY_MAX ? "secret"
                                     : "token",
                 (unsigned long)(al > CAS__KEY_MAX   ? al
                                 : sl > CAS__KEY_MAX ? sl
                                                     : tl),
                 key ? CAS__KEY_MAX : CAS__TOKEN_MAX);
        return NULL;
    }
    page = mmap(NULL, pl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        cas__fmt(msg, cap, "cannot map a page for the credentials: %s", strerror(errno));
        return NULL;
    }
#ifdef MADV_DONTDUMP
    madvise(page, pl, MADV_DONTDUMP);
#endif
    (void)mlock(page, pl); /* best effort: RLIMIT_MEMLOCK may say no */
    if (!(c = (cas__cred *)calloc(1, sizeof *c))) {
        munmap(page, pl);
        cas__fmt(msg, cap, "out of memory");
        return NULL;
    }
    c->page = page, c->page_len = pl, c->refs = 1, c->expires = expires, c->kind = kind;
    c->akid = (char *)page;
    memcpy(c->akid, akid, al + 1);
    c->secret = c->akid + al + 1;
    memcpy(c->secret, secret, sl + 1);
    c->token = c->secret + sl + 1;
    if (tl) memcpy(c->token, token, tl);
    c->token[tl] = 0;
    return c;
}

static void cas__cred_destroy(cas__cred *c) {
    cas__wipe(c->page, c->page_len);
    munlock(c->page, c->page_len);
    munmap(c->page, c->page_len);
    free(c);
}

static void cas__cred_unref(cas__cloud *cs, cas__cred *c) {
    int left;
    if (!c) return;
    cas__mu_lock(&cs->cmu);
    left = --c->refs;
    cas__mu_unlock(&cs->cmu);
    if (!left) cas__cred_destroy(c);
}
/* ---- requests: signing, retries, the service's error codes --------------- */

typedef struct cas__rq {
    /* the request */
    const char *method; /* GET, HEAD, PUT, POST, DELETE */
    cas__buf url;
    struct curl_slist *hdr;  /* the caller's headers (all signed) */
    const unsigned char *up; /* PUT / POST body */
    size_t up_len;
    const char *up_sha; /* its hex SHA-256, or NULL to compute it */
    int sign;           /* authorized with the store's credentials, as its dialect does */
    int quick;          /* credential endpoints: short timeouts, few tries */
    size_t keep;        /* bytes of a 2xx body to keep */
    long recv_buf;      /* libcurl's receive buffer (CURLOPT_BUFFERSIZE); 0: its default */
    const cas_allocator *body_alloc;
    /* the response */
    CURL *e;
    long status;
    cas__buf body;
    int64_t length; /* Content-Length, -1 if none */
    char etag[130], range[128];
    char meta[CAS__CLOUD_META_MAX + 1];
    size_t meta_len;
    int has_meta, too_big, hdr_done;
    int64_t mtime;
    char code[64], message[256]; /* the service's error (S3's <Error>, Azure's code header) */
    char curlerr[CURL_ERROR_SIZE];
    size_t up_pos;
    int tries;
    const char *meta_name, *code_name; /* the dialect's metadata and error-code headers */
} cas__rq;

static void cas__rq_init(cas__rq *r, const char *method, const cas_allocator *a) {
    memset(r, 0, sizeof *r);
    r->method = method;
    r->url.a = r->body.a = r->body_alloc = a;
    r->length = -1;
    r->sign = 1;
}

static void cas__rq_reset_response(cas__rq *r) {
    if (r->body.p) cas__wipe(r->body.p, r->body.len);
    r->body.len = 0;
    if (r->body.p) r->body.p[0] = 0;
    r->status = 0, r->length = -1, r->has_meta = 0, r->meta_len = 0, r->too_big = 0, r->mtime = 0, r->hdr_done = 0;
    r->etag[0] = r->range[0] = r->code[0] = r->message[0] = r->curlerr[0] = 0;
    r->up_pos = 0;
}

static void cas__rq_free(cas__rq *r) {
    cas__free(r->url.a, r->url.p);
    if (r->body.p) cas__wipe(r->body.p, r->body.len); /* credential answers pass through here */
    cas__free(r->body.a, r->body.p);
    curl_slist_free_all(r->hdr);
    memset(&r->url, 0, sizeof r->url), memset(&r->body, 0, sizeof r->body);
    r->hdr = NULL;
}

/* The body handed over to the caller (allocated with body_alloc). */
static unsigned char *cas__rq_take_body(cas__rq *r, size_t *len) {
    unsigned char *p = (unsigned char *)r->body.p;
    *len = r->body.len;
    memset(&r->body, 0, sizeof r->body);
    r->body.a = r->body_alloc;
    return p;
}

static long cas__rq_status(cas__rq *r);

static int cas__header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen) {
    size_t l = strlen(name), i;
    if (n <= l || line[l] != ':') return 0;
    for (i = 0; i < l; i++)
        if (tolower((unsigned char)line[i]) != name[i]) return 0;
    i = l + 1;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    *val = line + i;
    *vlen = n - i;
    while (*vlen && (line[i + *vlen - 1] == '\r' || line[i + *vlen - 1] == '\n' || line[i + *vlen - 1] == ' '))
        (*vlen)--;
    return 1;
}

/* Content-Range: "bytes FIRST-LAST/TOTAL" (RFC 9110 14.4), digits only; 0 if not that
 * (a "*" total included: a resume needs the object's size). */
static int cas__content_range(const char *s, uint64_t *first, uint64_t *last, uint64_t *total) {
    uint64_t *v[3];
    const char seps[3] = {'-', '/', 0};
    int k;
    v[0] = first, v[1] = last, v[2] = total;
    if (strncasecmp(s, "bytes ", 6)) return 0;
    for (s += 6, k = 0; k < 3; k++, s++) {
        const char *d = s;
        for (*v[k] = 0; *s >= '0' && *s <= '9' && s - d < 19; s++) *v[k] = *v[k] * 10 + (uint64_t)(*s - '0');
        if (s == d || *s != seps[k]) return 0;
    }
    return *first <= *last && *last < *total;
}

static size_t cas__rq_header(char *line, size_t size, size_t nitems, void *u) {
    cas__rq *r = (cas__rq *)u;
    size_t n = size * nitems, vl;
    const char *v;
    if (n >= 5 && !memcmp(line, "HTTP/", 5)) { /* a new response (after a 100 Continue, say) */
        r->length = -1, r->has_meta = 0, r->meta_len = 0, r->etag[0] = r->range[0] = r->code[0] = 0, r->mtime = 0;
    } else if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) { /* the end of a response's headers */
        r->hdr_done = cas__rq_status(r) >= 200;
    } else if (cas__header_is(line, n, "content-length", &v, &vl)) {
        char tmp[32];
        if (vl && vl < sizeof tmp) memcpy(tmp, v, vl), tmp[vl] = 0, r->length = (int64_t)strtoll(tmp, NULL, 10);
    } else if (cas__header_is(line, n, "etag", &v, &vl)) {
        if (vl < sizeof r->etag) memcpy(r->etag, v, vl), r->etag[vl] = 0;
    } else if (cas__header_is(line, n, "content-range", &v, &vl)) {
        if (vl < sizeof r->range) memcpy(r->range, v, vl), r->range[vl] = 0;
    } else if (r->meta_name && cas__header_is(line, n, r->meta_name, &v, &vl)) {
        if (vl <= CAS__CLOUD_META_MAX) memcpy(r->meta, v, vl), r->meta[vl] = 0, r->meta_len = vl, r->has_meta = 1;
    } else if (r->code_name && cas__header_is(line, n, r->code_name, &v, &vl)) { /* the reason, also on a HEAD */
        if (vl < sizeof r->code) memcpy(r->code, v, vl), r->code[vl] = 0;
    } else if (cas__header_is(line, n, "last-modified", &v, &vl)) {
        char tmp[64];
        time_t t;
        if (vl < sizeof tmp) {
            memcpy(tmp, v, vl), tmp[vl] = 0;
            if ((t = curl_getdate(tmp, NULL)) > 0) r->mtime = (int64_t)t;
        }
    }
    return n;
}

static long cas__rq_status(cas__rq *r) {
    long st = 0;
    if (r->e) curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

/* Keeps a 2xx body up to r->keep bytes, and any error body up to 64 KiB. */
static size_t cas__rq_write(char *p, size_t size, size_t nitems, void *u) {
    cas__rq *r = (cas__rq *)u;
    size_t n = size * nitems;
    long st = cas__rq_status(r);
    size_t cap = st >= 200 && st < 300 ? r->keep : (size_t)64 << 10;
    if (r->body.len + n > cap) {
        if (st >= 200 && st < 300) {
            r->too_big = 1;
            return 0; /* aborts the transfer */
        }
        n = cap > r->body.len ? cap - r->body.len : 0;
        if (!n) return size * nitems;
    }
    if (r->length > 0 && !r->body.cap && st >= 200 && st < 300 && (uint64_t)r->length < (uint64_t)cap) {
        /* one allocation of the announced size */
        r->body.p = (char *)cas__alloc(r->body.a, (size_t)r->length + 1);
        r->body.cap = r->body.p ? (size_t)r->length + 1 : 0;
    }
    if (cas__buf_put(&r->body, p, n) < 0) return 0;
    return size * nitems;
}

static size_t cas__rq_read(char *dst, size_t size, size_t nitems, void *u) {
    cas__rq *r = (cas__rq *)u;
    size_t n = CAS__MIN(size * nitems, r->up_len - r->up_pos);
    if (n) memcpy(dst, r->up + r->up_pos, n);
    r->up_pos += n;
    return n;
}

/* Rewinding the body for a resend (a redirect, or an authentication retry). */
static int cas__rq_seek(void *u, curl_off_t off, int origin) {
    cas__rq *r = (cas__rq *)u;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->up_len) return CURL_SEEKFUNC_CANTSEEK;
    r->up_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* Frees a header list whose strings may hold a token, wiping them first. */
static void cas__slist_wipe(struct curl_slist *l) {
    struct curl_slist *i;
    for (i = l; i; i = i->next) cas__wipe(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static int cas__cred_get(cas__cloud *cs, int force, cas__cred **out, char *msg, size_t cap);
/* ---- a request on a handle: set-up, verdicts, retries ---------------------------------- */

/* Sets every option of one try of r on e. *sent gets the header list to free after. */
static int cas__rq_setup(cas__cloud *cs, CURL *e, cas__rq *r, cas__cred *c, struct curl_slist **sent) {
    struct curl_slist *h = NULL, *i;
    int ok = 1;
    *sent = NULL;
    r->e = e;
    r->meta_name = cs->d->meta_header, r->code_name = cs->d->code_header;
    curl_easy_setopt(e, CURLOPT_URL, r->url.p);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curlerr);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     r->quick ? 1000L : (long)cas__cloudp(cs, CAS_PARAM_CLOUD_CONNECT_TIMEOUT));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     r->quick ? 2L : (long)(cas__cloudp(cs, CAS_PARAM_CLOUD_STALL_TIMEOUT) + 999) / 1000);
    if (r->quick) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cs->ca_bundle) curl_easy_setopt(e, CURLOPT_CAINFO, cs->ca_bundle);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cas__rq_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cas__rq_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    if (r->recv_buf) curl_easy_setopt(e, CURLOPT_BUFFERSIZE, r->recv_buf);
    if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "PUT")) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, cas__rq_read);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, cas__rq_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->up_len);
    } else if (!strcmp(r->method, "POST")) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->up ? (const char *)r->up : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->up_len);
    } else if (strcmp(r->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
    for (i = r->hdr; i && ok; i = i->next) ok = (h = curl_slist_append(h, i->data)) != NULL;
    if (ok && r->sign && c) ok = cs->d->authorize(cs, e, r, c, &h) == CAS_OK;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    *sent = h;
    return ok ? CAS_OK : CAS_E_NOMEM;
}

/* An error answer's code and message from its body; a code the headers gave
 * (Azure's x-ms-error-code) stays when the body has none. */
static void cas__rq_error_body(cas__rq *r) {
    char code[sizeof r->code];
    if (r->status < 300 || !r->body.len) return;
    cas__xml_error(r->body.p, r->body.len, code, sizeof code, r->message, sizeof r->message);
    if (code[0]) memcpy(r->code, code, sizeof code);
}

static int cas__cc_transient(CURLcode cc) {
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_WEIRD_SERVER_REPLY: return 1;
    default: return 0;
    }
}

/* A connection closed inside an answer's headers: libcurl may call that a whole
 * answer with no body (seen through a proxy cutting it); it is a broken one. */
static CURLcode cas__rq_whole(const cas__rq *r, CURLcode cc) {
    return cc == CURLE_OK && !r->hdr_done ? CURLE_GOT_NOTHING : cc;
}

/* Nothing reached the server: any request may be tried again. */
static int cas__cc_unsent(CURLcode cc) { return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST; }

static int cas__code_is(const cas__rq *r, const char *const *codes) {
    for (; *codes; codes++)
        if (!strcmp(r->code, *codes)) return 1;
    return 0;
}

/* After a complete response: 1 to try again, 2 to refresh the credentials first, 0 if final.
 * Every request sent here is safe to repeat: GET, HEAD, PUT and DELETE are idempotent,
 * a repeated CreateMultipartUpload leaves at worst an empty upload (gc aborts it), and
 * a CompleteMultipartUpload whose answer was lost is judged by the object itself. */
static int cas__rq_retryable(const cas__rq *r) {
    static const char *const transient[] = {"SlowDown",
                                            "Throttling",
                                            "ThrottlingException",
                                            "RequestTimeout",
                                            "InternalError",
                                            "ServiceUnavailable",
                                            "RequestLimitExceeded",
                                            "OperationAborted",
                                            "ConditionalRequestConflict",
                                            "TooManyRequests",
                                            "ServerBusy",
                                            "OperationTimedOut",
                                            NULL}; /* the last two: Azure's */
    static const char *const expired[] = {"ExpiredToken", "TokenRefreshRequired", "RequestExpired", NULL};
    if (r->status >= 200 && r->status < 400) return 0;
    if (cas__code_is(r, expired)) return 2;
    return r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504 || r->status == 429 ||
           cas__code_is(r, transient);
}

/* Exponential backoff with full jitter: uniform in [0, min(base * 2^(tries-1), 100 * base)] ms. */
static long cas__cloud_backoff_ms(cas__cloud *cs, int tries) {
    int64_t base = cas__cloudp(cs, CAS_PARAM_CLOUD_RETRY_BASE), cap = base * 100, step = base;
    int k;
    for (k = 1; k < tries && step < cap; k++) step *= 2;
    if (step > cap) step = cap;
    return (long)(cas__cloud_random(cs) % (uint64_t)(step + 1));
}

static void cas__cloud_backoff(cas__cloud *cs, int tries) { cas__sleep_ms(cas__cloud_backoff_ms(cs, tries)); }

/* A transfer ended with `result` (cas__multi_turn):
 * r's status and error read; returns whether to try it again, its credentials
 * renewed first when they ran out. *cc gets the transfer's own code. */
static int cas__rq_ended(cas__cloud *cs, cas__rq *r, CURLcode result, CURLcode *cc) {
    int again;
    char why[CAS__MSG];
    *cc = cas__rq_whole(r, result);
    r->status = cas__rq_status(r);
    if (*cc == CURLE_OK) cas__rq_error_body(r);
    again = *cc != CURLE_OK ? cas__cc_transient(*cc) : cas__rq_retryable(r);
    if (again == 2) { /* temporary credentials ran out: new ones for the retry */
        cas__cred *fresh = NULL;
        if (!r->sign || cas__cred_get(cs, 1, &fresh, why, sizeof why) < 0) again = 0;
        cas__cred_unref(cs, fresh);
    }
    return again;
}

/* Why the last try of r failed, without a secret: the service's code and message, or curl's. */
static void cas__rq_why(const cas__rq *r, CURLcode cc, char *msg, size_t cap) {
    char tries[48];
    tries[0] = 0;
    if (r->tries > 1) snprintf(tries, sizeof tries, " (after %d tries)", r->tries);
    if (cc != CURLE_OK) cas__fmt(msg, cap, "%s%s", r->curlerr[0] ? r->curlerr : curl_easy_strerror(cc), tries);
    else if (r->code[0])
        cas__fmt(msg, cap, "HTTP %ld %s: %s%s", r->status, r->code, r->message[0] ? r->message : "(no message)", tries);
    else
        cas__fmt(msg, cap, "HTTP %ld%s%s", r->status,
                 r->status == 403 && !strcmp(r->method, "HEAD") ? " (a HEAD answer carries no reason: check the "
                                                                  "credentials and the bucket's policy)"
                                                                : "",
                 tries);
}
/* ---- the one driver: every transfer runs on a multi handle ----------------------------
 * A single request, an object's stream, a batch's GETs and a large object's ranges
 * all run here, so that one loop head, one verdict (cas__rq_ended) and one place for
 * a handle's life serve them all, and connections are kept by the pooled multi
 * handles (libcurl's connection cache is the multi's) for whichever request comes
 * next. A transfer points at its owner's request and holds its handle while in
 * flight, the headers it sent (wiped after) and when it may start again; it is the
 * first member of its owner's record (a batch's item, a range's slot, a stream), or
 * a local of cas__rq_run, and CURLOPT_PRIVATE points at it. The owner's loop starts
 * the transfers that are due (cas__xfer_start), takes a turn (cas__multi_turn: curl
 * runs, and each transfer that ended comes back with its verdict, its handle already
 * back in the pool), then waits (cas__multi_wait). */
typedef struct cas__xfer {
    cas__rq *r; /* the request, the owner's */
    CURL *e;
    struct curl_slist *sent;
    int64_t due; /* ms: not before (a retry's backoff) */
} cas__xfer;

/* Another try of x on m, signed with the current credentials when x->r->sign;
 * write/wdata take the body (NULL: the request keeps it). CAS_OK, or an error with
 * the reason in msg (x then holds nothing: cas__xfer_stop is not needed). Missing
 * credentials are an I/O failure here, never CAS_E_NOTFOUND: the caller would take
 * that for a missing object. */
static int cas__xfer_start(cas__cloud *cs, CURLM *m, cas__xfer *x, curl_write_callback write, void *wdata, char *msg,
                           size_t cap) {
    cas__cred *c = NULL;
    int rc;
    x->r->tries++;
    cas__rq_reset_response(x->r);
    if (x->r->sign && (rc = cas__cred_get(cs, 0, &c, msg, cap)) < 0) return rc == CAS_E_NOTFOUND ? CAS_E_IO : rc;
    if ((x->e = cas__easy_get(cs)) != NULL && cas__rq_setup(cs, x->e, x->r, c, &x->sent) == CAS_OK) {
        if (write) {
            curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, write);
            curl_easy_setopt(x->e, CURLOPT_WRITEDATA, wdata);
        }
        curl_easy_setopt(x->e, CURLOPT_PRIVATE, (void *)x);
        if (curl_multi_add_handle(m, x->e) == CURLM_OK) {
            cas__cred_unref(cs, c); /* libcurl has what it needs for this try */
            return CAS_OK;
        }
    }
    cas__cred_unref(cs, c);
    x->r->e = NULL; /* cas__rq_setup set it before it could fail */
    cas__easy_put(cs, x->e), x->e = NULL;
    cas__slist_wipe(x->sent), x->sent = NULL;
    return cas__oom(msg, cap);
}

/* Takes x off m, its handle back to the pool (a no-op for one not in flight). */
static void cas__xfer_stop(cas__cloud *cs, CURLM *m, cas__xfer *x) {
    if (x->e) {
        curl_multi_remove_handle(m, x->e);
        x->r->e = NULL;
        cas__easy_put(cs, x->e);
        x->e = NULL;
    }
    cas__slist_wipe(x->sent);
    x->sent = NULL;
}

/* One turn: curl runs m's transfers; each that ended is stopped and handed to
 * ended(ctx, x, again, cc) (again: worth another try, as cas__rq_ended judges).
 * A negative answer ends the turn and is returned. */
static int cas__multi_turn(cas__cloud *cs, CURLM *m, int (*ended)(void *ctx, cas__xfer *x, int again, CURLcode cc),
                           void *ctx) {
    int still = 0, left, rc = CAS_OK;
    CURLMsg *mm;
    curl_multi_perform(m, &still);
    while (rc >= 0 && (mm = curl_multi_info_read(m, &left)) != NULL) {
        cas__xfer *x = NULL;
        CURLcode cc;
        int again;
        if (mm->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(mm->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        again = cas__rq_ended(cs, x->r, mm->data.result, &cc);
        cas__xfer_stop(cs, m, x);
        rc = ended(ctx, x, again, cc);
    }
    return rc;
}

/* Until a transfer of m has something to do, ms at most (libcurl's own timers
 * cut it shorter), or curl_multi_wakeup. */
static void cas__multi_wait(CURLM *m, int ms) { curl_multi_poll(m, NULL, 0, ms, NULL); }

/* What the one transfer of cas__xfer_run ended with. */
typedef struct cas__verdict {
    int done, again;
    CURLcode cc;
} cas__verdict;

static int cas__verdict_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__verdict *v = (cas__verdict *)ctx;
    (void)x;
    v->done = 1, v->again = again, v->cc = cc;
    return CAS_OK;
}

/* Runs the one transfer started on m to its end: the verdict cas__rq_ended gave. */
static int cas__xfer_run(cas__cloud *cs, CURLM *m, CURLcode *cc) {
    cas__verdict v;
    memset(&v, 0, sizeof v);
    for (;;) {
        cas__multi_turn(cs, m, cas__verdict_ended, &v);
        if (v.done) break;
        cas__multi_wait(m, 1000);
    }
    *cc = v.cc;
    return v.again;
}

/* Runs r to a final answer: CAS_OK with r->status set (the caller judges it;
 * r->code and r->message hold the service's error), or an error with the reason in msg
 * when no answer came after the last try. */
static int cas__rq_run(cas__cloud *cs, cas__rq *r, char *msg, size_t cap) {
    int attempts = r->quick ? 2 : (int)cas__cloudp(cs, CAS_PARAM_CLOUD_ATTEMPTS), refreshed = 0, rc, again;
    CURLM *m = cas__multi_get(cs);
    cas__xfer x;
    CURLcode cc;
    if (!m) return cas__oom(msg, cap);
    memset(&x, 0, sizeof x);
    x.r = r;
    cas__mu_lock(&cs->pmu);
    if (!r->quick && cas__ms() < cs->down_until) attempts = 1; /* just found unreachable: fail fast */
    cas__mu_unlock(&cs->pmu);
    for (r->tries = 0;;) {
        if ((rc = cas__xfer_start(cs, m, &x, NULL, NULL, msg, cap)) < 0) break;
        again = cas__xfer_run(cs, m, &cc);
        if (cc == CURLE_OUT_OF_MEMORY) {
            rc = cas__oom(msg, cap);
            break;
        }
        if (cc == CURLE_WRITE_ERROR && r->too_big) {
            cas__fmt(msg, cap, "the answer is larger than %lu bytes", (unsigned long)r->keep);
            rc = CAS_E_LIMIT;
            break;
        }
        if (again == 2 && refreshed++) again = 0; /* new credentials were refused too */
        if (again && r->tries < attempts) {
            cas__cloud_backoff(cs, r->tries);
            continue;
        }
        if (cc != CURLE_OK) {
            if (cas__cc_unsent(cc) && !r->quick) { /* the others of a batch need not wait as long */
                cas__mu_lock(&cs->pmu);
                cs->down_until = cas__ms() + 10000;
                cas__mu_unlock(&cs->pmu);
            }
            cas__rq_why(r, cc, msg, cap);
            rc = CAS_E_IO;
        }
        break;
    }
    cas__multi_put(cs, m);
    return rc;
}
/* ---- credentials: the cache every dialect's chain fills, and what the chains share ---- */

/* A small file read whole (config files, tokens); NULL if unreadable or larger than max. */
static char *cas__slurp_file(const char *path, size_t max, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char *t = NULL;
    size_t n = 0;
    if (fd < 0) return NULL;
    if (cas__read_all(fd, NULL, max, &t, &n) != 0) t = NULL;
    close(fd);
    if (len) *len = n;
    return (char *)t;
}

static void cas__trim(char **s, size_t *n) {
    while (*n && isspace((unsigned char)(*s)[0])) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* An unsigned request to a credentials endpoint; its body back (wipe it). */
static int cas__cred_fetch(cas__cloud *cs, const char *method, const char *url, const char *h1, const char *h2,
                           const char *body, cas__rq *r, char *msg, size_t cap) {
    int rc;
    cas__rq_init(r, method, NULL);
    r->sign = 0, r->quick = 1, r->keep = (size_t)1 << 20;
    r->body.secret = 1; /* credentials come in it */
    if (body) r->up = (const unsigned char *)body, r->up_len = strlen(body);
    if (cas__buf_addz(&r->url, url) < 0 || (h1 && !(r->hdr = curl_slist_append(r->hdr, h1))) ||
        (h2 && !(r->hdr = curl_slist_append(r->hdr, h2)))) {
        return cas__oom(msg, cap);
    }
    if ((rc = cas__rq_run(cs, r, msg, cap)) < 0) return rc;
    if (r->status != 200) { /* CAS_E_IO even for a 404: CAS_E_NOTFOUND would pass on to the chain's next link */
        cas__rq_why(r, CURLE_OK, msg, cap);
        return CAS_E_IO;
    }
    if (!r->body.p) cas__buf_put(&r->body, "", 0);
    return CAS_OK;
}

/* The store's credentials, refreshed five minutes before they expire (or now,
 * with force). The first success fixes which link serves this store. */
static int cas__cred_get(cas__cloud *cs, int force, cas__cred **out, char *msg, size_t cap) {
    int rc = CAS_OK, k, last = cs->d->cred_last;
    cas__mu_lock(&cs->cmu);
    if (!cs->cred || force || (cs->cred->expires && cas__now() > cs->cred->expires - 300)) {
        cas__cred *fresh = NULL;
        char why[400];
        why[0] = 0;
        rc = CAS_E_NOTFOUND;
        for (k = cs->cred_source ? cs->cred_source : 1; k <= last; k++) {
            rc = cs->d->cred_link(cs, k, &fresh, why, sizeof why);
            if (rc != CAS_E_NOTFOUND || cs->cred_source) break;
        }
        if (rc == CAS_OK) {
            cas__cred *old = cs->cred;
            cs->cred = fresh, cs->cred_source = k;
            if (old && --old->refs == 0) cas__cred_destroy(old);
        } else if (cs->cred && (!cs->cred->expires || cas__now() < cs->cred->expires)) {
            rc = CAS_OK; /* refresh failed, the old ones still hold: use them */
        } else if (rc == CAS_E_NOTFOUND) {
            cs->d->no_creds(cs, msg, cap);
        } else {
            cas__fmt(msg, cap, "%s", why);
        }
    }
    if (rc == CAS_OK) {
        cs->cred->refs++;
        *out = cs->cred;
    }
    cas__mu_unlock(&cs->cmu);
    return rc;
}
/* ---- object stores: names, URLs, answers --------------------------------- */

/* The URL of an object (name relative to the store's prefix, NULL for the
 * bucket itself) with an already sorted and encoded query (SigV4 signs it as written). */
static int cas__cloud_url(const cas__cloud *cs, cas__buf *u, const char *name, const char *query) {
    const char *sep = strstr(cs->endpoint, "://");
    u->len = 0;
    if (cs->path_style || !sep) {
        cas__buf_addz(u, cs->endpoint);
        cas__buf_addz(u, "/");
        cas__uri_encode(u, cs->bucket, 0);
    } else { /* virtual-hosted: https://bucket.host */
        cas__buf_put(u, cs->endpoint, (size_t)(sep + 3 - cs->endpoint));
        cas__buf_addz(u, cs->bucket);
        cas__buf_addz(u, ".");
        cas__buf_addz(u, sep + 3);
    }
    if (name || cs->d->root_slash) cas__buf_addz(u, "/");
    if (name) {
        cas__uri_encode(u, cs->prefix, 1);
        cas__uri_encode(u, name, 1);
    }
    if (query) cas__buf_addz(u, "?"), cas__buf_addz(u, query);
    return u->p ? CAS_OK : CAS_E_NOMEM;
}

/* The headers every write of an object carries: its metadata, and the
 * line its dialect adds (S3: the encryption Metaflow asks for). */
static int cas__cloud_write_headers(const cas__cloud *cs, struct curl_slist **h, const char *meta, size_t ml) {
    char line[CAS__CLOUD_META_MAX + 64];
    if (meta && ml > CAS__CLOUD_META_MAX) return CAS_E_ARG;
    if (meta && ml) { /* none: no header (curl would drop an empty one after it was signed) */
        snprintf(line, sizeof line, "%s: %.*s", cs->d->meta_header, (int)ml, meta);
        if (!(*h = curl_slist_append(*h, line))) return CAS_E_NOMEM;
    }
    if (cs->write_header && !(*h = curl_slist_append(*h, cs->write_header))) return CAS_E_NOMEM;
    return CAS_OK;
}

/* A final answer that is not what was wanted, as a status and a reason. */
static int cas__cloud_answer_fail(const cas__rq *r, char *msg, size_t cap) {
    cas__rq_why(r, CURLE_OK, msg, cap);
    if (r->status == 404 && strcmp(r->code, "NoSuchBucket") && strcmp(r->code, "NoSuchUpload") &&
        strcmp(r->code, "ContainerNotFound"))
        return CAS_E_NOTFOUND;
    return CAS_E_IO;
}
/* ---- object stores: reading an object as a stream ------------------------ */
/* One GET whose bytes flow through a small buffer as the reader asks for them:
 * the transfer pauses when the buffer is full, so memory stays bounded. A
 * transfer that breaks resumes where it stopped (Range, If-Match on the ETag). */

typedef struct cas__cloudobj {
    cas__xfer x; /* the GET, on m; x.r is r */
    cas__cloud *cs;
    cas__rq r;
    CURLM *m;
    unsigned char *buf;
    size_t cap, len, pos;
    int paused, running, head_only, again; /* again: the ended transfer's verdict */
    CURLcode cc;
    uint64_t size, delivered, skip;
    int size_known; /* the first answer stated its length */
    char etag[130];
    char meta[CAS__CLOUD_META_MAX + 1];
    size_t meta_len;
    int has_meta;
    volatile int cancel; /* set by close while the read-ahead thread pumps */
    unsigned char *dst;  /* the reader's buffer while it waits */
    size_t dcap, dlen;
    struct cas__ahead *ahead; /* large objects: the transfer runs on a thread of its own */
} cas__cloudobj;

/* The transfer's bytes: straight into the reader's buffer when it waits with
 * an empty one (no copy in between), the rest into the object's buffer; when
 * neither has room for the whole piece, pause (libcurl delivers it again). */
static size_t cas__obj_write(char *p, size_t size, size_t nitems, void *u) {
    cas__cloudobj *o = (cas__cloudobj *)u;
    size_t n = size * nitems, sk, rest, direct = 0;
    long st = cas__rq_status(&o->r);
    if (st < 200 || st >= 300) return cas__rq_write(p, size, nitems, &o->r); /* an error's body */
    sk = (size_t)CAS__MIN((uint64_t)n, o->skip);
    rest = n - sk;
    if (o->pos == o->len) o->pos = o->len = 0;
    if (o->cap - o->len < rest && o->pos) {
        memmove(o->buf, o->buf + o->pos, o->len - o->pos);
        o->len -= o->pos, o->pos = 0;
    }
    if (o->dst && o->len == 0) direct = CAS__MIN(rest, o->dcap - o->dlen);
    if (o->cap - o->len < rest - direct) {
        if (o->len || direct) {
            o->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        return 0; /* a piece larger than the whole buffer: cannot happen with BUFFERSIZE below cap */
    }
    o->skip -= sk;
    if (direct) memcpy(o->dst + o->dlen, p + sk, direct), o->dlen += direct;
    memcpy(o->buf + o->len, p + sk + direct, rest - direct);
    o->len += rest - direct;
    return n;
}

static void cas__ahead_start(cas__cloudobj *o);
static void cas__ahead_stop(cas__cloudobj *o);

static void cas__obj_stop(cas__cloudobj *o) {
    cas__xfer_stop(o->cs, o->m, &o->x);
    o->running = 0, o->paused = 0;
}

static int cas__obj_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__cloudobj *o = (cas__cloudobj *)ctx;
    (void)x;
    o->running = 0, o->paused = 0, o->cc = cc, o->again = again;
    return CAS_OK;
}

/* Runs the transfer until the headers are in (headers), bytes are buffered, or it ends. */
static void cas__obj_pump(cas__cloudobj *o, int headers) {
    for (;;) {
        cas__multi_turn(o->cs, o->m, cas__obj_ended, o);
        if (!o->running || o->paused || o->cancel) return;
        if (headers ? o->r.hdr_done : o->len > o->pos || o->dlen) return;
        cas__multi_wait(o->m, 200);
    }
}

/* Is a 200/206 the answer asked for? The first GET asks for the whole object: a
 * 206 is not that. A resume asks for bytes=DELIVERED-: a 206 must start there and
 * state the object's size (Content-Range), a 200 must be the whole object again;
 * either must be the same version (its ETag). 0 if so; 1 if not (retried, as a
 * server's fault); -1 if the object changed (not retried). why gets the reason. */
static int cas__obj_answer_bad(cas__cloudobj *o, char *why, size_t cap) {
    const cas__rq *r = &o->r;
    uint64_t first, last, total;
    if (!o->delivered) {
        if (r->status == 200) return 0;
        cas__fmt(why, cap, "the server answered a GET for the whole object with HTTP %ld", r->status);
        return 1;
    }
    if (o->etag[0] && r->etag[0] && strcmp(o->etag, r->etag)) {
        cas__fmt(why, cap, "the object changed while it was being read (its ETag went from %.64s to %.64s)", o->etag,
                 r->etag);
        return -1;
    }
    if (r->status == 200) {
        if (!o->size_known || (r->length >= 0 && (uint64_t)r->length == o->size)) return 0;
        cas__fmt(why, cap, "the server answered the resume at byte %llu with the whole object, %lld bytes, not %llu",
                 (unsigned long long)o->delivered, (long long)r->length, (unsigned long long)o->size);
        return 1;
    }
    if (!cas__content_range(r->range, &first, &last, &total) || first != o->delivered || last + 1 != total ||
        (o->size_known && total != o->size) || (r->length >= 0 && (uint64_t)r->length != last - first + 1)) {
        cas__fmt(why, cap, "the server answered the resume at byte %llu of %llu with Content-Range '%.60s'",
                 (unsigned long long)o->delivered, (unsigned long long)o->size, r->range[0] ? r->range : "(none)");
        return 1;
    }
    if (!o->size_known) o->size = total, o->size_known = 1;
    return 0;
}

/* Starts (or resumes from o->delivered) the GET and waits for its answer's headers:
 * CAS_OK when the bytes are flowing, else a status with the reason in msg. */
static int cas__obj_start(cas__cloudobj *o, char *msg, size_t cap) {
    cas__cloud *cs = o->cs;
    int attempts = (int)cas__cloudp(cs, CAS_PARAM_CLOUD_ATTEMPTS), rc;
    for (;;) {
        curl_slist_free_all(o->r.hdr);
        o->r.hdr = NULL;
        if (o->delivered) { /* a resume: the rest of the same version */
            char line[200];
            struct curl_slist *h;
            snprintf(line, sizeof line, "Range: bytes=%llu-", (unsigned long long)o->delivered);
            if ((h = curl_slist_append(NULL, line)) != NULL && o->etag[0]) {
                snprintf(line, sizeof line, "If-Match: %s", o->etag);
                if (!curl_slist_append(h, line)) curl_slist_free_all(h), h = NULL;
            }
            if (!(o->r.hdr = h)) return cas__oom(msg, cap);
        }
        o->len = o->pos = 0, o->skip = 0, o->paused = 0, o->cc = CURLE_OK, o->again = 0;
        if ((rc = cas__xfer_start(cs, o->m, &o->x, cas__obj_write, o, msg, cap)) < 0) return rc;
        o->running = 1;
        cas__obj_pump(o, 1);
        if (o->cancel) {
            cas__obj_stop(o);
            cas__fmt(msg, cap, "the stream was closed");
            return CAS_E_STATE;
        }
        if (o->running) o->r.status = cas__rq_status(&o->r); /* else the driver read it */
        if (o->r.hdr_done && (o->r.status == 200 || o->r.status == 206)) {
            if ((rc = cas__obj_answer_bad(o, msg, cap)) != 0) {
                cas__obj_stop(o); /* not the bytes asked for: none of them is taken */
                if (rc > 0 && o->r.tries < attempts) {
                    cas__cloud_backoff(cs, o->r.tries);
                    continue;
                }
                return CAS_E_IO;
            }
            if (o->r.status == 200 && o->delivered) o->skip = o->delivered; /* the server sent it all again */
            if (!o->delivered) {
                o->size = o->r.length >= 0 ? (uint64_t)o->r.length : 0, o->size_known = o->r.length >= 0;
                snprintf(o->etag, sizeof o->etag, "%s", o->r.etag);
                if ((o->has_meta = o->r.has_meta) != 0) memcpy(o->meta, o->r.meta, o->r.meta_len + 1);
                o->meta_len = o->r.meta_len;
            }
            return CAS_OK;
        }
        while (o->running && !o->paused && !o->cancel) cas__obj_pump(o, 0); /* an error: its body, to the end */
        if (o->running) o->r.status = cas__rq_status(&o->r), o->again = 0;  /* stopped inside a 2xx not asked for */
        cas__obj_stop(o);
        if (o->cc == CURLE_OK && o->r.status == 412 && o->delivered) {
            cas__fmt(msg, cap, "the object changed while it was being read");
            return CAS_E_IO;
        }
        if (o->again && o->r.tries < attempts) {
            cas__cloud_backoff(cs, o->r.tries);
            continue;
        }
        if (o->cc != CURLE_OK) {
            cas__rq_why(&o->r, o->cc, msg, cap);
            return CAS_E_IO;
        }
        return cas__cloud_answer_fail(&o->r, msg, cap);
    }
}

static void cas__cloud_close(void *u, void *obj) {
    cas__cloudobj *o = (cas__cloudobj *)obj;
    (void)u;
    if (!o) return;
    cas__ahead_stop(o);
    cas__obj_stop(o);
    cas__multi_put(o->cs, o->m);
    cas__rq_free(&o->r);
    cas__free(&o->cs->alloc, o->buf);
    cas__free(&o->cs->alloc, o);
}

static int cas__cloud_open(void *u, const char *name, unsigned flags, void **out, cas_object_info *info, char *msg,
                           size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloudobj *o = (cas__cloudobj *)cas__calloc(&cs->alloc, sizeof *o);
    int rc;
    *out = NULL;
    if (!o) {
        return cas__oom(msg, cap);
    }
    o->cs = cs;
    o->head_only = (flags & CAS_OPEN_HEAD) != 0;
    cas__rq_init(&o->r, o->head_only ? "HEAD" : "GET", &cs->alloc);
    o->x.r = &o->r;
    o->r.recv_buf = 512L * 1024; /* libcurl's largest */
    if (cas__cloud_url(cs, &o->r.url, name, NULL) < 0) {
        cas__cloud_close(u, o);
        return cas__oom(msg, cap);
    }
    if (o->head_only) { /* a HEAD: size and metadata, no transfer kept */
        rc = cas__rq_run(cs, &o->r, msg, cap);
        if (rc == CAS_OK && o->r.status != 200) rc = cas__cloud_answer_fail(&o->r, msg, cap);
        if (rc == CAS_OK) {
            o->size = o->r.length >= 0 ? (uint64_t)o->r.length : 0;
            if ((o->has_meta = o->r.has_meta) != 0) memcpy(o->meta, o->r.meta, o->r.meta_len + 1);
            o->meta_len = o->r.meta_len;
        }
    } else {
        o->cap = CAS__CLOUD_STREAM_BUF;
        o->buf = (unsigned char *)cas__alloc(&cs->alloc, o->cap);
        o->m = cas__multi_get(cs);
        rc = o->buf && o->m ? cas__obj_start(o, msg, cap) : cas__oom(msg, cap);
    }
    if (rc < 0) {
        cas__cloud_close(u, o);
        return rc;
    }
    if (!o->head_only) cas__ahead_start(o);
    memset(info, 0, sizeof *info);
    info->size = o->size;
    info->mtime = o->r.mtime;
    info->meta = o->has_meta ? o->meta : NULL;
    info->meta_len = o->meta_len;
    *out = o;
    return CAS_OK;
}

/* The transfer's next bytes, pumping it on this thread. */
static int cas__obj_read(cas__cloudobj *o, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    *got = 0;
    for (;;) {
        if (o->cancel) {
            cas__fmt(msg, mcap, "the stream was closed");
            return CAS_E_STATE;
        }
        if (o->pos < o->len) {
            size_t k = CAS__MIN(cap, o->len - o->pos);
            memcpy(buf, o->buf + o->pos, k);
            o->pos += k, o->delivered += k;
            *got = k;
            return CAS_OK;
        }
        if (!o->running) {
            int rc;
            if (o->cc == CURLE_OK && o->delivered >= o->size) return CAS_OK; /* the end */
            /* the transfer broke (a reset, a stall, a body cut short): resume it */
            if (o->r.tries >= (int)cas__cloudp(o->cs, CAS_PARAM_CLOUD_ATTEMPTS) ||
                (o->cc != CURLE_OK && !cas__cc_transient(o->cc))) {
                CURLcode cc = o->cc != CURLE_OK ? o->cc : CURLE_PARTIAL_FILE;
                cas__rq_why(&o->r, cc, msg, mcap);
                return CAS_E_IO;
            }
            cas__obj_stop(o);
            cas__cloud_backoff(o->cs, o->r.tries);
            if ((rc = cas__obj_start(o, msg, mcap)) < 0) return rc;
            continue;
        }
        o->dst = (unsigned char *)buf, o->dcap = cap, o->dlen = 0;
        if (o->paused) {
            o->paused = 0;
            curl_easy_pause(o->x.e, CURLPAUSE_CONT);
        }
        cas__obj_pump(o, 0);
        o->dst = NULL;
        if (o->dlen) {
            o->delivered += o->dlen;
            *got = o->dlen;
            o->dlen = 0;
            return CAS_OK;
        }
    }
}

/* Read-ahead for large objects: a thread fills a ring of chunks while the reader
 * decodes, so that the network and the decoder use a core each (a 1 GiB gzip
 * artifact decodes at the speed of its decoder, an LZ4 one at the speed of the
 * network). Objects of CAS_PARAM_CLOUD_RANGED_MIN bytes and more come as ranged GETs
 * of one chunk each, CAS__AHEAD_CHUNKS in flight (If-Match on the first answer's
 * ETag), as the AWS and Azure SDKs read large objects: one connection to a cloud
 * store carries some tens of MB/s, several carry more. A server on this machine
 * is read in one GET by default (cas__endpoint_local): one stream from it is not
 * the limit, and ranges only cost it CPU (measured: 3x slower on azurite, 1.6x on
 * radosgw, for a 43 MB blob).
 * Chunks may land out of order; the reader takes them in order. */
#ifndef CAS_NO_THREADS
#define CAS__AHEAD_MIN ((uint64_t)8 << 20)
#define CAS__AHEAD_CHUNK ((size_t)1 << 20)  /* one transfer: what each fill moves */
#define CAS__RANGED_CHUNK ((size_t)4 << 20) /* ranged: one GET each */
#define CAS__AHEAD_CHUNKS 4

struct cas__ahead {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *slab;
    size_t chunk; /* bytes per slot */
    size_t fill[CAS__AHEAD_CHUNKS], rpos;
    int ready[CAS__AHEAD_CHUNKS];   /* the slot's bytes are all in */
    int head, count, eof, rc, stop; /* count: slots taken from head on (filling or ready) */
    CURLM *m;                       /* ranged: the GETs' multi handle, woken when a slot frees */
    char msg[CAS__MSG];
};

/* One ranged GET into its slot. */
typedef struct cas__rslot {
    cas__xfer x; /* first: the driver hands back &x */
    cas__rq r;
    cas__cloudobj *o;
    unsigned char *dst;
    size_t want, got;
    uint64_t off;
    int state, slot; /* state: 0 idle, 1 waiting (x.due), 2 in flight */
    int overflow;    /* the answer was not the range asked for (retried) */
    int changed;     /* ... nor the version the first answer was (not retried) */
} cas__rslot;

static size_t cas__range_write(char *p, size_t size, size_t nitems, void *u) {
    cas__rslot *s = (cas__rslot *)u;
    size_t n = size * nitems;
    long st = cas__rq_status(&s->r);
    uint64_t first, last, total;
    if (st < 200 || st >= 300) return cas__rq_write(p, size, nitems, &s->r); /* an error's body */
    if (!s->got) { /* the answer's first bytes: are they the range asked for, of the same version? */
        const char *etag = s->o->etag;
        if (etag[0] && s->r.etag[0] && strcmp(etag, s->r.etag)) {
            s->changed = 1;
            return 0;
        }
        if (st != 206 || !cas__content_range(s->r.range, &first, &last, &total) || first != s->off ||
            last + 1 != s->off + s->want || total != s->o->size) {
            s->overflow = 1;
            return 0;
        }
    }
    if (n > s->want - s->got) { /* more than asked (a 206 of the range asked for: checked above) */
        s->overflow = 1;
        return 0;
    }
    memcpy(s->dst + s->got, p, n);
    s->got += n;
    return n;
}

static int cas__range_start(cas__rslot *s, CURLM *m, char *msg, size_t cap) {
    cas__cloudobj *o = s->o;
    char line[200];
    int rc;
    curl_slist_free_all(s->r.hdr);
    s->r.hdr = NULL, s->got = 0, s->overflow = 0, s->changed = 0;
    if (!s->r.url.len && cas__buf_put(&s->r.url, o->r.url.p, o->r.url.len) < 0) return cas__oom(msg, cap);
    snprintf(line, sizeof line, "Range: bytes=%llu-%llu", (unsigned long long)s->off,
             (unsigned long long)(s->off + s->want - 1));
    if (!(s->r.hdr = curl_slist_append(s->r.hdr, line))) return cas__oom(msg, cap);
    if (o->etag[0]) {
        snprintf(line, sizeof line, "If-Match: %s", o->etag);
        if (!(s->r.hdr = curl_slist_append(s->r.hdr, line))) return cas__oom(msg, cap);
    }
    if ((rc = cas__xfer_start(o->cs, m, &s->x, cas__range_write, s, msg, cap)) < 0) return rc;
    s->state = 2;
    return CAS_OK;
}

/* A range that ended: in (the reader's now), to try again after its backoff, or the
 * read's end (an error, its reason in the turn's msg). */
typedef struct cas__ranged_turn {
    struct cas__ahead *a;
    int attempts, *active;
    char *msg;
} cas__ranged_turn;

static int cas__range_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__ranged_turn *t = (cas__ranged_turn *)ctx;
    cas__rslot *s = (cas__rslot *)(void *)x;
    struct cas__ahead *a = t->a;
    (*t->active)--;
    if (cc == CURLE_OK && s->r.status == 206 && s->got == s->want) { /* in: the reader's now */
        pthread_mutex_lock(&a->mu);
        a->fill[s->slot] = s->got, a->ready[s->slot] = 1, s->state = 0;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        return CAS_OK;
    }
    if ((cc == CURLE_OK && s->r.status == 412) || s->changed) {
        cas__fmt(t->msg, CAS__MSG, "the object changed while it was being read%s", s->changed ? " (its ETag)" : "");
        return CAS_E_IO;
    }
    if ((cc == CURLE_OK && s->r.status == 206) || s->overflow) again = 1; /* short, or not the range asked */
    if (again && s->r.tries < t->attempts) {
        s->state = 1, s->x.due = cas__ms() + cas__cloud_backoff_ms(s->o->cs, s->r.tries);
        return CAS_OK;
    }
    if (s->overflow)
        cas__fmt(t->msg, CAS__MSG,
                 "the answer to a ranged GET of bytes %llu-%llu was not that range (HTTP %ld, "
                 "Content-Range '%.60s')",
                 (unsigned long long)s->off, (unsigned long long)(s->off + s->want - 1), s->r.status,
                 s->r.range[0] ? s->r.range : "(none)");
    else if (cc != CURLE_OK) cas__rq_why(&s->r, cc, t->msg, CAS__MSG);
    else if (s->r.status == 206)
        cas__fmt(t->msg, CAS__MSG, "a range came short (%lu of %lu bytes)", (unsigned long)s->got,
                 (unsigned long)s->want);
    else cas__cloud_answer_fail(&s->r, t->msg, CAS__MSG);
    return CAS_E_IO;
}

/* The ranged read-ahead: keeps every free slot's GET going, hands finished slots
 * to the reader, retries a failed range after its backoff. Returns when the last
 * chunk is in, on a final error, or when stopped. */
static void cas__ahead_ranged(cas__cloudobj *o) {
    struct cas__ahead *a = o->ahead;
    cas__rslot sl[CAS__AHEAD_CHUNKS];
    CURLM *m = cas__multi_get(o->cs);
    uint64_t next = 0; /* the offset of the next chunk to ask for */
    int i, rc = CAS_OK, active = 0;
    char msg[CAS__MSG];
    cas__ranged_turn turn;
    msg[0] = 0;
    turn.a = a, turn.attempts = (int)cas__cloudp(o->cs, CAS_PARAM_CLOUD_ATTEMPTS), turn.active = &active,
    turn.msg = msg;
    memset(sl, 0, sizeof sl);
    for (i = 0; i < CAS__AHEAD_CHUNKS; i++) {
        sl[i].o = o, sl[i].slot = i;
        cas__rq_init(&sl[i].r, "GET", &o->cs->alloc);
        sl[i].x.r = &sl[i].r;
    }
    if (!m) rc = cas__oom(msg, sizeof msg);
    pthread_mutex_lock(&a->mu);
    a->m = m;
    pthread_mutex_unlock(&a->mu);
    while (rc == CAS_OK) {
        int64_t now = cas__ms();
        pthread_mutex_lock(&a->mu);
        if (a->stop) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        while (a->count < CAS__AHEAD_CHUNKS && next < o->size) { /* a free slot: the next chunk */
            cas__rslot *s = &sl[(a->head + a->count) % CAS__AHEAD_CHUNKS];
            s->off = next, s->want = (size_t)CAS__MIN((uint64_t)a->chunk, o->size - next);
            s->dst = a->slab + (size_t)s->slot * a->chunk, s->state = 1, s->x.due = 0, s->r.tries = 0;
            a->ready[s->slot] = 0, a->count++;
            next += s->want;
        }
        if (next >= o->size) a->eof = 1; /* every chunk asked for: the reader ends after the last */
        pthread_mutex_unlock(&a->mu);
        for (i = 0; i < CAS__AHEAD_CHUNKS && rc == CAS_OK; i++)
            if (sl[i].state == 1 && sl[i].x.due <= now) {
                if ((rc = cas__range_start(&sl[i], m, msg, sizeof msg)) == CAS_OK) active++;
            }
        if (rc < 0) break;
        rc = cas__multi_turn(o->cs, m, cas__range_ended, &turn);
        if (rc < 0) break;
        pthread_mutex_lock(&a->mu);
        if (a->eof && !active) { /* everything asked for is in */
            int pending = 0;
            for (i = 0; i < CAS__AHEAD_CHUNKS; i++) pending |= sl[i].state != 0;
            if (!pending) {
                pthread_mutex_unlock(&a->mu);
                break;
            }
        }
        pthread_mutex_unlock(&a->mu);
        cas__multi_wait(m, 1000); /* a transfer's bytes, or the reader freeing a slot */
    }
    for (i = 0; i < CAS__AHEAD_CHUNKS; i++) {
        cas__xfer_stop(o->cs, m, &sl[i].x);
        cas__rq_free(&sl[i].r);
    }
    pthread_mutex_lock(&a->mu);
    a->m = NULL;
    if (rc < 0) a->rc = rc, memcpy(a->msg, msg, sizeof msg);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    cas__multi_put(o->cs, m);
}

static void *cas__ahead_run(void *arg) {
    cas__cloudobj *o = (cas__cloudobj *)arg;
    struct cas__ahead *a = o->ahead;
    if (a->chunk == CAS__RANGED_CHUNK) {
        cas__ahead_ranged(o);
        return NULL;
    }
    for (;;) { /* one transfer, chunk after chunk */
        size_t n = 0, got;
        int rc = CAS_OK, slot;
        char msg[CAS__MSG];
        pthread_mutex_lock(&a->mu);
        while (a->count == CAS__AHEAD_CHUNKS && !a->stop) pthread_cond_wait(&a->cv, &a->mu);
        if (a->stop) {
            pthread_mutex_unlock(&a->mu);
            return NULL;
        }
        slot = (a->head + a->count) % CAS__AHEAD_CHUNKS; /* a free chunk: the reader never touches it */
        pthread_mutex_unlock(&a->mu);
        msg[0] = 0;
        while (n < a->chunk) {
            rc = cas__obj_read(o, a->slab + (size_t)slot * a->chunk + n, a->chunk - n, &got, msg, sizeof msg);
            if (rc < 0 || !got) break;
            n += got;
        }
        pthread_mutex_lock(&a->mu);
        if (n) a->fill[slot] = n, a->ready[slot] = 1, a->count++;
        if (rc < 0) a->rc = rc, memcpy(a->msg, msg, sizeof msg);
        else if (n < a->chunk) a->eof = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        if (rc < 0 || n < a->chunk) return NULL;
    }
}

static int cas__ahead_read(cas__cloudobj *o, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    struct cas__ahead *a = o->ahead;
    size_t k;
    pthread_mutex_lock(&a->mu);
    while (!(a->count && a->ready[a->head]) && !(a->eof && !a->count) && !a->rc) pthread_cond_wait(&a->cv, &a->mu);
    if (!(a->count && a->ready[a->head])) { /* drained: the end, or what stopped the transfer */
        int rc = a->rc;
        if (rc) cas__fmt(msg, mcap, "%s", a->msg);
        pthread_mutex_unlock(&a->mu);
        return rc;
    }
    pthread_mutex_unlock(&a->mu);
    k = CAS__MIN(cap, a->fill[a->head] - a->rpos); /* the head chunk is the reader's until it is handed back */
    memcpy(buf, a->slab + (size_t)a->head * a->chunk + a->rpos, k);
    a->rpos += k;
    *got = k;
    if (a->rpos == a->fill[a->head]) {
        pthread_mutex_lock(&a->mu);
        a->ready[a->head] = 0, a->head = (a->head + 1) % CAS__AHEAD_CHUNKS, a->count--, a->rpos = 0;
        pthread_cond_broadcast(&a->cv);
        if (a->m) curl_multi_wakeup(a->m); /* the ranged GETs: a slot for the next chunk */
        pthread_mutex_unlock(&a->mu);
    }
    return CAS_OK;
}

/* Starts the read-ahead of a large object; without it (no memory, no thread) reads run inline. */
static void cas__ahead_start(cas__cloudobj *o) {
    struct cas__ahead *a;
    int64_t from = cas__cloudp(o->cs, CAS_PARAM_CLOUD_RANGED_MIN);
    int ranged = from > 0 && o->size >= (uint64_t)from && cas__cloudp(o->cs, CAS_PARAM_CLOUD_CONNECTIONS) > 1;
    size_t chunk = ranged ? CAS__RANGED_CHUNK : CAS__AHEAD_CHUNK;
    if (o->size < CAS__AHEAD_MIN || !(a = (struct cas__ahead *)cas__calloc(&o->cs->alloc, sizeof *a))) return;
    if (!(a->slab = (unsigned char *)cas__alloc(&o->cs->alloc, chunk * CAS__AHEAD_CHUNKS)) ||
        pthread_mutex_init(&a->mu, NULL) != 0) {
        cas__free(&o->cs->alloc, a->slab);
        cas__free(&o->cs->alloc, a);
        return;
    }
    if (pthread_cond_init(&a->cv, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        cas__free(&o->cs->alloc, a->slab);
        cas__free(&o->cs->alloc, a);
        return;
    }
    a->chunk = chunk;
    if (ranged) cas__obj_stop(o); /* the first GET gave the size and the ETag; ranges bring the bytes */
    o->ahead = a;
    if (pthread_create(&a->th, NULL, cas__ahead_run, o) != 0) {
        o->ahead = NULL;
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        cas__free(&o->cs->alloc, a->slab);
        cas__free(&o->cs->alloc, a);
        if (ranged) { /* reads run inline on a new transfer from the start */
            char msg[CAS__MSG];
            o->r.tries = 0;
            if (cas__obj_start(o, msg, sizeof msg) < 0) o->running = 0, o->cc = CURLE_COULDNT_CONNECT;
        }
    }
}

static void cas__ahead_stop(cas__cloudobj *o) {
    struct cas__ahead *a = o->ahead;
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1, o->cancel = 1; /* a transfer in progress gives up at its next pump */
    pthread_cond_broadcast(&a->cv);
    if (a->m) curl_multi_wakeup(a->m);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    cas__free(&o->cs->alloc, a->slab);
    cas__free(&o->cs->alloc, a);
    o->ahead = NULL;
}
#else
static void cas__ahead_start(cas__cloudobj *o) { (void)o; }
static void cas__ahead_stop(cas__cloudobj *o) { (void)o; }
#endif

static int cas__cloud_read(void *u, void *obj, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    cas__cloudobj *o = (cas__cloudobj *)obj;
    (void)u;
    *got = 0;
    if (o->head_only) {
        cas__fmt(msg, mcap, "opened for its metadata only");
        return CAS_E_STATE;
    }
#ifndef CAS_NO_THREADS
    if (o->ahead) return cas__ahead_read(o, buf, cap, got, msg, mcap);
#endif
    return cas__obj_read(o, buf, cap, got, msg, mcap);
}
/* ---- object stores: writing an object ------------------------------------ */
/* Up to one part size an object goes in one PUT; beyond, a multipart upload
 * (its metadata given when it starts, the object visible only when it
 * completes, aborted on any failure). When the name is not known yet (the key
 * is the hash of the bytes), the bytes beyond the first part wait in an
 * unlinked temp file until commit names them. */

typedef struct cas__cloudw {
    cas__cloud *cs;
    char *name; /* NULL until commit when created without one */
    char meta[CAS__CLOUD_META_MAX + 1];
    size_t meta_len;
    unsigned char *buf;
    size_t len, cap;
    int spool; /* temp file fd, -1 if none */
    uint64_t spooled, total;
    char upload[512]; /* the multipart upload's id, "" if none */
    cas__buf parts;   /* <Part> elements for CompleteMultipartUpload */
    int nparts;
} cas__cloudw;

static size_t cas__cloudw_part(const cas__cloudw *w) {
    uint64_t p = (uint64_t)cas__cloudp(w->cs, CAS_PARAM_CLOUD_PART_SIZE);
    int k;
    for (k = 0; k < w->nparts / 1000 && p < ((uint64_t)1 << 30); k++) p *= 2; /* 10000 parts reach 5 TB */
    return (size_t)p;
}

static int cas__cloudw_fail(char *msg, size_t cap, const char *what, const char *why) {
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s", why);
    cas__fmt(msg, cap, "%s: %s", what, tmp);
    return CAS_E_IO;
}

/* PUT ?partNumber=N&uploadId=..: one part, with its SHA-256 (a body changed in transit is refused).
 * Azure: PUT ?blockid=..&comp=block, one uncommitted block of the blob. */
static int cas__cloudw_put_part(cas__cloudw *w, const unsigned char *p, size_t n, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__buf q;
    cas__rq r;
    char sha[65], line[300], id[CAS__PART_ID];
    int rc;
    if (!w->upload[0] && (rc = cs->d->upload_begin(w, msg, cap)) < 0) return rc;
    if (w->nparts >= CAS__CLOUD_MAX_PARTS) return cas__cloudw_fail(msg, cap, "uploading", "over 10000 parts");
    memset(&q, 0, sizeof q);
    q.a = &cs->alloc;
    cs->d->part_query(w, w->nparts + 1, &q, id);
    cas__rq_init(&r, "PUT", &cs->alloc);
    cas__sha256_hex(p, n, sha);
    r.up = p, r.up_len = n, r.up_sha = sha;
    if (!q.p || cas__cloud_url(cs, &r.url, w->name, q.p) < 0) rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK &&
             !cs->d->part_entry(&r, w->nparts + 1, id, line, sizeof line))
        rc = cas__cloud_answer_fail(&r, msg, cap);
    if (rc == CAS_OK) {
        w->nparts++;
        if (cas__buf_addz(&w->parts, line) < 0) rc = cas__oom(msg, cap);
    } else {
        char why[400];
        snprintf(why, sizeof why, "%s", msg);
        snprintf(line, sizeof line, "uploading part %d", w->nparts + 1);
        rc = rc == CAS_E_NOMEM ? rc : cas__cloudw_fail(msg, cap, line, why);
    }
    cas__free(&cs->alloc, q.p);
    cas__rq_free(&r);
    return rc;
}

/* DELETE ?uploadId=..: no parts are left behind (best effort; gc catches the rest). */
static void cas__cloudw_abort_upload(cas__cloudw *w) {
    cas__buf q;
    cas__rq r;
    char msg[300];
    if (w->cs->d->drops_uploads) w->upload[0] = 0; /* Azure: uncommitted blocks go after a week at most */
    if (!w->upload[0]) return;
    memset(&q, 0, sizeof q);
    q.a = &w->cs->alloc;
    cas__buf_addz(&q, "uploadId=");
    cas__uri_encode(&q, w->upload, 0);
    cas__rq_init(&r, "DELETE", &w->cs->alloc);
    if (q.p && cas__cloud_url(w->cs, &r.url, w->name, q.p) == CAS_OK) cas__rq_run(w->cs, &r, msg, sizeof msg);
    cas__free(&w->cs->alloc, q.p);
    cas__rq_free(&r);
    w->upload[0] = 0;
}

static int cas__cloudw_spool(cas__cloudw *w, const unsigned char *p, size_t n, char *msg, size_t cap) {
    if (w->spool < 0) { /* mkstemp's file, close-on-exec from its first moment (mkostemp is not POSIX) */
        const char *dir = getenv("TMPDIR");
        char path[4096];
        int tries = 0;
        do {
            snprintf(path, sizeof path, "%s/cas-spool-%016llx", dir && dir[0] ? dir : "/tmp",
                     (unsigned long long)cas__cloud_random(w->cs));
            w->spool = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        } while (w->spool < 0 && errno == EEXIST && ++tries < 100);
        if (w->spool < 0)
            return cas__cloudw_fail(msg, cap, "cannot create a temp file for the upload", strerror(errno));
        unlink(path); /* gone with the process, whatever happens */
    }
    {
        int e = cas__write_all(w->spool, p, n);
        if (e) return cas__cloudw_fail(msg, cap, "cannot write a temp file for the upload", strerror(e));
    }
    w->spooled += n;
    return CAS_OK;
}

static int cas__cloud_create(void *u, const char *dir, const char *name, const char *meta, size_t ml, void **out,
                             char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloudw *w;
    (void)dir;
    *out = NULL;
    if (ml > CAS__CLOUD_META_MAX) {
        cas__fmt(msg, cap, "metadata over 2 KB (S3's limit)");
        return CAS_E_ARG;
    }
    if (!(w = (cas__cloudw *)cas__calloc(&cs->alloc, sizeof *w))) {
        return cas__oom(msg, cap);
    }
    w->cs = cs, w->spool = -1, w->parts.a = &cs->alloc;
    if (meta) memcpy(w->meta, meta, ml), w->meta_len = ml;
    w->meta[ml] = 0;
    if (name && !(w->name = (char *)cas__alloc(&cs->alloc, strlen(name) + 1))) {
        cas__free(&cs->alloc, w);
        return cas__oom(msg, cap);
    }
    if (name) memcpy(w->name, name, strlen(name) + 1);
    *out = w;
    return CAS_OK;
}

static int cas__cloud_write(void *u, void *wp, const void *data, size_t n, char *msg, size_t cap) {
    cas__cloudw *w = (cas__cloudw *)wp;
    const unsigned char *p = (const unsigned char *)data;
    int rc;
    (void)u;
    while (n) {
        size_t part = cas__cloudw_part(w), k;
        if (w->len == part) { /* a full part: up it goes (or into the spool, nameless) */
            rc = w->name ? cas__cloudw_put_part(w, w->buf, w->len, msg, cap)
                         : cas__cloudw_spool(w, w->buf, w->len, msg, cap);
            if (rc < 0) return rc;
            w->len = 0;
            continue;
        }
        if (!w->len && w->name && (n > part || (w->upload[0] && n == part))) { /* straight from the caller's bytes */
            if ((rc = cas__cloudw_put_part(w, p, part, msg, cap)) < 0) return rc;
            p += part, n -= part, w->total += part;
            continue;
        }
        if (w->cap < part) { /* grows to one part at most */
            size_t nc = CAS__MIN(part, CAS__MAXZ(w->len + n, CAS__MAXZ(w->cap * 2, (size_t)64 << 10)));
            unsigned char *nb = (unsigned char *)cas__alloc(&w->cs->alloc, nc);
            if (!nb) {
                cas__fmt(msg, cap, "out of memory");
                return CAS_E_NOMEM;
            }
            if (w->len) memcpy(nb, w->buf, w->len);
            cas__free(&w->cs->alloc, w->buf);
            w->buf = nb, w->cap = nc;
        }
        k = CAS__MIN(n, CAS__MIN(w->cap, part) - w->len);
        memcpy(w->buf + w->len, p, k);
        w->len += k, p += k, n -= k, w->total += k;
    }
    return CAS_OK;
}

/* After a completion whose answer was lost: is the object there, whole? */
static int cas__cloudw_landed(cas__cloudw *w) {
    cas__rq r;
    char msg[200];
    int ok;
    cas__rq_init(&r, "HEAD", &w->cs->alloc);
    ok = cas__cloud_url(w->cs, &r.url, w->name, NULL) == CAS_OK && cas__rq_run(w->cs, &r, msg, sizeof msg) == CAS_OK &&
         r.status == 200 && r.length >= 0 && (uint64_t)r.length == w->total && r.has_meta &&
         r.meta_len == w->meta_len && !memcmp(r.meta, w->meta, w->meta_len);
    cas__rq_free(&r);
    return ok;
}

/* POST ?uploadId=..: the parts become the object. Repeated after a lost answer,
 * it finds the upload gone; the object then tells whether the first try landed. */
static int cas__cloudw_complete(cas__cloudw *w, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__buf q, body;
    cas__rq r;
    int rc;
    memset(&q, 0, sizeof q), memset(&body, 0, sizeof body);
    q.a = body.a = &cs->alloc;
    cs->d->complete_query(w, &q);
    cas__buf_addz(&body, cs->d->complete_open);
    cas__buf_put(&body, w->parts.p ? w->parts.p : "", w->parts.len);
    cas__buf_addz(&body, cs->d->complete_close);
    cas__rq_init(&r, cs->d->complete_method, &cs->alloc);
    r.keep = (size_t)1 << 20;
    r.up = (const unsigned char *)body.p, r.up_len = body.len;
    if (!q.p || !body.p || cas__cloud_url(cs, &r.url, w->name, q.p) < 0 ||
        !(r.hdr = curl_slist_append(r.hdr, "Content-Type: application/xml")) ||
        (cs->d->complete_meta && cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0))
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK && (rc = cs->d->complete_answer(w, &r, msg, cap)) == CAS_OK)
        w->upload[0] = 0; /* done: nothing to abort */
    cas__free(&cs->alloc, q.p);
    cas__free(&cs->alloc, body.p);
    cas__rq_free(&r);
    return rc;
}

static int cas__cloud_exists(void *u, const char *name, char *msg, size_t cap);

static int cas__cloud_commit(void *u, void *wp, const char *name, int mode, int *stored, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloudw *w = (cas__cloudw *)wp;
    int rc;
    *stored = 0;
    if (!w->name || strcmp(w->name, name)) { /* named now */
        char *nm = (char *)cas__alloc(&cs->alloc, strlen(name) + 1);
        if (!nm) return cas__oom(msg, cap);
        memcpy(nm, name, strlen(name) + 1);
        cas__free(&cs->alloc, w->name);
        w->name = nm;
    }
    if (mode == CAS_COMMIT_META) return cs->d->set_meta(w, stored, msg, cap);
    if (w->spooled) { /* the bytes waited for their name: all of them into the spool, then up in parts */
        uint64_t off = 0;
        size_t part;
        if ((rc = cas__cloudw_spool(w, w->buf, w->len, msg, cap)) < 0) return rc;
        w->len = 0;
        while (off < w->spooled) {
            size_t k = 0;
            part = cas__cloudw_part(w);
            if (w->cap < part) {
                cas__free(&cs->alloc, w->buf);
                if (!(w->buf = (unsigned char *)cas__alloc(&cs->alloc, part))) {
                    w->cap = 0;
                    return cas__oom(msg, cap);
                }
                w->cap = part;
            }
            while (k < part && off + k < w->spooled) {
                ssize_t got = pread(w->spool, w->buf + k, part - k, (off_t)(off + k));
                if (got < 0 && errno == EINTR) continue;
                if (got <= 0)
                    return cas__cloudw_fail(msg, cap, "reading back the upload's temp file",
                                            strerror(errno ? errno : EIO));
                k += (size_t)got;
            }
            if ((rc = cas__cloudw_put_part(w, w->buf, k, msg, cap)) < 0) return rc;
            off += k;
        }
    } else if (w->upload[0]) {
        if ((w->len || !w->nparts) && (rc = cas__cloudw_put_part(w, w->buf, w->len, msg, cap)) < 0) return rc;
        w->len = 0;
    } else { /* one PUT; If-None-Match makes "only if absent" the server's decision */
        cas__rq r;
        char sha[65];
        cas__rq_init(&r, "PUT", &cs->alloc);
        r.keep = (size_t)1 << 20;
        cas__sha256_hex(w->buf ? w->buf : (const unsigned char *)"", w->len, sha);
        r.up = w->buf, r.up_len = w->len, r.up_sha = sha;
        if (cas__cloud_url(cs, &r.url, w->name, NULL) < 0 ||
            cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0 ||
            (cs->d->put_header && !(r.hdr = curl_slist_append(r.hdr, cs->d->put_header))) ||
            (mode == CAS_COMMIT_CREATE && !(r.hdr = curl_slist_append(r.hdr, "If-None-Match: *"))))
            rc = cas__oom(msg, cap);
        else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
            if (r.status == 200 || r.status == 201) *stored = 1;
            else if ((r.status == 412 || r.status == 409) && mode == CAS_COMMIT_CREATE)
                *stored = 0; /* it is there already (Azure: 409 BlobAlreadyExists) */
            else {
                rc = cas__cloud_answer_fail(&r, msg, cap);
                if (rc == CAS_E_NOTFOUND) rc = CAS_E_IO;
            }
        }
        cas__rq_free(&r);
        return rc;
    }
    if (mode == CAS_COMMIT_CREATE && cas__cloud_exists(u, w->name, msg, cap) > 0) { /* dedup: drop the upload */
        cas__cloudw_abort_upload(w);
        return CAS_OK;
    }
    if ((rc = cas__cloudw_complete(w, msg, cap)) == CAS_OK) *stored = 1;
    return rc;
}

static void cas__cloud_abort(void *u, void *wp) {
    cas__cloudw *w = (cas__cloudw *)wp;
    (void)u;
    if (!w) return;
    cas__cloudw_abort_upload(w);
    if (w->spool >= 0) close(w->spool);
    cas__free(&w->cs->alloc, w->buf);
    cas__free(&w->cs->alloc, w->name);
    cas__free(&w->cs->alloc, w->parts.p);
    cas__free(&w->cs->alloc, w);
}
/* ---- object stores: existence, listings, removal, gc --------------------- */

static int cas__cloud_exists(void *u, const char *name, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__rq r;
    int rc;
    cas__rq_init(&r, "HEAD", &cs->alloc);
    if (cas__cloud_url(cs, &r.url, name, NULL) < 0) rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
        if (r.status == 200) rc = 1;
        else if (r.status == 404) rc = 0;
        else rc = cas__cloud_answer_fail(&r, msg, cap);
    }
    cas__rq_free(&r);
    return rc;
}

/* One ListObjectsV2 (or ListMultipartUploads) page, record by record. */
typedef struct cas__cloud_page {
    const char *strip; /* the key prefix names are given relative to */
    size_t strip_len;
    cas_list_fn fn;                                                               /* objects and folders */
    int (*ufn)(void *ctx, const char *key, const char *upload_id, int64_t began); /* or uploads */
    void *ctx;
    int rc, stop, truncated;
    uint64_t entries;
    char key[1100], size[32], mtime[64], upload_id[512];
    char next[1100], next_upload[512]; /* NextContinuationToken / NextKeyMarker, NextUploadIdMarker */
    int url_encoded, bad;
} cas__cloud_page;

static void cas__cloud_page_leaf(void *ctx, const char *path, const char *text, size_t len, int cut) {
    cas__cloud_page *pg = (cas__cloud_page *)ctx;
    char *dst = NULL;
    size_t dcap = 0;
    /* S3's ListObjectsV2 and ListMultipartUploads, Azure's List Blobs */
    if (cas__ends_with(path, "Contents/Key") || cas__ends_with(path, "CommonPrefixes/Prefix") ||
        cas__ends_with(path, "Upload/Key") || cas__ends_with(path, "Blob/Name") ||
        cas__ends_with(path, "BlobPrefix/Name"))
        dst = pg->key, dcap = sizeof pg->key;
    else if (cas__ends_with(path, "Contents/Size") || cas__ends_with(path, "Blob/Properties/Content-Length"))
        dst = pg->size, dcap = sizeof pg->size;
    else if (cas__ends_with(path, "Contents/LastModified") || cas__ends_with(path, "Upload/Initiated") ||
             cas__ends_with(path, "Blob/Properties/Last-Modified"))
        dst = pg->mtime, dcap = sizeof pg->mtime;
    else if (cas__ends_with(path, "Upload/UploadId")) dst = pg->upload_id, dcap = sizeof pg->upload_id;
    else if (cas__ends_with(path, "NextContinuationToken") || cas__ends_with(path, "NextKeyMarker") ||
             cas__ends_with(path, "EnumerationResults/NextMarker")) {
        dst = pg->next, dcap = sizeof pg->next;
        if (cas__ends_with(path, "NextMarker")) pg->truncated = len > 0; /* Azure says so by a marker alone */
    } else if (cas__ends_with(path, "NextUploadIdMarker")) dst = pg->next_upload, dcap = sizeof pg->next_upload;
    else if (cas__ends_with(path, "IsTruncated")) pg->truncated = len == 4 && !memcmp(text, "true", 4);
    else if (cas__ends_with(path, "EncodingType")) pg->url_encoded = len == 3 && !memcmp(text, "url", 3);
    if (!dst) return;
    if (cut || len + 1 > dcap) { /* a value longer than S3 allows: this record is skipped */
        pg->bad = 1;
        return;
    }
    memcpy(dst, text, len), dst[len] = 0;
}

static void cas__cloud_page_end(void *ctx, const char *path) {
    cas__cloud_page *pg = (cas__cloud_page *)ctx;
    int kind, rc;
    size_t kl;
    char *name;
    /* only the records of the listing asked for (an <Upload> in an object listing is
     * not an object; found by fuzz_cloud) */
    if (!pg->ufn && (cas__ends_with(path, "ListBucketResult/Contents") || cas__ends_with(path, "Blobs/Blob")))
        kind = CAS_ENTRY_FILE;
    else if (!pg->ufn &&
             (cas__ends_with(path, "ListBucketResult/CommonPrefixes") || cas__ends_with(path, "Blobs/BlobPrefix")))
        kind = CAS_ENTRY_DIR;
    else if (pg->ufn && cas__ends_with(path, "Upload")) kind = CAS_ENTRY_OTHER;
    else return;
    if (!pg->bad && !pg->stop && pg->rc >= 0) {
        kl = pg->url_encoded ? cas__uri_decode(pg->key) : strlen(pg->key);
        if (memchr(pg->key, 0, kl)) kl = 0; /* "%00" in a name: refused (skipped), not cut at the NUL */
        if (kind == CAS_ENTRY_DIR && kl && pg->key[kl - 1] == '/') pg->key[--kl] = 0;
        if (kl > pg->strip_len && !memcmp(pg->key, pg->strip, pg->strip_len)) { /* only what is under the folder */
            name = pg->key + pg->strip_len;
            pg->entries++;
            if (pg->ufn) {
                rc = pg->ufn(pg->ctx, name, pg->upload_id, cas__iso8601(pg->mtime));
            } else {
                int64_t t = cas__iso8601(pg->mtime);
                if (t < 0) t = (int64_t)curl_getdate(pg->mtime, NULL); /* Azure's: RFC 1123 */
                rc = pg->fn(pg->ctx, name, kind, (uint64_t)strtoull(pg->size, NULL, 10), t < 0 ? 0 : t);
            }
            if (rc > 0) pg->stop = 1;
            else if (rc < 0) pg->rc = rc;
        }
    }
    pg->key[0] = pg->size[0] = pg->mtime[0] = pg->upload_id[0] = 0, pg->bad = 0;
}

/* Pages through a listing under key prefix `strip` (ListObjectsV2, or with
 * uploads ListMultipartUploads), each record to fn. Returns the count of
 * records seen, or an error. */
static int64_t cas__cloud_list_pages(cas__cloud *cs, const char *strip, int delimiter, cas_list_fn fn,
                                     int (*ufn)(void *, const char *, const char *, int64_t), void *ctx, char *msg,
                                     size_t cap) {
    cas__cloud_page *pg = (cas__cloud_page *)cas__calloc(&cs->alloc, sizeof *pg);
    cas__buf q;
    int64_t total = 0;
    int rc = CAS_OK;
    if (!pg) return cas__oom(msg, cap);
    memset(&q, 0, sizeof q);
    q.a = &cs->alloc;
    pg->strip = strip, pg->strip_len = strlen(strip), pg->fn = fn, pg->ufn = ufn, pg->ctx = ctx;
    for (;;) {
        cas__rq r;
        char next[1100], next_upload[512];
        q.len = 0;
        /* every query in sorted order: SigV4 signs it as written */
        if (ufn) {
            if (pg->next[0]) cas__buf_addz(&q, "key-marker="), cas__uri_encode(&q, pg->next, 0), cas__buf_addz(&q, "&");
            cas__buf_addz(&q, "prefix="), cas__uri_encode(&q, strip, 0);
            if (pg->next_upload[0]) cas__buf_addz(&q, "&upload-id-marker="), cas__uri_encode(&q, pg->next_upload, 0);
            cas__buf_addz(&q, "&uploads=");
        } else {
            cs->d->list_query(cs, &q, strip, pg->next, delimiter);
        }
        cas__rq_init(&r, "GET", &cs->alloc);
        r.keep = CAS__CLOUD_XML_MAX;
        if (!q.p || cas__cloud_url(cs, &r.url, NULL, q.p) < 0) rc = cas__oom(msg, cap);
        else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK && r.status != 200)
            rc = cas__cloud_answer_fail(&r, msg, cap);
        if (rc == CAS_OK) {
            snprintf(next, sizeof next, "%s", pg->next);
            snprintf(next_upload, sizeof next_upload, "%s", pg->next_upload);
            pg->truncated = 0, pg->next[0] = pg->next_upload[0] = 0;
            rc = cas__xml_parse(r.body.p ? r.body.p : "", r.body.len, cas__cloud_page_leaf, cas__cloud_page_end, pg,
                                msg, cap);
            if (rc == CAS_OK && pg->rc < 0) rc = pg->rc, cas__fmt(msg, cap, "%s", cas_strerror(rc));
            if (rc == CAS_OK && pg->truncated && !strcmp(next, pg->next) && !strcmp(next_upload, pg->next_upload)) {
                cas__fmt(msg, cap, "the listing does not advance (the same continuation twice)");
                rc = CAS_E_CORRUPT;
            }
        }
        cas__rq_free(&r);
        if (rc < 0 || pg->stop || !pg->truncated || (!pg->next[0] && !pg->next_upload[0])) break;
    }
    total = (int64_t)pg->entries;
    cas__free(&cs->alloc, q.p);
    cas__free(&cs->alloc, pg);
    return rc < 0 ? rc : total;
}

static int cas__cloud_list(void *u, const char *dir, int recursive, cas_list_fn fn, void *ctx, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__buf strip;
    int64_t n;
    memset(&strip, 0, sizeof strip);
    strip.a = &cs->alloc;
    cas__buf_addz(&strip, cs->prefix);
    if (dir[0]) cas__buf_addz(&strip, dir), cas__buf_addz(&strip, "/");
    if (!strip.p) cas__buf_put(&strip, "", 0);
    n = strip.p ? cas__cloud_list_pages(cs, strip.p, !recursive, fn, NULL, ctx, msg, cap) : cas__oom(msg, cap);
    cas__free(&cs->alloc, strip.p);
    if (n == 0) { /* an object store's folder exists when something is under it */
        cas__fmt(msg, cap, "nothing under '%.300s'", dir);
        return CAS_E_NOTFOUND;
    }
    return n < 0 ? (int)n : CAS_OK;
}

static int cas__cloud_remove(void *u, const char *name, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__rq r;
    int rc = cas__cloud_exists(u, name, msg, cap);
    if (rc <= 0) return rc;
    cas__rq_init(&r, "DELETE", &cs->alloc);
    if (cas__cloud_url(cs, &r.url, name, NULL) < 0) rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK)
        rc = r.status == 204 || r.status == 200 || r.status == 202 ? 1 : cas__cloud_answer_fail(&r, msg, cap);
    cas__rq_free(&r);
    return rc;
}

typedef struct cas__cloud_gcx {
    cas__cloud *cs;
    int64_t before;
    uint64_t aborted;
} cas__cloud_gcx;

static int cas__cloud_gc_one(void *ctx, const char *name, const char *upload_id, int64_t initiated) {
    cas__cloud_gcx *g = (cas__cloud_gcx *)ctx;
    cas__cloudw w;
    if (initiated < 0 || initiated > g->before) return 0; /* a live writer's, or undated: left alone */
    memset(&w, 0, sizeof w);
    w.cs = g->cs, w.name = (char *)name;
    snprintf(w.upload, sizeof w.upload, "%s", upload_id);
    cas__cloudw_abort_upload(&w);
    g->aborted++;
    return 0;
}

/* Multipart uploads under the prefix older than CAS_PARAM_CLOUD_GC_AGE: a killed
 * writer's parts, which S3 keeps (and bills) until someone aborts them. */
static int cas__cloud_gc(void *u, uint64_t *removed, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloud_gcx g;
    int64_t n;
    g.cs = cs, g.aborted = 0;
    *removed = 0;
    if (cs->d->drops_uploads) return CAS_OK; /* Azure: a killed writer's uncommitted blocks go by themselves */
    g.before = cas__now() - cas__cloudp(cs, CAS_PARAM_CLOUD_GC_AGE);
    n = cas__cloud_list_pages(cs, cs->prefix, 0, NULL, cas__cloud_gc_one, &g, msg, cap);
    *removed = g.aborted;
    return n < 0 ? (int)n : CAS_OK;
}
/* ---- object stores: many objects at once (batch gets) -------------------- */
/* One multi handle, up to CAS_PARAM_CLOUD_CONNECTIONS requests in flight, each
 * object whole into a buffer from the caller's allocator; a failed request waits
 * its backoff without holding up the others. */

typedef struct cas__fitem {
    cas__xfer x; /* first: the driver hands back &x */
    cas__rq r;
    int state; /* 0 waiting (x.due), 1 in flight, 2 reported */
} cas__fitem;

typedef struct cas__fetch_turn {
    cas__cloud *cs;
    cas__fitem *it;
    const cas_allocator *a;
    cas_fetch_fn fn;
    void *ctx;
    size_t *done, *active;
    int attempts;
} cas__fetch_turn;

/* A GET that ended: reported (its bytes, or why not), or due again after its backoff. */
static int cas__fetch_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__fetch_turn *t = (cas__fetch_turn *)ctx;
    cas__fitem *f = (cas__fitem *)(void *)x;
    size_t i = (size_t)(f - t->it);
    char why[CAS__MSG];
    (*t->active)--;
    if (again && f->r.tries < t->attempts) {
        f->state = 0, f->x.due = cas__ms() + cas__cloud_backoff_ms(t->cs, f->r.tries);
        return CAS_OK;
    }
    f->state = 2, (*t->done)++;
    if (cc == CURLE_OK && f->r.status == 200) {
        size_t len;
        unsigned char *data = cas__rq_take_body(&f->r, &len);
        if (!data && (data = (unsigned char *)cas__alloc(t->a, 1)) == NULL) { /* an empty object */
            t->fn(t->ctx, i, CAS_E_NOMEM, "out of memory", NULL, 0, NULL, 0);
            return CAS_OK;
        }
        t->fn(t->ctx, i, CAS_OK, NULL, f->r.has_meta ? f->r.meta : NULL, f->r.meta_len, data, len);
    } else {
        int rc = cc != CURLE_OK ? CAS_E_IO : cas__cloud_answer_fail(&f->r, why, sizeof why);
        if (cc != CURLE_OK) cas__rq_why(&f->r, cc, why, sizeof why);
        t->fn(t->ctx, i, rc, why, NULL, 0, NULL, 0);
    }
    return CAS_OK;
}

static int cas__cloud_fetch(void *u, size_t count, const char *const *names, const cas_allocator *a, cas_fetch_fn fn,
                            void *ctx, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__fitem *it = (cas__fitem *)cas__calloc(&cs->alloc, (count + 1) * sizeof *it);
    CURLM *m = cas__multi_get(cs);
    long conns = (long)cas__cloudp(cs, CAS_PARAM_CLOUD_CONNECTIONS);
    size_t i, done = 0, active = 0;
    char why[CAS__MSG];
    cas__fetch_turn turn;
    if (!it || !m) {
        cas__free(&cs->alloc, it);
        cas__multi_put(cs, m);
        for (i = 0; i < count; i++) fn(ctx, i, CAS_E_NOMEM, "out of memory", NULL, 0, NULL, 0);
        return cas__oom(msg, cap);
    }
    turn.cs = cs, turn.it = it, turn.a = a, turn.fn = fn, turn.ctx = ctx, turn.done = &done, turn.active = &active;
    turn.attempts = (int)cas__cloudp(cs, CAS_PARAM_CLOUD_ATTEMPTS);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    for (i = 0; i < count; i++) {
        cas__rq_init(&it[i].r, "GET", a);
        it[i].x.r = &it[i].r;
        it[i].r.keep = (size_t)-1;
    }
    while (done < count) {
        int64_t now = cas__ms(), wake = now + 1000;
        for (i = 0; i < count && active < (size_t)conns; i++) { /* start what is due */
            cas__fitem *f = &it[i];
            int rc;
            if (f->state != 0) continue;
            if (f->x.due > now) {
                if (f->x.due < wake) wake = f->x.due;
                continue;
            }
            why[0] = 0;
            if (!f->r.url.len && cas__cloud_url(cs, &f->r.url, names[i], NULL) < 0) rc = cas__oom(why, sizeof why);
            else rc = cas__xfer_start(cs, m, &f->x, NULL, NULL, why, sizeof why);
            if (rc < 0) {
                fn(ctx, i, rc, why[0] ? why : "out of memory", NULL, 0, NULL, 0);
                f->state = 2, done++;
                continue;
            }
            f->state = 1, active++;
        }
        cas__multi_turn(cs, m, cas__fetch_ended, &turn);
        if (done < count) {
            int64_t t = cas__ms();
            int timeout = active ? 1000 : (int)CAS__MAXZ(wake - t, 1);
            cas__multi_wait(m, timeout > 1000 ? 1000 : timeout);
        }
    }
    for (i = 0; i < count; i++) cas__rq_free(&it[i].r);
    cas__free(&cs->alloc, it);
    cas__multi_put(cs, m);
    return CAS_OK;
}
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
/* ---- S3: SigV4 (libcurl signs; the payload's hash and a session token are ours) ---- */

/* What only S3 reads, in the store's own state (cs->own). */
typedef struct cas__aws {
    char region[64], sigv4[128], profile[128]; /* sigv4: libcurl's "aws:amz:REGION:s3" */
} cas__aws;

static cas__aws *cas__aws_of(const cas__cloud *cs) { return (cas__aws *)cs->own; }

#define CAS__EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The dialect's authorize: what S3 needs on a signed request beside the headers
 * already in h. CAS_OK, or CAS_E_NOMEM. */
static int cas__s3_authorize(cas__cloud *cs, CURL *e, const cas__rq *r, const cas__cred *c, struct curl_slist **h) {
    char line[200], sha[65];
    struct curl_slist *n;
    if (!r->up_sha && r->up_len) cas__sha256_hex(r->up, r->up_len, sha);
    snprintf(line, sizeof line, "x-amz-content-sha256: %s",
             r->up_sha   ? r->up_sha
             : r->up_len ? sha
                         : CAS__EMPTY_SHA256);
    if (!(n = curl_slist_append(*h, line))) return CAS_E_NOMEM;
    *h = n;
    if (c->token[0]) {
        size_t tl = strlen(c->token);
        char *t = (char *)malloc(tl + 32);
        n = NULL;
        if (t) {
            snprintf(t, tl + 32, "x-amz-security-token: %s", c->token);
            n = curl_slist_append(*h, t);
            cas__wipe(t, tl + 32);
            free(t);
        }
        if (!n) return CAS_E_NOMEM;
        *h = n;
    }
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, cas__aws_of(cs)->sigv4);
    curl_easy_setopt(e, CURLOPT_USERNAME, c->akid);
    curl_easy_setopt(e, CURLOPT_PASSWORD, c->secret);
    return CAS_OK;
}
/* ---- credentials: the AWS SDKs' chain ------------------------------------- */

enum { CAS__CRED_ENV = 1, CAS__CRED_WEB, CAS__CRED_FILES, CAS__CRED_CONTAINER, CAS__CRED_IMDS };

/* A JSON string member, whole, in a new buffer ("" when it is optional and absent or
 * not a string, as a null Token): its length is what the caller judges, nothing is
 * cut. NULL if a required one is not a string (or holds a NUL). */
static char *cas__json_dup(const cas__json *j, const char *key, int optional) {
    size_t x = cas__json_get(j, 0, key), n;
    char *s;
    if (optional && (!x || j->t[x].type != CAS__J_STR)) return (char *)calloc(1, 1);
    if (!x || j->t[x].type != CAS__J_STR) return NULL;
    n = j->t[x].end - j->t[x].start + 1;
    if ((s = (char *)malloc(n)) != NULL && cas__json_str(j, x, s, n) == (size_t)-1) free(s), s = NULL;
    return s;
}

static void cas__free_secret(char *s) {
    if (s) cas__wipe(s, strlen(s)), free(s);
}

/* {"AccessKeyId": .., "SecretAccessKey": .., "Token": .., "Expiration": ..} (container, IMDS) */
static int cas__cred_from_json(const char *doc, size_t len, cas__cred **out, char *msg, size_t cap) {
    cas__json j;
    char *akid = NULL, *secret = NULL, *token = NULL, exp[64];
    size_t x;
    int rc = CAS_E_CORRUPT;
    *out = NULL;
    exp[0] = 0;
    if (cas__json_parse(&j, doc, len, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ) {
        akid = cas__json_dup(&j, "AccessKeyId", 0), secret = cas__json_dup(&j, "SecretAccessKey", 0);
        token = cas__json_dup(&j, "Token", 1);
        if ((x = cas__json_get(&j, 0, "Expiration")) != 0 && j.t[x].type == CAS__J_STR)
            cas__json_str(&j, x, exp, sizeof exp);
        if (akid && secret && token) {
            *out = cas__cred_new(CAS__AUTH_SIGV4, akid, secret, token, exp[0] ? cas__iso8601(exp) : 0, msg, cap);
            rc = *out ? CAS_OK : CAS_E_CORRUPT;
        } else {
            cas__fmt(msg, cap, "the credentials answer is not the expected JSON");
        }
    } else {
        cas__fmt(msg, cap, "the credentials answer is not the expected JSON");
    }
    cas__json_free(&j);
    cas__free_secret(akid), cas__free_secret(secret), cas__free_secret(token);
    return rc;
}

/* The value of `key` in section `section` of an AWS shared config/credentials
 * file (INI: "[section]", "key = value", '#' or ';' comments, indented lines
 * belong to a nested block and are skipped). Written by hand: the format is
 * AWS's own (nested blocks, "profile " prefixes) and twenty lines long. */
static int cas__ini_get(const char *text, size_t len, const char *section, const char *key, char *out, size_t cap) {
    size_t i = 0, sl = strlen(section), kl = strlen(key);
    int in = 0, found = 0;
    while (i < len) {
        size_t e = i, n;
        char *line;
        while (e < len && text[e] != '\n') e++;
        line = (char *)text + i, n = e - i;
        i = e + 1;
        if (!n) continue;
        if (line[0] == ' ' || line[0] == '\t') continue; /* a nested block's line */
        cas__trim(&line, &n);
        if (!n || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '[') {
            char *nm = line + 1;
            size_t nl = n > 1 && line[n - 1] == ']' ? n - 2 : 0;
            cas__trim(&nm, &nl);
            in = nl == sl && !memcmp(nm, section, sl);
            continue;
        }
        if (in && n > kl && !memcmp(line, key, kl)) {
            char *v = line + kl;
            size_t vl = n - kl;
            cas__trim(&v, &vl);
            if (!vl || v[0] != '=') continue;
            v++, vl--;
            cas__trim(&v, &vl);
            if (vl + 1 > cap) return CAS_NEED_OUTPUT;
            memcpy(out, v, vl), out[vl] = 0;
            found = 1; /* the last one wins, as in botocore */
        }
    }
    return found ? CAS_OK : CAS_E_NOTFOUND;
}

/* `key` of the active profile: the credentials file, then the config file. */
static int cas__profile_get(const cas__cloud *cs, int creds_file, const char *key, char *out, size_t cap) {
    const char *home = getenv("HOME"), *f, *profile = cas__aws_of(cs)->profile;
    char path[4096], section[200];
    char *text;
    size_t len = 0;
    int rc;
    f = cas__env(creds_file ? "AWS_SHARED_CREDENTIALS_FILE" : "AWS_CONFIG_FILE");
    if (f && f[0] == '~' && home) snprintf(path, sizeof path, "%s%s", home, f + 1);
    else if (f) snprintf(path, sizeof path, "%s", f);
    else if (home) snprintf(path, sizeof path, "%s/.aws/%s", home, creds_file ? "credentials" : "config");
    else return CAS_E_NOTFOUND;
    if (!(text = cas__slurp_file(path, (size_t)1 << 20, &len))) return CAS_E_NOTFOUND;
    if (creds_file || !strcmp(profile, "default")) snprintf(section, sizeof section, "%s", profile);
    else snprintf(section, sizeof section, "profile %s", profile);
    rc = cas__ini_get(text, len, section, key, out, cap);
    if (rc == CAS_E_NOTFOUND && !creds_file && !strcmp(profile, "default"))
        rc = cas__ini_get(text, len, "profile default", key, out, cap);
    cas__wipe(text, len); /* the credentials file holds secrets */
    free(text);
    return rc;
}

/* STS AssumeRoleWithWebIdentity (EKS IRSA): unsigned, the token is the proof. */
static int cas__cred_web(cas__cloud *cs, const char *token_file, const char *role, cas__cred **out, char *msg,
                         size_t cap) {
    cas__buf form, url;
    cas__rq r;
    char akid[CAS__KEY_MAX + 2], secret[CAS__KEY_MAX + 2], *token, exp[64], session[128];
    cas__xml_pick p;
    char *jwt;
    size_t jl = 0;
    const char *ep = cas__env("AWS_ENDPOINT_URL_STS"), *sn = cas__env("AWS_ROLE_SESSION_NAME");
    int rc;
    if (!(jwt = cas__slurp_file(token_file, (size_t)64 << 10, &jl))) {
        cas__fmt(msg, cap, "cannot read the web identity token file '%.300s'", token_file);
        return CAS_E_IO;
    }
    memset(&form, 0, sizeof form), memset(&url, 0, sizeof url);
    form.secret = 1; /* it will hold the web identity token */
    if (sn) snprintf(session, sizeof session, "%s", sn);
    else snprintf(session, sizeof session, "cas-h-%ld", (long)cas__now());
    {
        char *t = jwt;
        cas__trim(&t, &jl);
        t[jl] = 0;
        cas__buf_addz(&form, "Action=AssumeRoleWithWebIdentity&RoleArn=");
        cas__uri_encode(&form, role, 0);
        cas__buf_addz(&form, "&RoleSessionName=");
        cas__uri_encode(&form, session, 0);
        cas__buf_addz(&form, "&Version=2011-06-15&WebIdentityToken=");
        cas__uri_encode(&form, t, 0);
    }
    cas__wipe(jwt, jl), free(jwt);
    if (!ep) ep = cas__env("AWS_ENDPOINT_URL");
    if (ep) cas__buf_addz(&url, ep);
    else cas__buf_fmt(&url, "https://sts.%s.amazonaws.com", cas__aws_of(cs)->region);
    if (url.len && url.p[url.len - 1] != '/') cas__buf_addz(&url, "/");
    if (!form.p || !url.p) {
        cas__free(NULL, form.p), cas__free(NULL, url.p);
        return cas__oom(msg, cap);
    }
    cas__rq_init(&r, "POST", NULL);
    rc = cas__secret_may_go(url.p, "the STS endpoint, with a web identity token", msg, cap);
    if (rc == CAS_OK)
        rc = cas__cred_fetch(cs, "POST", url.p, "Content-Type: application/x-www-form-urlencoded", NULL, form.p, &r,
                             msg, cap);
    cas__wipe(form.p, form.len);
    cas__free(NULL, form.p);
    cas__free(NULL, url.p);
    if (rc == CAS_OK && !(token = (char *)malloc(CAS__TOKEN_MAX + 2))) {
        rc = cas__oom(msg, cap);
    } else if (rc == CAS_OK) { /* each field whole: a cut one (cut[i]) is refused, not sent */
        char why[200];
        memset(&p, 0, sizeof p);
        akid[0] = secret[0] = token[0] = exp[0] = 0;
        p.suffix[0] = "Credentials/AccessKeyId", p.out[0] = akid, p.cap[0] = sizeof akid;
        p.suffix[1] = "Credentials/SecretAccessKey", p.out[1] = secret, p.cap[1] = sizeof secret;
        p.suffix[2] = "Credentials/SessionToken", p.out[2] = token, p.cap[2] = CAS__TOKEN_MAX + 2;
        p.suffix[3] = "Credentials/Expiration", p.out[3] = exp, p.cap[3] = sizeof exp;
        why[0] = 0;
        if (cas__xml_parse(r.body.p, r.body.len, cas__xml_pick_leaf, NULL, &p, why, sizeof why) < 0 || !akid[0] ||
            !secret[0]) {
            cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity gave no credentials%s%s", why[0] ? ": " : "", why);
            rc = CAS_E_CORRUPT;
        } else if (p.cut[0] || p.cut[1] || p.cut[2]) {
            cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity gave a%s longer than cas.h keeps (%d bytes)",
                     p.cut[2]   ? " SessionToken"
                     : p.cut[1] ? " SecretAccessKey"
                                : "n AccessKeyId",
                     p.cut[2] ? CAS__TOKEN_MAX : CAS__KEY_MAX);
            rc = CAS_E_LIMIT;
        } else if (!(*out = cas__cred_new(CAS__AUTH_SIGV4, akid, secret, token, cas__iso8601(exp), why, sizeof why))) {
            cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity: %s", why);
            rc = CAS_E_CORRUPT;
        }
        cas__wipe(secret, sizeof secret), cas__wipe(token, CAS__TOKEN_MAX + 2);
        free(token);
    } else {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "STS AssumeRoleWithWebIdentity for %.200s: %s", role, why);
    }
    cas__rq_free(&r);
    return rc;
}

/* A container credentials URL, as the AWS SDKs judge it: https to any host, or
 * http to this machine or the ECS / EKS pod identity agents (169.254.170.2,
 * 169.254.170.23, fd00:ec2::23); no user in it. The pod's authorization token
 * goes with the request. */
static int cas__container_url_ok(const char *url) {
    static const char *const agents[] = {"169.254.170.2", "169.254.170.23", "fd00:ec2::23"};
    char scheme[16], host[256];
    unsigned char a[16], b[16];
    int user = 0, i, fam;
    if (cas__url_host(url, scheme, sizeof scheme, host, sizeof host, &user) < 0 || user) return 0;
    if (!strcasecmp(scheme, "https")) return 1;
    if (strcasecmp(scheme, "http")) return 0;
    if (cas__host_loopback(host)) return 1;
    fam = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, host, a) != 1) return 0;
    for (i = 0; i < 3; i++)
        if (inet_pton(fam, agents[i], b) == 1 && !memcmp(a, b, fam == AF_INET ? 4 : 16)) return 1;
    return 0;
}

static int cas__cred_container(cas__cloud *cs, cas__cred **out, char *msg, size_t cap) {
    const char *rel = cas__env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = cas__env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *tok = cas__env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *tokf = cas__env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    char url[2048], *auth = NULL;
    cas__rq r;
    int rc;
    if (rel) snprintf(url, sizeof url, "http://169.254.170.2%s%s", rel[0] == '/' ? "" : "/", rel);
    else if (full) snprintf(url, sizeof url, "%s", full);
    else return CAS_E_NOTFOUND;
    if (!cas__container_url_ok(url)) { /* the relative form too: "@host/..." would make 169.254.170.2 a user */
        cas__fmt(msg, cap, "%s must be https, or http to this machine or the ECS/EKS credential agent, without a user",
                 rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" : "AWS_CONTAINER_CREDENTIALS_FULL_URI");
        return CAS_E_ARG;
    }
    if (tokf || tok) {
        size_t tl = 0;
        char *t = tokf ? cas__slurp_file(tokf, (size_t)16 << 10, &tl) : NULL, *v = t;
        if (tokf && !t) {
            cas__fmt(msg, cap, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '%.300s'", tokf);
            return CAS_E_IO;
        }
        if (!t) v = (char *)tok, tl = strlen(tok);
        cas__trim(&v, &tl);
        if ((auth = (char *)malloc(tl + 32)) != NULL) snprintf(auth, tl + 32, "Authorization: %.*s", (int)tl, v);
        if (t) cas__wipe(t, strlen(t)), free(t);
        if (!auth) {
            cas__fmt(msg, cap, "out of memory");
            return CAS_E_NOMEM;
        }
    }
    rc = cas__cred_fetch(cs, "GET", url, auth, NULL, NULL, &r, msg, cap);
    if (auth) cas__wipe(auth, strlen(auth)), free(auth);
    if (rc == CAS_OK) rc = cas__cred_from_json(r.body.p, r.body.len, out, msg, cap);
    else {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "the container credentials endpoint: %s", why);
    }
    cas__rq_free(&r);
    return rc;
}

/* EC2 instance metadata, IMDSv2: a session token, the role's name, its credentials. */
static int cas__cred_imds(cas__cloud *cs, cas__cred **out, char *msg, size_t cap) {
    const char *ep = cas__env("AWS_EC2_METADATA_SERVICE_ENDPOINT"), *dis = cas__env("AWS_EC2_METADATA_DISABLED");
    char base[512], url[1024], tokh[512], role[256];
    cas__rq r;
    int rc;
    size_t n;
    if (dis && !strcasecmp(dis, "true")) return CAS_E_NOTFOUND;
    snprintf(base, sizeof base, "%s", ep ? ep : "http://169.254.169.254");
    n = strlen(base);
    if (n && base[n - 1] == '/') base[n - 1] = 0;
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    if ((rc = cas__cred_fetch(cs, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL, NULL, &r, msg,
                              cap)) < 0) {
        cas__rq_free(&r);
        return CAS_E_NOTFOUND; /* not on EC2 (or IMDS is off): the chain ends here */
    }
    snprintf(tokh, sizeof tokh, "X-aws-ec2-metadata-token: %.400s", r.body.p);
    cas__rq_free(&r);
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
    rc = cas__cred_fetch(cs, "GET", url, tokh, NULL, NULL, &r, msg, cap);
    if (rc == CAS_OK) {
        char *nl;
        snprintf(role, sizeof role, "%s", r.body.p);
        if ((nl = strchr(role, '\n')) != NULL) *nl = 0;
        cas__rq_free(&r);
        if (!role[0] || strchr(role, '/')) {
            cas__fmt(msg, cap, "instance metadata names no IAM role");
            rc = CAS_E_NOTFOUND;
        } else {
            snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base, role);
            rc = cas__cred_fetch(cs, "GET", url, tokh, NULL, NULL, &r, msg, cap);
            if (rc == CAS_OK) rc = cas__cred_from_json(r.body.p, r.body.len, out, msg, cap);
            cas__rq_free(&r);
        }
    } else {
        cas__rq_free(&r);
    }
    cas__wipe(tokh, sizeof tokh);
    if (rc < 0 && rc != CAS_E_NOTFOUND) {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "EC2 instance metadata: %s", why);
    }
    return rc;
}

/* One link of the chain: CAS_OK with *out, CAS_E_NOTFOUND when this link is not
 * configured here (the next is tried), or an error when it is and fails. */
static int cas__cred_link(cas__cloud *cs, int which, cas__cred **out, char *msg, size_t cap) {
    char a[CAS__KEY_MAX + 1], s[CAS__KEY_MAX + 1], *t, file[1024], role[512];
    const char *ak, *sk;
    int rc = CAS_E_NOTFOUND, f;
    *out = NULL;
    switch (which) {
    case CAS__CRED_ENV:
        ak = cas__env("AWS_ACCESS_KEY_ID"), sk = cas__env("AWS_SECRET_ACCESS_KEY");
        if (!ak && !sk) return CAS_E_NOTFOUND;
        if (!ak || !sk) {
            cas__fmt(msg, cap, "AWS_%s is set but AWS_%s is not", ak ? "ACCESS_KEY_ID" : "SECRET_ACCESS_KEY",
                     ak ? "SECRET_ACCESS_KEY" : "ACCESS_KEY_ID");
            return CAS_E_ARG;
        }
        if ((*out = cas__cred_new(CAS__AUTH_SIGV4, ak, sk, cas__env("AWS_SESSION_TOKEN"), 0, role, sizeof role)))
            return CAS_OK;
        cas__fmt(msg, cap, "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN: %s", role);
        return CAS_E_ARG;
    case CAS__CRED_WEB:
        if (cas__env("AWS_WEB_IDENTITY_TOKEN_FILE") && cas__env("AWS_ROLE_ARN"))
            return cas__cred_web(cs, cas__env("AWS_WEB_IDENTITY_TOKEN_FILE"), cas__env("AWS_ROLE_ARN"), out, msg, cap);
        if (cas__profile_get(cs, 0, "web_identity_token_file", file, sizeof file) == CAS_OK &&
            cas__profile_get(cs, 0, "role_arn", role, sizeof role) == CAS_OK)
            return cas__cred_web(cs, file, role, out, msg, cap);
        return CAS_E_NOTFOUND;
    case CAS__CRED_FILES: /* the credentials file, then the config file: the first with a key and a secret */
        if (!(t = (char *)malloc(CAS__TOKEN_MAX + 1))) return cas__oom(msg, cap);
        for (f = 1; f >= 0 && rc == CAS_E_NOTFOUND; f--) {
            static const char *const keys[3] = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"};
            char *outs[3];
            size_t caps[3];
            int k, got[3];
            outs[0] = a, outs[1] = s, outs[2] = t, caps[0] = caps[1] = CAS__KEY_MAX + 1, caps[2] = CAS__TOKEN_MAX + 1;
            for (k = 0; k < 3; k++) {
                outs[k][0] = 0;
                got[k] = cas__profile_get(cs, f, keys[k], outs[k], caps[k]);
                if (got[k] == CAS_NEED_OUTPUT) { /* never cut: a cut secret only fails later, unexplained */
                    cas__fmt(msg, cap, "%s of profile '%s' in the shared %s file is longer than cas.h keeps (%d bytes)",
                             keys[k], cas__aws_of(cs)->profile, f ? "credentials" : "config",
                             k < 2 ? CAS__KEY_MAX : CAS__TOKEN_MAX);
                    rc = CAS_E_LIMIT;
                    break;
                }
            }
            if (rc == CAS_E_NOTFOUND && got[0] == CAS_OK && got[1] == CAS_OK)
                rc = (*out = cas__cred_new(CAS__AUTH_SIGV4, a, s, t, 0, msg, cap)) != NULL ? CAS_OK : CAS_E_ARG;
        }
        cas__wipe(s, sizeof s), cas__wipe(t, CAS__TOKEN_MAX + 1);
        free(t);
        return rc;
    case CAS__CRED_CONTAINER: return cas__cred_container(cs, out, msg, cap);
    case CAS__CRED_IMDS: return cas__cred_imds(cs, out, msg, cap);
    }
    return rc;
}
/* ---- S3's dialect: multipart uploads, listings, its row, its backend -------------- */

#define CAS__S3_META_HEADER "x-amz-meta-metaflow-user-attributes"

/* POST ?uploads=: a new multipart upload, with the object's metadata. */
static int cas__s3_upload_begin(cas__cloudw *w, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__rq r;
    cas__xml_pick p;
    int rc;
    cas__rq_init(&r, "POST", &cs->alloc);
    r.keep = (size_t)1 << 20; /* repeated after a lost answer, it leaves an empty upload behind, which gc removes */
    if (cas__cloud_url(cs, &r.url, w->name, "uploads=") < 0 ||
        cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0)
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK && r.status != 200)
        rc = cas__cloud_answer_fail(&r, msg, cap);
    if (rc == CAS_OK) {
        memset(&p, 0, sizeof p);
        w->upload[0] = 0;
        p.suffix[0] = "UploadId", p.out[0] = w->upload, p.cap[0] = sizeof w->upload;
        if (cas__xml_parse(r.body.p ? r.body.p : "", r.body.len, cas__xml_pick_leaf, NULL, &p, msg, cap) < 0 ||
            !w->upload[0])
            rc = cas__cloudw_fail(msg, cap, "starting a multipart upload", "no UploadId in the answer");
    } else {
        char why[400];
        snprintf(why, sizeof why, "%s", msg);
        cas__cloudw_fail(msg, cap, "starting a multipart upload", why);
    }
    cas__rq_free(&r);
    return rc;
}

/* S3: part n of the upload; its entry names it by number and ETag. */
static void cas__s3_part_query(cas__cloudw *w, int n, cas__buf *q, char *id) {
    cas__buf_fmt(q, "partNumber=%d&uploadId=", n);
    cas__uri_encode(q, w->upload, 0);
    id[0] = 0;
}

static int cas__s3_part_entry(const cas__rq *r, int n, const char *id, char *entry, size_t cap) {
    (void)id;
    if (r->status != 200 || !r->etag[0]) return 0;
    snprintf(entry, cap, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, r->etag);
    return 1;
}

static int cas__s3_set_meta(cas__cloudw *w, int *stored, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__rq r;
    cas__buf src;
    int rc;
    memset(&src, 0, sizeof src);
    src.a = &cs->alloc;
    cas__buf_addz(&src, "x-amz-copy-source: /");
    cas__uri_encode(&src, cs->bucket, 0);
    cas__buf_addz(&src, "/");
    cas__uri_encode(&src, cs->prefix, 1);
    cas__uri_encode(&src, w->name, 1);
    cas__rq_init(&r, "PUT", &cs->alloc);
    r.keep = (size_t)1 << 20;
    if (!src.p || cas__cloud_url(cs, &r.url, w->name, NULL) < 0 || !(r.hdr = curl_slist_append(r.hdr, src.p)) ||
        !(r.hdr = curl_slist_append(r.hdr, "x-amz-metadata-directive: REPLACE")) ||
        cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0)
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
        char code[64], message[256];
        cas__xml_error(r.body.p ? r.body.p : "", r.body.len, code, sizeof code, message, sizeof message);
        if (r.status != 200 || code[0]) { /* a copy can fail with 200 and an <Error> */
            if (code[0])
                snprintf(r.code, sizeof r.code, "%s", code), snprintf(r.message, sizeof r.message, "%s", message);
            rc = cas__cloud_answer_fail(&r, msg, cap);
            if (rc == CAS_E_NOTFOUND) rc = CAS_E_IO;
        } else {
            *stored = 1;
        }
    }
    cas__free(&cs->alloc, src.p);
    cas__rq_free(&r);
    return rc;
}

static void cas__s3_complete_query(cas__cloudw *w, cas__buf *q) {
    cas__buf_addz(q, "uploadId=");
    cas__uri_encode(q, w->upload, 0);
}

/* S3 answers 200 with an <Error> too; a retry that finds the upload gone asks the
 * object whether the first try landed. */
static int cas__s3_complete_answer(cas__cloudw *w, cas__rq *r, char *msg, size_t cap) {
    char code[64], message[256];
    int rc;
    cas__xml_error(r->body.p ? r->body.p : "", r->body.len, code, sizeof code, message, sizeof message);
    if (r->tries > 1 && r->status == 404 && !strcmp(code, "NoSuchUpload") && cas__cloudw_landed(w))
        return CAS_OK; /* an earlier try completed it; only its answer was lost */
    if (r->status == 200 && !code[0]) return CAS_OK;
    if (code[0]) snprintf(r->code, sizeof r->code, "%s", code), snprintf(r->message, sizeof r->message, "%s", message);
    return (rc = cas__cloud_answer_fail(r, msg, cap)) == CAS_E_NOTFOUND ? CAS_E_IO : rc;
}

/* S3's rules for bucket names, loosely (other servers allow more): 3-63 of [a-z0-9.-_]. */
static int cas__bucket_ok(const char *b, size_t n) {
    size_t i;
    if (n < 3 || n > 63) return 0;
    for (i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-' ||
              b[i] == '_' || (b[i] >= 'A' && b[i] <= 'Z')))
            return 0;
    return 1;
}

static void cas__s3_no_creds(const cas__cloud *cs, char *msg, size_t cap) {
    cas__fmt(msg, cap,
             "no AWS credentials found (looked for AWS_ACCESS_KEY_ID, web identity, profile '%s' in the shared "
             "files, the container endpoint and EC2 instance metadata)",
             cas__aws_of(cs)->profile);
}

/* ListObjectsV2, keys URL-encoded in the answer. */
static void cas__s3_list_query(const cas__cloud *cs, cas__buf *q, const char *strip, const char *next, int delimiter) {
    if (next[0]) cas__buf_addz(q, "continuation-token="), cas__uri_encode(q, next, 0), cas__buf_addz(q, "&");
    if (delimiter) cas__buf_addz(q, "delimiter=%2F&");
    cas__buf_fmt(q,
                 "encoding-type=url&list-type=2&max-keys=%d&prefix=", (int)cas__cloudp(cs, CAS_PARAM_CLOUD_LIST_PAGE));
    cas__uri_encode(q, strip, 0);
}

static const cas__dialect cas__s3_dialect = {CAS__S3_META_HEADER,
                                             NULL,
                                             1,
                                             0,
                                             CAS__CRED_IMDS,
                                             cas__cred_link,
                                             cas__s3_no_creds,
                                             cas__s3_list_query,
                                             cas__s3_upload_begin,
                                             cas__s3_part_query,
                                             cas__s3_part_entry,
                                             "POST",
                                             "<CompleteMultipartUpload>",
                                             "</CompleteMultipartUpload>",
                                             cas__s3_complete_query,
                                             0,
                                             cas__s3_complete_answer,
                                             cas__s3_set_meta,
                                             "CAS_S3_",
                                             cas__s3_authorize,
                                             NULL,
                                             NULL};
static int cas__s3_backend(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    cas__cloud *cs;
    cas__aws *aws;
    const char *v;
    char tmp[2048];
    size_t k;
    int rc = cas__cloud_new(&cs, &cas__s3_dialect, url, 5, cas__bucket_ok,
                            "s3://BUCKET[/PREFIX] with a valid bucket name", alloc, err, errcap);
    if (rc < 0) return rc;
    /* the profile, the region, the endpoint and its addressing */
    if (!(cs->own = aws = (cas__aws *)cas__calloc(&cs->alloc, sizeof *aws))) goto nomem;
    v = cas__env("AWS_PROFILE");
    if (!v) v = cas__env("AWS_DEFAULT_PROFILE");
    snprintf(aws->profile, sizeof aws->profile, "%s", v ? v : "default");
    if ((v = cas__env("AWS_REGION")) || (v = cas__env("AWS_DEFAULT_REGION")))
        snprintf(aws->region, sizeof aws->region, "%s", v);
    else if (cas__profile_get(cs, 0, "region", tmp, sizeof tmp) == CAS_OK)
        snprintf(aws->region, sizeof aws->region, "%.63s", tmp);
    else snprintf(aws->region, sizeof aws->region, "us-east-1");
    for (k = 0; aws->region[k]; k++)
        if (!isalnum((unsigned char)aws->region[k]) && aws->region[k] != '-') {
            cas__cloud_destroy(cs);
            return cas__serr(err, errcap, CAS_E_ARG, "'%.60s' is not an AWS region", v ? v : tmp);
        }
    snprintf(aws->sigv4, sizeof aws->sigv4, "aws:amz:%s:s3", aws->region);
    if (cas_metaflow_config("S3_ENDPOINT_URL", tmp, sizeof tmp) == CAS_OK && tmp[0]) v = tmp;
    else if (!(v = cas__env("AWS_ENDPOINT_URL_S3")) && !(v = cas__env("AWS_ENDPOINT_URL"))) {
        snprintf(tmp, sizeof tmp, "https://s3.%s.amazonaws.com", aws->region);
        v = tmp;
    }
    if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, CAS_E_ARG, "the S3 endpoint '%.300s' is not an http(s) URL", v);
    }
    k = strlen(v);
    while (k && v[k - 1] == '/') k--;
    if (!(cs->endpoint = cas__strdup_a(&cs->alloc, v, k))) goto nomem;
    v = cas__env("CAS_S3_ADDRESSING_STYLE");
    if (v && strcmp(v, "path") && strcmp(v, "virtual")) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, CAS_E_ARG, "CAS_S3_ADDRESSING_STYLE is 'path' or 'virtual', not '%.40s'", v);
    }
    if (v) cs->path_style = !strcmp(v, "path");
    else /* AWS: virtual-hosted, unless the name cannot be a host name; anything else: path-style */
        cs->path_style = !strstr(cs->endpoint, ".amazonaws.com") || strchr(cs->bucket, '.') ||
                         strpbrk(cs->bucket, "_ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (cas_metaflow_config("S3_SERVER_SIDE_ENCRYPTION", tmp, sizeof tmp) == CAS_OK && tmp[0]) {
        char line[160]; /* Azure encrypts every blob: only S3 is asked */
        snprintf(line, sizeof line, "x-amz-server-side-encryption: %.100s", tmp);
        if (!(cs->write_header = cas__strdup_a(&cs->alloc, line, strlen(line)))) goto nomem;
    }
    if ((v = cas__env("AWS_CA_BUNDLE")) && !(cs->ca_bundle = cas__strdup_a(&cs->alloc, v, strlen(v)))) goto nomem;
    return cas__cloud_ready(cs, out, url, err, errcap);
nomem:
    cas__cloud_destroy(cs);
    return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
}
/* ---- Azure: SharedKey, SAS and bearer authorization ---------------------------- */
/* libcurl signs SigV4 itself but knows nothing of Azure. SharedKey is an
 * HMAC-SHA256 over a canonical form of the request ("Authorize with Shared Key"
 * in Azure's Storage REST reference): the verb, eleven standard headers (empty
 * when absent; Content-Length empty when zero), the x-ms-* headers sorted, and
 * the resource: /account/path, then each query parameter sorted, URL-decoded. */

#define CAS__AZ_VERSION "2021-08-06"

static const char *cas__hdr_find(const struct curl_slist *h, const char *name, size_t *vl) {
    const char *v;
    for (; h; h = h->next)
        if (cas__header_is(h->data, strlen(h->data), name, &v, vl)) return v;
    return NULL;
}

static int cas__starts_ci(const char *s, const char *lower) {
    for (; *lower; s++, lower++)
        if (tolower((unsigned char)*s) != *lower) return 0;
    return 1;
}

static int cas__hdr_cmp(const char *a, const char *b) { /* by lower-case name, up to ':' */
    for (; *a && *a != ':' && tolower((unsigned char)*a) == tolower((unsigned char)*b); a++, b++) {
    }
    return (*a == ':' ? 0 : tolower((unsigned char)*a)) - (*b == ':' ? 0 : tolower((unsigned char)*b));
}

static int cas__az_string_to_sign(cas__buf *sts, const char *method, const struct curl_slist *h, size_t body_len,
                                  const char *account, const char *url) {
    static const char *const std[] = {
        "content-encoding",  "content-language", "content-length", "content-md5",         "content-type", "date",
        "if-modified-since", "if-match",         "if-none-match",  "if-unmodified-since", "range"};
    const char *ms[32], *q[16], *qv[16], *path, *qs, *v;
    char *query = NULL;
    size_t i, j, n = 0, nq = 0, vl;
    cas__buf_addz(sts, method);
    for (i = 0; i < sizeof std / sizeof std[0]; i++) {
        cas__buf_addz(sts, "\n");
        if (!strcmp(std[i], "content-length")) {
            if (body_len) cas__buf_fmt(sts, "%lu", (unsigned long)body_len);
        } else if ((v = cas__hdr_find(h, std[i], &vl)) != NULL) {
            cas__buf_put(sts, v, vl);
        }
    }
    cas__buf_addz(sts, "\n");
    for (; h; h = h->next) /* the x-ms-* headers, sorted by name (insertion sort: a handful) */
        if (cas__starts_ci(h->data, "x-ms-")) {
            if (n == sizeof ms / sizeof ms[0]) return CAS_E_LIMIT; /* never signs a part of them */
            for (j = n++; j && cas__hdr_cmp(ms[j - 1], h->data) > 0; j--) ms[j] = ms[j - 1];
            ms[j] = h->data;
        }
    for (i = 0; i < n; i++) {
        const char *colon = strchr(ms[i], ':');
        if (!colon) continue;
        for (v = ms[i]; v < colon; v++) {
            char c = (char)tolower((unsigned char)*v);
            cas__buf_put(sts, &c, 1);
        }
        cas__buf_addz(sts, ":");
        for (v = colon + 1; *v == ' '; v++) {
        }
        cas__buf_addz(sts, v);
        cas__buf_addz(sts, "\n");
    }
    path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    qs = strchr(url, '?');
    cas__buf_fmt(sts, "/%s", account);
    if (!path || (qs && path > qs)) cas__buf_addz(sts, "/");
    else cas__buf_put(sts, path, qs ? (size_t)(qs - path) : strlen(path));
    if (qs && qs[1]) { /* the query's parameters, sorted by name (lower case), values decoded */
        char *t, *next, *c;
        size_t ql = strlen(qs + 1);
        if (!(query = (char *)malloc(ql + 1))) return CAS_E_NOMEM;
        memcpy(query, qs + 1, ql + 1);
        for (t = query; t; t = next) {
            char *eq;
            if ((next = strchr(t, '&')) != NULL) *next++ = 0;
            if (nq == sizeof q / sizeof q[0]) {
                free(query);
                return CAS_E_LIMIT; /* never signs a part of them */
            }
            if ((eq = strchr(t, '=')) != NULL) *eq = 0, cas__uri_decode(eq + 1);
            for (c = t; *c; c++) *c = (char)tolower((unsigned char)*c);
            for (j = nq++; j && strcmp(q[j - 1], t) > 0; j--) q[j] = q[j - 1], qv[j] = qv[j - 1];
            q[j] = t, qv[j] = eq ? eq + 1 : "";
        }
        for (i = 0; i < nq; i++) {
            cas__buf_addz(sts, "\n");
            cas__buf_addz(sts, q[i]);
            cas__buf_addz(sts, ":");
            cas__buf_addz(sts, qv[i]);
        }
        free(query);
    }
    return sts->p ? CAS_OK : CAS_E_NOMEM;
}

/* Base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes). */
static void cas__b64(const unsigned char *p, size_t n, char *out) { EVP_EncodeBlock((unsigned char *)out, p, (int)n); }

/* Decodes base64 text; the length, or -1 if it is not base64. */
static int cas__unb64(const char *s, unsigned char *out, size_t cap) {
    size_t n = strlen(s), pad = 0;
    int k;
    if (!n || n % 4 || n / 4 * 3 > cap) return -1;
    if (s[n - 1] == '=') pad++;
    if (s[n - 2] == '=') pad++;
    k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    return k < 0 ? -1 : k - (int)pad;
}

/* SharedKey's signature of a canonical request, into "Authorization: SharedKey account:sig". */
static int cas__az_shared_key(const cas__cred *c, const cas__buf *sts, char *line, size_t cap) {
    unsigned char key[256], mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    char sig[EVP_MAX_MD_SIZE * 2];
    int kl = cas__unb64(c->secret, key, sizeof key);
    if (kl <= 0 || !HMAC(EVP_sha256(), key, kl, (const unsigned char *)sts->p, sts->len, mac, &ml)) {
        cas__wipe(key, sizeof key);
        return CAS_E_ARG;
    }
    cas__wipe(key, sizeof key);
    cas__b64(mac, ml, sig);
    snprintf(line, cap, "Authorization: SharedKey %s:%s", c->akid, sig);
    return CAS_OK;
}

/* Adds Azure's date and version to *h, then the proof c holds: a SharedKey
 * signature, a bearer token, or a SAS token appended to the URL libcurl gets. */
static int cas__az_authorize(cas__cloud *cs, CURL *e, const cas__rq *r, const cas__cred *c, struct curl_slist **h) {
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char line[512];
    struct tm tm;
    time_t now = time(NULL);
    int rc = CAS_OK;
    gmtime_r(&now, &tm);
    snprintf(line, sizeof line, "x-ms-date: %s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday], tm.tm_mday,
             mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (!(*h = curl_slist_append(*h, line)) || !(*h = curl_slist_append(*h, "x-ms-version: " CAS__AZ_VERSION)))
        return CAS_E_NOMEM;
    if (c->kind == CAS__AUTH_SHARED_KEY) {
        cas__buf sts;
        memset(&sts, 0, sizeof sts);
        sts.a = &cs->alloc;
        if ((rc = cas__az_string_to_sign(&sts, r->method, *h, !strcmp(r->method, "PUT") ? r->up_len : 0, c->akid,
                                         r->url.p)) == CAS_OK &&
            (rc = cas__az_shared_key(c, &sts, line, sizeof line)) == CAS_OK && !(*h = curl_slist_append(*h, line)))
            rc = CAS_E_NOMEM;
        cas__free(&cs->alloc, sts.p);
    } else { /* a token: in a header (bearer) or in the URL (SAS); wiped from our copies after */
        size_t ul = strlen(r->url.p), tl = strlen(c->token), need = ul + tl + 32;
        char *t;
        if (c->kind == CAS__AUTH_BEARER && cas__secret_may_go(r->url.p, "bearer token", line, sizeof line) < 0)
            return CAS_E_ARG; /* refused at open already (cas__az_cred_check): this is the last line */
        if (!(t = (char *)malloc(need))) return CAS_E_NOMEM;
        if (c->kind == CAS__AUTH_BEARER) {
            snprintf(t, need, "Authorization: Bearer %s", c->token);
            if (!(*h = curl_slist_append(*h, t))) rc = CAS_E_NOMEM;
        } else {
            snprintf(t, need, "%s%c%s", r->url.p, strchr(r->url.p, '?') ? '&' : '?', c->token);
            curl_easy_setopt(e, CURLOPT_URL, t);
        }
        cas__wipe(t, need);
        free(t);
    }
    cas__wipe(line, sizeof line);
    return rc;
}

/* The dialect's cred_check: Entra ID tokens go over https only, or to an emulator here. */
static int cas__az_cred_check(const cas__cloud *cs, const cas__cred *c, char *msg, size_t cap) {
    if (c->kind != CAS__AUTH_BEARER) return CAS_OK;
    return cas__secret_may_go(cs->endpoint, "the Azure endpoint, with a Microsoft Entra ID token", msg, cap);
}
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
/* ---- Azure: Microsoft Entra ID tokens (what Metaflow's DefaultAzureCredential gets) ---- */

/* Azure's links (cas__az_cred_link): a shared key, a SAS token, Entra ID tokens */
enum {
    CAS__AZC_KEY = 1,
    CAS__AZC_SAS,
    CAS__AZC_SECRET,
    CAS__AZC_WORKLOAD,
    CAS__AZC_MANAGED,
    CAS__AZC_LAST = CAS__AZC_MANAGED
};

/* A service principal's secret, or a workload identity's federated token, each
 * traded at the tenant's token endpoint (OAuth client credentials), or a managed
 * identity's token from App Service's identity endpoint or the instance metadata
 * service. Every answer is the same JSON: access_token and when it expires. */

#define CAS__AZ_SCOPE "https%3A%2F%2Fstorage.azure.com%2F.default"
#define CAS__AZ_RESOURCE "https%3A%2F%2Fstorage.azure.com%2F"

/* expires_on / expires_in: a number, or a string of digits; 0 if absent or not one. */
static int64_t cas__az_when(const cas__json *j, const char *key) {
    size_t x = cas__json_get(j, 0, key);
    char num[32], *end;
    int64_t v = 0;
    long long l;
    if (!x) return 0;
    if (j->t[x].type == CAS__J_NUM) return cas__json_int(j, x, &v) == 0 && v > 0 ? v : 0;
    if (j->t[x].type != CAS__J_STR || cas__json_str(j, x, num, sizeof num) == (size_t)-1) return 0;
    l = strtoll(num, &end, 10);
    return end != num && !*end && l > 0 ? (int64_t)l : 0;
}

/* A token answer into bearer credentials for `account`. */
static int cas__az_token_from_json(const char *doc, size_t len, const char *account, cas__cred **out, char *msg,
                                   size_t cap) {
    cas__json j;
    char *tok = NULL;
    size_t t, tl = 0;
    int64_t on, in;
    int rc = CAS_E_CORRUPT;
    *out = NULL;
    if (cas__json_parse(&j, doc, len, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ &&
        (t = cas__json_get(&j, 0, "access_token")) != 0 && j.t[t].type == CAS__J_STR) {
        on = cas__az_when(&j, "expires_on"), in = cas__az_when(&j, "expires_in");
        tl = j.t[t].end - j.t[t].start + 1;
        if (!(tok = (char *)malloc(tl))) rc = CAS_E_NOMEM;
        else if (cas__json_str(&j, t, tok, tl) != (size_t)-1 && (on || in))
            rc = (*out = cas__cred_new(CAS__AUTH_BEARER, account, "", tok, on ? on : cas__now() + in, msg, cap)) != NULL
                     ? CAS_OK
                     : CAS_E_LIMIT; /* its reason said */
    }
    if (tok) cas__wipe(tok, tl), free(tok);
    cas__json_free(&j);
    if (rc == CAS_E_NOMEM) cas__fmt(msg, cap, "out of memory");
    else if (rc == CAS_E_CORRUPT)
        cas__fmt(msg, cap, "the token answer is not the expected JSON (access_token and its expiry)");
    return rc;
}

/* An endpoint's refusal: its OAuth error code and the first line of its description. */
static void cas__az_token_why(const cas__rq *r, const char *what, char *msg, size_t cap) {
    cas__json j;
    char code[64], desc[200];
    size_t e, d;
    code[0] = desc[0] = 0;
    if (r->body.len && cas__json_parse(&j, r->body.p, r->body.len, NULL) == CAS_OK && j.t[0].type == CAS__J_OBJ) {
        if ((e = cas__json_get(&j, 0, "error")) != 0 && j.t[e].type == CAS__J_STR &&
            cas__json_str(&j, e, code, sizeof code) == (size_t)-1)
            code[0] = 0;
        if ((d = cas__json_get(&j, 0, "error_description")) != 0 && j.t[d].type == CAS__J_STR) {
            char *big = (char *)malloc(j.t[d].end - j.t[d].start + 1);
            if (big && cas__json_str(&j, d, big, j.t[d].end - j.t[d].start + 1) != (size_t)-1)
                snprintf(desc, sizeof desc, "%.*s", (int)strcspn(big, "\r\n"), big);
            free(big);
        }
        cas__json_free(&j);
    }
    if (code[0]) cas__fmt(msg, cap, "%s: HTTP %ld %s%s%s", what, r->status, code, desc[0] ? ": " : "", desc);
}

/* POST {AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token, client credentials: proof is
 * "client_secret=..." or "client_assertion=...&client_assertion_type=...". */
static int cas__az_token_grant(cas__cloud *cs, const char *tenant, const char *client, const char *proof_name,
                               const char *proof, const char *extra, const char *what, const char *account,
                               cas__cred **out, char *msg, size_t cap) {
    const char *auth = cas__env("AZURE_AUTHORITY_HOST");
    cas__buf url, form;
    cas__rq r;
    int rc;
    memset(&url, 0, sizeof url), memset(&form, 0, sizeof form);
    form.secret = 1; /* it will hold the client secret or assertion */
    cas__rq_init(&r, "POST", NULL);
    cas__buf_addz(&url, auth ? auth : "https://login.microsoftonline.com");
    if (url.len && url.p[url.len - 1] == '/') url.p[--url.len] = 0;
    cas__buf_addz(&url, "/");
    cas__uri_encode(&url, tenant, 0);
    cas__buf_addz(&url, "/oauth2/v2.0/token");
    cas__buf_addz(&form, extra);
    cas__buf_addz(&form, proof_name);
    cas__buf_addz(&form, "=");
    cas__uri_encode(&form, proof, 0);
    cas__buf_addz(&form, "&client_id=");
    cas__uri_encode(&form, client, 0);
    cas__buf_addz(&form, "&grant_type=client_credentials&scope=" CAS__AZ_SCOPE);
    if (!url.p || !form.p) {
        rc = cas__oom(msg, cap);
    } else if ((rc = cas__secret_may_go(url.p, auth ? "AZURE_AUTHORITY_HOST" : "the token endpoint", msg, cap)) == 0) {
        rc = cas__cred_fetch(cs, "POST", url.p, "Content-Type: application/x-www-form-urlencoded", NULL, form.p, &r,
                             msg, cap);
        if (rc == CAS_OK) rc = cas__az_token_from_json(r.body.p, r.body.len, account, out, msg, cap);
        else cas__az_token_why(&r, what, msg, cap);
    }
    cas__rq_free(&r);
    if (form.p) cas__wipe(form.p, form.len);
    cas__free(NULL, form.p), cas__free(NULL, url.p);
    if (rc < 0 && rc != CAS_E_NOMEM && strncmp(msg, what, strlen(what))) {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "%s: %s", what, why);
    }
    return rc;
}

/* A managed identity: App Service / Functions / Container Apps (IDENTITY_ENDPOINT and
 * IDENTITY_HEADER), else the instance metadata service (VMs, AKS; unreachable: the end
 * of the chain). AZURE_CLIENT_ID picks a user-assigned identity. */
static int cas__az_managed(cas__cloud *cs, const char *account, cas__cred **out, char *msg, size_t cap) {
    const char *ep = cas__env("IDENTITY_ENDPOINT"), *hv = cas__env("IDENTITY_HEADER"),
               *id = cas__env("AZURE_CLIENT_ID");
    const char *imds = cas__env("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    char hdr[600];
    cas__buf url;
    cas__rq r;
    int rc;
    memset(&url, 0, sizeof url);
    if (ep && hv) {
        cas__buf_addz(&url, ep);
        cas__buf_addz(&url, strchr(ep, '?') ? "&" : "?");
        cas__buf_addz(&url, "api-version=2019-08-01&resource=" CAS__AZ_RESOURCE);
        snprintf(hdr, sizeof hdr, "X-IDENTITY-HEADER: %.500s", hv);
    } else {
        cas__buf_addz(&url, imds ? imds : "http://169.254.169.254");
        if (url.len && url.p[url.len - 1] == '/') url.p[--url.len] = 0;
        cas__buf_addz(&url, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" CAS__AZ_RESOURCE);
        snprintf(hdr, sizeof hdr, "Metadata: true");
    }
    if (id) cas__buf_addz(&url, "&client_id="), cas__uri_encode(&url, id, 0);
    if (!url.p) return cas__oom(msg, cap);
    rc = cas__cred_fetch(cs, "GET", url.p, hdr, NULL, NULL, &r, msg, cap);
    if (rc == CAS_OK) rc = cas__az_token_from_json(r.body.p, r.body.len, account, out, msg, cap);
    else if (!(ep && hv) && (r.status == 0 || r.status == 400))
        rc = CAS_E_NOTFOUND; /* no metadata service (not on Azure), or no identity assigned */
    else cas__az_token_why(&r, "managed identity", msg, cap);
    cas__wipe(hdr, sizeof hdr);
    cas__rq_free(&r);
    cas__free(NULL, url.p);
    if (rc < 0 && rc != CAS_E_NOTFOUND && strncmp(msg, "managed identity", 16)) {
        char why[300];
        snprintf(why, sizeof why, "%s", msg);
        cas__fmt(msg, cap, "managed identity: %s", why);
    }
    return rc;
}

/* The Azure links of the credential chain: static secrets first, then Entra ID as
 * DefaultAzureCredential orders it (environment, workload identity, managed identity). */
static int cas__az_cred_link(cas__cloud *cs, int which, cas__cred **out, char *msg, size_t cap) {
    cas__az_cfg g;
    unsigned char k[256];
    int rc = cas__az_settings(&g, msg, cap);
    *out = NULL;
    if (rc == CAS_OK && which == CAS__AZC_KEY) {
        if (!g.key[0]) rc = CAS_E_NOTFOUND;
        else if (cas__unb64(g.key, k, sizeof k) <= 0)
            rc = CAS_E_ARG, cas__fmt(msg, cap, "the Azure storage key is not base64");
        else if (!(*out = cas__cred_new(CAS__AUTH_SHARED_KEY, g.account, g.key, NULL, 0, msg, cap))) rc = CAS_E_ARG;
        cas__wipe(k, sizeof k);
    } else if (rc == CAS_OK && which == CAS__AZC_SAS) {
        if (!g.sas[0]) rc = CAS_E_NOTFOUND;
        else if (!(*out = cas__cred_new(CAS__AUTH_SAS, g.account, "", g.sas, 0, msg, cap))) rc = CAS_E_ARG;
    } else if (rc == CAS_OK) {
        const char *ten = cas__env("AZURE_TENANT_ID"), *cl = cas__env("AZURE_CLIENT_ID");
        const char *sec = cas__env("AZURE_CLIENT_SECRET"), *file = cas__env("AZURE_FEDERATED_TOKEN_FILE");
        if (which == CAS__AZC_SECRET) {
            rc = ten && cl && sec ? cas__az_token_grant(cs, ten, cl, "client_secret", sec, "", "service principal",
                                                        g.account, out, msg, cap)
                                  : CAS_E_NOTFOUND;
        } else if (which == CAS__AZC_WORKLOAD) {
            char *jwt, *t;
            size_t jl = 0;
            if (!ten || !cl || !file) rc = CAS_E_NOTFOUND;
            else if (!(jwt = cas__slurp_file(file, (size_t)64 << 10, &jl)))
                rc = CAS_E_IO, cas__fmt(msg, cap, "cannot read AZURE_FEDERATED_TOKEN_FILE '%.300s'", file);
            else {
                t = jwt;
                cas__trim(&t, &jl);
                t[jl] = 0;
                rc = cas__az_token_grant(cs, ten, cl, "client_assertion", t,
                                         "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type"
                                         "%3Ajwt-bearer&",
                                         "workload identity", g.account, out, msg, cap);
                cas__wipe(jwt, jl), free(jwt);
            }
        } else {
            rc = cas__az_managed(cs, g.account, out, msg, cap);
        }
    }
    cas__az_cfg_wipe(&g);
    return rc;
}
/* ---- Azure's dialect: blocks and block lists, listings, its row, its backend ------ */

#define CAS__AZ_META_HEADER "x-ms-meta-metaflow_user_attributes" /* Azure's names are identifiers */

/* Azure has nothing to start: the block ids carry a nonce of this writer's. */
static int cas__az_upload_begin(cas__cloudw *w, char *msg, size_t cap) {
    (void)msg, (void)cap;
    snprintf(w->upload, sizeof w->upload, "%016llx", (unsigned long long)cas__cloud_random(w->cs));
    return CAS_OK;
}

/* Azure: block ids of one length (its rule), unique to this writer, base64. */
static void cas__az_part_query(cas__cloudw *w, int n, cas__buf *q, char *id) {
    char raw[32]; /* "cas-" 16 hex "-" 5 digits: base64 of it is 36 bytes */
    snprintf(raw, sizeof raw, "cas-%.16s-%05d", w->upload, n);
    cas__b64((const unsigned char *)raw, strlen(raw), id);
    cas__buf_addz(q, "blockid=");
    cas__uri_encode(q, id, 0);
    cas__buf_addz(q, "&comp=block");
}

static int cas__az_part_entry(const cas__rq *r, int n, const char *id, char *entry, size_t cap) {
    (void)n;
    if (r->status != 201) return 0;
    snprintf(entry, cap, "<Latest>%s</Latest>", id);
    return 1;
}

/* Azure: PUT ?comp=metadata. S3: PUT with x-amz-copy-source onto itself: new
 * metadata, the same bytes. */
static int cas__az_set_meta(cas__cloudw *w, int *stored, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__rq r;
    int rc;
    cas__rq_init(&r, "PUT", &cs->alloc);
    if (cas__cloud_url(cs, &r.url, w->name, "comp=metadata") < 0 ||
        cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0)
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
        if (r.status == 200) *stored = 1;
        else if ((rc = cas__cloud_answer_fail(&r, msg, cap)) == CAS_E_NOTFOUND) rc = CAS_E_IO;
    }
    cas__rq_free(&r);
    return rc;
}

/* Azure: Put Block List makes the blocks the blob, with its metadata (repeatable). */
static void cas__az_complete_query(cas__cloudw *w, cas__buf *q) {
    (void)w;
    cas__buf_addz(q, "comp=blocklist");
}

static int cas__az_complete_answer(cas__cloudw *w, cas__rq *r, char *msg, size_t cap) {
    int rc;
    (void)w;
    if (r->status == 201) return CAS_OK;
    return (rc = cas__cloud_answer_fail(r, msg, cap)) == CAS_E_NOTFOUND ? CAS_E_IO : rc;
}

/* Azure's rule for container names: 3-63 of [a-z0-9-]. */
static int cas__container_ok(const char *b, size_t n) {
    size_t i;
    if (n < 3 || n > 63) return 0;
    for (i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-')) return 0;
    return 1;
}

static void cas__az_no_creds(const cas__cloud *cs, char *msg, size_t cap) {
    (void)cs;
    cas__fmt(msg, cap,
             "no Azure credentials found (looked for AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, "
             "AZURE_STORAGE_CONNECTION_STRING, a SAS in the endpoint, a service principal "
             "(AZURE_CLIENT_SECRET), workload identity (AZURE_FEDERATED_TOKEN_FILE) and a managed "
             "identity)");
}

/* List Blobs. */
static void cas__az_list_query(const cas__cloud *cs, cas__buf *q, const char *strip, const char *next, int delimiter) {
    cas__buf_addz(q, "comp=list");
    if (delimiter) cas__buf_addz(q, "&delimiter=%2F");
    if (next[0]) cas__buf_addz(q, "&marker="), cas__uri_encode(q, next, 0);
    cas__buf_fmt(q, "&maxresults=%d&prefix=", (int)cas__cloudp(cs, CAS_PARAM_CLOUD_LIST_PAGE));
    cas__uri_encode(q, strip, 0);
    cas__buf_addz(q, "&restype=container");
}

static const cas__dialect cas__az_dialect = {CAS__AZ_META_HEADER,
                                             "x-ms-blob-type: BlockBlob",
                                             0,
                                             1,
                                             CAS__AZC_LAST,
                                             cas__az_cred_link,
                                             cas__az_no_creds,
                                             cas__az_list_query,
                                             cas__az_upload_begin,
                                             cas__az_part_query,
                                             cas__az_part_entry,
                                             "PUT",
                                             "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>",
                                             "</BlockList>",
                                             cas__az_complete_query,
                                             1,
                                             cas__az_complete_answer,
                                             cas__az_set_meta,
                                             "CAS_AZURE_",
                                             cas__az_authorize,
                                             "x-ms-error-code",
                                             cas__az_cred_check};

static int cas__az_backend(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    cas__cloud *cs;
    cas__az_cfg g;
    const char *v;
    size_t k;
    char why[CAS__MSG];
    int rc = cas__cloud_new(&cs, &cas__az_dialect, url, 8, cas__container_ok,
                            "azure://CONTAINER[/PREFIX] with a valid container name", alloc, err, errcap);
    if (rc < 0) return rc;
    cs->path_style = 1;
    if ((rc = cas__az_settings(&g, why, sizeof why)) < 0) {
        cas__az_cfg_wipe(&g);
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, rc, "Cannot open '%.300s': %s", url, why);
    }
    k = strlen(g.endpoint);
    while (k && g.endpoint[k - 1] == '/') k--;
    cs->endpoint = cas__strdup_a(&cs->alloc, g.endpoint, k);
    cas__az_cfg_wipe(&g);
    /* what the Azure SDK's HTTP stack (requests) takes for other CA certificates */
    if ((v = cas__env("REQUESTS_CA_BUNDLE")) || (v = cas__env("CURL_CA_BUNDLE")))
        cs->ca_bundle = cas__strdup_a(&cs->alloc, v, strlen(v));
    if (!cs->endpoint || (v && !cs->ca_bundle)) {
        cas__cloud_destroy(cs);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    return cas__cloud_ready(cs, out, url, err, errcap);
}
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
#ifdef __cplusplus
}
#endif
#endif /* CAS_CLOUD_IMPLEMENTATION */
