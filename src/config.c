/*
 * Configuration: defaults, then "key = value" lines from a file, then
 * command-line flags. File keys and flag names are the same words, so one
 * setter (tk_config_set) serves both and every value is range-checked in one
 * place.
 */
#include "tokend/config.h"
#include "tokend/endpoints.h"
#include "tokend/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_LINE_MAX  1024
#define CONFIG_LINES_MAX 10000

void tk_config_defaults(tk_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->host, "127.0.0.1");
    cfg->port = 7662;
    cfg->workers = 0;
    strcpy(cfg->data_dir, "./tokend-data");
    cfg->map_size = TK_MAP_SIZE_DEFAULT;
    cfg->access_ttl = 3600;
    cfg->signing_key_overlap = 3600;
    cfg->refresh_ttl = 30 * 86400;
    cfg->session_ttl = 12 * 3600;
    cfg->max_depth = TK_DEPTH_DEFAULT;
    cfg->max_conns = TK_CONNS_DEFAULT;
    cfg->idle_timeout_ms = TK_IDLE_TIMEOUT_MS;
    cfg->header_timeout_ms = TK_HEADER_TIMEOUT_MS;
    cfg->body_timeout_ms = TK_BODY_TIMEOUT_MS;
    cfg->max_body = 16384;
    cfg->commit_queue = TK_COMMIT_QUEUE_DEFAULT;
    cfg->auth_fail_burst = TK_RL_BURST;
    cfg->map_size_max = TK_MAP_SIZE_MAX;
    cfg->log_level = TK_LOG_INFO;
    cfg->pin_cpus = false;
    strcpy(cfg->metrics_host, "127.0.0.1"); /* loopback only unless configured */
    cfg->metrics_port = -1;
    cfg->listen_fresh = true;
    cfg->registration = TK_REGISTRATION_APPROVAL;
    cfg->login = TK_LOGIN_OFF;
    cfg->code_ttl = TK_CODE_TTL_DEFAULT;
    cfg->authorize_ttl = TK_AUTHORIZE_TTL_DEFAULT;
    cfg->refresh_reuse_window = TK_REFRESH_REUSE_DEFAULT;
    cfg->register_burst = TK_REGISTER_BURST_DEFAULT;
    cfg->authorize_burst = TK_AUTHORIZE_BURST_DEFAULT;
    cfg->authorize_pending_max = TK_AUTHORIZE_PENDING_DEFAULT;
    cfg->dpop_rate = TK_DPOP_RATE_DEFAULT;
    cfg->outbound_connect_timeout_ms = TK_OUTBOUND_CONNECT_MS_DEFAULT;
    cfg->outbound_timeout_ms = TK_OUTBOUND_TIMEOUT_MS_DEFAULT;
    cfg->outbound_max_bytes = TK_OUTBOUND_BODY_DEFAULT;
    cfg->outbound_queue = TK_OUTBOUND_QUEUE_DEFAULT;
    cfg->outbound_transfers = TK_OUTBOUND_TRANSFERS_DEFAULT;
    cfg->jwks_refresh_min = TK_JWKS_REFRESH_MIN_DEFAULT;
    cfg->cimd_cache_min = TK_CIMD_CACHE_MIN_DEFAULT;
    cfg->cimd_cache_max = TK_CIMD_CACHE_MAX_DEFAULT;
    cfg->jwks_refresh_max = TK_JWKS_REFRESH_MAX_DEFAULT;
    cfg->jwks_kid_interval = TK_JWKS_KID_INTERVAL_DEFAULT;
    cfg->ssf_retry_min_ms = TK_SSF_RETRY_MIN_DEFAULT;
    cfg->ssf_retry_max_ms = TK_SSF_RETRY_MAX_DEFAULT;
    cfg->ssf_poll_ms = TK_SSF_POLL_MS_DEFAULT;
    cfg->ssf_push = true;
    cfg->prefetch = TK_PREFETCH_AUTO;
    strcpy(cfg->cluster_stream, "TOKEND");
    cfg->cluster_max_staleness = TK_CLUSTER_STALENESS_DEFAULT;
    cfg->cluster_replicas = 1;
    cfg->cluster_replay_window = TK_CLUSTER_REPLAY_WINDOW_DEFAULT;
}

static int fail(char *err, size_t errcap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return code;
}

/* A whole decimal number in [lo, hi]; no sign, no trailing bytes. */
static int parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (*v < '0' || *v > '9') {
        return TK_E_BADINPUT;
    }
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi) {
        return TK_E_BADINPUT;
    }
    *out = n;
    return 0;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off")) {
        *out = false;
        return true;
    }
    return false;
}

