/*
 * Scenarios `cascade` and `revoke`: the cost and the visibility of
 * revocation.
 *
 * cascade: for each K (e.g. 1, 1 000, 100 000) a session holds a root token
 * and K tokens delegated from it (`tokenctl token fanout`). Probe connections
 * introspect random tokens of that tree while, halfway through, a side
 * connection ends it over HTTP by revoking the root (the same single durable
 * write as ending the session). The end request's latency is reported per K,
 * and every probe *sent after the end request's 200 was received* that still
 * answers active:true is counted as stale; there must be none. "Sent after"
 * is exact: the loop prepares a request only after harvesting completions,
 * so a request prepared in or after the batch that delivered the 200 went out
 * after it.
 *
 * revoke: N tokens revoked over HTTP by many concurrent connections, each
 * token once; durable revocations per second (every 200 is sent after the
 * fsync of its group commit) and the acknowledgement latency. Afterwards a
 * sample of the revoked tokens is introspected: all must be inactive.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define KS_MAX     8
#define REPEAT_MAX 8

typedef struct trial {
    token_file tf;    /* root first, then the children */
    unsigned nprobes; /* connections below this are probes; the next one ends the tree */
    char probe_prefix[1024], end_req[1024];
    size_t probe_len, end_len;
    uint64_t rng, half_ns, t_start, end_sent_ns, ack_ns;
    int end_status;
    bool end_due, end_done;
    uint64_t active_before, stale, after, after_inactive;
} trial;

static size_t trial_make(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag)
{
    trial *t = arg;
    (void)cap;
    *tag = 0;
    if (conn >= t->nprobes) {
        if (!t->end_due || t->end_sent_ns != 0) {
            return 0;
        }
        *tag = TAG_SIDE;
        t->end_sent_ns = bench_now_ns();
        memcpy(buf, t->end_req, t->end_len);
        return t->end_len;
    }
    const char *tok = token_at(&t->tf, rng_next(&t->rng) % t->tf.n);
    memcpy(buf, t->probe_prefix, t->probe_len);
    memcpy(buf + t->probe_len, tok, TOKEN_LEN);
    return t->probe_len + TOKEN_LEN;
}

static bool trial_done(void *arg, unsigned conn, uint32_t tag, int status, const char *body,
                       size_t len, uint64_t sent_ns, uint64_t now_ns)
{
    (void)conn;
    trial *t = arg;
    if (tag & TAG_SIDE) {
        t->end_status = status;
        t->ack_ns = now_ns;
        t->end_done = true;
        return true;
    }
    if (status != 200) {
        return true;
    }
    bool active = len > 14 && memcmp(body, "{\"active\":true,", 15) == 0;
    if (t->end_done && sent_ns >= t->ack_ns) {
        t->after++;
        t->stale += active ? 1 : 0;
        t->after_inactive += active ? 0 : 1;
        return !active;
    }
    t->active_before += active && !t->end_done ? 1 : 0;
    return true;
}

static bool trial_tick(void *arg, uint64_t now_ns)
{
    trial *t = arg;
    if (t->t_start == 0) {
        t->t_start = now_ns;
    }
    if (!t->end_due && now_ns - t->t_start >= t->half_ns) {
        t->end_due = true;
        load_wake(load_current(), 0);
    }
    return true;
}

static int make_tree(const bench_opts *o, const char *data, const char *agent, long k, unsigned r,
                     char *path, size_t cap)
{
    char sub[64], kids[32], *out = NULL, sid[160];
    snprintf(sub, sizeof sub, "bench-cascade-%ld-%u", k, r);
    char *a1[] = {(char *)o->tokenctl,
                  "--data",
                  (char *)data,
                  "session",
                  "create",
                  "--sub",
                  sub,
                  "--ttl",
                  "86400",
                  NULL};
    int rc = bench_run(a1, &out);
    if (rc != 0 || json_get_str(out, "sid", sid, sizeof sid) != 0) {
        free(out);
        return -1;
    }
    free(out);
    snprintf(kids, sizeof kids, "%ld", k);
    snprintf(path, cap, "%s/tree-%ld-%u.txt", data, k, r);
    char *a2[] = {(char *)o->tokenctl,
                  "--data",
                  (char *)data,
                  "token",
                  "fanout",
                  "--sid",
                  sid,
                  "--client",
                  (char *)agent,
                  "--scope",
                  "read",
                  "--children",
                  kids,
                  "--ttl",
                  "86400",
                  "--out",
                  path,
                  NULL};
    out = NULL;
    rc = bench_run(a2, &out); /* its summary is not ours to print */
    free(out);
    return rc == 0 ? 0 : -1;
}

