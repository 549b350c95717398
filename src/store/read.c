/* ---- reading ---- */

/* Opens a blob through the backend: *info has its size and metadata (meta NULL
 * when it has none). Close *obj with the backend's close. */
static int cas__open_blob(cas_store *s, const char *flow, const char *key, unsigned flags, void **obj,
                          cas_object_info *info, const char *bname, char *err, size_t errcap) {
    char msg[CAS__MSG] = "";
    int rc;
    *obj = NULL;
    memset(info, 0, sizeof *info);
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!cas__key_ok(key)) return cas__serr(err, errcap, CAS_E_KEY, "Invalid key '%.100s'", key ? key : "");
    rc = s->be->b.open(s->be->b.user, bname, flags, obj, info, msg, sizeof msg);
    if (rc == CAS_E_NOTFOUND) return cas__serr(err, errcap, rc, "No blob '%s' in '%s'", bname, s->root);
    if (rc < 0) return cas__serr(err, errcap, rc, "Cannot open '%s': %s", bname, msg);
    return CAS_OK;
}

/* Decodes a whole blob held in memory with a pooled reader. */
static int cas__decode_blob(cas_store *s, const char *bname, const char *key, const char *meta, size_t ml,
                            const unsigned char *blob, size_t bl, void **out, size_t *len, char *err, size_t errcap) {
    cas_reader *r;
    int rc;
    if ((rc = cas__get_reader(s, &r)) < 0) return cas__serr(err, errcap, rc, "%s", cas_strerror(rc));
    rc = cas_reader_begin(r, meta, ml, bname, CAS__SP(s, CAS_PARAM_VERIFY) ? key : NULL);
    if (rc >= 0) rc = cas_reader_unpack(r, blob, bl, out, len);
    if (rc < 0) cas__serr(err, errcap, rc, "%s", cas_reader_message(r)[0] ? cas_reader_message(r) : cas_strerror(rc));
    else rc = CAS_OK;
    cas__put_reader(s, r); /* same allocator: *out outlives the reader */
    return rc;
}

CASDEF int cas_store_get(cas_store *s, const char *flow, const char *key, void **out, size_t *len, char *err,
                         size_t errcap) {
    unsigned char *blob = NULL;
    size_t bl = 0;
    char bname[512], msg[CAS__MSG] = "";
    cas_object_info info;
    void *obj;
    int rc;
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    rc = cas__slurp(&s->be->b, obj, info.size, &s->alloc, 0, &blob, &bl, msg, sizeof msg);
    if (rc < 0) rc = cas__serr(err, errcap, rc, "Cannot read '%s': %s", bname, msg);
    else rc = cas__decode_blob(s, bname, key, info.meta, info.meta_len, blob, bl, out, len, err, errcap);
    s->be->b.close(s->be->b.user, obj);
    cas__free(&s->alloc, blob);
    return rc;
}

CASDEF int cas_store_stat(cas_store *s, const char *flow, const char *key, int *format, uint64_t *stored_size,
                          char *err, size_t errcap) {
    char bname[512];
    cas_object_info info;
    void *obj;
    int rc, fmt = CAS_FORMAT_LEGACY;
    if (format) *format = 0;
    if (stored_size) *stored_size = 0;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, CAS_OPEN_HEAD, &obj, &info, bname, err, errcap)) < 0) return rc;
    if (stored_size) *stored_size = info.size;
    if (info.meta) {
        int64_t v = 0;
        rc = cas_meta_parse(info.meta, info.meta_len, &fmt, &v);
        if (rc < 0) cas__serr(err, errcap, rc, "'%s': %s", bname, cas_strerror(rc));
    }
    s->be->b.close(s->be->b.user, obj);
    if (rc < 0) return rc;
    if (format) *format = fmt;
    return CAS_OK;
}

CASDEF int cas_store_delete(cas_store *s, const char *flow, const char *key, char *err, size_t errcap) {
    char bname[512], msg[CAS__MSG] = "";
    int rc;
    if (!s) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    if (cas_name_check(flow) < 0)
        return cas__serr(err, errcap, CAS_E_NAME, "Invalid flow name '%.300s'", flow ? flow : "");
    if (!cas__key_ok(key)) return cas__serr(err, errcap, CAS_E_KEY, "Invalid key '%.100s'", key ? key : "");
    cas_store_blob_name(flow, key, bname, sizeof bname);
    rc = s->be->b.remove(s->be->b.user, bname, msg, sizeof msg);
    if (rc < 0) return cas__serr(err, errcap, rc, "Cannot delete '%s': %s", bname, msg);
    return rc;
}

