/*
 * Loading the IdP trust file (idp.h): JSON read with jansson, keys turned
 * into OpenSSL EVP_PKEYs once at load, so verifying an event never parses a
 * key. Every member is checked strictly and every problem is reported with
 * the issuer (or file) it belongs to; nothing partial is ever returned.
 *
 * The snapshot holder is a mutex-protected pointer plus a generation
 * counter: workers read the counter (one relaxed atomic load per batch) and
 * only take the mutex when it moved, i.e. after a reload.
 */
#include "tokend/idp.h"
#include "tokend/crypto.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Algorithms ------------------------------------------------------------------ */

static const char *const alg_names[TK_ALG_COUNT] = {
    NULL, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
};

#define RSA_ALGS                                                                                   \
    (TK_ALG_BIT(TK_ALG_RS256) | TK_ALG_BIT(TK_ALG_RS384) | TK_ALG_BIT(TK_ALG_RS512) |              \
     TK_ALG_BIT(TK_ALG_PS256) | TK_ALG_BIT(TK_ALG_PS384) | TK_ALG_BIT(TK_ALG_PS512))

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

/* ---- Errors and small readers ------------------------------------------------------ */

typedef struct loader {
    char *err;
    size_t errcap;
    char dir[PATH_MAX]; /* the config file's folder */
    const char *where;  /* issuer being loaded, for messages */
} loader;

__attribute__((format(printf, 3, 4))) static int fail(loader *l, int code, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l->where != NULL) {
        snprintf(l->err, l->errcap, "issuer \"%.200s\": %s", l->where, msg);
    } else {
        snprintf(l->err, l->errcap, "%s", msg);
    }
    return code;
}

/* A printable string member of at most max bytes (no control characters). */
static int get_str(loader *l, json_t *obj, const char *name, size_t max, bool required,
                   const char **out, size_t *len)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    *len = 0;
    if (v == NULL) {
        return required ? fail(l, TK_E_BADINPUT, "\"%s\" is required", name) : 0;
    }
    if (!json_is_string(v)) {
        return fail(l, TK_E_BADINPUT, "\"%s\" must be a string", name);
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        return fail(l, TK_E_BADINPUT, "\"%s\" must be 1 to %zu bytes", name, max);
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return fail(l, TK_E_BADINPUT, "\"%s\" holds a control character", name);
        }
    }
    *out = s;
    *len = n;
    return 0;
}

static int get_int(loader *l, json_t *obj, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL) {
        return 0; /* keeps the default */
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return fail(l, TK_E_BADINPUT, "\"%s\" must be a whole number in [%lld, %lld]", name,
                    (long long)lo, (long long)hi);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Every member of obj is one of names (NULL-terminated). */
static int only_members(loader *l, json_t *obj, const char *const *names, const char *what)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; names[i] != NULL && !known; i++) {
            known = strcmp(key, names[i]) == 0;
        }
        if (!known) {
            return fail(l, TK_E_BADINPUT, "unknown member \"%.64s\" in %s", key, what);
        }
    }
    return 0;
}

/* Resolve a file name against the config file's folder. */
static int resolve(loader *l, const char *name, char *out, size_t cap)
{
    int n =
        name[0] == '/' ? snprintf(out, cap, "%s", name) : snprintf(out, cap, "%s/%s", l->dir, name);
    if (n < 0 || (size_t)n >= cap) {
        return fail(l, TK_E_TOOBIG, "file name too long");
    }
    return 0;
}

/* Read a JSON file of at most TK_IDP_FILE_MAX bytes, duplicates refused. */
static int load_json(loader *l, const char *path, json_t **out)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        return fail(l, -e, "%s: %s", path, strerror(e));
    }
    if (sb.st_size > TK_IDP_FILE_MAX) {
        return fail(l, TK_E_TOOBIG, "%s: larger than %d bytes", path, TK_IDP_FILE_MAX);
    }
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL) {
        return fail(l, TK_E_BADINPUT, "%s:%d: %s", path, je.line, je.text);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return fail(l, TK_E_BADINPUT, "%s: not a JSON object", path);
    }
    return 0;
}

/* ---- Keys --------------------------------------------------------------------------- */

