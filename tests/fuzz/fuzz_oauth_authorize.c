/*
 * libFuzzer target for the /authorize query parser: every answer is a
 * known RFC code with a clean description; an error is redirectable only
 * when client_id and redirect_uri are well-formed; an accepted request
 * holds only values that pass the checks they were parsed with.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/form.h"
#include "tokend/oauth_request.h"
#include "tokend/oauth_uri.h"

#include <stdlib.h>
#include <string.h>

static void check_desc(const tk_oauth_err *e)
{
    EXPECT(e->description != NULL && e->description[0] != '\0');
    for (const char *p = e->description; *p != '\0'; p++) {
        EXPECT(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
    }
}

static void check_accepted(const tk_oauth_authz_req *r)
{
    EXPECT(r->redirectable);
    EXPECT(tk_oauth_vschar_valid(tk_slice_from_str(r->client_id), TK_ID_MAX));
    tk_slice ru = tk_slice_from_str(r->redirect_uri);
    EXPECT(r->has_redirect_uri || ru.len == 0);
    if (r->has_redirect_uri) {
        tk_oauth_uri u;
        EXPECT(tk_oauth_uri_parse(ru, &u) == 0 && !u.has_fragment);
        tk_slice out;
        /* the request's URI, registered as it is, is selected as it is */
        bool self = tk_oauth_redirect_select(&ru, 1, false, ru, &out, NULL) == 0;
        EXPECT(self == !u.has_userinfo);
    }
    EXPECT(!r->has_state || tk_oauth_vschar_valid(tk_slice_from_str(r->state), TK_OAUTH_STATE_MAX));
    EXPECT(!r->has_scope || tk_oauth_scope_valid(tk_slice_from_str(r->scope)));
    EXPECT(!r->has_resource || tk_oauth_resource_check(tk_slice_from_str(r->resource), NULL) == 0);
    EXPECT((r->prompt & ~7u) == 0);
    EXPECT((r->prompt & TK_OAUTH_PROMPT_NONE) == 0 || r->prompt == TK_OAUTH_PROMPT_NONE);
    /* login_hint: forwarded to an IdP as it is, so printable ASCII only */
    size_t hl = strlen(r->login_hint);
    EXPECT(r->has_login_hint == (hl > 0) && hl <= TK_LOGIN_HINT_MAX);
    for (size_t i = 0; i < hl; i++) {
        EXPECT(r->login_hint[i] >= 0x20 && r->login_hint[i] <= 0x7e);
    }
}

/* The redirect we would send carries state back exactly as it came. */
static void check_url(const tk_oauth_authz_req *r, const tk_oauth_err *e)
{
    if (!r->has_redirect_uri) {
        return;
    }
    static char url[TK_OAUTH_URI_MAX + 3 * TK_OAUTH_STATE_MAX + 512];
    tk_slice ru = tk_slice_from_str(r->redirect_uri);
    tk_slice st = r->has_state ? tk_slice_from_str(r->state) : TK_SLICE_NULL;
    tk_slice iss = TK_SLICE_LIT("https://as.example");
    size_t len;
    int rc = e != NULL ? tk_oauth_authz_error_url(url, sizeof url, ru, e, st, iss, &len)
                       : tk_oauth_authz_success_url(url, sizeof url, ru, TK_SLICE_LIT("c"), st, iss,
                                                    &len);
    EXPECT(rc == 0 && len == strlen(url));
    EXPECT(strncmp(url, r->redirect_uri, ru.len) == 0);
    char back[TK_OAUTH_STATE_MAX + 1];
    tk_form_field f = {.name = "state", .buf = back, .cap = sizeof back};
    const char *q = strchr(url, '?');
    EXPECT(q != NULL);
    if (tk_form_parse(q + 1, strlen(q + 1), &f, 1) == 0) { /* the URI's own query may not be */
        EXPECT(f.present == r->has_state || strstr(r->redirect_uri, "state") != NULL);
        EXPECT(!r->has_state || strstr(r->redirect_uri, "state") != NULL ||
               strcmp(back, r->state) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    static tk_oauth_authz_req r;
    tk_oauth_err e = {0};
    int rc = tk_oauth_authz_parse(copy, size, &r, &e);
    free(copy);
    if (rc == 0) {
        check_accepted(&r);
        check_url(&r, NULL);
        return 0;
    }
    EXPECT(rc == TK_E_INVALID);
    check_desc(&e);
    EXPECT(e.code == TK_OAUTH_INVALID_REQUEST || e.code == TK_OAUTH_INVALID_SCOPE ||
           e.code == TK_OAUTH_INVALID_TARGET || e.code == TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE);
    if (r.redirectable) {
        EXPECT(tk_oauth_vschar_valid(tk_slice_from_str(r.client_id), TK_ID_MAX));
        /* every redirected error carries a valid state */
        EXPECT(r.has_state ==
               tk_oauth_vschar_valid(tk_slice_from_str(r.state), TK_OAUTH_STATE_MAX));
        check_url(&r, &e);
    } else {
        /* only the form and the client's own parameters make an error page */
        EXPECT(e.code == TK_OAUTH_INVALID_REQUEST || e.code == TK_OAUTH_INVALID_TARGET);
    }
    EXPECT(!r.has_state || tk_oauth_vschar_valid(tk_slice_from_str(r.state), TK_OAUTH_STATE_MAX));
    return 0;
}
