/*
 * Scenario "cluster" (issue 14): the replication window. Three tokend nodes
 * share a NATS JetStream op log (--nats N servers, the stream with N
 * replicas); each revocation is sent to node A, and from A's 2xx the
 * scenario polls B and C (keep-alive connections, one request at a time)
 * until each answers {"active":false}: the time from A's 2xx to the first
 * inactive answer on each node, p50 / p99 / max over --tokens revocations.
 *
 * The nodes start from copies of one seeded store (the bootstrap of a
 * snapshot at sequence 0). Meanwhile one thread per node keeps introspecting
 * a token that is never revoked on one keep-alive connection (closed loop):
 * introspection load on every node, reported as introspections per second.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODES     3
#define NATS_MAX  3
#define WAIT_NS   (5ull * 1000000000ull) /* a revocation not seen within this: lost */
#define STALENESS "3000"

typedef struct kconn {
    int fd;
    uint16_t port;
    char buf[16384];
} kconn;

static int kconn_open(kconn *k, uint16_t port)
{
    k->port = port;
    k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        return -1;
    }
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* One request, the whole answer (Content-Length framed); the status, and the
 * body in k->buf from *body. */
static int kconn_call(kconn *k, const char *req, size_t len, const char **body)
{
    if (send(k->fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        return -1;
    }
    size_t have = 0;
    for (int guard = 0; guard < 1000; guard++) {
        ssize_t n = recv(k->fd, k->buf + have, sizeof k->buf - 1 - have, 0);
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
        k->buf[have] = '\0';
        char *end = strstr(k->buf, "\r\n\r\n");
        const char *cl = strcasestr(k->buf, "\r\ncontent-length:");
        if (end == NULL || cl == NULL || cl > end) {
            continue;
        }
        size_t want = (size_t)(end + 4 - k->buf) + strtoul(cl + 17, NULL, 10);
        if (have >= want) {
            *body = end + 4;
            return atoi(k->buf + 9);
        }
    }
    return -1;
}

static int write_key(const char *path)
{
    uint8_t raw[32];
    FILE *r = fopen("/dev/urandom", "rb");
    bool ok = r != NULL && fread(raw, 1, sizeof raw, r) == sizeof raw;
    if (r != NULL) {
        fclose(r);
    }
    int fd = ok ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (fd < 0) {
        return -1;
    }
    char hex[2 * sizeof raw + 2];
    for (size_t i = 0; i < sizeof raw; i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    hex[2 * sizeof raw] = '\n';
    ok = write(fd, hex, 2 * sizeof raw + 1) == (ssize_t)(2 * sizeof raw + 1);
    close(fd);
    return ok ? 0 : -1;
}

static int nats_start(const char *nats, unsigned i, unsigned n, const uint16_t *ports,
                      const uint16_t *cports, server_proc *sp)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->name, sizeof sp->name, "nats%u", i);
    if (bench_mkdtemp("nats", sp->dir, sizeof sp->dir) != 0) {
        return -1;
    }
    char conf[300], routes[256] = "";
    snprintf(conf, sizeof conf, "%s/nats.conf", sp->dir);
    for (unsigned k = 0; k < n; k++) {
        size_t at = strlen(routes);
        snprintf(routes + at, sizeof routes - at, "%snats-route://127.0.0.1:%u", k ? ", " : "",
                 (unsigned)cports[k]);
    }
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "server_name: n%u\nlisten: 127.0.0.1:%u\njetstream { store_dir: \"%s/js\" }\n", i,
            (unsigned)ports[i], sp->dir);
    if (n > 1) {
        fprintf(f, "cluster { name: bench, listen: 127.0.0.1:%u, routes: [%s] }\n",
                (unsigned)cports[i], routes);
    }
    fclose(f);
    sp->port = ports[i];
    return bench_spawn_server((char *[]){(char *)nats, "-c", conf, NULL}, sp);
}

static int healthy(uint16_t port)
{
    kconn k;
    const char *body;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n";
    int st = kconn_open(&k, port) == 0 ? kconn_call(&k, req, sizeof req - 1, &body) : -1;
    if (k.fd >= 0) {
        close(k.fd);
    }
    return st == 200;
}

#define SAMPLES 4 /* wrong answers kept, with their body, per node */

typedef struct loader {
    pthread_t thread;
    unsigned node;
    uint16_t port;
    const char *req;
    size_t len;
    uint64_t t_start;
    int stop; /* atomic */
    /* bad: anything but a 200 {"active":true}; stale: a 503 (the node not
     * known current: fail closed by design, counted apart). */
    uint64_t answers, bad, stale;
    unsigned nsamples;
    struct {
        int status;
        double at_s;
        char body[160];
    } samples[SAMPLES];
} loader;

/* Keep the first few wrong answers to say what they were. */
static void loader_sample(loader *l, int st, const char *body)
{
    if (l->nsamples >= SAMPLES) {
        return;
    }
    unsigned i = l->nsamples++;
    l->samples[i].status = st;
    l->samples[i].at_s = (double)(bench_now_ns() - l->t_start) / 1e9;
    snprintf(l->samples[i].body, sizeof l->samples[i].body, "%s", st >= 0 ? body : "(closed)");
}

