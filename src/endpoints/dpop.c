/*
 * DPoP proofs (RFC 9449): the checker the token endpoint and forward-auth
 * share, and the replay cache of proof jtis.
 *
 * The one idea: a proof is checked like every JWS we accept (jose.h: split
 * and decode without trust, header first), except that its key travels in
 * its own header. So the header decides everything before any signature
 * work: typ dpop+jwt, alg ES256, a public EC P-256 JWK (a private member
 * refuses the proof), then the signature with that key, then the claims one
 * by one (htm, htu, iat window, jti, ath). The result is the key's RFC 7638
 * thumbprint (the token's cnf.jkt) and the jti to remember.
 *
 * The replay cache is one table for the whole process, not one per worker:
 * a replayed proof arrives on another connection, and the kernel may hand
 * that connection to any worker, so per-worker tables would miss it. A
 * proof costs an ECDSA verification (tens of microseconds); the mutex held
 * for a handful of slot reads is noise next to it. The table is fixed
 * (limits.h: TK_DPOP_REPLAY_SLOTS) and never grows: a jti that finds its
 * probe window full of live jtis is refused (EP_DPOP_FULL, fail closed),
 * because accepting it would accept its replays too.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/http_uri.h"
#include "tokend/jose.h"
#include "tokend/keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- The proof's key ------------------------------------------------------------------ */

/* Members a public JWK must not carry (RFC 9449 §4.2: "MUST NOT contain a
 * private key"; RFC 7518 §6.2.2, §6.3.2, §6.4). */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

static bool b64_member(json_t *jwk, const char *name, uint8_t out[32])
{
    json_t *v = json_object_get(jwk, name);
    size_t n = 0;
    return json_is_string(v) &&
           tk_b64url_decode(json_string_value(v), json_string_length(v), out, 32, &n) == 0 &&
           n == 32;
}

/* The header's jwk: EC P-256, public only → the point and the key. */
static int header_key(json_t *header, uint8_t x[32], uint8_t y[32], EVP_PKEY **out,
                      const char **why)
{
    *out = NULL;
    json_t *jwk = json_object_get(header, "jwk");
    if (!json_is_object(jwk)) {
        *why = "no jwk in the header";
        return EP_DPOP_MALFORMED;
    }
    for (size_t i = 0; i < TK_ARRAY_LEN(private_members); i++) {
        if (json_object_get(jwk, private_members[i]) != NULL) {
            *why = "the jwk holds a private key";
            return EP_DPOP_BAD_KEY;
        }
    }
    json_t *kty = json_object_get(jwk, "kty"), *crv = json_object_get(jwk, "crv");
    if (!json_is_string(kty) || strcmp(json_string_value(kty), "EC") != 0 || !json_is_string(crv) ||
        strcmp(json_string_value(crv), "P-256") != 0) {
        *why = "the jwk is not an EC P-256 key";
        return EP_DPOP_BAD_KEY;
    }
    if (!b64_member(jwk, "x", x) || !b64_member(jwk, "y", y)) {
        *why = "the jwk's x or y is not 32 bytes of base64url";
        return EP_DPOP_BAD_KEY;
    }
    uint8_t pt[65] = {0x04};
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt)) {
        params = OSSL_PARAM_BLD_to_param(bld);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    }
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        *out = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    if (*out == NULL) {
        *why = "the jwk is not a point on P-256";
        return EP_DPOP_BAD_KEY;
    }
    return EP_DPOP_OK;
}

