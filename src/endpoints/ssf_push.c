/*
 * The SSF pusher thread (include/tokend/ssf.h): walks every receiver's
 * durable queue (src/store/ssf_queue.c) in order and delivers each event as
 * a signed SET by RFC 8935 push, through the outbound thread.
 *
 * The one idea: the store is the truth and the thread keeps only what it
 * has in flight. Per receiver, a slot remembers the sequence delivered last
 * in this process (`done_seq`: the ack may not be committed yet, so the next
 * head is read after it) and, while a POST is out, the sequence it carries.
 * Each scan brackets its read txn with tk_committer_read_enter/exit, so
 * the committer never grows the map under it. A POST's callback (outbound
 * thread) only records the answer and wakes the thread; the thread then
 * submits the ack (TK_OP_SSF_ACK) or schedules the
 * retry. An ack that did not reach the store (committer queue full, a
 * failed batch) is submitted again from the queue itself: an event still
 * queued at or below done_seq a while later gets a fresh ack. After a
 * restart done_seq is 0 and the queue is delivered from its head again, so
 * an event whose 2xx came before the crash and whose ack did not is
 * delivered twice (at-least-once; the jti is the same).
 */
#include "tokend/ssf.h"

#include "endpoints_int.h"
#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SET_TYP "secevent+jwt"
/* A queued event at or below done_seq is acked again after this long. */
#define ACK_AGAIN_MS 2000

typedef struct slot {
    bool used, seen;
    char id[TK_SSF_ID_MAX + 1];
    size_t idlen;
    char url[TK_URL_MAX + 1];
    char aud[TK_AUD_MAX + 1];
    char auth[sizeof "Bearer " + TK_SSF_BEARER_MAX];
    bool has_auth;
    /* Thread only. */
    uint64_t done_seq; /* delivered last by this process */
    uint64_t sent_seq; /* in flight */
    bool in_flight;
    unsigned fails;   /* in a row */
    uint64_t next_ms; /* not before (back-off) */
    uint64_t ack_ms;  /* last ack submitted */
    /* Written by the callback under mu. */
    bool answered, ok;
    int status;
    uint8_t result;
    /* Statistics, under mu. */
    int64_t depth, dropped;
    uint64_t delivered, failed;
} slot;

struct tk_ssf {
    tk_ssf_cfg cfg;
    char issuer[TK_URL_MAX + 1];
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, woken;
    bool kicked; /* atomic: a kick is pending (tk_ssf_kick) */
    tk_txn *txn;
    slot slots[TK_SSF_RECEIVERS_MAX];
};

/* ---- Slots --------------------------------------------------------------------- */

static slot *find_slot(tk_ssf *p, tk_slice id)
{
    slot *free_slot = NULL;
    for (unsigned i = 0; i < TK_SSF_RECEIVERS_MAX; i++) {
        slot *s = &p->slots[i];
        if (s->used && s->idlen == id.len && memcmp(s->id, id.p, id.len) == 0) {
            return s;
        }
        if (!s->used && free_slot == NULL) {
            free_slot = s;
        }
    }
    if (free_slot != NULL) {
        memset(free_slot, 0, sizeof *free_slot);
        free_slot->used = true;
        memcpy(free_slot->id, id.p, id.len);
        free_slot->idlen = id.len;
    }
    return free_slot;
}

