/* ---- hashing ------------------------------------------------------------- */

/* The portable SHA-1 is the dependency-free default; no Debian library offers
 * SHA-1 without pulling a crypto library in, and CAS_USE_OPENSSL uses one. */
#ifndef CAS_USE_OPENSSL
typedef struct cas__sha1 {
    uint32_t h[5];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
} cas__sha1;

#define CAS__ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define CAS__BE32(p) ((uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 | (uint32_t)(p)[3])

static void cas__sha1_blocks(uint32_t st[5], const unsigned char *p, size_t nblocks) {
    uint32_t w[16];
    while (nblocks--) {
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4];
        int t;
#define CAS__W(i) w[(i)&15]
#define CAS__MIX(i) (CAS__W(i) = CAS__ROL(CAS__W((i) + 13) ^ CAS__W((i) + 8) ^ CAS__W((i) + 2) ^ CAS__W(i), 1))
#define CAS__R(a, b, c, d, e, f, k, x)     \
    e += CAS__ROL(a, 5) + (f) + (k) + (x); \
    b = CAS__ROL(b, 30)
#define CAS__F1(b, c, d) ((((c) ^ (d)) & (b)) ^ (d))
#define CAS__F2(b, c, d) ((b) ^ (c) ^ (d))
#define CAS__F3(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))
        for (t = 0; t < 16; t++) w[t] = CAS__BE32(p + 4 * t);
        for (t = 0; t < 15; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F1(b, c, d), 0x5a827999u, w[t]);
            CAS__R(e, a, b, c, d, CAS__F1(a, b, c), 0x5a827999u, w[t + 1]);
            CAS__R(d, e, a, b, c, CAS__F1(e, a, b), 0x5a827999u, w[t + 2]);
            CAS__R(c, d, e, a, b, CAS__F1(d, e, a), 0x5a827999u, w[t + 3]);
            CAS__R(b, c, d, e, a, CAS__F1(c, d, e), 0x5a827999u, w[t + 4]);
        }
        CAS__R(a, b, c, d, e, CAS__F1(b, c, d), 0x5a827999u, w[15]);
        CAS__R(e, a, b, c, d, CAS__F1(a, b, c), 0x5a827999u, CAS__MIX(16));
        CAS__R(d, e, a, b, c, CAS__F1(e, a, b), 0x5a827999u, CAS__MIX(17));
        CAS__R(c, d, e, a, b, CAS__F1(d, e, a), 0x5a827999u, CAS__MIX(18));
        CAS__R(b, c, d, e, a, CAS__F1(c, d, e), 0x5a827999u, CAS__MIX(19));
        for (t = 20; t < 40; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F2(b, c, d), 0x6ed9eba1u, CAS__MIX(t));
            CAS__R(e, a, b, c, d, CAS__F2(a, b, c), 0x6ed9eba1u, CAS__MIX(t + 1));
            CAS__R(d, e, a, b, c, CAS__F2(e, a, b), 0x6ed9eba1u, CAS__MIX(t + 2));
            CAS__R(c, d, e, a, b, CAS__F2(d, e, a), 0x6ed9eba1u, CAS__MIX(t + 3));
            CAS__R(b, c, d, e, a, CAS__F2(c, d, e), 0x6ed9eba1u, CAS__MIX(t + 4));
        }
        for (t = 40; t < 60; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F3(b, c, d), 0x8f1bbcdcu, CAS__MIX(t));
            CAS__R(e, a, b, c, d, CAS__F3(a, b, c), 0x8f1bbcdcu, CAS__MIX(t + 1));
            CAS__R(d, e, a, b, c, CAS__F3(e, a, b), 0x8f1bbcdcu, CAS__MIX(t + 2));
            CAS__R(c, d, e, a, b, CAS__F3(d, e, a), 0x8f1bbcdcu, CAS__MIX(t + 3));
            CAS__R(b, c, d, e, a, CAS__F3(c, d, e), 0x8f1bbcdcu, CAS__MIX(t + 4));
        }
        for (t = 60; t < 80; t += 5) {
            CAS__R(a, b, c, d, e, CAS__F2(b, c, d), 0xca62c1d6u, CAS__MIX(t));
            CAS__R(e, a, b, c, d, CAS__F2(a, b, c), 0xca62c1d6u, CAS__MIX(t + 1));
            CAS__R(d, e, a, b, c, CAS__F2(e, a, b), 0xca62c1d6u, CAS__MIX(t + 2));
            CAS__R(c, d, e, a, b, CAS__F2(d, e, a), 0xca62c1d6u, CAS__MIX(t + 3));
            CAS__R(b, c, d, e, a, CAS__F2(c, d, e), 0xca62c1d6u, CAS__MIX(t + 4));
        }
