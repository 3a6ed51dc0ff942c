/*
 * Proof Key for Code Exchange (RFC 7636), S256 only: "plain" sends the
 * secret through the browser and is refused (RFC 9700 §2.1.1). The one idea:
 * a challenge is kept as the 32 bytes it encodes, and the verifier presented
 * at the token endpoint is hashed and compared in constant time.
 *
 * Thread-safety: pure and reentrant (tk_sha256 keeps a per-thread context).
 */
#ifndef TOKEND_OAUTH_PKCE_H
#define TOKEND_OAUTH_PKCE_H

#include "tokend/common.h"
#include "tokend/limits.h"
#include "tokend/oauth.h"

/* True when v is a code_verifier (RFC 7636 §4.1): 43 to 128 characters of
 * [A-Za-z0-9-._~]. */
bool tk_oauth_pkce_verifier_valid(tk_slice v);

/*
 * Decode an S256 code_challenge (RFC 7636 §4.2): exactly 43 base64url
 * characters, canonical (the last character's two spare bits are zero),
 * into the 32-byte SHA-256 it carries, which is what a code record keeps.
 * Returns 0 or TK_E_INVALID with *err = invalid_request.
 */
int tk_oauth_pkce_challenge_parse(tk_slice challenge, uint8_t out[TK_HASH_LEN], tk_oauth_err *err);

/* The S256 challenge of a verifier: base64url(SHA-256(verifier)) into out
 * (43 characters + NUL). The verifier's syntax is not checked here. */
void tk_oauth_pkce_s256(tk_slice verifier, char out[TK_OAUTH_CHALLENGE_LEN + 1]);

/*
 * Check a code_verifier against the challenge bytes stored with a code:
 * syntax (invalid_request, RFC 7636 §4.1), then SHA-256 compared in
 * constant time (invalid_grant, RFC 7636 §4.6).
 * Returns 0 or TK_E_INVALID with *err set.
 */
int tk_oauth_pkce_verify(tk_slice verifier, const uint8_t challenge[TK_HASH_LEN],
                         tk_oauth_err *err);

#endif
