/* ---- object stores: reading an object as a stream ------------------------ */
/* One GET whose bytes flow through a small buffer as the reader asks for them:
 * the transfer pauses when the buffer is full, so memory stays bounded. A
 * transfer that breaks resumes where it stopped (Range, If-Match on the ETag). */

typedef struct cas__cloudobj {
    cas__xfer x; /* the GET, on m; x.r is r */
    cas__cloud *cs;
    cas__rq r;
    CURLM *m;
    unsigned char *buf;
    size_t cap, len, pos;
    int paused, running, head_only, again; /* again: the ended transfer's verdict */
    CURLcode cc;
    uint64_t size, delivered, skip;
    int size_known; /* the first answer stated its length */
    char etag[130];
    char meta[CAS__CLOUD_META_MAX + 1];
    size_t meta_len;
    int has_meta;
    volatile int cancel; /* set by close while the read-ahead thread pumps */
    unsigned char *dst;  /* the reader's buffer while it waits */
    size_t dcap, dlen;
    struct cas__ahead *ahead; /* large objects: the transfer runs on a thread of its own */
} cas__cloudobj;

/* The transfer's bytes: straight into the reader's buffer when it waits with
 * an empty one (no copy in between), the rest into the object's buffer; when
 * neither has room for the whole piece, pause (libcurl delivers it again). */
static size_t cas__obj_write(char *p, size_t size, size_t nitems, void *u) {
    cas__cloudobj *o = (cas__cloudobj *)u;
    size_t n = size * nitems, sk, rest, direct = 0;
    long st = cas__rq_status(&o->r);
    if (st < 200 || st >= 300) return cas__rq_write(p, size, nitems, &o->r); /* an error's body */
    sk = (size_t)CAS__MIN((uint64_t)n, o->skip);
    rest = n - sk;
    if (o->pos == o->len) o->pos = o->len = 0;
    if (o->cap - o->len < rest && o->pos) {
        memmove(o->buf, o->buf + o->pos, o->len - o->pos);
        o->len -= o->pos, o->pos = 0;
    }
    if (o->dst && o->len == 0) direct = CAS__MIN(rest, o->dcap - o->dlen);
    if (o->cap - o->len < rest - direct) {
        if (o->len || direct) {
            o->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        return 0; /* a piece larger than the whole buffer: cannot happen with BUFFERSIZE below cap */
    }
    o->skip -= sk;
    if (direct) memcpy(o->dst + o->dlen, p + sk, direct), o->dlen += direct;
    memcpy(o->buf + o->len, p + sk + direct, rest - direct);
    o->len += rest - direct;
    return n;
}

static void cas__ahead_start(cas__cloudobj *o);
static void cas__ahead_stop(cas__cloudobj *o);

static void cas__obj_stop(cas__cloudobj *o) {
    cas__xfer_stop(o->cs, o->m, &o->x);
    o->running = 0, o->paused = 0;
}

static int cas__obj_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__cloudobj *o = (cas__cloudobj *)ctx;
    (void)x;
    o->running = 0, o->paused = 0, o->cc = cc, o->again = again;
    return CAS_OK;
}

/* Runs the transfer until the headers are in (headers), bytes are buffered, or it ends. */
static void cas__obj_pump(cas__cloudobj *o, int headers) {
    for (;;) {
        cas__multi_turn(o->cs, o->m, cas__obj_ended, o);
        if (!o->running || o->paused || o->cancel) return;
        if (headers ? o->r.hdr_done : o->len > o->pos || o->dlen) return;
        cas__multi_wait(o->m, 200);
    }
}

/* Is a 200/206 the answer asked for? The first GET asks for the whole object: a
 * 206 is not that. A resume asks for bytes=DELIVERED-: a 206 must start there and
 * state the object's size (Content-Range), a 200 must be the whole object again;
 * either must be the same version (its ETag). 0 if so; 1 if not (retried, as a
 * server's fault); -1 if the object changed (not retried). why gets the reason. */
