/*
 * The authorization server's ops, applied through tk_store_apply_outcome as
 * the committer does: sign-in, a pending request consumed into a consent
 * grant and a code, code redemption (once; a second time revokes the
 * grant), refresh rotation (the reuse window gives a sibling, a later reuse
 * revokes the family), token exchange, and that every refusal writes
 * nothing.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tokend/committer.h"
#include "tokend/store.h"

#include <poll.h>

static tk_slice cstr(const char *s)
{
    return (tk_slice){s, strlen(s)};
}

static char dir[64];
static tk_store *st;

#define T0 1700000000

static void h(uint8_t tag, uint8_t out[TK_HASH_LEN])
{
    memset(out, tag, TK_HASH_LEN);
}

static void setup(void)
{
    strcpy(dir, "/tmp/tk_asops_XXXXXX");
    TK_ASSERT(mkdtemp(dir) != NULL);
    tk_store_opts o = {.dir = dir, .map_size = 64 << 20};
    TK_ASSERT(tk_store_open(&o, &st) == 0);
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    tk_client_rec c = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_APPROVED, .created = T0};
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("tkc_agent"), &c, 0) == 0);
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("tkc_sub"), &c, 0) == 0);
    TK_ASSERT(tk_store_commit(w) == 0);
}

static void teardown(void)
{
    tk_store_close(st);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

/* Apply one op in its own txn; returns the outcome, *changed. */
static uint8_t apply(const tk_op *op, bool *changed)
{
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    bool ch = false;
    uint8_t out = 0;
    int rc = tk_store_apply_outcome(w, op, &ch, &out);
    TK_ASSERT(rc == 0);
    TK_ASSERT(tk_store_commit(w) == 0);
    if (changed != NULL) {
        *changed = ch;
    }
    return out;
}

static uint8_t apply1(const tk_op *op)
{
    return apply(op, NULL);
}

static void put_request(const char *id, int64_t at)
{
    tk_authreq_rec a = {.client_id = TK_SLICE_LIT("tkc_agent"),
                        .redirect_uri = TK_SLICE_LIT("http://127.0.0.1:9/cb"),
                        .scope = TK_SLICE_LIT("mcp:read mcp:write"),
                        .resource = TK_SLICE_LIT("https://mcp.test/mcp"),
                        .exp = at + 600,
                        .created = at};
    h(0xc5, a.csrf_key);
    h(0xcc, a.challenge);
    uint8_t *buf = malloc(TK_RECORD_MAX);
    size_t len;
    TK_ASSERT(tk_record_encode_authreq(&a, buf, TK_RECORD_MAX, &len) == 0);
    tk_op op = tk_op_make(TK_OP_PUT_NEW, at);
    op.put_new.db = TK_OP_DB_AUTHREQ;
    TK_ASSERT(tk_op_id_set(&op.put_new.key, cstr(id)) == 0);
    op.put_new.rec = buf;
    op.put_new.len = (uint16_t)len;
    CHECK_EQ_INT(apply1(&op), TK_OUT_OK);
    CHECK_EQ_INT(apply1(&op), TK_OUT_INVALID); /* a second put changes nothing */
    free(buf);
}

static void sign_in(const char *request, uint8_t browser_tag, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_SIGN_IN, at);
    TK_ASSERT(tk_op_id_set(&op.sign_in.sid, TK_SLICE_LIT("tks_1")) == 0);
    TK_ASSERT(tk_op_sub_set(&op.sign_in.sub, TK_SLICE_LIT("alice")) == 0);
    op.sign_in.session_exp = at + 3600;
    op.sign_in.browser_exp = at + 3600;
    h(browser_tag, op.sign_in.browser);
    h(0x5e, op.sign_in.csrf_key);
    TK_ASSERT(tk_op_id_set(&op.sign_in.request, cstr(request)) == 0);
    CHECK_EQ_INT(apply1(&op), TK_OUT_OK);
}

