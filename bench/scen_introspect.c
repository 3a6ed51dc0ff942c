/*
 * Scenarios `introspect` and `scale`: introspection throughput and latency,
 * measured as ratios in one run so a noisy machine cancels out.
 *
 * introspect: tokend seeded with --tokens tokens; requests draw a random
 * token: mostly active ones from the seed file, a share of unknown ones and a
 * share revoked over HTTP before the run. If nginx is installed it serves
 * `return 200` with a body as long as tokend's active answer, on the same CPU,
 * and the two are loaded alternately (A/B/B/A...) under identical settings.
 * Every answer is checked: an active token must come back active, the others
 * exactly {"active":false}.
 *
 * introspect-tls (scen_tls.c sets up the certificate): the same over TLS
 * with keep-alive, tokend's TLS listener against nginx's `ssl` listener with
 * the same certificate and cipher suite; then the handshake rates.
 *
 * With --signed, the same tokend is also loaded with every request asking for
 * an RFC 9701 signed answer (Accept: application/token-introspection+jwt), in
 * turn with the plain load, and the ratio of the two rates is reported (each
 * signed answer is checked to be a compact ES256 JWS).
 *
 * scale: one tokend per store size (e.g. 10 k and 10 M tokens), all pinned to
 * the same CPU and loaded alternately; throughput and private memory of each.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define UNKNOWN_N  1024
#define PREFIX_CAP 1024

enum { KIND_ACTIVE = 0, KIND_UNKNOWN = 1, KIND_REVOKED = 2 };

typedef struct mix {
    const seeded *s;
    size_t nrev; /* tokens [0, nrev) of the file were revoked */
    double p_unknown, p_revoked;
    bool check;   /* tokend answers are checked; nginx's are not */
    bool signed_; /* answers are RFC 9701 JWTs: checked for their JWS header */
    uint64_t rng;
    char prefix[PREFIX_CAP]; /* request up to "token=" */
    size_t prefix_len;
    char unknown[UNKNOWN_N][TOKEN_LEN];
    size_t body_len;        /* last active answer's length */
    struct ssl_ctx_st *tls; /* load over TLS (the servers' tls_port) */
    /* the run in progress */
    bench_series *cur;
    const server_proc *srv;
    proc_cpu mark;
} mix;

static void mix_init(mix *m, const seeded *s, const char *path, const char *authz, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->s = s;
    m->rng = seed | 1;
    m->check = true;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < UNKNOWN_N; i++) {
        memcpy(m->unknown[i], "tkd_at_", 7);
        for (size_t k = 7; k < TOKEN_LEN; k++) {
            m->unknown[i][k] = b64[rng_next(&m->rng) & 63];
        }
    }
    char dummy[TOKEN_LEN];
    memset(dummy, 'x', sizeof dummy);
    size_t n = form_request(m->prefix, sizeof m->prefix, path, authz, dummy, TOKEN_LEN);
    m->prefix_len = n - TOKEN_LEN;
}

static size_t mix_make(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag)
{
    (void)conn;
    mix *m = arg;
    const token_file *tf = &m->s->tf;
    double u = (double)(rng_next(&m->rng) >> 11) * 0x1p-53;
    uint64_t r = rng_next(&m->rng);
    const char *tok;
    if (u < m->p_unknown) {
        *tag = KIND_UNKNOWN;
        tok = m->unknown[r % UNKNOWN_N];
    } else if (m->nrev > 0 && u < m->p_unknown + m->p_revoked) {
        *tag = KIND_REVOKED;
        tok = token_at(tf, r % m->nrev);
    } else {
        *tag = KIND_ACTIVE;
        tok = token_at(tf, m->nrev + r % (tf->n - m->nrev));
    }
    if (m->prefix_len + TOKEN_LEN > cap) {
        return 0;
    }
    memcpy(buf, m->prefix, m->prefix_len);
    memcpy(buf + m->prefix_len, tok, TOKEN_LEN);
    return m->prefix_len + TOKEN_LEN;
}

