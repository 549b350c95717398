/* ---- gzip ---------------------------------------------------------------- */
#ifndef CAS_NO_GZIP

static int cas__gz_reset(cas_codec *c) {
    cas__gz_state *g = CAS__GZ(c);
    int be = cas__gzip_backend(c);
    g->hb_len = g->hb_pos = 0, g->spill_n = 0;
    g->gz_state = CAS__GZ_MAGIC, g->gz_flags = 0, g->gz_members = 0, g->gz_need = 0;
    g->crc = 0, g->isize = 0;
    g->use_isal = be == CAS_BACKEND_ISAL;
    if (c->encode) {
        int lvl = c->level ? c->level : 3;
        unsigned char *h = g->hb;
        uint32_t mt = (uint32_t)c->mtime;
        /* CPython's header: XFL 2 at level 9, 4 at level 1, else 0; OS 255. */
        memcpy(h, CAS__GZIP_MAGIC, 2), h[2] = 8, h[3] = 0;
        h[4] = (unsigned char)mt, h[5] = (unsigned char)(mt >> 8);
        h[6] = (unsigned char)(mt >> 16), h[7] = (unsigned char)(mt >> 24);
        h[8] = (unsigned char)(lvl == 9 ? 2 : lvl == 1 ? 4 : 0), h[9] = 0xff;
        g->hb_len = 10;
        g->gz_state = CAS__GZ_HEAD; /* encoder: header pending */
#ifdef CAS_USE_ISAL
        if (g->use_isal) {
            int il = cas__isal_level(lvl);
            size_t need = cas__isal_level_buf(il);
            if (!g->iz) {
                g->iz = (struct isal_zstream *)cas__alloc(&c->alloc, sizeof *g->iz);
                if (!g->iz) return cas__fail(c, CAS_E_NOMEM, "out of memory");
            }
            if (g->ilevel_size < need) {
                cas__free(&c->alloc, g->ilevel_buf);
                g->ilevel_buf = (unsigned char *)cas__alloc(&c->alloc, need);
                g->ilevel_size = g->ilevel_buf ? need : 0;
                if (!g->ilevel_buf) return cas__fail(c, CAS_E_NOMEM, "out of memory");
            }
            isal_deflate_init(g->iz);
            g->iz->level = (uint32_t)il;
            g->iz->level_buf = g->ilevel_buf;
            g->iz->level_buf_size = (uint32_t)need;
            g->iz->gzip_flag = IGZIP_GZIP_NO_HDR; /* ISA-L writes CRC and length */
            return CAS_OK;
        }
#endif
        if (g->zinit == 1 && g->zlevel == lvl) {
            if (deflateReset(&g->z) != Z_OK) return cas__fail(c, CAS_E_NOMEM, "deflateReset failed");
        } else {
            if (g->zinit == 1) deflateEnd(&g->z);
            g->zinit = 0;
            memset(&g->z, 0, sizeof g->z);
            g->z.zalloc = cas__z_alloc, g->z.zfree = cas__z_free, g->z.opaque = &c->alloc;
            /* CPython's GzipFile: raw deflate, window 15, memLevel 8, default strategy */
            if (deflateInit2(&g->z, lvl, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                return cas__fail(c, CAS_E_NOMEM, "deflateInit2 failed");
            g->zinit = 1, g->zlevel = lvl;
        }
    } else {
#ifdef CAS_USE_ISAL
        if (g->use_isal) {
            if (!g->ii) {
                g->ii = (struct inflate_state *)cas__alloc(&c->alloc, sizeof *g->ii);
                if (!g->ii) return cas__fail(c, CAS_E_NOMEM, "out of memory");
            }
            isal_inflate_init(g->ii);
            g->ii->crc_flag = ISAL_DEFLATE;
            return CAS_OK;
        }
#endif
        if (g->zinit == 2) {
            if (inflateReset(&g->z) != Z_OK) return cas__fail(c, CAS_E_NOMEM, "inflateReset failed");
        } else {
            memset(&g->z, 0, sizeof g->z);
            g->z.zalloc = cas__z_alloc, g->z.zfree = cas__z_free, g->z.opaque = &c->alloc;
            if (inflateInit2(&g->z, -15) != Z_OK) return cas__fail(c, CAS_E_NOMEM, "inflateInit2 failed");
            g->zinit = 2;
        }
    }
    return CAS_OK;
}

static void cas__gz_release(cas_codec *c) {
    cas__gz_state *g = CAS__GZ(c);
    if (g->zinit == 1) deflateEnd(&g->z);
    if (g->zinit == 2) inflateEnd(&g->z);
    g->zinit = 0;
#ifdef CAS_USE_ISAL
    cas__free(&c->alloc, g->iz), g->iz = NULL;
    cas__free(&c->alloc, g->ii), g->ii = NULL;
    cas__free(&c->alloc, g->ilevel_buf), g->ilevel_buf = NULL;
#endif
#ifdef CAS_USE_LIBDEFLATE
    if (g->ld) libdeflate_free_decompressor(g->ld);
    if (g->lc_def) libdeflate_free_compressor(g->lc_def);
    g->ld = NULL, g->lc_def = NULL;
#endif
}


/* Moves pending header/trailer bytes (hb[hb_pos..hb_len)) to out. */
static size_t cas__drain_hb(cas_codec *c, unsigned char *out, size_t cap) {
    cas__gz_state *g = CAS__GZ(c);
    size_t k = CAS__MIN(cap, g->hb_len - g->hb_pos);
    memcpy(out, g->hb + g->hb_pos, k);
    g->hb_pos += k;
    return k;
}

#ifdef CAS_USE_ISAL
/* Raw deflate of a whole buffer with ISA-L's stateless compressor (no internal
 * copies). Level 0 is static Huffman or stored: for tiny inputs it is 20x
 * cheaper than any table-building level and the bytes saved are noise. */
static int cas__isal_whole(cas_codec *c, int level, const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                           size_t *len) {
    struct isal_zstream *s;
    int r;
    if (n > CAS__CHUNK_MAX || cap > CAS__CHUNK_MAX * 2) return 1;
    if (!CAS__GZ(c)->iz && !(CAS__GZ(c)->iz = (struct isal_zstream *)cas__alloc(&c->alloc, sizeof *CAS__GZ(c)->iz)))
        return cas__fail(c, CAS_E_NOMEM, "out of memory");
    s = CAS__GZ(c)->iz;
    isal_deflate_stateless_init(s);
    s->level = (uint32_t)level;
    if (level) {
        size_t need = cas__isal_level_buf(level);
        if (CAS__GZ(c)->ilevel_size < need) {
            cas__free(&c->alloc, CAS__GZ(c)->ilevel_buf);
            CAS__GZ(c)->ilevel_buf = (unsigned char *)cas__alloc(&c->alloc, need);
            CAS__GZ(c)->ilevel_size = CAS__GZ(c)->ilevel_buf ? need : 0;
            if (!CAS__GZ(c)->ilevel_buf) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        }
        s->level_buf = CAS__GZ(c)->ilevel_buf, s->level_buf_size = (uint32_t)need;
    }
    s->next_in = (uint8_t *)(uintptr_t)in, s->avail_in = (uint32_t)n;
    s->next_out = out, s->avail_out = (uint32_t)CAS__MIN(cap, (size_t)UINT32_MAX);
    s->end_of_stream = 1, s->flush = NO_FLUSH, s->gzip_flag = 0;
    r = isal_deflate_stateless(s);
    cas__vzeroupper();
    if (r != COMP_OK) return 1; /* e.g. output overflow: the streaming path takes over */
    *len = s->total_out;
    return 0;
}
#endif

#ifdef CAS_USE_ISAL
#define CAS__STORED_BLOB 1024 /* well inside one filesystem block: stored as is */
#define CAS__SMALL_BLOB 4096  /* one filesystem block: static Huffman at most */

/* The whole input at once with room for the worst case: pick the fastest
 * encoder for these bytes. Returns CAS_DONE, an error, or 1 to fall back to
 * the streaming path (which is also the zlib path, byte-identical to CPython). */
static int cas__gz_encode_whole(cas_codec *c, const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                                size_t *made) {
    cas__gz_state *g = CAS__GZ(c);
    size_t body = 0;
    int r = 1, lvl = c->level ? c->level : 3;
    uint32_t crc;
    if (!g->use_isal || cap < cas_encode_bound(CAS_CODEC_GZIP, n)) return 1;
    if (n <= CAS__STORED_BLOB) {
        /* one stored block: it takes the same filesystem block as any encoding
         * of these bytes, and costs a copy where a Huffman pass costs 10x more */
        unsigned char *b = out + 10;
        b[0] = 1, b[1] = (unsigned char)n, b[2] = (unsigned char)(n >> 8);
        b[3] = (unsigned char)~n, b[4] = (unsigned char)(~n >> 8);
        if (n) memcpy(b + 5, in, n);
        body = n + 5, r = 0;
    } else if (n <= CAS__SMALL_BLOB) {
        r = cas__isal_whole(c, 0, in, n, out + 10, cap - 18, &body);
    } else {
#ifdef CAS_USE_LIBDEFLATE
        /* Compressible data (text, JSON, pickled strings) costs ISA-L ~10 % in
         * size against zlib; libdeflate's level 1 stays within ~5 % at 2.5x
         * zlib's speed. Incompressible data (floats, random) is where ISA-L is
         * 25x zlib. A 32 KiB sample through ISA-L level 1 tells them apart. */
        size_t sample = 0;
        int compressible = 0;
        if (cas__isal_whole(c, 1, in + (n - CAS__MIN(n, 32768)) / 2, CAS__MIN(n, 32768), out, cap, &sample) == 0)
            compressible = sample * 4 < CAS__MIN(n, 32768) * 3;
        if (c->failed) return c->failed;
        if (compressible) {
            int dl = lvl <= 3 ? 1 : lvl <= 6 ? lvl - 1 : lvl + 3; /* zlib's scale onto libdeflate's 1..12 */
            if (g->lc_def && g->lc_def_level != dl) libdeflate_free_compressor(g->lc_def), g->lc_def = NULL;
            if (!g->lc_def && !(g->lc_def = libdeflate_alloc_compressor(dl)))
                return cas__fail(c, CAS_E_NOMEM, "out of memory");
            g->lc_def_level = dl;
            body = libdeflate_deflate_compress(g->lc_def, in, n, out + 10, cap - 18);
            r = body ? 0 : 1;
        }
        if (r == 1)
#endif
            r = cas__isal_whole(c, cas__isal_level(lvl), in, n, out + 10, cap - 18, &body);
    }
    if (r) return c->failed ? c->failed : 1;
    crc = cas__crc32(0, in, n);
    memcpy(out, g->hb, 10); /* the header the reset prepared */
    out[10 + body] = (unsigned char)crc, out[11 + body] = (unsigned char)(crc >> 8);
    out[12 + body] = (unsigned char)(crc >> 16), out[13 + body] = (unsigned char)(crc >> 24);
    out[14 + body] = (unsigned char)n, out[15 + body] = (unsigned char)(n >> 8);
    out[16 + body] = (unsigned char)(n >> 16), out[17 + body] = (unsigned char)(n >> 24);
    *made = body + 18;
    c->total_in += n, c->total_out += body + 18;
    g->gz_state = CAS__GZ_END, c->done = 1;
    return CAS_DONE;
}
#endif /* CAS_USE_ISAL */

static int cas__gz_encode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                          size_t *made, int end) {
    cas__gz_state *g = CAS__GZ(c);
    size_t o = 0, i = 0;
#ifdef CAS_USE_ISAL
    if (end && g->gz_state == CAS__GZ_HEAD && g->hb_pos == 0 && c->total_in == 0) {
        int r = cas__gz_encode_whole(c, in, n, out, cap, made);
        if (r != 1) {
            *used = r == CAS_DONE ? n : 0;
            return r;
        }
        *made = 0;
    }
#endif
    for (;;) {
        if (g->gz_state == CAS__GZ_HEAD || g->gz_state == CAS__GZ_TRAILER) {
            o += cas__drain_hb(c, out + o, cap - o);
            if (g->hb_pos < g->hb_len) break; /* out full */
            if (g->gz_state == CAS__GZ_TRAILER) {
                g->gz_state = CAS__GZ_END;
                continue;
            }
            g->gz_state = CAS__GZ_BODY;
            continue;
        }
        if (g->gz_state == CAS__GZ_END) {
            *used = i, *made = o;
            c->total_out += o;
            c->done = 1;
            return CAS_DONE;
        }
        /* body */
        {
            size_t in_take = CAS__MIN(n - i, CAS__CHUNK_MAX);
            size_t out_take = CAS__MIN(cap - o, CAS__CHUNK_MAX);
            int finishing = end && in_take == n - i;
            size_t got_in, got_out;
            int finished = 0;
#ifdef CAS_USE_ISAL
            if (g->use_isal) {
                struct isal_zstream *s = g->iz;
                int r;
                s->next_in = (uint8_t *)(uintptr_t)(in + i), s->avail_in = (uint32_t)in_take;
                s->next_out = out + o, s->avail_out = (uint32_t)out_take;
                s->end_of_stream = (uint16_t)finishing;
                s->flush = NO_FLUSH;
                r = isal_deflate(s);
                cas__vzeroupper();
                if (r != COMP_OK) return cas__fail(c, CAS_E_CORRUPT, "ISA-L deflate failed (%d)", r);
                got_in = in_take - s->avail_in, got_out = out_take - s->avail_out;
                finished = s->internal_state.state == ZSTATE_END;
            } else
#endif
            {
                int r;
                g->z.next_in = (Bytef *)(uintptr_t)(in + i), g->z.avail_in = (uInt)in_take;
                g->z.next_out = out + o, g->z.avail_out = (uInt)out_take;
                r = deflate(&g->z, finishing ? Z_FINISH : Z_NO_FLUSH);
                if (r == Z_STREAM_ERROR) return cas__fail(c, CAS_E_STATE, "deflate stream error");
                got_in = in_take - g->z.avail_in, got_out = out_take - g->z.avail_out;
                finished = r == Z_STREAM_END;
            }
#ifdef CAS_USE_ISAL
            if (!g->use_isal)
#endif
                g->crc = cas__crc32(g->crc, in + i, got_in);
            g->isize += got_in;
            i += got_in, o += got_out;
            c->total_in += got_in;
            if (finished) {
#ifdef CAS_USE_ISAL
                if (g->use_isal) { /* ISA-L already wrote CRC32 and ISIZE */
                    g->gz_state = CAS__GZ_END;
                    continue;
                }
#endif
                {
                    unsigned char *t = g->hb;
                    uint32_t crc = g->crc, len = (uint32_t)g->isize;
                    t[0] = (unsigned char)crc, t[1] = (unsigned char)(crc >> 8);
                    t[2] = (unsigned char)(crc >> 16), t[3] = (unsigned char)(crc >> 24);
                    t[4] = (unsigned char)len, t[5] = (unsigned char)(len >> 8);
                    t[6] = (unsigned char)(len >> 16), t[7] = (unsigned char)(len >> 24);
                    g->hb_len = 8, g->hb_pos = 0;
                    g->gz_state = CAS__GZ_TRAILER;
                }
                continue;
            }
            if (o == cap) break;
            if (i == n && !end) break;
            if (!got_in && !got_out) break; /* no progress possible */
        }
    }
    *used = i, *made = o;
    c->total_out += o;
    if (o == cap && (g->gz_state != CAS__GZ_END)) return CAS_NEED_OUTPUT;
    return end ? CAS_NEED_OUTPUT : CAS_NEED_INPUT;
}

/* Inflates raw deflate from in into out; sets *finished at the end of the stream. */
static int cas__inflate_step(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out,
                             size_t cap, size_t *made, int *finished) {
    cas__gz_state *g = CAS__GZ(c);
    size_t in_take = CAS__MIN(n, CAS__CHUNK_MAX), out_take = CAS__MIN(cap, CAS__CHUNK_MAX);
    *finished = 0;
#ifdef CAS_USE_ISAL
    if (g->use_isal) {
        struct inflate_state *s = g->ii;
        int r;
        s->next_in = (uint8_t *)(uintptr_t)in, s->avail_in = (uint32_t)in_take;
        s->next_out = out, s->avail_out = (uint32_t)out_take;
        r = isal_inflate(s);
        cas__vzeroupper();
        *used = in_take - s->avail_in, *made = out_take - s->avail_out;
        if (r < 0) {
            const char *why = r == ISAL_INVALID_BLOCK      ? "invalid block type"
                              : r == ISAL_INVALID_SYMBOL   ? "invalid code"
                              : r == ISAL_INVALID_LOOKBACK ? "invalid distance too far back"
                                                           : "invalid deflate data";
            return cas__fail(c, CAS_E_CORRUPT, "Error -3 while decompressing data: %s", why);
        }
        *finished = s->block_state == ISAL_BLOCK_FINISH;
        if (*finished && s->read_in_length >= 8) {
            /* ISA-L reads up to 8 bytes ahead into its bit buffer; past the last
             * block they are the trailer: hand them to the trailer state. */
            uint64_t v = s->read_in >> (s->read_in_length % 8);
            int k, nb = s->read_in_length / 8;
            for (k = 0; k < nb && g->hb_len < 8; k++) g->hb[g->hb_len++] = (unsigned char)(v >> (8 * k));
            s->read_in = 0, s->read_in_length = 0;
        }
        return CAS_OK;
    }
#endif
    {
        int r;
        g->z.next_in = (Bytef *)(uintptr_t)in, g->z.avail_in = (uInt)in_take;
        g->z.next_out = out, g->z.avail_out = (uInt)out_take;
        r = inflate(&g->z, Z_NO_FLUSH);
        *used = in_take - g->z.avail_in, *made = out_take - g->z.avail_out;
        if (r == Z_STREAM_END) *finished = 1;
        else if (r == Z_DATA_ERROR || r == Z_NEED_DICT)
            return cas__fail(c, CAS_E_CORRUPT, "Error -3 while decompressing data: %s",
                             g->z.msg ? g->z.msg : "invalid data");
        else if (r == Z_MEM_ERROR) return cas__fail(c, CAS_E_NOMEM, "out of memory");
        return CAS_OK;
    }
}

static int cas__inflate_restart(cas_codec *c) {
    cas__gz_state *g = CAS__GZ(c);
#ifdef CAS_USE_ISAL
    if (g->use_isal) {
        isal_inflate_reset(g->ii);
        g->ii->crc_flag = ISAL_DEFLATE;
        return CAS_OK;
    }
#endif
    if (inflateReset(&g->z) != Z_OK) return cas__fail(c, CAS_E_STATE, "inflateReset failed");
    return CAS_OK;
}

#define CAS__GZ_TRUNC "Compressed file ended before the end-of-stream marker was reached"

static int cas__gz_not_gzip(cas_codec *c, const unsigned char *p, size_t n) {
    char rep[24];
    cas_bytes_repr(p, n, rep, sizeof rep);
    return cas__fail(c, CAS__GZ(c)->gz_members ? CAS_E_TRAILING : CAS_E_CORRUPT, CAS__GZ_NOT_OURS, rep);
}

/* Python's gzip reader, as a state machine: members back to back, NUL padding
 * between and after them, every header field, CRC and length checked. */
static int cas__gz_decode(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                          size_t *made, int end) {
    cas__gz_state *g = CAS__GZ(c);
    size_t i = 0, o = 0;
    int r;
    if (g->spill_n) { /* the probed byte first */
        if (!cap) goto need_output;
        out[o++] = g->spill, g->spill_n = 0;
    }
    for (;;) {
        switch (g->gz_state) {
        case CAS__GZ_PAD: /* after a member: skip NULs, then another member or the end */
            while (i < n && in[i] == 0) i++;
            if (i == n) goto need_input;
            g->gz_state = CAS__GZ_MAGIC;
            /* fall through */
        case CAS__GZ_MAGIC:
            while (g->hb_len < 2 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 2) {
                if (!end) goto need_input;
                if (g->hb_len == 0) { /* clean end: zero members is empty output */
                    if (g->spill_n) goto need_output;
                    *used = i, *made = o;
                    c->total_in += i, c->total_out += o;
                    c->done = 1;
                    return CAS_DONE;
                }
                return cas__gz_not_gzip(c, g->hb, g->hb_len);
            }
            if (memcmp(g->hb, CAS__GZIP_MAGIC, 2)) return cas__gz_not_gzip(c, g->hb, 2);
            g->gz_state = CAS__GZ_HEAD;
            break;
        case CAS__GZ_HEAD: /* method, flags, mtime, xfl, os */
            while (g->hb_len < 10 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 10) goto need_input;
            if (g->hb[2] != 8) return cas__fail(c, CAS_E_CORRUPT, "Unknown compression method");
            g->gz_flags = g->hb[3];
            g->hb_len = 0;
            g->gz_state = CAS__GZ_XLEN;
            break;
        case CAS__GZ_XLEN:
            if (!(g->gz_flags & 4)) {
                g->gz_state = CAS__GZ_NAME;
                break;
            }
            while (g->hb_len < 2 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 2) goto need_input;
            g->gz_need = (uint32_t)g->hb[0] | (uint32_t)g->hb[1] << 8;
            g->hb_len = 0;
            g->gz_state = CAS__GZ_EXTRA;
            /* fall through */
        case CAS__GZ_EXTRA: {
            size_t k = CAS__MIN((size_t)g->gz_need, n - i);
            i += k, g->gz_need -= (uint32_t)k;
            if (g->gz_need) goto need_input;
            g->gz_state = CAS__GZ_NAME;
            break;
        }
        case CAS__GZ_NAME:
        case CAS__GZ_COMMENT: {
            int bit = g->gz_state == CAS__GZ_NAME ? 8 : 16;
            if (g->gz_flags & bit) {
                const unsigned char *z = (const unsigned char *)memchr(in + i, 0, n - i);
                if (!z) {
                    i = n;
                    goto need_input;
                }
                i = (size_t)(z - in) + 1;
            }
            g->gz_state = g->gz_state == CAS__GZ_NAME ? CAS__GZ_COMMENT : CAS__GZ_HCRC;
            break;
        }
        case CAS__GZ_HCRC: /* Python reads and ignores the header CRC; so do we */
            if (g->gz_flags & 2) {
                while (g->hb_len < 2 && i < n) g->hb[g->hb_len++] = in[i++];
                if (g->hb_len < 2) goto need_input;
            }
            g->hb_len = 0;
            g->crc = 0, g->isize = 0;
            g->gz_state = CAS__GZ_BODY;
            break;
        case CAS__GZ_BODY: {
            size_t u, m, room = cap - o;
            unsigned char *dst = out + o, one;
            int fin;
            /* With the output full the member may still end without another
             * byte (an empty last block, an empty member): probe with a 1-byte
             * spill so that an exactly sized buffer ends in CAS_DONE. */
            if (!room) {
                if (g->spill_n) goto need_output; /* one probed byte at a time */
                dst = &one, room = 1;
            }
            r = cas__inflate_step(c, in + i, n - i, &u, dst, room, &m, &fin);
            if (r < 0) return r;
            g->crc = cas__crc32(g->crc, dst, m);
            g->isize += m;
            i += u;
            if (dst == &one) {
                if (m) g->spill = one, g->spill_n = 1;
            } else {
                o += m;
            }
            if (fin) {
                g->gz_state = CAS__GZ_TRAILER;
                break;
            }
            if (g->spill_n || o == cap) goto need_output;
            if (i == n) goto need_input;
            if (!u && !m) goto need_input;
            break;
        }
        case CAS__GZ_TRAILER: {
            uint32_t crc, len;
            while (g->hb_len < 8 && i < n) g->hb[g->hb_len++] = in[i++];
            if (g->hb_len < 8) goto need_input;
            crc = (uint32_t)g->hb[0] | (uint32_t)g->hb[1] << 8 | (uint32_t)g->hb[2] << 16 | (uint32_t)g->hb[3] << 24;
            len = (uint32_t)g->hb[4] | (uint32_t)g->hb[5] << 8 | (uint32_t)g->hb[6] << 16 | (uint32_t)g->hb[7] << 24;
            if (crc != g->crc)
                return cas__fail(c, CAS_E_CORRUPT, "CRC check failed 0x%lx != 0x%lx", (unsigned long)crc,
                                 (unsigned long)g->crc);
            if (len != (uint32_t)g->isize) return cas__fail(c, CAS_E_CORRUPT, "Incorrect length of data produced");
            g->gz_members++;
            g->hb_len = 0;
            r = cas__inflate_restart(c);
            if (r < 0) return r;
            g->gz_state = CAS__GZ_PAD;
            break;
        }
        default: return cas__fail(c, CAS_E_STATE, "gzip decoder in a bad state");
        }
    }
need_output:
    *used = i, *made = o;
    c->total_in += i, c->total_out += o;
    return CAS_NEED_OUTPUT;
need_input:
    *used = i, *made = o;
    c->total_in += i, c->total_out += o;
    if (g->spill_n) return CAS_NEED_OUTPUT;
    if (end && i == n) {
        if (g->gz_state == CAS__GZ_PAD) { /* members then only NULs: the end */
            c->done = 1;
            return CAS_DONE;
        }
        /* a body that still has output pending is not truncated yet */
        if (g->gz_state == CAS__GZ_BODY && o == cap) return CAS_NEED_OUTPUT;
        return cas__fail(c, CAS_E_TRUNCATED, CAS__GZ_TRUNC);
    }
    return CAS_NEED_INPUT;
}

static int cas__gz_update(cas_codec *c, const unsigned char *in, size_t n, size_t *used, unsigned char *out, size_t cap,
                          size_t *made, int end) {
    if (c->done) return cas__after_done(c, n);
    return c->encode ? cas__gz_encode(c, in, n, used, out, cap, made, end)
                     : cas__gz_decode(c, in, n, used, out, cap, made, end);
}
#endif /* CAS_NO_GZIP */

/* zlib's deflateBound is n + n/4096 + n/16384 + 7; ISA-L's stored-block
 * fallback costs a little more on incompressible input, so keep a margin. */
static size_t cas__gz_bound(size_t n) {
    size_t b = n + (n >> 8) + 1024;
    return b < n ? (size_t)-1 : b + 18;
}

/* The last member's length field (mod 2^32): a hint only. */
static int cas__gz_hint(const unsigned char *p, size_t n, uint64_t *size) {
    if (n == 0) return CAS_OK;
    if (n < 18 || memcmp(p, CAS__GZIP_MAGIC, 2)) return CAS_E_NOTFOUND;
    *size = (uint64_t)p[n - 4] | (uint64_t)p[n - 3] << 8 | (uint64_t)p[n - 2] << 16 | (uint64_t)p[n - 1] << 24;
    return CAS_OK;
}
