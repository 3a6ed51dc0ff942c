/*
 * Cluster mode: several tokend nodes on one NATS JetStream op log
 * (docs/ARCHITECTURE.md §10). Only src/cluster includes nats.h.
 *
 * Every write a node accepts is published as one stream message (the
 * committer's request, tk_commit_req_encode) with Nats-Msg-Id
 * "<node>-<boot>-<counter>", so a retried publish is stored once. Every node,
 * the publisher included, reads the stream in order with an ordered consumer
 * starting after the sequence its store applied, and feeds it to its
 * committer (tk_committer_submit_entry), which applies batches with the
 * sequence in the same write txn. The worker that submitted the write is
 * answered when its own node has applied the entry (so the caller's next
 * request to this node sees it), or with TK_E_UNAVAILABLE (503) when the
 * publish fails, is not acknowledged in time or the stream is unreachable.
 *
 * Freshness: a poll of the stream's last sequence every tick; a node is fresh
 * while it has applied, less than max-staleness ago, everything the stream
 * held at some poll. Introspection and forward-auth answer 503 when it is not
 * (fail closed); /healthz says not ready.
 */
#ifndef TOKEND_CLUSTER_H
#define TOKEND_CLUSTER_H

#include "tokend/committer.h"
#include "tokend/common.h"
#include "tokend/limits.h"
#include "tokend/store.h"

typedef struct tk_cluster tk_cluster;
typedef struct tk_cluster_keys tk_cluster_keys; /* below */

typedef struct tk_cluster_cfg {
    const char *urls;   /* cluster-nats: nats:// URLs, comma-separated */
    const char *stream; /* cluster-stream: the JetStream stream (created if missing) */
    const char *node;   /* cluster-node: this node's id, unique in the cluster */
    unsigned max_staleness_ms;
    unsigned replicas;         /* stream replicas when tokend creates the stream */
    unsigned replay_window_ms; /* 0 = TK_CLUSTER_REPLAY_WINDOW_DEFAULT (tk_cluster_entry_timely) */
    unsigned publish_timeout_ms; /* 0 = TK_CLUSTER_PUBLISH_TIMEOUT_MS */
    unsigned pending;            /* writes waiting at once: the committer's queue_cap */
    const tk_cluster_keys *keys; /* cluster-key-file's keys (tk_cluster_keys_load) */
    const char *nats_user;       /* NULL/"": no user/password (cluster-nats-user) */
    const char *nats_password;   /* its password (cluster-nats-password-file's contents) */
    /* TLS (urls all tls://): the CA file the servers' certificates must chain
     * to, each checked against the host of the URL it was reached by;
     * optionally a client certificate chain and its private key (mutual TLS).
     * NULL/"": none (nats:// URLs). */
    const char *nats_ca, *nats_cert, *nats_key;
} tk_cluster_cfg;

/* Entry authentication. Every published entry carries, in the header
 * TK_CLUSTER_MAC_HEADER, "<key id>.<time>.<mac>": the signing key's id (16
 * lowercase hex), the publisher's wall-clock time in Unix ms (decimal, no
 * leading zero) and hex HMAC-SHA256(key, subject NUL msg-id NUL time NUL
 * entry bytes), msg-id being the entry's Nats-Msg-Id. A node applies no entry
 * whose header is missing, names no key it holds or whose MAC is wrong, nor
 * one whose time is too far from the stream's own timestamp of the message
 * (a replay: tk_cluster_fresh_entry); it stops advancing and goes stale
 * (fail closed, never a silent skip). */
#define TK_CLUSTER_MAC_HEADER "Tokend-Mac"
#define TK_CLUSTER_MAC_LEN    32
#define TK_CLUSTER_KID_LEN    8
#define TK_CLUSTER_MAC_HDR_MAX                                                                     \
    (2 * TK_CLUSTER_KID_LEN + 1 + TK_CLUSTER_TIME_DIGITS_MAX + 1 + 2 * TK_CLUSTER_MAC_LEN + 1)

typedef struct tk_cluster_key {
    uint8_t key[TK_CLUSTER_KEY_MAX];
    size_t len;
    uint8_t kid[TK_CLUSTER_KID_LEN]; /* the first bytes of HMAC(key, a fixed label) */
} tk_cluster_key;

/* cluster-key-file's keys: k[0] signs, every one verifies. */
struct tk_cluster_keys {
    tk_cluster_key k[TK_CLUSTER_KEYS_MAX];
    unsigned n;
};

typedef struct tk_cluster_mac_hdr {
    uint8_t kid[TK_CLUSTER_KID_LEN];
    uint64_t time_ms;
    uint8_t mac[TK_CLUSTER_MAC_LEN];
} tk_cluster_mac_hdr;

/* Strictly parse a Tokend-Mac value (NULL: missing). 0 or TK_E_BADINPUT. */
int tk_cluster_mac_hdr_parse(const char *s, tk_cluster_mac_hdr *out);

/* The Tokend-Mac value of `data` published on `subject` with `msg_id` at
 * `time_ms` (1..TK_CLUSTER_TIME_MAX), signed with k. 0, TK_E_INVALID (time),
 * TK_E_TOOBIG (subject and id too long) or -EIO (OpenSSL failed). */
int tk_cluster_sign(const tk_cluster_key *k, const char *subject, const char *msg_id,
                    uint64_t time_ms, const uint8_t *data, size_t len,
                    char out[TK_CLUSTER_MAC_HDR_MAX]);

