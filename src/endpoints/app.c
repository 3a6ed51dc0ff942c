/*
 * The application side of the server: per-worker contexts, the hooks the
 * io_uring loop calls and the router over the endpoint table (routes.c).
 * Handlers answer through reply.c; nothing here is called back by them.
 *
 * The one idea (docs/ARCHITECTURE.md §4): each worker keeps one long-lived LMDB read
 * transaction and renews it exactly once per batch of completions, after the
 * batch was harvested. A revocation's 200 is sent only after its commit, so
 * any request that arrives after that 200 is in a later batch, whose renewed
 * transaction sees the commit. Skipping the renewal would break that.
 *
 * Deferred requests (revocations and IdP events waiting for their commit)
 * carry their table row and start time in the 32-bit tag the server keeps
 * for us (ep_tag_make); the row's completion writes the answer.
 *
 * HEAD on the GET endpoints is answered as GET without the body (the
 * Content-Length of the GET answer is kept, as RFC 9110 §9.3.2 allows).
 */
#include "endpoints_int.h"
#include "tokend/ssf.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- Router ------------------------------------------------------------------------ */

static bool under(tk_slice path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (path.len < n || memcmp(path.p, prefix, n) != 0) {
        return false;
    }
    return path.len == n || path.p[n] == '/';
}

/* True when path can be neither a row's path nor under it, told from the
 * first two bytes: a path and every path under it share them. Most rows
 * fail here, without measuring their path. */
static bool differ_early(tk_slice path, const char *row)
{
    if (row[0] == '\0' || row[1] == '\0') {
        return false; /* a row path of fewer than two bytes: decide in full */
    }
    return path.len < 2 || path.p[0] != row[0] || path.p[1] != row[1];
}

/* The row for a path on a listener: an exact row, else the first prefix row
 * covering it, else the last row (every other path). Rows of another
 * listener do not exist here: their paths answer 404 like any unknown one. */
static unsigned route_of(tk_slice path, uint8_t listener)
{
    unsigned prefix = ep_nroutes - 1;
    for (unsigned i = 0; i + 1 < ep_nroutes; i++) {
        const ep_route *rt = &ep_routes[i];
        if (rt->listener != listener || differ_early(path, rt->path)) {
            continue;
        }
        if (!rt->prefix && tk_slice_eq_str(path, rt->path)) {
            return i;
        }
        if (rt->prefix && prefix == ep_nroutes - 1 && under(path, rt->path)) {
            prefix = i;
        }
    }
    return prefix;
}

static size_t append(char *out, size_t n, size_t cap, const char *s)
{
    size_t l = strlen(s);
    TK_ASSERT(n + l < cap);
    memcpy(out + n, s, l + 1);
    return n + l;
}

/* "Allow: GET, HEAD\r\n" and the like, from a row's method bits. */
static void allow_header(uint16_t methods, char *out, size_t cap)
{
    static const char *const names[] = {
        [TK_HTTP_GET] = "GET",    [TK_HTTP_HEAD] = "HEAD",     [TK_HTTP_POST] = "POST",
        [TK_HTTP_PUT] = "PUT",    [TK_HTTP_DELETE] = "DELETE", [TK_HTTP_OPTIONS] = "OPTIONS",
        [TK_HTTP_PATCH] = "PATCH"};
    const char *sep = "Allow: ";
    size_t n = 0;
    for (size_t m = 0; m < TK_ARRAY_LEN(names); m++) {
        if (names[m] != NULL && (methods & EP_METHOD(m))) {
            n = append(out, n, cap, sep);
            n = append(out, n, cap, names[m]);
            sep = ", ";
        }
    }
    append(out, n, cap, "\r\n");
}

static void dispatch(ep_req *r, unsigned row)
{
    const tk_http_request *h = r->http;
    const ep_route *rt = &ep_routes[row];
    r->route = rt;
    r->head = h->method == TK_HTTP_HEAD; /* no body on any answer to HEAD */
    if (rt->methods & EP_METHOD(h->method)) {
        rt->handle(r);
        return;
    }
    char allow[64];
    allow_header(rt->methods, allow, sizeof allow);
    ep_reply_error(r, 405, "method_not_allowed", allow);
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
    ep_mail_worker_open(w, true);
    return w;
}

