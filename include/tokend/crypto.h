/*
 * Cryptographic helpers on top of OpenSSL 3: the OS CSPRNG, SHA-256 (its
 * context on the caller's stack), base64url, constant-time comparison, and the
 * token/secret format ("tkd_at_" + base64url(32 random bytes)).
 *
 * Thread-safety: every function is safe to call from any thread.
 */
#ifndef TOKEND_CRYPTO_H
#define TOKEND_CRYPTO_H

#include "tokend/common.h"
#include "tokend/limits.h"

/* Fill buf with len bytes from the OS CSPRNG (RAND_bytes).
 * Returns 0, or TK_E_STORE-free -EIO when the generator fails. */
int tk_random_bytes(void *buf, size_t len);

/* out = SHA-256(data). Never fails for len <= SIZE_MAX/2; aborts on an
 * OpenSSL internal error (a broken invariant, not an operating error). */
void tk_sha256(const void *data, size_t len, uint8_t out[TK_HASH_LEN]);

/* HMAC-SHA256(key, a || b) (OpenSSL EVP_MAC). 0, or -EIO if OpenSSL failed. */
int tk_hmac_sha256(const void *key, size_t key_len, const void *a, size_t alen, const void *b,
                   size_t blen, uint8_t out[TK_HASH_LEN]);

/* Constant-time equality of two equal-length byte strings (CRYPTO_memcmp). */
bool tk_ct_equal(const void *a, const void *b, size_t len);

/* Overwrite a secret buffer so the compiler cannot elide it (OPENSSL_cleanse). */
void tk_cleanse(void *buf, size_t len);

/* base64url without padding. tk_b64url_encoded_len(n) is the exact output
 * length; tk_b64url_encode writes that many bytes plus a NUL.
 * Returns 0 or TK_E_TOOBIG when cap < encoded length + 1. */
size_t tk_b64url_encoded_len(size_t n);
int tk_b64url_encode(const void *in, size_t n, char *out, size_t cap);

/* Strict base64url decoding: alphabet [A-Za-z0-9-_], no padding, no
 * whitespace, non-canonical trailing bits rejected. Writes *out_len bytes.
 * Returns 0, TK_E_BADINPUT or TK_E_TOOBIG. */
int tk_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

/* Standard base64 (with padding), strict, for HTTP Basic credentials. */
int tk_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

/* Lower-case hex of n bytes into out (2n chars + NUL). cap >= 2n + 1. */
void tk_hex(const void *in, size_t n, char *out);

/* Kinds of secret we mint; the prefix lets secret scanners find leaks. */
enum tk_secret_kind {
    TK_SECRET_ACCESS = 0,  /* "tkd_at_" access token */
    TK_SECRET_REFRESH = 1, /* "tkd_rt_" refresh token */
    TK_SECRET_CLIENT = 2,  /* "tkd_cs_" client secret */
};

/* Mint a new secret of the given kind: writes TK_TOKEN_LEN chars + NUL into
 * out (cap >= TK_TOKEN_LEN + 1) and its SHA-256 into hash.
 * Returns 0 or the error of tk_random_bytes. */
int tk_secret_new(enum tk_secret_kind kind, char *out, size_t cap, uint8_t hash[TK_HASH_LEN]);

/* Mint n (1..TK_SECRETS_MAX) secrets at once, kinds[i] into out[i] (room
 * for TK_TOKEN_LEN + 1 each) with its SHA-256 in hash[i]: one draw from the
 * CSPRNG for all of them (a draw costs about the same for 32 bytes as for
 * 64: the token endpoint mints an access and a refresh token together).
 * Returns 0 or the error of tk_random_bytes. */
#define TK_SECRETS_MAX 2
int tk_secrets_new(size_t n, const enum tk_secret_kind *kinds, char *const *out,
                   uint8_t *const *hash);

/* A random identifier: prefix + base64url(16 random bytes) + NUL (e.g.
 * "tkc_…" for clients, "tks_…" for sessions, "tkg_…" for grants).
 * Returns 0, TK_E_TOOBIG or a CSPRNG error. */
int tk_id_new(const char *prefix, char *out, size_t cap);

/* The form we log a token or secret in: "sha256:" + the first 8 hex digits
 * of its hash (out needs 16 bytes). Never log anything else of a secret. */
void tk_hash_ref(const uint8_t hash[TK_HASH_LEN], char out[16]);

#endif
