/*
 * libFuzzer target for what forward-auth reads from the network besides the
 * HTTP head: the original request's path and host, normalised as the
 * upstream routes on them (tokend/http_uri.h), and matched against a fixed
 * resources table.
 *
 * Input: "host\npath" (no newline: the whole input is the path, host
 * wiki.test). Checks, on top of the sanitizers: only documented results; the
 * output never exceeds the input; an accepted path starts with '/', has no
 * empty, "." or ".." segment, no ';', '\\', control byte (C0, C1, DEL),
 * '%' that starts an escape, and is valid UTF-8; an input that holds no ';'
 * gives the same answer in both parameter modes, and refuse mode accepts
 * nothing strip mode refuses; normalising an output again gives it back
 * unchanged when it holds no '%', '?', '#' or space (decoding is done
 * once, as servers do; a raw space is refused); Windows aliases (trailing '.' or
 * ' ', ":$", 8.3 short names) are told by an oracle of their own; an accepted host is lower case
 * without a trailing dot and normalises to itself; the match is stable under host case changes and
 * a trailing dot, and whatever matches covers the path on a segment boundary.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/http_uri.h"
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

static bool valid_utf8_no_c1(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k = c < 0x80                 ? 0
                   : c >= 0xc2 && c <= 0xdf ? 1
                   : c >= 0xe0 && c <= 0xef ? 2
                   : c >= 0xf0 && c <= 0xf4 ? 3
                                            : 9;
        if (k == 9 || n - i - 1 < k) {
            return false;
        }
        uint32_t cp = k == 0 ? c : (uint32_t)(c & (0x3f >> k));
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80) {
                return false;
            }
            cp = cp << 6 | (p[i + j] & 0x3fu);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp <= 0x9f)) {
            return false;
        }
        i += k + 1;
    }
    return true;
}

static bool hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void check_normal(const char *p, size_t n)
{
    EXPECT(n >= 1 && p[0] == '/');
    for (size_t i = 0; i < n; i++) {
        EXPECT((unsigned char)p[i] >= 0x20 && p[i] != 0x7f);
        if (p[i] != '/') {
            continue;
        }
        size_t j = i + 1;
        while (j < n && p[j] != '/') {
            j++;
        }
        size_t seg = j - i - 1;
        EXPECT(seg > 0 || j == n);              /* no "//" */
        EXPECT(!(seg == 1 && p[i + 1] == '.')); /* no "/./" */
        EXPECT(!(seg == 2 && p[i + 1] == '.' && p[i + 2] == '.'));
    }
    EXPECT(memchr(p, ';', n) == NULL && memchr(p, '\\', n) == NULL);
    for (size_t i = 0; i + 2 < n; i++) {
        EXPECT(!(p[i] == '%' && hex(p[i + 1]) && hex(p[i + 2])));
    }
    EXPECT(valid_utf8_no_c1((const unsigned char *)p, n));
}

/* Whether the segment at s (up to the next '/') can be an 8.3 short name,
 * told another way than path.c: some '~' in the base (before the first '.',
 * within the name before any ':') is followed by digits only to the base's
 * end, the base has at most 8 characters, and what follows the '.' at most
 * 3 and no other '.'. */
static bool short_name(const char *s, size_t n)
{
    size_t end = 0;
    while (end < n && s[end] != '/' && s[end] != ':') {
        end++;
    }
    size_t base_chars = 0, ext_chars = 0, dots = 0;
    bool tail = false; /* a '~' seen in the base and only digits since */
    bool digits = false;
    for (size_t i = 0; i < end; i++) {
        bool lead = ((unsigned char)s[i] & 0xc0) != 0x80;
        if (s[i] == '.') {
            dots++;
        } else if (dots == 0) {
            base_chars += lead;
            bool digit = s[i] >= '0' && s[i] <= '9';
            digits = s[i] == '~' ? false : tail && digit ? true : digits;
            tail = s[i] == '~' || (tail && digit);
        } else {
            ext_chars += lead;
        }
    }
    return tail && digits && base_chars <= 8 && dots <= 1 && ext_chars <= 3;
}

/* Host: normalised once, the result is a fixed point; the match does not
 * depend on case or a trailing dot. */
