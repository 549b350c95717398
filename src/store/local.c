/* ---- POSIX helpers (the local backend, plain files) ---- */

/* Opens a directory below parent, never through a symlink; creates it on demand. */
static int cas__open_dir(int parent, const char *name, int create) {
    int fd = openat(parent, name, CAS__DIR_FLAGS);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(parent, name, 0777) < 0 && errno != EEXIST) return -1;
        fd = openat(parent, name, CAS__DIR_FLAGS);
    }
    return fd;
}

static const char *cas__errno_text(int e) {
    if (e == ELOOP || e == ENOTDIR) return "a symlink or non-directory inside the store (not followed)";
    return strerror(e);
}

/* flock on a directory: the commit of a blob and its sidecar happens under it, and
 * readers open both under a shared lock, so a reader never pairs a sidecar with
 * the other format's bytes. Where flock is unsupported, best effort without. */
static void cas__flock(int fd, int op) {
    while (flock(fd, op) < 0 && errno == EINTR) {
    }
}

static int cas__write_all(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n) {
        ssize_t w = CAS_SYS_WRITE(fd, c, CAS__MIN(n, CAS__CHUNK_MAX));
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (w == 0) return ENOSPC;
        c += w, n -= (size_t)w;
    }
    return 0;
}

/* Reads a whole file; max bounds it (0 = none). Returns 0 or an errno; EFBIG when over max. */
static int cas__read_all(int fd, const cas_allocator *a, size_t max, unsigned char **out, size_t *len) {
    struct stat st;
    size_t cap, n = 0;
    unsigned char *buf;
    *out = NULL, *len = 0;
    if (fstat(fd, &st) < 0) return errno;
    if (st.st_size < 0 || (max && (uint64_t)st.st_size > max)) return EFBIG;
    if ((uint64_t)st.st_size >= (uint64_t)((size_t)-1) / 2) return EFBIG;
    cap = (size_t)st.st_size + 1; /* +1 sees EOF without a second allocation */
    buf = (unsigned char *)cas__alloc(a, cap);
    if (!buf) return ENOMEM;
    for (;;) {
        ssize_t r;
        if (n == cap) { /* the file grew while we read it */
            size_t nc = cap * 2;
            unsigned char *nb;
            if (max && cap > max) {
                cas__free(a, buf);
                return EFBIG;
            }
            nb = (unsigned char *)cas__alloc(a, nc);
            if (!nb) {
                cas__free(a, buf);
                return ENOMEM;
            }
            memcpy(nb, buf, n);
            cas__free(a, buf);
            buf = nb, cap = nc;
        }
        r = CAS_SYS_READ(fd, buf + n, CAS__MIN(cap - n, CAS__CHUNK_MAX));
        if (r < 0) {
            int e = errno;
            if (e == EINTR) continue;
            cas__free(a, buf);
            return e ? e : EIO;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (max && n > max) {
        cas__free(a, buf);
        return EFBIG;
    }
    *out = buf, *len = n;
    return 0;
}

/* read() of a plain file, restarted on EINTR: bytes, 0 at the end, or -errno. */
static ssize_t cas__read_fd(int fd, void *buf, size_t cap) {
    for (;;) {
        ssize_t r = CAS_SYS_READ(fd, buf, CAS__MIN(cap, CAS__CHUNK_MAX));
        if (r >= 0) return r;
        if (errno != EINTR) return -(ssize_t)(errno ? errno : EIO);
    }
}

/* ---- the local backend ---------------------------------------------------- */

typedef struct cas__local {
    cas_allocator alloc;
    int rootfd, fsync_on;
    unsigned long seq;
    char *root;
    cas__mutex mu;
} cas__local;

typedef struct cas__lobj { /* an object open for reading */
    int fd;
    unsigned char *meta;
} cas__lobj;

typedef struct cas__lw { /* a writer: a temp file in `dir`, renamed at commit */
    int dirfd, tfd;
    char tmp[160], base[128];
    size_t meta_len;
    char meta[1]; /* the sidecar's bytes, allocated to size */
} cas__lw;

/* An errno as a backend failure; ENOENT is "not found" only where reading. */
static int cas__lfail(char *msg, size_t cap, int e) {
    cas__fmt(msg, cap, "%s", cas__errno_text(e));
    return e == ENOENT ? CAS_E_NOTFOUND : e == ENOMEM ? CAS_E_NOMEM : CAS_E_IO;
}
static int cas__lfail_w(char *msg, size_t cap, int e) {
    int rc = cas__lfail(msg, cap, e);
    return rc == CAS_E_NOTFOUND ? CAS_E_IO : rc;
}

/* Opens the folder `path` (its first len bytes; "" is the root) below the root,
 * component by component, never through a symlink; creates missing ones on demand. */
static int cas__local_dir(cas__local *l, const char *path, size_t len, int create) {
    int fd = -1;
    size_t i = 0;
    char part[256];
    if (!len) return openat(l->rootfd, ".", CAS__DIR_FLAGS);
    while (i < len) {
        size_t j = i;
        int nfd, e;
        while (j < len && path[j] != '/') j++;
        if (j == i || j - i > 255) {
            if (fd >= 0) close(fd);
            errno = EINVAL;
            return -1;
        }
        memcpy(part, path + i, j - i), part[j - i] = 0;
        nfd = cas__open_dir(fd >= 0 ? fd : l->rootfd, part, create);
        e = errno;
        if (fd >= 0) close(fd);
        errno = e;
        if ((fd = nfd) < 0) return -1;
        i = j + 1;
    }
    return fd;
}

/* The folder holding `name`, and the name's last part. */
static int cas__local_parent(cas__local *l, const char *name, int create, const char **base) {
    const char *slash = strrchr(name, '/');
    *base = slash ? slash + 1 : name;
    return cas__local_dir(l, name, slash ? (size_t)(slash - name) : 0, create);
}

static int cas__local_open(void *u, const char *name, unsigned flags, void **obj, cas_object_info *info, char *msg,
                           size_t cap) {
    cas__local *l = (cas__local *)u;
    const char *base;
    char meta_name[300];
    int dfd, fd, mfd, e = 0;
    unsigned char *meta = NULL;
    size_t ml = 0;
    struct stat st;
    cas__lobj *o;
    (void)flags;
    *obj = NULL;
    if ((dfd = cas__local_parent(l, name, 0, &base)) < 0) return cas__lfail(msg, cap, errno);
    snprintf(meta_name, sizeof meta_name, "%s_meta", base);
    cas__flock(dfd, LOCK_SH);
    fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    e = errno;
    mfd = fd >= 0 ? openat(dfd, meta_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (fd >= 0 && mfd < 0 && errno != ENOENT) {
        e = errno;
        close(fd);
        fd = -1;
    }
    if (mfd >= 0) {
        e = cas__read_all(mfd, &l->alloc, CAS__META_FILE_MAX, &meta, &ml);
        close(mfd);
        if (e) {
            close(fd);
            fd = -1;
        }
    }
    cas__flock(dfd, LOCK_UN);
    close(dfd);
    if (fd < 0) {
        cas__free(&l->alloc, meta);
        if (e == EFBIG) {
            cas__fmt(msg, cap, "its _meta sidecar is over 64 KiB");
            return CAS_E_IO;
        }
        return cas__lfail(msg, cap, e);
    }
    if (!(o = (cas__lobj *)cas__alloc(&l->alloc, sizeof *o))) {
        close(fd);
        cas__free(&l->alloc, meta);
        return cas__lfail(msg, cap, ENOMEM);
    }
    o->fd = fd, o->meta = meta;
    memset(info, 0, sizeof *info);
    if (fstat(fd, &st) == 0) info->size = (uint64_t)st.st_size, info->mtime = (int64_t)st.st_mtime;
    info->meta = (const char *)meta, info->meta_len = ml;
    *obj = o;
    return CAS_OK;
}

static int cas__local_read(void *u, void *obj, void *buf, size_t cap, size_t *got, char *msg, size_t msgcap) {
    ssize_t r = cas__read_fd(((cas__lobj *)obj)->fd, buf, cap);
    (void)u;
    *got = 0;
    if (r < 0) {
        cas__fmt(msg, msgcap, "%s", strerror((int)-r));
        return CAS_E_IO;
    }
    *got = (size_t)r;
    return CAS_OK;
}

static void cas__local_close(void *u, void *obj) {
    cas__local *l = (cas__local *)u;
    cas__lobj *o = (cas__lobj *)obj;
    if (!o) return;
    close(o->fd);
    cas__free(&l->alloc, o->meta);
    cas__free(&l->alloc, o);
}

/* Creates an exclusive temp file in dirfd; its name goes into name. */
static int cas__tmp_open(cas__local *l, int dirfd, const char *base, char *name, size_t cap) {
    int tries;
    for (tries = 0; tries < 100; tries++) {
        unsigned long seq;
        struct timespec ts;
        int fd;
        cas__mu_lock(&l->mu);
        seq = ++l->seq;
        cas__mu_unlock(&l->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(name, cap, ".%s%s%ld-%lu-%lx", base, CAS__TMP_TAG, (long)getpid(), seq,
                 (unsigned long)ts.tv_nsec ^ (unsigned long)(uintptr_t)name);
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* Writes bytes into a new temp file; closes it. 0 or an errno (the file is removed). */
static int cas__tmp_write(cas__local *l, int dirfd, const char *base, const void *p, size_t n, char *name, size_t cap) {
    int fd = cas__tmp_open(l, dirfd, base, name, cap), e;
    if (fd < 0) return errno;
    e = cas__write_all(fd, p, n);
    if (!e && l->fsync_on && CAS_SYS_FSYNC(fd) < 0) e = errno ? errno : EIO;
    if (close(fd) < 0 && !e) e = errno ? errno : EIO;
    if (e) unlinkat(dirfd, name, 0);
    return e;
}

static int cas__local_create(void *u, const char *dir, const char *name, const char *meta, size_t ml, void **out,
                             char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    cas__lw *w;
    const char *base = name ? strrchr(name, '/') : NULL;
    *out = NULL;
    if (!(w = (cas__lw *)cas__calloc(&l->alloc, sizeof *w + ml))) return cas__lfail(msg, cap, ENOMEM);
    w->tfd = -1;
    if (ml) memcpy(w->meta, meta, ml);
    w->meta_len = ml;
    snprintf(w->base, sizeof w->base, "%s", name ? (base ? base + 1 : name) : "stream");
    if ((w->dirfd = cas__local_dir(l, dir, strlen(dir), 1)) < 0) {
        int e = errno;
        cas__free(&l->alloc, w);
        return cas__lfail_w(msg, cap, e);
    }
    *out = w;
    return CAS_OK;
}

static int cas__local_write(void *u, void *wp, const void *p, size_t n, char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    cas__lw *w = (cas__lw *)wp;
    int e;
    if (w->tfd < 0 && (w->tfd = cas__tmp_open(l, w->dirfd, w->base, w->tmp, sizeof w->tmp)) < 0) {
        e = errno;
        w->tmp[0] = 0;
        return cas__lfail_w(msg, cap, e);
    }
    if ((e = cas__write_all(w->tfd, p, n)) != 0) {
        cas__fmt(msg, cap, "%s", strerror(e));
        return CAS_E_IO;
    }
    return CAS_OK;
}

/* CREATE: sidecar first, then the blob, under the folder's lock; an existing blob
 * wins. REPLACE: blob first, then sidecar (a crash between the two leaves bytes
 * whose magic contradicts the sidecar, which readers report and cas_store_migrate
 * repairs; readers of this library take the lock and never see the gap). META:
 * the sidecar alone. */
static int cas__local_commit(void *u, void *wp, const char *name, int mode, int *stored, char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    cas__lw *w = (cas__lw *)wp;
    const char *base;
    char meta_name[300], tm[160];
    int abfd, e = 0;
    struct stat st;
    *stored = 0;
    tm[0] = 0;
    if (mode != CAS_COMMIT_META) {
        if (w->tfd < 0 && cas__local_write(u, wp, "", 0, msg, cap) < 0) return CAS_E_IO;
        if (l->fsync_on && CAS_SYS_FSYNC(w->tfd) < 0) e = errno ? errno : EIO;
        if (close(w->tfd) < 0 && !e) e = errno ? errno : EIO;
        w->tfd = -1;
        if (e) {
            cas__fmt(msg, cap, "%s", strerror(e));
            return CAS_E_IO;
        }
    }
    if ((abfd = cas__local_parent(l, name, 1, &base)) < 0) return cas__lfail_w(msg, cap, errno);
    snprintf(meta_name, sizeof meta_name, "%s_meta", base);
    if (!w->meta_len && mode != CAS_COMMIT_META) { /* an object without metadata (data.json): no sidecar */
        cas__flock(abfd, LOCK_EX);
        if (mode == CAS_COMMIT_CREATE && fstatat(abfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) *stored = 0;
        else if (CAS_SYS_RENAMEAT(w->dirfd, w->tmp, abfd, base) < 0) e = errno ? errno : EIO;
        else *stored = 1;
        cas__flock(abfd, LOCK_UN);
        if (!*stored) unlinkat(w->dirfd, w->tmp, 0);
        w->tmp[0] = 0;
        if (!e && *stored && l->fsync_on && CAS_SYS_FSYNC(abfd) < 0) e = errno ? errno : EIO;
        if (e) cas__fmt(msg, cap, "%s", strerror(e));
        close(abfd);
        return e ? CAS_E_IO : CAS_OK;
    }
    if ((e = cas__tmp_write(l, w->dirfd, meta_name, w->meta, w->meta_len, tm, sizeof tm)) != 0) {
        close(abfd);
        cas__fmt(msg, cap, "%s", strerror(e));
        return CAS_E_IO;
    }
    cas__flock(abfd, LOCK_EX);
    if (mode == CAS_COMMIT_CREATE) {
        if (fstatat(abfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            *stored = 0;
        } else if (CAS_SYS_RENAMEAT(w->dirfd, tm, abfd, meta_name) < 0) {
            e = errno ? errno : EIO;
        } else if (CAS_SYS_RENAMEAT(w->dirfd, w->tmp, abfd, base) < 0) {
            e = errno ? errno : EIO;
            unlinkat(abfd, meta_name, 0); /* no blob: take its sidecar back */
        } else {
            *stored = 1;
        }
    } else {
        if (mode == CAS_COMMIT_REPLACE && CAS_SYS_RENAMEAT(w->dirfd, w->tmp, abfd, base) < 0) e = errno ? errno : EIO;
        else if (CAS_SYS_RENAMEAT(w->dirfd, tm, abfd, meta_name) < 0) e = errno ? errno : EIO;
        else *stored = 1;
    }
    cas__flock(abfd, LOCK_UN);
    unlinkat(w->dirfd, tm, 0);
    if (w->tmp[0]) unlinkat(w->dirfd, w->tmp, 0);
    w->tmp[0] = 0;
    if (e) cas__fmt(msg, cap, "%s", strerror(e));
    else if (*stored && l->fsync_on && CAS_SYS_FSYNC(abfd) < 0) {
        e = errno ? errno : EIO;
        cas__fmt(msg, cap, "fsync: %s", strerror(e));
    }
    close(abfd);
    return e ? CAS_E_IO : CAS_OK;
}

static void cas__local_abort(void *u, void *wp) {
    cas__local *l = (cas__local *)u;
    cas__lw *w = (cas__lw *)wp;
    if (!w) return;
    if (w->tfd >= 0) close(w->tfd);
    if (w->tmp[0]) unlinkat(w->dirfd, w->tmp, 0);
    close(w->dirfd);
    cas__free(&l->alloc, w);
}

static int cas__local_exists(void *u, const char *name, char *msg, size_t cap) {
    const char *base;
    struct stat st;
    int dfd = cas__local_parent((cas__local *)u, name, 0, &base), ok;
    (void)msg, (void)cap;
    if (dfd < 0) return 0;
    ok = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    close(dfd);
    return ok;
}

/* Lists dirfd into fn: its entries, or with recursive every object below it
 * (depth folders deep at most), never through a symlink. A walk that cannot see
 * everything below it fails (a folder it cannot open or read, one too deep, a name
 * too long): its caller may be deciding what nothing refers to. An entry removed
 * meanwhile is not an error. */
/* A walk's failure at the entry `what` (prefix + name): its words name it. */
static int cas__walk_fail(char *msg, size_t mcap, const char *prefix, size_t plen, const char *name, int e) {
    int rc = cas__lfail_w(msg, mcap, e);
    cas__fmt(msg, mcap, "'%.*s%.200s': %s", (int)(plen < 300 ? plen : 300), prefix, name, cas__errno_text(e));
    return rc;
}

static int cas__local_walk(int fd, char *prefix, size_t plen, size_t pcap, int recursive, int depth, cas_list_fn fn,
                           void *ctx, int *stop, char *msg, size_t mcap) {
    DIR *d = fdopendir(fd);
    struct dirent *de;
    int rc = CAS_OK;
    if (!d) {
        close(fd);
        return cas__lfail_w(msg, mcap, errno);
    }
    while (!*stop) {
        struct stat st;
        size_t nl;
        int kind;
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno) rc = cas__walk_fail(msg, mcap, prefix, plen, "", errno);
            break;
        }
        nl = strlen(de->d_name);
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (plen + nl + 2 > pcap) {
            if (!recursive) continue; /* a name no store call could use */
            cas__fmt(msg, mcap, "a name below it is over %lu bytes", (unsigned long)(pcap - 2));
            rc = CAS_E_IO;
            break;
        }
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue;
            rc = cas__walk_fail(msg, mcap, prefix, plen, de->d_name, errno);
            break;
        }
        kind = S_ISDIR(st.st_mode) ? CAS_ENTRY_DIR : S_ISREG(st.st_mode) ? CAS_ENTRY_FILE : CAS_ENTRY_OTHER;
        if (kind == CAS_ENTRY_FILE && nl > 5 && !strcmp(de->d_name + nl - 5, "_meta")) {
            /* X_meta is X's metadata (an object store keeps it on the object): not an
             * entry of its own while X is there; an orphan one is listed */
            char of[256];
            struct stat xs;
            if (nl - 5 < sizeof of) {
                memcpy(of, de->d_name, nl - 5), of[nl - 5] = 0;
                if (fstatat(dirfd(d), of, &xs, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(xs.st_mode)) continue;
            }
        }
        memcpy(prefix + plen, de->d_name, nl + 1);
        if (recursive && kind == CAS_ENTRY_DIR) {
            int sub;
            if (depth <= 0) {
                cas__fmt(msg, mcap, "folders below it nest deeper than this walk goes ('%.300s')", prefix);
                rc = CAS_E_IO;
                break;
            }
            if ((sub = openat(dirfd(d), de->d_name, CAS__DIR_FLAGS)) < 0) {
                if (errno == ENOENT) continue;
                rc = cas__walk_fail(msg, mcap, prefix, plen, de->d_name, errno);
                break;
            }
            prefix[plen + nl] = '/', prefix[plen + nl + 1] = 0;
            rc = cas__local_walk(sub, prefix, plen + nl + 1, pcap, recursive, depth - 1, fn, ctx, stop, msg, mcap);
            if (rc < 0) break;
            continue;
        }
        rc = fn(ctx, prefix, kind, (uint64_t)st.st_size, (int64_t)st.st_mtime);
        if (rc > 0) *stop = 1, rc = CAS_OK;
        if (rc < 0) break;
    }
    closedir(d);
    return rc;
}

static int cas__local_list(void *u, const char *dir, int recursive, cas_list_fn fn, void *ctx, char *msg, size_t cap) {
    char prefix[1024];
    int fd = cas__local_dir((cas__local *)u, dir, strlen(dir), 0), stop = 0;
    if (fd < 0) return cas__lfail(msg, cap, errno);
    prefix[0] = 0;
    if (cap) msg[0] = 0;
    return cas__local_walk(fd, prefix, 0, sizeof prefix, recursive, 8, fn, ctx, &stop, msg, cap);
}

static int cas__local_remove(void *u, const char *name, char *msg, size_t cap) {
    const char *base;
    char meta_name[300];
    struct stat st, xs;
    int dfd = cas__local_parent((cas__local *)u, name, 0, &base), rc = 1;
    size_t bl;
    if (dfd < 0) return errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    bl = strlen(base);
    snprintf(meta_name, sizeof meta_name, "%s_meta", base);
    cas__flock(dfd, LOCK_EX); /* writers take it to rename a blob in: no put lands halfway through */
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    } else if (S_ISDIR(st.st_mode)) { /* a folder goes only when empty (a pruned run's); no sidecar of its own */
        if (unlinkat(dfd, base, AT_REMOVEDIR) < 0) rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    } else if (S_ISREG(st.st_mode) && bl > 5 && !strcmp(base + bl - 5, "_meta")) {
        /* X_meta alone: only an orphan (X gone); a put of X that landed meanwhile keeps it */
        char of[300];
        snprintf(of, sizeof of, "%.*s", (int)(bl - 5), base);
        if (fstatat(dfd, of, &xs, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(xs.st_mode)) rc = 0;
        else if (unlinkat(dfd, base, 0) < 0) rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
    } else { /* the blob first: a blob without its sidecar would read as legacy gzip */
        if (unlinkat(dfd, base, 0) < 0) rc = errno == ENOENT ? 0 : cas__lfail(msg, cap, errno);
        if (rc >= 0 && unlinkat(dfd, meta_name, 0) < 0 && errno != ENOENT) rc = cas__lfail(msg, cap, errno);
    }
    cas__flock(dfd, LOCK_UN);
    close(dfd);
    return rc;
}

/* ".<base>.cas-tmp-<pid>-..." : the writer's pid, or 0 if the name is not ours. */
static long cas__tmp_pid(const char *name) {
    const char *t;
    if (name[0] != '.' || !(t = strstr(name, CAS__TMP_TAG))) return 0;
    return strtol(t + strlen(CAS__TMP_TAG), NULL, 10);
}

/* Temp files of dead writers (or an hour old: another host's, or stuck) in every <Flow>/data. */
static int cas__local_gc(void *u, uint64_t *removed, char *msg, size_t cap) {
    cas__local *l = (cas__local *)u;
    DIR *root;
    struct dirent *fe;
    int rfd = cas__local_dir(l, "", 0, 0);
    uint64_t gone = 0;
    if (rfd < 0 || !(root = fdopendir(rfd))) {
        if (rfd >= 0) close(rfd);
        cas__fmt(msg, cap, "%s", strerror(errno));
        return CAS_E_IO;
    }
    while ((fe = readdir(root)) != NULL) {
        int ffd, datafd;
        DIR *d;
        struct dirent *de;
        time_t now = time(NULL);
        if (cas_name_check(fe->d_name) < 0) continue;
        if ((ffd = openat(dirfd(root), fe->d_name, CAS__DIR_FLAGS)) < 0) continue;
        datafd = openat(ffd, "data", CAS__DIR_FLAGS);
        close(ffd);
        if (datafd < 0) continue;
        if (!(d = fdopendir(datafd))) {
            close(datafd);
            continue;
        }
        while ((de = readdir(d)) != NULL) {
            long pid = cas__tmp_pid(de->d_name);
            struct stat st;
            int dead;
            if (pid <= 0 || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue;
            dead = (pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) || now - st.st_mtime > 3600;
            if (dead && unlinkat(dirfd(d), de->d_name, 0) == 0) gone++;
        }
        closedir(d);
    }
    closedir(root);
    *removed = gone;
    return CAS_OK;
}

static int cas__local_set_param(void *u, int param, int64_t v) {
    if (param != CAS_PARAM_FSYNC) return CAS_E_ARG;
    ((cas__local *)u)->fsync_on = v != 0;
    return CAS_OK;
}

static void cas__local_destroy(void *u) {
    cas__local *l = (cas__local *)u;
    cas_allocator a;
    if (!l) return;
    close(l->rootfd);
    cas__mu_destroy(&l->mu);
    a = l->alloc;
    cas__free(&a, l->root);
    cas__free(&a, l);
}

CASDEF int cas_backend_local(cas_backend *out, const char *root, const cas_allocator *alloc, char *err, size_t errcap) {
    cas__local *l;
    size_t n;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    memset(out, 0, sizeof *out);
    if (!root || !root[0]) return cas__serr(err, errcap, CAS_E_ARG, "no datastore root given");
    if (!(l = (cas__local *)cas__calloc(alloc, sizeof *l))) return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    cas__copy_allocator(&l->alloc, alloc);
    n = strlen(root);
    if (!(l->root = (char *)cas__alloc(&l->alloc, n + 1)) || cas__mu_init(&l->mu) < 0) {
        cas__free(&l->alloc, l->root);
        cas__free(&l->alloc, l);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    memcpy(l->root, root, n + 1);
    /* the root itself may be a symlink (a user's choice); nothing below it is followed */
    if ((l->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        cas__mu_destroy(&l->mu);
        cas__free(&l->alloc, l->root);
        cas__free(&l->alloc, l);
        return cas__serr(err, errcap, e == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO,
                         "Cannot open the datastore root '%s': %s", root, strerror(e));
    }
    out->user = l, out->root = l->root;
    out->open = cas__local_open, out->read = cas__local_read, out->close = cas__local_close;
    out->create = cas__local_create, out->write = cas__local_write, out->commit = cas__local_commit;
    out->abort = cas__local_abort, out->exists = cas__local_exists, out->list = cas__local_list;
    out->remove = cas__local_remove, out->gc = cas__local_gc, out->set_param = cas__local_set_param;
    out->destroy = cas__local_destroy;
    return CAS_OK;
}
