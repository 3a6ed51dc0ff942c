/*
 * Unit tests for RFC 7591 registration: defaults, application_type
 * inference, every refusal (type errors, grant and response types,
 * client_credentials, redirect URI classes, sizes, duplicate members), and
 * the 201 answer — read back with jansson and parsed again as a
 * registration, which must give the same struct; and the redirect URIs
 * joined as a client record keeps them.
 */
#include "check.h"

#include "tokend/json.h"
#include "tokend/oauth_register.h"

#include <jansson.h>
#include <stdlib.h>

static tk_oauth_client_meta m;
static tk_oauth_err e;

static int reg(const char *doc)
{
    e = (tk_oauth_err){0};
    memset(&m, 0x5a, sizeof m); /* the parser must set every field itself */
    return tk_oauth_register_parse(doc, strlen(doc), &m, &e);
}

static void check_desc(void)
{
    CHECK(e.description != NULL && e.description[0] != '\0');
    for (const char *p = e.description; p != NULL && *p != '\0'; p++) {
        CHECK(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
    }
}

static bool zeroed(void)
{
    static const tk_oauth_client_meta zero;
    return memcmp(&m, &zero, sizeof m) == 0;
}

#define REFUSED(doc, want)                                                                         \
    do {                                                                                           \
        int rc_ = reg(doc);                                                                        \
        if (rc_ != TK_E_INVALID || e.code != (want)) {                                             \
            fprintf(stderr, "%s:%d: not refused as %s: %s\n", __FILE__, __LINE__, #want, doc);     \
        }                                                                                          \
        CHECK_EQ_INT(rc_, TK_E_INVALID);                                                           \
        CHECK_EQ_INT(e.code, want);                                                                \
        check_desc();                                                                              \
        CHECK(zeroed());                                                                           \
    } while (0)

#define META  TK_OAUTH_INVALID_CLIENT_METADATA
#define REDIR TK_OAUTH_INVALID_REDIRECT_URI

static void test_mcp_sdk_registration(void)
{
    /* what the MCP TypeScript SDK sends: no application_type, localhost */
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"http://localhost:33418/callback\"],"
                     "\"token_endpoint_auth_method\":\"none\","
                     "\"grant_types\":[\"authorization_code\",\"refresh_token\"],"
                     "\"response_types\":[\"code\"],\"client_name\":\"My MCP client\","
                     "\"client_uri\":\"https://example.com\",\"scope\":\"mcp:tools\"}"),
                 0);
    CHECK_EQ_INT(m.redirect_count, 1);
    CHECK_EQ_STR(m.redirect_uris[0], "http://localhost:33418/callback");
    CHECK_EQ_INT(m.redirect_kinds[0], TK_OAUTH_REDIRECT_LOOPBACK);
    CHECK_EQ_INT(m.auth_method, TK_OAUTH_AUTH_NONE);
    CHECK_EQ_INT(m.grant_types, TK_OAUTH_GRANT_AUTHORIZATION_CODE | TK_OAUTH_GRANT_REFRESH_TOKEN);
    CHECK_EQ_INT(m.response_types, TK_OAUTH_RESPONSE_CODE);
    CHECK(m.native && m.native_inferred);
    CHECK(m.name_untrusted);
    CHECK_EQ_STR(m.client_name, "My MCP client");
    CHECK_EQ_STR(m.client_uri, "https://example.com");
    CHECK_EQ_STR(m.scope, "mcp:tools");
    CHECK_EQ_STR(m.software_id, "");
    CHECK_EQ_STR(m.software_version, "");
}

