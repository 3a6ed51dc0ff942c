/*
 * The records tokend keeps, as plain structs, and their strict codec.
 *
 * On disk every record is a msgpack map with small integer keys; key 0 is the
 * record version. Encoding is our own writer (the bytes msgpack-c's packer
 * writes, with no call per item); decoding is our own strict
 * reader (types, sizes and ranges checked, unknown keys skipped only when the
 * version is newer, nothing allocated). Decoded slices point into the encoded
 * bytes: when those live in the LMDB map, they die with the read transaction,
 * so use or copy them before it is reset.
 */
#ifndef TOKEND_RECORD_H
#define TOKEND_RECORD_H

#include "tokend/common.h"
#include "tokend/limits.h"

#include <string.h>

#define TK_RECORD_VERSION 1

/* Every time field (Unix seconds) lies in [0, TK_TIME_MAX] (limits.h); 0 means
 * "not set" where a field is optional (nbf, revoked_at, expires, ...). */

enum tk_token_kind { TK_TOKEN_ACCESS = 1, TK_TOKEN_REFRESH = 2 };

/* tokens DBI: key SHA-256(token) → this. */
typedef struct tk_token_rec {
    uint8_t kind;       /* enum tk_token_kind */
    tk_slice client_id; /* the client (agent) the token was issued to */
    tk_slice sub;       /* the user on whose behalf it acts */
    tk_slice sid;       /* the session it is bound to */
    tk_slice grant_id;  /* the grant it belongs to (delegated tokens: the root's) */
    tk_slice scope;     /* space-separated */
    tk_slice aud;       /* audience / resource, may be empty */
    bool has_parent;    /* delegated (RFC 8693): parent token hash below */
    uint8_t parent[TK_HASH_LEN];
    int64_t iat, nbf, exp; /* Unix seconds */
    int64_t revoked_at;    /* 0 = not revoked; TK_REVOKED_UNTIMED: see tid */
    uint32_t client_gen;   /* the generation of client_id when this token was
                              issued (tk_client_rec.generation); the token is
                              live only while the client still has it. Key 13,
                              optional: records written before it decode as 0. */
    /* Refresh tokens (/token rotation): when this token was rotated away
     * (key 14, optional, 0 = current) and its successor (key 15, optional).
     * A rotated token presented again within the reuse window gets a
     * sibling pair; after it, its grant (the family) is revoked. A token
     * with an id (tid) is rotated by an entry in the spent DBI instead of
     * a rewrite of this record (schema 3, docs/ARCHITECTURE.md §2, "Spent
     * codes and refresh tokens"): tk_store_get_token reports that entry's
     * time here, and no successor is written any more (nothing reads it);
     * keys 14 and 15 stay for records rotated the old way. */
    int64_t rotated_at;
    bool has_successor;
    uint8_t successor[TK_HASH_LEN];
    /* RFC 8705 §3: the SHA-256 of the client certificate the token was
     * issued over (cnf.x5t#S256); only the certificate's holder may use
     * it at forward-auth. Key 16, optional: unbound tokens have none. */
    bool has_cnf;
    uint8_t cnf_x5t[TK_HASH_LEN];
    /* DPoP (RFC 9449): the token is bound to the key whose RFC 7638
     * thumbprint (SHA-256, raw) this is (cnf.jkt). Key 17, optional:
     * absent for bearer tokens and records written before it. */
    bool has_jkt;
    uint8_t jkt[TK_HASH_LEN];
    /* The token's id (key 18, optional, 1..TK_TOKEN_ID_MAX): a sequential
     * number the store gives every token record it creates (docs/ARCHITECTURE.md
     * §2, "Revocations"). A token with an id is revoked by a bit in the
     * revocation bitmap, not by rewriting this record: tk_store_get_token
     * then reports revoked_at = TK_REVOKED_UNTIMED and the time is in the
     * revocation log (tk_store_token_revoked_at). Records written before ids
     * existed have 0 and keep revoked_at in the record. Callers never set it:
     * tk_store_put_token assigns it (new key) or keeps the stored one. */
    uint64_t tid;
} tk_token_rec;

