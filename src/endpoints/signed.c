/*
 * tokend's signatures on the wire: GET /jwks.json (the public halves of
 * tokend's own keys, src/keys) and RFC 9701 signed introspection answers,
 * the branch POST /introspect takes when the caller asks for
 * application/token-introspection+jwt.
 *
 * The one idea: a signed answer wraps exactly the bytes of the plain one.
 * introspect.c renders the RFC 7662 JSON as always; only then, and only for
 * a caller whose Accept names the JWT type, this file puts it under
 * "token_introspection" next to iss, aud (the caller) and iat, and signs.
 * A plain caller pays one scan of its header names for "Accept", nothing
 * more. Errors (400, 401, 503) stay plain JSON, as RFC 9701 §4 has them.
 */
#include "endpoints_int.h"

#include "tokend/keys.h"
#include "tokend/log.h"

#include <string.h>

#define JWT_TYPE "application/token-introspection+jwt"

/* ---- Accept ------------------------------------------------------------------------- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool case_eq(const char *p, size_t n, const char *s)
{
    size_t k = 0;
    while (k < n && s[k] != '\0' && lower(p[k]) == s[k]) {
        k++;
    }
    return k == n && s[k] == '\0';
}

static tk_slice trim(const char *p, const char *e)
{
    while (p < e && ows(*p)) {
        p++;
    }
    while (e > p && ows(e[-1])) {
        e--;
    }
    return (tk_slice){p, (size_t)(e - p)};
}

/* The end of one list element or parameter: the next unquoted stop
 * character (',' or ';'), or e. Quoted strings (with \ escapes) are
 * skipped whole, so a ',' inside a parameter value splits nothing. */
static const char *next_stop(const char *p, const char *e, const char *stops)
{
    bool quoted = false;
    for (; p < e; p++) { /* bounded by the header value */
        if (quoted) {
            if (*p == '\\' && p + 1 < e) {
                p++;
            } else if (*p == '"') {
                quoted = false;
            }
        } else if (*p == '"') {
            quoted = true;
        } else if (strchr(stops, *p) != NULL) {
            return p;
        }
    }
    return e;
}

/* q=0 (RFC 9110 §12.4.2: "0" followed by up to three zero decimals) says
 * "not acceptable"; any other weight is ignored. */
static bool weight_zero(tk_slice param)
{
    const char *eq = memchr(param.p, '=', param.len);
    if (eq == NULL) {
        return false;
    }
    tk_slice name = trim(param.p, eq);
    if (!case_eq(name.p, name.len, "q")) {
        return false;
    }
    tk_slice v = trim(eq + 1, param.p + param.len);
    if (v.len == 0 || v.len > 5 || v.p[0] != '0') {
        return false;
    }
    for (size_t i = 1; i < v.len; i++) {
        if ((i == 1 && v.p[i] != '.') || (i > 1 && v.p[i] != '0')) {
            return false;
        }
    }
    return true;
}

bool ep_accepts(tk_slice accept, const char *type)
{
    const char *p = accept.p, *e = accept.p + accept.len;
    while (p < e) { /* each turn consumes one element and its ',' */
        const char *end = next_stop(p, e, ",");
        const char *semi = next_stop(p, end, ";");
        tk_slice mt = trim(p, semi);
        bool match = case_eq(mt.p, mt.len, type);
        bool refused = false;
        for (const char *q = semi; match && q < end;) { /* parameters */
            const char *pe = next_stop(q + 1, end, ";");
            refused = refused || weight_zero(trim(q + 1, pe));
            q = pe;
        }
        if (match && !refused) {
            return true;
        }
        p = end < e ? end + 1 : e;
    }
    return false;
}

static bool wants_jwt(const ep_req *r)
{
    const tk_http_request *h = r->http;
    for (size_t i = 0; i < h->nheaders && i < TK_HTTP_HEADERS_MAX; i++) {
        tk_slice n = h->headers[i].name;
        if (n.len == 6 && case_eq(n.p, n.len, "accept") &&
            ep_accepts(h->headers[i].value, JWT_TYPE)) {
            return r->w->app->cfg.keys != NULL;
        }
    }
    return false;
}

/* ---- Signed introspection (RFC 9701) -------------------------------------------------- */

bool ep_introspect_signed(ep_req *r, tk_slice caller_id, const char *answer, size_t n)
{
    if (!wants_jwt(r)) {
        return false;
    }
    ep_worker *w = r->w;
    const char *iss = w->app->cfg.issuer;
    char payload[TK_SIGNED_PAYLOAD_MAX];
    tk_json j;
    tk_json_init(&j, payload, sizeof payload);
    tk_json_obj_begin(&j);
    tk_json_kv_str(&j, "iss", (tk_slice){iss, strnlen(iss, TK_URL_MAX)});
    tk_json_kv_str(&j, "aud", caller_id);
    tk_json_kv_int(&j, "iat", w->now);
    tk_json_obj_end(&j);
    static const char member[] = ",\"token_introspection\":";
    size_t len = j.len - 1; /* without its '}': the answer goes in as the last member */
    if (tk_json_finish(&j) != 0 || len + sizeof member + n + 1 > sizeof payload) {
        tk_log_error("response_too_big", "endpoint=introspect signed=1 len=%zu", n);
        ep_reply_error(r, 500, "server_error", NULL);
        return true;
    }
    memcpy(payload + len, member, sizeof member - 1);
    len += sizeof member - 1;
    memcpy(payload + len, answer, n);
    len += n;
    payload[len++] = '}';
    char jws[TK_SIGNED_RESPONSE_MAX];
    size_t jl = 0;
    const tk_keyset *ks = tk_keys_holder_get(w->app->cfg.keys);
    int rc = tk_keys_sign(ks, "token-introspection+jwt", payload, len, jws, sizeof jws, &jl);
    if (rc != 0) {
        tk_log_error("sign_failed", "endpoint=introspect err=%s", tk_strerror(rc));
        ep_reply_error(r, 500, "server_error", NULL);
        return true;
    }
    ep_reply(r, 200, JWT_TYPE, NULL, jws, jl);
    return true;
}

/* ---- GET /jwks.json ---------------------------------------------------------------------- */

void ep_jwks(ep_req *r)
{
    ep_worker *w = r->w;
    if (w->app->cfg.keys == NULL) {
        ep_reply_error(r, 404, "not_found", NULL);
        return;
    }
    tk_json j;
    tk_json_init(&j, w->scratch, sizeof w->scratch);
    tk_keys_jwks(tk_keys_holder_get(w->app->cfg.keys), w->now, w->app->cfg.signing_overlap, &j);
    if (tk_json_finish(&j) != 0) {
        ep_reply_json(r, 200, &j); /* 500 */
        return;
    }
    ep_reply(r, 200, "application/jwk-set+json", NULL, j.buf, j.len);
}
