/*
 * Scenarios `token` and `forward-auth`, both run as short alternating turns
 * within one load (load_cfg.ngroups): the compared loads take turns of
 * --turn-ms, only the current one's connections send, and the first
 * --skip-ms of each turn are not counted, so a machine whose speed swings
 * within seconds hits each load alike; the per-turn ratios give the spread.
 *
 * token: tokend runs the authorization server (dev login, open registration,
 * one resource) on a store seeded with --tokens tokens. A public agent signs
 * in once and approves once; then, just before the timed run, authorization
 * codes are minted through GET /authorize (single use, they live 600 s),
 * refresh tokens made for rotation (one chain per connection, each token
 * used once: every answer's refresh_token is the connection's next), and a
 * subject token whose agent may delegate to a sub-agent (RFC 8693). The
 * chosen grants and `revoke` (the seeded tokens, each revoked once) take
 * turns on the same tokend; every 200 follows its group commit, so answers/s
 * are durable answers/s, and each grant's rate is reported against the
 * revocations' in the same run (target >= 0.5). Every token answer must be a
 * 200 with an access_token (refresh: and a new refresh_token).
 *
 * forward-auth: tokens with the resource as audience (redeemed codes), and
 * GET /auth with the Bearer token and X-Forwarded-Method/-Proto/-Host/-Uri,
 * in turns with nginx `return 200` adding the same identity headers
 * (X-Auth-Subject/Client/Scope/Session/Actor/Issuer, values of the same lengths).
 * Every answer must be a 200 carrying X-Auth-Subject. --control replaces
 * tokend by a second, identical nginx: the ratio should read 1.00.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { G_CODE = 0, G_REFRESH, G_EXCHANGE, G_REVOKE, G_AUTH };

static const char *const group_names[] = {"tokend token code", "tokend token refresh",
                                          "tokend token exchange", "tokend revoke",
                                          "tokend forward-auth"};

/* ---- Turns reporting ---------------------------------------------------------------------- */

void turns_series(bench_series *se, const load_result *r, const proc_cpu *cpu)
{
    series_add_run(se, r, cpu);
    double p99 = (double)hist_quantile(&r->lat, 0.99) / 1e3;
    double us = cpu != NULL && r->requests ? (double)cpu->total_ns / 1e3 / (double)r->requests : -1;
    se->nrounds = 0;
    for (unsigned k = 0; k < r->nturns && k < ROUNDS_MAX; k++) {
        se->rounds[se->nrounds++] = (bench_round){r->turn_rps[k], p99, us};
    }
}

double turns_ratio(bench_report *rp, const char *name, const load_result *a, const load_result *b)
{
    double ra = a->seconds > 0 ? (double)a->requests / a->seconds : 0;
    double rb = b->seconds > 0 ? (double)b->requests / b->seconds : 0;
    double ratio = rb > 0 ? ra / rb : 0;
    char m[48];
    snprintf(m, sizeof m, "%s", name);
    report_metric(rp, m, ratio);
    static double v[TURNS_MAX];
    unsigned n = 0;
    double sum = 0, lo = 1e300, hi = 0;
    for (unsigned k = 0; k < a->nturns && k < b->nturns; k++) {
        if (b->turn_rps[k] > 0) {
            v[n] = a->turn_rps[k] / b->turn_rps[k];
            sum += v[n];
            lo = v[n] < lo ? v[n] : lo;
            hi = v[n] > hi ? v[n] : hi;
            n++;
        }
    }
    if (n == 0) {
        return ratio;
    }
    double mean = sum / n, ss = 0;
    for (unsigned k = 0; k < n; k++) {
        ss += (v[k] - mean) * (v[k] - mean);
    }
    double sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
    snprintf(m, sizeof m, "%s_turn_sd", name);
    report_metric(rp, m, sd);
    snprintf(m, sizeof m, "%s_ci95", name);
    report_metric(rp, m, n > 1 ? 1.96 * sd / sqrt((double)n) : 0);
    snprintf(m, sizeof m, "%s_turn_min", name);
    report_metric(rp, m, lo);
    snprintf(m, sizeof m, "%s_turn_max", name);
    report_metric(rp, m, hi);
    snprintf(m, sizeof m, "%s_turns", name);
    report_metric(rp, m, n);
    snprintf(m, sizeof m, "%s_turn_median", name);
    report_metric(rp, m, median(v, n));
    bench_log("%s %.3f (turn pairs: %u, sd %.3f, 95%% ±%.3f, min %.3f, max %.3f)", name, ratio, n,
              sd, n > 1 ? 1.96 * sd / sqrt((double)n) : 0, lo, hi);
    return ratio;
}

