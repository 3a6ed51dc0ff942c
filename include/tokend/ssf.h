/*
 * The SSF transmitter (src/endpoints/ssf_push.c, ssf_set.c): pushes the
 * events queued in the store (store.h, "SSF transmitter") to their receivers
 * as signed Security Event Tokens (RFC 8417) by RFC 8935 push delivery, so
 * edge caches drop a cached "active" the moment a session ends or a token
 * is revoked.
 *
 * The one idea: the queue in LMDB is the truth, the pusher only walks it.
 * One thread reads each receiver's queue head in order, signs the SET with
 * tokend's current key, POSTs it through the outbound thread, and after a
 * 2xx removes it with TK_OP_SSF_ACK through the committer. At most one SET
 * per receiver is in flight, so nothing overtakes an undelivered event; a
 * failure is retried after an exponential back-off (retry_min_ms doubling up
 * to retry_max_ms). Delivery is at-least-once: a crash between the 2xx and
 * the ack's commit delivers that SET again (same jti) after restart.
 */
#ifndef TOKEND_SSF_H
#define TOKEND_SSF_H

#include "tokend/committer.h"
#include "tokend/common.h"
#include "tokend/keys.h"
#include "tokend/outbound.h"
#include "tokend/record.h"
#include "tokend/store.h"

/* Event type URIs: CAEP's where one exists, tokend's own otherwise. */
#define TK_SSF_CAEP_SESSION_REVOKED                                                                \
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
#define TK_SSF_TYPE_PREFIX "urn:tokend:secevent:"

/* The event type URI of a kind (enum tk_ssf_kind). */
const char *tk_ssf_event_type(uint8_t kind);

/*
 * The claims of the SET carrying event seq of receiver id (JSON, no
 * whitespace): iss, aud, iat (now), jti (deterministic per receiver and
 * event, so a redelivery has the same jti), sub_id (an opaque session id,
 * the base64url SHA-256 of a token, a complex user + application subject
 * for a grant (the user as iss_sub: ev->iss, or issuer when empty; no user
 * when ev->sub is empty), the issuer's URI for an overflow) and events {type:
 * {event_timestamp, …}}. Pure. Returns 0 or TK_E_TOOBIG.
 */
int tk_ssf_set_claims(tk_slice issuer, tk_slice id, tk_slice audience, uint64_t seq,
                      const tk_ssf_event_rec *ev, int64_t now, char *buf, size_t cap, size_t *len);

typedef struct tk_ssf tk_ssf;

typedef struct tk_ssf_cfg {
    const char *issuer;      /* tokend's issuer (iss of every SET); copied */
    unsigned retry_min_ms;   /* first wait after a failure; 0 = the default */
    unsigned retry_max_ms;   /* the longest wait; 0 = the default */
    unsigned poll_ms;        /* queue scan when nothing woke the thread; 0 = the default */
    tk_store *store;         /* read only: a read txn of the pusher's own */
    tk_committer *committer; /* the acks (worker 0 drains and ignores their completions) */
    tk_outbound *outbound;   /* the POSTs; their callbacks run on its thread */
    tk_keys_holder *keys;    /* the current key signs */
} tk_ssf_cfg;

/* Start the pusher thread. 0, -EINVAL (a setting out of range), -ENOMEM,
 * -errno (thread), or a store error (read txn). */
int tk_ssf_start(const tk_ssf_cfg *cfg, tk_ssf **out);
/* Stop the thread (no new POST, no new ack). Call before stopping the
 * committer; NULL is a no-op. */
void tk_ssf_stop(tk_ssf *p);
/* Free, after tk_outbound_stop (a cancelled POST's callback still runs). */
void tk_ssf_free(tk_ssf *p);

/* A change was committed (it may have queued events): scan now rather than
 * at the next poll. One atomic exchange when a scan is already due; NULL is
 * a no-op. Any thread (workers call it after a write's completion). */
void tk_ssf_kick(tk_ssf *p);

/* What /metrics shows of each receiver (the pusher's last scan). */
typedef struct tk_ssf_stats {
    char id[TK_SSF_ID_MAX + 1];
    int64_t depth, dropped;
    uint64_t delivered, failed; /* POSTs answered 2xx / not */
} tk_ssf_stats;
/* Copy at most max receivers' statistics into out; returns how many. */
size_t tk_ssf_stats_get(tk_ssf *p, tk_ssf_stats *out, size_t max);

#endif
