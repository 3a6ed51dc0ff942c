/*
 * tokend's own signing keys (src/keys): the ES256 (P-256) key pairs that sign
 * RFC 9701 introspection answers, kept in DATA/keys/, published as a JWKS.
 *
 * The one idea: a key set is an immutable snapshot loaded from the folder
 * (start-up, SIGHUP, tokenctl); exactly one key is current (it signs), the
 * others are retired and stay published until every signature they made
 * can no longer be valid. The folder holds one PEM file per key,
 * "<kid>.pem" (PKCS#8, mode 0600, never group- or world-readable), and the
 * manifest "keys.json":
 *   {"keys":[{"kid":"…","created":T},                     the current key
 *            {"kid":"…","created":T,"retired":T}, …]}     newest first
 * A kid is the key's RFC 7638 thumbprint (base64url of SHA-256 over
 * {"crv","kty","x","y"}); loading checks it against the key in the file.
 * Writers (first start, tokenctl keys rotate) hold an flock on
 * DATA/keys/lock and replace the manifest atomically (write, fsync, rename).
 *
 * Private key material is never logged, and every buffer that held it is
 * cleansed before it is freed. Cold path (files, PEM) except tk_keys_sign,
 * which a worker calls per signed answer.
 */
#ifndef TOKEND_KEYS_H
#define TOKEND_KEYS_H

#include "tokend/common.h"
#include "tokend/json.h"
#include "tokend/limits.h"

/* The RFC 7638 thumbprint: base64url of 32 bytes, 43 characters. */
#define TK_KID_LEN 43

typedef struct tk_keyset tk_keyset;
struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* What tokenctl keys list and the JWKS show of one key. */
typedef struct tk_key_info {
    char kid[TK_KID_LEN + 1];
    int64_t created; /* Unix seconds */
    int64_t retired; /* 0: the current key */
} tk_key_info;

/*
 * Load the key set of data_dir (its "keys" folder). With create, a folder
 * without a manifest gets its first key (folder 0700, key 0600) under the
 * lock; without it, such a folder is TK_E_NOTFOUND. Returns 0 with *out, or
 * -errno, TK_E_NOTFOUND, TK_E_BADINPUT (a malformed manifest, a key file
 * readable by group or others, a key that is not P-256, a kid that is not
 * the key's thumbprint), TK_E_TOOBIG, -ENOMEM; err holds one line naming the
 * file and the problem (never key material).
 */
int tk_keys_load(const char *data_dir, bool create, int64_t now, tk_keyset **out, char *err,
                 size_t errcap);

/* Cleanses and frees the keys (NULL is fine). */
void tk_keys_free(tk_keyset *ks);

/*
 * Make a new current key and retire the current one at now (tokenctl keys
 * rotate), under the lock. The manifest keeps at most TK_SIGNING_KEYS_MAX
 * keys: older retired ones are dropped (their files removed) and counted in
 * *dropped. Writes the new kid to new_kid. Returns 0 or as tk_keys_load.
 */
int tk_keys_rotate(const char *data_dir, int64_t now, char new_kid[TK_KID_LEN + 1],
                   unsigned *dropped, char *err, size_t errcap);

/*
 * Drop every retired key at once (tokenctl keys retire --now: a key that
 * leaked must not verify anything any more), under the lock: the manifest
 * keeps the current key alone, the other key files are removed. Writes the
 * dropped kids to dropped_kids (up to TK_SIGNING_KEYS_MAX - 1) and their
 * count to *dropped. A running tokend stops publishing them at its next
 * SIGHUP. Returns 0 or as tk_keys_load (TK_E_NOTFOUND: no keys).
 */
int tk_keys_retire_now(const char *data_dir, char dropped_kids[][TK_KID_LEN + 1], unsigned *dropped,
                       char *err, size_t errcap);

