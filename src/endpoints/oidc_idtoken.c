/*
 * The answer of an upstream code redemption (config `login = oidc`; OpenID
 * Connect Core 1.0 §3.1.3): step 3 of the sign-in oidc.c starts (GET /login)
 * and whose callback (GET /login/callback) submits the redemption.
 *
 * The token endpoint's answer arrives on the outbound thread, which posts
 * it to the worker (mail.c: queued on the worker's list, the committer's
 * eventfd of that worker written: the ring the worker already watches).
 * app_wake drains the committer, then this list (ep_oidc_wake):
 * the ID token is verified with our own JOSE code (signature by a key of
 * the IdP's JWKS, iss, aud holds our client_id, azp, exp, iat, nonce), and
 * a TK_OP_SIGN_IN (tokend session bound to the IdP's issuer and sid, as
 * tokenctl session create --idp-iss --idp-sid binds them) goes to the
 * committer. Its completion answers 303 to /authorize/continue, like the
 * dev login; any failure answers an HTML error page and signs no one in.
 *
 * Without sid in the ID token the session is bound by (issuer, sub) only:
 * a logout token for that subject (with or without a sid) ends every tokend
 * session of that user from that IdP (README "Authorization server").
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/idp_jwks.h"
#include "tokend/jose.h"
#include "tokend/log.h"
#include "tokend/oauth.h"
#include "tokend/oauth_cookie.h"
#include "tokend/outbound.h"

#include <stdio.h>
#include <string.h>

#define B64_32 TK_SECRET_B64_LEN /* base64url of 32 random bytes: the nonce */

/* Why a sign-in failed: the error page of a completion (done->result is
 * 1 + the index; commits complete with 0 or a negative error). */
enum fail {
    F_UNAVAILABLE = 0,
    F_UNREACHABLE,
    F_REFUSED,
    F_ANSWER,
    F_MALFORMED,
    F_KEY,
    F_SIGNATURE,
    F_ISSUER,
    F_AUDIENCE,
    F_AZP,
    F_EXPIRED,
    F_IAT,
    F_NONCE,
    F_SUBJECT,
    F_SID,
    F_CLIENT_AUTH,
    F_NO_KEYS,
    F_COUNT
};

static const struct {
    int status;
    const char *code, *desc;
} fails[F_COUNT] = {
    [F_UNAVAILABLE] = {503, "temporarily_unavailable", "Try again in a moment."},
    [F_UNREACHABLE] = {502, "temporarily_unavailable",
                       "The identity provider could not be reached or did not answer in time. "
                       "Try again later; no one was signed in."},
    [F_REFUSED] = {502, "access_denied",
                   "The identity provider refused to redeem the sign-in. No one was signed in."},
    [F_ANSWER] = {502, "server_error",
                  "The identity provider's answer was not understood. No one was signed in."},
    [F_MALFORMED] = {403, "access_denied",
                     "The identity provider's ID token is malformed. No one was signed in."},
    [F_KEY] = {403, "access_denied",
               "The ID token is signed by a key the identity provider does not publish. No one "
               "was signed in."},
    [F_SIGNATURE] = {403, "access_denied",
                     "The ID token's signature does not verify. No one was signed in."},
    [F_ISSUER] = {403, "access_denied", "The ID token names another issuer. No one was signed in."},
    [F_AUDIENCE] = {403, "access_denied",
                    "The ID token was not issued to this server. No one was signed in."},
    [F_AZP] = {403, "access_denied",
               "The ID token's authorized party is not this server. No one was signed in."},
    [F_EXPIRED] = {403, "access_denied", "The ID token has expired. No one was signed in."},
    [F_IAT] = {403, "access_denied",
               "The ID token's issue time is missing or not recent. No one was signed in."},
    [F_NONCE] = {403, "access_denied",
                 "The ID token does not belong to this sign-in (nonce). No one was signed in."},
    [F_SUBJECT] = {403, "access_denied",
                   "The ID token names no usable subject. No one was signed in."},
    [F_SID] = {403, "access_denied",
               "The ID token's session id is not usable. No one was signed in."},
    [F_CLIENT_AUTH] = {502, "server_error",
                       "The identity provider did not accept this server's client credentials "
                       "(its secret or signing key): an administrator must correct the IdP "
                       "configuration. No one was signed in."},
    [F_NO_KEYS] = {503, "temporarily_unavailable",
                   "The identity provider's signing keys could not be fetched yet. Try again "
                   "later; no one was signed in."},
};

/* ---- The redemption's answer ---------------------------------------------------------- */

_Static_assert(offsetof(ep_oidc_call, mail) == 0, "a call starts with its mail");

