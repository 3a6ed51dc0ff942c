/*
 * GET /metrics in the Prometheus text format (version 0.0.4), and the
 * counting that feeds it. Served on the metrics listener only (app.c); when
 * the config holds a metrics-token, a scrape must carry it as a bearer
 * credential (compared as SHA-256 hashes, in constant time).
 *
 * Each worker counts into its own context with a relaxed load and store (it
 * is the only writer), so the hot path has no locked instruction and no
 * shared cache line; serving /metrics sums every worker's counters with
 * relaxed loads, which is exact enough for monotonic counters. The text is
 * built with plain appends (no snprintf) into the worker's page buffer;
 * zero request counters are left out to keep the page within one response.
 *
 * Agent access (tokend_agent_requests_total{client,resource,result}) comes
 * from the agent_access DBI, i.e. what the workers folded into the store (at
 * most about a second behind). Its cardinality is bounded: at most
 * TK_METRICS_AGENT_SERIES pairs are listed, and never more than the page has room
 * for; tokend_agent_pairs says how many pairs exist in all.
 */
#include "endpoints_int.h"
#include "tokend/ssf.h"

#include "tokend/crypto.h"
#include "tokend/http.h"
#include "tokend/log.h"

#include <string.h>

static const int counted_status[EP_STATUSES - 1] = {200, 202, 400, 401, 403, 404,
                                                    405, 409, 413, 500, 503};

static const char *const fa_result_name[EP_FA_RESULTS] = {
    "allowed",          "no_token",    "invalid_token", "wrong_audience",     "insufficient_scope",
    "unknown_resource", "bad_request", "unavailable",   "invalid_dpop_proof",
};

/* Room one pair's lines may take at most (two lines, labels at their limits,
 * escaped): a pair is listed only when this much is left. */
#define AGENT_PAIR_ROOM (2 * (64 + 2 * TK_ID_MAX + 2 * TK_REASON_MAX + 24))

/* Upper bounds of the duration buckets, in ns, and their labels. */
static const uint64_t dur_bound_ns[EP_DUR_BUCKETS] = {
    50000,    100000,   250000,   500000,    1000000,   2500000,   5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000,
};
static const char *const dur_label[EP_DUR_BUCKETS] = {
    "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01",    "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1",
};

_Static_assert(sizeof(ep_metrics) % sizeof(uint64_t) == 0, "counters only");

static size_t status_index(int status)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(counted_status); i++) {
        if (counted_status[i] == status) {
            return i;
        }
    }
    return EP_STATUSES - 1;
}

void ep_metrics_request(ep_worker *w, unsigned row, int status, uint64_t dur_ns)
{
    TK_ASSERT(row < w->app->nroutes && row < TK_ROUTES_MAX);
    ep_add(&w->m.requests[row][status_index(status)], 1);
    size_t b = 0;
    while (b < EP_DUR_BUCKETS && dur_ns > dur_bound_ns[b]) {
        b++;
    }
    ep_add(&w->m.dur[b], 1);
    ep_add(&w->m.dur_count, 1);
    ep_add(&w->m.dur_sum_ns, dur_ns);
}

/* ---- Text building ------------------------------------------------------------ */

typedef struct text {
    char *buf;
    size_t cap, len;
    bool overflow;
} text;

