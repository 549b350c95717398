/* ---- recognisers and text arguments (below) ------------------------------------------ */
static cas__pv *cas__pk_textnum(cas_preview *p, unsigned op, const char *s, size_t n);
static cas__pv *cas__pk_textstr(cas_preview *p, unsigned op, const char *s, size_t n);
static cas__pv *cas__pk_global(cas_preview *p, const char *mod, size_t ml, const char *name, size_t nl);
static cas__pv *cas__pk_reduce(cas_preview *p, cas__pv *func, cas__pv *args);
static cas__pv *cas__pk_newobj(cas_preview *p, cas__pv *cls, cas__pv *args, cas__pv *kwargs);
static int cas__pk_build(cas_preview *p, cas__pv *obj, cas__pv *state);

/* A container from stack[from..sp) (the items since a mark, or the last n). */
static cas__pv *cas__pk_collect(cas_preview *p, int kind, size_t from) {
    cas__pv *v = cas__pv_new(p, kind);
    size_t i;
    if (!v) {
        cas__pk_drop_to(p, from);
        return NULL;
    }
    for (i = from; i < p->sp; i++) cas__pv_add(p, v, p->stack[i], cas__pk_keep(p));
    p->sp = from;
    return v;
}

/* APPEND(S) / SETITEM(S) / ADDITEMS: the items since `from` into the container below. */
static int cas__pk_extend(cas_preview *p, unsigned op, size_t from, int pairs) {
    cas__pv *c;
    size_t i;
    if (from < 1 || from > p->sp) {
        cas__pk_drop_to(p, from > p->sp ? p->sp : from);
        return cas__pk_fail(p, CAS_E_CORRUPT, "opcode 0x%02x at byte %llu has nothing to add to", op,
                            (unsigned long long)p->off - 1);
    }
    c = p->stack[from - 1];
    if (pairs && (p->sp - from) % 2) {
        cas__pk_drop_to(p, from);
        return cas__pk_fail(p, CAS_E_CORRUPT, "SETITEMS with an odd number of items at byte %llu",
                            (unsigned long long)p->off - 1);
    }
    for (i = from; i < p->sp; i++) {
        /* a dict keeps key, value pairs: a pair is kept or dropped whole */
        uint32_t keep = pairs ? cas__pk_keep(p) * 2 : cas__pk_keep(p);
        if (pairs && (i - from) % 2 == 1 && c->nkids % 2 == 0) keep = 0; /* its key was dropped */
        cas__pv_add(p, c, p->stack[i], keep); /* into whatever is below: a custom class's items show as its own */
    }
    if (pairs) c->full -= (p->sp - from) / 2; /* count pairs, not keys and values */
    p->sp = from;
    return 0;
}

/* The opcodes, protocols 0 to 5. Nothing is executed: REDUCE, NEWOBJ, BUILD and the
 * like only make values that describe the call. Returns 0 at STOP (or at an early
 * stop), < 0 with p->rc set. */
