/*
 * Clients known by a Client ID Metadata Document (draft-ietf-oauth-client-
 * id-metadata-document): a client_id that is an https URL names a JSON
 * document (RFC 7591 metadata) that tokend fetches, checks and keeps as a
 * client in the registry, under the registration policy. The pure rules
 * are src/oauth/cimd.c's; this file is the fetch, the cache and the policy.
 *
 * 1. /authorize with such a client_id (ep_cimd_authorize): the URL is
 *    checked and mapped to its store key ("tkm_…", oauth_cimd.h). A stored
 *    client whose document is still trusted (metadata_until) goes on at
 *    once; any other is fetched on the outbound thread (public addresses
 *    only unless its host is in cimd-private-hosts; no redirects; at most
 *    TK_CIMD_DOC_MAX bytes) and the request is deferred: the worker never
 *    waits.
 * 2. The answer comes back the way a code redemption's does (oidc.c), as
 *    the worker's mail (mail.c, tk_app.cimd_mail): the outbound callback
 *    queues it and writes the worker's committer eventfd; app_wake drains
 *    it here (ep_cimd_wake).
 *    A refused document completes the request at once with an error page
 *    (a positive result naming the reason: never a redirect, the redirect
 *    URIs are not verified). A good one becomes a client record (pending,
 *    or approved under registration = open or for a host in
 *    cimd-approve-hosts), submitted as a PUT_NEW op that replaces an older
 *    copy of the same client but keeps its standing (record.h); once it is
 *    durable the browser is sent back to the very same /authorize request
 *    (303), which now finds the client in the store.
 * 3. /token names the client by the same URL (ep_cimd_store_id): never a
 *    fetch there, since a client with codes or tokens was fetched first.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/oauth_cimd.h"
#include "tokend/outbound.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGAIN_MAX 6144 /* "/authorize?" + the original query, for the 303 back */

/* A document fetch in flight (heap): filled on the outbound thread by
 * on_doc, finished by the worker. */
typedef struct ep_cimd_call {
    ep_mail mail; /* first: the worker and the answer */
    bool approve; /* the host is in cimd-approve-hosts */
    char url[TK_CIMD_URL_MAX + 1];
    char key[TK_CIMD_KEY_LEN + 1];
    char again[AGAIN_MAX]; /* carries the request's state and challenge: cleansed */
    size_t again_len;
    bool json;        /* Content-Type is JSON */
    bool has_max_age; /* Cache-Control max-age (no-store, no-cache: 0) */
    int64_t max_age;
} ep_cimd_call;

/* Why a document was refused: the error page of the completion (result is
 * 1 + the index; the document's own reason travels in aux, a static string). */
enum fail {
    F_UNAVAILABLE = 0,
    F_UNREACHABLE,
    F_PRIVATE,
    F_REDIRECT,
    F_TOO_BIG,
    F_STATUS,
    F_TYPE,
    F_DOCUMENT,
    F_COUNT
};

static const struct {
    int status;
    const char *desc;
} fails[F_COUNT] = {
    [F_UNAVAILABLE] = {503, "Try again in a moment."},
    [F_UNREACHABLE] = {502, "The client's metadata document could not be fetched (no answer in "
                            "time, no connection or a TLS failure)."},
    [F_PRIVATE] = {403, "The client's metadata URL leads to a private, loopback or otherwise "
                        "non-public address, which this server does not fetch."},
    [F_REDIRECT] = {403, "The client's metadata URL answered with a redirect; a metadata "
                         "document must be served at its URL itself."},
    [F_TOO_BIG] = {403, "The client's metadata document is larger than this server accepts."},
    [F_STATUS] = {403, "The client's metadata URL did not answer 200 OK."},
    [F_TYPE] = {403, "The client's metadata document is not served as JSON (Content-Type)."},
    [F_DOCUMENT] = {403, "The client's metadata document was refused"},
};

/* ---- Store ids ---------------------------------------------------------------- */

tk_slice ep_cimd_store_id(tk_slice presented, char key[TK_CIMD_KEY_LEN + 1])
{
    if (tk_oauth_cimd_is_key(presented)) {
        return TK_SLICE_NULL; /* such a client is named by its URL, never by its key */
    }
    if (!tk_oauth_cimd_candidate(presented)) {
        return presented;
    }
    tk_slice host;
    const char *why;
    if (tk_oauth_cimd_url_check(presented, &host, &why) != 0) {
        return TK_SLICE_NULL;
    }
    tk_oauth_cimd_key(presented, key);
    return (tk_slice){key, TK_CIMD_KEY_LEN};
}

