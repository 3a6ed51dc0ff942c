/*
 * Walking the store (tokenctl's listings, the cascade's index reads): a
 * cursor over a DBI, every record of a DBI, every duplicate of one key of a
 * DUPSORT index. Cold paths; every value is checked for size before use.
 */
#include "tokend/log.h"
#include "store_int.h"

#include <lmdb.h>
#include <string.h>

int tk_store_raw_cursor(tk_txn *t, enum db_index db, MDB_cursor **cur, size_t *entries)
{
    TK_ASSERT(!t->reset);
    if (t->failed != 0) {
        return t->failed;
    }
    if (t->st->absent[db]) {
        return TK_E_NOTFOUND; /* callers treat it as an empty DBI */
    }
    MDB_stat ms;
    int rc = mdb_stat(t->txn, t->st->dbi[db], &ms);
    if (rc == 0) {
        *entries = ms.ms_entries;
        rc = mdb_cursor_open(t->txn, t->st->dbi[db], cur);
    }
    return rc == 0 ? 0 : tk_store_err(rc, "cursor_open");
}

typedef int (*visit_fn)(void *ctx, tk_slice key, const MDB_val *v);

int tk_store_raw_walk(tk_txn *t, enum db_index db, tk_store_visit_fn visit, void *ctx)
{
    MDB_cursor *cur;
    size_t entries;
    int rc = tk_store_raw_cursor(t, db, &cur, &entries);
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    MDB_val k, v;
    for (size_t i = 0; i < entries && rc == 0; i++) {
        int mrc = mdb_cursor_get(cur, &k, &v, i == 0 ? MDB_FIRST : MDB_NEXT);
        if (mrc == MDB_NOTFOUND) {
            break;
        }
        if (mrc != 0) {
            rc = tk_store_err(mrc, "cursor_get");
            break;
        }
        rc = visit(ctx, (tk_slice){k.mv_data, k.mv_size}, &v);
    }
    mdb_cursor_close(cur);
    return rc;
}

static int visit_session(void *ctx, tk_slice key, const MDB_val *v)
{
    walk_ctx *w = ctx;
    tk_session_rec rec;
    if (tk_record_decode_session(v->mv_data, v->mv_size, &rec) != 0) {
        tk_store_log_corrupt_id("sessions", key);
        return TK_E_CORRUPT;
    }
    return ((tk_session_fn)w->fn)(w->arg, key, &rec);
}

static int visit_client(void *ctx, tk_slice key, const MDB_val *v)
{
    walk_ctx *w = ctx;
    tk_client_rec rec;
    if (tk_record_decode_client(v->mv_data, v->mv_size, &rec) != 0) {
        tk_store_log_corrupt_id("clients", key);
        return TK_E_CORRUPT;
    }
    return ((tk_client_fn)w->fn)(w->arg, key, &rec);
}

int tk_store_each_session(tk_txn *txn, tk_session_fn fn, void *arg)
{
    walk_ctx w = {(void *)fn, arg};
    return tk_store_raw_walk(txn, DB_SESSIONS, visit_session, &w);
}

int tk_store_each_client(tk_txn *txn, tk_client_fn fn, void *arg)
{
    walk_ctx w = {(void *)fn, arg};
    return tk_store_raw_walk(txn, DB_CLIENTS, visit_client, &w);
}

int tk_store_raw_each_dup(tk_txn *t, enum db_index db, tk_slice key, size_t min_len, size_t max_len,
                          tk_id_fn visit, void *ctx)
{
    MDB_cursor *cur;
    size_t entries;
    int rc = tk_store_raw_cursor(t, db, &cur, &entries);
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc; /* an absent late DBI is empty */
    }
    MDB_val k = val_of(key.p, key.len), v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    size_t count = 0;
    if (mrc == 0) {
        mrc = mdb_cursor_count(cur, &count);
    }
    for (size_t i = 0; mrc == 0 && rc == 0 && i < count && i < entries; i++) {
        if (i > 0) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
        }
        if (mrc == 0 && (v.mv_size < min_len || v.mv_size > max_len)) {
            tk_log_error("store_corrupt", "dbi=%s error=\"index value size\"",
                         tk_store_db_name(db));
            rc = TK_E_CORRUPT;
        } else if (mrc == 0) {
            rc = visit(ctx, (tk_slice){v.mv_data, v.mv_size});
        }
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = tk_store_err(mrc, "index_get");
    }
    return rc;
}

/* Adapts a hash callback to the 32-byte duplicates of a DUPFIXED index. */
static int visit_hash(void *ctx, tk_slice value)
{
    walk_ctx *w = ctx;
    return ((tk_hash_fn)w->fn)(w->arg, (const uint8_t *)value.p);
}

static int each_dup_hash(tk_txn *t, enum db_index db, tk_slice key, tk_hash_fn fn, void *arg)
{
    walk_ctx w = {(void *)fn, arg};
    return tk_store_raw_each_dup(t, db, key, TK_HASH_LEN, TK_HASH_LEN, visit_hash, &w);
}

/* The duplicates under key in a DUPSORT index (0 when none, or the DBI is
 * absent: a read-only open of an older store). */
static int dup_count(tk_txn *t, enum db_index db, tk_slice key, uint64_t *n)
{
    MDB_cursor *cur;
    size_t entries;
    int rc = tk_store_raw_cursor(t, db, &cur, &entries);
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    MDB_val k = val_of(key.p, key.len), v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    size_t count = 0;
    if (mrc == 0) {
        mrc = mdb_cursor_count(cur, &count);
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        return tk_store_err(mrc, "index_count");
    }
    *n += count;
    return 0;
}

int tk_store_session_token_count(tk_txn *txn, tk_slice sid, uint64_t *n)
{
    *n = 0;
    if (!id_ok(sid)) {
        return 0;
    }
    int rc = dup_count(txn, DB_SESSION_IDS, sid, n);
    return rc != 0 ? rc : dup_count(txn, DB_SESSION_TOKENS, sid, n);
}

int tk_store_each_child(tk_txn *txn, const uint8_t parent[TK_HASH_LEN], tk_hash_fn fn, void *arg)
{
    return each_dup_hash(txn, DB_TOKEN_CHILDREN, hash_key(parent), fn, arg);
}

/* ---- Statistics ---------------------------------------------------------------------------------
 */
