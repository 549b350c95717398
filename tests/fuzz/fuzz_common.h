/* fuzz_common.h - shared pieces of the cas.h libFuzzer targets (tests/fuzz/).
 *
 * Each target is one translation unit that includes this header first, so the
 * implementation of cas.h (and its static internals) is compiled into it:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DCAS_USE_ISAL -DCAS_USE_LIBDEFLATE \
 *     -DCAS_USE_OPENSSL tests/fuzz/fuzz_unpack.c -lz -llz4 -lpthread -lisal -ldeflate -lcrypto
 *
 * With -DCAS_FUZZ_REPLAY (and without -fsanitize=fuzzer) a target gets a main()
 * that feeds every file under the directories (or files) named on the command
 * line to LLVMFuzzerTestOneInput, recursively, and prints "replayed N inputs":
 * what `make test-fuzz-replay` runs on tests/fuzz/corpus/<target>.
 *
 * A broken invariant calls fuzz_fail(), which prints the reason and aborts, so
 * libFuzzer records the input as a crash.
 */
#ifndef CAS_FUZZ_COMMON_H
#define CAS_FUZZ_COMMON_H

/* cas.h first: under -std=c99 it asks for the POSIX declarations itself. */
#define CAS_IMPLEMENTATION
#include "../../cas.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FUZZ_UNUSED __attribute__((unused))
#define FUZZ_NORETURN __attribute__((noreturn))
#define FUZZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FUZZ_UNUSED
#define FUZZ_NORETURN
#define FUZZ_PRINTF(a, b)
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FUZZ_NORETURN FUZZ_PRINTF(4, 5) void fuzz_fail(const char *file, int line, const char *cond, const char *fmt,
                                                      ...) {
    va_list ap;
    fprintf(stderr, "\n%s:%d: fuzz invariant broken: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* FUZZ_ASSERT(cond, fmt, ...): the format is required (C99 has no empty __VA_ARGS__). */
#define FUZZ_ASSERT(cond, ...)                                               \
    do {                                                                     \
        if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);      \
    } while (0)

/* FUZZ_VERBOSE=1 in the environment (replay builds only): targets log outcomes. */
static FUZZ_UNUSED int fuzz_verbose = 0;
static FUZZ_UNUSED FUZZ_PRINTF(1, 2) void fuzz_log(const char *fmt, ...) {
    va_list ap;
    if (!fuzz_verbose) return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- reading structured values off the front of the input ---------------- */

typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static FUZZ_UNUSED uint8_t fz_u8(fuzz_in *f) {
    uint8_t v;
    if (!f->n) return 0;
    v = *f->p++;
    f->n--;
    return v;
}

static FUZZ_UNUSED uint16_t fz_u16(fuzz_in *f) {
    uint16_t lo = fz_u8(f);
    return (uint16_t)(lo | (uint16_t)fz_u8(f) << 8);
}

static FUZZ_UNUSED uint32_t fz_u32(fuzz_in *f) {
    uint32_t lo = fz_u16(f);
    return lo | (uint32_t)fz_u16(f) << 16;
}

/* Up to k bytes (fewer at the end of the input). */
static FUZZ_UNUSED size_t fz_take(fuzz_in *f, size_t k, const uint8_t **out) {
    if (k > f->n) k = f->n;
    *out = f->p;
    f->p += k, f->n -= k;
    return k;
}

/* ---- chunk-size schedules -------------------------------------------------- */

/* Eight size bytes, used round robin. A byte maps onto a wide range so both
 * one-byte feeding and big slices occur: 0 (an empty call), 1..127, then
 * multiples of 64 up to 4 KiB, then multiples of 4 KiB up to 256 KiB. */
typedef struct fuzz_sched {
    uint8_t b[8];
    unsigned i;
} fuzz_sched;

static FUZZ_UNUSED void fz_sched_init(fuzz_sched *s, fuzz_in *f) {
    int k;
    for (k = 0; k < 8; k++) s->b[k] = fz_u8(f);
    s->i = 0;
}

static FUZZ_UNUSED size_t fz_sched_size(uint8_t b) {
    if (b < 0x80) return b;
    if (b < 0xc0) return (size_t)(b - 0x80 + 1) * 64;
    return (size_t)(b - 0xc0 + 1) * 4096;
}

/* The next size; min_one forces at least 1 (used once a driver sees no progress). */
static FUZZ_UNUSED size_t fz_sched_next(fuzz_sched *s, int min_one) {
    size_t v = fz_sched_size(s->b[s->i++ & 7]);
    return (v == 0 && min_one) ? 1 : v;
}

/* ---- a growable byte buffer ----------------------------------------------- */

typedef struct fuzz_buf {
    unsigned char *p;
    size_t len, cap;
} fuzz_buf;

static FUZZ_UNUSED void fb_reserve(fuzz_buf *b, size_t extra) {
    size_t need = b->len + extra, nc;
    unsigned char *np;
    if (need <= b->cap) return;
    nc = b->cap ? b->cap : 256;
    while (nc < need) nc *= 2;
    np = (unsigned char *)realloc(b->p, nc);
    FUZZ_ASSERT(np != NULL, "realloc(%zu) failed", nc);
    b->p = np, b->cap = nc;
}

static FUZZ_UNUSED void fb_put(fuzz_buf *b, const void *p, size_t n) {
    if (!n) return;
    fb_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static FUZZ_UNUSED void fb_byte(fuzz_buf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    fb_put(b, &c, 1);
}

static FUZZ_UNUSED void fb_le32(fuzz_buf *b, uint32_t v) {
    unsigned char t[4];
    t[0] = (unsigned char)v, t[1] = (unsigned char)(v >> 8), t[2] = (unsigned char)(v >> 16),
    t[3] = (unsigned char)(v >> 24);
    fb_put(b, t, 4);
}

static FUZZ_UNUSED void fb_free(fuzz_buf *b) {
    free(b->p);
    b->p = NULL, b->len = b->cap = 0;
}

/* ---- sidecars ------------------------------------------------------------- */

/* The sidecars a blob can come with: none (legacy gzip), the three Metaflow
 * writes, and malformed or unusual ones the read rules must handle. */
static const char *const fuzz_sidecars[] = {
    NULL, /* no sidecar: legacy gzip */
    "{\"cas_raw\": false, \"cas_version\": 1}",
    "{\"cas_raw\": false, \"cas_version\": 2}",
    "{\"cas_raw\": true, \"cas_version\": 1}",
    "{}",
    "{\"cas_raw\": false}",
    "{\"cas_raw\": false, \"cas_version\": 3}",
    "{\"cas_version\": \"1\"}",
    "{\"cas_version\": 1.0}",
    "{\"cas_version\": 2e0, \"cas_raw\": 0}",
    "{\"cas_raw\": 1, \"cas_version\": 2}",
    "{\"cas_raw\": \"\", \"cas_version\": 2}",
    "{\"cas_version\": 2, \"cas_version\": 1}",
    "{\"cas_version\": -1}",
    "{\"cas_version\": 99999999999999999999999}",
    "{\"cas_raw\": false, \"cas_version\": 1",
    "[1]",
    "",
    "{\"cas_raw\": [], \"cas_version\": true}",
    "{\"cas_version\": 2, \"cas_raw\": {\"x\": 1}}",
};
#define FUZZ_NSIDECARS (sizeof fuzz_sidecars / sizeof fuzz_sidecars[0])

/* ---- replay main ---------------------------------------------------------- */
#ifdef CAS_FUZZ_REPLAY
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

/* A time budget per input, as libFuzzer's -timeout: a hang is a finding, not a
 * stuck CI job (FUZZ_TIMEOUT seconds, default 30: sanitizers slow a run 2-5x). */
static const char *fuzz_current = "";
static unsigned fuzz_timeout = 30;

static void fuzz_on_alarm(int sig) {
    static const char head[] = "\nreplay: an input ran past its time budget (FUZZ_TIMEOUT): ";
    (void)sig;
    (void)!write(2, head, sizeof head - 1);
    (void)!write(2, fuzz_current, strlen(fuzz_current));
    (void)!write(2, "\n", 1);
    abort();
}

static int fuzz_replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 4096;
            unsigned char *nb = (unsigned char *)realloc(buf, nc);
            if (!nb) {
                fclose(f);
                free(buf);
                return -1;
            }
            buf = nb, cap = nc;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (!got) break;
    }
    fclose(f);
    {
        /* an exact-size copy, as libFuzzer hands inputs: overreads stay visible */
        unsigned char *exact = (unsigned char *)malloc(len ? len : 1);
        if (!exact) {
            free(buf);
            return -1;
        }
        if (len) memcpy(exact, buf, len);
        free(buf);
        fuzz_current = path;
        alarm(fuzz_timeout);
        LLVMFuzzerTestOneInput(exact, len);
        alarm(0);
        free(exact);
    }
    return 0;
}

static int fuzz_replay_path(const char *path, unsigned long *count) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: cannot stat %s\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fuzz_log("%s: ", path);
        if (fuzz_replay_file(path) < 0) return -1;
        ++*count;
        return 0;
    }
    if (!(d = opendir(path))) {
        fprintf(stderr, "replay: cannot open directory %s\n", path);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[4096];
        if (e->d_name[0] == '.') continue; /* ., .., and hidden files such as .gitkeep */
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (fuzz_replay_path(sub, count) < 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

int main(int argc, char **argv) {
    unsigned long count = 0;
    int i;
    fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (getenv("FUZZ_TIMEOUT")) fuzz_timeout = (unsigned)atoi(getenv("FUZZ_TIMEOUT"));
    signal(SIGALRM, fuzz_on_alarm);
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++)
        if (fuzz_replay_path(argv[i], &count) < 0) return 1;
    printf("%s: replayed %lu inputs\n", argv[0], count);
    return 0;
}
#endif /* CAS_FUZZ_REPLAY */

#endif /* CAS_FUZZ_COMMON_H */
