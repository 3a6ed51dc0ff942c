/*
 * tokenctl seed: bulk-loads sessions and access tokens for benchmarks.
 *
 * The one idea: LMDB loads fastest when keys arrive in ascending order
 * (MDB_APPEND fills each page and never splits one in the middle). So every
 * token is generated first (its string goes to the output file, only its
 * SHA-256 and index stay in memory), the (hash, index) pairs are sorted by
 * hash, and the records are written in that order, ~100 k puts per write
 * txn to stay well inside LMDB's dirty-page limit. Session and grant ids are
 * sorted the same way, and the session_tokens index is written last in
 * (sid, hash) order. Append mode is used only for DBIs that start empty, so
 * seeding into a store that already holds data is slower but still correct.
 */
#include "ctl.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bounds: memory is ~40 bytes per token and ~64 per session while seeding. */
#define SEED_SESSIONS_MAX    10000000LL
#define SEED_PER_SESSION_MAX 10000000LL
#define SEED_TOKENS_MAX      100000000LL
/* Puts per write txn: keeps each txn's dirty pages far below LMDB's limit. */
#define SEED_TXN_PUTS 100000
/* Tokens whose random bytes are fetched with one tk_random_bytes call. */
#define SEED_RAND_BATCH    4096
#define SEED_SCOPE_DEFAULT "read"
#define SEED_TTL_DEFAULT   (30LL * 86400)
/* Fixed slot for a generated id ("tks_" + 22 chars + NUL). */
#define SEED_ID_SLOT 32

typedef struct seed_entry {
    uint8_t hash[TK_HASH_LEN];
    uint32_t idx; /* token number; its session is idx / per_session */
} seed_entry;

_Static_assert(sizeof(seed_entry) == TK_HASH_LEN + 4, "entries are packed");
_Static_assert(SEED_TOKENS_MAX <= UINT32_MAX, "token numbers fit the entry");

typedef struct seed {
    ctl *c;
    int64_t nsessions, per_session, ntokens, ttl, now;
    const char *out_path, *scope;
    int out_fd; /* the token file, opened before anything is written */
    char client_id[TK_ID_MAX + 1];
    char client_secret[TK_TOKEN_LEN + 1]; /* "" when an existing client was used */
    char (*sids)[SEED_ID_SLOT];           /* sorted */
    char (*gids)[SEED_ID_SLOT];           /* sorted; grant k belongs to session k */
    size_t sid_len, gid_len;              /* every generated id has the same length */
    seed_entry *entries;                  /* sorted by hash after phase "sort" */
    bool append_tokens, append_sessions, append_grants, append_index;
    uint64_t t0, last_progress;
} seed;

/* ==== Progress =========================================================== */

static double elapsed(const seed *s)
{
    return (double)(tk_mono_ns() - s->t0) / 1e9;
}

/* A phase begins: its first progress line comes a second later. */
static void phase_begin(seed *s)
{
    s->last_progress = tk_mono_ns();
}

/* At most one line per second per phase, plus the final one. */
static void progress(seed *s, const char *what, int64_t done, int64_t total)
{
    uint64_t now = tk_mono_ns();
    if (done != total && now - s->last_progress < 1000000000ull) {
        return;
    }
    s->last_progress = now;
    fprintf(stderr, "seed: %lld/%lld %s (%.1f s)\n", (long long)done, (long long)total, what,
            elapsed(s));
}

/* progress() from a hot loop: looks at the clock only every 65536 items. */
static void progress_tick(seed *s, const char *what, int64_t done, int64_t total)
{
    if (done == total || (done & 0xffff) == 0) {
        progress(s, what, done, total);
    }
}

/* ==== Arguments ========================================================== */

