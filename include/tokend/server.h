/*
 * The io_uring HTTP server. Knows nothing of OAuth: it accepts connections,
 * parses requests (http.h), hands each complete request to the application's
 * hooks, and sends what they write. N workers, each a thread with its own
 * ring, SO_REUSEPORT listeners, provided-buffer ring and fixed connection
 * table; no locks and no allocation once running.
 *
 * A server may listen on several addresses (e.g. the API and a metrics
 * port): every worker accepts on all of them in the same ring, and each
 * request tells the application which one it came in on
 * (tk_http_request.listener); what a listener may serve is the
 * application's business.
 *
 * A hook may answer at once (TK_SERVER_DONE) or later (TK_SERVER_DEFERRED):
 * then the connection parses nothing more (pipelined requests are answered in
 * order) until the application reports the request finished through the
 * wake hook (its wake fd became readable); the server then calls respond()
 * with the connection's out buffer, if the connection is still there.
 */
#ifndef TOKEND_SERVER_H
#define TOKEND_SERVER_H

#include "tokend/common.h"
#include "tokend/http.h"
#include "tokend/limits.h"

typedef struct tk_server tk_server;

enum tk_server_verdict {
    TK_SERVER_DONE = 0,     /* the response is in out */
    TK_SERVER_DEFERRED = 1, /* answered later via tk_server_resume(cookie) */
};

/* A deferred request that finished: its cookie and the application's result. */
typedef struct tk_server_done {
    uint64_t cookie;
    int64_t result;
    uint64_t aux;
} tk_server_done;

/* Bytes a plain-text receive of this batch brought into a connection that
 * had nothing buffered (so they begin a request), for the hint hook. */
typedef struct tk_server_hint {
    const char *data;
    size_t len;
} tk_server_hint;

typedef struct tk_server_hooks {
    void *app; /* passed to worker_init */
    /* Per-worker state, created on the worker thread before it serves.
     * Return NULL to fail start-up. */
    void *(*worker_init)(void *app, unsigned worker_id);
    void (*worker_fini)(void *wctx);
    /* An fd the worker polls (e.g. the committer's eventfd), or -1. When it
     * is readable the server reads 8 bytes from it and calls wake() until it
     * returns fewer than max items. */
    int (*wake_fd)(void *wctx);
    size_t (*wake)(void *wctx, tk_server_done *done, size_t max);
    /* Write the response of a finished deferred request. tag is what
     * request() stored; out->close is already set. */
    void (*respond)(void *wctx, uint32_t tag, const tk_server_done *done, tk_outbuf *out);
    /* A deferred request's completion whose connection went away (closed,
     * reset, timed out) or is being shut: nothing is sent, but the
     * application releases what it holds for done->cookie. May be NULL. */
    void (*dropped)(void *wctx, const tk_server_done *done);
    /* The connection of cookie is closed and its slot about to take another
     * (its generation changes next): the application wipes what it keeps
     * for that connection. Called on the worker, before worker_fini. May be
     * NULL. */
    void (*closed)(void *wctx, uint64_t cookie);
    /* Called once per batch of completions, after they are harvested and
     * before any is handled: the place to renew a read transaction. */
    void (*batch_begin)(void *wctx);
    /* May be NULL. Called once per batch, after batch_begin and before any
     * completion is handled, with the receives that begin requests: a
     * chance to start memory loads for all of them at once. A hint only:
     * the bytes are parsed and handled as usual afterwards, whatever it did
     * (it must not keep the pointers: the buffers go back to the kernel). */
    void (*hint)(void *wctx, const tk_server_hint *h, size_t n);
    /* A complete request. out->close is already set. Returns a verdict; with
     * TK_SERVER_DEFERRED, *tag is kept for respond(). */
    int (*request)(void *wctx, const tk_http_request *req, tk_outbuf *out, uint64_t cookie,
                   uint32_t *tag);
} tk_server_hooks;

/* One further listening address (tk_server_cfg.extra). */
typedef struct tk_server_listener {
    const char *host; /* numeric IPv4/IPv6 address */
    uint16_t port;    /* 0 = ephemeral (the same port for every worker) */
    bool tls;         /* TLS on this listener (tk_server_cfg.tls_cert/tls_key) */
    /* What tk_http_request.listener says for its requests, so that several
     * listeners can serve the same routes (e.g. a plain loopback port and a
     * TLS port both serve the API: the same label). */
    uint8_t label;
} tk_server_listener;

typedef struct tk_server_cfg {
    const char *host; /* numeric IPv4/IPv6 address: listener 0 */
    uint16_t port;    /* 0 = ephemeral (the same port for every worker) */
    bool tls;         /* TLS on listener 0; its requests carry tk_http_request.listener 0 */
    /* Listeners 1..nextra: extra[i - 1]; requests on them carry
     * tk_http_request.listener == extra[i - 1].label. */
    tk_server_listener extra[TK_LISTENERS_MAX - 1];
    unsigned nextra;
    /* PEM certificate chain (leaf first) and unencrypted PEM key for the TLS
     * listeners; required when any listener has tls. */
    const char *tls_cert;
    const char *tls_key;
    /* PEM CA certificates client certificates are verified against
     * (tk_peer_cert.verified, RFC 8705 tls_client_auth); NULL or "" = none.
     * Every TLS listener asks for a client certificate and never requires
     * one. Reloaded with the certificate. */
    const char *tls_ca;
    unsigned workers;
    unsigned max_conns; /* per worker */
    unsigned idle_timeout_ms;
    unsigned header_timeout_ms;
    unsigned body_timeout_ms;
    size_t max_body;
    bool pin_cpus; /* pin worker i to CPU i % ncpu */
    /* Optional: called once with listener 0's bound port after every listener is
     * bound and before any worker thread starts, so what it writes is seen
     * by every request (e.g. an issuer derived from an ephemeral port). */
    void (*bound)(void *arg, uint16_t port);
    void *bound_arg;
} tk_server_cfg;

/* Bind and start the workers. Returns 0, -errno (bind/listen/io_uring
 * failures, logged), or TK_E_INVALID for a bad cfg. */
int tk_server_start(const tk_server_cfg *cfg, const tk_server_hooks *hooks, tk_server **out);

/* The port actually bound (useful with port 0): of listener 0 / of listener
 * i (0 when i is not a listener). */
uint16_t tk_server_port(const tk_server *s);
uint16_t tk_server_listener_port(const tk_server *s, unsigned i);

/* Begin a graceful stop: close the listeners, finish in-flight requests,
 * close idle connections. Async-signal-safe is not required: call it from
 * the main thread. */
void tk_server_stop(tk_server *s);

/* Wait for every worker to finish (after stop, or a fatal error), free. */
int tk_server_join(tk_server *s);

/* Load the TLS certificate and key again (the same paths) for connections
 * accepted from now on; open connections keep theirs. Returns 0,
 * TK_E_INVALID when the new pair does not load (logged; the pair in use
 * stays), or TK_E_NOTFOUND when no listener has TLS. Main thread. */
int tk_server_tls_reload(tk_server *s);

/* Per-worker counters for /metrics. */
typedef struct tk_server_stats {
    uint64_t accepted, closed, active, refused, timeouts, bad_requests;
} tk_server_stats;
void tk_server_stats_get(const tk_server *s, tk_server_stats *out);

#endif
