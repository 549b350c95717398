/* ---- a request on a handle: set-up, verdicts, retries ---------------------------------- */

/* Sets every option of one try of r on e. *sent gets the header list to free after. */
static int cas__rq_setup(cas__cloud *cs, CURL *e, cas__rq *r, cas__cred *c, struct curl_slist **sent) {
    struct curl_slist *h = NULL, *i;
    int ok = 1;
    *sent = NULL;
    r->e = e;
    r->meta_name = cs->d->meta_header, r->code_name = cs->d->code_header;
    curl_easy_setopt(e, CURLOPT_URL, r->url.p);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curlerr);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     r->quick ? 1000L : (long)cas__cloudp(cs, CAS_PARAM_CLOUD_CONNECT_TIMEOUT));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     r->quick ? 2L : (long)(cas__cloudp(cs, CAS_PARAM_CLOUD_STALL_TIMEOUT) + 999) / 1000);
    if (r->quick) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cs->ca_bundle) curl_easy_setopt(e, CURLOPT_CAINFO, cs->ca_bundle);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cas__rq_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cas__rq_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    if (r->recv_buf) curl_easy_setopt(e, CURLOPT_BUFFERSIZE, r->recv_buf);
    if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "PUT")) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, cas__rq_read);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, cas__rq_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->up_len);
    } else if (!strcmp(r->method, "POST")) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->up ? (const char *)r->up : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->up_len);
    } else if (strcmp(r->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
    for (i = r->hdr; i && ok; i = i->next) ok = (h = curl_slist_append(h, i->data)) != NULL;
    if (ok && r->sign && c) ok = cs->d->authorize(cs, e, r, c, &h) == CAS_OK;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    *sent = h;
    return ok ? CAS_OK : CAS_E_NOMEM;
}

/* An error answer's code and message from its body; a code the headers gave
 * (Azure's x-ms-error-code) stays when the body has none. */
static void cas__rq_error_body(cas__rq *r) {
    char code[sizeof r->code];
    if (r->status < 300 || !r->body.len) return;
    cas__xml_error(r->body.p, r->body.len, code, sizeof code, r->message, sizeof r->message);
    if (code[0]) memcpy(r->code, code, sizeof code);
}

static int cas__cc_transient(CURLcode cc) {
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_WEIRD_SERVER_REPLY: return 1;
    default: return 0;
    }
}

/* A connection closed inside an answer's headers: libcurl may call that a whole
 * answer with no body (seen through a proxy cutting it); it is a broken one. */
static CURLcode cas__rq_whole(const cas__rq *r, CURLcode cc) {
    return cc == CURLE_OK && !r->hdr_done ? CURLE_GOT_NOTHING : cc;
}

/* Nothing reached the server: any request may be tried again. */
static int cas__cc_unsent(CURLcode cc) { return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST; }

static int cas__code_is(const cas__rq *r, const char *const *codes) {
    for (; *codes; codes++)
        if (!strcmp(r->code, *codes)) return 1;
    return 0;
}

/* After a complete response: 1 to try again, 2 to refresh the credentials first, 0 if final.
 * Every request sent here is safe to repeat: GET, HEAD, PUT and DELETE are idempotent,
 * a repeated CreateMultipartUpload leaves at worst an empty upload (gc aborts it), and
 * a CompleteMultipartUpload whose answer was lost is judged by the object itself. */
static int cas__rq_retryable(const cas__rq *r) {
    static const char *const transient[] = {"SlowDown",
                                            "Throttling",
                                            "ThrottlingException",
                                            "RequestTimeout",
                                            "InternalError",
                                            "ServiceUnavailable",
                                            "RequestLimitExceeded",
                                            "OperationAborted",
                                            "ConditionalRequestConflict",
                                            "TooManyRequests",
                                            "ServerBusy",
                                            "OperationTimedOut",
                                            NULL}; /* the last two: Azure's */
    static const char *const expired[] = {"ExpiredToken", "TokenRefreshRequired", "RequestExpired", NULL};
    if (r->status >= 200 && r->status < 400) return 0;
    if (cas__code_is(r, expired)) return 2;
    return r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504 || r->status == 429 ||
           cas__code_is(r, transient);
}

/* Exponential backoff with full jitter: uniform in [0, min(base * 2^(tries-1), 100 * base)] ms. */
static long cas__cloud_backoff_ms(cas__cloud *cs, int tries) {
    int64_t base = cas__cloudp(cs, CAS_PARAM_CLOUD_RETRY_BASE), cap = base * 100, step = base;
    int k;
    for (k = 1; k < tries && step < cap; k++) step *= 2;
    if (step > cap) step = cap;
    return (long)(cas__cloud_random(cs) % (uint64_t)(step + 1));
}

static void cas__cloud_backoff(cas__cloud *cs, int tries) { cas__sleep_ms(cas__cloud_backoff_ms(cs, tries)); }

/* A transfer ended with `result` (cas__multi_turn):
 * r's status and error read; returns whether to try it again, its credentials
 * renewed first when they ran out. *cc gets the transfer's own code. */
static int cas__rq_ended(cas__cloud *cs, cas__rq *r, CURLcode result, CURLcode *cc) {
    int again;
    char why[CAS__MSG];
    *cc = cas__rq_whole(r, result);
    r->status = cas__rq_status(r);
    if (*cc == CURLE_OK) cas__rq_error_body(r);
    again = *cc != CURLE_OK ? cas__cc_transient(*cc) : cas__rq_retryable(r);
    if (again == 2) { /* temporary credentials ran out: new ones for the retry */
        cas__cred *fresh = NULL;
        if (!r->sign || cas__cred_get(cs, 1, &fresh, why, sizeof why) < 0) again = 0;
        cas__cred_unref(cs, fresh);
    }
    return again;
}

/* Why the last try of r failed, without a secret: the service's code and message, or curl's. */
static void cas__rq_why(const cas__rq *r, CURLcode cc, char *msg, size_t cap) {
    char tries[48];
    tries[0] = 0;
    if (r->tries > 1) snprintf(tries, sizeof tries, " (after %d tries)", r->tries);
    if (cc != CURLE_OK) cas__fmt(msg, cap, "%s%s", r->curlerr[0] ? r->curlerr : curl_easy_strerror(cc), tries);
    else if (r->code[0])
        cas__fmt(msg, cap, "HTTP %ld %s: %s%s", r->status, r->code, r->message[0] ? r->message : "(no message)", tries);
    else
        cas__fmt(msg, cap, "HTTP %ld%s%s", r->status,
                 r->status == 403 && !strcmp(r->method, "HEAD") ? " (a HEAD answer carries no reason: check the "
                                                                  "credentials and the bucket's policy)"
                                                                : "",
                 tries);
}
