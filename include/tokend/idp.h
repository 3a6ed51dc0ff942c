/*
 * IdP trust: which identity providers may end sessions, and how their events
 * are verified. Loaded from a JSON file (config key idp-config), reloaded on
 * SIGHUP. Implemented in src/idp: trust.c (file, issuers, holder) and keys.c
 * (keys, algorithms); the JWS checks that use them are jose.h's.
 *
 * The one idea: a loaded configuration is an immutable, reference-counted
 * snapshot. The holder points at the current one; workers take a reference
 * at the start of a batch when the holder's generation moved, and drop their
 * old one. A reload builds a whole new snapshot first and swaps it in only
 * when every part of it loaded; a bad file leaves the old one in place.
 *
 * File format:
 *   {"issuers": [{
 *      "issuer": "https://idp.example/realms/acme",   exact "iss" of events
 *      "audience": "tokend",            tokend's client id at that IdP ("aud")
 *      "jwks_file": "acme.jwks.json",   and/or "jwks": {...} and/or
 *      "keys": [{"pem_file": "k.pem", "kid": "k1", "alg": "RS256"}],
 *      "jwks_uri": "https://idp.example/…/certs",  fetched and refreshed
 *                                       (idp_jwks.h); https only, http
 *                                       only to a loopback host (tests)
 *      "algorithms": ["RS256", "ES256"],  allow-list (default per key type:
 *                                         RS256, ES256 (P-256), ES384 (P-384))
 *      "leeway": 60, "max_age": 86400, "allow_missing_exp": false,
 *      "ssf_bearer": "…",               optional bearer for POST /ssf/events
 *      "webhook_secrets": ["whsec_…"],  Standard Webhooks secrets (rotation)
 *      "sender_certificate": {"san": "dns:hooks.idp.example"},  or "subject"
 *                                       (a DN) or "thumbprint" (SHA-256, hex or
 *                                       base64url): the client certificate the
 *                                       IdP's webhooks and SSF pushes must come
 *                                       with over TLS (RFC 8705 style; subject
 *                                       and san need a chain to tls-ca); it
 *                                       authenticates a webhook without a
 *                                       secret, and is required beside any
 *                                       secret or ssf_bearer the issuer has
 *      "credential_change": "terminate" | "suspend" | "ignore",
 *      "client_id": "tokend",           sign-in upstream (login = oidc):
 *      "client_secret": "…",            tokend's client at this IdP, its
 *      "token_endpoint_auth_method":    secret (client_secret_basic, the
 *          "client_secret_basic",       default, or client_secret_post),
 *      "scopes": "openid email",        the scopes asked ("openid" added
 *      "end_session": true,             when missing) and whether /logout
 *                                       goes on to the IdP's end-session
 *      "domains": ["example.com"],      login_hint domains routed to this
 *                                       sign-in IdP (exact, any case)
 *      "allowed_resources": ["https://…"],  what its users may grant:
 *      "allowed_scopes": ["read"]       resources and scope names (absent:
 *   }]}                                 no restriction; [] : nothing)
 * A sign-in IdP's endpoints (and its jwks_uri when none is given) come
 * from its discovery document (idp_jwks.h, tk_idp_discover).
 * Relative file names are relative to the config file's folder. Unknown
 * members are errors (typos must not silently weaken checks). Keys: RSA
 * (at least 2048 bits) and EC P-256/P-384, from JWKS (n/e, crv/x/y) or PEM
 * public keys; private members in a JWK are refused.
 */
#ifndef TOKEND_IDP_H
#define TOKEND_IDP_H

#include "tokend/cert.h"
#include "tokend/common.h"
#include "tokend/limits.h"

struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* JWS algorithms we verify (asymmetric only: never none, never HMAC). */
enum tk_jws_alg {
    TK_ALG_RS256 = 1,
    TK_ALG_RS384,
    TK_ALG_RS512,
    TK_ALG_PS256,
    TK_ALG_PS384,
    TK_ALG_PS512,
    TK_ALG_ES256,
    TK_ALG_ES384,
    TK_ALG_COUNT
};
#define TK_ALG_BIT(a) (1u << (a))

/* "RS256" → TK_ALG_RS256; 0 for anything else (none, HS256, …). */
uint8_t tk_jws_alg_parse(tk_slice name);
const char *tk_jws_alg_name(uint8_t alg);

typedef struct tk_idp_key {
    char kid[TK_IDP_KID_MAX + 1];
    size_t kid_len; /* 0: the key has no kid */
    struct evp_pkey_st *pkey;
    unsigned algs; /* TK_ALG_BIT set of what this key may verify */
} tk_idp_key;

enum tk_idp_action { TK_IDP_TERMINATE = 1, TK_IDP_SUSPEND = 2, TK_IDP_IGNORE = 3 };

