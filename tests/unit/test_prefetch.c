/*
 * The prefetch walker (src/store/prefetch.c) against real LMDB stores. This
 * is what proves the page-format facts the walker relies on: for every key
 * of every tree below, the walker's own descent must end at the leaf node
 * whose value is at the very address, and has the very bytes, that mdb_get
 * returns for it; for absent keys it must find nothing. Trees: empty, a
 * single leaf, four levels, keys of many lengths (prefixes of each other),
 * after deletes and rewrites, and a read txn still on the snapshot before a
 * commit, then renewed.
 */
#include <lmdb.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tokend/prefetch.h"
#include "tokend/record.h"
#include "tokend/store.h"

#include "../../src/store/store_int.h"
#include "store_fixture.h"

static tk_store *open_fresh(void)
{
    make_dir("tk_prefetch_");
    return open_store(1ull << 30);
}

static void close_and_remove(tk_store *st)
{
    tk_store_close(st);
    remove_dir();
}

/* Token n's hash: spread over the key space like a SHA-256. */
static void spread_hash_of(unsigned n, uint8_t h[TK_HASH_LEN])
{
    uint64_t x = n * 0x9e3779b97f4a7c15ull + 1;
    for (unsigned i = 0; i < TK_HASH_LEN; i++) {
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        h[i] = (uint8_t)(x >> 56);
    }
}

/* Session n's id: "tks_" then n % 97 + 1 letters, then n's digits: lengths
 * from 6 to ~110, many ids prefixes of others. */
static tk_slice sid_of(unsigned n, char *buf)
{
    size_t len = 4, fill = n % 97 + 1;
    memcpy(buf, "tks_", 4);
    memset(buf + len, 'a' + (char)(n % 3), fill);
    len += fill;
    len += (size_t)snprintf(buf + len, 16, "%u", n / 3);
    return (tk_slice){buf, len};
}

static char scope_buf[400];

/* Put tokens from .. to - 1 (random order in the tree), scope of scope_len. */
static void put_tokens(tk_store *st, unsigned from, unsigned to, size_t scope_len)
{
    tk_txn *w;
    memset(scope_buf, 's', sizeof scope_buf);
    tk_token_rec t = {.kind = TK_TOKEN_ACCESS,
                      .client_id = TK_SLICE_LIT("tkc_a"),
                      .sid = TK_SLICE_LIT("tks_a"),
                      .grant_id = TK_SLICE_LIT("tkg_a"),
                      .scope = {scope_buf, scope_len},
                      .iat = 1,
                      .exp = 100000};
    uint8_t h[TK_HASH_LEN];
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    for (unsigned i = from; i < to; i++) {
        spread_hash_of(i, h);
        TK_ASSERT(tk_store_put_token(w, h, &t, TK_PUT_NO_INDEX) == 0);
    }
    TK_ASSERT(tk_store_commit(w) == 0);
}

/* The walker and mdb_get agree on key in db: found by both, at the same
 * address (hence the same bytes), or by neither. */
static bool agree(tk_txn *r, enum tk_pf_db db, enum db_index raw, tk_slice key)
{
    tk_slice got = {0};
    int w = tk_store_prefetch_find(r, db, key, &got);
    MDB_val k = {.mv_size = key.len, .mv_data = (void *)key.p}, v;
    int rc = tk_store_raw_get(r, raw, &k, &v);
    if (rc == TK_E_NOTFOUND) {
        return w == 0;
    }
    return rc == 0 && w == 1 && got.p == v.mv_data && got.len == v.mv_size;
}

static bool token_agrees(tk_txn *r, unsigned n)
{
    uint8_t h[TK_HASH_LEN];
    spread_hash_of(n, h);
    return agree(r, TK_PF_TOKENS, DB_TOKENS, (tk_slice){(const char *)h, TK_HASH_LEN});
}

/* How many of tokens from .. to - 1 the walker and mdb_get agree on. */
static unsigned tokens_agreeing(tk_txn *r, unsigned from, unsigned to)
{
    unsigned ok = 0;
    for (unsigned i = from; i < to; i++) {
        ok += token_agrees(r, i);
    }
    return ok;
}

