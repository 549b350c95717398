/* The store: put/get, dedup, atomicity, hostile names, symlinks, tasks, migrate,
 * gc, batch, streams; 8 writer processes at once; SIGKILL during put and migrate.
 * Included by run_tests.c after the implementation. */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *ts_mkroot(char *buf, size_t cap) {
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, cap, "%s/cas-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(buf);
}

static void ts_rmrf(const char *path) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) printf("    (could not remove %s)\n", path);
}

static int ts_copy_tree(const char *from, const char *to) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", from, to);
    return system(cmd) == 0;
}

static int ts_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Scans <root>/<flow>/data: counts temp files and checks that every file in
 * data/<ab>/ is a key or a key's sidecar. Returns -1 on a stray file. */
static int ts_scan(const char *root, const char *flow, int *temps, int *blobs, int *metas) {
    char path[1200];
    DIR *d, *sd;
    struct dirent *de, *se;
    *temps = *blobs = *metas = 0;
    snprintf(path, sizeof path, "%s/%s/data", root, flow);
    if (!(d = opendir(path))) return 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && strstr(de->d_name, ".cas-tmp-")) {
            (*temps)++;
            continue;
        }
        if (strlen(de->d_name) != 2 || de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/data/%s", root, flow, de->d_name);
        if (!(sd = opendir(path))) continue;
        while ((se = readdir(sd)) != NULL) {
            size_t l = strlen(se->d_name);
            if (se->d_name[0] == '.') continue;
            if (cas_key_check(se->d_name, l, NULL) == CAS_OK) (*blobs)++;
            else if (l > 5 && !strcmp(se->d_name + l - 5, "_meta") && cas_key_check(se->d_name, l - 5, NULL) == CAS_OK)
                (*metas)++;
            else {
                printf("    stray file %s/%s\n", path, se->d_name);
                closedir(sd);
                closedir(d);
                return -1;
            }
        }
        closedir(sd);
    }
    closedir(d);
    return 0;
}

static cas_store *ts_open(const char *root) {
    cas_store *s = NULL;
    char err[512];
    if (cas_store_open(&s, root, NULL, err, sizeof err) != CAS_OK) printf("    open: %s\n", err);
    return s;
}

/* ---- basic put/get ---- */

static void test_store_put_get(void) {
    char root[256], key[CAS_KEY_BUF], key2[CAS_KEY_BUF], err[512], path[1200];
    static unsigned char data[300000];
    cas_store *s;
    void *out;
    size_t len, ml;
    int stored, f, temps, blobs, metas;
    unsigned char *meta;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    t_fill(data, sizeof data, 2);
    for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_RAW; f++) {
        char want_meta[CAS_META_MAX];
        data[0] = (unsigned char)f; /* a different key per format */
        t_setnote("format %s", cas_format_name(f));
        CHECK_EQ_INT(cas_store_put(s, "PutFlow", data, sizeof data, f, key, &stored, err, sizeof err), CAS_OK);
        CHECK(stored == 1);
        CHECK(cas_hash(CAS_HASH_SHA1, data, sizeof data, key2) == CAS_OK);
        CHECK_STR(key, key2);
        /* the sidecar is byte for byte Metaflow's */
        snprintf(path, sizeof path, "%s/PutFlow/data/%.2s/%s_meta", root, key, key);
        meta = t_read_file(path, &ml);
        CHECK(meta != NULL);
        cas_meta_json(f, want_meta, sizeof want_meta, NULL);
        CHECK_STR((char *)meta, want_meta);
        free(meta);
        CHECK_EQ_INT(cas_store_exists(s, "PutFlow", key), 1);
        CHECK_EQ_INT(cas_store_get(s, "PutFlow", key, &out, &len, err, sizeof err), CAS_OK);
        CHECK(len == sizeof data && !memcmp(out, data, len));
        cas_store_free_buffer(s, out);
        /* dedup: the same bytes write nothing */
        CHECK_EQ_INT(cas_store_put(s, "PutFlow", data, sizeof data, f, key2, &stored, err, sizeof err), CAS_OK);
        CHECK(stored == 0);
        CHECK_STR(key, key2);
        {
            int fmt;
            uint64_t sz;
            CHECK_EQ_INT(cas_store_stat(s, "PutFlow", key, &fmt, &sz, err, sizeof err), CAS_OK);
            CHECK_EQ_INT(fmt, f);
            CHECK(f != CAS_FORMAT_RAW || sz == sizeof data);
        }
    }
    /* raw blobs are readable directly: the file holds the bytes */
    snprintf(path, sizeof path, "%s/PutFlow/data/%.2s/%s", root, key, key);
    meta = t_read_file(path, &ml);
    CHECK(meta && ml == sizeof data && !memcmp(meta, data, ml));
    free(meta);
    CHECK(ts_scan(root, "PutFlow", &temps, &blobs, &metas) == 0);
    CHECK(temps == 0 && blobs == 3 && metas == 3);
    /* empty artifact */
    CHECK_EQ_INT(cas_store_put(s, "PutFlow", "", 0, 0, key, &stored, err, sizeof err), CAS_OK);
    CHECK_STR(key, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK_EQ_INT(cas_store_get(s, "PutFlow", key, &out, &len, err, sizeof err), CAS_OK);
    CHECK(len == 0);
    cas_store_free_buffer(s, out);
    /* not found, and the message names the blob */
    CHECK_EQ_INT(cas_store_get(s, "PutFlow", "0000000000000000000000000000000000000000", &out, &len, err, sizeof err),
                 CAS_E_NOTFOUND);
    {
        char want[600];
        snprintf(want, sizeof want, "No blob 'PutFlow/data/00/0000000000000000000000000000000000000000' in '%s'", root);
        CHECK_STR(err, want);
    }
    CHECK_EQ_INT(cas_store_exists(s, "PutFlow", "0000000000000000000000000000000000000000"), 0);
    CHECK_EQ_INT(cas_store_exists(s, "NoSuchFlow", key), 0);
    cas_store_close(s);
    ts_rmrf(root);
    t_note[0] = 0;
}

static void test_store_put_fd(void) {
    char root[256], key[CAS_KEY_BUF], key2[CAS_KEY_BUF], err[512], file[300];
    size_t n = (3 << 20) + 123, len;
    unsigned char *data = (unsigned char *)malloc(n);
    cas_store *s;
    void *out;
    int fd, stored, f, temps, blobs, metas;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    t_fill(data, n, 2);
    snprintf(file, sizeof file, "%s/input.bin", root);
    CHECK(t_write_file(file, data, n));
    for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_RAW; f++) {
        data[7] = (unsigned char)f;
        CHECK(t_write_file(file, data, n));
        fd = open(file, O_RDONLY);
        CHECK(fd >= 0);
        CHECK_EQ_INT(cas_store_put_fd(s, "FdFlow", fd, f, key, &stored, err, sizeof err), CAS_OK);
        close(fd);
        CHECK(stored == 1);
        cas_hash(CAS_HASH_SHA1, data, n, key2);
        CHECK_STR(key, key2);
        CHECK_EQ_INT(cas_store_get(s, "FdFlow", key, &out, &len, err, sizeof err), CAS_OK);
        CHECK(len == n && !memcmp(out, data, n));
        cas_store_free_buffer(s, out);
        /* streaming the same bytes again: dedup, and the temp file goes */
        fd = open(file, O_RDONLY);
        CHECK_EQ_INT(cas_store_put_fd(s, "FdFlow", fd, f, key, &stored, err, sizeof err), CAS_OK);
        close(fd);
        CHECK(stored == 0);
    }
    CHECK(ts_scan(root, "FdFlow", &temps, &blobs, &metas) == 0);
    CHECK(temps == 0 && blobs == 3 && metas == 3);
    cas_store_close(s);
    ts_rmrf(root);
    free(data);
}

