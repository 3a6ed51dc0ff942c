/*
 * The outbound thread (outbound.h): libcurl's multi interface driven by one
 * thread, fed through a bounded pool of request slots.
 *
 * A slot holds one request from submit to release: its copied URL, body and
 * header values, then its response (body and headers grow as they arrive,
 * never past their caps). Callers hold the mutex only to take a free slot
 * and append its index to the pending FIFO; the thread moves pending slots
 * into the multi handle while fewer than max_transfers run, and posts each
 * finished one to its caller: a callback (then the slot is freed at once) or
 * the worker's completion ring plus one eventfd write, as the committer does.
 *
 * Back-pressure: every slot in use means TK_E_QUEUEFULL at submit. A
 * completion ring holds cap indices, and a slot is in at most one place
 * (free, pending, running, completed), so no ring can overflow.
 *
 * curl_multi_wakeup interrupts the thread's poll on every submit and on
 * stop, so a new request starts at once rather than at the next tick.
 *
 * This file is the pool, the thread and the API; one transfer (its easy
 * handle, callbacks, result) is transfer.c's, the pure helpers response.c's.
 */
#include "outbound_int.h"

#include "tokend/crypto.h"
#include "tokend/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- Slots --------------------------------------------------------------------------------- */

static uint32_t index_of(const tk_outbound *ob, const slot *s)
{
    TK_ASSERT(s >= ob->slots && s < ob->slots + ob->cap);
    return (uint32_t)(s - ob->slots);
}

static void put_free(tk_outbound *ob, slot *s)
{
    free(s->rbody);
    free(s->rhdr);
    uint32_t i = index_of(ob, s);
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&ob->mu);
    TK_ASSERT(ob->nfree < ob->cap);
    ob->free_idx[ob->nfree++] = i;
    pthread_mutex_unlock(&ob->mu);
}

static void wake_worker(done_ring *dr)
{
    uint64_t one = 1;
    if (write(dr->efd, &one, sizeof one) != (ssize_t)sizeof one) {
        TK_ASSERT(errno == EAGAIN); /* counter near 2^64: already awake */
    }
}

/* Hand a finished slot to its caller. */
static void deliver(tk_outbound *ob, slot *s)
{
    if (s->req.cb != NULL) {
        s->req.cb(s->req.cb_arg, &s->resp);
        put_free(ob, s);
        return;
    }
    TK_ASSERT(s->req.worker < ob->cfg.nworkers);
    done_ring *dr = &ob->done[s->req.worker];
    pthread_mutex_lock(&dr->mu);
    TK_ASSERT(dr->count < ob->cap);
    dr->idx[(dr->head + dr->count) % ob->cap] = index_of(ob, s);
    dr->count++;
    pthread_mutex_unlock(&dr->mu);
    wake_worker(dr);
}

/* ---- Thread --------------------------------------------------------------------------------- */

/* Take the next pending slot, or NO_SLOT; *stop says whether to end. */
static uint32_t take_pending(tk_outbound *ob, bool *stop)
{
    pthread_mutex_lock(&ob->mu);
    *stop = ob->stopping;
    uint32_t i = NO_SLOT;
    if (!*stop && ob->pcount > 0 && ob->running < ob->cfg.max_transfers) {
        i = ob->pending[ob->phead];
        ob->phead = (ob->phead + 1) % ob->cap;
        ob->pcount--;
    }
    pthread_mutex_unlock(&ob->mu);
    return i;
}

static void start_pending(tk_outbound *ob, bool *stop)
{
    for (unsigned n = 0; n < ob->cap; n++) { /* bounded by the pool */
        uint32_t i = take_pending(ob, stop);
        if (i == NO_SLOT) {
            return;
        }
        slot *s = &ob->slots[i];
        int rc = ob_setup(ob, s);
        if (rc != 0) {
            snprintf(s->errbuf, sizeof s->errbuf, "cannot start: %s", tk_strerror(rc));
            ob_finish(ob, s, CURLE_FAILED_INIT, TK_OB_ERROR);
            deliver(ob, s);
            continue;
        }
        ob->running++;
    }
}

