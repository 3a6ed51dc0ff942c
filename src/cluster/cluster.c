/*
 * Cluster mode on NATS JetStream (include/tokend/cluster.h,
 * docs/ARCHITECTURE.md §10): the publisher side (the committer's forward
 * hook, run by workers), the consumer side (libnats' delivery thread feeding
 * the committer in stream order) and one thread of our own that keeps the
 * stream, the consumer and the freshness clock up to date and fails writes
 * whose wait has run out.
 *
 * The one idea: a write is answered only by whichever of these comes first
 * for its pending slot, under one mutex: its own entry applied here (claim,
 * on the committer thread), a failed or unacknowledged publish (the ack
 * handler), or the slot's deadline (the sweep). The slot is taken by the
 * first and the others find it gone, so a request gets exactly one answer.
 */
#include "cluster_int.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/limits.h"
#include "tokend/log.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <limits.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Pending writes -------------------------------------------------------------- */

/* End the wait of publish `tag` if it still waits: true with whom to tell. */
static bool take_pending(tk_cluster *cl, uint64_t tag, unsigned *worker, uint64_t *cookie,
                         uint64_t *t0)
{
    bool found = false;
    pthread_mutex_lock(&cl->mu);
    pend *p = &cl->pending[tag % cl->cap];
    if (p->tag == tag && p->waiting) {
        p->waiting = false;
        *worker = p->worker;
        *cookie = p->cookie;
        *t0 = p->t0;
        found = true;
    }
    pthread_mutex_unlock(&cl->mu);
    return found;
}

static void fail_pending(tk_cluster *cl, uint64_t tag)
{
    unsigned w;
    uint64_t cookie, t0;
    if (take_pending(cl, tag, &w, &cookie, &t0)) {
        CL_ADD(cl, publish_failed, 1);
        tk_commit_done d = {.cookie = cookie, .result = TK_E_UNAVAILABLE};
        tk_committer_post(cl->com, w, &d);
    }
}

