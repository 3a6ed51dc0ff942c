/*
 * The committer thread: group commit of the ops workers submit.
 *
 * Requests wait in a ring of queue_cap slots. Producers hold the mutex only
 * to copy one request into a free slot; the committer takes the slots
 * [head, head + n) as one batch and works on them in place without the lock,
 * because producers never write to a slot before head has moved past it.
 * After the batch's write txn is durable, each result is appended to its
 * worker's completion ring and the worker's eventfd is written once.
 *
 * Back-pressure: at most queue_cap requests are in flight (queued, being
 * applied, or completed but not drained), so neither the request ring nor a
 * completion ring (each queue_cap long) can overflow.
 *
 * A full map is grown in place (committer.h, "Map growth"): the committer
 * pauses every worker outside its read txn, grows, resumes, and runs the
 * failed batch again.
 *
 * Cluster mode (committer.h, "Cluster mode"): the ring holds op-log entries
 * instead of worker requests. Workers' requests go to the log's forward hook
 * (still counted in inflight, so the completion rings cannot overflow); an
 * entry is decoded once into its slot, applied in stream order with the
 * sequence stored in the same txn, and only then is its waiter told.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "tokend/clock.h"
#include "tokend/committer.h"
#include "tokend/log.h"

/* A ring slot: a worker's request, or (cluster mode) an op-log entry. */
typedef struct slot {
    tk_commit_req req; /* entry: decoded from payload on first use */
    uint64_t seq;      /* 0: a local request; else the entry's stream sequence */
    uint64_t tag;      /* entry: this node's publish counter; 0 = another node's */
    uint8_t *payload;  /* entry: the encoded request (owned, freed after apply) */
    size_t len;
    int decoded; /* entry: 0 not yet, 1 decoded, TK_E_CORRUPT undecodable */
} slot;

typedef struct done_ring {
    pthread_mutex_t mu;
    tk_commit_done *slots; /* queue_cap */
    size_t head, count;
    int efd;
} done_ring;

struct tk_committer {
    tk_store *st;
    unsigned nworkers, cap;

    pthread_mutex_t mu; /* guards head, count, stopping */
    pthread_cond_t cv;
    pthread_cond_t space_cv; /* cluster mode: an entry producer waits for a free slot */
    slot *ring;              /* cap slots */
    size_t head, count;
    bool stopping;
    size_t inflight; /* atomic: submitted and not yet drained */

    tk_commit_done *results; /* per batch slot, TK_COMMIT_BATCH_MAX */
    unsigned *workers;       /* per batch slot: whom to notify */
    done_ring *done;         /* nworkers */
    pthread_t thread;

    tk_committer_stats stats; /* atomic, relaxed */

    /* Map growth: the pause protocol (grow_map, tk_committer_pause_point). */
    uint64_t map_max;     /* 0 = never grow */
    bool grow_asked;      /* guarded by mu: a reader saw MDB_MAP_RESIZED */
    pthread_mutex_t pmu;  /* guards paused, pause_epoch */
    pthread_cond_t pcv;   /* both directions: "one more paused", "resumed" */
    bool pause_wanted;    /* atomic: workers poll it once per batch */
    unsigned paused;      /* workers waiting at the pause point */
    unsigned readers;     /* other threads inside a read (tk_committer_read_enter) */
    uint64_t pause_epoch; /* bumped at every resume */

    tk_committer_log log;       /* cluster mode when log.forward != NULL */
    bool *skipped;              /* per batch slot: an entry at or below the stored sequence */
    uint64_t log_seq;           /* committer thread: the sequence the last durable batch stored */
    uint64_t gap_want, gap_got; /* committer thread: the batch's first gap (0: none) */
};

#define STAT_ADD(c, field, n) __atomic_fetch_add(&(c)->stats.field, (n), __ATOMIC_RELAXED)

/* ---- Batch ----------------------------------------------------------------------- */

/* Apply the ops of one request; per-request errors (bad op, corrupt record)
 * stay with that request, store failures end the whole batch. */
