/*
 * POST /token (RFC 6749 §3.2): authorization_code (with PKCE), refresh_token
 * (rotation with a reuse window) and token exchange (RFC 8693: a delegated
 * child for a sub-agent). client_credentials, password and implicit are
 * refused with the reason (src/oauth: agents act for a person).
 *
 * Client authentication: a confidential client by client_secret_basic or
 * client_secret_post, a public client (registered with
 * token_endpoint_auth_method none) by client_id alone (core/as.c). The
 * worker checks what cannot change before the commit (the code's client,
 * redirect URI, PKCE challenge and resource; the refresh token's client;
 * the subject token and the delegation permission), mints the new tokens,
 * and submits one op that decides what can change (a code used twice, a
 * refresh token rotated meanwhile) in the write txn. The answer goes out
 * only once the tokens are durable; an op that finds the code or refresh
 * token already used answers invalid_grant (and has revoked the family).
 *
 * RFC 8705: a client registered for a certificate authenticates with it
 * (core.c), and over a TLS connection with a client certificate every new
 * access token is bound to that certificate (cnf.x5t#S256).
 */
#include "endpoints_int.h"

#include "tokend/clock.h"
#include "tokend/core.h"
#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/oauth_pkce.h"
#include "tokend/oauth_request.h"

#include <stdio.h>
#include <string.h>

static _Thread_local tk_oauth_token_req treq;

static void token_error(ep_req *r, int status, enum tk_oauth_code code, const char *desc)
{
    tk_oauth_err e = {code, desc};
    tk_json j;
    tk_json_init(&j, r->w->scratch, sizeof r->w->scratch);
    TK_ASSERT(tk_oauth_error_json(&j, &e) == 0);
    ep_reply(r, status, "application/json", NULL, j.buf, j.len);
}

/* The caller: Basic, or client_id (+ client_secret) in the form. */
static bool authenticate(ep_req *r, tk_txn *txn, tk_client_rec *c, tk_slice *client_id)
{
    ep_worker *w = r->w;
    /* Room for a Client ID Metadata Document URL; any other id keeps the
     * limit of w->client_id (cimd.c maps a URL to its store key). */
    static _Thread_local char presented[TK_CIMD_URL_MAX + 1];
    tk_form_field f[2] = {
        {.name = "client_id", .buf = presented, .cap = sizeof presented},
        {.name = "client_secret", .buf = w->secret, .cap = sizeof w->secret},
    };
    int frc = tk_form_parse(r->http->body.p, r->http->body.len, f, 2);
    char key[TK_CIMD_KEY_LEN + 1];
    tk_slice sid = frc == 0 && f[0].present ? ep_cimd_store_id((tk_slice){presented, f[0].len}, key)
                                            : TK_SLICE_NULL;
    if (frc == 0 && f[0].present && f[0].len >= sizeof w->client_id && sid.p != key) {
        frc = TK_E_TOOBIG; /* not a metadata URL: as long as it was always refused */
    }
    if (frc == 0 && f[0].present) {
        if (sid.p == NULL) {
            sid = TK_SLICE_LIT(""); /* a bad URL or a raw key: no client (401 below) */
        }
        memcpy(w->client_id, sid.p, sid.len);
        w->client_id[sid.len] = '\0';
        f[0].len = sid.len;
    }
    if (frc != 0) {
        token_error(r, 400, TK_OAUTH_INVALID_REQUEST, "client credentials malformed or repeated");
        return false;
    }
    tk_slice authz = r->http->authorization;
    char bid[TK_ID_MAX + 1], bsecret[TK_CLIENT_SECRET_IN_MAX + 1];
    int brc = authz.len > 0 ? tk_http_basic_auth(authz, bid, sizeof bid, bsecret, sizeof bsecret)
                            : TK_E_NOTFOUND;
    tk_slice secret;
    bool has_secret;
    if (brc != TK_E_NOTFOUND) {
        r->auth_via = EP_VIA_HEADER;
        if (f[1].present || (f[0].present && brc == 0 && strcmp(bid, w->client_id) != 0)) {
            tk_cleanse(w->secret, sizeof w->secret);
            token_error(r, 400, TK_OAUTH_INVALID_REQUEST, "one client authentication method");
            return false;
        }
        if (brc != 0) {
            ep_reply_invalid_client(r);
            return false;
        }
        memcpy(w->client_id, bid, strlen(bid) + 1);
        memcpy(w->secret, bsecret, strlen(bsecret) + 1);
        tk_cleanse(bsecret, sizeof bsecret);
        *client_id = tk_slice_from_str(w->client_id);
        secret = tk_slice_from_str(w->secret);
        has_secret = true;
    } else {
        r->auth_via = f[0].present ? EP_VIA_FORM : EP_VIA_NONE;
        *client_id = (tk_slice){w->client_id, f[0].len};
        secret = (tk_slice){w->secret, f[1].len};
        has_secret = f[1].present;
        if (!f[0].present) {
            ep_reply_invalid_client(r);
            return false;
        }
    }
    unsigned wait = ep_rl_check(&w->rl, r->http->peer, *client_id, w->now, tk_mono_ms);
    if (wait > 0) { /* too many failed authentications (ratelimit.c) */
        tk_cleanse(w->secret, sizeof w->secret);
        char hdr[40];
        snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", wait);
        ep_reply_error(r, 429, "too_many_requests", hdr);
        return false;
    }
    int rc = tk_core_as_client(txn, *client_id, secret, has_secret, r->http->cert, c);
    tk_cleanse(w->secret, sizeof w->secret);
    if (rc == TK_E_AUTH) {
        char safe[65];
        ep_log_id(*client_id, safe);
        tk_log_info("auth_failed", "endpoint=token client=%s", safe);
        ep_rl_fail(&w->rl, r->http->peer, *client_id, w->now, tk_mono_ms);
        ep_reply_invalid_client(r);
        return false;
    }
    if (rc != 0) {
        ep_reply_unavailable(r);
        return false;
    }
    return true;
}

