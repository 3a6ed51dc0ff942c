/*
 * Token ids and the revocation bitmap (docs/ARCHITECTURE.md §2, "Revocations").
 *
 * The idea: revoking must not rewrite a ~180-byte record at a random place in
 * a tree of millions (each revocation then copies its own leaf page and the
 * branches above it, and a group commit of a thousand writes megabytes).
 * Every token record the store creates gets a small sequential id instead
 * (a counter in meta, advanced inside the write txn, so the ids follow the
 * order ops are applied in and a replica folding the same ops assigns the
 * same ones), and a revocation sets that id's bit in the `revoked` DBI: key
 * id / TK_REVOKED_BITS (MDB_INTEGERKEY), value TK_REVOKED_VALUE_BYTES of
 * bits, exactly one LMDB overflow page. A thousand random revocations among
 * N tokens then dirty at most N / 32640 such pages, and tokens issued
 * together (the ones revoked together) share them. The time of each
 * revocation is appended to the `revocations` log (sequence → id, at), which
 * only ever grows at its right edge. Both writes are in the same txn as
 * everything else the op does, so the revocation is as durable and as
 * atomic as before, and applying it twice changes nothing the second time.
 */
#include <string.h>

#include "tokend/log.h"
#include "store_int.h"

#define TID_KEY      "token_id"
#define BITS         ((uint64_t)TK_REVOKED_VALUE_BYTES * 8u)
#define LOG_VAL_SIZE 16 /* tid, at: 8 bytes little-endian each */

static uint64_t get_le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | b[i];
    }
    return v;
}

static void put_le64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
}

/* The next id: read from meta once per txn, written back once, just before
 * the txn commits (tk_store_id_flush), however many ids it gave. */
int tk_store_next_id(tk_txn *t, uint64_t *tid_out)
{
    if (t->next_tid == 0) {
        MDB_val k = val_of(TID_KEY, strlen(TID_KEY)), v;
        int rc = tk_store_raw_get(t, DB_META, &k, &v);
        if (rc == TK_E_NOTFOUND) {
            t->next_tid = 1;
        } else if (rc != 0) {
            return rc;
        } else if (v.mv_size != 8 || get_le64(v.mv_data) == 0) {
            tk_store_log_corrupt_id("meta", TK_SLICE_LIT(TID_KEY));
            return TK_E_CORRUPT;
        } else {
            t->next_tid = get_le64(v.mv_data);
        }
    }
    if (t->next_tid > (uint64_t)TK_TOKEN_ID_MAX) {
        tk_log_error("store_token_ids", "error=\"token ids exhausted\"");
        return TK_E_FULL;
    }
    *tid_out = t->next_tid++;
    t->tid_dirty = true;
    return 0;
}

void tk_store_id_unget(tk_txn *t, uint64_t id)
{
    if (id != 0 && t->next_tid == id + 1) {
        t->next_tid = id;
    }
}

int tk_store_id_flush(tk_txn *t)
{
    if (!t->tid_dirty) {
        return 0;
    }
    uint8_t b[8];
    put_le64(b, t->next_tid);
    int rc = tk_store_raw_put(t, DB_META, TK_SLICE_LIT(TID_KEY), b, sizeof b, 0);
    t->tid_dirty = rc != 0;
    return rc;
}

int tk_store_token_id(tk_txn *t, const uint8_t hash[TK_HASH_LEN], uint64_t rec_tid, unsigned flags,
                      uint64_t *tid_out)
{
    if (rec_tid != 0) {
        *tid_out = rec_tid;
        return 0;
    }
    if ((flags & (TK_PUT_NEW | TK_PUT_APPEND)) == 0) {
        /* Maybe a rewrite: keep what the stored record has (0 for a record
         * older than ids, which keeps revoking by its revoked_at). */
        MDB_val k = val_of(hash, TK_HASH_LEN), v;
        int rc = tk_store_raw_get(t, DB_TOKENS, &k, &v);
        if (rc == 0) {
            tk_token_rec old;
            if (tk_record_decode_token(v.mv_data, v.mv_size, &old) != 0) {
                return TK_E_CORRUPT;
            }
            *tid_out = old.tid;
            return 0;
        }
        if (rc != TK_E_NOTFOUND) {
            return rc;
        }
    }
    return tk_store_next_id(t, tid_out);
}

