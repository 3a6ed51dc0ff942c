/*
 * The load loop: one io_uring ring, N keep-alive connections, one request in
 * flight per connection. A request's send and the receive of its answer are
 * queued together, so a whole batch of connections costs one io_uring_enter.
 *
 * Closed loop (default): a connection sends its next request as soon as its
 * answer is in. Open loop (--rate): connection c's k-th request is due at a
 * fixed schedule and its latency is measured from that due time, so a slow
 * answer delays (and is charged to) every request queued behind it: no
 * coordinated omission.
 *
 * user_data packs op (8 bits), the connection's generation (24 bits) and its
 * index; a completion for a connection that was since re-opened is ignored.
 *
 * TLS (cfg->tls): the handshake is done blocking at connect (it is not what
 * the keep-alive runs measure); then the SSL object is moved onto memory
 * BIOs, each request is encrypted into a send buffer and each received run of
 * ciphertext decrypted into the input buffer, so the ring stays the only I/O.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *const bench_err_names[ERR_KINDS] = {
    "connect", "closed", "io", "parse", "status_4xx", "status_5xx", "status_other", "unexpected",
};

#define REQ_CAP   2048
#define IN_CAP    16384
#define RETRY_NS  100000000ull /* reconnect attempts per connection: 10/s at most */
#define TICK_NS   1000000ull
#define DRAIN_NS  10000000000ull /* cfg->drain: answers still awaited at the end, 10 s at most */
#define CONNS_MAX 65536
/* Per connection: request, input, and for TLS the request's ciphertext and a
 * receive buffer of ciphertext. */
#define CONN_MEM (REQ_CAP + IN_CAP + 2 * REQ_CAP + IN_CAP)

enum { OP_SEND = 1, OP_RECV = 2 };

typedef struct lconn {
    SSL *ssl;         /* TLS: over rb/wb after the handshake */
    BIO *rb, *wb;     /* ciphertext in (we write), out (we read) */
    char *creq, *cin; /* TLS: the encrypted request, received ciphertext */
    int fd;
    unsigned group; /* turns: the group (server) it belongs to */
    uint32_t gen;
    bool side, parked, inflight, waiting_due, dead;
    uint32_t tag;
    size_t req_len, req_sent, in_len;
    uint64_t sent_ns, due_ns, retry_ns;
    char *req, *in;
} lconn;

struct load_run {
    const load_cfg *cfg;
    load_result *res;
    struct io_uring ring;
    lconn *c;
    unsigned n;
    char *mem;
    uint64_t interval_ns; /* open loop: per-connection period */
    uint64_t issued;
    uint64_t w_start;
    bool in_window, stopping;
    /* turns */
    unsigned ngroups, cur; /* groups (1 without turns), the one whose turn it is */
    uint64_t turn_start, count_start;
    uint64_t turn_req0; /* cur's requests when its counted part began */
    bool counting;      /* in the counted part of a turn */
    bool handover;      /* the new group waits for the old one's answers */
};

static load_run *current;

load_run *load_current(void)
{
    return current;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_self_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
}

static uint64_t ud(unsigned op, const lconn *c, unsigned i)
{
    return ((uint64_t)op << 56) | ((uint64_t)(c->gen & 0xffffffu) << 32) | i;
}

static struct io_uring_sqe *sqe_get(load_run *ld)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ld->ring);
    if (s == NULL) { /* full: flush what is queued and try once more */
        io_uring_submit(&ld->ring);
        s = io_uring_get_sqe(&ld->ring);
    }
    return s;
}

/* ---- Connections ------------------------------------------------------------------------- */

static void tls_drop(lconn *c)
{
    SSL_free(c->ssl); /* frees rb and wb */
    c->ssl = NULL;
    c->rb = c->wb = NULL;
}

