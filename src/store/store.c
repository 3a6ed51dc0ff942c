/*
 * The LMDB store: one environment, a fixed set of named DBIs, records encoded
 * by record.c; the op semantics live in apply.c.
 *
 * The idea to keep in mind: LMDB returns pointers into the map, so every
 * record handed out here is decoded in place and valid only while its
 * transaction lives; every record going in is encoded (and so validated) into
 * a stack buffer first, then copied by mdb_put. Write failures that leave the
 * LMDB txn unusable (map full, I/O) are remembered in the handle, so a caller
 * that goes on gets the same error back instead of a confusing MDB_BAD_TXN.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokend/crypto.h"
#include "tokend/log.h"
#include "store_int.h"

/* ---- Environment layout ------------------------------------------------------ */

static const struct {
    const char *name;
    unsigned flags;
    const char *put_op; /* names a failed write in the log */
} db_specs[DB_COUNT] = {
    [DB_TOKENS] = {"tokens", 0, "put_token"},
    [DB_SESSIONS] = {"sessions", 0, "put_session"},
    [DB_GRANTS] = {"grants", 0, "put_grant"},
    [DB_CLIENTS] = {"clients", 0, "put_client"},
    [DB_SESSION_TOKENS] = {"session_tokens", MDB_DUPSORT | MDB_DUPFIXED, "index_session_token"},
    [DB_TOKEN_CHILDREN] = {"token_children", MDB_DUPSORT | MDB_DUPFIXED, "index_token_child"},
    [DB_CLIENT_GRANTS] = {"client_grants", MDB_DUPSORT, "index_client_grant"},
    [DB_IDP_INDEX] = {"idp_index", MDB_DUPSORT, "index_idp_session"},
    [DB_SEEN_JTI] = {"seen_jti", 0, "put_seen"},
    [DB_AUDIT] = {"audit", 0, "put_audit"},
    [DB_META] = {"meta", 0, "put_meta"},
    [DB_AGENT_ACCESS] = {"agent_access", 0, "put_agent_access"},
    [DB_CODES] = {"codes", 0, "put_code"},
    [DB_AUTHREQS] = {"authreqs", 0, "put_authreq"},
    [DB_BROWSERS] = {"browsers", 0, "put_browser"},
    [DB_CONSENTS] = {"consents", 0, "put_consent"},
    [DB_REVOKED] = {"revoked", MDB_INTEGERKEY, "put_revoked"},
    [DB_REVLOG] = {"revocations", MDB_INTEGERKEY, "put_revocation"},
    [DB_SSF] = {"ssf", 0, "put_ssf"},
    [DB_SPENT] = {"spent", MDB_INTEGERKEY, "put_spent"},
    [DB_SESSION_IDS] = {"session_ids", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
                        "index_session_id"},
};

/* DBIs added after schema 1: a read-only open of an older store (tokenctl
 * beside an older tokend) finds them missing and sees them empty. */
static const bool db_late[DB_COUNT] = {
    [DB_IDP_INDEX] = true,   [DB_SEEN_JTI] = true, [DB_AUDIT] = true,    [DB_AGENT_ACCESS] = true,
    [DB_CODES] = true,       [DB_AUTHREQS] = true, [DB_BROWSERS] = true, [DB_CONSENTS] = true,
    [DB_REVOKED] = true,     [DB_REVLOG] = true,   [DB_SSF] = true,      [DB_SPENT] = true,
    [DB_SESSION_IDS] = true,
};

/* session_ids holds each token id as one native 8-byte integer (MDB_INTEGERDUP). */
_Static_assert(sizeof(size_t) == sizeof(uint64_t), "token ids are size_t duplicates");

_Static_assert(DB_COUNT <= TK_STORE_MAX_DBS, "maxdbs covers our DBIs");

/* meta DBI: "schema" → this, as 4 bytes little-endian. Schema 2 added token
 * ids and the revocation bitmap (revoked.c): a tokend of schema 1 would take
 * a token revoked in the bitmap for a live one, so it must refuse a schema 2
 * store. Schema 3 added code ids and the spent DBI (a redeemed code, a
 * rotated refresh token): a tokend of schema 2 would take a spent code for
 * an unused one, so it must refuse a schema 3 store. An older store is read
 * as it is (records without ids keep their state in the record) and
 * upgraded in place by the first read-write open: nothing in it is
 * rewritten. */