/* ---- The load ------------------------------------------------------------------------------- */

/* One tokend and what its loads use: the new one (side 0) and, with
 * --baseline, the baseline binary on its own store (side 1). */
typedef struct tside {
    const seeded *s;
    as_agent *ag;
    const char *tokenctl;
    /* token */
    code_list codes;
    size_t next_code;
    char (*rt)[AS_TOKEN_CAP]; /* refresh chain per connection of the refresh group */
    char subject[AS_TOKEN_CAP];
    size_t next_revoke;
    char revoke_prefix[1024];
    size_t revoke_prefix_len;
    /* forward-auth */
    tok_pair *fa;
    size_t nfa;
    /* forward-auth-dpop: proofs signed before the run (request i: token
     * fa[i % nfa], proof i), signed inline once used up or stale */
    char *pool; /* npool proofs of POOL_STRIDE bytes */
    size_t npool, next_proof, inline_signed;
    int64_t pool_iat;
} tside;

typedef struct tload {
    const bench_opts *o;
    tside side[2];
    unsigned nsides;
    unsigned conns, ngroups;
    int kind[LOAD_GROUPS_MAX];
    unsigned gside[LOAD_GROUPS_MAX];         /* the side whose material a group uses */
    bool nginx[LOAD_GROUPS_MAX];             /* the group loads nginx (forward-auth) */
    const server_proc *srv[LOAD_GROUPS_MAX]; /* the server each group loads (CPU) */
    proc_cpu mark[LOAD_GROUPS_MAX], cpu[LOAD_GROUPS_MAX];
    bool cpu_ok[LOAD_GROUPS_MAX];
    bool codes_out, revokes_out;
    bool logged[LOAD_GROUPS_MAX];
    uint64_t rng;
    bool *ident; /* per connection: the last answer carried X-Auth-Subject */
    const dpop_key *dk;
} tload;

#define POOL_STRIDE 640
#define POOL_MAX    400000 /* 256 MB at most */
#define FA_HTU      "https://mcp.bench/mcp"

static size_t token_post(char *buf, size_t cap, const char *body, size_t bl)
{
    int n = snprintf(buf, cap,
                     "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
                     bl);
    if (n <= 0 || (size_t)n + bl >= cap) {
        return 0;
    }
    memcpy(buf + n, body, bl);
    return (size_t)n + bl;
}

/* GET /auth with Authorization: DPoP and a proof: the next one signed
 * ahead while fresh (iat at most 50 s old), else one signed now. nginx,
 * which checks nothing, is sent the first proof again: the same bytes on
 * the wire. */
static size_t dpop_auth_request(const tload *t, tside *sd, bool fresh, char *buf, size_t cap)
{
    char own[DPOP_PROOF_CAP];
    const char *proof = sd->pool;
    size_t i = fresh ? sd->next_proof++ : 0;
    const tok_pair *p = &sd->fa[i % sd->nfa];
    int64_t now = (int64_t)time(NULL);
    if (fresh && (i >= sd->npool || now - sd->pool_iat > 50)) {
        if (dpop_proof(t->dk, "GET", FA_HTU, p->at, i, now, own, sizeof own) == 0) {
            return 0;
        }
        proof = own;
        sd->inline_signed++;
    } else {
        proof = sd->pool + i * POOL_STRIDE;
    }
    int n = snprintf(buf, cap,
                     "GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: DPoP %s\r\n"
                     "DPoP: %s\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Proto: https\r\n"
                     "X-Forwarded-Host: mcp.bench\r\nX-Forwarded-Uri: /mcp\r\n\r\n",
                     p->at, proof);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Sign the proofs of one tokend's DPoP turns ahead: about 20 000/s of its
 * turns (more than one worker verifies), at most POOL_MAX. */
static int dpop_pool(const bench_opts *o, const tload *t, tside *sd)
{
    double secs = o->duration_s / t->ngroups + o->warmup_s;
    double want = 20000.0 * secs * 1.3 + 1000;
    sd->npool = want < POOL_MAX ? (size_t)want : POOL_MAX;
    sd->pool = malloc(sd->npool * POOL_STRIDE);
    if (sd->pool == NULL) {
        return -1;
    }
    sd->pool_iat = (int64_t)time(NULL);
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < sd->npool; i++) {
        if (dpop_proof(t->dk, "GET", FA_HTU, sd->fa[i % sd->nfa].at, i, sd->pool_iat,
                       sd->pool + i * POOL_STRIDE, POOL_STRIDE) == 0) {
            bench_log("forward-auth-dpop: signing a proof failed");
            return -1;
        }
    }
    bench_log("signed %zu DPoP proofs ahead in %.1f s", sd->npool,
              (double)(bench_now_ns() - t0) / 1e9);
    return 0;
}

