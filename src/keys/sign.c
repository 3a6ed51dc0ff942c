/*
 * ES256 compact JWS (RFC 7515 §7.1, RFC 7518 §3.4) with the current key:
 * what signs RFC 9701 introspection answers, and any JWT tokend issues.
 *
 * The one idea: the key is parsed once, at load, each thread keeps a
 * signing context, and the JWS is assembled in the caller's buffer, so a
 * signature costs one SHA-256, one ECDSA operation and two base64url
 * passes. (Debian 12's libjwt 1.10 was the planned signer; it
 * re-parses the PEM key on every signature, about 420 µs of its 600 µs, and
 * overwrites the protected header's "typ" with "JWT", which RFC 9701 §5
 * forbids: docs/ARCHITECTURE.md §9.)
 *
 * ECDSA gives a DER SEQUENCE of two INTEGERs; JWS wants r and s as two
 * 32-byte big-endian numbers, left-padded with zeros (RFC 7518 §3.4): a
 * shorter r or s (1 signature in 128) must still be 32 bytes.
 */
#include "keys_int.h"

#include "tokend/crypto.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <string.h>

#define SIG_LEN 64 /* r || s */

/* The protected header around the kid and typ: {"alg":"ES256","kid":"…","typ":"…"}. */
#define HEADER_FIXED (sizeof "{\"alg\":\"ES256\",\"kid\":\"\",\"typ\":\"\"}" - 1)
#define TYP_MAX      48

static size_t header_len(const char *typ)
{
    size_t tl = strlen(typ);
    TK_ASSERT(tl <= TYP_MAX && tk_json_is_plain(typ, tl)); /* our own constants */
    return HEADER_FIXED + TK_KID_LEN + tl;
}

static size_t header_json(const tk_key *k, const char *typ, char *out, size_t cap)
{
    tk_json j;
    tk_json_init(&j, out, cap);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "alg", "ES256");
    tk_json_kv_cstr(&j, "kid", k->info.kid);
    tk_json_kv_cstr(&j, "typ", typ);
    tk_json_obj_end(&j);
    TK_ASSERT(tk_json_finish(&j) == 0 && j.len == header_len(typ));
    return j.len;
}

size_t tk_keys_jws_len(const char *typ, size_t plen)
{
    return tk_b64url_encoded_len(header_len(typ)) + 1 + tk_b64url_encoded_len(plen) + 1 +
           tk_b64url_encoded_len(SIG_LEN);
}

/* Each thread keeps one signing context for the key it last signed with,
 * so a signature costs no provider fetch and no allocation (about 4.5 µs of
 * 21 µs per signature). The context holds a reference to its key, so the
 * key's address cannot be reused while the context points at it; the
 * pthread key's destructor frees the context when the thread exits. */
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;
static __thread EVP_PKEY_CTX *thread_ctx;
static __thread const EVP_PKEY *thread_pkey;

static void free_thread_ctx(void *ctx)
{
    EVP_PKEY_CTX_free(ctx);
}

static void ctx_init_once(void)
{
    TK_ASSERT(pthread_key_create(&ctx_key, free_thread_ctx) == 0);
}

static EVP_PKEY_CTX *signing_ctx(EVP_PKEY *pkey)
{
    if (TK_LIKELY(thread_pkey == pkey)) {
        return thread_ctx;
    }
    TK_ASSERT(pthread_once(&ctx_once, ctx_init_once) == 0);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    EVP_PKEY_CTX_free(thread_ctx);
    thread_ctx = ctx;
    thread_pkey = pkey;
    TK_ASSERT(pthread_setspecific(ctx_key, ctx) == 0);
    return ctx;
}

/* ECDSA over SHA-256(in[0..n)) into r || s. */
static int sign_raw(EVP_PKEY_CTX *ctx, const char *in, size_t n, uint8_t sig[SIG_LEN])
{
    uint8_t h[TK_HASH_LEN], der[80];
    size_t dl = sizeof der;
    tk_sha256(in, n, h);
    if (ctx == NULL || EVP_PKEY_sign(ctx, der, &dl, h, sizeof h) != 1) {
        return -EIO;
    }
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    const BIGNUM *r = NULL, *s = NULL;
    if (es != NULL) {
        ECDSA_SIG_get0(es, &r, &s);
    }
    int rc = r != NULL && s != NULL && BN_bn2binpad(r, sig, 32) == 32 &&
                     BN_bn2binpad(s, sig + 32, 32) == 32
                 ? 0
                 : -EIO;
    ECDSA_SIG_free(es);
    return rc;
}

/* Append the base64url of in[0..len) to out at n (cap: out's size, known
 * to be enough); returns the new length. */
