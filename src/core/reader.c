/* ---- reader -------------------------------------------------------------- */

struct cas_reader {
    cas_allocator alloc;
    int format, codec_id;
    const cas__format_row *frow;
    const cas__codec_row *crow;
    cas_codec *codecs[CAS__CODEC_ROWS]; /* by row of cas__codecs, created on first use, reused */
    cas_hasher *hasher;
    int hash_algo, state; /* 0 idle, 1 sniffing, 2 decoding, 3 done, <0 failed */
    char key[CAS_KEY_BUF];
    uint64_t limit, total_in, total_out;
    int64_t expect_size;
    int strict, backend;
    unsigned char sniff[4];
    size_t sniff_len, sniff_fed;
    char *name;
    size_t name_cap;
    char msg[CAS_MESSAGE_MAX];
    char reason[400]; /* msg without Metaflow's "Could not unpack artifact '...': " */
};

CASDEF int cas_reader_create(cas_reader **out, const cas_allocator *alloc) {
    cas_reader *r;
    if (!out) return CAS_E_ARG;
    *out = r = (cas_reader *)cas__obj_new(sizeof *r, alloc);
    if (!r) return CAS_E_NOMEM;
    r->expect_size = -1;
    return CAS_OK;
}

CASDEF void cas_reader_free(cas_reader *r) {
    cas_allocator a;
    size_t i;
    if (!r) return;
    for (i = 0; i < CAS__CODEC_ROWS; i++) cas_codec_free(r->codecs[i]);
    cas_hasher_free(r->hasher);
    a = r->alloc;
    cas__free(&a, r->name);
    cas__free(&a, r);
}

CASDEF void cas_reader_free_buffer(cas_reader *r, void *p) {
    if (r) cas__free(&r->alloc, p);
}

CASDEF int cas_reader_set_param(cas_reader *r, int param, int64_t v) {
    int rc;
    if (!r) return CAS_E_ARG;
    if ((rc = cas__param_check(cas__param_row_of(param), CAS__FOR_READER, v)) < 0) return rc;
    switch (param) {
    case CAS_PARAM_LIMIT: r->limit = (uint64_t)v; break;
    case CAS_PARAM_EXPECT_SIZE: r->expect_size = v; break;
    case CAS_PARAM_STRICT: r->strict = v != 0; break;
    case CAS_PARAM_GZIP_BACKEND: r->backend = (int)v; break;
    default: return CAS_E_ARG;
    }
    return CAS_OK;
}

CASDEF const char *cas_reader_message(const cas_reader *r) { return r ? r->msg : ""; }
CASDEF const char *cas_reader_reason(const cas_reader *r) { return r ? (r->reason[0] ? r->reason : r->msg) : ""; }
CASDEF int cas_reader_format(const cas_reader *r) { return r ? r->format : 0; }
CASDEF uint64_t cas_reader_total_in(const cas_reader *r) { return r ? r->total_in : 0; }
CASDEF uint64_t cas_reader_total_out(const cas_reader *r) { return r ? r->total_out : 0; }

static const char *cas__rname(const cas_reader *r) { return r->name ? r->name : "(unnamed blob)"; }

/* Fails the reader with Metaflow's "Could not unpack artifact" wording. */
static int cas__rfail(cas_reader *r, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': %s", cas__rname(r), r->reason);
    r->state = code;
    return code;
}

/* The name messages give the blob, kept in the reader. */
static int cas__reader_name(cas_reader *r, const char *name) {
    size_t l = name ? strlen(name) : 0;
    if (!name) {
        cas__free(&r->alloc, r->name);
        r->name = NULL, r->name_cap = 0;
        return CAS_OK;
    }
    if (l + 1 > r->name_cap) {
        cas__free(&r->alloc, r->name);
        r->name = (char *)cas__alloc(&r->alloc, l + 1);
        r->name_cap = r->name ? l + 1 : 0;
        if (!r->name) return CAS_E_NOMEM;
    }
    memcpy(r->name, name, l + 1);
    return CAS_OK;
}

