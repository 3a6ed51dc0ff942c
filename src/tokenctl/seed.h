/*
 * The shared state of `tokenctl seed` (seed.c drives the store phases,
 * seed_gen.c generates the tokens, sorts their hashes and reports progress).
 */
#ifndef TOKEND_TOKENCTL_SEED_H
#define TOKEND_TOKENCTL_SEED_H

#include "ctl.h"

#include "tokend/limits.h"

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
    uint64_t *tid_base; /* the id of entry k * SEED_TXN_PUTS (the first of its write txn) */
    bool append_tokens, append_sessions, append_grants, append_index;
    uint64_t t0, last_progress;
} seed;

/* Progress on stderr: ctl_seed_progress prints at most one line per second
 * per phase (plus the final one); _tick looks at the clock only every 65536
 * items, for hot loops. */
double ctl_seed_elapsed(const seed *s);
void ctl_seed_phase_begin(seed *s);
void ctl_seed_progress(seed *s, const char *what, int64_t done, int64_t total);
void ctl_seed_progress_tick(seed *s, const char *what, int64_t done, int64_t total);

/* Generate every token: lines to s->out_fd (closed here), hashes and numbers
 * to s->entries. Returns CTL_OK or CTL_FAIL (message printed). */
int ctl_seed_generate(seed *s);
/* Sort s->entries by hash. Returns 0 or -ENOMEM. */
int ctl_seed_sort(seed *s);

#endif