/* ---- DPoP (RFC 9449 §5) ------------------------------------------------------------- */

/* What this request's DPoP header said: no header (bearer tokens), or a
 * checked proof whose key the new tokens are bound to. */
typedef struct dpop_in {
    bool present;
    ep_dpop_proof proof;
} dpop_in;

/* 400 invalid_dpop_proof, or use_dpop_nonce with the nonce to use (§8). */
static void dpop_answer(ep_req *r, const char *code, const char *desc, const char *extra)
{
    tk_json j;
    tk_json_init(&j, r->w->scratch, sizeof r->w->scratch);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "error", code);
    tk_json_kv_cstr(&j, "error_description", desc);
    tk_json_obj_end(&j);
    TK_ASSERT(tk_json_finish(&j) == 0);
    ep_reply(r, 400, "application/json", extra, j.buf, j.len);
}

static void dpop_error(ep_req *r, const char *desc)
{
    dpop_answer(r, "invalid_dpop_proof", desc, NULL);
}

/* Check the request's proof, if any: htm POST, htu the token endpoint (the
 * issuer + "/token", as the metadata says). Its jti is remembered later, by
 * dpop_record. False: answered 400 invalid_dpop_proof (or use_dpop_nonce). */
static bool dpop_proof(ep_req *r, dpop_in *d)
{
    ep_worker *w = r->w;
    tk_slice hdr;
    memset(d, 0, sizeof *d);
    int h = ep_dpop_header(r->http, &hdr);
    d->present = h == 0;
    if (h > 0) {
        return true;
    }
    if (h < 0) {
        dpop_error(r, "more than one DPoP header");
        return false;
    }
    const char *issuer = w->app->cfg.issuer != NULL ? w->app->cfg.issuer : "";
    char url[TK_URL_MAX + 8];
    size_t n = strlen(issuer);
    n = n > 0 && issuer[n - 1] == '/' ? n - 1 : n;
    ep_dpop_want want = {.htm = TK_SLICE_LIT("POST"),
                         .now = w->now,
                         .nonces = w->app->cfg.dpop_nonce ? w->app->dpop_seen : NULL};
    if (n + 6 > sizeof url) {
        dpop_error(r, "the token endpoint URL is unknown");
        return false;
    }
    memcpy(url, issuer, n);
    memcpy(url + n, "/token", 6);
    if (ep_dpop_url((tk_slice){url, n + 6}, &want.url) != 0) {
        dpop_error(r, "the token endpoint URL is unknown");
        return false;
    }
    const char *why = NULL;
    int rc = ep_dpop_check(hdr, &want, &d->proof, &why);
    if (rc == EP_DPOP_USE_NONCE) {
        char nh[16 + EP_DPOP_NONCE_LEN] = "DPoP-Nonce: ";
        ep_dpop_nonce(w->app->dpop_seen, w->now, nh + 12);
        memcpy(nh + 12 + EP_DPOP_NONCE_LEN, "\r\n", 3);
        dpop_answer(r, "use_dpop_nonce", "send the proof again with the server nonce", nh);
        return false;
    }
    if (rc != EP_DPOP_OK) {
        tk_log_info("dpop_refused", "endpoint=token why=\"%s\"", why);
        dpop_error(r, why);
        return false;
    }
    return true;
}

