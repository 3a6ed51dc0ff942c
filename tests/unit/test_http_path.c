/*
 * Path and host normalisation (tokend/http_uri.h): what is resolved (dot
 * segments, slashes, escapes of ordinary bytes, host case, trailing dot,
 * ports), and every ambiguity class refused with its own reason: ';'
 * parameters raw and encoded (and stripped in strip mode), encoded slash,
 * backslash raw and encoded, bad escapes, controls, invalid and overlong
 * UTF-8, double encoding, fragments, ".." above the root; bad host names.
 * Every prefix of tricky inputs runs on an exact-size heap copy, so ASan
 * catches a read past the end.
 */
#include "tokend/http_uri.h"

#include "check.h"

#include <stdlib.h>

#define R TK_HTTP_PARAMS_REFUSE
#define S TK_HTTP_PARAMS_STRIP

/* The normalised path, or the flaw's name. */
static const char *norm(const char *in, enum tk_http_params params)
{
    static char out[512];
    size_t n = 0;
    enum tk_http_path_flaw flaw = TK_HTTP_PATH_OK;
    size_t len = strlen(in);
    char *copy = malloc(len ? len : 1); /* exact size */
    memcpy(copy, in, len);
    int rc = tk_http_path_normalize((tk_slice){copy, len}, params, out, sizeof out - 1, &n, &flaw);
    free(copy);
    if (rc != 0) {
        CHECK_EQ_INT(rc, TK_E_BADINPUT);
        CHECK(flaw != TK_HTTP_PATH_OK);
        return tk_http_path_flaw_name(flaw);
    }
    CHECK(flaw == TK_HTTP_PATH_OK);
    out[n] = '\0';
    return out;
}

