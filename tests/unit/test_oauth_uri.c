/*
 * Unit tests for the URI checks of the authorization server: the strict
 * splitter, redirect URIs at registration (every refused class), matching
 * at /authorize (the loopback port rule and nothing more), selection,
 * resource indicators, and the shared syntax of scope, state and grants.
 */
#include "check.h"

#include "tokend/form.h"
#include "tokend/json.h"
#include "tokend/oauth.h"
#include "tokend/oauth_uri.h"

#include <stdlib.h>

static tk_slice S(const char *s)
{
    return tk_slice_from_str(s);
}

/* Every description is a static string allowed in error_description. */
static void check_desc(const tk_oauth_err *e)
{
    CHECK(e->description != NULL && e->description[0] != '\0');
    for (const char *p = e->description; p != NULL && *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        CHECK(c >= 0x20 && c <= 0x7e && c != '"' && c != '\\');
    }
}

static void test_uri_parse(void)
{
    tk_oauth_uri u;
    CHECK_EQ_INT(tk_oauth_uri_parse(S("https://u:p@example.com:8443/a/b?x=1&y#frag"), &u), 0);
    CHECK_SLICE(u.scheme, "https");
    CHECK(u.has_authority && u.has_userinfo && u.has_port && u.has_query && u.has_fragment);
    CHECK_SLICE(u.authority, "u:p@example.com:8443");
    CHECK_SLICE(u.userinfo, "u:p");
    CHECK_SLICE(u.host, "example.com");
    CHECK_SLICE(u.port, "8443");
    CHECK_SLICE(u.path, "/a/b");
    CHECK_SLICE(u.query, "x=1&y");
    CHECK_SLICE(u.fragment, "frag");

    CHECK_EQ_INT(tk_oauth_uri_parse(S("http://[::1]:3000/cb"), &u), 0);
    CHECK_SLICE(u.host, "[::1]");
    CHECK_SLICE(u.port, "3000");
    CHECK_EQ_INT(tk_oauth_uri_parse(S("com.example.app:/oauth2/cb"), &u), 0);
    CHECK(!u.has_authority);
    CHECK_SLICE(u.scheme, "com.example.app");
    CHECK_SLICE(u.path, "/oauth2/cb");
    CHECK_EQ_INT(tk_oauth_uri_parse(S("urn:example:thing"), &u), 0);
    CHECK_SLICE(u.path, "example:thing");
    CHECK_EQ_INT(tk_oauth_uri_parse(S("https://h?q=/?:@"), &u), 0);
    CHECK_SLICE(u.path, "");
    CHECK_SLICE(u.query, "q=/?:@");
    CHECK_EQ_INT(tk_oauth_uri_parse(S("https://h/%2Fa%7e"), &u), 0);
    CHECK_EQ_INT(tk_oauth_uri_parse(S("https://h:65535/"), &u), 0);
    CHECK_EQ_INT(tk_oauth_uri_parse(S("file:///etc/passwd"), &u), 0);
    CHECK(u.has_authority && u.host.len == 0);

    const char *bad[] = {
        "",
        "/relative",
        "//host/x",
        "1abc:x",
        "ht tp://h",
        ":x",
        "https://h/a b",
        "https://h/\"",
        "https://h/<x>",
        "https://h/%",
        "https://h/%4",
        "https://h/%zz",
        "https://h:/",
        "https://h:x/",
        "https://h:65536/",
        "https://h:123456/",
        "https://[::1/",
        "https://[]/",
        "https://[g::1]/",
        "https://[1.2]/",
        "https://h]/",
        "https://a@b@c/",
        "https://h/[x]",
        "https://h?[x]",
        "https://h#a#b",
        "https://h/\x01",
        "https://h/\xc3\xa9",
        "https://h%41/",
        "https://h/{x}",
        "https://h/a\\b",
        "https://h/`",
        "https://h/|",
        "https://h/^",
        "https://h!/",
        "https://[::1]x/",
        "https://u[@h/",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        int rc = tk_oauth_uri_parse(S(bad[i]), &u);
        if (rc != TK_E_BADINPUT) {
            fprintf(stderr, "accepted %s\n", bad[i]);
        }
        CHECK_EQ_INT(rc, TK_E_BADINPUT);
    }
    /* a NUL byte inside */
    CHECK_EQ_INT(tk_oauth_uri_parse((tk_slice){"https://h/\0x", 12}, &u), TK_E_BADINPUT);

    /* length: exactly the limit passes, one more is TK_E_TOOBIG */
    char *long_uri = malloc(TK_OAUTH_URI_MAX + 2);
    memcpy(long_uri, "https://h/", 10);
    memset(long_uri + 10, 'a', TK_OAUTH_URI_MAX + 1 - 10);
    CHECK_EQ_INT(tk_oauth_uri_parse((tk_slice){long_uri, TK_OAUTH_URI_MAX}, &u), 0);
    CHECK_EQ_INT(tk_oauth_uri_parse((tk_slice){long_uri, TK_OAUTH_URI_MAX + 1}, &u), TK_E_TOOBIG);
    free(long_uri);
}

