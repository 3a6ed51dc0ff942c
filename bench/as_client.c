/*
 * The authorization server seen from the bench: the resources file and tokend
 * options it needs, a small blocking HTTP client for the setup steps
 * (register, dev sign-in, consent), and the loads that mint authorization
 * codes through the real /authorize flow and redeem them into token pairs.
 *
 * One agent (a public client) is signed in once as user "bench" and approves
 * once; afterwards /authorize answers at once with a 303 carrying a code (the
 * consent is remembered), so codes are minted with keep-alive GETs just
 * before the timed run (they are single use and live --code-ttl 600 s).
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define AS_REDIRECT_ENC "http%3A%2F%2F127.0.0.1%3A8765%2Fcb"
#define AS_VERIFIER     "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"

static const char resources_doc[] =
    "{\"resources\":[{\"resource\":\"" AS_RESOURCE "\",\"name\":\"bench MCP server\","
    "\"scopes_supported\":[\"mcp:read\",\"mcp:write\"]}]}\n";

int as_prepare(const char *data_dir)
{
    return as_prepare_with(data_dir, "");
}

int as_prepare_with(const char *data_dir, const char *more)
{
    char path[400], args[600];
    snprintf(path, sizeof path, "%s/resources.json", data_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(resources_doc, f) < 0) {
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    if (fclose(f) != 0) {
        return -1;
    }
    /* Codes are minted through /authorize from one address, thousands a second. */
    snprintf(args, sizeof args,
             "--login dev --registration open --code-ttl 600 --authorize-burst 0 "
             "--authorize-pending-max 1000000 --resources %s %s",
             path, more);
    bench_tokend_extra(args);
    return 0;
}

/* ---- A blocking HTTP/1.1 exchange ----------------------------------------------------------- */

int http_call(uint16_t port, const char *req, size_t req_len, http_answer *a)
{
    memset(a, 0, sizeof *a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : -errno;
    for (size_t off = 0; rc == 0 && off < req_len;) { /* bounded by req_len */
        ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = -EIO;
            break;
        }
        off += (size_t)n;
    }
    size_t cl = 0;
    for (int k = 0; rc == 0 && k < 1024; k++) { /* receives per answer */
        ssize_t n = recv(fd, a->buf + a->len, sizeof a->buf - 1 - a->len, 0);
        if (n < 0 && errno == EINTR) {
            continue; /* a stop and continue interrupts a receive with a timeout */
        }
        if (n <= 0) {
            rc = -EIO;
            break;
        }
        a->len += (size_t)n;
        a->buf[a->len] = '\0';
        const char *end = strstr(a->buf, "\r\n\r\n");
        if (end == NULL) {
            continue;
        }
        a->head_len = (size_t)(end - a->buf) + 4;
        const char *clh = http_header(a, "Content-Length", &cl);
        cl = clh ? (size_t)strtoul(clh, NULL, 10) : 0;
        if (a->len >= a->head_len + cl) {
            break;
        }
    }
    close(fd);
    if (rc == 0 && (a->head_len == 0 || a->len < 12 || memcmp(a->buf, "HTTP/1.", 7) != 0)) {
        rc = -EPROTO;
    }
    if (rc == 0) {
        a->status = atoi(a->buf + 9);
        a->body = a->buf + a->head_len;
    }
    return rc;
}

const char *head_find(const char *head, size_t head_len, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *p = head; p < head + head_len;) { /* bounded by the head */
        const char *eol = memmem(p, (size_t)(head + head_len - p), "\r\n", 2);
        if (eol == NULL) {
            break;
        }
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ') {
                v++;
            }
            *len = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

const char *http_header(const http_answer *a, const char *name, size_t *len)
{
    return head_find(a->buf, a->head_len, name, len);
}

