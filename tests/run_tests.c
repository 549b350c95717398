/* The C test runner: one translation unit with the implementation, so the
 * tests reach the internals (the JSON parser) as well as the public API.
 * Usage: run_tests [substring]   (runs the tests whose name contains it)
 * The last line is "N passed, N failed". */
#define CAS_IMPLEMENTATION
#include "../cas.h"
#include "test.h"
#include <time.h>

#include "test_core.c"
#ifndef CAS_NO_STORE
#include "test_store.c"
#endif

static int run_group(const test_case *t, size_t n, const char *filter, int *pass, int *fail) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (filter && !strstr(t[i].name, filter)) continue;
        struct timespec a, b;
        double ms;
        t_failed_now = 0, t_note[0] = 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        t[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &b);
        ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (t_failed_now) {
            printf("FAIL %-32s %8.0f ms\n", t[i].name, ms);
            (*fail)++;
        } else {
            printf("ok   %-32s %8.0f ms\n", t[i].name, ms);
            (*pass)++;
        }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    int pass = 0, fail = 0;
    const char *filter = argc > 1 ? argv[1] : NULL;
    printf("cas.h %s tests (%s SHA-1%s%s)\n", cas_version_string(),
#ifdef CAS_SHA1_OPENSSL
           "OpenSSL",
#else
           "portable",
#endif
#ifdef CAS_USE_ISAL
           ", ISA-L",
#else
           "",
#endif
#ifdef CAS_USE_LIBDEFLATE
           ", libdeflate"
#else
           ""
#endif
    );
    run_group(core_tests, sizeof core_tests / sizeof *core_tests, filter, &pass, &fail);
#ifndef CAS_NO_STORE
    run_group(store_tests, sizeof store_tests / sizeof *store_tests, filter, &pass, &fail);
#endif
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
