/*
 * libFuzzer target for the request path behind the parser: the router, the
 * form and credential handling, caller authentication with its rate
 * limiter, introspection and revocation planning, metadata, health and
 * metrics, forward-auth (with a protected-resources file), and the
 * authorization server (/register, /authorize, /login, /consent, /token),
 * run against a real LMDB store seeded once with clients (one a registered
 * public agent), a session, a grant, tokens, a signed-in browser, a pending
 * authorization request and a code (their ids and secrets are in app.dict).
 * There is no committer, so a revocation (or any AS write) answers 503.
 *
 * Byte 0 picks the application (bit 7: rate limiting on or off), the
 * listener the requests arrive on (bit 3: the API or the metrics listener)
 * and the peer address (low bits); the rest is parsed as pipelined requests, each
 * handed to the application's hooks as the server would. Checks: every
 * request gets exactly one well-formed response (status line, headers,
 * Content-Length equal to the body, except for HEAD) with a status from
 * the documented set; nothing is ever deferred without a committer.
 * The rate limiter's buckets live across inputs (as in the daemon), so an
 * input that crashes only after others exhausted a bucket may need them to
 * reproduce; the bucket code itself is small and fixed-size.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/config.h"
#include "tokend/crypto.h"
#include "tokend/endpoints.h"
#include "tokend/http.h"
#include "tokend/log.h"
#include "tokend/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_OK(e) EXPECT((e) == 0)

static tk_config cfg[2];
static tk_store *store;
static tk_app *app[2];
static tk_server_hooks hooks[2];
static void *wctx[2];
static char outbuf[TK_CONN_OUT_MAX];
static tk_http_request req;
static bool print; /* FUZZ_APP_PRINT=1: print each status line (seed checks) */

static const char *const ids[3] = {"tkc_rs", "tkc_agent", "tkc_admin"};
static const char *const secrets[3] = {"tkd_cs_rs", "tkd_cs_agent", "tkd_cs_admin"};
static const uint8_t roles[3] = {TK_ROLE_RESOURCE_SERVER, TK_ROLE_AGENT, TK_ROLE_ADMIN};
static const char *const tokens[3] = {"tkd_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                      "tkd_at_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
                                      "tkd_rt_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"};

static const char resources_json[] =
    "{\"trusted_headers\": [\"X-Forwarded-Method\", \"X-Forwarded-Host\", \"X-Forwarded-Uri\"],"
    " \"resources\": [{\"resource\": \"https://wiki.test/\", \"scopes_supported\": [\"read\"],"
    " \"required_scopes\": {\"GET\": [\"read\"], \"*\": [\"write\"]}},"
    " {\"resource\": \"https://wiki.test/admin\", \"path_prefix\": \"/admin\"}]}";

static void write_resources(const char *dir, char *path, size_t cap)
{
    snprintf(path, cap, "%s/resources.json", dir);
    FILE *f = fopen(path, "w");
    EXPECT(f != NULL);
    EXPECT(fwrite(resources_json, 1, sizeof resources_json - 1, f) == sizeof resources_json - 1);
    EXPECT(fclose(f) == 0);
}

/* The authorization server's records: a registered public native agent,
 * a signed-in browser (cookie AS_COOKIE) on tks_s1, a pending request
 * bound to it, and an unused code. */
