/*
 * The io_uring HTTP server: one ring per worker thread, one dispatch switch.
 *
 * Each turn of a worker's loop submits what is queued and waits, harvests up
 * to TK_CQE_BATCH completions, calls the application's batch_begin (which
 * renews its read transaction: everything committed before these completions
 * were harvested is visible), then handles each completion by the operation
 * packed in its user_data. Received bytes are copied from the provided
 * buffer into the connection's input buffer and the buffer goes straight back
 * to the ring, so the ring never runs dry while a connection waits.
 */
#include "conn.h"
#include "tls.h"
#include "tokend/clock.h"
#include "tokend/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS   250
#define LINGER_MS 2000

/* ---- Counters (written by the owning worker, read by /metrics) ---------- */

#define STAT_INC(w, f)                                                                             \
    __atomic_store_n(&(w)->stats.f, __atomic_load_n(&(w)->stats.f, __ATOMIC_RELAXED) + 1,          \
                     __ATOMIC_RELAXED)

/* ---- Submission helpers -------------------------------------------------- */

/* A submission entry, flushing the queue when it is full. The ring has room
 * for RING_ENTRIES and a flush always frees the whole queue, so the second
 * attempt cannot fail. */
static struct io_uring_sqe *get_sqe(tk_worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (TK_UNLIKELY(sqe == NULL)) {
        int r;
        do {
            r = io_uring_submit(&w->ring);
        } while (r == -EINTR);
        sqe = io_uring_get_sqe(&w->ring);
    }
    TK_ASSERT(sqe != NULL);
    return sqe;
}

/* One multishot accept per listener; its index travels in the slot bits. */
static void arm_accept(tk_worker *w, unsigned listener)
{
    TK_ASSERT(listener < w->nlisteners);
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_multishot_accept(sqe, w->listen_fd[listener], NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_ACCEPT, listener, 0));
    w->accept_armed[listener] = true;
}

static void arm_accepts(tk_worker *w)
{
    for (unsigned i = 0; i < w->nlisteners; i++) {
        if (!w->accept_armed[i]) {
            arm_accept(w, i);
        }
    }
}

static void arm_read8(tk_worker *w, int fd, uint64_t *buf, enum op op)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_read(sqe, fd, buf, sizeof(*buf), 0);
    io_uring_sqe_set_data64(sqe, ud_pack(op, 0, 0));
}

static void arm_timer(tk_worker *w)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    w->tick.tv_sec = 0;
    w->tick.tv_nsec = TICK_MS * 1000000L;
    io_uring_prep_timeout(sqe, &w->tick, 0, 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_TIMER, 0, 0));
}

static void arm_recv(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_recv(sqe, c->fd, NULL, TK_RECV_BUF_SIZE, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV, slot, c->gen));
    c->recv_armed = true;
}

static void arm_send(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    TK_ASSERT(c->out_sent < c->out.len);
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_send(sqe, c->fd, c->out.buf + c->out_sent, c->out.len - c->out_sent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, slot, c->gen));
    c->send_armed = true;
}

/* TLS: send the next run of ciphertext straight from the BIO pair. */
static void arm_send_tls(tk_worker *w, uint32_t slot, const char *p, size_t n)
{
    struct conn *c = &w->conns[slot];
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, slot, c->gen));
    c->send_armed = true;
}

static void return_buffer(tk_worker *w, unsigned bid)
{
    TK_ASSERT(bid < TK_RECV_BUFS);
    io_uring_buf_ring_add(w->br, w->recv_bufs + (size_t)bid * TK_RECV_BUF_SIZE, TK_RECV_BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(TK_RECV_BUFS), 0);
    io_uring_buf_ring_advance(w->br, 1);
}

/* ---- Connection table ---------------------------------------------------- */

