/*
 * Cryptographic helpers on OpenSSL 3. The one idea: tk_sha256 runs once per
 * introspection, so it calls OpenSSL's SHA-256 directly (no EVP dispatch, no
 * allocation) with its context on the stack. The base64 decoders are strict:
 * exactly one encoding is accepted for any byte string.
 */
/* SHA256_Init/Update/Final are marked deprecated in OpenSSL 3 (in favour of
 * EVP) but remain; see tk_sha256 for why they are used. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "tokend/crypto.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/* ---- CSPRNG --------------------------------------------------------------- */

int tk_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    /* RAND_bytes takes an int; larger requests go in chunks. */
    while (len > 0) {
        size_t chunk = len < (size_t)INT_MAX ? len : (size_t)INT_MAX;
        if (RAND_bytes(p, (int)chunk) != 1) {
            return -EIO;
        }
        p += chunk;
        len -= chunk;
    }
    return 0;
}

/* ---- SHA-256 -------------------------------------------------------------- */

/* OpenSSL's SHA256_Init/Update/Final run the same block function (SHA-NI or
 * AVX2 where the CPU has them) that the EVP interface reaches through its
 * provider; EVP adds ~650 instructions of dispatch per call here (an
 * allocation and free of the provider's context at every EVP_DigestInit_ex2,
 * engine look-ups), a fifth of what hashing a token costs. tokend never runs
 * under the FIPS provider, the one case that needs EVP. The context lives on
 * the stack; SHA256_Final wipes its data block (the input's last bytes) and
 * leaves only the digest and the length. */
void tk_sha256(const void *data, size_t len, uint8_t out[TK_HASH_LEN])
{
    SHA256_CTX c;
    TK_ASSERT(SHA256_Init(&c) == 1);
    TK_ASSERT(SHA256_Update(&c, data, len) == 1);
    TK_ASSERT(SHA256_Final(out, &c) == 1);
}

/* ---- Comparison and cleansing --------------------------------------------- */

bool tk_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void tk_cleanse(void *buf, size_t len)
{
    OPENSSL_cleanse(buf, len);
}

/* ---- base64 --------------------------------------------------------------- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of one base64 character (url: "-_", standard: "+/"), or -1. */
static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == (url ? '-' : '+')) {
        return 62;
    }
    if (c == (url ? '_' : '/')) {
        return 63;
    }
    return -1;
}

size_t tk_b64url_encoded_len(size_t n)
{
    static const size_t tail[3] = {0, 2, 3};
    return n / 3 * 4 + tail[n % 3];
}

int tk_b64url_encode(const void *in, size_t n, char *out, size_t cap)
{
    const uint8_t *p = in;
    size_t need = tk_b64url_encoded_len(n);
    if (cap < need + 1) {
        return TK_E_TOOBIG;
    }
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    TK_ASSERT(o == need);
    out[o] = '\0';
    return 0;
}

/* Decode n characters without padding. A final group of 2 or 3 characters
 * must leave its unused low bits zero (the canonical encoding). */
static int b64_decode_body(const char *in, size_t n, bool url, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    static const size_t tail_bytes[4] = {0, 0, 1, 2};
    if (n % 4 == 1) {
        return TK_E_BADINPUT;
    }
    size_t need = n / 4 * 3 + tail_bytes[n % 4];
    if (cap < need) {
        return TK_E_TOOBIG;
    }
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i], url);
        if (v < 0) {
            return TK_E_BADINPUT;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) {
        if ((acc & 0xf) != 0) {
            return TK_E_BADINPUT;
        }
        out[o++] = (uint8_t)(acc >> 4);
    } else if (n % 4 == 3) {
        if ((acc & 0x3) != 0) {
            return TK_E_BADINPUT;
        }
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    TK_ASSERT(o == need);
    *out_len = o;
    return 0;
}

int tk_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    return b64_decode_body(in, n, true, out, cap, out_len);
}