#define AS_COOKIE "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define AS_CODE   "CODEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void seed_as(tk_txn *t)
{
    tk_client_rec c = {.role = TK_ROLE_AGENT,
                       .status = TK_CLIENT_APPROVED,
                       .created = 1,
                       .name = TK_SLICE_LIT("<b>pub</b>"),
                       .redirect_uris = TK_SLICE_LIT("http://127.0.0.1/cb https://app.test/cb"),
                       .auth_method = 1,
                       .grant_types = 7,
                       .flags = TK_CLIENT_F_PUBLIC | TK_CLIENT_F_NATIVE | TK_CLIENT_F_DYNAMIC,
                       .delegate_to = TK_SLICE_LIT("tkc_agent")};
    memset(c.secret_hash, 0x5a, TK_HASH_LEN);
    SEED_OK(tk_store_put_client(t, TK_SLICE_LIT("tkc_pub"), &c, 0));
    uint8_t browser[TK_HASH_LEN];
    tk_sha256(AS_COOKIE, strlen(AS_COOKIE), browser);
    tk_browser_rec b = {.sid = TK_SLICE_LIT("tks_s1"), .created = 1, .exp = TK_TIME_MAX};
    SEED_OK(tk_store_put_browser(t, browser, &b, 0));
    tk_authreq_rec a = {.client_id = TK_SLICE_LIT("tkc_pub"),
                        .redirect_uri = TK_SLICE_LIT("http://127.0.0.1/cb"),
                        .state = TK_SLICE_LIT("st"),
                        .scope = TK_SLICE_LIT("read"),
                        .resource = TK_SLICE_LIT("https://wiki.test/"),
                        .has_browser = true,
                        .exp = TK_TIME_MAX,
                        .created = 1};
    memcpy(a.browser, browser, TK_HASH_LEN);
    SEED_OK(tk_store_put_authreq(t, TK_SLICE_LIT("tka_r1"), &a, 0));
    tk_code_rec code = {.client_id = TK_SLICE_LIT("tkc_pub"),
                        .redirect_uri = TK_SLICE_LIT("http://127.0.0.1/cb"),
                        .resource = TK_SLICE_LIT("https://wiki.test/"),
                        .scope = TK_SLICE_LIT("read"),
                        .sid = TK_SLICE_LIT("tks_s1"),
                        .sub = TK_SLICE_LIT("alice"),
                        .grant_id = TK_SLICE_LIT("tkg_g1"),
                        .exp = TK_TIME_MAX,
                        .created = 1};
    uint8_t h[TK_HASH_LEN];
    tk_sha256(AS_CODE, strlen(AS_CODE), h);
    SEED_OK(tk_store_put_code(t, h, &code, 0));
}

static void seed_store(void)
{
    tk_txn *t;
    SEED_OK(tk_store_write_begin(store, &t));
    for (int i = 0; i < 3; i++) {
        tk_client_rec c = {.role = roles[i], .status = TK_CLIENT_APPROVED, .created = 1};
        c.name = tk_slice_from_str(ids[i]);
        tk_sha256(secrets[i], strlen(secrets[i]), c.secret_hash);
        SEED_OK(tk_store_put_client(t, tk_slice_from_str(ids[i]), &c, 0));
    }
    tk_session_rec s = {.sub = TK_SLICE_LIT("alice"), .state = TK_SESSION_ACTIVE, .created = 1};
    SEED_OK(tk_store_put_session(t, TK_SLICE_LIT("tks_s1"), &s, 0));
    tk_grant_rec g = {.client_id = TK_SLICE_LIT("tkc_agent"),
                      .sub = TK_SLICE_LIT("alice"),
                      .sid = TK_SLICE_LIT("tks_s1"),
                      .scope = TK_SLICE_LIT("read write"),
                      .state = TK_GRANT_ACTIVE,
                      .created = 1};
    SEED_OK(tk_store_put_grant(t, TK_SLICE_LIT("tkg_g1"), &g, 0));
    uint8_t parent[TK_HASH_LEN];
    for (int i = 0; i < 3; i++) {
        tk_token_rec r = {.kind = i == 2 ? TK_TOKEN_REFRESH : TK_TOKEN_ACCESS,
                          .client_id = TK_SLICE_LIT("tkc_agent"),
                          .sub = TK_SLICE_LIT("alice"),
                          .sid = TK_SLICE_LIT("tks_s1"),
                          .grant_id = TK_SLICE_LIT("tkg_g1"),
                          .scope = TK_SLICE_LIT("read"),
                          .iat = 1,
                          .exp = TK_TIME_MAX};
        if (i == 0) {
            r.aud = TK_SLICE_LIT("https://wiki.test/");
        }
        if (i == 1) {
            r.has_parent = true;
            memcpy(r.parent, parent, TK_HASH_LEN);
        }
        uint8_t h[TK_HASH_LEN];
        tk_sha256(tokens[i], strlen(tokens[i]), h);
        if (i == 0) {
            memcpy(parent, h, TK_HASH_LEN);
        }
        SEED_OK(tk_store_put_token(t, h, &r, 0));
    }
    seed_as(t);
    SEED_OK(tk_store_commit(t));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tk_log_set_level(TK_LOG_ERROR);
    print = getenv("FUZZ_APP_PRINT") != NULL;
    char dir[] = "/tmp/tokend-fuzz-app.XXXXXX";
    EXPECT(mkdtemp(dir) != NULL);
    tk_store_opts so = {.dir = dir, .map_size = 64u << 20};
    SEED_OK(tk_store_open(&so, &store));
    seed_store();
    for (int i = 0; i < 2; i++) {
        tk_config_defaults(&cfg[i]);
        snprintf(cfg[i].issuer, sizeof cfg[i].issuer, "http://127.0.0.1:7662");
        cfg[i].auth_fail_burst = i == 0 ? 0 : 3;
        if (i == 1) { /* the metrics listener asks this one for a bearer */
            snprintf(cfg[i].metrics_token, sizeof cfg[i].metrics_token, "fuzz-metrics-token-0123");
        }
        write_resources(dir, cfg[i].resources_file, sizeof cfg[i].resources_file);
        tk_keys_holder *keys = NULL; /* the second app signs (RFC 9701, /jwks.json) */
        if (i == 1) {
            tk_keyset *ks = NULL;
            char err[256];
            SEED_OK(tk_keys_load(dir, true, 1000, &ks, err, sizeof err));
            SEED_OK(tk_keys_holder_new(ks, &keys));
        }
        tk_app_cfg ac = {.issuer = cfg[i].issuer,
                         .resources_file = cfg[i].resources_file,
                         .metrics_token = cfg[i].metrics_token,
                         .max_depth = cfg[i].max_depth,
                         .auth_fail_burst = cfg[i].auth_fail_burst,
                         .registration = i == 0 ? TK_REGISTRATION_OPEN : TK_REGISTRATION_APPROVAL,
                         .login = i == 0 ? TK_LOGIN_DEV : TK_LOGIN_OFF,
                         .access_ttl = cfg[i].access_ttl,
                         .refresh_ttl = cfg[i].refresh_ttl,
                         .session_ttl = cfg[i].session_ttl,
                         .code_ttl = cfg[i].code_ttl,
                         .authorize_ttl = cfg[i].authorize_ttl,
                         .refresh_reuse_window = cfg[i].refresh_reuse_window,
                         .register_burst = 4,
                         .authorize_burst = 4,
                         .authorize_pending_max = 64,
                         .store = store,
                         .committer = NULL,
                         .keys = keys,
                         .signing_overlap = 3600,
                         .workers = 1};
        SEED_OK(tk_app_create(&ac, &app[i]));
        tk_app_hooks(app[i], &hooks[i]);
        wctx[i] = hooks[i].worker_init(hooks[i].app, 0);
        EXPECT(wctx[i] != NULL);
    }
    return 0;
}

