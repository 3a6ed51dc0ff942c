/*
 * Credentials carried in the Authorization header: HTTP Basic (RFC 7617)
 * with the OAuth twist of RFC 6749 §2.3.1 (client id and secret are
 * form-urlencoded before base64, so either may contain ':'), and Bearer
 * tokens (RFC 6750 §2.1). The decoded Basic credentials are secrets: the
 * scratch buffer is cleansed on every path, and so are the caller's buffers
 * when decoding fails. A value of another scheme leaves the caller's buffers
 * as they were: they may hold credentials from elsewhere (the form).
 */
#include "tokend/http.h"

#include "tokend/crypto.h"
#include "tokend/form.h"

#include <string.h>

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool has_ctl(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (is_ctl(b[i])) {
            return true;
        }
    }
    return false;
}

/*
 * credentials = auth-scheme 1*SP token68 (RFC 9110 §11.4); we require
 * exactly one SP. Returns 0 with *rest = the credentials, TK_E_NOTFOUND when
 * the scheme is another one, TK_E_BADINPUT when it is ours but malformed.
 */
static int split_scheme(tk_slice v, const char *lower, tk_slice *rest)
{
    size_t n = strlen(lower);
    if (v.p == NULL || v.len < n) {
        return TK_E_NOTFOUND;
    }
    for (size_t i = 0; i < n; i++) {
        char c = v.p[i];
        if ((c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c) != lower[i]) {
            return TK_E_NOTFOUND;
        }
    }
    if (v.len == n) {
        return TK_E_BADINPUT; /* the scheme with no credentials */
    }
    if (v.p[n] != ' ') {
        return v.p[n] == '\t' ? TK_E_BADINPUT : TK_E_NOTFOUND; /* "Basicx" is not Basic */
    }
    *rest = (tk_slice){v.p + n + 1, v.len - n - 1};
    if (rest->len == 0 || rest->p[0] == ' ' || rest->p[0] == '\t') {
        return TK_E_BADINPUT;
    }
    return 0;
}

/* One form-encoded part into a NUL-terminated buffer; no CTL may result. */
static int unescape_part(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t out_len = 0;
    int rc = tk_form_unescape((const char *)in, n, out, cap, &out_len);
    if (rc != 0) {
        return rc;
    }
    TK_ASSERT(out_len < cap && out[out_len] == '\0');
    return has_ctl(out, out_len) ? TK_E_BADINPUT : 0;
}

static int decode_basic(tk_slice b64, uint8_t *raw, size_t raw_cap, char *id, size_t id_cap,
                        char *secret, size_t secret_cap)
{
    size_t n = 0;
    int rc = tk_b64_decode(b64.p, b64.len, raw, raw_cap, &n);
    if (rc != 0) {
        return rc;
    }
    TK_ASSERT(n <= raw_cap);
    if (has_ctl(raw, n)) {
        return TK_E_BADINPUT; /* RFC 7617 §2: no control characters */
    }
    const uint8_t *colon = memchr(raw, ':', n);
    if (colon == NULL || colon == raw) {
        return TK_E_BADINPUT; /* no ':' or an empty id */
    }
    size_t id_len = (size_t)(colon - raw);
    rc = unescape_part(raw, id_len, id, id_cap);
    if (rc == 0) {
        rc = unescape_part(colon + 1, n - id_len - 1, secret, secret_cap);
    }
    return rc;
}

int tk_http_basic_auth(tk_slice value, char *id, size_t id_cap, char *secret, size_t secret_cap)
{
    TK_ASSERT(id != NULL && secret != NULL && id_cap > 0 && secret_cap > 0);
    tk_slice b64;
    int rc = split_scheme(value, "basic", &b64);
    if (rc == TK_E_NOTFOUND) {
        return rc; /* another scheme: not ours to touch the caller's buffers */
    }
    id[0] = '\0';
    secret[0] = '\0';
    if (rc != 0) {
        return rc;
    }
    if (b64.len > TK_HTTP_CREDENTIALS_MAX) {
        return TK_E_TOOBIG;
    }
    uint8_t raw[TK_HTTP_CREDENTIALS_MAX / 4 * 3];
    rc = decode_basic(b64, raw, sizeof(raw), id, id_cap, secret, secret_cap);
    tk_cleanse(raw, sizeof(raw));
    if (rc != 0) {
        tk_cleanse(id, id_cap);
        tk_cleanse(secret, secret_cap);
        id[0] = '\0';
        secret[0] = '\0';
    }
    return rc;
}

/* b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static const bool b64token_char[256] = {
    ['A' ... 'Z'] = true, ['a' ... 'z'] = true, ['0' ... '9'] = true, ['-'] = true, ['.'] = true,
    ['_'] = true,         ['~'] = true,         ['+'] = true,         ['/'] = true,
};

static inline bool is_b64token_char(char c)
{
    return b64token_char[(unsigned char)c];
}

/* Length of the run of b64token characters at p[0..n); four at a time
 * first, so the bound is checked once per four bytes (a token is ~50). */
static size_t b64token_span(const char *p, size_t n)
{
    size_t i = 0;
    while (i + 4 <= n && is_b64token_char(p[i]) && is_b64token_char(p[i + 1]) &&
           is_b64token_char(p[i + 2]) && is_b64token_char(p[i + 3])) {
        i += 4;
    }
    while (i < n && is_b64token_char(p[i])) {
        i++;
    }
    return i;
}

/* "<scheme> <b64token>" with the scheme given in lower case. */
static int token68(tk_slice value, const char *scheme, tk_slice *token)
{
    TK_ASSERT(token != NULL);
    *token = TK_SLICE_NULL;
    tk_slice t;
    int rc = split_scheme(value, scheme, &t);
    if (rc != 0) {
        return rc;
    }
    size_t i = b64token_span(t.p, t.len);
    if (i == 0) {
        return TK_E_BADINPUT;
    }
    while (i < t.len && t.p[i] == '=') {
        i++;
    }
    if (i != t.len) {
        return TK_E_BADINPUT;
    }
    *token = t;
    return 0;
}

int tk_http_bearer(tk_slice value, tk_slice *token)
{
    return token68(value, "bearer", token);
}

int tk_http_dpop(tk_slice value, tk_slice *token)
{
    return token68(value, "dpop", token);
}
