/*
 * The op semantics: how each idempotent mutation (record.h) changes the
 * stored records. Built only on the public store API: read the target in the
 * write txn, decide with a pure state-machine step, write back only when the
 * state moves. A missing target is a no-op, so replaying a log is safe.
 * The audit op (agent access counts) is the exception: it creates its record
 * and adds to it (at-least-once under replay; see record.h).
 */
#include "store_int.h"

/* Each apply_* reads the target (missing → no-op), decides, and writes back
 * only when the state moves. Decoded slices point into the map; the put
 * re-encodes them into a stack buffer (store.c) before mdb_put touches any
 * page, so reading and rewriting the same record in one txn is safe. */

static int apply_revoke_token(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_token_rec t;
    int rc = tk_store_get_token(txn, op->hash, &t);
    if (rc != 0 || t.revoked_at != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    t.revoked_at = op->at;
    rc = tk_store_put_token(txn, op->hash, &t, TK_PUT_NO_INDEX);
    *changed = rc == 0;
    return rc;
}

static int apply_revoke_grant(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_slice id = {op->id, op->id_len};
    tk_grant_rec g;
    int rc = tk_store_get_grant(txn, id, &g);
    if (rc != 0 || g.state == TK_GRANT_REVOKED) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    g.state = TK_GRANT_REVOKED;
    g.revoked_at = op->at;
    rc = tk_store_put_grant(txn, id, &g, TK_PUT_NO_INDEX);
    *changed = rc == 0;
    return rc;
}

/* The session state machine: terminated is final; suspend only an active
 * session, resume only a suspended one. Returns whether s changed. */
static bool session_move(tk_session_rec *s, const tk_op *op)
{
    if (op->state == TK_SESSION_ACTIVE) {
        if (s->state != TK_SESSION_SUSPENDED) {
            return false;
        }
        s->state = TK_SESSION_ACTIVE;
        s->ended_at = 0;
        s->reason = TK_SLICE_NULL;
        return true;
    }
    if (s->state == TK_SESSION_TERMINATED ||
        (op->state == TK_SESSION_SUSPENDED && s->state != TK_SESSION_ACTIVE)) {
        return false;
    }
    s->state = op->state;
    s->ended_at = op->at;
    if (op->reason_len > 0) {
        s->reason = (tk_slice){op->reason, op->reason_len};
    }
    return true;
}

static int apply_session_state(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_slice sid = {op->id, op->id_len};
    tk_session_rec s;
    int rc = tk_store_get_session(txn, sid, &s);
    if (rc != 0 || !session_move(&s, op)) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    rc = tk_store_put_session(txn, sid, &s, TK_PUT_NO_INDEX); /* keys never change */
    *changed = rc == 0;
    return rc;
}

static int apply_client_status(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_slice id = {op->id, op->id_len};
    tk_client_rec c;
    int rc = tk_store_get_client(txn, id, &c);
    if (rc != 0 || c.status == op->state) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    c.status = op->state;
    rc = tk_store_put_client(txn, id, &c, 0);
    *changed = rc == 0;
    return rc;
}

/* Counts saturate rather than wrap; first_seen keeps the earliest second. */
static int apply_agent_access(tk_txn *txn, const tk_op *op, bool *changed)
{
    tk_slice client = {op->id, op->id_len}, resource = {op->reason, op->reason_len};
    tk_agent_access_rec a;
    int rc = tk_store_get_agent_access(txn, client, resource, &a);
    if (rc == TK_E_NOTFOUND) {
        a = (tk_agent_access_rec){.first_seen = op->at, .last_seen = op->at};
    } else if (rc != 0) {
        return rc;
    }
    a.allowed = a.allowed > INT64_MAX - op->allowed ? INT64_MAX : a.allowed + op->allowed;
    a.denied = a.denied > INT64_MAX - op->denied ? INT64_MAX : a.denied + op->denied;
    a.first_seen = op->at < a.first_seen ? op->at : a.first_seen;
    a.last_seen = op->at > a.last_seen ? op->at : a.last_seen;
    rc = tk_store_put_agent_access(txn, client, resource, &a);
    *changed = rc == 0;
    return rc;
}

int tk_store_apply(tk_txn *txn, const tk_op *op, bool *changed)
{
    bool ch = false;
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
        case TK_OP_AGENT_ACCESS:
            rc = apply_agent_access(txn, op, &ch);
            break;
        case TK_OP_IDP_EVENT:
            rc = tk_store_apply_idp(txn, op, &ch);
            break;
        default:
            TK_ASSERT(op->type == TK_OP_CLIENT_STATUS);
            rc = apply_client_status(txn, op, &ch);
            break;
        }
    }
    if (changed != NULL) {
        *changed = ch;
    }
    return rc;
}