static bool mix_done(void *arg, unsigned conn, uint32_t tag, int status, const char *body,
                     size_t len, uint64_t sent_ns, uint64_t now_ns)
{
    (void)conn, (void)sent_ns, (void)now_ns;
    mix *m = arg;
    if (status != 200 || !m->check) {
        return true;
    }
    if (m->signed_) { /* base64url of {"alg":"ES256", then two more segments */
        static const char head[] = "eyJhbGciOiJFUzI1NiIs";
        const char *dot = len > 100 ? memchr(body, '.', len) : NULL;
        return dot != NULL && memcmp(body, head, sizeof head - 1) == 0 &&
               memchr(dot + 1, '.', len - (size_t)(dot + 1 - body)) != NULL;
    }
    if (tag == KIND_ACTIVE) {
        m->body_len = len;
        return len > 14 && memcmp(body, "{\"active\":true,", 15) == 0;
    }
    return len == 16 && memcmp(body, "{\"active\":false}", 16) == 0;
}

static void mix_window(void *arg, bool start)
{
    mix *m = arg;
    series_window(m->cur, m->srv, start, &m->mark);
}

static int run_one(const bench_opts *o, mix *m, const server_proc *sp, bench_series *se)
{
    load_cfg cfg = {
        .port = m->tls ? sp->tls_port : sp->port,
        .tls = m->tls,
        .conns = o->conns,
        .duration_s = o->duration_s,
        .warmup_s = o->warmup_s,
        .rate = o->rate,
        .label = se->name,
        .progress = o->progress,
        .arg = m,
        .make = mix_make,
        .done = mix_done,
        .window = mix_window,
    };
    m->cur = se;
    m->srv = sp;
    se->have_cpu = true;
    bool had_cpu = se->nrounds == 0 || se->have_cpu;
    load_result *res = malloc(sizeof *res);
    int rc = res ? load_run_once(&cfg, res) : -1;
    if (rc == 0) {
        series_add_run(se, res, had_cpu && se->have_cpu ? &m->mark : NULL);
        bench_log("%-22s %9.0f req/s  p99 %8.1f us  server %6.2f us/req", se->name,
                  se->rounds[se->nrounds - 1].rps, se->rounds[se->nrounds - 1].p99_us,
                  se->rounds[se->nrounds - 1].cpu_us_per_req);
    }
    free(res);
    return rc;
}

/* ---- Revoked tokens, prepared over HTTP -------------------------------------------------- */

typedef struct prep {
    const seeded *s;
    size_t next, n;
} prep;

static size_t prep_make(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag)
{
    (void)conn;
    prep *p = arg;
    *tag = 0;
    if (p->next >= p->n) {
        return 0;
    }
    const char *tok = token_at(&p->s->tf, p->next++);
    return form_request(buf, cap, "/revoke", p->s->agent_authz, tok, TOKEN_LEN);
}

static bool prep_done(void *arg, unsigned conn, uint32_t tag, int status, const char *body,
                      size_t len, uint64_t sent_ns, uint64_t now_ns)
{
    (void)arg, (void)conn, (void)tag, (void)status, (void)body, (void)len, (void)sent_ns;
    (void)now_ns;
    return true;
}

/* Revoke tokens [0, n) of the file over HTTP; 0 when every one got 200. */
int revoke_first(const bench_opts *o, const seeded *s, size_t n)
{
    prep p = {.s = s, .n = n};
    load_cfg cfg = {.port = s->srv.port,
                    .conns = n < 16 ? (unsigned)n : 16,
                    .duration_s = 120,
                    .max_requests = n,
                    .label = "revoke (prepare)",
                    .drain = true,
                    .arg = &p,
                    .make = prep_make,
                    .done = prep_done};
    (void)o;
    load_result *res = malloc(sizeof *res);
    int rc = res ? load_run_once(&cfg, res) : -1;
    if (rc == 0 && res->ok != n) {
        bench_log("preparing revoked tokens: %llu of %zu answered 200", (unsigned long long)res->ok,
                  n);
        rc = -1;
    }
    free(res);
    return rc;
}

int check_revoked(const bench_opts *o, const seeded *s, size_t n)
{
    mix *m = calloc(1, sizeof *m);
    load_result *res = malloc(sizeof *res);
    int rc = m && res ? 0 : -1;
    if (rc == 0 && n > 0) {
        mix_init(m, s, "/introspect", s->rs_authz, bench_now_ns());
        m->nrev = n;
        m->p_revoked = 1.0;
        load_cfg cfg = {.port = s->srv.port,
                        .conns = n < 16 ? (unsigned)n : 16,
                        .duration_s = 60,
                        .max_requests = n,
                        .label = "check",
                        .arg = m,
                        .make = mix_make,
                        .done = mix_done};
        rc = load_run_once(&cfg, res);
        if (rc == 0 && (res->ok != n || res->errors[ERR_UNEXPECTED] != 0)) {
            bench_log("revoked tokens checked: %llu of %zu inactive", (unsigned long long)res->ok,
                      n);
            rc = -1;
        }
    }
    (void)o;
    free(m);
    free(res);
    return rc;
}

