/*
 * Tests of the HTTP layer: request parsing (good requests, every truncation
 * point, every malformed variant with its exact status, limits at the
 * boundary), Basic and Bearer credentials, and the response writer.
 * Every parse runs on input placed against the end of a readable mapping
 * followed by a PROT_NONE guard page, so reading one byte too far crashes.
 */
#include "tokend/http.h"

#include "check.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- Guard-page placement -------------------------------------------------- */

#define ARENA_SIZE (256 * 1024)

static char *arena;      /* ARENA_SIZE readable bytes, then a guard page */
static char big[131072]; /* scratch for generated requests */

static void arena_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m =
        mmap(NULL, ARENA_SIZE + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + ARENA_SIZE, page, PROT_NONE) != 0) {
        perror("mmap");
        exit(1);
    }
    arena = m;
}

/* Copy data so that its last byte is the last readable byte. */
static const char *place(const char *data, size_t len)
{
    if (len > ARENA_SIZE) {
        fprintf(stderr, "input too large for the arena\n");
        exit(1);
    }
    char *p = arena + ARENA_SIZE - len;
    memcpy(p, data, len);
    return p;
}

static tk_http_request req; /* large (headers array): keep it off the stack */

static int parse_n(const char *data, size_t len, size_t max_body)
{
    return tk_http_parse(place(data, len), len, max_body, &req);
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s), TK_HTTP_BODY_MAX);
}

/* Every prefix shorter than len must give 0 or the final verdict; the whole
 * input must give `want`. A complete parse must not appear early. */
static void check_prefixes(const char *data, size_t len, size_t max_body, int want, size_t step)
{
    int bad = 0;
    for (size_t n = 0; n < len; n += (n + step < len && n > 64 && len - n > 64) ? step : 1) {
        int rc = parse_n(data, n, max_body);
        if (!(rc == 0 || (want < 0 && rc == want))) {
            if (bad++ < 3) {
                fprintf(stderr, "prefix %zu of %zu: got %d, want 0 or %d\n", n, len, rc, want);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(parse_n(data, len, max_body), want);
}

/* ---- Good requests --------------------------------------------------------- */

static const char get_req[] = "GET /healthz HTTP/1.1\r\nHost: localhost:7662\r\n"
                              "User-Agent: t/1\r\nAccept: */*\r\n\r\n";

static const char post_req[] = "POST /introspect HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\n"
                               "Authorization: Basic dGtjX2E6dGtkX2NzX2I=\r\n"
                               "Content-Type: application/x-www-form-urlencoded\r\n"
                               "Content-Length: 15\r\n"
                               "\r\n"
                               "token=tkd_at_xy";

static void test_get(void)
{
    size_t len = strlen(get_req);
    CHECK_EQ_INT(parse(get_req), len);
    CHECK_EQ_INT(req.method, TK_HTTP_GET);
    CHECK_SLICE(req.method_str, "GET");
    CHECK_SLICE(req.target, "/healthz");
    CHECK_SLICE(req.path, "/healthz");
    CHECK(req.query.p == NULL && req.query.len == 0);
    CHECK_EQ_INT(req.minor, 1);
    CHECK(req.keep_alive);
    CHECK_EQ_INT(req.nheaders, 3);
    CHECK_SLICE(req.headers[0].name, "Host");
    CHECK_SLICE(req.headers[0].value, "localhost:7662");
    CHECK_SLICE(req.headers[2].value, "*/*");
    CHECK_SLICE(req.host, "localhost:7662");
    CHECK(req.authorization.p == NULL && req.content_type.p == NULL);
    CHECK_EQ_INT(req.content_length, 0);
    CHECK_EQ_INT(req.body.len, 0);
}

static void test_post_body(void)
{
    size_t len = strlen(post_req);
    CHECK_EQ_INT(parse(post_req), len);
    CHECK_EQ_INT(req.method, TK_HTTP_POST);
    CHECK_SLICE(req.path, "/introspect");
    CHECK_SLICE(req.authorization, "Basic dGtjX2E6dGtkX2NzX2I=");
    CHECK_SLICE(req.content_type, "application/x-www-form-urlencoded");
    CHECK_EQ_INT(req.content_length, 15);
    CHECK_SLICE(req.body, "token=tkd_at_xy");
    CHECK(req.body.p + req.body.len == arena + ARENA_SIZE);
    /* A body shorter than Content-Length needs more, and says how much:
     * the server waits for all of it instead of reparsing the head. */
    CHECK_EQ_INT(parse_n(post_req, len - 1, TK_HTTP_BODY_MAX), 0);
    CHECK_EQ_INT(req.content_length, 15);
    CHECK(req.body.p != NULL && req.body.len == 0);
    CHECK_EQ_INT((size_t)(req.body.p - (arena + ARENA_SIZE - (len - 1))) + req.content_length, len);
    /* Content-Length: 0 and absent Content-Length both mean an empty body. */
    CHECK_EQ_INT(parse("POST /revoke HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 53);
    CHECK_EQ_INT(req.body.len, 0);
    CHECK_EQ_INT(parse("POST /revoke HTTP/1.1\r\nHost: a\r\n\r\nXYZ"), 34);
    CHECK_EQ_INT(req.content_length, 0);
    /* Leading zeros are still 1*DIGIT. */
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 002\r\n\r\nab"), 51);
    CHECK_SLICE(req.body, "ab");
}

static void test_pipelined(void)
{
    char two[1024];
    size_t a = strlen(post_req), b = strlen(get_req);
    memcpy(two, post_req, a);
    memcpy(two + a, get_req, b);
    const char *p = place(two, a + b);
    int rc = tk_http_parse(p, a + b, TK_HTTP_BODY_MAX, &req);
    CHECK_EQ_INT(rc, a);
    CHECK_SLICE(req.body, "token=tkd_at_xy");
    rc = tk_http_parse(p + a, b, TK_HTTP_BODY_MAX, &req);
    CHECK_EQ_INT(rc, b);
    CHECK_EQ_INT(req.method, TK_HTTP_GET);
    CHECK_SLICE(req.path, "/healthz");
    /* The second request, cut short, needs more. */
    CHECK_EQ_INT(tk_http_parse(p + a, b - 1, TK_HTTP_BODY_MAX, &req), 0);
}

static void test_keep_alive(void)
{
    CHECK(parse("GET / HTTP/1.0\r\n\r\n") == 18 && !req.keep_alive && req.minor == 0);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") > 0 && req.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") > 0 && req.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n") > 0 && !req.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n") > 0 && !req.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alivex\r\n\r\n") > 0 && !req.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n") > 0 && req.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") > 0 && !req.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo ,CLOSE\r\n\r\n") > 0 &&
          !req.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: close\r\n\r\n") > 0 &&
          !req.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n") > 0 && req.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n") > 0 &&
          req.keep_alive);
}

