/* ---- the machine: stack, marks, memo ---------------------------------------------- */

static int cas__pk_push(cas_preview *p, cas__pv *v) {
    if (!v) return -1;                     /* its creation failed and said why */
    if ((int64_t)p->sp >= p->max_values) { /* DUP, GET: references the values limit does not see */
        cas__pv_unref(p, v);
        return cas__pk_fail(p, CAS_E_LIMIT, "the pickle's stack holds more than %lld values (CAS_PREVIEW_MAX_VALUES)",
                            (long long)p->max_values);
    }
    if (p->sp == p->scap) {
        void *stack = p->stack;
        if (cas__pk_grow(p, &stack, p->sp, &p->scap, sizeof *p->stack, 64, (size_t)-1 / sizeof *p->stack) < 0) {
            cas__pv_unref(p, v);
            return -1;
        }
        p->stack = (cas__pv **)stack;
    }
    p->stack[p->sp++] = v;
    return 0;
}

/* 1 (and the preview failed) when op finds nothing above the innermost mark. */
static int cas__pk_underflow(cas_preview *p, unsigned op) {
    size_t floor = p->nmarks ? p->marks[p->nmarks - 1] : 0;
    if (p->sp > floor) return 0;
    cas__pk_fail(p, CAS_E_CORRUPT, "stack underflow at byte %llu (opcode 0x%02x)", (unsigned long long)p->off - 1, op);
    return 1;
}

/* The caller owns the reference it gets. */
static cas__pv *cas__pk_pop(cas_preview *p, unsigned op) { return cas__pk_underflow(p, op) ? NULL : p->stack[--p->sp]; }

static cas__pv *cas__pk_top(cas_preview *p, unsigned op) {
    return cas__pk_underflow(p, op) ? NULL : p->stack[p->sp - 1];
}

static int cas__pk_mark(cas_preview *p) {
    if (p->nmarks == p->mcap) {
        void *marks = p->marks;
        if ((int64_t)(p->mcap ? p->mcap * 2 : 16) > p->max_values * 2 + 16)
            return cas__pk_fail(p, CAS_E_LIMIT, "too many marks");
        if (cas__pk_grow(p, &marks, p->nmarks, &p->mcap, sizeof *p->marks, 16, (size_t)-1 / sizeof *p->marks) < 0)
            return -1;
        p->marks = (size_t *)marks;
    }
    p->marks[p->nmarks++] = p->sp;
    return 0;
}

/* The items since the last mark are stack[*from .. p->sp); the mark is gone. */
static int cas__pk_popmark(cas_preview *p, unsigned op, size_t *from) {
    if (!p->nmarks)
        return cas__pk_fail(p, CAS_E_CORRUPT, "no mark for opcode 0x%02x at byte %llu", op,
                            (unsigned long long)p->off - 1);
    *from = p->marks[--p->nmarks];
    return 0;
}

static void cas__pk_drop_to(cas_preview *p, size_t from) {
    while (p->sp > from) cas__pv_unref(p, p->stack[--p->sp]);
}

/* The memo: an open-addressing table keyed by the index the pickle gives (any 32-bit
 * number: LONG_BINPUT may name 4,000,000,000), holding a reference each. The slot
 * comes from a keyed mix (splitmix64's finaliser over key ^ seed, a new seed each
 * run): keys chosen to share slots under a fixed hash made the probes quadratic. */
static uint64_t cas__pk_mix(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static size_t cas__memo_slot_of(const cas_preview *p, uint32_t key, size_t mask) {
    return (size_t)cas__pk_mix(key ^ p->memo_seed) & mask;
}

/* A run's seed: what the pickle's author cannot know (where this process's heap and
 * stack are, the time), stirred with the last seed. */
static void cas__memo_reseed(cas_preview *p) {
    uint64_t here = (uint64_t)(uintptr_t)&here;
    p->memo_seed = cas__pk_mix(p->memo_seed ^ (uint64_t)(uintptr_t)p ^ here << 21 ^ (uint64_t)time(NULL) << 40 ^
                               (uint64_t)clock() ^ 0x9e3779b97f4a7c15u);
}

static int cas__memo_put(cas_preview *p, uint32_t key, cas__pv *v) {
    size_t i, mask;
    if (p->memo_n * 2 + 2 > p->memo_cap) {
        size_t nc = p->memo_cap ? p->memo_cap * 2 : 256, k;
        cas__memo_slot *nm;
        if ((int64_t)p->memo_n >= p->max_memo)
            return cas__pk_fail(p, CAS_E_LIMIT, "more than %lld memo entries (CAS_PREVIEW_MAX_MEMO)",
                                (long long)p->max_memo);
        if (!(nm = (cas__memo_slot *)cas__calloc(&p->alloc, nc * sizeof *nm)))
            return cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        for (k = 0; k < p->memo_cap; k++) {
            if (!p->memo[k].v) continue;
            for (i = cas__memo_slot_of(p, p->memo[k].key, nc - 1); nm[i].v; i = (i + 1) & (nc - 1)) {
            }
            nm[i] = p->memo[k];
        }
        cas__free(&p->alloc, p->memo);
        p->memo = nm, p->memo_cap = nc;
    }
    mask = p->memo_cap - 1;
    for (i = cas__memo_slot_of(p, key, mask); p->memo[i].v; i = (i + 1) & mask)
        if (p->memo[i].key == key) { /* a PUT again under the same index replaces the value */
            cas__pv_unref(p, p->memo[i].v);
            p->memo[i].v = cas__pv_ref(v);
            return 0;
        }
    p->memo[i].key = key, p->memo[i].v = cas__pv_ref(v);
    p->memo_n++;
    return 0;
}

static cas__pv *cas__memo_get(cas_preview *p, uint32_t key) {
    size_t i, mask;
    if (!p->memo_cap) return NULL;
    mask = p->memo_cap - 1;
    for (i = cas__memo_slot_of(p, key, mask); p->memo[i].v; i = (i + 1) & mask)
        if (p->memo[i].key == key) return p->memo[i].v;
    return NULL;
}

static int cas__pk_get(cas_preview *p, uint64_t key) {
    cas__pv *v = key <= 0xffffffffu ? cas__memo_get(p, (uint32_t)key) : NULL;
    if (!v)
        return cas__pk_fail(p, CAS_E_CORRUPT, "memo entry %llu is not there (byte %llu)", (unsigned long long)key,
                            (unsigned long long)p->off);
    return cas__pk_push(p, cas__pv_ref(v));
}