/* ---- introspect ----------------------------------------------------------------------------- */

/* The length of tokend's answer for an active token (one request). */
static size_t answer_len(mix *m, uint16_t port)
{
    double pu = m->p_unknown, pr = m->p_revoked;
    m->p_unknown = m->p_revoked = 0;
    load_cfg cfg = {.port = port,
                    .conns = 1,
                    .duration_s = 10,
                    .max_requests = 1,
                    .label = "probe",
                    .arg = m,
                    .make = mix_make,
                    .done = mix_done};
    load_result *res = malloc(sizeof *res);
    if (res != NULL) {
        load_run_once(&cfg, res);
    }
    free(res);
    m->p_unknown = pu;
    m->p_revoked = pr;
    return m->body_len;
}

static int nginx_same_body(size_t len, int cpu, server_proc *ng)
{
    char body[4096];
    static const char head[] = "{\"active\":true,\"pad\":\"";
    size_t h = sizeof head - 1;
    if (len < h + 2 || len > sizeof body) {
        len = h + 2;
    }
    memcpy(body, head, h);
    memset(body + h, 'x', len - h - 2);
    memcpy(body + len - 2, "\"}", 2);
    return nginx_start(body, len, cpu, ng);
}

/* The servers loaded in turn, in a rotated order each round (A B C, B C A,
 * …) so drift on a shared machine spreads evenly. check: tokend's answers
 * are checked, nginx's are not. */
typedef struct ab_target {
    const server_proc *srv;
    bench_series *se;
    bool check;
    mix *m; /* the requests: NULL for the shared mix */
} ab_target;

static void ab_rounds(const bench_opts *o, mix *m, const ab_target *t, unsigned n)
{
    for (unsigned r = 0; r < o->rounds; r++) {
        for (unsigned k = 0; k < n; k++) {
            const ab_target *x = &t[(k + r) % n];
            mix *xm = x->m != NULL ? x->m : m;
            xm->check = x->check;
            run_one(o, xm, x->srv, x->se);
        }
    }
}

/* Full and resumed handshakes per second against each server, in turn. */
static void handshake_rounds(const bench_opts *o, bench_report *rp, struct ssl_ctx_st *tls,
                             const ab_target *t, unsigned n)
{
    static const char *const what[2] = {"full", "resumed"};
    double rate[3][2] = {{0}}, cpu[3][2] = {{0}};
    unsigned got[3][2] = {{0}};
    for (unsigned r = 0; r < o->rounds; r++) {
        for (unsigned k = 0; k < n; k++) {
            unsigned x = (k + r) % n;
            for (int res = 0; res < 2; res++) {
                double ps = 0, us = 0;
                if (tls_handshake_rate(tls, t[x].srv->tls_port, t[x].srv->pid, res == 1,
                                       o->duration_s / 2, &ps, &us) == 0) {
                    rate[x][res] += ps;
                    cpu[x][res] += us;
                    got[x][res]++;
                    bench_log("%-22s %s handshakes %8.0f /s  server %7.1f us each", t[x].se->name,
                              what[res], ps, us);
                }
            }
        }
    }
    for (unsigned x = 0; x < n; x++) {
        for (int res = 0; res < 2; res++) {
            char name[48];
            unsigned g = got[x][res] ? got[x][res] : 1;
            const char *who = x == 0 ? "tokend" : "nginx";
            snprintf(name, sizeof name, "%s_%s_handshakes_per_s", who, what[res]);
            report_metric(rp, name, rate[x][res] / g);
            snprintf(name, sizeof name, "%s_%s_handshake_server_us", who, what[res]);
            report_metric(rp, name, cpu[x][res] / g);
        }
    }
    if (n >= 2 && got[0][0] && got[1][0] && got[0][1] && got[1][1]) {
        for (int res = 0; res < 2; res++) {
            char name[48];
            snprintf(name, sizeof name, "ratio_%s_handshakes", what[res]);
            report_metric(rp, name, (rate[0][res] / got[0][res]) / (rate[1][res] / got[1][res]));
        }
    }
}

