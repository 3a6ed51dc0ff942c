/*
 * GET/POST /login: the development sign-in (config `login = dev`, accepted
 * only while every listen address is loopback: config.c refuses it
 * otherwise, and tokend logs dev_login_enabled at start). The form asks
 * for a subject and trusts it: whoever reaches the loopback address may
 * sign in as anyone. Sign-in methods are pluggable: the upstream OpenID
 * Connect login (issue 12) takes the same place — it ends, like this one,
 * in a TK_OP_SIGN_IN (a tokend session tks_… and a browser session bound
 * to it) and a 303 back to /authorize/continue.
 *
 * Only the browser that made the pending request may sign in for it: both
 * the form and its post require that request's pre-login cookie
 * (ep_as_prelogin_ok), so whoever learns a request id cannot bind it to
 * their own sign-in. The form's CSRF token derives from the pending
 * request's random key, so only a browser that was shown this request's
 * form can post it.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/oauth.h"
#include "tokend/oauth_cookie.h"

#include <string.h>

static bool dev_login(ep_req *r)
{
    if (r->w->app->cfg.login == TK_LOGIN_DEV) {
        return true;
    }
    ep_reply_error_page(r, 404, "access_denied", "no sign-in method is configured on this server");
    return false;
}

void ep_login_elsewhere(ep_req *r, const tk_authreq_rec *a, tk_slice request)
{
    char safe[65];
    ep_log_id(request, safe);
    if (!a->has_prelogin) { /* made signed in: bound to that browser session for good */
        tk_log_info("login_refused", "request=%s why=\"no pre-login binding\"", safe);
        ep_reply_error_page(r, 400, "invalid_request",
                            "This authorization request cannot be signed in for any more; start "
                            "again from the application.");
        return;
    }
    tk_log_info("login_refused", "request=%s why=\"no or another pre-login cookie\"", safe);
    ep_reply_error_page(r, 403, "access_denied",
                        "This authorization request was started in another browser. Start "
                        "again from the application in this browser.");
}

