/*
 * GET/POST /consent: the page where the signed-in user approves or denies
 * what an agent asks for, and the decision.
 *
 * The page names the agent (its self-declared name, escaped and labelled
 * as such, and its client id), where the browser will be sent (the
 * redirect URI's host), the resource, each scope, and the user. The form
 * carries a CSRF token derived from the browser session's key and the
 * request id, so it is bound to this browser and this request; the
 * decision consumes the pending request in the write txn
 * (TK_OP_CODE_ISSUE), so a token works once. Anything missing or wrong is a
 * 400 page and nothing is stored.
 */
#include "endpoints_int.h"

#include "tokend/core.h"
#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/oauth_uri.h"

#include <string.h>

static _Thread_local char url[TK_AS_PENDING_MAX];

static tk_slice issuer(const ep_worker *w)
{
    const char *i = w->app->cfg.issuer;
    return (tk_slice){i, strnlen(i, TK_URL_MAX)};
}

static void scopes_list(ep_html *h, tk_slice scope)
{
    ep_html_raw(h, "<ul id=\"scopes\">");
    size_t i = 0;
    while (i < scope.len) {
        size_t j = i;
        while (j < scope.len && scope.p[j] != ' ') {
            j++;
        }
        ep_html_raw(h, "<li><code>");
        ep_html_text(h, (tk_slice){scope.p + i, j - i});
        ep_html_raw(h, "</code></li>");
        i = j + 1;
    }
    if (scope.len == 0) {
        ep_html_raw(h, "<li>(no scope)</li>");
    }
    ep_html_raw(h, "</ul>");
}