#define SCHEMA_KEY     "schema"
#define SCHEMA_VERSION 3u
#define SCHEMA_OLDEST  1u

/* LMDB's default maximum key size; our ids and hashes stay far below it. */
_Static_assert(TK_ID_MAX <= 511 && TK_HASH_LEN <= 511, "keys fit LMDB's key size");

/* ---- Errors ------------------------------------------------------------------ */

/* Map an LMDB error to our error space, logging what went wrong. */
const char *tk_store_db_name(enum db_index db)
{
    TK_ASSERT(db < DB_COUNT);
    return db_specs[db].name;
}

int tk_store_err(int rc, const char *op)
{
    TK_ASSERT(rc != 0);
    switch (rc) {
    case MDB_MAP_FULL:
        tk_log_error("store_full", "op=%s hint=\"raise --map-size or --map-size-max\"", op);
        return TK_E_FULL;
    case MDB_READERS_FULL:
        tk_log_error("store_readers_full", "op=%s max=%d", op, TK_MAX_READERS);
        return TK_E_READERS;
    case MDB_MAP_RESIZED:
        tk_log_warn("store_map_resized", "op=%s note=\"another process grew the map\"", op);
        return TK_E_FULL;
    default:
        tk_log_error("store_error", "op=%s error=\"%s\"", op, mdb_strerror(rc));
        return TK_E_STORE;
    }
}

static void log_corrupt_hash(const char *db, const uint8_t hash[TK_HASH_LEN])
{
    char ref[16];
    tk_hash_ref(hash, ref);
    tk_log_error("store_corrupt", "dbi=%s key=%s", db, ref);
}

void tk_store_log_corrupt_id(const char *db, tk_slice id)
{
    tk_log_error("store_corrupt", "dbi=%s key=%.*s", db, (int)id.len, id.p);
}

/* ---- Key order ------------------------------------------------------------------ */

/* Eight bytes read as a big-endian number: one load (and a byte swap). */
static uint64_t load_be64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* The rest of the comparison: keys shorter than eight bytes, or the same
 * first eight (the key found at the end of every search). */
static __attribute__((noinline)) int key_cmp_rest(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int d = n > 0 ? memcmp(a->mv_data, b->mv_data, n) : 0;
    if (d != 0) {
        return d;
    }
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/* LMDB's default order for our keys, byte-wise and shorter first on a tie
 * (mdb_cmp_memn), decided from the first eight bytes when they differ,
 * which they almost always do (hashes; ids are a 4-byte prefix and random
 * characters): no call to memcmp, which was half of every probe of every
 * B-tree search. The same order, so the files are the same: other
 * programs (older tokend and tokenctl, mdb_dump) read them with the
 * default comparison. */
int tk_store_key_cmp(const MDB_val *a, const MDB_val *b)
{
    if (TK_LIKELY(a->mv_size >= 8 && b->mv_size >= 8)) {
        uint64_t x = load_be64(a->mv_data), y = load_be64(b->mv_data);
        if (TK_LIKELY(x != y)) {
            return x < y ? -1 : 1;
        }
    }
    return key_cmp_rest(a, b);
}

/* ---- Open / close -------------------------------------------------------------- */

static int env_setup(const tk_store_opts *opts, MDB_env *env)
{
    int rc = mdb_env_set_maxreaders(env, TK_MAX_READERS);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(env, TK_STORE_MAX_DBS);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize(env, opts->map_size ? opts->map_size : TK_MAP_SIZE_DEFAULT);
    }
    if (rc == 0) {
        unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (opts->read_only ? MDB_RDONLY : 0);
        rc = mdb_env_open(env, opts->dir, flags, 0600);
    }
    if (rc > 0) {
        tk_log_error("store_open", "dir=%s error=\"%s\"", opts->dir, mdb_strerror(rc));
        return -rc;
    }
    return rc == 0 ? 0 : tk_store_err(rc, "env_open");
}