/* --signed: the same mix with every request asking for a signed answer. */
static mix *signed_mix(const seeded *s, const mix *m)
{
    mix *ms = malloc(sizeof *ms);
    char authz[sizeof s->rs_authz + 64];
    snprintf(authz, sizeof authz, "%sAccept: application/token-introspection+jwt\r\n", s->rs_authz);
    if (ms != NULL) {
        mix_init(ms, s, "/introspect", authz, bench_now_ns() ^ 0x5157);
        ms->nrev = m->nrev;
        ms->p_unknown = m->p_unknown;
        ms->p_revoked = m->p_revoked;
        ms->signed_ = true;
        ms->tls = m->tls;
    }
    return ms;
}

int scen_introspect(const bench_opts *o, bench_report *rp)
{
    return introspect_run(o, rp, NULL);
}

int introspect_run(const bench_opts *o, bench_report *rp, struct ssl_ctx_st *tls)
{
    size_t n = first_size(o->tokens_list);
    seeded *s = calloc(1, sizeof *s);
    mix *m = calloc(1, sizeof *m);
    int rc = s && m ? seeded_start(o, n ? n : 10000000, s) : -1;
    if (rc != 0) {
        free(s);
        free(m);
        return -1;
    }
    mix_init(m, s, "/introspect", s->rs_authz, bench_now_ns());
    m->p_unknown = o->unknown_share;
    m->p_revoked = o->revoked_share;
    size_t nrev = (size_t)(o->revoked_share * (double)s->tf.n);
    nrev = nrev > 100000 ? 100000 : nrev;
    nrev = nrev >= s->tf.n ? s->tf.n - 1 : nrev;
    if (nrev > 0 && revoke_first(o, s, nrev) == 0) {
        m->nrev = nrev;
    }
    size_t len = answer_len(m, s->srv.port);
    m->tls = tls;
    /* --baseline: its own store, seeded by its own tokenctl with the same
     * shape and the same share revoked over HTTP, and its own mix. */
    seeded *sbase = !tls && o->baseline ? calloc(1, sizeof *sbase) : NULL;
    mix *mb = sbase != NULL ? calloc(1, sizeof *mb) : NULL;
    bool have_base =
        mb != NULL && seeded_start_bins(o, s->tf.n, o->baseline, o->baseline_tokenctl, sbase) == 0;
    if (have_base) {
        mix_init(mb, sbase, "/introspect", sbase->rs_authz, bench_now_ns() ^ 0xba5e);
        mb->p_unknown = m->p_unknown;
        mb->p_revoked = m->p_revoked;
        if (m->nrev > 0 && revoke_first(o, sbase, m->nrev) == 0) {
            mb->nrev = m->nrev;
        }
    } else if (o->baseline != NULL) {
        bench_log("baseline %s (tokenctl %s) did not start: no baseline series", o->baseline,
                  o->baseline_tokenctl);
    }
    server_proc ng = {0};
    bool have_ng =
        !o->no_nginx && nginx_available() && nginx_same_body(len, o->server_cpu, &ng) == 0;
    ab_target t[4];
    unsigned nt = 0;
    mix *ms = o->signed_answers ? signed_mix(s, m) : NULL;
    bench_series *st = report_series(rp, "tokend");
    bench_series *ss = ms != NULL ? report_series(rp, "tokend signed (RFC 9701)") : NULL;
    bench_series *sn = have_ng ? report_series(rp, "nginx return 200") : NULL;
    bench_series *sb = have_base ? report_series(rp, "tokend (baseline)") : NULL;
    t[nt++] = (ab_target){&s->srv, st, true, NULL};
    if (have_ng) {
        t[nt++] = (ab_target){&ng, sn, false, NULL};
    }
    if (have_base) {
        t[nt++] = (ab_target){&sbase->srv, sb, true, mb};
    }
    if (ms != NULL) {
        t[nt++] = (ab_target){&s->srv, ss, true, ms};
    }
    ab_rounds(o, m, t, nt);
    if (tls != NULL) { /* tokend first, then nginx: the signed series is the same server */
        handshake_rounds(o, rp, tls, t, have_ng ? 2 : 1);
    }
    if (ms != NULL) {
        double ratio = series_rps(ss) / series_rps(st);
        report_metric(rp, "signed_rps", series_rps(ss));
        report_metric(rp, "signed_server_us_per_req", series_cpu_us(ss));
        report_metric(rp, "ratio_signed_vs_plain", ratio);
        /* What bounds the rate when the server's core, not the load, is saturated. */
        report_metric(rp, "ratio_signed_server_cpu", series_cpu_us(st) / series_cpu_us(ss));
        report_target(rp, "signed_vs_plain", ratio, 0.5, false,
                      "tokend signed / plain introspection req/s");
        free(ms);
    }
    if (have_base) {
        report_metric(rp, "baseline_rps", series_rps(sb));
        report_metric(rp, "baseline_server_us_per_req", series_cpu_us(sb));
        report_metric(rp, "ratio_throughput_vs_baseline", series_rps(st) / series_rps(sb));
        report_metric(rp, "ratio_server_cpu_vs_baseline", series_cpu_us(sb) / series_cpu_us(st));
        report_pair(rp, "introspect", st, sb, "");
    }
    if (have_base) {
        seeded_stop(o, sbase);
    }
    free(sbase);
    free(mb);
    report_metric(rp, "tokens", (double)s->tf.n);
    report_metric(rp, "revoked_tokens", (double)m->nrev);
    report_metric(rp, "answer_bytes", (double)len);
    report_metric(rp, "tokend_rps", series_rps(st));
    report_metric(rp, "tokend_p99_us", (double)hist_quantile(&st->r.lat, 0.99) / 1e3);
    report_metric(rp, "tokend_server_us_per_req", series_cpu_us(st));
    if (have_ng) {
        double ratio = series_rps(st) / series_rps(sn);
        double cpu = series_cpu_us(sn) / series_cpu_us(st);
        report_metric(rp, "nginx_rps", series_rps(sn));
        report_metric(rp, "nginx_server_us_per_req", series_cpu_us(sn));
        report_metric(rp, "ratio_throughput", ratio);
        report_metric(rp, "ratio_server_cpu", cpu);
        report_target(rp, "throughput_vs_nginx", ratio, 0.9, false, "tokend / nginx req/s");
        report_target(rp, "server_cpu_vs_nginx", cpu, 0.9, false,
                      "nginx / tokend server CPU per request");
    }
    report_target(rp, "p99_us", (double)hist_quantile(&st->r.lat, 0.99) / 1e3, 1000, true,
                  "tokend p99 latency, microseconds");
    server_stop(&ng);
    seeded_stop(o, s);
    free(s);
    free(m);
    return 0;
}