static void test_store_verify_and_corruption(void) {
    char root[256], key[CAS_KEY_BUF], err[600], path[1200], want[900];
    static unsigned char data[100000];
    cas_store *s;
    void *out;
    size_t len, bl;
    unsigned char *blob;
    int stored;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    t_fill(data, sizeof data, 0); /* incompressible: LZ4 stores literals, a flipped bit stays silent */
    CHECK_EQ_INT(cas_store_put(s, "VFlow", data, sizeof data, CAS_FORMAT_V2, key, &stored, err, sizeof err), CAS_OK);
    CHECK_EQ_INT(cas_store_verify(s, "VFlow", key, NULL, err, sizeof err), CAS_OK);
    snprintf(path, sizeof path, "%s/VFlow/data/%.2s/%s", root, key, key);
    blob = t_read_file(path, &bl);
    CHECK(blob != NULL);
    blob[bl / 2] ^= 0x40; /* no checksum in a v2 frame: only the key catches this */
    CHECK(t_write_file(path, blob, bl));
    free(blob);
    CHECK_EQ_INT(cas_store_get(s, "VFlow", key, &out, &len, err, sizeof err), CAS_OK); /* Metaflow would not know */
    CHECK(len == sizeof data && memcmp(out, data, len) != 0);
    cas_store_free_buffer(s, out);
    CHECK(cas_store_verify(s, "VFlow", key, NULL, err, sizeof err) == CAS_E_HASH);
    CHECK(strstr(err, "content hashes to ") != NULL && strstr(err, key) != NULL);
    snprintf(want, sizeof want, "Could not unpack artifact 'VFlow/data/%.2s/%s': content hashes to ", key, key);
    CHECK(!strncmp(err, want, strlen(want)));
    CHECK(cas_store_set_param(s, CAS_PARAM_VERIFY, 1) == CAS_OK);
    CHECK_EQ_INT(cas_store_get(s, "VFlow", key, &out, &len, err, sizeof err), CAS_E_HASH);
    CHECK(out == NULL);
    cas_store_close(s);
    ts_rmrf(root);
}

static void test_store_hostile_names(void) {
    static const char *bad_flows[] = {"", ".", "..", "../x", "a/b", "/abs", ".hidden", "a b", "a\\b", "x\n", NULL};
    static const char *bad_specs[] = {"F/1/s",    "F/1/s/1/x", "F/../s/1",    "/F/1/s/1", "F//s/1",
                                      "F/1/s/1/", "F/1/./1",   "../../etc/1", "",         NULL};
    static const char *bad_keys[] = {"",
                                     "abc",
                                     "../../../../../../../../../../../../../../../../../../x",
                                     "A9993E364706816ABA3E25717850C26C9CD0D89D",
                                     "a9993e364706816aba3e25717850c26c9cd0d89",
                                     "a9993e364706816aba3e25717850c26c9cd0d89d0",
                                     "g9993e364706816aba3e25717850c26c9cd0d89d",
                                     NULL};
    char root[256], key[CAS_KEY_BUF], err[512], longname[400];
    cas_store *s;
    cas_task *t;
    void *out;
    size_t len;
    int i, temps, blobs, metas;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    for (i = 0; bad_flows[i]; i++) {
        t_setnote("flow '%s'", bad_flows[i]);
        CHECK_EQ_INT(cas_name_check(bad_flows[i]), CAS_E_NAME);
        CHECK_EQ_INT(cas_store_put(s, bad_flows[i], "x", 1, 0, key, NULL, err, sizeof err), CAS_E_NAME);
        CHECK_EQ_INT(cas_store_exists(s, bad_flows[i], "a9993e364706816aba3e25717850c26c9cd0d89d"), CAS_E_NAME);
    }
    memset(longname, 'a', 300), longname[300] = 0;
    CHECK_EQ_INT(cas_name_check(longname), CAS_E_NAME);
    longname[255] = 0;
    CHECK_EQ_INT(cas_name_check(longname), CAS_OK);
    /* a run's, step's or task's folder: a name, but not a flow's data or a run's metadata */
    CHECK_EQ_INT(cas_part_check("1795238741768493"), CAS_OK);
    CHECK_EQ_INT(cas_part_check("train"), CAS_OK);
    CHECK_EQ_INT(cas_part_check("data"), CAS_E_NAME);
    CHECK_EQ_INT(cas_part_check("_meta"), CAS_E_NAME);
    CHECK_EQ_INT(cas_part_check(".hidden"), CAS_E_NAME);
    CHECK_EQ_INT(cas_part_check(NULL), CAS_E_NAME);
    for (i = 0; bad_specs[i]; i++) {
        t_setnote("pathspec '%s'", bad_specs[i]);
        CHECK_EQ_INT(cas_pathspec_check(bad_specs[i]), CAS_E_NAME);
        CHECK_EQ_INT(cas_task_open(s, bad_specs[i], &t, err, sizeof err), CAS_E_NAME);
    }
    for (i = 0; bad_keys[i]; i++) {
        t_setnote("key '%s'", bad_keys[i]);
        CHECK_EQ_INT(cas_store_get(s, "Flow", bad_keys[i], &out, &len, err, sizeof err), CAS_E_KEY);
        CHECK_EQ_INT(cas_store_exists(s, "Flow", bad_keys[i]), CAS_E_KEY);
        CHECK_EQ_INT(cas_store_verify(s, "Flow", bad_keys[i], NULL, err, sizeof err), CAS_E_KEY);
    }
    t_note[0] = 0;
    CHECK_EQ_INT(cas_pathspec_check("FixtureFlow/1795238722606761/start/1"), CAS_OK);
    CHECK_EQ_INT(cas_pathspec_check("Flow/argo-abc.def_1/step/t-123"), CAS_OK);
    /* nothing was created anywhere */
    {
        DIR *d = opendir(root);
        struct dirent *de;
        int entries = 0;
        CHECK(d != NULL);
        while ((de = readdir(d)) != NULL) entries += de->d_name[0] != '.';
        closedir(d);
        CHECK_EQ_INT(entries, 0);
    }
    (void)temps, (void)blobs, (void)metas;
    cas_store_close(s);
    ts_rmrf(root);
}

/* A symlink inside the store is never followed, whichever level it is at. */
static void test_store_symlinks(void) {
    char root[256], outside[256], path[1200], target[1200], key[CAS_KEY_BUF], err[600];
    cas_store *s;
    void *out;
    size_t len;
    int stored;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK(ts_mkroot(outside, sizeof outside) != NULL);
    CHECK((s = ts_open(outside)) != NULL);
    CHECK_EQ_INT(cas_store_put(s, "Flow", "secret", 6, 0, key, &stored, err, sizeof err), CAS_OK);
    cas_store_close(s);
    CHECK((s = ts_open(root)) != NULL);
    /* flow directory is a symlink out of the root */
    snprintf(target, sizeof target, "%s/Flow", outside);
    snprintf(path, sizeof path, "%s/Flow", root);
    CHECK(symlink(target, path) == 0);
    CHECK_EQ_INT(cas_store_exists(s, "Flow", key), 0);
    CHECK_EQ_INT(cas_store_get(s, "Flow", key, &out, &len, err, sizeof err), CAS_E_IO);
    CHECK(strstr(err, "symlink") != NULL);
    CHECK(cas_store_put(s, "Flow", "other", 5, 0, key, &stored, err, sizeof err) == CAS_E_IO);
    unlink(path);
    /* the blob itself is a symlink */
    CHECK_EQ_INT(cas_store_put(s, "Flow", "mine", 4, 0, key, &stored, err, sizeof err), CAS_OK);
    snprintf(path, sizeof path, "%s/Flow/data/%.2s/%s", root, key, key);
    unlink(path);
    {
        char okey[CAS_KEY_BUF];
        cas_hash(CAS_HASH_SHA1, "secret", 6, okey);
        snprintf(target, sizeof target, "%s/Flow/data/%.2s/%s", outside, okey, okey);
    }
    CHECK(symlink(target, path) == 0);
    CHECK(cas_store_get(s, "Flow", key, &out, &len, err, sizeof err) == CAS_E_IO);
    unlink(path);
    /* the sidecar is a symlink (to the outside secret's sidecar) */
    CHECK_EQ_INT(cas_store_put(s, "Flow", "mine", 4, 0, key, &stored, err, sizeof err), CAS_OK);
    {
        char mpath[1300];
        snprintf(mpath, sizeof mpath, "%s_meta", path);
        CHECK(unlink(mpath) == 0);
        snprintf(mpath, sizeof mpath, "%s_meta", target);
        snprintf(path + strlen(path), sizeof path - strlen(path), "_meta");
        CHECK(symlink(mpath, path) == 0);
        CHECK(cas_store_get(s, "Flow", key, &out, &len, err, sizeof err) == CAS_E_IO);
        t_setnote("%s", err);
        CHECK(strstr(err, key) != NULL);
    }
    /* the data/<ab> folder is a symlink to the outside store's */
    {
        char okey[CAS_KEY_BUF];
        cas_hash(CAS_HASH_SHA1, "secret", 6, okey);
        snprintf(path, sizeof path, "%s/Flow/data/%.2s", root, okey);
        ts_rmrf(path); /* absent unless the two keys share a prefix */
        snprintf(target, sizeof target, "%s/Flow/data/%.2s", outside, okey);
        CHECK(symlink(target, path) == 0);
        CHECK_EQ_INT(cas_store_exists(s, "Flow", okey), 0);
        CHECK(cas_store_get(s, "Flow", okey, &out, &len, err, sizeof err) == CAS_E_IO);
        CHECK(cas_store_put(s, "Flow", "secret", 6, 0, okey, &stored, err, sizeof err) == CAS_E_IO);
        t_note[0] = 0;
    }
    cas_store_close(s);
    ts_rmrf(root);
    ts_rmrf(outside);
}

