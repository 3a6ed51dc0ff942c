/*
 * The committer: the only thread inside tokend that writes to LMDB.
 *
 * Workers submit requests (up to TK_OPS_PER_REQ ops each) through a bounded
 * queue; the committer takes everything queued (up to TK_COMMIT_BATCH_MAX),
 * applies it in one write txn, commits with fsync (group commit), and only
 * then posts each request's result to its worker: a completion list per
 * worker plus an eventfd the worker's ring watches. So a 2xx sent for a
 * completion is always sent after the commit is durable.
 */
#ifndef TOKEND_COMMITTER_H
#define TOKEND_COMMITTER_H

#include "tokend/common.h"
#include "tokend/record.h"
#include "tokend/store.h"

typedef struct tk_committer tk_committer;

typedef struct tk_commit_req {
    unsigned worker; /* which worker to notify */
    uint64_t cookie; /* opaque to the committer: returned with the result */
    unsigned nops;
    tk_op ops[TK_OPS_PER_REQ];
} tk_commit_req;

typedef struct tk_commit_done {
    uint64_t cookie;
    int result;       /* 0 (durable), TK_E_FULL, TK_E_STORE (the whole batch failed,
                         nothing of it is durable); TK_E_INVALID (an op failed
                         tk_op_validate: none of the request was applied) or
                         TK_E_CORRUPT (a target record is undecodable: earlier ops
                         of the request may have been applied) for this request only */
    unsigned changed; /* how many ops changed something */
    uint8_t outcome;  /* the last authorization-server op's enum tk_op_outcome (TK_OUT_NONE
                         for other requests, and when result != 0) */
} tk_commit_done;

/* Free what the request's TK_OP_PUT_NEW ops point to. The committer calls
 * it after applying a request; a worker whose submit failed calls it too. */
void tk_commit_req_release(tk_commit_req *req);

/* Start the thread. queue_cap in [1, TK_COMMIT_QUEUE_MAX]. Returns 0, -errno. */
int tk_committer_start(tk_store *st, unsigned nworkers, unsigned queue_cap, tk_committer **out);

/* Copy req into the queue. Never blocks: TK_E_QUEUEFULL when full. Thread-safe. */
int tk_committer_submit(tk_committer *c, const tk_commit_req *req);

/* The eventfd worker w polls; readable when completions are waiting. */
int tk_committer_event_fd(const tk_committer *c, unsigned worker);

/* Move up to max completions for worker w into out; returns how many. Call
 * after the eventfd fired (read it first), and again while it returns max. */
size_t tk_committer_drain(tk_committer *c, unsigned worker, tk_commit_done *out, size_t max);

/* Statistics for /metrics (relaxed reads; approximate while running). */
typedef struct tk_committer_stats {
    uint64_t batches, requests, ops_changed, failures, queue_full;
    uint64_t batch_hist[8]; /* batch sizes: 1, 2-3, 4-7, 8-15, 16-63, 64-255, 256-1023, 1024+ */
    uint64_t commit_ns_total;
} tk_committer_stats;
void tk_committer_stats_get(const tk_committer *c, tk_committer_stats *out);

/* ---- Map growth ------------------------------------------------------------
 * When a batch fails with TK_E_FULL (the map is full, or another process grew
 * it: MDB_MAP_RESIZED), the committer grows the map (tk_store_grow, doubling
 * up to max) and runs the batch again. LMDB allows that only while no txn of
 * the process is active, so it first pauses every worker: each one, between
 * two batches, resets its read txn and waits at tk_committer_pause_point
 * until the map is grown. A worker that does not arrive within
 * TK_PAUSE_TIMEOUT_MS (shutting down, say) cancels the growth: the batch then
 * fails with TK_E_FULL (503), nothing is remapped under a reader. */

/* Largest map the committer may grow to; 0 (the default) never grows, but a
 * map grown by another process is still adopted. Call before the first
 * submit. */
void tk_committer_set_map_max(tk_committer *c, uint64_t max);
/* True while the committer waits for workers to pause. Any thread; cheap. */
bool tk_committer_pause_wanted(const tk_committer *c);
/* Called by a worker between batches with its read txn reset: if a pause is
 * wanted, wait until the committer resumes (bounded by its timeout). */
