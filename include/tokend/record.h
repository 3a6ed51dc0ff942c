/*
 * The records tokend keeps, as plain structs, and their strict codec.
 *
 * On disk every record is a msgpack map with small integer keys; key 0 is the
 * record version. Encoding uses msgpack-c's packer; decoding is our own strict
 * reader (types, sizes and ranges checked, unknown keys skipped only when the
 * version is newer, nothing allocated). Decoded slices point into the encoded
 * bytes: when those live in the LMDB map, they die with the read transaction,
 * so use or copy them before it is reset.
 */
#ifndef TOKEND_RECORD_H
#define TOKEND_RECORD_H

#include "tokend/common.h"
#include "tokend/limits.h"

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
    int64_t revoked_at;    /* 0 = not revoked */
} tk_token_rec;

enum tk_session_state {
    TK_SESSION_ACTIVE = 1,
    TK_SESSION_SUSPENDED = 2,  /* reversible (e.g. device not compliant) */
    TK_SESSION_TERMINATED = 3, /* final */
};

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
} tk_session_rec;

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
} tk_client_rec;

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
    int64_t changed;   /* sessions whose state changed */
} tk_audit_rec;

#define TK_AUDIT_SIDS_BYTES (TK_AUDIT_SIDS_MAX * (TK_ID_MAX + 1))

int tk_record_encode_audit(const tk_audit_rec *rec, uint8_t *buf, size_t cap, size_t *len);
int tk_record_decode_audit(const uint8_t *buf, size_t len, tk_audit_rec *rec);

/* Names ↔ enums, for the CLI and JSON ("agent", "resource_server", "admin";
 * "pending", "approved", "disabled"; "active", "suspended", "terminated";
 * "access_token", "refresh_token"). Parsers return 0 or TK_E_BADINPUT. */
const char *tk_role_name(uint8_t role);
int tk_role_parse(const char *s, uint8_t *out);
const char *tk_client_status_name(uint8_t status);
int tk_client_status_parse(const char *s, uint8_t *out);
const char *tk_session_state_name(uint8_t state);
const char *tk_token_kind_name(uint8_t kind);
/* "backchannel_logout", "ssf", "webhook", "admin". */
const char *tk_event_source_name(uint8_t source);

/*
 * Mutations, the unit the committer applies and (later) replicates. Each op is
 * idempotent: applying it twice leaves the same state, so replaying a log is
 * safe (AGENT_ACCESS, an audit counter, is the exception: see below). Ops
 * only ever move state toward "less access", except resuming a suspended
 * session; AGENT_ACCESS does not touch access at all.
 */
enum tk_op_type {
    TK_OP_REVOKE_TOKEN = 1,  /* hash: set revoked_at if not set */
    TK_OP_REVOKE_GRANT = 2,  /* id = grant id: state revoked */
    TK_OP_SESSION_STATE = 3, /* id = sid, state: terminate / suspend / resume */
    TK_OP_CLIENT_STATUS = 4, /* id = client id, state: approve / disable */
    TK_OP_AGENT_ACCESS = 5,  /* id = agent client id, reason = resource: add counts */
    TK_OP_IDP_EVENT = 6,     /* an IdP event: see below */
};

typedef struct tk_op {
    uint8_t type; /* enum tk_op_type */
    uint8_t
        state; /* TK_OP_SESSION_STATE: tk_session_state; TK_OP_CLIENT_STATUS: tk_client_status */
    uint8_t hash[TK_HASH_LEN];
    uint16_t id_len;
    char id[TK_ID_MAX];
    uint8_t reason_len;
    char reason[TK_REASON_MAX];
    int64_t at;               /* when the op was decided (Unix seconds) */
    uint32_t allowed, denied; /* TK_OP_AGENT_ACCESS: counts to add */
    /* TK_OP_IDP_EVENT only (zero for every other op): */
    uint8_t source;  /* enum tk_event_source (not ADMIN) */
    bool has_filter; /* also require the session's (issuer, sub) key */
    uint8_t filter[TK_HASH_LEN];
    int64_t until; /* keep the replay record until then (Unix seconds) */
    uint16_t iss_len;
    char iss[TK_IDP_ISS_MAX];
} tk_op;

/*
 * Which fields each op uses (the others must be zero / empty, except hash,
 * which is ignored by every op but REVOKE_TOKEN):
 *   REVOKE_TOKEN  hash;                     state 0, id_len 0
 *   REVOKE_GRANT  id;                       state 0
 *   SESSION_STATE id, state (active = resume, suspended, terminated)
 *   CLIENT_STATUS id, state (approved or disabled; never back to pending)
 *   AGENT_ACCESS  id (the agent), reason (the resource identifier, at most
 *                 TK_REASON_MAX bytes), allowed + denied > 0; state 0.
 *                 at = last seen. The one op that is not idempotent: it adds
 *                 counts, so a replayed log counts twice (at-least-once
 *                 audit; access decisions never depend on these records).
 *   IDP_EVENT     hash = session match key (tk_store_idp_key), state (the
 *                 sessions' new state), id = event id (jti / webhook-id),
 *                 iss, source, until >= at, optional filter; reason = the
 *                 event type. Applied as one unit: if the replay key
 *                 (tk_store_replay_key(source, iss, id)) is known, nothing
 *                 happens (changed false); otherwise the replay key is kept
 *                 until `until`, every session under the match key (at most
 *                 TK_IDP_MATCH_MAX; with a filter, only those whose (issuer,
 *                 sub) key equals it) moves to state, and one audit record
 *                 is appended (changed true).
 * Every op: reason_len <= TK_REASON_MAX (optional), at in [1, TK_TIME_MAX].
 * Returns 0 or TK_E_INVALID. Pure; used by the encoder and tk_store_apply.
 */
int tk_op_validate(const tk_op *op);

/* Encode / strictly decode one op as msgpack (the replication unit).
 * encode: 0, TK_E_INVALID (tk_op_validate), TK_E_TOOBIG. decode: 0 or
 * TK_E_CORRUPT (including ops that fail tk_op_validate); unused fields of
 * *op are zero. */
int tk_op_encode(const tk_op *op, uint8_t *buf, size_t cap, size_t *len);
int tk_op_decode(const uint8_t *buf, size_t len, tk_op *op);

#endif
