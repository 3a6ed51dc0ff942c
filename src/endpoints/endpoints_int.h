/*
 * Private to src/endpoints: the per-worker context, the per-request state
 * the handlers share, the metrics counters and the helpers each file
 * exports to the others. Everything a worker touches while serving lives in
 * its own cache-line-aligned context, allocated once by tk_app_create.
 */
#ifndef TOKEND_ENDPOINTS_INT_H
#define TOKEND_ENDPOINTS_INT_H

#include "tokend/endpoints.h"
#include "tokend/form.h"
#include "tokend/http.h"
#include "tokend/resources.h"

/* ---- Metrics ----------------------------------------------------------------- */

enum ep_endpoint {
    EP_INTROSPECT = 0,
    EP_REVOKE,
    EP_METADATA,
    EP_HEALTHZ,
    EP_METRICS,
    EP_FORWARD_AUTH,
    EP_RESOURCE_METADATA,
    EP_BACKCHANNEL, /* POST /backchannel-logout */
    EP_SSF,         /* POST /ssf/events */
    EP_WEBHOOK,     /* POST /webhooks/session-terminated */
    EP_OTHER,
    EP_ENDPOINTS,
};

/* Statuses counted individually; anything else is "other". */
#define EP_STATUSES 12
/* Duration histogram buckets (upper bounds 50 µs … 1 s) plus +Inf. */
#define EP_DUR_BUCKETS 14

/* Forward-auth outcomes (tokend_forward_auth_total{result}). */
enum ep_fa_result {
    EP_FA_ALLOWED = 0,
    EP_FA_NO_TOKEN,
    EP_FA_INVALID_TOKEN,
    EP_FA_WRONG_AUDIENCE,
    EP_FA_INSUFFICIENT_SCOPE,
    EP_FA_UNKNOWN_RESOURCE,
    EP_FA_BAD_REQUEST,
    EP_FA_UNAVAILABLE,
    EP_FA_RESULTS,
};

