/*
 * The outbound thread (outbound.h): libcurl's multi interface driven by one
 * thread, fed through a bounded pool of request slots.
 *
 * A slot holds one request from submit to release: its copied URL, body and
 * header values, then its response (body and headers grow as they arrive,
 * never past their caps). Callers hold the mutex only to take a free slot
 * and append its index to the pending FIFO; the thread moves pending slots
 * into the multi handle while fewer than max_transfers run, and posts each
 * finished one to its caller: a callback (then the slot is freed at once) or
 * the worker's completion ring plus one eventfd write, as the committer does.
 *
 * Back-pressure: every slot in use means TK_E_QUEUEFULL at submit. A
 * completion ring holds cap indices, and a slot is in at most one place
 * (free, pending, running, completed), so no ring can overflow.
 *
 * curl_multi_wakeup interrupts the thread's poll on every submit and on
 * stop, so a new request starts at once rather than at the next tick.
 */
#include "tokend/outbound.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SMALL_VALUE_MAX 128
#define NO_SLOT         UINT32_MAX

typedef struct slot {
    /* The request, copied at submit. */
    tk_outbound_req req;
    char url[TK_URL_MAX + 1];
    char body[TK_OUTBOUND_REQ_BODY_MAX];
    char ctype[SMALL_VALUE_MAX + 1], accept[SMALL_VALUE_MAX + 1];
    char auth[TK_OUTBOUND_AUTH_MAX + 1];
    size_t cap; /* this request's body cap */
    unsigned timeout_ms;
    /* The transfer (outbound thread only). */
    CURL *easy;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    bool too_big;
    uint64_t t0;
    char *rbody; /* grows by doubling up to cap + 1 */
    size_t rlen, rcap;
    char *rhdr; /* TK_OUTBOUND_HEADERS_MAX + 1 */
    size_t hlen;
    /* The answer the caller reads. */
    tk_outbound_resp resp;
} slot;

typedef struct done_ring {
    pthread_mutex_t mu;
    uint32_t *idx; /* cap slot indices */
    size_t head, count;
    int efd;
} done_ring;

struct tk_outbound {
    tk_outbound_cfg cfg;
    unsigned cap;
    CURLM *multi;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu; /* guards free list, pending FIFO, stopping */
    slot *slots;        /* cap */
    uint32_t *free_idx; /* stack of free slots */
    size_t nfree;
    uint32_t *pending; /* FIFO ring of slot indices */
    size_t phead, pcount;
    bool stopping;

    unsigned running;        /* outbound thread only */
    done_ring *done;         /* cfg.nworkers */
    tk_outbound_stats stats; /* atomic, relaxed */
};

#define STAT_ADD(ob, field, n) __atomic_fetch_add(&(ob)->stats.field, (n), __ATOMIC_RELAXED)

/* ---- Names ---------------------------------------------------------------------------- */

static const char *const purpose_names[TK_OB_PURPOSES] = {"jwks", "discovery", "token",
                                                          "client_metadata", "other"};
static const char *const result_names[TK_OB_RESULTS] = {
    "ok",      "http_error", "redirect",   "timeout",  "connect", "tls",
    "too_big", "protocol",   "queue_full", "canceled", "error"};

const char *const tk_outbound_dur_label[TK_OB_DUR_BUCKETS] = {
    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "10", "30"};
static const uint64_t dur_bound_ms[TK_OB_DUR_BUCKETS] = {10,  25,   50,   100,   250,
                                                         500, 1000, 2500, 10000, 30000};

const char *tk_outbound_purpose_name(unsigned purpose)
{
    return purpose < TK_OB_PURPOSES ? purpose_names[purpose] : "unknown";
}

const char *tk_outbound_result_name(unsigned result)
{
    return result < TK_OB_RESULTS ? result_names[result] : "unknown";
}

/* ---- Response headers ------------------------------------------------------------------ */

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

