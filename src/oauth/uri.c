/*
 * Absolute URIs (RFC 3986) as the authorization server needs them: split
 * strictly, classified as redirect targets, and compared the way RFC 9700
 * asks — exact strings, with the loopback port of a native client as the
 * only freedom (RFC 8252 §7.3).
 */
#include "tokend/oauth_uri.h"

#include <string.h>

/* ---- Splitting ------------------------------------------------------------ */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* unreserved, gen-delims and sub-delims of RFC 3986 §2, plus '%'. */
static bool uri_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != 0 && strchr("-._~:/?#[]@!$&'()*+,;=%", c));
}

/* Every byte is a URI character and every '%' starts a valid escape. */
static bool chars_ok(tk_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!uri_char(c)) {
            return false;
        }
        if (c == '%' && (i + 2 >= s.len || !is_hex((unsigned char)s.p[i + 1]) ||
                         !is_hex((unsigned char)s.p[i + 2]))) {
            return false;
        }
    }
    return true;
}

static tk_slice sub(tk_slice s, size_t from, size_t to)
{
    TK_ASSERT(from <= to && to <= s.len);
    return (tk_slice){s.p + from, to - from};
}

static size_t find(tk_slice s, char c)
{
    const char *hit = s.len > 0 ? memchr(s.p, c, s.len) : NULL;
    return hit != NULL ? (size_t)(hit - s.p) : s.len;
}

static bool has_char(tk_slice s, const char *set)
{
    for (size_t i = 0; i < s.len; i++) {
        if (strchr(set, s.p[i]) != NULL) {
            return true;
        }
    }
    return false;
}

/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ); returns its length
 * (the index of the ':'), or 0 when s does not start with one. */
static size_t scheme_len(tk_slice s)
{
    if (s.len == 0 || !is_alpha((unsigned char)s.p[0])) {
        return 0;
    }
    for (size_t i = 1; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == ':') {
            return i;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') {
            return 0;
        }
    }
    return 0;
}

static bool port_ok(tk_slice p)
{
    if (p.len == 0 || p.len > 5) {
        return false;
    }
    unsigned v = 0;
    for (size_t i = 0; i < p.len; i++) {
        if (!is_digit((unsigned char)p.p[i])) {
            return false;
        }
        v = v * 10 + (unsigned)(p.p[i] - '0');
    }
    return v <= 65535;
}

static bool reg_name_ok(tk_slice h)
{
    for (size_t i = 0; i < h.len; i++) {
        unsigned char c = (unsigned char)h.p[i];
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_') {
            return false;
        }
    }
    return true;
}

/* "[" hex / ":" / "." "]" with at least one ':' (no zone identifiers). */
static bool ip_literal_ok(tk_slice h)
{
    if (h.len < 4 || h.p[h.len - 1] != ']') {
        return false;
    }
    bool colon = false;
    for (size_t i = 1; i + 1 < h.len; i++) {
        unsigned char c = (unsigned char)h.p[i];
        colon = colon || c == ':';
        if (!is_hex(c) && c != ':' && c != '.') {
            return false;
        }
    }
    return colon;
}

/* authority = [ userinfo "@" ] host [ ":" port ] */
static int split_authority(tk_slice a, tk_oauth_uri *u)
{
    size_t at = find(a, '@');
    if (at < a.len) {
        u->has_userinfo = true;
        u->userinfo = sub(a, 0, at);
        a = sub(a, at + 1, a.len);
        if (has_char(u->userinfo, "[]") || find(a, '@') < a.len) {
            return TK_E_BADINPUT;
        }
    }
    size_t host_end = a.len > 0 && a.p[0] == '[' ? find(a, ']') + 1 : find(a, ':');
    if (host_end > a.len) {
        return TK_E_BADINPUT; /* '[' without ']' */
    }
    u->host = sub(a, 0, host_end);
    bool literal = u->host.len > 0 && u->host.p[0] == '[';
    if (literal ? !ip_literal_ok(u->host) : !reg_name_ok(u->host)) {
        return TK_E_BADINPUT;
    }
    if (host_end < a.len) {
        if (a.p[host_end] != ':') {
            return TK_E_BADINPUT;
        }
        u->has_port = true;
        u->port = sub(a, host_end + 1, a.len);
        if (!port_ok(u->port)) {
            return TK_E_BADINPUT;
        }
    }
    return 0;
}