/* The datastore's other objects: by name, with or without metadata, create or
 * replace; names that could leave the root refused; a symlink never followed. */
static void test_store_files(void) {
    char root[256], outside[256], path[1200], err[600], *meta;
    cas_store *s;
    void *out;
    size_t len;
    int stored;
    struct stat st;
    static const char *const bad[] = {"", "/abs", "a//b", "../x", "a/../b", "a/.", "a/b/", "a\nb", "a\x7f"};
    size_t i;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK(ts_mkroot(outside, sizeof outside) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    CHECK_EQ_INT(cas_store_file_exists(s, "F/1/start/2/0.data.json", err, sizeof err), 0);
    CHECK_EQ_INT(cas_store_file_put(s, "F/1/start/2/0.data.json", "{}", 2, NULL, 1, &stored, err, sizeof err), CAS_OK);
    CHECK(stored == 1);
    snprintf(path, sizeof path, "%s/F/1/start/2/0.data.json_meta", root);
    CHECK(stat(path, &st) < 0 && errno == ENOENT); /* no metadata: no sidecar, as Metaflow's LocalStorage */
    CHECK_EQ_INT(cas_store_file_exists(s, "F/1/start/2/0.data.json", err, sizeof err), 1);
    CHECK_EQ_INT(cas_store_file_put(s, "F/1/start/2/0.data.json", "{1}", 3, NULL, 0, &stored, err, sizeof err), CAS_OK);
    CHECK(stored == 0); /* kept */
    CHECK_EQ_INT(cas_store_file_get(s, "F/1/start/2/0.data.json", 0, &out, &len, &meta, err, sizeof err), CAS_OK);
    CHECK(len == 2 && !memcmp(out, "{}", 2) && meta == NULL);
    cas_store_free_buffer(s, out);
    CHECK_EQ_INT(cas_store_file_put(s, "F/1/start/2/x.log", "log", 3, "{\"a\": 1}", 1, &stored, err, sizeof err),
                 CAS_OK);
    CHECK_EQ_INT(cas_store_file_get(s, "F/1/start/2/x.log", 0, &out, &len, &meta, err, sizeof err), CAS_OK);
    CHECK(len == 3 && meta && !strcmp(meta, "{\"a\": 1}"));
    cas_store_free_buffer(s, out);
    cas_store_free_buffer(s, meta);
    CHECK_EQ_INT(cas_store_file_get(s, "F/1/start/2/x.log", 2, &out, &len, NULL, err, sizeof err), CAS_E_LIMIT);
    CHECK(strstr(err, "over") != NULL);
    CHECK_EQ_INT(cas_store_file_get(s, "F/9", 0, &out, &len, NULL, err, sizeof err), CAS_E_NOTFOUND);
    CHECK(strstr(err, "No object 'F/9'") != NULL);
    CHECK_EQ_INT(cas_store_file_put(s, "F/m", "", 0, "a\nb", 1, &stored, err, sizeof err), CAS_E_ARG);
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        t_setnote("name %zu", i);
        CHECK_EQ_INT(cas_store_file_exists(s, bad[i], err, sizeof err), CAS_E_NAME);
        CHECK_EQ_INT(cas_store_file_get(s, bad[i], 0, &out, &len, NULL, err, sizeof err), CAS_E_NAME);
        CHECK_EQ_INT(cas_store_file_put(s, bad[i], "x", 1, NULL, 1, &stored, err, sizeof err), CAS_E_NAME);
        CHECK(!strpbrk(err, "\n\x7f")); /* one line, whatever the name held */
    }
    t_note[0] = 0;
    { /* walk: every object below a folder in one listing, names relative to it; remove:
       * an object with its sidecar, then the emptied folders (a pruned run's) */
        cas_file_entry *e;
        size_t n;
        CHECK_EQ_INT(cas_store_file_put(s, "F/1/_meta/_self.json", "{}", 2, NULL, 1, &stored, err, sizeof err), CAS_OK);
        CHECK_EQ_INT(cas_store_file_walk(s, "F/1", &e, &n, err, sizeof err), CAS_OK);
        CHECK(n == 3 && !strcmp(e[0].name, "_meta/_self.json") && !strcmp(e[1].name, "start/2/0.data.json") &&
              !strcmp(e[2].name, "start/2/x.log") && e[2].size == 3 && !e[2].is_dir);
        cas_store_free_buffer(s, e);
        CHECK_EQ_INT(cas_store_file_walk(s, "F/7", &e, &n, err, sizeof err), CAS_E_NOTFOUND);
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/start/2/x.log", err, sizeof err), 1);
        snprintf(path, sizeof path, "%s/F/1/start/2/x.log_meta", root);
        CHECK(stat(path, &st) < 0 && errno == ENOENT); /* its sidecar too */
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/start/2/x.log", err, sizeof err), 0);
        CHECK(cas_store_file_remove(s, "F/1/start/2", err, sizeof err) < 0); /* not empty: kept */
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/start/2/0.data.json", err, sizeof err), 1);
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/start/2", err, sizeof err), 1);
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/start", err, sizeof err), 1);
        CHECK_EQ_INT(cas_store_file_remove(s, "../x", err, sizeof err), CAS_E_NAME);
        /* a sidecar alone goes only when its object is gone (gc's orphans; never a put's) */
        CHECK_EQ_INT(cas_store_file_put(s, "F/1/y.log", "y", 1, "{\"a\": 2}", 1, &stored, err, sizeof err), CAS_OK);
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/y.log_meta", err, sizeof err), 0);
        snprintf(path, sizeof path, "%s/F/1/y.log_meta", root);
        CHECK(stat(path, &st) == 0);
        snprintf(path, sizeof path, "%s/F/1/y.log", root);
        CHECK(unlink(path) == 0);
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/y.log_meta", err, sizeof err), 1);
        snprintf(path, sizeof path, "%s/F/1/_meta", root); /* an emptied folder goes */
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/_meta/_self.json", err, sizeof err), 1);
        CHECK_EQ_INT(cas_store_file_walk(s, "F/1", &e, &n, err, sizeof err), CAS_OK);
        CHECK(n == 0); /* folders only (the emptied _meta): no objects */
        cas_store_free_buffer(s, e);
        CHECK_EQ_INT(cas_store_file_remove(s, "F/1/_meta", err, sizeof err), 1);
        CHECK(stat(path, &st) < 0);
        /* a link below: the walk fails naming it; a flow's blob listing skips it */
        CHECK_EQ_INT(cas_store_file_put(s, "F/data/ab/x", "x", 1, NULL, 1, &stored, err, sizeof err), CAS_OK);
        snprintf(path, sizeof path, "%s/F/data/ab/link", root);
        CHECK(symlink("/etc", path) == 0);
        CHECK(cas_store_file_walk(s, "F/data", &e, &n, err, sizeof err) < 0);
        CHECK(strstr(err, "never followed below it: 'ab/link'") != NULL);
        CHECK_EQ_INT(cas_store_blob_list(s, "F", &e, &n, err, sizeof err), CAS_OK);
        CHECK(n == 1 && !strcmp(e[0].name, "ab/x"));
        cas_store_free_buffer(s, e);
    }
    /* a folder on the way is a symlink out of the root: not followed, either way */
    snprintf(path, sizeof path, "%s/G", root);
    CHECK(symlink(outside, path) == 0);
    CHECK(cas_store_file_put(s, "G/secret", "x", 1, NULL, 1, &stored, err, sizeof err) < 0);
    snprintf(path, sizeof path, "%s/secret", outside);
    CHECK(stat(path, &st) < 0);
    CHECK(cas_store_file_get(s, "G/x", 0, &out, &len, NULL, err, sizeof err) < 0);
    cas_store_close(s);
    ts_rmrf(root);
    ts_rmrf(outside);
}

