/*
 * The LMDB store: one environment, named DBIs (docs/ARCHITECTURE.md §2), records encoded
 * by record.h. This module is the only code that includes lmdb.h.
 *
 * DBIs: tokens (hash → token), sessions (sid → session), grants (id → grant),
 * clients (id → client), and DUPSORT indices session_ids (sid → token id;
 * session_tokens, sid → token hash, for tokens older than ids), token_children (parent hash → child
 * hash), client_grants (client id → grant id); idp_index (DUPSORT: match key → sid, for IdP
 * events), seen_jti (replay records of IdP events), audit (time-ordered event records),
 * agent_access ((agent, resource) → audit counts, see record.h); revoked
 * (token id / bits per value → the revocation bitmap) and revocations
 * (sequence → token id, time), see tk_token_rec.tid; meta (schema version,
 * the next token id). A read-only open of a store written before idp_index,
 * seen_jti, audit, agent_access, revoked and revocations existed sees them
 * empty.
 *
 * Transactions: a read txn belongs to one thread; workers keep one each and
 * renew it once per batch (tk_store_read_renew). One write txn at a time per
 * environment (LMDB's rule, across processes too: tokenctl may write while
 * tokend runs). Records returned by getters point into the map and are valid
 * until the txn is reset, renewed, committed or aborted.
 */
#ifndef TOKEND_STORE_H
#define TOKEND_STORE_H

#include "tokend/common.h"
#include "tokend/record.h"

typedef struct tk_store tk_store;
typedef struct tk_txn tk_txn;

typedef struct tk_store_opts {
    const char *dir;   /* created (0700) if missing */
    uint64_t map_size; /* 0 = TK_MAP_SIZE_DEFAULT */
    bool read_only;    /* tokenctl show/list/stats */
    /* Other threads of this process hold read txns (tokend's workers): the
     * map is never remapped behind their back. A map grown by another
     * process (MDB_MAP_RESIZED) is then reported as TK_E_FULL by
     * tk_store_write_begin and tk_store_read_renew, and the caller adopts
     * it with tk_store_grow once every reader is paused. */
    bool threaded_readers;
} tk_store_opts;

/* Open (creating the DBIs if needed) and clear stale reader slots left by
 * dead processes (mdb_reader_check). Returns 0, -errno, TK_E_STORE (logged),
 * or TK_E_CORRUPT when the schema version is unknown. */
int tk_store_open(const tk_store_opts *opts, tk_store **out);
void tk_store_close(tk_store *st);

/*
 * Map the used part of the data file into this process's page tables
 * (MADV_POPULATE_READ, or read-ahead on kernels without it), 64 MiB at a
 * time, so the first lookups after start-up do not each take a page fault
 * (measured at 10 M tokens: the fault per first-touched page dominates).
 * Advisory: correctness never depends on it. Run it on its own thread while
 * serving; *stop (may be NULL) is polled between chunks. *bytes_out (may be
 * NULL) gets the bytes populated. Uses the map address found at open (it
 * opens no file itself). Returns 0, -ENOENT (address unknown), -errno (e.g.
 * the map moved while growing: harmless) or TK_E_STORE.
 */
int tk_store_prefault(tk_store *st, const int *stop, uint64_t *bytes_out);

/* Read transactions. begin: 0, TK_E_READERS, TK_E_STORE. renew = reset +
 * renew, so the next reads see every commit made before the call. */
int tk_store_read_begin(tk_store *st, tk_txn **out);
int tk_store_read_renew(tk_txn *txn);
void tk_store_read_reset(tk_txn *txn);
void tk_store_txn_end(tk_txn *txn); /* read: abort; write: abort if not committed */

/* Write transactions. begin: 0, TK_E_STORE, -EROFS (read-only store); a map
 * grown by another process (MDB_MAP_RESIZED) is adopted and begin retried once.
 * commit makes the changes durable (fsync) before returning 0; TK_E_FULL when
 * the map is full, TK_E_STORE otherwise. The txn handle is freed by commit
 * either way: do not call tk_store_txn_end after it. Once a write in the txn
 * failed with TK_E_FULL / TK_E_STORE, every later call on it (commit included)
 * returns that error: abort it with tk_store_txn_end. */