/* ---- streams ---- */

/* A stream reads a backend object (store streams) or a plain file
 * (cas_stream_open_file) through a fixed window into its reader. */
struct cas_stream {
    cas_allocator alloc;
    cas__be *be; /* with obj, or NULL with fd */
    void *obj;
    int fd, eof, done, failed;
    cas_reader *r;
    unsigned char *in;
    size_t in_len, in_pos;
    uint64_t stored;
    char msg[CAS_MESSAGE_MAX];
};

/* A stream over a source, before its reader begins. The source is the stream's
 * from here, also on failure. */
static int cas__stream_alloc(cas_stream **out, cas__be *be, void *obj, int fd, uint64_t stored,
                             const cas_allocator *alloc, char *err, size_t errcap) {
    cas_stream *st = (cas_stream *)cas__calloc(alloc, sizeof *st);
    int rc;
    *out = NULL;
    if (st) {
        cas__copy_allocator(&st->alloc, alloc);
        st->be = be, st->obj = obj, st->fd = fd, st->stored = stored;
        if (be) cas__be_ref(be);
        st->in = (unsigned char *)cas__alloc(&st->alloc, CAS__STREAM_WINDOW);
    }
    rc = st && st->in ? cas_reader_create(&st->r, &st->alloc) : CAS_E_NOMEM;
    if (rc < 0 || !st) {
        if (st) cas_stream_close(st);
        else if (be) be->b.close(be->b.user, obj);
        else close(fd);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    *out = st;
    return CAS_OK;
}

static int cas__stream_begin(cas_stream *st, const char *meta, size_t ml, const char *name, const char *key,
                             uint64_t limit, int strict, char *err, size_t errcap) {
    int rc;
    cas_reader_set_param(st->r, CAS_PARAM_LIMIT, (int64_t)limit);
    cas_reader_set_param(st->r, CAS_PARAM_STRICT, strict);
    rc = cas_reader_begin(st->r, meta, ml, name, key);
    if (rc < 0) cas__serr(err, errcap, rc, "%s", cas_reader_message(st->r));
    return rc < 0 ? rc : CAS_OK;
}

/* Refills the window when it is used up: CAS_OK (st->eof at the end) or an error. */
static int cas__stream_fill(cas_stream *st) {
    size_t got = 0;
    char msg[CAS__MSG] = "";
    int rc;
    if (st->in_pos < st->in_len || st->eof) return CAS_OK;
    if (st->be) {
        rc = st->be->b.read(st->be->b.user, st->obj, st->in, CAS__STREAM_WINDOW, &got, msg, sizeof msg);
        if (rc < 0) {
            cas__fmt(st->msg, sizeof st->msg, "Cannot read '%s': %s", cas__rname(st->r), msg);
            return st->failed = rc;
        }
    } else {
        ssize_t r = cas__read_fd(st->fd, st->in, CAS__STREAM_WINDOW);
        if (r < 0) {
            cas__fmt(st->msg, sizeof st->msg, "Cannot read blob: %s", strerror((int)-r));
            return st->failed = CAS_E_IO;
        }
        got = (size_t)r;
    }
    st->in_pos = 0, st->in_len = got;
    if (!got) st->eof = 1;
    return CAS_OK;
}

/* The first bytes of the source without consuming them (fewer at its end). */
static int cas__stream_peek(cas_stream *st, unsigned char *head, size_t want, size_t *got) {
    int rc;
    *got = 0;
    while (st->in_len < want && !st->eof) {
        size_t n = 0;
        char msg[CAS__MSG] = "";
        if (st->be) {
            rc = st->be->b.read(st->be->b.user, st->obj, st->in + st->in_len, CAS__STREAM_WINDOW - st->in_len, &n, msg,
                                sizeof msg);
            if (rc < 0) {
                cas__fmt(st->msg, sizeof st->msg, "%s", msg);
                return st->failed = rc;
            }
        } else {
            ssize_t r = cas__read_fd(st->fd, st->in + st->in_len, CAS__STREAM_WINDOW - st->in_len);
            if (r < 0) {
                cas__fmt(st->msg, sizeof st->msg, "%s", strerror((int)-r));
                return st->failed = CAS_E_IO;
            }
            n = (size_t)r;
        }
        if (!n) st->eof = 1;
        st->in_len += n;
    }
    *got = CAS__MIN(want, st->in_len);
    memcpy(head, st->in, *got);
    return CAS_OK;
}

CASDEF int cas_store_open_stream(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err,
                                 size_t errcap) {
    return cas_stream_open(s, flow, key, out, err, errcap);
}

CASDEF int cas_stream_open(cas_store *s, const char *flow, const char *key, cas_stream **out, char *err,
                           size_t errcap) {
    char bname[512];
    cas_object_info info;
    void *obj;
    int rc;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    /* the stream holds the backend, so it outlives the store if need be */
    if ((rc = cas__stream_alloc(out, s->be, obj, -1, info.size, &s->alloc, err, errcap)) < 0) return rc;
    rc = cas__stream_begin(*out, info.meta, info.meta_len, bname, CAS__SP(s, CAS_PARAM_VERIFY) ? key : NULL,
                           (uint64_t)CAS__SP(s, CAS_PARAM_LIMIT), (int)CAS__SP(s, CAS_PARAM_STRICT), err, errcap);
    if (rc < 0) {
        cas_stream_close(*out);
        *out = NULL;
    }
    return rc;
}

#ifndef CAS_NO_LZ4
/* pread until n bytes are in, or the file ends (CAS_E_TRUNCATED). */
static int cas__pread_all(int fd, void *buf, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (unsigned char *)buf + got, CAS__MIN(n - got, CAS__CHUNK_MAX), (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return CAS_E_IO;
        if (r == 0) return CAS_E_TRUNCATED;
        got += (size_t)r;
    }
    return CAS_OK;
}

CASDEF int cas_unpack_v2_fd(int fd, void *dst, size_t cap, size_t *out_len) {
    static const unsigned char magic[4] = {0x04, 0x22, 0x4d, 0x18};
    unsigned char hdr[LZ4F_HEADER_SIZE_MAX], word[4], *buf = NULL;
    LZ4F_dctx *dc = NULL;
    LZ4F_frameInfo_t fi;
    struct stat sb;
    uint64_t off, fsize;
    size_t hsz, o = 0, bmax;
    int rc;
    if (out_len) *out_len = 0;
    if (fd < 0 || (!dst && cap) || !out_len) return CAS_E_ARG;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) return CAS_E_UNSUPPORTED;
    fsize = (uint64_t)sb.st_size;
    hsz = (size_t)CAS__MIN(fsize, (uint64_t)sizeof hdr);
    if ((rc = cas__pread_all(fd, hdr, hsz, 0)) < 0) return rc;
    if (hsz < 7 || memcmp(hdr, magic, 4)) return CAS_E_UNSUPPORTED;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dc, LZ4F_VERSION))) return CAS_E_NOMEM;
    memset(&fi, 0, sizeof fi);
    rc = LZ4F_isError(LZ4F_getFrameInfo(dc, &fi, hdr, &hsz)) ? CAS_E_CORRUPT : CAS_OK;
    LZ4F_freeDecompressionContext(dc);
    if (rc < 0) return rc;
    if (fi.blockChecksumFlag || fi.contentChecksumFlag || fi.dictID || fi.frameType != LZ4F_frame)
        return CAS_E_UNSUPPORTED; /* plain frames only: the general path checks the rest */
    bmax = fi.blockSizeID == LZ4F_max256KB ? (size_t)256 << 10
           : fi.blockSizeID == LZ4F_max1MB ? (size_t)1 << 20
           : fi.blockSizeID == LZ4F_max4MB ? (size_t)4 << 20
                                           : (size_t)64 << 10;
    for (off = hsz;;) {
        uint32_t n;
        if ((rc = cas__pread_all(fd, word, 4, off)) < 0) break;
        off += 4;
        n = (uint32_t)word[0] | (uint32_t)word[1] << 8 | (uint32_t)word[2] << 16 | (uint32_t)word[3] << 24;
        if (!n) { /* the end mark: the frame must end the file and hold what it says */
            rc = off != fsize                                                ? CAS_E_UNSUPPORTED
                 : fi.contentSize && fi.contentSize != (unsigned long long)o ? CAS_E_CORRUPT
                                                                             : CAS_OK;
            break;
        }
        if ((n & 0x7fffffffu) > bmax || off + (n & 0x7fffffffu) > fsize) {
            rc = CAS_E_CORRUPT;
            break;
        }
        if (n & 0x80000000u) { /* a stored block: read into place, no copy through a buffer */
            n &= 0x7fffffffu;
            if (n > cap - o) {
                rc = CAS_NEED_OUTPUT;
                break;
            }
            if ((rc = cas__pread_all(fd, (unsigned char *)dst + o, n, off)) < 0) break;
            o += n;
        } else {
            int d;
            size_t dict = fi.blockMode == LZ4F_blockLinked ? CAS__MIN(o, (size_t)64 << 10) : 0;
            if (!buf && !(buf = (unsigned char *)malloc(bmax))) {
                rc = CAS_E_NOMEM;
                break;
            }
            if ((rc = cas__pread_all(fd, buf, n, off)) < 0) break;
            d = LZ4_decompress_safe_usingDict((const char *)buf, (char *)dst + o, (int)n, (int)CAS__MIN(cap - o, bmax),
                                              (const char *)dst + o - dict, (int)dict);
            if (d < 0) {
                rc = cap - o < bmax ? CAS_NEED_OUTPUT : CAS_E_CORRUPT;
                break;
            }
            o += (size_t)d;
        }
        off += n;
    }
    free(buf);
    if (rc == CAS_OK) *out_len = o;
    return rc;
}

