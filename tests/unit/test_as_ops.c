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
#include "tokend/crypto.h"
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

static void put_request_given(const char *id, int64_t at, uint8_t redirect_given)
{
    tk_authreq_rec a = {.client_id = TK_SLICE_LIT("tkc_agent"),
                        .redirect_uri = TK_SLICE_LIT("http://127.0.0.1:9/cb"),
                        .scope = TK_SLICE_LIT("mcp:read mcp:write"),
                        .resource = TK_SLICE_LIT("https://mcp.test/mcp"),
                        .exp = at + 600,
                        .created = at,
                        .redirect_given = redirect_given};
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

static void put_request(const char *id, int64_t at)
{
    put_request_given(id, at, 0);
}

static tk_op sign_in_op(const char *request, uint8_t browser_tag, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_SIGN_IN, at);
    TK_ASSERT(tk_op_id_set(&op.sign_in.sid, TK_SLICE_LIT("tks_1")) == 0);
    TK_ASSERT(tk_op_sub_set(&op.sign_in.sub, TK_SLICE_LIT("alice")) == 0);
    op.sign_in.session_exp = at + 3600;
    op.sign_in.browser_exp = at + 3600;
    h(browser_tag, op.sign_in.browser);
    h(0x5e, op.sign_in.csrf_key);
    TK_ASSERT(tk_op_id_set(&op.sign_in.request, cstr(request)) == 0);
    return op;
}

static void sign_in(const char *request, uint8_t browser_tag, int64_t at)
{
    tk_op op = sign_in_op(request, browser_tag, at);
    CHECK_EQ_INT(apply1(&op), TK_OUT_OK);
}

/* A sign-in upstream keeps the ID token's auth_time, acr and amr on the
 * new session; a dev sign-in has none. */
