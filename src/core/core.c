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

/* Each check below answers "is this link good?" as a bool. A missing or
 * undecodable record is simply a bad link (the store logged corruption); any
 * other failure is an operating error, kept in *err (TK_E_STORE) and also
 * answered false, so the walk stops at the first one. */
static bool read_ok(int rc, int *err)
{
    if (rc != 0 && rc != TK_E_NOTFOUND && rc != TK_E_CORRUPT) {
        *err = TK_E_STORE;
    }
    return rc == 0;
}

static bool token_in_time(const tk_token_rec *t, int64_t now)
{
    return t->revoked_at == 0 && t->nbf <= now && now < t->exp;
}

/* The client is approved, and the token was issued under its current
 * generation: a client that was ever disabled after the token was issued
 * has moved on, so the token stays dead whatever its status is now. Read
 * from the client record the walk fetches anyway: O(1) per link. */
static bool client_good(tk_txn *txn, const tk_token_rec *t, tk_slice *may_act, int *err)
{
    tk_client_rec c;
    if (!read_ok(tk_store_get_client(txn, t->client_id, &c), err)) {
        return false;
    }
    if (may_act != NULL && TK_UNLIKELY(c.delegate_to.len > 0) &&
        memchr(c.delegate_to.p, ' ', c.delegate_to.len) == NULL &&
        !tk_slice_eq(c.delegate_to, TK_SLICE_LIT("*"))) {
        *may_act = c.delegate_to;
    }
    return c.status == TK_CLIENT_APPROVED && c.generation == t->client_gen;
}

/*
 * Walk from out->tok up the parent chain: every token in time and not
 * revoked, every token's client approved at the token's generation, at most
 * max_depth links. Collects the actors (client ids, current first) for
 * delegated tokens.
 */
static bool check_chain(tk_txn *txn, unsigned max_depth, int64_t now, tk_introspection *out,
                        int *err)
{
    TK_ASSERT(max_depth <= TK_DEPTH_MAX);
    tk_token_rec cur = out->tok;
    for (unsigned i = 0; i <= max_depth; i++) {
        if (!token_in_time(&cur, now) ||
            !client_good(txn, &cur, i == 0 ? &out->may_act : NULL, err)) {
            return false;
        }
        out->actors[i] = cur.client_id;
        if (!cur.has_parent) {
            out->nactors = out->tok.has_parent ? i + 1 : 0;
            return true;
        }
        if (i == max_depth) {
            break; /* one link more than allowed */
        }
        if (!read_ok(tk_store_get_token(txn, cur.parent, &cur), err)) {
            return false;
        }
    }
    return false;
}

static bool check_grant(tk_txn *txn, tk_slice grant_id, int *err)
{
    tk_grant_rec g;
    return read_ok(tk_store_get_grant(txn, grant_id, &g), err) && g.state == TK_GRANT_ACTIVE;
}

/* Active: not terminated, not past its expiry, and carrying no hold. */
static bool check_session(tk_txn *txn, tk_slice sid, int64_t now, tk_introspection *out, int *err)
{
    tk_session_rec s;
    if (!read_ok(tk_store_get_session(txn, sid, &s), err)) {
        return false;
    }
    if (s.state != TK_SESSION_ACTIVE || s.holds != 0 || (s.expires != 0 && now >= s.expires)) {
        return false;
    }
    if (s.sub.len > 0) {
        out->sub = s.sub;
    }
    out->idp_iss = s.issuer;
    return true;
}

/* Who may see the token at all, before any ancestor is read. A refresh
 * token is for the authorization server: it is never a bearer credential
 * and is inactive to resource servers (admins and admin tools see it). A
 * resource server with a resource set sees only tokens for that resource. */
static bool visible(const tk_token_rec *t, const tk_client_rec *caller, bool bearer)
{
    if (t->kind != TK_TOKEN_ACCESS &&
        (bearer || (caller != NULL && caller->role != TK_ROLE_ADMIN))) {
        return false;
    }
    return caller == NULL || caller->resource.len == 0 || tk_slice_eq(t->aud, caller->resource);
}

static bool decide(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN],
                   int64_t now, const tk_client_rec *caller, bool bearer, tk_introspection *out,
                   int *err)
{
    if (!read_ok(tk_store_get_token(txn, hash, &out->tok), err) ||
        !visible(&out->tok, caller, bearer) || !check_chain(txn, cfg->max_depth, now, out, err) ||
        !check_grant(txn, out->tok.grant_id, err)) {
        return false;
    }
    out->sub = out->tok.sub;
    return check_session(txn, out->tok.sid, now, out, err);
}