/* The counter of one of our msg ids; 0 for another node's (or another boot's). */
static uint64_t our_tag(const tk_cluster *cl, const char *id)
{
    if (id == NULL || strncmp(id, cl->prefix, cl->prefix_len) != 0) {
        return 0;
    }
    const char *p = id + cl->prefix_len;
    uint64_t v = 0;
    for (unsigned i = 0; i < 20 && *p >= '0' && *p <= '9'; i++, p++) {
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return *p == '\0' ? v : 0;
}

static bool connected(const tk_cluster *cl)
{
    return natsConnection_Status(cl->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* The committer's forward hook (a worker thread): encode, remember who
 * waits, publish without waiting for the ack. */
static int forward(void *ctx, const tk_commit_req *req)
{
    tk_cluster *cl = ctx;
    if (!__atomic_load_n(&cl->stream_ready, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&cl->behind, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&cl->blocked_seq, __ATOMIC_ACQUIRE) != 0 || !connected(cl)) {
        CL_ADD(cl, refused, 1);
        return TK_E_UNAVAILABLE;
    }
    uint64_t skewed = __atomic_load_n(&cl->skewed_until, __ATOMIC_RELAXED);
    if (skewed != 0 && tk_mono_ns() < skewed) {
        CL_ADD(cl, skew_refused, 1);
        return TK_E_UNAVAILABLE;
    }
    static _Thread_local uint8_t buf[TK_COMMIT_WIRE_MAX];
    size_t len = 0;
    int rc = tk_commit_req_encode(req, buf, sizeof buf, &len);
    if (rc != 0) {
        /* Applying it here only would fork this node from the others. */
        tk_log_warn("cluster_op_unreplicable", "op=%u err=%s note=\"no wire form: refused\"",
                    (unsigned)req->ops[0].type, tk_strerror(rc));
        CL_ADD(cl, unreplicable, 1);
        return TK_E_UNAVAILABLE;
    }
    uint64_t now = tk_mono_ns();
    pthread_mutex_lock(&cl->mu);
    uint64_t tag = ++cl->counter;
    pend *p = &cl->pending[tag % cl->cap];
    bool busy = p->waiting;
    if (!busy) {
        *p = (pend){.tag = tag,
                    .waiting = true,
                    .worker = req->worker,
                    .cookie = req->cookie,
                    .t0 = now,
                    .due = now + 2 * cl->publish_timeout_ns};
    }
    pthread_mutex_unlock(&cl->mu);
    if (busy) {
        return TK_E_QUEUEFULL;
    }
    char id[MSG_ID_MAX];
    snprintf(id, sizeof id, "%s%" PRIu64, cl->prefix, tag);
    natsMsg *m = NULL;
    char mac_hdr[TK_CLUSTER_MAC_HDR_MAX];
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t now_ms = (uint64_t)wall.tv_sec * 1000u + (uint64_t)wall.tv_nsec / 1000000u;
    if (tk_cluster_sign(&cl->keys.k[0], cl->subject, id, now_ms, buf, len, mac_hdr) != 0) {
        unsigned w;
        uint64_t cookie, t0;
        (void)take_pending(cl, tag, &w, &cookie, &t0); /* nobody else can have it */
        CL_ADD(cl, refused, 1);
        return TK_E_UNAVAILABLE;
    }
    natsStatus s = natsMsg_Create(&m, cl->subject, NULL, (const char *)buf, (int)len);
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(m, TK_CLUSTER_MAC_HEADER, mac_hdr);
    }
    if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.MaxWait = (int64_t)(cl->publish_timeout_ns / 1000000u);
        s = js_PublishMsgAsync(cl->js, &m, &po);
    }
    if (s != NATS_OK) {
        natsMsg_Destroy(m); /* NULL when the library took it */
        unsigned w;
        uint64_t cookie, t0;
        (void)take_pending(cl, tag, &w, &cookie, &t0); /* nobody else can have it */
        tk_log_warn("cluster_publish_failed", "error=\"%s\"", natsStatus_GetText(s));
        CL_ADD(cl, refused, 1);
        return TK_E_UNAVAILABLE;
    }
    CL_ADD(cl, published, 1);
    return 0;
}

/* libnats' ack thread: a failed publish answers 503 now; a good one only
 * measures (the answer waits for the apply). */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    tk_cluster *cl = closure;
    const char *id = NULL;
    uint64_t tag = natsMsgHeader_Get(msg, MSG_ID_HEADER, &id) == NATS_OK ? our_tag(cl, id) : 0;
    if (pae != NULL || pa == NULL) {
        tk_log_warn("cluster_publish_unacked", "msg=%s error=\"%s\"", id != NULL ? id : "-",
                    pae != NULL && pae->ErrText != NULL ? pae->ErrText
                    : pae != NULL                       ? natsStatus_GetText(pae->Err)
                                                        : "no ack");
        if (tag != 0) {
            fail_pending(cl, tag);
        }
    } else if (tag != 0) {
        pthread_mutex_lock(&cl->mu);
        const pend *p = &cl->pending[tag % cl->cap];
        uint64_t t0 = p->tag == tag ? p->t0 : 0;
        pthread_mutex_unlock(&cl->mu);
        if (t0 != 0) {
            CL_ADD(cl, publish_ns_total, tk_mono_ns() - t0);
            CL_ADD(cl, publish_n, 1);
        }
    }
    natsMsg_Destroy(msg);
}

/* ---- Committer hooks (committer thread) ------------------------------------------------ */

static bool claim(void *ctx, uint64_t tag, unsigned *worker, uint64_t *cookie)
{
    tk_cluster *cl = ctx;
    uint64_t t0;
    if (!take_pending(cl, tag, worker, cookie, &t0)) {
        return false;
    }
    CL_ADD(cl, write_ns_total, tk_mono_ns() - t0);
    CL_ADD(cl, write_n, 1);
    return true;
}