/* ---- htu --------------------------------------------------------------------------- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static uint16_t default_port(tk_slice scheme)
{
    return tk_slice_eq_nocase(scheme, "https") ? 443 : 80;
}

int ep_dpop_url(tk_slice url, ep_dpop_url_parts *u)
{
    size_t i = 0;
    while (i < url.len && url.p[i] != ':') {
        i++;
    }
    if (i + 3 > url.len || url.p[i + 1] != '/' || url.p[i + 2] != '/') {
        return -1;
    }
    u->scheme = (tk_slice){url.p, i};
    if (!tk_slice_eq_nocase(u->scheme, "https") && !tk_slice_eq_nocase(u->scheme, "http")) {
        return -1;
    }
    size_t a = i + 3, e = a;
    while (e < url.len && url.p[e] != '/' && url.p[e] != '?' && url.p[e] != '#') {
        e++;
    }
    if (tk_http_host_normalize((tk_slice){url.p + a, e - a}, u->hostbuf, sizeof u->hostbuf,
                               &u->host) != 0) {
        return -1;
    }
    size_t q = e;
    while (q < url.len && url.p[q] != '?' && url.p[q] != '#') {
        q++;
    }
    /* RFC 3986 §6.2.3: an empty path is "/"; the port of the scheme is none. */
    u->path = q > e ? (tk_slice){url.p + e, q - e} : TK_SLICE_LIT("/");
    if (u->host.port == default_port(u->scheme)) {
        u->host.port = 0;
    }
    return 0;
}

/* The proof's htu names the same resource as want (RFC 9449 §4.3 step 9:
 * without query and fragment; scheme and host case-insensitive, the default
 * port dropped, the path byte for byte). */
static bool same_url(tk_slice htu, const ep_dpop_url_parts *want)
{
    ep_dpop_url_parts got;
    if (ep_dpop_url(htu, &got) != 0 || got.scheme.len != want->scheme.len) {
        return false;
    }
    for (size_t i = 0; i < got.scheme.len; i++) {
        if (lower(got.scheme.p[i]) != lower(want->scheme.p[i])) {
            return false;
        }
    }
    uint16_t wport = want->host.port == default_port(want->scheme) ? 0 : want->host.port;
    return got.host.port == wport && tk_slice_eq(got.host.name, want->host.name) &&
           tk_slice_eq(got.path, want->path);
}

/* ---- The checker ------------------------------------------------------------------- */

static int claims(json_t *c, const ep_dpop_want *want, ep_dpop_proof *out, const char **why)
{
    tk_slice jti, htm, htu, ath;
    if (ev_claim_str(c, "jti", TK_DPOP_JTI_MAX, &jti) != EV_OK || jti.p == NULL ||
        ev_claim_str(c, "htm", TK_METHOD_MAX, &htm) != EV_OK || htm.p == NULL ||
        ev_claim_str(c, "htu", TK_URL_MAX, &htu) != EV_OK || htu.p == NULL ||
        ev_claim_str(c, "ath", 64, &ath) != EV_OK) {
        *why = "jti, htm or htu missing, or a claim is not a short printable string";
        return EP_DPOP_BAD_CLAIMS;
    }
    if (!tk_slice_eq(htm, want->htm)) {
        *why = "htm is not the request's method";
        return EP_DPOP_BAD_CLAIMS;
    }
    if (!same_url(htu, &want->url)) {
        *why = "htu is not the request's URL";
        return EP_DPOP_BAD_CLAIMS;
    }
    int64_t iat;
    bool has_iat;
    if (ev_claim_time(c, "iat", &iat, &has_iat) != EV_OK || !has_iat) {
        *why = "iat missing or not a NumericDate";
        return EP_DPOP_BAD_CLAIMS;
    }
    if (iat > want->now + TK_DPOP_IAT_FUTURE || iat < want->now - TK_DPOP_IAT_PAST) {
        *why = "iat outside the accepted window";
        return EP_DPOP_BAD_CLAIMS;
    }
    if (want->ath != NULL) { /* §4.3 step 11 */
        uint8_t got[TK_HASH_LEN];
        size_t n = 0;
        if (ath.p == NULL || tk_b64url_decode(ath.p, ath.len, got, sizeof got, &n) != 0 ||
            n != TK_HASH_LEN || !tk_ct_equal(got, want->ath, TK_HASH_LEN)) {
            *why = "ath is not the hash of the access token";
            return EP_DPOP_BAD_CLAIMS;
        }
    }
    if (want->nonces != NULL) { /* §8: checked last, so only a good proof learns the nonce */
        tk_slice nonce;
        if (ev_claim_str(c, "nonce", 64, &nonce) != EV_OK || nonce.p == NULL ||
            !ep_dpop_nonce_ok(want->nonces, nonce, want->now)) {
            *why = "the proof has no current server nonce";
            return EP_DPOP_USE_NONCE;
        }
    }
    tk_sha256(jti.p, jti.len, out->jti);
    out->until = iat + TK_DPOP_IAT_PAST + 1;
    return EP_DPOP_OK;
}