static void *loader_main(void *arg)
{
    loader *l = arg;
    static _Thread_local kconn k;
    const char *body;
    if (kconn_open(&k, l->port) != 0) {
        return NULL;
    }
    while (!__atomic_load_n(&l->stop, __ATOMIC_RELAXED)) { /* until the scenario ends */
        int st = kconn_call(&k, l->req, l->len, &body);
        if (st == 503) {
            l->stale++;
            loader_sample(l, st, body);
        } else if (st != 200 || strstr(body, "\"active\":true") == NULL) {
            l->bad++;
            loader_sample(l, st, body);
            if (st < 0) {
                break;
            }
        }
        l->answers++;
    }
    close(k.fd);
    return NULL;
}

typedef struct cluster_run {
    seeded s;
    server_proc nats[NATS_MAX], node[NODES];
    char dirs[NODES][300];
    unsigned nnats;
} cluster_run;

static int start_all(const bench_opts *o, cluster_run *cr, size_t n)
{
    if (seeded_start(o, n, &cr->s) != 0) {
        return -1;
    }
    server_stop(&cr->s.srv); /* the seed only: the nodes start from copies */
    uint16_t ports[NATS_MAX], cports[NATS_MAX];
    char urls[256] = "";
    for (unsigned i = 0; i < cr->nnats; i++) {
        ports[i] = bench_free_port();
        cports[i] = bench_free_port();
        size_t at = strlen(urls);
        snprintf(urls + at, sizeof urls - at, "%snats://127.0.0.1:%u", i ? "," : "",
                 (unsigned)ports[i]);
    }
    for (unsigned i = 0; i < cr->nnats; i++) {
        if (nats_start("nats-server", i, cr->nnats, ports, cports, &cr->nats[i]) != 0) {
            bench_log("nats-server %u did not start", i);
            return -1;
        }
    }
    /* The op log's HMAC key (cluster-key-file): 32 random bytes in hex, 0600. */
    char key[320];
    snprintf(key, sizeof key, "%s/cluster.key", cr->nats[0].dir);
    if (write_key(key) != 0) {
        bench_log("cannot write %s", key);
        return -1;
    }
    for (unsigned i = 0; i < NODES; i++) {
        snprintf(cr->dirs[i], sizeof cr->dirs[i], "%s-node%u", cr->s.data, i);
        char *cp[] = {"cp", "-r", cr->s.data, cr->dirs[i], NULL};
        if (bench_run(cp, NULL) != 0) {
            return -1;
        }
        char extra[600];
        snprintf(extra, sizeof extra,
                 "--cluster-nats %s --cluster-node n%u --cluster-replicas %u "
                 "--cluster-key-file %s --cluster-max-staleness " STALENESS,
                 urls, i, cr->nnats, key);
        bench_tokend_extra(extra);
        int rc = tokend_start(o->tokend, cr->dirs[i], -1, &cr->node[i]);
        bench_tokend_extra(NULL);
        if (rc != 0) {
            return -1;
        }
    }
    for (unsigned i = 0; i < NODES; i++) {
        bool ok = false;
        for (int t = 0; t < 600 && !ok; t++) { /* 60 s: a JetStream cluster forms */
            ok = healthy(cr->node[i].port) != 0;
            if (!ok) {
                usleep(100000);
            }
        }
        if (!ok) {
            bench_log("node %u never became ready", i);
            return -1;
        }
    }
    return 0;
}

static void stop_all(const bench_opts *o, cluster_run *cr)
{
    for (unsigned i = 0; i < NODES; i++) {
        server_stop(&cr->node[i]);
        if (!o->keep && cr->dirs[i][0] != '\0') {
            bench_rmtree(cr->dirs[i]);
        }
    }
    for (unsigned i = 0; i < cr->nnats; i++) {
        server_stop(&cr->nats[i]);
    }
    seeded_stop(o, &cr->s);
}

/* Revoke token i on A; then poll B and C until each says inactive. */
static int one(cluster_run *cr, kconn *k, size_t i, hist *hb, hist *hc, hist *ha)
{
    char req[1024];
    const char *body = NULL, *tok = token_at(&cr->s.tf, i);
    size_t len = form_request(req, sizeof req, "/revoke", cr->s.agent_authz, tok, TOKEN_LEN);
    uint64_t t_send = bench_now_ns();
    if (len == 0 || kconn_call(&k[0], req, len, &body) != 200) {
        return -1;
    }
    uint64_t t0 = bench_now_ns();
    hist_add(ha, t0 - t_send);
    char ireq[1024];
    size_t ilen = form_request(ireq, sizeof ireq, "/introspect", cr->s.rs_authz, tok, TOKEN_LEN);
    bool seen[3] = {true, false, false};
    hist *into[3] = {NULL, hb, hc};
    while (!seen[1] || !seen[2]) { /* bounded by WAIT_NS */
        for (unsigned n = 1; n < 3; n++) {
            if (seen[n]) {
                continue;
            }
            int st = kconn_call(&k[n], ireq, ilen, &body);
            uint64_t now = bench_now_ns();
            if (st == 200 && strstr(body, "\"active\":false") != NULL) {
                seen[n] = true;
                hist_add(into[n], now - t0);
            } else if (st < 0 || now - t0 > WAIT_NS) {
                bench_log("revocation %zu not seen on node %u within 5 s (status %d)", i, n, st);
                return -1;
            }
        }
    }
    return 0;
}

