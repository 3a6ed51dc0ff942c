/*
 * Scenario `introspect-tls`: the introspection scenario over TLS, tokend's
 * TLS listener against nginx `return 200` with `ssl`, the same certificate
 * (a P-256 key made here with the openssl CLI) and the same cipher suite
 * (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519: the client offers nothing else),
 * keep-alive connections as in `introspect`; then the handshake rates, full
 * and resumed (with the ticket of the connection before), one blocking
 * client connection at a time, each a handshake, one `GET /` and its answer
 * (tokend: 404, nginx: 200), with the server's CPU per connection.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int openssl_cli(char *const argv[])
{
    int rc = bench_run(argv, NULL);
    if (rc != 0) {
        bench_log("openssl %s failed (%d)", argv[1], rc);
    }
    return rc == 0 ? 0 : -1;
}

/* A CA and a server certificate for localhost / 127.0.0.1 in dir. */
static int make_certs(const char *dir, char *ca, char *cert, char *key, size_t cap)
{
    char cakey[300], csr[300], ext[300], serial[300];
    snprintf(ca, cap, "%s/ca.pem", dir);
    snprintf(cert, cap, "%s/server.pem", dir);
    snprintf(key, cap, "%s/server.key", dir);
    snprintf(cakey, sizeof cakey, "%s/ca.key", dir);
    snprintf(csr, sizeof csr, "%s/server.csr", dir);
    snprintf(ext, sizeof ext, "%s/server.ext", dir);
    snprintf(serial, sizeof serial, "%s/ca.srl", dir);
    FILE *f = fopen(ext, "w");
    if (f == NULL) {
        return -1;
    }
    fputs("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n", f);
    fclose(f);
    char *a1[] = {"openssl",
                  "req",
                  "-x509",
                  "-newkey",
                  "ec",
                  "-pkeyopt",
                  "ec_paramgen_curve:P-256",
                  "-nodes",
                  "-keyout",
                  cakey,
                  "-out",
                  ca,
                  "-days",
                  "2",
                  "-subj",
                  "/CN=tokend-bench CA",
                  NULL};
    char *a2[] = {
        "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key,   "-out",    csr,  "-subj",    "/CN=localhost",           NULL};
    char *a3[] = {"openssl", "x509",   "-req",  "-in",       csr,        "-CA",
                  ca,        "-CAkey", cakey,   "-CAserial", serial,     "-CAcreateserial",
                  "-out",    cert,     "-days", "2",         "-extfile", ext,
                  NULL};
    return openssl_cli(a1) || openssl_cli(a2) || openssl_cli(a3) ? -1 : 0;
}

static SSL_CTX *client_ctx(const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519") != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    return ctx;
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One connection: handshake (resuming sess when given), one request and its
 * answer (which brings the TLS 1.3 tickets), close_notify. With keep_out the
 * session is kept for the next connection: an OpenSSL client uses a TLS 1.3
 * ticket once (RFC 8446 §C.4). Returns 1 when the session was resumed, 0
 * when not, -1 on failure. */
static int one_handshake(SSL_CTX *ctx, uint16_t port, SSL_SESSION *sess, SSL_SESSION **keep_out)
{
    int fd = tcp_connect(port);
    if (fd < 0) {
        return -1;
    }
    SSL *ssl = SSL_new(ctx);
    int rc = -1;
    if (ssl != NULL && SSL_set1_host(ssl, "localhost") == 1 && SSL_set_fd(ssl, fd) == 1 &&
        (sess == NULL || SSL_set_session(ssl, sess) == 1) && SSL_connect(ssl) == 1) {
        rc = SSL_session_reused(ssl) ? 1 : 0;
        static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        char buf[4096];
        if (SSL_write(ssl, req, (int)sizeof req - 1) <= 0 || SSL_read(ssl, buf, sizeof buf) <= 0) {
            rc = -1;
        }
        if (keep_out != NULL) {
            *keep_out = SSL_get1_session(ssl);
        }
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return rc;
}

int tls_handshake_rate(SSL_CTX *ctx, uint16_t port, pid_t pid, bool resume, double seconds,
                       double *per_s, double *cpu_us)
{
    SSL_SESSION *sess = NULL;
    if (resume && (one_handshake(ctx, port, NULL, &sess) < 0 || sess == NULL)) {
        SSL_SESSION_free(sess);
        return -1;
    }
    proc_cpu c0, c1;
    proc_cpu_read(pid, &c0);
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(seconds * 1e9), now = t0;
    uint64_t n = 0, bad = 0;
    for (; now < end && n < 10000000; now = bench_now_ns()) { /* bounded by time and count */
        SSL_SESSION *next = NULL;
        int r = one_handshake(ctx, port, sess, resume ? &next : NULL);
        if (next != NULL) {
            SSL_SESSION_free(sess);
            sess = next;
        }
        if (r < 0 || (resume && r != 1)) {
            bad++;
        } else {
            n++;
        }
    }
    proc_cpu_read(pid, &c1);
    SSL_SESSION_free(sess);
    if (n == 0 || bad > n / 100) {
        bench_log("handshakes to port %u: %llu good, %llu failed or not resumed", port,
                  (unsigned long long)n, (unsigned long long)bad);
        return -1;
    }
    *per_s = (double)n / ((double)(now - t0) / 1e9);
    *cpu_us = (double)(c1.total_ns - c0.total_ns) / 1e3 / (double)n;
    return 0;
}

int scen_introspect_tls(const bench_opts *o, bench_report *rp)
{
    char dir[256], ca[300], cert[300], key[300];
    if (bench_mkdtemp("tls", dir, sizeof dir) != 0) {
        return -1;
    }
    int rc = make_certs(dir, ca, cert, key, sizeof ca);
    SSL_CTX *ctx = rc == 0 ? client_ctx(ca) : NULL;
    if (ctx != NULL) {
        bench_tls_servers(cert, key);
        rc = introspect_run(o, rp, ctx);
        report_metric(rp, "tls13_aes128gcm_x25519", 1);
    } else {
        bench_log("introspect-tls: no certificates or client context");
        rc = -1;
    }
    SSL_CTX_free(ctx);
    bench_rmtree(dir);
    return rc;
}
