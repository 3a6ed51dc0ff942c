/*
 * The HTML report: one self-contained page (inline CSS and SVG, no script,
 * nothing fetched) so a person can look rather than read: the targets as
 * bars against their thresholds, with --baseline each step's before and
 * after side by side (throughput and server CPU per request, with the
 * per-turn spread of the ratio when the loads took turns), every series'
 * latency as a percentile spectrum (x: 0 … 99.99 % on a log scale of
 * 1/(1-q), y: µs), then the numbers.
 */
#include "bench.h"

#include <math.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

#define W  760
#define H  320
#define ML 70
#define MB 40
#define MT 20
#define MR 20

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void target_bars(FILE *f, const bench_report *rp)
{
    if (rp->ntargets == 0) {
        return;
    }
    int rowh = 34, h = rowh * (int)rp->ntargets + 10, x0 = 230, bw = W - x0 - 120;
    fprintf(f, "<h2>Targets</h2>\n<svg width=\"%d\" height=\"%d\" role=\"img\">\n", W, h);
    for (unsigned i = 0; i < rp->ntargets; i++) {
        const bench_target *t = &rp->targets[i];
        double top = fmax(fabs(t->value), fabs(t->threshold)) * 1.25;
        top = top > 0 ? top : 1;
        double v = isfinite(t->value) ? fmax(t->value, 0) : 0;
        int y = 5 + rowh * (int)i;
        fprintf(f, "<text x=\"0\" y=\"%d\" class=\"lbl\">", y + 18);
        esc(f, t->name);
        fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"22\" fill=\"%s\"/>\n",
                x0, y + 4, bw * v / top, t->met ? "#2ca02c" : "#d62728");
        double tx = x0 + bw * t->threshold / top;
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#000\" "
                "stroke-dasharray=\"4 2\"/>\n",
                tx, tx, y, y + 30);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"lbl\">%.3g %s %g</text>\n", x0 + bw + 8, y + 18,
                t->value, t->at_most ? "&lt;=" : "&gt;=", t->threshold);
    }
    fputs("</svg>\n<p class=\"note\">Dashed line: the target. Green: met.</p>\n", f);
}

/* Decimals to print v with: none from 100 up, two below. */
static int digits(double v)
{
    return fabs(v) >= 100 ? 0 : 2;
}

/* One measure of every before/after pair as two bars a row (each row
 * scaled to its larger value: the steps' rates differ by orders of
 * magnitude), the ratio after them. */
static void pair_bars(FILE *f, const bench_report *rp, bool cpu)
{
    int rowh = 40, h = rowh * (int)rp->npairs + 10, x0 = 120, bw = W - x0 - 250;
    fprintf(f, "<h3>%s</h3>\n<svg width=\"%d\" height=\"%d\" role=\"img\">\n",
            cpu ? "Server CPU per request (µs; shorter is better)" : "Throughput (req/s)", W, h);
    for (unsigned i = 0; i < rp->npairs; i++) {
        const bench_series *a = &rp->series[rp->pairs[i].after];
        const bench_series *b = &rp->series[rp->pairs[i].before];
        double va = cpu ? series_cpu_us(a) : series_rps(a);
        double vb = cpu ? series_cpu_us(b) : series_rps(b);
        double top = fmax(fmax(va, vb), 1e-9);
        int y = 5 + rowh * (int)i;
        fprintf(f, "<text x=\"0\" y=\"%d\" class=\"lbl\">", y + 20);
        esc(f, rp->pairs[i].name);
        fprintf(f,
                "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"14\" fill=\"#999\"/>"
                "<text x=\"%.1f\" y=\"%d\" class=\"tick\">before %.*f</text>\n"
                "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"14\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%d\" class=\"tick\">after %.*f</text>\n",
                x0, y + 4, bw * fmax(vb, 0) / top, x0 + bw * fmax(vb, 0) / top + 4, y + 15,
                digits(vb), vb, x0, y + 20, bw * fmax(va, 0) / top, palette[0],
                x0 + bw * fmax(va, 0) / top + 4, y + 31, digits(va), va);
        /* above 1: better (more req/s, or less CPU per request) */
        double ratio = cpu ? vb / va : va / vb;
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"lbl\" fill=\"%s\">×%.3f", x0 + bw + 110, y + 24,
                ratio >= 1 ? "#2ca02c" : "#d62728", ratio);
        char m[64];
        snprintf(m, sizeof m, "%s_ci95", rp->pairs[i].ratio);
        double ci = rp->pairs[i].ratio[0] ? report_metric_get(rp, m) : NAN;
        if (!cpu && isfinite(ci)) {
            fprintf(f, " ±%.3f", ci);
        }
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
}

