/*
 * libFuzzer target for the untrusted half of IdP-event JWS handling: the
 * compact-JWS splitter, strict base64url segments, header checks (alg, crit,
 * kid, typ) and JSON objects (ev_jws_parse), then every claim check an
 * endpoint makes on a parsed token (aud, iat/exp/nbf, string claims, typ)
 * and a signature check against a real P-256 key made at start-up, so the
 * r||s → DER conversion sees hostile lengths too. An input holding two 0xff
 * bytes is taken as raw header JSON, claims JSON and signature bytes and
 * base64url-encoded here first, so mutations reach the JSON checks (base64
 * text hides them from the fuzzer); every input is also tried as is.
 * Invariants: a parsed token
 * has an accepted alg and both JSON objects; the signing input is a prefix
 * of the input; a time check that passes yields an until in range.
 */
#include "fuzz_common.h"

#include "tokend/jose.h"

#include "tokend/crypto.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static tk_idp_issuer issuer;

static void init_issuer(void)
{
    strcpy(issuer.issuer, "https://idp.test");
    issuer.issuer_len = strlen(issuer.issuer);
    strcpy(issuer.audience, "tokend");
    issuer.audience_len = strlen(issuer.audience);
    issuer.leeway = 60;
    issuer.max_age = 86400;
    issuer.nkeys = 2;
    issuer.keys[0].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    issuer.keys[0].algs = TK_ALG_BIT(TK_ALG_ES256);
    strcpy(issuer.keys[0].kid, "ec");
    issuer.keys[0].kid_len = 2;
    issuer.keys[1].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    issuer.keys[1].algs = TK_ALG_BIT(TK_ALG_RS256) | TK_ALG_BIT(TK_ALG_PS256);
    strcpy(issuer.keys[1].kid, "rsa");
    issuer.keys[1].kid_len = 3;
    EXPECT(issuer.keys[0].pkey != NULL && issuer.keys[1].pkey != NULL);
}

static void claims(const ev_jws *j)
{
    const char *why = NULL;
    int64_t until = 0;
    if (ev_check_times(j->claims, &issuer, 1700000000, j->alg == TK_ALG_RS256, &until, &why) ==
        EV_OK) {
        EXPECT(until >= 1700000000 && until <= TK_TIME_MAX);
    } else {
        EXPECT(why != NULL);
    }
    (void)ev_check_aud(j->claims, &issuer);
    static const char *const names[] = {"iss", "sub", "sid", "jti", "nonce"};
    for (size_t i = 0; i < TK_ARRAY_LEN(names); i++) {
        tk_slice s;
        if (ev_claim_str(j->claims, names[i], TK_SUB_MAX, &s) == EV_OK && s.p != NULL) {
            EXPECT(s.len > 0 && s.len <= TK_SUB_MAX);
        }
    }
    if (j->typ.p != NULL) {
        (void)ev_typ_is(j->typ, "logout+jwt");
        (void)ev_typ_is(j->typ, "secevent+jwt");
    }
}

static void one(const char *p, size_t size)
{
    ev_jws j;
    const char *why = NULL;
    tk_slice in = {p, size};
    int rc = ev_jws_parse(in, &j, &why);
    if (rc != EV_OK) {
        EXPECT(why != NULL && j.header == NULL && j.claims == NULL);
        return;
    }
    EXPECT(j.alg > 0 && j.alg < TK_ALG_COUNT);
    EXPECT(json_is_object(j.header) && json_is_object(j.claims));
    EXPECT(j.signing_input.p == in.p && j.signing_input.len < size);
    EXPECT(j.sig_len > 0 && j.sig_len <= TK_JWS_SIG_MAX);
    rc = ev_jws_verify(&j, &issuer, &why);
    EXPECT(rc == EV_BAD_KEY || rc == EV_BAD_SIGNATURE || rc == EV_OK);
    claims(&j);
    ev_jws_free(&j);
}

/* Encode parts split by 0xff as a compact JWS into out; 0 when not split. */
static size_t assemble(const uint8_t *d, size_t n, char *out, size_t cap)
{
    const uint8_t *a = memchr(d, 0xff, n);
    const uint8_t *b = a ? memchr(a + 1, 0xff, (size_t)(d + n - a - 1)) : NULL;
    if (b == NULL) {
        return 0;
    }
    const uint8_t *part[3] = {d, a + 1, b + 1};
    size_t len[3] = {(size_t)(a - d), (size_t)(b - a - 1), (size_t)(d + n - b - 1)};
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        if (tk_b64url_encode(part[i], len[i], out + o, cap - o) != 0) {
            return 0;
        }
        o += tk_b64url_encoded_len(len[i]);
        if (i < 2) {
            out[o++] = '.';
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (issuer.nkeys == 0) {
        init_issuer();
    }
    one((const char *)data, size);
    static char buf[2 * TK_JWT_MAX];
    size_t n = size <= TK_JWT_MAX ? assemble(data, size, buf, sizeof buf) : 0;
    if (n > 0) {
        one(buf, n);
    }
    return 0;
}
