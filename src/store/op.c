/*
 * Op codec: the wire form of an op (record.h, op.h), the unit the committer
 * applies and a cluster replicates.
 *
 * Every kind of op is written into one flat struct (op_wire) with one field
 * per wire key, and that struct goes through the record codec's table-driven
 * encoder and strict decoder (codec_int.h). Each kind may carry only its own
 * keys (op_keys); a key of another kind is refused. tk_op_validate is the
 * one place that knows each kind's rules: the encoder refuses, and the
 * decoder rejects, any op it refuses.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

/* ---- Wire form --------------------------------------------------------------- */

/* The wire form of an op: one flat struct, one member per wire key (op.h
 * lists them); each op kind uses its own subset of the keys (op_keys). */
typedef struct op_wire {
    uint8_t type, state, source, hold, db, decision, bind_refresh;
    bool has_hash, has_filter, has_secret, has_browser, has_csrf, has_code, has_access;
    bool has_refresh, has_cnf, has_jkt;
    uint8_t hash[TK_HASH_LEN], filter[TK_HASH_LEN], secret[TK_HASH_LEN];
    uint8_t browser[TK_HASH_LEN], csrf[TK_HASH_LEN], code[TK_HASH_LEN];
    uint8_t access[TK_HASH_LEN], refresh[TK_HASH_LEN], cnf[TK_HASH_LEN], jkt[TK_HASH_LEN];
    tk_slice id, reason, iss, resource, rec, sub, request, idp_sid, grant;
    int64_t at, until;
    int64_t allowed, denied;
    int64_t session_exp, browser_exp, code_exp, access_exp, refresh_exp;
    uint32_t window;
    uint64_t scope_mask;
} op_wire;

#define OPT_HASH(k, mem) HASH(k, false, op_wire, mem, offsetof(op_wire, has_##mem))

static const field op_fields[] = {
    ENUM(1, true, TK_OP_REVOKE_TOKEN, TK_OP_WIRE_LAST, op_wire, type),
    ENUM(2, false, 1, 3, op_wire, state),
    OPT_HASH(3, hash),
    STR(4, false, TK_ID_MAX, op_wire, id),
    STR(5, false, TK_REASON_MAX, op_wire, reason),
    {.key = 6,
     .type = F_INT,
     .required = true,
     .size = 8,
     .lo = 1,
     .hi = TK_TIME_MAX,
     .off = offsetof(op_wire, at)},
    ENUM(7, false, TK_SOURCE_BACKCHANNEL, TK_SOURCE_WEBHOOK, op_wire, source),
    OPT_HASH(8, filter),
    TIME(9, false, op_wire, until),
    STR(10, false, TK_IDP_ISS_MAX, op_wire, iss),
    {.key = 11,
     .type = F_INT,
     .size = 8,
     .lo = 1,
     .hi = UINT32_MAX,
     .off = offsetof(op_wire, allowed)},
    {.key = 12,
     .type = F_INT,
     .size = 8,
     .lo = 1,
     .hi = UINT32_MAX,
     .off = offsetof(op_wire, denied)},
    STR(13, false, TK_ACCESS_RESOURCE_MAX, op_wire, resource),
    ENUM(14, false, TK_HOLD_ADMIN, TK_HOLD_LAST, op_wire, hold),
    OPT_HASH(15, secret),
    /* The authorization server's ops (keys 16..37). */
    ENUM(16, false, TK_OP_DB_CLIENT, TK_OP_DB_AUTHREQ, op_wire, db),
    BIN(17, TK_RECORD_MAX, op_wire, rec),
    STR(18, false, TK_SUB_MAX, op_wire, sub),
    OPT_HASH(19, browser),
    OPT_HASH(20, csrf),
    TIME(21, false, op_wire, session_exp),
    TIME(22, false, op_wire, browser_exp),
    STR(23, false, TK_ID_MAX, op_wire, request),
    STR(24, false, TK_ID_MAX, op_wire, idp_sid),
    ENUM(25, false, TK_DECIDE_APPROVE, TK_DECIDE_DENY, op_wire, decision),
    OPT_HASH(26, code),
    TIME(27, false, op_wire, code_exp),
    STR(28, false, TK_ID_MAX, op_wire, grant),
    OPT_HASH(29, access),
    OPT_HASH(30, refresh),
    TIME(31, false, op_wire, access_exp),
    TIME(32, false, op_wire, refresh_exp),
    OPT_HASH(33, cnf),
    OPT_HASH(34, jkt),
    ENUM(35, false, 1, 1, op_wire, bind_refresh),
    GEN(36, op_wire, window),
    U64(37, op_wire, scope_mask),
};
_Static_assert(TK_ARRAY_LEN(op_fields) == 37 && TK_ARRAY_LEN(op_fields) <= KEY_MAX,
               "op keys 1..37, each a bit of the decoder's key set");