static tk_op code_issue(const char *request, uint8_t browser_tag, uint8_t decision, uint8_t code,
                        int64_t at)
{
    tk_op op = tk_op_make(TK_OP_CODE_ISSUE, at);
    TK_ASSERT(tk_op_id_set(&op.code_issue.request, cstr(request)) == 0);
    h(browser_tag, op.code_issue.browser);
    op.code_issue.decision = decision;
    h(code, op.code_issue.code);
    op.code_issue.code_exp = at + 60;
    TK_ASSERT(tk_op_id_set(&op.code_issue.grant, TK_SLICE_LIT("tkg_consent")) == 0);
    return op;
}

static tk_op redeem(uint8_t code, uint8_t access, uint8_t refresh, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_CODE_REDEEM, at);
    h(code, op.code_redeem.code);
    h(access, op.code_redeem.access);
    h(refresh, op.code_redeem.refresh);
    op.code_redeem.has_refresh = true;
    op.code_redeem.access_exp = at + 300;
    op.code_redeem.refresh_exp = at + 86400;
    return op;
}

static tk_op refresh(uint8_t old, uint8_t access, uint8_t newr, int64_t at, uint64_t mask)
{
    tk_op op = tk_op_make(TK_OP_REFRESH, at);
    h(old, op.refresh.old);
    h(access, op.refresh.access);
    h(newr, op.refresh.refresh);
    op.refresh.access_exp = at + 300;
    op.refresh.refresh_exp = at + 86400;
    op.refresh.window = 5;
    op.refresh.scope_mask = mask;
    return op;
}

static bool token_exists(uint8_t tag, tk_token_rec *out)
{
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    uint8_t hh[TK_HASH_LEN];
    h(tag, hh);
    tk_token_rec t;
    int rc = tk_store_get_token(r, hh, &t);
    if (rc == 0 && out != NULL) {
        *out = t; /* slices die with the txn: callers use the scalars only */
    }
    tk_store_txn_end(r);
    return rc == 0;
}

static uint8_t grant_state(const char *id)
{
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    tk_grant_rec g;
    int rc = tk_store_get_grant(r, cstr(id), &g);
    uint8_t s = rc == 0 ? g.state : 0;
    tk_store_txn_end(r);
    return s;
}

