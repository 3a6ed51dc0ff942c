/*
 * Store tests against a real LMDB environment in a fresh temporary folder:
 * every record kind, the indices, each op applied twice, the session state
 * machine, TK_PUT_NEW, a map that really fills up (MDB_MAP_FULL), read txn
 * renewal, schema checks, and reopening.
 */
#include <lmdb.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tokend/store.h"

/* The private layout, to put raw bytes the public API would not write. */
#include "../../src/store/store_int.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/tk_store_XXXXXX");
    TK_ASSERT(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static tk_store *open_store(uint64_t map_size)
{
    tk_store_opts o = {.dir = dir, .map_size = map_size};
    tk_store *st = NULL;
    int rc = tk_store_open(&o, &st);
    CHECK_EQ_INT(rc, 0);
    TK_ASSERT(rc == 0);
    return st;
}

static void hash_of(unsigned n, uint8_t h[TK_HASH_LEN])
{
    memset(h, 0, TK_HASH_LEN);
    for (int i = 0; i < 4; i++) {
        h[i] = (uint8_t)(n >> (24 - 8 * i)); /* ascending n → ascending keys */
    }
    h[31] = 0x5a;
}

static tk_token_rec token(const char *sid)
{
    tk_token_rec t = {
        .kind = TK_TOKEN_ACCESS,
        .client_id = TK_SLICE_LIT("tkc_agent"),
        .sub = TK_SLICE_LIT("alice"),
        .sid = tk_slice_from_str(sid),
        .grant_id = TK_SLICE_LIT("tkg_1"),
        .scope = TK_SLICE_LIT("read write"),
        .aud = TK_SLICE_LIT("https://api.example"),
        .iat = 1000,
        .exp = 5000,
    };
    return t;
}

/* An op of type with its id (grant, sid, client, event id) and its state
 * (session state or client status); session changes other than terminate
 * carry the admin hold. */
static tk_op op_of(uint8_t type, uint8_t state, const char *id, int64_t at)
{
    tk_op op = tk_op_make(type, at);
    tk_slice s = tk_slice_from_str(id ? id : "");
    uint8_t hold = state == TK_SESSION_TERMINATED ? 0 : TK_HOLD_ADMIN;
    switch (type) {
    case TK_OP_REVOKE_GRANT:
        TK_ASSERT(tk_op_id_set(&op.revoke_grant.grant, s) == 0);
        break;
    case TK_OP_SESSION_STATE:
        TK_ASSERT(tk_op_id_set(&op.session.sid, s) == 0);
        op.session.state = state;
        op.session.hold = hold;
        break;
    case TK_OP_CLIENT_STATUS:
        TK_ASSERT(tk_op_id_set(&op.client_status.client, s) == 0);
        op.client_status.status = state;
        break;
    case TK_OP_AGENT_ACCESS:
        TK_ASSERT(tk_op_id_set(&op.agent_access.client, s) == 0);
        break;
    case TK_OP_IDP_EVENT:
        TK_ASSERT(tk_op_id_set(&op.idp_event.event_id, s) == 0);
        op.idp_event.state = state;
        op.idp_event.hold = hold;
        break;
    default:
        break;
    }
    return op;
}

/* Apply one op in its own write txn; returns the changed flag. */
static bool apply1(tk_store *st, const tk_op *op)
{
    tk_txn *w;
    bool changed = true;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_apply(w, op, &changed), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    return changed;
}

/* ---- Records and indices --------------------------------------------------------- */

static int collect_hash(void *arg, const uint8_t hash[TK_HASH_LEN])
{
    unsigned *n = arg;
    CHECK_EQ_INT(hash[31], 0x5a);
    (*n)++;
    return 0;
}

static int count_session(void *arg, tk_slice sid, const tk_session_rec *rec)
{
    (void)rec;
    CHECK(sid.len > 0);
    (*(unsigned *)arg)++;
    return 0;
}

static int stop_client(void *arg, tk_slice id, const tk_client_rec *rec)
{
    (void)id;
    CHECK_EQ_INT(rec->role, TK_ROLE_AGENT);
    (*(unsigned *)arg)++;
    return 42;
}

static void put_fixtures(tk_store *st)
{
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    tk_session_rec s = {.sub = TK_SLICE_LIT("alice"),
                        .issuer = TK_SLICE_LIT("https://idp"),
                        .state = TK_SESSION_ACTIVE,
                        .created = 100,
                        .expires = 9000};
    CHECK_EQ_INT(tk_store_put_session(w, TK_SLICE_LIT("tks_1"), &s, TK_PUT_NEW), 0);
    CHECK_EQ_INT(tk_store_put_session(w, TK_SLICE_LIT("tks_2"), &s, TK_PUT_NEW), 0);
    tk_grant_rec g = {.client_id = TK_SLICE_LIT("tkc_agent"),
                      .sub = TK_SLICE_LIT("alice"),
                      .sid = TK_SLICE_LIT("tks_1"),
                      .scope = TK_SLICE_LIT("read"),
                      .state = TK_GRANT_ACTIVE,
                      .created = 100};
    CHECK_EQ_INT(tk_store_put_grant(w, TK_SLICE_LIT("tkg_1"), &g, TK_PUT_NEW), 0);
    tk_client_rec c = {.name = TK_SLICE_LIT("agent"),
                       .role = TK_ROLE_AGENT,
                       .status = TK_CLIENT_APPROVED,
                       .created = 100};
    memset(c.secret_hash, 7, TK_HASH_LEN);
    CHECK_EQ_INT(tk_store_put_client(w, TK_SLICE_LIT("tkc_agent"), &c, TK_PUT_NEW), 0);
    uint8_t h[TK_HASH_LEN];
    for (unsigned i = 0; i < 10; i++) { /* 10 tokens in tks_1, 3 in tks_2 */
        tk_token_rec t = token(i < 7 ? "tks_1" : "tks_2");
        hash_of(i, h);
        if (i >= 4 && i < 7) { /* tokens 4..6 are children of token 0 */
            t.has_parent = true;
            hash_of(0, t.parent);
        }
        CHECK_EQ_INT(tk_store_put_token(w, h, &t, TK_PUT_NEW), 0);
    }
    for (unsigned i = 10; i < 13; i++) {
        hash_of(i, h);
        tk_token_rec t = token("tks_2");
        CHECK_EQ_INT(tk_store_put_token(w, h, &t, TK_PUT_NEW), 0);
    }
    CHECK_EQ_INT(tk_store_commit(w), 0);
}

static void test_records_and_indices(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    put_fixtures(st);
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    uint8_t h[TK_HASH_LEN];
    hash_of(5, h);
    tk_token_rec t;
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    CHECK_SLICE(t.sid, "tks_1");
    CHECK_SLICE(t.aud, "https://api.example");
    CHECK(t.has_parent && t.parent[3] == 0);
    CHECK_EQ_INT(t.exp, 5000);
    hash_of(99, h);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), TK_E_NOTFOUND);
    tk_session_rec s;
    CHECK_EQ_INT(tk_store_get_session(r, TK_SLICE_LIT("tks_1"), &s), 0);
    CHECK_SLICE(s.issuer, "https://idp");
    CHECK_EQ_INT(s.state, TK_SESSION_ACTIVE);
    CHECK_EQ_INT(tk_store_get_session(r, TK_SLICE_LIT("tks_9"), &s), TK_E_NOTFOUND);
    CHECK_EQ_INT(tk_store_get_session(r, TK_SLICE_NULL, &s), TK_E_NOTFOUND);
    tk_grant_rec g;
    CHECK_EQ_INT(tk_store_get_grant(r, TK_SLICE_LIT("tkg_1"), &g), 0);
    CHECK_SLICE(g.scope, "read");
    tk_client_rec c;
    CHECK_EQ_INT(tk_store_get_client(r, TK_SLICE_LIT("tkc_agent"), &c), 0);
    CHECK_SLICE(c.name, "agent");
    CHECK_EQ_INT(c.secret_hash[31], 7);

    uint64_t count = 99;
    CHECK_EQ_INT(tk_store_session_token_count(r, TK_SLICE_LIT("tks_1"), &count), 0);
    CHECK_EQ_INT(count, 7);
    CHECK_EQ_INT(tk_store_session_token_count(r, TK_SLICE_LIT("tks_2"), &count), 0);
    CHECK_EQ_INT(count, 6);
    CHECK_EQ_INT(tk_store_session_token_count(r, TK_SLICE_LIT("tks_none"), &count), 0);
    CHECK_EQ_INT(count, 0);
    CHECK_EQ_INT(tk_store_session_token_count(r, TK_SLICE_NULL, &count), 0);
    CHECK_EQ_INT(count, 0);
    unsigned n = 0;
    hash_of(0, h);
    CHECK_EQ_INT(tk_store_each_child(r, h, collect_hash, &n), 0);
    CHECK_EQ_INT(n, 3);
    n = 0;
    hash_of(1, h);
    CHECK_EQ_INT(tk_store_each_child(r, h, collect_hash, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(tk_store_each_session(r, count_session, &n), 0);
    CHECK_EQ_INT(n, 2);
    n = 0;
    CHECK_EQ_INT(tk_store_each_client(r, stop_client, &n), 42);
    CHECK_EQ_INT(n, 1);

    tk_store_stats stats;
    CHECK_EQ_INT(tk_store_stats_get(r, &stats), 0);
    CHECK_EQ_INT(stats.tokens, 13);
    CHECK_EQ_INT(stats.sessions, 2);
    CHECK_EQ_INT(stats.grants, 1);
    CHECK_EQ_INT(stats.clients, 1);
    CHECK_EQ_INT(stats.session_tokens, 13);
    CHECK_EQ_INT(stats.token_children, 3);
    CHECK_EQ_INT(stats.map_size, 1 << 20);
    CHECK(stats.map_used > 0 && stats.map_used < stats.map_size);
    CHECK_EQ_INT(stats.readers_max, TK_MAX_READERS);
    CHECK(stats.readers_used >= 1);
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

static void test_put_flags(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    put_fixtures(st);
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    uint8_t h[TK_HASH_LEN];
    hash_of(3, h);
    tk_token_rec t = token("tks_1");
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, TK_PUT_NEW), TK_E_EXISTS);
    tk_session_rec s = {.sub = TK_SLICE_LIT("x"), .state = TK_SESSION_ACTIVE};
    CHECK_EQ_INT(tk_store_put_session(w, TK_SLICE_LIT("tks_1"), &s, TK_PUT_NEW), TK_E_EXISTS);
    /* Overwrite without TK_PUT_NEW works; the txn is still usable after EXISTS. */
    t.scope = TK_SLICE_LIT("other");
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, 0), 0);
    /* Append: keys above the last one go in, a lower one is refused. */
    hash_of(100, h);
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, TK_PUT_APPEND | TK_PUT_NO_INDEX), 0);
    hash_of(50, h);
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, TK_PUT_APPEND | TK_PUT_NO_INDEX), TK_E_INVALID);
    /* Sorted index load for a new session: ids in integer order (256
     * after 255: not byte-wise order). */
    for (uint64_t id = 254; id < 259; id++) {
        CHECK_EQ_INT(tk_store_index_session_token(w, TK_SLICE_LIT("tks_bulk"), id, TK_PUT_APPEND),
                     0);
    }
    CHECK_EQ_INT(tk_store_index_session_token(w, TK_SLICE_LIT("tks_bulk"), 255, TK_PUT_APPEND),
                 TK_E_INVALID);
    CHECK_EQ_INT(tk_store_index_session_token(w, TK_SLICE_LIT("tks_bulk"), 0, 0), TK_E_INVALID);
    /* Invalid records and ids never reach LMDB. */
    t.kind = 7;
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, 0), TK_E_INVALID);
    CHECK_EQ_INT(tk_store_put_session(w, TK_SLICE_NULL, &s, 0), TK_E_INVALID);
    CHECK_EQ_INT(tk_store_index_session_token(w, TK_SLICE_NULL, 7, 0), TK_E_INVALID);
    CHECK_EQ_INT(tk_store_commit(w), 0);

    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    hash_of(3, h);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    CHECK_SLICE(t.scope, "other");
    uint64_t n = 0;
    CHECK_EQ_INT(tk_store_session_token_count(r, TK_SLICE_LIT("tks_bulk"), &n), 0);
    CHECK_EQ_INT(n, 5);
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