static int cas__pk_loop(cas_preview *p) {
    for (;;) {
        unsigned char op, b[8];
        cas__pv *v, *a, *f;
        size_t from = 0, len;
        char *line;
        if (p->stopped_early) return 0;
        if (p->max_ops && ++p->ops > (uint64_t)p->max_ops)
            return cas__pk_fail(p, CAS_E_LIMIT, "more than %lld opcodes (CAS_PREVIEW_MAX_OPS)", (long long)p->max_ops);
        if (cas__pk_byte(p, &op) < 0) return -1;
        switch (op) {
        case 0x80: /* PROTO */
            if (cas__pk_bytes(p, b, 1) < 0) return -1;
            if (b[0] > 5)
                return cas__pk_fail(p, CAS_E_CORRUPT, "protocol %u is beyond 5 (byte %llu)", b[0],
                                    (unsigned long long)p->off - 2);
            p->proto = b[0];
            break;
        case 0x95: /* FRAME: a length; the frame's opcodes follow as usual */
            if (cas__pk_bytes(p, b, 8) < 0) return -1;
            break;
        case '.': /* STOP */
            if (p->nmarks || p->sp != 1)
                return cas__pk_fail(p, CAS_E_CORRUPT, "STOP at byte %llu with %s", (unsigned long long)p->off - 1,
                                    p->nmarks ? "a mark still open"
                                    : p->sp   ? "more than one value left"
                                              : "an empty stack");
            return 0;
        case '(': /* MARK */
            if (cas__pk_mark(p) < 0) return -1;
            break;
        case '0':                                                /* POP */
            if (p->nmarks && p->marks[p->nmarks - 1] == p->sp) { /* pops a mark (as Python does) */
                p->nmarks--;
                break;
            }
            if (!(v = cas__pk_pop(p, op))) return -1;
            cas__pv_unref(p, v);
            break;
        case '1': /* POP_MARK */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            cas__pk_drop_to(p, from);
            break;
        case '2': /* DUP */
            if (!(v = cas__pk_top(p, op)) || cas__pk_push(p, cas__pv_ref(v)) < 0) return -1;
            break;
        case 'N': /* NONE */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_NONE)) < 0) return -1;
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if (!(v = cas__pv_new(p, CAS__PV_BOOL))) return -1;
            v->i = op == 0x88;
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'J': /* BININT */
            if (cas__pk_bytes(p, b, 4) < 0 || cas__pk_push(p, cas__pv_int(p, (int32_t)(uint32_t)cas__le(b, 4))) < 0)
                return -1;
            break;
        case 'K': /* BININT1 */
            if (cas__pk_bytes(p, b, 1) < 0 || cas__pk_push(p, cas__pv_int(p, b[0])) < 0) return -1;
            break;
        case 'M': /* BININT2 */
            if (cas__pk_bytes(p, b, 2) < 0 || cas__pk_push(p, cas__pv_int(p, (int64_t)cas__le(b, 2))) < 0) return -1;
            break;
        case 0x8a:   /* LONG1 */
        case 0x8b: { /* LONG4 */
            unsigned char digits[CAS__PK_BIGINT_MAX];
            uint64_t n;
            size_t kept = 0;
            int stopped;
            uint64_t win[2];
            if (cas__pk_bytes(p, b, op == 0x8a ? 1 : 4) < 0) return -1;
            n = cas__le(b, op == 0x8a ? 1 : 4);
            if (op == 0x8b && (int32_t)(uint32_t)n < 0)
                return cas__pk_fail(p, CAS_E_CORRUPT, "LONG4 with a negative length at byte %llu",
                                    (unsigned long long)p->off - 5);
            win[0] = 0, win[1] = CAS__MIN(n, (uint64_t)sizeof digits);
            if (cas__pk_payload(p, n, win, 1, digits, 0, &stopped, &kept) < 0) return -1;
            /* the sign lives in the last byte: a long beyond what is kept shows only its size */
            if (cas__pk_push(p, cas__pv_long(p, digits, kept, n)) < 0) return -1;
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            uint64_t u = 0;
            int i;
            double d;
            if (cas__pk_bytes(p, b, 8) < 0) return -1;
            for (i = 0; i < 8; i++) u = u << 8 | b[i];
            memcpy(&d, &u, sizeof d);
            if (!(v = cas__pv_new(p, CAS__PV_FLOAT))) return -1;
            v->f = d;
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        }
        case 'I': /* INT (protocol 0 text; "01"/"00" are True/False) */
        case 'L': /* LONG */
        case 'F': /* FLOAT */
            if (!(line = cas__pk_line(p, &len))) return -1;
            v = cas__pk_textnum(p, op, line, len);
            cas__free(&p->alloc, line);
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'S': /* STRING: a quoted repr (protocol 0 bytes) */
        case 'V': /* UNICODE: raw-unicode-escape */
        case 'P': /* PERSID */
            if (!(line = cas__pk_line(p, &len))) return -1;
            v = op == 'P' ? cas__pv_textval(p, CAS__PV_OPAQUE, "persistent id", 13) : cas__pk_textstr(p, op, line, len);
            cas__free(&p->alloc, line);
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'Q': /* BINPERSID */
            if (!(v = cas__pk_pop(p, op))) return -1;
            cas__pv_unref(p, v);
            if (cas__pk_push(p, cas__pv_textval(p, CAS__PV_OPAQUE, "persistent id", 13)) < 0) return -1;
            break;
        case 'T': /* BINSTRING */
        case 'B': /* BINBYTES */
        case 'X': /* BINUNICODE */
            if (cas__pk_bytes(p, b, 4) < 0) return -1;
            if (op == 'T' && (int32_t)(uint32_t)cas__le(b, 4) < 0)
                return cas__pk_fail(p, CAS_E_CORRUPT, "BINSTRING with a negative length at byte %llu",
                                    (unsigned long long)p->off - 5);
            if (cas__pk_sized(p, op == 'X' ? CAS__PV_STR : CAS__PV_BYTES, cas__le(b, 4)) < 0) return -1;
            break;
        case 'U':  /* SHORT_BINSTRING */
        case 'C':  /* SHORT_BINBYTES */
        case 0x8c: /* SHORT_BINUNICODE */
            if (cas__pk_bytes(p, b, 1) < 0) return -1;
            if (cas__pk_sized(p, op == 0x8c ? CAS__PV_STR : CAS__PV_BYTES, b[0]) < 0) return -1;
            break;
        case 0x8d: /* BINUNICODE8 */
        case 0x8e: /* BINBYTES8 */
        case 0x96: /* BYTEARRAY8 */
            if (cas__pk_bytes(p, b, 8) < 0) return -1;
            if (cas__pk_sized(p,
                              op == 0x8d   ? CAS__PV_STR
                              : op == 0x8e ? CAS__PV_BYTES
                                           : CAS__PV_BYTEARRAY,
                              cas__le(b, 8)) < 0)
                return -1;
            break;
        case 0x97: /* NEXT_BUFFER: out of band, not in this stream */
            if (cas__pk_push(p, cas__pv_textval(p, CAS__PV_OPAQUE, "out-of-band buffer", 18)) < 0) return -1;
            break;
        case 0x98: /* READONLY_BUFFER */
            if (!cas__pk_top(p, op)) return -1;
            break;
        case 0x82:   /* EXT1 */
        case 0x83:   /* EXT2 */
        case 0x84: { /* EXT4 */
            char t[48];
            int n = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
            if (cas__pk_bytes(p, b, (size_t)n) < 0) return -1;
            snprintf(t, sizeof t, "extension code %llu", (unsigned long long)cas__le(b, n));
            if (cas__pk_push(p, cas__pv_textval(p, CAS__PV_OPAQUE, t, strlen(t))) < 0) return -1;
            break;
        }
        case ')': /* EMPTY_TUPLE */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_TUPLE)) < 0) return -1;
            break;
        case ']': /* EMPTY_LIST */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_LIST)) < 0) return -1;
            break;
        case '}': /* EMPTY_DICT */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_DICT)) < 0) return -1;
            break;
        case 0x8f: /* EMPTY_SET */
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_SET)) < 0) return -1;
            break;
        case 0x85:   /* TUPLE1 */
        case 0x86:   /* TUPLE2 */
        case 0x87: { /* TUPLE3 */
            size_t n = (size_t)(op - 0x84), floor = p->nmarks ? p->marks[p->nmarks - 1] : 0;
            if (p->sp < floor + n)
                return cas__pk_fail(p, CAS_E_CORRUPT, "stack underflow at byte %llu (TUPLE%u)",
                                    (unsigned long long)p->off - 1, (unsigned)n);
            if (cas__pk_push(p, cas__pk_collect(p, CAS__PV_TUPLE, p->sp - n)) < 0) return -1;
            break;
        }
        case 't':  /* TUPLE */
        case 'l':  /* LIST */
        case 0x91: /* FROZENSET */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            if (cas__pk_push(p, cas__pk_collect(p,
                                                op == 't'   ? CAS__PV_TUPLE
                                                : op == 'l' ? CAS__PV_LIST
                                                            : CAS__PV_FROZENSET,
                                                from)) < 0)
                return -1;
            break;
        case 'd': { /* DICT */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            if ((p->sp - from) % 2) {
                cas__pk_drop_to(p, from);
                return cas__pk_fail(p, CAS_E_CORRUPT, "DICT with an odd number of items at byte %llu",
                                    (unsigned long long)p->off - 1);
            }
            if (cas__pk_push(p, cas__pv_new(p, CAS__PV_DICT)) < 0) return -1;
            /* the dict sits below its items now: extend it like SETITEMS */
            v = p->stack[--p->sp];
            memmove(p->stack + from + 1, p->stack + from, (p->sp - from) * sizeof *p->stack);
            p->stack[from] = v, p->sp++;
            if (cas__pk_extend(p, op, from + 1, 1) < 0) return -1;
            break;
        }
        case 'a': /* APPEND */
        case 's': /* SETITEM */
            if (p->sp < (op == 'a' ? 2u : 3u) + (p->nmarks ? p->marks[p->nmarks - 1] : 0))
                return cas__pk_fail(p, CAS_E_CORRUPT, "stack underflow at byte %llu (opcode 0x%02x)",
                                    (unsigned long long)p->off - 1, op);
            if (cas__pk_extend(p, op, p->sp - (op == 'a' ? 1 : 2), op == 's') < 0) return -1;
            break;
        case 'e':  /* APPENDS */
        case 'u':  /* SETITEMS */
        case 0x90: /* ADDITEMS */
            if (cas__pk_popmark(p, op, &from) < 0 || cas__pk_extend(p, op, from, op == 'u') < 0) return -1;
            break;
        case 'c':   /* GLOBAL module\nname\n */
        case 'i': { /* INST module\nname\n, args since the mark */
            char *mod, *name;
            size_t ml, nl;
            if (!(mod = cas__pk_line(p, &ml))) return -1;
            if (!(name = cas__pk_line(p, &nl))) {
                cas__free(&p->alloc, mod);
                return -1;
            }
            v = cas__pk_global(p, mod, ml, name, nl);
            cas__free(&p->alloc, mod), cas__free(&p->alloc, name);
            if (!v) return -1;
            if (op == 'i') {
                if (cas__pk_popmark(p, op, &from) < 0) return cas__pv_unref(p, v), -1;
                a = cas__pk_collect(p, CAS__PV_TUPLE, from);
                if (cas__pk_push(p, cas__pk_reduce(p, v, a)) < 0) return -1;
            } else if (cas__pk_push(p, v) < 0) {
                return -1;
            }
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, a), -1;
            v = f->kind == CAS__PV_STR && a->kind == CAS__PV_STR && !(f->flags & CAS__PVF_CUT) &&
                        !(a->flags & CAS__PVF_CUT)
                    ? cas__pk_global(p, f->text, f->tlen, a->text, a->tlen)
                    : NULL;
            if (!v && p->rc == CAS_OK)
                cas__pk_fail(p, CAS_E_CORRUPT, "STACK_GLOBAL at byte %llu without two strings",
                             (unsigned long long)p->off - 1);
            cas__pv_unref(p, a), cas__pv_unref(p, f);
            if (cas__pk_push(p, v) < 0) return -1;
            break;
        case 'o': /* OBJ: class and args since the mark */
            if (cas__pk_popmark(p, op, &from) < 0) return -1;
            if (from >= p->sp)
                return cas__pk_fail(p, CAS_E_CORRUPT, "OBJ without a class at byte %llu",
                                    (unsigned long long)p->off - 1);
            f = p->stack[from];
            memmove(p->stack + from, p->stack + from + 1, (p->sp - from - 1) * sizeof *p->stack);
            p->sp--;
            a = cas__pk_collect(p, CAS__PV_TUPLE, from);
            if (cas__pk_push(p, cas__pk_reduce(p, f, a)) < 0) return -1;
            break;
        case 'R': /* REDUCE */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, a), -1;
            if (cas__pk_push(p, cas__pk_reduce(p, f, a)) < 0) return -1;
            break;
        case 0x81: /* NEWOBJ */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, a), -1;
            if (cas__pk_push(p, cas__pk_newobj(p, f, a, NULL)) < 0) return -1;
            break;
        case 0x92: { /* NEWOBJ_EX */
            cas__pv *kw;
            if (!(kw = cas__pk_pop(p, op))) return -1;
            if (!(a = cas__pk_pop(p, op))) return cas__pv_unref(p, kw), -1;
            if (!(f = cas__pk_pop(p, op))) return cas__pv_unref(p, kw), cas__pv_unref(p, a), -1;
            if (cas__pk_push(p, cas__pk_newobj(p, f, a, kw)) < 0) return -1;
            break;
        }
        case 'b': /* BUILD */
            if (!(a = cas__pk_pop(p, op))) return -1;
            if (!(v = cas__pk_top(p, op))) return cas__pv_unref(p, a), -1;
            if (cas__pk_build(p, v, a) < 0) return -1;
            break;
        case 'p':   /* PUT (text) */
        case 'g': { /* GET (text) */
            char *end;
            unsigned long long k;
            if (!(line = cas__pk_line(p, &len))) return -1;
            k = strtoull(line, &end, 10);
            if (!len || *end) {
                cas__free(&p->alloc, line);
                return cas__pk_fail(p, CAS_E_CORRUPT, "a bad memo index at byte %llu", (unsigned long long)p->off);
            }
            cas__free(&p->alloc, line);
            if (op == 'g') {
                if (cas__pk_get(p, k) < 0) return -1;
            } else if (!(v = cas__pk_top(p, op)) || k > 0xffffffffu || cas__memo_put(p, (uint32_t)k, v) < 0) {
                return p->rc < 0 ? -1
                                 : cas__pk_fail(p, CAS_E_CORRUPT, "a bad memo index at byte %llu",
                                                (unsigned long long)p->off);
            }
            break;
        }
        case 'q': /* BINPUT */
        case 'r': /* LONG_BINPUT */
            if (cas__pk_bytes(p, b, op == 'q' ? 1 : 4) < 0 || !(v = cas__pk_top(p, op)) ||
                cas__memo_put(p, (uint32_t)cas__le(b, op == 'q' ? 1 : 4), v) < 0)
                return -1;
            break;
        case 0x94: /* MEMOIZE */
            if (!(v = cas__pk_top(p, op)) || cas__memo_put(p, (uint32_t)p->memo_n, v) < 0) return -1;
            break;
        case 'h': /* BINGET */
        case 'j': /* LONG_BINGET */
            if (cas__pk_bytes(p, b, op == 'h' ? 1 : 4) < 0 || cas__pk_get(p, cas__le(b, op == 'h' ? 1 : 4)) < 0)
                return -1;
            break;
        default:
            return cas__pk_fail(p, CAS_E_CORRUPT, "unknown opcode 0x%02x at byte %llu", op,
                                (unsigned long long)p->off - 1);
        }
    }
}

