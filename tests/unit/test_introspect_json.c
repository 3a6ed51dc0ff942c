/*
 * Unit tests for the fast introspection writer: for every shape of answer
 * (inactive, access and refresh tokens, with and without issuer and
 * audience, delegation chains of every depth, empty and edge-length fields)
 * it must write byte for byte what the generic tk_json writer does, give up
 * (0) whenever a string needs escaping, and never write more than cap - 1
 * bytes, at every buffer size. Also tk_json_is_plain on every byte value and
 * at every position of a word.
 */
#include "check.h"

#include "tokend/introspect_json.h"
#include "tokend/json.h"

#include <stdlib.h>
#include <string.h>

static size_t generic(const tk_introspection *r, tk_slice iss, char *buf, size_t cap)
{
    tk_json j;
    tk_json_init(&j, buf, cap);
    tk_introspect_json(r, iss, &j);
    return tk_json_finish(&j) == 0 ? j.len : 0;
}

static tk_introspection sample(unsigned nactors, bool refresh)
{
    tk_introspection r;
    memset(&r, 0, sizeof r);
    r.active = true;
    r.tok.kind = refresh ? TK_TOKEN_REFRESH : TK_TOKEN_ACCESS;
    r.tok.scope = TK_SLICE_LIT("wiki:read tickets:read");
    r.tok.client_id = TK_SLICE_LIT("tkc_RoLLX94ERC2SLV6gD7cmfw");
    r.tok.sid = TK_SLICE_LIT("tks_0123456789abcdefABCDEF");
    r.tok.exp = 1767225600;
    r.tok.iat = 1767222000;
    r.tok.nbf = -1;
    r.sub = TK_SLICE_LIT("alice@example.com");
    static const char *const actors[] = {"tkc_a", "tkc_bb", "tkc_ccc", "tkc_d",  "tkc_e",
                                         "tkc_f", "tkc_g",  "tkc_h",   "tkc_iii"};
    r.nactors = nactors;
    for (unsigned i = 0; i < nactors; i++) {
        r.actors[i] = tk_slice_from_str(actors[i]);
    }
    return r;
}

static void same(const tk_introspection *r, tk_slice iss)
{
    char a[2048], b[2048];
    size_t na = generic(r, iss, a, sizeof a);
    size_t nb = tk_introspect_json_fast(r, iss, b, sizeof b);
    CHECK(na > 0);
    CHECK_EQ_INT(nb, na);
    CHECK(nb == na && memcmp(a, b, na) == 0);
    /* Every smaller buffer: the fast writer fits exactly where tk_json does. */
    for (size_t cap = 1; cap <= na + 2; cap++) {
        char c[2048];
        size_t nc = tk_introspect_json_fast(r, iss, c, cap);
        CHECK_EQ_INT(nc, cap > na ? na : 0);
    }
}

static void test_shapes(void)
{
    tk_introspection in;
    memset(&in, 0, sizeof in);
    same(&in, TK_SLICE_LIT("http://127.0.0.1:7662"));
    for (unsigned n = 0; n <= TK_DEPTH_MAX + 1; n++) {
        tk_introspection r = sample(n, n == 0);
        same(&r, TK_SLICE_LIT("http://127.0.0.1:7662"));
        same(&r, TK_SLICE_NULL);
        r.tok.aud = TK_SLICE_LIT("https://wiki.example");
        same(&r, TK_SLICE_LIT("https://issuer.example"));
    }
    tk_introspection r = sample(0, false);
    r.tok.scope = TK_SLICE_LIT("");
    r.sub = TK_SLICE_NULL;
    r.tok.exp = INT64_MIN;
    r.tok.iat = INT64_MAX;
    same(&r, TK_SLICE_NULL);
    /* RFC 8705 cnf.x5t#S256, with every other member, and its exact text */
    r = sample(3, false);
    r.may_act = TK_SLICE_LIT("tkc_next");
    r.tok.has_cnf = true;
    for (int i = 0; i < TK_HASH_LEN; i++) {
        r.tok.cnf_x5t[i] = (uint8_t)(0xf0 + i);
    }
    same(&r, TK_SLICE_LIT("https://issuer.example"));
    char buf[2048];
    size_t n = tk_introspect_json_fast(&r, TK_SLICE_NULL, buf, sizeof buf);
    CHECK(n > 0);
    buf[n] = '\0';
    CHECK(strstr(buf, ",\"cnf\":{\"x5t#S256\":\"8PHy8_T19vf4-fr7_P3-_wABAgMEBQYHCAkKCwwNDg8\"}}") !=
          NULL);
    r.tok.has_cnf = false;
    n = tk_introspect_json_fast(&r, TK_SLICE_NULL, buf, sizeof buf);
    buf[n] = '\0';
    CHECK(strstr(buf, "cnf") == NULL);
}

/* The session's IdP issuer (idp_iss): the same bytes from both writers,
 * right after sid, absent when the session has none; escaping gives up the
 * fast path. */
