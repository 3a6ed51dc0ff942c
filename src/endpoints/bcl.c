/*
 * POST /backchannel-logout: OpenID Connect Back-Channel Logout 1.0.
 *
 * The form field logout_token is a JWS from a trusted OP. Every check of
 * spec §2.6 is made here, in its order: the JWS is well-formed with an
 * accepted typ (logout+jwt, or JWT/absent as deployed OPs send), iss names a
 * trusted issuer, the signature verifies with that issuer's key for the kid
 * (alg pinned to the key), aud holds our audience, iat/exp within the
 * leeway (exp optional only where configured), sub and/or sid present,
 * events holds the back-channel-logout member as an object, no nonce, jti
 * present and not replayed. A sid ends that IdP session's sessions; a sub
 * alone ends every session of that subject from that issuer.
 *
 * 200 (empty, Cache-Control: no-store) once durable; 400 with a JSON error
 * otherwise; 503 when the store cannot take it (the OP should retry).
 */
#include "events_int.h"

#include <string.h>

#define BCL_EVENT "http://schemas.openid.net/event/backchannel-logout"
#define FORM_TYPE "application/x-www-form-urlencoded"

static void answer(ep_req *r, ev_err err, const char *why)
{
    if (err == EV_OK) {
        ep_reply(r, 200, NULL, NULL, "", 0);
        return;
    }
    if (err == EV_UNAVAILABLE) {
        ep_reply_unavailable(r);
        return;
    }
    char buf[384];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "error", "invalid_request");
    tk_json_kv_cstr(&j, "error_description", why ? why : "invalid logout token");
    tk_json_obj_end(&j);
    ep_reply_json(r, 400, &j);
}

/* events: an object whose back-channel-logout member is an object (§2.4). */
static bool has_bcl_event(json_t *claims)
{
    json_t *events = json_object_get(claims, "events");
    return json_is_object(events) && json_is_object(json_object_get(events, BCL_EVENT));
}

static ev_err subject_of(json_t *claims, ev_action *a, const char **why)
{
    tk_slice sid, sub;
    if (ev_claim_str(claims, "sid", TK_ID_MAX, &sid) != EV_OK ||
        ev_claim_str(claims, "sub", TK_SUB_MAX, &sub) != EV_OK) {
        *why = "sid or sub is not a short printable string";
        return EV_BAD_CLAIMS;
    }
    if (sid.p == NULL && sub.p == NULL) {
        *why = "neither sub nor sid";
        return EV_BAD_CLAIMS;
    }
    /* sid names the session; sub alone means all of that user's sessions. */
    a->match =
        (ev_match){.kind = sid.p ? TK_IDP_KEY_SID : TK_IDP_KEY_SUB, .value = sid.p ? sid : sub};
    return EV_OK;
}

static ev_err check_claims(ep_req *r, ev_jws *j, ev_action *a, const char **why)
{
    json_t *c = j->claims;
    ev_err rc = ev_check_common(c, a, r->w->now, true, EV_BAD_CLAIMS, why);
    if (rc != EV_OK) {
        return rc;
    }
    if (!has_bcl_event(c)) {
        *why = "events lacks the back-channel-logout event";
        return EV_BAD_CLAIMS;
    }
    if (json_object_get(c, "nonce") != NULL) {
        *why = "nonce present";
        return EV_BAD_CLAIMS;
    }
    return subject_of(c, a, why);
}

/* Verify the token and, when it holds, queue its op. */
static ev_err handle(ep_req *r, tk_slice token, const char **why, ev_note *note)
{
    ev_jws j;
    ev_err rc = ev_jws_parse(token, &j, why);
    if (rc != EV_OK) {
        return rc;
    }
    ev_action a = {.source = TK_SOURCE_BACKCHANNEL,
                   .state = TK_SESSION_TERMINATED,
                   .reason = "backchannel_logout"};
    tk_slice iss;
    if (j.typ.p != NULL && !ev_typ_is(j.typ, "logout+jwt") && !ev_typ_is(j.typ, "JWT")) {
        *why = "typ is neither logout+jwt nor JWT";
        rc = EV_BAD_CLAIMS;
    } else if (ev_claim_str(j.claims, "iss", TK_IDP_ISS_MAX, &iss) != EV_OK ||
               (a.is = tk_idp_find(ev_trust(r->w), iss)) == NULL) {
        *why = "iss is not a trusted issuer";
        rc = EV_UNKNOWN_ISSUER;
    } else {
        rc = ev_verify(r, &j, a.is, why);
    }
    rc = rc != EV_OK ? rc : check_claims(r, &j, &a, why);
    rc = rc != EV_OK ? rc : ev_submit(r, &a);
    if (rc == EV_REPLAY) {
        *why = "jti replayed";
    }
    ev_note_set(note, a.is, a.event_id); /* before the claims are freed */
    ev_jws_free(&j);
    return rc;
}

void ep_backchannel_logout(ep_req *r)
{
    char token[TK_JWT_MAX + 1];
    tk_form_field f = {.name = "logout_token", .buf = token, .cap = sizeof token};
    const char *why = "logout_token missing";
    ev_err rc = EV_MALFORMED;
    ev_note note = {"", ""};
    if (!ev_media_is(r->http->content_type, FORM_TYPE)) {
        why = "not a form (application/x-www-form-urlencoded)";
    } else {
        int frc = tk_form_parse(r->http->body.p, r->http->body.len, &f, 1);
        why = frc == TK_E_TOOBIG ? "logout_token too large" : frc != 0 ? "malformed form" : why;
        if (frc == 0 && f.present) {
            rc = handle(r, (tk_slice){token, f.len}, &why, &note);
        }
    }
    ev_log(r, rc == EV_OK ? "queued" : "refused", &note, rc == EV_OK ? NULL : why);
    if (rc != EV_OK) {
        answer(r, rc, why);
    }
}

void ep_backchannel_logout_done(ep_req *r, const tk_server_done *done)
{
    const char *why = NULL;
    ev_err rc = ev_completed(r, done, &why);
    answer(r, rc, why);
}
