/*
 * A read-only walker over the pages of an LMDB 0.9 map, used only to start
 * memory loads early (docs/ARCHITECTURE.md §4, "Prefetching a batch").
 *
 * It knows the on-disk B-tree format (page header, node layout, branch
 * children) and nothing else: it takes a map (base, page count, page size)
 * and a tree (root page, depth) and descends towards keys. Nothing it finds
 * decides anything: the store's real reads (mdb_get) still run afterwards
 * and decide every answer, so a walk that stops early or goes astray only
 * wastes a prefetch. Every page number, header field, pointer and node is
 * checked against the map and the page before it is followed, so any bytes
 * at all (a fake map in the fuzz target) are walked without reading outside
 * the map. Thread-safety: pure functions over memory the caller keeps valid.
 */
#ifndef TOKEND_PREFETCH_H
#define TOKEND_PREFETCH_H

#include "tokend/common.h"

/* Pages 0 .. npages - 1 of psize bytes each at base, all readable. */
typedef struct tk_pf_map {
    const uint8_t *base;
    uint64_t npages;
    uint32_t psize; /* a power of two, 512 .. 65536 */
} tk_pf_map;

/* A tree of the map: its root page and depth (0: empty), and how many of
 * its lowest levels a descent prefetches (0: none, 1: the leaves, 2: the
 * leaves and their parents; the levels above stay cached by use). */
typedef struct tk_pf_tree {
    uint64_t root;
    unsigned depth;
    unsigned prefetch_levels;
} tk_pf_tree;

/* One key to descend towards. The walk fills page/pgno; page is NULL once
 * the walk stopped (an odd page, an empty tree). */
typedef struct tk_pf_target {
    const uint8_t *key;
    size_t klen;
    tk_pf_tree tree;
    const uint8_t *page; /* out: the leaf page reached, or NULL */
    uint64_t pgno;       /* out: its number */
} tk_pf_target;

/* Descend all n targets level by level: one step searches each target's
 * current branch page (asked for one step before) and asks for its child,
 * so the loads of the n walks overlap instead of following one another.
 * A child in one of its tree's prefetch_levels is prefetched whole.
 * Returns how many reached a page at leaf level (not yet checked:
 * tk_pf_leaf_find does). */
size_t tk_pf_descend(const tk_pf_map *m, tk_pf_target *t, size_t n);

/* Search the leaf page a target reached for its key: 1 and *val (the
 * node's value, inside the page) on an exact match with a value stored in
 * the node itself; 0 when the key is absent or its value lives elsewhere;
 * -1 when the page is not a well-formed leaf. */
int tk_pf_leaf_find(const tk_pf_map *m, const tk_pf_target *t, tk_slice *val);

/* One key from root to leaf, prefetching nothing: tk_pf_leaf_find's result. */
int tk_pf_find(const tk_pf_map *m, tk_pf_tree tree, const void *key, size_t klen, tk_slice *val);

#endif