static void test_defaults(void)
{
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://app.example/cb\"]}"), 0);
    CHECK_EQ_INT(m.auth_method, TK_OAUTH_AUTH_CLIENT_SECRET_BASIC);
    CHECK_EQ_INT(m.grant_types, TK_OAUTH_GRANT_AUTHORIZATION_CODE);
    CHECK_EQ_INT(m.response_types, TK_OAUTH_RESPONSE_CODE);
    CHECK(!m.native && m.native_inferred); /* an https redirect: web */
    CHECK_EQ_STR(m.client_name, "");
    CHECK_EQ_STR(m.scope, "");
    CHECK_EQ_STR(m.client_uri, "");
    CHECK(m.name_untrusted);

    /* null counts as absent for optional members; unknown members ignored */
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":null,"
                     "\"grant_types\":null,\"response_types\":null,\"scope\":null,"
                     "\"logo_uri\":\"javascript:x\",\"contacts\":[1,2],\"x\":{\"y\":[]},"
                     "\"jwks\":{\"keys\":[]},\"client_name#fr\":\"Agent\"}"),
                 0);
    CHECK_EQ_INT(m.grant_types, TK_OAUTH_GRANT_AUTHORIZATION_CODE);
    CHECK_EQ_STR(m.client_name, "");

    /* a sub-agent that only exchanges tokens needs no redirect URI */
    CHECK_EQ_INT(reg("{\"grant_types\":[\"urn:ietf:params:oauth:grant-type:token-exchange\"],"
                     "\"token_endpoint_auth_method\":\"client_secret_post\"}"),
                 0);
    CHECK_EQ_INT(m.grant_types, TK_OAUTH_GRANT_TOKEN_EXCHANGE);
    CHECK_EQ_INT(m.response_types, 0);
    CHECK_EQ_INT(m.redirect_count, 0);
    CHECK(!m.native);
    CHECK_EQ_INT(m.auth_method, TK_OAUTH_AUTH_CLIENT_SECRET_POST);
    CHECK_EQ_INT(reg("{\"grant_types\":[\"urn:ietf:params:oauth:grant-type:token-exchange\"],"
                     "\"response_types\":[]}"),
                 0);
    /* repeated entries in grant_types and response_types are harmless */
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":"
                     "[\"authorization_code\",\"authorization_code\"],"
                     "\"response_types\":[\"code\",\"code\"]}"),
                 0);
}

static void test_application_type(void)
{
    /* inferred native: every redirect a native kind */
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"http://127.0.0.1/cb\",\"http://[::1]/cb\","
                     "\"com.example.app:/cb\"]}"),
                 0);
    CHECK(m.native && m.native_inferred);
    CHECK_EQ_INT(m.redirect_count, 3);
    CHECK_EQ_INT(m.redirect_kinds[2], TK_OAUTH_REDIRECT_PRIVATE);
    /* explicit native may mix in https */
    CHECK_EQ_INT(reg("{\"application_type\":\"native\",\"redirect_uris\":"
                     "[\"http://localhost/cb\",\"https://a.example/cb\"]}"),
                 0);
    CHECK(m.native && !m.native_inferred);
    CHECK_EQ_INT(reg("{\"application_type\":\"web\",\"redirect_uris\":[\"https://a/cb\"]}"), 0);
    CHECK(!m.native && !m.native_inferred);
    /* inferred web when https and loopback mix: loopback refused */
    REFUSED("{\"redirect_uris\":[\"http://localhost/cb\",\"https://a.example/cb\"]}", REDIR);
    REFUSED("{\"application_type\":\"web\",\"redirect_uris\":[\"http://localhost/cb\"]}", REDIR);
    REFUSED("{\"application_type\":\"web\",\"redirect_uris\":[\"com.example.app:/cb\"]}", REDIR);
    REFUSED("{\"application_type\":\"browser\",\"redirect_uris\":[\"https://a/cb\"]}", META);
    REFUSED("{\"application_type\":1,\"redirect_uris\":[\"https://a/cb\"]}", META);
    REFUSED("{\"application_type\":\"Native\",\"redirect_uris\":[\"https://a/cb\"]}", META);
}

