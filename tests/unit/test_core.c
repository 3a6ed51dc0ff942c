/*
 * Unit tests of the core against a real LMDB store in a temporary folder:
 * the cascade rule link by link (token, delegation chain, grant, session,
 * clients, audience, depth), issuance rules (scope, expiry clamp, depth),
 * the revocation plan and client authentication. Records are made with
 * tk_core_issue and the store's put functions; state changes go through the
 * same idempotent ops the committer applies.
 */
#include "check.h"

#include "tokend/core.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <stdlib.h>
#include <unistd.h>

#define NOW ((int64_t)1800000000)

static tk_store *st;
static tk_core_cfg cfg = {.max_depth = 3};

/* ---- Fixtures ---------------------------------------------------------------------- */

static tk_txn *wbegin(void)
{
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_write_begin(st, &t) == 0);
    return t;
}

static void commit(tk_txn *t)
{
    TK_ASSERT(tk_store_commit(t) == 0);
}

/* A client with a fresh secret (written to secret, may be NULL). */
static void add_client(const char *id, uint8_t role, uint8_t status, const char *scope,
                       const char *resource, char *secret)
{
    char s[TK_TOKEN_LEN + 1];
    tk_client_rec c = {
        .name = tk_slice_from_str(id),
        .scope = tk_slice_from_str(scope),
        .resource = tk_slice_from_str(resource),
        .role = role,
        .status = status,
        .created = NOW - 1000,
    };
    TK_ASSERT(tk_secret_new(TK_SECRET_CLIENT, s, sizeof s, c.secret_hash) == 0);
    if (secret != NULL) {
        memcpy(secret, s, sizeof s);
    }
    tk_txn *t = wbegin();
    TK_ASSERT(tk_store_put_client(t, tk_slice_from_str(id), &c, 0) == 0);
    commit(t);
}

static void add_agent(const char *id)
{
    add_client(id, TK_ROLE_AGENT, TK_CLIENT_APPROVED, "", "", NULL);
}

static void add_session(const char *sid, const char *sub, int64_t expires)
{
    tk_session_rec s = {
        .sub = tk_slice_from_str(sub),
        .issuer = TK_SLICE_LIT("https://idp.example"),
        .state = TK_SESSION_ACTIVE,
        .created = NOW - 1000,
        .expires = expires,
    };
    tk_txn *t = wbegin();
    TK_ASSERT(tk_store_put_session(t, tk_slice_from_str(sid), &s, 0) == 0);
    commit(t);
}

typedef struct issue_args {
    const char *sid, *client, *scope, *aud, *parent;
    int64_t ttl, nbf_in;
    bool refresh;
} issue_args;

static int issue(const issue_args *a, tk_issued *out, const tk_core_cfg *c)
{
    tk_issue_req req = {
        .sid = tk_slice_from_str(a->sid ? a->sid : ""),
        .client_id = tk_slice_from_str(a->client),
        .scope = tk_slice_from_str(a->scope ? a->scope : ""),
        .aud = tk_slice_from_str(a->aud ? a->aud : ""),
        .parent_token = a->parent,
        .ttl = a->ttl ? a->ttl : 3600,
        .not_before = a->nbf_in,
        .refresh = a->refresh,
        .refresh_ttl = 86400,
    };
    const char *why = NULL;
    tk_txn *t = wbegin();
    int rc = tk_core_issue(t, c ? c : &cfg, &req, NOW, out, &why);
    TK_ASSERT(why != NULL);
    if (rc == 0) {
        commit(t);
    } else {
        tk_store_txn_end(t);
    }
    return rc;
}

/* Issue and require success. */
static void must_issue(const issue_args *a, tk_issued *out)
{
    int rc = issue(a, out, NULL);
    CHECK_EQ_INT(rc, 0);
    TK_ASSERT(rc == 0);
}

static void hash_of(const char *token, uint8_t h[TK_HASH_LEN])
{
    tk_sha256(token, strlen(token), h);
}

/* Is token active at `at` for caller (NULL = no audience restriction)? */
static bool active_at(const char *token, int64_t at, const tk_client_rec *caller)
{
    uint8_t h[TK_HASH_LEN];
    hash_of(token, h);
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_introspection r;
    TK_ASSERT(tk_core_introspect(t, &cfg, h, at, caller, &r) == 0);
    if (!r.active) {
        CHECK_EQ_INT(r.nactors, 0);
    }
    tk_store_txn_end(t);
    return r.active;
}

static bool active(const char *token)
{
    return active_at(token, NOW, NULL);
}

static void apply(tk_op *op)
{
    op->at = NOW;
    tk_txn *t = wbegin();
    CHECK_EQ_INT(tk_store_apply(t, op, NULL), 0);
    commit(t);
}

static void revoke_token(const char *token)
{
    tk_op op = tk_op_make(TK_OP_REVOKE_TOKEN, NOW);
    hash_of(token, op.revoke_token.hash);
    apply(&op);
}

static void set_id(tk_op_id *d, const char *id)
{
    TK_ASSERT(tk_op_id_set(d, tk_slice_from_str(id)) == 0);
}

/* Set (SUSPENDED) or lift (ACTIVE) one owner's hold, or terminate (hold 0). */
static void session_hold(const char *sid, uint8_t state, uint8_t hold)
{
    tk_op op = tk_op_make(TK_OP_SESSION_STATE, NOW);
    set_id(&op.session.sid, sid);
    op.session.state = state;
    op.session.hold = hold;
    apply(&op);
}

/* The admin's view: suspend / resume with the admin hold. */
static void session_state(const char *sid, uint8_t state)
{
    session_hold(sid, state, state == TK_SESSION_TERMINATED ? 0 : TK_HOLD_ADMIN);
}

static void client_status(const char *id, uint8_t status)
{
    tk_op op = tk_op_make(TK_OP_CLIENT_STATUS, NOW);
    set_id(&op.client_status.client, id);
    op.client_status.status = status;
    apply(&op);
}

