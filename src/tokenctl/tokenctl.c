/*
 * tokenctl: the admin command line of tokend. It opens the same LMDB folder
 * as a running tokend (LMDB lets several processes share it, one writer at a
 * time) and changes state only through the store's idempotent ops and the
 * core's issuance, exactly as the daemon does.
 *
 * This file holds main, the command table and the argument helpers every
 * command uses; the commands live in cmd_*.c and seed.c. Output is one JSON
 * document on stdout; errors are one human line on stderr; exit 0 ok, 1
 * failure, 2 usage.
 */
#include "ctl.h"

#include "tokend/clock.h"
#include "tokend/limits.h"
#include "tokend/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Command table ====================================================== */

typedef struct ctl_command {
    const char *group; /* "client" */
    const char *verb;  /* "add"; NULL for single-word commands ("stats") */
    ctl_fn fn;
    unsigned npos; /* positional arguments required (exactly) */
    const ctl_opt *opts;
    const char *usage; /* arguments, for --help */
} ctl_command;

static const ctl_opt opts_none[] = {{NULL, false}};
static const ctl_opt opts_client_add[] = {
    {"name", false},        {"role", false},         {"scope", false},   {"resource", false},
    {"pending", true},      {"redirect-uri", false}, {"public", true},   {"native", true},
    {"delegate-to", false}, {"tls-subject", false},  {"tls-san", false}, {"tls-thumbprint", false},
    {NULL, false},
};
static const ctl_opt opts_client_list[] = {{"pending", true}, {NULL, false}};
static const ctl_opt opts_client_set[] = {{"delegate-to", false}, {NULL, false}};
static const ctl_opt opts_grant_list[] = {{"sub", false}, {NULL, false}};
static const ctl_opt opts_session_create[] = {{"sub", false},     {"ttl", false},
                                              {"issuer", false},  {"idp-iss", false},
                                              {"idp-sid", false}, {NULL, false}};
static const ctl_opt opts_audit[] = {{"limit", false}, {NULL, false}};
static const ctl_opt opts_reason[] = {{"reason", false}, {NULL, false}};
static const ctl_opt opts_hold[] = {{"hold", false}, {NULL, false}};
static const ctl_opt opts_token_issue[] = {
    {"sid", false}, {"client", false}, {"scope", false},  {"aud", false},         {"parent", false},
    {"ttl", false}, {"nbf-in", false}, {"refresh", true}, {"refresh-ttl", false}, {NULL, false},
};
static const ctl_opt opts_token_show[] = {{"issuer", false}, {NULL, false}};
static const ctl_opt opts_audit_agents[] = {{"client", false}, {NULL, false}};
static const ctl_opt opts_out[] = {{"out", false}, {NULL, false}};
static const ctl_opt opts_token_fanout[] = {
    {"sid", false}, {"client", false}, {"scope", false}, {"children", false},
    {"out", false}, {"ttl", false},    {NULL, false},
};
static const ctl_opt opts_now[] = {{"now", true}, {NULL, false}};
static const ctl_opt opts_ssf_add[] = {{"url", false},         {"audience", false},
                                       {"bearer-file", false}, {"events", false},
                                       {"queue-max", false},   {NULL, false}};
static const ctl_opt opts_seed[] = {
    {"sessions", false}, {"tokens-per-session", false},
    {"out", false},      {"client", false},
    {"scope", false},    {"ttl", false},
    {NULL, false},
};

