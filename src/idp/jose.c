/*
 * Compact JWS for IdP events (jose.h: logout tokens, SETs): parse without
 * trust, then verify with OpenSSL EVP, then check claims one by one.
 *
 * Why not libjwt 1.10's jwt_decode: it takes the algorithm from the token
 * header (an HS256 token MACed with an RSA public key's PEM text passes),
 * skips verification with an empty key and validates no claim (STANDARDS.md).
 * Here the algorithm can only be one of the asymmetric ones we list, it must
 * be pinned to the key chosen by exact kid, and the (alg → digest, padding,
 * key type) mapping is ours, so the confusion cannot be expressed at all.
 */
#include "tokend/jose.h"

#include "tokend/crypto.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <string.h>

/* ---- Parsing ------------------------------------------------------------------------ */

/* Decode a base64url segment of at most cap decoded bytes into JSON. */
static json_t *segment_json(tk_slice seg, size_t cap, const char **why)
{
    uint8_t buf[TK_JWT_PAYLOAD_MAX];
    size_t n = 0;
    TK_ASSERT(cap <= sizeof buf);
    if (tk_b64url_decode(seg.p, seg.len, buf, cap, &n) != 0) {
        *why = "segment is not base64url or too large";
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL || !json_is_object(v)) {
        json_decref(v);
        *why = "segment is not a JSON object";
        return NULL;
    }
    return v;
}

/* Split at the two dots; every segment non-empty but the signature, which
 * may be empty only so that alg "none" is reported as such. */
static int split(tk_slice c, tk_slice seg[3])
{
    const char *d1 = memchr(c.p, '.', c.len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(c.p + c.len - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(c.p + c.len - d2 - 1)) != NULL) {
        return -1;
    }
    seg[0] = (tk_slice){c.p, (size_t)(d1 - c.p)};
    seg[1] = (tk_slice){d1 + 1, (size_t)(d2 - d1 - 1)};
    seg[2] = (tk_slice){d2 + 1, (size_t)(c.p + c.len - d2 - 1)};
    return seg[0].len > 0 && seg[1].len > 0 ? 0 : -1;
}

static int header_fields(ev_jws *j, const char **why)
{
    json_t *h = j->header;
    json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg)) {
        *why = "header has no alg";
        return EV_MALFORMED;
    }
    j->alg = tk_jws_alg_parse(tk_slice_from_str(json_string_value(alg)));
    if (j->alg == 0) {
        *why = "alg refused (none and HMAC are never accepted)";
        return EV_BAD_KEY;
    }
    if (json_object_get(h, "crit") != NULL || json_object_get(h, "enc") != NULL) {
        *why = "crit or enc header: not supported";
        return EV_MALFORMED;
    }
    if (ev_claim_str(h, "kid", TK_IDP_KID_MAX, &j->kid) != EV_OK ||
        ev_claim_str(h, "typ", TK_JWT_TYP_MAX, &j->typ) != EV_OK) {
        *why = "kid or typ is not a short printable string";
        return EV_MALFORMED;
    }
    return EV_OK;
}

ev_err ev_jws_parse(tk_slice compact, ev_jws *j, const char **why)
{
    memset(j, 0, sizeof *j);
    tk_slice seg[3];
    if (compact.len > TK_JWT_MAX || split(compact, seg) != 0) {
        *why = "not a compact JWS (three segments, at most 16 KiB)";
        return EV_MALFORMED;
    }
    j->signing_input = (tk_slice){compact.p, seg[0].len + 1 + seg[1].len};
    j->header = segment_json(seg[0], TK_JWT_HEADER_MAX, why);
    int rc = j->header != NULL ? header_fields(j, why) : EV_MALFORMED;
    if (rc == EV_OK) {
        j->claims = segment_json(seg[1], TK_JWT_PAYLOAD_MAX, why);
        rc = j->claims != NULL ? EV_OK : EV_MALFORMED;
    }
    if (rc == EV_OK && (seg[2].len == 0 || tk_b64url_decode(seg[2].p, seg[2].len, j->sig,
                                                            sizeof j->sig, &j->sig_len) != 0)) {
        *why = "signature segment is empty, not base64url or too large";
        rc = EV_MALFORMED;
    }
    if (rc != EV_OK) {
        ev_jws_free(j);
    }
    return rc;
}

