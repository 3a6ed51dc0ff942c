/*
 * tokenctl session commands. create writes a new session record; terminate,
 * suspend and resume go through the store's idempotent TK_OP_SESSION_STATE
 * op, so every token bound to the session changes state with that one write
 * (the cascade rule); list and show only read.
 *
 * Suspensions are holds with an owner: suspend sets the admin hold, resume
 * lifts the admin hold only (a device or credential hold set by an IdP event
 * stays), unless --hold names another owner an administrator deliberately
 * lifts. The session is active again only when no hold is left.
 */
#include "ctl.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/limits.h"

#include <stdio.h>
#include <string.h>

/* ==== session create ===================================================== */

static int session_put(ctl *c, const char *sid, const tk_session_rec *rec)
{
    tk_txn *txn = NULL;
    int rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    rc = tk_store_put_session(txn, tk_slice_from_str(sid), rec, TK_PUT_NEW);
    if (rc != 0) {
        tk_store_txn_end(txn);
        return ctl_fail_err(c, "storing the session", rc);
    }
    rc = tk_store_commit(txn);
    return rc == 0 ? CTL_OK : ctl_fail_err(c, "commit", rc);
}

/* --idp-iss is --issuer under the name the IdP options share; --idp-sid
 * (the IdP's session id, what back-channel logout names) needs an issuer. */
static int idp_options(ctl *c, const char **issuer, const char **idp_sid)
{
    const char *a = ctl_opt_str(c, "issuer"), *b = ctl_opt_str(c, "idp-iss");
    if (a != NULL && b != NULL && strcmp(a, b) != 0) {
        return ctl_usage(c, "--issuer and --idp-iss differ (they name the same thing)");
    }
    *issuer = a != NULL ? a : b;
    int rc = *issuer != NULL ? ctl_check_uri(c, b ? "--idp-iss" : "--issuer", *issuer) : CTL_OK;
    if (rc == CTL_OK) {
        rc = ctl_want_str(c, "idp-sid", TK_ID_MAX, idp_sid);
    }
    if (rc == CTL_OK && *idp_sid != NULL && *issuer == NULL) {
        return ctl_usage(c, "--idp-sid needs --idp-iss");
    }
    return rc;
}

int ctl_cmd_session_create(ctl *c)
{
    const char *sub = NULL, *issuer = NULL, *idp_sid = NULL;
    int64_t ttl = 0;
    int rc = ctl_need_str(c, "sub", TK_SUB_MAX, &sub);
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "ttl", 0, CTL_TTL_MAX, CTL_SESSION_TTL_DEFAULT, &ttl);
    }
    if (rc == CTL_OK) {
        rc = idp_options(c, &issuer, &idp_sid);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    int64_t now = tk_now();
    tk_session_rec rec = {.sub = tk_slice_from_str(sub),
                          .issuer = tk_slice_from_str(issuer ? issuer : ""),
                          .reason = TK_SLICE_LIT(""),
                          .state = TK_SESSION_ACTIVE,
                          .created = now,
                          .expires = ttl > 0 ? now + ttl : 0,
                          .idp_sid = tk_slice_from_str(idp_sid ? idp_sid : "")};
    char sid[TK_ID_MAX + 1];
    rc = tk_id_new("tks_", sid, sizeof sid);
    if (rc != 0) {
        return ctl_fail_err(c, "random generator", rc);
    }
    rc = ctl_open(c, false);
    if (rc == CTL_OK) {
        rc = session_put(c, sid, &rec);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "sid", sid);
    tk_json_kv_cstr(&j, "sub", sub);
    tk_json_kv_int(&j, "expires", rec.expires);
    if (issuer != NULL) {
        tk_json_kv_cstr(&j, "idp_iss", issuer);
    }
    if (idp_sid != NULL) {
        tk_json_kv_cstr(&j, "idp_sid", idp_sid);
    }
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}

/* ==== session terminate / suspend / resume =============================== */

/* Apply the op in one write txn; *state_out / *holds_out are the state and
 * holds afterwards. */
