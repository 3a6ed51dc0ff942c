/*
 * Sign-in at an upstream OpenID provider (config `login = oidc`; OpenID
 * Connect Core 1.0 §3.1, the authorization code flow with PKCE S256, state
 * and nonce; RFC 9207 iss). The sign-in IdPs are the issuers of the IdP
 * trust file that name a client_id; their endpoints come from discovery
 * (src/idp/discovery.c), their keys from the fetched JWKS (idp_jwks.h).
 *
 * 1. GET /login?request=ID (a pending /authorize request whose browser is
 *    not signed in), only from the browser that made that request (its
 *    pre-login cookie, ep_as_prelogin_ok; reloading from it replaces its
 *    sign-in): fresh state, nonce and PKCE verifier are kept here, in
 *    memory, with the request id, the IdP and the hash of a random "binder"
 *    cookie (__Host-tokend-login) set on this browser; the browser goes to
 *    the IdP's authorization endpoint. Several IdPs: the one whose
 *    "domains" hold the request's login_hint domain (the hint is forwarded
 *    to that IdP only), else a chooser page (&idp=ISSUER, exact).
 * 2. GET /login/callback?code&state[&iss]: the kept sign-in is taken out by
 *    state (single use; expired after authorize-ttl), must come back in the
 *    browser holding its binder cookie (and the request's pre-login cookie
 *    while the request is pending), from the issuer it was sent to (iss
 *    when the IdP sends it). The code is redeemed on the outbound thread:
 *    the request is deferred and the worker never waits.
 * 3. The token endpoint's answer (oidc_idtoken.c) is verified on the worker
 *    and signs the user in, or answers an HTML error page.
 *
 * This file keeps the sign-ins waiting for the browser (one table, under
 * oidc_mu, shared by every worker) and submits the redemption.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/keys.h"
#include "tokend/log.h"
#include "tokend/oauth.h"
#include "tokend/oauth_uri.h"
#include "tokend/outbound.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B64_32        TK_SECRET_B64_LEN /* base64url of 32 random bytes */
#define CODE_MAX      2048 /* an IdP's authorization code (opaque; Entra's are ~1 KB) */
#define CALLBACK_PATH "/login/callback"

/* A sign-in sent to an IdP, waiting for the browser to come back. */
typedef struct ep_oidc_pending {
    int64_t exp; /* 0 = free */
    uint8_t state[TK_HASH_LEN];
    uint8_t binder[TK_HASH_LEN];
    char issuer[TK_IDP_ISS_MAX + 1];
    char request[TK_ID_MAX + 1];
    char nonce[B64_32 + 1];
    char verifier[B64_32 + 1];
} ep_oidc_pending;

static tk_slice issuer_of(const ep_worker *w)
{
    const char *i = w->app->cfg.issuer;
    return (tk_slice){i, strnlen(i, TK_URL_MAX)};
}

static int random_b64(char out[B64_32 + 1])
{
    uint8_t raw[32];
    int rc = tk_random_bytes(raw, sizeof raw);
    rc = rc != 0 ? rc : tk_b64url_encode(raw, sizeof raw, out, B64_32 + 1);
    tk_cleanse(raw, sizeof raw);
    return rc;
}

/* ---- Sign-ins waiting for the browser ---------------------------------------- */

/* Keep p: in the slot of an earlier sign-in for the same authorization
 * request (one per request: reloading /login must not take a slot each
 * time), else in a free or expired slot, else in place of the sign-in that
 * expires first (a flood evicts old sign-ins, whose users start again,
 * rather than refusing every new one). -ENOMEM when there is no table. */
static int pending_put(tk_app *app, const ep_oidc_pending *p, int64_t now)
{
    int rc = -ENOMEM;
    pthread_mutex_lock(&app->oidc_mu);
    if (app->oidc_pending == NULL) {
        app->oidc_pending = calloc(TK_OIDC_PENDING_MAX, sizeof *app->oidc_pending);
    }
    ep_oidc_pending *slot = NULL, *oldest = NULL;
    for (unsigned i = 0; app->oidc_pending != NULL && i < TK_OIDC_PENDING_MAX; i++) {
        ep_oidc_pending *e = &app->oidc_pending[i];
        if (e->exp > now && strcmp(e->request, p->request) == 0) {
            slot = e; /* the same request: replace its sign-in */
            break;
        }
        if (slot == NULL && e->exp <= now) {
            slot = e;
        }
        if (oldest == NULL || e->exp < oldest->exp) {
            oldest = e;
        }
    }
    if (slot == NULL && oldest != NULL) {
        tk_log_warn("oidc_pending_evicted", "max=%d", TK_OIDC_PENDING_MAX);
        slot = oldest;
    }
    if (slot != NULL) {
        tk_cleanse(slot, sizeof *slot);
        *slot = *p;
        rc = 0;
    }
    pthread_mutex_unlock(&app->oidc_mu);
    return rc;
}