/* revoked_at as tk_store_get_token reports a revocation recorded in the
 * bitmap: "revoked", the time being in the revocation log. Non-zero, so every
 * "revoked_at != 0" test holds; not a time anything compares against. */
#define TK_REVOKED_UNTIMED 1

enum tk_session_state {
    TK_SESSION_ACTIVE = 1,
    TK_SESSION_SUSPENDED = 2,  /* carries at least one hold (reversible) */
    TK_SESSION_TERMINATED = 3, /* final */
};

/* Who holds a suspension. Each owner sets and lifts only its own hold; a
 * session is active only while it carries none. New owners take the next
 * number (at most 8: the set is a byte). */
enum tk_hold {
    TK_HOLD_ADMIN = 1,      /* tokenctl session suspend / resume */
    TK_HOLD_DEVICE = 2,     /* CAEP device-compliance-change */
    TK_HOLD_CREDENTIAL = 3, /* CAEP credential-change (when configured to suspend) */
};
#define TK_HOLD_LAST   TK_HOLD_CREDENTIAL
#define TK_HOLD_BIT(h) ((uint8_t)(1u << ((h)-1)))
#define TK_HOLDS_ALL   ((uint8_t)((1u << TK_HOLD_LAST) - 1))
_Static_assert(TK_HOLD_LAST <= 8, "the hold set is one byte");

/* sessions DBI: key sid → this. */
typedef struct tk_session_rec {
    tk_slice sub;
    tk_slice issuer;          /* the IdP that owns the session; may be empty */
    tk_slice reason;          /* why it was terminated/suspended; may be empty */
    uint8_t state;            /* enum tk_session_state */
    int64_t created, expires; /* expires 0 = no expiry */
    int64_t ended_at;         /* terminated or suspended at; 0 when active */
    tk_slice idp_sid;         /* the IdP's session id ("sid" claim); may be empty.
                                 Added in version 1 as an optional key: records
                                 written before it decode unchanged. */
    uint8_t holds;            /* set of TK_HOLD_BIT(owner). Key 9, optional.
                                 Invariant: active <=> no hold; suspended <=> at
                                 least one; terminated keeps the holds it had.
                                 A suspended record written before holds
                                 existed (no key 9) decodes as an admin hold. */
    /* How the user signed in at the IdP (login = oidc: the ID token's
     * auth_time, acr and amr; OIDC Core §2), for audit and introspection.
     * Keys 10, 11, 12, all optional: sessions created otherwise and records
     * written before them have none. acr is one token (no space); amr is
     * the method references, space-separated (tk_session_claims_ok). */
    int64_t auth_time;
    tk_slice acr;
    tk_slice amr;
} tk_session_rec;

/* acr: printable ASCII without space, quote or backslash; amr: such tokens
 * separated by single spaces. Empty slices are fine (absent). */
bool tk_session_claims_ok(tk_slice acr, tk_slice amr);

enum tk_grant_state { TK_GRANT_ACTIVE = 1, TK_GRANT_REVOKED = 2 };

/* grants DBI: key grant id → this. */
typedef struct tk_grant_rec {
    tk_slice client_id;
    tk_slice sub;
    tk_slice sid;
    tk_slice scope;
    uint8_t state; /* enum tk_grant_state */
    int64_t created;
    int64_t revoked_at;
    tk_slice resource; /* the protected resource the user consented to (key 8,
                          optional; empty for grants made by tokenctl). A grant
                          with a resource is the user's consent for (sub,
                          client, resource): one per triple, found through
                          tk_store_consent_key, and the family every token
                          issued under it belongs to. */
    tk_slice iss;      /* the IdP issuer of sub when the user signed in at an IdP before
                          consenting (key 9, optional; empty: tokend's own users, tokenctl
                          grants, and grants recorded before the key existed) */
} tk_grant_rec;