int tk_store_write_begin(tk_store *st, tk_txn **out);
int tk_store_commit(tk_txn *txn);

/* Grow the map: to twice its size (at least what another process already
 * uses), at most max. The caller guarantees that no transaction of this
 * process is active: every read txn reset, no write txn (LMDB's rule for
 * mdb_env_set_mapsize). Returns 0 (logged with the old and new sizes),
 * TK_E_FULL when the map is already max or larger, TK_E_STORE. */
int tk_store_grow(tk_store *st, uint64_t max);
/* Whether tk_store_grow(st, max) would do anything: another process grew
 * the map past ours, or ours is below max. Safe with txns active. */
bool tk_store_growable(tk_store *st, uint64_t max);

/* ---- Prefetching a batch (prefetch.c, docs/ARCHITECTURE.md §4) -------------------
 * Hints only: nothing any read returns depends on them. A read txn that is
 * reset, a write txn, or a store whose format the walker does not recognise
 * makes them do nothing. */

/* The trees the walker descends. */
enum tk_pf_db { TK_PF_TOKENS, TK_PF_GRANTS, TK_PF_SESSIONS, TK_PF_TREES };

/* Start loading the pages that reading these tokens (at most
 * TK_PREFETCH_MAX; more are ignored), and then their grants and sessions,
 * will touch, all walks level by level together so that their cache misses
 * overlap. Returns how many of the tokens the walker found in their leaf
 * (a measure for tests: the real reads decide). Read txn of this thread;
 * no allocation. */
size_t tk_store_prefetch_tokens(tk_txn *txn, const uint8_t (*hashes)[TK_HASH_LEN], size_t n);
/* Whether the walk is worth its cost in this snapshot: the walker is
 * usable and the tokens tree's leaves exceed TK_PREFETCH_AUTO_BYTES. */
bool tk_store_prefetch_wanted(tk_txn *txn);
/* The walker's own lookup of key in db, for tests: 1 and *val (the value
 * bytes in the map) when its walk ends at key's node, 0 when it ends
 * without it, -1 when the walker is not usable here or met a bad page. */
int tk_store_prefetch_find(tk_txn *txn, enum tk_pf_db db, tk_slice key, tk_slice *val);

/* ---- Point reads: 0, TK_E_NOTFOUND, TK_E_CORRUPT (logged), TK_E_STORE ---- */

int tk_store_get_token(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_token_rec *out);
/* When the token was revoked (*at_out, 0 when it is not): the record's
 * revoked_at, or for a token revoked in the bitmap the time in the
 * revocation log, found by a walk from the newest entry (bounded by the
 * log's size: for views, not the hot path; TK_REVOKED_UNTIMED if the log
 * lacks it). 0, TK_E_NOTFOUND, TK_E_CORRUPT, TK_E_STORE. */
int tk_store_token_revoked_at(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], int64_t *at_out);
int tk_store_get_session(tk_txn *txn, tk_slice sid, tk_session_rec *out);
int tk_store_get_grant(tk_txn *txn, tk_slice grant_id, tk_grant_rec *out);
int tk_store_get_client(tk_txn *txn, tk_slice client_id, tk_client_rec *out);

/* ---- Writes (write txn only): 0, TK_E_INVALID, TK_E_FULL, TK_E_STORE;
 * TK_E_EXISTS with TK_PUT_NEW. Ids must be 1..TK_ID_MAX bytes (TK_E_INVALID).
 * With TK_PUT_APPEND a key that does not sort after the last one gives
 * TK_E_INVALID (logged). ---- */

enum tk_put_flags {
    TK_PUT_NEW = 1,      /* fail with TK_E_EXISTS if the key exists */
    TK_PUT_APPEND = 2,   /* keys arrive in ascending order (bulk load) */
    TK_PUT_NO_INDEX = 4, /* tokens: skip the session/children indices */
};

/* Put a token and (unless TK_PUT_NO_INDEX) its index entries: session_ids
 * sid → token id when sid is set (session_tokens sid → hash for a record
 * older than ids), token_children parent → hash when delegated.
 * TK_PUT_APPEND applies to the tokens DBI only (index entries of tokens sorted
 * by hash are not sorted by sid: bulk loads use TK_PUT_NO_INDEX and then
 * tk_store_index_session_token in sid order). _tid: *tid_out gets the
 * token's id (when NULL, not). */