static const ctl_command commands[] = {
    {"client", "add", ctl_cmd_client_add, 0, opts_client_add,
     "--name NAME --role agent|resource_server|admin [--scope \"a b\"] [--resource URL] "
     "[--pending] [--redirect-uri URI]... [--public] [--native] [--delegate-to ID|*] "
     "[--tls-subject DN | --tls-san dns:NAME|uri:URI|ip:ADDR|email:ADDR | --tls-thumbprint "
     "SHA256]"},
    {"client", "set", ctl_cmd_client_set, 1, opts_client_set,
     "CLIENT_ID --delegate-to \"ID ID…\"|*|-   (who may receive tokens exchanged from its own; "
     "- = nobody)"},
    {"client", "disable", ctl_cmd_client_disable, 1, opts_none, "CLIENT_ID"},
    {"client", "approve", ctl_cmd_client_approve, 1, opts_none,
     "CLIENT_ID   (tokens from before a disable stay dead)"},
    {"client", "rotate-secret", ctl_cmd_client_rotate_secret, 1, opts_none,
     "CLIENT_ID   (prints the new secret once; the old one stops working)"},
    {"client", "list", ctl_cmd_client_list, 0, opts_client_list, "[--pending]"},
    {"grant", "list", ctl_cmd_grant_list, 0, opts_grant_list,
     "[--sub SUBJECT]   the users' consents (one per user, client and resource)"},
    {"grant", "revoke", ctl_cmd_grant_revoke, 1, opts_none,
     "GRANT_ID   (every token issued under it dies)"},
    {"session", "create", ctl_cmd_session_create, 0, opts_session_create,
     "--sub SUBJECT [--ttl SECONDS (0 = no expiry)] [--idp-iss ISS [--idp-sid SID]]"},
    {"session", "terminate", ctl_cmd_session_terminate, 1, opts_reason, "SID [--reason TEXT]"},
    {"session", "suspend", ctl_cmd_session_suspend, 1, opts_reason,
     "SID [--reason TEXT]   (sets the admin hold)"},
    {"session", "resume", ctl_cmd_session_resume, 1, opts_hold,
     "SID [--hold admin|device|credential]   (lifts that hold only; default admin)"},
    {"session", "list", ctl_cmd_session_list, 0, opts_none, ""},
    {"session", "show", ctl_cmd_session_show, 1, opts_none, "SID"},
    {"token", "issue", ctl_cmd_token_issue, 0, opts_token_issue,
     "--sid SID --client CLIENT_ID --scope \"a b\" [--aud RESOURCE] [--parent TOKEN|-] "
     "[--ttl S] [--nbf-in S] [--refresh [--refresh-ttl S]]"},
    {"token", "revoke", ctl_cmd_token_revoke, 1, opts_none, "TOKEN|-"},
    {"token", "show", ctl_cmd_token_show, 1, opts_token_show, "TOKEN|- [--issuer URL]"},
    {"token", "fanout", ctl_cmd_token_fanout, 0, opts_token_fanout,
     "--sid SID --client CLIENT_ID --scope S --children K --out FILE [--ttl S]"},
    {"stats", NULL, ctl_cmd_stats, 0, opts_none, ""},
    {"audit", "agents", ctl_cmd_audit_agents, 0, opts_audit_agents, "[--client ID]"},
    {"cluster", "snapshot", ctl_cmd_cluster_snapshot, 0, opts_out,
     "--out DIR   a consistent copy of the store to start a new cluster node from"},
    {"keys", "list", ctl_cmd_keys_list, 0, opts_none, "   tokend's signing keys, current first"},
    {"keys", "rotate", ctl_cmd_keys_rotate, 0, opts_none,
     "   a new current signing key; tokend uses it after SIGHUP"},
    {"keys", "retire", ctl_cmd_keys_retire, 0, opts_now,
     "--now   drop every retired key at once (a leaked key); tokend stops publishing them "
     "after SIGHUP"},
    {"ssf receiver", "add", ctl_cmd_ssf_add, 1, opts_ssf_add,
     "ID --url URL --audience AUD [--bearer-file FILE] [--events KIND,…] [--queue-max N]   "
     "(kinds: session-revoked session-suspended session-resumed token-revoked grant-revoked "
     "client-disabled; default all)"},
    {"ssf receiver", "list", ctl_cmd_ssf_list, 0, opts_none,
     "   receivers with their queue depth and drops (never the bearer)"},
    {"ssf receiver", "remove", ctl_cmd_ssf_remove, 1, opts_none,
     "ID   (its undelivered events are dropped with it)"},
    {"seed", NULL, ctl_cmd_seed, 0, opts_seed,
     "--sessions N --tokens-per-session M --out FILE [--client ID] [--scope S] [--ttl S]"},
    /* Keep bare "audit" after any "audit VERB" entry: find_command takes the
     * first entry of a group whose verb is NULL or equal. */
    {"audit", NULL, ctl_cmd_audit, 0, opts_audit, "[--limit N]   session ends and suspensions"},
};

static void print_help(FILE *f)
{
    fputs("usage: tokenctl [--data DIR] [--map-size BYTES] COMMAND [ARGS]\n"
          "\n"
          "Administers the LMDB store of tokend (default DIR ./tokend-data); safe while\n"
          "tokend runs. Prints JSON on stdout; exit 0 ok, 1 failure, 2 usage error.\n"
          "A TOKEN argument of \"-\" reads the token from the first line of stdin.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < TK_ARRAY_LEN(commands); i++) {
        const ctl_command *k = &commands[i];
        fprintf(f, "  %s%s%s%s%s\n", k->group, k->verb ? " " : "", k->verb ? k->verb : "",
                k->usage[0] ? " " : "", k->usage);
    }
}