static int seed_args(ctl *c, seed *s)
{
    const char *client = NULL;
    int rc = ctl_need_str(c, "out", 4096, &s->out_path);
    if (rc == CTL_OK) {
        rc = ctl_opt_str(c, "sessions") ? CTL_OK : ctl_usage(c, "--sessions is required");
    }
    if (rc == CTL_OK) {
        rc = ctl_opt_str(c, "tokens-per-session")
                 ? CTL_OK
                 : ctl_usage(c, "--tokens-per-session is required");
    }
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "sessions", 1, SEED_SESSIONS_MAX, 0, &s->nsessions);
    }
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "tokens-per-session", 1, SEED_PER_SESSION_MAX, 0, &s->per_session);
    }
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "ttl", 1, CTL_TTL_MAX, SEED_TTL_DEFAULT, &s->ttl);
    }
    s->scope = ctl_opt_str(c, "scope") ? ctl_opt_str(c, "scope") : SEED_SCOPE_DEFAULT;
    if (rc == CTL_OK) {
        rc = ctl_check_scope(c, "--scope", s->scope);
    }
    if (rc == CTL_OK) {
        rc = ctl_want_str(c, "client", TK_ID_MAX, &client);
    }
    if (rc == CTL_OK && s->nsessions * s->per_session > SEED_TOKENS_MAX) {
        rc =
            ctl_usage(c, "--sessions x --tokens-per-session must be at most %lld", SEED_TOKENS_MAX);
    }
    if (rc == CTL_OK && client != NULL) {
        snprintf(s->client_id, sizeof s->client_id, "%s", client);
    }
    s->ntokens = s->nsessions * s->per_session;
    return rc;
}

/* ==== Store helpers ====================================================== */

/* A chunked writer: a write txn that is committed every SEED_TXN_PUTS puts. */
typedef struct chunk {
    seed *s;
    tk_txn *txn;
    unsigned puts;
} chunk;

static int chunk_tick(chunk *ch)
{
    if (ch->txn != NULL && ch->puts < SEED_TXN_PUTS) {
        ch->puts++;
        return 0;
    }
    if (ch->txn != NULL) {
        int rc = tk_store_commit(ch->txn);
        ch->txn = NULL;
        if (rc != 0) {
            return rc;
        }
    }
    ch->puts = 1;
    return tk_store_write_begin(ch->s->c->store, &ch->txn);
}

static int chunk_done(chunk *ch, int rc)
{
    if (ch->txn == NULL) {
        return rc;
    }
    if (rc != 0) {
        tk_store_txn_end(ch->txn);
        ch->txn = NULL;
        return rc;
    }
    rc = tk_store_commit(ch->txn);
    ch->txn = NULL;
    return rc;
}

