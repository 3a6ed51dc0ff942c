/*
 * The authorization server's decisions that need no request and no socket:
 * which scope a request gets, how refresh and exchange narrow it (never
 * widen), who may receive a delegated token, how a client authenticates at
 * /token (public: client_id only; confidential: its secret), and whether a
 * presented refresh token belongs to the caller. Everything that depends on
 * state that may change between a worker's read and the commit (a code
 * used twice, a refresh token rotated by a parallel request) is decided
 * again by the op in the write txn (src/store/apply_oauth.c).
 */
#include "tokend/core.h"
#include "tokend/crypto.h"

#include <string.h>

/* The next space-separated token of s from *i (advancing past it). */
static bool next_token(tk_slice s, size_t *i, tk_slice *tok)
{
    while (*i < s.len && s.p[*i] == ' ') {
        (*i)++;
    }
    if (*i >= s.len) {
        return false;
    }
    size_t j = *i;
    while (j < s.len && s.p[j] != ' ') {
        j++;
    }
    *tok = (tk_slice){s.p + *i, j - *i};
    *i = j;
    return true;
}

int tk_core_scope_resolve(tk_slice requested, const tk_slice *supported, unsigned n, char *out,
                          size_t cap, size_t *out_len)
{
    size_t len = 0;
    if (requested.len == 0) {
        for (unsigned k = 0; k < n; k++) {
            size_t need = len + (len > 0 ? 1 : 0) + supported[k].len;
            if (need > cap) {
                return TK_E_INVALID;
            }
            if (len > 0) {
                out[len++] = ' ';
            }
            memcpy(out + len, supported[k].p, supported[k].len);
            len += supported[k].len;
        }
        *out_len = len;
        return 0;
    }
    size_t i = 0;
    tk_slice tok;
    while (next_token(requested, &i, &tok)) { /* bounded by requested.len */
        bool ok = false;
        for (unsigned k = 0; k < n && !ok; k++) {
            ok = tk_slice_eq(tok, supported[k]);
        }
        if (!ok) {
            return TK_E_INVALID;
        }
    }
    if (requested.len > cap) {
        return TK_E_INVALID;
    }
    memcpy(out, requested.p, requested.len);
    *out_len = requested.len;
    return 0;
}

int tk_core_scope_mask(tk_slice want, tk_slice have, uint64_t *mask)
{
    if (want.len == 0) {
        *mask = UINT64_MAX;
        return 0;
    }
    uint64_t m = 0;
    size_t i = 0;
    tk_slice w;
    while (next_token(want, &i, &w)) {
        size_t j = 0;
        unsigned idx = 0;
        tk_slice h;
        bool found = false;
        while (!found && next_token(have, &j, &h)) {
            found = tk_slice_eq(w, h);
            idx += found ? 0u : 1u;
        }
        if (!found || idx >= 64) {
            return TK_E_INVALID;
        }
        m |= (uint64_t)1 << idx;
    }
    *mask = m;
    return m != 0 ? 0 : TK_E_INVALID;
}

bool tk_core_may_delegate(tk_slice delegate_to, tk_slice to)
{
    size_t i = 0;
    tk_slice tok;
    while (to.len > 0 && next_token(delegate_to, &i, &tok)) {
        if (tk_slice_eq(tok, TK_SLICE_LIT("*")) || tk_slice_eq(tok, to)) {
            return true;
        }
    }
    return false;
}

size_t tk_core_client_redirects(const tk_client_rec *c, tk_slice *out, size_t max)
{
    size_t n = 0, i = 0;
    tk_slice tok;
    while (n < max && next_token(c->redirect_uris, &i, &tok)) {
        out[n++] = tok;
    }
    return n;
}

int tk_core_as_client(tk_txn *txn, tk_slice client_id, tk_slice secret, bool has_secret,
                      const tk_peer_cert *cert, tk_client_rec *out)
{
    if (has_secret) {
        int rc = tk_core_authenticate(txn, client_id, secret, out);
        if (rc == 0 && (out->flags & TK_CLIENT_F_PUBLIC) != 0) {
            return TK_E_AUTH; /* a public client has no secret to show */
        }
        return rc;
    }
    int rc = TK_E_NOTFOUND;
    if (client_id.len > 0 && client_id.len <= TK_ID_MAX) {
        rc = tk_store_get_client(txn, client_id, out);
    }
    if (rc != 0 && rc != TK_E_NOTFOUND && rc != TK_E_CORRUPT) {
        return TK_E_STORE;
    }
    if (rc == 0 && tk_core_cert_client(out)) {
        return tk_core_authenticate_cert(txn, client_id, cert, out);
    }
    if (rc != 0 || (out->flags & TK_CLIENT_F_PUBLIC) == 0 || out->status != TK_CLIENT_APPROVED) {
        return TK_E_AUTH;
    }
    return 0;
}

int tk_core_refresh_check(tk_txn *txn, const uint8_t hash[TK_HASH_LEN], tk_slice client_id,
                          int64_t now, tk_token_rec *out)
{
    int rc = tk_store_get_token(txn, hash, out);
    if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
        return TK_E_NOTFOUND;
    }
    if (rc != 0) {
        return TK_E_STORE;
    }
    if (out->kind != TK_TOKEN_REFRESH || !tk_slice_eq(out->client_id, client_id) ||
        out->revoked_at != 0 || now >= out->exp || out->grant_id.len == 0) {
        return TK_E_NOTFOUND;
    }
    return 0;
}
