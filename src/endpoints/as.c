/*
 * What the authorization server's handlers share: the deferred answer
 * (submit the ops, keep the answer, send it once the commit is durable and
 * its outcome is OK), the signed-in browser behind a request's cookie, the
 * CSRF tokens, and the 303 redirect.
 *
 * A deferred answer waits in one of the worker's TK_AS_PENDING_SLOTS slots,
 * keyed by the request's cookie. A connection that goes away before its
 * commit completes gets no answer: the server's dropped hook frees the slot
 * then (ep_as_dropped). A slot older than TK_AS_PENDING_STALE seconds is
 * free again as well, a backstop that no correct path relies on.
 */
#include "endpoints_int.h"

#include "tokend/core.h"
#include "tokend/crypto.h"
#include "tokend/idp.h"
#include "tokend/log.h"
#include "tokend/oauth_cookie.h"
#include "tokend/oauth_uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ep_as_slot *take_slot(ep_worker *w, uint64_t cookie)
{
    if (w->as_slots == NULL) {
        w->as_slots = calloc(TK_AS_PENDING_SLOTS, sizeof *w->as_slots);
        if (w->as_slots == NULL) {
            return NULL;
        }
    }
    for (unsigned i = 0; i < TK_AS_PENDING_SLOTS; i++) {
        ep_as_slot *s = &w->as_slots[i];
        if (s->at == 0 || w->now - s->at > TK_AS_PENDING_STALE) {
            s->at = w->now > 0 ? w->now : 1;
            s->cookie = cookie;
            return s;
        }
    }
    return NULL;
}

int ep_as_park(ep_worker *w, uint64_t cookie, tk_commit_req *creq, int status, const char *ctype,
               tk_slice extra, tk_slice body)
{
    tk_committer *c = w->app->cfg.committer;
    ep_as_slot *s = NULL;
    if (extra.len + body.len <= TK_AS_PENDING_MAX) {
        s = take_slot(w, cookie);
    }
    int rc = TK_E_QUEUEFULL;
    if (s != NULL) {
        s->status = status;
        s->ctype = ctype;
        s->extra_len = (uint16_t)extra.len;
        s->body_len = (uint16_t)body.len;
        if (extra.len > 0) {
            memcpy(s->buf, extra.p, extra.len);
        }
        if (body.len > 0) {
            memcpy(s->buf + extra.len, body.p, body.len);
        }
        creq->worker = w->id;
        creq->cookie = cookie;
        rc = c != NULL ? tk_committer_submit(c, creq) : TK_E_STORE;
    }
    if (rc != 0) {
        tk_commit_req_release(creq);
        if (s != NULL) {
            ep_as_free(s);
        }
    }
    return rc;
}

bool ep_as_defer(ep_req *r, tk_commit_req *creq, int status, const char *ctype, tk_slice extra,
                 tk_slice body, bool html)
{
    int rc = ep_as_park(r->w, r->cookie, creq, status, ctype, extra, body);
    if (rc != 0) {
        tk_log_warn("as_unavailable", "endpoint=%s err=%s", r->route->label, tk_strerror(rc));
        if (html) {
            ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        } else {
            ep_reply_unavailable(r);
        }
        return false;
    }
    r->deferred = true;
    return true;
}

ep_as_slot *ep_as_slot_of(ep_req *r)
{
    ep_worker *w = r->w;
    for (unsigned i = 0; w->as_slots != NULL && i < TK_AS_PENDING_SLOTS; i++) {
        ep_as_slot *s = &w->as_slots[i];
        if (s->at != 0 && s->cookie == r->cookie) {
            return s;
        }
    }
    tk_log_error("as_slot_lost", "endpoint=%s", r->route->label);
    ep_reply_error(r, 500, "server_error", NULL);
    return NULL;
}