/* ---- protocol 0's text arguments -------------------------------------------------- */

static cas__pv *cas__pk_textnum(cas_preview *p, unsigned op, const char *s, size_t n) {
    cas__pv *v;
    char *end;
    size_t k;
    if (op == 'F') {
        double d = n ? strtod(s, &end) : 0;
        if (!n || *end)
            return cas__pk_fail(p, CAS_E_CORRUPT, "a bad FLOAT at byte %llu", (unsigned long long)p->off),
                   (cas__pv *)NULL;
        if ((v = cas__pv_new(p, CAS__PV_FLOAT)) != NULL) v->f = d;
        return v;
    }
    if (op == 'I' && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) { /* protocol 0's bools */
        if ((v = cas__pv_new(p, CAS__PV_BOOL)) != NULL) v->i = s[1] == '1';
        return v;
    }
    if (op == 'L' && n && s[n - 1] == 'L') n--;
    for (k = s[0] == '-' || s[0] == '+' ? 1 : 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9') break;
    if (!n || k != n || (n == 1 && (s[0] == '-' || s[0] == '+')))
        return cas__pk_fail(p, CAS_E_CORRUPT, "a bad INT/LONG at byte %llu", (unsigned long long)p->off),
               (cas__pv *)NULL;
    if (n <= 18) return cas__pv_int(p, strtoll(s, NULL, 10));
    return cas__pv_textval(p, CAS__PV_BIGINT, s[0] == '+' ? s + 1 : s, s[0] == '+' ? n - 1 : n);
}

/* STRING ('...' with Python escapes, as protocol 0 bytes) and UNICODE (raw-unicode-escape). */
static cas__pv *cas__pk_textstr(cas_preview *p, unsigned op, const char *s, size_t n) {
    char *d = (char *)cas__alloc(&p->alloc, n * 4 + 1);
    size_t i = 0, o = 0;
    cas__pv *v;
    if (!d) return cas__pk_fail(p, CAS_E_NOMEM, "out of memory"), (cas__pv *)NULL;
    if (op == 'S') {
        if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0]) {
            cas__free(&p->alloc, d);
            return cas__pk_fail(p, CAS_E_CORRUPT, "a STRING that is not quoted at byte %llu",
                                (unsigned long long)p->off),
                   (cas__pv *)NULL;
        }
        for (i = 1; i + 1 < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\' && i + 2 < n) {
                char e = s[++i];
                int h, l;
                if (e == 'n') c = '\n';
                else if (e == 't') c = '\t';
                else if (e == 'r') c = '\r';
                else if (e == 'x' && i + 2 < n && (h = cas__hexval(s[i + 1])) >= 0 && (l = cas__hexval(s[i + 2])) >= 0)
                    c = (unsigned char)(h * 16 + l), i += 2;
                else c = (unsigned char)e;
            }
            o += (size_t)cas__utf8_put(d + o, c); /* bytes shown as latin-1 text, as Python 2 strings read */
        }
    } else {
        for (i = 0; i < n; i++) {
            uint32_t c = (unsigned char)s[i];
            int w = 0, k, ok = 1;
            if (c == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U')) w = s[i + 1] == 'u' ? 4 : 8;
            if (w && i + 1 + (size_t)w < n) {
                uint32_t u = 0;
                for (k = 0; k < w && ok; k++) {
                    int h = cas__hexval(s[i + 2 + k]);
                    if (h < 0) ok = 0;
                    u = u << 4 | (uint32_t)(h < 0 ? 0 : h);
                }
                if (ok && u <= 0x10ffff) c = u, i += 1 + (size_t)w;
            }
            o += (size_t)cas__utf8_put(d + o, c);
        }
    }
    v = cas__pv_textval(p, CAS__PV_STR, d, o);
    cas__free(&p->alloc, d);
    return v;
}

