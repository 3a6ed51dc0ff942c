/*
 * What the files of src/cluster share: the cluster's state (cluster.c runs
 * it) and the connection's set-up from the configuration (connect.c).
 * Private to this folder.
 */
#ifndef TOKEND_CLUSTER_INT_H
#define TOKEND_CLUSTER_INT_H

#include "tokend/cluster.h"
#include "tokend/limits.h"

#include <limits.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MSG_ID_HEADER "Nats-Msg-Id"
#define MSG_ID_MAX    (2 * TK_CLUSTER_NAME_MAX + 48)
/* A consumer whose stream moved on while nothing was applied for this long
 * is replaced (a consumer lost with its server, say). */
#define STALL_NS (2000ull * 1000000ull)

typedef struct pend {
    uint64_t tag; /* publish counter this slot holds (0: never used) */
    bool waiting; /* a worker waits for it */
    unsigned worker;
    uint64_t cookie;
    uint64_t t0;  /* publish time (mono ns) */
    uint64_t due; /* give up (503) after this */
} pend;

/* One consumer generation: its messages count only while it is current. */
typedef struct sub_ctx {
    tk_cluster *cl;
    uint64_t gen;
} sub_ctx;

struct tk_cluster {
    tk_store *st;
    tk_committer *com;
    char urls[TK_CLUSTER_URLS_MAX];
    char stream[TK_CLUSTER_NAME_MAX + 1];
    char subject[TK_CLUSTER_NAME_MAX + 8];
    char prefix[2 * TK_CLUSTER_NAME_MAX + 4]; /* "<node>-<boot>-" */
    size_t prefix_len;
    uint64_t staleness_ns, publish_timeout_ns, tick_ns;
    unsigned replicas;
    uint64_t replay_window_ms;
    bool dup_window_short; /* cluster thread: the stream's duplicate window was logged short */
    tk_cluster_keys keys;  /* the entries' HMAC keys (clmac.c): k[0] signs */
    char nats_user[TK_CLUSTER_USER_MAX + 1];                         /* "": none */
    char nats_password[TK_CLUSTER_PASSWORD_MAX + 1];                 /* with nats_user */
    bool tls;                                                        /* tls:// URLs */
    char nats_ca[PATH_MAX], nats_cert[PATH_MAX], nats_key[PATH_MAX]; /* "": none */
    const char *servers[TK_CLUSTER_SERVERS_MAX];                     /* into urls */
    int nservers;

    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;

    pthread_mutex_t mu; /* counter, pending */
    uint64_t counter;
    pend *pending;
    unsigned cap;

    pthread_mutex_t sub_mu; /* sub, gen: a stale consumer's message is dropped under it */
    natsSubscription *sub;
    uint64_t gen;

    pthread_t thread;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stop;
    bool thread_started;

    /* Atomic, relaxed unless said. */
    bool stream_ready;
    uint64_t applied;  /* last durable sequence (committer's applied hook) */
    uint64_t head;     /* the stream's last sequence, as last polled */
    uint64_t fresh_at; /* mono ns at which the state was last known current; 0 never */
    /* A poll not yet caught up with: its time (0: none) and head, one pair
     * under target_mu (read apart, a new poll's time could pair with the
     * previous poll's head and claim freshness too early). */
    pthread_mutex_t target_mu;
    uint64_t target_t0;
    uint64_t target_seq;
    uint64_t progress_seq, progress_at; /* cluster thread only */
    uint64_t down_since, probe_at;      /* cluster thread: not connected since; next probe */
    bool behind;                        /* atomic: the stream holds less than the store applied */
    uint64_t behind_head; /* cluster thread: the head of the last poll that ended below it */
    bool want_resub;      /* atomic: the committer met a gap; the consumer is replaced */
    /* Atomic: the sequence of an entry whose MAC failed (0: none). Nothing
     * from it on is applied: this node stops there and goes stale. */
    uint64_t blocked_seq;
    /* Atomic: mono ns until which writes are refused, this node's clock having
     * drifted far from the stream's (0: none). */
    uint64_t skewed_until;
    tk_cluster_stats stats;
};

#define CL_ADD(cl, f, n) __atomic_fetch_add(&(cl)->stats.f, (n), __ATOMIC_RELAXED)

/* connect.c: names, timings, keys, credentials and TLS files from cfg (0 or
 * TK_E_INVALID / TK_E_UNAVAILABLE); the TLS files checked (logged when not);
 * the connection's options (retry: the real connection, reconnecting forever;
 * otherwise one try); while disconnected, a plain connect now and then whose
 * failure says why in the log (cluster thread). */
int cl_init_names(tk_cluster *cl, const tk_cluster_cfg *cfg);
int cl_check_tls_files(const tk_cluster *cl);
natsStatus cl_make_opts(tk_cluster *cl, bool retry, natsOptions **out);
void cl_probe(tk_cluster *cl, uint64_t now);

#endif
