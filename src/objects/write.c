/* ---- object stores: writing an object ------------------------------------ */
/* Up to one part size an object goes in one PUT; beyond, a multipart upload
 * (its metadata given when it starts, the object visible only when it
 * completes, aborted on any failure). When the name is not known yet (the key
 * is the hash of the bytes), the bytes beyond the first part wait in an
 * unlinked temp file until commit names them. */

typedef struct cas__cloudw {
    cas__cloud *cs;
    char *name; /* NULL until commit when created without one */
    char meta[CAS__CLOUD_META_MAX + 1];
    size_t meta_len;
    unsigned char *buf;
    size_t len, cap;
    int spool; /* temp file fd, -1 if none */
    uint64_t spooled, total;
    char upload[512]; /* the multipart upload's id, "" if none */
    cas__buf parts;   /* <Part> elements for CompleteMultipartUpload */
    int nparts;
} cas__cloudw;

static size_t cas__cloudw_part(const cas__cloudw *w) {
    uint64_t p = (uint64_t)cas__cloudp(w->cs, CAS_PARAM_CLOUD_PART_SIZE);
    int k;
    for (k = 0; k < w->nparts / 1000 && p < ((uint64_t)1 << 30); k++) p *= 2; /* 10000 parts reach 5 TB */
    return (size_t)p;
}

static int cas__cloudw_fail(char *msg, size_t cap, const char *what, const char *why) {
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s", why);
    cas__fmt(msg, cap, "%s: %s", what, tmp);
    return CAS_E_IO;
}

/* PUT ?partNumber=N&uploadId=..: one part, with its SHA-256 (a body changed in transit is refused).
 * Azure: PUT ?blockid=..&comp=block, one uncommitted block of the blob. */
static int cas__cloudw_put_part(cas__cloudw *w, const unsigned char *p, size_t n, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__buf q;
    cas__rq r;
    char sha[65], line[300], id[CAS__PART_ID];
    int rc;
    if (!w->upload[0] && (rc = cs->d->upload_begin(w, msg, cap)) < 0) return rc;
    if (w->nparts >= CAS__CLOUD_MAX_PARTS) return cas__cloudw_fail(msg, cap, "uploading", "over 10000 parts");
    memset(&q, 0, sizeof q);
    q.a = &cs->alloc;
    cs->d->part_query(w, w->nparts + 1, &q, id);
    cas__rq_init(&r, "PUT", &cs->alloc);
    cas__sha256_hex(p, n, sha);
    r.up = p, r.up_len = n, r.up_sha = sha;
    if (!q.p || cas__cloud_url(cs, &r.url, w->name, q.p) < 0) rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK &&
             !cs->d->part_entry(&r, w->nparts + 1, id, line, sizeof line))
        rc = cas__cloud_answer_fail(&r, msg, cap);
    if (rc == CAS_OK) {
        w->nparts++;
        if (cas__buf_addz(&w->parts, line) < 0) rc = cas__oom(msg, cap);
    } else {
        char why[400];
        snprintf(why, sizeof why, "%s", msg);
        snprintf(line, sizeof line, "uploading part %d", w->nparts + 1);
        rc = rc == CAS_E_NOMEM ? rc : cas__cloudw_fail(msg, cap, line, why);
    }
    cas__free(&cs->alloc, q.p);
    cas__rq_free(&r);
    return rc;
}

/* DELETE ?uploadId=..: no parts are left behind (best effort; gc catches the rest). */
static void cas__cloudw_abort_upload(cas__cloudw *w) {
    cas__buf q;
    cas__rq r;
    char msg[300];
    if (w->cs->d->drops_uploads) w->upload[0] = 0; /* Azure: uncommitted blocks go after a week at most */
    if (!w->upload[0]) return;
    memset(&q, 0, sizeof q);
    q.a = &w->cs->alloc;
    cas__buf_addz(&q, "uploadId=");
    cas__uri_encode(&q, w->upload, 0);
    cas__rq_init(&r, "DELETE", &w->cs->alloc);
    if (q.p && cas__cloud_url(w->cs, &r.url, w->name, q.p) == CAS_OK) cas__rq_run(w->cs, &r, msg, sizeof msg);
    cas__free(&w->cs->alloc, q.p);
    cas__rq_free(&r);
    w->upload[0] = 0;
}

static int cas__cloudw_spool(cas__cloudw *w, const unsigned char *p, size_t n, char *msg, size_t cap) {
    if (w->spool < 0) { /* mkstemp's file, close-on-exec from its first moment (mkostemp is not POSIX) */
        const char *dir = getenv("TMPDIR");
        char path[4096];
        int tries = 0;
        do {
            snprintf(path, sizeof path, "%s/cas-spool-%016llx", dir && dir[0] ? dir : "/tmp",
                     (unsigned long long)cas__cloud_random(w->cs));
            w->spool = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        } while (w->spool < 0 && errno == EEXIST && ++tries < 100);
        if (w->spool < 0)
            return cas__cloudw_fail(msg, cap, "cannot create a temp file for the upload", strerror(errno));
        unlink(path); /* gone with the process, whatever happens */
    }
    {
        int e = cas__write_all(w->spool, p, n);
        if (e) return cas__cloudw_fail(msg, cap, "cannot write a temp file for the upload", strerror(e));
    }
    w->spooled += n;
    return CAS_OK;
}