int tk_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (n % 4 != 0) {
        return TK_E_BADINPUT;
    }
    /* Up to two '=' at the very end; any other '=' fails the alphabet. */
    size_t pad = 0;
    while (pad < 2 && n - pad > 0 && in[n - pad - 1] == '=') {
        pad++;
    }
    return b64_decode_body(in, n - pad, false, out, cap, out_len);
}

/* ---- Hex, secrets, ids ---------------------------------------------------- */

void tk_hex(const void *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static const char *const secret_prefixes[] = {"tkd_at_", "tkd_rt_", "tkd_cs_"};

/* One secret from raw: prefix, base64url, NUL, and its hash. */
static void secret_from(enum tk_secret_kind kind, const uint8_t raw[TK_SECRET_BYTES], char *out,
                        uint8_t hash[TK_HASH_LEN])
{
    TK_ASSERT((size_t)kind < TK_ARRAY_LEN(secret_prefixes));
    memcpy(out, secret_prefixes[kind], TK_TOKEN_PREFIX_LEN);
    int rc = tk_b64url_encode(raw, TK_SECRET_BYTES, out + TK_TOKEN_PREFIX_LEN,
                              TK_TOKEN_LEN + 1 - TK_TOKEN_PREFIX_LEN);
    TK_ASSERT(rc == 0);
    TK_ASSERT(strlen(out) == TK_TOKEN_LEN);
    tk_sha256(out, TK_TOKEN_LEN, hash);
}

int tk_secret_new(enum tk_secret_kind kind, char *out, size_t cap, uint8_t hash[TK_HASH_LEN])
{
    TK_ASSERT(cap >= TK_TOKEN_LEN + 1);
    return tk_secrets_new(1, &kind, &out, &hash);
}

int tk_secrets_new(size_t n, const enum tk_secret_kind *kinds, char *const *out,
                   uint8_t *const *hash)
{
    _Static_assert(sizeof("tkd_at_") - 1 == TK_TOKEN_PREFIX_LEN, "prefix length");
    TK_ASSERT(n >= 1 && n <= TK_SECRETS_MAX);
    uint8_t raw[TK_SECRETS_MAX][TK_SECRET_BYTES];
    int rc = tk_random_bytes(raw, n * TK_SECRET_BYTES);
    for (size_t i = 0; i < n && rc == 0; i++) {
        secret_from(kinds[i], raw[i], out[i], hash[i]);
    }
    tk_cleanse(raw, sizeof(raw));
    return rc;
}

#define ID_RANDOM_BYTES 16

int tk_id_new(const char *prefix, char *out, size_t cap)
{
    size_t plen = strlen(prefix);
    size_t need = plen + tk_b64url_encoded_len(ID_RANDOM_BYTES) + 1;
    if (cap < need) {
        return TK_E_TOOBIG;
    }
    uint8_t raw[ID_RANDOM_BYTES];
    int rc = tk_random_bytes(raw, sizeof(raw));
    if (rc != 0) {
        return rc;
    }
    memcpy(out, prefix, plen);
    rc = tk_b64url_encode(raw, sizeof(raw), out + plen, cap - plen);
    TK_ASSERT(rc == 0);
    return 0;
}

void tk_hash_ref(const uint8_t hash[TK_HASH_LEN], char out[16])
{
    memcpy(out, "sha256:", 7);
    tk_hex(hash, 4, out + 7);
}

int tk_hmac_sha256(const void *key, size_t key_len, const void *a, size_t alen, const void *b,
                   size_t blen, uint8_t out[TK_HASH_LEN])
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    bool ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
              (alen == 0 || EVP_MAC_update(ctx, a, alen) == 1) &&
              (blen == 0 || EVP_MAC_update(ctx, b, blen) == 1) &&
              EVP_MAC_final(ctx, out, &outl, TK_HASH_LEN) == 1 && outl == TK_HASH_LEN;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return ok ? 0 : -EIO;
}