/* Remember the proof's jti (RFC 9449 §11.1), only once the request is
 * otherwise valid: client authenticated, grant and parameters checked,
 * just before the op is built. A request that fails anyway never takes a
 * slot of the process-wide cache, so nobody can fill it (and so make every
 * DPoP request fail) with requests that cost them nothing: each remembered
 * jti costs a live grant. False: answered 400 invalid_dpop_proof. */
static bool dpop_record(ep_req *r, const dpop_in *d)
{
    if (!d->present) {
        return true;
    }
    ep_worker *w = r->w;
    int rc = ep_dpop_remember(w->app->dpop_seen, d->proof.jti, d->proof.until, w->now);
    if (rc == EP_DPOP_OK) {
        return true;
    }
    const char *why = rc == EP_DPOP_REPLAY ? "the proof's jti was used before"
                                           : "too many recent proofs to remember this one: retry";
    tk_log_info("dpop_refused", "endpoint=token why=\"%s\"", why);
    dpop_error(r, why);
    return false;
}

/* The answer once durable: access token, and refresh token / issued type. */
static void defer_tokens(ep_req *r, tk_commit_req *creq, const char *access, const char *refresh,
                         int64_t expires_in, tk_slice scope, bool exchanged, bool dpop)
{
    char body[1024 + TK_SCOPE_MAX];
    tk_json j;
    tk_json_init(&j, body, sizeof body);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "access_token", access);
    if (exchanged) {
        tk_json_kv_cstr(&j, "issued_token_type", TK_OAUTH_TOKEN_TYPE_ACCESS);
    }
    tk_json_kv_cstr(&j, "token_type", dpop ? "DPoP" : "Bearer"); /* RFC 9449 §5 */
    tk_json_kv_int(&j, "expires_in", expires_in);
    if (scope.len > 0) {
        tk_json_kv_str(&j, "scope", scope);
    }
    if (refresh != NULL && refresh[0] != '\0') {
        tk_json_kv_cstr(&j, "refresh_token", refresh);
    }
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        tk_commit_req_release(creq);
        ep_reply_error(r, 500, "server_error", NULL);
    } else {
        /* RFC 6749 §5.1: Cache-Control: no-store (every answer has it) and Pragma: no-cache. */
        ep_as_defer(r, creq, 200, "application/json", TK_SLICE_LIT("Pragma: no-cache\r\n"),
                    (tk_slice){j.buf, j.len}, false);
    }
    tk_cleanse(body, j.len + 1); /* what the writer wrote: the text and its NUL, never more */
}

/* RFC 8705 §3: a request over TLS with a client certificate gets an access
 * token bound to it (cnf.x5t#S256); any client, whatever it authenticated
 * with. */
static void bind_cert(const ep_req *r, bool *has_cnf, uint8_t cnf[TK_HASH_LEN])
{
    const tk_peer_cert *pc = r->http->cert;
    if (pc != NULL) {
        *has_cnf = true;
        memcpy(cnf, pc->sha256, TK_HASH_LEN);
    }
}

/* Several organisations: the session's issuer still lets its users hold
 * resource with scope (its limits may have been tightened since the grant;
 * a token never reaches past them). Logs the token's issuer either way;
 * false when answered. */
