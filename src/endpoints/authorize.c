/*
 * GET/POST /authorize (RFC 6749 §4.1.1 with PKCE, RFC 7636; resource
 * indicators, RFC 8707; iss, RFC 9207) and GET /authorize/continue (where
 * sign-in sends the browser back).
 *
 * Order (docs/ARCHITECTURE.md §6): until the client and its redirect URI are
 * verified every error is an HTML page — never a redirect to an unverified
 * URI; after, an error goes back to the client as a 303 with error,
 * error_description, state and iss. A pending client gets a page with a link
 * back (access_denied, "awaits approval"). Then the request is resolved
 * (resource, scope) and stored as a pending request (tka_…): a browser
 * that is not signed in goes to /login, holding a pre-login cookie whose
 * hash the request keeps (only that browser may sign in for it); one whose
 * user already granted what is asked gets its code at once, any other goes
 * to /consent. Every answer that writes is sent only once the write is
 * durable.
 */
#include "endpoints_int.h"

#include "tokend/core.h"
#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/oauth_request.h"
#include "tokend/oauth_uri.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local tk_oauth_authz_req areq;
static _Thread_local char url[TK_AS_PENDING_MAX];

static tk_slice issuer(const ep_worker *w)
{
    const char *i = w->app->cfg.issuer;
    return (tk_slice){i, strnlen(i, TK_URL_MAX)};
}

/* 303 to the verified redirect URI with an error. */
static void error_redirect(ep_req *r, tk_slice redirect, tk_slice state, const tk_oauth_err *err)
{
    size_t n;
    if (tk_oauth_authz_error_url(url, sizeof url, redirect, err, state, issuer(r->w), &n) != 0) {
        ep_reply_error_page(r, 400, tk_oauth_code_name(err->code), err->description);
        return;
    }
    ep_as_see_other(r, (tk_slice){url, n}, NULL);
}

static void pending_page(ep_req *r, tk_slice redirect, tk_slice state, tk_slice name)
{
    tk_oauth_err err = {TK_OAUTH_ACCESS_DENIED,
                        "the agent awaits approval by an administrator of this server"};
    size_t n;
    if (tk_oauth_authz_error_url(url, sizeof url, redirect, &err, state, issuer(r->w), &n) != 0) {
        ep_reply_error_page(r, 400, "access_denied", err.description);
        return;
    }
    ep_html h;
    ep_html_begin(&h, r->w->scratch, sizeof r->w->scratch, "Agent awaiting approval");
    ep_html_raw(&h, "<h1>This agent awaits approval</h1><p>The agent <span class=\"untrusted\">");
    ep_html_text(&h, name.len > 0 ? name : TK_SLICE_LIT("(unnamed)"));
    ep_html_raw(&h, "</span> (self-declared name) registered with this server and awaits "
                    "approval by an administrator. No access was granted.</p>"
                    "<p><a id=\"return\" href=\"");
    ep_html_text(&h, (tk_slice){url, n});
    ep_html_raw(&h, "\">Return to the application</a></p>");
    ep_html_end(&h);
    ep_reply_page(r, 200, &h, TK_SLICE_NULL, NULL);
}

/* The resource a request names, or the one it implies (the client's own,
 * else the only one configured). NULL → invalid_target. */
static const tk_resource *resolve_resource(const ep_worker *w, const tk_client_rec *c)
{
    if (areq.has_resource) {
        return ep_as_resource(w, tk_slice_from_str(areq.resource));
    }
    if (c->resource.len > 0) {
        return ep_as_resource(w, c->resource);
    }
    return tk_resources_count(w->res) == 1 ? tk_resources_at(w->res, 0) : NULL;
}

/* The answers a stored request leads to, once durable (extra: header lines
 * or NULL). */
static void defer_redirect(ep_req *r, tk_commit_req *creq, tk_slice location, const char *extra)
{
    char hdr[TK_AS_PENDING_MAX];
    size_t n = ep_as_location(hdr, sizeof hdr, location, extra);
    if (n == 0) {
        tk_commit_req_release(creq);
        ep_reply_error_page(r, 500, "server_error", "The redirect does not fit.");
        return;
    }
    ep_as_defer(r, creq, 303, NULL, (tk_slice){hdr, n}, TK_SLICE_NULL, true);
}

