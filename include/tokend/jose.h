/*
 * Compact JWS verification and claim checks for what identity providers
 * send (logout tokens, SETs): parse without trust, verify with the issuer's
 * key pinned to its algorithms, then check claims one by one. Implemented in
 * src/idp/jose.c; the IdP-event endpoints call it.
 *
 * Events are rare and off the introspection hot path, so jansson (which
 * allocates) parses their JSON, bounded by the limits in limits.h. Pure
 * functions of their inputs: thread-safe.
 *
 * The ev_ names predate the src/idp room and are kept so the endpoints
 * that call them did not change with the move.
 */
#ifndef TOKEND_JOSE_H
#define TOKEND_JOSE_H

#include "tokend/common.h"
#include "tokend/idp.h"
#include "tokend/limits.h"

#include <jansson.h>

/* Why an event was refused; each endpoint maps these to its own answer. A
 * typed vocabulary of its own (not TK_E_*): every value is an outcome some
 * endpoint answers, not an error of the program. */
typedef enum ev_err {
    EV_OK = 0,
    EV_MALFORMED,      /* not a well-formed event (segments, JSON, members) */
    EV_UNKNOWN_ISSUER, /* no trusted issuer of that name */
    EV_BAD_AUDIENCE,   /* aud does not name us */
    EV_BAD_KEY,        /* alg refused, or no key for kid */
    EV_BAD_SIGNATURE,  /* signature (or webhook MAC) does not verify */
    EV_BAD_CLAIMS,     /* time, events, nonce, typ, subject… */
    EV_AUTH,           /* SSF bearer missing or wrong */
    EV_REPLAY,         /* jti / webhook-id seen before */
    EV_UNAVAILABLE,    /* store or queue: 503 */
} ev_err;

/* ---- Compact JWS ---------------------------------------------------------------- */

typedef struct ev_jws {
    tk_slice signing_input; /* "header.payload", into the caller's input */
    uint8_t sig[TK_JWS_SIG_MAX];
    size_t sig_len;
    json_t *header, *claims; /* owned: ev_jws_free */
    uint8_t alg;             /* enum tk_jws_alg */
    tk_slice kid, typ;       /* into header; p == NULL when absent */
} ev_jws;

/*
 * Split and decode a compact JWS without trusting it: at most TK_JWT_MAX
 * bytes, three strict base64url segments, header and claims JSON objects
 * (no duplicate members), header alg one of ours (none and HMAC refused),
 * no crit, kid and typ strings when present. Returns EV_OK or an ev_err with
 * *why a static explanation; on error nothing needs freeing.
 */
ev_err ev_jws_parse(tk_slice compact, ev_jws *j, const char **why);
void ev_jws_free(ev_jws *j);

/* Verify the signature with the issuer's key for the token's kid, the alg
 * pinned to that key. EV_OK, EV_BAD_KEY or EV_BAD_SIGNATURE. */
ev_err ev_jws_verify(const ev_jws *j, const tk_idp_issuer *is, const char **why);

/* Verify the signature with a key the caller chose (DPoP: the key in the
 * proof's own header), the alg pinned by the caller: EV_OK, EV_BAD_KEY (alg
 * is not the token's) or EV_BAD_SIGNATURE. */
ev_err ev_jws_verify_pkey(const ev_jws *j, struct evp_pkey_st *pkey, uint8_t alg, const char **why);
struct evp_pkey_ctx_st; /* OpenSSL's EVP_PKEY_CTX */

/* The same check for ES256 with a verification context already set up for
 * the key (EVP_PKEY_verify_init done; the caller keeps it): the signing
 * input hashed here, the signature checked against that digest. */
ev_err ev_jws_verify_es256_ctx(const ev_jws *j, struct evp_pkey_ctx_st *vctx, const char **why);

/* typ equals want, ASCII case-insensitively, with or without the
 * "application/" prefix (RFC 7515 §4.1.9). */
bool ev_typ_is(tk_slice typ, const char *want);

/* ---- Claims ------------------------------------------------------------------------- */

/* A string member: printable (no control characters), 1..max bytes.
 * EV_OK with *out (p NULL when absent), or EV_BAD_CLAIMS. */
ev_err ev_claim_str(json_t *obj, const char *name, size_t max, tk_slice *out);
/* A NumericDate in [0, TK_TIME_MAX] (fractions dropped). *present false and
 * EV_OK when absent. */
ev_err ev_claim_time(json_t *obj, const char *name, int64_t *out, bool *present);
/* aud is the issuer's audience or an array of strings holding it. */
ev_err ev_check_aud(json_t *claims, const tk_idp_issuer *is);

/* iat, exp, nbf against now with the issuer's leeway. require_exp: exp
 * must be present unless allow_missing_exp; without exp, iat must be
 * within max_age. *until: how long the jti must be remembered. */
ev_err ev_check_times(json_t *claims, const tk_idp_issuer *is, int64_t now, bool require_exp,
                      int64_t *until, const char **why);

#endif
