/* Fault injection: an allocator that fails the N-th allocation, for every N a
 * workload reaches (a clean error and no leak each time), and write, rename and
 * fsync failures injected through the store's I/O hooks (an error, no visible
 * half blob, temp files cleaned). Included by run_tests.c, which routes
 * CAS_SYS_WRITE/RENAMEAT/FSYNC through fi_write/fi_renameat/fi_fsync. */
#include <sys/mount.h>

/* ---- the failing allocator ---- */

typedef struct fi_alloc {
    long count, fail_at; /* fail the fail_at-th allocation (1-based); 0 = never */
    long live;           /* outstanding allocations */
    int failed;
} fi_alloc;

static pthread_mutex_t fi_mu = PTHREAD_MUTEX_INITIALIZER; /* batch calls allocate from 2 threads */

static void *fi_malloc(void *user, size_t n) {
    fi_alloc *a = (fi_alloc *)user;
    void *p = NULL;
    pthread_mutex_lock(&fi_mu);
    if (++a->count == a->fail_at) a->failed = 1;
    else if ((p = malloc(n)) != NULL) a->live++;
    pthread_mutex_unlock(&fi_mu);
    return p;
}

static void fi_free(void *user, void *ptr) {
    fi_alloc *a = (fi_alloc *)user;
    if (!ptr) return;
    pthread_mutex_lock(&fi_mu);
    a->live--;
    pthread_mutex_unlock(&fi_mu);
    free(ptr);
}

/* A workload returns 0 when it ran to the end, < 0 when an allocation failure
 * surfaced as an error (the expected outcome), > 0 when something went wrong
 * (a wrong answer: a test failure). */
typedef int (*fi_workload)(const cas_allocator *a, const char *dir);

static int fi_codecs(const cas_allocator *a, const char *dir) {
    static unsigned char data[200000];
    int f, rc = 0;
    (void)dir;
    t_rng = 42; /* the same bytes every run: the sweep must repeat the same work */
    t_fill(data, sizeof data, 2);
    for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_RAW && rc == 0; f++) {
        cas_writer *w = NULL;
        cas_reader *r = NULL;
        size_t cap = cas_pack_bound(f, sizeof data), bl = 0, ol = 0, u, m;
        unsigned char *blob = (unsigned char *)malloc(cap), out[4096];
        char key[CAS_KEY_BUF], meta[CAS_META_MAX];
        void *whole = NULL;
        cas_meta_json(f, meta, sizeof meta, NULL);
        if ((rc = cas_writer_create(&w, f, a)) < 0) goto done;
        if ((rc = cas_pack(w, data, sizeof data, blob, cap, &bl, key)) < 0) goto done;
        /* the streaming writer too */
        if ((rc = cas_writer_reset(w, f)) < 0) goto done;
        if ((rc = cas_writer_update(w, data, sizeof data, &u, blob, cap, &m)) < 0) goto done;
        if ((rc = cas_writer_finish(w, blob + m, cap - m, &bl)) < 0) goto done;
        bl += m;
        if ((rc = cas_reader_create(&r, a)) < 0) goto done;
        if ((rc = cas_reader_begin(r, meta, strlen(meta), "fault", key)) < 0) goto done;
        if ((rc = cas_reader_unpack(r, blob, bl, &whole, &ol)) < 0) goto done;
        if (ol != sizeof data || memcmp(whole, data, ol)) rc = 1;
        cas_reader_free_buffer(r, whole);
        if (rc) goto done;
        if ((rc = cas_reader_begin(r, meta, strlen(meta), "fault", key)) < 0) goto done;
        {
            size_t off = 0;
            do {
                rc = cas_reader_update(r, blob + off, CAS__MIN(bl - off, 5000), &u, out, sizeof out, &m,
                                       off + CAS__MIN(bl - off, 5000) == bl);
                off += u;
            } while (rc == CAS_NEED_INPUT || rc == CAS_NEED_OUTPUT);
            if (rc > 0) rc = 1;
        }
    done:
        cas_writer_free(w);
        cas_reader_free(r);
        free(blob);
        if (rc == CAS_DONE) rc = 0;
    }
    {
        cas_hasher *h = NULL;
        char key[CAS_KEY_BUF];
        int algo;
        for (algo = CAS_HASH_SHA1; algo <= CAS_HASH_XXH3 && rc == 0; algo++) {
            if (!cas_hash_available(algo)) continue;
            if ((rc = cas_hasher_create(&h, algo, a)) < 0) break;
            cas_hasher_update(h, data, 100);
            cas_hasher_final(h, key);
            cas_hasher_free(h);
        }
    }
    return rc;
}

