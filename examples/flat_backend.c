/* A storage backend of your own, loaded by the `cas` command (and usable from any
 * program through cas_backend_register): "flat://DIR" keeps every object of a
 * datastore as one file directly in DIR, its name with '/' and other bytes
 * escaped, its metadata in a header of the same file, so that an object and its
 * metadata are always one version and one rename makes both visible.
 *
 *   cc -shared -fPIC -I. -o flat_backend.so examples/flat_backend.c
 *   CAS_BACKENDS=./flat_backend.so cas cp .metaflow flat:///tmp/shelf MyFlow
 *   CAS_BACKENDS=./flat_backend.so cas ls --root flat:///tmp/shelf MyFlow/latest
 *
 * The plugin's one export, cas_backend_plugin, has the registrar's signature
 * (CAS_BACKEND_MODULE in cas.h): it is handed cas_backend_register and adds its
 * schemes. It calls nothing else of libcas, so it loads into any program built
 * with cas.h. Writes are a temp file renamed into place, the folder synced after;
 * gc removes temp files a crashed writer left (an hour old). Listing reads the whole
 * folder (a real backend for many objects would index them). An escaped name must fit
 * the file system's NAME_MAX (255 bytes: a flow name of about 200 characters does
 * not), and a case-insensitive file system would merge names that differ in case. */
#define _POSIX_C_SOURCE 200809L
#define CAS_EXPERIMENTAL /* the backend seam */
#include "cas.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLAT_NONE 0xffffffffu /* header: the object has no metadata */
#define FLAT_META_MAX (1u << 20)

typedef struct flat {
    char dir[4096];
    char root[4200];
    const cas_allocator *alloc;
} flat;

typedef struct flat_obj {
    int fd;
    char *meta;
} flat_obj;

typedef struct flat_writer {
    char tmp[4200], *meta;
    size_t meta_len;
    int fd, has_meta;
} flat_writer;

/* DIR/escaped-name: letters, digits, '.', '_', '-' as they are, any other byte %XX.
 * An escaped name never starts with "%t", so temp files ("%tmp...") stand apart. */
static int flat_path(const flat *f, const char *name, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(out, cap, "%s/", f->dir);
    const unsigned char *p;
    if (!*name || n >= cap) return CAS_E_ARG;
    for (p = (const unsigned char *)name; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                    *p == '_' || *p == '-';
        if (n + 4 >= cap) return CAS_E_ARG;
        if (plain) out[n++] = (char)*p;
        else out[n++] = '%', out[n++] = hex[*p >> 4], out[n++] = hex[*p & 15];
    }
    out[n] = 0;
    return CAS_OK;
}

static int flat_hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; /* as flat_path writes */
}

/* A file name back to the object's name; -1 for a name flat_path never makes. */
static int flat_unescape(const char *in, char *out, size_t cap) {
    size_t n = 0;
    for (; *in; in++) {
        int hi, lo;
        if (n + 1 >= cap) return -1;
        if (*in != '%') {
            out[n++] = *in;
            continue;
        }
        if ((hi = flat_hex(in[1])) < 0 || (lo = flat_hex(in[2])) < 0 || !(hi | lo)) return -1;
        out[n++] = (char)(hi << 4 | lo), in += 2;
    }
    out[n] = 0;
    return 0;
}

static int flat_err(char *msg, size_t cap, int e, const char *what) {
    snprintf(msg, cap, "%s: %s", what, strerror(e));
    return e == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO;
}

static int flat_read_all(int fd, void *p, size_t n) {
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p = (char *)p + k, n -= (size_t)k;
    }
    return 0;
}

static int flat_write_all(int fd, const void *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p = (const char *)p + k, n -= (size_t)k;
    }
    return 0;
}

