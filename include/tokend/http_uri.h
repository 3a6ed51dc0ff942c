/*
 * The parts of a request's URI that routing depends on, normalised the way
 * proxies and upstream servers route on them: the path (RFC 3986 §5.2.4
 * dot-segments, percent-decoding). Pure and allocation-free, so any route
 * matcher (forward-auth's resources table today) can use them on the hot path.
 */
#ifndef TOKEND_HTTP_URI_H
#define TOKEND_HTTP_URI_H

#include "tokend/common.h"

/*
 * Normalise the path of a request target the way proxies route on it:
 * cut at '?' or '#', percent-decode, merge repeated '/', resolve "." and
 * ".." segments. Returns 0 with out[0..*len), TK_E_BADINPUT (not starting
 * with '/', a bad %-escape, a decoded control character or NUL, ".." above
 * the root) or TK_E_TOOBIG (cap too small; cap >= raw length always fits).
 * Pure; no allocation.
 */
int tk_http_path_normalize(tk_slice raw, char *out, size_t cap, size_t *len);

#endif