static size_t t_make(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag)
{
    tload *t = arg;
    unsigned g = conn / t->conns, slot = conn % t->conns;
    tside *sd = &t->side[t->gside[g]];
    char body[768];
    int bl = 0;
    *tag = g;
    switch (t->kind[g]) {
    case G_CODE:
        if (sd->next_code >= sd->codes.n) {
            t->codes_out = true;
            return 0;
        }
        return redeem_request(buf, cap, sd->ag, sd->codes.codes[sd->next_code++], NULL);
    case G_REFRESH:
        if (sd->rt[slot][0] == '\0') {
            return 0;
        }
        bl = snprintf(body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s",
                      sd->rt[slot], sd->ag->client_id);
        break;
    case G_EXCHANGE:
        bl = snprintf(body, sizeof body,
                      "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
                      "&subject_token=%s&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3A"
                      "token-type%%3Aaccess_token&scope=mcp%%3Aread&client_id=%s",
                      sd->subject, sd->ag->sub_id);
        break;
    case G_REVOKE:
        if (sd->next_revoke >= sd->s->tf.n || sd->revoke_prefix_len + TOKEN_LEN > cap) {
            t->revokes_out = true;
            return 0;
        }
        memcpy(buf, sd->revoke_prefix, sd->revoke_prefix_len);
        memcpy(buf + sd->revoke_prefix_len, token_at(&sd->s->tf, sd->next_revoke++), TOKEN_LEN);
        return sd->revoke_prefix_len + TOKEN_LEN;
    default: { /* G_AUTH */
        if (t->dk != NULL) {
            return dpop_auth_request(t, sd, !t->nginx[g], buf, cap);
        }
        const tok_pair *p = &sd->fa[rng_next(&t->rng) % sd->nfa];
        int n = snprintf(buf, cap,
                         "GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                         "X-Forwarded-Method: GET\r\nX-Forwarded-Proto: https\r\n"
                         "X-Forwarded-Host: mcp.bench\r\nX-Forwarded-Uri: /mcp\r\n\r\n",
                         p->at);
        return n > 0 && (size_t)n < cap ? (size_t)n : 0;
    }
    }
    return bl > 0 && (size_t)bl < sizeof body ? token_post(buf, cap, body, (size_t)bl) : 0;
}

static void t_head(void *arg, unsigned conn, uint32_t tag, const char *head, size_t len)
{
    (void)tag;
    tload *t = arg;
    size_t vl = 0;
    if (t->ident != NULL) {
        const char *v = head_find(head, len, "X-Auth-Subject", &vl);
        t->ident[conn] = v != NULL && vl > 0;
    }
}

static bool t_done(void *arg, unsigned conn, uint32_t tag, int status, const char *body, size_t len,
                   uint64_t sent_ns, uint64_t now_ns)
{
    (void)sent_ns, (void)now_ns;
    tload *t = arg;
    unsigned g = tag < LOAD_GROUPS_MAX ? tag : 0;
    int kind = t->kind[g];
    bool ok = status == 200;
    if (ok && kind == G_AUTH) {
        ok = t->ident[conn];
    } else if (ok && kind != G_REVOKE) {
        char at[AS_TOKEN_CAP];
        ok = json_get_str(body, "access_token", at, sizeof at) == 0 && at[0] != '\0';
    }
    if (kind == G_REFRESH) { /* the chain goes on with the new refresh token, or ends */
        char *rt = t->side[t->gside[g]].rt[conn % t->conns];
        if (status == 503) {
            /* not submitted (no room for the answer): the same token again */
        } else if (!ok || json_get_str(body, "refresh_token", rt, AS_TOKEN_CAP) != 0) {
            rt[0] = '\0';
            ok = false;
        }
    }
    if (!ok && !t->logged[g]) {
        t->logged[g] = true;
        bench_log("%s%s: unexpected answer %d %.*s", group_names[kind],
                  t->gside[g] ? " (baseline)" : "", status, (int)(len < 200 ? len : 200), body);
    }
    return ok;
}

static bool t_tick(void *arg, uint64_t now_ns)
{
    (void)now_ns;
    const tload *t = arg;
    return !t->codes_out && !t->revokes_out; /* out of material: end the run, turns stay fair */
}