/* Write the schema version into a new store, or check an existing one. */
static int check_schema(tk_store *st, MDB_txn *txn)
{
    MDB_val k = val_of(SCHEMA_KEY, strlen(SCHEMA_KEY)), v;
    int rc = mdb_get(txn, st->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND && !st->read_only) {
        uint8_t b[4] = {SCHEMA_VERSION & 0xff, 0, 0, 0};
        v = val_of(b, sizeof(b));
        rc = mdb_put(txn, st->dbi[DB_META], &k, &v, 0);
        return rc == 0 ? 0 : tk_store_err(rc, "meta_put");
    }
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? TK_E_CORRUPT : tk_store_err(rc, "meta_get");
    }
    const uint8_t *b = v.mv_data;
    uint32_t ver = v.mv_size == 4 ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                                        (uint32_t)b[3] << 24
                                  : 0;
    if (ver < SCHEMA_OLDEST || ver > SCHEMA_VERSION) {
        tk_log_error("store_schema", "found=%u want=%u", ver, SCHEMA_VERSION);
        return TK_E_CORRUPT;
    }
    if (ver == SCHEMA_VERSION || st->read_only) {
        return 0;
    }
    uint8_t nb[4] = {SCHEMA_VERSION & 0xff, 0, 0, 0};
    v = val_of(nb, sizeof(nb));
    rc = mdb_put(txn, st->dbi[DB_META], &k, &v, 0);
    if (rc != 0) {
        return tk_store_err(rc, "meta_put");
    }
    tk_log_info("store_migrated",
                "from=%u to=%u note=\"%srecords unchanged; tokend and tokenctl older "
                "than this refuse the store now\"",
                ver, SCHEMA_VERSION,
                ver < 2 ? "token ids and revocation bitmap; code ids and spent codes and "
                          "refresh tokens; "
                        : "code ids and spent codes and refresh tokens; ");
    return 0;
}

static int open_dbis(tk_store *st)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, st->read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0) {
        return tk_store_err(rc, "open_txn");
    }
    for (size_t i = 0; i < DB_COUNT && rc == 0; i++) {
        unsigned f = db_specs[i].flags | (st->read_only ? 0 : MDB_CREATE);
        rc = mdb_dbi_open(txn, db_specs[i].name, f, &st->dbi[i]);
        if (rc == 0 && !(db_specs[i].flags & MDB_INTEGERKEY)) {
            rc = mdb_set_compare(txn, st->dbi[i], tk_store_key_cmp); /* before any access */
        }
        if (rc == MDB_NOTFOUND && st->read_only && db_late[i]) {
            st->absent[i] = true; /* written by an older tokend: nothing in it yet */
            rc = 0;
        } else if (rc == MDB_NOTFOUND) {
            tk_log_error("store_open", "error=\"no DBI %s: not a tokend store\"", db_specs[i].name);
            rc = TK_E_CORRUPT;
        } else if (rc != 0) {
            rc = tk_store_err(rc, "dbi_open");
        }
    }
    rc = rc != 0 ? rc : check_schema(st, txn);
    /* The main DBI, whose values are the named DBIs' records (prefetch.c):
     * opened here, once, since its open writes the environment's shared
     * comparison slot. */
    if (rc == 0 && (rc = mdb_dbi_open(txn, NULL, 0, &st->main_dbi)) != 0) {
        rc = tk_store_err(rc, "dbi_open");
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : tk_store_err(rc, "open_commit");
}

static int find_map(tk_store *st, uintptr_t *base);

int tk_store_open(const tk_store_opts *opts, tk_store **out)
{
    if (opts == NULL || opts->dir == NULL || opts->map_size > TK_MAP_SIZE_MAX) {
        return -EINVAL;
    }
    if (!opts->read_only && mkdir(opts->dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        tk_log_error("store_open", "dir=%s error=\"mkdir: %s\"", opts->dir, strerror(e));
        return -e;
    }
    tk_store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return -ENOMEM;
    }
    st->read_only = opts->read_only;
    st->threaded_readers = opts->threaded_readers;
    int rc = mdb_env_create(&st->env);
    if (rc != 0) {
        free(st);
        return tk_store_err(rc, "env_create");
    }
    rc = env_setup(opts, st->env);
    if (rc == 0) {
        int dead = 0;
        if (mdb_reader_check(st->env, &dead) == 0 && dead > 0) {
            tk_log_info("store_readers", "stale_cleared=%d", dead);
        }
        rc = open_dbis(st);
    }
    if (rc != 0) {
        mdb_env_close(st->env);
        free(st);
        return rc;
    }
    /* Looked up now, while nothing else runs: it needs a descriptor, and a
     * serving process may have none to spare. */
    if (find_map(st, &st->map_base) != 0) {
        st->map_base = 0;
    }
    *out = st;
    return 0;
}

