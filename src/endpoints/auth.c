/*
 * Caller authentication for /introspect and /revoke (RFC 6749 §2.3.1):
 * client_secret_basic (Authorization: Basic, id and secret form-encoded
 * before base64) or client_secret_post (client_id + client_secret in the
 * form), or RFC 8705 tls_client_auth / self_signed_tls_client_auth: the
 * client_id alone in the form, over a TLS connection whose client
 * certificate the client registered (core.c decides; a client registered
 * for a certificate never authenticates with a secret). Using both at once is a 400 (§2.3: one
 * method per request); an Authorization header of another scheme (a Bearer token, say) is not
 * client authentication and is ignored. Anything missing or wrong is a 401 (reply.c: with the Basic
 * challenge unless the client used the form), and the log names the client id, never the secret.
 *
 * Failures are charged to the rate limiter (ratelimit.c): to the source
 * address always, and to the client id only when a secret was actually
 * compared for it and did not match.
 *
 * The form is decoded into the worker's fixed buffers. A token longer than
 * TK_TOKEN_IN_MAX cannot be one of ours: it is remembered as "oversize" and
 * answered like an unknown token, not as a malformed request.
 */
#include "endpoints_int.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <stdio.h>
#include <string.h>

#define FORM_TYPE "application/x-www-form-urlencoded"

/* The media type (before any ';' parameters, SP or HTAB) is the form type.
 * The type's own bytes are letters, '/', '-' and '.', never a separator, so
 * it is enough that the value starts with them and ends or has a separator
 * right after: no scan for the separator first. */
static bool is_form(tk_slice ct)
{
    const size_t n = sizeof(FORM_TYPE) - 1;
    if (ct.len < n || !tk_mem_eq_nocase(ct.p, FORM_TYPE, n)) {
        return false;
    }
    return ct.len == n || ct.p[n] == ';' || ct.p[n] == ' ' || ct.p[n] == '\t';
}

static void fill_fields(ep_worker *w, tk_form_field *f)
{
    f[0] = (tk_form_field){.name = "client_id", .buf = w->client_id, .cap = sizeof w->client_id};
    f[1] = (tk_form_field){.name = "client_secret", .buf = w->secret, .cap = sizeof w->secret};
    /* The token is hashed by length: any bytes are just an unknown token. */
    f[2] =
        (tk_form_field){.name = "token", .buf = w->token, .cap = sizeof w->token, .binary = true};
}

ep_step ep_parse_form(ep_req *r, ep_form *f)
{
    memset(f, 0, sizeof *f);
    if (!is_form(r->http->content_type)) {
        ep_reply_error(r, 400, "invalid_request", NULL);
        return EP_STEP_ANSWERED;
    }
    tk_form_field fields[3];
    fill_fields(r->w, fields);
    tk_slice body = r->http->body;
    int rc = tk_form_parse(body.p, body.len, fields, 3);
    if (rc == TK_E_TOOBIG) {
        /* Which value did not fit? Decode again without the token. */
        fill_fields(r->w, fields);
        rc = tk_form_parse(body.p, body.len, fields, 2);
        if (rc == 0) {
            f->token_present = true;
            f->token_oversize = true;
        } else if (rc == TK_E_TOOBIG) {
            f->creds_oversize = true;
            rc = 0;
        }
    } else if (rc == 0) {
        f->token_present = fields[2].present;
        f->token_len = fields[2].len;
    }
    if (rc != 0) {
        ep_reply_error(r, 400, "invalid_request", NULL);
        return EP_STEP_ANSWERED;
    }
    f->id_present = fields[0].present || f->creds_oversize;
    f->secret_present = fields[1].present;
    f->id_len = fields[0].len;
    f->secret_len = fields[1].len;
    return EP_STEP_ON;
}

static void log_failure(ep_req *r, tk_slice id, const char *why)
{
    char safe[65];
    ep_log_id(id, safe);
    tk_log_info("auth_failed", "endpoint=%s client=%s reason=%s", r->route->label,
                safe[0] ? safe : "-", why);
}

/* Where the credentials come from: EP_STEP_ON (id/secret in the worker's
 * buffers, lengths in *id_len and *secret_len; *by_cert when the form has a
 * client_id and no secret, so that the certificate must authenticate), or
 * EP_STEP_ANSWERED. Sets r->auth_via. The form was decoded first;
 * tk_http_basic_auth writes the buffers only for a header of the Basic
 * scheme, and then any form credential makes the request a 400 before either
 * is used. */