/* ==== Messages =========================================================== */

static void vmessage(const ctl *c, const char *fmt, va_list ap)
{
    char line[TK_CTL_MSG_MAX];
    vsnprintf(line, sizeof line, fmt, ap);
    if (c != NULL && c->cmd[0] != '\0') {
        fprintf(stderr, "tokenctl: %s: %s\n", c->cmd, line);
    } else {
        fprintf(stderr, "tokenctl: %s\n", line);
    }
}

int ctl_fail(const ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, fmt, ap);
    va_end(ap);
    return CTL_FAIL;
}

int ctl_usage(const ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, fmt, ap);
    va_end(ap);
    return CTL_USAGE;
}

int ctl_fail_err(const ctl *c, const char *what, int err)
{
    return ctl_fail(c, "%s: %s", what, tk_strerror(err));
}

/* ==== Option access ====================================================== */

static int opt_index(const ctl *c, const char *name)
{
    for (int i = 0; i < TK_CTL_OPTS_MAX && c->opts[i].name != NULL; i++) {
        if (strcmp(c->opts[i].name, name) == 0) {
            return i;
        }
    }
    tk_assert_fail("option not in the command's table", __FILE__, __LINE__);
}

const char *ctl_opt_str(const ctl *c, const char *name)
{
    return c->vals[opt_index(c, name)];
}

bool ctl_opt_flag(const ctl *c, const char *name)
{
    return c->vals[opt_index(c, name)] != NULL;
}

int ctl_check_str(const ctl *c, const char *what, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0) {
        return ctl_usage(c, "%s must not be empty", what);
    }
    if (n > max) {
        return ctl_usage(c, "%s is %zu bytes long; the limit is %zu", what, n, max);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return ctl_usage(c, "%s must not contain control characters", what);
        }
    }
    return CTL_OK;
}

static bool scope_char(unsigned char ch)
{
    return ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e);
}

int ctl_check_scope(const ctl *c, const char *what, const char *s)
{
    int rc = ctl_check_str(c, what, s, TK_SCOPE_MAX);
    if (rc != CTL_OK) {
        return rc;
    }
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool sep_ok = ch == ' ' && i > 0 && i + 1 < n && s[i + 1] != ' ';
        if (!scope_char(ch) && !sep_ok) {
            return ctl_usage(c,
                             "%s must be scope names separated by single spaces (no quotes, "
                             "backslashes or leading/trailing spaces)",
                             what);
        }
    }
    return CTL_OK;
}

int ctl_check_uri(const ctl *c, const char *what, const char *s)
{
    int rc = ctl_check_str(c, what, s, TK_AUD_MAX);
    if (rc != CTL_OK) {
        return rc;
    }
    const char *sep = strstr(s, "://");
    bool scheme = sep != NULL && sep != s;
    for (const char *p = s; scheme && p < sep; p++) {
        scheme = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (p > s && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'));
    }
    if (!scheme || sep[3] == '\0' || strchr(s, '#') != NULL || strchr(s, ' ') != NULL) {
        return ctl_usage(
            c, "%s must be an absolute URI without fragment (e.g. https://api.example)", what);
    }
    return CTL_OK;
}

int ctl_want_str(const ctl *c, const char *name, size_t max, const char **out)
{
    const char *v = ctl_opt_str(c, name);
    *out = v;
    if (v == NULL) {
        return CTL_OK;
    }
    char what[64];
    snprintf(what, sizeof what, "--%s", name);
    return ctl_check_str(c, what, v, max);
}

int ctl_need_str(const ctl *c, const char *name, size_t max, const char **out)
{
    if (ctl_opt_str(c, name) == NULL) {
        return ctl_usage(c, "--%s is required", name);
    }
    return ctl_want_str(c, name, max, out);
}

int ctl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s[0] == '\0' || s[0] == ' ' || s[0] == '+') {
        return TK_E_BADINPUT;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return TK_E_BADINPUT;
    }
    *out = (int64_t)v;
    return 0;
}

int ctl_want_i64(const ctl *c, const char *name, int64_t min, int64_t max, int64_t dflt,
                 int64_t *out)
{
    const char *v = ctl_opt_str(c, name);
    *out = dflt;
    if (v == NULL) {
        return CTL_OK;
    }
    if (ctl_parse_i64(v, min, max, out) != 0) {
        return ctl_usage(c, "--%s must be a whole number from %lld to %lld, not \"%s\"", name,
                         (long long)min, (long long)max, v);
    }
    return CTL_OK;
}

/* ==== Store and output =================================================== */