/* A base64url member decoded into buf. */
static int get_b64(loader *l, json_t *jwk, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    const char *s;
    size_t n;
    int rc = get_str(l, jwk, name, 2048, true, &s, &n);
    if (rc == 0 && tk_b64url_decode(s, n, buf, cap, len) != 0) {
        rc = fail(l, TK_E_BADINPUT, "JWK member \"%s\" is not base64url of a valid size", name);
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

static int jwk_rsa(loader *l, json_t *jwk, EVP_PKEY **out)
{
    uint8_t n[1024], e[16];
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
    return *out != NULL ? 0 : fail(l, TK_E_BADINPUT, "RSA JWK is not a valid public key");
}

static int jwk_ec(loader *l, json_t *jwk, EVP_PKEY **out)
{
    const char *crv;
    size_t crvl;
    int rc = get_str(l, jwk, "crv", 16, true, &crv, &crvl);
    if (rc != 0) {
        return rc;
    }
    bool p256 = strcmp(crv, "P-256") == 0, p384 = strcmp(crv, "P-384") == 0;
    if (!p256 && !p384) {
        return fail(l, TK_E_BADINPUT, "EC JWK curve \"%.16s\": only P-256 and P-384", crv);
    }
    size_t size = p256 ? 32 : 48, xl, yl;
    uint8_t pt[1 + 2 * 48] = {0x04}; /* uncompressed point: 04 || x || y */
    rc = get_b64(l, jwk, "x", pt + 1, 48, &xl);
    rc = rc != 0 ? rc : get_b64(l, jwk, "y", pt + 1 + size, 48, &yl);
    if (rc == 0 && (xl != size || yl != size)) {
        rc = fail(l, TK_E_BADINPUT, "EC JWK coordinates must be %zu bytes", size);
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
    return *out != NULL ? 0 : fail(l, TK_E_BADINPUT, "EC JWK is not a point on %s", crv);
}

/* Which algorithms a key can verify, by type and size; 0 if unsupported. */
static unsigned algs_of(loader *l, EVP_PKEY *pkey, int *rc)
{
    *rc = 0;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            *rc = fail(l, TK_E_BADINPUT, "RSA key of %d bits: at least 2048 required",
                       EVP_PKEY_get_bits(pkey));
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
    *rc = fail(l, TK_E_BADINPUT, "unsupported key type (RSA, EC P-256 or P-384 only)");
    return 0;
}

/* The key's allowed algorithms: its type's, narrowed by the issuer's list
 * (or the type's default), narrowed by the key's own "alg". Returns 0, an
 * error, or UNUSABLE when the key can verify nothing allowed (the caller
 * decides: a JWKS member is skipped, a configured PEM key is an error). */
#define UNUSABLE 1

static int pin_algs(loader *l, tk_idp_key *k, unsigned issuer_algs, json_t *alg)
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

static int set_kid(loader *l, tk_idp_issuer *is, tk_idp_key *k, json_t *obj)
{
    const char *kid;
    size_t n;
    int rc = get_str(l, obj, "kid", TK_IDP_KID_MAX, false, &kid, &n);
    if (rc != 0 || kid == NULL) {
        return rc;
    }
    for (unsigned i = 0; i < is->nkeys; i++) {
        if (is->keys[i].kid_len == n && memcmp(is->keys[i].kid, kid, n) == 0) {
            return fail(l, TK_E_BADINPUT, "two keys with kid \"%s\"", kid);
        }
    }
    memcpy(k->kid, kid, n + 1);
    k->kid_len = n;
    return 0;
}

static tk_idp_key *next_key(loader *l, tk_idp_issuer *is, int *rc)
{
    if (is->nkeys >= TK_IDP_KEYS_MAX) {
        *rc = fail(l, TK_E_TOOBIG, "more than %d keys", TK_IDP_KEYS_MAX);
        return NULL;
    }
    *rc = 0;
    return &is->keys[is->nkeys];
}

/* A JWKS comes as the IdP publishes it: members we cannot use (another kty
 * or curve, use "enc", an alg we do not verify or do not allow) are skipped;
 * malformed or unsafe ones (private members, short RSA keys, duplicate
 * kids, bad coordinates) fail the load. */
static int add_jwk(loader *l, tk_idp_issuer *is, json_t *jwk, unsigned issuer_algs)
{
    int rc;
    tk_idp_key *k = next_key(l, is, &rc);
    if (k == NULL) {
        return rc;
    }
    if (!json_is_object(jwk) || json_object_get(jwk, "d") != NULL) {
        return fail(l, TK_E_BADINPUT, "a JWK must be a public key object (no \"d\")");
    }
    const char *kty = NULL, *use = NULL, *crv = NULL;
    size_t n;
    rc = get_str(l, jwk, "kty", 8, true, &kty, &n);
    rc = rc != 0 ? rc : get_str(l, jwk, "use", 8, false, &use, &n);
    rc = rc != 0 ? rc : get_str(l, jwk, "crv", 16, false, &crv, &n);
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

static int add_jwks(loader *l, tk_idp_issuer *is, json_t *jwks, unsigned issuer_algs)
{
    json_t *keys = json_is_object(jwks) ? json_object_get(jwks, "keys") : NULL;
    if (!json_is_array(keys)) {
        return fail(l, TK_E_BADINPUT, "a JWKS must be an object with a \"keys\" array");
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

static int add_pem(loader *l, tk_idp_issuer *is, json_t *spec, unsigned issuer_algs)
{
    static const char *const members[] = {"pem_file", "kid", "alg", NULL};
    int rc;
    tk_idp_key *k = next_key(l, is, &rc);
    const char *file;
    size_t n;
    char path[PATH_MAX];
    rc = rc != 0 ? rc : (json_is_object(spec) ? 0 : fail(l, TK_E_BADINPUT, "bad \"keys\" entry"));
    rc = rc != 0 ? rc : only_members(l, spec, members, "a \"keys\" entry");
    rc = rc != 0 ? rc : get_str(l, spec, "pem_file", PATH_MAX - 1, true, &file, &n);
    rc = rc != 0 ? rc : resolve(l, file, path, sizeof path);
    rc = rc != 0 ? rc : set_kid(l, is, k, spec);
    if (rc != 0) {
        return rc;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        return fail(l, -e, "%s: %s", path, strerror(e));
    }
    k->pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    rc = k->pkey != NULL ? 0 : fail(l, TK_E_BADINPUT, "%s: no PEM public key", path);
    rc = rc != 0 ? rc : pin_algs(l, k, issuer_algs, json_object_get(spec, "alg"));
    if (rc == UNUSABLE) {
        rc = fail(l, TK_E_BADINPUT, "%s: the key can verify none of the allowed algorithms", path);
    }
    if (rc == 0) {
        is->nkeys++;
    } else {
        EVP_PKEY_free(k->pkey);
        memset(k, 0, sizeof *k);
    }
    return rc;
}

/* ---- One issuer ------------------------------------------------------------------------ */

static int get_algs(loader *l, json_t *obj, unsigned *out)
{
    json_t *arr = json_object_get(obj, "algorithms");
    *out = 0;
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return fail(l, TK_E_BADINPUT, "\"algorithms\" must be a non-empty array");
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        uint8_t a = tk_jws_alg_parse(tk_slice_from_str(s));
        if (a == 0) {
            return fail(l, TK_E_BADINPUT,
                        "algorithm \"%.16s\" refused (asymmetric RS/PS/ES only, never none or HS)",
                        s);
        }
        *out |= TK_ALG_BIT(a);
    }
    return 0;
}

static int get_secrets(loader *l, json_t *obj, tk_idp_issuer *is)
{
    json_t *arr = json_object_get(obj, "webhook_secrets");
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) > TK_IDP_SECRETS_MAX) {
        return fail(l, TK_E_BADINPUT, "\"webhook_secrets\" must be an array of at most %d",
                    TK_IDP_SECRETS_MAX);
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        size_t n = strlen(s), len = 0;
        if (strncmp(s, "whsec_", 6) != 0 ||
            tk_b64_decode(s + 6, n - 6, is->secret[i], TK_IDP_SECRET_MAX, &len) != 0 || len < 16) {
            return fail(l, TK_E_BADINPUT,
                        "webhook secret %zu: expected whsec_ + base64 of 16 to %d bytes", i,
                        TK_IDP_SECRET_MAX);
        }
        is->secret_len[i] = len;
        is->nsecrets++;
    }
    return 0;
}

static int get_action(loader *l, json_t *obj, uint8_t *out)
{
    const char *s;
    size_t n;
    *out = TK_IDP_TERMINATE;
    int rc = get_str(l, obj, "credential_change", 16, false, &s, &n);
    if (rc != 0 || s == NULL) {
        return rc;
    }
    if (strcmp(s, "terminate") == 0 || strcmp(s, "suspend") == 0 || strcmp(s, "ignore") == 0) {
        *out = s[0] == 't' ? TK_IDP_TERMINATE : s[0] == 's' ? TK_IDP_SUSPEND : TK_IDP_IGNORE;
        return 0;
    }
    return fail(l, TK_E_BADINPUT, "\"credential_change\" must be terminate, suspend or ignore");
}

static int issuer_basics(loader *l, json_t *obj, tk_idp_issuer *is)
{
    const char *s;
    size_t n;
    int rc = get_str(l, obj, "audience", TK_URL_MAX, true, &s, &n);
    if (rc == 0) {
        memcpy(is->audience, s, n + 1);
        is->audience_len = n;
    }
    is->leeway = TK_IDP_LEEWAY_DEFAULT;
    is->max_age = TK_IDP_MAX_AGE_DEFAULT;
    rc = rc != 0 ? rc : get_int(l, obj, "leeway", 0, 600, &is->leeway);
    rc = rc != 0 ? rc : get_int(l, obj, "max_age", 60, 30 * 86400, &is->max_age);
    json_t *ame = json_object_get(obj, "allow_missing_exp");
    if (rc == 0 && ame != NULL && !json_is_boolean(ame)) {
        rc = fail(l, TK_E_BADINPUT, "\"allow_missing_exp\" must be true or false");
    }
    is->allow_missing_exp = json_is_true(ame);
    rc = rc != 0 ? rc : get_str(l, obj, "ssf_bearer", TK_IDP_BEARER_MAX, false, &s, &n);
    if (rc == 0 && s != NULL) {
        memcpy(is->ssf_bearer, s, n + 1);
        is->ssf_bearer_len = n;
    }
    rc = rc != 0 ? rc : get_action(l, obj, &is->credential_change);
    return rc != 0 ? rc : get_secrets(l, obj, is);
}

static int issuer_keys(loader *l, json_t *obj, tk_idp_issuer *is)
{
    unsigned algs;
    int rc = get_algs(l, obj, &algs);
    const char *file;
    size_t n;
    rc = rc != 0 ? rc : get_str(l, obj, "jwks_file", PATH_MAX - 1, false, &file, &n);
    if (rc == 0 && file != NULL) {
        char path[PATH_MAX];
        json_t *jwks = NULL;
        rc = resolve(l, file, path, sizeof path);
        rc = rc != 0 ? rc : load_json(l, path, &jwks);
        rc = rc != 0 ? rc : add_jwks(l, is, jwks, algs);
        json_decref(jwks);
    }
    json_t *inline_jwks = json_object_get(obj, "jwks");
    if (rc == 0 && inline_jwks != NULL) {
        rc = add_jwks(l, is, inline_jwks, algs);
    }
    json_t *keys = json_object_get(obj, "keys");
    if (rc == 0 && keys != NULL && !json_is_array(keys)) {
        rc = fail(l, TK_E_BADINPUT, "\"keys\" must be an array");
    }
    size_t i;
    json_t *spec;
    json_array_foreach(keys, i, spec)
    {
        rc = rc != 0 ? rc : add_pem(l, is, spec, algs);
    }
    if (rc == 0 && is->nkeys == 0 && is->nsecrets == 0) {
        rc = fail(l, TK_E_BADINPUT, "no keys and no webhook secrets: nothing could be verified");
    }
    return rc;
}

static const char *const issuer_members[] = {"issuer",
                                             "audience",
                                             "jwks_file",
                                             "jwks",
                                             "keys",
                                             "algorithms",
                                             "leeway",
                                             "max_age",
                                             "allow_missing_exp",
                                             "ssf_bearer",
                                             "webhook_secrets",
                                             "credential_change",
                                             NULL};

static int load_issuer(loader *l, json_t *obj, tk_idp_trust *t)
{
    l->where = NULL;
    if (!json_is_object(obj)) {
        return fail(l, TK_E_BADINPUT, "each of \"issuers\" must be an object");
    }
    const char *iss;
    size_t n;
    int rc = get_str(l, obj, "issuer", TK_IDP_ISS_MAX, true, &iss, &n);
    if (rc != 0) {
        return rc;
    }
    l->where = iss;
    if (tk_idp_find(t, (tk_slice){iss, n}) != NULL) {
        return fail(l, TK_E_BADINPUT, "listed twice");
    }
    tk_idp_issuer *is = &t->issuers[t->n];
    memcpy(is->issuer, iss, n + 1);
    is->issuer_len = n;
    t->n++; /* counted now, so a failure below frees its keys */
    rc = only_members(l, obj, issuer_members, "an issuer");
    rc = rc != 0 ? rc : issuer_basics(l, obj, is);
    return rc != 0 ? rc : issuer_keys(l, obj, is);
}

/* ---- Load / free ------------------------------------------------------------------------- */

static void trust_free(tk_idp_trust *t)
{
    for (unsigned i = 0; t->issuers != NULL && i < t->n; i++) {
        tk_idp_issuer *is = &t->issuers[i];
        for (unsigned k = 0; k < is->nkeys; k++) {
            EVP_PKEY_free(is->keys[k].pkey);
        }
        tk_cleanse(is, sizeof *is);
    }
    free(t->issuers);
    free(t);
}

int tk_idp_load(const char *path, tk_idp_trust **out, char *err, size_t errcap)
{
    loader l = {.err = err, .errcap = errcap};
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(l.dir, sizeof l.dir, "%s", dirname(tmp));
    json_t *root = NULL;
    int rc = load_json(&l, path, &root);
    json_t *arr = rc == 0 ? json_object_get(root, "issuers") : NULL;
    static const char *const top[] = {"issuers", NULL};
    rc = rc != 0 ? rc : only_members(&l, root, top, "the top level");
    if (rc == 0 && (!json_is_array(arr) || json_array_size(arr) > TK_IDP_MAX)) {
        rc = fail(&l, TK_E_BADINPUT, "\"issuers\" must be an array of at most %d", TK_IDP_MAX);
    }
    tk_idp_trust *t = calloc(1, sizeof *t);
    if (t != NULL) {
        t->issuers = calloc(TK_IDP_MAX, sizeof *t->issuers);
    }
    if (rc == 0 && (t == NULL || t->issuers == NULL)) {
        rc = -ENOMEM;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(arr, i, obj)
    {
        rc = rc != 0 ? rc : load_issuer(&l, obj, t);
    }
    json_decref(root);
    if (rc != 0) {
        if (t != NULL) {
            trust_free(t);
        }
        return rc;
    }
    t->refs = 1;
    *out = t;
    return 0;
}

void tk_idp_ref(tk_idp_trust *t)
{
    if (t != NULL) {
        __atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
    }
}

void tk_idp_unref(tk_idp_trust *t)
{
    if (t != NULL && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        trust_free(t);
    }
}

const tk_idp_issuer *tk_idp_find(const tk_idp_trust *t, tk_slice iss)
{
    for (unsigned i = 0; t != NULL && i < t->n; i++) {
        const tk_idp_issuer *is = &t->issuers[i];
        if (is->issuer_len == iss.len && memcmp(is->issuer, iss.p, iss.len) == 0) {
            return is;
        }
    }
    return NULL;
}

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

/* ---- Holder ------------------------------------------------------------------------------- */

struct tk_idp_holder {
    pthread_mutex_t mu;
    tk_idp_trust *cur;
    uint64_t gen; /* atomic */
};

int tk_idp_holder_new(tk_idp_trust *initial, tk_idp_holder **out)
{
    tk_idp_holder *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return -ENOMEM;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->cur = initial;
    h->gen = 1;
    *out = h;
    return 0;
}

void tk_idp_holder_free(tk_idp_holder *h)
{
    if (h != NULL) {
        tk_idp_unref(h->cur);
        pthread_mutex_destroy(&h->mu);
        free(h);
    }
}

void tk_idp_holder_swap(tk_idp_holder *h, tk_idp_trust *t)
{
    pthread_mutex_lock(&h->mu);
    tk_idp_trust *old = h->cur;
    h->cur = t;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&h->mu);
    tk_idp_unref(old); /* freed here or by the last worker still holding it */
}

uint64_t tk_idp_holder_gen(const tk_idp_holder *h)
{
    return __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
}

tk_idp_trust *tk_idp_holder_get(tk_idp_holder *h, uint64_t *gen)
{
    pthread_mutex_lock(&h->mu);
    tk_idp_trust *t = h->cur;
    tk_idp_ref(t);
    *gen = __atomic_load_n(&h->gen, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&h->mu);
    return t;
}
