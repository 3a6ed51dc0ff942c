/*
 * POST /webhooks/session-terminated: a signed JSON webhook in the Standard
 * Webhooks scheme, for IdPs that post plain events (Okta/Auth0-style hooks).
 *
 *   webhook-id: msg_…           unique per message (de-duplicated)
 *   webhook-timestamp: 1700000000   Unix seconds, within 5 minutes of now
 *   webhook-signature: v1,<base64 HMAC-SHA256(secret, id "." timestamp "." body)> …
 *   {"type": "session.terminated", "iss": "…", "sid": "…", "sub": "…"}
 *
 * The MAC is checked before the body is parsed: each configured secret of
 * each issuer is tried (several signatures are allowed, for rotation), and
 * the secrets that verify say which issuers may have sent it; the body's iss
 * must be one of them. An issuer with a sender_certificate (idp.h) is a
 * possible sender only when the request came over TLS with that client
 * certificate: then its signature is needed only if it also has secrets,
 * and the webhook-signature header may be absent. sid ends that IdP session's sessions, sub alone
 * all of the subject's. 200 once durable; 400 malformed or stale, 401 no signature verifies, 409
 * the webhook-id was already applied; other types are acknowledged (200) and ignored.
 */
#include "events_int.h"

#include "tokend/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <string.h>

#define WEBHOOK_TYPE "session.terminated"

/* ---- Signature header --------------------------------------------------------------- */

unsigned ev_webhook_sigs(tk_slice h, uint8_t sigs[][32], unsigned max)
{
    unsigned n = 0;
    size_t i = 0;
    while (i < h.len && n < max) { /* bounded: i grows every turn */
        while (i < h.len && h.p[i] == ' ') {
            i++;
        }
        size_t start = i;
        while (i < h.len && h.p[i] != ' ') {
            i++;
        }
        tk_slice e = {h.p + start, i - start};
        size_t len = 0;
        if (e.len > 3 && memcmp(e.p, "v1,", 3) == 0 &&
            tk_b64_decode(e.p + 3, e.len - 3, sigs[n], 32, &len) == 0 && len == 32) {
            n++;
        }
    }
    return n;
}

/* ---- MAC ------------------------------------------------------------------------------ */

static bool mac(const uint8_t *key, size_t keylen, tk_slice id, tk_slice ts, tk_slice body,
                uint8_t out[32])
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    bool ok = ctx != NULL && EVP_MAC_init(ctx, key, keylen, params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)id.p, id.len) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)ts.p, ts.len) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)body.p, body.len) == 1 &&
              EVP_MAC_final(ctx, out, &outl, 32) == 1 && outl == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return ok;
}

/* Which issuers may have sent it (bit i = issuer i): each credential the
 * issuer has holds — a secret that made one of the signatures, the sender
 * certificate on this connection — and it has at least one. Every secret
 * is tried, so timing does not tell which matched. */
static uint64_t signers(const tk_idp_trust *t, const tk_peer_cert *pc, tk_slice id, tk_slice ts,
                        tk_slice body, uint8_t sigs[][32], unsigned nsigs)
{
    _Static_assert(TK_IDP_MAX <= 64, "issuer bit set");
    uint64_t set = 0;
    for (unsigned i = 0; t != NULL && i < t->n; i++) {
        const tk_idp_issuer *is = &t->issuers[i];
        bool cert = tk_idp_has_sender_cert(is);
        if (cert && !tk_idp_sender_cert_ok(is, pc)) {
            continue;
        }
        if (cert && is->nsecrets == 0) {
            set |= 1ULL << i;
            continue;
        }
        for (unsigned k = 0; k < is->nsecrets; k++) {
            uint8_t m[32];
            if (!mac(is->secret[k], is->secret_len[k], id, ts, body, m)) {
                continue;
            }
            for (unsigned s = 0; s < nsigs; s++) {
                set |= tk_ct_equal(m, sigs[s], 32) ? (1ULL << i) : 0;
            }
            tk_cleanse(m, sizeof m);
        }
    }
    return set;
}

/* ---- Answers --------------------------------------------------------------------------- */

static void answer(ep_req *r, ev_err err, const char *why)
{
    int status = 400;
    const char *code = "invalid_request";
    switch (err) {
    case EV_OK:
        ep_reply(r, 200, NULL, NULL, "", 0);
        return;
    case EV_UNAVAILABLE:
        ep_reply_unavailable(r);
        return;
    case EV_BAD_SIGNATURE:
        status = 401;
        code = "invalid_signature";
        break;
    case EV_REPLAY:
        status = 409;
        code = "duplicate_webhook_id";
        break;
    default:
        break;
    }
    char buf[384];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "error", code);
    tk_json_kv_cstr(&j, "error_description", why ? why : "invalid webhook");
    tk_json_obj_end(&j);
    ep_reply_json(r, status, &j);
}

/* ---- Handler ---------------------------------------------------------------------------- */

typedef struct hook {
    tk_slice id, ts, body;
    int64_t when;
    uint64_t signers;
} hook;

