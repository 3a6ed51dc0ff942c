/*
 * SSF transmitter tests: the durable per-receiver queues of the store (what
 * the appliers queue, in which order, for whom; acks; the overflow rule;
 * removal), the SSF ack op's wire form, the queue records' codec, and the
 * SET claims the pusher signs.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "store_fixture.h"
#include "tokend/ssf.h"
#include "tokend/store.h"

static tk_store *st;

static void open_fresh(void)
{
    make_dir("tk_ssf_");
    st = open_store(64 << 20);
}

static void close_remove(void)
{
    tk_store_close(st);
    remove_dir();
}

static int add_receiver(const char *id, uint8_t want, int64_t qmax)
{
    tk_ssf_receiver_rec r = {.url = TK_SLICE_LIT("https://edge.example/events"),
                             .audience = TK_SLICE_LIT("https://edge.example"),
                             .bearer = TK_SLICE_LIT("secret"),
                             .want = want,
                             .created = 1000,
                             .queue_max = qmax};
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    int rc = tk_store_ssf_receiver_put(w, tk_slice_from_str(id), &r);
    if (rc != 0) {
        tk_store_txn_end(w);
        return rc;
    }
    TK_ASSERT(tk_store_commit(w) == 0);
    return 0;
}

static void seed(void)
{
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    tk_session_rec s = {.sub = TK_SLICE_LIT("alice"), .state = TK_SESSION_ACTIVE, .created = 1};
    TK_ASSERT(tk_store_put_session(w, TK_SLICE_LIT("tks_1"), &s, 0) == 0);
    tk_grant_rec g = {.client_id = TK_SLICE_LIT("tkc_agent"),
                      .sub = TK_SLICE_LIT("alice"),
                      .sid = TK_SLICE_LIT("tks_1"),
                      .state = TK_GRANT_ACTIVE,
                      .created = 1};
    TK_ASSERT(tk_store_put_grant(w, TK_SLICE_LIT("tkg_1"), &g, 0) == 0);
    for (uint8_t i = 1; i <= 8; i++) {
        uint8_t h[TK_HASH_LEN];
        memset(h, i, sizeof h);
        tk_token_rec t = {.kind = TK_TOKEN_ACCESS,
                          .client_id = TK_SLICE_LIT("tkc_agent"),
                          .sid = TK_SLICE_LIT("tks_1"),
                          .grant_id = TK_SLICE_LIT("tkg_1"),
                          .iat = 1,
                          .exp = 4000000000};
        TK_ASSERT(tk_store_put_token(w, h, &t, 0) == 0);
    }
    TK_ASSERT(tk_store_commit(w) == 0);
}

static bool apply(const tk_op *op)
{
    tk_txn *w;
    bool changed = false;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    TK_ASSERT(tk_store_apply(w, op, &changed) == 0);
    TK_ASSERT(tk_store_commit(w) == 0);
    return changed;
}

static void revoke_token(uint8_t n, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_REVOKE_TOKEN, at);
    memset(op.revoke_token.hash, n, TK_HASH_LEN);
    apply(&op);
}

static bool session_op(uint8_t state, uint8_t hold, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_SESSION_STATE, at);
    TK_ASSERT(tk_op_id_set(&op.session.sid, TK_SLICE_LIT("tks_1")) == 0);
    op.session.state = state;
    op.session.hold = hold;
    TK_ASSERT(tk_op_reason_set(&op.session.reason, TK_SLICE_LIT("why")) == 0);
    return apply(&op);
}

static bool ack(const char *id, uint64_t seq)
{
    tk_op op = tk_op_make(TK_OP_SSF_ACK, 5000);
    TK_ASSERT(tk_op_id_set(&op.ssf_ack.receiver, tk_slice_from_str(id)) == 0);
    op.ssf_ack.seq = seq;
    return apply(&op);
}

/* The queue of id as (seq, kind) pairs, head first; returns the count. */
static unsigned queue(const char *id, uint64_t seqs[], uint8_t kinds[], unsigned max)
{
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    unsigned n = 0;
    uint64_t after = 0, seq;
    tk_ssf_event_rec ev;
    while (n < max && tk_store_ssf_next(r, tk_slice_from_str(id), after, &seq, &ev) == 0) {
        seqs[n] = seq;
        kinds[n++] = ev.kind;
        after = seq;
    }
    tk_store_txn_end(r);
    return n;
}

static tk_ssf_receiver_rec receiver(const char *id)
{
    tk_txn *r;
    tk_ssf_receiver_rec rec;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    TK_ASSERT(tk_store_ssf_receiver_get(r, tk_slice_from_str(id), &rec) == 0);
    tk_store_txn_end(r);
    return rec; /* scalars only are read by the callers */
}