static int introspect(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN],
                      int64_t now, const tk_client_rec *caller, bool bearer, tk_introspection *out)
{
    out->active = false;
    out->nactors = 0;
    out->sub = TK_SLICE_NULL;
    out->may_act = TK_SLICE_NULL;
    out->idp_iss = TK_SLICE_NULL;
    int err = 0;
    out->active = decide(txn, cfg, hash, now, caller, bearer, out, &err);
    if (!out->active) {
        out->nactors = 0;
    }
    if (err != 0) {
        out->active = false;
        return TK_E_STORE;
    }
    return 0;
}

int tk_core_introspect(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN],
                       int64_t now, const tk_client_rec *caller, tk_introspection *out)
{
    return introspect(txn, cfg, hash, now, caller, false, out);
}

int tk_core_introspect_bearer(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN],
                              int64_t now, tk_introspection *out)
{
    return introspect(txn, cfg, hash, now, NULL, true, out);
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
    if (rc != 0 || !same || out->status != TK_CLIENT_APPROVED || tk_core_cert_client(out)) {
        return TK_E_AUTH;
    }
    return 0;
}

bool tk_core_cert_client(const tk_client_rec *c)
{
    return c->has_tls_thumbprint || c->tls_subject.len > 0 || c->tls_san.len > 0;
}

/* The presented certificate satisfies every binding the client has (and
 * it has at least one). */
static bool cert_matches(const tk_client_rec *c, const tk_peer_cert *cert)
{
    tk_cert_want w = {.subject = c->tls_subject,
                      .san = c->tls_san,
                      .thumbprint = c->has_tls_thumbprint ? c->tls_thumbprint : NULL};
    return tk_cert_satisfies(cert, &w);
}

int tk_core_authenticate_cert(tk_txn *txn, tk_slice client_id, const tk_peer_cert *cert,
                              tk_client_rec *out)
{
    int rc = TK_E_NOTFOUND;
    if (client_id.len > 0 && client_id.len <= TK_ID_MAX) {
        rc = tk_store_get_client(txn, client_id, out);
    }
    if (rc != 0 && rc != TK_E_NOTFOUND && rc != TK_E_CORRUPT) {
        return TK_E_STORE;
    }
    if (rc != 0 || out->status != TK_CLIENT_APPROVED || !cert_matches(out, cert)) {
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

static tk_op *add_op(tk_commit_req *req, uint8_t type, int64_t now)
{
    TK_ASSERT(req->nops < TK_OPS_PER_REQ);
    tk_op *op = &req->ops[req->nops++];
    *op = tk_op_make(type, now);
    return op;
}

int tk_core_plan_revoke(tk_txn *txn, tk_slice caller_id, const tk_client_rec *caller,
                        const uint8_t hash[TK_HASH_LEN], int64_t now, tk_commit_req *req)
{
    req->nops = 0;
    int err = 0;
    tk_token_rec tok;
    if (!read_ok(tk_store_get_token(txn, hash, &tok), &err)) {
        return err; /* unknown: nothing to do (RFC 7009 §2.2), or TK_E_STORE */
    }
    if (caller->role != TK_ROLE_ADMIN && !tk_slice_eq(tok.client_id, caller_id)) {
        return TK_E_FORBIDDEN;
    }
    if (tok.revoked_at == 0) {
        memcpy(add_op(req, TK_OP_REVOKE_TOKEN, now)->revoke_token.hash, hash, TK_HASH_LEN);
    }
    if (tok.kind != TK_TOKEN_REFRESH || tok.grant_id.len == 0 || tok.grant_id.len > TK_ID_MAX) {
        return 0;
    }
    tk_grant_rec g;
    bool found = read_ok(tk_store_get_grant(txn, tok.grant_id, &g), &err);
    if (err != 0) {
        req->nops = 0;
        return err;
    }
    if (found && g.state == TK_GRANT_ACTIVE) {
        tk_op *op = add_op(req, TK_OP_REVOKE_GRANT, now);
        TK_ASSERT(tk_op_id_set(&op->revoke_grant.grant, tok.grant_id) == 0);
    }
    return 0;
}