static void revoke_grant(const char *grant)
{
    tk_op op = tk_op_make(TK_OP_REVOKE_GRANT, NOW);
    set_id(&op.revoke_grant.grant, grant);
    apply(&op);
}

/* ---- Cascade --------------------------------------------------------------------------------- */

static void test_active_token(void)
{
    add_agent("tkc_a1");
    add_session("tks_a1", "alice", 0);
    tk_issued is;
    must_issue(&(issue_args){.sid = "tks_a1",
                             .client = "tkc_a1",
                             .scope = "read write",
                             .aud = "https://api.example",
                             .refresh = true},
               &is);
    CHECK_EQ_INT(strlen(is.access_token), TK_TOKEN_LEN);
    CHECK(strncmp(is.access_token, "tkd_at_", 7) == 0);
    CHECK(strncmp(is.refresh_token, "tkd_rt_", 7) == 0);
    CHECK(strncmp(is.grant_id, "tkg_", 4) == 0);
    CHECK_EQ_INT(is.exp, NOW + 3600);
    CHECK_EQ_INT(is.expires_in, 3600);

    uint8_t h[TK_HASH_LEN];
    hash_of(is.access_token, h);
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_introspection r;
    CHECK_EQ_INT(tk_core_introspect(t, &cfg, h, NOW, NULL, &r), 0);
    CHECK(r.active);
    CHECK_EQ_INT(r.tok.kind, TK_TOKEN_ACCESS);
    CHECK_SLICE(r.tok.scope, "read write");
    CHECK_SLICE(r.tok.client_id, "tkc_a1");
    CHECK_SLICE(r.tok.sid, "tks_a1");
    CHECK_SLICE(r.tok.aud, "https://api.example");
    CHECK_SLICE(r.tok.grant_id, is.grant_id);
    CHECK_SLICE(r.sub, "alice");
    CHECK_EQ_INT(r.tok.iat, NOW);
    CHECK_EQ_INT(r.tok.nbf, NOW);
    CHECK_EQ_INT(r.tok.exp, NOW + 3600);
    CHECK_EQ_INT(r.nactors, 0);
    CHECK(!r.tok.has_parent);

    hash_of(is.refresh_token, h);
    CHECK_EQ_INT(tk_core_introspect(t, &cfg, h, NOW, NULL, &r), 0);
    CHECK(r.active);
    CHECK_EQ_INT(r.tok.kind, TK_TOKEN_REFRESH);
    CHECK_EQ_INT(r.tok.exp, NOW + 86400);
    CHECK_SLICE(r.tok.grant_id, is.grant_id);

    /* Unknown token: inactive, not an error. */
    memset(h, 0x5a, sizeof h);
    CHECK_EQ_INT(tk_core_introspect(t, &cfg, h, NOW, NULL, &r), 0);
    CHECK(!r.active);
    tk_store_txn_end(t);
}

static void test_expired_and_not_yet_valid(void)
{
    add_agent("tkc_e1");
    add_session("tks_e1", "bob", 0);
    tk_issued is;
    must_issue(&(issue_args){.sid = "tks_e1", .client = "tkc_e1", .ttl = 100}, &is);
    CHECK(active_at(is.access_token, NOW + 99, NULL));
    CHECK(!active_at(is.access_token, NOW + 100, NULL));
    CHECK(!active_at(is.access_token, NOW + 5000, NULL));

    tk_issued later;
    must_issue(&(issue_args){.sid = "tks_e1", .client = "tkc_e1", .nbf_in = 60}, &later);
    CHECK(!active_at(later.access_token, NOW, NULL));
    CHECK(!active_at(later.access_token, NOW + 59, NULL));
    CHECK(active_at(later.access_token, NOW + 60, NULL));
    CHECK(!active_at(later.access_token, NOW - 1, NULL));
}

static void test_revoked(void)
{
    add_agent("tkc_r1");
    add_session("tks_r1", "carol", 0);
    tk_issued a, b;
    must_issue(&(issue_args){.sid = "tks_r1", .client = "tkc_r1"}, &a);
    must_issue(&(issue_args){.sid = "tks_r1", .client = "tkc_r1"}, &b);
    CHECK(active(a.access_token));
    revoke_token(a.access_token);
    CHECK(!active(a.access_token));
    CHECK(active(b.access_token)); /* a sibling in the same session is untouched */
}

/* Root (agent A) → child (agent B) → grandchild (agent C). */
typedef struct chain {
    tk_issued root, child, grand;
} chain;

static void make_chain(const char *tag, chain *c)
{
    char a[32], b[32], cc[32], sid[32];
    snprintf(a, sizeof a, "tkc_%s_a", tag);
    snprintf(b, sizeof b, "tkc_%s_b", tag);
    snprintf(cc, sizeof cc, "tkc_%s_c", tag);
    snprintf(sid, sizeof sid, "tks_%s", tag);
    add_agent(a);
    add_agent(b);
    add_agent(cc);
    add_session(sid, "dave", 0);
    must_issue(&(issue_args){.sid = sid, .client = a, .scope = "read write mail"}, &c->root);
    must_issue(&(issue_args){.client = b, .scope = "read mail", .parent = c->root.access_token},
               &c->child);
    must_issue(&(issue_args){.client = cc, .scope = "read", .parent = c->child.access_token},
               &c->grand);
}

static void test_chain_revoke_middle(void)
{
    chain c;
    make_chain("ch1", &c);
    CHECK(active(c.root.access_token));
    CHECK(active(c.child.access_token));
    CHECK(active(c.grand.access_token));
    CHECK_EQ_STR(c.child.grant_id, c.root.grant_id);
    CHECK_EQ_STR(c.grand.grant_id, c.root.grant_id);

    revoke_token(c.child.access_token);
    CHECK(active(c.root.access_token));
    CHECK(!active(c.child.access_token));
    CHECK(!active(c.grand.access_token));
}