void ep_as_answer(ep_req *r, ep_as_slot *s)
{
    char extra[TK_AS_PENDING_MAX + 1];
    memcpy(extra, s->buf, s->extra_len);
    extra[s->extra_len] = '\0';
    ep_reply(r, s->status, s->ctype, s->extra_len > 0 ? extra : NULL, s->buf + s->extra_len,
             s->body_len);
    ep_as_free(s);
}

void ep_as_page_done(ep_req *r, const tk_server_done *done, bool check_outcome, const char *refused)
{
    ep_as_slot *s = ep_as_slot_of(r);
    if (s == NULL) {
        return;
    }
    bool not_ok = check_outcome && ep_as_outcome(done) != TK_OUT_OK;
    if (done->result != 0 || (not_ok && refused == NULL)) {
        ep_as_free(s);
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    if (not_ok) {
        ep_as_free(s);
        ep_reply_error_page(r, 400, "invalid_request", refused);
        return;
    }
    ep_as_answer(r, s);
}

void ep_as_dropped(ep_worker *w, uint64_t cookie)
{
    for (unsigned i = 0; w->as_slots != NULL && i < TK_AS_PENDING_SLOTS; i++) {
        ep_as_slot *s = &w->as_slots[i];
        if (s->at != 0 && s->cookie == cookie) {
            ep_as_free(s);
            return;
        }
    }
}

void ep_as_free(ep_as_slot *s)
{
    tk_cleanse(s->buf, (size_t)s->extra_len + s->body_len); /* tokens, codes */
    s->at = 0;
    s->cookie = 0;
}

int ep_as_browser(ep_req *r, tk_txn *txn, uint8_t cookie_hash[TK_HASH_LEN], tk_browser_rec *browser,
                  tk_slice *sub)
{
    tk_slice hdr = tk_http_header_get(r->http, "Cookie");
    tk_slice value;
    if (hdr.p == NULL || tk_oauth_cookie_find(hdr, &value) != 0) {
        return TK_E_NOTFOUND; /* none, malformed, or planted twice: signed out */
    }
    tk_sha256(value.p, value.len, cookie_hash);
    int rc = tk_store_get_browser(txn, cookie_hash, browser);
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return TK_E_NOTFOUND;
    }
    if (rc != 0) {
        return TK_E_STORE;
    }
    if (browser->exp <= r->w->now) {
        return TK_E_NOTFOUND;
    }
    tk_session_rec s;
    rc = tk_store_get_session(txn, browser->sid, &s);
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return TK_E_NOTFOUND;
    }
    if (rc != 0) {
        return TK_E_STORE;
    }
    bool active =
        s.state == TK_SESSION_ACTIVE && s.holds == 0 && (s.expires == 0 || r->w->now < s.expires);
    *sub = s.sub;
    return active ? 0 : TK_E_NOTFOUND; /* a session that ended signs the browser out */
}

void ep_as_csrf(const uint8_t key[TK_HASH_LEN], tk_slice request, const char *purpose, char *out)
{
    uint8_t buf[TK_HASH_LEN + TK_ID_MAX + 16];
    size_t plen = strlen(purpose);
    TK_ASSERT(request.len <= TK_ID_MAX && plen <= 16);
    memcpy(buf, key, TK_HASH_LEN);
    memcpy(buf + TK_HASH_LEN, purpose, plen);
    memcpy(buf + TK_HASH_LEN + plen, request.p, request.len);
    uint8_t h[TK_HASH_LEN];
    tk_sha256(buf, TK_HASH_LEN + plen + request.len, h);
    TK_ASSERT(tk_b64url_encode(h, sizeof h, out, TK_SECRET_B64_LEN + 1) == 0);
    tk_cleanse(buf, sizeof buf);
}

bool ep_as_csrf_ok(const uint8_t key[TK_HASH_LEN], tk_slice request, const char *purpose,
                   tk_slice presented)
{
    char want[TK_SECRET_B64_LEN + 1];
    ep_as_csrf(key, request, purpose, want);
    bool ok = presented.len == TK_SECRET_B64_LEN && tk_ct_equal(want, presented.p, presented.len);
    tk_cleanse(want, sizeof want);
    return ok;
}

