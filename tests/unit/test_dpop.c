/*
 * The DPoP proof checker (src/endpoints/dpop.c, RFC 9449 §4.3) and its
 * replay cache. Proofs are made here with OpenSSL from a real P-256 key:
 * a good proof passes and yields the key's RFC 7638 thumbprint (the same as
 * tk_keys_thumbprint); each broken property (typ, alg, private member in the
 * jwk, another key's signature, htm, htu, iat too old or in the future, ath
 * missing or wrong, jti missing) is refused on its own. The replay cache
 * refuses a jti seen within its window, forgets it afterwards, and refuses
 * (fail closed) a jti whose probe window is full of live ones.
 */
#include "check.h"

#include "../../src/endpoints/endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/keys.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000

static EVP_PKEY *key_a, *key_b;

static void coords(EVP_PKEY *k, uint8_t x[32], uint8_t y[32])
{
    uint8_t pt[65];
    size_t n = 0;
    TK_ASSERT(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n) &&
              n == 65);
    memcpy(x, pt + 1, 32);
    memcpy(y, pt + 33, 32);
}

static void b64(const void *p, size_t n, char *out, size_t cap)
{
    TK_ASSERT(tk_b64url_encode(p, n, out, cap) == 0);
}

/* A proof: header members after typ/alg/jwk (extra_hdr, may be ""), claims
 * JSON as given; signed with signer (the jwk is always jwk_key's). */
static void proof(EVP_PKEY *jwk_key, EVP_PKEY *signer, const char *typ, const char *alg,
                  const char *extra_jwk, const char *claims, char *out, size_t cap)
{
    uint8_t x[32], y[32];
    coords(jwk_key, x, y);
    char bx[64], by[64];
    b64(x, 32, bx, sizeof bx);
    b64(y, 32, by, sizeof by);
    char hdr[512];
    snprintf(hdr, sizeof hdr,
             "{\"typ\":\"%s\",\"alg\":\"%s\",\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\","
             "\"x\":\"%s\",\"y\":\"%s\"%s}}",
             typ, alg, bx, by, extra_jwk);
    char h64[1024], c64[2048];
    b64(hdr, strlen(hdr), h64, sizeof h64);
    b64(claims, strlen(claims), c64, sizeof c64);
    char input[4096];
    snprintf(input, sizeof input, "%s.%s", h64, c64);
    unsigned char der[128];
    size_t dlen = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    TK_ASSERT(md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer) == 1 &&
              EVP_DigestSign(md, der, &dlen, (unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(md);
    const unsigned char *dp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &dp, (long)dlen);
    TK_ASSERT(es != NULL);
    uint8_t rs[64];
    TK_ASSERT(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) == 32 &&
              BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) == 32);
    ECDSA_SIG_free(es);
    char s64[128];
    b64(rs, 64, s64, sizeof s64);
    snprintf(out, cap, "%s.%s", input, s64);
}

static const char token[] = "tk_at_example";

static void ath_of(const char *tok, char out[64])
{
    uint8_t h[TK_HASH_LEN];
    tk_sha256(tok, strlen(tok), h);
    b64(h, sizeof h, out, 64);
}

/* want.url points into its own hostbuf: filled in place, never copied. */
static void want_for(ep_dpop_want *w, const char *method, const char *url, const uint8_t *ath)
{
    memset(w, 0, sizeof *w);
    w->htm = tk_slice_from_str(method);
    w->ath = ath;
    w->now = NOW;
    TK_ASSERT(ep_dpop_url(tk_slice_from_str(url), &w->url) == 0);
}

static int check(const char *p, const ep_dpop_want *w, ep_dpop_proof *out)
{
    const char *why = NULL;
    int rc = ep_dpop_check(tk_slice_from_str(p), w, out, &why);
    CHECK(rc == EP_DPOP_OK || why != NULL);
    return rc;
}

static void claims_of(char *out, size_t cap, const char *jti, const char *htm, const char *htu,
                      long long iat, const char *ath)
{
    int n = snprintf(out, cap, "{\"jti\":\"%s\",\"htm\":\"%s\",\"htu\":\"%s\",\"iat\":%lld", jti,
                     htm, htu, iat);
    if (ath != NULL) {
        n += snprintf(out + n, cap - (size_t)n, ",\"ath\":\"%s\"", ath);
    }
    snprintf(out + n, cap - (size_t)n, "}");
}