/* Append only into DBIs that start empty (MDB_APPEND needs ascending keys). */
static int seed_plan_append(seed *s)
{
    tk_txn *txn = NULL;
    tk_store_stats st;
    memset(&st, 0, sizeof st);
    int rc = tk_store_read_begin(s->c->store, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = tk_store_stats_get(txn, &st);
    tk_store_txn_end(txn);
    s->append_tokens = st.tokens == 0;
    s->append_sessions = st.sessions == 0;
    s->append_grants = st.grants == 0;
    s->append_index = st.session_tokens == 0;
    return rc;
}

/* ==== The client ========================================================= */

static int client_check(seed *s)
{
    tk_txn *txn = NULL;
    tk_client_rec rec;
    int rc = tk_store_read_begin(s->c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(s->c, "read transaction", rc);
    }
    rc = tk_store_get_client(txn, tk_slice_from_str(s->client_id), &rec);
    if (rc == 0 && (rec.status != TK_CLIENT_APPROVED || rec.role != TK_ROLE_AGENT)) {
        rc = ctl_fail(s->c, "client %s must be an approved agent", s->client_id);
    } else if (rc == 0 && !tk_core_scope_subset(tk_slice_from_str(s->scope), rec.scope)) {
        rc = ctl_fail(s->c, "--scope is not within client %s's allowed scope", s->client_id);
    } else if (rc == TK_E_NOTFOUND) {
        rc = ctl_fail(s->c, "no client %s", s->client_id);
    } else if (rc != 0) {
        rc = ctl_fail_err(s->c, "reading the client", rc);
    }
    tk_store_txn_end(txn);
    return rc;
}

static int client_create(seed *s)
{
    tk_client_rec rec = {.name = TK_SLICE_LIT("seed-agent"),
                         .scope = tk_slice_from_str(s->scope),
                         .resource = TK_SLICE_LIT(""),
                         .role = TK_ROLE_AGENT,
                         .status = TK_CLIENT_APPROVED,
                         .created = s->now};
    int rc = tk_id_new("tkc_", s->client_id, sizeof s->client_id);
    if (rc == 0) {
        rc = tk_secret_new(TK_SECRET_CLIENT, s->client_secret, sizeof s->client_secret,
                           rec.secret_hash);
    }
    tk_txn *txn = NULL;
    if (rc == 0) {
        rc = tk_store_write_begin(s->c->store, &txn);
    }
    if (rc == 0) {
        rc = tk_store_put_client(txn, tk_slice_from_str(s->client_id), &rec, TK_PUT_NEW);
        rc = rc == 0 ? tk_store_commit(txn) : (tk_store_txn_end(txn), rc);
    }
    return rc == 0 ? CTL_OK : ctl_fail_err(s->c, "creating the seed client", rc);
}

/* ==== Sessions and grants ================================================ */

static int cmp_slot(const void *a, const void *b)
{
    return memcmp(a, b, SEED_ID_SLOT);
}

static int make_ids(char (*ids)[SEED_ID_SLOT], int64_t n, const char *prefix, size_t *len)
{
    for (int64_t i = 0; i < n; i++) {
        memset(ids[i], 0, SEED_ID_SLOT);
        int rc = tk_id_new(prefix, ids[i], SEED_ID_SLOT);
        if (rc != 0) {
            return rc;
        }
        *len = i == 0 ? strlen(ids[0]) : *len;
        TK_ASSERT(strlen(ids[i]) == *len);
    }
    qsort(ids, (size_t)n, SEED_ID_SLOT, cmp_slot);
    return 0;
}

static tk_slice sid_of(const seed *s, int64_t k)
{
    return (tk_slice){s->sids[k], s->sid_len};
}

static tk_slice gid_of(const seed *s, int64_t k)
{
    return (tk_slice){s->gids[k], s->gid_len};
}

/* The subject of session k: "seed-user-<k>". out holds 32 bytes. */
static tk_slice seed_sub(int64_t k, char *out)
{
    memcpy(out, "seed-user-", 10);
    size_t n = tk_fmt_u64((uint64_t)k, out + 10);
    return (tk_slice){out, 10 + n};
}

static int put_sessions(seed *s)
{
    phase_begin(s);
    chunk ch = {s, NULL, 0};
    int rc = 0;
    unsigned flags = s->append_sessions ? TK_PUT_APPEND : TK_PUT_NEW;
    for (int64_t k = 0; rc == 0 && k < s->nsessions; k++) {
        char sub[32];
        tk_session_rec rec = {.sub = seed_sub(k, sub),
                              .issuer = TK_SLICE_LIT(""),
                              .reason = TK_SLICE_LIT(""),
                              .state = TK_SESSION_ACTIVE,
                              .created = s->now,
                              .expires = s->now + s->ttl};
        rc = chunk_tick(&ch);
        if (rc == 0) {
            rc = tk_store_put_session(ch.txn, sid_of(s, k), &rec, flags);
        }
        progress_tick(s, "sessions written", k + 1, s->nsessions);
    }
    return chunk_done(&ch, rc);
}

static int put_grants(seed *s)
{
    phase_begin(s);
    chunk ch = {s, NULL, 0};
    int rc = 0;
    unsigned flags = s->append_grants ? TK_PUT_APPEND : TK_PUT_NEW;
    for (int64_t k = 0; rc == 0 && k < s->nsessions; k++) {
        char sub[32];
        tk_grant_rec rec = {.client_id = tk_slice_from_str(s->client_id),
                            .sub = seed_sub(k, sub),
                            .sid = sid_of(s, k),
                            .scope = tk_slice_from_str(s->scope),
                            .state = TK_GRANT_ACTIVE,
                            .created = s->now};
        rc = chunk_tick(&ch);
        if (rc == 0) {
            rc = tk_store_put_grant(ch.txn, gid_of(s, k), &rec, flags);
        }
        progress_tick(s, "grants written", k + 1, s->nsessions);
    }
    return chunk_done(&ch, rc);
}

/* ==== Token generation ================================================== */

/*
 * Generation is CPU-bound (CSPRNG, base64url, SHA-256), so SEED_GEN_THREADS
 * workers each take a contiguous range of token numbers and write their lines
 * straight to their own region of the output file (every line is
 * TK_TOKEN_LEN + 1 bytes, so token i starts at byte i * (TK_TOKEN_LEN + 1)).
 */
#define SEED_GEN_THREADS 2
#define SEED_LINE        (TK_TOKEN_LEN + 1)
/* Lines buffered per worker before one pwrite (about 1 MiB). */
#define SEED_LINES_PER_WRITE 20000

typedef struct gen_worker {
    seed *s;
    int fd;
    int64_t from, to;
    int64_t done; /* atomic: tokens generated so far */
    int rc;
} gen_worker;

static int write_all(int fd, const char *buf, size_t len, off_t off)
{
    for (int tries = 0; len > 0 && tries < 1000; tries++) {
        ssize_t n = pwrite(fd, buf, len, off);
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
        n = n < 0 ? 0 : n;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return len == 0 ? 0 : -EIO;
}

/* Tokens [from, from + n): lines into buf, hashes into entries. */
static int gen_batch(seed *s, int64_t from, int64_t n, char *buf)
{
    uint8_t rnd[SEED_RAND_BATCH][TK_SECRET_BYTES];
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        size_t r = (size_t)(i % SEED_RAND_BATCH);
        if (r == 0) {
            int64_t want = n - i < SEED_RAND_BATCH ? n - i : SEED_RAND_BATCH;
            rc = tk_random_bytes(rnd, (size_t)want * TK_SECRET_BYTES);
        }
        char *line = buf + i * SEED_LINE;
        memcpy(line, "tkd_at_", TK_TOKEN_PREFIX_LEN);
        if (rc == 0) { /* writes the NUL where the newline goes */
            rc = tk_b64url_encode(rnd[r], TK_SECRET_BYTES, line + TK_TOKEN_PREFIX_LEN,
                                  TK_SECRET_B64_LEN + 1);
        }
        line[TK_TOKEN_LEN] = '\n';
        seed_entry *e = &s->entries[from + i];
        tk_sha256(line, TK_TOKEN_LEN, e->hash);
        e->idx = (uint32_t)(from + i);
    }
    tk_cleanse(rnd, sizeof rnd);
    return rc;
}

static void *gen_run(void *arg)
{
    gen_worker *w = arg;
    char *buf = malloc(SEED_LINES_PER_WRITE * SEED_LINE);
    int rc = buf == NULL ? -ENOMEM : 0;
    for (int64_t i = w->from; rc == 0 && i < w->to; i += SEED_LINES_PER_WRITE) {
        int64_t n = w->to - i < SEED_LINES_PER_WRITE ? w->to - i : SEED_LINES_PER_WRITE;
        rc = gen_batch(w->s, i, n, buf);
        if (rc == 0) {
            rc = write_all(w->fd, buf, (size_t)(n * SEED_LINE), (off_t)(i * SEED_LINE));
        }
        __atomic_store_n(&w->done, i + n - w->from, __ATOMIC_RELAXED);
    }
    if (buf != NULL) {
        tk_cleanse(buf, SEED_LINES_PER_WRITE * SEED_LINE);
        free(buf);
    }
    w->rc = rc;
    return NULL;
}

/* Run the workers; this thread reports their progress. */
static int generate(seed *s, int fd)
{
    gen_worker w[SEED_GEN_THREADS];
    pthread_t tid[SEED_GEN_THREADS];
    bool threaded[SEED_GEN_THREADS];
    unsigned nw = s->ntokens >= 100000 ? SEED_GEN_THREADS : 1;
    phase_begin(s);
    for (unsigned k = 0; k < nw; k++) {
        w[k] = (gen_worker){s, fd, s->ntokens * k / nw, s->ntokens * (k + 1) / nw, 0, 0};
        threaded[k] = pthread_create(&tid[k], NULL, gen_run, &w[k]) == 0;
        if (!threaded[k]) {
            gen_run(&w[k]); /* no thread: do the work here */
        }
    }
    for (int spin = 0; spin < 1000000; spin++) { /* 10 ms steps: ~3 hours at most */
        int64_t done = 0;
        for (unsigned k = 0; k < nw; k++) {
            done += __atomic_load_n(&w[k].done, __ATOMIC_RELAXED);
        }
        if (done == s->ntokens) {
            break;
        }
        progress(s, "tokens generated", done, s->ntokens);
        usleep(10000);
    }
    int rc = 0;
    for (unsigned k = 0; k < nw; k++) {
        if (threaded[k]) {
            pthread_join(tid[k], NULL);
        }
        rc = rc != 0 ? rc : w[k].rc;
    }
    progress(s, "tokens generated", s->ntokens, s->ntokens);
    return rc;
}

static int write_token_file(seed *s)
{
    int rc = generate(s, s->out_fd);
    if (close(s->out_fd) != 0 && rc == 0) {
        rc = -errno;
    }
    s->out_fd = -1;
    return rc == 0 ? CTL_OK : ctl_fail(s->c, "writing %s: %s", s->out_path, tk_strerror(rc));
}

/* ==== Sort =============================================================== */

static size_t top16(const seed_entry *e)
{
    return (size_t)e->hash[0] << 8 | e->hash[1];
}

static void insertion_sort(seed_entry *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        seed_entry x = a[i];
        size_t j = i;
        for (; j > 0 && memcmp(a[j - 1].hash, x.hash, TK_HASH_LEN) > 0; j--) {
            a[j] = a[j - 1];
        }
        a[j] = x;
    }
}

