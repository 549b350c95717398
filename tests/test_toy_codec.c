/* A codec and a format added to a test-only build with no other change to the
 * library (issues 13 and 26): a toy codec ("xor": every byte XOR a keystream that
 * starts at a key and steps by one per byte, no magic) with state of its own (the
 * key and the position, which lasts across updates) and a parameter of its own
 * (TOY_PARAM_KEY), in one row of the codec table, and a format that stores it
 * (cas_version 99) in one row of the format table. The writer, the reader, the
 * sidecar rules, the parameter check and the store take them as they take gzip
 * and LZ4. Built alone (its own implementation): make test-c runs it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cas.h" /* the declarations, for the toy's prototypes */

#define TOY_CODEC 42
#define TOY_FORMAT 42
#define TOY_META "{\"cas_raw\": false, \"cas_version\": 99}"
#define TOY_PARAM_KEY 90 /* the first byte of the keystream, 0..255 (default 0x5a) */

typedef struct toy_state {
    int key, key_set;
    unsigned char pos; /* where the keystream is: lasts across updates, back to 0 at reset */
} toy_state;

static int toy_set_param(cas_codec *c, int param, int64_t v);
static int toy_reset(cas_codec *c);
static int toy_update(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                      size_t *made, int end);
static void toy_release(cas_codec *c);
static size_t toy_bound(size_t n) { return n; }
static int toy_hint(const unsigned char *p, size_t n, uint64_t *size) {
    (void)p;
    *size = n;
    return CAS_OK;
}

/* the rows: the codec's by CAS__CODEC_ROW (its state, its parameter table), the
 * format's in the order of cas__format_row */
#define CAS_EXTRA_CODECS                                                                                        \
    CAS__CODEC_ROW(TOY_CODEC, "xor", 0, 0, "", 1, 1, 0, NULL, NULL, sizeof(toy_state), CAS__PARAMS(toy_params), \
                   toy_set_param, toy_bound, toy_hint, toy_reset, toy_update, toy_release),
#define CAS_EXTRA_FORMATS \
    {TOY_FORMAT, "toy", TOY_CODEC, 0, 99, TOY_META, 1, TOY_FORMAT, "metadata says cas_version 99 (xor)", 0},
#define CAS_IMPLEMENTATION
#define CAS_EXTRA_CODEC_PARAMS /* the toy's table, before the codec table that names it */ \
    static const cas__param_row toy_params[] = {CAS__PARAM(TOY_PARAM_KEY, CAS__FOR_CODEC, 0, 255, NULL)};
#include "../cas.h"

static toy_state *toy(cas_codec *c) { return (toy_state *)c->state; }

static int toy_set_param(cas_codec *c, int param, int64_t v) {
    (void)param; /* the only one in its table: the library checked it and its bounds */
    toy(c)->key = (int)v, toy(c)->key_set = 1;
    return CAS_OK;
}
static int toy_reset(cas_codec *c) {
    if (!toy(c)->key_set) toy(c)->key = 0x5a;
    toy(c)->pos = 0;
    return CAS_OK;
}
static void toy_release(cas_codec *c) { (void)c; }
static int toy_update(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                      size_t *made, int end) {
    size_t k = n < cap ? n : cap, i;
    if (c->done) return n ? CAS_E_STATE : CAS_DONE;
    for (i = 0; i < k; i++) out[i] = (unsigned char)(in[i] ^ (unsigned char)(toy(c)->key + toy(c)->pos++));
    *used = k, *made = k;
    c->total_in += k, c->total_out += k;
    if (k < n) return CAS_NEED_OUTPUT;
    if (end) c->done = 1;
    return end ? CAS_DONE : CAS_NEED_INPUT;
}

static int failures;
#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #x); \
            failures++;                                                           \
        }                                                                         \
    } while (0)