tk_slice tk_outbound_header(const tk_outbound_resp *resp, const char *name)
{
    size_t nl = strlen(name);
    const char *p = resp->headers, *end = resp->headers + resp->headers_len;
    while (p < end) { /* bounded: every turn moves p past one line */
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol != NULL ? eol : end;
        bool match = (size_t)(le - p) > nl && p[nl] == ':';
        for (size_t i = 0; match && i < nl; i++) {
            match = lower(p[i]) == lower(name[i]);
        }
        if (match) {
            const char *v = p + nl + 1, *ve = le;
            while (v < ve && blank(*v)) {
                v++;
            }
            while (ve > v && (blank(ve[-1]) || ve[-1] == '\r')) {
                ve--;
            }
            return (tk_slice){v, (size_t)(ve - v)};
        }
        p = le + 1;
    }
    return TK_SLICE_NULL;
}

/* The next comma-separated directive of a Cache-Control value. */
static tk_slice next_directive(tk_slice *rest)
{
    size_t i = 0;
    while (i < rest->len && rest->p[i] != ',') {
        i++;
    }
    tk_slice d = {rest->p, i};
    size_t skip = i < rest->len ? i + 1 : i;
    rest->p += skip;
    rest->len -= skip;
    while (d.len > 0 && blank(d.p[0])) {
        d.p++;
        d.len--;
    }
    while (d.len > 0 && blank(d.p[d.len - 1])) {
        d.len--;
    }
    return d;
}

static bool prefix_nocase(tk_slice s, const char *pre)
{
    size_t n = strlen(pre);
    return s.len >= n && tk_slice_eq_nocase((tk_slice){s.p, n}, pre);
}

int tk_outbound_max_age(tk_slice cc, int64_t *out)
{
    int rc = TK_E_NOTFOUND;
    tk_slice rest = cc;
    for (size_t guard = 0; rest.len > 0 && guard <= cc.len; guard++) {
        tk_slice d = next_directive(&rest);
        if (tk_slice_eq_nocase(d, "no-store") || tk_slice_eq_nocase(d, "no-cache")) {
            *out = 0;
            return 0; /* wins over any max-age */
        }
        if (!prefix_nocase(d, "max-age=") || rc == 0) {
            continue;
        }
        tk_slice v = {d.p + 8, d.len - 8};
        if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"') {
            v.p++;
            v.len -= 2;
        }
        int64_t n = 0;
        bool ok = v.len > 0 && v.len <= 10;
        for (size_t i = 0; ok && i < v.len; i++) {
            ok = v.p[i] >= '0' && v.p[i] <= '9';
            n = n * 10 + (v.p[i] - '0');
        }
        if (ok) {
            *out = n;
            rc = 0;
        }
    }
    return rc;
}

/* ---- Transfer callbacks (outbound thread) ------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    slot *s = arg;
    size_t len = size * n;
    if (len > s->cap - s->rlen) {
        s->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (s->rlen + len + 1 > s->rcap) {
        size_t want = s->rcap == 0 ? 4096 : s->rcap;
        while (want < s->rlen + len + 1) { /* bounded: doubles up to cap + 1 */
            want *= 2;
        }
        want = want > s->cap + 1 ? s->cap + 1 : want;
        char *p = realloc(s->rbody, want);
        if (p == NULL) {
            return 0;
        }
        s->rbody = p;
        s->rcap = want;
    }
    memcpy(s->rbody + s->rlen, data, len);
    s->rlen += len;
    s->rbody[s->rlen] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    slot *s = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        s->hlen = 0; /* a new response (after a redirect or 100): keep the last one's */
    }
    if (s->rhdr != NULL && len <= TK_OUTBOUND_HEADERS_MAX - s->hlen) {
        memcpy(s->rhdr + s->hlen, data, len);
        s->hlen += len;
        s->rhdr[s->hlen] = '\0';
    }
    return len; /* headers past the cap are dropped, not an error */
}

/* ---- Transfers ----------------------------------------------------------------------------- */

static bool is_http(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0;
}

static int add_header(struct curl_slist **l, const char *name, const char *value)
{
    char line[TK_OUTBOUND_AUTH_MAX + 32];
    size_t nl = strlen(name), vl = strlen(value);
    TK_ASSERT(nl + vl + 3 <= sizeof line);
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl + 1);
    struct curl_slist *nxt = curl_slist_append(*l, line);
    tk_cleanse(line, sizeof line); /* may be an Authorization value */
    if (nxt == NULL) {
        return -ENOMEM;
    }
    *l = nxt;
    return 0;
}

