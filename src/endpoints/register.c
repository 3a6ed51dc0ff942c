/*
 * POST /register: dynamic client registration (RFC 7591). The document is
 * parsed and checked by src/oauth (tk_oauth_register_parse: redirect URIs,
 * grant types — client_credentials refused: agents act for a person, never
 * as service accounts —, sizes); this handler applies the registration
 * policy, mints the client id (and a secret for a confidential client), and
 * answers 201 once the new client is durable.
 *
 * Policy (config `registration`): open → approved at once; approval →
 * pending until `tokenctl client approve`, unless an approved registered
 * client has the same identity (name, sorted redirect URIs, software_id:
 * issue 11 §7, approval per client identity); closed → 403. A source
 * address may register register-burst clients per minute (429 after).
 */
#include "endpoints_int.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/oauth_register.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-address registrations (a token bucket of register-burst, refilled
 * register-burst per minute; ratelimit.c keys IPv6 by its /64): true when
 * over the burst. */
bool ep_register_over_burst(ep_worker *w, const uint8_t peer[16])
{
    tk_app *app = w->app;
    pthread_mutex_lock(&app->reg_mu);
    unsigned wait = ep_rl_take(&app->reg_rl, peer, tk_mono_ms());
    pthread_mutex_unlock(&app->reg_mu);
    return wait > 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* SHA-256 over name, the sorted redirect URIs and software_id, each
 * NUL-terminated (none holds a NUL). */
static void identity_of(const tk_oauth_client_meta *m, uint8_t out[TK_HASH_LEN])
{
    const char *sorted[TK_OAUTH_REDIRECTS_MAX];
    for (size_t i = 0; i < m->redirect_count; i++) {
        sorted[i] = m->redirect_uris[i];
    }
    qsort(sorted, m->redirect_count, sizeof sorted[0], cmp_str);
    static _Thread_local char
        buf[TK_NAME_MAX + TK_CLIENT_REDIRECTS_MAX + TK_OAUTH_SOFTWARE_MAX + 8];
    size_t l = strlen(m->client_name);
    memcpy(buf, m->client_name, l + 1);
    size_t n = l + 1;
    for (size_t i = 0; i < m->redirect_count; i++) {
        l = strlen(sorted[i]);
        memcpy(buf + n, sorted[i], l + 1);
        n += l + 1;
    }
    l = strlen(m->software_id);
    memcpy(buf + n, m->software_id, l + 1);
    n += l + 1;
    tk_sha256(buf, n, out);
}

typedef struct same_identity {
    const uint8_t *identity;
    bool found;
} same_identity;

static int find_identity(void *arg, tk_slice id, const tk_client_rec *c)
{
    (void)id;
    same_identity *s = arg;
    if (c->has_identity && c->status == TK_CLIENT_APPROVED &&
        memcmp(c->identity, s->identity, TK_HASH_LEN) == 0) {
        s->found = true;
        return 1;
    }
    return 0;
}

static void reply_oauth_error(ep_req *r, int status, const tk_oauth_err *err)
{
    tk_json j;
    tk_json_init(&j, r->w->scratch, sizeof r->w->scratch);
    TK_ASSERT(tk_oauth_error_json(&j, err) == 0);
    ep_reply(r, status, "application/json", NULL, j.buf, j.len);
}

/* The worker-local state of one registration (large: static per thread). */
typedef struct reg_state {
    tk_oauth_client_meta meta;
    char redirects[TK_CLIENT_REDIRECTS_MAX];
    char answer[TK_AS_PENDING_MAX];
} reg_state;

static _Thread_local reg_state rs;

void ep_register(ep_req *r)
{
    ep_worker *w = r->w;
    const tk_app_cfg *cfg = &w->app->cfg;
    if (cfg->registration == TK_REGISTRATION_CLOSED) {
        tk_oauth_err e = {TK_OAUTH_ACCESS_DENIED, "registration is closed"};
        reply_oauth_error(r, 403, &e);
        return;
    }
    tk_slice ct = r->http->content_type;
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ') {
        n++;
    }
    if (!tk_slice_eq_nocase((tk_slice){ct.p, n}, "application/json")) {
        tk_oauth_err e = {TK_OAUTH_INVALID_CLIENT_METADATA,
                          "Content-Type must be application/json"};
        reply_oauth_error(r, 400, &e);
        return;
    }
    if (r->http->body.len > TK_OAUTH_REGISTER_BODY_MAX) {
        tk_oauth_err e = {TK_OAUTH_INVALID_CLIENT_METADATA, "registration document too large"};
        reply_oauth_error(r, 400, &e);
        return;
    }
    if (ep_register_over_burst(w, r->http->peer)) {
        tk_log_warn("register_rate_limited", "burst=%u", cfg->register_burst);
        ep_reply_error(r, 429, "too_many_requests", "Retry-After: 60\r\n");
        return;
    }
    tk_oauth_err err;
    tk_oauth_client_meta *m = &rs.meta;
    if (tk_oauth_register_parse(r->http->body.p, r->http->body.len, m, &err) != 0) {
        reply_oauth_error(r, 400, &err);
        return;
    }
    tk_txn *txn = ep_txn(w);
    if (txn == NULL) {
        ep_reply_unavailable(r);
        return;
    }
    char client_id[TK_ID_MAX + 1], secret[TK_TOKEN_LEN + 1] = "";
    tk_client_rec c = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_PENDING, .created = w->now};
    bool public = m->auth_method == TK_OAUTH_AUTH_NONE;
    int rc = tk_id_new("tkc_", client_id, sizeof client_id);
    if (rc == 0 && public) {
        rc = tk_random_bytes(c.secret_hash, TK_HASH_LEN); /* no secret anyone knows */
    } else if (rc == 0) {
        rc = tk_secret_new(TK_SECRET_CLIENT, secret, sizeof secret, c.secret_hash);
    }
    if (rc != 0) {
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    c.has_identity = true;
    identity_of(m, c.identity);
    if (cfg->registration == TK_REGISTRATION_OPEN) {
        c.status = TK_CLIENT_APPROVED;
    } else {
        same_identity si = {.identity = c.identity};
        rc = tk_store_each_client(txn, find_identity, &si);
        if (rc < 0) {
            ep_reply_unavailable(r);
            return;
        }
        c.status = si.found ? TK_CLIENT_APPROVED : TK_CLIENT_PENDING;
    }
    c.name = (tk_slice){m->client_name, strlen(m->client_name)};
    c.scope = (tk_slice){m->scope, strlen(m->scope)};
    c.redirect_uris =
        (tk_slice){rs.redirects, tk_oauth_redirects_join(m, rs.redirects, sizeof rs.redirects)};
    c.auth_method = (uint8_t)(m->auth_method + 1);
    c.grant_types = (uint8_t)m->grant_types;
    c.flags = (uint8_t)(TK_CLIENT_F_DYNAMIC | (public ? TK_CLIENT_F_PUBLIC : 0) |
                        (m->native ? TK_CLIENT_F_NATIVE : 0));
    c.software_id = (tk_slice){m->software_id, strlen(m->software_id)};
    uint8_t *rec = malloc(TK_RECORD_MAX);
    size_t len = 0;
    if (rec == NULL || tk_record_encode_client(&c, rec, TK_RECORD_MAX, &len) != 0) {
        free(rec);
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    tk_commit_req creq = {.nops = 1};
    creq.ops[0] = tk_op_make(TK_OP_PUT_NEW, w->now);
    creq.ops[0].put_new.db = TK_OP_DB_CLIENT;
    TK_ASSERT(tk_op_id_set(&creq.ops[0].put_new.key, tk_slice_from_str(client_id)) == 0);
    creq.ops[0].put_new.rec = rec;
    creq.ops[0].put_new.len = (uint16_t)len;
    tk_oauth_client_issued issued = {.client_id = tk_slice_from_str(client_id),
                                     .issued_at = w->now,
                                     .client_secret =
                                         public ? TK_SLICE_NULL : tk_slice_from_str(secret)};
    tk_json j;
    tk_json_init(&j, rs.answer, sizeof rs.answer);
    rc = tk_oauth_register_answer(&j, m, &issued);
    tk_cleanse(secret, sizeof secret);
    if (rc != 0) {
        tk_commit_req_release(&creq);
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    char safe[65];
    ep_log_id(tk_slice_from_str(client_id), safe);
    tk_log_info("client_registered", "client=%s status=%s public=%s native=%s", safe,
                tk_client_status_name(c.status), public ? "yes" : "no", m->native ? "yes" : "no");
    ep_as_defer(r, &creq, 201, "application/json", TK_SLICE_NULL, (tk_slice){j.buf, j.len}, false);
    tk_cleanse(rs.answer, j.len);
}

void ep_register_done(ep_req *r, const tk_server_done *done)
{
    ep_as_slot *s = ep_as_slot_of(r);
    if (s == NULL) {
        return;
    }
    if (done->result != 0 || ep_as_outcome(done) != TK_OUT_OK) {
        ep_as_free(s);
        ep_reply_unavailable(r);
        return;
    }
    ep_as_answer(r, s);
}