typedef struct idt {
    tk_slice sub, sid, acr;
    int64_t auth_time;
    char amr[TK_AMR_MAX + 1]; /* space-separated */
    unsigned dropped;         /* acr / amr values not kept (not tokens, too long) */
} idt;

/* How the user signed in (OIDC Core §2), kept for audit and introspection:
 * auth_time when it is a time; acr when it is one printable token of at
 * most TK_ACR_MAX; the amr values that are such tokens, while they fit
 * TK_AMR_MAX. What is not kept is counted, never a reason to refuse the
 * sign-in (the IdP vouched for the user either way). */
static void sign_in_claims(json_t *claims, idt *out)
{
    bool has_at = false;
    out->auth_time = 0;
    if (ev_claim_time(claims, "auth_time", &out->auth_time, &has_at) != EV_OK || !has_at ||
        out->auth_time <= 0 || out->auth_time > TK_TIME_MAX) {
        out->dropped += json_object_get(claims, "auth_time") != NULL ? 1 : 0;
        out->auth_time = 0;
    }
    json_t *acr = json_object_get(claims, "acr");
    out->acr = TK_SLICE_NULL;
    if (json_is_string(acr)) {
        tk_slice a = {json_string_value(acr), json_string_length(acr)};
        if (a.len > 0 && a.len <= TK_ACR_MAX && tk_session_claims_ok(a, TK_SLICE_NULL)) {
            out->acr = a;
        }
    }
    out->dropped += acr != NULL && out->acr.p == NULL ? 1 : 0;
    json_t *amr = json_object_get(claims, "amr");
    size_t n = 0, i;
    json_t *v;
    out->amr[0] = '\0';
    out->dropped += amr != NULL && !json_is_array(amr) ? 1 : 0;
    json_array_foreach(amr, i, v) /* bounded by the ID token's size */
    {
        tk_slice m = json_is_string(v) ? (tk_slice){json_string_value(v), json_string_length(v)}
                                       : TK_SLICE_NULL;
        size_t need = m.len + (n > 0 ? 1 : 0);
        if (m.len == 0 || n + need > TK_AMR_MAX || !tk_session_claims_ok(m, TK_SLICE_NULL)) {
            out->dropped++;
            continue;
        }
        if (n > 0) {
            out->amr[n++] = ' ';
        }
        memcpy(out->amr + n, m.p, m.len);
        n += m.len;
        out->amr[n] = '\0';
    }
}

static bool aud_has(json_t *aud, const tk_idp_issuer *is, size_t *count)
{
    tk_slice want = {is->client_id, is->client_id_len};
    *count = 0;
    if (json_is_string(aud)) {
        *count = 1;
        return tk_slice_eq(want, (tk_slice){json_string_value(aud), json_string_length(aud)});
    }
    if (!json_is_array(aud) || json_array_size(aud) > 64) {
        return false;
    }
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v)) {
            return false;
        }
        found = found || tk_slice_eq(want, (tk_slice){json_string_value(v), json_string_length(v)});
        (*count)++;
    }
    return found;
}

/* OpenID Connect Core 1.0 §3.1.3.7: the ID token's checks, in order. */
static enum fail check_id_token(ep_worker *w, const tk_idp_issuer *is, const ep_oidc_call *c,
                                json_t *claims, idt *out)
{
    tk_slice iss, azp, nonce;
    if (ev_claim_str(claims, "iss", TK_IDP_ISS_MAX, &iss) != EV_OK || iss.p == NULL ||
        !tk_slice_eq(iss, (tk_slice){is->issuer, is->issuer_len})) {
        return F_ISSUER;
    }
    size_t naud = 0;
    if (!aud_has(json_object_get(claims, "aud"), is, &naud)) {
        return F_AUDIENCE;
    }
    if (ev_claim_str(claims, "azp", TK_URL_MAX, &azp) != EV_OK || (azp.p == NULL && naud > 1) ||
        (azp.p != NULL && !tk_slice_eq(azp, (tk_slice){is->client_id, is->client_id_len}))) {
        return F_AZP;
    }
    int64_t exp = 0, iat = 0;
    bool has_exp = false, has_iat = false;
    if (ev_claim_time(claims, "exp", &exp, &has_exp) != EV_OK || !has_exp ||
        exp + is->leeway <= w->now) {
        return F_EXPIRED;
    }
    if (ev_claim_time(claims, "iat", &iat, &has_iat) != EV_OK || !has_iat ||
        iat > w->now + is->leeway || iat < w->now - TK_OIDC_IAT_MAX_AGE - is->leeway) {
        return F_IAT;
    }
    if (ev_claim_str(claims, "nonce", B64_32 + 1, &nonce) != EV_OK || nonce.p == NULL ||
        nonce.len != B64_32 || !tk_ct_equal(nonce.p, c->nonce, B64_32)) {
        return F_NONCE;
    }
    if (ev_claim_str(claims, "sub", TK_SUB_MAX, &out->sub) != EV_OK || out->sub.p == NULL ||
        !tk_oauth_vschar_valid(out->sub, TK_SUB_MAX)) {
        return F_SUBJECT;
    }
    if (ev_claim_str(claims, "sid", TK_ID_MAX, &out->sid) != EV_OK ||
        (out->sid.p != NULL && !tk_oauth_vschar_valid(out->sid, TK_ID_MAX))) {
        return F_SID;
    }
    sign_in_claims(claims, out);
    return F_COUNT; /* every check passed */
}

