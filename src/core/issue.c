/*
 * Issuance: minting tokens (and, for a fresh authorization, their grant) in a
 * write transaction. Used by tokenctl today and by /token later.
 *
 * A root token gets a new grant tying client, user and session together; a
 * delegated token (RFC 8693) borrows its parent's grant, user and session,
 * can only narrow the parent's scope and never outlives it. Values read from
 * LMDB inside a write txn are only valid until the next write, so everything
 * the new records need is copied into a local plan before anything is put.
 */
#include "tokend/core.h"
#include "tokend/crypto.h"

#include <string.h>

/* What the new token(s) will carry, owned by the plan (not by the map). */
typedef struct plan {
    char client_id[TK_ID_MAX];
    char sub[TK_SUB_MAX];
    char sid[TK_ID_MAX];
    char grant_id[TK_ID_MAX + 1];
    char scope[TK_SCOPE_MAX];
    char aud[TK_AUD_MAX];
    size_t client_id_len, sub_len, sid_len, grant_id_len, scope_len, aud_len;
    bool has_parent;
    uint8_t parent[TK_HASH_LEN];
    int64_t exp;
    uint32_t client_gen; /* the receiving client's generation, stamped on the tokens */
} plan;

/* Copy s into a fixed field; TK_E_INVALID when it does not fit. */
static int copy_field(char *dst, size_t cap, size_t *len, tk_slice s)
{
    if (s.len > cap) {
        return TK_E_INVALID;
    }
    if (s.len > 0) {
        memcpy(dst, s.p, s.len);
    }
    *len = s.len;
    return 0;
}

static int fail(const char **why, int rc, const char *msg)
{
    *why = msg;
    return rc;
}

/* NOTFOUND stays NOTFOUND, a corrupt record counts as missing, the rest is
 * an operating error. */
static int read_rc(int rc)
{
    if (rc == TK_E_CORRUPT) {
        return TK_E_NOTFOUND;
    }
    return (rc == 0 || rc == TK_E_NOTFOUND) ? rc : TK_E_STORE;
}

/* The receiving client: exists, approved, and allowed the scope; *gen gets
 * its generation. */
static int check_client(tk_txn *txn, tk_slice client_id, tk_slice scope, uint32_t *gen,
                        const char **why)
{
    tk_client_rec c;
    int rc = read_rc(tk_store_get_client(txn, client_id, &c));
    if (rc == TK_E_NOTFOUND) {
        return fail(why, rc, "no such client");
    }
    if (rc != 0) {
        return fail(why, rc, "store error reading the client");
    }
    if (c.status != TK_CLIENT_APPROVED) {
        return fail(why, TK_E_INVALID, "client is not approved");
    }
    if (c.scope.len > 0 && !tk_core_scope_subset(scope, c.scope)) {
        return fail(why, TK_E_INVALID, "scope not allowed for this client");
    }
    *gen = c.generation;
    return 0;
}

/* Non-delegated: the session must be active; a new grant is created. */
static int plan_root(tk_txn *txn, const tk_issue_req *req, int64_t now, plan *p, const char **why)
{
    tk_session_rec s;
    int rc = read_rc(tk_store_get_session(txn, req->sid, &s));
    if (rc != 0) {
        return fail(why, rc, rc == TK_E_NOTFOUND ? "no such session" : "store error");
    }
    if (s.state != TK_SESSION_ACTIVE || s.holds != 0 || (s.expires != 0 && now >= s.expires)) {
        return fail(why, TK_E_INVALID, "session is not active");
    }
    if (copy_field(p->sub, sizeof p->sub, &p->sub_len, s.sub) != 0 ||
        copy_field(p->sid, sizeof p->sid, &p->sid_len, req->sid) != 0 ||
        copy_field(p->scope, sizeof p->scope, &p->scope_len, req->scope) != 0 ||
        copy_field(p->aud, sizeof p->aud, &p->aud_len, req->aud) != 0) {
        return fail(why, TK_E_INVALID, "a field exceeds its limit");
    }
    rc = check_client(txn, req->client_id, req->scope, &p->client_gen, why);
    if (rc != 0) {
        return rc;
    }
    rc = tk_id_new("tkg_", p->grant_id, sizeof p->grant_id);
    if (rc != 0) {
        return fail(why, TK_E_STORE, "cannot draw random bytes");
    }
    p->grant_id_len = strlen(p->grant_id);
    p->exp = now + req->ttl;
    return 0;
}