static void check_host(tk_slice raw, tk_slice path)
{
    char buf[TK_HTTP_HOST_MAX + 1], again[TK_HTTP_HOST_MAX + 1];
    tk_http_host h, h2;
    int rc = tk_http_host_normalize(raw, buf, sizeof buf, &h);
    EXPECT(rc == 0 || rc == TK_E_BADINPUT);
    if (rc != 0) {
        return;
    }
    EXPECT(h.name.len >= 1 && h.name.len <= TK_HTTP_HOST_MAX && h.name.len <= raw.len + 16);
    for (size_t i = 0; i < h.name.len; i++) {
        EXPECT(!(h.name.p[i] >= 'A' && h.name.p[i] <= 'Z'));
    }
    EXPECT(h.name.p[h.name.len - 1] != '.');
    EXPECT(tk_http_host_normalize(h.name, again, sizeof again, &h2) == 0);
    EXPECT(tk_slice_eq(h.name, h2.name) && h2.port == 0);
    const tk_resource *r = tk_resources_match(rs, &h, path);
    char up[TK_HTTP_HOST_MAX + 2];
    if (raw.len < sizeof up) {
        bool dot = raw.len > 0 && raw.p[0] != '[' && memchr(raw.p, ':', raw.len) == NULL &&
                   raw.p[raw.len - 1] != '.';
        for (size_t i = 0; i < raw.len; i++) {
            char c = raw.p[i];
            up[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
        }
        size_t n = raw.len;
        if (dot) {
            up[n++] = '.';
        }
        EXPECT(tk_http_host_normalize((tk_slice){up, n}, again, sizeof again, &h2) == 0);
        EXPECT(tk_resources_match(rs, &h2, path) == r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rs == NULL) {
        char err[256];
        EXPECT(tk_resources_parse(table, sizeof table - 1, &rs, err, sizeof err) == 0);
    }
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    tk_slice host = nl ? (tk_slice){in, (size_t)(nl - in)} : TK_SLICE_LIT("wiki.test");
    tk_slice raw = nl ? (tk_slice){nl + 1, size - (size_t)(nl - in) - 1} : (tk_slice){in, size};

    char *out = malloc(raw.len ? raw.len : 1); /* exact size: ASan sees an overrun */
    char *out2 = malloc(raw.len ? raw.len : 1);
    size_t n = 0, n2 = 0;
    enum tk_http_path_flaw flaw, flaw2;
    int rc = tk_http_path_normalize(raw, TK_HTTP_PARAMS_REFUSE, out, raw.len, &n, &flaw);
    int rc2 = tk_http_path_normalize(raw, TK_HTTP_PARAMS_STRIP, out2, raw.len, &n2, &flaw2);
    EXPECT(rc == 0 || rc == TK_E_BADINPUT);
    EXPECT(rc2 == 0 || rc2 == TK_E_BADINPUT);
    EXPECT((rc == 0) == (flaw == TK_HTTP_PATH_OK) && (rc2 == 0) == (flaw2 == TK_HTTP_PATH_OK));
    if (rc == 0) { /* refuse mode accepts only what strip mode reads the same */
        EXPECT(rc2 == 0 && n2 == n && memcmp(out, out2, n) == 0);
    }
    const char *q = memchr(raw.p, '?', raw.len);
    size_t plen = q != NULL ? (size_t)(q - raw.p) : raw.len;
    if (memchr(raw.p, ';', plen) == NULL) {
        EXPECT(rc == rc2 && flaw == flaw2);
    }
    if (rc2 == 0) {
        EXPECT(n2 <= raw.len);
        check_normal(out2, n2);
    }
    if (rc == 0) {
        EXPECT(n <= raw.len);
        check_normal(out, n);
        /* A second pass would cut at a decoded '?' or '#', or refuse a
         * decoded '%' or space: the fixed point holds without them. */
        bool plain = memchr(out, '%', n) == NULL && memchr(out, '?', n) == NULL &&
                     memchr(out, '#', n) == NULL && memchr(out, ' ', n) == NULL;
        char *again = malloc(n);
        size_t na = 0;
        if (plain) {
            EXPECT(tk_http_path_normalize((tk_slice){out, n}, TK_HTTP_PARAMS_REFUSE, again, n, &na,
                                          NULL) == 0);
            EXPECT(na == n && memcmp(again, out, n) == 0);
        }
        free(again);
        /* Windows aliases: a segment ending in '.' or ' ', holding ":$", or
         * that can be an 8.3 short name. */
        bool alias = false;
        for (size_t i = 0; i < n; i++) {
            bool end = i + 1 == n || out[i + 1] == '/';
            alias = alias || (end && (out[i] == '.' || out[i] == ' ')) ||
                    (out[i] == ':' && i + 1 < n && out[i + 1] == '$') ||
                    (out[i] == '/' && short_name(out + i + 1, n - i - 1));
        }
        EXPECT(tk_http_path_windows_alias((tk_slice){out, n}) == alias);

        tk_slice path = {out, n};
        check_host(host, path);
        char hb[TK_HTTP_HOST_MAX + 1];
        tk_http_host h;
        if (tk_http_host_normalize(host, hb, sizeof hb, &h) == 0) {
            const tk_resource *r = tk_resources_match(rs, &h, path);
            if (r != NULL) {
                EXPECT(n >= r->prefix.len && memcmp(out, r->prefix.p, r->prefix.len) == 0);
            }
        }
    }
    free(out2);
    free(out);
    return 0;
}
