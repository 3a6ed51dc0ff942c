/*
 * Set-up for the server: the server itself without its threads (the checked
 * configuration, the listener table, the TLS context when a listener speaks
 * TLS, each worker's listening sockets), and each worker's io_uring ring
 * with its provided-buffer ring and its connection table. Everything a
 * worker needs is mapped here once, before the first accept; the pages are
 * touched only as connections use them. server.c runs what this makes.
 */
#include "conn.h"
#include "tls.h"
#include "tokend/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int tk_worker_setup_ring(tk_worker *w)
{
    struct io_uring_params p;
    unsigned tries[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                        IORING_SETUP_COOP_TASKRUN, 0};
    int r = -EINVAL;
    /* Probe by trying: newest flags first, older kernels answer -EINVAL. */
    for (size_t i = 0; i < TK_ARRAY_LEN(tries); i++) {
        memset(&p, 0, sizeof(p));
        p.flags = tries[i];
        r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
        if (r != -EINVAL) {
            break;
        }
    }
    if (r < 0) {
        return r;
    }
    io_uring_register_ring_fd(&w->ring); /* optional: saves an fd lookup per enter */

    w->br_bytes = TK_RECV_BUFS * sizeof(struct io_uring_buf);
    w->br = mmap(NULL, w->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (w->br == MAP_FAILED) {
        w->br = NULL;
        return -errno;
    }
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)w->br,
        .ring_entries = TK_RECV_BUFS,
        .bgid = BUF_GROUP,
    };
    r = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (r < 0) {
        return r;
    }
    io_uring_buf_ring_init(w->br);
    for (unsigned i = 0; i < TK_RECV_BUFS; i++) {
        io_uring_buf_ring_add(w->br, w->recv_bufs + (size_t)i * TK_RECV_BUF_SIZE, TK_RECV_BUF_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(TK_RECV_BUFS), (int)i);
    }
    io_uring_buf_ring_advance(w->br, TK_RECV_BUFS);
    return 0;
}

void tk_worker_pin(unsigned id)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)(id % (unsigned long)ncpu), &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
}

int tk_worker_listen(const char *host, uint16_t port, int *fd_out, uint16_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        sl = sizeof(*a6);
    } else {
        return TK_E_INVALID;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited by accepted sockets */
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    *fd_out = fd;
    return 0;
}

static void *map_zero(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Memory of one worker, mapped once: untouched pages cost nothing. */
int tk_worker_alloc(tk_worker *w, const tk_server_cfg *cfg)
{
    w->nconns = cfg->max_conns;
    w->in_cap = TK_HTTP_HEAD_MAX + cfg->max_body + TK_RECV_BUF_SIZE;
    w->conns = calloc(w->nconns, sizeof(*w->conns));
    w->in_pool = map_zero(w->in_cap * w->nconns);
    w->out_pool = map_zero((size_t)TK_CONN_OUT_MAX * w->nconns);
    w->recv_bufs = map_zero((size_t)TK_RECV_BUFS * TK_RECV_BUF_SIZE);
    if (!w->conns || !w->in_pool || !w->out_pool || !w->recv_bufs) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        c->fd = -1;
        c->in = w->in_pool + (size_t)i * w->in_cap;
        c->out.buf = w->out_pool + (size_t)i * TK_CONN_OUT_MAX;
        c->out.cap = TK_CONN_OUT_MAX;
        c->next_free = i + 1 < w->nconns ? i + 1 : UINT32_MAX;
    }
    w->free_head = 0;
    w->stop_fd = eventfd(0, EFD_CLOEXEC);
    return w->stop_fd < 0 ? -errno : 0;
}

void tk_worker_free(tk_worker *w, const tk_server_cfg *cfg)
{
    for (unsigned i = 0; i < w->nlisteners; i++) {
        if (w->listen_fd[i] >= 0) {
            close(w->listen_fd[i]);
        }
    }
    if (w->stop_fd >= 0) {
        close(w->stop_fd);
    }
    for (uint32_t i = 0; w->conns && i < w->nconns; i++) {
        if (w->conns[i].fd >= 0) {
            close(w->conns[i].fd);
        }
    }
    free(w->conns);
    if (w->in_pool) {
        munmap(w->in_pool, w->in_cap * cfg->max_conns);
    }
    if (w->out_pool) {
        munmap(w->out_pool, (size_t)TK_CONN_OUT_MAX * cfg->max_conns);
    }
    if (w->recv_bufs) {
        munmap(w->recv_bufs, (size_t)TK_RECV_BUFS * TK_RECV_BUF_SIZE);
    }
    if (w->br) {
        munmap(w->br, w->br_bytes);
    }
}

