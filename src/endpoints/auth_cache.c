/*
 * Caller authentication cached per connection. An edge proxy sends the same
 * Authorization: Basic header on every request of a keep-alive connection;
 * decoding it (base64, form-unescaping) and hashing the secret cost about a
 * third of an introspection's user time. So after a successful Basic
 * authentication the worker remembers, for that connection, the exact header
 * bytes, the client id and the secret hash they were verified against.
 *
 * Why a hit can never authenticate anything the full path would refuse:
 *   - the entry belongs to one connection: the server's cookie (slot in the
 *     low 32 bits, the slot's generation above) must match, so another
 *     connection, or a later one in the same slot, does not see it;
 *   - the header must be byte-for-byte the one that was verified (compared
 *     in constant time, a word at a time), so the id and the secret are the
 *     same;
 *   - every request still reads the client record: it must exist, be
 *     approved, and its secret hash must still equal the verified one, so a
 *     disabled client or a changed secret falls back to the full path (and
 *     fails there, with its log line);
 *   - only successes are cached; requests that also carry form credentials
 *     never hit (the full path answers them 400).
 * The cached header holds a secret: it is cleansed when replaced or dropped,
 * when its connection closes (the server's closed hook) and when the worker
 * stops, and it is never logged.
 */
#include "endpoints_int.h"

#include "tokend/core.h"

#include "tokend/crypto.h"

#include <string.h>

/* Constant-time equality, eight bytes at a time: no branch depends on the
 * contents. CRYPTO_memcmp walks byte by byte, which made this compare a
 * twentieth of an introspection's instructions. */
static bool same_bytes(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        acc |= u ^ v;
    }
    for (; i < n; i++) {
        acc |= (uint64_t)(x[i] ^ y[i]);
    }
    return acc == 0;
}

static ep_auth_entry *entry_of(ep_worker *w, uint64_t cookie)
{
    return &w->auth_cache[(uint32_t)cookie % TK_AUTH_CACHE_SLOTS];
}

static void drop(ep_auth_entry *e)
{
    tk_cleanse(e, sizeof *e);
    e->used = false;
}

/* "Basic" + one SP, case-insensitive: the scheme tk_http_basic_auth took. */
static bool is_basic(tk_slice v)
{
    return v.len > 6 && tk_slice_eq_nocase((tk_slice){v.p, 6}, "basic ");
}

bool ep_auth_cache_get(ep_req *r, const ep_form *f, tk_txn *txn, tk_client_rec *client,
                       tk_slice *client_id)
{
    ep_worker *w = r->w;
    ep_auth_entry *e = entry_of(w, r->cookie);
    tk_slice authz = r->http->authorization;
    if (!e->used || e->cookie != r->cookie || f->id_present || f->secret_present ||
        authz.len != e->hdr_len || !same_bytes(authz.p, e->hdr, authz.len)) {
        return false;
    }
    TK_ASSERT(e->id_len > 0 && e->id_len <= TK_AUTH_CACHE_ID_MAX);
    tk_slice id = {e->id, e->id_len};
    int rc = tk_store_get_client(txn, id, client);
    if (rc != 0 || client->status != TK_CLIENT_APPROVED || tk_core_cert_client(client) ||
        !same_bytes(client->secret_hash, e->secret_hash, TK_HASH_LEN)) {
        drop(e); /* the full path decides, and logs */
        return false;
    }
    memcpy(w->client_id, e->id, e->id_len);
    w->client_id[e->id_len] = '\0';
    *client_id = (tk_slice){w->client_id, e->id_len};
    return true;
}

void ep_auth_cache_put(ep_req *r, const tk_client_rec *client, tk_slice client_id)
{
    ep_auth_entry *e = entry_of(r->w, r->cookie);
    tk_slice authz = r->http->authorization;
    if (e->used) {
        drop(e);
    }
    if (!is_basic(authz) || authz.len > TK_AUTH_CACHE_HDR_MAX || client_id.len == 0 ||
        client_id.len > TK_AUTH_CACHE_ID_MAX) {
        return;
    }
    e->cookie = r->cookie;
    memcpy(e->secret_hash, client->secret_hash, TK_HASH_LEN);
    memcpy(e->hdr, authz.p, authz.len);
    e->hdr_len = (uint16_t)authz.len;
    memcpy(e->id, client_id.p, client_id.len);
    e->id_len = (uint8_t)client_id.len;
    e->used = true;
}

void ep_auth_cache_forget(ep_req *r)
{
    ep_auth_cache_closed(r->w, r->cookie);
}

void ep_auth_cache_closed(ep_worker *w, uint64_t cookie)
{
    ep_auth_entry *e = entry_of(w, cookie);
    if (e->used && e->cookie == cookie) {
        drop(e);
    }
}

void ep_auth_cache_clear(ep_worker *w)
{
    tk_cleanse(w->auth_cache, sizeof w->auth_cache);
}
