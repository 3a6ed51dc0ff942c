/*
 * The committer in cluster mode (committer.h, "Cluster mode") with a fake op
 * log: worker requests go to the forward hook and nothing is applied until
 * their entry comes back; entries apply in stream order with the sequence
 * stored in the same txn; an entry at or below the stored sequence is
 * skipped, so the one non-idempotent op (AGENT_ACCESS) counts once even
 * across a restart; only entries this node waits for (claim) complete, each
 * once; an undecodable entry is skipped and its sequence still counts. And
 * the entry format: round trip, every truncation, bad headers, trailing bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "store_fixture.h"

static tk_commit_req access_req(uint32_t allowed)
{
    tk_commit_req r;
    memset(&r, 0, sizeof(r));
    r.nops = 1;
    r.ops[0] = tk_op_make(TK_OP_AGENT_ACCESS, 2000);
    TK_ASSERT(tk_op_id_set(&r.ops[0].agent_access.client, TK_SLICE_LIT("tkc_agent")) == 0);
    TK_ASSERT(tk_op_resource_set(&r.ops[0].agent_access.resource,
                                 TK_SLICE_LIT("https://wiki.test/")) == 0);
    r.ops[0].agent_access.allowed = allowed;
    return r;
}

/* ---- The fake op log ------------------------------------------------------------ */

#define FAKE_MAX 16

typedef struct fake_log {
    int refuse; /* forward's answer when non-zero */
    unsigned forwarded;
    tk_commit_req fwd[FAKE_MAX];
    /* claim: tag -> (worker, cookie) while waiting */
    bool waiting[FAKE_MAX];
    unsigned worker[FAKE_MAX];
    uint64_t cookie[FAKE_MAX];
    unsigned claims_asked;
    uint64_t applied_seq;
    unsigned applied_calls;
} fake_log;

static int fake_forward(void *ctx, const tk_commit_req *req)
{
    fake_log *f = ctx;
    if (f->refuse != 0) {
        return f->refuse;
    }
    TK_ASSERT(f->forwarded < FAKE_MAX);
    unsigned tag = ++f->forwarded;
    f->fwd[tag - 1] = *req;
    f->waiting[tag] = true;
    f->worker[tag] = req->worker;
    f->cookie[tag] = req->cookie;
    return 0;
}

static bool fake_claim(void *ctx, uint64_t tag, unsigned *worker, uint64_t *cookie)
{
    fake_log *f = ctx;
    f->claims_asked++;
    if (tag >= FAKE_MAX || !f->waiting[tag]) {
        return false;
    }
    f->waiting[tag] = false;
    *worker = f->worker[tag];
    *cookie = f->cookie[tag];
    return true;
}

static void fake_applied(void *ctx, uint64_t seq, uint64_t ns)
{
    fake_log *f = ctx;
    (void)ns;
    __atomic_store_n(&f->applied_seq, seq, __ATOMIC_RELEASE);
    f->applied_calls++;
}

static int entry(tk_committer *c, uint64_t seq, uint64_t tag, const tk_commit_req *req)
{
    uint8_t buf[TK_COMMIT_WIRE_MAX];
    size_t len = 0;
    TK_ASSERT(tk_commit_req_encode(req, buf, sizeof buf, &len) == 0);
    uint8_t *p = malloc(len);
    TK_ASSERT(p != NULL);
    memcpy(p, buf, len);
    return tk_committer_submit_entry(c, seq, tag, p, len);
}

static void wait_applied(fake_log *f, uint64_t seq)
{
    for (int i = 0; i < 5000 && __atomic_load_n(&f->applied_seq, __ATOMIC_ACQUIRE) < seq; i++) {
        usleep(1000);
    }
    CHECK_EQ_INT(__atomic_load_n(&f->applied_seq, __ATOMIC_ACQUIRE), seq);
}

static uint64_t stored_seq(tk_store *st)
{
    tk_txn *r;
    uint64_t seq = 99;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    TK_ASSERT(tk_store_log_seq_get(r, &seq) == 0);
    tk_store_txn_end(r);
    return seq;
}

