/*
 * Unit tests for the failed-authentication rate limiter (ratelimit.c) with a
 * fake clock: the burst, the refill and Retry-After, the clean-address
 * exemption from a client id's bucket, IPv6 /64 grouping, burst 0, and that
 * thousands of distinct attackers stay within the fixed table (eviction).
 */
#include "check.h"

#include "../../src/endpoints/endpoints_int.h"

#include <stdlib.h>

static uint64_t fake_ms = 1000000;
static uint64_t clock_ms(void)
{
    return fake_ms;
}

static ep_ratelimit rl;
static const int64_t now_s = 1700000000;

static void v4(uint8_t out[16], uint8_t last)
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    out[12] = 10;
    out[15] = last;
}

static unsigned check(const uint8_t *peer, const char *id)
{
    return ep_rl_check(&rl, peer, tk_slice_from_str(id), now_s, clock_ms);
}

static void fail(const uint8_t *peer, const char *id)
{
    ep_rl_fail(&rl, peer, tk_slice_from_str(id), now_s, clock_ms);
}

static void test_burst_then_429_then_refill(void)
{
    ep_rl_init(&rl, 42, 5);
    uint8_t a[16];
    v4(a, 1);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(check(a, "tkc_x"), 0);
        fail(a, "tkc_x");
    }
    CHECK_EQ_INT(check(a, "tkc_x"), 1); /* Retry-After: 1 s */
    CHECK_EQ_INT(check(a, "tkc_y"), 1); /* the address is out, whatever the id */
    CHECK_EQ_INT(check(a, ""), 1);
    fake_ms += 999;
    CHECK_EQ_INT(check(a, "tkc_x"), 1);
    fake_ms += 1;
    CHECK_EQ_INT(check(a, "tkc_y"), 0); /* one token back after a second */
    fail(a, "tkc_y");
    CHECK(check(a, "tkc_y") > 0);
    fake_ms += 60000;
    CHECK_EQ_INT(check(a, "tkc_x"), 0);
}

static void test_clean_address_not_held_by_client_id(void)
{
    ep_rl_init(&rl, 7, 3);
    uint8_t attackers[3][16], good[16], dirty[16];
    for (int i = 0; i < 3; i++) {
        v4(attackers[i], (uint8_t)(20 + i));
        fail(attackers[i], "tkc_victim"); /* one failure each: the id is exhausted */
    }
    v4(good, 99);
    v4(dirty, 98);
    CHECK_EQ_INT(check(good, "tkc_victim"), 0); /* no failure from here: not held back */
    fail(dirty, "tkc_other");
    CHECK_EQ_INT(check(dirty, "tkc_other"), 0);
    CHECK_EQ_INT(check(dirty, "tkc_victim"), 1); /* failed itself: the id's bucket applies */
}

static void test_ipv6_counts_by_64(void)
{
    ep_rl_init(&rl, 9, 2);
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16];
    memcpy(b, a, 16);
    b[15] = 2; /* same /64 */
    uint8_t c[16];
    memcpy(c, a, 16);
    c[7] = 2; /* another /64 */
    fail(a, "");
    fail(b, "");
    CHECK_EQ_INT(check(a, ""), 1);
    CHECK_EQ_INT(check(b, ""), 1);
    CHECK_EQ_INT(check(c, ""), 0);
}

static void test_zero_burst_is_off(void)
{
    ep_rl_init(&rl, 1, 0);
    uint8_t a[16];
    v4(a, 3);
    for (int i = 0; i < 1000; i++) {
        fail(a, "tkc_x");
    }
    CHECK_EQ_INT(check(a, "tkc_x"), 0);
}

static void test_many_attackers_bounded(void)
{
    ep_rl_init(&rl, 5, 2);
    uint8_t a[16];
    for (unsigned i = 0; i < 100000; i++) {
        v4(a, 0);
        a[13] = (uint8_t)(i >> 8);
        a[14] = (uint8_t)i;
        a[15] = (uint8_t)(i >> 16);
        fail(a, "");
    }
    size_t used = 0;
    for (size_t i = 0; i < TK_RL_SLOTS; i++) {
        used += rl.e[i].key != 0;
    }
    CHECK(used <= TK_RL_SLOTS);
    CHECK(used > TK_RL_SLOTS / 2); /* the table is in use, not thrashing one set */
    /* The most recent attacker is still remembered. */
    fail(a, "");
    CHECK_EQ_INT(check(a, ""), 1);
}

/* ---- Address keys (ep_rl_addr_key): the class ---------------------------------------- */

static uint64_t rnd_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void random_v6(uint8_t a[16])
{
    uint64_t hi = rnd(), lo = rnd();
    memcpy(a, &hi, 8);
    memcpy(a + 8, &lo, 8);
    a[0] = (uint8_t)(0x20 | (a[0] & 0x0f)); /* global unicast 2000::/4, never ::ffff:0:0/96 */
}

/* An IPv6 address is keyed by its /64: any interface id gives the same key,
 * any bit of the prefix another; IPv4 (IPv4-mapped) by every bit of the
 * address, never equal to an IPv6 key; the seed changes every key. */