/* A cluster node's store takes writes only from its op log: a write made
 * here would reach this node alone and fork it from the others. */
static int refuse_cluster(ctl *c)
{
    char stream[TK_CLUSTER_NAME_MAX + 1];
    tk_txn *txn = NULL;
    int rc = tk_store_read_begin(c->store, &txn);
    if (rc == 0) {
        rc = tk_store_cluster_get(txn, stream, sizeof stream);
        tk_store_txn_end(txn);
    }
    if (rc == TK_E_NOTFOUND) {
        return CTL_OK;
    }
    tk_store_close(c->store);
    c->store = NULL;
    if (rc != 0) {
        return ctl_fail(c, "cannot read the store's cluster mark: %s", tk_strerror(rc));
    }
    return ctl_fail(c,
                    "%s is a node of cluster stream %s: a write here would reach this node "
                    "only. Write through the API of any node (POST /revoke, /token, the IdP "
                    "endpoints); read-only commands still work",
                    c->data_dir, stream);
}

int ctl_open(ctl *c, bool read_only)
{
    if (c->store != NULL) {
        return CTL_OK;
    }
    tk_store_opts o = {.dir = c->data_dir, .map_size = c->map_size, .read_only = read_only};
    int rc = tk_store_open(&o, &c->store);
    if (rc != 0) {
        c->store = NULL;
        return ctl_fail(c, "cannot open the store in %s: %s", c->data_dir, tk_strerror(rc));
    }
    return read_only ? CTL_OK : refuse_cluster(c);
}

tk_op ctl_op(uint8_t type)
{
    return tk_op_make(type, tk_now());
}

int ctl_print_json(const ctl *c, const tk_json *j)
{
    if (tk_json_finish(j) != 0) {
        return ctl_fail(c, "output larger than %zu bytes", j->cap);
    }
    fwrite(j->buf, 1, j->len, stdout);
    fputc('\n', stdout);
    if (fflush(stdout) != 0) {
        return ctl_fail(c, "writing stdout: %s", strerror(errno));
    }
    return CTL_OK;
}

/* ==== Command line ======================================================= */

/* Store the value of option i, refusing repeats. */
static int set_opt(ctl *c, int i, const char *val)
{
    if (strcmp(c->opts[i].name, "redirect-uri") == 0) {
        if (c->nredirects >= TK_OAUTH_REDIRECTS_MAX) {
            return ctl_usage(c, "at most %d --redirect-uri", TK_OAUTH_REDIRECTS_MAX);
        }
        c->redirects[c->nredirects++] = val;
        c->vals[i] = val;
        return CTL_OK;
    }
    if (c->vals[i] != NULL) {
        return ctl_usage(c, "--%s given twice", c->opts[i].name);
    }
    c->vals[i] = val;
    return CTL_OK;
}

/* One "--name", "--name value" or "--name=value" at argv[*i]. */
static int parse_option(ctl *c, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2;
    if (strcmp(arg, "help") == 0) {
        print_help(stdout);
        exit(CTL_OK);
    }
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    for (int k = 0; k < TK_CTL_OPTS_MAX && c->opts[k].name != NULL; k++) {
        if (strlen(c->opts[k].name) != nlen || strncmp(c->opts[k].name, arg, nlen) != 0) {
            continue;
        }
        if (c->opts[k].flag) {
            if (eq != NULL) {
                return ctl_usage(c, "--%s takes no value", c->opts[k].name);
            }
            return set_opt(c, k, "");
        }
        if (eq != NULL) {
            return set_opt(c, k, eq + 1);
        }
        if (*i + 1 >= argc) {
            return ctl_usage(c, "--%s needs a value", c->opts[k].name);
        }
        *i += 1;
        return set_opt(c, k, argv[*i]);
    }
    return ctl_usage(c, "unknown option %s (see tokenctl --help)", argv[*i]);
}

/* Options and positional arguments of one command, argv[first..argc). */
static int parse_command_args(ctl *c, const ctl_command *k, int argc, char **argv, int first)
{
    bool options_done = false;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = true;
        } else if (!options_done && strncmp(a, "--", 2) == 0) {
            int rc = parse_option(c, argc, argv, &i);
            if (rc != CTL_OK) {
                return rc;
            }
        } else if (c->npos < TK_CTL_POS_MAX) {
            c->pos[c->npos++] = a;
        } else {
            return ctl_usage(c, "too many arguments");
        }
    }
    if (c->npos != k->npos) {
        return ctl_usage(c, "expected %u argument%s: %s%s%s %s", k->npos, k->npos == 1 ? "" : "s",
                         k->group, k->verb ? " " : "", k->verb ? k->verb : "", k->usage);
    }
    return CTL_OK;
}

