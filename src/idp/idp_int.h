/*
 * Private to src/idp: what the trust file loader (trust.c) calls in the key
 * loader (keys.c). The calls go one way only, trust.c → keys.c; both read
 * their JSON through the shared strict loader (jcfg.h), whose context names
 * the issuer being loaded in every message.
 */
#ifndef TOKEND_IDP_INT_H
#define TOKEND_IDP_INT_H

#include "tokend/idp.h"
#include "tokend/jcfg.h"

/* Add the usable keys of a JWKS object / one {"pem_file", "kid", "alg"}
 * entry to is, each pinned to its algorithms within issuer_algs (0 = the key
 * type's default). 0 or an error code with a message written through c. */
int tk_idp_add_jwks(tk_jcfg *c, tk_idp_issuer *is, json_t *jwks, unsigned issuer_algs);
int tk_idp_add_pem(tk_jcfg *c, tk_idp_issuer *is, json_t *spec, unsigned issuer_algs);

/* An empty snapshot (no issuer, one reference) with room for TK_IDP_MAX
 * issuers, freed by tk_idp_unref like a loaded one: the key refresher
 * (jwks.c) builds its merged snapshots in it. NULL when out of memory. */
tk_idp_trust *tk_idp_trust_alloc(void);

#endif
