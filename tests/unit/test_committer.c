/*
 * Committer tests: several threads submit revocations concurrently and each
 * waits on its eventfd; every completion must arrive exactly once with result
 * 0, batching must actually group requests, and after a reopen every token is
 * revoked. Also: back-pressure with a tiny queue, stop applying what is
 * queued, and a bad request failing alone.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "store_fixture.h"

#define THREADS    4
#define PER_THREAD 2000

/* ---- Concurrency ------------------------------------------------------------------- */

typedef struct worker {
    tk_committer *c;
    unsigned id;
    unsigned seen[PER_THREAD];
    unsigned got, bad, wakeups, retries;
} worker;

static void drain_all(worker *w)
{
    tk_commit_done d[64];
    for (int guard = 0; guard < 1000000; guard++) {
        size_t n = tk_committer_drain(w->c, w->id, d, TK_ARRAY_LEN(d));
        for (size_t i = 0; i < n; i++) {
            unsigned t = (unsigned)(d[i].cookie >> 32), k = (unsigned)d[i].cookie;
            if (t != w->id || k >= PER_THREAD || d[i].result != 0 || d[i].changed != 1) {
                w->bad++;
                continue;
            }
            w->seen[k]++;
            w->got++;
        }
        if (n < TK_ARRAY_LEN(d)) {
            return;
        }
    }
}

