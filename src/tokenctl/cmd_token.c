/*
 * tokenctl token commands and stats. issue runs the core's issuance (the
 * same checks the /token endpoint will make); revoke plans with the core as
 * an administrator and applies the planned idempotent ops, exactly what POST
 * /revoke makes the committer do; show prints the introspection answer the
 * daemon would give a caller without audience restriction.
 *
 * A TOKEN argument of "-" is read from stdin, so tokens need not appear in
 * the process list or shell history.
 */
#include "ctl.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/introspect_json.h"
#include "tokend/limits.h"

#include <stdio.h>
#include <string.h>

/* ==== Token arguments ==================================================== */

/* Copy the token named by arg ("-" = first line of stdin) into buf. */
static int token_arg(const ctl *c, const char *what, const char *arg, char *buf, size_t cap)
{
    TK_ASSERT(cap == TK_TOKEN_IN_MAX + 2);
    if (strcmp(arg, "-") == 0) {
        if (fgets(buf, (int)cap, stdin) == NULL) {
            return ctl_usage(c, "%s: nothing on stdin", what);
        }
        size_t n = strcspn(buf, "\r\n");
        if (n + 1 == cap) {
            return ctl_usage(c, "%s is longer than %d bytes", what, TK_TOKEN_IN_MAX);
        }
        buf[n] = '\0';
    } else {
        size_t n = strlen(arg);
        if (n > TK_TOKEN_IN_MAX) {
            return ctl_usage(c, "%s is longer than %d bytes", what, TK_TOKEN_IN_MAX);
        }
        memcpy(buf, arg, n + 1);
    }
    return buf[0] == '\0' ? ctl_usage(c, "%s must not be empty", what) : CTL_OK;
}

/* ==== token issue ======================================================== */

typedef struct issue_args {
    const char *sid, *client, *scope, *aud, *parent_arg;
    int64_t ttl, nbf_in, refresh_ttl;
    bool refresh;
} issue_args;

static int issue_args_parse(const ctl *c, issue_args *a)
{
    int rc = ctl_need_str(c, "sid", TK_ID_MAX, &a->sid);
    if (rc == CTL_OK) {
        rc = ctl_need_str(c, "client", TK_ID_MAX, &a->client);
    }
    if (rc == CTL_OK) {
        rc = ctl_need_str(c, "scope", TK_SCOPE_MAX, &a->scope);
    }
    if (rc == CTL_OK) {
        rc = ctl_check_scope(c, "--scope", a->scope);
    }
    a->aud = ctl_opt_str(c, "aud");
    if (rc == CTL_OK && a->aud != NULL) {
        rc = ctl_check_uri(c, "--aud", a->aud);
    }
    a->parent_arg = ctl_opt_str(c, "parent");
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "ttl", 1, CTL_TTL_MAX, CTL_ACCESS_TTL_DEFAULT, &a->ttl);
    }
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "nbf-in", 0, CTL_TTL_MAX, 0, &a->nbf_in);
    }
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "refresh-ttl", 1, CTL_TTL_MAX, CTL_REFRESH_TTL_DEFAULT,
                          &a->refresh_ttl);
    }
    a->refresh = ctl_opt_flag(c, "refresh");
    if (rc == CTL_OK && a->refresh && a->parent_arg != NULL) {
        rc = ctl_usage(c, "--refresh cannot be combined with --parent (delegated tokens "
                          "have no refresh token)");
    }
    if (rc == CTL_OK && !a->refresh && ctl_opt_str(c, "refresh-ttl") != NULL) {
        rc = ctl_usage(c, "--refresh-ttl needs --refresh");
    }
    return rc;
}

static int issue_fail(const ctl *c, int rc, const char *why)
{
    if (why != NULL) {
        return ctl_fail(c, "%s", why);
    }
    if (rc == TK_E_NOTFOUND) {
        return ctl_fail(c, "no such session, client or parent token");
    }
    return ctl_fail_err(c, "issuing", rc);
}

static int issue_txn(ctl *c, const tk_issue_req *req, tk_issued *out)
{
    tk_txn *txn = NULL;
    const char *why = NULL;
    int rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    rc = tk_core_issue(txn, &c->core, req, tk_now(), out, &why);
    if (rc != 0) {
        tk_store_txn_end(txn);
        return issue_fail(c, rc, why);
    }
    rc = tk_store_commit(txn);
    return rc == 0 ? CTL_OK : ctl_fail_err(c, "commit", rc);
}

static int issue_print(const ctl *c, const tk_issued *out, const char *scope)
{
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "access_token", out->access_token);
    tk_json_kv_cstr(&j, "token_type", "Bearer");
    tk_json_kv_int(&j, "expires_in", out->expires_in);
    tk_json_kv_cstr(&j, "scope", scope);
    tk_json_kv_cstr(&j, "grant_id", out->grant_id);
    if (out->refresh_token[0] != '\0') {
        tk_json_kv_cstr(&j, "refresh_token", out->refresh_token);
    }
    tk_json_obj_end(&j);
    int rc = ctl_print_json(c, &j);
    tk_cleanse(buf, sizeof buf);
    return rc;
}