/* The largest ops at their limits fit TK_OP_WIRE_MAX: PUT_NEW (a record) and
 * SIGN_IN (the most strings). */
_Static_assert(3 + 2 + 3 * WORST_INT + WORST_STR(TK_ID_MAX) + WORST_STR(TK_RECORD_MAX) <=
                   TK_OP_WIRE_MAX,
               "a PUT_NEW op at its limits fits TK_OP_WIRE_MAX");
_Static_assert(3 + 2 + 4 * WORST_INT + 2 * WORST_HASH + 3 * WORST_STR(TK_ID_MAX) +
                       WORST_STR(TK_SUB_MAX) + WORST_STR(TK_IDP_ISS_MAX) <=
                   TK_OP_WIRE_MAX,
               "a SIGN_IN op at its limits fits TK_OP_WIRE_MAX");

/* ---- Ops --------------------------------------------------------------------- */

static bool id_ok(tk_slice s, size_t max)
{
    return s.len > 0 && s.len <= max;
}

/* A session change {state, hold}: terminate carries no hold, suspend and
 * resume name the owner whose hold they set or lift. */
static bool state_hold_ok(uint8_t state, uint8_t hold)
{
    if (state == TK_SESSION_TERMINATED) {
        return hold == 0;
    }
    return (state == TK_SESSION_ACTIVE || state == TK_SESSION_SUSPENDED) && hold >= TK_HOLD_ADMIN &&
           hold <= TK_HOLD_LAST;
}

static bool idp_event_ok(const tk_op *op)
{
    const tk_op_idp_event *e = &op->idp_event;
    return state_hold_ok(e->state, e->hold) && e->source >= TK_SOURCE_BACKCHANNEL &&
           e->source <= TK_SOURCE_WEBHOOK && id_ok(tk_op_id_get(&e->event_id), TK_EVENT_ID_MAX) &&
           id_ok(tk_op_iss_get(&e->iss), TK_IDP_ISS_MAX) && e->reason.len <= TK_REASON_MAX &&
           e->until >= op->at && e->until <= TK_TIME_MAX;
}