static void t_turn(void *arg, unsigned group, bool start)
{
    tload *t = arg;
    proc_cpu now;
    if (server_cpu_read(t->srv[group], &now) != 0) {
        t->cpu_ok[group] = false;
        return;
    }
    if (start) {
        t->mark[group] = now;
        return;
    }
    t->cpu[group].total_ns += now.total_ns - t->mark[group].total_ns;
    t->cpu[group].user_ticks += now.user_ticks - t->mark[group].user_ticks;
    t->cpu[group].sys_ticks += now.sys_ticks - t->mark[group].sys_ticks;
}

static int turns_run(const bench_opts *o, tload *t, load_result *res)
{
    load_cfg cfg = {.conns = t->conns,
                    .duration_s = o->duration_s,
                    .warmup_s = o->warmup_s,
                    .drain = true,
                    .label = "turns",
                    .progress = o->progress,
                    .arg = t,
                    .make = t_make,
                    .done = t_done,
                    .head = t_head,
                    .tick = t_tick,
                    .ngroups = t->ngroups,
                    .turn_ms = o->turn_ms,
                    .skip_ms = o->skip_ms,
                    .turn = t_turn};
    for (unsigned g = 0; g < t->ngroups; g++) {
        cfg.group_port[g] = t->srv[g]->port;
        t->cpu_ok[g] = true;
    }
    return load_run_once(&cfg, res);
}

static bool has_errors(const load_result *r)
{
    for (int e = 0; e < ERR_KINDS; e++) {
        if (r->errors[e] != 0) {
            return true;
        }
    }
    return false;
}

/* The group's series: its kind's name, "(baseline)" after it for side 1. */
static bench_series *group_series(bench_report *rp, const tload *t, unsigned g, const char *name)
{
    char full[48];
    snprintf(full, sizeof full, "%s%s", name, t->gside[g] ? " (baseline)" : "");
    return report_series(rp, full);
}

/* Start the baseline binary on a store of its own (seeded by its own
 * tokenctl) with the options bench_tokend_extra holds; false when there is
 * no --baseline or it did not start (logged: the run goes on without). */
static bool baseline_start(const bench_opts *o, size_t n, seeded *sb)
{
    if (o->baseline == NULL) {
        return false;
    }
    if (seeded_start_bins(o, n, o->baseline, o->baseline_tokenctl, sb) == 0) {
        return true;
    }
    bench_log("baseline %s (tokenctl %s) did not start: no baseline series", o->baseline,
              o->baseline_tokenctl);
    return false;
}

/* Before/after metrics of two groups that took turns: NAME_vs_baseline with
 * its per-turn spread (after / before answers/s) and
 * NAME_server_cpu_vs_baseline (before / after server µs per request). */
static void vs_baseline(bench_report *rp, const char *name, const load_result *ra,
                        const load_result *rb, bench_series *sa, bench_series *sb)
{
    char m[48], pair[32];
    snprintf(m, sizeof m, "ratio_%s_vs_baseline", name);
    turns_ratio(rp, m, ra, rb);
    snprintf(pair, sizeof pair, "%s", name);
    report_pair(rp, pair, sa, sb, m);
    snprintf(m, sizeof m, "ratio_%s_server_cpu_vs_baseline", name);
    report_metric(rp, m, series_cpu_us(sb) / series_cpu_us(sa));
}

/* ---- token ---------------------------------------------------------------------------------- */

static int grant_kinds(const char *grant, int kind[])
{
    const char *g = grant ? grant : "all";
    int n = 0;
    if (strcmp(g, "code") == 0 || strcmp(g, "all") == 0) {
        kind[n++] = G_CODE;
    }
    if (strcmp(g, "refresh") == 0 || strcmp(g, "all") == 0) {
        kind[n++] = G_REFRESH;
    }
    if (strcmp(g, "exchange") == 0 || strcmp(g, "all") == 0) {
        kind[n++] = G_EXCHANGE;
    }
    return n;
}

/* Everything one tokend's token loads need, made just before the run. */
static int token_material(const bench_opts *o, const tload *t, tside *sd)
{
    bool code = false, refresh = false, exchange = false;
    for (unsigned g = 0; g < t->ngroups; g++) {
        code |= t->kind[g] == G_CODE;
        refresh |= t->kind[g] == G_REFRESH;
        exchange |= t->kind[g] == G_EXCHANGE;
    }
    if (exchange && as_delegate(sd->tokenctl, sd->s->data, sd->ag) != 0) {
        return -1;
    }
    size_t npairs = (refresh ? t->conns : 0) + 1;
    tok_pair *p = calloc(npairs, sizeof *p);
    sd->rt = calloc(t->conns, AS_TOKEN_CAP);
    int rc = p && sd->rt ? as_token_pairs(o, sd->ag, npairs, p) : -1;
    for (size_t i = 0; rc == 0 && refresh && i < t->conns; i++) {
        memcpy(sd->rt[i], p[i + 1].rt, AS_TOKEN_CAP);
    }
    if (rc == 0) {
        memcpy(sd->subject, p[0].at, AS_TOKEN_CAP);
    }
    free(p);
    if (rc == 0 && code) { /* enough for the code group's share of the run, minted last */
        double secs = (o->duration_s / t->ngroups + o->warmup_s) * 1.5 + 0.5;
        rc = as_mint_codes(o, sd->ag, secs, 2000000, &sd->codes);
    }
    return rc;
}