static void test_idp_iss(void)
{
    for (unsigned n = 0; n <= 2; n++) {
        tk_introspection r = sample(n, n == 1);
        r.idp_iss = TK_SLICE_LIT("http://127.0.0.1:4001");
        r.tok.aud = TK_SLICE_LIT("https://wiki.example");
        same(&r, TK_SLICE_LIT("https://issuer.example"));
        same(&r, TK_SLICE_NULL);
        char a[2048];
        size_t na = generic(&r, TK_SLICE_NULL, a, sizeof a);
        TK_ASSERT(na > 0 && na < sizeof a);
        a[na] = '\0';
        CHECK(strstr(a, "\"sid\":\"tks_0123456789abcdefABCDEF\",\"idp_iss\":\"http://"
                        "127.0.0.1:4001\",\"token_type\"") != NULL);
        r.idp_iss = TK_SLICE_NULL;
        na = generic(&r, TK_SLICE_NULL, a, sizeof a);
        a[na] = '\0';
        CHECK(strstr(a, "idp_iss") == NULL);
        r.idp_iss = TK_SLICE_LIT("https://x/\"");
        char b[1024];
        CHECK_EQ_INT(tk_introspect_json_fast(&r, TK_SLICE_NULL, b, sizeof b), 0);
        na = generic(&r, TK_SLICE_NULL, a, sizeof a);
        a[na] = '\0';
        CHECK(strstr(a, "\"idp_iss\":\"https://x/\\\"\"") != NULL);
    }
    tk_introspection in;
    memset(&in, 0, sizeof in);
    in.idp_iss = TK_SLICE_LIT("https://idp"); /* inactive: never more than active:false */
    same(&in, TK_SLICE_NULL);
    char a[64];
    size_t na = generic(&in, TK_SLICE_NULL, a, sizeof a);
    CHECK(na == 16 && memcmp(a, "{\"active\":false}", 16) == 0);
}

/* DPoP-bound tokens (RFC 9449 §6.2): token_type DPoP and cnf.jkt, the same
 * bytes from both writers; a bound refresh token keeps its token_type. */
static void test_dpop_bound(void)
{
    for (unsigned n = 0; n <= 2; n++) {
        tk_introspection r = sample(n, false);
        r.tok.has_jkt = true;
        memset(r.tok.jkt, 0xfb, TK_HASH_LEN);
        r.tok.aud = TK_SLICE_LIT("https://wiki.example");
        same(&r, TK_SLICE_LIT("https://issuer.example"));
        char a[2048];
        size_t na = generic(&r, TK_SLICE_NULL, a, sizeof a);
        TK_ASSERT(na > 0 && na < sizeof a);
        a[na] = '\0';
        CHECK(strstr(a, "\"token_type\":\"DPoP\"") != NULL);
        CHECK(strstr(a, "\"cnf\":{\"jkt\":\"-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s\"}") !=
              NULL);
        r.tok.kind = TK_TOKEN_REFRESH;
        same(&r, TK_SLICE_NULL);
        na = generic(&r, TK_SLICE_NULL, a, sizeof a);
        a[na] = '\0';
        CHECK(strstr(a, "\"token_type\":\"refresh_token\"") != NULL);
    }
    tk_introspection r = sample(0, false);
    char a[2048];
    size_t na = generic(&r, TK_SLICE_NULL, a, sizeof a);
    a[na] = '\0';
    CHECK(strstr(a, "cnf") == NULL && strstr(a, "\"Bearer\"") != NULL);
}

static void test_needs_escaping(void)
{
    const char *bad[] = {"a\"b", "a\\b", "tab\there", "nl\n", "caf\xc3\xa9", "\x01", "\x1f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int field = 0; field < 6; field++) {
            tk_introspection r = sample(2, false);
            tk_slice s = tk_slice_from_str(bad[i]);
            tk_slice iss = TK_SLICE_LIT("http://x");
            switch (field) {
            case 0:
                r.tok.scope = s;
                break;
            case 1:
                r.tok.client_id = s;
                break;
            case 2:
                r.sub = s;
                break;
            case 3:
                r.tok.aud = s;
                break;
            case 4:
                r.actors[1] = s;
                break;
            default:
                iss = s;
            }
            char buf[1024];
            CHECK_EQ_INT(tk_introspect_json_fast(&r, iss, buf, sizeof buf), 0);
        }
    }
}

static void test_is_plain(void)
{
    for (int c = 0; c < 256; c++) {
        bool want = c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; /* DEL needs no escape */
        for (size_t pos = 0; pos < 19; pos++) { /* every place in and after a word */
            char s[19];
            memset(s, 'a', sizeof s);
            s[pos] = (char)c;
            CHECK(tk_json_is_plain(s, sizeof s) == want);
            CHECK(tk_json_is_plain(s, pos)); /* the prefix before it */
        }
    }
    CHECK(tk_json_is_plain(NULL, 0));
}

int main(void)
{
    RUN(test_shapes);
    RUN(test_dpop_bound);
    RUN(test_idp_iss);
    RUN(test_needs_escaping);
    RUN(test_is_plain);
    return check_report();
}