/* ---- Queues ------------------------------------------------------------------------ */

static void test_nobody_listens(void)
{
    open_fresh();
    seed();
    revoke_token(1, 100);
    session_op(TK_SESSION_TERMINATED, 0, 101);
    uint64_t seqs[4];
    uint8_t kinds[4];
    CHECK_EQ_INT(queue("edge", seqs, kinds, 4), 0);
    close_remove();
}

static void test_fanout_filter_and_order(void)
{
    open_fresh();
    seed();
    CHECK_EQ_INT(add_receiver("all", TK_SSF_WANT_ALL, 100), 0);
    CHECK_EQ_INT(add_receiver("tokens", TK_SSF_BIT(TK_SSF_TOKEN_REVOKED), 100), 0);
    revoke_token(1, 100);
    revoke_token(1, 101); /* already revoked: nothing changes, nothing queued */
    session_op(TK_SESSION_SUSPENDED, TK_HOLD_ADMIN, 102);
    session_op(TK_SESSION_SUSPENDED, TK_HOLD_DEVICE, 103);
    session_op(TK_SESSION_ACTIVE, TK_HOLD_ADMIN, 104);  /* device hold stays: no event */
    session_op(TK_SESSION_ACTIVE, TK_HOLD_DEVICE, 105); /* active again */
    revoke_token(2, 106);
    session_op(TK_SESSION_TERMINATED, 0, 107);
    session_op(TK_SESSION_TERMINATED, 0, 108); /* final: no second event */
    uint64_t s[16];
    uint8_t k[16];
    unsigned n = queue("all", s, k, 16);
    CHECK_EQ_INT(n, 6);
    const uint8_t want[] = {TK_SSF_TOKEN_REVOKED,     TK_SSF_SESSION_SUSPENDED,
                            TK_SSF_SESSION_SUSPENDED, TK_SSF_SESSION_RESUMED,
                            TK_SSF_TOKEN_REVOKED,     TK_SSF_SESSION_REVOKED};
    for (unsigned i = 0; i < n && i < 6; i++) {
        CHECK_EQ_INT(k[i], want[i]);
        CHECK(i == 0 || s[i] > s[i - 1]);
    }
    uint64_t t[4];
    uint8_t tk[4];
    CHECK_EQ_INT(queue("tokens", t, tk, 4), 2);
    CHECK_EQ_INT(tk[0], TK_SSF_TOKEN_REVOKED);
    CHECK_EQ_INT(t[0], s[0]); /* one event, one sequence, for every receiver */
    CHECK_EQ_INT(t[1], s[4]);
    CHECK_EQ_INT(receiver("all").depth, 6);
    CHECK_EQ_INT(receiver("tokens").depth, 2);
    /* The event's contents. */
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    uint64_t seq;
    tk_ssf_event_rec ev;
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("all"), 0, &seq, &ev), 0);
    uint8_t h1[TK_HASH_LEN];
    memset(h1, 1, sizeof h1);
    CHECK(ev.has_hash && memcmp(ev.hash, h1, TK_HASH_LEN) == 0 && ev.at == 100);
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("all"), s[0], &seq, &ev), 0);
    CHECK_SLICE(ev.id, "tks_1");
    CHECK_SLICE(ev.reason, "why");
    CHECK_EQ_INT(ev.hold, TK_HOLD_ADMIN);
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("all"), s[5], &seq, &ev), TK_E_NOTFOUND);
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("al"), 0, &seq, &ev), TK_E_NOTFOUND);
    tk_store_txn_end(r);
    close_remove();
}