enum tk_client_role { TK_ROLE_AGENT = 1, TK_ROLE_RESOURCE_SERVER = 2, TK_ROLE_ADMIN = 3 };
enum tk_client_status { TK_CLIENT_PENDING = 1, TK_CLIENT_APPROVED = 2, TK_CLIENT_DISABLED = 3 };

/* clients DBI: key client_id → this. */
typedef struct tk_client_rec {
    uint8_t secret_hash[TK_HASH_LEN]; /* SHA-256 of the client secret */
    tk_slice name;
    tk_slice scope;    /* scopes the client may hold; empty = any */
    tk_slice resource; /* resource servers: the audience they answer for; may be empty */
    uint8_t role;      /* enum tk_client_role */
    uint8_t status;    /* enum tk_client_status */
    int64_t created;
    uint32_t generation; /* bumped each time the client becomes disabled: every
                            token stamped with an older generation is dead for
                            good (disabling is final). Key 8, optional (0). */
    /* Registration metadata (keys 9..15, all optional: clients added before
     * the authorization server decode with them empty). */
    tk_slice redirect_uris;        /* space-separated, exact strings (key 9) */
    uint8_t auth_method;           /* enum tk_oauth_auth_method + 1; 0 = not set (key 10) */
    uint8_t grant_types;           /* enum tk_oauth_grant bits; 0 = none (key 11) */
    uint8_t flags;                 /* TK_CLIENT_F_* (key 12) */
    tk_slice software_id;          /* key 13 */
    bool has_identity;             /* key 14: SHA-256 over name, sorted redirect URIs and */
    uint8_t identity[TK_HASH_LEN]; /* software_id: approval per client identity */
    tk_slice delegate_to;          /* key 15: client ids (space-separated) or "*" that may
                                      receive a token exchanged from this client's */
    /* RFC 8705 client authentication by certificate, instead of the
     * secret: tls_client_auth (key 16: the canonical subject DN, cert.h,
     * of a certificate chaining to tls-ca) or self_signed_tls_client_auth
     * (key 17: the certificate's SHA-256). Both optional; a client with
     * either never authenticates with its secret. */
    tk_slice tls_subject;
    bool has_tls_thumbprint;
    uint8_t tls_thumbprint[TK_HASH_LEN];
    /* tls_client_auth by a subject alternative name instead of the DN
     * (RFC 8705 §2.1.2 tls_client_auth_san_dns/uri/ip/email): its
     * canonical form, "dns:…", "uri:…", "ip:…" or "email:…" (cert.h). Key
     * 18, optional; a client has at most one of tls_subject and tls_san. */
    tk_slice tls_san;
    /* A client known by its Client ID Metadata Document (oauth_cimd.h):
     * the client_id URL (key 19; the record's key is derived from it, and
     * the URL is what is shown as its client_id) and until when its fetched
     * document is trusted (key 20). Both optional. */
    tk_slice metadata_url;
    int64_t metadata_until;
} tk_client_rec;

#define TK_CLIENT_F_PUBLIC  1u /* token_endpoint_auth_method none: no secret */
#define TK_CLIENT_F_NATIVE  2u /* application_type native (RFC 8252 loopback rule) */
#define TK_CLIENT_F_DYNAMIC 4u /* registered at /register (its name is self-declared) */
#define TK_CLIENT_F_ALL     7u

/* codes DBI: key SHA-256(authorization code) → this. Everything the code is
 * bound to (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707). */
typedef struct tk_code_rec {
    tk_slice client_id;             /* key 1 */
    tk_slice redirect_uri;          /* key 2: the one used at /authorize */
    uint8_t challenge[TK_HASH_LEN]; /* key 3: the S256 challenge, decoded */
    tk_slice resource;              /* key 4: the token's audience */
    tk_slice scope;                 /* key 5 */
    tk_slice sid;                   /* key 6: the session that signed in */
    tk_slice sub;                   /* key 7 */
    tk_slice grant_id;              /* key 8: the consent grant it issues under */
    int64_t exp, created;           /* keys 9, 10 */
    int64_t used_at;                /* key 11: 0 = unused */
    uint8_t redirect_given;         /* key 12: 1 = /authorize named redirect_uri, so /token must
                                       name it too (RFC 6749 §4.1.3); 0 = absent */
    /* key 13, optional (1..TK_TOKEN_ID_MAX): the code's id, from the token id
     * counter (tk_store_put_code assigns it to a new code; callers never set
     * it). A code with an id is redeemed by an entry in the spent DBI, not by
     * rewriting this record: tk_store_get_code reports that entry's time as
     * used_at. Codes written before schema 3 have 0 and keep used_at here. */
    uint64_t id;
} tk_code_rec;

