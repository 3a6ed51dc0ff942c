/*
 * Private to the IdP trust loader (idp_trust.c, idp_keys.c): the loader's
 * state and the helpers both files use. Every helper returns 0 or an error
 * code after writing a message (naming the issuer being loaded) to l->err.
 */
#ifndef TOKEND_IDP_INT_H
#define TOKEND_IDP_INT_H

#include "tokend/idp.h"

#include <jansson.h>
#include <limits.h>

typedef struct loader {
    char *err;
    size_t errcap;
    char dir[PATH_MAX]; /* the config file's folder */
    const char *where;  /* issuer being loaded, for messages */
} loader;

__attribute__((format(printf, 3, 4))) int tk_idp_fail(loader *l, int code, const char *fmt, ...);
/* A printable string member of 1..max bytes; *out NULL when absent and not required. */
int tk_idp_get_str(loader *l, json_t *obj, const char *name, size_t max, bool required,
                   const char **out, size_t *len);
/* Every member of obj is one of names (NULL-terminated); what names obj. */
int tk_idp_only_members(loader *l, json_t *obj, const char *const *names, const char *what);
/* A file name relative to the config file's folder. */
int tk_idp_resolve(loader *l, const char *name, char *out, size_t cap);
/* A JSON object from a file of at most TK_IDP_FILE_MAX bytes (duplicates refused). */
int tk_idp_load_json(loader *l, const char *path, json_t **out);

/* idp_keys.c: add the usable keys of a JWKS object / one {"pem_file", "kid",
 * "alg"} entry to is, each pinned to its algorithms within issuer_algs (0 =
 * the key type's default). */
int tk_idp_add_jwks(loader *l, tk_idp_issuer *is, json_t *jwks, unsigned issuer_algs);
int tk_idp_add_pem(loader *l, tk_idp_issuer *is, json_t *spec, unsigned issuer_algs);

#endif