static int cas__obj_answer_bad(cas__cloudobj *o, char *why, size_t cap) {
    const cas__rq *r = &o->r;
    uint64_t first, last, total;
    if (!o->delivered) {
        if (r->status == 200) return 0;
        cas__fmt(why, cap, "the server answered a GET for the whole object with HTTP %ld", r->status);
        return 1;
    }
    if (o->etag[0] && r->etag[0] && strcmp(o->etag, r->etag)) {
        cas__fmt(why, cap, "the object changed while it was being read (its ETag went from %.64s to %.64s)", o->etag,
                 r->etag);
        return -1;
    }
    if (r->status == 200) {
        if (!o->size_known || (r->length >= 0 && (uint64_t)r->length == o->size)) return 0;
        cas__fmt(why, cap, "the server answered the resume at byte %llu with the whole object, %lld bytes, not %llu",
                 (unsigned long long)o->delivered, (long long)r->length, (unsigned long long)o->size);
        return 1;
    }
    if (!cas__content_range(r->range, &first, &last, &total) || first != o->delivered || last + 1 != total ||
        (o->size_known && total != o->size) || (r->length >= 0 && (uint64_t)r->length != last - first + 1)) {
        cas__fmt(why, cap, "the server answered the resume at byte %llu of %llu with Content-Range '%.60s'",
                 (unsigned long long)o->delivered, (unsigned long long)o->size, r->range[0] ? r->range : "(none)");
        return 1;
    }
    if (!o->size_known) o->size = total, o->size_known = 1;
    return 0;
}

/* Starts (or resumes from o->delivered) the GET and waits for its answer's headers:
 * CAS_OK when the bytes are flowing, else a status with the reason in msg. */
static int cas__obj_start(cas__cloudobj *o, char *msg, size_t cap) {
    cas__cloud *cs = o->cs;
    int attempts = (int)cas__cloudp(cs, CAS_PARAM_CLOUD_ATTEMPTS), rc;
    for (;;) {
        curl_slist_free_all(o->r.hdr);
        o->r.hdr = NULL;
        if (o->delivered) { /* a resume: the rest of the same version */
            char line[200];
            struct curl_slist *h;
            snprintf(line, sizeof line, "Range: bytes=%llu-", (unsigned long long)o->delivered);
            if ((h = curl_slist_append(NULL, line)) != NULL && o->etag[0]) {
                snprintf(line, sizeof line, "If-Match: %s", o->etag);
                if (!curl_slist_append(h, line)) curl_slist_free_all(h), h = NULL;
            }
            if (!(o->r.hdr = h)) return cas__oom(msg, cap);
        }
        o->len = o->pos = 0, o->skip = 0, o->paused = 0, o->cc = CURLE_OK, o->again = 0;
        if ((rc = cas__xfer_start(cs, o->m, &o->x, cas__obj_write, o, msg, cap)) < 0) return rc;
        o->running = 1;
        cas__obj_pump(o, 1);
        if (o->cancel) {
            cas__obj_stop(o);
            cas__fmt(msg, cap, "the stream was closed");
            return CAS_E_STATE;
        }
        if (o->running) o->r.status = cas__rq_status(&o->r); /* else the driver read it */
        if (o->r.hdr_done && (o->r.status == 200 || o->r.status == 206)) {
            if ((rc = cas__obj_answer_bad(o, msg, cap)) != 0) {
                cas__obj_stop(o); /* not the bytes asked for: none of them is taken */
                if (rc > 0 && o->r.tries < attempts) {
                    cas__cloud_backoff(cs, o->r.tries);
                    continue;
                }
                return CAS_E_IO;
            }
            if (o->r.status == 200 && o->delivered) o->skip = o->delivered; /* the server sent it all again */
            if (!o->delivered) {
                o->size = o->r.length >= 0 ? (uint64_t)o->r.length : 0, o->size_known = o->r.length >= 0;
                snprintf(o->etag, sizeof o->etag, "%s", o->r.etag);
                if ((o->has_meta = o->r.has_meta) != 0) memcpy(o->meta, o->r.meta, o->r.meta_len + 1);
                o->meta_len = o->r.meta_len;
            }
            return CAS_OK;
        }
        while (o->running && !o->paused && !o->cancel) cas__obj_pump(o, 0); /* an error: its body, to the end */
        if (o->running) o->r.status = cas__rq_status(&o->r), o->again = 0;  /* stopped inside a 2xx not asked for */
        cas__obj_stop(o);
        if (o->cc == CURLE_OK && o->r.status == 412 && o->delivered) {
            cas__fmt(msg, cap, "the object changed while it was being read");
            return CAS_E_IO;
        }
        if (o->again && o->r.tries < attempts) {
            cas__cloud_backoff(cs, o->r.tries);
            continue;
        }
        if (o->cc != CURLE_OK) {
            cas__rq_why(&o->r, o->cc, msg, cap);
            return CAS_E_IO;
        }
        return cas__cloud_answer_fail(&o->r, msg, cap);
    }
}