static void put_n(text *t, const char *s, size_t n)
{
    if (t->overflow || n > t->cap - t->len) {
        t->overflow = true;
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static void put(text *t, const char *s)
{
    put_n(t, s, strlen(s));
}

static void put_u64(text *t, uint64_t v)
{
    char d[24];
    put_n(t, d, tk_fmt_u64(v, d));
}

/* name + " " + value + "\n" */
static void line(text *t, const char *name, uint64_t v)
{
    put(t, name);
    put(t, " ");
    put_u64(t, v);
    put(t, "\n");
}

static void type(text *t, const char *name, const char *kind)
{
    put(t, "# TYPE ");
    put(t, name);
    put(t, " ");
    put(t, kind);
    put(t, "\n");
}

/* A metric without labels: its TYPE line, then its value. */
static void metric(text *t, const char *name, const char *kind, uint64_t v)
{
    type(t, name, kind);
    line(t, name, v);
}

/* Nanoseconds as decimal seconds with nine fractional digits. */
static void put_seconds(text *t, uint64_t ns)
{
    char frac[24];
    put_u64(t, ns / 1000000000u);
    put(t, ".");
    size_t n = tk_fmt_u64(ns % 1000000000u, frac);
    for (size_t i = n; i < 9; i++) {
        put(t, "0");
    }
    put_n(t, frac, n);
}

/* name + " " + ns as seconds + "\n" */
static void seconds_line(text *t, const char *name, uint64_t ns)
{
    put(t, name);
    put(t, " ");
    put_seconds(t, ns);
    put(t, "\n");
}

/* ---- Sections ------------------------------------------------------------------- */

static void sum_workers(const tk_app *app, ep_metrics *tot)
{
    memset(tot, 0, sizeof *tot);
    uint64_t *dst = (uint64_t *)tot;
    size_t n = sizeof *tot / sizeof(uint64_t);
    for (unsigned wi = 0; wi < app->nworkers; wi++) {
        const uint64_t *src = (const uint64_t *)&app->w[wi].m;
        for (size_t i = 0; i < n; i++) {
            dst[i] += ep_read(&src[i]);
        }
    }
}

/* One series per table row and status, labelled by the row (routes.c). */
static void requests_section(text *t, const tk_app *app, const ep_metrics *m)
{
    type(t, "tokend_requests_total", "counter");
    for (size_t e = 0; e < app->nroutes; e++) {
        for (size_t s = 0; s < EP_STATUSES; s++) {
            if (m->requests[e][s] == 0) {
                continue;
            }
            put(t, "tokend_requests_total{endpoint=\"");
            put(t, app->routes[e].label);
            put(t, "\",status=\"");
            if (s < EP_STATUSES - 1) {
                put_u64(t, (uint64_t)counted_status[s]);
            } else {
                put(t, "other");
            }
            line(t, "\"}", m->requests[e][s]);
        }
    }
    type(t, "tokend_introspections_total", "counter");
    line(t, "tokend_introspections_total{result=\"active\"}", m->introspect_active);
    line(t, "tokend_introspections_total{result=\"inactive\"}", m->introspect_inactive);
    type(t, "tokend_prefetch_tokens_total", "counter");
    line(t, "tokend_prefetch_tokens_total{result=\"hinted\"}", m->prefetch_hinted);
    line(t, "tokend_prefetch_tokens_total{result=\"found\"}", m->prefetch_found);
    type(t, "tokend_revocations_total", "counter");
    line(t, "tokend_revocations_total{result=\"revoked\"}", m->revoke_revoked);
    line(t, "tokend_revocations_total{result=\"noop\"}", m->revoke_noop);
    line(t, "tokend_revocations_total{result=\"forbidden\"}", m->revoke_forbidden);
    line(t, "tokend_revocations_total{result=\"unavailable\"}", m->revoke_unavailable);
}

static void forward_auth_section(text *t, const ep_metrics *m)
{
    type(t, "tokend_forward_auth_total", "counter");
    for (size_t i = 0; i < EP_FA_RESULTS; i++) {
        put(t, "tokend_forward_auth_total{result=\"");
        put(t, fa_result_name[i]);
        line(t, "\"}", m->forward_auth[i]);
    }
    metric(t, "tokend_agent_audit_overflow_total", "counter", m->audit_overflow);
    metric(t, "tokend_agent_audit_folds_total", "counter", m->audit_submitted);
    metric(t, "tokend_agent_audit_deferred_total", "counter", m->audit_deferred);
    metric(t, "tokend_agent_audit_lost_total", "counter", m->audit_lost);
}

/* A label value: '\\', '"' and newlines escaped (Prometheus text format). */
static void put_label(text *t, tk_slice v)
{
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (c == '\\' || c == '"') {
            put_n(t, "\\", 1);
            put_n(t, &c, 1);
        } else if (c == '\n') {
            put_n(t, "\\n", 2);
        } else {
            put_n(t, &c, 1);
        }
    }
}

typedef struct agent_walk {
    text *t;
    uint64_t pairs, listed;
} agent_walk;

static void agent_line(text *t, tk_slice client, tk_slice resource, const char *result, int64_t v)
{
    put(t, "tokend_agent_requests_total{client=\"");
    put_label(t, client);
    put(t, "\",resource=\"");
    put_label(t, resource);
    put(t, "\",result=\"");
    put(t, result);
    line(t, "\"}", (uint64_t)v);
}

static int agent_one(void *arg, tk_slice client, tk_slice resource, const tk_agent_access_rec *rec)
{
    agent_walk *a = arg;
    a->pairs++;
    if (a->listed >= TK_METRICS_AGENT_SERIES || a->t->cap - a->t->len < AGENT_PAIR_ROOM + 1024) {
        return 0; /* keep counting; the page keeps room for what follows */
    }
    a->listed++;
    agent_line(a->t, client, resource, "allowed", rec->allowed);
    agent_line(a->t, client, resource, "denied", rec->denied);
    return 0;
}

static void agent_section(text *t, ep_worker *w)
{
    tk_txn *txn = ep_txn(w);
    agent_walk a = {.t = t};
    type(t, "tokend_agent_requests_total", "counter");
    int rc = txn != NULL ? tk_store_each_agent_access(txn, agent_one, &a) : TK_E_STORE;
    if (rc != 0) {
        tk_log_warn("metrics_agents", "err=%s", tk_strerror(rc));
    }
    metric(t, "tokend_agent_pairs", "gauge", a.pairs);
}

static void duration_section(text *t, const ep_metrics *m)
{
    type(t, "tokend_request_duration_seconds", "histogram");
    uint64_t cum = 0;
    for (size_t b = 0; b < EP_DUR_BUCKETS; b++) {
        cum += m->dur[b];
        put(t, "tokend_request_duration_seconds_bucket{le=\"");
        put(t, dur_label[b]);
        line(t, "\"}", cum);
    }
    cum += m->dur[EP_DUR_BUCKETS];
    line(t, "tokend_request_duration_seconds_bucket{le=\"+Inf\"}", cum);
    seconds_line(t, "tokend_request_duration_seconds_sum", m->dur_sum_ns);
    line(t, "tokend_request_duration_seconds_count", m->dur_count);
}

static void committer_section(text *t, const tk_committer *c)
{
    static const char *const le[8] = {"1", "3", "7", "15", "63", "255", "1023", "+Inf"};
    tk_committer_stats s;
    tk_committer_stats_get(c, &s);
    metric(t, "tokend_commit_batches_total", "counter", s.batches);
    metric(t, "tokend_commit_requests_total", "counter", s.requests);
    type(t, "tokend_commit_batch_size", "histogram");
    uint64_t cum = 0;
    for (size_t b = 0; b < 8; b++) {
        cum += s.batch_hist[b];
        put(t, "tokend_commit_batch_size_bucket{le=\"");
        put(t, le[b]);
        line(t, "\"}", cum);
    }
    line(t, "tokend_commit_batch_size_sum", s.requests); /* each request is one batch slot */
    line(t, "tokend_commit_batch_size_count", s.batches);
    metric(t, "tokend_commit_ops_changed_total", "counter", s.ops_changed);
    metric(t, "tokend_commit_failures_total", "counter", s.failures);
    metric(t, "tokend_commit_queue_full_total", "counter", s.queue_full);
    type(t, "tokend_commit_seconds_total", "counter");
    seconds_line(t, "tokend_commit_seconds_total", s.commit_ns_total);
}

/* Cluster mode: the op log's sequences, latencies (sum/count pairs) and
 * refusals (docs/ARCHITECTURE.md §10). */
static void cluster_section(text *t, const tk_cluster *cl, const ep_metrics *m)
{
    tk_cluster_stats s;
    tk_cluster_stats_get(cl, &s);
    metric(t, "tokend_cluster_applied_sequence", "gauge", s.applied_seq);
    metric(t, "tokend_cluster_stream_sequence", "gauge", s.stream_seq);
    metric(t, "tokend_cluster_lag", "gauge",
           s.stream_seq > s.applied_seq ? s.stream_seq - s.applied_seq : 0);
    metric(t, "tokend_cluster_ready", "gauge", s.ready ? 1 : 0);
    metric(t, "tokend_cluster_connected", "gauge", s.connected ? 1 : 0);
    type(t, "tokend_cluster_staleness_seconds", "gauge");
    if (s.staleness_ms < 0) {
        put(t, "tokend_cluster_staleness_seconds +Inf\n"); /* never current yet */
    } else {
        seconds_line(t, "tokend_cluster_staleness_seconds", (uint64_t)s.staleness_ms * 1000000u);
    }
    type(t, "tokend_cluster_publish_seconds", "summary");
    seconds_line(t, "tokend_cluster_publish_seconds_sum", s.publish_ns_total);
    line(t, "tokend_cluster_publish_seconds_count", s.publish_n);
    type(t, "tokend_cluster_write_seconds", "summary");
    seconds_line(t, "tokend_cluster_write_seconds_sum", s.write_ns_total);
    line(t, "tokend_cluster_write_seconds_count", s.write_n);
    type(t, "tokend_cluster_apply_seconds", "summary");
    seconds_line(t, "tokend_cluster_apply_seconds_sum", s.apply_ns_total);
    line(t, "tokend_cluster_apply_seconds_count", s.apply_n);
    metric(t, "tokend_cluster_published_total", "counter", s.published);
    type(t, "tokend_cluster_writes_failed_total", "counter");
    line(t, "tokend_cluster_writes_failed_total{reason=\"unacked\"}", s.publish_failed);
    line(t, "tokend_cluster_writes_failed_total{reason=\"unreachable\"}", s.refused);
    line(t, "tokend_cluster_writes_failed_total{reason=\"unreplicable\"}", s.unreplicable);
    line(t, "tokend_cluster_writes_failed_total{reason=\"clock_skew\"}", s.skew_refused);
    metric(t, "tokend_cluster_resubscribes_total", "counter", s.resubscribes);
    metric(t, "tokend_cluster_unauthenticated_entries_total", "counter", s.rejected);
    metric(t, "tokend_cluster_replayed_entries_total", "counter", s.replayed);
    type(t, "tokend_cluster_stale_refusals_total", "counter");
    line(t, "tokend_cluster_stale_refusals_total{endpoint=\"introspect\"}",
         m->cluster_stale_introspect);
    line(t, "tokend_cluster_stale_refusals_total{endpoint=\"forward_auth\"}",
         m->cluster_stale_forward_auth);
}

/* tokend_outbound_requests_total{purpose,result} and the latency histogram
 * per purpose; purposes and results that never happened are left out. */
static void outbound_section(text *t, const tk_outbound *ob)
{
    tk_outbound_stats s;
    tk_outbound_stats_get(ob, &s);
    type(t, "tokend_outbound_requests_total", "counter");
    for (unsigned p = 0; p < TK_OB_PURPOSES; p++) {
        for (unsigned r = 0; r < TK_OB_RESULTS; r++) {
            if (s.requests[p][r] == 0) {
                continue;
            }
            put(t, "tokend_outbound_requests_total{purpose=\"");
            put(t, tk_outbound_purpose_name(p));
            put(t, "\",result=\"");
            put(t, tk_outbound_result_name(r));
            line(t, "\"}", s.requests[p][r]);
        }
    }
    type(t, "tokend_outbound_request_duration_seconds", "histogram");
    for (unsigned p = 0; p < TK_OB_PURPOSES; p++) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= TK_OB_DUR_BUCKETS; b++) {
            cum += s.dur[p][b];
        }
        if (cum == 0) {
            continue;
        }
        const char *name = tk_outbound_purpose_name(p);
        cum = 0;
        for (size_t b = 0; b <= TK_OB_DUR_BUCKETS; b++) {
            cum += s.dur[p][b];
            put(t, "tokend_outbound_request_duration_seconds_bucket{purpose=\"");
            put(t, name);
            put(t, "\",le=\"");
            put(t, b < TK_OB_DUR_BUCKETS ? tk_outbound_dur_label[b] : "+Inf");
            line(t, "\"}", cum);
        }
        put(t, "tokend_outbound_request_duration_seconds_sum{purpose=\"");
        put(t, name);
        put(t, "\"} ");
        put_seconds(t, s.dur_sum_ns[p]);
        put(t, "\n");
        put(t, "tokend_outbound_request_duration_seconds_count{purpose=\"");
        put(t, name);
        line(t, "\"}", cum);
    }
}

