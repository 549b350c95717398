/* fuzz_datajson: a task's N.data.json, through cas_task_parse (what
 * cas_task_open runs on the bytes any backend hands it), the internal JSON
 * parser directly, and the attempt rule.
 *
 * Input: the data.json bytes; no files are involved.
 *
 * - cas_task_parse(&t, "F/1/s/1", 0, bytes): fails with a message, or lists the names
 *   of "objects" as Python's json.loads builds the dict (a repeated name keeps
 *   its first position and its last value), with NUL-terminated strings
 *   (name, key, encoding, type) decoded from the JSON, sizes >= -1;
 *   cas_task_find finds each name at its index; cas_task_artifact refuses an
 *   index past the end.
 * - cas__json_parse on the bytes (not NUL-terminated): on success every token
 *   is well formed (spans inside the text, strings between quotes, numbers as
 *   the scanner reads them, subtrees nested properly, member counts right);
 *   cas__json_str decodes every string into an exact-size buffer (and a short
 *   one) without overrunning it; cas__json_int / cas__json_truthy run on every
 *   scalar inside a container; cas__json_get finds the last of duplicate keys.
 */
#include "fuzz_common.h"

/* ---- the parser's tokens ---------------------------------------------------- */

static void check_tokens(const cas__json *j, const char *s, size_t n) {
    size_t i;
    FUZZ_ASSERT(j->count >= 1, "no tokens");
    FUZZ_ASSERT(j->t[0].next == j->count, "root subtree %zu of %zu tokens", j->t[0].next, j->count);
    for (i = 0; i < j->count; i++) {
        const cas__jtok *t = &j->t[i];
        FUZZ_ASSERT(t->type >= CAS__J_OBJ && t->type <= CAS__J_NULL, "token %zu type %d", i, t->type);
        FUZZ_ASSERT(t->start <= t->end && t->end <= n, "token %zu span %zu..%zu of %zu", i, t->start, t->end, n);
        FUZZ_ASSERT(t->next > i && t->next <= j->count, "token %zu next %zu", i, t->next);
        switch (t->type) {
        case CAS__J_OBJ:
        case CAS__J_ARR: {
            /* walk the children: count of them, and the last one ends the subtree */
            size_t c = i + 1, k, per = t->type == CAS__J_OBJ ? 2 : 1;
            FUZZ_ASSERT(s[t->start] == (t->type == CAS__J_OBJ ? '{' : '['), "container %zu opens with %c", i,
                        s[t->start]);
            FUZZ_ASSERT(s[t->end - 1] == (t->type == CAS__J_OBJ ? '}' : ']'), "container %zu closes with %c", i,
                        s[t->end - 1]);
            for (k = 0; k < t->count * per; k++) {
                FUZZ_ASSERT(c < t->next, "container %zu: child %zu at %zu past its subtree %zu", i, k, c, t->next);
                if (per == 2 && k % 2 == 0)
                    FUZZ_ASSERT(j->t[c].type == CAS__J_STR, "object %zu key %zu not a string", i, c);
                c = j->t[c].next;
            }
            FUZZ_ASSERT(c == t->next, "container %zu: children end at %zu, subtree at %zu", i, c, t->next);
            break;
        }
        case CAS__J_STR:
            FUZZ_ASSERT(t->start >= 1 && s[t->start - 1] == '"' && t->end < n && s[t->end] == '"',
                        "string %zu not between quotes", i);
            FUZZ_ASSERT(t->next == i + 1 && t->count == 0, "string %zu has children", i);
            break;
        case CAS__J_NUM:
            FUZZ_ASSERT(cas__json_scan_num(s, t->start, n) == t->end, "number %zu", i);
            FUZZ_ASSERT(t->next == i + 1, "number %zu has children", i);
            break;
        case CAS__J_TRUE: FUZZ_ASSERT(t->end - t->start == 4 && !memcmp(s + t->start, "true", 4), "true"); break;
        case CAS__J_FALSE: FUZZ_ASSERT(t->end - t->start == 5 && !memcmp(s + t->start, "false", 5), "false"); break;
        case CAS__J_NULL: FUZZ_ASSERT(t->end - t->start == 4 && !memcmp(s + t->start, "null", 4), "null"); break;
        }
    }
}

/* Decodes string token i into exact-size heap buffers, so an overrun is seen. */
static void check_string(const cas__json *j, size_t i) {
    size_t raw = j->t[i].end - j->t[i].start, got, cap;
    char *buf = (char *)malloc(raw + 1);
    got = cas__json_str(j, i, buf, raw + 1);
    if (got != (size_t)-1) {
        FUZZ_ASSERT(got <= raw, "string %zu decodes to %zu bytes from %zu", i, got, raw);
        FUZZ_ASSERT(buf[got] == 0 && strlen(buf) == got, "string %zu: NUL inside or missing", i);
    }
    free(buf);
    for (cap = 1; cap <= raw && cap <= 8; cap++) { /* short buffers: refused or fitting, never overrun */
        size_t g2;
        buf = (char *)malloc(cap);
        g2 = cas__json_str(j, i, buf, cap);
        FUZZ_ASSERT(g2 == (size_t)-1 || (g2 < cap && g2 == got), "string %zu into %zu bytes gave %zu (full: %zu)", i,
                    cap, g2, got);
        free(buf);
    }
}

