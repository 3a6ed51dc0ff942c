/*
 * The DPoP proof checker (src/endpoints/dpop.c, RFC 9449 §4.3) and its
 * replay cache. Proofs are made here with OpenSSL from a real P-256 key:
 * a good proof passes and yields the key's RFC 7638 thumbprint (the same as
 * tk_keys_thumbprint); each broken property (typ, alg, private member in the
 * jwk, another key's signature, htm, htu, iat too old or in the future, ath
 * missing or wrong, jti missing) is refused on its own. The replay cache
 * refuses a jti seen within its window at any load, forgets it once its
 * proof could no longer be accepted, holds dpop-rate proofs a second across
 * the whole window, refuses (fail closed) beyond that, and never grows.
 */
#include "check.h"

#include "../../src/endpoints/endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/keys.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <errno.h>
#include <pthread.h>
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

/* Each thread keeps the verification contexts of recent proof keys: more
 * keys than it keeps, met in turn and again, each verifies its own proofs
 * (and yields its own thumbprint), never another key's signature under its
 * jwk, whether its context was kept or had been replaced. */
static void test_key_cache(void)
{
    enum { KEYS = TK_DPOP_KEY_CACHE * 2 + 3 };
    EVP_PKEY **keys = calloc(KEYS, sizeof *keys);
    TK_ASSERT(keys != NULL);
    for (size_t i = 0; i < KEYS; i++) {
        keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        TK_ASSERT(keys[i] != NULL);
    }
    char c[512], p[4096];
    ep_dpop_want w;
    want_for(&w, "POST", "https://as.example/token", NULL);
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < KEYS; k++) {
            size_t i = round == 1 ? KEYS - 1 - k : k; /* the second round backwards */
            ep_dpop_proof out;
            claims_of(c, sizeof c, "jc", "POST", "https://as.example/token", NOW, NULL);
            proof(keys[i], keys[(i + 1) % KEYS], "dpop+jwt", "ES256", "", c, p, sizeof p);
            CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_BAD_SIG);
            proof(keys[i], keys[i], "dpop+jwt", "ES256", "", c, p, sizeof p);
            CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_OK);
            uint8_t x[32], y[32];
            coords(keys[i], x, y);
            char kid[TK_KID_LEN + 1], got[TK_KID_LEN + 1];
            tk_keys_thumbprint(x, y, kid);
            b64(out.jkt, 32, got, sizeof got);
            CHECK_EQ_STR(got, kid);
            proof(keys[i], keys[(i + 1) % KEYS], "dpop+jwt", "ES256", "", c, p, sizeof p);
            CHECK_EQ_INT(check(p, &w, &out), EP_DPOP_BAD_SIG); /* its context kept now */
        }
    }
    for (size_t i = 0; i < KEYS; i++) {
        EVP_PKEY_free(keys[i]);
    }
    free(keys);
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

/* The jti of proof number i of a test (distinct per i and per salt). */
static void jti_of(uint32_t salt, uint64_t i, uint8_t j[TK_HASH_LEN])
{
    uint8_t in[12];
    memcpy(in, &salt, 4);
    memcpy(in + 4, &i, 8);
    tk_sha256(in, sizeof in, j);
}

/* How long a proof accepted at now may be remembered (its iat at the far
 * end of the window). */
#define UNTIL(now) ((now) + TK_DPOP_IAT_PAST + TK_DPOP_IAT_FUTURE + 1)
#define WINDOW     (TK_DPOP_IAT_PAST + TK_DPOP_IAT_FUTURE + 1)