int tk_oauth_uri_parse(tk_slice s, tk_oauth_uri *out)
{
    TK_ASSERT(out != NULL);
    *out = (tk_oauth_uri){0};
    if (s.len > TK_OAUTH_URI_MAX) {
        return TK_E_TOOBIG;
    }
    size_t colon = scheme_len(s);
    if (colon == 0 || !chars_ok(s)) {
        return TK_E_BADINPUT;
    }
    out->scheme = sub(s, 0, colon);
    tk_slice rest = sub(s, colon + 1, s.len);
    size_t hash = find(rest, '#');
    if (hash < rest.len) {
        out->has_fragment = true;
        out->fragment = sub(rest, hash + 1, rest.len);
        rest = sub(rest, 0, hash);
    }
    size_t q = find(rest, '?');
    if (q < rest.len) {
        out->has_query = true;
        out->query = sub(rest, q + 1, rest.len);
        rest = sub(rest, 0, q);
    }
    if (rest.len >= 2 && rest.p[0] == '/' && rest.p[1] == '/') {
        rest = sub(rest, 2, rest.len);
        size_t slash = find(rest, '/');
        out->has_authority = true;
        out->authority = sub(rest, 0, slash);
        rest = sub(rest, slash, rest.len);
        int rc = split_authority(out->authority, out);
        if (rc != 0) {
            return rc;
        }
    }
    out->path = rest;
    /* Brackets belong to the host alone; '#' may not repeat in a fragment. */
    if (has_char(out->path, "[]") || has_char(out->query, "[]#") ||
        has_char(out->fragment, "[]#")) {
        return TK_E_BADINPUT;
    }
    return 0;
}

/* ---- Redirect URIs -------------------------------------------------------- */

bool tk_oauth_uri_is_loopback(const tk_oauth_uri *u)
{
    TK_ASSERT(u != NULL);
    return u->has_authority && tk_slice_eq_nocase(u->scheme, "http") &&
           (tk_slice_eq_str(u->host, "127.0.0.1") || tk_slice_eq_str(u->host, "[::1]") ||
            tk_slice_eq_nocase(u->host, "localhost"));
}

static int bad_redirect(tk_oauth_err *err, const char *why)
{
    return tk_oauth_refuse(err, TK_OAUTH_INVALID_REDIRECT_URI, why);
}

int tk_oauth_redirect_check(tk_slice uri, enum tk_oauth_redirect_kind *kind_out, tk_oauth_err *err)
{
    tk_oauth_uri u;
    int rc = tk_oauth_uri_parse(uri, &u);
    if (rc == TK_E_TOOBIG) {
        return bad_redirect(err, "a redirect URI is longer than 512 bytes");
    }
    if (rc != 0) {
        return bad_redirect(err, "a redirect URI is not an absolute URI");
    }
    if (u.has_fragment) {
        return bad_redirect(err, "a redirect URI must not have a fragment (RFC 6749 3.1.2)");
    }
    if (u.has_userinfo) {
        return bad_redirect(err, "a redirect URI must not carry user information");
    }
    enum tk_oauth_redirect_kind kind;
    if (tk_slice_eq_nocase(u.scheme, "https")) {
        if (!u.has_authority || u.host.len == 0) {
            return bad_redirect(err, "an https redirect URI needs a host");
        }
        kind = TK_OAUTH_REDIRECT_HTTPS;
    } else if (tk_slice_eq_nocase(u.scheme, "http")) {
        if (!tk_oauth_uri_is_loopback(&u)) {
            return bad_redirect(err, "http redirect URIs are allowed only on a loopback host "
                                     "(127.0.0.1, [::1] or localhost), RFC 8252 7.3");
        }
        kind = TK_OAUTH_REDIRECT_LOOPBACK;
    } else if (memchr(u.scheme.p, '.', u.scheme.len) != NULL) {
        kind = TK_OAUTH_REDIRECT_PRIVATE;
    } else {
        return bad_redirect(err, "a redirect URI must use https, loopback http or a "
                                 "reverse-DNS private-use scheme (RFC 8252 7.1)");
    }
    if (kind_out != NULL) {
        *kind_out = kind;
    }
    return 0;
}

