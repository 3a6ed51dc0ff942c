/*
 * The IdP-event op: one signed event from an identity provider (a logout
 * token, a CAEP SET, a webhook) becomes one op that the committer applies in
 * one write transaction. The op carries the event's match key, not a list
 * of sessions: the worker cannot know how many sessions an IdP sid or a
 * subject has (TK_OPS_PER_REQ is tiny), and expanding the key here, inside
 * the write txn, makes "record the jti, change every session, append the
 * audit record" one atomic, idempotent unit: replaying the op finds its
 * replay record and does nothing.
 */
#include <stddef.h>
#include <string.h>

#include "store_int.h"
#include "tokend/log.h"

typedef struct expand {
    tk_txn *txn;
    const tk_op *op;
    const tk_op_idp_event *ev;
    tk_session_change ch; /* what every matching session gets */
    unsigned matched, changed;
    int err;
    size_t sids_len;
    unsigned listed;
    char sids[TK_AUDIT_SIDS_BYTES];
} expand;

/* With a filter, the session must also fit the event's (issuer, sub). */
static int fits(expand *e, tk_slice sid, bool *ok)
{
    *ok = true;
    if (!e->ev->has_filter) {
        return 0;
    }
    tk_session_rec s;
    int rc = tk_store_get_session(e->txn, sid, &s);
    if (rc == TK_E_NOTFOUND) {
        *ok = false;
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    uint8_t key[TK_HASH_LEN];
    tk_store_idp_key(TK_IDP_KEY_SUB, s.issuer, s.sub, key);
    *ok = memcmp(key, e->ev->filter, TK_HASH_LEN) == 0;
    return 0;
}

static void list_sid(expand *e, tk_slice sid)
{
    if (e->listed >= TK_AUDIT_SIDS_MAX) {
        return;
    }
    size_t need = sid.len + (e->sids_len > 0 ? 1 : 0);
    TK_ASSERT(e->sids_len + need <= sizeof e->sids);
    if (e->sids_len > 0) {
        e->sids[e->sids_len++] = ' ';
    }
    memcpy(e->sids + e->sids_len, sid.p, sid.len);
    e->sids_len += sid.len;
    e->listed++;
}

/* One sid under the match key: move its session with the state machine the
 * session op uses (apply_session.c), so it stays in one place. */
static int each_sid(void *arg, tk_slice sid_in_map)
{
    expand *e = arg;
    if (e->matched >= TK_IDP_MATCH_MAX) {
        return 1; /* stop: bounded work per op */
    }
    char sid[TK_ID_MAX];
    TK_ASSERT(sid_in_map.len > 0 && sid_in_map.len <= sizeof sid);
    memcpy(sid, sid_in_map.p, sid_in_map.len); /* writes below may move pages */
    tk_slice s = {sid, sid_in_map.len};
    bool ok = false;
    e->err = fits(e, s, &ok);
    if (e->err != 0 || !ok) {
        return e->err != 0 ? 1 : 0;
    }
    e->matched++;
    bool ch = false;
    e->err = tk_store_session_change(e->txn, s, &e->ch, &ch);
    if (e->err != 0) {
        return 1;
    }
    if (ch) {
        e->changed++;
        list_sid(e, s);
    }
    return 0;
}

static int write_audit(expand *e)
{
    const tk_op_idp_event *ev = e->ev;
    tk_audit_rec a = {
        .source = ev->source,
        .state = ev->state,
        .issuer = tk_op_iss_get(&ev->iss),
        .event_id = tk_op_id_get(&ev->event_id),
        .reason = tk_op_reason_get(&ev->reason),
        .sids = {e->sids, e->sids_len},
        .at = e->op->at,
        .matched = e->matched,
        .changed = e->changed,
        .hold = ev->hold,
    };
    return tk_store_audit_put(e->txn, &a);
}

int tk_store_apply_idp(tk_txn *txn, const tk_op *op, bool *changed)
{
    TK_ASSERT(op->type == TK_OP_IDP_EVENT);
    const tk_op_idp_event *ev = &op->idp_event;
    uint8_t replay[TK_HASH_LEN];
    tk_store_replay_key(ev->source, tk_op_iss_get(&ev->iss), tk_op_id_get(&ev->event_id), replay);
    int64_t until = 0;
    int rc = tk_store_seen_get(txn, replay, &until);
    if (rc != TK_E_NOTFOUND) {
        return rc; /* 0: already applied (a replay or a retry), nothing to do */
    }
    rc = tk_store_seen_put(txn, replay, ev->until);
    unsigned pruned = 0;
    if (rc == 0) {
        rc = tk_store_seen_prune(txn, op->at, TK_SEEN_PRUNE_MAX, &pruned);
    }
    if (rc != 0) {
        return rc;
    }
    expand e = {.txn = txn,
                .op = op,
                .ev = ev,
                .ch = {.state = ev->state,
                       .hold = ev->hold,
                       .reason = tk_op_reason_get(&ev->reason),
                       .at = op->at}};
    rc = tk_store_each_idp_session(txn, ev->match, each_sid, &e);
    rc = e.err != 0 ? e.err : rc;
    if (rc < 0) {
        return rc;
    }
    if (e.matched >= TK_IDP_MATCH_MAX) {
        tk_log_warn("idp_match_limit", "sessions=%u limit=%d", e.matched, TK_IDP_MATCH_MAX);
    }
    rc = write_audit(&e);
    *changed = rc == 0;
    return rc;
}
