/*
 * Unit tests for PKCE S256 (RFC 7636): the RFC's Appendix B vector, the
 * verifier alphabet and length bounds, strict challenge decoding, and the
 * check at the token endpoint (wrong verifier, malformed verifier).
 */
#include "check.h"

#include "tokend/crypto.h"
#include "tokend/oauth_pkce.h"

static const char rfc_verifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char rfc_challenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

static tk_slice S(const char *s)
{
    return tk_slice_from_str(s);
}

static void test_rfc_vector(void)
{
    char out[TK_OAUTH_CHALLENGE_LEN + 1];
    tk_oauth_pkce_s256(S(rfc_verifier), out);
    CHECK_EQ_STR(out, rfc_challenge);

    uint8_t ch[TK_HASH_LEN];
    tk_oauth_err e = {0};
    CHECK_EQ_INT(tk_oauth_pkce_challenge_parse(S(rfc_challenge), ch, &e), 0);
    uint8_t h[TK_HASH_LEN];
    tk_sha256(rfc_verifier, strlen(rfc_verifier), h);
    CHECK(memcmp(ch, h, TK_HASH_LEN) == 0);
    CHECK_EQ_INT(tk_oauth_pkce_verify(S(rfc_verifier), ch, &e), 0);
}

static void test_verifier_syntax(void)
{
    char v[TK_OAUTH_VERIFIER_MAX + 2];
    memset(v, 'a', sizeof v);
    CHECK(!tk_oauth_pkce_verifier_valid((tk_slice){v, 0}));
    CHECK(!tk_oauth_pkce_verifier_valid((tk_slice){v, TK_OAUTH_VERIFIER_MIN - 1}));
    CHECK(tk_oauth_pkce_verifier_valid((tk_slice){v, TK_OAUTH_VERIFIER_MIN}));
    CHECK(tk_oauth_pkce_verifier_valid((tk_slice){v, TK_OAUTH_VERIFIER_MAX}));
    CHECK(!tk_oauth_pkce_verifier_valid((tk_slice){v, TK_OAUTH_VERIFIER_MAX + 1}));
    /* each unreserved class is accepted; every other byte is refused */
    for (int c = 0; c < 256; c++) {
        char w[TK_OAUTH_VERIFIER_MIN];
        memset(w, 'Z', sizeof w);
        w[20] = (char)c;
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
        CHECK(tk_oauth_pkce_verifier_valid((tk_slice){w, sizeof w}) == want);
    }
}

static void test_challenge_syntax(void)
{
    uint8_t ch[TK_HASH_LEN];
    tk_oauth_err e = {0};
    const char *bad[] = {
        "",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c",   /* 42 */
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cMA", /* 44 */
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=", /* padding */
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",  /* base64, not base64url */
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw/cM",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN", /* non-canonical last char */
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw cM",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk.", /* a verifier (plain) */
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        e = (tk_oauth_err){0};
        memset(ch, 0xaa, sizeof ch);
        CHECK_EQ_INT(tk_oauth_pkce_challenge_parse(S(bad[i]), ch, &e), TK_E_INVALID);
        CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_REQUEST);
        uint8_t zero[TK_HASH_LEN] = {0};
        CHECK(memcmp(ch, zero, sizeof ch) == 0);
    }
}

static void test_verify_refusals(void)
{
    uint8_t ch[TK_HASH_LEN];
    tk_oauth_err e = {0};
    CHECK_EQ_INT(tk_oauth_pkce_challenge_parse(S(rfc_challenge), ch, &e), 0);
    /* a well-formed but different verifier: invalid_grant */
    char other[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
    CHECK_EQ_INT(tk_oauth_pkce_verify(S(other), ch, &e), TK_E_INVALID);
    CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_GRANT);
    /* every single-bit change of the stored challenge fails */
    for (size_t bit = 0; bit < TK_HASH_LEN * 8; bit++) {
        ch[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_EQ_INT(tk_oauth_pkce_verify(S(rfc_verifier), ch, &e), TK_E_INVALID);
        ch[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK_EQ_INT(tk_oauth_pkce_verify(S(rfc_verifier), ch, &e), 0);
    /* malformed verifiers: invalid_request, even when a hash would match */
    const char *bad[] = {"", "short", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX",
                         "dBjftJeZ4CVP+mB92K27uhbUJU1p1r_wW1gFWFOEjXk"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        e = (tk_oauth_err){0};
        CHECK_EQ_INT(tk_oauth_pkce_verify(S(bad[i]), ch, &e), TK_E_INVALID);
        CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_REQUEST);
    }
    /* the challenge is the verifier itself ("plain"): no match */
    char plain_ch[TK_HASH_LEN];
    memcpy(plain_ch, rfc_verifier, TK_HASH_LEN);
    CHECK_EQ_INT(tk_oauth_pkce_verify(S(rfc_verifier), (const uint8_t *)plain_ch, &e),
                 TK_E_INVALID);
}

static void test_round_trip(void)
{
    /* random verifiers of every length round-trip through s256 → parse → verify */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    for (size_t n = TK_OAUTH_VERIFIER_MIN; n <= TK_OAUTH_VERIFIER_MAX; n++) {
        uint8_t rnd[TK_OAUTH_VERIFIER_MAX];
        CHECK_EQ_INT(tk_random_bytes(rnd, n), 0);
        char v[TK_OAUTH_VERIFIER_MAX];
        for (size_t i = 0; i < n; i++) {
            v[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
        }
        char c[TK_OAUTH_CHALLENGE_LEN + 1];
        tk_oauth_pkce_s256((tk_slice){v, n}, c);
        uint8_t ch[TK_HASH_LEN];
        tk_oauth_err e = {0};
        CHECK_EQ_INT(tk_oauth_pkce_challenge_parse(S(c), ch, &e), 0);
        CHECK_EQ_INT(tk_oauth_pkce_verify((tk_slice){v, n}, ch, &e), 0);
    }
}

int main(void)
{
    RUN(test_rfc_vector);
    RUN(test_verifier_syntax);
    RUN(test_challenge_syntax);
    RUN(test_verify_refusals);
    RUN(test_round_trip);
    return check_report();
}
