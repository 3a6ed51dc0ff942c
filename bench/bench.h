/*
 * tokend-bench: the load generator and scenarios that measure tokend against
 * its performance budget (docs/ARCHITECTURE.md §7). One thread, one io_uring ring, one
 * request in flight per keep-alive connection: the client must never be the
 * bottleneck it measures, so it does no allocation and no syscalls per request
 * beyond the ring's enter.
 *
 * Modules: hist.c (latency histogram), client.c (the load loop), proc.c (the
 * servers and tokenctl it starts, /proc readings), scenarios in scen_*.c,
 * report.c (table and JSON), html.c (the self-contained page), main.c.
 */
#ifndef TOKEND_BENCH_H
#define TOKEND_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- Histogram (hist.c) -------------------------------------------------------------------
 * Log-linear, HDR-style: values below 2^HIST_SUB_BITS ns are exact, above
 * that every power of two is split into 2^HIST_SUB_BITS buckets, so each
 * recorded value is known within 1/128 (< 0.8 %). Covers up to 2^40 ns. */
#define HIST_SUB_BITS 7
#define HIST_MAX_LOG2 40
#define HIST_BUCKETS  ((HIST_MAX_LOG2 - HIST_SUB_BITS + 2) << HIST_SUB_BITS)

typedef struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    double sum;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_reset(hist *h);
void hist_add(hist *h, uint64_t v_ns);
void hist_merge(hist *into, const hist *from);
/* The value at quantile q in [0, 1] (bucket midpoint; max for q = 1). */
uint64_t hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);
/* Bucket i: its lowest value and width (for reports). */
uint64_t hist_bucket_low(size_t i);
uint64_t hist_bucket_width(size_t i);

/* ---- Load loop (client.c) ------------------------------------------------------------------ */

enum bench_err {
    ERR_CONNECT = 0, /* connect failed */
    ERR_CLOSED,      /* peer closed or reset mid-request */
    ERR_IO,          /* send/recv error */
    ERR_PARSE,       /* response not HTTP/1.1 we understand */
    ERR_STATUS_4XX,
    ERR_STATUS_5XX,
    ERR_STATUS_OTHER, /* 1xx/3xx */
    ERR_UNEXPECTED,   /* the scenario rejected a 2xx answer */
    ERR_KINDS,
};
extern const char *const bench_err_names[ERR_KINDS];

/* Bits of a request tag the loop understands; the rest belong to the scenario. */
#define TAG_SIDE 0x80000000u /* not counted in requests, latency or errors */

#define LOAD_GROUPS_MAX 8
#define TURNS_MAX       256 /* per group and run: 128 s of 500 ms turns for two groups */

typedef struct load_cfg load_cfg;
struct ssl_ctx_st;

struct load_cfg {
    uint16_t port;
    unsigned conns;        /* request connections, plus nside side connections */
    unsigned nside;        /* parked until load_wake(); e.g. cascade's end request */
    double duration_s;     /* measured window */
    double warmup_s;       /* before the window, not counted */
    double rate;           /* requests/s over all conns; 0 = closed loop */
    uint64_t max_requests; /* stop after this many (0 = no limit) */
    bool drain;            /* at the end, wait (10 s at most) for every answer */
    const char *label;     /* progress line */
    /* TLS: every connection does a blocking handshake at connect, then runs
     * over memory BIOs in the same ring (the request is encrypted before its
     * send, the answer decrypted after its receive). NULL = plain HTTP. */
    struct ssl_ctx_st *tls;
    bool progress;
    void *arg;
    /* Write the next request for conn into buf; return its length, or 0 to
     * park the connection (a side connection until load_wake, a request
     * connection for good). */
    size_t (*make)(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag);
    /* A complete response. sent_ns is the intended send time (open loop) or
     * the actual one. Return false to count it as ERR_UNEXPECTED. */
    bool (*done)(void *arg, unsigned conn, uint32_t tag, int status, const char *body, size_t len,
                 uint64_t sent_ns, uint64_t now_ns);
    /* Called about every millisecond; return false to end the run early. */
    bool (*tick)(void *arg, uint64_t now_ns);
    /* The measured window starts (start = true) or ends: sample /proc here. */
    void (*window)(void *arg, bool start);
    /* Optional: the head of every complete response (status line to the
     * blank line) before done(); e.g. a Location header. */
    void (*head)(void *arg, unsigned conn, uint32_t tag, const char *head, size_t len);
    /* Turns (ngroups >= 2): conns connections per group, group g's to
     * group_port[g] (port is then unused); the groups take turns of turn_ms,
     * only the current group's connections send, and an answer counts only
     * after the first skip_ms of its group's turn (the previous turn's
     * answers drain meanwhile). res is then an array of ngroups results,
     * each with its per-turn rates. turn() is called when a group's counted
     * part of a turn starts and ends (sample /proc there). */
    unsigned ngroups;
    uint16_t group_port[LOAD_GROUPS_MAX];
    double turn_ms, skip_ms;
    void (*turn)(void *arg, unsigned group, bool start);
};