static void login_form(ep_req *r)
{
    ep_worker *w = r->w;
    char id[TK_ID_MAX + 1];
    tk_form_field f = {.name = "request", .buf = id, .cap = sizeof id};
    tk_txn *txn;
    tk_authreq_rec a;
    if (!ep_as_query_pending(r, &f, 1, &txn, &a)) {
        return;
    }
    if (!ep_as_prelogin_ok(r, &a)) {
        ep_login_elsewhere(r, &a, (tk_slice){id, f.len});
        return;
    }
    char csrf[TK_SECRET_B64_LEN + 1];
    ep_as_csrf(a.csrf_key, (tk_slice){id, f.len}, "login", csrf);
    ep_html h;
    ep_html_begin(&h, w->scratch, sizeof w->scratch, "Sign in");
    ep_html_raw(&h, "<h1>Sign in</h1><p class=\"note\">Development sign-in: any subject is "
                    "accepted. Never enable this outside a test machine.</p>"
                    "<form method=\"post\" action=\"/login\">"
                    "<input type=\"hidden\" name=\"request\" value=\"");
    ep_html_text(&h, (tk_slice){id, f.len});
    ep_html_raw(&h, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    ep_html_text(&h, tk_slice_from_str(csrf));
    ep_html_raw(&h, "\"><p><label>User <input name=\"subject\" id=\"subject\" required "
                    "autocomplete=\"username\"></label></p>"
                    "<p><button type=\"submit\" id=\"signin\">Sign in</button></p></form>");
    ep_html_end(&h);
    ep_reply_page(r, 200, &h, a.redirect_uri, NULL);
}

static void login_post(ep_req *r)
{
    ep_worker *w = r->w;
    const tk_app_cfg *cfg = &w->app->cfg;
    char id[TK_ID_MAX + 1], csrf[TK_SECRET_B64_LEN + 2], sub[TK_SUB_MAX + 1];
    tk_form_field f[3] = {
        {.name = "request", .buf = id, .cap = sizeof id},
        {.name = "csrf", .buf = csrf, .cap = sizeof csrf},
        {.name = "subject", .buf = sub, .cap = sizeof sub},
    };
    if (!ep_as_is_form(r->http->content_type) ||
        tk_form_parse(r->http->body.p, r->http->body.len, f, 3) != 0 || !f[0].present ||
        !f[1].present || !f[2].present) {
        ep_reply_error_page(r, 400, "invalid_request", "the sign-in form is incomplete");
        return;
    }
    tk_slice subject = {sub, f[2].len};
    if (!tk_oauth_vschar_valid(subject, TK_SUB_MAX)) {
        ep_reply_error_page(r, 400, "invalid_request", "the user name is not valid");
        return;
    }
    tk_slice request = {id, f[0].len};
    tk_txn *txn = ep_txn(w);
    tk_authreq_rec a;
    int rc = txn != NULL ? ep_as_pending(r, txn, request, &a) : TK_E_STORE;
    if (rc == 0 && !ep_as_prelogin_ok(r, &a)) {
        ep_login_elsewhere(r, &a, request);
        return;
    }
    if (rc != 0 || a.has_browser ||
        !ep_as_csrf_ok(a.csrf_key, request, "login", (tk_slice){csrf, f[1].len})) {
        ep_reply_error_page(r, rc == TK_E_STORE ? 503 : 400, "invalid_request",
                            "this sign-in form expired, was already used or was not ours");
        return;
    }
    char sid[TK_ID_MAX + 1], cookie[TK_SECRET_B64_LEN + 1];
    tk_commit_req creq = {.nops = 1};
    tk_op *op = &creq.ops[0];
    *op = tk_op_make(TK_OP_SIGN_IN, w->now);
    if (tk_id_new("tks_", sid, sizeof sid) != 0 || ep_as_secret(cookie, op->sign_in.browser) != 0 ||
        tk_random_bytes(op->sign_in.csrf_key, TK_HASH_LEN) != 0) {
        ep_reply_error_page(r, 500, "server_error", "No randomness.");
        return;
    }
    TK_ASSERT(tk_op_id_set(&op->sign_in.sid, tk_slice_from_str(sid)) == 0);
    TK_ASSERT(tk_op_sub_set(&op->sign_in.sub, subject) == 0);
    TK_ASSERT(tk_op_id_set(&op->sign_in.request, request) == 0);
    op->sign_in.session_exp = w->now + cfg->session_ttl;
    op->sign_in.browser_exp = w->now + cfg->session_ttl;
    char setc[TK_OAUTH_SET_COOKIE_MAX + 16];
    memcpy(setc, "Set-Cookie: ", 12);
    size_t clen = 0;
    rc = tk_oauth_cookie_set(tk_slice_from_str(cookie), cfg->session_ttl, setc + 12,
                             sizeof setc - 14, &clen);
    tk_cleanse(cookie, sizeof cookie);
    if (rc != 0) {
        ep_reply_error_page(r, 500, "server_error", "The cookie does not fit.");
        return;
    }
    memcpy(setc + 12 + clen, "\r\n", 3);
    char loc[64 + TK_ID_MAX];
    memcpy(loc, "/authorize/continue?request=", 28);
    memcpy(loc + 28, id, f[0].len);
    char hdr[512];
    size_t n = ep_as_location(hdr, sizeof hdr, (tk_slice){loc, 28 + f[0].len}, setc);
    tk_cleanse(setc, sizeof setc);
    TK_ASSERT(n > 0);
    char safe[65];
    ep_log_id(subject, safe);
    tk_log_info("sign_in", "method=dev sub=%s sid=%s", safe, sid);
    ep_as_defer(r, &creq, 303, NULL, (tk_slice){hdr, n}, TK_SLICE_NULL, true);
    tk_cleanse(hdr, sizeof hdr);
}

void ep_login(ep_req *r)
{
    if (r->w->app->cfg.login == TK_LOGIN_OIDC) {
        if (r->http->method == TK_HTTP_POST) {
            ep_reply_error_page(r, 405, "invalid_request",
                                "sign-in happens at the identity provider");
        } else {
            ep_oidc_login(r);
        }
        return;
    }
    if (!dev_login(r)) {
        return;
    }
    if (r->http->method == TK_HTTP_POST) {
        login_post(r);
    } else {
        login_form(r);
    }
}

void ep_login_done(ep_req *r, const tk_server_done *done)
{
    ep_as_page_done(r, done, true, NULL); /* a refused sign-in op is an operating error */
}
