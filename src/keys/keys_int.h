/*
 * Private to src/keys: the key set's layout, shared by the folder code
 * (store.c: manifest, PEM files, lock, create, rotate), the set itself
 * (keys.c: info, publishing, JWKS, holder) and the signer (sign.c).
 */
#ifndef TOKEND_KEYS_INT_H
#define TOKEND_KEYS_INT_H

#include "tokend/keys.h"

struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

typedef struct tk_key {
    tk_key_info info;
    struct evp_pkey_st *pkey; /* the private key: signs (current key only) */
    char x[TK_KID_LEN + 1];   /* base64url public coordinates, for the JWKS */
    char y[TK_KID_LEN + 1];
    int64_t stopped; /* when this process last signed with it; 0 never */
} tk_key;

struct tk_keyset {
    unsigned n; /* 1..TK_SIGNING_KEYS_MAX; k[0] is the current key */
    tk_key k[TK_SIGNING_KEYS_MAX];
};

/* The public coordinates of a P-256 key into k->x, k->y and its kid into
 * k->info.kid. 0 or TK_E_BADINPUT (not an EC P-256 key). */
int keys_fill_public(tk_key *k);

/* A new P-256 key pair. 0 or -EIO. */
int keys_generate(struct evp_pkey_st **out);

/* Format "path: problem" into err; returns code. */
__attribute__((format(printf, 4, 5))) int keys_fail(char *err, size_t errcap, int code,
                                                    const char *fmt, ...);

#endif
