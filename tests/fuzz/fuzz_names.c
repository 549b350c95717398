/* fuzz_names: flow names, pathspecs and keys, the strings that become paths.
 *
 * Input: [selector][bytes...]. The bytes are cut at the first NUL into a C
 * string s (the rest, if any, is a second string t); the selector picks the
 * capacity given to cas_store_blob_name.
 *
 * Checks, against an independent model of the documented rules and against
 * path safety whatever the rules say:
 * - cas_name_check(s): accepted iff 1..255 of [A-Za-z0-9_.-], not starting
 *   with '.'; accepted names hold no '/', no NUL, are neither "." nor "..", and
 *   are not absolute.
 * - cas_pathspec_check(s): accepted iff exactly four '/'-separated names; no
 *   leading or trailing '/', no empty, "." or ".." component.
 * - cas_key_check(bytes, len): accepted iff 40 or 32 lowercase hex digits (the
 *   bytes as given, NULs included), with the matching algorithm.
 * - cas__file_name_check(s) (cas_store_file_*'s names) and cas_encoding_is_pickle(s)
 *   agree with a model of their rules.
 * - cas_store_blob_name(s, t, buf, cap): CAS_OK only for a valid name and key,
 *   giving exactly "<flow>/data/<key[0:2]>/<key>"; never writes past cap; the
 *   result is relative and holds no "." or ".." component, no "//".
 */
#include "fuzz_common.h"
#include <ctype.h>

static int model_name(const char *s) {
    size_t i, n = strlen(s);
    if (n < 1 || n > 255 || s[0] == '.') return 0;
    for (i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", s[i])) return 0;
    return 1;
}

static int model_pathspec(const char *s) {
    char part[512];
    int parts = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l >= sizeof part) return 0;
        memcpy(part, p, l), part[l] = 0;
        if (!model_name(part)) return 0;
        parts++;
        if (!e) break;
        p = e + 1;
    }
    return parts == 4;
}

static int model_key(const uint8_t *k, size_t n, int *algo) {
    size_t i;
    *algo = 0;
    if (n != 40 && n != 32) return 0;
    for (i = 0; i < n; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f'))) return 0;
    *algo = n == 40 ? CAS_HASH_SHA1 : CAS_HASH_XXH3;
    return 1;
}

/* A store-relative object name (cas_store_file_*): parts split on '/', none empty,
 * "." or "..", no control character, at most 1024 bytes. */
static int model_file_name(const char *s) {
    size_t i, n = strlen(s), part = 0;
    if (n < 1 || n > 1024) return 0;
    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (!part || (part == 1 && s[i - 1] == '.') || (part == 2 && s[i - 1] == '.' && s[i - 2] == '.')) return 0;
            part = 0;
        } else if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        } else {
            part++;
        }
    }
    return 1;
}

/* Metaflow's PickleSerializer's encodings: [gzip+]pickle-v<digits>. */
static int model_pickle_encoding(const char *s) {
    const char *d;
    if (!strncmp(s, "gzip+", 5)) s += 5;
    if (strncmp(s, "pickle-v", 8) || !s[8]) return 0;
    for (d = s + 8; *d; d++)
        if (!isdigit((unsigned char)*d)) return 0;
    return 1;
}