static void test_redirect_refusals(void)
{
    REFUSED("{}", REDIR); /* authorization_code by default needs a redirect */
    REFUSED("{\"redirect_uris\":[]}", REDIR);
    REFUSED("{\"redirect_uris\":null}", REDIR);
    REFUSED("{\"redirect_uris\":\"https://a/cb\"}", REDIR);
    REFUSED("{\"redirect_uris\":[1]}", REDIR);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\",null]}", REDIR);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\",\"https://a/cb\"]}", REDIR);
    const char *uris[] = {"https://a/cb#f",
                          "https://u@a/cb",
                          "http://a.example/cb",
                          "javascript:alert(1)",
                          "data:text/html,x",
                          "file:///x",
                          "/cb",
                          "",
                          "https://",
                          "http://127.0.0.1/cb#",
                          "https://a/c b",
                          "custom:/cb"};
    for (size_t i = 0; i < TK_ARRAY_LEN(uris); i++) {
        char doc[256];
        snprintf(doc, sizeof doc, "{\"application_type\":\"native\",\"redirect_uris\":[\"%s\"]}",
                 uris[i]);
        REFUSED(doc, REDIR);
    }
    /* a NUL inside a string (escaped) is refused by the JSON reader */
    REFUSED("{\"redirect_uris\":[\"https://a/cb\\u0000x\"]}", META);
    /* count: 8 pass, 9 are refused */
    char doc[2048];
    size_t n = (size_t)snprintf(doc, sizeof doc, "{\"redirect_uris\":[");
    for (int i = 0; i < TK_OAUTH_REDIRECTS_MAX + 1; i++) {
        n += (size_t)snprintf(doc + n, sizeof doc - n, "%s\"https://a/cb%d\"", i ? "," : "", i);
        if (i == TK_OAUTH_REDIRECTS_MAX - 1) {
            char ok[2100];
            snprintf(ok, sizeof ok, "%s]}", doc);
            CHECK_EQ_INT(reg(ok), 0);
            CHECK_EQ_INT(m.redirect_count, TK_OAUTH_REDIRECTS_MAX);
            CHECK_EQ_STR(m.redirect_uris[7], "https://a/cb7");
        }
    }
    snprintf(doc + n, sizeof doc - n, "]}");
    REFUSED(doc, REDIR);
    /* length: a 512-byte URI passes, 513 is refused */
    char uri[TK_OAUTH_URI_MAX + 2];
    memcpy(uri, "https://a/", 10);
    memset(uri + 10, 'p', sizeof uri - 10);
    uri[TK_OAUTH_URI_MAX] = '\0';
    char big[1024];
    snprintf(big, sizeof big, "{\"redirect_uris\":[\"%s\"]}", uri);
    CHECK_EQ_INT(reg(big), 0);
    uri[TK_OAUTH_URI_MAX] = 'p';
    uri[TK_OAUTH_URI_MAX + 1] = '\0';
    snprintf(big, sizeof big, "{\"redirect_uris\":[\"%s\"]}", uri);
    REFUSED(big, REDIR);
}

static void test_grant_refusals(void)
{
    /* client_credentials: refused with the reason */
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[\"client_credentials\"]}",
            META);
    CHECK(strstr(e.description, "agents act for a person, never as service accounts") != NULL);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":"
            "[\"authorization_code\",\"client_credentials\"]}",
            META);
    CHECK(strstr(e.description, "service accounts") != NULL);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[\"password\"]}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[\"implicit\"]}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":"
            "[\"urn:ietf:params:oauth:grant-type:jwt-bearer\"]}",
            META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[]}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":\"authorization_code\"}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[7]}", META);
    /* response types: code only, and consistent with the grants */
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"response_types\":[\"token\"]}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"response_types\":[\"code\",\"id_token\"]}",
            META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"response_types\":[]}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"response_types\":{}}", META);
    REFUSED("{\"grant_types\":[\"urn:ietf:params:oauth:grant-type:token-exchange\"],"
            "\"response_types\":[\"code\"]}",
            META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[\"refresh_token\"]}", META);
    /* auth methods */
    const char *methods[] = {"private_key_jwt", "client_secret_jwt", "tls_client_auth", "", "None"};
    for (size_t i = 0; i < TK_ARRAY_LEN(methods); i++) {
        char doc[256];
        snprintf(doc, sizeof doc,
                 "{\"redirect_uris\":[\"https://a/cb\"],\"token_endpoint_auth_method\":\"%s\"}",
                 methods[i]);
        REFUSED(doc, META);
    }
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"token_endpoint_auth_method\":[\"none\"]}",
            META);
    /* too many array entries */
    char doc[2048];
    size_t n = (size_t)snprintf(doc, sizeof doc,
                                "{\"redirect_uris\":[\"https://a/cb\"],"
                                "\"response_types\":[");
    for (int i = 0; i < 65; i++) {
        n += (size_t)snprintf(doc + n, sizeof doc - n, "%s\"code\"", i ? "," : "");
    }
    snprintf(doc + n, sizeof doc - n, "]}");
    REFUSED(doc, META);
}