int tk_op_validate(const tk_op *op)
{
    bool ok = op->at >= 1 && op->at <= TK_TIME_MAX;
    switch (op->type) {
    case TK_OP_REVOKE_TOKEN:
        break;
    case TK_OP_REVOKE_GRANT:
        ok = ok && id_ok(tk_op_id_get(&op->revoke_grant.grant), TK_ID_MAX);
        break;
    case TK_OP_SESSION_STATE:
        ok = ok && id_ok(tk_op_id_get(&op->session.sid), TK_ID_MAX) &&
             state_hold_ok(op->session.state, op->session.hold) &&
             op->session.reason.len <= TK_REASON_MAX;
        break;
    case TK_OP_CLIENT_STATUS:
        ok = ok && id_ok(tk_op_id_get(&op->client_status.client), TK_ID_MAX) &&
             (op->client_status.status == TK_CLIENT_APPROVED ||
              op->client_status.status == TK_CLIENT_DISABLED);
        break;
    case TK_OP_CLIENT_SECRET:
        ok = ok && id_ok(tk_op_id_get(&op->client_secret.client), TK_ID_MAX);
        break;
    case TK_OP_AGENT_ACCESS:
        ok = ok && id_ok(tk_op_id_get(&op->agent_access.client), TK_ID_MAX) &&
             id_ok(tk_op_resource_get(&op->agent_access.resource), TK_ACCESS_RESOURCE_MAX) &&
             (op->agent_access.allowed > 0 || op->agent_access.denied > 0);
        break;
    case TK_OP_IDP_EVENT:
        ok = ok && idp_event_ok(op);
        break;
    case TK_OP_PUT_NEW:
        ok = ok && (op->put_new.db == TK_OP_DB_CLIENT || op->put_new.db == TK_OP_DB_AUTHREQ) &&
             id_ok(tk_op_id_get(&op->put_new.key), TK_ID_MAX) && op->put_new.rec != NULL &&
             op->put_new.len > 0 && op->put_new.len <= TK_RECORD_MAX;
        break;
    case TK_OP_SIGN_IN:
        ok = ok && id_ok(tk_op_id_get(&op->sign_in.sid), TK_ID_MAX) &&
             id_ok(tk_op_sub_get(&op->sign_in.sub), TK_SUB_MAX) &&
             op->sign_in.session_exp > op->at && op->sign_in.session_exp <= TK_TIME_MAX &&
             op->sign_in.browser_exp > op->at && op->sign_in.browser_exp <= TK_TIME_MAX &&
             op->sign_in.request.len <= TK_ID_MAX && op->sign_in.idp_iss.len <= TK_IDP_ISS_MAX &&
             op->sign_in.idp_sid.len <= TK_ID_MAX &&
             (op->sign_in.idp_sid.len == 0 || op->sign_in.idp_iss.len > 0);
        break;
    case TK_OP_CODE_ISSUE:
        ok = ok && id_ok(tk_op_id_get(&op->code_issue.request), TK_ID_MAX) &&
             op->code_issue.decision >= TK_DECIDE_APPROVE &&
             op->code_issue.decision <= TK_DECIDE_DENY &&
             (op->code_issue.decision == TK_DECIDE_DENY ||
              (id_ok(tk_op_id_get(&op->code_issue.grant), TK_ID_MAX) &&
               op->code_issue.code_exp > op->at && op->code_issue.code_exp <= TK_TIME_MAX));
        break;
    case TK_OP_CODE_REDEEM:
        ok = ok && op->code_redeem.access_exp > op->at &&
             op->code_redeem.access_exp <= TK_TIME_MAX &&
             (!op->code_redeem.has_refresh ||
              (op->code_redeem.refresh_exp > op->at && op->code_redeem.refresh_exp <= TK_TIME_MAX));
        break;
    case TK_OP_REFRESH:
        ok = ok && op->refresh.access_exp > op->at && op->refresh.access_exp <= TK_TIME_MAX &&
             op->refresh.refresh_exp > op->at && op->refresh.refresh_exp <= TK_TIME_MAX &&
             op->refresh.scope_mask != 0;
        break;
    case TK_OP_EXCHANGE:
        ok = ok && id_ok(tk_op_id_get(&op->exchange.client), TK_ID_MAX) &&
             op->exchange.exp > op->at && op->exchange.exp <= TK_TIME_MAX &&
             op->exchange.scope_mask != 0;
        break;
    default:
        ok = false;
        break;
    }
    return ok ? 0 : TK_E_INVALID;
}

/* ---- Encoding and decoding ------------------------------------------------------ */

/* Wire keys each op kind may carry (bit k = key k), beside 0, 1 and 6. */
#define K(k) (1ull << (k))
static const uint64_t op_keys[TK_OP_WIRE_LAST + 1] = {
    [TK_OP_REVOKE_TOKEN] = K(3),
    [TK_OP_REVOKE_GRANT] = K(4),
    [TK_OP_SESSION_STATE] = K(2) | K(4) | K(5) | K(14),
    [TK_OP_CLIENT_STATUS] = K(2) | K(4),
    [TK_OP_AGENT_ACCESS] = K(4) | K(11) | K(12) | K(13),
    [TK_OP_IDP_EVENT] = K(2) | K(3) | K(4) | K(5) | K(7) | K(8) | K(9) | K(10) | K(14),
    [TK_OP_CLIENT_SECRET] = K(4) | K(15),
    [TK_OP_PUT_NEW] = K(4) | K(16) | K(17),
    [TK_OP_SIGN_IN] = K(4) | K(10) | K(18) | K(19) | K(20) | K(21) | K(22) | K(23) | K(24),
    [TK_OP_CODE_ISSUE] = K(19) | K(23) | K(25) | K(26) | K(27) | K(28),
    [TK_OP_CODE_REDEEM] = K(26) | K(29) | K(30) | K(31) | K(32) | K(33) | K(34) | K(35),
    [TK_OP_REFRESH] = K(3) | K(29) | K(30) | K(31) | K(32) | K(33) | K(34) | K(35) | K(36) | K(37),
    [TK_OP_EXCHANGE] = K(3) | K(4) | K(29) | K(31) | K(33) | K(34) | K(37),
};
#define OP_COMMON_KEYS (K(0) | K(1) | K(6))

