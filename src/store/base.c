/* The local backend's I/O goes through these, so tests can inject failures. */
#ifndef CAS_SYS_WRITE
#define CAS_SYS_WRITE(fd, p, n) write(fd, p, n)
#endif
#ifndef CAS_SYS_RENAMEAT
#define CAS_SYS_RENAMEAT(ofd, old, nfd, nw) renameat(ofd, old, nfd, nw)
#endif
#ifndef CAS_SYS_FSYNC
#define CAS_SYS_FSYNC(fd) fsync(fd)
#endif
#ifndef CAS_SYS_READ
#define CAS_SYS_READ(fd, p, n) read(fd, p, n)
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#define CAS__DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define CAS__POOL 8
#define CAS__TMP_TAG ".cas-tmp-"
#define CAS__IO_CHUNK ((size_t)1 << 20)
#define CAS__STREAM_WINDOW ((size_t)64 << 10)
#define CAS__JSON_FILE_MAX ((size_t)256 << 20)
#define CAS__META_FILE_MAX ((size_t)64 << 10)
#define CAS__MSG 400 /* a backend's reason */
/* The reason a backend gave, or the status's name when it gave none (a callback's own failure). */
#define CAS__WHY(rc, msg) ((msg)[0] ? (msg) : cas_strerror(rc))

static int cas__serr(char *err, size_t cap, int code, const char *fmt, ...) {
    va_list ap;
    if (cap > CAS_MESSAGE_MAX) cap = CAS_MESSAGE_MAX; /* the same words whatever the caller's buffer */
    if (err && cap) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}