static void test_sign_in_claims(void)
{
    setup();
    tk_op op = sign_in_op("tka_c", 0xb7, T0);
    TK_ASSERT(tk_op_id_set(&op.sign_in.sid, TK_SLICE_LIT("tks_idp")) == 0);
    TK_ASSERT(tk_op_iss_set(&op.sign_in.idp_iss, TK_SLICE_LIT("https://idp.example")) == 0);
    TK_ASSERT(tk_op_id_set(&op.sign_in.idp_sid, TK_SLICE_LIT("idp-sid-1")) == 0);
    op.sign_in.auth_time = T0 - 30;
    TK_ASSERT(tk_op_acr_set(&op.sign_in.acr, TK_SLICE_LIT("gold")) == 0);
    TK_ASSERT(tk_op_amr_set(&op.sign_in.amr, TK_SLICE_LIT("pwd otp")) == 0);
    CHECK_EQ_INT(apply1(&op), TK_OUT_OK);
    sign_in("tka_d", 0xb8, T0); /* tks_1: the dev login's shape */
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    tk_session_rec s;
    CHECK_EQ_INT(tk_store_get_session(r, TK_SLICE_LIT("tks_idp"), &s), 0);
    CHECK_EQ_INT(s.auth_time, T0 - 30);
    CHECK_SLICE(s.acr, "gold");
    CHECK_SLICE(s.amr, "pwd otp");
    CHECK_SLICE(s.idp_sid, "idp-sid-1");
    CHECK_EQ_INT(tk_store_get_session(r, TK_SLICE_LIT("tks_1"), &s), 0);
    CHECK(s.auth_time == 0 && s.acr.len == 0 && s.amr.len == 0);
    tk_store_txn_end(r);
    teardown();
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

/* The code's redirect_given (0 or 1), or -1 when there is no such code. */
static int code_redirect_given(uint8_t tag)
{
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    uint8_t hh[TK_HASH_LEN];
    h(tag, hh);
    tk_code_rec c;
    int rc = tk_store_get_code(r, hh, &c);
    int given = rc == 0 ? c.redirect_given : -1;
    tk_store_txn_end(r);
    return given;
}

/* The code's used_at as the store reports it (-1: no such code); *id its id. */
static int64_t code_used_at_id(uint8_t tag, uint64_t *id)
{
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    uint8_t hh[TK_HASH_LEN];
    h(tag, hh);
    tk_code_rec c;
    int rc = tk_store_get_code(r, hh, &c);
    int64_t at = rc == 0 ? c.used_at : -1;
    if (id != NULL) {
        *id = rc == 0 ? c.id : 0;
    }
    tk_store_txn_end(r);
    return at;
}

static int64_t code_used_at(uint8_t tag)
{
    return code_used_at_id(tag, NULL);
}

/* RFC 6749 §4.1.3: whether the authorization request named redirect_uri
 * travels from the pending request to its code and stays on the used code
 * (the token endpoint requires redirect_uri when it is 1). */
static void test_redirect_given_travels(void)
{
    setup();
    put_request_given("tka_named", T0, 1);
    put_request("tka_implied", T0);
    sign_in("tka_named", 0xb1, T0 + 1);
    sign_in("tka_implied", 0xb2, T0 + 1);
    tk_op named = code_issue("tka_named", 0xb1, TK_DECIDE_APPROVE, 0xd1, T0 + 2);
    tk_op implied = code_issue("tka_implied", 0xb2, TK_DECIDE_APPROVE, 0xd2, T0 + 2);
    CHECK_EQ_INT(apply1(&named), TK_OUT_OK);
    CHECK_EQ_INT(apply1(&implied), TK_OUT_OK);
    CHECK_EQ_INT(code_redirect_given(0xd1), 1);
    CHECK_EQ_INT(code_redirect_given(0xd2), 0);
    tk_op r1 = redeem(0xd1, 0xa1, 0xf1, T0 + 10);
    CHECK_EQ_INT(apply1(&r1), TK_OUT_OK);
    CHECK_EQ_INT(code_redirect_given(0xd1), 1); /* the used code keeps it */
    /* Out of range values are refused by the codec. */
    tk_authreq_rec bad = {.client_id = TK_SLICE_LIT("tkc_agent"),
                          .redirect_uri = TK_SLICE_LIT("http://127.0.0.1:9/cb"),
                          .resource = TK_SLICE_LIT("https://mcp.test/mcp"),
                          .exp = T0 + 600,
                          .created = T0,
                          .redirect_given = 2};
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    CHECK(tk_record_encode_authreq(&bad, buf, sizeof buf, &len) != 0);
    teardown();
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
    CHECK_EQ_INT(code_used_at(0xd1), 0);
    tk_op r1 = redeem(0xd1, 0xa1, 0xf1, T0 + 10);
    CHECK_EQ_INT(apply1(&r1), TK_OUT_OK);
    CHECK_EQ_INT(code_used_at(0xd1), T0 + 10);
    tk_token_rec t;
    CHECK(token_exists(0xa1, &t) && t.kind == TK_TOKEN_ACCESS && t.exp == T0 + 310);
    CHECK(token_exists(0xf1, &t) && t.kind == TK_TOKEN_REFRESH);
    /* Unknown code. */
    tk_op unk = redeem(0xd9, 0xa9, 0xf9, T0 + 10);
    CHECK_EQ_INT(apply1(&unk), TK_OUT_INVALID);

    /* Refresh: rotate, then a reuse inside the window is a sibling. */
    tk_op f1 = refresh(0xf1, 0xa2, 0xf2, T0 + 20, UINT64_MAX);
    CHECK_EQ_INT(apply1(&f1), TK_OUT_OK);
    /* Rotated through the spent DBI (schema 3): the record is not rewritten,
     * so it names no successor; the getter reports the rotation's time. */
    CHECK(token_exists(0xf1, &t) && t.rotated_at == T0 + 20 && !t.has_successor && t.tid != 0);
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
    /* Applied again once the family is revoked and the subject token
     * too: each still answers as the first time and writes nothing. */
    tk_op rv = tk_op_make(TK_OP_REVOKE_TOKEN, T0 + 7);
    h(0xa2, rv.revoke_token.hash);
    CHECK_EQ_INT(apply1(&rv), TK_OUT_NONE);
    const tk_op *again[] = {&r1, &f, &ex};
    for (size_t i = 0; i < 3; i++) {
        ch = true;
        CHECK_EQ_INT(apply(again[i], &ch), TK_OUT_OK);
        CHECK(!ch);
    }
    teardown();
}

static void test_validate(void)
{
    tk_op op = tk_op_make(TK_OP_PUT_NEW, T0);
    CHECK(tk_op_validate(&op) != 0); /* no db, key or record */
    uint8_t rec[1] = {0x80};
    op.put_new.db = TK_OP_DB_AUTHREQ;
    op.put_new.rec = rec;
    op.put_new.len = 1;
    TK_ASSERT(tk_op_id_set(&op.put_new.key, TK_SLICE_LIT("tka_1")) == 0);
    CHECK(tk_op_validate(&op) == 0);
    op.put_new.metadata = true; /* only a client comes from a metadata document */
    CHECK(tk_op_validate(&op) != 0);
    op.put_new.db = TK_OP_DB_CLIENT;
    CHECK(tk_op_validate(&op) == 0);
    op = tk_op_make(TK_OP_REFRESH, T0);
    CHECK(tk_op_validate(&op) != 0); /* no expiry, empty mask */
    op = tk_op_make(TK_OP_SIGN_IN, T0);
    CHECK(tk_op_validate(&op) != 0);
    /* The IdP's auth_time, acr and amr: only with the IdP's issuer, acr one
     * token, amr single-space separated tokens, auth_time in range. */
    op = sign_in_op("tka_v", 0xb9, T0);
    CHECK(tk_op_validate(&op) == 0);
    op.sign_in.auth_time = T0 - 5;
    CHECK(tk_op_validate(&op) != 0); /* no idp_iss */
    TK_ASSERT(tk_op_iss_set(&op.sign_in.idp_iss, TK_SLICE_LIT("https://idp.example")) == 0);
    TK_ASSERT(tk_op_acr_set(&op.sign_in.acr, TK_SLICE_LIT("urn:okta:loa:2fa:any")) == 0);
    TK_ASSERT(tk_op_amr_set(&op.sign_in.amr, TK_SLICE_LIT("pwd mfa")) == 0);
    CHECK(tk_op_validate(&op) == 0);
    uint8_t buf[TK_OP_WIRE_MAX];
    size_t len;
    tk_op back;
    CHECK(tk_op_encode(&op, buf, sizeof buf, &len) == 0); /* the claims travel (keys 38..40) */
    CHECK(tk_op_decode(buf, len, &back) == 0);
    CHECK(memcmp(&back, &op, sizeof op) == 0);
    TK_ASSERT(tk_op_amr_set(&op.sign_in.amr, TK_SLICE_LIT("pwd  mfa")) == 0);
    CHECK(tk_op_validate(&op) != 0);
    TK_ASSERT(tk_op_amr_set(&op.sign_in.amr, TK_SLICE_LIT("pwd")) == 0);
    TK_ASSERT(tk_op_acr_set(&op.sign_in.acr, TK_SLICE_LIT("a b")) == 0);
    CHECK(tk_op_validate(&op) != 0);
    TK_ASSERT(tk_op_acr_set(&op.sign_in.acr, TK_SLICE_LIT("1")) == 0);
    op.sign_in.auth_time = -1;
    CHECK(tk_op_validate(&op) != 0);
    op.sign_in.auth_time = TK_TIME_MAX + 1;
    CHECK(tk_op_validate(&op) != 0);
    CHECK(tk_op_acr_set(&op.sign_in.acr, (tk_slice){"x", TK_ACR_MAX + 1}) == TK_E_INVALID);
    op = refresh(1, 2, 3, T0, UINT64_MAX);
    CHECK(tk_op_validate(&op) == 0);
    CHECK(tk_op_encode(&op, buf, sizeof buf, &len) == 0); /* every kind has a wire form */
    CHECK(tk_op_decode(buf, len, &back) == 0);
    CHECK(memcmp(&back, &op, sizeof op) == 0);
}

/* Copy code `from` (an unused one) to `to` written as a store of schema 2
 * wrote codes: no id, so its redemption is recorded in the record. */
static void put_code_without_id(uint8_t from, uint8_t to)
{
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    uint8_t hf[TK_HASH_LEN], ht[TK_HASH_LEN];
    h(from, hf);
    h(to, ht);
    tk_code_rec c;
    TK_ASSERT(tk_store_get_code(w, hf, &c) == 0 && c.id != 0 && c.used_at == 0);
    c.id = 0;
    TK_ASSERT(tk_store_put_code(w, ht, &c, 0) == 0); /* not TK_PUT_NEW: no id given */
    TK_ASSERT(tk_store_commit(w) == 0);
}

/* Copy refresh token `from` to `to` as a store of schema 2 left a token it
 * had rotated: rotated_at in the record itself. */
static void put_rotated_in_record(uint8_t from, uint8_t to, int64_t rotated_at)
{
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    uint8_t hf[TK_HASH_LEN], ht[TK_HASH_LEN];
    h(from, hf);
    h(to, ht);
    tk_token_rec t;
    TK_ASSERT(tk_store_get_token(w, hf, &t) == 0 && t.rotated_at == 0);
    t.tid = 0;
    t.rotated_at = rotated_at;
    t.has_successor = true;
    h(0x77, t.successor);
    TK_ASSERT(tk_store_put_token(w, ht, &t, TK_PUT_NEW) == 0);
    TK_ASSERT(tk_store_commit(w) == 0);
}

/* Schema 3 records a redemption and a rotation in the spent DBI; codes and
 * rotations an older store wrote keep theirs in the record, and mean the
 * same: an old unused code is redeemed once (the second time revokes the
 * grant), an old rotated refresh token gets a sibling pair inside the reuse
 * window and revokes the family after it. */
static void test_records_spent_before_ids(void)
{
    setup();
    put_request("tka_7", T0);
    sign_in("tka_7", 0xb1, T0);
    tk_op ci = code_issue("tka_7", 0xb1, TK_DECIDE_APPROVE, 0xd7, T0 + 1);
    CHECK_EQ_INT(apply1(&ci), TK_OUT_OK);
    uint64_t id = 0;
    CHECK_EQ_INT(code_used_at_id(0xd7, &id), 0);
    CHECK(id != 0);
    put_code_without_id(0xd7, 0xd8);
    CHECK_EQ_INT(code_used_at_id(0xd8, &id), 0);
    CHECK_EQ_INT(id, 0);

    /* The old code: redeemed the old way, once. */
    tk_op r1 = redeem(0xd8, 0xa1, 0xf1, T0 + 2);
    CHECK_EQ_INT(apply1(&r1), TK_OUT_OK);
    CHECK_EQ_INT(code_used_at_id(0xd8, &id), T0 + 2);
    CHECK_EQ_INT(id, 0);
    CHECK_EQ_INT(code_used_at(0xd7), 0); /* its copy with an id is untouched */

    /* An old rotated token (rotated at T0 + 3): a sibling inside the window. */
    put_rotated_in_record(0xf1, 0xf8, T0 + 3);
    tk_token_rec t;
    CHECK(token_exists(0xf8, &t) && t.rotated_at == T0 + 3 && t.has_successor);
    tk_op f1 = refresh(0xf8, 0xa2, 0xf2, T0 + 6, UINT64_MAX); /* window 5 */
    CHECK_EQ_INT(apply1(&f1), TK_OUT_OK);
    CHECK(token_exists(0xf2, NULL));
    CHECK(token_exists(0xf8, &t) && t.rotated_at == T0 + 3); /* the first rotation's time */
    /* The new token rotates through the spent DBI. */
    tk_op f2 = refresh(0xf2, 0xa3, 0xf3, T0 + 7, UINT64_MAX);
    CHECK_EQ_INT(apply1(&f2), TK_OUT_OK);
    CHECK(token_exists(0xf2, &t) && t.rotated_at == T0 + 7 && !t.has_successor);
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_ACTIVE);

    /* The old code again: a replay, the family goes. */
    tk_op r2 = redeem(0xd8, 0xa4, 0xf4, T0 + 8);
    CHECK_EQ_INT(apply1(&r2), TK_OUT_REPLAYED);
    CHECK(!token_exists(0xa4, NULL));
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_REVOKED);
    teardown();

    /* After the window, the old rotated token revokes its family. */
    setup();
    put_request("tka_8", T0);
    sign_in("tka_8", 0xb1, T0);
    tk_op c8 = code_issue("tka_8", 0xb1, TK_DECIDE_APPROVE, 0xd9, T0 + 1);
    CHECK_EQ_INT(apply1(&c8), TK_OUT_OK);
    tk_op r8 = redeem(0xd9, 0xa1, 0xf1, T0 + 2);
    CHECK_EQ_INT(apply1(&r8), TK_OUT_OK);
    put_rotated_in_record(0xf1, 0xf8, T0 + 3);
    tk_op late = refresh(0xf8, 0xa5, 0xf5, T0 + 8, UINT64_MAX); /* 5 s after: not < 5 */
    CHECK_EQ_INT(apply1(&late), TK_OUT_REPLAYED);
    CHECK(!token_exists(0xf5, NULL));
    CHECK_EQ_INT(grant_state("tkg_consent"), TK_GRANT_REVOKED);
    teardown();
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

