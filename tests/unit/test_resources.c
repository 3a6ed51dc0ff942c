/*
 * Protected resources: the loader's checks, the precomputed challenges and
 * metadata URLs (RFC 9728 §3.1 path insertion), the match order (host
 * specificity, then the longest prefix on a segment boundary), method rules
 * and path normalisation (every truncation point of a tricky path too).
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "tokend/resources.h"

static const char good[] =
    "{\"trusted_headers\": [\"X-Forwarded-Host\", \"x-forwarded-uri\"],"
    " \"identity_headers\": {\"subject\": \"X-User\"},"
    " \"resources\": ["
    "  {\"resource\": \"https://wiki.test/\", \"name\": \"Wiki\", \"realm\": \"wiki\","
    "   \"scopes_supported\": [\"wiki:read\", \"wiki:write\"],"
    "   \"required_scopes\": {\"GET\": [\"wiki:read\"], \"*\": [\"wiki:write\", \"wiki:read\"]}},"
    "  {\"resource\": \"https://wiki.test/admin\", \"path_prefix\": \"/admin\","
    "   \"identity_headers\": {\"client\": \"X-Agent\"}},"
    "  {\"resource\": \"https://wiki.test:8443/\", \"host\": \"WIKI.test:8443\"},"
    "  {\"resource\": \"https://any.test/api/v1\", \"host\": \"*\", \"path_prefix\": \"/api\"},"
    "  {\"resource\": \"https://other.test/api/v1\", \"host\": \"other.test\", \"path_prefix\": "
    "\"/api/v1\"}"
    " ]}";

static tk_resources *load(const char *json)
{
    tk_resources *rs = NULL;
    char err[256];
    int rc = tk_resources_parse(json, strlen(json), &rs, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "load failed: %s\n", err);
    }
    CHECK_EQ_INT(rc, 0);
    return rs;
}

static const char *match_id(const tk_resources *rs, const char *host, const char *path)
{
    const tk_resource *r = tk_resources_match(rs, tk_slice_from_str(host), tk_slice_from_str(path));
    static char id[256];
    snprintf(id, sizeof id, "%.*s", r ? (int)r->id.len : 4, r ? r->id.p : "none");
    return id;
}

static void test_load_and_precompute(void)
{
    tk_resources *rs = load(good);
    TK_ASSERT(rs != NULL);
    CHECK_EQ_INT(tk_resources_count(rs), 5);
    CHECK_EQ_INT(tk_resources_trusted(rs), TK_TRUST_FWD_HOST | TK_TRUST_FWD_URI);
    const tk_resource *w = tk_resources_at(rs, 0);
    CHECK_SLICE(w->metadata_url, "https://wiki.test/.well-known/oauth-protected-resource");
    CHECK_SLICE(w->metadata_path, "/.well-known/oauth-protected-resource");
    CHECK_EQ_STR(w->challenge_missing, "WWW-Authenticate: Bearer realm=\"wiki\", "
                                       "resource_metadata=\"https://wiki.test/.well-known/"
                                       "oauth-protected-resource\"\r\n");
    CHECK_EQ_STR(w->challenge_invalid, "WWW-Authenticate: Bearer realm=\"wiki\", "
                                       "error=\"invalid_token\", resource_metadata=\"https://"
                                       "wiki.test/.well-known/oauth-protected-resource\"\r\n");
    CHECK_EQ_INT(w->nscopes, 2);
    CHECK_SLICE(w->scopes[1], "wiki:write");
    CHECK_SLICE(w->ident[TK_IDENT_SUBJECT], "X-User: ");
    CHECK_SLICE(w->ident[TK_IDENT_CLIENT], "X-Auth-Client: ");
    const tk_scope_rule *u = tk_resource_rule(w, TK_SLICE_LIT("GET"));
    TK_ASSERT(u != NULL);
    CHECK_SLICE(u->scope, "wiki:read");
    CHECK(tk_resource_rule(w, TK_SLICE_LIT("HEAD")) == u); /* HEAD falls back to GET */
    u = tk_resource_rule(w, TK_SLICE_LIT("DELETE"));
    TK_ASSERT(u != NULL);
    CHECK_SLICE(u->scope, "wiki:write wiki:read");
    CHECK(strstr(u->challenge, "error=\"insufficient_scope\", scope=\"wiki:write wiki:read\", "
                               "resource_metadata=") != NULL);
    CHECK(tk_resource_rule(w, TK_SLICE_LIT("get")) != NULL); /* methods are case-sensitive: "*" */

    const tk_resource *a = tk_resources_at(rs, 1);
    CHECK_SLICE(a->metadata_path, "/.well-known/oauth-protected-resource/admin");
    CHECK_SLICE(a->realm, "tokend");
    CHECK_SLICE(a->ident[TK_IDENT_CLIENT], "X-Agent: ");
    CHECK_SLICE(a->ident[TK_IDENT_SUBJECT], "X-User: "); /* the global name stays */
    CHECK(tk_resource_rule(a, TK_SLICE_LIT("GET")) == NULL);
    CHECK_SLICE(tk_resources_at(rs, 2)->host, "wiki.test:8443");
    tk_resources_free(rs);
}