typedef enum tk_cluster_verdict {
    TK_CLUSTER_MAC_OK,
    TK_CLUSTER_MAC_MISSING,     /* no header, or not of the form above */
    TK_CLUSTER_MAC_UNKNOWN_KEY, /* signed with a key this node does not hold */
    TK_CLUSTER_MAC_WRONG,       /* the MAC does not match (forged, altered, another stream) */
} tk_cluster_verdict;

/* Check `hdr` (may be NULL) on `data` received on `subject` with `msg_id`
 * (may be NULL: wrong) against the key it names; the MAC is compared in
 * constant time. On TK_CLUSTER_MAC_OK *time_ms is the signed time. */
tk_cluster_verdict tk_cluster_verify(const tk_cluster_keys *ks, const char *subject,
                                     const char *msg_id, const char *hdr, const uint8_t *data,
                                     size_t len, uint64_t *time_ms);

/* Whether an entry whose MAC verified is on time: its signed time at most
 * window_ms before the stream's timestamp of the message (server_ms, set by
 * the stream when it stored it), and at most window_ms / 2 after it. An
 * entry replayed after the stream's duplicate window (which catches a replay
 * under the same Nats-Msg-Id; the id cannot change without breaking the
 * MAC) is older than that: refused like a forgery. */
bool tk_cluster_entry_timely(uint64_t signed_ms, uint64_t server_ms, uint64_t window_ms);

/* Whether this node, which signed one of its own entries at signed_ms and
 * saw the stream store it at server_ms, may keep writing: its clock at most
 * window_ms / 4 ahead and window_ms / 2 behind (half of what the others
 * accept, so a drifting clock stops this node's writes before its entries
 * would stop every node). */
bool tk_cluster_own_clock_ok(uint64_t signed_ms, uint64_t server_ms, uint64_t window_ms);

/* Parse a key file's text: one key per line (printable ASCII, surrounding
 * blanks dropped, TK_CLUSTER_KEY_MIN..TK_CLUSTER_KEY_MAX bytes), blank lines
 * and '#' comments skipped, at most TK_CLUSTER_KEYS_MAX keys, no key twice;
 * the first signs. 0, or an error with a reason (naming the line) in err. */
int tk_cluster_keys_parse(const char *text, size_t len, tk_cluster_keys *out, char *err,
                          size_t errcap);

/* Read cluster-key-file: a regular file not readable by group or others,
 * at most TK_CLUSTER_KEY_FILE_MAX bytes, parsed as above. 0, or an error with
 * a reason in err (out is then cleansed). */
int tk_cluster_keys_load(const char *path, tk_cluster_keys *out, char *err, size_t errcap);

/* Read cluster-nats-password-file the same way (private; at least 1 byte,
 * shorter than cap, no NUL) into a C string. 0, or an error with err. */
int tk_cluster_password_load(const char *path, char *out, size_t cap, char *err, size_t errcap);

/* A file named by config key `what` that tokend hands to the NATS library:
 * it opens, is a regular file and, when `private`, is not readable by group
 * or others. 0, or an error with a reason in err. */
int tk_cluster_file_check(const char *what, const char *path, bool private, char *err,
                          size_t errcap);

/* Mark the store as this stream's (tokenctl then refuses local writes),
 * switch the committer to log mode and start the cluster thread, which
 * connects (retrying while NATS is down), creates the stream if missing and
 * subscribes after the store's applied sequence. Call before any worker
 * submits. Returns 0, TK_E_INVALID (cfg), -ENOMEM, TK_E_STORE, or
 * TK_E_UNAVAILABLE (the NATS library failed to start; logged). */
int tk_cluster_start(const tk_cluster_cfg *cfg, tk_store *st, tk_committer *com, tk_cluster **out);

/* Stop consuming and close the connection; writes still waiting are failed
 * by tk_committer_stop's drop. Call after the workers stopped and before
 * tk_committer_stop. NULL is a no-op. */
void tk_cluster_stop(tk_cluster *cl);

/* True while this node's state is known current within max-staleness (the
 * hot-path check of introspection and forward-auth). Any thread, lock-free. */
bool tk_cluster_fresh(const tk_cluster *cl, uint64_t now_mono_ns);

typedef struct tk_cluster_stats {
    uint64_t applied_seq, stream_seq;     /* stored sequence; the stream's last, as last polled */
    uint64_t published, publish_failed;   /* publishes sent; failed, not acked or timed out */
    uint64_t refused, unreplicable;       /* refused at once: stream down; op without wire form */
    uint64_t publish_ns_total, publish_n; /* publish → stream ack */
    uint64_t write_ns_total, write_n;     /* publish → applied here (what the caller waits) */
    uint64_t apply_ns_total, apply_n;     /* one batch of entries: decode, apply, commit */
    uint64_t resubscribes;                /* consumer (re)created */
    uint64_t rejected;                    /* entries with no or a wrong MAC (each seq once) */
    uint64_t replayed;                    /* entries with a good MAC, signed out of time */
    uint64_t skew_refused;                /* writes refused: this node's clock drifted */
    int64_t staleness_ms;                 /* since the state was last known current; -1 never */
    bool connected, ready;
} tk_cluster_stats;
void tk_cluster_stats_get(const tk_cluster *cl, tk_cluster_stats *out);

#endif