static void cas__cloud_close(void *u, void *obj) {
    cas__cloudobj *o = (cas__cloudobj *)obj;
    (void)u;
    if (!o) return;
    cas__ahead_stop(o);
    cas__obj_stop(o);
    cas__multi_put(o->cs, o->m);
    cas__rq_free(&o->r);
    cas__free(&o->cs->alloc, o->buf);
    cas__free(&o->cs->alloc, o);
}

static int cas__cloud_open(void *u, const char *name, unsigned flags, void **out, cas_object_info *info, char *msg,
                           size_t cap) {
    cas__cloud *cs = (cas__cloud *)u;
    cas__cloudobj *o = (cas__cloudobj *)cas__calloc(&cs->alloc, sizeof *o);
    int rc;
    *out = NULL;
    if (!o) {
        return cas__oom(msg, cap);
    }
    o->cs = cs;
    o->head_only = (flags & CAS_OPEN_HEAD) != 0;
    cas__rq_init(&o->r, o->head_only ? "HEAD" : "GET", &cs->alloc);
    o->x.r = &o->r;
    o->r.recv_buf = 512L * 1024; /* libcurl's largest */
    if (cas__cloud_url(cs, &o->r.url, name, NULL) < 0) {
        cas__cloud_close(u, o);
        return cas__oom(msg, cap);
    }
    if (o->head_only) { /* a HEAD: size and metadata, no transfer kept */
        rc = cas__rq_run(cs, &o->r, msg, cap);
        if (rc == CAS_OK && o->r.status != 200) rc = cas__cloud_answer_fail(&o->r, msg, cap);
        if (rc == CAS_OK) {
            o->size = o->r.length >= 0 ? (uint64_t)o->r.length : 0;
            if ((o->has_meta = o->r.has_meta) != 0) memcpy(o->meta, o->r.meta, o->r.meta_len + 1);
            o->meta_len = o->r.meta_len;
        }
    } else {
        o->cap = CAS__CLOUD_STREAM_BUF;
        o->buf = (unsigned char *)cas__alloc(&cs->alloc, o->cap);
        o->m = cas__multi_get(cs);
        rc = o->buf && o->m ? cas__obj_start(o, msg, cap) : cas__oom(msg, cap);
    }
    if (rc < 0) {
        cas__cloud_close(u, o);
        return rc;
    }
    if (!o->head_only) cas__ahead_start(o);
    memset(info, 0, sizeof *info);
    info->size = o->size;
    info->mtime = o->r.mtime;
    info->meta = o->has_meta ? o->meta : NULL;
    info->meta_len = o->meta_len;
    *out = o;
    return CAS_OK;
}

/* The transfer's next bytes, pumping it on this thread. */
static int cas__obj_read(cas__cloudobj *o, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    *got = 0;
    for (;;) {
        if (o->cancel) {
            cas__fmt(msg, mcap, "the stream was closed");
            return CAS_E_STATE;
        }
        if (o->pos < o->len) {
            size_t k = CAS__MIN(cap, o->len - o->pos);
            memcpy(buf, o->buf + o->pos, k);
            o->pos += k, o->delivered += k;
            *got = k;
            return CAS_OK;
        }
        if (!o->running) {
            int rc;
            if (o->cc == CURLE_OK && o->delivered >= o->size) return CAS_OK; /* the end */
            /* the transfer broke (a reset, a stall, a body cut short): resume it */
            if (o->r.tries >= (int)cas__cloudp(o->cs, CAS_PARAM_CLOUD_ATTEMPTS) ||
                (o->cc != CURLE_OK && !cas__cc_transient(o->cc))) {
                CURLcode cc = o->cc != CURLE_OK ? o->cc : CURLE_PARTIAL_FILE;
                cas__rq_why(&o->r, cc, msg, mcap);
                return CAS_E_IO;
            }
            cas__obj_stop(o);
            cas__cloud_backoff(o->cs, o->r.tries);
            if ((rc = cas__obj_start(o, msg, mcap)) < 0) return rc;
            continue;
        }
        o->dst = (unsigned char *)buf, o->dcap = cap, o->dlen = 0;
        if (o->paused) {
            o->paused = 0;
            curl_easy_pause(o->x.e, CURLPAUSE_CONT);
        }
        cas__obj_pump(o, 0);
        o->dst = NULL;
        if (o->dlen) {
            o->delivered += o->dlen;
            *got = o->dlen;
            o->dlen = 0;
            return CAS_OK;
        }
    }
}

