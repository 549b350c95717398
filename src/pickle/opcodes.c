/* ---- values from opcodes -------------------------------------------------------- */

static cas__pv *cas__pv_int(cas_preview *p, int64_t i) {
    cas__pv *v = cas__pv_new(p, CAS__PV_INT);
    if (v) v->i = i;
    return v;
}

static cas__pv *cas__pv_textval(cas_preview *p, int kind, const char *s, size_t n) {
    cas__pv *v = cas__pv_new(p, kind);
    if (v && cas__pv_set_text(p, v, s, n, n) < 0) {
        cas__pv_unref(p, v);
        return NULL;
    }
    return v;
}

/* Little-endian two's complement (LONG1, LONG4): an int when it fits 64 bits, else
 * its decimal digits (up to CAS__PK_BIGINT_MAX bytes; beyond, only its size). */
#define CAS__PK_BIGINT_MAX 512
static cas__pv *cas__pv_long(cas_preview *p, const unsigned char *b, size_t n, uint64_t full) {
    cas__pv *v;
    size_t i;
    int neg = n && (b[n - 1] & 0x80);
    if (full <= 8) {
        uint64_t u = 0;
        for (i = n; i-- > 0;) u = u << 8 | b[i];
        if (neg && n < 8) u |= ~(uint64_t)0 << (8 * n);
        return cas__pv_int(p, (int64_t)u);
    }
    if (!(v = cas__pv_new(p, CAS__PV_BIGINT))) return NULL;
    if (full > CAS__PK_BIGINT_MAX || n < full) {
        char t[80];
        snprintf(t, sizeof t, "<int of %llu bits>", (unsigned long long)full * 8);
        if (cas__pv_set_text(p, v, t, strlen(t), strlen(t)) < 0) return cas__pv_unref(p, v), (cas__pv *)NULL;
        return v;
    }
    { /* magnitude in base 2^32 words, then repeated division by 10^9 */
        uint32_t w[CAS__PK_BIGINT_MAX / 4 + 1];
        size_t nw = (n + 3) / 4, k;
        char digits[CAS__PK_BIGINT_MAX * 3 + 4], *d = digits + sizeof digits;
        uint32_t carry = 1;
        memset(w, 0, sizeof w);
        for (i = 0; i < n; i++) w[i / 4] |= (uint32_t)b[i] << (8 * (i % 4));
        if (n % 4 && neg)
            for (i = n; i < nw * 4; i++) w[i / 4] |= (uint32_t)0xff << (8 * (i % 4));
        if (neg) /* two's complement: invert and add one */
            for (k = 0; k < nw; k++) {
                uint64_t t = (uint64_t)(uint32_t)~w[k] + carry;
                w[k] = (uint32_t)t, carry = (uint32_t)(t >> 32);
            }
        *--d = 0;
        while (nw && !w[nw - 1]) nw--;
        while (nw) {
            uint64_t rem = 0;
            int j;
            for (k = nw; k-- > 0;) {
                uint64_t cur = rem << 32 | w[k];
                w[k] = (uint32_t)(cur / 1000000000u), rem = cur % 1000000000u;
            }
            while (nw && !w[nw - 1]) nw--;
            for (j = 0; j < 9 && (nw || rem); j++) *--d = (char)('0' + rem % 10), rem /= 10;
        }
        if (!*d) *--d = '0';
        if (neg) *--d = '-';
        if (cas__pv_set_text(p, v, d, strlen(d), strlen(d)) < 0) return cas__pv_unref(p, v), (cas__pv *)NULL;
    }
    return v;
}
