/*
 * The application: routes requests to endpoints (introspect, revoke,
 * metadata, health, metrics) and implements the server's hooks. Each worker
 * gets a context holding its read transaction (renewed once per batch), its
 * scratch buffers and its metrics; nothing here allocates per request.
 */
#ifndef TOKEND_ENDPOINTS_H
#define TOKEND_ENDPOINTS_H

#include "tokend/common.h"
#include "tokend/store.h"
#include "tokend/committer.h"
#include "tokend/server.h"
#include "tokend/core.h"
#include "tokend/json.h"
#include "tokend/idp.h"
#include "tokend/idp_jwks.h"
#include "tokend/outbound.h"
#include "tokend/keys.h"

typedef struct tk_app tk_app;

/* The server listeners the application serves (tk_http_request.listener;
 * main.c configures them in this order). /metrics is served only on the
 * metrics listener (bearer-checked when cfg->metrics_token is set) and
 * every other route only on the main one: anything else answers 404. */
enum tk_app_listener {
    TK_APP_LISTENER_MAIN = 0,
    TK_APP_LISTENER_METRICS = 1,
};

/* What the application takes from the configuration (main.c copies it from
 * tk_config: the endpoints sit below the configuration layer). The strings
 * must outlive the app. */
/* registration = open | approval | closed */
enum tk_registration_policy {
    TK_REGISTRATION_OPEN = 1,
    TK_REGISTRATION_APPROVAL = 2,
    TK_REGISTRATION_CLOSED = 3,
};

/* prefetch = auto | on | off: the batch hint (docs/ARCHITECTURE.md §4,
 * "Prefetching a batch"). auto: only while the tokens tree is larger than
 * TK_PREFETCH_AUTO_BYTES (below that its pages stay cached and the walk
 * would be pure cost); on: always; off: never. Answers are the same. */
enum tk_prefetch_mode { TK_PREFETCH_AUTO = 0, TK_PREFETCH_ON = 1, TK_PREFETCH_OFF = 2 };

/* login = off | dev | oidc (sign-in at an upstream OpenID provider of the
 * IdP trust file: src/endpoints/oidc.c) */
enum tk_login_method { TK_LOGIN_OFF = 0, TK_LOGIN_DEV = 1, TK_LOGIN_OIDC = 2 };

typedef struct tk_app_cfg {
    const char *issuer;         /* the RFC 8414 issuer: metadata, realms, iss */
    const char *resources_file; /* protected resources (JSON); "" = none */
    const char *metrics_token;  /* bearer the metrics listener requires; "" = none */
    unsigned max_depth;         /* delegation links allowed */
    unsigned auth_fail_burst;   /* failed authentications before 429; 0 = no limit */
    /* The authorization server (config.h: registration, login, …). */
    int registration; /* enum tk_registration_policy (0 = approval) */
    int login;        /* enum tk_login_method */
    int64_t access_ttl, refresh_ttl, session_ttl;
    int64_t code_ttl, authorize_ttl;
    unsigned refresh_reuse_window;
    unsigned dpop_nonce;      /* 1: DPoP proofs must carry a current server nonce */
    unsigned dpop_rate;       /* DPoP proofs/s the replay cache holds; 0 = the default */
    unsigned register_burst;  /* registrations per address per minute; 0 = no limit */
    unsigned authorize_burst; /* stored /authorize requests per address per minute; 0 = none */
    unsigned
        authorize_pending_max; /* stored /authorize requests per authorize-ttl, all addresses */
    /* Client ID Metadata Documents (config.h: cimd-*): space-separated
     * host lists (NULL or "" = none) and the document cache bounds. */
    const char *cimd_private_hosts;
    const char *cimd_approve_hosts;
    int64_t cimd_cache_min, cimd_cache_max;
    /* Client certificates (RFC 8705). tls_auth: some listener speaks TLS, so
     * metadata lists tls_client_auth and self_signed_tls_client_auth.
     * cert_header ("" = none): the header a proxy in cert_proxies (16-byte
     * addresses, IPv4 mapped) forwards the client's certificate in, checked
     * against certificate-bound tokens at forward-auth. */
    bool tls_auth;
    const char *cert_header;
    const uint8_t (*cert_proxies)[16];
    unsigned ncert_proxies;
    tk_store *store;
    tk_committer *committer;
    /* Cluster mode (cluster.h), or NULL: introspection and forward-auth
     * answer 503 while this node's state is not known current, /healthz
     * says not ready, /metrics shows the op log. */
    struct tk_cluster *cluster;
    tk_idp_holder *idp;    /* trusted IdPs (POST /backchannel-logout, …); NULL = none */
    tk_idp_jwks *jwks;     /* fetched IdP keys: unknown kids ask it for a fetch; NULL = none */
    tk_outbound *outbound; /* the outbound thread (its counters reach /metrics); or NULL */
    /* tokend's signing keys (GET /jwks.json, signed introspection); NULL =
     * none: no JWKS, every answer plain JSON. */
    tk_keys_holder *keys;
    int64_t signing_overlap; /* seconds a retired key stays in the JWKS */
    unsigned workers;
    int prefetch; /* enum tk_prefetch_mode (0 = auto) */
    /* Connection counters for /metrics, or NULL. */
    void (*server_stats)(void *arg, tk_server_stats *out);
    void *server_stats_arg;
} tk_app_cfg;

/* Returns 0, -ENOMEM, or the error of loading cfg->resources_file (logged:
 * -errno, TK_E_INVALID). */
int tk_app_create(const tk_app_cfg *cfg, tk_app **out);

/* Reload the protected resources file (SIGHUP); call from one thread at a
 * time (main). Workers switch to the new table at their next batch; the old
 * one is kept until tk_app_destroy (audit entries and in-flight batches may
 * point into it). On error (logged) the current table stays. Returns 0,
 * -errno, -ENOMEM or TK_E_INVALID. */
int tk_app_reload_resources(tk_app *app);
/* Fill the hooks the server calls (hooks->app = app). */
void tk_app_hooks(tk_app *app, tk_server_hooks *hooks);
void tk_app_destroy(tk_app *app);
/* The SSF pusher whose statistics /metrics shows (started after the
 * server: it needs the bound issuer); NULL = none. Any thread. */
struct tk_ssf;
void tk_app_set_ssf(tk_app *app, struct tk_ssf *ssf);

#endif
