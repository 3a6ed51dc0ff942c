/*
 * Unit tests for the SSRF guard's address classifier
 * (tk_outbound_addr_public): every refused IPv4 range at both edges and just
 * outside them; every /16 of the IPv4 space (at several host parts) against
 * an independent reference written with 32-bit masks, and the same address
 * in each IPv6 form that carries an IPv4 address (mapped, NAT64, 6to4),
 * which must get the same answer; the IPv6 ranges by their edges.
 */
#include "check.h"

#include "tokend/outbound.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

/* The reference: the refused IPv4 ranges as (network, prefix length). */
static const struct {
    uint32_t net;
    unsigned bits;
} ref4[] = {
    {0x00000000u, 8},  {0x0a000000u, 8},  {0x64400000u, 10}, {0x7f000000u, 8},  {0xa9fe0000u, 16},
    {0xac100000u, 12}, {0xc0000000u, 24}, {0xc0000200u, 24}, {0xc0586300u, 24}, {0xc0a80000u, 16},
    {0xc6120000u, 15}, {0xc6336400u, 24}, {0xcb007100u, 24}, {0xe0000000u, 4},  {0xf0000000u, 4},
};

static bool ref_public(uint32_t a)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(ref4); i++) {
        uint32_t mask = ref4[i].bits == 0 ? 0 : 0xffffffffu << (32 - ref4[i].bits);
        if ((a & mask) == ref4[i].net) {
            return false;
        }
    }
    return true;
}

static void be32(uint32_t a, uint8_t out[4])
{
    out[0] = (uint8_t)(a >> 24);
    out[1] = (uint8_t)(a >> 16);
    out[2] = (uint8_t)(a >> 8);
    out[3] = (uint8_t)a;
}

static bool pub4(uint32_t a)
{
    uint8_t b[4];
    be32(a, b);
    return tk_outbound_addr_public(AF_INET, b);
}

static bool pub6(const char *text)
{
    uint8_t b[16];
    if (inet_pton(AF_INET6, text, b) != 1) {
        fprintf(stderr, "bad test address %s\n", text);
        return true; /* makes the CHECK(!pub6(...)) fail */
    }
    return tk_outbound_addr_public(AF_INET6, b);
}

/* The three IPv6 forms of an IPv4 address. */
static void forms6(uint32_t a, uint8_t mapped[16], uint8_t nat64[16], uint8_t six[16])
{
    memset(mapped, 0, 16);
    mapped[10] = mapped[11] = 0xff;
    be32(a, mapped + 12);
    memset(nat64, 0, 16);
    nat64[1] = 0x64;
    nat64[2] = 0xff;
    nat64[3] = 0x9b;
    be32(a, nat64 + 12);
    memset(six, 0, 16);
    six[0] = 0x20;
    six[1] = 0x02;
    be32(a, six + 2);
    six[15] = 1;
}

static void test_every_ipv4_range_edges(void)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(ref4); i++) {
        uint32_t size = 1u << (32 - ref4[i].bits);
        uint32_t first = ref4[i].net, last = ref4[i].net + (size - 1);
        CHECK(!pub4(first));
        CHECK(!pub4(last));
        CHECK(!pub4(first + size / 2));
        if (first > 0) {
            CHECK_EQ_INT(pub4(first - 1), ref_public(first - 1));
        }
        if (last < 0xffffffffu) {
            CHECK_EQ_INT(pub4(last + 1), ref_public(last + 1));
        }
    }
    CHECK(pub4(0x01010101u));  /* 1.1.1.1 */
    CHECK(pub4(0x08080808u));  /* 8.8.8.8 */
    CHECK(pub4(0x643fffffu));  /* 100.63.255.255: just below CGNAT */
    CHECK(pub4(0x64800000u));  /* 100.128.0.0: just above */
    CHECK(pub4(0xac0fffffu));  /* 172.15.255.255 */
    CHECK(pub4(0xac200000u));  /* 172.32.0.0 */
    CHECK(!pub4(0xffffffffu)); /* broadcast */
    CHECK(!pub4(0xa9fea9feu)); /* 169.254.169.254: cloud metadata */
}

static void test_whole_ipv4_space_and_its_ipv6_forms(void)
{
    static const uint32_t hosts[] = {0x0000, 0x0001, 0x00ff, 0x0100,
                                     0x7fff, 0x8000, 0xfffe, 0xffff};
    unsigned mismatches = 0;
    for (uint32_t hi = 0; hi <= 0xffff; hi++) {
        for (size_t h = 0; h < TK_ARRAY_LEN(hosts); h++) {
            uint32_t a = hi << 16 | hosts[h];
            bool want = ref_public(a);
            uint8_t m[16], n[16], s[16];
            forms6(a, m, n, s);
            if (pub4(a) != want || tk_outbound_addr_public(AF_INET6, m) != want ||
                tk_outbound_addr_public(AF_INET6, n) != want ||
                tk_outbound_addr_public(AF_INET6, s) != want) {
                if (mismatches++ < 5) {
                    fprintf(stderr, "mismatch at %08x (want %d)\n", a, want);
                }
            }
        }
    }
    CHECK_EQ_INT((int)mismatches, 0);
}

static void test_ipv6_ranges(void)
{
    static const char *const refused[] = {
        "::",
        "::1",
        "::2",
        "::127.0.0.1", /* IPv4-compatible */
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b:1::1", /* local-use NAT64 */
        "100::1",
        "fc00::1",
        "fd12:3456::1",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "2001::1",
        "2001:1ff:ffff::1",
        "2001:db8::1",
        "2001:db8:ffff::1",
        "3fff::1",
        "3fff:fff::1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "2002:c0a8:101::1",
        "1fff:ffff::1",
        "4000::1",
        "e000::1",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(refused); i++) {
        if (pub6(refused[i])) {
            fprintf(stderr, "accepted: %s\n", refused[i]);
            CHECK(false);
        }
    }
    static const char *const accepted[] = {
        "2000::1",
        "2001:200::1",
        "2001:4860:4860::8888",
        "2001:db7:ffff::1",
        "2001:db9::1",
        "2606:4700::1111",
        "2a00:1450::1",
        "3ffe::1",
        "3fff:1000::1",
        "2002:808:808::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(accepted); i++) {
        if (!pub6(accepted[i])) {
            fprintf(stderr, "refused: %s\n", accepted[i]);
            CHECK(false);
        }
    }
    uint8_t any[16] = {0};
    CHECK(!tk_outbound_addr_public(AF_UNIX, any));
    CHECK(!tk_outbound_addr_public(0, any));
}

int main(void)
{
    RUN(test_every_ipv4_range_edges);
    RUN(test_whole_ipv4_space_and_its_ipv6_forms);
    RUN(test_ipv6_ranges);
    return check_report();
}
