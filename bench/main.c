/*
 * tokend-bench SCENARIO [options]: parses the command line, pins itself,
 * runs one scenario and writes the table (stdout), --json and --html.
 * Exit 0 when the scenario ran (targets are reported, never asserted: timings
 * depend on the machine), 1 when it could not run or saw a wrong answer
 * (e.g. a stale active:true after a cascade), 2 on usage errors.
 */
#include "bench.h"

#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: tokend-bench introspect|introspect-tls|cascade|revoke|scale|scale-workers|token|\n"
    "                    forward-auth|forward-auth-dpop|cluster\n"
    "                    [options]\n"
    "  --tokens N[,N...]   tokens seeded (introspect/revoke: one size, default 10000000 /\n"
    "                      1000000; scale: sizes, default 10000,10000000; scale-workers:\n"
    "                      1000000; suffixes k, M)\n"
    "  --k K[,K...]        cascade: tokens delegated from each root (default 1,1000,100000)\n"
    "  --repeat N          cascade: trials per K (default 3)\n"
    "  --connections N     keep-alive connections (default 64)\n"
    "  --duration S        measured seconds per run (default 5; cascade: per trial, 2)\n"
    "  --warmup S          unmeasured seconds before each run (default 0.5)\n"
    "  --rounds N          introspect/scale/scale-workers: alternating A/B rounds\n"
    "                      (default 3)\n"
    "  --rate R            open loop at R requests/s in total (default: closed loop;\n"
    "                      scale-workers: 20000)\n"
    "  --workers N         scale-workers: tokend --workers N and nginx with N worker\n"
    "                      processes, against 1 worker of each (default 2); the\n"
    "                      servers are pinned to N CPUs from --server-cpu\n"
    "  --unknown F         introspect: share of unknown tokens (default 0.05)\n"
    "  --revoked F         introspect: share of revoked tokens (default 0.05)\n"
    "  --cpu N             pin the load generator to CPU N (default 1 on 2+ CPUs)\n"
    "  --server-cpu N      pin tokend and nginx to CPU N (default 0 on 2+ CPUs); -1: no pin\n"
    "  --tokend PATH       default: tokend next to this program\n"
    "  --tokenctl PATH     default: tokenctl next to this program\n"
    "  --no-nginx          introspect: no nginx baseline\n"
    "  --baseline PATH     introspect, revoke, token, forward-auth(-dpop): also load this\n"
    "                      tokend binary in turn\n"
    "                      (before/after), on its own store seeded by its own tokenctl\n"
    "  --baseline-tokenctl PATH  default: the tokenctl beside the --baseline binary\n"
    "  --signed            introspect: also load signed answers (Accept: application/\n"
    "                      token-introspection+jwt, RFC 9701) in turn, beside plain ones\n"
    "  --grant G           token: code, refresh, exchange or all (default all); each in\n"
    "                      turns with revoke on the same tokend (--tokens: to revoke,\n"
    "                      default 200000); --duration is the whole run\n"
    "  --turn-ms MS        token/forward-auth: each load's turn (default 500)\n"
    "  --skip-ms MS        the first MS of a turn are not counted (default 150)\n"
    "                      forward-auth-dpop: DPoP-bound tokens, each request with a\n"
    "                      fresh ES256 proof (signed ahead), in turns with nginx\n"
    "  --control           forward-auth: nginx against an identical nginx (the harness's\n"
    "                      own error; should read 1.00)\n"
    "  --nats N            cluster: 1 or 3 nats-servers (stream replicas), default 3;\n"
    "                      --tokens: revocations measured (default 10000)\n"
    "  --json FILE         the report as JSON (schema tokend-bench/1, see README)\n"
    "  --html FILE         the report as a self-contained HTML page\n"
    "  --progress          a progress line on stderr while loading\n"
    "  --keep              keep the seeded data folders\n";

enum {
    O_TOKENS = 256,
    O_K,
    O_REPEAT,
    O_CONNS,
    O_DURATION,
    O_WARMUP,
    O_ROUNDS,
    O_RATE,
    O_UNKNOWN,
    O_REVOKED,
    O_CPU,
    O_SERVER_CPU,
    O_TOKEND,
    O_TOKENCTL,
    O_NO_NGINX,
    O_JSON,
    O_HTML,
    O_PROGRESS,
    O_KEEP,
    O_HELP,
    O_BASELINE,
    O_BASELINE_CTL,
    O_SIGNED,
    O_GRANT,
    O_TURN_MS,
    O_SKIP_MS,
    O_CONTROL,
    O_NATS,
    O_WORKERS,
};