/* The bitmap value holding tid, as a pointer into the map (NULL: none yet). */
static int bits_get(tk_txn *t, uint64_t tid, size_t *key, const uint8_t **bits)
{
    TK_ASSERT(tid != 0);
    *key = (size_t)(tid / BITS);
    MDB_val k = val_of(key, sizeof *key), v;
    int rc = tk_store_raw_get(t, DB_REVOKED, &k, &v);
    *bits = NULL;
    if (rc == TK_E_NOTFOUND) {
        return 0;
    }
    if (rc == 0 && v.mv_size != TK_REVOKED_VALUE_BYTES) {
        tk_log_error("store_corrupt", "dbi=revoked key=%zu size=%zu", *key, v.mv_size);
        return TK_E_CORRUPT;
    }
    *bits = v.mv_data;
    return rc;
}

/* No value yet: nothing revoked in its range. */
static const uint8_t no_bits[TK_REVOKED_VALUE_BYTES];

/* bits_get through the read txn's cache (tk_revcache): one LMDB lookup per
 * value and snapshot instead of one per token read. */
static int bits_cached(tk_txn *t, uint64_t tid, const uint8_t **bits)
{
    tk_revcache *c = t->rcache;
    size_t key, snap = 0;
    if (c != NULL && !t->reset) {
        if (TK_UNLIKELY(c->map_gen != t->st->map_gen)) {
            memset(c, 0, sizeof(*c));
            c->map_gen = t->st->map_gen;
        }
        key = (size_t)(tid / BITS);
        snap = mdb_txn_id(t->txn);
        size_t i = key % TK_REVCACHE_SLOTS;
        if (c->e[i].snap == snap && c->e[i].key == key) {
            *bits = c->e[i].bits;
            return 0;
        }
    }
    int rc = bits_get(t, tid, &key, bits);
    if (rc == 0 && *bits == NULL) {
        *bits = no_bits;
    }
    if (rc == 0 && snap != 0) {
        size_t i = key % TK_REVCACHE_SLOTS;
        c->e[i].key = key;
        c->e[i].snap = snap;
        c->e[i].bits = *bits;
    }
    return rc;
}

int tk_store_revoked_test(tk_txn *t, uint64_t tid, bool *revoked)
{
    const uint8_t *bits = no_bits;
    int rc = bits_cached(t, tid, &bits);
    uint64_t bit = tid % BITS;
    *revoked = rc == 0 && (bits[bit / 8] >> (bit % 8) & 1u) != 0;
    return rc;
}

