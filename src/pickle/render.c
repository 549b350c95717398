/* ---- rendering: everything ------------------------------------------------------------- */

static void cas__out_global(cas_preview *p, const cas__pv *g) { /* module.name, escaped: they come from the pickle */
    const char *nl = (const char *)memchr(g->text, '\n', g->tlen);
    size_t ml = nl ? (size_t)(nl - g->text) : g->tlen;
    cas__out_quoted(p, g->text, ml, CAS__Q_BARE);
    if (nl) {
        cas__out_s(p, ".");
        cas__out_quoted(p, nl + 1, g->tlen - ml - 1, CAS__Q_BARE);
    }
}

static const char *cas__global_name(const cas__pv *g) { /* the part after the module */
    const char *nl = g && g->kind == CAS__PV_GLOBAL ? strchr(g->text, '\n') : NULL;
    return nl ? nl + 1 : "?";
}

/* The items of a container: items shown, ", ..." and how many more. */
static void cas__render_items(cas_preview *p, cas__pv *v, int depth, int pairs) {
    uint32_t k, shown = 0, per = pairs ? 2 : 1;
    uint64_t total = v->full;
    for (k = 0; k + per <= v->nkids && shown < (uint64_t)p->max_items && !p->out_full; k += per, shown++) {
        if (shown) cas__out_s(p, ", ");
        cas__render(p, v->kids[k], depth + 1);
        if (pairs) {
            cas__out_s(p, ": ");
            cas__render(p, v->kids[k + 1], depth + 1);
        }
    }
    if (total > shown) cas__out_f(p, "%s...<%llu more>", shown ? ", " : "", (unsigned long long)(total - shown));
}

/* A generic object from its class (or callable), arguments and pickled state:
 * module.Class(arg, ..., field=value, ...). */
static void cas__render_object(cas_preview *p, cas__pv *v, int depth) {
    cas__pv *cls = cas__pv_kid(v, 0), *args = cas__pv_kid(v, 1), *st = cas__pv_kid(v, 2);
    int any = 0;
    uint32_t k;
    if (cls && cls->kind == CAS__PV_GLOBAL) cas__out_global(p, cls);
    else if (cls) cas__render(p, cls, depth + 1);
    cas__out_s(p, "(");
    if (args && args->kind == CAS__PV_TUPLE && args->full) {
        cas__render_items(p, args, depth, 0);
        any = 1;
    } else if (args && args->kind != CAS__PV_TUPLE && args->kind != CAS__PV_NONE) {
        cas__render(p, args, depth + 1);
        any = 1;
    }
    if (st && st->kind == CAS__PV_TUPLE && st->nkids == 2 && st->kids[0]->kind == CAS__PV_DICT) st = st->kids[0];
    if (st && st->kind == CAS__PV_DICT) { /* __dict__: field=value */
        uint32_t shown = 0;
        for (k = 0; k + 1 < st->nkids && shown < (uint64_t)p->max_items && !p->out_full; k += 2, shown++) {
            if (any) cas__out_s(p, ", ");
            if (st->kids[k]->kind == CAS__PV_STR) cas__out_quoted(p, st->kids[k]->text, st->kids[k]->tlen, CAS__Q_BARE);
            else cas__render(p, st->kids[k], depth + 1);
            cas__out_s(p, "=");
            cas__render(p, st->kids[k + 1], depth + 1);
            any = 1;
        }
        if (st->full > shown) cas__out_f(p, ", ...<%llu more>", (unsigned long long)(st->full - shown));
    } else if (st && st->kind != CAS__PV_NONE) {
        if (any) cas__out_s(p, ", ");
        cas__out_s(p, "state=");
        cas__render(p, st, depth + 1);
    }
    cas__out_s(p, ")");
}