static int run_trial(const bench_opts *o, const seeded *s, trial *t, bench_series *se)
{
    char dummy[TOKEN_LEN];
    memset(dummy, 'x', sizeof dummy);
    t->probe_len = form_request(t->probe_prefix, sizeof t->probe_prefix, "/introspect", s->rs_authz,
                                dummy, TOKEN_LEN) -
                   TOKEN_LEN;
    t->end_len = form_request(t->end_req, sizeof t->end_req, "/revoke", s->agent_authz,
                              token_at(&t->tf, 0), TOKEN_LEN);
    t->rng = bench_now_ns() | 1;
    t->nprobes = o->conns;
    t->half_ns = (uint64_t)(o->duration_s * 0.5e9);
    load_cfg cfg = {.port = s->srv.port,
                    .conns = o->conns,
                    .nside = 1,
                    .duration_s = o->duration_s,
                    .label = se->name,
                    .progress = o->progress,
                    .arg = t,
                    .make = trial_make,
                    .done = trial_done,
                    .tick = trial_tick};
    load_result *res = malloc(sizeof *res);
    int rc = res ? load_run_once(&cfg, res) : -1;
    if (rc == 0) {
        series_add_run(se, res, NULL);
    }
    free(res);
    return rc;
}

int scen_cascade(const bench_opts *o, bench_report *rp)
{
    size_t ks[KS_MAX];
    int nk = parse_sizes(o->k_list[0] ? o->k_list : "1,1000,100000", ks, KS_MAX);
    unsigned rep = o->repeat ? (o->repeat < REPEAT_MAX ? o->repeat : REPEAT_MAX) : 3;
    seeded *s = calloc(1, sizeof *s);
    if (nk < 1 || s == NULL || bench_mkdtemp("data", s->data, sizeof s->data) != 0) {
        free(s);
        return -1;
    }
    int rc = ctl_client_add(o, s->data, "agent", s->agent_id, sizeof s->agent_id, s->agent_secret,
                            sizeof s->agent_secret);
    if (rc == 0) {
        rc = ctl_client_add(o, s->data, "resource_server", s->rs_id, sizeof s->rs_id, s->rs_secret,
                            sizeof s->rs_secret);
    }
    basic_header(s->agent_id, s->agent_secret, s->agent_authz, sizeof s->agent_authz);
    basic_header(s->rs_id, s->rs_secret, s->rs_authz, sizeof s->rs_authz);
    static char paths[KS_MAX][REPEAT_MAX][300];
    for (int i = 0; rc == 0 && i < nk; i++) {
        uint64_t t0 = bench_now_ns();
        for (unsigned r = 0; rc == 0 && r < rep; r++) {
            rc = make_tree(o, s->data, s->agent_id, (long)ks[i], r, paths[i][r], 300);
        }
        bench_log("K=%zu: %u trees in %.1f s", ks[i], rep, (double)(bench_now_ns() - t0) / 1e9);
    }
    if (rc == 0) {
        rc = tokend_start(o->tokend, s->data, o->server_cpu, &s->srv);
    }
    snprintf(rp->table_name, sizeof rp->table_name, "trials");
    const char *cols[] = {"k",     "repeat",           "end_latency_us", "end_status",
                          "stale", "probes_after_ack", "active_before",  "probe_rps"};
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
        snprintf(rp->cols[c], sizeof rp->cols[c], "%s", cols[c]);
    }
    rp->ncols = (unsigned)(sizeof cols / sizeof cols[0]);
    double lat[KS_MAX][REPEAT_MAX];
    uint64_t stale = 0;
    bool sane = true;
    /* Trials interleaved (K1, K2, K3, K1, …): disk and machine noise spreads
     * over every K instead of landing on one. */
    for (unsigned r = 0; rc == 0 && r < rep; r++) {
        for (int i = 0; rc == 0 && i < nk; i++) {
            char name[48];
            snprintf(name, sizeof name, "probes K=%zu", ks[i]);
            bench_series *se = report_series(rp, name);
            trial *t = calloc(1, sizeof *t);
            rc = t ? token_file_open(paths[i][r], &t->tf) : -1;
            if (rc == 0) {
                rc = run_trial(o, s, t, se);
            }
            if (rc == 0) {
                lat[i][r] = t->end_done ? (double)(t->ack_ns - t->end_sent_ns) / 1e3 : -1;
                stale += t->stale;
                sane = sane && t->end_status == 200 && t->active_before > 0 && t->after > 0;
                double *row = rp->rows[rp->nrows < TABLE_ROWS ? rp->nrows++ : TABLE_ROWS - 1];
                double v[] = {(double)ks[i],
                              r,
                              lat[i][r],
                              t->end_status,
                              (double)t->stale,
                              (double)t->after,
                              (double)t->active_before,
                              se->rounds[se->nrounds - 1].rps};
                memcpy(row, v, sizeof v);
                bench_log("K=%zu #%u: end %.0f us (status %d), %llu probes after the 200, "
                          "%llu stale",
                          ks[i], r, lat[i][r], t->end_status, (unsigned long long)t->after,
                          (unsigned long long)t->stale);
            }
            if (t != NULL) {
                token_file_close(&t->tf);
            }
            free(t);
        }
    }
    for (int i = 0; rc == 0 && i < nk; i++) {
        double med[REPEAT_MAX];
        memcpy(med, lat[i], sizeof(double) * rep);
        char mname[48];
        snprintf(mname, sizeof mname, "end_latency_us_k%zu", ks[i]);
        report_metric(rp, mname, median(med, rep));
    }
    if (rc == 0) {
        double first = rp->metrics[rp->nmetrics - (unsigned)nk].value;
        double last = rp->metrics[rp->nmetrics - 1].value;
        report_metric(rp, "stale_answers", (double)stale);
        report_metric(rp, "ratio_end_latency", last / first);
        report_target(rp, "end_latency_ratio", last / first, 1.5, true,
                      "median end latency at the largest K / at the smallest");
        report_target(rp, "stale_answers", (double)stale, 0, true,
                      "active:true answers to probes sent after the 200");
        if (stale > 0) {
            bench_log("cascade: %llu active:true answers after an end request's 200",
                      (unsigned long long)stale);
            rc = 1;
        }
        if (!sane) {
            bench_log("cascade: a trial had no active answers before the end, no probes "
                      "after it, or the end request failed");
            rc = -1;
        }
    }
    server_stop(&s->srv);
    if (!o->keep) {
        bench_rmtree(s->data);
    }
    free(s);
    return rc;
}

