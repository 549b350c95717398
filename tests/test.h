/* A small test harness: every test is a function; CHECK stops the test at the
 * first failure and reports where. The runner's last line is "N passed, N failed". */
#ifndef CAS_TEST_H
#define CAS_TEST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
typedef struct test_case {
    const char *name;
    test_fn fn;
} test_case;

static int t_failed_now;
static char t_note[512]; /* what the test was doing, printed with a failure */

static void t_fail_at(const char *file, int line, const char *what) {
    printf("    %s:%d: %s\n", file, line, what);
    if (t_note[0]) printf("      while: %s\n", t_note);
    t_failed_now = 1;
}

static void t_setnote(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_note, sizeof t_note, fmt, ap);
    va_end(ap);
}

#define CHECK(cond)                               \
    do {                                          \
        if (!(cond)) {                            \
            t_fail_at(__FILE__, __LINE__, #cond); \
            return;                               \
        }                                         \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                      \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (a_ != b_) {                                                         \
            char m_[256];                                                       \
            snprintf(m_, sizeof m_, "%s == %s (%lld != %lld)", #a, #b, a_, b_); \
            t_fail_at(__FILE__, __LINE__, m_);                                  \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_STR(a, b)                                                                             \
    do {                                                                                            \
        const char *a_ = (a), *b_ = (b);                                                            \
        if (!a_ || !b_ || strcmp(a_, b_)) {                                                         \
            printf("    got:      %s\n    expected: %s\n", a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
            t_fail_at(__FILE__, __LINE__, #a " == " #b);                                            \
            return;                                                                                 \
        }                                                                                           \
    } while (0)

#ifdef CAS_USE_ISAL
#define CAS_TEST_HAS_ISAL 1
#else
#define CAS_TEST_HAS_ISAL 0
#endif

/* ---- helpers shared by the test files ---- */

static unsigned char *t_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) return NULL;
    for (;;) {
        size_t r;
        if (n == cap) {
            unsigned char *nb;
            cap = cap ? cap * 2 : 4096;
            nb = (unsigned char *)realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, f);
        if (!r) break;
        n += r;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static int t_write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Deterministic pseudo-random bytes (xorshift), of a chosen compressibility. */
static uint64_t t_rng = 0x9e3779b97f4a7c15ull;
static uint64_t t_rand(void) {
    t_rng ^= t_rng << 13, t_rng ^= t_rng >> 7, t_rng ^= t_rng << 17;
    return t_rng;
}
static void t_fill(unsigned char *p, size_t n, int kind) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (kind == 0) p[i] = (unsigned char)t_rand();                            /* random */
        else if (kind == 1) p[i] = (unsigned char)("metaflow artifact "[i % 18]); /* repetitive */
        else p[i] = (unsigned char)((t_rand() & 7) ? 'a' + (i % 7) : t_rand());   /* mixed */
    }
}

/* CAS_TEST_QUICK=1 (sanitizer and valgrind runs): fewer repetitions, same checks. */
static int t_quick(void) {
    const char *q = getenv("CAS_TEST_QUICK");
    return q && *q && *q != '0';
}

static const char *t_fixtures(void) {
    const char *f = getenv("CAS_FIXTURES");
    return f && *f ? f : "tests/fixtures/metaflow"; /* bundled; make passes the absolute path */
}

#endif