bool tk_oauth_redirect_allowed(enum tk_oauth_redirect_kind kind, bool native)
{
    return kind == TK_OAUTH_REDIRECT_HTTPS || native;
}

/* Everything of a parsed loopback URI but its port: scheme://host and the
 * part after the authority (path and query; no fragment). */
static bool same_but_port(tk_slice a, const tk_oauth_uri *ua, tk_slice b, const tk_oauth_uri *ub)
{
    size_t ha = (size_t)(ua->host.p + ua->host.len - a.p);
    size_t hb = (size_t)(ub->host.p + ub->host.len - b.p);
    size_t ta = (size_t)(ua->authority.p + ua->authority.len - a.p);
    size_t tb = (size_t)(ub->authority.p + ub->authority.len - b.p);
    return ha == hb && memcmp(a.p, b.p, ha) == 0 && a.len - ta == b.len - tb &&
           memcmp(a.p + ta, b.p + tb, a.len - ta) == 0;
}

bool tk_oauth_redirect_match(tk_slice registered, tk_slice requested, bool native)
{
    if (requested.p == NULL || registered.p == NULL) {
        return false;
    }
    tk_oauth_uri ur, uq;
    if (tk_oauth_uri_parse(requested, &uq) != 0 || uq.has_fragment || uq.has_userinfo) {
        return false;
    }
    if (tk_slice_eq(registered, requested)) {
        return true;
    }
    if (!native || tk_oauth_uri_parse(registered, &ur) != 0 || ur.has_fragment || ur.has_userinfo) {
        return false;
    }
    return tk_oauth_uri_is_loopback(&ur) && tk_oauth_uri_is_loopback(&uq) &&
           same_but_port(registered, &ur, requested, &uq);
}

int tk_oauth_redirect_select(const tk_slice *registered, size_t n, bool native, tk_slice requested,
                             tk_slice *out, tk_oauth_err *err)
{
    TK_ASSERT(out != NULL && (registered != NULL || n == 0));
    *out = TK_SLICE_NULL;
    if (requested.p == NULL) {
        if (n != 1) {
            return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                                   "redirect_uri is required when a client registered "
                                   "more than one");
        }
        *out = registered[0];
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (tk_oauth_redirect_match(registered[i], requested, native)) {
            *out = requested;
            return 0;
        }
    }
    return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                           "redirect_uri does not match a registered redirect URI");
}

/* ---- Resource indicators -------------------------------------------------- */

int tk_oauth_resource_check(tk_slice resource, tk_oauth_err *err)
{
    tk_oauth_uri u;
    int rc = resource.len > TK_AUD_MAX ? TK_E_TOOBIG : tk_oauth_uri_parse(resource, &u);
    if (rc == TK_E_TOOBIG) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_TARGET, "resource is longer than 512 bytes");
    }
    if (rc != 0) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_TARGET,
                               "resource must be an absolute URI (RFC 8707 2)");
    }
    if (u.has_fragment) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_TARGET,
                               "resource must not have a fragment (RFC 8707 2)");
    }
    return 0;
}

_Static_assert(TK_OAUTH_URI_MAX == 512 && TK_AUD_MAX == 512, "the descriptions above say 512");
