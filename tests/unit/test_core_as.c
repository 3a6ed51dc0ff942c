/*
 * The authorization server's pure decisions (src/core/as.c): scope
 * resolution against a resource's scopes_supported, narrowing masks that
 * never widen, the delegation permission, redirect URI lists, and that a
 * public client cannot authenticate with a secret nor a confidential one
 * without it.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tokend/core.h"
#include "tokend/crypto.h"

static void test_scope_resolve(void)
{
    const tk_slice sup[2] = {TK_SLICE_LIT("mcp:read"), TK_SLICE_LIT("mcp:write")};
    char out[64];
    size_t n = 0;
    CHECK(tk_core_scope_resolve(TK_SLICE_NULL, sup, 2, out, sizeof out, &n) == 0);
    CHECK(n == 18 && memcmp(out, "mcp:read mcp:write", n) == 0);
    CHECK(tk_core_scope_resolve(TK_SLICE_LIT("mcp:write"), sup, 2, out, sizeof out, &n) == 0);
    CHECK(n == 9 && memcmp(out, "mcp:write", n) == 0);
    CHECK(tk_core_scope_resolve(TK_SLICE_LIT("mcp:read admin"), sup, 2, out, sizeof out, &n) ==
          TK_E_INVALID);
    CHECK(tk_core_scope_resolve(TK_SLICE_LIT("mcp:rea"), sup, 2, out, sizeof out, &n) ==
          TK_E_INVALID);
    CHECK(tk_core_scope_resolve(TK_SLICE_NULL, sup, 2, out, 10, &n) == TK_E_INVALID);
}

static void test_scope_mask(void)
{
    uint64_t m = 0;
    CHECK(tk_core_scope_mask(TK_SLICE_NULL, TK_SLICE_LIT("a b c"), &m) == 0 && m == UINT64_MAX);
    CHECK(tk_core_scope_mask(TK_SLICE_LIT("c a"), TK_SLICE_LIT("a b c"), &m) == 0 && m == 5u);
    CHECK(tk_core_scope_mask(TK_SLICE_LIT("d"), TK_SLICE_LIT("a b c"), &m) == TK_E_INVALID);
    CHECK(tk_core_scope_mask(TK_SLICE_LIT("a"), TK_SLICE_NULL, &m) == TK_E_INVALID);
    CHECK(tk_core_scope_mask(TK_SLICE_LIT("ab"), TK_SLICE_LIT("a b"), &m) == TK_E_INVALID);
}

/* Several organisations: a partner issuer's limits, whole-name matching,
 * and absent limits restricting nothing. */
static void test_org_check(void)
{
    const tk_slice home = TK_SLICE_LIT("https://home.example/mcp"),
                   shared = TK_SLICE_LIT("https://shared.example/mcp");
    tk_core_org partner = {.limit_resources = true,
                           .limit_scopes = true,
                           .resources = TK_SLICE_LIT("https://shared.example/mcp https://x/y"),
                           .scopes = TK_SLICE_LIT("mcp:read tickets:read")};
    CHECK_EQ_INT(tk_core_org_check(NULL, home, TK_SLICE_LIT("mcp:write")), TK_ORG_OK);
    tk_core_org none = {0};
    CHECK_EQ_INT(tk_core_org_check(&none, home, TK_SLICE_LIT("mcp:write")), TK_ORG_OK);
    CHECK_EQ_INT(tk_core_org_check(&partner, shared, TK_SLICE_LIT("mcp:read")), TK_ORG_OK);
    CHECK_EQ_INT(tk_core_org_check(&partner, shared, TK_SLICE_NULL), TK_ORG_OK);
    CHECK_EQ_INT(tk_core_org_check(&partner, TK_SLICE_LIT("https://x/y"),
                                   TK_SLICE_LIT("tickets:read mcp:read")),
                 TK_ORG_OK);
    CHECK_EQ_INT(tk_core_org_check(&partner, home, TK_SLICE_LIT("mcp:read")), TK_ORG_RESOURCE);
    CHECK_EQ_INT(tk_core_org_check(&partner, TK_SLICE_LIT("https://shared.example"),
                                   TK_SLICE_LIT("mcp:read")),
                 TK_ORG_RESOURCE); /* a prefix is another resource */
    CHECK_EQ_INT(tk_core_org_check(&partner, TK_SLICE_LIT("https://shared.example/mcp/x"),
                                   TK_SLICE_LIT("mcp:read")),
                 TK_ORG_RESOURCE);
    CHECK_EQ_INT(tk_core_org_check(&partner, TK_SLICE_NULL, TK_SLICE_NULL), TK_ORG_RESOURCE);
    CHECK_EQ_INT(tk_core_org_check(&partner, shared, TK_SLICE_LIT("mcp:read mcp:write")),
                 TK_ORG_SCOPE);
    CHECK_EQ_INT(tk_core_org_check(&partner, shared, TK_SLICE_LIT("mcp")), TK_ORG_SCOPE);
    /* Empty lists: nothing may be granted (but an empty scope is no scope). */
    tk_core_org nothing = {.limit_resources = true, .limit_scopes = true};
    CHECK_EQ_INT(tk_core_org_check(&nothing, shared, TK_SLICE_NULL), TK_ORG_RESOURCE);
    nothing.limit_resources = false;
    CHECK_EQ_INT(tk_core_org_check(&nothing, shared, TK_SLICE_LIT("mcp:read")), TK_ORG_SCOPE);
    CHECK_EQ_INT(tk_core_org_check(&nothing, shared, TK_SLICE_NULL), TK_ORG_OK);
    /* Only scopes limited: every resource. */
    tk_core_org scopes_only = {.limit_scopes = true, .scopes = TK_SLICE_LIT("mcp:read")};
    CHECK_EQ_INT(tk_core_org_check(&scopes_only, home, TK_SLICE_LIT("mcp:read")), TK_ORG_OK);
}

