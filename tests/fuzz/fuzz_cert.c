/*
 * libFuzzer target for src/util/cert.c. The input (an exact-size heap copy)
 * goes to tk_cert_forwarded as a header value and to tk_cert_dn_canon as a
 * DN and to tk_cert_san_canon as a subject alternative name (a hostile
 * client's self-signed certificate names anything). Checks: only
 * documented results; the same answer twice; a canonical DN or SAN is its
 * own canonical form (idempotence) and fits its buffer. Then, so
 * that the fuzzer reaches the DER checks, the input is taken as a DER
 * certificate and wrapped both ways a proxy sends one (URL-encoded PEM with
 * 64-column lines, RFC 9440 ":base64:"): both must be accepted exactly when
 * the input is one DER SEQUENCE of at most TK_CERT_DER_MAX bytes covering it
 * all, and then give SHA-256 of the input.
 */
#include "fuzz_common.h"

#include "tokend/cert.h"
#include "tokend/crypto.h"

#include <string.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; returns the length written. */
static size_t b64(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        v |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? in[i + 2] : 0;
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    return o;
}

/* The SEQUENCE rule of cert.h, written independently. */
static bool one_sequence(const uint8_t *d, size_t n)
{
    if (n < 2 || n > TK_CERT_DER_MAX || d[0] != 0x30) {
        return false;
    }
    if (d[1] < 0x80) {
        return (size_t)d[1] + 2 == n;
    }
    if (d[1] == 0x81) {
        return n >= 3 && d[2] >= 0x80 && (size_t)d[2] + 3 == n;
    }
    if (d[1] == 0x82) {
        return n >= 4 && d[2] != 0 && (((size_t)d[2] << 8) | d[3]) + 4 == n;
    }
    return false;
}

static char enc[3 * (TK_CERT_DER_MAX * 2 + 256)];
static char b64buf[TK_CERT_DER_MAX * 2 + 8];

static void check_wrapped(const uint8_t *d, size_t n)
{
    if (n > TK_CERT_DER_MAX + 64) {
        return;
    }
    bool want = one_sequence(d, n);
    uint8_t expect[TK_HASH_LEN], got[TK_HASH_LEN];
    tk_sha256(d, n, expect);
    size_t bl = b64(d, n, b64buf);
    /* RFC 9440 */
    enc[0] = ':';
    memcpy(enc + 1, b64buf, bl);
    enc[bl + 1] = ':';
    int rc = tk_cert_forwarded((tk_slice){enc, bl + 2}, got);
    EXPECT((rc == 0) == want);
    EXPECT(rc != 0 || memcmp(got, expect, TK_HASH_LEN) == 0);
    /* nginx: URL-encoded PEM, '/', '+', '=' and newlines escaped */
    size_t o = 0;
    static const char begin[] = "-----BEGIN%20CERTIFICATE-----%0A";
    static const char end[] = "-----END%20CERTIFICATE-----%0A";
    memcpy(enc + o, begin, sizeof begin - 1);
    o += sizeof begin - 1;
    for (size_t i = 0; i < bl; i++) {
        char ch = b64buf[i];
        if (ch == '/' || ch == '+' || ch == '=') {
            static const char hex[] = "0123456789ABCDEF";
            enc[o++] = '%';
            enc[o++] = hex[(unsigned char)ch >> 4];
            enc[o++] = hex[ch & 15];
        } else {
            enc[o++] = ch;
        }
        if (i % 64 == 63 || i + 1 == bl) {
            memcpy(enc + o, "%0A", 3);
            o += 3;
        }
    }
    memcpy(enc + o, end, sizeof end - 1);
    o += sizeof end - 1;
    rc = tk_cert_forwarded((tk_slice){enc, o}, got);
    EXPECT((rc == 0) == (want && n > 0));
    EXPECT(rc != 0 || memcmp(got, expect, TK_HASH_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    EXPECT(p != NULL);
    memcpy(p, data, size);
    tk_slice v = {p, size};

    uint8_t h1[TK_HASH_LEN], h2[TK_HASH_LEN];
    int r1 = tk_cert_forwarded(v, h1);
    int r2 = tk_cert_forwarded(v, h2);
    EXPECT(r1 == 0 || r1 == TK_E_BADINPUT);
    EXPECT(r1 == r2 && (r1 != 0 || memcmp(h1, h2, TK_HASH_LEN) == 0));

    char c1[TK_CERT_DN_MAX + 1], c2[TK_CERT_DN_MAX + 1];
    size_t n1 = 0, n2 = 0;
    int d1 = tk_cert_dn_canon(v, c1, sizeof c1, &n1);
    EXPECT(d1 == 0 || d1 == TK_E_BADINPUT || d1 == TK_E_TOOBIG);
    if (d1 == 0) {
        EXPECT(n1 < sizeof c1 && c1[n1] == '\0' && strlen(c1) == n1);
        int d2 = tk_cert_dn_canon((tk_slice){c1, n1}, c2, sizeof c2, &n2);
        EXPECT(d2 == 0 && n2 == n1 && memcmp(c1, c2, n1) == 0);
    }
    char s1[TK_CERT_SAN_MAX + 1], s2[TK_CERT_SAN_MAX + 1];
    int a1 = tk_cert_san_canon(v, s1, sizeof s1, &n1);
    EXPECT(a1 == 0 || a1 == TK_E_BADINPUT || a1 == TK_E_TOOBIG);
    if (a1 == 0) {
        EXPECT(n1 < sizeof s1 && s1[n1] == '\0' && strlen(s1) == n1 && n1 <= TK_CERT_SAN_MAX);
        int a2 = tk_cert_san_canon((tk_slice){s1, n1}, s2, sizeof s2, &n2);
        EXPECT(a2 == 0 && n2 == n1 && memcmp(s1, s2, n1) == 0);
    }
    check_wrapped(data, size);
    free(p);
    return 0;
}