static void applied(void *ctx, uint64_t seq, uint64_t apply_ns)
{
    tk_cluster *cl = ctx;
    __atomic_store_n(&cl->applied, seq, __ATOMIC_RELEASE);
    CL_ADD(cl, apply_ns_total, apply_ns);
    CL_ADD(cl, apply_n, 1);
    /* Caught up with the last poll's head: current as of that poll. */
    pthread_mutex_lock(&cl->target_mu);
    uint64_t t0 = cl->target_seq <= seq ? cl->target_t0 : 0;
    pthread_mutex_unlock(&cl->target_mu);
    if (t0 != 0 && t0 > __atomic_load_n(&cl->fresh_at, __ATOMIC_RELAXED)) {
        __atomic_store_n(&cl->fresh_at, t0, __ATOMIC_RELEASE);
    }
}

static void gap(void *ctx, uint64_t want, uint64_t got)
{
    tk_cluster *cl = ctx;
    tk_log_warn("cluster_gap",
                "want=%" PRIu64 " got=%" PRIu64 " note=\"not applied: resubscribing\"", want, got);
    __atomic_store_n(&cl->want_resub, true, __ATOMIC_RELEASE);
}

/* ---- Consumer (libnats' delivery thread, in stream order) ------------------------------ */

/* One of our own entries says how far this node's clock is from the stream's
 * (plus the publish's own few ms). Past half of what the others accept, this
 * node stops writing for a minute rather than publish an entry every node
 * would refuse, which would stop the cluster. */
static void check_own_clock(tk_cluster *cl, uint64_t signed_ms, uint64_t server_ms)
{
    if (tk_cluster_own_clock_ok(signed_ms, server_ms, cl->replay_window_ms)) {
        return;
    }
    int64_t off = (int64_t)signed_ms - (int64_t)server_ms;
    int64_t w = (int64_t)cl->replay_window_ms;
    __atomic_store_n(&cl->skewed_until, tk_mono_ns() + 60ull * 1000000000ull, __ATOMIC_RELAXED);
    tk_log_error("cluster_clock_skew",
                 "offset_ms=%" PRId64 " window_ms=%" PRId64
                 " note=\"this node's clock is that far from the NATS servers': writes refused "
                 "(503) for a minute; fix the clock (NTP). Entries off by more than the window "
                 "stop every node\"",
                 off, w);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    sub_ctx *sc = closure;
    tk_cluster *cl = sc->cl;
    jsMsgMetaData *meta = NULL;
    uint64_t seq = 0, server_ms = 0;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        seq = meta->Sequence.Stream;
        server_ms = meta->Timestamp > 0 ? (uint64_t)meta->Timestamp / 1000000u : 0;
        jsMsgMetaData_Destroy(meta);
    }
    const char *id = NULL;
    uint64_t tag = natsMsgHeader_Get(msg, MSG_ID_HEADER, &id) == NATS_OK ? our_tag(cl, id) : 0;
    int len = natsMsg_GetDataLength(msg);
    uint8_t *payload = seq > 0 && len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (payload == NULL) {
        tk_log_error("cluster_entry_dropped", "seq=%" PRIu64 " note=\"%s\"", seq,
                     seq == 0 ? "no metadata" : "out of memory");
        natsMsg_Destroy(msg); /* not applied, not stored: the stall check resubscribes */
        return;
    }
    if (len > 0) {
        memcpy(payload, natsMsg_GetData(msg), (size_t)len);
    }
    /* Authenticated before anything decodes it. An entry that fails is never
     * applied, nor anything after it (skipping it would let a forger desync
     * nodes silently): the node stops advancing and goes stale. */
    uint64_t blocked = __atomic_load_n(&cl->blocked_seq, __ATOMIC_ACQUIRE);
    const char *mac = NULL;
    if (blocked != 0 && seq >= blocked) {
        free(payload);
        natsMsg_Destroy(msg);
        return;
    }
    if (natsMsgHeader_Get(msg, TK_CLUSTER_MAC_HEADER, &mac) != NATS_OK) {
        mac = NULL;
    }
    uint64_t signed_ms = 0;
    tk_cluster_verdict v =
        tk_cluster_verify(&cl->keys, cl->subject, id, mac, payload, (size_t)len, &signed_ms);
    if (v != TK_CLUSTER_MAC_OK) {
        static const char *const why[] = {
            [TK_CLUSTER_MAC_MISSING] = "none",
            [TK_CLUSTER_MAC_UNKNOWN_KEY] = "unknown_key",
            [TK_CLUSTER_MAC_WRONG] = "wrong",
        };
        __atomic_store_n(&cl->blocked_seq, seq, __ATOMIC_RELEASE);
        CL_ADD(cl, rejected, 1);
        tk_log_error("cluster_entry_unauthenticated",
                     "seq=%" PRIu64 " mac=%s msg=%s note=\"not applied: this node stops here "
                     "and stays stale; %s\"",
                     seq, why[v], id != NULL ? "set" : "none",
                     v == TK_CLUSTER_MAC_UNKNOWN_KEY
                         ? "a key another node signs with is missing from cluster-key-file: add "
                           "it and restart this node"
                         : "remove the publisher, then restart from a snapshot");
        free(payload);
        natsMsg_Destroy(msg);
        return;
    }
    /* Genuine, but when? A copy republished after the stream's duplicate
     * window carries its old signed time: refused the same way. The stream's
     * timestamp is the same on every node, so every node decides alike. */
    if (!tk_cluster_entry_timely(signed_ms, server_ms, cl->replay_window_ms)) {
        __atomic_store_n(&cl->blocked_seq, seq, __ATOMIC_RELEASE);
        CL_ADD(cl, replayed, 1);
        tk_log_error("cluster_entry_replayed",
                     "seq=%" PRIu64 " signed_ms=%" PRIu64 " stream_ms=%" PRIu64
                     " window_ms=%" PRIu64 " note=\"not applied: this node stops here and stays "
                     "stale; a genuine entry published again (remove the publisher, then restart "
                     "from a snapshot) or a publisher whose clock is off (fix it, then restart "
                     "from a snapshot)\"",
                     seq, signed_ms, server_ms, cl->replay_window_ms);
        free(payload);
        natsMsg_Destroy(msg);
        return;
    }
    if (tag != 0) {
        check_own_clock(cl, signed_ms, server_ms);
    }
    natsMsg_Destroy(msg);
    pthread_mutex_lock(&cl->sub_mu);
    if (sc->gen == cl->gen) {
        (void)tk_committer_submit_entry(cl->com, seq, tag, payload, (size_t)len);
    } else {
        free(payload); /* a replaced consumer: its successor delivers this again */
    }
    pthread_mutex_unlock(&cl->sub_mu);
}

