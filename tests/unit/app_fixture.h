/*
 * A real application for unit tests of the endpoints: an LMDB store in a
 * temporary folder seeded with three clients and one agent token, the app
 * with one worker (optionally a committer), and requests handed to the
 * server hooks exactly as the server would: raw bytes through the real
 * parser, the peer address filled in, the response read back from the out
 * buffer. Tests include endpoints_int.h to look at the worker's state.
 */
#ifndef TOKEND_TEST_APP_FIXTURE_H
#define TOKEND_TEST_APP_FIXTURE_H

#include "../../src/endpoints/endpoints_int.h"
#include "tokend/config.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FX_ISSUER "http://127.0.0.1:7662"
/* Two resource servers (so a test can tell which id was charged), an agent. */
#define FX_RS      "tkc_rs"
#define FX_RS_SEC  "tkd_cs_rs_secret"
#define FX_RS2     "tkc_rs2"
#define FX_RS2_SEC "tkd_cs_rs2_secret"
#define FX_AGENT   "tkc_agent"
#define FX_AGENT_S "tkd_cs_agent_secret"
#define FX_TOKEN   "tkd_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static tk_config fx_cfg;
static tk_store *fx_store;
static tk_committer *fx_committer;
static tk_app *fx_app;
static tk_server_hooks fx_hooks;
static ep_worker *fx_w;
static char fx_dir[64];
static char fx_outbuf[TK_CONN_OUT_MAX];
static tk_outbuf fx_out;
static tk_http_request fx_req;