/* Read-ahead for large objects: a thread fills a ring of chunks while the reader
 * decodes, so that the network and the decoder use a core each (a 1 GiB gzip
 * artifact decodes at the speed of its decoder, an LZ4 one at the speed of the
 * network). Objects of CAS_PARAM_CLOUD_RANGED_MIN bytes and more come as ranged GETs
 * of one chunk each, CAS__AHEAD_CHUNKS in flight (If-Match on the first answer's
 * ETag), as the AWS and Azure SDKs read large objects: one connection to a cloud
 * store carries some tens of MB/s, several carry more. A server on this machine
 * is read in one GET by default (cas__endpoint_local): one stream from it is not
 * the limit, and ranges only cost it CPU (measured: 3x slower on azurite, 1.6x on
 * radosgw, for a 43 MB blob).
 * Chunks may land out of order; the reader takes them in order. */
#ifndef CAS_NO_THREADS
#define CAS__AHEAD_MIN ((uint64_t)8 << 20)
#define CAS__AHEAD_CHUNK ((size_t)1 << 20)  /* one transfer: what each fill moves */
#define CAS__RANGED_CHUNK ((size_t)4 << 20) /* ranged: one GET each */
#define CAS__AHEAD_CHUNKS 4

struct cas__ahead {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *slab;
    size_t chunk; /* bytes per slot */
    size_t fill[CAS__AHEAD_CHUNKS], rpos;
    int ready[CAS__AHEAD_CHUNKS];   /* the slot's bytes are all in */
    int head, count, eof, rc, stop; /* count: slots taken from head on (filling or ready) */
    CURLM *m;                       /* ranged: the GETs' multi handle, woken when a slot frees */
    char msg[CAS__MSG];
};

/* One ranged GET into its slot. */
typedef struct cas__rslot {
    cas__xfer x; /* first: the driver hands back &x */
    cas__rq r;
    cas__cloudobj *o;
    unsigned char *dst;
    size_t want, got;
    uint64_t off;
    int state, slot; /* state: 0 idle, 1 waiting (x.due), 2 in flight */
    int overflow;    /* the answer was not the range asked for (retried) */
    int changed;     /* ... nor the version the first answer was (not retried) */
} cas__rslot;

static size_t cas__range_write(char *p, size_t size, size_t nitems, void *u) {
    cas__rslot *s = (cas__rslot *)u;
    size_t n = size * nitems;
    long st = cas__rq_status(&s->r);
    uint64_t first, last, total;
    if (st < 200 || st >= 300) return cas__rq_write(p, size, nitems, &s->r); /* an error's body */
    if (!s->got) { /* the answer's first bytes: are they the range asked for, of the same version? */
        const char *etag = s->o->etag;
        if (etag[0] && s->r.etag[0] && strcmp(etag, s->r.etag)) {
            s->changed = 1;
            return 0;
        }
        if (st != 206 || !cas__content_range(s->r.range, &first, &last, &total) || first != s->off ||
            last + 1 != s->off + s->want || total != s->o->size) {
            s->overflow = 1;
            return 0;
        }
    }
    if (n > s->want - s->got) { /* more than asked (a 206 of the range asked for: checked above) */
        s->overflow = 1;
        return 0;
    }
    memcpy(s->dst + s->got, p, n);
    s->got += n;
    return n;
}