/* /login?request=ID or /consent?request=ID. */
static tk_slice local_url(const char *path, const char *id)
{
    size_t n = strlen(path), l = strlen(id);
    memcpy(url, path, n);
    memcpy(url + n, "?request=", 9);
    memcpy(url + n + 9, id, l);
    return (tk_slice){url, n + 9 + l};
}

/* Redirect with a fresh code (the op issues it only if still granted). */
static void code_redirect(ep_req *r, tk_commit_req *creq, tk_slice request,
                          const uint8_t browser[TK_HASH_LEN], tk_slice redirect, tk_slice state)
{
    ep_worker *w = r->w;
    char code[TK_SECRET_B64_LEN + 1];
    if (ep_as_code_op(creq, request, browser, TK_DECIDE_GRANTED, w->now, w->app->cfg.code_ttl,
                      code) != 0) {
        tk_commit_req_release(creq);
        ep_reply_error_page(r, 500, "server_error", "No randomness.");
        return;
    }
    size_t n;
    int rc = tk_oauth_authz_success_url(url, sizeof url, redirect, tk_slice_from_str(code), state,
                                        issuer(w), &n);
    tk_cleanse(code, sizeof code);
    if (rc != 0) {
        tk_commit_req_release(creq);
        ep_reply_error_page(r, 500, "server_error", "The redirect does not fit.");
        return;
    }
    defer_redirect(r, creq, (tk_slice){url, n}, NULL);
    tk_cleanse(url, n);
}