typedef struct load_result {
    hist lat;
    uint64_t requests; /* answered within the window (including errors by status) */
    uint64_t ok;       /* 2xx accepted by done() */
    uint64_t errors[ERR_KINDS];
    double seconds;       /* the window's length */
    double client_cpu_ns; /* this process's CPU time in the window */
    /* Turns: answers/s in each counted part of a turn of this group. */
    double turn_rps[TURNS_MAX];
    unsigned nturns;
} load_result;

typedef struct load_run load_run;
int load_run_once(const load_cfg *cfg, load_result *res);
/* From tick(): let side connection i (0-based among the side ones) make a request. */
void load_wake(load_run *ld, unsigned side);
load_run *load_current(void);
uint64_t bench_now_ns(void);

/* ---- Processes and /proc (proc.c) ---------------------------------------------------------- */

#define SERVER_KIDS_MAX 16 /* worker processes of one server (nginx) */

typedef struct server_proc {
    pid_t pid;
    pid_t kids[SERVER_KIDS_MAX]; /* nginx's worker processes when it has a master */
    unsigned nkids;
    uint16_t port;
    uint16_t tls_port; /* its TLS listener after bench_tls_servers (0: none) */
    char dir[256];     /* its temporary folder (data, logs) */
    char name[32];
} server_proc;

typedef struct proc_cpu {
    uint64_t total_ns; /* sum of every thread's run time (schedstat) */
    uint64_t user_ticks, sys_ticks;
} proc_cpu;

typedef struct proc_mem {
    uint64_t rss_kb, private_clean_kb, private_dirty_kb, anon_kb;
} proc_mem;

int bench_mkdtemp(const char *what, char *out, size_t cap);
void bench_rmtree(const char *dir);
/* Run argv (stdout captured into a malloc'd NUL-terminated *out when out is
 * not NULL); returns the exit status or -1. */
int bench_run(char *const argv[], char **out);
/* From now on, tokend_start adds a TLS listener and nginx_start listens with
 * TLS only, both with this certificate and key (PEM files). */
void bench_tls_servers(const char *cert, const char *key);
int tokend_start(const char *tokend, const char *data_dir, int cpu, server_proc *sp);
/* From now on, tokend_start adds these space-separated options and
 * nginx_start these directives in its location (e.g. add_header lines);
 * NULL or "" for none. */
void bench_tokend_extra(const char *args);
/* From now on, tokend_start runs tokend with --workers n and nginx_start runs
 * a master with n worker processes (reuseport), each pinned to n CPUs from
 * the CPU given (1: one worker, one process, the default). */
void bench_server_workers(unsigned n);
void bench_nginx_extra(const char *conf);
bool nginx_available(void);
int nginx_start(const char *body, size_t body_len, int cpu, server_proc *sp);
void server_stop(server_proc *sp);
/* A free loopback port (bound and released: free when it was asked for). */
uint16_t bench_free_port(void);
/* Start argv (stderr into sp->dir/server.log; sp->dir and sp->port set by the
 * caller) and wait until sp->port accepts. 0 or -1 (stopped, log shown). */