/* LMDB does not say where it mapped the data file (me_mapaddr is only set
 * with MDB_FIXEDMAP), so find <dir>/data.mdb at offset 0 in /proc/self/maps. */
static int find_map(tk_store *st, uintptr_t *base)
{
    const char *dir = NULL;
    char want[PATH_MAX], real[PATH_MAX], line[PATH_MAX + 128], name[PATH_MAX + 1];
    if (mdb_env_get_path(st->env, &dir) != 0 || realpath(dir, real) == NULL ||
        (size_t)snprintf(want, sizeof(want), "%s/data.mdb", real) >= sizeof(want)) {
        return -ENOENT;
    }
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) {
        return -errno;
    }
    int rc = -ENOENT;
    for (unsigned i = 0; i < 1000000 && fgets(line, sizeof(line), f) != NULL; i++) {
        unsigned long start, end, off;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4096s", &start, &end, perms, &off, name) == 5 &&
            off == 0 && strcmp(name, want) == 0) {
            *base = (uintptr_t)start;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

int tk_store_prefault(tk_store *st, const int *stop, uint64_t *bytes_out)
{
    MDB_envinfo info;
    MDB_stat es;
    int rc = mdb_env_info(st->env, &info);
    if (rc == 0) {
        rc = mdb_env_stat(st->env, &es);
    }
    if (rc != 0) {
        return tk_store_err(rc, "prefault_info");
    }
    uintptr_t base = st->map_base;
    if (base == 0) {
        return -ENOENT;
    }
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
    if (used > info.me_mapsize) {
        used = info.me_mapsize;
    }
    int advice = MADV_POPULATE_READ;
    uint64_t done = 0;
    for (uint64_t off = 0; off < used; off += TK_PREFAULT_CHUNK) { /* bounded by the map */
        if (stop != NULL && __atomic_load_n(stop, __ATOMIC_RELAXED)) {
            break;
        }
        size_t n = (size_t)(used - off < TK_PREFAULT_CHUNK ? used - off : TK_PREFAULT_CHUNK);
        int r = madvise((void *)(base + off), n, advice);
        if (r != 0 && errno == EINVAL && advice == MADV_POPULATE_READ) {
            advice = MADV_WILLNEED; /* kernel older than 5.14: read-ahead only */
            r = madvise((void *)(base + off), n, advice);
        }
        if (r != 0) {
            return -errno; /* e.g. the map was grown and moved: stop, harmlessly */
        }
        done += n;
    }
    if (bytes_out != NULL) {
        *bytes_out = done;
    }
    return 0;
}

void tk_store_close(tk_store *st)
{
    if (st != NULL) {
        mdb_env_close(st->env);
        free(st);
    }
}

/* ---- Transactions ---------------------------------------------------------------- */

int tk_store_read_begin(tk_store *st, tk_txn **out)
{
    tk_txn *t = calloc(1, sizeof(*t));
    tk_revcache *rcache = t != NULL ? calloc(1, sizeof(*rcache)) : NULL;
    tk_clientmemo *cmemo = rcache != NULL ? calloc(1, sizeof(*cmemo)) : NULL;
    tk_pfmemo *pfmemo = cmemo != NULL ? calloc(1, sizeof(*pfmemo)) : NULL;
    if (pfmemo == NULL) {
        free(cmemo);
        free(rcache);
        free(t);
        return -ENOMEM;
    }
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &t->txn);
    if (rc != 0) {
        free(pfmemo);
        free(cmemo);
        free(rcache);
        free(t);
        return tk_store_err(rc, "read_begin");
    }
    t->rcache = rcache;
    t->cmemo = cmemo;
    t->pfmemo = pfmemo;
    t->st = st;
    *out = t;
    return 0;
}

int tk_store_read_renew(tk_txn *txn)
{
    TK_ASSERT(!txn->write);
    if (!txn->reset) {
        mdb_txn_reset(txn->txn);
        txn->reset = true;
    }
    int rc = mdb_txn_renew(txn->txn);
    if (rc != 0) {
        return tk_store_err(rc, "read_renew");
    }
    txn->reset = false;
    return 0;
}