/* The scope and audience a delegated token gets from the request and its
 * parent: empty means inherit; otherwise only narrowing is allowed. */
static int narrow_from_parent(const tk_issue_req *req, const tk_token_rec *parent, plan *p,
                              const char **why)
{
    tk_slice scope = req->scope.len > 0 ? req->scope : parent->scope;
    if (!tk_core_scope_subset(scope, parent->scope)) {
        return fail(why, TK_E_INVALID, "scope is not a subset of the parent's");
    }
    tk_slice aud = req->aud.len > 0 ? req->aud : parent->aud;
    if (parent->aud.len > 0 && !tk_slice_eq(aud, parent->aud)) {
        return fail(why, TK_E_INVALID, "audience differs from the parent's");
    }
    if (req->sid.len > 0 && !tk_slice_eq(req->sid, parent->sid)) {
        return fail(why, TK_E_INVALID, "sid differs from the parent's");
    }
    if (copy_field(p->scope, sizeof p->scope, &p->scope_len, scope) != 0 ||
        copy_field(p->aud, sizeof p->aud, &p->aud_len, aud) != 0 ||
        copy_field(p->sub, sizeof p->sub, &p->sub_len, parent->sub) != 0 ||
        copy_field(p->sid, sizeof p->sid, &p->sid_len, parent->sid) != 0 ||
        copy_field(p->grant_id, TK_ID_MAX, &p->grant_id_len, parent->grant_id) != 0) {
        return fail(why, TK_E_INVALID, "a field exceeds its limit");
    }
    return 0;
}

/* Delegated: the parent must be active and shallow enough. */
static int plan_delegated(tk_txn *txn, const tk_core_cfg *cfg, const tk_issue_req *req, int64_t now,
                          plan *p, const char **why)
{
    size_t n = strnlen(req->parent_token, TK_TOKEN_IN_MAX + 1);
    if (n > TK_TOKEN_IN_MAX) {
        return fail(why, TK_E_NOTFOUND, "no such parent token");
    }
    tk_sha256(req->parent_token, n, p->parent);
    p->has_parent = true;
    tk_introspection pi;
    int rc = read_rc(tk_store_get_token(txn, p->parent, &pi.tok));
    if (rc != 0) {
        return fail(why, rc, rc == TK_E_NOTFOUND ? "no such parent token" : "store error");
    }
    if (tk_core_introspect(txn, cfg, p->parent, now, NULL, &pi) != 0) {
        return fail(why, TK_E_STORE, "store error");
    }
    if (!pi.active) {
        return fail(why, TK_E_INVALID, "parent token is not active");
    }
    unsigned parent_depth = pi.nactors > 0 ? pi.nactors - 1 : 0;
    if (parent_depth + 1 > cfg->max_depth) {
        return fail(why, TK_E_INVALID, "delegation depth exceeded");
    }
    if (req->refresh) {
        return fail(why, TK_E_INVALID, "delegated tokens get no refresh token");
    }
    rc = narrow_from_parent(req, &pi.tok, p, why);
    if (rc != 0) {
        return rc;
    }
    p->exp = now + req->ttl < pi.tok.exp ? now + req->ttl : pi.tok.exp;
    tk_slice scope = {p->scope, p->scope_len};
    return check_client(txn, req->client_id, scope, &p->client_gen, why);
}

