/*
 * Unit tests for Client ID Metadata Documents, the pure half (oauth_cimd.h):
 * every client_id URL rule (each refused form, and the forms that pass), the
 * store key (fixed length, prefix, distinct per URL, never a tkc_ id), the
 * JSON content types, the host lists, and the document's rules beyond
 * RFC 7591 (client_id equal to the URL byte for byte, no secret, only the
 * none method, the size cap), with the registration checks still applied.
 */
#include "check.h"

#include "tokend/oauth_cimd.h"

#include <stdio.h>
#include <stdlib.h>

#define URL "https://client.example.com/oauth/metadata.json"

static bool url_ok(const char *u)
{
    tk_slice host;
    const char *why = NULL;
    int rc = tk_oauth_cimd_url_check(tk_slice_from_str(u), &host, &why);
    if (rc != 0) {
        CHECK(why != NULL && why[0] != '\0' && host.p == NULL);
    }
    return rc == 0;
}

static void test_url_accepted(void)
{
    tk_slice host;
    const char *why;
    CHECK_EQ_INT(tk_oauth_cimd_url_check(TK_SLICE_LIT(URL), &host, &why), 0);
    CHECK_SLICE(host, "client.example.com");
    CHECK(url_ok("https://a.example:8443/c"));
    CHECK(url_ok("https://127.0.0.1:9/client.json"));
    CHECK(url_ok("https://[::1]:9/client.json"));
    CHECK(url_ok("https://a.example/c?v=1"));       /* a query is allowed */
    CHECK(url_ok("https://a.example/a.b/..c/c..")); /* dots inside a segment are fine */
    CHECK_EQ_INT(tk_oauth_cimd_url_check(TK_SLICE_LIT("https://[::1]:9/x"), &host, &why), 0);
    CHECK_SLICE(host, "[::1]");
}

static void test_url_refused(void)
{
    static const char *const bad[] = {
        "http://a.example/c",          /* not https */
        "HTTPS://a.example/c",         /* the scheme is compared exactly */
        "ftp://a.example/c",           /* another scheme */
        "https://a.example",           /* no path */
        "https://a.example/",          /* the root is no path */
        "https://user@a.example/c",    /* userinfo */
        "https://user:pw@a.example/c", /* userinfo with a password */
        "https://a.example/c#frag",    /* fragment */
        "https://a.example/c#",        /* empty fragment */
        "https://a.example/./c",       /* dot segments, each way of writing them */
        "https://a.example/../c",
        "https://a.example/c/.",
        "https://a.example/c/..",
        "https://a.example/%2e/c",
        "https://a.example/%2E%2E/c",
        "https://a.example/.%2e/c",
        "https://a.example/c/%2e",
        "https:///c",              /* no host */
        "https:a.example/c",       /* no authority */
        "https://a.example/c d",   /* a space */
        "https://a.example/c\x7f", /* a control */
        "",
        "https://",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        if (url_ok(bad[i])) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            CHECK(false);
        }
    }
    /* The length limit, at the boundary. */
    static char u[TK_CIMD_URL_MAX + 2];
    memcpy(u, "https://a.example/", 18);
    memset(u + 18, 'x', TK_CIMD_URL_MAX - 18);
    u[TK_CIMD_URL_MAX] = '\0';
    CHECK(url_ok(u));
    u[TK_CIMD_URL_MAX] = 'x';
    u[TK_CIMD_URL_MAX + 1] = '\0';
    CHECK(!url_ok(u));
}

