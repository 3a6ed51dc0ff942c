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
#include <stddef.h>
#include <string.h>

#include "codec_int.h"

/* The wire form of an op: one flat struct of slices, one key per field; each
 * op kind uses its own subset of the keys (op_keys below). */
typedef struct op_wire {
    uint8_t type, state, source, hold;
    bool has_hash, has_filter, has_secret;
    uint8_t hash[TK_HASH_LEN], filter[TK_HASH_LEN], secret[TK_HASH_LEN];
    tk_slice id, reason, iss, resource;
    int64_t at, until;
    int64_t allowed, denied;
} op_wire;

static const field op_fields[] = {
    ENUM(1, true, TK_OP_REVOKE_TOKEN, TK_OP_WIRE_LAST, op_wire, type),
    ENUM(2, false, 1, 3, op_wire, state),
    HASH(3, false, op_wire, hash, offsetof(op_wire, has_hash)),
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
    HASH(8, false, op_wire, filter, offsetof(op_wire, has_filter)),
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
    HASH(15, false, op_wire, secret, offsetof(op_wire, has_secret)),
};

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

/* Wire keys each op kind may carry (bit k = key k), beside 0, 1 and 6; and
 * the hash keys it must carry (the encoder always writes them). */
#define K(k) (1u << (k))
static const struct {
    uint32_t allowed, hashes;
} op_keys[TK_OP_WIRE_LAST + 1] = {
    [TK_OP_REVOKE_TOKEN] = {K(3), K(3)},
    [TK_OP_REVOKE_GRANT] = {K(4), 0},
    [TK_OP_SESSION_STATE] = {K(2) | K(4) | K(5) | K(14), 0},
    [TK_OP_CLIENT_STATUS] = {K(2) | K(4), 0},
    [TK_OP_AGENT_ACCESS] = {K(4) | K(11) | K(12) | K(13), 0},
    [TK_OP_IDP_EVENT] = {K(2) | K(3) | K(4) | K(5) | K(7) | K(8) | K(9) | K(10) | K(14), K(3)},
    [TK_OP_CLIENT_SECRET] = {K(4) | K(15), K(15)},
};
#define OP_COMMON_KEYS (K(0) | K(1) | K(6))

/* The keys present in w (what the encoder writes: required ones, and
 * optional ones that are set). */
static uint32_t wire_keys(const op_wire *w)
{
    uint32_t m = 0;
    for (size_t i = 0; i < NF(op_fields); i++) {
        if (op_fields[i].required || tk_codec_present(&op_fields[i], w)) {
            m |= K(op_fields[i].key);
        }
    }
    return m | K(0);
}

static void to_wire(const tk_op *op, op_wire *w)
{
    memset(w, 0, sizeof(*w));
    w->type = op->type;
    w->at = op->at;
    switch (op->type) {
    case TK_OP_REVOKE_TOKEN:
        w->has_hash = true;
        memcpy(w->hash, op->revoke_token.hash, TK_HASH_LEN);
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
        w->has_secret = true;
        memcpy(w->secret, op->client_secret.secret_hash, TK_HASH_LEN);
        break;
    case TK_OP_AGENT_ACCESS:
        w->id = tk_op_id_get(&op->agent_access.client);
        w->resource = tk_op_resource_get(&op->agent_access.resource);
        w->allowed = op->agent_access.allowed;
        w->denied = op->agent_access.denied;
        break;
    default: {
        TK_ASSERT(op->type == TK_OP_IDP_EVENT);
        const tk_op_idp_event *e = &op->idp_event;
        w->has_hash = true;
        memcpy(w->hash, e->match, TK_HASH_LEN);
        w->state = e->state;
        w->hold = e->hold;
        w->source = e->source;
        w->has_filter = e->has_filter;
        memcpy(w->filter, e->filter, TK_HASH_LEN);
        w->id = tk_op_id_get(&e->event_id);
        w->iss = tk_op_iss_get(&e->iss);
        w->reason = tk_op_reason_get(&e->reason);
        w->until = e->until;
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

static void from_wire(const op_wire *w, tk_op *op)
{
    *op = tk_op_make(w->type, w->at);
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
    default: {
        TK_ASSERT(w->type == TK_OP_IDP_EVENT);
        tk_op_idp_event *e = &op->idp_event;
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
        break;
    }
    }
}

int tk_op_encode(const tk_op *op, uint8_t *buf, size_t cap, size_t *len)
{
    int rc = tk_op_validate(op);
    if (rc != 0 || op->type > TK_OP_WIRE_LAST) {
        return TK_E_INVALID; /* the AS ops have no wire form yet */
    }
    op_wire w;
    to_wire(op, &w);
    TK_ASSERT((wire_keys(&w) & ~(op_keys[op->type].allowed | OP_COMMON_KEYS)) == 0);
    return tk_codec_encode(op_fields, NF(op_fields), &w, buf, cap, len);
}

int tk_op_decode(const uint8_t *buf, size_t len, tk_op *op)
{
    op_wire w;
    memset(op, 0, sizeof(*op));
    int rc = tk_codec_decode(op_fields, NF(op_fields), buf, len, &w, sizeof(w));
    if (rc != 0) {
        return rc;
    }
    uint32_t keys = wire_keys(&w), allowed = op_keys[w.type].allowed | OP_COMMON_KEYS;
    uint32_t hashes = op_keys[w.type].hashes;
    if ((keys & ~allowed) != 0 || (keys & hashes) != hashes) {
        return TK_E_CORRUPT; /* a key of another kind, or a missing hash */
    }
    from_wire(&w, op);
    if (tk_op_validate(op) != 0) {
        memset(op, 0, sizeof(*op));
        return TK_E_CORRUPT;
    }
    return 0;
}
