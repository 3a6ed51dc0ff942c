/*
 * tokenctl audit: the trail of session ends, suspensions and resumptions,
 * oldest first, as a JSON array. Each IdP event (back-channel logout, SSF
 * SET, webhook) and each tokenctl session command that changed a session
 * left one record: where it came from, the issuer and event id, the reason,
 * which hold a suspension set or a resumption lifted, when, how many sessions
 * it matched and changed, and which (the first TK_AUDIT_SIDS_MAX). Other audit views may be added
 * as "audit VERB".
 */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

static const char *action_name(uint8_t state)
{
    return state == TK_SESSION_TERMINATED  ? "terminate"
           : state == TK_SESSION_SUSPENDED ? "suspend"
                                           : "resume";
}

int ctl_audit_admin(tk_txn *txn, const tk_op *op)
{
    TK_ASSERT(op->type == TK_OP_SESSION_STATE);
    const tk_op_session *s = &op->session;
    tk_audit_rec a = {.source = TK_SOURCE_ADMIN,
                      .state = s->state,
                      .reason = tk_op_reason_get(&s->reason),
                      .sids = tk_op_id_get(&s->sid),
                      .at = op->at,
                      .matched = 1,
                      .changed = 1,
                      .hold = s->hold};
    return tk_store_audit_put(txn, &a);
}

static void sids_json(tk_json *j, tk_slice sids)
{
    tk_json_key(j, "sids");
    tk_json_arr_begin(j);
    size_t i = 0;
    while (i < sids.len) { /* bounded: i grows every turn */
        size_t start = i;
        while (i < sids.len && sids.p[i] != ' ') {
            i++;
        }
        tk_json_str(j, (tk_slice){sids.p + start, i - start});
        i++;
    }
    tk_json_arr_end(j);
}

typedef struct walk {
    uint64_t seen, skip, printed;
} walk;

static int print_one(void *arg, const tk_audit_rec *a)
{
    walk *w = arg;
    if (w->seen++ < w->skip) {
        return 0;
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_int(&j, "time", a->at);
    tk_json_kv_cstr(&j, "source", tk_event_source_name(a->source));
    tk_json_kv_cstr(&j, "action", action_name(a->state));
    if (a->hold != 0) {
        tk_json_kv_cstr(&j, "hold", tk_hold_name(a->hold));
    }
    if (a->issuer.len > 0) {
        tk_json_kv_str(&j, "issuer", a->issuer);
    }
    if (a->event_id.len > 0) {
        tk_json_kv_str(&j, "event_id", a->event_id);
    }
    if (a->reason.len > 0) {
        tk_json_kv_str(&j, "reason", a->reason);
    }
    tk_json_kv_int(&j, "sessions_matched", a->matched);
    tk_json_kv_int(&j, "sessions_changed", a->changed);
    sids_json(&j, a->sids);
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        return TK_E_TOOBIG;
    }
    fputs(w->printed++ == 0 ? "\n  " : ",\n  ", stdout);
    fwrite(buf, 1, j.len, stdout);
    return 0;
}

static int count_one(void *arg, const tk_audit_rec *a)
{
    (void)a;
    (*(uint64_t *)arg)++;
    return 0;
}

int ctl_cmd_audit(ctl *c)
{
    int64_t limit = 0;
    int rc = ctl_want_i64(c, "limit", 1, INT32_MAX, 0, &limit);
    rc = rc == CTL_OK ? ctl_open(c, true) : rc;
    if (rc != CTL_OK) {
        return rc;
    }
    tk_txn *txn = NULL;
    rc = tk_store_read_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    walk w = {0};
    uint64_t total = 0;
    rc = limit > 0 ? tk_store_each_audit(txn, count_one, &total) : 0;
    w.skip = limit > 0 && total > (uint64_t)limit ? total - (uint64_t)limit : 0;
    fputc('[', stdout);
    rc = rc != 0 ? rc : tk_store_each_audit(txn, print_one, &w);
    tk_store_txn_end(txn);
    fputs(w.printed > 0 ? "\n]\n" : "]\n", stdout);
    if (rc != 0) {
        return ctl_fail_err(c, "reading the audit trail", rc);
    }
    return fflush(stdout) == 0 ? CTL_OK : ctl_fail(c, "writing stdout failed");
}