static int fi_store(const cas_allocator *a, const char *dir) {
    static unsigned char data[300000];
    char err[600], key[CAS_KEY_BUF], root[600], *keys = NULL, *flows = NULL;
    cas_store *s = NULL;
    cas_task *t = NULL;
    cas_stream *st = NULL;
    void *out = NULL;
    size_t len, n;
    int rc, f, changed;
    snprintf(root, sizeof root, "%s/.metaflow", dir);
    t_rng = 43; /* the same bytes every run: the sweep must repeat the same work */
    t_fill(data, sizeof data, 2);
    if ((rc = cas_store_open(&s, root, a, err, sizeof err)) < 0) return rc;
    for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_RAW; f++) {
        data[0] = (unsigned char)f;
        if ((rc = cas_store_put(s, "FaultFlow", data, sizeof data, f, key, NULL, err, sizeof err)) < 0) goto done;
        if ((rc = cas_store_get(s, "FaultFlow", key, &out, &len, err, sizeof err)) < 0) goto done;
        if (len != sizeof data || memcmp(out, data, len)) {
            rc = 1;
            goto done;
        }
        cas_store_free_buffer(s, out);
        out = NULL;
        if ((rc = cas_store_verify(s, "FaultFlow", key, NULL, err, sizeof err)) < 0) goto done;
        if ((rc = cas_stream_open(s, "FaultFlow", key, &st, err, sizeof err)) < 0) goto done;
        {
            unsigned char buf[7000];
            size_t got, total = 0;
            while ((rc = cas_stream_read(st, buf, sizeof buf, &got)) == CAS_OK && got) total += got;
            if (rc < 0) goto done;
            if (total != sizeof data) rc = 1;
        }
        cas_stream_close(st);
        st = NULL;
        if (rc) goto done;
    }
    if ((rc = cas_store_migrate(s, "FaultFlow", key, CAS_FORMAT_V2, &changed, err, sizeof err)) < 0) goto done;
    if ((rc = cas_store_keys(s, "FaultFlow", &keys, &n, err, sizeof err)) < 0) goto done;
    for (len = 0; len < n; len++) {
        if ((rc = cas_store_migrate(s, "FaultFlow", keys + len * CAS_KEY_BUF, CAS_FORMAT_V2, &changed, err,
                                    sizeof err)) < 0)
            goto done;
    }
    if ((rc = cas_store_flows(s, &flows, &n, err, sizeof err)) < 0) goto done;
    if ((rc = cas_task_open(s, "F/1/s/1", &t, err, sizeof err)) < 0) goto done;
    if (cas_task_count(t) != 2) rc = 1;
    {
        const void *d[3];
        size_t sz[3] = {10, 20000, 0};
        char ks[3 * CAS_KEY_BUF];
        d[0] = data, d[1] = data + 10, d[2] = data;
        if ((rc = cas_store_put_batch(s, "FaultFlow", 3, d, sz, CAS_FORMAT_V2, ks, NULL, 2, err, sizeof err)) < 0)
            goto done;
    }
done:
    if (out) cas_store_free_buffer(s, out);
    if (keys) cas_store_free_buffer(s, keys);
    if (flows) cas_store_free_buffer(s, flows);
    cas_stream_close(st);
    cas_task_close(t);
    cas_store_close(s);
    return rc == CAS_DONE ? 0 : rc;
}

/* Runs the workload failing allocation 1, 2, 3, ... until it completes. */
static int fi_sweep(fi_workload w, const char *dir, long *points) {
    long n;
    cas_allocator al;
    for (n = 1; n < 100000; n++) {
        fi_alloc a;
        int rc;
        memset(&a, 0, sizeof a);
        a.fail_at = n;
        al.alloc = fi_malloc, al.free = fi_free, al.user = &a;
        rc = w(&al, dir);
        if (rc > 0) {
            printf("    wrong result with allocation %ld failing\n", n);
            return 0;
        }
        if (a.live != 0) {
            printf("    %ld allocations leaked with allocation %ld failing (rc %d)\n", a.live, n, rc);
            return 0;
        }
        if (rc < 0 && !a.failed) {
            printf("    error %d (%s) without an injected failure at %ld\n", rc, cas_strerror(rc), n);
            return 0;
        }
        if (!a.failed) { /* ran to the end: every allocation point was tried */
            *points = n - 1;
            return rc == 0;
        }
    }
    return 0;
}

