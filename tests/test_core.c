/* Core: keys, codecs, blob formats, sidecar rules, streaming, limits, messages.
 * Included by run_tests.c after the implementation. */

/* ---- fixtures ---- */

typedef struct fx_blob {
    char path[1024]; /* absolute or cwd-relative file path */
    char name[256];  /* store-relative name, for messages */
    char key[CAS_KEY_BUF];
    long long size;
} fx_blob;

/* Loads every blob of every fixture store: the three manifests and the edge cases. */
static fx_blob *fx_load(size_t *count) {
    static const char *sets[] = {"v1", "v2", "mixed"};
    fx_blob *list = NULL;
    size_t n = 0, cap = 0, s;
    for (s = 0; s < 4; s++) {
        char mpath[1024];
        unsigned char *text;
        size_t len, i, tok;
        cas__json j;
        int edge = s == 3;
        snprintf(mpath, sizeof mpath, "%s/%s", t_fixtures(), edge ? "v1/edge_cases.json" : "");
        if (!edge) snprintf(mpath, sizeof mpath, "%s/%s/manifest.json", t_fixtures(), sets[s]);
        text = t_read_file(mpath, &len);
        if (!text) {
            printf("    cannot read %s\n", mpath);
            free(list);
            return NULL;
        }
        if (cas__json_parse(&j, (const char *)text, len, NULL) < 0) {
            printf("    cannot parse %s: %s\n", mpath, j.err);
            cas__json_free(&j);
            free(text);
            free(list);
            return NULL;
        }
        tok = 1;
        for (i = 0; i < j.t[0].count; i++) {
            size_t obj = edge ? tok + 1 : tok, kt, pt, st;
            fx_blob *b;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                list = (fx_blob *)realloc(list, cap * sizeof *list);
            }
            b = &list[n++];
            kt = cas__json_get(&j, obj, "key");
            pt = cas__json_get(&j, obj, edge ? "path" : "blob");
            st = cas__json_get(&j, obj, "size");
            cas__json_str(&j, kt, b->key, sizeof b->key);
            cas__json_str(&j, pt, b->name, sizeof b->name);
            b->size = strtoll(j.s + j.t[st].start, NULL, 10);
            snprintf(b->path, sizeof b->path, "%s/%s/.metaflow/%s", t_fixtures(), edge ? "v1" : sets[s], b->name);
            tok = j.t[obj].next;
        }
        cas__json_free(&j);
        free(text);
    }
    *count = n;
    return list;
}

/* Reads a blob and its sidecar (meta NULL when absent). */
static unsigned char *fx_read(const fx_blob *b, size_t *len, char **meta, size_t *meta_len) {
    char mp[1100];
    snprintf(mp, sizeof mp, "%s_meta", b->path);
    *meta = (char *)t_read_file(mp, meta_len);
    return t_read_file(b->path, len);
}

/* ---- keys ---- */