static void test_empty_tree(void)
{
    tk_store *st = open_fresh();
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    tk_slice v;
    uint8_t h[1][TK_HASH_LEN];
    spread_hash_of(1, h[0]);
    CHECK_EQ_INT(tk_store_prefetch_find(r, TK_PF_TOKENS, (tk_slice){(char *)h[0], TK_HASH_LEN}, &v),
                 0);
    CHECK_EQ_INT(r->pf.tree[TK_PF_TOKENS].depth, 0);
    CHECK_EQ_INT(tk_store_prefetch_tokens(r, h, 1), 0);
    tk_store_txn_end(r);
    close_and_remove(st);
}

/* A few tokens: the root is the one leaf. The map base the walker derives
 * is where the store found the file mapped. */
static void test_one_leaf(void)
{
    tk_store *st = open_fresh();
    put_tokens(st, 0, 5, 10);
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    CHECK_EQ_INT(tokens_agreeing(r, 0, 5), 5);
    CHECK_EQ_INT(tokens_agreeing(r, 5, 50), 45); /* absent: both find nothing */
    CHECK_EQ_INT(r->pf.tree[TK_PF_TOKENS].depth, 1);
    CHECK(r->pf.ok && (uintptr_t)r->pf.map.base == st->map_base);
    uint8_t h[8][TK_HASH_LEN];
    for (unsigned i = 0; i < 8; i++) {
        spread_hash_of(i, h[i]);
    }
    CHECK_EQ_INT(tk_store_prefetch_tokens(r, h, 8), 5);
    tk_store_txn_end(r);
    close_and_remove(st);
}

/* Enough tokens, with long records, for four levels; every one agrees, and
 * the batch walk finds each of a batch in its leaf. */
static void test_four_levels(void)
{
    tk_store *st = open_fresh();
    const unsigned n = 60000;
    for (unsigned i = 0; i < n; i += 20000) {
        put_tokens(st, i, i + 20000, 360);
    }
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    CHECK_EQ_INT(tokens_agreeing(r, 0, n + 1000), n + 1000);
    CHECK_EQ_INT(r->pf.tree[TK_PF_TOKENS].depth, 4);
    static uint8_t h[TK_PREFETCH_MAX + 8][TK_HASH_LEN];
    for (unsigned i = 0; i < TK_PREFETCH_MAX + 8; i++) {
        spread_hash_of(i * 7, h[i]);
    }
    CHECK_EQ_INT(tk_store_prefetch_tokens(r, h, TK_PREFETCH_MAX + 8), TK_PREFETCH_MAX);
    tk_store_txn_end(r);
    close_and_remove(st);
}

/* Sessions whose ids have many lengths, many a prefix of another: the
 * order is byte-wise, the shorter first. */
static void test_key_lengths(void)
{
    tk_store *st = open_fresh();
    const unsigned n = 6000;
    tk_session_rec s = {.sub = TK_SLICE_LIT("alice"), .state = TK_SESSION_ACTIVE, .created = 1};
    tk_txn *w;
    char buf[160];
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    for (unsigned i = 0; i < n; i++) {
        TK_ASSERT(tk_store_put_session(w, sid_of(i, buf), &s, 0) == 0);
    }
    TK_ASSERT(tk_store_commit(w) == 0);
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    unsigned ok = 0;
    for (unsigned i = 0; i < n + 300; i++) {
        ok += agree(r, TK_PF_SESSIONS, DB_SESSIONS, sid_of(i, buf));
    }
    CHECK_EQ_INT(ok, n + 300);
    CHECK(r->pf.tree[TK_PF_SESSIONS].depth >= 3);
    const char *odd[] = {"t", "tks", "tks_", "tks_a", "tks_aa", "tks_b", "tks_c", "u", "\xff"};
    ok = 0;
    for (size_t i = 0; i < TK_ARRAY_LEN(odd); i++) {
        ok += agree(r, TK_PF_SESSIONS, DB_SESSIONS, tk_slice_from_str(odd[i]));
    }
    CHECK_EQ_INT(ok, TK_ARRAY_LEN(odd));
    tk_store_txn_end(r);
    close_and_remove(st);
}