static const struct option longopts[] = {
    {"tokens", 1, 0, O_TOKENS},
    {"k", 1, 0, O_K},
    {"repeat", 1, 0, O_REPEAT},
    {"connections", 1, 0, O_CONNS},
    {"duration", 1, 0, O_DURATION},
    {"warmup", 1, 0, O_WARMUP},
    {"rounds", 1, 0, O_ROUNDS},
    {"rate", 1, 0, O_RATE},
    {"unknown", 1, 0, O_UNKNOWN},
    {"revoked", 1, 0, O_REVOKED},
    {"cpu", 1, 0, O_CPU},
    {"server-cpu", 1, 0, O_SERVER_CPU},
    {"tokend", 1, 0, O_TOKEND},
    {"tokenctl", 1, 0, O_TOKENCTL},
    {"no-nginx", 0, 0, O_NO_NGINX},
    {"json", 1, 0, O_JSON},
    {"html", 1, 0, O_HTML},
    {"progress", 0, 0, O_PROGRESS},
    {"keep", 0, 0, O_KEEP},
    {"baseline", 1, 0, O_BASELINE},
    {"baseline-tokenctl", 1, 0, O_BASELINE_CTL},
    {"help", 0, 0, O_HELP},
    {"signed", 0, 0, O_SIGNED},
    {"grant", 1, 0, O_GRANT},
    {"turn-ms", 1, 0, O_TURN_MS},
    {"skip-ms", 1, 0, O_SKIP_MS},
    {"control", 0, 0, O_CONTROL},
    {"nats", 1, 0, O_NATS},
    {"workers", 1, 0, O_WORKERS},
    {0, 0, 0, 0},
};