static void test_text_members(void)
{
    /* client_name: any UTF-8 text, untrusted; markup is just text */
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a/cb\"],"
                     "\"client_name\":\"<img src=x onerror=alert(1)> \\u00e9\\u4e2d \\\"q\\\"\"}"),
                 0);
    CHECK_EQ_STR(m.client_name, "<img src=x onerror=alert(1)> \xc3\xa9\xe4\xb8\xad \"q\"");
    CHECK(m.name_untrusted);
    const char *bad_names[] = {"",          "a\\nb",     "a\\tb",     "a\\u007fb",
                               "a\\u0085b", "a\\u202eb", "a\\u2066b", "a\\u200fb",
                               "a\\u2028b", "a\\u061cb", "a\\u0001b"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_names); i++) {
        char doc[256];
        snprintf(doc, sizeof doc, "{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":\"%s\"}",
                 bad_names[i]);
        REFUSED(doc, META);
    }
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":5}", META);
    /* 128 bytes pass, 129 do not (counted in bytes: 64 two-byte characters pass) */
    char name[TK_NAME_MAX + 2], doc[512];
    memset(name, 'n', sizeof name);
    name[TK_NAME_MAX] = '\0';
    snprintf(doc, sizeof doc, "{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":\"%s\"}",
             name);
    CHECK_EQ_INT(reg(doc), 0);
    name[TK_NAME_MAX] = 'n';
    name[TK_NAME_MAX + 1] = '\0';
    snprintf(doc, sizeof doc, "{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":\"%s\"}",
             name);
    REFUSED(doc, META);

    /* scope */
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a/cb\"],\"scope\":\"read write\"}"), 0);
    CHECK_EQ_STR(m.scope, "read write");
    const char *bad_scopes[] = {"\"\"",       "\" read\"",  "\"read  write\"",
                                "\"a\\\\b\"", "[\"read\"]", "\"r\\u00e9\""};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_scopes); i++) {
        snprintf(doc, sizeof doc, "{\"redirect_uris\":[\"https://a/cb\"],\"scope\":%s}",
                 bad_scopes[i]);
        REFUSED(doc, META);
    }

    /* software_id / software_version */
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a/cb\"],\"software_id\":"
                     "\"4NRB1-0XZABZI9E6-5SM3R\",\"software_version\":\"2.1 beta\"}"),
                 0);
    CHECK_EQ_STR(m.software_id, "4NRB1-0XZABZI9E6-5SM3R");
    CHECK_EQ_STR(m.software_version, "2.1 beta");
    const char *bad_sw[] = {"\"\"", "\"a\\\"b\"", "\"a\\\\b\"", "\"\\u00e9\"", "\"a\\nb\"", "1"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_sw); i++) {
        snprintf(doc, sizeof doc, "{\"redirect_uris\":[\"https://a/cb\"],\"software_id\":%s}",
                 bad_sw[i]);
        REFUSED(doc, META);
        snprintf(doc, sizeof doc, "{\"redirect_uris\":[\"https://a/cb\"],\"software_version\":%s}",
                 bad_sw[i]);
        REFUSED(doc, META);
    }

    /* client_uri: https only */
    const char *bad_uri[] = {"http://a.example", "javascript:x", "https://", "https://u@a/",
                             "https://a/#x",     "a.example",    ""};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_uri); i++) {
        snprintf(doc, sizeof doc, "{\"redirect_uris\":[\"https://a/cb\"],\"client_uri\":\"%s\"}",
                 bad_uri[i]);
        REFUSED(doc, META);
    }
}