/* authreqs DBI: key request id ("tka_…") → this. A pending /authorize
 * request, resolved (redirect URI selected, resource and scope decided),
 * waiting for sign-in or consent. */
typedef struct tk_authreq_rec {
    tk_slice client_id;             /* key 1 */
    tk_slice redirect_uri;          /* key 2 */
    tk_slice state;                 /* key 3, optional */
    uint8_t challenge[TK_HASH_LEN]; /* key 4 */
    tk_slice scope;                 /* key 5 */
    tk_slice resource;              /* key 6 */
    uint8_t prompt;                 /* key 7: TK_OAUTH_PROMPT_* bits, optional */
    uint8_t csrf_key[TK_HASH_LEN];  /* key 8: random; the login form's CSRF derives from it */
    bool has_browser;               /* key 9: the browser session (cookie hash) */
    uint8_t browser[TK_HASH_LEN];   /*   it is bound to, once signed in */
    int64_t exp, created;           /* keys 10, 12 */
    int64_t used_at;                /* key 11: consumed (consent decided, code made) */
    tk_slice login_hint;            /* key 13, optional: routes the sign-in to an IdP */
    uint8_t redirect_given;         /* key 14: 1 = the request named redirect_uri (its code
                                       carries it on); 0 = absent */
    bool has_prelogin;              /* key 15, optional: the hash of the pre-login cookie */
    uint8_t prelogin[TK_HASH_LEN];  /*   of the browser that made the request (only it may
                                       sign in for it: /login, /login/callback) */
} tk_authreq_rec;

/* browsers DBI: key SHA-256(session cookie value) → this. A signed-in
 * browser, bound to one tokend session: it lives only while that does. */
typedef struct tk_browser_rec {
    tk_slice sid;                  /* key 1 */
    uint8_t csrf_key[TK_HASH_LEN]; /* key 2: consent CSRF tokens derive from it */
    int64_t created, exp;          /* keys 3, 4 */
} tk_browser_rec;