static int build_headers(slot *s)
{
    int rc = add_header(&s->hdrs, "Expect", ""); /* no 100-continue round trip */
    if (rc == 0 && s->accept[0] != '\0') {
        rc = add_header(&s->hdrs, "Accept", s->accept);
    }
    if (rc == 0 && s->ctype[0] != '\0') {
        rc = add_header(&s->hdrs, "Content-Type", s->ctype);
    }
    if (rc == 0 && s->auth[0] != '\0') {
        rc = add_header(&s->hdrs, "Authorization", s->auth);
    }
    return rc;
}

/* Every option a transfer gets; the safety rules are not the caller's to
 * choose (outbound.h). */
static int setup(tk_outbound *ob, slot *s)
{
    CURL *e = curl_easy_init();
    s->rhdr = malloc(TK_OUTBOUND_HEADERS_MAX + 1);
    if (e == NULL || s->rhdr == NULL || build_headers(s) != 0) {
        if (e != NULL) {
            curl_easy_cleanup(e);
        }
        return -ENOMEM;
    }
    s->rhdr[0] = '\0';
    s->easy = e;
    bool follow = s->req.follow_redirects;
    CURLcode c = CURLE_OK;
#define OPT(o, v) c = c != CURLE_OK ? c : curl_easy_setopt(e, o, v)
    OPT(CURLOPT_URL, s->url);
    OPT(CURLOPT_PROTOCOLS_STR, "http,https");
    /* Never from https down to http; a plain http start (loopback tests)
     * may stay on http. */
    OPT(CURLOPT_REDIR_PROTOCOLS_STR, is_http(s->url) ? "http,https" : "https");
    OPT(CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    OPT(CURLOPT_MAXREDIRS, (long)TK_OUTBOUND_REDIRECTS_MAX);
    OPT(CURLOPT_NOSIGNAL, 1L);
    OPT(CURLOPT_CONNECTTIMEOUT_MS, (long)ob->cfg.connect_timeout_ms);
    OPT(CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    OPT(CURLOPT_SSL_VERIFYPEER, 1L);
    OPT(CURLOPT_SSL_VERIFYHOST, 2L);
    OPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (ob->cfg.ca_file != NULL && ob->cfg.ca_file[0] != '\0') {
        /* The private CA file, and the system store's folder beside it
         * (OpenSSL looks in both). */
        const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
        OPT(CURLOPT_CAINFO, ob->cfg.ca_file);
        OPT(CURLOPT_CAPATH, vi->capath != NULL ? vi->capath : "/etc/ssl/certs");
    }
    OPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->cap);
    OPT(CURLOPT_WRITEFUNCTION, on_body);
    OPT(CURLOPT_WRITEDATA, s);
    OPT(CURLOPT_HEADERFUNCTION, on_header);
    OPT(CURLOPT_HEADERDATA, s);
    OPT(CURLOPT_ERRORBUFFER, s->errbuf);
    OPT(CURLOPT_PRIVATE, s);
    OPT(CURLOPT_USERAGENT, "tokend/0.1");
    OPT(CURLOPT_HTTPHEADER, s->hdrs);
    if (s->req.method == TK_OB_POST) {
        OPT(CURLOPT_POSTFIELDSIZE, (long)s->req.body_len);
        OPT(CURLOPT_POSTFIELDS, s->body);
    }
#undef OPT
    if (c != CURLE_OK) {
        tk_log_error("outbound_setup", "error=\"%s\"", curl_easy_strerror(c));
        return TK_E_INVALID;
    }
    s->errbuf[0] = '\0';
    s->t0 = tk_mono_ns();
    return curl_multi_add_handle(ob->multi, e) == CURLM_OK ? 0 : -ENOMEM;
}

static uint8_t classify(slot *s, CURLcode c, int status)
{
    switch (c) {
    case CURLE_OK:
        return status >= 200 && status < 300   ? TK_OB_OK
               : status >= 300 && status < 400 ? TK_OB_REDIRECT
               : status >= 100                 ? TK_OB_HTTP_ERROR
                                               : TK_OB_PROTOCOL;
    case CURLE_OPERATION_TIMEDOUT:
        return TK_OB_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
        return TK_OB_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return TK_OB_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        return TK_OB_TOO_BIG;
    case CURLE_WRITE_ERROR:
        return s->too_big ? TK_OB_TOO_BIG : TK_OB_ERROR;
    case CURLE_TOO_MANY_REDIRECTS:
        return TK_OB_REDIRECT;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return TK_OB_PROTOCOL;
    default:
        return TK_OB_ERROR;
    }
}

static void count(tk_outbound *ob, const tk_outbound_resp *r)
{
    unsigned p = r->purpose < TK_OB_PURPOSES ? r->purpose : TK_OB_OTHER;
    uint64_t ms = r->elapsed_ns / 1000000u;
    unsigned b = 0;
    while (b < TK_OB_DUR_BUCKETS && ms > dur_bound_ms[b]) {
        b++;
    }
    STAT_ADD(ob, requests[p][r->result], 1);
    STAT_ADD(ob, dur[p][b], 1);
    STAT_ADD(ob, dur_sum_ns[p], r->elapsed_ns);
}

/* scheme://host/path of a URL for a log line: the query may carry values
 * that are nobody's business in a log. The URL was checked printable. */
static void log_url(const char *url, char out[TK_URL_MAX + 1])
{
    size_t n = strcspn(url, "?#");
    n = n > TK_URL_MAX ? TK_URL_MAX : n;
    for (size_t i = 0; i < n; i++) {
        out[i] = url[i] == '"' ? '?' : url[i];
    }
    out[n] = '\0';
}

static void log_done(const slot *s)
{
    const tk_outbound_resp *r = &s->resp;
    char url[TK_URL_MAX + 1];
    log_url(s->url, url);
    unsigned long long ms = (unsigned long long)(r->elapsed_ns / 1000000u);
    if (r->result == TK_OB_OK) {
        tk_log_info("outbound", "purpose=%s result=ok status=%d ms=%llu bytes=%zu url=\"%s\"",
                    tk_outbound_purpose_name(r->purpose), r->status, ms, r->body_len, url);
        return;
    }
    tk_log_warn("outbound_failed", "purpose=%s result=%s status=%d ms=%llu url=\"%s\" why=\"%s\"",
                tk_outbound_purpose_name(r->purpose), tk_outbound_result_name(r->result), r->status,
                ms, url, r->error);
}

static void set_error(tk_outbound_resp *r, const char *why)
{
    size_t n = strlen(why);
    n = n < sizeof r->error - 1 ? n : sizeof r->error - 1;
    for (size_t i = 0; i < n; i++) { /* curl messages may quote the peer's bytes */
        char c = why[i];
        r->error[i] = c >= 0x20 && c < 0x7f && c != '"' ? c : '?';
    }
    r->error[n] = '\0';
}

/* Fill the response of a finished (or never started) transfer. */
static void finish(tk_outbound *ob, slot *s, CURLcode c, uint8_t forced)
{
    tk_outbound_resp *r = &s->resp;
    long status = 0;
    if (s->easy != NULL) {
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    }
    r->cookie = s->req.cookie;
    r->purpose = s->req.purpose;
    r->status = (int)status;
    r->result = forced != TK_OB_RESULTS ? forced : classify(s, c, r->status);
    r->body = s->rbody != NULL ? s->rbody : "";
    r->body_len = s->rlen;
    r->headers = s->rhdr != NULL ? s->rhdr : "";
    r->headers_len = s->hlen;
    r->elapsed_ns = s->t0 != 0 ? tk_mono_ns() - s->t0 : 0;
    r->error[0] = '\0';
    if (r->result == TK_OB_TOO_BIG) {
        set_error(r, "response body larger than the cap");
    } else if (r->result == TK_OB_REDIRECT && c == CURLE_OK) {
        set_error(r, "redirect not followed");
    } else if (r->result == TK_OB_HTTP_ERROR) {
        set_error(r, "HTTP error status");
    } else if (r->result == TK_OB_CANCELED) {
        set_error(r, "tokend is stopping");
    } else if (r->result != TK_OB_OK) {
        set_error(r, s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(c));
    }
    if (r->result != TK_OB_OK) {
        r->body = ""; /* a failed body is never handed on */
        r->body_len = 0;
    }
    if (s->easy != NULL) {
        curl_multi_remove_handle(ob->multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    tk_cleanse(s->auth, sizeof s->auth);
    count(ob, r);
    log_done(s);
}

/* ---- Slots --------------------------------------------------------------------------------- */

static uint32_t index_of(const tk_outbound *ob, const slot *s)
{
    TK_ASSERT(s >= ob->slots && s < ob->slots + ob->cap);
    return (uint32_t)(s - ob->slots);
}

static void put_free(tk_outbound *ob, slot *s)
{
    free(s->rbody);
    free(s->rhdr);
    uint32_t i = index_of(ob, s);
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&ob->mu);
    TK_ASSERT(ob->nfree < ob->cap);
    ob->free_idx[ob->nfree++] = i;
    pthread_mutex_unlock(&ob->mu);
}

static void wake_worker(done_ring *dr)
{
    uint64_t one = 1;
    if (write(dr->efd, &one, sizeof one) != (ssize_t)sizeof one) {
        TK_ASSERT(errno == EAGAIN); /* counter near 2^64: already awake */
    }
}

/* Hand a finished slot to its caller. */
static void deliver(tk_outbound *ob, slot *s)
{
    if (s->req.cb != NULL) {
        s->req.cb(s->req.cb_arg, &s->resp);
        put_free(ob, s);
        return;
    }
    TK_ASSERT(s->req.worker < ob->cfg.nworkers);
    done_ring *dr = &ob->done[s->req.worker];
    pthread_mutex_lock(&dr->mu);
    TK_ASSERT(dr->count < ob->cap);
    dr->idx[(dr->head + dr->count) % ob->cap] = index_of(ob, s);
    dr->count++;
    pthread_mutex_unlock(&dr->mu);
    wake_worker(dr);
}

/* ---- Thread --------------------------------------------------------------------------------- */

/* Take the next pending slot, or NO_SLOT; *stop says whether to end. */
static uint32_t take_pending(tk_outbound *ob, bool *stop)
{
    pthread_mutex_lock(&ob->mu);
    *stop = ob->stopping;
    uint32_t i = NO_SLOT;
    if (!*stop && ob->pcount > 0 && ob->running < ob->cfg.max_transfers) {
        i = ob->pending[ob->phead];
        ob->phead = (ob->phead + 1) % ob->cap;
        ob->pcount--;
    }
    pthread_mutex_unlock(&ob->mu);
    return i;
}

static void start_pending(tk_outbound *ob, bool *stop)
{
    for (unsigned n = 0; n < ob->cap; n++) { /* bounded by the pool */
        uint32_t i = take_pending(ob, stop);
        if (i == NO_SLOT) {
            return;
        }
        slot *s = &ob->slots[i];
        int rc = setup(ob, s);
        if (rc != 0) {
            snprintf(s->errbuf, sizeof s->errbuf, "cannot start: %s", tk_strerror(rc));
            finish(ob, s, CURLE_FAILED_INIT, TK_OB_ERROR);
            deliver(ob, s);
            continue;
        }
        ob->running++;
    }
}

static void harvest(tk_outbound *ob)
{
    int left = 0;
    for (unsigned n = 0; n <= ob->cap; n++) { /* bounded: one message per transfer */
        CURLMsg *m = curl_multi_info_read(ob->multi, &left);
        if (m == NULL) {
            return;
        }
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        slot *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        TK_ASSERT(s != NULL && s->easy == m->easy_handle);
        CURLcode c = m->data.result; /* read before the handle goes */
        finish(ob, s, c, TK_OB_RESULTS);
        TK_ASSERT(ob->running > 0);
        ob->running--;
        deliver(ob, s);
    }
}

/* Stopping: every running and pending request completes as canceled. */
static void cancel_all(tk_outbound *ob)
{
    for (uint32_t i = 0; i < ob->cap; i++) {
        slot *s = &ob->slots[i];
        if (s->easy != NULL) {
            finish(ob, s, CURLE_ABORTED_BY_CALLBACK, TK_OB_CANCELED);
            ob->running--;
            deliver(ob, s);
        }
    }
    pthread_mutex_lock(&ob->mu);
    size_t n = ob->pcount;
    uint32_t head = (uint32_t)ob->phead;
    ob->pcount = 0;
    pthread_mutex_unlock(&ob->mu);
    for (size_t k = 0; k < n; k++) {
        slot *s = &ob->slots[ob->pending[(head + k) % ob->cap]];
        finish(ob, s, CURLE_ABORTED_BY_CALLBACK, TK_OB_CANCELED);
        deliver(ob, s);
    }
}

static void *outbound_main(void *arg)
{
    tk_outbound *ob = arg;
    /* Event loop: runs until tk_outbound_stop. */
    for (;;) {
        bool stop = false;
        start_pending(ob, &stop);
        if (stop) {
            cancel_all(ob);
            return NULL;
        }
        int still = 0;
        CURLMcode mc = curl_multi_perform(ob->multi, &still);
        if (mc != CURLM_OK) {
            tk_log_error("outbound_multi", "error=\"%s\"", curl_multi_strerror(mc));
        }
        harvest(ob);
        /* Woken early by curl_multi_wakeup (submit, stop) or socket activity. */
        mc = curl_multi_poll(ob->multi, NULL, 0, TK_OUTBOUND_POLL_MS, NULL);
        if (mc != CURLM_OK) {
            tk_log_error("outbound_poll", "error=\"%s\"", curl_multi_strerror(mc));
            usleep(10000); /* never spin on a broken poll */
        }
    }
}

/* ---- Public API -------------------------------------------------------------------------------
 */

int tk_outbound_global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return TK_E_INVALID;
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    /* CURLOPT_PROTOCOLS_STR needs 7.85; TLS and a thread-safe resolver are
     * what make one thread with many transfers safe. */
    if (vi->version_num < 0x075500 || !(vi->features & CURL_VERSION_SSL) ||
        !(vi->features & CURL_VERSION_ASYNCHDNS)) {
        tk_log_error("outbound_curl", "version=%s ssl=%s asyncdns=%s", vi->version,
                     (vi->features & CURL_VERSION_SSL) ? "yes" : "no",
                     (vi->features & CURL_VERSION_ASYNCHDNS) ? "yes" : "no");
        curl_global_cleanup();
        return TK_E_INVALID;
    }
    return 0;
}

void tk_outbound_global_cleanup(void)
{
    curl_global_cleanup();
}

static void free_outbound(tk_outbound *ob)
{
    for (unsigned w = 0; ob->done != NULL && w < ob->cfg.nworkers; w++) {
        if (ob->done[w].efd >= 0) {
            close(ob->done[w].efd);
        }
        pthread_mutex_destroy(&ob->done[w].mu);
        free(ob->done[w].idx);
    }
    for (unsigned i = 0; ob->slots != NULL && i < ob->cap; i++) {
        free(ob->slots[i].rbody); /* completions never drained */
        free(ob->slots[i].rhdr);
    }
    if (ob->multi != NULL) {
        curl_multi_cleanup(ob->multi);
    }
    free(ob->done);
    free(ob->slots);
    free(ob->free_idx);
    free(ob->pending);
    pthread_mutex_destroy(&ob->mu);
    free(ob);
}

static int init_done(tk_outbound *ob)
{
    unsigned n = ob->cfg.nworkers;
    ob->done = calloc(n > 0 ? n : 1, sizeof *ob->done);
    if (ob->done == NULL) {
        return -ENOMEM;
    }
    for (unsigned w = 0; w < n; w++) {
        ob->done[w].efd = -1;
        pthread_mutex_init(&ob->done[w].mu, NULL);
    }
    for (unsigned w = 0; w < n; w++) {
        ob->done[w].idx = calloc(ob->cap, sizeof(uint32_t));
        if (ob->done[w].idx == NULL) {
            return -ENOMEM;
        }
        ob->done[w].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ob->done[w].efd < 0) {
            return -errno;
        }
    }
    return 0;
}

