/*
 * What cluster mode keeps in the store's meta DBI: the last op-log sequence
 * applied (written by the committer in the same write txn as the entry's
 * changes: the exactly-once rule of docs/ARCHITECTURE.md §10) and the name of
 * the stream the store belongs to (tokenctl refuses local writes into it),
 * plus the consistent copy a new node is bootstrapped from.
 */
#include "store_int.h"

#include "tokend/log.h"

#include <errno.h>
#include <string.h>

#define LOG_SEQ_KEY "log_seq"
#define CLUSTER_KEY "cluster"

int tk_store_log_seq_get(tk_txn *txn, uint64_t *seq)
{
    MDB_val k = val_of(LOG_SEQ_KEY, strlen(LOG_SEQ_KEY)), v;
    int rc = tk_store_raw_get(txn, DB_META, &k, &v);
    *seq = 0;
    if (rc == TK_E_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (v.mv_size != 8) {
        tk_log_error("store_corrupt", "dbi=meta key=log_seq error=\"value size\"");
        return TK_E_CORRUPT;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) {
        u = (u << 8) | ((const uint8_t *)v.mv_data)[i];
    }
    *seq = u;
    return 0;
}

int tk_store_log_seq_put(tk_txn *txn, uint64_t seq)
{
    uint8_t b[8];
    for (unsigned i = 0; i < 8; i++) {
        b[i] = (uint8_t)(seq >> (8 * i));
    }
    return tk_store_raw_put(txn, DB_META, (tk_slice){LOG_SEQ_KEY, strlen(LOG_SEQ_KEY)}, b, sizeof b,
                            0);
}

int tk_store_cluster_get(tk_txn *txn, char *name, size_t cap)
{
    TK_ASSERT(cap > 0);
    MDB_val k = val_of(CLUSTER_KEY, strlen(CLUSTER_KEY)), v;
    int rc = tk_store_raw_get(txn, DB_META, &k, &v);
    if (rc != 0) {
        return rc;
    }
    if (v.mv_size == 0 || v.mv_size >= cap) {
        tk_log_error("store_corrupt", "dbi=meta key=cluster error=\"value size\"");
        return TK_E_CORRUPT;
    }
    memcpy(name, v.mv_data, v.mv_size);
    name[v.mv_size] = '\0';
    return 0;
}

int tk_store_cluster_put(tk_store *st, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TK_ID_MAX) {
        return TK_E_INVALID;
    }
    tk_txn *txn = NULL;
    int rc = tk_store_write_begin(st, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = tk_store_raw_put(txn, DB_META, (tk_slice){CLUSTER_KEY, strlen(CLUSTER_KEY)}, name, n, 0);
    if (rc != 0) {
        tk_store_txn_end(txn);
        return rc;
    }
    return tk_store_commit(txn);
}

int tk_store_copy(tk_store *st, const char *dir)
{
    int rc = mdb_env_copy2(st->env, dir, MDB_CP_COMPACT);
    if (rc > 0) {
        tk_log_error("store_copy", "dir=\"%s\" error=\"%s\"", dir, mdb_strerror(rc));
        return -rc;
    }
    return rc == 0 ? 0 : tk_store_err(rc, "env_copy");
}