static void test_act_chain_order(void)
{
    chain c;
    make_chain("act", &c);
    uint8_t h[TK_HASH_LEN];
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_introspection r;

    hash_of(c.grand.access_token, h);
    CHECK_EQ_INT(tk_core_introspect(t, &cfg, h, NOW, NULL, &r), 0);
    CHECK(r.active);
    CHECK_EQ_INT(r.nactors, 3);
    CHECK_SLICE(r.actors[0], "tkc_act_c");
    CHECK_SLICE(r.actors[1], "tkc_act_b");
    CHECK_SLICE(r.actors[2], "tkc_act_a");
    CHECK_SLICE(r.tok.client_id, "tkc_act_c");
    CHECK_SLICE(r.tok.scope, "read");
    CHECK_SLICE(r.sub, "dave");
    CHECK_SLICE(r.tok.sid, "tks_act");
    CHECK(r.tok.has_parent);

    hash_of(c.child.access_token, h);
    CHECK_EQ_INT(tk_core_introspect(t, &cfg, h, NOW, NULL, &r), 0);
    CHECK_EQ_INT(r.nactors, 2);
    CHECK_SLICE(r.actors[0], "tkc_act_b");
    CHECK_SLICE(r.actors[1], "tkc_act_a");

    hash_of(c.root.access_token, h);
    CHECK_EQ_INT(tk_core_introspect(t, &cfg, h, NOW, NULL, &r), 0);
    CHECK_EQ_INT(r.nactors, 0);
    tk_store_txn_end(t);
}

static void test_session_states(void)
{
    chain c;
    make_chain("ss1", &c);
    session_state("tks_ss1", TK_SESSION_SUSPENDED);
    CHECK(!active(c.root.access_token));
    CHECK(!active(c.grand.access_token));
    session_state("tks_ss1", TK_SESSION_ACTIVE);
    CHECK(active(c.root.access_token));
    CHECK(active(c.grand.access_token));

    session_state("tks_ss1", TK_SESSION_TERMINATED);
    CHECK(!active(c.root.access_token));
    CHECK(!active(c.child.access_token));
    CHECK(!active(c.grand.access_token));
    session_state("tks_ss1", TK_SESSION_ACTIVE); /* termination is final */
    CHECK(!active(c.root.access_token));

    /* A session past its expiry takes its tokens with it. */
    add_agent("tkc_ss2");
    add_session("tks_ss2", "erin", NOW + 100);
    tk_issued is;
    must_issue(&(issue_args){.sid = "tks_ss2", .client = "tkc_ss2", .ttl = 1000}, &is);
    CHECK(active_at(is.access_token, NOW + 99, NULL));
    CHECK(!active_at(is.access_token, NOW + 100, NULL));
    /* ...and no token is issued under an expired or ended session. */
    add_session("tks_ss3", "erin", NOW);
    CHECK_EQ_INT(issue(&(issue_args){.sid = "tks_ss3", .client = "tkc_ss2"}, &is, NULL),
                 TK_E_INVALID);
    CHECK_EQ_INT(issue(&(issue_args){.sid = "tks_ss1", .client = "tkc_ss2"}, &is, NULL),
                 TK_E_INVALID);
}

static void test_grant_revoked(void)
{
    add_agent("tkc_g1");
    add_session("tks_g1", "frank", 0);
    tk_issued is, other;
    must_issue(&(issue_args){.sid = "tks_g1", .client = "tkc_g1", .refresh = true}, &is);
    must_issue(&(issue_args){.sid = "tks_g1", .client = "tkc_g1"}, &other);
    tk_issued child;
    add_agent("tkc_g1b");
    must_issue(&(issue_args){.client = "tkc_g1b", .parent = is.access_token}, &child);
    revoke_grant(is.grant_id);
    CHECK(!active(is.access_token));
    CHECK(!active(is.refresh_token));
    CHECK(!active(child.access_token));
    CHECK(active(other.access_token)); /* its own grant */
}

/* The client's generation as stored (0 when absent). */
static uint32_t generation_of(const char *id)
{
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_client_rec c;
    TK_ASSERT(tk_store_get_client(t, tk_slice_from_str(id), &c) == 0);
    tk_store_txn_end(t);
    return c.generation;
}

/* Disabling is final for every token that existed when it happened:
 * whichever link's client it was (the token's own, an ancestor's, a
 * delegate's), whatever the kind (access, refresh), re-approval brings none
 * back; tokens issued after re-approval live. */
static void test_client_disabled(void)
{
    chain c;
    make_chain("cd1", &c);
    tk_issued rt; /* a refresh token of the root's client */
    must_issue(&(issue_args){.sid = "tks_cd1", .client = "tkc_cd1_a", .refresh = true}, &rt);
    CHECK(active(rt.refresh_token));

    /* The grandchild's own client: only the grandchild dies. */
    client_status("tkc_cd1_c", TK_CLIENT_DISABLED);
    CHECK(!active(c.grand.access_token));
    CHECK(active(c.child.access_token));
    client_status("tkc_cd1_c", TK_CLIENT_APPROVED);
    CHECK(!active(c.grand.access_token)); /* re-approval resurrects nothing */
    CHECK(active(c.child.access_token));
    tk_issued g2; /* the re-approved client starts afresh */
    must_issue(
        &(issue_args){.client = "tkc_cd1_c", .scope = "read", .parent = c.child.access_token}, &g2);
    CHECK(active(g2.access_token));

    /* A middle client (tokens delegated *to* it, and theirs below). */
    client_status("tkc_cd1_b", TK_CLIENT_DISABLED);
    client_status("tkc_cd1_b", TK_CLIENT_APPROVED);
    CHECK(!active(c.child.access_token));
    CHECK(!active(g2.access_token)); /* delegated from a token of the disabled client */
    CHECK(active(c.root.access_token));

    /* The root's client: its access and refresh tokens, and every token
     * delegated from them, stay dead after re-approval. */
    client_status("tkc_cd1_a", TK_CLIENT_DISABLED);
    CHECK(!active(c.root.access_token));
    CHECK(!active(rt.access_token));
    CHECK(!active(rt.refresh_token));
    client_status("tkc_cd1_a", TK_CLIENT_APPROVED);
    CHECK(!active(c.root.access_token));
    CHECK(!active(rt.access_token));
    CHECK(!active(rt.refresh_token));
    CHECK(!active(c.grand.access_token));
    /* No delegation from a dead parent either. */
    tk_issued d;
    CHECK_EQ_INT(
        issue(&(issue_args){.client = "tkc_cd1_b", .parent = c.root.access_token}, &d, NULL),
        TK_E_INVALID);
    /* New tokens after re-approval: root, refresh, a whole new chain. */
    chain n;
    must_issue(
        &(issue_args){
            .sid = "tks_cd1", .client = "tkc_cd1_a", .scope = "read write mail", .refresh = true},
        &n.root);
    must_issue(&(issue_args){.client = "tkc_cd1_b", .scope = "read", .parent = n.root.access_token},
               &n.child);
    must_issue(
        &(issue_args){.client = "tkc_cd1_c", .scope = "read", .parent = n.child.access_token},
        &n.grand);
    CHECK(active(n.root.access_token));
    CHECK(active(n.root.refresh_token));
    CHECK(active(n.child.access_token));
    CHECK(active(n.grand.access_token));
}

