/*
 * POST /ssf/events: Shared Signals push delivery (RFC 8935) of CAEP events.
 *
 * The body is one SET (RFC 8417: a JWS with typ secevent+jwt). It must come
 * from a trusted issuer (and carry that issuer's bearer token when one is
 * configured), verify with the issuer's key, name our audience, be fresh
 * (iat within max_age; exp, if any, not passed), hold a jti, no sub claim
 * (SSF 1.0: the subject is sub_id) and exactly one event:
 *   caep session-revoked          → end the matching sessions
 *   caep device-compliance-change → not-compliant suspends, compliant resumes
 *   caep credential-change        → the issuer's credential_change action
 *   anything else                 → accepted (202) and logged, nothing changed
 * 202 once durable; 400 {"err", "description"} with the RFC 8935 codes. A SET
 * whose jti was already applied is acknowledged (202) without effect:
 * transmitters retry, and RFC 8935 delivery is at-least-once.
 */
#include "events_int.h"

#include "tokend/crypto.h"

#include <string.h>

#define CAEP               "https://schemas.openid.net/secevent/caep/event-type/"
#define EV_SESSION_REVOKED CAEP "session-revoked"
#define EV_COMPLIANCE      CAEP "device-compliance-change"
#define EV_CREDENTIAL      CAEP "credential-change"

/* ---- Subjects ---------------------------------------------------------------------- */

static ev_err simple_subject(json_t *s, tk_slice set_iss, bool session, tk_slice *out,
                             const char **why)
{
    tk_slice fmt, v, iss;
    *why = "subject: unsupported or malformed identifier";
    if (!json_is_object(s) || ev_claim_str(s, "format", 32, &fmt) != EV_OK || fmt.p == NULL) {
        return EV_MALFORMED;
    }
    const char *member = tk_slice_eq_str(fmt, "opaque")                ? "id"
                         : !session && tk_slice_eq_str(fmt, "email")   ? "email"
                         : !session && tk_slice_eq_str(fmt, "iss_sub") ? "sub"
                                                                       : NULL;
    if (member == NULL) {
        return EV_BAD_CLAIMS;
    }
    size_t max = session ? TK_ID_MAX : TK_SUB_MAX;
    if (ev_claim_str(s, member, max, &v) != EV_OK || v.p == NULL) {
        return EV_MALFORMED;
    }
    if (tk_slice_eq_str(fmt, "iss_sub")) {
        /* A transmitter speaks for its own subjects only. */
        if (ev_claim_str(s, "iss", TK_IDP_ISS_MAX, &iss) != EV_OK || iss.p == NULL ||
            !tk_slice_eq(iss, set_iss)) {
            *why = "subject: iss_sub issuer differs from the SET issuer";
            return EV_BAD_CLAIMS;
        }
    }
    *out = v;
    return EV_OK;
}

ev_err ev_parse_subject(json_t *sub_id, tk_slice set_iss, ev_match *m, const char **why)
{
    memset(m, 0, sizeof *m);
    tk_slice fmt;
    if (!json_is_object(sub_id) || ev_claim_str(sub_id, "format", 32, &fmt) != EV_OK ||
        fmt.p == NULL) {
        *why = "sub_id missing or without format";
        return EV_MALFORMED;
    }
    if (!tk_slice_eq_str(fmt, "complex")) {
        m->kind = TK_IDP_KEY_SUB;
        return simple_subject(sub_id, set_iss, false, &m->value, why);
    }
    /* complex: every part present must fit; we can check user and session
     * (tenant, device, … are not known to tokend and do not narrow). */
    json_t *user = json_object_get(sub_id, "user"), *session = json_object_get(sub_id, "session");
    tk_slice u = TK_SLICE_NULL, s = TK_SLICE_NULL;
    ev_err rc = user ? simple_subject(user, set_iss, false, &u, why) : EV_OK;
    rc = rc != EV_OK ? rc : session ? simple_subject(session, set_iss, true, &s, why) : EV_OK;
    if (rc != EV_OK) {
        return rc;
    }
    if (u.p == NULL && s.p == NULL) {
        *why = "complex subject without user or session";
        return EV_BAD_CLAIMS;
    }
    m->kind = s.p ? TK_IDP_KEY_SID : TK_IDP_KEY_SUB;
    m->value = s.p ? s : u;
    m->has_filter = s.p != NULL && u.p != NULL;
    m->filter_sub = m->has_filter ? u : TK_SLICE_NULL;
    return EV_OK;
}

