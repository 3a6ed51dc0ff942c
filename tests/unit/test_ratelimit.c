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

int main(void)
{
    RUN(test_burst_then_429_then_refill);
    RUN(test_clean_address_not_held_by_client_id);
    RUN(test_ipv6_counts_by_64);
    RUN(test_zero_burst_is_off);
    RUN(test_many_attackers_bounded);
    return check_report();
}