static void test_code_flow(void)
{
    setup();
    put_request("tka_1", T0);
    /* Consent before sign-in: the request is bound to no browser. */
    tk_op ci = code_issue("tka_1", 0xb1, TK_DECIDE_APPROVE, 0xd1, T0 + 1);
    bool ch = true;
    CHECK_EQ_INT(apply(&ci, &ch), TK_OUT_INVALID);
    CHECK(!ch);
    sign_in("tka_1", 0xb1, T0 + 1);
    /* Another browser cannot consume it. */
    tk_op other = code_issue("tka_1", 0xb2, TK_DECIDE_APPROVE, 0xd1, T0 + 2);
    CHECK_EQ_INT(apply(&other, &ch), TK_OUT_INVALID);
    CHECK(!ch);
    /* GRANTED without a consent grant: refused. */
    tk_op granted = code_issue("tka_1", 0xb1, TK_DECIDE_GRANTED, 0xd1, T0 + 2);
    CHECK_EQ_INT(apply1(&granted), TK_OUT_INVALID);
    CHECK_EQ_INT(apply1(&ci), TK_OUT_OK);
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_ACTIVE);
    /* Single use: the same request again is refused. */
    CHECK_EQ_INT(apply1(&ci), TK_OUT_INVALID);

    /* An expired code is refused and writes nothing. */
    tk_op late = redeem(0xd1, 0xa1, 0xf1, T0 + 100);
    CHECK_EQ_INT(apply(&late, &ch), TK_OUT_INVALID);
    CHECK(!ch && !token_exists(0xa1, NULL));
    tk_op r1 = redeem(0xd1, 0xa1, 0xf1, T0 + 10);
    CHECK_EQ_INT(apply1(&r1), TK_OUT_OK);
    tk_token_rec t;
    CHECK(token_exists(0xa1, &t) && t.kind == TK_TOKEN_ACCESS && t.exp == T0 + 310);
    CHECK(token_exists(0xf1, &t) && t.kind == TK_TOKEN_REFRESH);
    /* Unknown code. */
    tk_op unk = redeem(0xd9, 0xa9, 0xf9, T0 + 10);
    CHECK_EQ_INT(apply1(&unk), TK_OUT_INVALID);

    /* Refresh: rotate, then a reuse inside the window is a sibling. */
    tk_op f1 = refresh(0xf1, 0xa2, 0xf2, T0 + 20, UINT64_MAX);
    CHECK_EQ_INT(apply1(&f1), TK_OUT_OK);
    CHECK(token_exists(0xf1, &t) && t.rotated_at == T0 + 20 && t.has_successor);
    tk_op f1b = refresh(0xf1, 0xa3, 0xf3, T0 + 24, 1u); /* narrowed to mcp:read */
    CHECK_EQ_INT(apply1(&f1b), TK_OUT_OK);
    CHECK(token_exists(0xf3, NULL));
    /* The access token of a refresh: a refresh token is not an access one. */
    tk_op wrong = refresh(0xa2, 0xa4, 0xf4, T0 + 25, UINT64_MAX);
    CHECK_EQ_INT(apply(&wrong, &ch), TK_OUT_INVALID);
    CHECK(!ch);

    /* Exchange: a child of access token a2 for tkc_sub. */
    tk_op ex = tk_op_make(TK_OP_EXCHANGE, T0 + 26);
    h(0xa2, ex.exchange.parent);
    h(0xe1, ex.exchange.child);
    TK_ASSERT(tk_op_id_set(&ex.exchange.client, TK_SLICE_LIT("tkc_sub")) == 0);
    ex.exchange.exp = T0 + 100000;
    ex.exchange.scope_mask = 2u; /* mcp:write */
    CHECK_EQ_INT(apply1(&ex), TK_OUT_OK);
    CHECK(token_exists(0xe1, &t) && t.has_parent && t.exp == T0 + 320);

    /* Reuse after the window: the family (the grant) is revoked. */
    tk_op f1c = refresh(0xf1, 0xa5, 0xf5, T0 + 40, UINT64_MAX);
    CHECK_EQ_INT(apply1(&f1c), TK_OUT_REPLAYED);
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_REVOKED);
    CHECK(!token_exists(0xf5, NULL));
    /* A fresh refresh of the revoked family is refused. */
    tk_op f2 = refresh(0xf2, 0xa6, 0xf6, T0 + 41, UINT64_MAX);
    CHECK_EQ_INT(apply1(&f2), TK_OUT_INVALID);
    teardown();
}