void tk_store_read_reset(tk_txn *txn)
{
    TK_ASSERT(!txn->write);
    if (!txn->reset) {
        mdb_txn_reset(txn->txn);
        txn->reset = true;
    }
    memset(txn->rcache, 0, sizeof(*txn->rcache)); /* e.g. the map is grown next */
    memset(txn->cmemo, 0, sizeof(*txn->cmemo));
    txn->pf.snap = 0;
    txn->pfmemo->snap = 0;
}

void tk_store_txn_end(tk_txn *txn)
{
    if (txn != NULL) {
        mdb_txn_abort(txn->txn);
        free(txn->rcache);
        free(txn->cmemo);
        free(txn->pfmemo);
        free(txn);
    }
}

int tk_store_write_begin(tk_store *st, tk_txn **out)
{
    if (st->read_only) {
        return -EROFS;
    }
    tk_txn *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    int rc = mdb_txn_begin(st->env, NULL, 0, &t->txn);
    if (rc == MDB_MAP_RESIZED && !st->threaded_readers) {
        /* Another process grew the map: adopt its size, then try once more. */
        tk_log_info("store_map_resized", "action=adopt");
        rc = mdb_env_set_mapsize(st->env, 0);
        st->map_gen++; /* remapped: see tk_revcache */
        rc = rc != 0 ? rc : mdb_txn_begin(st->env, NULL, 0, &t->txn);
    }
    if (rc != 0) {
        free(t);
        return tk_store_err(rc, "write_begin");
    }
    t->st = st;
    t->write = true;
    *out = t;
    return 0;
}

int tk_store_commit(tk_txn *txn)
{
    TK_ASSERT(txn->write);
    int rc = txn->failed != 0 ? txn->failed : tk_store_id_flush(txn);
    if (rc != 0) {
        mdb_txn_abort(txn->txn);
    } else {
        rc = mdb_txn_commit(txn->txn);
        rc = rc == 0 ? 0 : tk_store_err(rc, "commit");
    }
    free(txn);
    return rc;
}

bool tk_store_growable(tk_store *st, uint64_t max)
{
    MDB_envinfo info;
    MDB_stat es;
    if (mdb_env_info(st->env, &info) != 0 || mdb_env_stat(st->env, &es) != 0) {
        return false;
    }
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
    return used > info.me_mapsize ||
           info.me_mapsize < (max < TK_MAP_SIZE_MAX ? max : TK_MAP_SIZE_MAX);
}

int tk_store_grow(tk_store *st, uint64_t max)
{
    MDB_envinfo info;
    MDB_stat es;
    int rc = mdb_env_info(st->env, &info);
    rc = rc != 0 ? rc : mdb_env_stat(st->env, &es);
    if (rc != 0) {
        return tk_store_err(rc, "grow_info");
    }
    uint64_t cur = info.me_mapsize;
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
    if (max > TK_MAP_SIZE_MAX) {
        max = TK_MAP_SIZE_MAX;
    }
    uint64_t want = 0; /* 0: adopt the size another process grew the map to */
    if (used <= cur) {
        if (cur >= max) {
            tk_log_error("store_full", "map_size=%llu max=%llu hint=\"raise --map-size-max\"",
                         (unsigned long long)cur, (unsigned long long)max);
            return TK_E_FULL;
        }
        want = cur < max / 2 ? cur * 2 : max;
        want -= want % es.ms_psize;
    }
    rc = mdb_env_set_mapsize(st->env, (size_t)want);
    st->map_gen++; /* the map may have moved: cached addresses die (tk_revcache) */
    if (rc != 0) {
        return tk_store_err(rc, "grow");
    }
    rc = mdb_env_info(st->env, &info);
    tk_log_warn("store_grown", "old=%llu new=%llu max=%llu", (unsigned long long)cur,
                rc == 0 ? (unsigned long long)info.me_mapsize : (unsigned long long)want,
                (unsigned long long)max);
    return 0;
}

/* ---- Point reads -------------------------------------------------------------------- */

int tk_store_raw_get(tk_txn *t, enum db_index db, MDB_val *k, MDB_val *v)
{
    TK_ASSERT(!t->reset);
    if (t->failed != 0) {
        return t->failed;
    }
    if (t->st->absent[db]) {
        return TK_E_NOTFOUND;
    }
    int rc = mdb_get(t->txn, t->st->dbi[db], k, v);
    if (rc == MDB_NOTFOUND) {
        return TK_E_NOTFOUND;
    }
    return rc == 0 ? 0 : tk_store_err(rc, "get");
}