/* A blocking handshake on the socket, then memory BIOs for the ring. */
static int tls_open(load_run *ld, lconn *c)
{
    c->ssl = SSL_new(ld->cfg->tls);
    if (c->ssl == NULL || SSL_set1_host(c->ssl, "localhost") != 1 ||
        SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1) {
        ERR_clear_error();
        tls_drop(c);
        close(c->fd);
        c->fd = -1;
        return -EPROTO;
    }
    c->rb = BIO_new(BIO_s_mem());
    c->wb = BIO_new(BIO_s_mem());
    if (c->rb == NULL || c->wb == NULL) {
        BIO_free(c->rb);
        BIO_free(c->wb);
        c->rb = c->wb = NULL;
        tls_drop(c);
        close(c->fd);
        c->fd = -1;
        return -ENOMEM;
    }
    BIO_set_mem_eof_return(c->rb, -1);
    SSL_set_bio(c->ssl, c->rb, c->wb); /* the socket BIO goes; the fd stays ours */
    return 0;
}

static int conn_open(load_run *ld, lconn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint16_t port = ld->ngroups > 1 ? ld->cfg->group_port[c->group] : ld->cfg->port;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    c->fd = fd;
    c->dead = false;
    c->in_len = 0;
    c->inflight = false;
    return ld->cfg->tls ? tls_open(ld, c) : 0;
}

/* Whether an answer (or error) on c now is counted: in the window, and with
 * turns in the counted part of its group's turn. */
static bool counted(const load_run *ld, const lconn *c)
{
    if (!ld->in_window || (c->tag & TAG_SIDE)) {
        return false;
    }
    return ld->ngroups <= 1 || (ld->counting && c->group == ld->cur);
}

static void count_err(load_run *ld, const lconn *c, enum bench_err e)
{
    if (counted(ld, c)) {
        ld->res[c->group].errors[e]++;
    }
}

/* Drop the connection (pending ops complete with a stale generation) and
 * reconnect; a failed connect is retried from the tick. */
static void conn_reset(lconn *c)
{
    if (c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR);
        close(c->fd);
        c->fd = -1;
    }
    if (c->ssl != NULL) {
        tls_drop(c);
    }
    c->gen++;
    c->inflight = false;
    c->dead = true;
    c->retry_ns = 0;
}

