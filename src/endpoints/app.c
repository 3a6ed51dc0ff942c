/*
 * The application side of the server: per-worker contexts, the hooks the
 * io_uring loop calls, the router and the response helpers.
 *
 * The one idea (docs/ARCHITECTURE.md §4): each worker keeps one long-lived LMDB read
 * transaction and renews it exactly once per batch of completions, after the
 * batch was harvested. A revocation's 200 is sent only after its commit, so
 * any request that arrives after that 200 is in a later batch, whose renewed
 * transaction sees the commit. Skipping the renewal would break that.
 *
 * Deferred requests (revocations waiting for their commit) carry their kind
 * and start time in the 32-bit tag the server keeps for us: 4 bits of kind,
 * 28 bits of microseconds (wraps after ~268 s, far beyond any commit).
 *
 * HEAD on the GET endpoints is answered as GET without the body (the
 * Content-Length of the GET answer is kept, as RFC 9110 §9.3.2 allows).
 */
#include "endpoints_int.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TAG_KIND_SHIFT 28
#define TAG_TIME_MASK  ((1u << TAG_KIND_SHIFT) - 1)
enum { TAG_REVOKE = 1, TAG_EVENT_BASE = 2 }; /* events: TAG_EVENT_BASE + 0, 1, 2 */

static uint32_t make_tag(unsigned kind, uint64_t start_ns)
{
    return (uint32_t)(kind << TAG_KIND_SHIFT) | (uint32_t)((start_ns / 1000) & TAG_TIME_MASK);
}

static uint64_t tag_elapsed_ns(uint32_t tag, uint64_t now_ns)
{
    uint32_t now_us = (uint32_t)((now_ns / 1000) & TAG_TIME_MASK);
    return (uint64_t)((now_us - (tag & TAG_TIME_MASK)) & TAG_TIME_MASK) * 1000;
}

/* ---- Responses ---------------------------------------------------------------- */

void ep_reply(ep_req *r, int status, const char *ctype, const char *extra, const char *body,
              size_t len)
{
    size_t before = r->out->len;
    int rc = tk_http_respond(r->out, status, ctype, extra, body, len);
    if (rc != 0) {
        tk_log_error("response_too_big", "status=%d len=%zu", status, len);
        status = 500;
        len = 0;
        rc = tk_http_respond(r->out, status, NULL, NULL, "", 0);
        TK_ASSERT(rc == 0); /* the server keeps room for one response */
    }
    if (r->head) {
        TK_ASSERT(r->out->len >= before + len);
        r->out->len -= len; /* the body is last: drop it, keep Content-Length */
    }
    r->status = status;
}

void ep_reply_error(ep_req *r, int status, const char *code, const char *extra)
{
    tk_json j;
    char buf[96];
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "error", code);
    tk_json_obj_end(&j);
    TK_ASSERT(tk_json_finish(&j) == 0);
    ep_reply(r, status, "application/json", extra, j.buf, j.len);
}

void ep_reply_json(ep_req *r, int status, const tk_json *j)
{
    if (tk_json_finish(j) != 0) {
        tk_log_error("response_too_big", "endpoint=%d", r->endpoint);
        ep_reply_error(r, 500, "server_error", NULL);
        return;
    }
    ep_reply(r, status, "application/json", NULL, j->buf, j->len);
}

void ep_reply_unavailable(ep_req *r)
{
    ep_reply_error(r, 503, "temporarily_unavailable", "Retry-After: 1\r\n");
}

tk_txn *ep_txn(ep_worker *w)
{
    if (TK_LIKELY(w->txn_ok)) {
        return w->txn;
    }
    int rc = tk_store_read_renew(w->txn);
    if (rc != 0) {
        tk_log_error("store_read", "worker=%u err=%s", w->id, tk_strerror(rc));
        return NULL;
    }
    w->txn_ok = true;
    w->now = tk_now();
    return w->txn;
}

/* ---- Router ------------------------------------------------------------------------ */