static uint32_t conn_alloc(tk_worker *w, int fd)
{
    uint32_t slot = w->free_head;
    if (slot == UINT32_MAX) {
        return UINT32_MAX;
    }
    struct conn *c = &w->conns[slot];
    w->free_head = c->next_free;
    c->fd = fd;
    c->phase = PH_IDLE;
    c->recv_armed = c->send_armed = c->deferred = c->closing = c->shut = false;
    c->deferred_close = false;
    c->in_len = c->need = 0;
    c->lingering = false;
    c->out.len = 0;
    c->out.close = false;
    c->out_sent = 0;
    c->deadline_ms = w->now_ms + w->srv->cfg.idle_timeout_ms;
    w->active++;
    if (slot + 1 > w->high_water) {
        w->high_water = slot + 1;
    }
    return slot;
}

/* Forget the output buffer's consumed prefix (sent, or encrypted into the
 * TLS pair): all of it at once when everything went, else by moving the
 * rest down once more than half of the buffer is consumed (so a slow
 * reader costs few moves). */
static void out_consumed(struct conn *c)
{
    if (c->out_sent == c->out.len) {
        c->out.len = c->out_sent = 0;
    } else if (c->out_sent > c->out.cap / 2) {
        memmove(c->out.buf, c->out.buf + c->out_sent, c->out.len - c->out_sent);
        c->out.len -= c->out_sent;
        c->out_sent = 0;
    }
}

/* The client's address as 16 bytes (IPv4 mapped into IPv6), for the
 * application's per-address decisions. One getpeername per connection. */
