/*
 * The key set: what a loaded set says about its keys (kids, times, which
 * are published), the JWKS it publishes, the RFC 7638 thumbprint that names
 * each key, and the holder through which workers reach the set in use.
 *
 * The one idea: publishing is decided at the moment of asking. A retired key
 * stays in the JWKS while now < max(retired, stopped) + overlap, so it leaves
 * the JWKS on time without a reload, and a key this process kept signing with
 * after tokenctl retired it (before the SIGHUP) is published for a whole
 * overlap after its last signature.
 */
#include "keys_int.h"

#include "tokend/crypto.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- Keys --------------------------------------------------------------------- */

int keys_generate(EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return *out != NULL ? 0 : -EIO;
}

void tk_keys_thumbprint(const uint8_t x[32], const uint8_t y[32], char kid[TK_KID_LEN + 1])
{
    /* RFC 7638 §3.2: the required members in lexicographic order, no
     * whitespace: {"crv":"P-256","kty":"EC","x":"…","y":"…"}. */
    char buf[128];
    size_t n = 0;
    static const char a[] = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"";
    static const char b[] = "\",\"y\":\"";
    memcpy(buf, a, sizeof a - 1);
    n = sizeof a - 1;
    TK_ASSERT(tk_b64url_encode(x, 32, buf + n, sizeof buf - n) == 0);
    n += TK_KID_LEN;
    memcpy(buf + n, b, sizeof b - 1);
    n += sizeof b - 1;
    TK_ASSERT(tk_b64url_encode(y, 32, buf + n, sizeof buf - n) == 0);
    n += TK_KID_LEN;
    memcpy(buf + n, "\"}", 2);
    n += 2;
    uint8_t h[TK_HASH_LEN];
    tk_sha256(buf, n, h);
    TK_ASSERT(tk_b64url_encode(h, sizeof h, kid, TK_KID_LEN + 1) == 0);
}

int keys_fill_public(tk_key *k)
{
    char group[32] = "";
    uint8_t pt[65];
    size_t gl = 0, pl = 0;
    if (!EVP_PKEY_is_a(k->pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &gl) ||
        strcmp(group, "prime256v1") != 0 ||
        !EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &pl) ||
        pl != sizeof pt || pt[0] != 0x04) {
        return TK_E_BADINPUT;
    }
    TK_ASSERT(tk_b64url_encode(pt + 1, 32, k->x, sizeof k->x) == 0);
    TK_ASSERT(tk_b64url_encode(pt + 33, 32, k->y, sizeof k->y) == 0);
    tk_keys_thumbprint(pt + 1, pt + 33, k->info.kid);
    return 0;
}

void tk_keys_free(tk_keyset *ks)
{
    if (ks == NULL) {
        return;
    }
    for (unsigned i = 0; i < TK_SIGNING_KEYS_MAX; i++) {
        EVP_PKEY_free(ks->k[i].pkey); /* OpenSSL clears the private scalar */
    }
    tk_cleanse(ks, sizeof *ks);
    free(ks);
}

/* ---- The set ---------------------------------------------------------------------- */

unsigned tk_keys_count(const tk_keyset *ks)
{
    return ks->n;
}

const tk_key_info *tk_keys_info(const tk_keyset *ks, unsigned i)
{
    TK_ASSERT(i < ks->n);
    return &ks->k[i].info;
}

void tk_keys_carry(tk_keyset *fresh, const tk_keyset *old, int64_t now)
{
    for (unsigned i = 0; i < old->n; i++) {
        const tk_key *o = &old->k[i];
        for (unsigned j = 1; j < fresh->n; j++) { /* k[0] is current: nothing to carry */
            tk_key *f = &fresh->k[j];
            if (memcmp(f->info.kid, o->info.kid, TK_KID_LEN) != 0) {
                continue;
            }
            int64_t stopped = i == 0 ? now : o->stopped;
            f->stopped = stopped > f->stopped ? stopped : f->stopped;
        }
    }
}

bool tk_keys_published(const tk_keyset *ks, unsigned i, int64_t now, int64_t overlap)
{
    TK_ASSERT(i < ks->n);
    const tk_key *k = &ks->k[i];
    if (i == 0) {
        return true;
    }
    int64_t from = k->stopped > k->info.retired ? k->stopped : k->info.retired;
    return now < from + overlap;
}

void tk_keys_jwks(const tk_keyset *ks, int64_t now, int64_t overlap, tk_json *j)
{
    tk_json_obj_begin(j);
    tk_json_key(j, "keys");
    tk_json_arr_begin(j);
    for (unsigned i = 0; i < ks->n; i++) {
        if (!tk_keys_published(ks, i, now, overlap)) {
            continue;
        }
        const tk_key *k = &ks->k[i];
        tk_json_obj_begin(j);
        tk_json_kv_cstr(j, "kty", "EC");
        tk_json_kv_cstr(j, "crv", "P-256");
        tk_json_kv_cstr(j, "x", k->x);
        tk_json_kv_cstr(j, "y", k->y);
        tk_json_kv_cstr(j, "kid", k->info.kid);
        tk_json_kv_cstr(j, "use", "sig");
        tk_json_kv_cstr(j, "alg", "ES256");
        tk_json_obj_end(j);
    }
    tk_json_arr_end(j);
    tk_json_obj_end(j);
}

/* ---- Holder --------------------------------------------------------------------------- */

typedef struct retired_set {
    struct retired_set *next;
    tk_keyset *ks;
} retired_set;

struct tk_keys_holder {
    tk_keyset *cur; /* atomic: release on swap, acquire on get */
    retired_set *retired;
};

int tk_keys_holder_new(tk_keyset *ks, tk_keys_holder **out)
{
    TK_ASSERT(ks != NULL);
    tk_keys_holder *h = calloc(1, sizeof *h);
    if (h == NULL) {
        tk_keys_free(ks);
        return -ENOMEM;
    }
    h->cur = ks;
    *out = h;
    return 0;
}

const tk_keyset *tk_keys_holder_get(const tk_keys_holder *h)
{
    return __atomic_load_n(&h->cur, __ATOMIC_ACQUIRE);
}

int tk_keys_holder_swap(tk_keys_holder *h, tk_keyset *fresh, int64_t now)
{
    retired_set *r = calloc(1, sizeof *r);
    if (r == NULL) {
        tk_keys_free(fresh);
        return -ENOMEM;
    }
    tk_keys_carry(fresh, h->cur, now);
    r->ks = __atomic_exchange_n(&h->cur, fresh, __ATOMIC_ACQ_REL);
    r->next = h->retired;
    h->retired = r;
    return 0;
}

void tk_keys_holder_free(tk_keys_holder *h)
{
    if (h == NULL) {
        return;
    }
    while (h->retired != NULL) { /* bounded by the swaps done */
        retired_set *next = h->retired->next;
        tk_keys_free(h->retired->ks);
        free(h->retired);
        h->retired = next;
    }
    tk_keys_free(h->cur);
    free(h);
}