/* Wait for the eventfd (bounded), consume it, drain. */
static void wait_and_drain(worker *w, int timeout_ms)
{
    struct pollfd p = {.fd = tk_committer_event_fd(w->c, w->id), .events = POLLIN};
    if (poll(&p, 1, timeout_ms) == 1) {
        uint64_t v;
        if (read(p.fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
            w->wakeups++;
        }
    }
    drain_all(w);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (unsigned k = 0; k < PER_THREAD; k++) {
        unsigned token = w->id * PER_THREAD + k;
        tk_commit_req r = revoke_req(w->id, token, (uint64_t)w->id << 32 | k);
        int rc;
        for (int tries = 0; (rc = tk_committer_submit(w->c, &r)) == TK_E_QUEUEFULL; tries++) {
            TK_ASSERT(tries < 100000);
            w->retries++;
            wait_and_drain(w, 10);
        }
        TK_ASSERT(rc == 0);
        if (k % 64 == 63) {
            wait_and_drain(w, 0);
        }
    }
    for (int i = 0; i < 1000 && w->got + w->bad < PER_THREAD; i++) {
        wait_and_drain(w, 100);
    }
    return NULL;
}

static void test_concurrent_revocations(void)
{
    make_dir("tk_commit_");
    tk_store *st = open_store(64 << 20);
    load_tokens(st, THREADS * PER_THREAD);
    tk_committer *c;
    CHECK_EQ_INT(tk_committer_start(st, THREADS, 1024, &c), 0);
    static worker ws[THREADS];
    pthread_t th[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        ws[i].c = c;
        ws[i].id = i;
        TK_ASSERT(pthread_create(&th[i], NULL, worker_main, &ws[i]) == 0);
    }
    unsigned wakeups = 0, retries = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(ws[i].got, PER_THREAD);
        CHECK_EQ_INT(ws[i].bad, 0);
        CHECK(ws[i].wakeups > 0);
        unsigned once = 0;
        for (unsigned k = 0; k < PER_THREAD; k++) {
            once += ws[i].seen[k] == 1;
        }
        CHECK_EQ_INT(once, PER_THREAD);
        wakeups += ws[i].wakeups;
        retries += ws[i].retries;
    }
    tk_committer_stats s;
    tk_committer_stats_get(c, &s);
    printf("committer: %" PRIu64 " requests in %" PRIu64 " batches (%.1f per batch), "
           "%u wakeups, %u queue-full retries, %.1f ms in write txns\n",
           s.requests, s.batches, (double)s.requests / (double)(s.batches ? s.batches : 1), wakeups,
           retries, (double)s.commit_ns_total / 1e6);
    CHECK_EQ_INT(s.requests, THREADS * PER_THREAD);
    CHECK(s.batches < s.requests);
    CHECK_EQ_INT(s.ops_changed, THREADS * PER_THREAD);
    CHECK_EQ_INT(s.failures, 0);
    uint64_t hist = 0;
    for (int i = 0; i < 8; i++) {
        hist += s.batch_hist[i];
    }
    CHECK_EQ_INT(hist, s.batches);
    tk_committer_stop(c);
    tk_store_close(st);

    /* Durable: a fresh environment sees every revocation. */
    st = open_store(64 << 20);
    tk_txn *r;
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    unsigned revoked = 0;
    for (unsigned i = 0; i < THREADS * PER_THREAD; i++) {
        uint8_t h[TK_HASH_LEN];
        tk_token_rec t;
        hash_of(i, h);
        int64_t at = 0;
        /* Every one revoked; the time (a walk of the log) checked for a sample. */
        if (tk_store_get_token(r, h, &t) == 0 && t.revoked_at != 0 &&
            (i % 97 != 0 ||
             (tk_store_token_revoked_at(r, h, &at) == 0 && at == 1000 + (int64_t)i))) {
            revoked++;
        }
    }
    CHECK_EQ_INT(revoked, THREADS * PER_THREAD);
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

/* ---- Back-pressure, stop, bad requests ------------------------------------------------ */

static void test_queue_full_and_stop(void)
{
    make_dir("tk_commit_");
    tk_store *st = open_store(64 << 20);
    load_tokens(st, 8);
    tk_committer *c;
    CHECK_EQ_INT(tk_committer_start(st, 1, 2, &c), 0);
    tk_commit_req r0 = revoke_req(0, 0, 0), r1 = revoke_req(0, 1, 1), r2 = revoke_req(0, 2, 2);
    CHECK_EQ_INT(tk_committer_submit(c, &r0), 0);
    CHECK_EQ_INT(tk_committer_submit(c, &r1), 0);
    /* Two in flight until drained, whatever the committer has done meanwhile. */
    CHECK_EQ_INT(tk_committer_submit(c, &r2), TK_E_QUEUEFULL);
    tk_commit_done d[4];
    size_t got = 0;
    for (int i = 0; i < 500 && got < 2; i++) {
        struct pollfd p = {.fd = tk_committer_event_fd(c, 0), .events = POLLIN};
        uint64_t v;
        if (poll(&p, 1, 10) == 1) {
            CHECK_EQ_INT(read(p.fd, &v, sizeof(v)), sizeof(v));
        }
        got += tk_committer_drain(c, 0, d + got, 4 - got);
    }
    CHECK_EQ_INT(got, 2);
    CHECK_EQ_INT(d[0].cookie, 0); /* submission order */
    CHECK_EQ_INT(d[1].cookie, 1);
    CHECK_EQ_INT(d[0].result + d[1].result, 0);
    CHECK_EQ_INT(tk_committer_submit(c, &r2), 0);
    /* A request with an invalid op fails alone; stop applies what is queued. */
    tk_commit_req bad = revoke_req(0, 3, 3);
    bad.ops[0].type = 0;
    tk_committer_stats s;
    tk_committer_stats_get(c, &s);
    CHECK_EQ_INT(s.queue_full, 1);
    for (int i = 0; i < 500 && tk_committer_submit(c, &bad) == TK_E_QUEUEFULL; i++) {
        usleep(1000);
    }
    tk_committer_stop(c);
    tk_store_close(st);

    st = open_store(64 << 20);
    tk_txn *r;
    tk_token_rec t;
    uint8_t h[TK_HASH_LEN];
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    for (unsigned i = 0; i < 4; i++) {
        hash_of(i, h);
        CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
        int64_t at = -1;
        CHECK_EQ_INT(tk_store_token_revoked_at(r, h, &at), 0);
        CHECK_EQ_INT(at, i < 3 ? 1000 + i : 0);
    }
    tk_store_txn_end(r);
    tk_store_close(st);
    remove_dir();
}

static void test_bad_request_alone(void)
{
    make_dir("tk_commit_");
    tk_store *st = open_store(64 << 20);
    load_tokens(st, 4);
    tk_committer *c;
    CHECK_EQ_INT(tk_committer_start(st, 2, 16, &c), 0);
    tk_commit_req good = revoke_req(1, 0, 10), bad = revoke_req(0, 1, 11);
    bad.nops = 2;
    bad.ops[1] = bad.ops[0];
    bad.ops[1].type = TK_OP_TYPE_LAST + 1; /* invalid: nothing of this request may apply */
    tk_commit_req twice = revoke_req(1, 2, 12);
    twice.nops = 2;
    twice.ops[1] = twice.ops[0]; /* the second op finds it already revoked */
    CHECK_EQ_INT(tk_committer_submit(c, &bad), 0);
    CHECK_EQ_INT(tk_committer_submit(c, &good), 0);
    CHECK_EQ_INT(tk_committer_submit(c, &twice), 0);
    CHECK_EQ_INT(tk_committer_submit(c, &(tk_commit_req){.worker = 1, .cookie = 13}), 0);
    tk_commit_done d0[4], d1[4];
    size_t n0 = 0, n1 = 0;
    for (int i = 0; i < 2500 && (n0 < 1 || n1 < 3); i++) {
        usleep(2000);
        n0 += tk_committer_drain(c, 0, d0 + n0, 4 - n0);
        n1 += tk_committer_drain(c, 1, d1 + n1, 4 - n1);
    }
    CHECK_EQ_INT(n0, 1);
    CHECK_EQ_INT(n1, 3);
    CHECK_EQ_INT(d0[0].cookie, 11);
    CHECK_EQ_INT(d0[0].result, TK_E_INVALID);
    CHECK_EQ_INT(d1[0].cookie, 10);
    CHECK_EQ_INT(d1[0].result, 0);
    CHECK_EQ_INT(d1[0].changed, 1);
    CHECK_EQ_INT(d1[1].cookie, 12);
    CHECK_EQ_INT(d1[1].changed, 1);
    CHECK_EQ_INT(d1[2].cookie, 13); /* an empty request commits trivially */
    CHECK_EQ_INT(d1[2].result, 0);
    CHECK_EQ_INT(d1[2].changed, 0);
    tk_committer_stop(c);

    tk_txn *r;
    tk_token_rec t;
    uint8_t h[TK_HASH_LEN];
    CHECK_EQ_INT(tk_store_read_begin(st, &r), 0);
    hash_of(1, h);
    CHECK_EQ_INT(tk_store_get_token(r, h, &t), 0);
    CHECK_EQ_INT(t.revoked_at, 0);
    tk_store_txn_end(r);
    CHECK_EQ_INT(tk_committer_start(st, 0, 16, &c), -EINVAL);
    CHECK_EQ_INT(tk_committer_start(st, 1, 0, &c), -EINVAL);
    CHECK_EQ_INT(tk_committer_start(st, 1, TK_COMMIT_QUEUE_MAX + 1, &c), -EINVAL);
    tk_store_close(st);
    remove_dir();
}

int main(void)
{
    RUN(test_concurrent_revocations);
    RUN(test_queue_full_and_stop);
    RUN(test_bad_request_alone);
    return check_report();
}