static void check_parser(const uint8_t *data, size_t size) {
    cas__json j;
    const char *s = (const char *)data;
    size_t i;
    int rc = cas__json_parse(&j, s, size, NULL);
    if (rc != CAS_OK) {
        FUZZ_ASSERT(rc == CAS_E_JSON, "parse returned %s", cas_status_name(rc));
        FUZZ_ASSERT(j.err[0] != 0, "parse failed without a reason");
        cas__json_free(&j);
        return;
    }
    check_tokens(&j, s, size);
    for (i = 0; i < j.count; i++) {
        int64_t v;
        if (j.t[i].type == CAS__J_STR) check_string(&j, i);
        /* scalars inside a container: they are followed by a delimiter, as in every use */
        if (i > 0) {
            (void)cas__json_int(&j, i, &v);
            (void)cas__json_truthy(&j, i);
        }
        if (j.t[i].type == CAS__J_OBJ) {
            /* every plain key finds its last occurrence */
            size_t k, c = i + 1;
            for (k = 0; k < j.t[i].count; k++) {
                char key[64];
                size_t kl = j.t[c].end - j.t[c].start, c2, m, last = 0;
                if (kl < sizeof key && !memchr(s + j.t[c].start, '\\', kl)) {
                    memcpy(key, s + j.t[c].start, kl), key[kl] = 0;
                    for (m = 0, c2 = i + 1; m < j.t[i].count; m++, c2 = j.t[c2 + 1].next)
                        if (cas__json_str_is(&j, c2, key)) last = c2 + 1;
                    FUZZ_ASSERT(cas__json_get(&j, i, key) == last, "get(%s) in object %zu: %zu, last %zu", key, i,
                                cas__json_get(&j, i, key), last);
                }
                c = j.t[c + 1].next;
            }
        }
    }
    FUZZ_ASSERT(cas__json_get(&j, j.count, "x") == 0, "get past the end");
    cas__json_free(&j);
}

/* ---- the task ------------------------------------------------------------- */

/* A string token decoded as the task decodes it: "" when not a string or undecodable. */
static char *decoded(const cas__json *j, size_t tok) {
    size_t raw = tok ? j->t[tok].end - j->t[tok].start : 0;
    char *b = (char *)malloc(raw + 1);
    b[0] = 0;
    if (tok && j->t[tok].type == CAS__J_STR && cas__json_str(j, tok, b, raw + 1) == (size_t)-1) b[0] = 0;
    return b;
}