/* ---- Ops ----------------------------------------------------------------------------- */

static void test_apply_ops(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    put_fixtures(st);
    tk_op op = op_of(TK_OP_REVOKE_TOKEN, 0, NULL, 2000);
    hash_of(2, op.revoke_token.hash);
    CHECK(apply1(st, &op));
    op.at = 3000;
    CHECK(!apply1(st, &op)); /* already revoked: revoked_at stays 2000 */
    hash_of(77, op.revoke_token.hash);
    CHECK(!apply1(st, &op)); /* unknown token: no-op */

    tk_op g = op_of(TK_OP_REVOKE_GRANT, 0, "tkg_1", 2100);
    CHECK(apply1(st, &g));
    CHECK(!apply1(st, &g));
    tk_op g2 = op_of(TK_OP_REVOKE_GRANT, 0, "tkg_missing", 2100);
    CHECK(!apply1(st, &g2));

    tk_op c = op_of(TK_OP_CLIENT_STATUS, TK_CLIENT_DISABLED, "tkc_agent", 2200);
    CHECK(apply1(st, &c));
    CHECK(!apply1(st, &c));
    c.client_status.status = TK_CLIENT_APPROVED;
    CHECK(apply1(st, &c)); /* disabled → approved */
    CHECK(!apply1(st, &c));

    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    tk_token_rec t;
    hash_of(2, op.revoke_token.hash);
    CHECK_EQ_INT(tk_store_get_token(r, op.revoke_token.hash, &t), 0);
    CHECK_EQ_INT(t.revoked_at, TK_REVOKED_UNTIMED); /* revoked in the bitmap */
    CHECK(t.tid != 0);
    int64_t at = 0;
    CHECK_EQ_INT(tk_store_token_revoked_at(r, op.revoke_token.hash, &at), 0);
    CHECK_EQ_INT(at, 2000);
    CHECK_SLICE(t.scope, "read write"); /* the rest of the record is intact */
    tk_grant_rec gr;
    CHECK_EQ_INT(tk_store_get_grant(r, TK_SLICE_LIT("tkg_1"), &gr), 0);
    CHECK_EQ_INT(gr.state, TK_GRANT_REVOKED);
    CHECK_EQ_INT(gr.revoked_at, 2100);
    tk_client_rec cl;
    CHECK_EQ_INT(tk_store_get_client(r, TK_SLICE_LIT("tkc_agent"), &cl), 0);
    CHECK_EQ_INT(cl.status, TK_CLIENT_APPROVED);
    CHECK_EQ_INT(cl.generation, 1); /* one move to disabled, one bump */
    tk_store_txn_end(r);

    /* Invalid ops are refused before touching anything. */
    tk_txn *w;
    bool changed = true;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    tk_op bad = op_of(TK_OP_SESSION_STATE, 9, "tks_1", 1);
    CHECK_EQ_INT(tk_store_apply(w, &bad, &changed), TK_E_INVALID);
    CHECK(!changed);
    tk_store_txn_end(w);
    tk_store_close(st);
    remove_dir();
}

static uint8_t session_state(tk_store *st, const char *sid, tk_session_rec *s, tk_txn **r)
{
    CHECK_EQ_INT(tk_store_read_begin(st, r), 0);
    CHECK_EQ_INT(tk_store_get_session(*r, tk_slice_from_str(sid), s), 0);
    return s->state;
}