static bool org_allows(ep_req *r, tk_txn *txn, tk_slice client_id, tk_slice sid, tk_slice resource,
                       tk_slice scope, const char *grant)
{
    ep_as_org org;
    if (ep_as_org_check(r->w, txn, sid, resource, scope, &org) != 0) {
        ep_reply_unavailable(r);
        return false;
    }
    char sc[65], ss[65];
    ep_log_id(client_id, sc);
    ep_log_id(sid, ss);
    if (org.verdict != TK_ORG_OK) {
        tk_log_info("org_refused", "endpoint=token grant=%s iss=\"%s\" client=%s sid=%s why=%s",
                    grant, org.iss, sc, ss, org.verdict == TK_ORG_RESOURCE ? "resource" : "scope");
        token_error(r, 400,
                    org.verdict == TK_ORG_RESOURCE ? TK_OAUTH_INVALID_TARGET
                                                   : TK_OAUTH_INVALID_SCOPE,
                    ep_as_org_why(org.verdict));
        return false;
    }
    tk_log_info("token", "grant=%s client=%s sid=%s iss=\"%s\"", grant, sc, ss, org.iss);
    return true;
}

/* A new access token, and a refresh token with it unless refresh is NULL:
 * one draw from the CSPRNG for both. */
static int mint(char access[TK_TOKEN_LEN + 1], uint8_t access_hash[TK_HASH_LEN],
                char refresh[TK_TOKEN_LEN + 1], uint8_t refresh_hash[TK_HASH_LEN])
{
    static const enum tk_secret_kind kinds[] = {TK_SECRET_ACCESS, TK_SECRET_REFRESH};
    char *const out[] = {access, refresh};
    uint8_t *const hash[] = {access_hash, refresh_hash};
    return tk_secrets_new(refresh != NULL ? 2 : 1, kinds, out, hash);
}

static bool allows(const tk_client_rec *c, unsigned grant)
{
    return c->grant_types == 0 || (c->grant_types & grant) != 0; /* 0: added by tokenctl */
}