static void app_worker_fini(void *wctx)
{
    ep_worker *w = wctx;
    ep_mail_worker_open(w, false); /* the outbound thread queues nothing more for us */
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
    if (w->hint.n > 0) {
        ep_hint_clear(w); /* a batch the server shows no receive (hint.c) */
    }
}

static void app_hint(void *wctx, const tk_server_hint *h, size_t n)
{
    ep_hint(wctx, h, n);
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
    bool changed = false;
    /* Bounded: each turn drains a full chunk or ends the loop, and the
     * committer holds at most queue_cap completions for us. */
    while (c != NULL && n < max) {
        size_t want = max - n < TK_DRAIN_CHUNK ? max - n : TK_DRAIN_CHUNK;
        size_t got = tk_committer_drain(c, w->id, w->done, want);
        TK_ASSERT(got <= want);
        for (size_t i = 0; i < got; i++) {
            if (w->done[i].cookie == EP_AUDIT_COOKIE) {
                ep_audit_done(w, w->done[i].result); /* no connection waits for it */
                continue;
            }
            if (w->done[i].cookie == EP_SSF_COOKIE) {
                continue; /* an SSF ack (ssf_push.c): the pusher re-acks what stays queued */
            }
            changed = changed || w->done[i].changed > 0;
            done[n++] = (tk_server_done){
                .cookie = w->done[i].cookie,
                .result = w->done[i].result,
                .aux = w->done[i].changed | (uint64_t)w->done[i].outcome << 32,
            };
        }
        if (got < want) {
            break;
        }
    }
    if (changed) { /* it may have queued SSF events: push them now, not at the next poll */
        tk_ssf_kick(__atomic_load_n(&w->app->ssf, __ATOMIC_ACQUIRE));
    }
    /* Code redemptions answered on the outbound thread (oidc.c, mail.c):
     * they wake us through the same eventfd. */
    if (n < max) {
        n += ep_oidc_wake(w, done + n, max - n);
    }
    if (n < max) { /* and Client ID Metadata Documents fetched (cimd.c) */
        n += ep_cimd_wake(w, done + n, max - n);
    }
    return n;
}

static void app_respond(void *wctx, uint32_t tag, const tk_server_done *done, tk_outbuf *out)
{
    ep_worker *w = wctx;
    unsigned row = ep_tag_row(tag);
    TK_ASSERT(row < ep_nroutes && ep_routes[row].complete != NULL);
    ep_req r = {.w = w, .out = out, .cookie = done->cookie, .route = &ep_routes[row]};
    r.route->complete(&r, done);
    ep_metrics_request(w, row, r.status, ep_tag_elapsed_ns(tag, tk_mono_ns()));
}

static void app_dropped(void *wctx, const tk_server_done *done)
{
    ep_as_dropped(wctx, done->cookie);
}

static void app_closed(void *wctx, uint64_t cookie)
{
    ep_auth_cache_closed(wctx, cookie);
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
    unsigned row = route_of(req->path, req->listener);
    dispatch(&r, row);
    if (r.deferred) {
        TK_ASSERT(r.route->complete != NULL); /* a row that defers has a completion */
        *tag = ep_tag_make(row, r.start_ns);
        return TK_SERVER_DEFERRED;
    }
    ep_metrics_request(w, row, r.status, tk_mono_ns() - r.start_ns);
    return TK_SERVER_DONE;
}

/* ---- Life cycle ----------------------------------------------------------------------- */

static int load_resources(const tk_app *app, tk_resources **out)
{
    const char *path = app->cfg.resources_file;
    char err[512];
    int rc = tk_resources_load(path, out, err, sizeof err);
    if (rc != 0) {
        tk_log_error("resources_invalid", "error=\"%s\"", err);
        return rc;
    }
    tk_log_info("resources_loaded", "path=\"%s\" resources=%zu", path, tk_resources_count(*out));
    return 0;
}