/* ---- revoke -----------------------------------------------------------------------------------
 */

typedef struct rv {
    const seeded *s;
    char prefix[1024];
    size_t prefix_len, next, end; /* this turn revokes tokens [next, end) */
} rv;

static size_t rv_make(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag)
{
    (void)conn;
    (void)cap;
    rv *v = arg;
    *tag = 0;
    if (v->next >= v->end) {
        return 0;
    }
    memcpy(buf, v->prefix, v->prefix_len);
    memcpy(buf + v->prefix_len, token_at(&v->s->tf, v->next++), TOKEN_LEN);
    return v->prefix_len + TOKEN_LEN;
}

static bool rv_done(void *arg, unsigned conn, uint32_t tag, int status, const char *body,
                    size_t len, uint64_t sent_ns, uint64_t now_ns)
{
    (void)arg, (void)conn, (void)tag, (void)body, (void)sent_ns, (void)now_ns;
    return status != 200 || len == 0;
}

static void rv_init(rv *v, const seeded *s)
{
    v->s = s;
    char dummy[TOKEN_LEN];
    memset(dummy, 'x', sizeof dummy);
    v->prefix_len =
        form_request(v->prefix, sizeof v->prefix, "/revoke", s->agent_authz, dummy, TOKEN_LEN) -
        TOKEN_LEN;
}

/* One turn: revoke the store's tokens up to end (each once), at most
 * --duration seconds; adds to *failed the requests not answered 200. */
static int rv_turn(const bench_opts *o, rv *v, size_t end, bench_series *se, uint64_t *failed)
{
    v->end = end;
    if (v->next >= end) {
        return 0;
    }
    proc_cpu mark;
    series_window(se, &v->s->srv, true, &mark);
    load_cfg cfg = {.port = v->s->srv.port,
                    .conns = o->conns,
                    .duration_s = o->duration_s,
                    .max_requests = end - v->next,
                    .label = se->name,
                    .progress = o->progress,
                    .arg = v,
                    .drain = true, /* every sent revocation answered: none left half-done */
                    .make = rv_make,
                    .done = rv_done};
    load_result *res = malloc(sizeof *res);
    int rc = res ? load_run_once(&cfg, res) : -1;
    if (rc == 0) {
        series_window(se, &v->s->srv, false, &mark);
        series_add_run(se, res, &mark);
        for (int k = 0; k < ERR_KINDS; k++) {
            *failed += res->errors[k];
        }
        bench_log("%-26s %9.0f revocations/s  server %6.2f us each", se->name,
                  res->seconds > 0 ? (double)res->ok / res->seconds : 0,
                  se->rounds[se->nrounds - 1].cpu_us_per_req);
    }
    free(res);
    return rc;
}

