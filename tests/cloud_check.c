/* cas_cloud.h compiles warning-free in every configuration test-configs checks,
 * as C99 and C++, and answers for a root it does not know. */
#define CAS_IMPLEMENTATION
#define CAS_CLOUD_IMPLEMENTATION
#include "../cas_cloud.h"

#include <stdio.h>

int main(void) {
    cas_backend b;
    char err[128];
    int rc = cas_cloud_backend(&b, "gs://bucket/x", NULL, err, sizeof err);
    printf("cloud ok: %s\n", err);
    return rc == CAS_E_UNSUPPORTED ? 0 : 1;
}
