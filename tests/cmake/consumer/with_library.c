/* Linked with cas::cas: packs and unpacks an artifact, and previews a pickle. */
#include <cas_pickle.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    static const unsigned char pk[] = {0x80, 0x04, 0x4b, 0x2a, 0x2e}; /* pickle.dumps(42, protocol=4) */
    const char *data = "an artifact";
    unsigned char blob[256];
    char key[CAS_KEY_BUF];
    size_t n;
    cas_preview *p;
    int ok;
    if (cas_pack(NULL, data, strlen(data), blob, sizeof blob, &n, key) != CAS_OK) return 1;
    if (cas_preview_create(&p, NULL) != CAS_OK || cas_preview_bytes(p, pk, sizeof pk) != CAS_OK) return 1;
    ok = !strcmp(cas_preview_text(p, NULL), "42") && !strcmp(key, "381aef61464f679c1134e1e1978028f9069189b1");
    printf("cas %s, key %s, preview %s: %s\n", cas_version_string(), key, cas_preview_text(p, NULL), ok ? "ok" : "WRONG");
    cas_preview_free(p);
    return ok ? 0 : 1;
}
