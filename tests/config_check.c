/* Compiled once per configuration (every CAS_NO_* and hash option, C99 and C++,
 * gcc and clang) with -Wall -Wextra -Wpedantic -Werror; run for the gcc builds.
 * A round trip through every codec the configuration has. */
#define CAS_IMPLEMENTATION
#include "../cas.h"
#include <stdio.h>
#include <string.h>

/* 0.1.0's config names keep working */
#if (defined(CAS_KEY_XXH3) || defined(CAS_USE_XXH3_KEYS)) && CAS_HASH_DEFAULT != CAS_HASH_XXH3
#error "CAS_KEY_XXH3 / CAS_USE_XXH3_KEYS must make XXH3-128 the default key"
#endif
#if defined(CAS_SHA1_OPENSSL) && !defined(CAS_USE_OPENSSL)
#error "CAS_SHA1_OPENSSL must turn CAS_USE_OPENSSL on"
#endif

int main(void) {
    static const int formats[] = {CAS_FORMAT_V1, CAS_FORMAT_V2, CAS_FORMAT_RAW};
    const char *data = "config check: the same bytes through every compiled codec";
    size_t n = strlen(data), i, blen, olen;
    unsigned char blob[512];
    char key[CAS_KEY_BUF], meta[CAS_META_MAX];
    int ran = 0;
    for (i = 0; i < 3; i++) {
        cas_writer *w;
        cas_reader *r;
        void *out;
        if (!cas_codec_available(cas_format_codec(formats[i]))) {
            if (cas_writer_create(&w, formats[i], NULL) != CAS_E_UNSUPPORTED) return 1;
            continue;
        }
        if (cas_writer_create(&w, formats[i], NULL) != CAS_OK) return 2;
        if (cas_pack(w, data, n, blob, sizeof blob, &blen, key) != CAS_DONE) return 3;
        cas_writer_meta(w, meta, sizeof meta, NULL);
        cas_writer_free(w);
        if (strlen(key) != cas_key_length(CAS_HASH_DEFAULT)) return 4;
        if (cas_reader_create(&r, NULL) != CAS_OK) return 5;
        if (cas_reader_begin(r, meta, strlen(meta), "check", key) != CAS_OK) return 6;
        if (cas_reader_unpack(r, blob, blen, &out, &olen) != CAS_DONE) return 7;
        if (olen != n || memcmp(out, data, n)) return 8;
        cas_reader_free_buffer(r, out);
        cas_reader_free(r);
        ran++;
    }
    printf("config ok: %d codecs, %s keys\n", ran, CAS_HASH_DEFAULT == CAS_HASH_SHA1 ? "SHA-1" : "XXH3-128");
    return 0;
}