static void test_loopback(void)
{
    const char *yes[] = {"http://127.0.0.1/cb", "http://[::1]:8080/", "http://localhost:3000/x",
                         "HTTP://LOCALHOST/", "http://LocalHost"};
    const char *no[] = {"https://127.0.0.1/", "http://127.0.0.2/",     "http://localhost.evil/",
                        "http://[::2]/",      "http://[0:0::1]/",      "http:localhost",
                        "http://0x7f000001/", "http://evil.localhost/"};
    tk_oauth_uri u;
    for (size_t i = 0; i < TK_ARRAY_LEN(yes); i++) {
        CHECK_EQ_INT(tk_oauth_uri_parse(S(yes[i]), &u), 0);
        CHECK(tk_oauth_uri_is_loopback(&u));
    }
    for (size_t i = 0; i < TK_ARRAY_LEN(no); i++) {
        CHECK_EQ_INT(tk_oauth_uri_parse(S(no[i]), &u), 0);
        CHECK(!tk_oauth_uri_is_loopback(&u));
    }
}

static void test_redirect_check(void)
{
    enum tk_oauth_redirect_kind kind = 0;
    tk_oauth_err e = {0};
    CHECK_EQ_INT(tk_oauth_redirect_check(S("https://app.example/cb?x=1"), &kind, &e), 0);
    CHECK_EQ_INT(kind, TK_OAUTH_REDIRECT_HTTPS);
    CHECK_EQ_INT(tk_oauth_redirect_check(S("http://localhost:33418/callback"), &kind, &e), 0);
    CHECK_EQ_INT(kind, TK_OAUTH_REDIRECT_LOOPBACK);
    CHECK_EQ_INT(tk_oauth_redirect_check(S("http://127.0.0.1/cb"), &kind, &e), 0);
    CHECK_EQ_INT(kind, TK_OAUTH_REDIRECT_LOOPBACK);
    CHECK_EQ_INT(tk_oauth_redirect_check(S("http://[::1]:9/cb"), &kind, &e), 0);
    CHECK_EQ_INT(kind, TK_OAUTH_REDIRECT_LOOPBACK);
    CHECK_EQ_INT(tk_oauth_redirect_check(S("com.example.app:/oauth2redirect"), &kind, &e), 0);
    CHECK_EQ_INT(kind, TK_OAUTH_REDIRECT_PRIVATE);
    CHECK_EQ_INT(tk_oauth_redirect_check(S("com.example.app://cb"), NULL, &e), 0);

    const char *bad[] = {
        "https://app.example/cb#x",
        "https://app.example/cb#",
        "https://u@app.example/cb",
        "https://u:p@app.example/",
        "https:///cb",
        "https:/cb",
        "https:cb",
        "http://app.example/cb",
        "http://127.0.0.2/cb",
        "http:/localhost/cb",
        "javascript:alert(1)",
        "JavaScript://%0aalert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "vbscript:x",
        "about:blank",
        "ftp://h/",
        "ws://localhost/",
        "mailto:a@b",
        "/relative/cb",
        "",
        "https://app.example/a b",
        "http://localhost/cb#frag",
        "http://u@localhost/",
        "blob:https://x/1",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        e = (tk_oauth_err){0};
        int rc = tk_oauth_redirect_check(S(bad[i]), &kind, &e);
        if (rc != TK_E_INVALID) {
            fprintf(stderr, "accepted redirect %s\n", bad[i]);
        }
        CHECK_EQ_INT(rc, TK_E_INVALID);
        CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_REDIRECT_URI);
        check_desc(&e);
    }
    char *long_uri = malloc(TK_OAUTH_URI_MAX + 1);
    memcpy(long_uri, "https://h/", 10);
    memset(long_uri + 10, 'a', TK_OAUTH_URI_MAX + 1 - 10);
    CHECK_EQ_INT(tk_oauth_redirect_check((tk_slice){long_uri, TK_OAUTH_URI_MAX}, NULL, &e), 0);
    CHECK_EQ_INT(tk_oauth_redirect_check((tk_slice){long_uri, TK_OAUTH_URI_MAX + 1}, NULL, &e),
                 TK_E_INVALID);
    CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_REDIRECT_URI);
    free(long_uri);

    CHECK(tk_oauth_redirect_allowed(TK_OAUTH_REDIRECT_HTTPS, false));
    CHECK(tk_oauth_redirect_allowed(TK_OAUTH_REDIRECT_HTTPS, true));
    CHECK(!tk_oauth_redirect_allowed(TK_OAUTH_REDIRECT_LOOPBACK, false));
    CHECK(tk_oauth_redirect_allowed(TK_OAUTH_REDIRECT_LOOPBACK, true));
    CHECK(!tk_oauth_redirect_allowed(TK_OAUTH_REDIRECT_PRIVATE, false));
    CHECK(tk_oauth_redirect_allowed(TK_OAUTH_REDIRECT_PRIVATE, true));
}

