/*
 * Dynamic client registration (RFC 7591): the metadata document a client
 * POSTs to /register, parsed into a fixed struct, and the 201 answer that
 * echoes every registered value. The one idea: the struct holds exactly
 * what tokend registers — defaults filled in, application_type inferred —
 * so the store keeps it and the answer echoes it without a second opinion.
 *
 * Thread-safety: reentrant. The parser uses jansson, whose allocations are
 * bounded by TK_OAUTH_REGISTER_BODY_MAX and freed before it returns.
 */
#ifndef TOKEND_OAUTH_REGISTER_H
#define TOKEND_OAUTH_REGISTER_H

#include "tokend/common.h"
#include "tokend/json.h"
#include "tokend/limits.h"
#include "tokend/oauth.h"
#include "tokend/oauth_uri.h"

/* token_endpoint_auth_method (RFC 7591 §2). */
enum tk_oauth_auth_method {
    TK_OAUTH_AUTH_NONE = 0,                /* public client: no secret, PKCE only */
    TK_OAUTH_AUTH_CLIENT_SECRET_BASIC = 1, /* the RFC's default */
    TK_OAUTH_AUTH_CLIENT_SECRET_POST = 2,
};

/* response_types bits (RFC 7591 §2): "code" is the only one offered. */
#define TK_OAUTH_RESPONSE_CODE 1u

/* What a client registered. Strings are NUL-terminated, NUL-free, and ""
 * when absent; every one was validated by tk_oauth_register_parse. */
typedef struct tk_oauth_client_meta {
    size_t redirect_count; /* 1..TK_OAUTH_REDIRECTS_MAX with authorization_code, else 0.. */
    char redirect_uris[TK_OAUTH_REDIRECTS_MAX][TK_OAUTH_URI_MAX + 1];
    enum tk_oauth_redirect_kind redirect_kinds[TK_OAUTH_REDIRECTS_MAX];
    enum tk_oauth_auth_method auth_method;
    unsigned grant_types;    /* enum tk_oauth_grant bits, never 0 */
    unsigned response_types; /* TK_OAUTH_RESPONSE_CODE iff authorization_code */
    bool native;             /* application_type native (else web) */
    bool native_inferred;    /* application_type was absent and was inferred */
    /* client_name is self-declared: always untrusted text, to be escaped and
     * shown as "self-declared". UTF-8, no control or bidi-override characters. */
    char client_name[TK_NAME_MAX + 1];
    bool name_untrusted; /* true for every registration through this parser */
    char scope[TK_SCOPE_MAX + 1];
    char software_id[TK_OAUTH_SOFTWARE_MAX + 1];
    char software_version[TK_OAUTH_SOFTWARE_MAX + 1];
    char client_uri[TK_OAUTH_URI_MAX + 1];
} tk_oauth_client_meta;

/*
 * Parse a registration document (RFC 7591 §2) of len bytes (not
 * NUL-terminated). Defaults: token_endpoint_auth_method client_secret_basic,
 * grant_types [authorization_code], response_types [code] when
 * authorization_code is a grant type and [] otherwise; application_type,
 * when absent, is native when every redirect URI is a native kind
 * (loopback http or private-use scheme) and web otherwise. Rules beyond the
 * member syntax: grant_types ⊆ {authorization_code, refresh_token,
 * token-exchange} (client_credentials refused because agents act for a
 * person, never as service accounts); response_types ⊆ {code};
 * authorization_code ⇔ code; refresh_token only with authorization_code;
 * redirect_uris required (1..TK_OAUTH_REDIRECTS_MAX, no repeats) with
 * authorization_code, each passing tk_oauth_redirect_check and allowed for
 * the application_type. Unknown members are ignored (RFC 7591 §2); a known
 * optional member that is JSON null counts as absent.
 * Returns 0 (*out filled), or TK_E_INVALID with *err = invalid_redirect_uri
 * or invalid_client_metadata and *out zeroed.
 */
int tk_oauth_register_parse(const char *body, size_t len, tk_oauth_client_meta *out,
                            tk_oauth_err *err);

/* The redirect URIs joined by single spaces (a client record's form) into
 * out, which must hold them (TK_CLIENT_REDIRECTS_MAX does); returns the
 * length, no NUL written. */
size_t tk_oauth_redirects_join(const tk_oauth_client_meta *m, char *out, size_t cap);

/* The wire name of an auth method ("none", "client_secret_basic", ...). */
const char *tk_oauth_auth_method_name(enum tk_oauth_auth_method m);

/* What the server chose for a new client (RFC 7591 §3.2.1). */
typedef struct tk_oauth_client_issued {
    tk_slice client_id;     /* e.g. "tkc_…" */
    int64_t issued_at;      /* client_id_issued_at, seconds since the epoch */
    tk_slice client_secret; /* TK_SLICE_NULL when no secret was issued */
} tk_oauth_client_issued;

/* Write the registered metadata as members of the object j is inside
 * (redirect_uris, token_endpoint_auth_method, grant_types, response_types,
 * application_type, and client_name, scope, software_id, software_version,
 * client_uri when present), so an endpoint can add members of its own. */
void tk_oauth_register_write_members(tk_json *j, const tk_oauth_client_meta *m);

/*
 * Write the whole 201 body (RFC 7591 §3.2.1) into j (freshly initialised by
 * the caller over its buffer): client_id, client_id_issued_at, then
 * client_secret and client_secret_expires_at (0: never) only when a secret
 * was issued, then every registered value including defaults.
 * Returns tk_json_finish(j): 0, or TK_E_TOOBIG when the buffer was small.
 */
int tk_oauth_register_answer(tk_json *j, const tk_oauth_client_meta *m,
                             const tk_oauth_client_issued *issued);

#endif
