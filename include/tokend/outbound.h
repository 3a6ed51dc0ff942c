/*
 * The outbound thread: every HTTP request tokend makes (IdP keys, discovery
 * documents, code redemption, Client ID Metadata Documents) goes through
 * here, on one thread running libcurl's multi interface. Implemented in
 * src/outbound/outbound.c, the only file that includes curl/curl.h.
 *
 * The one idea: a caller never waits on the network. It copies a request
 * into a bounded pool (full: TK_E_QUEUEFULL at once, never a wait) and gets
 * the response back later, exactly the way the committer delivers commits
 * (committer.h): a completion list per worker plus an eventfd the worker's
 * ring watches; a caller that is not a worker (the IdP key refresher) may
 * instead name a callback, which runs on the outbound thread.
 *
 * The rules every request gets, whatever its caller asks: only http and
 * https; TLS peer and host verification always on (the system CA store,
 * plus cfg.ca_file for a private IdP); connect and total timeouts; a
 * response body cap (the transfer is aborted past it); no redirects unless
 * the request asks (then at most TK_OUTBOUND_REDIRECTS_MAX, never from
 * https down to http); at most cfg.max_transfers at once. Each completion
 * is one log line and is counted for /metrics per purpose and result.
 */
#ifndef TOKEND_OUTBOUND_H
#define TOKEND_OUTBOUND_H

#include "tokend/common.h"
#include "tokend/limits.h"

typedef struct tk_outbound tk_outbound;

/* Why a request is made: a /metrics label (bounded cardinality). */
enum tk_outbound_purpose {
    TK_OB_JWKS = 0,        /* an IdP's key set (jwks_uri) */
    TK_OB_DISCOVERY,       /* .well-known/openid-configuration */
    TK_OB_TOKEN,           /* redeeming an authorization code upstream */
    TK_OB_CLIENT_METADATA, /* a Client ID Metadata Document */
    TK_OB_OTHER,
    TK_OB_SSF, /* a SET pushed to an SSF receiver (RFC 8935) */
    TK_OB_PURPOSES
};

/* How a request ended: a /metrics label and the response's result. */
enum tk_outbound_result {
    TK_OB_OK = 0,          /* a 2xx response, body complete */
    TK_OB_HTTP_ERROR,      /* a response with a status other than 2xx or 3xx */
    TK_OB_REDIRECT,        /* a 3xx the request did not ask to follow (or too many) */
    TK_OB_TIMEOUT,         /* connect or total timeout */
    TK_OB_CONNECT,         /* name not resolved, connection refused or reset */
    TK_OB_TLS,             /* handshake or certificate verification failed */
    TK_OB_TOO_BIG,         /* the body passed the cap: aborted */
    TK_OB_PROTOCOL,        /* the peer did not speak HTTP (garbage, truncated) */
    TK_OB_QUEUE_FULL,      /* refused at submit (counted only; never completes) */
    TK_OB_CANCELED,        /* tokend stopped before the request finished */
    TK_OB_ERROR,           /* anything else (out of memory, a libcurl error) */
    TK_OB_REFUSED_ADDRESS, /* public_only: the peer's address is not public (SSRF guard) */
    TK_OB_RESULTS
};

const char *tk_outbound_purpose_name(unsigned purpose);
const char *tk_outbound_result_name(unsigned result);

typedef struct tk_outbound_cfg {
    /* Workers with a completion list and an eventfd each; 0 when every
     * caller uses a callback. At most TK_WORKERS_MAX. */
    unsigned nworkers;
    unsigned queue_cap;          /* [1, TK_OUTBOUND_QUEUE_MAX]; 0 = the default */
    unsigned max_transfers;      /* [1, TK_OUTBOUND_TRANSFERS_MAX]; 0 = the default */
    unsigned connect_timeout_ms; /* 0 = the default */
    unsigned timeout_ms;         /* whole transfer; 0 = the default */
    size_t max_bytes;            /* response body cap; 0 = the default */
    /* A PEM file of further trusted CAs (a private IdP's), used beside the
     * system store; NULL or "" for the system store alone. Read per TLS
     * connection, so a replaced file applies to the next one. */
    const char *ca_file;
} tk_outbound_cfg;

typedef struct tk_outbound_resp {
    uint64_t cookie;     /* the request's, returned as it was */
    uint8_t purpose;     /* the request's */
    uint8_t result;      /* enum tk_outbound_result */
    int status;          /* the final HTTP status; 0 when no response came */
    const char *body;    /* NUL-terminated (the NUL is not counted); "" when none */
    size_t body_len;     /* at most the request's cap */
    const char *headers; /* the final response's header lines, NUL-terminated */
    size_t headers_len;
    uint64_t elapsed_ns;
    char error[160]; /* why, for a log line, when result is not TK_OB_OK */
} tk_outbound_resp;

/* A completion for a caller that is not a worker. Runs on the outbound
 * thread; resp (and everything it points to) is valid only during the
 * call. Must not block: it may submit further requests. */
typedef void (*tk_outbound_cb)(void *arg, const tk_outbound_resp *resp);

enum tk_outbound_method { TK_OB_GET = 0, TK_OB_POST = 1 };

