/*
 * libFuzzer target for the /token form parser: every answer is a known RFC
 * code with a clean description, and an accepted request carries what its
 * grant type requires, in the syntax it was checked for.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/oauth_pkce.h"
#include "tokend/oauth_cimd.h"
#include "tokend/oauth_request.h"
#include "tokend/oauth_uri.h"

#include <stdlib.h>
#include <string.h>

/* An id of at most TK_ID_MAX, or a Client ID Metadata Document URL of at
 * most TK_CIMD_URL_MAX (oauth_cimd.h): nothing longer passes. */
static bool client_id_ok(const char *id)
{
    tk_slice s = tk_slice_from_str(id);
    return tk_oauth_vschar_valid(s, TK_ID_MAX) ||
           (tk_oauth_cimd_candidate(s) && tk_oauth_vschar_valid(s, TK_CIMD_URL_MAX));
}

static void check_desc(const tk_oauth_err *e)
{
    EXPECT(e->description != NULL && e->description[0] != '\0');
    for (const char *p = e->description; *p != '\0'; p++) {
        EXPECT(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
    }
}

static void check_accepted(const tk_oauth_token_req *t)
{
    switch (t->grant) {
    case TK_OAUTH_GRANT_AUTHORIZATION_CODE:
        EXPECT(t->code_len > 0 && t->code_len <= TK_TOKEN_IN_MAX);
        EXPECT(tk_oauth_pkce_verifier_valid(tk_slice_from_str(t->code_verifier)));
        EXPECT(!t->has_scope);
        break;
    case TK_OAUTH_GRANT_REFRESH_TOKEN:
        EXPECT(t->refresh_token_len > 0 && t->refresh_token_len <= TK_TOKEN_IN_MAX);
        break;
    case TK_OAUTH_GRANT_TOKEN_EXCHANGE:
        EXPECT(t->subject_token_len > 0 && t->subject_token_len <= TK_TOKEN_IN_MAX);
        EXPECT(t->has_actor_token == (t->actor_token_len > 0));
        EXPECT(!t->has_audience ||
               tk_oauth_vschar_valid(tk_slice_from_str(t->audience), TK_AUD_MAX));
        break;
    default:
        tk_assert_fail("a known grant", __FILE__, __LINE__);
    }
    EXPECT(!t->has_client_id || client_id_ok(t->client_id));
    EXPECT(!t->has_scope || tk_oauth_scope_valid(tk_slice_from_str(t->scope)));
    EXPECT(!t->has_resource || tk_oauth_resource_check(tk_slice_from_str(t->resource), NULL) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    static tk_oauth_token_req t;
    tk_oauth_err e = {0};
    int rc = tk_oauth_token_parse(copy, size, &t, &e);
    free(copy);
    if (rc == 0) {
        check_accepted(&t);
        return 0;
    }
    EXPECT(rc == TK_E_INVALID);
    check_desc(&e);
    EXPECT(e.code == TK_OAUTH_INVALID_REQUEST || e.code == TK_OAUTH_INVALID_SCOPE ||
           e.code == TK_OAUTH_INVALID_TARGET || e.code == TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
    return 0;
}