/* Python 2's module names, as the unpickler's fix_imports maps them. */
static cas__pv *cas__pk_global(cas_preview *p, const char *mod, size_t ml, const char *name, size_t nl) {
    char buf[600];
    if (!ml || !nl || ml > 255 || nl > 255)
        return cas__pk_fail(p, CAS_E_CORRUPT, "a global with an empty or overlong name at byte %llu",
                            (unsigned long long)p->off),
               (cas__pv *)NULL;
    if (ml == 11 && !memcmp(mod, "__builtin__", 11)) mod = "builtins", ml = 8;
    else if (ml == 8 && !memcmp(mod, "copy_reg", 8)) mod = "copyreg", ml = 7;
    memcpy(buf, mod, ml), buf[ml] = '\n';
    memcpy(buf + ml + 1, name, nl);
    return cas__pv_textval(p, CAS__PV_GLOBAL, buf, ml + 1 + nl);
}

/* ---- recognisers: known (module, name) pairs made into what they build ----------- */

enum { CAS__PD_FRAME = 1, CAS__PD_SERIES, CAS__PD_MGR, CAS__PD_BLOCK, CAS__PD_INDEX, CAS__PD_BACKED };
enum { CAS__DT_DATETIME = 1, CAS__DT_DATE, CAS__DT_TIME, CAS__DT_TIMEDELTA, CAS__DT_TIMEZONE };

