/*
 * Private to the IdP-event endpoints (POST /backchannel-logout, /ssf/events,
 * /webhooks/session-terminated): the parsers the fuzz targets drive and the
 * shared "verify, then commit one op, then answer" machinery (events.c).
 * The JWS and claim checks they call live below, in src/idp (jose.h).
 *
 * Everything here runs on a worker, off the introspection hot path: events
 * are rare, so jansson (which allocates) parses their JSON, bounded by the
 * size limits in limits.h.
 */
#ifndef TOKEND_EVENTS_INT_H
#define TOKEND_EVENTS_INT_H

#include "endpoints_int.h"
#include "tokend/idp.h"
#include "tokend/jose.h"

#include <jansson.h>

/* ---- Subjects (ssf.c): SSF sub_id → session match ------------------------------------ */

typedef struct ev_match {
    uint8_t kind;    /* TK_IDP_KEY_SID or TK_IDP_KEY_SUB */
    tk_slice value;  /* IdP sid or subject, at the event's issuer */
    bool has_filter; /* complex subject: the user part must fit too */
    tk_slice filter_sub;
} ev_match;

/* Parse an SSF subject identifier (iss_sub, email, opaque, complex with
 * user/session) for events from set_iss. EV_OK or EV_MALFORMED /
 * EV_BAD_CLAIMS with *why. Slices point into sub_id. */
ev_err ev_parse_subject(json_t *sub_id, tk_slice set_iss, ev_match *m, const char **why);

/* ---- Webhooks (webhook.c) ------------------------------------------------------------ */

/* The v1 MACs of a webhook-signature header ("v1,<base64> v1,<base64>"):
 * entries of other versions and malformed v1 entries are skipped. Returns
 * how many 32-byte MACs were stored (at most max). Pure. */
unsigned ev_webhook_sigs(tk_slice header, uint8_t sigs[][32], unsigned max);

/* ---- events.c: commit and answer ----------------------------------------------------- */

typedef struct ev_action {
    uint8_t source; /* enum tk_event_source */
    uint8_t state;  /* the sessions' new state */
    uint8_t hold;   /* suspend / resume: whose hold (enum tk_hold) */
    const tk_idp_issuer *is;
    ev_match match;
    tk_slice event_id; /* jti / webhook-id */
    int64_t until;
    const char *reason; /* event type, short */
} ev_action;

/* The claim checks logout tokens and SETs share: aud holds a->is's
 * audience, iat/exp/nbf within its leeway (exp required when require_exp;
 * a->until set), and a jti of at most TK_EVENT_ID_MAX bytes (a->event_id).
 * Returns EV_OK, the error of the failed check, or missing_jti; *why says
 * which. */
ev_err ev_check_common(json_t *claims, ev_action *a, int64_t now, bool require_exp,
                       ev_err missing_jti, const char **why);

/* The worker's trust snapshot (taken at batch start); NULL when none. */
const tk_idp_trust *ev_trust(ep_worker *w);

/* ev_jws_verify, and when the issuer has no key for the token (an unknown
 * kid) and fetches its keys from a jwks_uri, ask for a fetch (at most one
 * per kid interval: idp_jwks.h). The token is refused either way; a retry
 * after the fetch finds the key. */
ev_err ev_verify(ep_req *r, const ev_jws *j, const tk_idp_issuer *is, const char **why);

/* Refuse a replay seen in the read txn (EV_REPLAY), else queue the op and
 * defer the request (EV_OK); EV_UNAVAILABLE when the queue or store fails. */
ev_err ev_submit(ep_req *r, const ev_action *a);

/* The outcome of a deferred event once its commit completed: EV_OK,
 * EV_REPLAY (another copy won the race) or EV_UNAVAILABLE, with *why; logs
 * it. Each endpoint's completion turns it into its own answer. */
ev_err ev_completed(ep_req *r, const tk_server_done *done, const char **why);

/* What a log line says about an event: its issuer and id, made safe for a
 * log line and copied out before the parsed claims are freed. */
typedef struct ev_note {
    char iss[65], id[65];
} ev_note;
void ev_note_set(ev_note *n, const tk_idp_issuer *is, tk_slice id);

/* Log one refused or accepted event (never a token or secret). */
void ev_log(ep_req *r, const char *outcome, const ev_note *n, const char *why);

/* The media type of a Content-Type value (parameters ignored) is type. */
bool ev_media_is(tk_slice content_type, const char *type);

#endif