/* The key the decoded bytes must hash to, and a hasher for it. */
static int cas__reader_key(cas_reader *r, const char *key) {
    int algo = 0, rc;
    if (cas_key_check(key, strlen(key), &algo) < 0) {
        cas__fmt(r->msg, sizeof r->msg, "Invalid key for '%s': not 40 or 32 lowercase hex digits", cas__rname(r));
        return CAS_E_KEY;
    }
    if (!cas_hash_available(algo)) {
        cas__fmt(r->msg, sizeof r->msg, "Cannot verify '%s': its hash is not compiled in", cas__rname(r));
        return CAS_E_UNSUPPORTED;
    }
    memcpy(r->key, key, cas_key_length(algo) + 1);
    if (r->hasher && r->hash_algo != algo) {
        cas_hasher_free(r->hasher);
        r->hasher = NULL;
    }
    if (r->hasher) return cas_hasher_reset(r->hasher);
    if ((rc = cas_hasher_create(&r->hasher, algo, &r->alloc)) < 0) return rc;
    r->hash_algo = algo;
    return CAS_OK;
}

/* The format a sidecar names, by Metaflow's rules and in Metaflow's words. */
static int cas__reader_sidecar(cas_reader *r, const char *meta, size_t meta_len, int *format) {
    cas__json j;
    int64_t v = 0;
    size_t vt = 0;
    int rc;
    if (!meta) return *format = CAS_FORMAT_LEGACY, CAS_OK;
    if ((*format = cas__meta_exact(meta, meta_len)) != 0) return CAS_OK; /* what Metaflow writes: no parse */
    memset(&j, 0, sizeof j); /* an oversized sidecar is refused unparsed, and j freed all the same */
    rc = meta_len > 65536 ? CAS_E_JSON : cas__json_parse(&j, meta, meta_len, &r->alloc);
    if (rc < 0 && rc != CAS_E_NOMEM) {
        cas__fmt(r->msg, sizeof r->msg, "Could not extract encoding version for '%s': metadata is not valid JSON (%s)",
                 cas__rname(r), meta_len > 65536 ? "over 64 KiB" : j.err);
        rc = CAS_E_META;
    } else if (rc >= 0) {
        rc = cas__meta_rules(&j, format, &v, &vt);
        if (rc == CAS_E_VERSION_UNKNOWN) {
            /* print the version as the JSON has it: giant numbers stay exact */
            int len = (int)CAS__MIN(j.t[vt].end - j.t[vt].start, 64);
            cas__fmt(r->msg, sizeof r->msg,
                     "Unknown encoding version %.*s for '%s' -- the artifact is either corrupt or you need to update "
                     "Metaflow to the latest version",
                     len, j.s + j.t[vt].start, cas__rname(r));
        } else if (rc == CAS_E_VERSION_MISSING || rc == CAS_E_META) {
            cas__fmt(r->msg, sizeof r->msg, "Could not extract encoding version for '%s'", cas__rname(r));
        }
    }
    cas__json_free(&j);
    return rc;
}

CASDEF int cas_reader_begin(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key) {
    cas_codec **c;
    int rc;
    if (!r) return CAS_E_ARG;
    r->state = 0, r->format = 0, r->msg[0] = 0, r->reason[0] = 0;
    r->total_in = r->total_out = 0;
    r->sniff_len = r->sniff_fed = 0;
    r->key[0] = 0;
    if ((rc = cas__reader_name(r, name)) < 0 || (key && (rc = cas__reader_key(r, key)) < 0) ||
        (rc = cas__reader_sidecar(r, meta, meta_len, &r->format)) < 0)
        return r->state = rc;
    r->frow = cas__format_find(r->format);
    r->codec_id = r->frow->codec, r->crow = cas__codec_find(r->codec_id);
    if (!cas_codec_available(r->codec_id)) {
        cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': the %s codec is not compiled in",
                 cas__rname(r), cas_codec_name(r->codec_id));
        return r->state = CAS_E_UNSUPPORTED;
    }
    c = &r->codecs[r->crow - cas__codecs];
    if (!*c && (rc = cas_decoder_create(c, r->codec_id, &r->alloc)) < 0) return r->state = rc;
    if ((rc = cas_codec_reset(*c)) < 0) return r->state = rc;
    if ((rc = cas_codec_set_param(*c, CAS_PARAM_STRICT, r->strict)) < 0) return r->state = rc;
    if ((rc = cas_codec_set_param(*c, CAS_PARAM_GZIP_BACKEND, r->backend)) < 0) return r->state = rc;
    r->state = r->crow->sniff ? 1 : 2;
    return CAS_OK;
}

/* Checks the first bytes against what the sidecar promised. 0 = decided and
 * consistent, 1 = need more bytes, < 0 = failed. */
