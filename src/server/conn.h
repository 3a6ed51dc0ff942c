/*
 * Private to the server: the per-worker state and connection table, and the
 * packing of io_uring user_data. user_data carries the operation, the
 * connection slot and that slot's generation, so a completion that arrives
 * after its connection was closed and the slot reused is recognised as stale.
 */
#ifndef TOKEND_SERVER_CONN_H
#define TOKEND_SERVER_CONN_H

#include "tokend/server.h"

#include <liburing.h>
#include <pthread.h>

enum op {
    OP_ACCEPT = 1,
    OP_RECV = 2,
    OP_SEND = 3,
    OP_WAKE = 4,   /* the application's wake fd (committer completions) */
    OP_STOP = 5,   /* the worker's stop eventfd */
    OP_TIMER = 6,  /* periodic timeout scan */
    OP_CANCEL = 7, /* result of a cancel request; nothing to do */
};

/* user_data: op in bits 60..63, generation in 32..59, slot in 0..31 (for
 * OP_ACCEPT: the listener index). */
static inline uint64_t ud_pack(enum op op, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)op << 60) | ((uint64_t)(gen & 0x0fffffffu) << 32) | slot;
}
static inline enum op ud_op(uint64_t ud)
{
    return (enum op)(ud >> 60);
}
static inline uint32_t ud_slot(uint64_t ud)
{
    return (uint32_t)ud;
}
static inline uint32_t ud_gen(uint64_t ud)
{
    return (uint32_t)(ud >> 32) & 0x0fffffffu;
}

/* Where a connection is in its request cycle; decides which timeout applies. */
enum phase {
    PH_IDLE = 0, /* nothing buffered: keep-alive idle timeout */
    PH_HEAD,     /* part of a head buffered: header timeout from its first byte */
    PH_BODY,     /* head complete, body incomplete: body timeout from then */
};

struct conn {
    int fd; /* -1 when the slot is free */
    uint32_t gen;
    uint32_t next_free;
    uint8_t phase;
    bool recv_armed;
    bool send_armed;
    bool deferred;       /* a request is with the application */
    bool closing;        /* no more requests: close once output is sent */
    bool shut;           /* shutdown(2) done; waiting for in-flight ops */
    bool lingering;      /* final response sent: draining input until the peer closes */
    uint32_t tag;        /* application tag of the deferred request */
    bool deferred_close; /* the deferred response must close the connection */
    uint64_t deadline_ms;
    uint64_t deferred_at_ns;
    char *in;
    size_t in_len;
    size_t need; /* bytes a partial request needs before reparsing; 0 = unknown */
    tk_outbuf out;
    size_t out_sent;
    uint8_t peer[16];  /* client address, IPv4-mapped when v4 (tk_http_request.peer) */
    uint8_t listener;  /* its listener's label (tk_http_request.listener) */
    uint8_t tls_flags; /* tls.c's */
    /* TLS listeners only (tls.h); NULL on a plain connection, whose path
     * tests nothing else. */
    struct ssl_st *ssl;
    struct bio_st *net; /* our half of the BIO pair: ciphertext in and out */
    tk_peer_cert *cert; /* the client's certificate (tls.c, heap), or NULL */
};

struct tk_worker_stats {
    uint64_t accepted, closed, refused, timeouts, bad_requests;
};

typedef struct tk_worker {
    struct tk_server *srv;
    unsigned id;
    pthread_t thread;
    struct io_uring ring;
    unsigned nlisteners;
    int listen_fd[TK_LISTENERS_MAX];
    int stop_fd;
    int wake_fd;
    uint64_t wake_buf;
    uint64_t stop_buf;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *recv_bufs;
    struct conn *conns;
    char *in_pool;
    char *out_pool;
    size_t in_cap;
    uint32_t nconns;
    uint32_t free_head;
    uint32_t active;
    uint32_t high_water; /* slots below this may be in use */
    bool accept_armed[TK_LISTENERS_MAX];
    bool listen_tls[TK_LISTENERS_MAX];
    uint8_t listen_label[TK_LISTENERS_MAX]; /* tk_http_request.listener of each */
    bool accept_paused;                     /* fd exhaustion: re-armed on the next timer tick */
    bool backoff_logged;                    /* one log line per exhaustion episode, not per tick */
    bool draining;
    bool listen_closed;
    uint64_t drain_deadline_ms;
    uint64_t now_ms;
    struct __kernel_timespec tick;
    void *wctx;
    struct tk_worker_stats stats;
    int init_result;
} tk_worker;

/* The server: its listeners, TLS context and workers (server.c runs them,
 * setup.c makes them). */
struct tk_server {
    tk_server_cfg cfg;
    tk_server_hooks hooks;
    uint16_t port;                    /* listener 0's */
    unsigned nlisteners;              /* 1 + cfg.nextra */
    uint16_t ports[TK_LISTENERS_MAX]; /* bound port of each listener */
    const char *hosts[TK_LISTENERS_MAX];
    bool tls[TK_LISTENERS_MAX];       /* listener i speaks TLS */
    uint8_t labels[TK_LISTENERS_MAX]; /* tk_http_request.listener of listener i */
    struct tk_tls *tlsctx;            /* NULL when no listener speaks TLS */
    unsigned nworkers;                /* threads started */
    unsigned nalloc;                  /* workers with memory and a listener */
    tk_worker *workers;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned started;
};

/* ---- setup.c: resources of a worker, made once before it serves ---- */

#define RING_ENTRIES 4096
#define BUF_GROUP    0

/* Connection table, input/output pools, receive buffers, stop eventfd. */
int tk_worker_alloc(tk_worker *w, const tk_server_cfg *cfg);
void tk_worker_free(tk_worker *w, const tk_server_cfg *cfg);
/* Ring (newest flags the kernel accepts) and its provided-buffer ring. */
int tk_worker_setup_ring(tk_worker *w);
/* A SO_REUSEPORT listener on host:port; *bound gets the port. */
int tk_worker_listen(const char *host, uint16_t port, int *fd_out, uint16_t *bound);
void tk_worker_pin(unsigned id);

/* ---- setup.c: the server without its threads ---- */

/* Check the configuration and make the server: the listener table, the TLS
 * context when a listener speaks TLS, every worker's memory and listening
 * sockets (the first binds the configured ports, 0 = ephemeral; the others
 * the same), s->port and s->nalloc. 0 with *out, or an error with
 * everything freed. */
int tk_server_setup(const tk_server_cfg *cfg, const tk_server_hooks *hooks, tk_server **out);
/* Free workers [0, nalloc), the TLS context and s. */
void tk_server_free(tk_server *s, unsigned nalloc);

#endif
