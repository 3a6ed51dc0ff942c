/*
 * Request paths as the upstream will route them (RFC 3986 §5.2.4
 * dot-segment removal, percent-decoding), for forward-auth's resource
 * matching and any future route matcher. Pure, allocation-free.
 *
 * The one idea: a path is matched only when every server along the way reads
 * it the same way. Whatever servers disagree on — ';' parameters (Tomcat,
 * Jetty and Spring drop them, nginx and Go keep them), an encoded '/' or
 * '\', a '\' at all, overlong UTF-8, a second round of decoding, a fragment —
 * is refused rather than guessed, unless the caller names the reading
 * (TK_HTTP_PARAMS_STRIP for a Tomcat-style upstream).
 *
 * Three passes over at most the input's length: decode and check each byte
 * (stripping raw parameters when asked), check the decoded bytes as a whole
 * (UTF-8, double encoding), then resolve segments in place.
 */
#include "tokend/http_uri.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A byte nobody should see in a path: C0 controls, space and DEL. */
static bool is_control(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

/* Percent-decode raw into out (never longer), checking every byte on the
 * way; in strip mode a raw ";…" runs to the next raw '/' and is dropped
 * (checked all the same: what an upstream throws away may still confuse a
 * server in front of it). */
static enum tk_http_path_flaw decode(tk_slice raw, enum tk_http_params params, char *out,
                                     size_t *len)
{
    size_t n = 0;
    bool in_param = false;
    for (size_t i = 0; i < raw.len; i++) {
        unsigned char c = (unsigned char)raw.p[i];
        bool encoded = c == '%';
        if (encoded) {
            int hi = i + 2 < raw.len ? hexval(raw.p[i + 1]) : -1;
            int lo = i + 2 < raw.len ? hexval(raw.p[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return TK_HTTP_PATH_BAD_ESCAPE;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == ' ' || is_control(c)) {
            return TK_HTTP_PATH_BAD_CHAR;
        }
        if (c == '\\') {
            return TK_HTTP_PATH_BACKSLASH;
        }
        if (encoded && c == '/') {
            return TK_HTTP_PATH_ENCODED_SLASH;
        }
        if (is_control(c) && c != ' ') {
            return TK_HTTP_PATH_CONTROL;
        }
        if (c == ';' && (encoded || params != TK_HTTP_PARAMS_STRIP)) {
            return TK_HTTP_PATH_PARAMS;
        }
        if (c == ';') {
            in_param = true;
        } else if (c == '/') {
            in_param = false; /* only a raw '/' gets here */
        }
        if (!in_param) {
            out[n++] = (char)c;
        }
    }
    *len = n;
    return TK_HTTP_PATH_OK;
}

/* RFC 3629 UTF-8: no overlong forms (%C0%AE is not '.'), no surrogates,
 * nothing above U+10FFFF, no C1 controls (U+0080..U+009F). */
static enum tk_http_path_flaw check_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) { /* bounded: i advances by at least one per turn */
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1fu, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0fu, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return TK_HTTP_PATH_BAD_UTF8; /* continuation, C0/C1 lead (overlong), F5.. */
        }
        if (n - i - 1 < need) {
            return TK_HTTP_PATH_BAD_UTF8;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return TK_HTTP_PATH_BAD_UTF8;
            }
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return TK_HTTP_PATH_BAD_UTF8;
        }
        if (cp <= 0x9f) {
            return TK_HTTP_PATH_CONTROL;
        }
        i += need + 1;
    }
    return TK_HTTP_PATH_OK;
}

/* A decoded '%' that starts a valid escape: an upstream that decodes once
 * more (%252e → %2e → '.') would route on another path. */
static bool double_encoded(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (s[i] == '%' && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            return true;
        }
    }
    return false;
}

/* Merge repeated '/' and resolve "." and ".." in out[0..n) in place: the
 * write position never passes the read position, because every output byte
 * comes from an input byte. */
static enum tk_http_path_flaw segments(char *out, size_t dn, size_t *len)
{
    size_t w = 0, i = 0;
    bool trailing = false;
    while (i < dn) { /* bounded: i advances by at least one per turn */
        while (i < dn && out[i] == '/') {
            i++;
        }
        size_t s = i;
        while (i < dn && out[i] != '/') {
            i++;
        }
        size_t sl = i - s;
        trailing = i == dn && sl == 0;
        if (sl == 0 || (sl == 1 && out[s] == '.')) {
            trailing = true;
            continue;
        }
        if (sl == 2 && out[s] == '.' && out[s + 1] == '.') {
            if (w == 0) {
                return TK_HTTP_PATH_ABOVE_ROOT;
            }
            while (w > 0 && out[w - 1] != '/') {
                w--;
            }
            w--; /* the '/' before the dropped segment */
            trailing = true;
            continue;
        }
        out[w++] = '/';
        memmove(out + w, out + s, sl);
        w += sl;
        trailing = false;
    }
    if (w == 0 || trailing) {
        out[w++] = '/';
    }
    *len = w;
    return TK_HTTP_PATH_OK;
}

