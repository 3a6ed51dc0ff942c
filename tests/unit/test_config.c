/*
 * Configuration: defaults, the shared setter's range checks, file parsing
 * with line-numbered errors, and validation of the issuer URL.
 */
#include "check.h"
#include "tokend/config.h"
#include "tokend/endpoints.h"

#include <stdlib.h>
#include <unistd.h>

static char err[512];

static void test_defaults(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_STR(c.host, "127.0.0.1");
    CHECK_EQ_INT(c.port, 7662);
    CHECK_EQ_INT(c.max_depth, TK_DEPTH_DEFAULT);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
}

static void test_listen(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "0.0.0.0:80", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.host, "0.0.0.0");
    CHECK_EQ_INT(c.port, 80);
    c.listen_fresh = true; /* a new source: its first listen replaces */
    CHECK_EQ_INT(tk_config_set(&c, "listen", "[::1]:0", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.host, "::1");
    CHECK_EQ_INT(c.port, 0);
    CHECK(tk_config_set(&c, "listen", "localhost:80", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", "127.0.0.1", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", "127.0.0.1:65536", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", "127.0.0.1:-1", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", ":80", err, sizeof(err)) != 0);
    CHECK_EQ_STR(c.host, "::1"); /* failures leave the value alone */
}

/* listen given several times, " tls", and what validate asks of TLS. */
static void test_listen_tls(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:7662", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "0.0.0.0:8443 tls", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "[::]:8444  tls", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.host, "127.0.0.1");
    CHECK(!c.tls);
    CHECK_EQ_INT(c.nmore, 2);
    CHECK_EQ_STR(c.more[0].host, "0.0.0.0");
    CHECK_EQ_INT(c.more[0].port, 8443);
    CHECK(c.more[0].tls);
    CHECK_EQ_STR(c.more[1].host, "::");
    CHECK(c.more[1].tls);
    CHECK(tk_config_set(&c, "listen", "127.0.0.1:1", err, sizeof(err)) != 0);
    CHECK(strstr(err, "at most") != NULL);
    CHECK_EQ_INT(c.nmore, 2);
    /* A TLS address needs a certificate and key; a certificate a TLS address. */
    CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "tls-cert") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "tls-cert", "/x/cert.pem", err, sizeof(err)), 0);
    CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "tls-key", "/x/key.pem", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
    c.listen_fresh = true; /* e.g. the command line: replaces the file's list */
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:9000 tls", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.nmore, 0);
    CHECK(c.tls);
    CHECK_EQ_INT(c.port, 9000);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:9001", err, sizeof(err)), 0);
    c.more[0].port = 9001;
    CHECK(tk_config_validate(&c, err, sizeof(err)) != 0); /* 9001: the metrics port */
    c.listen_fresh = true;
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:9000", err, sizeof(err)), 0);
    CHECK(tk_config_validate(&c, err, sizeof(err)) != 0); /* a cert but no TLS address */
    CHECK(strstr(err, "no listen address") != NULL);
    const char *bad[] = {"127.0.0.1:1 tsl", "127.0.0.1:1 tls x", "127.0.0.1:1 TLS", "127.0.0.1:1 ",
                         "tls 127.0.0.1:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(tk_config_set(&c, "listen", bad[i], err, sizeof(err)) == TK_E_BADINPUT);
    }
    CHECK_EQ_INT(c.nmore, 0); /* failures change nothing */
    CHECK(!c.tls);
}

/* RFC 8705 settings: tls-ca needs a TLS address; the certificate header and
 * its proxies need each other; addresses are numeric, kept as 16 bytes. */