/* A side ready for token loads: its agent signed in, the revoke request's head. */
static int token_side(tside *sd, const seeded *s, as_agent *ag, const char *tokenctl)
{
    sd->s = s;
    sd->ag = ag;
    sd->tokenctl = tokenctl;
    char dummy[TOKEN_LEN];
    memset(dummy, 'x', sizeof dummy);
    sd->revoke_prefix_len = form_request(sd->revoke_prefix, sizeof sd->revoke_prefix, "/revoke",
                                         s->agent_authz, dummy, TOKEN_LEN) -
                            TOKEN_LEN;
    return as_agent_start(ag, s->srv.port);
}

static const char *const grant_what[] = {"code", "refresh", "exchange", "revoke"};

/* Per grant group g of one side: NAME_per_s, _p99_us, _server_us_per_req and
 * ratio_NAME_vs_revoke (prefix "baseline_" for the baseline's). */
static void token_grant_metrics(bench_report *rp, const tload *t, unsigned g, unsigned rv,
                                const load_result *res, bool target)
{
    const char *w = grant_what[t->kind[g]], *pre = t->gside[g] ? "baseline_" : "";
    char name[48], note[96];
    snprintf(name, sizeof name, "%s%s_per_s", pre, w);
    report_metric(rp, name, res[g].seconds > 0 ? (double)res[g].ok / res[g].seconds : 0);
    snprintf(name, sizeof name, "%s%s_p99_us", pre, w);
    report_metric(rp, name, (double)hist_quantile(&res[g].lat, 0.99) / 1e3);
    snprintf(name, sizeof name, "%s%s_server_us_per_req", pre, w);
    report_metric(rp, name, series_cpu_us(group_series(rp, t, g, group_names[t->kind[g]])));
    snprintf(name, sizeof name, "%sratio_%s_vs_revoke", pre, w);
    double ratio = turns_ratio(rp, name, &res[g], &res[rv]);
    if (target) {
        snprintf(note, sizeof note, "durable %s answers/s / durable revocations/s, same run", w);
        report_target(rp, name, ratio, 0.5, false, note);
    }
}

