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