static enum tk_http_path_flaw normalize(tk_slice raw, enum tk_http_params params, char *out,
                                        size_t cap, size_t *len, bool *toobig)
{
    if (memchr(raw.p, '#', raw.len) != NULL) {
        return TK_HTTP_PATH_FRAGMENT; /* a request target never carries one */
    }
    size_t end = 0;
    while (end < raw.len && raw.p[end] != '?') {
        end++;
    }
    if (end == 0 || raw.p[0] != '/') {
        return TK_HTTP_PATH_NOT_ABSOLUTE;
    }
    if (cap < end) {
        *toobig = true;
        return TK_HTTP_PATH_OK;
    }
    size_t dn = 0;
    enum tk_http_path_flaw f = decode((tk_slice){raw.p, end}, params, out, &dn);
    f = f != TK_HTTP_PATH_OK ? f : check_utf8((const unsigned char *)out, dn);
    if (f == TK_HTTP_PATH_OK && double_encoded(out, dn)) {
        f = TK_HTTP_PATH_DOUBLE_ENCODED;
    }
    return f != TK_HTTP_PATH_OK ? f : segments(out, dn, len);
}

int tk_http_path_normalize(tk_slice raw, enum tk_http_params params, char *out, size_t cap,
                           size_t *len_out, enum tk_http_path_flaw *flaw_out)
{
    TK_ASSERT(raw.p != NULL || raw.len == 0);
    bool toobig = false;
    size_t n = 0;
    enum tk_http_path_flaw f =
        raw.len == 0 ? TK_HTTP_PATH_NOT_ABSOLUTE : normalize(raw, params, out, cap, &n, &toobig);
    if (flaw_out != NULL) {
        *flaw_out = f;
    }
    if (toobig) {
        return TK_E_TOOBIG;
    }
    if (f != TK_HTTP_PATH_OK) {
        return TK_E_BADINPUT;
    }
    TK_ASSERT(n >= 1 && n <= cap && out[0] == '/');
    *len_out = n;
    return 0;
}

/* Characters (code points) in s[0..n), valid UTF-8: the bytes that do not
 * continue another. An 8.3 name counts characters of the disk's OEM code
 * page, one per code point. */
static size_t chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    }
    return c;
}

/* A name NTFS may have generated as the 8.3 alias of a longer one, whatever
 * the case: a base of at most 8 characters ending in '~' and digits
 * ("ADMINI~1", "AD1F2~12": at most 6 before the '~'), then at most one '.'
 * and an extension of at most 3 characters ("ADMINI~1.HTM"). What follows a
 * ':' names a stream of that file ("ADMINI~1:x"), so it is not looked at.
 * "~user" and "v~2.0.1" cannot be such a name. */
static bool short_name(tk_slice seg)
{
    const char *colon = memchr(seg.p, ':', seg.len);
    size_t n = colon != NULL ? (size_t)(colon - seg.p) : seg.len;
    const char *dot = memchr(seg.p, '.', n);
    size_t base = dot != NULL ? (size_t)(dot - seg.p) : n;
    if (dot != NULL) {
        size_t ext = n - base - 1;
        if (memchr(dot + 1, '.', ext) != NULL || chars(dot + 1, ext) > 3) {
            return false;
        }
    }
    size_t d = base; /* the digits run back from the base's end to the '~' */
    while (d > 0 && seg.p[d - 1] >= '0' && seg.p[d - 1] <= '9') {
        d--;
    }
    return d < base && d > 0 && seg.p[d - 1] == '~' && chars(seg.p, base) <= 8;
}

bool tk_http_path_windows_alias(tk_slice path)
{
    size_t i = 0;
    while (i < path.len) { /* bounded: i advances by at least one per turn */
        size_t s = i;
        while (i < path.len && path.p[i] != '/') {
            i++;
        }
        tk_slice seg = {path.p + s, i - s};
        i++;
        if (seg.len == 0 || tk_slice_eq_str(seg, ".") || tk_slice_eq_str(seg, "..")) {
            continue; /* the dot segments themselves mean the same everywhere */
        }
        char last = seg.p[seg.len - 1];
        if (last == '.' || last == ' ') {
            return true;
        }
        for (size_t k = 0; k + 1 < seg.len; k++) {
            if (seg.p[k] == ':' && seg.p[k + 1] == '$') {
                return true;
            }
        }
        if (short_name(seg)) {
            return true;
        }
    }
    return false;
}

const char *tk_http_path_flaw_name(enum tk_http_path_flaw f)
{
    switch (f) {
    case TK_HTTP_PATH_OK:
        return "ok";
    case TK_HTTP_PATH_NOT_ABSOLUTE:
        return "not_absolute";
    case TK_HTTP_PATH_FRAGMENT:
        return "fragment";
    case TK_HTTP_PATH_BAD_CHAR:
        return "bad_char";
    case TK_HTTP_PATH_BAD_ESCAPE:
        return "bad_escape";
    case TK_HTTP_PATH_BACKSLASH:
        return "backslash";
    case TK_HTTP_PATH_ENCODED_SLASH:
        return "encoded_slash";
    case TK_HTTP_PATH_PARAMS:
        return "path_parameters";
    case TK_HTTP_PATH_CONTROL:
        return "control";
    case TK_HTTP_PATH_BAD_UTF8:
        return "bad_utf8";
    case TK_HTTP_PATH_DOUBLE_ENCODED:
        return "double_encoded";
    case TK_HTTP_PATH_ABOVE_ROOT:
        return "above_root";
    case TK_HTTP_PATH_WINDOWS_ALIAS:
        return "windows_alias";
    }
    return "unknown";
}