/* ---- tasks ---- */

static void test_task_fixtures(void) {
    static const char *sets[] = {"v1", "v2", "mixed"};
    int si;
    for (si = 0; si < 3; si++) {
        char mpath[600], root[600], err[600];
        unsigned char *text;
        size_t len, i, tok;
        cas__json j;
        cas_store *s;
        snprintf(mpath, sizeof mpath, "%s/%s/manifest.json", t_fixtures(), sets[si]);
        snprintf(root, sizeof root, "%s/%s/.metaflow", t_fixtures(), sets[si]);
        CHECK((text = t_read_file(mpath, &len)) != NULL);
        CHECK(cas__json_parse(&j, (const char *)text, len, NULL) == CAS_OK);
        CHECK((s = ts_open(root)) != NULL);
        for (i = 0, tok = 1; i < j.t[0].count; i++, tok = j.t[tok].next) {
            char spec[300], name[256], key[CAS_KEY_BUF], enc[64];
            const char *k, *e;
            int64_t size, want_size = 0, attempt = -1;
            size_t idx;
            cas_task *t;
            cas__json_str(&j, cas__json_get(&j, tok, "pathspec"), spec, sizeof spec);
            cas__json_str(&j, cas__json_get(&j, tok, "name"), name, sizeof name);
            cas__json_str(&j, cas__json_get(&j, tok, "key"), key, sizeof key);
            cas__json_str(&j, cas__json_get(&j, tok, "encoding"), enc, sizeof enc);
            cas__json_int(&j, cas__json_get(&j, tok, "size"), &want_size);
            cas__json_int(&j, cas__json_get(&j, tok, "attempt"), &attempt);
            t_setnote("%s: %s/%s", sets[si], spec, name);
            if (cas_task_open(s, spec, &t, err, sizeof err) != CAS_OK) CHECK_STR(err, "");
            CHECK_EQ_INT(cas_task_attempt(t), attempt);
            CHECK_EQ_INT(cas_task_find(t, name, &idx), CAS_OK);
            CHECK(cas_task_artifact(t, idx, NULL, &k, &size, &e, NULL) == CAS_OK);
            CHECK_STR(k, key);
            CHECK_STR(e, enc);
            CHECK_EQ_INT(size, want_size);
            CHECK_STR(cas_task_flow(t), "FixtureFlow");
            {
                void *out;
                size_t ol;
                char got[CAS_KEY_BUF];
                CHECK_EQ_INT(cas_store_get(s, cas_task_flow(t), k, &out, &ol, err, sizeof err), CAS_OK);
                CHECK_EQ_INT(ol, want_size);
                cas_hash(CAS_HASH_SHA1, out, ol, got);
                CHECK_STR(got, key);
                cas_store_free_buffer(s, out);
            }
            CHECK_EQ_INT(cas_task_find(t, "no_such_artifact", &idx), CAS_E_NOTFOUND);
            cas_task_close(t);
        }
        cas_store_close(s);
        cas__json_free(&j);
        free(text);
    }
    t_note[0] = 0;
}

static int ts_write(const char *root, const char *rel, const char *text) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return t_write_file(path, text, strlen(text));
}

/* A flow's runs: newest first by _self.json's ts_epoch, else by the objects of the
 * _parameters task; finished by the end step's done attempt; a _self.json that is
 * not what Metaflow writes gives nothing, never a failure. */
static void test_store_runs(void) {
    char root[256], err[600], cmd[800];
    cas_store *s;
    cas_run_info *r;
    size_t n;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p F/data F/1/_meta F/1/_parameters/1 F/1/end/5 F/2/_meta "
             "F/2/_parameters/1 F/3/_meta F/3/end/9 F/_meta && touch -d @1500000000 F/1/_parameters/1/0.attempt.json "
             "&& touch -d @1600000000 F/2/_parameters/1/0.attempt.json",
             root);
    CHECK(system(cmd) == 0);
    CHECK(ts_write(root, "F/1/end/5/0.attempt.json", "{}"));
    CHECK(ts_write(root, "F/1/end/5/0.DONE.lock", ""));
    CHECK(ts_write(root, "F/1/_meta/_self.json",
                   "{\"ts_epoch\": 1700000000999, \"user_name\": \"u\\u00e9\", "
                   "\"tags\": [\"a\",\n  \"b\"], \"system_tags\": []}"));
    CHECK(ts_write(root, "F/2/_meta/_self.json", "{\"ts_epoch\": \"soon\", \"user_name\": 7, \"tags\": {}}"));
    CHECK(ts_write(root, "F/3/_meta/_self.json", "[1, 2"));
    CHECK(ts_write(root, "F/3/end/9/0.DONE.lock", "")); /* no attempt file: not done */
    CHECK((s = ts_open(root)) != NULL);
    CHECK_EQ_INT(cas_store_runs(s, "F", &r, &n, err, sizeof err), CAS_OK);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(!strcmp(r[0].id, "1") && r[0].started == 1700000000 && r[0].finished && !strcmp(r[0].user, "u\xc3\xa9"));
        CHECK(!strcmp(r[0].tags, "[\"a\",   \"b\"]") && !strcmp(r[0].system_tags, "[]")); /* one line */
        CHECK(!strcmp(r[1].id, "2") && r[1].started == 1600000000 && !r[1].finished && !*r[1].user && !*r[1].tags);
        CHECK(!strcmp(r[2].id, "3") && r[2].started == 0 && !r[2].finished);
    }
    cas_store_free_buffer(s, r);
    CHECK_EQ_INT(cas_store_runs(s, "G", &r, &n, err, sizeof err), CAS_E_NOTFOUND);
    CHECK_EQ_INT(cas_store_runs(s, "../F", &r, &n, err, sizeof err), CAS_E_NAME);
    cas_store_close(s);
    ts_rmrf(root);
}