static void test_golden_keys(void) {
    char k[CAS_KEY_BUF];
    cas_hasher *h;
    CHECK(cas_hash(CAS_HASH_SHA1, "abc", 3, k) == CAS_OK);
    CHECK_STR(k, "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(cas_hash(CAS_HASH_SHA1, "", 0, k) == CAS_OK);
    CHECK_STR(k, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    /* the classic two-block vector */
    CHECK(cas_hash(CAS_HASH_SHA1, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, k) == CAS_OK);
    CHECK_STR(k, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
#ifndef CAS_NO_XXH3
    CHECK(cas_hash(CAS_HASH_XXH3, "abc", 3, k) == CAS_OK);
    CHECK_STR(k, "06b05ab6733a618578af5f94892f3950"); /* xxhsum -H2 */
    CHECK(cas_hash(CAS_HASH_XXH3, "", 0, k) == CAS_OK);
    CHECK_STR(k, "99aa06d3014798d86001c324468d497f");
#endif
    /* streaming in odd pieces equals one-shot, for both hashes, across block edges */
    {
        static unsigned char buf[300000];
        int algo;
        t_fill(buf, sizeof buf, 0);
        for (algo = CAS_HASH_SHA1; algo <= CAS_HASH_XXH3; algo++) {
            char k1[CAS_KEY_BUF], k2[CAS_KEY_BUF];
            size_t off = 0, step = 1;
            if (!cas_hash_available(algo)) continue;
            CHECK(cas_hasher_create(&h, algo, NULL) == CAS_OK);
            while (off < sizeof buf) {
                size_t k = step < sizeof buf - off ? step : sizeof buf - off;
                CHECK(cas_hasher_update(h, buf + off, k) == CAS_OK);
                off += k, step = step * 3 + 1;
                if (step > 70000) step = 63;
            }
            CHECK(cas_hasher_final(h, k1) == CAS_OK);
            CHECK(cas_hasher_final(h, k2) == CAS_E_STATE); /* finished until reset */
            CHECK(cas_hash(algo, buf, sizeof buf, k2) == CAS_OK);
            CHECK_STR(k1, k2);
            CHECK(cas_hasher_reset(h) == CAS_OK);
            CHECK(cas_hasher_update(h, "abc", 3) == CAS_OK);
            CHECK(cas_hasher_final(h, k1) == CAS_OK);
            CHECK(cas_hash(algo, "abc", 3, k2) == CAS_OK);
            CHECK_STR(k1, k2);
            cas_hasher_free(h);
        }
    }
}

static void test_key_check(void) {
    int algo;
    CHECK(cas_key_check("a9993e364706816aba3e25717850c26c9cd0d89d", 40, &algo) == CAS_OK);
    CHECK(algo == CAS_HASH_SHA1);
    CHECK(cas_key_check("06b05ab6733a618578af5f94892f3950", 32, &algo) == CAS_OK);
    CHECK(algo == CAS_HASH_XXH3);
    CHECK(cas_key_check("A9993e364706816aba3e25717850c26c9cd0d89d", 40, NULL) == CAS_E_KEY);
    CHECK(cas_key_check("a9993e364706816aba3e25717850c26c9cd0d89", 39, NULL) == CAS_E_KEY);
    CHECK(cas_key_check("../../../../../../../../../../etc/passwd", 40, NULL) == CAS_E_KEY);
    CHECK(cas_key_check("a9993e364706816aba3e25717850c26c9cd0d8\0\0", 40, NULL) == CAS_E_KEY);
    CHECK(cas_key_check(NULL, 40, NULL) == CAS_E_KEY);
}

/* ---- codecs ---- */

static void hexify(const unsigned char *p, size_t n, char *out) {
    size_t i;
    for (i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

static void test_golden_blobs(void) {
    unsigned char out[256];
    char hex[600];
    size_t n;
    cas_codec *c;
    /* gzip exactly as CPython's GzipFile(compresslevel=3) with mtime 0 */
    CHECK(cas_encoder_create(&c, CAS_CODEC_GZIP, NULL) == CAS_OK);
    CHECK(cas_codec_set_param(c, CAS_PARAM_GZIP_BACKEND, CAS_BACKEND_ZLIB) == CAS_OK);
    CHECK(cas_codec_encode_all(c, "abc", 3, out, sizeof out, &n) == CAS_DONE);
    hexify(out, n, hex);
    CHECK_STR(hex, "1f8b08000000000000ff4b4c4a0600c241243503000000");
    CHECK(cas_codec_encode_all(c, "", 0, out, sizeof out, &n) == CAS_DONE);
    hexify(out, n, hex);
    CHECK_STR(hex, "1f8b08000000000000ff03000000000000000000");
    cas_codec_free(c);
    /* LZ4 frame as lz4.frame.compress */
    CHECK(cas_encode(CAS_CODEC_LZ4, 0, "abc", 3, out, sizeof out, &n) == CAS_DONE);
    hexify(out, n, hex);
    CHECK_STR(hex, "04224d1868400300000000000000870300008061626300000000");
    /* and cas_pack: key plus blob in one call, both formats */
    {
        cas_writer *w;
        char key[CAS_KEY_BUF];
        CHECK(cas_writer_create(&w, CAS_FORMAT_V1, NULL) == CAS_OK);
        CHECK(cas_writer_set_param(w, CAS_PARAM_GZIP_BACKEND, CAS_BACKEND_ZLIB) == CAS_OK);
        CHECK(cas_pack(w, "abc", 3, out, sizeof out, &n, key) == CAS_DONE);
        hexify(out, n, hex);
        CHECK_STR(key, "a9993e364706816aba3e25717850c26c9cd0d89d");
        CHECK_STR(hex, "1f8b08000000000000ff4b4c4a0600c241243503000000");
        CHECK(cas_writer_reset(w, CAS_FORMAT_V2) == CAS_OK);
        CHECK(cas_pack(w, "abc", 3, out, sizeof out, &n, key) == CAS_DONE);
        hexify(out, n, hex);
        CHECK_STR(hex, "04224d1868400300000000000000870300008061626300000000");
        CHECK(cas_pack(w, "abc", 3, out, 5, &n, key) == CAS_NEED_OUTPUT);
        cas_writer_free(w);
    }
}

static void test_meta_json(void) {
    char buf[64];
    size_t n;
    int fmt;
    int64_t v;
    CHECK(cas_meta_json(CAS_FORMAT_V1, buf, sizeof buf, &n) == CAS_OK);
    CHECK_STR(buf, "{\"cas_raw\": false, \"cas_version\": 1}");
    CHECK(n == 36);
    CHECK(cas_meta_json(CAS_FORMAT_RAW, buf, sizeof buf, &n) == CAS_OK);
    CHECK_STR(buf, "{\"cas_raw\": true, \"cas_version\": 1}");
    CHECK(n == 35);
    CHECK(cas_meta_json(CAS_FORMAT_V2, buf, sizeof buf, &n) == CAS_OK);
    CHECK_STR(buf, "{\"cas_raw\": false, \"cas_version\": 2}");
    CHECK(cas_meta_json(CAS_FORMAT_V2, buf, 36, &n) == CAS_NEED_OUTPUT);
#define P(js, rc, f)                                                \
    do {                                                            \
        t_setnote("sidecar %s", js);                                \
        CHECK_EQ_INT(cas_meta_parse(js, strlen(js), &fmt, &v), rc); \
        if (rc == CAS_OK) CHECK_EQ_INT(fmt, f);                     \
    } while (0)
    P("{\"cas_raw\": false, \"cas_version\": 1}", CAS_OK, CAS_FORMAT_V1);
    P("{\"cas_raw\": false, \"cas_version\": 2}", CAS_OK, CAS_FORMAT_V2);
    P("{\"cas_raw\": true, \"cas_version\": 1}", CAS_OK, CAS_FORMAT_RAW);
    P("{\"cas_raw\": true}", CAS_OK, CAS_FORMAT_RAW); /* raw is checked first */
    P("{\"cas_version\": 1, \"cas_raw\": 0}", CAS_OK, CAS_FORMAT_V1);
    P(" {\"cas_version\":2} ", CAS_OK, CAS_FORMAT_V2);
    P("{\"cas_version\": 1.0}", CAS_OK, CAS_FORMAT_V1); /* "%d" % 1.0 is 1 */
    P("{}", CAS_E_VERSION_MISSING, 0);
    P("{\"cas_raw\": false}", CAS_E_VERSION_MISSING, 0);
    P("{\"cas_version\": -1}", CAS_E_VERSION_MISSING, 0);
    P("{\"cas_version\": \"1\"}", CAS_E_VERSION_MISSING, 0);
    P("{\"cas_version\": null}", CAS_E_VERSION_MISSING, 0);
    P("{\"cas_version\": 999}", CAS_E_VERSION_UNKNOWN, 0);
    P("{\"cas_version\": 0}", CAS_E_VERSION_UNKNOWN, 0);
    P("{\"cas_version\": 2.5}", CAS_E_VERSION_MISSING, 0);
    P("{\"cas_version\": 123456789012345678901234567890}", CAS_E_VERSION_UNKNOWN, 0);
    P("[]", CAS_E_META, 0);
    P("", CAS_E_META, 0);
    P("{\"cas_version\": 1", CAS_E_META, 0);
    P("{\"cas_version\": 1}}", CAS_E_META, 0);
    P("{'cas_version': 1}", CAS_E_META, 0);
    P("{\"cas_version\": 1, \"cas_version\": 2}", CAS_OK, CAS_FORMAT_V2); /* last wins, as in Python */
#undef P
    CHECK(cas_meta_parse("{\"cas_version\": 999}", 20, &fmt, &v) == CAS_E_VERSION_UNKNOWN);
    CHECK(v == 999);
    /* beyond int64 both ways: the sign is kept (found by fuzzing) */
    CHECK(cas_meta_parse("{\"cas_version\": -99999999999999999999}", 38, &fmt, &v) == CAS_E_VERSION_UNKNOWN);
    CHECK(v == INT64_MIN);
    CHECK(cas_meta_parse("{\"cas_version\": 99999999999999999999}", 37, &fmt, &v) == CAS_E_VERSION_UNKNOWN);
    CHECK(v == INT64_MAX);
    {
        /* deep nesting is refused without recursion */
        static char deep[200001];
        memset(deep, '[', 100000), memset(deep + 100000, ']', 100000);
        CHECK(cas_meta_parse(deep, 200000, &fmt, &v) == CAS_E_META);
    }
    t_note[0] = 0;
}

/* Encodes through the streaming API in random piece sizes. */
static int stream_encode(int format, const unsigned char *in, size_t n, unsigned char **blob, size_t *blen,
                         char key[CAS_KEY_BUF], int backend) {
    cas_writer *w;
    size_t cap = cas_pack_bound(format, n) + 1024, off = 0, o = 0;
    unsigned char *out = (unsigned char *)malloc(cap);
    int rc;
    if (cas_writer_create(&w, format, NULL) != CAS_OK) return -1;
    if (backend && format == CAS_FORMAT_V1) cas_writer_set_param(w, CAS_PARAM_GZIP_BACKEND, backend);
    while (off < n) {
        size_t piece = 1 + (size_t)(t_rand() % 100000), room = 1 + (size_t)(t_rand() % 70000), u, m;
        if (piece > n - off) piece = n - off;
        if (room > cap - o) room = cap - o;
        rc = cas_writer_update(w, in + off, piece, &u, out + o, room, &m);
        if (rc < 0) return rc;
        off += u, o += m;
    }
    do {
        size_t room = 1 + (size_t)(t_rand() % 5000), m;
        if (room > cap - o) room = cap - o;
        rc = cas_writer_finish(w, out + o, room, &m);
        if (rc < 0) return rc;
        o += m;
    } while (rc != CAS_DONE);
    cas_writer_key(w, key);
    if (cas_writer_total_in(w) != n || cas_writer_size_in(w) != n) return -2; /* and 0.1.0's name */
    cas_writer_free(w);
    *blob = out, *blen = o;
    return 0;
}

/* Decodes through the streaming reader with fixed input pieces and odd output room. */
static int stream_decode(const unsigned char *blob, size_t n, const char *meta, const char *name, const char *key,
                         size_t piece, size_t room, unsigned char **out, size_t *out_len, char *msg, size_t msgcap,
                         uint64_t limit) {
    cas_reader *r;
    size_t off = 0, o = 0, cap = 1024;
    unsigned char *dst = (unsigned char *)malloc(cap);
    int rc, guard = 0;
    cas_reader_create(&r, NULL);
    if (limit) cas_reader_set_param(r, CAS_PARAM_LIMIT, (int64_t)limit);
    rc = cas_reader_begin(r, meta, meta ? strlen(meta) : 0, name, key);
    for (;;) {
        size_t u = 0, m = 0, k = piece < n - off ? piece : n - off;
        if (rc < 0) break;
        if (cap - o < room) {
            cap = cap * 2 + room;
            dst = (unsigned char *)realloc(dst, cap);
        }
        rc = cas_reader_update(r, blob + off, k, &u, dst + o, room, &m, off + k == n);
        off += u, o += m;
        if (rc == CAS_DONE || rc < 0) break;
        if (++guard > 100000000) {
            rc = -999;
            break;
        }
    }
    snprintf(msg, msgcap, "%s", cas_reader_message(r));
    cas_reader_free(r);
    *out = dst, *out_len = o;
    return rc;
}

static void test_fixtures_oneshot(void) {
    size_t n, i, ok = 0;
    fx_blob *list = fx_load(&n);
    cas_reader *r;
    CHECK(list != NULL);
    CHECK(n >= 500); /* 134 + 134 + 268 artifacts and the edge cases */
    CHECK(cas_reader_create(&r, NULL) == CAS_OK);
    for (i = 0; i < n; i++) {
        size_t bl, ml = 0, len = 0;
        char *meta, key[CAS_KEY_BUF];
        unsigned char *blob = fx_read(&list[i], &bl, &meta, &ml);
        void *out = NULL;
        t_setnote("%s", list[i].path);
        CHECK(blob != NULL);
        CHECK_EQ_INT(cas_reader_begin(r, meta, ml, list[i].name, list[i].key), CAS_OK);
        if (cas_reader_unpack(r, blob, bl, &out, &len) != CAS_DONE) CHECK_STR(cas_reader_message(r), "");
        CHECK_EQ_INT(len, list[i].size);
        CHECK(cas_hash(CAS_HASH_SHA1, out, len, key) == CAS_OK);
        CHECK_STR(key, list[i].key);
        /* unpack_into with an exact buffer, and one byte short */
        if (len) {
            size_t l2;
            void *dst = malloc(len);
            CHECK_EQ_INT(cas_reader_begin(r, meta, ml, list[i].name, list[i].key), CAS_OK);
            CHECK_EQ_INT(cas_reader_unpack_into(r, blob, bl, dst, len - 1, &l2), CAS_NEED_OUTPUT);
            CHECK_EQ_INT(cas_reader_unpack_into(r, blob, bl, dst, len, &l2), CAS_DONE);
            CHECK(l2 == len && !memcmp(dst, out, len));
            free(dst);
        }
        cas_reader_free_buffer(r, out);
        free(blob), free(meta);
        ok++;
    }
    cas_reader_free(r);
    free(list);
    CHECK(ok == n);
    t_note[0] = 0;
}

static void test_fixtures_streaming(void) {
    size_t n, i;
    static const size_t pieces[] = {1, 7, 65536};
    fx_blob *list = fx_load(&n);
    CHECK(list != NULL);
    for (i = 0; i < n; i++) {
        size_t bl, ml = 0, p;
        char *meta;
        unsigned char *blob = fx_read(&list[i], &bl, &meta, &ml);
        CHECK(blob != NULL);
        for (p = 0; p < 3; p++) {
            unsigned char *out;
            if (t_quick() && p == 0 && bl > 4096) continue; /* 1-byte pieces of big blobs: minutes under valgrind */
            size_t len;
            char msg[600], key[CAS_KEY_BUF];
            int rc;
            t_setnote("%s in %lu-byte pieces", list[i].path, (unsigned long)pieces[p]);
            /* output room cycles too: 1 byte is the hardest case for every decoder */
            rc = stream_decode(blob, bl, meta, list[i].name, list[i].key, pieces[p],
                               p == 0   ? 4093
                               : p == 1 ? 1
                                        : 65536,
                               &out, &len, msg, sizeof msg, 0);
            if (rc != CAS_DONE) CHECK_STR(msg, "");
            CHECK_EQ_INT(len, list[i].size);
            cas_hash(CAS_HASH_SHA1, out, len, key);
            CHECK_STR(key, list[i].key);
            free(out);
        }
        free(blob), free(meta);
    }
    free(list);
    t_note[0] = 0;
}

static void test_roundtrip_random(void) {
    static const size_t sizes[] = {0, 1, 2, 3, 100, 4095, 65535, 65536, 65537, 200000, 1 << 20, (3 << 20) + 7};
    static const int formats[] = {CAS_FORMAT_V1, CAS_FORMAT_V2, CAS_FORMAT_RAW};
    size_t si;
    int fi, kind;
    for (si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (fi = 0; fi < 3; fi++)
            for (kind = 0; kind < 3; kind++) {
                size_t n = sizes[si], blen, blen2, len;
                unsigned char *in = (unsigned char *)malloc(n + 1), *blob, *blob2, *out;
                char k1[CAS_KEY_BUF], k2[CAS_KEY_BUF], meta[CAS_META_MAX], msg[600];
                int backend;
                t_setnote("format %s, %lu bytes, kind %d", cas_format_name(formats[fi]), (unsigned long)n, kind);
                t_fill(in, n, kind);
                cas_meta_json(formats[fi], meta, sizeof meta, NULL);
                for (backend = CAS_BACKEND_AUTO; backend <= CAS_BACKEND_ZLIB; backend++) {
                    CHECK_EQ_INT(stream_encode(formats[fi], in, n, &blob, &blen, k1, backend), 0);
                    /* one-shot pack gives the same key, and both blobs decode to the input */
                    blob2 = (unsigned char *)malloc(cas_pack_bound(formats[fi], n));
                    {
                        cas_writer *w;
                        cas_writer_create(&w, formats[fi], NULL);
                        if (backend && formats[fi] == CAS_FORMAT_V1)
                            cas_writer_set_param(w, CAS_PARAM_GZIP_BACKEND, backend);
                        CHECK_EQ_INT(cas_pack(w, in, n, blob2, cas_pack_bound(formats[fi], n), &blen2, k2), CAS_DONE);
                        cas_writer_free(w);
                    }
                    CHECK_STR(k1, k2);
                    CHECK_EQ_INT(stream_decode(blob, blen, meta, "rt", k1, 1 + (size_t)(t_rand() % 9000), 777, &out,
                                               &len, msg, sizeof msg, 0),
                                 CAS_DONE);
                    CHECK(len == n && !memcmp(out, in, n));
                    free(out);
                    CHECK_EQ_INT(
                        stream_decode(blob2, blen2, meta, "rt", k2, 65536, 65536, &out, &len, msg, sizeof msg, 0),
                        CAS_DONE);
                    CHECK(len == n && !memcmp(out, in, n));
                    free(out), free(blob), free(blob2);
                }
                free(in);
            }
    t_note[0] = 0;
}

/* ---- messages, word for word ---- */

#define NAME "MyFlow/data/a9/a9993e364706816aba3e25717850c26c9cd0d89d"
#define V1META "{\"cas_raw\": false, \"cas_version\": 1}"
#define V2META "{\"cas_raw\": false, \"cas_version\": 2}"

/* Runs a blob through the one-shot and the streaming reader; both must fail with msg. */
static int expect_error(const unsigned char *blob, size_t n, const char *meta, int code, const char *msg) {
    cas_reader *r;
    void *out = NULL;
    size_t len, piece;
    int rc;
    char smsg[600];
    unsigned char *sout;
    cas_reader_create(&r, NULL);
    rc = cas_reader_begin(r, meta, meta ? strlen(meta) : 0, NAME, NULL);
    if (rc == CAS_OK) rc = cas_reader_unpack(r, blob, n, &out, &len);
    if (rc != code || strcmp(cas_reader_message(r), msg)) {
        printf("    one-shot: got %d '%s'\n    expected %d '%s'\n", rc, cas_reader_message(r), code, msg);
        cas_reader_free(r);
        return 0;
    }
    cas_reader_free_buffer(r, out);
    cas_reader_free(r);
    for (piece = 1; piece <= 65536; piece *= 16) {
        rc = stream_decode(blob, n, meta, NAME, NULL, piece, 3, &sout, &len, smsg, sizeof smsg, 0);
        free(sout);
        if (rc != code || strcmp(smsg, msg)) {
            printf("    streaming (%lu): got %d '%s'\n    expected %d '%s'\n", (unsigned long)piece, rc, smsg, code,
                   msg);
            return 0;
        }
    }
    return 1;
}

static void test_error_messages(void) {
    unsigned char gz[64], lz[64], buf[128];
    size_t gn, ln;
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "abc", 3, gz, sizeof gz, &gn) == CAS_DONE);
    CHECK(cas_encode(CAS_CODEC_LZ4, 0, "abc", 3, lz, sizeof lz, &ln) == CAS_DONE);
    CHECK(expect_error(gz, gn, "{}", CAS_E_VERSION_MISSING, "Could not extract encoding version for '" NAME "'"));
    CHECK(expect_error(gz, gn, "{\"cas_raw\": false}", CAS_E_VERSION_MISSING,
                       "Could not extract encoding version for '" NAME "'"));
    CHECK(expect_error(gz, gn, "{\"cas_raw\": false, \"cas_version\": 999}", CAS_E_VERSION_UNKNOWN,
                       "Unknown encoding version 999 for '" NAME
                       "' -- the artifact is either corrupt or you need to update Metaflow to the latest version"));
    CHECK(expect_error(gz, gn, "{\"cas_version\": 98765432109876543210}", CAS_E_VERSION_UNKNOWN,
                       "Unknown encoding version 98765432109876543210 for '" NAME
                       "' -- the artifact is either corrupt or you need to update Metaflow to the latest version"));
    CHECK(expect_error(gz, gn - 3, V1META, CAS_E_TRUNCATED,
                       "Could not unpack artifact '" NAME
                       "': Compressed file ended before the end-of-stream marker was reached"));
    CHECK(expect_error(gz, 5, V1META, CAS_E_TRUNCATED,
                       "Could not unpack artifact '" NAME
                       "': Compressed file ended before the end-of-stream marker was reached"));
    CHECK(expect_error(lz, ln - 2, V2META, CAS_E_TRUNCATED,
                       "Could not unpack artifact '" NAME
                       "': LZ4 frame ended before the end-of-stream marker was reached"));
    CHECK(expect_error(lz, 3, V2META, CAS_E_TRUNCATED,
                       "Could not unpack artifact '" NAME
                       "': LZ4 frame ended before the end-of-stream marker was reached"));
    CHECK(expect_error(lz, 0, V2META, CAS_E_TRUNCATED,
                       "Could not unpack artifact '" NAME
                       "': LZ4 frame ended before the end-of-stream marker was reached"));
    memcpy(buf, gz, gn), memcpy(buf + gn, "xy", 2);
    CHECK(expect_error(buf, gn + 2, V1META, CAS_E_TRAILING,
                       "Could not unpack artifact '" NAME "': Not a gzipped file (b'xy')"));
    {
        cas_reader *r;
        void *o;
        size_t l;
        cas_reader_create(&r, NULL);
        CHECK(cas_reader_begin(r, V1META, 36, NAME, NULL) == CAS_OK);
        CHECK(cas_reader_unpack(r, buf, gn + 2, &o, &l) == CAS_E_TRAILING);
        CHECK_STR(cas_reader_reason(r), "Not a gzipped file (b'xy')");
        CHECK(cas_reader_begin(r, "{}", 2, NAME, NULL) == CAS_E_VERSION_MISSING);
        CHECK_STR(cas_reader_reason(r), "Could not extract encoding version for '" NAME "'");
        cas_reader_free(r);
        CHECK(cas_version_number() == CAS_VERSION_MAJOR * 10000 + CAS_VERSION_MINOR * 100 + CAS_VERSION_PATCH);
    }
    memcpy(buf + gn, "\0\0\x1f", 3); /* NULs then a lone byte, as Python reads it */
    CHECK(expect_error(buf, gn + 3, V1META, CAS_E_TRAILING,
                       "Could not unpack artifact '" NAME "': Not a gzipped file (b'\\x1f')"));
    CHECK(expect_error(lz, ln, V1META, CAS_E_MISMATCH,
                       "Could not unpack artifact '" NAME
                       "': metadata says cas_version 1 (gzip) but the bytes are an LZ4 frame"));
    CHECK(expect_error(gz, gn, V2META, CAS_E_MISMATCH,
                       "Could not unpack artifact '" NAME
                       "': metadata says cas_version 2 (LZ4 frame) but the bytes are gzip (b'\\x1f\\x8b\\x08\\x00')"));
    CHECK(expect_error((const unsigned char *)"\x28\xb5\x2f\xfd\x00", 5, V1META, CAS_E_MISMATCH,
                       "Could not unpack artifact '" NAME
                       "': metadata says cas_version 1 (gzip) but the bytes are a zstd frame"));
    CHECK(expect_error((const unsigned char *)"raw bytes", 9, NULL, CAS_E_MISMATCH,
                       "Could not unpack artifact '" NAME
                       "': Not a gzipped file (b'ra'); no metadata, so legacy gzip was assumed, but the bytes are "
                       "neither gzip, LZ4 nor zstd (a raw blob whose _meta sidecar was lost?)"));
    CHECK(expect_error(lz, ln, NULL, CAS_E_MISMATCH,
                       "Could not unpack artifact '" NAME
                       "': no metadata, so legacy gzip was assumed, but the bytes are an LZ4 frame (a blob whose _meta "
                       "sidecar was lost?)"));
    CHECK(expect_error((const unsigned char *)"raw bytes", 9, V1META, CAS_E_CORRUPT,
                       "Could not unpack artifact '" NAME "': Not a gzipped file (b'ra')"));
    /* a wrong key: both hashes named */
    {
        cas_reader *r;
        void *out;
        size_t len;
        cas_reader_create(&r, NULL);
        CHECK(cas_reader_begin(r, V1META, 36, NAME, "0000000000000000000000000000000000000000") == CAS_OK);
        CHECK_EQ_INT(cas_reader_unpack(r, gz, gn, &out, &len), CAS_E_HASH);
        CHECK_STR(cas_reader_message(r), "Could not unpack artifact '" NAME
                                         "': content hashes to a9993e364706816aba3e25717850c26c9cd0d89d, not to its "
                                         "key 0000000000000000000000000000000000000000");
        CHECK(cas_reader_begin(r, V1META, 36, NAME, "a9993e364706816aba3e25717850c26c9cd0d89d") == CAS_OK);
        CHECK_EQ_INT(cas_reader_unpack(r, gz, gn, &out, &len), CAS_DONE);
        cas_reader_free_buffer(r, out);
        cas_reader_free(r);
    }
    /* a flipped bit in the stored CRC, then in the stored length */
    memcpy(buf, gz, gn);
    buf[gn - 6] ^= 1;
    CHECK(expect_error(buf, gn, V1META, CAS_E_CORRUPT,
                       "Could not unpack artifact '" NAME "': CRC check failed 0x352541c2 != 0x352441c2"));
    memcpy(buf, gz, gn);
    buf[gn - 4] ^= 1;
    CHECK(expect_error(buf, gn, V1META, CAS_E_CORRUPT,
                       "Could not unpack artifact '" NAME "': Incorrect length of data produced"));
    memcpy(buf, gz, gn);
    buf[2] = 7;
    CHECK(expect_error(buf, gn, V1META, CAS_E_CORRUPT,
                       "Could not unpack artifact '" NAME "': Unknown compression method"));
    /* strerror covers every code and never returns NULL */
    {
        int c;
        for (c = -40; c < 10; c++) CHECK(cas_strerror(c) != NULL && cas_status_name(c) != NULL);
        CHECK_STR(cas_strerror(CAS_E_TRUNCATED), "compressed data ended early");
        CHECK_STR(cas_status_name(CAS_E_TRUNCATED), "CAS_E_TRUNCATED");
        CHECK_STR(cas_strerror(12345), "unknown status");
    }
}

/* Python accepts members back to back, NUL padding, every optional header field. */
static void test_gzip_python_quirks(void) {
    unsigned char a[64], b[64], blob[512];
    size_t an, bn, n = 0;
    unsigned char out[64];
    size_t len;
    static const unsigned char hdr_all[] = {0x1f, 0x8b, 8,   4 | 8 | 16 | 2,
                                            0,    0,    0,   0,
                                            0,    3,    5,   0,
                                            'x',  't',  'r', 'a',
                                            '!', /* FEXTRA, 5 bytes */
                                            'n',  'a',  'm', 'e',
                                            0,                  /* FNAME */
                                            'c',  'o',  'm', 0, /* FCOMMENT */
                                            0xab, 0xcd};        /* FHCRC, unchecked */
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "abc", 3, a, sizeof a, &an) == CAS_DONE);
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "defg", 4, b, sizeof b, &bn) == CAS_DONE);
    memcpy(blob + n, a, an), n += an;
    memset(blob + n, 0, 7), n += 7;
    memcpy(blob + n, hdr_all, sizeof hdr_all), n += sizeof hdr_all;
    memcpy(blob + n, b + 10, bn - 10), n += bn - 10; /* b's body and trailer under the rich header */
    memset(blob + n, 0, 3), n += 3;
    CHECK_EQ_INT(cas_decode(CAS_CODEC_GZIP, blob, n, out, sizeof out, &len), CAS_DONE);
    CHECK(len == 7 && !memcmp(out, "abcdefg", 7));
    /* streaming, byte by byte, same answer */
    {
        unsigned char *sout;
        char msg[600];
        CHECK_EQ_INT(stream_decode(blob, n, V1META, NAME, NULL, 1, 1, &sout, &len, msg, sizeof msg, 0), CAS_DONE);
        CHECK(len == 7 && !memcmp(sout, "abcdefg", 7));
        free(sout);
    }
    /* zero bytes decode to nothing, and so do NUL bytes only after a member */
    CHECK_EQ_INT(cas_decode(CAS_CODEC_GZIP, "", 0, out, sizeof out, &len), CAS_DONE);
    CHECK(len == 0);
    /* NULs before any member are not gzip (Python: Not a gzipped file (b'\x00\x00')) */
    CHECK(expect_error((const unsigned char *)"\0\0\0", 3, V1META, CAS_E_CORRUPT,
                       "Could not unpack artifact '" NAME "': Not a gzipped file (b'\\x00\\x00')"));
    /* a header cut inside FNAME */
    CHECK(expect_error(hdr_all, 19, V1META, CAS_E_TRUNCATED,
                       "Could not unpack artifact '" NAME
                       "': Compressed file ended before the end-of-stream marker was reached"));
}

