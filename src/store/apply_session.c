/*
 * The session state machine, shared by the session op (tokenctl, the
 * daemon) and the IdP-event op, which applies it to every session its match
 * key names. It lives apart from the op dispatcher so that apply_idp.c calls
 * down into it instead of re-entering tk_store_apply.
 *
 * The one idea: a suspension is a hold with an owner. A session carries a
 * set of holds; suspending sets the owner's hold, resuming lifts only that
 * owner's hold, and the session is active again only when no hold is left.
 * Termination is final and ignores holds.
 */
#include "store_int.h"

/* Move s as ch asks; returns whether anything changed. */
static bool session_move(tk_session_rec *s, const tk_session_change *ch)
{
    if (s->state == TK_SESSION_TERMINATED) {
        return false; /* final */
    }
    if (ch->state == TK_SESSION_TERMINATED) {
        s->state = TK_SESSION_TERMINATED;
        s->ended_at = ch->at;
        s->reason = ch->reason.len > 0 ? ch->reason : s->reason;
        return true;
    }
    TK_ASSERT(ch->hold >= TK_HOLD_ADMIN && ch->hold <= TK_HOLD_LAST);
    uint8_t bit = TK_HOLD_BIT(ch->hold);
    uint8_t holds =
        ch->state == TK_SESSION_SUSPENDED ? (uint8_t)(s->holds | bit) : (uint8_t)(s->holds & ~bit);
    if (holds == s->holds) {
        return false; /* that owner's hold is already set / not there */
    }
    if (s->holds == 0) {
        s->ended_at = ch->at; /* suspended since */
    }
    s->holds = holds;
    if (holds == 0) {
        s->state = TK_SESSION_ACTIVE;
        s->ended_at = 0;
        s->reason = TK_SLICE_NULL;
        return true;
    }
    s->state = TK_SESSION_SUSPENDED;
    if (ch->state == TK_SESSION_SUSPENDED && ch->reason.len > 0) {
        s->reason = ch->reason;
    }
    return true;
}

int tk_store_session_change(tk_txn *txn, tk_slice sid, const tk_session_change *ch, bool *changed)
{
    TK_ASSERT(ch->state >= TK_SESSION_ACTIVE && ch->state <= TK_SESSION_TERMINATED);
    *changed = false;
    tk_session_rec s;
    int rc = tk_store_get_session(txn, sid, &s);
    if (rc != 0 || !session_move(&s, ch)) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    /* s's slices point into the map; the put re-encodes them into a stack
     * buffer before mdb_put touches any page. Match keys never change. */
    rc = tk_store_put_session(txn, sid, &s, TK_PUT_NO_INDEX);
    /* Edge caches hear of an end, a suspension and a return to active; a
     * hold lifted while another stays changes nothing they cache. */
    uint8_t kind = ch->state == TK_SESSION_TERMINATED  ? TK_SSF_SESSION_REVOKED
                   : ch->state == TK_SESSION_SUSPENDED ? TK_SSF_SESSION_SUSPENDED
                   : s.state == TK_SESSION_ACTIVE      ? TK_SSF_SESSION_RESUMED
                                                       : 0;
    if (rc == 0 && kind != 0) {
        tk_ssf_event_rec ev = {.kind = kind,
                               .at = ch->at,
                               .id = sid,
                               .reason = ch->reason,
                               .hold = ch->state == TK_SESSION_TERMINATED ? 0 : ch->hold};
        rc = tk_store_ssf_note(txn, &ev);
    }
    *changed = rc == 0;
    return rc;
}