/* A table cell: v in fmt, or a dash when it was not measured. */
static void td(FILE *f, const char *fmt, double v)
{
    fputs("<td>", f);
    if (isfinite(v) && v >= 0) {
        fprintf(f, fmt, v);
    } else {
        fputs("–", f);
    }
    fputs("</td>", f);
}

/* Before/after (--baseline): bars, then a table with the per-turn spread. */
static void before_after(FILE *f, const bench_report *rp)
{
    if (rp->npairs == 0) {
        return;
    }
    fputs("<h2>Before / after</h2>\n<p class=\"note\">Before: the baseline binary on its own "
          "store; after: this tokend. Ratios above 1 are better (after / before req/s; before / "
          "after server CPU per request); ± is the 95 % interval of the mean of the per-turn "
          "ratios.</p>\n",
          f);
    pair_bars(f, rp, false);
    pair_bars(f, rp, true);
    fputs("<table><tr><th>step</th><th>req/s before</th><th>req/s after</th><th>ratio</th>"
          "<th>turns: median</th><th>min … max</th><th>±95 %</th>"
          "<th>µs/req before</th><th>after</th><th>CPU ratio</th><th>p99 µs before</th>"
          "<th>after</th></tr>\n",
          f);
    for (unsigned i = 0; i < rp->npairs; i++) {
        const bench_series *a = &rp->series[rp->pairs[i].after];
        const bench_series *b = &rp->series[rp->pairs[i].before];
        const char *r = rp->pairs[i].ratio;
        char m[64];
        double med = NAN, lo = NAN, hi = NAN, ci = NAN;
        if (r[0] != '\0') {
            snprintf(m, sizeof m, "%s_turn_median", r);
            med = report_metric_get(rp, m);
            snprintf(m, sizeof m, "%s_turn_min", r);
            lo = report_metric_get(rp, m);
            snprintf(m, sizeof m, "%s_turn_max", r);
            hi = report_metric_get(rp, m);
            snprintf(m, sizeof m, "%s_ci95", r);
            ci = report_metric_get(rp, m);
        }
        fputs("<tr><td>", f);
        esc(f, rp->pairs[i].name);
        fputs("</td>", f);
        td(f, "%.0f", series_rps(b));
        td(f, "%.0f", series_rps(a));
        td(f, "%.3f", series_rps(a) / series_rps(b));
        td(f, "%.3f", med);
        if (isfinite(lo) && isfinite(hi)) {
            fprintf(f, "<td>%.3f … %.3f</td>", lo, hi);
        } else {
            fputs("<td>–</td>", f);
        }
        td(f, "%.3f", ci);
        td(f, "%.2f", series_cpu_us(b));
        td(f, "%.2f", series_cpu_us(a));
        td(f, "%.3f", series_cpu_us(b) / series_cpu_us(a));
        td(f, "%.1f", (double)hist_quantile(&b->r.lat, 0.99) / 1e3);
        td(f, "%.1f", (double)hist_quantile(&a->r.lat, 0.99) / 1e3);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* x position of quantile q on the 1/(1-q) log axis, 0 … 99.99 %. */
static double qx(double q)
{
    double d = -log10(fmax(1 - q, 1e-4)); /* 0 … 4 */
    return ML + (W - ML - MR) * d / 4.0;
}

static void spectrum(FILE *f, const bench_report *rp)
{
    double ymax = 0;
    for (unsigned i = 0; i < rp->nseries; i++) {
        ymax = fmax(ymax, (double)hist_quantile(&rp->series[i].r.lat, 0.9999) / 1e3);
    }
    if (ymax <= 0) {
        return;
    }
    double ytop = pow(10, ceil(log10(ymax)));
    ytop = ytop / 2 >= ymax ? ytop / 2 : ytop;
    int ph = H - MT - MB;
    fprintf(f, "<h2>Latency distribution</h2>\n<svg width=\"%d\" height=\"%d\" role=\"img\">\n", W,
            H);
    const char *ticks[] = {"0%", "90%", "99%", "99.9%", "99.99%"};
    for (int k = 0; k <= 4; k++) {
        double x = ML + (W - ML - MR) * k / 4.0;
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"grid\"/>"
                "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>\n",
                x, x, MT, MT + ph, x, H - MB + 16, ticks[k]);
    }
    for (int k = 0; k <= 5; k++) {
        double y = MT + ph - ph * k / 5.0;
        fprintf(f,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.4g us</text>\n",
                ML, W - MR, y, y, ML - 4, y + 4, ytop * k / 5.0);
    }
    for (unsigned i = 0; i < rp->nseries; i++) {
        const hist *h = &rp->series[i].r.lat;
        if (h->count == 0) {
            continue;
        }
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"",
                palette[i % 8]);
        for (int k = 0; k <= 80; k++) { /* 1 - 10^(-4k/80) */
            double q = 1 - pow(10, -4.0 * k / 80);
            double us = fmin((double)hist_quantile(h, q) / 1e3, ytop);
            fprintf(f, "%.1f,%.1f ", qx(q), MT + ph - ph * us / ytop);
        }
        fprintf(f, "\"/>\n<text x=\"%d\" y=\"%u\" fill=\"%s\" class=\"lbl\">", ML + 10,
                MT + 16 + 16 * i, palette[i % 8]);
        esc(f, rp->series[i].name);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n<p class=\"note\">Latency at each percentile (x: percentile on a log "
          "scale of 1/(1-q)).</p>\n",
          f);
}

