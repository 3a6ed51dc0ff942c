/*
 * Private to the store: the environment layout (DBI indices), the handle
 * structs, the raw LMDB helpers that store.c and store_events.c share, and
 * how apply.c reaches the op semantics that live in their own files.
 * Nothing outside src/store includes this (it includes lmdb.h).
 */
#ifndef TOKEND_STORE_INT_H
#define TOKEND_STORE_INT_H

#include <lmdb.h>
#include <string.h>

#include "tokend/prefetch.h"
#include "tokend/store.h"

enum db_index {
    DB_TOKENS,
    DB_SESSIONS,
    DB_GRANTS,
    DB_CLIENTS,
    DB_SESSION_TOKENS,
    DB_TOKEN_CHILDREN,
    DB_CLIENT_GRANTS,
    DB_IDP_INDEX,
    DB_SEEN_JTI,
    DB_AUDIT,
    DB_META,
    DB_AGENT_ACCESS,
    DB_CODES,
    DB_AUTHREQS,
    DB_BROWSERS,
    DB_CONSENTS,
    DB_REVOKED,     /* revocation bitmap: tid / bits per value → bits (revoked.c) */
    DB_REVLOG,      /* revocation log: sequence → (tid, at), appended (revoked.c) */
    DB_SSF,         /* SSF transmitter: receivers and their event queues (ssf_queue.c) */
    DB_SPENT,       /* spent codes and rotated refresh tokens: id → time (revoked.c) */
    DB_SESSION_IDS, /* session id → the ids of its tokens (DUPSORT, 8-byte integer duplicates) */
    DB_COUNT
};

/* A read txn's memory of the revocation bitmap values it looked up
 * (revoked.c): slot key % TK_REVCACHE_SLOTS holds the value's address in the
 * map for the snapshot it was read in. Valid while the txn reads that same
 * snapshot (no commit since: its pages cannot have been reused) and the map
 * was not remapped (map_gen); cleared by an explicit read reset. */
typedef struct tk_revcache {
    uint64_t map_gen;
    struct {
        size_t key, snap; /* snap 0: empty */
        const uint8_t *bits;
    } e[TK_REVCACHE_SLOTS];
} tk_revcache;

/* A read txn's memory of the client records it decoded (client_memo.c):
 * slot by a hash of the id, holding the id and the decoded record (whose
 * slices point into the map) for the snapshot it was read in. Valid under
 * the same rule as tk_revcache: the same snapshot (mdb_txn_id) and no remap
 * since (map_gen); cleared by an explicit read reset. */
typedef struct tk_clientmemo_entry {
    size_t snap; /* 0: empty */
    size_t id_len;
    char id[TK_ID_MAX];
    tk_client_rec rec;
} tk_clientmemo_entry;

typedef struct tk_clientmemo {
    uint64_t map_gen;
    tk_clientmemo_entry e[TK_CLIENTMEMO_SLOTS];
} tk_clientmemo;

/* A read txn's walker roots (prefetch.c): the map and the trees the read
 * path descends, as the snapshot it was computed for (mdb_txn_id) sees
 * them; recomputed for another snapshot or after a remap (map_gen). */
typedef struct tk_pfroot {
    size_t snap; /* 0: none */
    uint64_t map_gen;
    bool ok;  /* false: the walker is not used for this snapshot */
    bool big; /* the tokens tree is worth walking (tk_store_prefetch_wanted) */
    tk_pf_map map;
    tk_pf_tree tree[TK_PF_TREES];
} tk_pfroot;

/* A read txn's memory of the token records the walker decoded for this
 * batch (prefetch.c): by the address and length of the value in the map,
 * which mdb_get returns for the same key in the same snapshot. The decode
 * is a pure function of those immutable bytes, so tk_store_get_token takes
 * it instead of decoding again. idx maps a hash of the address to entry + 1
 * (0: none); emptied by every tk_store_prefetch_tokens call. */
#define TK_PFMEMO_INDEX 256
typedef struct tk_pfmemo {
    size_t snap; /* the snapshot the entries were read in; 0: none */
    uint64_t map_gen;
    uint8_t idx[TK_PFMEMO_INDEX];
    struct {
        const char *at;
        size_t len;
        tk_token_rec rec;
    } e[TK_PREFETCH_MAX];
} tk_pfmemo;
_Static_assert(TK_PREFETCH_MAX < 256, "an entry index + 1 fits idx");

struct tk_store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    MDB_dbi main_dbi;      /* the main DBI: the named DBIs' records (prefetch.c) */
    bool absent[DB_COUNT]; /* a late DBI missing from a read-only store */
    bool read_only;
    bool threaded_readers;
    uintptr_t map_base; /* where the data file was mapped at open (0: unknown) */
    uint64_t map_gen;   /* bumped by every remap (tk_store_grow): see tk_revcache */
};