static size_t b64_append(const void *in, size_t len, char *out, size_t n, size_t cap)
{
    TK_ASSERT(tk_b64url_encode(in, len, out + n, cap - n) == 0);
    return n + tk_b64url_encoded_len(len);
}

/* The JWS signing input (RFC 7515 §5.1): base64url(header) "."
 * base64url(payload), into out (known to hold it); returns its length. */
static size_t signing_input(const char *h, size_t hl, const char *payload, size_t plen, char *out,
                            size_t cap)
{
    size_t n = b64_append(h, hl, out, 0, cap);
    out[n++] = '.';
    return b64_append(payload, plen, out, n, cap);
}

int tk_keys_sign(const tk_keyset *ks, const char *typ, const char *payload, size_t plen, char *out,
                 size_t cap, size_t *len)
{
    TK_ASSERT(ks != NULL && ks->n > 0 && ks->k[0].pkey != NULL);
    size_t need = tk_keys_jws_len(typ, plen);
    if (need >= cap) {
        return TK_E_TOOBIG;
    }
    char h[HEADER_FIXED + TK_KID_LEN + TYP_MAX + 1];
    size_t hl = header_json(&ks->k[0], typ, h, sizeof h);
    size_t n = signing_input(h, hl, payload, plen, out, cap);
    uint8_t sig[SIG_LEN];
    int rc = sign_raw(signing_ctx(ks->k[0].pkey), out, n, sig);
    if (rc != 0) {
        return rc;
    }
    out[n++] = '.';
    n = b64_append(sig, sizeof sig, out, n, cap);
    TK_ASSERT(n == need);
    *len = n;
    return 0;
}

/* ---- Any key of ours: the client assertion (RFC 7523 §2.2) ------------------ */

/* What a key signs with: ES256 for EC P-256, RS256 for RSA of at least
 * 2048 bits; 0 for anything else. */
static int pkey_alg(EVP_PKEY *pkey, const char **alg, size_t *sig_len)
{
    char group[16] = "";
    size_t gl = 0;
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &gl) == 1 &&
        strcmp(group, "prime256v1") == 0) {
        *alg = "ES256";
        *sig_len = SIG_LEN;
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= TK_RSA_BITS_MIN &&
        EVP_PKEY_get_bits(pkey) <= TK_JWS_SIG_MAX * 8) {
        *alg = "RS256";
        *sig_len = (size_t)EVP_PKEY_get_size(pkey);
        return 0;
    }
    return TK_E_INVALID;
}

int tk_keys_sign_alg(struct evp_pkey_st *pkey, const char **alg)
{
    size_t sl;
    return pkey_alg(pkey, alg, &sl);
}

int tk_keys_sign_pkey(struct evp_pkey_st *pkey, const char *kid, const char *typ,
                      const char *payload, size_t plen, char *out, size_t cap, size_t *len)
{
    const char *alg = NULL;
    size_t sig_len = 0;
    int rc = pkey_alg(pkey, &alg, &sig_len);
    if (rc != 0) {
        return rc;
    }
    char h[TK_CLIENT_ASSERTION_HEADER_MAX];
    tk_json j;
    tk_json_init(&j, h, sizeof h);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "alg", alg);
    if (kid != NULL && kid[0] != '\0') {
        tk_json_kv_cstr(&j, "kid", kid);
    }
    tk_json_kv_cstr(&j, "typ", typ);
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        return TK_E_TOOBIG;
    }
    size_t hl = j.len;
    size_t need = tk_b64url_encoded_len(hl) + 1 + tk_b64url_encoded_len(plen) + 1 +
                  tk_b64url_encoded_len(sig_len);
    if (need >= cap) {
        return TK_E_TOOBIG;
    }
    size_t n = signing_input(h, hl, payload, plen, out, cap);
    /* A context of its own (not the thread's cached one): a client
     * assertion is made once per sign-in, and must not evict the key
     * that signs introspection answers on this thread. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return -EIO;
    }
    uint8_t sig[TK_JWS_SIG_MAX];
    TK_ASSERT(sig_len <= sizeof sig);
    if (alg[0] == 'E') {
        rc = sign_raw(ctx, out, n, sig);
    } else { /* RSASSA-PKCS1-v1_5 over SHA-256 (RFC 7518 §3.3) */
        uint8_t hash[TK_HASH_LEN];
        size_t sl = sizeof sig;
        tk_sha256(out, n, hash);
        rc = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
                     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
                     EVP_PKEY_sign(ctx, sig, &sl, hash, sizeof hash) == 1 && sl == sig_len
                 ? 0
                 : -EIO;
    }
    EVP_PKEY_CTX_free(ctx);
    if (rc != 0) {
        tk_cleanse(out, cap);
        return rc;
    }
    out[n++] = '.';
    n = b64_append(sig, sig_len, out, n, cap);
    TK_ASSERT(n == need);
    *len = n;
    return 0;
}
