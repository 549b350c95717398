/* The C test runner: one translation unit with the implementation, so the
 * tests reach the internals (the JSON parser) as well as the public API.
 * Usage: run_tests [substring]   (runs the tests whose name contains it)
 * The last line is "N passed, N failed". */
#define _POSIX_C_SOURCE 200809L /* before any system header, for the hooks below */
#define _DEFAULT_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* I/O hooks for fault injection (test_faults.c): pass-through unless armed. */
static long fi_write_fail_at, fi_write_count, fi_rename_fail_at, fi_rename_count, fi_fsync_fail_at, fi_fsync_count;
static int fi_write_errno = EIO, fi_short;
static ssize_t fi_write(int fd, const void *p, size_t n) {
    if (++fi_write_count == fi_write_fail_at) {
        errno = fi_write_errno;
        return -1;
    }
    if (fi_short && n > 1) n = n / 2 + 1; /* every write comes up short */
    return write(fd, p, n);
}
static int fi_renameat(int ofd, const char *old, int nfd, const char *nw) {
    if (++fi_rename_count == fi_rename_fail_at) {
        errno = EIO;
        return -1;
    }
    return renameat(ofd, old, nfd, nw);
}
static int fi_fsync(int fd) {
    if (++fi_fsync_count == fi_fsync_fail_at) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}
#define CAS_SYS_WRITE(fd, p, n) fi_write(fd, p, n)
#define CAS_SYS_RENAMEAT(ofd, old, nfd, nw) fi_renameat(ofd, old, nfd, nw)
#define CAS_SYS_FSYNC(fd) fi_fsync(fd)

#define CAS_IMPLEMENTATION
#include "../cas.h"
#define CAS_PICKLE_IMPLEMENTATION
#include "../cas_pickle.h"
#include "test.h"
#include <time.h>
#include <pthread.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h> /* test_core.c: a forked child packs with its copy of a writer */

#include "test_core.c"
#include "test_store.c"
#include "test_faults.c"
#include "test_backend.c"
#include "test_pickle.c"

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
#ifdef CAS_USE_OPENSSL
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
    run_group(store_tests, sizeof store_tests / sizeof *store_tests, filter, &pass, &fail);
    run_group(fault_tests, sizeof fault_tests / sizeof *fault_tests, filter, &pass, &fail);
    run_group(backend_tests, sizeof backend_tests / sizeof *backend_tests, filter, &pass, &fail);
    run_group(pickle_tests, sizeof pickle_tests / sizeof *pickle_tests, filter, &pass, &fail);
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