size_t ep_as_location(char *out, size_t cap, tk_slice url, const char *extra)
{
    size_t elen = extra != NULL ? strlen(extra) : 0;
    if (memchr(url.p, '\r', url.len) != NULL || memchr(url.p, '\n', url.len) != NULL ||
        10 + url.len + 2 + elen + 1 > cap) {
        return 0;
    }
    memcpy(out, "Location: ", 10);
    memcpy(out + 10, url.p, url.len);
    memcpy(out + 10 + url.len, "\r\n", 2);
    if (elen > 0) {
        memcpy(out + 12 + url.len, extra, elen);
    }
    out[12 + url.len + elen] = '\0';
    return 12 + url.len + elen;
}

void ep_as_see_other(ep_req *r, tk_slice location, const char *extra)
{
    char hdr[TK_AS_PENDING_MAX];
    size_t n = ep_as_location(hdr, sizeof hdr, location, extra);
    if (n == 0) {
        ep_reply_error_page(r, 500, "server_error", "The redirect does not fit.");
        return;
    }
    ep_reply(r, 303, NULL, hdr, "", 0);
}

int ep_as_secret(char out[TK_SECRET_B64_LEN + 1], uint8_t hash[TK_HASH_LEN])
{
    uint8_t raw[32];
    int rc = tk_random_bytes(raw, sizeof raw);
    if (rc == 0) {
        rc = tk_b64url_encode(raw, sizeof raw, out, TK_SECRET_B64_LEN + 1);
    }
    tk_cleanse(raw, sizeof raw);
    if (rc == 0) {
        tk_sha256(out, TK_SECRET_B64_LEN, hash);
    }
    return rc;
}

const tk_resource *ep_as_resource(const ep_worker *w, tk_slice id)
{
    size_t n = tk_resources_count(w->res);
    for (size_t i = 0; i < n; i++) {
        const tk_resource *res = tk_resources_at(w->res, i);
        if (tk_slice_eq(res->id, id)) {
            return res;
        }
    }
    return NULL;
}

int ep_as_grant_covers(tk_txn *txn, tk_slice sid, tk_slice sub, tk_slice client, tk_slice resource,
                       tk_slice scope, bool *covers)
{
    *covers = false;
    if (sub.len > TK_AUD_MAX || client.len > TK_AUD_MAX || resource.len > TK_AUD_MAX) {
        return 0;
    }
    /* The consent of this user at this IdP (the store keys it by the
     * session's issuer too: another IdP's user of the same sub is someone
     * else). No session: nothing is covered. */
    tk_session_rec s;
    int src = tk_store_get_session(txn, sid, &s);
    if (src == TK_E_NOTFOUND || src == TK_E_CORRUPT || s.issuer.len > TK_URL_MAX) {
        return 0;
    }
    if (src != 0) {
        return TK_E_STORE;
    }
    uint8_t key[TK_HASH_LEN];
    tk_store_consent_key(s.issuer, sub, client, resource, key);
    tk_slice gid;
    int rc = tk_store_get_consent(txn, key, &gid);
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return 0;
    }
    tk_grant_rec g;
    rc = rc == 0 ? tk_store_get_grant(txn, gid, &g) : rc;
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return 0;
    }
    if (rc != 0) {
        return TK_E_STORE;
    }
    *covers = g.state == TK_GRANT_ACTIVE && tk_core_scope_subset(scope, g.scope);
    return 0;
}