static int cas__cloud_create(void *u, const char *dir, const char *name, const char *meta, size_t ml, void **out,
                             char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloudw *w;
    (void)dir;
    *out = NULL;
    if (ml > CAS__CLOUD_META_MAX) {
        cas__fmt(msg, cap, "metadata over 2 KB (S3's limit)");
        return CAS_E_ARG;
    }
    if (!(w = (cas__cloudw *)cas__calloc(&cs->alloc, sizeof *w))) {
        return cas__oom(msg, cap);
    }
    w->cs = cs, w->spool = -1, w->parts.a = &cs->alloc;
    if (meta) memcpy(w->meta, meta, ml), w->meta_len = ml;
    w->meta[ml] = 0;
    if (name && !(w->name = (char *)cas__alloc(&cs->alloc, strlen(name) + 1))) {
        cas__free(&cs->alloc, w);
        return cas__oom(msg, cap);
    }
    if (name) memcpy(w->name, name, strlen(name) + 1);
    *out = w;
    return CAS_OK;
}

static int cas__cloud_write(void *u, void *wp, const void *data, size_t n, char *msg, size_t cap) {
    cas__cloudw *w = (cas__cloudw *)wp;
    const unsigned char *p = (const unsigned char *)data;
    int rc;
    (void)u;
    while (n) {
        size_t part = cas__cloudw_part(w), k;
        if (w->len == part) { /* a full part: up it goes (or into the spool, nameless) */
            rc = w->name ? cas__cloudw_put_part(w, w->buf, w->len, msg, cap)
                         : cas__cloudw_spool(w, w->buf, w->len, msg, cap);
            if (rc < 0) return rc;
            w->len = 0;
            continue;
        }
        if (!w->len && w->name && (n > part || (w->upload[0] && n == part))) { /* straight from the caller's bytes */
            if ((rc = cas__cloudw_put_part(w, p, part, msg, cap)) < 0) return rc;
            p += part, n -= part, w->total += part;
            continue;
        }
        if (w->cap < part) { /* grows to one part at most */
            size_t nc = CAS__MIN(part, CAS__MAXZ(w->len + n, CAS__MAXZ(w->cap * 2, (size_t)64 << 10)));
            unsigned char *nb = (unsigned char *)cas__alloc(&w->cs->alloc, nc);
            if (!nb) {
                cas__fmt(msg, cap, "out of memory");
                return CAS_E_NOMEM;
            }
            if (w->len) memcpy(nb, w->buf, w->len);
            cas__free(&w->cs->alloc, w->buf);
            w->buf = nb, w->cap = nc;
        }
        k = CAS__MIN(n, CAS__MIN(w->cap, part) - w->len);
        memcpy(w->buf + w->len, p, k);
        w->len += k, p += k, n -= k, w->total += k;
    }
    return CAS_OK;
}

/* After a completion whose answer was lost: is the object there, whole? */
static int cas__cloudw_landed(cas__cloudw *w) {
    cas__rq r;
    char msg[200];
    int ok;
    cas__rq_init(&r, "HEAD", &w->cs->alloc);
    ok = cas__cloud_url(w->cs, &r.url, w->name, NULL) == CAS_OK && cas__rq_run(w->cs, &r, msg, sizeof msg) == CAS_OK &&
         r.status == 200 && r.length >= 0 && (uint64_t)r.length == w->total && r.has_meta &&
         r.meta_len == w->meta_len && !memcmp(r.meta, w->meta, w->meta_len);
    cas__rq_free(&r);
    return ok;
}

/* POST ?uploadId=..: the parts become the object. Repeated after a lost answer,
 * it finds the upload gone; the object then tells whether the first try landed. */
static int cas__cloudw_complete(cas__cloudw *w, char *msg, size_t cap) {
    cas__cloud *cs = w->cs;
    cas__buf q, body;
    cas__rq r;
    int rc;
    memset(&q, 0, sizeof q), memset(&body, 0, sizeof body);
    q.a = body.a = &cs->alloc;
    cs->d->complete_query(w, &q);
    cas__buf_addz(&body, cs->d->complete_open);
    cas__buf_put(&body, w->parts.p ? w->parts.p : "", w->parts.len);
    cas__buf_addz(&body, cs->d->complete_close);
    cas__rq_init(&r, cs->d->complete_method, &cs->alloc);
    r.keep = (size_t)1 << 20;
    r.up = (const unsigned char *)body.p, r.up_len = body.len;
    if (!q.p || !body.p || cas__cloud_url(cs, &r.url, w->name, q.p) < 0 ||
        !(r.hdr = curl_slist_append(r.hdr, "Content-Type: application/xml")) ||
        (cs->d->complete_meta && cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0))
        rc = cas__oom(msg, cap);
    else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK && (rc = cs->d->complete_answer(w, &r, msg, cap)) == CAS_OK)
        w->upload[0] = 0; /* done: nothing to abort */
    cas__free(&cs->alloc, q.p);
    cas__free(&cs->alloc, body.p);
    cas__rq_free(&r);
    return rc;
}