static void conn_peer(struct conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(c->peer, 0, sizeof(c->peer));
    if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET6) {
        memcpy(c->peer, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else if (ss.ss_family == AF_INET) {
        c->peer[10] = c->peer[11] = 0xff;
        memcpy(c->peer + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    }
}

/* Release the slot once nothing is in flight on it. A deferred request may
 * still be with the application: its completion will carry the old
 * generation and be ignored. */
static void conn_maybe_free(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    if (c->fd < 0 || !c->shut || c->recv_armed || c->send_armed) {
        return; /* fd < 0: freed already (on_send closes, then frees again) */
    }
    if (c->ssl != NULL) {
        tk_tls_conn_end(c);
    }
    close(c->fd);
    c->fd = -1;
    if (w->srv->hooks.closed != NULL) {
        w->srv->hooks.closed(w->wctx, ((uint64_t)c->gen << 32) | slot);
    }
    c->gen = (c->gen + 1) & 0x0fffffffu;
    c->next_free = w->free_head;
    w->free_head = slot;
    TK_ASSERT(w->active > 0);
    w->active--;
    STAT_INC(w, closed);
}

/* Stop the connection: shutdown(2) makes any pending recv complete with 0
 * and any pending send fail, after which the slot is freed. */
static void conn_close(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    if (c->shut) {
        return;
    }
    c->shut = true;
    c->closing = true;
    shutdown(c->fd, SHUT_RDWR);
    conn_maybe_free(w, slot);
}

/* After a final response: stop sending, then read and discard until the peer
 * closes (or LINGER_MS passes), so unread pipelined bytes do not turn the
 * close into a reset that could destroy the response in flight. */
static void conn_finish(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    if (c->lingering || c->shut) {
        return;
    }
    c->lingering = true;
    shutdown(c->fd, SHUT_WR);
    c->deadline_ms = w->now_ms + LINGER_MS;
    c->in_len = 0;
    if (!c->recv_armed) {
        arm_recv(w, slot);
    }
}

/* ---- Request processing -------------------------------------------------- */

static void write_error(tk_worker *w, struct conn *c, int status)
{
    char body[96];
    static const char pre[] = "{\"error\":\"invalid_request\",\"error_description\":\"";
    const char *reason = tk_http_reason(status);
    size_t n = 0;
    memcpy(body, pre, sizeof(pre) - 1);
    n += sizeof(pre) - 1;
    size_t rl = strlen(reason);
    if (rl > sizeof(body) - n - 3) {
        rl = sizeof(body) - n - 3;
    }
    memcpy(body + n, reason, rl);
    n += rl;
    memcpy(body + n, "\"}", 2);
    n += 2;
    c->out.close = true;
    if (tk_http_respond(&c->out, status, "application/json", NULL, body, n) != 0) {
        c->out.len = c->out_sent; /* no room: just close */
    }
    STAT_INC(w, bad_requests);
}

/* Parse and answer as many buffered requests as the output buffer and the
 * in-order rule allow. Returns the bytes of input consumed. */
static size_t serve_buffered(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    const tk_server_cfg *cfg = &w->srv->cfg;
    size_t off = 0;
    tk_http_request req;

    for (unsigned n = 0; n < TK_CONN_IN_MAX && !c->deferred && !c->closing; n++) {
        if (tk_outbuf_room(&c->out) < TK_RESPONSE_MAX || off == c->in_len) {
            break;
        }
        size_t avail = c->in_len - off;
        if (c->need != 0 && avail < c->need) {
            break; /* body still incomplete: no need to parse the head again */
        }
        req.content_length = 0;
        req.body.p = NULL;
        int r = tk_http_parse(c->in + off, avail, cfg->max_body, &req);
        if (r < 0) {
            write_error(w, c, -r);
            c->closing = true;
            break;
        }
        if (r == 0) {
            if (req.body.p != NULL && req.content_length > 0) {
                /* Head done, body incomplete: wait for all of it. */
                c->need = (size_t)(req.body.p - (c->in + off)) + req.content_length;
                if (c->phase != PH_BODY) {
                    c->phase = PH_BODY;
                    c->deadline_ms = w->now_ms + cfg->body_timeout_ms;
                }
            } else if (c->phase == PH_IDLE) {
                c->phase = PH_HEAD;
                c->deadline_ms = w->now_ms + cfg->header_timeout_ms;
            }
            break;
        }
        off += (size_t)r;
        c->need = 0;
        c->phase = PH_IDLE;
        c->out.close = !req.keep_alive || w->draining;
        memcpy(req.peer, c->peer, sizeof(req.peer));
        req.listener = c->listener;
        req.cert = c->cert;
        uint64_t cookie = ((uint64_t)c->gen << 32) | slot;
        uint32_t tag = 0;
        int v = w->srv->hooks.request(w->wctx, &req, &c->out, cookie, &tag);
        if (v == TK_SERVER_DEFERRED) {
            c->deferred = true;
            c->tag = tag;
            c->deferred_close = c->out.close;
        } else if (c->out.close) {
            c->closing = true;
        }
    }
    return off;
}

static void conn_advance_tls(tk_worker *w, uint32_t slot);

/* Everything that follows new input or a finished send: answer what can be
 * answered, send, decide whether to read more or close. */
static void conn_advance(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    if (c->shut) {
        conn_maybe_free(w, slot);
        return;
    }
    if (c->lingering) {
        return;
    }
    if (c->ssl != NULL) {
        conn_advance_tls(w, slot);
        return;
    }
    size_t used = serve_buffered(w, slot);
    if (used > 0) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    if (c->out.len > c->out_sent && !c->send_armed) {
        arm_send(w, slot);
        c->deadline_ms = w->now_ms + w->srv->cfg.idle_timeout_ms; /* a reader that never drains */
    }
    if (c->closing) {
        if (!c->send_armed && !c->deferred) {
            conn_finish(w, slot);
        }
        return;
    }
    if (c->in_len == 0 && !c->deferred && c->out.len == c->out_sent && c->phase == PH_IDLE) {
        if (w->draining) {
            conn_close(w, slot);
            return;
        }
        c->deadline_ms = w->now_ms + w->srv->cfg.idle_timeout_ms;
    }
    /* Read more only while a whole receive buffer fits. */
    if (!c->recv_armed && w->in_cap - c->in_len >= TK_RECV_BUF_SIZE) {
        arm_recv(w, slot);
    }
}

/* conn_advance for a TLS connection: decrypt what arrived (finishing the
 * handshake first), answer, encrypt the answers, send the ciphertext; the
 * same rules as the plain path for closing and timeouts. The handshake runs
 * under the header timeout set at accept. */
static void conn_advance_tls(tk_worker *w, uint32_t slot)
{
    struct conn *c = &w->conns[slot];
    const tk_server_cfg *cfg = &w->srv->cfg;
    bool failed = false;
    if (!c->closing) {
        enum tk_tls_event ev = tk_tls_pump_in(c, w->in_cap);
        if (ev == TK_TLS_HANDSHAKE) {
            c->phase = PH_IDLE;
            c->deadline_ms = w->now_ms + cfg->idle_timeout_ms;
        } else if (ev == TK_TLS_EOF) {
            c->closing = true;
        } else if (ev == TK_TLS_FAILED) {
            c->closing = failed = true;
            STAT_INC(w, bad_requests);
        }
    }
    if (!failed && tk_tls_ready(c)) {
        size_t used = serve_buffered(w, slot);
        if (used > 0) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
        }
        failed = !tk_tls_pump_out(c);
        out_consumed(c);
        if (failed) {
            c->closing = true;
            c->out.len = c->out_sent = 0;
        }
    }
    bool answered = c->out.len == 0 && !c->deferred;
    if (c->closing && answered && !failed && tk_tls_ready(c)) {
        tk_tls_close_notify(c);
    }
    const char *p;
    size_t n = c->send_armed ? 0 : tk_tls_pending(c, &p);
    if (n > 0) {
        arm_send_tls(w, slot, p, n);
        if (tk_tls_ready(c)) {
            c->deadline_ms = w->now_ms + cfg->idle_timeout_ms; /* a reader that never drains */
        }
    }
    if (c->closing) {
        if (!c->send_armed && answered) {
            conn_finish(w, slot);
        }
        return;
    }
    if (!tk_tls_ready(c) && w->draining) {
        conn_close(w, slot); /* a handshake in progress is not a request in flight */
        return;
    }
    if (tk_tls_ready(c) && c->in_len == 0 && answered && c->phase == PH_IDLE) {
        if (w->draining) {
            conn_close(w, slot);
            return;
        }
        c->deadline_ms = w->now_ms + cfg->idle_timeout_ms;
    }
    if (!c->recv_armed && tk_tls_room(c) >= TK_RECV_BUF_SIZE) {
        arm_recv(w, slot);
    }
}

/* ---- Completion handlers ------------------------------------------------- */

static void on_accept(tk_worker *w, const struct io_uring_cqe *cqe)
{
    uint32_t listener = ud_slot(cqe->user_data);
    TK_ASSERT(listener < w->nlisteners);
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        w->accept_armed[listener] = false;
    }
    if (cqe->res < 0) {
        if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOBUFS ||
            cqe->res == -ENOMEM) {
            /* Out of descriptors or memory: stop accepting until the next
             * tick instead of spinning; existing connections keep going. */
            if (!w->backoff_logged) {
                tk_log_warn("accept_backoff", "worker=%u error=\"%s\" retry_ms=%d", w->id,
                            tk_strerror(cqe->res), TICK_MS);
                w->backoff_logged = true;
            }
            w->accept_paused = true;
        } else if (cqe->res != -ECANCELED && cqe->res != -EINVAL) {
            tk_log_warn("accept_failed", "worker=%u error=\"%s\"", w->id, tk_strerror(cqe->res));
        }
        return;
    }
    int fd = cqe->res;
    if (w->backoff_logged) {
        tk_log_info("accept_resumed", "worker=%u", w->id);
        w->backoff_logged = false;
    }
    if (w->draining) {
        close(fd);
        return;
    }
    uint32_t slot = conn_alloc(w, fd);
    if (slot == UINT32_MAX) {
        /* Connection table full: refuse cleanly rather than queue forever. */
        close(fd);
        STAT_INC(w, refused);
        return;
    }
    STAT_INC(w, accepted);
    struct conn *c = &w->conns[slot];
    c->listener = w->listen_label[listener];
    conn_peer(c);
    if (w->listen_tls[listener]) {
        if (tk_tls_conn_start(w->srv->tlsctx, c) != 0) {
            conn_close(w, slot);
            return;
        }
        c->phase = PH_HEAD; /* the handshake must finish within the header timeout */
        c->deadline_ms = w->now_ms + w->srv->cfg.header_timeout_ms;
    }
    arm_recv(w, slot);
}