static void test_document_refusals(void)
{
    REFUSED("", META);
    REFUSED("[]", META);
    REFUSED("\"x\"", META);
    REFUSED("null", META);
    REFUSED("{", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"]} x", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"]}{}", META);
    /* a repeated member, known or not */
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"redirect_uris\":[\"https://b/cb\"]}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"x\":1,\"x\":2}", META);
    REFUSED("{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":\"\xff\"}", META);
    /* the size cap: a document just under it parses, one byte over does not */
    size_t cap = TK_OAUTH_REGISTER_BODY_MAX;
    char *doc = malloc(cap + 2);
    const char *head = "{\"redirect_uris\":[\"https://a/cb\"],\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(doc, head, hl);
    memset(doc + hl, 'x', cap - hl - 2);
    memcpy(doc + cap - 2, "\"}", 2);
    e = (tk_oauth_err){0};
    CHECK_EQ_INT(tk_oauth_register_parse(doc, cap, &m, &e), 0);
    memset(doc + hl, 'x', cap - hl - 1);
    memcpy(doc + cap - 1, "\"}", 2);
    CHECK_EQ_INT(tk_oauth_register_parse(doc, cap + 1, &m, &e), TK_E_INVALID);
    CHECK_EQ_INT(e.code, META);
    free(doc);
}

/* ---- The answer ------------------------------------------------------------ */

static json_t *answer(const tk_oauth_client_issued *iss, char *buf, size_t cap)
{
    tk_json j;
    tk_json_init(&j, buf, cap);
    CHECK_EQ_INT(tk_oauth_register_answer(&j, &m, iss), 0);
    json_error_t je;
    json_t *root = json_loadb(buf, j.len, JSON_REJECT_DUPLICATES, &je);
    CHECK(root != NULL);
    return root;
}

static void test_answer_public(void)
{
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"http://localhost:3000/cb\"],"
                     "\"token_endpoint_auth_method\":\"none\",\"client_name\":\"A \\\"b\\\"\"}"),
                 0);
    tk_oauth_client_issued iss = {.client_id = TK_SLICE_LIT("tkc_abc"), .issued_at = 1700000000};
    char buf[TK_RESPONSE_MAX];
    json_t *r = answer(&iss, buf, sizeof buf);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "client_id")), "tkc_abc");
    CHECK_EQ_INT(json_integer_value(json_object_get(r, "client_id_issued_at")), 1700000000);
    CHECK(json_object_get(r, "client_secret") == NULL);
    CHECK(json_object_get(r, "client_secret_expires_at") == NULL);
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(r, "redirect_uris"), 0)),
                 "http://localhost:3000/cb");
    CHECK_EQ_STR(json_string_value(json_object_get(r, "token_endpoint_auth_method")), "none");
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(r, "grant_types"), 0)),
                 "authorization_code");
    CHECK_EQ_INT(json_array_size(json_object_get(r, "grant_types")), 1);
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(r, "response_types"), 0)),
                 "code");
    CHECK_EQ_STR(json_string_value(json_object_get(r, "application_type")), "native");
    CHECK_EQ_STR(json_string_value(json_object_get(r, "client_name")), "A \"b\"");
    CHECK(json_object_get(r, "scope") == NULL);
    CHECK(json_object_get(r, "client_uri") == NULL);
    json_decref(r);
}

