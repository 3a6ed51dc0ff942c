/*
 * Strict HTTP/1.1 request parser (RFC 9110, RFC 9112), pure and
 * allocation-free. One forward scan over the buffer decides everything, and
 * every decision about byte i depends only on bytes 0..i. That is what makes
 * the parser restartable and its verdicts stable: a prefix of a request
 * either needs more bytes or gives exactly the answer the whole request
 * gives (the first error in scan order wins). Limits are part of the scan:
 * the head is scanned inside a window of TK_HTTP_HEAD_MAX bytes and the
 * request line inside TK_HTTP_LINE_MAX, so running out of window while more
 * bytes exist means "too long", not "need more".
 */
#include "tokend/http.h"

#include <string.h>

/* ---- Character classes ----------------------------------------------------- */

enum {
    FV = 1 << 0, /* field value byte: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5) */
    TC = 1 << 1, /* tchar: a token byte (RFC 9110 §5.6.2) */
    PC = 1 << 2, /* plain origin-form byte: pchar and '/', but not '%' or '?' */
    HC = 1 << 3, /* Host byte: reg-name, IP-literal, ':' port (RFC 3986 §3.2) */
    AN = FV | TC | PC | HC,
};

static const uint8_t cclass[256] = {
    ['\t'] = FV,        [' '] = FV,           ['!'] = AN,           ['"'] = FV,
    ['#'] = FV | TC,    ['$'] = AN,           ['%'] = FV | TC | HC, ['&'] = AN,
    ['\''] = AN,        ['('] = FV | PC | HC, [')'] = FV | PC | HC, ['*'] = AN,
    ['+'] = AN,         [','] = FV | PC | HC, ['-'] = AN,           ['.'] = AN,
    ['/'] = FV | PC,    ['0' ... '9'] = AN,   [':'] = FV | PC | HC, [';'] = FV | PC | HC,
    ['<'] = FV,         ['='] = FV | PC | HC, ['>'] = FV,           ['?'] = FV,
    ['@'] = FV | PC,    ['A' ... 'Z'] = AN,   ['['] = FV | HC,      ['\\'] = FV,
    [']'] = FV | HC,    ['^'] = FV | TC,      ['_'] = AN,           ['`'] = FV | TC,
    ['a' ... 'z'] = AN, ['{'] = FV,           ['|'] = FV | TC,      ['}'] = FV,
    ['~'] = AN,         [0x80 ... 0xff] = FV,
};

static inline bool is(char c, int cls)
{
    return (cclass[(unsigned char)c] & cls) != 0;
}

/* Length of the run of class-cls bytes at p[0..n); four at a time first,
 * so the bound is checked once per four bytes. */
