/*
 * libFuzzer target for what forward-auth reads from the network besides the
 * HTTP head: the original request's path (normalised as a proxy routes on
 * it) and host (matched against a fixed resources table).
 *
 * Input: "host\npath" (no newline: the whole input is the path). Checks, on
 * top of the sanitizers: the output never exceeds the input; a normalised
 * path starts with '/', has no empty, "." or ".." segment and no control
 * byte; normalising it again gives it back unchanged when it holds no
 * '%', '?' or '#' (decoding is done once, as proxies do); the match is stable under host case
 * changes and whatever matches covers the path on a segment boundary.
 */
#include "tokend/common.h"
#include "tokend/resources.h"

#include <stdlib.h>
#include <string.h>

static const char table[] =
    "{\"resources\": ["
    " {\"resource\": \"https://wiki.test/\"},"
    " {\"resource\": \"https://wiki.test/admin\", \"path_prefix\": \"/admin\"},"
    " {\"resource\": \"https://wiki.test:8443/x\", \"host\": \"wiki.test:8443\"},"
    " {\"resource\": \"https://any.test/\", \"host\": \"*\", \"path_prefix\": \"/shared/\"}"
    "]}";

static tk_resources *rs;

static void check_normal(const char *p, size_t n)
{
    TK_ASSERT(n >= 1 && p[0] == '/');
    for (size_t i = 0; i < n; i++) {
        TK_ASSERT((unsigned char)p[i] >= 0x20 && p[i] != 0x7f);
        if (p[i] != '/') {
            continue;
        }
        size_t j = i + 1;
        while (j < n && p[j] != '/') {
            j++;
        }
        size_t seg = j - i - 1;
        TK_ASSERT(seg > 0 || j == n);              /* no "//" */
        TK_ASSERT(!(seg == 1 && p[i + 1] == '.')); /* no "/./" */
        TK_ASSERT(!(seg == 2 && p[i + 1] == '.' && p[i + 2] == '.'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rs == NULL) {
        char err[256];
        TK_ASSERT(tk_resources_parse(table, sizeof table - 1, &rs, err, sizeof err) == 0);
    }
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    tk_slice host = nl ? (tk_slice){in, (size_t)(nl - in)} : TK_SLICE_LIT("wiki.test");
    tk_slice raw = nl ? (tk_slice){nl + 1, size - (size_t)(nl - in) - 1} : (tk_slice){in, size};

    char *out = malloc(raw.len ? raw.len : 1); /* exact size: ASan sees an overrun */
    size_t n = 0;
    int rc = tk_http_path_normalize(raw, out, raw.len, &n);
    TK_ASSERT(rc == 0 || rc == TK_E_BADINPUT);
    if (rc == 0) {
        TK_ASSERT(n <= raw.len);
        check_normal(out, n);
        /* A second pass would decode again what the first decoded to '%',
         * or cut at a decoded '?' or '#': the fixed point holds without them. */
        bool plain = memchr(out, '%', n) == NULL && memchr(out, '?', n) == NULL &&
                     memchr(out, '#', n) == NULL;
        char *again = malloc(n);
        size_t n2 = 0;
        if (plain) {
            TK_ASSERT(tk_http_path_normalize((tk_slice){out, n}, again, n, &n2) == 0);
            TK_ASSERT(n2 == n && memcmp(again, out, n) == 0);
        }
        free(again);

        tk_slice path = {out, n};
        const tk_resource *r = tk_resources_match(rs, host, path);
        char up[256];
        if (host.len <= sizeof up) {
            for (size_t i = 0; i < host.len; i++) {
                char c = host.p[i];
                up[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
            }
            TK_ASSERT(tk_resources_match(rs, (tk_slice){up, host.len}, path) == r);
        }
        if (r != NULL) {
            TK_ASSERT(n >= r->prefix.len && memcmp(out, r->prefix.p, r->prefix.len) == 0);
        }
    }
    free(out);
    return 0;
}