/* Reads the header: *meta (malloc'd, or NULL for none), and the payload's size. */
static int flat_head(int fd, char **meta, size_t *meta_len, uint64_t *size, char *msg, size_t cap) {
    unsigned char h[4];
    uint32_t ml;
    struct stat st;
    *meta = NULL, *meta_len = 0;
    if (fstat(fd, &st) < 0 || flat_read_all(fd, h, 4) < 0) {
        snprintf(msg, cap, "not a flat object (no header)");
        return CAS_E_CORRUPT;
    }
    ml = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    if (ml == FLAT_NONE) ml = 0;
    else if (ml > FLAT_META_MAX || (uint64_t)ml + 4 > (uint64_t)st.st_size || !(*meta = (char *)malloc(ml + 1)) ||
             flat_read_all(fd, *meta, ml) < 0) {
        free(*meta), *meta = NULL;
        snprintf(msg, cap, "a flat object's header is damaged");
        return CAS_E_CORRUPT;
    } else {
        (*meta)[ml] = 0, *meta_len = ml;
    }
    *size = (uint64_t)st.st_size - 4 - ml;
    return CAS_OK;
}

static int flat_open(void *u, const char *name, unsigned flags, void **obj, cas_object_info *info, char *msg,
                     size_t cap) {
    char path[4200];
    flat_obj *o;
    struct stat st;
    int rc, fd;
    (void)flags;
    if (flat_path((flat *)u, name, path, sizeof path) < 0) return CAS_E_ARG;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return flat_err(msg, cap, errno, "open");
    if (!(o = (flat_obj *)calloc(1, sizeof *o))) {
        close(fd);
        return CAS_E_NOMEM;
    }
    o->fd = fd;
    memset(info, 0, sizeof *info);
    if ((rc = flat_head(fd, &o->meta, &info->meta_len, &info->size, msg, cap)) < 0) {
        close(fd), free(o);
        return rc;
    }
    info->meta = o->meta;
    if (fstat(fd, &st) == 0) info->mtime = (int64_t)st.st_mtime;
    *obj = o;
    return CAS_OK;
}

static int flat_read(void *u, void *obj, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    flat_obj *o = (flat_obj *)obj;
    ssize_t k;
    (void)u;
    do k = read(o->fd, buf, cap);
    while (k < 0 && errno == EINTR);
    if (k < 0) return flat_err(msg, mcap, errno, "read");
    *got = (size_t)k;
    return CAS_OK;
}

static void flat_close(void *u, void *obj) {
    flat_obj *o = (flat_obj *)obj;
    (void)u;
    if (!o) return;
    close(o->fd);
    free(o->meta);
    free(o);
}

static int flat_create(void *u, const char *dir, const char *name, const char *meta, size_t ml, void **w, char *msg,
                       size_t cap) {
    flat *f = (flat *)u;
    flat_writer *x;
    unsigned char h[4];
    uint32_t hl = meta ? (uint32_t)ml : FLAT_NONE;
    int attempt;
    (void)dir, (void)name;
    if (meta && ml > FLAT_META_MAX) return CAS_E_ARG;
    if (!(x = (flat_writer *)calloc(1, sizeof *x))) return CAS_E_NOMEM;
    for (attempt = 0;;
         attempt++) { /* this writer's own name (open's mode, so the umask, applies: not mkstemp's 0600) */
        snprintf(x->tmp, sizeof x->tmp, "%s/%%tmp%ld-%p-%d", f->dir, (long)getpid(), (void *)x, attempt);
        if ((x->fd = open(x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) >= 0) break;
        if (errno != EEXIST || attempt >= 100) { /* EEXIST: a crashed process's, of the same pid */
            int e = errno;
            free(x);
            return flat_err(msg, cap, e, "create");
        }
    }
    h[0] = (unsigned char)hl, h[1] = (unsigned char)(hl >> 8), h[2] = (unsigned char)(hl >> 16);
    h[3] = (unsigned char)(hl >> 24);
    if (flat_write_all(x->fd, h, 4) < 0 || (meta && flat_write_all(x->fd, meta, ml) < 0)) {
        int e = errno ? errno : EIO;
        close(x->fd), unlink(x->tmp), free(x);
        return flat_err(msg, cap, e, "write");
    }
    x->has_meta = meta != NULL;
    if (meta && !(x->meta = (char *)malloc(ml + 1))) {
        close(x->fd), unlink(x->tmp), free(x);
        return CAS_E_NOMEM;
    }
    if (meta) memcpy(x->meta, meta, ml), x->meta_len = ml;
    *w = x;
    return CAS_OK;
}

static int flat_write(void *u, void *w, const void *p, size_t n, char *msg, size_t cap) {
    (void)u;
    if (flat_write_all(((flat_writer *)w)->fd, p, n) < 0) return flat_err(msg, cap, errno ? errno : EIO, "write");
    return CAS_OK;
}

static int flat_sync_dir(const flat *f, char *msg, size_t cap) {
    int fd = open(f->dir, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0 || (rc = fsync(fd)) < 0) rc = errno ? errno : EIO;
    if (fd >= 0) close(fd);
    return rc ? flat_err(msg, cap, rc, "fsync the folder") : CAS_OK;
}

/* CAS_COMMIT_META: the temp file holds the new header; the object's bytes follow it. */
static int flat_copy_payload(flat_writer *x, const char *path, char *msg, size_t cap) {
    char buf[65536], *old_meta;
    size_t ml;
    uint64_t size;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    ssize_t k;
    if (fd < 0) return flat_err(msg, cap, errno, "open");
    rc = flat_head(fd, &old_meta, &ml, &size, msg, cap);
    free(old_meta);
    while (rc == CAS_OK && (k = read(fd, buf, sizeof buf)) != 0) {
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 || flat_write_all(x->fd, buf, (size_t)k) < 0) rc = flat_err(msg, cap, errno ? errno : EIO, "copy");
    }
    close(fd);
    return rc;
}

