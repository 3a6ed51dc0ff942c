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
    int64_t revoked_at;    /* 0 = not revoked */
    uint32_t client_gen;   /* the generation of client_id when this token was
                              issued (tk_client_rec.generation); the token is
                              live only while the client still has it. Key 13,
                              optional: records written before it decode as 0. */
} tk_token_rec;

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
    uint32_t generation; /* bumped each time the client becomes disabled: every
                            token stamped with an older generation is dead for
                            good (disabling is final). Key 8, optional (0). */
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
    int64_t changed;   /* sessions whose state or holds changed */
    uint8_t hold;      /* suspend / resume: the hold set or lifted (enum
                          tk_hold); 0 for terminations. Key 10, optional. */
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
/* "admin", "device", "credential" (enum tk_hold). */
const char *tk_hold_name(uint8_t hold);
int tk_hold_parse(const char *s, uint8_t *out);
/* "backchannel_logout", "ssf", "webhook", "admin". */
const char *tk_event_source_name(uint8_t source);

/*
 * Mutations, the unit the committer applies and (later) replicates. Each op is
 * idempotent: applying it twice leaves the same state, so replaying a log is
 * safe (AGENT_ACCESS, an audit counter, is the exception: see below). Ops
 * only ever move state toward "less access", except lifting a hold (resume)
 * and approving a client (which brings back no token: disabling is final);
 * AGENT_ACCESS does not touch access at all.
 *
 * tk_op is a tagged union: a common header (type, at) and one member struct
 * per op kind, named after it. Only the member named by type is read; no
 * field changes meaning with the type.
 */
enum tk_op_type {
    TK_OP_REVOKE_TOKEN = 1,  /* set the token's revoked_at if not set */
    TK_OP_REVOKE_GRANT = 2,  /* grant state revoked */
    TK_OP_SESSION_STATE = 3, /* terminate, or set / lift one owner's hold */
    TK_OP_CLIENT_STATUS = 4, /* approve / disable (disable bumps the generation) */
    TK_OP_AGENT_ACCESS = 5,  /* add forward-auth counts for (agent, resource) */
    TK_OP_IDP_EVENT = 6,     /* an IdP event: see below */
    TK_OP_CLIENT_SECRET = 7, /* replace the client's secret hash */
};
#define TK_OP_TYPE_LAST TK_OP_CLIENT_SECRET

/* Fixed-capacity strings inside an op (ops are copied through the committer
 * queue by value, so they own their bytes). set: 0 or TK_E_INVALID when s
 * does not fit; get: a slice into the op. */
#define TK_OP_STR(name, cap, lent)                                                                 \
    typedef struct name {                                                                          \
        lent len;                                                                                  \
        char b[cap];                                                                               \
    } name;                                                                                        \
    static inline tk_slice name##_get(const name *x)                                               \
    {                                                                                              \
        return (tk_slice){x->b, x->len};                                                           \
    }                                                                                              \
    static inline int name##_set(name *x, tk_slice s)                                              \
    {                                                                                              \
        if (s.len > (cap) || (s.len > 0 && s.p == NULL)) {                                         \
            return TK_E_INVALID;                                                                   \
        }                                                                                          \
        if (s.len > 0) {                                                                           \
            memcpy(x->b, s.p, s.len);                                                              \
        }                                                                                          \
        x->len = (lent)s.len;                                                                      \
        return 0;                                                                                  \
    }

TK_OP_STR(tk_op_id, TK_ID_MAX, uint16_t)
TK_OP_STR(tk_op_reason, TK_REASON_MAX, uint8_t)
TK_OP_STR(tk_op_iss, TK_IDP_ISS_MAX, uint16_t)
TK_OP_STR(tk_op_resource, TK_ACCESS_RESOURCE_MAX, uint16_t)
_Static_assert(TK_REASON_MAX <= UINT8_MAX && TK_ID_MAX <= UINT16_MAX, "tk_op length fields");

typedef struct tk_op_revoke_token {
    uint8_t hash[TK_HASH_LEN]; /* SHA-256 of the token */
} tk_op_revoke_token;

typedef struct tk_op_revoke_grant {
    tk_op_id grant; /* required */
} tk_op_revoke_grant;

/* state TERMINATED: final (hold 0). SUSPENDED: set `hold` (required).
 * ACTIVE: lift `hold` (required); the session becomes active when no hold
 * is left. reason: optional, kept on the session when it changes. */
