/*
 * The RFC 7662 introspection answer as JSON: the one view of a
 * tk_introspection that POST /introspect sends and `tokenctl token show`
 * prints. It lives in core, below the endpoints, so that tokenctl links the
 * core and the store and nothing of the HTTP side.
 *
 * Two writers give byte-identical text: the generic one through tk_json
 * (escaping), and a fast one of straight copies for the common case where
 * no string needs escaping (the hot path of POST /introspect).
 */
#include "tokend/introspect_json.h"
#include "tokend/crypto.h"

#include "tokend/crypto.h"

#include <string.h>

/* RFC 8705 §3.1: cnf.x5t#S256 of a certificate-bound token, base64url. */
static void x5t(const tk_token_rec *t, char out[48])
{
    TK_ASSERT(tk_b64url_encode(t->cnf_x5t, TK_HASH_LEN, out, 48) == 0);
}

/* RFC 8693 §4.1: the current actor outermost, prior actors nested inside. */
static void write_act(const tk_introspection *r, tk_json *j)
{
    TK_ASSERT(r->nactors <= TK_DEPTH_MAX + 1);
    for (unsigned i = 0; i < r->nactors; i++) {
        tk_json_key(j, "act");
        tk_json_obj_begin(j);
        tk_json_kv_str(j, "sub", r->actors[i]);
    }
    for (unsigned i = 0; i < r->nactors; i++) {
        tk_json_obj_end(j);
    }
}

void tk_introspect_json(const tk_introspection *r, tk_slice issuer, tk_json *j)
{
    tk_json_obj_begin(j);
    tk_json_kv_bool(j, "active", r->active);
    if (r->active) {
        const tk_token_rec *t = &r->tok;
        tk_json_kv_str(j, "scope", t->scope);
        tk_json_kv_str(j, "client_id", t->client_id);
        tk_json_kv_str(j, "sub", r->sub);
        tk_json_kv_str(j, "sid", t->sid);
        if (r->idp_iss.len > 0) {
            tk_json_kv_str(j, "idp_iss", r->idp_iss);
        }
        tk_json_kv_cstr(j, "token_type",
                        t->kind == TK_TOKEN_REFRESH ? "refresh_token"
                        : t->has_jkt                ? "DPoP"
                                                    : "Bearer");
        tk_json_kv_int(j, "exp", t->exp);
        tk_json_kv_int(j, "iat", t->iat);
        tk_json_kv_int(j, "nbf", t->nbf);
        if (issuer.len > 0) {
            tk_json_kv_str(j, "iss", issuer);
        }
        if (t->aud.len > 0) {
            tk_json_kv_str(j, "aud", t->aud);
        }
        if (t->has_jkt) { /* RFC 9449 §6.2 */
            char jkt[TK_JKT_B64_LEN + 1];
            TK_ASSERT(tk_b64url_encode(t->jkt, TK_HASH_LEN, jkt, sizeof jkt) == 0);
            tk_json_key(j, "cnf");
            tk_json_obj_begin(j);
            tk_json_kv_cstr(j, "jkt", jkt);
            tk_json_obj_end(j);
        }
        write_act(r, j);
        if (r->may_act.len > 0) {
            tk_json_key(j, "may_act");
            tk_json_obj_begin(j);
            tk_json_kv_str(j, "sub", r->may_act);
            tk_json_obj_end(j);
        }
        if (t->has_cnf) {
            char b[48];
            x5t(t, b);
            tk_json_key(j, "cnf");
            tk_json_obj_begin(j);
            tk_json_kv_cstr(j, "x5t#S256", b);
            tk_json_obj_end(j);
        }
    }
    tk_json_obj_end(j);
}

/* ---- The fast writer ----------------------------------------------------------------- */

/* A cursor into a fixed buffer; a write that does not fit clears ok. */
typedef struct cursor {
    char *p, *end;
    bool ok;
} cursor;

static void put(cursor *c, const char *s, size_t n)
{
    if (n > (size_t)(c->end - c->p)) {
        c->ok = false;
        return;
    }
    if (n > 0) {
        memcpy(c->p, s, n);
        c->p += n;
    }
}

#define PUT_LIT(c, s) put((c), (s), sizeof(s) - 1)

static void put_str(cursor *c, tk_slice s)
{
    put(c, s.p, s.len);
    PUT_LIT(c, "\"");
}

static void put_int(cursor *c, int64_t v)
{
    char d[24];
    put(c, d, tk_fmt_i64(v, d));
}