#undef CAS__W
#undef CAS__MIX
#undef CAS__R
#undef CAS__F1
#undef CAS__F2
#undef CAS__F3
        st[0] += a, st[1] += b, st[2] += c, st[3] += d, st[4] += e;
        p += 64;
    }
}

static void cas__sha1_init(cas__sha1 *s) {
    s->h[0] = 0x67452301u, s->h[1] = 0xefcdab89u, s->h[2] = 0x98badcfeu;
    s->h[3] = 0x10325476u, s->h[4] = 0xc3d2e1f0u;
    s->len = 0, s->fill = 0;
}

static void cas__sha1_update(cas__sha1 *s, const unsigned char *p, size_t n) {
    s->len += n;
    if (s->fill) {
        size_t k = CAS__MIN(n, 64 - s->fill);
        memcpy(s->buf + s->fill, p, k);
        s->fill += k, p += k, n -= k;
        if (s->fill < 64) return;
        cas__sha1_blocks(s->h, s->buf, 1);
        s->fill = 0;
    }
    if (n >= 64) {
        cas__sha1_blocks(s->h, p, n / 64);
        p += n & ~(size_t)63, n &= 63;
    }
    memcpy(s->buf, p, n);
    s->fill = n;
}

static void cas__sha1_final(cas__sha1 *s, unsigned char out[20]) {
    uint64_t bits = s->len * 8;
    int i;
    s->buf[s->fill++] = 0x80;
    if (s->fill > 56) {
        memset(s->buf + s->fill, 0, 64 - s->fill);
        cas__sha1_blocks(s->h, s->buf, 1);
        s->fill = 0;
    }
    memset(s->buf + s->fill, 0, 56 - s->fill);
    for (i = 0; i < 8; i++) s->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    cas__sha1_blocks(s->h, s->buf, 1);
    for (i = 0; i < 20; i++) out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}
#endif /* !CAS_USE_OPENSSL */

struct cas_hasher {
    cas_allocator alloc;
    int algo, finished;
#ifdef CAS_USE_OPENSSL
    EVP_MD_CTX *evp;
#else
    cas__sha1 sha;
#endif
#ifndef CAS_NO_XXH3
    void *xraw;        /* allocation holding the 64-byte aligned state */
    XXH3_state_t *xst; /* XXH3 wants 64-byte alignment, more than malloc promises */
#endif
};

#ifdef CAS_USE_OPENSSL
/* EVP_sha1() makes OpenSSL 3 look the algorithm up on every init; fetching it
 * once halves the cost of hashing a small artifact. */
static const EVP_MD *cas__sha1_md_ptr;
#ifndef CAS_NO_THREADS
static pthread_once_t cas__sha1_once = PTHREAD_ONCE_INIT;
#endif
static void cas__sha1_fetch(void) {
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA1", NULL); /* kept for the process's life */
    cas__sha1_md_ptr = md ? md : EVP_sha1();
}
static const EVP_MD *cas__sha1_md(void) {
#ifndef CAS_NO_THREADS
    pthread_once(&cas__sha1_once, cas__sha1_fetch);
#else
    if (!cas__sha1_md_ptr) cas__sha1_fetch();
#endif
    return cas__sha1_md_ptr;
}
#endif

CASDEF int cas_hash_available(int algo) {
#ifndef CAS_NO_XXH3
    if (algo == CAS_HASH_XXH3) return 1;
#endif
    return algo == CAS_HASH_SHA1;
}

CASDEF size_t cas_key_length(int algo) { return algo == CAS_HASH_SHA1 ? 40 : algo == CAS_HASH_XXH3 ? 32 : 0; }

CASDEF int cas_key_check(const char *key, size_t len, int *algo) {
    size_t i;
    if (algo) *algo = 0;
    if (!key || (len != 40 && len != 32)) return CAS_E_KEY;
    for (i = 0; i < len; i++)
        if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f'))) return CAS_E_KEY;
    if (algo) *algo = len == 40 ? CAS_HASH_SHA1 : CAS_HASH_XXH3;
    return CAS_OK;
}

/* A hex digit's value, -1 if it is not one (cas_cloud.h's URL decoding, cas_pickle.h's text). */
CAS__UNUSED static int cas__hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void cas__hex(const unsigned char *d, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) out[2 * i] = hx[d[i] >> 4], out[2 * i + 1] = hx[d[i] & 15];
    out[2 * n] = 0;
}

CASDEF int cas_hasher_reset(cas_hasher *h) {
    if (!h) return CAS_E_ARG;
    h->finished = 0;
#ifndef CAS_NO_XXH3
    if (h->algo == CAS_HASH_XXH3) {
        XXH3_128bits_reset(h->xst);
        return CAS_OK;
    }
#endif
#ifdef CAS_USE_OPENSSL
    if (EVP_DigestInit_ex(h->evp, cas__sha1_md(), NULL) != 1) return CAS_E_NOMEM;
#else
    cas__sha1_init(&h->sha);
#endif
    return CAS_OK;
}