/* tokend_ssf_queue_depth{receiver}, tokend_ssf_dropped_total{receiver} and
 * tokend_ssf_deliveries_total{receiver,result}: the pusher's last scan. */
static void ssf_gauge(text *t, const char *name, const tk_ssf_stats *s, const char *result,
                      uint64_t v)
{
    put(t, name);
    put(t, "{receiver=\"");
    put(t, s->id); /* [A-Za-z0-9._-]: nothing to escape */
    if (result != NULL) {
        put(t, "\",result=\"");
        put(t, result);
    }
    put(t, "\"} ");
    put_u64(t, v);
    put(t, "\n");
}

static void ssf_section(text *t, tk_ssf *p)
{
    tk_ssf_stats st[TK_SSF_RECEIVERS_MAX];
    size_t n = tk_ssf_stats_get(p, st, TK_SSF_RECEIVERS_MAX);
    if (p == NULL) {
        return;
    }
    type(t, "tokend_ssf_queue_depth", "gauge");
    for (size_t i = 0; i < n; i++) {
        ssf_gauge(t, "tokend_ssf_queue_depth", &st[i], NULL, (uint64_t)st[i].depth);
    }
    type(t, "tokend_ssf_dropped_total", "counter");
    for (size_t i = 0; i < n; i++) {
        ssf_gauge(t, "tokend_ssf_dropped_total", &st[i], NULL, (uint64_t)st[i].dropped);
    }
    type(t, "tokend_ssf_deliveries_total", "counter");
    for (size_t i = 0; i < n; i++) {
        ssf_gauge(t, "tokend_ssf_deliveries_total", &st[i], "delivered", st[i].delivered);
        ssf_gauge(t, "tokend_ssf_deliveries_total", &st[i], "failed", st[i].failed);
    }
}