int tk_store_put_token(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_token_rec *rec,
                       unsigned flags);
int tk_store_put_token_tid(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_token_rec *rec,
                           unsigned flags, uint64_t *tid_out);
/* Index entry session_ids sid → token id (not 0); TK_PUT_APPEND for a bulk
 * load in (sid, id) order. */
int tk_store_index_session_token(tk_txn *txn, tk_slice sid, uint64_t tid, unsigned flags);
int tk_store_put_session(tk_txn *txn, tk_slice sid, const tk_session_rec *rec, unsigned flags);
/* Also indexes client_grants client_id → grant id (unless TK_PUT_NO_INDEX). */
int tk_store_put_grant(tk_txn *txn, tk_slice grant_id, const tk_grant_rec *rec, unsigned flags);
int tk_store_put_client(tk_txn *txn, tk_slice client_id, const tk_client_rec *rec, unsigned flags);

/* Apply one idempotent op (record.h). A missing target is not an error (0):
 * revoking an unknown token is a no-op. *changed (may be NULL) says whether
 * anything was written. Transitions that do not apply (anything on a
 * terminated session, setting a hold the session already carries, lifting
 * one it does not, disabling a disabled client, revoking twice) are no-ops
 * too (0, *changed false). Disabling a client bumps its generation, which
 * kills every token issued before for good. Returns 0, TK_E_INVALID (tk_op_validate),
 * TK_E_CORRUPT (target record undecodable), TK_E_FULL, TK_E_STORE. */
int tk_store_apply(tk_txn *txn, const tk_op *op, bool *changed);
/* The same, with the op's outcome (enum tk_op_outcome; TK_OUT_NONE for
 * ops that are not the authorization server's) in *outcome (may be NULL). */
int tk_store_apply_outcome(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome);

/* ---- Authorization server records (store_oauth.c) -------------------------------
 * codes: SHA-256(code) → tk_code_rec; authreqs: request id → tk_authreq_rec;
 * browsers: SHA-256(cookie) → tk_browser_rec; consents: consent key →
 * grant id. Getters as the others (0, TK_E_NOTFOUND, TK_E_CORRUPT,
 * TK_E_STORE); puts as the other writes. A new code (TK_PUT_NEW) gets the
 * next id (tk_code_rec.id); get_code reports a code redeemed through the
 * spent DBI (schema 3) with that entry's time as used_at. */
int tk_store_get_code(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_code_rec *out);
int tk_store_put_code(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_code_rec *rec,
                      unsigned flags);
int tk_store_get_authreq(tk_txn *txn, tk_slice id, tk_authreq_rec *out);
int tk_store_put_authreq(tk_txn *txn, tk_slice id, const tk_authreq_rec *rec, unsigned flags);
int tk_store_get_browser(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_browser_rec *out);
int tk_store_put_browser(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_browser_rec *rec,
                         unsigned flags);
/* Pure: the consent key of (sub, client, resource), each at most
 * TK_AUD_MAX bytes, for a user of IdP issuer iss (the session's; at most
 * TK_URL_MAX bytes, empty for a session without one). */
void tk_store_consent_key(tk_slice iss, tk_slice sub, tk_slice client, tk_slice resource,
                          uint8_t out[TK_HASH_LEN]);
/* *grant_id points into the map. */
int tk_store_get_consent(tk_txn *txn, const uint8_t key[TK_HASH_LEN], tk_slice *grant_id);
int tk_store_put_consent(tk_txn *txn, const uint8_t key[TK_HASH_LEN], tk_slice grant_id);

typedef int (*tk_grant_fn)(void *arg, tk_slice grant_id, const tk_grant_rec *rec);
int tk_store_each_grant(tk_txn *txn, tk_grant_fn fn, void *arg);

/* ---- Iteration (any txn). The callback returns 0 to go on, non-zero to stop
 * (that value is returned). Bounded by the DBI's size. ---- */

