/*
 * HTTP/1.1 request parsing and response writing. Knows nothing of OAuth or
 * LMDB. The parser is pure and allocation-free: a buffer goes in, slices into
 * that buffer come out; it never reads past len and never writes.
 */
#ifndef TOKEND_HTTP_H
#define TOKEND_HTTP_H

#include "tokend/cert.h"
#include "tokend/common.h"
#include "tokend/limits.h"

typedef struct tk_http_header {
    tk_slice name;
    tk_slice value; /* leading/trailing whitespace (SP, HTAB) removed */
} tk_http_header;

enum tk_http_method {
    TK_HTTP_OTHER = 0,
    TK_HTTP_GET,
    TK_HTTP_HEAD,
    TK_HTTP_POST,
    TK_HTTP_PUT,
    TK_HTTP_DELETE,
    TK_HTTP_OPTIONS,
    TK_HTTP_PATCH,
};

typedef struct tk_http_request {
    enum tk_http_method method;
    tk_slice method_str;
    tk_slice target; /* request-target as sent (origin-form expected) */
    tk_slice path;   /* target up to '?' */
    tk_slice query;  /* after '?', empty if none */
    int minor;       /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive; /* HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive */
    size_t nheaders;
    tk_http_header headers[TK_HTTP_HEADERS_MAX];
    /* Well-known headers, found while parsing (empty slice when absent). */
    tk_slice authorization;
    tk_slice content_type;
    tk_slice host;
    size_t content_length; /* 0 when absent */
    tk_slice body;         /* content_length bytes following the head */
    /* Not set by the parser: the server fills in the client's address
     * (IPv6, or IPv4-mapped ::ffff:a.b.c.d; all zeros when unknown) before
     * the request reaches the application. */
    uint8_t peer[16];
    /* Not set by the parser either: the label of the server listener the
     * connection was accepted on (tk_server_cfg: 0 for host/port, extra[i].label
     * for the others; several listeners may share a label). */
    uint8_t listener;
    /* Not set by the parser: the certificate the client presented on a TLS
     * listener (RFC 8705), owned by the connection and valid while the
     * request is handled; NULL on plain connections and when none was
     * presented. */
    const tk_peer_cert *cert;
} tk_http_request;

/*
 * Parse one request from buf[0..len).
 * Returns:
 *   > 0  the request is complete; the value is the bytes it used (head + body),
 *        so a pipelined next request starts at buf + ret;
 *   0    incomplete: read more and call again with the longer buffer (the
 *        parser restarts from the beginning; requests are small);
 *   < 0  the request is bad: -status, one of -400 (malformed, CL+TE both
 *        present, conflicting or invalid Content-Length, obs-fold, bare CR,
 *        whitespace before ':'), -413 (body over max_body), -414 (request
 *        line over TK_HTTP_LINE_MAX), -431 (head over TK_HTTP_HEAD_MAX or
 *        more than TK_HTTP_HEADERS_MAX fields), -501 (Transfer-Encoding of
 *        any kind: not supported), -505 (not HTTP/1.0 or 1.1).
 *        The caller answers with that status and closes the connection.
 * A bad request is reported as soon as it can be known, even when more bytes
 * would follow (e.g. an oversized head is -431 without waiting for the end).
 * Slices in *req point into buf and are valid while buf is; *req is only
 * meaningful when the result is > 0, with one exception: when the head is
 * complete and only body bytes are missing, 0 is returned with
 * req->content_length set and req->body.p at the first body byte (len 0), so
 * the caller knows the request needs (body.p - buf) + content_length bytes.
 *
 * Strictness choices, beyond the list above (all -400 unless noted):
 *   - the verdict of a prefix is 0 or the verdict of the whole input: the
 *     first problem met in one forward scan wins (so a Content-Length over
 *     max_body is -413 even if a later line is malformed);
 *   - no empty lines before the request line (RFC 9112 §2.2 "SHOULD ignore"
 *     is not followed: requests start exactly at buf);
 *   - request-target: "/" followed by RFC 3986 pchar, '/', '?' only; '%'
 *     must start a valid %XX; "*" only with OPTIONS; no absolute-form;
 *   - any repeated Content-Length, even with an identical value; a
 *     Content-Length that is not 1*DIGIT or does not fit size_t;
 *   - a repeated Host, Authorization or Content-Type (singleton fields whose
 *     duplicates are ambiguous); a Host with bytes outside RFC 3986 authority;
 *   - field values may hold SP, HTAB, VCHAR and obs-text (0x80-0xFF) only.
 * max_body above TK_HTTP_BODY_MAX is treated as TK_HTTP_BODY_MAX. A request
 * without Content-Length has an empty body (RFC 9112 §6.3).
 * Thread-safety: pure; any thread.
 */