static void server_section(text *t, const tk_app_cfg *cfg)
{
    tk_server_stats s;
    memset(&s, 0, sizeof s);
    cfg->server_stats(cfg->server_stats_arg, &s);
    metric(t, "tokend_connections_accepted_total", "counter", s.accepted);
    metric(t, "tokend_connections_closed_total", "counter", s.closed);
    metric(t, "tokend_connections_active", "gauge", s.active);
    metric(t, "tokend_connections_refused_total", "counter", s.refused);
    metric(t, "tokend_connection_timeouts_total", "counter", s.timeouts);
    metric(t, "tokend_bad_requests_total", "counter", s.bad_requests);
}

/* The scrape carries "Authorization: Bearer <metrics-token>", or none is
 * configured. Both sides are hashed first, so the comparison takes the same
 * time whatever the lengths. */
static bool scrape_allowed(const ep_req *r, const char *token)
{
    if (token[0] == '\0') {
        return true;
    }
    tk_slice got;
    bool ok = r->http->authorization.len > 0 && tk_http_bearer(r->http->authorization, &got) == 0;
    uint8_t a[TK_HASH_LEN], b[TK_HASH_LEN];
    tk_sha256(ok ? got.p : "", ok ? got.len : 0, a);
    tk_sha256(token, strlen(token), b);
    return tk_ct_equal(a, b, TK_HASH_LEN) && ok;
}