static void test_client_certs(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "tls-ca", "/x/ca.pem", err, sizeof(err)), 0);
    CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "tls-ca") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:8443 tls", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "tls-cert", "/x/c.pem", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "tls-key", "/x/k.pem", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);

    CHECK_EQ_INT(tk_config_set(&c, "client-cert-header", "X-Client-Cert", err, sizeof(err)), 0);
    CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "client-cert-proxies") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "client-cert-proxies", "10.0.0.1  ::1", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.ncert_proxies, 2);
    static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    static const uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    CHECK(memcmp(c.cert_proxies[0], v4, 16) == 0);
    CHECK(memcmp(c.cert_proxies[1], v6, 16) == 0);
    const char *bad_proxies[] = {
        "", "localhost", "10.0.0.1 10.0.0.256",
        "10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 10.0.0.8 10.0.0.9",
        "::1 ::2 ::3 ::4 ::5 ::6 ::7 ::8 ::9"};
    for (size_t i = 0; i < sizeof(bad_proxies) / sizeof(bad_proxies[0]); i++) {
        CHECK(tk_config_set(&c, "client-cert-proxies", bad_proxies[i], err, sizeof(err)) ==
              TK_E_BADINPUT);
    }
    CHECK_EQ_INT(c.ncert_proxies, 2); /* failures change nothing */
    CHECK(memcmp(c.cert_proxies[0], v4, 16) == 0 && memcmp(c.cert_proxies[1], v6, 16) == 0);
    const char *bad_names[] = {
        "", "X Client", "X-Cert:", "X-\xc3\xa9",
        "X-0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        CHECK(tk_config_set(&c, "client-cert-header", bad_names[i], err, sizeof(err)) ==
              TK_E_BADINPUT);
    }
    CHECK_EQ_STR(c.cert_header, "X-Client-Cert");
}

static void test_numbers(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "workers", "3", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.workers, 3);
    CHECK_EQ_INT(tk_config_set(&c, "max-depth", "8", err, sizeof(err)), 0);
    CHECK(tk_config_set(&c, "max-depth", "9", err, sizeof(err)) != 0);
    CHECK(strstr(err, "max-depth") != NULL);
    CHECK(tk_config_set(&c, "workers", "", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "workers", "2x", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "workers", "+2", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "max-body", "99999999999999999999999", err, sizeof(err)) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "map-size", "1099511627776", err, sizeof(err)), 0);
    CHECK(c.map_size == 1099511627776ULL);
    CHECK_EQ_INT(tk_config_set(&c, "access-ttl", "60", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.access_ttl, 60);
    CHECK_EQ_INT(c.signing_key_overlap, 3600); /* the default */
    CHECK_EQ_INT(tk_config_set(&c, "signing-key-overlap", "0", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.signing_key_overlap, 0);
    CHECK_EQ_INT(tk_config_set(&c, "signing-key-overlap", "31622400", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.signing_key_overlap, 31622400);
    CHECK(tk_config_set(&c, "signing-key-overlap", "31622401", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "signing-key-overlap", "-1", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "no-such-key", "1", err, sizeof(err)) != 0);
    CHECK(strstr(err, "no-such-key") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "pin-cpus", "yes", err, sizeof(err)), 0);
    CHECK(c.pin_cpus);
    CHECK(tk_config_set(&c, "pin-cpus", "maybe", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "log-level", "loud", err, sizeof(err)) != 0);
    /* ssf-push: on by default; every spelling of on and off; nothing else. */
    CHECK(c.ssf_push);
    const char *off[] = {"off", "false", "no", "0"}, *on[] = {"on", "true", "yes", "1"};
    for (size_t i = 0; i < TK_ARRAY_LEN(off); i++) {
        CHECK_EQ_INT(tk_config_set(&c, "ssf-push", off[i], err, sizeof(err)), 0);
        CHECK(!c.ssf_push);
        CHECK_EQ_INT(tk_config_set(&c, "ssf-push", on[i], err, sizeof(err)), 0);
        CHECK(c.ssf_push);
    }
    const char *bad[] = {"", "On", "2", "offf", "of"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK(tk_config_set(&c, "ssf-push", bad[i], err, sizeof(err)) != 0);
        CHECK(strstr(err, "ssf-push") != NULL);
        CHECK(c.ssf_push);
    }
}

static void test_issuer(void)
{
    tk_config c;
    tk_config_defaults(&c);
    const char *good[] = {"https://auth.example.com", "http://127.0.0.1:7662",
                          "https://example.com/tenant1"};
    const char *bad[] = {"ftp://x",  "https://x?q=1",    "https://x#f",
                         "https://", "auth.example.com", "https://x/"};
    for (size_t i = 0; i < TK_ARRAY_LEN(good); i++) {
        CHECK_EQ_INT(tk_config_set(&c, "issuer", good[i], err, sizeof(err)), 0);
        CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
    }
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(tk_config_set(&c, "issuer", bad[i], err, sizeof(err)), 0);
        CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The outbound thread's and the key refresher's settings: defaults, ranges,
 * and the relations validate checks. */
static void test_outbound(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(c.outbound_timeout_ms, TK_OUTBOUND_TIMEOUT_MS_DEFAULT);
    CHECK_EQ_INT(c.outbound_connect_timeout_ms, TK_OUTBOUND_CONNECT_MS_DEFAULT);
    CHECK_EQ_INT(c.outbound_max_bytes, TK_OUTBOUND_BODY_DEFAULT);
    CHECK_EQ_INT(c.jwks_refresh_min, TK_JWKS_REFRESH_MIN_DEFAULT);
    CHECK_EQ_INT(c.jwks_refresh_max, TK_JWKS_REFRESH_MAX_DEFAULT);
    CHECK_EQ_INT(c.jwks_kid_interval, TK_JWKS_KID_INTERVAL_DEFAULT);
    CHECK_EQ_STR(c.outbound_ca_file, "");
    CHECK_EQ_INT(tk_config_set(&c, "outbound-ca-file", "/etc/tokend/idp-ca.pem", err, sizeof err),
                 0);
    CHECK_EQ_STR(c.outbound_ca_file, "/etc/tokend/idp-ca.pem");
    CHECK_EQ_INT(tk_config_set(&c, "outbound-queue", "1", err, sizeof err), 0);
    CHECK(tk_config_set(&c, "outbound-queue", "0", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "outbound-queue", "1025", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "outbound-transfers", "65", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "outbound-timeout", "120001", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "outbound-max-bytes", "4194305", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "jwks-kid-interval", "0", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "jwks-refresh-max", "604801", err, sizeof err) != 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "outbound-connect-timeout", "3000", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "outbound-timeout", "2000", err, sizeof err), 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "outbound-connect") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "outbound-timeout", "3000", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "jwks-refresh-min", "600", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "jwks-refresh-max", "300", err, sizeof err), 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "jwks-refresh-min") != NULL);
}

