/* ---- LZ4 frame ----------------------------------------------------------- */
#ifndef CAS_NO_LZ4

static int cas__lz4_reset(cas_codec *c) {
    cas__lz4_state *z = CAS__LZ4(c);
    /* A decoder's lz4_begun: a frame is open in ld4. LZ4F_resetDecompressionContext
     * (lz4 1.9.4) keeps the unfinished frame's remaining size, which fails the next
     * frame that states none ("content size disagrees"): such a context is replaced. */
    if (!c->encode && z->ld4 && z->lz4_begun) {
        LZ4F_freeDecompressionContext(z->ld4);
        z->ld4 = NULL;
    }
    z->stage_len = z->stage_pos = 0;
    z->lz4_begun = 0, z->lz4_magic_ok = 0, z->lz4_magic_len = 0;
    if (c->encode) {
        if (!z->lc) {
            z->lc = LZ4F_createCompressionContext_advanced(cas__lz4_mem(c), LZ4F_VERSION);
            if (!z->lc) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        }
        z->lz4_block_bytes = (size_t)1 << (8 + 2 * c->lz4_block);
    } else {
        if (!z->ld4) {
            z->ld4 = LZ4F_createDecompressionContext_advanced(cas__lz4_mem(c), LZ4F_VERSION);
            if (!z->ld4) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        } else {
            LZ4F_resetDecompressionContext(z->ld4);
        }
    }
    return CAS_OK;
}

static void cas__lz4_release(cas_codec *c) {
    cas__lz4_state *z = CAS__LZ4(c);
    if (z->lc) LZ4F_freeCompressionContext(z->lc);
    if (z->ld4) LZ4F_freeDecompressionContext(z->ld4);
    z->lc = NULL, z->ld4 = NULL;
    cas__free(&c->alloc, z->stage), z->stage = NULL, z->stage_cap = 0;
}


static void cas__lz4_prefs(const cas_codec *c, LZ4F_preferences_t *p, int64_t content) {
    memset(p, 0, sizeof *p);
    p->frameInfo.blockSizeID = (LZ4F_blockSizeID_t)c->lz4_block;
    p->frameInfo.blockMode = LZ4F_blockLinked;
    p->frameInfo.contentSize = content > 0 ? (unsigned long long)content : 0;
    p->compressionLevel = c->level > 1 ? c->level : 0;
}

static int cas__lz4_err(cas_codec *c, size_t r, const char *what) {
    const char *name = LZ4F_getErrorName(r);
    if (!strncmp(name, "ERROR_", 6)) name += 6;
    if (LZ4F_getErrorCode(r) == LZ4F_ERROR_allocation_failed) return cas__fail(c, CAS_E_NOMEM, "out of memory");
    return cas__fail(c, CAS_E_CORRUPT, "LZ4 frame is corrupt: %s failed (%s)", what, name);
}

/* Makes sure the staging buffer holds the bound of one block. */
static int cas__lz4_stage(cas_codec *c, size_t need) {
    cas__lz4_state *z = CAS__LZ4(c);
    if (z->stage_cap >= need) return CAS_OK;
    cas__free(&c->alloc, z->stage);
    z->stage = (unsigned char *)cas__alloc(&c->alloc, need);
    z->stage_cap = z->stage ? need : 0;
    return z->stage ? CAS_OK : cas__fail(c, CAS_E_NOMEM, "out of memory");
}

static int cas__lz4_encode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas__lz4_state *z = CAS__LZ4(c);
    size_t i = 0, o = 0, r;
    LZ4F_preferences_t prefs;
    LZ4F_compressOptions_t opt;
    memset(&opt, 0, sizeof opt);
    /* Whole input in one call with room for the worst case: one frame call,
     * which also picks independent blocks and a small table for small inputs. */
    if (!z->lz4_begun && end && z->stage_len == 0) {
        int64_t content = c->pledged >= 0 ? c->pledged : (int64_t)n;
        cas__lz4_prefs(c, &prefs, content);
        if (cap >= LZ4F_compressFrameBound(n, &prefs) && (c->pledged < 0 || (size_t)c->pledged == n)) {
            r = LZ4F_compressFrame_usingCDict(z->lc, out, cap, in, n, NULL, &prefs);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressFrame");
            *used = n, *made = r;
            c->total_in += n, c->total_out += r;
            c->done = 1;
            return CAS_DONE;
        }
    }
    for (;;) {
        if (z->stage_pos < z->stage_len) { /* drain first */
            size_t k = CAS__MIN(cap - o, z->stage_len - z->stage_pos);
            memcpy(out + o, z->stage + z->stage_pos, k);
            o += k, z->stage_pos += k;
            if (z->stage_pos < z->stage_len) break;
            z->stage_pos = z->stage_len = 0;
        }
        if (c->done) break;
        if (!z->lz4_begun) {
            cas__lz4_prefs(c, &prefs, c->pledged);
            if (cas__lz4_stage(c, LZ4F_compressBound(z->lz4_block_bytes, &prefs) + LZ4F_HEADER_SIZE_MAX) < 0)
                return c->failed;
            r = LZ4F_compressBegin(z->lc, z->stage, z->stage_cap, &prefs);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressBegin");
            z->stage_len = r;
            z->lz4_begun = 1;
            continue;
        }
        if (i < n) { /* one block's worth at a time keeps the stage bounded */
            size_t k = CAS__MIN(n - i, z->lz4_block_bytes);
            r = LZ4F_compressUpdate(z->lc, z->stage, z->stage_cap, in + i, k, &opt);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressUpdate");
            i += k, z->stage_len = r;
            c->total_in += k;
            continue;
        }
        if (!end) break;
        r = LZ4F_compressEnd(z->lc, z->stage, z->stage_cap, &opt);
        if (LZ4F_isError(r)) return cas__lz4_err(c, r, "compressEnd");
        z->stage_len = r;
        c->done = 1;
    }
    *used = i, *made = o;
    c->total_out += o;
    if (z->stage_pos < z->stage_len) return CAS_NEED_OUTPUT;
    if (c->done) return CAS_DONE;
    return CAS_NEED_INPUT;
}

