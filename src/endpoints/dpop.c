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
 * The replay cache is process-wide, not one per worker: a replayed proof
 * arrives on another connection, and the kernel may hand that connection
 * to any worker, so per-worker tables would miss it. It is sharded by the
 * jti's hash, one mutex per shard, held for a few slot reads next to an
 * ECDSA verification of tens of microseconds. A jti needs remembering only
 * while its proof could still be accepted (iat within the window), so each
 * shard keeps TK_DPOP_REPLAY_GENS generations of TK_DPOP_REPLAY_GEN_SECONDS
 * of arrival time: a jti goes into the generation of its arrival, is looked
 * for in all live ones, and leaves when its generation is restarted, whole
 * and in O(1). Each generation holds a fixed number of jtis sized from the
 * setting dpop-rate, so memory is fixed at start:
 *   16 shards x 10 generations x 2 x (rate x 8 / 16 x 9/8 + 64) x 8 bytes
 *   = about 1.4 KiB per proof/s (28 MiB at the default 20 000/s).
 * Beyond the rate a jti finds its generation full and is refused
 * (EP_DPOP_FULL, fail closed): accepting it would accept its replays too.
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
/* A verification context for the P-256 public key (x, y): NULL when the
 * coordinates are not a point on the curve. */
static EVP_PKEY_CTX *new_verify_ctx(const uint8_t x[32], const uint8_t y[32])
{
    uint8_t pt[65] = {0x04};
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *vctx = NULL;
    EVP_PKEY *pkey = NULL;
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt)) {
        params = OSSL_PARAM_BLD_to_param(bld);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    }
    if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) > 0 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0) {
        vctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL); /* holds its own reference */
        if (vctx != NULL && EVP_PKEY_verify_init(vctx) != 1) {
            EVP_PKEY_CTX_free(vctx);
            vctx = NULL;
        }
    }
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return vctx;
}

/*
 * Each thread remembers the verification contexts of the last proof keys it
 * met (TK_DPOP_KEY_CACHE, by the key's bytes): an agent signs every proof
 * with one key, and building the key from its coordinates (point check,
 * provider fetches) cost more than the signature check itself. Only an
 * exact match of both coordinates hits; a miss builds the context as before.
 * Public keys only: nothing here is secret. The pthread key's destructor
 * frees a thread's contexts when it exits.
 */
typedef struct key_cache {
    struct {
        uint8_t xy[64];
        EVP_PKEY_CTX *vctx; /* NULL: empty */
    } e[TK_DPOP_KEY_CACHE];
} key_cache;

static pthread_once_t kc_once = PTHREAD_ONCE_INIT;
static pthread_key_t kc_key;
static __thread key_cache *thread_kc;

static void free_key_cache(void *p)
{
    key_cache *kc = p;
    for (size_t i = 0; i < TK_DPOP_KEY_CACHE; i++) {
        EVP_PKEY_CTX_free(kc->e[i].vctx);
    }
    free(kc);
}

static void kc_init_once(void)
{
    TK_ASSERT(pthread_key_create(&kc_key, free_key_cache) == 0);
}

/* The context for (x, y), from this thread's cache or new (then kept, the
 * slot's previous one freed). NULL: not a point on P-256, or no memory. */
static EVP_PKEY_CTX *verify_ctx(const uint8_t x[32], const uint8_t y[32])
{
    if (TK_UNLIKELY(thread_kc == NULL)) {
        TK_ASSERT(pthread_once(&kc_once, kc_init_once) == 0);
        thread_kc = calloc(1, sizeof *thread_kc);
        if (thread_kc == NULL) {
            return NULL;
        }
        TK_ASSERT(pthread_setspecific(kc_key, thread_kc) == 0);
    }
    uint8_t xy[64];
    memcpy(xy, x, 32);
    memcpy(xy + 32, y, 32);
    /* Random coordinates: their low bytes pick the slot. */
    size_t slot = ((size_t)x[31] ^ ((size_t)y[31] << 8)) % TK_DPOP_KEY_CACHE;
    if (thread_kc->e[slot].vctx != NULL && memcmp(thread_kc->e[slot].xy, xy, sizeof xy) == 0) {
        return thread_kc->e[slot].vctx;
    }
    EVP_PKEY_CTX *vctx = new_verify_ctx(x, y);
    if (vctx != NULL) {
        EVP_PKEY_CTX_free(thread_kc->e[slot].vctx);
        thread_kc->e[slot].vctx = vctx;
        memcpy(thread_kc->e[slot].xy, xy, sizeof xy);
    }
    return vctx;
}