static void test_session_machine(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    put_fixtures(st);
    tk_session_rec s;
    tk_txn *r;
    tk_op resume = op_of(TK_OP_SESSION_STATE, TK_SESSION_ACTIVE, "tks_1", 300);
    tk_op suspend = op_of(TK_OP_SESSION_STATE, TK_SESSION_SUSPENDED, "tks_1", 310);
    tk_op term = op_of(TK_OP_SESSION_STATE, TK_SESSION_TERMINATED, "tks_1", 320);
    TK_ASSERT(tk_op_reason_set(&suspend.session.reason, TK_SLICE_LIT("device")) == 0);
    TK_ASSERT(tk_op_reason_set(&term.session.reason, TK_SLICE_LIT("logout")) == 0);

    CHECK(!apply1(st, &resume)); /* active: nothing to resume */
    CHECK(apply1(st, &suspend));
    CHECK(!apply1(st, &suspend));
    CHECK_EQ_INT(session_state(st, "tks_1", &s, &r), TK_SESSION_SUSPENDED);
    CHECK_SLICE(s.reason, "device");
    CHECK_EQ_INT(s.ended_at, 310);
    tk_store_txn_end(r);
    CHECK(apply1(st, &resume));
    CHECK(!apply1(st, &resume));
    CHECK_EQ_INT(session_state(st, "tks_1", &s, &r), TK_SESSION_ACTIVE);
    CHECK_EQ_INT(s.ended_at, 0);
    CHECK_EQ_INT(s.reason.len, 0);
    tk_store_txn_end(r);
    CHECK(apply1(st, &suspend));
    CHECK(apply1(st, &term)); /* suspended → terminated */
    CHECK(!apply1(st, &term));
    CHECK(!apply1(st, &resume)); /* terminated is final */
    CHECK(!apply1(st, &suspend));
    CHECK_EQ_INT(session_state(st, "tks_1", &s, &r), TK_SESSION_TERMINATED);
    CHECK_SLICE(s.reason, "logout");
    CHECK_EQ_INT(s.ended_at, 320);
    CHECK_SLICE(s.issuer, "https://idp");
    CHECK_EQ_INT(s.expires, 9000);
    tk_store_txn_end(r);

    TK_ASSERT(tk_op_id_set(&term.session.sid, TK_SLICE_LIT("tks_2")) ==
              0); /* active → terminated */
    CHECK(apply1(st, &term));
    tk_op missing = op_of(TK_OP_SESSION_STATE, TK_SESSION_TERMINATED, "tks_404", 1);
    CHECK(!apply1(st, &missing));
    tk_store_close(st);
    remove_dir();
}

/* ---- Transactions ---------------------------------------------------------------------- */

/* Prefaulting maps the used part of the data file; a stop request before it
 * starts populates nothing; the data reads the same afterwards. */
static void test_prefault(void)
{
    make_dir();
    tk_store *st = open_store(64 << 20);
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    uint8_t h[TK_HASH_LEN];
    for (unsigned i = 0; i < 2000; i++) {
        tk_token_rec t = token("tks_1");
        hash_of(i, h);
        CHECK_EQ_INT(tk_store_put_token(w, h, &t, 0), 0);
    }
    CHECK_EQ_INT(tk_store_commit(w), 0);
    uint64_t bytes = 0;
    CHECK_EQ_INT(tk_store_prefault(st, NULL, &bytes), 0);
    CHECK(bytes >= 2000 * 100); /* at least the records themselves */
    int stop = 1;
    bytes = 12345;
    CHECK_EQ_INT(tk_store_prefault(st, &stop, &bytes), 0);
    CHECK_EQ_INT(bytes, 0);
    tk_txn *r;
    tk_token_rec got;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    hash_of(1999, h);
    CHECK_EQ_INT(tk_store_get_token(r, h, &got), 0);
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

static void test_renew_visibility(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    tk_txn *r, *w;
    uint8_t h[TK_HASH_LEN];
    tk_token_rec t = token("tks_1");
    hash_of(1, h);
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), TK_E_NOTFOUND);
    tk_store_read_reset(r);
    CHECK_EQ_INT(tk_store_read_renew(r), 0);

    t = token("tks_1");
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, 0), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    /* Committed after the last renew: not visible yet (snapshot). */
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), TK_E_NOTFOUND);
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);

    /* And once more: a revocation after this renew shows after the next. */
    tk_op op = op_of(TK_OP_REVOKE_TOKEN, 0, NULL, 4242);
    memcpy(op.revoke_token.hash, h, TK_HASH_LEN);
    CHECK(apply1(st, &op));
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    CHECK_EQ_INT(t.revoked_at, 0);
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    CHECK(t.revoked_at != 0);
    int64_t at = 0;
    CHECK_EQ_INT(tk_store_token_revoked_at(r, h, &at), 0);
    CHECK_EQ_INT(at, 4242);

    /* A write txn that is ended without commit leaves nothing behind. */
    hash_of(2, h);
    t = token("tks_1");
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, 0), 0);
    tk_store_txn_end(w);
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), TK_E_NOTFOUND);
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

/* ---- Map full, reopening, schema ---------------------------------------------------------- */