static void harvest(tk_outbound *ob)
{
    int left = 0;
    for (unsigned n = 0; n <= ob->cap; n++) { /* bounded: one message per transfer */
        CURLMsg *m = curl_multi_info_read(ob->multi, &left);
        if (m == NULL) {
            return;
        }
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        slot *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        TK_ASSERT(s != NULL && s->easy == m->easy_handle);
        CURLcode c = m->data.result; /* read before the handle goes */
        ob_finish(ob, s, c, TK_OB_RESULTS);
        TK_ASSERT(ob->running > 0);
        ob->running--;
        deliver(ob, s);
    }
}

/* Stopping: every running and pending request completes as canceled. */
static void cancel_all(tk_outbound *ob)
{
    for (uint32_t i = 0; i < ob->cap; i++) {
        slot *s = &ob->slots[i];
        if (s->easy != NULL) {
            ob_finish(ob, s, CURLE_ABORTED_BY_CALLBACK, TK_OB_CANCELED);
            ob->running--;
            deliver(ob, s);
        }
    }
    pthread_mutex_lock(&ob->mu);
    size_t n = ob->pcount;
    uint32_t head = (uint32_t)ob->phead;
    ob->pcount = 0;
    pthread_mutex_unlock(&ob->mu);
    for (size_t k = 0; k < n; k++) {
        slot *s = &ob->slots[ob->pending[(head + k) % ob->cap]];
        ob_finish(ob, s, CURLE_ABORTED_BY_CALLBACK, TK_OB_CANCELED);
        deliver(ob, s);
    }
}

static void *outbound_main(void *arg)
{
    tk_outbound *ob = arg;
    /* Event loop: runs until tk_outbound_stop. */
    for (;;) {
        bool stop = false;
        start_pending(ob, &stop);
        if (stop) {
            cancel_all(ob);
            return NULL;
        }
        int still = 0;
        CURLMcode mc = curl_multi_perform(ob->multi, &still);
        if (mc != CURLM_OK) {
            tk_log_error("outbound_multi", "error=\"%s\"", curl_multi_strerror(mc));
        }
        harvest(ob);
        /* Woken early by curl_multi_wakeup (submit, stop) or socket activity. */
        mc = curl_multi_poll(ob->multi, NULL, 0, TK_OUTBOUND_POLL_MS, NULL);
        if (mc != CURLM_OK) {
            tk_log_error("outbound_poll", "error=\"%s\"", curl_multi_strerror(mc));
            usleep(10000); /* never spin on a broken poll */
        }
    }
}

/* ---- Public API -------------------------------------------------------------------------------
 */

int tk_outbound_global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return TK_E_INVALID;
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    /* CURLOPT_PROTOCOLS_STR needs 7.85; TLS and a thread-safe resolver are
     * what make one thread with many transfers safe. */
    if (vi->version_num < 0x075500 || !(vi->features & CURL_VERSION_SSL) ||
        !(vi->features & CURL_VERSION_ASYNCHDNS)) {
        tk_log_error("outbound_curl", "version=%s ssl=%s asyncdns=%s", vi->version,
                     (vi->features & CURL_VERSION_SSL) ? "yes" : "no",
                     (vi->features & CURL_VERSION_ASYNCHDNS) ? "yes" : "no");
        curl_global_cleanup();
        return TK_E_INVALID;
    }
    return 0;
}

void tk_outbound_global_cleanup(void)
{
    curl_global_cleanup();
}

static void free_outbound(tk_outbound *ob)
{
    for (unsigned w = 0; ob->done != NULL && w < ob->cfg.nworkers; w++) {
        if (ob->done[w].efd >= 0) {
            close(ob->done[w].efd);
        }
        pthread_mutex_destroy(&ob->done[w].mu);
        free(ob->done[w].idx);
    }
    for (unsigned i = 0; ob->slots != NULL && i < ob->cap; i++) {
        free(ob->slots[i].rbody); /* completions never drained */
        free(ob->slots[i].rhdr);
    }
    if (ob->multi != NULL) {
        curl_multi_cleanup(ob->multi);
    }
    free(ob->done);
    free(ob->slots);
    free(ob->free_idx);
    free(ob->pending);
    pthread_mutex_destroy(&ob->mu);
    free(ob);
}

