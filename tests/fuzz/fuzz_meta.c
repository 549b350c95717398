/* fuzz_meta: the _meta sidecar JSON, through cas_meta_parse and cas_reader_begin.
 *
 * Input: the sidecar bytes (not NUL-terminated, as a file's contents).
 *
 * Checks: neither call crashes, leaks or reads past the bytes; cas_meta_parse
 * returns one of its documented codes with consistent out-parameters; the
 * reader's begin agrees with it (same outcome, same format) and words every
 * refusal in Metaflow's terms; a sidecar accepted as v1, v2 or raw then reads
 * a blob of that format ("abc") back; the three sidecars Metaflow writes are
 * recognised as what they are.
 */
#include "fuzz_common.h"

#define NAME "FuzzFlow/data/a9/a9993e364706816aba3e25717850c26c9cd0d89d"
#define PREFIX "Could not extract encoding version for '" NAME "'"

static const unsigned char abc_gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x4b, 0x4c,
                                         0x4a, 0x06, 0x00, 0xc2, 0x41, 0x24, 0x35, 0x03, 0x00, 0x00, 0x00};
static const unsigned char abc_lz4[] = {0x04, 0x22, 0x4d, 0x18, 0x68, 0x40, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x87, 0x03, 0x00, 0x00, 0x80, 0x61, 0x62, 0x63, 0x00, 0x00, 0x00, 0x00};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *meta = (const char *)data;
    int fmt = -7, rc, rb;
    int64_t ver = -7;
    cas_reader *r;
    const char *msg;

    rc = cas_meta_parse(meta, size, &fmt, &ver);
    FUZZ_ASSERT(rc == CAS_OK || rc == CAS_E_META || rc == CAS_E_VERSION_MISSING || rc == CAS_E_VERSION_UNKNOWN,
                "cas_meta_parse returned %s", cas_status_name(rc));
    if (rc == CAS_OK)
        FUZZ_ASSERT(fmt == CAS_FORMAT_V1 || fmt == CAS_FORMAT_V2 || fmt == CAS_FORMAT_RAW, "format %d", fmt);
    else FUZZ_ASSERT(fmt == 0, "format %d set with %s", fmt, cas_status_name(rc));
    if (rc == CAS_E_VERSION_UNKNOWN)
        FUZZ_ASSERT(ver != 1 && ver != 2 && ver != -1, "version %lld is known", (long long)ver);
    if (rc == CAS_OK && fmt != CAS_FORMAT_RAW)
        FUZZ_ASSERT(ver == (fmt == CAS_FORMAT_V1 ? 1 : 2), "version %lld for %s", (long long)ver, cas_format_name(fmt));
    /* an out-of-range version keeps its sign (INT64_MIN or INT64_MAX) */
    if (rc == CAS_E_VERSION_UNKNOWN) {
        cas__json j;
        size_t vt;
        if (cas__json_parse(&j, meta, size, NULL) == CAS_OK && (vt = cas__json_get(&j, 0, "cas_version")) != 0 &&
            j.t[vt].type == CAS__J_NUM) {
            int neg = meta[j.t[vt].start] == '-';
            FUZZ_ASSERT(neg ? ver <= 0 : ver >= 0, "version %.*s reported as %lld", (int)(j.t[vt].end - j.t[vt].start),
                        meta + j.t[vt].start, (long long)ver);
        }
        cas__json_free(&j);
    }
    /* nullable out-parameters give the same answer */
    FUZZ_ASSERT(cas_meta_parse(meta, size, NULL, NULL) == rc, "result depends on the out-parameters");

    FUZZ_ASSERT(cas_reader_create(&r, NULL) == CAS_OK, "create");
    rb = cas_reader_begin(r, meta, size, NAME, NULL);
    msg = cas_reader_message(r);
    fuzz_log("meta_parse %s (format %d, version %lld), begin %s: %s\n", cas_status_name(rc), fmt, (long long)ver,
             cas_status_name(rb), msg);
    if (rc == CAS_OK) {
        void *out = NULL;
        size_t len = 0;
        const unsigned char *blob = fmt == CAS_FORMAT_V1   ? abc_gzip
                                    : fmt == CAS_FORMAT_V2 ? abc_lz4
                                                           : (const unsigned char *)"abc";
        size_t n = fmt == CAS_FORMAT_V1 ? sizeof abc_gzip : fmt == CAS_FORMAT_V2 ? sizeof abc_lz4 : 3;
        FUZZ_ASSERT(rb == CAS_OK, "cas_meta_parse accepts (%s) but begin gives %s: %s", cas_format_name(fmt),
                    cas_status_name(rb), msg);
        FUZZ_ASSERT(cas_reader_format(r) == fmt, "reader format %d, parse format %d", cas_reader_format(r), fmt);
        rb = cas_reader_unpack(r, blob, n, &out, &len);
        FUZZ_ASSERT(rb == CAS_DONE && len == 3 && !memcmp(out, "abc", 3), "abc as %s: %s (%s)", cas_format_name(fmt),
                    cas_status_name(rb), cas_reader_message(r));
        cas_reader_free_buffer(r, out);
    } else {
        FUZZ_ASSERT(rb == rc, "cas_meta_parse gives %s but begin gives %s: %s", cas_status_name(rc),
                    cas_status_name(rb), msg);
        if (rc == CAS_E_VERSION_UNKNOWN)
            FUZZ_ASSERT(!strncmp(msg, "Unknown encoding version ", 25) && strstr(msg, NAME), "message: %s", msg);
        else FUZZ_ASSERT(!strncmp(msg, PREFIX, sizeof PREFIX - 1), "message: %s", msg);
    }
    cas_reader_free(r);

    /* the canonical sidecars are recognised exactly */
    {
        char buf[CAS_META_MAX];
        size_t l;
        int f;
        for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_RAW; f++) {
            FUZZ_ASSERT(cas_meta_json(f, buf, sizeof buf, &l) == CAS_OK, "meta_json");
            if (l == size && !memcmp(buf, data, l)) FUZZ_ASSERT(rc == CAS_OK && fmt == f, "canonical %s", buf);
        }
    }
    return 0;
}
