/*
 * Fuzz the prefetch walker (src/store/prefetch.c) over arbitrary bytes taken
 * as an LMDB map: whatever the pages say, the walker must never read outside
 * the map (ASan watches the exact allocation), must end each walk on a page
 * of the map, and any value it reports must lie inside the leaf page it
 * reached. Input: byte 0 picks the page size (512 << 0..3), byte 1 the
 * depth (% 20) and the levels prefetched (/ 20 % 3), bytes 2..3 the root page, byte 4 the number of
 * keys (1..8); then each key as a length byte (0..63) and its bytes; the rest are the pages.
 */
#include "fuzz_common.h"

#include <string.h>

#include "tokend/prefetch.h"

#define KEYS_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) {
        return 0;
    }
    uint32_t psize = 512u << (data[0] & 3);
    tk_pf_tree tree = {.root = (uint64_t)(data[2] | data[3] << 8),
                       .depth = data[1] % 20,
                       .prefetch_levels = data[1] / 20 % 3};
    size_t nkeys = (size_t)(data[4] % KEYS_MAX) + 1, at = 5;
    tk_pf_target t[KEYS_MAX];
    for (size_t i = 0; i < nkeys; i++) {
        size_t len = at < size ? data[at++] % 64 : 0;
        if (len > size - at) {
            len = size - at;
        }
        t[i] = (tk_pf_target){.key = data + at, .klen = len, .tree = tree};
        at += len;
    }
    uint64_t npages = (size - at) / psize;
    if (npages == 0) {
        return 0;
    }
    size_t bytes = (size_t)npages * psize;
    uint8_t *map = malloc(bytes); /* exactly the map: a read beyond it is caught */
    EXPECT(map != NULL);
    memcpy(map, data + at, bytes);
    tk_pf_map m = {.base = map, .npages = npages, .psize = psize};
    size_t reached = tk_pf_descend(&m, t, nkeys);
    EXPECT(reached <= nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        if (t[i].page == NULL) {
            continue;
        }
        EXPECT(t[i].page >= map && t[i].page < map + bytes && t[i].pgno < npages);
        EXPECT(t[i].page == map + t[i].pgno * psize);
        tk_slice v;
        if (tk_pf_leaf_find(&m, &t[i], &v) == 1) {
            EXPECT((const uint8_t *)v.p >= t[i].page &&
                   (const uint8_t *)v.p + v.len <= t[i].page + psize);
        }
        if (t[i].klen > 0) {
            tk_slice w;
            int rc = tk_pf_find(&m, tree, t[i].key, t[i].klen, &w);
            EXPECT(rc >= -1 && rc <= 1);
            EXPECT(rc != 1 ||
                   ((const uint8_t *)w.p >= map && (const uint8_t *)w.p + w.len <= map + bytes));
        }
    }
    free(map);
    return 0;
}