static void test_good_proof(void)
{
    char ath[64], c[512], p[4096];
    ath_of(token, ath);
    uint8_t h[TK_HASH_LEN];
    tk_sha256(token, strlen(token), h);
    claims_of(c, sizeof c, "j1", "GET", "https://api.example/docs/1?x=1#f", NOW - 10, ath);
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    ep_dpop_want w;
    want_for(&w, "GET", "https://API.example:443/docs/1", h);
    ep_dpop_proof out;
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_OK);
    uint8_t x[32], y[32];
    coords(key_a, x, y);
    char kid[TK_KID_LEN + 1], got[TK_KID_LEN + 1];
    tk_keys_thumbprint(x, y, kid);
    b64(out.jkt, 32, got, sizeof got);
    CHECK_EQ_STR(got, kid);
    uint8_t jh[TK_HASH_LEN];
    tk_sha256("j1", 2, jh);
    CHECK(memcmp(out.jti, jh, TK_HASH_LEN) == 0);
    CHECK(out.until > NOW);
    /* At the token endpoint (no ath expected) the same kind of proof passes. */
    claims_of(c, sizeof c, "j2", "POST", "https://as.example/token", NOW, NULL);
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    want_for(&w, "POST", "https://as.example/token", NULL);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_OK);
}

static void test_header_refusals(void)
{
    char c[512], p[4096];
    claims_of(c, sizeof c, "j", "POST", "https://as.example/token", NOW, NULL);
    ep_dpop_want w;
    want_for(&w, "POST", "https://as.example/token", NULL);
    ep_dpop_proof out;
    proof(key_a, key_a, "jwt", "ES256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_MALFORMED);
    proof(key_a, key_a, "dpop+jwt", "HS256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_BAD_KEY);
    proof(key_a, key_a, "dpop+jwt", "none", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_BAD_KEY);
    proof(key_a, key_a, "dpop+jwt", "RS256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_BAD_KEY);
    proof(key_a, key_a, "dpop+jwt", "ES256", ",\"d\":\"AAAA\"", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_BAD_KEY);
    /* Signed by another key than the jwk's. */
    proof(key_a, key_b, "dpop+jwt", "ES256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_BAD_SIG);
    /* Truncations and junk never pass. */
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    size_t n = strlen(p);
    for (size_t k = 0; k < n; k += 7) {
        const char *why = NULL;
        CHECK(ep_dpop_check((tk_slice){p, k}, &w, &out, &why) != EP_DPOP_OK);
    }
    const char *why = NULL;
    CHECK(ep_dpop_check(TK_SLICE_NULL, &w, &out, &why) == EP_DPOP_MALFORMED);
}

static void test_claim_refusals(void)
{
    char ath[64], bad_ath[64], c[512], p[4096];
    ath_of(token, ath);
    ath_of("another token", bad_ath);
    uint8_t h[TK_HASH_LEN];
    tk_sha256(token, strlen(token), h);
    ep_dpop_want w;
    want_for(&w, "GET", "https://api.example/docs", h);
    ep_dpop_proof out;
    static const struct {
        const char *jti, *htm, *htu;
        long long iat;
        int use_ath; /* 0 none, 1 right, 2 wrong */
    } bad[] = {
        {"j", "POST", "https://api.example/docs", NOW, 1},
        {"j", "get", "https://api.example/docs", NOW, 1},
        {"j", "GET", "https://api.example/docs/", NOW, 1},
        {"j", "GET", "https://api.example/Docs", NOW, 1},
        {"j", "GET", "http://api.example/docs", NOW, 1},
        {"j", "GET", "https://api.example:8443/docs", NOW, 1},
        {"j", "GET", "https://evil.example/docs", NOW, 1},
        {"j", "GET", "api.example/docs", NOW, 1},
        {"j", "GET", "https://api.example/docs", NOW - TK_DPOP_IAT_PAST - 1, 1},
        {"j", "GET", "https://api.example/docs", NOW + TK_DPOP_IAT_FUTURE + 1, 1},
        {"j", "GET", "https://api.example/docs", NOW, 0},
        {"j", "GET", "https://api.example/docs", NOW, 2},
        {"", "GET", "https://api.example/docs", NOW, 1},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        const char *a = bad[i].use_ath == 0 ? NULL : bad[i].use_ath == 1 ? ath : bad_ath;
        claims_of(c, sizeof c, bad[i].jti, bad[i].htm, bad[i].htu, bad[i].iat, a);
        proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
        int rc = check(p, &w, &out);
        if (rc != EP_DPOP_BAD_CLAIMS) {
            fprintf(stderr, "  case %zu: rc %d\n", i, rc);
        }
        CHECK_EQ_INT(rc, EP_DPOP_BAD_CLAIMS);
    }
    /* The edges of the window pass. */
    claims_of(c, sizeof c, "j", "GET", "https://api.example/docs", NOW - TK_DPOP_IAT_PAST, ath);
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_OK);
    claims_of(c, sizeof c, "j", "GET", "https://api.example/docs", NOW + TK_DPOP_IAT_FUTURE, ath);
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_OK);
}

static void test_replay_cache(void)
{
    ep_dpop_seen *s = NULL;
    CHECK_EQ_INT(ep_dpop_seen_new(&s), 0);
    uint8_t j[TK_HASH_LEN];
    tk_sha256("a", 1, j);
    CHECK_EQ_INT(ep_dpop_remember(s, j, NOW + 61, NOW), EP_DPOP_OK);
    CHECK_EQ_INT(ep_dpop_remember(s, j, NOW + 61, NOW + 60), EP_DPOP_REPLAY);
    CHECK_EQ_INT(ep_dpop_remember(s, j, NOW + 200, NOW + 61), EP_DPOP_OK); /* forgotten */
    /* Fill one probe window (same first 8 bytes, different rest). */
    uint8_t k[TK_HASH_LEN] = {0};
    for (unsigned i = 0; i < TK_DPOP_REPLAY_PROBES; i++) {
        k[31] = (uint8_t)(i + 1);
        CHECK_EQ_INT(ep_dpop_remember(s, k, NOW + 61, NOW), EP_DPOP_OK);
    }
    k[31] = 0xff;
    CHECK_EQ_INT(ep_dpop_remember(s, k, NOW + 61, NOW), EP_DPOP_FULL); /* fail closed */
    CHECK_EQ_INT((int)ep_dpop_seen_full(s), 1);
    k[31] = 1;
    CHECK_EQ_INT(ep_dpop_remember(s, k, NOW + 61, NOW), EP_DPOP_REPLAY);
    /* Once they expire the slots are reused. */
    k[31] = 0xff;
    CHECK_EQ_INT(ep_dpop_remember(s, k, NOW + 200, NOW + 61), EP_DPOP_OK);
    ep_dpop_seen_free(s);
}

static void test_nonces(void)
{
    ep_dpop_seen *s = NULL, *other = NULL;
    CHECK_EQ_INT(ep_dpop_seen_new(&s), 0);
    CHECK_EQ_INT(ep_dpop_seen_new(&other), 0);
    char n[EP_DPOP_NONCE_LEN + 1], o[EP_DPOP_NONCE_LEN + 1];
    ep_dpop_nonce(s, NOW, n);
    ep_dpop_nonce(other, NOW, o);
    CHECK_EQ_INT(strlen(n), EP_DPOP_NONCE_LEN);
    tk_slice sn = {n, EP_DPOP_NONCE_LEN};
    CHECK(ep_dpop_nonce_ok(s, sn, NOW));
    CHECK(ep_dpop_nonce_ok(s, sn, NOW + TK_DPOP_NONCE_SLOT)); /* the next slot too */
    CHECK(!ep_dpop_nonce_ok(s, sn, NOW + 2 * TK_DPOP_NONCE_SLOT));
    CHECK(!ep_dpop_nonce_ok(s, sn, NOW - TK_DPOP_NONCE_SLOT));          /* not before it was made */
    CHECK(!ep_dpop_nonce_ok(s, (tk_slice){o, EP_DPOP_NONCE_LEN}, NOW)); /* another key */
    CHECK(!ep_dpop_nonce_ok(s, (tk_slice){n, EP_DPOP_NONCE_LEN - 1}, NOW));
    for (size_t i = 0; i < EP_DPOP_NONCE_LEN; i++) { /* any one character changed */
        char t[EP_DPOP_NONCE_LEN + 1];
        memcpy(t, n, sizeof t);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        CHECK(!ep_dpop_nonce_ok(s, (tk_slice){t, EP_DPOP_NONCE_LEN}, NOW));
    }
    /* A proof checked with nonces required: none → USE_NONCE, the current one passes. */
    char c[512], p[4096];
    ep_dpop_want w;
    want_for(&w, "POST", "https://as.example/token", NULL);
    w.nonces = s;
    ep_dpop_proof out;
    claims_of(c, sizeof c, "j", "POST", "https://as.example/token", NOW, NULL);
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_USE_NONCE);
    size_t cl = strlen(c);
    snprintf(c + cl - 1, sizeof c - cl + 1, ",\"nonce\":\"%s\"}", o);
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_USE_NONCE);
    claims_of(c, sizeof c, "j", "POST", "https://as.example/token", NOW, NULL);
    cl = strlen(c);
    snprintf(c + cl - 1, sizeof c - cl + 1, ",\"nonce\":\"%s\"}", n);
    proof(key_a, key_a, "dpop+jwt", "ES256", "", c, p, sizeof p);
    CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_OK);
    ep_dpop_seen_free(s);
    ep_dpop_seen_free(other);
}

int main(void)
{
    key_a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    key_b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    TK_ASSERT(key_a != NULL && key_b != NULL);
    RUN(test_good_proof);
    RUN(test_header_refusals);
    RUN(test_claim_refusals);
    RUN(test_replay_cache);
    RUN(test_nonces);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    return check_report();
}
