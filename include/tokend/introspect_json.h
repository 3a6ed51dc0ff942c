/*
 * The JSON view of an introspection answer (RFC 7662 §2.2), written by the
 * core so that both POST /introspect and `tokenctl token show` render the
 * same bytes without tokenctl linking the endpoints. Pure functions of their
 * arguments; thread-safe.
 */
#ifndef TOKEND_INTROSPECT_JSON_H
#define TOKEND_INTROSPECT_JSON_H

#include "tokend/common.h"
#include "tokend/core.h"
#include "tokend/json.h"

/*
 * Render an RFC 7662 introspection answer into j: exactly {"active":false}
 * when inactive; otherwise active, scope, client_id, sub, sid, idp_iss (the
 * IdP issuer the session is bound to, when it has one), token_type
 * ("Bearer" for access tokens, "refresh_token" for refresh tokens), exp, iat,
 * nbf, iss (when issuer is non-empty), aud (when set), and for delegated
 * tokens act (RFC 8693 §4.1: {"sub":current actor,"act":{"sub":prior,…}}).
 * Shared by POST /introspect and `tokenctl token show`.
 */
void tk_introspect_json(const tk_introspection *r, tk_slice issuer, tk_json *j);

/*
 * The same answer, written with straight copies when no string in it needs
 * escaping (the common case: our ids, scopes and URLs). Returns its length
 * (at most cap - 1 bytes, byte for byte what tk_introspect_json writes), or 0
 * when a string needs escaping or the answer does not fit: then use
 * tk_introspect_json.
 */
size_t tk_introspect_json_fast(const tk_introspection *r, tk_slice issuer, char *buf, size_t cap);

#endif
