/*
 * The latency histogram: log-linear buckets in the manner of HdrHistogram.
 * Values below 2^S (S = HIST_SUB_BITS) get one bucket each; a value v in
 * [2^m, 2^(m+1)) with m >= S keeps its top S+1 bits, so it lands in one of
 * 2^S buckets of width 2^(m-S). Recording is a count-leading-zeros, a shift
 * and an increment: cheap enough for every response.
 */
#include "bench.h"

#include <string.h>

void hist_reset(hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static size_t bucket_of(uint64_t v)
{
    const uint64_t sub = 1ull << HIST_SUB_BITS;
    if (v < sub) {
        return (size_t)v;
    }
    if (v >= (1ull << (HIST_MAX_LOG2 + 1))) {
        v = (1ull << (HIST_MAX_LOG2 + 1)) - 1; /* clamp: ~36 minutes */
    }
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - HIST_SUB_BITS;
    uint64_t top = v >> shift; /* in [sub, 2 * sub) */
    return (size_t)((shift + 1) * sub + (top - sub));
}

uint64_t hist_bucket_low(size_t i)
{
    const uint64_t sub = 1ull << HIST_SUB_BITS;
    if (i < sub) {
        return i;
    }
    uint64_t shift = i / sub - 1;
    uint64_t top = sub + i % sub;
    return top << shift;
}

uint64_t hist_bucket_width(size_t i)
{
    const uint64_t sub = 1ull << HIST_SUB_BITS;
    return i < sub ? 1 : 1ull << (i / sub - 1);
}

void hist_add(hist *h, uint64_t v)
{
    size_t i = bucket_of(v);
    h->b[i < HIST_BUCKETS ? i : HIST_BUCKETS - 1]++;
    h->count++;
    h->sum += (double)v;
    h->max = v > h->max ? v : h->max;
    h->min = v < h->min ? v : h->min;
}

void hist_merge(hist *into, const hist *from)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        into->b[i] += from->b[i];
    }
    into->count += from->count;
    into->sum += from->sum;
    into->max = from->max > into->max ? from->max : into->max;
    into->min = from->min < into->min ? from->min : into->min;
}

uint64_t hist_quantile(const hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    if (q >= 1.0) {
        return h->max;
    }
    uint64_t rank = (uint64_t)(q * (double)h->count) + 1; /* 1-based */
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t mid = hist_bucket_low(i) + hist_bucket_width(i) / 2;
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}

double hist_mean(const hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
