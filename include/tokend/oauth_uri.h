/*
 * URIs the authorization server is handed: redirect URIs (checked at
 * registration, matched at /authorize), resource indicators (RFC 8707) and
 * client_uri. The one idea: a redirect URI is compared as the exact string
 * the client registered (RFC 9700 §4.1.3); the only freedom is the port of a
 * native client's loopback redirect (RFC 8252 §7.3), and everything else —
 * scheme, host, path and query — must still match byte for byte.
 *
 * Thread-safety: everything here is pure and reentrant. Slices handed out
 * point into the caller's input and live as long as it does.
 */
#ifndef TOKEND_OAUTH_URI_H
#define TOKEND_OAUTH_URI_H

#include "tokend/common.h"
#include "tokend/limits.h"
#include "tokend/oauth.h"

/* An absolute URI split per RFC 3986 §3. Every slice points into the parsed
 * input; absent parts are empty with their has_* flag false. */
typedef struct tk_oauth_uri {
    tk_slice scheme;    /* without the ':' */
    tk_slice authority; /* after "//", up to the path; has_authority */
    tk_slice userinfo;  /* before '@' in the authority; has_userinfo */
    tk_slice host;      /* reg-name or IPv4, or an IP literal with its brackets */
    tk_slice port;      /* digits after ':'; has_port */
    tk_slice path;      /* may be empty */
    tk_slice query;     /* after '?'; has_query */
    tk_slice fragment;  /* after '#'; has_fragment */
    bool has_authority, has_userinfo, has_port, has_query, has_fragment;
} tk_oauth_uri;

/*
 * Split an absolute URI. Stricter than RFC 3986 where an authorization
 * server has no use for the freedom: ASCII only, every '%' starts a valid
 * escape, no character outside the RFC's sets (no space, '"', '<', '>',
 * '\\', '^', '`', '{', '|', '}', controls); a host is letters, digits,
 * '-', '.', '_' or a bracketed IPv6 literal of hex digits, ':' and '.'; a
 * port, when its ':' is there, is 1 to 5 digits up to 65535.
 * Returns 0, TK_E_BADINPUT (not an absolute URI of that syntax) or
 * TK_E_TOOBIG (longer than TK_OAUTH_URI_MAX bytes).
 */
int tk_oauth_uri_parse(tk_slice s, tk_oauth_uri *out);

/* True when u is a loopback redirect of a native client: scheme "http",
 * host "127.0.0.1", "[::1]" or "localhost" (any case; RFC 8252 §7.3
 * prefers the literals, but the MCP SDK registers localhost). */
bool tk_oauth_uri_is_loopback(const tk_oauth_uri *u);

/* What kind of redirect URI a registration holds. */
enum tk_oauth_redirect_kind {
    TK_OAUTH_REDIRECT_HTTPS = 1,    /* https: web and native clients */
    TK_OAUTH_REDIRECT_LOOPBACK = 2, /* http loopback: native only */
    TK_OAUTH_REDIRECT_PRIVATE = 3,  /* reverse-DNS private-use scheme: native only */
};

/*
 * Validate one redirect URI at registration (RFC 6749 §3.1.2, RFC 8252 §7,
 * RFC 9700 §4.1): absolute, no fragment, no userinfo, at most
 * TK_OAUTH_URI_MAX bytes; https with a host; or http on a loopback host; or
 * a private-use scheme with a '.' in it (RFC 8252 §7.1: reverse domain name,
 * e.g. com.example.app:/cb), which leaves out javascript:, data:, file: and
 * every other single-word scheme. *kind_out (may be NULL) receives the kind.
 * Whether the kind suits the client's application_type is the caller's
 * check (tk_oauth_redirect_allowed).
 * Returns 0 or TK_E_INVALID with *err = invalid_redirect_uri.
 */
int tk_oauth_redirect_check(tk_slice uri, enum tk_oauth_redirect_kind *kind_out, tk_oauth_err *err);

/* True when a redirect of this kind may be registered by a client of this
 * kind (native = application_type native): https always, loopback and
 * private-use only for native clients. */
bool tk_oauth_redirect_allowed(enum tk_oauth_redirect_kind kind, bool native);

/*
 * Match a redirect_uri from an authorization request against one
 * registered URI: exact byte equality, or — only when native is true and
 * both are http loopback URIs — equality of everything but the port
 * (RFC 8252 §7.3: the port may be absent in one, or differ). The host must
 * still be the same string: localhost does not match 127.0.0.1.
 * requested with a fragment or userinfo never matches.
 */
bool tk_oauth_redirect_match(tk_slice registered, tk_slice requested, bool native);

/*
 * Choose the redirect URI of an authorization request: with requested.p
 * non-NULL, the requested URI when it matches one of the n registered ones;
 * with requested.p NULL (redirect_uri absent), the only registered URI when
 * there is exactly one (RFC 6749 §3.1.2.3). *out points into requested or
 * into registered[i]. Until this succeeds, no error may be sent to any
 * redirect URI (RFC 6749 §4.1.2.1): it is an error page.
 * Returns 0 or TK_E_INVALID with *err = invalid_request.
 */
int tk_oauth_redirect_select(const tk_slice *registered, size_t n, bool native, tk_slice requested,
                             tk_slice *out, tk_oauth_err *err);

/*
 * Validate a resource indicator (RFC 8707 §2): an absolute URI, no
 * fragment, at most TK_AUD_MAX bytes. Whether tokend serves that resource
 * is the caller's check against the resources file (also invalid_target).
 * Returns 0 or TK_E_INVALID with *err = invalid_target.
 */
int tk_oauth_resource_check(tk_slice resource, tk_oauth_err *err);

/* ---- Building the redirect back to the client ------------------------------ */

/* A URL being built in a caller-owned buffer, the way tk_json builds a
 * document: overflow is sticky and checked once at the end. */
typedef struct tk_oauth_url {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
    bool has_query; /* the next parameter is joined with '&', else '?' */
} tk_oauth_url;

/* Start from the selected redirect URI (tk_oauth_redirect_select), whose
 * query is kept (RFC 6749 §3.1.2); it must have no fragment (asserted). */
void tk_oauth_url_init(tk_oauth_url *u, char *buf, size_t cap, tk_slice redirect_uri);

/* Append name=value, the value percent-encoded (every byte but the
 * unreserved ones of RFC 3986 §2.3); name must be unreserved characters. */
void tk_oauth_url_param(tk_oauth_url *u, const char *name, tk_slice value);

/* 0 when the URL fit (buf holds it NUL-terminated, u->len its length), or
 * TK_E_TOOBIG. */
int tk_oauth_url_finish(const tk_oauth_url *u);

/*
 * The two answers of /authorize (RFC 6749 §4.1.2 and §4.1.2.1, RFC 9207):
 * the redirect URI with code, state (when state.p != NULL) and iss; or with
 * error, error_description, state and iss. Written into buf (cap bytes,
 * NUL-terminated), *len_out its length. Returns 0 or TK_E_TOOBIG.
 */
int tk_oauth_authz_success_url(char *buf, size_t cap, tk_slice redirect_uri, tk_slice code,
                               tk_slice state, tk_slice iss, size_t *len_out);
int tk_oauth_authz_error_url(char *buf, size_t cap, tk_slice redirect_uri, const tk_oauth_err *err,
                             tk_slice state, tk_slice iss, size_t *len_out);

#endif