static void test_candidate_and_key(void)
{
    CHECK(tk_oauth_cimd_candidate(TK_SLICE_LIT("https://a/b")));
    CHECK(tk_oauth_cimd_candidate(TK_SLICE_LIT("http://a/b")));
    CHECK(tk_oauth_cimd_candidate(TK_SLICE_LIT("HTTPS:x")));
    CHECK(!tk_oauth_cimd_candidate(TK_SLICE_LIT("tkc_abc")));
    CHECK(!tk_oauth_cimd_candidate(TK_SLICE_LIT("http")));
    char k1[TK_CIMD_KEY_LEN + 1], k2[TK_CIMD_KEY_LEN + 1];
    tk_oauth_cimd_key(TK_SLICE_LIT(URL), k1);
    tk_oauth_cimd_key(TK_SLICE_LIT(URL "x"), k2);
    CHECK_EQ_INT((int)strlen(k1), TK_CIMD_KEY_LEN);
    CHECK(memcmp(k1, "tkm_", 4) == 0 && strcmp(k1, k2) != 0);
    CHECK(tk_oauth_cimd_is_key(tk_slice_from_str(k1)));
    CHECK(!tk_oauth_cimd_is_key(TK_SLICE_LIT("tkc_abc")));
    CHECK(tk_oauth_vschar_valid(tk_slice_from_str(k1), TK_ID_MAX));
    char again[TK_CIMD_KEY_LEN + 1];
    tk_oauth_cimd_key(TK_SLICE_LIT(URL), again);
    CHECK_EQ_STR(k1, again); /* deterministic: the key is found again at /token */
}

static void test_content_type_and_hosts(void)
{
    CHECK(tk_oauth_cimd_json_type(TK_SLICE_LIT("application/json")));
    CHECK(tk_oauth_cimd_json_type(TK_SLICE_LIT("Application/JSON; charset=utf-8")));
    CHECK(tk_oauth_cimd_json_type(TK_SLICE_LIT("application/client-metadata+json")));
    CHECK(!tk_oauth_cimd_json_type(TK_SLICE_LIT("text/html")));
    CHECK(!tk_oauth_cimd_json_type(TK_SLICE_LIT("text/json")));
    CHECK(!tk_oauth_cimd_json_type(TK_SLICE_LIT("application/jsonx")));
    CHECK(!tk_oauth_cimd_json_type(TK_SLICE_LIT("application/+json")));
    CHECK(!tk_oauth_cimd_json_type(TK_SLICE_NULL));
    const char *list = " a.example  127.0.0.1 [::1] ";
    CHECK(tk_oauth_cimd_host_listed(TK_SLICE_LIT("A.Example"), list));
    CHECK(tk_oauth_cimd_host_listed(TK_SLICE_LIT("127.0.0.1"), list));
    CHECK(tk_oauth_cimd_host_listed(TK_SLICE_LIT("[::1]"), list));
    CHECK(!tk_oauth_cimd_host_listed(TK_SLICE_LIT("b.a.example"), list));
    CHECK(!tk_oauth_cimd_host_listed(TK_SLICE_LIT("a.exampl"), list));
    CHECK(!tk_oauth_cimd_host_listed(TK_SLICE_LIT("127.0.0.10"), list));
    CHECK(!tk_oauth_cimd_host_listed(TK_SLICE_LIT("a.example"), ""));
    CHECK(!tk_oauth_cimd_host_listed(TK_SLICE_LIT("a.example"), NULL));
}

static tk_oauth_client_meta m;
static tk_oauth_err e;

static int doc(const char *d)
{
    e = (tk_oauth_err){0};
    memset(&m, 0x5a, sizeof m);
    return tk_oauth_cimd_parse(d, strlen(d), TK_SLICE_LIT(URL), &m, &e);
}

static bool zeroed(void)
{
    static const tk_oauth_client_meta zero;
    return memcmp(&m, &zero, sizeof m) == 0;
}

#define GOOD_REST "\"client_name\":\"Agent\",\"redirect_uris\":[\"http://127.0.0.1:9/cb\"]"

static void test_document_accepted(void)
{
    CHECK_EQ_INT(doc("{\"client_id\":\"" URL "\"," GOOD_REST "}"), 0);
    CHECK_EQ_INT(m.auth_method, TK_OAUTH_AUTH_NONE); /* absent: public (no secret can exist) */
    CHECK_EQ_STR(m.client_name, "Agent");
    CHECK_EQ_INT((int)m.redirect_count, 1);
    CHECK(m.native);
    CHECK_EQ_INT(doc("{\"client_id\":\"" URL "\",\"token_endpoint_auth_method\":\"none\","
                     "\"grant_types\":[\"authorization_code\",\"refresh_token\"],"
                     "\"logo_uri\":\"https://x/y.png\"," GOOD_REST "}"),
                 0);
    CHECK_EQ_INT(m.auth_method, TK_OAUTH_AUTH_NONE);
}