static void test_fault_alloc_codecs(void) {
    long points = 0;
    CHECK(fi_sweep(fi_codecs, NULL, &points));
    CHECK(points > 10);
    printf("    %ld allocation points, each failed once: clean errors, no leaks\n", points);
}

static void test_fault_alloc_store(void) {
    char dir[256];
    long points = 0;
    CHECK(ts_mkroot(dir, sizeof dir) != NULL);
    {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/.metaflow/F/1/s/1'", dir);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd, "%s/.metaflow", dir);
        CHECK(ts_write(cmd, "F/1/s/1/0.attempt.json", "{}"));
        CHECK(ts_write(cmd, "F/1/s/1/0.DONE.lock", ""));
        CHECK(ts_write(cmd, "F/1/s/1/0.data.json",
                       "{\"objects\": {\"a\": \"a9993e364706816aba3e25717850c26c9cd0d89d\", \"b\": "
                       "\"da39a3ee5e6b4b0d3255bfef95601890afd80709\"}, \"info\": {\"a\": {\"size\": 3}}}"));
    }
    CHECK(fi_sweep(fi_store, dir, &points));
    CHECK(points > 20);
    printf("    %ld allocation points, each failed once: clean errors, no leaks\n", points);
    ts_rmrf(dir);
}

/* ---- injected I/O failures ---- */

static void fi_io_reset(void) {
    fi_write_fail_at = fi_rename_fail_at = fi_fsync_fail_at = 0;
    fi_write_count = fi_rename_count = fi_fsync_count = 0;
    fi_write_errno = EIO, fi_short = 0;
}

/* After a failed put: no blob at its final path, no sidecar left, no temps. */
static int fi_clean(const char *root, const char *flow, const char *key) {
    char path[1200];
    int temps, blobs, metas;
    snprintf(path, sizeof path, "%s/%s/data/%.2s/%s", root, flow, key, key);
    if (ts_exists(path)) {
        printf("    a blob is visible after a failed write\n");
        return 0;
    }
    if (ts_scan(root, flow, &temps, &blobs, &metas) < 0) return 0;
    if (temps || blobs || metas) {
        printf("    left behind: %d temps, %d blobs, %d sidecars\n", temps, blobs, metas);
        return 0;
    }
    return 1;
}