/* ---- The fetch ------------------------------------------------------------------ */

_Static_assert(offsetof(ep_cimd_call, mail) == 0, "a call starts with its mail");

/* On the outbound thread: take what the worker needs of the headers (they
 * die with the response), then post the answer to the worker. */
static void on_doc(void *arg, const tk_outbound_resp *resp)
{
    ep_cimd_call *c = arg;
    c->json = tk_oauth_cimd_json_type(tk_outbound_header(resp, "Content-Type"));
    c->has_max_age =
        tk_outbound_max_age(tk_outbound_header(resp, "Cache-Control"), &c->max_age) == 0;
    ep_mail_post(&c->mail, resp);
}

/* Submit the fetch of url for this request; 0 (the request is deferred)
 * or an error (nothing submitted). */
static int fetch(ep_req *r, tk_slice url, tk_slice host, tk_slice query, const char *key)
{
    ep_worker *w = r->w;
    tk_app *app = w->app;
    static const char path[] = "/authorize";
    size_t need = sizeof path + 1;
    for (size_t i = 0; i < query.len; i++) {
        unsigned char b = (unsigned char)query.p[i];
        need += b > 0x20 && b < 0x7f ? 1 : 3;
    }
    if (need > AGAIN_MAX) {
        return TK_E_TOOBIG;
    }
    ep_cimd_call *c = ep_mail_new(&app->cimd_mail, sizeof *c, w, r->cookie);
    if (c == NULL) {
        return -ENOMEM;
    }
    c->approve = tk_oauth_cimd_host_listed(host, app->cfg.cimd_approve_hosts);
    memcpy(c->url, url.p, url.len);
    memcpy(c->key, key, TK_CIMD_KEY_LEN + 1);
    memcpy(c->again, path, sizeof path - 1);
    c->again_len = sizeof path - 1;
    if (query.len > 0) {
        /* A POSTed form may hold raw bytes a Location must not: %XX decodes the same. */
        static const char hex[] = "0123456789ABCDEF";
        c->again[c->again_len++] = '?';
        for (size_t i = 0; i < query.len; i++) {
            unsigned char b = (unsigned char)query.p[i];
            if (b > 0x20 && b < 0x7f) {
                c->again[c->again_len++] = (char)b;
            } else {
                c->again[c->again_len++] = '%';
                c->again[c->again_len++] = hex[b >> 4];
                c->again[c->again_len++] = hex[b & 15];
            }
        }
    }
    tk_outbound_req req = {
        .purpose = TK_OB_CLIENT_METADATA,
        .method = TK_OB_GET,
        .url = c->url,
        .accept = "application/json",
        .public_only = !tk_oauth_cimd_host_listed(host, app->cfg.cimd_private_hosts),
        .max_bytes = TK_CIMD_DOC_MAX,
        .timeout_ms = TK_CIMD_TIMEOUT_MS,
        .cb = on_doc,
        .cb_arg = c,
    };
    int rc = ep_mail_submit(&c->mail, &req); /* c is freed on failure */
    if (rc != 0) {
        return rc;
    }
    char safe[65];
    ep_log_id(url, safe);
    tk_log_info("cimd_fetch", "url=%s private_ok=%s", safe, req.public_only ? "no" : "yes");
    return 0;
}