typedef struct route {
    const char *path;
    int endpoint;
    bool post; /* POST only; otherwise GET (and HEAD) */
    void (*handler)(ep_req *r);
} route;

static const route routes[] = {
    {"/introspect", EP_INTROSPECT, true, ep_introspect},
    {"/revoke", EP_REVOKE, true, ep_revoke},
    {"/.well-known/oauth-authorization-server", EP_METADATA, false, ep_metadata},
    {"/healthz", EP_HEALTHZ, false, ep_healthz},
    {"/metrics", EP_METRICS, false, ep_metrics_serve},
    {"/backchannel-logout", EP_BACKCHANNEL, true, ep_backchannel_logout},
    {"/ssf/events", EP_SSF, true, ep_ssf_events},
    {"/webhooks/session-terminated", EP_WEBHOOK, true, ep_webhook},
};

/* Routes that cover a path and everything below it ("/auth/…": the original
 * path, Envoy style; the RFC 9728 metadata of each resource path). */
typedef struct prefix_route {
    const char *path;
    int endpoint;
    bool any; /* any method: forward-auth answers for the original request's */
    void (*handler)(ep_req *r);
} prefix_route;

static const prefix_route prefix_routes[] = {
    {"/auth", EP_FORWARD_AUTH, true, ep_forward_auth},
    {"/.well-known/oauth-protected-resource", EP_RESOURCE_METADATA, false, ep_resource_metadata},
};

static bool under(tk_slice path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (path.len < n || memcmp(path.p, prefix, n) != 0) {
        return false;
    }
    return path.len == n || path.p[n] == '/';
}

/* 0 when no prefix route covers the request, else 1 (answered). */
static int dispatch_prefix(ep_req *r)
{
    const tk_http_request *h = r->http;
    for (size_t i = 0; i < TK_ARRAY_LEN(prefix_routes); i++) {
        const prefix_route *pr = &prefix_routes[i];
        if (!under(h->path, pr->path)) {
            continue;
        }
        r->endpoint = pr->endpoint;
        if (pr->any || h->method == TK_HTTP_GET || h->method == TK_HTTP_HEAD) {
            pr->handler(r);
        } else {
            ep_reply_error(r, 405, "method_not_allowed", "Allow: GET, HEAD\r\n");
        }
        return 1;
    }
    return 0;
}

