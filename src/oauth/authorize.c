/*
 * The /authorize request (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3, and a
 * resource indicator, RFC 8707 §2.1). The order of the checks matters: the
 * client and its redirect URI come first, because until the endpoint has
 * verified both, an error may only be shown as a page, never redirected.
 */
#include "tokend/oauth_request.h"

#include "tokend/oauth_pkce.h"
#include "tokend/oauth_uri.h"

#include "oauth_int.h"

#include <string.h>

enum {
    A_RESPONSE_TYPE,
    A_CLIENT_ID,
    A_REDIRECT_URI,
    A_STATE,
    A_SCOPE,
    A_RESOURCE,
    A_CHALLENGE,
    A_METHOD,
    A_PROMPT,
    A_LOGIN_HINT,
    A_COUNT
};

#define FIELD(n, b) ((tk_form_field){.name = (n), .buf = (b), .cap = sizeof(b)})

/* Parameters that are only checked, not kept in the request. */
struct scratch {
    char response_type[TK_OAUTH_WORD_MAX + 1];
    char code_challenge[TK_OAUTH_VERIFIER_MAX + 1]; /* room for a plain one, to say why */
    char code_challenge_method[TK_OAUTH_WORD_MAX + 1];
    char prompt[TK_OAUTH_WORD_MAX + 1];
};

static int read_query(const char *q, size_t len, tk_oauth_authz_req *r, struct scratch *x,
                      tk_form_field *f, bool *resource_repeated, tk_oauth_err *err)
{
    f[A_RESPONSE_TYPE] = FIELD("response_type", x->response_type);
    f[A_CLIENT_ID] = FIELD("client_id", r->client_id);
    f[A_REDIRECT_URI] = FIELD("redirect_uri", r->redirect_uri);
    f[A_STATE] = FIELD("state", r->state);
    f[A_SCOPE] = FIELD("scope", r->scope);
    f[A_RESOURCE] = FIELD("resource", r->resource);
    f[A_CHALLENGE] = FIELD("code_challenge", x->code_challenge);
    f[A_METHOD] = FIELD("code_challenge_method", x->code_challenge_method);
    f[A_PROMPT] = FIELD("prompt", x->prompt);
    f[A_LOGIN_HINT] = FIELD("login_hint", r->login_hint);
    const bool target[A_COUNT] = {[A_RESOURCE] = true};
    return oauth_form_read(q, len, f, A_COUNT, target, resource_repeated, err);
}

static tk_slice val(const tk_form_field *f)
{
    return (tk_slice){f->buf, f->len};
}

/* prompt: a space-separated set of none, login, consent; none stands alone. */
static int parse_prompt(tk_slice s, unsigned *out, tk_oauth_err *err)
{
    static const char why[] = "prompt must be none, or login and/or consent";
    unsigned bits = 0;
    size_t i = 0;
    while (i <= s.len) {
        const char *sp = memchr(s.p + i, ' ', s.len - i);
        size_t end = sp != NULL ? (size_t)(sp - s.p) : s.len;
        tk_slice w = {s.p + i, end - i};
        unsigned bit = tk_slice_eq_str(w, "none")      ? TK_OAUTH_PROMPT_NONE
                       : tk_slice_eq_str(w, "login")   ? TK_OAUTH_PROMPT_LOGIN
                       : tk_slice_eq_str(w, "consent") ? TK_OAUTH_PROMPT_CONSENT
                                                       : 0;
        if (bit == 0) {
            return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST, why);
        }
        bits |= bit;
        i = end + 1;
    }
    if ((bits & TK_OAUTH_PROMPT_NONE) != 0 && bits != TK_OAUTH_PROMPT_NONE) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST, why);
    }
    *out = bits;
    return 0;
}

static int check_client(const tk_form_field *f, tk_oauth_authz_req *r, tk_oauth_err *err)
{
    if (!tk_oauth_vschar_valid(val(&f[A_CLIENT_ID]), TK_ID_MAX)) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST, "client_id is missing or malformed");
    }
    r->has_redirect_uri = f[A_REDIRECT_URI].present;
    tk_oauth_uri u;
    if (r->has_redirect_uri &&
        (tk_oauth_uri_parse(val(&f[A_REDIRECT_URI]), &u) != 0 || u.has_fragment)) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "redirect_uri must be an absolute URI without fragment");
    }
    r->redirectable = true;
    return 0;
}