static void test_map_full(void)
{
    make_dir();
    tk_store *st = open_store(64 * 1024);
    tk_token_rec full = token("tks_full");
    unsigned stored = 0, i = 0;
    int rc = 0;
    uint8_t h[TK_HASH_LEN];
    /* Batches of 8 tokens until the map refuses; bounded well above 64 KiB. */
    for (unsigned batch = 0; batch < 1000 && rc == 0; batch++) {
        tk_txn *w;
        CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
        for (unsigned k = 0; k < 8 && rc == 0; k++, i++) {
            hash_of(i * 7919u, h);
            rc = tk_store_put_token(w, h, &full, 0);
        }
        if (rc != 0) {
            CHECK_EQ_INT(tk_store_commit(w), rc); /* the failure sticks to the txn */
            break;
        }
        rc = tk_store_commit(w);
        if (rc == 0) {
            stored = i;
        }
    }
    CHECK_EQ_INT(rc, TK_E_FULL);
    printf("64 KiB map full after %u tokens\n", stored);
    CHECK(stored > 8);

    /* Reads still work on everything committed. */
    tk_txn *r;
    tk_token_rec t;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    for (unsigned j = 0; j < stored; j++) {
        hash_of(j * 7919u, h);
        CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    }
    tk_store_txn_end(r);
    /* An aborted txn after a failure is fine too. */
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    for (unsigned k = 0; k < 64 && rc == TK_E_FULL; k++) {
        hash_of(900000 + k, h);
        rc = tk_store_put_token(w, h, &full, 0);
    }
    tk_store_txn_end(w);
    tk_store_close(st);

    /* Reopen with a bigger map: old data there, new writes go in. */
    st = open_store(4 << 20);
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    for (unsigned k = 0; k < 64; k++) {
        hash_of(900000 + k, h);
        CHECK_EQ_INT(tk_store_put_token(w, h, &full, 0), 0);
    }
    CHECK_EQ_INT(tk_store_commit(w), 0);
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    tk_store_stats stats;
    CHECK_EQ_INT(tk_store_stats_get(r, &stats), 0);
    CHECK_EQ_INT(stats.tokens, stored + 64);
    CHECK_EQ_INT(stats.map_size, 4 << 20);
    for (unsigned j = 0; j < stored; j++) {
        hash_of(j * 7919u, h);
        CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    }
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

static void test_reopen_read_only(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    put_fixtures(st);
    tk_store_close(st);
    tk_store_opts o = {.dir = dir, .read_only = true};
    CHECK_EQ_INT(tk_store_open(&o, &st), 0);
    tk_txn *r, *w;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    tk_session_rec s;
    CHECK_EQ_INT(tk_store_get_session(r, TK_SLICE_LIT("tks_2"), &s), 0);
    tk_store_txn_end(r);
    CHECK(tk_store_write_begin(st, &w) != 0);
    tk_store_close(st);

    /* An unknown schema version is refused. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_set_maxdbs(env, 16), 0);
    CHECK_EQ_INT(mdb_env_open(env, dir, 0, 0600), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint8_t four[4] = {4, 0, 0, 0};
    MDB_val k = {6, "schema"}, v = {4, four};
    CHECK_EQ_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ_INT(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    o.read_only = false;
    st = NULL;
    CHECK_EQ_INT(tk_store_open(&o, &st), TK_E_CORRUPT);
    CHECK(st == NULL);
    remove_dir();

    /* A read-only open of a folder that does not exist fails cleanly. */
    o.dir = "/tmp/tk_store_does_not_exist/x";
    o.read_only = true;
    CHECK(tk_store_open(&o, &st) < 0);
    o.map_size = TK_MAP_SIZE_MAX + 1;
    CHECK(tk_store_open(&o, &st) < 0);
}

/* ---- Agent access audit ---------------------------------------------------------------- */

static tk_op access_op(const char *client, const char *res, uint32_t allowed, uint32_t denied,
                       int64_t at)
{
    tk_op op = op_of(TK_OP_AGENT_ACCESS, 0, client, at);
    TK_ASSERT(tk_op_resource_set(&op.agent_access.resource, tk_slice_from_str(res)) == 0);
    op.agent_access.allowed = allowed;
    op.agent_access.denied = denied;
    return op;
}

typedef struct access_seen {
    unsigned n;
    tk_agent_access_rec last;
    char client[TK_ID_MAX + 1], res[TK_REASON_MAX + 1];
} access_seen;

static int collect_access(void *arg, tk_slice client, tk_slice res, const tk_agent_access_rec *rec)
{
    access_seen *a = arg;
    a->n++;
    a->last = *rec;
    snprintf(a->client, sizeof a->client, "%.*s", (int)client.len, client.p);
    snprintf(a->res, sizeof a->res, "%.*s", (int)res.len, res.p);
    return 0;
}

static void test_agent_access(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    tk_op a = access_op("tkc_a", "https://wiki.test/", 3, 1, 2000);
    CHECK(apply1(st, &a));
    a = access_op("tkc_a", "https://wiki.test/", 2, 0, 1990); /* older: last_seen stays */
    CHECK(apply1(st, &a));
    tk_op b = access_op("tkc_ab", "https://x.test/", 0, 5, 2100); /* key "ab"+"https" ≠ "a"+"b…" */
    CHECK(apply1(st, &b));
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    tk_agent_access_rec rec;
    CHECK_EQ_INT(tk_store_get_agent_access(r, TK_SLICE_LIT("tkc_a"),
                                           TK_SLICE_LIT("https://wiki.test/"), &rec),
                 0);
    CHECK_EQ_INT(rec.allowed, 5);
    CHECK_EQ_INT(rec.denied, 1);
    CHECK_EQ_INT(rec.first_seen, 1990);
    CHECK_EQ_INT(rec.last_seen, 2000);
    CHECK_EQ_INT(
        tk_store_get_agent_access(r, TK_SLICE_LIT("tkc_a"), TK_SLICE_LIT("https://x.test/"), &rec),
        TK_E_NOTFOUND);
    access_seen seen = {0};
    CHECK_EQ_INT(tk_store_each_agent_access(r, collect_access, &seen), 0);
    CHECK_EQ_INT(seen.n, 2);
    CHECK_EQ_STR(seen.client, "tkc_ab");
    CHECK_EQ_STR(seen.res, "https://x.test/");
    CHECK_EQ_INT(seen.last.denied, 5);
    tk_store_txn_end(r);

    /* Counts saturate instead of wrapping. */
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    tk_agent_access_rec big = {
        .allowed = INT64_MAX - 1, .denied = 0, .first_seen = 1, .last_seen = 1};
    CHECK_EQ_INT(tk_store_put_agent_access(w, TK_SLICE_LIT("tkc_a"), TK_SLICE_LIT("r"), &big), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    a = access_op("tkc_a", "r", 10, 0, 5);
    CHECK(apply1(st, &a));
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tk_store_get_agent_access(r, TK_SLICE_LIT("tkc_a"), TK_SLICE_LIT("r"), &rec), 0);
    CHECK(rec.allowed == INT64_MAX);
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

/* A store written before agent_access existed opens read-only (tokenctl while
 * an older tokend runs) and shows the DBI as empty. */
static void test_agent_access_old_store(void)
{
    make_dir();
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    static const struct {
        const char *name;
        unsigned flags;
    } old_dbis[] = {
        {"tokens", 0},
        {"sessions", 0},
        {"grants", 0},
        {"clients", 0},
        {"session_tokens", MDB_DUPSORT | MDB_DUPFIXED},
        {"token_children", MDB_DUPSORT | MDB_DUPFIXED},
        {"client_grants", MDB_DUPSORT},
        {"meta", 0},
    };
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_set_maxdbs(env, 16), 0);
    CHECK_EQ_INT(mdb_env_open(env, dir, 0, 0600), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
    for (size_t i = 0; i < TK_ARRAY_LEN(old_dbis); i++) {
        CHECK_EQ_INT(mdb_dbi_open(txn, old_dbis[i].name, MDB_CREATE | old_dbis[i].flags, &dbi), 0);
    }
    uint8_t one[4] = {1, 0, 0, 0};
    MDB_val k = {6, "schema"}, v = {4, one};
    CHECK_EQ_INT(mdb_put(txn, dbi, &k, &v, 0), 0); /* dbi is meta, the last one */
    CHECK_EQ_INT(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    tk_store_opts o = {.dir = dir, .read_only = true};
    tk_store *st = NULL;
    CHECK_EQ_INT(tk_store_open(&o, &st), 0);
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    access_seen seen = {0};
    CHECK_EQ_INT(tk_store_each_agent_access(r, collect_access, &seen), 0);
    CHECK_EQ_INT(seen.n, 0);
    tk_agent_access_rec rec;
    CHECK_EQ_INT(tk_store_get_agent_access(r, TK_SLICE_LIT("a"), TK_SLICE_LIT("b"), &rec),
                 TK_E_NOTFOUND);
    uint64_t count = 9; /* no session_ids yet: none there */
    CHECK_EQ_INT(tk_store_session_token_count(r, TK_SLICE_LIT("tks_1"), &count), 0);
    CHECK_EQ_INT(count, 0);
    tk_store_stats stats;
    CHECK_EQ_INT(tk_store_stats_get(r, &stats), 0);
    CHECK_EQ_INT(stats.session_tokens, 0);
    tk_store_txn_end(r);
    tk_store_close(st);
    /* A writable open creates it. */
    st = open_store(1 << 20);
    tk_store_close(st);
    remove_dir();
}

/* ---- IdP events ------------------------------------------------------------------ */

static int count_id(void *arg, tk_slice id)
{
    CHECK(id.len > 0);
    (*(unsigned *)arg)++;
    return 0;
}

static unsigned idp_count(tk_store *st, uint8_t kind, const char *iss, const char *v)
{
    uint8_t key[TK_HASH_LEN];
    tk_store_idp_key(kind, tk_slice_from_str(iss), tk_slice_from_str(v), key);
    tk_txn *r;
    unsigned n = 0;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tk_store_each_idp_session(r, key, count_id, &n), 0);
    tk_store_txn_end(r);
    return n;
}

static tk_op idp_op(uint8_t kind, const char *iss, const char *v, const char *jti, uint8_t state,
                    int64_t at)
{
    tk_op op = op_of(TK_OP_IDP_EVENT, state, jti, at);
    tk_op_idp_event *e = &op.idp_event;
    tk_store_idp_key(kind, tk_slice_from_str(iss), tk_slice_from_str(v), e->match);
    e->source = TK_SOURCE_BACKCHANNEL;
    e->until = at + 100;
    TK_ASSERT(tk_op_iss_set(&e->iss, tk_slice_from_str(iss)) == 0);
    TK_ASSERT(tk_op_reason_set(&e->reason, TK_SLICE_LIT("logout")) == 0);
    return op;
}

static int collect_audit(void *arg, const tk_audit_rec *a)
{
    tk_audit_rec *last = arg;
    *last = *a; /* slices die with the txn: the test reads counts only */
    last->issuer = last->event_id = last->reason = last->sids = TK_SLICE_NULL;
    return 0;
}

static void put_idp_session(tk_store *st, const char *sid, const char *iss, const char *sub,
                            const char *idp_sid)
{
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    tk_session_rec s = {.sub = tk_slice_from_str(sub),
                        .issuer = tk_slice_from_str(iss),
                        .idp_sid = idp_sid ? tk_slice_from_str(idp_sid) : TK_SLICE_NULL,
                        .state = TK_SESSION_ACTIVE,
                        .created = 100};
    CHECK_EQ_INT(tk_store_put_session(w, tk_slice_from_str(sid), &s, TK_PUT_NEW), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
}

static void test_idp_events(void)
{
    make_dir();
    tk_store *st = open_store(0);
    const char *iss = "https://idp.example", *other = "https://other.example";
    put_idp_session(st, "tks_a", iss, "alice", "idp-sid-1");
    put_idp_session(st, "tks_b", iss, "alice", "idp-sid-2");
    put_idp_session(st, "tks_c", iss, "bob", "idp-sid-1"); /* same IdP sid, other user */
    put_idp_session(st, "tks_d", other, "alice", NULL);
    CHECK_EQ_INT(idp_count(st, TK_IDP_KEY_SUB, iss, "alice"), 2);
    CHECK_EQ_INT(idp_count(st, TK_IDP_KEY_SID, iss, "idp-sid-1"), 2);
    CHECK_EQ_INT(idp_count(st, TK_IDP_KEY_SUB, other, "alice"), 1);
    CHECK_EQ_INT(idp_count(st, TK_IDP_KEY_SID, other, "idp-sid-1"), 0);

    /* An IdP sid without an issuer cannot be indexed: refused. */
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    tk_session_rec bad = {.sub = TK_SLICE_LIT("x"),
                          .idp_sid = TK_SLICE_LIT("s"),
                          .state = TK_SESSION_ACTIVE,
                          .created = 1};
    CHECK_EQ_INT(tk_store_put_session(w, TK_SLICE_LIT("tks_x"), &bad, 0), TK_E_INVALID);
    tk_store_txn_end(w);

    /* sid idp-sid-1 filtered to alice: only tks_a ends; applying again is a no-op. */
    tk_op op = idp_op(TK_IDP_KEY_SID, iss, "idp-sid-1", "jti-1", TK_SESSION_TERMINATED, 1000);
    op.idp_event.has_filter = true;
    tk_store_idp_key(TK_IDP_KEY_SUB, tk_slice_from_str(iss), TK_SLICE_LIT("alice"),
                     op.idp_event.filter);
    CHECK(apply1(st, &op));
    CHECK(!apply1(st, &op));
    tk_session_rec s;
    tk_txn *r;
    CHECK_EQ_INT(session_state(st, "tks_a", &s, &r), TK_SESSION_TERMINATED);
    CHECK_SLICE(s.reason, "logout");
    tk_store_txn_end(r);
    CHECK_EQ_INT(session_state(st, "tks_c", &s, &r), TK_SESSION_ACTIVE);
    tk_store_txn_end(r);

    /* sub alice: tks_b suspends (tks_a stays terminated); the audit says so. */
    op = idp_op(TK_IDP_KEY_SUB, iss, "alice", "jti-2", TK_SESSION_SUSPENDED, 1001);
    CHECK(apply1(st, &op));
    CHECK_EQ_INT(session_state(st, "tks_b", &s, &r), TK_SESSION_SUSPENDED);
    tk_store_txn_end(r);
    CHECK_EQ_INT(session_state(st, "tks_d", &s, &r), TK_SESSION_ACTIVE);
    tk_audit_rec last;
    CHECK_EQ_INT(tk_store_each_audit(r, collect_audit, &last), 0);
    tk_store_txn_end(r);
    CHECK_EQ_INT(last.matched, 2);
    CHECK_EQ_INT(last.changed, 1);
    CHECK_EQ_INT(last.state, TK_SESSION_SUSPENDED);
    CHECK_EQ_INT(last.hold, TK_HOLD_ADMIN);

    /* Replay records: known until `until`, pruned after it, oldest first. */
    uint8_t key[TK_HASH_LEN];
    int64_t until = 0;
    tk_store_replay_key(TK_SOURCE_BACKCHANNEL, tk_slice_from_str(iss), TK_SLICE_LIT("jti-1"), key);
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tk_store_seen_get(r, key, &until), 0);
    CHECK_EQ_INT(until, 1100);
    tk_store_txn_end(r);
    unsigned removed = 0;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_seen_put(w, key, 5), TK_E_EXISTS);
    tk_store_txn_end(w);
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_seen_prune(w, 1101, 16, &removed), 0);
    CHECK_EQ_INT(removed, 1); /* jti-1 (until 1100), not jti-2 (until 1101) */
    CHECK_EQ_INT(tk_store_seen_get(w, key, &until), TK_E_NOTFOUND);
    CHECK_EQ_INT(tk_store_seen_prune(w, 5000, 16, &removed), 0);
    CHECK_EQ_INT(removed, 1);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    tk_store_close(st);
    remove_dir();
}

