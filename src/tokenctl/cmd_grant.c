/*
 * tokenctl grant commands: list the users' consents (the grants the
 * authorization server records, one per user, client and resource, and the
 * grants tokenctl token issue made) and revoke one — TK_OP_REVOKE_GRANT,
 * the same op /revoke applies for a refresh token, so every token issued
 * under the grant dies with the commit (the cascade checks the grant).
 */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

typedef struct grant_list_state {
    const char *sub; /* NULL = every user */
    uint64_t n;
    tk_txn *txn; /* to name a metadata-document client by its URL */
} grant_list_state;

static int grant_one(void *arg, tk_slice id, const tk_grant_rec *g)
{
    grant_list_state *ls = arg;
    if (ls->sub != NULL && !tk_slice_eq(g->sub, tk_slice_from_str(ls->sub))) {
        return 0;
    }
    char buf[CTL_JSON_MAX + TK_CIMD_URL_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_str(&j, "grant_id", id);
    tk_client_rec c;
    bool url = tk_store_get_client(ls->txn, g->client_id, &c) == 0 && c.metadata_url.len > 0;
    tk_json_kv_str(&j, "client_id", url ? c.metadata_url : g->client_id);
    tk_json_kv_str(&j, "sub", g->sub);
    if (g->resource.len > 0) {
        tk_json_kv_str(&j, "resource", g->resource);
    }
    tk_json_kv_str(&j, "scope", g->scope);
    tk_json_kv_cstr(&j, "state", g->state == TK_GRANT_ACTIVE ? "active" : "revoked");
    tk_json_kv_int(&j, "created", g->created);
    if (g->revoked_at != 0) {
        tk_json_kv_int(&j, "revoked_at", g->revoked_at);
    }
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        return TK_E_TOOBIG;
    }
    fputs(ls->n++ == 0 ? "\n  " : ",\n  ", stdout);
    fwrite(buf, 1, j.len, stdout);
    return 0;
}

int ctl_cmd_grant_list(ctl *c)
{
    const char *sub = NULL;
    int rc = ctl_want_str(c, "sub", TK_SUB_MAX, &sub);
    if (rc == CTL_OK) {
        rc = ctl_open(c, true);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    tk_txn *txn = NULL;
    rc = tk_store_read_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    grant_list_state ls = {sub, 0, txn};
    fputc('[', stdout);
    rc = tk_store_each_grant(txn, grant_one, &ls);
    tk_store_txn_end(txn);
    fputs(ls.n > 0 ? "\n]\n" : "]\n", stdout);
    if (rc != 0) {
        return ctl_fail_err(c, "listing grants", rc);
    }
    return fflush(stdout) == 0 ? CTL_OK : ctl_fail(c, "writing stdout failed");
}

int ctl_cmd_grant_revoke(ctl *c)
{
    const char *id = c->pos[0];
    int rc = ctl_check_str(c, "GRANT_ID", id, TK_ID_MAX);
    if (rc == CTL_OK) {
        rc = ctl_open(c, false);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    tk_op op = ctl_op(TK_OP_REVOKE_GRANT);
    TK_ASSERT(tk_op_id_set(&op.revoke_grant.grant, tk_slice_from_str(id)) == 0);
    tk_txn *txn = NULL;
    rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    tk_grant_rec g;
    bool changed = false;
    rc = tk_store_get_grant(txn, tk_slice_from_str(id), &g);
    if (rc == 0) {
        rc = tk_store_apply(txn, &op, &changed);
    }
    if (rc != 0) {
        tk_store_txn_end(txn);
        return rc == TK_E_NOTFOUND ? ctl_fail(c, "no grant %s", id)
                                   : ctl_fail_err(c, "revoking the grant", rc);
    }
    rc = tk_store_commit(txn);
    if (rc != 0) {
        return ctl_fail_err(c, "commit", rc);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "grant_id", id);
    tk_json_kv_cstr(&j, "state", "revoked");
    tk_json_kv_bool(&j, "changed", changed);
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}
