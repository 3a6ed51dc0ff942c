/*
 * One transfer of the outbound thread (outbound_int.h): the libcurl easy
 * handle with every safety rule set (the caller chooses none of them), the
 * body and header callbacks with their caps, and the classification, count
 * and log line of the result. The pool and the thread are outbound.c's.
 */
#include "outbound_int.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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

/* public_only: every socket libcurl opens goes through here, with the
 * address it is about to connect to (after resolution, whatever the name
 * resolved to last time), so a refused address never sees a byte. */
static curl_socket_t open_public(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    slot *s = arg;
    (void)purpose;
    const uint8_t *bytes = NULL;
    if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) {
        bytes = (const uint8_t *)&((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr;
    } else if (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) {
        bytes = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr;
    }
    if (bytes == NULL || !tk_outbound_addr_public(a->family, bytes)) {
        s->refused_address = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
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
int ob_setup(tk_outbound *ob, slot *s)
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
    if (s->req.public_only) {
        OPT(CURLOPT_OPENSOCKETFUNCTION, open_public);
        OPT(CURLOPT_OPENSOCKETDATA, s);
        OPT(CURLOPT_PROXY, ""); /* a proxy's address is not the peer's: never one */
        /* All transfers share one multi handle and its connection pool: a
         * kept-alive connection another transfer opened to a private host
         * (an IdP's jwks_uri) would be reused without a socket being opened,
         * so without open_public ever judging its address. Always our own
         * connections, and none left behind for another transfer. */
        OPT(CURLOPT_FRESH_CONNECT, 1L);
        OPT(CURLOPT_FORBID_REUSE, 1L);
    }
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
    while (b < TK_OB_DUR_BUCKETS && ms > ob_dur_bound_ms[b]) {
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
void ob_finish(tk_outbound *ob, slot *s, CURLcode c, uint8_t forced)
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
    if (forced == TK_OB_RESULTS && s->refused_address && r->result != TK_OB_OK) {
        r->result = TK_OB_REFUSED_ADDRESS;
    }
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
    } else if (r->result == TK_OB_REFUSED_ADDRESS) {
        set_error(r, "the host resolved to an address that is not public (refused)");
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