/* The keys present in w (what the encoder writes: required ones, and
 * optional ones that are set). */
static uint64_t wire_keys(const op_wire *w)
{
    uint64_t m = 0;
    for (size_t i = 0; i < NF(op_fields); i++) {
        if (op_fields[i].required || tk_codec_present(&op_fields[i], w)) {
            m |= K(op_fields[i].key);
        }
    }
    return m | K(0);
}

static void wire_hash(bool *has, uint8_t *dst, const uint8_t *src)
{
    *has = true;
    memcpy(dst, src, TK_HASH_LEN);
}

/* A hash that is carried only when its flag says so. */
static void wire_opt_hash(bool *has, uint8_t *dst, bool set, const uint8_t *src)
{
    if (set) {
        wire_hash(has, dst, src);
    }
}

static void to_wire_idp(const tk_op_idp_event *e, op_wire *w)
{
    wire_hash(&w->has_hash, w->hash, e->match);
    w->state = e->state;
    w->hold = e->hold;
    w->source = e->source;
    wire_opt_hash(&w->has_filter, w->filter, e->has_filter, e->filter);
    w->id = tk_op_id_get(&e->event_id);
    w->iss = tk_op_iss_get(&e->iss);
    w->reason = tk_op_reason_get(&e->reason);
    w->until = e->until;
}

static void to_wire_sign_in(const tk_op_sign_in *x, op_wire *w)
{
    w->id = tk_op_id_get(&x->sid);
    w->sub = tk_op_sub_get(&x->sub);
    w->session_exp = x->session_exp;
    wire_hash(&w->has_browser, w->browser, x->browser);
    wire_hash(&w->has_csrf, w->csrf, x->csrf_key);
    w->browser_exp = x->browser_exp;
    w->request = tk_op_id_get(&x->request);
    w->iss = tk_op_iss_get(&x->idp_iss);
    w->idp_sid = tk_op_id_get(&x->idp_sid);
}

/* A denial consumes the request and nothing else: no code, expiry or grant
 * travels with it (apply reads none). */
static void to_wire_code_issue(const tk_op_code_issue *x, op_wire *w)
{
    w->request = tk_op_id_get(&x->request);
    wire_hash(&w->has_browser, w->browser, x->browser);
    w->decision = x->decision;
    if (x->decision != TK_DECIDE_DENY) {
        wire_hash(&w->has_code, w->code, x->code);
        w->code_exp = x->code_exp;
        w->grant = tk_op_id_get(&x->grant);
    }
}

/* The token pair of CODE_REDEEM and REFRESH and their bindings: the refresh
 * token's hash and expiry only when there is one, the certificate and key
 * only when set, bind_refresh only when it binds something. */
static void to_wire_pair(const uint8_t *access, int64_t access_exp, bool has_refresh,
                         const uint8_t *refresh, int64_t refresh_exp, op_wire *w)
{
    wire_hash(&w->has_access, w->access, access);
    w->access_exp = access_exp;
    wire_opt_hash(&w->has_refresh, w->refresh, has_refresh, refresh);
    w->refresh_exp = has_refresh ? refresh_exp : 0;
}

static void to_wire_binding(bool has_cnf, const uint8_t *cnf, bool has_jkt, const uint8_t *jkt,
                            bool bind_refresh, op_wire *w)
{
    wire_opt_hash(&w->has_cnf, w->cnf, has_cnf, cnf);
    wire_opt_hash(&w->has_jkt, w->jkt, has_jkt, jkt);
    w->bind_refresh = has_jkt && bind_refresh && w->has_refresh ? 1 : 0;
}

/* What each kind carries; the members apply never reads are left out, so
 * there is one encoding of each op (the decoder holds the bytes to it). */
