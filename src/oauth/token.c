/*
 * The /token form (RFC 6749 §4.1.3 and §6, RFC 7636 §4.5, RFC 8693 §2.1,
 * RFC 8707 §2.2): one read of every parameter tokend knows, then the checks
 * of the grant type asked for. Client authentication is the endpoint's.
 */
#include "tokend/oauth_cimd.h"
#include "tokend/oauth_request.h"

#include "tokend/oauth_pkce.h"
#include "tokend/oauth_uri.h"

#include "oauth_int.h"

#include <string.h>

enum {
    T_GRANT_TYPE,
    T_CODE,
    T_REDIRECT_URI,
    T_VERIFIER,
    T_CLIENT_ID,
    T_REFRESH_TOKEN,
    T_SUBJECT_TOKEN,
    T_SUBJECT_TYPE,
    T_ACTOR_TOKEN,
    T_ACTOR_TYPE,
    T_REQUESTED_TYPE,
    T_AUDIENCE,
    T_SCOPE,
    T_RESOURCE,
    T_COUNT
};

#define FIELD(n, b) ((tk_form_field){.name = (n), .buf = (b), .cap = sizeof(b)})
#define TOKEN(n, b) ((tk_form_field){.name = (n), .buf = (b), .cap = sizeof(b), .binary = true})

/* Parameters that are only checked, not kept in the request. */
struct scratch {
    char grant_type[TK_OAUTH_WORD_MAX + 1];
    char subject_token_type[TK_OAUTH_WORD_MAX + 1];
    char actor_token_type[TK_OAUTH_WORD_MAX + 1];
    char requested_token_type[TK_OAUTH_WORD_MAX + 1];
};

static int read_form(const char *body, size_t len, tk_oauth_token_req *r, struct scratch *x,
                     tk_form_field *f, bool *target_repeated, tk_oauth_err *err)
{
    f[T_GRANT_TYPE] = FIELD("grant_type", x->grant_type);
    f[T_CODE] = TOKEN("code", r->code);
    f[T_REDIRECT_URI] = FIELD("redirect_uri", r->redirect_uri);
    f[T_VERIFIER] = FIELD("code_verifier", r->code_verifier);
    f[T_CLIENT_ID] = FIELD("client_id", r->client_id);
    f[T_REFRESH_TOKEN] = TOKEN("refresh_token", r->refresh_token);
    f[T_SUBJECT_TOKEN] = TOKEN("subject_token", r->subject_token);
    f[T_SUBJECT_TYPE] = FIELD("subject_token_type", x->subject_token_type);
    f[T_ACTOR_TOKEN] = TOKEN("actor_token", r->actor_token);
    f[T_ACTOR_TYPE] = FIELD("actor_token_type", x->actor_token_type);
    f[T_REQUESTED_TYPE] = FIELD("requested_token_type", x->requested_token_type);
    f[T_AUDIENCE] = FIELD("audience", r->audience);
    f[T_SCOPE] = FIELD("scope", r->scope);
    f[T_RESOURCE] = FIELD("resource", r->resource);
    const bool target[T_COUNT] = {[T_AUDIENCE] = true, [T_RESOURCE] = true};
    return oauth_form_read(body, len, f, T_COUNT, target, target_repeated, err);
}

static tk_slice val(const tk_form_field *f)
{
    return (tk_slice){f->buf, f->len};
}

static int missing(tk_oauth_err *err, const char *why)
{
    return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST, why);
}

static int check_code(const tk_form_field *f, tk_oauth_token_req *r, tk_oauth_err *err)
{
    if (f[T_CODE].len == 0) {
        return missing(err, "code is required");
    }
    if (!f[T_VERIFIER].present) {
        return missing(err, "code_verifier is required (PKCE)");
    }
    if (!tk_oauth_pkce_verifier_valid(val(&f[T_VERIFIER]))) {
        return missing(err, "code_verifier must be 43 to 128 unreserved characters");
    }
    r->code_len = f[T_CODE].len;
    r->has_redirect_uri = f[T_REDIRECT_URI].present;
    return 0;
}

static int check_refresh(const tk_form_field *f, tk_oauth_token_req *r, tk_oauth_err *err)
{
    if (f[T_REFRESH_TOKEN].len == 0) {
        return missing(err, "refresh_token is required");
    }
    r->refresh_token_len = f[T_REFRESH_TOKEN].len;
    return 0;
}

static bool access_type(const tk_form_field *f)
{
    return tk_slice_eq_str(val(f), TK_OAUTH_TOKEN_TYPE_ACCESS);
}