/* kids[i] = v (a reference taken), growing kids as needed; the old one is released. */
static int cas__pv_setkid(cas_preview *p, cas__pv *parent, uint32_t i, cas__pv *v) {
    while (parent->nkids <= i) {
        cas__pv *none = cas__pv_new(p, CAS__PV_NONE);
        if (!none || cas__pv_add(p, parent, none, i + 1) < 0) return cas__pv_unref(p, v), -1;
        parent->full--;
    }
    cas__pv_unref(p, parent->kids[i]);
    parent->kids[i] = v;
    return 0;
}

/* A value of kind `kind` whose kids are the given values (references taken). */
static cas__pv *cas__pv_with(cas_preview *p, int kind, int sub, cas__pv *a, cas__pv *b, cas__pv *c) {
    cas__pv *v = cas__pv_new(p, kind), *k[3];
    int i;
    k[0] = a, k[1] = b, k[2] = c;
    if (!v) {
        for (i = 0; i < 3; i++) cas__pv_unref(p, k[i]);
        return NULL;
    }
    v->sub = (uint8_t)sub;
    for (i = 0; i < 3 && k[i]; i++) cas__pv_add(p, v, k[i], 3);
    v->full = 0;
    return v;
}

static int cas__pv_is_text(const cas__pv *v, const char *s) {
    return v && v->kind == CAS__PV_STR && v->tlen == strlen(s) && !memcmp(v->text, s, v->tlen);
}

/* datetime's pickled states: packed bytes (year hi/lo, month, day, hour, minute,
 * second, microsecond 3 bytes; time: hour first), made into the repr Python gives. */