int ctl_cmd_token_issue(ctl *c)
{
    issue_args a = {0};
    char parent[TK_TOKEN_IN_MAX + 2];
    int rc = issue_args_parse(c, &a);
    if (rc == CTL_OK && a.parent_arg != NULL) {
        rc = token_arg(c, "--parent", a.parent_arg, parent, sizeof parent);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    tk_issue_req req = {.sid = tk_slice_from_str(a.sid),
                        .client_id = tk_slice_from_str(a.client),
                        .scope = tk_slice_from_str(a.scope),
                        .aud = tk_slice_from_str(a.aud ? a.aud : ""),
                        .parent_token = a.parent_arg ? parent : NULL,
                        .ttl = a.ttl,
                        .not_before = a.nbf_in,
                        .refresh = a.refresh,
                        .refresh_ttl = a.refresh_ttl};
    tk_issued out;
    memset(&out, 0, sizeof out);
    rc = ctl_open(c, false);
    if (rc == CTL_OK) {
        rc = issue_txn(c, &req, &out);
    }
    if (rc == CTL_OK) {
        rc = issue_print(c, &out, a.scope);
    }
    tk_cleanse(&out, sizeof out);
    tk_cleanse(parent, sizeof parent);
    return rc;
}

/* ==== token revoke ======================================================= */

/* Plan as an administrator and apply the planned ops in one write txn. */
static int revoke_txn(ctl *c, const uint8_t hash[TK_HASH_LEN], unsigned *changed)
{
    static const tk_client_rec admin = {.name = TK_SLICE_LIT("tokenctl"),
                                        .scope = TK_SLICE_LIT(""),
                                        .resource = TK_SLICE_LIT(""),
                                        .role = TK_ROLE_ADMIN,
                                        .status = TK_CLIENT_APPROVED};
    tk_commit_req req;
    memset(&req, 0, sizeof req);
    tk_txn *txn = NULL;
    int rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    rc = tk_core_plan_revoke(txn, TK_SLICE_LIT("tokenctl"), &admin, hash, tk_now(), &req);
    TK_ASSERT(rc != 0 || req.nops <= TK_OPS_PER_REQ);
    for (unsigned i = 0; rc == 0 && i < req.nops; i++) {
        bool ch = false;
        rc = tk_store_apply(txn, &req.ops[i], &ch);
        *changed += ch ? 1u : 0u;
    }
    if (rc != 0) {
        tk_store_txn_end(txn);
        return ctl_fail_err(c, "revoking", rc);
    }
    rc = tk_store_commit(txn);
    return rc == 0 ? CTL_OK : ctl_fail_err(c, "commit", rc);
}

int ctl_cmd_token_revoke(ctl *c)
{
    char tok[TK_TOKEN_IN_MAX + 2];
    uint8_t hash[TK_HASH_LEN];
    int rc = token_arg(c, "TOKEN", c->pos[0], tok, sizeof tok);
    if (rc != CTL_OK) {
        return rc;
    }
    tk_sha256(tok, strlen(tok), hash);
    tk_cleanse(tok, sizeof tok);
    unsigned changed = 0;
    rc = ctl_open(c, false);
    if (rc == CTL_OK) {
        rc = revoke_txn(c, hash, &changed);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    char buf[64];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_bool(&j, "revoked", changed > 0);
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}

/* ==== token show ========================================================= */

int ctl_cmd_token_show(ctl *c)
{
    char tok[TK_TOKEN_IN_MAX + 2];
    uint8_t hash[TK_HASH_LEN];
    const char *issuer = ctl_opt_str(c, "issuer");
    int rc = issuer ? ctl_check_uri(c, "--issuer", issuer) : CTL_OK;
    if (rc == CTL_OK) {
        rc = token_arg(c, "TOKEN", c->pos[0], tok, sizeof tok);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    tk_sha256(tok, strlen(tok), hash);
    tk_cleanse(tok, sizeof tok);
    rc = ctl_open(c, true);
    if (rc != CTL_OK) {
        return rc;
    }
    tk_txn *txn = NULL;
    rc = tk_store_read_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    static tk_introspection r;
    static char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    rc = tk_core_introspect(txn, &c->core, hash, tk_now(), NULL, &r);
    if (rc == 0) { /* r's slices live in the map: render before the txn ends */
        tk_introspect_json(&r, tk_slice_from_str(issuer ? issuer : ""), &j);
    }
    tk_store_txn_end(txn);
    return rc == 0 ? ctl_print_json(c, &j) : ctl_fail_err(c, "introspection", rc);
}

/* ==== stats ============================================================== */

int ctl_cmd_stats(ctl *c)
{
    int rc = ctl_open(c, true);
    if (rc != CTL_OK) {
        return rc;
    }
    tk_txn *txn = NULL;
    rc = tk_store_read_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    tk_store_stats s;
    memset(&s, 0, sizeof s);
    rc = tk_store_stats_get(txn, &s);
    tk_store_txn_end(txn);
    if (rc != 0) {
        return ctl_fail_err(c, "reading statistics", rc);
    }
    char buf[512];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_int(&j, "tokens", (int64_t)s.tokens);
    tk_json_kv_int(&j, "sessions", (int64_t)s.sessions);
    tk_json_kv_int(&j, "grants", (int64_t)s.grants);
    tk_json_kv_int(&j, "clients", (int64_t)s.clients);
    tk_json_kv_int(&j, "map_size", (int64_t)s.map_size);
    tk_json_kv_int(&j, "map_used", (int64_t)s.map_used);
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}