/* Sort one bucket (equal first two bytes) from src into dst: a counting sort
 * on the third byte, then insertion sort of the (tiny) runs left. */
static void sort_bucket(const seed_entry *src, seed_entry *dst, size_t n)
{
    if (n <= 32) {
        memcpy(dst, src, n * sizeof *dst);
        insertion_sort(dst, n);
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) {
        start[src[i].hash[2] + 1]++;
    }
    for (size_t b = 0; b < 256; b++) {
        start[b + 1] += start[b];
    }
    size_t end[256];
    memcpy(end, start, sizeof end);
    for (size_t i = 0; i < n; i++) {
        dst[end[src[i].hash[2]]++] = src[i];
    }
    for (size_t b = 0; b < 256; b++) {
        insertion_sort(dst + start[b], start[b + 1] - start[b]);
    }
}

/*
 * Sort entries by hash, MSD radix: one counting-sort pass on the first 16
 * bits into a second array (hashes are uniform: ~n / 65536 per bucket), then
 * each bucket back into place by its third byte. Two passes over memory
 * instead of the n log n callback comparisons of qsort.
 */
static int sort_entries(seed *s)
{
    size_t n = (size_t)s->ntokens;
    seed_entry *tmp = malloc(n * sizeof *tmp);
    size_t *start = calloc(65537, sizeof *start);
    if (tmp == NULL || start == NULL) {
        free(tmp);
        free(start);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        start[top16(&s->entries[i]) + 1]++;
    }
    for (size_t b = 0; b < 65536; b++) {
        start[b + 1] += start[b];
    }
    size_t *end = malloc(65536 * sizeof *end);
    if (end == NULL) {
        free(tmp);
        free(start);
        return -ENOMEM;
    }
    memcpy(end, start, 65536 * sizeof *end);
    for (size_t i = 0; i < n; i++) {
        tmp[end[top16(&s->entries[i])]++] = s->entries[i];
    }
    for (size_t b = 0; b < 65536; b++) {
        sort_bucket(tmp + start[b], s->entries + start[b], start[b + 1] - start[b]);
    }
    free(end);
    free(start);
    free(tmp);
    return 0;
}