#define REFUSED(d, want_code)                                                                      \
    do {                                                                                           \
        CHECK_EQ_INT(doc(d), TK_E_INVALID);                                                        \
        CHECK_EQ_INT(e.code, want_code);                                                           \
        CHECK(e.description != NULL && e.description[0] != '\0');                                  \
        CHECK(zeroed());                                                                           \
    } while (0)

static void test_document_refused(void)
{
    const int meta = TK_OAUTH_INVALID_CLIENT_METADATA;
    REFUSED("{" GOOD_REST "}", meta);                            /* no client_id */
    REFUSED("{\"client_id\":\"" URL "/\"," GOOD_REST "}", meta); /* another URL */
    REFUSED("{\"client_id\":\"https://client.example.com/oauth/metadata.JSON\"," GOOD_REST "}",
            meta);                                               /* case */
    REFUSED("{\"client_id\":\"" URL " \"," GOOD_REST "}", meta); /* a space */
    REFUSED("{\"client_id\":7," GOOD_REST "}", meta);            /* not a string */
    REFUSED("{\"client_id\":\"" URL "\",\"client_secret\":\"s\"," GOOD_REST "}", meta);
    REFUSED("{\"client_id\":\"" URL "\",\"client_secret_expires_at\":0," GOOD_REST "}", meta);
    static const char *const methods[] = {"client_secret_basic", "client_secret_post",
                                          "client_secret_jwt",   "private_key_jwt",
                                          "tls_client_auth",     ""};
    for (size_t i = 0; i < TK_ARRAY_LEN(methods); i++) {
        char d[512];
        snprintf(d, sizeof d,
                 "{\"client_id\":\"" URL "\",\"token_endpoint_auth_method\":\"%s\"," GOOD_REST "}",
                 methods[i]);
        REFUSED(d, meta);
    }
    REFUSED("{\"client_id\":\"" URL "\",\"token_endpoint_auth_method\":1," GOOD_REST "}", meta);
    REFUSED("{\"client_id\":\"" URL "\",\"client_id\":\"" URL "\"," GOOD_REST "}", meta);
    REFUSED("[\"" URL "\"]", meta);
    REFUSED("not json", meta);
    REFUSED("", meta);
    /* The registration rules still apply: a redirect URI a web client may not have. */
    REFUSED("{\"client_id\":\"" URL "\",\"redirect_uris\":[\"http://evil.example/cb\"]}",
            TK_OAUTH_INVALID_REDIRECT_URI);
    REFUSED("{\"client_id\":\"" URL "\",\"redirect_uris\":[\"https://a/cb#f\"]}",
            TK_OAUTH_INVALID_REDIRECT_URI);
    REFUSED("{\"client_id\":\"" URL "\",\"grant_types\":[\"client_credentials\"]}", meta);
    /* The size cap, at the boundary: padding in a member we ignore. */
    static char big[TK_CIMD_DOC_MAX + 2];
    const char *head = "{\"client_id\":\"" URL "\"," GOOD_REST ",\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(big, head, hl);
    memset(big + hl, 'x', TK_CIMD_DOC_MAX - hl - 2);
    memcpy(big + TK_CIMD_DOC_MAX - 2, "\"}", 3);
    CHECK_EQ_INT((int)strlen(big), TK_CIMD_DOC_MAX);
    CHECK_EQ_INT(doc(big), 0);
    memcpy(big + TK_CIMD_DOC_MAX - 2, "x\"}", 4);
    REFUSED(big, meta);
}

int main(void)
{
    RUN(test_url_accepted);
    RUN(test_url_refused);
    RUN(test_candidate_and_key);
    RUN(test_content_type_and_hosts);
    RUN(test_document_accepted);
    RUN(test_document_refused);
    return check_report();
}
