/*
 * The authorization server's shared vocabulary: the OAuth error codes its
 * building blocks answer with, and the syntax of the small values every
 * request carries (scope, state, client_id). The one idea: a refusal is a
 * value — an error code from the RFCs plus a static description that never
 * echoes the input — so the endpoint that writes it (JSON body, redirect or
 * HTML page) needs no escaping decisions and reveals nothing it was sent.
 *
 * Thread-safety: everything here is pure and reentrant.
 */
#ifndef TOKEND_OAUTH_H
#define TOKEND_OAUTH_H

#include "tokend/common.h"
#include "tokend/json.h"
#include "tokend/limits.h"

/* Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707 §2,
 * RFC 8693 §2.2.2 and OpenID Connect Core §3.1.2.6 (prompt=none). */
enum tk_oauth_code {
    TK_OAUTH_OK = 0,
    TK_OAUTH_INVALID_REQUEST,
    TK_OAUTH_INVALID_CLIENT,
    TK_OAUTH_INVALID_GRANT,
    TK_OAUTH_UNAUTHORIZED_CLIENT,
    TK_OAUTH_UNSUPPORTED_GRANT_TYPE,
    TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE,
    TK_OAUTH_INVALID_SCOPE,
    TK_OAUTH_INVALID_TARGET,
    TK_OAUTH_ACCESS_DENIED,
    TK_OAUTH_SERVER_ERROR,
    TK_OAUTH_TEMPORARILY_UNAVAILABLE,
    TK_OAUTH_LOGIN_REQUIRED,
    TK_OAUTH_CONSENT_REQUIRED,
    TK_OAUTH_INTERACTION_REQUIRED,
    TK_OAUTH_INVALID_REDIRECT_URI,
    TK_OAUTH_INVALID_CLIENT_METADATA,
    TK_OAUTH_CODE_COUNT
};

/* A refusal. description is a static string (never freed, never built from
 * input) whose characters are all allowed in error_description by RFC 6749
 * §4.1.2.1 (%x20-21 / %x23-5B / %x5D-7E: no '"', no '\\'), so it can go into
 * JSON, a query string (after percent-encoding) or HTML as it is. */
typedef struct tk_oauth_err {
    enum tk_oauth_code code;
    const char *description;
} tk_oauth_err;

/* The wire name of an error code ("invalid_request", ...); "" for
 * TK_OAUTH_OK. Never NULL; asserts code is in range. */
const char *tk_oauth_code_name(enum tk_oauth_code code);

/* Set *err (when err != NULL) and return TK_E_INVALID: the one way the
 * building blocks refuse, so a caller can write `return tk_oauth_refuse(…)`.
 * description must be a static string of the character set above. */
int tk_oauth_refuse(tk_oauth_err *err, enum tk_oauth_code code, const char *description);

/* True when s is scope syntax (RFC 6749 §3.3): one or more scope-tokens of
 * %x21 / %x23-5B / %x5D-7E separated by single spaces, no leading or
 * trailing space, at most TK_SCOPE_MAX bytes. */
bool tk_oauth_scope_valid(tk_slice s);

/* True when s is 1..max bytes of VSCHAR (%x20-7E, RFC 6749 Appendix A): the
 * syntax of state and client_id. */
bool tk_oauth_vschar_valid(tk_slice s, size_t max);

/* Grant types tokend offers (RFC 6749 §1.3, RFC 8693 §2.1), as bits so a
 * client's registered set is one word. */
enum tk_oauth_grant {
    TK_OAUTH_GRANT_AUTHORIZATION_CODE = 1u << 0,
    TK_OAUTH_GRANT_REFRESH_TOKEN = 1u << 1,
    TK_OAUTH_GRANT_TOKEN_EXCHANGE = 1u << 2,
};
#define TK_OAUTH_GRANTS_ALL 7u

/* The grant_type URI of token exchange (RFC 8693 §2.1). */
#define TK_OAUTH_GRANT_TOKEN_EXCHANGE_NAME "urn:ietf:params:oauth:grant-type:token-exchange"

/*
 * Look up a grant_type value. Refusals use the error code the caller names
 * (unsupported_grant_type at the token endpoint, invalid_client_metadata at
 * registration), with the reason: client_credentials because agents act for
 * a person, never as service accounts; password because it hands the
 * user's credentials to the client (RFC 9700 §2.4); implicit because
 * tokens in the front channel leak (RFC 9700 §2.1.2); anything else as not
 * supported. Returns 0 with *out set, or TK_E_INVALID with *err set.
 */
int tk_oauth_grant_parse(tk_slice name, enum tk_oauth_code refusal, enum tk_oauth_grant *out,
                         tk_oauth_err *err);

/* The wire name of one grant bit; asserts g is exactly one known bit. */
const char *tk_oauth_grant_name(enum tk_oauth_grant g);

/* Write a refusal as the JSON error object of RFC 6749 §5.2 and RFC 7591
 * §3.2.2 ({"error":…,"error_description":…}) into j, freshly initialised
 * over the caller's buffer. Returns tk_json_finish(j). */
int tk_oauth_error_json(tk_json *j, const tk_oauth_err *err);

#endif