/* What tk_app_create sets up before anything can fail, freed. */
static void app_free(tk_app *app)
{
    pthread_mutex_destroy(&app->mail_mu);
    pthread_mutex_destroy(&app->oidc_mu);
    pthread_mutex_destroy(&app->authz_mu);
    pthread_mutex_destroy(&app->reg_mu);
    ep_dpop_seen_free(app->dpop_seen);
    free(app->w);
    free(app);
}

int tk_app_create(const tk_app_cfg *cfg, tk_app **out)
{
    TK_ASSERT(cfg->issuer != NULL && cfg->resources_file != NULL && cfg->metrics_token != NULL);
    TK_ASSERT(cfg->store != NULL);
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
    app->routes = ep_routes;
    app->nroutes = ep_nroutes;
    pthread_mutex_init(&app->reg_mu, NULL);
    pthread_mutex_init(&app->authz_mu, NULL);
    pthread_mutex_init(&app->oidc_mu, NULL);
    pthread_mutex_init(&app->mail_mu, NULL);
    uint64_t app_seed = 0;
    if (tk_random_bytes(&app_seed, sizeof app_seed) != 0) {
        app_seed = tk_mono_ns(); /* the CSPRNG failed: still a per-process seed */
    }
    ep_rl_init_per_minute(&app->reg_rl, app_seed, cfg->register_burst);
    ep_rl_init_per_minute(&app->authz_rl, app_seed ^ 0x9e3779b97f4a7c15ull, cfg->authorize_burst);
    if (ep_dpop_seen_new(cfg->dpop_rate != 0 ? cfg->dpop_rate : TK_DPOP_RATE_DEFAULT,
                         &app->dpop_seen) != 0) {
        app_free(app);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < TK_WORKERS_MAX; i++) {
        app->mail_wake_fd[i] = -1;
    }
    app->oidc_mail =
        (ep_mailbox){.app = app, .wake_failed = "oidc_wake_failed", .max = TK_OIDC_CALLS_MAX};
    app->cimd_mail =
        (ep_mailbox){.app = app, .wake_failed = "cimd_wake_failed", .max = TK_CIMD_CALLS_MAX};
    unsigned depth = cfg->max_depth;
    app->core.max_depth = depth < TK_DEPTH_MAX ? depth : TK_DEPTH_MAX;
    for (unsigned i = 0; i < n; i++) {
        app->w[i].app = app;
        app->w[i].id = i;
        uint64_t seed = 0;
        if (tk_random_bytes(&seed, sizeof seed) != 0) {
            seed = tk_mono_ns(); /* the CSPRNG failed: still a per-process seed */
        }
        ep_rl_init(&app->w[i].rl, seed, cfg->auth_fail_burst);
    }
    if (cfg->resources_file[0] != '\0') {
        int rc = load_resources(app, &app->res);
        if (rc != 0) {
            app_free(app);
            return rc;
        }
    }
    *out = app;
    return 0;
}

int tk_app_reload_resources(tk_app *app)
{
    if (app->cfg.resources_file[0] == '\0') {
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
        .dropped = app_dropped,
        .closed = app_closed,
        .batch_begin = app_batch_begin,
        .hint = app_hint,
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
        free(app->w[i].as_slots); /* allocated at the worker's first deferred AS answer */
    }
    while (app->retired != NULL) { /* bounded by the reloads done */
        ep_retired *next = app->retired->next;
        tk_resources_free(app->retired->res);
        free(app->retired);
        app->retired = next;
    }
    tk_resources_free(app->res);
    ep_oidc_fini(app);
    ep_mailbox_fini(&app->cimd_mail);
    app_free(app);
}

void tk_app_set_ssf(tk_app *app, struct tk_ssf *ssf)
{
    __atomic_store_n(&app->ssf, ssf, __ATOMIC_RELEASE);
}
