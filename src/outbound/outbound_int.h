/*
 * Private to src/outbound: a request slot, the outbound context, and what
 * the pool and thread (outbound.c) call in the transfer code (transfer.c).
 * The calls go one way, outbound.c → transfer.c; response.c (names, header
 * lookup, Cache-Control) is pure and called by both and by callers.
 */
#ifndef TOKEND_OUTBOUND_INT_H
#define TOKEND_OUTBOUND_INT_H

#include "tokend/outbound.h"

#include <curl/curl.h>
#include <pthread.h>

#define SMALL_VALUE_MAX 128
#define NO_SLOT         UINT32_MAX

typedef struct slot {
    /* The request, copied at submit. */
    tk_outbound_req req;
    char url[TK_URL_MAX + 1];
    char body[TK_OUTBOUND_REQ_BODY_MAX];
    char ctype[SMALL_VALUE_MAX + 1], accept[SMALL_VALUE_MAX + 1];
    char auth[TK_OUTBOUND_AUTH_MAX + 1];
    size_t cap; /* this request's body cap */
    unsigned timeout_ms;
    /* The transfer (outbound thread only). */
    CURL *easy;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    bool too_big;
    bool refused_address; /* public_only: a connection to a non-public address was refused */
    uint64_t t0;
    char *rbody; /* grows by doubling up to cap + 1 */
    size_t rlen, rcap;
    char *rhdr; /* TK_OUTBOUND_HEADERS_MAX + 1 */
    size_t hlen;
    /* The answer the caller reads. */
    tk_outbound_resp resp;
} slot;

typedef struct done_ring {
    pthread_mutex_t mu;
    uint32_t *idx; /* cap slot indices */
    size_t head, count;
    int efd;
} done_ring;

struct tk_outbound {
    tk_outbound_cfg cfg;
    unsigned cap;
    CURLM *multi;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu; /* guards free list, pending FIFO, stopping */
    slot *slots;        /* cap */
    uint32_t *free_idx; /* stack of free slots */
    size_t nfree;
    uint32_t *pending; /* FIFO ring of slot indices */
    size_t phead, pcount;
    bool stopping;

    unsigned running;        /* outbound thread only */
    done_ring *done;         /* cfg.nworkers */
    tk_outbound_stats stats; /* atomic, relaxed */
};

#define STAT_ADD(ob, field, n) __atomic_fetch_add(&(ob)->stats.field, (n), __ATOMIC_RELAXED)

/* Upper bounds of the latency buckets in ms (response.c). */
extern const uint64_t ob_dur_bound_ms[TK_OB_DUR_BUCKETS];

/* Build slot s's easy handle with every rule of outbound.h and add it to
 * the multi handle. 0, -ENOMEM or TK_E_INVALID (an option libcurl
 * refused). Outbound thread. */
int ob_setup(tk_outbound *ob, slot *s);

/* Fill s->resp from a finished transfer (forced != TK_OB_RESULTS: that
 * result, e.g. canceled), free the easy handle, count it for /metrics and
 * log it. Outbound thread. */
void ob_finish(tk_outbound *ob, slot *s, CURLcode c, uint8_t forced);

#endif
