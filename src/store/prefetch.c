/*
 * Prefetching a batch (docs/ARCHITECTURE.md §4, "Prefetching a batch"): our
 * own read-only walker over LMDB 0.9's page format, and the store's use of
 * it, tk_store_prefetch_tokens.
 *
 * The one idea: a worker knows a whole batch of tokens before it reads any,
 * but mdb_get finishes one lookup before the next can start, so each
 * lookup's cache and TLB misses (a B-tree level each) follow one another.
 * The walker descends towards all the batch's keys level by level,
 * prefetching each next page, so their misses overlap; the real reads that
 * follow find the pages loaded. It is only a hint: nothing here decides an
 * answer, and a walk that meets anything unexpected simply stops.
 *
 * The format facts it relies on (LMDB 0.9.x, 64-bit; tests/unit/test_prefetch.c
 * checks each against real stores: every key's walk must end at the leaf
 * node holding the very value bytes mdb_get returns):
 *  - page p of the map is at base + p * psize; pages 0 and 1 are the metas;
 *  - page header (16 bytes): uint64 pgno (the page's own number), uint16
 *    pad, uint16 flags (P_BRANCH 0x01, P_LEAF 0x02, P_OVERFLOW 0x04, P_META
 *    0x08, P_LEAF2 0x20, P_SUBP 0x40), uint16 lower, uint16 upper; then
 *    uint16 ptrs[(lower - 16) / 2], each a node's offset from the page start;
 *  - node: uint16 lo, uint16 hi, uint16 flags, uint16 ksize, then the key;
 *    in a branch the child's pgno is lo | hi << 16 | flags << 32 and key 0
 *    is implicit (the child for keys below key 1); in a leaf the value
 *    (lo | hi << 16 bytes) follows the key unless flags has F_BIGDATA (0x01:
 *    an overflow page) or F_SUBDATA / F_DUPDATA (0x02 / 0x04);
 *  - keys in the order tk_store_key_cmp gives (byte-wise, shorter first);
 *  - a named DBI's root is its MDB_db record (48 bytes: uint32 pad, uint16
 *    flags, uint16 depth, pgno branch, leaf and overflow page counts, size_t
 *    entries, pgno root; root ~0: empty), the value of its name in the main
 *    DBI; checked against mdb_stat before it is used.
 */
#include "store_int.h"
#include "tokend/prefetch.h"
#include "tokend/record.h"

#include <string.h>
#include <unistd.h>

#define PAGE_HDR   16u
#define NODE_HDR   8u
#define P_BRANCH   0x01u
#define P_LEAF     0x02u
#define P_ODD      0x7cu /* overflow, meta, dirty, leaf2, sub-page: never on a walk */
#define F_BIGDATA  0x01u
#define F_NOVALUE  0x06u /* F_SUBDATA, F_DUPDATA: the value is not plain bytes */
#define DEPTH_MAX  16u   /* LMDB's cursor stack is 32; a 4 KiB page tree of depth 16 is absurd */
#define CACHE_LINE 64u