static int header_key(json_t *header, uint8_t x[32], uint8_t y[32], EVP_PKEY_CTX **out,
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
    *out = verify_ctx(x, y);
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
    EVP_PKEY_CTX *vctx = NULL; /* this thread's, cached: not freed here */
    if (rc == EP_DPOP_OK) {
        rc = header_key(j.header, x, y, &vctx, why);
    }
    if (rc == EP_DPOP_OK && ev_jws_verify_es256_ctx(&j, vctx, why) != EV_OK) {
        rc = EP_DPOP_BAD_SIG;
    }
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

/* A slot: 48 bits of the jti's hash, then the 16-bit tag of the generation
 * that wrote it. A slot is live only when its tag is its generation's
 * current tag, so dropping a generation is a tag increment (O(1)); the
 * slots are cleared only when the tag wraps (every 65535 reuses, about 60
 * days). Tag 0 is never current: a zeroed slot is never live. */
#define TAG_BITS 16
#define TAG_MASK ((uint64_t)0xffff)

typedef struct gen {
    int64_t epoch; /* now / TK_DPOP_REPLAY_GEN_SECONDS when it was (re)started */
    uint32_t n;    /* jtis stored in this epoch */
    uint16_t tag;  /* 0: never started */
} gen;

typedef struct shard {
    _Alignas(64) pthread_mutex_t mu; /* a cache line of its own: no false sharing */
    int64_t cur;                     /* the newest epoch seen (a clock step back keeps it) */
    uint64_t full;                   /* proofs refused because the current generation was full */
    gen g[TK_DPOP_REPLAY_GENS];
    uint64_t *slot; /* TK_DPOP_REPLAY_GENS tables of cap slots */
} shard;

struct ep_dpop_seen {
    uint8_t nonce_key[32]; /* random per process: nonces die with it */
    uint32_t quota;        /* jtis a shard's generation takes */
    uint32_t cap;          /* slots of a shard's generation: 2 * quota (load <= 1/2) */
    size_t bytes;          /* slot memory, all of it allocated at start */
    shard sh[TK_DPOP_REPLAY_SHARDS];
};

/* A jti accepted in the last second of epoch e may be replayed until
 * TK_DPOP_IAT_PAST + TK_DPOP_IAT_FUTURE seconds later; generation e stays
 * live through epoch e + GENS - 1. */
_Static_assert((TK_DPOP_REPLAY_GENS - 1) * TK_DPOP_REPLAY_GEN_SECONDS >=
                   TK_DPOP_IAT_PAST + TK_DPOP_IAT_FUTURE + 1,
               "generations cover the acceptance window");
_Static_assert((TK_DPOP_REPLAY_SHARDS & (TK_DPOP_REPLAY_SHARDS - 1)) == 0, "a power of two");
_Static_assert((uint64_t)TK_DPOP_RATE_MAX *TK_DPOP_REPLAY_GEN_SECONDS * 3 < UINT32_MAX,
               "a shard's generation counts in 32 bits");

int ep_dpop_seen_new(unsigned rate, ep_dpop_seen **out)
{
    if (rate < TK_DPOP_RATE_MIN || rate > TK_DPOP_RATE_MAX) {
        return -EINVAL;
    }
    ep_dpop_seen *s = aligned_alloc(_Alignof(ep_dpop_seen), sizeof *s); /* the shards' lines */
    if (s == NULL) {
        return -ENOMEM;
    }
    memset(s, 0, sizeof *s);
    if (tk_random_bytes(s->nonce_key, sizeof s->nonce_key) != 0) {
        free(s);
        return -EIO;
    }
    /* A shard's share of a generation, with 1/8 + 64 of headroom for the
     * uneven spread of hashes over shards. */
    uint64_t share = (uint64_t)rate * TK_DPOP_REPLAY_GEN_SECONDS / TK_DPOP_REPLAY_SHARDS;
    s->quota = (uint32_t)(share + share / 8 + 64);
    s->cap = 2 * s->quota;
    size_t per = (size_t)TK_DPOP_REPLAY_GENS * s->cap;
    for (size_t i = 0; i < TK_DPOP_REPLAY_SHARDS; i++) {
        shard *h = &s->sh[i];
        h->slot = calloc(per, sizeof *h->slot);
        if (h->slot == NULL) {
            ep_dpop_seen_free(s);
            return -ENOMEM;
        }
        pthread_mutex_init(&h->mu, NULL);
        s->bytes += per * sizeof *h->slot;
    }
    *out = s;
    return 0;
}

void ep_dpop_seen_free(ep_dpop_seen *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < TK_DPOP_REPLAY_SHARDS; i++) {
        if (s->sh[i].slot != NULL) {
            pthread_mutex_destroy(&s->sh[i].mu);
            free(s->sh[i].slot);
        }
    }
    tk_cleanse(s->nonce_key, sizeof s->nonce_key);
    free(s);
}

