/*
 * Unit tests for forward-auth's identity header values (ep_hb_value): the
 * bytes that must be percent-encoded, checked against the rule written byte
 * by byte, for every byte value at every position of values of 1 to 24
 * bytes and for random values of the bytes that matter.
 */
#include "check.h"

#include "../../src/endpoints/endpoints_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rule, one byte at a time. */
static size_t reference(const unsigned char *v, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = v[i];
        bool edge = i == 0 || i + 1 == n;
        if (c < 0x20 || c >= 0x7f || c == '%' || (c == ' ' && edge)) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

static bool same_as_reference(const unsigned char *v, size_t n)
{
    char want[200], got[200];
    size_t wn = reference(v, n, want);
    ep_hbuf b = {.p = got, .cap = sizeof got};
    ep_hb_value(&b, (tk_slice){(const char *)v, n});
    bool ok = !b.overflow && b.len == wn && memcmp(got, want, wn) == 0;
    if (!ok) {
        fprintf(stderr, "value of %zu bytes: got %.*s, want %.*s\n", n, (int)b.len, got, (int)wn,
                want);
    }
    return ok;
}

static void test_every_byte_everywhere(void)
{
    unsigned char v[24];
    long wrong = 0;
    for (size_t n = 1; n <= sizeof v; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (int c = 0; c < 256; c++) {
                memset(v, 'u', n);
                v[pos] = (unsigned char)c;
                wrong += !same_as_reference(v, n);
            }
        }
    }
    CHECK_EQ_INT(wrong, 0);
}

static void test_random_values(void)
{
    static const unsigned char alphabet[] = {'a',  ' ',  '%',  0x7f, 0x80, 0x1f,
                                             0xff, 0x20, 0x7e, 0x00, '9',  0xc3};
    unsigned char v[60];
    uint64_t x = 0x2545F4914F6CDD1Dull;
    long wrong = 0;
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = 1 + x % sizeof v;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* mostly plain bytes, so words of eight are plain too */
            v[i] =
                x % 8 != 0 ? (unsigned char)('a' + x % 26) : alphabet[(x >> 8) % sizeof alphabet];
        }
        wrong += !same_as_reference(v, n);
    }
    CHECK_EQ_INT(wrong, 0);
}

static void test_empty_and_overflow(void)
{
    char buf[8];
    ep_hbuf b = {.p = buf, .cap = sizeof buf};
    ep_hb_value(&b, TK_SLICE_NULL);
    CHECK_EQ_INT(b.len, 0);
    CHECK(!b.overflow);
    ep_hb_value(&b, TK_SLICE_LIT("abcdefg")); /* 7 bytes and the NUL's room */
    CHECK_EQ_INT(b.len, 7);
    CHECK(!b.overflow);
    ep_hb_value(&b, TK_SLICE_LIT("h"));
    CHECK(b.overflow);
    CHECK_EQ_INT(b.len, 7);
}

int main(void)
{
    RUN(test_every_byte_everywhere);
    RUN(test_random_values);
    RUN(test_empty_and_overflow);
    return check_report();
}
