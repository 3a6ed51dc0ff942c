/*
 * IdP keys (idp.h): JWKS members (RSA n/e, EC crv/x/y) and PEM public keys
 * turned into OpenSSL EVP_PKEYs once, at load, so verifying an event never
 * parses a key; each key pinned to the algorithms it may verify. Also the
 * JWS algorithm names and the lookup of a key by kid, which the JWS checks
 * (jose.c) use. The trust file loader (trust.c) calls in here, never the
 * reverse.
 */
#include "idp_int.h"

#include "tokend/crypto.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#define RSA_ALGS                                                                                   \
    (TK_ALG_BIT(TK_ALG_RS256) | TK_ALG_BIT(TK_ALG_RS384) | TK_ALG_BIT(TK_ALG_RS512) |              \
     TK_ALG_BIT(TK_ALG_PS256) | TK_ALG_BIT(TK_ALG_PS384) | TK_ALG_BIT(TK_ALG_PS512))

/* ---- Algorithms ------------------------------------------------------------------ */

static const char *const alg_names[TK_ALG_COUNT] = {
    NULL, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
};

uint8_t tk_jws_alg_parse(tk_slice name)
{
    for (uint8_t a = 1; a < TK_ALG_COUNT; a++) {
        if (tk_slice_eq_str(name, alg_names[a])) {
            return a;
        }
    }
    return 0;
}

const char *tk_jws_alg_name(uint8_t alg)
{
    return alg > 0 && alg < TK_ALG_COUNT ? alg_names[alg] : "unknown";
}

/* ---- Keys --------------------------------------------------------------------------- */

/* A base64url member decoded into buf. */
static int get_b64(tk_jcfg *l, json_t *jwk, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    tk_slice s;
    int rc = tk_jcfg_get_str(l, jwk, name, TK_JWK_MEMBER_MAX, true, &s);
    if (rc == 0 && tk_b64url_decode(s.p, s.len, buf, cap, len) != 0) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "JWK member \"%s\" is not base64url of a valid size",
                          name);
    }
    return rc;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static int jwk_rsa(tk_jcfg *l, json_t *jwk, EVP_PKEY **out)
{
    uint8_t n[TK_JWK_RSA_N_MAX], e[TK_JWK_RSA_E_MAX];
    size_t nl, el;
    int rc = get_b64(l, jwk, "n", n, sizeof n, &nl);
    rc = rc != 0 ? rc : get_b64(l, jwk, "e", e, sizeof e, &el);
    if (rc != 0) {
        return rc;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bn != NULL && be != NULL && bld != NULL &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
        *out = from_params("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return *out != NULL ? 0 : tk_jcfg_fail(l, TK_E_BADINPUT, "RSA JWK is not a valid public key");
}

static int jwk_ec(tk_jcfg *l, json_t *jwk, EVP_PKEY **out)
{
    tk_slice c;
    int rc = tk_jcfg_get_str(l, jwk, "crv", 16, true, &c);
    if (rc != 0) {
        return rc;
    }
    const char *crv = c.p; /* NUL-terminated by jansson */
    bool p256 = strcmp(crv, "P-256") == 0, p384 = strcmp(crv, "P-384") == 0;
    if (!p256 && !p384) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "EC JWK curve \"%.16s\": only P-256 and P-384", crv);
    }
    size_t size = p256 ? 32 : 48, xl, yl;
    uint8_t pt[1 + 2 * 48] = {0x04}; /* uncompressed point: 04 || x || y */
    rc = get_b64(l, jwk, "x", pt + 1, 48, &xl);
    rc = rc != 0 ? rc : get_b64(l, jwk, "y", pt + 1 + size, 48, &yl);
    if (rc == 0 && (xl != size || yl != size)) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "EC JWK coordinates must be %zu bytes", size);
    }
    if (rc != 0) {
        return rc;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                        p256 ? "prime256v1" : "secp384r1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * size)) {
        *out = from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    return *out != NULL ? 0 : tk_jcfg_fail(l, TK_E_BADINPUT, "EC JWK is not a point on %s", crv);
}