/* A metadata-document client (put_new.metadata): new → put; re-fetched →
 * its metadata replaced, its standing kept (approval, disable generation,
 * creation, delegation, secret hash); a pending one may become approved,
 * a disabled one never; another URL under the same key → INVALID. */
static uint8_t put_metadata(const char *url, const char *redirect, uint8_t status, int64_t at)
{
    tk_client_rec c = {.role = TK_ROLE_AGENT,
                       .status = status,
                       .created = at,
                       .redirect_uris = cstr(redirect),
                       .auth_method = 1,
                       .grant_types = 1,
                       .flags = TK_CLIENT_F_PUBLIC | TK_CLIENT_F_DYNAMIC,
                       .metadata_url = cstr(url),
                       .metadata_until = at + 60};
    h((uint8_t)at, c.secret_hash);
    uint8_t *buf = malloc(TK_RECORD_MAX);
    size_t len;
    TK_ASSERT(tk_record_encode_client(&c, buf, TK_RECORD_MAX, &len) == 0);
    tk_op op = tk_op_make(TK_OP_PUT_NEW, at);
    op.put_new.db = TK_OP_DB_CLIENT;
    op.put_new.metadata = true;
    TK_ASSERT(tk_op_id_set(&op.put_new.key, TK_SLICE_LIT("tkm_x")) == 0);
    op.put_new.rec = buf;
    op.put_new.len = (uint16_t)len;
    uint8_t out = apply1(&op);
    free(buf);
    return out;
}