static int check_cfg(tk_outbound_cfg *c)
{
    c->queue_cap = c->queue_cap != 0 ? c->queue_cap : TK_OUTBOUND_QUEUE_DEFAULT;
    c->max_transfers = c->max_transfers != 0 ? c->max_transfers : TK_OUTBOUND_TRANSFERS_DEFAULT;
    c->timeout_ms = c->timeout_ms != 0 ? c->timeout_ms : TK_OUTBOUND_TIMEOUT_MS_DEFAULT;
    c->connect_timeout_ms =
        c->connect_timeout_ms != 0 ? c->connect_timeout_ms : TK_OUTBOUND_CONNECT_MS_DEFAULT;
    c->max_bytes = c->max_bytes != 0 ? c->max_bytes : TK_OUTBOUND_BODY_DEFAULT;
    bool ok = c->nworkers <= TK_WORKERS_MAX && c->queue_cap <= TK_OUTBOUND_QUEUE_MAX &&
              c->max_transfers <= TK_OUTBOUND_TRANSFERS_MAX &&
              c->timeout_ms <= TK_OUTBOUND_TIMEOUT_MS_MAX &&
              c->connect_timeout_ms <= c->timeout_ms && c->max_bytes <= TK_OUTBOUND_BODY_MAX;
    return ok ? 0 : -EINVAL;
}