/* "HOST:PORT" or "[IPv6]:PORT" with a numeric address, into host (cap
 * bytes) and port. */
static int parse_addr(const char *v, char *host_out, size_t cap, uint16_t *port_out)
{
    const char *colon = strrchr(v, ':');
    if (!colon) {
        return TK_E_BADINPUT;
    }
    size_t hl = (size_t)(colon - v);
    const char *h = v;
    if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char host[64];
    if (hl == 0 || hl >= sizeof(host) || hl >= cap) {
        return TK_E_BADINPUT;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned char probe[16];
    if (inet_pton(AF_INET, host, probe) != 1 && inet_pton(AF_INET6, host, probe) != 1) {
        return TK_E_BADINPUT;
    }
    uint64_t port;
    if (parse_u64(colon + 1, 0, 65535, &port) != 0) {
        return TK_E_BADINPUT;
    }
    memcpy(host_out, host, hl + 1);
    *port_out = (uint16_t)port;
    return 0;
}

/* "ADDR:PORT" or "ADDR:PORT tls": replaces the list after a new source
 * began (listen_fresh), else adds to it. */
static int parse_listen(tk_config *cfg, const char *v)
{
    char addr[96];
    const char *sp = strchr(v, ' ');
    size_t n = sp != NULL ? (size_t)(sp - v) : strlen(v);
    bool tls = false;
    if (sp != NULL) {
        while (*sp == ' ') {
            sp++;
        }
        if (strcmp(sp, "tls") != 0) {
            return TK_E_BADINPUT;
        }
        tls = true;
    }
    if (n >= sizeof(addr)) {
        return TK_E_BADINPUT;
    }
    memcpy(addr, v, n);
    addr[n] = '\0';
    tk_config_listen l;
    if (parse_addr(addr, l.host, sizeof(l.host), &l.port) != 0) {
        return TK_E_BADINPUT;
    }
    l.tls = tls;
    if (cfg->listen_fresh) {
        cfg->listen_fresh = false;
        cfg->nmore = 0;
        memcpy(cfg->host, l.host, sizeof(cfg->host));
        cfg->port = l.port;
        cfg->tls = l.tls;
        return 0;
    }
    if (cfg->nmore >= TK_API_LISTEN_MAX - 1) {
        return TK_E_TOOBIG;
    }
    cfg->more[cfg->nmore++] = l;
    return 0;
}

/* "off", or an address as for listen. */
static int parse_metrics_listen(tk_config *cfg, const char *v)
{
    if (!strcmp(v, "off")) {
        cfg->metrics_host[0] = '\0';
        cfg->metrics_port = -1;
        return 0;
    }
    uint16_t port;
    char host[sizeof(cfg->metrics_host)];
    if (parse_addr(v, host, sizeof(host), &port) != 0) {
        return TK_E_BADINPUT;
    }
    memcpy(cfg->metrics_host, host, sizeof(host));
    cfg->metrics_port = port;
    return 0;
}

/* A bearer credential: visible ASCII without '#', which would start a
 * comment in the config file (RFC 6750's b64token is a subset). */
static int set_token(tk_config *cfg, const char *v, char *err, size_t errcap)
{
    size_t n = strlen(v);
    bool ok = n >= 16 && n <= TK_METRICS_TOKEN_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        ok = v[i] > 0x20 && v[i] < 0x7f && v[i] != '#';
    }
    if (!ok) {
        return fail(err, errcap, TK_E_BADINPUT,
                    "metrics-token: expected 16 to %d visible ASCII characters (no space, no #)",
                    TK_METRICS_TOKEN_MAX);
    }
    memcpy(cfg->metrics_token, v, n + 1);
    return 0;
}

uint16_t tk_config_metrics_port(const tk_config *cfg)
{
    if (cfg->metrics_port >= 0) {
        return (uint16_t)cfg->metrics_port;
    }
    return cfg->port == 0 ? 0 : (uint16_t)(cfg->port + 1);
}

/* Numeric keys: where the value goes and its allowed range. */
struct num_key {
    const char *key;
    size_t offset;
    unsigned width; /* 4 = unsigned, 8 = int64_t/uint64_t/size_t */
    uint64_t lo, hi;
};

#define NUM(k, field, lo, hi)                                                                      \
    {                                                                                              \
        k, offsetof(tk_config, field), (unsigned)sizeof(((tk_config *)0)->field), lo, hi           \
    }