/* ---- The server without its threads ---------------------------------------- */

static int check_cfg(const tk_server_cfg *cfg, const tk_server_hooks *h)
{
    if (cfg->workers == 0 || cfg->workers > TK_WORKERS_MAX || cfg->max_conns == 0 ||
        cfg->max_conns > TK_CONNS_MAX || cfg->max_body > TK_HTTP_BODY_MAX || !cfg->host ||
        cfg->nextra > TK_LISTENERS_MAX - 1 || !h->request || !h->worker_init || !h->worker_fini ||
        !h->wake_fd || !h->wake || !h->respond || !h->batch_begin) {
        return TK_E_INVALID;
    }
    bool tls = cfg->tls;
    for (unsigned i = 0; i < cfg->nextra; i++) {
        if (cfg->extra[i].host == NULL) {
            return TK_E_INVALID;
        }
        tls = tls || cfg->extra[i].tls;
    }
    if (tls && (cfg->tls_cert == NULL || cfg->tls_key == NULL)) {
        return TK_E_INVALID;
    }
    return 0;
}

void tk_server_free(tk_server *s, unsigned nalloc)
{
    for (unsigned i = 0; i < nalloc; i++) {
        tk_worker_free(&s->workers[i], &s->cfg);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    tk_tls_free(s->tlsctx);
    free(s->workers);
    free(s);
}

/* Open every listener of one worker. The first worker binds the configured
 * ports (0: ephemeral) and records what it got; the others bind the same. */
static int listen_all(tk_server *s, tk_worker *w, bool first)
{
    for (unsigned i = 0; i < s->nlisteners; i++) {
        uint16_t bound = 0;
        int r = tk_worker_listen(s->hosts[i], s->ports[i], &w->listen_fd[i], &bound);
        if (r != 0) {
            tk_log_error("listen_failed", "host=%s port=%u error=\"%s\"", s->hosts[i],
                         (unsigned)s->ports[i], tk_strerror(r));
            return r;
        }
        if (first) {
            s->ports[i] = bound;
        }
    }
    return 0;
}

int tk_server_setup(const tk_server_cfg *cfg, const tk_server_hooks *hooks, tk_server **out)
{
    int r = check_cfg(cfg, hooks);
    if (r != 0) {
        return r;
    }
    tk_server *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->cfg = *cfg;
    s->hooks = *hooks;
    s->nworkers = cfg->workers;
    s->nlisteners = 1 + cfg->nextra;
    s->hosts[0] = cfg->host;
    s->ports[0] = cfg->port;
    s->tls[0] = cfg->tls;
    bool any_tls = cfg->tls;
    for (unsigned i = 0; i < cfg->nextra; i++) {
        s->hosts[i + 1] = cfg->extra[i].host;
        s->ports[i + 1] = cfg->extra[i].port;
        s->tls[i + 1] = cfg->extra[i].tls;
        s->labels[i + 1] = cfg->extra[i].label;
        any_tls = any_tls || cfg->extra[i].tls;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (any_tls) {
        r = tk_tls_new(cfg->tls_cert, cfg->tls_key, cfg->tls_ca, &s->tlsctx);
        if (r != 0) {
            tk_server_free(s, 0);
            return r;
        }
    }
    s->workers = calloc(cfg->workers, sizeof(*s->workers));
    if (!s->workers) {
        tk_server_free(s, 0);
        return -ENOMEM;
    }
    unsigned n = 0;
    for (; n < cfg->workers; n++) {
        tk_worker *w = &s->workers[n];
        w->srv = s;
        w->id = n;
        w->stop_fd = w->wake_fd = -1;
        w->nlisteners = s->nlisteners;
        for (unsigned i = 0; i < TK_LISTENERS_MAX; i++) {
            w->listen_fd[i] = -1;
            w->listen_tls[i] = s->tls[i];
            w->listen_label[i] = s->labels[i];
        }
        r = tk_worker_alloc(w, cfg);
        r = r != 0 ? r : listen_all(s, w, n == 0);
        if (r != 0) {
            tk_server_free(s, n + 1);
            return r;
        }
        s->port = s->ports[0];
        s->nalloc = n + 1;
    }
    *out = s;
    return 0;
}