static void free_sub_ctx(void *closure)
{
    free(closure);
}

/* Replace the consumer by one that starts after the stored sequence. Entries
 * the old one queued and the new one delivers again are skipped by the
 * committer (at or below the stored sequence). */
static void resubscribe(tk_cluster *cl)
{
    pthread_mutex_lock(&cl->sub_mu);
    natsSubscription *old = cl->sub;
    cl->sub = NULL;
    uint64_t gen = ++cl->gen;
    pthread_mutex_unlock(&cl->sub_mu);
    if (old != NULL) {
        natsSubscription_Unsubscribe(old);
        natsSubscription_Destroy(old);
    }
    uint64_t from = __atomic_load_n(&cl->applied, __ATOMIC_ACQUIRE) + 1;
    sub_ctx *sc = malloc(sizeof *sc);
    if (sc == NULL) {
        return;
    }
    *sc = (sub_ctx){.cl = cl, .gen = gen};
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = cl->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    so.Config.Heartbeat = (int64_t)cl->tick_ns * 4; /* the library replaces a silent consumer */
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Subscribe(&sub, cl->js, cl->subject, on_msg, sc, NULL, &so, &jerr);
    if (s != NATS_OK) {
        tk_log_warn("cluster_subscribe_failed", "from=%" PRIu64 " error=\"%s\" code=%d", from,
                    natsStatus_GetText(s), (int)jerr);
        free(sc);
        return;
    }
    if (natsSubscription_SetOnCompleteCB(sub, free_sub_ctx, sc) != NATS_OK) {
        tk_log_warn("cluster_subscribe", "note=\"context kept: no completion callback\"");
    }
    pthread_mutex_lock(&cl->sub_mu);
    cl->sub = sub;
    pthread_mutex_unlock(&cl->sub_mu);
    CL_ADD(cl, resubscribes, 1);
    tk_log_info("cluster_subscribed", "stream=%s from=%" PRIu64, cl->stream, from);
}