static const struct num_key num_keys[] = {
    NUM("workers", workers, 0, TK_WORKERS_MAX),
    NUM("map-size", map_size, 1u << 20, TK_MAP_SIZE_MAX),
    NUM("access-ttl", access_ttl, 1, 366 * 86400),
    NUM("refresh-ttl", refresh_ttl, 1, 3660 * 86400),
    NUM("session-ttl", session_ttl, 1, 366 * 86400),
    NUM("max-depth", max_depth, 0, TK_DEPTH_MAX),
    NUM("max-conns", max_conns, 1, TK_CONNS_MAX),
    NUM("idle-timeout", idle_timeout_ms, 100, 3600 * 1000),
    NUM("header-timeout", header_timeout_ms, 100, 3600 * 1000),
    NUM("body-timeout", body_timeout_ms, 100, 3600 * 1000),
    NUM("max-body", max_body, 256, TK_HTTP_BODY_MAX),
    NUM("commit-queue", commit_queue, 1, TK_COMMIT_QUEUE_MAX),
    NUM("auth-fail-burst", auth_fail_burst, 0, TK_RL_BURST_MAX),
    NUM("map-size-max", map_size_max, 0, TK_MAP_SIZE_MAX),
    NUM("code-ttl", code_ttl, 1, TK_CODE_TTL_MAX),
    NUM("authorize-ttl", authorize_ttl, 30, TK_AUTHORIZE_TTL_MAX),
    NUM("refresh-reuse-window", refresh_reuse_window, 0, TK_REFRESH_REUSE_MAX),
    NUM("register-burst", register_burst, 0, TK_RL_BURST_MAX),
    NUM("authorize-burst", authorize_burst, 0, TK_RL_BURST_MAX),
    NUM("authorize-pending-max", authorize_pending_max, 1, TK_AUTHORIZE_PENDING_MAX),
    NUM("dpop-nonce", dpop_nonce, 0, 1),
    NUM("dpop-rate", dpop_rate, TK_DPOP_RATE_MIN, TK_DPOP_RATE_MAX),
    NUM("outbound-connect-timeout", outbound_connect_timeout_ms, 100, TK_OUTBOUND_TIMEOUT_MS_MAX),
    NUM("outbound-timeout", outbound_timeout_ms, 100, TK_OUTBOUND_TIMEOUT_MS_MAX),
    NUM("outbound-max-bytes", outbound_max_bytes, 1024, TK_OUTBOUND_BODY_MAX),
    NUM("outbound-queue", outbound_queue, 1, TK_OUTBOUND_QUEUE_MAX),
    NUM("outbound-transfers", outbound_transfers, 1, TK_OUTBOUND_TRANSFERS_MAX),
    NUM("jwks-refresh-min", jwks_refresh_min, 1, TK_JWKS_REFRESH_CEILING),
    NUM("jwks-refresh-max", jwks_refresh_max, 1, TK_JWKS_REFRESH_CEILING),
    NUM("jwks-kid-interval", jwks_kid_interval, 1, TK_JWKS_KID_INTERVAL_MAX),
    NUM("cimd-cache-min", cimd_cache_min, 1, TK_CIMD_CACHE_CEILING),
    NUM("cimd-cache-max", cimd_cache_max, 1, TK_CIMD_CACHE_CEILING),
    NUM("signing-key-overlap", signing_key_overlap, 0, TK_SIGNING_OVERLAP_MAX),
    NUM("ssf-retry-min", ssf_retry_min_ms, 10, TK_SSF_RETRY_CEILING),
    NUM("ssf-retry-max", ssf_retry_max_ms, 10, TK_SSF_RETRY_CEILING),
    NUM("ssf-poll", ssf_poll_ms, 10, TK_SSF_POLL_MS_MAX),
    NUM("cluster-max-staleness", cluster_max_staleness, TK_CLUSTER_STALENESS_MIN,
        TK_CLUSTER_STALENESS_MAX),
    NUM("cluster-replicas", cluster_replicas, 1, 5),
    NUM("cluster-replay-window", cluster_replay_window, TK_CLUSTER_REPLAY_WINDOW_MIN,
        TK_CLUSTER_REPLAY_WINDOW_MAX),
};

static int set_num(tk_config *cfg, const struct num_key *k, const char *value, char *err,
                   size_t errcap)
{
    uint64_t n;
    if (parse_u64(value, k->lo, k->hi, &n) != 0) {
        return fail(err, errcap, TK_E_BADINPUT,
                    "%s: expected a whole number in [%llu, %llu], got \"%s\"", k->key,
                    (unsigned long long)k->lo, (unsigned long long)k->hi, value);
    }
    char *field = (char *)cfg + k->offset;
    if (k->width == 4) {
        uint32_t v = (uint32_t)n;
        memcpy(field, &v, 4);
    } else {
        TK_ASSERT(k->width == 8);
        memcpy(field, &n, 8);
    }
    return 0;
}