static void test_resolves(void)
{
    static const char *const cases[][2] = {
        {"/", "/"},
        {"/a/b", "/a/b"},
        {"/a/b/", "/a/b/"},
        {"/a//b", "/a/b"},
        {"//", "/"},
        {"/a/./b", "/a/b"},
        {"/a/.", "/a/"},
        {"/a/b/../c", "/a/c"},
        {"/a/..", "/"},
        {"/a/b/..", "/a/"},
        {"/public/../admin", "/admin"},
        {"/public/%2e%2E/admin", "/admin"},
        {"/public/.%2e/admin", "/admin"},
        {"/%61dmin", "/admin"},
        {"/a?x=/../b", "/a"},
        {"/a?x=%zz;\\", "/a"}, /* the query is not the path */
        {"/a/...b", "/a/...b"},
        {"/a/..b/c", "/a/..b/c"},
        {"/caf%C3%A9", "/caf\xc3\xa9"},
        {"/caf\xc3\xa9", "/caf\xc3\xa9"},
        {"/%F0%9F%98%80", "/\xf0\x9f\x98\x80"},
        {"/100%25", "/100%"},
        {"/%25zz", "/%zz"}, /* a decoded '%' that starts no escape */
        {"/a%20b", "/a b"}, /* an encoded space is a byte like any other */
        {"/a%3Fb", "/a?b"}, /* an encoded '?' is part of the segment */
        {"/a:b@c,d=e", "/a:b@c,d=e"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(cases); i++) {
        CHECK_EQ_STR(norm(cases[i][0], R), cases[i][1]);
        CHECK_EQ_STR(norm(cases[i][0], S), cases[i][1]); /* no ';': both modes agree */
    }
}

/* Each ambiguity class, many spellings: refused with its reason in both
 * modes (parameters aside, which strip mode resolves below). */
static void test_refuses(void)
{
    static const char *const cases[][2] = {
        {"", "not_absolute"},
        {"a/b", "not_absolute"},
        {"?x", "not_absolute"},
        {"%2Fadmin", "not_absolute"},
        {"/a#../b", "fragment"},
        {"/a#", "fragment"},
        {"/a?q#f", "fragment"},
        {"#/admin", "fragment"},
        {"/a b", "bad_char"},
        {"/a\tb", "bad_char"},
        {"/a\x01", "bad_char"},
        {"/a\x7f", "bad_char"},
        {"/%", "bad_escape"},
        {"/%4", "bad_escape"},
        {"/a%4", "bad_escape"},
        {"/%zz", "bad_escape"},
        {"/%g0", "bad_escape"},
        {"/%0g", "bad_escape"},
        {"/%%41", "bad_escape"},
        {"/%-1", "bad_escape"},
        {"/%u002e", "bad_escape"},
        {"/a\\b", "backslash"},
        {"/admin\\..\\x", "backslash"},
        {"\\admin", "not_absolute"},
        {"/a%5Cb", "backslash"},
        {"/a%5cb", "backslash"},
        {"/..%5c..%5cadmin", "backslash"},
        {"/a%2Fb", "encoded_slash"},
        {"/a%2fb", "encoded_slash"},
        {"/public%2F..%2Fadmin", "encoded_slash"},
        {"/%2F", "encoded_slash"},
        {"/%00", "control"},
        {"/a%00.html", "control"},
        {"/%0d%0a", "control"},
        {"/%09", "control"},
        {"/%1F", "control"},
        {"/%7f", "control"},
        {"/%C2%80", "control"}, /* C1 controls */
        {"/%C2%9F", "control"},
        {"/%C0%AE%C0%AE/admin", "bad_utf8"}, /* overlong '.' */
        {"/%C0%AF", "bad_utf8"},             /* overlong '/' */
        {"/%E0%80%AE", "bad_utf8"},
        {"/%F0%80%80%AE", "bad_utf8"},
        {"/%C1%9C", "bad_utf8"}, /* overlong '\' */
        {"/%C3", "bad_utf8"},    /* truncated */
        {"/%C3a", "bad_utf8"},
        {"/%80", "bad_utf8"},          /* lone continuation */
        {"/%ED%A0%80", "bad_utf8"},    /* surrogate */
        {"/%F4%90%80%80", "bad_utf8"}, /* above U+10FFFF */
        {"/%F8%88%80%80%80", "bad_utf8"},
        {"/%FF", "bad_utf8"},
        {"/caf\xe9", "bad_utf8"}, /* raw Latin-1 */
        {"/\xc0\xae", "bad_utf8"},
        {"/%252e%252e/admin", "double_encoded"},
        {"/%252E", "double_encoded"},
        {"/a%252fb", "double_encoded"},
        {"/a%255cb", "double_encoded"},
        {"/a%253bb", "double_encoded"},
        {"/%2541", "double_encoded"},
        {"/%25%32%65", "double_encoded"}, /* decodes to "%2e" all the same */
        {"/..", "above_root"},
        {"/a/../..", "above_root"},
        {"/%2e%2e", "above_root"},
        {"/./../x", "above_root"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(cases); i++) {
        const char *got = norm(cases[i][0], R);
        if (strcmp(got, cases[i][1]) != 0) {
            fprintf(stderr, "  case %zu: %s\n", i, cases[i][0]);
        }
        CHECK_EQ_STR(got, cases[i][1]);
        CHECK_EQ_STR(norm(cases[i][0], S), cases[i][1]);
    }
}

static void test_parameters(void)
{
    /* raw or encoded, refused by default */
    static const char *const refused[] = {
        "/admin;jsessionid=x/users",
        "/admin;/users",
        "/;x/admin",
        "/admin;",
        "/a/b;c",
        "/..;/admin",
        "/admin%3bx/secret",
        "/admin%3Bx/secret",
        "/admin%3B",
        ";/admin",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(refused); i++) {
        const char *want = refused[i][0] == '/' ? "path_parameters" : "not_absolute";
        CHECK_EQ_STR(norm(refused[i], R), want);
    }
    /* strip: raw ";…" dropped from every segment (Tomcat), then matched */
    static const char *const stripped[][2] = {
        {"/admin;jsessionid=x/users", "/admin/users"},
        {"/admin;/users", "/admin/users"},
        {"/;x/admin", "/admin"},
        {"/admin;", "/admin"},
        {"/a;x/b;y/c;z", "/a/b/c"},
        {"/a;x=1;y=2/b", "/a/b"},
        {"/public/..;x/admin", "/admin"},
        {"/public;x/..;y/admin;z/", "/admin/"},
        {"/a;%2e%2e/b", "/a/b"},
        {"/a;x?y;z", "/a"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(stripped); i++) {
        CHECK_EQ_STR(norm(stripped[i][0], S), stripped[i][1]);
    }
    /* strip still refuses an encoded ';', and checks what it drops */
    CHECK_EQ_STR(norm("/admin%3bx/secret", S), "path_parameters");
    CHECK_EQ_STR(norm("/admin;x%3b/secret", S), "path_parameters");
    CHECK_EQ_STR(norm("/admin;x%2f/secret", S), "encoded_slash");
    CHECK_EQ_STR(norm("/admin;x\\/secret", S), "backslash");
    CHECK_EQ_STR(norm("/admin;%zz/secret", S), "bad_escape");
    CHECK_EQ_STR(norm("/..;/..;/x", S), "above_root");
}

static void test_bounds(void)
{
    char out[4];
    size_t n = 0;
    enum tk_http_path_flaw flaw;
    CHECK_EQ_INT(tk_http_path_normalize(TK_SLICE_LIT("/abcdef"), R, out, sizeof out, &n, NULL),
                 TK_E_TOOBIG);
    CHECK_EQ_INT(
        tk_http_path_normalize(TK_SLICE_LIT("/abc?long-query"), R, out, sizeof out, &n, &flaw), 0);
    CHECK_EQ_INT((long long)n, 4);
    CHECK_EQ_INT(tk_http_path_normalize(TK_SLICE_NULL, R, out, sizeof out, &n, &flaw),
                 TK_E_BADINPUT);
    /* Every prefix of tricky paths, both modes: output never longer than
     * the input, never a read past it (exact-size copies). */
    static const char *const tricky[] = {
        "/a/%2e%2e/b/./c//%2F../d%41?q=1",
        "/x;p=%3b/..;/%C0%AE/%252e%E2%82%AC\\#f",
        "/%F0%9F%98%80/%ED%A0%80/%C3",
    };
    for (size_t t = 0; t < TK_ARRAY_LEN(tricky); t++) {
        size_t len = strlen(tricky[t]);
        for (size_t i = 0; i <= len; i++) {
            char *in = malloc(i ? i : 1);
            char *o = malloc(i ? i : 1);
            memcpy(in, tricky[t], i);
            for (int m = (int)R; m <= (int)S; m++) {
                int rc = tk_http_path_normalize((tk_slice){in, i}, (enum tk_http_params)m, o, i, &n,
                                                NULL);
                CHECK(rc != 0 || (n >= 1 && n <= i && o[0] == '/'));
            }
            free(in);
            free(o);
        }
    }
}

/* ---- Hosts ------------------------------------------------------------------- */

static const char *host(const char *in)
{
    static char out[TK_HTTP_HOST_MAX + 16];
    char buf[TK_HTTP_HOST_MAX + 1];
    tk_http_host h;
    size_t len = strlen(in);
    char *copy = malloc(len ? len : 1);
    memcpy(copy, in, len);
    int rc = tk_http_host_normalize((tk_slice){copy, len}, buf, sizeof buf, &h);
    free(copy);
    if (rc != 0) {
        CHECK_EQ_INT(rc, TK_E_BADINPUT);
        return "BAD";
    }
    CHECK(h.name.p == buf && h.name.len <= TK_HTTP_HOST_MAX);
    snprintf(out, sizeof out, "%.*s|%u", (int)h.name.len, h.name.p, (unsigned)h.port);
    return out;
}

static void test_hosts(void)
{
    static const char *const good[][2] = {
        {"wiki.example.com", "wiki.example.com|0"},
        {"WIKI.Example.COM", "wiki.example.com|0"},
        {"wiki.example.com.", "wiki.example.com|0"},
        {"Wiki.Example.Com.:443", "wiki.example.com|443"},
        {"wiki.example.com:0443", "wiki.example.com|443"},
        {"wiki.example.com:", "wiki.example.com|0"},
        {"wiki.example.com:65535", "wiki.example.com|65535"},
        {"localhost", "localhost|0"},
        {"my_host-1.test", "my_host-1.test|0"},
        {"127.0.0.1:8080", "127.0.0.1|8080"},
        {"[::1]", "[::1]|0"},
        {"[::1]:443", "[::1]|443"},
        {"[::1]:", "[::1]|0"}, /* an empty port is no port (RFC 3986 §6.2.3) */
        {"[0:0:0:0:0:0:0:1]:80", "[::1]|80"},
        {"[2001:DB8::A]", "[2001:db8::a]|0"},
        {"[::ffff:a0a:a0a]", "[::ffff:10.10.10.10]|0"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(good); i++) {
        CHECK_EQ_STR(host(good[i][0]), good[i][1]);
    }
    static const char *const bad[] = {
        "",
        ".",
        ":443",
        "wiki.example.com..",
        ".wiki.example.com",
        "wiki..example.com",
        "wiki%2eexample.com",
        "wiki.example.com%2e",
        "%77iki.example.com",
        "wiki.example.com:https",
        "wiki.example.com:0",
        "wiki.example.com:65536",
        "wiki.example.com:99999999999",
        "wiki.example.com:443:443",
        "wiki.example.com:-1",
        "wiki.example.com: 443",
        "a,b",
        "wiki.example.com, evil.test",
        "user@wiki.example.com",
        "wiki.example.com/x",
        "wiki.example.com\\",
        "wiki example.com",
        "wiki.example.com\t",
        "w\xc3\xafki.example.com",
        "[::1",
        "[::1]x",
        "[]",
        "[v1.x]",
        "[fe80::1%25eth0]",
        "[fe80::1%eth0]",
        "[127.0.0.1]",
        "[::1]:0",
        "*",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        const char *got = host(bad[i]);
        if (strcmp(got, "BAD") != 0) {
            fprintf(stderr, "  host case %zu: %s\n", i, bad[i]);
        }
        CHECK_EQ_STR(got, "BAD");
    }
    /* Lengths: 63-byte labels and 253-byte names pass, one more fails. */
    char name[300];
    memset(name, 'a', 63);
    name[63] = '\0';
    CHECK(strcmp(host(name), "BAD") != 0);
    memset(name, 'a', 64);
    name[64] = '\0';
    CHECK_EQ_STR(host(name), "BAD");
    size_t n = 0;
    while (n + 64 <= 253) { /* 63 'a' + '.' per label */
        memset(name + n, 'a', 63);
        name[n + 63] = '.';
        n += 64;
    }
    memset(name + n, 'b', 253 - n);
    name[253] = '\0';
    CHECK(strcmp(host(name), "BAD") != 0);
    name[253] = '.';
    name[254] = '\0';
    CHECK(strcmp(host(name), "BAD") != 0); /* plus the root dot */
    name[253] = 'b';
    CHECK_EQ_STR(host(name), "BAD");

    /* Equality: a missing port is 443. */
    tk_http_host a = {TK_SLICE_LIT("w.test"), 0}, b = {TK_SLICE_LIT("w.test"), 443};
    tk_http_host c = {TK_SLICE_LIT("w.test"), 80}, d = {TK_SLICE_LIT("x.test"), 0};
    CHECK(tk_http_host_eq(&a, &b) && tk_http_host_eq(&b, &a));
    CHECK(!tk_http_host_eq(&a, &c) && !tk_http_host_eq(&a, &d));
}

/* Windows path equivalences (IIS): a segment ending in '.' or ' ', in any
 * number, encoded or raw, wherever it stands, and NTFS streams (":$"), as
 * forward-auth meets them: normalised first, then tk_http_path_windows_alias.
 * The dot segments themselves, dots inside a name and ':' without '$' are
 * not aliases. */
static bool windows(const char *raw)
{
    static char out[512];
    size_t n = 0;
    CHECK_EQ_INT(tk_http_path_normalize(tk_slice_from_str(raw), R, out, sizeof out - 1, &n, NULL),
                 0);
    return tk_http_path_windows_alias((tk_slice){out, n});
}

static void test_windows_aliases(void)
{
    static const char *const alias[] = {
        "/admin.",
        "/admin./x",
        "/admin../x",
        "/admin.../x",
        "/admin%2e/x",
        "/admin%2E%2e/x",
        "/admin%20/x",
        "/admin%20",
        "/admin%20%20/",
        "/admin%20./x",
        "/admin.%20/x",
        "/a/b/admin./c",
        "/x/../admin./y",
        "/...",
        "/%20",
        "/%20/admin",
        "/.%20/admin",
        "/admin::$DATA",
        "/admin::$DATA/x",
        "/admin%3a%3a$DATA",
        "/admin:$I30:$INDEX_ALLOCATION/x",
        "/admin%3A$I30%3A$INDEX_ALLOCATION",
        "/a/web.config::$DATA",
        "/a/b:$x",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(alias); i++) {
        if (!windows(alias[i])) {
            fprintf(stderr, "not an alias: %s\n", alias[i]);
        }
        CHECK(windows(alias[i]));
    }
    static const char *const plain[] = {
        "/",        "/admin",  "/admin/",        "/admin/./x", "/a/../admin", "/a/.b",
        "/a/b.c",   "/a/...b", "/.well-known/x", "/a/b:c",     "/a/$DATA",    "/a/b$:c",
        "/a%20b/c", "/v1.2/x", "/admin/.",       "/admin/..",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(plain); i++) {
        if (windows(plain[i])) {
            fprintf(stderr, "alias: %s\n", plain[i]);
        }
        CHECK(!windows(plain[i]));
    }
    /* The function on raw segments: the dot segments are never aliases. */
    CHECK(!tk_http_path_windows_alias(TK_SLICE_LIT("/./../a")));
    CHECK(tk_http_path_windows_alias(TK_SLICE_LIT("/./.../a")));
    CHECK_EQ_STR(tk_http_path_flaw_name(TK_HTTP_PATH_WINDOWS_ALIAS), "windows_alias");
}

/* 8.3 short names: what NTFS may have generated for a longer name (a base
 * of at most 8 characters ending in '~' and digits, at most 6 before the
 * '~', an extension of at most 3), whatever the case or the encoding of
 * '~' and the digits, and whatever stream follows a ':'. Names that cannot
 * be one ("~user", a tail that is not all digits, a base or extension too
 * long, two dots) stay plain. */
static void test_short_names(void)
{
    static const char *const alias[] = {
        "/ADMINI~1",
        "/ADMINI~1/x",
        "/admini~1/x",
        "/AdMiNi~1/x",
        "/ADMINI%7E1/x",
        "/ADMINI%7e1/x",
        "/ADMINI~%31/x",
        "/%41DMINI~1/x",
        "/a/b/ADMINI~1",
        "/x/../ADMINI~1/y",
        "/WEB~1.CON",
        "/web~1.con/x",
        "/DEFAUL~1.ASP",
        "/a/FILE~1.H",
        "/ADMIN~12/x",
        "/ADM~1234/x",
        "/A~123456",
        "/AD1F2~1/x",
        "/A~1",
        "/~1",
        "/~12345~1",
        "/A~B~1/x",
        "/A~1~2/x",
        "/~~1",
        "/ADMINI~1:x",
        "/ADMINI~1.TXT:stream",
        "/%C3%89COLE~1/x", /* "ÉCOLE~1": 7 characters, 8 bytes */
        "/%C3%89%C3%89%C3%89%C3%89%C3%89%C3%89~1",
        "/ADMINI~0",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(alias); i++) {
        if (!windows(alias[i])) {
            fprintf(stderr, "not a short name: %s\n", alias[i]);
        }
        CHECK(windows(alias[i]));
    }
    static const char *const plain[] = {
        "/~user",
        "/~user/x",
        "/~alice/public_html",
        "/~user1",
        "/home/~bob~/x",
        "/a~",
        "/a~/x",
        "/~",
        "/~.txt",
        "/ADMINI~1X/x",
        "/ADMINI~12/x",
        "/ADMINIS~1/x",
        "/A~1234567",
        "/ADMINI~1.HTML",
        "/ADMINI~1.tar.gz",
        "/v~2.0.1",
        "/.~1",
        "/a.b~1",
        "/x~a1",
        "/%C3%89%C3%89%C3%89%C3%89%C3%89%C3%89%C3%89~1",
        "/ADMINI~1.%C3%A9%C3%A9%C3%A9%C3%A9",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(plain); i++) {
        if (windows(plain[i])) {
            fprintf(stderr, "short name: %s\n", plain[i]);
        }
        CHECK(!windows(plain[i]));
    }
}

int main(void)
{
    RUN(test_resolves);
    RUN(test_refuses);
    RUN(test_parameters);
    RUN(test_bounds);
    RUN(test_hosts);
    RUN(test_windows_aliases);
    RUN(test_short_names);
    return check_report();
}