/* Everything after the redirect URI is verified. */
static void authorize_verified(ep_req *r, tk_txn *txn, const tk_client_rec *c, tk_slice client_id,
                               tk_slice redirect)
{
    ep_worker *w = r->w;
    const tk_app_cfg *cfg = &w->app->cfg;
    tk_slice state = areq.has_state ? tk_slice_from_str(areq.state) : TK_SLICE_NULL;
    if ((c->grant_types & TK_OAUTH_GRANT_AUTHORIZATION_CODE) == 0) {
        tk_oauth_err e = {TK_OAUTH_UNAUTHORIZED_CLIENT,
                          "the client did not register the authorization_code grant"};
        error_redirect(r, redirect, state, &e);
        return;
    }
    const tk_resource *res = resolve_resource(w, c);
    if (res == NULL) {
        tk_oauth_err e = {TK_OAUTH_INVALID_TARGET,
                          "the resource is not one this server protects, or none was named "
                          "and more than one could be meant"};
        error_redirect(r, redirect, state, &e);
        return;
    }
    char scope[TK_SCOPE_MAX];
    size_t scope_len = 0;
    tk_slice want = areq.has_scope ? tk_slice_from_str(areq.scope) : TK_SLICE_NULL;
    if (tk_core_scope_resolve(want, res->scopes, res->nscopes, scope, sizeof scope, &scope_len) !=
        0) {
        tk_oauth_err e = {TK_OAUTH_INVALID_SCOPE,
                          "a requested scope is not offered by the resource"};
        error_redirect(r, redirect, state, &e);
        return;
    }
    /* A client an administrator added with allowed scopes is bounded by them; a registered
     * client's scope is advisory (the resource and the user's consent bound it). */
    if ((c->flags & TK_CLIENT_F_DYNAMIC) == 0 && c->scope.len > 0 &&
        !tk_core_scope_subset((tk_slice){scope, scope_len}, c->scope)) {
        tk_oauth_err e = {TK_OAUTH_INVALID_SCOPE,
                          "a requested scope is not allowed for this client"};
        error_redirect(r, redirect, state, &e);
        return;
    }
    uint8_t cookie_hash[TK_HASH_LEN];
    tk_browser_rec b;
    tk_slice sub;
    int rc = ep_as_browser(r, txn, cookie_hash, &b, &sub);
    if (rc == TK_E_STORE) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    bool signed_in = rc == 0 && (areq.prompt & TK_OAUTH_PROMPT_LOGIN) == 0;
    ep_as_org org;
    if (signed_in &&
        ep_as_org_check(w, txn, b.sid, res->id, (tk_slice){scope, scope_len}, &org) != 0) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    if (signed_in && org.verdict != TK_ORG_OK) { /* the signed-in user's organisation */
        ep_as_org_refuse(r, &org, client_id, res->id, redirect, state);
        return;
    }
    bool covers = false;
    if (signed_in && ep_as_grant_covers(txn, b.sid, sub, client_id, res->id,
                                        (tk_slice){scope, scope_len}, &covers) != 0) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    covers = covers && (areq.prompt & TK_OAUTH_PROMPT_CONSENT) == 0;
    if ((areq.prompt & TK_OAUTH_PROMPT_NONE) != 0 && (!signed_in || !covers)) {
        tk_oauth_err e = {signed_in ? TK_OAUTH_CONSENT_REQUIRED : TK_OAUTH_LOGIN_REQUIRED,
                          signed_in ? "the user has not granted this" : "no signed-in user"};
        error_redirect(r, redirect, state, &e);
        return;
    }
    if (!ep_authz_admitted(r)) { /* authorize-burst, authorize-pending-max (ratelimit.c) */
        return;
    }
    /* The pending request, resolved. */
    char id[TK_ID_MAX + 1];
    tk_authreq_rec a = {.client_id = client_id,
                        .redirect_uri = redirect,
                        .state = state,
                        .scope = {scope, scope_len},
                        .resource = res->id,
                        .prompt = (uint8_t)areq.prompt,
                        .login_hint = areq.has_login_hint ? tk_slice_from_str(areq.login_hint)
                                                          : TK_SLICE_NULL,
                        .has_browser = signed_in,
                        .exp = w->now + cfg->authorize_ttl,
                        .created = w->now,
                        .redirect_given = areq.has_redirect_uri};
    memcpy(a.challenge, areq.challenge, TK_HASH_LEN);
    memcpy(a.browser, cookie_hash, TK_HASH_LEN);
    /* A browser sent to sign in is bound to the request by its pre-login
     * cookie: only it may sign in for it (/login, /login/callback). */
    char setc[160] = "";
    a.has_prelogin = !signed_in;
    if (a.has_prelogin && ep_as_prelogin(r, a.prelogin, setc, sizeof setc) != 0) {
        ep_reply_error_page(r, 500, "server_error", "No randomness.");
        return;
    }
    uint8_t *rec = malloc(TK_RECORD_MAX);
    size_t len = 0;
    if (rec == NULL || tk_id_new("tka_", id, sizeof id) != 0 ||
        tk_random_bytes(a.csrf_key, TK_HASH_LEN) != 0 ||
        tk_record_encode_authreq(&a, rec, TK_RECORD_MAX, &len) != 0) {
        free(rec);
        ep_reply_error_page(r, 500, "server_error", "The request cannot be stored.");
        return;
    }
    tk_commit_req creq = {.nops = 1};
    creq.ops[0] = tk_op_make(TK_OP_PUT_NEW, w->now);
    creq.ops[0].put_new.db = TK_OP_DB_AUTHREQ;
    TK_ASSERT(tk_op_id_set(&creq.ops[0].put_new.key, tk_slice_from_str(id)) == 0);
    creq.ops[0].put_new.rec = rec;
    creq.ops[0].put_new.len = (uint16_t)len;
    if (!signed_in) {
        defer_redirect(r, &creq, local_url("/login", id), setc);
    } else if (covers) {
        code_redirect(r, &creq, tk_slice_from_str(id), cookie_hash, redirect, state);
    } else {
        defer_redirect(r, &creq, local_url("/consent", id), NULL);
    }
}