static void test_task_attempts(void) {
    char root[256], err[600];
    cas_store *s;
    cas_task *t;
    const char *name, *key, *enc;
    int64_t size;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/F/7/s/3'", root);
        CHECK(system(cmd) == 0);
    }
    CHECK((s = ts_open(root)) != NULL);
    /* no attempt at all */
    CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_E_NOTFOUND);
    CHECK_STR(err, "No completed attempts of the task was found for task 'F/7/s/3'");
    /* attempt 0 finished, attempt 1 started but not done: Metaflow takes 1 and refuses */
    CHECK(ts_write(root, "F/7/s/3/0.attempt.json", "{}"));
    CHECK(ts_write(root, "F/7/s/3/0.DONE.lock", ""));
    CHECK(
        ts_write(root, "F/7/s/3/0.data.json",
                 "{\"objects\": {\"a\": \"a9993e364706816aba3e25717850c26c9cd0d89d\"}, \"info\": {\"a\": {\"size\": 3, "
                 "\"type\": \"<class 'str'>\", \"encoding\": \"gzip+pickle-v4\"}}}"));
    CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_OK);
    CHECK_EQ_INT(cas_task_attempt(t), 0);
    CHECK(cas_task_artifact(t, 0, &name, &key, &size, &enc, NULL) == CAS_OK);
    CHECK_STR(name, "a");
    CHECK_STR(enc, "gzip+pickle-v4");
    CHECK_EQ_INT(size, 3);
    cas_task_close(t);
    CHECK(ts_write(root, "F/7/s/3/1.attempt.json", "{}"));
    CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_E_NOTFOUND);
    /* attempt 1 done; attempt 3 exists after a gap and is ignored, as Metaflow's loop stops at the gap */
    CHECK(ts_write(root, "F/7/s/3/1.DONE.lock", ""));
    CHECK(ts_write(root, "F/7/s/3/1.data.json",
                   "{\"objects\": {\"b\\u00e9\": \"da39a3ee5e6b4b0d3255bfef95601890afd80709\", \"old\": "
                   "\"da39a3ee5e6b4b0d3255bfef95601890afd80709\"}, \"info\": {\"b\\u00e9\": {\"size\": 0}}}"));
    CHECK(ts_write(root, "F/7/s/3/3.attempt.json", "{}"));
    CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_OK);
    CHECK_EQ_INT(cas_task_attempt(t), 1);
    CHECK_EQ_INT(cas_task_count(t), 2);
    CHECK(cas_task_artifact(t, 0, &name, &key, &size, &enc, NULL) == CAS_OK);
    CHECK_STR(name, "b\xc3\xa9");
    CHECK_EQ_INT(size, 0);
    CHECK(cas_task_artifact(t, 1, &name, &key, &size, &enc, NULL) == CAS_OK);
    CHECK_STR(enc, "gzip+pickle-v2"); /* no info: Metaflow's old default */
    CHECK_EQ_INT(size, -1);
    cas_task_close(t);
    /* found by fuzzing: names repeated in "objects" (Python keeps the first
     * position and the last value), long info strings repeated, info not a map */
    {
        char big[20000], *p = big;
        int i;
        p += sprintf(p, "{\"objects\": {");
        for (i = 0; i < 40; i++) p += sprintf(p, "%s\"x\": \"%040d\"", i ? ", " : "", i);
        p += sprintf(p, ", \"y\": \"a9993e364706816aba3e25717850c26c9cd0d89d\"}, \"info\": {\"x\": {\"encoding\": \"");
        for (i = 0; i < 300; i++) *p++ = 'e';
        p += sprintf(p, "\", \"size\": 7, \"type\": \"");
        for (i = 0; i < 300; i++) *p++ = 't';
        p += sprintf(p, "\"}}}");
        CHECK(ts_write(root, "F/7/s/3/1.data.json", big));
        CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_OK);
        CHECK_EQ_INT(cas_task_count(t), 2);
        CHECK(cas_task_artifact(t, 0, &name, &key, &size, &enc, NULL) == CAS_OK);
        CHECK_STR(name, "x");
        CHECK_STR(key, "0000000000000000000000000000000000000039"); /* the last value */
        CHECK_EQ_INT(size, 7);
        CHECK_EQ_INT(strlen(enc), 300);
        CHECK(cas_task_artifact(t, 1, &name, NULL, NULL, NULL, NULL) == CAS_OK);
        CHECK_STR(name, "y");
        cas_task_close(t);
        CHECK(ts_write(root, "F/7/s/3/1.data.json",
                       "{\"objects\": {\"a\": \"a9993e364706816aba3e25717850c26c9cd0d89d\"}, \"info\": [[\"a\", 1]]}"));
        CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_OK);
        CHECK(cas_task_artifact(t, 0, &name, &key, &size, &enc, NULL) == CAS_OK);
        CHECK_EQ_INT(size, -1);
        cas_task_close(t);
    }
    /* malformed data.json */
    CHECK(ts_write(root, "F/7/s/3/1.data.json", "{\"objects\": {\"a\": "));
    CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_E_JSON);
    CHECK(strstr(err, "Malformed 'F/7/s/3/1.data.json'") == err);
    CHECK(ts_write(root, "F/7/s/3/1.data.json", "[1, 2]"));
    CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_E_JSON);
    CHECK(ts_write(root, "F/7/s/3/1.data.json", "{\"objects\": []}"));
    CHECK_EQ_INT(cas_task_open(s, "F/7/s/3", &t, err, sizeof err), CAS_E_JSON);
    cas_store_close(s);
    ts_rmrf(root);
}

/* ---- migrate ---- */

/* Every blob's bytes agree with its sidecar, and every blob verifies. */
static int ts_store_consistent(cas_store *s, const char *root, const char *flow, int want_format) {
    char *keys, err[600], path[1200];
    size_t n, i;
    int ok = 1;
    if (cas_store_keys(s, flow, &keys, &n, err, sizeof err) != CAS_OK) return 0;
    for (i = 0; i < n; i++) {
        const char *k = keys + i * CAS_KEY_BUF;
        int fmt = 0, expect;
        unsigned char head[4] = {0};
        FILE *f;
        size_t hl = 0;
        if (cas_store_verify(s, flow, k, NULL, err, sizeof err) != CAS_OK) {
            printf("    %s\n", err);
            ok = 0;
            continue;
        }
        cas_store_stat(s, flow, k, &fmt, NULL, err, sizeof err);
        snprintf(path, sizeof path, "%s/%s/data/%.2s/%s", root, flow, k, k);
        if ((f = fopen(path, "rb"))) {
            hl = fread(head, 1, 4, f);
            fclose(f);
        }
        /* want_format 0: any format, as long as the sidecar matches the bytes */
        expect = want_format ? want_format : fmt == CAS_FORMAT_LEGACY ? CAS_FORMAT_V1 : fmt;
        if (fmt == CAS_FORMAT_RAW || (fmt == CAS_FORMAT_LEGACY && expect == CAS_FORMAT_V1)) continue;
        if ((want_format && fmt != want_format) ||
            cas_sniff(head, hl) != (expect == CAS_FORMAT_V1 ? CAS_SNIFF_GZIP : CAS_SNIFF_LZ4)) {
            if (!(expect == CAS_FORMAT_V1 && hl == 0 && fmt == CAS_FORMAT_V1)) {
                printf("    %s: sidecar %s, bytes %s\n", k, cas_format_name(fmt), cas_sniff_name(cas_sniff(head, hl)));
                ok = 0;
            }
        }
    }
    cas_store_free_buffer(s, keys);
    return ok;
}

static void test_migrate(void) {
    char root[256], store[400], err[600], *keys, path[1200];
    cas_store *s;
    size_t n, i;
    int changed, round;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    snprintf(store, sizeof store, "%s/.metaflow", root);
    {
        char from[600];
        snprintf(from, sizeof from, "%s/mixed/.metaflow", t_fixtures());
        CHECK(ts_copy_tree(from, root));
        snprintf(from, sizeof from, "%s/v1/.metaflow/EdgeFlow", t_fixtures());
        CHECK(ts_copy_tree(from, store));
    }
    CHECK((s = ts_open(store)) != NULL);
    for (round = 0; round < 4; round++) {
        const char *flows[2] = {"FixtureFlow", "EdgeFlow"};
        int fl, target = round % 2 ? CAS_FORMAT_V1 : CAS_FORMAT_V2;
        for (fl = 0; fl < 2; fl++) {
            CHECK(cas_store_keys(s, flows[fl], &keys, &n, err, sizeof err) == CAS_OK);
            CHECK(n > 0);
            for (i = 0; i < n; i++) {
                t_setnote("round %d %s %s", round, flows[fl], keys + i * CAS_KEY_BUF);
                if (cas_store_migrate(s, flows[fl], keys + i * CAS_KEY_BUF, target, &changed, err, sizeof err) !=
                    CAS_OK)
                    CHECK_STR(err, "");
            }
            cas_store_free_buffer(s, keys);
            CHECK(ts_store_consistent(s, store, flows[fl], target));
        }
    }
    t_note[0] = 0;
    /* the raw blob stayed raw, the legacy blob readable */
    {
        int fmt;
        CHECK_EQ_INT(
            cas_store_stat(s, "EdgeFlow", "d65e5380b83466371dfa86a5f223576ea016d238", &fmt, NULL, err, sizeof err),
            CAS_OK);
        CHECK_EQ_INT(fmt, CAS_FORMAT_RAW);
    }
    /* an interrupted migrate: v2 bytes under a v1 sidecar. Reads fail (never wrong
     * bytes); migrating again repairs it from the bytes. */
    CHECK(cas_store_keys(s, "FixtureFlow", &keys, &n, err, sizeof err) == CAS_OK);
    {
        const char *k = keys; /* the store is v1 now: put v2 bytes in place of one blob */
        void *out;
        size_t len, bl;
        unsigned char *blob, *v2;
        char key[CAS_KEY_BUF];
        CHECK_EQ_INT(cas_store_get(s, "FixtureFlow", k, &out, &len, err, sizeof err), CAS_OK);
        v2 = (unsigned char *)malloc(cas_pack_bound(CAS_FORMAT_V2, len));
        {
            cas_writer *w;
            cas_writer_create(&w, CAS_FORMAT_V2, NULL);
            CHECK(cas_pack(w, out, len, v2, cas_pack_bound(CAS_FORMAT_V2, len), &bl, key) == CAS_DONE);
            cas_writer_free(w);
        }
        CHECK_STR(key, k);
        snprintf(path, sizeof path, "%s/FixtureFlow/data/%.2s/%s", store, k, k);
        CHECK(t_write_file(path, v2, bl));
        cas_store_free_buffer(s, out);
        CHECK_EQ_INT(cas_store_get(s, "FixtureFlow", k, &out, &len, err, sizeof err), CAS_E_MISMATCH);
        CHECK(strstr(err, "metadata says cas_version 1 (gzip) but the bytes are an LZ4 frame") != NULL);
        CHECK_EQ_INT(cas_store_migrate(s, "FixtureFlow", k, CAS_FORMAT_V1, &changed, err, sizeof err), CAS_OK);
        CHECK(changed == 1);
        CHECK(ts_store_consistent(s, store, "FixtureFlow", CAS_FORMAT_V1));
        CHECK(t_write_file(path, v2, bl)); /* again, and repair towards v2: only the sidecar changes */
        CHECK_EQ_INT(cas_store_migrate(s, "FixtureFlow", k, CAS_FORMAT_V2, &changed, err, sizeof err), CAS_OK);
        CHECK(changed == 1);
        blob = t_read_file(path, &len);
        CHECK(blob && len == bl && !memcmp(blob, v2, bl));
        free(blob), free(v2);
    }
    cas_store_free_buffer(s, keys);
    {
        int temps, blobs, metas;
        CHECK(ts_scan(store, "FixtureFlow", &temps, &blobs, &metas) == 0);
        CHECK_EQ_INT(temps, 0);
    }
    cas_store_close(s);
    ts_rmrf(root);
}