/* ---- The cluster thread ----------------------------------------------------------------- */

/* A replay inside the stream's duplicate window is dropped by JetStream (same
 * Nats-Msg-Id); one after it must be older than the replay window. So the
 * duplicate window covers the replay window and the skew allowed ahead
 * (1.5 times it). A stream made elsewhere with less is not used: the node
 * stays stale (fail closed) and says so once. */
static bool dup_window_ok(tk_cluster *cl, const jsStreamInfo *si)
{
    uint64_t want_ms = cl->replay_window_ms + cl->replay_window_ms / 2;
    int64_t have = si->Config != NULL ? si->Config->Duplicates : 0;
    uint64_t have_ms = have > 0 ? (uint64_t)have / 1000000u : 0;
    if (have_ms >= want_ms) {
        cl->dup_window_short = false;
        return true;
    }
    if (!cl->dup_window_short) {
        tk_log_error("cluster_stream_duplicate_window",
                     "stream=%s duplicate_window_ms=%" PRIu64 " need_ms=%" PRIu64
                     " note=\"a replayed entry could pass: not used; raise the stream's "
                     "duplicate window (nats stream edit %s --dupe-window) or lower "
                     "cluster-replay-window\"",
                     cl->stream, have_ms, want_ms, cl->stream);
        cl->dup_window_short = true;
    }
    return false;
}

static bool ensure_stream(tk_cluster *cl)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, cl->js, cl->stream, NULL, &jerr);
    if (s == NATS_OK) {
        bool ok = dup_window_ok(cl, si);
        jsStreamInfo_Destroy(si);
        return ok;
    }
    if (jerr != JSStreamNotFoundErr) {
        tk_log_warn("cluster_stream_unreachable", "stream=%s error=\"%s\" code=%d", cl->stream,
                    natsStatus_GetText(s), (int)jerr);
        return false;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {cl->subject};
    sc.Name = cl->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = (int64_t)cl->replicas;
    sc.Duplicates = (int64_t)(2 * cl->replay_window_ms * 1000000u); /* ns */
    s = js_AddStream(&si, cl->js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        tk_log_warn("cluster_stream_create_failed", "stream=%s error=\"%s\" code=%d", cl->stream,
                    natsStatus_GetText(s), (int)jerr);
        return false;
    }
    jsStreamInfo_Destroy(si);
    tk_log_info("cluster_stream_created",
                "stream=%s subject=%s replicas=%u duplicate_window_ms=%" PRIu64, cl->stream,
                cl->subject, cl->replicas, 2 * cl->replay_window_ms);
    return true;
}