static void test_cimd(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(c.cimd_cache_min, TK_CIMD_CACHE_MIN_DEFAULT);
    CHECK_EQ_INT(c.cimd_cache_max, TK_CIMD_CACHE_MAX_DEFAULT);
    CHECK_EQ_STR(c.cimd_private_hosts, "");
    CHECK_EQ_STR(c.cimd_approve_hosts, "");
    CHECK_EQ_INT(tk_config_set(&c, "cimd-private-hosts", "10.0.0.7 mcp.internal", err, sizeof err),
                 0);
    CHECK_EQ_STR(c.cimd_private_hosts, "10.0.0.7 mcp.internal");
    CHECK_EQ_INT(tk_config_set(&c, "cimd-approve-hosts", "agents.example.com", err, sizeof err), 0);
    CHECK_EQ_STR(c.cimd_approve_hosts, "agents.example.com");
    CHECK(tk_config_set(&c, "cimd-approve-hosts", "", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "cimd-cache-min", "0", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "cimd-cache-max", "2592001", err, sizeof err) != 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "cimd-cache-min", "600", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "cimd-cache-max", "300", err, sizeof err), 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "cimd-cache-min") != NULL);
}

/* Cluster mode: cluster-nats (nats://HOST:PORT list) turns it on and needs
 * cluster-node; the names are strict; no other cluster key without it. */