static int cas__reader_decide(cas_reader *r, int end) {
    const cas__codec_row *c = r->crow;
    int s = cas_sniff(r->sniff, r->sniff_len), foreign;
    char rep[40], ours[64];
    if (!c->sniff) return 0;
    if (r->sniff_len < 4 && !end) return 1; /* decide on 4 bytes, as the one-shot path does */
    if (s == c->sniff || (s == CAS_SNIFF_EMPTY && c->empty_ok)) return 0;
    if ((s == CAS_SNIFF_EMPTY || s == CAS_SNIFF_SHORT) && c->cut_magic)
        return cas__rfail(r, CAS_E_TRUNCATED, "%s", c->cut_magic);
    foreign = s == CAS_SNIFF_GZIP || s == CAS_SNIFF_LZ4 || s == CAS_SNIFF_ZSTD;
    if (c->not_ours) { /* the decoder's own words, as Python's gzip shows a 2-byte magic: b'ra' */
        cas_bytes_repr(r->sniff, CAS__MIN(r->sniff_len, 2), rep, sizeof rep);
        cas__fmt(ours, sizeof ours, c->not_ours, rep);
        if (!foreign && !r->frow->lost) return 0; /* the decoder says it */
    } else {
        cas_bytes_repr(r->sniff, r->sniff_len, rep, sizeof rep);
    }
    if (r->frow->lost && foreign)
        return cas__rfail(r, CAS_E_MISMATCH, "%s but the bytes are %s (a blob whose _meta sidecar was lost?)",
                          r->frow->says, cas_sniff_name(s));
    if (r->frow->lost)
        return cas__rfail(r, CAS_E_MISMATCH, "%s%s%s but the bytes are %s (a raw blob whose _meta sidecar was lost?)",
                          c->not_ours ? ours : "", c->not_ours ? "; " : "", r->frow->says, cas_sniff_name(s));
    if (c->not_ours) return cas__rfail(r, CAS_E_MISMATCH, "%s but the bytes are %s", r->frow->says, cas_sniff_name(s));
    return cas__rfail(r, CAS_E_MISMATCH, "%s but the bytes are %s (%s)", r->frow->says, cas_sniff_name(s), rep);
}

static int cas__reader_done(cas_reader *r) {
    if (r->expect_size >= 0 && r->total_out != (uint64_t)r->expect_size)
        return cas__rfail(r, CAS_E_SIZE, "decoded to %llu bytes where %lld were recorded",
                          (unsigned long long)r->total_out, (long long)r->expect_size);
    if (r->key[0]) {
        char got[CAS_KEY_BUF];
        int rc = cas_hasher_final(r->hasher, got);
        if (rc < 0) return r->state = rc;
        if (strcmp(got, r->key))
            return cas__rfail(r, CAS_E_HASH, "content hashes to %s, not to its key %s", got, r->key);
    }
    r->state = 3;
    return CAS_DONE;
}

/* Runs the codec on in; applies the limit, the hash and the counters. */
static int cas__reader_run(cas_reader *r, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas_codec *c = r->codecs[r->crow - cas__codecs];
    size_t room = cap;
    int rc;
    if (r->limit && (uint64_t)room > r->limit - r->total_out + 1) room = (size_t)(r->limit - r->total_out + 1);
    rc = cas_codec_update(c, in, n, used, out, room, made, end);
    r->total_in += *used;
    if (rc < 0) return cas__rfail(r, rc, "%s", cas_codec_message(c)[0] ? cas_codec_message(c) : cas_strerror(rc));
    if (r->limit && r->total_out + *made > r->limit) {
        *made = (size_t)(r->limit - r->total_out); /* report no byte past the limit */
        return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes", (unsigned long long)r->limit);
    }
    r->total_out += *made;
    if (r->key[0] && *made) cas_hasher_update(r->hasher, out, *made);
    if (rc == CAS_NEED_OUTPUT && room < cap) rc = CAS_NEED_OUTPUT;
    return rc;
}