struct tk_txn {
    tk_store *st;
    MDB_txn *txn;
    bool write;
    bool reset;           /* read txn: reset, not yet renewed */
    int failed;           /* write txn: first error that made it unusable */
    uint64_t next_tid;    /* write txn: next token id to assign; 0 = not read yet (revoked.c) */
    bool tid_dirty;       /* write txn: next_tid not yet written back to meta */
    tk_revcache *rcache;  /* read txn: bitmap values seen (revoked.c); NULL in write txns */
    tk_clientmemo *cmemo; /* read txn: client records decoded (client_memo.c); NULL in write txns */
    tk_pfroot pf;         /* read txn: the prefetch walker's roots (prefetch.c) */
    tk_pfmemo *pfmemo;    /* read txn: token records it decoded (prefetch.c); NULL in write txns */
};

static inline bool id_ok(tk_slice id)
{
    return id.len > 0 && id.len <= TK_ID_MAX && id.p != NULL;
}

static inline MDB_val val_of(const void *p, size_t n)
{
    return (MDB_val){.mv_size = n, .mv_data = (void *)p};
}

static inline tk_slice hash_key(const uint8_t hash[TK_HASH_LEN])
{
    return (tk_slice){(const char *)hash, TK_HASH_LEN};
}

/* The key comparison of every DBI without integer keys: exactly LMDB's
 * default order (byte-wise, shorter first on a tie), faster (store.c). */
int tk_store_key_cmp(const MDB_val *a, const MDB_val *b);

/* The token record the walker decoded from the value v that mdb_get just
 * returned in t (prefetch.c): true and *out when it has it. */
bool tk_store_prefetch_decoded(tk_txn *t, const MDB_val *v, tk_token_rec *out);

/* Map an LMDB error to our error space, logging what went wrong (op names it). */
int tk_store_err(int rc, const char *op);
void tk_store_log_corrupt_id(const char *db, tk_slice id);
/* The DBI's name, for logs. */
const char *tk_store_db_name(enum db_index db);

/* mdb_get / mdb_put / a cursor over one DBI, with the txn's sticky failure and
 * the absent-late-DBI rule applied (get: TK_E_NOTFOUND; cursor: TK_E_NOTFOUND,
 * which callers treat as an empty DBI). put maps TK_PUT_* flags. */
int tk_store_raw_get(tk_txn *t, enum db_index db, MDB_val *k, MDB_val *v);
int tk_store_raw_put(tk_txn *t, enum db_index db, tk_slice key, const void *val, size_t len,
                     unsigned flags);
int tk_store_raw_cursor(tk_txn *t, enum db_index db, MDB_cursor **cur, size_t *entries);

/* Every duplicate under key in a DUPSORT index, each checked to be
 * min_len..max_len bytes (else TK_E_CORRUPT, logged) and passed to visit
 * until it returns non-zero. Bounded by the DBI's entry count. */
int tk_store_raw_each_dup(tk_txn *t, enum db_index db, tk_slice key, size_t min_len, size_t max_len,
                          tk_id_fn visit, void *ctx);

/* Walk a whole main DBI: decode each value in visit, which calls w->fn. */
typedef struct walk_ctx {
    void *fn;
    void *arg;
} walk_ctx;
typedef int (*tk_store_visit_fn)(void *ctx, tk_slice key, const MDB_val *v);
int tk_store_raw_walk(tk_txn *t, enum db_index db, tk_store_visit_fn visit, void *ctx);

/* TK_OP_IDP_EVENT (record.h): replay check, replay record, the matching
 * sessions' state, one audit record; all in txn. Same contract as
 * tk_store_apply (op already validated). apply_idp.c */
int tk_store_apply_idp(tk_txn *txn, const tk_op *op, bool *changed);

/* The authorization server's ops (apply_oauth.c): same contract, plus the
 * op's outcome (enum tk_op_outcome) in *outcome. */
int tk_store_apply_oauth(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome);

/* The SSF transmitter's hook (ssf_queue.c): queue ev for every receiver
 * that wants its kind, in this write txn; called by the appliers when a
 * session ends, is suspended or resumed, a token or a grant is revoked.
 * ev's slices may point into the map (they are copied before anything is
 * written). A grant event gets the issuer of its sub here, from the
 * grant's session or consent (none, and no sub, when it cannot be told).
 * One lookup when no receiver is registered. Returns 0,
 * TK_E_CORRUPT, TK_E_FULL, TK_E_STORE. */