/* Found by fuzzing: the reserved length symbol 286 in a fixed-Huffman block, with
 * the CRC of the bytes a lenient decoder (libdeflate: length 258) would make.
 * zlib and Python refuse it; so must every backend cas.h decodes with. */
static void test_reserved_deflate_symbol(void) {
    static const unsigned char blob[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x4b, 0x4c, 0x4a,
                                         0x4e, 0x19, 0x03, 0x00, 0x60, 0x98, 0x7d, 0xf7, 0x06, 0x01, 0x00, 0x00};
    int be;
    for (be = CAS_BACKEND_AUTO; be <= CAS_BACKEND_ISAL; be++) {
        cas_reader *r;
        void *out;
        size_t len;
        unsigned char *sout;
        char msg[600];
        if (be == CAS_BACKEND_ISAL && !CAS_TEST_HAS_ISAL) continue;
        t_setnote("backend %d", be);
        cas_reader_create(&r, NULL);
        CHECK(cas_reader_set_param(r, CAS_PARAM_GZIP_BACKEND, be) == CAS_OK);
        CHECK(cas_reader_begin(r, V1META, 36, NAME, NULL) == CAS_OK);
        CHECK_EQ_INT(cas_reader_unpack(r, blob, sizeof blob, &out, &len), CAS_E_CORRUPT);
        CHECK(strstr(cas_reader_message(r), "Error -3 while decompressing data: invalid") != NULL);
        cas_reader_free(r);
        CHECK_EQ_INT(stream_decode(blob, sizeof blob, V1META, NAME, NULL, 3, 5, &sout, &len, msg, sizeof msg, 0),
                     CAS_E_CORRUPT);
        free(sout);
    }
    t_note[0] = 0;
}

