/*
 * tokend: wires the modules together and owns the process. Reads the
 * configuration, opens the store, starts the committer, the application and
 * the server, then waits for a signal; SIGTERM/SIGINT stop it gracefully
 * (stop accepting, finish in-flight requests, exit 0); SIGHUP reloads the
 * protected resources, the IdP trust file and the signing keys.
 */
#include "tokend/clock.h"
#include "tokend/cluster.h"
#include "tokend/committer.h"
#include "tokend/config.h"
#include "tokend/crypto.h"
#include "tokend/endpoints.h"
#include "tokend/idp.h"
#include "tokend/idp_jwks.h"
#include "tokend/keys.h"
#include "tokend/log.h"
#include "tokend/outbound.h"
#include "tokend/ssf.h"
#include "tokend/server.h"
#include "tokend/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: tokend [--config FILE] [--listen 'ADDR:PORT[ tls]']... [--workers N] [--data DIR]\n"
    "              [--map-size BYTES] [--issuer URL] [--access-ttl S] [--refresh-ttl S]\n"
    "              [--session-ttl S] [--max-depth N] [--max-conns N] [--idle-timeout MS]\n"
    "              [--header-timeout MS] [--body-timeout MS] [--max-body BYTES]\n"
    "              [--commit-queue N] [--log-level debug|info|warn|error] [--pin-cpus]\n"
    "              [--resources FILE] [--idp-config FILE] [--port-file FILE]\n"
    "              [--auth-fail-burst N] [--map-size-max BYTES]\n"
    "              [--metrics-listen ADDR:PORT|off] [--metrics-token TOKEN]\n"
    "              [--metrics-port-file FILE] [--tls-cert FILE] [--tls-key FILE]\n"
    "              [--tls-ca FILE] [--client-cert-header NAME] [--client-cert-proxies 'ADDR...']\n"
    "              [--tls-port-file FILE] [--registration open|approval|closed]\n"
    "              [--login off|dev] [--code-ttl S] [--authorize-ttl S]\n"
    "              [--refresh-reuse-window S] [--register-burst N] [--dpop-nonce 0|1]\n"
    "              [--dpop-rate N]\n"
    "              [--cimd-private-hosts \"H...\"] [--cimd-approve-hosts \"H...\"]\n"
    "              [--cimd-cache-min S] [--cimd-cache-max S]\n"
    "              [--authorize-burst N] [--authorize-pending-max N]\n"
    "              [--outbound-ca-file FILE] [--outbound-connect-timeout MS]\n"
    "              [--outbound-timeout MS] [--outbound-max-bytes BYTES]\n"
    "              [--outbound-queue N] [--outbound-transfers N]\n"
    "              [--jwks-refresh-min S] [--jwks-refresh-max S] [--jwks-kid-interval S]\n"
    "              [--signing-key-overlap S] [--ssf-retry-min MS] [--ssf-retry-max MS]\n"
    "              [--ssf-poll MS] [--ssf-push on|off] [--prefetch auto|on|off]\n"
    "\n"
    "Token introspection (RFC 7662) and revocation (RFC 7009) with cascading\n"
    "revocation. Defaults: listen 127.0.0.1:7662, data ./tokend-data, one worker\n"
    "per CPU, /metrics only on 127.0.0.1 at the listen port + 1. listen may be\n"
    "given up to 3 times; \" tls\" after an address serves it over TLS (tls-cert,\n"
    "tls-key; reloaded on SIGHUP). A config file holds the same settings as\n"
    "\"key = value\" lines; flags override it.\n";

struct options {
    tk_config cfg;
    const char *port_file;
    const char *metrics_port_file;
    const char *tls_port_file; /* the port of the first TLS listener */
};

static int die_usage(const char *msg)
{
    fprintf(stderr, "tokend: %s\n%s", msg, usage);
    return 2;
}