static void test_grant_client_and_token_events(void)
{
    tk_txn *w;
    open_fresh();
    seed();
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 100), 0);
    tk_op op = tk_op_make(TK_OP_REVOKE_GRANT, 200);
    TK_ASSERT(tk_op_id_set(&op.revoke_grant.grant, TK_SLICE_LIT("tkg_1")) == 0);
    CHECK(apply(&op));
    CHECK(!apply(&op)); /* twice: no second event */
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    uint64_t seq;
    tk_ssf_event_rec ev;
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("edge"), 0, &seq, &ev), 0);
    CHECK_EQ_INT(ev.kind, TK_SSF_GRANT_REVOKED);
    CHECK_SLICE(ev.id, "tkg_1");
    CHECK_SLICE(ev.sub, "alice");
    CHECK_SLICE(ev.client, "tkc_agent");
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("edge"), seq, &seq, &ev), TK_E_NOTFOUND);
    tk_store_txn_end(r);
    CHECK_EQ_INT(receiver("edge").depth, 1);
    /* A client disabled: one event naming it; approving and disabling again
     * is another (each disable kills every token that exists then). */
    tk_op cs = tk_op_make(TK_OP_CLIENT_STATUS, 300);
    TK_ASSERT(tk_op_id_set(&cs.client_status.client, TK_SLICE_LIT("tkc_agent")) == 0);
    tk_client_rec c = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_APPROVED, .created = 1};
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("tkc_agent"), &c, 0) == 0);
    TK_ASSERT(tk_store_commit(w) == 0);
    cs.client_status.status = TK_CLIENT_DISABLED;
    CHECK(apply(&cs));
    CHECK(!apply(&cs));
    cs.client_status.status = TK_CLIENT_APPROVED;
    CHECK(apply(&cs));
    uint64_t s[4];
    uint8_t k[4];
    CHECK_EQ_INT(queue("edge", s, k, 4), 2);
    CHECK_EQ_INT(k[1], TK_SSF_CLIENT_DISABLED);
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("edge"), s[0], &seq, &ev), 0);
    CHECK_SLICE(ev.client, "tkc_agent");
    tk_store_txn_end(r);
    /* A revoked token names its session (its delegated tokens share it). */
    revoke_token(3, 301);
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("edge"), s[1], &seq, &ev), 0);
    CHECK_EQ_INT(ev.kind, TK_SSF_TOKEN_REVOKED);
    CHECK_SLICE(ev.id, "tks_1");
    tk_store_txn_end(r);
    close_remove();
}

/* A revoked grant's event names whose sub it is, read when it is queued:
 * the issuer of the grant's session (an IdP's, or none: tokend's own); a
 * consent grant without an issuer is found by its consent key. When that
 * cannot be told (the session is missing, a consent made at an IdP) the
 * event names no user, only the client: never a wrong issuer. */
static void revoke_grant(const char *id, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_REVOKE_GRANT, at);
    TK_ASSERT(tk_op_id_set(&op.revoke_grant.grant, tk_slice_from_str(id)) == 0);
    CHECK(apply(&op));
}

static void put_grant(tk_txn *w, const char *id, const char *sub, const char *sid)
{
    tk_grant_rec g = {.client_id = TK_SLICE_LIT("tkc_agent"),
                      .sub = tk_slice_from_str(sub),
                      .sid = tk_slice_from_str(sid),
                      .resource =
                          *sid == '\0' ? TK_SLICE_LIT("https://api.example") : TK_SLICE_NULL,
                      .state = TK_GRANT_ACTIVE,
                      .created = 1};
    TK_ASSERT(tk_store_put_grant(w, tk_slice_from_str(id), &g, 0) == 0);
}

static void put_consent(tk_txn *w, const char *iss, const char *sub, const char *grant)
{
    uint8_t key[TK_HASH_LEN];
    tk_store_consent_key(tk_slice_from_str(iss), tk_slice_from_str(sub), TK_SLICE_LIT("tkc_agent"),
                         TK_SLICE_LIT("https://api.example"), key);
    TK_ASSERT(tk_store_put_consent(w, key, tk_slice_from_str(grant)) == 0);
}