/* Which algorithms a key can verify, by type and size; 0 if unsupported. */
static unsigned algs_of(tk_jcfg *l, EVP_PKEY *pkey, int *rc)
{
    *rc = 0;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < TK_RSA_BITS_MIN) {
            *rc = tk_jcfg_fail(l, TK_E_BADINPUT, "RSA key of %d bits: at least %d required",
                               EVP_PKEY_get_bits(pkey), TK_RSA_BITS_MIN);
            return 0;
        }
        return RSA_ALGS;
    }
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &gl)) {
        if (strcmp(group, "prime256v1") == 0) {
            return TK_ALG_BIT(TK_ALG_ES256);
        }
        if (strcmp(group, "secp384r1") == 0) {
            return TK_ALG_BIT(TK_ALG_ES384);
        }
    }
    *rc = tk_jcfg_fail(l, TK_E_BADINPUT, "unsupported key type (RSA, EC P-256 or P-384 only)");
    return 0;
}

/* The key's allowed algorithms: its type's, narrowed by the issuer's list
 * (or the type's default), narrowed by the key's own "alg". Returns 0, an
 * error, or UNUSABLE when the key can verify nothing allowed (the caller
 * decides: a JWKS member is skipped, a configured PEM key is an error). */
#define UNUSABLE 1

static int pin_algs(tk_jcfg *l, tk_idp_key *k, unsigned issuer_algs, json_t *alg)
{
    int rc;
    unsigned can = algs_of(l, k->pkey, &rc);
    if (rc != 0) {
        return rc;
    }
    unsigned dflt = (can & RSA_ALGS) ? TK_ALG_BIT(TK_ALG_RS256) : can;
    k->algs = can & (issuer_algs != 0 ? issuer_algs : dflt);
    if (alg != NULL) {
        const char *name = json_is_string(alg) ? json_string_value(alg) : "";
        uint8_t a = tk_jws_alg_parse(tk_slice_from_str(name));
        k->algs &= a != 0 ? TK_ALG_BIT(a) : 0;
    }
    return k->algs == 0 ? UNUSABLE : 0;
}

static int set_kid(tk_jcfg *l, tk_idp_issuer *is, tk_idp_key *k, json_t *obj)
{
    tk_slice kid;
    int rc = tk_jcfg_get_str(l, obj, "kid", TK_IDP_KID_MAX, false, &kid);
    if (rc != 0 || kid.p == NULL) {
        return rc;
    }
    for (unsigned i = 0; i < is->nkeys; i++) {
        if (is->keys[i].kid_len == kid.len && memcmp(is->keys[i].kid, kid.p, kid.len) == 0) {
            return tk_jcfg_fail(l, TK_E_BADINPUT, "two keys with kid \"%s\"", kid.p);
        }
    }
    memcpy(k->kid, kid.p, kid.len + 1);
    k->kid_len = kid.len;
    return 0;
}

static tk_idp_key *next_key(tk_jcfg *l, tk_idp_issuer *is, int *rc)
{
    if (is->nkeys >= TK_IDP_KEYS_MAX) {
        *rc = tk_jcfg_fail(l, TK_E_TOOBIG, "more than %d keys", TK_IDP_KEYS_MAX);
        return NULL;
    }
    *rc = 0;
    return &is->keys[is->nkeys];
}

/* A JWKS comes as the IdP publishes it: members we cannot use (another kty
 * or curve, use "enc", an alg we do not verify or do not allow) are skipped;
 * malformed or unsafe ones (private members, short RSA keys, duplicate
 * kids, bad coordinates) fail the load. */
