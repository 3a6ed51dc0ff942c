/*
 * tokend-as-io: what one group commit of /token answers writes to disk, and
 * (under callgrind) what applying it costs, per grant: the committer's side
 * of the token endpoint, load-independent.
 *
 * It makes a new store in --data (which must not hold one yet) with
 * --tokens background tokens (100 per session, random hashes, as `tokenctl
 * seed` makes them), an approved agent, an active session and consent grant
 * for it; then, per --op:
 *   code      --group x --groups codes are put first (their CODE_ISSUE
 *             writes are not counted); each group redeems --group of them
 *             (TK_OP_CODE_REDEEM with a refresh token, as a confidential
 *             agent's redemption);
 *   refresh   --group chains, each rotated once per group (TK_OP_REFRESH):
 *             every group rotates the refresh tokens the previous one made,
 *             as the bench's connections do;
 *   exchange  one subject access token, exchanged --group times per group
 *             for a delegate client (TK_OP_EXCHANGE).
 * Every op is applied exactly as the committer does (tk_store_apply_outcome,
 * one tk_store_commit with its fsync per group) and must answer OK. Around
 * each commit it reads /proc/self/io: wchar is what LMDB handed to write
 * calls (every dirty page once, plus the meta page).
 *
 * With --worker, the ops are not built here: every answer is a real POST
 * /token request (a public agent, PKCE; the delegate for an exchange) fed
 * to the application tokend runs, as tokend-replay does (tk_http_parse,
 * the batch hook per 16, the request hook), each redeeming its own code or
 * rotating its own refresh token; the committer is in cluster mode with a
 * log that only keeps each request (so nothing is applied while the worker
 * runs), and the kept ops are then applied in groups as above. The worker's
 * part is everything from the request bytes to the op handed to the
 * committer (parse, client authentication, PKCE, the checks, minting the
 * tokens, the JSON answer parked until the commit), in serve_token, and
 * writing the parked answer once the commit is reported, in serve_done.
 *
 * tokend-as-io --data DIR --op code|refresh|exchange [--tokens N] [--group N]
 *              [--groups N] [--seed N] [--worker]
 * Instructions per answer: valgrind --tool=callgrind --toggle-collect=serve_token
 *   --toggle-collect=serve_done --toggle-collect=tk_store_apply_outcome
 *   --toggle-collect=tk_store_commit
 *   tokend-as-io ... --worker   (each function's inclusive Ir / (group x groups))
 */
#include "proc_io.h"
#include "tokend/committer.h"
#include "tokend/crypto.h"
#include "tokend/endpoints.h"
#include "tokend/http.h"
#include "tokend/oauth.h"
#include "tokend/oauth_register.h"
#include "tokend/op.h"
#include "tokend/record.h"
#include "tokend/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH    16
#define REQ_CAP  1024
#define VERIFIER "as-io-verifier-0123456789-0123456789-0123456789"
#define ISSUER   "http://127.0.0.1:7662"

static int64_t AT0; /* now: the worker stamps its ops with the real clock */
#define CLIENT   "tkc_as_io_agent"
#define DELEGATE "tkc_as_io_delegate"
#define SID      "tks_as_io"
#define GRANT    "tkg_as_io"
#define SCOPE    "files:read files:write"
#define AUD      "https://mcp.example/mcp"

/* A deterministic stream of distinct 32-byte hashes. */
static void hash_of(uint64_t *ctr, uint8_t out[TK_HASH_LEN])
{
    uint64_t n = (*ctr)++;
    tk_sha256(&n, sizeof n, out);
}

static int fail(const char *what)
{
    fprintf(stderr, "tokend-as-io: %s\n", what);
    return 1;
}

static tk_token_rec token_rec(uint8_t kind, tk_slice sid, int64_t exp)
{
    return (tk_token_rec){.kind = kind,
                          .client_id = TK_SLICE_LIT(CLIENT),
                          .sub = TK_SLICE_LIT("alice@example.com"),
                          .sid = sid,
                          .grant_id = TK_SLICE_LIT(GRANT),
                          .scope = TK_SLICE_LIT(SCOPE),
                          .aud = TK_SLICE_LIT(AUD),
                          .iat = AT0 - 10,
                          .exp = exp};
}