static void test_cluster(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_STR(c.cluster_nats, "");
    CHECK_EQ_STR(c.cluster_stream, "TOKEND");
    CHECK_EQ_INT(c.cluster_max_staleness, TK_CLUSTER_STALENESS_DEFAULT);
    CHECK_EQ_INT(c.cluster_replicas, 1);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    static const char *const bad_urls[] = {
        "",
        "127.0.0.1:4222",
        "nats://",
        "nats://h",
        "nats://h:",
        "nats://:4222",
        "nats://h:42x2",
        "nats://h:4222,",
        "nats://h:4222,,nats://g:4222",
        "nats://h:4222, nats://g:4222",
        "tls://h:4222,nats://g:4222",
        "nats://h:4222,tls://g:4222",
        "tls://",
        "tls://h:",
        "https://h:4222",
        "nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,"
        "nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,nats://a:1,"
        "nats://a:1",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_urls); i++) {
        CHECK(tk_config_set(&c, "cluster-nats", bad_urls[i], err, sizeof err) == TK_E_BADINPUT);
        CHECK_EQ_STR(c.cluster_nats, "");
    }
    static const char *const bad_names[] = {
        "", "a.b", "a b", "nöde", "a*", ">", "123456789012345678901234567890123"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_names); i++) {
        CHECK(tk_config_set(&c, "cluster-node", bad_names[i], err, sizeof err) != 0);
        CHECK(tk_config_set(&c, "cluster-stream", bad_names[i], err, sizeof err) != 0);
    }
    CHECK(tk_config_set(&c, "cluster-max-staleness", "99", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "cluster-replicas", "0", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "cluster-replicas", "6", err, sizeof err) != 0);
    CHECK_EQ_INT(c.cluster_replay_window, TK_CLUSTER_REPLAY_WINDOW_DEFAULT);
    CHECK(tk_config_set(&c, "cluster-replay-window", "999", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "cluster-replay-window", "600001", err, sizeof err) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-replay-window", "2000", err, sizeof err), 0);
    CHECK_EQ_INT(c.cluster_replay_window, 2000);
    /* A cluster key without cluster-nats is a mistake, not single-node mode. */
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-max-staleness", "5000", err, sizeof err), 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "cluster-nats") != NULL);
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-nats", "nats://127.0.0.1:4222,nats://[::1]:4223", err,
                               sizeof err),
                 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "cluster-node") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-node", "node-a_1", err, sizeof err), 0);
    /* The op log's HMAC key is required: an unauthenticated log is refused. */
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "cluster-key-file") != NULL);
    CHECK(tk_config_set(&c, "cluster-key-file", "", err, sizeof err) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-key-file", "/etc/tokend/cluster.key", err, sizeof err),
                 0);
    /* NATS credentials: a printable user name, with a password file, or neither. */
    CHECK(tk_config_set(&c, "cluster-nats-user", "a b", err, sizeof err) != 0);
    CHECK(tk_config_set(&c, "cluster-nats-user", "a\x01", err, sizeof err) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-nats-user", "tokend", err, sizeof err), 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "both or neither") != NULL);
    CHECK_EQ_INT(
        tk_config_set(&c, "cluster-nats-password-file", "/etc/tokend/nats.pw", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    CHECK_EQ_STR(c.cluster_nats_user, "tokend");
    c.cluster_nats_user[0] = '\0';
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "both or neither") != NULL);
    c.cluster_nats_password_file[0] = '\0';
    CHECK_EQ_INT(tk_config_set(&c, "cluster-stream", "TOKEND_PROD", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-replicas", "3", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-max-staleness", "1500", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    CHECK_EQ_STR(c.cluster_nats, "nats://127.0.0.1:4222,nats://[::1]:4223");
    CHECK_EQ_STR(c.cluster_node, "node-a_1");
    CHECK_EQ_STR(c.cluster_stream, "TOKEND_PROD");
    CHECK_EQ_INT(c.cluster_replicas, 3);
    CHECK_EQ_INT(c.cluster_max_staleness, 1500);
    /* TLS: tls:// URLs need the servers' CA; the TLS files need tls://; a
     * client certificate goes with its key. */
    CHECK_EQ_INT(tk_config_set(&c, "cluster-nats-ca", "/etc/tokend/nats-ca.pem", err, sizeof err),
                 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "tls://") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-nats", "tls://n1.internal:4222,tls://[::1]:4223", err,
                               sizeof err),
                 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-nats-cert", "/etc/tokend/nats.pem", err, sizeof err),
                 0);
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "both or neither") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "cluster-nats-key", "/etc/tokend/nats.key", err, sizeof err), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof err), 0);
    c.cluster_nats_ca[0] = '\0';
    CHECK(tk_config_validate(&c, err, sizeof err) != 0 && strstr(err, "cluster-nats-ca") != NULL);
}