static int cas__lz4_decode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas__lz4_state *z = CAS__LZ4(c);
    size_t i = 0, o = 0;
    if (c->done) { /* the frame is over: what follows is trailing */
        *used = 0, *made = 0;
        if (c->strict && n) return cas__fail(c, CAS_E_TRAILING, "unexpected bytes after the LZ4 frame");
        return CAS_DONE;
    }
    /* Check the magic ourselves: LZ4F would also accept skippable frames. */
    while (!z->lz4_magic_ok && z->lz4_magic_len < 4 && i < n) z->lz4_magic[z->lz4_magic_len++] = in[i++];
    if (!z->lz4_magic_ok) {
        if (memcmp(z->lz4_magic, CAS__LZ4_MAGIC, z->lz4_magic_len))
            return cas__fail(c, CAS_E_CORRUPT, "not an LZ4 frame (bad magic number)");
        if (z->lz4_magic_len < 4) {
            *used = i, *made = 0;
            c->total_in += i;
            if (end) return cas__fail(c, CAS_E_TRUNCATED, CAS__LZ4_TRUNC);
            return CAS_NEED_INPUT;
        }
        z->lz4_magic_ok = z->lz4_begun = 1;
        {
            size_t ds = 0, ss = 4;
            size_t r = LZ4F_decompress(z->ld4, NULL, &ds, CAS__LZ4_MAGIC, &ss, NULL);
            if (LZ4F_isError(r)) return cas__lz4_err(c, r, "decompress");
        }
    }
    for (;;) {
        size_t ss = n - i, ds = cap - o, r;
        r = LZ4F_decompress(z->ld4, out + o, &ds, in + i, &ss, NULL);
        if (LZ4F_isError(r)) {
            if (LZ4F_getErrorCode(r) == LZ4F_ERROR_frameSize_wrong)
                return cas__fail(c, CAS_E_CORRUPT, "LZ4 frame's content size field disagrees with its data");
            return cas__lz4_err(c, r, "decompress");
        }
        i += ss, o += ds;
        if (r == 0) { /* end of frame */
            c->done = 1, z->lz4_begun = 0;
            *used = i, *made = o;
            c->total_in += i, c->total_out += o;
            if (c->strict && i < n) return cas__fail(c, CAS_E_TRAILING, "unexpected bytes after the LZ4 frame");
            return CAS_DONE;
        }
        if (o == cap && (ss || ds) && i < n)
            continue; /* headers, empty blocks and the end mark
                                                          need no room: an exact buffer ends here */
        if (o == cap) {
            *used = i, *made = o;
            c->total_in += i, c->total_out += o;
            return CAS_NEED_OUTPUT;
        }
        if (i == n || (!ss && !ds)) break;
    }
    *used = i, *made = o;
    c->total_in += i, c->total_out += o;
    if (end && i == n) return cas__fail(c, CAS_E_TRUNCATED, CAS__LZ4_TRUNC);
    return CAS_NEED_INPUT;
}

static int cas__lz4_update(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                           size_t cap, size_t *made, int end) {
    cas__lz4_state *z = CAS__LZ4(c);
    /* a decoder past its frame words what follows itself (trailing bytes, CAS_PARAM_STRICT) */
    if (c->done && c->encode && z->stage_pos == z->stage_len) return n ? CAS_E_STATE : CAS_DONE;
    return c->encode ? cas__lz4_encode(c, in, n, used, out, cap, made, end)
                     : cas__lz4_decode(c, in, n, used, out, cap, made, end);
}

static size_t cas__lz4_bound(size_t n) {
    LZ4F_preferences_t p;
    size_t b1, b2;
    memset(&p, 0, sizeof p);
    p.frameInfo.contentSize = n;
    /* valid for every block size this library writes */
    p.frameInfo.blockSizeID = LZ4F_max64KB;
    b1 = LZ4F_compressFrameBound(n, &p);
    p.frameInfo.blockSizeID = LZ4F_max4MB;
    b2 = LZ4F_compressFrameBound(n, &p);
    return (b1 > b2 ? b1 : b2) + 64;
}

/* The frame's content size field: FLG bit 3 says 8 bytes follow FLG and BD. */
static int cas__lz4_hint(const unsigned char *p, size_t n, uint64_t *size) {
    if (n < 15 || memcmp(p, CAS__LZ4_MAGIC, 4) || !(p[4] & 8)) return CAS_E_NOTFOUND;
    *size = (uint64_t)p[6] | (uint64_t)p[7] << 8 | (uint64_t)p[8] << 16 | (uint64_t)p[9] << 24 | (uint64_t)p[10] << 32 |
            (uint64_t)p[11] << 40 | (uint64_t)p[12] << 48 | (uint64_t)p[13] << 56;
    return CAS_OK;
}
#endif /* CAS_NO_LZ4 */