CASDEF int cas_reader_update(cas_reader *r, const void *in, size_t n, size_t *in_used, void *out, size_t cap,
                             size_t *out_made, int end) {
    const unsigned char *ip = (const unsigned char *)in;
    unsigned char *op = (unsigned char *)out;
    size_t i = 0, o = 0;
    int rc = CAS_NEED_INPUT;
    if (in_used) *in_used = 0;
    if (out_made) *out_made = 0;
    if (!r || (!in && n) || (!out && cap)) return CAS_E_ARG;
    if (r->state < 0) return r->state;
    if (r->state == 0) return CAS_E_STATE;
    if (r->state == 3) {
        if (n && r->strict) return cas__rfail(r, CAS_E_TRAILING, "unexpected bytes after the end of the blob");
        return CAS_DONE;
    }
    if (r->state == 1) { /* collect up to 4 bytes to compare with what the sidecar says */
        while (r->sniff_len < 4 && i < n) r->sniff[r->sniff_len++] = ip[i++];
        rc = cas__reader_decide(r, end && i == n);
        if (rc < 0) return rc;
        if (rc == 1) {
            if (in_used) *in_used = i;
            return CAS_NEED_INPUT;
        }
        r->state = 2;
    }
    if (r->sniff_fed < r->sniff_len) { /* replay the sniffed bytes to the decoder */
        size_t u = 0, m = 0;
        rc = cas__reader_run(r, r->sniff + r->sniff_fed, r->sniff_len - r->sniff_fed, &u, op, cap, &m, end && i == n);
        r->sniff_fed += u, o += m;
        if (rc < 0) return rc;
        if (r->sniff_fed < r->sniff_len || rc == CAS_NEED_OUTPUT) {
            if (in_used) *in_used = i;
            if (out_made) *out_made = o;
            return rc == CAS_DONE ? cas__reader_done(r) : CAS_NEED_OUTPUT;
        }
    }
    if (rc != CAS_DONE) {
        size_t u = 0, m = 0;
        rc = cas__reader_run(r, ip + i, n - i, &u, op + o, cap - o, &m, end);
        i += u, o += m;
    }
    if (in_used) *in_used = i;
    if (out_made) *out_made = o;
    if (rc == CAS_DONE) {
        if (i < n && r->strict) return cas__rfail(r, CAS_E_TRAILING, "unexpected bytes after the end of the blob");
        return cas__reader_done(r);
    }
    return rc;
}

/* The most n bytes of the reader's codec can decode to: a stated size beyond it is a lie. */
static uint64_t cas__reader_most(const cas_reader *r, size_t n) { return (uint64_t)n * r->crow->ratio + 65536; }

CASDEF int cas_reader_size_hint(cas_reader *r, const void *blob, size_t n, uint64_t *size) {
    int rc;
    if (!r || !size) return CAS_E_ARG;
    *size = 0;
    if (r->state <= 0) return r->state < 0 ? r->state : CAS_E_STATE;
    rc = cas_decoded_size_hint(r->codec_id, blob, n, size);
    if (rc == CAS_OK && *size > cas__reader_most(r, n)) {
        *size = 0;
        return CAS_E_NOTFOUND;
    }
    return rc;
}

CASDEF int cas_reader_unpack_into(cas_reader *r, const void *blob, size_t n, void *dst, size_t cap, size_t *out_len) {
    const unsigned char *ip = (const unsigned char *)blob;
    size_t len = 0, room = cap;
    int rc;
    if (out_len) *out_len = 0;
    if (!r || (!blob && n) || (!dst && cap)) return CAS_E_ARG;
    if (r->state < 0) return r->state;
    if (r->state != 1 && r->state != 2) return CAS_E_STATE;
    if (r->state == 1) { /* the whole blob is here: decide on its first bytes at once */
        r->sniff_len = CAS__MIN(n, 4);
        if (n) memcpy(r->sniff, ip, r->sniff_len);
        r->sniff_fed = r->sniff_len; /* the decoder gets them from blob itself */
        if ((rc = cas__reader_decide(r, 1)) < 0) return rc;
        r->state = 2;
    }
    if (r->limit && (uint64_t)room > r->limit + 1) room = (size_t)(r->limit + 1);
    rc = cas_codec_decode_all(r->codecs[r->crow - cas__codecs], ip, n, dst, room, &len);
    r->total_in = n;
    if (rc < 0) {
        const char *m = cas_codec_message(r->codecs[r->crow - cas__codecs]);
        return cas__rfail(r, rc, "%s", m[0] ? m : cas_strerror(rc));
    }
    if (r->limit && (uint64_t)len > r->limit)
        return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes", (unsigned long long)r->limit);
    if (rc != CAS_DONE) {
        if (room < cap) /* output stopped at the limit, not at the buffer's end */
            return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes",
                              (unsigned long long)r->limit);
        /* may be retried with a bigger buffer */
        r->state = r->crow->sniff ? 1 : 2, r->sniff_len = r->sniff_fed = 0;
        r->total_in = 0;
        cas_codec_reset(r->codecs[r->crow - cas__codecs]);
        return CAS_NEED_OUTPUT;
    }
    r->total_out = len;
    if (r->key[0] && len) cas_hasher_update(r->hasher, dst, len);
    if (out_len) *out_len = len;
    return cas__reader_done(r);
}