static int cas__range_start(cas__rslot *s, CURLM *m, char *msg, size_t cap) {
    cas__cloudobj *o = s->o;
    char line[200];
    int rc;
    curl_slist_free_all(s->r.hdr);
    s->r.hdr = NULL, s->got = 0, s->overflow = 0, s->changed = 0;
    if (!s->r.url.len && cas__buf_put(&s->r.url, o->r.url.p, o->r.url.len) < 0) return cas__oom(msg, cap);
    snprintf(line, sizeof line, "Range: bytes=%llu-%llu", (unsigned long long)s->off,
             (unsigned long long)(s->off + s->want - 1));
    if (!(s->r.hdr = curl_slist_append(s->r.hdr, line))) return cas__oom(msg, cap);
    if (o->etag[0]) {
        snprintf(line, sizeof line, "If-Match: %s", o->etag);
        if (!(s->r.hdr = curl_slist_append(s->r.hdr, line))) return cas__oom(msg, cap);
    }
    if ((rc = cas__xfer_start(o->cs, m, &s->x, cas__range_write, s, msg, cap)) < 0) return rc;
    s->state = 2;
    return CAS_OK;
}

/* A range that ended: in (the reader's now), to try again after its backoff, or the
 * read's end (an error, its reason in the turn's msg). */
typedef struct cas__ranged_turn {
    struct cas__ahead *a;
    int attempts, *active;
    char *msg;
} cas__ranged_turn;

static int cas__range_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__ranged_turn *t = (cas__ranged_turn *)ctx;
    cas__rslot *s = (cas__rslot *)(void *)x;
    struct cas__ahead *a = t->a;
    (*t->active)--;
    if (cc == CURLE_OK && s->r.status == 206 && s->got == s->want) { /* in: the reader's now */
        pthread_mutex_lock(&a->mu);
        a->fill[s->slot] = s->got, a->ready[s->slot] = 1, s->state = 0;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        return CAS_OK;
    }
    if ((cc == CURLE_OK && s->r.status == 412) || s->changed) {
        cas__fmt(t->msg, CAS__MSG, "the object changed while it was being read%s", s->changed ? " (its ETag)" : "");
        return CAS_E_IO;
    }
    if ((cc == CURLE_OK && s->r.status == 206) || s->overflow) again = 1; /* short, or not the range asked */
    if (again && s->r.tries < t->attempts) {
        s->state = 1, s->x.due = cas__ms() + cas__cloud_backoff_ms(s->o->cs, s->r.tries);
        return CAS_OK;
    }
    if (s->overflow)
        cas__fmt(t->msg, CAS__MSG,
                 "the answer to a ranged GET of bytes %llu-%llu was not that range (HTTP %ld, "
                 "Content-Range '%.60s')",
                 (unsigned long long)s->off, (unsigned long long)(s->off + s->want - 1), s->r.status,
                 s->r.range[0] ? s->r.range : "(none)");
    else if (cc != CURLE_OK) cas__rq_why(&s->r, cc, t->msg, CAS__MSG);
    else if (s->r.status == 206)
        cas__fmt(t->msg, CAS__MSG, "a range came short (%lu of %lu bytes)", (unsigned long)s->got,
                 (unsigned long)s->want);
    else cas__cloud_answer_fail(&s->r, t->msg, CAS__MSG);
    return CAS_E_IO;
}

/* The ranged read-ahead: keeps every free slot's GET going, hands finished slots
 * to the reader, retries a failed range after its backoff. Returns when the last
 * chunk is in, on a final error, or when stopped. */