static void test_grant_issuer(void)
{
    open_fresh();
    seed(); /* tks_1: alice, no issuer; tkg_1 its grant */
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 100), 0);
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    tk_session_rec s = {.sub = TK_SLICE_LIT("bob"),
                        .issuer = TK_SLICE_LIT("https://idp.example"),
                        .state = TK_SESSION_ACTIVE,
                        .created = 1};
    TK_ASSERT(tk_store_put_session(w, TK_SLICE_LIT("tks_idp"), &s, 0) == 0);
    put_grant(w, "tkg_idp", "bob", "tks_idp");
    put_grant(w, "tkg_gone", "carol", "tks_gone"); /* its session is not there */
    put_grant(w, "tkg_dev", "dave", "");           /* consents, without an IdP / at one */
    put_consent(w, "", "dave", "tkg_dev");
    put_grant(w, "tkg_org", "erin", ""); /* recorded before grants kept the issuer */
    put_consent(w, "https://idp.example", "erin", "tkg_org");
    tk_grant_rec gi = {.client_id = TK_SLICE_LIT("tkc_agent"), /* consented after an IdP sign-in */
                       .sub = TK_SLICE_LIT("frank"),
                       .resource = TK_SLICE_LIT("https://api.example"),
                       .iss = TK_SLICE_LIT("https://partner.example"),
                       .state = TK_GRANT_ACTIVE,
                       .created = 1};
    TK_ASSERT(tk_store_put_grant(w, TK_SLICE_LIT("tkg_iss"), &gi, 0) == 0);
    put_consent(w, "https://partner.example", "frank", "tkg_iss");
    TK_ASSERT(tk_store_commit(w) == 0);
    const char *order[] = {"tkg_idp", "tkg_1", "tkg_gone", "tkg_dev", "tkg_org", "tkg_iss"};
    const char *iss[] = {"https://idp.example", "", "", "", "", "https://partner.example"};
    const char *sub[] = {"bob", "alice", "", "dave", "", "frank"};
    for (int i = 0; i < 6; i++) {
        revoke_grant(order[i], 700 + i);
    }
    /* A session that ends after the revocation changes nothing queued. */
    tk_op end = tk_op_make(TK_OP_SESSION_STATE, 800);
    TK_ASSERT(tk_op_id_set(&end.session.sid, TK_SLICE_LIT("tks_idp")) == 0);
    end.session.state = TK_SESSION_TERMINATED;
    CHECK(apply(&end));
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    uint64_t seq = 0;
    tk_ssf_event_rec ev;
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("edge"), seq, &seq, &ev), 0);
        CHECK_EQ_INT(ev.kind, TK_SSF_GRANT_REVOKED);
        CHECK_SLICE(ev.id, order[i]);
        CHECK_EQ_INT(ev.iss.len, strlen(iss[i]));
        CHECK_EQ_INT(ev.sub.len, strlen(sub[i]));
        CHECK(ev.iss.len == 0 || memcmp(ev.iss.p, iss[i], ev.iss.len) == 0);
        CHECK(ev.sub.len == 0 || memcmp(ev.sub.p, sub[i], ev.sub.len) == 0);
        CHECK_SLICE(ev.client, "tkc_agent");
    }
    tk_store_txn_end(r);
    close_remove();
}

/* An IdP event ends every session its key matches: one event per session
 * it changed, none when it is replayed. */
static void test_idp_event(void)
{
    open_fresh();
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 100), 0);
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    const char *sids[] = {"tks_a", "tks_b", "tks_c"};
    for (int i = 0; i < 3; i++) {
        tk_session_rec s = {.sub = TK_SLICE_LIT("alice"),
                            .issuer = TK_SLICE_LIT("https://idp.example"),
                            .idp_sid = i < 2 ? TK_SLICE_LIT("idp-s1") : TK_SLICE_LIT("idp-s2"),
                            .state = TK_SESSION_ACTIVE,
                            .created = 1};
        TK_ASSERT(tk_store_put_session(w, tk_slice_from_str(sids[i]), &s, 0) == 0);
    }
    TK_ASSERT(tk_store_commit(w) == 0);
    tk_op op = tk_op_make(TK_OP_IDP_EVENT, 500);
    tk_op_idp_event *e = &op.idp_event;
    tk_store_idp_key(TK_IDP_KEY_SID, TK_SLICE_LIT("https://idp.example"), TK_SLICE_LIT("idp-s1"),
                     e->match);
    e->state = TK_SESSION_TERMINATED;
    e->source = TK_SOURCE_BACKCHANNEL;
    e->until = 600;
    TK_ASSERT(tk_op_id_set(&e->event_id, TK_SLICE_LIT("jti-1")) == 0);
    TK_ASSERT(tk_op_iss_set(&e->iss, TK_SLICE_LIT("https://idp.example")) == 0);
    TK_ASSERT(tk_op_reason_set(&e->reason, TK_SLICE_LIT("backchannel_logout")) == 0);
    CHECK(apply(&op));
    CHECK(!apply(&op)); /* the replay changes nothing and queues nothing */
    uint64_t s[8];
    uint8_t k[8];
    CHECK_EQ_INT(queue("edge", s, k, 8), 2);
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    uint64_t seq = 0;
    tk_ssf_event_rec ev;
    bool seen[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(tk_store_ssf_next(r, TK_SLICE_LIT("edge"), seq, &seq, &ev), 0);
        CHECK_EQ_INT(ev.kind, TK_SSF_SESSION_REVOKED);
        CHECK_SLICE(ev.reason, "backchannel_logout");
        seen[0] = seen[0] || tk_slice_eq_str(ev.id, "tks_a");
        seen[1] = seen[1] || tk_slice_eq_str(ev.id, "tks_b");
    }
    CHECK(seen[0] && seen[1]);
    tk_store_txn_end(r);
    close_remove();
}