/* Keys of the set, current first (i < tk_keys_count). */
unsigned tk_keys_count(const tk_keyset *ks);
const tk_key_info *tk_keys_info(const tk_keyset *ks, unsigned i);

/*
 * A retired key is published while now < max(retired, stopped) + overlap,
 * where stopped is when this process last signed with it. After a reload,
 * tk_keys_carry(fresh, old, now) records that the old set's current key
 * signed until now when fresh retires it.
 */
void tk_keys_carry(tk_keyset *fresh, const tk_keyset *old, int64_t now);
bool tk_keys_published(const tk_keyset *ks, unsigned i, int64_t now, int64_t overlap);

/* The JWKS object {"keys":[…]} of the published keys: kty, crv, x, y, kid,
 * use "sig", alg "ES256" (public members only). */
void tk_keys_jwks(const tk_keyset *ks, int64_t now, int64_t overlap, tk_json *j);

/*
 * A compact JWS (ES256, the current key) of payload: protected header
 * {"alg":"ES256","kid":"<kid>","typ":"<typ>"}, then
 * base64url(payload), then the 64-byte r || s signature. Writes a NUL-
 * terminated string to out and its length to *len. typ is a constant of
 * at most 48 printable characters needing no JSON escape (asserted): the
 * caller's media type, never input. Returns 0, TK_E_TOOBIG
 * (out too small: see tk_keys_jws_len) or -EIO (OpenSSL failed).
 * Thread-safe: workers sign in parallel with one shared key.
 */
int tk_keys_sign(const tk_keyset *ks, const char *typ, const char *payload, size_t plen, char *out,
                 size_t cap, size_t *len);
/* The exact length of a JWS of a payload of plen bytes with this typ. */
size_t tk_keys_jws_len(const char *typ, size_t plen);

/*
 * A compact JWS of payload signed with a key that is not one of the set's:
 * tokend's client key at an upstream IdP (private_key_jwt, RFC 7523 §2.2).
 * EC P-256 signs ES256, RSA of 2048 to 4096 bits RS256 (RFC 7518 §3.3);
 * any other key is TK_E_INVALID. Header {"alg","kid" (when kid is neither
 * NULL nor ""),"typ"}. Returns 0 with a NUL-terminated out and *len,
 * TK_E_TOOBIG, TK_E_INVALID or -EIO. Thread-safe; a fresh OpenSSL context
 * per call (cold path). tk_keys_sign_alg names the alg a key would use.
 */
int tk_keys_sign_pkey(struct evp_pkey_st *pkey, const char *kid, const char *typ,
                      const char *payload, size_t plen, char *out, size_t cap, size_t *len);
int tk_keys_sign_alg(struct evp_pkey_st *pkey, const char **alg);

/* The RFC 7638 thumbprint of a P-256 public key given by its coordinates. */
void tk_keys_thumbprint(const uint8_t x[32], const uint8_t y[32], char kid[TK_KID_LEN + 1]);

/* ---- Holder: the set in use, swapped on SIGHUP ---------------------------- */

typedef struct tk_keys_holder tk_keys_holder;

/* Takes ks. Returns 0 or -ENOMEM. */
int tk_keys_holder_new(tk_keyset *ks, tk_keys_holder **out);
/* The set in use (one atomic load); valid until tk_keys_holder_free: a
 * replaced set is kept until then, because a worker may be signing with it. */
const tk_keyset *tk_keys_holder_get(const tk_keys_holder *h);
/* Install fresh (taken) and carry the old set's current key into it
 * (tk_keys_carry); one thread at a time (main). The replaced set is kept
 * until the holder is freed, as the app keeps replaced resource tables (a
 * few hundred bytes per SIGHUP). Returns 0 or -ENOMEM (fresh freed, the set
 * in use stays). */
int tk_keys_holder_swap(tk_keys_holder *h, tk_keyset *fresh, int64_t now);
void tk_keys_holder_free(tk_keys_holder *h);

#endif