static void cas__ahead_ranged(cas__cloudobj *o) {
    struct cas__ahead *a = o->ahead;
    cas__rslot sl[CAS__AHEAD_CHUNKS];
    CURLM *m = cas__multi_get(o->cs);
    uint64_t next = 0; /* the offset of the next chunk to ask for */
    int i, rc = CAS_OK, active = 0;
    char msg[CAS__MSG];
    cas__ranged_turn turn;
    msg[0] = 0;
    turn.a = a, turn.attempts = (int)cas__cloudp(o->cs, CAS_PARAM_CLOUD_ATTEMPTS), turn.active = &active,
    turn.msg = msg;
    memset(sl, 0, sizeof sl);
    for (i = 0; i < CAS__AHEAD_CHUNKS; i++) {
        sl[i].o = o, sl[i].slot = i;
        cas__rq_init(&sl[i].r, "GET", &o->cs->alloc);
        sl[i].x.r = &sl[i].r;
    }
    if (!m) rc = cas__oom(msg, sizeof msg);
    pthread_mutex_lock(&a->mu);
    a->m = m;
    pthread_mutex_unlock(&a->mu);
    while (rc == CAS_OK) {
        int64_t now = cas__ms();
        pthread_mutex_lock(&a->mu);
        if (a->stop) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        while (a->count < CAS__AHEAD_CHUNKS && next < o->size) { /* a free slot: the next chunk */
            cas__rslot *s = &sl[(a->head + a->count) % CAS__AHEAD_CHUNKS];
            s->off = next, s->want = (size_t)CAS__MIN((uint64_t)a->chunk, o->size - next);
            s->dst = a->slab + (size_t)s->slot * a->chunk, s->state = 1, s->x.due = 0, s->r.tries = 0;
            a->ready[s->slot] = 0, a->count++;
            next += s->want;
        }
        if (next >= o->size) a->eof = 1; /* every chunk asked for: the reader ends after the last */
        pthread_mutex_unlock(&a->mu);
        for (i = 0; i < CAS__AHEAD_CHUNKS && rc == CAS_OK; i++)
            if (sl[i].state == 1 && sl[i].x.due <= now) {
                if ((rc = cas__range_start(&sl[i], m, msg, sizeof msg)) == CAS_OK) active++;
            }
        if (rc < 0) break;
        rc = cas__multi_turn(o->cs, m, cas__range_ended, &turn);
        if (rc < 0) break;
        pthread_mutex_lock(&a->mu);
        if (a->eof && !active) { /* everything asked for is in */
            int pending = 0;
            for (i = 0; i < CAS__AHEAD_CHUNKS; i++) pending |= sl[i].state != 0;
            if (!pending) {
                pthread_mutex_unlock(&a->mu);
                break;
            }
        }
        pthread_mutex_unlock(&a->mu);
        cas__multi_wait(m, 1000); /* a transfer's bytes, or the reader freeing a slot */
    }
    for (i = 0; i < CAS__AHEAD_CHUNKS; i++) {
        cas__xfer_stop(o->cs, m, &sl[i].x);
        cas__rq_free(&sl[i].r);
    }
    pthread_mutex_lock(&a->mu);
    a->m = NULL;
    if (rc < 0) a->rc = rc, memcpy(a->msg, msg, sizeof msg);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    cas__multi_put(o->cs, m);
}

static void *cas__ahead_run(void *arg) {
    cas__cloudobj *o = (cas__cloudobj *)arg;
    struct cas__ahead *a = o->ahead;
    if (a->chunk == CAS__RANGED_CHUNK) {
        cas__ahead_ranged(o);
        return NULL;
    }
    for (;;) { /* one transfer, chunk after chunk */
        size_t n = 0, got;
        int rc = CAS_OK, slot;
        char msg[CAS__MSG];
        pthread_mutex_lock(&a->mu);
        while (a->count == CAS__AHEAD_CHUNKS && !a->stop) pthread_cond_wait(&a->cv, &a->mu);
        if (a->stop) {
            pthread_mutex_unlock(&a->mu);
            return NULL;
        }
        slot = (a->head + a->count) % CAS__AHEAD_CHUNKS; /* a free chunk: the reader never touches it */
        pthread_mutex_unlock(&a->mu);
        msg[0] = 0;
        while (n < a->chunk) {
            rc = cas__obj_read(o, a->slab + (size_t)slot * a->chunk + n, a->chunk - n, &got, msg, sizeof msg);
            if (rc < 0 || !got) break;
            n += got;
        }
        pthread_mutex_lock(&a->mu);
        if (n) a->fill[slot] = n, a->ready[slot] = 1, a->count++;
        if (rc < 0) a->rc = rc, memcpy(a->msg, msg, sizeof msg);
        else if (n < a->chunk) a->eof = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        if (rc < 0 || n < a->chunk) return NULL;
    }
}