/* --config is applied first wherever it appears, so flags always win. */
static int parse_args(int argc, char **argv, struct options *o)
{
    char err[512];
    tk_config_defaults(&o->cfg);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                return die_usage("--config needs a file");
            }
            if (tk_config_load_file(&o->cfg, argv[i + 1], err, sizeof(err)) != 0) {
                fprintf(stderr, "tokend: config: %s\n", err);
                return 2;
            }
        }
    }
    o->cfg.listen_fresh = true; /* the first --listen replaces the file's addresses */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--pin-cpus")) {
            o->cfg.pin_cpus = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            char msg[300];
            snprintf(msg, sizeof(msg), "unexpected argument \"%s\"", a);
            return die_usage(msg);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--config")) {
            continue;
        }
        if (!strcmp(a, "--port-file")) {
            o->port_file = v;
            continue;
        }
        if (!strcmp(a, "--metrics-port-file")) {
            o->metrics_port_file = v;
            continue;
        }
        if (!strcmp(a, "--tls-port-file")) {
            o->tls_port_file = v;
            continue;
        }
        if (tk_config_set(&o->cfg, a + 2, v, err, sizeof(err)) != 0) {
            fprintf(stderr, "tokend: %s\n", err);
            return 2;
        }
    }
    if (tk_config_validate(&o->cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tokend: %s\n", err);
        return 2;
    }
    return 0;
}

/* The port file appears whole or not at all: readers poll for it. */
static int write_port_file(const char *path, uint16_t port)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return -errno;
    }
    fprintf(f, "%u\n", (unsigned)port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        return -errno;
    }
    return 0;
}

/* The server listener index of the first TLS address, or 0 if none. */
/* Some API listener speaks TLS (and so asks for client certificates). */
static bool any_tls(const tk_config *cfg)
{
    bool tls = cfg->tls;
    for (unsigned i = 0; i < cfg->nmore; i++) {
        tls = tls || cfg->more[i].tls;
    }
    return tls;
}

static unsigned first_tls_listener(const tk_config *cfg)
{
    if (cfg->tls) {
        return 0;
    }
    unsigned base = cfg->metrics_host[0] != '\0' ? 2 : 1; /* after the metrics one */
    for (unsigned i = 0; i < cfg->nmore; i++) {
        if (cfg->more[i].tls) {
            return base + i;
        }
    }
    return 0;
}

/* The metrics and TLS port files first: a reader that sees the main one can
 * rely on all (each stays absent when its listener is off). */
static int write_port_files(const struct options *o, tk_server *srv)
{
    const tk_config *cfg = &o->cfg;
    bool tls = cfg->tls;
    for (unsigned i = 0; i < cfg->nmore; i++) {
        tls = tls || cfg->more[i].tls;
    }
    const char *path[3] = {o->metrics_port_file, o->tls_port_file, o->port_file};
    uint16_t port[3] = {tk_server_listener_port(srv, TK_APP_LISTENER_METRICS),
                        tk_server_listener_port(srv, first_tls_listener(cfg)), tk_server_port(srv)};
    bool want[3] = {o->metrics_port_file != NULL && cfg->metrics_host[0] != '\0',
                    o->tls_port_file != NULL && tls, o->port_file != NULL};
    for (int i = 0; i < 3; i++) {
        int r = want[i] ? write_port_file(path[i], port[i]) : 0;
        if (r != 0) {
            tk_log_error("port_file_failed", "path=\"%s\" error=\"%s\"", path[i], tk_strerror(r));
            return r;
        }
    }
    return 0;
}

static void derive_issuer(tk_config *cfg, uint16_t port)
{
    if (cfg->issuer[0] != '\0') {
        return;
    }
    bool v6 = strchr(cfg->host, ':') != NULL;
    snprintf(cfg->issuer, sizeof(cfg->issuer), v6 ? "%s://[%s]:%u" : "%s://%s:%u",
             cfg->tls ? "https" : "http", cfg->host, (unsigned)port);
}