static void on_recv(tk_worker *w, const struct io_uring_cqe *cqe)
{
    uint32_t slot = ud_slot(cqe->user_data);
    struct conn *c = &w->conns[slot];
    bool has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
    unsigned bid = has_buf ? cqe->flags >> IORING_CQE_BUFFER_SHIFT : 0;

    TK_ASSERT(slot < w->nconns && c->gen == ud_gen(cqe->user_data) && c->recv_armed);
    c->recv_armed = false;
    if (c->lingering && !c->shut) {
        if (has_buf) {
            return_buffer(w, bid);
        }
        if (cqe->res > 0 || cqe->res == -ENOBUFS) {
            arm_recv(w, slot); /* discard until the peer closes */
        } else {
            conn_close(w, slot);
        }
        return;
    }
    if (cqe->res > 0 && has_buf && !c->shut) {
        size_t n = (size_t)cqe->res;
        const char *p = w->recv_bufs + (size_t)bid * TK_RECV_BUF_SIZE;
        if (c->ssl != NULL) {
            tk_tls_feed(c, p, n); /* room was checked when the receive was armed */
        } else {
            TK_ASSERT(n <= TK_RECV_BUF_SIZE && c->in_len + n <= w->in_cap);
            memcpy(c->in + c->in_len, p, n);
            c->in_len += n;
        }
    }
    if (has_buf) {
        return_buffer(w, bid);
    }
    if (cqe->res == -ENOBUFS) {
        conn_advance(w, slot); /* buffers are back by now: simply read again */
        return;
    }
    if (cqe->res <= 0) {
        /* Peer closed or reset. A deferred answer has nobody to go to. */
        c->closing = true;
        if (!c->shut) {
            conn_close(w, slot);
        } else {
            conn_maybe_free(w, slot);
        }
        return;
    }
    conn_advance(w, slot);
}

