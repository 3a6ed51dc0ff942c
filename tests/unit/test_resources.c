/*
 * Protected resources: the loader's checks, the precomputed challenges and
 * metadata URLs (RFC 9728 §3.1 path insertion), the match order (host
 * specificity, then the longest prefix on a segment boundary), method rules
 * and path normalisation (every truncation point of a tricky path too).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

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
    "   \"identity_headers\": {\"client\": \"X-Agent\", \"issuer\": \"X-Idp\"}},"
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

/* The id of the resource matching host and path as a request sends them
 * (both normalised first), "none", or "BAD" when either is refused. */
static const char *match_id(const tk_resources *rs, const char *host, const char *path)
{
    char hb[TK_HTTP_HOST_MAX + 1], pb[512];
    tk_http_host h;
    size_t n;
    if (tk_http_host_normalize(tk_slice_from_str(host), hb, sizeof hb, &h) != 0 ||
        tk_http_path_normalize(tk_slice_from_str(path), tk_resources_path_params(rs), pb, sizeof pb,
                               &n, NULL) != 0) {
        return "BAD";
    }
    const tk_resource *r = tk_resources_match(rs, &h, (tk_slice){pb, n});
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
                                       "scope=\"wiki:read wiki:write\", "
                                       "resource_metadata=\"https://wiki.test/.well-known/"
                                       "oauth-protected-resource\"\r\n");
    CHECK_EQ_STR(w->challenge_invalid, "WWW-Authenticate: Bearer realm=\"wiki\", "
                                       "error=\"invalid_token\", scope=\"wiki:read wiki:write\", "
                                       "resource_metadata=\"https://"
                                       "wiki.test/.well-known/oauth-protected-resource\"\r\n");
    CHECK_EQ_INT(w->nscopes, 2);
    CHECK_SLICE(w->scopes[1], "wiki:write");
    CHECK_SLICE(w->ident[TK_IDENT_SUBJECT], "X-User: ");
    CHECK_SLICE(w->ident[TK_IDENT_CLIENT], "X-Auth-Client: ");
    CHECK_SLICE(w->ident[TK_IDENT_ISSUER], "X-Auth-Issuer: "); /* the default name */
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
    CHECK_SLICE(a->ident[TK_IDENT_ISSUER], "X-Idp: ");
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
    tk_http_host a = {TK_SLICE_LIT("a"), 0};
    CHECK(tk_resources_match(NULL, &a, TK_SLICE_LIT("/")) == NULL);

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

static void test_hosts_normalised(void)
{
    tk_resources *rs = load(good);
    TK_ASSERT(rs != NULL);
    /* One host, many spellings: never the "*" resource's /api or none. */
    static const char *const wiki[] = {"wiki.test",     "WIKI.TEST",      "wiki.test.",
                                       "Wiki.Test.:80", "wiki.test:0443", "wiki.test:"};
    for (size_t i = 0; i < TK_ARRAY_LEN(wiki); i++) {
        CHECK_EQ_STR(match_id(rs, wiki[i], "/api"), "https://wiki.test/");
    }
    /* host:port: only that port; no port counts as 443. */
    CHECK_EQ_STR(match_id(rs, "wiki.test.:08443", "/admin"), "https://wiki.test:8443/");
    CHECK_EQ_STR(match_id(rs, "other.test.", "/api/v1/x"), "https://other.test/api/v1");
    static const char *const bad[] = {"wiki%2etest", "wiki.test..",          "wiki..test",
                                      "wiki.test:x", "wiki.test,other.test", "%77iki.test",
                                      "wiki.test:0"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK_EQ_STR(match_id(rs, bad[i], "/api"), "BAD");
    }
    /* A resource whose host names port 443 takes a request without a port. */
    tk_resources *p = load("{\"resources\": [{\"resource\": \"https://w.test/\", \"host\": "
                           "\"W.test.:443\"}, {\"resource\": \"https://any.test/\", \"host\": "
                           "\"*\"}]}");
    CHECK_SLICE(tk_resources_at(p, 0)->host, "w.test:443");
    CHECK_EQ_STR(match_id(p, "w.test", "/"), "https://w.test/");
    CHECK_EQ_STR(match_id(p, "w.test:443", "/"), "https://w.test/");
    CHECK_EQ_STR(match_id(p, "w.test:8443", "/"), "https://any.test/");
    /* Metadata lookup compares the identifier's host the same way. */
    tk_slice root = TK_SLICE_LIT("/.well-known/oauth-protected-resource");
    CHECK(tk_resources_by_metadata_path(p, root, TK_SLICE_LIT("W.TEST.:443")) ==
          tk_resources_at(p, 0));
    CHECK(tk_resources_by_metadata_path(p, root, TK_SLICE_LIT("any.test.")) ==
          tk_resources_at(p, 1));
    CHECK(tk_resources_by_metadata_path(p, root, TK_SLICE_LIT("any%2etest")) == NULL);
    tk_resources_free(p);
    tk_resources_free(rs);
}