typedef int (*tk_session_fn)(void *arg, tk_slice sid, const tk_session_rec *rec);
typedef int (*tk_client_fn)(void *arg, tk_slice client_id, const tk_client_rec *rec);
typedef int (*tk_hash_fn)(void *arg, const uint8_t hash[TK_HASH_LEN]);

int tk_store_each_session(tk_txn *txn, tk_session_fn fn, void *arg);
int tk_store_each_client(tk_txn *txn, tk_client_fn fn, void *arg);
/* How many tokens were issued under sid: its entries in session_ids (token
 * ids) and, for tokens older than ids, in session_tokens (hashes). */
int tk_store_session_token_count(tk_txn *txn, tk_slice sid, uint64_t *n);

/* ---- Agent access audit: key (agent client id, resource identifier); the
 * resource is at most TK_ACCESS_RESOURCE_MAX bytes.
 * get: 0, TK_E_NOTFOUND, TK_E_CORRUPT, TK_E_STORE. put: as the other writes.
 * each: in key order (grouped by agent). ---- */
typedef int (*tk_agent_access_fn)(void *arg, tk_slice client, tk_slice resource,
                                  const tk_agent_access_rec *rec);
int tk_store_get_agent_access(tk_txn *txn, tk_slice client, tk_slice resource,
                              tk_agent_access_rec *out);
int tk_store_put_agent_access(tk_txn *txn, tk_slice client, tk_slice resource,
                              const tk_agent_access_rec *rec);
int tk_store_each_agent_access(tk_txn *txn, tk_agent_access_fn fn, void *arg);
int tk_store_each_child(tk_txn *txn, const uint8_t parent[TK_HASH_LEN], tk_hash_fn fn, void *arg);

/* ---- IdP events ---------------------------------------------------------------
 *
 * Sessions with an issuer are indexed by tk_store_put_session (unless
 * TK_PUT_NO_INDEX) under two match keys in idp_index: (issuer, sub) and, when
 * idp_sid is set, (issuer, idp_sid). Keys are SHA-256 of a tagged,
 * length-prefixed encoding, so any bytes are safe and every key is 32 bytes.
 */
enum tk_idp_key_kind { TK_IDP_KEY_SUB = 'u', TK_IDP_KEY_SID = 's' };

/* Pure: the match key of (issuer, value); issuer and value at most
 * TK_URL_MAX bytes each. */
void tk_store_idp_key(uint8_t kind, tk_slice issuer, tk_slice value, uint8_t out[TK_HASH_LEN]);
/* Pure: the replay key of an event (source, issuer, jti or webhook-id). */
void tk_store_replay_key(uint8_t source, tk_slice issuer, tk_slice event_id,
                         uint8_t out[TK_HASH_LEN]);

/* Every sid indexed under key (at most the index's size). fn's slice points
 * into the map. Returns 0, fn's non-zero value, TK_E_CORRUPT, TK_E_STORE. */
typedef int (*tk_id_fn)(void *arg, tk_slice id);
int tk_store_each_idp_session(tk_txn *txn, const uint8_t key[TK_HASH_LEN], tk_id_fn fn, void *arg);

/* Replay records. get: 0 with *until, TK_E_NOTFOUND, TK_E_CORRUPT, TK_E_STORE.
 * put (write txn): TK_E_EXISTS when the key is known, TK_E_INVALID for an
 * until outside [1, TK_TIME_MAX]. prune deletes up to max records whose
 * until is before now, oldest first; *removed says how many. */
int tk_store_seen_get(tk_txn *txn, const uint8_t key[TK_HASH_LEN], int64_t *until);
int tk_store_seen_put(tk_txn *txn, const uint8_t key[TK_HASH_LEN], int64_t until);
int tk_store_seen_prune(tk_txn *txn, int64_t now, unsigned max, unsigned *removed);

/* Append an audit record, keyed by (rec->at, a sequence one above the last
 * record's): time order, and apply order within a second. Write txn: 0,
 * TK_E_INVALID, TK_E_FULL, TK_E_STORE. each_audit walks them in key order. */
int tk_store_audit_put(tk_txn *txn, const tk_audit_rec *rec);
typedef int (*tk_audit_fn)(void *arg, const tk_audit_rec *rec);
int tk_store_each_audit(tk_txn *txn, tk_audit_fn fn, void *arg);

