/* Linked with cas::headers only: the implementation is compiled here. */
#define CAS_IMPLEMENTATION
#include <cas.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    const char *data = "an artifact";
    unsigned char blob[256];
    char key[CAS_KEY_BUF];
    size_t n;
    if (cas_pack(NULL, data, strlen(data), blob, sizeof blob, &n, key) != CAS_OK) return 1;
    printf("header-only cas %s, key %s\n", cas_version_string(), key);
    return strcmp(key, "381aef61464f679c1134e1e1978028f9069189b1") != 0;
}