static void test_replay_cache(void)
{
    ep_dpop_seen *s = NULL;
    CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_MIN, &s), 0);
    uint8_t j[TK_HASH_LEN];
    tk_sha256("a", 1, j);
    CHECK_EQ_INT(ep_dpop_remember(s, j, NOW + 61, NOW), EP_DPOP_OK);
    /* Refused at every second of the window after it. */
    for (int64_t t = NOW; t <= NOW + TK_DPOP_IAT_PAST + TK_DPOP_IAT_FUTURE; t++) {
        CHECK_EQ_INT(ep_dpop_remember(s, j, NOW + 61, t), EP_DPOP_REPLAY);
    }
    /* A proof whose acceptance would outlast the generations: refused. */
    tk_sha256("b", 1, j);
    CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(NOW) + 1, NOW), EP_DPOP_FULL);
    CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(NOW), NOW), EP_DPOP_OK);
    CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(NOW), UNTIL(NOW) - 1), EP_DPOP_REPLAY);
    /* A clock step back (to the same generation slot, or any other)
     * forgets nothing. */
    for (int64_t back = 1; back <= 2 * TK_DPOP_REPLAY_GENS * TK_DPOP_REPLAY_GEN_SECONDS; back++) {
        CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(NOW) - back, NOW - back), EP_DPOP_REPLAY);
    }
    CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(NOW), NOW + 1), EP_DPOP_REPLAY);
    ep_dpop_seen_free(s);
}

/* Expiry: a jti is forgotten once a proof carrying it can no longer be
 * accepted (its generation restarts), not before. Every arrival second of a
 * generation is tried, each with its own cache. */
static void test_replay_expiry(void)
{
    for (int64_t off = 0; off < TK_DPOP_REPLAY_GEN_SECONDS; off++) {
        ep_dpop_seen *s = NULL;
        CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_MIN, &s), 0);
        int64_t at = NOW - NOW % TK_DPOP_REPLAY_GEN_SECONDS + off;
        uint8_t j[TK_HASH_LEN];
        jti_of(7, (uint64_t)off, j);
        CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(at), at), EP_DPOP_OK);
        CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(at), UNTIL(at) - 1), EP_DPOP_REPLAY);
        int64_t gone =
            (at / TK_DPOP_REPLAY_GEN_SECONDS + TK_DPOP_REPLAY_GENS) * TK_DPOP_REPLAY_GEN_SECONDS;
        CHECK(gone >= UNTIL(at));
        CHECK(gone - UNTIL(at) < 2 * TK_DPOP_REPLAY_GEN_SECONDS); /* not kept much longer */
        CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(gone - 1), gone - 1), EP_DPOP_REPLAY);
        CHECK_EQ_INT(ep_dpop_remember(s, j, UNTIL(gone), gone), EP_DPOP_OK);
        ep_dpop_seen_free(s);
    }
}

/* Capacity: at the configured rate, proofs arriving every second for longer
 * than the window (here 4 000/s for 70 s: 280 000 distinct jtis) are all
 * accepted, and a replay of any of them inside its window is refused
 * however full the cache is. Beyond the rate: refused, never forgotten. */
static void test_replay_capacity(void)
{
    enum { RATE = 4000, SECONDS = WINDOW + 4 };
    ep_dpop_seen *s = NULL;
    CHECK_EQ_INT(ep_dpop_seen_new(RATE, &s), 0);
    CHECK(ep_dpop_seen_capacity(s) >= (uint64_t)RATE * TK_DPOP_REPLAY_GEN_SECONDS);
    int refused = 0, replay_missed = 0;
    for (int64_t t = 0; t < SECONDS; t++) {
        for (uint64_t i = 0; i < RATE; i++) {
            uint8_t j[TK_HASH_LEN];
            jti_of(1, (uint64_t)t * RATE + i, j);
            refused += ep_dpop_remember(s, j, UNTIL(NOW + t), NOW + t) != EP_DPOP_OK;
        }
        /* Replays of proofs accepted up to a window ago. */
        for (int64_t back = 0; back <= t && back < WINDOW; back += 7) {
            uint8_t j[TK_HASH_LEN];
            jti_of(1, (uint64_t)(t - back) * RATE + (uint64_t)back, j);
            replay_missed += ep_dpop_remember(s, j, UNTIL(NOW + t), NOW + t) != EP_DPOP_REPLAY;
        }
    }
    CHECK_EQ_INT(refused, 0);
    CHECK_EQ_INT(replay_missed, 0);
    CHECK_EQ_INT((int)ep_dpop_seen_full(s), 0);
    /* Twice the rate within one generation: the excess is refused (fail
     * closed), and every accepted jti still reads as a replay. */
    int64_t t0 = NOW + 1000 - (NOW + 1000) % TK_DPOP_REPLAY_GEN_SECONDS;
    uint64_t n = 2ull * RATE * TK_DPOP_REPLAY_GEN_SECONDS, ok = 0;
    bool *took = calloc(n, sizeof *took);
    TK_ASSERT(took != NULL);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t j[TK_HASH_LEN];
        jti_of(2, i, j);
        took[i] = ep_dpop_remember(s, j, UNTIL(t0), t0) == EP_DPOP_OK;
        ok += took[i];
    }
    CHECK(ok >= (uint64_t)RATE * TK_DPOP_REPLAY_GEN_SECONDS);
    CHECK(ok <= ep_dpop_seen_capacity(s) && ok < n);
    CHECK(ep_dpop_seen_full(s) == n - ok);
    replay_missed = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t j[TK_HASH_LEN];
        jti_of(2, i, j);
        if (took[i]) { /* a minute later, in the last live second of its generation */
            replay_missed += ep_dpop_remember(s, j, UNTIL(t0 + 60), t0 + 60) != EP_DPOP_REPLAY;
        }
    }
    CHECK_EQ_INT(replay_missed, 0);
    free(took);
    ep_dpop_seen_free(s);
}