static void consent_page(ep_req *r, tk_txn *txn, tk_slice id, const tk_authreq_rec *a,
                         const tk_browser_rec *b, tk_slice sub)
{
    ep_worker *w = r->w;
    tk_client_rec c;
    if (tk_store_get_client(txn, a->client_id, &c) != 0) {
        ep_reply_error_page(r, 400, "invalid_request", "unknown client");
        return;
    }
    const tk_resource *res = ep_as_resource(w, a->resource);
    tk_oauth_uri u;
    tk_slice host =
        tk_oauth_uri_parse(a->redirect_uri, &u) == 0 && u.has_authority ? u.host : a->redirect_uri;
    char csrf[TK_SECRET_B64_LEN + 1];
    ep_as_csrf(b->csrf_key, id, "consent", csrf);
    ep_html h;
    ep_html_begin(&h, w->scratch, sizeof w->scratch, "Allow access?");
    ep_html_raw(&h, "<h1>Allow access?</h1><p>The agent <strong id=\"client_name\" "
                    "class=\"untrusted\">");
    ep_html_text(&h, c.name.len > 0 ? c.name : TK_SLICE_LIT("(unnamed)"));
    ep_html_raw(&h, "</strong>");
    if ((c.flags & TK_CLIENT_F_DYNAMIC) != 0) {
        ep_html_raw(&h, " <span class=\"note\">(name declared by the agent itself, not "
                        "verified)</span>");
    }
    ep_html_raw(&h, " — client id <code id=\"client_id\">");
    ep_html_text(&h, c.metadata_url.len > 0 ? c.metadata_url : a->client_id);
    ep_html_raw(&h, "</code> — asks to act for <strong id=\"user\">");
    ep_html_text(&h, sub);
    ep_html_raw(&h, "</strong> at <strong id=\"resource\">");
    ep_html_text(&h, res != NULL && res->name.len > 0 ? res->name : a->resource);
    ep_html_raw(&h, "</strong> (<code>");
    ep_html_text(&h, a->resource);
    ep_html_raw(&h, "</code>) with:</p>");
    scopes_list(&h, a->scope);
    ep_html_raw(&h, "<p>Afterwards your browser goes to <code id=\"redirect_host\">");
    ep_html_text(&h, host);
    ep_html_raw(&h, "</code>.</p><form method=\"post\" action=\"/consent\">"
                    "<input type=\"hidden\" name=\"request\" value=\"");
    ep_html_text(&h, id);
    ep_html_raw(&h, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    ep_html_text(&h, tk_slice_from_str(csrf));
    ep_html_raw(&h, "\"><p><button type=\"submit\" name=\"decision\" value=\"approve\" "
                    "id=\"approve\">Approve</button> <button type=\"submit\" name=\"decision\" "
                    "value=\"deny\" id=\"deny\">Deny</button></p></form>");
    ep_html_end(&h);
    ep_reply_page(r, 200, &h, a->redirect_uri, NULL);
}

static void consent_get(ep_req *r)
{
    ep_worker *w = r->w;
    char id[TK_ID_MAX + 1];
    tk_form_field f = {.name = "request", .buf = id, .cap = sizeof id};
    tk_txn *txn;
    tk_authreq_rec a;
    if (!ep_as_query_pending(r, &f, 1, &txn, &a)) {
        return;
    }
    tk_slice request = {id, f.len};
    uint8_t cookie_hash[TK_HASH_LEN];
    tk_browser_rec b;
    tk_slice sub;
    int rc = ep_as_browser(r, txn, cookie_hash, &b, &sub);
    if (rc != 0 || !a.has_browser || !tk_ct_equal(a.browser, cookie_hash, TK_HASH_LEN)) {
        char loc[32 + TK_ID_MAX];
        memcpy(loc, "/login?request=", 15);
        memcpy(loc + 15, id, f.len);
        ep_as_see_other(r, (tk_slice){loc, 15 + f.len}, NULL);
        return;
    }
    ep_as_org org; /* never ask for what the user's organisation may not grant */
    if (ep_as_org_check(w, txn, b.sid, a.resource, a.scope, &org) != 0) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    if (org.verdict != TK_ORG_OK) {
        ep_as_org_refuse(r, &org, a.client_id, a.resource, a.redirect_uri, a.state);
        return;
    }
    consent_page(r, txn, request, &a, &b, sub);
}

static void consent_post(ep_req *r)
{
    ep_worker *w = r->w;
    char id[TK_ID_MAX + 1], csrf[TK_SECRET_B64_LEN + 2], decision[16];
    tk_form_field f[3] = {
        {.name = "request", .buf = id, .cap = sizeof id},
        {.name = "csrf", .buf = csrf, .cap = sizeof csrf},
        {.name = "decision", .buf = decision, .cap = sizeof decision},
    };
    if (!ep_as_is_form(r->http->content_type) ||
        tk_form_parse(r->http->body.p, r->http->body.len, f, 3) != 0 || !f[0].present ||
        !f[1].present || !f[2].present) {
        ep_reply_error_page(r, 400, "invalid_request", "the consent form is incomplete");
        return;
    }
    bool approve = strcmp(decision, "approve") == 0;
    if (!approve && strcmp(decision, "deny") != 0) {
        ep_reply_error_page(r, 400, "invalid_request", "decision must be approve or deny");
        return;
    }
    tk_slice request = {id, f[0].len};
    tk_txn *txn = ep_txn(w);
    tk_authreq_rec a;
    int rc = txn != NULL ? ep_as_pending(r, txn, request, &a) : TK_E_STORE;
    uint8_t cookie_hash[TK_HASH_LEN];
    tk_browser_rec b;
    tk_slice sub;
    if (rc == 0) {
        rc = ep_as_browser(r, txn, cookie_hash, &b, &sub);
    }
    if (rc != 0 || !a.has_browser || !tk_ct_equal(a.browser, cookie_hash, TK_HASH_LEN) ||
        !ep_as_csrf_ok(b.csrf_key, request, "consent", (tk_slice){csrf, f[1].len})) {
        ep_reply_error_page(r, rc == TK_E_STORE ? 503 : 400, "invalid_request",
                            "this consent form expired, was already used, or belongs to "
                            "another sign-in");
        return;
    }
    /* The durable decision: the session's issuer may forbid what is asked. */
    ep_as_org org;
    if (ep_as_org_check(w, txn, b.sid, a.resource, a.scope, &org) != 0) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    if (approve && org.verdict != TK_ORG_OK) {
        ep_as_org_refuse(r, &org, a.client_id, a.resource, a.redirect_uri, a.state);
        return;
    }
    tk_commit_req creq = {.nops = 0};
    char code[TK_SECRET_B64_LEN + 1] = "";
    if (ep_as_code_op(&creq, request, cookie_hash, approve ? TK_DECIDE_APPROVE : TK_DECIDE_DENY,
                      w->now, w->app->cfg.code_ttl, code) != 0) {
        ep_reply_error_page(r, 500, "server_error", "No randomness.");
        return;
    }
    size_t n;
    if (approve) {
        rc = tk_oauth_authz_success_url(url, sizeof url, a.redirect_uri, tk_slice_from_str(code),
                                        a.state, issuer(w), &n);
    } else {
        tk_oauth_err e = {TK_OAUTH_ACCESS_DENIED, "the user denied the request"};
        rc = tk_oauth_authz_error_url(url, sizeof url, a.redirect_uri, &e, a.state, issuer(w), &n);
    }
    tk_cleanse(code, sizeof code);
    char hdr[TK_AS_PENDING_MAX];
    size_t hn = rc == 0 ? ep_as_location(hdr, sizeof hdr, (tk_slice){url, n}, NULL) : 0;
    tk_cleanse(url, sizeof url);
    if (hn == 0) {
        ep_reply_error_page(r, 500, "server_error", "The redirect does not fit.");
        return;
    }
    char safe[65];
    ep_log_id(a.client_id, safe);
    tk_log_info("consent", "client=%s decision=%s iss=\"%s\"", safe, approve ? "approve" : "deny",
                org.iss);
    ep_as_defer(r, &creq, 303, NULL, (tk_slice){hdr, hn}, TK_SLICE_NULL, true);
    tk_cleanse(hdr, hn);
}

void ep_consent(ep_req *r)
{
    if (r->http->method == TK_HTTP_POST) {
        consent_post(r);
    } else {
        consent_get(r);
    }
}

void ep_consent_done(ep_req *r, const tk_server_done *done)
{
    ep_as_page_done(r, done, true,
                    "this consent form was already used or expired; nothing was stored");
}
