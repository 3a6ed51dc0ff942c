/*
 * Request paths as proxies and upstream servers route on them (RFC 3986
 * §5.2.4 dot-segment removal, percent-decoding). Pure, allocation-free: any
 * route matcher can use it.
 */
#include "tokend/http_uri.h"

#include <string.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode raw into out (same length or shorter). */
static int pct_decode(tk_slice raw, char *out, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < raw.len; i++) {
        char c = raw.p[i];
        if (c == '%') {
            int hi = i + 2 < raw.len ? hexval(raw.p[i + 1]) : -1;
            int lo = i + 2 < raw.len ? hexval(raw.p[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return TK_E_BADINPUT;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if ((unsigned char)c < 0x20 || c == 0x7f) {
            return TK_E_BADINPUT;
        }
        out[n++] = c;
    }
    *len = n;
    return 0;
}

int tk_http_path_normalize(tk_slice raw, char *out, size_t cap, size_t *len)
{
    size_t end = 0;
    while (end < raw.len && raw.p[end] != '?' && raw.p[end] != '#') {
        end++;
    }
    if (end == 0 || raw.p[0] != '/') {
        return TK_E_BADINPUT;
    }
    if (cap < end) {
        return TK_E_TOOBIG;
    }
    size_t dn;
    int rc = pct_decode((tk_slice){raw.p, end}, out, &dn);
    if (rc != 0) {
        return rc;
    }
    /* Segments are rewritten in place: the write position never passes the
     * read position, because every output byte comes from an input byte. */
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
                return TK_E_BADINPUT; /* above the root */
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
    return 0;
}