static int num(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= min && v <= max)) {
        fprintf(stderr, "tokend-bench: bad number \"%s\" (%g … %g)\n", s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int set_opt(bench_opts *o, int c, const char *a)
{
    double v = 0;
    switch (c) {
    case O_TOKENS:
        snprintf(o->tokens_list, sizeof o->tokens_list, "%s", a);
        return parse_sizes(a, (size_t[4]){0}, 4) > 0 ? 0 : -1;
    case O_K:
        snprintf(o->k_list, sizeof o->k_list, "%s", a);
        return parse_sizes(a, (size_t[8]){0}, 8) > 0 ? 0 : -1;
    case O_REPEAT:
        return num(a, 1, 8, &v) ? -1 : (o->repeat = (unsigned)v, 0);
    case O_CONNS:
        return num(a, 1, 16384, &v) ? -1 : (o->conns = (unsigned)v, 0);
    case O_DURATION:
        return num(a, 0.1, 3600, &o->duration_s);
    case O_WARMUP:
        return num(a, 0, 600, &o->warmup_s);
    case O_ROUNDS:
        return num(a, 1, ROUNDS_MAX / 2, &v) ? -1 : (o->rounds = (unsigned)v, 0);
    case O_RATE:
        return num(a, 0, 1e8, &o->rate);
    case O_UNKNOWN:
        return num(a, 0, 1, &o->unknown_share);
    case O_REVOKED:
        return num(a, 0, 1, &o->revoked_share);
    case O_CPU:
        return num(a, -1, 4095, &v) ? -1 : (o->cpu = (int)v, 0);
    case O_SERVER_CPU:
        return num(a, -1, 4095, &v) ? -1 : (o->server_cpu = (int)v, 0);
    case O_TOKEND:
        o->tokend = a;
        return 0;
    case O_TOKENCTL:
        o->tokenctl = a;
        return 0;
    case O_NO_NGINX:
        o->no_nginx = true;
        return 0;
    case O_JSON:
        o->json_path = a;
        return 0;
    case O_HTML:
        o->html_path = a;
        return 0;
    case O_PROGRESS:
        o->progress = true;
        return 0;
    case O_KEEP:
        o->keep = true;
        return 0;
    case O_BASELINE:
        o->baseline = a;
        return 0;
    case O_BASELINE_CTL:
        o->baseline_tokenctl = a;
        return 0;
    case O_SIGNED:
        o->signed_answers = true;
        return 0;
    case O_GRANT:
        if (strcmp(a, "code") && strcmp(a, "refresh") && strcmp(a, "exchange") &&
            strcmp(a, "all")) {
            return -1;
        }
        o->grant = a;
        return 0;
    case O_TURN_MS:
        return num(a, 10, 60000, &o->turn_ms);
    case O_SKIP_MS:
        return num(a, 0, 59000, &o->skip_ms);
    case O_CONTROL:
        o->control = true;
        return 0;
    case O_NATS:
        return num(a, 1, 3, &v) || v == 2 ? -1 : (o->nats = (unsigned)v, 0);
    case O_WORKERS:
        return num(a, 1, SERVER_KIDS_MAX, &v) ? -1 : (o->workers = (unsigned)v, 0);
    default:
        return -1;
    }
}

/* PATH of a sibling program of this executable. */
static const char *sibling(const char *name)
{
    static char buf[2][PATH_MAX];
    static int n;
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        return name;
    }
    self[len] = '\0';
    char *out = buf[n++ % 2];
    snprintf(out, PATH_MAX, "%s/%s", dirname(self), name);
    return out;
}

static int parse(int argc, char **argv, bench_opts *o)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (bench_opts){.conns = 64,
                      .warmup_s = 0.5,
                      .rounds = 3,
                      .repeat = 3,
                      .unknown_share = 0.05,
                      .revoked_share = 0.05,
                      .turn_ms = 500,
                      .skip_ms = 150,
                      .workers = 2,
                      .cpu = ncpu >= 2 ? 1 : -1,
                      .server_cpu = ncpu >= 2 ? 0 : -1};
    if (argc < 2 || argv[1][0] == '-') {
        fputs(usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 1 : -1;
    }
    o->scenario = argv[1];
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) { /* bounded by argc */
        if (c == O_HELP) {
            fputs(usage, stdout);
            return 1;
        }
        if (c == '?' || set_opt(o, c, optarg) != 0) {
            fputs(usage, stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tokend-bench: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (o->skip_ms >= o->turn_ms) {
        fprintf(stderr, "tokend-bench: --skip-ms must be shorter than --turn-ms\n");
        return -1;
    }
    if (o->duration_s == 0) {
        o->duration_s = strcmp(o->scenario, "cascade") == 0 ? 2.0 : 5.0;
    }
    o->tokend = o->tokend ? o->tokend : sibling("tokend");
    o->tokenctl = o->tokenctl ? o->tokenctl : sibling("tokenctl");
    if (o->baseline != NULL && o->baseline_tokenctl == NULL) {
        /* The baseline's own tokenctl: a store it seeds is one its tokend reads
         * (a newer tokenctl may write a store schema an older tokend refuses). */
        static char ctl[PATH_MAX];
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", o->baseline);
        snprintf(ctl, sizeof ctl, "%s/tokenctl", dirname(tmp));
        o->baseline_tokenctl = ctl;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static bench_opts o;
    int p = parse(argc, argv, &o);
    if (p != 0) {
        return p > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    static bench_report rp;
    rp.o = &o;
    rp.started = (long)time(NULL);
    getloadavg(rp.load_before, 3);
    snprintf(rp.scenario, sizeof rp.scenario, "%s", o.scenario);
    if (bench_pin(o.cpu) != 0) {
        bench_log("cannot pin to CPU %d", o.cpu);
    }
    int rc;
    if (strcmp(o.scenario, "introspect") == 0) {
        rc = scen_introspect(&o, &rp);
    } else if (strcmp(o.scenario, "introspect-tls") == 0) {
        rc = scen_introspect_tls(&o, &rp);
    } else if (strcmp(o.scenario, "cascade") == 0) {
        rc = scen_cascade(&o, &rp);
    } else if (strcmp(o.scenario, "revoke") == 0) {
        rc = scen_revoke(&o, &rp);
    } else if (strcmp(o.scenario, "scale") == 0) {
        rc = scen_scale(&o, &rp);
    } else if (strcmp(o.scenario, "scale-workers") == 0) {
        rc = scen_scale_workers(&o, &rp);
    } else if (strcmp(o.scenario, "token") == 0) {
        rc = scen_token(&o, &rp);
    } else if (strcmp(o.scenario, "forward-auth") == 0) {
        rc = scen_forward_auth(&o, &rp);
    } else if (strcmp(o.scenario, "forward-auth-dpop") == 0) {
        rc = scen_forward_auth_dpop(&o, &rp);
    } else if (strcmp(o.scenario, "cluster") == 0) {
        rc = scen_cluster(&o, &rp);
    } else {
        fprintf(stderr, "tokend-bench: unknown scenario \"%s\"\n%s", o.scenario, usage);
        return 2;
    }
    if (rp.nseries > 0 || rp.nmetrics > 0) {
        report_table(&rp, stdout);
        fflush(stdout);
        if (o.json_path && report_json(&rp, o.json_path) != 0) {
            rc = -1;
        }
        if (o.html_path && report_html(&rp, o.html_path) != 0) {
            rc = -1;
        }
    }
    return rc == 0 ? 0 : 1;
}
