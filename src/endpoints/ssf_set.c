/*
 * The claims of the Security Event Tokens (RFC 8417) tokend pushes to edge
 * caches: one event per SET, its subject in SSF 1.0's top-level sub_id
 * (RFC 9493 subject identifiers). Pure: the pusher signs what this writes.
 *
 * No token ever travels: a token is named by the base64url of its SHA-256,
 * which a cache computes from the bearer value it holds.
 */
#include "tokend/crypto.h"
#include "tokend/json.h"
#include "tokend/ssf.h"

#include <string.h>

static const char *const types[] = {
    NULL,
    TK_SSF_CAEP_SESSION_REVOKED,
    TK_SSF_TYPE_PREFIX "session-suspended",
    TK_SSF_TYPE_PREFIX "session-resumed",
    TK_SSF_TYPE_PREFIX "token-revoked",
    TK_SSF_TYPE_PREFIX "grant-revoked",
    TK_SSF_TYPE_PREFIX "client-disabled",
    TK_SSF_TYPE_PREFIX "overflow",
};
_Static_assert(TK_ARRAY_LEN(types) == TK_SSF_KIND_LAST + 1, "a type for every kind");

const char *tk_ssf_event_type(uint8_t kind)
{
    return kind >= 1 && kind <= TK_SSF_KIND_LAST ? types[kind] : NULL;
}

static void opaque(tk_json *j, tk_slice id)
{
    tk_json_obj_begin(j);
    tk_json_kv_cstr(j, "format", "opaque");
    tk_json_kv_str(j, "id", id);
    tk_json_obj_end(j);
}

static void subject(tk_json *j, tk_slice issuer, const tk_ssf_event_rec *ev)
{
    tk_json_key(j, "sub_id");
    switch (ev->kind) {
    case TK_SSF_TOKEN_REVOKED: {
        char h[TK_SECRET_B64_LEN + 1];
        TK_ASSERT(ev->has_hash);
        tk_b64url_encode(ev->hash, TK_HASH_LEN, h, sizeof h);
        opaque(j, (tk_slice){h, strlen(h)});
        break;
    }
    case TK_SSF_GRANT_REVOKED:
        /* A grant is the family of (user, client): a cache drops every
         * answer whose sub and client_id are these. The user's issuer is
         * the IdP the session was bound to (introspection's idp_iss), or
         * tokend for a session without one. */
        tk_json_obj_begin(j);
        tk_json_kv_cstr(j, "format", "complex");
        if (ev->sub.len > 0) {
            tk_json_key(j, "user");
            tk_json_obj_begin(j);
            tk_json_kv_cstr(j, "format", "iss_sub");
            tk_json_kv_str(j, "iss", ev->iss.len > 0 ? ev->iss : issuer);
            tk_json_kv_str(j, "sub", ev->sub);
            tk_json_obj_end(j);
        }
        tk_json_key(j, "application");
        opaque(j, ev->client);
        tk_json_obj_end(j);
        break;
    case TK_SSF_CLIENT_DISABLED:
        opaque(j, ev->client);
        break;
    case TK_SSF_OVERFLOW:
        tk_json_obj_begin(j);
        tk_json_kv_cstr(j, "format", "uri");
        tk_json_kv_str(j, "uri", issuer);
        tk_json_obj_end(j);
        break;
    default: /* the session events */
        opaque(j, ev->id);
        break;
    }
}

static void payload(tk_json *j, const tk_ssf_event_rec *ev)
{
    tk_json_obj_begin(j);
    tk_json_kv_int(j, "event_timestamp", ev->at);
    if (ev->reason.len > 0) {
        tk_json_key(j, "reason_admin");
        tk_json_obj_begin(j);
        tk_json_kv_str(j, "en", ev->reason);
        tk_json_obj_end(j);
    }
    if (ev->hold != 0) {
        tk_json_kv_cstr(j, "hold", tk_hold_name(ev->hold));
    }
    if (ev->kind == TK_SSF_GRANT_REVOKED && ev->id.len > 0) {
        tk_json_kv_str(j, "grant_id", ev->id);
    }
    if (ev->kind == TK_SSF_TOKEN_REVOKED && ev->id.len > 0) {
        /* Tokens delegated from this one die with it and share its session. */
        tk_json_kv_str(j, "sid", ev->id);
    }
    tk_json_obj_end(j);
}

/* Deterministic per (receiver, event): a redelivered SET keeps its jti, so
 * a receiver may drop duplicates by it. */
static void jti(tk_slice id, uint64_t seq, const tk_ssf_event_rec *ev, char out[23])
{
    uint8_t in[TK_SSF_ID_MAX + 17], h[TK_HASH_LEN];
    TK_ASSERT(id.len <= TK_SSF_ID_MAX);
    memcpy(in, id.p, id.len);
    for (int i = 0; i < 8; i++) {
        in[id.len + (size_t)i] = (uint8_t)(seq >> (56 - 8 * i));
        in[id.len + 8 + (size_t)i] = (uint8_t)((uint64_t)ev->at >> (56 - 8 * i));
    }
    in[id.len + 16] = ev->kind;
    tk_sha256(in, id.len + 17, h);
    char b[TK_SECRET_B64_LEN + 1];
    tk_b64url_encode(h, 16, b, sizeof b); /* 128 bits: 22 characters */
    memcpy(out, b, 22);
    out[22] = '\0';
}

int tk_ssf_set_claims(tk_slice issuer, tk_slice id, tk_slice audience, uint64_t seq,
                      const tk_ssf_event_rec *ev, int64_t now, char *buf, size_t cap, size_t *len)
{
    const char *type = tk_ssf_event_type(ev->kind);
    TK_ASSERT(type != NULL);
    char j22[23];
    jti(id, seq, ev, j22);
    tk_json j;
    tk_json_init(&j, buf, cap);
    tk_json_obj_begin(&j);
    tk_json_kv_str(&j, "iss", issuer);
    tk_json_kv_str(&j, "aud", audience);
    tk_json_kv_int(&j, "iat", now);
    tk_json_kv_cstr(&j, "jti", j22);
    subject(&j, issuer, ev);
    tk_json_key(&j, "events");
    tk_json_obj_begin(&j);
    tk_json_key(&j, type);
    payload(&j, ev);
    tk_json_obj_end(&j);
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        return TK_E_TOOBIG;
    }
    *len = j.len;
    return 0;
}