int tk_store_get_token(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_token_rec *out)
{
    MDB_val k = val_of(hash, TK_HASH_LEN), v;
    int rc = tk_store_raw_get(txn, DB_TOKENS, &k, &v);
    if (rc == 0 && !tk_store_prefetch_decoded(txn, &v, out) &&
        tk_record_decode_token(v.mv_data, v.mv_size, out) != 0) {
        log_corrupt_hash("tokens", hash);
        return TK_E_CORRUPT;
    }
    TK_ASSERT(rc != 0 || out->kind == TK_TOKEN_ACCESS || out->kind == TK_TOKEN_REFRESH);
    if (rc == 0 && out->tid != 0 && out->revoked_at == 0) {
        bool revoked = false;
        rc = tk_store_revoked_test(txn, out->tid, &revoked);
        out->revoked_at = revoked ? TK_REVOKED_UNTIMED : 0;
    }
    if (rc == 0 && out->kind == TK_TOKEN_REFRESH && out->tid != 0 && out->rotated_at == 0) {
        rc = tk_store_spent_at(txn, out->tid, &out->rotated_at); /* schema 3 rotation */
    }
    return rc;
}

int tk_store_get_session(tk_txn *txn, tk_slice sid, tk_session_rec *out)
{
    if (!id_ok(sid)) {
        return TK_E_NOTFOUND;
    }
    MDB_val k = val_of(sid.p, sid.len), v;
    int rc = tk_store_raw_get(txn, DB_SESSIONS, &k, &v);
    if (rc == 0 && tk_record_decode_session(v.mv_data, v.mv_size, out) != 0) {
        tk_store_log_corrupt_id("sessions", sid);
        return TK_E_CORRUPT;
    }
    TK_ASSERT(rc != 0 || (out->state >= TK_SESSION_ACTIVE && out->state <= TK_SESSION_TERMINATED));
    return rc;
}

int tk_store_get_grant(tk_txn *txn, tk_slice grant_id, tk_grant_rec *out)
{
    if (!id_ok(grant_id)) {
        return TK_E_NOTFOUND;
    }
    MDB_val k = val_of(grant_id.p, grant_id.len), v;
    int rc = tk_store_raw_get(txn, DB_GRANTS, &k, &v);
    if (rc == 0 && tk_record_decode_grant(v.mv_data, v.mv_size, out) != 0) {
        tk_store_log_corrupt_id("grants", grant_id);
        return TK_E_CORRUPT;
    }
    TK_ASSERT(rc != 0 || out->state == TK_GRANT_ACTIVE || out->state == TK_GRANT_REVOKED);
    return rc;
}

int tk_store_get_client(tk_txn *txn, tk_slice client_id, tk_client_rec *out)
{
    if (!id_ok(client_id)) {
        return TK_E_NOTFOUND;
    }
    if (tk_store_client_memo_find(txn, client_id, out)) {
        return 0; /* decoded before in this very snapshot (client_memo.c) */
    }
    MDB_val k = val_of(client_id.p, client_id.len), v;
    int rc = tk_store_raw_get(txn, DB_CLIENTS, &k, &v);
    if (rc == 0 && tk_record_decode_client(v.mv_data, v.mv_size, out) != 0) {
        tk_store_log_corrupt_id("clients", client_id);
        return TK_E_CORRUPT;
    }
    TK_ASSERT(rc != 0 || (out->role >= TK_ROLE_AGENT && out->role <= TK_ROLE_ADMIN));
    if (rc == 0) {
        tk_store_client_memo_keep(txn, client_id, out);
    }
    return rc;
}

/* ---- Writes ----------------------------------------------------------------------------- */

static unsigned mdb_flags(unsigned flags, bool dup)
{
    unsigned f = (flags & TK_PUT_NEW) ? MDB_NOOVERWRITE : 0;
    if (flags & TK_PUT_APPEND) {
        f |= dup ? MDB_APPENDDUP : MDB_APPEND;
    }
    return f;
}