typedef struct tk_outbound_req {
    uint8_t purpose; /* enum tk_outbound_purpose */
    uint8_t method;  /* enum tk_outbound_method */
    const char *url; /* http:// or https://, at most TK_URL_MAX bytes; copied */
    /* POST only: the body (at most TK_OUTBOUND_REQ_BODY_MAX) and its type
     * (at most 128 bytes); copied. */
    const char *body;
    size_t body_len;
    const char *content_type;
    const char *accept;        /* an Accept value (at most 128 bytes), or NULL */
    const char *authorization; /* an Authorization value, or NULL; copied, cleansed after */
    bool follow_redirects;     /* default: a 3xx completes as TK_OB_REDIRECT */
    /* Connect only to public addresses (tk_outbound_addr_public), checked on
     * the very address each connection is opened to, after resolution, so a
     * name that resolves differently later (DNS rebinding) cannot pass; no
     * proxy is used. A refused address completes as TK_OB_REFUSED_ADDRESS. */
    bool public_only;
    size_t max_bytes;    /* 0: the configured cap; may only lower it */
    unsigned timeout_ms; /* 0: the configured timeout; may only lower it */
    uint64_t cookie;     /* returned in the response */
    /* Delivery: with cb, the callback (on the outbound thread); without, the
     * completion list of worker (< cfg.nworkers). */
    tk_outbound_cb cb;
    void *cb_arg;
    unsigned worker;
} tk_outbound_req;

/* Start the thread. Returns 0, -EINVAL (a setting out of range), -ENOMEM,
 * -errno (eventfd, thread) or TK_E_INVALID (libcurl lacks what we need:
 * the multi interface, TLS, protocol restriction). Call tk_outbound_global_init
 * first, once, before any other thread runs. */
int tk_outbound_start(const tk_outbound_cfg *cfg, tk_outbound **out);

/* libcurl's process-wide initialisation (not thread-safe: call from main
 * before starting threads). 0 or TK_E_INVALID. */
int tk_outbound_global_init(void);
void tk_outbound_global_cleanup(void);

/* Copy req into the pool and wake the thread. Never blocks on the network
 * (takes a mutex for the copy). Returns 0 (exactly one completion will
 * follow), TK_E_QUEUEFULL (every slot in use: no completion), TK_E_TOOBIG
 * (url, body or a header value past its limit) or TK_E_INVALID (not an
 * http(s) URL, a control character in a value, a bad worker). Thread-safe. */
int tk_outbound_submit(tk_outbound *ob, const tk_outbound_req *req);

/* The eventfd worker w polls; readable when completions are waiting. */
int tk_outbound_event_fd(const tk_outbound *ob, unsigned worker);

/* Move up to max completions of worker w into out; returns how many. Call
 * after the eventfd fired (read it first), and again while it returns max.
 * Each response stays valid, and its slot taken, until tk_outbound_release. */
size_t tk_outbound_drain(tk_outbound *ob, unsigned worker, const tk_outbound_resp **out,
                         size_t max);
/* Give a drained response's slot back. Any thread. */
void tk_outbound_release(tk_outbound *ob, const tk_outbound_resp *resp);

/* The value of the first header named name (ASCII case-insensitive) in the
 * response, without surrounding blanks; TK_SLICE_NULL when absent. */
tk_slice tk_outbound_header(const tk_outbound_resp *resp, const char *name);

/* The max-age directive of a Cache-Control value, in seconds: 0 and *out
 * when present and valid (no-store and no-cache give 0); TK_E_NOTFOUND
 * when there is no usable directive. Pure. */
int tk_outbound_max_age(tk_slice cache_control, int64_t *out);

/* Whether an address may be reached by a public_only request: family
 * AF_INET (addr: 4 bytes) or AF_INET6 (16 bytes), network byte order.
 * Refused: unspecified, "this network" 0/8, loopback, RFC 1918, CGNAT
 * 100.64/10, link-local, the IETF and documentation ranges, benchmarking
 * 198.18/15, multicast, reserved 240/4 and broadcast; for IPv6 everything
 * outside global unicast 2000::/3 (so ::1, ULA fc00::/7, fe80::/10,
 * multicast), 2001::/23, 2001:db8::/32, 3fff::/20, and the IPv4-mapped,
 * NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms of a refused IPv4
 * address. Pure. */
bool tk_outbound_addr_public(int family, const uint8_t *addr);

/* Statistics for /metrics (relaxed reads; approximate while running). */
#define TK_OB_DUR_BUCKETS 10 /* upper bounds 10 ms … 30 s, then +Inf */
typedef struct tk_outbound_stats {
    uint64_t requests[TK_OB_PURPOSES][TK_OB_RESULTS];
    uint64_t dur[TK_OB_PURPOSES][TK_OB_DUR_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t dur_sum_ns[TK_OB_PURPOSES];
} tk_outbound_stats;
void tk_outbound_stats_get(const tk_outbound *ob, tk_outbound_stats *out);
/* The bucket bounds in seconds as /metrics prints them ("0.01" … "30"). */
extern const char *const tk_outbound_dur_label[TK_OB_DUR_BUCKETS];

/* Abort every transfer and queued request (callbacks get TK_OB_CANCELED;
 * completions not drained are dropped), stop the thread, free. NULL is a
 * no-op. */
void tk_outbound_stop(tk_outbound *ob);

#endif