static void copy_str(char *dst, size_t cap, tk_slice s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

/* A registration as the store holds it now: settings and gauges. */
static int refresh_one(void *arg, tk_slice id, const tk_ssf_receiver_rec *rec)
{
    tk_ssf *p = arg;
    pthread_mutex_lock(&p->mu);
    slot *s = find_slot(p, id);
    if (s != NULL) {
        s->seen = true;
        s->depth = rec->depth;
        s->dropped = rec->dropped;
    }
    pthread_mutex_unlock(&p->mu);
    if (s == NULL || s->in_flight) {
        return 0; /* settings change between two POSTs, never under one */
    }
    copy_str(s->url, sizeof s->url, rec->url);
    copy_str(s->aud, sizeof s->aud, rec->audience);
    s->has_auth = rec->bearer.len > 0;
    if (s->has_auth) {
        memcpy(s->auth, "Bearer ", 7);
        copy_str(s->auth + 7, sizeof s->auth - 7, rec->bearer);
    }
    return 0;
}

/* ---- One receiver ---------------------------------------------------------------- */

static void ack(tk_ssf *p, slot *s, uint64_t seq, uint64_t now_ms)
{
    tk_commit_req req = {.worker = 0, .cookie = EP_SSF_COOKIE, .nops = 1};
    req.ops[0] = tk_op_make(TK_OP_SSF_ACK, tk_now());
    int rc = tk_op_id_set(&req.ops[0].ssf_ack.receiver, (tk_slice){s->id, s->idlen});
    TK_ASSERT(rc == 0);
    req.ops[0].ssf_ack.seq = seq;
    s->ack_ms = now_ms;
    rc = tk_committer_submit(p->cfg.committer, &req);
    if (rc != 0) {
        tk_log_warn("ssf_ack_deferred", "receiver=%s seq=%llu error=\"%s\"", s->id,
                    (unsigned long long)seq, tk_strerror(rc));
    }
}

static uint64_t backoff_ms(const tk_ssf *p, unsigned fails)
{
    uint64_t d = p->cfg.retry_min_ms;
    for (unsigned i = 1; i < fails && d < p->cfg.retry_max_ms; i++) { /* bounded by max */
        d *= 2;
    }
    return d < p->cfg.retry_max_ms ? d : p->cfg.retry_max_ms;
}

/* The callback's answer, taken on the thread. */
static void settle(tk_ssf *p, slot *s, uint64_t now_ms)
{
    pthread_mutex_lock(&p->mu);
    bool answered = s->answered, ok = s->ok;
    int status = s->status;
    uint8_t result = s->result;
    s->answered = false;
    if (answered) {
        s->delivered += ok ? 1 : 0;
        s->failed += ok ? 0 : 1;
    }
    pthread_mutex_unlock(&p->mu);
    if (!answered) {
        return;
    }
    s->in_flight = false;
    if (ok) {
        s->done_seq = s->sent_seq;
        s->fails = 0;
        s->next_ms = 0;
        ack(p, s, s->sent_seq, now_ms);
        return;
    }
    s->fails += s->fails < 64 ? 1 : 0;
    uint64_t wait = backoff_ms(p, s->fails);
    s->next_ms = now_ms + wait;
    tk_log_warn("ssf_push_failed",
                "receiver=%s seq=%llu status=%d result=%s fails=%u retry_ms=%llu", s->id,
                (unsigned long long)s->sent_seq, status, tk_outbound_result_name(result), s->fails,
                (unsigned long long)wait);
}

static void answered(void *arg, const tk_outbound_resp *resp)
{
    tk_ssf *p = arg;
    unsigned i = (unsigned)resp->cookie;
    TK_ASSERT(i < TK_SSF_RECEIVERS_MAX);
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[i];
    s->answered = true;
    s->ok = resp->result == TK_OB_OK && resp->status >= 200 && resp->status < 300;
    s->status = resp->status;
    s->result = resp->result;
    p->woken = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Sign and POST event seq. A failure to send is a failed attempt. */
static void send_event(tk_ssf *p, slot *s, uint64_t seq, const tk_ssf_event_rec *ev,
                       uint64_t now_ms)
{
    char claims[TK_SSF_PAYLOAD_MAX], jws[TK_SSF_JWS_MAX];
    size_t clen = 0, jlen = 0;
    tk_slice iss = {p->issuer, strlen(p->issuer)};
    int rc = tk_ssf_set_claims(iss, (tk_slice){s->id, s->idlen}, (tk_slice){s->aud, strlen(s->aud)},
                               seq, ev, tk_now(), claims, sizeof claims, &clen);
    if (rc == 0) {
        const tk_keyset *ks = tk_keys_holder_get(p->cfg.keys);
        rc = tk_keys_sign(ks, SET_TYP, claims, clen, jws, sizeof jws, &jlen);
    }
    if (rc == 0) {
        tk_outbound_req req = {.purpose = TK_OB_SSF,
                               .method = TK_OB_POST,
                               .url = s->url,
                               .body = jws,
                               .body_len = jlen,
                               .content_type = "application/secevent+jwt",
                               .accept = "application/json",
                               .authorization = s->has_auth ? s->auth : NULL,
                               .cookie = (uint64_t)(s - p->slots),
                               .cb = answered,
                               .cb_arg = p};
        rc = tk_outbound_submit(p->cfg.outbound, &req);
    }
    if (rc == 0) {
        s->in_flight = true;
        s->sent_seq = seq;
        return;
    }
    s->fails += s->fails < 64 ? 1 : 0;
    s->next_ms = now_ms + backoff_ms(p, s->fails);
    tk_log_warn("ssf_push_not_sent", "receiver=%s seq=%llu error=\"%s\"", s->id,
                (unsigned long long)seq, tk_strerror(rc));
}

static void serve(tk_ssf *p, slot *s, uint64_t now_ms)
{
    settle(p, s, now_ms);
    if (s->in_flight || now_ms < s->next_ms) {
        return;
    }
    tk_slice id = {s->id, s->idlen};
    uint64_t seq = 0;
    tk_ssf_event_rec ev;
    /* An event we delivered but that is still queued: its ack was lost. */
    int rc = tk_store_ssf_next(p->txn, id, 0, &seq, &ev);
    if (rc == 0 && seq <= s->done_seq && now_ms - s->ack_ms >= ACK_AGAIN_MS) {
        ack(p, s, seq, now_ms);
    }
    rc = tk_store_ssf_next(p->txn, id, s->done_seq, &seq, &ev);
    if (rc == 0) {
        send_event(p, s, seq, &ev, now_ms);
    } else if (rc != TK_E_NOTFOUND) {
        tk_log_error("ssf_queue_read_failed", "receiver=%s error=\"%s\"", s->id, tk_strerror(rc));
    }
}

/* ---- The thread ------------------------------------------------------------------- */

static void scan(tk_ssf *p)
{
    if (!tk_committer_read_enter(p->cfg.committer)) {
        return; /* the map is about to grow: hold no read txn (next turn) */
    }
    int rc = tk_store_read_renew(p->txn);
    if (rc == TK_E_FULL) {
        tk_committer_ask_grow(p->cfg.committer); /* another process grew the map */
    }
    for (unsigned i = 0; i < TK_SSF_RECEIVERS_MAX; i++) {
        p->slots[i].seen = false;
    }
    if (rc == 0) {
        rc = tk_store_ssf_each_receiver(p->txn, refresh_one, p);
    }
    if (rc != 0) {
        if (rc != TK_E_FULL) { /* a grown map is adopted by the committer: no noise */
            tk_log_error("ssf_scan_failed", "error=\"%s\"", tk_strerror(rc));
        }
        tk_store_read_reset(p->txn);
        tk_committer_read_exit(p->cfg.committer);
        return;
    }
    uint64_t now_ms = tk_mono_ms();
    for (unsigned i = 0; i < TK_SSF_RECEIVERS_MAX; i++) {
        slot *s = &p->slots[i];
        if (!s->used) {
            continue;
        }
        if (!s->seen) {
            settle(p, s, now_ms);
            if (!s->in_flight) { /* removed: forget it once nothing is out */
                pthread_mutex_lock(&p->mu);
                s->used = false;
                pthread_mutex_unlock(&p->mu);
            }
            continue;
        }
        serve(p, s, now_ms);
    }
    tk_store_read_reset(p->txn);
    tk_committer_read_exit(p->cfg.committer);
}

static void *pusher_main(void *arg)
{
    tk_ssf *p = arg;
    pthread_mutex_lock(&p->mu);
    /* The thread's loop: runs until tk_ssf_stop; each turn is bounded. */
    while (!p->stop) {
        if (!p->woken) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)p->cfg.poll_ms * 1000000u;
            ts.tv_sec += (time_t)(ns / 1000000000u);
            ts.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
        p->woken = false;
        if (p->stop) {
            break;
        }
        pthread_mutex_unlock(&p->mu);
        __atomic_store_n(&p->kicked, false, __ATOMIC_RELEASE); /* kicks from now on wake us */
        scan(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int tk_ssf_start(const tk_ssf_cfg *cfg, tk_ssf **out)
{
    *out = NULL;
    tk_ssf_cfg c = *cfg;
    c.retry_min_ms = c.retry_min_ms != 0 ? c.retry_min_ms : TK_SSF_RETRY_MIN_DEFAULT;
    c.retry_max_ms = c.retry_max_ms != 0 ? c.retry_max_ms : TK_SSF_RETRY_MAX_DEFAULT;
    c.poll_ms = c.poll_ms != 0 ? c.poll_ms : TK_SSF_POLL_MS_DEFAULT;
    if (c.retry_min_ms > c.retry_max_ms || c.retry_max_ms > TK_SSF_RETRY_CEILING ||
        c.poll_ms > TK_SSF_POLL_MS_MAX || c.issuer == NULL || strlen(c.issuer) > TK_URL_MAX ||
        c.store == NULL || c.committer == NULL || c.outbound == NULL || c.keys == NULL) {
        return -EINVAL;
    }
    tk_ssf *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return -ENOMEM;
    }
    p->cfg = c;
    snprintf(p->issuer, sizeof p->issuer, "%s", c.issuer);
    p->cfg.issuer = p->issuer;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = tk_store_read_begin(c.store, &p->txn);
    if (rc == 0) {
        tk_store_read_reset(p->txn);
        rc = -pthread_create(&p->thread, NULL, pusher_main, p);
    }
    if (rc != 0) {
        tk_ssf_free(p);
        return rc;
    }
    p->started = true;
    *out = p;
    return 0;
}

void tk_ssf_kick(tk_ssf *p)
{
    if (p == NULL || __atomic_exchange_n(&p->kicked, true, __ATOMIC_ACQ_REL)) {
        return; /* already due: the thread will scan */
    }
    pthread_mutex_lock(&p->mu);
    p->woken = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void tk_ssf_stop(tk_ssf *p)
{
    if (p == NULL || !p->started) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->started = false;
}

void tk_ssf_free(tk_ssf *p)
{
    if (p == NULL) {
        return;
    }
    tk_ssf_stop(p);
    if (p->txn != NULL) {
        tk_store_txn_end(p->txn);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    for (unsigned i = 0; i < TK_SSF_RECEIVERS_MAX; i++) {
        tk_cleanse(p->slots[i].auth, sizeof p->slots[i].auth);
    }
    free(p);
}

size_t tk_ssf_stats_get(tk_ssf *p, tk_ssf_stats *out, size_t max)
{
    size_t n = 0;
    if (p == NULL) {
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < TK_SSF_RECEIVERS_MAX && n < max; i++) {
        const slot *s = &p->slots[i];
        if (!s->used) {
            continue;
        }
        memcpy(out[n].id, s->id, s->idlen + 1);
        out[n].depth = s->depth;
        out[n].dropped = s->dropped;
        out[n].delivered = s->delivered;
        out[n].failed = s->failed;
        n++;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}