int bench_spawn_server(char *const argv[], server_proc *sp);
int proc_cpu_read(pid_t pid, proc_cpu *out);
/* The server's CPU: its process and its worker processes. */
int server_cpu_read(const server_proc *sp, proc_cpu *out);
int proc_mem_read(pid_t pid, proc_mem *out);
int bench_pin(int cpu);
/* Pin to CPUs cpu … cpu + n - 1 (cpu < 0: no pin). */
int bench_pin_n(int cpu, unsigned n);
/* A string member "key":"…" of a flat JSON document; 0 or -1. */
int json_get_str(const char *doc, const char *key, char *out, size_t cap);

/* ---- Tokens (scen_common.c) ------------------------------------------------------------------ */

#define TOKEN_LEN 50

typedef struct token_file {
    char *map;
    size_t bytes;
    size_t n; /* tokens; token i is at map + i * (TOKEN_LEN + 1) */
} token_file;

int token_file_open(const char *path, token_file *tf);
void token_file_close(token_file *tf);
static inline const char *token_at(const token_file *tf, size_t i)
{
    return tf->map + i * (TOKEN_LEN + 1);
}

/* xorshift64* */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* "Authorization: Basic …\r\n" for id:secret (form-encoding is not needed:
 * our ids and secrets are base64url). */
int basic_header(const char *id, const char *secret, char *out, size_t cap);
/* A POST with a form body "token=<tok>" to path; returns its length or 0. */
size_t form_request(char *buf, size_t cap, const char *path, const char *authz, const char *tok,
                    size_t tok_len);

/* ---- Options and report (main.c, report.c, html.c) ------------------------------------------- */

typedef struct bench_opts {
    const char *scenario;
    const char *tokend, *tokenctl;
    const char *baseline;          /* a second tokend binary loaded in turn (before/after) */
    const char *baseline_tokenctl; /* seeds the baseline's own store */
    const char *json_path, *html_path;
    unsigned conns;
    double duration_s, warmup_s, rate;
    unsigned rounds;
    int cpu, server_cpu;
    char tokens_list[128]; /* "10000,10000000" */
    char k_list[128];      /* cascade sizes */
    unsigned repeat;
    double unknown_share, revoked_share;
    bool no_nginx, progress, keep;
    bool signed_answers; /* introspect: also load RFC 9701 signed introspection */
    const char *grant;   /* token: code, refresh, exchange or all */
    double turn_ms, skip_ms;
    bool control;     /* forward-auth: nginx against an identical nginx */
    unsigned nats;    /* cluster: nats-servers (and stream replicas); 0 = 3 */
    unsigned workers; /* scale-workers: the server's workers (and CPUs), default 2 */
} bench_opts;

#define SERIES_MAX  8
#define ROUNDS_MAX  32
#define METRICS_MAX 192
#define PAIRS_MAX   8
#define TARGETS_MAX 8
#define TABLE_COLS  10
#define TABLE_ROWS  64

typedef struct bench_round {
    double rps, p99_us, cpu_us_per_req;
} bench_round;

typedef struct bench_series {
    char name[48];
    load_result r; /* merged over rounds */
    proc_cpu cpu;  /* server CPU summed over the windows */
    bool have_cpu;
    bench_round rounds[ROUNDS_MAX];
    unsigned nrounds;
} bench_series;

typedef struct bench_target {
    char name[48];
    double value, threshold;
    bool at_most; /* value <= threshold, otherwise >= */
    bool met;
    char note[96];
} bench_target;

typedef struct bench_report {
    const bench_opts *o;
    char scenario[32];
    long started;
    double load_before[3];
    bench_series series[SERIES_MAX];
    unsigned nseries;
    struct {
        char name[48];
        double value;
    } metrics[METRICS_MAX];
    unsigned nmetrics;
    bench_target targets[TARGETS_MAX];
    unsigned ntargets;
    /* Before/after (--baseline): series after[i] against series before[i],
     * indices into series; ratio names the turns_ratio metrics (NAME,
     * NAME_turn_median, …), "" when the loads ran as rounds. */
    struct {
        char name[32];
        unsigned after, before;
        char ratio[40];
    } pairs[PAIRS_MAX];
    unsigned npairs;
    /* One scenario-specific table (cascade trials, scale sizes). */
    char table_name[32];
    char cols[TABLE_COLS][32];
    unsigned ncols;
    double rows[TABLE_ROWS][TABLE_COLS];
    unsigned nrows;
} bench_report;