void ev_jws_free(ev_jws *j)
{
    json_decref(j->header);
    json_decref(j->claims);
    j->header = j->claims = NULL;
}

bool ev_typ_is(tk_slice typ, const char *want)
{
    if (typ.len > 12 && tk_slice_eq_nocase((tk_slice){typ.p, 12}, "application/")) {
        typ.p += 12;
        typ.len -= 12;
    }
    return tk_slice_eq_nocase(typ, want);
}

/* ---- Signature ------------------------------------------------------------------------ */

static const EVP_MD *digest_of(uint8_t alg)
{
    switch (alg) {
    case TK_ALG_RS256:
    case TK_ALG_PS256:
    case TK_ALG_ES256:
        return EVP_sha256();
    case TK_ALG_RS384:
    case TK_ALG_PS384:
    case TK_ALG_ES384:
        return EVP_sha384();
    default:
        TK_ASSERT(alg == TK_ALG_RS512 || alg == TK_ALG_PS512);
        return EVP_sha512();
    }
}

/* JWS ECDSA signatures are r || s, fixed size; OpenSSL wants DER. */
static int ecdsa_der(const uint8_t *sig, size_t len, size_t half, uint8_t *der, size_t cap,
                     size_t *der_len)
{
    if (len != 2 * half) {
        return -1;
    }
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    int rc = -1;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es now */
        int n = i2d_ECDSA_SIG(es, NULL);
        unsigned char *p = der;
        if (n > 0 && (size_t)n <= cap && i2d_ECDSA_SIG(es, &p) == n) {
            *der_len = (size_t)n;
            rc = 0;
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

static bool verify_evp(const ev_jws *j, EVP_PKEY *pkey)
{
    const uint8_t *sig = j->sig;
    size_t sig_len = j->sig_len;
    uint8_t der[TK_ECDSA_DER_MAX];
    bool es = j->alg == TK_ALG_ES256 || j->alg == TK_ALG_ES384;
    if (es && ecdsa_der(j->sig, j->sig_len, j->alg == TK_ALG_ES256 ? 32 : 48, der, sizeof der,
                        &sig_len) != 0) {
        return false;
    }
    sig = es ? der : sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = md != NULL && EVP_DigestVerifyInit(md, &pctx, digest_of(j->alg), NULL, pkey) == 1;
    bool pss = j->alg == TK_ALG_PS256 || j->alg == TK_ALG_PS384 || j->alg == TK_ALG_PS512;
    if (ok && pss) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digest_of(j->alg)) == 1;
    }
    ok = ok && EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)j->signing_input.p,
                                j->signing_input.len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

ev_err ev_jws_verify(const ev_jws *j, const tk_idp_issuer *is, const char **why)
{
    const tk_idp_key *k = tk_idp_key_for(is, j->kid, j->kid.p != NULL);
    if (k == NULL) {
        *why = j->kid.p != NULL ? "no key with that kid" : "no kid and not exactly one key";
        return EV_BAD_KEY;
    }
    if (!(k->algs & TK_ALG_BIT(j->alg))) {
        *why = "alg not allowed for this key";
        return EV_BAD_KEY;
    }
    if (!verify_evp(j, k->pkey)) {
        *why = "signature does not verify";
        return EV_BAD_SIGNATURE;
    }
    return EV_OK;
}

ev_err ev_jws_verify_es256_ctx(const ev_jws *j, EVP_PKEY_CTX *vctx, const char **why)
{
    if (j->alg != TK_ALG_ES256) {
        *why = "alg is not the key's";
        return EV_BAD_KEY;
    }
    uint8_t der[TK_ECDSA_DER_MAX], h[TK_HASH_LEN];
    size_t der_len = 0;
    tk_sha256(j->signing_input.p, j->signing_input.len, h);
    if (ecdsa_der(j->sig, j->sig_len, 32, der, sizeof der, &der_len) != 0 ||
        EVP_PKEY_verify(vctx, der, der_len, h, sizeof h) != 1) {
        *why = "signature does not verify";
        return EV_BAD_SIGNATURE;
    }
    return EV_OK;
}

