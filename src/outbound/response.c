/*
 * The pure parts of outbound.h: the purpose and result names /metrics and
 * the logs print, a response header by name, and the max-age of a
 * Cache-Control value (the IdP key refresher's schedule). No state, no
 * libcurl: thread-safe, and unit-tested without a peer.
 */
#include "outbound_int.h"

#include <string.h>

/* ---- Names ---------------------------------------------------------------------------- */

static const char *const purpose_names[TK_OB_PURPOSES] = {
    "jwks", "discovery", "token", "client_metadata", "other", "ssf_push"};
static const char *const result_names[TK_OB_RESULTS] = {
    "ok",      "http_error", "redirect",   "timeout",  "connect", "tls",
    "too_big", "protocol",   "queue_full", "canceled", "error",   "refused_address"};

const char *const tk_outbound_dur_label[TK_OB_DUR_BUCKETS] = {
    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "10", "30"};
const uint64_t ob_dur_bound_ms[TK_OB_DUR_BUCKETS] = {10,  25,   50,   100,   250,
                                                     500, 1000, 2500, 10000, 30000};

const char *tk_outbound_purpose_name(unsigned purpose)
{
    return purpose < TK_OB_PURPOSES ? purpose_names[purpose] : "unknown";
}

const char *tk_outbound_result_name(unsigned result)
{
    return result < TK_OB_RESULTS ? result_names[result] : "unknown";
}

/* ---- Response headers ------------------------------------------------------------------ */

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

tk_slice tk_outbound_header(const tk_outbound_resp *resp, const char *name)
{
    size_t nl = strlen(name);
    const char *p = resp->headers, *end = resp->headers + resp->headers_len;
    while (p < end) { /* bounded: every turn moves p past one line */
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol != NULL ? eol : end;
        bool match = (size_t)(le - p) > nl && p[nl] == ':';
        for (size_t i = 0; match && i < nl; i++) {
            match = lower(p[i]) == lower(name[i]);
        }
        if (match) {
            const char *v = p + nl + 1, *ve = le;
            while (v < ve && blank(*v)) {
                v++;
            }
            while (ve > v && (blank(ve[-1]) || ve[-1] == '\r')) {
                ve--;
            }
            return (tk_slice){v, (size_t)(ve - v)};
        }
        p = le + 1;
    }
    return TK_SLICE_NULL;
}

/* The next comma-separated directive of a Cache-Control value. */
static tk_slice next_directive(tk_slice *rest)
{
    size_t i = 0;
    while (i < rest->len && rest->p[i] != ',') {
        i++;
    }
    tk_slice d = {rest->p, i};
    size_t skip = i < rest->len ? i + 1 : i;
    rest->p += skip;
    rest->len -= skip;
    while (d.len > 0 && blank(d.p[0])) {
        d.p++;
        d.len--;
    }
    while (d.len > 0 && blank(d.p[d.len - 1])) {
        d.len--;
    }
    return d;
}

static bool prefix_nocase(tk_slice s, const char *pre)
{
    size_t n = strlen(pre);
    return s.len >= n && tk_slice_eq_nocase((tk_slice){s.p, n}, pre);
}

int tk_outbound_max_age(tk_slice cc, int64_t *out)
{
    int rc = TK_E_NOTFOUND;
    tk_slice rest = cc;
    for (size_t guard = 0; rest.len > 0 && guard <= cc.len; guard++) {
        tk_slice d = next_directive(&rest);
        if (tk_slice_eq_nocase(d, "no-store") || tk_slice_eq_nocase(d, "no-cache")) {
            *out = 0;
            return 0; /* wins over any max-age */
        }
        if (!prefix_nocase(d, "max-age=") || rc == 0) {
            continue;
        }
        tk_slice v = {d.p + 8, d.len - 8};
        if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"') {
            v.p++;
            v.len -= 2;
        }
        int64_t n = 0;
        bool ok = v.len > 0 && v.len <= 10;
        for (size_t i = 0; ok && i < v.len; i++) {
            ok = v.p[i] >= '0' && v.p[i] <= '9';
            n = n * 10 + (v.p[i] - '0');
        }
        if (ok) {
            *out = n;
            rc = 0;
        }
    }
    return rc;
}