bench_series *report_series(bench_report *rp, const char *name);
void report_metric(bench_report *rp, const char *name, double v);
void report_target(bench_report *rp, const char *name, double v, double threshold, bool at_most,
                   const char *note);
/* A before/after pair for the table, JSON and HTML (ratio: see pairs). */
void report_pair(bench_report *rp, const char *name, const bench_series *after,
                 const bench_series *before, const char *ratio);
/* The value of metric name, or NAN. */
double report_metric_get(const bench_report *rp, const char *name);
double series_rps(const bench_series *s);
double series_cpu_us(const bench_series *s); /* server CPU µs per request, or -1 */
void report_table(const bench_report *rp, FILE *f);
int report_json(const bench_report *rp, const char *path);
int report_html(const bench_report *rp, const char *path);

/* ---- Scenarios ------------------------------------------------------------------------------ */

int scen_introspect(const bench_opts *o, bench_report *rp);
int scen_scale(const bench_opts *o, bench_report *rp);
int scen_scale_workers(const bench_opts *o, bench_report *rp);
int scen_cascade(const bench_opts *o, bench_report *rp);
int scen_revoke(const bench_opts *o, bench_report *rp);
int scen_introspect_tls(const bench_opts *o, bench_report *rp);

/* scen_introspect.c: introspect against tokend and nginx over TLS when tls
 * is a client context (TLS servers set up by the caller), and the handshake
 * rates when hs_seconds > 0. */
int introspect_run(const bench_opts *o, bench_report *rp, struct ssl_ctx_st *tls);
/* scen_tls.c: handshakes per second (full, or resumed from one session)
 * against port for seconds, and the server's CPU per handshake. */
int tls_handshake_rate(struct ssl_ctx_st *ctx, uint16_t port, pid_t pid, bool resume,
                       double seconds, double *per_s, double *cpu_us);

/* Shared by the scenarios (scen_common.c). */
typedef struct seeded {
    server_proc srv;
    char data[256];
    char token_path[300];
    token_file tf;
    char agent_id[160], agent_secret[160]; /* the seed agent (owns every token) */
    char rs_id[160], rs_secret[160];       /* a resource server, for introspection */
    char agent_authz[512], rs_authz[512];
} seeded;

/* A fresh data folder seeded with n tokens (sessions of 100), a resource
 * server client, and tokend started on it. */
int seeded_start(const bench_opts *o, size_t n, seeded *s);
/* The same with the given binaries (--baseline: its own store, seeded by its
 * own tokenctl). */
int seeded_start_bins(const bench_opts *o, size_t n, const char *tokend, const char *tokenctl,
                      seeded *s);
void seeded_stop(const bench_opts *o, seeded *s);
int ctl_client_add(const bench_opts *o, const char *data, const char *role, char *id, size_t id_cap,
                   char *secret, size_t secret_cap);
/* Sample the server's CPU (window hook helper). */
void series_window(bench_series *s, const server_proc *sp, bool start, proc_cpu *mark);
/* Fold one run into a series (and a round entry). */
void series_add_run(bench_series *s, const load_result *r, const proc_cpu *cpu);
/* "10000,10k,10M" into out; returns the count or -1. */
int parse_sizes(const char *s, size_t *out, int max);
/* The first size of a --tokens list (0 when empty). */
size_t first_size(const char *list);
/* Sorts v. */
double median(double *v, unsigned n);
/* scen_introspect.c: revoke tokens [0, n) of s's file over HTTP; then check
 * that n of them introspect as inactive. 0 or -1. */
int revoke_first(const bench_opts *o, const seeded *s, size_t n);
int check_revoked(const bench_opts *o, const seeded *s, size_t n);
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- DPoP proofs (dpop.c) ---------------------------------------------------------------- */

typedef struct dpop_key {
    struct evp_pkey_st *pk; /* a P-256 key pair */
    uint64_t jti_prefix;    /* random: jtis differ between runs */
    char hdr[256];          /* base64url of the proof header (its public jwk) */
    size_t hdr_len;
} dpop_key;

#define DPOP_PROOF_CAP 1024

int dpop_key_new(dpop_key *k);
void dpop_key_free(dpop_key *k);
/* A proof for htm htu (ath of at when at is not NULL) with jti number seq and
 * iat into out (NUL-terminated); its length or 0. */