static void on_send(tk_worker *w, const struct io_uring_cqe *cqe)
{
    uint32_t slot = ud_slot(cqe->user_data);
    struct conn *c = &w->conns[slot];

    TK_ASSERT(slot < w->nconns && c->gen == ud_gen(cqe->user_data) && c->send_armed);
    c->send_armed = false;
    if (cqe->res < 0 || c->shut) {
        c->closing = true;
        conn_close(w, slot);
        conn_maybe_free(w, slot);
        return;
    }
    if (c->ssl != NULL) {
        tk_tls_sent(c, (size_t)cqe->res); /* the answer's plaintext was accounted at encryption */
        conn_advance(w, slot);
        return;
    }
    c->out_sent += (size_t)cqe->res;
    TK_ASSERT(c->out_sent <= c->out.len);
    out_consumed(c);
    if (c->out.len == 0 && c->phase == PH_IDLE) {
        c->deadline_ms = w->now_ms + w->srv->cfg.idle_timeout_ms;
    }
    conn_advance(w, slot);
}

/* The application finished deferred requests: write their answers. */
/* A completion nobody will answer: the application still frees what it
 * keeps for it (a parked answer, say), or it would leak until it goes stale. */
static void completion_dropped(tk_worker *w, const tk_server_done *done)
{
    if (w->srv->hooks.dropped != NULL) {
        w->srv->hooks.dropped(w->wctx, done);
    }
}

static void on_wake(tk_worker *w)
{
    tk_server_done done[64];
    for (unsigned round = 0; round < TK_COMMIT_QUEUE_MAX / 64 + 1; round++) {
        size_t n = w->srv->hooks.wake(w->wctx, done, TK_ARRAY_LEN(done));
        for (size_t i = 0; i < n; i++) {
            uint32_t slot = (uint32_t)done[i].cookie;
            uint32_t gen = (uint32_t)(done[i].cookie >> 32);
            if (slot >= w->nconns) {
                continue;
            }
            struct conn *c = &w->conns[slot];
            if (c->fd < 0 || c->gen != gen || !c->deferred) {
                completion_dropped(w, &done[i]); /* the connection went away meanwhile */
                continue;
            }
            c->deferred = false;
            if (c->shut) {
                completion_dropped(w, &done[i]);
                conn_maybe_free(w, slot);
                continue;
            }
            c->out.close = c->deferred_close || w->draining;
            w->srv->hooks.respond(w->wctx, c->tag, &done[i], &c->out);
            if (c->out.close) {
                c->closing = true;
            }
            conn_advance(w, slot);
        }
        if (n < TK_ARRAY_LEN(done)) {
            break;
        }
    }
}