static void authorize_new(ep_req *r)
{
    ep_worker *w = r->w;
    tk_slice q = r->http->query;
    if (r->http->method == TK_HTTP_POST) {
        if (!ep_as_is_form(r->http->content_type)) {
            ep_reply_error_page(r, 400, "invalid_request", "expected a form");
            return;
        }
        q = r->http->body;
    }
    tk_oauth_err err = {TK_OAUTH_OK, ""};
    int prc = tk_oauth_authz_parse(q.p, q.len, &areq, &err);
    if (!areq.redirectable) {
        ep_reply_error_page(r, 400, tk_oauth_code_name(err.code), err.description);
        return;
    }
    tk_txn *txn = ep_txn(w);
    if (txn == NULL) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    tk_slice client_id = tk_slice_from_str(areq.client_id);
    char cimd_key[TK_CIMD_KEY_LEN + 1]; /* a metadata URL's store key (cimd.c) */
    if (ep_cimd_authorize(r, txn, q, &client_id, cimd_key) != EP_STEP_ON) {
        return;
    }
    tk_client_rec c;
    int rc = tk_store_get_client(txn, client_id, &c);
    if (rc != 0 && rc != TK_E_NOTFOUND && rc != TK_E_CORRUPT) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    if (rc != 0 || c.role != TK_ROLE_AGENT) {
        ep_reply_error_page(r, 400, "invalid_request", "unknown client_id");
        return;
    }
    if (c.status == TK_CLIENT_DISABLED) {
        ep_reply_error_page(r, 400, "unauthorized_client", "this client is disabled");
        return;
    }
    tk_slice registered[TK_OAUTH_REDIRECTS_MAX];
    size_t nreg = tk_core_client_redirects(&c, registered, TK_OAUTH_REDIRECTS_MAX);
    tk_slice requested =
        areq.has_redirect_uri ? tk_slice_from_str(areq.redirect_uri) : TK_SLICE_NULL;
    tk_slice redirect;
    tk_oauth_err rerr;
    if (nreg == 0 || tk_oauth_redirect_select(registered, nreg, (c.flags & TK_CLIENT_F_NATIVE) != 0,
                                              requested, &redirect, &rerr) != 0) {
        ep_reply_error_page(r, 400, "invalid_request",
                            "redirect_uri is not one the client registered");
        return;
    }
    /* A pending client's redirect URI is not yet approved: never an automatic
     * redirect there, whatever else is wrong with the request (only the page's link). */
    tk_slice state = areq.has_state ? tk_slice_from_str(areq.state) : TK_SLICE_NULL;
    if (c.status == TK_CLIENT_PENDING) {
        pending_page(r, redirect, state, c.name);
        return;
    }
    if (prc != 0) {
        error_redirect(r, redirect, state, &err);
        return;
    }
    authorize_verified(r, txn, &c, client_id, redirect);
}

/* /authorize/continue?request=ID: back from sign-in. */
static void authorize_continue(ep_req *r)
{
    ep_worker *w = r->w;
    char id[TK_ID_MAX + 1];
    tk_form_field f = {.name = "request", .buf = id, .cap = sizeof id};
    if (tk_form_parse(r->http->query.p, r->http->query.len, &f, 1) != 0 || !f.present) {
        ep_reply_error_page(r, 400, "invalid_request", "no authorization request");
        return;
    }
    tk_txn *txn = ep_txn(w);
    if (txn == NULL) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    tk_authreq_rec a;
    uint8_t cookie_hash[TK_HASH_LEN];
    tk_browser_rec b;
    tk_slice sub;
    int rc = tk_store_get_authreq(txn, (tk_slice){id, f.len}, &a);
    if (rc != 0 || a.used_at != 0 || a.exp <= w->now) {
        ep_reply_error_page(r, 400, "invalid_request",
                            "this authorization request expired or was already used");
        return;
    }
    rc = ep_as_browser(r, txn, cookie_hash, &b, &sub);
    if (rc != 0 || !a.has_browser || !tk_ct_equal(a.browser, cookie_hash, TK_HASH_LEN)) {
        ep_as_see_other(r, local_url("/login", id), NULL);
        return;
    }
    ep_as_org org;
    if (ep_as_org_check(w, txn, b.sid, a.resource, a.scope, &org) != 0) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    if (org.verdict != TK_ORG_OK) { /* signed in at an IdP whose users may not grant this */
        ep_as_org_refuse(r, &org, a.client_id, a.resource, a.redirect_uri, a.state);
        return;
    }
    bool covers = false;
    if (ep_as_grant_covers(txn, b.sid, sub, a.client_id, a.resource, a.scope, &covers) != 0) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    if (!covers || (a.prompt & TK_OAUTH_PROMPT_CONSENT) != 0) {
        ep_as_see_other(r, local_url("/consent", id), NULL);
        return;
    }
    tk_commit_req creq = {.nops = 0};
    code_redirect(r, &creq, (tk_slice){id, f.len}, cookie_hash, a.redirect_uri, a.state);
}

void ep_authorize(ep_req *r)
{
    tk_slice p = r->http->path;
    if (tk_slice_eq(p, TK_SLICE_LIT("/authorize"))) {
        authorize_new(r);
    } else if (tk_slice_eq(p, TK_SLICE_LIT("/authorize/continue")) &&
               r->http->method != TK_HTTP_POST) {
        authorize_continue(r);
    } else {
        ep_reply_error(r, 404, "not_found", NULL);
    }
}

void ep_authorize_done(ep_req *r, const tk_server_done *done)
{
    if (ep_cimd_done(r, done)) {
        return; /* a metadata document refused */
    }
    ep_as_page_done(r, done, true, "this authorization request changed meanwhile; start again");
}