static void to_wire(const tk_op *op, op_wire *w)
{
    memset(w, 0, sizeof(*w));
    w->type = op->type;
    w->at = op->at;
    switch (op->type) {
    case TK_OP_REVOKE_TOKEN:
        wire_hash(&w->has_hash, w->hash, op->revoke_token.hash);
        break;
    case TK_OP_REVOKE_GRANT:
        w->id = tk_op_id_get(&op->revoke_grant.grant);
        break;
    case TK_OP_SESSION_STATE:
        w->id = tk_op_id_get(&op->session.sid);
        w->state = op->session.state;
        w->hold = op->session.hold;
        w->reason = tk_op_reason_get(&op->session.reason);
        break;
    case TK_OP_CLIENT_STATUS:
        w->id = tk_op_id_get(&op->client_status.client);
        w->state = op->client_status.status;
        break;
    case TK_OP_CLIENT_SECRET:
        w->id = tk_op_id_get(&op->client_secret.client);
        wire_hash(&w->has_secret, w->secret, op->client_secret.secret_hash);
        break;
    case TK_OP_AGENT_ACCESS:
        w->id = tk_op_id_get(&op->agent_access.client);
        w->resource = tk_op_resource_get(&op->agent_access.resource);
        w->allowed = op->agent_access.allowed;
        w->denied = op->agent_access.denied;
        break;
    case TK_OP_IDP_EVENT:
        to_wire_idp(&op->idp_event, w);
        break;
    case TK_OP_PUT_NEW:
        w->id = tk_op_id_get(&op->put_new.key);
        w->db = op->put_new.db;
        w->rec = (tk_slice){(const char *)op->put_new.rec, op->put_new.len};
        break;
    case TK_OP_SIGN_IN:
        to_wire_sign_in(&op->sign_in, w);
        break;
    case TK_OP_CODE_ISSUE:
        to_wire_code_issue(&op->code_issue, w);
        break;
    case TK_OP_CODE_REDEEM: {
        const tk_op_code_redeem *x = &op->code_redeem;
        wire_hash(&w->has_code, w->code, x->code);
        to_wire_pair(x->access, x->access_exp, x->has_refresh, x->refresh, x->refresh_exp, w);
        to_wire_binding(x->has_cnf, x->cnf, x->has_jkt, x->jkt, x->bind_refresh, w);
        break;
    }
    case TK_OP_REFRESH: {
        const tk_op_refresh *x = &op->refresh;
        wire_hash(&w->has_hash, w->hash, x->old);
        to_wire_pair(x->access, x->access_exp, true, x->refresh, x->refresh_exp, w);
        to_wire_binding(x->has_cnf, x->cnf, x->has_jkt, x->jkt, x->bind_refresh, w);
        w->window = x->window;
        w->scope_mask = x->scope_mask;
        break;
    }
    default: {
        TK_ASSERT(op->type == TK_OP_EXCHANGE);
        const tk_op_exchange *x = &op->exchange;
        wire_hash(&w->has_hash, w->hash, x->parent);
        wire_hash(&w->has_access, w->access, x->child);
        w->id = tk_op_id_get(&x->client);
        w->access_exp = x->exp;
        w->scope_mask = x->scope_mask;
        to_wire_binding(x->has_cnf, x->cnf, x->has_jkt, x->jkt, false, w);
        break;
    }
    }
}

/* Slices in w were checked against the field limits, which equal the op
 * members' capacities, so the set calls cannot fail. */
static void set_checked(int rc)
{
    TK_ASSERT(rc == 0);
}

static void from_wire_idp(const op_wire *w, tk_op_idp_event *e)
{
    memcpy(e->match, w->hash, TK_HASH_LEN);
    e->state = w->state;
    e->hold = w->hold;
    e->source = w->source;
    e->has_filter = w->has_filter;
    memcpy(e->filter, w->filter, TK_HASH_LEN);
    set_checked(tk_op_id_set(&e->event_id, w->id));
    set_checked(tk_op_iss_set(&e->iss, w->iss));
    set_checked(tk_op_reason_set(&e->reason, w->reason));
    e->until = w->until;
}