static void close_listener(tk_worker *w)
{
    if (!w->listen_closed) {
        w->listen_closed = true;
        for (unsigned i = 0; i < w->nlisteners; i++) {
            if (w->accept_armed[i]) {
                struct io_uring_sqe *sqe = get_sqe(w);
                io_uring_prep_cancel64(sqe, ud_pack(OP_ACCEPT, i, 0), 0);
                io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
            }
        }
    }
}

static void begin_drain(tk_worker *w)
{
    if (w->draining) {
        return;
    }
    w->draining = true;
    w->drain_deadline_ms = w->now_ms + TK_DRAIN_TIMEOUT_MS;
    close_listener(w);
    for (uint32_t i = 0; i < w->high_water; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd >= 0 && !c->shut) {
            conn_advance(w, i); /* idle ones close, busy ones answer with close */
        }
    }
}

static void on_timer(tk_worker *w)
{
    if (w->accept_paused && !w->draining) {
        w->accept_paused = false;
        arm_accepts(w);
    }
    bool force = w->draining && w->now_ms >= w->drain_deadline_ms;
    for (uint32_t i = 0; i < w->high_water; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd < 0 || c->shut) {
            continue;
        }
        if (force || (!c->deferred && c->deadline_ms <= w->now_ms)) {
            if (!force && !c->lingering) {
                STAT_INC(w, timeouts);
            }
            conn_close(w, i);
        }
    }
    arm_timer(w);
}

static void dispatch(tk_worker *w, const struct io_uring_cqe *cqe)
{
    switch (ud_op(cqe->user_data)) {
    case OP_ACCEPT:
        on_accept(w, cqe);
        break;
    case OP_RECV:
        on_recv(w, cqe);
        break;
    case OP_SEND:
        on_send(w, cqe);
        break;
    case OP_WAKE:
        if (cqe->res < 0 && cqe->res != -EAGAIN && cqe->res != -EINTR) {
            tk_log_error("wake_read_failed", "worker=%u error=\"%s\"", w->id,
                         tk_strerror(cqe->res));
        }
        on_wake(w);
        arm_read8(w, w->wake_fd, &w->wake_buf, OP_WAKE);
        break;
    case OP_STOP:
        begin_drain(w);
        break;
    case OP_TIMER:
        on_timer(w);
        break;
    case OP_CANCEL:
        break;
    default:
        tk_assert_fail("unknown operation in user_data", __FILE__, __LINE__);
    }
}

/* ---- Worker set-up and loop ---------------------------------------------- */

static bool worker_done(const tk_worker *w)
{
    return w->draining && w->active == 0;
}

/* The batch's plain-text receives that begin requests, to the hint hook.
 * Only reads: the completions are dispatched afterwards as always. */
static void hint_batch(tk_worker *w, const struct io_uring_cqe *batch, unsigned n)
{
    tk_server_hint h[TK_CQE_BATCH];
    size_t k = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct io_uring_cqe *cqe = &batch[i];
        uint32_t slot = ud_slot(cqe->user_data);
        if (ud_op(cqe->user_data) != OP_RECV || cqe->res <= 0 ||
            (cqe->flags & IORING_CQE_F_BUFFER) == 0 || slot >= w->nconns) {
            continue;
        }
        const struct conn *c = &w->conns[slot];
        if (c->gen != ud_gen(cqe->user_data) || c->ssl != NULL || c->lingering || c->shut ||
            c->in_len != 0) {
            continue;
        }
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        h[k++] = (tk_server_hint){w->recv_bufs + (size_t)bid * TK_RECV_BUF_SIZE, (size_t)cqe->res};
    }
    if (k > 0) {
        w->srv->hooks.hint(w->wctx, h, k);
    }
}