typedef struct tk_op_session {
    tk_op_id sid;  /* required */
    uint8_t state; /* enum tk_session_state */
    uint8_t hold;  /* enum tk_hold; 0 for TERMINATED */
    tk_op_reason reason;
} tk_op_session;

typedef struct tk_op_client_status {
    tk_op_id client; /* required */
    uint8_t status;  /* TK_CLIENT_APPROVED or TK_CLIENT_DISABLED (never back to pending) */
} tk_op_client_status;

typedef struct tk_op_client_secret {
    tk_op_id client;                  /* required */
    uint8_t secret_hash[TK_HASH_LEN]; /* SHA-256 of the new secret */
} tk_op_client_secret;

/* at = last seen. The one op that is not idempotent: it adds counts, so a
 * replayed log counts twice (at-least-once audit; access decisions never
 * depend on these records). allowed + denied > 0. */
typedef struct tk_op_agent_access {
    tk_op_id client;          /* required: the agent */
    tk_op_resource resource;  /* required: the protected resource identifier */
    uint32_t allowed, denied; /* counts to add */
} tk_op_agent_access;

/* One IdP event, applied as one unit: if the replay key
 * (tk_store_replay_key(source, iss, event_id)) is known, nothing happens
 * (changed false); otherwise the replay key is kept until `until`, every
 * session under the match key (at most TK_IDP_MATCH_MAX; with a filter, only
 * those whose (issuer, sub) key equals it) gets the session op {state, hold,
 * reason}, and one audit record is appended (changed true). */
typedef struct tk_op_idp_event {
    uint8_t match[TK_HASH_LEN]; /* session match key (tk_store_idp_key) */
    uint8_t state;              /* the sessions' new state, as tk_op_session */
    uint8_t hold;               /* as tk_op_session: required unless TERMINATED */
    uint8_t source;             /* enum tk_event_source (not ADMIN) */
    bool has_filter;            /* also require the session's (issuer, sub) key */
    uint8_t filter[TK_HASH_LEN];
    tk_op_id event_id;   /* required: jti / webhook-id */
    tk_op_iss iss;       /* required */
    tk_op_reason reason; /* the event type; optional */
    int64_t until;       /* keep the replay record until then, >= at */
} tk_op_idp_event;

typedef struct tk_op {
    uint8_t type; /* enum tk_op_type: names the member below */
    int64_t at;   /* when the op was decided (Unix seconds), in [1, TK_TIME_MAX] */
    union {
        tk_op_revoke_token revoke_token;
        tk_op_revoke_grant revoke_grant;
        tk_op_session session;
        tk_op_client_status client_status;
        tk_op_client_secret client_secret;
        tk_op_agent_access agent_access;
        tk_op_idp_event idp_event;
    };
} tk_op;

/* A zeroed op of this type decided at `at` (fill the member next). */
static inline tk_op tk_op_make(uint8_t type, int64_t at)
{
    tk_op op;
    memset(&op, 0, sizeof op);
    op.type = type;
    op.at = at;
    return op;
}

/*
 * Check an op against its kind's rules (above): known type, at in
 * [1, TK_TIME_MAX], required members set, enums in range, lengths within
 * their capacity. Returns 0 or TK_E_INVALID. Pure; used by the encoder, the
 * decoder and tk_store_apply.
 */
int tk_op_validate(const tk_op *op);

/* Encode / strictly decode one op as msgpack (the replication unit): a map
 * with key 0 the version, 1 type, 6 at, then only the keys of the op's kind
 * (3 token hash / match key, 2 state or status, 4 id, 5 reason, 7 source,
 * 8 filter, 9 until, 10 iss, 11 allowed, 12 denied, 13 resource, 14 hold,
 * 15 secret hash); a key of another kind is refused. encode: 0, TK_E_INVALID
 * (tk_op_validate), TK_E_TOOBIG. decode: 0 or TK_E_CORRUPT (including ops
 * that fail tk_op_validate); *op is zeroed first, so the bytes of members
 * other than the op's kind are zero. */
int tk_op_encode(const tk_op *op, uint8_t *buf, size_t cap, size_t *len);
int tk_op_decode(const uint8_t *buf, size_t len, tk_op *op);

#endif