static inline size_t span(const char *p, size_t n, int cls)
{
    size_t i = 0;
    while (i + 4 <= n && is(p[i], cls) && is(p[i + 1], cls) && is(p[i + 2], cls) &&
           is(p[i + 3], cls)) {
        i += 4;
    }
    while (i < n && is(p[i], cls)) {
        i++;
    }
    return i;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint32_t load4(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/*
 * p[0..n) equals the literal `lit` (of length n) ignoring ASCII case.
 * Folding sets bit 0x20 of every byte, so each byte of the literal must have
 * it (lower-case letters, digits, '-': true of every literal used here). The
 * only other bytes that fold onto a letter, digit or '-' are CTLs (0x10-0x19
 * onto digits, CR onto '-'), and p is always a token or a validated field
 * value, which holds none of them.
 */
static inline bool eq_fold(const char *p, size_t n, const char *lit)
{
    if (n >= 8) {
        /* words at 0, 8, …, and the last 8 bytes (overlapping is harmless) */
        uint64_t diff = (load8(p + n - 8) | ONES * 0x20) ^ load8(lit + n - 8);
        for (size_t i = 0; i + 8 < n; i += 8) {
            diff |= (load8(p + i) | ONES * 0x20) ^ load8(lit + i);
        }
        return diff == 0;
    }
    if (n >= 4) {
        uint32_t diff = (load4(p) | 0x20202020u) ^ load4(lit);
        diff |= (load4(p + n - 4) | 0x20202020u) ^ load4(lit + n - 4);
        return diff == 0;
    }
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++) {
        diff |= (unsigned char)((p[i] | 0x20) ^ lit[i]);
    }
    return diff == 0;
}

static inline bool is_lit(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && eq_fold(p, n, lit);
}

/* ---- Scan state ---------------------------------------------------------------- */

/* Internal "need more bytes" result; never returned to callers. */
#define NEED 1

typedef struct scan {
    const char *buf;
    size_t len; /* bytes available */
    size_t end; /* head window: min(len, TK_HTTP_HEAD_MAX) */
    size_t pos;
    size_t max_body;
    bool seen_host, seen_cl, seen_te, seen_auth, seen_ctype;
    bool conn_close, conn_keep_alive;
} scan;

static tk_slice slice(const scan *s, size_t from, size_t to)
{
    return (tk_slice){s->buf + from, to - from};
}

/* Out of request-line window at cend: too long when bytes exist past it. */
static int line_need(const scan *s, size_t cend)
{
    return (cend == TK_HTTP_LINE_MAX && s->len > TK_HTTP_LINE_MAX) ? -414 : NEED;
}

/* CRLF at s->pos; a bare CR or LF is malformed (RFC 9112 §2.2). */
static int expect_crlf(scan *s)
{
    if (s->pos >= s->end) {
        return NEED;
    }
    if (s->buf[s->pos] != '\r') {
        return -400;
    }
    if (s->pos + 1 >= s->end) {
        return NEED;
    }
    if (s->buf[s->pos + 1] != '\n') {
        return -400;
    }
    s->pos += 2;
    return 0;
}

/* ---- Request line (RFC 9112 §3) ------------------------------------------------ */

static enum tk_http_method method_of(tk_slice m)
{
    switch (m.len) {
    case 3:
        return memcmp(m.p, "GET", 3) == 0   ? TK_HTTP_GET
               : memcmp(m.p, "PUT", 3) == 0 ? TK_HTTP_PUT
                                            : TK_HTTP_OTHER;
    case 4:
        return memcmp(m.p, "POST", 4) == 0   ? TK_HTTP_POST
               : memcmp(m.p, "HEAD", 4) == 0 ? TK_HTTP_HEAD
                                             : TK_HTTP_OTHER;
    case 5:
        return memcmp(m.p, "PATCH", 5) == 0 ? TK_HTTP_PATCH : TK_HTTP_OTHER;
    case 6:
        return memcmp(m.p, "DELETE", 6) == 0 ? TK_HTTP_DELETE : TK_HTTP_OTHER;
    case 7:
        return memcmp(m.p, "OPTIONS", 7) == 0 ? TK_HTTP_OPTIONS : TK_HTTP_OTHER;
    default:
        return TK_HTTP_OTHER;
    }
}

static int parse_method(scan *s, size_t cend, tk_http_request *req)
{
    size_t start = s->pos;
    s->pos += span(s->buf + s->pos, cend - s->pos, TC);
    if (s->pos == cend) {
        return line_need(s, cend);
    }
    if (s->pos == start || s->buf[s->pos] != ' ') {
        return -400;
    }
    req->method_str = slice(s, start, s->pos);
    req->method = method_of(req->method_str);
    s->pos++;
    return 0;
}

/* origin-form = absolute-path [ "?" query ]; "%" must start a pct-encoded
 * triplet. Bytes outside RFC 3986's pchar set (CTLs, SP, '"', '#', '<',
 * '>', '[', '\', ']', '^', '`', '{', '|', '}', non-ASCII) are rejected. */
static int scan_origin_form(scan *s, size_t cend, size_t *qmark)
{
    for (size_t guard = 0; guard <= TK_HTTP_LINE_MAX; guard++) {
        s->pos += span(s->buf + s->pos, cend - s->pos, PC);
        if (s->pos == cend) {
            return line_need(s, cend);
        }
        char c = s->buf[s->pos];
        if (c == ' ') {
            return 0;
        }
        if (c == '?') {
            if (*qmark == 0) {
                *qmark = s->pos;
            }
            s->pos++;
        } else if (c == '%') {
            for (size_t k = 1; k <= 2; k++) {
                if (s->pos + k >= cend) {
                    return line_need(s, cend);
                }
                if (!is_hex(s->buf[s->pos + k])) {
                    return -400;
                }
            }
            s->pos += 3;
        } else {
            return -400;
        }
    }
    tk_assert_fail("origin-form scan within TK_HTTP_LINE_MAX", __FILE__, __LINE__);
}

static int parse_target(scan *s, size_t cend, tk_http_request *req)
{
    size_t start = s->pos;
    size_t qmark = 0;
    if (s->pos == cend) {
        return line_need(s, cend);
    }
    if (s->buf[s->pos] == '*') {
        /* asterisk-form, for a server-wide OPTIONS only (RFC 9112 §3.2.4) */
        if (req->method != TK_HTTP_OPTIONS) {
            return -400;
        }
        s->pos++;
        if (s->pos == cend) {
            return line_need(s, cend);
        }
        if (s->buf[s->pos] != ' ') {
            return -400;
        }
    } else if (s->buf[s->pos] == '/') {
        int rc = scan_origin_form(s, cend, &qmark);
        if (rc != 0) {
            return rc;
        }
    } else {
        return -400;
    }
    req->target = slice(s, start, s->pos);
    if (qmark != 0) {
        req->path = slice(s, start, qmark);
        req->query = slice(s, qmark + 1, s->pos);
    } else {
        req->path = req->target;
        req->query = TK_SLICE_NULL;
    }
    s->pos++; /* the SP */
    return 0;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF. Only 1.0 and 1.1 are
 * served; another well-formed version is 505 (known once the CRLF is in). */
static int parse_version(scan *s, size_t cend, tk_http_request *req)
{
    static const char shape[] = "HTTP/9.9";
    for (size_t i = 0; i < 8; i++) {
        if (s->pos + i >= cend) {
            return line_need(s, cend);
        }
        char c = s->buf[s->pos + i];
        bool ok = shape[i] == '9' ? (c >= '0' && c <= '9') : c == shape[i];
        if (!ok) {
            return -400;
        }
    }
    char major = s->buf[s->pos + 5];
    char minor = s->buf[s->pos + 7];
    s->pos += 8;
    int rc = expect_crlf(s);
    if (rc != 0) {
        return rc;
    }
    if (major != '1' || (minor != '0' && minor != '1')) {
        return -505;
    }
    req->minor = minor - '0';
    return 0;
}

static int parse_request_line(scan *s, tk_http_request *req)
{
    size_t cend = s->end < TK_HTTP_LINE_MAX ? s->end : TK_HTTP_LINE_MAX;
    int rc = parse_method(s, cend, req);
    if (rc == 0) {
        rc = parse_target(s, cend, req);
    }
    if (rc == 0) {
        rc = parse_version(s, cend, req);
    }
    return rc;
}

/* ---- Header fields (RFC 9112 §5, RFC 9110 §5) ---------------------------------- */

/* Content-Length = 1*DIGIT (RFC 9110 §8.6); no sign, no list, no OWS inside. */
static int content_length(scan *s, tk_slice v, tk_http_request *req)
{
    if (s->seen_cl || s->seen_te) {
        return -400; /* repeated (strict, even when identical) or with TE */
    }
    if (v.len == 0) {
        return -400;
    }
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (c < '0' || c > '9') {
            return -400;
        }
        if (n > (SIZE_MAX - 9) / 10) {
            return -400;
        }
        n = n * 10 + (size_t)(c - '0');
    }
    if (n > s->max_body) {
        return -413;
    }
    s->seen_cl = true;
    req->content_length = n;
    return 0;
}

/* Connection = #connection-option: look for "close" and "keep-alive". */
static void connection_options(scan *s, tk_slice v)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (is_ows(v.p[i]) || v.p[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < v.len && v.p[i] != ',' && !is_ows(v.p[i])) {
            i++;
        }
        if (is_lit(v.p + start, i - start, "close")) {
            s->conn_close = true;
        } else if (is_lit(v.p + start, i - start, "keep-alive")) {
            s->conn_keep_alive = true;
        }
    }
}