void tk_committer_pause_point(tk_committer *c);
/* A thread that reads the store but is no worker (the SSF pusher) brackets
 * each use of its read txn: enter returns false while a pause is wanted
 * (then do not read now), and the map is not grown while any such thread
 * is inside. Keep the bracket short (no network I/O in it). Thread-safe. */
bool tk_committer_read_enter(tk_committer *c);
void tk_committer_read_exit(tk_committer *c);
/* A worker's read txn saw MDB_MAP_RESIZED (TK_E_FULL): grow (adopt the
 * other process's size) even if no write is queued. Thread-safe. */
void tk_committer_ask_grow(tk_committer *c);

/* ---- Cluster mode (src/cluster, docs/ARCHITECTURE.md §10) --------------------
 * With a log set, the committer applies only op-log entries, in stream order:
 * tk_committer_submit hands each worker request to log->forward (which
 * publishes it and remembers who waits), every node's consumer feeds the
 * stream back with tk_committer_submit_entry, and each batch of entries is
 * one write txn that also stores the last entry's sequence
 * (tk_store_log_seq_put), so a crash never applies an entry twice or skips
 * one; an entry at or below the stored sequence is skipped. After the
 * commit, log->claim says whether this node waits for an entry it published
 * (tag != 0); the waiting request gets the apply's result exactly as a local
 * commit's. An entry above the stored sequence + 1 (a gap: entries lost to
 * the stream's retention, or a consumer that skipped) is never applied, nor
 * anything after it, until the missing entries come: log->gap is told. A
 * batch that fails is retried, never dropped (only stop drops it: nothing
 * of it is durable, so the next start reads it again). */
typedef struct tk_committer_log {
    void *ctx;
    /* Worker thread, must not block: take the request (0), or refuse it
     * (TK_E_UNAVAILABLE, TK_E_QUEUEFULL): the worker answers 503. */
    int (*forward)(void *ctx, const tk_commit_req *req);
    /* Committer thread, after the entry's commit: true (with whom to tell)
     * when a request of this node waits for entry `tag`; the wait ends. */
    bool (*claim)(void *ctx, uint64_t tag, unsigned *worker, uint64_t *cookie);
    /* Committer thread, after each durable batch: the last sequence applied
     * and how long the batch took (ns). */
    void (*applied)(void *ctx, uint64_t seq, uint64_t apply_ns);
    /* Committer thread, optional: entries after `want` arrived first (the
     * first of them is `got`); none of them was applied. */
    void (*gap)(void *ctx, uint64_t want, uint64_t got);
} tk_committer_log;

/* Switch to cluster mode. Call once, before the first submit. */
void tk_committer_set_log(tk_committer *c, const tk_committer_log *log);

/* Queue one op-log entry: stream sequence seq (> 0), tag (this node's
 * publish counter, or 0 for another node's entry), the encoded request
 * (tk_commit_req_encode's bytes; the committer takes payload, a malloc'd
 * buffer, and frees it). Blocks while the queue is full (back-pressure on
 * the consumer). 0, or TK_E_QUEUEFULL when stopping (payload freed). */
int tk_committer_submit_entry(tk_committer *c, uint64_t seq, uint64_t tag, uint8_t *payload,
                              size_t len);

/* Post a completion to worker w for a forwarded request whose wait ended
 * without an apply (publish failed or timed out). Any thread. */
void tk_committer_post(tk_committer *c, unsigned worker, const tk_commit_done *d);

/* The op-log entry format: byte 0 the version (1), byte 1 the op count (1 to
 * TK_OPS_PER_REQ), then per op a 2-byte little-endian length and tk_op_encode's
 * bytes. encode: 0, TK_E_INVALID (an op without a wire form, or invalid),
 * TK_E_TOOBIG. decode (strict: every byte accounted for): 0 or TK_E_CORRUPT;
 * out->worker and out->cookie are 0. A decoded TK_OP_PUT_NEW owns a heap
 * record: release it with tk_commit_req_release. */
int tk_commit_req_encode(const tk_commit_req *req, uint8_t *buf, size_t cap, size_t *len);
int tk_commit_req_decode(const uint8_t *buf, size_t len, tk_commit_req *out);

/* Apply everything queued, stop the thread, free. Completions not yet
 * drained are dropped (their connections are gone by then). */
void tk_committer_stop(tk_committer *c);

#endif