static void dispatch(ep_req *r)
{
    const tk_http_request *h = r->http;
    r->head = h->method == TK_HTTP_HEAD; /* no body on any answer to HEAD */
    for (size_t i = 0; i < TK_ARRAY_LEN(routes); i++) {
        const route *rt = &routes[i];
        if (!tk_slice_eq_str(h->path, rt->path)) {
            continue;
        }
        r->endpoint = rt->endpoint;
        if (rt->post && h->method == TK_HTTP_POST) {
            rt->handler(r);
        } else if (!rt->post && (h->method == TK_HTTP_GET || h->method == TK_HTTP_HEAD)) {
            rt->handler(r);
        } else {
            ep_reply_error(r, 405, "method_not_allowed",
                           rt->post ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n");
        }
        return;
    }
    if (dispatch_prefix(r)) {
        return;
    }
    r->endpoint = EP_OTHER;
    ep_reply_error(r, 404, "not_found", NULL);
}

/* ---- Hooks ---------------------------------------------------------------------------- */

static void *app_worker_init(void *app_, unsigned worker_id)
{
    tk_app *app = app_;
    if (worker_id >= app->nworkers) {
        tk_log_error("worker_init", "worker=%u max=%u", worker_id, app->nworkers);
        return NULL;
    }
    ep_worker *w = &app->w[worker_id];
    int rc = tk_store_read_begin(app->cfg.store, &w->txn);
    if (rc != 0) {
        tk_log_error("store_read", "worker=%u err=%s", worker_id, tk_strerror(rc));
        return NULL;
    }
    w->txn_ok = true;
    w->now = tk_now();
    w->res = __atomic_load_n(&app->res, __ATOMIC_ACQUIRE);
    w->audit.folded_at = w->now;
    ep_events_batch_begin(w);
    return w;
}

static void app_worker_fini(void *wctx)
{
    ep_worker *w = wctx;
    ep_auth_cache_clear(w);
    if (w->txn != NULL) {
        ep_audit_fold(w, true); /* on the worker thread, while the committer runs */
        tk_store_txn_end(w->txn);
        w->txn = NULL;
    }
    ep_events_fini(w);
}

static void app_batch_begin(void *wctx)
{
    ep_worker *w = wctx;
    tk_committer *c = w->app->cfg.committer;
    if (c != NULL && TK_UNLIKELY(tk_committer_pause_wanted(c))) {
        /* The committer grows the map: no txn may be active meanwhile. */
        tk_store_read_reset(w->txn);
        tk_committer_pause_point(c);
    }
    int rc = tk_store_read_renew(w->txn);
    w->txn_ok = rc == 0;
    if (rc != 0) {
        tk_log_warn("store_read", "worker=%u err=%s", w->id, tk_strerror(rc));
        if (rc == TK_E_FULL && c != NULL) {
            tk_committer_ask_grow(c); /* another process grew the map: adopt it */
        }
    }
    w->now = tk_now();
    w->res = __atomic_load_n(&w->app->res, __ATOMIC_ACQUIRE);
    ep_audit_fold(w, false);
    ep_events_batch_begin(w);
}

static int app_wake_fd(void *wctx)
{
    ep_worker *w = wctx;
    tk_committer *c = w->app->cfg.committer;
    return c != NULL ? tk_committer_event_fd(c, w->id) : -1;
}

static size_t app_wake(void *wctx, tk_server_done *done, size_t max)
{
    ep_worker *w = wctx;
    tk_committer *c = w->app->cfg.committer;
    size_t n = 0;
    /* Bounded: each turn drains a full chunk or ends the loop, and the
     * committer holds at most queue_cap completions for us. */
    while (c != NULL && n < max) {
        size_t want = max - n < EP_DRAIN_CHUNK ? max - n : EP_DRAIN_CHUNK;
        size_t got = tk_committer_drain(c, w->id, w->done, want);
        TK_ASSERT(got <= want);
        for (size_t i = 0; i < got; i++) {
            if (w->done[i].cookie == EP_AUDIT_COOKIE) {
                ep_audit_done(w, w->done[i].result); /* no connection waits for it */
                continue;
            }
            done[n++] = (tk_server_done){
                .cookie = w->done[i].cookie,
                .result = w->done[i].result,
                .aux = w->done[i].changed,
            };
        }
        if (got < want) {
            break;
        }
    }
    return n;
}

static void app_respond(void *wctx, uint32_t tag, const tk_server_done *done, tk_outbuf *out)
{
    ep_worker *w = wctx;
    ep_req r = {.w = w, .out = out, .cookie = done->cookie, .tag = tag};
    unsigned kind = tag >> TAG_KIND_SHIFT;
    if (kind == TAG_REVOKE) {
        r.endpoint = EP_REVOKE;
        ep_revoke_respond(&r, done);
    } else {
        TK_ASSERT(kind >= TAG_EVENT_BASE && kind <= TAG_EVENT_BASE + 2);
        r.endpoint = EP_BACKCHANNEL + (int)(kind - TAG_EVENT_BASE);
        ep_event_respond(&r, done);
    }
    ep_metrics_request(w, r.endpoint, r.status, tag_elapsed_ns(tag, tk_mono_ns()));
}

static int app_request(void *wctx, const tk_http_request *req, tk_outbuf *out, uint64_t cookie,
                       uint32_t *tag)
{
    ep_worker *w = wctx;
    ep_req r = {
        .w = w,
        .http = req,
        .out = out,
        .cookie = cookie,
        .start_ns = tk_mono_ns(),
    };
    dispatch(&r);
    if (r.deferred) {
        bool event = r.endpoint >= EP_BACKCHANNEL && r.endpoint <= EP_WEBHOOK;
        unsigned kind =
            event ? TAG_EVENT_BASE + (unsigned)(r.endpoint - EP_BACKCHANNEL) : TAG_REVOKE;
        *tag = make_tag(kind, r.start_ns);
        return TK_SERVER_DEFERRED;
    }
    ep_metrics_request(w, r.endpoint, r.status, tk_mono_ns() - r.start_ns);
    return TK_SERVER_DONE;
}

/* ---- Life cycle ----------------------------------------------------------------------- */

static int load_resources(const tk_app *app, tk_resources **out)
{
    const char *path = app->cfg.cfg->resources_file;
    char err[512];
    int rc = tk_resources_load(path, out, err, sizeof err);
    if (rc != 0) {
        tk_log_error("resources_invalid", "error=\"%s\"", err);
        return rc;
    }
    tk_log_info("resources_loaded", "path=\"%s\" resources=%zu", path, tk_resources_count(*out));
    return 0;
}

int tk_app_create(const tk_app_cfg *cfg, tk_app **out)
{
    TK_ASSERT(cfg->cfg != NULL && cfg->store != NULL);
    unsigned n = cfg->workers;
    if (n == 0 || n > TK_WORKERS_MAX) {
        n = TK_WORKERS_MAX;
    }
    tk_app *app = calloc(1, sizeof *app);
    if (app == NULL) {
        return -ENOMEM;
    }
    size_t bytes = sizeof(ep_worker) * n;
    app->w = aligned_alloc(_Alignof(ep_worker), bytes);
    if (app->w == NULL) {
        free(app);
        return -ENOMEM;
    }
    memset(app->w, 0, bytes);
    app->cfg = *cfg;
    app->nworkers = n;
    unsigned depth = cfg->cfg->max_depth;
    app->core.max_depth = depth < TK_DEPTH_MAX ? depth : TK_DEPTH_MAX;
    for (unsigned i = 0; i < n; i++) {
        app->w[i].app = app;
        app->w[i].id = i;
        uint64_t seed = 0;
        if (tk_random_bytes(&seed, sizeof seed) != 0) {
            seed = tk_mono_ns(); /* the CSPRNG failed: still a per-process seed */
        }
        ep_rl_init(&app->w[i].rl, seed, cfg->cfg->auth_fail_burst);
    }
    if (cfg->cfg->resources_file[0] != '\0') {
        int rc = load_resources(app, &app->res);
        if (rc != 0) {
            free(app->w);
            free(app);
            return rc;
        }
    }
    *out = app;
    return 0;
}

int tk_app_reload_resources(tk_app *app)
{
    if (app->cfg.cfg->resources_file[0] == '\0') {
        return 0;
    }
    tk_resources *fresh = NULL;
    ep_retired *old = calloc(1, sizeof *old);
    int rc = old == NULL ? -ENOMEM : load_resources(app, &fresh);
    if (rc != 0) {
        free(old);
        return rc; /* the table in use stays */
    }
    old->res = __atomic_exchange_n(&app->res, fresh, __ATOMIC_ACQ_REL);
    old->next = app->retired;
    app->retired = old;
    return 0;
}

void tk_app_hooks(tk_app *app, tk_server_hooks *hooks)
{
    *hooks = (tk_server_hooks){
        .app = app,
        .worker_init = app_worker_init,
        .worker_fini = app_worker_fini,
        .wake_fd = app_wake_fd,
        .wake = app_wake,
        .respond = app_respond,
        .batch_begin = app_batch_begin,
        .request = app_request,
    };
}

void tk_app_destroy(tk_app *app)
{
    if (app == NULL) {
        return;
    }
    for (unsigned i = 0; i < app->nworkers; i++) {
        app_worker_fini(&app->w[i]);
    }
    while (app->retired != NULL) { /* bounded by the reloads done */
        ep_retired *next = app->retired->next;
        tk_resources_free(app->retired->res);
        free(app->retired);
        app->retired = next;
    }
    tk_resources_free(app->res);
    free(app->w);
    free(app);
}