static int flat_commit(void *u, void *w, const char *name, int mode, int *stored, char *msg, size_t cap) {
    flat_writer *x = (flat_writer *)w;
    char path[4200];
    int rc;
    *stored = 0;
    if ((rc = flat_path((flat *)u, name, path, sizeof path)) < 0) return rc;
    if (mode == CAS_COMMIT_META && (rc = flat_copy_payload(x, path, msg, cap)) < 0) return rc;
    if (fsync(x->fd) < 0) return flat_err(msg, cap, errno, "fsync");
    if (mode == CAS_COMMIT_CREATE) { /* only if absent: link fails on an existing name */
        if (link(x->tmp, path) < 0) {
            if (errno == EEXIST) return CAS_OK;
            return flat_err(msg, cap, errno, "link");
        }
        unlink(x->tmp);
    } else if (rename(x->tmp, path) < 0) {
        return flat_err(msg, cap, errno, "rename");
    }
    *stored = 1;
    return flat_sync_dir((flat *)u, msg, cap); /* the new name survives a power loss */
}

static void flat_abort(void *u, void *w) {
    flat_writer *x = (flat_writer *)w;
    (void)u;
    if (!x) return;
    close(x->fd);
    unlink(x->tmp); /* after a commit that renamed it: ENOENT, nothing removed */
    free(x->meta);
    free(x);
}

static int flat_exists(void *u, const char *name, char *msg, size_t cap) {
    char path[4200];
    struct stat st;
    if (flat_path((flat *)u, name, path, sizeof path) < 0) return CAS_E_ARG;
    if (stat(path, &st) == 0) return 1;
    return errno == ENOENT ? 0 : flat_err(msg, cap, errno, "stat");
}

static int flat_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Folders are implied by names, as in an object store: a folder is listed once,
 * when some object's name goes on below it. */
