/*
 * libFuzzer target for URIs: input is "registered\nrequested". The
 * splitter's slices must put the input back together exactly; a redirect
 * URI accepted at registration must match itself; matching is symmetric
 * and exact but for a loopback port; PKCE's S256 round-trips any valid
 * verifier found in the input.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/oauth_pkce.h"
#include "tokend/oauth_uri.h"

#include <stdlib.h>
#include <string.h>

static void check_split(tk_slice s)
{
    tk_oauth_uri u;
    int rc = tk_oauth_uri_parse(s, &u);
    EXPECT(rc == 0 || rc == TK_E_BADINPUT || rc == TK_E_TOOBIG);
    if (rc != 0) {
        return;
    }
    /* scheme ":" ["//" authority] path ["?" query] ["#" fragment] */
    char re[TK_OAUTH_URI_MAX + 1];
    size_t n = 0;
    memcpy(re + n, u.scheme.p, u.scheme.len);
    n += u.scheme.len;
    re[n++] = ':';
    if (u.has_authority) {
        memcpy(re + n, "//", 2);
        n += 2;
        memcpy(re + n, u.authority.p, u.authority.len);
        n += u.authority.len;
        EXPECT(u.host.p >= u.authority.p &&
               u.host.p + u.host.len <= u.authority.p + u.authority.len);
    }
    if (u.path.len > 0) {
        memcpy(re + n, u.path.p, u.path.len);
        n += u.path.len;
    }
    const tk_slice *parts[] = {u.has_query ? &u.query : NULL, u.has_fragment ? &u.fragment : NULL};
    for (int i = 0; i < 2; i++) {
        if (parts[i] != NULL) {
            re[n++] = i == 0 ? '?' : '#';
            if (parts[i]->len > 0) {
                memcpy(re + n, parts[i]->p, parts[i]->len);
            }
            n += parts[i]->len;
        }
    }
    EXPECT(n == s.len && memcmp(re, s.p, n) == 0);
    EXPECT(!u.has_port || (u.port.len >= 1 && u.port.len <= 5));
}

static void check_redirect(tk_slice a, tk_slice b)
{
    enum tk_oauth_redirect_kind kind;
    tk_oauth_err e = {0};
    if (tk_oauth_redirect_check(a, &kind, &e) == 0) {
        EXPECT(tk_oauth_redirect_match(a, a, true) && tk_oauth_redirect_match(a, a, false));
    } else {
        EXPECT(e.code == TK_OAUTH_INVALID_REDIRECT_URI);
    }
    for (int native = 0; native < 2; native++) {
        bool ab = tk_oauth_redirect_match(a, b, native);
        EXPECT(ab == tk_oauth_redirect_match(b, a, native) || tk_slice_eq(a, b));
        if (ab && !tk_slice_eq(a, b)) {
            tk_oauth_uri ua, ub;
            EXPECT(native && tk_oauth_uri_parse(a, &ua) == 0 && tk_oauth_uri_parse(b, &ub) == 0);
            EXPECT(tk_oauth_uri_is_loopback(&ua) && tk_oauth_uri_is_loopback(&ub));
            EXPECT(tk_slice_eq(ua.host, ub.host) && tk_slice_eq(ua.path, ub.path) &&
                   tk_slice_eq(ua.query, ub.query) && !tk_slice_eq(ua.port, ub.port));
        }
    }
}

static void check_pkce(tk_slice v)
{
    if (!tk_oauth_pkce_verifier_valid(v)) {
        return;
    }
    char c[TK_OAUTH_CHALLENGE_LEN + 1];
    tk_oauth_pkce_s256(v, c);
    uint8_t ch[TK_HASH_LEN];
    EXPECT(tk_oauth_pkce_challenge_parse(tk_slice_from_str(c), ch, NULL) == 0);
    EXPECT(tk_oauth_pkce_verify(v, ch, NULL) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    const char *nl = size > 0 ? memchr(copy, '\n', size) : NULL;
    size_t la = nl != NULL ? (size_t)(nl - copy) : size;
    tk_slice a = {copy, la};
    tk_slice b = nl != NULL ? (tk_slice){nl + 1, size - la - 1} : a;
    check_split(a);
    check_split(b);
    check_redirect(a, b);
    check_pkce(a);
    uint8_t ch[TK_HASH_LEN];
    tk_oauth_err e = {0};
    if (tk_oauth_pkce_challenge_parse(b, ch, &e) != 0) {
        EXPECT(e.code == TK_OAUTH_INVALID_REQUEST);
    }
    (void)tk_oauth_resource_check(a, NULL);
    free(copy);
    return 0;
}