int scen_token(const bench_opts *o, bench_report *rp)
{
    tload *t = calloc(1, sizeof *t);
    seeded *s = calloc(2, sizeof *s);
    as_agent *ag = calloc(2, sizeof *ag);
    load_result *res = calloc(LOAD_GROUPS_MAX, sizeof *res);
    char dir[256] = "";
    int kinds[4];
    int n = grant_kinds(o->grant, kinds);
    int rc = t && s && ag && res && n > 0 ? bench_mkdtemp("as", dir, sizeof dir) : -1;
    if (n == 0) {
        bench_log("token: --grant code|refresh|exchange|all");
    }
    rc = rc ? rc : as_prepare(dir);
    size_t ntok = first_size(o->tokens_list);
    rc = rc ? rc : seeded_start(o, ntok ? ntok : 200000, &s[0]);
    bool base = rc == 0 && baseline_start(o, s[0].tf.n, &s[1]);
    bench_tokend_extra(NULL);
    if (rc == 0) {
        /* Each grant, then revoke; with a baseline each load of the new
         * tokend is followed by the same load of the baseline. */
        t->o = o;
        t->conns = o->conns;
        t->nsides = base ? 2 : 1;
        kinds[n] = G_REVOKE;
        for (int k = 0; k <= n; k++) {
            for (unsigned sd = 0; sd < t->nsides; sd++) {
                unsigned g = t->ngroups++;
                t->kind[g] = kinds[k];
                t->gside[g] = sd;
                t->srv[g] = &s[sd].srv;
            }
        }
        rc = token_side(&t->side[0], &s[0], &ag[0], o->tokenctl);
    }
    if (rc == 0 && base) {
        rc = token_side(&t->side[1], &s[1], &ag[1], o->baseline_tokenctl);
    }
    for (unsigned sd = 0; rc == 0 && sd < t->nsides; sd++) {
        rc = token_material(o, t, &t->side[sd]);
    }
    rc = rc ? rc : turns_run(o, t, res);
    if (rc == 0 && (t->codes_out || t->revokes_out)) {
        bench_log("the run ended early: %s ran out (the turns before count)",
                  t->codes_out ? "authorization codes" : "tokens to revoke");
    }
    bool wrong = false;
    for (unsigned g = 0; rc == 0 && g < t->ngroups; g++) {
        bench_series *se = group_series(rp, t, g, group_names[t->kind[g]]);
        turns_series(se, &res[g], t->cpu_ok[g] ? &t->cpu[g] : NULL);
        wrong |= has_errors(&res[g]) || res[g].ok == 0;
    }
    /* the revoke groups are the last one (or two: new, baseline) */
    unsigned rv = t->ngroups - t->nsides;
    if (rc == 0) {
        const load_result *r = &res[rv];
        report_metric(rp, "revocations_per_s", r->seconds > 0 ? (double)r->ok / r->seconds : 0);
        report_metric(rp, "revoke_p99_us", (double)hist_quantile(&r->lat, 0.99) / 1e3);
        report_metric(rp, "revoke_server_us_per_req",
                      series_cpu_us(report_series(rp, group_names[G_REVOKE])));
        report_metric(rp, "codes_minted", (double)t->side[0].codes.n);
        report_metric(rp, "codes_redeemed", (double)t->side[0].next_code);
        report_metric(rp, "turn_ms", o->turn_ms);
        report_metric(rp, "skip_ms", o->skip_ms);
    }
    for (unsigned g = 0; rc == 0 && g < rv; g++) {
        token_grant_metrics(rp, t, g, rv + t->gside[g], res, t->gside[g] == 0);
    }
    for (unsigned g = 0; rc == 0 && base && g < t->ngroups; g += 2) { /* new, then baseline */
        const char *gn = group_names[t->kind[g]];
        vs_baseline(rp, grant_what[t->kind[g]], &res[g], &res[g + 1], group_series(rp, t, g, gn),
                    group_series(rp, t, g + 1, gn));
    }
    for (unsigned sd = 0; rc == 0 && sd < t->nsides; sd++) { /* what was revoked is inactive */
        size_t done = t->side[sd].next_revoke;
        rc = done > 0 ? check_revoked(o, &s[sd], done < 1000 ? done : 1000) : 0;
    }
    if (rc == 0 && wrong) {
        bench_log("token: wrong answers (see the errors by kind)");
        rc = -1;
    }
    for (unsigned sd = 0; s != NULL && sd < 2; sd++) {
        if (s[sd].data[0] != '\0') {
            seeded_stop(o, &s[sd]);
        }
    }
    if (dir[0] != '\0') {
        bench_rmtree(dir);
    }
    for (unsigned sd = 0; t != NULL && sd < 2; sd++) {
        code_list_free(&t->side[sd].codes);
        free(t->side[sd].rt);
    }
    free(t);
    free(s);
    free(ag);
    free(res);
    return rc;
}

/* ---- forward-auth --------------------------------------------------------------------------- */

#define FA_TOKENS 256

/* nginx's add_header lines: tokend's identity headers, same names, values as long. */
static int identity_conf(const tload *t, uint16_t port, char *conf, size_t cap, size_t *body_len)
{
    const tside *sd = &t->side[0];
    http_answer *a = malloc(sizeof *a);
    char req[2048];
    int n = 0;
    if (t->dk != NULL) { /* a proof of its own: the pool's are for the run */
        char proof[DPOP_PROOF_CAP];
        size_t pl = dpop_proof(t->dk, "GET", FA_HTU, sd->fa[0].at, UINT64_MAX, (int64_t)time(NULL),
                               proof, sizeof proof);
        n = pl == 0 ? -1
                    : snprintf(req, sizeof req,
                               "GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: DPoP "
                               "%s\r\nDPoP: %s\r\nX-Forwarded-Method: GET\r\n"
                               "X-Forwarded-Proto: https\r\nX-Forwarded-Host: mcp.bench\r\n"
                               "X-Forwarded-Uri: /mcp\r\n\r\n",
                               sd->fa[0].at, proof);
    } else {
        n = snprintf(req, sizeof req,
                     "GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "X-Forwarded-Method: GET\r\nX-Forwarded-Proto: https\r\n"
                     "X-Forwarded-Host: mcp.bench\r\nX-Forwarded-Uri: /mcp\r\n\r\n",
                     sd->fa[0].at);
    }
    int rc = a && n > 0 && (size_t)n < sizeof req ? http_call(port, req, (size_t)n, a) : -1;
    if (rc == 0 && a->status != 200) {
        bench_log("forward-auth probe: status %d %s", a->status, a->body);
        rc = -1;
    }
    if (rc == 0 && t->dk != NULL) { /* the proof is really checked: its replay is refused */
        http_answer *b = malloc(sizeof *b);
        rc = b ? http_call(port, req, (size_t)n, b) : -1;
        if (rc == 0 && b->status != 401) {
            bench_log("forward-auth-dpop probe: a replayed proof got %d, not 401", b->status);
            rc = -1;
        }
        free(b);
    }
    static const char *const names[] = {"X-Auth-Subject", "X-Auth-Client", "X-Auth-Scope",
                                        "X-Auth-Session", "X-Auth-Actor",  "X-Auth-Issuer"};
    size_t pos = 0;
    conf[0] = '\0';
    for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names[0]; i++) {
        size_t vl = 0;
        if (http_header(a, names[i], &vl) == NULL || vl == 0) {
            continue; /* e.g. no actor, a session without an IdP issuer */
        }
        if (pos + vl + 64 >= cap) {
            rc = -1;
            break;
        }
        pos += (size_t)snprintf(conf + pos, cap - pos, "      add_header %s ", names[i]);
        memset(conf + pos, 'x', vl);
        pos += vl;
        pos += (size_t)snprintf(conf + pos, cap - pos, ";\n");
    }
    if (rc == 0) {
        *body_len = a->len - a->head_len;
    }
    free(a);
    return rc;
}