static tk_client_rec get_metadata(char *redirect, size_t cap)
{
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    tk_client_rec c;
    TK_ASSERT(tk_store_get_client(r, TK_SLICE_LIT("tkm_x"), &c) == 0);
    TK_ASSERT(c.redirect_uris.len < cap);
    memcpy(redirect, c.redirect_uris.p, c.redirect_uris.len);
    redirect[c.redirect_uris.len] = '\0';
    c.name = c.scope = c.resource = c.redirect_uris = c.software_id = TK_SLICE_NULL;
    c.delegate_to = c.tls_subject = c.metadata_url = TK_SLICE_NULL;
    tk_store_txn_end(r);
    return c;
}

static void test_metadata_client_put(void)
{
    setup();
    const char *url = "https://c.example/meta.json";
    char redirect[128];
    CHECK_EQ_INT(put_metadata(url, "https://c.example/cb1", TK_CLIENT_PENDING, T0), TK_OUT_OK);
    tk_client_rec c = get_metadata(redirect, sizeof redirect);
    CHECK_EQ_INT(c.status, TK_CLIENT_PENDING);
    CHECK_EQ_STR(redirect, "https://c.example/cb1");
    /* Re-fetched: new metadata, same standing (still pending). */
    CHECK_EQ_INT(put_metadata(url, "https://c.example/cb2", TK_CLIENT_PENDING, T0 + 10), TK_OUT_OK);
    c = get_metadata(redirect, sizeof redirect);
    CHECK_EQ_STR(redirect, "https://c.example/cb2");
    CHECK_EQ_INT(c.status, TK_CLIENT_PENDING);
    CHECK_EQ_INT(c.created, T0);
    CHECK_EQ_INT(c.metadata_until, T0 + 70);
    uint8_t first[TK_HASH_LEN];
    h((uint8_t)T0, first);
    CHECK(memcmp(c.secret_hash, first, TK_HASH_LEN) == 0);
    /* An allow-listed refetch may approve a pending client. */
    CHECK_EQ_INT(put_metadata(url, "https://c.example/cb2", TK_CLIENT_APPROVED, T0 + 20),
                 TK_OUT_OK);
    CHECK_EQ_INT(get_metadata(redirect, sizeof redirect).status, TK_CLIENT_APPROVED);
    /* Disabled stays disabled, at its generation, whatever a refetch says. */
    tk_op dis = tk_op_make(TK_OP_CLIENT_STATUS, T0 + 30);
    TK_ASSERT(tk_op_id_set(&dis.client_status.client, TK_SLICE_LIT("tkm_x")) == 0);
    dis.client_status.status = TK_CLIENT_DISABLED;
    apply1(&dis);
    CHECK_EQ_INT(put_metadata(url, "https://c.example/cb3", TK_CLIENT_APPROVED, T0 + 40),
                 TK_OUT_OK);
    c = get_metadata(redirect, sizeof redirect);
    CHECK_EQ_INT(c.status, TK_CLIENT_DISABLED);
    CHECK_EQ_INT(c.generation, 1);
    /* Another URL under the same key writes nothing. */
    CHECK_EQ_INT(
        put_metadata("https://other.example/m", "https://o/cb", TK_CLIENT_APPROVED, T0 + 50),
        TK_OUT_INVALID);
    CHECK_EQ_STR((get_metadata(redirect, sizeof redirect), redirect), "https://c.example/cb3");
    teardown();
}