static int check_pkce(const tk_form_field *f, tk_oauth_authz_req *r, tk_oauth_err *err)
{
    tk_slice method = val(&f[A_METHOD]);
    if (!f[A_CHALLENGE].present) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "code_challenge is required (PKCE with S256)");
    }
    if (!f[A_METHOD].present || tk_slice_eq_str(method, "plain")) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "code_challenge_method must be S256 (plain is refused)");
    }
    if (!tk_slice_eq_str(method, "S256")) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "transform algorithm not supported: use S256");
    }
    return tk_oauth_pkce_challenge_parse(val(&f[A_CHALLENGE]), r->challenge, err);
}

static int check_rest(const tk_form_field *f, bool resource_repeated, tk_oauth_authz_req *r,
                      tk_oauth_err *err)
{
    /* Known first, so that every redirected error can carry it. */
    r->has_state = tk_oauth_vschar_valid(val(&f[A_STATE]), TK_OAUTH_STATE_MAX);
    if (!f[A_RESPONSE_TYPE].present) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST, "response_type is required");
    }
    if (!tk_slice_eq_str(val(&f[A_RESPONSE_TYPE]), "code")) {
        return tk_oauth_refuse(err, TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE,
                               "response_type must be code");
    }
    if (f[A_STATE].present && !r->has_state) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "state must be 1 to 512 printable ASCII characters");
    }
    int rc = check_pkce(f, r, err);
    if (rc != 0) {
        return rc;
    }
    r->has_scope = f[A_SCOPE].len > 0;
    if (r->has_scope && !tk_oauth_scope_valid(val(&f[A_SCOPE]))) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_SCOPE,
                               "scope must be space-separated scope tokens (RFC 6749 3.3)");
    }
    if (resource_repeated) {
        return oauth_refuse_repeated_target(err);
    }
    r->has_resource = f[A_RESOURCE].present;
    rc = r->has_resource ? tk_oauth_resource_check(val(&f[A_RESOURCE]), err) : 0;
    if (rc != 0) {
        return rc;
    }
    rc = f[A_PROMPT].present ? parse_prompt(val(&f[A_PROMPT]), &r->prompt, err) : 0;
    if (rc != 0) {
        return rc;
    }
    /* A hint is matched against the trust file's domains and forwarded to
     * one IdP: printable ASCII only, so it needs no further care there. */
    r->has_login_hint = f[A_LOGIN_HINT].present;
    for (size_t i = 0; r->has_login_hint && i < f[A_LOGIN_HINT].len; i++) {
        unsigned char c = (unsigned char)r->login_hint[i];
        r->has_login_hint = c >= 0x20 && c <= 0x7e;
    }
    if (f[A_LOGIN_HINT].present && (!r->has_login_hint || f[A_LOGIN_HINT].len == 0)) {
        r->has_login_hint = false;
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "login_hint must be 1 to 256 printable ASCII characters");
    }
    return 0;
}

int tk_oauth_authz_parse(const char *query, size_t len, tk_oauth_authz_req *req, tk_oauth_err *err)
{
    TK_ASSERT(req != NULL && (query != NULL || len == 0));
    memset(req, 0, sizeof *req);
    tk_form_field f[A_COUNT];
    struct scratch x;
    bool resource_repeated;
    int rc = read_query(query, len, req, &x, f, &resource_repeated, err);
    rc = rc != 0 ? rc : check_client(f, req, err);
    rc = rc != 0 ? rc : check_rest(f, resource_repeated, req, err);
    TK_ASSERT(rc == 0 || rc == TK_E_INVALID);
    return rc;
}

_Static_assert(TK_OAUTH_STATE_MAX == 512, "the description above says 512");
_Static_assert(TK_LOGIN_HINT_MAX == 256, "the description above says 256");