/* Poll the stream's last sequence; move the freshness clock. */
static void poll_head(tk_cluster *cl, uint64_t now)
{
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = (int64_t)(cl->tick_ns / 1000000u) * 2 + 100;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t t0 = tk_mono_ns();
    natsStatus s = js_GetStreamInfo(&si, cl->js, cl->stream, &o, &jerr);
    if (s != NATS_OK) {
        if (jerr == JSStreamNotFoundErr) {
            __atomic_store_n(&cl->stream_ready, false, __ATOMIC_RELEASE);
        }
        return; /* nothing heard: the state ages */
    }
    /* A replicated stream without a leader is answered by any replica, with
     * its own (maybe old) state: only a leader's answer says what is stored. */
    bool leaderless =
        si->Cluster != NULL && (si->Cluster->Leader == NULL || si->Cluster->Leader[0] == '\0');
    uint64_t head = si->State.LastSeq, first = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    if (leaderless) {
        return; /* nothing heard: the state ages */
    }
    __atomic_store_n(&cl->head, head, __ATOMIC_RELAXED);
    uint64_t done = __atomic_load_n(&cl->applied, __ATOMIC_ACQUIRE);
    pthread_mutex_lock(&cl->sub_mu);
    bool none = cl->sub == NULL;
    pthread_mutex_unlock(&cl->sub_mu);
    bool below = head < done; /* a moment after a poll, when entries just arrived */
    bool twice = below && cl->behind_head == head;
    cl->behind_head = below ? head : UINT64_MAX;
    /* Entries this node never applied are gone (retention limits): it can
     * never catch up. The same cure: a snapshot of a current node. */
    bool lost = first > done + 1;
    if ((none && below) || twice || lost) {
        /* The stream ends before what the store applied, before any consumer
         * or at two polls with no new entry: another stream under this name
         * (deleted and made again, say), whose entries would all be skipped
         * as old; or it starts after the next entry this node needs (the
         * committer never applies across that gap). Stay stale (fail closed)
         * and consume nothing. */
        if (!__atomic_load_n(&cl->behind, __ATOMIC_RELAXED)) {
            tk_log_error(lost ? "cluster_entries_lost" : "cluster_stream_behind_store",
                         "stream=%s first=%" PRIu64 " head=%" PRIu64 " applied=%" PRIu64
                         " note=\"start this node from a snapshot of a current node\"",
                         cl->stream, first, head, done);
        }
        __atomic_store_n(&cl->behind, true, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&cl->behind, false, __ATOMIC_RELEASE);
    if (done >= head) {
        __atomic_store_n(&cl->fresh_at, t0, __ATOMIC_RELEASE);
        pthread_mutex_lock(&cl->target_mu);
        cl->target_t0 = 0;
        pthread_mutex_unlock(&cl->target_mu);
    } else {
        /* A new target once the previous one is reached (applied() moves fresh_at). */
        pthread_mutex_lock(&cl->target_mu);
        if (cl->target_t0 == 0 || cl->target_seq <= done) {
            cl->target_seq = head;
            cl->target_t0 = t0;
        }
        pthread_mutex_unlock(&cl->target_mu);
    }
    /* A consumer that makes no progress while the stream moved on is replaced. */
    if (done != cl->progress_seq || done >= head) {
        cl->progress_seq = done;
        cl->progress_at = now;
    }
    bool resub = __atomic_exchange_n(&cl->want_resub, false, __ATOMIC_ACQ_REL);
    bool blocked = __atomic_load_n(&cl->blocked_seq, __ATOMIC_ACQUIRE) != 0;
    if (none || resub || (!blocked && now - cl->progress_at > STALL_NS)) {
        if (!none) {
            tk_log_warn("cluster_consumer_stalled", "applied=%" PRIu64 " head=%" PRIu64, done,
                        head);
        }
        resubscribe(cl);
        cl->progress_at = now;
    }
}

/* Fail every write whose wait ran out (no ack, or acked but not applied):
 * collected under one lock, a chunk at a time, answered outside it. */
static void sweep(tk_cluster *cl, uint64_t now)
{
    uint64_t late[64];
    for (unsigned from = 0; from < cl->cap;) {
        unsigned n = 0;
        pthread_mutex_lock(&cl->mu);
        for (; from < cl->cap && n < TK_ARRAY_LEN(late); from++) {
            const pend *p = &cl->pending[from];
            if (p->waiting && now > p->due) {
                late[n++] = p->tag;
            }
        }
        pthread_mutex_unlock(&cl->mu);
        for (unsigned i = 0; i < n; i++) {
            tk_log_warn("cluster_write_timeout", "msg=%s%" PRIu64, cl->prefix, late[i]);
            fail_pending(cl, late[i]);
        }
    }
}

static bool wait_tick(tk_cluster *cl)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    uint64_t ns = (uint64_t)until.tv_nsec + cl->tick_ns;
    until.tv_sec += (time_t)(ns / 1000000000u);
    until.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_lock(&cl->stop_mu);
    if (!cl->stop) {
        pthread_cond_timedwait(&cl->stop_cv, &cl->stop_mu, &until);
    }
    bool stop = cl->stop;
    pthread_mutex_unlock(&cl->stop_mu);
    return stop;
}

