/* ---- secrets ---------------------------------------------------------------- */
/* Credentials live in one page of their own: locked (never swapped), excluded from
 * core dumps, wiped before it is unmapped. */

/* The longest credentials kept: a key id or an account name, a secret or a shared
 * key, and a session token, SAS or bearer token (STS tokens with session tags and
 * policies run to several KiB; Entra ID tokens to a few). Longer ones are refused,
 * never cut. */
#define CAS__KEY_MAX 256
#define CAS__TOKEN_MAX 65536

/* kind: CAS__AUTH_*; a secret is required but for the token kinds (SAS, bearer).
 * NULL with the reason in msg (which never holds a secret). */
static cas__cred *cas__cred_new(int kind, const char *akid, const char *secret, const char *token, int64_t expires,
                                char *msg, size_t cap) {
    int tokens = kind == CAS__AUTH_SAS || kind == CAS__AUTH_BEARER;
    size_t al = strlen(akid), sl = strlen(secret), tl = token ? strlen(token) : 0, need = al + sl + tl + 3, pl;
    long pg = sysconf(_SC_PAGESIZE);
    cas__cred *c;
    void *page;
    if (pg <= 0) pg = 4096;
    pl = (need + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
    if (!al || (tokens ? !tl : !sl)) {
        cas__fmt(msg, cap, "the credentials have an empty %s", !al ? "key id or account" : tokens ? "token" : "secret");
        return NULL;
    }
    if (al > CAS__KEY_MAX || sl > CAS__KEY_MAX || tl > CAS__TOKEN_MAX) {
        int key = al > CAS__KEY_MAX || sl > CAS__KEY_MAX;
        cas__fmt(msg, cap, "the credentials' %s is %lu bytes long, more than cas.h keeps (%d)",
                 al > CAS__KEY_MAX   ? "key id or account"
                 : sl > CAS__KEY_MAX ? "secret"
                                     : "token",
                 (unsigned long)(al > CAS__KEY_MAX   ? al
                                 : sl > CAS__KEY_MAX ? sl
                                                     : tl),
                 key ? CAS__KEY_MAX : CAS__TOKEN_MAX);
        return NULL;
    }
    page = mmap(NULL, pl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        cas__fmt(msg, cap, "cannot map a page for the credentials: %s", strerror(errno));
        return NULL;
    }
#ifdef MADV_DONTDUMP
    madvise(page, pl, MADV_DONTDUMP);
#endif
    (void)mlock(page, pl); /* best effort: RLIMIT_MEMLOCK may say no */
    if (!(c = (cas__cred *)calloc(1, sizeof *c))) {
        munmap(page, pl);
        cas__fmt(msg, cap, "out of memory");
        return NULL;
    }
    c->page = page, c->page_len = pl, c->refs = 1, c->expires = expires, c->kind = kind;
    c->akid = (char *)page;
    memcpy(c->akid, akid, al + 1);
    c->secret = c->akid + al + 1;
    memcpy(c->secret, secret, sl + 1);
    c->token = c->secret + sl + 1;
    if (tl) memcpy(c->token, token, tl);
    c->token[tl] = 0;
    return c;
}

static void cas__cred_destroy(cas__cred *c) {
    cas__wipe(c->page, c->page_len);
    munlock(c->page, c->page_len);
    munmap(c->page, c->page_len);
    free(c);
}

static void cas__cred_unref(cas__cloud *cs, cas__cred *c) {
    int left;
    if (!c) return;
    cas__mu_lock(&cs->cmu);
    left = --c->refs;
    cas__mu_unlock(&cs->cmu);
    if (!left) cas__cred_destroy(c);
}