/* A group may have both a bare command and subcommands ("audit" and
 * "audit agents"): an exact verb wins, whatever the table order. */
static const ctl_command *find_command(const char *group, const char *verb)
{
    const ctl_command *bare = NULL;
    for (size_t i = 0; i < TK_ARRAY_LEN(commands); i++) {
        const ctl_command *k = &commands[i];
        if (strcmp(k->group, group) != 0) {
            continue;
        }
        if (k->verb != NULL && verb != NULL && strcmp(k->verb, verb) == 0) {
            return k;
        }
        if (k->verb == NULL && bare == NULL) {
            bare = k;
        }
    }
    return bare;
}

static bool is_group(const char *s)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(commands); i++) {
        if (strcmp(commands[i].group, s) == 0) {
            return true;
        }
    }
    return false;
}

/* Global options before the command; *i ends on the command word. */
static int parse_global(ctl *c, int argc, char **argv, int *i)
{
    for (*i = 1; *i < argc && strncmp(argv[*i], "--", 2) == 0; (*i)++) {
        const char *a = argv[*i];
        if (strcmp(a, "--help") == 0) {
            print_help(stdout);
            exit(CTL_OK);
        }
        bool data = strcmp(a, "--data") == 0, map = strcmp(a, "--map-size") == 0;
        if (!data && !map) {
            return ctl_usage(c, "unknown option %s (see tokenctl --help)", a);
        }
        if (*i + 1 >= argc) {
            return ctl_usage(c, "%s needs a value", a);
        }
        const char *v = argv[++(*i)];
        if (data) {
            if (v[0] == '\0') {
                return ctl_usage(c, "--data must not be empty");
            }
            c->data_dir = v;
        } else {
            int64_t m = 0;
            if (ctl_parse_i64(v, 1 << 20, (int64_t)TK_MAP_SIZE_MAX, &m) != 0) {
                return ctl_usage(c, "--map-size must be a byte count from %d to %llu", 1 << 20,
                                 (unsigned long long)TK_MAP_SIZE_MAX);
            }
            c->map_size = (uint64_t)m;
        }
    }
    if (*i >= argc) {
        print_help(stderr);
        return CTL_USAGE;
    }
    return CTL_OK;
}

/* Resolve argv[i] (and argv[i+1]) to a command; *next is its first argument. */
static int resolve(ctl *c, int argc, char **argv, int i, const ctl_command **out, int *next)
{
    const char *group = argv[i];
    const char *verb = i + 1 < argc ? argv[i + 1] : NULL;
    /* A two-word group ("ssf receiver add"): join the words. */
    char two[64];
    int extra = 0;
    if (verb != NULL && (size_t)snprintf(two, sizeof two, "%s %s", group, verb) < sizeof two &&
        is_group(two)) {
        group = two;
        verb = i + 2 < argc ? argv[i + 2] : NULL;
        extra = 1;
    }
    if (!is_group(group)) {
        return ctl_usage(c, "unknown command \"%s\" (see tokenctl --help)", group);
    }
    const ctl_command *k = find_command(group, verb);
    if (k == NULL) {
        return ctl_usage(c, "%s: unknown or missing subcommand%s%s (see tokenctl --help)", group,
                         verb ? " " : "", verb ? verb : "");
    }
    snprintf(c->cmd, sizeof c->cmd, "%s%s%s", k->group, k->verb ? " " : "", k->verb ? k->verb : "");
    *out = k;
    *next = (k->verb ? i + 2 : i + 1) + extra;
    return CTL_OK;
}

int main(int argc, char **argv)
{
    static ctl c; /* zeroed; large */
    c.data_dir = "./tokend-data";
    c.core.max_depth = TK_DEPTH_DEFAULT;
    tk_log_set_level(TK_LOG_WARN);

    int i = 0, next = 0;
    int rc = parse_global(&c, argc, argv, &i);
    if (rc != CTL_OK) {
        return rc;
    }
    if (strcmp(argv[i], "help") == 0) {
        print_help(stdout);
        return CTL_OK;
    }
    const ctl_command *k = NULL;
    rc = resolve(&c, argc, argv, i, &k, &next);
    if (rc != CTL_OK) {
        return rc;
    }
    c.opts = k->opts;
    rc = parse_command_args(&c, k, argc, argv, next);
    if (rc == CTL_OK) {
        rc = k->fn(&c);
    }
    if (c.store != NULL) {
        tk_store_close(c.store);
    }
    return rc;
}