static void *cluster_main(void *arg)
{
    tk_cluster *cl = arg;
    /* Event loop: one tick at a time until stop. */
    for (bool stop = false; !stop; stop = wait_tick(cl)) {
        uint64_t now = tk_mono_ns();
        if (!connected(cl)) {
            cl_probe(cl, now);
        } else {
            cl->down_since = 0;
        }
        if (connected(cl)) {
            if (!__atomic_load_n(&cl->stream_ready, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&cl->stream_ready, ensure_stream(cl), __ATOMIC_RELEASE);
            }
            if (__atomic_load_n(&cl->stream_ready, __ATOMIC_ACQUIRE)) {
                poll_head(cl, now);
            }
        }
        sweep(cl, tk_mono_ns());
    }
    return NULL;
}

/* ---- Start / stop -------------------------------------------------------------------------- */

static int connect_nats(tk_cluster *cl)
{
    char *save = NULL;
    for (char *u = strtok_r(cl->urls, ",", &save);
         u != NULL && cl->nservers < TK_CLUSTER_SERVERS_MAX; u = strtok_r(NULL, ",", &save)) {
        cl->servers[cl->nservers++] = u;
    }
    natsStatus s = cl_make_opts(cl, true, &cl->opts);
    if (s != NATS_OK && cl->tls) {
        /* The files opened (tk_cluster_start checked them): their contents are wrong. */
        const char *why = nats_GetLastError(NULL);
        tk_log_error("cluster_tls_refused",
                     "ca=%s cert=%s key=%s error=\"%s\" note=\"PEM CA certificates; a PEM "
                     "certificate chain and its PEM private key\"",
                     cl->nats_ca, cl->nats_cert[0] != '\0' ? cl->nats_cert : "-",
                     cl->nats_key[0] != '\0' ? cl->nats_key : "-",
                     why != NULL && why[0] != '\0' ? why : natsStatus_GetText(s));
        return TK_E_INVALID;
    }
    if (s == NATS_OK) {
        s = natsConnection_Connect(&cl->nc, cl->opts);
        s = s == NATS_NOT_YET_CONNECTED ? NATS_OK : s; /* retried in the background */
    }
    if (s == NATS_OK) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = 2000;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = cl;
        jo.PublishAsync.MaxPending = (int64_t)cl->cap + 1024; /* ours bounds it: never stalls */
        jo.PublishAsync.StallWait = 10;
        s = natsConnection_JetStream(&cl->js, cl->nc, &jo);
    }
    if (s != NATS_OK) {
        tk_log_error("cluster_connect_failed", "error=\"%s\"", natsStatus_GetText(s));
        return TK_E_UNAVAILABLE;
    }
    return 0;
}

static void free_cluster(tk_cluster *cl)
{
    if (cl->js != NULL) {
        jsCtx_Destroy(cl->js);
    }
    if (cl->nc != NULL) {
        natsConnection_Close(cl->nc);
        natsConnection_Destroy(cl->nc);
    }
    natsOptions_Destroy(cl->opts);
    pthread_mutex_destroy(&cl->mu);
    pthread_mutex_destroy(&cl->sub_mu);
    pthread_mutex_destroy(&cl->target_mu);
    pthread_mutex_destroy(&cl->stop_mu);
    pthread_cond_destroy(&cl->stop_cv);
    free(cl->pending);
    tk_cleanse(&cl->keys, sizeof cl->keys);
    tk_cleanse(cl->nats_password, sizeof cl->nats_password);
    free(cl);
}

