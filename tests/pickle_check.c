/* cas_pickle.h compiles warning-free in every configuration test-configs checks,
 * as C99 and C++, and previews a pickle (a dict of protocol 4) with its defaults. */
#define CAS_IMPLEMENTATION
#define CAS_PICKLE_IMPLEMENTATION
#include "../cas_pickle.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    /* pickle.dumps({'a': [1, 2.5]}, protocol=4) */
    static const unsigned char pk[] = {0x80, 0x04, 0x95, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7d,
                                       0x94, 0x8c, 0x01, 0x61, 0x94, 0x5d, 0x94, 0x28, 0x4b, 0x01, 0x47, 0x40,
                                       0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x65, 0x73, 0x2e};
    cas_preview *p;
    int rc, ok;
    if (cas_preview_create(&p, NULL) != CAS_OK) return 1;
    rc = cas_preview_bytes(p, pk, sizeof pk);
    ok = rc == CAS_OK && !strcmp(cas_preview_text(p, NULL), "{'a': [1, 2.5]}");
    printf("pickle %s: %s\n", ok ? "ok" : "FAILED", cas_preview_text(p, NULL));
    cas_preview_free(p);
    return ok ? 0 : 1;
}