/* One bump per move to disabled: disabling a disabled client changes
 * nothing; approving does not bump; a pending client disabled bumps too. */
static void test_client_generation(void)
{
    add_agent("tkc_gen");
    CHECK_EQ_INT(generation_of("tkc_gen"), 0);
    client_status("tkc_gen", TK_CLIENT_DISABLED);
    CHECK_EQ_INT(generation_of("tkc_gen"), 1);
    client_status("tkc_gen", TK_CLIENT_DISABLED);
    CHECK_EQ_INT(generation_of("tkc_gen"), 1);
    client_status("tkc_gen", TK_CLIENT_APPROVED);
    CHECK_EQ_INT(generation_of("tkc_gen"), 1);
    client_status("tkc_gen", TK_CLIENT_APPROVED);
    CHECK_EQ_INT(generation_of("tkc_gen"), 1);

    /* Issuance stamps the current generation; a second disable kills it. */
    add_session("tks_gen", "gus", 0);
    tk_issued is;
    must_issue(&(issue_args){.sid = "tks_gen", .client = "tkc_gen"}, &is);
    uint8_t h[TK_HASH_LEN];
    hash_of(is.access_token, h);
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_token_rec rec;
    CHECK_EQ_INT(tk_store_get_token(t, h, &rec), 0);
    CHECK_EQ_INT(rec.client_gen, 1);
    tk_store_txn_end(t);
    CHECK(active(is.access_token));
    client_status("tkc_gen", TK_CLIENT_DISABLED);
    client_status("tkc_gen", TK_CLIENT_APPROVED);
    CHECK_EQ_INT(generation_of("tkc_gen"), 2);
    CHECK(!active(is.access_token));

    add_client("tkc_gen_p", TK_ROLE_AGENT, TK_CLIENT_PENDING, "", "", NULL);
    client_status("tkc_gen_p", TK_CLIENT_APPROVED);
    CHECK_EQ_INT(generation_of("tkc_gen_p"), 0);
    add_client("tkc_gen_q", TK_ROLE_AGENT, TK_CLIENT_PENDING, "", "", NULL);
    client_status("tkc_gen_q", TK_CLIENT_DISABLED);
    CHECK_EQ_INT(generation_of("tkc_gen_q"), 1);

    /* A token record written before generations (no key: 0) lives while its
     * client has never been disabled, and dies for good at the first. */
    add_agent("tkc_old");
    char tok[TK_TOKEN_LEN + 1];
    TK_ASSERT(tk_secret_new(TK_SECRET_ACCESS, tok, sizeof tok, h) == 0);
    tk_token_rec old = {.kind = TK_TOKEN_ACCESS,
                        .client_id = TK_SLICE_LIT("tkc_old"),
                        .sid = TK_SLICE_LIT("tks_gen"),
                        .grant_id = tk_slice_from_str(is.grant_id),
                        .iat = NOW,
                        .exp = NOW + 60};
    t = wbegin();
    CHECK_EQ_INT(tk_store_put_token(t, h, &old, TK_PUT_NEW), 0);
    commit(t);
    CHECK(active(tok));
    client_status("tkc_old", TK_CLIENT_DISABLED);
    client_status("tkc_old", TK_CLIENT_APPROVED);
    CHECK(!active(tok));

    /* A client whose generation cannot grow stays disabled (approval would
     * bring back the tokens stamped with the last generation). */
    add_client("tkc_max", TK_ROLE_AGENT, TK_CLIENT_APPROVED, "", "", NULL);
    t = wbegin();
    tk_client_rec c;
    CHECK_EQ_INT(tk_store_get_client(t, TK_SLICE_LIT("tkc_max"), &c), 0);
    c.generation = UINT32_MAX - 1;
    CHECK_EQ_INT(tk_store_put_client(t, TK_SLICE_LIT("tkc_max"), &c, 0), 0);
    commit(t);
    client_status("tkc_max", TK_CLIENT_DISABLED);
    CHECK_EQ_INT(generation_of("tkc_max"), UINT32_MAX);
    client_status("tkc_max", TK_CLIENT_APPROVED);
    t = wbegin();
    CHECK_EQ_INT(tk_store_get_client(t, TK_SLICE_LIT("tkc_max"), &c), 0);
    CHECK_EQ_INT(c.status, TK_CLIENT_DISABLED);
    tk_store_txn_end(t);
}

/* Suspensions are holds with an owner: each lifts only its own; the session
 * (and every token under it) is active only with no hold left. */
