/*
 * The batch hint's request scan and hash reuse (src/endpoints/hint.c): which
 * requests give a token to prefetch (complete introspections with a plain
 * form token, forward-auth requests with a Bearer or DPoP credential), which
 * give none (split, percent- or plus-encoded, chunked, another request), how
 * pipelined requests are stepped over, and that ep_token_hash always returns
 * the SHA-256 of what it is given, whatever the batch's hints held.
 */
#include "check.h"
#include "tokend/crypto.h"

#include "../../src/endpoints/endpoints_int.h"

static const char *intro(const char *body, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "POST /introspect HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eDp5\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    return buf;
}

/* The token the scan finds in s ("" for none) and the length it steps. */
static size_t scan(const char *s, char *tok, size_t cap)
{
    tk_slice t;
    size_t used = ep_hint_scan(s, strlen(s), &t);
    snprintf(tok, cap, "%.*s", (int)t.len, t.p ? t.p : "");
    return used;
}

static void test_introspection(void)
{
    char req[512], tok[128];
    intro("token=tkd_at_abc", req, sizeof req);
    CHECK_EQ_INT(scan(req, tok, sizeof tok), strlen(req));
    CHECK_EQ_STR(tok, "tkd_at_abc");
    intro("token_type_hint=access_token&token=tkd_at_x-_y", req, sizeof req);
    scan(req, tok, sizeof tok);
    CHECK_EQ_STR(tok, "tkd_at_x-_y");
    const char *none[] = {"token=tkd%5Fat", "token=a+b", "token=", "hint=1", ""};
    for (size_t i = 0; i < TK_ARRAY_LEN(none); i++) {
        intro(none[i], req, sizeof req);
        CHECK_EQ_INT(scan(req, tok, sizeof tok), strlen(req)); /* stepped over, no token */
        CHECK_EQ_STR(tok, "");
    }
    /* case-insensitive header names; blanks around the length */
    const char *lc = "POST /introspect HTTP/1.1\r\ncontent-LENGTH:  9 \r\n\r\ntoken=abc";
    CHECK_EQ_INT(scan(lc, tok, sizeof tok), strlen(lc));
    CHECK_EQ_STR(tok, "abc");
}

static void test_no_hint(void)
{
    char req[512], tok[128];
    intro("token=tkd_at_abc", req, sizeof req);
    size_t n = strlen(req);
    req[n - 3] = '\0'; /* split inside the body: not complete */
    CHECK_EQ_INT(scan(req, tok, sizeof tok), 0);
    const char *odd[] = {
        ("POST /introspect HTTP/1.1\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
         "token=abc"),
        "POST /introspect HTTP/1.1\r\nContent-Length: 9\r\nContent-Length: 9\r\n\r\ntoken=abc",
        "POST /introspect HTTP/1.1\r\n\r\ntoken=abc", /* no length */
        "POST /introspect HTTP/1.1\r\nContent-Length: 9x\r\n\r\ntoken=abc",
        "POST /introspect HTTP/1.1\nContent-Length: 9\n\ntoken=abc", /* bare LF */
        "POST /revoke HTTP/1.1\r\nContent-Length: 9\r\n\r\ntoken=abc",
        "POST /introspect?x HTTP/1.1\r\nContent-Length: 9\r\n\r\ntoken=abc",
        "POST /introspect HTTP/1.1\r\nContent-Length: 9\r\n", /* head not ended */
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(odd); i++) {
        CHECK_EQ_INT(scan(odd[i], tok, sizeof tok), 0);
        CHECK_EQ_STR(tok, "");
    }
}

static void test_pipelined(void)
{
    char a[512], b[512], both[1024], tok[128];
    intro("token=one", a, sizeof a);
    intro("client_id=c&token=two&client_secret=s", b, sizeof b);
    snprintf(both, sizeof both, "%s%s", a, b);
    size_t used = scan(both, tok, sizeof tok);
    CHECK_EQ_INT(used, strlen(a));
    CHECK_EQ_STR(tok, "one");
    CHECK_EQ_INT(scan(both + used, tok, sizeof tok), strlen(b));
    CHECK_EQ_STR(tok, "two");
}

static void test_forward_auth(void)
{
    char tok[128];
    const char *fa = "GET /auth HTTP/1.1\r\nHost: t\r\nX-Forwarded-Uri: /p\r\n"
                     "Authorization: Bearer tkd_at_fa \r\n\r\n";
    CHECK_EQ_INT(scan(fa, tok, sizeof tok), strlen(fa));
    CHECK_EQ_STR(tok, "tkd_at_fa");
    const char *dpop = "GET /auth/mcp HTTP/1.1\r\nauthorization: dpop tkd_at_d\r\n\r\n";
    CHECK_EQ_INT(scan(dpop, tok, sizeof tok), strlen(dpop));
    CHECK_EQ_STR(tok, "tkd_at_d");
    const char *basic = "GET /auth HTTP/1.1\r\nAuthorization: Basic eDp5\r\n\r\n";
    CHECK_EQ_INT(scan(basic, tok, sizeof tok), strlen(basic));
    CHECK_EQ_STR(tok, "");
    const char *twice = "GET /auth HTTP/1.1\r\nAuthorization: Bearer a\r\n"
                        "Authorization: Bearer b\r\n\r\n";
    CHECK_EQ_INT(scan(twice, tok, sizeof tok), 0);
    CHECK_EQ_INT(
        scan("GET /authorize HTTP/1.1\r\nAuthorization: Bearer a\r\n\r\n", tok, sizeof tok), 0);
}

static ep_worker w; /* only its hint memo is used */

static bool hash_is_sha256(const char *tok)
{
    uint8_t got[TK_HASH_LEN], want[TK_HASH_LEN];
    tk_sha256(tok, strlen(tok), want);
    ep_token_hash(&w, tok, strlen(tok), got);
    return memcmp(got, want, TK_HASH_LEN) == 0;
}

/* Whatever the memo holds, the hash returned is the input's own. */
static void test_token_hash(void)
{
    const char *toks[] = {"tkd_at_one", "tkd_at_two", "tkd_at_three"};
    for (size_t i = 0; i < TK_ARRAY_LEN(toks); i++) { /* as ep_hint keeps them */
        size_t len = strlen(toks[i]);
        memcpy(w.hint.e[i].tok, toks[i], len);
        w.hint.e[i].len = len;
        tk_sha256(toks[i], len, w.hint.e[i].hash);
    }
    w.hint.n = 3;
    CHECK(hash_is_sha256("tkd_at_one"));
    CHECK_EQ_INT(w.hint.next, 1);
    CHECK(hash_is_sha256("tkd_at_tw0")); /* not hinted: computed, nothing used */
    CHECK_EQ_INT(w.hint.next, 1);
    CHECK(hash_is_sha256("tkd_at_three")); /* the request hinted second never hashed */
    CHECK_EQ_INT(w.hint.next, 3);
    CHECK(hash_is_sha256("tkd_at_two"));       /* behind the first unused one: computed */
    memcpy(w.hint.e[0].tok, "tkd_at_onf", 10); /* a kept hash is used only for its bytes */
    w.hint.next = 0;
    CHECK(hash_is_sha256("tkd_at_one"));
    ep_hint_clear(&w);
    CHECK_EQ_INT(w.hint.n, 0);
    CHECK(w.hint.e[1].tok[0] == 0); /* cleansed */
    CHECK(hash_is_sha256("tkd_at_one"));
}

int main(void)
{
    RUN(test_introspection);
    RUN(test_no_hint);
    RUN(test_pipelined);
    RUN(test_forward_auth);
    RUN(test_token_hash);
    return check_report();
}