static int add_jwk(tk_jcfg *l, tk_idp_issuer *is, json_t *jwk, unsigned issuer_algs)
{
    int rc;
    tk_idp_key *k = next_key(l, is, &rc);
    if (k == NULL) {
        return rc;
    }
    if (!json_is_object(jwk) || json_object_get(jwk, "d") != NULL) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "a JWK must be a public key object (no \"d\")");
    }
    tk_slice kty_s, use_s, crv_s;
    rc = tk_jcfg_get_str(l, jwk, "kty", 8, true, &kty_s);
    rc = rc != 0 ? rc : tk_jcfg_get_str(l, jwk, "use", 8, false, &use_s);
    rc = rc != 0 ? rc : tk_jcfg_get_str(l, jwk, "crv", 16, false, &crv_s);
    const char *kty = kty_s.p, *use = use_s.p, *crv = crv_s.p; /* NUL-terminated */
    bool ec = rc == 0 && strcmp(kty, "EC") == 0;
    bool ours = rc == 0 && (strcmp(kty, "RSA") == 0 || ec) && (use == NULL || !strcmp(use, "sig"));
    if (rc != 0 || !ours || (ec && crv != NULL && strcmp(crv, "P-256") && strcmp(crv, "P-384"))) {
        return rc; /* 0: not a key we could use, skipped */
    }
    rc = set_kid(l, is, k, jwk);
    rc = rc != 0 ? rc : ec ? jwk_ec(l, jwk, &k->pkey) : jwk_rsa(l, jwk, &k->pkey);
    rc = rc != 0 ? rc : pin_algs(l, k, issuer_algs, json_object_get(jwk, "alg"));
    if (rc == 0) {
        is->nkeys++;
    } else {
        EVP_PKEY_free(k->pkey);
        memset(k, 0, sizeof *k);
    }
    return rc == UNUSABLE ? 0 : rc;
}

int tk_idp_add_jwks(tk_jcfg *l, tk_idp_issuer *is, json_t *jwks, unsigned issuer_algs)
{
    json_t *keys = json_is_object(jwks) ? json_object_get(jwks, "keys") : NULL;
    if (!json_is_array(keys)) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "a JWKS must be an object with a \"keys\" array");
    }
    size_t i;
    json_t *jwk;
    json_array_foreach(keys, i, jwk)
    {
        int rc = add_jwk(l, is, jwk, issuer_algs);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int tk_idp_add_pem(tk_jcfg *l, tk_idp_issuer *is, json_t *spec, unsigned issuer_algs)
{
    static const char *const members[] = {"pem_file", "kid", "alg", NULL};
    int rc;
    tk_idp_key *k = next_key(l, is, &rc);
    tk_slice file;
    char path[PATH_MAX];
    rc = rc != 0
             ? rc
             : (json_is_object(spec) ? 0 : tk_jcfg_fail(l, TK_E_BADINPUT, "bad \"keys\" entry"));
    rc = rc != 0 ? rc : tk_jcfg_only_members(l, spec, members, "a \"keys\" entry");
    rc = rc != 0 ? rc : tk_jcfg_get_str(l, spec, "pem_file", PATH_MAX - 1, true, &file);
    rc = rc != 0 ? rc : tk_jcfg_resolve(l, file.p, path, sizeof path);
    rc = rc != 0 ? rc : set_kid(l, is, k, spec);
    if (rc != 0) {
        return rc;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        return tk_jcfg_fail(l, -e, "%s: %s", path, strerror(e));
    }
    k->pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    rc = k->pkey != NULL ? 0 : tk_jcfg_fail(l, TK_E_BADINPUT, "%s: no PEM public key", path);
    rc = rc != 0 ? rc : pin_algs(l, k, issuer_algs, json_object_get(spec, "alg"));
    if (rc == UNUSABLE) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "%s: the key can verify none of the allowed algorithms",
                          path);
    }
    if (rc == 0) {
        is->nkeys++;
    } else {
        EVP_PKEY_free(k->pkey);
        memset(k, 0, sizeof *k);
    }
    return rc;
}

/* ---- Lookup ------------------------------------------------------------------------------ */

const tk_idp_key *tk_idp_key_for(const tk_idp_issuer *iss, tk_slice kid, bool has_kid)
{
    if (!has_kid) {
        return iss->nkeys == 1 ? &iss->keys[0] : NULL;
    }
    for (unsigned i = 0; i < iss->nkeys; i++) {
        const tk_idp_key *k = &iss->keys[i];
        if (k->kid_len > 0 && k->kid_len == kid.len && memcmp(k->kid, kid.p, kid.len) == 0) {
            return k;
        }
    }
    return NULL;
}