static void test_session_holds(void)
{
    chain c;
    make_chain("ho1", &c);
    const char *sid = "tks_ho1";
    /* An admin hold survives a device "compliant" and a credential lift. */
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_ADMIN);
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_DEVICE);
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_CREDENTIAL);
    CHECK(!active(c.root.access_token));
    CHECK(!active(c.grand.access_token));
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_ADMIN);
    CHECK(active(c.root.access_token));
    CHECK(active(c.grand.access_token));

    /* A credential hold survives a device "compliant". */
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_CREDENTIAL);
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_DEVICE);
    CHECK(!active(c.root.access_token));
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_CREDENTIAL);
    CHECK(active(c.root.access_token));

    /* A device hold is lifted by the device. */
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_DEVICE);
    CHECK(!active(c.child.access_token));
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_DEVICE);
    CHECK(active(c.child.access_token));

    /* Two holds need both lifts, in either order; setting one twice is one. */
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_DEVICE);
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_ADMIN);
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_ADMIN);
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_ADMIN);
    CHECK(!active(c.root.access_token));
    tk_issued is; /* nothing is issued under a held session */
    CHECK_EQ_INT(issue(&(issue_args){.sid = sid, .client = "tkc_ho1_a"}, &is, NULL), TK_E_INVALID);
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_DEVICE);
    CHECK(active(c.root.access_token));

    /* Terminating a held session is final: lifting its holds changes nothing. */
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_DEVICE);
    session_hold(sid, TK_SESSION_SUSPENDED, TK_HOLD_CREDENTIAL);
    session_state(sid, TK_SESSION_TERMINATED);
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_DEVICE);
    session_hold(sid, TK_SESSION_ACTIVE, TK_HOLD_CREDENTIAL);
    CHECK(!active(c.root.access_token));
    CHECK(!active(c.grand.access_token));

    /* A suspended record of before holds: the admin's to lift. */
    add_agent("tkc_ho2");
    add_session("tks_ho2", "hal", 0);
    must_issue(&(issue_args){.sid = "tks_ho2", .client = "tkc_ho2"}, &is);
    tk_txn *t = wbegin();
    tk_session_rec s;
    CHECK_EQ_INT(tk_store_get_session(t, TK_SLICE_LIT("tks_ho2"), &s), 0);
    s.state = TK_SESSION_SUSPENDED;
    s.holds = TK_HOLD_BIT(TK_HOLD_ADMIN); /* what an old record decodes to */
    CHECK_EQ_INT(tk_store_put_session(t, TK_SLICE_LIT("tks_ho2"), &s, TK_PUT_NO_INDEX), 0);
    commit(t);
    session_hold("tks_ho2", TK_SESSION_ACTIVE, TK_HOLD_DEVICE);
    CHECK(!active(is.access_token));
    session_hold("tks_ho2", TK_SESSION_ACTIVE, TK_HOLD_ADMIN);
    CHECK(active(is.access_token));
}

/* Refresh tokens are for the authorization server: inactive to resource
 * servers and as bearer credentials; admins (and admin tools) see them. */
static void test_refresh_visibility(void)
{
    add_agent("tkc_rv");
    add_session("tks_rv", "rita", 0);
    tk_issued is;
    must_issue(
        &(issue_args){
            .sid = "tks_rv", .client = "tkc_rv", .aud = "https://api.rv", .refresh = true},
        &is);
    tk_client_rec rs = {.role = TK_ROLE_RESOURCE_SERVER, .status = TK_CLIENT_APPROVED};
    tk_client_rec rs_aud = rs;
    rs_aud.resource = TK_SLICE_LIT("https://api.rv");
    tk_client_rec admin = {.role = TK_ROLE_ADMIN, .status = TK_CLIENT_APPROVED};
    CHECK(!active_at(is.refresh_token, NOW, &rs));
    CHECK(!active_at(is.refresh_token, NOW, &rs_aud));
    CHECK(active_at(is.refresh_token, NOW, &admin));
    CHECK(active_at(is.refresh_token, NOW, NULL));
    CHECK(active_at(is.access_token, NOW, &rs));
    CHECK(active_at(is.access_token, NOW, &rs_aud));
    CHECK(active_at(is.access_token, NOW, &admin));

    uint8_t h[TK_HASH_LEN];
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_introspection r;
    hash_of(is.refresh_token, h);
    CHECK_EQ_INT(tk_core_introspect_bearer(t, &cfg, h, NOW, &r), 0);
    CHECK(!r.active);
    CHECK_EQ_INT(r.nactors, 0);
    hash_of(is.access_token, h);
    CHECK_EQ_INT(tk_core_introspect_bearer(t, &cfg, h, NOW, &r), 0);
    CHECK(r.active);
    CHECK_SLICE(r.sub, "rita");
    memset(h, 0x77, sizeof h);
    CHECK_EQ_INT(tk_core_introspect_bearer(t, &cfg, h, NOW, &r), 0);
    CHECK(!r.active);
    tk_store_txn_end(t);
    /* The bearer rule still applies the cascade. */
    revoke_token(is.access_token);
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    CHECK_EQ_INT(tk_core_introspect_bearer(t, &cfg, h, NOW, &r), 0);
    hash_of(is.access_token, h);
    CHECK_EQ_INT(tk_core_introspect_bearer(t, &cfg, h, NOW, &r), 0);
    CHECK(!r.active);
    tk_store_txn_end(t);
}