/* Take (and forget) the live sign-in whose state hashes to state, but only
 * for the browser holding its binder (binder: the cookie's hash): anyone
 * else who learnt the state must not be able to cancel the user's sign-in.
 * 1: taken; 0: no live sign-in with that state; -1: another browser's
 * (left in place). */
static int pending_take(tk_app *app, const uint8_t state[TK_HASH_LEN],
                        const uint8_t binder[TK_HASH_LEN], int64_t now, ep_oidc_pending *out)
{
    int found = 0;
    pthread_mutex_lock(&app->oidc_mu);
    for (unsigned i = 0; app->oidc_pending != NULL && i < TK_OIDC_PENDING_MAX; i++) {
        ep_oidc_pending *e = &app->oidc_pending[i];
        if (e->exp != 0 && tk_ct_equal(e->state, state, TK_HASH_LEN)) {
            if (e->exp > now && !tk_ct_equal(e->binder, binder, TK_HASH_LEN)) {
                found = -1;
                break;
            }
            found = e->exp > now ? 1 : 0;
            *out = *e;
            tk_cleanse(e, sizeof *e);
            break;
        }
    }
    pthread_mutex_unlock(&app->oidc_mu);
    return found;
}

/* ---- GET /login?request=ID ----------------------------------------------------- */

static const tk_idp_issuer *signin_idp(const ep_worker *w, unsigned k)
{
    const tk_idp_trust *t = w->idp;
    unsigned seen = 0;
    for (unsigned i = 0; t != NULL && i < t->n; i++) {
        if (t->issuers[i].client_id_len > 0 && seen++ == k) {
            return &t->issuers[i];
        }
    }
    return NULL;
}

static unsigned signin_count(const ep_worker *w)
{
    unsigned n = 0;
    while (n < TK_IDP_MAX && signin_idp(w, n) != NULL) {
        n++;
    }
    return n;
}

/* The sign-in IdP whose issuer is exactly iss (the chooser's choice), or NULL. */
static const tk_idp_issuer *signin_by_issuer(const ep_worker *w, tk_slice iss)
{
    const tk_idp_issuer *is = tk_idp_find(w->idp, iss);
    return is != NULL && is->client_id_len > 0 ? is : NULL;
}

/* One link per sign-in IdP, naming it by its issuer (not by its place in
 * the trust file, which a reload may change while the page is open). */
static void chooser(ep_req *r, tk_slice request, unsigned n)
{
    ep_html h;
    ep_html_begin(&h, r->w->scratch, sizeof r->w->scratch, "Sign in");
    ep_html_raw(&h, "<h1>Sign in</h1><p>Choose your organisation's sign-in:</p><ul>");
    for (unsigned k = 0; k < n; k++) {
        const tk_idp_issuer *is = signin_idp(r->w, k);
        char link[TK_URL_MAX * 4];
        tk_oauth_url u;
        tk_oauth_url_init(&u, link, sizeof link, TK_SLICE_LIT("/login"));
        tk_oauth_url_param(&u, "request", request);
        tk_oauth_url_param(&u, "idp", (tk_slice){is->issuer, is->issuer_len});
        TK_ASSERT(tk_oauth_url_finish(&u) == 0); /* ids and issuers are bounded far below */
        ep_html_raw(&h, "<li><a class=\"idp\" href=\"");
        ep_html_text(&h, (tk_slice){link, u.len});
        ep_html_raw(&h, "\">");
        ep_html_text(&h, (tk_slice){is->issuer, is->issuer_len});
        ep_html_raw(&h, "</a></li>");
    }
    ep_html_raw(&h, "</ul>");
    ep_html_end(&h);
    ep_reply_page(r, 200, &h, TK_SLICE_NULL, NULL);
}