/* ---- gc ---- */

static void test_gc(void) {
    char root[256], path[1200], err[600], key[CAS_KEY_BUF];
    cas_store *s;
    uint64_t removed = 0;
    pid_t dead;
    int stored, temps, blobs, metas;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    CHECK_EQ_INT(cas_store_put(s, "GcFlow", "x", 1, 0, key, &stored, err, sizeof err), CAS_OK);
    dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(path, sizeof path, "%s/GcFlow/data/.%s.cas-tmp-%ld-1-abc", root, key, (long)dead);
    CHECK(t_write_file(path, "half", 4));
    snprintf(path, sizeof path, "%s/GcFlow/data/.%s_meta.cas-tmp-%ld-2-abc", root, key, (long)dead);
    CHECK(t_write_file(path, "{", 1));
    snprintf(path, sizeof path, "%s/GcFlow/data/.stream.cas-tmp-%ld-3-abc", root, (long)getpid());
    CHECK(t_write_file(path, "in progress", 11)); /* a live writer's: kept */
    CHECK_EQ_INT(cas_store_gc(s, &removed, err, sizeof err), CAS_OK);
    CHECK_EQ_INT(removed, 2);
    CHECK(ts_scan(root, "GcFlow", &temps, &blobs, &metas) == 0);
    CHECK(temps == 1 && blobs == 1 && metas == 1);
    cas_store_close(s);
    ts_rmrf(root);
}

/* ---- batch and threads ---- */

static void test_batch(void) {
    char root[256], err[600];
    cas_store *s;
    enum { N = 64 };
    unsigned char *bufs[N];
    const void *data[N];
    size_t sizes[N], lens[N], i;
    char keys[N * CAS_KEY_BUF];
    const char *kp[N];
    void *outs[N];
    int status[N];
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    for (i = 0; i < N; i++) {
        sizes[i] = (i * 7919) % 300000;
        bufs[i] = (unsigned char *)malloc(sizes[i] + 1);
        t_fill(bufs[i], sizes[i], (int)(i % 3));
        if (sizes[i]) bufs[i][0] = (unsigned char)i;
        data[i] = bufs[i];
    }
    CHECK_EQ_INT(cas_store_put_batch(s, "BatchFlow", N, data, sizes, CAS_FORMAT_V2, keys, status, 2, err, sizeof err),
                 CAS_OK);
    for (i = 0; i < N; i++) {
        char k[CAS_KEY_BUF];
        CHECK_EQ_INT(status[i], CAS_OK);
        cas_hash(CAS_HASH_SHA1, data[i], sizes[i], k);
        CHECK_STR(keys + i * CAS_KEY_BUF, k);
        kp[i] = keys + i * CAS_KEY_BUF;
    }
    kp[5] = "0000000000000000000000000000000000000000";
    CHECK_EQ_INT(cas_store_get_batch(s, "BatchFlow", N, kp, outs, lens, status, 2, err, sizeof err), CAS_E_NOTFOUND);
    CHECK(strstr(err, "0000000000000000000000000000000000000000") != NULL);
    for (i = 0; i < N; i++) {
        if (i == 5) {
            CHECK_EQ_INT(status[i], CAS_E_NOTFOUND);
            CHECK(outs[i] == NULL);
            continue;
        }
        CHECK_EQ_INT(status[i], CAS_OK);
        CHECK(lens[i] == sizes[i] && !memcmp(outs[i], data[i], sizes[i]));
        cas_store_free_buffer(s, outs[i]);
    }
    for (i = 0; i < N; i++) free(bufs[i]);
    cas_store_close(s);
    ts_rmrf(root);
}

typedef struct ts_thread_arg {
    cas_store *s;
    int id, failures;
} ts_thread_arg;

static void *ts_thread(void *p) {
    ts_thread_arg *a = (ts_thread_arg *)p;
    unsigned char buf[5000];
    int i;
    for (i = 0; i < 200; i++) {
        char key[CAS_KEY_BUF], want[CAS_KEY_BUF], err[600];
        void *out;
        size_t len, n = 1 + (size_t)((i * 37) % 4999);
        int fmt = (i + a->id) % 3 + 1;
        memset(buf, 'a' + i % 20, n); /* the 4 threads share keys, in different formats */
        cas_hash(CAS_HASH_SHA1, buf, n, want);
        if (cas_store_put(a->s, "ThreadFlow", buf, n, fmt, key, NULL, err, sizeof err) != CAS_OK || strcmp(key, want))
            a->failures++;
        else if (cas_store_get(a->s, "ThreadFlow", key, &out, &len, err, sizeof err) != CAS_OK) a->failures++;
        else {
            if (len != n || memcmp(out, buf, n)) a->failures++;
            cas_store_free_buffer(a->s, out);
        }
    }
    return NULL;
}