static int set_string(char *dst, size_t cap, const char *key, const char *value, char *err,
                      size_t errcap)
{
    size_t n = strlen(value);
    if (n == 0 || n >= cap) {
        return fail(err, errcap, TK_E_BADINPUT, "%s: must be 1 to %zu bytes", key, cap - 1);
    }
    memcpy(dst, value, n + 1);
    return 0;
}

/* A header field name (RFC 9110 token), at most TK_CERT_HEADER_NAME_MAX. */
static int set_cert_header(tk_config *cfg, const char *value, char *err, size_t errcap)
{
    size_t n = strlen(value);
    bool ok = n > 0 && n <= TK_CERT_HEADER_NAME_MAX;
    for (size_t i = 0; i < n && ok; i++) {
        unsigned char c = (unsigned char)value[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             strchr("!#$%&'*+-.^_`|~", c) != NULL;
    }
    if (!ok) {
        return fail(err, errcap, TK_E_BADINPUT,
                    "client-cert-header: expected a header name of 1 to %d characters, got "
                    "\"%s\"",
                    TK_CERT_HEADER_NAME_MAX, value);
    }
    memcpy(cfg->cert_header, value, n + 1);
    return 0;
}

/* Numeric addresses, space-separated, each kept as 16 bytes (IPv4 mapped). */
static int set_cert_proxies(tk_config *cfg, const char *value, char *err, size_t errcap)
{
    char buf[TK_CERT_PROXIES_MAX * 48];
    size_t n = strlen(value);
    if (n == 0 || n >= sizeof buf) {
        return fail(err, errcap, TK_E_BADINPUT, "client-cert-proxies: 1 to %d addresses",
                    TK_CERT_PROXIES_MAX);
    }
    memcpy(buf, value, n + 1);
    uint8_t got[TK_CERT_PROXIES_MAX][16];
    unsigned count = 0;
    char *save = NULL;
    for (char *a = strtok_r(buf, " \t", &save); a != NULL; a = strtok_r(NULL, " \t", &save)) {
        uint8_t ip[16] = {0};
        if (count >= TK_CERT_PROXIES_MAX) {
            return fail(err, errcap, TK_E_BADINPUT, "client-cert-proxies: at most %d addresses",
                        TK_CERT_PROXIES_MAX);
        }
        if (inet_pton(AF_INET, a, ip + 12) == 1) {
            ip[10] = ip[11] = 0xff;
        } else if (inet_pton(AF_INET6, a, ip) != 1) {
            return fail(err, errcap, TK_E_BADINPUT,
                        "client-cert-proxies: \"%s\" is not a numeric IPv4 or IPv6 address", a);
        }
        memcpy(got[count++], ip, 16);
    }
    if (count == 0) {
        return fail(err, errcap, TK_E_BADINPUT, "client-cert-proxies: 1 to %d addresses",
                    TK_CERT_PROXIES_MAX);
    }
    memcpy(cfg->cert_proxies, got, sizeof got[0] * count); /* a failure changed nothing */
    cfg->ncert_proxies = count;
    return 0;
}

/* A stream or node name: 1 to TK_CLUSTER_NAME_MAX of [A-Za-z0-9_-] (a part of
 * every message id and of the stream's subject). */
static int set_cluster_name(char *dst, const char *key, const char *value, char *err, size_t errcap)
{
    size_t n = strlen(value);
    bool ok = n > 0 && n <= TK_CLUSTER_NAME_MAX;
    for (size_t i = 0; i < n && ok; i++) {
        char c = value[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    }
    if (!ok) {
        return fail(err, errcap, TK_E_BADINPUT,
                    "%s: expected 1 to %d letters, digits, '-' or '_', got \"%s\"", key,
                    TK_CLUSTER_NAME_MAX, value);
    }
    memcpy(dst, value, n + 1);
    return 0;
}

/* nats://HOST:PORT[,nats://HOST:PORT…], or the same with tls:// (TLS, every
 * URL alike): at most TK_CLUSTER_SERVERS_MAX, no spaces, each with a host and
 * a port. */
static int set_cluster_nats(tk_config *cfg, const char *value, char *err, size_t errcap)
{
    size_t n = strlen(value);
    bool ok = n > 0 && n < sizeof cfg->cluster_nats;
    const char *scheme = !strncmp(value, "tls://", 6) ? "tls://" : "nats://";
    size_t sl = strlen(scheme);
    unsigned count = 0;
    for (const char *u = value; ok && *u != '\0'; count++) {
        const char *end = strchr(u, ',');
        size_t len = end != NULL ? (size_t)(end - u) : strlen(u);
        const char *colon = NULL; /* the last ':' (an IPv6 host has its own) */
        for (size_t i = sl; i < len; i++) {
            colon = u[i] == ':' ? u + i : colon;
        }
        ok = count < TK_CLUSTER_SERVERS_MAX && len > sl && !strncmp(u, scheme, sl) &&
             colon != NULL && colon > u + sl && colon + 1 < u + len && memchr(u, ' ', len) == NULL;
        for (const char *d = colon != NULL ? colon + 1 : u; ok && d < u + len; d++) {
            ok = *d >= '0' && *d <= '9';
        }
        u = end != NULL ? end + 1 : u + len;
        ok = ok && !(end != NULL && *u == '\0');
    }
    if (!ok) {
        return fail(err, errcap, TK_E_BADINPUT,
                    "cluster-nats: expected 1 to %d nats://HOST:PORT (or, all of them, "
                    "tls://HOST:PORT) URLs, comma-separated, got \"%s\"",
                    TK_CLUSTER_SERVERS_MAX, value);
    }
    memcpy(cfg->cluster_nats, value, n + 1);
    return 0;
}

static int set_cluster(tk_config *cfg, const char *key, const char *value, char *err, size_t errcap)
{
    if (!strcmp(key, "cluster-nats")) {
        return set_cluster_nats(cfg, value, err, errcap);
    }
    cfg->cluster_keys_set = true;
    if (!strcmp(key, "cluster-key-file")) {
        return set_string(cfg->cluster_key_file, sizeof cfg->cluster_key_file, key, value, err,
                          errcap);
    }
    if (!strcmp(key, "cluster-nats-ca")) {
        return set_string(cfg->cluster_nats_ca, sizeof cfg->cluster_nats_ca, key, value, err,
                          errcap);
    }
    if (!strcmp(key, "cluster-nats-cert")) {
        return set_string(cfg->cluster_nats_cert, sizeof cfg->cluster_nats_cert, key, value, err,
                          errcap);
    }
    if (!strcmp(key, "cluster-nats-key")) {
        return set_string(cfg->cluster_nats_key, sizeof cfg->cluster_nats_key, key, value, err,
                          errcap);
    }
    if (!strcmp(key, "cluster-nats-password-file")) {
        return set_string(cfg->cluster_nats_password_file, sizeof cfg->cluster_nats_password_file,
                          key, value, err, errcap);
    }
    if (!strcmp(key, "cluster-nats-user")) {
        for (const char *c = value; *c != '\0'; c++) {
            if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
                return fail(err, errcap, TK_E_BADINPUT, "cluster-nats-user: printable, no spaces");
            }
        }
        return set_string(cfg->cluster_nats_user, sizeof cfg->cluster_nats_user, key, value, err,
                          errcap);
    }
    if (!strcmp(key, "cluster-stream")) {
        return set_cluster_name(cfg->cluster_stream, key, value, err, errcap);
    }
    return set_cluster_name(cfg->cluster_node, key, value, err, errcap);
}

int tk_config_set(tk_config *cfg, const char *key, const char *value, char *err, size_t errcap)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(num_keys); i++) {
        if (!strcmp(key, num_keys[i].key)) {
            cfg->cluster_keys_set = cfg->cluster_keys_set || !strncmp(key, "cluster-", 8);
            return set_num(cfg, &num_keys[i], value, err, errcap);
        }
    }
    if (!strcmp(key, "cluster-nats") || !strcmp(key, "cluster-stream") ||
        !strcmp(key, "cluster-node") || !strcmp(key, "cluster-key-file") ||
        !strcmp(key, "cluster-nats-user") || !strcmp(key, "cluster-nats-password-file") ||
        !strcmp(key, "cluster-nats-ca") || !strcmp(key, "cluster-nats-cert") ||
        !strcmp(key, "cluster-nats-key")) {
        return set_cluster(cfg, key, value, err, errcap);
    }
    if (!strcmp(key, "listen")) {
        int r = parse_listen(cfg, value);
        if (r == TK_E_TOOBIG) {
            return fail(err, errcap, TK_E_BADINPUT, "listen: at most %d addresses",
                        TK_API_LISTEN_MAX);
        }
        if (r != 0) {
            return fail(err, errcap, TK_E_BADINPUT,
                        "listen: expected NUMERIC-ADDRESS:PORT, optionally followed by \" tls\" "
                        "(e.g. 127.0.0.1:7662 or [::1]:7662 or 0.0.0.0:8443 tls), got \"%s\"",
                        value);
        }
        return 0;
    }
    if (!strcmp(key, "metrics-listen")) {
        if (parse_metrics_listen(cfg, value) != 0) {
            return fail(err, errcap, TK_E_BADINPUT,
                        "metrics-listen: expected off or NUMERIC-ADDRESS:PORT (e.g. "
                        "127.0.0.1:7663 or [::1]:7663), got \"%s\"",
                        value);
        }
        return 0;
    }
    if (!strcmp(key, "metrics-token")) {
        return set_token(cfg, value, err, errcap);
    }
    if (!strcmp(key, "tls-cert")) {
        return set_string(cfg->tls_cert, sizeof(cfg->tls_cert), key, value, err, errcap);
    }
    if (!strcmp(key, "tls-key")) {
        return set_string(cfg->tls_key, sizeof(cfg->tls_key), key, value, err, errcap);
    }
    if (!strcmp(key, "tls-ca")) {
        return set_string(cfg->tls_ca, sizeof(cfg->tls_ca), key, value, err, errcap);
    }
    if (!strcmp(key, "client-cert-header")) {
        return set_cert_header(cfg, value, err, errcap);
    }
    if (!strcmp(key, "client-cert-proxies")) {
        return set_cert_proxies(cfg, value, err, errcap);
    }
    if (!strcmp(key, "data")) {
        return set_string(cfg->data_dir, sizeof(cfg->data_dir), key, value, err, errcap);
    }
    if (!strcmp(key, "resources")) {
        return set_string(cfg->resources_file, sizeof(cfg->resources_file), key, value, err,
                          errcap);
    }
    if (!strcmp(key, "idp-config")) {
        return set_string(cfg->idp_config, sizeof(cfg->idp_config), key, value, err, errcap);
    }
    if (!strcmp(key, "outbound-ca-file")) {
        return set_string(cfg->outbound_ca_file, sizeof(cfg->outbound_ca_file), key, value, err,
                          errcap);
    }
    if (!strcmp(key, "cimd-private-hosts")) {
        return set_string(cfg->cimd_private_hosts, sizeof(cfg->cimd_private_hosts), key, value, err,
                          errcap);
    }
    if (!strcmp(key, "cimd-approve-hosts")) {
        return set_string(cfg->cimd_approve_hosts, sizeof(cfg->cimd_approve_hosts), key, value, err,
                          errcap);
    }
    if (!strcmp(key, "issuer")) {
        return set_string(cfg->issuer, sizeof(cfg->issuer), key, value, err, errcap);
    }
    if (!strcmp(key, "log-level")) {
        enum tk_log_level l;
        if (tk_log_level_parse(value, &l) != 0) {
            return fail(err, errcap, TK_E_BADINPUT,
                        "log-level: expected debug, info, warn or error, got \"%s\"", value);
        }
        cfg->log_level = (int)l;
        return 0;
    }
    if (!strcmp(key, "registration")) {
        static const char *const names[] = {NULL, "open", "approval", "closed"};
        for (int i = 1; i <= TK_REGISTRATION_CLOSED; i++) {
            if (!strcmp(value, names[i])) {
                cfg->registration = i;
                return 0;
            }
        }
        return fail(err, errcap, TK_E_BADINPUT,
                    "registration: expected open, approval or closed, got \"%s\"", value);
    }
    if (!strcmp(key, "login")) {
        if (!strcmp(value, "off") || !strcmp(value, "dev") || !strcmp(value, "oidc")) {
            cfg->login = value[0] == 'd'                      ? TK_LOGIN_DEV
                         : value[0] == 'o' && value[1] == 'i' ? TK_LOGIN_OIDC
                                                              : TK_LOGIN_OFF;
            return 0;
        }
        return fail(err, errcap, TK_E_BADINPUT, "login: expected off, dev or oidc, got \"%s\"",
                    value);
    }
    if (!strcmp(key, "ssf-push")) {
        if (!parse_bool(value, &cfg->ssf_push)) {
            return fail(err, errcap, TK_E_BADINPUT, "ssf-push: expected on or off, got \"%s\"",
                        value);
        }
        return 0;
    }
    if (!strcmp(key, "prefetch")) {
        static const char *const names[] = {"auto", "on", "off"};
        for (int i = TK_PREFETCH_AUTO; i <= TK_PREFETCH_OFF; i++) {
            if (!strcmp(value, names[i])) {
                cfg->prefetch = i;
                return 0;
            }
        }
        return fail(err, errcap, TK_E_BADINPUT, "prefetch: expected auto, on or off, got \"%s\"",
                    value);
    }
    if (!strcmp(key, "pin-cpus")) {
        if (!parse_bool(value, &cfg->pin_cpus)) {
            return fail(err, errcap, TK_E_BADINPUT, "pin-cpus: expected true or false");
        }
        return 0;
    }
    return fail(err, errcap, TK_E_BADINPUT, "unknown setting \"%s\"", key);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) {
        s[--n] = '\0';
    }
    return s;
}