/* Rewrites with other record sizes and deletes (pages split, merge and are
 * reused from the free list): still every key agrees. */
static void test_deletes_and_rewrites(void)
{
    tk_store *st = open_fresh();
    const unsigned n = 20000;
    put_tokens(st, 0, n, 200);
    for (unsigned round = 0; round < 3; round++) {
        put_tokens(st, round * 1000, round * 1000 + 5000, round == 1 ? 20 : 380);
        tk_txn *w;
        TK_ASSERT(tk_store_write_begin(st, &w) == 0);
        for (unsigned i = round; i < n; i += 3 + round) {
            uint8_t h[TK_HASH_LEN];
            spread_hash_of(i, h);
            MDB_val k = {.mv_size = TK_HASH_LEN, .mv_data = h};
            int rc = mdb_del(w->txn, st->dbi[DB_TOKENS], &k, NULL);
            TK_ASSERT(rc == 0 || rc == MDB_NOTFOUND);
        }
        TK_ASSERT(tk_store_commit(w) == 0);
        tk_txn *r;
        TK_ASSERT(tk_store_read_begin(st, &r) == 0);
        CHECK_EQ_INT(tokens_agreeing(r, 0, n), n);
        tk_store_txn_end(r);
    }
    close_and_remove(st);
}

/* A read txn keeps its snapshot across a commit: the walker still agrees
 * with it (its roots are that snapshot's); renewed, it sees the commit. */
static void test_stale_snapshot(void)
{
    tk_store *st = open_fresh();
    put_tokens(st, 0, 3000, 100);
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    CHECK_EQ_INT(tokens_agreeing(r, 0, 6000), 6000);
    size_t snap = r->pf.snap;
    put_tokens(st, 3000, 6000, 300); /* the tree grows a level, pages move */
    CHECK_EQ_INT(tokens_agreeing(r, 0, 6000), 6000);
    CHECK_EQ_INT(r->pf.snap, snap);
    tk_slice v;
    uint8_t h[TK_HASH_LEN];
    spread_hash_of(4000, h);
    CHECK_EQ_INT(tk_store_prefetch_find(r, TK_PF_TOKENS, (tk_slice){(char *)h, TK_HASH_LEN}, &v),
                 0);
    TK_ASSERT(tk_store_read_renew(r) == 0);
    CHECK_EQ_INT(tk_store_prefetch_find(r, TK_PF_TOKENS, (tk_slice){(char *)h, TK_HASH_LEN}, &v),
                 1);
    CHECK(r->pf.snap != snap);
    CHECK_EQ_INT(tokens_agreeing(r, 0, 6000), 6000);
    tk_store_read_reset(r); /* a reset txn: the walker does nothing */
    CHECK_EQ_INT(tk_store_prefetch_find(r, TK_PF_TOKENS, (tk_slice){(char *)h, TK_HASH_LEN}, &v),
                 -1);
    tk_store_txn_end(r);
    close_and_remove(st);
}

/* The second round reaches each token's grant and session: walked by the
 * same descent, they agree with mdb_get too. */
