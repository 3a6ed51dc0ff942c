/*
 * The report: what a scenario measured, as a table on stdout and as JSON.
 *
 * The JSON is the regression record, so its shape is fixed (schema
 * "tokend-bench/1", described in the README): scenario, time, machine, config,
 * series (one per thing loaded: requests, req/s, latency percentiles in µs,
 * errors by kind, server CPU per request, per-round figures and the
 * non-empty histogram buckets), metrics (flat name → number), targets
 * (value, threshold, met) and one optional scenario table (columns, rows).
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

bench_series *report_series(bench_report *rp, const char *name)
{
    for (unsigned i = 0; i < rp->nseries; i++) {
        if (strcmp(rp->series[i].name, name) == 0) {
            return &rp->series[i];
        }
    }
    bench_series *s = &rp->series[rp->nseries < SERIES_MAX ? rp->nseries++ : SERIES_MAX - 1];
    memset(s, 0, sizeof *s);
    hist_reset(&s->r.lat);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

void report_metric(bench_report *rp, const char *name, double v)
{
    if (rp->nmetrics < METRICS_MAX) {
        snprintf(rp->metrics[rp->nmetrics].name, sizeof rp->metrics[0].name, "%s", name);
        rp->metrics[rp->nmetrics++].value = v;
    }
}

void report_target(bench_report *rp, const char *name, double v, double threshold, bool at_most,
                   const char *note)
{
    if (rp->ntargets >= TARGETS_MAX) {
        return;
    }
    bench_target *t = &rp->targets[rp->ntargets++];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->note, sizeof t->note, "%s", note);
    t->value = v;
    t->threshold = threshold;
    t->at_most = at_most;
    t->met = isfinite(v) && (at_most ? v <= threshold : v >= threshold);
}

void report_pair(bench_report *rp, const char *name, const bench_series *after,
                 const bench_series *before, const char *ratio)
{
    if (rp->npairs >= PAIRS_MAX || after == NULL || before == NULL) {
        return;
    }
    snprintf(rp->pairs[rp->npairs].name, sizeof rp->pairs[0].name, "%s", name);
    rp->pairs[rp->npairs].after = (unsigned)(after - rp->series);
    rp->pairs[rp->npairs].before = (unsigned)(before - rp->series);
    snprintf(rp->pairs[rp->npairs].ratio, sizeof rp->pairs[0].ratio, "%s", ratio ? ratio : "");
    rp->npairs++;
}

double report_metric_get(const bench_report *rp, const char *name)
{
    for (unsigned i = 0; i < rp->nmetrics; i++) {
        if (strcmp(rp->metrics[i].name, name) == 0) {
            return rp->metrics[i].value;
        }
    }
    return NAN;
}

double series_rps(const bench_series *s)
{
    return s->r.seconds > 0 ? (double)s->r.requests / s->r.seconds : 0;
}

double series_cpu_us(const bench_series *s)
{
    return s->have_cpu && s->r.requests ? (double)s->cpu.total_ns / 1e3 / (double)s->r.requests
                                        : -1;
}

static uint64_t errors_total(const load_result *r)
{
    uint64_t n = 0;
    for (int e = 0; e < ERR_KINDS; e++) {
        n += r->errors[e];
    }
    return n;
}

/* ---- Table ---------------------------------------------------------------------------------- */