static int host(scan *s, tk_slice v, tk_http_request *req)
{
    if (s->seen_host) {
        return -400; /* RFC 9112 §3.2: more than one Host is a 400 */
    }
    for (size_t i = 0; i < v.len; i++) {
        if (!is(v.p[i], HC)) {
            return -400;
        }
    }
    s->seen_host = true;
    req->host = v;
    return 0;
}

/* Singleton fields whose duplicates would be ambiguous (whose credentials,
 * which media type?) are rejected rather than resolved. */
static int singleton(bool *seen, tk_slice v, tk_slice *out)
{
    if (*seen) {
        return -400;
    }
    *seen = true;
    *out = v;
    return 0;
}

static int well_known(scan *s, tk_slice n, tk_slice v, tk_http_request *req)
{
    switch (n.len) {
    case 4:
        return is_lit(n.p, n.len, "host") ? host(s, v, req) : 0;
    case 10:
        if (is_lit(n.p, n.len, "connection")) {
            connection_options(s, v);
        }
        return 0;
    case 12:
        return is_lit(n.p, n.len, "content-type") ? singleton(&s->seen_ctype, v, &req->content_type)
                                                  : 0;
    case 13:
        return is_lit(n.p, n.len, "authorization")
                   ? singleton(&s->seen_auth, v, &req->authorization)
                   : 0;
    case 14:
        return is_lit(n.p, n.len, "content-length") ? content_length(s, v, req) : 0;
    case 17:
        if (!is_lit(n.p, n.len, "transfer-encoding")) {
            return 0;
        }
        /* RFC 9112 §6.1: TE with CL is a smuggling signal; 1.0 has no TE. */
        if (s->seen_cl || req->minor == 0) {
            return -400;
        }
        s->seen_te = true;
        return 0;
    default:
        return 0;
    }
}