static void test_ack(void)
{
    open_fresh();
    seed();
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 100), 0);
    revoke_token(1, 100);
    revoke_token(2, 101);
    uint64_t s[4];
    uint8_t k[4];
    CHECK_EQ_INT(queue("edge", s, k, 4), 2);
    CHECK(ack("edge", s[0]));
    CHECK(!ack("edge", s[0]));     /* again: nothing */
    CHECK(!ack("other", s[1]));    /* another receiver's sequence: nothing */
    CHECK(!ack("edge", s[1] + 1)); /* a sequence never used */
    CHECK_EQ_INT(receiver("edge").depth, 1);
    CHECK_EQ_INT(queue("edge", s, k, 4), 1);
    CHECK(ack("edge", s[0]));
    CHECK_EQ_INT(queue("edge", s, k, 4), 0);
    CHECK_EQ_INT(receiver("edge").depth, 0);
    close_remove();
}

static void test_overflow(void)
{
    open_fresh();
    seed();
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 2), 0);
    for (uint8_t i = 1; i <= 5; i++) {
        revoke_token(i, 100 + i);
    }
    uint64_t s[8];
    uint8_t k[8];
    CHECK_EQ_INT(queue("edge", s, k, 8), 3);
    CHECK_EQ_INT(k[0], TK_SSF_TOKEN_REVOKED);
    CHECK_EQ_INT(k[1], TK_SSF_TOKEN_REVOKED);
    CHECK_EQ_INT(k[2], TK_SSF_OVERFLOW);
    tk_ssf_receiver_rec r = receiver("edge");
    CHECK_EQ_INT(r.depth, 3);
    CHECK_EQ_INT(r.dropped, 3);
    CHECK_EQ_INT(r.overflowed, 1);
    /* Delivering the head does not end the overflow; delivering it does. */
    CHECK(ack("edge", s[0]));
    revoke_token(6, 200);
    CHECK_EQ_INT(queue("edge", s, k, 8), 2);
    CHECK_EQ_INT(receiver("edge").dropped, 4);
    CHECK(ack("edge", s[0]));
    CHECK(ack("edge", s[1]));
    r = receiver("edge");
    CHECK_EQ_INT(r.overflowed, 0);
    CHECK_EQ_INT(r.depth, 0);
    revoke_token(7, 201);
    CHECK_EQ_INT(queue("edge", s, k, 8), 1);
    CHECK_EQ_INT(k[0], TK_SSF_TOKEN_REVOKED);
    close_remove();
}

static void test_receivers(void)
{
    open_fresh();
    seed();
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 10), 0);
    revoke_token(1, 100);
    uint64_t s[4];
    uint8_t k[4];
    CHECK_EQ_INT(queue("edge", s, k, 4), 1);
    uint64_t old = s[0];
    /* Replacing the settings keeps the queue and its depth. */
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_BIT(TK_SSF_SESSION_REVOKED), 10), 0);
    CHECK_EQ_INT(receiver("edge").depth, 1);
    CHECK_EQ_INT(receiver("edge").want, TK_SSF_BIT(TK_SSF_SESSION_REVOKED));
    /* Removal drops the queue; a sequence is never reused after re-adding. */
    tk_txn *w;
    uint64_t dropped = 0;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    CHECK_EQ_INT(tk_store_ssf_receiver_remove(w, TK_SLICE_LIT("edge"), &dropped), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    CHECK_EQ_INT(dropped, 1);
    CHECK_EQ_INT(queue("edge", s, k, 4), 0);
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 10), 0);
    revoke_token(2, 101);
    CHECK_EQ_INT(queue("edge", s, k, 4), 1);
    CHECK(s[0] > old);
    CHECK(!ack("edge", old)); /* a late ack of the old registration */
    CHECK_EQ_INT(queue("edge", s, k, 4), 1);
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    CHECK_EQ_INT(tk_store_ssf_receiver_remove(w, TK_SLICE_LIT("nobody"), &dropped), TK_E_NOTFOUND);
    tk_store_txn_end(w);
    /* Bounds: ids, the number of receivers, the settings. */
    CHECK_EQ_INT(add_receiver("bad id", TK_SSF_WANT_ALL, 10), TK_E_INVALID);
    CHECK_EQ_INT(add_receiver("", TK_SSF_WANT_ALL, 10), TK_E_INVALID);
    CHECK_EQ_INT(add_receiver("x", TK_SSF_WANT_ALL | TK_SSF_BIT(TK_SSF_OVERFLOW), 10),
                 TK_E_INVALID);
    CHECK_EQ_INT(add_receiver("x", TK_SSF_WANT_ALL, 0), TK_E_INVALID);
    CHECK_EQ_INT(add_receiver("x", 0, 10), TK_E_INVALID);
    for (int i = 1; i < TK_SSF_RECEIVERS_MAX; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%02d", i);
        CHECK_EQ_INT(add_receiver(id, TK_SSF_WANT_ALL, 10), 0);
    }
    CHECK_EQ_INT(add_receiver("one-too-many", TK_SSF_WANT_ALL, 10), TK_E_TOOBIG);
    CHECK_EQ_INT(add_receiver("edge", TK_SSF_WANT_ALL, 20), 0); /* replacing is fine */
    revoke_token(3, 102);
    CHECK_EQ_INT(queue("r15", s, k, 4), 1);
    CHECK(tk_store_ssf_id_ok(TK_SLICE_LIT("a.b_c-D9")));
    CHECK(!tk_store_ssf_id_ok(TK_SLICE_LIT("a/b")));
    CHECK(!tk_store_ssf_id_ok(TK_SLICE_LIT("0123456789012345678901234567890123456789012345678901234"
                                           "5678901234")));
    close_remove();
}

