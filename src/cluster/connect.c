/*
 * The cluster's connection to NATS, set up from the configuration: names and
 * timings, keys and credentials, TLS files, the libnats options, and the
 * probe that explains in the log why a node is not connected.
 */
#include "cluster_int.h"

#include "tokend/crypto.h"
#include "tokend/log.h"

#include <stdio.h>
#include <string.h>

static bool name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    bool ok = n > 0 && n <= TK_CLUSTER_NAME_MAX;
    for (size_t i = 0; i < n && ok; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    }
    return ok;
}

static void on_connected(natsConnection *nc, void *closure)
{
    char url[256] = "";
    (void)closure;
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    tk_log_info("cluster_connected", "url=%s", url);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    (void)closure;
    tk_log_warn("cluster_disconnected", "note=\"writes answer 503 until reconnected\"");
}

/* TLS to the servers: the CA their certificates must chain to (libnats
 * checks each against the host of the URL it dialled), and our own
 * certificate when the servers ask for one. The files were checked at start. */
static natsStatus set_tls(tk_cluster *cl, natsOptions *o)
{
    natsStatus s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK) {
        s = natsOptions_LoadCATrustedCertificates(o, cl->nats_ca);
    }
    if (s == NATS_OK && cl->nats_cert[0] != '\0') {
        s = natsOptions_LoadCertificatesChain(o, cl->nats_cert, cl->nats_key);
    }
    return s;
}

/* The connection's options; `retry`: reconnect forever, first connect in the
 * background (the real connection), or one try (a probe). */
natsStatus cl_make_opts(tk_cluster *cl, bool retry, natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) {
        s = natsOptions_SetServers(o, cl->servers, cl->nservers);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetName(o, cl->prefix);
    }
    if (s == NATS_OK && cl->tls) {
        s = set_tls(cl, o);
    }
    if (s == NATS_OK && cl->nats_user[0] != '\0') {
        s = natsOptions_SetUserInfo(o, cl->nats_user, cl->nats_password);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(o, 1000);
    }
    if (s == NATS_OK && !retry) {
        s = natsOptions_SetAllowReconnect(o, false);
    }
    if (s == NATS_OK && retry) {
        s = natsOptions_SetMaxReconnect(o, -1); /* forever: the node stays stale */
    }
    if (s == NATS_OK && retry) {
        s = natsOptions_SetReconnectWait(o, 100);
    }
    if (s == NATS_OK && retry) {
        s = natsOptions_SetPingInterval(o, 1000); /* a silent server is noticed */
    }
    if (s == NATS_OK && retry) {
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, cl);
    }
    if (s == NATS_OK && retry) {
        s = natsOptions_SetReconnectedCB(o, on_connected, cl);
    }
    if (s == NATS_OK && retry) {
        s = natsOptions_SetMaxPingsOut(o, 2);
    }
    if (s == NATS_OK && retry) {
        /* With a callback the first connect retries in the background (without
         * one libnats retries in this call): tokend serves, stale, meanwhile. */
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, cl);
    }
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        o = NULL;
    }
    *out = o;
    return s;
}

/* The library's reconnect loop keeps no reason: while the connection is
 * down, one plain connect a while says why (refused, a certificate that does
 * not verify, a server that wants TLS, credentials) in the log. */
void cl_probe(tk_cluster *cl, uint64_t now)
{
    if (cl->down_since == 0) {
        cl->down_since = now;
        cl->probe_at = now + 1000000000ull; /* a restart's usual gap goes unexplained */
    }
    if (now < cl->probe_at) {
        return;
    }
    cl->probe_at = now + 30ull * 1000000000ull;
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsStatus s = cl_make_opts(cl, false, &o);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&nc, o);
    }
    const char *why = s != NATS_OK ? nats_GetLastError(NULL) : NULL;
    if (s != NATS_OK) {
        bool ssl = s == NATS_SSL_ERROR || (why != NULL && strstr(why, "SSL") != NULL);
        const char *note = !cl->tls && ssl ? "the server requires TLS: use tls:// URLs and "
                                             "cluster-nats-ca"
                           : cl->tls && !ssl && s != NATS_NO_SERVER && cl->nats_cert[0] == '\0'
                               ? "a server that verifies clients needs cluster-nats-cert and "
                                 "cluster-nats-key"
                               : "not connected: retrying; writes 503, reads 503 once stale";
        tk_log_warn("cluster_connect_error", "status=\"%s\" error=\"%s\" note=\"%s\"",
                    natsStatus_GetText(s), why != NULL && why[0] != '\0' ? why : "-", note);
    }
    if (nc != NULL) {
        natsConnection_Destroy(nc);
    }
    natsOptions_Destroy(o);
}