int tk_outbound_start(const tk_outbound_cfg *cfg, tk_outbound **out)
{
    tk_outbound_cfg c = *cfg;
    if (check_cfg(&c) != 0) {
        return -EINVAL;
    }
    tk_outbound *ob = calloc(1, sizeof *ob);
    if (ob == NULL) {
        return -ENOMEM;
    }
    ob->cfg = c;
    ob->cap = c.queue_cap;
    pthread_mutex_init(&ob->mu, NULL);
    ob->slots = calloc(ob->cap, sizeof *ob->slots);
    ob->free_idx = calloc(ob->cap, sizeof *ob->free_idx);
    ob->pending = calloc(ob->cap, sizeof *ob->pending);
    ob->multi = curl_multi_init();
    bool oom = ob->slots == NULL || ob->free_idx == NULL || ob->pending == NULL;
    int rc = oom ? -ENOMEM : ob->multi == NULL ? TK_E_INVALID : init_done(ob);
    for (uint32_t i = 0; rc == 0 && i < ob->cap; i++) {
        ob->free_idx[ob->nfree++] = ob->cap - 1 - i; /* slot 0 is taken first */
    }
    if (rc == 0) {
        /* Transfers beyond max_transfers wait in our FIFO, not curl's. */
        curl_multi_setopt(ob->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c.max_transfers);
        rc = -pthread_create(&ob->thread, NULL, outbound_main, ob);
    }
    if (rc != 0) {
        free_outbound(ob);
        return rc;
    }
    ob->started = true;
    *out = ob;
    return 0;
}