size_t ep_dpop_seen_bytes(const ep_dpop_seen *s)
{
    return s->bytes;
}

uint64_t ep_dpop_seen_capacity(const ep_dpop_seen *s)
{
    return (uint64_t)s->quota * TK_DPOP_REPLAY_SHARDS;
}

/* Look for fp in generation k from its home slot: true when a live slot
 * holds it. Load <= 1/2, so a free (not live) slot ends the run soon. */
static bool gen_has(const ep_dpop_seen *s, const shard *h, size_t k, uint64_t home, uint64_t fp)
{
    const gen *g = &h->g[k];
    const uint64_t *t = h->slot + k * s->cap;
    size_t i = (size_t)(home % s->cap);
    for (uint32_t probes = 0; probes < s->cap; probes++) {
        uint64_t v = t[i];
        if ((v & TAG_MASK) != g->tag) {
            return false;
        }
        if ((v >> TAG_BITS) == fp) {
            return true;
        }
        i = i + 1 == s->cap ? 0 : i + 1;
    }
    return false; /* unreachable at load <= 1/2 */
}

static void gen_put(const ep_dpop_seen *s, shard *h, size_t k, uint64_t home, uint64_t fp)
{
    gen *g = &h->g[k];
    uint64_t *t = h->slot + k * s->cap;
    size_t i = (size_t)(home % s->cap);
    for (uint32_t probes = 0; probes < s->cap; probes++) {
        if ((t[i] & TAG_MASK) != g->tag) {
            t[i] = fp << TAG_BITS | g->tag;
            g->n++;
            return;
        }
        i = i + 1 == s->cap ? 0 : i + 1;
    }
    tk_assert_fail("a generation at load <= 1/2 has a free slot", __FILE__, __LINE__);
}

/* Start generation k afresh for epoch e: everything it held is dropped. */
static void gen_restart(const ep_dpop_seen *s, shard *h, size_t k, int64_t e)
{
    gen *g = &h->g[k];
    g->tag++;
    if (g->tag == 0) { /* wrapped: old tags would read as current */
        memset(h->slot + k * s->cap, 0, (size_t)s->cap * sizeof *h->slot);
        g->tag = 1;
    }
    g->epoch = e;
    g->n = 0;
}

int ep_dpop_remember(ep_dpop_seen *s, const uint8_t jti[TK_HASH_LEN], int64_t until, int64_t now)
{
    /* SHA-256 output: any bytes are uniform. Bytes 0-7 place the jti in a
     * table, byte 8 picks the shard, bytes 16-21 are the fingerprint (a
     * 48-bit collision refuses a good proof, never accepts a replay). */
    uint64_t home = 0, fp = 0;
    memcpy(&home, jti, sizeof home);
    for (size_t i = 16; i < 22; i++) {
        fp = fp << 8 | jti[i];
    }
    if (until > now + TK_DPOP_IAT_PAST + TK_DPOP_IAT_FUTURE + 1) {
        return EP_DPOP_FULL; /* longer than the generations cover: fail closed */
    }
    shard *h = &s->sh[jti[8] & (TK_DPOP_REPLAY_SHARDS - 1)];
    int64_t e = (now < 0 ? 0 : now) / TK_DPOP_REPLAY_GEN_SECONDS;
    int rc = EP_DPOP_OK;
    pthread_mutex_lock(&h->mu);
    if (e > h->cur) {
        h->cur = e;
    }
    e = h->cur; /* a clock step back stores into the newest generation */
    size_t k = (size_t)(e % TK_DPOP_REPLAY_GENS);
    if (h->g[k].tag == 0 || h->g[k].epoch != e) {
        gen_restart(s, h, k, e);
    }
    for (size_t j = 0; j < TK_DPOP_REPLAY_GENS; j++) {
        const gen *g = &h->g[j];
        if (g->tag != 0 && g->epoch > e - TK_DPOP_REPLAY_GENS && gen_has(s, h, j, home, fp)) {
            rc = EP_DPOP_REPLAY;
            break;
        }
    }
    if (rc == EP_DPOP_OK && h->g[k].n >= s->quota) {
        rc = EP_DPOP_FULL;
        h->full++;
    }
    if (rc == EP_DPOP_OK) {
        gen_put(s, h, k, home, fp);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

uint64_t ep_dpop_seen_full(ep_dpop_seen *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < TK_DPOP_REPLAY_SHARDS; i++) {
        pthread_mutex_lock(&s->sh[i].mu);
        n += s->sh[i].full;
        pthread_mutex_unlock(&s->sh[i].mu);
    }
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