/* Workers race: four threads present the same 20 000 jtis at the same
 * time (a replay arriving on another worker); each jti is accepted exactly
 * once. */
enum { RACE_JTIS = 20000, RACE_THREADS = 4 };
typedef struct race {
    ep_dpop_seen *s;
    uint8_t *ok; /* RACE_JTIS counters, one per thread */
} race;

static void *race_run(void *arg)
{
    race *r = arg;
    for (uint64_t i = 0; i < RACE_JTIS; i++) {
        uint8_t j[TK_HASH_LEN];
        jti_of(5, i, j);
        r->ok[i] = ep_dpop_remember(r->s, j, UNTIL(NOW), NOW) == EP_DPOP_OK;
    }
    return NULL;
}

static void test_replay_threads(void)
{
    ep_dpop_seen *s = NULL;
    CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_DEFAULT, &s), 0);
    static uint8_t ok[RACE_THREADS][RACE_JTIS];
    race r[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        r[i] = (race){s, ok[i]};
        TK_ASSERT(pthread_create(&th[i], NULL, race_run, &r[i]) == 0);
    }
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    int wrong = 0;
    for (size_t i = 0; i < RACE_JTIS; i++) {
        int n = 0;
        for (int t = 0; t < RACE_THREADS; t++) {
            n += ok[t][i];
        }
        wrong += n != 1;
    }
    CHECK_EQ_INT(wrong, 0);
    ep_dpop_seen_free(s);
}

/* Memory: fixed at start from the rate, the same after any load, and
 * about 1.4 KiB per proof/s as documented. Rates outside the setting's
 * range are refused. */
static void test_replay_memory(void)
{
    ep_dpop_seen *s = NULL;
    CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_MIN - 1, &s), -EINVAL);
    CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_MAX + 1, &s), -EINVAL);
    CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_DEFAULT, &s), 0);
    size_t b = ep_dpop_seen_bytes(s);
    CHECK(b >= (size_t)TK_DPOP_RATE_DEFAULT * 1300 && b <= (size_t)TK_DPOP_RATE_DEFAULT * 1500);
    for (uint64_t i = 0; i < 400000; i++) {
        uint8_t j[TK_HASH_LEN];
        jti_of(3, i, j);
        int64_t t = NOW + (int64_t)(i / 1000);
        (void)ep_dpop_remember(s, j, UNTIL(t), t);
    }
    CHECK(ep_dpop_seen_bytes(s) == b);
    ep_dpop_seen_free(s);
}

static void test_nonces(void)
{
    ep_dpop_seen *s = NULL, *other = NULL;
    CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_MIN, &s), 0);
    CHECK_EQ_INT(ep_dpop_seen_new(TK_DPOP_RATE_MIN, &other), 0);
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
    RUN(test_key_cache);
    RUN(test_header_refusals);
    RUN(test_claim_refusals);
    RUN(test_replay_cache);
    RUN(test_replay_expiry);
    RUN(test_replay_capacity);
    RUN(test_replay_threads);
    RUN(test_replay_memory);
    RUN(test_nonces);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    return check_report();
}