/* ==== Tokens and index =================================================== */

static int put_tokens(seed *s)
{
    phase_begin(s);
    chunk ch = {s, NULL, 0};
    int rc = 0;
    unsigned flags = TK_PUT_NO_INDEX | (s->append_tokens ? TK_PUT_APPEND : 0);
    tk_token_rec rec = {.kind = TK_TOKEN_ACCESS,
                        .client_id = tk_slice_from_str(s->client_id),
                        .scope = tk_slice_from_str(s->scope),
                        .aud = TK_SLICE_LIT(""),
                        .iat = s->now,
                        .nbf = s->now,
                        .exp = s->now + s->ttl};
    for (int64_t i = 0; rc == 0 && i < s->ntokens; i++) {
        const seed_entry *e = &s->entries[i];
        TK_ASSERT(i == 0 || memcmp(e[-1].hash, e->hash, TK_HASH_LEN) < 0);
        int64_t k = e->idx / s->per_session;
        char sub[32];
        rec.sub = seed_sub(k, sub);
        rec.sid = sid_of(s, k);
        rec.grant_id = gid_of(s, k);
        rc = chunk_tick(&ch);
        if (rc == 0) {
            rc = tk_store_put_token(ch.txn, e->hash, &rec, flags);
        }
        progress_tick(s, "tokens written", i + 1, s->ntokens);
    }
    return chunk_done(&ch, rc);
}

/*
 * session_tokens in (sid, hash) order: a stable counting sort of the
 * hash-sorted entries by session (every session has per_session tokens, so
 * session k's run starts at k * per_session), then one pass.
 */