static int session_apply(ctl *c, const tk_op *op, const char *sid, uint8_t *state_out,
                         uint8_t *holds_out)
{
    tk_txn *txn = NULL;
    tk_session_rec rec;
    int rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    bool changed = false;
    rc = tk_store_get_session(txn, tk_slice_from_str(sid), &rec);
    if (rc == 0) {
        rc = tk_store_apply(txn, op, &changed);
    }
    if (rc == 0 && changed) {
        rc = ctl_audit_admin(txn, op);
    }
    if (rc == 0) {
        rc = tk_store_get_session(txn, tk_slice_from_str(sid), &rec);
    }
    if (rc != 0) {
        tk_store_txn_end(txn);
        if (rc == TK_E_NOTFOUND) {
            return ctl_fail(c, "no session %s", sid);
        }
        return ctl_fail_err(c, "updating the session", rc);
    }
    *state_out = rec.state;
    *holds_out = rec.holds;
    rc = tk_store_commit(txn);
    return rc == 0 ? CTL_OK : ctl_fail_err(c, "commit", rc);
}

/* "holds": ["admin", ...] in owner order. */
static void holds_json(tk_json *j, uint8_t holds)
{
    tk_json_key(j, "holds");
    tk_json_arr_begin(j);
    for (uint8_t h = TK_HOLD_ADMIN; h <= TK_HOLD_LAST; h++) {
        if (holds & TK_HOLD_BIT(h)) {
            tk_json_str(j, tk_slice_from_str(tk_hold_name(h)));
        }
    }
    tk_json_arr_end(j);
}

/* The options of a state command: the reason (terminate, suspend) or the
 * hold to lift (resume: --hold, default admin). */
static int state_options(ctl *c, tk_op_session *s)
{
    const char *reason = NULL, *hold = NULL;
    int rc = CTL_OK;
    if (s->state != TK_SESSION_ACTIVE) {
        rc = ctl_want_str(c, "reason", TK_REASON_MAX, &reason);
        if (rc == CTL_OK && reason != NULL) { /* length checked above */
            TK_ASSERT(tk_op_reason_set(&s->reason, tk_slice_from_str(reason)) == 0);
        }
    } else {
        rc = ctl_want_str(c, "hold", 32, &hold);
    }
    if (rc == CTL_OK && hold != NULL && tk_hold_parse(hold, &s->hold) != 0) {
        rc = ctl_usage(c, "--hold must be admin, device or credential, not \"%s\"", hold);
    }
    return rc;
}