int tk_cluster_start(const tk_cluster_cfg *cfg, tk_store *st, tk_committer *com, tk_cluster **out)
{
    tk_cluster *cl = calloc(1, sizeof *cl);
    if (cl == NULL) {
        return -ENOMEM;
    }
    cl->st = st;
    cl->com = com;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_mutex_init(&cl->sub_mu, NULL);
    pthread_mutex_init(&cl->target_mu, NULL);
    pthread_mutex_init(&cl->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = cl_init_names(cl, cfg);
    if (rc == 0) {
        cl->pending = calloc(cl->cap, sizeof *cl->pending);
        rc = cl->pending == NULL ? -ENOMEM : 0;
    }
    tk_txn *txn = NULL;
    if (rc == 0 && (rc = tk_store_cluster_put(st, cl->stream)) == 0 &&
        (rc = tk_store_read_begin(st, &txn)) == 0) {
        uint64_t seq = 0;
        rc = tk_store_log_seq_get(txn, &seq);
        tk_store_txn_end(txn);
        cl->applied = seq;
        cl->progress_seq = seq;
    }
    if (rc == 0 && cl->tls) {
        rc = cl_check_tls_files(cl);
    }
    if (rc == 0) {
        rc = connect_nats(cl);
    }
    if (rc == 0) {
        tk_committer_log log = {
            .ctx = cl, .forward = forward, .claim = claim, .applied = applied, .gap = gap};
        tk_committer_set_log(com, &log);
        rc = -pthread_create(&cl->thread, NULL, cluster_main, cl);
        cl->thread_started = rc == 0;
    }
    if (rc != 0) {
        free_cluster(cl);
        return rc;
    }
    char kid[2 * TK_CLUSTER_KID_LEN + 1];
    tk_hex(cl->keys.k[0].kid, sizeof cl->keys.k[0].kid, kid);
    tk_log_info("cluster_started",
                "stream=%s node=%.*s applied=%" PRIu64 " staleness_ms=%u key=%s keys=%u tls=%s",
                cl->stream, (int)(cl->prefix_len - 1), cl->prefix, cl->applied,
                cfg->max_staleness_ms, kid, cl->keys.n, cl->tls ? "on" : "off");
    *out = cl;
    return 0;
}

void tk_cluster_stop(tk_cluster *cl)
{
    if (cl == NULL) {
        return;
    }
    pthread_mutex_lock(&cl->stop_mu);
    cl->stop = true;
    pthread_cond_signal(&cl->stop_cv);
    pthread_mutex_unlock(&cl->stop_mu);
    if (cl->thread_started) {
        pthread_join(cl->thread, NULL);
    }
    pthread_mutex_lock(&cl->sub_mu);
    natsSubscription *sub = cl->sub;
    cl->sub = NULL;
    cl->gen++;
    pthread_mutex_unlock(&cl->sub_mu);
    if (sub != NULL) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    free_cluster(cl);
    nats_CloseAndWait(2000); /* the library's threads and memory: nothing else uses it */
}

/* ---- Freshness and statistics ------------------------------------------------------------ */

bool tk_cluster_fresh(const tk_cluster *cl, uint64_t now_mono_ns)
{
    uint64_t at = __atomic_load_n(&cl->fresh_at, __ATOMIC_ACQUIRE);
    return at != 0 && (now_mono_ns < at || now_mono_ns - at <= cl->staleness_ns);
}

_Static_assert(offsetof(tk_cluster_stats, staleness_ms) % sizeof(uint64_t) == 0,
               "the counters are a run of u64");

void tk_cluster_stats_get(const tk_cluster *cl, tk_cluster_stats *out)
{
    const uint64_t *src = (const uint64_t *)&cl->stats;
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < offsetof(tk_cluster_stats, staleness_ms) / sizeof(uint64_t); i++) {
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
    out->applied_seq = __atomic_load_n(&cl->applied, __ATOMIC_RELAXED);
    out->stream_seq = __atomic_load_n(&cl->head, __ATOMIC_RELAXED);
    uint64_t now = tk_mono_ns(), at = __atomic_load_n(&cl->fresh_at, __ATOMIC_ACQUIRE);
    out->staleness_ms = at == 0 ? -1 : now > at ? (int64_t)((now - at) / 1000000u) : 0;
    out->connected = connected(cl);
    out->ready = tk_cluster_fresh(cl, now);
}