/* The server exists only after the application it calls into, so /metrics
 * reaches the server's counters through this pointer, set once it runs. */
static tk_server *running_server;

static void server_stats(void *arg, tk_server_stats *out)
{
    (void)arg;
    tk_server *s = __atomic_load_n(&running_server, __ATOMIC_ACQUIRE);
    if (s) {
        tk_server_stats_get(s, out);
    } else {
        memset(out, 0, sizeof(*out));
    }
}

/* tk_server_cfg.bound: the issuer exists before any worker starts. */
static void issuer_bound(void *arg, uint16_t port)
{
    derive_issuer(arg, port);
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > TK_WORKERS_MAX ? TK_WORKERS_MAX : (unsigned)n;
}

/* Block the signals we handle in every thread; main waits for them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Load the IdP trust file; a NULL *out (and 0) when none is configured. */
static int load_idp(const tk_config *cfg, tk_idp_trust **out)
{
    *out = NULL;
    if (cfg->idp_config[0] == '\0') {
        return 0;
    }
    char err[512];
    int rc = tk_idp_load(cfg->idp_config, out, err, sizeof(err));
    if (rc != 0) {
        tk_log_error("idp_config", "file=\"%s\" error=\"%s\"", cfg->idp_config, err);
        return rc;
    }
    tk_log_info("idp_config", "file=\"%s\" issuers=%u", cfg->idp_config, (*out)->n);
    return 0;
}

/* tokend's signing keys (DATA/keys): the first one is made at first start. */
static int load_keys(const tk_config *cfg, bool create, tk_keyset **out)
{
    char err[512];
    int rc = tk_keys_load(cfg->data_dir, create, tk_now(), out, err, sizeof(err));
    if (rc != 0) {
        tk_log_error("signing_keys", "error=\"%s\"", err);
        return rc;
    }
    const tk_key_info *cur = tk_keys_info(*out, 0);
    tk_log_info("signing_keys", "current=%s keys=%u", cur->kid, tk_keys_count(*out));
    return 0;
}

/* SIGHUP: a rotation by tokenctl keys rotate takes effect here; a folder
 * that does not load keeps the keys in use. */
static void reload_keys(const tk_config *cfg, tk_keys_holder *keys)
{
    const tk_keyset *old = tk_keys_holder_get(keys);
    char was[TK_KID_LEN + 1];
    memcpy(was, tk_keys_info(old, 0)->kid, sizeof(was));
    tk_keyset *fresh = NULL;
    if (load_keys(cfg, false, &fresh) != 0 || tk_keys_holder_swap(keys, fresh, tk_now()) != 0) {
        tk_log_warn("sighup", "note=\"signing keys unchanged\" current=%s", was);
        return;
    }
    const char *now_kid = tk_keys_info(tk_keys_holder_get(keys), 0)->kid;
    if (strcmp(was, now_kid) != 0) {
        tk_log_info("sighup", "note=\"signing key rotated\" current=%s previous=%s", now_kid, was);
    } else {
        tk_log_info("sighup", "note=\"signing keys reloaded\" current=%s", now_kid);
    }
}

/* SIGHUP: reload the TLS certificate and key, the protected resources and
 * the signing keys and the IdP trust file; a bad file keeps the one in use. The key refresher
 * merges its fetched keys into the new trust file's snapshot and swaps it in. */
/* The outbound thread, for discovery at SIGHUP (main thread only). */
static tk_outbound *main_outbound;
/* login = oidc: whether every sign-in IdP of the trust file was
 * discovered at the latest (re)load; written by the main thread only. */
static bool oidc_all_discovered = true;

