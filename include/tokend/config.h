/*
 * Configuration: defaults, then a config file (--config FILE), then
 * command-line flags, each overriding the one before.
 *
 * File format: one "key = value" per line; '#' starts a comment; keys are the
 * long flag names without "--" (listen, workers, data, map-size, issuer,
 * access-ttl, refresh-ttl, session-ttl, max-depth, max-conns, idle-timeout,
 * header-timeout, body-timeout, max-body, commit-queue, log-level, pin-cpus,
 * resources, idp-config, auth-fail-burst, map-size-max, metrics-listen,
 * metrics-token, tls-cert, tls-key, outbound-ca-file, outbound-connect-timeout,
 * outbound-timeout, outbound-max-bytes, outbound-queue, outbound-transfers,
 * jwks-refresh-min, jwks-refresh-max, jwks-kid-interval, signing-key-overlap,
 * tls-ca, client-cert-header, client-cert-proxies, ssf-retry-min, ssf-retry-max,
 * ssf-poll, ssf-push, prefetch, cluster-nats, cluster-stream, cluster-node, cluster-max-staleness,
 * cluster-replicas, cluster-replay-window, cluster-key-file, cluster-nats-user,
 * cluster-nats-password-file, cluster-nats-ca, cluster-nats-cert, cluster-nats-key).
 *
 * Cluster mode (cluster.h) is on when cluster-nats names the NATS servers
 * (nats://HOST:PORT, comma-separated; tls://HOST:PORT for TLS, which needs
 * cluster-nats-ca and takes cluster-nats-cert / cluster-nats-key for mutual
 * TLS); cluster-node is then required (this
 * node's id: letters, digits, '-', '_'), cluster-stream defaults to TOKEND,
 * cluster-max-staleness (ms) to 3000, cluster-replicas (used only when
 * tokend creates the stream) to 1. Without cluster-nats tokend is one node
 * and the other cluster keys are refused.
 *
 * Client certificates (RFC 8705): tls-ca is the CA bundle tls_client_auth
 * clients' certificates must chain to (it needs a TLS listener). For
 * certificate-bound tokens at forward-auth, client-cert-header names the
 * header the edge proxy forwards the client's certificate in (nginx
 * $ssl_client_escaped_cert, or RFC 9440 Client-Cert), believed only from the
 * numeric addresses in client-cert-proxies (space-separated); each needs the
 * other. Without them a bound token is refused at forward-auth.
 *
 * listen may be given up to TK_API_LISTEN_MAX times, each "ADDR:PORT" or
 * "ADDR:PORT tls": every address serves the API, the ones marked tls over
 * TLS with tls-cert and tls-key. The first listen of the file, and again the
 * first of the command line, replaces the list; later ones add to it.
 *
 * tokend's signing keys live in DATA/keys (keys.h). A key retired by
 * `tokenctl keys rotate` stays in /jwks.json for max(access-ttl,
 * signing-key-overlap) seconds after tokend last signed with it.
 *
 * /metrics is served only on its own listener (metrics-listen ADDR:PORT or
 * "off"), by default 127.0.0.1 on the port after the main one (an ephemeral
 * port when the main one is 0), so it is reachable from the host alone; with
 * metrics-token set it also requires "Authorization: Bearer <token>".
 */
#ifndef TOKEND_CONFIG_H
#define TOKEND_CONFIG_H

#include "tokend/common.h"
#include "tokend/limits.h"
#include <limits.h>

/* One more API listening address (listen given again). */
typedef struct tk_config_listen {
    char host[64];
    uint16_t port;
    bool tls;
} tk_config_listen;

