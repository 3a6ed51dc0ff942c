/*
 * What the three IdP-event endpoints share: the worker's trust snapshot,
 * the replay pre-check, the one op that carries a verified event to the
 * committer, and the outcome of its commit. The handlers (bcl.c, ssf.c,
 * webhook.c) call down into this file; it never calls back into them: each
 * writes its own answer, in its own completion (its row in routes.c).
 *
 * The one idea: a verified event is acknowledged (2xx) only after its op is
 * durable, exactly like a revocation. The op (TK_OP_IDP_EVENT) carries the
 * match key, and the committer expands it to sessions inside the write txn,
 * records the replay key and appends the audit record in the same txn. The
 * read-txn replay check here only answers the common replay early; two
 * copies racing each other are settled by the committer (the second one
 * changes nothing and is answered as a replay).
 */
#include "events_int.h"

#include "tokend/idp_jwks.h"
#include "tokend/log.h"

#include <string.h>

/* ---- Trust snapshot ---------------------------------------------------------------- */

void ep_events_batch_begin(ep_worker *w)
{
    tk_idp_holder *h = w->app->cfg.idp;
    if (h == NULL || tk_idp_holder_gen(h) == w->idp_gen) {
        return; /* the common case: one atomic load */
    }
    tk_idp_unref(w->idp);
    w->idp = tk_idp_holder_get(h, &w->idp_gen);
}

void ep_events_fini(ep_worker *w)
{
    tk_idp_unref(w->idp);
    w->idp = NULL;
    w->idp_gen = 0;
}

const tk_idp_trust *ev_trust(ep_worker *w)
{
    return w->idp;
}

ev_err ev_verify(ep_req *r, const ev_jws *j, const tk_idp_issuer *is, const char **why)
{
    ev_err rc = ev_jws_verify(j, is, why);
    if (rc == EV_BAD_KEY && is->jwks_uri_len > 0 &&
        tk_idp_key_for(is, j->kid, j->kid.p != NULL) == NULL) {
        bool fetching =
            tk_idp_jwks_kid_miss(r->w->app->cfg.jwks, (tk_slice){is->issuer, is->issuer_len});
        if (fetching) {
            *why = "no key with that kid; the issuer's key set is being fetched, retry";
        }
    }
    return rc;
}

/* ---- Logging ------------------------------------------------------------------------- */

void ev_note_set(ev_note *n, const tk_idp_issuer *is, tk_slice id)
{
    ep_log_id(is != NULL ? (tk_slice){is->issuer, is->issuer_len} : TK_SLICE_NULL, n->iss);
    ep_log_id(id, n->id);
}

void ev_log(ep_req *r, const char *outcome, const ev_note *n, const char *why)
{
    tk_log_info("idp_event", "endpoint=%s outcome=%s iss=%s id=%s why=\"%s\"", r->route->label,
                outcome, n->iss[0] ? n->iss : "-", n->id[0] ? n->id : "-", why ? why : "");
}

bool ev_media_is(tk_slice ct, const char *type)
{
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t') {
        n++;
    }
    return tk_slice_eq_nocase((tk_slice){ct.p, n}, type);
}

/* ---- Submit -------------------------------------------------------------------------- */

static void fill_op(tk_op *op, const ev_action *a, int64_t now)
{
    tk_slice iss = {a->is->issuer, a->is->issuer_len};
    *op = tk_op_make(TK_OP_IDP_EVENT, now);
    tk_op_idp_event *e = &op->idp_event;
    e->state = a->state;
    e->hold = a->state == TK_SESSION_TERMINATED ? 0 : a->hold;
    e->source = a->source;
    e->until = a->until >= now ? a->until : now;
    TK_ASSERT(a->event_id.len > 0 && a->event_id.len <= TK_EVENT_ID_MAX);
    TK_ASSERT(tk_op_id_set(&e->event_id, a->event_id) == 0);
    TK_ASSERT(tk_op_reason_set(&e->reason, tk_slice_from_str(a->reason)) == 0);
    TK_ASSERT(tk_op_iss_set(&e->iss, iss) == 0);
    tk_store_idp_key(a->match.kind, iss, a->match.value, e->match);
    if (a->match.has_filter) {
        e->has_filter = true;
        tk_store_idp_key(TK_IDP_KEY_SUB, iss, a->match.filter_sub, e->filter);
    }
}

ev_err ev_submit(ep_req *r, const ev_action *a)
{
    ep_worker *w = r->w;
    tk_txn *txn = ep_txn(w);
    if (txn == NULL) {
        return EV_UNAVAILABLE;
    }
    uint8_t replay[TK_HASH_LEN];
    int64_t until = 0;
    tk_store_replay_key(a->source, (tk_slice){a->is->issuer, a->is->issuer_len}, a->event_id,
                        replay);
    int rc = tk_store_seen_get(txn, replay, &until);
    if (rc == 0) {
        return EV_REPLAY;
    }
    if (rc != TK_E_NOTFOUND) {
        return EV_UNAVAILABLE;
    }
    tk_commit_req creq = {.worker = w->id, .cookie = r->cookie, .nops = 1};
    fill_op(&creq.ops[0], a, w->now);
    TK_ASSERT(tk_op_validate(&creq.ops[0]) == 0);
    tk_committer *c = w->app->cfg.committer;
    rc = c != NULL ? tk_committer_submit(c, &creq) : TK_E_STORE;
    if (rc != 0) {
        tk_log_warn("idp_event_unavailable", "err=%s", tk_strerror(rc));
        return EV_UNAVAILABLE;
    }
    r->deferred = true;
    return EV_OK;
}

/* ---- Completion ---------------------------------------------------------------------- */

ev_err ev_completed(ep_req *r, const tk_server_done *done, const char **why)
{
    if (done->result != 0) {
        tk_log_error("idp_event_failed", "endpoint=%s err=%s", r->route->label,
                     tk_strerror((int)done->result));
        *why = "store unavailable";
        return EV_UNAVAILABLE;
    }
    /* The op changes nothing only when its replay key was already known:
     * another copy of the event won the race to the committer. */
    bool fresh = done->aux > 0;
    tk_log_info("idp_event_done", "endpoint=%s applied=%s", r->route->label,
                fresh ? "yes" : "replay");
    *why = fresh ? NULL : "event id replayed";
    return fresh ? EV_OK : EV_REPLAY;
}

ev_err ev_check_common(json_t *claims, ev_action *a, int64_t now, bool require_exp,
                       ev_err missing_jti, const char **why)
{
    ev_err rc = ev_check_aud(claims, a->is);
    if (rc != EV_OK) {
        *why = "aud does not hold our audience";
        return rc;
    }
    rc = ev_check_times(claims, a->is, now, require_exp, &a->until, why);
    if (rc != EV_OK) {
        return rc;
    }
    if (ev_claim_str(claims, "jti", TK_EVENT_ID_MAX, &a->event_id) != EV_OK ||
        a->event_id.p == NULL) {
        *why = "jti missing or longer than 128 bytes";
        return missing_jti;
    }
    return EV_OK;
}
