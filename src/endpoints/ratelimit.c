/*
 * Rate limiting of failed client authentications, per worker, in a fixed
 * table: token buckets keyed by a seeded hash of the source address (an
 * IPv6 address counts by its /64, the block one host usually holds) and of
 * the client id. A failure takes a token from both buckets; an empty
 * address bucket, or an empty client-id bucket when the address itself has
 * failed recently, answers 429 before any secret is compared.
 *
 * The one idea: good callers never pay. A caller whose address has no
 * recorded failure is never held back by its client id's bucket, so
 * somebody guessing a client's secret from elsewhere cannot lock that
 * client out; and while no failure happened for a full refill period the
 * check is a single comparison, with no table lookup at all.
 *
 * Memory is bounded: TK_RL_SLOTS entries in sets of TK_RL_WAYS; a new key
 * evicts the fullest bucket of its set (the one that forgets least). Each
 * worker has its own table, so a client spread over N workers' connections
 * gets up to N times the burst.
 */
#include "endpoints_int.h"

#include <string.h>

#define MT_PER_TOKEN 1000u /* bucket levels in milli-tokens */
#define SETS         (TK_RL_SLOTS / TK_RL_WAYS)

_Static_assert((uint64_t)TK_RL_BURST_MAX *MT_PER_TOKEN < UINT32_MAX / 2, "levels fit 32 bits");

void ep_rl_init(ep_ratelimit *rl, uint64_t seed, unsigned burst)
{
    TK_ASSERT(burst <= TK_RL_BURST_MAX);
    memset(rl, 0, sizeof *rl);
    rl->seed = seed | 1;
    rl->full_mt = burst * MT_PER_TOKEN;
    /* After this long without a failure every bucket is full again. */
    rl->quiet_s = (int64_t)burst * TK_RL_REFILL_MS / 1000 + 1;
    rl->last_fail_s = INT64_MIN / 2;
}

/* ---- Keys ---------------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Seeded FNV-1a, finished with a strong mixer; 0 is reserved for "empty". */
static uint64_t key_of(uint64_t seed, char kind, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed ^ (uint64_t)(unsigned char)kind;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
    }
    h = mix(h ^ n);
    return h != 0 ? h : 1;
}

static uint64_t addr_key(const ep_ratelimit *rl, const uint8_t peer[16])
{
    static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    bool v4 = memcmp(peer, v4_prefix, sizeof v4_prefix) == 0;
    return v4 ? key_of(rl->seed, '4', peer + 12, 4) : key_of(rl->seed, '6', peer, 8);
}

/* ---- Buckets ------------------------------------------------------------------------- */

/* Level of e at now_ms after refilling. */
static uint32_t level(const ep_ratelimit *rl, const ep_rl_entry *e, uint32_t now_ms)
{
    uint64_t gained = (uint64_t)(uint32_t)(now_ms - e->stamp_ms) * MT_PER_TOKEN / TK_RL_REFILL_MS;
    uint64_t v = e->level_mt + gained;
    return v >= rl->full_mt ? rl->full_mt : (uint32_t)v;
}

static ep_rl_entry *find(ep_ratelimit *rl, uint64_t key)
{
    ep_rl_entry *set = &rl->e[(key & (SETS - 1)) * TK_RL_WAYS];
    for (unsigned i = 0; i < TK_RL_WAYS; i++) {
        if (set[i].key == key) {
            return &set[i];
        }
    }
    return NULL;
}

/* The entry for key, made (evicting the fullest of its set) when absent. */
static ep_rl_entry *take(ep_ratelimit *rl, uint64_t key, uint32_t now_ms)
{
    ep_rl_entry *e = find(rl, key);
    if (e != NULL) {
        return e;
    }
    ep_rl_entry *set = &rl->e[(key & (SETS - 1)) * TK_RL_WAYS];
    ep_rl_entry *victim = &set[0];
    uint32_t best = 0;
    for (unsigned i = 0; i < TK_RL_WAYS; i++) {
        uint32_t lv = set[i].key == 0 ? rl->full_mt + 1 : level(rl, &set[i], now_ms);
        if (lv > best) {
            best = lv;
            victim = &set[i];
        }
    }
    *victim = (ep_rl_entry){.key = key, .level_mt = rl->full_mt, .stamp_ms = now_ms};
    return victim;
}

/* Seconds until e holds a whole token again (at least 1). */
static unsigned wait_s(uint32_t lv)
{
    uint64_t need = MT_PER_TOKEN - lv;
    uint64_t ms = (need * TK_RL_REFILL_MS + MT_PER_TOKEN - 1) / MT_PER_TOKEN;
    return (unsigned)((ms + 999) / 1000);
}

/* ---- API ------------------------------------------------------------------------------ */

unsigned ep_rl_check(ep_ratelimit *rl, const uint8_t peer[16], tk_slice client_id, int64_t now_s,
                     uint64_t (*now_ms_fn)(void))
{
    if (TK_LIKELY(now_s - rl->last_fail_s > rl->quiet_s)) {
        return 0; /* no failure for a whole refill period (or no limit at all) */
    }
    uint32_t now_ms = (uint32_t)now_ms_fn();
    const ep_rl_entry *a = find(rl, addr_key(rl, peer));
    uint32_t alv = a != NULL ? level(rl, a, now_ms) : rl->full_mt;
    if (alv < MT_PER_TOKEN) {
        return wait_s(alv);
    }
    if (alv == rl->full_mt || client_id.len == 0) {
        return 0; /* a clean address is never held back by its client id */
    }
    const ep_rl_entry *c = find(rl, key_of(rl->seed, 'c', client_id.p, client_id.len));
    uint32_t clv = c != NULL ? level(rl, c, now_ms) : rl->full_mt;
    return clv < MT_PER_TOKEN ? wait_s(clv) : 0;
}

void ep_rl_fail(ep_ratelimit *rl, const uint8_t peer[16], tk_slice client_id, int64_t now_s,
                uint64_t (*now_ms_fn)(void))
{
    if (rl->full_mt == 0) {
        return; /* --auth-fail-burst 0: no limit */
    }
    uint32_t now_ms = (uint32_t)now_ms_fn();
    rl->last_fail_s = now_s;
    uint64_t keys[2] = {addr_key(rl, peer), 0};
    if (client_id.len > 0) {
        keys[1] = key_of(rl->seed, 'c', client_id.p, client_id.len);
    }
    for (unsigned i = 0; i < 2 && keys[i] != 0; i++) {
        ep_rl_entry *e = take(rl, keys[i], now_ms);
        uint32_t lv = level(rl, e, now_ms);
        e->level_mt = lv >= MT_PER_TOKEN ? lv - MT_PER_TOKEN : 0;
        e->stamp_ms = now_ms;
        TK_ASSERT(e->level_mt <= rl->full_mt);
    }
}