static int flat_list(void *u, const char *dir, int recursive, cas_list_fn fn, void *ctx, char *msg, size_t cap) {
    flat *f = (flat *)u;
    DIR *d = opendir(f->dir);
    struct dirent *de;
    char **dirs = NULL, name[4200], path[8400];
    size_t nd = 0, dcap = 0, dl = strlen(dir), i;
    int found = 0, stop = 0, rc = CAS_OK;
    if (!d) return flat_err(msg, cap, errno, "opendir");
    while (rc == CAS_OK && !stop && (de = readdir(d)) != NULL) {
        const char *rest, *slash;
        struct stat st;
        if (de->d_name[0] == '.' || !strncmp(de->d_name, "%tmp", 4)) continue;
        if (flat_unescape(de->d_name, name, sizeof name) < 0) continue; /* not an object of this backend */
        if (dl && (strncmp(name, dir, dl) || name[dl] != '/')) continue;
        rest = name + (dl ? dl + 1 : 0);
        found = 1;
        slash = strchr(rest, '/');
        if (!slash || recursive) {
            int fd;
            char *meta;
            size_t ml;
            uint64_t size = 0;
            snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
            if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) continue; /* removed meanwhile */
            if (flat_head(fd, &meta, &ml, &size, msg, cap) == CAS_OK) free(meta);
            if (fstat(fd, &st) < 0) st.st_mtime = 0;
            close(fd);
            if ((rc = fn(ctx, rest, CAS_ENTRY_FILE, size, (int64_t)st.st_mtime)) > 0) rc = CAS_OK, stop = 1;
            continue;
        }
        for (i = 0; i < nd && (strncmp(dirs[i], rest, (size_t)(slash - rest)) || dirs[i][slash - rest]); i++) {
        }
        if (i < nd) continue;
        if (nd == dcap) {
            char **grown = (char **)realloc(dirs, (dcap = dcap ? 2 * dcap : 16) * sizeof *dirs);
            if (!grown) {
                rc = CAS_E_NOMEM;
                break;
            }
            dirs = grown;
        }
        if (!(dirs[nd] = strndup(rest, (size_t)(slash - rest)))) rc = CAS_E_NOMEM;
        else nd++;
    }
    closedir(d);
    if (rc == CAS_OK && !stop && nd) { /* folders after objects, sorted */
        qsort(dirs, nd, sizeof *dirs, flat_cmp);
        for (i = 0; i < nd && rc == CAS_OK && !stop; i++)
            if ((rc = fn(ctx, dirs[i], CAS_ENTRY_DIR, 0, 0)) > 0) rc = CAS_OK, stop = 1;
    }
    for (i = 0; i < nd; i++) free(dirs[i]);
    free(dirs);
    if (rc == CAS_OK && !found && dl) {
        snprintf(msg, cap, "nothing below '%s'", dir);
        return CAS_E_NOTFOUND;
    }
    return rc;
}

static int flat_remove(void *u, const char *name, char *msg, size_t cap) {
    char path[4200];
    if (flat_path((flat *)u, name, path, sizeof path) < 0) return CAS_E_ARG;
    if (unlink(path) == 0) return 1;
    return errno == ENOENT ? 0 : flat_err(msg, cap, errno, "unlink");
}

/* Temp files an hour old: what writers that crashed left (a live one commits sooner). */
static int flat_gc(void *u, uint64_t *removed, char *msg, size_t cap) {
    flat *f = (flat *)u;
    DIR *d = opendir(f->dir);
    struct dirent *de;
    char path[4096 + 300];
    *removed = 0;
    if (!d) return flat_err(msg, cap, errno, "opendir");
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strncmp(de->d_name, "%tmp", 4)) continue;
        snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && time(NULL) - st.st_mtime > 3600 && unlink(path) == 0)
            (*removed)++;
    }
    closedir(d);
    return CAS_OK;
}

static void flat_destroy(void *u) { free(u); }

static int flat_opener(cas_backend *out, const char *url, const cas_allocator *alloc, char *err, size_t errcap) {
    const char *dir = url + strlen("flat://");
    flat *f;
    struct stat st;
    if (strncmp(url, "flat://", 7) || !*dir || strlen(dir) >= sizeof f->dir) {
        snprintf(err, errcap, "'%s' is not flat://DIR", url);
        return CAS_E_ARG;
    }
    if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
        snprintf(err, errcap, "cannot create '%s': %s", dir, strerror(errno));
        return CAS_E_IO;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "'%s' is not a folder", dir);
        return CAS_E_IO;
    }
    if (!(f = (flat *)calloc(1, sizeof *f))) return CAS_E_NOMEM;
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    snprintf(f->root, sizeof f->root, "%s", url);
    f->alloc = alloc;
    memset(out, 0, sizeof *out);
    out->user = f, out->root = f->root;
    out->open = flat_open, out->read = flat_read, out->close = flat_close;
    out->create = flat_create, out->write = flat_write, out->commit = flat_commit, out->abort = flat_abort;
    out->exists = flat_exists, out->list = flat_list, out->remove = flat_remove, out->gc = flat_gc;
    out->destroy = flat_destroy;
    return CAS_OK;
}

/* What `cas` (CAS_BACKENDS) calls once the plugin is loaded. */
int cas_backend_plugin(int (*add)(const char *scheme, cas_backend_opener open));
int cas_backend_plugin(int (*add)(const char *scheme, cas_backend_opener open)) { return add("flat", flat_opener); }