int main(void) {
    static const char data[] = "a toy artifact, stored by a codec the library never heard of";
    size_t n = sizeof data - 1, blob_len = 0, out_len = 0, ml = 0, i;
    char key[CAS_KEY_BUF], key2[CAS_KEY_BUF], meta[CAS_META_MAX], err[512], dir[] = "/tmp/cas-toy-XXXXXX";
    unsigned char blob[256];
    void *out = NULL;
    int fmt = 0, stored = 0, changed = 0;
    int64_t ver = 0;
    uint64_t size = 0;
    cas_writer *w;
    cas_reader *r;
    cas_store *s;

    /* the tables answer for it */
    CHECK(cas_codec_available(TOY_CODEC) && !strcmp(cas_codec_name(TOY_CODEC), "xor"));
    CHECK(!strcmp(cas_format_name(TOY_FORMAT), "toy") && cas_format_codec(TOY_FORMAT) == TOY_CODEC);
    CHECK(cas_meta_json(TOY_FORMAT, meta, sizeof meta, &ml) == CAS_OK && !strcmp(meta, TOY_META));
    CHECK(cas_meta_parse(TOY_META, strlen(TOY_META), &fmt, &ver) == CAS_OK && fmt == TOY_FORMAT);
    CHECK(cas_meta_parse("{\"cas_version\": 99}", 19, &fmt, &ver) == CAS_OK && fmt == TOY_FORMAT);
    CHECK(cas_meta_parse("{\"cas_version\": 98}", 19, &fmt, &ver) == CAS_E_VERSION_UNKNOWN && ver == 98);
    CHECK(cas_encode_bound(TOY_CODEC, 10) == 10);

    /* writer: key + blob + sidecar */
    CHECK(cas_writer_create(&w, TOY_FORMAT, NULL) == CAS_OK);
    CHECK(cas_writer_set_param(w, CAS_PARAM_LEVEL, 5) == CAS_OK);        /* taken for a later gzip, ignored here */
    CHECK(cas_writer_set_param(w, CAS_PARAM_LZ4_BLOCK, 9) == CAS_E_ARG); /* one bounds table for all */
    CHECK(cas_pack(w, data, n, blob, sizeof blob, &blob_len, key) == CAS_OK);
    CHECK(blob_len == n);
    for (i = 0; i < n && i < blob_len; i++) CHECK(blob[i] == (unsigned char)(data[i] ^ (unsigned char)(0x5a + i)));
    CHECK(cas_hash(CAS_HASH_SHA1, data, n, key2) == CAS_OK && !strcmp(key, key2));
    CHECK(cas_writer_meta(w, meta, sizeof meta, &ml) == CAS_OK && !strcmp(meta, TOY_META));
    cas_writer_free(w);

    /* its state and its parameter: fed a byte at a time, or keyed, it gives what it should */
    {
        cas_codec *e, *d;
        unsigned char piece[256], whole[256], back[256];
        size_t u, m, got = 0;
        CHECK(cas_encoder_create(&e, TOY_CODEC, NULL) == CAS_OK && cas_decoder_create(&d, TOY_CODEC, NULL) == CAS_OK);
        for (i = 0; i < n; i++) { /* the keystream goes on from update to update */
            CHECK(cas_codec_update(e, data + i, 1, &u, piece + got, 1, &m, i + 1 == n) >= 0);
            got += m;
        }
        CHECK(got == n && !memcmp(piece, blob, n));
        CHECK(cas_codec_set_param(e, TOY_PARAM_KEY, 7) == CAS_E_STATE); /* not once bytes went through */
        CHECK(cas_codec_reset(e) == CAS_OK);
        CHECK(cas_codec_set_param(e, TOY_PARAM_KEY, 256) == CAS_E_ARG);   /* its row's bounds */
        CHECK(cas_codec_set_param(e, TOY_PARAM_KEY + 1, 7) == CAS_E_ARG); /* no codec's parameter */
        CHECK(cas_codec_set_param(e, TOY_PARAM_KEY, 7) == CAS_OK);
        CHECK(cas_codec_encode_all(e, data, n, whole, sizeof whole, &m) == CAS_OK && m == n);
        CHECK(whole[0] == (unsigned char)(data[0] ^ 7) && whole[1] == (unsigned char)(data[1] ^ 8));
        CHECK(cas_codec_set_param(d, CAS_PARAM_STRICT, 1) == CAS_OK); /* the shared parameters still apply */
        CHECK(cas_codec_set_param(d, TOY_PARAM_KEY, 7) == CAS_OK);
        CHECK(cas_codec_decode_all(d, whole, n, back, sizeof back, &m) == CAS_OK && m == n && !memcmp(back, data, n));
        cas_codec_free(e);
        cas_codec_free(d);
    }

    /* reader: the sidecar picks the codec */
    CHECK(cas_reader_create(&r, NULL) == CAS_OK);
    CHECK(cas_reader_begin(r, TOY_META, strlen(TOY_META), "Toy/data/xx", key) == CAS_OK);
    CHECK(cas_reader_format(r) == TOY_FORMAT);
    CHECK(cas_reader_unpack(r, blob, blob_len, &out, &out_len) == CAS_DONE);
    CHECK(out_len == n && out && !memcmp(out, data, n));
    cas_reader_free_buffer(r, out), out = NULL;
    blob[0] ^= 1; /* the key still guards the bytes */
    CHECK(cas_reader_begin(r, TOY_META, strlen(TOY_META), "Toy/data/xx", key) == CAS_OK);
    CHECK(cas_reader_unpack(r, blob, blob_len, &out, &out_len) == CAS_E_HASH);
    blob[0] ^= 1;
    cas_reader_free(r);

    /* store: put, stat, get, verify, migrate to v2 and back to gzip */
    CHECK(mkdtemp(dir) != NULL);
    CHECK(cas_store_open(&s, dir, NULL, err, sizeof err) == CAS_OK);
    CHECK(cas_store_set_param(s, CAS_PARAM_FORMAT, TOY_FORMAT) == CAS_OK);
    CHECK(cas_store_put(s, "Toy", data, n, 0, key2, &stored, err, sizeof err) == CAS_OK && stored == 1);
    CHECK(!strcmp(key, key2));
    CHECK(cas_store_stat(s, "Toy", key, &fmt, &size, err, sizeof err) == CAS_OK && fmt == TOY_FORMAT && size == n);
    CHECK(cas_store_get(s, "Toy", key, &out, &out_len, err, sizeof err) == CAS_OK);
    CHECK(out_len == n && out && !memcmp(out, data, n));
    cas_store_free_buffer(s, out), out = NULL;
    CHECK(cas_store_verify(s, "Toy", key, &size, err, sizeof err) == CAS_OK && size == n);
    {
        char path[600], side[128] = "";
        FILE *f;
        snprintf(path, sizeof path, "%s/Toy/data/%.2s/%s_meta", dir, key, key);
        if ((f = fopen(path, "rb")) != NULL) {
            side[fread(side, 1, sizeof side - 1, f)] = 0;
            fclose(f);
        }
        CHECK(!strcmp(side, TOY_META)); /* the sidecar as the table has it */
    }
    CHECK(cas_store_put(s, "Toy", "gz", 2, CAS_FORMAT_V1, key2, &stored, err, sizeof err) == CAS_OK);
    CHECK(cas_store_migrate(s, "Toy", key2, CAS_FORMAT_V2, &changed, err, sizeof err) == CAS_OK && changed);
    CHECK(cas_store_stat(s, "Toy", key2, &fmt, &size, err, sizeof err) == CAS_OK && fmt == CAS_FORMAT_V2);
    cas_store_close(s);
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    if (failures) {
        fprintf(stderr, "toy codec: %d checks failed\n", failures);
        return 1;
    }
    printf("toy codec: a codec and a format from one table row each, through writer, reader and store\n");
    return 0;
}