static void test_match_order(void)
{
    tk_resources *rs = load(good);
    TK_ASSERT(rs != NULL);
    CHECK_EQ_STR(match_id(rs, "wiki.test", "/"), "https://wiki.test/");
    CHECK_EQ_STR(match_id(rs, "WIKI.TEST:443", "/page"), "https://wiki.test/");
    CHECK_EQ_STR(match_id(rs, "wiki.test", "/admin"), "https://wiki.test/admin");
    CHECK_EQ_STR(match_id(rs, "wiki.test", "/admin/users"), "https://wiki.test/admin");
    CHECK_EQ_STR(match_id(rs, "wiki.test", "/administrator"), "https://wiki.test/");
    CHECK_EQ_STR(match_id(rs, "wiki.test:8443", "/admin"), "https://wiki.test:8443/");
    CHECK_EQ_STR(match_id(rs, "other.test", "/api/v1/x"), "https://other.test/api/v1");
    CHECK_EQ_STR(match_id(rs, "other.test", "/api/v2"), "https://any.test/api/v1");
    CHECK_EQ_STR(match_id(rs, "nowhere.test", "/api"), "https://any.test/api/v1");
    CHECK_EQ_STR(match_id(rs, "nowhere.test", "/apix"), "none");
    CHECK_EQ_STR(match_id(rs, "[::1]:80", "/"), "none");
    CHECK(tk_resources_match(NULL, TK_SLICE_LIT("a"), TK_SLICE_LIT("/")) == NULL);

    const tk_resource *m = tk_resources_by_metadata_path(
        rs, TK_SLICE_LIT("/.well-known/oauth-protected-resource/admin"), TK_SLICE_LIT("x"));
    CHECK(m != NULL && m == tk_resources_at(rs, 1));
    /* Two resources share the root metadata path: the host decides. */
    tk_slice root = TK_SLICE_LIT("/.well-known/oauth-protected-resource");
    CHECK(tk_resources_by_metadata_path(rs, root, TK_SLICE_LIT("Wiki.Test")) ==
          tk_resources_at(rs, 0));
    CHECK(tk_resources_by_metadata_path(rs, root, TK_SLICE_LIT("wiki.test:8443")) ==
          tk_resources_at(rs, 2));
    CHECK(tk_resources_by_metadata_path(rs, root, TK_SLICE_LIT("elsewhere")) == NULL);
    CHECK(tk_resources_by_metadata_path(rs, TK_SLICE_LIT("/.well-known/oauth-protected-resource/x"),
                                        TK_SLICE_LIT("wiki.test")) == NULL);
    tk_resources_free(rs);
}

static void test_rejects(void)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"resources\": {}}",
        "{\"resources\": [], \"typo\": 1}",
        "{\"resources\": [{\"resource\": \"http://wiki.test/\"}]}",
        "{\"resources\": [{\"resource\": \"https://wiki.test/?q\"}]}",
        "{\"resources\": [{\"resource\": \"https://wiki.test/#f\"}]}",
        "{\"resources\": [{\"resource\": \"https:///x\"}]}",
        "{\"resources\": [{\"resource\": \"https://a b/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"extra\": 1}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"path_prefix\": \"x\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"path_prefix\": \"/a/../b\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"path_prefix\": \"/a%20b\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"realm\": \"a\\\"b\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"host\": \"a/b\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"scopes_supported\": [\"a b\"]}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"scopes_supported\": [\"a\\\"\"]}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"required_scopes\": {\"G T\": "
        "[]}}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"required_scopes\": {\"GET\": "
        "\"a\"}}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"identity_headers\": {\"subject\": "
        "\"X: Y\"}}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"identity_headers\": {\"who\": "
        "\"X\"}}]}",
        "{\"trusted_headers\": [\"Host\"], \"resources\": []}",
        "{\"resources\": [{\"resource\": \"https://w.test/\"}, {\"resource\": "
        "\"https://w.test/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\"}, {\"resource\": "
        "\"https://w.test\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/a\"}, {\"resource\": "
        "\"https://w.test/b\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\"}], \"resources\": []}",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        tk_resources *rs = NULL;
        char err[256] = "";
        int rc = tk_resources_parse(bad[i], strlen(bad[i]), &rs, err, sizeof err);
        if (rc != TK_E_INVALID) {
            fprintf(stderr, "accepted #%zu: %s\n", i, bad[i]);
        }
        CHECK_EQ_INT(rc, TK_E_INVALID);
        CHECK(rs == NULL && err[0] != '\0');
    }
    /* An identifier longer than an op's reason field cannot be audited. */
    char big[512];
    snprintf(big, sizeof big, "{\"resources\": [{\"resource\": \"https://w.test/%0*d\"}]}",
             TK_RESOURCE_ID_MAX, 0);
    tk_resources *rs = NULL;
    char err[256];
    CHECK_EQ_INT(tk_resources_parse(big, strlen(big), &rs, err, sizeof err), TK_E_INVALID);
    /* No resources at all is fine (forward-auth then refuses everything). */
    rs = load("{\"resources\": []}");
    CHECK_EQ_INT(tk_resources_count(rs), 0);
    CHECK_EQ_INT(tk_resources_trusted(rs), TK_TRUST_ALL);
    tk_resources_free(rs);
    CHECK(tk_resources_load("/nonexistent/res.json", &rs, err, sizeof err) == -ENOENT);
}

