/*
 * The authorization server's records: authorization codes, pending
 * authorization requests, browser sessions and the consent index. Same
 * shape as store.c: decode in place on get, encode into a stack buffer on
 * put. Every secret (code, cookie) is a key only as its SHA-256.
 */
#include <string.h>

#include "tokend/crypto.h"
#include "tokend/log.h"
#include "store_int.h"

static void log_corrupt(const char *db, const uint8_t hash[TK_HASH_LEN])
{
    char ref[16];
    tk_hash_ref(hash, ref);
    tk_log_error("store_corrupt", "dbi=%s key=%s", db, ref);
}

int tk_store_get_code(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_code_rec *out)
{
    MDB_val k = val_of(hash, TK_HASH_LEN), v;
    int rc = tk_store_raw_get(txn, DB_CODES, &k, &v);
    if (rc == 0 && tk_record_decode_code(v.mv_data, v.mv_size, out) != 0) {
        log_corrupt("codes", hash);
        return TK_E_CORRUPT;
    }
    if (rc == 0 && out->id != 0 && out->used_at == 0) {
        rc = tk_store_spent_at(txn, out->id, &out->used_at); /* schema 3 redemption */
    }
    return rc;
}

int tk_store_put_code(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_code_rec *rec,
                      unsigned flags)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    tk_code_rec r = *rec;
    if ((flags & TK_PUT_NEW) && r.id == 0) {
        int rc = tk_store_next_id(txn, &r.id);
        if (rc != 0) {
            return rc;
        }
    }
    if (tk_record_encode_code(&r, buf, sizeof buf, &len) != 0) {
        return TK_E_INVALID;
    }
    return tk_store_raw_put(txn, DB_CODES, hash_key(hash), buf, len, flags & TK_PUT_NEW);
}

int tk_store_get_authreq(tk_txn *txn, tk_slice id, tk_authreq_rec *out)
{
    if (!id_ok(id)) {
        return TK_E_NOTFOUND;
    }
    MDB_val k = val_of(id.p, id.len), v;
    int rc = tk_store_raw_get(txn, DB_AUTHREQS, &k, &v);
    if (rc == 0 && tk_record_decode_authreq(v.mv_data, v.mv_size, out) != 0) {
        tk_store_log_corrupt_id("authreqs", id);
        return TK_E_CORRUPT;
    }
    return rc;
}

int tk_store_put_authreq(tk_txn *txn, tk_slice id, const tk_authreq_rec *rec, unsigned flags)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    if (!id_ok(id) || tk_record_encode_authreq(rec, buf, sizeof buf, &len) != 0) {
        return TK_E_INVALID;
    }
    return tk_store_raw_put(txn, DB_AUTHREQS, id, buf, len, flags & TK_PUT_NEW);
}

int tk_store_get_browser(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_browser_rec *out)
{
    MDB_val k = val_of(hash, TK_HASH_LEN), v;
    int rc = tk_store_raw_get(txn, DB_BROWSERS, &k, &v);
    if (rc == 0 && tk_record_decode_browser(v.mv_data, v.mv_size, out) != 0) {
        log_corrupt("browsers", hash);
        return TK_E_CORRUPT;
    }
    return rc;
}

int tk_store_put_browser(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_browser_rec *rec,
                         unsigned flags)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    if (tk_record_encode_browser(rec, buf, sizeof buf, &len) != 0) {
        return TK_E_INVALID;
    }
    return tk_store_raw_put(txn, DB_BROWSERS, hash_key(hash), buf, len, flags & TK_PUT_NEW);
}

/* Length-prefixed fields: unambiguous whatever bytes they hold. Without an
 * issuer the three of (sub, client, resource) after 'c', the key consents
 * always had; with one ('C'), the issuer first: each IdP chooses its own
 * subs, so one organisation's "alice" never shares a consent with
 * another's. */
void tk_store_consent_key(tk_slice iss, tk_slice sub, tk_slice client, tk_slice resource,
                          uint8_t out[TK_HASH_LEN])
{
    uint8_t buf[1 + 2 + TK_URL_MAX + 3 * (2 + TK_AUD_MAX)];
    const tk_slice parts[4] = {iss, sub, client, resource};
    size_t n = 0;
    buf[n++] = iss.len > 0 ? 'C' : 'c';
    TK_ASSERT(iss.len <= TK_URL_MAX);
    for (size_t i = iss.len > 0 ? 0 : 1; i < 4; i++) {
        TK_ASSERT(i == 0 || parts[i].len <= TK_AUD_MAX);
        buf[n++] = (uint8_t)(parts[i].len >> 8);
        buf[n++] = (uint8_t)parts[i].len;
        if (parts[i].len > 0) {
            memcpy(buf + n, parts[i].p, parts[i].len);
            n += parts[i].len;
        }
    }
    tk_sha256(buf, n, out);
}

int tk_store_get_consent(tk_txn *txn, const uint8_t key[TK_HASH_LEN], tk_slice *grant_id)
{
    MDB_val k = val_of(key, TK_HASH_LEN), v;
    int rc = tk_store_raw_get(txn, DB_CONSENTS, &k, &v);
    if (rc == 0 && (v.mv_size == 0 || v.mv_size > TK_ID_MAX)) {
        log_corrupt("consents", key);
        return TK_E_CORRUPT;
    }
    if (rc == 0) {
        *grant_id = (tk_slice){v.mv_data, v.mv_size};
    }
    return rc;
}

int tk_store_put_consent(tk_txn *txn, const uint8_t key[TK_HASH_LEN], tk_slice grant_id)
{
    if (!id_ok(grant_id)) {
        return TK_E_INVALID;
    }
    return tk_store_raw_put(txn, DB_CONSENTS, hash_key(key), grant_id.p, grant_id.len, 0);
}

static int visit_grant(void *ctx, tk_slice key, const MDB_val *v)
{
    walk_ctx *w = ctx;
    tk_grant_rec rec;
    if (tk_record_decode_grant(v->mv_data, v->mv_size, &rec) != 0) {
        tk_store_log_corrupt_id("grants", key);
        return TK_E_CORRUPT;
    }
    return ((tk_grant_fn)w->fn)(w->arg, key, &rec);
}

int tk_store_each_grant(tk_txn *txn, tk_grant_fn fn, void *arg)
{
    walk_ctx w = {(void *)fn, arg};
    return tk_store_raw_walk(txn, DB_GRANTS, visit_grant, &w);
}