CASDEF int cas_reader_decode(cas_reader *r, const char *meta, size_t meta_len, const char *name, const char *key,
                             const void *blob, size_t n, void *dst, size_t cap, size_t *out_len) {
    uint64_t hint = 0;
    int rc;
    if (out_len) *out_len = 0;
    if ((rc = cas_reader_begin(r, meta, meta_len, name, key)) < 0) return rc;
    rc = cas_reader_unpack_into(r, blob, n, dst, cap, out_len);
    if (rc == CAS_NEED_OUTPUT && out_len) {
        if (cas_reader_size_hint(r, blob, n, &hint) == CAS_OK && hint <= (uint64_t)(size_t)-1) *out_len = (size_t)hint;
    }
    return rc;
}

/* A big output buffer from malloc is faulted in 4 KiB at a time: asking for
 * huge pages halves the cost of decoding 64 MiB into fresh memory. */
static void cas__hint_huge(void *p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uintptr_t a = ((uintptr_t)p + ((uintptr_t)2 << 20) - 1) & ~(((uintptr_t)2 << 20) - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(((uintptr_t)2 << 20) - 1);
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#else
    (void)p, (void)n;
#endif
}

CASDEF int cas_reader_unpack(cas_reader *r, const void *blob, size_t n, void **out, size_t *out_len) {
    uint64_t hint = 0;
    size_t cap;
    int rc, enforced, framed;
    uint64_t most;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!r || !out || (!blob && n)) return CAS_E_ARG;
    if (r->state < 0) return r->state;
    if (r->state != 1 && r->state != 2) return CAS_E_STATE;
    most = cas__reader_most(r, n);
    /* a size field the decoder holds the stream to can be refused now; others are hints */
    framed = r->crow->sniff && cas_sniff(blob, n) == r->crow->sniff;
    enforced = r->crow->hint_enforced && framed;
    if (cas_decoded_size_hint(r->codec_id, blob, n, &hint) == CAS_OK) {
        if (enforced && hint > most)
            return cas__rfail(r, CAS_E_CORRUPT,
                              "the content size field of %s (%llu bytes) is more than %lu bytes of it can hold",
                              cas_sniff_name(r->crow->sniff), (unsigned long long)hint, (unsigned long)n);
        if (hint > most) hint = 0;
    } else {
        hint = 0;
    }
    if (r->limit && hint > r->limit) {
        if (enforced)
            return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit of %llu bytes",
                              (unsigned long long)r->limit);
        hint = r->limit;
    }
    cap = hint ? (size_t)hint : CAS__MIN((size_t)n * 4 + 4096, (size_t)64 << 20);
    if (r->limit && cap > r->limit + 1) cap = (size_t)r->limit + 1;
    for (;;) {
        void *buf = cas__alloc(&r->alloc, cap);
        size_t len = 0;
        if (buf && !r->alloc.alloc && cap >= ((size_t)4 << 20)) cas__hint_huge(buf, cap);
        if (!buf) {
            cas__fmt(r->msg, sizeof r->msg, "Could not unpack artifact '%s': out of memory (%llu bytes)", cas__rname(r),
                     (unsigned long long)cap);
            return r->state = CAS_E_NOMEM;
        }
        rc = cas_reader_unpack_into(r, blob, n, buf, cap, &len);
        if (rc == CAS_NEED_OUTPUT) {
            size_t next = cap < ((size_t)1 << 20) ? ((size_t)1 << 20) : cap * 2;
            cas__free(&r->alloc, buf);
            if (next < cap) return cas__rfail(r, CAS_E_NOMEM, "decoded size overflows memory");
            if (r->limit && next > r->limit + 1) next = (size_t)r->limit + 1;
            if (next == cap) return cas__rfail(r, CAS_E_LIMIT, "decoded size exceeds the limit");
            cap = next;
            continue;
        }
        if (rc < 0) {
            cas__free(&r->alloc, buf);
            return rc;
        }
        *out = buf;
        if (out_len) *out_len = len;
        return rc;
    }
}