static void from_wire_sign_in(const op_wire *w, tk_op_sign_in *x)
{
    set_checked(tk_op_id_set(&x->sid, w->id));
    set_checked(tk_op_sub_set(&x->sub, w->sub));
    x->session_exp = w->session_exp;
    memcpy(x->browser, w->browser, TK_HASH_LEN);
    memcpy(x->csrf_key, w->csrf, TK_HASH_LEN);
    x->browser_exp = w->browser_exp;
    set_checked(tk_op_id_set(&x->request, w->request));
    set_checked(tk_op_iss_set(&x->idp_iss, w->iss));
    set_checked(tk_op_id_set(&x->idp_sid, w->idp_sid));
}

static void from_wire_code_issue(const op_wire *w, tk_op_code_issue *x)
{
    set_checked(tk_op_id_set(&x->request, w->request));
    memcpy(x->browser, w->browser, TK_HASH_LEN);
    x->decision = w->decision;
    memcpy(x->code, w->code, TK_HASH_LEN);
    x->code_exp = w->code_exp;
    set_checked(tk_op_id_set(&x->grant, w->grant));
}

static void from_wire_redeem(const op_wire *w, tk_op_code_redeem *x)
{
    memcpy(x->code, w->code, TK_HASH_LEN);
    memcpy(x->access, w->access, TK_HASH_LEN);
    memcpy(x->refresh, w->refresh, TK_HASH_LEN);
    x->has_refresh = w->has_refresh;
    x->access_exp = w->access_exp;
    x->refresh_exp = w->refresh_exp;
    x->has_cnf = w->has_cnf;
    memcpy(x->cnf, w->cnf, TK_HASH_LEN);
    x->has_jkt = w->has_jkt;
    x->bind_refresh = w->bind_refresh != 0;
    memcpy(x->jkt, w->jkt, TK_HASH_LEN);
}

static void from_wire_refresh(const op_wire *w, tk_op_refresh *x)
{
    memcpy(x->old, w->hash, TK_HASH_LEN);
    memcpy(x->access, w->access, TK_HASH_LEN);
    memcpy(x->refresh, w->refresh, TK_HASH_LEN);
    x->access_exp = w->access_exp;
    x->refresh_exp = w->refresh_exp;
    x->window = w->window;
    x->scope_mask = w->scope_mask;
    x->has_cnf = w->has_cnf;
    memcpy(x->cnf, w->cnf, TK_HASH_LEN);
    x->has_jkt = w->has_jkt;
    x->bind_refresh = w->bind_refresh != 0;
    memcpy(x->jkt, w->jkt, TK_HASH_LEN);
}

static void from_wire_exchange(const op_wire *w, tk_op_exchange *x)
{
    memcpy(x->parent, w->hash, TK_HASH_LEN);
    memcpy(x->child, w->access, TK_HASH_LEN);
    set_checked(tk_op_id_set(&x->client, w->id));
    x->exp = w->access_exp;
    x->scope_mask = w->scope_mask;
    x->has_cnf = w->has_cnf;
    memcpy(x->cnf, w->cnf, TK_HASH_LEN);
    x->has_jkt = w->has_jkt;
    memcpy(x->jkt, w->jkt, TK_HASH_LEN);
}

/* Everything w carries goes into the op, so that to_wire of the result
 * shows any key the kind's canonical form would not write. PUT_NEW's rec
 * points into w's bytes here; tk_op_decode makes it the op's own. */