int cl_init_names(tk_cluster *cl, const tk_cluster_cfg *cfg)
{
    if (cfg->urls == NULL || strlen(cfg->urls) == 0 || strlen(cfg->urls) >= sizeof cl->urls ||
        !name_ok(cfg->stream) || !name_ok(cfg->node) || cfg->pending == 0 ||
        cfg->max_staleness_ms < TK_CLUSTER_STALENESS_MIN || cfg->replicas == 0) {
        return TK_E_INVALID;
    }
    strcpy(cl->urls, cfg->urls);
    strcpy(cl->stream, cfg->stream);
    snprintf(cl->subject, sizeof cl->subject, "%s.ops", cfg->stream);
    uint8_t boot[8];
    if (tk_random_bytes(boot, sizeof boot) != 0) {
        return TK_E_UNAVAILABLE;
    }
    char hex[17];
    tk_hex(boot, sizeof boot, hex);
    hex[16] = '\0';
    int n = snprintf(cl->prefix, sizeof cl->prefix, "%s-%s-", cfg->node, hex);
    TK_ASSERT(n > 0 && (size_t)n < sizeof cl->prefix);
    cl->prefix_len = (size_t)n;
    cl->staleness_ns = (uint64_t)cfg->max_staleness_ms * 1000000u;
    unsigned pt =
        cfg->publish_timeout_ms != 0 ? cfg->publish_timeout_ms : TK_CLUSTER_PUBLISH_TIMEOUT_MS;
    cl->publish_timeout_ns = (uint64_t)pt * 1000000u;
    /* A few polls per staleness window, never busier than 20 ms. */
    uint64_t tick = cl->staleness_ns / 5;
    cl->tick_ns = tick < 20000000u ? 20000000u : tick > 500000000u ? 500000000u : tick;
    cl->replicas = cfg->replicas;
    cl->replay_window_ms =
        cfg->replay_window_ms != 0 ? cfg->replay_window_ms : TK_CLUSTER_REPLAY_WINDOW_DEFAULT;
    cl->cap = cfg->pending;
    if (cfg->keys == NULL || cfg->keys->n == 0 || cfg->keys->n > TK_CLUSTER_KEYS_MAX) {
        return TK_E_INVALID;
    }
    cl->keys = *cfg->keys;
    cl->tls = !strncmp(cfg->urls, "tls://", 6);
    if (cl->tls != (cfg->nats_ca != NULL && cfg->nats_ca[0] != '\0')) {
        return TK_E_INVALID; /* tls:// and a CA go together */
    }
    bool cert = cfg->nats_cert != NULL && cfg->nats_cert[0] != '\0';
    if (cl->tls && (cert != (cfg->nats_key != NULL && cfg->nats_key[0] != '\0') ||
                    strlen(cfg->nats_ca) >= sizeof cl->nats_ca ||
                    (cert && (strlen(cfg->nats_cert) >= sizeof cl->nats_cert ||
                              strlen(cfg->nats_key) >= sizeof cl->nats_key)))) {
        return TK_E_INVALID;
    }
    if (cl->tls) {
        strcpy(cl->nats_ca, cfg->nats_ca);
        if (cert) {
            strcpy(cl->nats_cert, cfg->nats_cert);
            strcpy(cl->nats_key, cfg->nats_key);
        }
    }
    if (cfg->nats_user != NULL && cfg->nats_user[0] != '\0') {
        if (strlen(cfg->nats_user) >= sizeof cl->nats_user || cfg->nats_password == NULL ||
            strlen(cfg->nats_password) >= sizeof cl->nats_password) {
            return TK_E_INVALID;
        }
        strcpy(cl->nats_user, cfg->nats_user);
        strcpy(cl->nats_password, cfg->nats_password);
    }
    return 0;
}

/* The TLS files exist and are files; the private key is private. */
int cl_check_tls_files(const tk_cluster *cl)
{
    char err[PATH_MAX + 128];
    int rc = tk_cluster_file_check("cluster-nats-ca", cl->nats_ca, false, err, sizeof err);
    if (rc == 0 && cl->nats_cert[0] != '\0') {
        rc = tk_cluster_file_check("cluster-nats-cert", cl->nats_cert, false, err, sizeof err);
    }
    if (rc == 0 && cl->nats_key[0] != '\0') {
        rc = tk_cluster_file_check("cluster-nats-key", cl->nats_key, true, err, sizeof err);
    }
    if (rc != 0) {
        tk_log_error("cluster_tls_refused", "error=\"%s\"", err);
        return TK_E_INVALID;
    }
    return 0;
}