/* ---- SSF transmitter (ssf_queue.c) ----------------------------------------------
 * The receivers tokend pushes SETs to and, per receiver, the durable queue
 * of events not yet delivered (record.h: tk_ssf_receiver_rec,
 * tk_ssf_event_rec). The op appliers queue events in the write txn of the
 * change (a committed change always has its events queued); TK_OP_SSF_ACK
 * removes one once its receiver answered 2xx. */

/* A receiver id: 1..TK_SSF_ID_MAX bytes of [A-Za-z0-9._-]. Pure. */
bool tk_store_ssf_id_ok(tk_slice id);
/* get: 0, TK_E_NOTFOUND, TK_E_INVALID (bad id), TK_E_CORRUPT, TK_E_STORE. */
int tk_store_ssf_receiver_get(tk_txn *txn, tk_slice id, tk_ssf_receiver_rec *out);
/* Add, or replace the settings of, a receiver (write txn). rec's depth,
 * dropped and overflowed must be 0: a replaced receiver keeps its queue and
 * counters. 0, TK_E_INVALID, TK_E_TOOBIG (TK_SSF_RECEIVERS_MAX registered),
 * TK_E_FULL, TK_E_STORE. */
int tk_store_ssf_receiver_put(tk_txn *txn, tk_slice id, const tk_ssf_receiver_rec *rec);
/* Remove a receiver and its whole queue (write txn); *events_out counts the
 * events dropped. 0, TK_E_NOTFOUND, TK_E_INVALID, TK_E_FULL, TK_E_STORE. */
int tk_store_ssf_receiver_remove(tk_txn *txn, tk_slice id, uint64_t *events_out);
/* Every receiver, in id order (at most TK_SSF_RECEIVERS_MAX). */
typedef int (*tk_ssf_receiver_fn)(void *arg, tk_slice id, const tk_ssf_receiver_rec *rec);
int tk_store_ssf_each_receiver(tk_txn *txn, tk_ssf_receiver_fn fn, void *arg);
/* The first event queued for receiver id with a sequence above after: 0
 * with *seq_out and *out (slices into the map), TK_E_NOTFOUND (nothing
 * queued past after), TK_E_INVALID, TK_E_CORRUPT, TK_E_STORE. */
int tk_store_ssf_next(tk_txn *txn, tk_slice id, uint64_t after, uint64_t *seq_out,
                      tk_ssf_event_rec *out);

typedef struct tk_store_stats {
    uint64_t tokens, sessions, grants, clients, session_tokens, token_children;
    uint64_t map_size, map_used; /* bytes */
    unsigned readers_used, readers_max;
} tk_store_stats;

int tk_store_stats_get(tk_txn *txn, tk_store_stats *out);

/* ---- Cluster mode (store_cluster.c, docs/ARCHITECTURE.md §10) ----------------
 * meta "log_seq": the last op-log (JetStream stream) sequence this store
 * applied, 8 bytes little-endian, written in the same write txn as the
 * changes of that entry, so a crash never applies an entry twice or skips
 * one. get: 0 (*seq = 0 when never written), TK_E_CORRUPT, TK_E_STORE.
 * put (write txn): 0, TK_E_FULL, TK_E_STORE. */
int tk_store_log_seq_get(tk_txn *txn, uint64_t *seq);
int tk_store_log_seq_put(tk_txn *txn, uint64_t seq);
/* meta "cluster": the stream name of the cluster this store belongs to
 * (written when tokend starts in cluster mode). tokenctl refuses to write
 * into such a store: its writes would reach this node only. get: 0 with the
 * name copied into name (cap bytes, NUL-terminated), TK_E_NOTFOUND,
 * TK_E_CORRUPT, TK_E_STORE. put: a write txn of its own; 0 or an error. */
int tk_store_cluster_get(tk_txn *txn, char *name, size_t cap);
int tk_store_cluster_put(tk_store *st, const char *name);
/* A consistent copy of the whole environment (mdb_env_copy2, compacted) into
 * the existing empty folder dir: the snapshot a new node starts from; its
 * log_seq says where to resume. Safe while tokend runs. 0, -errno,
 * TK_E_STORE. */
int tk_store_copy(tk_store *st, const char *dir);

#endif