/* mdb_put, mapping errors; failures that poison the txn are remembered. */
int tk_store_raw_put(tk_txn *t, enum db_index db, tk_slice key, const void *val, size_t len,
                     unsigned flags)
{
    TK_ASSERT(t->write);
    if (t->failed != 0) {
        return t->failed;
    }
    bool dup = (db_specs[db].flags & MDB_DUPSORT) != 0;
    MDB_val k = val_of(key.p, key.len), v = val_of(val, len);
    int rc = mdb_put(t->txn, t->st->dbi[db], &k, &v, mdb_flags(flags, dup));
    if (rc == 0) {
        return 0;
    }
    if (rc == MDB_KEYEXIST && (flags & TK_PUT_NEW)) {
        return TK_E_EXISTS;
    }
    if (rc == MDB_KEYEXIST) {
        tk_log_error("store_append", "dbi=%s error=\"key out of order\"", db_specs[db].name);
        return TK_E_INVALID;
    }
    t->failed = tk_store_err(rc, db_specs[db].put_op);
    return t->failed;
}

/* sid → the token: its id in session_ids (ids grow, so a session's tokens
 * are appended to its run), or for a record older than ids its hash in
 * session_tokens, as before. */
static int index_session(tk_txn *txn, tk_slice sid, uint64_t tid, const uint8_t hash[TK_HASH_LEN],
                         unsigned flags)
{
    if (tid == 0) {
        return tk_store_raw_put(txn, DB_SESSION_TOKENS, sid, hash, TK_HASH_LEN,
                                flags & TK_PUT_APPEND);
    }
    size_t v = (size_t)tid;
    return tk_store_raw_put(txn, DB_SESSION_IDS, sid, &v, sizeof v, flags & TK_PUT_APPEND);
}

int tk_store_put_token(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_token_rec *rec,
                       unsigned flags)
{
    return tk_store_put_token_tid(txn, hash, rec, flags, NULL);
}

int tk_store_put_token_tid(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], const tk_token_rec *rec,
                           unsigned flags, uint64_t *tid_out)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    tk_token_rec r = *rec;
    int rc = tk_store_token_id(txn, hash, rec->tid, flags, &r.tid);
    if (rc != 0) {
        return rc;
    }
    rc = tk_record_encode_token(&r, buf, sizeof(buf), &len);
    if (rc != 0) {
        return rc == TK_E_TOOBIG ? TK_E_INVALID : rc;
    }
    rc = tk_store_raw_put(txn, DB_TOKENS, hash_key(hash), buf, len, flags);
    if (rc == TK_E_EXISTS && rec->tid == 0) {
        tk_store_id_unget(txn, r.tid); /* a taken key takes no id: a replay changes nothing */
    }
    if (rc == 0 && tid_out != NULL) {
        *tid_out = r.tid;
    }
    if (rc != 0 || (flags & TK_PUT_NO_INDEX)) {
        return rc;
    }
    if (rec->sid.len > 0) {
        rc = index_session(txn, rec->sid, r.tid, hash, 0);
    }
    if (rc == 0 && rec->has_parent) {
        rc = tk_store_raw_put(txn, DB_TOKEN_CHILDREN, hash_key(rec->parent), hash, TK_HASH_LEN, 0);
    }
    return rc;
}

int tk_store_index_session_token(tk_txn *txn, tk_slice sid, uint64_t tid, unsigned flags)
{
    if (!id_ok(sid) || tid == 0) {
        return TK_E_INVALID;
    }
    return index_session(txn, sid, tid, NULL, flags);
}

/* ---- IdP match keys ---------------------------------------------------------- */

/* Unambiguous without any separator byte (issuers and ids may hold any byte). */
void tk_store_key_hash(uint8_t kind, tk_slice a, tk_slice b, uint8_t out[TK_HASH_LEN])
{
    uint8_t buf[3 + TK_URL_MAX + TK_URL_MAX];
    TK_ASSERT(a.len <= TK_URL_MAX && b.len <= TK_URL_MAX);
    buf[0] = kind;
    buf[1] = (uint8_t)(a.len >> 8);
    buf[2] = (uint8_t)a.len;
    if (a.len > 0) {
        memcpy(buf + 3, a.p, a.len);
    }
    if (b.len > 0) {
        memcpy(buf + 3 + a.len, b.p, b.len);
    }
    tk_sha256(buf, 3 + a.len + b.len, out);
}