static void test_threads(void) {
    char root[256];
    cas_store *s;
    pthread_t th[4];
    ts_thread_arg args[4];
    int i, temps, blobs, metas;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    for (i = 0; i < 4; i++) {
        args[i].s = s, args[i].id = i, args[i].failures = 0;
        CHECK(pthread_create(&th[i], NULL, ts_thread, &args[i]) == 0);
    }
    for (i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (i = 0; i < 4; i++) CHECK_EQ_INT(args[i].failures, 0);
    CHECK(ts_store_consistent(s, root, "ThreadFlow", 0));
    CHECK(ts_scan(root, "ThreadFlow", &temps, &blobs, &metas) == 0);
    CHECK(temps == 0 && blobs == metas);
    cas_store_close(s);
    ts_rmrf(root);
}

static void test_stream(void) {
    char root[256], key[CAS_KEY_BUF], err[600], path[1200];
    size_t n = (2 << 20) + 5, got, total = 0;
    unsigned char *data = (unsigned char *)malloc(n), *back = (unsigned char *)malloc(n + 10);
    cas_store *s;
    cas_stream *st;
    int stored, f;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    t_fill(data, n, 2);
    for (f = CAS_FORMAT_V1; f <= CAS_FORMAT_RAW; f++) {
        data[0] = (unsigned char)f;
        CHECK_EQ_INT(cas_store_put(s, "StreamFlow", data, n, f, key, &stored, err, sizeof err), CAS_OK);
        CHECK_EQ_INT(cas_store_open_stream(s, "StreamFlow", key, &st, err, sizeof err), CAS_OK);
        CHECK_EQ_INT(cas_stream_format(st), f);
        total = 0;
        for (;;) {
            size_t want = 1 + (total * 31) % 20000;
            CHECK_EQ_INT(cas_stream_read(st, back + total, want, &got), CAS_OK);
            if (!got) break;
            total += got;
            CHECK(total <= n);
        }
        CHECK(total == n && !memcmp(back, data, n));
        CHECK_EQ_INT(cas_stream_read(st, back, 10, &got), CAS_OK); /* stays at the end */
        CHECK(got == 0);
        cas_stream_close(st);
        /* the same through the blob file */
        snprintf(path, sizeof path, "%s/StreamFlow/data/%.2s/%s", root, key, key);
        CHECK_EQ_INT(cas_stream_open_file(&st, path, key, 0, NULL, err, sizeof err), CAS_OK);
        total = 0;
        while (cas_stream_read(st, back + total, 65536, &got) == CAS_OK && got) total += got;
        CHECK(total == n && !memcmp(back, data, n));
        cas_stream_close(st);
    }
    /* a limit stops the stream with the message */
    CHECK(cas_store_set_param(s, CAS_PARAM_LIMIT, 1000) == CAS_OK);
    CHECK_EQ_INT(cas_store_open_stream(s, "StreamFlow", key, &st, err, sizeof err), CAS_OK);
    {
        int rc;
        while ((rc = cas_stream_read(st, back, 300, &got)) == CAS_OK && got) {
        }
        CHECK_EQ_INT(rc, CAS_E_LIMIT);
        CHECK(strstr(cas_stream_message(st), "decoded size exceeds the limit of 1000 bytes") != NULL);
    }
    cas_stream_close(st);
    cas_store_close(s);
    ts_rmrf(root);
    free(data), free(back);
}

/* Blob files decoded straight from their fds (cas_unpack_v2_fd and _many): the
 * bytes put, item by item, on one and two threads; a file that path does not take
 * (v1) or a short room fails in its own slot, and the first failure is returned. */
static void test_unpack_fd(void) {
    enum { N = 5 };
    static const size_t sizes[N] = {300000, 2000000, 70000, 100, 900000};
    char root[256], key[CAS_KEY_BUF], err[600], path[1200];
    unsigned char *data[N], *dst[N];
    void *out[N];
    size_t cap[N], got[N], one;
    int fd[N], st[N], i, threads;
    cas_store *s;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    for (i = 0; i < N; i++) {
        data[i] = (unsigned char *)malloc(sizes[i]);
        t_fill(data[i], sizes[i], i % 3); /* incompressible (stored blocks) and compressible */
        CHECK_EQ_INT(cas_store_put(s, "FdFlow", data[i], sizes[i], i == 2 ? CAS_FORMAT_V1 : CAS_FORMAT_V2, key, NULL,
                                   err, sizeof err),
                     CAS_OK);
        snprintf(path, sizeof path, "%s/FdFlow/data/%.2s/%s", root, key, key);
        CHECK((fd[i] = open(path, O_RDONLY)) >= 0);
        cap[i] = i == 4 ? sizes[i] - 1 : sizes[i];
        out[i] = dst[i] = (unsigned char *)malloc(sizes[i]);
    }
    for (threads = 1; threads <= 2; threads++) {
        memset(st, 0x55, sizeof st);
        CHECK_EQ_INT(cas_unpack_v2_fd_many(N, fd, out, cap, got, st, threads), CAS_E_UNSUPPORTED); /* item 2's */
        for (i = 0; i < N; i++) {
            int want = i == 2 ? CAS_E_UNSUPPORTED : i == 4 ? CAS_NEED_OUTPUT : CAS_OK;
            CHECK_EQ_INT(st[i], want);
            CHECK_EQ_INT(cas_unpack_v2_fd(fd[i], dst[i], cap[i], &one), want);
            if (want == CAS_OK) CHECK(got[i] == sizes[i] && one == sizes[i] && !memcmp(dst[i], data[i], sizes[i]));
        }
    }
    CHECK_EQ_INT(cas_unpack_v2_fd_many(0, NULL, NULL, NULL, NULL, NULL, 0), CAS_OK);
    CHECK_EQ_INT(cas_unpack_v2_fd_many(1, fd, NULL, cap, got, NULL, 0), CAS_E_ARG);
    for (i = 0; i < N; i++) close(fd[i]), free(data[i]), free(dst[i]);
    cas_store_close(s);
    ts_rmrf(root);
}

/* ---- processes: 8 writers at once, and SIGKILL ---- */

static void ts_child_puts(const char *root, int id, int count) {
    cas_store *s;
    char key[CAS_KEY_BUF], err[600];
    static unsigned char buf[600000];
    int i;
    if (cas_store_open(&s, root, NULL, err, sizeof err) != CAS_OK) _exit(3);
    for (i = 0; i < count; i++) {
        int which = (i * 7 + id * 3) % 30; /* 30 distinct artifacts shared by all writers */
        size_t n = (size_t)which * 20000 + 1;
        memset(buf, 'A' + which, n);
        buf[n / 2] = (unsigned char)which;
        if (cas_store_put(s, "MultiFlow", buf, n, (id + i) % 3 + 1, key, NULL, err, sizeof err) != CAS_OK) _exit(4);
    }
    cas_store_close(s);
    _exit(0);
}

static void test_eight_processes(void) {
    char root[256];
    pid_t pids[8];
    int i, status, temps, blobs, metas;
    cas_store *s;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    for (i = 0; i < 8; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) ts_child_puts(root, i, 60);
    }
    for (i = 0; i < 8; i++) {
        CHECK(waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK((s = ts_open(root)) != NULL);
    CHECK(ts_scan(root, "MultiFlow", &temps, &blobs, &metas) == 0);
    CHECK_EQ_INT(temps, 0);
    CHECK_EQ_INT(blobs, 30);
    CHECK_EQ_INT(metas, 30);
    {
        char *keys, err[600];
        size_t n, k;
        CHECK(cas_store_keys(s, "MultiFlow", &keys, &n, err, sizeof err) == CAS_OK);
        for (k = 0; k < n; k++) {
            int fmt;
            unsigned char head[4];
            char path[1200];
            FILE *f;
            size_t hl;
            const char *key = keys + k * CAS_KEY_BUF;
            if (cas_store_verify(s, "MultiFlow", key, NULL, err, sizeof err) != CAS_OK) CHECK_STR(err, "");
            /* the sidecar matches the bytes even though writers used different formats */
            CHECK(cas_store_stat(s, "MultiFlow", key, &fmt, NULL, err, sizeof err) == CAS_OK);
            snprintf(path, sizeof path, "%s/MultiFlow/data/%.2s/%s", root, key, key);
            f = fopen(path, "rb");
            CHECK(f != NULL);
            hl = fread(head, 1, 4, f);
            fclose(f);
            if (fmt == CAS_FORMAT_V1) CHECK(cas_sniff(head, hl) == CAS_SNIFF_GZIP);
            if (fmt == CAS_FORMAT_V2) CHECK(cas_sniff(head, hl) == CAS_SNIFF_LZ4);
        }
        cas_store_free_buffer(s, keys);
    }
    cas_store_close(s);
    ts_rmrf(root);
}

static void ts_sleep_us(long us) {
    struct timespec ts;
    ts.tv_sec = us / 1000000, ts.tv_nsec = (us % 1000000) * 1000;
    nanosleep(&ts, NULL);
}

/* Every visible blob decodes, verifies and has its sidecar. */
static int ts_no_broken_blob(cas_store *s, const char *root, const char *flow, int *count) {
    char *keys, err[600], path[1200];
    size_t n, i;
    int ok = 1;
    *count = 0;
    if (cas_store_keys(s, flow, &keys, &n, err, sizeof err) != CAS_OK) return 1; /* nothing written yet */
    for (i = 0; i < n; i++) {
        const char *k = keys + i * CAS_KEY_BUF;
        snprintf(path, sizeof path, "%s/%s/data/%.2s/%s_meta", root, flow, k, k);
        if (!ts_exists(path)) {
            printf("    blob without sidecar: %s\n", k);
            ok = 0;
        }
        if (cas_store_verify(s, flow, k, NULL, err, sizeof err) != CAS_OK) {
            printf("    %s\n", err);
            ok = 0;
        }
    }
    *count = (int)n;
    cas_store_free_buffer(s, keys);
    return ok;
}

static void test_sigkill_put(void) {
    char root[256], err[600];
    int kill_round, status, blobs = 0, temps, b2, metas, killed_mid = 0;
    cas_store *s;
    uint64_t removed;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    for (kill_round = 0; kill_round < (t_quick() ? 12 : 120); kill_round++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            cas_store *cs;
            static unsigned char buf[3 << 20];
            char key[CAS_KEY_BUF];
            int i;
            if (cas_store_open(&cs, root, NULL, err, sizeof err) != CAS_OK) _exit(3);
            for (i = 0;; i++) { /* big blobs so that kills land mid-write */
                size_t n = (size_t)(1 + (kill_round * 131 + i * 977) % (3 << 20));
                t_rng = (uint64_t)(kill_round * 1000 + i + 1) * 0x9e3779b97f4a7c15ull;
                t_fill(buf, n, 2);
                cas_store_put(cs, "KillFlow", buf, n, i % 2 ? CAS_FORMAT_V1 : CAS_FORMAT_V2, key, NULL, err,
                              sizeof err);
                if (i % 3 == 0) { /* and the streaming path */
                    int p[2];
                    if (pipe(p) == 0) {
                        if (fork() == 0) {
                            close(p[0]);
                            if (write(p[1], buf, n / 2) < 0) _exit(1);
                            _exit(0);
                        }
                        close(p[1]);
                        cas_store_put_fd(cs, "KillFlow", p[0], 0, key, NULL, err, sizeof err);
                        close(p[0]);
                        wait(NULL);
                    }
                }
            }
        }
        ts_sleep_us(2000 + (long)(t_rand() % 40000));
        kill(pid, SIGKILL);
        CHECK(waitpid(pid, &status, 0) == pid);
        if (WIFSIGNALED(status)) killed_mid++;
        t_setnote("after kill %d", kill_round);
        CHECK(ts_no_broken_blob(s, root, "KillFlow", &blobs));
    }
    t_note[0] = 0;
    CHECK(killed_mid >= (t_quick() ? 10 : 100));
    CHECK(blobs > (t_quick() ? 0 : 10)); /* the kills did land between writes, too */
    /* gc takes the temps of the dead writers; what is left is whole */
    while (wait(NULL) > 0) {
    }
    CHECK_EQ_INT(cas_store_gc(s, &removed, err, sizeof err), CAS_OK);
    CHECK(ts_scan(root, "KillFlow", &temps, &b2, &metas) == 0);
    CHECK_EQ_INT(temps, 0);
    CHECK(b2 == blobs && metas >= b2);
    cas_store_close(s);
    ts_rmrf(root);
}

static void test_sigkill_migrate(void) {
    char root[256], err[600], *keys;
    cas_store *s;
    size_t n, i;
    int round, status, count;
    static unsigned char buf[400000];
    char want[64][CAS_KEY_BUF];
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    for (i = 0; i < 64; i++) {
        size_t len = 1000 + i * 6000;
        t_rng = (uint64_t)(i + 7) * 0x9e3779b97f4a7c15ull;
        t_fill(buf, len, 2);
        CHECK(cas_store_put(s, "MigFlow", buf, len, CAS_FORMAT_V1, want[i], NULL, err, sizeof err) == CAS_OK);
    }
    for (round = 0; round < (t_quick() ? 10 : 100); round++) {
        int target = round % 2 ? CAS_FORMAT_V1 : CAS_FORMAT_V2;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            cas_store *cs;
            int changed;
            if (cas_store_open(&cs, root, NULL, err, sizeof err) != CAS_OK) _exit(3);
            if (cas_store_keys(cs, "MigFlow", &keys, &n, err, sizeof err) != CAS_OK) _exit(4);
            for (;;)
                for (i = 0; i < n; i++) {
                    cas_store_migrate(cs, "MigFlow", keys + i * CAS_KEY_BUF, target, &changed, err, sizeof err);
                    target = target == CAS_FORMAT_V1 ? CAS_FORMAT_V2 : CAS_FORMAT_V1;
                }
        }
        ts_sleep_us(1000 + (long)(t_rand() % 30000));
        kill(pid, SIGKILL);
        CHECK(waitpid(pid, &status, 0) == pid);
        /* whatever the kill interrupted: every read is the right bytes or an error, never wrong bytes */
        for (i = 0; i < 64; i++) {
            void *out;
            size_t len;
            char got[CAS_KEY_BUF];
            t_setnote("round %d key %s", round, want[i]);
            if (cas_store_get(s, "MigFlow", want[i], &out, &len, err, sizeof err) == CAS_OK) {
                cas_hash(CAS_HASH_SHA1, out, len, got);
                CHECK_STR(got, want[i]);
                cas_store_free_buffer(s, out);
            } else {
                CHECK(strstr(err, "metadata says") != NULL); /* only the interrupted pair may disagree */
            }
        }
        /* rerunning the migration leaves every blob matching its sidecar */
        CHECK(cas_store_keys(s, "MigFlow", &keys, &n, err, sizeof err) == CAS_OK);
        CHECK_EQ_INT(n, 64);
        for (i = 0; i < n; i++) {
            int changed;
            if (cas_store_migrate(s, "MigFlow", keys + i * CAS_KEY_BUF, CAS_FORMAT_V2, &changed, err, sizeof err) !=
                CAS_OK)
                CHECK_STR(err, "");
        }
        cas_store_free_buffer(s, keys);
        CHECK(ts_store_consistent(s, root, "MigFlow", CAS_FORMAT_V2));
        CHECK(ts_no_broken_blob(s, root, "MigFlow", &count));
    }
    t_note[0] = 0;
    cas_store_close(s);
    ts_rmrf(root);
}