/* Append (tid, at) after the log's last entry (a write txn: the DBI exists). */
static int log_append(tk_txn *t, uint64_t tid, int64_t at)
{
    MDB_cursor *cur;
    size_t entries = 0, seq = 1;
    int rc = tk_store_raw_cursor(t, DB_REVLOG, &cur, &entries);
    if (rc != 0) {
        return rc;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (mrc == 0 && k.mv_size == sizeof seq) {
        memcpy(&seq, k.mv_data, sizeof seq);
        seq++;
    } else if (mrc == 0) {
        return TK_E_CORRUPT;
    } else if (mrc != MDB_NOTFOUND) {
        return tk_store_err(mrc, "revocation_last");
    }
    uint8_t val[LOG_VAL_SIZE];
    put_le64(val, tid);
    put_le64(val + 8, (uint64_t)at);
    return tk_store_raw_put(t, DB_REVLOG, (tk_slice){(const char *)&seq, sizeof seq}, val,
                            sizeof val, TK_PUT_APPEND);
}

int tk_store_revoke_id(tk_txn *t, uint64_t tid, int64_t at)
{
    size_t key;
    const uint8_t *bits;
    int rc = bits_get(t, tid, &key, &bits);
    if (rc != 0) {
        return rc;
    }
    uint8_t buf[TK_REVOKED_VALUE_BYTES];
    if (bits != NULL) {
        memcpy(buf, bits, sizeof buf);
    } else {
        memset(buf, 0, sizeof buf);
    }
    uint64_t bit = tid % BITS;
    buf[bit / 8] |= (uint8_t)(1u << (bit % 8));
    rc = tk_store_raw_put(t, DB_REVOKED, (tk_slice){(const char *)&key, sizeof key}, buf,
                          sizeof buf, 0);
    return rc != 0 ? rc : log_append(t, tid, at);
}

/* ---- Spent ids ---------------------------------------------------------------
 *
 * The same idea for the token endpoint's writes: redeeming a code and
 * rotating a refresh token rewrote the whole record (a code's ~250 bytes at
 * a random place of `codes`, a refresh token's ~200 at a random place of
 * the big `tokens` tree) only to set one time in it. Both now append
 * (id → time) to `spent` (MDB_INTEGERKEY): the ids were given in apply
 * order and the codes and refresh tokens spent in one group commit were
 * mostly made shortly before, so their entries land together at the
 * tree's right edge, a page or two per commit. The entry is written in
 * the same txn as the rest of the op, which decides from it (the getters
 * report it as used_at / rotated_at), so a code is still redeemed once and
 * a refresh token rotated once. */

int tk_store_spend(tk_txn *t, uint64_t id, int64_t at)
{
    TK_ASSERT(id != 0 && at > 0);
    size_t key = (size_t)id;
    uint8_t val[8];
    put_le64(val, (uint64_t)at);
    return tk_store_raw_put(t, DB_SPENT, (tk_slice){(const char *)&key, sizeof key}, val,
                            sizeof val, TK_PUT_NEW);
}

int tk_store_spent_at(tk_txn *t, uint64_t id, int64_t *at_out)
{
    size_t key = (size_t)id;
    MDB_val k = val_of(&key, sizeof key), v;
    int rc = tk_store_raw_get(t, DB_SPENT, &k, &v);
    *at_out = 0;
    if (rc == TK_E_NOTFOUND) {
        return 0;
    }
    if (rc == 0) {
        int64_t at = v.mv_size == 8 ? (int64_t)get_le64(v.mv_data) : 0;
        if (at <= 0 || at > TK_TIME_MAX) {
            tk_log_error("store_corrupt", "dbi=spent key=%zu size=%zu", key, v.mv_size);
            return TK_E_CORRUPT;
        }
        *at_out = at;
    }
    return rc;
}

/* Newest first: a view asks mostly about recent revocations. Bounded by the
 * log's size. */
static int log_find(tk_txn *t, uint64_t tid, int64_t *at)
{
    MDB_cursor *cur;
    size_t entries = 0;
    int rc = tk_store_raw_cursor(t, DB_REVLOG, &cur, &entries);
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    for (size_t i = 0; i < entries && mrc == 0; i++) {
        if (v.mv_size != LOG_VAL_SIZE) {
            rc = TK_E_CORRUPT;
            break;
        }
        if (get_le64(v.mv_data) == tid) {
            *at = (int64_t)get_le64((const uint8_t *)v.mv_data + 8);
            break;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = tk_store_err(mrc, "revocation_find");
    }
    mdb_cursor_close(cur);
    return rc;
}

int tk_store_token_revoked_at(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], int64_t *at_out)
{
    tk_token_rec t;
    int rc = tk_store_get_token(txn, hash, &t);
    *at_out = 0;
    if (rc != 0 || t.revoked_at == 0) {
        return rc;
    }
    if (t.tid == 0) {
        *at_out = t.revoked_at;
        return 0;
    }
    /* A record with an id may still carry a time written before it had one
     * revoked in the bitmap (tk_store_get_token reads the bitmap only when
     * the record says nothing). */
    bool in_bitmap = false;
    rc = tk_store_revoked_test(txn, t.tid, &in_bitmap);
    if (rc != 0 || !in_bitmap) {
        *at_out = rc == 0 ? t.revoked_at : 0;
        return rc;
    }
    *at_out = TK_REVOKED_UNTIMED;
    return log_find(txn, t.tid, at_out);
}