typedef struct tk_config {
    char host[64]; /* the first listen */
    uint16_t port;
    bool tls;
    tk_config_listen more[TK_API_LISTEN_MAX - 1]; /* the further ones, in order */
    unsigned nmore;
    bool listen_fresh;       /* the next listen replaces the list (a new source begins) */
    char tls_cert[PATH_MAX]; /* PEM chain, leaf first; "" = none */
    char tls_key[PATH_MAX];  /* PEM private key, unencrypted */
    char tls_ca[PATH_MAX];   /* PEM CAs for tls_client_auth; "" = none */
    char cert_header[TK_CERT_HEADER_NAME_MAX + 1]; /* client-cert-header; "" = none */
    uint8_t cert_proxies[TK_CERT_PROXIES_MAX][16]; /* IPv6 / IPv4-mapped */
    unsigned ncert_proxies;
    unsigned workers; /* 0 = one per online CPU */
    char data_dir[PATH_MAX];
    uint64_t map_size;
    char issuer[TK_URL_MAX];
    int64_t access_ttl, refresh_ttl, session_ttl; /* seconds */
    int64_t signing_key_overlap; /* seconds a retired signing key stays published */
    unsigned max_depth;
    unsigned max_conns;
    unsigned idle_timeout_ms, header_timeout_ms, body_timeout_ms;
    size_t max_body;
    unsigned commit_queue;
    unsigned auth_fail_burst; /* failed authentications per address/client id; 0 = no limit */
    uint64_t map_size_max;    /* the committer grows a full map up to this; 0 = never */
    int log_level;
    bool pin_cpus;
    char resources_file[PATH_MAX]; /* protected resources (JSON; resources.h); "" = none */
    char idp_config[PATH_MAX];     /* IdP trust file (idp.h); empty = no IdP events */
    char metrics_host[64];         /* metrics listener address; "" = off */
    int32_t metrics_port;          /* -1: the main port + 1 (see tk_config_metrics_port) */
    char metrics_token[TK_METRICS_TOKEN_MAX + 1]; /* "" = no bearer required */
    /* The authorization server (issue 11). */
    int registration;               /* enum tk_registration_policy (endpoints.h) */
    int login;                      /* enum tk_login_method */
    int64_t code_ttl;               /* authorization code lifetime, seconds */
    int64_t authorize_ttl;          /* pending authorization request / CSRF lifetime */
    unsigned refresh_reuse_window;  /* seconds a rotated refresh token still works; 0 = strict */
    unsigned dpop_nonce;            /* 1: DPoP proofs must carry a server nonce (RFC 9449 §8) */
    unsigned dpop_rate;             /* DPoP proofs per second the jti replay cache holds */
    unsigned register_burst;        /* registrations per source address per minute */
    unsigned authorize_burst;       /* stored /authorize requests per source address per minute */
    unsigned authorize_pending_max; /* stored /authorize requests per authorize-ttl, in all */
    /* The outbound thread (outbound.h). */
    char outbound_ca_file[PATH_MAX]; /* further trusted CAs (PEM); "" = system store only */
    unsigned outbound_connect_timeout_ms, outbound_timeout_ms;
    uint64_t outbound_max_bytes; /* response body cap */
    unsigned outbound_queue, outbound_transfers;
    /* Client ID Metadata Documents (src/endpoints/cimd.c): hosts whose
     * addresses may be private (space-separated; "" = none: public only),
     * hosts whose clients are approved at once, and the bounds (seconds)
     * on how long a fetched document is trusted. */
    char cimd_private_hosts[TK_CIMD_HOSTS_MAX + 1];
    char cimd_approve_hosts[TK_CIMD_HOSTS_MAX + 1];
    int64_t cimd_cache_min, cimd_cache_max;
    /* Fetched IdP keys (idp_jwks.h), seconds. */
    int64_t jwks_refresh_min, jwks_refresh_max, jwks_kid_interval;
    /* The SSF transmitter (ssf.h), milliseconds: retry back-off bounds and
     * the queue scan when nothing woke the pusher. */
    unsigned ssf_retry_min_ms, ssf_retry_max_ms, ssf_poll_ms;
    /* Whether this node runs the pusher (default on). In cluster mode every
     * node queues every event; on exactly one node, or every receiver gets
     * each event once per pushing node (README "Cluster"). */
    bool ssf_push;
    /* Prefetch each batch's introspection lookups together: enum
     * tk_prefetch_mode (endpoints.h), default auto; a speed switch only. */
    int prefetch;
    /* Cluster mode (cluster.h); cluster_nats "" = one node. */
    char cluster_nats[TK_CLUSTER_URLS_MAX];
    char cluster_stream[TK_CLUSTER_NAME_MAX + 1];
    char cluster_node[TK_CLUSTER_NAME_MAX + 1];
    char cluster_key_file[PATH_MAX]; /* the op log's HMAC key; required with cluster_nats */
    char cluster_nats_user[TK_CLUSTER_USER_MAX + 1]; /* "" = no NATS user/password */
    char cluster_nats_password_file[PATH_MAX];       /* set with cluster_nats_user */
    char cluster_nats_ca[PATH_MAX];   /* tls:// only, then required: the servers' CA */
    char cluster_nats_cert[PATH_MAX]; /* optional client certificate (mutual TLS) */
    char cluster_nats_key[PATH_MAX];  /* its private key, with cluster_nats_cert */
    unsigned cluster_max_staleness;   /* ms */
    unsigned cluster_replicas;
    unsigned cluster_replay_window; /* ms */
    bool cluster_keys_set;          /* some cluster-* key other than cluster-nats was given */
} tk_config;

void tk_config_defaults(tk_config *cfg);

/* Apply "key = value" lines from path. Returns 0, -errno, or TK_E_BADINPUT
 * with a message naming file, line and key in err (errcap bytes). */
int tk_config_load_file(tk_config *cfg, const char *path, char *err, size_t errcap);

/* Set one key from a string (shared by file and flags). A caller that
 * starts a new source of settings (main.c before the flags) sets
 * cfg->listen_fresh so that its first listen replaces the list. */
int tk_config_set(tk_config *cfg, const char *key, const char *value, char *err, size_t errcap);

/* Check relations between values (ranges, issuer is an http(s) URL without
 * query or fragment). Returns 0 or TK_E_INVALID with a message. */
int tk_config_validate(const tk_config *cfg, char *err, size_t errcap);

/* The port the metrics listener binds: metrics-listen's, or by default the
 * main port + 1 (0, i.e. ephemeral, when the main port is 0). Only
 * meaningful when cfg->metrics_host is not empty and cfg validated. */
uint16_t tk_config_metrics_port(const tk_config *cfg);

#endif