static void check_task(const uint8_t *data, size_t size) {
    char err[512];
    cas_task *t = NULL;
    size_t i, k, m, count, idx, uniq;
    int rc;
    cas__json j;
    size_t objs = 0;
    char **names, **keys;

    err[0] = 0;
    rc = cas_task_parse(&t, "F/1/s/1", 0, data, size, NULL, err, sizeof err);
    fuzz_log("task_parse: %s %s\n", cas_status_name(rc), err);
    if (rc != CAS_OK) {
        FUZZ_ASSERT(rc < 0 && t == NULL, "failed open: %d, task %p", rc, (void *)t);
        FUZZ_ASSERT(err[0] != 0, "failed open without a message");
        return;
    }
    FUZZ_ASSERT(t != NULL, "no task");
    FUZZ_ASSERT(cas_task_attempt(t) == 0, "attempt %d", cas_task_attempt(t));
    FUZZ_ASSERT(!strcmp(cas_task_flow(t), "F"), "flow %s", cas_task_flow(t));
    count = cas_task_count(t);

    /* The model: Python's json.loads(...)["objects"], a dict: a repeated name
     * keeps its first position and its last value. */
    FUZZ_ASSERT(cas__json_parse(&j, (const char *)data, size, NULL) == CAS_OK, "task opened but the JSON is bad");
    objs = cas__json_get(&j, 0, "objects");
    FUZZ_ASSERT(objs && j.t[objs].type == CAS__J_OBJ, "task opened without an objects map");
    m = j.t[objs].count;
    { /* info's sorted lookup finds, for every object name, what a scan for the last match finds */
        size_t info = cas__json_get(&j, 0, "info"), ni, c, q, kt, *ik;
        if (info && j.t[info].type == CAS__J_OBJ && (ni = j.t[info].count) > 0) {
            ik = (size_t *)malloc(2 * ni * sizeof *ik);
            for (c = 0, q = info + 1; c < ni; c++, q = j.t[q + 1].next) ik[c] = q;
            cas__tok_sort(&j, ik, ik + ni, ni);
            for (c = 1; c < ni; c++)
                FUZZ_ASSERT(cas__tok_cmp(&j, ik[c - 1], ik[c]) < 0, "info keys out of order at %zu", c);
            for (k = 0, kt = objs + 1; k < m; k++, kt = j.t[kt + 1].next) {
                size_t want = 0;
                for (c = 0, q = info + 1; c < ni; c++, q = j.t[q + 1].next)
                    if (j.t[q].end - j.t[q].start == j.t[kt].end - j.t[kt].start &&
                        !memcmp(data + j.t[q].start, data + j.t[kt].start, j.t[kt].end - j.t[kt].start))
                        want = q + 1;
                FUZZ_ASSERT(cas__info_find(&j, ik, ni, kt) == want, "object %zu: info lookup %zu, scan %zu", k,
                            cas__info_find(&j, ik, ni, kt), want);
            }
            free(ik);
        }
    }
    names = (char **)calloc(m + 1, sizeof *names);
    keys = (char **)calloc(m + 1, sizeof *keys);
    for (k = 0, idx = objs + 1, uniq = 0; k < m; k++, idx = j.t[idx + 1].next) {
        char *nm = decoded(&j, idx), *ky = decoded(&j, idx + 1);
        for (i = 0; i < uniq && strcmp(names[i], nm); i++) {
        }
        if (i == uniq) names[uniq] = nm, keys[uniq++] = ky; /* first position */
        else free(nm), free(keys[i]), keys[i] = ky;         /* last value */
    }
    FUZZ_ASSERT(count == uniq, "task lists %zu artifacts, the objects map holds %zu names (%zu members)", count, uniq,
                m);
    for (i = 0; i < count; i++) {
        const char *name = NULL, *key = NULL, *enc = NULL, *type = NULL;
        int64_t sz = -2;
        size_t at = (size_t)-1;
        FUZZ_ASSERT(cas_task_artifact(t, i, &name, &key, &sz, &enc, &type) == CAS_OK, "artifact %zu", i);
        FUZZ_ASSERT(name && key && enc && type, "artifact %zu: NULL string", i);
        FUZZ_ASSERT(sz >= -1, "artifact %zu size %lld", i, (long long)sz);
        /* strlen runs through ASan: each string is terminated inside its allocation */
        FUZZ_ASSERT(strlen(type) <= size && strlen(enc) <= size + 16, "artifact %zu: string longer than the file", i);
        FUZZ_ASSERT(!strcmp(name, names[i]), "artifact %zu is '%s', Python's dict has '%s' there", i, name, names[i]);
        FUZZ_ASSERT(!strcmp(key, keys[i]), "artifact %zu ('%s') has key '%s', Python's dict has '%s'", i, name, key,
                    keys[i]);
        FUZZ_ASSERT(cas_task_find(t, name, &at) == CAS_OK && at == i, "find(%s): %zu for artifact %zu", name, at, i);
    }
    for (i = 0; i < uniq; i++) free(names[i]), free(keys[i]);
    free(names), free(keys);
    FUZZ_ASSERT(cas_task_artifact(t, count, NULL, NULL, NULL, NULL, NULL) == CAS_E_ARG, "artifact past the end");
    FUZZ_ASSERT(cas_task_find(t, "\x01 no such name", &idx) == CAS_E_NOTFOUND, "find of a missing name");
    cas__json_free(&j);
    cas_task_close(t);
}

/* The attempt rule over the same bytes read as a folder listing ("a\0b\0..."):
 * the answer is what the rule says for that set of names. */
static void check_attempt(const uint8_t *data, size_t size) {
    char *names = (char *)malloc(size + 1);
    size_t count = 0, i;
    int got, want = -1, present[6] = {0}, done[6] = {0};
    const char *p;
    memcpy(names, data, size);
    names[size] = 0;
    for (i = 0; i <= size; i++) count += names[i] == 0;
    for (i = 0, p = names; i < count; i++, p += strlen(p) + 1) {
        int n;
        for (n = 0; n < 6; n++) {
            char a[32], d[32];
            snprintf(a, sizeof a, "%d.attempt.json", n);
            snprintf(d, sizeof d, "%d.DONE.lock", n);
            present[n] |= !strcmp(p, a);
            done[n] |= !strcmp(p, d);
        }
    }
    for (i = 0; i < 6; i++) {
        if (present[i]) want = (int)i;
        else if (want >= 0) break;
    }
    if (want >= 0 && !done[want]) want = -1;
    got = cas_task_pick_attempt(names, count);
    FUZZ_ASSERT(got == want, "pick_attempt %d, the rule says %d", got, want);
    free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_parser(data, size);
    check_task(data, size);
    check_attempt(data, size);
    return 0;
}
