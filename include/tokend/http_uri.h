/*
 * The parts of a request's URI that routing depends on, normalised the way
 * upstream servers route on them: the path (RFC 3986 §5.2.4 dot-segments,
 * percent-decoding) and the host (RFC 3986 §3.2.2 reg-name / IP-literal and
 * port). What servers read differently is refused rather than guessed. Pure
 * and allocation-free, so any route matcher (forward-auth's resources table
 * today) can use them on the hot path; any thread.
 */
#ifndef TOKEND_HTTP_URI_H
#define TOKEND_HTTP_URI_H

#include "tokend/common.h"
#include "tokend/limits.h"

/* What ';' in a path means. */
enum tk_http_params {
    /* Any ';', raw or %3B, is refused: Tomcat, Jetty and Spring drop
     * ";params" from each segment, nginx and Go keep them, so no one reading
     * is right for every upstream. */
    TK_HTTP_PARAMS_REFUSE = 0,
    /* Tomcat's reading: a raw ";…" up to the next '/' is dropped from every
     * segment before decoding; an encoded %3B is still refused (servers
     * disagree on whether it separates). */
    TK_HTTP_PARAMS_STRIP,
};

/* Why a path was refused (for logs and tests); TK_HTTP_PATH_OK otherwise. */
enum tk_http_path_flaw {
    TK_HTTP_PATH_OK = 0,
    TK_HTTP_PATH_NOT_ABSOLUTE,   /* empty, or not starting with '/' */
    TK_HTTP_PATH_FRAGMENT,       /* a '#' anywhere in the target */
    TK_HTTP_PATH_BAD_CHAR,       /* a raw control byte, space or DEL */
    TK_HTTP_PATH_BAD_ESCAPE,     /* '%' not followed by two hex digits */
    TK_HTTP_PATH_BACKSLASH,      /* '\', raw or %5C (a separator on some servers) */
    TK_HTTP_PATH_ENCODED_SLASH,  /* %2F (a separator on some servers) */
    TK_HTTP_PATH_PARAMS,         /* ';' (see enum tk_http_params) */
    TK_HTTP_PATH_CONTROL,        /* decodes to NUL, a C0/C1 control or DEL */
    TK_HTTP_PATH_BAD_UTF8,       /* decodes to invalid or overlong UTF-8 (%C0%AE) */
    TK_HTTP_PATH_DOUBLE_ENCODED, /* decodes to another escape (%252e → %2e) */
    TK_HTTP_PATH_ABOVE_ROOT,     /* ".." above the root */
    TK_HTTP_PATH_WINDOWS_ALIAS,  /* a segment Windows reads as another (tk_http_path_windows_alias)
                                  */
};

/*
 * Normalise the path of a request target (origin-form, as a proxy forwards
 * it) the way the upstream routes on it: cut at '?', strip ';' parameters
 * when params says so, percent-decode once, merge repeated '/', resolve "."
 * and ".." segments (also when encoded: %2e%2e). Refused (TK_E_BADINPUT, the
 * reason in *flaw_out when not NULL): every enum tk_http_path_flaw. So an
 * accepted path starts with '/', holds no empty, "." or ".." segment, no
 * ';', '\', control byte or '%' that starts an escape, and is valid UTF-8.
 * Returns 0 with out[0..*len_out), TK_E_BADINPUT, or TK_E_TOOBIG (cap too
 * small; cap >= raw.len always fits). Pure, no allocation.
 */
int tk_http_path_normalize(tk_slice raw, enum tk_http_params params, char *out, size_t cap,
                           size_t *len_out, enum tk_http_path_flaw *flaw_out);

/*
 * True when a normalised path (tk_http_path_normalize's output) holds a
 * segment that Windows file systems, and so IIS, read as another name: one
 * ending in '.' or ' ' ("admin." and "admin " are "admin"; "..." too),
 * naming an NTFS stream ("admin::$DATA", "admin:$I30:$INDEX_ALLOCATION": any
 * ":$"), or one that can be an 8.3 short name, which NTFS generates for a
 * longer name and resolves to it ("ADMINI~1" may be "administrator"): a
 * base of at most 8 characters ending in '~' and digits, with at most a
 * 3-character extension, in any case ("admini~1.htm"). Forward-auth refuses
 * such a path unless the resources file says the upstream is not Windows.
 * Pure, no allocation.
 */
bool tk_http_path_windows_alias(tk_slice path);

/* A static name for a flaw ("encoded_slash", …), for logs. */
const char *tk_http_path_flaw_name(enum tk_http_path_flaw f);

/* The port a host without one is compared as: resource identifiers are https. */
#define TK_HTTP_DEFAULT_PORT 443

/* A normalised host: name in lower case without a trailing dot (a reg-name),
 * or "[v6]" in RFC 5952 form; port 0 when none was given. */
typedef struct tk_http_host {
    tk_slice name;
    uint16_t port;
} tk_http_host;

/*
 * Normalise a host[:port] (Host, X-Forwarded-Host, an authority): a reg-name
 * of letters, digits, '-', '_' and '.' (lower-cased; one trailing dot
 * dropped; labels 1..63 bytes; at most TK_HTTP_HOST_MAX bytes), or an IPv6
 * literal "[…]" (canonical form); then an optional ":port" (decimal, 1 to
 * 65535, leading zeros dropped; an empty port is no port). Refused with
 * TK_E_BADINPUT: a %-escape, any other byte (',', '@', '\', space,
 * non-ASCII…), an empty label, an overlong name or label, IPvFuture or a
 * zone id, a bad port. The name is written to buf, which must hold
 * TK_HTTP_HOST_MAX + 1 bytes; out->name points into it. Pure, no allocation.
 */
int tk_http_host_normalize(tk_slice raw, char *buf, size_t cap, tk_http_host *out);

/* Name and port equal, a missing port counting as TK_HTTP_DEFAULT_PORT. */
bool tk_http_host_eq(const tk_http_host *a, const tk_http_host *b);

#endif
