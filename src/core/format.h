/* ---- blob formats and the _meta sidecar ----------------------------------- */

#define CAS_FORMAT_V1 1     /* gzip:   {"cas_raw": false, "cas_version": 1} */
#define CAS_FORMAT_V2 2     /* LZ4:    {"cas_raw": false, "cas_version": 2} */
#define CAS_FORMAT_RAW 3    /* as is:  {"cas_raw": true, "cas_version": 1}  */
#define CAS_FORMAT_LEGACY 4 /* no sidecar at all: read as gzip (before Metaflow 2.4) */
#define CAS_META_MAX 40     /* the longest sidecar this library writes, plus NUL */

CASDEF const char *cas_format_name(int format); /* "v1", "v2", "raw", "legacy", "?" */
/* The codec a format's bytes are in (CAS_CODEC_*), 0 if none. */
CASDEF int cas_format_codec(int format);
/* The sidecar JSON byte for byte as Metaflow writes it (json.dumps), NUL-terminated. */
CASDEF int cas_meta_json(int format, char *buf, size_t cap, size_t *len);
/* Applies Metaflow's read rules to a sidecar: CAS_OK with *format set (V1, V2 or RAW),
 * CAS_E_VERSION_MISSING ({} or no cas_version), CAS_E_VERSION_UNKNOWN (*version set),
 * CAS_E_META (not a JSON object). Both out-parameters are nullable. */
CASDEF int cas_meta_parse(const char *json, size_t len, int *format, int64_t *version);
