/*
 * The browser-session cookie: finding it in a Cookie header without being
 * fooled, and writing the Set-Cookie that gives it to the browser.
 */
#include "tokend/oauth_cookie.h"

#include "tokend/json.h"

#include <string.h>

#define COOKIE_MAX_AGE_MAX (400 * 86400) /* RFC 6265bis: browsers cap at 400 days */

/* RFC 9110 §5.6.2 tchar: the characters of a cookie-name. */
static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool b64url_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool our_value_ok(tk_slice v)
{
    if (v.len != TK_OAUTH_COOKIE_VALUE_LEN) {
        return false;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (!b64url_char((unsigned char)v.p[i])) {
            return false;
        }
    }
    return true;
}

/* A foreign value: visible characters and spaces, no ';' (checked by the
 * caller's split), no controls, no bytes above 0x7e. */
static bool foreign_value_ok(tk_slice v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

/* One cookie-pair p[0..n): name=value with a token name. */
static int pair(tk_slice p, tk_slice *name, tk_slice *value)
{
    const char *eq = p.len > 0 ? memchr(p.p, '=', p.len) : NULL;
    if (eq == NULL || eq == p.p) {
        return TK_E_BADINPUT;
    }
    *name = (tk_slice){p.p, (size_t)(eq - p.p)};
    *value = (tk_slice){eq + 1, p.len - name->len - 1};
    for (size_t i = 0; i < name->len; i++) {
        if (!tchar((unsigned char)name->p[i])) {
            return TK_E_BADINPUT;
        }
    }
    return foreign_value_ok(*value) ? 0 : TK_E_BADINPUT;
}

/* A pair that names our cookie, however malformed around the name. */
static bool could_be_ours(tk_slice seg, tk_slice ours)
{
    size_t k = 0;
    while (k < seg.len && seg.p[k] == ' ') {
        k++;
    }
    if (seg.len - k < ours.len || memcmp(seg.p + k, ours.p, ours.len) != 0) {
        return false;
    }
    k += ours.len;
    return k == seg.len || seg.p[k] == '=' || seg.p[k] == ' ';
}

static int scan(tk_slice h, tk_slice *found)
{
    const tk_slice ours = TK_SLICE_LIT(TK_OAUTH_COOKIE_NAME);
    size_t i = 0;
    while (i < h.len) { /* bounded: i grows by at least one pair each turn */
        const char *semi = memchr(h.p + i, ';', h.len - i);
        size_t end = semi != NULL ? (size_t)(semi - h.p) : h.len;
        tk_slice name, value, seg = {h.p + i, end - i};
        if (pair(seg, &name, &value) != 0) {
            /* Another application's malformed cookie (a UTF-8 value, no '=')
             * is not ours to judge: refusing the header would sign the user
             * out of tokend for good. One that could be ours, or a NUL, is. */
            if (could_be_ours(seg, ours) || memchr(seg.p, '\0', seg.len) != NULL) {
                return TK_E_BADINPUT;
            }
            name = TK_SLICE_NULL;
        }
        if (name.p != NULL && tk_slice_eq(name, ours)) {
            if (found->p != NULL) {
                return TK_E_DUPLICATE;
            }
            if (!our_value_ok(value)) {
                return TK_E_BADINPUT;
            }
            *found = value;
        }
        if (end == h.len) {
            return 0;
        }
        if (end + 2 >= h.len || h.p[end + 1] != ' ') {
            return TK_E_BADINPUT; /* "; " must be followed by another pair */
        }
        i = end + 2;
    }
    return TK_E_BADINPUT; /* empty header */
}

int tk_oauth_cookie_find(tk_slice header, tk_slice *value_out)
{
    TK_ASSERT(value_out != NULL);
    *value_out = TK_SLICE_NULL;
    if (header.len > TK_OAUTH_COOKIE_HEADER_MAX) {
        return TK_E_TOOBIG;
    }
    tk_slice found = TK_SLICE_NULL;
    int rc = scan(header, &found);
    if (rc != 0) {
        return rc;
    }
    if (found.p == NULL) {
        return TK_E_NOTFOUND;
    }
    *value_out = found;
    return 0;
}

static void put(char *out, size_t *at, const char *s, size_t n)
{
    memcpy(out + *at, s, n);
    *at += n;
}

int tk_oauth_cookie_set(tk_slice value, int64_t max_age, char *out, size_t cap, size_t *len_out)
{
    TK_ASSERT(out != NULL && len_out != NULL);
    *len_out = 0;
    if (cap > 0) {
        out[0] = '\0';
    }
    bool clear = value.len == 0 && max_age == 0;
    if ((!clear && !our_value_ok(value)) || max_age < 0 || max_age > COOKIE_MAX_AGE_MAX) {
        return TK_E_BADINPUT;
    }
    static const char head[] = TK_OAUTH_COOKIE_NAME "=";
    static const char mid[] = "; Path=/; Max-Age=";
    static const char tail[] = "; Secure; HttpOnly; SameSite=Lax";
    char digits[24];
    size_t nd = tk_fmt_i64(max_age, digits);
    size_t need = sizeof head - 1 + value.len + sizeof mid - 1 + nd + sizeof tail - 1;
    if (need + 1 > cap) {
        return TK_E_TOOBIG;
    }
    size_t at = 0;
    put(out, &at, head, sizeof head - 1);
    put(out, &at, value.p != NULL ? value.p : "", value.len);
    put(out, &at, mid, sizeof mid - 1);
    put(out, &at, digits, nd);
    put(out, &at, tail, sizeof tail - 1);
    TK_ASSERT(at == need);
    out[at] = '\0';
    *len_out = at;
    return 0;
}

_Static_assert(sizeof(TK_OAUTH_COOKIE_NAME "=; Path=/; Max-Age=; Secure; HttpOnly; SameSite=Lax") -
                       1 + TK_OAUTH_COOKIE_VALUE_LEN + 20 <
                   TK_OAUTH_SET_COOKIE_MAX,
               "TK_OAUTH_SET_COOKIE_MAX holds every cookie we set");