/* The value of <input name="NAME" value="…"> in a page. */
static int form_value(const char *page, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "name=\"%s\" value=\"", name);
    const char *p = strstr(page, pat);
    const char *q = p ? strchr(p + strlen(pat), '"') : NULL;
    if (q == NULL || (size_t)(q - p - (long)strlen(pat)) >= cap) {
        return -1;
    }
    p += strlen(pat);
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return 0;
}

/* A query parameter's value in a URL or form (up to & or the end). */
int param_value(const char *s, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 1 < len; i++) {
        if ((i == 0 || s[i - 1] == '?' || s[i - 1] == '&') && memcmp(s + i, name, nl) == 0 &&
            s[i + nl] == '=') {
            size_t b = i + nl + 1, e = b;
            while (e < len && s[e] != '&' && s[e] != '\r' && s[e] != '\n') {
                e++;
            }
            if (e - b >= cap || e == b) {
                return -1;
            }
            memcpy(out, s + b, e - b);
            out[e - b] = '\0';
            return 0;
        }
    }
    return -1;
}

/* The Cookie header line of the agent's browser ("" when it holds none). */
static void cookie_line(const as_agent *ag, char *out, size_t cap)
{
    out[0] = '\0';
    if (ag->cookie[0] || ag->prelogin[0]) {
        snprintf(out, cap, "Cookie: %s%s%s%s%s\r\n", ag->cookie[0] ? "__Host-tokend-session=" : "",
                 ag->cookie, ag->cookie[0] && ag->prelogin[0] ? "; " : "",
                 ag->prelogin[0] ? "__Host-tokend-authz=" : "", ag->prelogin);
    }
}

static int as_get(as_agent *ag, const char *path, http_answer *a)
{
    char req[2048], cookies[256];
    cookie_line(ag, cookies, sizeof cookies);
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path, cookies);
    return n > 0 && (size_t)n < sizeof req ? http_call(ag->port, req, (size_t)n, a) : -1;
}

static int as_post(as_agent *ag, const char *path, const char *ctype, const char *body,
                   http_answer *a)
{
    char req[4096], cookies[256];
    cookie_line(ag, cookies, sizeof cookies);
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, cookies, ctype, strlen(body), body);
    return n > 0 && (size_t)n < sizeof req ? http_call(ag->port, req, (size_t)n, a) : -1;
}

/* Keep the session or pre-login cookie a response sets (its first Set-Cookie). */
static void take_cookie(as_agent *ag, const http_answer *a)
{
    size_t len = 0;
    const char *v = http_header(a, "Set-Cookie", &len);
    static const char session[] = "__Host-tokend-session=", pre[] = "__Host-tokend-authz=";
    char *dst = NULL;
    size_t nl = 0;
    if (v != NULL && len > sizeof session - 1 && memcmp(v, session, sizeof session - 1) == 0) {
        dst = ag->cookie, nl = sizeof session - 1;
    } else if (v != NULL && len > sizeof pre - 1 && memcmp(v, pre, sizeof pre - 1) == 0) {
        dst = ag->prelogin, nl = sizeof pre - 1;
    }
    if (dst != NULL) {
        const char *val = v + nl;
        size_t vl = 0;
        while (val + vl < v + len && val[vl] != ';') {
            vl++;
        }
        if (vl < sizeof ag->cookie) {
            memcpy(dst, val, vl);
            dst[vl] = '\0';
        }
    }
}