static void test_redirect_match(void)
{
    /* exact match, for every kind */
    CHECK(tk_oauth_redirect_match(S("https://a.example/cb?x=1"), S("https://a.example/cb?x=1"),
                                  false));
    CHECK(tk_oauth_redirect_match(S("com.example.app:/cb"), S("com.example.app:/cb"), true));
    /* anything else differs: case, trailing slash, query, port of https */
    const char *reg = "https://a.example/cb";
    const char *no[] = {
        "https://A.example/cb",  "https://a.example/cb/",    "https://a.example/cb?",
        "https://a.example/CB",  "https://a.example:443/cb", "http://a.example/cb",
        "https://a.example/cb#", "https://a.example/cb%2F",  "https://a.example/c",
        "https://a.example/cbx", "https://x@a.example/cb",   ""};
    for (size_t i = 0; i < TK_ARRAY_LEN(no); i++) {
        CHECK(!tk_oauth_redirect_match(S(reg), S(no[i]), true));
        CHECK(!tk_oauth_redirect_match(S(reg), S(no[i]), false));
    }
    CHECK(!tk_oauth_redirect_match(S(reg), TK_SLICE_NULL, false));

    /* native loopback: the port may differ or be absent on either side */
    const char *lb = "http://127.0.0.1/cb?x=1";
    CHECK(tk_oauth_redirect_match(S(lb), S("http://127.0.0.1:51234/cb?x=1"), true));
    CHECK(tk_oauth_redirect_match(S("http://127.0.0.1:8080/cb"), S("http://127.0.0.1:9/cb"), true));
    CHECK(tk_oauth_redirect_match(S("http://127.0.0.1:8080/cb"), S("http://127.0.0.1/cb"), true));
    CHECK(tk_oauth_redirect_match(S("http://[::1]/cb"), S("http://[::1]:7/cb"), true));
    CHECK(tk_oauth_redirect_match(S("http://localhost:3000/callback"),
                                  S("http://localhost:61000/callback"), true));
    /* ... but not for web clients */
    CHECK(!tk_oauth_redirect_match(S(lb), S("http://127.0.0.1:51234/cb?x=1"), false));
    /* ... and nothing but the port */
    const char *lb_no[] = {"http://localhost:5/cb?x=1",   "http://[::1]:5/cb?x=1",
                           "http://127.0.0.1:5/cb?x=2",   "http://127.0.0.1:5/cb",
                           "http://127.0.0.1:5/cb/?x=1",  "http://127.0.0.1:5/CB?x=1",
                           "https://127.0.0.1:5/cb?x=1",  "HTTP://127.0.0.1:5/cb?x=1",
                           "http://127.0.0.1:5/cb?x=1#f", "http://u@127.0.0.1:5/cb?x=1",
                           "http://127.0.0.1:/cb?x=1",    "http://127.0.0.1:99999/cb?x=1",
                           "http://127.0.0.1:5x/cb?x=1",  "http://127.0.0.10:5/cb?x=1"};
    for (size_t i = 0; i < TK_ARRAY_LEN(lb_no); i++) {
        if (tk_oauth_redirect_match(S(lb), S(lb_no[i]), true)) {
            fprintf(stderr, "matched %s\n", lb_no[i]);
            CHECK(false);
        }
    }
    /* a registered https URI gets no port freedom even for native clients */
    CHECK(!tk_oauth_redirect_match(S("https://localhost/cb"), S("https://localhost:5/cb"), true));
    /* nor does a non-loopback http (never registered, but matched strictly) */
    CHECK(!tk_oauth_redirect_match(S("http://h/cb"), S("http://h:5/cb"), true));
    /* an exact copy with a fragment is no match */
    CHECK(!tk_oauth_redirect_match(S("https://a/cb#x"), S("https://a/cb#x"), false));
}