/* Verify the answer and sign in: F_COUNT when the sign-in was submitted
 * (its commit completes the request), else why it failed. */
static enum fail finish(ep_worker *w, ep_oidc_call *c)
{
    char safe[65];
    ep_log_id(tk_slice_from_str(c->request), safe);
    if (c->mail.result != TK_OB_OK && c->mail.result != TK_OB_HTTP_ERROR) {
        tk_log_warn("oidc_redeem_failed", "iss=\"%s\" request=%s result=%s error=\"%s\"", c->issuer,
                    safe, tk_outbound_result_name(c->mail.result), c->mail.error);
        /* It answered, but not HTTP or too much of it: not "unreachable". */
        return c->mail.result == TK_OB_PROTOCOL || c->mail.result == TK_OB_TOO_BIG ? F_ANSWER
                                                                                   : F_UNREACHABLE;
    }
    json_error_t je;
    json_t *doc = c->mail.body != NULL
                      ? json_loadb(c->mail.body, c->mail.body_len, JSON_REJECT_DUPLICATES, &je)
                      : NULL;
    json_t *idtok = json_object_get(doc, "id_token");
    if (c->mail.status != 200 || !json_is_string(idtok)) {
        char e[65];
        json_t *ecode = json_object_get(doc, "error");
        ep_log_id(
            json_is_string(ecode) ? tk_slice_from_str(json_string_value(ecode)) : TK_SLICE_NULL, e);
        tk_log_warn("oidc_redeem_refused", "iss=\"%s\" request=%s status=%d error=%s", c->issuer,
                    safe, c->mail.status, e[0] != '\0' ? e : "-");
        /* RFC 6749 §5.2: invalid_client is a 401 (the outbound thread hands
         * on no body of an error status, so the status is what tells). */
        bool client_auth =
            c->mail.status == 401 ||
            (json_is_string(ecode) && strcmp(json_string_value(ecode), "invalid_client") == 0);
        json_decref(doc);
        return c->mail.status == 200 ? F_ANSWER : client_auth ? F_CLIENT_AUTH : F_REFUSED;
    }
    const tk_idp_issuer *is = tk_idp_find(w->idp, tk_slice_from_str(c->issuer));
    if (is == NULL) {
        json_decref(doc);
        return F_ISSUER;
    }
    ev_jws j;
    const char *why = "";
    enum fail f = F_COUNT;
    ev_err er =
        ev_jws_parse((tk_slice){json_string_value(idtok), json_string_length(idtok)}, &j, &why);
    bool parsed = er == EV_OK;
    if (!parsed) {
        f = F_MALFORMED;
    } else {
        er = ev_jws_verify(&j, is, &why);
        if (er == EV_BAD_KEY && is->jwks_uri_len > 0 &&
            tk_idp_key_for(is, j.kid, j.kid.p != NULL) == NULL) {
            (void)tk_idp_jwks_kid_miss(w->app->cfg.jwks, (tk_slice){is->issuer, is->issuer_len});
        }
        f = er == EV_BAD_KEY ? (is->nkeys == 0 ? F_NO_KEYS : F_KEY)
            : er != EV_OK    ? F_SIGNATURE
                             : F_COUNT;
    }
    idt t = {0};
    if (f == F_COUNT) {
        f = check_id_token(w, is, c, j.claims, &t);
    }
    if (f != F_COUNT) {
        tk_log_warn("oidc_id_token_refused", "iss=\"%s\" request=%s why=\"%s\" detail=\"%s\"",
                    c->issuer, safe, fails[f].desc, why);
        if (parsed) {
            ev_jws_free(&j);
        }
        json_decref(doc);
        return f;
    }
    /* Sign in: the session bound to the IdP's issuer and sid (or sub). */
    const tk_app_cfg *cfg = &w->app->cfg;
    char sid[TK_ID_MAX + 1], cookie[TK_SECRET_B64_LEN + 1];
    tk_commit_req creq = {.nops = 1};
    tk_op *op = &creq.ops[0];
    *op = tk_op_make(TK_OP_SIGN_IN, w->now);
    int rc = tk_id_new("tks_", sid, sizeof sid);
    rc = rc != 0 ? rc : ep_as_secret(cookie, op->sign_in.browser);
    rc = rc != 0 ? rc : tk_random_bytes(op->sign_in.csrf_key, TK_HASH_LEN);
    rc = rc != 0 ? rc : tk_op_id_set(&op->sign_in.sid, tk_slice_from_str(sid));
    rc = rc != 0 ? rc : tk_op_sub_set(&op->sign_in.sub, t.sub);
    rc = rc != 0 ? rc : tk_op_id_set(&op->sign_in.request, tk_slice_from_str(c->request));
    rc = rc != 0 ? rc : tk_op_iss_set(&op->sign_in.idp_iss, (tk_slice){is->issuer, is->issuer_len});
    rc = rc != 0 || t.sid.p == NULL ? rc : tk_op_id_set(&op->sign_in.idp_sid, t.sid);
    rc = rc != 0 ? rc : tk_op_acr_set(&op->sign_in.acr, t.acr);
    rc = rc != 0 ? rc : tk_op_amr_set(&op->sign_in.amr, tk_slice_from_str(t.amr));
    op->sign_in.auth_time = t.auth_time;
    op->sign_in.session_exp = w->now + cfg->session_ttl;
    op->sign_in.browser_exp = w->now + cfg->session_ttl;
    char setc[TK_OAUTH_SET_COOKIE_MAX + 160];
    memcpy(setc, "Set-Cookie: ", 12);
    size_t clen = 0;
    if (rc == 0) {
        rc = tk_oauth_cookie_set(tk_slice_from_str(cookie), cfg->session_ttl, setc + 12,
                                 sizeof setc - 150, &clen);
    }
    tk_cleanse(cookie, sizeof cookie);
    char hdr[1024];
    size_t n = 0;
    if (rc == 0) {
        snprintf(setc + 12 + clen, sizeof setc - 12 - clen,
                 "\r\nSet-Cookie: " EP_OIDC_BINDER_COOKIE
                 "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax\r\n");
        char loc[64 + TK_ID_MAX];
        int l = snprintf(loc, sizeof loc, "/authorize/continue?request=%s", c->request);
        n = ep_as_location(hdr, sizeof hdr, (tk_slice){loc, (size_t)l}, setc);
    }
    tk_cleanse(setc, sizeof setc);
    char ssub[65], ssid[65], sacr[TK_ACR_MAX + 1];
    ep_log_id(t.sub, ssub);
    ep_log_id(t.sid, ssid);
    snprintf(sacr, sizeof sacr, "%.*s", (int)t.acr.len, t.acr.p != NULL ? t.acr.p : "");
    ev_jws_free(&j);
    json_decref(doc);
    if (rc != 0 || n == 0) {
        return F_UNAVAILABLE;
    }
    tk_log_info("sign_in",
                "method=oidc iss=\"%s\" sub=%s sid=%s idp_sid=%s bound_by=%s auth_time=%lld "
                "acr=\"%s\" amr=\"%s\" claims_dropped=%u",
                is->issuer, ssub, sid, ssid[0] != '\0' ? ssid : "-",
                ssid[0] != '\0' ? "sid" : "sub", (long long)t.auth_time, sacr, t.amr, t.dropped);
    rc = ep_as_park(w, c->mail.cookie, &creq, 303, NULL, (tk_slice){hdr, n}, TK_SLICE_NULL);
    tk_cleanse(hdr, sizeof hdr);
    return rc == 0 ? F_COUNT : F_UNAVAILABLE;
}

size_t ep_oidc_wake(ep_worker *w, tk_server_done *done, size_t max)
{
    tk_app *app = w->app;
    size_t n = 0;
    /* Bounded by the worker's calls in flight (TK_OIDC_CALLS_MAX). */
    while (n < max) {
        ep_oidc_call *c = (ep_oidc_call *)ep_mail_take(&app->oidc_mail, w->id);
        if (c == NULL) {
            break;
        }
        enum fail f = finish(w, c);
        if (f != F_COUNT) {
            done[n++] = (tk_server_done){.cookie = c->mail.cookie, .result = 1 + (int64_t)f};
        }
        ep_mail_free(&c->mail);
    }
    return n;
}

void ep_oidc_callback_done(ep_req *r, const tk_server_done *done)
{
    if (done->result > 0 && done->result <= F_COUNT) {
        unsigned f = (unsigned)(done->result - 1);
        ep_reply_error_page(r, fails[f].status, fails[f].code, fails[f].desc);
        return;
    }
    ep_as_slot *s = ep_as_slot_of(r);
    if (s == NULL) {
        return;
    }
    if (done->result != 0 || ep_as_outcome(done) != TK_OUT_OK) {
        ep_as_free(s);
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return;
    }
    ep_as_answer(r, s);
}