int tk_store_ssf_note(tk_txn *txn, const tk_ssf_event_rec *ev);
/* Copy s (at most cap bytes) into buf: what an applier keeps of a record
 * for tk_store_ssf_note across the put that may rewrite the record's page. */
static inline tk_slice tk_store_keep(tk_slice s, char *buf, size_t cap)
{
    TK_ASSERT(s.len <= cap);
    if (s.len > 0) {
        memcpy(buf, s.p, s.len);
    }
    return (tk_slice){s.len > 0 ? buf : NULL, s.len};
}
/* TK_OP_SSF_ACK: delete the event (receiver id, seq) if queued. */
int tk_store_ssf_ack(tk_txn *txn, tk_slice id, uint64_t seq, bool *changed);

/* One session change: terminate (hold 0), or set (SUSPENDED) / lift (ACTIVE)
 * one owner's hold. reason is kept on the session (terminate, suspend) when
 * non-empty; it may point anywhere but into the map. */
typedef struct tk_session_change {
    uint8_t state; /* enum tk_session_state */
    uint8_t hold;  /* enum tk_hold; 0 with TERMINATED */
    tk_slice reason;
    int64_t at;
} tk_session_change;

/* Apply ch to the session sid (apply_session.c): terminated stays so; the
 * session is active only with no hold left. A missing session is a no-op.
 * *changed says whether the record was written. Returns 0, TK_E_CORRUPT,
 * TK_E_FULL, TK_E_STORE. */
int tk_store_session_change(tk_txn *txn, tk_slice sid, const tk_session_change *ch, bool *changed);

/* Token ids and the revocation bitmap (revoked.c; docs/ARCHITECTURE.md §2).
 *
 * token_id: the id tk_store_put_token writes for hash: rec_tid when set, else
 * the stored record's (a rewrite keeps its id; an old record has none: 0),
 * else, for a new key, the next one from the meta counter (written in this
 * txn, so ids follow the order ops are applied in). 0, TK_E_CORRUPT, or a
 * write error.
 * revoked_test: whether tid's bit is set (0 and *revoked), TK_E_CORRUPT, TK_E_STORE.
 * revoke_id: set tid's bit and append (tid, at) to the revocation log; the
 * caller checked that the bit was clear. 0 or a write error. */
int tk_store_token_id(tk_txn *t, const uint8_t hash[TK_HASH_LEN], uint64_t rec_tid, unsigned flags,
                      uint64_t *tid_out);
/* The next id from the meta counter: new codes take theirs from it too.
 * The counter is written back once per txn, by id_flush, which
 * tk_store_commit calls before it commits. next_id: 0, TK_E_CORRUPT,
 * TK_E_FULL, TK_E_STORE; id_flush: 0 or a write error. */
int tk_store_next_id(tk_txn *t, uint64_t *id_out);
int tk_store_id_flush(tk_txn *t);
/* Give back id when it is the last next_id gave (a new key found taken). */
void tk_store_id_unget(tk_txn *t, uint64_t id);

/* Spent ids (schema 3): a code redeemed or a refresh token rotated is
 * recorded as (id → time) in the spent DBI instead of by a rewrite of its
 * record; ids are given in apply order, so the ones spent together sit
 * together at the tree's right edge.
 * spend: record id spent at `at` (the caller found it unspent).
 * spent_at: *at_out the time id was spent, 0 when it was not (or the DBI
 * is absent: a read-only open of an older store). 0, TK_E_CORRUPT, TK_E_STORE. */
int tk_store_spend(tk_txn *t, uint64_t id, int64_t at);
int tk_store_spent_at(tk_txn *t, uint64_t id, int64_t *at_out);
int tk_store_revoked_test(tk_txn *t, uint64_t tid, bool *revoked);
int tk_store_revoke_id(tk_txn *t, uint64_t tid, int64_t at);

/* The read txn's client memo (client_memo.c). find: whether id was decoded
 * in this txn's snapshot (then *out is that record); keep: remember rec,
 * just decoded from this snapshot, for id. Both do nothing in a write txn,
 * a reset one, or one without a memo. */
bool tk_store_client_memo_find(tk_txn *t, tk_slice id, tk_client_rec *out);
void tk_store_client_memo_keep(tk_txn *t, tk_slice id, const tk_client_rec *rec);

/* The match key hash of store.c (tk_store_idp_key), also used for the
 * replay keys of store_events.c: SHA-256 over kind, a 2-byte length of a,
 * a, then b (a and b at most TK_URL_MAX bytes). */
void tk_store_key_hash(uint8_t kind, tk_slice a, tk_slice b, uint8_t out[TK_HASH_LEN]);

#endif
