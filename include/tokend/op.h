/*
 * Ops: the mutations tokend makes, as plain tagged unions, their rules
 * (tk_op_validate) and their wire form (tk_op_encode / tk_op_decode in
 * src/store/op.c). record.h includes this header, so a file that includes
 * either sees both.
 */
#ifndef TOKEND_OP_H
#define TOKEND_OP_H

#include "tokend/common.h"
#include "tokend/limits.h"
#include "tokend/record.h"

#include <string.h>

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
    /* The authorization server's ops (apply_oauth.c). Each is decided in
     * the write txn from the state it finds there, and reports an outcome
     * (enum tk_op_outcome) the worker answers with. */
    TK_OP_PUT_NEW = 8,      /* a new client (registration) or pending authorization request */
    TK_OP_SIGN_IN = 9,      /* a tokend session + a browser session bound to it */
    TK_OP_CODE_ISSUE = 10,  /* consume a pending request: consent, grant, code (or deny) */
    TK_OP_CODE_REDEEM = 11, /* authorization code → tokens; a used code revokes its grant */
    TK_OP_REFRESH = 12,     /* rotate a refresh token (reuse window, family revocation) */
    TK_OP_EXCHANGE = 13,    /* RFC 8693: a delegated child of an access token */
};
#define TK_OP_TYPE_LAST TK_OP_EXCHANGE
/* The last op kind with a wire form (tk_op_encode): every kind has one. */
#define TK_OP_WIRE_LAST TK_OP_TYPE_LAST

/* What an AS op found in the write txn (tk_commit_done.outcome). */
enum tk_op_outcome {
    TK_OUT_NONE = 0,     /* not an AS op */
    TK_OUT_OK = 1,       /* applied */
    TK_OUT_INVALID = 2,  /* unknown, used, expired, bound elsewhere or inactive: nothing written */
    TK_OUT_REPLAYED = 3, /* a used code or a rotated refresh token outside the window: its
                            grant was revoked */
};

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
TK_OP_STR(tk_op_sub, TK_SUB_MAX, uint16_t)
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

/* The DBI a TK_OP_PUT_NEW writes. */
enum tk_op_db { TK_OP_DB_CLIENT = 1, TK_OP_DB_AUTHREQ = 2 };

/* Put an encoded record under a new key; an existing key is a no-op
 * (outcome INVALID), so replaying is safe. The record must decode as its
 * DBI's kind.
 *
 * Ownership: rec is a malloc block that whoever holds the op owns. The
 * committer frees it after the batch (tk_committer_submit takes ownership
 * of the rec of every PUT_NEW op it accepts; tk_commit_req_release frees
 * the recs of a request whose submit failed); a direct tk_store_apply
 * caller keeps it and frees it (tk_op_release). tk_op_decode gives a
 * decoded PUT_NEW a fresh malloc copy of the record bytes, owned by the op
 * under the same rule, so a decoded op can be submitted as it is. */
typedef struct tk_op_put_new {
    uint8_t db;   /* enum tk_op_db */
    tk_op_id key; /* client id / request id */
    uint16_t len; /* 1..TK_RECORD_MAX */
    uint8_t *rec; /* heap (malloc) */
} tk_op_put_new;

/* A user signed in: session sid (sub, active, expires) and the browser
 * session (cookie hash → sid, csrf key, exp); request, when set, is the
 * pending authorization request the browser is now bound to (if it is
 * unbound and unused). Existing keys are left as they are. */
typedef struct tk_op_sign_in {
    tk_op_id sid;
    tk_op_sub sub;
    int64_t session_exp;
    uint8_t browser[TK_HASH_LEN];
    uint8_t csrf_key[TK_HASH_LEN];
    int64_t browser_exp;
    tk_op_id request; /* optional */
    /* Sign-in upstream (login = oidc): the IdP that signed the user in and
     * its session id, both optional; a new session is bound to them exactly
     * like tokenctl session create --idp-iss --idp-sid (so IdP events find
     * it by (issuer, sid) and by (issuer, sub)). */
    tk_op_iss idp_iss;
    tk_op_id idp_sid;
} tk_op_sign_in;

enum tk_code_decision {
    TK_DECIDE_APPROVE = 1, /* record / extend the consent grant, issue a code */
    TK_DECIDE_GRANTED = 2, /* issue a code only if the consent grant covers the scope */
    TK_DECIDE_DENY = 3,    /* consume the request, nothing else */
};

