/*
 * Token decisions: the cascade rule, client authentication, what a
 * revocation must write, and issuance. Pure logic over a store transaction:
 * no sockets, no threads, no clocks (callers pass now).
 *
 * The cascade rule (docs/ARCHITECTURE.md §3): a token is active iff its record exists, it
 * is not revoked, nbf <= now < exp, and every ancestor is good: each token on
 * its delegation chain (bounded by max_depth) is itself not revoked and in
 * time, and its client is approved and still at the generation the token
 * was issued under (disabling a client is final for every token it had,
 * even after re-approval); the grant is active; the session is active (not
 * terminated, not past its expiry, carrying no hold).
 */
#ifndef TOKEND_CORE_H
#define TOKEND_CORE_H

#include "tokend/cert.h"
#include "tokend/common.h"
#include "tokend/record.h"
#include "tokend/store.h"
#include "tokend/committer.h"

typedef struct tk_core_cfg {
    unsigned max_depth; /* delegation links allowed, <= TK_DEPTH_MAX */
} tk_core_cfg;

/* The result of an introspection. Slices point into the read txn's map. */
typedef struct tk_introspection {
    bool active;
    tk_token_rec tok;                  /* the token itself (valid when active) */
    tk_slice sub;                      /* the user (from the session / root token) */
    unsigned nactors;                  /* delegation: actors[0] is the current actor (the */
    tk_slice actors[TK_DEPTH_MAX + 1]; /* token's client), then prior actors */
    /* RFC 8693 §4.4: the one client the token's client lets receive a token
     * exchanged from this one (its delegate_to, when that names exactly one
     * client; empty for "*", several or none). From the client record the
     * cascade reads anyway: no extra lookup. */
    tk_slice may_act;
    /* The IdP issuer the token's session is bound to (the session record's
     * issuer: where the user signed in; empty for dev-login and unbound
     * sessions). Introspection answers name it as idp_iss. */
    tk_slice idp_iss;
} tk_introspection;

/*
 * Decide whether the token with this hash is active at now.
 * caller: the authenticated client asking. A caller that is not an admin
 * (a resource server) never sees a refresh token as active: a refresh token
 * is for the authorization server, not a bearer credential. A resource server
 * with a `resource` set only sees tokens whose audience is that resource
 * (others are inactive for it). NULL = admin tools: every kind, no audience
 * restriction.
 * Returns 0 (out->active says the answer) or TK_E_STORE. A record that fails
 * to decode counts as inactive (and was logged by the store).
 */
int tk_core_introspect(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN],
                       int64_t now, const tk_client_rec *caller, tk_introspection *out);

/*
 * The same decision for a token presented as a bearer credential at a
 * protected resource (forward-auth): only an access token can be active; no
 * audience restriction here (the caller matches the resource itself).
 * Returns 0 or TK_E_STORE, as tk_core_introspect.
 */
int tk_core_introspect_bearer(tk_txn *txn, const tk_core_cfg *cfg, const uint8_t hash[TK_HASH_LEN],
                              int64_t now, tk_introspection *out);

/*
 * Authenticate a client by id and secret (constant-time hash comparison).
 * Returns 0 with *out filled (slices into the txn), TK_E_AUTH (unknown id,
 * wrong secret, client not approved, or a client registered for
 * certificate authentication: indistinguishable to the caller), or
 * TK_E_STORE.
 */
int tk_core_authenticate(tk_txn *txn, tk_slice client_id, tk_slice secret, tk_client_rec *out);

/*
 * RFC 8705 §2: authenticate a client by the certificate it presented
 * (NULL: none). The client must be approved and registered with a
 * tls_subject (the certificate chains to tls-ca and its canonical subject
 * is the same), a tls_san (the certificate chains to tls-ca and names it
 * among its first TK_CERT_SANS_MAX subject alternative names) or a
 * tls_thumbprint (the certificate's SHA-256 is the same, compared in
 * constant time); with several, all must hold. Returns 0 with
 * *out, TK_E_AUTH (unknown id, no or another certificate, not approved, a
 * client without a certificate registered) or TK_E_STORE.
 */
int tk_core_authenticate_cert(tk_txn *txn, tk_slice client_id, const tk_peer_cert *cert,
                              tk_client_rec *out);

/* The client is registered for certificate authentication. */
bool tk_core_cert_client(const tk_client_rec *c);

/* May this client call introspection? (role resource_server or admin) */
bool tk_core_may_introspect(const tk_client_rec *client);

/*
 * Plan an RFC 7009 revocation by caller for the token with this hash.
 * Fills req->ops / req->nops (0 ops: unknown token or nothing to do, answer
 * 200 at once). A refresh token's revocation also revokes its grant.
 * Returns 0, TK_E_FORBIDDEN (the token belongs to another client and the
 * caller is not admin: answer 400 unauthorized_client), or TK_E_STORE.
 */
int tk_core_plan_revoke(tk_txn *txn, tk_slice caller_id, const tk_client_rec *caller,
                        const uint8_t hash[TK_HASH_LEN], int64_t now, tk_commit_req *req);

/* ---- Issuance (tokenctl now; the /token endpoint later) ------------------ */

typedef struct tk_issue_req {
    tk_slice sid;             /* required: the session (must be active) */
    tk_slice client_id;       /* required: the client receiving the token (approved) */
    tk_slice scope;           /* requested scope; subset of the client's allowed scope */
    tk_slice aud;             /* audience / resource; may be empty (delegated: inherits) */
    const char *parent_token; /* delegation: the parent token string, or NULL */
    int64_t ttl;              /* seconds, > 0 */
    int64_t not_before;       /* seconds after now before the token becomes valid (>= 0) */
    bool refresh;             /* also issue a refresh token (non-delegated only) */
    int64_t refresh_ttl;
} tk_issue_req;