size_t dpop_proof(const dpop_key *k, const char *htm, const char *htu, const char *at, uint64_t seq,
                  int64_t iat, char *out, size_t cap);

/* ---- The authorization server from outside (as_client.c) ------------------------------------ */

#define AS_RESOURCE     "https://mcp.bench/mcp"
#define AS_RESOURCE_ENC "https%3A%2F%2Fmcp.bench%2Fmcp"
#define CODE_CAP        64  /* an authorization code: 43 base64url characters */
#define AS_TOKEN_CAP    128 /* an access or refresh token as /token returns it */

typedef struct http_answer {
    int status;
    size_t len, head_len;
    const char *body; /* into buf, NUL-terminated */
    char buf[32768];
} http_answer;

/* One request on a fresh connection, the whole answer read. 0 or -errno. */
int http_call(uint16_t port, const char *req, size_t req_len, http_answer *a);
const char *http_header(const http_answer *a, const char *name, size_t *len);
/* A header's value in a response head, or NULL. */
const char *head_find(const char *head, size_t head_len, const char *name, size_t *len);
int param_value(const char *s, size_t len, const char *name, char *out, size_t cap);

typedef struct as_agent {
    uint16_t port;
    char client_id[96]; /* a public agent: code + refresh */
    char sub_id[96];    /* a public sub-agent: token exchange */
    char cookie[96];    /* the signed-in browser's session cookie */
    char prelogin[96];  /* its pre-login cookie (/authorize sets it; /login requires it) */
    char authorize[768];
} as_agent;

typedef struct code_list {
    char (*codes)[CODE_CAP];
    size_t n;
} code_list;

typedef struct tok_pair {
    char at[AS_TOKEN_CAP], rt[AS_TOKEN_CAP];
} tok_pair;

/* Write DATA/resources.json and make tokend_start run the authorization
 * server on it (dev login, open registration, codes live 600 s). */
int as_prepare(const char *data_dir);
/* The same with more tokend options. */
int as_prepare_with(const char *data_dir, const char *more);
/* Register the agents, sign in as "bench" and approve once. */
int as_agent_start(as_agent *ag, uint16_t port);
/* tokenctl client set AGENT --delegate-to SUB. */
int as_delegate(const char *tokenctl, const char *data, const as_agent *ag);
/* Codes through GET /authorize for up to seconds, at most cap of them. */
int as_mint_codes(const bench_opts *o, as_agent *ag, double seconds, size_t cap, code_list *out);
void code_list_free(code_list *cl);
/* n codes minted and redeemed: n (access, refresh) pairs. */
int as_token_pairs(const bench_opts *o, as_agent *ag, size_t n, tok_pair *out);
/* The same, each code redeemed with a DPoP proof by dk: DPoP-bound tokens. */
int as_token_pairs_dpop(const bench_opts *o, as_agent *ag, size_t n, tok_pair *out,
                        const dpop_key *dk);
/* POST /token redeeming code (the agent's PKCE verifier), with a DPoP
 * proof by dk when not NULL; its length or 0. */
size_t redeem_request(char *buf, size_t cap, const as_agent *ag, const char *code,
                      const dpop_key *dk);

/* ---- Turns (scen_token.c) ---------------------------------------------------------------------
 */

/* A turns run's group as a series: its totals, server CPU, and each turn's
 * rate as a round. */
void turns_series(bench_series *se, const load_result *r, const proc_cpu *cpu);
/* Metrics NAME (rate of a / rate of b) and, over the turn pairs (turn k of a
 * with turn k of b), NAME_turn_median, _turn_sd, _turn_min, _turn_max and
 * _ci95 (half width of the 95 % interval of the mean); returns the ratio. */
double turns_ratio(bench_report *rp, const char *name, const load_result *a, const load_result *b);
int scen_token(const bench_opts *o, bench_report *rp);
int scen_forward_auth(const bench_opts *o, bench_report *rp);
/* forward-auth with DPoP-bound tokens and a fresh proof per request. */
int scen_forward_auth_dpop(const bench_opts *o, bench_report *rp);
/* scen_cluster.c: the replication window of cluster mode (issue 14). */
int scen_cluster(const bench_opts *o, bench_report *rp);

#endif