static void from_wire(const op_wire *w, tk_op *op)
{
    memset(op, 0, sizeof(*op)); /* padding too: decoded ops compare whole */
    op->type = w->type;
    op->at = w->at;
    switch (w->type) {
    case TK_OP_REVOKE_TOKEN:
        memcpy(op->revoke_token.hash, w->hash, TK_HASH_LEN);
        break;
    case TK_OP_REVOKE_GRANT:
        set_checked(tk_op_id_set(&op->revoke_grant.grant, w->id));
        break;
    case TK_OP_SESSION_STATE:
        set_checked(tk_op_id_set(&op->session.sid, w->id));
        op->session.state = w->state;
        op->session.hold = w->hold;
        set_checked(tk_op_reason_set(&op->session.reason, w->reason));
        break;
    case TK_OP_CLIENT_STATUS:
        set_checked(tk_op_id_set(&op->client_status.client, w->id));
        op->client_status.status = w->state;
        break;
    case TK_OP_CLIENT_SECRET:
        set_checked(tk_op_id_set(&op->client_secret.client, w->id));
        memcpy(op->client_secret.secret_hash, w->secret, TK_HASH_LEN);
        break;
    case TK_OP_AGENT_ACCESS:
        set_checked(tk_op_id_set(&op->agent_access.client, w->id));
        set_checked(tk_op_resource_set(&op->agent_access.resource, w->resource));
        op->agent_access.allowed = (uint32_t)w->allowed; /* range-checked by the field table */
        op->agent_access.denied = (uint32_t)w->denied;
        break;
    case TK_OP_IDP_EVENT:
        from_wire_idp(w, &op->idp_event);
        break;
    case TK_OP_PUT_NEW:
        set_checked(tk_op_id_set(&op->put_new.key, w->id));
        op->put_new.db = w->db;
        op->put_new.len = (uint16_t)w->rec.len; /* at most TK_RECORD_MAX (field table) */
        op->put_new.rec = (uint8_t *)(uintptr_t)w->rec.p;
        break;
    case TK_OP_SIGN_IN:
        from_wire_sign_in(w, &op->sign_in);
        break;
    case TK_OP_CODE_ISSUE:
        from_wire_code_issue(w, &op->code_issue);
        break;
    case TK_OP_CODE_REDEEM:
        from_wire_redeem(w, &op->code_redeem);
        break;
    case TK_OP_REFRESH:
        from_wire_refresh(w, &op->refresh);
        break;
    default:
        TK_ASSERT(w->type == TK_OP_EXCHANGE);
        from_wire_exchange(w, &op->exchange);
        break;
    }
}

/* A PUT_NEW's record must decode as its DBI's kind (apply refuses it
 * otherwise): checked at both ends of the wire. */
static bool put_new_rec_ok(const tk_op *op)
{
    if (op->type != TK_OP_PUT_NEW) {
        return true;
    }
    const tk_op_put_new *x = &op->put_new;
    if (x->db == TK_OP_DB_CLIENT) {
        tk_client_rec c;
        return tk_record_decode_client(x->rec, x->len, &c) == 0;
    }
    tk_authreq_rec a;
    return tk_record_decode_authreq(x->rec, x->len, &a) == 0;
}

int tk_op_encode(const tk_op *op, uint8_t *buf, size_t cap, size_t *len)
{
    if (tk_op_validate(op) != 0 || !put_new_rec_ok(op)) {
        return TK_E_INVALID;
    }
    op_wire w;
    to_wire(op, &w);
    TK_ASSERT((wire_keys(&w) & ~(op_keys[op->type] | OP_COMMON_KEYS)) == 0);
    return tk_codec_encode(op_fields, NF(op_fields), &w, buf, cap, len);
}

int tk_op_decode(const uint8_t *buf, size_t len, tk_op *op)
{
    op_wire w, canon;
    memset(op, 0, sizeof(*op));
    int rc = tk_codec_decode(op_fields, NF(op_fields), buf, len, &w, sizeof(w));
    if (rc != 0) {
        return rc;
    }
    uint64_t keys = wire_keys(&w);
    if ((keys & ~(op_keys[w.type] | OP_COMMON_KEYS)) != 0) {
        return TK_E_CORRUPT; /* a key of another kind */
    }
    tk_op got;
    from_wire(&w, &got);
    to_wire(&got, &canon);
    /* Exactly the keys the encoder writes for this op: none missing (a
     * required hash, say), none that apply would ignore. */
    if (wire_keys(&canon) != keys || tk_op_validate(&got) != 0 || !put_new_rec_ok(&got)) {
        return TK_E_CORRUPT;
    }
    if (got.type == TK_OP_PUT_NEW) {
        uint8_t *own = malloc(got.put_new.len);
        if (own == NULL) {
            return -ENOMEM;
        }
        memcpy(own, got.put_new.rec, got.put_new.len);
        got.put_new.rec = own;
    }
    memcpy(op, &got, sizeof(*op));
    return 0;
}

void tk_op_release(tk_op *op)
{
    if (op->type == TK_OP_PUT_NEW) {
        free(op->put_new.rec);
        op->put_new.rec = NULL;
    }
}