static void test_file(void)
{
    char path[] = "/tmp/tokend-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    tk_config c;
    tk_config_defaults(&c);
    write_file(path, "# comment\n\nlisten = 127.0.0.2:9000  # trailing\nworkers=2\r\n"
                     "issuer = https://auth.example.com\n");
    CHECK_EQ_INT(tk_config_load_file(&c, path, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.host, "127.0.0.2");
    CHECK_EQ_INT(c.port, 9000);
    CHECK_EQ_INT(c.workers, 2);
    CHECK_EQ_STR(c.issuer, "https://auth.example.com");

    write_file(path, "workers = 2\nbogus line\n");
    CHECK(tk_config_load_file(&c, path, err, sizeof(err)) != 0);
    CHECK(strstr(err, ":2:") != NULL);
    write_file(path, "workers = 2\nmax-conns = 0\n");
    CHECK(tk_config_load_file(&c, path, err, sizeof(err)) != 0);
    CHECK(strstr(err, ":2:") != NULL && strstr(err, "max-conns") != NULL);
    unlink(path);
    CHECK(tk_config_load_file(&c, path, err, sizeof(err)) < 0);
}

/* metrics-listen / metrics-token: parsing, "off", the default (loopback,
 * the port after the main one) and the relations validate refuses. */
static void test_metrics(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_STR(c.metrics_host, "127.0.0.1"); /* loopback only by default */
    CHECK_EQ_INT(tk_config_metrics_port(&c), 7663);
    CHECK_EQ_STR(c.metrics_token, "");
    CHECK_EQ_INT(tk_config_set(&c, "listen", "0.0.0.0:8000", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.metrics_host, "127.0.0.1"); /* a public API does not widen it */
    CHECK_EQ_INT(tk_config_metrics_port(&c), 8001);
    c.listen_fresh = true;
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:0", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_metrics_port(&c), 0); /* ephemeral follows ephemeral */
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);

    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "[::1]:9100", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.metrics_host, "::1");
    CHECK_EQ_INT(tk_config_metrics_port(&c), 9100);
    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "10.0.0.5:0", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.metrics_host, "10.0.0.5");
    CHECK_EQ_INT(tk_config_metrics_port(&c), 0);
    const char *bad[] = {
        "localhost:9100", "127.0.0.1", "127.0.0.1:65536", ":9100", "127.0.0.1:-1", "OFF", "", "no",
        "[::1]9100",      "1.2.3.4:9x"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK(tk_config_set(&c, "metrics-listen", bad[i], err, sizeof(err)) == TK_E_BADINPUT);
        CHECK(strstr(err, "metrics-listen") != NULL);
        CHECK_EQ_STR(c.metrics_host, "10.0.0.5"); /* failures leave the value alone */
    }
    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "off", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.metrics_host, "");
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);

    /* metrics-token: 16..TK_METRICS_TOKEN_MAX visible characters, no '#'. */
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "metrics-token", "0123456789abcdef", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.metrics_token, "0123456789abcdef");
    char longest[TK_METRICS_TOKEN_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[TK_METRICS_TOKEN_MAX] = '\0';
    CHECK_EQ_INT(tk_config_set(&c, "metrics-token", longest, err, sizeof(err)), 0);
    longest[TK_METRICS_TOKEN_MAX] = 'a';
    longest[TK_METRICS_TOKEN_MAX + 1] = '\0';
    const char *bad_tokens[] = {"",
                                "0123456789abcde",
                                "0123456789 abcdef",
                                "0123456789abcdef\t",
                                "0123456789#abcdef",
                                "0123456789abcdef\x7f",
                                "0123456789\xc3\xa9"
                                "bcdef",
                                longest};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_tokens); i++) {
        CHECK(tk_config_set(&c, "metrics-token", bad_tokens[i], err, sizeof(err)) == TK_E_BADINPUT);
        CHECK(strstr(err, "metrics-token") != NULL);
        CHECK(strlen(c.metrics_token) == TK_METRICS_TOKEN_MAX); /* unchanged */
    }
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);

    /* Relations: a token needs a listener; the default needs a port after
     * listen's; the metrics listener never shares the API port. */
    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "off", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), TK_E_INVALID);
    CHECK(strstr(err, "metrics-token") != NULL);
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:65535", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), TK_E_INVALID);
    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "127.0.0.1:9100", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "0.0.0.0:65535", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), TK_E_INVALID);
    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "off", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);

    /* From a file, like every key. */
    char path[] = "/tmp/tokend-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    tk_config_defaults(&c);
    write_file(path, "metrics-listen = [::1]:9200\nmetrics-token = s3cret-s3cret-s3cret # why\n");
    CHECK_EQ_INT(tk_config_load_file(&c, path, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.metrics_host, "::1");
    CHECK_EQ_INT(tk_config_metrics_port(&c), 9200);
    CHECK_EQ_STR(c.metrics_token, "s3cret-s3cret-s3cret");
    write_file(path, "metrics-listen = off\n");
    CHECK_EQ_INT(tk_config_load_file(&c, path, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.metrics_host, "");
    unlink(path);
}

/* The authorization server's keys: defaults, ranges, names, and dev login
 * refused unless every listen address is loopback. */
static void test_authorization_server(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(c.registration, TK_REGISTRATION_APPROVAL);
    CHECK_EQ_INT(c.login, TK_LOGIN_OFF);
    CHECK_EQ_INT(c.code_ttl, 60);
    CHECK_EQ_INT(c.authorize_ttl, 600);
    CHECK_EQ_INT(c.refresh_reuse_window, 5);
    CHECK_EQ_INT(c.register_burst, 20);
    CHECK_EQ_INT(c.authorize_burst, 60);
    CHECK_EQ_INT(c.authorize_pending_max, 20000);
    CHECK_EQ_INT(tk_config_set(&c, "authorize-burst", "0", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.authorize_burst, 0);
    CHECK_EQ_INT(tk_config_set(&c, "authorize-pending-max", "10", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.authorize_pending_max, 10);
    CHECK(tk_config_set(&c, "authorize-pending-max", "0", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "authorize-pending-max", "1000001", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "authorize-ttl", "3601", err, sizeof(err)) != 0);
    CHECK_EQ_INT(c.dpop_rate, TK_DPOP_RATE_DEFAULT);
    CHECK_EQ_INT(tk_config_set(&c, "dpop-rate", "50000", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.dpop_rate, 50000);
    CHECK(tk_config_set(&c, "dpop-rate", "99", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "dpop-rate", "1000001", err, sizeof(err)) != 0);
    CHECK_EQ_INT(c.dpop_rate, 50000);
    static const char *const names[] = {"open", "approval", "closed"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(tk_config_set(&c, "registration", names[i], err, sizeof(err)), 0);
        CHECK_EQ_INT(c.registration, i + 1);
    }
    CHECK(tk_config_set(&c, "registration", "OPEN", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "login", "OIDC", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "login", "oid", err, sizeof(err)) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "login", "oidc", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.login, TK_LOGIN_OIDC);
    CHECK(tk_config_set(&c, "code-ttl", "0", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "code-ttl", "601", err, sizeof(err)) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "code-ttl", "600", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "refresh-reuse-window", "0", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.refresh_reuse_window, 0);
    CHECK(tk_config_set(&c, "refresh-reuse-window", "301", err, sizeof(err)) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "login", "dev", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0); /* 127.0.0.1 by default */
    c.listen_fresh = true; /* each listen below replaces the list (a new source) */
    CHECK_EQ_INT(tk_config_set(&c, "listen", "[::1]:7000", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
    static const char *const open_addrs[] = {"0.0.0.0:7000", "192.168.1.4:7000", "[::]:7000"};
    for (size_t i = 0; i < TK_ARRAY_LEN(open_addrs); i++) {
        c.listen_fresh = true;
        CHECK_EQ_INT(tk_config_set(&c, "listen", open_addrs[i], err, sizeof(err)), 0);
        CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
        /* A second, open address beside a loopback one is refused as well. */
        c.listen_fresh = true;
        CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:7000", err, sizeof(err)), 0);
        CHECK_EQ_INT(tk_config_set(&c, "listen", open_addrs[i], err, sizeof(err)), 0);
        CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
    }
    c.listen_fresh = true;
    CHECK_EQ_INT(tk_config_set(&c, "listen", "127.0.0.1:7000", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_set(&c, "metrics-listen", "0.0.0.0:7001", err, sizeof(err)), 0);
    CHECK(tk_config_validate(&c, err, sizeof(err)) != 0); /* every listen address */
    CHECK_EQ_INT(tk_config_set(&c, "login", "off", err, sizeof(err)), 0);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_listen);
    RUN(test_listen_tls);
    RUN(test_client_certs);
    RUN(test_numbers);
    RUN(test_issuer);
    RUN(test_outbound);
    RUN(test_cimd);
    RUN(test_cluster);
    RUN(test_file);
    RUN(test_metrics);
    RUN(test_authorization_server);
    return check_report();
}