static int put_index(seed *s)
{
    uint32_t *pos = malloc((size_t)s->ntokens * sizeof *pos);
    uint32_t *fill = calloc((size_t)s->nsessions, sizeof *fill);
    if (pos == NULL || fill == NULL) {
        free(pos);
        free(fill);
        return -ENOMEM;
    }
    for (int64_t i = 0; i < s->ntokens; i++) {
        int64_t k = s->entries[i].idx / s->per_session;
        pos[k * s->per_session + fill[k]++] = (uint32_t)i;
    }
    free(fill);
    phase_begin(s);
    chunk ch = {s, NULL, 0};
    int rc = 0;
    unsigned flags = s->append_index ? TK_PUT_APPEND : 0;
    for (int64_t i = 0; rc == 0 && i < s->ntokens; i++) {
        rc = chunk_tick(&ch);
        if (rc == 0) {
            tk_slice sid = sid_of(s, i / s->per_session);
            rc = tk_store_index_session_token(ch.txn, sid, s->entries[pos[i]].hash, flags);
        }
        progress_tick(s, "index entries written", i + 1, s->ntokens);
    }
    free(pos);
    return chunk_done(&ch, rc);
}

/* ==== The command ======================================================== */

static int seed_summary(seed *s)
{
    char buf[1024];
    tk_json j;
    double secs = elapsed(s);
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_int(&j, "sessions", s->nsessions);
    tk_json_kv_int(&j, "tokens", s->ntokens);
    tk_json_kv_cstr(&j, "client_id", s->client_id);
    if (s->client_secret[0] != '\0') {
        tk_json_kv_cstr(&j, "client_secret", s->client_secret);
    }
    tk_json_kv_cstr(&j, "out", s->out_path);
    tk_json_kv_int(&j, "seconds", (int64_t)(secs + 0.5));
    tk_json_kv_int(&j, "milliseconds", (int64_t)(secs * 1000.0));
    tk_json_obj_end(&j);
    int rc = ctl_print_json(s->c, &j);
    tk_cleanse(buf, sizeof buf);
    return rc;
}

/* Client, then sessions and grants, so tokens never point at missing rows. */
static int seed_parents(seed *s)
{
    int rc = s->client_id[0] ? client_check(s) : client_create(s);
    if (rc != CTL_OK) {
        return rc;
    }
    fprintf(stderr, "seed: client %s\n", s->client_id);
    rc = make_ids(s->sids, s->nsessions, "tks_", &s->sid_len);
    if (rc == 0) {
        rc = make_ids(s->gids, s->nsessions, "tkg_", &s->gid_len);
    }
    if (rc == 0) {
        rc = put_sessions(s);
    }
    if (rc == 0) {
        rc = put_grants(s);
    }
    return rc == 0 ? CTL_OK : ctl_fail_err(s->c, "writing sessions and grants", rc);
}

static int seed_run(seed *s)
{
    int rc = seed_parents(s);
    if (rc != CTL_OK) {
        return rc;
    }
    rc = write_token_file(s);
    if (rc != CTL_OK) {
        return rc;
    }
    rc = sort_entries(s);
    fprintf(stderr, "seed: sorted %lld hashes (%.1f s)\n", (long long)s->ntokens, elapsed(s));
    if (rc == 0) {
        rc = put_tokens(s);
    }
    if (rc == 0) {
        rc = put_index(s);
    }
    return rc == 0 ? seed_summary(s) : ctl_fail_err(s->c, "loading tokens", rc);
}

int ctl_cmd_seed(ctl *c)
{
    static seed s;
    s.c = c;
    int rc = seed_args(c, &s);
    if (rc == CTL_OK) {
        rc = ctl_open(c, false);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    s.out_fd = open(s.out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s.out_fd < 0) {
        return ctl_fail(c, "cannot create %s: %s", s.out_path, strerror(errno));
    }
    s.t0 = tk_mono_ns();
    s.now = tk_now();
    rc = seed_plan_append(&s);
    s.sids = calloc((size_t)s.nsessions, SEED_ID_SLOT);
    s.gids = calloc((size_t)s.nsessions, SEED_ID_SLOT);
    s.entries = malloc((size_t)s.ntokens * sizeof *s.entries);
    if (rc != 0) {
        rc = ctl_fail_err(c, "reading statistics", rc);
    } else if (s.sids == NULL || s.gids == NULL || s.entries == NULL) {
        rc = ctl_fail(c, "out of memory for %lld tokens", (long long)s.ntokens);
    } else {
        rc = seed_run(&s);
    }
    free(s.sids);
    free(s.gids);
    free(s.entries);
    if (s.out_fd >= 0) {
        close(s.out_fd);
    }
    tk_cleanse(s.client_secret, sizeof s.client_secret);
    return rc;
}
