/*
 * Forward-auth for edge proxies: /auth (any method; /auth/<original path>
 * for proxies such as Envoy that append the original path).
 *
 * A proxy asks with the agent's Authorization header and the original
 * request (method, host, URI) in headers it sets itself. tokend finds the
 * protected resource, decides with the same core as introspection, and adds
 * two checks: the token's audience must name the resource (RFC 8707) and its
 * scopes must cover what the method requires. Answers:
 *   200  identity headers for the upstream (values percent-encoded where a
 *        byte is not printable ASCII, so nothing can split a header);
 *   401  WWW-Authenticate: Bearer realm, resource_metadata (RFC 9728 §5.1),
 *        with error="invalid_token" unless the token was missing;
 *   401  WWW-Authenticate: DPoP error="invalid_token" | "invalid_dpop_proof" |
 *        "use_dpop_nonce" (with DPoP-Nonce), algs="ES256" (RFC 9449 §7): a
 *        token sent as "Authorization: DPoP" is checked with the request's
 *        DPoP proof (htm/htu against the original method and URL, ath, iat,
 *        jti, the key against the token's cnf.jkt); a DPoP-bound token sent
 *        as Bearer is refused, and so is an unbound one sent as DPoP;
 *   403  error="insufficient_scope", scope="…" (RFC 6750 §3.1);
 *   403  {"error":"unknown_resource"} when no resource covers the request;
 *   400  when the original request cannot be known without ambiguity
 *        (headers that disagree, a host or path servers read differently).
 * A token is only ever taken from the Authorization header (never the query
 * or a body). A certificate-bound token (RFC 8705 §3, cnf.x5t#S256) is
 * accepted only with the same certificate in the client-cert-header, from a
 * proxy in client-cert-proxies (by source address; without that
 * configuration every bound token is refused: fail closed): otherwise 401
 * invalid_token. Like introspection this is a hot path: every string it writes
 * was prepared when the resources were loaded; no allocation, no snprintf.
 */
#include "endpoints_int.h"

#include "tokend/cert.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <string.h>

/* ---- The original request ------------------------------------------------------ */

typedef struct orig {
    tk_slice method, host, uri;
    tk_slice path;      /* normalised, in the worker's path buffer */
    tk_http_host vhost; /* host normalised, in hostbuf */
    char hostbuf[TK_HTTP_HOST_MAX + 1];
} orig;

static const struct {
    const char *name;
    size_t len;
    unsigned bit;
} known[] = {
    {"x-forwarded-method", 18, TK_TRUST_FWD_METHOD},
    {"x-original-method", 17, TK_TRUST_ORIG_METHOD},
    {"x-forwarded-host", 16, TK_TRUST_FWD_HOST},
    {"x-forwarded-uri", 15, TK_TRUST_FWD_URI},
    {"x-original-uri", 14, TK_TRUST_ORIG_URI},
    {"x-original-url", 14, TK_TRUST_ORIG_URL},
};
#define NKNOWN 6
_Static_assert(TK_ARRAY_LEN(known) == NKNOWN, "one slot per known header");