static void reload(const tk_config *cfg, tk_idp_jwks *jwks, tk_keys_holder *keys, tk_app *app)
{
    reload_keys(cfg, keys);
    tk_server *srv = __atomic_load_n(&running_server, __ATOMIC_ACQUIRE);
    if (srv != NULL && cfg->tls_cert[0] != '\0') {
        int rc = tk_server_tls_reload(srv); /* a failure was logged with its reason */
        if (rc == 0) {
            tk_log_info("sighup", "note=\"TLS certificate and key reloaded\"");
        } else {
            tk_log_warn("sighup", "note=\"TLS certificate and key unchanged\"");
        }
    }
    if (cfg->resources_file[0] != '\0') {
        int rc = tk_app_reload_resources(app);
        if (rc == 0) {
            tk_log_info("sighup", "note=\"protected resources reloaded\"");
        } else {
            tk_log_warn("sighup", "note=\"protected resources unchanged\" error=\"%s\"",
                        tk_strerror(rc));
        }
    }
    if (cfg->idp_config[0] == '\0') {
        tk_log_info("sighup", "note=\"no idp-config: nothing to reload\"");
        return;
    }
    tk_idp_trust *t = NULL;
    if (load_idp(cfg, &t) != 0) {
        tk_log_warn("sighup", "note=\"IdP configuration unchanged\"");
        return;
    }
    if (cfg->login == TK_LOGIN_OIDC) {
        /* discovery again: the documents may have changed */
        oidc_all_discovered = tk_idp_discover(t, main_outbound) == 0;
    }
    tk_idp_jwks_set_base(jwks, t);
    tk_log_info("sighup", "note=\"IdP configuration reloaded\"");
}

/* Discovery again, off SIGHUP: the trust file is loaded and its IdPs
 * discovered as at a reload; a file that does not load, or a refresh that
 * loses an IdP every earlier discovery found, keeps the snapshot in use. */
static void rediscover(const tk_config *cfg, tk_idp_jwks *jwks)
{
    tk_idp_trust *t = NULL;
    if (load_idp(cfg, &t) != 0) {
        return;
    }
    unsigned failed = tk_idp_discover(t, main_outbound);
    if (failed > 0 && oidc_all_discovered) {
        /* A refresh that failed (the IdP briefly down) must not take away
         * endpoints that work: the snapshot in use stays until the next try. */
        tk_log_warn("oidc_discovery_kept", "failed=%u note=\"the endpoints in use stay\"", failed);
        tk_idp_unref(t);
        return;
    }
    oidc_all_discovered = failed == 0;
    tk_idp_jwks_set_base(jwks, t);
}

static int wait_for_stop(const sigset_t *set, const tk_config *cfg, tk_idp_jwks *jwks,
                         tk_keys_holder *keys, tk_app *app)
{
    for (;;) { /* until a stop signal: SIGHUP alone does not stop */
        int sig = 0;
        if (cfg->login == TK_LOGIN_OIDC) {
            /* Discovery documents are refreshed hourly, and every
             * TK_OIDC_REDISCOVER_S while an IdP could not be discovered. */
            struct timespec ts = {.tv_sec = oidc_all_discovered ? TK_OIDC_REFRESH_S
                                                                : TK_OIDC_REDISCOVER_S};
            sig = sigtimedwait(set, NULL, &ts);
            if (sig < 0 && errno == EAGAIN) {
                rediscover(cfg, jwks);
                continue;
            }
            if (sig < 0) {
                continue; /* EINTR */
            }
        } else if (sigwait(set, &sig) != 0) {
            return -1;
        }
        if (sig == SIGHUP) {
            reload(cfg, jwks, keys, app);
            continue;
        }
        return sig;
    }
}

/* Warming the map runs beside the workers: it only saves them page faults. */
struct prefault {
    tk_store *store;
    pthread_t thread;
    int stop;
    bool started;
};