void tk_store_idp_key(uint8_t kind, tk_slice issuer, tk_slice value, uint8_t out[TK_HASH_LEN])
{
    TK_ASSERT(kind == TK_IDP_KEY_SUB || kind == TK_IDP_KEY_SID);
    tk_store_key_hash(kind, issuer, value, out);
}

int tk_store_put_session(tk_txn *txn, tk_slice sid, const tk_session_rec *rec, unsigned flags)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    int rc = tk_record_encode_session(rec, buf, sizeof(buf), &len);
    if (rc != 0 || !id_ok(sid) || (rec->idp_sid.len > 0 && rec->issuer.len == 0)) {
        return TK_E_INVALID;
    }
    rc = tk_store_raw_put(txn, DB_SESSIONS, sid, buf, len, flags);
    if (rc != 0 || (flags & TK_PUT_NO_INDEX) || rec->issuer.len == 0) {
        return rc;
    }
    /* (issuer, sub) and (issuer, idp sid) → sid: what IdP events look up. */
    uint8_t key[TK_HASH_LEN];
    tk_store_idp_key(TK_IDP_KEY_SUB, rec->issuer, rec->sub, key);
    rc = tk_store_raw_put(txn, DB_IDP_INDEX, hash_key(key), sid.p, sid.len, 0);
    if (rc == 0 && rec->idp_sid.len > 0) {
        tk_store_idp_key(TK_IDP_KEY_SID, rec->issuer, rec->idp_sid, key);
        rc = tk_store_raw_put(txn, DB_IDP_INDEX, hash_key(key), sid.p, sid.len, 0);
    }
    return rc;
}

int tk_store_put_grant(tk_txn *txn, tk_slice grant_id, const tk_grant_rec *rec, unsigned flags)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    int rc = tk_record_encode_grant(rec, buf, sizeof(buf), &len);
    if (rc != 0 || !id_ok(grant_id)) {
        return TK_E_INVALID;
    }
    rc = tk_store_raw_put(txn, DB_GRANTS, grant_id, buf, len, flags);
    if (rc == 0 && !(flags & TK_PUT_NO_INDEX)) {
        rc = tk_store_raw_put(txn, DB_CLIENT_GRANTS, rec->client_id, grant_id.p, grant_id.len, 0);
    }
    return rc;
}

int tk_store_put_client(tk_txn *txn, tk_slice client_id, const tk_client_rec *rec, unsigned flags)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    int rc = tk_record_encode_client(rec, buf, sizeof(buf), &len);
    if (rc != 0 || !id_ok(client_id)) {
        return TK_E_INVALID;
    }
    return tk_store_raw_put(txn, DB_CLIENTS, client_id, buf, len, flags);
}

/* ---- Iteration ------------------------------------------------------------------------------ */

static uint64_t entries_of(tk_txn *t, enum db_index db, int *rc)
{
    MDB_stat ms;
    int r = mdb_stat(t->txn, t->st->dbi[db], &ms);
    if (r != 0 && *rc == 0) {
        *rc = tk_store_err(r, "stat");
    }
    return r == 0 ? ms.ms_entries : 0;
}

int tk_store_stats_get(tk_txn *txn, tk_store_stats *out)
{
    TK_ASSERT(!txn->reset);
    memset(out, 0, sizeof(*out));
    int rc = 0;
    out->tokens = entries_of(txn, DB_TOKENS, &rc);
    out->sessions = entries_of(txn, DB_SESSIONS, &rc);
    out->grants = entries_of(txn, DB_GRANTS, &rc);
    out->clients = entries_of(txn, DB_CLIENTS, &rc);
    out->session_tokens = entries_of(txn, DB_SESSION_TOKENS, &rc);
    out->session_tokens +=
        txn->st->absent[DB_SESSION_IDS] ? 0 : entries_of(txn, DB_SESSION_IDS, &rc);
    out->token_children = entries_of(txn, DB_TOKEN_CHILDREN, &rc);
    MDB_envinfo info;
    MDB_stat es;
    int r = mdb_env_info(txn->st->env, &info);
    r = r != 0 ? r : mdb_env_stat(txn->st->env, &es);
    if (r != 0) {
        return rc != 0 ? rc : tk_store_err(r, "env_info");
    }
    out->map_size = info.me_mapsize;
    out->map_used = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
    out->readers_used = info.me_numreaders;
    out->readers_max = info.me_maxreaders;
    return rc;
}