static void test_addr_key_classes(void)
{
    const uint64_t seed = 0x1234567;
    for (int round = 0; round < 200; round++) {
        uint8_t a[16], b[16];
        random_v6(a);
        uint64_t k = ep_rl_addr_key(seed, a);
        memcpy(b, a, 16);
        for (int i = 0; i < 64; i++) { /* the interface id, bit by bit and all at once */
            b[8 + i / 8] ^= (uint8_t)(1u << (i % 8));
            CHECK(ep_rl_addr_key(seed, b) == k);
        }
        uint64_t iid = rnd();
        memcpy(b + 8, &iid, 8);
        CHECK(ep_rl_addr_key(seed, b) == k);
        for (int i = 4; i < 64; i++) { /* every prefix bit (the first 4 keep it global) */
            memcpy(b, a, 16);
            b[i / 8] ^= (uint8_t)(1u << (7 - i % 8));
            CHECK(ep_rl_addr_key(seed, b) != k);
        }
        CHECK(ep_rl_addr_key(seed ^ 1, a) != k);
        /* IPv4 as ::ffff:a.b.c.d: every address bit counts. */
        uint8_t v[16];
        v4(v, (uint8_t)round);
        v[13] = (uint8_t)rnd();
        uint64_t kv = ep_rl_addr_key(seed, v);
        for (int i = 0; i < 32; i++) {
            memcpy(b, v, 16);
            b[12 + i / 8] ^= (uint8_t)(1u << (i % 8));
            CHECK(ep_rl_addr_key(seed, b) != kv);
        }
        /* An IPv6 address whose last 4 bytes are the same IPv4 address is another key. */
        memcpy(b, a, 12);
        memcpy(b + 12, v + 12, 4);
        CHECK(ep_rl_addr_key(seed, b) != kv);
    }
}

/* ep_rl_take (register-burst, authorize-burst): burst tokens at once, then
 * burst per minute; a whole /64 shares one bucket, so 2^64 addresses are not
 * 2^64 bursts; IPv4 addresses do not share. */
static void test_admission_per_address(void)
{
    ep_ratelimit adm;
    ep_rl_init_per_minute(&adm, 7, 3);
    uint64_t now = 5000000;
    uint8_t a[16];
    random_v6(a);
    for (int i = 0; i < 3; i++) {
        a[15] = (uint8_t)i; /* three addresses of one /64 */
        uint64_t iid = rnd();
        memcpy(a + 8, &iid, 8);
        CHECK_EQ_INT(ep_rl_take(&adm, a, now), 0);
    }
    for (int i = 0; i < 1000; i++) { /* any other address of that /64 */
        uint64_t iid = rnd();
        memcpy(a + 8, &iid, 8);
        CHECK_EQ_INT(ep_rl_take(&adm, a, now), 20); /* one back every 60 s / 3 */
    }
    uint8_t other[16];
    memcpy(other, a, 16);
    other[7] ^= 1; /* the next /64 */
    CHECK_EQ_INT(ep_rl_take(&adm, other, now), 0);
    uint8_t v[16];
    for (int i = 0; i < 10; i++) { /* IPv4 addresses each have their own bucket */
        v4(v, (uint8_t)(100 + i));
        CHECK_EQ_INT(ep_rl_take(&adm, v, now), 0);
    }
    now += 19999;
    CHECK(ep_rl_take(&adm, a, now) > 0);
    now += 1;
    CHECK_EQ_INT(ep_rl_take(&adm, a, now), 0); /* refilled one */
    CHECK(ep_rl_take(&adm, a, now) > 0);
    ep_rl_init_per_minute(&adm, 7, 0); /* 0: no limit */
    for (int i = 0; i < 100; i++) {
        CHECK_EQ_INT(ep_rl_take(&adm, a, now), 0);
    }
}

/* ep_authz_admit: the per-address bucket first, then the stored requests of
 * the last authorize-ttl seconds against authorize-pending-max. */
static void test_authorize_admission(void)
{
    tk_app *app = calloc(1, sizeof *app);
    CHECK(app != NULL);
    app->cfg.authorize_ttl = 30;
    app->cfg.authorize_pending_max = 5;
    pthread_mutex_init(&app->authz_mu, NULL);
    ep_rl_init_per_minute(&app->authz_rl, 9, 2);
    uint8_t p[16];
    int64_t t = 1700000000;
    uint64_t ms = 1000000;
    for (int i = 0; i < 5; i++) {
        v4(p, (uint8_t)(i / 2)); /* two per address */
        CHECK_EQ_INT(ep_authz_admit(app, p, t + i, ms), 0);
    }
    v4(p, 2);                                            /* its second token */
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 5, ms), -1); /* five pending: full */
    v4(p, 0);
    CHECK(ep_authz_admit(app, p, t + 5, ms) > 0); /* the address limit answers first */
    v4(p, 9);
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 29, ms), -1); /* all five still pending */
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 30, ms), 0);  /* the one from t expired */
    v4(p, 10);
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 30, ms), -1);
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 31, ms), 0); /* t + 1 expired */
    v4(p, 11);
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 1000, ms), 0); /* a long pause: a fresh window */
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 1000, ms), 0);
    for (int i = 0; i < 3; i++) {
        v4(p, (uint8_t)(20 + i));
        CHECK_EQ_INT(ep_authz_admit(app, p, t + 999, ms), 0); /* a step back counts too */
    }
    v4(p, 30);
    CHECK_EQ_INT(ep_authz_admit(app, p, t + 1000, ms), -1);
    CHECK_EQ_INT(app->authz_win.total, 5);
    pthread_mutex_destroy(&app->authz_mu);
    free(app);
}

int main(void)
{
    RUN(test_burst_then_429_then_refill);
    RUN(test_clean_address_not_held_by_client_id);
    RUN(test_ipv6_counts_by_64);
    RUN(test_zero_burst_is_off);
    RUN(test_many_attackers_bounded);
    RUN(test_addr_key_classes);
    RUN(test_admission_per_address);
    RUN(test_authorize_admission);
    return check_report();
}
