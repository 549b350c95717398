/* ---- rendering: a JSON tree for user interfaces --------------------------------------- */

/* A JSON string of UTF-8 text: escapes as JSON wants; bytes that are not UTF-8 become U+FFFD. */
static void cas__json_out_str(cas_preview *p, const char *s, size_t n) {
    size_t i = 0;
    char t[8];
    cas__out_s(p, "\"");
    while (i < n && !p->out_full) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int len;
        if (c == '"' || c == '\\') t[0] = '\\', t[1] = (char)c, cas__out_put(p, t, 2), i++;
        else if (c < 0x20) snprintf(t, sizeof t, "\\u%04x", c), cas__out_s(p, t), i++;
        else if ((len = cas__utf8_seq((const unsigned char *)s + i, n - i, &cp)) != 0)
            cas__out_put(p, s + i, (size_t)len), i += (size_t)len;
        else cas__out_s(p, "\\ufffd"), i++;
    }
    cas__out_s(p, "\"");
}

static void cas__repr_into(cas_preview *p, void *ctx, uint64_t depth) { cas__render(p, (cas__pv *)ctx, (int)depth); }

/* "repr": this value's text (its own sub-budget), for any node a UI shows as text. */
static void cas__json_repr(cas_preview *p, cas__pv *v, int depth) {
    char *buf;
    size_t cap = (size_t)CAS__MIN((uint64_t)p->max_output, (uint64_t)4096) + 1;
    if (!(buf = (char *)cas__alloc(&p->alloc, cap))) {
        cas__pk_fail(p, CAS_E_NOMEM, "out of memory");
        return;
    }
    v->flags &= (uint8_t)~CAS__PVF_SHOWN;
    cas__capture(p, buf, cap, cas__repr_into, v, (uint64_t)depth);
    cas__out_s(p, ", \"repr\": ");
    cas__json_out_str(p, buf, strlen(buf));
    cas__free(&p->alloc, buf);
}

static const char *cas__pv_typename(const cas__pv *v) {
    static const char *const names[] = {
        "?",         "None",   "bool",  "int",      "int",     "float",     "complex", "str",          "bytes",
        "bytearray", "tuple",  "list",  "dict",     "set",     "frozenset", "global",  "call",         "object",
        "mark",      "opaque", "slice", "datetime", "Decimal", "ndarray",   "dtype",   "numpy scalar", "pandas"};
    if (v->kind == CAS__PV_PANDAS)
        return v->sub == CAS__PD_FRAME ? "DataFrame" : v->sub == CAS__PD_SERIES ? "Series" : "pandas";
    return v->kind < sizeof names / sizeof names[0] ? names[v->kind] : "?";
}

static void cas__render_json(cas_preview *p, cas__pv *v, int depth) {
    uint32_t k, shown = 0;
    char t[96];
    if (p->out_full || !v) return;
    if (!cas__pv_scalar(v) && (v->flags & CAS__PVF_SHOWN)) {
        cas__out_f(p, "{\"type\": \"ref\", \"ref\": %u}", v->label);
        return;
    }
    cas__out_f(p, "{\"type\": \"%s\"", cas__pv_typename(v));
    if (!cas__pv_scalar(v)) {
        if (v->seen > 1) v->label = ++p->next_id, cas__out_f(p, ", \"id\": %u", v->label);
        v->flags |= CAS__PVF_SHOWN;
    }
    switch (v->kind) {
    case CAS__PV_NONE: break;
    case CAS__PV_BOOL: cas__out_s(p, v->i ? ", \"value\": true" : ", \"value\": false"); break;
    case CAS__PV_INT: cas__out_f(p, ", \"value\": %lld", (long long)v->i); break;
    case CAS__PV_FLOAT:
        cas__fmt_float(v->f, t, sizeof t, 0);
        if (v->f == v->f && v->f != HUGE_VAL && v->f != -HUGE_VAL) cas__out_f(p, ", \"value\": %s", t);
        else cas__out_f(p, ", \"value\": \"%s\"", t);
        break;
    case CAS__PV_STR:
        cas__out_s(p, ", \"value\": ");
        cas__json_out_str(p, v->text, v->tlen);
        cas__out_f(p, ", \"length\": %llu, \"truncated\": %s", (unsigned long long)v->full,
                   v->flags & CAS__PVF_CUT ? "true" : "false");
        break;
    case CAS__PV_TUPLE:
    case CAS__PV_LIST:
    case CAS__PV_SET:
    case CAS__PV_FROZENSET:
    case CAS__PV_DICT: {
        int pairs = v->kind == CAS__PV_DICT;
        if (depth >= p->max_depth) {
            cas__out_f(p, ", \"length\": %llu, \"truncated\": true}", (unsigned long long)v->full);
            return;
        }
        if (v->sub == CAS__DICT_ORDERED) cas__out_s(p, ", \"ordered\": true");
        cas__out_f(p, ", \"length\": %llu, \"items\": [", (unsigned long long)v->full);
        for (k = 0; k + (pairs ? 1 : 0) < v->nkids && shown < (uint64_t)p->max_items && !p->out_full;
             k += pairs ? 2 : 1, shown++) {
            if (shown) cas__out_s(p, ", ");
            if (pairs) cas__out_s(p, "[");
            cas__render_json(p, v->kids[k], depth + 1);
            if (pairs) cas__out_s(p, ", "), cas__render_json(p, v->kids[k + 1], depth + 1), cas__out_s(p, "]");
        }
        cas__out_f(p, "], \"truncated\": %s", v->full > shown ? "true" : "false");
        break;
    }
    case CAS__PV_OBJ:
    case CAS__PV_CALL: {
        cas__pv *cls = cas__pv_kid(v, 0);
        if (cls && cls->kind == CAS__PV_GLOBAL) { /* "module.name", as JSON escapes it */
            char name[512];
            size_t i, n = CAS__MIN(cls->tlen, sizeof name);
            for (i = 0; i < n; i++) name[i] = cls->text[i] == '\n' ? '.' : cls->text[i];
            cas__out_s(p, ", \"class\": ");
            cas__json_out_str(p, name, n);
        }
        v->flags &= (uint8_t)~CAS__PVF_SHOWN;
        cas__json_repr(p, v, depth);
        v->flags |= CAS__PVF_SHOWN;
        break;
    }
    case CAS__PV_NDARRAY: {
        cas__arr a;
        if (cas__arr_open(p, v, &a) == 0) {
            int d;
            cas__dtype_name(a.dt, t, sizeof t);
            cas__out_f(p, ", \"dtype\": \"%s\", \"shape\": [", t);
            for (d = 0; d < a.ndim; d++) cas__out_f(p, d ? ", %llu" : "%llu", (unsigned long long)a.shape[d]);
            cas__out_s(p, "]");
        }
        cas__json_repr(p, v, depth);
        v->flags |= CAS__PVF_SHOWN;
        break;
    }
    default:
        cas__json_repr(p, v, depth);
        if (!cas__pv_scalar(v)) v->flags |= CAS__PVF_SHOWN;
    }
    cas__out_s(p, "}");
}
