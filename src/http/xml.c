/* ---- XML: expat underneath, element paths and leaf texts on top ---------- */
/* S3's answers are small documents of a known shape. Each leaf's text comes to
 * `leaf` with its path ("ListBucketResult/Contents/Key"), each element's end to
 * `end`. DOCTYPEs and entity declarations are refused (S3 sends neither), depth
 * is capped, texts are cut at CAS__XML_TEXT bytes (and flagged: a reader that
 * needs the whole text, a credential, refuses a cut one). */

#define CAS__XML_DEPTH 16
#define CAS__XML_TEXT 65536 /* as long as a credential may be (CAS__TOKEN_MAX) */

typedef struct cas__xml {
    XML_Parser p;
    char path[512];
    size_t mark[CAS__XML_DEPTH + 1];
    int depth, failed;
    char *text; /* CAS__XML_TEXT + 1 bytes */
    size_t tlen;
    int cut;
    void (*leaf)(void *ctx, const char *path, const char *text, size_t len, int cut);
    void (*end)(void *ctx, const char *path);
    void *ctx;
} cas__xml;

static void XMLCALL cas__xml_start(void *u, const XML_Char *name, const XML_Char **attrs) {
    cas__xml *x = (cas__xml *)u;
    size_t l = strlen(name), at = x->depth ? x->mark[x->depth] : 0;
    (void)attrs;
    if (x->failed) return;
    if (x->depth >= CAS__XML_DEPTH || at + l + 2 > sizeof x->path) {
        x->failed = 1;
        XML_StopParser(x->p, XML_FALSE);
        return;
    }
    if (x->depth) x->path[at++] = '/';
    memcpy(x->path + at, name, l + 1);
    x->mark[++x->depth] = at + l;
    x->tlen = 0, x->cut = 0;
}

static void XMLCALL cas__xml_chars(void *u, const XML_Char *s, int n) {
    cas__xml *x = (cas__xml *)u;
    size_t k;
    if (x->failed || n <= 0) return;
    k = CAS__MIN((size_t)n, CAS__XML_TEXT - x->tlen);
    memcpy(x->text + x->tlen, s, k);
    x->tlen += k;
    if (k < (size_t)n) x->cut = 1;
}

static void XMLCALL cas__xml_finish(void *u, const XML_Char *name) {
    cas__xml *x = (cas__xml *)u;
    (void)name;
    if (x->failed || !x->depth) return;
    x->text[x->tlen] = 0;
    if (x->leaf) x->leaf(x->ctx, x->path, x->text, x->tlen, x->cut);
    if (x->end) x->end(x->ctx, x->path);
    x->tlen = 0, x->cut = 0;
    x->depth--;
    x->path[x->depth ? x->mark[x->depth] : 0] = 0;
}

static void XMLCALL cas__xml_doctype(void *u, const XML_Char *a, const XML_Char *b, const XML_Char *c, int d) {
    cas__xml *x = (cas__xml *)u;
    (void)a, (void)b, (void)c, (void)d;
    x->failed = 1;
    XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL cas__xml_entity(void *u, const XML_Char *a, int b, const XML_Char *c, int d, const XML_Char *e,
                                    const XML_Char *f, const XML_Char *g, const XML_Char *h) {
    cas__xml *x = (cas__xml *)u;
    (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h;
    x->failed = 1;
    XML_StopParser(x->p, XML_FALSE);
}

/* CAS_OK, or CAS_E_CORRUPT with the reason in msg. */
static int cas__xml_parse(const char *doc, size_t len, void (*leaf)(void *, const char *, const char *, size_t, int),
                          void (*end)(void *, const char *), void *ctx, char *msg, size_t cap) {
    cas__xml xs, *x = &xs;
    int ok;
    memset(x, 0, sizeof *x);
    if (len > (size_t)INT_MAX || !(x->text = (char *)malloc(CAS__XML_TEXT + 1)) ||
        !(x->p = XML_ParserCreate("UTF-8"))) {
        free(x->text);
        cas__fmt(msg, cap, "cannot parse the XML answer");
        return CAS_E_CORRUPT;
    }
    x->leaf = leaf, x->end = end, x->ctx = ctx;
    XML_SetUserData(x->p, x);
    XML_SetElementHandler(x->p, cas__xml_start, cas__xml_finish);
    XML_SetCharacterDataHandler(x->p, cas__xml_chars);
    XML_SetStartDoctypeDeclHandler(x->p, cas__xml_doctype);
    XML_SetEntityDeclHandler(x->p, cas__xml_entity);
    ok = XML_Parse(x->p, doc, (int)len, XML_TRUE) == XML_STATUS_OK && !x->failed;
    if (!ok)
        cas__fmt(msg, cap, "malformed XML answer (%s at line %lu)",
                 x->failed ? "a DOCTYPE, an entity or nesting too deep" : XML_ErrorString(XML_GetErrorCode(x->p)),
                 (unsigned long)XML_GetCurrentLineNumber(x->p));
    cas__wipe(x->text, CAS__XML_TEXT + 1); /* it may have held a secret (STS) */
    free(x->text);
    XML_ParserFree(x->p);
    return ok ? CAS_OK : CAS_E_CORRUPT;
}

/* The leaf at `suffix` (a path's tail, "Error/Code") into a fixed buffer; cut[i]
 * says the text did not fit (the buffer holds its start). */
typedef struct cas__xml_pick {
    const char *suffix[4];
    char *out[4];
    size_t cap[4];
    int cut[4];
} cas__xml_pick;

static int cas__ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail) && (a == b || s[a - b - 1] == '/');
}

static void cas__xml_pick_leaf(void *ctx, const char *path, const char *text, size_t len, int cut) {
    cas__xml_pick *p = (cas__xml_pick *)ctx;
    int i;
    for (i = 0; i < 4 && p->suffix[i]; i++)
        if (cas__ends_with(path, p->suffix[i])) {
            size_t k = CAS__MIN(len, p->cap[i] - 1);
            memcpy(p->out[i], text, k);
            p->out[i][k] = 0;
            p->cut[i] = cut || k < len;
        }
}

/* S3's <Error><Code>..</Code><Message>..</Message></Error> (also STS's ErrorResponse). */
static void cas__xml_error(const char *doc, size_t len, char *code, size_t ccap, char *message, size_t mcap) {
    cas__xml_pick p;
    char scratch[64];
    memset(&p, 0, sizeof p);
    code[0] = message[0] = 0;
    p.suffix[0] = "Error/Code", p.out[0] = code, p.cap[0] = ccap;
    p.suffix[1] = "Error/Message", p.out[1] = message, p.cap[1] = mcap;
    cas__xml_parse(doc, len, cas__xml_pick_leaf, NULL, &p, scratch, sizeof scratch);
    message[strcspn(message, "\r\n")] = 0; /* Azure's goes on with "RequestId:..." lines */
}