static void *prefault_main(void *arg)
{
    struct prefault *p = arg;
    (void)pthread_setname_np(pthread_self(), TK_PREFAULT_THREAD); /* ps -L, top -H, tokend-bench */
    uint64_t t0 = tk_mono_ms(), bytes = 0;
    int r = tk_store_prefault(p->store, &p->stop, &bytes);
    if (r == 0) {
        tk_log_info("map_prefaulted", "bytes=%llu ms=%llu", (unsigned long long)bytes,
                    (unsigned long long)(tk_mono_ms() - t0));
    } else {
        tk_log_info("map_prefault_stopped", "error=\"%s\"", tk_strerror(r));
    }
    return NULL;
}

/* The outbound thread and the IdP key refresher, which installs the trust
 * file's snapshot (trust: the caller's reference, given away) in the holder
 * merged with whatever it fetches. */
static int start_outbound(const tk_config *cfg, tk_idp_holder *idp, tk_idp_trust *trust,
                          tk_outbound **ob_out, tk_idp_jwks **jwks_out)
{
    tk_outbound_cfg ocfg = {.nworkers = cfg->workers,
                            .queue_cap = cfg->outbound_queue,
                            .max_transfers = cfg->outbound_transfers,
                            .connect_timeout_ms = cfg->outbound_connect_timeout_ms,
                            .timeout_ms = cfg->outbound_timeout_ms,
                            .max_bytes = (size_t)cfg->outbound_max_bytes,
                            .ca_file = cfg->outbound_ca_file};
    tk_idp_jwks_cfg jcfg = {.refresh_min_s = cfg->jwks_refresh_min,
                            .refresh_max_s = cfg->jwks_refresh_max,
                            .kid_interval_s = cfg->jwks_kid_interval};
    int r = tk_outbound_start(&ocfg, ob_out);
    r = r != 0 ? r : tk_idp_jwks_start(&jcfg, *ob_out, idp, jwks_out);
    if (r != 0) {
        tk_log_error("outbound_start_failed", "error=\"%s\"", tk_strerror(r));
        tk_idp_unref(trust);
        return r;
    }
    unsigned signin = 0;
    for (unsigned i = 0; trust != NULL && i < trust->n; i++) {
        signin += trust->issuers[i].client_id_len > 0 ? 1 : 0;
    }
    if (cfg->login == TK_LOGIN_OIDC && signin == 0) {
        tk_log_error("oidc_no_idp", "note=\"login = oidc, but no issuer of the IdP trust file "
                                    "names a client_id\"");
        tk_idp_unref(trust);
        return TK_E_INVALID;
    }
    if (signin > 0 && cfg->login == TK_LOGIN_OIDC) {
        /* before publishing: it fills the endpoints */
        oidc_all_discovered = tk_idp_discover(trust, *ob_out) == 0;
    }
    if (trust != NULL) {
        tk_idp_jwks_set_base(*jwks_out, trust);
    }
    return 0;
}

/* The SSF pusher, once the server is bound: the issuer (every SET's iss)
 * is derived from the bound port. */
static int start_ssf(const tk_config *cfg, tk_store *store, tk_committer *committer,
                     tk_outbound *outbound, tk_keys_holder *keys, tk_app *app, tk_ssf **out)
{
    if (!cfg->ssf_push) {
        /* Events still queue here (apply appends them on every node); the
         * pushing node's acks, replicated, drain them. */
        tk_log_info("ssf_push_off", "note=\"events queue here; another node pushes them\"");
        return 0;
    }
    tk_ssf_cfg c = {.issuer = cfg->issuer,
                    .retry_min_ms = cfg->ssf_retry_min_ms,
                    .retry_max_ms = cfg->ssf_retry_max_ms,
                    .poll_ms = cfg->ssf_poll_ms,
                    .store = store,
                    .committer = committer,
                    .outbound = outbound,
                    .keys = keys};
    int r = tk_ssf_start(&c, out);
    if (r != 0) {
        tk_log_error("ssf_start_failed", "error=\"%s\"", tk_strerror(r));
        return r;
    }
    tk_app_set_ssf(app, *out);
    return 0;
}