static void tables(FILE *f, const bench_report *rp)
{
    fputs("<h2>Series</h2>\n<table><tr><th>series</th><th>requests</th><th>req/s</th>"
          "<th>p50 µs</th><th>p90 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>max µs</th>"
          "<th>server µs/req</th></tr>\n",
          f);
    for (unsigned i = 0; i < rp->nseries; i++) {
        const bench_series *s = &rp->series[i];
        const hist *h = &s->r.lat;
        fputs("<tr><td>", f);
        esc(f, s->name);
        fprintf(f,
                "</td><td>%llu</td><td>%.0f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
                "<td>%.1f</td><td>%.1f</td><td>%.2f</td></tr>\n",
                (unsigned long long)s->r.requests, series_rps(s),
                (double)hist_quantile(h, 0.5) / 1e3, (double)hist_quantile(h, 0.9) / 1e3,
                (double)hist_quantile(h, 0.99) / 1e3, (double)hist_quantile(h, 0.999) / 1e3,
                (double)h->max / 1e3, series_cpu_us(s));
    }
    fputs("</table>\n<h2>Metrics</h2>\n<table>\n", f);
    for (unsigned i = 0; i < rp->nmetrics; i++) {
        fputs("<tr><td>", f);
        esc(f, rp->metrics[i].name);
        fprintf(f, "</td><td>%.6g</td></tr>\n", rp->metrics[i].value);
    }
    fputs("</table>\n", f);
    if (rp->nrows == 0) {
        return;
    }
    fprintf(f, "<h2>%s</h2>\n<table><tr>", rp->table_name);
    for (unsigned c = 0; c < rp->ncols; c++) {
        fprintf(f, "<th>%s</th>", rp->cols[c]);
    }
    fputs("</tr>\n", f);
    for (unsigned r = 0; r < rp->nrows; r++) {
        fputs("<tr>", f);
        for (unsigned c = 0; c < rp->ncols; c++) {
            fprintf(f, "<td>%.6g</td>", rp->rows[r][c]);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

int report_html(const bench_report *rp, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        bench_log("cannot write %s", path);
        return -1;
    }
    struct utsname u;
    uname(&u);
    char when[64];
    time_t t = (time_t)rp->started;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>tokend-bench %s</title>\n<style>body{font:14px sans-serif;margin:2em;"
            "max-width:820px}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:2px "
            "8px;text-align:right;white-space:nowrap}th{white-space:normal}td:first-child{text-"
            "align:left}"
            ".grid{stroke:#ddd}.tick{font-size:11px;fill:#555}.lbl{font-size:13px}"
            ".note{color:#555;font-size:12px}</style></head><body>\n"
            "<h1>tokend-bench: %s</h1>\n<p>%s · kernel %s · load average before "
            "%.2f %.2f %.2f · %u connections, %.1f s per run, %u rounds</p>\n",
            rp->scenario, rp->scenario, when, u.release, rp->load_before[0], rp->load_before[1],
            rp->load_before[2], rp->o->conns, rp->o->duration_s, rp->o->rounds);
    if (rp->o->baseline != NULL) {
        fputs("<p>Baseline: ", f);
        esc(f, rp->o->baseline);
        fputs("</p>\n", f);
    }
    target_bars(f, rp);
    before_after(f, rp);
    spectrum(f, rp);
    tables(f, rp);
    fputs("</body></html>\n", f);
    return fclose(f) == 0 ? 0 : -1;
}