static bool status_ok(int s)
{
    static const int ok[] = {200, 201, 202, 303, 400, 401, 403, 404, 405, 409, 429, 500, 503};
    for (size_t i = 0; i < TK_ARRAY_LEN(ok); i++) {
        if (s == ok[i]) {
            return true;
        }
    }
    return false;
}

/* One complete response in out[0..len), Content-Length framed. */
static void check_response(const char *out, size_t len, bool head)
{
    EXPECT(len > 13 && memcmp(out, "HTTP/1.1 ", 9) == 0);
    int status = (out[9] - '0') * 100 + (out[10] - '0') * 10 + (out[11] - '0');
    EXPECT(status_ok(status));
    const char *end = memmem(out, len, "\r\n\r\n", 4);
    EXPECT(end != NULL);
    size_t hlen = (size_t)(end - out) + 4;
    const char *cl = memmem(out, hlen, "\r\nContent-Length: ", 18);
    EXPECT(cl != NULL);
    size_t n = (size_t)strtoul(cl + 18, NULL, 10);
    EXPECT(head ? len == hlen : len == hlen + n);
    EXPECT(memmem(out, hlen, "\r\nCache-Control: no-store", 25) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    int a = data[0] >> 7;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    hooks[a].batch_begin(wctx[a]);
    for (unsigned k = 0; k < 8 && len > 0; k++) {
        int r = tk_http_parse(buf, len, cfg[a].max_body, &req);
        if (r <= 0) {
            break;
        }
        memset(req.peer, 0, sizeof req.peer);
        req.peer[10] = req.peer[11] = 0xff;
        req.peer[15] = (uint8_t)(data[0] & 0x07);
        req.listener = (data[0] & 0x08) ? TK_APP_LISTENER_METRICS : TK_APP_LISTENER_MAIN;
        tk_outbuf out = {.buf = outbuf, .cap = sizeof outbuf, .len = 0, .close = !req.keep_alive};
        uint32_t tag = 0;
        int v = hooks[a].request(wctx[a], &req, &out, k, &tag);
        EXPECT(v == TK_SERVER_DONE);
        check_response(out.buf, out.len, req.method == TK_HTTP_HEAD);
        if (print) {
            fprintf(stderr, "%.*s\n", (int)(memchr(out.buf, '\r', out.len) - (void *)out.buf),
                    out.buf);
        }
        buf += r;
        len -= (size_t)r;
    }
    return 0;
}