int tk_config_load_file(tk_config *cfg, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        return fail(err, errcap, -e, "%s: %s", path, strerror(e));
    }
    char line[CONFIG_LINE_MAX];
    int r = 0;
    cfg->listen_fresh = true; /* the file's first listen replaces the default */
    for (unsigned no = 1; no <= CONFIG_LINES_MAX && r == 0; no++) {
        if (!fgets(line, sizeof(line), f)) {
            break;
        }
        if (strlen(line) == sizeof(line) - 1 && line[sizeof(line) - 2] != '\n') {
            r = fail(err, errcap, TK_E_BADINPUT, "%s:%u: line longer than %d bytes", path, no,
                     CONFIG_LINE_MAX - 2);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) {
            *hash = '\0';
        }
        char *s = trim(line);
        if (*s == '\0') {
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            r = fail(err, errcap, TK_E_BADINPUT, "%s:%u: expected \"key = value\"", path, no);
            break;
        }
        *eq = '\0';
        char msg[256];
        r = tk_config_set(cfg, trim(s), trim(eq + 1), msg, sizeof(msg));
        if (r != 0) {
            fail(err, errcap, r, "%s:%u: %s", path, no, msg);
        }
    }
    fclose(f);
    return r;
}

/* TLS listeners need a certificate and key, and a certificate needs a TLS
 * listener (a forgotten " tls" would otherwise serve secrets in clear). */
