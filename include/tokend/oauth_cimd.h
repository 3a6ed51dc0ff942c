/*
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-
 * document): a client that names itself by an https URL, whose document
 * (RFC 7591 client metadata, served at that URL) tokend fetches instead of
 * a registration. This header is the pure half (src/oauth/cimd.c): the
 * client_id URL rules, the document's rules, and the store key of such a
 * client. The fetch, the cache and the policy live in src/endpoints/cimd.c.
 *
 * The one idea: such a client is stored under a fixed-length key derived
 * from its URL ("tkm_" + base64url(SHA-256(URL)), TK_CIMD_KEY_LEN bytes), so
 * every op, code, grant and token names it by an ordinary client id; the
 * URL itself is kept in the client record and shown wherever a client_id
 * is shown. DCR and tokenctl ids are "tkc_…", so the two never collide.
 *
 * Thread-safety: reentrant. The document parser uses jansson, bounded by
 * TK_CIMD_DOC_MAX and freed before it returns.
 */
#ifndef TOKEND_OAUTH_CIMD_H
#define TOKEND_OAUTH_CIMD_H

#include "tokend/common.h"
#include "tokend/limits.h"
#include "tokend/oauth.h"
#include "tokend/oauth_register.h"

#define TK_CIMD_KEY_PREFIX "tkm_"

/* Whether a presented client_id is a URL (it starts with "http:" or
 * "https:", any case): such an id is never a registered client's, and is
 * either a valid metadata URL (tk_oauth_cimd_url_check) or refused. */
bool tk_oauth_cimd_candidate(tk_slice client_id);

/* Whether id is a metadata client's store key (the "tkm_" prefix). */
bool tk_oauth_cimd_is_key(tk_slice id);

/*
 * The client_id URL rules (draft §3): at most TK_CIMD_URL_MAX printable
 * ASCII bytes; scheme exactly "https"; a host; no userinfo; no fragment; a
 * path other than "" and "/"; no "." or ".." path segment (also written
 * with %2e). A query is allowed. Returns 0 with *host (a slice of url: a
 * name, an IPv4 address or a bracketed IPv6 literal), or TK_E_INVALID with
 * *why, a static sentence for an error page.
 */
int tk_oauth_cimd_url_check(tk_slice url, tk_slice *host, const char **why);

/* The store key of the client at url, NUL-terminated. */
void tk_oauth_cimd_key(tk_slice url, char out[TK_CIMD_KEY_LEN + 1]);

/* Whether a response's Content-Type is JSON: application/json or a
 * structured "+json" application type, parameters ignored. */
bool tk_oauth_cimd_json_type(tk_slice content_type);

/* Whether host (ASCII case-insensitive) is one of the space-separated names
 * of list (NULL or "" = none). */
bool tk_oauth_cimd_host_listed(tk_slice host, const char *list);

/*
 * Parse a fetched document of len bytes (not NUL-terminated) for the
 * client_id url. Rules beyond tk_oauth_register_parse's (which it applies:
 * redirect URIs, grant types, names, as for /register): at most
 * TK_CIMD_DOC_MAX bytes; one JSON object; a client_id member equal to url
 * byte for byte; no client_secret or client_secret_expires_at;
 * token_endpoint_auth_method absent or "none" (shared-secret methods are
 * refused, and so is private_key_jwt, which tokend does not verify yet).
 * The client is public: out->auth_method is TK_OAUTH_AUTH_NONE.
 * Returns 0, or TK_E_INVALID with *err (invalid_client_metadata or
 * invalid_redirect_uri, a static description) and *out zeroed.
 */
int tk_oauth_cimd_parse(const char *doc, size_t len, tk_slice url, tk_oauth_client_meta *out,
                        tk_oauth_err *err);

#endif