static bool value_byte_ok(unsigned char c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

/* Some byte of x is below 0x20 or is 0x7f (exact as a yes/no: the borrow
 * trick can only mis-flag lanes after a lane that truly matched). */
static inline bool word_suspect(uint64_t x)
{
    uint64_t low = (x - ONES * 0x20) & ~x & HIGHS;
    uint64_t y = x ^ (ONES * 0x7f);
    uint64_t del = (y - ONES) & ~y & HIGHS;
    return (low | del) != 0;
}

/* Advance to the CR ending a field value, validating on the way: one pass,
 * eight bytes at a time. A CR is a control byte, so a word without a suspect
 * byte holds neither the end nor an error; a suspect word (the CR, often just
 * a HTAB) is walked byte by byte. The verdict is the byte-by-byte one: the
 * first CR ends the value, an invalid byte before it is -400 whether or not
 * the CR has arrived, and bytes after it are not looked at here. */
static int scan_value(scan *s)
{
    const char *p = s->buf + s->pos;
    size_t n = s->end - s->pos;
    size_t i = 0;
    while (i < n) { /* every turn moves i forward */
        while (i + 8 <= n && !word_suspect(load8(p + i))) {
            i += 8;
        }
        size_t stop = i + 8 <= n ? i + 8 : n; /* the suspect word, or the tail */
        for (; i < stop; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c == '\r') {
                s->pos += i;
                return 0;
            }
            if (!value_byte_ok(c)) {
                return -400;
            }
        }
    }
    s->pos += n;
    return NEED;
}

/* field-line = field-name ":" OWS field-value OWS CRLF */
static int parse_field(scan *s, tk_http_request *req)
{
    size_t start = s->pos;
    s->pos += span(s->buf + s->pos, s->end - s->pos, TC);
    if (s->pos == s->end) {
        return NEED;
    }
    if (s->pos == start || s->buf[s->pos] != ':') {
        return -400; /* empty name, whitespace before ':', or a stray byte */
    }
    tk_slice name = slice(s, start, s->pos);
    s->pos++;
    while (s->pos < s->end && is_ows(s->buf[s->pos])) {
        s->pos++;
    }
    size_t vstart = s->pos;
    int rc = scan_value(s);
    if (rc != 0) {
        return rc;
    }
    size_t vend = s->pos;
    rc = expect_crlf(s);
    if (rc != 0) {
        return rc;
    }
    while (vend > vstart && is_ows(s->buf[vend - 1])) {
        vend--;
    }
    tk_slice value = slice(s, vstart, vend);
    req->headers[req->nheaders++] = (tk_http_header){name, value};
    return well_known(s, name, value, req);
}

