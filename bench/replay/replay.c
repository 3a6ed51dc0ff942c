/*
 * tokend-replay: the user-space work of an introspection, without sockets.
 * It opens a seeded store, creates the same application (endpoints) tokend
 * runs, and feeds it introspection requests exactly as the server does:
 * the batch hook once per batch of 16, then the hint hook with every
 * request's bytes (as the server hands it a batch's receives), then
 * tk_http_parse on each request and the request hook with a cookie of
 * (generation << 32 | slot) cycling over --conns connections. Under `valgrind --tool=callgrind` it
 * gives stable instruction counts per request on a shared, noisy machine (tokend itself cannot run
 * under valgrind: its io_uring waits block valgrind's scheduler).
 *
 * tokend-replay --data DIR --tokens FILE --client ID --secret S
 *               [--requests N] [--conns N] [--unknown F] [--map-size BYTES]
 *               [--prefault off|on] [--prefetch auto|on|off]
 * tokend-replay --mode auth --data DIR --tokens FILE --resources FILE [...]
 * Prints requests, answers by status and wall time per request.
 *
 * --mode auth feeds forward-auth instead: GET /auth with the token as
 * Bearer and the original request in X-Forwarded-Method/-Proto/-Host/-Uri
 * (GET https://mcp.bench/mcp, as tokend-bench forward-auth sends), with
 * --resources naming that resource; the tokens must have it as audience.
 */
#include "tokend/config.h"
#include "tokend/endpoints.h"
#include "tokend/http.h"
#include "tokend/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_LEN 50
#define BATCH     16
#define REQ_CAP   2048

typedef struct replay {
    const char *data, *tokens, *client, *secret;
    const char *mode;      /* introspect, or auth (forward-auth) */
    const char *resources; /* the resources file (auth) */
    long requests, conns;
    double unknown;
    uint64_t map_size;
    const char *prefault; /* off, or on: populate the map first, as tokend does at start */
    int prefetch;         /* --prefetch: enum tk_prefetch_mode, as tokend's config prefetch */
    char *map;
    size_t ntok;
    char authz[640];
    uint64_t rng;
} replay;

static uint64_t rnd(replay *r)
{
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545F4914F6CDD1DULL;
}

static int b64(const char *in, char *out, size_t cap)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        if (o + 5 > cap) {
            return -1;
        }
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        v |= i + 1 < n ? (uint32_t)(unsigned char)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? (uint32_t)(unsigned char)in[i + 2] : 0;
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
    return 0;
}

static int args(int argc, char **argv, replay *r)
{
    *r = (replay){.requests = 100000,
                  .conns = 64,
                  .unknown = 0.05,
                  .map_size = 1ull << 30,
                  .rng = 0x9e3779b97f4a7c15ull,
                  .prefault = "off",
                  .mode = "introspect",
                  .resources = ""};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--data") == 0) {
            r->data = v;
        } else if (strcmp(k, "--tokens") == 0) {
            r->tokens = v;
        } else if (strcmp(k, "--client") == 0) {
            r->client = v;
        } else if (strcmp(k, "--secret") == 0) {
            r->secret = v;
        } else if (strcmp(k, "--requests") == 0) {
            r->requests = atol(v);
        } else if (strcmp(k, "--conns") == 0) {
            r->conns = atol(v);
        } else if (strcmp(k, "--unknown") == 0) {
            r->unknown = atof(v);
        } else if (strcmp(k, "--map-size") == 0) {
            r->map_size = strtoull(v, NULL, 10);
        } else if (strcmp(k, "--mode") == 0) {
            if (strcmp(v, "introspect") && strcmp(v, "auth")) {
                return -1;
            }
            r->mode = v;
        } else if (strcmp(k, "--resources") == 0) {
            r->resources = v;
        } else if (strcmp(k, "--prefault") == 0) {
            if (strcmp(v, "off") && strcmp(v, "on")) {
                return -1;
            }
            r->prefault = v;
        } else if (strcmp(k, "--prefetch") == 0) {
            r->prefetch = !strcmp(v, "auto")  ? TK_PREFETCH_AUTO
                          : !strcmp(v, "on")  ? TK_PREFETCH_ON
                          : !strcmp(v, "off") ? TK_PREFETCH_OFF
                                              : -1;
            if (r->prefetch < 0) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    bool auth = strcmp(r->mode, "auth") == 0;
    if (!r->data || !r->tokens || r->requests <= 0 || r->conns <= 0) {
        return -1;
    }
    if (auth) {
        return r->resources[0] != '\0' ? 0 : -1;
    }
    if (!r->client || !r->secret) {
        return -1;
    }
    char raw[400], enc[560];
    snprintf(raw, sizeof raw, "%s:%s", r->client, r->secret);
    if (b64(raw, enc, sizeof enc) != 0) {
        return -1;
    }
    snprintf(r->authz, sizeof r->authz, "Authorization: Basic %s\r\n", enc);
    return 0;
}

static int map_tokens(replay *r)
{
    int fd = open(r->tokens, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < TOKEN_LEN + 1) {
        return -1;
    }
    r->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    r->ntok = (size_t)st.st_size / (TOKEN_LEN + 1);
    return r->map == MAP_FAILED ? -1 : 0;
}