typedef struct tk_issued {
    char access_token[TK_TOKEN_LEN + 1];
    char refresh_token[TK_TOKEN_LEN + 1]; /* "" unless requested */
    char grant_id[TK_ID_MAX + 1];
    int64_t expires_in;
    int64_t exp;
} tk_issued;

/*
 * Issue in a write txn. Non-delegated: creates a grant (client, sub, sid,
 * scope) and the token(s). Delegated (parent_token set): the parent must be
 * active; the new token's scope must be a subset of the parent's, its expiry
 * is clamped to the parent's, its grant/sub/sid are the parent's, and the
 * chain must stay within max_depth. Every token is stamped with its client's
 * current generation (tk_client_rec.generation).
 * Returns 0, TK_E_NOTFOUND (no such session/client/parent), TK_E_INVALID
 * (inactive parent or session, client not approved, scope not a subset or
 * not allowed, depth exceeded, bad ttl; *why gets a static message),
 * TK_E_FULL or TK_E_STORE.
 */
int tk_core_issue(tk_txn *wtxn, const tk_core_cfg *cfg, const tk_issue_req *req, int64_t now,
                  tk_issued *out, const char **why);

/* True when every space-separated scope in sub also appears in super. An
 * empty sub is a subset of anything. */
bool tk_core_scope_subset(tk_slice sub, tk_slice super);

/* True when the token audience aud (one URI, or several separated by
 * spaces) names resource exactly (RFC 8707: compared as strings). An empty
 * aud or resource never matches. */
bool tk_core_audience_includes(tk_slice aud, tk_slice resource);

/* ---- Authorization server decisions (as.c) -------------------------------- */

/*
 * The scope an authorization request gets: the requested one when every
 * token of it is in supported (n scopes), or — requested empty — all of
 * supported, space-separated, into out (cap bytes). Returns 0 with
 * *out_len, or TK_E_INVALID (invalid_scope: a token not supported, or the
 * result longer than cap).
 */
int tk_core_scope_resolve(tk_slice requested, const tk_slice *supported, unsigned n, char *out,
                          size_t cap, size_t *out_len);

/*
 * Narrowing for refresh and exchange, which may never widen: the mask of
 * the tokens of have (bit i = i-th token) that appear in want (RFC 6749
 * §6: want ⊆ have). want empty → UINT64_MAX (keep all). Returns 0 or
 * TK_E_INVALID (a token of want is not in have, or have has more than 64
 * tokens and want narrows it).
 */
int tk_core_scope_mask(tk_slice want, tk_slice have, uint64_t *mask);

/*
 * Several organisations: what the IdP a user signed in at lets its users
 * grant (the trust file's allowed_resources and allowed_scopes of the
 * session's issuer; the endpoints fill this in from idp.h, which the core
 * does not see). limit_* false: no restriction; true with an empty list:
 * nothing. Lists are space-separated, resources at most
 * TK_IDP_ORG_RESOURCES_LEN bytes, scopes at most TK_SCOPE_MAX.
 */
typedef struct tk_core_org {
    bool limit_resources, limit_scopes;
    tk_slice resources; /* resource identifiers (RFC 8707), compared whole */
    tk_slice scopes;    /* scope names, compared whole */
} tk_core_org;

enum tk_core_org_verdict { TK_ORG_OK = 0, TK_ORG_RESOURCE, TK_ORG_SCOPE };

/*
 * May a user of org hold a token for resource with scope? Asked wherever a
 * grant becomes durable or a token is minted from one (consent, code,
 * refresh, exchange), so that a token never reaches past its session
 * issuer's limits even after they were tightened. A limited resource list
 * never allows a token without a resource; an empty scope is always within
 * the limits. org NULL: no restriction.
 */
enum tk_core_org_verdict tk_core_org_check(const tk_core_org *org, tk_slice resource,
                                           tk_slice scope);

/* True when a token of client from (its client record's delegate_to list:
 * client ids separated by spaces, or "*") may be exchanged for a token of
 * client to (RFC 8693 delegation permission). */
bool tk_core_may_delegate(tk_slice delegate_to, tk_slice to);

/* The redirect URIs of a client record (space-separated in the record)
 * into out (at most max); returns how many. */
size_t tk_core_client_redirects(const tk_client_rec *c, tk_slice *out, size_t max);

/*
 * Client authentication at /token: a confidential client (a secret hash,
 * not TK_CLIENT_F_PUBLIC) must present its secret; a public client
 * (TK_CLIENT_F_PUBLIC) must present none — only its client_id; a client
 * registered for certificate authentication presents no secret and cert
 * must satisfy tk_core_authenticate_cert. The client must be approved.
 * Returns 0 with *out, TK_E_AUTH (unknown, wrong or missing secret or
 * certificate, a secret for a public or certificate client, not approved),
 * TK_E_STORE.
 */
int tk_core_as_client(tk_txn *txn, tk_slice client_id, tk_slice secret, bool has_secret,
                      const tk_peer_cert *cert, tk_client_rec *out);

/*
 * A refresh token presented at /token: known, a refresh token, issued to
 * client_id (RFC 6749 §6: bound to its client). Returns 0 with *out
 * (slices into the txn), TK_E_NOTFOUND (invalid_grant), TK_E_STORE. The
 * rotation itself (current, reused within the window, replayed) is
 * decided in the write txn (TK_OP_REFRESH).
 */
int tk_core_refresh_check(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_slice client_id,
                          int64_t now, tk_token_rec *out);

#endif
