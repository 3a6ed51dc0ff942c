/*
 * Token decisions over a store transaction: the cascade rule (docs/ARCHITECTURE.md §3),
 * client authentication and the plan of an RFC 7009 revocation.
 *
 * The one idea: a token is only as good as everything above it. Deciding
 * walks from the token up its delegation chain (bounded by max_depth), then
 * reads its grant and its session; any missing, revoked, disabled or expired
 * link makes the answer "inactive". Revocation therefore writes one record
 * and never fans out. Everything read here points into the transaction's
 * map, so results die with the transaction.
 */
#include "tokend/core.h"
#include "tokend/crypto.h"

#include <string.h>

/* Outcome of one check: the link is good, it makes the token inactive, or
 * (negative) the store failed. */
enum { LINK_GOOD = 0, LINK_BAD = 1 };

/* A lookup result mapped onto the tri-state: a missing or undecodable record
 * is simply a bad link (the store logged corruption); anything else is an
 * operating error. */
static int lookup_outcome(int rc)
{
    if (rc == 0) {
        return LINK_GOOD;
    }
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return LINK_BAD;
    }
    return TK_E_STORE;
}

static bool token_in_time(const tk_token_rec *t, int64_t now)
{
    return t->revoked_at == 0 && t->nbf <= now && now < t->exp;
}

static int client_good(tk_txn *txn, tk_slice client_id)
{
    tk_client_rec c;
    int rc = lookup_outcome(tk_store_get_client(txn, client_id, &c));
    if (rc != LINK_GOOD) {
        return rc;
    }
    return c.status == TK_CLIENT_APPROVED ? LINK_GOOD : LINK_BAD;
}

/*
 * Walk from out->tok up the parent chain: every token in time and not
 * revoked, every token's client approved, at most max_depth links. Collects
 * the actors (client ids, current first) for delegated tokens.
 */
static int check_chain(tk_txn *txn, unsigned max_depth, int64_t now, tk_introspection *out)
{
    TK_ASSERT(max_depth <= TK_DEPTH_MAX);
    tk_token_rec cur = out->tok;
    for (unsigned i = 0; i <= max_depth; i++) {
        if (!token_in_time(&cur, now)) {
            return LINK_BAD;
        }
        int rc = client_good(txn, cur.client_id);
        if (rc != LINK_GOOD) {
            return rc;
        }
        out->actors[i] = cur.client_id;
        if (!cur.has_parent) {
            out->nactors = out->tok.has_parent ? i + 1 : 0;
            return LINK_GOOD;
        }
        if (i == max_depth) {
            break; /* one link more than allowed */
        }
        rc = lookup_outcome(tk_store_get_token(txn, cur.parent, &cur));
        if (rc != LINK_GOOD) {
            return rc;
        }
    }
    return LINK_BAD;
}

static int check_grant(tk_txn *txn, tk_slice grant_id)
{
    tk_grant_rec g;
    int rc = lookup_outcome(tk_store_get_grant(txn, grant_id, &g));
    if (rc != LINK_GOOD) {
        return rc;
    }
    return g.state == TK_GRANT_ACTIVE ? LINK_GOOD : LINK_BAD;
}

static int check_session(tk_txn *txn, tk_slice sid, int64_t now, tk_slice *sub)
{
    tk_session_rec s;
    int rc = lookup_outcome(tk_store_get_session(txn, sid, &s));
    if (rc != LINK_GOOD) {
        return rc;
    }
    if (s.state != TK_SESSION_ACTIVE || (s.expires != 0 && now >= s.expires)) {
        return LINK_BAD;
    }
    if (s.sub.len > 0) {
        *sub = s.sub;
    }
    return LINK_GOOD;
}

static int decide(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN], int64_t now,
                  const tk_client_rec *caller, tk_introspection *out)
{
    int rc = lookup_outcome(tk_store_get_token(txn, hash, &out->tok));
    if (rc != LINK_GOOD) {
        return rc;
    }
    if (caller != NULL && caller->resource.len > 0 &&
        !tk_slice_eq(out->tok.aud, caller->resource)) {
        return LINK_BAD; /* not meant for this resource server */
    }
    rc = check_chain(txn, cfg->max_depth, now, out);
    if (rc != LINK_GOOD) {
        return rc;
    }
    rc = check_grant(txn, out->tok.grant_id);
    if (rc != LINK_GOOD) {
        return rc;
    }
    out->sub = out->tok.sub;
    return check_session(txn, out->tok.sid, now, &out->sub);
}

