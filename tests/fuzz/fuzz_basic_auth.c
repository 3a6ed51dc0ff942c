/*
 * libFuzzer target for the Authorization-header decoders. The input (from
 * an exact-size heap copy) goes to tk_http_basic_auth and tk_http_bearer
 * as is, and, so the fuzzer reaches the decoding paths, also as
 * "Basic " + base64(input). Byte 0 picks the id/secret buffer sizes. Checks:
 * only documented results; on success a non-empty id, NUL-terminated parts
 * without control characters that fit their buffers; for another scheme
 * the caller's buffers untouched; on other failures empty parts; a Bearer token is the whole
 * remainder of the value, from the b64token alphabet.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool clean(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

static void check_basic(const char *p, size_t n, size_t id_cap, size_t secret_cap)
{
    char id[300], secret[300];
    memset(id, '#', sizeof id); /* what the caller's buffers held before (the form's) */
    memset(secret, '#', sizeof secret);
    int rc = tk_http_basic_auth((tk_slice){p, n}, id, id_cap, secret, secret_cap);
    EXPECT(rc == 0 || rc == TK_E_NOTFOUND || rc == TK_E_BADINPUT || rc == TK_E_TOOBIG);
    if (rc == 0) {
        EXPECT(clean(id, id_cap) && clean(secret, secret_cap));
        EXPECT(id[0] != '\0');
        EXPECT(n > 6 && (p[0] | 0x20) == 'b' && p[5] == ' ');
    } else if (rc == TK_E_NOTFOUND) { /* another scheme: the buffers are not touched */
        for (size_t i = 0; i < sizeof id; i++) {
            EXPECT(id[i] == '#' && secret[i] == '#');
        }
    } else {
        EXPECT(id[0] == '\0' && secret[0] == '\0');
    }
}

static void check_bearer(const char *p, size_t n)
{
    tk_slice t;
    int rc = tk_http_bearer((tk_slice){p, n}, &t);
    EXPECT(rc == 0 || rc == TK_E_NOTFOUND || rc == TK_E_BADINPUT);
    if (rc != 0) {
        EXPECT(t.p == NULL && t.len == 0);
        return;
    }
    EXPECT(n > 7 && t.p == p + 7 && t.len == n - 7 && p[6] == ' ');
    bool pad = false;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.p[i];
        if (c == '=') {
            EXPECT(i > 0);
            pad = true;
            continue;
        }
        EXPECT(!pad);
        EXPECT((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               strchr("-._~+/", c) != NULL);
    }
}

/* Standard base64 with padding, written here from RFC 4648 §4. */
static size_t b64(const uint8_t *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        v |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? in[i + 2] : 0;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) {
        return 0;
    }
    size_t id_cap = 1 + data[0] % 64;
    size_t secret_cap = 1 + (size_t)(data[0] >> 2) * 4;
    const uint8_t *in = data + 1;
    size_t n = size - 1;

    char *raw = malloc(n > 0 ? n : 1);
    char *enc = malloc(6 + (n + 2) / 3 * 4);
    if (raw == NULL || enc == NULL) {
        free(raw);
        free(enc);
        return 0;
    }
    memcpy(raw, in, n);
    check_basic(raw, n, id_cap, secret_cap);
    check_basic(raw, n, 300, 300);
    check_bearer(raw, n);

    memcpy(enc, "Basic ", 6);
    size_t m = 6 + b64(in, n, enc + 6);
    char *exact = malloc(m);
    if (exact != NULL) {
        memcpy(exact, enc, m);
        check_basic(exact, m, id_cap, secret_cap);
        check_basic(exact, m, 300, 300);
        free(exact);
    }
    free(raw);
    free(enc);
    return 0;
}