/* ---- scale ---------------------------------------------------------------------------------- */

#define SCALE_MAX 4

int scen_scale(const bench_opts *o, bench_report *rp)
{
    size_t sizes[SCALE_MAX];
    int ns = parse_sizes(o->tokens_list[0] ? o->tokens_list : "10000,10000000", sizes, SCALE_MAX);
    if (ns < 1) {
        bench_log("scale: --tokens wants a list such as 10000,10000000");
        return -1;
    }
    seeded *s = calloc((size_t)ns, sizeof *s);
    mix *m = calloc((size_t)ns, sizeof *m);
    bench_series *se[SCALE_MAX];
    int started = 0, rc = s && m ? 0 : -1;
    for (; rc == 0 && started < ns; started++) {
        rc = seeded_start(o, sizes[started], &s[started]);
        if (rc == 0) {
            char name[48];
            snprintf(name, sizeof name, "tokend %zu tokens", s[started].tf.n);
            se[started] = report_series(rp, name);
            mix_init(&m[started], &s[started], "/introspect", s[started].rs_authz,
                     bench_now_ns() + (uint64_t)started);
        }
    }
    if (rc != 0) {
        started--;
    }
    for (unsigned r = 0; rc == 0 && r < o->rounds; r++) {
        for (int k = 0; k < ns; k++) { /* rotate the order every round */
            int i = (k + (int)r) % ns;
            run_one(o, &m[i], &s[i].srv, se[i]);
        }
    }
    snprintf(rp->table_name, sizeof rp->table_name, "sizes");
    const char *cols[] = {"tokens",           "rps",     "server_us_per_req", "p99_us",
                          "private_dirty_kb", "anon_kb", "private_clean_kb",  "rss_kb"};
    for (size_t c = 0; c < (sizeof cols / sizeof cols[0]); c++) {
        snprintf(rp->cols[c], sizeof rp->cols[c], "%s", cols[c]);
    }
    rp->ncols = (unsigned)(sizeof cols / sizeof cols[0]);
    for (int i = 0; rc == 0 && i < ns && rp->nrows < TABLE_ROWS; i++) {
        proc_mem pm;
        proc_mem_read(s[i].srv.pid, &pm);
        double *row = rp->rows[rp->nrows++];
        row[0] = (double)s[i].tf.n;
        row[1] = series_rps(se[i]);
        row[2] = series_cpu_us(se[i]);
        row[3] = (double)hist_quantile(&se[i]->r.lat, 0.99) / 1e3;
        row[4] = (double)pm.private_dirty_kb;
        row[5] = (double)pm.anon_kb;
        row[6] = (double)pm.private_clean_kb;
        row[7] = (double)pm.rss_kb;
    }
    if (rc == 0 && ns >= 2) {
        double *a = rp->rows[0], *b = rp->rows[ns - 1];
        report_metric(rp, "ratio_throughput_large_small", b[1] / a[1]);
        report_metric(rp, "ratio_server_cpu_small_large", a[2] / b[2]);
        report_metric(rp, "private_dirty_kb_small", a[4]);
        report_metric(rp, "private_dirty_kb_large", b[4]);
        report_target(rp, "scale_throughput", b[1] / a[1], 0.9, false,
                      "req/s at the largest store / at the smallest");
        report_target(rp, "private_dirty_growth", b[4] / a[4], 1.1, true,
                      "Private_Dirty at the largest store / at the smallest");
    }
    for (int i = 0; i < started; i++) {
        seeded_stop(o, &s[i]);
    }
    free(s);
    free(m);
    return rc;
}