#define FX_OK(e)                                                                                   \
    do {                                                                                           \
        if ((e) != 0) {                                                                            \
            fprintf(stderr, "%s:%d: fixture failed: %s\n", __FILE__, __LINE__, #e);                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline void fx_client(tk_txn *t, const char *id, const char *secret, uint8_t role)
{
    tk_client_rec c = {.role = role, .status = TK_CLIENT_APPROVED, .created = 1};
    c.name = tk_slice_from_str(id);
    tk_sha256(secret, strlen(secret), c.secret_hash);
    FX_OK(tk_store_put_client(t, tk_slice_from_str(id), &c, 0));
}

static inline void fx_seed(void)
{
    tk_txn *t;
    FX_OK(tk_store_write_begin(fx_store, &t));
    fx_client(t, FX_RS, FX_RS_SEC, TK_ROLE_RESOURCE_SERVER);
    fx_client(t, FX_RS2, FX_RS2_SEC, TK_ROLE_RESOURCE_SERVER);
    fx_client(t, FX_AGENT, FX_AGENT_S, TK_ROLE_AGENT);
    tk_session_rec s = {.sub = TK_SLICE_LIT("alice"), .state = TK_SESSION_ACTIVE, .created = 1};
    FX_OK(tk_store_put_session(t, TK_SLICE_LIT("tks_s1"), &s, 0));
    tk_grant_rec g = {.client_id = TK_SLICE_LIT(FX_AGENT),
                      .sub = TK_SLICE_LIT("alice"),
                      .sid = TK_SLICE_LIT("tks_s1"),
                      .scope = TK_SLICE_LIT("read"),
                      .state = TK_GRANT_ACTIVE,
                      .created = 1};
    FX_OK(tk_store_put_grant(t, TK_SLICE_LIT("tkg_g1"), &g, 0));
    tk_token_rec r = {.kind = TK_TOKEN_ACCESS,
                      .client_id = TK_SLICE_LIT(FX_AGENT),
                      .sub = TK_SLICE_LIT("alice"),
                      .sid = TK_SLICE_LIT("tks_s1"),
                      .grant_id = TK_SLICE_LIT("tkg_g1"),
                      .scope = TK_SLICE_LIT("read"),
                      .iat = 1,
                      .exp = TK_TIME_MAX};
    uint8_t h[TK_HASH_LEN];
    tk_sha256(FX_TOKEN, strlen(FX_TOKEN), h);
    FX_OK(tk_store_put_token(t, h, &r, 0));
    FX_OK(tk_store_commit(t));
}

/* burst: failed authentications before 429 (0 = no limit). */
static inline void fx_open(unsigned burst, bool committer)
{
    tk_log_set_level(TK_LOG_ERROR);
    snprintf(fx_dir, sizeof fx_dir, "/tmp/tokend-unit-app.XXXXXX");
    FX_OK(mkdtemp(fx_dir) == NULL);
    tk_store_opts so = {.dir = fx_dir, .map_size = 64u << 20};
    FX_OK(tk_store_open(&so, &fx_store));
    fx_seed();
    if (committer) {
        FX_OK(tk_committer_start(fx_store, 1, 64, &fx_committer));
    }
    tk_config_defaults(&fx_cfg);
    snprintf(fx_cfg.issuer, sizeof fx_cfg.issuer, "%s", FX_ISSUER);
    fx_cfg.auth_fail_burst = burst;
    tk_app_cfg ac = {.issuer = fx_cfg.issuer,
                     .resources_file = fx_cfg.resources_file,
                     .metrics_token = fx_cfg.metrics_token,
                     .max_depth = fx_cfg.max_depth,
                     .auth_fail_burst = fx_cfg.auth_fail_burst,
                     .store = fx_store,
                     .committer = fx_committer,
                     .workers = 1};
    FX_OK(tk_app_create(&ac, &fx_app));
    tk_app_hooks(fx_app, &fx_hooks);
    fx_w = fx_hooks.worker_init(fx_hooks.app, 0);
    FX_OK(fx_w == NULL);
    fx_hooks.batch_begin(fx_w);
}

static inline int fx_unlink(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fx_close(void)
{
    tk_app_destroy(fx_app); /* runs worker_fini */
    if (fx_committer != NULL) {
        tk_committer_stop(fx_committer);
        fx_committer = NULL;
    }
    tk_store_close(fx_store);
    nftw(fx_dir, fx_unlink, 8, FTW_DEPTH | FTW_PHYS);
}

/* The listener the next requests arrive on (enum tk_app_listener). */
static uint8_t fx_listener;

/*
 * Hand raw request bytes (one complete request) to the app from the peer
 * ::ffff:10.0.0.<peer>, on the listener fx_listener. Returns the status written (0 when deferred,
 * with *tag set); the response is in fx_out.
 */
static inline int fx_request_tagged(const char *raw, uint8_t peer, uint64_t cookie, uint32_t *tag)
{
    size_t len = strlen(raw);
    int n = tk_http_parse(raw, len, fx_cfg.max_body, &fx_req);
    FX_OK(n != (int)len);
    memset(fx_req.peer, 0, sizeof fx_req.peer);
    fx_req.peer[10] = fx_req.peer[11] = 0xff;
    fx_req.peer[12] = 10;
    fx_req.peer[15] = peer;
    fx_req.listener = fx_listener;
    fx_out = (tk_outbuf){.buf = fx_outbuf, .cap = sizeof fx_outbuf};
    uint32_t t = 0;
    int v = fx_hooks.request(fx_w, &fx_req, &fx_out, cookie, &t);
    if (v == TK_SERVER_DEFERRED) {
        FX_OK(fx_out.len != 0);
        *tag = t;
        return 0;
    }
    FX_OK(v != TK_SERVER_DONE || fx_out.len < 12);
    return (fx_out.buf[9] - '0') * 100 + (fx_out.buf[10] - '0') * 10 + (fx_out.buf[11] - '0');
}

static inline int fx_request(const char *raw, uint8_t peer, uint64_t cookie)
{
    uint32_t tag = 0;
    int status = fx_request_tagged(raw, peer, cookie, &tag);
    FX_OK(status == 0); /* this helper is for answers given at once */
    return status;
}

/* Every value of one response header in fx_out, joined by '|' ("" when
 * absent). */
static inline const char *fx_header(const char *name)
{
    static char val[1024];
    size_t n = 0, nl = strlen(name);
    const char *end = memmem(fx_out.buf, fx_out.len, "\r\n\r\n", 4);
    FX_OK(end == NULL);
    const char *p = memchr(fx_out.buf, '\n', fx_out.len);
    val[0] = '\0';
    while (p != NULL && p < end) {
        p++;
        const char *eol = memchr(p, '\r', (size_t)(end + 2 - p));
        if (eol == NULL) {
            break;
        }
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') {
                v++;
            }
            size_t l = (size_t)(eol - v);
            if (n > 0 && n + 1 < sizeof val) {
                val[n++] = '|';
            }
            if (n + l < sizeof val) {
                memcpy(val + n, v, l);
                n += l;
            }
            val[n] = '\0';
        }
        p = eol + 1;
    }
    return val;
}

/* The body of the response in fx_out, NUL-terminated. */
static inline const char *fx_body(void)
{
    static char body[TK_CONN_OUT_MAX + 1];
    const char *end = memmem(fx_out.buf, fx_out.len, "\r\n\r\n", 4);
    FX_OK(end == NULL);
    size_t n = fx_out.len - (size_t)(end + 4 - fx_out.buf);
    memcpy(body, end + 4, n);
    body[n] = '\0';
    return body;
}

#endif
