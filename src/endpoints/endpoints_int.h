/*
 * Private to src/endpoints: the per-worker context, the per-request state
 * the handlers share, the metrics counters and the helpers each file
 * exports to the others. Everything a worker touches while serving lives in
 * its own cache-line-aligned context, allocated once by tk_app_create.
 */
#ifndef TOKEND_ENDPOINTS_INT_H
#define TOKEND_ENDPOINTS_INT_H

#include <pthread.h>

#include "tokend/clock.h"
#include "tokend/cluster.h"
#include "tokend/endpoints.h"
#include "tokend/form.h"
#include "tokend/http.h"
#include "tokend/http_uri.h"
#include "tokend/resources.h"

typedef struct ep_req ep_req;

/* ---- routes.c: the endpoint table ---------------------------------------------- */

/* The methods a row answers: bits of enum tk_http_method. GET includes HEAD
 * (answered as GET without the body); any other method gets 405 + Allow. */
#define EP_METHOD(m) (1u << (m))
#define EP_GET       (EP_METHOD(TK_HTTP_GET) | EP_METHOD(TK_HTTP_HEAD))
#define EP_POST      EP_METHOD(TK_HTTP_POST)
#define EP_ANY       0xffffu

/*
 * One endpoint: everything the dispatcher, the metrics and the logs know of
 * it. Adding an endpoint is one row in routes.c plus its handler file; the
 * label reaches /metrics and the log lines from the row, and a deferred
 * request finds its completion through the row index in its tag.
 */
typedef struct ep_route {
    /* Exact path; with prefix, the path and everything below "path/". NULL
     * only in the last row, which answers every path no other row takes. An
     * exact row wins over a prefix row covering the same path. */
    const char *path;
    bool prefix;
    bool body;         /* the handler reads the request body */
    uint16_t methods;  /* EP_GET, EP_POST, EP_ANY or other EP_METHOD bits */
    const char *label; /* endpoint="<label>" in /metrics, endpoint=<label> in logs */
    /* The listener that serves the row (enum tk_app_listener: 0 = the main
     * one); on any other listener the path is unknown (the last row). */
    uint8_t listener;
    void (*handle)(ep_req *r);
    /* Writes the answer of a deferred request once its commit completed
     * (after handle set r->deferred); NULL for rows that never defer. */
    void (*complete)(ep_req *r, const tk_server_done *done);
} ep_route;

/* The table (routes.c) and its length, at most TK_ROUTES_MAX rows. */
extern const ep_route ep_routes[];
extern const unsigned ep_nroutes;

/* The 32-bit tag the server keeps for a deferred request: the row index in
 * the top EP_TAG_ROW_BITS, the start time in microseconds below (wraps after
 * 2^27 us, about 134 s, far beyond any commit). */
#define EP_TAG_ROW_BITS  5
#define EP_TAG_TIME_BITS (32 - EP_TAG_ROW_BITS)
#define EP_TAG_TIME_MASK ((1u << EP_TAG_TIME_BITS) - 1)
_Static_assert(TK_ROUTES_MAX <= (1u << EP_TAG_ROW_BITS), "every row index fits the tag");

static inline uint32_t ep_tag_make(unsigned row, uint64_t start_ns)
{
    return (uint32_t)(row << EP_TAG_TIME_BITS) | (uint32_t)((start_ns / 1000) & EP_TAG_TIME_MASK);
}
static inline unsigned ep_tag_row(uint32_t tag)
{
    return tag >> EP_TAG_TIME_BITS;
}
static inline uint64_t ep_tag_elapsed_ns(uint32_t tag, uint64_t now_ns)
{
    uint32_t now_us = (uint32_t)((now_ns / 1000) & EP_TAG_TIME_MASK);
    return (uint64_t)((now_us - (tag & EP_TAG_TIME_MASK)) & EP_TAG_TIME_MASK) * 1000;
}

/* ---- Metrics ----------------------------------------------------------------- */

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
    EP_FA_INVALID_DPOP_PROOF, /* DPoP: a missing, bad, replayed or foreign-key proof */
    EP_FA_RESULTS,
};