static int location(const http_answer *a, char *out, size_t cap)
{
    size_t len = 0;
    const char *v = http_header(a, "Location", &len);
    if (a->status != 303 && a->status != 302) {
        return -1;
    }
    if (v == NULL || len >= cap) {
        return -1;
    }
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

/* Register a public agent (grant types per grants_json) and return its id. */
static int as_register(as_agent *ag, const char *grants_json, bool redirect, char *id, size_t cap)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"client_name\":\"bench agent\",\"token_endpoint_auth_method\":\"none\","
             "\"grant_types\":%s,\"redirect_uris\":[%s]}",
             grants_json, redirect ? "\"http://127.0.0.1:8765/cb\"" : "");
    http_answer *a = malloc(sizeof *a);
    int rc = a ? as_post(ag, "/register", "application/json", body, a) : -1;
    if (rc == 0 && (a->status != 201 || json_get_str(a->body, "client_id", id, cap) != 0)) {
        bench_log("register: status %d", a->status);
        rc = -1;
    }
    free(a);
    return rc;
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        v |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? in[i + 2] : 0;
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        if (i + 1 < n) {
            out[o++] = t[v >> 6 & 63];
        }
        if (i + 2 < n) {
            out[o++] = t[v & 63];
        }
    }
    out[o] = '\0';
}

/* Sign in (dev login), approve once; the first code is checked to come back. */
int as_agent_start(as_agent *ag, uint16_t port)
{
    memset(ag, 0, sizeof *ag);
    ag->port = port;
    unsigned char d[SHA256_DIGEST_LENGTH];
    char challenge[64];
    SHA256((const unsigned char *)AS_VERIFIER, strlen(AS_VERIFIER), d);
    b64url(d, sizeof d, challenge);
    if (as_register(ag, "[\"authorization_code\",\"refresh_token\"]", true, ag->client_id,
                    sizeof ag->client_id) != 0 ||
        as_register(ag, "[\"urn:ietf:params:oauth:grant-type:token-exchange\"]", false, ag->sub_id,
                    sizeof ag->sub_id) != 0) {
        return -1;
    }
    snprintf(ag->authorize, sizeof ag->authorize,
             "/authorize?response_type=code&client_id=%s&redirect_uri=%s"
             "&code_challenge=%s&code_challenge_method=S256&state=bench&scope=mcp%%3Aread"
             "&resource=%s",
             ag->client_id, AS_REDIRECT_ENC, challenge, AS_RESOURCE_ENC);
    http_answer *a = malloc(sizeof *a);
    char loc[1024], req_id[128], csrf[128], body[512];
    const char *step = "authorize";
    int rc = a ? as_get(ag, ag->authorize, a) : -1;
    if (rc == 0) {
        take_cookie(ag, a); /* the pre-login cookie, when sent to sign in */
    }
    rc = rc ? rc : location(a, loc, sizeof loc);
    if (rc == 0 && strncmp(loc, "/login", 6) == 0) {
        step = "login page";
        rc = as_get(ag, loc, a);
        rc = rc ? rc : (a->status == 200 ? 0 : -1);
        rc = rc ? rc : form_value(a->body, "request", req_id, sizeof req_id);
        rc = rc ? rc : form_value(a->body, "csrf", csrf, sizeof csrf);
        take_cookie(ag, a);
        if (rc == 0) {
            step = "login";
            snprintf(body, sizeof body, "request=%s&csrf=%s&subject=bench", req_id, csrf);
            rc = as_post(ag, "/login", "application/x-www-form-urlencoded", body, a);
            take_cookie(ag, a);
            rc = rc ? rc : location(a, loc, sizeof loc);
        }
        if (rc == 0 && loc[0] == '/' && strncmp(loc, "/consent", 8) != 0) {
            step = "continue";
            rc = as_get(ag, loc, a);
            rc = rc ? rc : location(a, loc, sizeof loc);
        }
    }
    if (rc == 0 && strncmp(loc, "/consent", 8) == 0) {
        step = "consent page";
        rc = as_get(ag, loc, a);
        rc = rc ? rc : (a->status == 200 ? 0 : -1);
        rc = rc ? rc : form_value(a->body, "request", req_id, sizeof req_id);
        rc = rc ? rc : form_value(a->body, "csrf", csrf, sizeof csrf);
        if (rc == 0) {
            step = "consent";
            snprintf(body, sizeof body, "request=%s&csrf=%s&decision=approve", req_id, csrf);
            rc = as_post(ag, "/consent", "application/x-www-form-urlencoded", body, a);
            rc = rc ? rc : location(a, loc, sizeof loc);
        }
    }
    char code[CODE_CAP];
    if (rc == 0 && (strncmp(loc, "http://127.0.0.1:8765/cb?", 25) != 0 ||
                    param_value(loc, strlen(loc), "code", code, sizeof code) != 0)) {
        step = "redirect with a code";
        rc = -1;
    }
    if (rc != 0) {
        int status = a ? a->status : 0;
        bench_log("authorization flow failed at %s (status %d%s)", step, status,
                  status == 0 ? ": no answer" : "");
    }
    free(a);
    return rc;
}

