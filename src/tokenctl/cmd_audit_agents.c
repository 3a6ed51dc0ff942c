/*
 * tokenctl audit agents: which agents used which protected resources through
 * forward-auth, as tokend folded it into the agent_access DBI (about once a
 * second per worker): allowed and denied counts, first and last seen, and
 * the agent's registered name. One JSON array, grouped by agent.
 */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

typedef struct audit_state {
    tk_txn *txn;
    const char *only_client; /* --client filter, or NULL */
    uint64_t n;
} audit_state;

static int audit_one(void *arg, tk_slice client, tk_slice resource, const tk_agent_access_rec *rec)
{
    audit_state *st = arg;
    if (st->only_client != NULL && !tk_slice_eq_str(client, st->only_client)) {
        return 0;
    }
    tk_client_rec c;
    bool known = tk_store_get_client(st->txn, client, &c) == 0;
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_str(&j, "client_id", client);
    if (known && c.name.len > 0) {
        tk_json_kv_str(&j, "client_name", c.name);
    }
    tk_json_kv_str(&j, "resource", resource);
    tk_json_kv_int(&j, "allowed", rec->allowed);
    tk_json_kv_int(&j, "denied", rec->denied);
    tk_json_kv_int(&j, "first_seen", rec->first_seen);
    tk_json_kv_int(&j, "last_seen", rec->last_seen);
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        return TK_E_TOOBIG;
    }
    fputs(st->n++ == 0 ? "\n  " : ",\n  ", stdout);
    fwrite(buf, 1, j.len, stdout);
    return 0;
}

int ctl_cmd_audit_agents(ctl *c)
{
    const char *client = NULL;
    int rc = ctl_want_str(c, "client", TK_ID_MAX, &client);
    rc = rc != CTL_OK ? rc : ctl_open(c, true);
    if (rc != CTL_OK) {
        return rc;
    }
    audit_state st = {.only_client = client};
    rc = tk_store_read_begin(c->store, &st.txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    fputc('[', stdout);
    rc = tk_store_each_agent_access(st.txn, audit_one, &st);
    tk_store_txn_end(st.txn);
    fputs(st.n > 0 ? "\n]\n" : "]\n", stdout);
    if (rc != 0) {
        return ctl_fail_err(c, "listing agent access", rc);
    }
    return fflush(stdout) == 0 ? CTL_OK : ctl_fail(c, "writing stdout failed");
}