/* Identifiers that differ only by path load without path_prefix: each
 * covers its own path. A remaining conflict names what to add. */
static void test_default_prefix(void)
{
    tk_resources *rs = load("{\"resources\": ["
                            " {\"resource\": \"https://w.test\"},"
                            " {\"resource\": \"https://w.test/a\"},"
                            " {\"resource\": \"https://w.test/b/\"},"
                            " {\"resource\": \"https://w.test/b/c\"}]}");
    TK_ASSERT(rs != NULL);
    CHECK_SLICE(tk_resources_at(rs, 0)->prefix, "/");
    CHECK_SLICE(tk_resources_at(rs, 1)->prefix, "/a");
    CHECK_SLICE(tk_resources_at(rs, 2)->prefix, "/b");
    CHECK_SLICE(tk_resources_at(rs, 3)->prefix, "/b/c");
    CHECK_EQ_STR(match_id(rs, "w.test", "/"), "https://w.test");
    CHECK_EQ_STR(match_id(rs, "w.test", "/a"), "https://w.test/a");
    CHECK_EQ_STR(match_id(rs, "w.test", "/a/x"), "https://w.test/a");
    CHECK_EQ_STR(match_id(rs, "w.test", "/ab"), "https://w.test");
    CHECK_EQ_STR(match_id(rs, "w.test", "/b"), "https://w.test/b/");
    CHECK_EQ_STR(match_id(rs, "w.test", "/b/x"), "https://w.test/b/");
    CHECK_EQ_STR(match_id(rs, "w.test", "/b/c/d"), "https://w.test/b/c");
    tk_resources_free(rs);

    static const char conflict[] = "{\"resources\": [{\"resource\": \"https://w.test/a\"}, "
                                   "{\"resource\": \"https://w.test/a/\"}]}";
    char err[512];
    rs = NULL;
    CHECK_EQ_INT(tk_resources_parse(conflict, sizeof conflict - 1, &rs, err, sizeof err),
                 TK_E_INVALID);
    CHECK_EQ_STR(err, "resources[0] and [1]: both cover host \"w.test\" and path prefix \"/a\" "
                      "(the default: each identifier's path); give one of them a "
                      "\"path_prefix\" (or \"host\") of its own");
    static const char unnormal[] = "{\"resources\": [{\"resource\": \"https://w.test/a;x\"}]}";
    CHECK_EQ_INT(tk_resources_parse(unnormal, sizeof unnormal - 1, &rs, err, sizeof err),
                 TK_E_INVALID);
    CHECK(strstr(err, "give \"path_prefix\"") != NULL);
    /* ...and an explicit prefix resolves it. */
    tk_resources_free(load("{\"resources\": [{\"resource\": \"https://w.test/a;x\", "
                           "\"path_prefix\": \"/a\"}]}"));
}

static void test_path_parameters_option(void)
{
    tk_resources *rs = load("{\"resources\": []}");
    CHECK_EQ_INT(tk_resources_path_params(rs), TK_HTTP_PARAMS_REFUSE);
    tk_resources_free(rs);
    CHECK_EQ_INT(tk_resources_path_params(NULL), TK_HTTP_PARAMS_REFUSE);
    rs = load("{\"path_parameters\": \"refuse\", \"resources\": []}");
    CHECK_EQ_INT(tk_resources_path_params(rs), TK_HTTP_PARAMS_REFUSE);
    tk_resources_free(rs);
    rs = load("{\"path_parameters\": \"strip\", \"resources\": ["
              " {\"resource\": \"https://w.test/\"},"
              " {\"resource\": \"https://w.test/admin\"}]}");
    CHECK_EQ_INT(tk_resources_path_params(rs), TK_HTTP_PARAMS_STRIP);
    CHECK_EQ_STR(match_id(rs, "w.test", "/admin;jsessionid=x/users"), "https://w.test/admin");
    CHECK_EQ_STR(match_id(rs, "w.test", "/admin%3bx/users"), "BAD");
    tk_resources_free(rs);
}