int ep_as_code_op(tk_commit_req *creq, tk_slice request, const uint8_t browser[TK_HASH_LEN],
                  uint8_t decision, int64_t now, int64_t code_ttl, char code[TK_SECRET_B64_LEN + 1])
{
    TK_ASSERT(creq->nops < TK_OPS_PER_REQ);
    tk_op *op = &creq->ops[creq->nops];
    *op = tk_op_make(TK_OP_CODE_ISSUE, now);
    char gid[TK_ID_MAX + 1];
    int rc = tk_op_id_set(&op->code_issue.request, request);
    if (rc == 0) {
        rc = ep_as_secret(code, op->code_issue.code);
    }
    if (rc == 0) {
        rc = tk_id_new("tkg_", gid, sizeof gid);
    }
    if (rc == 0) {
        rc = tk_op_id_set(&op->code_issue.grant, tk_slice_from_str(gid));
    }
    if (rc != 0) {
        return rc;
    }
    memcpy(op->code_issue.browser, browser, TK_HASH_LEN);
    op->code_issue.decision = decision;
    op->code_issue.code_exp = now + code_ttl;
    creq->nops++;
    return 0;
}

bool ep_as_is_form(tk_slice ct)
{
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t') {
        n++;
    }
    return tk_slice_eq_nocase((tk_slice){ct.p, n}, "application/x-www-form-urlencoded");
}

int ep_as_pending(ep_req *r, tk_txn *txn, tk_slice id, tk_authreq_rec *a)
{
    int rc = tk_store_get_authreq(txn, id, a);
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return TK_E_NOTFOUND;
    }
    if (rc != 0) {
        return TK_E_STORE;
    }
    return a->used_at != 0 || a->exp <= r->w->now ? TK_E_NOTFOUND : 0;
}

bool ep_as_query_pending(ep_req *r, tk_form_field *f, size_t n, tk_txn **txn, tk_authreq_rec *a)
{
    if (tk_form_parse(r->http->query.p, r->http->query.len, f, n) != 0 || !f[0].present) {
        ep_reply_error_page(r, 400, "invalid_request", "no authorization request");
        return false;
    }
    *txn = ep_txn(r->w);
    int rc = *txn != NULL ? ep_as_pending(r, *txn, (tk_slice){f[0].buf, f[0].len}, a) : TK_E_STORE;
    if (rc != 0) {
        ep_reply_error_page(r, rc == TK_E_STORE ? 503 : 400, "invalid_request",
                            "this authorization request expired or was already used");
        return false;
    }
    return true;
}

/* ---- The pre-login cookie ---------------------------------------------------------------- */

tk_slice ep_as_cookie(tk_slice hdr, const char *name)
{
    size_t nl = strlen(name);
    tk_slice found = TK_SLICE_NULL;
    size_t i = 0;
    while (i < hdr.len) { /* each turn moves past one pair */
        while (i < hdr.len && (hdr.p[i] == ' ' || hdr.p[i] == ';')) {
            i++;
        }
        size_t start = i;
        while (i < hdr.len && hdr.p[i] != ';') {
            i++;
        }
        tk_slice pair = {hdr.p + start, i - start};
        if (pair.len > nl && memcmp(pair.p, name, nl) == 0 && pair.p[nl] == '=') {
            if (found.p != NULL) {
                return TK_SLICE_NULL;
            }
            found = (tk_slice){pair.p + nl + 1, pair.len - nl - 1};
        }
    }
    return found;
}

/* The browser's pre-login cookie when it is one we could have set (43
 * base64url characters), else TK_SLICE_NULL. */