static int apply_req(tk_txn *txn, const tk_commit_req *req, unsigned *changed, uint8_t *outcome)
{
    *changed = 0;
    *outcome = TK_OUT_NONE;
    if (req->nops > TK_OPS_PER_REQ) {
        return TK_E_INVALID;
    }
    for (unsigned i = 0; i < req->nops; i++) {
        if (tk_op_validate(&req->ops[i]) != 0) {
            return TK_E_INVALID;
        }
    }
    for (unsigned i = 0; i < req->nops; i++) {
        bool ch = false;
        uint8_t out = TK_OUT_NONE;
        int rc = tk_store_apply_outcome(txn, &req->ops[i], &ch, &out);
        if (rc != 0) {
            return rc;
        }
        *changed += ch ? 1u : 0u;
        *outcome = out != TK_OUT_NONE ? out : *outcome; /* the last AS op's */
    }
    return 0;
}

static bool fatal(int rc)
{
    return rc != 0 && rc != TK_E_INVALID && rc != TK_E_CORRUPT;
}

static unsigned hist_bucket(size_t n)
{
    static const size_t upper[7] = {1, 3, 7, 15, 63, 255, 1023};
    for (unsigned b = 0; b < 7; b++) {
        if (n <= upper[b]) {
            return b;
        }
    }
    return 7;
}

/* ---- Map growth ---------------------------------------------------------------- */