static const char *norm(const char *in)
{
    static char out[256];
    size_t n = 0;
    int rc = tk_http_path_normalize(tk_slice_from_str(in), out, sizeof out - 1, &n);
    if (rc != 0) {
        return rc == TK_E_BADINPUT ? "BAD" : "BIG";
    }
    out[n] = '\0';
    return out;
}

static void test_normalize(void)
{
    CHECK_EQ_STR(norm("/"), "/");
    CHECK_EQ_STR(norm("/a/b"), "/a/b");
    CHECK_EQ_STR(norm("/a/b/"), "/a/b/");
    CHECK_EQ_STR(norm("/a//b"), "/a/b");
    CHECK_EQ_STR(norm("//"), "/");
    CHECK_EQ_STR(norm("/a/./b"), "/a/b");
    CHECK_EQ_STR(norm("/a/."), "/a/");
    CHECK_EQ_STR(norm("/a/b/../c"), "/a/c");
    CHECK_EQ_STR(norm("/a/.."), "/");
    CHECK_EQ_STR(norm("/a/b/.."), "/a/");
    CHECK_EQ_STR(norm("/public/../admin"), "/admin");
    CHECK_EQ_STR(norm("/public/%2e%2E/admin"), "/admin");
    CHECK_EQ_STR(norm("/a%2Fb"), "/a/b");
    CHECK_EQ_STR(norm("/%61dmin"), "/admin");
    CHECK_EQ_STR(norm("/a?x=/../b"), "/a");
    CHECK_EQ_STR(norm("/a#../b"), "/a");
    CHECK_EQ_STR(norm("/a/...b"), "/a/...b");
    CHECK_EQ_STR(norm("/caf%C3%A9"), "/caf\xc3\xa9");
    CHECK_EQ_STR(norm("/.."), "BAD");
    CHECK_EQ_STR(norm("/a/../.."), "BAD");
    CHECK_EQ_STR(norm("a/b"), "BAD");
    CHECK_EQ_STR(norm(""), "BAD");
    CHECK_EQ_STR(norm("?x"), "BAD");
    CHECK_EQ_STR(norm("/%"), "BAD");
    CHECK_EQ_STR(norm("/%4"), "BAD");
    CHECK_EQ_STR(norm("/%zz"), "BAD");
    CHECK_EQ_STR(norm("/%00"), "BAD");
    CHECK_EQ_STR(norm("/%0d%0a"), "BAD");
    CHECK_EQ_STR(norm("/%7f"), "BAD");
    char out[4];
    size_t n;
    CHECK_EQ_INT(tk_http_path_normalize(TK_SLICE_LIT("/abcdef"), out, sizeof out, &n),
                 TK_E_TOOBIG);
    /* Every prefix of a tricky path: never more output than input, never a crash. */
    static const char tricky[] = "/a/%2e%2e/b/./c//%2F../d%41?q=1";
    for (size_t i = 0; i <= sizeof tricky - 1; i++) {
        char *in = malloc(i ? i : 1); /* exact size: ASan catches an over-read */
        memcpy(in, tricky, i);
        char o[64];
        int rc = tk_http_path_normalize((tk_slice){in, i}, o, i, &n);
        CHECK(rc != 0 || n <= i);
        free(in);
    }
}

int main(void)
{
    RUN(test_load_and_precompute);
    RUN(test_match_order);
    RUN(test_rejects);
    RUN(test_normalize);
    return check_report();
}