static void test_delegate(void)
{
    CHECK(tk_core_may_delegate(TK_SLICE_LIT("*"), TK_SLICE_LIT("tkc_x")));
    CHECK(tk_core_may_delegate(TK_SLICE_LIT("tkc_a tkc_x"), TK_SLICE_LIT("tkc_x")));
    CHECK(!tk_core_may_delegate(TK_SLICE_LIT("tkc_a tkc_xy"), TK_SLICE_LIT("tkc_x")));
    CHECK(!tk_core_may_delegate(TK_SLICE_NULL, TK_SLICE_LIT("tkc_x")));
    CHECK(!tk_core_may_delegate(TK_SLICE_LIT("*"), TK_SLICE_NULL));
}

static void test_redirects(void)
{
    tk_client_rec c = {.redirect_uris = TK_SLICE_LIT("https://a/cb http://127.0.0.1/cb")};
    tk_slice r[4];
    CHECK(tk_core_client_redirects(&c, r, 4) == 2);
    CHECK(tk_slice_eq(r[1], TK_SLICE_LIT("http://127.0.0.1/cb")));
    CHECK(tk_core_client_redirects(&c, r, 1) == 1);
}

static void test_client_auth(void)
{
    char dir[64];
    strcpy(dir, "/tmp/tk_coreas_XXXXXX");
    TK_ASSERT(mkdtemp(dir) != NULL);
    tk_store_opts o = {.dir = dir, .map_size = 16 << 20};
    tk_store *st;
    TK_ASSERT(tk_store_open(&o, &st) == 0);
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(st, &w) == 0);
    tk_client_rec conf = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_APPROVED, .created = 1};
    tk_sha256("s3cret", 6, conf.secret_hash);
    tk_client_rec pub = conf;
    pub.flags = TK_CLIENT_F_PUBLIC;
    tk_client_rec pend = pub;
    pend.status = TK_CLIENT_PENDING;
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("conf"), &conf, 0) == 0);
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("pub"), &pub, 0) == 0);
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("pend"), &pend, 0) == 0);
    /* RFC 8705 clients: by subject (tls_client_auth), by thumbprint
     * (self_signed_tls_client_auth), and a pending one */
    tk_client_rec bysub = conf;
    bysub.tls_subject = TK_SLICE_LIT("CN=rs,O=example");
    tk_client_rec bythumb = conf;
    bythumb.has_tls_thumbprint = true;
    memset(bythumb.tls_thumbprint, 0xab, TK_HASH_LEN);
    tk_client_rec thumbpend = bythumb;
    thumbpend.status = TK_CLIENT_PENDING;
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("bysub"), &bysub, 0) == 0);
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("bythumb"), &bythumb, 0) == 0);
    TK_ASSERT(tk_store_put_client(w, TK_SLICE_LIT("thumbpend"), &thumbpend, 0) == 0);
    tk_token_rec t = {.kind = TK_TOKEN_REFRESH,
                      .client_id = TK_SLICE_LIT("pub"),
                      .grant_id = TK_SLICE_LIT("tkg_1"),
                      .iat = 1,
                      .exp = 100};
    uint8_t hr[TK_HASH_LEN];
    memset(hr, 7, sizeof hr);
    TK_ASSERT(tk_store_put_token(w, hr, &t, 0) == 0);
    TK_ASSERT(tk_store_commit(w) == 0);
    tk_txn *r;
    TK_ASSERT(tk_store_read_begin(st, &r) == 0);
    tk_client_rec out;
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("conf"), TK_SLICE_LIT("s3cret"), true, NULL, &out) ==
          0);
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("conf"), TK_SLICE_LIT("wrong"), true, NULL, &out) ==
          TK_E_AUTH);
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("conf"), TK_SLICE_NULL, false, NULL, &out) ==
          TK_E_AUTH);
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("pub"), TK_SLICE_NULL, false, NULL, &out) == 0);
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("pub"), TK_SLICE_LIT("s3cret"), true, NULL, &out) ==
          TK_E_AUTH);
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("pend"), TK_SLICE_NULL, false, NULL, &out) ==
          TK_E_AUTH);
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("nobody"), TK_SLICE_NULL, false, NULL, &out) ==
          TK_E_AUTH);
    /* certificate clients: the right certificate and nothing else */
    tk_peer_cert good = {.verified = true, .subject_len = 15};
    memcpy(good.subject, "CN=rs,O=example", 16);
    memset(good.sha256, 0xab, TK_HASH_LEN);
    tk_peer_cert unverified = good, other_sub = good, other_hash = good;
    unverified.verified = false;
    other_sub.subject[3] = 'x';
    other_hash.sha256[31] = 0xac;
    tk_slice bs = TK_SLICE_LIT("bysub"), bt = TK_SLICE_LIT("bythumb");
    CHECK(tk_core_authenticate_cert(r, bs, &good, &out) == 0);
    CHECK(tk_core_authenticate_cert(r, bs, &other_hash, &out) ==
          0); /* the subject is what counts */
    CHECK(tk_core_authenticate_cert(r, bs, &unverified, &out) == TK_E_AUTH);
    CHECK(tk_core_authenticate_cert(r, bs, &other_sub, &out) == TK_E_AUTH);
    CHECK(tk_core_authenticate_cert(r, bs, NULL, &out) == TK_E_AUTH);
    CHECK(tk_core_authenticate_cert(r, bt, &unverified, &out) == 0); /* self-signed: hash only */
    CHECK(tk_core_authenticate_cert(r, bt, &other_hash, &out) == TK_E_AUTH);
    CHECK(tk_core_authenticate_cert(r, bt, NULL, &out) == TK_E_AUTH);
    CHECK(tk_core_authenticate_cert(r, TK_SLICE_LIT("thumbpend"), &good, &out) == TK_E_AUTH);
    CHECK(tk_core_authenticate_cert(r, TK_SLICE_LIT("conf"), &good, &out) == TK_E_AUTH);
    CHECK(tk_core_authenticate_cert(r, TK_SLICE_LIT("nobody"), &good, &out) == TK_E_AUTH);
    /* a certificate client never authenticates with its secret, and at
     * /token without a secret it needs its certificate */
    CHECK(tk_core_authenticate(r, bt, TK_SLICE_LIT("s3cret"), &out) == TK_E_AUTH);
    CHECK(tk_core_as_client(r, bt, TK_SLICE_LIT("s3cret"), true, &good, &out) == TK_E_AUTH);
    CHECK(tk_core_as_client(r, bt, TK_SLICE_NULL, false, &good, &out) == 0);
    CHECK(tk_core_as_client(r, bt, TK_SLICE_NULL, false, &other_hash, &out) == TK_E_AUTH);
    CHECK(tk_core_as_client(r, bt, TK_SLICE_NULL, false, NULL, &out) == TK_E_AUTH);
    CHECK(tk_core_as_client(r, TK_SLICE_LIT("pub"), TK_SLICE_NULL, false, &good, &out) == 0);
    tk_token_rec got;
    CHECK(tk_core_refresh_check(r, hr, TK_SLICE_LIT("pub"), 50, &got) == 0);
    CHECK(tk_core_refresh_check(r, hr, TK_SLICE_LIT("conf"), 50, &got) == TK_E_NOTFOUND);
    CHECK(tk_core_refresh_check(r, hr, TK_SLICE_LIT("pub"), 100, &got) == TK_E_NOTFOUND);
    tk_store_txn_end(r);
    tk_store_close(st);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

int main(void)
{
    RUN(test_scope_resolve);
    RUN(test_scope_mask);
    RUN(test_org_check);
    RUN(test_delegate);
    RUN(test_redirects);
    RUN(test_client_auth);
    return check_report();
}
