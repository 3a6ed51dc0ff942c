/*
 * Records of what happened, kept beside the token data: per (agent, resource)
 * access counts folded in by forward-auth, and for IdP events the match index
 * (issuer + sid / sub → sessions), the replay records and the audit trail.
 * Built on the raw helpers of store.c (store_int.h); store.c needs nothing
 * from here (the match keys it indexes sessions under live there).
 */
#include <string.h>

#include "store_int.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

/* ---- Agent access counts ------------------------------------------------------------------- */

/* agent_access keys: one byte of client id length, the client id, then the
 * resource identifier; so the pair splits back without ambiguity and the
 * listing groups by agent. */
#define ACCESS_KEY_MAX (1 + TK_ID_MAX + TK_ACCESS_RESOURCE_MAX)
_Static_assert(ACCESS_KEY_MAX <= 511, "agent_access keys fit LMDB's key size");
_Static_assert(TK_ID_MAX <= UINT8_MAX, "client id length fits one byte");

static int access_key(tk_slice client, tk_slice resource, char key[ACCESS_KEY_MAX], tk_slice *out)
{
    if (!id_ok(client) || resource.len == 0 || resource.len > TK_ACCESS_RESOURCE_MAX) {
        return TK_E_INVALID;
    }
    key[0] = (char)(uint8_t)client.len;
    memcpy(key + 1, client.p, client.len);
    memcpy(key + 1 + client.len, resource.p, resource.len);
    *out = (tk_slice){key, 1 + client.len + resource.len};
    return 0;
}

static bool access_split(tk_slice key, tk_slice *client, tk_slice *resource)
{
    if (key.len < 2) {
        return false;
    }
    size_t n = (uint8_t)key.p[0];
    if (n == 0 || 1 + n >= key.len) {
        return false;
    }
    *client = (tk_slice){key.p + 1, n};
    *resource = (tk_slice){key.p + 1 + n, key.len - 1 - n};
    return true;
}

int tk_store_get_agent_access(tk_txn *txn, tk_slice client, tk_slice resource,
                              tk_agent_access_rec *out)
{
    char kb[ACCESS_KEY_MAX];
    tk_slice key;
    if (access_key(client, resource, kb, &key) != 0) {
        return TK_E_NOTFOUND;
    }
    MDB_val k = val_of(key.p, key.len), v;
    int rc = tk_store_raw_get(txn, DB_AGENT_ACCESS, &k, &v);
    if (rc == 0 && tk_record_decode_agent_access(v.mv_data, v.mv_size, out) != 0) {
        tk_store_log_corrupt_id("agent_access", client);
        return TK_E_CORRUPT;
    }
    return rc;
}

int tk_store_put_agent_access(tk_txn *txn, tk_slice client, tk_slice resource,
                              const tk_agent_access_rec *rec)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    char kb[ACCESS_KEY_MAX];
    tk_slice key;
    if (tk_record_encode_agent_access(rec, buf, sizeof(buf), &len) != 0 ||
        access_key(client, resource, kb, &key) != 0) {
        return TK_E_INVALID;
    }
    return tk_store_raw_put(txn, DB_AGENT_ACCESS, key, buf, len, 0);
}

static int visit_agent_access(void *ctx, tk_slice key, const MDB_val *v)
{
    walk_ctx *w = ctx;
    tk_slice client, resource;
    tk_agent_access_rec rec;
    if (!access_split(key, &client, &resource) ||
        tk_record_decode_agent_access(v->mv_data, v->mv_size, &rec) != 0) {
        tk_log_error("store_corrupt", "dbi=agent_access");
        return TK_E_CORRUPT;
    }
    return ((tk_agent_access_fn)w->fn)(w->arg, client, resource, &rec);
}

int tk_store_each_agent_access(tk_txn *txn, tk_agent_access_fn fn, void *arg)
{
    walk_ctx w = {(void *)fn, arg};
    return tk_store_raw_walk(txn, DB_AGENT_ACCESS, visit_agent_access, &w);
}

/* ---- IdP events: match keys, replay records, audit ------------------------------------------- */

void tk_store_replay_key(uint8_t source, tk_slice issuer, tk_slice event_id,
                         uint8_t out[TK_HASH_LEN])
{
    TK_ASSERT(source >= TK_SOURCE_BACKCHANNEL && source <= TK_SOURCE_ADMIN);
    tk_store_key_hash((uint8_t)('0' + source), issuer, event_id, out);
}

int tk_store_each_idp_session(tk_txn *txn, const uint8_t key[TK_HASH_LEN], tk_id_fn fn, void *arg)
{
    return tk_store_raw_each_dup(txn, DB_IDP_INDEX, hash_key(key), 1, TK_ID_MAX, fn, arg);
}

/* seen_jti holds two kinds of keys: 'J' + replay key → until (8 bytes LE),
 * and 'X' + until (8 bytes BE) + replay key → empty, the expiry order that
 * lets pruning find the oldest records without a scan. */
#define SEEN_J_LEN (1 + TK_HASH_LEN)
#define SEEN_X_LEN (1 + 8 + TK_HASH_LEN)

static void be64(uint8_t *p, int64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v = (int64_t)((uint64_t)v >> 8);
    }
}

static int64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return (int64_t)v;
}

int tk_store_seen_get(tk_txn *txn, const uint8_t key[TK_HASH_LEN], int64_t *until)
{
    uint8_t k[SEEN_J_LEN] = {'J'};
    memcpy(k + 1, key, TK_HASH_LEN);
    MDB_val mk = val_of(k, sizeof k), v;
    int rc = tk_store_raw_get(txn, DB_SEEN_JTI, &mk, &v);
    if (rc != 0) {
        return rc;
    }
    if (v.mv_size != 8) {
        tk_log_error("store_corrupt", "dbi=seen_jti error=\"value size\"");
        return TK_E_CORRUPT;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) {
        u = (u << 8) | ((const uint8_t *)v.mv_data)[i];
    }
    *until = (int64_t)u;
    return 0;
}