static void test_grant_and_session(void)
{
    tk_store *st = open_fresh();
    tk_txn *w;
    char buf[160];
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    tk_session_rec s = {.sub = TK_SLICE_LIT("bob"), .state = TK_SESSION_ACTIVE, .created = 1};
    tk_grant_rec g = {.client_id = TK_SLICE_LIT("tkc_a"),
                      .sub = TK_SLICE_LIT("bob"),
                      .sid = TK_SLICE_LIT("tks_a"),
                      .state = TK_GRANT_ACTIVE,
                      .created = 1};
    for (unsigned i = 0; i < 3000; i++) {
        tk_slice sid = sid_of(i, buf);
        TK_ASSERT(tk_store_put_session(w, sid, &s, 0) == 0);
        buf[2] = 'g'; /* tkg_…: the grant's id */
        TK_ASSERT(tk_store_put_grant(w, sid, &g, TK_PUT_NO_INDEX) == 0);
    }
    TK_ASSERT(tk_store_commit(w) == 0);
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    unsigned ok = 0;
    for (unsigned i = 0; i < 3000; i++) {
        tk_slice id = sid_of(i, buf);
        buf[2] = 'g';
        ok += agree(r, TK_PF_GRANTS, DB_GRANTS, id);
        buf[2] = 's';
        ok += agree(r, TK_PF_SESSIONS, DB_SESSIONS, id);
    }
    CHECK_EQ_INT(ok, 6000);
    tk_store_txn_end(r);
    close_and_remove(st);
}

static bool same_slice(tk_slice a, tk_slice b)
{
    return a.p == b.p && a.len == b.len;
}

/* The records the batch walk decoded are what tk_store_get_token decodes
 * from what mdb_get returns (the same bytes at the same address); a token
 * rewritten by a later commit is read afresh after the renewal. */
static void test_decoded_memo(void)
{
    tk_store *st = open_fresh();
    put_tokens(st, 0, 2000, 100);
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    CHECK(!tk_store_prefetch_wanted(r)); /* far below TK_PREFETCH_AUTO_BYTES */
    uint8_t h[16][TK_HASH_LEN];
    for (unsigned i = 0; i < 16; i++) {
        spread_hash_of(i * 3, h[i]);
    }
    CHECK_EQ_INT(tk_store_prefetch_tokens(r, h, 16), 16);
    unsigned kept = 0;
    for (unsigned i = 0; i < 16; i++) {
        MDB_val k = {.mv_size = TK_HASH_LEN, .mv_data = h[i]}, v;
        tk_token_rec a, b;
        TK_ASSERT(tk_store_raw_get(r, DB_TOKENS, &k, &v) == 0);
        TK_ASSERT(tk_record_decode_token(v.mv_data, v.mv_size, &b) == 0);
        if (tk_store_prefetch_decoded(r, &v, &a)) {
            kept++;
            CHECK(a.kind == b.kind && a.exp == b.exp && a.tid == b.tid);
            CHECK(same_slice(a.scope, b.scope) && same_slice(a.sid, b.sid) &&
                  same_slice(a.grant_id, b.grant_id) && same_slice(a.client_id, b.client_id));
        }
    }
    CHECK(kept >= 12); /* an index slot shared by two values keeps one */
    MDB_val k1 = {.mv_size = TK_HASH_LEN, .mv_data = h[0]}, v1;
    uint8_t other[TK_HASH_LEN];
    spread_hash_of(1, other);
    MDB_val k2 = {.mv_size = TK_HASH_LEN, .mv_data = other}, v2;
    tk_token_rec c;
    TK_ASSERT(tk_store_raw_get(r, DB_TOKENS, &k2, &v2) == 0);
    CHECK(!tk_store_prefetch_decoded(r, &v2, &c)); /* not in the batch */
    put_tokens(st, 0, 1, 20);                      /* token 0 rewritten, scope 20 bytes */
    TK_ASSERT(tk_store_read_renew(r) == 0);
    TK_ASSERT(tk_store_raw_get(r, DB_TOKENS, &k1, &v1) == 0);
    CHECK(!tk_store_prefetch_decoded(r, &v1, &c));
    CHECK_EQ_INT(tk_store_get_token(r, h[0], &c), 0);
    CHECK_EQ_INT(c.scope.len, 20);
    tk_store_txn_end(r);
    close_and_remove(st);
}

int main(void)
{
    RUN(test_empty_tree);
    RUN(test_one_leaf);
    RUN(test_four_levels);
    RUN(test_key_lengths);
    RUN(test_deletes_and_rewrites);
    RUN(test_stale_snapshot);
    RUN(test_grant_and_session);
    RUN(test_decoded_memo);
    return check_report();
}
