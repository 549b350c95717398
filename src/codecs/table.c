/* ---- the codec table ------------------------------------------------------ */

#ifndef CAS_NO_RAW
#define CAS__RAW_FUNCS NULL, cas__raw_bound, cas__raw_hint, cas__raw_reset, cas__raw_update, cas__raw_release
#else
#define CAS__RAW_FUNCS NULL, cas__raw_bound, cas__raw_hint, NULL, NULL, NULL
#endif
#ifndef CAS_NO_GZIP
#define CAS__GZIP_FUNCS NULL, cas__gz_bound, cas__gz_hint, cas__gz_reset, cas__gz_update, cas__gz_release
#define CAS__GZIP_STATE sizeof(cas__gz_state)
#else
#define CAS__GZIP_FUNCS NULL, cas__gz_bound, cas__gz_hint, NULL, NULL, NULL
#define CAS__GZIP_STATE 0
#endif
#ifndef CAS_NO_LZ4
#define CAS__LZ4_FUNCS NULL, cas__lz4_bound, cas__lz4_hint, cas__lz4_reset, cas__lz4_update, cas__lz4_release
#define CAS__LZ4_STATE sizeof(cas__lz4_state)
#else
#define CAS__LZ4_FUNCS NULL, NULL, NULL, NULL, NULL, NULL
#define CAS__LZ4_STATE 0
#endif

#ifdef CAS_EXTRA_CODEC_PARAMS
CAS_EXTRA_CODEC_PARAMS
#endif

/* Ratios: deflate reaches ~1032 bytes per input byte; an LZ4 sequence ~255. */
static const cas__codec_row cas__codecs[] = {
    CAS__CODEC_ROW(CAS_CODEC_RAW, "raw", 0, 0, "", 1, 1, 0, NULL, NULL, 0, CAS__NO_PARAMS, CAS__RAW_FUNCS),
    CAS__CODEC_ROW(CAS_CODEC_GZIP, "gzip", 9, CAS_SNIFF_GZIP, CAS__GZIP_MAGIC, 1, 1040, 0, CAS__GZ_NOT_OURS, NULL,
                   CAS__GZIP_STATE, CAS__NO_PARAMS, CAS__GZIP_FUNCS),
    CAS__CODEC_ROW(CAS_CODEC_LZ4, "lz4", 12, CAS_SNIFF_LZ4, CAS__LZ4_MAGIC, 0, 256, 1, NULL, CAS__LZ4_TRUNC,
                   CAS__LZ4_STATE, CAS__NO_PARAMS, CAS__LZ4_FUNCS),
#ifdef CAS_EXTRA_CODECS
    CAS_EXTRA_CODECS
#endif
};
#define CAS__CODEC_ROWS (sizeof cas__codecs / sizeof cas__codecs[0])

/* ---- sniffing: the codecs' magic, and a format no codec here reads ---------- */

#define CAS__ZSTD_MAGIC "\x28\xb5\x2f\xfd" /* no codec here reads it; named so that a message can say what it is */

/* 1 if s begins with the magic, -1 if s is a shorter prefix of it, 0 if neither. */
static int cas__magic_at(const unsigned char *s, size_t n, const unsigned char *m, size_t ml) {
    if (!ml) return 0;
    if (n >= ml) return !memcmp(s, m, ml);
    return memcmp(s, m, n) ? 0 : -1;
}

CASDEF int cas_sniff(const void *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i;
    int cut = 0, at;
    if (n == 0) return CAS_SNIFF_EMPTY;
    for (i = 0; i < CAS__CODEC_ROWS; i++) {
        if (!cas__codecs[i].sniff) continue;
        if ((at = cas__magic_at(s, n, cas__codecs[i].magic, cas__codecs[i].magic_len)) > 0) return cas__codecs[i].sniff;
        cut |= at < 0; /* no magic is another's prefix */
    }
    if ((at = cas__magic_at(s, n, (const unsigned char *)CAS__ZSTD_MAGIC, 4)) > 0) return CAS_SNIFF_ZSTD;
    return cut || at < 0 ? CAS_SNIFF_SHORT : CAS_SNIFF_UNKNOWN;
}

static const cas__codec_row *cas__codec_find(int id) {
    return (const cas__codec_row *)cas__row_find(cas__codecs, CAS__CODEC_ROWS, sizeof cas__codecs[0], id);
}

