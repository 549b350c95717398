/* s3_read: one artifact of a Metaflow run, from S3 to stdout, in bounded memory.
 *
 *   s3_read s3://my-bucket/metaflow MyFlow/12/train/3/model > model.pkl
 *
 * The root may be any root cas.h opens (a local .metaflow too); with none,
 * Metaflow's own default (METAFLOW_DATASTORE_SYSROOT_S3 when
 * METAFLOW_DEFAULT_DATASTORE=s3). Credentials, endpoint and region come from
 * where boto3 and Metaflow find them (see cas_cloud.h).
 *
 * Build: cc -O2 -o s3_read s3_read.c -lcurl -lexpat -lcrypto -lz -llz4 -lpthread
 * (the implementation is in this one file; add -DCAS_USE_ISAL -lisal etc. at will) */
#define CAS_IMPLEMENTATION
#define CAS_CLOUD_IMPLEMENTATION
#include "../cas_cloud.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    char err[1024], pathspec[1024];
    const char *root = argc == 3 ? argv[1] : NULL, *spec = argv[argc - 1], *name, *key = NULL, *slash;
    static unsigned char buf[1 << 16];
    cas_store *s;
    cas_task *t;
    cas_stream *st;
    size_t i, got;
    int64_t size = -1;
    int rc = 1;

    if (argc < 2 || argc > 3 || !(slash = strrchr(spec, '/')) || (size_t)(slash - spec) >= sizeof pathspec) {
        fprintf(stderr, "usage: s3_read [ROOT] FLOW/RUN/STEP/TASK/NAME\n");
        return 2;
    }
    memcpy(pathspec, spec, (size_t)(slash - spec));
    pathspec[slash - spec] = 0;
    name = slash + 1;

    if (cas_store_open(&s, root, NULL, err, sizeof err) < 0) { /* NULL: Metaflow's default root */
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (cas_task_open(s, pathspec, &t, err, sizeof err) < 0) { /* the latest finished attempt */
        fprintf(stderr, "%s\n", err);
        cas_store_close(s);
        return 1;
    }
    if (cas_task_find(t, name, &i) < 0) {
        fprintf(stderr, "%s has no artifact '%s'\n", pathspec, name);
    } else {
        cas_task_artifact(t, i, NULL, &key, &size, NULL, NULL);
        if (cas_stream_open(s, cas_task_flow(t), key, &st, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
        } else {
            cas_stream_set_param(st, CAS_PARAM_EXPECT_SIZE, size); /* data.json's size, checked */
            while ((rc = cas_stream_read(st, buf, sizeof buf, &got)) == CAS_OK && got) fwrite(buf, 1, got, stdout);
            if (rc < 0) fprintf(stderr, "%s\n", cas_stream_message(st));
            rc = rc < 0;
            cas_stream_close(st);
        }
    }
    cas_task_close(t);
    cas_store_close(s);
    return rc;
}