static void test_answer_confidential_round_trip(void)
{
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a.example/cb\",\"https://b.example/cb?x=1\"],"
                     "\"grant_types\":[\"refresh_token\",\"authorization_code\","
                     "\"urn:ietf:params:oauth:grant-type:token-exchange\"],"
                     "\"client_name\":\"\\u00e9t\\u00e9\",\"scope\":\"a b\",\"software_id\":\"s\","
                     "\"software_version\":\"1\",\"client_uri\":\"https://a.example/\"}"),
                 0);
    tk_oauth_client_meta first = m;
    tk_oauth_client_issued iss = {.client_id = TK_SLICE_LIT("tkc_x"),
                                  .issued_at = 5,
                                  .client_secret = TK_SLICE_LIT("tkd_cs_secret")};
    char buf[TK_RESPONSE_MAX];
    json_t *r = answer(&iss, buf, sizeof buf);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "client_secret")), "tkd_cs_secret");
    CHECK(json_is_integer(json_object_get(r, "client_secret_expires_at")));
    CHECK_EQ_INT(json_integer_value(json_object_get(r, "client_secret_expires_at")), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "token_endpoint_auth_method")),
                 "client_secret_basic");
    CHECK_EQ_INT(json_array_size(json_object_get(r, "grant_types")), 3);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "application_type")), "web");
    json_decref(r);
    /* the answer, read as a registration, registers the same client */
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    CHECK_EQ_INT(tk_oauth_register_answer(&j, &first, &iss), 0);
    CHECK_EQ_INT(reg(buf), 0);
    first.native_inferred = false; /* the echo states application_type */
    CHECK(memcmp(&first, &m, sizeof m) == 0);
}

static void test_answer_at_every_limit(void)
{
    /* every member at its limit fits one response (limits.h asserts it too) */
    static char doc[TK_OAUTH_REGISTER_BODY_MAX];
    size_t n = (size_t)snprintf(doc, sizeof doc, "{\"redirect_uris\":[");
    for (int i = 0; i < TK_OAUTH_REDIRECTS_MAX; i++) {
        char uri[TK_OAUTH_URI_MAX + 1];
        int k = snprintf(uri, sizeof uri, "https://a/%d/", i);
        memset(uri + k, 'u', sizeof uri - 1 - (size_t)k);
        uri[TK_OAUTH_URI_MAX] = '\0';
        n += (size_t)snprintf(doc + n, sizeof doc - n, "%s\"%s\"", i ? "," : "", uri);
    }
    char scope[TK_SCOPE_MAX + 1], name[TK_NAME_MAX * 2 + 1], sw[TK_OAUTH_SOFTWARE_MAX + 1];
    char curi[TK_OAUTH_URI_MAX + 1];
    memset(scope, 's', TK_SCOPE_MAX);
    scope[TK_SCOPE_MAX] = '\0';
    for (int i = 0; i < TK_NAME_MAX; i++) {
        memcpy(name + 2 * i, "\\\"", 2); /* 128 quotes: each escaped again in the answer */
    }
    name[2 * TK_NAME_MAX] = '\0';
    memset(sw, 'w', TK_OAUTH_SOFTWARE_MAX);
    sw[TK_OAUTH_SOFTWARE_MAX] = '\0';
    memcpy(curi, "https://c/", 10);
    memset(curi + 10, 'c', TK_OAUTH_URI_MAX - 10);
    curi[TK_OAUTH_URI_MAX] = '\0';
    snprintf(doc + n, sizeof doc - n,
             "],\"grant_types\":[\"authorization_code\",\"refresh_token\","
             "\"urn:ietf:params:oauth:grant-type:token-exchange\"],\"client_name\":\"%s\","
             "\"scope\":\"%s\",\"software_id\":\"%s\",\"software_version\":\"%s\","
             "\"client_uri\":\"%s\",\"application_type\":\"native\"}",
             name, scope, sw, sw, curi);
    CHECK_EQ_INT(reg(doc), 0);
    char id[TK_ID_MAX + 1], secret[TK_TOKEN_LEN + 1];
    memset(id, 'i', TK_ID_MAX);
    memset(secret, 'k', TK_TOKEN_LEN);
    tk_oauth_client_issued iss = {.client_id = {id, TK_ID_MAX},
                                  .issued_at = INT64_MAX,
                                  .client_secret = {secret, TK_TOKEN_LEN}};
    char buf[TK_RESPONSE_MAX - 1024];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    CHECK_EQ_INT(tk_oauth_register_answer(&j, &m, &iss), 0);
    /* and a buffer too small is reported, not overrun */
    tk_json_init(&j, buf, 2000);
    CHECK_EQ_INT(tk_oauth_register_answer(&j, &m, &iss), TK_E_TOOBIG);
    /* every redirect URI at its limit fits a client record's joined form */
    static char joined[TK_CLIENT_REDIRECTS_MAX];
    CHECK_EQ_INT(tk_oauth_redirects_join(&m, joined, sizeof joined),
                 TK_OAUTH_REDIRECTS_MAX * (TK_OAUTH_URI_MAX + 1) - 1);
}