int tk_core_introspect(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN],
                       int64_t now, const tk_client_rec *caller, tk_introspection *out)
{
    out->active = false;
    out->nactors = 0;
    out->sub = TK_SLICE_NULL;
    int rc = decide(txn, cfg, hash, now, caller, out);
    if (rc < 0) {
        out->nactors = 0;
        return TK_E_STORE;
    }
    out->active = rc == LINK_GOOD;
    if (!out->active) {
        out->nactors = 0;
    }
    return 0;
}

/* ---- Client authentication ---------------------------------------------- */

/* Compared against when the client id is unknown, so an unknown id costs the
 * same hash and comparison as a known one. No SHA-256 output is all zeros in
 * practice, so it never matches. */
static const uint8_t no_client_hash[TK_HASH_LEN];

int tk_core_authenticate(tk_txn *txn, tk_slice client_id, tk_slice secret, tk_client_rec *out)
{
    uint8_t h[TK_HASH_LEN];
    tk_sha256(secret.p != NULL ? secret.p : "", secret.len, h);

    int rc = TK_E_NOTFOUND;
    if (client_id.len > 0 && client_id.len <= TK_ID_MAX) {
        rc = tk_store_get_client(txn, client_id, out);
    }
    if (rc != 0 && rc != TK_E_NOTFOUND && rc != TK_E_CORRUPT) {
        tk_cleanse(h, sizeof h);
        return TK_E_STORE;
    }
    const uint8_t *want = rc == 0 ? out->secret_hash : no_client_hash;
    bool same = tk_ct_equal(h, want, TK_HASH_LEN);
    tk_cleanse(h, sizeof h);
    if (rc != 0 || !same || out->status != TK_CLIENT_APPROVED) {
        return TK_E_AUTH;
    }
    return 0;
}

bool tk_core_may_introspect(const tk_client_rec *client)
{
    return client->status == TK_CLIENT_APPROVED &&
           (client->role == TK_ROLE_RESOURCE_SERVER || client->role == TK_ROLE_ADMIN);
}

/* ---- Revocation ------------------------------------------------------------ */

static void add_op(tk_commit_req *req, uint8_t type, int64_t now)
{
    TK_ASSERT(req->nops < TK_OPS_PER_REQ);
    tk_op *op = &req->ops[req->nops++];
    memset(op, 0, sizeof *op);
    op->type = type;
    op->at = now;
}

int tk_core_plan_revoke(tk_txn *txn, tk_slice caller_id, const tk_client_rec *caller,
                        const uint8_t hash[TK_HASH_LEN], int64_t now, tk_commit_req *req)
{
    req->nops = 0;
    tk_token_rec tok;
    int rc = lookup_outcome(tk_store_get_token(txn, hash, &tok));
    if (rc != LINK_GOOD) {
        return rc < 0 ? rc : 0; /* unknown: nothing to do (RFC 7009 §2.2) */
    }
    if (caller->role != TK_ROLE_ADMIN && !tk_slice_eq(tok.client_id, caller_id)) {
        return TK_E_FORBIDDEN;
    }
    if (tok.revoked_at == 0) {
        add_op(req, TK_OP_REVOKE_TOKEN, now);
        memcpy(req->ops[req->nops - 1].hash, hash, TK_HASH_LEN);
    }
    if (tok.kind != TK_TOKEN_REFRESH || tok.grant_id.len == 0 || tok.grant_id.len > TK_ID_MAX) {
        return 0;
    }
    tk_grant_rec g;
    rc = lookup_outcome(tk_store_get_grant(txn, tok.grant_id, &g));
    if (rc < 0) {
        req->nops = 0;
        return rc;
    }
    if (rc == LINK_GOOD && g.state == TK_GRANT_ACTIVE) {
        add_op(req, TK_OP_REVOKE_GRANT, now);
        tk_op *op = &req->ops[req->nops - 1];
        memcpy(op->id, tok.grant_id.p, tok.grant_id.len);
        op->id_len = (uint16_t)tok.grant_id.len;
    }
    return 0;
}