ep_step ep_cimd_authorize(ep_req *r, tk_txn *txn, tk_slice query, tk_slice *client_id,
                          char key[TK_CIMD_KEY_LEN + 1])
{
    ep_worker *w = r->w;
    const tk_app_cfg *cfg = &w->app->cfg;
    tk_slice id = *client_id;
    if (tk_oauth_cimd_is_key(id)) {
        ep_reply_error_page(r, 400, "invalid_request", "unknown client_id");
        return EP_STEP_ANSWERED;
    }
    if (!tk_oauth_cimd_candidate(id)) {
        return EP_STEP_ON;
    }
    tk_slice host;
    const char *why;
    if (tk_oauth_cimd_url_check(id, &host, &why) != 0) {
        ep_reply_error_page(r, 400, "invalid_client", why);
        return EP_STEP_ANSWERED;
    }
    tk_oauth_cimd_key(id, key);
    *client_id = (tk_slice){key, TK_CIMD_KEY_LEN};
    tk_client_rec c;
    int rc = tk_store_get_client(txn, *client_id, &c);
    if (rc == 0 && (c.status == TK_CLIENT_DISABLED || c.metadata_until > w->now)) {
        return EP_STEP_ON; /* trusted still (or disabled: nothing to fetch for) */
    }
    if (rc != 0 && rc != TK_E_NOTFOUND && rc != TK_E_CORRUPT) {
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return EP_STEP_ANSWERED;
    }
    if (rc != 0 && cfg->registration == TK_REGISTRATION_CLOSED &&
        !tk_oauth_cimd_host_listed(host, cfg->cimd_approve_hosts)) {
        ep_reply_error_page(r, 403, "access_denied", "This server accepts no new clients.");
        return EP_STEP_ANSWERED;
    }
    if (rc != 0 && ep_register_over_burst(w, r->http->peer)) {
        /* a new client, as a registration: register-burst per address and minute */
        tk_log_warn("cimd_rate_limited", "burst=%u", cfg->register_burst);
        ep_reply_error_page(r, 429, "temporarily_unavailable",
                            "Too many new clients from this address. Try again in a minute.");
        return EP_STEP_ANSWERED;
    }
    rc = fetch(r, id, host, query, key);
    if (rc != 0) {
        tk_log_warn("cimd_fetch_unavailable", "err=%s", tk_strerror(rc));
        ep_reply_error_page(r, 503, "temporarily_unavailable", "Try again in a moment.");
        return EP_STEP_ANSWERED;
    }
    r->deferred = true;
    return EP_STEP_ANSWERED;
}

/* ---- The answer ----------------------------------------------------------------------- */

static enum fail transfer_fail(const ep_cimd_call *c)
{
    switch (c->mail.result) {
    case TK_OB_OK:
        return c->mail.status != 200 ? F_STATUS : !c->json ? F_TYPE : F_COUNT;
    case TK_OB_REFUSED_ADDRESS:
        return F_PRIVATE;
    case TK_OB_REDIRECT:
        return F_REDIRECT;
    case TK_OB_TOO_BIG:
        return F_TOO_BIG;
    case TK_OB_HTTP_ERROR:
        return F_STATUS;
    default:
        return F_UNREACHABLE;
    }
}

typedef struct cimd_state {
    tk_oauth_client_meta meta;
    char redirects[TK_CLIENT_REDIRECTS_MAX];
} cimd_state;

static _Thread_local cimd_state cs;

/* The client record of a good document, submitted with the 303 back to
 * /authorize parked for its completion. */
static enum fail store_client(ep_worker *w, const ep_cimd_call *c)
{
    const tk_app_cfg *cfg = &w->app->cfg;
    const tk_oauth_client_meta *m = &cs.meta;
    int64_t ttl = c->has_max_age ? c->max_age : cfg->cimd_cache_min;
    ttl = ttl < cfg->cimd_cache_min ? cfg->cimd_cache_min : ttl;
    ttl = ttl > cfg->cimd_cache_max ? cfg->cimd_cache_max : ttl;
    bool approve = c->approve || cfg->registration == TK_REGISTRATION_OPEN;
    tk_client_rec rec = {
        .role = TK_ROLE_AGENT,
        .status = approve ? TK_CLIENT_APPROVED : TK_CLIENT_PENDING,
        .created = w->now,
        .name = tk_slice_from_str(m->client_name),
        .scope = tk_slice_from_str(m->scope),
        .redirect_uris = {cs.redirects,
                          tk_oauth_redirects_join(m, cs.redirects, sizeof cs.redirects)},
        .auth_method = TK_OAUTH_AUTH_NONE + 1,
        .grant_types = (uint8_t)m->grant_types,
        .flags = (uint8_t)(TK_CLIENT_F_DYNAMIC | TK_CLIENT_F_PUBLIC |
                           (m->native ? TK_CLIENT_F_NATIVE : 0)),
        .software_id = tk_slice_from_str(m->software_id),
        .metadata_url = tk_slice_from_str(c->url),
        .metadata_until = w->now + ttl,
    };
    uint8_t *buf = malloc(TK_RECORD_MAX);
    size_t len = 0;
    if (buf == NULL || tk_random_bytes(rec.secret_hash, TK_HASH_LEN) != 0 ||
        tk_record_encode_client(&rec, buf, TK_RECORD_MAX, &len) != 0) {
        free(buf);
        return F_UNAVAILABLE;
    }
    tk_commit_req creq = {.nops = 1};
    creq.ops[0] = tk_op_make(TK_OP_PUT_NEW, w->now);
    creq.ops[0].put_new.db = TK_OP_DB_CLIENT;
    creq.ops[0].put_new.metadata = true;
    TK_ASSERT(tk_op_id_set(&creq.ops[0].put_new.key, tk_slice_from_str(c->key)) == 0);
    creq.ops[0].put_new.rec = buf;
    creq.ops[0].put_new.len = (uint16_t)len;
    char hdr[AGAIN_MAX + 32];
    size_t n = ep_as_location(hdr, sizeof hdr, (tk_slice){c->again, c->again_len}, NULL);
    if (n == 0) {
        tk_commit_req_release(&creq);
        return F_UNAVAILABLE;
    }
    int rc = ep_as_park(w, c->mail.cookie, &creq, 303, NULL, (tk_slice){hdr, n}, TK_SLICE_NULL);
    tk_cleanse(hdr, sizeof hdr);
    char safe[65];
    ep_log_id(tk_slice_from_str(c->url), safe);
    tk_log_info("cimd_client", "url=%s client=%s status=%s ttl=%lld", safe, c->key,
                tk_client_status_name(rec.status), (long long)ttl);
    return rc == 0 ? F_COUNT : F_UNAVAILABLE;
}