/* Wake every worker (its eventfd) so each reaches its pause point soon. */
static void wake_all(tk_committer *c)
{
    for (unsigned w = 0; w < c->nworkers; w++) {
        uint64_t one = 1;
        if (write(c->done[w].efd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
            TK_ASSERT(errno == EAGAIN); /* counter near 2^64: already awake */
        }
    }
}

/* Pause every worker outside its read txn, grow the map, resume. True when
 * the map grew. Nothing is remapped unless every worker has paused. */
static bool grow_map(tk_committer *c)
{
    if (!tk_store_growable(c->st, c->map_max)) {
        return false; /* at its maximum: no pause for nothing (the batch gets 503) */
    }
    pthread_mutex_lock(&c->pmu);
    c->paused = 0;
    __atomic_store_n(&c->pause_wanted, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->pmu);
    wake_all(c);

    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += TK_PAUSE_TIMEOUT_MS / 1000;
    until.tv_nsec += (long)(TK_PAUSE_TIMEOUT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    uint64_t t0 = tk_mono_ns();
    pthread_mutex_lock(&c->pmu);
    int wr = 0;
    while ((c->paused < c->nworkers || c->readers > 0) && wr != ETIMEDOUT) { /* deadline */
        wr = pthread_cond_timedwait(&c->pcv, &c->pmu, &until);
    }
    bool all = c->paused == c->nworkers && c->readers == 0;
    int rc = all ? tk_store_grow(c->st, c->map_max) : TK_E_FULL;
    __atomic_store_n(&c->pause_wanted, false, __ATOMIC_RELEASE);
    c->pause_epoch++;
    unsigned paused = c->paused;
    pthread_cond_broadcast(&c->pcv);
    pthread_mutex_unlock(&c->pmu);
    if (!all) {
        tk_log_warn("store_grow_skipped", "paused=%u workers=%u", paused, c->nworkers);
    } else {
        tk_log_info("store_pause", "workers=%u us=%llu", paused,
                    (unsigned long long)((tk_mono_ns() - t0) / 1000));
    }
    return rc == 0;
}

void tk_committer_set_map_max(tk_committer *c, uint64_t max)
{
    c->map_max = max;
}

bool tk_committer_pause_wanted(const tk_committer *c)
{
    return __atomic_load_n(&c->pause_wanted, __ATOMIC_ACQUIRE);
}

void tk_committer_pause_point(tk_committer *c)
{
    pthread_mutex_lock(&c->pmu);
    if (__atomic_load_n(&c->pause_wanted, __ATOMIC_RELAXED)) {
        uint64_t epoch = c->pause_epoch;
        c->paused++;
        pthread_cond_broadcast(&c->pcv);
        while (c->pause_epoch == epoch) { /* the committer always resumes (it times out) */
            pthread_cond_wait(&c->pcv, &c->pmu);
        }
    }
    pthread_mutex_unlock(&c->pmu);
}

bool tk_committer_read_enter(tk_committer *c)
{
    pthread_mutex_lock(&c->pmu);
    bool ok = !__atomic_load_n(&c->pause_wanted, __ATOMIC_RELAXED);
    c->readers += ok ? 1 : 0;
    pthread_mutex_unlock(&c->pmu);
    return ok;
}

void tk_committer_read_exit(tk_committer *c)
{
    pthread_mutex_lock(&c->pmu);
    TK_ASSERT(c->readers > 0);
    c->readers--;
    pthread_cond_broadcast(&c->pcv);
    pthread_mutex_unlock(&c->pmu);
}

void tk_committer_ask_grow(tk_committer *c)
{
    pthread_mutex_lock(&c->mu);
    c->grow_asked = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ---- Batches ---------------------------------------------------------------------- */

/* Apply requests ring[head .. head+n) in one write txn and commit; per-request
 * results into c->results. Returns the whole batch's error (0: durable). */
/* Cluster mode: decode an entry once (a retried batch reuses it). An
 * undecodable entry is skipped on every node alike (its sequence still
 * counts), and logged. */
static void decode_entry(slot *s)
{
    if (s->decoded != 0) {
        return;
    }
    int rc = tk_commit_req_decode(s->payload, s->len, &s->req);
    s->decoded = rc == 0 ? 1 : TK_E_CORRUPT;
    if (rc != 0) {
        tk_log_error("cluster_entry_undecodable", "seq=%llu bytes=%zu", (unsigned long long)s->seq,
                     s->len);
    }
}

/* Apply one ring slot: a request, or an entry above the stored sequence. */
static int apply_slot(tk_committer *c, tk_txn *txn, size_t i, slot *s, uint64_t *last)
{
    tk_commit_done *d = &c->results[i];
    d->cookie = s->req.cookie;
    d->changed = 0;
    d->outcome = TK_OUT_NONE;
    c->skipped[i] = false;
    if (s->seq != 0) {
        if (s->seq <= *last) {
            c->skipped[i] = true; /* delivered again (a new consumer): applied already */
            d->result = 0;
            return 0;
        }
        if (s->seq != *last + 1) {
            /* Entries missing before this one: applying it would skip them
             * for good on this node. Not applied; the log is told. */
            c->skipped[i] = true;
            d->result = TK_E_UNAVAILABLE;
            c->gap_want = c->gap_want == 0 ? *last + 1 : c->gap_want;
            c->gap_got = c->gap_got == 0 ? s->seq : c->gap_got;
            return 0;
        }
        *last = s->seq;
        if (s->decoded < 0) {
            d->result = s->decoded;
            return 0;
        }
    }
    d->result = apply_req(txn, &s->req, &d->changed, &d->outcome);
    return fatal(d->result) ? d->result : 0;
}

static int apply_batch(tk_committer *c, size_t head, size_t n)
{
    tk_txn *txn = NULL;
    uint64_t first = 0, last = 0;
    c->gap_want = c->gap_got = 0;
    int rc = tk_store_write_begin(c->st, &txn);
    if (rc == 0 && c->log.forward != NULL) {
        rc = tk_store_log_seq_get(txn, &first);
        last = first;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = apply_slot(c, txn, i, &c->ring[(head + i) % c->cap], &last);
    }
    if (rc == 0 && last > first) {
        rc = tk_store_log_seq_put(txn, last); /* in the same txn as the entries' changes */
    }
    if (rc == 0) {
        rc = tk_store_commit(txn);
        c->log_seq = rc == 0 && last > c->log_seq ? last : c->log_seq;
    } else if (txn != NULL) {
        tk_store_txn_end(txn);
    }
    return rc;
}

/* One batch; a full map is grown and the batch run again. Returns the
 * batch's error (0: durable). */
static int run_batch(tk_committer *c, size_t head, size_t n)
{
    uint64_t t0 = tk_mono_ns();
    for (size_t i = 0; i < n; i++) {
        slot *s = &c->ring[(head + i) % c->cap];
        if (s->seq != 0) {
            decode_entry(s);
        }
    }
    int rc = apply_batch(c, head, n);
    for (unsigned g = 0; rc == TK_E_FULL && g < TK_GROW_TRIES && grow_map(c); g++) {
        rc = apply_batch(c, head, n);
    }
    uint64_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        tk_commit_done *d = &c->results[i];
        d->cookie = c->ring[(head + i) % c->cap].req.cookie;
        c->workers[i] = c->ring[(head + i) % c->cap].req.worker;
        if (rc != 0) {
            /* Nothing of the batch is durable: nobody gets a 0. */
            d->result = rc;
            d->changed = 0;
            d->outcome = TK_OUT_NONE;
        }
        changed += d->changed;
    }
    /* Counted before any completion is visible, so a worker that got its
     * result also sees it in the statistics. */
    STAT_ADD(c, batches, 1);
    STAT_ADD(c, requests, n);
    STAT_ADD(c, batch_hist[hist_bucket(n)], 1);
    STAT_ADD(c, commit_ns_total, tk_mono_ns() - t0);
    STAT_ADD(c, ops_changed, changed);
    STAT_ADD(c, failures, rc != 0 ? 1u : 0u);
    return rc;
}

/* Hand each result to its worker, then wake each worker that got one. Runs
 * after the batch's ring slots were released: a drained completion lets its
 * worker submit again at once, so the slot must already be free. */
static void push_done(tk_committer *c, unsigned w, const tk_commit_done *d)
{
    TK_ASSERT(w < c->nworkers);
    done_ring *dr = &c->done[w];
    pthread_mutex_lock(&dr->mu);
    TK_ASSERT(dr->count < c->cap);
    dr->slots[(dr->head + dr->count) % c->cap] = *d;
    dr->count++;
    pthread_mutex_unlock(&dr->mu);
}

static void wake_one(tk_committer *c, unsigned w)
{
    uint64_t one = 1;
    if (write(c->done[w].efd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
        /* EAGAIN only when the counter is near 2^64: the worker is already woken. */
        TK_ASSERT(errno == EAGAIN);
    }
}

static void post_results(tk_committer *c, size_t n)
{
    bool wake[TK_WORKERS_MAX] = {false};
    for (size_t i = 0; i < n; i++) {
        unsigned w = c->workers[i];
        if (w == UINT32_MAX) {
            continue; /* an entry nobody on this node waits for */
        }
        push_done(c, w, &c->results[i]);
        wake[w] = true;
    }
    for (unsigned w = 0; w < c->nworkers; w++) {
        if (wake[w]) {
            wake_one(c, w);
        }
    }
}

/* Cluster mode, after a durable batch (ring slots still held): whom to tell.
 * Only entries this node published and still waits for (claim) get a
 * completion; c->workers[i] = UINT32_MAX for the rest. */
static void claim_results(tk_committer *c, size_t head, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const slot *s = &c->ring[(head + i) % c->cap];
        unsigned w = UINT32_MAX;
        uint64_t cookie = 0;
        if (!c->skipped[i] && s->tag != 0 && c->log.claim(c->log.ctx, s->tag, &w, &cookie)) {
            c->results[i].cookie = cookie;
        } else {
            w = UINT32_MAX;
        }
        c->workers[i] = w;
    }
}

/* ---- Thread ------------------------------------------------------------------------ */

static bool stopping_now(tk_committer *c)
{
    pthread_mutex_lock(&c->mu);
    bool s = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static void release_slot(slot *s)
{
    if (s->seq == 0 || s->decoded == 1) {
        tk_commit_req_release(&s->req);
    }
    free(s->payload);
    s->seq = 0;
    s->tag = 0;
    s->payload = NULL;
    s->len = 0;
    s->decoded = 0;
}

static void *committer_main(void *arg)
{
    tk_committer *c = arg;
    /* Event loop: runs until stop is asked and the queue is empty. */
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (c->count == 0 && !c->stopping && !c->grow_asked) {
            pthread_cond_wait(&c->cv, &c->mu);
        }
        size_t head = c->head;
        size_t n = c->count < TK_COMMIT_BATCH_MAX ? c->count : TK_COMMIT_BATCH_MAX;
        bool stop = c->stopping && n == 0;
        bool grow = c->grow_asked && n == 0;
        c->grow_asked = false;
        pthread_mutex_unlock(&c->mu);
        if (stop) {
            return NULL;
        }
        if (grow) {
            grow_map(c); /* adopt a map another process grew; readers retry */
            continue;
        }
        uint64_t t0 = tk_mono_ns();
        int rc = run_batch(c, head, n);
        bool log = c->log.forward != NULL;
        if (log && rc != 0 && !stopping_now(c)) {
            /* An entry is never dropped: the same batch again, later. */
            tk_log_error("cluster_apply_failed", "entries=%zu err=%s retry_ms=%d", n,
                         tk_strerror(rc), TK_CLUSTER_RETRY_MS);
            struct timespec ts = {0, TK_CLUSTER_RETRY_MS * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (log && rc == 0) {
            claim_results(c, head, n);
        } else if (log) {
            for (size_t i = 0; i < n; i++) {
                c->workers[i] = UINT32_MAX; /* stopping: nothing of it is durable */
            }
        }
        for (size_t i = 0; i < n; i++) {
            release_slot(&c->ring[(head + i) % c->cap]);
        }
        /* Results are copied out: producers may reuse the slots. */
        pthread_mutex_lock(&c->mu);
        c->head = (c->head + n) % c->cap;
        c->count -= n;
        pthread_cond_broadcast(&c->space_cv);
        pthread_mutex_unlock(&c->mu);
        post_results(c, n);
        if (log && rc == 0 && c->log.applied != NULL) {
            c->log.applied(c->log.ctx, c->log_seq, tk_mono_ns() - t0);
        }
        if (log && rc == 0 && c->gap_want != 0 && c->log.gap != NULL) {
            c->log.gap(c->log.ctx, c->gap_want, c->gap_got);
        }
    }
}

/* ---- Public API ----------------------------------------------------------------------- */

void tk_commit_req_release(tk_commit_req *req)
{
    for (unsigned i = 0; i < req->nops && i < TK_OPS_PER_REQ; i++) {
        tk_op_release(&req->ops[i]);
    }
}

static void free_committer(tk_committer *c)
{
    for (unsigned w = 0; c->done != NULL && w < c->nworkers; w++) {
        if (c->done[w].efd >= 0) {
            close(c->done[w].efd);
        }
        pthread_mutex_destroy(&c->done[w].mu);
        free(c->done[w].slots);
    }
    free(c->done);
    free(c->results);
    free(c->workers);
    free(c->skipped);
    free(c->ring);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->space_cv);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->pcv);
    pthread_mutex_destroy(&c->pmu);
    free(c);
}

static int init_done(tk_committer *c)
{
    c->done = calloc(c->nworkers, sizeof(*c->done));
    if (c->done == NULL) {
        return -ENOMEM;
    }
    for (unsigned w = 0; w < c->nworkers; w++) {
        c->done[w].efd = -1;
        pthread_mutex_init(&c->done[w].mu, NULL);
    }
    for (unsigned w = 0; w < c->nworkers; w++) {
        c->done[w].slots = calloc(c->cap, sizeof(tk_commit_done));
        if (c->done[w].slots == NULL) {
            return -ENOMEM;
        }
        c->done[w].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (c->done[w].efd < 0) {
            return -errno;
        }
    }
    return 0;
}

int tk_committer_start(tk_store *st, unsigned nworkers, unsigned queue_cap, tk_committer **out)
{
    if (st == NULL || nworkers == 0 || nworkers > TK_WORKERS_MAX || queue_cap == 0 ||
        queue_cap > TK_COMMIT_QUEUE_MAX) {
        return -EINVAL;
    }
    tk_committer *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return -ENOMEM;
    }
    c->st = st;
    c->nworkers = nworkers;
    c->cap = queue_cap;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->space_cv, NULL);
    pthread_mutex_init(&c->pmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the pause deadline */
    pthread_cond_init(&c->pcv, &ca);
    pthread_condattr_destroy(&ca);
    c->ring = calloc(queue_cap, sizeof(*c->ring));
    c->results = calloc(TK_COMMIT_BATCH_MAX, sizeof(*c->results));
    c->workers = calloc(TK_COMMIT_BATCH_MAX, sizeof(*c->workers));
    c->skipped = calloc(TK_COMMIT_BATCH_MAX, sizeof(*c->skipped));
    bool oom = c->ring == NULL || c->results == NULL || c->workers == NULL || c->skipped == NULL;
    int rc = oom ? -ENOMEM : init_done(c);
    if (rc == 0) {
        rc = -pthread_create(&c->thread, NULL, committer_main, c);
    }
    if (rc != 0) {
        free_committer(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Cluster mode: hand the request to the log; its completion comes from
 * claim (after the apply) or tk_committer_post (the publish failed). */
static int forward(tk_committer *c, const tk_commit_req *req)
{
    pthread_mutex_lock(&c->mu);
    bool refuse = c->stopping || __atomic_load_n(&c->inflight, __ATOMIC_ACQUIRE) >= c->cap;
    if (!refuse) {
        __atomic_fetch_add(&c->inflight, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&c->mu);
    if (refuse) {
        STAT_ADD(c, queue_full, 1);
        return TK_E_QUEUEFULL;
    }
    int rc = c->log.forward(c->log.ctx, req);
    if (rc != 0) {
        __atomic_fetch_sub(&c->inflight, 1, __ATOMIC_RELEASE);
        return rc;
    }
    /* The entry carries the records now; the caller's request is spent. */
    for (unsigned i = 0; i < req->nops; i++) {
        if (req->ops[i].type == TK_OP_PUT_NEW) {
            free((void *)req->ops[i].put_new.rec);
        }
    }
    return 0;
}

int tk_committer_submit(tk_committer *c, const tk_commit_req *req)
{
    TK_ASSERT(req->worker < c->nworkers && req->nops <= TK_OPS_PER_REQ);
    if (TK_UNLIKELY(c->log.forward != NULL)) {
        return forward(c, req);
    }
    pthread_mutex_lock(&c->mu);
    if (c->stopping || __atomic_load_n(&c->inflight, __ATOMIC_ACQUIRE) >= c->cap) {
        pthread_mutex_unlock(&c->mu);
        STAT_ADD(c, queue_full, 1);
        return TK_E_QUEUEFULL;
    }
    TK_ASSERT(c->count < c->cap);
    slot *s = &c->ring[(c->head + c->count) % c->cap];
    memcpy(&s->req, req, sizeof(*req));
    s->seq = 0;
    c->count++;
    __atomic_fetch_add(&c->inflight, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void tk_committer_set_log(tk_committer *c, const tk_committer_log *log)
{
    TK_ASSERT(log->forward != NULL && log->claim != NULL);
    pthread_mutex_lock(&c->mu);
    TK_ASSERT(c->count == 0);
    c->log = *log;
    pthread_mutex_unlock(&c->mu);
}

int tk_committer_submit_entry(tk_committer *c, uint64_t seq, uint64_t tag, uint8_t *payload,
                              size_t len)
{
    TK_ASSERT(seq > 0 && c->log.forward != NULL);
    pthread_mutex_lock(&c->mu);
    while (c->count >= c->cap && !c->stopping) { /* bounded: the committer keeps draining */
        pthread_cond_wait(&c->space_cv, &c->mu);
    }
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        free(payload);
        return TK_E_QUEUEFULL;
    }
    slot *s = &c->ring[(c->head + c->count) % c->cap];
    s->seq = seq;
    s->tag = tag;
    s->payload = payload;
    s->len = len;
    s->decoded = 0;
    s->req.nops = 0;
    c->count++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void tk_committer_post(tk_committer *c, unsigned worker, const tk_commit_done *d)
{
    push_done(c, worker, d);
    wake_one(c, worker);
}

/* ---- Op-log entry format ------------------------------------------------------------- */

#define ENTRY_VERSION 1

int tk_commit_req_encode(const tk_commit_req *req, uint8_t *buf, size_t cap, size_t *len)
{
    if (req->nops == 0 || req->nops > TK_OPS_PER_REQ) {
        return TK_E_INVALID;
    }
    if (cap < 2) {
        return TK_E_TOOBIG;
    }
    buf[0] = ENTRY_VERSION;
    buf[1] = (uint8_t)req->nops;
    size_t at = 2;
    for (unsigned i = 0; i < req->nops; i++) {
        if (cap - at < 2) {
            return TK_E_TOOBIG;
        }
        size_t n = 0;
        int rc = tk_op_encode(&req->ops[i], buf + at + 2, cap - at - 2, &n);
        if (rc != 0) {
            return rc;
        }
        TK_ASSERT(n <= UINT16_MAX);
        buf[at] = (uint8_t)(n & 0xff);
        buf[at + 1] = (uint8_t)(n >> 8);
        at += 2 + n;
    }
    *len = at;
    return 0;
}

int tk_commit_req_decode(const uint8_t *buf, size_t len, tk_commit_req *out)
{
    out->worker = 0;
    out->cookie = 0;
    out->nops = 0;
    if (len < 2 || buf[0] != ENTRY_VERSION || buf[1] == 0 || buf[1] > TK_OPS_PER_REQ) {
        return TK_E_CORRUPT;
    }
    unsigned nops = buf[1];
    size_t at = 2;
    for (unsigned i = 0; i < nops; i++) {
        bool room = len - at >= 2; /* at <= len: the length field fits */
        size_t n = room ? (size_t)buf[at] | (size_t)buf[at + 1] << 8 : 0;
        if (!room || n > len - at - 2 || tk_op_decode(buf + at + 2, n, &out->ops[i]) != 0) {
            tk_commit_req_release(out);
            out->nops = 0;
            return TK_E_CORRUPT;
        }
        out->nops = i + 1;
        at += 2 + n;
    }
    if (at != len) {
        tk_commit_req_release(out);
        out->nops = 0;
        return TK_E_CORRUPT;
    }
    return 0;
}

int tk_committer_event_fd(const tk_committer *c, unsigned worker)
{
    TK_ASSERT(worker < c->nworkers);
    return c->done[worker].efd;
}

size_t tk_committer_drain(tk_committer *c, unsigned worker, tk_commit_done *out, size_t max)
{
    TK_ASSERT(worker < c->nworkers);
    done_ring *dr = &c->done[worker];
    pthread_mutex_lock(&dr->mu);
    size_t n = dr->count < max ? dr->count : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = dr->slots[(dr->head + i) % c->cap];
    }
    dr->head = (dr->head + n) % c->cap;
    dr->count -= n;
    pthread_mutex_unlock(&dr->mu);
    __atomic_fetch_sub(&c->inflight, n, __ATOMIC_RELEASE);
    return n;
}

void tk_committer_stats_get(const tk_committer *c, tk_committer_stats *out)
{
    const uint64_t *src = (const uint64_t *)&c->stats;
    uint64_t *dst = (uint64_t *)out;
    _Static_assert(sizeof(tk_committer_stats) % sizeof(uint64_t) == 0, "stats are all u64");
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) {
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
}

void tk_committer_stop(tk_committer *c)
{
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->cv);
    pthread_cond_broadcast(&c->space_cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    free_committer(c);
}
