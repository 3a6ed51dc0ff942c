/*
 * A store in a temporary folder for the store's unit tests: made fresh,
 * opened, removed; tokens numbered 0..n-1 bulk-loaded (their hashes sort
 * in that order); and the request that revokes one of them.
 */
#ifndef TOKEND_TEST_STORE_FIXTURE_H
#define TOKEND_TEST_STORE_FIXTURE_H

#include "tokend/committer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* A fresh empty folder, /tmp/PREFIXXXXXXX, in dir. */
static inline void make_dir(const char *prefix)
{
    TK_ASSERT(snprintf(dir, sizeof dir, "/tmp/%sXXXXXX", prefix) < (int)sizeof dir);
    TK_ASSERT(mkdtemp(dir) != NULL);
}

static inline void remove_dir(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static inline tk_store *open_store(uint64_t map_size)
{
    tk_store_opts o = {.dir = dir, .map_size = map_size};
    tk_store *st = NULL;
    TK_ASSERT(tk_store_open(&o, &st) == 0);
    return st;
}

/* Token n's hash: n big-endian, then a constant fill. */
static inline void hash_of(unsigned n, uint8_t h[TK_HASH_LEN])
{
    memset(h, 0x11, TK_HASH_LEN);
    for (int i = 0; i < 4; i++) {
        h[i] = (uint8_t)(n >> (24 - 8 * i));
    }
}

/* Tokens 0..n-1 (access, client tkc_a, session tks_a), in ascending key
 * order, without the session index. */
static inline void load_tokens(tk_store *st, unsigned n)
{
    tk_txn *w;
    tk_token_rec t = {.kind = TK_TOKEN_ACCESS,
                      .client_id = TK_SLICE_LIT("tkc_a"),
                      .sid = TK_SLICE_LIT("tks_a"),
                      .scope = TK_SLICE_LIT("read"),
                      .iat = 1,
                      .exp = 100000};
    uint8_t h[TK_HASH_LEN];
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    for (unsigned i = 0; i < n; i++) {
        hash_of(i, h);
        TK_ASSERT(tk_store_put_token(w, h, &t, TK_PUT_APPEND | TK_PUT_NO_INDEX) == 0);
    }
    TK_ASSERT(tk_store_commit(w) == 0);
}

/* Worker worker's request (cookie) revoking token, at 1000 + token. */
static inline tk_commit_req revoke_req(unsigned worker, unsigned token, uint64_t cookie)
{
    tk_commit_req r;
    memset(&r, 0, sizeof(r));
    r.worker = worker;
    r.cookie = cookie;
    r.nops = 1;
    r.ops[0] = tk_op_make(TK_OP_REVOKE_TOKEN, 1000 + token);
    hash_of(token, r.ops[0].revoke_token.hash);
    return r;
}

#endif