int as_delegate(const char *tokenctl, const char *data, const as_agent *ag)
{
    char *argv[] = {(char *)tokenctl,      "--data",        (char *)data,       "client", "set",
                    (char *)ag->client_id, "--delegate-to", (char *)ag->sub_id, NULL};
    char *out = NULL;
    int rc = bench_run(argv, &out);
    free(out);
    if (rc != 0) {
        bench_log("tokenctl client set --delegate-to failed");
    }
    return rc == 0 ? 0 : -1;
}

/* ---- Minting codes and redeeming them, over keep-alive connections ------------------------- */

typedef struct mint {
    as_agent *ag;
    char (*codes)[CODE_CAP];
    size_t n, cap;
    /* redeem */
    size_t next;
    tok_pair *pairs;
    size_t npairs, pairs_cap;
    bool logged;
    const dpop_key *dk; /* redeem with DPoP proofs by it */
} mint;

static size_t mint_make(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag)
{
    (void)conn;
    mint *m = arg;
    *tag = 0;
    int n = snprintf(
        buf, cap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: __Host-tokend-session=%s\r\n\r\n",
        m->ag->authorize, m->ag->cookie);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void mint_head(void *arg, unsigned conn, uint32_t tag, const char *head, size_t len)
{
    (void)conn, (void)tag;
    mint *m = arg;
    size_t vl = 0;
    const char *v = head_find(head, len, "Location", &vl);
    if (v != NULL && m->n < m->cap &&
        param_value(v, vl, "code", m->codes[m->n], sizeof m->codes[m->n]) == 0) {
        m->n++;
    }
}

static bool mint_done(void *arg, unsigned conn, uint32_t tag, int status, const char *body,
                      size_t len, uint64_t sent_ns, uint64_t now_ns)
{
    (void)arg, (void)conn, (void)tag, (void)status, (void)body, (void)len, (void)sent_ns;
    (void)now_ns;
    return true;
}

static bool mint_tick(void *arg, uint64_t now_ns)
{
    (void)now_ns;
    const mint *m = arg;
    return m->n < m->cap;
}

int as_mint_codes(const bench_opts *o, as_agent *ag, double seconds, size_t cap, code_list *out)
{
    memset(out, 0, sizeof *out);
    mint m = {.ag = ag, .cap = cap};
    m.codes = calloc(cap, CODE_CAP);
    load_result *res = malloc(sizeof *res);
    load_cfg cfg = {.port = ag->port,
                    .conns = o->conns < 64 ? o->conns : 64,
                    .duration_s = seconds,
                    .max_requests = cap,
                    .drain = true,
                    .label = "mint codes",
                    .progress = o->progress,
                    .arg = &m,
                    .make = mint_make,
                    .done = mint_done,
                    .head = mint_head,
                    .tick = mint_tick};
    uint64_t t0 = bench_now_ns();
    int rc = m.codes && res ? load_run_once(&cfg, res) : -1;
    double res_seconds = (double)(bench_now_ns() - t0) / 1e9;
    free(res);
    if (rc != 0 || m.n == 0) {
        bench_log("minting codes failed: %zu codes", m.n);
        free(m.codes);
        return -1;
    }
    out->codes = m.codes;
    out->n = m.n;
    bench_log("minted %zu codes in %.1f s", m.n, res_seconds);
    return 0;
}

size_t redeem_request(char *buf, size_t cap, const as_agent *ag, const char *code,
                      const dpop_key *dk)
{
    char body[512], proof[DPOP_PROOF_CAP] = "", htu[64];
    int bl = snprintf(body, sizeof body,
                      "grant_type=authorization_code&code=%s&redirect_uri=%s"
                      "&code_verifier=%s&client_id=%s",
                      code, AS_REDIRECT_ENC, AS_VERIFIER, ag->client_id);
    if (dk != NULL) { /* htu: the derived issuer + /token */
        static uint64_t seq;
        snprintf(htu, sizeof htu, "http://127.0.0.1:%u/token", ag->port);
        size_t pl = dpop_proof(dk, "POST", htu, NULL, ++seq | 1ull << 63, (int64_t)time(NULL),
                               proof, sizeof proof);
        if (pl == 0) {
            return 0;
        }
    }
    int n = snprintf(buf, cap,
                     "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sContent-Type: "
                     "application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
                     dk != NULL ? "DPoP: " : "", proof, dk != NULL ? "\r\n" : "", bl, body);
    return n > 0 && (size_t)n < cap && bl > 0 && (size_t)bl < sizeof body ? (size_t)n : 0;
}

static size_t redeem_make(void *arg, unsigned conn, char *buf, size_t cap, uint32_t *tag)
{
    (void)conn;
    mint *m = arg;
    *tag = 0;
    if (m->next >= m->n) {
        return 0;
    }
    return redeem_request(buf, cap, m->ag, m->codes[m->next++], m->dk);
}

static bool redeem_done(void *arg, unsigned conn, uint32_t tag, int status, const char *body,
                        size_t len, uint64_t sent_ns, uint64_t now_ns)
{
    (void)conn, (void)tag, (void)sent_ns, (void)now_ns;
    mint *m = arg;
    if (status != 200 && !m->logged) {
        m->logged = true;
        bench_log("redeem: %d %.*s", status, (int)(len < 200 ? len : 200), body);
    }
    if (status != 200 || m->npairs >= m->pairs_cap) {
        return status == 200;
    }
    tok_pair *p = &m->pairs[m->npairs];
    if (json_get_str(body, "access_token", p->at, sizeof p->at) != 0 ||
        json_get_str(body, "refresh_token", p->rt, sizeof p->rt) != 0) {
        return false;
    }
    m->npairs++;
    return true;
}

int as_token_pairs(const bench_opts *o, as_agent *ag, size_t n, tok_pair *out)
{
    return as_token_pairs_dpop(o, ag, n, out, NULL);
}

int as_token_pairs_dpop(const bench_opts *o, as_agent *ag, size_t n, tok_pair *out,
                        const dpop_key *dk)
{
    code_list cl;
    if (as_mint_codes(o, ag, 60, n, &cl) != 0 || cl.n < n) {
        code_list_free(&cl);
        return -1;
    }
    mint m = {.ag = ag, .codes = cl.codes, .n = cl.n, .pairs = out, .pairs_cap = n, .dk = dk};
    load_result *res = malloc(sizeof *res);
    load_cfg cfg = {.port = ag->port,
                    .conns = n < 16 ? (unsigned)n : 16,
                    .duration_s = 120,
                    .max_requests = n,
                    .label = "redeem (prepare)",
                    .arg = &m,
                    .make = redeem_make,
                    .done = redeem_done};
    int rc = res ? load_run_once(&cfg, res) : -1;
    free(res);
    code_list_free(&cl);
    if (rc != 0 || m.npairs != n) {
        bench_log("redeeming codes: %zu of %zu token pairs", m.npairs, n);
        return -1;
    }
    return 0;
}

void code_list_free(code_list *cl)
{
    free(cl->codes);
    memset(cl, 0, sizeof *cl);
}