static int cas__cloud_exists(void *u, const char *name, char *msg, size_t cap);

static int cas__cloud_commit(void *u, void *wp, const char *name, int mode, int *stored, char *msg, size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloudw *w = (cas__cloudw *)wp;
    int rc;
    *stored = 0;
    if (!w->name || strcmp(w->name, name)) { /* named now */
        char *nm = (char *)cas__alloc(&cs->alloc, strlen(name) + 1);
        if (!nm) return cas__oom(msg, cap);
        memcpy(nm, name, strlen(name) + 1);
        cas__free(&cs->alloc, w->name);
        w->name = nm;
    }
    if (mode == CAS_COMMIT_META) return cs->d->set_meta(w, stored, msg, cap);
    if (w->spooled) { /* the bytes waited for their name: all of them into the spool, then up in parts */
        uint64_t off = 0;
        size_t part;
        if ((rc = cas__cloudw_spool(w, w->buf, w->len, msg, cap)) < 0) return rc;
        w->len = 0;
        while (off < w->spooled) {
            size_t k = 0;
            part = cas__cloudw_part(w);
            if (w->cap < part) {
                cas__free(&cs->alloc, w->buf);
                if (!(w->buf = (unsigned char *)cas__alloc(&cs->alloc, part))) {
                    w->cap = 0;
                    return cas__oom(msg, cap);
                }
                w->cap = part;
            }
            while (k < part && off + k < w->spooled) {
                ssize_t got = pread(w->spool, w->buf + k, part - k, (off_t)(off + k));
                if (got < 0 && errno == EINTR) continue;
                if (got <= 0)
                    return cas__cloudw_fail(msg, cap, "reading back the upload's temp file",
                                            strerror(errno ? errno : EIO));
                k += (size_t)got;
            }
            if ((rc = cas__cloudw_put_part(w, w->buf, k, msg, cap)) < 0) return rc;
            off += k;
        }
    } else if (w->upload[0]) {
        if ((w->len || !w->nparts) && (rc = cas__cloudw_put_part(w, w->buf, w->len, msg, cap)) < 0) return rc;
        w->len = 0;
    } else { /* one PUT; If-None-Match makes "only if absent" the server's decision */
        cas__rq r;
        char sha[65];
        cas__rq_init(&r, "PUT", &cs->alloc);
        r.keep = (size_t)1 << 20;
        cas__sha256_hex(w->buf ? w->buf : (const unsigned char *)"", w->len, sha);
        r.up = w->buf, r.up_len = w->len, r.up_sha = sha;
        if (cas__cloud_url(cs, &r.url, w->name, NULL) < 0 ||
            cas__cloud_write_headers(cs, &r.hdr, w->meta, w->meta_len) < 0 ||
            (cs->d->put_header && !(r.hdr = curl_slist_append(r.hdr, cs->d->put_header))) ||
            (mode == CAS_COMMIT_CREATE && !(r.hdr = curl_slist_append(r.hdr, "If-None-Match: *"))))
            rc = cas__oom(msg, cap);
        else if ((rc = cas__rq_run(cs, &r, msg, cap)) == CAS_OK) {
            if (r.status == 200 || r.status == 201) *stored = 1;
            else if ((r.status == 412 || r.status == 409) && mode == CAS_COMMIT_CREATE)
                *stored = 0; /* it is there already (Azure: 409 BlobAlreadyExists) */
            else {
                rc = cas__cloud_answer_fail(&r, msg, cap);
                if (rc == CAS_E_NOTFOUND) rc = CAS_E_IO;
            }
        }
        cas__rq_free(&r);
        return rc;
    }
    if (mode == CAS_COMMIT_CREATE && cas__cloud_exists(u, w->name, msg, cap) > 0) { /* dedup: drop the upload */
        cas__cloudw_abort_upload(w);
        return CAS_OK;
    }
    if ((rc = cas__cloudw_complete(w, msg, cap)) == CAS_OK) *stored = 1;
    return rc;
}

static void cas__cloud_abort(void *u, void *wp) {
    cas__cloudw *w = (cas__cloudw *)wp;
    (void)u;
    if (!w) return;
    cas__cloudw_abort_upload(w);
    if (w->spool >= 0) close(w->spool);
    cas__free(&w->cs->alloc, w->buf);
    cas__free(&w->cs->alloc, w->name);
    cas__free(&w->cs->alloc, w->parts.p);
    cas__free(&w->cs->alloc, w);
}