/* One tokend's forward-auth material: a signed-in agent and FA_TOKENS
 * tokens (DPoP-bound to dk when given). */
static int fa_side(const bench_opts *o, tside *sd, const seeded *s, as_agent *ag,
                   const dpop_key *dk)
{
    sd->s = s;
    sd->ag = ag;
    sd->nfa = FA_TOKENS;
    sd->fa = calloc(FA_TOKENS, sizeof *sd->fa);
    int rc = sd->fa ? as_agent_start(ag, s->srv.port) : -1;
    if (rc == 0) {
        rc = dk ? as_token_pairs_dpop(o, ag, FA_TOKENS, sd->fa, dk)
                : as_token_pairs(o, ag, FA_TOKENS, sd->fa);
    }
    return rc;
}

static int fa_run(const bench_opts *o, bench_report *rp, bool dpop)
{
    dpop_key dk = {0};
    tload *t = calloc(1, sizeof *t);
    seeded *s = calloc(2, sizeof *s);
    as_agent *ag = calloc(2, sizeof *ag);
    load_result *res = calloc(3, sizeof *res);
    char dir[256] = "", conf[2048];
    size_t body_len = 0;
    server_proc ng[2] = {{0}, {0}};
    int rc = t && s && ag && res ? bench_mkdtemp("as", dir, sizeof dir) : -1;
    /* DPoP: the replay cache sized for the run's rate (README "DPoP"). */
    rc = rc ? rc : as_prepare_with(dir, dpop ? "--dpop-rate 50000" : "");
    rc = rc ? rc : (dpop ? dpop_key_new(&dk) : 0);
    rc = rc ? rc : seeded_start(o, 100, &s[0]);
    if (rc == 0 && o->control && o->baseline != NULL) {
        bench_log("forward-auth --control: --baseline ignored (nginx against nginx)");
    }
    bool base = rc == 0 && !o->control && baseline_start(o, 100, &s[1]);
    bench_tokend_extra(NULL);
    if (rc == 0 && !nginx_available()) {
        bench_log("forward-auth: needs nginx");
        rc = -1;
    }
    if (rc == 0) {
        t->o = o;
        t->conns = o->conns;
        t->nsides = base ? 2 : 1;
        t->ngroups = base ? 3 : 2; /* tokend, nginx, and the baseline tokend */
        for (unsigned g = 0; g < t->ngroups; g++) {
            t->kind[g] = G_AUTH;
            t->gside[g] = g == 2 ? 1 : 0;
            t->nginx[g] = g == 1;
        }
        t->rng = bench_now_ns() | 1;
        t->dk = dpop ? &dk : NULL;
        t->ident = calloc((size_t)o->conns * t->ngroups, sizeof *t->ident);
        rc = t->ident ? fa_side(o, &t->side[0], &s[0], &ag[0], t->dk) : -1;
    }
    if (rc == 0 && base) {
        rc = fa_side(o, &t->side[1], &s[1], &ag[1], t->dk);
    }
    rc = rc ? rc : identity_conf(t, s[0].srv.port, conf, sizeof conf, &body_len);
    if (rc == 0) {
        char body[1024];
        memset(body, 'x', sizeof body);
        bench_nginx_extra(conf);
        body_len = body_len < sizeof body ? body_len : sizeof body;
        rc = nginx_start(body, body_len, o->server_cpu, &ng[0]);
        if (rc == 0 && o->control) {
            rc = nginx_start(body, body_len, o->server_cpu, &ng[1]);
        }
        bench_nginx_extra(NULL);
    }
    t->srv[0] = o->control ? &ng[1] : &s[0].srv;
    t->srv[1] = &ng[0];
    t->srv[2] = &s[1].srv;
    if (rc == 0 && o->control) { /* nginx needs no tokend: stop it for a quiet machine */
        server_stop(&s[0].srv);
    }
    for (unsigned sd = 0; rc == 0 && dpop && sd < t->nsides; sd++) {
        rc = dpop_pool(o, t, &t->side[sd]);
    }
    rc = rc ? rc : turns_run(o, t, res);
    if (rc == 0) {
        const char *an = o->control ? "nginx B (control)"
                         : dpop     ? "tokend forward-auth DPoP"
                                    : "tokend forward-auth";
        bench_series *sa = report_series(rp, an);
        bench_series *sb = report_series(rp, o->control ? "nginx A (control)" : "nginx return 200");
        bench_series *sc = base ? group_series(rp, t, 2, an) : NULL;
        turns_series(sa, &res[0], t->cpu_ok[0] ? &t->cpu[0] : NULL);
        turns_series(sb, &res[1], t->cpu_ok[1] ? &t->cpu[1] : NULL);
        if (sc != NULL) {
            turns_series(sc, &res[2], t->cpu_ok[2] ? &t->cpu[2] : NULL);
        }
        report_metric(rp, "auth_tokens", FA_TOKENS);
        if (dpop) {
            report_metric(rp, "dpop_proofs_signed_ahead", (double)t->side[0].npool);
            report_metric(rp, "dpop_proofs_signed_inline", (double)t->side[0].inline_signed);
        }
        report_metric(rp, "turn_ms", o->turn_ms);
        report_metric(rp, "skip_ms", o->skip_ms);
        report_metric(rp, o->control ? "control_rps_b" : "tokend_rps", series_rps(sa));
        report_metric(rp, o->control ? "control_rps_a" : "nginx_rps", series_rps(sb));
        report_metric(rp, o->control ? "control_cpu_ratio" : "ratio_server_cpu",
                      series_cpu_us(sb) / series_cpu_us(sa));
        if (o->control) {
            double r = turns_ratio(rp, "control_ratio", &res[0], &res[1]);
            report_target(rp, "control_ratio_error", fabs(r - 1.0), 0.02, true,
                          "|nginx B / nginx A - 1|: the harness's own error");
        } else {
            double r = turns_ratio(rp, "ratio_throughput", &res[0], &res[1]);
            if (dpop) { /* an ECDSA verification per request: reported, no target yet */
                bench_log("forward-auth-dpop: %zu proofs signed inline (the rest ahead)",
                          t->side[0].inline_signed);
            } else {
                report_target(rp, "forward_auth_vs_nginx", r, 1.0, false,
                              "tokend /auth / nginx return 200 with the same headers, req/s");
            }
        }
        if (sc != NULL) {
            report_metric(rp, "baseline_rps", series_rps(sc));
            report_metric(rp, "baseline_server_us_per_req", series_cpu_us(sc));
            turns_ratio(rp, "baseline_ratio_throughput", &res[2], &res[1]);
            vs_baseline(rp, "auth", &res[0], &res[2], sa, sc);
        }
        for (unsigned g = 0; g < t->ngroups; g++) {
            if (has_errors(&res[g]) || res[g].ok == 0) {
                bench_log("forward-auth: wrong answers (see the errors by kind)");
                rc = -1;
                break;
            }
        }
    }
    server_stop(&ng[0]);
    server_stop(&ng[1]);
    for (unsigned sd = 0; s != NULL && sd < 2; sd++) {
        if (s[sd].data[0] != '\0') {
            seeded_stop(o, &s[sd]);
        }
    }
    if (dir[0] != '\0') {
        bench_rmtree(dir);
    }
    for (unsigned sd = 0; t != NULL && sd < 2; sd++) {
        free(t->side[sd].fa);
        free(t->side[sd].pool);
    }
    if (t != NULL) {
        free(t->ident);
    }
    dpop_key_free(&dk);
    free(t);
    free(s);
    free(ag);
    free(res);
    return rc;
}

int scen_forward_auth(const bench_opts *o, bench_report *rp)
{
    return fa_run(o, rp, false);
}

int scen_forward_auth_dpop(const bench_opts *o, bench_report *rp)
{
    return fa_run(o, rp, true);
}