static void grant_code(ep_req *r, tk_txn *txn, const tk_client_rec *c, tk_slice client_id,
                       const dpop_in *d)
{
    ep_worker *w = r->w;
    const tk_app_cfg *cfg = &w->app->cfg;
    uint8_t hash[TK_HASH_LEN];
    tk_sha256(treq.code, treq.code_len, hash);
    tk_code_rec code;
    int rc = tk_store_get_code(txn, hash, &code);
    if (rc == TK_E_STORE) {
        ep_reply_unavailable(r);
        return;
    }
    if (rc != 0 || !tk_slice_eq(code.client_id, client_id) || code.exp <= w->now) {
        token_error(r, 400, TK_OAUTH_INVALID_GRANT, "the code is unknown, expired or not yours");
        return;
    }
    /* RFC 6749 §4.1.3: required when the authorization request named it, and identical. */
    if (code.redirect_given != 0 && !treq.has_redirect_uri) {
        token_error(r, 400, TK_OAUTH_INVALID_GRANT,
                    "redirect_uri is required: the authorization request named it");
        return;
    }
    if (treq.has_redirect_uri &&
        !tk_slice_eq(tk_slice_from_str(treq.redirect_uri), code.redirect_uri)) {
        token_error(r, 400, TK_OAUTH_INVALID_GRANT, "redirect_uri differs from the authorization");
        return;
    }
    if (treq.has_resource && !tk_slice_eq(tk_slice_from_str(treq.resource), code.resource)) {
        token_error(r, 400, TK_OAUTH_INVALID_TARGET, "resource differs from the authorization");
        return;
    }
    tk_oauth_err err;
    if (tk_oauth_pkce_verify(tk_slice_from_str(treq.code_verifier), code.challenge, &err) != 0) {
        token_error(r, 400, err.code, err.description);
        return;
    }
    if (!org_allows(r, txn, client_id, code.sid, code.resource, code.scope, "code")) {
        return;
    }
    if (!dpop_record(r, d)) {
        return;
    }
    char access[TK_TOKEN_LEN + 1], refresh[TK_TOKEN_LEN + 1] = "";
    tk_commit_req creq = {.nops = 1};
    tk_op *op = &creq.ops[0];
    *op = tk_op_make(TK_OP_CODE_REDEEM, w->now);
    memcpy(op->code_redeem.code, hash, TK_HASH_LEN);
    op->code_redeem.has_refresh = allows(c, TK_OAUTH_GRANT_REFRESH_TOKEN) && c->grant_types != 0;
    op->code_redeem.access_exp = w->now + cfg->access_ttl;
    op->code_redeem.refresh_exp = w->now + cfg->refresh_ttl;
    bind_cert(r, &op->code_redeem.has_cnf, op->code_redeem.cnf);
    op->code_redeem.has_jkt = d->present;
    op->code_redeem.bind_refresh = (c->flags & TK_CLIENT_F_PUBLIC) != 0; /* RFC 9449 §5 */
    memcpy(op->code_redeem.jkt, d->proof.jkt, TK_HASH_LEN);
    rc = mint(access, op->code_redeem.access, op->code_redeem.has_refresh ? refresh : NULL,
              op->code_redeem.refresh);
    if (rc != 0) {
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    char scope[TK_SCOPE_MAX];
    memcpy(scope, code.scope.p, code.scope.len);
    defer_tokens(r, &creq, access, refresh, cfg->access_ttl, (tk_slice){scope, code.scope.len},
                 false, d->present);
    tk_cleanse(access, sizeof access);
    tk_cleanse(refresh, sizeof refresh);
}

static void grant_refresh(ep_req *r, tk_txn *txn, const tk_client_rec *c, tk_slice client_id,
                          const dpop_in *d)
{
    ep_worker *w = r->w;
    const tk_app_cfg *cfg = &w->app->cfg;
    uint8_t hash[TK_HASH_LEN];
    tk_sha256(treq.refresh_token, treq.refresh_token_len, hash);
    tk_token_rec t;
    int rc = tk_core_refresh_check(txn, hash, client_id, w->now, &t);
    if (rc == TK_E_STORE) {
        ep_reply_unavailable(r);
        return;
    }
    if (rc != 0) {
        token_error(r, 400, TK_OAUTH_INVALID_GRANT, "the refresh token is unknown or not yours");
        return;
    }
    /* RFC 9449 §5: a bound refresh token is refreshed only with a proof of
     * the same key (the binding is part of the record: it cannot change). */
    if (t.has_jkt && (!d->present || !tk_ct_equal(t.jkt, d->proof.jkt, TK_HASH_LEN))) {
        dpop_error(r, d->present ? "the proof's key is not the refresh token's"
                                 : "the refresh token is bound to a key: send a DPoP proof");
        return;
    }
    uint64_t mask;
    tk_slice want = treq.has_scope ? tk_slice_from_str(treq.scope) : TK_SLICE_NULL;
    if (tk_core_scope_mask(want, t.scope, &mask) != 0) {
        token_error(r, 400, TK_OAUTH_INVALID_SCOPE, "a refresh may narrow the scope, never widen");
        return;
    }
    if (treq.has_resource && !tk_slice_eq(tk_slice_from_str(treq.resource), t.aud)) {
        token_error(r, 400, TK_OAUTH_INVALID_TARGET, "a refresh keeps the resource");
        return;
    }
    if (!org_allows(r, txn, client_id, t.sid, t.aud, want.len > 0 ? want : t.scope, "refresh")) {
        return;
    }
    if (!dpop_record(r, d)) {
        return;
    }
    char access[TK_TOKEN_LEN + 1], refresh[TK_TOKEN_LEN + 1];
    tk_commit_req creq = {.nops = 1};
    tk_op *op = &creq.ops[0];
    *op = tk_op_make(TK_OP_REFRESH, w->now);
    memcpy(op->refresh.old, hash, TK_HASH_LEN);
    op->refresh.access_exp = w->now + cfg->access_ttl;
    op->refresh.refresh_exp = w->now + cfg->refresh_ttl;
    op->refresh.window = cfg->refresh_reuse_window;
    op->refresh.scope_mask = mask;
    bind_cert(r, &op->refresh.has_cnf, op->refresh.cnf);
    op->refresh.has_jkt = d->present;
    op->refresh.bind_refresh = (c->flags & TK_CLIENT_F_PUBLIC) != 0;
    memcpy(op->refresh.jkt, d->proof.jkt, TK_HASH_LEN);
    rc = mint(access, op->refresh.access, refresh, op->refresh.refresh);
    if (rc != 0) {
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    char scope[TK_SCOPE_MAX];
    tk_slice s = want.len > 0 ? want : t.scope;
    memcpy(scope, s.p, s.len);
    defer_tokens(r, &creq, access, refresh, cfg->access_ttl, (tk_slice){scope, s.len}, false,
                 d->present);
    tk_cleanse(access, sizeof access);
    tk_cleanse(refresh, sizeof refresh);
}

static void grant_exchange(ep_req *r, tk_txn *txn, tk_slice client_id, const dpop_in *d)
{
    ep_worker *w = r->w;
    const tk_app_cfg *cfg = &w->app->cfg;
    if (treq.has_actor_token) {
        token_error(r, 400, TK_OAUTH_INVALID_REQUEST,
                    "actor_token is not supported: the caller is the actor");
        return;
    }
    uint8_t hash[TK_HASH_LEN];
    tk_sha256(treq.subject_token, treq.subject_token_len, hash);
    tk_introspection in;
    if (tk_core_introspect(txn, &w->app->core, hash, w->now, NULL, &in) != 0) {
        ep_reply_unavailable(r);
        return;
    }
    if (!in.active || in.tok.kind != TK_TOKEN_ACCESS) {
        token_error(r, 400, TK_OAUTH_INVALID_GRANT, "subject_token is not an active access token");
        return;
    }
    /* A sender-constrained subject token is exchanged only by its holder: a
     * proof by its own key (RFC 9449: cnf.jkt), and the delegated token is
     * bound to that key too. Any proof would let whoever stole the token
     * re-bind it to a key of theirs through a public delegate. */
    if (in.tok.has_jkt && (!d->present || !tk_ct_equal(in.tok.jkt, d->proof.jkt, TK_HASH_LEN))) {
        dpop_error(r, d->present ? "the proof's key is not the subject token's (cnf.jkt)"
                                 : "the subject token is DPoP-bound: send a proof by its key, "
                                   "the delegated token is bound");
        return;
    }
    /* The same for a certificate-bound one (RFC 8705 §3): only over TLS with the
     * subject token's own client certificate (cnf.x5t#S256), so the delegated
     * token is bound to it too. */
    const tk_peer_cert *pc = r->http->cert;
    if (in.tok.has_cnf && (pc == NULL || !tk_ct_equal(in.tok.cnf_x5t, pc->sha256, TK_HASH_LEN))) {
        token_error(r, 400, TK_OAUTH_INVALID_GRANT,
                    pc == NULL ? "the subject token is certificate-bound: exchange it over TLS "
                                 "with its client certificate, the delegated token is bound"
                               : "the client certificate is not the subject token's "
                                 "(cnf.x5t#S256)");
        return;
    }
    tk_client_rec owner;
    int rc = tk_store_get_client(txn, in.tok.client_id, &owner);
    if (rc != 0 || !tk_core_may_delegate(owner.delegate_to, client_id)) {
        token_error(r, 400, TK_OAUTH_UNAUTHORIZED_CLIENT,
                    "the subject token's client does not permit delegation to this client");
        return;
    }
    unsigned depth = in.nactors > 0 ? in.nactors - 1 : 0;
    if (depth + 1 > w->app->core.max_depth) {
        token_error(r, 400, TK_OAUTH_INVALID_GRANT, "delegation depth exceeded");
        return;
    }
    if ((treq.has_resource && !tk_slice_eq(tk_slice_from_str(treq.resource), in.tok.aud)) ||
        (treq.has_audience && !tk_slice_eq(tk_slice_from_str(treq.audience), in.tok.aud))) {
        token_error(r, 400, TK_OAUTH_INVALID_TARGET,
                    "a delegated token stays on the subject token's resource");
        return;
    }
    uint64_t mask;
    tk_slice want = treq.has_scope ? tk_slice_from_str(treq.scope) : TK_SLICE_NULL;
    if (tk_core_scope_mask(want, in.tok.scope, &mask) != 0) {
        token_error(r, 400, TK_OAUTH_INVALID_SCOPE,
                    "an exchange may narrow the scope, never widen");
        return;
    }
    if (!org_allows(r, txn, client_id, in.tok.sid, in.tok.aud, want.len > 0 ? want : in.tok.scope,
                    "exchange")) {
        return;
    }
    if (!dpop_record(r, d)) {
        return;
    }
    char access[TK_TOKEN_LEN + 1];
    tk_commit_req creq = {.nops = 1};
    tk_op *op = &creq.ops[0];
    *op = tk_op_make(TK_OP_EXCHANGE, w->now);
    memcpy(op->exchange.parent, hash, TK_HASH_LEN);
    TK_ASSERT(tk_op_id_set(&op->exchange.client, client_id) == 0);
    op->exchange.exp = w->now + cfg->access_ttl;
    op->exchange.scope_mask = mask;
    bind_cert(r, &op->exchange.has_cnf, op->exchange.cnf);
    op->exchange.has_jkt = d->present;
    memcpy(op->exchange.jkt, d->proof.jkt, TK_HASH_LEN);
    if (tk_secret_new(TK_SECRET_ACCESS, access, sizeof access, op->exchange.child) != 0) {
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    int64_t exp = op->exchange.exp < in.tok.exp ? op->exchange.exp : in.tok.exp;
    char scope[TK_SCOPE_MAX];
    tk_slice s = want.len > 0 ? want : in.tok.scope;
    memcpy(scope, s.p, s.len);
    defer_tokens(r, &creq, access, NULL, exp - w->now, (tk_slice){scope, s.len}, true, d->present);
    tk_cleanse(access, sizeof access);
}

void ep_token(ep_req *r)
{
    ep_worker *w = r->w;
    if (!ep_as_is_form(r->http->content_type)) {
        token_error(r, 400, TK_OAUTH_INVALID_REQUEST, "expected application/x-www-form-urlencoded");
        return;
    }
    tk_oauth_err err;
    if (tk_oauth_token_parse(r->http->body.p, r->http->body.len, &treq, &err) != 0) {
        token_error(r, 400, err.code, err.description);
        return;
    }
    tk_txn *txn = ep_txn(w);
    if (txn == NULL) {
        ep_reply_unavailable(r);
        return;
    }
    tk_client_rec c;
    tk_slice client_id;
    if (!authenticate(r, txn, &c, &client_id)) {
        return;
    }
    if (c.role != TK_ROLE_AGENT || !allows(&c, treq.grant)) {
        token_error(r, 400, TK_OAUTH_UNAUTHORIZED_CLIENT,
                    "the client did not register this grant type");
        return;
    }
    dpop_in d;
    if (!dpop_proof(r, &d)) {
        return;
    }
    switch (treq.grant) {
    case TK_OAUTH_GRANT_AUTHORIZATION_CODE:
        grant_code(r, txn, &c, client_id, &d);
        break;
    case TK_OAUTH_GRANT_REFRESH_TOKEN:
        grant_refresh(r, txn, &c, client_id, &d);
        break;
    default:
        TK_ASSERT(treq.grant == TK_OAUTH_GRANT_TOKEN_EXCHANGE);
        grant_exchange(r, txn, client_id, &d);
        break;
    }
}

void ep_token_done(ep_req *r, const tk_server_done *done)
{
    ep_as_slot *s = ep_as_slot_of(r);
    if (s == NULL) {
        return;
    }
    if (done->result != 0) {
        ep_as_free(s);
        ep_reply_unavailable(r);
        return;
    }
    uint8_t out = ep_as_outcome(done);
    if (out != TK_OUT_OK) {
        ep_as_free(s);
        if (out == TK_OUT_REPLAYED) {
            tk_log_warn("token_replayed", "worker=%u note=\"grant revoked\"", r->w->id);
        }
        token_error(r, 400, TK_OAUTH_INVALID_GRANT,
                    out == TK_OUT_REPLAYED ? "already used: everything issued from it was revoked"
                                           : "the grant is no longer valid");
        return;
    }
    ep_as_answer(r, s);
}