static void test_code_replay_revokes(void)
{
    setup();
    put_request("tka_2", T0);
    sign_in("tka_2", 0xb1, T0);
    tk_op ci = code_issue("tka_2", 0xb1, TK_DECIDE_APPROVE, 0xd2, T0 + 1);
    CHECK_EQ_INT(apply1(&ci), TK_OUT_OK);
    tk_op r1 = redeem(0xd2, 0xa1, 0xf1, T0 + 2);
    CHECK_EQ_INT(apply1(&r1), TK_OUT_OK);
    tk_op r2 = redeem(0xd2, 0xa7, 0xf7, T0 + 3);
    CHECK_EQ_INT(apply1(&r2), TK_OUT_REPLAYED);
    CHECK(!token_exists(0xa7, NULL));
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_REVOKED);

    /* A second request of the same user, client and resource after the
     * revocation needs consent again: GRANTED is refused... */
    put_request("tka_3", T0 + 4);
    sign_in("tka_3", 0xb1, T0 + 4); /* same browser: binds the new request */
    tk_op g = code_issue("tka_3", 0xb1, TK_DECIDE_GRANTED, 0xd3, T0 + 5);
    CHECK_EQ_INT(apply1(&g), TK_OUT_INVALID);
    /* ...and an approval makes a new grant. */
    tk_op a = code_issue("tka_3", 0xb1, TK_DECIDE_APPROVE, 0xd3, T0 + 5);
    TK_ASSERT(tk_op_id_set(&a.code_issue.grant, TK_SLICE_LIT("tkg_second")) == 0);
    CHECK_EQ_INT(apply1(&a), TK_OUT_OK);
    CHECK_EQ_INT(grant_state("tkg_second"), TK_GRANT_ACTIVE);
    /* Deny consumes a request without a grant or code. */
    put_request("tka_4", T0 + 6);
    sign_in("tka_4", 0xb1, T0 + 6);
    tk_op d = code_issue("tka_4", 0xb1, TK_DECIDE_DENY, 0xd4, T0 + 7);
    CHECK_EQ_INT(apply1(&d), TK_OUT_OK);
    CHECK_EQ_INT(apply1(&d), TK_OUT_INVALID);
    teardown();
}

/* The same op applied again (a replicated log delivered twice) changes
 * nothing and answers as the first time: a redemption does not find "its"
 * code used and revoke the grant it issued under, a rotation with a zero
 * reuse window does not revoke the family, an exchange stays OK. A second
 * op with other token hashes is still a replay. */
static void test_reapplied_is_noop(void)
{
    setup();
    put_request("tka_6", T0);
    sign_in("tka_6", 0xb1, T0);
    tk_op ci = code_issue("tka_6", 0xb1, TK_DECIDE_APPROVE, 0xd6, T0 + 1);
    CHECK_EQ_INT(apply1(&ci), TK_OUT_OK);
    tk_op r1 = redeem(0xd6, 0xa1, 0xf1, T0 + 2);
    CHECK_EQ_INT(apply1(&r1), TK_OUT_OK);
    bool ch = true;
    CHECK_EQ_INT(apply(&r1, &ch), TK_OUT_OK);
    CHECK(!ch);
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_ACTIVE);
    tk_op f = refresh(0xf1, 0xa2, 0xf2, T0 + 3, UINT64_MAX);
    f.refresh.window = 0;
    CHECK_EQ_INT(apply1(&f), TK_OUT_OK);
    CHECK_EQ_INT(apply(&f, &ch), TK_OUT_OK);
    CHECK(!ch);
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_ACTIVE);
    tk_op ex = tk_op_make(TK_OP_EXCHANGE, T0 + 4);
    h(0xa2, ex.exchange.parent);
    h(0xe1, ex.exchange.child);
    TK_ASSERT(tk_op_id_set(&ex.exchange.client, TK_SLICE_LIT("tkc_sub")) == 0);
    ex.exchange.exp = T0 + 100;
    ex.exchange.scope_mask = UINT64_MAX;
    CHECK_EQ_INT(apply1(&ex), TK_OUT_OK);
    CHECK_EQ_INT(apply(&ex, &ch), TK_OUT_OK);
    CHECK(!ch);
    /* Another rotation of the rotated token, window 0: theft. */
    tk_op f2 = refresh(0xf1, 0xa3, 0xf3, T0 + 5, UINT64_MAX);
    f2.refresh.window = 0;
    CHECK_EQ_INT(apply1(&f2), TK_OUT_REPLAYED);
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_REVOKED);
    /* Another redemption of the used code: a replay too. */
    tk_op r2 = redeem(0xd6, 0xa4, 0xf4, T0 + 6);
    CHECK_EQ_INT(apply1(&r2), TK_OUT_REPLAYED);
    CHECK(!token_exists(0xa4, NULL));
    teardown();
}