static void test_depth_limit(void)
{
    tk_core_cfg two = {.max_depth = 2};
    add_agent("tkc_dl");
    add_session("tks_dl", "gina", 0);
    tk_issued d0, d1, d2, d3;
    must_issue(&(issue_args){.sid = "tks_dl", .client = "tkc_dl", .scope = "x"}, &d0);
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_dl", .parent = d0.access_token}, &d1, &two), 0);
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_dl", .parent = d1.access_token}, &d2, &two), 0);
    /* A third link is one more than max_depth = 2. */
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_dl", .parent = d2.access_token}, &d3, &two),
                 TK_E_INVALID);

    /* Forced into the store anyway, it is inactive under depth 2, active under 3. */
    uint8_t h[TK_HASH_LEN];
    char tok[TK_TOKEN_LEN + 1];
    TK_ASSERT(tk_secret_new(TK_SECRET_ACCESS, tok, sizeof tok, h) == 0);
    tk_token_rec rec = {
        .kind = TK_TOKEN_ACCESS,
        .client_id = TK_SLICE_LIT("tkc_dl"),
        .sub = TK_SLICE_LIT("gina"),
        .sid = TK_SLICE_LIT("tks_dl"),
        .grant_id = tk_slice_from_str(d0.grant_id),
        .scope = TK_SLICE_LIT("x"),
        .has_parent = true,
        .iat = NOW,
        .nbf = NOW,
        .exp = NOW + 60,
    };
    hash_of(d2.access_token, rec.parent);
    tk_txn *t = wbegin();
    CHECK_EQ_INT(tk_store_put_token(t, h, &rec, TK_PUT_NEW), 0);
    commit(t);

    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_introspection r;
    CHECK_EQ_INT(tk_core_introspect(t, &two, h, NOW, NULL, &r), 0);
    CHECK(!r.active);
    hash_of(d2.access_token, h);
    CHECK_EQ_INT(tk_core_introspect(t, &two, h, NOW, NULL, &r), 0);
    CHECK(r.active);
    CHECK_EQ_INT(r.nactors, 3);
    tk_store_txn_end(t);
    CHECK(active(tok)); /* cfg.max_depth = 3 allows the forced link */

    /* max_depth 0: no delegation at all. */
    tk_core_cfg none = {.max_depth = 0};
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_dl", .parent = d0.access_token}, &d3, &none),
                 TK_E_INVALID);
}

static void test_audience(void)
{
    add_agent("tkc_au");
    add_session("tks_au", "hank", 0);
    tk_issued is, open;
    must_issue(&(issue_args){.sid = "tks_au", .client = "tkc_au", .aud = "https://api.example"},
               &is);
    must_issue(&(issue_args){.sid = "tks_au", .client = "tkc_au"}, &open);
    tk_client_rec rs = {.role = TK_ROLE_RESOURCE_SERVER,
                        .status = TK_CLIENT_APPROVED,
                        .resource = TK_SLICE_LIT("https://api.example")};
    tk_client_rec other = rs;
    other.resource = TK_SLICE_LIT("https://other.example");
    tk_client_rec any = rs;
    any.resource = TK_SLICE_NULL;
    CHECK(active_at(is.access_token, NOW, &rs));
    CHECK(!active_at(is.access_token, NOW, &other));
    CHECK(active_at(is.access_token, NOW, &any));
    CHECK(active_at(is.access_token, NOW, NULL));
    /* A token without audience is not for a resource server that has one. */
    CHECK(!active_at(open.access_token, NOW, &rs));
    CHECK(active_at(open.access_token, NOW, &any));

    /* Delegation inherits the audience and may not change it. */
    add_agent("tkc_au2");
    tk_issued d;
    must_issue(&(issue_args){.client = "tkc_au2", .parent = is.access_token}, &d);
    CHECK(active_at(d.access_token, NOW, &rs));
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_au2",
                                     .parent = is.access_token,
                                     .aud = "https://other.example"},
                       &d, NULL),
                 TK_E_INVALID);
}

/* ---- Issuance rules ----------------------------------------------------------------------- */

static void test_scope_subset(void)
{
    tk_slice e = TK_SLICE_NULL;
    CHECK(tk_core_scope_subset(e, e));
    CHECK(tk_core_scope_subset(e, TK_SLICE_LIT("read")));
    CHECK(tk_core_scope_subset(TK_SLICE_LIT("   "), TK_SLICE_LIT("read")));
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("read"), e));
    CHECK(tk_core_scope_subset(TK_SLICE_LIT("read"), TK_SLICE_LIT("read")));
    CHECK(tk_core_scope_subset(TK_SLICE_LIT("read write"), TK_SLICE_LIT("write read")));
    CHECK(tk_core_scope_subset(TK_SLICE_LIT("read read"), TK_SLICE_LIT("read")));
    CHECK(tk_core_scope_subset(TK_SLICE_LIT(" read  write "), TK_SLICE_LIT("write  read")));
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("read"), TK_SLICE_LIT("read:all")));
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("read:all"), TK_SLICE_LIT("read")));
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("rea"), TK_SLICE_LIT("read")));
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("read"), TK_SLICE_LIT("rea")));
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("Read"), TK_SLICE_LIT("read")));
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("read admin"), TK_SLICE_LIT("read write")));
    CHECK(tk_core_scope_subset(TK_SLICE_LIT("b"), TK_SLICE_LIT("a b c")));

    static char big[TK_SCOPE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    tk_slice over = {big, TK_SCOPE_MAX + 1};
    CHECK(!tk_core_scope_subset(TK_SLICE_LIT("a"), over));
    CHECK(!tk_core_scope_subset(over, over));
}

static void test_issue_scope_rules(void)
{
    add_client("tkc_sc", TK_ROLE_AGENT, TK_CLIENT_APPROVED, "read write", "", NULL);
    add_client("tkc_sc2", TK_ROLE_AGENT, TK_CLIENT_APPROVED, "read", "", NULL);
    add_session("tks_sc", "ivy", 0);
    tk_issued is, d;
    CHECK_EQ_INT(
        issue(&(issue_args){.sid = "tks_sc", .client = "tkc_sc", .scope = "read admin"}, &is, NULL),
        TK_E_INVALID);
    must_issue(&(issue_args){.sid = "tks_sc", .client = "tkc_sc", .scope = "read write"}, &is);

    /* Delegation: a subset of the parent's, and of the new client's allowance. */
    CHECK_EQ_INT(
        issue(&(issue_args){.client = "tkc_sc", .scope = "read mail", .parent = is.access_token},
              &d, NULL),
        TK_E_INVALID);
    CHECK_EQ_INT(
        issue(&(issue_args){.client = "tkc_sc2", .scope = "write", .parent = is.access_token}, &d,
              NULL),
        TK_E_INVALID);
    /* Empty scope inherits the parent's; here that exceeds tkc_sc2's allowance. */
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_sc2", .parent = is.access_token}, &d, NULL),
                 TK_E_INVALID);
    must_issue(&(issue_args){.client = "tkc_sc", .parent = is.access_token}, &d);
    uint8_t h[TK_HASH_LEN];
    hash_of(d.access_token, h);
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    tk_introspection r;
    CHECK_EQ_INT(tk_core_introspect(t, &cfg, h, NOW, NULL, &r), 0);
    CHECK(r.active);
    CHECK_SLICE(r.tok.scope, "read write");
    tk_store_txn_end(t);
    must_issue(&(issue_args){.client = "tkc_sc2", .scope = "read", .parent = is.access_token}, &d);
}