/* Hostile headers: a 65535-byte FEXTRA and a 1 MiB FCOMMENT are skipped in
 * passing, never buffered; the member after them decodes. */
static void test_gzip_huge_header_fields(void) {
    size_t n = 0, cap = 10 + 2 + 65535 + (1 << 20) + 1 + 64, len, bn;
    unsigned char *blob = (unsigned char *)malloc(cap), out[16], *sout;
    char msg[600];
    cas_reader *r;
    void *o;
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 4 | 16, 0, 0, 0, 0, 0, 3};
    unsigned char body[64];
    memcpy(blob, hdr, 10), n = 10;
    blob[n++] = 0xff, blob[n++] = 0xff; /* XLEN 65535 */
    memset(blob + n, 'x', 65535), n += 65535;
    memset(blob + n, 'c', 1 << 20), n += 1 << 20; /* FCOMMENT, NUL-terminated */
    blob[n++] = 0;
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "ok", 2, body, sizeof body, &bn) == CAS_DONE);
    memcpy(blob + n, body + 10, bn - 10), n += bn - 10;
    CHECK_EQ_INT(cas_decode(CAS_CODEC_GZIP, blob, n, out, sizeof out, &len), CAS_DONE);
    CHECK(len == 2 && !memcmp(out, "ok", 2));
    CHECK_EQ_INT(stream_decode(blob, n, V1META, NAME, NULL, 4096, 7, &sout, &len, msg, sizeof msg, 0), CAS_DONE);
    CHECK(len == 2);
    free(sout);
    /* cut inside the comment: truncated, in Python's words */
    cas_reader_create(&r, NULL);
    CHECK(cas_reader_begin(r, V1META, 36, NAME, NULL) == CAS_OK);
    CHECK_EQ_INT(cas_reader_unpack(r, blob, 10 + 2 + 65535 + 1000, &o, &len), CAS_E_TRUNCATED);
    CHECK_STR(cas_reader_reason(r), "Compressed file ended before the end-of-stream marker was reached");
    cas_reader_free(r);
    free(blob);
}

