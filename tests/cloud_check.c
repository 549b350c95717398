/* cas_cloud.h compiles warning-free in every configuration test-configs checks,
 * as C99 and C++, answers for a root it does not know, and registers its schemes
 * the way the registry promises: s3 and azure before the first URL root opens, a
 * user's registration of the same scheme winning. */
#define CAS_IMPLEMENTATION
#define CAS_CLOUD_IMPLEMENTATION
#include "../cas_cloud.h"

#include <stdio.h>
#include <string.h>

static int mine_opened;

static int mine(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    (void)out, (void)url, (void)alloc;
    mine_opened++;
    snprintf(err, errcap, "mine");
    return CAS_E_UNSUPPORTED;
}

int main(void) {
    cas_backend b;
    cas_store *s = NULL;
    char err[300];
    int rc = cas_cloud_backend(&b, "gs://bucket/x", NULL, err, sizeof err), ok = rc == CAS_E_UNSUPPORTED;
    printf("cloud ok: %s\n", err);
    /* the module's azure is there; an unknown scheme is named */
    ok &= cas_store_open(&s, "gs://bucket/x", NULL, err, sizeof err) == CAS_E_UNSUPPORTED &&
          strstr(err, "no backend is registered for 'gs://'") != NULL;
    /* a user's s3 replaces the module's, though registered before the first open */
    ok &= cas_backend_register("s3", mine) == CAS_OK;
    ok &= cas_store_open(&s, "s3://bucket/x", NULL, err, sizeof err) == CAS_E_UNSUPPORTED && mine_opened == 1 &&
          !strcmp(err, "mine");
    printf("registry %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
