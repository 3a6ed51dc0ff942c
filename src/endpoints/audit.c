/*
 * Agent access audit: which agents (client ids) forward-auth let through, or
 * refused, at which protected resource, and when.
 *
 * The hot path only bumps a counter in the worker's own fixed table (an
 * open-addressing index over at most TK_AGENT_AUDIT_ENTRIES pairs; no allocation,
 * no lock). About once a second, from batch_begin, the worker folds the
 * table into the store: one TK_OP_AGENT_ACCESS op per pair, TK_OPS_PER_REQ
 * ops per committer request, then starts over with an empty table. The
 * committer adds the counts to the agent_access DBI; `tokenctl audit agents`
 * and /metrics read them back. A full table counts the extra decisions as
 * overflow; a full committer queue puts the fold off to the next second; a
 * failed commit loses that request's counts (counted as lost). Counts are
 * additive, so the audit is at-least-once under a replayed op log.
 */
#include "endpoints_int.h"

#include "tokend/log.h"

#include <string.h>

static uint32_t hash_pair(tk_slice client, const tk_resource *res)
{
    uint32_t h = 2166136261u ^ res->id_hash;
    for (size_t i = 0; i < client.len; i++) {
        h = (h ^ (uint8_t)client.p[i]) * 16777619u;
    }
    return h;
}

static bool same_pair(const ep_audit_entry *e, uint32_t h, tk_slice client, const tk_resource *res)
{
    return e->hash == h && e->client_len == client.len &&
           memcmp(e->client, client.p, client.len) == 0 &&
           (e->res == res || tk_slice_eq(e->res->id, res->id));
}

/* The entry for the pair, created if there is room; NULL when full. */
static ep_audit_entry *find(ep_audit *a, tk_slice client, const tk_resource *res)
{
    uint32_t h = hash_pair(client, res);
    for (uint32_t k = 0; k < TK_AGENT_AUDIT_SLOTS; k++) {
        uint32_t s = (h + k) & (TK_AGENT_AUDIT_SLOTS - 1);
        uint16_t idx = a->slot[s];
        if (idx == 0) {
            if (a->n >= TK_AGENT_AUDIT_ENTRIES) {
                return NULL;
            }
            ep_audit_entry *e = &a->e[a->n];
            memset(e, 0, offsetof(ep_audit_entry, client));
            e->res = res;
            e->hash = h;
            e->client_len = (uint8_t)client.len;
            memcpy(e->client, client.p, client.len);
            a->slot[s] = (uint16_t)(++a->n);
            return e;
        }
        ep_audit_entry *e = &a->e[idx - 1];
        if (same_pair(e, h, client, res)) {
            return e;
        }
    }
    return NULL; /* unreachable while the index is at most half full */
}

void ep_audit_record(ep_worker *w, tk_slice client, const tk_resource *res, bool allowed)
{
    if (client.len == 0 || client.len > TK_ID_MAX || res == NULL) {
        return;
    }
    ep_audit_entry *e = find(&w->audit, client, res);
    if (e == NULL) {
        ep_add(&w->m.audit_overflow, 1);
        return;
    }
    uint32_t *c = allowed ? &e->allowed : &e->denied;
    *c += *c < UINT32_MAX ? 1u : 0u;
    e->last_seen = w->now;
}

/* Rebuild the index over entries [0, n). */
static void reindex(ep_audit *a)
{
    memset(a->slot, 0, sizeof a->slot);
    for (unsigned i = 0; i < a->n; i++) {
        uint32_t h = a->e[i].hash;
        for (uint32_t k = 0; k < TK_AGENT_AUDIT_SLOTS; k++) {
            uint32_t s = (h + k) & (TK_AGENT_AUDIT_SLOTS - 1);
            if (a->slot[s] == 0) {
                a->slot[s] = (uint16_t)(i + 1);
                break;
            }
        }
    }
}

_Static_assert(TK_RESOURCE_ID_MAX <= TK_ACCESS_RESOURCE_MAX, "an access op holds a resource id");

static void fill_op(tk_op *op, const ep_audit_entry *e, int64_t now)
{
    *op = tk_op_make(TK_OP_AGENT_ACCESS, e->last_seen > 0 ? e->last_seen : now);
    tk_op_agent_access *x = &op->agent_access;
    TK_ASSERT(tk_op_id_set(&x->client, (tk_slice){e->client, e->client_len}) == 0);
    TK_ASSERT(tk_op_resource_set(&x->resource, e->res->id) == 0);
    x->allowed = e->allowed;
    x->denied = e->denied;
}

void ep_audit_fold(ep_worker *w, bool force)
{
    ep_audit *a = &w->audit;
    tk_committer *c = w->app->cfg.committer;
    if (a->n == 0 || c == NULL || (!force && a->folded_at == w->now)) {
        return;
    }
    a->folded_at = w->now;
    unsigned done = 0;
    while (done < a->n) { /* bounded: done grows by up to TK_OPS_PER_REQ per turn */
        tk_commit_req req = {.worker = w->id, .cookie = EP_AUDIT_COOKIE, .nops = 0};
        unsigned k = done;
        for (; k < a->n && req.nops < TK_OPS_PER_REQ; k++) {
            fill_op(&req.ops[req.nops++], &a->e[k], w->now);
        }
        if (tk_committer_submit(c, &req) != 0) {
            ep_add(&w->m.audit_deferred, 1);
            break; /* queue full: keep the rest for the next fold */
        }
        ep_add(&w->m.audit_submitted, 1);
        done = k;
    }
    TK_ASSERT(done <= a->n);
    memmove(a->e, a->e + done, (a->n - done) * sizeof a->e[0]);
    a->n -= done;
    reindex(a);
}

void ep_audit_done(ep_worker *w, int64_t result)
{
    if (result != 0) {
        ep_add(&w->m.audit_lost, 1);
        tk_log_warn("audit_lost", "worker=%u err=%s", w->id, tk_strerror((int)result));
    }
}