static void test_lz4_quirks(void) {
    unsigned char big[200000], *blob, out[64];
    size_t bn, len, cap = cas_encode_bound(CAS_CODEC_LZ4, sizeof big);
    cas_codec *c;
    t_fill(big, sizeof big, 2);
    blob = (unsigned char *)malloc(cap + 16);
    CHECK(cas_encode(CAS_CODEC_LZ4, 0, big, sizeof big, blob, cap, &bn) == CAS_DONE);
    /* content size stored as lz4.frame.compress does: FLG bit 3 */
    CHECK(blob[4] & 8);
    /* what follows the first frame is ignored (as PR #3090's reader does), or an error when strict */
    memcpy(blob + bn, "garbage!", 8);
    {
        cas_reader *r;
        void *o;
        CHECK(cas_reader_create(&r, NULL) == CAS_OK);
        CHECK(cas_reader_begin(r, V2META, 36, NAME, NULL) == CAS_OK);
        CHECK_EQ_INT(cas_reader_unpack(r, blob, bn + 8, &o, &len), CAS_DONE);
        CHECK(len == sizeof big && !memcmp(o, big, len));
        cas_reader_free_buffer(r, o);
        CHECK(cas_reader_set_param(r, CAS_PARAM_STRICT, 1) == CAS_OK);
        CHECK(cas_reader_begin(r, V2META, 36, NAME, NULL) == CAS_OK);
        CHECK_EQ_INT(cas_reader_unpack(r, blob, bn + 8, &o, &len), CAS_E_TRAILING);
        CHECK_STR(cas_reader_message(r), "Could not unpack artifact '" NAME "': unexpected bytes after the LZ4 frame");
        cas_reader_free(r);
    }
#ifndef CAS_NO_XXH3 /* forging the header checksum takes xxhash.h's XXH32 */
    /* a content size that lies: bigger, then smaller than the data */
    {
        unsigned char lie[64];
        size_t ln;
        CHECK(cas_encode(CAS_CODEC_LZ4, 0, "abcdefgh", 8, lie, sizeof lie, &ln) == CAS_DONE);
        lie[6] = 9; /* content size 9, data 8; the header checksum must follow suit */
        {
            /* header checksum: second byte of XXH32 of the descriptor (FLG..content size) */
            lie[14] = (unsigned char)(XXH32(lie + 4, 10, 0) >> 8);
        }
        CHECK(expect_error(lie, ln, V2META, CAS_E_CORRUPT,
                           "Could not unpack artifact '" NAME
                           "': LZ4 frame's content size field disagrees with its data"));
        lie[6] = 7;
        lie[14] = (unsigned char)(XXH32(lie + 4, 10, 0) >> 8);
        CHECK(expect_error(lie, ln, V2META, CAS_E_CORRUPT,
                           "Could not unpack artifact '" NAME
                           "': LZ4 frame's content size field disagrees with its data"));
        /* a huge declared size is refused before any allocation */
        lie[11] = 0x40;
        lie[14] = (unsigned char)(XXH32(lie + 4, 10, 0) >> 8);
        {
            cas_reader *r;
            void *o;
            cas_reader_create(&r, NULL);
            CHECK(cas_reader_begin(r, V2META, 36, NAME, NULL) == CAS_OK);
            CHECK_EQ_INT(cas_reader_unpack(r, lie, ln, &o, &len), CAS_E_CORRUPT);
            CHECK(strstr(cas_reader_message(r), "content size field") != NULL);
            { /* a size to allocate is never one these bytes cannot decode to */
                uint64_t hint = 1;
                char small[8];
                CHECK(cas_reader_begin(r, V2META, 36, NAME, NULL) == CAS_OK);
                CHECK_EQ_INT(cas_reader_size_hint(r, lie, ln, &hint), CAS_E_NOTFOUND);
                CHECK(hint == 0);
                CHECK_EQ_INT(cas_reader_decode(r, V2META, 36, NAME, NULL, lie, ln, small, sizeof small, &len),
                             CAS_E_CORRUPT);
            }
            cas_reader_free(r);
        }
    }
#endif
    /* skippable frames are not LZ4 data frames */
    CHECK(expect_error((const unsigned char *)"\x50\x2a\x4d\x18\0\0\0\0", 8, V2META, CAS_E_MISMATCH,
                       "Could not unpack artifact '" NAME
                       "': metadata says cas_version 2 (LZ4 frame) but the bytes are neither gzip, LZ4 nor zstd "
                       "(b'P*M\\x18')"));
    /* the codec alone also checks the magic */
    CHECK(cas_decoder_create(&c, CAS_CODEC_LZ4, NULL) == CAS_OK);
    {
        size_t u, m;
        CHECK_EQ_INT(cas_codec_update(c, "\x50\x2a\x4d\x18\0\0\0\0", 8, &u, out, sizeof out, &m, 1), CAS_E_CORRUPT);
        CHECK_STR(cas_codec_message(c), "not an LZ4 frame (bad magic number)");
    }
    cas_codec_free(c);
    free(blob);
}

static void test_limit(void) {
    size_t n = 1 << 20, bn, len;
    unsigned char *zero = (unsigned char *)calloc(1, n),
                  *blob = (unsigned char *)malloc(cas_pack_bound(CAS_FORMAT_V2, n));
    char key[CAS_KEY_BUF], msg[600];
    int f;
    for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_V2; f++) {
        cas_writer *w;
        cas_reader *r;
        void *out;
        unsigned char *sout;
        char meta[CAS_META_MAX];
        cas_meta_json(f, meta, sizeof meta, NULL);
        cas_writer_create(&w, f, NULL);
        CHECK(cas_pack(w, zero, n, blob, cas_pack_bound(f, n), &bn, key) == CAS_DONE);
        cas_writer_free(w);
        CHECK(bn < n / 100); /* a bomb in miniature */
        cas_reader_create(&r, NULL);
        CHECK(cas_reader_set_param(r, CAS_PARAM_LIMIT, 1000) == CAS_OK);
        CHECK(cas_reader_begin(r, meta, strlen(meta), NAME, NULL) == CAS_OK);
        CHECK_EQ_INT(cas_reader_unpack(r, blob, bn, &out, &len), CAS_E_LIMIT);
        CHECK_STR(cas_reader_message(r),
                  "Could not unpack artifact '" NAME "': decoded size exceeds the limit of 1000 bytes");
        /* the limit at exactly the size passes */
        CHECK(cas_reader_set_param(r, CAS_PARAM_LIMIT, (int64_t)n) == CAS_OK);
        CHECK(cas_reader_begin(r, meta, strlen(meta), NAME, key) == CAS_OK);
        CHECK_EQ_INT(cas_reader_unpack(r, blob, bn, &out, &len), CAS_DONE);
        CHECK(len == n);
        cas_reader_free_buffer(r, out);
        cas_reader_free(r);
        CHECK_EQ_INT(stream_decode(blob, bn, meta, NAME, NULL, 100, 4096, &sout, &len, msg, sizeof msg, 4096),
                     CAS_E_LIMIT);
        CHECK(len <= 4096);
        CHECK_STR(msg, "Could not unpack artifact '" NAME "': decoded size exceeds the limit of 4096 bytes");
        free(sout);
        CHECK_EQ_INT(stream_decode(blob, bn, meta, NAME, key, 100, 4096, &sout, &len, msg, sizeof msg, n), CAS_DONE);
        free(sout);
    }
    free(zero), free(blob);
}

static void test_expect_size(void) {
    unsigned char gz[64];
    size_t gn, len;
    cas_reader *r;
    void *out;
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "abc", 3, gz, sizeof gz, &gn) == CAS_DONE);
    cas_reader_create(&r, NULL);
    CHECK(cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, 4) == CAS_OK);
    CHECK(cas_reader_begin(r, V1META, 36, NAME, NULL) == CAS_OK);
    CHECK_EQ_INT(cas_reader_unpack(r, gz, gn, &out, &len), CAS_E_SIZE);
    CHECK_STR(cas_reader_message(r), "Could not unpack artifact '" NAME "': decoded to 3 bytes where 4 were recorded");
    CHECK(cas_reader_set_param(r, CAS_PARAM_EXPECT_SIZE, 3) == CAS_OK);
    CHECK(cas_reader_begin(r, V1META, 36, NAME, NULL) == CAS_OK);
    CHECK_EQ_INT(cas_reader_unpack(r, gz, gn, &out, &len), CAS_DONE);
    cas_reader_free_buffer(r, out);
    cas_reader_free(r);
}