int ep_dpop_check(tk_slice compact, const ep_dpop_want *want, ep_dpop_proof *out, const char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    if (compact.len == 0 || compact.len > TK_DPOP_PROOF_MAX) {
        *why = "no proof, or a proof over 4 KiB";
        return EP_DPOP_MALFORMED;
    }
    ev_jws j;
    ev_err e = ev_jws_parse(compact, &j, why);
    if (e != EV_OK) {
        return e == EV_BAD_KEY ? EP_DPOP_BAD_KEY : EP_DPOP_MALFORMED;
    }
    int rc = EP_DPOP_OK;
    if (j.typ.p == NULL || !tk_slice_eq_nocase(j.typ, "dpop+jwt")) {
        *why = "typ is not dpop+jwt";
        rc = EP_DPOP_MALFORMED;
    } else if (j.alg != TK_ALG_ES256) {
        *why = "alg is not one of dpop_signing_alg_values_supported";
        rc = EP_DPOP_BAD_KEY;
    }
    uint8_t x[32], y[32];
    EVP_PKEY *pkey = NULL;
    if (rc == EP_DPOP_OK) {
        rc = header_key(j.header, x, y, &pkey, why);
    }
    if (rc == EP_DPOP_OK && ev_jws_verify_pkey(&j, pkey, TK_ALG_ES256, why) != EV_OK) {
        rc = EP_DPOP_BAD_SIG;
    }
    EVP_PKEY_free(pkey);
    if (rc == EP_DPOP_OK) {
        rc = claims(j.claims, want, out, why);
    }
    ev_jws_free(&j);
    if (rc == EP_DPOP_OK) {
        char b64[TK_KID_LEN + 1];
        size_t n = 0;
        tk_keys_thumbprint(x, y, b64);
        TK_ASSERT(tk_b64url_decode(b64, TK_KID_LEN, out->jkt, sizeof out->jkt, &n) == 0 &&
                  n == TK_HASH_LEN);
    }
    return rc;
}

int ep_dpop_header(const tk_http_request *h, tk_slice *out)
{
    *out = TK_SLICE_NULL;
    TK_ASSERT(h->nheaders <= TK_HTTP_HEADERS_MAX);
    for (size_t i = 0; i < h->nheaders; i++) {
        if (h->headers[i].name.len != 4 || !tk_slice_eq_nocase(h->headers[i].name, "dpop")) {
            continue;
        }
        if (out->p != NULL) {
            return -1; /* §4.3 step 1: exactly one DPoP header */
        }
        *out = h->headers[i].value;
    }
    return out->p != NULL ? 0 : 1;
}

/* ---- The replay cache ------------------------------------------------------------------ */

typedef struct seen_slot {
    uint8_t jti[TK_HASH_LEN];
    int64_t until; /* 0: empty */
} seen_slot;

struct ep_dpop_seen {
    uint8_t nonce_key[32]; /* random per process: nonces die with it */
    pthread_mutex_t mu;
    uint64_t full; /* proofs refused because the window was full */
    seen_slot slot[TK_DPOP_REPLAY_SLOTS];
};