int tk_store_seen_put(tk_txn *txn, const uint8_t key[TK_HASH_LEN], int64_t until)
{
    if (until < 1 || until > TK_TIME_MAX) {
        return TK_E_INVALID;
    }
    uint8_t k[SEEN_J_LEN] = {'J'}, x[SEEN_X_LEN] = {'X'}, v[8];
    memcpy(k + 1, key, TK_HASH_LEN);
    for (int i = 0; i < 8; i++) {
        v[i] = (uint8_t)((uint64_t)until >> (8 * i));
    }
    be64(x + 1, until);
    memcpy(x + 9, key, TK_HASH_LEN);
    int rc =
        tk_store_raw_put(txn, DB_SEEN_JTI, (tk_slice){(const char *)k, sizeof k}, v, 8, TK_PUT_NEW);
    if (rc == 0) {
        rc = tk_store_raw_put(txn, DB_SEEN_JTI, (tk_slice){(const char *)x, sizeof x}, "", 0, 0);
    }
    return rc;
}

/* Delete one expired pair: the 'J' record first, then the 'X' record under
 * the cursor (LMDB moves tracked cursors when another key is deleted; after
 * its own delete the cursor rests on the next item, which MDB_NEXT returns). */
static int seen_drop(tk_txn *t, MDB_cursor *cur, const uint8_t *xkey)
{
    uint8_t k[SEEN_J_LEN] = {'J'};
    memcpy(k + 1, xkey + 9, TK_HASH_LEN);
    MDB_val mk = val_of(k, sizeof k);
    int rc = mdb_del(t->txn, t->st->dbi[DB_SEEN_JTI], &mk, NULL);
    rc = rc == MDB_NOTFOUND ? 0 : rc;
    if (rc == 0) {
        rc = mdb_cursor_del(cur, 0);
    }
    if (rc != 0) {
        t->failed = tk_store_err(rc, "seen_prune");
        return t->failed;
    }
    return 0;
}

int tk_store_seen_prune(tk_txn *txn, int64_t now, unsigned max, unsigned *removed)
{
    TK_ASSERT(txn->write);
    *removed = 0;
    MDB_cursor *cur;
    size_t entries;
    int rc = tk_store_raw_cursor(txn, DB_SEEN_JTI, &cur, &entries);
    if (rc != 0) {
        return rc;
    }
    uint8_t first = 'X';
    MDB_val k = val_of(&first, 1), v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (unsigned i = 0; i < max && mrc == 0 && rc == 0; i++) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != SEEN_X_LEN || kp[0] != 'X' || get_be64(kp + 1) >= now) {
            break;
        }
        uint8_t xkey[SEEN_X_LEN];
        memcpy(xkey, kp, SEEN_X_LEN); /* the cursor's key dies with the delete */
        rc = seen_drop(txn, cur, xkey);
        *removed += rc == 0 ? 1u : 0u;
        mrc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_NEXT) : mrc;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = tk_store_err(mrc, "seen_prune");
    }
    return rc;
}

/* audit keys: 8-byte big-endian time, then an 8-byte big-endian sequence
 * one above the last record's, so records sort by time and, within a
 * second, by the order they were applied; the same on every node that
 * applies the same ops in the same order. */
#define AUDIT_KEY_LEN 16

static int audit_next_seq(tk_txn *t, uint64_t *seq)
{
    MDB_cursor *cur;
    size_t entries;
    int rc = tk_store_raw_cursor(t, DB_AUDIT, &cur, &entries);
    if (rc != 0) {
        return rc;
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    *seq = 1;
    if (mrc == 0 && k.mv_size == AUDIT_KEY_LEN) {
        *seq = (uint64_t)get_be64((const uint8_t *)k.mv_data + 8) + 1;
    } else if (mrc != 0 && mrc != MDB_NOTFOUND) {
        return tk_store_err(mrc, "audit_last");
    }
    return 0;
}

int tk_store_audit_put(tk_txn *txn, const tk_audit_rec *rec)
{
    uint8_t buf[TK_RECORD_MAX], k[AUDIT_KEY_LEN];
    size_t len;
    int rc = tk_record_encode_audit(rec, buf, sizeof(buf), &len);
    if (rc != 0) {
        return TK_E_INVALID;
    }
    uint64_t seq = 0;
    rc = audit_next_seq(txn, &seq);
    if (rc != 0) {
        return rc;
    }
    be64(k, rec->at);
    be64(k + 8, (int64_t)seq);
    return tk_store_raw_put(txn, DB_AUDIT, (tk_slice){(const char *)k, sizeof k}, buf, len, 0);
}

static int visit_audit(void *ctx, tk_slice key, const MDB_val *v)
{
    walk_ctx *w = ctx;
    tk_audit_rec rec;
    if (key.len != AUDIT_KEY_LEN || tk_record_decode_audit(v->mv_data, v->mv_size, &rec) != 0) {
        tk_log_error("store_corrupt", "dbi=audit");
        return TK_E_CORRUPT;
    }
    return ((tk_audit_fn)w->fn)(w->arg, &rec);
}

int tk_store_each_audit(tk_txn *txn, tk_audit_fn fn, void *arg)
{
    if (txn->st->absent[DB_AUDIT]) {
        return 0;
    }
    walk_ctx w = {(void *)fn, arg};
    return tk_store_raw_walk(txn, DB_AUDIT, visit_audit, &w);
}