static int check_exchange(const tk_form_field *f, tk_oauth_token_req *r, tk_oauth_err *err)
{
    if (f[T_SUBJECT_TOKEN].len == 0 || !f[T_SUBJECT_TYPE].present) {
        return missing(err, "subject_token and subject_token_type are required (RFC 8693 2.1)");
    }
    if (!access_type(&f[T_SUBJECT_TYPE])) {
        return missing(err, "subject_token_type must be "
                            "urn:ietf:params:oauth:token-type:access_token");
    }
    r->has_actor_token = f[T_ACTOR_TOKEN].present;
    if (r->has_actor_token != f[T_ACTOR_TYPE].present ||
        (r->has_actor_token && f[T_ACTOR_TOKEN].len == 0)) {
        return missing(err, "actor_token_type is required with actor_token and only with it "
                            "(RFC 8693 2.1)");
    }
    if (r->has_actor_token && !access_type(&f[T_ACTOR_TYPE])) {
        return missing(err, "actor_token_type must be "
                            "urn:ietf:params:oauth:token-type:access_token");
    }
    if (f[T_REQUESTED_TYPE].present && !access_type(&f[T_REQUESTED_TYPE])) {
        return missing(err, "requested_token_type must be "
                            "urn:ietf:params:oauth:token-type:access_token");
    }
    r->has_audience = f[T_AUDIENCE].present;
    if (r->has_audience && !tk_oauth_vschar_valid(val(&f[T_AUDIENCE]), TK_AUD_MAX)) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_TARGET,
                               "audience must be 1 to 512 printable ASCII characters");
    }
    r->subject_token_len = f[T_SUBJECT_TOKEN].len;
    r->actor_token_len = f[T_ACTOR_TOKEN].len;
    return 0;
}

/* scope and resource, which every grant may narrow. */
static int check_targets(const tk_form_field *f, bool target_repeated, tk_oauth_token_req *r,
                         tk_oauth_err *err)
{
    /* The code carries the scope of an authorization_code request. */
    r->has_scope = f[T_SCOPE].len > 0 && r->grant != TK_OAUTH_GRANT_AUTHORIZATION_CODE;
    if (r->has_scope && !tk_oauth_scope_valid(val(&f[T_SCOPE]))) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_SCOPE,
                               "scope must be space-separated scope tokens (RFC 6749 3.3)");
    }
    if (target_repeated) {
        return oauth_refuse_repeated_target(err);
    }
    r->has_resource = f[T_RESOURCE].present;
    return r->has_resource ? tk_oauth_resource_check(val(&f[T_RESOURCE]), err) : 0;
}

static int check_grant(const tk_form_field *f, tk_oauth_token_req *r, tk_oauth_err *err)
{
    if (!f[T_GRANT_TYPE].present) {
        return missing(err, "grant_type is required");
    }
    enum tk_oauth_grant g;
    int rc = tk_oauth_grant_parse(val(&f[T_GRANT_TYPE]), TK_OAUTH_UNSUPPORTED_GRANT_TYPE, &g, err);
    if (rc != 0) {
        return rc;
    }
    r->grant = g;
    r->has_client_id = f[T_CLIENT_ID].present;
    tk_slice id = val(&f[T_CLIENT_ID]);
    bool url = tk_oauth_cimd_candidate(id);
    if (r->has_client_id && !tk_oauth_vschar_valid(id, url ? TK_CIMD_URL_MAX : TK_ID_MAX)) {
        return missing(err, "client_id is malformed");
    }
    return 0;
}

/* A client_id is longer than an id only as a Client ID Metadata Document
 * URL; any other is refused as the form reader always refused it. */
static int check_id_length(const tk_form_field *f, tk_oauth_err *err)
{
    tk_slice id = val(&f[T_CLIENT_ID]);
    if (f[T_CLIENT_ID].present && id.len > TK_ID_MAX && !tk_oauth_cimd_candidate(id)) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "a parameter is longer than its limit");
    }
    return 0;
}

int tk_oauth_token_parse(const char *body, size_t len, tk_oauth_token_req *req, tk_oauth_err *err)
{
    TK_ASSERT(req != NULL && (body != NULL || len == 0));
    memset(req, 0, sizeof *req);
    tk_form_field f[T_COUNT];
    struct scratch x;
    bool target_repeated;
    int rc = read_form(body, len, req, &x, f, &target_repeated, err);
    rc = rc != 0 ? rc : check_id_length(f, err);
    rc = rc != 0 ? rc : check_grant(f, req, err);
    if (rc == 0) {
        switch (req->grant) {
        case TK_OAUTH_GRANT_AUTHORIZATION_CODE:
            rc = check_code(f, req, err);
            break;
        case TK_OAUTH_GRANT_REFRESH_TOKEN:
            rc = check_refresh(f, req, err);
            break;
        case TK_OAUTH_GRANT_TOKEN_EXCHANGE:
            rc = check_exchange(f, req, err);
            break;
        }
    }
    rc = rc != 0 ? rc : check_targets(f, target_repeated, req, err);
    TK_ASSERT(rc == 0 || rc == TK_E_INVALID);
    return rc;
}

_Static_assert(TK_AUD_MAX == 512, "the description above says 512");