static void test_reader_decode_one_call(void) {
    unsigned char gz[64], out[16];
    size_t gn, len;
    cas_reader *r;
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "abcdefghij", 10, gz, sizeof gz, &gn) == CAS_DONE);
    cas_reader_create(&r, NULL);
    CHECK_EQ_INT(cas_reader_decode(r, V1META, 36, NAME, NULL, gz, gn, out, 4, &len), CAS_NEED_OUTPUT);
    CHECK_EQ_INT(len, 10); /* the gzip length field, for the retry */
    {
        uint64_t hint = 0;
        CHECK_EQ_INT(cas_reader_size_hint(r, gz, gn, &hint), CAS_OK); /* begun by the decode above */
        CHECK(hint == 10);
    }
    CHECK_EQ_INT(cas_reader_decode(r, V1META, 36, NAME, NULL, gz, gn, out, sizeof out, &len), CAS_DONE);
    CHECK(len == 10 && !memcmp(out, "abcdefghij", 10));
    CHECK_EQ_INT(cas_reader_decode(r, "{}", 2, NAME, NULL, gz, gn, out, sizeof out, &len), CAS_E_VERSION_MISSING);
    { /* a sidecar over 64 KiB is refused before any parse (fuzz_meta found it freeing an unset parse) */
        size_t big = 70000;
        char *meta = (char *)malloc(big);
        memset(meta, ' ', big);
        meta[0] = '{', meta[big - 1] = '}';
        CHECK_EQ_INT(cas_reader_decode(r, meta, big, NAME, NULL, gz, gn, out, sizeof out, &len), CAS_E_META);
        CHECK(strstr(cas_reader_message(r), "metadata is not valid JSON (over 64 KiB)") != NULL);
        free(meta);
    }
    CHECK_EQ_INT(cas_reader_decode(r, V1META, 36, NAME, "0000000000000000000000000000000000000000", gz, gn, out,
                                   sizeof out, &len),
                 CAS_E_HASH);
    cas_reader_free(r);
}

/* A reader is reused blob after blob (cas_unpack_many's workers, the Python
 * binding's per-thread reader): a frame left unfinished (short room, cut, corrupt)
 * must not fail the next one. lz4 1.9.4's context reset kept the unfinished frame's
 * remaining size, so an LZ4 frame stating no content size (cas.h's empty blob)
 * was refused after it. */
static void test_reader_reuse_after_unfinished(void) {
    unsigned char one[64], empty[64], bad[64], out[8];
    size_t on, en, len, k;
    char key[CAS_KEY_BUF];
    cas_writer *w;
    cas_reader *r;
    cas_writer_create(&w, CAS_FORMAT_V2, NULL);
    CHECK(cas_pack(w, "x", 1, one, sizeof one, &on, key) == CAS_DONE);
    CHECK(cas_writer_reset(w, 0) == CAS_OK);
    CHECK(cas_pack(w, "", 0, empty, sizeof empty, &en, key) == CAS_DONE);
    cas_writer_free(w);
    CHECK(!(empty[4] & 0x08)); /* the empty frame states no content size: the case that failed */
    memcpy(bad, one, on);
    bad[on - 2] ^= 0xff; /* the end mark broken */
    cas_reader_create(&r, NULL);
    for (k = 0; k < 4; k++) {
        int rc = k == 0   ? cas_reader_decode(r, V2META, 36, NAME, NULL, one, on, NULL, 0, &len)
                 : k == 1 ? cas_reader_decode(r, V2META, 36, NAME, NULL, one, on - 3, out, sizeof out, &len)
                 : k == 2 ? cas_reader_decode(r, V2META, 36, NAME, NULL, bad, on, out, sizeof out, &len)
                          : cas_reader_decode(r, V2META, 36, NAME, NULL, one, on, out, sizeof out, &len);
        CHECK(k == 3 ? rc == CAS_DONE : rc == CAS_NEED_OUTPUT || rc < 0);
        CHECK_EQ_INT(cas_reader_decode(r, V2META, 36, NAME, NULL, empty, en, NULL, 0, &len), CAS_DONE);
        CHECK_EQ_INT(len, 0);
        CHECK_EQ_INT(cas_reader_decode(r, V2META, 36, NAME, NULL, one, on, out, sizeof out, &len), CAS_DONE);
        CHECK(len == 1 && out[0] == 'x');
    }
    cas_reader_free(r);
}

#ifdef __linux__
static int t_threads(void) { /* this process's threads */
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The thread count once it is want (up to 2 s): a joined thread can stay listed in
 * /proc for a moment after pthread_join returns, so counts are waited for. */
static int t_threads_wait(int want) {
    int k, n = t_threads();
    for (k = 0; k < 2000 && n != want; k++) {
        usleep(1000);
        n = t_threads();
    }
    return n;
}
#endif

/* cas_pack of in into blob: CAS_DONE, and the key cas_hash gives the same bytes. */
static void t_pack_keyed(cas_writer *w, const void *in, size_t n, void *blob, size_t cap) {
    char key[CAS_KEY_BUF], want[CAS_KEY_BUF];
    size_t len;
    CHECK_EQ_INT(cas_pack(w, in, n, blob, cap, &len, key), CAS_DONE);
    CHECK(cas_hash(CAS_HASH_DEFAULT, in, n, want) == CAS_OK);
    CHECK_STR(key, want);
}

/* A writer hashes large inputs (256 KiB on) on its kept helper thread, beside the
 * compression: the same key and blob as hashing and encoding alone, pack
 * after pack, at every size around the thresholds, with THREADS 1 and 2, also when the
 * compression ends first and the hash is taken back from the helper; a forked
 * child packs with its copy of the writer (the parent's helper is not in it) and
 * frees it; the parent's writer still works after. */
static void test_writer_helper(void) {
    static const size_t sizes[] = {100, 32767, 32768, 52000, 262143, 262144, 1 << 20, 40000, 0, 70000};
    size_t cap = cas_pack_bound(CAS_FORMAT_V2, (size_t)1 << 20), i, len, rl;
    unsigned char *in = (unsigned char *)malloc((size_t)1 << 20), *blob = (unsigned char *)malloc(cap),
                  *ref = (unsigned char *)malloc(cap);
    char key[CAS_KEY_BUF], want[CAS_KEY_BUF];
    int f, threads, round;
    cas_codec *c;
    t_fill(in, (size_t)1 << 20, 2);
    for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_V2; f++) {
        for (threads = 1; threads <= 2; threads++) {
            cas_writer *w;
            CHECK(cas_writer_create(&w, f, NULL) == CAS_OK);
            CHECK(cas_writer_set_param(w, CAS_PARAM_THREADS, threads) == CAS_OK);
            CHECK(cas_encoder_create(&c, cas_format_codec(f), NULL) == CAS_OK);
            for (round = 0; round < 2; round++) {
                for (i = 0; i < sizeof sizes / sizeof *sizes; i++) {
                    in[0] = (unsigned char)(round * 31 + i); /* a new key each time */
                    CHECK_EQ_INT(cas_pack(w, in, sizes[i], blob, cap, &len, key), CAS_DONE);
                    CHECK(cas_hash(CAS_HASH_DEFAULT, in, sizes[i], want) == CAS_OK);
                    CHECK_STR(key, want);
                    CHECK(cas_codec_encode_all(c, in, sizes[i], ref, cap, &rl) == CAS_DONE);
                    CHECK(rl == len && !memcmp(ref, blob, len));
                    /* short room: CAS_NEED_OUTPUT, the helper's job ended all the same */
                    if (sizes[i] > 1000) CHECK_EQ_INT(cas_pack(w, in, sizes[i], blob, 64, &len, key), CAS_NEED_OUTPUT);
                }
            }
            { /* input that compresses in a few us: the pack is done before the helper
                 wakes, and takes its hash back (or not: either way the same key) */
                unsigned char *zeros = (unsigned char *)calloc(300000, 1);
                for (round = 0; round < 64 && zeros; round++) {
                    zeros[299999] = (unsigned char)round;
#ifdef __unix__
                    if (round % 8 == 7) usleep(2000); /* the helper's core falls asleep */
#endif
                    t_pack_keyed(w, zeros, 300000, blob, cap);
                }
                free(zeros);
            }
#if defined(__unix__) && !defined(CAS_NO_THREADS)
            {
                int status = -1;
                pid_t pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) { /* the child: its own helper, its own free; 0 when all is well */
                    int bad = cas_pack(w, in, 300000, blob, cap, &len, key) != CAS_DONE;
                    bad |= cas_hash(CAS_HASH_DEFAULT, in, 300000, want) != CAS_OK || strcmp(key, want) != 0;
                    cas_writer_free(w);
                    cas_codec_free(c);
                    free(in), free(blob), free(ref); /* valgrind checks the child's leaks too */
                    _exit(bad);
                }
                for (round = 0; round < 2000 && waitpid(pid, &status, WNOHANG) == 0; round++) usleep(10000);
                if (round == 2000) kill(pid, SIGKILL), waitpid(pid, &status, 0); /* hung: fail, not hang */
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            }
#endif
            t_pack_keyed(w, in, 300000, blob, cap);
            cas_codec_free(c);
#if defined(__linux__) && !defined(CAS_NO_THREADS)
            { /* the runner's thread alone, plus one kept thread with THREADS 2 (none with
                 1), which cas_writer_free joins */
                CHECK_EQ_INT(t_threads_wait(1 + (threads == 2)), 1 + (threads == 2));
                cas_writer_free(w);
                CHECK_EQ_INT(t_threads_wait(1), 1);
            }
#else
            cas_writer_free(w);
#endif
        }
    }
    free(in), free(blob), free(ref);
}

