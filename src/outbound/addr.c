/*
 * Which addresses a public_only request may connect to (outbound.h): the
 * SSRF guard of every fetch whose URL an outsider chose (Client ID Metadata
 * Documents). Pure and table-driven; the transfer code calls it on the
 * address of each socket libcurl opens.
 *
 * IPv4: a short list of refused prefixes (RFC 6890 and its updates). IPv6:
 * only global unicast (2000::/3) minus its special ranges, plus the forms
 * that carry an IPv4 address (mapped, NAT64, 6to4), judged by that address.
 */
#include "outbound_int.h"

#include <string.h>
#include <sys/socket.h>

typedef struct prefix4 {
    uint8_t net[4];
    unsigned bits;
} prefix4;

static const prefix4 refused4[] = {
    {{0, 0, 0, 0}, 8},       /* "this network" (RFC 791), 0.0.0.0 included */
    {{10, 0, 0, 0}, 8},      /* private (RFC 1918) */
    {{100, 64, 0, 0}, 10},   /* shared address space, CGNAT (RFC 6598) */
    {{127, 0, 0, 0}, 8},     /* loopback */
    {{169, 254, 0, 0}, 16},  /* link-local (cloud metadata lives here) */
    {{172, 16, 0, 0}, 12},   /* private (RFC 1918) */
    {{192, 0, 0, 0}, 24},    /* IETF protocol assignments */
    {{192, 0, 2, 0}, 24},    /* TEST-NET-1 */
    {{192, 88, 99, 0}, 24},  /* 6to4 relay anycast (deprecated) */
    {{192, 168, 0, 0}, 16},  /* private (RFC 1918) */
    {{198, 18, 0, 0}, 15},   /* benchmarking */
    {{198, 51, 100, 0}, 24}, /* TEST-NET-2 */
    {{203, 0, 113, 0}, 24},  /* TEST-NET-3 */
    {{224, 0, 0, 0}, 4},     /* multicast */
    {{240, 0, 0, 0}, 4},     /* reserved, and 255.255.255.255 broadcast */
};

static bool in_prefix(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, whole) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

static bool public4(const uint8_t a[4])
{
    for (size_t i = 0; i < TK_ARRAY_LEN(refused4); i++) {
        if (in_prefix(a, refused4[i].net, refused4[i].bits)) {
            return false;
        }
    }
    return true;
}

static bool public6(const uint8_t a[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    static const uint8_t ietf[3] = {0x20, 0x01, 0x00};      /* 2001::/23 */
    static const uint8_t doc[4] = {0x20, 0x01, 0x0d, 0xb8}; /* 2001:db8::/32 */
    static const uint8_t doc2[3] = {0x3f, 0xff, 0x00};      /* 3fff::/20 */
    static const uint8_t sixtofour[2] = {0x20, 0x02};       /* 2002::/16 */
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) {
        return public4(a + 12);
    }
    if ((a[0] & 0xe0) != 0x20) {
        return false; /* outside 2000::/3: ::, ::1, fc00::/7, fe80::/10, ff00::/8, … */
    }
    if (in_prefix(a, ietf, 23) || in_prefix(a, doc, 32) || in_prefix(a, doc2, 20)) {
        return false;
    }
    if (in_prefix(a, sixtofour, 16)) {
        return public4(a + 2);
    }
    return true;
}

bool tk_outbound_addr_public(int family, const uint8_t *addr)
{
    if (family == AF_INET) {
        return public4(addr);
    }
    if (family == AF_INET6) {
        return public6(addr);
    }
    return false;
}
