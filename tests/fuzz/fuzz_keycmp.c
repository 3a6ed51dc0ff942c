/*
 * Fuzz the store's key comparison (tk_store_key_cmp): it must order every
 * pair of keys exactly as LMDB's default comparison does (byte-wise over the
 * common length, then the shorter first), since stores written with either
 * are read with the other. The input is split into two keys at the place
 * its first byte names; each order is checked both ways round, and a key
 * against itself.
 */
#include "fuzz_common.h"

#include <string.h>

#include "../../src/store/store_int.h"

static int ref_cmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int d = n > 0 ? memcmp(a->mv_data, b->mv_data, n) : 0;
    if (d != 0) {
        return d < 0 ? -1 : 1;
    }
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 + 2 * 511) { /* LMDB's longest key, twice */
        return 0;
    }
    size_t cut = data[0] % size;
    MDB_val a = {.mv_size = cut, .mv_data = (void *)(data + 1)};
    MDB_val b = {.mv_size = size - 1 - cut, .mv_data = (void *)(data + 1 + cut)};
    EXPECT(sign(tk_store_key_cmp(&a, &b)) == ref_cmp(&a, &b));
    EXPECT(sign(tk_store_key_cmp(&b, &a)) == ref_cmp(&b, &a));
    EXPECT(tk_store_key_cmp(&a, &a) == 0 && tk_store_key_cmp(&b, &b) == 0);
    return 0;
}
