/*
 * GET/POST /logout: sign-out at tokend. GET shows a confirmation form (a
 * cross-site GET must not end anyone's session); POST, with the form's
 * CSRF token (derived from the browser session's key), terminates the
 * tokend session the browser is signed in to (every token under it is
 * inactive once the write is durable: the cascade rule), clears the
 * session cookie and, when the session came from a sign-in IdP whose trust
 * entry says "end_session": true and whose discovery named an
 * end_session_endpoint, goes on there (OpenID RP-Initiated Logout, with
 * client_id) so the user is signed out at the IdP too; otherwise a page says
 * the user is signed out.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/oauth_cookie.h"
#include "tokend/oauth_uri.h"

#include <string.h>

#define CLEAR_COOKIE                                                                               \
    "Set-Cookie: " TK_OAUTH_COOKIE_NAME "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax\r\n"

static void signed_out_page(ep_req *r, int status)
{
    ep_html h;
    ep_html_begin(&h, r->w->scratch, sizeof r->w->scratch, "Signed out");
    ep_html_raw(&h, "<h1>Signed out</h1><p id=\"signed-out\">You are signed out of this server. "
                    "Agents you authorised in this sign-in no longer have access.</p>");
    ep_html_end(&h);
    ep_reply_page(r, status, &h, TK_SLICE_NULL, CLEAR_COOKIE);
}

void ep_logout(ep_req *r)
{
    ep_worker *w = r->w;
    tk_txn *txn = ep_txn(w);
    if (txn == NULL) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
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
    if (rc != 0) { /* not signed in (or the session already ended) */
        signed_out_page(r, 200);
        return;
    }
    if (r->http->method != TK_HTTP_POST) {
        char csrf[TK_SECRET_B64_LEN + 1];
        ep_as_csrf(b.csrf_key, b.sid, "logout", csrf);
        ep_html h;
        ep_html_begin(&h, w->scratch, sizeof w->scratch, "Sign out");
        ep_html_raw(&h, "<h1>Sign out</h1><p>Signed in as <span class=\"untrusted\">");
        ep_html_text(&h, sub);
        ep_html_raw(&h, "</span>. Signing out ends this sign-in: every agent you authorised in it "
                        "loses its access.</p><form method=\"post\" action=\"/logout\">"
                        "<input type=\"hidden\" name=\"csrf\" value=\"");
        ep_html_text(&h, tk_slice_from_str(csrf));
        ep_html_raw(&h,
                    "\"><p><button type=\"submit\" id=\"signout\">Sign out</button></p></form>");
        ep_html_end(&h);
        ep_reply_page(r, 200, &h, TK_SLICE_NULL, NULL);
        return;
    }
    char csrf[TK_SECRET_B64_LEN + 2];
    tk_form_field f = {.name = "csrf", .buf = csrf, .cap = sizeof csrf};
    if (!ep_as_is_form(r->http->content_type) ||
        tk_form_parse(r->http->body.p, r->http->body.len, &f, 1) != 0 || !f.present ||
        !ep_as_csrf_ok(b.csrf_key, b.sid, "logout", (tk_slice){csrf, f.len})) {
        ep_reply_error_page(r, 400, "invalid_request",
                            "this sign-out form expired or was not ours");
        return;
    }
    /* Where to go next: the IdP's end-session endpoint, when configured. */
    tk_session_rec s;
    const tk_idp_issuer *is = NULL;
    if (tk_store_get_session(txn, b.sid, &s) == 0 && s.issuer.len > 0) {
        is = tk_idp_find(w->idp, s.issuer);
    }
    static _Thread_local char url[TK_URL_MAX * 2];
    size_t n = 0;
    if (is != NULL && is->end_session && is->end_session_endpoint[0] != '\0') {
        tk_oauth_url u;
        tk_oauth_url_init(&u, url, sizeof url, tk_slice_from_str(is->end_session_endpoint));
        tk_oauth_url_param(&u, "client_id", (tk_slice){is->client_id, is->client_id_len});
        n = tk_oauth_url_finish(&u) == 0 ? u.len : 0;
    }
    tk_commit_req creq = {.nops = 1};
    tk_op *op = &creq.ops[0];
    *op = tk_op_make(TK_OP_SESSION_STATE, w->now);
    op->session.state = TK_SESSION_TERMINATED;
    op->session.hold = 0;
    if (tk_op_id_set(&op->session.sid, b.sid) != 0 ||
        tk_op_reason_set(&op->session.reason, TK_SLICE_LIT("logout")) != 0) {
        ep_reply_error_page(r, 500, "server_error", "The session cannot be named.");
        return;
    }
    char safe[65];
    ep_log_id(b.sid, safe);
    tk_log_info("sign_out", "sid=%s idp_end_session=%s", safe, n > 0 ? "yes" : "no");

    /* Then the IdP's end-session endpoint, or back to GET /logout, which
     * shows the signed-out page to the browser that no longer has a session. */
    if (n == 0) {
        memcpy(url, "/logout", 8);
        n = 7;
    }
    char hdr[TK_URL_MAX * 2 + 256];
    size_t hl = ep_as_location(hdr, sizeof hdr, (tk_slice){url, n}, CLEAR_COOKIE);
    if (hl == 0) {
        ep_reply_error_page(r, 500, "server_error", "The redirect does not fit.");
        return;
    }
    ep_as_defer(r, &creq, 303, NULL, (tk_slice){hdr, hl}, TK_SLICE_NULL, true);
}

void ep_logout_done(ep_req *r, const tk_server_done *done)
{
    ep_as_page_done(r, done, false, NULL); /* ending a session decides nothing */
}
