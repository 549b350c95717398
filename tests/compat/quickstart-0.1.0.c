/* quickstart: pack an artifact as Metaflow does, unpack it, and stream it.
 *
 * Build (cas.h and cas_codecs.h side by side, or the single dist/cas.h):
 *   cc -O2 -o quickstart quickstart.c impl.c -lz -llz4 -lpthread
 * where impl.c holds only:
 *   #define CAS_IMPLEMENTATION
 *   #include "cas.h"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef QUICKSTART_SINGLE
#include "../dist/cas.h"
#else
#include "../cas.h"
#endif

int main(void) {
    const char *artifact = "a pickled artifact, or any bytes at all";
    size_t n = strlen(artifact), cap, blob_len, out_len;
    char key[CAS_KEY_BUF], meta[CAS_META_MAX], name[128];
    unsigned char *blob;
    void *out;
    cas_writer *w;
    cas_reader *r;
    int format;

    for (format = CAS_FORMAT_V1; format <= CAS_FORMAT_V2; format++) {
        /* 1. pack: key (SHA-1 of the raw bytes) + blob + the sidecar to store beside it */
        cap = cas_pack_bound(format, n);
        blob = (unsigned char *)malloc(cap);
        if (!blob || cas_writer_create(&w, format, NULL) != CAS_OK) return 1;
        if (cas_pack(w, artifact, n, blob, cap, &blob_len, key) != CAS_DONE) return 1;
        cas_writer_meta(w, meta, sizeof meta, NULL);
        cas_writer_free(w);
        snprintf(name, sizeof name, "QuickFlow/data/%.2s/%s", key, key);
        printf("%s: %lu bytes -> %lu byte blob, sidecar %s\n", name, (unsigned long)n, (unsigned long)blob_len, meta);

        /* 2. unpack by Metaflow's rules, verifying the key */
        if (cas_reader_create(&r, NULL) != CAS_OK) return 1;
        if (cas_reader_begin(r, meta, strlen(meta), name, key) != CAS_OK ||
            cas_reader_unpack(r, blob, blob_len, &out, &out_len) != CAS_DONE) {
            fprintf(stderr, "%s\n", cas_reader_message(r));
            return 1;
        }
        printf("  unpacked %lu bytes: %s\n", (unsigned long)out_len,
               out_len == n && !memcmp(out, artifact, n) ? "identical" : "DIFFERENT");
        cas_reader_free_buffer(r, out);

        /* 3. the same blob streamed through a 5-byte window, with a truncation at the end */
        {
            unsigned char piece[5];
            size_t off = 0, used, made, total = 0;
            int rc = cas_reader_begin(r, meta, strlen(meta), name, key);
            while (rc == CAS_OK || rc == CAS_NEED_INPUT || rc == CAS_NEED_OUTPUT) {
                size_t avail = blob_len - 2 - off; /* two bytes short: a truncated blob */
                rc = cas_reader_update(r, blob + off, avail < 7 ? avail : 7, &used, piece, sizeof piece, &made,
                                       avail <= 7);
                off += used, total += made;
                if (rc == CAS_DONE) break;
            }
            printf("  streamed %lu bytes, then: %s\n", (unsigned long)total,
                   rc < 0 ? cas_reader_message(r) : "done (unexpected!)");
        }
        cas_reader_free(r);
        free(blob);
    }
    return 0;
}