static tk_slice prelogin_cookie(ep_req *r)
{
    tk_slice v = ep_as_cookie(tk_http_header_get(r->http, "Cookie"), EP_PRELOGIN_COOKIE);
    bool ok = v.len == TK_SECRET_B64_LEN;
    for (size_t i = 0; ok && i < v.len; i++) {
        char c = v.p[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_';
    }
    return ok ? v : TK_SLICE_NULL;
}

int ep_as_prelogin(ep_req *r, uint8_t hash[TK_HASH_LEN], char *setc, size_t cap)
{
    char value[TK_SECRET_B64_LEN + 1];
    tk_slice v = prelogin_cookie(r);
    if (v.p != NULL) {
        memcpy(value, v.p, v.len);
        value[v.len] = '\0';
        tk_sha256(value, v.len, hash);
    } else {
        int rc = ep_as_secret(value, hash);
        if (rc != 0) {
            return rc;
        }
    }
    int n = snprintf(setc, cap,
                     "Set-Cookie: " EP_PRELOGIN_COOKIE "=%s; Path=/; Max-Age=%lld; Secure; "
                     "HttpOnly; SameSite=Lax\r\n",
                     value, (long long)r->w->app->cfg.authorize_ttl);
    tk_cleanse(value, sizeof value);
    return n > 0 && (size_t)n < cap ? 0 : TK_E_TOOBIG;
}

bool ep_as_prelogin_ok(ep_req *r, const tk_authreq_rec *a)
{
    tk_slice v = prelogin_cookie(r);
    uint8_t h[TK_HASH_LEN];
    tk_sha256(v.p != NULL ? v.p : "", v.len, h); /* no cookie: the hash of "", never kept */
    return a->has_prelogin && v.p != NULL && tk_ct_equal(h, a->prelogin, TK_HASH_LEN);
}

/* ---- Several organisations ---------------------------------------------------------------- */

int ep_as_org_check(ep_worker *w, tk_txn *txn, tk_slice sid, tk_slice resource, tk_slice scope,
                    ep_as_org *out)
{
    out->verdict = TK_ORG_OK;
    memcpy(out->iss, "-", 2);
    if (sid.len == 0) {
        return 0;
    }
    tk_session_rec s;
    int rc = tk_store_get_session(txn, sid, &s);
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return 0;
    }
    if (rc != 0) {
        return TK_E_STORE;
    }
    if (s.issuer.len == 0) {
        return 0;
    }
    size_t n = s.issuer.len < TK_IDP_ISS_MAX ? s.issuer.len : TK_IDP_ISS_MAX;
    for (size_t i = 0; i < n; i++) { /* printable, no quote: safe inside iss="…" */
        char c = s.issuer.p[i];
        out->iss[i] = c > ' ' && c < 0x7f && c != '"' && c != '\\' ? c : '?';
    }
    out->iss[n] = '\0';
    const tk_idp_issuer *is = tk_idp_find(w->idp, s.issuer);
    if (is == NULL) {
        return 0;
    }
    tk_core_org org = {.limit_resources = is->limit_resources,
                       .limit_scopes = is->limit_scopes,
                       .resources = {is->allowed_resources, is->allowed_resources_len},
                       .scopes = {is->allowed_scopes, is->allowed_scopes_len}};
    out->verdict = (int)tk_core_org_check(&org, resource, scope);
    return 0;
}

const char *ep_as_org_why(int verdict)
{
    return verdict == TK_ORG_RESOURCE
               ? "users of the organisation you signed in with may not grant access to this "
                 "resource"
               : "users of the organisation you signed in with may not grant a requested scope";
}

void ep_as_org_refuse(ep_req *r, const ep_as_org *o, tk_slice client, tk_slice resource,
                      tk_slice redirect, tk_slice state)
{
    char sc[65], sr[65];
    ep_log_id(client, sc);
    ep_log_id(resource, sr);
    tk_log_info("org_refused", "endpoint=%s iss=\"%s\" client=%s resource=%s why=%s",
                r->route->label, o->iss, sc, sr,
                o->verdict == TK_ORG_RESOURCE ? "resource" : "scope");
    const char *i = r->w->app->cfg.issuer;
    tk_oauth_err e = {TK_OAUTH_ACCESS_DENIED, ep_as_org_why(o->verdict)};
    char url[TK_AS_PENDING_MAX];
    size_t n;
    if (tk_oauth_authz_error_url(url, sizeof url, redirect, &e, state,
                                 (tk_slice){i, strnlen(i, TK_URL_MAX)}, &n) != 0) {
        ep_reply_error_page(r, 403, "access_denied", e.description);
        return;
    }
    ep_as_see_other(r, (tk_slice){url, n}, NULL);
}
