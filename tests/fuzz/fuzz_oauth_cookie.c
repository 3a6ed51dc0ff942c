/*
 * libFuzzer target for the browser-session cookie. The header goes to
 * tk_oauth_cookie_find and to a deliberately naive reference written from
 * oauth_cookie.h alone (split on "; ", then look at each pair); the two
 * must agree. A value found must make a Set-Cookie that, sent back, is
 * found again.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/oauth_cookie.h"

#include <stdlib.h>
#include <string.h>

static bool in(const char *set, char c)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The reference: returns the result code and the value's offset. */
static int ref_find(const char *h, size_t n, size_t *off)
{
    if (n > TK_OAUTH_COOKIE_HEADER_MAX) {
        return TK_E_TOOBIG;
    }
    if (n == 0) {
        return TK_E_BADINPUT;
    }
    int found = 0;
    size_t start = 0;
    for (;;) {
        size_t end = start;
        while (end < n && h[end] != ';') {
            end++;
        }
        size_t eq = start;
        while (eq < end && h[eq] != '=') {
            eq++;
        }
        bool bad = eq == end || eq == start;
        for (size_t i = start; i < eq && !bad; i++) {
            bad = !alnum(h[i]) && !in("!#$%&'*+-.^_`|~", h[i]);
        }
        for (size_t i = eq + 1; i < end && !bad; i++) {
            bad = (unsigned char)h[i] < 0x20 || (unsigned char)h[i] > 0x7e;
        }
        size_t nl = strlen(TK_OAUTH_COOKIE_NAME);
        if (bad) { /* someone else's malformed cookie is skipped; ours, or a NUL, refuses */
            size_t k = start;
            while (k < end && h[k] == ' ') {
                k++;
            }
            bool ours = end - k >= nl && memcmp(h + k, TK_OAUTH_COOKIE_NAME, nl) == 0 &&
                        (k + nl == end || h[k + nl] == '=' || h[k + nl] == ' ');
            if (ours || memchr(h + start, '\0', end - start) != NULL) {
                return TK_E_BADINPUT;
            }
        } else if (eq - start == nl && memcmp(h + start, TK_OAUTH_COOKIE_NAME, nl) == 0) {
            if (found++) {
                return TK_E_DUPLICATE;
            }
            if (end - eq - 1 != TK_OAUTH_COOKIE_VALUE_LEN) {
                return TK_E_BADINPUT;
            }
            for (size_t i = eq + 1; i < end; i++) {
                if (!alnum(h[i]) && h[i] != '-' && h[i] != '_') {
                    return TK_E_BADINPUT;
                }
            }
            *off = eq + 1;
        }
        if (end == n) {
            return found ? 0 : TK_E_NOTFOUND;
        }
        if (end + 2 >= n || h[end + 1] != ' ') {
            return TK_E_BADINPUT;
        }
        start = end + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    tk_slice v = {"poison", 6};
    int rc = tk_oauth_cookie_find((tk_slice){copy, size}, &v);
    size_t off = 0;
    int ref = ref_find(copy, size, &off);
    EXPECT(rc == ref);
    EXPECT(rc == 0 || (v.p == NULL && v.len == 0));
    if (rc == 0) {
        EXPECT(v.p == copy + off && v.len == TK_OAUTH_COOKIE_VALUE_LEN);
        char set[TK_OAUTH_SET_COOKIE_MAX];
        size_t len;
        EXPECT(tk_oauth_cookie_set(v, 60, set, sizeof set, &len) == 0);
        char *semi = strchr(set, ';');
        EXPECT(semi != NULL);
        tk_slice back;
        EXPECT(tk_oauth_cookie_find((tk_slice){set, (size_t)(semi - set)}, &back) == 0);
        EXPECT(back.len == v.len && memcmp(back.p, v.p, v.len) == 0);
    }
    free(copy);
    return 0;
}