/* Every string of the answer needs no escaping. */
static bool all_plain(const tk_introspection *r, tk_slice issuer)
{
    const tk_token_rec *t = &r->tok;
    bool plain = tk_json_is_plain(t->scope.p, t->scope.len) &&
                 tk_json_is_plain(t->client_id.p, t->client_id.len) &&
                 tk_json_is_plain(r->sub.p, r->sub.len) && tk_json_is_plain(t->sid.p, t->sid.len) &&
                 tk_json_is_plain(issuer.p, issuer.len) && tk_json_is_plain(t->aud.p, t->aud.len) &&
                 tk_json_is_plain(r->idp_iss.p, r->idp_iss.len);
    for (unsigned i = 0; plain && i < r->nactors; i++) {
        plain = tk_json_is_plain(r->actors[i].p, r->actors[i].len);
    }
    return plain && tk_json_is_plain(r->may_act.p, r->may_act.len);
}

size_t tk_introspect_json_fast(const tk_introspection *r, tk_slice issuer, char *buf, size_t cap)
{
    TK_ASSERT(r->nactors <= TK_DEPTH_MAX + 1);
    cursor c = {buf, buf + cap, true};
    if (!r->active) {
        PUT_LIT(&c, "{\"active\":false}");
        return c.ok && c.p < c.end ? (size_t)(c.p - buf) : 0;
    }
    if (!all_plain(r, issuer)) {
        return 0;
    }
    const tk_token_rec *t = &r->tok;
    PUT_LIT(&c, "{\"active\":true,\"scope\":\"");
    put_str(&c, t->scope);
    PUT_LIT(&c, ",\"client_id\":\"");
    put_str(&c, t->client_id);
    PUT_LIT(&c, ",\"sub\":\"");
    put_str(&c, r->sub);
    PUT_LIT(&c, ",\"sid\":\"");
    put_str(&c, t->sid);
    if (r->idp_iss.len > 0) {
        PUT_LIT(&c, ",\"idp_iss\":\"");
        put_str(&c, r->idp_iss);
    }
    if (t->kind == TK_TOKEN_REFRESH) {
        PUT_LIT(&c, ",\"token_type\":\"refresh_token\",\"exp\":");
    } else if (t->has_jkt) {
        PUT_LIT(&c, ",\"token_type\":\"DPoP\",\"exp\":");
    } else {
        PUT_LIT(&c, ",\"token_type\":\"Bearer\",\"exp\":");
    }
    put_int(&c, t->exp);
    PUT_LIT(&c, ",\"iat\":");
    put_int(&c, t->iat);
    PUT_LIT(&c, ",\"nbf\":");
    put_int(&c, t->nbf);
    if (issuer.len > 0) {
        PUT_LIT(&c, ",\"iss\":\"");
        put_str(&c, issuer);
    }
    if (t->aud.len > 0) {
        PUT_LIT(&c, ",\"aud\":\"");
        put_str(&c, t->aud);
    }
    if (t->has_jkt) {
        char jkt[TK_JKT_B64_LEN + 1];
        TK_ASSERT(tk_b64url_encode(t->jkt, TK_HASH_LEN, jkt, sizeof jkt) == 0);
        PUT_LIT(&c, ",\"cnf\":{\"jkt\":\"");
        put(&c, jkt, TK_JKT_B64_LEN);
        PUT_LIT(&c, "\"}");
    }
    for (unsigned i = 0; i < r->nactors; i++) {
        PUT_LIT(&c, ",\"act\":{\"sub\":\"");
        put_str(&c, r->actors[i]);
    }
    for (unsigned i = 0; i < r->nactors; i++) {
        PUT_LIT(&c, "}");
    }
    if (r->may_act.len > 0) {
        PUT_LIT(&c, ",\"may_act\":{\"sub\":\"");
        put_str(&c, r->may_act);
        PUT_LIT(&c, "}");
    }
    if (t->has_cnf) {
        char b[48];
        x5t(t, b);
        PUT_LIT(&c, ",\"cnf\":{\"x5t#S256\":\"");
        put_str(&c, tk_slice_from_str(b));
        PUT_LIT(&c, "}");
    }
    PUT_LIT(&c, "}");
    /* tk_json keeps cap - 1 bytes of text; the fast writer promises the same. */
    return c.ok && c.p < c.end ? (size_t)(c.p - buf) : 0;
}