/* Consume pending request `request` of the browser `browser`: it must be
 * unused, unexpired and bound to that browser, whose session must be
 * active; then per decision. A new consent grant takes the id `grant`. The
 * code (hash) expires at code_exp. */
typedef struct tk_op_code_issue {
    tk_op_id request;
    uint8_t browser[TK_HASH_LEN];
    uint8_t decision; /* enum tk_code_decision */
    uint8_t code[TK_HASH_LEN];
    int64_t code_exp;
    tk_op_id grant;
} tk_op_code_issue;

/* The three ops that issue tokens (CODE_REDEEM, REFRESH, EXCHANGE) name the
 * new access token's hash, drawn at random by the worker for that op alone;
 * finding it in the store means this very op was applied before, so it
 * changes nothing and reports OK again (idempotent, as a replicated log
 * needs: a redemption applied twice must not read as a replayed code). */

/* Redeem code: unused, unexpired, its grant and session active, its client
 * approved → mark used, put the access token (and the refresh token when
 * has_refresh) under the code's grant. Used → revoke the grant (REPLAYED). */
typedef struct tk_op_code_redeem {
    uint8_t code[TK_HASH_LEN];
    uint8_t access[TK_HASH_LEN];
    uint8_t refresh[TK_HASH_LEN];
    bool has_refresh;
    int64_t access_exp, refresh_exp;
    bool has_cnf; /* RFC 8705 §3: bind the access token to this certificate */
    uint8_t cnf[TK_HASH_LEN];
    /* DPoP: bind the access token (has_jkt) and the refresh token too
     * (bind_refresh: public clients, RFC 9449 §5) to jkt. */
    bool has_jkt, bind_refresh;
    uint8_t jkt[TK_HASH_LEN];
} tk_op_code_redeem;

/* Rotate refresh token old: current → rotated (successor = refresh) and a
 * new pair; rotated at most `window` seconds ago → a sibling pair; rotated
 * earlier → its grant revoked (REPLAYED). The new tokens keep the scope
 * tokens of old's scope whose bit is set in scope_mask (bit i = i-th scope
 * token; UINT64_MAX = all) and old's audience, grant, session and client;
 * the new refresh token never outlives old's session. */
typedef struct tk_op_refresh {
    uint8_t old[TK_HASH_LEN];
    uint8_t access[TK_HASH_LEN];
    uint8_t refresh[TK_HASH_LEN];
    int64_t access_exp, refresh_exp;
    uint32_t window;
    uint64_t scope_mask;
    bool has_cnf; /* as tk_op_code_redeem: the certificate of this request */
    uint8_t cnf[TK_HASH_LEN];
    bool has_jkt, bind_refresh; /* DPoP, as in tk_op_code_redeem */
    uint8_t jkt[TK_HASH_LEN];
} tk_op_refresh;

/* A delegated child of access token parent for client: parent's sub,
 * session, grant and audience, scope masked as in TK_OP_REFRESH, expiry
 * at most the parent's. */
typedef struct tk_op_exchange {
    uint8_t parent[TK_HASH_LEN];
    uint8_t child[TK_HASH_LEN];
    tk_op_id client;
    int64_t exp;
    uint64_t scope_mask;
    bool has_cnf; /* as tk_op_code_redeem */
    uint8_t cnf[TK_HASH_LEN];
    bool has_jkt; /* DPoP: the child is bound to jkt */
    uint8_t jkt[TK_HASH_LEN];
} tk_op_exchange;

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
        tk_op_put_new put_new;
        tk_op_sign_in sign_in;
        tk_op_code_issue code_issue;
        tk_op_code_redeem code_redeem;
        tk_op_refresh refresh;
        tk_op_exchange exchange;
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