/* ---- Answers ------------------------------------------------------------------------- */

static const char *err_code(ev_err err)
{
    switch (err) {
    case EV_UNKNOWN_ISSUER:
        return "invalid_issuer";
    case EV_BAD_AUDIENCE:
        return "invalid_audience";
    case EV_BAD_KEY:
    case EV_BAD_SIGNATURE:
        return "invalid_key";
    case EV_AUTH:
        return "authentication_failed";
    default:
        return "invalid_request";
    }
}

static void answer(ep_req *r, ev_err err, const char *why)
{
    if (err == EV_OK || err == EV_REPLAY) {
        ep_reply(r, 202, NULL, NULL, "", 0);
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
    tk_json_kv_cstr(&j, "err", err_code(err));
    tk_json_kv_cstr(&j, "description", why ? why : "invalid SET");
    tk_json_obj_end(&j);
    ep_reply_json(r, 400, &j);
}

/* ---- Events ---------------------------------------------------------------------------- */

/* The single event of the SET: its type and payload. */
static ev_err the_event(json_t *claims, const char **type, json_t **payload, const char **why)
{
    json_t *events = json_object_get(claims, "events");
    if (!json_is_object(events) || json_object_size(events) != 1) {
        *why = "events must be an object with exactly one event";
        return EV_MALFORMED;
    }
    void *it = json_object_iter(events);
    *type = json_object_iter_key(it);
    *payload = json_object_iter_value(it);
    if (!json_is_object(*payload)) {
        *why = "event payload is not an object";
        return EV_MALFORMED;
    }
    return EV_OK;
}

/* What the event does to sessions: a state, or 0 (accept, change nothing). */
static ev_err event_state(const tk_idp_issuer *is, const char *type, json_t *ev, ev_action *a,
                          const char **why)
{
    uint8_t *state = &a->state;
    *state = 0;
    if (strcmp(type, EV_SESSION_REVOKED) == 0) {
        *state = TK_SESSION_TERMINATED;
        a->reason = "caep:session-revoked";
    } else if (strcmp(type, EV_CREDENTIAL) == 0) {
        a->reason = "caep:credential-change";
        *state = is->credential_change == TK_IDP_TERMINATE ? TK_SESSION_TERMINATED
                 : is->credential_change == TK_IDP_SUSPEND ? TK_SESSION_SUSPENDED
                                                           : 0;
        a->hold = TK_HOLD_CREDENTIAL;
    } else if (strcmp(type, EV_COMPLIANCE) == 0) {
        tk_slice cur, prev;
        bool ok = ev_claim_str(ev, "current_status", 16, &cur) == EV_OK &&
                  ev_claim_str(ev, "previous_status", 16, &prev) == EV_OK;
        bool cur_ok =
            ok && (tk_slice_eq_str(cur, "compliant") || tk_slice_eq_str(cur, "not-compliant"));
        bool prev_ok = prev.p == NULL || tk_slice_eq_str(prev, "compliant") ||
                       tk_slice_eq_str(prev, "not-compliant");
        if (!cur_ok || !prev_ok) {
            *why = "device-compliance-change needs current_status compliant or not-compliant";
            return EV_MALFORMED;
        }
        *state = cur.len == 9 ? TK_SESSION_ACTIVE : TK_SESSION_SUSPENDED;
        a->hold = TK_HOLD_DEVICE; /* compliant lifts only the device hold */
        a->reason = cur.len == 9 ? "caep:device-compliant" : "caep:device-not-compliant";
    }
    return EV_OK;
}

static ev_err check_set(ep_req *r, ev_jws *j, ev_action *a, const char **why)
{
    json_t *c = j->claims;
    ev_err rc = ev_check_common(c, a, r->w->now, false, EV_MALFORMED, why);
    if (rc != EV_OK) {
        return rc;
    }
    if (json_object_get(c, "sub") != NULL) {
        *why = "sub claim present (SSF: the subject is sub_id)";
        return EV_MALFORMED;
    }
    return EV_OK;
}

/* Bearer check when the issuer has one: constant time, length included;
 * and the issuer's sender certificate on this connection when it names one. */
static ev_err check_bearer(ep_req *r, const tk_idp_issuer *is, const char **why)
{
    if (tk_idp_has_sender_cert(is) && !tk_idp_sender_cert_ok(is, r->http->cert)) {
        *why = "the issuer's sender certificate was not presented";
        return EV_AUTH;
    }
    if (is->ssf_bearer_len == 0) {
        return EV_OK;
    }
    tk_slice tok;
    bool ok = r->http->authorization.len > 0 && tk_http_bearer(r->http->authorization, &tok) == 0;
    uint8_t a[TK_HASH_LEN], b[TK_HASH_LEN];
    tk_sha256(ok ? tok.p : "", ok ? tok.len : 0, a);
    tk_sha256(is->ssf_bearer, is->ssf_bearer_len, b);
    if (!ok || !tk_ct_equal(a, b, TK_HASH_LEN)) {
        *why = "bearer token missing or wrong";
        return EV_AUTH;
    }
    return EV_OK;
}

/* Act on the verified SET: queue its op, or accept an event we ignore. */
static ev_err act(ep_req *r, ev_jws *j, ev_action *a, const char **why)
{
    const char *type;
    json_t *ev;
    ev_err rc = the_event(j->claims, &type, &ev, why);
    rc = rc != EV_OK ? rc : event_state(a->is, type, ev, a, why);
    if (rc != EV_OK || a->state == 0) {
        *why = rc == EV_OK ? "event type ignored" : *why;
        return rc;
    }
    /* SSF 1.0 puts the subject in sub_id; CAEP drafts put it in the event. */
    json_t *sub_id = json_object_get(j->claims, "sub_id");
    rc = ev_parse_subject(sub_id ? sub_id : json_object_get(ev, "subject"),
                          (tk_slice){a->is->issuer, a->is->issuer_len}, &a->match, why);
    return rc != EV_OK ? rc : ev_submit(r, a);
}

static ev_err handle(ep_req *r, tk_slice body, const char **why, ev_note *note)
{
    ev_jws j;
    ev_err rc = ev_jws_parse(body, &j, why);
    if (rc != EV_OK) {
        return rc;
    }
    ev_action a = {.source = TK_SOURCE_SSF};
    tk_slice iss;
    if (j.typ.p == NULL || !ev_typ_is(j.typ, "secevent+jwt")) {
        *why = "typ must be secevent+jwt";
        rc = EV_MALFORMED;
    } else if (ev_claim_str(j.claims, "iss", TK_IDP_ISS_MAX, &iss) != EV_OK ||
               (a.is = tk_idp_find(ev_trust(r->w), iss)) == NULL) {
        *why = "iss is not a trusted issuer";
        rc = EV_UNKNOWN_ISSUER;
    } else {
        rc = check_bearer(r, a.is, why);
    }
    rc = rc != EV_OK ? rc : ev_verify(r, &j, a.is, why);
    rc = rc != EV_OK ? rc : check_set(r, &j, &a, why);
    rc = rc != EV_OK ? rc : act(r, &j, &a, why);
    if (rc == EV_REPLAY) {
        *why = "duplicate jti: already applied";
    }
    ev_note_set(note, a.is, a.event_id);
    ev_jws_free(&j);
    return rc;
}

void ep_ssf_events(ep_req *r)
{
    const char *why = "not application/secevent+jwt";
    ev_note note = {"", ""};
    ev_err rc = EV_MALFORMED;
    if (ev_media_is(r->http->content_type, "application/secevent+jwt")) {
        tk_slice body = r->http->body;
        while (body.len > 0 && (body.p[body.len - 1] == '\n' || body.p[body.len - 1] == '\r')) {
            body.len--; /* a trailing newline from a file upload */
        }
        rc = handle(r, body, &why, &note);
    }
    bool done = rc == EV_OK || rc == EV_REPLAY;
    ev_log(r,
           rc == EV_OK ? (r->deferred ? "queued" : "ignored")
           : done      ? "duplicate"
                       : "refused",
           &note, rc == EV_OK && r->deferred ? NULL : why);
    if (!r->deferred) {
        answer(r, rc, why);
    }
}

void ep_ssf_events_done(ep_req *r, const tk_server_done *done)
{
    const char *why = NULL;
    ev_err rc = ev_completed(r, done, &why);
    answer(r, rc, why);
}
