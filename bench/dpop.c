/*
 * DPoP proofs (RFC 9449) made by the bench, for the forward-auth-dpop
 * scenario: one P-256 key, proofs of typ dpop+jwt, alg ES256, the public
 * key in the header, and claims jti (unique per proof), htm, htu, iat and,
 * for a resource request, ath (SHA-256 of the access token). The header's
 * base64url is made once; each proof is the payload, an ECDSA signature
 * and its DER → r||s conversion (RFC 7518 §3.4).
 */
#include "bench.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        v |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? in[i + 2] : 0;
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        if (i + 1 < n) {
            out[o++] = t[v >> 6 & 63];
        }
        if (i + 2 < n) {
            out[o++] = t[v & 63];
        }
    }
    out[o] = '\0';
    return o;
}

int dpop_key_new(dpop_key *k)
{
    memset(k, 0, sizeof *k);
    unsigned char pt[65];
    size_t n = 0;
    char x[48], y[48], hdr[256];
    k->pk = EVP_EC_gen("P-256");
    if (k->pk == NULL ||
        !EVP_PKEY_get_octet_string_param(k->pk, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n) ||
        n != 65 || RAND_bytes((unsigned char *)&k->jti_prefix, sizeof k->jti_prefix) != 1) {
        dpop_key_free(k);
        return -1;
    }
    b64url(pt + 1, 32, x);
    b64url(pt + 33, 32, y);
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":{\"kty\":\"EC\",\"crv\":"
                      "\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}}",
                      x, y);
    k->hdr_len = b64url((const unsigned char *)hdr, (size_t)hl, k->hdr);
    return 0;
}

void dpop_key_free(dpop_key *k)
{
    EVP_PKEY_free(k->pk);
    k->pk = NULL;
}

size_t dpop_proof(const dpop_key *k, const char *htm, const char *htu, const char *at, uint64_t seq,
                  int64_t iat, char *out, size_t cap)
{
    char claims[512], ath[64] = "";
    if (at != NULL) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)at, strlen(at), d);
        char b[48];
        b64url(d, sizeof d, b);
        snprintf(ath, sizeof ath, ",\"ath\":\"%s\"", b);
    }
    int cl = snprintf(claims, sizeof claims,
                      "{\"jti\":\"%016llx%016llx\",\"htm\":\"%s\",\"htu\":\"%s\",\"iat\":%lld%s}",
                      (unsigned long long)k->jti_prefix, (unsigned long long)seq, htm, htu,
                      (long long)iat, ath);
    if (cl <= 0 || (size_t)cl >= sizeof claims ||
        k->hdr_len + 1 + ((size_t)cl + 2) / 3 * 4 + 1 + 86 + 1 > cap) {
        return 0;
    }
    size_t n = k->hdr_len;
    memcpy(out, k->hdr, n);
    out[n++] = '.';
    n += b64url((const unsigned char *)claims, (size_t)cl, out + n);
    unsigned char der[80], rs[64];
    size_t dl = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pk) == 1 &&
             EVP_DigestSign(md, der, &dl, (const unsigned char *)out, n) == 1;
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *sig = ok ? d2i_ECDSA_SIG(NULL, &p, (long)dl) : NULL;
    ok = sig != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32) == 32 &&
         BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    if (!ok) {
        return 0;
    }
    out[n++] = '.';
    n += b64url(rs, sizeof rs, out + n);
    return n;
}
