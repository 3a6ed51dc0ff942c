/*
 * The authorization server's error vocabulary and the syntax checks of the
 * small values every request carries. Refusals carry static descriptions
 * only, so no input ever travels back to the client inside an error.
 */
#include "tokend/oauth.h"

static const char *const code_names[TK_OAUTH_CODE_COUNT] = {
    [TK_OAUTH_OK] = "",
    [TK_OAUTH_INVALID_REQUEST] = "invalid_request",
    [TK_OAUTH_INVALID_CLIENT] = "invalid_client",
    [TK_OAUTH_INVALID_GRANT] = "invalid_grant",
    [TK_OAUTH_UNAUTHORIZED_CLIENT] = "unauthorized_client",
    [TK_OAUTH_UNSUPPORTED_GRANT_TYPE] = "unsupported_grant_type",
    [TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE] = "unsupported_response_type",
    [TK_OAUTH_INVALID_SCOPE] = "invalid_scope",
    [TK_OAUTH_INVALID_TARGET] = "invalid_target",
    [TK_OAUTH_ACCESS_DENIED] = "access_denied",
    [TK_OAUTH_SERVER_ERROR] = "server_error",
    [TK_OAUTH_TEMPORARILY_UNAVAILABLE] = "temporarily_unavailable",
    [TK_OAUTH_LOGIN_REQUIRED] = "login_required",
    [TK_OAUTH_CONSENT_REQUIRED] = "consent_required",
    [TK_OAUTH_INTERACTION_REQUIRED] = "interaction_required",
    [TK_OAUTH_INVALID_REDIRECT_URI] = "invalid_redirect_uri",
    [TK_OAUTH_INVALID_CLIENT_METADATA] = "invalid_client_metadata",
};

const char *tk_oauth_code_name(enum tk_oauth_code code)
{
    TK_ASSERT((unsigned)code < TK_OAUTH_CODE_COUNT);
    return code_names[code];
}

int tk_oauth_refuse(tk_oauth_err *err, enum tk_oauth_code code, const char *description)
{
    TK_ASSERT(code != TK_OAUTH_OK && (unsigned)code < TK_OAUTH_CODE_COUNT);
    TK_ASSERT(description != NULL);
    if (err != NULL) {
        err->code = code;
        err->description = description;
    }
    return TK_E_INVALID;
}

/* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
static bool scope_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';
}

bool tk_oauth_scope_valid(tk_slice s)
{
    if (s.len == 0 || s.len > TK_SCOPE_MAX) {
        return false;
    }
    bool after_space = true; /* the string may not start with a space */
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == ' ') {
            if (after_space) {
                return false; /* leading or double space */
            }
            after_space = true;
        } else if (scope_char(c)) {
            after_space = false;
        } else {
            return false;
        }
    }
    return !after_space; /* no trailing space */
}

bool tk_oauth_vschar_valid(tk_slice s, size_t max)
{
    if (s.len == 0 || s.len > max) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

/* ---- Grant types ---------------------------------------------------------- */

static const struct {
    const char *name;
    enum tk_oauth_grant grant;
} grants[] = {
    {"authorization_code", TK_OAUTH_GRANT_AUTHORIZATION_CODE},
    {"refresh_token", TK_OAUTH_GRANT_REFRESH_TOKEN},
    {TK_OAUTH_GRANT_TOKEN_EXCHANGE_NAME, TK_OAUTH_GRANT_TOKEN_EXCHANGE},
};

int tk_oauth_grant_parse(tk_slice name, enum tk_oauth_code refusal, enum tk_oauth_grant *out,
                         tk_oauth_err *err)
{
    TK_ASSERT(out != NULL);
    for (size_t i = 0; i < TK_ARRAY_LEN(grants); i++) {
        if (tk_slice_eq_str(name, grants[i].name)) {
            *out = grants[i].grant;
            return 0;
        }
    }
    if (tk_slice_eq_str(name, "client_credentials")) {
        return tk_oauth_refuse(err, refusal,
                               "client_credentials is not offered: agents act for a person, "
                               "never as service accounts");
    }
    if (tk_slice_eq_str(name, "password")) {
        return tk_oauth_refuse(err, refusal,
                               "the password grant is not offered: it hands the user's "
                               "credentials to the client (RFC 9700 2.4)");
    }
    if (tk_slice_eq_str(name, "implicit")) {
        return tk_oauth_refuse(err, refusal,
                               "the implicit grant is not offered: tokens in the front "
                               "channel leak (RFC 9700 2.1.2)");
    }
    return tk_oauth_refuse(err, refusal,
                           "grant_type must be authorization_code, refresh_token or "
                           "urn:ietf:params:oauth:grant-type:token-exchange");
}

const char *tk_oauth_grant_name(enum tk_oauth_grant g)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(grants); i++) {
        if (grants[i].grant == g) {
            return grants[i].name;
        }
    }
    tk_assert_fail("g is a single known grant bit", __FILE__, __LINE__);
}

int tk_oauth_error_json(tk_json *j, const tk_oauth_err *err)
{
    TK_ASSERT(err != NULL && err->code != TK_OAUTH_OK && err->description != NULL);
    tk_json_obj_begin(j);
    tk_json_kv_cstr(j, "error", tk_oauth_code_name(err->code));
    tk_json_kv_cstr(j, "error_description", err->description);
    tk_json_obj_end(j);
    return tk_json_finish(j);
}
