/*
 * POST /revoke (RFC 7009). The core decides what to write; the committer
 * writes it; the 200 goes out only once the commit is durable (§2.1
 * "immediately", and a 503 means the token must be assumed alive: §2.2.1).
 *
 * So a revocation that changes something is answered in two steps: here it
 * is planned and queued and the request deferred; ep_revoke_done writes
 * the answer when the committer's completion comes back on this worker.
 * Unknown, oversize or already revoked tokens get their 200 at once.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/log.h"

static void reply_ok(ep_req *r)
{
    ep_reply(r, 200, NULL, NULL, "", 0);
}

static void reply_unavailable(ep_req *r)
{
    ep_add(&r->w->m.revoke_unavailable, 1);
    ep_reply_unavailable(r);
}

/* Queue the planned ops; defer on success. */
static void submit(ep_req *r, tk_commit_req *creq, const uint8_t hash[TK_HASH_LEN],
                   tk_slice caller_id)
{
    ep_worker *w = r->w;
    char ref[16], safe[65];
    tk_hash_ref(hash, ref);
    ep_log_id(caller_id, safe);
    tk_committer *c = w->app->cfg.committer;
    creq->worker = w->id;
    creq->cookie = r->cookie;
    int rc = c != NULL ? tk_committer_submit(c, creq) : TK_E_STORE;
    if (rc != 0) {
        tk_log_warn("revoke_unavailable", "token=%s client=%s err=%s", ref, safe, tk_strerror(rc));
        reply_unavailable(r);
        return;
    }
    TK_ASSERT(creq->nops > 0);
    bool grant = creq->ops[creq->nops - 1].type == TK_OP_REVOKE_GRANT;
    tk_log_info("revoke", "token=%s client=%s ops=%u grant=%s", ref, safe, creq->nops,
                grant ? "yes" : "no");
    r->deferred = true;
}

void ep_revoke(ep_req *r)
{
    ep_worker *w = r->w;
    ep_form f;
    tk_txn *txn;
    tk_client_rec caller;
    tk_slice caller_id;
    ep_step begun = ep_begin_client_call(r, &f, &txn, &caller, &caller_id);
    if (begun != EP_STEP_ON) {
        if (begun == EP_STEP_NO_STORE) {
            reply_unavailable(r);
        }
        return;
    }
    if (!f.token_present) {
        ep_reply_error(r, 400, "invalid_request", NULL);
        return;
    }
    if (f.token_oversize) {
        ep_add(&w->m.revoke_noop, 1); /* cannot be ours: unknown token */
        reply_ok(r);
        return;
    }
    uint8_t hash[TK_HASH_LEN];
    tk_sha256(w->token, f.token_len, hash);
    tk_commit_req creq;
    int rc = tk_core_plan_revoke(txn, caller_id, &caller, hash, w->now, &creq);
    if (rc == TK_E_FORBIDDEN) {
        char ref[16], safe[65];
        tk_hash_ref(hash, ref);
        ep_log_id(caller_id, safe);
        tk_log_info("revoke_forbidden", "token=%s client=%s", ref, safe);
        ep_add(&w->m.revoke_forbidden, 1);
        ep_reply_error(r, 400, "unauthorized_client", NULL);
        return;
    }
    if (rc != 0) {
        tk_log_error("store_read", "endpoint=revoke err=%s", tk_strerror(rc));
        reply_unavailable(r);
        return;
    }
    if (creq.nops == 0) {
        ep_add(&w->m.revoke_noop, 1);
        reply_ok(r);
        return;
    }
    submit(r, &creq, hash, caller_id);
}

void ep_revoke_done(ep_req *r, const tk_server_done *done)
{
    if (done->result != 0) {
        tk_log_error("revoke_failed", "worker=%u err=%s", r->w->id, tk_strerror((int)done->result));
        reply_unavailable(r);
        return;
    }
    ep_add(done->aux > 0 ? &r->w->m.revoke_revoked : &r->w->m.revoke_noop, 1);
    reply_ok(r);
}