static uint8_t holds_of(tk_store *st, const char *sid, uint8_t *state)
{
    tk_session_rec s;
    tk_txn *r;
    *state = session_state(st, sid, &s, &r);
    uint8_t h = s.holds;
    tk_store_txn_end(r);
    return h;
}

static tk_op ssf_op(const char *iss, const char *sub, const char *jti, uint8_t state, uint8_t hold,
                    int64_t at)
{
    tk_op op = idp_op(TK_IDP_KEY_SUB, iss, sub, jti, state, at);
    op.idp_event.source = TK_SOURCE_SSF;
    op.idp_event.hold = hold;
    return op;
}

/* A subject-keyed IdP event sets or lifts only its own owner's hold on
 * every session of the user; the audit record names that hold. */
static void test_idp_holds(void)
{
    make_dir();
    tk_store *st = open_store(0);
    const char *iss = "https://idp.example";
    put_idp_session(st, "tks_h1", iss, "alice", NULL);
    put_idp_session(st, "tks_h2", iss, "alice", NULL);
    put_idp_session(st, "tks_h3", iss, "alice", NULL);
    put_idp_session(st, "tks_h4", iss, "alice", NULL);
    tk_op a = op_of(TK_OP_SESSION_STATE, TK_SESSION_SUSPENDED, "tks_h1", 900);
    CHECK(apply1(st, &a)); /* an administrator's hold */
    tk_op cr = op_of(TK_OP_SESSION_STATE, TK_SESSION_SUSPENDED, "tks_h3", 900);
    cr.session.hold = TK_HOLD_CREDENTIAL;
    CHECK(apply1(st, &cr));

    /* not-compliant: every session of alice gets the device hold. */
    tk_op dev = ssf_op(iss, "alice", "set-1", TK_SESSION_SUSPENDED, TK_HOLD_DEVICE, 1000);
    CHECK(apply1(st, &dev));
    uint8_t state;
    CHECK_EQ_INT(holds_of(st, "tks_h1", &state),
                 TK_HOLD_BIT(TK_HOLD_ADMIN) | TK_HOLD_BIT(TK_HOLD_DEVICE));
    CHECK_EQ_INT(holds_of(st, "tks_h2", &state), TK_HOLD_BIT(TK_HOLD_DEVICE));
    CHECK_EQ_INT(state, TK_SESSION_SUSPENDED);
    CHECK_EQ_INT(holds_of(st, "tks_h3", &state),
                 TK_HOLD_BIT(TK_HOLD_CREDENTIAL) | TK_HOLD_BIT(TK_HOLD_DEVICE));
    tk_op term = op_of(TK_OP_SESSION_STATE, TK_SESSION_TERMINATED, "tks_h4", 1001);
    CHECK(apply1(st, &term)); /* terminated while held */

    /* compliant: only the device holds go; the others stay suspended. */
    tk_op ok = ssf_op(iss, "alice", "set-2", TK_SESSION_ACTIVE, TK_HOLD_DEVICE, 1002);
    CHECK(apply1(st, &ok));
    CHECK(!apply1(st, &ok)); /* a replay changes nothing */
    CHECK_EQ_INT(holds_of(st, "tks_h1", &state), TK_HOLD_BIT(TK_HOLD_ADMIN));
    CHECK_EQ_INT(state, TK_SESSION_SUSPENDED);
    CHECK_EQ_INT(holds_of(st, "tks_h2", &state), 0);
    CHECK_EQ_INT(state, TK_SESSION_ACTIVE);
    CHECK_EQ_INT(holds_of(st, "tks_h3", &state), TK_HOLD_BIT(TK_HOLD_CREDENTIAL));
    CHECK_EQ_INT(state, TK_SESSION_SUSPENDED);
    holds_of(st, "tks_h4", &state);
    CHECK_EQ_INT(state, TK_SESSION_TERMINATED); /* final */

    tk_session_rec s;
    tk_txn *r;
    session_state(st, "tks_h2", &s, &r);
    CHECK_EQ_INT(s.ended_at, 0);
    tk_audit_rec last;
    CHECK_EQ_INT(tk_store_each_audit(r, collect_audit, &last), 0);
    tk_store_txn_end(r);
    CHECK_EQ_INT(last.state, TK_SESSION_ACTIVE);
    CHECK_EQ_INT(last.hold, TK_HOLD_DEVICE);
    CHECK_EQ_INT(last.matched, 4);
    CHECK_EQ_INT(last.changed, 3); /* h1, h2, h3 lost their device hold */

    /* The credential owner lifts its own; then the admin lifts the last. */
    tk_op lift = ssf_op(iss, "alice", "set-3", TK_SESSION_ACTIVE, TK_HOLD_CREDENTIAL, 1003);
    CHECK(apply1(st, &lift));
    CHECK_EQ_INT(holds_of(st, "tks_h3", &state), 0);
    CHECK_EQ_INT(state, TK_SESSION_ACTIVE);
    CHECK_EQ_INT(holds_of(st, "tks_h1", &state), TK_HOLD_BIT(TK_HOLD_ADMIN));
    a.session.state = TK_SESSION_ACTIVE;
    CHECK(apply1(st, &a));
    CHECK_EQ_INT(holds_of(st, "tks_h1", &state), 0);
    CHECK_EQ_INT(state, TK_SESSION_ACTIVE);
    tk_store_close(st);
    remove_dir();
}