/* Collect the trusted headers; a repeated one is ambiguous (-1). */
static int collect(const tk_http_request *h, unsigned trusted, tk_slice v[NKNOWN])
{
    for (size_t k = 0; k < NKNOWN; k++) {
        v[k] = TK_SLICE_NULL;
    }
    TK_ASSERT(h->nheaders <= TK_HTTP_HEADERS_MAX);
    for (size_t i = 0; i < h->nheaders; i++) {
        tk_slice n = h->headers[i].name;
        if (n.len < 14 || n.len > 18 || (n.p[0] | 0x20) != 'x' || n.p[1] != '-') {
            continue; /* cheap reject: every known name is x-…, 14 to 18 bytes */
        }
        for (size_t k = 0; k < NKNOWN; k++) {
            if (n.len != known[k].len || !(trusted & known[k].bit) ||
                !tk_slice_eq_nocase(n, known[k].name)) {
                continue;
            }
            if (v[k].p != NULL) {
                return -1;
            }
            v[k] = h->headers[i].value;
        }
    }
    return 0;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool same_value(tk_slice a, tk_slice b, bool nocase)
{
    if (a.len != b.len) {
        return false;
    }
    for (size_t i = 0; i < a.len; i++) {
        if (a.p[i] != b.p[i] && (!nocase || lower(a.p[i]) != lower(b.p[i]))) {
            return false;
        }
    }
    return true;
}

/* Pick one value among candidates: every present one must agree. */
static int agree(const tk_slice *c, size_t n, bool nocase, tk_slice *out)
{
    *out = TK_SLICE_NULL;
    for (size_t i = 0; i < n; i++) {
        if (c[i].p == NULL) {
            continue;
        }
        if (out->p != NULL && !same_value(c[i], *out, nocase)) {
            return -1;
        }
        *out = c[i];
    }
    return 0;
}

/* "http(s)://authority/path…" → authority and path (empty path → "/"). */
static int split_url(tk_slice url, tk_slice *host, tk_slice *path)
{
    size_t i = 0;
    while (i < url.len && url.p[i] != ':') {
        i++;
    }
    if (i + 3 > url.len || url.p[i + 1] != '/' || url.p[i + 2] != '/') {
        return -1;
    }
    size_t a = i + 3, e = a;
    while (e < url.len && url.p[e] != '/' && url.p[e] != '?' && url.p[e] != '#') {
        e++;
    }
    if (e < url.len && url.p[e] == '#') {
        return -1; /* a fragment is refused, as in X-Forwarded-Uri */
    }
    *host = (tk_slice){url.p + a, e - a};
    *path = e < url.len && url.p[e] == '/' ? (tk_slice){url.p + e, url.len - e} : TK_SLICE_LIT("/");
    return host->len > 0 ? 0 : -1;
}

/* A method as every upstream reads it: a token of upper-case letters,
 * digits and '-' / '_' (every registered method). Methods are case-sensitive
 * (RFC 9110 §9.1), yet Django and Werkzeug upper-case them while Go does not:
 * "delete" must not get the "*" rule while the upstream runs DELETE. */
static bool method_ok(tk_slice m)
{
    if (m.len == 0 || m.len > TK_METHOD_MAX) {
        return false;
    }
    for (size_t i = 0; i < m.len; i++) {
        char c = m.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

/* Method, host and URI of the original request; host and path normalised
 * as the upstream routes on them (tokend/http_uri.h): a host or path that
 * servers could read differently is refused (-1: 400, fail closed). */
static int original(ep_req *r, const tk_resources *rs, orig *o)
{
    unsigned trusted = tk_resources_trusted(rs);
    const tk_http_request *h = r->http;
    tk_slice v[NKNOWN], url_host = TK_SLICE_NULL, url_path = TK_SLICE_NULL;
    if (collect(h, trusted, v) != 0) {
        return -1;
    }
    if (v[5].p != NULL && split_url(v[5], &url_host, &url_path) != 0) {
        return -1;
    }
    tk_slice methods[2] = {v[0], v[1]}, hosts[2] = {v[2], url_host};
    tk_slice uris[3] = {v[3], v[4], url_path};
    if (agree(methods, 2, false, &o->method) != 0 || agree(hosts, 2, true, &o->host) != 0 ||
        agree(uris, 3, false, &o->uri) != 0) {
        return -1;
    }
    if (o->method.p == NULL) {
        o->method = h->method_str;
    }
    if (o->host.p == NULL) {
        o->host = h->host;
    }
    if (o->uri.p == NULL) {
        /* Envoy style: /auth/<original path>. */
        if (h->path.len <= 5 || h->path.p[5] != '/') {
            return -1;
        }
        o->uri = (tk_slice){h->target.p + 5, h->target.len - 5};
    }
    if (!method_ok(o->method)) {
        tk_log_debug("forward_auth_refused", "why=bad_method");
        return -1;
    }
    if (tk_http_host_normalize(o->host, o->hostbuf, sizeof o->hostbuf, &o->vhost) != 0) {
        tk_log_debug("forward_auth_refused", "why=bad_host");
        return -1;
    }
    size_t n;
    enum tk_http_path_flaw flaw;
    if (tk_http_path_normalize(o->uri, tk_resources_path_params(rs), r->w->path, sizeof r->w->path,
                               &n, &flaw) != 0) {
        tk_log_debug("forward_auth_refused", "why=%s", tk_http_path_flaw_name(flaw));
        return -1;
    }
    o->path = (tk_slice){r->w->path, n};
    /* "/admin./x", "/admin%20/x", "/admin::$DATA" are "/admin…" to IIS, and
     * "/ADMINI~1/x" may be "/administrator/x". */
    if (tk_resources_windows_refused(rs) && tk_http_path_windows_alias(o->path)) {
        tk_log_debug("forward_auth_refused", "why=%s",
                     tk_http_path_flaw_name(TK_HTTP_PATH_WINDOWS_ALIAS));
        return -1;
    }
    return 0;
}

/* ---- Identity headers ----------------------------------------------------------- */

static void hb_put(ep_hbuf *b, const char *s, size_t n)
{
    if (b->overflow || n > b->cap - 1 - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* A value byte that must be percent-encoded: controls, DEL, non-ASCII, '%',
 * and a space at either end (it would be trimmed). */
static bool escape(unsigned char c, bool edge)
{
    return c < 0x20 || c >= 0x7f || c == '%' || (c == ' ' && edge);
}

/* Length of the run at p[0..n) of bytes that go out as they are inside a
 * value (escape(c, false) is false), eight at a time: a byte below 0x20
 * ((x - 0x20..) & ~x), with bit 7 set (DEL is 0x7f + 1 = 0x80 then), or '%'
 * (x ^ '%' is zero) flags its word, exactly as a yes/no; the flagged word is
 * then walked byte by byte. */
static size_t middle_run(const unsigned char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t pct = x ^ (ones * '%');
        uint64_t low = (x - ones * 0x20) & ~x;
        uint64_t del = (x & ~high) + ones; /* bit 7 set for 0x7f (and none below) */
        if (((low | ((pct - ones) & ~pct) | x | del) & high) != 0) {
            break;
        }
    }
    while (i < n && !escape(p[i], false)) {
        i++;
    }
    return i;
}

void ep_hb_value(ep_hbuf *b, tk_slice v)
{
    static const char hex[] = "0123456789ABCDEF";
    if (v.len == 0) {
        return; /* an absent value may be a NULL slice */
    }
    const unsigned char *p = (const unsigned char *)v.p;
    size_t last = v.len - 1;
    for (size_t i = 0; i < v.len;) { /* every turn writes at least one byte of v */
        size_t j = i;
        if (j == 0 && !escape(p[0], true)) {
            j = 1;
        }
        if (j > 0 && j < last) {
            j += middle_run(p + j, last - j);
        }
        if (j == last && !escape(p[last], true)) {
            j = v.len;
        }
        if (j > i) {
            hb_put(b, v.p + i, j - i);
            i = j;
            continue;
        }
        char e[3] = {'%', hex[p[i] >> 4], hex[p[i] & 15]};
        hb_put(b, e, 3);
        i++;
    }
}

static void hb_header(ep_hbuf *b, tk_slice prefix, tk_slice v)
{
    hb_put(b, prefix.p, prefix.len);
    ep_hb_value(b, v);
    hb_put(b, "\r\n", 2);
}

/* Subject, agent client, scope, session, actor chain (current actor first,
 * space-separated; empty unless delegated), and the session's IdP issuer
 * (empty for a session without one: dev login, tokenctl). Each IdP chooses its
 * own subs, so only issuer and subject together name a user. Actor and issuer
 * are always sent, even empty, so a proxy that copies them overwrites
 * whatever the agent sent. */
static void identity(ep_req *r, const tk_resource *res, const tk_introspection *in)
{
    ep_hbuf b = {.p = r->w->scratch, .cap = sizeof r->w->scratch};
    hb_header(&b, res->ident[TK_IDENT_SUBJECT], in->sub);
    hb_header(&b, res->ident[TK_IDENT_CLIENT], tk_introspection_client_id(in));
    hb_header(&b, res->ident[TK_IDENT_SCOPE], in->tok.scope);
    hb_header(&b, res->ident[TK_IDENT_SESSION], in->tok.sid);
    hb_put(&b, res->ident[TK_IDENT_ACTOR].p, res->ident[TK_IDENT_ACTOR].len);
    TK_ASSERT(in->nactors <= TK_DEPTH_MAX + 1);
    for (unsigned i = 0; i < in->nactors; i++) {
        if (i > 0) {
            hb_put(&b, " ", 1);
        }
        ep_hb_value(&b, in->actors[i]);
    }
    hb_put(&b, "\r\n", 2);
    hb_header(&b, res->ident[TK_IDENT_ISSUER], in->idp_iss);
    if (b.overflow) {
        tk_log_error("response_too_big", "endpoint=auth what=identity_headers");
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    b.p[b.len] = '\0';
    ep_reply(r, 200, NULL, b.p, "", 0);
}

/* ---- Decision ---------------------------------------------------------------------- */

static void count(ep_worker *w, enum ep_fa_result res)
{
    ep_add(&w->m.forward_auth[res], 1);
}

static void challenge(ep_req *r, int status, const char *header, enum ep_fa_result why)
{
    count(r->w, why);
    ep_reply(r, status, NULL, header, "", 0);
}

/* The token from Authorization: Bearer; 0, 1 (none: no error code) or -1
 * (malformed or oversize: answered like an unknown token). */
static int bearer(const tk_http_request *h, tk_slice *tok)
{
    if (h->authorization.len == 0) {
        return 1;
    }
    int rc = tk_http_bearer(h->authorization, tok);
    if (rc == TK_E_NOTFOUND) {
        return 1; /* another scheme: RFC 6750 §3.1, no error code */
    }
    return rc == 0 && tok->len <= TK_TOKEN_IN_MAX ? 0 : -1;
}

/* RFC 8705 §3: the proxy that asks is trusted to forward the client's
 * certificate, sends it exactly once, and its SHA-256 is the token's
 * cnf.x5t#S256. */
static bool holder_of(const ep_req *r, const uint8_t want[TK_HASH_LEN])
{
    const tk_app_cfg *cfg = &r->w->app->cfg;
    const tk_http_request *h = r->http;
    if (cfg->cert_header == NULL || cfg->cert_header[0] == '\0') {
        return false;
    }
    bool trusted = false;
    for (unsigned i = 0; i < cfg->ncert_proxies && !trusted; i++) {
        trusted = memcmp(h->peer, cfg->cert_proxies[i], 16) == 0;
    }
    if (!trusted) {
        tk_log_debug("forward_auth_refused", "why=cert_header_from_untrusted_peer");
        return false;
    }
    tk_slice v = TK_SLICE_NULL;
    TK_ASSERT(h->nheaders <= TK_HTTP_HEADERS_MAX);
    for (size_t i = 0; i < h->nheaders; i++) {
        if (tk_slice_eq_nocase(h->headers[i].name, cfg->cert_header)) {
            if (v.p != NULL) {
                return false; /* twice: ambiguous */
            }
            v = h->headers[i].value;
        }
    }
    uint8_t got[TK_HASH_LEN];
    return v.p != NULL && tk_cert_forwarded(v, got) == 0 && tk_ct_equal(got, want, TK_HASH_LEN);
}

/* ---- DPoP (RFC 9449 §7) ------------------------------------------------------------- */

#define DPOP_ALGS "algs=\"ES256\""
static const char dpop_invalid_token[] =
    "WWW-Authenticate: DPoP error=\"invalid_token\", " DPOP_ALGS "\r\n";
static const char dpop_invalid_proof[] =
    "WWW-Authenticate: DPoP error=\"invalid_dpop_proof\", " DPOP_ALGS "\r\n";
static const char dpop_use_nonce[] =
    "WWW-Authenticate: DPoP error=\"use_dpop_nonce\", " DPOP_ALGS "\r\nDPoP-Nonce: ";

/* The scheme of the original request: X-Forwarded-Proto when the proxy sent
 * exactly one (http or https), else the resource identifier's. */
static tk_slice original_scheme(const tk_http_request *h, const tk_resource *res)
{
    tk_slice v = TK_SLICE_NULL;
    for (size_t i = 0; i < h->nheaders; i++) {
        if (h->headers[i].name.len == 17 &&
            tk_slice_eq_nocase(h->headers[i].name, "x-forwarded-proto")) {
            if (v.p != NULL) {
                return TK_SLICE_NULL; /* repeated: ambiguous */
            }
            v = h->headers[i].value;
        }
    }
    if (v.p != NULL) {
        return tk_slice_eq_nocase(v, "https")  ? TK_SLICE_LIT("https")
               : tk_slice_eq_nocase(v, "http") ? TK_SLICE_LIT("http")
                                               : TK_SLICE_NULL;
    }
    return res->id.len >= 5 && tk_slice_eq_nocase((tk_slice){res->id.p, 5}, "http:")
               ? TK_SLICE_LIT("http")
               : TK_SLICE_LIT("https");
}

/* The proof of the request (DPoP header) for this token: the original
 * method and URL, ath the token's hash, the key the token's cnf.jkt. Its
 * jti is remembered by dpop_record once everything else allowed the
 * request. */
static int dpop_ok(ep_req *r, const orig *o, const tk_resource *res, const uint8_t hash[32],
                   const tk_token_rec *t, ep_dpop_proof *p)
{
    ep_worker *w = r->w;
    tk_slice proof;
    ep_dpop_want want = {.htm = o->method,
                         .ath = hash,
                         .now = w->now,
                         .nonces = w->app->cfg.dpop_nonce ? w->app->dpop_seen : NULL};
    want.url.scheme = original_scheme(r->http, res);
    if (ep_dpop_header(r->http, &proof) != 0 || want.url.scheme.p == NULL) {
        tk_log_debug("dpop_refused", "endpoint=auth why=no_single_proof_or_scheme");
        return EP_DPOP_MALFORMED;
    }
    want.url.host = o->vhost;
    if (want.url.host.port == (tk_slice_eq(want.url.scheme, TK_SLICE_LIT("https")) ? 443 : 80)) {
        want.url.host.port = 0;
    }
    size_t q = 0;
    while (q < o->uri.len && o->uri.p[q] != '?' && o->uri.p[q] != '#') {
        q++;
    }
    want.url.path = q > 0 ? (tk_slice){o->uri.p, q} : TK_SLICE_LIT("/");
    const char *why = NULL;
    int rc = ep_dpop_check(proof, &want, p, &why);
    if (rc == EP_DPOP_OK && !tk_ct_equal(p->jkt, t->jkt, TK_HASH_LEN)) {
        why = "the proof's key is not the token's (cnf.jkt)";
        rc = EP_DPOP_BAD_KEY;
    }
    if (rc != EP_DPOP_OK) {
        tk_log_debug("dpop_refused", "endpoint=auth why=\"%s\"", why);
    }
    return rc;
}

/* Remember the proof's jti (RFC 9449 §11.1) only for a request that is
 * otherwise allowed (token, key, certificate, audience, scope): a request
 * refused anyway never takes a slot of the process-wide cache. */
static int dpop_record(ep_worker *w, const ep_dpop_proof *p)
{
    int rc = ep_dpop_remember(w->app->dpop_seen, p->jti, p->until, w->now);
    if (rc != EP_DPOP_OK) {
        tk_log_debug("dpop_refused", "endpoint=auth why=\"%s\"",
                     rc == EP_DPOP_REPLAY ? "jti replayed" : "replay cache full");
    }
    return rc;
}

/* 401 use_dpop_nonce with the nonce to use (RFC 9449 §9). */
static void use_nonce(ep_req *r)
{
    char hdr[sizeof dpop_use_nonce + EP_DPOP_NONCE_LEN + 2];
    size_t n = sizeof dpop_use_nonce - 1;
    memcpy(hdr, dpop_use_nonce, n);
    ep_dpop_nonce(r->w->app->dpop_seen, r->w->now, hdr + n);
    memcpy(hdr + n + EP_DPOP_NONCE_LEN, "\r\n", 3);
    challenge(r, 401, hdr, EP_FA_INVALID_DPOP_PROOF);
}

static void decide(ep_req *r, const orig *o, const tk_resource *res)
{
    ep_worker *w = r->w;
    tk_slice tok;
    int b = bearer(r->http, &tok);
    bool dpop = false;
    if (b > 0 && r->http->authorization.len > 0) { /* another scheme: DPoP? */
        int d = tk_http_dpop(r->http->authorization, &tok);
        dpop = d == 0 && tok.len <= TK_TOKEN_IN_MAX;
        b = dpop ? 0 : d == TK_E_NOTFOUND ? 1 : -1;
    }
    if (b != 0) {
        challenge(r, 401, b > 0 ? res->challenge_missing : res->challenge_invalid,
                  b > 0 ? EP_FA_NO_TOKEN : EP_FA_INVALID_TOKEN);
        return;
    }
    if (TK_UNLIKELY(w->app->cfg.cluster != NULL) &&
        !ep_cluster_fresh(r, &w->m.cluster_stale_forward_auth)) {
        count(w, EP_FA_UNAVAILABLE);
        return;
    }
    tk_txn *txn = ep_txn(w);
    tk_introspection in;
    uint8_t hash[TK_HASH_LEN];
    ep_token_hash(w, tok.p, tok.len, hash); /* hashed once per batch hint */
    int rc =
        txn == NULL ? TK_E_STORE : tk_core_introspect_bearer(txn, &w->app->core, hash, w->now, &in);
    if (rc != 0) {
        tk_log_error("store_read", "endpoint=auth err=%s", tk_strerror(rc));
        count(w, EP_FA_UNAVAILABLE);
        ep_reply_unavailable(r);
        return;
    }
    if (!in.active) { /* refresh tokens are never bearer credentials (core) */
        challenge(r, 401, dpop ? dpop_invalid_token : res->challenge_invalid, EP_FA_INVALID_TOKEN);
        return;
    }
    if (in.tok.has_jkt != dpop) { /* RFC 9449 §7.1/§7.2: bound ⇔ the DPoP scheme */
        challenge(r, 401, dpop_invalid_token, EP_FA_INVALID_TOKEN);
        return;
    }
    ep_dpop_proof proof;
    int prc = dpop ? dpop_ok(r, o, res, hash, &in.tok, &proof) : EP_DPOP_OK;
    if (prc != EP_DPOP_OK) {
        if (prc == EP_DPOP_USE_NONCE) {
            use_nonce(r);
        } else {
            challenge(r, 401, dpop_invalid_proof, EP_FA_INVALID_DPOP_PROOF);
        }
        return;
    }
    if (TK_UNLIKELY(in.tok.has_cnf) && !holder_of(r, in.tok.cnf_x5t)) {
        ep_audit_record(w, in.tok.client_id, res, false);
        challenge(r, 401, res->challenge_invalid, EP_FA_INVALID_TOKEN);
        return;
    }
    if (!tk_core_audience_includes(in.tok.aud, res->id)) {
        ep_audit_record(w, in.tok.client_id, res, false);
        challenge(r, 401, res->challenge_invalid, EP_FA_WRONG_AUDIENCE);
        return;
    }
    const tk_scope_rule *rule = tk_resource_rule(res, o->method);
    if (rule != NULL && !tk_core_scope_subset(rule->scope, in.tok.scope)) {
        ep_audit_record(w, in.tok.client_id, res, false);
        challenge(r, 403, rule->challenge, EP_FA_INSUFFICIENT_SCOPE);
        return;
    }
    if (dpop && dpop_record(w, &proof) != EP_DPOP_OK) {
        challenge(r, 401, dpop_invalid_proof, EP_FA_INVALID_DPOP_PROOF);
        return;
    }
    ep_audit_record(w, in.tok.client_id, res, true);
    count(w, EP_FA_ALLOWED);
    identity(r, res, &in);
}

void ep_forward_auth(ep_req *r)
{
    ep_worker *w = r->w;
    orig o;
    if (original(r, w->res, &o) != 0) {
        count(w, EP_FA_BAD_REQUEST);
        ep_reply_error(r, 400, "invalid_request", NULL);
        return;
    }
    const tk_resource *res = tk_resources_match(w->res, &o.vhost, o.path);
    if (res != tk_resources_match_nocase(w->res, &o.vhost, o.path)) {
        /* "/ADMIN/x" beside a resource at "/admin": a case-insensitive
         * upstream routes it there, so its exact match cannot decide. */
        tk_log_debug("forward_auth_refused", "why=path_case_ambiguous");
        count(w, EP_FA_BAD_REQUEST);
        ep_reply_error(r, 400, "invalid_request", NULL);
        return;
    }
    if (res == NULL) {
        count(w, EP_FA_UNKNOWN_RESOURCE);
        ep_reply_error(r, 403, "unknown_resource", NULL);
        return;
    }
    decide(r, &o, res);
}