static bool printable(tk_slice s, size_t max)
{
    if (s.len == 0 || s.len > max) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if ((unsigned char)s.p[i] <= 0x20 || s.p[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

static bool parse_ts(tk_slice ts, int64_t *out)
{
    int64_t v = 0;
    if (ts.len == 0 || ts.len > 12) {
        return false;
    }
    for (size_t i = 0; i < ts.len; i++) {
        if (ts.p[i] < '0' || ts.p[i] > '9') {
            return false;
        }
        v = v * 10 + (ts.p[i] - '0');
    }
    *out = v;
    return true;
}

/* Headers, MAC and freshness: everything before the body is trusted. */
static ev_err authenticate(ep_req *r, hook *h, const char **why)
{
    const tk_http_request *q = r->http;
    h->id = tk_http_header_get(q, "webhook-id");
    h->ts = tk_http_header_get(q, "webhook-timestamp");
    tk_slice sig = tk_http_header_get(q, "webhook-signature");
    h->body = q->body;
    if (!ev_media_is(q->content_type, "application/json")) {
        *why = "not application/json";
        return EV_MALFORMED;
    }
    const tk_peer_cert *pc = q->cert;
    if (!printable(h->id, TK_EVENT_ID_MAX) || !parse_ts(h->ts, &h->when) ||
        (sig.p == NULL && pc == NULL)) {
        *why = "webhook-id, webhook-timestamp or webhook-signature missing or malformed";
        return EV_MALFORMED;
    }
    uint8_t sigs[TK_WEBHOOK_SIGS_MAX][32];
    unsigned n = sig.p != NULL ? ev_webhook_sigs(sig, sigs, TK_WEBHOOK_SIGS_MAX) : 0;
    h->signers = signers(ev_trust(r->w), pc, h->id, h->ts, h->body, sigs, n);
    if (h->signers == 0) {
        *why = n > 0        ? "no signature verifies"
               : pc != NULL ? "no issuer's sender certificate or v1 signature"
                            : "no v1 signature";
        return EV_BAD_SIGNATURE;
    }
    int64_t now = r->w->now, d = h->when > now ? h->when - now : now - h->when;
    if (d > TK_WEBHOOK_TOLERANCE) {
        *why = "webhook-timestamp outside the 5 minute tolerance";
        return EV_BAD_CLAIMS;
    }
    return EV_OK;
}

/* The issuer the body names, among those whose secret signed it. */
static const tk_idp_issuer *issuer_of(const tk_idp_trust *t, const hook *h, tk_slice iss)
{
    const tk_idp_issuer *found = NULL;
    unsigned count = 0;
    for (unsigned i = 0; t != NULL && i < t->n; i++) {
        if (!(h->signers & (1ULL << i))) {
            continue;
        }
        count++;
        if (iss.p == NULL ||
            tk_slice_eq(iss, (tk_slice){t->issuers[i].issuer, t->issuers[i].issuer_len})) {
            found = found ? found : &t->issuers[i];
        }
    }
    return iss.p == NULL && count != 1 ? NULL : found;
}

static ev_err act(ep_req *r, const hook *h, json_t *body, ev_action *a, const char **why)
{
    tk_slice type, iss, sid, sub;
    if (ev_claim_str(body, "type", 64, &type) != EV_OK || type.p == NULL ||
        ev_claim_str(body, "iss", TK_IDP_ISS_MAX, &iss) != EV_OK ||
        ev_claim_str(body, "sid", TK_ID_MAX, &sid) != EV_OK ||
        ev_claim_str(body, "sub", TK_SUB_MAX, &sub) != EV_OK) {
        *why = "type, iss, sid or sub is not a short printable string";
        return EV_MALFORMED;
    }
    a->is = issuer_of(ev_trust(r->w), h, iss);
    if (a->is == NULL) {
        *why = "iss is not an issuer whose secret or certificate authenticated the webhook";
        return EV_UNKNOWN_ISSUER;
    }
    if (!tk_slice_eq_str(type, WEBHOOK_TYPE)) {
        *why = "event type ignored";
        return EV_OK;
    }
    if (sid.p == NULL && sub.p == NULL) {
        *why = "neither sub nor sid";
        return EV_MALFORMED;
    }
    a->match =
        (ev_match){.kind = sid.p ? TK_IDP_KEY_SID : TK_IDP_KEY_SUB, .value = sid.p ? sid : sub};
    a->event_id = h->id;
    a->until = (h->when > r->w->now ? h->when : r->w->now) + TK_WEBHOOK_TOLERANCE + 1;
    return ev_submit(r, a);
}

void ep_webhook(ep_req *r)
{
    hook h = {0};
    const char *why = NULL;
    ev_action a = {.source = TK_SOURCE_WEBHOOK,
                   .state = TK_SESSION_TERMINATED,
                   .reason = "webhook:session.terminated"};
    ev_err rc = authenticate(r, &h, &why);
    json_t *body = NULL;
    if (rc == EV_OK) {
        json_error_t je;
        body = json_loadb(h.body.p, h.body.len, JSON_REJECT_DUPLICATES, &je);
        rc = json_is_object(body) ? act(r, &h, body, &a, &why) : EV_MALFORMED;
        why = json_is_object(body) ? why : "body is not a JSON object";
    }
    if (rc == EV_REPLAY) {
        why = "webhook-id already applied";
    }
    ev_note note;
    ev_note_set(&note, a.is, h.id);
    json_decref(body);
    ev_log(r,
           rc != EV_OK   ? "refused"
           : r->deferred ? "queued"
                         : "ignored",
           &note, r->deferred ? NULL : why);
    if (!r->deferred) {
        answer(r, rc, why);
    }
}

void ep_webhook_done(ep_req *r, const tk_server_done *done)
{
    const char *why = NULL;
    ev_err rc = ev_completed(r, done, &why);
    answer(r, rc, why);
}