static void test_fault_io(void) {
    char root[256], err[600], key[CAS_KEY_BUF], want[CAS_KEY_BUF], file[400];
    static unsigned char data[500000];
    cas_store *s;
    int stored, k, fd;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    CHECK(cas_store_set_param(s, CAS_PARAM_FSYNC, 1) == CAS_OK);
    t_fill(data, sizeof data, 2);
    cas_hash(CAS_HASH_SHA1, data, sizeof data, want);
    memcpy(key, want, sizeof key);
    /* the first write (the blob's temp) and the second (the sidecar's), ENOSPC and EIO */
    for (k = 1; k <= 2; k++) {
        int e;
        for (e = 0; e < 2; e++) {
            fi_io_reset();
            fi_write_fail_at = k, fi_write_errno = e ? EIO : ENOSPC;
            t_setnote("write %d fails with %s", k, strerror(fi_write_errno));
            CHECK_EQ_INT(cas_store_put(s, "IoFlow", data, sizeof data, CAS_FORMAT_V1, key, &stored, err, sizeof err),
                         CAS_E_IO);
            CHECK(strstr(err, "Could not store artifact 'IoFlow/data/") == err);
            CHECK(strstr(err, strerror(fi_write_errno)) != NULL);
            CHECK(fi_clean(root, "IoFlow", want));
        }
    }
    /* a short write is not an error: the loop writes the rest */
    fi_io_reset();
    fi_short = 1;
    CHECK_EQ_INT(cas_store_put(s, "IoFlow", data, sizeof data, CAS_FORMAT_V2, key, &stored, err, sizeof err), CAS_OK);
    CHECK(fi_write_count > 2);
    CHECK_EQ_INT(cas_store_verify(s, "IoFlow", key, NULL, err, sizeof err), CAS_OK);
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/IoFlow'", root);
        CHECK(system(cmd) == 0);
    }
    /* rename of the sidecar, then of the blob, fails */
    for (k = 1; k <= 2; k++) {
        fi_io_reset();
        fi_rename_fail_at = k;
        t_setnote("rename %d fails", k);
        CHECK_EQ_INT(cas_store_put(s, "IoFlow", data, sizeof data, CAS_FORMAT_V1, key, &stored, err, sizeof err),
                     CAS_E_IO);
        CHECK(fi_clean(root, "IoFlow", want));
    }
    /* fsync of the temp file fails */
    fi_io_reset();
    fi_fsync_fail_at = 1;
    CHECK_EQ_INT(cas_store_put(s, "IoFlow", data, sizeof data, CAS_FORMAT_V1, key, &stored, err, sizeof err), CAS_E_IO);
    CHECK(fi_clean(root, "IoFlow", want));
    /* the streaming put */
    snprintf(file, sizeof file, "%s/input", root);
    CHECK(t_write_file(file, data, sizeof data));
    for (k = 1; k <= 2; k++) {
        fi_io_reset();
        fi_write_fail_at = k, fi_write_errno = ENOSPC;
        fd = open(file, O_RDONLY);
        t_setnote("put_fd: write %d fails", k);
        CHECK_EQ_INT(cas_store_put_fd(s, "IoFlow", fd, CAS_FORMAT_V2, key, &stored, err, sizeof err), CAS_E_IO);
        close(fd);
        CHECK(fi_clean(root, "IoFlow", want));
    }
    /* migrate: a failed rewrite leaves the old blob whole and readable */
    fi_io_reset();
    CHECK_EQ_INT(cas_store_put(s, "IoFlow", data, sizeof data, CAS_FORMAT_V1, key, &stored, err, sizeof err), CAS_OK);
    for (k = 1; k <= 2; k++) {
        int changed, temps, blobs, metas, fmt;
        fi_io_reset();
        if (k == 1) fi_write_fail_at = 1;
        else fi_rename_fail_at = 1;
        t_setnote("migrate: %s fails", k == 1 ? "write" : "rename");
        CHECK_EQ_INT(cas_store_migrate(s, "IoFlow", key, CAS_FORMAT_V2, &changed, err, sizeof err), CAS_E_IO);
        CHECK(changed == 0);
        fi_io_reset();
        CHECK_EQ_INT(cas_store_verify(s, "IoFlow", key, NULL, err, sizeof err), CAS_OK);
        CHECK(cas_store_stat(s, "IoFlow", key, &fmt, NULL, err, sizeof err) == CAS_OK && fmt == CAS_FORMAT_V1);
        CHECK(ts_scan(root, "IoFlow", &temps, &blobs, &metas) == 0);
        CHECK(temps == 0 && blobs == 1 && metas == 1);
    }
    fi_io_reset();
    t_note[0] = 0;
    cas_store_close(s);
    ts_rmrf(root);
}

/* A real full disk: a 256 KiB tmpfs, when this process may mount one (root in CI). */
static void test_fault_tmpfs_enospc(void) {
    char dir[256], cmd[600], err[600], key[CAS_KEY_BUF];
    static unsigned char data[1 << 20];
    cas_store *s;
    int stored, temps, blobs, metas;
    CHECK(ts_mkroot(dir, sizeof dir) != NULL);
    if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", 0, "size=256k") != 0) {
        printf("    skipped: cannot mount a tmpfs here (%s)\n", geteuid() ? "not root" : strerror(errno));
        ts_rmrf(dir);
        return;
    }
    CHECK((s = ts_open(dir)) != NULL);
    t_fill(data, sizeof data, 0); /* incompressible: 1 MiB cannot fit */
    CHECK_EQ_INT(cas_store_put(s, "FullFlow", data, sizeof data, CAS_FORMAT_V1, key, &stored, err, sizeof err),
                 CAS_E_IO);
    CHECK(strstr(err, strerror(ENOSPC)) != NULL);
    CHECK(ts_scan(dir, "FullFlow", &temps, &blobs, &metas) == 0);
    CHECK(temps == 0 && blobs == 0 && metas == 0);
    /* and a small one still fits afterwards: the failed put freed its space */
    CHECK_EQ_INT(cas_store_put(s, "FullFlow", data, 50000, CAS_FORMAT_V1, key, &stored, err, sizeof err), CAS_OK);
    cas_store_close(s);
    snprintf(cmd, sizeof cmd, "umount '%s'", dir);
    CHECK(umount(dir) == 0 || system(cmd) == 0);
    ts_rmrf(dir);
}

static test_case fault_tests[] = {
    {"fault_alloc_codecs", test_fault_alloc_codecs},
    {"fault_alloc_store", test_fault_alloc_store},
    {"fault_io_write_rename_fsync", test_fault_io},
    {"fault_tmpfs_enospc", test_fault_tmpfs_enospc},
};