static cas__pv *cas__pk_datetime(cas_preview *p, int sub, cas__pv *args) {
    cas__pv *st = cas__pv_kid(args, 0), *v;
    const unsigned char *b;
    char t[160];
    if (sub == CAS__DT_TIMEDELTA) {
        int64_t d = 0, s = 0, us = 0;
        size_t n = 0;
        if (args->nkids > 0 && args->kids[0]->kind == CAS__PV_INT) d = args->kids[0]->i;
        if (args->nkids > 1 && args->kids[1]->kind == CAS__PV_INT) s = args->kids[1]->i;
        if (args->nkids > 2 && args->kids[2]->kind == CAS__PV_INT) us = args->kids[2]->i;
        n = (size_t)snprintf(t, sizeof t, "datetime.timedelta(");
        if (d) n += (size_t)snprintf(t + n, sizeof t - n, "days=%lld", (long long)d);
        if (s) n += (size_t)snprintf(t + n, sizeof t - n, "%sseconds=%lld", d ? ", " : "", (long long)s);
        if (us) n += (size_t)snprintf(t + n, sizeof t - n, "%smicroseconds=%lld", d || s ? ", " : "", (long long)us);
        if (!d && !s && !us) n += (size_t)snprintf(t + n, sizeof t - n, "0");
        snprintf(t + n, sizeof t - n, ")");
    } else {
        size_t need = sub == CAS__DT_DATE ? 4 : sub == CAS__DT_TIME ? 6 : 10;
        if (!st || (st->kind != CAS__PV_BYTES && st->kind != CAS__PV_STR) || st->tlen < need) return NULL;
        b = (const unsigned char *)st->text;
        if (st->kind == CAS__PV_STR) return NULL; /* protocol 2 latin-1 text: left generic */
        if (sub == CAS__DT_DATE) snprintf(t, sizeof t, "datetime.date(%d, %d, %d)", b[0] * 256 + b[1], b[2], b[3]);
        else if (sub == CAS__DT_TIME) {
            int us = b[3] << 16 | b[4] << 8 | b[5];
            size_t n = (size_t)snprintf(t, sizeof t, "datetime.time(%d, %d", b[0], b[1]);
            if (b[2] || us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", b[2]);
            if (us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", us);
            snprintf(t + n, sizeof t - n, ")");
        } else {
            int us = b[7] << 16 | b[8] << 8 | b[9];
            size_t n = (size_t)snprintf(t, sizeof t, "datetime.datetime(%d, %d, %d, %d, %d", b[0] * 256 + b[1], b[2],
                                        b[3], b[4], b[5]);
            if (b[6] || us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", b[6]);
            if (us) n += (size_t)snprintf(t + n, sizeof t - n, ", %d", us);
            snprintf(t + n, sizeof t - n, ")");
        }
    }
    if (!(v = cas__pv_textval(p, CAS__PV_DATETIME, t, strlen(t)))) return NULL;
    v->sub = (uint8_t)sub;
    if (sub != CAS__DT_TIMEDELTA && sub != CAS__DT_DATE && args->nkids > 1 && args->kids[1]->kind != CAS__PV_NONE)
        v->aux = cas__pv_ref(args->kids[1]); /* tzinfo */
    return v;
}

/* REDUCE (and INST, OBJ): func(*args), described, never called. Takes both references. */
static cas__pv *cas__pk_reduce(cas_preview *p, cas__pv *func, cas__pv *args) {
    cas__pv *v = NULL, *a0, *a1;
    if (!func || !args) {
        cas__pv_unref(p, func), cas__pv_unref(p, args);
        return NULL;
    }
    a0 = cas__pv_kid(args, 0), a1 = cas__pv_kid(args, 1);
    if (args->kind != CAS__PV_TUPLE) {
        /* not a tuple of arguments: described as is */
    } else if ((cas__pv_is_global(func, "builtins", "set") || cas__pv_is_global(func, "builtins", "frozenset")) &&
               args->full <= 1 && (!a0 || a0->kind == CAS__PV_LIST || a0->kind == CAS__PV_TUPLE)) {
        uint32_t k;
        v = cas__pv_new(p, cas__pv_is_global(func, "builtins", "set") ? CAS__PV_SET : CAS__PV_FROZENSET);
        if (v && a0) {
            for (k = 0; k < a0->nkids; k++) cas__pv_add(p, v, cas__pv_ref(a0->kids[k]), cas__pk_keep(p));
            v->full = a0->full;
        }
    } else if (cas__pv_is_global(func, "builtins", "bytes") && args->full == 0) { /* protocols 0-2: b'' */
        v = cas__pv_new(p, CAS__PV_BYTES);
    } else if (cas__pv_is_global(func, "_codecs", "encode") && a0 && a0->kind == CAS__PV_STR &&
               (cas__pv_is_text(a1, "latin1") || cas__pv_is_text(a1, "latin-1"))) {
        /* protocol 2's bytes: the str's code points are the bytes */
        size_t i = 0, o = 0;
        v = cas__pv_new(p, CAS__PV_BYTES);
        if (v && (v->text = (char *)cas__alloc(&p->alloc, a0->tlen + 1)) != NULL) {
            const unsigned char *s = (const unsigned char *)a0->text;
            while (i < a0->tlen) {
                uint32_t cp;
                int len = cas__utf8_seq(s + i, a0->tlen - i, &cp);
                if (!len || cp > 0xff) break; /* beyond latin-1, or a sequence cut at the end of what was kept */
                v->text[o++] = (char)cp, i += (size_t)len;
            }
            v->tlen = o, v->text[o] = 0;
            v->full = a0->flags & CAS__PVF_CUT ? o + 1 : o; /* its true length is unknown when cut */
            if (a0->flags & CAS__PVF_CUT) v->flags |= CAS__PVF_CUT | CAS__PVF_LATIN1;
        } else if (v) {
            cas__pv_unref(p, v);
            v = NULL;
            cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        }
    } else if (cas__pv_is_global(func, "builtins", "bytearray") &&
               (!a0 || a0->kind == CAS__PV_BYTES || (a0->kind == CAS__PV_STR && a1))) {
        v = cas__pv_new(p, CAS__PV_BYTEARRAY);
        if (v && a0 && cas__pv_set_text(p, v, a0->text, a0->tlen, a0->full) < 0) v = NULL;
    } else if (cas__pv_is_global(func, "builtins", "complex") && a0 &&
               (a0->kind == CAS__PV_FLOAT || a0->kind == CAS__PV_INT)) {
        if ((v = cas__pv_new(p, CAS__PV_COMPLEX)) != NULL) {
            v->f = a0->kind == CAS__PV_FLOAT ? a0->f : (double)a0->i;
            v->f2 = !a1 ? 0 : a1->kind == CAS__PV_FLOAT ? a1->f : a1->kind == CAS__PV_INT ? (double)a1->i : 0;
        }
    } else if (cas__pv_is_global(func, "builtins", "slice") && args->full == 3) {
        v = cas__pv_with(p, CAS__PV_SLICE, 0, cas__pv_ref(a0), cas__pv_ref(a1), cas__pv_ref(cas__pv_kid(args, 2)));
    } else if (cas__pv_is_global(func, "collections", "OrderedDict") ||
               cas__pv_is_global(func, "collections", "defaultdict")) {
        int dd = cas__pv_is_global(func, "collections", "defaultdict");
        if ((v = cas__pv_new(p, CAS__PV_DICT)) != NULL) {
            v->sub = dd ? CAS__DICT_DEFAULT : CAS__DICT_ORDERED;
            if (dd) v->aux = cas__pv_ref(a0); /* the factory */
            else if (a0 && (a0->kind == CAS__PV_LIST || a0->kind == CAS__PV_TUPLE)) { /* [(k, v), ...] */ uint32_t k;
                for (k = 0; k < a0->nkids; k++)
                    if (a0->kids[k]->kind == CAS__PV_TUPLE && a0->kids[k]->nkids == 2) {
                        cas__pv_add(p, v, cas__pv_ref(a0->kids[k]->kids[0]), cas__pk_keep(p) * 2);
                        cas__pv_add(p, v, cas__pv_ref(a0->kids[k]->kids[1]), cas__pk_keep(p) * 2);
                    }
                v->full = a0->full;
            }
        }
    } else if (cas__pv_is_global(func, "datetime", "datetime")) {
        v = cas__pk_datetime(p, CAS__DT_DATETIME, args);
    } else if (cas__pv_is_global(func, "datetime", "date")) {
        v = cas__pk_datetime(p, CAS__DT_DATE, args);
    } else if (cas__pv_is_global(func, "datetime", "time")) {
        v = cas__pk_datetime(p, CAS__DT_TIME, args);
    } else if (cas__pv_is_global(func, "datetime", "timedelta")) {
        v = cas__pk_datetime(p, CAS__DT_TIMEDELTA, args);
    } else if (cas__pv_is_global(func, "decimal", "Decimal") && a0 && a0->kind == CAS__PV_STR) {
        if ((v = cas__pv_textval(p, CAS__PV_DECIMAL, a0->text, a0->tlen)) != NULL) v->flags |= a0->flags & CAS__PVF_CUT;
    } else if (cas__pv_is_np(func, "multiarray", "_reconstruct")) {
        v = cas__pv_new(p, CAS__PV_NDARRAY); /* empty until its BUILD */
    } else if (cas__pv_is_global(func, "numpy", "dtype") && a0 && a0->kind == CAS__PV_STR) {
        v = cas__pv_textval(p, CAS__PV_DTYPE, a0->text, a0->tlen);
    } else if (cas__pv_is_np(func, "multiarray", "scalar") && a0 && a0->kind == CAS__PV_DTYPE) {
        v = cas__pv_with(p, CAS__PV_NPSCALAR, 0, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_np(func, "numeric", "_frombuffer") &&
               args->full == 4) { /* protocol 5: (buffer, dtype, shape, order) */
        cas__pv *order = cas__pv_kid(args, 3);
        if ((v = cas__pv_with(p, CAS__PV_NDARRAY, 0, cas__pv_ref(a1), cas__pv_ref(cas__pv_kid(args, 2)),
                              cas__pv_ref(a0))))
            v->i = cas__pv_is_text(order, "F");
    } else if (cas__pv_is_global(func, "pandas._libs.internals", "_unpickle_block") ||
               cas__pv_is_global(func, "pandas.core.internals.blocks", "_unpickle_block")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_BLOCK, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_global(func, "pandas.core.internals.managers", "BlockManager") ||
               cas__pv_is_global(func, "pandas.core.internals.managers", "SingleBlockManager")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_MGR, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_global(func, "pandas.core.indexes.base", "_new_Index")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_INDEX, cas__pv_ref(a0), cas__pv_ref(a1), NULL);
    } else if (cas__pv_is_global(func, "pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked")) {
        v = cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_BACKED, cas__pv_ref(a0), cas__pv_ref(cas__pv_kid(args, 2)), NULL);
    } else if (cas__pv_is_global(func, "copyreg", "_reconstructor") && a0) {
        /* object.__reduce_ex__(<2): cls, base, state: the instance of cls, its state by BUILD */
        v = cas__pv_with(p, CAS__PV_OBJ, 0, cas__pv_ref(a0), cas__pv_new(p, CAS__PV_TUPLE), NULL);
    }
    if (!v && p->rc != CAS_OK && p->rc != CAS_E_LIMIT) {
        cas__pv_unref(p, func), cas__pv_unref(p, args);
        return NULL;
    }
    if (!v) /* anything else: the call itself, shown as func(args) */
        return cas__pv_with(p, CAS__PV_CALL, 0, func, args, NULL);
    cas__pv_unref(p, func), cas__pv_unref(p, args);
    return v;
}

/* NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args). Takes the references. */
static cas__pv *cas__pk_newobj(cas_preview *p, cas__pv *cls, cas__pv *args, cas__pv *kwargs) {
    cas__pv_unref(p, kwargs);
    if (!cls || !args) {
        cas__pv_unref(p, cls), cas__pv_unref(p, args);
        return NULL;
    }
    if (cas__pv_is_global(cls, "pandas.core.frame", "DataFrame"))
        return cas__pv_unref(p, args), cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_FRAME, cls, NULL, NULL);
    if (cas__pv_is_global(cls, "pandas.core.series", "Series"))
        return cas__pv_unref(p, args), cas__pv_with(p, CAS__PV_PANDAS, CAS__PD_SERIES, cls, NULL, NULL);
    return cas__pv_with(p, CAS__PV_OBJ, 0, cls, args, NULL);
}

/* BUILD: obj.__setstate__(state), or its __dict__ updated. Takes state's reference. */
static int cas__pk_build(cas_preview *p, cas__pv *obj, cas__pv *state) {
    if (obj->kind == CAS__PV_NDARRAY && !obj->nkids && state->kind == CAS__PV_TUPLE && state->nkids == 5) {
        /* (version, shape, dtype, is_fortran, raw data or object list) */
        obj->i = state->kids[3]->kind == CAS__PV_BOOL && state->kids[3]->i;
        cas__pv_add(p, obj, cas__pv_ref(state->kids[2]), 3);
        cas__pv_add(p, obj, cas__pv_ref(state->kids[1]), 3);
        cas__pv_add(p, obj, cas__pv_ref(state->kids[4]), 3);
        obj->full = 0;
        cas__pv_unref(p, state);
        return 0;
    }
    if (obj->kind == CAS__PV_DTYPE && state->kind == CAS__PV_TUPLE && state->nkids >= 8) {
        /* (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata]) */
        cas__pv *bo = state->kids[1], *meta = cas__pv_kid(state, 8);
        if (bo->kind == CAS__PV_STR && bo->tlen == 1) obj->sub = (uint8_t)bo->text[0];
        if (state->kids[5]->kind == CAS__PV_INT) obj->i = state->kids[5]->i;
        cas__pv_setkid(p, obj, 0, cas__pv_ref(state->kids[3])); /* names */
        cas__pv_setkid(p, obj, 1, cas__pv_ref(state->kids[4])); /* fields */
        /* datetime64's unit: (b'ns', num, den, events), alone or beside a metadata dict */
        if (meta && meta->kind == CAS__PV_TUPLE && meta->nkids == 2 && meta->kids[1]->kind == CAS__PV_TUPLE)
            meta = meta->kids[1];
        if (meta && meta->kind == CAS__PV_TUPLE && meta->nkids >= 2 && meta->kids[0]->kind == CAS__PV_BYTES)
            cas__pv_setkid(p, obj, 2, cas__pv_ref(meta));
        obj->full = 0;
        cas__pv_unref(p, state);
        return 0;
    }
    if (obj->kind == CAS__PV_PANDAS && (obj->sub == CAS__PD_FRAME || obj->sub == CAS__PD_SERIES)) {
        obj->full = 0;
        return cas__pv_setkid(p, obj, 1, state);
    }
    if (obj->kind == CAS__PV_OBJ || obj->kind == CAS__PV_CALL) /* generic: kids are class/func, args, state */
        return cas__pv_setkid(p, obj, 2, state);
    /* anything else (a dict subclass's extra state, ...): kept as its aux, shown with it */
    cas__pv_unref(p, obj->aux);
    obj->aux = state;
    return 0;
}