static int session_state_cmd(ctl *c, uint8_t state)
{
    const char *sid = c->pos[0];
    int rc = ctl_check_str(c, "SID", sid, TK_ID_MAX);
    tk_op op = ctl_op(TK_OP_SESSION_STATE);
    tk_op_session *s = &op.session;
    s->state = state;
    s->hold = state == TK_SESSION_TERMINATED ? 0 : TK_HOLD_ADMIN;
    if (rc == CTL_OK) {
        TK_ASSERT(tk_op_id_set(&s->sid, tk_slice_from_str(sid)) == 0);
        rc = state_options(c, s);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    uint8_t now_state = 0, holds = 0;
    rc = ctl_open(c, false);
    if (rc == CTL_OK) {
        rc = session_apply(c, &op, sid, &now_state, &holds);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    /* Lifting one hold while another owner's stays is a success: say so. */
    bool others = state == TK_SESSION_ACTIVE && now_state == TK_SESSION_SUSPENDED;
    if (now_state != state && !others) {
        return ctl_fail(c, "session %s is %s and stays so", sid, tk_session_state_name(now_state));
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "sid", sid);
    tk_json_kv_cstr(&j, "state", tk_session_state_name(now_state));
    if (others) {
        holds_json(&j, holds);
    }
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}

int ctl_cmd_session_terminate(ctl *c)
{
    return session_state_cmd(c, TK_SESSION_TERMINATED);
}

int ctl_cmd_session_suspend(ctl *c)
{
    return session_state_cmd(c, TK_SESSION_SUSPENDED);
}

int ctl_cmd_session_resume(ctl *c)
{
    return session_state_cmd(c, TK_SESSION_ACTIVE);
}

/* ==== session list / show ================================================ */

static void session_fields(tk_json *j, tk_slice sid, const tk_session_rec *rec)
{
    tk_json_kv_str(j, "sid", sid);
    tk_json_kv_str(j, "sub", rec->sub);
    tk_json_kv_cstr(j, "state", tk_session_state_name(rec->state));
    tk_json_kv_int(j, "created", rec->created);
    tk_json_kv_int(j, "expires", rec->expires);
    holds_json(j, rec->holds);
}

static int list_one(void *arg, tk_slice sid, const tk_session_rec *rec)
{
    uint64_t *n = arg;
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    session_fields(&j, sid, rec);
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        return TK_E_TOOBIG;
    }
    fputs((*n)++ == 0 ? "\n  " : ",\n  ", stdout);
    fwrite(buf, 1, j.len, stdout);
    return 0;
}

int ctl_cmd_session_list(ctl *c)
{
    tk_txn *txn = NULL;
    int rc = ctl_open(c, true);
    if (rc != CTL_OK) {
        return rc;
    }
    rc = tk_store_read_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    uint64_t n = 0;
    fputc('[', stdout);
    rc = tk_store_each_session(txn, list_one, &n);
    tk_store_txn_end(txn);
    fputs(n > 0 ? "\n]\n" : "]\n", stdout);
    if (rc != 0) {
        return ctl_fail_err(c, "listing sessions", rc);
    }
    return fflush(stdout) == 0 ? CTL_OK : ctl_fail(c, "writing stdout failed");
}

static void session_show_json(tk_json *j, tk_slice sid, const tk_session_rec *rec, uint64_t tokens)
{
    tk_json_obj_begin(j);
    session_fields(j, sid, rec);
    if (rec->issuer.len > 0) {
        tk_json_kv_str(j, "issuer", rec->issuer);
    }
    if (rec->idp_sid.len > 0) {
        tk_json_kv_str(j, "idp_sid", rec->idp_sid);
    }
    if (rec->auth_time != 0) { /* how the user signed in at the IdP (login = oidc) */
        tk_json_kv_int(j, "auth_time", rec->auth_time);
    }
    if (rec->acr.len > 0) {
        tk_json_kv_str(j, "acr", rec->acr);
    }
    if (rec->amr.len > 0) {
        tk_json_key(j, "amr");
        tk_json_arr_begin(j);
        for (size_t i = 0; i < rec->amr.len;) { /* each turn passes one value */
            size_t k = i;
            while (k < rec->amr.len && rec->amr.p[k] != ' ') {
                k++;
            }
            tk_json_str(j, (tk_slice){rec->amr.p + i, k - i});
            i = k + 1;
        }
        tk_json_arr_end(j);
    }
    if (rec->ended_at != 0) {
        tk_json_kv_int(j, "ended_at", rec->ended_at);
    }
    if (rec->reason.len > 0) {
        tk_json_kv_str(j, "reason", rec->reason);
    }
    tk_json_kv_int(j, "tokens", (int64_t)tokens);
    tk_json_obj_end(j);
}

int ctl_cmd_session_show(ctl *c)
{
    const char *sid = c->pos[0];
    int rc = ctl_check_str(c, "SID", sid, TK_ID_MAX);
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
    tk_session_rec rec;
    uint64_t tokens = 0;
    rc = tk_store_get_session(txn, tk_slice_from_str(sid), &rec);
    if (rc == 0) {
        rc = tk_store_session_token_count(txn, tk_slice_from_str(sid), &tokens);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    if (rc == 0) {
        session_show_json(&j, tk_slice_from_str(sid), &rec, tokens);
    }
    tk_store_txn_end(txn);
    if (rc == TK_E_NOTFOUND) {
        return ctl_fail(c, "no session %s", sid);
    }
    if (rc != 0) {
        return ctl_fail_err(c, "reading the session", rc);
    }
    return ctl_print_json(c, &j);
}