/* F_COUNT when the client was submitted (its commit completes the
 * request), else why the document was refused (*why: the parser's reason). */
static enum fail finish(ep_worker *w, const ep_cimd_call *c, const char **why)
{
    char safe[65];
    ep_log_id(tk_slice_from_str(c->url), safe);
    enum fail f = transfer_fail(c);
    if (f == F_COUNT && c->mail.body == NULL) {
        f = c->mail.body_len == 0 && c->mail.result == TK_OB_OK ? F_DOCUMENT : F_UNAVAILABLE;
    }
    tk_oauth_err err = {TK_OAUTH_OK, ""};
    if (f == F_COUNT && tk_oauth_cimd_parse(c->mail.body, c->mail.body_len,
                                            tk_slice_from_str(c->url), &cs.meta, &err) != 0) {
        f = F_DOCUMENT;
        *why = err.description;
    } else if (f == F_DOCUMENT) {
        *why = "the document is empty";
    }
    if (f != F_COUNT) {
        tk_log_warn("cimd_refused", "url=%s result=%s status=%d why=\"%s\" detail=\"%s\"", safe,
                    tk_outbound_result_name(c->mail.result), c->mail.status, fails[f].desc,
                    *why != NULL ? *why : c->mail.error);
        return f;
    }
    return store_client(w, c);
}

size_t ep_cimd_wake(ep_worker *w, tk_server_done *done, size_t max)
{
    tk_app *app = w->app;
    size_t n = 0;
    /* Bounded by the worker's fetches in flight (TK_CIMD_CALLS_MAX). */
    while (n < max) {
        ep_cimd_call *c = (ep_cimd_call *)ep_mail_take(&app->cimd_mail, w->id);
        if (c == NULL) {
            break;
        }
        const char *why = NULL;
        enum fail f = finish(w, c, &why);
        if (f != F_COUNT) {
            done[n++] = (tk_server_done){.cookie = c->mail.cookie,
                                         .result = 1 + (int64_t)f,
                                         .aux = (uint64_t)(uintptr_t)why};
        }
        ep_mail_free(&c->mail);
    }
    return n;
}

bool ep_cimd_done(ep_req *r, const tk_server_done *done)
{
    if (done->result <= 0 || done->result > F_COUNT) {
        return false;
    }
    unsigned f = (unsigned)(done->result - 1);
    const char *why = (const char *)(uintptr_t)done->aux; /* a static string, or NULL */
    if (f == F_DOCUMENT && why != NULL) {
        char desc[512];
        snprintf(desc, sizeof desc, "%s: %s.", fails[f].desc, why);
        ep_reply_error_page(r, fails[f].status, "invalid_client", desc);
        return true;
    }
    ep_reply_error_page(r, fails[f].status,
                        f == F_UNAVAILABLE ? "temporarily_unavailable" : "invalid_client",
                        fails[f].desc);
    return true;
}