void ep_oidc_login(ep_req *r)
{
    ep_worker *w = r->w;
    char id[TK_ID_MAX + 1], k[TK_IDP_ISS_MAX + 1];
    tk_form_field f[2] = {{.name = "request", .buf = id, .cap = sizeof id},
                          {.name = "idp", .buf = k, .cap = sizeof k}};
    tk_txn *txn;
    tk_authreq_rec a;
    if (!ep_as_query_pending(r, f, 2, &txn, &a)) {
        return;
    }
    tk_slice request = {id, f[0].len};
    if (!ep_as_prelogin_ok(r, &a)) { /* only its browser starts or replaces its sign-in */
        ep_login_elsewhere(r, &a, request);
        return;
    }
    /* Which IdP: the one chosen (an exact sign-in issuer), else the one the
     * request's login_hint domain names, else the only one, else the chooser. */
    unsigned n = signin_count(w);
    const tk_idp_issuer *hinted =
        a.login_hint.len > 0 ? tk_idp_for_hint(w->idp, a.login_hint) : NULL;
    const tk_idp_issuer *is = NULL;
    const char *routed = "only";
    if (f[1].present) {
        is = signin_by_issuer(w, (tk_slice){k, f[1].len});
        routed = "choice";
        if (is == NULL) {
            ep_reply_error_page(r, 400, "invalid_request", "no such sign-in");
            return;
        }
    } else if (hinted != NULL) {
        is = hinted;
        routed = "login_hint";
    } else if (n > 1) {
        chooser(r, request, n);
        return;
    } else {
        is = signin_idp(w, 0);
    }
    if (is == NULL || !is->discovered) {
        ep_reply_error_page(r, 503, "temporarily_unavailable",
                            "The identity provider could not be reached when this server started "
                            "(discovery failed). Try again later.");
        return;
    }
    ep_oidc_pending p = {.exp = w->now + w->app->cfg.authorize_ttl};
    char state[B64_32 + 1], binder[B64_32 + 1], challenge[B64_32 + 1];
    uint8_t ch[TK_HASH_LEN];
    if (random_b64(state) != 0 || random_b64(binder) != 0 || random_b64(p.nonce) != 0 ||
        random_b64(p.verifier) != 0) {
        ep_reply_error_page(r, 500, "server_error", "No randomness.");
        return;
    }
    tk_sha256(state, B64_32, p.state);
    tk_sha256(binder, B64_32, p.binder);
    tk_sha256(p.verifier, B64_32, ch);
    TK_ASSERT(tk_b64url_encode(ch, sizeof ch, challenge, sizeof challenge) == 0);
    memcpy(p.issuer, is->issuer, is->issuer_len + 1);
    memcpy(p.request, id, f[0].len + 1);
    /* The IdP's authorization endpoint with our request (its own query kept). */
    char url[TK_URL_MAX * 4], redirect[TK_URL_MAX + sizeof CALLBACK_PATH];
    tk_slice iss = issuer_of(w);
    snprintf(redirect, sizeof redirect, "%.*s%s", (int)iss.len, iss.p, CALLBACK_PATH);
    tk_oauth_url u;
    tk_oauth_url_init(&u, url, sizeof url, tk_slice_from_str(is->authorization_endpoint));
    tk_oauth_url_param(&u, "response_type", TK_SLICE_LIT("code"));
    tk_oauth_url_param(&u, "client_id", (tk_slice){is->client_id, is->client_id_len});
    tk_oauth_url_param(&u, "redirect_uri", tk_slice_from_str(redirect));
    tk_oauth_url_param(&u, "scope", tk_slice_from_str(is->scopes));
    tk_oauth_url_param(&u, "state", tk_slice_from_str(state));
    tk_oauth_url_param(&u, "nonce", tk_slice_from_str(p.nonce));
    tk_oauth_url_param(&u, "code_challenge", tk_slice_from_str(challenge));
    tk_oauth_url_param(&u, "code_challenge_method", TK_SLICE_LIT("S256"));
    if (hinted != NULL && hinted == is) { /* only to the IdP the hint names */
        tk_oauth_url_param(&u, "login_hint", a.login_hint);
    }
    if (tk_oauth_url_finish(&u) != 0) {
        ep_reply_error_page(r, 500, "server_error", "The redirect does not fit.");
        return;
    }
    if (pending_put(w->app, &p, w->now) != 0) {
        tk_cleanse(&p, sizeof p);
        tk_log_error("oidc_pending_alloc", "max=%d", TK_OIDC_PENDING_MAX);
        ep_reply_error_page(r, 503, "temporarily_unavailable",
                            "Sign-in is unavailable. Try again in a moment.");
        return;
    }
    char setc[256];
    snprintf(setc, sizeof setc,
             "Set-Cookie: " EP_OIDC_BINDER_COOKIE "=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; "
             "SameSite=Lax\r\n",
             binder, (long long)w->app->cfg.authorize_ttl);
    char safe[65];
    ep_log_id(request, safe);
    tk_log_info("oidc_redirect", "iss=\"%s\" request=%s routed=%s", is->issuer, safe, routed);
    ep_as_see_other(r, (tk_slice){url, u.len}, setc);
    tk_cleanse(setc, sizeof setc);
    tk_cleanse(&p, sizeof p);
}