int tk_http_parse(const char *buf, size_t len, size_t max_body, tk_http_request *req);

/* Find a header by case-insensitive name; the first occurrence. Returns the
 * value, or an empty slice with p == NULL when absent. */
tk_slice tk_http_header_get(const tk_http_request *req, const char *name);

/* Longest base64 credential string of a Basic header we decode (id and
 * secret, form-encoded, then base64): far above our ids and secrets. */
#define TK_HTTP_CREDENTIALS_MAX 1024

/*
 * HTTP Basic credentials (RFC 7617) with RFC 6749 §2.3.1 form-decoding of the
 * id and secret. value is the Authorization header value.
 * Returns 0 (id and secret NUL-terminated in the caller's buffers),
 * TK_E_NOTFOUND (not a Basic header), TK_E_BADINPUT (bad base64, no ':',
 * empty id, bad escapes, a control character before or after decoding, not
 * exactly one SP after "Basic") or TK_E_TOOBIG (a part exceeds its buffer,
 * or the base64 exceeds TK_HTTP_CREDENTIALS_MAX). The split is at the first
 * ':' of the decoded credentials, before form-decoding, so a ':' inside an
 * id or secret arrives as %3A. On TK_E_NOTFOUND id and secret are left
 * untouched (they may hold credentials from the form); on the other
 * failures they are cleansed and empty. id_cap and secret_cap must be > 0.
 */
int tk_http_basic_auth(tk_slice value, char *id, size_t id_cap, char *secret, size_t secret_cap);

/* Bearer token from an Authorization value ("Bearer <b64token>", scheme
 * case-insensitive, exactly one SP). Returns 0, TK_E_NOTFOUND or
 * TK_E_BADINPUT; *token points into value. */
int tk_http_bearer(tk_slice value, tk_slice *token);
/* The same for the DPoP scheme (RFC 9449 §7.1: "DPoP <token>"). */
int tk_http_dpop(tk_slice value, tk_slice *token);

/* ---- Responses ----------------------------------------------------------- */

/* Output buffer of one connection. The server owns it; handlers append. */
typedef struct tk_outbuf {
    char *buf;
    size_t cap;
    size_t len;
    bool close; /* set by the server before a handler runs: the response must
                   carry "Connection: close" and the connection ends after it */
} tk_outbuf;

/* Reason phrase for a status code ("OK", "Bad Request", …; "Unknown"). */
const char *tk_http_reason(int status);

/*
 * Append one complete response: status line, Date-less fixed headers
 * ("Content-Type" if ctype, "Content-Length", "Cache-Control: no-store",
 * "Connection: close" when out->close), extra_headers verbatim (each line
 * ending in "\r\n"; NULL for none), then body.
 * Returns 0, or TK_E_TOOBIG when out has no room (out is left unchanged).
 */
int tk_http_respond(tk_outbuf *out, int status, const char *ctype, const char *extra_headers,
                    const char *body, size_t body_len);

/* Room left in out. */
static inline size_t tk_outbuf_room(const tk_outbuf *out)
{
    return out->cap - out->len;
}

#endif
