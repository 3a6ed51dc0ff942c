/*
 * POST /introspect (RFC 7662). The JSON view of the answer lives in core
 * (introspect_json.c), shared with `tokenctl token show`.
 *
 * The hot path of tokend: decode the form into fixed buffers, authenticate
 * the resource server, hash the token once, let the core walk the cascade in
 * the worker's read txn, and write the JSON straight into the worker's
 * scratch buffer. Every inactive answer is exactly {"active":false}: the
 * caller never learns why (§2.2).
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/introspect_json.h"
#include "tokend/log.h"

static tk_slice issuer_of(const ep_worker *w)
{
    return tk_slice_from_str(w->app->cfg.issuer);
}

void ep_introspect(ep_req *r)
{
    ep_worker *w = r->w;
    ep_form f;
    tk_txn *txn;
    tk_client_rec caller;
    tk_slice caller_id;
    ep_step begun = ep_begin_client_call(r, &f, &txn, &caller, &caller_id);
    if (begun != EP_STEP_ON) {
        if (begun == EP_STEP_NO_STORE) {
            ep_reply_unavailable(r);
        }
        return;
    }
    if (!tk_core_may_introspect(&caller)) {
        char safe[65];
        ep_log_id(caller_id, safe);
        tk_log_info("auth_failed", "endpoint=introspect client=%s reason=role", safe);
        ep_reply_invalid_client(r);
        return;
    }
    if (!f.token_present) {
        ep_reply_error(r, 400, "invalid_request", NULL);
        return;
    }
    if (TK_UNLIKELY(w->app->cfg.cluster != NULL) &&
        !ep_cluster_fresh(r, &w->m.cluster_stale_introspect)) {
        return;
    }
    tk_introspection res;
    res.active = false;
    res.nactors = 0;
    if (!f.token_oversize) {
        uint8_t hash[TK_HASH_LEN];
        ep_token_hash(w, w->token, f.token_len, hash); /* hashed once per batch hint */
        int rc = tk_core_introspect(txn, &w->app->core, hash, w->now, &caller, &res);
        if (rc != 0) {
            tk_log_error("store_read", "endpoint=introspect err=%s", tk_strerror(rc));
            ep_reply_unavailable(r);
            return;
        }
    }
    ep_add(res.active ? &w->m.introspect_active : &w->m.introspect_inactive, 1);
    size_t n = tk_introspect_json_fast(&res, issuer_of(w), w->scratch, sizeof w->scratch);
    if (n > 0) {
        if (!ep_introspect_signed(r, caller_id, w->scratch, n)) { /* RFC 9701: signed.c */
            ep_reply(r, 200, "application/json", NULL, w->scratch, n);
        }
        return;
    }
    tk_json j;
    tk_json_init(&j, w->scratch, sizeof w->scratch);
    tk_introspect_json(&res, issuer_of(w), &j);
    if (tk_json_finish(&j) != 0 || !ep_introspect_signed(r, caller_id, j.buf, j.len)) {
        ep_reply_json(r, 200, &j);
    }
}