static void test_redirect_select(void)
{
    tk_slice reg[] = {S("https://a.example/cb"), S("http://127.0.0.1/cb")};
    tk_slice out;
    tk_oauth_err e = {0};
    CHECK_EQ_INT(tk_oauth_redirect_select(reg, 2, true, S("http://127.0.0.1:4242/cb"), &out, &e),
                 0);
    CHECK_SLICE(out, "http://127.0.0.1:4242/cb");
    CHECK_EQ_INT(tk_oauth_redirect_select(reg, 2, true, S("https://a.example/cb"), &out, &e), 0);
    CHECK_SLICE(out, "https://a.example/cb");
    CHECK_EQ_INT(tk_oauth_redirect_select(reg, 2, false, S("http://127.0.0.1:4242/cb"), &out, &e),
                 TK_E_INVALID);
    CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_REQUEST);
    check_desc(&e);
    CHECK(out.p == NULL);
    /* absent redirect_uri: only with exactly one registered */
    CHECK_EQ_INT(tk_oauth_redirect_select(reg, 2, true, TK_SLICE_NULL, &out, &e), TK_E_INVALID);
    CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_REQUEST);
    CHECK_EQ_INT(tk_oauth_redirect_select(reg, 1, true, TK_SLICE_NULL, &out, &e), 0);
    CHECK_SLICE(out, "https://a.example/cb");
    CHECK_EQ_INT(tk_oauth_redirect_select(NULL, 0, true, TK_SLICE_NULL, &out, &e), TK_E_INVALID);
    CHECK_EQ_INT(tk_oauth_redirect_select(NULL, 0, true, S("https://a.example/cb"), &out, &e),
                 TK_E_INVALID);
    CHECK_EQ_INT(tk_oauth_redirect_select(reg, 2, true, S("https://evil.example/cb"), &out, &e),
                 TK_E_INVALID);
}

static void test_resource(void)
{
    tk_oauth_err e = {0};
    CHECK_EQ_INT(tk_oauth_resource_check(S("https://mcp.example/mcp"), &e), 0);
    CHECK_EQ_INT(tk_oauth_resource_check(S("https://mcp.example"), &e), 0);
    CHECK_EQ_INT(tk_oauth_resource_check(S("https://api.example/v1?tenant=a"), &e), 0);
    CHECK_EQ_INT(tk_oauth_resource_check(S("urn:example:api"), &e), 0);
    const char *bad[] = {"",
                         "mcp",
                         "/mcp",
                         "https://mcp.example/#x",
                         "https://mcp.example/#",
                         "https://mcp example/",
                         "//mcp.example/"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        e = (tk_oauth_err){0};
        CHECK_EQ_INT(tk_oauth_resource_check(S(bad[i]), &e), TK_E_INVALID);
        CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_TARGET);
        check_desc(&e);
    }
    char big[TK_AUD_MAX + 2];
    memcpy(big, "https://h/", 10);
    memset(big + 10, 'r', sizeof big - 10);
    CHECK_EQ_INT(tk_oauth_resource_check((tk_slice){big, TK_AUD_MAX}, &e), 0);
    CHECK_EQ_INT(tk_oauth_resource_check((tk_slice){big, TK_AUD_MAX + 1}, &e), TK_E_INVALID);
    CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_TARGET);
}