typedef struct ep_metrics {
    uint64_t requests[TK_ROUTES_MAX][EP_STATUSES]; /* per table row */
    uint64_t introspect_active, introspect_inactive;
    uint64_t revoke_revoked, revoke_noop, revoke_forbidden, revoke_unavailable;
    uint64_t dur[EP_DUR_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    uint64_t dur_count, dur_sum_ns;
    uint64_t forward_auth[EP_FA_RESULTS];
    /* Agent access audit: decisions not recorded (table full), fold requests
     * queued, fold requests whose commit failed, folds put off (queue full). */
    uint64_t audit_overflow, audit_submitted, audit_lost, audit_deferred;
    /* Cluster mode: answers refused (503) because the state was stale. */
    uint64_t cluster_stale_introspect, cluster_stale_forward_auth;
    /* The batch hint (hint.c): tokens handed to the walker, and those it
     * found in their leaf page. */
    uint64_t prefetch_hinted, prefetch_found;
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
    uint32_t refill_ms;  /* milliseconds for one token to come back */
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

/* The same buckets as an admission limit per source address (/register,
 * /authorize): burst requests at once, burst per minute after (one token
 * back every 60 s / burst); 0 = no limit. Not thread-safe: the caller holds
 * its lock. */
void ep_rl_init_per_minute(ep_ratelimit *rl, uint64_t seed, unsigned burst);
/* Take one token from peer's bucket: 0 when taken, otherwise the seconds
 * until one is back (Retry-After; nothing taken). */
unsigned ep_rl_take(ep_ratelimit *rl, const uint8_t peer[16], uint64_t now_ms);
/* Whether /authorize may store one more pending request from peer: 0 yes
 * (counted), > 0 the per-address limit (authorize-burst) says wait that many
 * seconds (429), -1 the pending requests of the last authorize-ttl reached
 * authorize-pending-max (503; a log line at most once a second). */
int ep_authz_admit(tk_app *app, const uint8_t peer[16], int64_t now_s, uint64_t now_ms);
/* ep_authz_admit for a request about to store one: false when refused,
 * answered with an error page (429 with Retry-After, or 503). */
bool ep_authz_admitted(ep_req *r);
/* The bucket key of a source address: an IPv4 address (IPv4-mapped IPv6,
 * ::ffff:a.b.c.d) by itself, an IPv6 address by its /64 (the block one host
 * or one customer usually holds: 2^64 addresses must not be 2^64 buckets). */
uint64_t ep_rl_addr_key(uint64_t seed, const uint8_t peer[16]);
/* ---- Agent access audit (audit.c) ------------------------------------------------ */

_Static_assert(TK_AGENT_AUDIT_ENTRIES < UINT16_MAX, "entry indices fit the index");

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
    int64_t folded_at;                   /* the second of the last fold */
    uint16_t slot[TK_AGENT_AUDIT_SLOTS]; /* 0 = empty, else entry index + 1 */
    ep_audit_entry e[TK_AGENT_AUDIT_ENTRIES];
} ep_audit;

/* The cookie of a fold request: no connection waits for it. */
#define EP_AUDIT_COOKIE UINT64_MAX
/* The SSF pusher's acks complete on worker 0 under this cookie: nobody waits. */
#define EP_SSF_COOKIE (UINT64_MAX - 1)

/* ---- Contexts ------------------------------------------------------------------ */

/* Per-connection caller authentication (auth_cache.c): direct-mapped by the
 * connection slot (sizes in limits.h). */
typedef struct ep_auth_entry {
    uint64_t cookie; /* the connection: slot | generation << 32 */
    uint8_t secret_hash[TK_HASH_LEN];
    bool used;
    uint8_t id_len;
    uint16_t hdr_len;
    char hdr[TK_AUTH_CACHE_HDR_MAX]; /* the exact Authorization value verified */
    char id[TK_AUTH_CACHE_ID_MAX];
} ep_auth_entry;

/* A deferred authorization-server answer (as.c): what to send once the
 * commit is durable and its outcome is OK. */
typedef struct ep_as_slot {
    uint64_t cookie;
    int64_t at; /* 0 = free; else when taken (stale ones are reclaimed) */
    int status;
    const char *ctype;
    uint16_t extra_len, body_len;
    char buf[TK_AS_PENDING_MAX]; /* extra headers, then the body */
} ep_as_slot;

/* Stored /authorize requests of the last authorize-ttl seconds, from all
 * addresses (ratelimit.c: ep_authz_admit): a count per second of creation,
 * in a ring of TK_AUTHORIZE_TTL_MAX seconds, and their running sum. */
typedef struct ep_authz_window {
    int64_t head_s; /* the latest second counted */
    uint32_t total; /* requests stored in (head_s - ttl, head_s] */
    uint32_t n[TK_AUTHORIZE_TTL_MAX];
    int64_t logged_s; /* last authorize_pending_full log line */
    uint64_t refused; /* refusals since that line */
} ep_authz_window;

/* The batch hint's tokens (hint.c), in the order hinted: each with the
 * SHA-256 computed for the walker, so that introspection hashes a token
 * once. Copies of tokens: cleansed when the next batch starts. */
#define EP_HINT_TOKEN_MAX 64
typedef struct ep_hint_memo {
    unsigned n, next; /* entries; the first not yet used */
    struct {
        size_t len;
        char tok[EP_HINT_TOKEN_MAX];
        uint8_t hash[TK_HASH_LEN];
    } e[TK_PREFETCH_MAX];
} ep_hint_memo;

typedef struct ep_worker {
    tk_app *app;
    unsigned id;
    tk_txn *txn;
    bool txn_ok; /* the read txn was renewed for this batch */
    int64_t now; /* Unix seconds, taken once per batch */
    ep_metrics m;
    char token[TK_TOKEN_IN_MAX + 1];
    char client_id[TK_ID_MAX + 1];
    char secret[TK_CLIENT_SECRET_IN_MAX + 1];
    tk_commit_done done[TK_DRAIN_CHUNK];
    struct tk_idp_trust *idp; /* IdP trust snapshot (events.c), renewed per batch */
    uint64_t idp_gen;
    char scratch[TK_RESPONSE_MAX]; /* response bodies */
    ep_ratelimit rl;               /* failed authentications (ratelimit.c) */
    int64_t rl_logged_s;           /* last auth_rate_limited log line */
    const tk_resources *res;       /* the table this batch uses (may be NULL) */
    char path[TK_HTTP_HEAD_MAX];   /* forward-auth: the normalised original path */
    ep_audit audit;
    char metrics[TK_METRICS_PAGE_MAX]; /* the /metrics page */
    ep_auth_entry auth_cache[TK_AUTH_CACHE_SLOTS];
    ep_as_slot *as_slots; /* TK_AS_PENDING_SLOTS, allocated at the first deferred AS answer */
    ep_hint_memo hint;    /* the batch hint's tokens and hashes (hint.c) */
} __attribute__((aligned(64))) ep_worker;

/* ---- mail.c: outbound answers on their way to a worker ------------------------ */

/* A worker's HTTP call (a code redemption, a metadata document): made by
 * ep_mail_new, sent by ep_mail_submit, its answer posted back by
 * ep_mail_post on the outbound thread and taken by the worker with
 * ep_mail_take (mail.c says how). */
typedef struct ep_mailbox ep_mailbox;
/* The head of every call (its first member): who waits for it, and the
 * answer as the outbound thread copied it. */
typedef struct ep_mail {
    struct ep_mail *next;
    ep_mailbox *box;
    size_t size; /* of the whole call: cleansed when freed */
    unsigned worker;
    uint64_t cookie;
    uint8_t result; /* enum tk_outbound_result */
    int status;
    char *body; /* NUL-terminated copy of the answer, or NULL */
    size_t body_len;
    char error[160];
} ep_mail;
/* One kind of call: per worker the answers that came back, and how many
 * are in flight (at most max). */
struct ep_mailbox {
    tk_app *app;
    const char *wake_failed; /* the log event of a failed wake */
    unsigned max;
    ep_mail *list[TK_WORKERS_MAX];
    unsigned inflight[TK_WORKERS_MAX];
};
struct tk_outbound_req;
struct tk_outbound_resp;
/* A zeroed call of size bytes (a type whose first member is an ep_mail) in
 * box, for worker w's request with this cookie; NULL when out of memory. */
void *ep_mail_new(ep_mailbox *box, size_t size, const ep_worker *w, uint64_t cookie);
/* Submit req, whose cb is ep_mail_post (or a callback that ends in it) with
 * m as its argument: 0 (exactly one answer will be posted), TK_E_QUEUEFULL
 * (max calls in flight, or the outbound pool is full) or another error;
 * on error m is freed. */
int ep_mail_submit(ep_mail *m, const struct tk_outbound_req *req);
/* The outbound callback (arg: the call's ep_mail): copy the answer, queue
 * it for its worker and wake that worker; a worker that stopped gets
 * nothing (the call is freed). Runs on the outbound thread. */
void ep_mail_post(void *arg, const struct tk_outbound_resp *resp);
/* The next answer that came back for worker w, or NULL; the caller frees
 * it with ep_mail_free. */
ep_mail *ep_mail_take(ep_mailbox *box, unsigned worker);
/* Cleanse and free a call and its body copy. */
void ep_mail_free(ep_mail *m);
/* Worker life: open (answers may be queued for it and its wake fd written)
 * from worker_init to worker_fini. */
void ep_mail_worker_open(ep_worker *w, bool open);
/* Free the answers never taken (tk_app_destroy, after the outbound thread
 * stopped). */
void ep_mailbox_fini(ep_mailbox *box);

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
    /* The endpoint table (ep_routes), reached through the app so that the
     * /metrics handler, itself a row, lists the labels without a cycle. */
    const ep_route *routes;
    unsigned nroutes;
    /* Registrations per source address (register.c), shared by the workers:
     * registration is rare, so one mutex is enough. */
    pthread_mutex_t reg_mu;
    ep_ratelimit reg_rl;
    /* Stored /authorize requests (ratelimit.c: ep_authz_admit): per source
     * address, and in all per authorize-ttl. One mutex: the request is about
     * to be written durably, which costs far more. */
    pthread_mutex_t authz_mu;
    ep_ratelimit authz_rl;
    ep_authz_window authz_win;
    struct ep_dpop_seen *dpop_seen; /* DPoP proof jtis (dpop.c) */
    /* Sign-in upstream (oidc.c): the sign-ins sent to an IdP (state, nonce,
     * PKCE verifier; allocated at the first). One mutex: sign-in is rare. */
    pthread_mutex_t oidc_mu;
    struct ep_oidc_pending *oidc_pending; /* TK_OIDC_PENDING_MAX */
    /* Outbound answers on their way to the workers (mail.c): one mutex for
     * every box, and per worker whether it takes mail and its wake fd. */
    pthread_mutex_t mail_mu;
    bool mail_open[TK_WORKERS_MAX];
    int mail_wake_fd[TK_WORKERS_MAX];
    ep_mailbox oidc_mail; /* code redemptions (oidc.c) */
    ep_mailbox cimd_mail; /* Client ID Metadata Documents (cimd.c) */
    struct tk_ssf *ssf;   /* atomic: the SSF pusher (tk_app_set_ssf), or NULL */
};