void ep_metrics_serve(ep_req *r)
{
    ep_worker *w = r->w;
    const tk_app *app = w->app;
    if (!scrape_allowed(r, app->cfg.metrics_token)) {
        bool sent = r->http->authorization.len > 0;
        ep_reply_error(r, 401, "invalid_token",
                       sent ? "WWW-Authenticate: Bearer realm=\"metrics\", "
                              "error=\"invalid_token\"\r\n"
                            : "WWW-Authenticate: Bearer realm=\"metrics\"\r\n");
        return;
    }
    ep_metrics tot;
    sum_workers(app, &tot);
    text t = {.buf = w->metrics, .cap = sizeof w->metrics};
    requests_section(&t, app, &tot);
    forward_auth_section(&t, &tot);
    /* DPoP proofs refused because the replay cache could not remember them. */
    type(&t, "tokend_dpop_replay_full_total", "counter");
    line(&t, "tokend_dpop_replay_full_total", ep_dpop_seen_full(app->dpop_seen));
    duration_section(&t, &tot);
    if (app->cfg.committer != NULL) {
        committer_section(&t, app->cfg.committer);
    }
    if (app->cfg.outbound != NULL) {
        outbound_section(&t, app->cfg.outbound);
    }
    if (app->cfg.cluster != NULL) {
        cluster_section(&t, app->cfg.cluster, &tot);
    }
    if (app->cfg.server_stats != NULL) {
        server_section(&t, &app->cfg);
    }
    ssf_section(&t, __atomic_load_n(&app->ssf, __ATOMIC_ACQUIRE));
    agent_section(&t, w);
    if (t.overflow) {
        tk_log_error("response_too_big", "endpoint=metrics");
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    ep_reply(r, 200, "text/plain; version=0.0.4", NULL, t.buf, t.len);
}
