/*
 * Host names as the upstream will route on them: one spelling per host, so
 * that "WIKI.example.com.", "wiki.example.com:0443" and "wiki.example.com"
 * are one host to the resources table, and a name no DNS or virtual-host
 * lookup would take ("wiki%2eexample.com", "a..b", "a,b") is refused rather
 * than matched against "*". Pure, allocation-free.
 */
#include "tokend/http_uri.h"

#include <arpa/inet.h>
#include <string.h>

_Static_assert(TK_HTTP_HOST_MAX + 1 >= INET6_ADDRSTRLEN + 2, "a bracketed v6 literal fits");

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* A reg-name into buf: lower case, labels checked, one trailing dot dropped. */
static int reg_name(tk_slice s, char *buf, size_t *len)
{
    if (s.len > 0 && s.p[s.len - 1] == '.') {
        s.len--; /* the root label: "example.com." is "example.com" */
    }
    if (s.len == 0 || s.len > TK_HTTP_HOST_MAX) {
        return TK_E_BADINPUT;
    }
    size_t label = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = lower(s.p[i]);
        if (c == '.') {
            if (label == 0) {
                return TK_E_BADINPUT; /* empty label */
            }
            label = 0;
        } else if (!is_name_char(c) || ++label > TK_HTTP_HOST_LABEL_MAX) {
            return TK_E_BADINPUT;
        }
        buf[i] = c;
    }
    if (label == 0) {
        return TK_E_BADINPUT;
    }
    *len = s.len;
    return 0;
}

/* "[v6]" into buf in RFC 5952 form (inet_ntop), so every spelling of one
 * address compares equal. IPvFuture and zone ids are refused. */
static int ip_literal(tk_slice s, char *buf, size_t cap, size_t *len)
{
    char in[INET6_ADDRSTRLEN + 1];
    unsigned char addr[16];
    if (s.len < 4 || s.len - 2 >= sizeof in || s.p[s.len - 1] != ']') {
        return TK_E_BADINPUT;
    }
    memcpy(in, s.p + 1, s.len - 2);
    in[s.len - 2] = '\0';
    if (inet_pton(AF_INET6, in, addr) != 1) {
        return TK_E_BADINPUT;
    }
    TK_ASSERT(cap >= INET6_ADDRSTRLEN + 2);
    buf[0] = '[';
    if (inet_ntop(AF_INET6, addr, buf + 1, (socklen_t)(cap - 2)) == NULL) {
        return TK_E_BADINPUT;
    }
    size_t n = strlen(buf);
    buf[n++] = ']';
    *len = n;
    return 0;
}

/* Decimal 1..65535 with leading zeros allowed; empty = none (0). */
static int port(tk_slice s, uint16_t *out)
{
    uint32_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return TK_E_BADINPUT;
        }
        v = v * 10 + (uint32_t)(s.p[i] - '0');
        if (v > 65535) {
            return TK_E_BADINPUT;
        }
    }
    if (s.len > 0 && v == 0) {
        return TK_E_BADINPUT;
    }
    *out = (uint16_t)v;
    return 0;
}

int tk_http_host_normalize(tk_slice raw, char *buf, size_t cap, tk_http_host *out)
{
    TK_ASSERT(cap >= TK_HTTP_HOST_MAX + 1);
    if (raw.len == 0) {
        return TK_E_BADINPUT;
    }
    size_t end = raw.len;
    if (raw.len > 0 && raw.p[0] == '[') {
        const char *close = memchr(raw.p, ']', raw.len);
        end = close != NULL ? (size_t)(close - raw.p) + 1 : raw.len;
        if (end < raw.len && raw.p[end] != ':') {
            return TK_E_BADINPUT;
        }
    } else {
        const char *colon = memchr(raw.p, ':', raw.len);
        end = colon != NULL ? (size_t)(colon - raw.p) : raw.len;
    }
    tk_slice name = {raw.p, end};
    tk_slice digits =
        end < raw.len ? (tk_slice){raw.p + end + 1, raw.len - end - 1} : TK_SLICE_NULL;
    size_t n = 0;
    uint16_t p = 0;
    int rc =
        raw.len > 0 && raw.p[0] == '[' ? ip_literal(name, buf, cap, &n) : reg_name(name, buf, &n);
    rc = rc != 0 ? rc : port(digits, &p);
    if (rc != 0) {
        return rc;
    }
    buf[n] = '\0';
    *out = (tk_http_host){.name = {buf, n}, .port = p};
    return 0;
}

bool tk_http_host_eq(const tk_http_host *a, const tk_http_host *b)
{
    uint16_t pa = a->port != 0 ? a->port : TK_HTTP_DEFAULT_PORT;
    uint16_t pb = b->port != 0 ? b->port : TK_HTTP_DEFAULT_PORT;
    return pa == pb && tk_slice_eq(a->name, b->name);
}