static void *cas__unpack_fd_worker(void *arg) {
    cas__many *m = (cas__many *)arg;
    size_t i;
    while ((i = cas__many_take(m)) < m->count)
        cas__many_done(m, i, cas_unpack_v2_fd(m->fds[i], m->out[i], m->cap[i], &m->out_len[i]));
    return NULL;
}

CASDEF int cas_unpack_v2_fd_many(size_t count, const int *fd, void *const *dst, const size_t *cap, size_t *out_len,
                                 int *status, int threads) {
    cas__many m;
    if (count && (!fd || !dst || !cap || !out_len)) return CAS_E_ARG;
    memset(&m, 0, sizeof m);
    m.count = count, m.fds = fd, m.out = dst, m.cap = cap, m.out_len = out_len, m.status = status;
    return cas__many_run(&m, threads, cas__unpack_fd_worker);
}
#endif

CASDEF int cas_stream_open_file(cas_stream **out, const char *path, const char *key, uint64_t limit,
                                const cas_allocator *alloc, char *err, size_t errcap) {
    unsigned char *meta = NULL;
    size_t ml = 0, pl;
    char *mpath;
    struct stat sb;
    int fd, mfd, rc, e;
    if (!out) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    *out = NULL;
    if (!path) return cas__serr(err, errcap, CAS_E_ARG, "invalid argument");
    pl = strlen(path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return cas__serr(err, errcap, errno == ENOENT ? CAS_E_NOTFOUND : CAS_E_IO, "Cannot open '%s': %s", path,
                         strerror(errno));
    mpath = (char *)cas__alloc(alloc, pl + 6);
    if (!mpath) {
        close(fd);
        return cas__serr(err, errcap, CAS_E_NOMEM, "out of memory");
    }
    memcpy(mpath, path, pl), memcpy(mpath + pl, "_meta", 6);
    mfd = open(mpath, O_RDONLY | O_CLOEXEC);
    cas__free(alloc, mpath);
    if (mfd >= 0) {
        e = cas__read_all(mfd, alloc, CAS__META_FILE_MAX, &meta, &ml);
        close(mfd);
        if (e) {
            close(fd);
            return cas__serr(err, errcap, CAS_E_IO, "Cannot read the sidecar of '%s': %s", path,
                             e == EFBIG ? "over 64 KiB" : strerror(e));
        }
    }
    if ((rc = cas__stream_alloc(out, NULL, NULL, fd, fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0, alloc, err,
                                errcap)) >= 0 &&
        (rc = cas__stream_begin(*out, (const char *)meta, ml, path, key, limit, 0, err, errcap)) < 0) {
        cas_stream_close(*out);
        *out = NULL;
    }
    cas__free(alloc, meta);
    return rc;
}

CASDEF int cas_stream_read(cas_stream *st, void *buf, size_t cap, size_t *got) {
    if (got) *got = 0;
    if (!st || !got || (!buf && cap)) return CAS_E_ARG;
    if (st->failed) return st->failed;
    if (st->done || !cap) return CAS_OK;
    for (;;) {
        size_t u = 0, m = 0;
        int rc;
        if ((rc = cas__stream_fill(st)) < 0) return rc;
        rc = cas_reader_update(st->r, st->in + st->in_pos, st->in_len - st->in_pos, &u, buf, cap, &m, st->eof);
        st->in_pos += u;
        if (rc < 0) {
            cas__fmt(st->msg, sizeof st->msg, "%s", cas_reader_message(st->r));
            return st->failed = rc;
        }
        if (rc == CAS_DONE) st->done = 1;
        if (m || st->done) {
            *got = m;
            return CAS_OK;
        }
        if (st->eof && st->in_pos == st->in_len && !u) { /* cannot happen: end=1 ends or fails */
            cas__fmt(st->msg, sizeof st->msg, "decoder made no progress at the end of the blob");
            return st->failed = CAS_E_STATE;
        }
    }
}

CASDEF int cas_stream_set_param(cas_stream *st, int param, int64_t v) {
    if (!st || (param != CAS_PARAM_LIMIT && param != CAS_PARAM_EXPECT_SIZE)) return CAS_E_ARG;
    if (st->done || st->failed) return CAS_E_STATE;
    return cas_reader_set_param(st->r, param, v);
}

CASDEF const char *cas_stream_message(const cas_stream *st) { return st ? st->msg : ""; }
CASDEF int cas_stream_format(const cas_stream *st) { return st ? cas_reader_format(st->r) : 0; }
CASDEF uint64_t cas_stream_stored_size(const cas_stream *st) { return st ? st->stored : 0; }

CASDEF void cas_stream_close(cas_stream *st) {
    cas_allocator a;
    if (!st) return;
    if (st->be) {
        st->be->b.close(st->be->b.user, st->obj);
        cas__be_unref(st->be);
    } else if (st->fd >= 0) {
        close(st->fd);
    }
    cas_reader_free(st->r);
    a = st->alloc;
    cas__free(&a, st->in);
    cas__free(&a, st);
}

/* Decodes a stream to the end, discarding the bytes. */
static int cas__stream_drain(cas_stream *st, uint64_t *total, char *err, size_t errcap) {
    unsigned char buf[16384];
    size_t got;
    uint64_t t = 0;
    int rc;
    for (;;) {
        rc = cas_stream_read(st, buf, sizeof buf, &got);
        if (rc < 0) return cas__serr(err, errcap, rc, "%s", cas_stream_message(st));
        if (!got) break;
        t += got;
    }
    if (total) *total = t;
    return CAS_OK;
}

CASDEF int cas_store_verify(cas_store *s, const char *flow, const char *key, uint64_t *decoded_size, char *err,
                            size_t errcap) {
    char bname[512];
    cas_object_info info;
    cas_stream *st;
    void *obj;
    int rc;
    if (decoded_size) *decoded_size = 0;
    if (cas_store_blob_name(flow ? flow : "", key ? key : "", bname, sizeof bname) < 0) bname[0] = 0;
    if ((rc = cas__open_blob(s, flow, key, 0, &obj, &info, bname, err, errcap)) < 0) return rc;
    if ((rc = cas__stream_alloc(&st, s->be, obj, -1, info.size, &s->alloc, err, errcap)) < 0) return rc;
    rc = cas__stream_begin(st, info.meta, info.meta_len, bname, key, (uint64_t)CAS__SP(s, CAS_PARAM_LIMIT),
                           (int)CAS__SP(s, CAS_PARAM_STRICT), err, errcap);
    if (rc >= 0) rc = cas__stream_drain(st, decoded_size, err, errcap);
    cas_stream_close(st);
    return rc;
}