static void arm_recv(load_run *ld, lconn *c, unsigned i)
{
    struct io_uring_sqe *s = sqe_get(ld);
    if (c->ssl != NULL) {
        io_uring_prep_recv(s, c->fd, c->cin, IN_CAP, 0);
    } else {
        io_uring_prep_recv(s, c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
    }
    io_uring_sqe_set_data64(s, ud(OP_RECV, c, i));
}

static void arm_send(load_run *ld, lconn *c, unsigned i)
{
    struct io_uring_sqe *s = sqe_get(ld);
    const char *buf = c->ssl != NULL ? c->creq : c->req;
    io_uring_prep_send(s, c->fd, buf + c->req_sent, c->req_len - c->req_sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud(OP_SEND, c, i));
}

/* TLS: replace the request by its ciphertext (req_len becomes its length). */
static bool tls_encrypt(lconn *c)
{
    if (SSL_write(c->ssl, c->req, (int)c->req_len) != (int)c->req_len) {
        ERR_clear_error();
        return false;
    }
    int n = BIO_read(c->wb, c->creq, REQ_CAP * 2);
    if (n <= 0 || BIO_ctrl_pending(c->wb) != 0) {
        return false;
    }
    c->req_len = (size_t)n;
    return true;
}

/* TLS: ciphertext in, plaintext appended to c->in; false on a TLS error. */
static bool tls_decrypt(lconn *c, size_t n)
{
    if (BIO_write(c->rb, c->cin, (int)n) != (int)n) {
        return false;
    }
    for (int k = 0; k < 64 && c->in_len < IN_CAP; k++) { /* records per receive */
        int r = SSL_read(c->ssl, c->in + c->in_len, (int)(IN_CAP - c->in_len));
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ;
    }
    return true;
}

/* Make and queue the next request; a connection the scenario has nothing for
 * is parked. sent_ns is the time the latency is measured from. */
static void start_request(load_run *ld, unsigned i, uint64_t sent_ns)
{
    lconn *c = &ld->c[i];
    const load_cfg *cfg = ld->cfg;
    c->waiting_due = false;
    if (c->dead || ld->stopping || (!c->side && ld->ngroups > 1 && c->group != ld->cur) ||
        (!c->side && cfg->max_requests != 0 && ld->issued >= cfg->max_requests)) {
        c->parked = !c->dead;
        return;
    }
    c->tag = 0;
    c->req_len = cfg->make(cfg->arg, i, c->req, REQ_CAP, &c->tag);
    if (c->req_len == 0) {
        c->parked = true;
        return;
    }
    if (!c->side) {
        ld->issued++;
    }
    c->parked = false;
    c->inflight = true;
    c->req_sent = 0;
    c->in_len = 0;
    c->sent_ns = sent_ns;
    if (c->ssl != NULL && !tls_encrypt(c)) {
        count_err(ld, c, ERR_IO);
        conn_reset(c);
        return;
    }
    arm_send(ld, c, i);
    arm_recv(ld, c, i);
}

/* After an answer: the next request now, or at its due time (open loop). */
static void next_request(load_run *ld, unsigned i, uint64_t now)
{
    lconn *c = &ld->c[i];
    if (ld->interval_ns == 0 || c->side) {
        start_request(ld, i, now);
        return;
    }
    c->due_ns += ld->interval_ns;
    if (c->due_ns <= now) {
        start_request(ld, i, c->due_ns);
    } else {
        c->waiting_due = true;
    }
}

/* ---- Responses ----------------------------------------------------------------------------- */

/* Returns the total length of the response at in[0..n) when complete, 0 when
 * more is needed, -1 when it is not a response we understand. */
static long parse_response(const char *in, size_t n, int *status, size_t *body_off, bool *close)
{
    const char *end = memmem(in, n, "\r\n\r\n", 4);
    if (end == NULL) {
        return n >= IN_CAP ? -1 : 0;
    }
    if (n < 12 || memcmp(in, "HTTP/1.", 7) != 0 || in[8] != ' ') {
        return -1;
    }
    *status = (in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0');
    size_t head = (size_t)(end - in) + 4;
    size_t cl = 0;
    *close = false;
    for (const char *p = in; p < end;) { /* bounded by the head */
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        size_t len = (size_t)(eol - p);
        if (len > 15 && strncasecmp(p, "content-length:", 15) == 0) {
            cl = (size_t)strtoul(p + 15, NULL, 10);
        } else if (len >= 17 && strncasecmp(p, "connection: close", 17) == 0) {
            *close = true;
        }
        p = eol + 2;
    }
    *body_off = head;
    if (head + cl > IN_CAP) {
        return -1;
    }
    return n >= head + cl ? (long)(head + cl) : 0;
}

static void on_answer(load_run *ld, unsigned i, int status, const char *body, size_t len,
                      uint64_t now)
{
    lconn *c = &ld->c[i];
    const load_cfg *cfg = ld->cfg;
    bool accepted = cfg->done(cfg->arg, i, c->tag, status, body, len, c->sent_ns, now);
    if (!counted(ld, c)) {
        return;
    }
    load_result *r = &ld->res[c->group];
    r->requests++;
    hist_add(&r->lat, now - c->sent_ns);
    if (status >= 200 && status < 300) {
        if (accepted) {
            r->ok++;
        } else {
            r->errors[ERR_UNEXPECTED]++;
        }
    } else if (status >= 400 && status < 500) {
        r->errors[ERR_STATUS_4XX]++;
    } else if (status >= 500) {
        r->errors[ERR_STATUS_5XX]++;
    } else {
        r->errors[ERR_STATUS_OTHER]++;
    }
}

static void on_recv(load_run *ld, unsigned i, int res, uint64_t now)
{
    lconn *c = &ld->c[i];
    if (res <= 0) {
        count_err(ld, c, res == 0 || res == -ECONNRESET ? ERR_CLOSED : ERR_IO);
        conn_reset(c);
        return;
    }
    if (c->ssl != NULL) {
        if (!tls_decrypt(c, (size_t)res)) {
            count_err(ld, c, ERR_IO);
            conn_reset(c);
            return;
        }
    } else {
        c->in_len += (size_t)res;
    }
    int status = 0;
    size_t off = 0;
    bool close_after = false;
    long total = parse_response(c->in, c->in_len, &status, &off, &close_after);
    if (total == 0) {
        arm_recv(ld, c, i);
        return;
    }
    if (total < 0 || (size_t)total != c->in_len) { /* garbage, or bytes nobody asked for */
        count_err(ld, c, ERR_PARSE);
        conn_reset(c);
        return;
    }
    c->inflight = false;
    if (ld->cfg->head != NULL) {
        ld->cfg->head(ld->cfg->arg, i, c->tag, c->in, off);
    }
    on_answer(ld, i, status, c->in + off, (size_t)total - off, now);
    if (close_after) {
        conn_reset(c);
        return;
    }
    next_request(ld, i, now);
}

static void on_send(load_run *ld, unsigned i, int res)
{
    lconn *c = &ld->c[i];
    if (res < 0) {
        count_err(ld, c, ERR_IO);
        conn_reset(c);
        return;
    }
    c->req_sent += (size_t)res;
    if (c->req_sent < c->req_len) {
        arm_send(ld, c, i); /* short send: the rest */
    }
}

static void handle(load_run *ld, const struct io_uring_cqe *cqe, uint64_t now)
{
    uint64_t u = cqe->user_data;
    unsigned i = (unsigned)u;
    if (i >= ld->n) {
        return;
    }
    lconn *c = &ld->c[i];
    if (((u >> 32) & 0xffffffu) != (c->gen & 0xffffffu) || c->fd < 0) {
        return; /* for a connection since closed */
    }
    if ((u >> 56) == OP_SEND) {
        on_send(ld, i, cqe->res);
    } else {
        on_recv(ld, i, cqe->res, now);
    }
}

/* ---- The loop ------------------------------------------------------------------------------ */

static void retry_dead(load_run *ld, uint64_t now)
{
    for (unsigned i = 0; i < ld->n; i++) {
        lconn *c = &ld->c[i];
        if (!c->dead || c->retry_ns > now) {
            continue;
        }
        if (conn_open(ld, c) != 0) {
            count_err(ld, c, ERR_CONNECT);
            c->retry_ns = now + RETRY_NS;
            continue;
        }
        if (!c->side || !c->parked) {
            start_request(ld, i, now);
        }
    }
}

static void release_due(load_run *ld, uint64_t now)
{
    for (unsigned i = 0; i < ld->n; i++) {
        if (ld->c[i].waiting_due && ld->c[i].due_ns <= now) {
            start_request(ld, i, ld->c[i].due_ns);
        }
    }
}

void load_wake(load_run *ld, unsigned side)
{
    unsigned i = ld->cfg->conns * ld->ngroups + side;
    if (i < ld->n && ld->c[i].parked && !ld->c[i].dead) {
        start_request(ld, i, bench_now_ns());
    }
}

static void progress(load_run *ld, uint64_t now, uint64_t w0, uint64_t *last, uint64_t *last_n)
{
    if (!ld->cfg->progress || now - *last < 1000000000ull || !ld->in_window) {
        return;
    }
    const load_result *r = ld->res;
    double secs = (double)(now - *last) / 1e9;
    uint64_t errs = 0;
    for (int e = 0; e < ERR_KINDS; e++) {
        errs += r->errors[e];
    }
    fprintf(stderr, "\r%-24s %5.1fs %9.0f req/s  p99 %7.1f us  errors %-8llu", ld->cfg->label,
            (double)(now - w0) / 1e9, (double)(r->requests - *last_n) / secs,
            (double)hist_quantile(&r->lat, 0.99) / 1e3, (unsigned long long)errs);
    *last = now;
    *last_n = r->requests;
}

static int setup(load_run *ld)
{
    const load_cfg *cfg = ld->cfg;
    ld->ngroups = cfg->ngroups > 1 ? cfg->ngroups : 1;
    if (ld->ngroups > LOAD_GROUPS_MAX || (ld->ngroups > 1 && cfg->turn_ms <= cfg->skip_ms)) {
        return -EINVAL;
    }
    ld->n = cfg->conns * ld->ngroups + cfg->nside;
    if (ld->n == 0 || ld->n > CONNS_MAX) {
        return -EINVAL;
    }
    ld->c = calloc(ld->n, sizeof *ld->c);
    ld->mem = malloc((size_t)ld->n * CONN_MEM);
    if (ld->c == NULL || ld->mem == NULL) {
        return -ENOMEM;
    }
    unsigned entries = 256;
    while (entries < 2 * ld->n + 16 && entries < 32768) {
        entries *= 2;
    }
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int rc = io_uring_queue_init_params(entries, &ld->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(entries, &ld->ring, &p);
    }
    if (rc < 0) {
        return rc;
    }
    io_uring_register_ring_fd(&ld->ring);
    for (unsigned i = 0; i < ld->n; i++) {
        lconn *c = &ld->c[i];
        c->fd = -1;
        c->side = i >= cfg->conns * ld->ngroups;
        c->group = c->side ? 0 : i / cfg->conns;
        c->req = ld->mem + (size_t)i * CONN_MEM;
        c->in = c->req + REQ_CAP;
        c->creq = c->in + IN_CAP;
        c->cin = c->creq + 2 * REQ_CAP;
        rc = conn_open(ld, c);
        if (rc != 0) {
            return rc;
        }
    }
    if (cfg->rate > 0) {
        ld->interval_ns = (uint64_t)((double)cfg->conns * 1e9 / cfg->rate);
    }
    return 0;
}

static void teardown(load_run *ld)
{
    for (unsigned i = 0; ld->c != NULL && i < ld->n; i++) {
        if (ld->c[i].fd >= 0) {
            close(ld->c[i].fd);
        }
        if (ld->c[i].ssl != NULL) {
            tls_drop(&ld->c[i]);
        }
    }
    if (ld->ring.ring_fd > 0) {
        io_uring_queue_exit(&ld->ring);
    }
    free(ld->c);
    free(ld->mem);
}

static bool all_answered(const load_run *ld)
{
    for (unsigned i = 0; i < ld->n; i++) {
        if (ld->c[i].inflight && !ld->c[i].side) {
            return false;
        }
    }
    return true;
}

static void window_begin(load_run *ld, uint64_t now, double *cpu0)
{
    for (unsigned g = 0; g < ld->ngroups; g++) {
        load_result *r = &ld->res[g];
        hist_reset(&r->lat);
        r->requests = r->ok = 0;
        r->nturns = 0;
        memset(r->errors, 0, sizeof r->errors);
    }
    ld->in_window = true;
    *cpu0 = cpu_self_ns();
    ld->w_start = now;
    if (ld->cfg->window) {
        ld->cfg->window(ld->cfg->arg, true);
    }
}

static void first_requests(load_run *ld, uint64_t now)
{
    for (unsigned i = 0; i < ld->n; i++) {
        lconn *c = &ld->c[i];
        if (c->side) {
            c->parked = true;
        } else if (ld->interval_ns) {
            c->due_ns = now + ld->interval_ns * i / ld->cfg->conns;
            c->waiting_due = true;
        } else {
            start_request(ld, i, now);
        }
    }
}

/* Turns: the end of the counted part of cur's turn (its seconds and rate). */
static void turn_count_end(load_run *ld, uint64_t now)
{
    if (!ld->counting) {
        return;
    }
    ld->counting = false;
    load_result *r = &ld->res[ld->cur];
    double secs = (double)(now - ld->count_start) / 1e9;
    r->seconds += secs;
    if (r->nturns < TURNS_MAX && secs > 0) {
        r->turn_rps[r->nturns++] = (double)(r->requests - ld->turn_req0) / secs;
    }
    if (ld->cfg->turn) {
        ld->cfg->turn(ld->cfg->arg, ld->cur, false);
    }
}

/* Turns: start counting after the skip, hand the turn on at its end. */
static void turn_step(load_run *ld, uint64_t now)
{
    const load_cfg *cfg = ld->cfg;
    uint64_t skip = (uint64_t)(cfg->skip_ms * 1e6), len = (uint64_t)(cfg->turn_ms * 1e6);
    if (!ld->counting && ld->in_window && now >= ld->turn_start + skip &&
        now < ld->turn_start + len && ld->count_start < ld->turn_start) {
        ld->counting = true;
        ld->count_start = now;
        ld->turn_req0 = ld->res[ld->cur].requests;
        if (cfg->turn) {
            cfg->turn(cfg->arg, ld->cur, true);
        }
    }
    if (ld->handover) { /* the new group goes once the old one is answered (or the skip is over) */
        bool busy = false;
        for (unsigned i = 0; i < ld->n && !busy; i++) {
            busy = ld->c[i].inflight && !ld->c[i].side && ld->c[i].group != ld->cur;
        }
        if (!busy || now >= ld->turn_start + skip) {
            ld->handover = false;
            for (unsigned i = 0; i < ld->n; i++) {
                lconn *c = &ld->c[i];
                if (!c->side && c->group == ld->cur && c->parked && !c->dead && !c->inflight) {
                    start_request(ld, i, now);
                }
            }
        }
    }
    if (now < ld->turn_start + len) {
        return;
    }
    turn_count_end(ld, now);
    ld->cur = (ld->cur + 1) % ld->ngroups;
    ld->turn_start = now;
    ld->handover = true;
}

int load_run_once(const load_cfg *cfg, load_result *res)
{
    load_run ld = {.cfg = cfg, .res = res};
    unsigned ng = cfg->ngroups > 1 ? cfg->ngroups : 1;
    memset(res, 0, sizeof *res * ng);
    for (unsigned g = 0; g < ng; g++) {
        hist_reset(&res[g].lat);
    }
    int rc = setup(&ld);
    if (rc != 0) {
        teardown(&ld);
        return rc;
    }
    current = &ld;
    uint64_t t0 = bench_now_ns();
    uint64_t w0 = t0 + (uint64_t)(cfg->warmup_s * 1e9);
    uint64_t end = w0 + (uint64_t)(cfg->duration_s * 1e9);
    uint64_t next_tick = t0, last_prog = w0, last_n = 0, now = t0, w_end = end;
    double cpu0 = 0;
    ld.turn_start = t0;
    first_requests(&ld, t0);
    for (;;) { /* the event loop: ends at the deadline or when tick() says so */
        if (!ld.in_window && now >= w0) {
            window_begin(&ld, now, &cpu0);
        }
        if (ld.ngroups > 1) {
            turn_step(&ld, now);
        }
        if (now >= end) {
            w_end = now;
            break;
        }
        if (now >= next_tick) {
            next_tick = now + TICK_NS;
            retry_dead(&ld, now);
            if (cfg->tick && !cfg->tick(cfg->arg, now)) {
                w_end = now;
                break;
            }
            progress(&ld, now, w0, &last_prog, &last_n);
        }
        if (ld.interval_ns) {
            release_due(&ld, now);
        }
        if (cfg->max_requests && ld.issued >= cfg->max_requests && all_answered(&ld)) {
            w_end = now;
            break;
        }
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)TICK_NS};
        struct io_uring_cqe *cqe = NULL;
        io_uring_submit_and_wait_timeout(&ld.ring, &cqe, 1, &ts, NULL);
        now = bench_now_ns();
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ld.ring, head, cqe)
        {
            handle(&ld, cqe, now);
            seen++;
        }
        io_uring_cq_advance(&ld.ring, seen);
    }
    if (!ld.in_window) {
        window_begin(&ld, now, &cpu0);
    }
    if (ld.ngroups > 1) {
        turn_count_end(&ld, w_end);
    }
    if (cfg->drain) { /* no request left unanswered: the server's state stays tidy */
        ld.stopping = true;
        ld.in_window = false; /* answers now are not counted */
        uint64_t limit = bench_now_ns() + DRAIN_NS;
        for (int k = 0; k < 100000 && !all_answered(&ld) && bench_now_ns() < limit; k++) {
            struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)TICK_NS};
            struct io_uring_cqe *cqe = NULL;
            io_uring_submit_and_wait_timeout(&ld.ring, &cqe, 1, &ts, NULL);
            uint64_t t = bench_now_ns();
            unsigned head, seen = 0;
            io_uring_for_each_cqe(&ld.ring, head, cqe)
            {
                handle(&ld, cqe, t);
                seen++;
            }
            io_uring_cq_advance(&ld.ring, seen);
        }
    }
    if (ld.ngroups == 1) {
        res->seconds = w_end > ld.w_start ? (double)(w_end - ld.w_start) / 1e9 : 0.0;
    }
    res->client_cpu_ns = cpu_self_ns() - cpu0;
    if (cfg->window) {
        cfg->window(cfg->arg, false);
    }
    if (cfg->progress) {
        fputc('\n', stderr);
    }
    current = NULL;
    teardown(&ld);
    return 0;
}
