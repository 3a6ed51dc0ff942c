/*
 * The browser-session cookie that ties a signed-in browser to one tokend
 * session. The one idea: the name carries the __Host- prefix, so a browser
 * accepts it only from a secure origin, without Domain and with Path=/ —
 * no sibling host can plant or shadow it — and a Cookie header that holds
 * it twice is refused rather than guessed at.
 *
 * Thread-safety: pure and reentrant. Slices point into the caller's input.
 */
#ifndef TOKEND_OAUTH_COOKIE_H
#define TOKEND_OAUTH_COOKIE_H

#include "tokend/common.h"
#include "tokend/limits.h"

/* The cookie's name. Its value is base64url of 32 random bytes
 * (TK_OAUTH_COOKIE_VALUE_LEN characters); only its SHA-256 is stored. */
#define TK_OAUTH_COOKIE_NAME "__Host-tokend-session"

/*
 * Find our cookie's value in a Cookie request header's value (RFC 6265
 * §4.2.1: cookie-pair *( ";" SP cookie-pair )). Strict where it concerns
 * us: the framing ("; " between pairs), our pair's syntax, and its value,
 * which must be exactly TK_OAUTH_COOKIE_VALUE_LEN base64url characters
 * (unquoted). Other cookies — set by other applications on the same host,
 * which a browser sends as it stored them (RFC 6265 §5.4), UTF-8 values and
 * pairs without '=' included — are skipped when malformed, so a foreign
 * cookie cannot lock a user out; a malformed pair that names our cookie,
 * or a NUL byte, still refuses the header. *value_out points into header.
 * Returns 0, TK_E_NOTFOUND (no such cookie), TK_E_DUPLICATE (our cookie
 * appears twice: someone planted one; treat the browser as signed out),
 * TK_E_BADINPUT (the header or our value is malformed) or TK_E_TOOBIG
 * (header longer than TK_OAUTH_COOKIE_HEADER_MAX). On error *value_out is
 * TK_SLICE_NULL.
 */
int tk_oauth_cookie_find(tk_slice header, tk_slice *value_out);

/*
 * Build the Set-Cookie header value that gives the browser our cookie:
 * "__Host-tokend-session=<value>; Path=/; Max-Age=<max_age>; Secure;
 * HttpOnly; SameSite=Lax" (browsers treat http://localhost as secure).
 * value must be TK_OAUTH_COOKIE_VALUE_LEN base64url characters, or empty
 * with max_age 0 to clear the cookie (sign-out). out gets a NUL-terminated
 * string, *len_out its length. Returns 0, TK_E_BADINPUT (value or max_age
 * unusable: max_age < 0, or above 400 days, the most browsers keep,
 * RFC 6265bis §5.5) or TK_E_TOOBIG (cap too small; TK_OAUTH_SET_COOKIE_MAX
 * is always enough).
 */
int tk_oauth_cookie_set(tk_slice value, int64_t max_age, char *out, size_t cap, size_t *len_out);

#endif