void report_table(const bench_report *rp, FILE *f)
{
    fprintf(f, "\n%s  (load average before: %.2f %.2f %.2f)\n\n", rp->scenario, rp->load_before[0],
            rp->load_before[1], rp->load_before[2]);
    fprintf(f, "%-34s %10s %10s %9s %9s %9s %9s %9s %8s %9s\n", "series", "requests", "req/s",
            "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "errors", "srv us/req");
    for (unsigned i = 0; i < rp->nseries; i++) {
        const bench_series *s = &rp->series[i];
        const hist *h = &s->r.lat;
        fprintf(f, "%-34s %10llu %10.0f %9.1f %9.1f %9.1f %9.1f %9.1f %8llu %9.2f\n", s->name,
                (unsigned long long)s->r.requests, series_rps(s),
                (double)hist_quantile(h, 0.5) / 1e3, (double)hist_quantile(h, 0.9) / 1e3,
                (double)hist_quantile(h, 0.99) / 1e3, (double)hist_quantile(h, 0.999) / 1e3,
                (double)h->max / 1e3, (unsigned long long)errors_total(&s->r), series_cpu_us(s));
    }
    if (rp->npairs > 0) {
        fprintf(f, "\nbefore (baseline) / after:\n%-12s %12s %12s %8s %14s %14s %9s\n", "step",
                "req/s before", "req/s after", "ratio", "us/req before", "us/req after",
                "cpu ratio");
        for (unsigned i = 0; i < rp->npairs; i++) {
            const bench_series *a = &rp->series[rp->pairs[i].after];
            const bench_series *b = &rp->series[rp->pairs[i].before];
            fprintf(f, "%-12s %12.0f %12.0f %8.3f %14.2f %14.2f %9.3f\n", rp->pairs[i].name,
                    series_rps(b), series_rps(a), series_rps(a) / series_rps(b), series_cpu_us(b),
                    series_cpu_us(a), series_cpu_us(b) / series_cpu_us(a));
        }
    }
    if (rp->nrows > 0) {
        fprintf(f, "\n%s:\n", rp->table_name);
        for (unsigned c = 0; c < rp->ncols; c++) {
            fprintf(f, "%18s", rp->cols[c]);
        }
        fputc('\n', f);
        for (unsigned r = 0; r < rp->nrows; r++) {
            for (unsigned c = 0; c < rp->ncols; c++) {
                fprintf(f, "%18.6g", rp->rows[r][c]);
            }
            fputc('\n', f);
        }
    }
    fputc('\n', f);
    for (unsigned i = 0; i < rp->nmetrics; i++) {
        fprintf(f, "  %-32s %.6g\n", rp->metrics[i].name, rp->metrics[i].value);
    }
    for (unsigned i = 0; i < rp->ntargets; i++) {
        const bench_target *t = &rp->targets[i];
        fprintf(f, "  target %-25s %10.4g %s %-8g %-7s (%s)\n", t->name, t->value,
                t->at_most ? "<=" : ">=", t->threshold, t->met ? "met" : "NOT MET", t->note);
    }
}

/* ---- JSON ------------------------------------------------------------------------------------ */

typedef struct jw {
    FILE *f;
    unsigned depth;
    bool first[16];
} jw;

static void jw_sep(jw *w, const char *key)
{
    if (!w->first[w->depth]) {
        fputc(',', w->f);
    }
    w->first[w->depth] = false;
    if (key != NULL) {
        fprintf(w->f, "\"%s\":", key); /* keys are our own identifiers */
    }
}

static void jw_open(jw *w, const char *key, char c)
{
    jw_sep(w, key);
    fputc(c, w->f);
    w->depth = w->depth < 15 ? w->depth + 1 : w->depth;
    w->first[w->depth] = true;
}

static void jw_close(jw *w, char c)
{
    fputc(c, w->f);
    w->depth = w->depth > 0 ? w->depth - 1 : 0;
}

static void jw_num(jw *w, const char *key, double v)
{
    jw_sep(w, key);
    if (!isfinite(v)) {
        fputs("null", w->f);
    } else if (v == floor(v) && fabs(v) < 1e15) {
        fprintf(w->f, "%.0f", v);
    } else {
        fprintf(w->f, "%.6g", v);
    }
}

static void jw_str(jw *w, const char *key, const char *s)
{
    jw_sep(w, key);
    fputc('"', w->f);
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            fprintf(w->f, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(w->f, "\\u%04x", c);
        } else {
            fputc(c, w->f);
        }
    }
    fputc('"', w->f);
}

