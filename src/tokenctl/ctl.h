/*
 * What the tokenctl commands share: the parsed command line of one command
 * (positional arguments plus "--name value" options checked against the
 * command's table entry), the store it opens lazily, and the helpers that turn
 * bad input into a one-line message on stderr and the right exit code
 * (0 ok, 1 failure, 2 usage).
 */
#ifndef TOKEND_TOKENCTL_CTL_H
#define TOKEND_TOKENCTL_CTL_H

#include "tokend/common.h"
#include "tokend/core.h"
#include "tokend/json.h"
#include "tokend/limits.h"
#include "tokend/store.h"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

typedef struct ctl_opt {
    const char *name; /* without "--" */
    bool flag;        /* takes no value */
} ctl_opt;

typedef struct ctl {
    const char *data_dir;
    uint64_t map_size;
    tk_store *store;
    tk_core_cfg core;
    /* The command being run, for messages ("session create"). */
    char cmd[32];
    const ctl_opt *opts; /* the command's allowed options, NULL-terminated */
    const char *pos[TK_CTL_POS_MAX];
    unsigned npos;
    const char *vals[TK_CTL_OPTS_MAX]; /* value per option (flags: "" when set) */
    /* --redirect-uri, the one repeatable option (client add). */
    const char *redirects[TK_OAUTH_REDIRECTS_MAX];
    unsigned nredirects;
} ctl;

/* Messages: "tokenctl: <cmd>: <text>" on stderr; return CTL_FAIL / CTL_USAGE. */
__attribute__((format(printf, 2, 3))) int ctl_fail(const ctl *c, const char *fmt, ...);
__attribute__((format(printf, 2, 3))) int ctl_usage(const ctl *c, const char *fmt, ...);
/* CTL_FAIL with "<what>: <tk_strerror(err)>". */
int ctl_fail_err(const ctl *c, const char *what, int err);

/* Option values: NULL when absent. */
const char *ctl_opt_str(const ctl *c, const char *name);
bool ctl_opt_flag(const ctl *c, const char *name);

/* A required / optional string option, non-empty and at most max bytes.
 * Return CTL_OK or CTL_USAGE (message printed). */
int ctl_need_str(const ctl *c, const char *name, size_t max, const char **out);
int ctl_want_str(const ctl *c, const char *name, size_t max, const char **out);
/* A string (positional or value) checked for emptiness, length and control
 * characters; what names it in the message. */
int ctl_check_str(const ctl *c, const char *what, const char *s, size_t max);
/* An RFC 6749 §3.3 scope: scope-tokens (%x21 / %x23-5B / %x5D-7E) separated
 * by single spaces, at most TK_SCOPE_MAX bytes. */
int ctl_check_scope(const ctl *c, const char *what, const char *s);
/* An absolute URI (scheme "://" …) of at most TK_AUD_MAX bytes, no fragment. */
int ctl_check_uri(const ctl *c, const char *what, const char *s);
/* An optional integer option in [min, max]; *out keeps dflt when absent. */
int ctl_want_i64(const ctl *c, const char *name, int64_t min, int64_t max, int64_t dflt,
                 int64_t *out);
/* Parse a whole decimal integer in [min, max]: 0 or TK_E_BADINPUT. */
int ctl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Open the store (once; read_only for commands that only look). Returns
 * CTL_OK or CTL_FAIL (message printed). */
int ctl_open(ctl *c, bool read_only);

/* A zeroed op of this type decided now (fill its member next). */
tk_op ctl_op(uint8_t type);

/* Print a finished JSON document and a newline on stdout. */
int ctl_print_json(const ctl *c, const tk_json *j);

int ctl_cmd_client_set(ctl *c);
int ctl_cmd_grant_list(ctl *c);
int ctl_cmd_grant_revoke(ctl *c);

/* One command's handler; returns the exit code. */
typedef int (*ctl_fn)(ctl *c);

/* JSON buffer for one object (limits.h). */
#define CTL_JSON_MAX TK_CTL_JSON_MAX

/* Commands (cmd_client.c, cmd_session.c, cmd_token.c). */
int ctl_cmd_client_add(ctl *c);
int ctl_cmd_client_disable(ctl *c);
int ctl_cmd_client_approve(ctl *c);
int ctl_cmd_client_list(ctl *c);
int ctl_cmd_client_rotate_secret(ctl *c);
int ctl_cmd_session_create(ctl *c);
int ctl_cmd_session_terminate(ctl *c);
int ctl_cmd_session_suspend(ctl *c);
int ctl_cmd_session_resume(ctl *c);
int ctl_cmd_session_list(ctl *c);
int ctl_cmd_session_show(ctl *c);
int ctl_cmd_token_issue(ctl *c);
int ctl_cmd_token_revoke(ctl *c);
int ctl_cmd_token_show(ctl *c);
int ctl_cmd_stats(ctl *c);
/* cmd_audit.c */
int ctl_cmd_audit_agents(ctl *c);
int ctl_cmd_cluster_snapshot(ctl *c);

/* cmd_audit.c */
int ctl_cmd_audit(ctl *c);
/* Append an admin audit record for a session state change (in txn). */
int ctl_audit_admin(tk_txn *txn, const tk_op *op);

/* cmd_fanout.c: a root token and K children delegated from it (benchmarks). */
int ctl_cmd_token_fanout(ctl *c);

/* seed.c */
int ctl_cmd_seed(ctl *c);

/* cmd_keys.c: tokend's own signing keys. */
int ctl_cmd_keys_list(ctl *c);
int ctl_cmd_keys_rotate(ctl *c);
int ctl_cmd_keys_retire(ctl *c);
int ctl_cmd_ssf_add(ctl *c);
int ctl_cmd_ssf_list(ctl *c);
int ctl_cmd_ssf_remove(ctl *c);

/* Defaults shared by the commands (seconds). */
#define CTL_SESSION_TTL_DEFAULT (7 * 86400)
#define CTL_ACCESS_TTL_DEFAULT  3600
#define CTL_REFRESH_TTL_DEFAULT (30 * 86400)
/* Longest ttl any command accepts: ten years. */
#define CTL_TTL_MAX (10LL * 366 * 86400)

#endif