static int run(struct options *o)
{
    tk_config *cfg = &o->cfg;
    sigset_t set;
    block_signals(&set);
    if (cfg->workers == 0) {
        cfg->workers = online_cpus();
    }

    tk_store *store = NULL;
    tk_store_opts so = {.dir = cfg->data_dir,
                        .map_size = cfg->map_size,
                        .read_only = false,
                        .threaded_readers = true};
    int r = tk_store_open(&so, &store);
    if (r != 0) {
        tk_log_error("store_open_failed", "data=\"%s\" error=\"%s\"", cfg->data_dir,
                     tk_strerror(r));
        return 1;
    }
    tk_keyset *ks = NULL;
    tk_keys_holder *keys = NULL;
    if (load_keys(cfg, true, &ks) != 0 || tk_keys_holder_new(ks, &keys) != 0) {
        tk_store_close(store);
        return 1;
    }
    tk_idp_trust *trust = NULL;
    tk_idp_holder *idp = NULL;
    if (load_idp(cfg, &trust) != 0 || tk_idp_holder_new(trust, &idp) != 0) {
        tk_idp_unref(trust);
        tk_keys_holder_free(keys);
        tk_store_close(store);
        return 1;
    }
    tk_idp_ref(trust); /* the holder has one; the key refresher gets this one */
    tk_outbound *outbound = NULL;
    tk_idp_jwks *jwks = NULL;
    tk_committer *committer = NULL;
    r = start_outbound(cfg, idp, trust, &outbound, &jwks);
    main_outbound = outbound;
    if (r == 0 && (r = tk_committer_start(store, cfg->workers, cfg->commit_queue, &committer))) {
        tk_log_error("committer_start_failed", "error=\"%s\"", tk_strerror(r));
    }
    if (r != 0) {
        tk_idp_jwks_stop(jwks);
        tk_outbound_stop(outbound);
        tk_idp_jwks_free(jwks);
        tk_idp_holder_free(idp);
        tk_keys_holder_free(keys);
        tk_store_close(store);
        return 1;
    }
    tk_committer_set_map_max(committer, cfg->map_size_max);
    tk_cluster *cluster = NULL;
    static tk_cluster_keys cluster_keys;
    if (cfg->cluster_nats[0] != '\0') {
        tk_cluster_cfg ccfg = {.urls = cfg->cluster_nats,
                               .keys = &cluster_keys,
                               .stream = cfg->cluster_stream,
                               .node = cfg->cluster_node,
                               .max_staleness_ms = cfg->cluster_max_staleness,
                               .replicas = cfg->cluster_replicas,
                               .replay_window_ms = cfg->cluster_replay_window,
                               .pending = cfg->commit_queue,
                               .nats_ca = cfg->cluster_nats_ca,
                               .nats_cert = cfg->cluster_nats_cert,
                               .nats_key = cfg->cluster_nats_key};
        char kerr[PATH_MAX + 128];
        r = tk_cluster_keys_load(cfg->cluster_key_file, &cluster_keys, kerr, sizeof kerr);
        if (r != 0) {
            tk_log_error("cluster_key_refused", "error=\"%s\"", kerr);
        }
        static char nats_password[TK_CLUSTER_PASSWORD_MAX + 1];
        if (r == 0 && cfg->cluster_nats_user[0] != '\0') {
            r = tk_cluster_password_load(cfg->cluster_nats_password_file, nats_password,
                                         sizeof nats_password, kerr, sizeof kerr);
            if (r != 0) {
                tk_log_error("cluster_key_refused", "error=\"%s\"", kerr);
            }
            ccfg.nats_user = cfg->cluster_nats_user;
            ccfg.nats_password = nats_password;
        }
        r = r != 0 ? r : tk_cluster_start(&ccfg, store, committer, &cluster);
        tk_cleanse(&cluster_keys, sizeof cluster_keys); /* the cluster holds its copy */
        if (r != 0) {
            tk_log_error("cluster_start_failed", "error=\"%s\"", tk_strerror(r));
            tk_committer_stop(committer);
            tk_idp_jwks_stop(jwks);
            tk_outbound_stop(outbound);
            tk_idp_jwks_free(jwks);
            tk_idp_holder_free(idp);
            tk_keys_holder_free(keys);
            tk_store_close(store);
            return 1;
        }
    }
    tk_app *app = NULL;
    tk_app_cfg acfg = {.issuer = cfg->issuer,
                       .resources_file = cfg->resources_file,
                       .metrics_token = cfg->metrics_token,
                       .max_depth = cfg->max_depth,
                       .auth_fail_burst = cfg->auth_fail_burst,
                       .prefetch = cfg->prefetch,
                       .registration = cfg->registration,
                       .login = cfg->login,
                       .access_ttl = cfg->access_ttl,
                       .refresh_ttl = cfg->refresh_ttl,
                       .session_ttl = cfg->session_ttl,
                       .code_ttl = cfg->code_ttl,
                       .authorize_ttl = cfg->authorize_ttl,
                       .refresh_reuse_window = cfg->refresh_reuse_window,
                       .dpop_nonce = cfg->dpop_nonce,
                       .dpop_rate = cfg->dpop_rate,
                       .register_burst = cfg->register_burst,
                       .cimd_private_hosts = cfg->cimd_private_hosts,
                       .cimd_approve_hosts = cfg->cimd_approve_hosts,
                       .cimd_cache_min = cfg->cimd_cache_min,
                       .cimd_cache_max = cfg->cimd_cache_max,
                       .authorize_burst = cfg->authorize_burst,
                       .authorize_pending_max = cfg->authorize_pending_max,
                       .tls_auth = any_tls(cfg),
                       .cert_header = cfg->cert_header,
                       .cert_proxies = cfg->cert_proxies,
                       .ncert_proxies = cfg->ncert_proxies,
                       .store = store,
                       .committer = committer,
                       .cluster = cluster,
                       .idp = idp,
                       .jwks = jwks,
                       .outbound = outbound,
                       .keys = keys,
                       .signing_overlap = cfg->signing_key_overlap > cfg->access_ttl
                                              ? cfg->signing_key_overlap
                                              : cfg->access_ttl,
                       .workers = cfg->workers,
                       .server_stats = server_stats,
                       .server_stats_arg = NULL};
    r = tk_app_create(&acfg, &app);
    tk_server *srv = NULL;
    tk_ssf *ssf = NULL;
    tk_server_hooks hooks;
    if (r == 0) {
        tk_app_hooks(app, &hooks);
        tk_server_cfg scfg = {
            .host = cfg->host,
            .port = cfg->port,
            .workers = cfg->workers,
            .max_conns = cfg->max_conns,
            .idle_timeout_ms = cfg->idle_timeout_ms,
            .header_timeout_ms = cfg->header_timeout_ms,
            .body_timeout_ms = cfg->body_timeout_ms,
            .max_body = cfg->max_body,
            .pin_cpus = cfg->pin_cpus,
            .tls = cfg->tls,
            .tls_cert = cfg->tls_cert,
            .tls_key = cfg->tls_key,
            .tls_ca = cfg->tls_ca,
            .bound = issuer_bound,
            .bound_arg = cfg,
        };
        if (cfg->metrics_host[0] != '\0') { /* listener TK_APP_LISTENER_METRICS */
            scfg.extra[0] = (tk_server_listener){.host = cfg->metrics_host,
                                                 .port = tk_config_metrics_port(cfg),
                                                 .label = TK_APP_LISTENER_METRICS};
            scfg.nextra = 1;
        }
        for (unsigned i = 0; i < cfg->nmore; i++) { /* further API addresses */
            scfg.extra[scfg.nextra++] = (tk_server_listener){.host = cfg->more[i].host,
                                                             .port = cfg->more[i].port,
                                                             .tls = cfg->more[i].tls,
                                                             .label = TK_APP_LISTENER_MAIN};
        }
        /* The issuer is derived from the bound port (port 0: ephemeral) by
         * issuer_bound, before any worker can read it. */
        r = tk_server_start(&scfg, &hooks, &srv);
    }
    if (r == 0) {
        __atomic_store_n(&running_server, srv, __ATOMIC_RELEASE);
        tk_log_info("listening", "addr=%s port=%u workers=%u data=\"%s\" issuer=\"%s\"", cfg->host,
                    (unsigned)tk_server_port(srv), cfg->workers, cfg->data_dir, cfg->issuer);
        if (cfg->metrics_host[0] != '\0') {
            tk_log_info("metrics_listening", "addr=%s port=%u bearer=%s", cfg->metrics_host,
                        (unsigned)tk_server_listener_port(srv, TK_APP_LISTENER_METRICS),
                        cfg->metrics_token[0] != '\0' ? "required" : "none");
        }
        for (unsigned i = 0; i < cfg->nmore; i++) {
            unsigned li = (cfg->metrics_host[0] != '\0' ? 2 : 1) + i;
            tk_log_info("listening", "addr=%s port=%u tls=%s", cfg->more[i].host,
                        (unsigned)tk_server_listener_port(srv, li),
                        cfg->more[i].tls ? "on" : "off");
        }
        if (cfg->login == TK_LOGIN_DEV) {
            tk_log_warn("dev_login_enabled",
                        "addr=%s note=\"anyone who reaches this loopback address can sign in as "
                        "any user: development only\"",
                        cfg->host);
        }
        r = r == 0 ? start_ssf(cfg, store, committer, outbound, keys, app, &ssf) : r;
        r = r == 0 ? write_port_files(o, srv) : r;
    }
    int exit_code = r == 0 ? 0 : 1;
    struct prefault pf = {.store = store};
    if (r == 0) {
        pf.started = pthread_create(&pf.thread, NULL, prefault_main, &pf) == 0;
        int sig = wait_for_stop(&set, cfg, jwks, keys, app);
        tk_log_info("stopping", "signal=%d", sig);
        tk_server_stop(srv);
    }
    if (pf.started) {
        __atomic_store_n(&pf.stop, 1, __ATOMIC_RELAXED);
        pthread_join(pf.thread, NULL);
    }
    if (srv) {
        tk_server_join(srv);
        __atomic_store_n(&running_server, NULL, __ATOMIC_RELEASE);
    }
    tk_ssf_stop(ssf);             /* no new push, no new ack */
    tk_cluster_stop(cluster);     /* no more entries; NULL in single-node mode */
    tk_committer_stop(committer); /* applies and commits anything still queued */
    tk_idp_jwks_stop(jwks);       /* no new fetch */
    tk_outbound_stop(outbound);   /* cancels what is in flight */
    tk_ssf_free(ssf);             /* after its cancelled pushes called back */
    tk_idp_jwks_free(jwks);
    if (app) {
        tk_app_destroy(app);
    }
    tk_idp_holder_free(idp); /* after the workers dropped their snapshots */
    tk_keys_holder_free(keys);
    tk_store_close(store);
    tk_log_info("stopped", "exit=%d", exit_code);
    return exit_code;
}

int main(int argc, char **argv)
{
    struct options o;
    memset(&o, 0, sizeof(o));
    int r = parse_args(argc, argv, &o);
    if (r != 0) {
        return r;
    }
    tk_log_set_level((enum tk_log_level)o.cfg.log_level);
    if (tk_outbound_global_init() != 0) { /* before any thread starts */
        tk_log_error("outbound_init_failed", "note=\"libcurl lacks TLS or async DNS\"");
        return 1;
    }
    r = run(&o);
    tk_outbound_global_cleanup();
    return r;
}