/* A sign-in at an IdP: session sid for "alice" bound to issuer iss. */
static void sign_in_at(const char *request, uint8_t browser_tag, const char *sid, const char *iss,
                       int64_t at)
{
    tk_op op = sign_in_op(request, browser_tag, at);
    TK_ASSERT(tk_op_id_set(&op.sign_in.sid, cstr(sid)) == 0);
    TK_ASSERT(tk_op_iss_set(&op.sign_in.idp_iss, cstr(iss)) == 0);
    CHECK_EQ_INT(apply1(&op), TK_OUT_OK);
}

/* Consents are per IdP: each chooses its own subs, so the same sub at two
 * issuers is two users. The key of a session without an issuer is the one
 * consents always had (length-prefixed sub, client, resource after 'c');
 * with an issuer it differs per issuer. Applied: a consent given by
 * "alice" at one IdP never lets a GRANTED code through for "alice" at
 * another, and still does for the first. */
static void test_consent_key_per_issuer(void)
{
    static const uint8_t legacy[] = {'c', 0, 5, 'a', 'l', 'i', 'c', 'e', 0, 1, 'c', 0, 1, 'r'};
    uint8_t want[TK_HASH_LEN], k0[TK_HASH_LEN], ka[TK_HASH_LEN], kb[TK_HASH_LEN];
    tk_sha256(legacy, sizeof legacy, want);
    tk_store_consent_key(TK_SLICE_NULL, cstr("alice"), cstr("c"), cstr("r"), k0);
    CHECK(memcmp(k0, want, TK_HASH_LEN) == 0);
    tk_store_consent_key(cstr("https://a.example"), cstr("alice"), cstr("c"), cstr("r"), ka);
    tk_store_consent_key(cstr("https://b.example"), cstr("alice"), cstr("c"), cstr("r"), kb);
    CHECK(memcmp(ka, k0, TK_HASH_LEN) != 0 && memcmp(kb, k0, TK_HASH_LEN) != 0 &&
          memcmp(ka, kb, TK_HASH_LEN) != 0);
    /* No shifting of bytes between the issuer and the sub. */
    tk_store_consent_key(cstr("https://a.examplea"), cstr("lice"), cstr("c"), cstr("r"), kb);
    CHECK(memcmp(ka, kb, TK_HASH_LEN) != 0);

    setup();
    put_request("tka_p", T0);
    sign_in_at("tka_p", 0xb1, "tks_p", "https://partner.example", T0);
    tk_op approve = code_issue("tka_p", 0xb1, TK_DECIDE_APPROVE, 0xd1, T0 + 1);
    CHECK_EQ_INT(apply1(&approve), TK_OUT_OK);
    { /* the grant keeps whose sub it is (SSF names it so) */
        tk_txn *r;
        TK_ASSERT(tk_store_read_begin(st, &r) == 0);
        tk_grant_rec g;
        CHECK_EQ_INT(tk_store_get_grant(r, tk_op_id_get(&approve.code_issue.grant), &g), 0);
        CHECK(tk_slice_eq_str(g.iss, "https://partner.example") && tk_slice_eq_str(g.sub, "alice"));
        tk_store_txn_end(r);
    }
    put_request("tka_h", T0 + 2);
    sign_in_at("tka_h", 0xb2, "tks_h", "https://home.example", T0 + 2);
    tk_op granted = code_issue("tka_h", 0xb2, TK_DECIDE_GRANTED, 0xd2, T0 + 3);
    bool ch = true;
    CHECK_EQ_INT(apply(&granted, &ch), TK_OUT_INVALID);
    CHECK(!ch);
    put_request("tka_p2", T0 + 4);
    sign_in_at("tka_p2", 0xb3, "tks_p2", "https://partner.example", T0 + 4);
    tk_op again = code_issue("tka_p2", 0xb3, TK_DECIDE_GRANTED, 0xd3, T0 + 5);
    CHECK_EQ_INT(apply1(&again), TK_OUT_OK);
    teardown();
}

int main(void)
{
    RUN(test_race_through_committer);
    RUN(test_code_flow);
    RUN(test_code_replay_revokes);
    RUN(test_validate);
    RUN(test_reapplied_is_noop);
    RUN(test_sign_in_claims);
    RUN(test_metadata_client_put);
    RUN(test_redirect_given_travels);
    RUN(test_consent_key_per_issuer);
    RUN(test_records_spent_before_ids);
    return check_report();
}