static bool revoked(tk_store *st, unsigned token)
{
    tk_txn *r;
    tk_token_rec t;
    uint8_t h[TK_HASH_LEN];
    hash_of(token, h);
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    TK_ASSERT(tk_store_get_token(r, h, &t) == 0);
    bool rv = t.revoked_at != 0;
    tk_store_txn_end(r);
    return rv;
}

static int64_t allowed_count(tk_store *st)
{
    tk_txn *r;
    tk_agent_access_rec a = {0};
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    int rc = tk_store_get_agent_access(r, TK_SLICE_LIT("tkc_agent"),
                                       TK_SLICE_LIT("https://wiki.test/"), &a);
    tk_store_txn_end(r);
    return rc == 0 ? a.allowed : -1;
}

/* ---- Tests -------------------------------------------------------------------------- */

static void test_forward_then_apply_in_order(void)
{
    make_dir("tk_clog_");
    tk_store *st = open_store(16 << 20);
    load_tokens(st, 8);
    CHECK_EQ_INT(stored_seq(st), 0);
    tk_committer *c;
    CHECK_EQ_INT(tk_committer_start(st, 2, 8, &c), 0);
    fake_log f = {0};
    tk_committer_log log = {&f, fake_forward, fake_claim, fake_applied, NULL};
    tk_committer_set_log(c, &log);

    /* Worker requests are forwarded, not applied. */
    tk_commit_req r1 = revoke_req(1, 1, 101), r2 = revoke_req(0, 3, 102);
    CHECK_EQ_INT(tk_committer_submit(c, &r1), 0);
    CHECK_EQ_INT(tk_committer_submit(c, &r2), 0);
    CHECK_EQ_INT(f.forwarded, 2);
    usleep(20000);
    CHECK(!revoked(st, 1));
    tk_commit_done d[4];
    CHECK_EQ_INT(tk_committer_drain(c, 1, d, 4), 0);

    /* The stream: ours (tag 1), another node's, garbage, a duplicate, and
     * ours (tag 2) after the wait ended elsewhere (a publish timeout). */
    f.waiting[2] = false;
    tk_commit_req other = revoke_req(0, 2, 0);
    CHECK_EQ_INT(entry(c, 1, 1, &f.fwd[0]), 0);
    CHECK_EQ_INT(entry(c, 2, 0, &other), 0);
    uint8_t *junk = malloc(3);
    memcpy(junk, "\x01\x01\xff", 3);
    CHECK_EQ_INT(tk_committer_submit_entry(c, 3, 0, junk, 3), 0);
    CHECK_EQ_INT(entry(c, 2, 1, &f.fwd[0]), 0); /* delivered again: skipped, no claim */
    CHECK_EQ_INT(entry(c, 4, 2, &f.fwd[1]), 0);
    wait_applied(&f, 4);
    CHECK_EQ_INT(stored_seq(st), 4);
    CHECK(revoked(st, 1) && revoked(st, 2) && revoked(st, 3));

    size_t n1 = tk_committer_drain(c, 1, d, 4), n0 = tk_committer_drain(c, 0, d + 1, 3);
    CHECK_EQ_INT(n1, 1); /* the entry we waited for, once */
    CHECK_EQ_INT(n0, 0); /* tag 2's wait had ended: nobody is told twice */
    CHECK_EQ_INT(d[0].cookie, 101);
    CHECK_EQ_INT(d[0].result, 0);
    CHECK_EQ_INT(d[0].changed, 1);
    CHECK_EQ_INT(f.claims_asked, 2); /* tags 1 and 2; never for another node's or a skip */

    /* A failed publish is answered by the log: tk_committer_post. */
    tk_commit_done fail = {.cookie = 103, .result = TK_E_UNAVAILABLE};
    tk_committer_post(c, 0, &fail);
    CHECK_EQ_INT(tk_committer_drain(c, 0, d, 4), 1);
    CHECK_EQ_INT(d[0].result, TK_E_UNAVAILABLE);

    /* A refusal goes back to the worker at once and leaks no queue slot. */
    f.refuse = TK_E_UNAVAILABLE;
    for (unsigned i = 0; i < 20; i++) {
        tk_commit_req r = revoke_req(0, 4, 200 + i);
        CHECK_EQ_INT(tk_committer_submit(c, &r), TK_E_UNAVAILABLE);
    }
    f.refuse = 0;
    tk_commit_req r3 = revoke_req(0, 4, 300);
    CHECK_EQ_INT(tk_committer_submit(c, &r3), 0);
    tk_committer_stop(c);
    tk_store_close(st);
    remove_dir();
}

