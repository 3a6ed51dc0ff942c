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

/* ---- Metrics ----------------------------------------------------------------- */

enum ep_endpoint {
    EP_INTROSPECT = 0,
    EP_REVOKE,
    EP_METADATA,
    EP_HEALTHZ,
    EP_METRICS,
    EP_OTHER,
    EP_ENDPOINTS,
};

/* Statuses counted individually; anything else is "other". */
#define EP_STATUSES 9
/* Duration histogram buckets (upper bounds 50 µs … 1 s) plus +Inf. */
#define EP_DUR_BUCKETS 14

typedef struct ep_metrics {
    uint64_t requests[EP_ENDPOINTS][EP_STATUSES];
    uint64_t introspect_active, introspect_inactive;
    uint64_t revoke_revoked, revoke_noop, revoke_forbidden, revoke_unavailable;
    uint64_t dur[EP_DUR_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    uint64_t dur_count, dur_sum_ns;
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

/* ---- Contexts ------------------------------------------------------------------ */

/* Deferred completions moved from the committer per drain call. */
#define EP_DRAIN_CHUNK 64
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
    char scratch[TK_RESPONSE_MAX]; /* response bodies */
    ep_auth_entry auth_cache[EP_AUTH_CACHE_SLOTS];
} __attribute__((aligned(64))) ep_worker;

struct tk_app {
    tk_app_cfg cfg;
    tk_core_cfg core;
    unsigned nworkers;
    ep_worker *w; /* nworkers contexts */
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

/* ---- metrics.c ----------------------------------------------------------------------- */

/* Count one finished request: endpoint, status and its duration. */
void ep_metrics_request(ep_worker *w, int endpoint, int status, uint64_t dur_ns);

#endif