CASDEF void cas_hasher_free(cas_hasher *h) {
    cas_allocator a;
    if (!h) return;
#ifdef CAS_USE_OPENSSL
    if (h->evp) EVP_MD_CTX_free(h->evp);
#endif
#ifndef CAS_NO_XXH3
    cas__free(&h->alloc, h->xraw);
#endif
    a = h->alloc;
    cas__free(&a, h);
}

CASDEF int cas_hasher_create(cas_hasher **out, int algo, const cas_allocator *alloc) {
    cas_hasher *h;
    if (!out) return CAS_E_ARG;
    *out = NULL;
    if (!cas_key_length(algo)) return CAS_E_ARG;
    if (!cas_hash_available(algo)) return CAS_E_UNSUPPORTED;
    if (!(h = (cas_hasher *)cas__obj_new(sizeof *h, alloc))) return CAS_E_NOMEM;
    h->algo = algo;
#ifndef CAS_NO_XXH3
    if (algo == CAS_HASH_XXH3) {
        h->xraw = cas__alloc(&h->alloc, sizeof(XXH3_state_t) + 64);
        if (!h->xraw) {
            cas_hasher_free(h);
            return CAS_E_NOMEM;
        }
        h->xst = (XXH3_state_t *)(void *)(((uintptr_t)h->xraw + 63) & ~(uintptr_t)63);
        XXH3_INITSTATE(h->xst);
    }
#endif
#ifdef CAS_USE_OPENSSL
    if (algo == CAS_HASH_SHA1 && !(h->evp = EVP_MD_CTX_new())) {
        cas_hasher_free(h);
        return CAS_E_NOMEM;
    }
#endif
    if (cas_hasher_reset(h) < 0) {
        cas_hasher_free(h);
        return CAS_E_NOMEM;
    }
    *out = h;
    return CAS_OK;
}

CASDEF int cas_hasher_update(cas_hasher *h, const void *data, size_t n) {
    if (!h || (!data && n)) return CAS_E_ARG;
    if (h->finished) return CAS_E_STATE;
    if (!n) return CAS_OK;
#ifndef CAS_NO_XXH3
    if (h->algo == CAS_HASH_XXH3) {
        XXH3_128bits_update(h->xst, data, n);
        return CAS_OK;
    }
#endif
#ifdef CAS_USE_OPENSSL
    if (EVP_DigestUpdate(h->evp, data, n) != 1) return CAS_E_STATE;
#else
    cas__sha1_update(&h->sha, (const unsigned char *)data, n);
#endif
    return CAS_OK;
}

CASDEF int cas_hasher_final(cas_hasher *h, char key[CAS_KEY_BUF]) {
    unsigned char d[20];
    if (!h || !key) return CAS_E_ARG;
    if (h->finished) return CAS_E_STATE;
    h->finished = 1;
#ifndef CAS_NO_XXH3
    if (h->algo == CAS_HASH_XXH3) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xst));
        cas__hex(c.digest, 16, key);
        return CAS_OK;
    }
#endif
#ifdef CAS_USE_OPENSSL
    {
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(h->evp, d, &len) != 1 || len != 20) return CAS_E_STATE;
    }
#else
    cas__sha1_final(&h->sha, d);
#endif
    cas__hex(d, 20, key);
    return CAS_OK;
}

CASDEF int cas_hash(int algo, const void *data, size_t n, char key[CAS_KEY_BUF]) {
    if (!key || (!data && n)) return CAS_E_ARG;
    if (!cas_key_length(algo)) return CAS_E_ARG;
    if (!cas_hash_available(algo)) return CAS_E_UNSUPPORTED;
#ifndef CAS_NO_XXH3
    if (algo == CAS_HASH_XXH3) { /* one-shot XXH3 needs no state at all */
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
        cas__hex(c.digest, 16, key);
        return CAS_OK;
    }
#endif
#ifdef CAS_USE_OPENSSL
    {
        unsigned char d[20];
        unsigned int len = 0;
        if (EVP_Digest(data, n, d, &len, cas__sha1_md(), NULL) != 1 || len != 20) return CAS_E_NOMEM;
        cas__hex(d, 20, key);
    }
#else
    {
        cas__sha1 s;
        unsigned char d[20];
        cas__sha1_init(&s);
        cas__sha1_update(&s, (const unsigned char *)data, n);
        cas__sha1_final(&s, d);
        cas__hex(d, 20, key);
    }
#endif
    return CAS_OK;
}
