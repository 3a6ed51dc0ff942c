/*
 * Response writer: one status line, a fixed set of headers in a fixed order,
 * then the body, appended to a connection's output buffer. The whole length
 * is computed first, so a response is written completely or not at all;
 * numbers go through tk_fmt_u64 (no snprintf on the hot path).
 */
#include "tokend/http.h"

#include "tokend/json.h"

#include <string.h>

const char *tk_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, s) put((p), (s), sizeof(s) - 1)

int tk_http_respond(tk_outbuf *out, int status, const char *ctype, const char *extra_headers,
                    const char *body, size_t body_len)
{
    TK_ASSERT(out != NULL && out->buf != NULL && out->len <= out->cap);
    TK_ASSERT(status >= 100 && status <= 999);
    TK_ASSERT(body != NULL || body_len == 0);
    const char *reason = tk_http_reason(status);
    size_t reason_len = strlen(reason);
    size_t ctype_len = ctype ? strlen(ctype) : 0;
    size_t extra_len = extra_headers ? strlen(extra_headers) : 0;
    /* Header injection would be a programming error: values are our own. */
    TK_ASSERT(ctype == NULL || strpbrk(ctype, "\r\n") == NULL);
    TK_ASSERT(extra_len == 0 || (extra_len >= 2 && extra_headers[extra_len - 2] == '\r' &&
                                 extra_headers[extra_len - 1] == '\n'));
    char cl[24];
    size_t cl_len = tk_fmt_u64(body_len, cl);
    TK_ASSERT(cl_len > 0 && cl_len <= 20);

    size_t head = sizeof("HTTP/1.1 200 \r\n") - 1 + reason_len +
                  (ctype ? sizeof("Content-Type: \r\n") - 1 + ctype_len : 0) +
                  sizeof("Content-Length: \r\n") - 1 + cl_len +
                  sizeof("Cache-Control: no-store\r\n") - 1 +
                  (out->close ? sizeof("Connection: close\r\n") - 1 : 0) + extra_len + 2;
    size_t room = tk_outbuf_room(out);
    if (head > room || body_len > room - head) {
        return TK_E_TOOBIG;
    }

    char *p = out->buf + out->len;
    char code[3] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10)};
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put(p, code, 3);
    p = PUT_LIT(p, " ");
    p = put(p, reason, reason_len);
    p = PUT_LIT(p, "\r\n");
    if (ctype) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, ctype, ctype_len);
        p = PUT_LIT(p, "\r\n");
    }
    p = PUT_LIT(p, "Content-Length: ");
    p = put(p, cl, cl_len);
    p = PUT_LIT(p, "\r\nCache-Control: no-store\r\n");
    if (out->close) {
        p = PUT_LIT(p, "Connection: close\r\n");
    }
    p = put(p, extra_headers ? extra_headers : "", extra_len);
    p = PUT_LIT(p, "\r\n");
    TK_ASSERT((size_t)(p - (out->buf + out->len)) == head);
    if (body_len > 0) {
        memcpy(p, body, body_len);
    }
    out->len += head + body_len;
    return 0;
}