/* How the caller presented client credentials (RFC 6749 §2.3.1): decides
 * whether a 401 carries the Basic challenge. */
enum ep_auth_via {
    EP_VIA_NONE = 0, /* no client credentials at all */
    EP_VIA_HEADER,   /* an Authorization header (the Basic scheme, or another one) */
    EP_VIA_FORM,     /* client_id (and client_secret) in the form */
};

/* One request being handled. */
struct ep_req {
    ep_worker *w;
    const tk_http_request *http; /* NULL in a completion */
    tk_outbuf *out;
    const ep_route *route; /* the row answering: label, completion */
    uint64_t cookie;
    uint64_t start_ns;
    int status;       /* what was written, for metrics */
    bool head;        /* HEAD: send the GET head without its body */
    bool deferred;    /* answered later by route->complete */
    uint8_t auth_via; /* enum ep_auth_via, set by ep_authenticate */
};

/*
 * What a shared step of a handler (form decoding, caller authentication)
 * left to its caller. The one vocabulary of the endpoints next to TK_E_*:
 * TK_E_* says what failed, an ep_step says whether the request is answered.
 */
typedef enum ep_step {
    EP_STEP_ON = 0,   /* nothing answered: go on */
    EP_STEP_ANSWERED, /* the request was answered (an error reply) */
    EP_STEP_NO_STORE, /* no read txn: not answered, so the caller can count it, then 503 */
} ep_step;