/* rotate-secret's op: replaces the hash; the same hash again, or an
 * unknown client, changes nothing. */
static void test_client_secret_op(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    put_fixtures(st);
    tk_op op = tk_op_make(TK_OP_CLIENT_SECRET, 500);
    TK_ASSERT(tk_op_id_set(&op.client_secret.client, TK_SLICE_LIT("tkc_agent")) == 0);
    memset(op.client_secret.secret_hash, 0x42, TK_HASH_LEN);
    CHECK(apply1(st, &op));
    CHECK(!apply1(st, &op));
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    tk_client_rec c;
    CHECK_EQ_INT(tk_store_get_client(r, TK_SLICE_LIT("tkc_agent"), &c), 0);
    CHECK(memcmp(c.secret_hash, op.client_secret.secret_hash, TK_HASH_LEN) == 0);
    CHECK_EQ_INT(c.status, TK_CLIENT_APPROVED); /* nothing else moved */
    tk_store_txn_end(r);
    TK_ASSERT(tk_op_id_set(&op.client_secret.client, TK_SLICE_LIT("tkc_nobody")) == 0);
    CHECK(!apply1(st, &op));
    tk_store_close(st);
    remove_dir();
}

/* A suspended session written before holds existed, put as raw bytes into
 * a real store: it reads as one admin hold, the device cannot lift it, the
 * admin can, and the record is written back in the new form. */
static void test_legacy_suspended_session(void)
{
    make_dir();
    tk_store *st = open_store(1 << 20);
    /* {0:1, 1:"bob", 4:2 (suspended), 5:7, 7:8}: version 1 without key 9. */
    static const uint8_t old[] = {0x85, 0x00, 0x01, 0x01, 0xa3, 'b',  'o',
                                  'b',  0x04, 0x02, 0x05, 0x07, 0x07, 0x08};
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_raw_put(w, DB_SESSIONS, TK_SLICE_LIT("tks_old"), old, sizeof old, 0), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    uint8_t state;
    CHECK_EQ_INT(holds_of(st, "tks_old", &state), TK_HOLD_BIT(TK_HOLD_ADMIN));
    CHECK_EQ_INT(state, TK_SESSION_SUSPENDED);
    tk_op dev = op_of(TK_OP_SESSION_STATE, TK_SESSION_ACTIVE, "tks_old", 20);
    dev.session.hold = TK_HOLD_DEVICE;
    CHECK(!apply1(st, &dev)); /* not the device's hold */
    CHECK_EQ_INT(holds_of(st, "tks_old", &state), TK_HOLD_BIT(TK_HOLD_ADMIN));
    dev.session.state = TK_SESSION_SUSPENDED; /* the device adds its own */
    CHECK(apply1(st, &dev));
    CHECK_EQ_INT(holds_of(st, "tks_old", &state),
                 TK_HOLD_BIT(TK_HOLD_ADMIN) | TK_HOLD_BIT(TK_HOLD_DEVICE));
    tk_session_rec s;
    tk_txn *r;
    session_state(st, "tks_old", &s, &r);
    CHECK_EQ_INT(s.ended_at, 8); /* suspended since the old record said */
    CHECK_SLICE(s.sub, "bob");
    tk_store_txn_end(r);
    tk_op adm = op_of(TK_OP_SESSION_STATE, TK_SESSION_ACTIVE, "tks_old", 21);
    CHECK(apply1(st, &adm));
    dev.session.state = TK_SESSION_ACTIVE;
    CHECK(apply1(st, &dev));
    CHECK_EQ_INT(holds_of(st, "tks_old", &state), 0);
    CHECK_EQ_INT(state, TK_SESSION_ACTIVE);
    tk_store_close(st);
    remove_dir();
}

/* ---- Token ids and the revocation bitmap (revoked.c) ------------------------------------- */

static uint64_t tid_of(tk_txn *r, unsigned n)
{
    uint8_t h[TK_HASH_LEN];
    tk_token_rec t;
    hash_of(n, h);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    return t.tid;
}

static bool revoked(tk_txn *r, unsigned n)
{
    uint8_t h[TK_HASH_LEN];
    tk_token_rec t;
    hash_of(n, h);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    return t.revoked_at != 0;
}

static int64_t revoked_at(tk_txn *r, unsigned n)
{
    uint8_t h[TK_HASH_LEN];
    int64_t at = -1;
    hash_of(n, h);
    CHECK_EQ_INT(tk_store_token_revoked_at(r, h, &at), 0);
    return at;
}

static size_t dbi_entries(tk_store *st, enum db_index db)
{
    tk_txn *r;
    MDB_stat ms = {0};
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(mdb_stat(r->txn, st->dbi[db], &ms), 0);
    tk_store_txn_end(r);
    return ms.ms_entries;
}

static void put_new(tk_store *st, unsigned n, unsigned flags, int want)
{
    tk_txn *w;
    uint8_t h[TK_HASH_LEN];
    tk_token_rec t = token("tks_1");
    hash_of(n, h);
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_put_token(w, h, &t, flags), want);
    CHECK_EQ_INT(tk_store_commit(w), 0);
}

static bool revoke_at(tk_store *st, unsigned n, int64_t at)
{
    tk_op op = op_of(TK_OP_REVOKE_TOKEN, 0, NULL, at);
    hash_of(n, op.revoke_token.hash);
    return apply1(st, &op);
}

/* Every new token record gets the next id, in put order (a new key found
 * taken gives its id back); a rewrite keeps the stored id whatever the caller passes; ids on both
 * sides of a bitmap value's edge land in their own bits; a revocation sets one bit and appends one
 * log entry, once; the time comes back from the log. */
static void test_token_ids(void)
{
    make_dir();
    tk_store *st = open_store(4 << 20);
    put_new(st, 1, TK_PUT_NEW, 0);
    put_new(st, 2, TK_PUT_NEW, 0);
    put_new(st, 3, 0, 0);                    /* a new key without TK_PUT_NEW: an id too */
    put_new(st, 2, 0, 0);                    /* a rewrite with tid 0 keeps id 2 */
    put_new(st, 1, TK_PUT_NEW, TK_E_EXISTS); /* takes no id */
    put_new(st, 4, TK_PUT_NEW, 0);
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tid_of(r, 1), 1);
    CHECK_EQ_INT(tid_of(r, 2), 2);
    CHECK_EQ_INT(tid_of(r, 3), 3);
    CHECK_EQ_INT(tid_of(r, 4), 4);
    tk_store_txn_end(r);

    /* Next ids: the last bit of value 0, the first two of value 1. */
    const uint64_t bits = (uint64_t)TK_REVOKED_VALUE_BYTES * 8;
    tk_txn *w;
    uint8_t next[8];
    for (int i = 0; i < 8; i++) {
        next[i] = (uint8_t)((bits - 1) >> (8 * i));
    }
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_raw_put(w, DB_META, TK_SLICE_LIT("token_id"), next, 8, 0), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    put_new(st, 20, TK_PUT_NEW, 0);
    put_new(st, 21, TK_PUT_NEW, 0);
    put_new(st, 22, TK_PUT_NEW, 0);
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tid_of(r, 20), bits - 1);
    CHECK_EQ_INT(tid_of(r, 21), bits);
    CHECK_EQ_INT(tid_of(r, 22), bits + 1);
    tk_store_txn_end(r);

    CHECK(revoke_at(st, 21, 7001));
    CHECK(!revoke_at(st, 21, 7002)); /* idempotent: no second bit, no second entry */
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK(!revoked(r, 20) && revoked(r, 21) && !revoked(r, 22) && !revoked(r, 1));
    tk_store_txn_end(r);
    CHECK(revoke_at(st, 20, 7003));
    CHECK(revoke_at(st, 1, 7004));
    CHECK_EQ_INT(dbi_entries(st, DB_REVOKED), 2); /* values 0 and 1 */
    CHECK_EQ_INT(dbi_entries(st, DB_REVLOG), 3);

    /* Durable: the same answers after a reopen. */
    tk_store_close(st);
    st = open_store(4 << 20);
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK(revoked(r, 20) && revoked(r, 21) && !revoked(r, 22) && revoked(r, 1));
    CHECK(!revoked(r, 2) && !revoked(r, 3));
    CHECK_EQ_INT(revoked_at(r, 21), 7001);
    CHECK_EQ_INT(revoked_at(r, 20), 7003);
    CHECK_EQ_INT(revoked_at(r, 1), 7004);
    CHECK_EQ_INT(revoked_at(r, 22), 0);
    uint8_t h[TK_HASH_LEN];
    int64_t at = 0;
    hash_of(99, h);
    CHECK_EQ_INT(tk_store_token_revoked_at(r, h, &at), TK_E_NOTFOUND);

    /* The reader's cache of bitmap values: a renew with no commit between
     * keeps the answers, a commit shows at the next renew, and a grown (maybe
     * moved) map is read afresh. */
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK(revoked(r, 21) && !revoked(r, 22) && !revoked(r, 2));
    CHECK(revoke_at(st, 22, 7005));
    CHECK(revoke_at(st, 2, 7006));
    CHECK(!revoked(r, 22) && !revoked(r, 2)); /* the snapshot of before */
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK(revoked(r, 22) && revoked(r, 2) && !revoked(r, 3));
    tk_store_read_reset(r);
    CHECK_EQ_INT(tk_store_grow(st, 64 << 20), 0);
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK(revoked(r, 20) && revoked(r, 22) && revoked(r, 2) && !revoked(r, 3));
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