static void test_validate(void)
{
    tk_op op = tk_op_make(TK_OP_PUT_NEW, T0);
    CHECK(tk_op_validate(&op) != 0); /* no db, key or record */
    op = tk_op_make(TK_OP_REFRESH, T0);
    CHECK(tk_op_validate(&op) != 0); /* no expiry, empty mask */
    op = tk_op_make(TK_OP_SIGN_IN, T0);
    CHECK(tk_op_validate(&op) != 0);
    uint8_t buf[TK_OP_WIRE_MAX];
    size_t len;
    op = refresh(1, 2, 3, T0, UINT64_MAX);
    CHECK(tk_op_validate(&op) == 0);
    CHECK(tk_op_encode(&op, buf, sizeof buf, &len) == 0); /* every kind has a wire form */
    tk_op back;
    CHECK(tk_op_decode(buf, len, &back) == 0);
    CHECK(memcmp(&back, &op, sizeof op) == 0);
}

/* Through the committer: two redemptions of one code in the same batch
 * (two workers racing) — exactly one wins, the other reports REPLAYED and
 * revokes what the first issued; a PUT_NEW's record is freed by the
 * committer (ASan would report a leak otherwise). */
static void test_race_through_committer(void)
{
    setup();
    put_request("tka_5", T0);
    sign_in("tka_5", 0xb1, T0);
    tk_op ci = code_issue("tka_5", 0xb1, TK_DECIDE_APPROVE, 0xd5, T0 + 1);
    CHECK_EQ_INT(apply1(&ci), TK_OUT_OK);
    tk_committer *c;
    TK_ASSERT(tk_committer_start(st, 1, 8, &c) == 0);
    tk_commit_req a = {.worker = 0, .cookie = 1, .nops = 1};
    tk_commit_req b = {.worker = 0, .cookie = 2, .nops = 2};
    a.ops[0] = redeem(0xd5, 0xa1, 0xf1, T0 + 2);
    b.ops[0] = tk_op_make(TK_OP_PUT_NEW, T0 + 2); /* a client, then the second redemption */
    tk_client_rec cl = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_PENDING, .created = T0};
    b.ops[0].put_new.db = TK_OP_DB_CLIENT;
    TK_ASSERT(tk_op_id_set(&b.ops[0].put_new.key, TK_SLICE_LIT("tkc_new")) == 0);
    b.ops[0].put_new.rec = malloc(TK_RECORD_MAX);
    size_t len;
    TK_ASSERT(tk_record_encode_client(&cl, b.ops[0].put_new.rec, TK_RECORD_MAX, &len) == 0);
    b.ops[0].put_new.len = (uint16_t)len;
    b.ops[1] = redeem(0xd5, 0xa2, 0xf2, T0 + 2);
    TK_ASSERT(tk_committer_submit(c, &a) == 0);
    TK_ASSERT(tk_committer_submit(c, &b) == 0);
    tk_commit_done d[4];
    size_t got = 0;
    for (int i = 0; i < 200 && got < 2; i++) {
        struct pollfd p = {.fd = tk_committer_event_fd(c, 0), .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            uint64_t v;
            TK_ASSERT(read(p.fd, &v, sizeof v) == (ssize_t)sizeof v);
        }
        got += tk_committer_drain(c, 0, d + got, 4 - got);
    }
    tk_committer_stop(c);
    CHECK_EQ_INT(got, 2);
    for (size_t i = 0; i < got; i++) {
        CHECK_EQ_INT(d[i].result, 0);
        CHECK_EQ_INT(d[i].outcome, d[i].cookie == 1 ? TK_OUT_OK : TK_OUT_REPLAYED);
    }
    CHECK(!token_exists(0xa2, NULL));
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_REVOKED);
    teardown();
}

int main(void)
{
    RUN(test_race_through_committer);
    RUN(test_code_flow);
    RUN(test_code_replay_revokes);
    RUN(test_validate);
    RUN(test_reapplied_is_noop);
    return check_report();
}