static void cas__render(cas_preview *p, cas__pv *v, int depth) {
    char t[96];
    if (p->out_full || !v) return;
    if (depth > p->max_depth) { /* a scalar's own parts past the depth limit (a datetime whose tzinfo is itself) */
        cas__out_s(p, "...");
        return;
    }
    if (!cas__pv_scalar(v)) {
        if (v->flags & CAS__PVF_SHOWN) { /* shown before (a shared value, or a cycle): its number */
            cas__out_f(p, "#%u#", v->label);
            return;
        }
        if (v->seen > 1) { /* shared: numbered where it is first shown */
            v->label = ++p->next_id;
            cas__out_f(p, "#%u=", v->label);
        }
        if (depth >= p->max_depth) {
            cas__out_f(p, "<%s, %llu item%s>",
                       v->kind == CAS__PV_LIST                                  ? "list"
                       : v->kind == CAS__PV_TUPLE                               ? "tuple"
                       : v->kind == CAS__PV_DICT                                ? "dict"
                       : v->kind == CAS__PV_SET || v->kind == CAS__PV_FROZENSET ? "set"
                                                                                : "object",
                       (unsigned long long)v->full, v->full == 1 ? "" : "s");
            return;
        }
        v->flags |= CAS__PVF_SHOWN;
    }
    switch (v->kind) {
    case CAS__PV_NONE: cas__out_s(p, "None"); break;
    case CAS__PV_BOOL: cas__out_s(p, v->i ? "True" : "False"); break;
    case CAS__PV_INT: cas__out_f(p, "%lld", (long long)v->i); break;
    case CAS__PV_BIGINT:
        if (v->tlen > 60 && v->text[0] != '<') /* a digit cap: the first digits and how many */
            cas__out_f(p, "%.40s...<%llu digits>", v->text, (unsigned long long)(v->tlen - (v->text[0] == '-')));
        else cas__out_put(p, v->text, v->tlen);
        break;
    case CAS__PV_FLOAT:
        cas__fmt_float(v->f, t, sizeof t, 0);
        cas__out_s(p, t);
        break;
    case CAS__PV_COMPLEX: { /* Python: 2j, (1+2j), (1-2j) */
        char im[48];
        cas__fmt_float(v->f2, im, sizeof im, 0);
        if (!strcmp(im + strlen(im) - 2, ".0")) im[strlen(im) - 2] = 0;
        if (v->f == 0 && !signbit(v->f)) cas__out_f(p, "%sj", im);
        else {
            cas__fmt_float(v->f, t, sizeof t, 0);
            if (!strcmp(t + strlen(t) - 2, ".0")) t[strlen(t) - 2] = 0;
            cas__out_f(p, "(%s%s%sj)", t, im[0] == '-' ? "" : "+", im);
        }
        break;
    }
    case CAS__PV_STR:
    case CAS__PV_BYTES:
    case CAS__PV_BYTEARRAY:
        if (v->kind == CAS__PV_BYTEARRAY) cas__out_s(p, "bytearray(");
        cas__out_quoted(p, v->text ? v->text : "", v->tlen,
                        (v->kind != CAS__PV_STR ? CAS__Q_BYTES : CAS__Q_STR) |
                            (v->flags & CAS__PVF_CUT ? CAS__Q_CUT : 0));
        if (v->flags & CAS__PVF_CUT) {
            if (v->flags & CAS__PVF_LATIN1) cas__out_s(p, "...<more>");
            else cas__out_f(p, "...<%llu bytes in all>", (unsigned long long)v->full);
        }
        if (v->kind == CAS__PV_BYTEARRAY) cas__out_s(p, ")");
        break;
    case CAS__PV_TUPLE:
        cas__out_s(p, "(");
        cas__render_items(p, v, depth, 0);
        cas__out_s(p, v->full == 1 ? ",)" : ")");
        break;
    case CAS__PV_LIST:
        cas__out_s(p, "[");
        cas__render_items(p, v, depth, 0);
        cas__out_s(p, "]");
        break;
    case CAS__PV_DICT:
        if (v->sub == CAS__DICT_ORDERED) { /* Python 3.11: OrderedDict([('a', 1)]) */
            uint32_t k, shown = 0;
            cas__out_s(p, "OrderedDict([");
            for (k = 0; k + 1 < v->nkids && shown < (uint64_t)p->max_items && !p->out_full; k += 2, shown++) {
                cas__out_s(p, shown ? ", (" : "(");
                cas__render(p, v->kids[k], depth + 1);
                cas__out_s(p, ", ");
                cas__render(p, v->kids[k + 1], depth + 1);
                cas__out_s(p, ")");
            }
            if (v->full > shown) cas__out_f(p, ", ...<%llu more>", (unsigned long long)(v->full - shown));
            cas__out_s(p, "])");
            break;
        }
        if (v->sub == CAS__DICT_DEFAULT) {
            cas__out_s(p, "defaultdict(");
            if (v->aux && v->aux->kind == CAS__PV_GLOBAL && !strncmp(v->aux->text, "builtins\n", 9)) {
                const char *nm = cas__global_name(v->aux);
                cas__out_s(p, "<class '");
                cas__out_quoted(p, nm, strlen(nm), CAS__Q_BARE);
                cas__out_s(p, "'>");
            } else cas__render(p, v->aux, depth + 1);
            cas__out_s(p, ", ");
        }
        cas__out_s(p, "{");
        cas__render_items(p, v, depth, 1);
        cas__out_s(p, v->sub == CAS__DICT_DEFAULT ? "})" : "}");
        break;
    case CAS__PV_SET:
    case CAS__PV_FROZENSET:
        if (!v->full) {
            cas__out_s(p, v->kind == CAS__PV_SET ? "set()" : "frozenset()");
            break;
        }
        cas__out_s(p, v->kind == CAS__PV_SET ? "{" : "frozenset({");
        cas__render_items(p, v, depth, 0);
        cas__out_s(p, v->kind == CAS__PV_SET ? "}" : "})");
        break;
    case CAS__PV_GLOBAL:
        cas__out_s(p, "<");
        cas__out_global(p, v);
        cas__out_s(p, ">");
        break;
    case CAS__PV_CALL:
    case CAS__PV_OBJ: cas__render_object(p, v, depth); break;
    case CAS__PV_OPAQUE:
        cas__out_s(p, "<");
        cas__out_put(p, v->text, v->tlen);
        cas__out_s(p, ">");
        break;
    case CAS__PV_SLICE:
        cas__out_s(p, "slice(");
        cas__render(p, cas__pv_kid(v, 0), depth + 1);
        cas__out_s(p, ", ");
        cas__render(p, cas__pv_kid(v, 1), depth + 1);
        cas__out_s(p, ", ");
        cas__render(p, cas__pv_kid(v, 2), depth + 1);
        cas__out_s(p, ")");
        break;
    case CAS__PV_DATETIME:
        if (v->aux) { /* tzinfo goes inside the parentheses */
            cas__out_put(p, v->text, v->tlen - 1);
            cas__out_s(p, ", tzinfo=");
            cas__render(p, v->aux, depth + 1);
            cas__out_s(p, ")");
        } else {
            cas__out_put(p, v->text, v->tlen);
        }
        break;
    case CAS__PV_DECIMAL:
        cas__out_s(p, "Decimal(");
        cas__out_quoted(p, v->text, v->tlen, 0);
        cas__out_s(p, ")");
        break;
    case CAS__PV_NDARRAY: cas__render_ndarray(p, v, depth); break;
    case CAS__PV_DTYPE:
        cas__dtype_name(v, t, sizeof t);
        cas__out_f(p, "dtype('%s')", t);
        break;
    case CAS__PV_NPSCALAR: {
        cas__pv *dt = cas__pv_kid(v, 0), *b = cas__pv_kid(v, 1);
        char kind, dn[64];
        size_t isz = cas__dtype_item(dt, &kind);
        cas__dtype_name(dt, dn, sizeof dn);
        if (b && b->kind == CAS__PV_BYTES && isz && b->tlen >= isz && isz <= 16) {
            char e[96];
            cas__fmt_elem((const unsigned char *)b->text, kind, isz, dt->sub == '>', dt, e, sizeof e, 0);
            cas__out_f(p, "numpy.%s(%s)", dn, e);
        } else {
            cas__out_f(p, "numpy.%s(?)", dn);
        }
        break;
    }
    case CAS__PV_PANDAS: cas__render_pandas(p, v, depth); break;
    default: cas__out_s(p, "<?>");
    }
}