/* A header value or URL: printable ASCII, no CR/LF, within cap. */
static int copy_value(char *dst, size_t cap, const char *v, bool allow_space)
{
    if (v == NULL) {
        dst[0] = '\0';
        return 0;
    }
    size_t n = strlen(v);
    if (n >= cap) {
        return TK_E_TOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f || (!allow_space && v[i] == ' ')) {
            return TK_E_INVALID;
        }
    }
    memcpy(dst, v, n + 1);
    return 0;
}

static int check_req(const tk_outbound *ob, const tk_outbound_req *req)
{
    if (req->url == NULL || req->purpose >= TK_OB_PURPOSES || req->method > TK_OB_POST) {
        return TK_E_INVALID;
    }
    if (strncasecmp(req->url, "https://", 8) != 0 && !is_http(req->url)) {
        return TK_E_INVALID;
    }
    if (req->cb == NULL && req->worker >= ob->cfg.nworkers) {
        return TK_E_INVALID;
    }
    if (req->method == TK_OB_POST && req->body_len > TK_OUTBOUND_REQ_BODY_MAX) {
        return TK_E_TOOBIG;
    }
    return 0;
}

/* Copy the request into a slot (outside the lock: the slot is ours). */
static int fill_slot(const tk_outbound *ob, slot *s, const tk_outbound_req *req)
{
    s->req = *req;
    int rc = copy_value(s->url, sizeof s->url, req->url, false);
    rc = rc != 0 ? rc : copy_value(s->ctype, sizeof s->ctype, req->content_type, true);
    rc = rc != 0 ? rc : copy_value(s->accept, sizeof s->accept, req->accept, true);
    rc = rc != 0 ? rc : copy_value(s->auth, sizeof s->auth, req->authorization, true);
    if (rc == 0 && req->method == TK_OB_POST && req->body_len > 0) {
        memcpy(s->body, req->body, req->body_len);
    }
    s->req.url = s->req.body = s->req.content_type = s->req.accept = s->req.authorization = NULL;
    s->cap = req->max_bytes != 0 && req->max_bytes < ob->cfg.max_bytes ? req->max_bytes
                                                                       : ob->cfg.max_bytes;
    s->timeout_ms = req->timeout_ms != 0 && req->timeout_ms < ob->cfg.timeout_ms
                        ? req->timeout_ms
                        : ob->cfg.timeout_ms;
    return rc;
}