CASDEF int cas_codec_available(int codec) {
    const cas__codec_row *r = cas__codec_find(codec);
    return r && r->update;
}

CASDEF const char *cas_codec_name(int codec) {
    const cas__codec_row *r = cas__codec_find(codec);
    return r ? r->name : "?";
}

/* ---- parameters: one bounds table ----------------------------------------- */


static int cas__level_built(int64_t v) { /* some codec compiled in takes it */
    size_t i;
    for (i = 0; i < CAS__CODEC_ROWS; i++)
        if (cas__codecs[i].update && v <= cas__codecs[i].level_max) return CAS_OK;
    return CAS_E_ARG;
}
static int cas__backend_built(int64_t v) {
#ifndef CAS_USE_ISAL
    if (v == CAS_BACKEND_ISAL) return CAS_E_UNSUPPORTED;
#endif
    (void)v;
    return CAS_OK;
}

static const cas__param_row cas__codec_params[] = {
    CAS__PARAM(CAS_PARAM_LEVEL, CAS__FOR_CODEC | CAS__FOR_WRITER | CAS__FOR_STORE, 0, INT32_MAX, cas__level_built),
    CAS__PARAM(CAS_PARAM_PLEDGED_SIZE, CAS__FOR_CODEC | CAS__FOR_WRITER, -1, INT64_MAX, NULL),
    CAS__PARAM(CAS_PARAM_GZIP_BACKEND, CAS__FOR_CODEC | CAS__FOR_WRITER | CAS__FOR_READER | CAS__FOR_STORE,
               CAS_BACKEND_AUTO, CAS_BACKEND_ISAL, cas__backend_built),
    CAS__PARAM(CAS_PARAM_LZ4_BLOCK, CAS__FOR_CODEC | CAS__FOR_WRITER | CAS__FOR_STORE, 4, 7, NULL),
    CAS__PARAM(CAS_PARAM_STRICT, CAS__FOR_CODEC | CAS__FOR_READER | CAS__FOR_STORE, INT64_MIN, INT64_MAX,
               NULL) /* flags: 0 or not */,
    CAS__PARAM(CAS_PARAM_MTIME, CAS__FOR_CODEC | CAS__FOR_WRITER, 0, 0xffffffffLL, NULL),
};

#define CAS__CODEC_PARAM(id) CAS__PARAM_FIND(cas__codec_params, id)

CASDEF int cas_codec_set_param(cas_codec *c, int param, int64_t v) {
    int r;
    if (!c) return CAS_E_ARG;
    if (c->total_in || c->total_out) return CAS_E_STATE;
    if (!CAS__CODEC_PARAM(param) && c->row->set_param) { /* one of the codec's own */
        r = cas__param_check(cas__param_find(c->row->params, c->row->nparams, param), CAS__FOR_CODEC, v);
        return r < 0 ? r : c->row->set_param(c, param, v);
    }
    if ((r = cas__param_check(CAS__CODEC_PARAM(param), CAS__FOR_CODEC, v)) < 0) return r;
    switch (param) {
    case CAS_PARAM_LEVEL:
        if (v > c->row->level_max && c->row->level_max) return CAS_E_ARG;
        c->level = (int)v;
        break;
    case CAS_PARAM_PLEDGED_SIZE: c->pledged = v; break;
    case CAS_PARAM_GZIP_BACKEND: c->backend = (int)v; break;
    case CAS_PARAM_LZ4_BLOCK: c->lz4_block = (int)v; break;
    case CAS_PARAM_STRICT: c->strict = v != 0; break;
    case CAS_PARAM_MTIME: c->mtime = v; break;
    default: return CAS_E_ARG;
    }
    return cas_codec_reset(c); /* re-apply parameters to the backend */
}

CASDEF int cas_codec_update(cas_codec *c, const void *in, size_t in_size, size_t *in_used, void *out, size_t out_cap,
                            size_t *out_made, int end) {
    size_t dummy_u, dummy_m;
    const unsigned char *ip = (const unsigned char *)in;
    unsigned char *op = (unsigned char *)out;
    if (!in_used) in_used = &dummy_u;
    if (!out_made) out_made = &dummy_m;
    *in_used = 0, *out_made = 0;
    if (!c || (!in && in_size) || (!out && out_cap)) return CAS_E_ARG;
    if (c->failed) return c->failed;
    if (!in) ip = (const unsigned char *)"";
    if (!out) op = (unsigned char *)c->msg; /* never written: cap is 0 */
    return c->row->update(c, ip, in_size, in_used, op, out_cap, out_made, end);
}

