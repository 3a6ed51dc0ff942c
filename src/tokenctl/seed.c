/*
 * tokenctl seed: bulk-loads sessions and access tokens for benchmarks.
 *
 * The one idea: LMDB loads fastest when keys arrive in ascending order
 * (MDB_APPEND fills each page and never splits one in the middle). So every
 * token is generated first (its string goes to the output file, only its
 * SHA-256 and index stay in memory), the (hash, index) pairs are sorted by
 * hash, and the records are written in that order, ~100 k puts per write
 * txn to stay well inside LMDB's dirty-page limit. Session and grant ids are
 * sorted the same way, and the session index is written last in
 * (sid, token id) order. Append mode is used only for DBIs that start empty, so
 * seeding into a store that already holds data is slower but still correct.
 */
#include "seed.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    ctl_seed_phase_begin(s);
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
        ctl_seed_progress_tick(s, "sessions written", k + 1, s->nsessions);
    }
    return chunk_done(&ch, rc);
}

static int put_grants(seed *s)
{
    ctl_seed_phase_begin(s);
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
        ctl_seed_progress_tick(s, "grants written", k + 1, s->nsessions);
    }
    return chunk_done(&ch, rc);
}

/* ==== Tokens and index =================================================== */

static int put_tokens(seed *s)
{
    ctl_seed_phase_begin(s);
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
        uint64_t tid = 0;
        if (rc == 0) {
            rc = tk_store_put_token_tid(ch.txn, e->hash, &rec, flags, &tid);
        }
        if (rc == 0 && i % SEED_TXN_PUTS == 0) {
            s->tid_base[i / SEED_TXN_PUTS] = tid;
        }
        /* One write txn per SEED_TXN_PUTS puts takes consecutive ids. */
        TK_ASSERT(rc != 0 || tid == s->tid_base[i / SEED_TXN_PUTS] + (uint64_t)(i % SEED_TXN_PUTS));
        ctl_seed_progress_tick(s, "tokens written", i + 1, s->ntokens);
    }
    return chunk_done(&ch, rc);
}

/* The id put_tokens gave the i-th entry (in hash order). */
static uint64_t tid_of(const seed *s, int64_t i)
{
    return s->tid_base[i / SEED_TXN_PUTS] + (uint64_t)(i % SEED_TXN_PUTS);
}

/*
 * session_ids in (sid, token id) order: a stable counting sort of the
 * hash-sorted entries (whose ids grow with their place) by session (every
 * session has per_session tokens, so session k's run starts at
 * k * per_session), then one pass.
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
    ctl_seed_phase_begin(s);
    chunk ch = {s, NULL, 0};
    int rc = 0;
    unsigned flags = s->append_index ? TK_PUT_APPEND : 0;
    for (int64_t i = 0; rc == 0 && i < s->ntokens; i++) {
        rc = chunk_tick(&ch);
        if (rc == 0) {
            tk_slice sid = sid_of(s, i / s->per_session);
            rc = tk_store_index_session_token(ch.txn, sid, tid_of(s, pos[i]), flags);
        }
        ctl_seed_progress_tick(s, "index entries written", i + 1, s->ntokens);
    }
    free(pos);
    return chunk_done(&ch, rc);
}

/* ==== The command ======================================================== */

static int seed_summary(seed *s)
{
    char buf[1024];
    tk_json j;
    double secs = ctl_seed_elapsed(s);
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
    rc = ctl_seed_generate(s);
    if (rc != CTL_OK) {
        return rc;
    }
    rc = ctl_seed_sort(s);
    fprintf(stderr, "seed: sorted %lld hashes (%.1f s)\n", (long long)s->ntokens,
            ctl_seed_elapsed(s));
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
    s.tid_base = calloc((size_t)(s.ntokens / SEED_TXN_PUTS + 1), sizeof *s.tid_base);
    if (rc != 0) {
        rc = ctl_fail_err(c, "reading statistics", rc);
    } else if (s.sids == NULL || s.gids == NULL || s.entries == NULL || s.tid_base == NULL) {
        rc = ctl_fail(c, "out of memory for %lld tokens", (long long)s.ntokens);
    } else {
        rc = seed_run(&s);
    }
    free(s.sids);
    free(s.gids);
    free(s.entries);
    free(s.tid_base);
    if (s.out_fd >= 0) {
        close(s.out_fd);
    }
    tk_cleanse(s.client_secret, sizeof s.client_secret);
    return rc;
}