/* Mint one token of the plan and put it (must be new). */
static int put_token(tk_txn *txn, const plan *p, tk_slice client_id, uint8_t kind, int64_t nbf,
                     int64_t iat, int64_t exp, char *out, const char **why)
{
    uint8_t hash[TK_HASH_LEN];
    enum tk_secret_kind sk = kind == TK_TOKEN_REFRESH ? TK_SECRET_REFRESH : TK_SECRET_ACCESS;
    if (tk_secret_new(sk, out, TK_TOKEN_LEN + 1, hash) != 0) {
        return fail(why, TK_E_STORE, "cannot draw random bytes");
    }
    tk_token_rec t = {
        .kind = kind,
        .client_id = client_id,
        .sub = {p->sub, p->sub_len},
        .sid = {p->sid, p->sid_len},
        .grant_id = {p->grant_id, p->grant_id_len},
        .scope = {p->scope, p->scope_len},
        .aud = {p->aud, p->aud_len},
        .has_parent = p->has_parent,
        .iat = iat,
        .nbf = nbf,
        .exp = exp,
        .client_gen = p->client_gen,
    };
    memcpy(t.parent, p->parent, TK_HASH_LEN);
    int rc = tk_store_put_token(txn, hash, &t, TK_PUT_NEW);
    if (rc != 0) {
        *out = '\0';
        return fail(why, rc == TK_E_FULL ? TK_E_FULL : TK_E_STORE, "cannot store the token");
    }
    return 0;
}

static int put_grant(tk_txn *txn, const plan *p, tk_slice client_id, int64_t now, const char **why)
{
    tk_grant_rec g = {
        .client_id = client_id,
        .sub = {p->sub, p->sub_len},
        .sid = {p->sid, p->sid_len},
        .scope = {p->scope, p->scope_len},
        .state = TK_GRANT_ACTIVE,
        .created = now,
    };
    int rc = tk_store_put_grant(txn, (tk_slice){p->grant_id, p->grant_id_len}, &g, TK_PUT_NEW);
    if (rc != 0) {
        return fail(why, rc == TK_E_FULL ? TK_E_FULL : TK_E_STORE, "cannot store the grant");
    }
    return 0;
}

static int check_request(const tk_issue_req *req, const char **why)
{
    if (req->ttl <= 0 || req->not_before < 0) {
        return fail(why, TK_E_INVALID, "ttl must be > 0 and not_before >= 0");
    }
    if (req->refresh && req->refresh_ttl <= 0) {
        return fail(why, TK_E_INVALID, "refresh ttl must be > 0");
    }
    if (req->client_id.len == 0 || req->client_id.len > TK_ID_MAX) {
        return fail(why, TK_E_INVALID, "bad client id");
    }
    if (req->parent_token == NULL && (req->sid.len == 0 || req->sid.len > TK_ID_MAX)) {
        return fail(why, TK_E_INVALID, "bad session id");
    }
    if (req->scope.len > TK_SCOPE_MAX || req->aud.len > TK_AUD_MAX) {
        return fail(why, TK_E_INVALID, "scope or audience too long");
    }
    return 0;
}

int tk_core_issue(tk_txn *wtxn, const tk_core_cfg *cfg, const tk_issue_req *req, int64_t now,
                  tk_issued *out, const char **why)
{
    const char *dummy;
    why = why != NULL ? why : &dummy;
    *why = "";
    memset(out, 0, sizeof *out);
    int rc = check_request(req, why);
    if (rc != 0) {
        return rc;
    }
    plan p;
    memset(&p, 0, sizeof p);
    rc = req->parent_token != NULL ? plan_delegated(wtxn, cfg, req, now, &p, why)
                                   : plan_root(wtxn, req, now, &p, why);
    if (rc != 0) {
        return rc;
    }
    if (!p.has_parent) {
        rc = put_grant(wtxn, &p, req->client_id, now, why);
        if (rc != 0) {
            return rc;
        }
    }
    rc = put_token(wtxn, &p, req->client_id, TK_TOKEN_ACCESS, now + req->not_before, now, p.exp,
                   out->access_token, why);
    if (rc == 0 && req->refresh) {
        rc = put_token(wtxn, &p, req->client_id, TK_TOKEN_REFRESH, now, now, now + req->refresh_ttl,
                       out->refresh_token, why);
    }
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    memcpy(out->grant_id, p.grant_id, p.grant_id_len);
    out->grant_id[p.grant_id_len] = '\0';
    out->exp = p.exp;
    out->expires_in = p.exp - now;
    return 0;
}