/* ---- dpop.c: DPoP proofs (RFC 9449) and the replay cache ---------------------------- */

enum ep_dpop_err {
    EP_DPOP_OK = 0,
    EP_DPOP_MALFORMED,  /* not a compact JWS, typ, JSON, members */
    EP_DPOP_BAD_KEY,    /* alg not ES256, no public P-256 jwk, a private member */
    EP_DPOP_BAD_SIG,    /* the signature does not verify with the jwk */
    EP_DPOP_BAD_CLAIMS, /* htm, htu, iat window, jti, ath */
    EP_DPOP_REPLAY,     /* the jti was seen within the window */
    EP_DPOP_FULL,       /* the replay cache could not remember it: refused */
    EP_DPOP_USE_NONCE,  /* a good proof without the server's current nonce */
};

/* A server nonce: base64url of the 8-byte slot and 16 bytes of its MAC. */
#define EP_DPOP_NONCE_LEN 32

/* An absolute http(s) URL split for comparison: scheme, host normalised
 * (lower case; the scheme's default port as 0), path without query and
 * fragment ("/" when empty). Slices into the URL and hostbuf. */
typedef struct ep_dpop_url_parts {
    tk_slice scheme;
    tk_http_host host;
    tk_slice path;
    char hostbuf[TK_HTTP_HOST_MAX + 1];
} ep_dpop_url_parts;

/* 0, or -1 when url is not an absolute http(s) URL with a valid host. */
int ep_dpop_url(tk_slice url, ep_dpop_url_parts *u);

/* What the request the proof comes with was. url may point into its own
 * hostbuf: fill it in place, never copy an ep_dpop_want. */
typedef struct ep_dpop_want {
    tk_slice htm;          /* the method, compared byte for byte */
    ep_dpop_url_parts url; /* the URL (ep_dpop_url, or filled by the caller) */
    const uint8_t *ath;    /* SHA-256 of the access token; NULL at the token endpoint */
    int64_t now;
    const struct ep_dpop_seen *nonces; /* non-NULL: the proof must carry a current nonce */
} ep_dpop_want;

typedef struct ep_dpop_proof {
    uint8_t jkt[TK_HASH_LEN]; /* RFC 7638 thumbprint of the proof's key (raw) */
    uint8_t jti[TK_HASH_LEN]; /* SHA-256 of the jti: the replay cache's key */
    int64_t until;            /* remember the jti until then */
} ep_dpop_proof;

/* Check a proof against want: typ dpop+jwt, alg ES256, a public P-256 jwk,
 * the signature, htm, htu, iat within [now - TK_DPOP_IAT_PAST, now +
 * TK_DPOP_IAT_FUTURE], jti present, ath when want->ath. Returns EP_DPOP_OK
 * with *out, or an ep_dpop_err with *why a static explanation (never the
 * proof's content). The replay check is the caller's (ep_dpop_remember). */
int ep_dpop_check(tk_slice compact, const ep_dpop_want *want, ep_dpop_proof *out, const char **why);

/* The request's DPoP header: 0 with *out, 1 when absent, -1 when repeated. */
int ep_dpop_header(const tk_http_request *h, tk_slice *out);

/* The process-wide replay cache (dpop.c says why not one per worker). */
typedef struct ep_dpop_seen ep_dpop_seen;
/* Sized for rate proofs a second (setting dpop-rate, TK_DPOP_RATE_MIN ..
 * TK_DPOP_RATE_MAX, else -EINVAL); all its memory is allocated here. */
int ep_dpop_seen_new(unsigned rate, ep_dpop_seen **out);
void ep_dpop_seen_free(ep_dpop_seen *s);
/* Remember jti (until `until`, at most now + TK_DPOP_IAT_PAST +
 * TK_DPOP_IAT_FUTURE + 1): EP_DPOP_OK, EP_DPOP_REPLAY (seen within the
 * window) or EP_DPOP_FULL (more than dpop-rate recent proofs: refuse). */