static void test_exactly_once_across_restart(void)
{
    make_dir("tk_clog_");
    tk_store *st = open_store(16 << 20);
    fake_log f = {0};
    tk_committer_log log = {&f, fake_forward, fake_claim, fake_applied, NULL};
    tk_commit_req a1 = access_req(1), a5 = access_req(5), a7 = access_req(7);
    tk_committer *c;
    CHECK_EQ_INT(tk_committer_start(st, 1, 4, &c), 0);
    tk_committer_set_log(c, &log);
    CHECK_EQ_INT(entry(c, 1, 0, &a1), 0);
    CHECK_EQ_INT(entry(c, 2, 0, &a5), 0);
    CHECK_EQ_INT(entry(c, 1, 0, &a1), 0); /* again within one run */
    wait_applied(&f, 2);
    tk_committer_stop(c);
    CHECK_EQ_INT(allowed_count(st), 6);

    /* A restarted node's consumer starts a little early: 1 and 2 again. */
    tk_store_close(st);
    st = open_store(16 << 20);
    CHECK_EQ_INT(stored_seq(st), 2);
    f.applied_seq = 0;
    CHECK_EQ_INT(tk_committer_start(st, 1, 4, &c), 0);
    tk_committer_set_log(c, &log);
    for (uint64_t s = 1; s <= 2; s++) {
        CHECK_EQ_INT(entry(c, s, 0, s == 1 ? &a1 : &a5), 0);
    }
    CHECK_EQ_INT(entry(c, 3, 0, &a7), 0);
    wait_applied(&f, 3);
    tk_committer_stop(c);
    CHECK_EQ_INT(allowed_count(st), 13); /* 1 + 5 + 7: each entry once */
    CHECK_EQ_INT(stored_seq(st), 3);
    tk_store_close(st);
    remove_dir();
}

/* More entries than the queue holds: the producer waits, nothing is lost. */
static void test_backpressure(void)
{
    make_dir("tk_clog_");
    tk_store *st = open_store(16 << 20);
    fake_log f = {0};
    tk_committer_log log = {&f, fake_forward, fake_claim, fake_applied, NULL};
    tk_committer *c;
    CHECK_EQ_INT(tk_committer_start(st, 1, 2, &c), 0);
    tk_committer_set_log(c, &log);
    tk_commit_req a = access_req(1);
    for (uint64_t s = 1; s <= 200; s++) {
        CHECK_EQ_INT(entry(c, s, 0, &a), 0);
    }
    wait_applied(&f, 200);
    tk_committer_stop(c);
    CHECK_EQ_INT(allowed_count(st), 200);
    tk_store_close(st);
    remove_dir();
}