ev_err ev_jws_verify_pkey(const ev_jws *j, EVP_PKEY *pkey, uint8_t alg, const char **why)
{
    if (j->alg != alg) {
        *why = "alg is not the key's";
        return EV_BAD_KEY;
    }
    if (!verify_evp(j, pkey)) {
        *why = "signature does not verify";
        return EV_BAD_SIGNATURE;
    }
    return EV_OK;
}

/* ---- Claims ------------------------------------------------------------------------------ */

ev_err ev_claim_str(json_t *obj, const char *name, size_t max, tk_slice *out)
{
    json_t *v = json_object_get(obj, name);
    *out = TK_SLICE_NULL;
    if (v == NULL) {
        return EV_OK;
    }
    if (!json_is_string(v)) {
        return EV_BAD_CLAIMS;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        return EV_BAD_CLAIMS;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return EV_BAD_CLAIMS;
        }
    }
    *out = (tk_slice){s, n};
    return EV_OK;
}

ev_err ev_claim_time(json_t *obj, const char *name, int64_t *out, bool *present)
{
    json_t *v = json_object_get(obj, name);
    *present = v != NULL;
    *out = 0;
    if (v == NULL) {
        return EV_OK;
    }
    double d = json_is_integer(v) ? (double)json_integer_value(v)
               : json_is_real(v)  ? json_real_value(v)
                                  : -1.0;
    if (!(d >= 0.0 && d <= (double)TK_TIME_MAX)) {
        return EV_BAD_CLAIMS;
    }
    *out = (int64_t)d;
    return EV_OK;
}

static bool aud_is(json_t *v, const tk_idp_issuer *is)
{
    return json_is_string(v) && json_string_length(v) == is->audience_len &&
           memcmp(json_string_value(v), is->audience, is->audience_len) == 0;
}

ev_err ev_check_aud(json_t *claims, const tk_idp_issuer *is)
{
    json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud)) {
        return aud_is(aud, is) ? EV_OK : EV_BAD_AUDIENCE;
    }
    if (!json_is_array(aud)) {
        return EV_BAD_AUDIENCE;
    }
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v)) {
            return EV_BAD_AUDIENCE;
        }
        found = found || aud_is(v, is);
    }
    return found ? EV_OK : EV_BAD_AUDIENCE;
}

ev_err ev_check_times(json_t *claims, const tk_idp_issuer *is, int64_t now, bool require_exp,
                      int64_t *until, const char **why)
{
    int64_t iat, exp, nbf;
    bool has_iat, has_exp, has_nbf;
    if (ev_claim_time(claims, "iat", &iat, &has_iat) != EV_OK || !has_iat ||
        ev_claim_time(claims, "exp", &exp, &has_exp) != EV_OK ||
        ev_claim_time(claims, "nbf", &nbf, &has_nbf) != EV_OK) {
        *why = "iat missing, or iat/exp/nbf not a NumericDate";
        return EV_BAD_CLAIMS;
    }
    int64_t lw = is->leeway;
    if (iat > now + lw || (has_nbf && nbf > now + lw)) {
        *why = "iat or nbf in the future beyond the leeway";
        return EV_BAD_CLAIMS;
    }
    if (has_exp && exp + lw <= now) {
        *why = "expired";
        return EV_BAD_CLAIMS;
    }
    if (!has_exp && require_exp && !is->allow_missing_exp) {
        *why = "exp missing";
        return EV_BAD_CLAIMS;
    }
    if (!has_exp && iat + is->max_age + lw < now) {
        *why = "iat older than max_age";
        return EV_BAD_CLAIMS;
    }
    /* Remember the jti for as long as any copy of the event is acceptable. */
    int64_t u = has_exp ? exp + lw : iat + is->max_age + lw;
    *until = u > now ? u : now + 1;
    if (*until > TK_TIME_MAX) {
        *until = TK_TIME_MAX;
    }
    return EV_OK;
}
