/*
 * Private to the IdP-event endpoints (POST /backchannel-logout, /ssf/events,
 * /webhooks/session-terminated): the JWS checks (jose.c), the parsers the
 * fuzz targets drive, and the shared "verify, then commit one op, then
 * answer" machinery (events.c).
 *
 * Everything here runs on a worker, off the introspection hot path: events
 * are rare, so jansson (which allocates) parses their JSON, bounded by the
 * size limits in limits.h.
 */
#ifndef TOKEND_EVENTS_INT_H
#define TOKEND_EVENTS_INT_H

#include "endpoints_int.h"
#include "tokend/idp.h"

#include <jansson.h>

/* Why an event was refused; each endpoint maps these to its own answer. */
enum ev_err {
    EV_OK = 0,
    EV_MALFORMED,      /* not a well-formed event (segments, JSON, members) */
    EV_UNKNOWN_ISSUER, /* no trusted issuer of that name */
    EV_BAD_AUDIENCE,   /* aud does not name us */
    EV_BAD_KEY,        /* alg refused, or no key for kid */
    EV_BAD_SIGNATURE,  /* signature (or webhook MAC) does not verify */
    EV_BAD_CLAIMS,     /* time, events, nonce, typ, subject… */
    EV_AUTH,           /* SSF bearer missing or wrong */
    EV_REPLAY,         /* jti / webhook-id seen before */
    EV_UNAVAILABLE,    /* store or queue: 503 */
};

/* ---- jose.c: compact JWS ------------------------------------------------------ */

#define EV_SIG_MAX 512 /* RSA-4096 */

typedef struct ev_jws {
    tk_slice signing_input; /* "header.payload", into the caller's input */
    uint8_t sig[EV_SIG_MAX];
    size_t sig_len;
    json_t *header, *claims; /* owned: ev_jws_free */
    uint8_t alg;             /* enum tk_jws_alg */
    tk_slice kid, typ;       /* into header; p == NULL when absent */
} ev_jws;

/*
 * Split and decode a compact JWS without trusting it: at most TK_JWT_MAX
 * bytes, three strict base64url segments, header and claims JSON objects
 * (no duplicate members), header alg one of ours (none and HMAC refused),
 * no crit, kid and typ strings when present. Returns EV_OK or an ev_err with
 * *why a static explanation; on error nothing needs freeing.
 */
int ev_jws_parse(tk_slice compact, ev_jws *j, const char **why);
void ev_jws_free(ev_jws *j);

/* Verify the signature with the issuer's key for the token's kid, the alg
 * pinned to that key. EV_OK, EV_BAD_KEY or EV_BAD_SIGNATURE. */
int ev_jws_verify(const ev_jws *j, const tk_idp_issuer *is, const char **why);

/* typ equals want, ASCII case-insensitively, with or without the
 * "application/" prefix (RFC 7515 §4.1.9). */
bool ev_typ_is(tk_slice typ, const char *want);

/* ---- Claims (jose.c) ---------------------------------------------------------------- */

/* A string member: printable (no control characters), 1..max bytes.
 * EV_OK with *out (p NULL when absent), or EV_BAD_CLAIMS. */
int ev_claim_str(json_t *obj, const char *name, size_t max, tk_slice *out);
/* A NumericDate in [0, TK_TIME_MAX] (fractions dropped). *present false and
 * EV_OK when absent. */
int ev_claim_time(json_t *obj, const char *name, int64_t *out, bool *present);
/* aud is the issuer's audience or an array of strings holding it. */
int ev_check_aud(json_t *claims, const tk_idp_issuer *is);

/* iat, exp, nbf against now with the issuer's leeway. require_exp: exp
 * must be present unless allow_missing_exp; without exp, iat must be
 * within max_age. *until: how long the jti must be remembered. */
int ev_check_times(json_t *claims, const tk_idp_issuer *is, int64_t now, bool require_exp,
                   int64_t *until, const char **why);

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
int ev_parse_subject(json_t *sub_id, tk_slice set_iss, ev_match *m, const char **why);

/* ---- Webhooks (webhook.c) ------------------------------------------------------------ */

#define EV_WEBHOOK_SIGS_MAX 8

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
int ev_check_common(json_t *claims, ev_action *a, int64_t now, bool require_exp, int missing_jti,
                    const char **why);

/* The worker's trust snapshot (taken at batch start); NULL when none. */
const tk_idp_trust *ev_trust(ep_worker *w);

/* Refuse a replay seen in the read txn (EV_REPLAY), else queue the op and
 * defer the request (EV_OK); EV_UNAVAILABLE when the queue or store fails. */
int ev_submit(ep_req *r, const ev_action *a);

/* Per endpoint: the answer for an outcome (success, or a refusal). */
void ev_bcl_answer(ep_req *r, int err, const char *why);
void ev_ssf_answer(ep_req *r, int err, const char *why);
void ev_webhook_answer(ep_req *r, int err, const char *why);

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
