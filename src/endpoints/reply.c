/*
 * What every handler writes its answer with: the response helpers, the
 * client-authentication 401, and the worker's per-request read txn.
 *
 * The one idea: this file sits below the handlers and the dispatcher. It
 * calls down into http/ (response framing), json and the store, and never
 * back up into a handler or app.c, so a handler file depends on this file
 * and on nothing that depends on it.
 */
#include "endpoints_int.h"

#include "tokend/clock.h"
#include "tokend/log.h"

#include <string.h>

void ep_reply(ep_req *r, int status, const char *ctype, const char *extra, const char *body,
              size_t len)
{
    size_t before = r->out->len;
    int rc = tk_http_respond(r->out, status, ctype, extra, body, len);
    if (rc != 0) {
        tk_log_error("response_too_big", "status=%d len=%zu", status, len);
        status = 500;
        len = 0;
        rc = tk_http_respond(r->out, status, NULL, NULL, "", 0);
        TK_ASSERT(rc == 0); /* the server keeps room for one response */
    }
    if (r->head) {
        TK_ASSERT(r->out->len >= before + len);
        r->out->len -= len; /* the body is last: drop it, keep Content-Length */
    }
    r->status = status;
}

void ep_reply_error(ep_req *r, int status, const char *code, const char *extra)
{
    tk_json j;
    char buf[96];
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "error", code);
    tk_json_obj_end(&j);
    TK_ASSERT(tk_json_finish(&j) == 0);
    ep_reply(r, status, "application/json", extra, j.buf, j.len);
}

void ep_reply_json(ep_req *r, int status, const tk_json *j)
{
    if (tk_json_finish(j) != 0) {
        tk_log_error("response_too_big", "endpoint=%s", r->route->label);
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    ep_reply(r, status, "application/json", NULL, j->buf, j->len);
}

void ep_reply_unavailable(ep_req *r)
{
    ep_reply_error(r, 503, "temporarily_unavailable", "Retry-After: 1\r\n");
}

bool ep_cluster_fresh(ep_req *r, uint64_t *stale)
{
    if (TK_LIKELY(tk_cluster_fresh(r->w->app->cfg.cluster, tk_mono_ns()))) {
        return true;
    }
    ep_add(stale, 1);
    ep_reply_unavailable(r);
    return false;
}

/* WWW-Authenticate: Basic realm="<issuer>", error="invalid_client" (RFC
 * 7617 §2; the error parameter as RFC 6750 §3 and other authorization
 * servers put it). The issuer is a checked URL; '"' and '\' are escaped
 * anyway, as a quoted-string needs (RFC 9110 §5.6.4). */
static void basic_challenge(const char *issuer, char *out, size_t cap)
{
    static const char head[] = "WWW-Authenticate: Basic realm=\"";
    static const char tail[] = "\", error=\"invalid_client\"\r\n";
    const char *realm = issuer[0] != '\0' ? issuer : "tokend";
    size_t n = sizeof head - 1;
    TK_ASSERT(cap >= 2 * TK_URL_MAX + sizeof head + sizeof tail);
    memcpy(out, head, n);
    for (size_t i = 0; realm[i] != '\0' && i < TK_URL_MAX; i++) {
        if (realm[i] == '"' || realm[i] == '\\') {
            out[n++] = '\\';
        }
        out[n++] = realm[i];
    }
    memcpy(out + n, tail, sizeof tail); /* with its NUL */
}

void ep_reply_invalid_client(ep_req *r)
{
    if (r->auth_via == EP_VIA_FORM) {
        ep_reply_error(r, 401, "invalid_client", NULL);
        return;
    }
    char hdr[2 * TK_URL_MAX + 96];
    basic_challenge(r->w->app->cfg.issuer, hdr, sizeof hdr);
    ep_reply_error(r, 401, "invalid_client", hdr);
}

tk_txn *ep_txn(ep_worker *w)
{
    if (TK_LIKELY(w->txn_ok)) {
        return w->txn;
    }
    int rc = tk_store_read_renew(w->txn);
    if (rc != 0) {
        tk_log_error("store_read", "worker=%u err=%s", w->id, tk_strerror(rc));
        return NULL;
    }
    w->txn_ok = true;
    w->now = tk_now();
    return w->txn;
}

void ep_log_id(tk_slice id, char out[65])
{
    size_t n = id.len < 64 ? id.len : 64;
    for (size_t i = 0; i < n; i++) {
        char c = id.p[i];
        bool plain = c > ' ' && c < 0x7f && c != '"' && c != '=' && c != '\\';
        out[i] = plain ? c : '?';
    }
    out[n] = '\0';
}