int tk_outbound_submit(tk_outbound *ob, const tk_outbound_req *req)
{
    int rc = check_req(ob, req);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&ob->mu);
    uint32_t i = !ob->stopping && ob->nfree > 0 ? ob->free_idx[--ob->nfree] : NO_SLOT;
    pthread_mutex_unlock(&ob->mu);
    if (i == NO_SLOT) {
        STAT_ADD(ob, requests[req->purpose][TK_OB_QUEUE_FULL], 1);
        tk_log_warn("outbound_queue_full", "purpose=%s", tk_outbound_purpose_name(req->purpose));
        return TK_E_QUEUEFULL;
    }
    slot *s = &ob->slots[i];
    rc = fill_slot(ob, s, req);
    if (rc != 0) {
        tk_cleanse(s->auth, sizeof s->auth);
        put_free(ob, s);
        return rc;
    }
    pthread_mutex_lock(&ob->mu);
    TK_ASSERT(ob->pcount < ob->cap);
    ob->pending[(ob->phead + ob->pcount) % ob->cap] = i;
    ob->pcount++;
    curl_multi_wakeup(ob->multi); /* under the lock: stop cannot free the multi meanwhile */
    pthread_mutex_unlock(&ob->mu);
    return 0;
}

int tk_outbound_event_fd(const tk_outbound *ob, unsigned worker)
{
    TK_ASSERT(worker < ob->cfg.nworkers);
    return ob->done[worker].efd;
}