static int cas__ahead_read(cas__cloudobj *o, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    struct cas__ahead *a = o->ahead;
    size_t k;
    pthread_mutex_lock(&a->mu);
    while (!(a->count && a->ready[a->head]) && !(a->eof && !a->count) && !a->rc) pthread_cond_wait(&a->cv, &a->mu);
    if (!(a->count && a->ready[a->head])) { /* drained: the end, or what stopped the transfer */
        int rc = a->rc;
        if (rc) cas__fmt(msg, mcap, "%s", a->msg);
        pthread_mutex_unlock(&a->mu);
        return rc;
    }
    pthread_mutex_unlock(&a->mu);
    k = CAS__MIN(cap, a->fill[a->head] - a->rpos); /* the head chunk is the reader's until it is handed back */
    memcpy(buf, a->slab + (size_t)a->head * a->chunk + a->rpos, k);
    a->rpos += k;
    *got = k;
    if (a->rpos == a->fill[a->head]) {
        pthread_mutex_lock(&a->mu);
        a->ready[a->head] = 0, a->head = (a->head + 1) % CAS__AHEAD_CHUNKS, a->count--, a->rpos = 0;
        pthread_cond_broadcast(&a->cv);
        if (a->m) curl_multi_wakeup(a->m); /* the ranged GETs: a slot for the next chunk */
        pthread_mutex_unlock(&a->mu);
    }
    return CAS_OK;
}

/* Starts the read-ahead of a large object; without it (no memory, no thread) reads run inline. */
static void cas__ahead_start(cas__cloudobj *o) {
    struct cas__ahead *a;
    int64_t from = cas__cloudp(o->cs, CAS_PARAM_CLOUD_RANGED_MIN);
    int ranged = from > 0 && o->size >= (uint64_t)from && cas__cloudp(o->cs, CAS_PARAM_CLOUD_CONNECTIONS) > 1;
    size_t chunk = ranged ? CAS__RANGED_CHUNK : CAS__AHEAD_CHUNK;
    if (o->size < CAS__AHEAD_MIN || !(a = (struct cas__ahead *)cas__calloc(&o->cs->alloc, sizeof *a))) return;
    if (!(a->slab = (unsigned char *)cas__alloc(&o->cs->alloc, chunk * CAS__AHEAD_CHUNKS)) ||
        pthread_mutex_init(&a->mu, NULL) != 0) {
        cas__free(&o->cs->alloc, a->slab);
        cas__free(&o->cs->alloc, a);
        return;
    }
    if (pthread_cond_init(&a->cv, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        cas__free(&o->cs->alloc, a->slab);
        cas__free(&o->cs->alloc, a);
        return;
    }
    a->chunk = chunk;
    if (ranged) cas__obj_stop(o); /* the first GET gave the size and the ETag; ranges bring the bytes */
    o->ahead = a;
    if (pthread_create(&a->th, NULL, cas__ahead_run, o) != 0) {
        o->ahead = NULL;
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        cas__free(&o->cs->alloc, a->slab);
        cas__free(&o->cs->alloc, a);
        if (ranged) { /* reads run inline on a new transfer from the start */
            char msg[CAS__MSG];
            o->r.tries = 0;
            if (cas__obj_start(o, msg, sizeof msg) < 0) o->running = 0, o->cc = CURLE_COULDNT_CONNECT;
        }
    }
}

static void cas__ahead_stop(cas__cloudobj *o) {
    struct cas__ahead *a = o->ahead;
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1, o->cancel = 1; /* a transfer in progress gives up at its next pump */
    pthread_cond_broadcast(&a->cv);
    if (a->m) curl_multi_wakeup(a->m);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    cas__free(&o->cs->alloc, a->slab);
    cas__free(&o->cs->alloc, a);
    o->ahead = NULL;
}
#else
static void cas__ahead_start(cas__cloudobj *o) { (void)o; }
static void cas__ahead_stop(cas__cloudobj *o) { (void)o; }
#endif

static int cas__cloud_read(void *u, void *obj, void *buf, size_t cap, size_t *got, char *msg, size_t mcap) {
    cas__cloudobj *o = (cas__cloudobj *)obj;
    (void)u;
    *got = 0;
    if (o->head_only) {
        cas__fmt(msg, mcap, "opened for its metadata only");
        return CAS_E_STATE;
    }
#ifndef CAS_NO_THREADS
    if (o->ahead) return cas__ahead_read(o, buf, cap, got, msg, mcap);
#endif
    return cas__obj_read(o, buf, cap, got, msg, mcap);
}