static uint16_t u16_at(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t u64_at(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Page pgno of the map, or NULL when it is not one a tree may use. */
static const uint8_t *page_at(const tk_pf_map *m, uint64_t pgno)
{
    if (pgno < 2 || pgno >= m->npages) {
        return NULL;
    }
    return m->base + pgno * m->psize;
}

/* The page's key count when it is a well-formed page of kind (P_BRANCH or
 * P_LEAF) numbered pgno, else 0. */
static unsigned page_keys(const tk_pf_map *m, const uint8_t *p, uint64_t pgno, unsigned kind)
{
    unsigned flags = u16_at(p + 10), lower = u16_at(p + 12), upper = u16_at(p + 14);
    if (u64_at(p) != pgno || (flags & (P_BRANCH | P_LEAF | P_ODD)) != kind) {
        return 0;
    }
    if (lower < PAGE_HDR + 2 || (lower - PAGE_HDR) % 2 != 0 || lower > upper || upper > m->psize) {
        return 0;
    }
    return (lower - PAGE_HDR) / 2;
}

/* Node i of a checked page: NULL unless its header and key lie inside the
 * page, after the pointer array. */
static const uint8_t *node_at(const tk_pf_map *m, const uint8_t *p, unsigned i, unsigned nkeys)
{
    unsigned off = u16_at(p + PAGE_HDR + 2 * i);
    if (off < PAGE_HDR + 2 * nkeys || off + NODE_HDR > m->psize ||
        off + NODE_HDR + u16_at(p + off + 6) > m->psize) {
        return NULL;
    }
    return p + off;
}

/* tk_store_key_cmp's order on a node's key: -1, 0, 1; 2 for a bad node. */
static int key_cmp(const uint8_t *node, const uint8_t *key, size_t klen)
{
    if (node == NULL) {
        return 2;
    }
    size_t nlen = u16_at(node + 6);
    if (klen >= 8 && nlen >= 8) { /* most keys differ in their first eight bytes */
        uint64_t a = __builtin_bswap64(u64_at(key)), b = __builtin_bswap64(u64_at(node + NODE_HDR));
        if (a != b) {
            return a < b ? -1 : 1;
        }
    }
    int c = memcmp(key, node + NODE_HDR, klen < nlen ? klen : nlen);
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    return klen < nlen ? -1 : klen > nlen ? 1 : 0;
}

/* The child of a checked branch page for key: the last node whose key is
 * ≤ key, node 0 standing for everything below node 1. 0 on a bad node. */
static uint64_t branch_child(const tk_pf_map *m, const uint8_t *p, unsigned nkeys,
                             const uint8_t *key, size_t klen)
{
    unsigned lo = 1, hi = nkeys; /* the answer is in [lo - 1, hi - 1] */
    while (lo < hi) {            /* bounded: the range halves */
        unsigned mid = lo + (hi - lo) / 2;
        int c = key_cmp(node_at(m, p, mid, nkeys), key, klen);
        if (c == 2) {
            return 0;
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    const uint8_t *n = node_at(m, p, lo - 1, nkeys);
    if (n == NULL) {
        return 0;
    }
    return (uint64_t)u16_at(n) | (uint64_t)u16_at(n + 2) << 16 | (uint64_t)u16_at(n + 4) << 32;
}

/* Ask for a page's first line only: its header and the start of its
 * pointer array, and above all its translation. Measured at 10 M tokens on
 * a VM (nested paging), the walk of the TLB, not the line, is what each new
 * page costs: one line per page gave 1.29x the requests per second of no
 * prefetch, where every line of the page (64 prefetches, each waiting on
 * the same translation and filling the load queue) gave 0.91x. */
static void prefetch_page(const uint8_t *p)
{
    __builtin_prefetch(p, 0, 2);
}

/* Start target t at its root; false when the tree gives nothing to walk. */
static bool start(const tk_pf_map *m, tk_pf_target *t)
{
    t->page = NULL;
    t->pgno = 0;
    if (t->tree.depth == 0 || t->tree.depth > DEPTH_MAX || t->key == NULL || t->klen == 0 ||
        t->klen > UINT16_MAX) {
        return false;
    }
    t->page = page_at(m, t->tree.root);
    t->pgno = t->tree.root;
    return t->page != NULL;
}

/* One level down from the branch page t is at; the page reached, or NULL. */
static const uint8_t *step(const tk_pf_map *m, tk_pf_target *t)
{
    unsigned nkeys = page_keys(m, t->page, t->pgno, P_BRANCH);
    uint64_t child = nkeys == 0 ? 0 : branch_child(m, t->page, nkeys, t->key, t->klen);
    t->pgno = child;
    return page_at(m, child);
}

size_t tk_pf_descend(const tk_pf_map *m, tk_pf_target *t, size_t n)
{
    unsigned levels = 0;
    for (size_t i = 0; i < n; i++) {
        if (start(m, &t[i]) && t[i].tree.depth > levels) {
            levels = t[i].tree.depth;
        }
    }
    /* Level l (1 = the root) is searched at step l; its child is level
     * l + 1, prefetched when it is one of the tree's prefetch_levels lowest
     * (level depth is the leaves). */
    for (unsigned l = 1; l < levels; l++) { /* bounded by DEPTH_MAX */
        for (size_t i = 0; i < n; i++) {
            if (t[i].page == NULL || l >= t[i].tree.depth) {
                continue;
            }
            t[i].page = step(m, &t[i]);
            if (t[i].page != NULL && l + t[i].tree.prefetch_levels >= t[i].tree.depth) {
                prefetch_page(t[i].page);
            }
        }
    }
    size_t reached = 0;
    for (size_t i = 0; i < n; i++) {
        reached += t[i].page != NULL;
    }
    return reached;
}

int tk_pf_leaf_find(const tk_pf_map *m, const tk_pf_target *t, tk_slice *val)
{
    if (t->page == NULL) {
        return -1;
    }
    unsigned nkeys = page_keys(m, t->page, t->pgno, P_LEAF);
    if (nkeys == 0) {
        return -1;
    }
    unsigned lo = 0, hi = nkeys;
    while (lo < hi) { /* bounded: the range halves */
        unsigned mid = lo + (hi - lo) / 2;
        const uint8_t *node = node_at(m, t->page, mid, nkeys);
        int c = key_cmp(node, t->key, t->klen);
        if (c == 2) {
            return -1;
        }
        if (c < 0) {
            hi = mid;
        } else if (c > 0) {
            lo = mid + 1;
        } else {
            unsigned flags = u16_at(node + 4), ksize = u16_at(node + 6);
            size_t dsize = (size_t)u16_at(node) | (size_t)u16_at(node + 2) << 16;
            size_t at = (size_t)(node - t->page) + NODE_HDR + ksize;
            if ((flags & (F_BIGDATA | F_NOVALUE)) != 0 || dsize > m->psize - at) {
                return 0;
            }
            *val = (tk_slice){(const char *)node + NODE_HDR + ksize, dsize};
            return 1;
        }
    }
    return 0;
}

int tk_pf_find(const tk_pf_map *m, tk_pf_tree tree, const void *key, size_t klen, tk_slice *val)
{
    tree.prefetch_levels = 0;
    tk_pf_target t = {.key = key, .klen = klen, .tree = tree};
    return tk_pf_descend(m, &t, 1) == 1 ? tk_pf_leaf_find(m, &t, val) : 0;
}

/* ---- The store's use: roots per snapshot, tokens and what they point at ---- */

/* The trees the read path descends, in the snapshot's own MDB_db records. */
static const enum db_index pf_dbs[TK_PF_TREES] = {DB_TOKENS, DB_GRANTS, DB_SESSIONS};

/* A DBI's tree from its MDB_db record in the main DBI, checked against what
 * LMDB itself reports for the same snapshot (mdb_stat). Also gives the
 * address of the record, which lies in a leaf page of the map. */
static bool tree_of(tk_txn *t, MDB_dbi main, enum db_index db, tk_pf_tree *out, uint64_t pages[2],
                    const uint8_t **rec_out)
{
    const char *name = tk_store_db_name(db);
    MDB_val k = val_of(name, strlen(name)), v;
    MDB_stat ms;
    if (t->st->absent[db] || mdb_get(t->txn, main, &k, &v) != 0 || v.mv_size != 48 ||
        mdb_stat(t->txn, t->st->dbi[db], &ms) != 0) {
        return false;
    }
    const uint8_t *r = v.mv_data;
    unsigned flags = u16_at(r + 4), depth = u16_at(r + 6);
    uint64_t branches = u64_at(r + 8), leaves = u64_at(r + 16), entries = u64_at(r + 32);
    uint64_t root = u64_at(r + 40);
    if ((flags & 0x7eu) != 0 || depth != ms.ms_depth || leaves != ms.ms_leaf_pages ||
        entries != ms.ms_entries || depth > DEPTH_MAX) {
        return false; /* integer keys, duplicates, or a format we do not know */
    }
    *out = (tk_pf_tree){.root = root, .depth = root == UINT64_MAX ? 0 : depth};
    pages[0] = leaves;
    pages[1] = branches; /* nearly all of them the leaves' parents */
    *rec_out = r;
    return true;
}

/* The map as this snapshot sees it. LMDB does not say where it mapped the
 * file (me_mapaddr is set only with MDB_FIXEDMAP), so the base comes from
 * the page holding a record LMDB returned: that page starts at the record's
 * address rounded down to the page size (the map starts on a page boundary,
 * the OS page being LMDB's), and carries its own number. */
static bool map_of(tk_txn *t, const uint8_t *rec, tk_pf_map *out)
{
    MDB_envinfo info;
    MDB_stat es;
    long os_page = sysconf(_SC_PAGESIZE);
    if (mdb_env_info(t->st->env, &info) != 0 || mdb_env_stat(t->st->env, &es) != 0 ||
        os_page <= 0 || es.ms_psize != (unsigned long)os_page || es.ms_psize < 512 ||
        es.ms_psize > 65536 || (es.ms_psize & (es.ms_psize - 1)) != 0) {
        return false;
    }
    uintptr_t page = (uintptr_t)rec & ~(uintptr_t)(es.ms_psize - 1);
    uint64_t pgno = u64_at((const uint8_t *)page);
    uint64_t npages = (uint64_t)info.me_last_pgno + 1, mapped = info.me_mapsize / es.ms_psize;
    if ((u16_at((const uint8_t *)page + 10) & (P_LEAF | P_ODD)) != P_LEAF || pgno >= npages ||
        pgno > page / es.ms_psize) {
        return false;
    }
    uintptr_t base = page - pgno * es.ms_psize;
    if (t->st->map_base != 0 && t->st->map_gen == 0 && base != t->st->map_base) {
        return false; /* not where the store found the file mapped at open: do not guess */
    }
    *out = (tk_pf_map){.base = (const uint8_t *)base,
                       .npages = npages < mapped ? npages : mapped,
                       .psize = es.ms_psize};
    return true;
}

/* The roots for the snapshot t reads, computed once per snapshot (and
 * again after a remap); NULL when the walker cannot be used. */
static const tk_pfroot *roots(tk_txn *t)
{
    if (t->write || t->reset || t->pfmemo == NULL ||
        __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) { /* the page fields as LMDB writes them here */
        return NULL;
    }
    tk_pfroot *r = &t->pf;
    size_t snap = mdb_txn_id(t->txn);
    if (TK_LIKELY(r->snap == snap && r->map_gen == t->st->map_gen)) {
        return r->ok ? r : NULL;
    }
    *r = (tk_pfroot){.snap = snap, .map_gen = t->st->map_gen};
    const uint8_t *rec = NULL;
    uint64_t pages[TK_PF_TREES][2];
    for (unsigned i = 0; i < TK_PF_TREES; i++) {
        if (!tree_of(t, t->st->main_dbi, pf_dbs[i], &r->tree[i], pages[i], &rec)) {
            return NULL;
        }
    }
    r->ok = map_of(t, rec, &r->map);
    uint64_t min = TK_PREFETCH_LEVEL_BYTES / r->map.psize;
    for (unsigned i = 0; r->ok && i < TK_PF_TREES; i++) {
        unsigned k = pages[i][0] > min ? 1 + (pages[i][1] > min) : 0;
        r->tree[i].prefetch_levels = k;
    }
    r->big = r->ok && pages[TK_PF_TOKENS][0] > TK_PREFETCH_AUTO_BYTES / r->map.psize;
    return r->ok ? r : NULL;
}

/* The memo's index slot for a value's address in the map. */
static unsigned memo_slot(const char *at)
{
    uint64_t x = (uint64_t)(uintptr_t)at * 0x9e3779b97f4a7c15ull;
    return (unsigned)(x >> 56) % TK_PFMEMO_INDEX;
}

bool tk_store_prefetch_decoded(tk_txn *t, const MDB_val *v, tk_token_rec *out)
{
    const tk_pfmemo *m = t->pfmemo;
    if (m == NULL || m->snap == 0 || t->reset || m->snap != mdb_txn_id(t->txn) ||
        m->map_gen != t->st->map_gen) {
        return false;
    }
    unsigned i = m->idx[memo_slot(v->mv_data)];
    if (i == 0 || m->e[i - 1].at != v->mv_data || m->e[i - 1].len != v->mv_size) {
        return false;
    }
    *out = m->e[i - 1].rec;
    return true;
}

bool tk_store_prefetch_wanted(tk_txn *txn)
{
    const tk_pfroot *r = roots(txn);
    return r != NULL && r->big;
}

int tk_store_prefetch_find(tk_txn *txn, enum tk_pf_db db, tk_slice key, tk_slice *val)
{
    const tk_pfroot *r = roots(txn);
    TK_ASSERT((unsigned)db < TK_PF_TREES);
    if (r == NULL) {
        return -1;
    }
    return tk_pf_find(&r->map, r->tree[db], key.p, key.len, val);
}

size_t tk_store_prefetch_tokens(tk_txn *txn, const uint8_t (*hashes)[TK_HASH_LEN], size_t n)
{
    const tk_pfroot *r = roots(txn);
    if (r == NULL || n == 0) {
        return 0;
    }
    n = n < TK_PREFETCH_MAX ? n : TK_PREFETCH_MAX;
    tk_pf_target tok[TK_PREFETCH_MAX], next[2 * TK_PREFETCH_MAX];
    for (size_t i = 0; i < n; i++) {
        tok[i] =
            (tk_pf_target){.key = hashes[i], .klen = TK_HASH_LEN, .tree = r->tree[TK_PF_TOKENS]};
    }
    tk_pf_descend(&r->map, tok, n);
    /* Second round: the grant and the session of each token found (in a
     * tree large enough to miss the caches). Its leaf
     * was asked for a whole round ago. The record is decoded by the strict,
     * fuzzed reader and kept in the memo under the value's address: the
     * real read, whose mdb_get returns that same address for that key in
     * this snapshot, takes it instead of decoding the same bytes again. */
    tk_pfmemo *memo = txn->pfmemo;
    memset(memo->idx, 0, sizeof memo->idx);
    memo->snap = r->snap;
    memo->map_gen = r->map_gen;
    size_t m = 0, found = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        tk_slice v;
        if (tk_pf_leaf_find(&r->map, &tok[i], &v) != 1) {
            continue;
        }
        found++;
        tk_token_rec *rec = &memo->e[kept].rec;
        if (tk_record_decode_token((const uint8_t *)v.p, v.len, rec) != 0) {
            continue;
        }
        memo->e[kept].at = v.p;
        memo->e[kept].len = v.len;
        memo->idx[memo_slot(v.p)] = (uint8_t)(++kept);
        if (r->tree[TK_PF_GRANTS].prefetch_levels > 0) {
            next[m++] = (tk_pf_target){.key = (const uint8_t *)rec->grant_id.p,
                                       .klen = rec->grant_id.len,
                                       .tree = r->tree[TK_PF_GRANTS]};
        }
        if (r->tree[TK_PF_SESSIONS].prefetch_levels > 0) {
            next[m++] = (tk_pf_target){.key = (const uint8_t *)rec->sid.p,
                                       .klen = rec->sid.len,
                                       .tree = r->tree[TK_PF_SESSIONS]};
        }
    }
    tk_pf_descend(&r->map, next, m);
    return found;
}