static int validate_tls(const tk_config *cfg, char *err, size_t errcap)
{
    bool tls = cfg->tls;
    for (unsigned i = 0; i < cfg->nmore; i++) {
        tls = tls || cfg->more[i].tls;
        if (cfg->more[i].port != 0 && cfg->metrics_host[0] != '\0' &&
            cfg->more[i].port == tk_config_metrics_port(cfg)) {
            return fail(err, errcap, TK_E_INVALID,
                        "listen: port %u is the metrics port (/metrics has its own)",
                        (unsigned)cfg->more[i].port);
        }
    }
    if (tls && (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0')) {
        return fail(err, errcap, TK_E_INVALID, "listen ... tls: needs tls-cert and tls-key");
    }
    if (!tls && (cfg->tls_cert[0] != '\0' || cfg->tls_key[0] != '\0')) {
        return fail(err, errcap, TK_E_INVALID,
                    "tls-cert/tls-key: set, but no listen address has \" tls\"");
    }
    if (!tls && cfg->tls_ca[0] != '\0') {
        return fail(err, errcap, TK_E_INVALID, "tls-ca: set, but no listen address has \" tls\"");
    }
    if ((cfg->cert_header[0] != '\0') != (cfg->ncert_proxies > 0)) {
        return fail(err, errcap, TK_E_INVALID,
                    "client-cert-header and client-cert-proxies: each needs the other");
    }
    return 0;
}

/* 127.0.0.0/8 or ::1, as listen and metrics-listen write them. */
static bool loopback(const char *host)
{
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1") || !strcmp(host, "[::1]");
}

/* tls:// URLs need the CA the NATS servers' certificates chain to; the CA
 * and a client certificate mean nothing on nats://; certificate and key go
 * together. */
static int validate_cluster_tls(const tk_config *cfg, char *err, size_t errcap)
{
    bool tls = !strncmp(cfg->cluster_nats, "tls://", 6);
    if (tls && cfg->cluster_nats_ca[0] == '\0') {
        return fail(err, errcap, TK_E_INVALID,
                    "cluster-nats: tls:// needs cluster-nats-ca (the CA file the NATS servers' "
                    "certificates chain to)");
    }
    if (!tls && (cfg->cluster_nats_ca[0] != '\0' || cfg->cluster_nats_cert[0] != '\0' ||
                 cfg->cluster_nats_key[0] != '\0')) {
        return fail(err, errcap, TK_E_INVALID,
                    "cluster-nats-ca, cluster-nats-cert, cluster-nats-key: need tls:// URLs in "
                    "cluster-nats");
    }
    if ((cfg->cluster_nats_cert[0] == '\0') != (cfg->cluster_nats_key[0] == '\0')) {
        return fail(err, errcap, TK_E_INVALID,
                    "cluster-nats-cert and cluster-nats-key: both or neither");
    }
    return 0;
}

int tk_config_validate(const tk_config *cfg, char *err, size_t errcap)
{
    if (cfg->issuer[0] != '\0') {
        const char *i = cfg->issuer;
        bool https = !strncmp(i, "https://", 8), http = !strncmp(i, "http://", 7);
        if ((!https && !http) || strpbrk(i, "?#") || strlen(i) <= (https ? 8u : 7u)) {
            return fail(err, errcap, TK_E_INVALID,
                        "issuer: must be an http(s) URL without query or fragment (RFC 8414 §2)");
        }
        if (i[strlen(i) - 1] == '/') {
            return fail(err, errcap, TK_E_INVALID,
                        "issuer: must not end with '/' (endpoint URLs are issuer + path)");
        }
    }
    if (cfg->refresh_ttl < cfg->access_ttl) {
        return fail(err, errcap, TK_E_INVALID, "refresh-ttl must be at least access-ttl");
    }
    if (cfg->metrics_host[0] != '\0' && cfg->metrics_port < 0 && cfg->port == 65535) {
        return fail(err, errcap, TK_E_INVALID,
                    "metrics-listen: no port after listen's 65535; set metrics-listen");
    }
    if (cfg->metrics_host[0] != '\0' && cfg->port != 0 &&
        tk_config_metrics_port(cfg) == cfg->port) {
        return fail(err, errcap, TK_E_INVALID,
                    "metrics-listen: must not use the listen port (/metrics has its own)");
    }
    if (cfg->outbound_connect_timeout_ms > cfg->outbound_timeout_ms) {
        return fail(err, errcap, TK_E_INVALID,
                    "outbound-connect-timeout must not exceed outbound-timeout");
    }
    if (cfg->cimd_cache_min > cfg->cimd_cache_max) {
        return fail(err, errcap, TK_E_INVALID, "cimd-cache-min must not exceed cimd-cache-max");
    }
    if (cfg->ssf_retry_min_ms > cfg->ssf_retry_max_ms) {
        return fail(err, errcap, TK_E_INVALID, "ssf-retry-min must not exceed ssf-retry-max");
    }
    if (cfg->jwks_refresh_min > cfg->jwks_refresh_max) {
        return fail(err, errcap, TK_E_INVALID, "jwks-refresh-min must not exceed jwks-refresh-max");
    }
    if (cfg->metrics_host[0] == '\0' && cfg->metrics_token[0] != '\0') {
        return fail(err, errcap, TK_E_INVALID, "metrics-token: set, but metrics-listen is off");
    }
    if (cfg->login == TK_LOGIN_OIDC && cfg->idp_config[0] == '\0') {
        return fail(err, errcap, TK_E_INVALID,
                    "login = oidc: the IdP trust file (idp-config) must name the sign-in IdPs");
    }
    if (cfg->login == TK_LOGIN_DEV) {
        bool local =
            loopback(cfg->host) && (cfg->metrics_host[0] == '\0' || loopback(cfg->metrics_host));
        for (unsigned i = 0; i < cfg->nmore; i++) {
            local = local && loopback(cfg->more[i].host);
        }
        if (!local) {
            return fail(
                err, errcap, TK_E_INVALID,
                "login = dev: anyone reaching tokend could sign in as anyone; refused unless "
                "every listen address is loopback (127.0.0.0/8 or ::1)");
        }
    }
    if (cfg->cluster_nats[0] == '\0' && cfg->cluster_keys_set) {
        return fail(err, errcap, TK_E_INVALID,
                    "cluster-*: set, but cluster-nats (the NATS servers) is not");
    }
    if (cfg->cluster_nats[0] != '\0' && cfg->cluster_node[0] == '\0') {
        return fail(err, errcap, TK_E_INVALID,
                    "cluster-nats: needs cluster-node (this node's id, unique in the cluster)");
    }
    if (cfg->cluster_nats[0] != '\0' && cfg->cluster_key_file[0] == '\0') {
        return fail(err, errcap, TK_E_INVALID,
                    "cluster-nats: needs cluster-key-file (the op log's HMAC key, the same on "
                    "every node)");
    }
    if ((cfg->cluster_nats_user[0] == '\0') != (cfg->cluster_nats_password_file[0] == '\0')) {
        return fail(err, errcap, TK_E_INVALID,
                    "cluster-nats-user and cluster-nats-password-file: both or neither");
    }
    return validate_cluster_tls(cfg, err, errcap) != 0 ? TK_E_INVALID
                                                       : validate_tls(cfg, err, errcap);
}