typedef struct ep_metrics {
    uint64_t requests[EP_ENDPOINTS][EP_STATUSES];
    uint64_t introspect_active, introspect_inactive;
    uint64_t revoke_revoked, revoke_noop, revoke_forbidden, revoke_unavailable;
    uint64_t dur[EP_DUR_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    uint64_t dur_count, dur_sum_ns;
    uint64_t forward_auth[EP_FA_RESULTS];
    /* Agent access audit: decisions not recorded (table full), fold requests
     * queued, fold requests whose commit failed, folds put off (queue full). */
    uint64_t audit_overflow, audit_submitted, audit_lost, audit_deferred;
} ep_metrics;

/* Written only by the owning worker: a relaxed load and store, no locked
 * instruction; readers (/metrics on any worker) use relaxed loads. */
static inline void ep_add(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline uint64_t ep_read(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* ---- ratelimit.c: failed client authentications ---------------------------------- */

typedef struct ep_rl_entry {
    uint64_t key;      /* seeded hash of an address or a client id; 0 = empty */
    uint32_t level_mt; /* bucket level in milli-tokens at stamp_ms */
    uint32_t stamp_ms; /* monotonic milliseconds, wrapping */
} ep_rl_entry;

typedef struct ep_ratelimit {
    uint64_t seed;
    uint32_t full_mt;    /* a full bucket: burst x 1000 milli-tokens; 0 = no limit */
    int64_t quiet_s;     /* seconds after which every bucket is full again */
    int64_t last_fail_s; /* Unix seconds of the latest failure: the fast path */
    ep_rl_entry e[TK_RL_SLOTS];
} ep_ratelimit;

/* burst: failures before 429 (0 = no limit), at most TK_RL_BURST_MAX. */
void ep_rl_init(ep_ratelimit *rl, uint64_t seed, unsigned burst);
/* 0 when the request may authenticate; otherwise the seconds to wait
 * (Retry-After). now_ms_fn is called only when a failure is recent. */
unsigned ep_rl_check(ep_ratelimit *rl, const uint8_t peer[16], tk_slice client_id, int64_t now_s,
                     uint64_t (*now_ms_fn)(void));
/* Record one failed authentication from peer (and client_id, if any). */
void ep_rl_fail(ep_ratelimit *rl, const uint8_t peer[16], tk_slice client_id, int64_t now_s,
                uint64_t (*now_ms_fn)(void));
/* ---- Agent access audit (audit.c) ------------------------------------------------ */

/* Distinct (agent, resource) pairs one worker counts between two folds (a
 * fold runs about once a second); more are counted as overflow. */
#define EP_AUDIT_ENTRIES 256
/* Open-addressing index over the entries: a power of two, at most half full. */
#define EP_AUDIT_SLOTS 512
_Static_assert((EP_AUDIT_SLOTS & (EP_AUDIT_SLOTS - 1)) == 0, "slots: a power of two");
_Static_assert(EP_AUDIT_ENTRIES * 2 <= EP_AUDIT_SLOTS, "index at most half full");
_Static_assert(EP_AUDIT_ENTRIES < UINT16_MAX, "entry indices fit the index");

typedef struct ep_audit_entry {
    const tk_resource *res; /* tables are kept until exit: the pointer stays valid */
    uint32_t hash;
    uint32_t allowed, denied;
    uint8_t client_len;
    int64_t last_seen;
    char client[TK_ID_MAX];
} ep_audit_entry;

typedef struct ep_audit {
    unsigned n;
    int64_t folded_at;             /* the second of the last fold */
    uint16_t slot[EP_AUDIT_SLOTS]; /* 0 = empty, else entry index + 1 */
    ep_audit_entry e[EP_AUDIT_ENTRIES];
} ep_audit;

/* The cookie of a fold request: no connection waits for it. */
#define EP_AUDIT_COOKIE UINT64_MAX

/* ---- Contexts ------------------------------------------------------------------ */

/* Deferred completions moved from the committer per drain call. */
#define EP_DRAIN_CHUNK 64
/* The /metrics page: what one fresh connection's out buffer holds. */
#define EP_METRICS_MAX (TK_CONN_OUT_MAX - 512)
/* Room for a token_type_hint-free form: token, client_id, client_secret. */
#define EP_SECRET_MAX TK_TOKEN_IN_MAX

/* Per-connection caller authentication (auth_cache.c): direct-mapped by the
 * connection slot; headers or ids longer than these are never cached. */
#define EP_AUTH_CACHE_SLOTS 1024
#define EP_AUTH_HDR_MAX     160
#define EP_AUTH_ID_MAX      64

typedef struct ep_auth_entry {
    uint64_t cookie; /* the connection: slot | generation << 32 */
    uint8_t secret_hash[TK_HASH_LEN];
    bool used;
    uint8_t id_len;
    uint16_t hdr_len;
    char hdr[EP_AUTH_HDR_MAX]; /* the exact Authorization value verified */
    char id[EP_AUTH_ID_MAX];
} ep_auth_entry;

_Static_assert(EP_AUTH_ID_MAX <= UINT8_MAX && EP_AUTH_HDR_MAX <= UINT16_MAX, "lengths fit");
_Static_assert(EP_AUTH_ID_MAX <= TK_ID_MAX, "a cached id fits the worker's buffer");

typedef struct ep_worker {
    tk_app *app;
    unsigned id;
    tk_txn *txn;
    bool txn_ok; /* the read txn was renewed for this batch */
    int64_t now; /* Unix seconds, taken once per batch */
    ep_metrics m;
    char token[TK_TOKEN_IN_MAX + 1];
    char client_id[TK_ID_MAX + 1];
    char secret[EP_SECRET_MAX + 1];
    tk_commit_done done[EP_DRAIN_CHUNK];
    struct tk_idp_trust *idp; /* IdP trust snapshot (events.c), renewed per batch */
    uint64_t idp_gen;
    char scratch[TK_RESPONSE_MAX]; /* response bodies */
    ep_ratelimit rl;               /* failed authentications (ratelimit.c) */
    int64_t rl_logged_s;           /* last auth_rate_limited log line */
    const tk_resources *res;       /* the table this batch uses (may be NULL) */
    char path[TK_HTTP_HEAD_MAX];   /* forward-auth: the normalised original path */
    ep_audit audit;
    char metrics[EP_METRICS_MAX]; /* the /metrics page */
    ep_auth_entry auth_cache[EP_AUTH_CACHE_SLOTS];
} __attribute__((aligned(64))) ep_worker;

/* A resources table replaced by a reload: kept until exit, because a worker
 * may still be using it and audit entries point into it. */
typedef struct ep_retired {
    struct ep_retired *next;
    tk_resources *res;
} ep_retired;

struct tk_app {
    tk_app_cfg cfg;
    tk_core_cfg core;
    unsigned nworkers;
    ep_worker *w;      /* nworkers contexts */
    tk_resources *res; /* current table; atomic (release on reload, acquire per batch) */
    ep_retired *retired;
};

/* One request being handled. */
typedef struct ep_req {
    ep_worker *w;
    const tk_http_request *http;
    tk_outbuf *out;
    uint64_t cookie;
    uint64_t start_ns;
    int endpoint;  /* enum ep_endpoint */
    int status;    /* what was written, for metrics */
    bool head;     /* HEAD: send the GET head without its body */
    bool deferred; /* answered later by respond() */
    uint32_t tag;
} ep_req;

/* ---- app.c: responses ------------------------------------------------------------ */

/* Append a response (and remember its status). A response that does not fit
 * becomes a 500 without a body. */
void ep_reply(ep_req *r, int status, const char *ctype, const char *extra, const char *body,
              size_t len);
/* {"error":"<code>"} with the given status and extra headers. */
void ep_reply_error(ep_req *r, int status, const char *code, const char *extra);
/* A finished tk_json document (500 when it overflowed). */
void ep_reply_json(ep_req *r, int status, const tk_json *j);
/* 503 temporarily_unavailable + Retry-After, for store and queue failures. */
void ep_reply_unavailable(ep_req *r);
/* The worker's read txn, renewed when the batch's renewal failed; NULL
 * (after a log line) when the store cannot give one. */
tk_txn *ep_txn(ep_worker *w);

/* ---- auth.c: caller authentication ----------------------------------------------- */

typedef struct ep_form {
    bool token_present;
    bool token_oversize; /* longer than TK_TOKEN_IN_MAX: cannot be ours */
    size_t token_len;
    bool id_present, secret_present;
    bool creds_oversize; /* a credential field did not fit: auth fails */
    size_t id_len, secret_len;
} ep_form;

/* Check the content type and decode the form (token, client_id,
 * client_secret into the worker's buffers). Returns 0, or -1 after writing
 * 400 invalid_request. */
int ep_parse_form(ep_req *r, ep_form *f);

/* Authenticate the caller from HTTP Basic or the form's client_id and
 * client_secret. Returns 0 with *client (slices into the txn) and *client_id
 * (the worker's buffer), or -1 after writing 400 / 401 / 503. */
int ep_authenticate(ep_req *r, const ep_form *f, tk_txn *txn, tk_client_rec *client,
                    tk_slice *client_id);

/* What /introspect and /revoke both start with: decode the form, take the
 * worker's read txn, authenticate the caller. Returns 0 with every output
 * set; -1 when the request was already answered (bad form, failed auth);
 * EP_NO_STORE when there is no read txn: not answered, so the caller can
 * count it before answering 503. */
#define EP_NO_STORE (-2)
int ep_begin_client_call(ep_req *r, ep_form *f, tk_txn **txn, tk_client_rec *caller,
                         tk_slice *caller_id);

/* auth_cache.c: true (with *client and *client_id as ep_authenticate gives
 * them) when this connection's last successful Basic authentication used the
 * exact same header and the client is still approved with the same secret. */
bool ep_auth_cache_get(ep_req *r, const ep_form *f, tk_txn *txn, tk_client_rec *client,
                       tk_slice *client_id);
/* Remember a successful authentication (only Basic ones are kept). */
void ep_auth_cache_put(ep_req *r, const tk_client_rec *client, tk_slice client_id);
/* Drop this connection's entry (after a failed authentication). */
void ep_auth_cache_forget(ep_req *r);
/* Cleanse every entry (worker stop). */
void ep_auth_cache_clear(ep_worker *w);

/* Answer 401 invalid_client with the Basic challenge. */
void ep_reply_invalid_client(ep_req *r);

/* Copy an untrusted id for a log line: at most 64 bytes, anything outside
 * printable ASCII (and spaces, quotes, '=') replaced by '?'. */
void ep_log_id(tk_slice id, char out[65]);

/* ---- handlers --------------------------------------------------------------------- */

void ep_introspect(ep_req *r);
void ep_revoke(ep_req *r);
void ep_revoke_respond(ep_req *r, const tk_server_done *done);
void ep_metadata(ep_req *r);
void ep_healthz(ep_req *r);
void ep_metrics_serve(ep_req *r);
void ep_forward_auth(ep_req *r);
void ep_resource_metadata(ep_req *r);

/* ---- audit.c --------------------------------------------------------------------------- */

/* Count one forward-auth decision about an agent at a resource. */
void ep_audit_record(ep_worker *w, tk_slice client, const tk_resource *res, bool allowed);
/* Hand the counts gathered so far to the committer (once a second from
 * batch_begin; force: at worker exit). */
void ep_audit_fold(ep_worker *w, bool force);
/* A fold request's completion came back. */
void ep_audit_done(ep_worker *w, int64_t result);

/* ---- events.c, bcl.c, ssf.c, webhook.c: IdP events -------------------------------- */

void ep_backchannel_logout(ep_req *r);
void ep_ssf_events(ep_req *r);
void ep_webhook(ep_req *r);
/* The answer of a deferred event, once its op is durable (or failed). */
void ep_event_respond(ep_req *r, const tk_server_done *done);
/* Take the current IdP trust snapshot when it changed (batch start); drop it. */
void ep_events_batch_begin(ep_worker *w);
void ep_events_fini(ep_worker *w);

/* ---- metrics.c ----------------------------------------------------------------------- */

/* Count one finished request: endpoint, status and its duration. */
void ep_metrics_request(ep_worker *w, int endpoint, int status, uint64_t dur_ns);

#endif