/*
 * The wire form: one op as a msgpack map (the replication unit), written by
 * tk_op_encode and strictly read by tk_op_decode. Key 0 is the version, 1
 * the type, 6 at; then only the keys of the op's kind, each with one
 * meaning whatever the kind:
 *
 *  key  type        meaning                                   kinds
 *    2  int 1..3    session state / client status             SESSION_STATE CLIENT_STATUS IDP_EVENT
 *    3  bin 32      token hash / IdP match key                REVOKE_TOKEN IDP_EVENT REFRESH(old)
 *                                                             EXCHANGE(parent)
 *    4  str id      client, grant or session id; PUT_NEW key  REVOKE_GRANT SESSION_STATE CLIENT_*
 *                                                             AGENT_ACCESS IDP_EVENT(event id)
 *                                                             PUT_NEW SIGN_IN(sid) EXCHANGE(client)
 *    5  str         reason                                    SESSION_STATE IDP_EVENT
 *    7  int 1..3    event source                              IDP_EVENT
 *    8  bin 32      (issuer, sub) filter                      IDP_EVENT
 *    9  int time    replay record kept until                  IDP_EVENT
 *   10  str         IdP issuer                                IDP_EVENT SIGN_IN(idp_iss)
 *   11  int         allowed count                             AGENT_ACCESS
 *   12  int         denied count                              AGENT_ACCESS
 *   13  str         protected resource                        AGENT_ACCESS
 *   14  int 1..3    hold owner                                SESSION_STATE IDP_EVENT
 *   15  bin 32      new client secret hash                    CLIENT_SECRET
 *   16  int 1..2    DBI (enum tk_op_db)                       PUT_NEW
 *   17  bin 1..8192 the encoded record                        PUT_NEW
 *   18  str         subject                                   SIGN_IN
 *   19  bin 32      browser session (cookie hash)             SIGN_IN CODE_ISSUE
 *   20  bin 32      CSRF key                                  SIGN_IN
 *   21  int time    session expiry                            SIGN_IN
 *   22  int time    browser session expiry                    SIGN_IN
 *   23  str id      pending authorization request             SIGN_IN CODE_ISSUE
 *   24  str id      IdP session id                            SIGN_IN
 *   25  int 1..3    decision (enum tk_code_decision)          CODE_ISSUE
 *   26  bin 32      authorization code hash                   CODE_ISSUE CODE_REDEEM
 *   27  int time    code expiry                               CODE_ISSUE
 *   28  str id      consent grant id                          CODE_ISSUE
 *   29  bin 32      new access token hash                     CODE_REDEEM REFRESH EXCHANGE(child)
 *   30  bin 32      new refresh token hash                    CODE_REDEEM REFRESH
 *   31  int time    access token expiry                       CODE_REDEEM REFRESH EXCHANGE(exp)
 *   32  int time    refresh token expiry                      CODE_REDEEM REFRESH
 *   33  bin 32      certificate SHA-256 (cnf)                 CODE_REDEEM REFRESH EXCHANGE
 *   34  bin 32      DPoP key thumbprint (jkt)                 CODE_REDEEM REFRESH EXCHANGE
 *   35  int 1       bind the refresh token to jkt             CODE_REDEEM REFRESH
 *   36  int u32     refresh reuse window (seconds)            REFRESH
 *   37  uint 64     scope mask                                REFRESH EXCHANGE
 *
 * Optional members travel only when set (a string non-empty, an int
 * non-zero, a hash when its has_ flag is set; booleans as key present = true),
 * and members apply never reads are left out: a denial's code, expiry and
 * grant; refresh_exp without has_refresh; bind_refresh unless it binds a
 * refresh token to a key. So there is exactly one encoding of each op, and
 * decode(encode(op)) is op with those ignored members zeroed. Keys 1..15
 * are unchanged since the first wire form: an op stored or replicated
 * before the AS ops got theirs still decodes to the same op.
 *
 * tk_op_encode: 0, TK_E_INVALID (tk_op_validate fails, or a PUT_NEW record
 * does not decode as its DBI's kind), TK_E_TOOBIG (cap too small;
 * TK_OP_WIRE_MAX always suffices).
 *
 * tk_op_decode: 0, TK_E_CORRUPT (anything unexpected: a wrong type, an
 * out-of-range value, truncation, trailing bytes, a key of another kind, a
 * missing key, a key apply would ignore, an op that fails tk_op_validate, a
 * PUT_NEW record that does not decode as its DBI's kind) or -ENOMEM. *op is
 * zeroed first, so the bytes of members other than the op's kind are zero;
 * on failure it stays zeroed and owns nothing. On success a PUT_NEW owns a
 * malloc copy of its record (see tk_op_put_new): release it with
 * tk_op_release or hand the op to the committer. Never reads outside
 * buf[0..len); keeps no pointer into buf. Thread-safe (no shared state).
 */
int tk_op_encode(const tk_op *op, uint8_t *buf, size_t cap, size_t *len);
int tk_op_decode(const uint8_t *buf, size_t len, tk_op *op);

/* Free what op owns (a PUT_NEW's rec) and clear the pointer; any other
 * kind, or a zeroed op, owns nothing. */
void tk_op_release(tk_op *op);

#endif
