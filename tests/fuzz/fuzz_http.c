/*
 * libFuzzer target for the HTTP request parser. Input layout: byte 0 seeds
 * the split points, byte 1 picks max_body, the rest is the request bytes.
 * The whole input is parsed once; then prefixes at split points derived
 * from byte 0 are parsed, each from an exact-size heap copy so ASan sees any
 * read past its end. Every prefix must give 0 or the whole input's verdict
 * (and a complete parse only once all of its bytes are there, identical to
 * the whole one). Accepted requests are re-checked by a naive reading of
 * the same bytes: CRLF-only lines, the request-line shape, the field count,
 * the limits, no Transfer-Encoding, Host on 1.1, slices inside the buffer.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/http.h"
#include "tokend/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPLITS_MAX 48

static tk_http_request whole_req, part_req;

static bool inside(tk_slice s, const char *buf, size_t n)
{
    if (s.p == NULL) {
        return s.len == 0;
    }
    return s.p >= buf && s.len <= n && (size_t)(s.p - buf) <= n - s.len;
}

static bool verdict_ok(int rc, size_t len)
{
    switch (rc) {
    case 0:
    case -400:
    case -413:
    case -414:
    case -431:
    case -501:
    case -505:
        return true;
    default:
        return rc > 0 && (size_t)rc <= len;
    }
}

/* ---- Naive re-reading of an accepted request --------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_lines(const char *buf, size_t head)
{
    EXPECT(head >= 4 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0);
    EXPECT(head <= TK_HTTP_HEAD_MAX);
    size_t lines = 0;
    for (size_t i = 0; i < head; i++) {
        if (buf[i] == '\r') {
            EXPECT(i + 1 < head && buf[i + 1] == '\n');
        } else if (buf[i] == '\n') {
            EXPECT(i > 0 && buf[i - 1] == '\r');
            lines++;
        } else {
            EXPECT((unsigned char)buf[i] >= 0x20 || buf[i] == '\t');
            EXPECT(buf[i] != 0x7f);
        }
    }
    /* request line + fields + blank line */
    EXPECT(lines == whole_req.nheaders + 2);
    const char *eol = memchr(buf, '\r', head);
    size_t line = (size_t)(eol - buf);
    EXPECT(line <= TK_HTTP_LINE_MAX);
    const char *sp1 = memchr(buf, ' ', line);
    EXPECT(sp1 != NULL);
    const char *sp2 = memchr(sp1 + 1, ' ', line - (size_t)(sp1 + 1 - buf));
    EXPECT(sp2 != NULL && memchr(sp2 + 1, ' ', line - (size_t)(sp2 + 1 - buf)) == NULL);
    EXPECT(eol - sp2 == 9 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0);
    EXPECT(sp2[8] == '0' + whole_req.minor);
    EXPECT(whole_req.method_str.p == buf && whole_req.method_str.len == (size_t)(sp1 - buf));
    EXPECT(whole_req.target.p == sp1 + 1 && whole_req.target.p + whole_req.target.len == sp2);
}

static void check_fields(const char *buf, size_t n)
{
    const tk_http_request *r = &whole_req;
    EXPECT(r->nheaders <= TK_HTTP_HEADERS_MAX);
    size_t cl = 0, host = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        tk_slice name = r->headers[i].name, v = r->headers[i].value;
        EXPECT(name.len > 0 && inside(name, buf, n) && name.p[name.len] == ':');
        EXPECT(v.p != NULL && inside(v, buf, n));
        EXPECT(memchr(name.p, ' ', name.len) == NULL && memchr(name.p, '\t', name.len) == NULL);
        EXPECT(v.len == 0 || (!is_ows(v.p[0]) && !is_ows(v.p[v.len - 1])));
        EXPECT(memchr(v.p, '\r', v.len) == NULL && memchr(v.p, '\n', v.len) == NULL);
        EXPECT(!tk_slice_eq_nocase(name, "transfer-encoding"));
        cl += tk_slice_eq_nocase(name, "content-length");
        host += tk_slice_eq_nocase(name, "host");
        EXPECT(tk_http_header_get(r, "content-length").p != NULL || cl == 0);
    }
    EXPECT(cl <= 1 && host <= 1);
    EXPECT(r->minor == 0 || host == 1);
    EXPECT((host == 1) == (r->host.p != NULL));
    EXPECT(cl == 1 || r->content_length == 0);
}

static void check_accepted(const char *buf, size_t n, size_t max_body)
{
    const tk_http_request *r = &whole_req;
    EXPECT(r->content_length <= max_body && r->content_length <= TK_HTTP_BODY_MAX);
    EXPECT(r->body.len == r->content_length && n >= r->content_length);
    EXPECT(r->body.len == 0 || r->body.p + r->body.len == buf + n);
    size_t head = n - r->content_length;
    check_lines(buf, head);
    check_fields(buf, head);
    EXPECT(inside(r->path, buf, head) && inside(r->query, buf, head));
    EXPECT(inside(r->authorization, buf, head) && inside(r->content_type, buf, head));
    EXPECT(r->path.len > 0 && (r->path.p[0] == '/' || (r->path.len == 1 && r->path.p[0] == '*')));
    EXPECT(r->path.p[0] != '*' || r->method == TK_HTTP_OPTIONS);
    EXPECT(r->query.p == NULL || r->query.p[-1] == '?');
}

/* ---- Prefixes ---------------------------------------------------------------------- */

static bool same_parse(const tk_http_request *a, const char *abuf, const tk_http_request *b,
                       const char *bbuf)
{
    return a->method == b->method && a->minor == b->minor && a->keep_alive == b->keep_alive &&
           a->nheaders == b->nheaders && a->content_length == b->content_length &&
           a->target.len == b->target.len && a->target.p - abuf == b->target.p - bbuf &&
           a->path.len == b->path.len && a->query.len == b->query.len &&
           a->host.len == b->host.len && a->authorization.len == b->authorization.len;
}

static void check_prefix(const char *buf, size_t p, size_t max_body, int whole)
{
    char *copy = malloc(p > 0 ? p : 1);
    if (copy == NULL) {
        return;
    }
    memcpy(copy, buf, p);
    int rc = tk_http_parse(copy, p, max_body, &part_req);
    EXPECT(verdict_ok(rc, p));
    if (whole > 0) {
        EXPECT(p < (size_t)whole ? rc == 0 : rc == whole);
        EXPECT(rc <= 0 || same_parse(&part_req, copy, &whole_req, buf));
    } else {
        EXPECT(rc == 0 || rc == whole);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    uint32_t seed = data[0];
    size_t max_body = data[1] == 0xff   ? TK_HTTP_BODY_MAX
                      : data[1] == 0xfe ? SIZE_MAX
                                        : (size_t)(data[1] & 0x7f);
    const char *buf = (const char *)data + 2;
    size_t len = size - 2;

    int whole = tk_http_parse(buf, len, max_body, &whole_req);
    EXPECT(verdict_ok(whole, len));
    if (whole > 0) {
        check_accepted(buf, (size_t)whole, max_body);
        check_prefix(buf, (size_t)whole - 1, max_body, whole);
        check_prefix(buf, (size_t)whole, max_body, whole);
    }
    /* Split points: a walk of strides from a tiny generator seeded by byte 0. */
    size_t p = 0;
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < SPLITS_MAX && p <= len; i++) {
        check_prefix(buf, p, max_body, whole);
        x = x * 1103515245u + 12345u;
        size_t stride = 1 + (x >> 16) % (1 + (seed & 0x3f));
        p += stride;
    }
    check_prefix(buf, len, max_body, whole);
    return 0;
}