static void test_scope_syntax(void)
{
    CHECK(tk_oauth_scope_valid(S("read")));
    CHECK(tk_oauth_scope_valid(S("read write mcp:tools offline_access")));
    CHECK(tk_oauth_scope_valid(S("!#[]~")));
    const char *bad[] = {"",       " ",      " read",       "read ",     "read  write",
                         "re\"ad", "re\\ad", "read\twrite", "r\xc3\xa9", "read\nwrite"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK(!tk_oauth_scope_valid(S(bad[i])));
    }
    char big[TK_SCOPE_MAX + 1];
    memset(big, 'a', sizeof big);
    CHECK(tk_oauth_scope_valid((tk_slice){big, TK_SCOPE_MAX}));
    CHECK(!tk_oauth_scope_valid((tk_slice){big, TK_SCOPE_MAX + 1}));

    CHECK(tk_oauth_vschar_valid(S("a b~"), 4));
    CHECK(!tk_oauth_vschar_valid(S("a b~x"), 4));
    CHECK(!tk_oauth_vschar_valid(S(""), 4));
    CHECK(!tk_oauth_vschar_valid(S("\x7f"), 4));
    CHECK(!tk_oauth_vschar_valid(S("\x1f"), 4));
    CHECK(!tk_oauth_vschar_valid(S("\xc3\xa9"), 4));
}

static void test_grants_and_names(void)
{
    enum tk_oauth_grant g;
    tk_oauth_err e = {0};
    CHECK_EQ_INT(tk_oauth_grant_parse(S("authorization_code"), TK_OAUTH_INVALID_REQUEST, &g, &e),
                 0);
    CHECK_EQ_INT(g, TK_OAUTH_GRANT_AUTHORIZATION_CODE);
    CHECK_EQ_INT(tk_oauth_grant_parse(S("refresh_token"), TK_OAUTH_INVALID_REQUEST, &g, &e), 0);
    CHECK_EQ_INT(g, TK_OAUTH_GRANT_REFRESH_TOKEN);
    CHECK_EQ_INT(tk_oauth_grant_parse(S(TK_OAUTH_GRANT_TOKEN_EXCHANGE_NAME),
                                      TK_OAUTH_INVALID_REQUEST, &g, &e),
                 0);
    CHECK_EQ_INT(g, TK_OAUTH_GRANT_TOKEN_EXCHANGE);
    const char *bad[] = {"client_credentials", "password",
                         "implicit",           "",
                         "Authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
                         "refresh_token "};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        e = (tk_oauth_err){0};
        CHECK_EQ_INT(tk_oauth_grant_parse(S(bad[i]), TK_OAUTH_UNSUPPORTED_GRANT_TYPE, &g, &e),
                     TK_E_INVALID);
        CHECK_EQ_INT(e.code, TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
        check_desc(&e);
    }
    tk_oauth_grant_parse(S("client_credentials"), TK_OAUTH_INVALID_CLIENT_METADATA, &g, &e);
    CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_CLIENT_METADATA);
    CHECK(strstr(e.description, "agents act for a person, never as service accounts") != NULL);
    tk_oauth_grant_parse(S("password"), TK_OAUTH_UNSUPPORTED_GRANT_TYPE, &g, &e);
    CHECK(strstr(e.description, "password") != NULL);

    CHECK_EQ_STR(tk_oauth_grant_name(TK_OAUTH_GRANT_REFRESH_TOKEN), "refresh_token");
    CHECK_EQ_STR(tk_oauth_code_name(TK_OAUTH_OK), "");
    CHECK_EQ_STR(tk_oauth_code_name(TK_OAUTH_INVALID_TARGET), "invalid_target");
    CHECK_EQ_STR(tk_oauth_code_name(TK_OAUTH_INVALID_CLIENT_METADATA), "invalid_client_metadata");
    for (int c = 1; c < TK_OAUTH_CODE_COUNT; c++) {
        const char *n = tk_oauth_code_name((enum tk_oauth_code)c);
        CHECK(n[0] >= 'a' && n[0] <= 'z');
    }
    CHECK_EQ_INT(tk_oauth_refuse(NULL, TK_OAUTH_ACCESS_DENIED, "x"), TK_E_INVALID);
}