static void test_issue_errors(void)
{
    add_client("tkc_ie_p", TK_ROLE_AGENT, TK_CLIENT_PENDING, "", "", NULL);
    add_agent("tkc_ie");
    add_session("tks_ie", "jay", 0);
    tk_issued is, d;
    CHECK_EQ_INT(issue(&(issue_args){.sid = "tks_nope", .client = "tkc_ie"}, &is, NULL),
                 TK_E_NOTFOUND);
    CHECK_EQ_INT(issue(&(issue_args){.sid = "tks_ie", .client = "tkc_nope"}, &is, NULL),
                 TK_E_NOTFOUND);
    CHECK_EQ_INT(issue(&(issue_args){.sid = "tks_ie", .client = "tkc_ie_p"}, &is, NULL),
                 TK_E_INVALID);
    CHECK_EQ_INT(issue(&(issue_args){.sid = "tks_ie", .client = "tkc_ie", .ttl = -5}, &is, NULL),
                 TK_E_INVALID);
    CHECK_EQ_INT(issue(&(issue_args){.sid = "tks_ie", .client = "tkc_ie", .nbf_in = -1}, &is, NULL),
                 TK_E_INVALID);
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_ie", .parent = "tkd_at_unknown"}, &is, NULL),
                 TK_E_NOTFOUND);
    must_issue(&(issue_args){.sid = "tks_ie", .client = "tkc_ie"}, &is);
    CHECK_EQ_INT(
        issue(&(issue_args){.client = "tkc_ie", .parent = is.access_token, .refresh = true}, &d,
              NULL),
        TK_E_INVALID);
    CHECK_EQ_INT(
        issue(&(issue_args){.client = "tkc_ie", .parent = is.access_token, .sid = "tks_other"}, &d,
              NULL),
        TK_E_INVALID);
    revoke_token(is.access_token);
    CHECK_EQ_INT(issue(&(issue_args){.client = "tkc_ie", .parent = is.access_token}, &d, NULL),
                 TK_E_INVALID);
    CHECK_EQ_INT(d.access_token[0], '\0');
}

static void test_delegated_expiry_clamped(void)
{
    add_agent("tkc_ex");
    add_agent("tkc_ex2");
    add_session("tks_ex", "kim", 0);
    tk_issued p, c, short_c;
    must_issue(&(issue_args){.sid = "tks_ex", .client = "tkc_ex", .ttl = 100}, &p);
    must_issue(&(issue_args){.client = "tkc_ex2", .parent = p.access_token, .ttl = 1000}, &c);
    CHECK_EQ_INT(c.exp, NOW + 100);
    CHECK_EQ_INT(c.expires_in, 100);
    must_issue(&(issue_args){.client = "tkc_ex2", .parent = p.access_token, .ttl = 10}, &short_c);
    CHECK_EQ_INT(short_c.exp, NOW + 10);
    CHECK(active_at(c.access_token, NOW + 99, NULL));
    CHECK(!active_at(c.access_token, NOW + 100, NULL));
}

/* ---- Revocation plan ------------------------------------------------------------------------ */

static int plan(const char *token, const char *caller_id, uint8_t role, tk_commit_req *req)
{
    uint8_t h[TK_HASH_LEN];
    hash_of(token, h);
    tk_client_rec caller = {.role = role, .status = TK_CLIENT_APPROVED};
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    memset(req, 0xee, sizeof *req);
    int rc = tk_core_plan_revoke(t, tk_slice_from_str(caller_id), &caller, h, NOW, req);
    tk_store_txn_end(t);
    return rc;
}

static void test_revoke_plan(void)
{
    add_agent("tkc_rp");
    add_session("tks_rp", "lee", 0);
    tk_issued is;
    must_issue(&(issue_args){.sid = "tks_rp", .client = "tkc_rp", .refresh = true}, &is);
    tk_commit_req req;
    uint8_t h[TK_HASH_LEN];

    CHECK_EQ_INT(plan(is.access_token, "tkc_rp", TK_ROLE_AGENT, &req), 0);
    CHECK_EQ_INT(req.nops, 1);
    CHECK_EQ_INT(req.ops[0].type, TK_OP_REVOKE_TOKEN);
    CHECK_EQ_INT(req.ops[0].at, NOW);
    hash_of(is.access_token, h);
    CHECK(memcmp(req.ops[0].revoke_token.hash, h, TK_HASH_LEN) == 0);

    CHECK_EQ_INT(plan(is.refresh_token, "tkc_rp", TK_ROLE_AGENT, &req), 0);
    CHECK_EQ_INT(req.nops, 2);
    CHECK_EQ_INT(req.ops[0].type, TK_OP_REVOKE_TOKEN);
    hash_of(is.refresh_token, h);
    CHECK(memcmp(req.ops[0].revoke_token.hash, h, TK_HASH_LEN) == 0);
    CHECK_EQ_INT(req.ops[1].type, TK_OP_REVOKE_GRANT);
    CHECK_SLICE(tk_op_id_get(&req.ops[1].revoke_grant.grant), is.grant_id);

    /* Applying the plan revokes the whole grant. */
    tk_txn *t = wbegin();
    for (unsigned i = 0; i < req.nops; i++) {
        CHECK_EQ_INT(tk_store_apply(t, &req.ops[i], NULL), 0);
    }
    commit(t);
    CHECK(!active(is.access_token));
    CHECK(!active(is.refresh_token));
    /* Nothing left to do: 0 ops. */
    CHECK_EQ_INT(plan(is.refresh_token, "tkc_rp", TK_ROLE_AGENT, &req), 0);
    CHECK_EQ_INT(req.nops, 0);

    CHECK_EQ_INT(plan("tkd_at_never_issued", "tkc_rp", TK_ROLE_AGENT, &req), 0);
    CHECK_EQ_INT(req.nops, 0);
}