int ep_dpop_remember(ep_dpop_seen *s, const uint8_t jti[TK_HASH_LEN], int64_t until, int64_t now);
/* Proofs refused because the table was full (tokend_dpop_replay_full_total). */
uint64_t ep_dpop_seen_full(ep_dpop_seen *s);
/* The slot memory allocated at start, and the jtis one generation takes. */
size_t ep_dpop_seen_bytes(const ep_dpop_seen *s);
uint64_t ep_dpop_seen_capacity(const ep_dpop_seen *s);
/* The current server nonce (NUL-terminated), and whether a proof's nonce is
 * current: made by this process (a MAC with its random key) in this slot or
 * the one before (TK_DPOP_NONCE_SLOT). */
void ep_dpop_nonce(const ep_dpop_seen *s, int64_t now, char out[EP_DPOP_NONCE_LEN + 1]);
bool ep_dpop_nonce_ok(const ep_dpop_seen *s, tk_slice nonce, int64_t now);

/* ---- reply.c: responses and the per-request store txn ----------------------------- */

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
/* Cluster mode only (the caller checks w->app->cfg.cluster != NULL): true
 * when this node's state is known current; else a 503 is sent, *stale is
 * counted, and false. Fail closed: a stale node never says "active". */
bool ep_cluster_fresh(ep_req *r, uint64_t *stale);
/* 401 {"error":"invalid_client"} (RFC 6749 §5.2). The Basic challenge
 * (realm = the issuer, error="invalid_client") goes with it unless the
 * caller authenticated in the form (r->auth_via == EP_VIA_FORM): form-based
 * clients read the JSON body, and a challenge makes them report a challenge
 * instead of the error code. */
void ep_reply_invalid_client(ep_req *r);
/* The worker's read txn, renewed when the batch's renewal failed; NULL
 * (after a log line) when the store cannot give one. */
tk_txn *ep_txn(ep_worker *w);
/* Copy an untrusted id for a log line: at most 64 bytes, anything outside
 * printable ASCII (and spaces, quotes, '=') replaced by '?'. */
void ep_log_id(tk_slice id, char out[65]);

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
 * client_secret into the worker's buffers). EP_STEP_ON, or EP_STEP_ANSWERED
 * after writing 400 invalid_request. */
ep_step ep_parse_form(ep_req *r, ep_form *f);

/* Authenticate the caller from HTTP Basic or the form's client_id and
 * client_secret; an Authorization header of another scheme is not client
 * authentication and is ignored. EP_STEP_ON with *client (slices into the
 * txn) and *client_id (the worker's buffer), or EP_STEP_ANSWERED after
 * writing 400 (two methods at once) / 401 / 429 / 503. Sets r->auth_via. */
ep_step ep_authenticate(ep_req *r, const ep_form *f, tk_txn *txn, tk_client_rec *client,
                        tk_slice *client_id);

/* What /introspect and /revoke both start with: decode the form, take the
 * worker's read txn, authenticate the caller. EP_STEP_ON with every output
 * set; EP_STEP_ANSWERED (bad form, failed auth); EP_STEP_NO_STORE when there
 * is no read txn. */