static ep_step credentials(ep_req *r, const ep_form *f, size_t *id_len, size_t *secret_len,
                           bool *by_cert)
{
    ep_worker *w = r->w;
    tk_slice authz = r->http->authorization;
    bool in_form = f->id_present || f->secret_present;
    int rc = TK_E_NOTFOUND; /* no header, or not the Basic scheme */
    if (authz.len > 0) {
        rc = tk_http_basic_auth(authz, w->client_id, sizeof w->client_id, w->secret,
                                sizeof w->secret);
    }
    r->auth_via = rc != TK_E_NOTFOUND ? EP_VIA_HEADER
                  : in_form           ? EP_VIA_FORM
                  : authz.len > 0     ? EP_VIA_HEADER
                                      : EP_VIA_NONE;
    if (rc != TK_E_NOTFOUND && in_form) {
        ep_reply_error(r, 400, "invalid_request", NULL); /* two methods at once */
        return EP_STEP_ANSWERED;
    }
    if (rc == 0) {
        *id_len = strlen(w->client_id);
        *secret_len = strlen(w->secret);
        return EP_STEP_ON;
    }
    if (rc != TK_E_NOTFOUND) {
        log_failure(r, TK_SLICE_NULL, "bad_basic_header");
        ep_reply_invalid_client(r);
        return EP_STEP_ANSWERED;
    }
    if (f->id_present && !f->secret_present && !f->creds_oversize && f->id_len > 0) {
        *id_len = f->id_len;
        *secret_len = 0;
        *by_cert = true;
        return EP_STEP_ON;
    }
    if (!f->id_present || !f->secret_present || f->creds_oversize) {
        bool id_ok = f->id_present && !f->creds_oversize;
        log_failure(r, id_ok ? (tk_slice){w->client_id, f->id_len} : TK_SLICE_NULL,
                    !f->id_present ? "no_credentials"
                    : id_ok        ? "no_secret"
                                   : "bad_credentials");
        ep_reply_invalid_client(r);
        return EP_STEP_ANSWERED;
    }
    *id_len = f->id_len;
    *secret_len = f->secret_len;
    return EP_STEP_ON;
}

/* Too many recent failures from this address (or for this client id from
 * an address that failed too): 429 with Retry-After, before any secret is
 * compared (ratelimit.c). */
static bool rate_limited(ep_req *r, tk_slice id)
{
    ep_worker *w = r->w;
    unsigned wait = ep_rl_check(&w->rl, r->http->peer, id, w->now, tk_mono_ms);
    if (TK_LIKELY(wait == 0)) {
        return false;
    }
    if (w->rl_logged_s != w->now) { /* at most one line per second per worker */
        char safe[65];
        ep_log_id(id, safe);
        tk_log_warn("auth_rate_limited", "endpoint=%s client=%s retry_after=%u", r->route->label,
                    safe[0] ? safe : "-", wait);
        w->rl_logged_s = w->now;
    }
    char hdr[40];
    snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", wait);
    ep_reply_error(r, 429, "too_many_requests", hdr);
    return true;
}

ep_step ep_authenticate(ep_req *r, const ep_form *f, tk_txn *txn, tk_client_rec *client,
                        tk_slice *client_id)
{
    ep_worker *w = r->w;
    if (ep_auth_cache_get(r, f, txn, client, client_id)) {
        r->auth_via = EP_VIA_HEADER; /* only Basic authentications are cached */
        return EP_STEP_ON;
    }
    size_t id_len = 0, secret_len = 0;
    bool by_cert = false;
    if (rate_limited(r, TK_SLICE_NULL)) {
        return EP_STEP_ANSWERED;
    }
    if (credentials(r, f, &id_len, &secret_len, &by_cert) != EP_STEP_ON) {
        tk_cleanse(w->secret, sizeof w->secret);
        if (r->status == 401) { /* no secret was compared: the address pays */
            ep_rl_fail(&w->rl, r->http->peer, TK_SLICE_NULL, w->now, tk_mono_ms);
        }
        ep_auth_cache_forget(r);
        return EP_STEP_ANSWERED;
    }
    *client_id = (tk_slice){w->client_id, id_len};
    if (rate_limited(r, *client_id)) {
        tk_cleanse(w->secret, sizeof w->secret);
        return EP_STEP_ANSWERED;
    }
    if (by_cert) {
        memset(client, 0, sizeof *client); /* tk_core_cert_client below: found or not */
    }
    int rc = by_cert
                 ? tk_core_authenticate_cert(txn, *client_id, r->http->cert, client)
                 : tk_core_authenticate(txn, *client_id, (tk_slice){w->secret, secret_len}, client);
    tk_cleanse(w->secret, secret_len + 1);
    if (rc == 0) {
        if (!by_cert) {
            ep_auth_cache_put(r, client, *client_id);
        }
        return EP_STEP_ON;
    }
    ep_auth_cache_forget(r);
    if (rc == TK_E_AUTH && by_cert && !tk_core_cert_client(client)) {
        /* an id without a secret, of no certificate client: as before the
         * certificate methods existed, only the address pays */
        log_failure(r, *client_id, "no_secret");
        ep_rl_fail(&w->rl, r->http->peer, TK_SLICE_NULL, w->now, tk_mono_ms);
        ep_reply_invalid_client(r);
        return EP_STEP_ANSWERED;
    }
    if (rc == TK_E_AUTH) {
        log_failure(r, *client_id,
                    !by_cert                ? "bad_credentials"
                    : r->http->cert == NULL ? "no_certificate"
                                            : "bad_certificate");
        ep_rl_fail(&w->rl, r->http->peer, *client_id, w->now, tk_mono_ms);
        ep_reply_invalid_client(r);
        return EP_STEP_ANSWERED;
    }
    tk_log_error("store_read", "endpoint=auth err=%s", tk_strerror(rc));
    ep_reply_unavailable(r);
    return EP_STEP_ANSWERED;
}

ep_step ep_begin_client_call(ep_req *r, ep_form *f, tk_txn **txn, tk_client_rec *caller,
                             tk_slice *caller_id)
{
    if (ep_parse_form(r, f) != EP_STEP_ON) {
        return EP_STEP_ANSWERED;
    }
    *txn = ep_txn(r->w);
    if (*txn == NULL) {
        return EP_STEP_NO_STORE;
    }
    return ep_authenticate(r, f, *txn, caller, caller_id);
}
