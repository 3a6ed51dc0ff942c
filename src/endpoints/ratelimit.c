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

#include "tokend/clock.h"
#include "tokend/log.h"

#include <stdio.h>
#include <string.h>

#define MT_PER_TOKEN 1000u /* bucket levels in milli-tokens */
#define SETS         (TK_RL_SLOTS / TK_RL_WAYS)

_Static_assert((uint64_t)TK_RL_BURST_MAX *MT_PER_TOKEN < UINT32_MAX / 2, "levels fit 32 bits");

static void init(ep_ratelimit *rl, uint64_t seed, unsigned burst, uint32_t refill_ms)
{
    TK_ASSERT(burst <= TK_RL_BURST_MAX && refill_ms > 0);
    memset(rl, 0, sizeof *rl);
    rl->seed = seed | 1;
    rl->full_mt = burst * MT_PER_TOKEN;
    rl->refill_ms = refill_ms;
    /* After this long without a failure every bucket is full again. */
    rl->quiet_s = (int64_t)burst * refill_ms / 1000 + 1;
    rl->last_fail_s = INT64_MIN / 2;
}

void ep_rl_init(ep_ratelimit *rl, uint64_t seed, unsigned burst)
{
    init(rl, seed, burst, TK_RL_REFILL_MS);
}

void ep_rl_init_per_minute(ep_ratelimit *rl, uint64_t seed, unsigned burst)
{
    init(rl, seed, burst, burst > 0 ? (60000u + burst - 1) / burst : 60000u);
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

uint64_t ep_rl_addr_key(uint64_t seed, const uint8_t peer[16])
{
    static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    bool v4 = memcmp(peer, v4_prefix, sizeof v4_prefix) == 0;
    return v4 ? key_of(seed, '4', peer + 12, 4) : key_of(seed, '6', peer, 8);
}

static uint64_t addr_key(const ep_ratelimit *rl, const uint8_t peer[16])
{
    return ep_rl_addr_key(rl->seed, peer);
}

/* ---- Buckets ------------------------------------------------------------------------- */

/* Level of e at now_ms after refilling. */
static uint32_t level(const ep_ratelimit *rl, const ep_rl_entry *e, uint32_t now_ms)
{
    uint64_t gained = (uint64_t)(uint32_t)(now_ms - e->stamp_ms) * MT_PER_TOKEN / rl->refill_ms;
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
static unsigned wait_s(const ep_ratelimit *rl, uint32_t lv)
{
    uint64_t need = MT_PER_TOKEN - lv;
    uint64_t ms = (need * rl->refill_ms + MT_PER_TOKEN - 1) / MT_PER_TOKEN;
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
        return wait_s(rl, alv);
    }
    if (alv == rl->full_mt || client_id.len == 0) {
        return 0; /* a clean address is never held back by its client id */
    }
    const ep_rl_entry *c = find(rl, key_of(rl->seed, 'c', client_id.p, client_id.len));
    uint32_t clv = c != NULL ? level(rl, c, now_ms) : rl->full_mt;
    return clv < MT_PER_TOKEN ? wait_s(rl, clv) : 0;
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

unsigned ep_rl_take(ep_ratelimit *rl, const uint8_t peer[16], uint64_t now_ms)
{
    if (rl->full_mt == 0) {
        return 0; /* burst 0: no limit */
    }
    uint32_t ms = (uint32_t)now_ms;
    ep_rl_entry *e = take(rl, addr_key(rl, peer), ms);
    uint32_t lv = level(rl, e, ms);
    if (lv < MT_PER_TOKEN) {
        return wait_s(rl, lv);
    }
    e->level_mt = lv - MT_PER_TOKEN;
    e->stamp_ms = ms;
    return 0;
}

/* ---- Stored /authorize requests --------------------------------------------------------- */

/* Move the window to now_s: the seconds that left the last ttl are
 * subtracted (at most TK_AUTHORIZE_TTL_MAX turns, or a reset). */
static void window_advance(ep_authz_window *win, int64_t ttl, int64_t now_s)
{
    if (now_s <= win->head_s) {
        return; /* the same second (or a clock step back: counted in the latest) */
    }
    if (now_s - win->head_s >= ttl) {
        memset(win->n, 0, sizeof win->n);
        win->total = 0;
    } else {
        for (int64_t s = win->head_s + 1; s <= now_s; s++) {
            uint32_t *slot = &win->n[(uint64_t)(s - ttl) % TK_AUTHORIZE_TTL_MAX];
            win->total -= *slot; /* created at s - ttl: expired at s */
            *slot = 0;
        }
    }
    win->head_s = now_s;
}

int ep_authz_admit(tk_app *app, const uint8_t peer[16], int64_t now_s, uint64_t now_ms)
{
    const tk_app_cfg *cfg = &app->cfg;
    /* config.c keeps authorize-ttl in 30..TK_AUTHORIZE_TTL_MAX; an embedder's 0 counts 1 s. */
    int64_t ttl = cfg->authorize_ttl < 1                      ? 1
                  : cfg->authorize_ttl > TK_AUTHORIZE_TTL_MAX ? TK_AUTHORIZE_TTL_MAX
                                                              : cfg->authorize_ttl;
    int rc = 0;
    pthread_mutex_lock(&app->authz_mu);
    unsigned wait = ep_rl_take(&app->authz_rl, peer, now_ms);
    ep_authz_window *win = &app->authz_win;
    window_advance(win, ttl, now_s);
    if (wait > 0) {
        rc = (int)wait;
    } else if (cfg->authorize_pending_max > 0 && win->total >= cfg->authorize_pending_max) {
        rc = -1;
        win->refused++;
        if (now_s != win->logged_s) {
            tk_log_warn("authorize_pending_full", "max=%u ttl=%lld refused=%llu",
                        cfg->authorize_pending_max, (long long)ttl,
                        (unsigned long long)win->refused);
            win->logged_s = now_s;
            win->refused = 0;
        }
    } else {
        win->n[(uint64_t)win->head_s % TK_AUTHORIZE_TTL_MAX]++;
        win->total++;
    }
    pthread_mutex_unlock(&app->authz_mu);
    return rc;
}

bool ep_authz_admitted(ep_req *r)
{
    ep_worker *w = r->w;
    int rc = ep_authz_admit(w->app, r->http->peer, w->now, tk_mono_ms());
    if (rc == 0) {
        return true;
    }
    if (rc < 0) {
        ep_reply_error_page(r, 503, "temporarily_unavailable",
                            "Too many sign-ins are in progress. Try again in a moment.");
        return false;
    }
    char hdr[40];
    snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n", rc);
    ep_html h;
    ep_html_begin(&h, w->scratch, sizeof w->scratch, "Authorization error");
    ep_html_raw(&h, "<h1>This request cannot continue</h1><p>Error: <code id=\"error\">"
                    "too_many_requests</code></p><p id=\"error_description\">Too many "
                    "authorization requests from this address. Try again in a minute.</p>");
    ep_html_end(&h);
    ep_reply_page(r, 429, &h, TK_SLICE_NULL, hdr);
    return false;
}
