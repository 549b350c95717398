/* ---- the one driver: every transfer runs on a multi handle ----------------------------
 * A single request, an object's stream, a batch's GETs and a large object's ranges
 * all run here, so that one loop head, one verdict (cas__rq_ended) and one place for
 * a handle's life serve them all, and connections are kept by the pooled multi
 * handles (libcurl's connection cache is the multi's) for whichever request comes
 * next. A transfer points at its owner's request and holds its handle while in
 * flight, the headers it sent (wiped after) and when it may start again; it is the
 * first member of its owner's record (a batch's item, a range's slot, a stream), or
 * a local of cas__rq_run, and CURLOPT_PRIVATE points at it. The owner's loop starts
 * the transfers that are due (cas__xfer_start), takes a turn (cas__multi_turn: curl
 * runs, and each transfer that ended comes back with its verdict, its handle already
 * back in the pool), then waits (cas__multi_wait). */
typedef struct cas__xfer {
    cas__rq *r; /* the request, the owner's */
    CURL *e;
    struct curl_slist *sent;
    int64_t due; /* ms: not before (a retry's backoff) */
} cas__xfer;

/* Another try of x on m, signed with the current credentials when x->r->sign;
 * write/wdata take the body (NULL: the request keeps it). CAS_OK, or an error with
 * the reason in msg (x then holds nothing: cas__xfer_stop is not needed). Missing
 * credentials are an I/O failure here, never CAS_E_NOTFOUND: the caller would take
 * that for a missing object. */
static int cas__xfer_start(cas__cloud *cs, CURLM *m, cas__xfer *x, curl_write_callback write, void *wdata, char *msg,
                           size_t cap) {
    cas__cred *c = NULL;
    int rc;
    x->r->tries++;
    cas__rq_reset_response(x->r);
    if (x->r->sign && (rc = cas__cred_get(cs, 0, &c, msg, cap)) < 0) return rc == CAS_E_NOTFOUND ? CAS_E_IO : rc;
    if ((x->e = cas__easy_get(cs)) != NULL && cas__rq_setup(cs, x->e, x->r, c, &x->sent) == CAS_OK) {
        if (write) {
            curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, write);
            curl_easy_setopt(x->e, CURLOPT_WRITEDATA, wdata);
        }
        curl_easy_setopt(x->e, CURLOPT_PRIVATE, (void *)x);
        if (curl_multi_add_handle(m, x->e) == CURLM_OK) {
            cas__cred_unref(cs, c); /* libcurl has what it needs for this try */
            return CAS_OK;
        }
    }
    cas__cred_unref(cs, c);
    x->r->e = NULL; /* cas__rq_setup set it before it could fail */
    cas__easy_put(cs, x->e), x->e = NULL;
    cas__slist_wipe(x->sent), x->sent = NULL;
    return cas__oom(msg, cap);
}

/* Takes x off m, its handle back to the pool (a no-op for one not in flight). */
static void cas__xfer_stop(cas__cloud *cs, CURLM *m, cas__xfer *x) {
    if (x->e) {
        curl_multi_remove_handle(m, x->e);
        x->r->e = NULL;
        cas__easy_put(cs, x->e);
        x->e = NULL;
    }
    cas__slist_wipe(x->sent);
    x->sent = NULL;
}

/* One turn: curl runs m's transfers; each that ended is stopped and handed to
 * ended(ctx, x, again, cc) (again: worth another try, as cas__rq_ended judges).
 * A negative answer ends the turn and is returned. */
static int cas__multi_turn(cas__cloud *cs, CURLM *m, int (*ended)(void *ctx, cas__xfer *x, int again, CURLcode cc),
                           void *ctx) {
    int still = 0, left, rc = CAS_OK;
    CURLMsg *mm;
    curl_multi_perform(m, &still);
    while (rc >= 0 && (mm = curl_multi_info_read(m, &left)) != NULL) {
        cas__xfer *x = NULL;
        CURLcode cc;
        int again;
        if (mm->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(mm->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        again = cas__rq_ended(cs, x->r, mm->data.result, &cc);
        cas__xfer_stop(cs, m, x);
        rc = ended(ctx, x, again, cc);
    }
    return rc;
}

/* Until a transfer of m has something to do, ms at most (libcurl's own timers
 * cut it shorter), or curl_multi_wakeup. */
static void cas__multi_wait(CURLM *m, int ms) { curl_multi_poll(m, NULL, 0, ms, NULL); }

/* What the one transfer of cas__xfer_run ended with. */
typedef struct cas__verdict {
    int done, again;
    CURLcode cc;
} cas__verdict;

static int cas__verdict_ended(void *ctx, cas__xfer *x, int again, CURLcode cc) {
    cas__verdict *v = (cas__verdict *)ctx;
    (void)x;
    v->done = 1, v->again = again, v->cc = cc;
    return CAS_OK;
}

/* Runs the one transfer started on m to its end: the verdict cas__rq_ended gave. */
static int cas__xfer_run(cas__cloud *cs, CURLM *m, CURLcode *cc) {
    cas__verdict v;
    memset(&v, 0, sizeof v);
    for (;;) {
        cas__multi_turn(cs, m, cas__verdict_ended, &v);
        if (v.done) break;
        cas__multi_wait(m, 1000);
    }
    *cc = v.cc;
    return v.again;
}

/* Runs r to a final answer: CAS_OK with r->status set (the caller judges it;
 * r->code and r->message hold the service's error), or an error with the reason in msg
 * when no answer came after the last try. */
static int cas__rq_run(cas__cloud *cs, cas__rq *r, char *msg, size_t cap) {
    int attempts = r->quick ? 2 : (int)cas__cloudp(cs, CAS_PARAM_CLOUD_ATTEMPTS), refreshed = 0, rc, again;
    CURLM *m = cas__multi_get(cs);
    cas__xfer x;
    CURLcode cc;
    if (!m) return cas__oom(msg, cap);
    memset(&x, 0, sizeof x);
    x.r = r;
    cas__mu_lock(&cs->pmu);
    if (!r->quick && cas__ms() < cs->down_until) attempts = 1; /* just found unreachable: fail fast */
    cas__mu_unlock(&cs->pmu);
    for (r->tries = 0;;) {
        if ((rc = cas__xfer_start(cs, m, &x, NULL, NULL, msg, cap)) < 0) break;
        again = cas__xfer_run(cs, m, &cc);
        if (cc == CURLE_OUT_OF_MEMORY) {
            rc = cas__oom(msg, cap);
            break;
        }
        if (cc == CURLE_WRITE_ERROR && r->too_big) {
            cas__fmt(msg, cap, "the answer is larger than %lu bytes", (unsigned long)r->keep);
            rc = CAS_E_LIMIT;
            break;
        }
        if (again == 2 && refreshed++) again = 0; /* new credentials were refused too */
        if (again && r->tries < attempts) {
            cas__cloud_backoff(cs, r->tries);
            continue;
        }
        if (cc != CURLE_OK) {
            if (cas__cc_unsent(cc) && !r->quick) { /* the others of a batch need not wait as long */
                cas__mu_lock(&cs->pmu);
                cs->down_until = cas__ms() + 10000;
                cas__mu_unlock(&cs->pmu);
            }
            cas__rq_why(r, cc, msg, cap);
            rc = CAS_E_IO;
        }
        break;
    }
    cas__multi_put(cs, m);
    return rc;
}