int scen_cluster(const bench_opts *o, bench_report *rp)
{
    static cluster_run cr;
    memset(&cr, 0, sizeof cr);
    cr.nnats = o->nats != 0 ? o->nats : 3;
    size_t n = first_size(o->tokens_list);
    n = n != 0 ? n : 10000;
    int rc = start_all(o, &cr, n + 1); /* + the one the load introspects */
    kconn k[NODES] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
    for (unsigned i = 0; rc == 0 && i < NODES; i++) {
        rc = kconn_open(&k[i], cr.node[i].port);
    }
    bench_series *sb = report_series(rp, "window to node B");
    bench_series *sc = report_series(rp, "window to node C");
    bench_series *sa = report_series(rp, "revoke on A");
    hist_reset(&sb->r.lat);
    hist_reset(&sc->r.lat);
    hist_reset(&sa->r.lat);
    /* Introspection load: the last token of the file is never revoked (the
     * seed holds more than the n revoked: a revoked one would answer
     * {"active":false}, rightly, and count as a wrong answer). */
    if (rc == 0 && cr.s.tf.n <= n) {
        bench_log("seeded %zu tokens, not more than the %zu to revoke", cr.s.tf.n, n);
        rc = -1;
    }
    static loader ld[NODES];
    char lreq[1024];
    size_t llen = form_request(lreq, sizeof lreq, "/introspect", cr.s.rs_authz,
                               token_at(&cr.s.tf, cr.s.tf.n - 1), TOKEN_LEN);
    for (unsigned i = 0; rc == 0 && i < NODES; i++) {
        ld[i] = (loader){.node = i,
                         .port = cr.node[i].port,
                         .req = lreq,
                         .len = llen,
                         .t_start = bench_now_ns()};
        rc = pthread_create(&ld[i].thread, NULL, loader_main, &ld[i]) == 0 ? 0 : -1;
    }
    uint64_t t_start = bench_now_ns();
    size_t done = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = one(&cr, k, i, &sb->r.lat, &sc->r.lat, &sa->r.lat);
        done += rc == 0 ? 1 : 0;
        if (o->progress && i % 1000 == 0) {
            bench_log("%zu revocations", i);
        }
    }
    double secs = (double)(bench_now_ns() - t_start) / 1e9;
    uint64_t answers = 0, bad = 0, stale = 0;
    for (unsigned i = 0; i < NODES; i++) {
        if (ld[i].port != 0) {
            __atomic_store_n(&ld[i].stop, 1, __ATOMIC_RELAXED);
            pthread_join(ld[i].thread, NULL);
            answers += ld[i].answers;
            bad += ld[i].bad;
            stale += ld[i].stale;
            for (unsigned j = 0; j < ld[i].nsamples; j++) {
                bench_log("node %u background answer at %.3f s: status %d %s", i,
                          ld[i].samples[j].at_s, ld[i].samples[j].status, ld[i].samples[j].body);
            }
        }
    }
    for (unsigned i = 0; i < NODES; i++) {
        if (k[i].fd >= 0) {
            close(k[i].fd);
        }
    }
    stop_all(o, &cr);
    bench_series *all[3] = {sb, sc, sa};
    for (unsigned i = 0; i < 3; i++) {
        all[i]->r.requests = done;
        all[i]->r.ok = done;
        all[i]->r.seconds = secs;
    }
    hist both = sb->r.lat;
    hist_merge(&both, &sc->r.lat);
    report_metric(rp, "revocations", (double)done);
    report_metric(rp, "nats_servers", cr.nnats);
    report_metric(rp, "background_introspections_per_s", secs > 0 ? (double)answers / secs : 0);
    report_metric(rp, "background_wrong_answers", (double)bad);
    report_metric(rp, "background_stale_503", (double)stale);
    report_metric(rp, "window_p50_us", (double)hist_quantile(&both, 0.5) / 1e3);
    report_metric(rp, "window_p99_us", (double)hist_quantile(&both, 0.99) / 1e3);
    report_metric(rp, "window_max_us", (double)both.max / 1e3);
    report_target(rp, "replication window p99 (ms)", (double)hist_quantile(&both, 0.99) / 1e6, 10,
                  true, "A's 2xx to the first inactive answer on B and C");
    return rc == 0 && done == n && bad == 0 ? 0 : 1;
}