_Static_assert((TK_DPOP_REPLAY_SLOTS & (TK_DPOP_REPLAY_SLOTS - 1)) == 0, "a power of two");
_Static_assert(TK_DPOP_REPLAY_PROBES <= TK_DPOP_REPLAY_SLOTS, "probes within the table");

int ep_dpop_seen_new(ep_dpop_seen **out)
{
    ep_dpop_seen *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return -ENOMEM;
    }
    if (tk_random_bytes(s->nonce_key, sizeof s->nonce_key) != 0) {
        free(s);
        return -EIO;
    }
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

void ep_dpop_seen_free(ep_dpop_seen *s)
{
    if (s != NULL) {
        pthread_mutex_destroy(&s->mu);
        tk_cleanse(s->nonce_key, sizeof s->nonce_key);
        free(s);
    }
}

int ep_dpop_remember(ep_dpop_seen *s, const uint8_t jti[TK_HASH_LEN], int64_t until, int64_t now)
{
    uint64_t h;
    memcpy(&h, jti, sizeof h); /* SHA-256 output: any 8 bytes are uniform */
    size_t start = (size_t)(h & (TK_DPOP_REPLAY_SLOTS - 1));
    seen_slot *free_slot = NULL;
    int rc = EP_DPOP_FULL;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < TK_DPOP_REPLAY_PROBES; i++) {
        seen_slot *e = &s->slot[(start + i) & (TK_DPOP_REPLAY_SLOTS - 1)];
        bool live = e->until > now;
        if (live && memcmp(e->jti, jti, TK_HASH_LEN) == 0) {
            rc = EP_DPOP_REPLAY;
            free_slot = NULL;
            break;
        }
        if (!live && free_slot == NULL) {
            free_slot = e;
        }
    }
    if (free_slot != NULL) {
        memcpy(free_slot->jti, jti, TK_HASH_LEN);
        free_slot->until = until;
        rc = EP_DPOP_OK;
    } else if (rc == EP_DPOP_FULL) {
        s->full++;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

uint64_t ep_dpop_seen_full(ep_dpop_seen *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->full;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- Server nonces (RFC 9449 §8) ------------------------------------------------------- */

static void nonce_raw(const ep_dpop_seen *s, uint64_t slot, uint8_t raw[24])
{
    for (int i = 0; i < 8; i++) {
        raw[i] = (uint8_t)(slot >> (56 - 8 * i));
    }
    uint8_t mac[32];
    size_t n = 0;
    TK_ASSERT(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, s->nonce_key, sizeof s->nonce_key, raw,
                        8, mac, sizeof mac, &n) != NULL &&
              n == sizeof mac);
    memcpy(raw + 8, mac, 16);
}

void ep_dpop_nonce(const ep_dpop_seen *s, int64_t now, char out[EP_DPOP_NONCE_LEN + 1])
{
    uint8_t raw[24];
    nonce_raw(s, (uint64_t)(now / TK_DPOP_NONCE_SLOT), raw);
    TK_ASSERT(tk_b64url_encode(raw, sizeof raw, out, EP_DPOP_NONCE_LEN + 1) == 0);
}

bool ep_dpop_nonce_ok(const ep_dpop_seen *s, tk_slice nonce, int64_t now)
{
    uint8_t got[24], want[24];
    size_t n = 0;
    if (nonce.len != EP_DPOP_NONCE_LEN ||
        tk_b64url_decode(nonce.p, nonce.len, got, sizeof got, &n) != 0 || n != sizeof got) {
        return false;
    }
    uint64_t slot = 0, cur = (uint64_t)(now / TK_DPOP_NONCE_SLOT);
    for (int i = 0; i < 8; i++) {
        slot = slot << 8 | got[i];
    }
    if (slot != cur && slot + 1 != cur) {
        return false;
    }
    nonce_raw(s, slot, want);
    return tk_ct_equal(got, want, sizeof got);
}