static int init_done(tk_outbound *ob)
{
    unsigned n = ob->cfg.nworkers;
    ob->done = calloc(n > 0 ? n : 1, sizeof *ob->done);
    if (ob->done == NULL) {
        return -ENOMEM;
    }
    for (unsigned w = 0; w < n; w++) {
        ob->done[w].efd = -1;
        pthread_mutex_init(&ob->done[w].mu, NULL);
    }
    for (unsigned w = 0; w < n; w++) {
        ob->done[w].idx = calloc(ob->cap, sizeof(uint32_t));
        if (ob->done[w].idx == NULL) {
            return -ENOMEM;
        }
        ob->done[w].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ob->done[w].efd < 0) {
            return -errno;
        }
    }
    return 0;
}

static int check_cfg(tk_outbound_cfg *c)
{
    c->queue_cap = c->queue_cap != 0 ? c->queue_cap : TK_OUTBOUND_QUEUE_DEFAULT;
    c->max_transfers = c->max_transfers != 0 ? c->max_transfers : TK_OUTBOUND_TRANSFERS_DEFAULT;
    c->timeout_ms = c->timeout_ms != 0 ? c->timeout_ms : TK_OUTBOUND_TIMEOUT_MS_DEFAULT;
    c->connect_timeout_ms =
        c->connect_timeout_ms != 0 ? c->connect_timeout_ms : TK_OUTBOUND_CONNECT_MS_DEFAULT;
    c->max_bytes = c->max_bytes != 0 ? c->max_bytes : TK_OUTBOUND_BODY_DEFAULT;
    bool ok = c->nworkers <= TK_WORKERS_MAX && c->queue_cap <= TK_OUTBOUND_QUEUE_MAX &&
              c->max_transfers <= TK_OUTBOUND_TRANSFERS_MAX &&
              c->timeout_ms <= TK_OUTBOUND_TIMEOUT_MS_MAX &&
              c->connect_timeout_ms <= c->timeout_ms && c->max_bytes <= TK_OUTBOUND_BODY_MAX;
    return ok ? 0 : -EINVAL;
}

int tk_outbound_start(const tk_outbound_cfg *cfg, tk_outbound **out)
{
    tk_outbound_cfg c = *cfg;
    if (check_cfg(&c) != 0) {
        return -EINVAL;
    }
    tk_outbound *ob = calloc(1, sizeof *ob);
    if (ob == NULL) {
        return -ENOMEM;
    }
    ob->cfg = c;
    ob->cap = c.queue_cap;
    pthread_mutex_init(&ob->mu, NULL);
    ob->slots = calloc(ob->cap, sizeof *ob->slots);
    ob->free_idx = calloc(ob->cap, sizeof *ob->free_idx);
    ob->pending = calloc(ob->cap, sizeof *ob->pending);
    ob->multi = curl_multi_init();
    bool oom = ob->slots == NULL || ob->free_idx == NULL || ob->pending == NULL;
    int rc = oom ? -ENOMEM : ob->multi == NULL ? TK_E_INVALID : init_done(ob);
    for (uint32_t i = 0; rc == 0 && i < ob->cap; i++) {
        ob->free_idx[ob->nfree++] = ob->cap - 1 - i; /* slot 0 is taken first */
    }
    if (rc == 0) {
        /* Transfers beyond max_transfers wait in our FIFO, not curl's. */
        curl_multi_setopt(ob->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c.max_transfers);
        rc = -pthread_create(&ob->thread, NULL, outbound_main, ob);
    }
    if (rc != 0) {
        free_outbound(ob);
        return rc;
    }
    ob->started = true;
    *out = ob;
    return 0;
}

/* A header value or URL: printable ASCII, no CR/LF, within cap. */
static int copy_value(char *dst, size_t cap, const char *v, bool allow_space)
{
    if (v == NULL) {
        dst[0] = '\0';
        return 0;
    }
    size_t n = strlen(v);
    if (n >= cap) {
        return TK_E_TOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f || (!allow_space && v[i] == ' ')) {
            return TK_E_INVALID;
        }
    }
    memcpy(dst, v, n + 1);
    return 0;
}

static int check_req(const tk_outbound *ob, const tk_outbound_req *req)
{
    if (req->url == NULL || req->purpose >= TK_OB_PURPOSES || req->method > TK_OB_POST) {
        return TK_E_INVALID;
    }
    if (strncasecmp(req->url, "https://", 8) != 0 && strncasecmp(req->url, "http://", 7) != 0) {
        return TK_E_INVALID;
    }
    if (req->cb == NULL && req->worker >= ob->cfg.nworkers) {
        return TK_E_INVALID;
    }
    if (req->method == TK_OB_POST && req->body_len > TK_OUTBOUND_REQ_BODY_MAX) {
        return TK_E_TOOBIG;
    }
    return 0;
}