static void test_revoke_owner(void)
{
    add_agent("tkc_ow");
    add_session("tks_ow", "max", 0);
    tk_issued is;
    must_issue(&(issue_args){.sid = "tks_ow", .client = "tkc_ow"}, &is);
    tk_commit_req req;
    CHECK_EQ_INT(plan(is.access_token, "tkc_someone", TK_ROLE_AGENT, &req), TK_E_FORBIDDEN);
    CHECK_EQ_INT(req.nops, 0);
    CHECK_EQ_INT(plan(is.access_token, "tkc_rs", TK_ROLE_RESOURCE_SERVER, &req), TK_E_FORBIDDEN);
    CHECK_EQ_INT(plan(is.access_token, "tkc_admin", TK_ROLE_ADMIN, &req), 0);
    CHECK_EQ_INT(req.nops, 1);
    /* An unknown token is not forbidden to anyone. */
    CHECK_EQ_INT(plan("tkd_at_nothing", "tkc_someone", TK_ROLE_AGENT, &req), 0);
    CHECK_EQ_INT(req.nops, 0);
}

/* ---- Authentication ------------------------------------------------------------------------ */

static int auth(const char *id, const char *secret, tk_client_rec *out)
{
    tk_txn *t = NULL;
    TK_ASSERT(tk_store_read_begin(st, &t) == 0);
    int rc = tk_core_authenticate(t, tk_slice_from_str(id), tk_slice_from_str(secret), out);
    tk_store_txn_end(t);
    return rc;
}

static void test_authenticate(void)
{
    char good[TK_TOKEN_LEN + 1], pend[TK_TOKEN_LEN + 1], dis[TK_TOKEN_LEN + 1];
    add_client("tkc_rs1", TK_ROLE_RESOURCE_SERVER, TK_CLIENT_APPROVED, "", "https://api", good);
    add_client("tkc_pend", TK_ROLE_RESOURCE_SERVER, TK_CLIENT_PENDING, "", "", pend);
    add_client("tkc_dis", TK_ROLE_ADMIN, TK_CLIENT_APPROVED, "", "", dis);
    client_status("tkc_dis", TK_CLIENT_DISABLED);
    tk_client_rec c;
    CHECK_EQ_INT(auth("tkc_rs1", good, &c), 0);
    CHECK_EQ_INT(c.role, TK_ROLE_RESOURCE_SERVER);
    CHECK(tk_core_may_introspect(&c));
    CHECK_EQ_INT(auth("tkc_rs1", pend, &c), TK_E_AUTH);
    CHECK_EQ_INT(auth("tkc_rs1", "", &c), TK_E_AUTH);
    good[10] = good[10] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(auth("tkc_rs1", good, &c), TK_E_AUTH);
    CHECK_EQ_INT(auth("tkc_unknown", good, &c), TK_E_AUTH);
    CHECK_EQ_INT(auth("", good, &c), TK_E_AUTH);
    CHECK_EQ_INT(auth("tkc_pend", pend, &c), TK_E_AUTH);
    CHECK_EQ_INT(auth("tkc_dis", dis, &c), TK_E_AUTH);

    static char long_id[TK_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    CHECK_EQ_INT(auth(long_id, good, &c), TK_E_AUTH);

    tk_client_rec agent = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_APPROVED};
    CHECK(!tk_core_may_introspect(&agent));
    tk_client_rec admin = {.role = TK_ROLE_ADMIN, .status = TK_CLIENT_APPROVED};
    CHECK(tk_core_may_introspect(&admin));
}

/* ---- Main --------------------------------------------------------------------------------------
 */

static char dir[] = "/tmp/tk_test_core_XXXXXX";

static void cleanup(void)
{
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

static void test_audience_includes(void)
{
    tk_slice r = TK_SLICE_LIT("https://wiki.test/");
    CHECK(tk_core_audience_includes(r, r));
    CHECK(tk_core_audience_includes(TK_SLICE_LIT("https://a.test https://wiki.test/"), r));
    CHECK(!tk_core_audience_includes(TK_SLICE_LIT("https://wiki.test"), r));
    CHECK(!tk_core_audience_includes(TK_SLICE_LIT("https://wiki.test/x"), r));
    CHECK(!tk_core_audience_includes(TK_SLICE_NULL, r));
    CHECK(!tk_core_audience_includes(r, TK_SLICE_NULL));
}

int main(void)
{
    tk_log_set_level(TK_LOG_WARN);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 77;
    }
    tk_store_opts opts = {.dir = dir, .map_size = 64u << 20};
    int rc = tk_store_open(&opts, &st);
    if (rc != 0) {
        fprintf(stderr, "store open: %s\n", tk_strerror(rc));
        cleanup();
        return 1;
    }
    RUN(test_active_token);
    RUN(test_audience_includes);
    RUN(test_expired_and_not_yet_valid);
    RUN(test_revoked);
    RUN(test_chain_revoke_middle);
    RUN(test_act_chain_order);
    RUN(test_session_states);
    RUN(test_grant_revoked);
    RUN(test_client_disabled);
    RUN(test_client_generation);
    RUN(test_session_holds);
    RUN(test_refresh_visibility);
    RUN(test_depth_limit);
    RUN(test_audience);
    RUN(test_scope_subset);
    RUN(test_issue_scope_rules);
    RUN(test_issue_errors);
    RUN(test_delegated_expiry_clamped);
    RUN(test_revoke_plan);
    RUN(test_revoke_owner);
    RUN(test_authenticate);
    tk_store_close(st);
    cleanup();
    return check_report();
}