/* ---- one-shot ------------------------------------------------------------ */

CASDEF size_t cas_encode_bound(int codec, size_t n) {
    const cas__codec_row *r = cas__codec_find(codec);
    return r && r->bound ? r->bound(n) : 0;
}

CASDEF int cas_codec_encode_all(cas_codec *c, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    size_t used = 0, made = 0;
    int r;
    if (out_len) *out_len = 0;
    if (!c || !c->encode) return CAS_E_ARG;
    if ((r = cas_codec_reset(c)) < 0) return r;
    r = cas_codec_update(c, in, n, &used, out, cap, &made, 1);
    if (out_len) *out_len = made;
    if (r == CAS_DONE && used != n) return CAS_E_STATE;
    return r;
}

CASDEF int cas_codec_decode_all(cas_codec *c, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    size_t used = 0, made = 0;
    int r;
    if (out_len) *out_len = 0;
    if (!c || c->encode) return CAS_E_ARG;
    if ((r = cas_codec_reset(c)) < 0) return r;
#if defined(CAS_USE_LIBDEFLATE) && !defined(CAS_USE_ISAL)
    /* libdeflate wants the whole output at once; members are decoded one by one,
     * anything it does not accept is retried by the streaming path for the message.
     * Not with ISA-L compiled in: libdeflate accepts the reserved length symbols
     * 286 and 287 that zlib, Python and ISA-L refuse, and ISA-L is within ~15 %. */
    if (c->codec == CAS_CODEC_GZIP && c->backend != CAS_BACKEND_ZLIB && n >= 18 && out) {
        const unsigned char *ip = (const unsigned char *)in;
        cas__gz_state *g = CAS__GZ(c);
        size_t i = 0, o = 0;
        int ok = 1;
        if (!g->ld) g->ld = libdeflate_alloc_decompressor();
        if (!g->ld) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        while (i < n) {
            size_t ain = 0, aout = 0;
            enum libdeflate_result lr;
            if (ip[i] == 0 && i > 0) { /* NUL padding after a member */
                while (i < n && ip[i] == 0) i++;
                continue;
            }
            lr = libdeflate_gzip_decompress_ex(g->ld, ip + i, n - i, (unsigned char *)out + o, cap - o, &ain, &aout);
            if (lr != LIBDEFLATE_SUCCESS) {
                ok = 0;
                break;
            }
            i += ain, o += aout;
        }
        if (ok) {
            c->total_in = n, c->total_out = o, c->done = 1;
            if (out_len) *out_len = o;
            return CAS_DONE;
        }
        if ((r = cas_codec_reset(c)) < 0) return r;
    }
#endif
    r = cas_codec_update(c, in, n, &used, out, cap, &made, 1);
    if (out_len) *out_len = made;
    return r;
}

CASDEF int cas_encode(int codec, int level, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    cas_codec *c;
    int r = cas_encoder_create(&c, codec, NULL);
    if (r < 0) return r;
    if (level && (r = cas_codec_set_param(c, CAS_PARAM_LEVEL, level)) < 0) {
        cas_codec_free(c);
        return r;
    }
    r = cas_codec_encode_all(c, in, n, out, cap, out_len);
    cas_codec_free(c);
    return r;
}

CASDEF int cas_decode(int codec, const void *in, size_t n, void *out, size_t cap, size_t *out_len) {
    cas_codec *c;
    int r = cas_decoder_create(&c, codec, NULL);
    if (r < 0) return r;
    r = cas_codec_decode_all(c, in, n, out, cap, out_len);
    cas_codec_free(c);
    return r;
}

CASDEF int cas_decoded_size_hint(int codec, const void *in, size_t n, uint64_t *size) {
    const cas__codec_row *r = cas__codec_find(codec);
    if (!size || (!in && n)) return CAS_E_ARG;
    *size = 0;
    if (!r || !r->size_hint) return CAS_E_UNSUPPORTED;
    return r->size_hint((const unsigned char *)(in ? in : ""), n, size);
}