static void test_entry_format(void)
{
    tk_commit_req r = revoke_req(3, 7, 99);
    r.nops = 3;
    r.ops[1] = tk_op_make(TK_OP_SESSION_STATE, 50);
    TK_ASSERT(tk_op_id_set(&r.ops[1].session.sid, TK_SLICE_LIT("tks_x")) == 0);
    r.ops[1].session.state = TK_SESSION_TERMINATED;
    r.ops[2] = access_req(4).ops[0];
    uint8_t buf[TK_COMMIT_WIRE_MAX], again[TK_COMMIT_WIRE_MAX];
    size_t len = 0, len2 = 0;
    CHECK_EQ_INT(tk_commit_req_encode(&r, buf, sizeof buf, &len), 0);
    tk_commit_req out;
    CHECK_EQ_INT(tk_commit_req_decode(buf, len, &out), 0);
    CHECK_EQ_INT(out.nops, 3);
    CHECK_EQ_INT(out.worker, 0); /* who waits is never on the wire */
    CHECK_EQ_INT(out.cookie, 0);
    CHECK_EQ_INT(tk_commit_req_encode(&out, again, sizeof again, &len2), 0);
    CHECK_EQ_INT(len2, len);
    CHECK(memcmp(buf, again, len) == 0);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK_EQ_INT(tk_commit_req_decode(buf, cut, &out), TK_E_CORRUPT);
    }
    buf[len] = 0;
    CHECK_EQ_INT(tk_commit_req_decode(buf, len + 1, &out), TK_E_CORRUPT);
    static const uint8_t heads[][2] = {{0, 3}, {2, 3}, {1, 0}, {1, 2}, {1, 4}, {1, 5}};
    for (size_t i = 0; i < TK_ARRAY_LEN(heads); i++) {
        uint8_t b[TK_COMMIT_WIRE_MAX];
        memcpy(b, buf, len);
        b[0] = heads[i][0];
        b[1] = heads[i][1];
        CHECK_EQ_INT(tk_commit_req_decode(b, len, &out), TK_E_CORRUPT);
    }
    /* An op's length pointing past the end. */
    buf[2] = 0xff;
    buf[3] = 0xff;
    CHECK_EQ_INT(tk_commit_req_decode(buf, len, &out), TK_E_CORRUPT);

    tk_commit_req empty = {.nops = 0}, bad = revoke_req(0, 1, 0);
    bad.ops[0].type = TK_OP_TYPE_LAST + 1;
    CHECK_EQ_INT(tk_commit_req_encode(&empty, buf, sizeof buf, &len), TK_E_INVALID);
    CHECK_EQ_INT(tk_commit_req_encode(&bad, buf, sizeof buf, &len), TK_E_INVALID);
    CHECK_EQ_INT(tk_commit_req_encode(&r, buf, 10, &len), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_commit_req_encode(&r, buf, 1, &len), TK_E_TOOBIG);
}

/* Entries after a gap are never applied (they would skip the missing ones
 * for good); the log is told; once the missing entries come, all apply. */
static uint64_t gap_want, gap_got;
static void fake_gap(void *ctx, uint64_t want, uint64_t got)
{
    (void)ctx;
    gap_want = want;
    __atomic_store_n(&gap_got, got, __ATOMIC_RELEASE);
}

static void test_gap(void)
{
    make_dir("tk_clog_");
    tk_store *st = open_store(16 << 20);
    fake_log f = {0};
    tk_committer_log log = {&f, fake_forward, fake_claim, fake_applied, fake_gap};
    tk_committer *c;
    CHECK_EQ_INT(tk_committer_start(st, 1, 8, &c), 0);
    tk_committer_set_log(c, &log);
    tk_commit_req a = access_req(1);
    CHECK_EQ_INT(entry(c, 1, 0, &a), 0);
    CHECK_EQ_INT(entry(c, 3, 0, &a), 0); /* 2 is missing */
    CHECK_EQ_INT(entry(c, 4, 0, &a), 0);
    for (int i = 0; i < 5000 && __atomic_load_n(&gap_got, __ATOMIC_ACQUIRE) == 0; i++) {
        usleep(1000);
    }
    CHECK_EQ_INT(gap_want, 2);
    CHECK_EQ_INT(gap_got, 3);
    CHECK_EQ_INT(stored_seq(st), 1);
    CHECK_EQ_INT(allowed_count(st), 1);
    for (uint64_t s = 2; s <= 4; s++) { /* a new consumer from 2 */
        CHECK_EQ_INT(entry(c, s, 0, &a), 0);
    }
    wait_applied(&f, 4);
    tk_committer_stop(c);
    CHECK_EQ_INT(allowed_count(st), 4);
    tk_store_close(st);
    remove_dir();
}

int main(void)
{
    RUN(test_entry_format);
    RUN(test_forward_then_apply_in_order);
    RUN(test_exactly_once_across_restart);
    RUN(test_backpressure);
    RUN(test_gap);
    return check_report();
}