/* ---- scale-workers -------------------------------------------------------------------------- */

/* Metrics KEY_rps, _achieved_share (of the offered rate), _p99_us,
 * _server_us_per_req and _cores (server CPU seconds per second). */
static void workers_metrics(bench_report *rp, const char *key, const bench_series *se,
                            double offered)
{
    char name[128];
    double rps = series_rps(se), us = series_cpu_us(se);
    snprintf(name, sizeof name, "%s_rps", key);
    report_metric(rp, name, rps);
    snprintf(name, sizeof name, "%s_achieved_share", key);
    report_metric(rp, name, rps / offered);
    snprintf(name, sizeof name, "%s_p99_us", key);
    report_metric(rp, name, (double)hist_quantile(&se->r.lat, 0.99) / 1e3);
    snprintf(name, sizeof name, "%s_server_us_per_req", key);
    report_metric(rp, name, us);
    snprintf(name, sizeof name, "%s_cores", key);
    report_metric(rp, name, us > 0 ? us * rps / 1e6 : -1);
}

/* tokend with 1 and N workers (each on its own store of the same size) and
 * nginx with 1 and N worker processes, loaded in turn at the same open-loop
 * rate: what a second core buys, and what it costs per request. */
int scen_scale_workers(const bench_opts *o, bench_report *rp)
{
    bench_opts ow = *o; /* paced: the load generator shares the servers' cores */
    ow.rate = o->rate > 0 ? o->rate : 20000;
    unsigned nw = o->workers;
    size_t n = first_size(o->tokens_list);
    if (nw < 2) {
        bench_log("scale-workers: --workers must be 2 or more (compared with 1)");
        return -1;
    }
    seeded *s = calloc(2, sizeof *s);
    mix *m = calloc(2, sizeof *m);
    server_proc ng[2] = {{0}, {0}};
    int rc = s && m ? 0 : -1, started = 0;
    for (; rc == 0 && started < 2; started++) {
        bench_server_workers(started ? nw : 1);
        rc = seeded_start(o, n ? n : 1000000, &s[started]);
        if (rc != 0) {
            break;
        }
        mix *mk = &m[started];
        mix_init(mk, &s[started], "/introspect", s[started].rs_authz,
                 bench_now_ns() ^ (uint64_t)started);
        mk->p_unknown = o->unknown_share;
        mk->p_revoked = o->revoked_share;
        size_t nrev = (size_t)(o->revoked_share * (double)s[started].tf.n);
        nrev = nrev > 100000 ? 100000 : nrev;
        nrev = nrev >= s[started].tf.n ? s[started].tf.n - 1 : nrev;
        if (nrev > 0 && revoke_first(o, &s[started], nrev) == 0) {
            mk->nrev = nrev;
        }
    }
    size_t len = rc == 0 ? answer_len(&m[0], s[0].srv.port) : 0;
    bool have_ng = rc == 0 && !o->no_nginx && nginx_available();
    for (unsigned k = 0; have_ng && k < 2; k++) {
        bench_server_workers(k ? nw : 1);
        have_ng = nginx_same_body(len, o->server_cpu, &ng[k]) == 0;
    }
    bench_server_workers(1);
    char name[4][48], key[4][24];
    for (unsigned k = 0; k < 4; k++) {
        unsigned w = k % 2 ? nw : 1;
        const char *who = k < 2 ? "tokend" : "nginx";
        snprintf(name[k], sizeof name[k], "%s %u worker%s", who, w, w > 1 ? "s" : "");
        snprintf(key[k], sizeof key[k], "%s_%uw", who, w);
    }
    bench_series *se[4] = {NULL, NULL, NULL, NULL};
    ab_target t[4];
    unsigned nt = 0;
    for (unsigned k = 0; rc == 0 && k < (have_ng ? 4u : 2u); k++) {
        se[k] = report_series(rp, name[k]);
        t[nt++] = (ab_target){k < 2 ? &s[k].srv : &ng[k - 2], se[k], k < 2, &m[k < 2 ? k : 0]};
    }
    if (rc == 0) {
        bench_log("scale-workers: %u vs 1 worker, open loop at %.0f req/s", nw, ow.rate);
        ab_rounds(&ow, &m[0], t, nt);
        report_metric(rp, "workers", nw);
        report_metric(rp, "offered_rps", ow.rate);
        report_metric(rp, "tokens", (double)s[0].tf.n);
        for (unsigned k = 0; k < nt; k++) {
            workers_metrics(rp, key[k], se[k], ow.rate);
        }
        report_metric(rp, "tokend_cpu_ratio_workers", series_cpu_us(se[1]) / series_cpu_us(se[0]));
        report_metric(rp, "tokend_throughput_ratio_workers", series_rps(se[1]) / series_rps(se[0]));
    }
    if (rc == 0 && have_ng) {
        report_metric(rp, "nginx_cpu_ratio_workers", series_cpu_us(se[3]) / series_cpu_us(se[2]));
        report_metric(rp, "nginx_throughput_ratio_workers", series_rps(se[3]) / series_rps(se[2]));
        report_metric(rp, "ratio_throughput", series_rps(se[1]) / series_rps(se[3]));
        report_metric(rp, "ratio_server_cpu", series_cpu_us(se[3]) / series_cpu_us(se[1]));
    }
    snprintf(rp->table_name, sizeof rp->table_name, "workers");
    const char *cols[] = {"workers",           "offered_rps", "tokend_rps",   "tokend_p99_us",
                          "tokend_us_per_req", "nginx_rps",   "nginx_p99_us", "nginx_us_per_req"};
    for (size_t c = 0; rc == 0 && c < sizeof cols / sizeof cols[0]; c++) {
        snprintf(rp->cols[c], sizeof rp->cols[c], "%s", cols[c]);
        rp->ncols = (unsigned)c + 1;
    }
    for (unsigned k = 0; rc == 0 && k < 2; k++) {
        double *row = rp->rows[rp->nrows++];
        const bench_series *a = se[k], *b = se[k + 2];
        row[0] = k ? nw : 1;
        row[1] = ow.rate;
        row[2] = series_rps(a);
        row[3] = (double)hist_quantile(&a->r.lat, 0.99) / 1e3;
        row[4] = series_cpu_us(a);
        row[5] = b ? series_rps(b) : -1;
        row[6] = b ? (double)hist_quantile(&b->r.lat, 0.99) / 1e3 : -1;
        row[7] = b ? series_cpu_us(b) : -1;
    }
    server_stop(&ng[0]);
    server_stop(&ng[1]);
    for (int k = 0; k < started && k < 2; k++) {
        seeded_stop(o, &s[k]);
    }
    free(s);
    free(m);
    return rc;
}
