/*
 * libFuzzer target for RFC 7591 registration documents. Besides the
 * sanitizers it checks the parser's contract: a refusal is one of the two
 * registration errors with a clean description and a zeroed struct; an
 * accepted registration obeys every rule of oauth_register.h, its 201
 * answer fits one response and is valid JSON, and that answer read back as
 * a registration registers the same client.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/json.h"
#include "tokend/oauth_register.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check_desc(const tk_oauth_err *e)
{
    EXPECT(e->description != NULL && e->description[0] != '\0');
    for (const char *p = e->description; *p != '\0'; p++) {
        EXPECT(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
    }
}

static void check_meta(const tk_oauth_client_meta *m)
{
    bool code = (m->grant_types & TK_OAUTH_GRANT_AUTHORIZATION_CODE) != 0;
    EXPECT(m->grant_types != 0 && (m->grant_types & ~TK_OAUTH_GRANTS_ALL) == 0);
    EXPECT(code == (m->response_types == TK_OAUTH_RESPONSE_CODE));
    EXPECT(code || m->response_types == 0);
    EXPECT((m->grant_types & TK_OAUTH_GRANT_REFRESH_TOKEN) == 0 || code);
    EXPECT(m->redirect_count <= TK_OAUTH_REDIRECTS_MAX && (!code || m->redirect_count > 0));
    EXPECT(m->auth_method <= TK_OAUTH_AUTH_CLIENT_SECRET_POST);
    EXPECT(m->name_untrusted);
    for (size_t i = 0; i < m->redirect_count; i++) {
        enum tk_oauth_redirect_kind kind;
        tk_slice u = tk_slice_from_str(m->redirect_uris[i]);
        EXPECT(tk_oauth_redirect_check(u, &kind, NULL) == 0);
        EXPECT(kind == m->redirect_kinds[i]);
        EXPECT(tk_oauth_redirect_allowed(kind, m->native));
        EXPECT(tk_oauth_redirect_match(u, u, m->native));
    }
    EXPECT(m->scope[0] == '\0' || tk_oauth_scope_valid(tk_slice_from_str(m->scope)));
    EXPECT(strlen(m->client_name) <= TK_NAME_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1); /* exact length: over-reads are caught */
    if (size > 0) {
        memcpy(copy, data, size);
    }
    static tk_oauth_client_meta m, again;
    tk_oauth_err e = {0};
    int rc = tk_oauth_register_parse(copy, size, &m, &e);
    free(copy);
    if (rc != 0) {
        static const tk_oauth_client_meta zero;
        EXPECT(rc == TK_E_INVALID);
        EXPECT(e.code == TK_OAUTH_INVALID_CLIENT_METADATA ||
               e.code == TK_OAUTH_INVALID_REDIRECT_URI);
        check_desc(&e);
        EXPECT(memcmp(&m, &zero, sizeof m) == 0);
        return 0;
    }
    check_meta(&m);
    static char buf[TK_RESPONSE_MAX - 1024];
    tk_oauth_client_issued iss = {.client_id = TK_SLICE_LIT("tkc_fuzz"),
                                  .issued_at = 1,
                                  .client_secret = m.auth_method == TK_OAUTH_AUTH_NONE
                                                       ? TK_SLICE_NULL
                                                       : TK_SLICE_LIT("tkd_cs_x")};
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    EXPECT(tk_oauth_register_answer(&j, &m, &iss) == 0);
    json_error_t je;
    json_t *root = json_loadb(buf, j.len, JSON_REJECT_DUPLICATES, &je);
    EXPECT(root != NULL && json_is_object(root));
    json_decref(root);
    EXPECT(tk_oauth_register_parse(buf, j.len, &again, &e) == 0);
    again.native_inferred = m.native_inferred; /* the echo names application_type */
    EXPECT(memcmp(&m, &again, sizeof m) == 0);
    return 0;
}