/* A record written before ids (no key 18) is revoked the old way: its own
 * revoked_at, no bit, no log entry; and a bitmap value of the wrong size is
 * corruption, never "not revoked". */
static void test_token_ids_old_records(void)
{
    make_dir();
    tk_store *st = open_store(4 << 20);
    tk_token_rec t = token("tks_1");
    uint8_t buf[TK_RECORD_MAX], h[TK_HASH_LEN];
    size_t len;
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof buf, &len), 0);
    hash_of(30, h);
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_raw_put(w, DB_TOKENS, (tk_slice){(const char *)h, TK_HASH_LEN}, buf, len,
                                  TK_PUT_NEW),
                 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    put_new(st, 30, 0, 0); /* a rewrite of an old record does not give it an id */
    CHECK(revoke_at(st, 30, 8001));
    CHECK(!revoke_at(st, 30, 8002));
    CHECK_EQ_INT(dbi_entries(st, DB_REVOKED), 0);
    CHECK_EQ_INT(dbi_entries(st, DB_REVLOG), 0);
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tid_of(r, 30), 0);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    CHECK_EQ_INT(t.revoked_at, 8001);
    CHECK_EQ_INT(revoked_at(r, 30), 8001);
    tk_store_txn_end(r);

    /* The session index: the old record by its hash in session_tokens, a
     * new one by its id in session_ids; a session's count holds both. */
    put_new(st, 31, TK_PUT_NEW, 0);
    CHECK_EQ_INT(dbi_entries(st, DB_SESSION_TOKENS), 1);
    CHECK_EQ_INT(dbi_entries(st, DB_SESSION_IDS), 1);
    uint64_t count = 0;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK_EQ_INT(tk_store_session_token_count(r, TK_SLICE_LIT("tks_1"), &count), 0);
    CHECK_EQ_INT(count, 2);
    tk_store_txn_end(r);

    /* A bitmap value of the wrong size: the token reads as corrupt. */
    size_t key = 0;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(
        tk_store_raw_put(w, DB_REVOKED, (tk_slice){(const char *)&key, sizeof key}, buf, 16, 0), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    hash_of(31, h);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), TK_E_CORRUPT);
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

static uint32_t schema_of(void)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {6, "schema"}, v;
    uint32_t ver = 0;
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_set_maxdbs(env, TK_STORE_MAX_DBS), 0);
    CHECK_EQ_INT(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == 4) {
        ver = ((const uint8_t *)v.mv_data)[0];
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return ver;
}

