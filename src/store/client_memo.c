/*
 * The read txn's memo of client records (docs/ARCHITECTURE.md §4, "What a reader remembers").
 *
 * The idea: clients are few and hot. Every introspection reads two client
 * records (the caller's, to authenticate it, and the token's client, for the
 * cascade), and a busy worker reads the same handful thousands of times per
 * snapshot; each read was a B-tree search and a full decode of a record
 * that carries all of its registration metadata. So a read txn remembers,
 * per slot, the last client it decoded: the id, the snapshot it was read in
 * and the decoded record. A hit hands back that record.
 *
 * Why a hit is always what a fresh read would return: the entry is used only
 * while the txn reads the very snapshot it was filled from (mdb_txn_id:
 * every commit makes a new one, and a renewed txn sees the newest), so a
 * client disabled, re-keyed or changed by any commit (this process or
 * another) is read afresh by the first request of the next snapshot. The
 * record's slices point into the map: that snapshot's pages cannot be
 * reused while it is the newest one, and a remap (tk_store_grow, map_gen)
 * empties the memo. Write txns never use it (they see their own changes).
 * Misses, unknown ids and undecodable records are not remembered.
 */
#include <string.h>

#include "store_int.h"

/* The snapshot t reads, or 0 when t may not use the memo (a write txn, a
 * reset one). A remap since the memo was filled empties it first. */
static size_t memo_snap(tk_txn *t)
{
    tk_clientmemo *m = t->cmemo;
    if (m == NULL || t->write || t->reset) {
        return 0;
    }
    if (TK_UNLIKELY(m->map_gen != t->st->map_gen)) {
        memset(m, 0, sizeof(*m));
        m->map_gen = t->st->map_gen;
    }
    return mdb_txn_id(t->txn);
}

/* Ids end in random characters (tkc_ + base64url): the last eight bytes,
 * mixed, pick the slot. */
static tk_clientmemo_entry *slot_of(tk_clientmemo *m, tk_slice id)
{
    uint64_t x = id.len;
    if (id.len >= 8) {
        uint64_t w;
        memcpy(&w, id.p + id.len - 8, sizeof w);
        x ^= w;
    } else {
        for (size_t i = 0; i < id.len; i++) {
            x = x << 8 | (uint8_t)id.p[i];
        }
    }
    x *= 0x9e3779b97f4a7c15ull;
    return &m->e[(x >> 32) % TK_CLIENTMEMO_SLOTS];
}

bool tk_store_client_memo_find(tk_txn *t, tk_slice id, tk_client_rec *out)
{
    TK_ASSERT(id_ok(id));
    size_t snap = memo_snap(t);
    if (snap == 0) {
        return false;
    }
    const tk_clientmemo_entry *e = slot_of(t->cmemo, id);
    if (e->snap != snap || e->id_len != id.len || memcmp(e->id, id.p, id.len) != 0) {
        return false;
    }
    *out = e->rec;
    return true;
}

void tk_store_client_memo_keep(tk_txn *t, tk_slice id, const tk_client_rec *rec)
{
    TK_ASSERT(id_ok(id));
    size_t snap = memo_snap(t);
    if (snap == 0) {
        return;
    }
    tk_clientmemo_entry *e = slot_of(t->cmemo, id);
    e->snap = snap;
    e->id_len = id.len;
    memcpy(e->id, id.p, id.len);
    e->rec = *rec;
}
