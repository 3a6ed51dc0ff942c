/*
 * PKCE S256 (RFC 7636): verifier syntax, challenge decoding, and the
 * constant-time check at the token endpoint.
 */
#include "tokend/oauth_pkce.h"

#include "tokend/crypto.h"

#include <string.h>

_Static_assert(TK_OAUTH_VERIFIER_MIN == 43 && TK_OAUTH_VERIFIER_MAX == 128,
               "RFC 7636 4.1, and the descriptions below");

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bool tk_oauth_pkce_verifier_valid(tk_slice v)
{
    if (v.len < TK_OAUTH_VERIFIER_MIN || v.len > TK_OAUTH_VERIFIER_MAX) {
        return false;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (!unreserved((unsigned char)v.p[i])) {
            return false;
        }
    }
    return true;
}

int tk_oauth_pkce_challenge_parse(tk_slice challenge, uint8_t out[TK_HASH_LEN], tk_oauth_err *err)
{
    size_t n = 0;
    if (challenge.len != TK_OAUTH_CHALLENGE_LEN ||
        tk_b64url_decode(challenge.p, challenge.len, out, TK_HASH_LEN, &n) != 0 ||
        n != TK_HASH_LEN) {
        memset(out, 0, TK_HASH_LEN);
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "code_challenge must be 43 base64url characters (S256)");
    }
    return 0;
}

void tk_oauth_pkce_s256(tk_slice verifier, char out[TK_OAUTH_CHALLENGE_LEN + 1])
{
    uint8_t h[TK_HASH_LEN];
    tk_sha256(verifier.p, verifier.len, h);
    TK_ASSERT(tk_b64url_encode(h, sizeof h, out, TK_OAUTH_CHALLENGE_LEN + 1) == 0);
}

int tk_oauth_pkce_verify(tk_slice verifier, const uint8_t challenge[TK_HASH_LEN], tk_oauth_err *err)
{
    if (!tk_oauth_pkce_verifier_valid(verifier)) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "code_verifier must be 43 to 128 unreserved characters");
    }
    uint8_t h[TK_HASH_LEN];
    tk_sha256(verifier.p, verifier.len, h);
    bool ok = tk_ct_equal(h, challenge, TK_HASH_LEN);
    tk_cleanse(h, sizeof h);
    if (!ok) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_GRANT,
                               "code_verifier does not match the code_challenge");
    }
    return 0;
}
