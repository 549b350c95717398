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