static void set_schema(uint8_t ver)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_set_maxdbs(env, TK_STORE_MAX_DBS), 0);
    CHECK_EQ_INT(mdb_env_open(env, dir, 0, 0600), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint8_t b[4] = {ver, 0, 0, 0};
    MDB_val k = {6, "schema"}, v = {4, b};
    CHECK_EQ_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ_INT(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A schema 1 store (written before token ids: no revoked/revocations DBIs)
 * or 2 (before code ids and the spent DBI) is read as it is read-only, and
 * upgraded to 3 by a read-write open, its records untouched; a tokend of an
 * older schema refuses a newer one (test above: an unknown version is
 * refused). What old records mean after the upgrade: test_as_ops.c
 * (test_records_spent_before_ids). */
static void test_schema_upgrade(void)
{
    for (uint8_t from = 1; from <= 2; from++) {
        make_dir();
        tk_store *st = open_store(1 << 20);
        put_fixtures(st);
        CHECK(revoke_at(st, 2, 2000));
        tk_store_close(st);
        CHECK_EQ_INT(schema_of(), 3);
        set_schema(from);

        tk_store_opts o = {.dir = dir, .map_size = 1 << 20, .read_only = true};
        CHECK_EQ_INT(tk_store_open(&o, &st), 0);
        tk_txn *r;
        CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
        CHECK(revoked(r, 2) && !revoked(r, 1));
        tk_store_txn_end(r);
        tk_store_close(st);
        CHECK_EQ_INT(schema_of(), from); /* read-only: nothing written */
        st = open_store(1 << 20);
        tk_store_close(st);
        CHECK_EQ_INT(schema_of(), 3);
        remove_dir();
    }
}

/* ---- The read txn's client memo (client_memo.c) ---------------------------------------- */

static void put_client_named(tk_store *st, const char *id, const char *name, uint8_t status,
                             uint8_t secret)
{
    tk_txn *w;
    tk_client_rec c = {.name = tk_slice_from_str(name),
                       .role = TK_ROLE_RESOURCE_SERVER,
                       .status = status,
                       .created = 100};
    memset(c.secret_hash, secret, TK_HASH_LEN);
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    CHECK_EQ_INT(tk_store_put_client(w, tk_slice_from_str(id), &c, 0), 0);
    CHECK_EQ_INT(tk_store_commit(w), 0);
}

/* The record read through r is the one named name, status, secret byte. */
static bool client_is(tk_txn *r, const char *id, const char *name, uint8_t status, uint8_t secret)
{
    tk_client_rec c;
    uint8_t want[TK_HASH_LEN];
    memset(want, secret, TK_HASH_LEN);
    return tk_store_get_client(r, tk_slice_from_str(id), &c) == 0 &&
           tk_slice_eq(c.name, tk_slice_from_str(name)) && c.status == status &&
           memcmp(c.secret_hash, want, TK_HASH_LEN) == 0;
}

static void test_client_memo(void)
{
    make_dir();
    tk_store *st = open_store(4 << 20);
    put_client_named(st, "tkc_memo", "one", TK_CLIENT_APPROVED, 1);
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    CHECK(client_is(r, "tkc_memo", "one", TK_CLIENT_APPROVED, 1));
    CHECK(client_is(r, "tkc_memo", "one", TK_CLIENT_APPROVED, 1)); /* from the memo */

    /* Disabled (the op, which also bumps the generation): the snapshot read
     * before still says approved, the next renew says disabled. */
    tk_client_rec before;
    CHECK_EQ_INT(tk_store_get_client(r, TK_SLICE_LIT("tkc_memo"), &before), 0);
    tk_op op = op_of(TK_OP_CLIENT_STATUS, TK_CLIENT_DISABLED, "tkc_memo", 600);
    CHECK(apply1(st, &op));
    CHECK(client_is(r, "tkc_memo", "one", TK_CLIENT_APPROVED, 1));
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    tk_client_rec after;
    CHECK_EQ_INT(tk_store_get_client(r, TK_SLICE_LIT("tkc_memo"), &after), 0);
    CHECK_EQ_INT(after.status, TK_CLIENT_DISABLED);
    CHECK(after.generation != before.generation);

    /* A new secret written by another handle shows at the next renew, even
     * though nothing else about the record changed. */
    put_client_named(st, "tkc_memo", "one", TK_CLIENT_APPROVED, 2);
    CHECK(client_is(r, "tkc_memo", "one", TK_CLIENT_DISABLED, 1));
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK(client_is(r, "tkc_memo", "one", TK_CLIENT_APPROVED, 2));

    /* Many clients, more than slots, read twice each in one snapshot: each
     * answer is its own record (ids sharing a slot never mix). */
    enum { N = 3 * TK_CLIENTMEMO_SLOTS };
    char id[N][32], name[N][16];
    tk_txn *w;
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    for (int i = 0; i < N; i++) {
        snprintf(id[i], sizeof id[i], i % 2 ? "tkc_m%d" : "tkc_memo_client_%04d", i);
        snprintf(name[i], sizeof name[i], "n%d", i);
        tk_client_rec c = {.name = tk_slice_from_str(name[i]),
                           .role = TK_ROLE_AGENT,
                           .status = TK_CLIENT_APPROVED,
                           .created = 100};
        memset(c.secret_hash, (uint8_t)i, TK_HASH_LEN);
        CHECK_EQ_INT(tk_store_put_client(w, tk_slice_from_str(id[i]), &c, TK_PUT_NEW), 0);
    }
    CHECK_EQ_INT(tk_store_commit(w), 0);
    CHECK_EQ_INT(tk_store_get_client(r, TK_SLICE_LIT("tkc_m1"), &after), TK_E_NOTFOUND);
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            CHECK(client_is(r, id[i], name[i], TK_CLIENT_APPROVED, (uint8_t)i));
        }
    }
    CHECK(!client_is(r, "tkc_memo_client_999", "n0", TK_CLIENT_APPROVED, 0));

    /* A write txn reads its own change, never a reader's memo of before. */
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    tk_client_rec c;
    CHECK_EQ_INT(tk_store_get_client(w, tk_slice_from_str(id[3]), &c), 0);
    c.name = TK_SLICE_LIT("renamed");
    CHECK_EQ_INT(tk_store_put_client(w, tk_slice_from_str(id[3]), &c, 0), 0);
    CHECK_EQ_INT(tk_store_get_client(w, tk_slice_from_str(id[3]), &c), 0);
    CHECK(tk_slice_eq(c.name, TK_SLICE_LIT("renamed")));
    CHECK_EQ_INT(tk_store_commit(w), 0);
    CHECK(client_is(r, id[3], name[3], TK_CLIENT_APPROVED, 3));

    /* After a reset and a grown (maybe moved) map, read afresh. */
    tk_store_read_reset(r);
    CHECK_EQ_INT(tk_store_grow(st, 64 << 20), 0);
    CHECK_EQ_INT(tk_store_read_renew(r), 0);
    CHECK(client_is(r, id[3], "renamed", TK_CLIENT_APPROVED, 3));
    CHECK(client_is(r, "tkc_memo", "one", TK_CLIENT_APPROVED, 2));
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

/* ---- Key order (tk_store_key_cmp) ------------------------------------------------------- */

/* LMDB's default comparison (mdb_cmp_memn), written plainly: byte-wise over
 * the common length, then the shorter key first. */
static int ref_cmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int d = n > 0 ? memcmp(a->mv_data, b->mv_data, n) : 0;
    if (d != 0) {
        return d < 0 ? -1 : 1;
    }
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static bool same_order(const void *a, size_t al, const void *b, size_t bl)
{
    MDB_val x = {.mv_size = al, .mv_data = (void *)a}, y = {.mv_size = bl, .mv_data = (void *)b};
    return sign(tk_store_key_cmp(&x, &y)) == ref_cmp(&x, &y) &&
           sign(tk_store_key_cmp(&y, &x)) == ref_cmp(&y, &x);
}

static int check_ascending(void *arg, tk_slice id, const tk_client_rec *rec)
{
    (void)rec;
    char *prev = arg; /* length byte, then the bytes */
    CHECK(ref_cmp(&(MDB_val){.mv_size = (uint8_t)prev[0], .mv_data = prev + 1},
                  &(MDB_val){.mv_size = id.len, .mv_data = (void *)id.p}) < 0);
    prev[0] = (char)id.len;
    memcpy(prev + 1, id.p, id.len);
    return 0;
}

static void test_key_order(void)
{
    /* Ties in the first eight bytes, prefixes, lengths around eight, and
     * bytes on both sides of 0x80 (the order is unsigned). */
    static const char *const keys[] = {"",
                                       "a",
                                       "ab",
                                       "abcdefg",
                                       "abcdefgh",
                                       "abcdefgi",
                                       "abcdefgh\x01",
                                       "abcdefgh\xff",
                                       "abcdefghij",
                                       "\x80"
                                       "bcdefgh",
                                       "\x7f"
                                       "bcdefgh",
                                       "\xff",
                                       "tks_AAAAAAAA",
                                       "tks_AAAAAAAB",
                                       "tks_AAAA"};
    for (size_t i = 0; i < TK_ARRAY_LEN(keys); i++) {
        for (size_t j = 0; j < TK_ARRAY_LEN(keys); j++) {
            CHECK(same_order(keys[i], strlen(keys[i]), keys[j], strlen(keys[j])));
        }
    }
    uint8_t z[12] = {0}, zz[13] = {0};
    CHECK(same_order(z, sizeof z, zz, sizeof zz)); /* zero bytes: the length decides */
    CHECK(same_order(z, sizeof z, z, sizeof z));

    /* Random pairs over a two-letter alphabet (many long ties), 0..40 bytes. */
    uint64_t rng = 0x2545f4914f6cdd1dull;
    uint8_t a[40], b[40];
    for (int n = 0; n < 200000; n++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t al = rng % 41, bl = (rng >> 8) % 41;
        for (size_t i = 0; i < 40; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            a[i] = (rng & 1) ? 0x80 : 0x7f;
            b[i] = (rng & 2) ? 0x80 : 0x7f;
            if (n % 3 == 0) {
                b[i] = a[i]; /* equal up to a late byte, or a prefix */
            }
        }
        if (n % 3 == 0 && bl > 0) {
            b[(rng >> 16) % bl] ^= (rng >> 24) & 1 ? 0xff : 0;
        }
        CHECK(same_order(a, al, b, bl));
    }

    /* In a store: ids of every length from 1 to 40 walk in LMDB's order and
     * are each found again. */
    make_dir();
    tk_store *st = open_store(4 << 20);
    tk_txn *w, *r;
    char ids[400][41];
    CHECK_EQ_INT(tk_store_write_begin(st, &w), 0);
    for (int i = 0; i < 400; i++) {
        size_t len = 1 + (size_t)i % 40;
        for (size_t k = 0; k < len; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            ids[i][k] = "ab\x7f\x80"[rng % 4];
        }
        ids[i][len] = '\0';
        tk_client_rec c = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_APPROVED, .created = 1};
        CHECK_EQ_INT(tk_store_put_client(w, (tk_slice){ids[i], len}, &c, 0), 0);
    }
    CHECK_EQ_INT(tk_store_commit(w), 0);
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    char prev[42] = {0};
    CHECK_EQ_INT(tk_store_each_client(r, check_ascending, prev), 0);
    for (int i = 0; i < 400; i++) {
        tk_client_rec c;
        CHECK_EQ_INT(tk_store_get_client(r, tk_slice_from_str(ids[i]), &c), 0);
    }
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

int main(void)
{
    RUN(test_records_and_indices);
    RUN(test_put_flags);
    RUN(test_apply_ops);
    RUN(test_session_machine);
    RUN(test_renew_visibility);
    RUN(test_prefault);
    RUN(test_map_full);
    RUN(test_reopen_read_only);
    RUN(test_agent_access);
    RUN(test_agent_access_old_store);
    RUN(test_idp_events);
    RUN(test_idp_holds);
    RUN(test_client_secret_op);
    RUN(test_legacy_suspended_session);
    RUN(test_token_ids);
    RUN(test_token_ids_old_records);
    RUN(test_schema_upgrade);
    RUN(test_client_memo);
    RUN(test_key_order);
    return check_report();
}