/* "windows_paths": refuse by default (and without a table), "allow" when said. */
static void test_windows_paths_option(void)
{
    CHECK(tk_resources_windows_refused(NULL));
    tk_resources *rs = load("{\"resources\": []}");
    CHECK(tk_resources_windows_refused(rs));
    tk_resources_free(rs);
    rs = load("{\"windows_paths\": \"refuse\", \"resources\": []}");
    CHECK(tk_resources_windows_refused(rs));
    tk_resources_free(rs);
    rs = load("{\"windows_paths\": \"allow\", \"resources\": []}");
    CHECK(!tk_resources_windows_refused(rs));
    tk_resources_free(rs);
    static const char *const bad[] = {"{\"windows_paths\": \"Allow\", \"resources\": []}",
                                      "{\"windows_paths\": true, \"resources\": []}",
                                      "{\"windows_paths\": \"\", \"resources\": []}"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        char err[256] = "";
        rs = NULL;
        CHECK_EQ_INT(tk_resources_parse(bad[i], strlen(bad[i]), &rs, err, sizeof err),
                     TK_E_INVALID);
        CHECK(rs == NULL);
    }
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
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"identity_headers\": {\"issuer\": "
        "\"X\\r\\nY\"}}]}",
        "{\"trusted_headers\": [\"Host\"], \"resources\": []}",
        "{\"resources\": [{\"resource\": \"https://w.test/\"}, {\"resource\": "
        "\"https://w.test/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\"}, {\"resource\": "
        "\"https://w.test\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/a\"}, {\"resource\": "
        "\"https://w.test/a/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/a\"}, {\"resource\": "
        "\"https://W.Test./b\", \"path_prefix\": \"/a\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/a;x\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/a%2Fb\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/a/../b\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test//a\"}]}",
        "{\"resources\": [{\"resource\": \"https://w%2etest/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w..test/\"}]}",
        "{\"resources\": [{\"resource\": \"https://u@w.test/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test:0/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test:99999/\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"host\": \"w%2etest\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"host\": \"w.test..\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"host\": \"*.test\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"path_prefix\": \"/a;b\"}]}",
        "{\"resources\": [{\"resource\": \"https://w.test/\", \"path_prefix\": \"/a\\\\b\"}]}",
        "{\"path_parameters\": \"keep\", \"resources\": []}",
        "{\"path_parameters\": true, \"resources\": []}",
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

/* Method keys of required_scopes: forward-auth compares the request's method
 * exactly and takes only [A-Z0-9_-], so a key in lower case ("get") or with
 * any other token character could never match, and its requests would get
 * the "*" rule instead. Each is refused at load, naming the file, the
 * resource and the key; the methods that can match still load. */
static void test_method_keys(void)
{
    static const char *const never[] = {"get", "Get", "gET",  "delete", "post",   "G.T",   "GET!",
                                        "M~",  "a",   "PUT|", "GE'T",   "PATCH+", "x-get", "Ü"};
    char path[] = "/tmp/tokend-res-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    for (size_t i = 0; i < TK_ARRAY_LEN(never); i++) {
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        fprintf(f,
                "{\"resources\": [{\"resource\": \"https://w.test/\"}, {\"resource\": "
                "\"https://m.test/\", \"required_scopes\": {\"GET\": [\"r\"], \"%s\": [\"w\"]}}]}",
                never[i]);
        fclose(f);
        tk_resources *rs = NULL;
        char err[512] = "";
        int rc = tk_resources_load(path, &rs, err, sizeof err);
        if (rc != TK_E_INVALID) {
            fprintf(stderr, "accepted method key \"%s\"\n", never[i]);
        }
        CHECK_EQ_INT(rc, TK_E_INVALID);
        CHECK(rs == NULL);
        tk_resources_free(rs);
        char key[32];
        snprintf(key, sizeof key, "\"%s\"", never[i]);
        CHECK(strstr(err, path) != NULL);              /* the file */
        CHECK(strstr(err, "resources[1]") != NULL);    /* the resource, by index */
        CHECK(strstr(err, "https://m.test/") != NULL); /* and by identifier */
        CHECK(strstr(err, key) != NULL);               /* the key */
    }
    /* A lower-case method is told how to write it. */
    char err[512] = "";
    tk_resources *rs = NULL;
    const char *lower = "{\"resources\": [{\"resource\": \"https://m.test/\", \"required_scopes\": "
                        "{\"get\": [\"r\"]}}]}";
    CHECK_EQ_INT(tk_resources_parse(lower, strlen(lower), &rs, err, sizeof err), TK_E_INVALID);
    CHECK(strstr(err, "upper case") != NULL);
    /* What can match loads: registered methods, extension methods, "*". */
    rs = load("{\"resources\": [{\"resource\": \"https://m.test/\", \"required_scopes\": "
              "{\"GET\": [\"r\"], \"PROPFIND\": [\"r\"], \"M-SEARCH\": [\"r\"], \"X_1\": [\"r\"], "
              "\"*\": [\"w\"]}}]}");
    CHECK(rs != NULL);
    tk_resources_free(rs);
    unlink(path);
}

int main(void)
{
    RUN(test_load_and_precompute);
    RUN(test_match_order);
    RUN(test_rejects);
    RUN(test_hosts_normalised);
    RUN(test_default_prefix);
    RUN(test_path_parameters_option);
    RUN(test_windows_paths_option);
    RUN(test_method_keys);
    return check_report();
}