typedef struct tk_idp_issuer {
    char issuer[TK_IDP_ISS_MAX + 1];
    size_t issuer_len;
    char audience[TK_URL_MAX + 1];
    size_t audience_len;
    int64_t leeway;  /* seconds */
    int64_t max_age; /* oldest iat accepted when there is no exp */
    bool allow_missing_exp;
    char ssf_bearer[TK_IDP_BEARER_MAX + 1];
    size_t ssf_bearer_len;     /* 0: no bearer required */
    uint8_t credential_change; /* enum tk_idp_action */
    unsigned nsecrets;
    uint8_t secret[TK_IDP_SECRETS_MAX][TK_IDP_SECRET_MAX];
    size_t secret_len[TK_IDP_SECRETS_MAX];
    unsigned algs; /* the issuer's "algorithms" (TK_ALG_BIT set); 0 = per key type */
    /* sender_certificate: canonical subject or SAN, or a thumbprint (one
     * of the three; all empty when the member is absent). */
    char sender_subject[TK_CERT_DN_MAX + 1];
    size_t sender_subject_len;
    char sender_san[TK_CERT_SAN_MAX + 1];
    size_t sender_san_len;
    bool has_sender_thumbprint;
    uint8_t sender_thumbprint[TK_HASH_LEN];
    /* jwks_uri: where the key set is fetched (idp_jwks.h); "" when the keys
     * are only the file's. Fetched keys follow the file's in keys[]. */
    char jwks_uri[TK_URL_MAX + 1];
    size_t jwks_uri_len;
    /* OpenID Connect sign-in upstream (login = oidc): tokend's client at
     * this IdP; client_id_len 0 when the issuer is not a sign-in IdP. The
     * endpoints come from discovery (tk_idp_discover), "" until it worked. */
    char client_id[TK_IDP_CLIENT_ID_MAX + 1];
    size_t client_id_len;
    char client_secret[TK_IDP_CLIENT_SECRET_MAX + 1];
    size_t client_secret_len;
    bool secret_post;                   /* client_secret_post, else client_secret_basic */
    char scopes[TK_IDP_SCOPES_MAX + 1]; /* what /authorize at the IdP asks; has "openid" */
    bool end_session;                   /* /logout goes on to the IdP's end_session_endpoint */
    bool discovered;
    bool iss_param; /* discovery: authorization_response_iss_parameter_supported (RFC 9207) */
    /* Several organisations: the login_hint domains that send a sign-in
     * here (lower case, unique across issuers), and what this issuer's
     * users may grant. limit_* false: no restriction (the member is
     * absent); true with an empty list: nothing. Space-separated lists. */
    unsigned ndomains;
    char domains[TK_IDP_DOMAINS_MAX][TK_IDP_DOMAIN_MAX + 1];
    bool limit_resources, limit_scopes;
    char allowed_resources[TK_IDP_ORG_RESOURCES_LEN + 1];
    size_t allowed_resources_len;
    char allowed_scopes[TK_SCOPE_MAX + 1];
    size_t allowed_scopes_len;
    char authorization_endpoint[TK_URL_MAX + 1];
    char token_endpoint[TK_URL_MAX + 1];
    char end_session_endpoint[TK_URL_MAX + 1];
    unsigned nkeys;
    tk_idp_key keys[TK_IDP_KEYS_MAX];
} tk_idp_issuer;

/* An immutable snapshot. Fields are read-only once loaded. */
typedef struct tk_idp_trust {
    unsigned refs; /* atomic */
    unsigned n;
    tk_idp_issuer *issuers; /* n of them */
} tk_idp_trust;

/* Load path. Returns 0 with *out (one reference), or -errno / TK_E_BADINPUT /
 * TK_E_TOOBIG with a message naming the file and the problem in err. */
int tk_idp_load(const char *path, tk_idp_trust **out, char *err, size_t errcap);

/* References: thread-safe. The last unref frees keys and cleanses secrets. */
void tk_idp_ref(tk_idp_trust *t);
void tk_idp_unref(tk_idp_trust *t);

/* The issuer names a sender certificate (sender_certificate). */
bool tk_idp_has_sender_cert(const tk_idp_issuer *is);
/* pc (NULL: none) is the issuer's sender certificate; false when the
 * issuer names none. */
bool tk_idp_sender_cert_ok(const tk_idp_issuer *is, const tk_peer_cert *pc);

/* The issuer whose "issuer" equals iss exactly, or NULL. t may be NULL. */
const tk_idp_issuer *tk_idp_find(const tk_idp_trust *t, tk_slice iss);

/* The sign-in IdP (one with a client_id) that lists the domain of a
 * login_hint: the part after its last '@', compared whole and without
 * regard to case (ASCII). NULL when the hint has no '@' or no issuer lists
 * its domain. t may be NULL. */
const tk_idp_issuer *tk_idp_for_hint(const tk_idp_trust *t, tk_slice hint);

/* The key for a token's kid (exact match), or the only key when the token
 * has no kid and exactly one is configured; NULL otherwise. */
const tk_idp_key *tk_idp_key_for(const tk_idp_issuer *iss, tk_slice kid, bool has_kid);

/* ---- Holder: the current snapshot, swapped on reload ---------------------- */

typedef struct tk_idp_holder tk_idp_holder;

/* initial may be NULL (no IdP configured yet); the holder takes its
 * reference. Returns 0 or -ENOMEM. */
int tk_idp_holder_new(tk_idp_trust *initial, tk_idp_holder **out);
void tk_idp_holder_free(tk_idp_holder *h);
/* Install t (taking its reference) and drop the holder's old one. */
void tk_idp_holder_swap(tk_idp_holder *h, tk_idp_trust *t);
/* Cheap (one atomic load): changes on every swap. */
uint64_t tk_idp_holder_gen(const tk_idp_holder *h);
/* A new reference to the current snapshot (NULL when none) and its gen. */
tk_idp_trust *tk_idp_holder_get(tk_idp_holder *h, uint64_t *gen);

#endif