static int parse_fields(scan *s, tk_http_request *req)
{
    for (size_t i = 0; i <= TK_HTTP_HEADERS_MAX; i++) {
        if (s->pos >= s->end) {
            return NEED;
        }
        char c = s->buf[s->pos];
        if (c == '\r') {
            return expect_crlf(s); /* the empty line ending the head */
        }
        if (is_ows(c)) {
            return -400; /* obs-fold, or whitespace before the first field */
        }
        if (req->nheaders == TK_HTTP_HEADERS_MAX) {
            return -431;
        }
        int rc = parse_field(s, req);
        if (rc != 0) {
            return rc;
        }
    }
    tk_assert_fail("header loop within TK_HTTP_HEADERS_MAX", __FILE__, __LINE__);
}

/* ---- Whole request ------------------------------------------------------------- */

static void reset(tk_http_request *req)
{
    req->method = TK_HTTP_OTHER;
    req->method_str = TK_SLICE_NULL;
    req->target = req->path = req->query = TK_SLICE_NULL;
    req->minor = 0;
    req->keep_alive = false;
    req->nheaders = 0;
    req->authorization = req->content_type = req->host = TK_SLICE_NULL;
    req->content_length = 0;
    req->body = TK_SLICE_NULL;
}

static int finish_head(scan *s, tk_http_request *req)
{
    if (req->minor == 1 && !s->seen_host) {
        return -400; /* RFC 9112 §3.2 */
    }
    if (s->seen_te) {
        return -501; /* no chunked bodies: our requests are small */
    }
    req->keep_alive = req->minor == 1 ? !s->conn_close : (s->conn_keep_alive && !s->conn_close);
    return 0;
}

int tk_http_parse(const char *buf, size_t len, size_t max_body, tk_http_request *req)
{
    _Static_assert(TK_HTTP_LINE_MAX + 2 <= TK_HTTP_HEAD_MAX, "a full request line fits the head");
    _Static_assert(TK_HTTP_HEAD_MAX + TK_HTTP_BODY_MAX <= INT32_MAX, "the result fits an int");
    TK_ASSERT(buf != NULL || len == 0);
    scan s = {
        .buf = buf,
        .len = len,
        .end = len < TK_HTTP_HEAD_MAX ? len : TK_HTTP_HEAD_MAX,
        .max_body = max_body < TK_HTTP_BODY_MAX ? max_body : TK_HTTP_BODY_MAX,
    };
    reset(req);
    int rc = parse_request_line(&s, req);
    if (rc == 0) {
        rc = parse_fields(&s, req);
    }
    if (rc == NEED) {
        /* Out of head window: too big if bytes exist past it. */
        return s.end < len ? -431 : 0;
    }
    if (rc == 0) {
        rc = finish_head(&s, req);
    }
    if (rc != 0) {
        return rc;
    }
    TK_ASSERT(s.pos <= len && req->content_length <= s.max_body);
    if (len - s.pos < req->content_length) {
        /* Tell the caller how much it waits for, so it need not reparse
         * the head for every piece of the body. */
        req->body = slice(&s, s.pos, s.pos);
        return 0;
    }
    req->body = slice(&s, s.pos, s.pos + req->content_length);
    return (int)(s.pos + req->content_length);
}

tk_slice tk_http_header_get(const tk_http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders && i < TK_HTTP_HEADERS_MAX; i++) {
        tk_slice h = req->headers[i].name;
        if (h.len == n && tk_mem_eq_nocase(h.p, name, n)) { /* length first */
            return req->headers[i].value;
        }
    }
    return TK_SLICE_NULL;
}