/* cas_pack_many / cas_unpack_many: each item as cas_pack / cas_reader_decode
 * would do it alone, whatever the thread count; failures stay with their item. */
static void test_many(void) {
    enum { N = 7 };
    static const size_t sizes[N] = {0, 1, 233, 4096, 70000, 300000, 1200000};
    const int formats[3] = {CAS_FORMAT_V1, CAS_FORMAT_V2, CAS_FORMAT_RAW};
    unsigned char *in[N], *blob[N], *dec[N];
    const void *cin[N], *cblob[N];
    size_t cap[N], blen[N], dlen[N], dcap[N];
    char keys[N * CAS_KEY_BUF], keys2[N * CAS_KEY_BUF], one[CAS_KEY_BUF];
    const char *kp[N];
    int st[N], fmts[N], threads, fi, i;
    for (i = 0; i < N; i++) {
        in[i] = (unsigned char *)malloc(sizes[i] + 1);
        t_fill(in[i], sizes[i], i % 3);
        cin[i] = in[i];
    }
    for (fi = 0; fi < 3; fi++) {
        int f = formats[fi];
        for (i = 0; i < N; i++) {
            cap[i] = cas_pack_bound(f, sizes[i]);
            blob[i] = (unsigned char *)malloc(cap[i]);
            cblob[i] = blob[i];
            fmts[i] = f;
        }
        for (threads = 1; threads <= 3; threads++) {
            memset(keys, 'x', sizeof keys);
            CHECK_EQ_INT(cas_pack_many(f, 0, N, cin, sizes, (void *const *)blob, cap, blen, keys, st, threads), CAS_OK);
            for (i = 0; i < N; i++) {
                cas_writer *w;
                unsigned char *ref = (unsigned char *)malloc(cap[i]);
                size_t rl;
                CHECK_EQ_INT(st[i], CAS_OK);
                cas_writer_create(&w, f, NULL);
                CHECK(cas_pack(w, in[i], sizes[i], ref, cap[i], &rl, one) == CAS_DONE);
                CHECK_STR(keys + i * CAS_KEY_BUF, one); /* the same key and the same bytes as alone */
                CHECK(rl == blen[i] && !memcmp(ref, blob[i], rl));
                cas_writer_free(w);
                free(ref);
                kp[i] = keys + i * CAS_KEY_BUF;
            }
            /* keys alone; blobs alone */
            CHECK_EQ_INT(cas_pack_many(f, 0, N, cin, sizes, NULL, NULL, NULL, keys2, NULL, threads), CAS_OK);
            CHECK(!memcmp(keys, keys2, sizeof keys));
            if (cas_hash_available(CAS_HASH_XXH3)) { /* the algorithm asked for, not the build's default */
                CHECK_EQ_INT(cas_pack_many(f, CAS_HASH_XXH3, N, cin, sizes, NULL, NULL, NULL, keys2, NULL, threads),
                             CAS_OK);
                for (i = 0; i < N; i++) {
                    CHECK(cas_hash(CAS_HASH_XXH3, in[i], sizes[i], one) == CAS_OK);
                    CHECK_STR(keys2 + i * CAS_KEY_BUF, one);
                }
            }
            CHECK_EQ_INT(cas_pack_many(f, 0, N, cin, sizes, (void *const *)blob, cap, dlen, NULL, st, threads), CAS_OK);
            CHECK(!memcmp(blen, dlen, sizeof blen));
            /* sizes first (out == NULL), then the bytes, checked against the keys */
            CHECK_EQ_INT(cas_unpack_many(N, fmts, cblob, blen, NULL, NULL, dlen, NULL, st, threads), CAS_NEED_OUTPUT);
            for (i = 0; i < N; i++) {
                CHECK(st[i] == (sizes[i] ? CAS_NEED_OUTPUT : CAS_OK));
                CHECK_EQ_INT(dlen[i], sizes[i]); /* gzip's length field, LZ4's content size, raw's own */
                dcap[i] = sizes[i] + 1;
                dec[i] = (unsigned char *)malloc(dcap[i]);
            }
            CHECK_EQ_INT(cas_unpack_many(N, fmts, cblob, blen, (void *const *)dec, dcap, dlen, kp, st, threads),
                         CAS_OK);
            for (i = 0; i < N; i++) CHECK(st[i] == CAS_OK && dlen[i] == sizes[i] && !memcmp(dec[i], in[i], sizes[i]));
            for (i = 0; i < N; i++) free(dec[i]);
        }
        for (i = 0; i < N; i++) free(blob[i]);
    }
    /* failures are the item's own: short room, a corrupt blob, a wrong key, a bad format */
    {
        unsigned char b[N][64], o[N][64];
        void *bo[N], *oo[N];
        size_t bl[N], bc[N], oc[N], l233[N];
        const char *wrong[N];
        int f4[N];
        for (i = 0; i < N; i++) {
            bo[i] = b[i], oo[i] = o[i], bc[i] = oc[i] = 64, cin[i] = in[1], l233[i] = 1;
            wrong[i] = NULL, f4[i] = CAS_FORMAT_V2;
        }
        bc[3] = 8;
        CHECK_EQ_INT(cas_pack_many(CAS_FORMAT_V2, 0, 4, cin, l233, bo, bc, bl, keys, st, 2), CAS_NEED_OUTPUT);
        CHECK(st[0] == CAS_OK && st[1] == CAS_OK && st[2] == CAS_OK && st[3] == CAS_NEED_OUTPUT);
        CHECK_EQ_INT(cas_pack_many(CAS_FORMAT_V2, 0, 3, cin, l233, bo, bc, bl, keys, st, 2), CAS_OK);
        for (i = 0; i < 3; i++) cblob[i] = b[i];
        b[1][bl[1] - 1] ^= 1;                                  /* item 1: its checksum fails */
        wrong[2] = "0000000000000000000000000000000000000000"; /* item 2: verified against another key */
        f4[0] = 9;                                             /* item 0: no such format */
        CHECK_EQ_INT(cas_unpack_many(3, f4, cblob, bl, oo, oc, dlen, wrong, st, 2), CAS_E_ARG);
        CHECK_EQ_INT(st[0], CAS_E_ARG);
        CHECK(st[1] < 0 && st[1] != CAS_E_ARG);
        CHECK_EQ_INT(st[2], CAS_E_HASH);
        f4[0] = CAS_FORMAT_V2;
        CHECK(cas_unpack_many(3, f4, cblob, bl, oo, oc, dlen, NULL, st, 1) == st[1]); /* the lowest failing item's */
        CHECK(st[0] == CAS_OK && st[2] == CAS_OK);
        CHECK_EQ_INT(cas_unpack_many(0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0), CAS_OK);
        CHECK_EQ_INT(cas_pack_many(CAS_FORMAT_V1, 0, 1, cin, sizes, NULL, NULL, NULL, NULL, NULL, 0), CAS_E_ARG);
    }
    { /* large items, whose hash is a job of its own: a failure is still the item's */
        const void *big[3];
        size_t bl3[3] = {1200000, 1200000, 300000}, bc3[3], ol[3];
        void *bo3[3];
        for (i = 0; i < 3; i++) {
            big[i] = in[6];
            bc3[i] = cas_pack_bound(CAS_FORMAT_V2, bl3[i]);
            bo3[i] = malloc(bc3[i]);
        }
        bc3[1] = 100;  /* item 1: short room */
        big[2] = NULL; /* item 2: no input */
        CHECK_EQ_INT(cas_pack_many(CAS_FORMAT_V2, 0, 3, big, bl3, bo3, bc3, ol, keys, st, 2), CAS_NEED_OUTPUT);
        CHECK(st[0] == CAS_OK && st[1] == CAS_NEED_OUTPUT && st[2] == CAS_E_ARG);
        CHECK(cas_hash(CAS_HASH_SHA1, in[6], 1200000, one) == CAS_OK);
        CHECK_STR(keys, one);
        for (i = 0; i < 3; i++) free(bo3[i]);
    }
    for (i = 0; i < N; i++) free(in[i]);
}