/* Background tokens, 100 per session, in one commit (as `tokenctl seed`
 * writes them: LMDB's free list then holds no pages freed by the seeding,
 * whose sort would weigh on every measured commit). */
static int seed_background(tk_store *st, long n, uint64_t *ctr)
{
    for (long i = 0; i < n;) {
        tk_txn *txn;
        if (tk_store_write_begin(st, &txn) != 0) {
            return -1;
        }
        for (; i < n; i++) {
            char sid[32];
            int len = snprintf(sid, sizeof sid, "tks_bg%08ld", i / 100);
            if (i % 100 == 0) {
                tk_session_rec s = {.sub = TK_SLICE_LIT("bob@example.com"),
                                    .state = TK_SESSION_ACTIVE,
                                    .created = AT0 - 100};
                if (tk_store_put_session(txn, (tk_slice){sid, (size_t)len}, &s, 0) != 0) {
                    return -1;
                }
            }
            uint8_t h[TK_HASH_LEN];
            hash_of(ctr, h);
            tk_token_rec t = token_rec(TK_TOKEN_ACCESS, (tk_slice){sid, (size_t)len}, AT0 + 3600);
            if (tk_store_put_token(txn, h, &t, TK_PUT_NEW) != 0) {
                return -1;
            }
        }
        if (tk_store_commit(txn) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Two public agents, as /register makes them: the one signed in, which may
 * delegate to the other. */
static int seed_family(tk_txn *txn)
{
    tk_client_rec c = {.name = TK_SLICE_LIT("as-io agent"),
                       .role = TK_ROLE_AGENT,
                       .status = TK_CLIENT_APPROVED,
                       .created = AT0 - 100,
                       .redirect_uris = TK_SLICE_LIT("http://127.0.0.1:9/cb"),
                       .auth_method = TK_OAUTH_AUTH_NONE + 1,
                       .grant_types =
                           TK_OAUTH_GRANT_AUTHORIZATION_CODE | TK_OAUTH_GRANT_REFRESH_TOKEN,
                       .flags = TK_CLIENT_F_PUBLIC,
                       .delegate_to = TK_SLICE_LIT(DELEGATE)};
    tk_client_rec d = c;
    d.name = TK_SLICE_LIT("as-io delegate");
    d.grant_types = TK_OAUTH_GRANT_TOKEN_EXCHANGE;
    d.delegate_to = TK_SLICE_NULL;
    tk_session_rec s = {
        .sub = TK_SLICE_LIT("alice@example.com"), .state = TK_SESSION_ACTIVE, .created = AT0 - 100};
    tk_grant_rec g = {.client_id = TK_SLICE_LIT(CLIENT),
                      .sub = TK_SLICE_LIT("alice@example.com"),
                      .scope = TK_SLICE_LIT(SCOPE),
                      .resource = TK_SLICE_LIT(AUD),
                      .state = TK_GRANT_ACTIVE,
                      .created = AT0 - 100};
    int rc = tk_store_put_client(txn, TK_SLICE_LIT(CLIENT), &c, TK_PUT_NEW);
    rc = rc != 0 ? rc : tk_store_put_client(txn, TK_SLICE_LIT(DELEGATE), &d, TK_PUT_NEW);
    rc = rc != 0 ? rc : tk_store_put_session(txn, TK_SLICE_LIT(SID), &s, TK_PUT_NEW);
    return rc != 0 ? rc : tk_store_put_grant(txn, TK_SLICE_LIT(GRANT), &g, TK_PUT_NEW);
}

typedef struct run {
    const char *op;
    long group, groups;
    bool worker;
    uint8_t (*cur)[TK_HASH_LEN];   /* code: every code; refresh: each chain's token */
    char (*str)[TK_TOKEN_LEN + 1]; /* --worker: the code or refresh token itself */
    uint8_t subject[TK_HASH_LEN];
    char subject_str[TK_TOKEN_LEN + 1];
    uint64_t ctr;
    tk_commit_req *kept; /* --worker: the requests the committer was handed */
    long nkept;
} run;

/* --worker: a code or token string to present, and its hash. */
static int make_secret(run *r, long i, bool code)
{
    if (code) {
        snprintf(r->str[i], sizeof r->str[i], "as-io-code-%016llx%016llx",
                 (unsigned long long)r->ctr++, (unsigned long long)i);
        tk_sha256(r->str[i], strlen(r->str[i]), r->cur[i]);
        return 0;
    }
    return tk_secret_new(TK_SECRET_REFRESH, r->str[i], sizeof r->str[i], r->cur[i]);
}

/* What the op kind needs before the measured groups, in one commit. */
static int prepare(tk_txn *txn, run *r)
{
    int rc = seed_family(txn);
    bool code = strcmp(r->op, "code") == 0;
    long n = code || r->worker ? r->group * r->groups : r->group;
    for (long i = 0; i < n && rc == 0; i++) {
        if (r->worker) {
            rc = make_secret(r, i, code);
        } else {
            hash_of(&r->ctr, r->cur[i]);
        }
        if (code) {
            tk_code_rec c = {.client_id = TK_SLICE_LIT(CLIENT),
                             .redirect_uri = TK_SLICE_LIT("http://127.0.0.1:9/cb"),
                             .resource = TK_SLICE_LIT(AUD),
                             .scope = TK_SLICE_LIT(SCOPE),
                             .sid = TK_SLICE_LIT(SID),
                             .sub = TK_SLICE_LIT("alice@example.com"),
                             .grant_id = TK_SLICE_LIT(GRANT),
                             .exp = AT0 + 600,
                             .created = AT0 - 1};
            uint8_t ch[TK_HASH_LEN];
            tk_sha256(VERIFIER, strlen(VERIFIER), ch);
            memcpy(c.challenge, ch, TK_HASH_LEN);
            rc = rc != 0 ? rc : tk_store_put_code(txn, r->cur[i], &c, TK_PUT_NEW);
        } else if (strcmp(r->op, "refresh") == 0) {
            tk_token_rec t = token_rec(TK_TOKEN_REFRESH, TK_SLICE_LIT(SID), AT0 + 86400);
            rc = rc != 0 ? rc : tk_store_put_token(txn, r->cur[i], &t, TK_PUT_NEW);
        }
    }
    if (rc == 0 && strcmp(r->op, "exchange") == 0) {
        rc = tk_secret_new(TK_SECRET_ACCESS, r->subject_str, sizeof r->subject_str, r->subject);
        tk_token_rec t = token_rec(TK_TOKEN_ACCESS, TK_SLICE_LIT(SID), AT0 + 3600);
        rc = rc != 0 ? rc : tk_store_put_token(txn, r->subject, &t, TK_PUT_NEW);
    }
    return rc;
}

static tk_op make_op(run *r, long g, long k)
{
    int64_t at = AT0 + g;
    tk_op op;
    if (strcmp(r->op, "code") == 0) {
        op = tk_op_make(TK_OP_CODE_REDEEM, at);
        memcpy(op.code_redeem.code, r->cur[g * r->group + k], TK_HASH_LEN);
        hash_of(&r->ctr, op.code_redeem.access);
        hash_of(&r->ctr, op.code_redeem.refresh);
        op.code_redeem.has_refresh = true;
        op.code_redeem.access_exp = at + 3600;
        op.code_redeem.refresh_exp = at + 86400;
    } else if (strcmp(r->op, "refresh") == 0) {
        op = tk_op_make(TK_OP_REFRESH, at);
        memcpy(op.refresh.old, r->cur[k], TK_HASH_LEN);
        hash_of(&r->ctr, op.refresh.access);
        hash_of(&r->ctr, op.refresh.refresh);
        memcpy(r->cur[k], op.refresh.refresh, TK_HASH_LEN); /* the chain's next */
        op.refresh.access_exp = at + 3600;
        op.refresh.refresh_exp = at + 86400;
        op.refresh.window = 2;
        op.refresh.scope_mask = UINT64_MAX;
    } else {
        op = tk_op_make(TK_OP_EXCHANGE, at);
        memcpy(op.exchange.parent, r->subject, TK_HASH_LEN);
        hash_of(&r->ctr, op.exchange.child);
        (void)tk_op_id_set(&op.exchange.client, TK_SLICE_LIT(DELEGATE));
        op.exchange.exp = at + 600;
        op.exchange.scope_mask = UINT64_MAX;
    }
    return op;
}

/* ---- --worker: the requests through the application ------------------------------ */

static int keep(void *ctx, const tk_commit_req *req)
{
    run *r = ctx;
    if (r->nkept >= r->group * r->groups) {
        return TK_E_QUEUEFULL;
    }
    r->kept[r->nkept++] = *req;
    return 0;
}

static bool claim_none(void *ctx, uint64_t tag, unsigned *worker, uint64_t *cookie)
{
    (void)ctx, (void)tag, (void)worker, (void)cookie;
    return false;
}

static void applied_none(void *ctx, uint64_t seq, uint64_t ns)
{
    (void)ctx, (void)seq, (void)ns;
}

static size_t token_request(const run *r, long i, char *buf)
{
    char body[512];
    if (strcmp(r->op, "code") == 0) {
        snprintf(body, sizeof body,
                 "grant_type=authorization_code&code=%s&code_verifier=%s&client_id=%s", r->str[i],
                 VERIFIER, CLIENT);
    } else if (strcmp(r->op, "refresh") == 0) {
        snprintf(body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s",
                 r->str[i], CLIENT);
    } else {
        snprintf(body, sizeof body,
                 "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange"
                 "&subject_token=%s&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3A"
                 "token-type%%3Aaccess_token&scope=files%%3Aread&client_id=%s",
                 r->subject_str, DELEGATE);
    }
    return (size_t)snprintf(buf, REQ_CAP,
                            "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                            "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s",
                            strlen(body), body);
}

/* What the server does for one batch: renew, then parse and hand each
 * request to the application. Out of line for --toggle-collect=serve_token.
 * A request handed to the committer writes no answer yet; tags[i] is what
 * the application keeps for its answer. */
__attribute__((noinline)) long serve_token(const tk_server_hooks *h, void *wctx,
                                           char (*reqs)[REQ_CAP], const size_t *lens, size_t n,
                                           const uint64_t *cookies, uint32_t *tags, tk_outbuf *out);
__attribute__((noinline)) long serve_token(const tk_server_hooks *h, void *wctx,
                                           char (*reqs)[REQ_CAP], const size_t *lens, size_t n,
                                           const uint64_t *cookies, uint32_t *tags, tk_outbuf *out)
{
    long answered = 0;
    h->batch_begin(wctx);
    for (size_t i = 0; i < n; i++) {
        tk_http_request req;
        if (tk_http_parse(reqs[i], lens[i], TK_HTTP_BODY_MAX, &req) <= 0) {
            answered++;
            continue;
        }
        req.listener = TK_APP_LISTENER_MAIN; /* what the server fills, not the parser */
        memset(req.peer, 0, sizeof req.peer);
        req.peer[10] = req.peer[11] = 0xff; /* ::ffff:127.0.0.1 */
        req.peer[12] = 127;
        req.peer[15] = 1;
        req.cert = NULL;
        out->len = 0;
        out->close = false;
        tags[i] = 0;
        h->request(wctx, &req, out, cookies[i], &tags[i]);
        if (out->len > 0 && answered == 0) {
            fprintf(stderr, "tokend-as-io: an answer before the commit: %.*s\n",
                    (int)(out->len < 400 ? out->len : 400), out->buf);
        }
        answered += out->len > 0;
    }
    return answered;
}

/* What the server does when the committer's eventfd fires: harvest the
 * completions, renew, and write each deferred answer. Out of line for
 * --toggle-collect=serve_done. Returns the 200 answers. */
__attribute__((noinline)) long serve_done(const tk_server_hooks *h, void *wctx,
                                          const uint32_t *tags, long n, tk_outbuf *out);
__attribute__((noinline)) long serve_done(const tk_server_hooks *h, void *wctx,
                                          const uint32_t *tags, long n, tk_outbuf *out)
{
    static tk_server_done done[64];
    uint64_t v;
    if (read(h->wake_fd(wctx), &v, sizeof v) != (ssize_t)sizeof v) {
        return 0;
    }
    size_t got = 0, k;
    do {
        k = h->wake(wctx, done + got, 64 - got);
        got += k;
    } while (k > 0 && got < 64);
    h->batch_begin(wctx);
    long ok = 0;
    for (size_t i = 0; i < got && (long)i < n; i++) {
        out->len = 0;
        out->close = false;
        h->respond(wctx, tags[done[i].cookie % 64], &done[i], out);
        ok += out->len > 12 && memcmp(out->buf + 9, "200", 3) == 0;
    }
    return ok;
}

/* Feed every request to a worker of a real application; its committer
 * keeps the requests (cluster mode with a log that applies nothing), and
 * each 64 (a worker parks at most 64 answers until their commit) are then
 * reported durable to the worker, which writes their answers. */
static int run_worker(tk_store *st, run *r)
{
    tk_committer *c = NULL;
    tk_app *app = NULL;
    tk_app_cfg acfg = {.issuer = ISSUER,
                       .resources_file = "",
                       .metrics_token = "",
                       .max_depth = 4,
                       .registration = TK_REGISTRATION_OPEN,
                       .login = TK_LOGIN_DEV,
                       .access_ttl = 3600,
                       .refresh_ttl = 86400,
                       .session_ttl = 86400,
                       .code_ttl = 600,
                       .authorize_ttl = 600,
                       .refresh_reuse_window = 2,
                       .store = st,
                       .workers = 1};
    tk_committer_log log = {
        .ctx = r, .forward = keep, .claim = claim_none, .applied = applied_none};
    if (tk_committer_start(st, 1, 256, &c) != 0) {
        return -1;
    }
    tk_committer_set_log(c, &log);
    acfg.committer = c;
    if (tk_app_create(&acfg, &app) != 0) {
        return -1;
    }
    tk_server_hooks h;
    tk_app_hooks(app, &h);
    void *wctx = h.worker_init(h.app, 0);
    static char reqs[BATCH][REQ_CAP], outb[TK_CONN_OUT_MAX];
    size_t lens[BATCH];
    uint64_t cookies[BATCH];
    uint32_t tags[64];
    tk_outbuf out = {.buf = outb, .cap = sizeof outb};
    long n = r->group * r->groups, answered = 0, ok = 0;
    for (long first = 0; first < n && answered == 0; first += 64) {
        long m = n - first < 64 ? n - first : 64;
        for (long done = 0; done < m; done += BATCH) {
            size_t k = m - done < BATCH ? (size_t)(m - done) : BATCH;
            for (size_t i = 0; i < k; i++) {
                lens[i] = token_request(r, first + done + (long)i, reqs[i]);
                cookies[i] = (7ull << 32) | (uint64_t)(done + (long)i);
            }
            answered += serve_token(&h, wctx, reqs, lens, k, cookies, tags + done, &out);
        }
        if (r->nkept != first + m) {
            break;
        }
        for (long i = 0; i < m; i++) { /* what the committer posts after the commit */
            tk_commit_done d = {.cookie = (7ull << 32) | (uint64_t)i,
                                .result = 0,
                                .changed = 1,
                                .outcome = TK_OUT_OK};
            tk_committer_post(c, 0, &d);
        }
        ok += serve_done(&h, wctx, tags, m, &out);
    }
    h.worker_fini(wctx);
    tk_app_destroy(app);
    tk_committer_stop(c);
    if (answered != 0 || r->nkept != n || ok != n) {
        fprintf(stderr,
                "tokend-as-io: %ld of %ld requests reached the committer, %ld answered 200\n",
                r->nkept, n, ok);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    AT0 = (int64_t)time(NULL);
    const char *data = NULL;
    long ntok = 200000;
    run r = {.op = NULL, .group = 64, .groups = 20, .ctr = 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0) {
            data = argv[i + 1];
        } else if (strcmp(argv[i], "--op") == 0) {
            r.op = argv[i + 1];
        } else if (strcmp(argv[i], "--tokens") == 0) {
            ntok = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--group") == 0) {
            r.group = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--groups") == 0) {
            r.groups = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--seed") == 0) {
            r.ctr = strtoull(argv[i + 1], NULL, 10) << 40 | 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        r.worker = r.worker || strcmp(argv[i], "--worker") == 0;
    }
    bool op_ok = r.op != NULL && (strcmp(r.op, "code") == 0 || strcmp(r.op, "refresh") == 0 ||
                                  strcmp(r.op, "exchange") == 0);
    if (data == NULL || !op_ok || ntok < 0 || r.group <= 0 || r.groups <= 0 || r.group > 100000 ||
        r.groups > 100000) {
        fprintf(stderr, "usage: tokend-as-io --data DIR --op code|refresh|exchange [--tokens N] "
                        "[--group N] [--groups N] [--seed N]\n");
        return 2;
    }
    r.cur = calloc((size_t)(r.group * r.groups), TK_HASH_LEN);
    r.str = calloc((size_t)(r.group * r.groups), sizeof *r.str);
    r.kept = calloc((size_t)(r.group * r.groups), sizeof *r.kept);
    tk_store *st = NULL;
    tk_store_opts so = {.dir = data, .map_size = 16ull << 30, .threaded_readers = true};
    if (r.cur == NULL || r.str == NULL || r.kept == NULL || tk_store_open(&so, &st) != 0) {
        return fail("cannot open the store");
    }
    tk_txn *txn = NULL;
    tk_store_stats stats;
    if (tk_store_read_begin(st, &txn) != 0 || tk_store_stats_get(txn, &stats) != 0) {
        return fail("cannot read the store");
    }
    tk_store_txn_end(txn);
    if (stats.tokens != 0) {
        return fail("--data must name a new store");
    }
    if (seed_background(st, ntok, &r.ctr) != 0) {
        return fail("seeding failed");
    }
    if (tk_store_write_begin(st, &txn) != 0 || prepare(txn, &r) != 0 || tk_store_commit(txn) != 0) {
        return fail("preparing failed");
    }
    if (r.worker && run_worker(st, &r) != 0) {
        return fail("the worker did not hand every request to the committer");
    }
    unsigned long long sum_w = 0, sum_b = 0;
    for (long g = 0; g < r.groups; g++) {
        if (tk_store_write_begin(st, &txn) != 0) {
            return fail("write_begin failed");
        }
        for (long k = 0; k < r.group; k++) {
            tk_op op = r.worker ? r.kept[g * r.group + k].ops[0] : make_op(&r, g, k);
            bool ch = false;
            uint8_t out = TK_OUT_NONE;
            if (tk_store_apply_outcome(txn, &op, &ch, &out) != 0 || out != TK_OUT_OK || !ch) {
                return fail("an op did not answer OK");
            }
        }
        io_counts a, b;
        read_io(&a);
        if (tk_store_commit(txn) != 0) {
            return fail("commit failed");
        }
        read_io(&b);
        unsigned long long w = b.wchar - a.wchar, wb = b.write_bytes - a.write_bytes;
        sum_w += w;
        sum_b += wb;
        printf("group %ld: %ld %s answers, wchar %llu B (%.1f pages of 4 KiB), write_bytes %llu\n",
               g, r.group, r.op, w, (double)w / 4096.0, wb);
    }
    long n = r.group * r.groups;
    printf("op %s, background tokens %ld, groups %ld x %ld\n", r.op, ntok, r.groups, r.group);
    printf("per commit: %.1f pages written (wchar); per answer: %.2f pages, %.0f B wchar, "
           "%.0f B write_bytes\n",
           (double)sum_w / 4096.0 / (double)r.groups, (double)sum_w / 4096.0 / (double)n,
           (double)sum_w / (double)n, (double)sum_b / (double)n);
    tk_store_close(st);
    free(r.cur);
    free(r.str);
    free(r.kept);
    return 0;
}