/* Copy the request into a slot (outside the lock: the slot is ours). */
static int fill_slot(const tk_outbound *ob, slot *s, const tk_outbound_req *req)
{
    s->req = *req;
    int rc = copy_value(s->url, sizeof s->url, req->url, false);
    rc = rc != 0 ? rc : copy_value(s->ctype, sizeof s->ctype, req->content_type, true);
    rc = rc != 0 ? rc : copy_value(s->accept, sizeof s->accept, req->accept, true);
    rc = rc != 0 ? rc : copy_value(s->auth, sizeof s->auth, req->authorization, true);
    if (rc == 0 && req->method == TK_OB_POST && req->body_len > 0) {
        memcpy(s->body, req->body, req->body_len);
    }
    s->req.url = s->req.body = s->req.content_type = s->req.accept = s->req.authorization = NULL;
    s->cap = req->max_bytes != 0 && req->max_bytes < ob->cfg.max_bytes ? req->max_bytes
                                                                       : ob->cfg.max_bytes;
    s->timeout_ms = req->timeout_ms != 0 && req->timeout_ms < ob->cfg.timeout_ms
                        ? req->timeout_ms
                        : ob->cfg.timeout_ms;
    return rc;
}

int tk_outbound_submit(tk_outbound *ob, const tk_outbound_req *req)
{
    int rc = check_req(ob, req);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&ob->mu);
    uint32_t i = !ob->stopping && ob->nfree > 0 ? ob->free_idx[--ob->nfree] : NO_SLOT;
    pthread_mutex_unlock(&ob->mu);
    if (i == NO_SLOT) {
        STAT_ADD(ob, requests[req->purpose][TK_OB_QUEUE_FULL], 1);
        tk_log_warn("outbound_queue_full", "purpose=%s", tk_outbound_purpose_name(req->purpose));
        return TK_E_QUEUEFULL;
    }
    slot *s = &ob->slots[i];
    rc = fill_slot(ob, s, req);
    if (rc != 0) {
        tk_cleanse(s->auth, sizeof s->auth);
        put_free(ob, s);
        return rc;
    }
    pthread_mutex_lock(&ob->mu);
    TK_ASSERT(ob->pcount < ob->cap);
    ob->pending[(ob->phead + ob->pcount) % ob->cap] = i;
    ob->pcount++;
    curl_multi_wakeup(ob->multi); /* under the lock: stop cannot free the multi meanwhile */
    pthread_mutex_unlock(&ob->mu);
    return 0;
}

int tk_outbound_event_fd(const tk_outbound *ob, unsigned worker)
{
    TK_ASSERT(worker < ob->cfg.nworkers);
    return ob->done[worker].efd;
}

size_t tk_outbound_drain(tk_outbound *ob, unsigned worker, const tk_outbound_resp **out, size_t max)
{
    TK_ASSERT(worker < ob->cfg.nworkers);
    done_ring *dr = &ob->done[worker];
    pthread_mutex_lock(&dr->mu);
    size_t n = dr->count < max ? dr->count : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = &ob->slots[dr->idx[(dr->head + i) % ob->cap]].resp;
    }
    dr->head = (dr->head + n) % ob->cap;
    dr->count -= n;
    pthread_mutex_unlock(&dr->mu);
    return n;
}

void tk_outbound_release(tk_outbound *ob, const tk_outbound_resp *resp)
{
    slot *s = (slot *)((const char *)resp - offsetof(slot, resp));
    put_free(ob, s);
}

void tk_outbound_stats_get(const tk_outbound *ob, tk_outbound_stats *out)
{
    const uint64_t *src = (const uint64_t *)&ob->stats;
    uint64_t *dst = (uint64_t *)out;
    _Static_assert(sizeof(tk_outbound_stats) % sizeof(uint64_t) == 0, "stats are all u64");
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) {
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
}

void tk_outbound_stop(tk_outbound *ob)
{
    if (ob == NULL) {
        return;
    }
    pthread_mutex_lock(&ob->mu);
    ob->stopping = true;
    curl_multi_wakeup(ob->multi);
    pthread_mutex_unlock(&ob->mu);
    if (ob->started) {
        pthread_join(ob->thread, NULL);
    }
    free_outbound(ob);
}