ep_step ep_begin_client_call(ep_req *r, ep_form *f, tk_txn **txn, tk_client_rec *caller,
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
/* The connection of cookie closed: cleanse its entry, if it has one. */
void ep_auth_cache_closed(ep_worker *w, uint64_t cookie);
/* Cleanse every entry (worker stop). */
void ep_auth_cache_clear(ep_worker *w);

/* ---- Handlers (one row each in routes.c) ------------------------------------------ */

void ep_introspect(ep_req *r);
void ep_revoke(ep_req *r);
void ep_revoke_done(ep_req *r, const tk_server_done *done);
void ep_metadata(ep_req *r);
void ep_healthz(ep_req *r);
void ep_metrics_serve(ep_req *r);
void ep_forward_auth(ep_req *r);
/* forward_auth.c: the identity headers are written into a fixed buffer; a
 * write that does not fit (one byte is kept for a NUL) sets overflow. */
typedef struct ep_hbuf {
    char *p;
    size_t cap, len;
    bool overflow;
} ep_hbuf;
/* Append v as a header value: controls, DEL, non-ASCII, '%' and a space at
 * either end percent-encoded (%XX), so no value can split a header. */
void ep_hb_value(ep_hbuf *b, tk_slice v);
void ep_resource_metadata(ep_req *r);
/* signed.c: GET /jwks.json, and the RFC 9701 branch of POST /introspect. */
void ep_jwks(ep_req *r);
/* When the caller's Accept asks for a signed answer and the app has keys:
 * sign answer[0..n) (the RFC 7662 JSON) for caller_id, write the reply and
 * return true. Otherwise false, and nothing is written. */
bool ep_introspect_signed(ep_req *r, tk_slice caller_id, const char *answer, size_t n);
/* Whether an Accept value lists the media type (ASCII case-insensitive;
 * parameters ignored except q=0, which refuses it; no wildcard matches). */
bool ep_accepts(tk_slice accept, const char *type);
/* bcl.c, ssf.c, webhook.c: IdP events (shared plumbing in events.c). */
void ep_backchannel_logout(ep_req *r);
void ep_backchannel_logout_done(ep_req *r, const tk_server_done *done);
void ep_ssf_events(ep_req *r);
void ep_ssf_events_done(ep_req *r, const tk_server_done *done);
void ep_webhook(ep_req *r);
void ep_webhook_done(ep_req *r, const tk_server_done *done);

/* The authorization server (issue 11): register.c, authorize.c, login.c,
 * consent.c, token.c; shared helpers in as.c, HTML in page.c. */
void ep_register(ep_req *r);
void ep_register_done(ep_req *r, const tk_server_done *done);
/* register.c: counts one new client from peer this minute (register-burst,
 * shared with Client ID Metadata Documents); true when over the burst. */
bool ep_register_over_burst(ep_worker *w, const uint8_t peer[16]);
void ep_authorize(ep_req *r);
void ep_authorize_done(ep_req *r, const tk_server_done *done);
void ep_login(ep_req *r);
/* The answer to a sign-in for a pending request a from another browser
 * than the one that made it (no or another pre-login cookie): logged, a
 * 403 page; a 400 "start again" when a has no pre-login binding (made by
 * a signed-in browser: bound to that browser session for good). */
void ep_login_elsewhere(ep_req *r, const tk_authreq_rec *a, tk_slice request);
void ep_login_done(ep_req *r, const tk_server_done *done);
void ep_consent(ep_req *r);
void ep_consent_done(ep_req *r, const tk_server_done *done);
void ep_token(ep_req *r);
void ep_token_done(ep_req *r, const tk_server_done *done);

/* oidc.c: sign-in at an upstream OpenID provider (login = oidc). GET
 * /login?request=ID sends the browser to the IdP; GET /login/callback
 * redeems the code on the outbound thread (the request stays deferred).
 * oidc_idtoken.c: the redemption's answer comes back as the worker's mail
 * (mail.c, tk_app.oidc_mail); app_wake drains the committer, then the mail,
 * and ep_oidc_wake verifies the ID token and signs in. */
void ep_oidc_login(ep_req *r);
/* logout.c: GET shows the sign-out form, POST ends the tokend session. */
void ep_logout(ep_req *r);
void ep_logout_done(ep_req *r, const tk_server_done *done);
void ep_oidc_callback(ep_req *r);
void ep_oidc_callback_done(ep_req *r, const tk_server_done *done);
/* Finish the redemptions whose answers arrived: each either submits its
 * sign-in to the committer (its completion comes later, the usual way) or
 * fails at once into done[]. Returns how many were written (<= max); max
 * means more may be waiting. */
size_t ep_oidc_wake(ep_worker *w, tk_server_done *done, size_t max);
/* The sign-in binder cookie (oidc.c sets it at /login, checks it at the
 * callback; oidc_idtoken.c clears it once signed in). */
#define EP_OIDC_BINDER_COOKIE "__Host-tokend-login"
/* A code redemption in flight (heap): made by the callback (oidc.c), filled
 * by ep_mail_post on the outbound thread, finished by the worker
 * (ep_oidc_wake). */
typedef struct ep_oidc_call {
    ep_mail mail; /* first: the worker and the answer */
    char issuer[TK_IDP_ISS_MAX + 1];
    char request[TK_ID_MAX + 1];
    char nonce[TK_SECRET_B64_LEN + 1];
} ep_oidc_call;
/* Free what is left (tk_app_destroy, after the outbound thread stopped). */
void ep_oidc_fini(tk_app *app);

/* cimd.c: clients known by a Client ID Metadata Document (an https URL as
 * client_id; oauth_cimd.h). At /authorize, after the request parsed: a
 * client_id that is a URL is checked and replaced by its store key (in
 * key); a client not stored, or whose document is no longer trusted, is
 * fetched on the outbound thread and the request deferred — its completion
 * (ep_authorize_done → ep_cimd_done, or the commit of the client) answers
 * a 303 back to "/authorize?" + query once the client is stored, or an
 * error page. A raw "tkm_" key is refused (such a client is named by its
 * URL). EP_STEP_ON: go on with *client_id; EP_STEP_ANSWERED: answered or
 * deferred. */
ep_step ep_cimd_authorize(ep_req *r, tk_txn *txn, tk_slice query, tk_slice *client_id,
                          char key[TK_CIMD_KEY_LEN + 1]);
/* The store id of a presented client_id where it authenticates (/token):
 * the key of a metadata URL (never fetched here), TK_SLICE_NULL for a bad
 * URL or a raw key, else presented itself. */
tk_slice ep_cimd_store_id(tk_slice presented, char key[TK_CIMD_KEY_LEN + 1]);
/* A deferred /authorize whose document was refused: writes the error page
 * and returns true; false for any other completion. */
bool ep_cimd_done(ep_req *r, const tk_server_done *done);
/* Finish the fetches whose answers arrived (as ep_oidc_wake). */
size_t ep_cimd_wake(ep_worker *w, tk_server_done *done, size_t max);

/* ---- page.c: server-rendered HTML -------------------------------------------------- */

/* A page being built in a caller-owned buffer; overflow is sticky. */
typedef struct ep_html {
    char *buf;
    size_t cap, len;
    bool overflow;
} ep_html;

/* Start a page: doctype, charset, viewport, a small stylesheet, <title>. */
void ep_html_begin(ep_html *h, char *buf, size_t cap, const char *title);
/* Trusted markup (string literals only). */
void ep_html_raw(ep_html *h, const char *s);
/* Untrusted text, escaped (& < > " ' become entities): safe in element
 * content and in double-quoted attribute values. */
void ep_html_text(ep_html *h, tk_slice s);
void ep_html_end(ep_html *h);
/* Send the page with the security headers (CSP without script,
 * frame-ancestors 'none', X-Frame-Options DENY, Referrer-Policy
 * no-referrer; the response writer adds Cache-Control: no-store).
 * form_target, when not empty, is a redirect URI whose origin the page's
 * forms may end at (CSP form-action also governs the redirect after a
 * POST). extra: more header lines (Set-Cookie), may be NULL. */
void ep_reply_page(ep_req *r, int status, const ep_html *h, tk_slice form_target,
                   const char *extra);
/* A page saying what went wrong (an OAuth error code and its static
 * description), never a redirect. */
void ep_reply_error_page(ep_req *r, int status, const char *code, const char *description);

/* ---- as.c: shared by the authorization-server handlers ------------------------------ */

/* The outcome (enum tk_op_outcome) a completion carries. */
static inline uint8_t ep_as_outcome(const tk_server_done *d)
{
    return (uint8_t)(d->aux >> 32);
}
/* Submit creq and keep the answer to send when it is durable and OK (the
 * completion calls ep_as_answer). On failure (no free slot, queue full)
 * the request's blobs are released and a 503 (JSON, or an HTML page when
 * html) is written; returns false. */
bool ep_as_defer(ep_req *r, tk_commit_req *creq, int status, const char *ctype, tk_slice extra,
                 tk_slice body, bool html);
/* ep_as_defer without a request to answer (a completion resuming a deferred
 * connection: oidc.c): keep the answer for cookie and submit creq. 0, or an
 * error after releasing creq (nothing kept, nothing written). */
int ep_as_park(ep_worker *w, uint64_t cookie, tk_commit_req *creq, int status, const char *ctype,
               tk_slice extra, tk_slice body);
/* The completion's slot (NULL when none: then 500 was written). The caller
 * answers from it or otherwise, then frees it with ep_as_free. */
ep_as_slot *ep_as_slot_of(ep_req *r);
void ep_as_answer(ep_req *r, ep_as_slot *s);
/* The completion of a deferred HTML answer (authorize, consent, login,
 * logout): the parked answer when the commit is durable (and, with
 * check_outcome, its outcome OK); a 503 page when the commit failed; a 400
 * page saying refused when the outcome is not OK (refused NULL: 503). */
void ep_as_page_done(ep_req *r, const tk_server_done *done, bool check_outcome,
                     const char *refused);
void ep_as_free(ep_as_slot *s);
/* The completion of cookie's deferred request will never be answered (its
 * connection went away): free its parked answer, if it has one. */
void ep_as_dropped(ep_worker *w, uint64_t cookie);
/* The signed-in browser of this request: 0 with *cookie_hash, *browser
 * and the session's sub (slices into the txn) when the cookie names a
 * live browser session whose tokend session is active; TK_E_NOTFOUND
 * otherwise; TK_E_STORE. */
int ep_as_browser(ep_req *r, tk_txn *txn, uint8_t cookie_hash[TK_HASH_LEN], tk_browser_rec *browser,
                  tk_slice *sub);
/* The consent CSRF token of (browser csrf key, request id), base64url of
 * 32 bytes, into out (TK_SECRET_B64_LEN + 1). */
void ep_as_csrf(const uint8_t key[TK_HASH_LEN], tk_slice request, const char *purpose, char *out);
/* Constant-time check of a presented CSRF token. */
bool ep_as_csrf_ok(const uint8_t key[TK_HASH_LEN], tk_slice request, const char *purpose,
                   tk_slice presented);
/* A 303 to location (JSON-free, empty body), with extra header lines. */
void ep_as_see_other(ep_req *r, tk_slice location, const char *extra);
/* Build "Location: <url>\r\n" + extra into out; returns its length or 0
 * when it does not fit. */
size_t ep_as_location(char *out, size_t cap, tk_slice url, const char *extra);

/* 32 random bytes as base64url (codes, cookies) and the SHA-256 of that
 * string (what the store keeps). 0 or a CSPRNG error. */
int ep_as_secret(char out[TK_SECRET_B64_LEN + 1], uint8_t hash[TK_HASH_LEN]);
/* The configured protected resource with exactly this identifier, or NULL. */
const tk_resource *ep_as_resource(const ep_worker *w, tk_slice id);
/* Whether the active consent grant of user sub, signed in as session sid
 * (whose IdP issuer is part of the consent's key), for (client, resource)
 * covers scope: 0 with *covers, or TK_E_STORE. */
int ep_as_grant_covers(tk_txn *txn, tk_slice sid, tk_slice sub, tk_slice client, tk_slice resource,
                       tk_slice scope, bool *covers);
/* Append a TK_OP_CODE_ISSUE for request (its code into code, a fresh grant
 * id for a new consent). 0 or a CSPRNG / size error. */
int ep_as_code_op(tk_commit_req *creq, tk_slice request, const uint8_t browser[TK_HASH_LEN],
                  uint8_t decision, int64_t now, int64_t code_ttl,
                  char code[TK_SECRET_B64_LEN + 1]);

/* Several organisations (README "Several organisations"): what the IdP a
 * session signed in at lets its users grant, for one resource and scope. */
typedef struct ep_as_org {
    int verdict;                  /* enum tk_core_org_verdict: TK_ORG_OK (0) or why not */
    char iss[TK_IDP_ISS_MAX + 1]; /* the session's issuer for log lines, "-" when none */
} ep_as_org;
/* Read session sid and decide with tk_core_org_check under its issuer's
 * limits in the worker's trust snapshot. A session without an issuer (dev
 * login, tokenctl), one whose issuer the trust file does not list, or no
 * session at all (the cascade refuses such tokens anyway) restricts nothing.
 * 0 with *out, or TK_E_STORE. */
int ep_as_org_check(ep_worker *w, tk_txn *txn, tk_slice sid, tk_slice resource, tk_slice scope,
                    ep_as_org *out);
/* The user-facing reason for a verdict other than TK_ORG_OK. */
const char *ep_as_org_why(int verdict);
/* Log the refusal and answer it: a 303 to the verified redirect URI with
 * access_denied, the reason, state and iss (RFC 9207). */
void ep_as_org_refuse(ep_req *r, const ep_as_org *o, tk_slice client, tk_slice resource,
                      tk_slice redirect, tk_slice state);

/* The media type is application/x-www-form-urlencoded (parameters ignored). */
bool ep_as_is_form(tk_slice ct);
/* A pending authorization request that is unused and unexpired: 0,
 * TK_E_NOTFOUND, TK_E_STORE. */
int ep_as_pending(ep_req *r, tk_txn *txn, tk_slice id, tk_authreq_rec *a);
/* The pending request a page's query names: parse the query into f[0..n)
 * (f[0] is "request"), then read it as ep_as_pending does, in the worker's
 * read txn (*txn). False when the page was answered instead: 400 without a
 * request or for one expired, used or unknown, 503 when the store fails. */
bool ep_as_query_pending(ep_req *r, tk_form_field *f, size_t n, tk_txn **txn, tk_authreq_rec *a);

/* The pre-login cookie (README "Authorization server"): a random value set
 * at /authorize on a browser sent to sign in, its SHA-256 kept on the
 * pending request (authreq key 15). Only the browser holding it may start,
 * replace or finish the sign-in of that request (/login, /login/callback):
 * whoever learns a request id cannot bind it to their own browser. */
#define EP_PRELOGIN_COOKIE "__Host-tokend-authz"
/* The value of cookie name in a Cookie header, or TK_SLICE_NULL (also when
 * it is there twice: planted). */
tk_slice ep_as_cookie(tk_slice hdr, const char *name);
/* The browser's pre-login cookie (its own when it holds a well-formed one,
 * so several tabs' requests share it; else a fresh one): its hash into
 * hash, and the Set-Cookie line (refreshing Max-Age to authorize-ttl) into
 * setc. 0, a CSPRNG error or TK_E_TOOBIG. */
int ep_as_prelogin(ep_req *r, uint8_t hash[TK_HASH_LEN], char *setc, size_t cap);
/* Whether this request comes from the browser that made the pending
 * request a (its pre-login cookie, constant-time); false when a has none. */
bool ep_as_prelogin_ok(ep_req *r, const tk_authreq_rec *a);

/* ---- audit.c --------------------------------------------------------------------------- */

/* Count one forward-auth decision about an agent at a resource. */
void ep_audit_record(ep_worker *w, tk_slice client, const tk_resource *res, bool allowed);
/* Hand the counts gathered so far to the committer (once a second from
 * batch_begin; force: at worker exit). */
void ep_audit_fold(ep_worker *w, bool force);
/* A fold request's completion came back. */
void ep_audit_done(ep_worker *w, int64_t result);

/* ---- events.c: the IdP trust snapshot ----------------------------------------------- */

/* Take the current IdP trust snapshot when it changed (batch start); drop it. */
void ep_events_batch_begin(ep_worker *w);
void ep_events_fini(ep_worker *w);

/* ---- metrics.c ----------------------------------------------------------------------- */

/* Count one finished request: its table row, status and duration. */
void ep_metrics_request(ep_worker *w, unsigned row, int status, uint64_t dur_ns);

/* ---- hint.c: the batch hint (docs/ARCHITECTURE.md §4, "Prefetching a batch") ---- */

/* One request at p (n bytes): its length when it is a complete
 * `POST /introspect HTTP/1.1` request with a Content-Length body or a
 * `GET /auth…` forward-auth request, else 0; *tok the token: the body's
 * first token= value when plain (no % or +), the Authorization header's
 * Bearer or DPoP credential; else empty. Pure and bounded; a hint only,
 * never the request parser. */
size_t ep_hint_scan(const char *p, size_t n, tk_slice *tok);
/* The server's hint hook: hash the plain tokens of the batch's
 * introspections and start the walker on them (tk_store_prefetch_tokens). */
void ep_hint(ep_worker *w, const tk_server_hint *h, size_t n);
/* Forget the last batch's hinted tokens (cleansed). */
void ep_hint_clear(ep_worker *w);
/* SHA-256 of a token to introspect: the hint's, when it hashed the very
 * same bytes for this batch (compared in constant time), else computed. */
void ep_token_hash(ep_worker *w, const char *tok, size_t len, uint8_t out[TK_HASH_LEN]);

#endif