static size_t make_request(replay *r, char *buf)
{
    char tok[TOKEN_LEN + 1];
    double u = (double)(rnd(r) >> 11) * 0x1p-53;
    if (u < r->unknown) {
        memcpy(tok, "tkd_at_", 7);
        for (int k = 7; k < TOKEN_LEN; k++) {
            tok[k] = (char)('a' + rnd(r) % 26);
        }
    } else {
        memcpy(tok, r->map + (rnd(r) % r->ntok) * (TOKEN_LEN + 1), TOKEN_LEN);
    }
    tok[TOKEN_LEN] = '\0';
    if (strcmp(r->mode, "auth") == 0) {
        return (size_t)snprintf(buf, REQ_CAP,
                                "GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                                "%s\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Proto: https\r\n"
                                "X-Forwarded-Host: mcp.bench\r\nX-Forwarded-Uri: /mcp\r\n\r\n",
                                tok);
    }
    return (size_t)snprintf(buf, REQ_CAP,
                            "POST /introspect HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: "
                            "application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                            "token=%s",
                            r->authz, TOKEN_LEN + 6, tok);
}

/* What the server does for one batch of requests: renew, then parse and
 * hand each to the application. Kept out of line so callgrind can be told
 * to count only this (--toggle-collect=serve_batch). */
__attribute__((noinline)) void serve_batch(const tk_server_hooks *h, void *wctx,
                                           char (*reqs)[REQ_CAP], const size_t *lens, size_t n,
                                           uint64_t *cookies, tk_outbuf *out, long *status);
__attribute__((noinline)) void serve_batch(const tk_server_hooks *h, void *wctx,
                                           char (*reqs)[REQ_CAP], const size_t *lens, size_t n,
                                           uint64_t *cookies, tk_outbuf *out, long *status)
{
    h->batch_begin(wctx);
    tk_server_hint hints[BATCH];
    for (size_t i = 0; i < n; i++) {
        hints[i] = (tk_server_hint){reqs[i], lens[i]};
    }
    h->hint(wctx, hints, n);
    for (size_t i = 0; i < n; i++) {
        tk_http_request req;
        int rc = tk_http_parse(reqs[i], lens[i], TK_HTTP_BODY_MAX, &req);
        if (rc <= 0) {
            status[0]++;
            continue;
        }
        req.listener = TK_APP_LISTENER_MAIN; /* the server fills it; the parser does not */
        out->len = 0;
        out->close = false;
        uint32_t tag = 0;
        h->request(wctx, &req, out, cookies[i], &tag);
        int code = out->len > 12 ? atoi(out->buf + 9) : 0;
        int kind = code == 200 ? 1 : code == 401 ? 2 : 3;
        if (kind != 1 && status[2] + status[3] == 0) { /* the first unexpected answer */
            fprintf(stderr, "tokend-replay: first non-200 answer: %.*s\n",
                    (int)(out->len < 400 ? out->len : 400), out->buf);
        }
        status[kind]++;
    }
}

int main(int argc, char **argv)
{
    static replay r;
    if (args(argc, argv, &r) != 0 || map_tokens(&r) != 0) {
        fprintf(stderr, "usage: tokend-replay --data DIR --tokens FILE --client ID --secret S "
                        "[--requests N] [--conns N] [--unknown F] [--map-size BYTES]\n"
                        "                     [--prefault off|on] [--prefetch auto|on|off]\n"
                        "       tokend-replay --mode auth --data DIR --tokens FILE --resources "
                        "FILE [same options]\n");
        return 2;
    }
    static tk_config cfg;
    tk_config_defaults(&cfg);
    snprintf(cfg.issuer, sizeof cfg.issuer, "http://127.0.0.1:7662");
    tk_store *store = NULL;
    tk_store_opts so = {.dir = r.data, .map_size = r.map_size};
    tk_app *app = NULL;
    tk_app_cfg acfg = {.issuer = cfg.issuer,
                       .resources_file = r.resources[0] ? r.resources : cfg.resources_file,
                       .metrics_token = cfg.metrics_token,
                       .max_depth = cfg.max_depth,
                       .auth_fail_burst = cfg.auth_fail_burst,
                       .workers = 1,
                       .prefetch = r.prefetch};
    if (tk_store_open(&so, &store) != 0 || (acfg.store = store, tk_app_create(&acfg, &app)) != 0) {
        fprintf(stderr, "tokend-replay: cannot open %s\n", r.data);
        return 1;
    }
    if (strcmp(r.prefault, "off") != 0) { /* as tokend does at start, but before timing */
        uint64_t bytes = 0;
        int prc = tk_store_prefault(store, NULL, &bytes);
        fprintf(stderr, "tokend-replay: prefault rc=%d bytes=%llu\n", prc,
                (unsigned long long)bytes);
    }
    tk_server_hooks h;
    tk_app_hooks(app, &h);
    void *wctx = h.worker_init(h.app, 0);
    static char reqs[BATCH][REQ_CAP], outb[TK_CONN_OUT_MAX];
    size_t lens[BATCH];
    uint64_t cookies[BATCH];
    long status[4] = {0, 0, 0, 0}, slot = 0;
    tk_outbuf out = {.buf = outb, .cap = sizeof outb};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long done = 0; done < r.requests; done += BATCH) {
        size_t n = r.requests - done < BATCH ? (size_t)(r.requests - done) : BATCH;
        for (size_t i = 0; i < n; i++) {
            lens[i] = make_request(&r, reqs[i]);
            cookies[i] = (7ull << 32) | (uint64_t)(slot++ % r.conns);
        }
        serve_batch(&h, wctx, reqs, lens, n, cookies, &out, status);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("requests %ld  200 %ld  401 %ld  other %ld  unparsed %ld  %.0f ns/request (wall, "
           "including request generation)\n",
           r.requests, status[1], status[2], status[3], status[0], ns / (double)r.requests);
    h.worker_fini(wctx);
    tk_app_destroy(app);
    tk_store_close(store);
    /* forward-auth answers an unknown token 401 */
    long good = status[1] + (strcmp(r.mode, "auth") == 0 ? status[2] : 0);
    return good == r.requests ? 0 : 1;
}