static void json_machine(jw *w, const bench_report *rp)
{
    struct utsname u;
    uname(&u);
    char model[128] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    for (int n = 0; f != NULL && n < 64 && fgets(line, sizeof line, f); n++) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && c != NULL) {
            snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    double now[3] = {0, 0, 0};
    getloadavg(now, 3);
    jw_open(w, "machine", '{');
    jw_num(w, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    jw_str(w, "cpu_model", model);
    jw_str(w, "kernel", u.release);
    jw_open(w, "loadavg_before", '[');
    for (int i = 0; i < 3; i++) {
        jw_num(w, NULL, rp->load_before[i]);
    }
    jw_close(w, ']');
    jw_open(w, "loadavg_after", '[');
    for (int i = 0; i < 3; i++) {
        jw_num(w, NULL, now[i]);
    }
    jw_close(w, ']');
    jw_close(w, '}');
}

static void json_config(jw *w, const bench_opts *o)
{
    jw_open(w, "config", '{');
    jw_num(w, "connections", o->conns);
    jw_num(w, "duration_s", o->duration_s);
    jw_num(w, "warmup_s", o->warmup_s);
    jw_num(w, "rate", o->rate);
    jw_num(w, "rounds", o->rounds);
    jw_num(w, "cpu", o->cpu);
    jw_num(w, "server_cpu", o->server_cpu);
    jw_str(w, "tokens", o->tokens_list);
    jw_str(w, "k", o->k_list);
    jw_num(w, "repeat", o->repeat);
    jw_num(w, "unknown_share", o->unknown_share);
    jw_num(w, "revoked_share", o->revoked_share);
    jw_str(w, "grant", o->grant ? o->grant : "");
    jw_num(w, "turn_ms", o->turn_ms);
    jw_num(w, "skip_ms", o->skip_ms);
    jw_num(w, "control", o->control ? 1 : 0);
    jw_num(w, "workers", o->workers);
    jw_str(w, "baseline", o->baseline ? o->baseline : "");
    jw_close(w, '}');
}

static void json_series(jw *w, const bench_series *s)
{
    const hist *h = &s->r.lat;
    jw_open(w, NULL, '{');
    jw_str(w, "name", s->name);
    jw_num(w, "requests", (double)s->r.requests);
    jw_num(w, "ok", (double)s->r.ok);
    jw_num(w, "seconds", s->r.seconds);
    jw_num(w, "rps", series_rps(s));
    jw_open(w, "latency_us", '{');
    jw_num(w, "mean", hist_mean(h) / 1e3);
    jw_num(w, "p50", (double)hist_quantile(h, 0.5) / 1e3);
    jw_num(w, "p90", (double)hist_quantile(h, 0.9) / 1e3);
    jw_num(w, "p99", (double)hist_quantile(h, 0.99) / 1e3);
    jw_num(w, "p999", (double)hist_quantile(h, 0.999) / 1e3);
    jw_num(w, "max", (double)h->max / 1e3);
    jw_close(w, '}');
    jw_open(w, "errors", '{');
    for (int e = 0; e < ERR_KINDS; e++) {
        jw_num(w, bench_err_names[e], (double)s->r.errors[e]);
    }
    jw_close(w, '}');
    jw_num(w, "server_cpu_us_per_req", series_cpu_us(s));
    uint64_t ticks = s->cpu.user_ticks + s->cpu.sys_ticks;
    jw_num(w, "server_user_share",
           s->have_cpu && ticks ? (double)s->cpu.user_ticks / (double)ticks : -1);
    jw_num(w, "client_cpu_share", s->r.seconds > 0 ? s->r.client_cpu_ns / 1e9 / s->r.seconds : 0);
    jw_open(w, "rounds", '[');
    for (unsigned i = 0; i < s->nrounds; i++) {
        jw_open(w, NULL, '{');
        jw_num(w, "rps", s->rounds[i].rps);
        jw_num(w, "p99_us", s->rounds[i].p99_us);
        jw_num(w, "server_cpu_us_per_req", s->rounds[i].cpu_us_per_req);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_open(w, "histogram_us", '['); /* [bucket low bound in µs, count] */
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        if (h->b[i] != 0) {
            jw_open(w, NULL, '[');
            jw_num(w, NULL, (double)hist_bucket_low(i) / 1e3);
            jw_num(w, NULL, (double)h->b[i]);
            jw_close(w, ']');
        }
    }
    jw_close(w, ']');
    jw_close(w, '}');
}

/* before_after: [{name, after, before (series names), rps_after, rps_before,
 * ratio_throughput, server_us_after, server_us_before, ratio_server_cpu
 * (before / after: above 1 when the new one spends less), and with turns
 * ratio_turn_median, ratio_ci95}]. */
static void json_pairs(jw *w, const bench_report *rp)
{
    jw_open(w, "before_after", '[');
    for (unsigned i = 0; i < rp->npairs; i++) {
        const bench_series *a = &rp->series[rp->pairs[i].after];
        const bench_series *b = &rp->series[rp->pairs[i].before];
        jw_open(w, NULL, '{');
        jw_str(w, "name", rp->pairs[i].name);
        jw_str(w, "after", a->name);
        jw_str(w, "before", b->name);
        jw_num(w, "rps_after", series_rps(a));
        jw_num(w, "rps_before", series_rps(b));
        jw_num(w, "ratio_throughput", series_rps(a) / series_rps(b));
        jw_num(w, "server_us_after", series_cpu_us(a));
        jw_num(w, "server_us_before", series_cpu_us(b));
        jw_num(w, "ratio_server_cpu", series_cpu_us(b) / series_cpu_us(a));
        if (rp->pairs[i].ratio[0] != '\0') {
            char m[64];
            snprintf(m, sizeof m, "%s_turn_median", rp->pairs[i].ratio);
            jw_num(w, "ratio_turn_median", report_metric_get(rp, m));
            snprintf(m, sizeof m, "%s_ci95", rp->pairs[i].ratio);
            jw_num(w, "ratio_ci95", report_metric_get(rp, m));
        }
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

int report_json(const bench_report *rp, const char *path)
{
    jw w = {.f = fopen(path, "w")};
    if (w.f == NULL) {
        bench_log("cannot write %s", path);
        return -1;
    }
    w.first[0] = true;
    jw_open(&w, NULL, '{');
    jw_str(&w, "schema", "tokend-bench/1");
    jw_str(&w, "scenario", rp->scenario);
    jw_num(&w, "time", (double)rp->started);
    json_machine(&w, rp);
    json_config(&w, rp->o);
    jw_open(&w, "series", '[');
    for (unsigned i = 0; i < rp->nseries; i++) {
        json_series(&w, &rp->series[i]);
    }
    jw_close(&w, ']');
    jw_open(&w, "metrics", '{');
    for (unsigned i = 0; i < rp->nmetrics; i++) {
        jw_num(&w, rp->metrics[i].name, rp->metrics[i].value);
    }
    jw_close(&w, '}');
    jw_open(&w, "targets", '[');
    for (unsigned i = 0; i < rp->ntargets; i++) {
        const bench_target *t = &rp->targets[i];
        jw_open(&w, NULL, '{');
        jw_str(&w, "name", t->name);
        jw_num(&w, "value", t->value);
        jw_str(&w, "op", t->at_most ? "<=" : ">=");
        jw_num(&w, "threshold", t->threshold);
        jw_sep(&w, "met");
        fputs(t->met ? "true" : "false", w.f);
        jw_str(&w, "note", t->note);
        jw_close(&w, '}');
    }
    jw_close(&w, ']');
    json_pairs(&w, rp);
    jw_open(&w, "table", '{');
    jw_str(&w, "name", rp->table_name);
    jw_open(&w, "columns", '[');
    for (unsigned c = 0; c < rp->ncols; c++) {
        jw_str(&w, NULL, rp->cols[c]);
    }
    jw_close(&w, ']');
    jw_open(&w, "rows", '[');
    for (unsigned r = 0; r < rp->nrows; r++) {
        jw_open(&w, NULL, '[');
        for (unsigned c = 0; c < rp->ncols; c++) {
            jw_num(&w, NULL, rp->rows[r][c]);
        }
        jw_close(&w, ']');
    }
    jw_close(&w, ']');
    jw_close(&w, '}');
    jw_close(&w, '}');
    fputc('\n', w.f);
    return fclose(w.f) == 0 ? 0 : -1;
}