static double ok_per_s(const bench_series *se)
{
    return se->r.seconds > 0 ? (double)se->r.ok / se->r.seconds : 0;
}

/* Every revoked token must now be inactive (skipped when some were refused). */
static int rv_check(const bench_opts *o, const rv *v, uint64_t failed, bench_report *rp,
                    const char *metric)
{
    if (failed > 0) { /* reported above; the check needs every token revoked */
        bench_log("revocations not answered 200: %llu; the inactive check is skipped",
                  (unsigned long long)failed);
        return 0;
    }
    size_t sample = v->next < 1000 ? v->next : 1000;
    report_metric(rp, metric, (double)sample);
    return check_revoked(o, v->s, sample);
}

/* Without --baseline: one run over every token (at most --duration). With
 * it: the baseline binary gets its own store (seeded by its own tokenctl),
 * and the two revoke their tokens in --rounds alternating turns, a share of
 * the tokens each, the order rotated every round. */
int scen_revoke(const bench_opts *o, bench_report *rp)
{
    size_t n = first_size(o->tokens_list);
    seeded *s = calloc(2, sizeof *s);
    rv *v = calloc(2, sizeof *v);
    int rc = s && v ? seeded_start(o, n ? n : 1000000, &s[0]) : -1;
    if (rc != 0) {
        free(s);
        free(v);
        return -1;
    }
    bool have_base = o->baseline != NULL &&
                     seeded_start_bins(o, s[0].tf.n, o->baseline, o->baseline_tokenctl, &s[1]) == 0;
    if (o->baseline != NULL && !have_base) {
        bench_log("baseline %s (tokenctl %s) did not start: no baseline series", o->baseline,
                  o->baseline_tokenctl);
    }
    unsigned nt = have_base ? 2 : 1, rounds = have_base ? (o->rounds ? o->rounds : 1) : 1;
    bench_series *se[2] = {report_series(rp, "tokend revoke"),
                           have_base ? report_series(rp, "tokend (baseline) revoke") : NULL};
    uint64_t failed[2] = {0, 0};
    for (unsigned i = 0; i < nt; i++) {
        rv_init(&v[i], &s[i]);
    }
    for (unsigned r = 0; rc == 0 && r < rounds; r++) {
        for (unsigned k = 0; rc == 0 && k < nt; k++) {
            unsigned i = (k + r) % nt;
            size_t end = s[i].tf.n * (r + 1) / rounds;
            rc = rv_turn(o, &v[i], end, se[i], &failed[i]);
        }
    }
    if (rc == 0) {
        double per_s = ok_per_s(se[0]);
        report_metric(rp, "tokens", (double)s[0].tf.n);
        report_metric(rp, "revocations", (double)se[0]->r.ok);
        report_metric(rp, "revocations_per_s", per_s);
        report_metric(rp, "ack_p50_us", (double)hist_quantile(&se[0]->r.lat, 0.5) / 1e3);
        report_metric(rp, "ack_p99_us", (double)hist_quantile(&se[0]->r.lat, 0.99) / 1e3);
        report_metric(rp, "server_us_per_revocation", series_cpu_us(se[0]));
        report_target(rp, "durable_revocations_per_s", per_s, 100000, false,
                      "200s per second, each after its group commit's fsync");
        if (have_base) {
            report_metric(rp, "baseline_revocations_per_s", ok_per_s(se[1]));
            report_metric(rp, "baseline_server_us_per_revocation", series_cpu_us(se[1]));
            report_metric(rp, "ratio_throughput_vs_baseline", per_s / ok_per_s(se[1]));
            report_metric(rp, "ratio_server_cpu_vs_baseline",
                          series_cpu_us(se[1]) / series_cpu_us(se[0]));
            report_pair(rp, "revoke", se[0], se[1], "");
        }
        if (se[0]->r.ok == 0 || (have_base && se[1]->r.ok == 0)) {
            rc = -1;
        }
    }
    if (rc == 0) {
        rc = rv_check(o, &v[0], failed[0], rp, "revoked_checked");
    }
    if (rc == 0 && have_base) {
        rc = rv_check(o, &v[1], failed[1], rp, "baseline_revoked_checked");
    }
    if (have_base) {
        seeded_stop(o, &s[1]);
    }
    seeded_stop(o, &s[0]);
    free(s);
    free(v);
    return rc;
}
