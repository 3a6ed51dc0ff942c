/*
 * The parameters of the two requests an agent sends the authorization
 * server: the /authorize query (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707)
 * and the /token form per grant type (RFC 6749 §4.1.3, §6, RFC 8693 §2.1).
 * The one idea: a parser fills a fixed, caller-owned struct through
 * tk_form_parse (duplicates refused) and returns the RFC's error code and a
 * static description for the first thing wrong, so an endpoint only looks
 * things up and decides.
 *
 * Resource indicators: RFC 8707 lets `resource` (and RFC 8693 `audience`)
 * repeat. tokend issues every token for one audience, so a request names at
 * most one resource (and one audience); a repeated one is refused with
 * invalid_target, every other repeated parameter with invalid_request
 * (RFC 6749 §3.1).
 *
 * Thread-safety: pure and reentrant. The structs are large (a few KiB):
 * keep them per connection or on a worker's stack, not per token.
 */
#ifndef TOKEND_OAUTH_REQUEST_H
#define TOKEND_OAUTH_REQUEST_H

#include "tokend/common.h"
#include "tokend/limits.h"
#include "tokend/oauth.h"

/* prompt values (OpenID Connect Core §3.1.2.1) as bits. */
#define TK_OAUTH_PROMPT_NONE    1u /* no page may be shown: fail instead */
#define TK_OAUTH_PROMPT_LOGIN   2u /* sign the user in again */
#define TK_OAUTH_PROMPT_CONSENT 4u /* show the consent page even with a grant */

/* The token type URN tokend accepts and issues in token exchange. */
#define TK_OAUTH_TOKEN_TYPE_ACCESS "urn:ietf:params:oauth:token-type:access_token"

/* An /authorize request. Strings are NUL-terminated and NUL-free; absent
 * ones are "" with their has_* flag false. */
typedef struct tk_oauth_authz_req {
    char client_id[TK_ID_MAX + 1];
    char redirect_uri[TK_OAUTH_URI_MAX + 1];
    bool has_redirect_uri;
    char state[TK_OAUTH_STATE_MAX + 1];
    bool has_state; /* present and valid: echo it in every redirect */
    char scope[TK_SCOPE_MAX + 1];
    bool has_scope; /* false also for scope= (empty: the resource's default) */
    char resource[TK_AUD_MAX + 1];
    bool has_resource;
    uint8_t challenge[TK_HASH_LEN]; /* the S256 code_challenge, decoded */
    unsigned prompt;                /* TK_OAUTH_PROMPT_* bits, 0 when absent */
    char login_hint[TK_LOGIN_HINT_MAX + 1];
    bool has_login_hint; /* OpenID Connect Core §3.1.2.1: routes the sign-in */
    /* True when client_id (and redirect_uri, when given) are well-formed,
     * so the endpoint may look the client up, select the redirect URI with
     * tk_oauth_redirect_select and, once both are verified, send an error
     * to it. When false, every error is an HTML page (RFC 6749 §4.1.2.1). */
    bool redirectable;
} tk_oauth_authz_req;

/*
 * Parse and check an /authorize query string (len bytes after the '?', not
 * NUL-terminated; POSTed forms are the same syntax). Order of checks:
 * the form itself (malformed, too long, repeated → invalid_request; a
 * repeated resource → invalid_target), client_id (1..TK_ID_MAX VSCHAR),
 * redirect_uri syntax (absolute, no fragment), response_type (missing →
 * invalid_request, not "code" → unsupported_response_type), state
 * (1..TK_OAUTH_STATE_MAX VSCHAR), PKCE (code_challenge required;
 * code_challenge_method required and S256 — absent or plain →
 * invalid_request; a challenge that is not 43 base64url characters →
 * invalid_request), scope syntax (invalid_scope), resource (absolute URI
 * without fragment → else invalid_target), prompt (space-separated none,
 * login, consent; none alone → else invalid_request), login_hint (1 to
 * TK_LOGIN_HINT_MAX printable ASCII characters, spaces included → else
 * invalid_request). nonce and other parameters are ignored.
 * Returns 0, or TK_E_INVALID with *err set; in both cases req->redirectable
 * says where an error may go, and the fields parsed so far are kept.
 */
int tk_oauth_authz_parse(const char *query, size_t len, tk_oauth_authz_req *req, tk_oauth_err *err);

/* A /token request. Strings are NUL-terminated; absent ones are "" with
 * has_* false. code, refresh_token, subject_token and actor_token are byte
 * strings that may hold any byte, NUL included: use them by length only (an
 * unknown value is the endpoint's invalid_grant). */
typedef struct tk_oauth_token_req {
    enum tk_oauth_grant grant;
    /* authorization_code */
    char code[TK_TOKEN_IN_MAX + 1];
    size_t code_len;
    char redirect_uri[TK_OAUTH_URI_MAX + 1]; /* compared with the code's, if sent */
    bool has_redirect_uri;
    char code_verifier[TK_OAUTH_VERIFIER_MAX + 1];
    char client_id[TK_ID_MAX + 1]; /* public clients identify themselves here */
    bool has_client_id;
    /* refresh_token */
    char refresh_token[TK_TOKEN_IN_MAX + 1];
    size_t refresh_token_len;
    /* token exchange (subject_token_type, actor_token_type and
     * requested_token_type can only be TK_OAUTH_TOKEN_TYPE_ACCESS) */
    char subject_token[TK_TOKEN_IN_MAX + 1];
    size_t subject_token_len;
    char actor_token[TK_TOKEN_IN_MAX + 1];
    size_t actor_token_len;
    bool has_actor_token;
    char audience[TK_AUD_MAX + 1];
    bool has_audience;
    /* every grant may narrow scope and resource (not authorization_code's
     * scope: the code carries it) */
    char scope[TK_SCOPE_MAX + 1];
    bool has_scope;
    char resource[TK_AUD_MAX + 1];
    bool has_resource;
} tk_oauth_token_req;

/*
 * Parse and check a /token form body (len bytes). Client authentication
 * (client_secret_basic / _post) is not looked at here. Order of checks:
 * the form (as for /authorize; a repeated resource or audience →
 * invalid_target), grant_type (missing → invalid_request; see
 * tk_oauth_grant_parse → unsupported_grant_type with the reason), then the
 * grant's parameters:
 *  - authorization_code: code and code_verifier required (invalid_request),
 *    code_verifier of RFC 7636 syntax (invalid_request), client_id VSCHAR;
 *  - refresh_token: refresh_token required (invalid_request);
 *  - token exchange: subject_token and subject_token_type required,
 *    subject_token_type, actor_token_type and requested_token_type must be
 *    TK_OAUTH_TOKEN_TYPE_ACCESS, actor_token_type present iff actor_token
 *    (all invalid_request, RFC 8693 §2.1); audience 1..TK_AUD_MAX VSCHAR
 *    (invalid_target);
 *  - every grant: scope syntax (invalid_scope; scope= counts as absent),
 *    resource an absolute URI without fragment (invalid_target).
 * Parameters of other grants are ignored. Returns 0, or TK_E_INVALID with
 * *err set.
 */
int tk_oauth_token_parse(const char *body, size_t len, tk_oauth_token_req *req, tk_oauth_err *err);

#endif