/* A path that cannot leave the directory it is joined to. */
static void check_safe_path(const char *what, const char *p) {
    const char *c = p;
    FUZZ_ASSERT(p[0] && p[0] != '/', "%s '%s' is empty or absolute", what, p);
    FUZZ_ASSERT(!strstr(p, "//"), "%s '%s' has an empty component", what, p);
    for (;;) {
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        FUZZ_ASSERT(l > 0, "%s '%s' has an empty component", what, p);
        FUZZ_ASSERT(!(l == 1 && c[0] == '.') && !(l == 2 && c[0] == '.' && c[1] == '.'),
                    "%s '%s' has a . or .. component", what, p);
        FUZZ_ASSERT(c[0] != '.', "%s '%s' has a hidden component", what, p);
        if (!e) break;
        c = e + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in;
    unsigned sel;
    char *s, *t;
    size_t sl;
    int rc, algo = -1, malgo;

    in.p = data, in.n = size;
    sel = fz_u8(&in);
    /* s: up to the first NUL; t: after it */
    s = (char *)malloc(in.n + 1);
    memcpy(s, in.p, in.n), s[in.n] = 0;
    sl = strlen(s);
    t = s + (sl < in.n ? sl + 1 : sl);

    /* names */
    rc = cas_name_check(s);
    FUZZ_ASSERT(rc == CAS_OK || rc == CAS_E_NAME, "name_check returned %d", rc);
    FUZZ_ASSERT((rc == CAS_OK) == model_name(s), "name_check('%s') = %s, the rule says %s", s, cas_status_name(rc),
                model_name(s) ? "valid" : "invalid");
    if (rc == CAS_OK) {
        FUZZ_ASSERT(!strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."), "accepted name '%s'", s);
        check_safe_path("name", s);
    }

    /* store-relative object names: never one that could leave the root */
    rc = cas__file_name_check(s);
    FUZZ_ASSERT(rc == CAS_OK || rc == CAS_E_NAME, "file_name_check returned %d", rc);
    FUZZ_ASSERT((rc == CAS_OK) == model_file_name(s), "file_name_check('%s') = %s, the rule says %s", s,
                cas_status_name(rc), model_file_name(s) ? "valid" : "invalid");
    if (rc == CAS_OK) FUZZ_ASSERT(s[0] != '/' && !strstr(s, "//") && !strstr(s, "/../"), "accepted '%s'", s);
    FUZZ_ASSERT(cas_encoding_is_pickle(s) == model_pickle_encoding(s), "encoding_is_pickle('%s')", s);

    /* pathspecs */
    rc = cas_pathspec_check(s);
    FUZZ_ASSERT(rc == CAS_OK || rc == CAS_E_NAME, "pathspec_check returned %d", rc);
    FUZZ_ASSERT((rc == CAS_OK) == model_pathspec(s), "pathspec_check('%s') = %s, the rule says %s", s,
                cas_status_name(rc), model_pathspec(s) ? "valid" : "invalid");
    if (rc == CAS_OK) check_safe_path("pathspec", s);

    /* keys: the raw bytes, NULs and all, and the C string */
    rc = cas_key_check((const char *)in.p, in.n, &algo);
    FUZZ_ASSERT((rc == CAS_OK) == model_key(in.p, in.n, &malgo) && algo == malgo, "key_check(%zu bytes) = %s algo %d",
                in.n, cas_status_name(rc), algo);
    rc = cas_key_check(s, sl, NULL);
    FUZZ_ASSERT((rc == CAS_OK) == model_key((const uint8_t *)s, sl, &malgo), "key_check('%s')", s);

    /* blob names: s as the flow, t as the key, into a buffer of cap bytes */
    {
        size_t cap = sel < 0xf0 ? sel : 512;
        char *buf = (char *)malloc(cap ? cap : 1);
        char want[1024];
        int ok_flow = model_name(s), ok_key = model_key((const uint8_t *)t, strlen(t), &malgo);
        int wl = snprintf(want, sizeof want, "%s/data/%.2s/%s", s, t, t);
        rc = cas_store_blob_name(s, t, buf, cap);
        if (!ok_flow) FUZZ_ASSERT(rc == CAS_E_NAME, "blob_name with flow '%s': %s", s, cas_status_name(rc));
        else if (!ok_key) FUZZ_ASSERT(rc == CAS_E_KEY, "blob_name with key '%s': %s", t, cas_status_name(rc));
        else if ((size_t)wl < cap) {
            FUZZ_ASSERT(rc == CAS_OK && !strcmp(buf, want), "blob_name: %s '%s', want '%s'", cas_status_name(rc),
                        rc == CAS_OK ? buf : "", want);
            check_safe_path("blob name", buf);
        } else {
            FUZZ_ASSERT(rc == CAS_NEED_OUTPUT, "blob_name into %zu bytes for %d: %s", cap, wl, cas_status_name(rc));
            if (cap) FUZZ_ASSERT(memchr(buf, 0, cap) != NULL, "truncated blob name not terminated");
        }
        free(buf);
    }
    free(s);
    return 0;
}