static void test_target_split(void)
{
    CHECK(parse("GET /a/b?x=1&y=%2F HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_SLICE(req.target, "/a/b?x=1&y=%2F");
    CHECK_SLICE(req.path, "/a/b");
    CHECK_SLICE(req.query, "x=1&y=%2F");
    CHECK(parse("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_SLICE(req.path, "/a");
    CHECK(req.query.p != NULL && req.query.len == 0);
    CHECK(parse("GET /a?b?c/d HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_SLICE(req.path, "/a");
    CHECK_SLICE(req.query, "b?c/d");
    CHECK(parse("GET /%41b:@!$&'()*+,;=-._~ HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_SLICE(req.path, "/%41b:@!$&'()*+,;=-._~");
    CHECK(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
    CHECK_EQ_INT(req.method, TK_HTTP_OPTIONS);
    CHECK_SLICE(req.path, "*");
    CHECK(parse("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
}

static void test_methods(void)
{
    static const struct {
        const char *m;
        enum tk_http_method e;
    } cases[] = {
        {"GET", TK_HTTP_GET},       {"HEAD", TK_HTTP_HEAD},
        {"POST", TK_HTTP_POST},     {"PUT", TK_HTTP_PUT},
        {"DELETE", TK_HTTP_DELETE}, {"OPTIONS", TK_HTTP_OPTIONS},
        {"PATCH", TK_HTTP_PATCH},   {"get", TK_HTTP_OTHER},
        {"BREW", TK_HTTP_OTHER},    {"M-SEARCH", TK_HTTP_OTHER},
        {"GETS", TK_HTTP_OTHER},    {"PUSH", TK_HTTP_OTHER},
        {"CONNECT", TK_HTTP_OTHER}, {"X!#$%&'*+.^_`|~", TK_HTTP_OTHER},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(cases); i++) {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].m);
        CHECK_EQ_INT(parse(buf), n);
        CHECK_EQ_INT(req.method, cases[i].e);
        CHECK_SLICE(req.method_str, cases[i].m);
    }
}

static void test_headers(void)
{
    const char *r = "GET / HTTP/1.1\r\n"
                    "hOsT: a.example\r\n"
                    "X-Trim: \t value  with  spaces \t \r\n"
                    "X-Empty:\r\n"
                    "X-Blank:  \t \r\n"
                    "X-Dup: one\r\n"
                    "x-dup: two\r\n"
                    "X-Obs: caf\xc3\xa9\r\n"
                    "CONTENT-type: text/plain\r\n"
                    "\r\n";
    CHECK_EQ_INT(parse(r), strlen(r));
    CHECK_EQ_INT(req.nheaders, 8);
    CHECK_SLICE(req.host, "a.example");
    CHECK_SLICE(req.content_type, "text/plain");
    CHECK_SLICE(tk_http_header_get(&req, "host"), "a.example");
    CHECK_SLICE(tk_http_header_get(&req, "HOST"), "a.example");
    CHECK_SLICE(tk_http_header_get(&req, "x-trim"), "value  with  spaces");
    tk_slice e = tk_http_header_get(&req, "X-Empty");
    CHECK(e.p != NULL && e.len == 0);
    e = tk_http_header_get(&req, "x-blank");
    CHECK(e.p != NULL && e.len == 0);
    CHECK_SLICE(tk_http_header_get(&req, "X-DUP"), "one");
    CHECK_SLICE(tk_http_header_get(&req, "x-obs"), "caf\xc3\xa9");
    e = tk_http_header_get(&req, "X-Missing");
    CHECK(e.p == NULL && e.len == 0);
    CHECK(tk_http_header_get(&req, "X-Tri").p == NULL);
    CHECK(tk_http_header_get(&req, "X-Trimm").p == NULL);
    CHECK(tk_http_header_get(&req, "").p == NULL);
    /* HTAB inside a value is kept, the value is not otherwise touched. */
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n") > 0);
    CHECK_SLICE(tk_http_header_get(&req, "x"), "a\tb");
    /* Host may be empty (RFC 9112 §3.2) and may be an IP literal. */
    CHECK(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n") > 0 && req.host.p != NULL);
    CHECK(parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") > 0);
    CHECK_SLICE(req.host, "[::1]:8080");
}

/* ---- Truncation ---------------------------------------------------------------- */

static void test_truncation(void)
{
    const char *good[] = {
        get_req,
        post_req,
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /q?a=%41&b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "POST /revoke HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: \t v \t\r\nY:\r\n\r\nabc",
        "PATCH /x HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(good); i++) {
        size_t len = strlen(good[i]);
        for (size_t n = 0; n < len; n++) {
            int rc = parse_n(good[i], n, TK_HTTP_BODY_MAX);
            if (rc != 0) {
                fprintf(stderr, "good[%zu] prefix %zu: %d\n", i, n, rc);
            }
            CHECK_EQ_INT(rc, 0);
        }
        CHECK_EQ_INT(parse_n(good[i], len, TK_HTTP_BODY_MAX), len);
    }
}

/* ---- Malformed requests ---------------------------------------------------------- */

struct bad_case {
    const char *in;
    int want;
};

#define H "Host: a\r\n"

static const struct bad_case bad_cases[] = {
    /* request line */
    {"\r\nGET / HTTP/1.1\r\n" H "\r\n", -400},
    {" GET / HTTP/1.1\r\n" H "\r\n", -400},
    {"GET  / HTTP/1.1\r\n" H "\r\n", -400},
    {"GET\t/ HTTP/1.1\r\n" H "\r\n", -400},
    {"G(T / HTTP/1.1\r\n" H "\r\n", -400},
    {"GE\x01T / HTTP/1.1\r\n" H "\r\n", -400},
    {"GET\r\n" H "\r\n", -400},
    {"GET /\r\n" H "\r\n", -400},
    {"GET / \r\n" H "\r\n", -400},
    {"GET /  HTTP/1.1\r\n" H "\r\n", -400},
    {"GET / HTTP/1.1 \r\n" H "\r\n", -400},
    {"GET http://a/ HTTP/1.1\r\n" H "\r\n", -400},
    {"GET a HTTP/1.1\r\n" H "\r\n", -400},
    {"GET * HTTP/1.1\r\n" H "\r\n", -400},
    {"OPTIONS *x HTTP/1.1\r\n" H "\r\n", -400},
    {"OPTIONS */ HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a b HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a\x01 HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a\x7f HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a\x80 HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a\tb HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a#f HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a\" HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a{} HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /a\\b HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /%4g HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /%4 HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /% HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /?%zz HTTP/1.1\r\n" H "\r\n", -400},
    {"GET /\r HTTP/1.1\r\n" H "\r\n", -400},
    {"GET / http/1.1\r\n" H "\r\n", -400},
    {"GET / HTTP/1.1x\r\n" H "\r\n", -400},
    {"GET / HTTP/1.10\r\n" H "\r\n", -400},
    {"GET / HTTP/11\r\n" H "\r\n", -400},
    {"GET / HTTP/2\r\n" H "\r\n", -400},
    {"GET / HTTP/1.a\r\n" H "\r\n", -400},
    {"GET / HTTP/1.1\n" H "\r\n", -400},
    {"GET / HTTP/1.1\rX" H "\r\n", -400},
    {"GET / HTTP/1.1\r\r\n" H "\r\n", -400},
    {"GET / HTTP/2.0\r\n" H "\r\n", -505},
    {"GET / HTTP/1.2\r\n" H "\r\n", -505},
    {"GET / HTTP/0.9\r\n" H "\r\n", -505},
    {"GET / HTTP/3.1\r\n" H "\r\n", -505},
    {"GET / HTTP/2.0\n" H "\r\n", -400},
    /* field lines */
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H ": a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: b\r\n c\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: b\r\n\tc\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: a\nY: b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: a\rY: b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: a\x01z\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: a\x7fz\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: a\x1b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X\x01Y: a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X(Y): a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X-A\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "\n", -400},
    {"GET / HTTP/1.1\r\n" H "\rX", -400},
    {"GET / HTTP/1.1\r\n" H "\r\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "X: a\r\r\n\r\n", -400},
    /* Host */
    {"GET / HTTP/1.1\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H H "\r\n", -400},
    {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", -400},
    /* singletons */
    {"GET / HTTP/1.1\r\n" H "Authorization: a\r\nAuthorization: b\r\n\r\n", -400},
    {"GET / HTTP/1.1\r\n" H "Content-Type: a\r\ncontent-type: a\r\n\r\n", -400},
    /* Content-Length */
    {"POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: +1\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: \r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 1 1\r\n\r\nx", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 1,1\r\n\r\nx", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 1, 1\r\n\r\nx", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 1e3\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy", -400},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 65537\r\n\r\n", -413},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 1000000000\r\n\r\n", -413},
    /* Transfer-Encoding */
    {"POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", -501},
    {"POST / HTTP/1.1\r\n" H "transfer-encoding: identity\r\n\r\n", -501},
    {"POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", -501},
    {"POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", -400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -400}, /* and no Host */
    /* a -413 is known at its line, before a later malformed line */
    {"POST / HTTP/1.1\r\n" H "Content-Length: 70000\r\nBad Line\r\n\r\n", -413},
};

static void test_malformed(void)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_cases); i++) {
        int before = check_failures;
        check_prefixes(bad_cases[i].in, strlen(bad_cases[i].in), TK_HTTP_BODY_MAX,
                       bad_cases[i].want, 1);
        if (check_failures != before) {
            fprintf(stderr, "  in bad case %zu\n", i);
        }
    }
    /* A NUL anywhere is malformed (strlen-based cases cannot hold one). */
    static const char nul_target[] = "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char nul_value[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    static const char nul_name[] = "GET / HTTP/1.1\r\nHost: a\r\nX\0: a\r\n\r\n";
    check_prefixes(nul_target, sizeof(nul_target) - 1, TK_HTTP_BODY_MAX, -400, 1);
    check_prefixes(nul_value, sizeof(nul_value) - 1, TK_HTTP_BODY_MAX, -400, 1);
    check_prefixes(nul_name, sizeof(nul_name) - 1, TK_HTTP_BODY_MAX, -400, 1);
}

/* ---- Limits ------------------------------------------------------------------------- */

/* "GET /xxx…x HTTP/1.1" with a request line of exactly line_len bytes, then
 * CRLF, Host, and filler headers so that the head is head_len bytes (if
 * head_len > 0). Returns the length written into big. */
static size_t build(size_t line_len, size_t head_len)
{
    size_t fixed = sizeof("GET / HTTP/1.1") - 1;
    size_t n = 0;
    memcpy(big, "GET /", 5);
    n = 5;
    memset(big + n, 'x', line_len - fixed);
    n += line_len - fixed;
    memcpy(big + n, " HTTP/1.1\r\nHost: a\r\n", 20);
    n += 20;
    if (head_len > 0) {
        /* one filler field "F: vvv…\r\n" making the head exactly head_len */
        size_t rest = head_len - n - 2;
        memcpy(big + n, "F: ", 3);
        memset(big + n + 3, 'v', rest - 5);
        memcpy(big + n + rest - 2, "\r\n", 2);
        n += rest;
    }
    memcpy(big + n, "\r\n", 2);
    return n + 2;
}

/* Every byte value at every position of field values of 1 to 20 bytes (the
 * value is scanned eight bytes at a time, a suspect word byte by byte), each
 * request placed against a guard page: a control byte other than HTAB, or
 * DEL, is a 400 (a CR inside the value too: no LF follows it); anything else
 * is the value, trimmed of SP and HTAB at its ends. Every prefix gives 0
 * until the verdict is known, then the verdict. */
static void test_value_every_byte(void)
{
    long wrong = 0;
    for (size_t n = 1; n <= 20; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (int c = 0; c < 256; c++) {
                char r[96];
                size_t len = 0;
                static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: ";
                memcpy(r, head, sizeof head - 1);
                len = sizeof head - 1;
                size_t vstart = len;
                for (size_t k = 0; k < n; k++) {
                    r[len++] = k == pos ? (char)c : 'u';
                }
                memcpy(r + len, "\r\n\r\n", 4);
                len += 4;
                bool bad = (c < 0x20 && c != '\t') || c == 0x7f;
                int rc = parse_n(r, len, TK_HTTP_BODY_MAX);
                bool ok = bad ? rc == -400 : rc == (int)len;
                if (ok && !bad) {
                    size_t a = 0, b = n; /* the value as trimmed */
                    while (a < b && (r[vstart + a] == ' ' || r[vstart + a] == '\t')) {
                        a++;
                    }
                    while (b > a && (r[vstart + b - 1] == ' ' || r[vstart + b - 1] == '\t')) {
                        b--;
                    }
                    tk_slice v = tk_http_header_get(&req, "x-a");
                    ok = v.len == b - a && memcmp(v.p, r + vstart + a, b - a) == 0;
                }
                for (size_t cut = 0; ok && cut < len; cut++) {
                    int prc = parse_n(r, cut, TK_HTTP_BODY_MAX);
                    ok = prc == 0 || (prc == rc && rc < 0 && cut > vstart + pos);
                }
                if (!ok) {
                    fprintf(stderr, "value of %zu bytes, byte 0x%02x at %zu: %d\n", n, c, pos, rc);
                }
                wrong += !ok;
            }
        }
    }
    CHECK_EQ_INT(wrong, 0);
}

static void test_line_limit(void)
{
    size_t n = build(TK_HTTP_LINE_MAX, 0);
    CHECK_EQ_INT(parse_n(big, n, 0), n);
    CHECK_EQ_INT(req.target.len, TK_HTTP_LINE_MAX - 13);
    n = build(TK_HTTP_LINE_MAX + 1, 0);
    CHECK_EQ_INT(parse_n(big, n, 0), -414);
    /* Known as soon as LINE_MAX + 1 bytes arrived without the line ending. */
    CHECK_EQ_INT(parse_n(big, TK_HTTP_LINE_MAX, 0), 0);
    CHECK_EQ_INT(parse_n(big, TK_HTTP_LINE_MAX + 1, 0), -414);
    check_prefixes(big, n, 0, -414, 61);
    /* A line of only method bytes is too long too, not malformed. */
    memset(big, 'A', TK_HTTP_LINE_MAX + 1);
    CHECK_EQ_INT(parse_n(big, TK_HTTP_LINE_MAX, 0), 0);
    CHECK_EQ_INT(parse_n(big, TK_HTTP_LINE_MAX + 1, 0), -414);
    /* The CR of a maximal line may sit exactly at index LINE_MAX. */
    n = build(TK_HTTP_LINE_MAX, 0);
    CHECK_EQ_INT(parse_n(big, TK_HTTP_LINE_MAX + 1, 0), 0);
    CHECK_EQ_INT(parse_n(big, TK_HTTP_LINE_MAX + 2, 0), 0);
}

static void test_head_limit(void)
{
    size_t n = build(100, TK_HTTP_HEAD_MAX);
    CHECK_EQ_INT(n, TK_HTTP_HEAD_MAX);
    CHECK_EQ_INT(parse_n(big, n, 0), n);
    CHECK_EQ_INT(req.nheaders, 2);
    n = build(100, TK_HTTP_HEAD_MAX + 1);
    CHECK_EQ_INT(n, TK_HTTP_HEAD_MAX + 1);
    CHECK_EQ_INT(parse_n(big, n, 0), -431);
    /* Known as soon as HEAD_MAX + 1 bytes arrived without the blank line. */
    CHECK_EQ_INT(parse_n(big, TK_HTTP_HEAD_MAX, 0), 0);
    CHECK_EQ_INT(parse_n(big, TK_HTTP_HEAD_MAX + 1, 0), -431);
    check_prefixes(big, n, 0, -431, 127);

    /* A body may follow a maximal head: turn the filler line into a
     * zero-padded "Content-Length:000…03" of the same length. */
    n = build(100, TK_HTTP_HEAD_MAX);
    size_t f = 5 + (100 - 14) + 20;         /* where the filler line starts */
    size_t line = TK_HTTP_HEAD_MAX - f - 2; /* its length, CRLF included */
    memcpy(big + f, "Content-Length:", 15);
    memset(big + f + 15, '0', line - 17);
    big[f + line - 3] = '3';
    memcpy(big + n, "abc", 3);
    CHECK_EQ_INT(parse_n(big, n + 3, 3), n + 3);
    CHECK_EQ_INT(req.content_length, 3);
    CHECK_SLICE(req.body, "abc");
    CHECK_EQ_INT(parse_n(big, n + 2, 3), 0);
}

static void test_field_count_limit(void)
{
    size_t n = 0;
    n += (size_t)sprintf(big + n, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < TK_HTTP_HEADERS_MAX; i++) {
        n += (size_t)sprintf(big + n, "X-%d: v\r\n", i);
    }
    memcpy(big + n, "\r\n", 2);
    CHECK_EQ_INT(parse_n(big, n + 2, 0), n + 2);
    CHECK_EQ_INT(req.nheaders, TK_HTTP_HEADERS_MAX);
    CHECK_SLICE(tk_http_header_get(&req, "x-63"), "v");
    /* One more field: -431 as soon as the extra line begins. */
    n += (size_t)sprintf(big + n, "Y: v\r\n\r\n");
    CHECK_EQ_INT(parse_n(big, n, 0), -431);
    check_prefixes(big, n, 0, -431, 1);
    /* The 65th line may still be the obs-fold error, found first. */
    big[n - 8] = ' ';
    CHECK_EQ_INT(parse_n(big, n, 0), -400);
}

static void test_body_limit(void)
{
    const char *r = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789";
    size_t len = strlen(r);
    CHECK_EQ_INT(parse_n(r, len, 10), len);
    CHECK_SLICE(req.body, "0123456789");
    CHECK_EQ_INT(parse_n(r, len, 9), -413);
    check_prefixes(r, len, 9, -413, 1);
    CHECK_EQ_INT(parse_n(r, len, 0), -413);
    /* max_body above TK_HTTP_BODY_MAX is clamped. */
    size_t n = (size_t)sprintf(big, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n",
                               TK_HTTP_BODY_MAX + 1);
    CHECK_EQ_INT(parse_n(big, n, SIZE_MAX), -413);
    n = (size_t)sprintf(big, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n",
                        TK_HTTP_BODY_MAX);
    memset(big + n, 'b', TK_HTTP_BODY_MAX);
    CHECK_EQ_INT(parse_n(big, n + TK_HTTP_BODY_MAX, SIZE_MAX), n + TK_HTTP_BODY_MAX);
    CHECK_EQ_INT(parse_n(big, n + TK_HTTP_BODY_MAX - 1, SIZE_MAX), 0);
}

/* ---- Credentials ------------------------------------------------------------------------- */

static char id[64], secret[64];

static int basic(const char *value)
{
    memset(id, '#', sizeof(id));
    memset(secret, '#', sizeof(secret));
    return tk_http_basic_auth(tk_slice_from_str(value), id, sizeof(id), secret, sizeof(secret));
}

static void test_basic_auth(void)
{
    CHECK_EQ_INT(basic("Basic Y2xpZW50OnNlY3JldA=="), 0); /* client:secret */
    CHECK_EQ_STR(id, "client");
    CHECK_EQ_STR(secret, "secret");
    CHECK_EQ_INT(basic("basic Y2xpZW50OnNlY3JldA=="), 0);
    CHECK_EQ_INT(basic("BASIC Y2xpZW50OnNlY3JldA=="), 0);
    /* RFC 6749 §2.3.1: "a%3Ab:c%3Ad+e%25" → id "a:b", secret "c:d e%" */
    CHECK_EQ_INT(basic("Basic YSUzQWI6YyUzQWQrZSUyNQ=="), 0);
    CHECK_EQ_STR(id, "a:b");
    CHECK_EQ_STR(secret, "c:d e%");
    /* Split at the first ':' only: "id:se:cret" */
    CHECK_EQ_INT(basic("Basic aWQ6c2U6Y3JldA=="), 0);
    CHECK_EQ_STR(id, "id");
    CHECK_EQ_STR(secret, "se:cret");
    /* Empty secret is a parse success (authentication fails later). */
    CHECK_EQ_INT(basic("Basic dXNlcjo="), 0); /* "user:" */
    CHECK_EQ_STR(id, "user");
    CHECK_EQ_STR(secret, "");
    /* RFC 7617 §2 example. */
    CHECK_EQ_INT(basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), 0);
    CHECK_EQ_STR(id, "Aladdin");
    CHECK_EQ_STR(secret, "open sesame");

    CHECK_EQ_INT(basic("Basic OnNlY3JldA=="), TK_E_BADINPUT); /* ":secret" */
    CHECK_EQ_INT(basic("Basic bm9jb2xvbg=="), TK_E_BADINPUT); /* "nocolon" */
    CHECK_EQ_STR(id, "");
    CHECK_EQ_STR(secret, "");
    CHECK_EQ_INT(basic("Basic !!!!"), TK_E_BADINPUT);
    CHECK_EQ_INT(basic("Basic YWJ"), TK_E_BADINPUT);
    CHECK_EQ_INT(basic("Basic Y2xpZW50OnNlY3JldA"), TK_E_BADINPUT); /* padding missing */
    CHECK_EQ_INT(basic("Basic Y2xp ZW50OnNlY3JldA=="), TK_E_BADINPUT);
    CHECK_EQ_INT(basic("Basic YSV6ejpi"), TK_E_BADINPUT); /* "a%zz:b" */
    CHECK_EQ_INT(basic("Basic YSUwMDpi"), TK_E_BADINPUT); /* "a%00:b" */
    CHECK_EQ_INT(basic("Basic YTpiJTBB"), TK_E_BADINPUT); /* "a:b%0A" */
    CHECK_EQ_INT(basic("Basic YQliOmM="), TK_E_BADINPUT); /* "a\tb:c" raw CTL */
    CHECK_EQ_INT(basic("Basic"), TK_E_BADINPUT);
    CHECK_EQ_INT(basic("Basic "), TK_E_BADINPUT);
    CHECK_EQ_INT(basic("Basic  Y2xpZW50OnNlY3JldA=="), TK_E_BADINPUT);
    CHECK_EQ_INT(basic("Basic\tY2xpZW50OnNlY3JldA=="), TK_E_BADINPUT);
    CHECK_EQ_INT(basic("Bearer abc"), TK_E_NOTFOUND);
    CHECK_EQ_INT(basic("Basicx Y2xpZW50OnNlY3JldA=="), TK_E_NOTFOUND);
    CHECK_EQ_INT(basic("Bas"), TK_E_NOTFOUND);
    CHECK_EQ_INT(basic(""), TK_E_NOTFOUND);
    CHECK_EQ_INT(tk_http_basic_auth(TK_SLICE_NULL, id, sizeof(id), secret, sizeof(secret)),
                 TK_E_NOTFOUND);

    /* Another scheme leaves the caller's buffers as they were: they may hold
     * client_id and client_secret from the form (issue 9 item 5). */
    static const char *const other[] = {"Bearer abc",
                                        "bearer tkd_at_x",
                                        "Digest username=\"a\"",
                                        "Basicx Y2xpZW50OnNlY3JldA==",
                                        "Bas",
                                        "",
                                        "Negotiate YII=",
                                        "DPoP abc",
                                        "Bearer",
                                        "B",
                                        "Basi c2VjcmV0",
                                        "Token Basic Y2xpZW50OnM="};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        char fid[16] = "tkc_form", fsecret[16] = "form_secret";
        CHECK_EQ_INT(tk_http_basic_auth(tk_slice_from_str(other[i]), fid, sizeof fid, fsecret,
                                        sizeof fsecret),
                     TK_E_NOTFOUND);
        CHECK_EQ_STR(fid, "tkc_form");
        CHECK_EQ_STR(fsecret, "form_secret");
    }

    /* A part that does not fit its buffer. */
    char small[4];
    CHECK_EQ_INT(tk_http_basic_auth(tk_slice_from_str("Basic Y2xpZW50OnNlY3JldA=="), small,
                                    sizeof(small), secret, sizeof(secret)),
                 TK_E_TOOBIG);
    CHECK_EQ_INT(tk_http_basic_auth(tk_slice_from_str("Basic Y2xpZW50OnNlY3JldA=="), id, sizeof(id),
                                    small, sizeof(small)),
                 TK_E_TOOBIG);
    CHECK_EQ_STR(id, "");
    /* A credential string over TK_HTTP_CREDENTIALS_MAX. */
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'A', TK_HTTP_CREDENTIALS_MAX + 4);
    big[6 + TK_HTTP_CREDENTIALS_MAX + 4] = '\0';
    CHECK_EQ_INT(basic(big), TK_E_TOOBIG);
    /* Exactly at the limit it is decoded (and here lacks a ':'). */
    big[6 + TK_HTTP_CREDENTIALS_MAX] = '\0';
    CHECK_EQ_INT(basic(big), TK_E_BADINPUT);
}

static int bearer(const char *value, tk_slice *t)
{
    return tk_http_bearer(tk_slice_from_str(value), t);
}

static void test_bearer(void)
{
    tk_slice t;
    CHECK_EQ_INT(bearer("Bearer tkd_at_abc-DEF_123", &t), 0);
    CHECK_SLICE(t, "tkd_at_abc-DEF_123");
    CHECK_EQ_INT(bearer("bearer a.b~c+d/e==", &t), 0);
    CHECK_SLICE(t, "a.b~c+d/e==");
    CHECK_EQ_INT(bearer("BEARER x", &t), 0);
    CHECK_SLICE(t, "x");
    CHECK_EQ_INT(bearer("Bearer", &t), TK_E_BADINPUT);
    CHECK(t.p == NULL);
    CHECK_EQ_INT(bearer("Bearer ", &t), TK_E_BADINPUT);
    CHECK_EQ_INT(bearer("Bearer  x", &t), TK_E_BADINPUT);
    CHECK_EQ_INT(bearer("Bearer\tx", &t), TK_E_BADINPUT);
    CHECK_EQ_INT(bearer("Bearer a b", &t), TK_E_BADINPUT);
    CHECK_EQ_INT(bearer("Bearer a=b", &t), TK_E_BADINPUT);
    CHECK_EQ_INT(bearer("Bearer =", &t), TK_E_BADINPUT);
    CHECK_EQ_INT(bearer("Bearer a,b", &t), TK_E_BADINPUT);
    CHECK_EQ_INT(bearer("Basic Y2xpZW50OnNlY3JldA==", &t), TK_E_NOTFOUND);
    CHECK_EQ_INT(bearer("Bearerx y", &t), TK_E_NOTFOUND);
    CHECK_EQ_INT(bearer("", &t), TK_E_NOTFOUND);
    CHECK_EQ_INT(tk_http_bearer(TK_SLICE_NULL, &t), TK_E_NOTFOUND);
}

/* Every byte value at every position of tokens of 1 to 20 bytes (the scan
 * takes four at a time, then one by one), against RFC 6750's b64token:
 * letters, digits, "-._~+/", then only '=' to the end. */
static void test_bearer_every_byte(void)
{
    long wrong = 0;
    for (size_t n = 1; n <= 20; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (int c = 0; c < 256; c++) {
                char v[40] = "Bearer ";
                memset(v + 7, 'Q', n);
                v[7 + pos] = (char)c;
                bool tchar = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || (c != 0 && strchr("-._~+/", c) != NULL);
                /* '=' only as padding: here, at the end */
                bool want = tchar || (c == '=' && pos == n - 1 && pos > 0);
                tk_slice t;
                int rc = tk_http_bearer((tk_slice){v, 7 + n}, &t);
                bool ok = want ? rc == 0 && t.len == n && t.p == v + 7 : rc == TK_E_BADINPUT;
                wrong += !ok;
            }
        }
    }
    CHECK_EQ_INT(wrong, 0);
}

/* ---- Responses ------------------------------------------------------------------------------- */

static void test_reason(void)
{
    CHECK_EQ_STR(tk_http_reason(200), "OK");
    CHECK_EQ_STR(tk_http_reason(400), "Bad Request");
    CHECK_EQ_STR(tk_http_reason(401), "Unauthorized");
    CHECK_EQ_STR(tk_http_reason(405), "Method Not Allowed");
    CHECK_EQ_STR(tk_http_reason(413), "Content Too Large");
    CHECK_EQ_STR(tk_http_reason(414), "URI Too Long");
    CHECK_EQ_STR(tk_http_reason(431), "Request Header Fields Too Large");
    CHECK_EQ_STR(tk_http_reason(501), "Not Implemented");
    CHECK_EQ_STR(tk_http_reason(503), "Service Unavailable");
    CHECK_EQ_STR(tk_http_reason(505), "HTTP Version Not Supported");
    CHECK_EQ_STR(tk_http_reason(299), "Unknown");
    CHECK_EQ_STR(tk_http_reason(-1), "Unknown");
}

static void test_respond(void)
{
    char buf[512];
    tk_outbuf out = {buf, sizeof(buf), 0, false};
    const char *body = "{\"active\":false}";
    CHECK_EQ_INT(tk_http_respond(&out, 200, "application/json", NULL, body, strlen(body)), 0);
    const char *want1 = "HTTP/1.1 200 OK\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 16\r\n"
                        "Cache-Control: no-store\r\n"
                        "\r\n"
                        "{\"active\":false}";
    CHECK_EQ_INT(out.len, strlen(want1));
    CHECK(memcmp(buf, want1, out.len) == 0);

    /* Appends after what is there; Connection: close, then extra headers. */
    out.close = true;
    const char *b2 = "{\"error\":\"invalid_client\"}";
    CHECK_EQ_INT(tk_http_respond(&out, 401, "application/json",
                                 "WWW-Authenticate: Basic realm=\"tokend\"\r\n", b2, strlen(b2)),
                 0);
    const char *want2 = "HTTP/1.1 401 Unauthorized\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 26\r\n"
                        "Cache-Control: no-store\r\n"
                        "Connection: close\r\n"
                        "WWW-Authenticate: Basic realm=\"tokend\"\r\n"
                        "\r\n"
                        "{\"error\":\"invalid_client\"}";
    CHECK_EQ_INT(out.len, strlen(want1) + strlen(want2));
    CHECK(memcmp(buf + strlen(want1), want2, strlen(want2)) == 0);

    /* No content type, empty body (a successful revocation). */
    out.len = 0;
    out.close = false;
    CHECK_EQ_INT(tk_http_respond(&out, 200, NULL, NULL, NULL, 0), 0);
    const char *want3 = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\r\n";
    CHECK_EQ_INT(out.len, strlen(want3));
    CHECK(memcmp(buf, want3, out.len) == 0);
    /* An empty extra_headers string is the same as NULL. */
    out.len = 0;
    CHECK_EQ_INT(tk_http_respond(&out, 200, NULL, "", NULL, 0), 0);
    CHECK(out.len == strlen(want3) && memcmp(buf, want3, out.len) == 0);
}

static void test_respond_toobig(void)
{
    char buf[256];
    const char *want = "HTTP/1.1 503 Service Unavailable\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 35\r\n"
                       "Cache-Control: no-store\r\n"
                       "Retry-After: 1\r\n"
                       "\r\n"
                       "{\"error\":\"temporarily_unavailable\"}";
    const char *body = "{\"error\":\"temporarily_unavailable\"}";
    size_t total = strlen(want);
    /* Exactly enough room: fits, at an offset. */
    tk_outbuf out = {buf, 10 + total, 10, false};
    memset(buf, '=', sizeof(buf));
    CHECK_EQ_INT(
        tk_http_respond(&out, 503, "application/json", "Retry-After: 1\r\n", body, strlen(body)),
        0);
    CHECK_EQ_INT(out.len, 10 + total);
    CHECK(memcmp(buf + 10, want, total) == 0);
    CHECK_EQ_INT(buf[10 + total], '=');
    /* One byte short, at every shortfall: unchanged. */
    for (size_t cap = 10; cap < 10 + total; cap++) {
        memset(buf, '=', sizeof(buf));
        out = (tk_outbuf){buf, cap, 10, false};
        CHECK_EQ_INT(tk_http_respond(&out, 503, "application/json", "Retry-After: 1\r\n", body,
                                     strlen(body)),
                     TK_E_TOOBIG);
        CHECK_EQ_INT(out.len, 10);
        size_t k = 0;
        while (k < sizeof(buf) && buf[k] == '=') {
            k++;
        }
        CHECK_EQ_INT(k, sizeof(buf));
    }
    /* A body longer than the room, without overflow in the length sum. */
    out = (tk_outbuf){buf, sizeof(buf), 0, false};
    CHECK_EQ_INT(tk_http_respond(&out, 200, NULL, NULL, body, SIZE_MAX - 8), TK_E_TOOBIG);
    CHECK_EQ_INT(out.len, 0);
}

int main(void)
{
    arena_init();
    RUN(test_get);
    RUN(test_post_body);
    RUN(test_pipelined);
    RUN(test_keep_alive);
    RUN(test_target_split);
    RUN(test_methods);
    RUN(test_headers);
    RUN(test_truncation);
    RUN(test_malformed);
    RUN(test_line_limit);
    RUN(test_head_limit);
    RUN(test_field_count_limit);
    RUN(test_body_limit);
    RUN(test_basic_auth);
    RUN(test_bearer);
    RUN(test_value_every_byte);
    RUN(test_bearer_every_byte);
    RUN(test_reason);
    RUN(test_respond);
    RUN(test_respond_toobig);
    return check_report();
}