/* ---- Codecs --------------------------------------------------------------------------- */

static void test_op_wire_form(void)
{
    tk_op op = tk_op_make(TK_OP_SSF_ACK, 1700000000);
    TK_ASSERT(tk_op_id_set(&op.ssf_ack.receiver, TK_SLICE_LIT("edge-1")) == 0);
    op.ssf_ack.seq = 0x0102030405060708ull;
    uint8_t buf[256];
    size_t len = 0;
    CHECK_EQ_INT(tk_op_encode(&op, buf, sizeof buf, &len), 0);
    tk_op back;
    CHECK_EQ_INT(tk_op_decode(buf, len, &back), 0);
    CHECK_EQ_INT(back.type, TK_OP_SSF_ACK);
    CHECK_EQ_INT(back.at, 1700000000);
    CHECK_SLICE(tk_op_id_get(&back.ssf_ack.receiver), "edge-1");
    CHECK(back.ssf_ack.seq == 0x0102030405060708ull);
    for (size_t cut = 0; cut < len; cut++) { /* every truncation is refused */
        CHECK_EQ_INT(tk_op_decode(buf, cut, &back), TK_E_CORRUPT);
    }
    op.ssf_ack.seq = 0;
    CHECK_EQ_INT(tk_op_encode(&op, buf, sizeof buf, &len), TK_E_INVALID);
    op.ssf_ack.seq = (uint64_t)INT64_MAX + 1;
    CHECK_EQ_INT(tk_op_validate(&op), TK_E_INVALID);
    op.ssf_ack.seq = 1;
    TK_ASSERT(tk_op_id_set(&op.ssf_ack.receiver, TK_SLICE_NULL) == 0);
    CHECK_EQ_INT(tk_op_validate(&op), TK_E_INVALID);
    /* The shared ops still round-trip, and one of them with the ack's
     * sequence key is refused. */
    tk_op rv = tk_op_make(TK_OP_REVOKE_GRANT, 5);
    TK_ASSERT(tk_op_id_set(&rv.revoke_grant.grant, TK_SLICE_LIT("tkg_1")) == 0);
    CHECK_EQ_INT(tk_op_encode(&rv, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(tk_op_decode(buf, len, &back), 0);
    CHECK_EQ_INT(back.type, TK_OP_REVOKE_GRANT);
    /* {0:1, 1:2, 4:"tkg_1", 6:5, 16:1}: a revoke-grant carrying key 16 */
    const uint8_t mixed[] = {0x85, 0x00, 0x01, 0x01, 0x02, 0x04, 0xa5, 't',
                             'k',  'g',  '_',  '1',  0x06, 0x05, 0x10, 0x01};
    CHECK_EQ_INT(tk_op_decode(mixed, sizeof mixed, &back), TK_E_CORRUPT);
}

static void test_records(void)
{
    tk_ssf_event_rec e = {.kind = TK_SSF_GRANT_REVOKED,
                          .at = 7,
                          .id = TK_SLICE_LIT("tkg_1"),
                          .sub = TK_SLICE_LIT("alice"),
                          .client = TK_SLICE_LIT("tkc_a")};
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    CHECK_EQ_INT(tk_record_encode_ssf_event(&e, buf, sizeof buf, &len), 0);
    tk_ssf_event_rec d;
    CHECK_EQ_INT(tk_record_decode_ssf_event(buf, len, &d), 0);
    CHECK_EQ_INT(d.kind, TK_SSF_GRANT_REVOKED);
    CHECK_SLICE(d.client, "tkc_a");
    CHECK_EQ_INT(d.iss.len, 0); /* absent: events queued before key 9 decode unchanged */
    e.iss = TK_SLICE_LIT("https://idp.example");
    CHECK_EQ_INT(tk_record_encode_ssf_event(&e, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(tk_record_decode_ssf_event(buf, len, &d), 0);
    CHECK_SLICE(d.iss, "https://idp.example");
    e.kind = 0;
    CHECK_EQ_INT(tk_record_encode_ssf_event(&e, buf, sizeof buf, &len), TK_E_INVALID);
    e.kind = TK_SSF_KIND_LAST + 1;
    CHECK_EQ_INT(tk_record_encode_ssf_event(&e, buf, sizeof buf, &len), TK_E_INVALID);
    uint8_t kind = 0;
    CHECK_EQ_INT(tk_ssf_kind_parse(TK_SLICE_LIT("token-revoked"), &kind), 0);
    CHECK_EQ_INT(kind, TK_SSF_TOKEN_REVOKED);
    CHECK_EQ_INT(tk_ssf_kind_parse(TK_SLICE_LIT("token-revoke"), &kind), TK_E_BADINPUT);
    for (uint8_t k = 1; k <= TK_SSF_KIND_LAST; k++) {
        CHECK_EQ_INT(tk_ssf_kind_parse(tk_slice_from_str(tk_ssf_kind_name(k)), &kind), 0);
        CHECK_EQ_INT(kind, k);
    }
}

/* ---- SET claims --------------------------------------------------------------------- */

static void claims(const tk_ssf_event_rec *ev, const char *want)
{
    char buf[TK_SSF_PAYLOAD_MAX];
    size_t len = 0;
    CHECK_EQ_INT(tk_ssf_set_claims(TK_SLICE_LIT("https://tokend.test"), TK_SLICE_LIT("edge"),
                                   TK_SLICE_LIT("https://edge.example"), 42, ev, 1000, buf,
                                   sizeof buf, &len),
                 0);
    CHECK_EQ_INT(len, strlen(buf));
    /* The jti is a 22-character hash: compare everything around it. */
    const char *j = strstr(buf, "\"jti\":\"");
    TK_ASSERT(j != NULL);
    char masked[TK_SSF_PAYLOAD_MAX];
    size_t at = (size_t)(j - buf) + 7;
    snprintf(masked, sizeof masked, "%.*sJTI%s", (int)at, buf, buf + at + 22);
    CHECK_EQ_STR(masked, want);
}

static void test_set_claims(void)
{
    tk_ssf_event_rec s = {.kind = TK_SSF_SESSION_REVOKED,
                          .at = 900,
                          .id = TK_SLICE_LIT("tks_1"),
                          .reason = TK_SLICE_LIT("logout \"now\"")};
    claims(&s, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
               "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"opaque\",\"id\":\"tks_1\"},\"events\":{"
               "\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\":{"
               "\"event_timestamp\":900,\"reason_admin\":{\"en\":\"logout \\\"now\\\"\"}}}}");
    tk_ssf_event_rec t = {.kind = TK_SSF_TOKEN_REVOKED, .at = 901, .has_hash = true};
    memset(t.hash, 0xff, sizeof t.hash);
    claims(&t, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
               "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"opaque\",\"id\":"
               "\"__________________________________________8\"},\"events\":{"
               "\"urn:tokend:secevent:token-revoked\":{\"event_timestamp\":901}}}");
    tk_ssf_event_rec g = {.kind = TK_SSF_GRANT_REVOKED,
                          .at = 902,
                          .id = TK_SLICE_LIT("tkg_1"),
                          .sub = TK_SLICE_LIT("alice"),
                          .client = TK_SLICE_LIT("tkc_a")};
    claims(&g, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
               "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"complex\",\"user\":{\"format\":"
               "\"iss_sub\",\"iss\":\"https://tokend.test\",\"sub\":\"alice\"},\"application\":{"
               "\"format\":\"opaque\",\"id\":\"tkc_a\"}},\"events\":{"
               "\"urn:tokend:secevent:grant-revoked\":{\"event_timestamp\":902,\"grant_id\":"
               "\"tkg_1\"}}}");
    /* The user's issuer: the IdP's when the event names one; no user when
     * whose sub it is could not be told. */
    g.iss = TK_SLICE_LIT("https://idp.example");
    claims(&g, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
               "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"complex\",\"user\":{\"format\":"
               "\"iss_sub\",\"iss\":\"https://idp.example\",\"sub\":\"alice\"},\"application\":{"
               "\"format\":\"opaque\",\"id\":\"tkc_a\"}},\"events\":{"
               "\"urn:tokend:secevent:grant-revoked\":{\"event_timestamp\":902,\"grant_id\":"
               "\"tkg_1\"}}}");
    g.sub = TK_SLICE_NULL;
    claims(&g, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
               "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"complex\",\"application\":{"
               "\"format\":\"opaque\",\"id\":\"tkc_a\"}},\"events\":{"
               "\"urn:tokend:secevent:grant-revoked\":{\"event_timestamp\":902,\"grant_id\":"
               "\"tkg_1\"}}}");
    tk_ssf_event_rec h = {.kind = TK_SSF_SESSION_SUSPENDED,
                          .at = 903,
                          .id = TK_SLICE_LIT("tks_1"),
                          .hold = TK_HOLD_DEVICE};
    claims(&h, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
               "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"opaque\",\"id\":\"tks_1\"},\"events\":{"
               "\"urn:tokend:secevent:session-suspended\":{\"event_timestamp\":903,\"hold\":"
               "\"device\"}}}");
    tk_ssf_event_rec cd = {
        .kind = TK_SSF_CLIENT_DISABLED, .at = 905, .client = TK_SLICE_LIT("tkc_a")};
    claims(&cd, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
                "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"opaque\",\"id\":\"tkc_a\"},\"events\":{"
                "\"urn:tokend:secevent:client-disabled\":{\"event_timestamp\":905}}}");
    t.id = TK_SLICE_LIT("tks_9");
    claims(&t,
           "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
           "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"opaque\",\"id\":"
           "\"__________________________________________8\"},\"events\":{"
           "\"urn:tokend:secevent:token-revoked\":{\"event_timestamp\":901,\"sid\":\"tks_9\"}}}");
    tk_ssf_event_rec o = {.kind = TK_SSF_OVERFLOW, .at = 904};
    claims(&o, "{\"iss\":\"https://tokend.test\",\"aud\":\"https://edge.example\",\"iat\":1000,"
               "\"jti\":\"JTI\",\"sub_id\":{\"format\":\"uri\",\"uri\":\"https://tokend.test\"},"
               "\"events\":{\"urn:tokend:secevent:overflow\":{\"event_timestamp\":904}}}");
    /* The jti: the same for a redelivery, another for another receiver or event. */
    char a[TK_SSF_PAYLOAD_MAX], b[TK_SSF_PAYLOAD_MAX], c[TK_SSF_PAYLOAD_MAX];
    size_t la, lb, lc;
    tk_slice iss = TK_SLICE_LIT("i"), aud = TK_SLICE_LIT("a");
    TK_ASSERT(tk_ssf_set_claims(iss, TK_SLICE_LIT("e1"), aud, 1, &s, 5, a, sizeof a, &la) == 0);
    TK_ASSERT(tk_ssf_set_claims(iss, TK_SLICE_LIT("e1"), aud, 1, &s, 9, b, sizeof b, &lb) == 0);
    TK_ASSERT(tk_ssf_set_claims(iss, TK_SLICE_LIT("e2"), aud, 1, &s, 5, c, sizeof c, &lc) == 0);
    CHECK(memcmp(strstr(a, "jti"), strstr(b, "jti"), 28) == 0);
    CHECK(memcmp(strstr(a, "jti"), strstr(c, "jti"), 28) != 0);
    TK_ASSERT(tk_ssf_set_claims(iss, TK_SLICE_LIT("e1"), aud, 2, &s, 5, c, sizeof c, &lc) == 0);
    CHECK(memcmp(strstr(a, "jti"), strstr(c, "jti"), 28) != 0);
    CHECK_EQ_INT(tk_ssf_set_claims(iss, TK_SLICE_LIT("e1"), aud, 1, &s, 5, a, 64, &la),
                 TK_E_TOOBIG);
    CHECK(tk_ssf_event_type(0) == NULL);
    CHECK(tk_ssf_event_type(TK_SSF_KIND_LAST + 1) == NULL);
}

int main(void)
{
    RUN(test_nobody_listens);
    RUN(test_fanout_filter_and_order);
    RUN(test_grant_client_and_token_events);
    RUN(test_grant_issuer);
    RUN(test_idp_event);
    RUN(test_ack);
    RUN(test_overflow);
    RUN(test_receivers);
    RUN(test_op_wire_form);
    RUN(test_records);
    RUN(test_set_claims);
    return check_report();
}