static void test_redirect_urls(void)
{
    char buf[256];
    size_t len = 99;
    tk_slice iss = S("https://auth.example");
    CHECK_EQ_INT(tk_oauth_authz_success_url(buf, sizeof buf, S("http://127.0.0.1:5/cb"),
                                            S("tkd_ac_A-b_c.d~"), S("x y&z=1#%/?"), iss, &len),
                 0);
    CHECK_EQ_STR(buf, "http://127.0.0.1:5/cb?code=tkd_ac_A-b_c.d~&state=x%20y%26z%3D1%23%25%2F%3F"
                      "&iss=https%3A%2F%2Fauth.example");
    CHECK_EQ_INT(len, strlen(buf));
    /* the client's own query is kept; no state when there was none */
    CHECK_EQ_INT(tk_oauth_authz_success_url(buf, sizeof buf, S("https://a/cb?tenant=1"), S("c"),
                                            TK_SLICE_NULL, iss, &len),
                 0);
    CHECK_EQ_STR(buf, "https://a/cb?tenant=1&code=c&iss=https%3A%2F%2Fauth.example");
    CHECK_EQ_INT(tk_oauth_authz_success_url(buf, sizeof buf, S("https://a/cb?"), S("c"),
                                            TK_SLICE_NULL, iss, &len),
                 0);
    CHECK_EQ_STR(buf, "https://a/cb?code=c&iss=https%3A%2F%2Fauth.example");
    CHECK_EQ_INT(tk_oauth_authz_success_url(buf, sizeof buf, S("https://a/cb?x&"), S("c"),
                                            TK_SLICE_NULL, iss, &len),
                 0);
    CHECK_EQ_STR(buf, "https://a/cb?x&code=c&iss=https%3A%2F%2Fauth.example");
    /* an error, with every byte class of state encoded */
    tk_oauth_err e = {TK_OAUTH_ACCESS_DENIED, "the agent awaits approval"};
    CHECK_EQ_INT(tk_oauth_authz_error_url(buf, sizeof buf, S("com.example.app:/cb"), &e,
                                          (tk_slice){"\0\xff\n+", 4}, iss, &len),
                 0);
    CHECK_EQ_STR(buf, "com.example.app:/cb?error=access_denied&error_description=the%20agent"
                      "%20awaits%20approval&state=%00%FF%0A%2B&iss=https%3A%2F%2Fauth.example");
    /* the form decoder reads back what was written */
    char st[16] = {0}, er[32] = {0};
    tk_form_field f[2] = {{.name = "state", .buf = st, .cap = sizeof st, .binary = true},
                          {.name = "error", .buf = er, .cap = sizeof er}};
    const char *q = strchr(buf, '?') + 1;
    CHECK_EQ_INT(tk_form_parse(q, strlen(q), f, 2), 0);
    CHECK_EQ_INT(f[0].len, 4);
    CHECK(memcmp(st, "\0\xff\n+", 4) == 0);
    CHECK_EQ_STR(er, "access_denied");
    /* too small: reported, nothing half-written */
    CHECK_EQ_INT(tk_oauth_authz_success_url(buf, 20, S("http://127.0.0.1:5/cb"), S("code"),
                                            TK_SLICE_NULL, iss, &len),
                 TK_E_TOOBIG);
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_STR(buf, "");
    /* exactly enough */
    const char *want = "https://a/cb?code=c&iss=i";
    CHECK_EQ_INT(tk_oauth_authz_success_url(buf, strlen(want) + 1, S("https://a/cb"), S("c"),
                                            TK_SLICE_NULL, S("i"), &len),
                 0);
    CHECK_EQ_STR(buf, want);
    CHECK_EQ_INT(tk_oauth_authz_success_url(buf, strlen(want), S("https://a/cb"), S("c"),
                                            TK_SLICE_NULL, S("i"), &len),
                 TK_E_TOOBIG);
}

static void test_error_json(void)
{
    char buf[256];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_oauth_err e = {TK_OAUTH_INVALID_GRANT, "code_verifier does not match"};
    CHECK_EQ_INT(tk_oauth_error_json(&j, &e), 0);
    CHECK_EQ_STR(buf, "{\"error\":\"invalid_grant\",\"error_description\":"
                      "\"code_verifier does not match\"}");
    tk_json_init(&j, buf, 10);
    CHECK_EQ_INT(tk_oauth_error_json(&j, &e), TK_E_TOOBIG);
}

int main(void)
{
    RUN(test_uri_parse);
    RUN(test_loopback);
    RUN(test_redirect_check);
    RUN(test_redirect_match);
    RUN(test_redirect_select);
    RUN(test_resource);
    RUN(test_scope_syntax);
    RUN(test_grants_and_names);
    RUN(test_redirect_urls);
    RUN(test_error_json);
    return check_report();
}