static void worker_loop(tk_worker *w)
{
    struct io_uring_cqe *cqes[TK_CQE_BATCH];
    struct io_uring_cqe batch[TK_CQE_BATCH];

    /* The event loop: runs until a drain completes (the one unbounded loop). */
    while (!worker_done(w)) {
        int r = io_uring_submit_and_wait(&w->ring, 1);
        if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY) {
            tk_log_error("ring_failed", "worker=%u error=\"%s\"", w->id, tk_strerror(r));
            break;
        }
        unsigned n = io_uring_peek_batch_cqe(&w->ring, cqes, TK_CQE_BATCH);
        for (unsigned i = 0; i < n; i++) {
            batch[i] = *cqes[i];
        }
        io_uring_cq_advance(&w->ring, n);
        if (n == 0) {
            continue;
        }
        w->now_ms = tk_mono_ms();
        w->srv->hooks.batch_begin(w->wctx);
        if (w->srv->hooks.hint != NULL) {
            hint_batch(w, batch, n);
        }
        for (unsigned i = 0; i < n; i++) {
            dispatch(w, &batch[i]);
            /* Hand the answers so far to the kernel now rather than at the end
             * of a long batch: their clients then work on them while this
             * batch goes on, instead of both sides taking turns. */
            if ((i + 1) % TK_SEND_FLUSH == 0 && i + 1 < n && io_uring_sq_ready(&w->ring) > 0) {
                (void)io_uring_submit(&w->ring); /* a failure leaves them queued for the next */
            }
        }
    }
    io_uring_submit(&w->ring);
}

static void signal_started(tk_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->started++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void *worker_main(void *arg)
{
    tk_worker *w = arg;
    tk_server *s = w->srv;

    if (s->cfg.pin_cpus) {
        tk_worker_pin(w->id);
    }
    w->now_ms = tk_mono_ms();
    w->init_result = tk_worker_setup_ring(w);
    if (w->init_result == 0) {
        w->wctx = s->hooks.worker_init(s->hooks.app, w->id);
        if (w->wctx == NULL) {
            w->init_result = -ENOMEM;
        }
    }
    if (w->init_result != 0) {
        tk_log_error("worker_init_failed", "worker=%u error=\"%s\"", w->id,
                     tk_strerror(w->init_result));
        signal_started(s);
        return NULL;
    }
    w->wake_fd = s->hooks.wake_fd(w->wctx);
    arm_accepts(w);
    arm_read8(w, w->stop_fd, &w->stop_buf, OP_STOP);
    if (w->wake_fd >= 0) {
        arm_read8(w, w->wake_fd, &w->wake_buf, OP_WAKE);
    }
    arm_timer(w);
    signal_started(s);
    worker_loop(w);
    s->hooks.worker_fini(w->wctx);
    io_uring_queue_exit(&w->ring);
    return NULL;
}

/* ---- Start and stop ------------------------------------------------------ */

int tk_server_start(const tk_server_cfg *cfg, const tk_server_hooks *hooks, tk_server **out)
{
    tk_server *s = NULL;
    int r = tk_server_setup(cfg, hooks, &s);
    if (r != 0) {
        return r;
    }
    unsigned n = s->nalloc;
    if (cfg->bound != NULL) {
        cfg->bound(cfg->bound_arg, s->port); /* before any worker runs */
    }
    unsigned spawned = 0;
    for (; spawned < n; spawned++) {
        r = -pthread_create(&s->workers[spawned].thread, NULL, worker_main, &s->workers[spawned]);
        if (r != 0) {
            break;
        }
    }
    pthread_mutex_lock(&s->lock);
    while (s->started < spawned) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < spawned && r == 0; i++) {
        r = s->workers[i].init_result;
    }
    if (r != 0) {
        s->nworkers = spawned;
        tk_server_stop(s);
        tk_server_join(s);
        return r;
    }
    *out = s;
    return 0;
}

int tk_server_tls_reload(tk_server *s)
{
    return s->tlsctx != NULL ? tk_tls_reload(s->tlsctx) : TK_E_NOTFOUND;
}

void tk_server_stop(tk_server *s)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (write(s->workers[i].stop_fd, &one, sizeof(one)) < 0) {
            tk_log_error("stop_signal_failed", "worker=%u", i);
        }
    }
}

int tk_server_join(tk_server *s)
{
    for (unsigned i = 0; i < s->nworkers; i++) {
        pthread_join(s->workers[i].thread, NULL);
    }
    tk_server_free(s, s->nalloc);
    return 0;
}
