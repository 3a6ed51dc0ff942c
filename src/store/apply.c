/*
 * The op dispatcher: how each idempotent mutation (record.h) changes the
 * stored records. Built only on the public store API: read the target in the
 * write txn, decide with a pure step, write back only when the state moves.
 * A missing target is a no-op, so replaying a log is safe. The audit op
 * (agent access counts) is the exception: it creates its record and adds to
 * it (at-least-once under replay; see record.h). Session changes and IdP
 * events have files of their own (apply_session.c, apply_idp.c), which never
 * call back into this dispatcher.
 */
#include <string.h>

#include "store_int.h"

/* Each apply_* reads the target (missing → no-op), decides, and writes back
 * only when the state moves. Decoded slices point into the map; the put
 * re-encodes them into a stack buffer (store.c) before mdb_put touches any
 * page, so reading and rewriting the same record in one txn is safe. */

static int apply_revoke_token(tk_txn *txn, const tk_op *op, bool *changed)
{
    const uint8_t *hash = op->revoke_token.hash;
    tk_token_rec t;
    int rc = tk_store_get_token(txn, hash, &t);
    if (rc != 0 || t.revoked_at != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    char sid[TK_ID_MAX]; /* the writes below may move the page t's slices are in */
    tk_ssf_event_rec ev = {.kind = TK_SSF_TOKEN_REVOKED,
                           .at = op->at,
                           .id = tk_store_keep(t.sid, sid, sizeof sid),
                           .has_hash = true};
    memcpy(ev.hash, hash, TK_HASH_LEN);
    if (t.tid != 0) { /* one bit and one log entry, not the record (revoked.c) */
        rc = tk_store_revoke_id(txn, t.tid, op->at);
    } else {
        t.revoked_at = op->at;
        rc = tk_store_put_token(txn, hash, &t, TK_PUT_NO_INDEX);
    }
    rc = rc != 0 ? rc : tk_store_ssf_note(txn, &ev);
    *changed = rc == 0;
    return rc;
}

static int apply_revoke_grant(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_slice id = tk_op_id_get(&op->revoke_grant.grant);
    tk_grant_rec g;
    int rc = tk_store_get_grant(txn, id, &g);
    if (rc != 0 || g.state == TK_GRANT_REVOKED) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    g.state = TK_GRANT_REVOKED;
    g.revoked_at = op->at;
    char sub[TK_SUB_MAX], client[TK_ID_MAX]; /* the put may rewrite g's page */
    tk_ssf_event_rec ev = {.kind = TK_SSF_GRANT_REVOKED,
                           .at = op->at,
                           .id = id,
                           .sub = tk_store_keep(g.sub, sub, sizeof sub),
                           .client = tk_store_keep(g.client_id, client, sizeof client)};
    rc = tk_store_put_grant(txn, id, &g, TK_PUT_NO_INDEX);
    rc = rc != 0 ? rc : tk_store_ssf_note(txn, &ev);
    *changed = rc == 0;
    return rc;
}

static int apply_session_state(tk_txn *txn, const tk_op *op, bool *changed)
{
    const tk_op_session *s = &op->session;
    tk_session_change ch = {
        .state = s->state, .hold = s->hold, .reason = tk_op_reason_get(&s->reason), .at = op->at};
    return tk_store_session_change(txn, tk_op_id_get(&s->sid), &ch, changed);
}

/* Disabling is final for every token that exists: the move to disabled bumps
 * the client's generation, and a token lives only while its stamped
 * generation equals the client's (core.c). A client whose generation cannot
 * grow any more stays disabled rather than bring its tokens back. */
static bool client_move(tk_client_rec *c, uint8_t status)
{
    if (c->status == status) {
        return false;
    }
    if (status == TK_CLIENT_DISABLED) {
        c->generation += c->generation < UINT32_MAX ? 1u : 0u;
    } else if (c->status == TK_CLIENT_DISABLED && c->generation == UINT32_MAX) {
        return false;
    }
    c->status = status;
    return true;
}

static int apply_client_status(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_slice id = tk_op_id_get(&op->client_status.client);
    tk_client_rec c;
    int rc = tk_store_get_client(txn, id, &c);
    if (rc != 0 || !client_move(&c, op->client_status.status)) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    rc = tk_store_put_client(txn, id, &c, 0);
    if (rc == 0 && op->client_status.status == TK_CLIENT_DISABLED) {
        tk_ssf_event_rec ev = {.kind = TK_SSF_CLIENT_DISABLED, .at = op->at, .client = id};
        rc = tk_store_ssf_note(txn, &ev);
    }
    *changed = rc == 0;
    return rc;
}

static int apply_client_secret(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_slice id = tk_op_id_get(&op->client_secret.client);
    tk_client_rec c;
    int rc = tk_store_get_client(txn, id, &c);
    if (rc != 0 || memcmp(c.secret_hash, op->client_secret.secret_hash, TK_HASH_LEN) == 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    memcpy(c.secret_hash, op->client_secret.secret_hash, TK_HASH_LEN);
    rc = tk_store_put_client(txn, id, &c, 0);
    *changed = rc == 0;
    return rc;
}

/* Counts saturate rather than wrap; first_seen keeps the earliest second. */
static int apply_agent_access(tk_txn *txn, const tk_op *op, bool *changed)
{
    const tk_op_agent_access *x = &op->agent_access;
    tk_slice client = tk_op_id_get(&x->client), resource = tk_op_resource_get(&x->resource);
    tk_agent_access_rec a;
    int rc = tk_store_get_agent_access(txn, client, resource, &a);
    if (rc == TK_E_NOTFOUND) {
        a = (tk_agent_access_rec){.first_seen = op->at, .last_seen = op->at};
    } else if (rc != 0) {
        return rc;
    }
    a.allowed = a.allowed > INT64_MAX - x->allowed ? INT64_MAX : a.allowed + x->allowed;
    a.denied = a.denied > INT64_MAX - x->denied ? INT64_MAX : a.denied + x->denied;
    a.first_seen = op->at < a.first_seen ? op->at : a.first_seen;
    a.last_seen = op->at > a.last_seen ? op->at : a.last_seen;
    rc = tk_store_put_agent_access(txn, client, resource, &a);
    *changed = rc == 0;
    return rc;
}

int tk_store_apply(tk_txn *txn, const tk_op *op, bool *changed)
{
    return tk_store_apply_outcome(txn, op, changed, NULL);
}

int tk_store_apply_outcome(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    bool ch = false;
    uint8_t out = TK_OUT_NONE;
    int rc = tk_op_validate(op);
    if (rc == 0) {
        switch (op->type) {
        case TK_OP_REVOKE_TOKEN:
            rc = apply_revoke_token(txn, op, &ch);
            break;
        case TK_OP_REVOKE_GRANT:
            rc = apply_revoke_grant(txn, op, &ch);
            break;
        case TK_OP_SESSION_STATE:
            rc = apply_session_state(txn, op, &ch);
            break;
        case TK_OP_CLIENT_STATUS:
            rc = apply_client_status(txn, op, &ch);
            break;
        case TK_OP_CLIENT_SECRET:
            rc = apply_client_secret(txn, op, &ch);
            break;
        case TK_OP_AGENT_ACCESS:
            rc = apply_agent_access(txn, op, &ch);
            break;
        case TK_OP_IDP_EVENT:
            rc = tk_store_apply_idp(txn, op, &ch);
            break;
        case TK_OP_SSF_ACK:
            rc = tk_store_ssf_ack(txn, tk_op_id_get(&op->ssf_ack.receiver), op->ssf_ack.seq, &ch);
            break;
        default:
            rc = tk_store_apply_oauth(txn, op, &ch, &out);
            break;
        }
    }
    if (changed != NULL) {
        *changed = ch;
    }
    if (outcome != NULL) {
        *outcome = out;
    }
    return rc;
}