size_t tk_outbound_drain(tk_outbound *ob, unsigned worker, const tk_outbound_resp **out, size_t max)
{
    TK_ASSERT(worker < ob->cfg.nworkers);
    done_ring *dr = &ob->done[worker];
    pthread_mutex_lock(&dr->mu);
    size_t n = dr->count < max ? dr->count : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = &ob->slots[dr->idx[(dr->head + i) % ob->cap]].resp;
    }
    dr->head = (dr->head + n) % ob->cap;
    dr->count -= n;
    pthread_mutex_unlock(&dr->mu);
    return n;
}

void tk_outbound_release(tk_outbound *ob, const tk_outbound_resp *resp)
{
    slot *s = (slot *)((const char *)resp - offsetof(slot, resp));
    put_free(ob, s);
}

void tk_outbound_stats_get(const tk_outbound *ob, tk_outbound_stats *out)
{
    const uint64_t *src = (const uint64_t *)&ob->stats;
    uint64_t *dst = (uint64_t *)out;
    _Static_assert(sizeof(tk_outbound_stats) % sizeof(uint64_t) == 0, "stats are all u64");
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) {
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
}

void tk_outbound_stop(tk_outbound *ob)
{
    if (ob == NULL) {
        return;
    }
    pthread_mutex_lock(&ob->mu);
    ob->stopping = true;
    curl_multi_wakeup(ob->multi);
    pthread_mutex_unlock(&ob->mu);
    if (ob->started) {
        pthread_join(ob->thread, NULL);
    }
    free_outbound(ob);
}