/* Readers while other processes put and migrate the same keys: every read
 * gives the right bytes. cas.h readers open a blob and its sidecar under the
 * directory's shared lock, so they never even see a half-migrated pair. */
static void test_readers_during_writes(void) {
    char root[256], err[600];
    cas_store *s;
    pid_t writers[2];
    static unsigned char buf[200000];
    char keys[24][CAS_KEY_BUF];
    int i, status, reads = 0, errors = 0, round;
    CHECK(ts_mkroot(root, sizeof root) != NULL);
    CHECK((s = ts_open(root)) != NULL);
    for (i = 0; i < 24; i++) {
        t_rng = (uint64_t)(i + 101) * 0x9e3779b97f4a7c15ull;
        t_fill(buf, 1000 + (size_t)i * 8000, 2);
        CHECK(cas_store_put(s, "RwFlow", buf, 1000 + (size_t)i * 8000, CAS_FORMAT_V1, keys[i], NULL, err, sizeof err) ==
              CAS_OK);
    }
    for (i = 0; i < 2; i++) {
        writers[i] = fork();
        CHECK(writers[i] >= 0);
        if (writers[i] == 0) {
            cas_store *ws;
            int k, changed, fmt = CAS_FORMAT_V2;
            char key[CAS_KEY_BUF];
            if (cas_store_open(&ws, root, NULL, err, sizeof err) != CAS_OK) _exit(3);
            for (round = 0; round < 400; round++)
                for (k = 0; k < 24; k++) {
                    if (i == 0) { /* a migrator flipping formats */
                        cas_store_migrate(ws, "RwFlow", keys[k], fmt, &changed, err, sizeof err);
                        fmt = fmt == CAS_FORMAT_V1 ? CAS_FORMAT_V2 : CAS_FORMAT_V1;
                    } else { /* a writer putting the same bytes again, and new ones */
                        t_rng = (uint64_t)(k + 101) * 0x9e3779b97f4a7c15ull;
                        t_fill(buf, 1000 + (size_t)k * 8000, 2);
                        cas_store_put(ws, "RwFlow", buf, 1000 + (size_t)k * 8000, (round + k) % 3 + 1, key, NULL, err,
                                      sizeof err);
                    }
                }
            _exit(0);
        }
    }
    for (round = 0; round < (t_quick() ? 5 : 40); round++)
        for (i = 0; i < 24; i++) {
            void *out;
            size_t len;
            char got[CAS_KEY_BUF];
            if (cas_store_get(s, "RwFlow", keys[i], &out, &len, err, sizeof err) != CAS_OK) {
                printf("    read failed: %s\n", err);
                errors++;
                continue;
            }
            cas_hash(CAS_HASH_SHA1, out, len, got);
            CHECK_STR(got, keys[i]);
            cas_store_free_buffer(s, out);
            reads++;
        }
    for (i = 0; i < 2; i++) {
        kill(writers[i], SIGKILL);
        waitpid(writers[i], &status, 0);
    }
    CHECK_EQ_INT(errors, 0);
    CHECK(reads > 0);
    cas_store_close(s);
    ts_rmrf(root);
}

static test_case store_tests[] = {
    {"store_put_get", test_store_put_get},
    {"store_put_fd", test_store_put_fd},
    {"store_verify_and_corruption", test_store_verify_and_corruption},
    {"store_hostile_names", test_store_hostile_names},
    {"store_files", test_store_files},
    {"store_runs", test_store_runs},
    {"store_symlinks", test_store_symlinks},
    {"task_fixtures", test_task_fixtures},
    {"task_attempts", test_task_attempts},
    {"migrate", test_migrate},
    {"gc", test_gc},
    {"batch", test_batch},
    {"threads_4", test_threads},
    {"stream", test_stream},
    {"unpack_fd", test_unpack_fd},
    {"eight_processes", test_eight_processes},
    {"sigkill_put_x120", test_sigkill_put},
    {"sigkill_migrate_x100", test_sigkill_migrate},
    {"readers_during_writes", test_readers_during_writes},
};