static void test_redirects_join(void)
{
    char out[64];
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a.test/cb\",\"https://b.test/cb\"]}"), 0);
    size_t n = tk_oauth_redirects_join(&m, out, sizeof out);
    CHECK_EQ_INT(n, 35);
    CHECK(memcmp(out, "https://a.test/cb https://b.test/cb", 35) == 0);
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a.test/cb\"]}"), 0);
    CHECK_EQ_INT(tk_oauth_redirects_join(&m, out, sizeof out), 17);
    CHECK(memcmp(out, "https://a.test/cb", 17) == 0);
    CHECK_EQ_INT(reg("{\"grant_types\":[\"urn:ietf:params:oauth:grant-type:token-exchange\"],"
                     "\"token_endpoint_auth_method\":\"none\"}"),
                 0);
    CHECK_EQ_INT(tk_oauth_redirects_join(&m, out, sizeof out), 0);
}

static void test_answer_exchange_only_round_trip(void)
{
    /* no redirect URIs and no response types: echoed as [], read back the same */
    CHECK_EQ_INT(reg("{\"grant_types\":[\"urn:ietf:params:oauth:grant-type:token-exchange\"],"
                     "\"token_endpoint_auth_method\":\"client_secret_post\"}"),
                 0);
    tk_oauth_client_meta first = m;
    tk_oauth_client_issued iss = {.client_id = TK_SLICE_LIT("tkc_sub"),
                                  .issued_at = 7,
                                  .client_secret = TK_SLICE_LIT("tkd_cs_s")};
    char buf[TK_RESPONSE_MAX];
    json_t *r = answer(&iss, buf, sizeof buf);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "redirect_uris")), 0);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "response_types")), 0);
    json_decref(r);
    CHECK_EQ_INT(reg(buf), 0);
    first.native_inferred = false;
    CHECK(memcmp(&first, &m, sizeof m) == 0);
    /* but an empty list with authorization_code is still refused */
    REFUSED("{\"redirect_uris\":[],\"grant_types\":[\"authorization_code\"]}", REDIR);
}

static void test_members_writer(void)
{
    CHECK_EQ_INT(reg("{\"redirect_uris\":[\"https://a/cb\"]}"), 0);
    char buf[1024];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "registration_status", "pending");
    tk_oauth_register_write_members(&j, &m);
    tk_json_obj_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK_EQ_STR(buf, "{\"registration_status\":\"pending\",\"redirect_uris\":[\"https://a/cb\"],"
                      "\"token_endpoint_auth_method\":\"client_secret_basic\","
                      "\"grant_types\":[\"authorization_code\"],\"response_types\":[\"code\"],"
                      "\"application_type\":\"web\"}");
    CHECK_EQ_STR(tk_oauth_auth_method_name(TK_OAUTH_AUTH_CLIENT_SECRET_POST), "client_secret_post");
}

int main(void)
{
    RUN(test_mcp_sdk_registration);
    RUN(test_defaults);
    RUN(test_application_type);
    RUN(test_redirect_refusals);
    RUN(test_grant_refusals);
    RUN(test_text_members);
    RUN(test_document_refusals);
    RUN(test_answer_public);
    RUN(test_answer_confidential_round_trip);
    RUN(test_answer_at_every_limit);
    RUN(test_redirects_join);
    RUN(test_answer_exchange_only_round_trip);
    RUN(test_members_writer);
    return check_report();
}