/* ---- GET /login/callback ------------------------------------------------------------ */

/* Percent-encoded name=value pairs (the redemption's form body). */
static size_t form_body(char *buf, size_t cap, const tk_slice *kv, size_t n)
{
    char tmp[CODE_MAX * 4];
    tk_oauth_url u;
    tk_oauth_url_init(&u, tmp, sizeof tmp, TK_SLICE_LIT("x"));
    for (size_t i = 0; i < n; i++) {
        char name[32];
        TK_ASSERT(kv[2 * i].len < sizeof name);
        memcpy(name, kv[2 * i].p, kv[2 * i].len);
        name[kv[2 * i].len] = '\0';
        tk_oauth_url_param(&u, name, kv[2 * i + 1]);
    }
    if (tk_oauth_url_finish(&u) != 0 || u.len - 2 >= cap) {
        tk_cleanse(tmp, sizeof tmp);
        return 0;
    }
    memcpy(buf, tmp + 2, u.len - 2 + 1); /* past "x?" */
    tk_cleanse(tmp, sizeof tmp);
    return u.len - 2;
}

/* Standard base64 with padding (HTTP Basic). */
static size_t b64_std(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    if ((n + 2) / 3 * 4 + 1 > cap) {
        return 0;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        v |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? in[i + 2] : 0;
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/* private_key_jwt (RFC 7523 §2.2, OIDC Core §9): a JWT signed with
 * tokend's client key at this IdP, iss = sub = our client_id, aud the IdP's
 * issuer (RFC 7523bis: one audience an IdP cannot redirect elsewhere) or,
 * when the trust file says so, its token endpoint; a random jti, valid for
 * TK_CLIENT_ASSERTION_TTL seconds. Never logged. 0 or an error. */
static int client_assertion(const ep_worker *w, const tk_idp_issuer *is, char *out, size_t cap,
                            size_t *len)
{
    char jti[B64_32 + 1], claims[TK_IDP_CLIENT_ID_MAX * 12 + TK_URL_MAX * 6 + 256];
    int rc = random_b64(jti);
    if (rc != 0) {
        return rc;
    }
    tk_slice cid = {is->client_id, is->client_id_len};
    tk_json j;
    tk_json_init(&j, claims, sizeof claims);
    tk_json_obj_begin(&j);
    tk_json_kv_str(&j, "iss", cid);
    tk_json_kv_str(&j, "sub", cid);
    tk_json_kv_cstr(&j, "aud", is->assertion_aud_token_endpoint ? is->token_endpoint : is->issuer);
    tk_json_kv_cstr(&j, "jti", jti);
    tk_json_kv_int(&j, "iat", w->now);
    tk_json_kv_int(&j, "exp", w->now + TK_CLIENT_ASSERTION_TTL);
    tk_json_obj_end(&j);
    rc = tk_json_finish(&j) != 0 ? TK_E_TOOBIG
                                 : tk_keys_sign_pkey(is->client_key, is->client_key_kid, "JWT",
                                                     claims, j.len, out, cap, len);
    tk_cleanse(jti, sizeof jti);
    return rc;
}

/* Submit the code's redemption; 0 or an error (nothing submitted). */
static int redeem(ep_req *r, const tk_idp_issuer *is, const ep_oidc_pending *p, tk_slice code)
{
    ep_worker *w = r->w;
    tk_app *app = w->app;
    char redirect[TK_URL_MAX + sizeof CALLBACK_PATH];
    tk_slice iss = issuer_of(w);
    snprintf(redirect, sizeof redirect, "%.*s%s", (int)iss.len, iss.p, CALLBACK_PATH);
    char body[TK_OUTBOUND_REQ_BODY_MAX], auth[1024] = "";
    size_t blen = 0;
    if (is->client_key != NULL) {
        static _Thread_local char jwt[TK_CLIENT_ASSERTION_MAX];
        size_t jl = 0;
        int rc = client_assertion(w, is, jwt, sizeof jwt, &jl);
        if (rc != 0) {
            tk_log_error("oidc_client_assertion", "iss=\"%s\" err=%s", is->issuer, tk_strerror(rc));
            return rc;
        }
        tk_slice kv[12] = {
            TK_SLICE_LIT("grant_type"),
            TK_SLICE_LIT("authorization_code"),
            TK_SLICE_LIT("code"),
            code,
            TK_SLICE_LIT("redirect_uri"),
            tk_slice_from_str(redirect),
            TK_SLICE_LIT("code_verifier"),
            tk_slice_from_str(p->verifier),
            TK_SLICE_LIT("client_id"),
            {is->client_id, is->client_id_len},
            TK_SLICE_LIT("client_assertion_type"),
            TK_SLICE_LIT("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        };
        blen = form_body(body, sizeof body, kv, 6);
        if (blen > 0 && blen + 18 + jl < sizeof body) { /* base64url needs no escaping */
            memcpy(body + blen, "&client_assertion=", 18);
            memcpy(body + blen + 18, jwt, jl + 1);
            blen += 18 + jl;
        } else {
            blen = 0;
        }
        tk_cleanse(jwt, sizeof jwt);
        if (blen == 0) {
            tk_cleanse(body, sizeof body);
            return TK_E_TOOBIG;
        }
    } else {
        tk_slice kv[12] = {
            TK_SLICE_LIT("grant_type"),    TK_SLICE_LIT("authorization_code"),
            TK_SLICE_LIT("code"),          code,
            TK_SLICE_LIT("redirect_uri"),  tk_slice_from_str(redirect),
            TK_SLICE_LIT("code_verifier"), tk_slice_from_str(p->verifier),
            TK_SLICE_LIT("client_id"),     {is->client_id, is->client_id_len},
            TK_SLICE_LIT("client_secret"), {is->client_secret, is->client_secret_len}};
        blen = form_body(body, sizeof body, kv, is->secret_post ? 6 : 4);
        if (blen == 0) {
            return TK_E_TOOBIG;
        }
        if (!is->secret_post) { /* RFC 6749 §2.3.1: both parts form-encoded, then base64 */
            char cred[3 * (TK_IDP_CLIENT_ID_MAX + TK_IDP_CLIENT_SECRET_MAX) + 64];
            size_t clen = form_body(cred, sizeof cred, kv + 8, 2); /* client_id=…&client_secret=… */
            char *amp = clen > 0 ? memchr(cred, '&', clen) : NULL;
            if (amp == NULL) {
                return TK_E_TOOBIG;
            }
            /* "client_id=ID&client_secret=S" → "ID:S" */
            size_t idl = (size_t)(amp - cred) - 10, sl = clen - (size_t)(amp - cred) - 15;
            memmove(cred, cred + 10, idl);
            cred[idl] = ':';
            memmove(cred + idl + 1, amp + 15, sl);
            memcpy(auth, "Basic ", 6);
            size_t alen = b64_std((const uint8_t *)cred, idl + 1 + sl, auth + 6, sizeof auth - 6);
            tk_cleanse(cred, sizeof cred);
            if (alen == 0) {
                return TK_E_TOOBIG;
            }
        }
    }
    ep_oidc_call *c = ep_mail_new(&app->oidc_mail, sizeof *c, w, r->cookie);
    if (c == NULL) {
        tk_cleanse(body, sizeof body);
        tk_cleanse(auth, sizeof auth);
        return -ENOMEM;
    }
    memcpy(c->issuer, p->issuer, sizeof c->issuer);
    memcpy(c->request, p->request, sizeof c->request);
    memcpy(c->nonce, p->nonce, sizeof c->nonce);
    tk_outbound_req req = {.purpose = TK_OB_TOKEN,
                           .method = TK_OB_POST,
                           .url = is->token_endpoint,
                           .body = body,
                           .body_len = blen,
                           .content_type = "application/x-www-form-urlencoded",
                           .accept = "application/json",
                           .authorization = auth[0] != '\0' ? auth : NULL,
                           .cb = ep_mail_post,
                           .cb_arg = &c->mail};
    int rc = ep_mail_submit(&c->mail, &req); /* c is freed on failure */
    tk_cleanse(body, sizeof body);
    tk_cleanse(auth, sizeof auth);
    return rc;
}

void ep_oidc_callback(ep_req *r)
{
    ep_worker *w = r->w;
    if (w->app->cfg.login != TK_LOGIN_OIDC) {
        ep_reply_error_page(r, 404, "access_denied",
                            "no upstream sign-in is configured on this server");
        return;
    }
    static _Thread_local char code[CODE_MAX + 1];
    char state[B64_32 + 2], iss[TK_IDP_ISS_MAX + 1], err[64];
    tk_form_field f[4] = {{.name = "code", .buf = code, .cap = sizeof code},
                          {.name = "state", .buf = state, .cap = sizeof state},
                          {.name = "iss", .buf = iss, .cap = sizeof iss},
                          {.name = "error", .buf = err, .cap = sizeof err}};
    if (tk_form_parse(r->http->query.p, r->http->query.len, f, 4) != 0 || !f[1].present) {
        ep_reply_error_page(r, 400, "invalid_request", "The sign-in answer is malformed.");
        return;
    }
    uint8_t sh[TK_HASH_LEN];
    tk_sha256(state, f[1].len, sh);
    /* The binder first: only the browser that started the sign-in consumes it. */
    tk_slice binder = ep_as_cookie(tk_http_header_get(r->http, "Cookie"), EP_OIDC_BINDER_COOKIE);
    uint8_t bh[TK_HASH_LEN];
    tk_sha256(binder.p != NULL ? binder.p : "", binder.len, bh);
    ep_oidc_pending p;
    int taken = pending_take(w->app, sh, bh, w->now, &p); /* no cookie: the hash of "" */
    if (taken <= 0) {
        tk_log_info("oidc_callback_refused", "why=\"%s\"",
                    taken < 0 ? "no or another binder cookie" : "unknown state");
        ep_reply_error_page(r, 400, taken < 0 ? "access_denied" : "invalid_request",
                            taken < 0 ? "This sign-in was started in another browser."
                                      : "This sign-in expired, was already used or was not "
                                        "started here.");
        return;
    }
    /* And still in the browser that made the authorization request (its
     * pre-login cookie), when that request is still pending. */
    tk_txn *txn = ep_txn(w);
    tk_authreq_rec a;
    int prc = txn != NULL ? ep_as_pending(r, txn, tk_slice_from_str(p.request), &a) : TK_E_STORE;
    const tk_idp_issuer *is = tk_idp_find(w->idp, tk_slice_from_str(p.issuer));
    const char *why = NULL;
    if (prc == TK_E_STORE) {
        tk_cleanse(&p, sizeof p);
        tk_cleanse(code, sizeof code);
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    } else if (prc == 0 && !ep_as_prelogin_ok(r, &a)) {
        why = "This sign-in's authorization request was started in another browser.";
    } else if (is == NULL || is->client_id_len == 0 || !is->discovered) {
        why = "The identity provider of this sign-in is no longer configured.";
    } else if (f[2].present &&
               !tk_slice_eq(tk_slice_from_str(iss), (tk_slice){is->issuer, is->issuer_len})) {
        why = "The sign-in answer names another identity provider (RFC 9207 iss).";
    } else if (!f[2].present && is->iss_param) {
        why = "The sign-in answer lacks the iss its identity provider always sends (RFC 9207).";
    } else if (f[3].present) {
        why = "The identity provider did not sign you in (it answered with an error).";
    } else if (!f[0].present || f[0].len == 0) {
        why = "The sign-in answer carries no code.";
    }
    char safe[65];
    ep_log_id(tk_slice_from_str(p.request), safe);
    if (why != NULL) {
        tk_log_info("oidc_callback_refused", "iss=\"%s\" request=%s why=\"%s\"", p.issuer, safe,
                    why);
        tk_cleanse(&p, sizeof p);
        tk_cleanse(code, sizeof code);
        ep_reply_error_page(r, 400, "access_denied", why);
        return;
    }
    int rc = redeem(r, is, &p, (tk_slice){code, f[0].len});
    tk_cleanse(&p, sizeof p);
    tk_cleanse(code, sizeof code);
    if (rc != 0) {
        tk_log_warn("oidc_redeem_unavailable", "request=%s err=%s", safe, tk_strerror(rc));
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    r->deferred = true;
}

void ep_oidc_fini(tk_app *app)
{
    ep_mailbox_fini(&app->oidc_mail);
    if (app->oidc_pending != NULL) {
        tk_cleanse(app->oidc_pending, TK_OIDC_PENDING_MAX * sizeof *app->oidc_pending);
        free(app->oidc_pending);
        app->oidc_pending = NULL;
    }
}