int tk_record_encode_code(const tk_code_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_decode_code(const uint8_t *buf, size_t len, tk_code_rec *rec);
int tk_record_encode_authreq(const tk_authreq_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_decode_authreq(const uint8_t *buf, size_t len, tk_authreq_rec *rec);
int tk_record_encode_browser(const tk_browser_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_decode_browser(const uint8_t *buf, size_t len, tk_browser_rec *rec);

/* agent_access DBI: key (agent client id, protected resource identifier) →
 * this. What forward-auth saw of one agent at one resource: requests it let
 * through and requests it refused (wrong audience, insufficient scope), and
 * when the pair was first and last seen. Written only by TK_OP_AGENT_ACCESS. */
typedef struct tk_agent_access_rec {
    int64_t allowed, denied;       /* counts, >= 0 */
    int64_t first_seen, last_seen; /* Unix seconds */
} tk_agent_access_rec;

/*
 * Encoders: write the msgpack form of rec into buf. Every slice must be within
 * its limit (limits.h) and every enum in range; otherwise TK_E_INVALID.
 * Returns 0 with *len set, or TK_E_TOOBIG when cap is too small.
 */
int tk_record_encode_token(const tk_token_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_encode_session(const tk_session_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_encode_grant(const tk_grant_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_encode_client(const tk_client_rec *rec, uint8_t *buf, size_t cap, size_t *len);

/*
 * Strict decoders: 0, or TK_E_CORRUPT for anything unexpected (wrong type,
 * out-of-range value, oversized string, missing required key, trailing
 * bytes, truncation). Never reads outside buf[0..len). Slices in *rec point
 * into buf.
 */
int tk_record_decode_token(const uint8_t *buf, size_t len, tk_token_rec *rec);
int tk_record_decode_session(const uint8_t *buf, size_t len, tk_session_rec *rec);
int tk_record_decode_grant(const uint8_t *buf, size_t len, tk_grant_rec *rec);
int tk_record_decode_client(const uint8_t *buf, size_t len, tk_client_rec *rec);
int tk_record_encode_agent_access(const tk_agent_access_rec *rec, uint8_t *buf, size_t cap,
                                  size_t *len);
int tk_record_decode_agent_access(const uint8_t *buf, size_t len, tk_agent_access_rec *rec);

/* Where an IdP event came from (audit records, TK_OP_IDP_EVENT). */
enum tk_event_source {
    TK_SOURCE_BACKCHANNEL = 1, /* OpenID Connect Back-Channel Logout */
    TK_SOURCE_SSF = 2,         /* Shared Signals push (RFC 8935), CAEP events */
    TK_SOURCE_WEBHOOK = 3,     /* Standard Webhooks signed JSON */
    TK_SOURCE_ADMIN = 4,       /* tokenctl */
};

/* audit DBI: key (8-byte big-endian time, 32-byte event key) → this. One
 * record per event that ended, suspended or resumed sessions (or tried to:
 * an event matching nothing is recorded too). */
typedef struct tk_audit_rec {
    uint8_t source;    /* enum tk_event_source */
    uint8_t state;     /* what was asked: terminated, suspended, active (resume) */
    tk_slice issuer;   /* the IdP; may be empty (admin) */
    tk_slice event_id; /* jti / webhook-id; may be empty (admin) */
    tk_slice reason;   /* event type or admin reason; may be empty */
    tk_slice sids;     /* changed sessions, space-separated, at most
                          TK_AUDIT_SIDS_MAX of them; may be empty */
    int64_t at;        /* when it was applied */
    int64_t matched;   /* sessions the event matched */
    int64_t changed;   /* sessions whose state or holds changed */
    uint8_t hold;      /* suspend / resume: the hold set or lifted (enum
                          tk_hold); 0 for terminations. Key 10, optional. */
} tk_audit_rec;

#define TK_AUDIT_SIDS_BYTES (TK_AUDIT_SIDS_MAX * (TK_ID_MAX + 1))

int tk_record_encode_audit(const tk_audit_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_decode_audit(const uint8_t *buf, size_t len, tk_audit_rec *rec);

/* ---- SSF transmitter (ssf DBI, src/store/ssf_queue.c) ----------------------
 * What tokend pushes to edge caches (RFC 8935): one event per change, queued
 * per receiver in the write txn of the change itself. */

/* Kinds of event; a receiver wants a set of them (bit TK_SSF_BIT(kind)).
 * OVERFLOW is not wanted, it is owed: see tk_ssf_receiver_rec. */
enum tk_ssf_kind {
    TK_SSF_SESSION_REVOKED = 1,   /* a session ended (CAEP session-revoked) */
    TK_SSF_SESSION_SUSPENDED = 2, /* a hold was set on a session */
    TK_SSF_SESSION_RESUMED = 3,   /* a session's last hold was lifted */
    TK_SSF_TOKEN_REVOKED = 4,     /* a token was revoked (identified by its hash) */
    TK_SSF_GRANT_REVOKED = 5,     /* a grant (a token family) was revoked */
    TK_SSF_CLIENT_DISABLED = 6,   /* a client was disabled (final for its tokens) */
    TK_SSF_OVERFLOW = 7,          /* the queue was full: events were not queued */
};
#define TK_SSF_KIND_LAST TK_SSF_OVERFLOW
#define TK_SSF_BIT(k)    ((uint8_t)(1u << ((k)-1)))
/* Every kind a receiver may want: all but OVERFLOW, which is always sent. */
#define TK_SSF_WANT_ALL ((uint8_t)((1u << TK_SSF_CLIENT_DISABLED) - 1))

/* ssf DBI: key 'R' + receiver id → this. A receiver of pushed events. */
typedef struct tk_ssf_receiver_rec {
    tk_slice url;       /* key 1: the push endpoint (http or https) */
    tk_slice audience;  /* key 2: the SETs' aud */
    tk_slice bearer;    /* key 3, optional: sent as Authorization: Bearer; never logged */
    uint8_t want;       /* key 4: TK_SSF_BIT set of the kinds it receives (not OVERFLOW) */
    int64_t created;    /* key 5 */
    int64_t queue_max;  /* key 6: events queued at most (1..TK_SSF_QUEUE_MAX) */
    int64_t depth;      /* key 7, optional: events queued now */
    int64_t dropped;    /* key 8, optional: events never queued because it was full */
    uint8_t overflowed; /* key 9, optional: 1 while an OVERFLOW event is queued; nothing
                           else is queued until it is delivered (then depth is 0) */
} tk_ssf_receiver_rec;

/* ssf DBI: key 'Q' + id length (1 byte) + receiver id + sequence (8 bytes,
 * big-endian) → this. The sequence is global (key 'S': the last one used),
 * so it never repeats for a receiver, even one removed and added again. */
typedef struct tk_ssf_event_rec {
    uint8_t kind;  /* key 1: enum tk_ssf_kind */
    int64_t at;    /* key 2: when the change was applied */
    tk_slice id;   /* key 3, optional: the session, grant id; a token's session */
    bool has_hash; /* key 4: token events: SHA-256 of the token */
    uint8_t hash[TK_HASH_LEN];
    tk_slice sub;    /* key 5, optional: the grant's (or session's) subject */
    tk_slice client; /* key 6, optional: the grant's client */
    tk_slice reason; /* key 7, optional */
    uint8_t hold;    /* key 8, optional: suspension / resumption: which hold */
    tk_slice iss;    /* key 9, optional: grant events: the issuer sub belongs to
                        (the IdP of the grant's session, read when the event
                        was queued); empty: tokend's own */
} tk_ssf_event_rec;

int tk_record_encode_ssf_receiver(const tk_ssf_receiver_rec *rec, uint8_t *buf, size_t cap,
                                  size_t *len);
int tk_record_decode_ssf_receiver(const uint8_t *buf, size_t len, tk_ssf_receiver_rec *rec);
int tk_record_encode_ssf_event(const tk_ssf_event_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_decode_ssf_event(const uint8_t *buf, size_t len, tk_ssf_event_rec *rec);
/* "session-revoked", "session-suspended", "session-resumed", "token-revoked",
 * "grant-revoked", "client-disabled", "overflow" (enum tk_ssf_kind); parse: 0 or
 * TK_E_BADINPUT. */
const char *tk_ssf_kind_name(uint8_t kind);
int tk_ssf_kind_parse(tk_slice s, uint8_t *out);

/* Names ↔ enums, for the CLI and JSON ("agent", "resource_server", "admin";
 * "pending", "approved", "disabled"; "active", "suspended", "terminated";
 * "access_token", "refresh_token"). Parsers return 0 or TK_E_BADINPUT. */
const char *tk_role_name(uint8_t role);
int tk_role_parse(const char *s, uint8_t *out);
const char *tk_client_status_name(uint8_t status);
int tk_client_status_parse(const char *s, uint8_t *out);
const char *tk_session_state_name(uint8_t state);
const char *tk_token_kind_name(uint8_t kind);
/* "admin", "device", "credential" (enum tk_hold). */
const char *tk_hold_name(uint8_t hold);
int tk_hold_parse(const char *s, uint8_t *out);
/* "backchannel_logout", "ssf", "webhook", "admin". */
const char *tk_event_source_name(uint8_t source);

/* The ops (mutations) are declared in op.h, which needs the record types
 * above; every user of record.h gets them too. */
#include "tokend/op.h"

#endif