static void test_raw_blobs(void) {
    cas_reader *r;
    void *out;
    size_t len;
    cas_reader_create(&r, NULL);
    /* raw bytes are never sniffed: they may look like anything, even gzip */
    CHECK(cas_reader_begin(r, "{\"cas_raw\": true, \"cas_version\": 1}", 35, NAME, NULL) == CAS_OK);
    CHECK_EQ_INT(cas_reader_unpack(r, "\x1f\x8bxyz", 5, &out, &len), CAS_DONE);
    CHECK(len == 5 && !memcmp(out, "\x1f\x8bxyz", 5));
    cas_reader_free_buffer(r, out);
    CHECK(cas_reader_format(r) == CAS_FORMAT_RAW);
    cas_reader_free(r);
}

static void test_codec_contract(void) {
    cas_codec *c;
    unsigned char out[16];
    size_t u, m;
    CHECK(cas_decoder_create(&c, 99, NULL) == CAS_E_ARG);
    CHECK(cas_decoder_create(NULL, CAS_CODEC_GZIP, NULL) == CAS_E_ARG);
    CHECK(cas_decoder_create(&c, CAS_CODEC_GZIP, NULL) == CAS_OK);
    CHECK(cas_codec_update(c, NULL, 5, &u, out, sizeof out, &m, 0) == CAS_E_ARG);
    /* an error is sticky until reset */
    CHECK(cas_codec_update(c, "xy", 2, &u, out, sizeof out, &m, 1) == CAS_E_CORRUPT);
    CHECK(cas_codec_update(c, "", 0, &u, out, sizeof out, &m, 1) == CAS_E_CORRUPT);
    CHECK(cas_codec_reset(c) == CAS_OK);
    CHECK(cas_codec_update(c, "", 0, &u, out, sizeof out, &m, 1) == CAS_DONE);
    CHECK(cas_codec_set_param(c, CAS_PARAM_LEVEL, 99) == CAS_E_ARG);
    cas_codec_free(c);
    CHECK(cas_codec_available(CAS_CODEC_GZIP) == 1);
    CHECK_STR(cas_sniff_name(cas_sniff("\x1f\x8b", 2)), "gzip");
    CHECK(cas_sniff("\x04\x22", 2) == CAS_SNIFF_SHORT);
    CHECK(cas_sniff("\x04\x23", 2) == CAS_SNIFF_UNKNOWN);
    {
        char rep[64];
        cas_bytes_repr("a'b", 3, rep, sizeof rep);
        CHECK_STR(rep, "b\"a'b\"");
        cas_bytes_repr("\\\n\x7f", 3, rep, sizeof rep);
        CHECK_STR(rep, "b'\\\\\\n\\x7f'");
    }
}

/* Every encoder and decoder with output room from 1 byte up: the drain paths. */
static void test_tiny_rooms(void) {
    static unsigned char in[70000], blob[80000], out[80000];
    static const int formats[] = {CAS_FORMAT_V1, CAS_FORMAT_V2, CAS_FORMAT_RAW};
    size_t n, room;
    int f;
    t_fill(in, sizeof in, 2);
    for (f = 0; f < 3; f++)
        for (n = 0; n < sizeof in; n = n * 3 + 1)
            for (room = 1; room < 100000; room = room * 5 + 3) {
                cas_writer *w;
                size_t u, m, off = 0, o = 0, len;
                int rc;
                char meta[CAS_META_MAX], msg[600], key[CAS_KEY_BUF];
                unsigned char *dec;
                t_setnote("%s, %lu bytes, room %lu", cas_format_name(formats[f]), (unsigned long)n,
                          (unsigned long)room);
                CHECK(cas_writer_create(&w, formats[f], NULL) == CAS_OK);
                while (off < n) {
                    size_t r2 = room < sizeof blob - o ? room : sizeof blob - o;
                    rc = cas_writer_update(w, in + off, n - off, &u, blob + o, r2, &m);
                    CHECK(rc >= 0);
                    off += u, o += m;
                }
                do {
                    size_t r2 = room < sizeof blob - o ? room : sizeof blob - o;
                    rc = cas_writer_finish(w, blob + o, r2, &m);
                    CHECK(rc >= 0);
                    o += m;
                } while (rc == CAS_NEED_OUTPUT);
                CHECK(cas_writer_key(w, key) == CAS_OK);
                cas_writer_free(w);
                cas_meta_json(formats[f], meta, sizeof meta, NULL);
                CHECK_EQ_INT(
                    stream_decode(blob, o, meta, "tiny", key, 1 + room % 13, room, &dec, &len, msg, sizeof msg, 0),
                    CAS_DONE);
                CHECK(len == n && !memcmp(dec, in, n));
                free(dec);
                (void)out;
            }
    t_note[0] = 0;
}

/* Found by fuzzing: an exactly sized output buffer must end in CAS_DONE even when
 * what follows the last output byte is an empty block, an empty member or the end mark. */
static void test_exact_room(void) {
    unsigned char blob[256], out[64];
    size_t n = 0, len, bn;
    int be;
    /* member "a", then an empty member */
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "a", 1, blob, sizeof blob, &bn) == CAS_DONE);
    n = bn;
    CHECK(cas_encode(CAS_CODEC_GZIP, 0, "", 0, blob + n, sizeof blob - n, &bn) == CAS_DONE);
    n += bn;
    for (be = CAS_BACKEND_ZLIB; be <= CAS_BACKEND_ISAL; be++) {
        cas_codec *c;
        size_t u, m;
        if (be == CAS_BACKEND_ISAL && !CAS_TEST_HAS_ISAL) continue;
        t_setnote("backend %d", be);
        CHECK(cas_decoder_create(&c, CAS_CODEC_GZIP, NULL) == CAS_OK);
        CHECK(cas_codec_set_param(c, CAS_PARAM_GZIP_BACKEND, be) == CAS_OK);
        CHECK_EQ_INT(cas_codec_decode_all(c, blob, n, out, 1, &len), CAS_DONE);
        CHECK(len == 1 && out[0] == 'a');
        /* streaming with exactly one byte of room in total */
        CHECK(cas_codec_reset(c) == CAS_OK);
        CHECK_EQ_INT(cas_codec_update(c, blob, n, &u, out, 1, &m, 1), CAS_DONE);
        CHECK(u == n && m == 1);
        cas_codec_free(c);
    }
    t_note[0] = 0;
    /* found by fuzzing: 1-byte members back to back with no room left: each probe
     * must wait for the previous probed byte to be delivered */
    n = 0;
    for (be = 0; be < 3; be++) {
        CHECK(cas_encode(CAS_CODEC_GZIP, 0, &"xyz"[be], 1, blob + n, sizeof blob - n, &bn) == CAS_DONE);
        n += bn;
    }
    for (be = CAS_BACKEND_ZLIB; be <= CAS_BACKEND_ISAL; be++) {
        cas_codec *c;
        size_t u, m, off = 0, o = 0;
        int rc;
        if (be == CAS_BACKEND_ISAL && !CAS_TEST_HAS_ISAL) continue;
        t_setnote("three 1-byte members, backend %d", be);
        CHECK(cas_decoder_create(&c, CAS_CODEC_GZIP, NULL) == CAS_OK);
        CHECK(cas_codec_set_param(c, CAS_PARAM_GZIP_BACKEND, be) == CAS_OK);
        do { /* all input at once, one byte of room per call */
            rc = cas_codec_update(c, blob + off, n - off, &u, out + o, 1, &m, 1);
            off += u, o += m;
        } while (rc == CAS_NEED_OUTPUT && o < 10);
        CHECK_EQ_INT(rc, CAS_DONE);
        CHECK(o == 3 && !memcmp(out, "xyz", 3));
        cas_codec_free(c);
    }
    t_note[0] = 0;
    /* an LZ4 frame: "a" in one block, an empty block, the end mark (as LZ4F_flush can leave) */
    {
        static const unsigned char frame[] = {0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, /* header */
                                              0x01, 0x00, 0x00, 0x80, 'a',              /* 1 byte, stored */
                                              0x00, 0x00, 0x00, 0x80,                   /* empty block */
                                              0x00, 0x00, 0x00, 0x00};                  /* end mark */
        CHECK_EQ_INT(cas_decode(CAS_CODEC_LZ4, frame, sizeof frame, out, 1, &len), CAS_DONE);
        CHECK(len == 1 && out[0] == 'a');
    }
}

static test_case core_tests[] = {
    {"exact_room", test_exact_room},
    {"tiny_rooms", test_tiny_rooms},
    {"golden_keys", test_golden_keys},
    {"key_check", test_key_check},
    {"golden_blobs", test_golden_blobs},
    {"meta_json", test_meta_json},
    {"fixtures_oneshot", test_fixtures_oneshot},
    {"fixtures_streaming_1_7_64k", test_fixtures_streaming},
    {"roundtrip_random", test_roundtrip_random},
    {"error_messages", test_error_messages},
    {"gzip_python_quirks", test_gzip_python_quirks},
    {"lz4_quirks", test_lz4_quirks},
    {"gzip_huge_header_fields", test_gzip_huge_header_fields},
    {"reserved_deflate_symbol", test_reserved_deflate_symbol},
    {"limit", test_limit},
    {"expect_size", test_expect_size},
    {"raw_blobs", test_raw_blobs},
    {"reader_decode_one_call", test_reader_decode_one_call},
    {"reader_reuse_after_unfinished", test_reader_reuse_after_unfinished},
    {"writer_helper", test_writer_helper},
    {"many", test_many},
    {"codec_contract", test_codec_contract},
};
