/*
 * IdP trust file tests: keys made here with OpenSSL and written as JWKS
 * members (n/e, crv/x/y) and PEM files load and verify only what they
 * should; every refusal the loader promises (HMAC or none in algorithms,
 * private JWK members, short RSA keys, duplicate kids, unknown members, bad
 * webhook secrets, duplicate issuers) keeps the whole file out; kid
 * selection is exact; the holder swaps snapshots by generation.
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tokend/crypto.h"
#include "tokend/idp.h"

static char dir[64], path[128];

static void b64_param(EVP_PKEY *k, const char *name, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    TK_ASSERT(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    uint8_t buf[512];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    TK_ASSERT(n > 0 && tk_b64url_encode(buf, (size_t)n, out, cap) == 0);
}

static void rsa_jwk(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
    char n[700], e[16];
    b64_param(k, OSSL_PKEY_PARAM_RSA_N, n, sizeof n);
    b64_param(k, OSSL_PKEY_PARAM_RSA_E, e, sizeof e);
    snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}", kid, n, e);
}

static void ec_jwk(EVP_PKEY *k, const char *kid, const char *crv, size_t size, char *out,
                   size_t cap)
{
    uint8_t pt[1 + 2 * 48];
    size_t len = 0;
    TK_ASSERT(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len));
    TK_ASSERT(len == 1 + 2 * size && pt[0] == 4);
    char x[80], y[80];
    TK_ASSERT(tk_b64url_encode(pt + 1, size, x, sizeof x) == 0);
    TK_ASSERT(tk_b64url_encode(pt + 1 + size, size, y, sizeof y) == 0);
    snprintf(out, cap, "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
             kid, crv, x, y);
}

static void write_file(const char *name, const char *text)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    TK_ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static int load(const char *text, tk_idp_trust **t, char *err)
{
    write_file("idp.json", text);
    *t = NULL;
    return tk_idp_load(path, t, err, 512);
}

static EVP_PKEY *rsa2048, *rsa1024, *p256, *p384;
static char jwk_rsa[1024], jwk_p256[256], jwk_p384[300], jwk_small[700];

static void make_keys(void)
{
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    TK_ASSERT(rsa2048 && rsa1024 && p256 && p384);
    rsa_jwk(rsa2048, "r1", jwk_rsa, sizeof jwk_rsa);
    rsa_jwk(rsa1024, "small", jwk_small, sizeof jwk_small);
    ec_jwk(p256, "e1", "P-256", 32, jwk_p256, sizeof jwk_p256);
    ec_jwk(p384, "e2", "P-384", 48, jwk_p384, sizeof jwk_p384);
    char p[160];
    snprintf(p, sizeof p, "%s/ec.pem", dir);
    FILE *f = fopen(p, "w");
    TK_ASSERT(f != NULL && PEM_write_PUBKEY(f, p256) == 1);
    fclose(f);
}

static void test_load_keys(void)
{
    char text[4096], err[512];
    tk_idp_trust *t;
    snprintf(text, sizeof text,
             "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"tokend\","
             "\"jwks\":{\"keys\":[%s,%s,%s,{\"kty\":\"RSA\",\"use\":\"enc\"}]},"
             "\"algorithms\":[\"RS256\",\"PS256\",\"ES256\"],\"leeway\":5,"
             "\"webhook_secrets\":[\"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]},"
             "{\"issuer\":\"https://b\",\"audience\":\"x\",\"keys\":[{\"pem_file\":\"ec.pem\"}],"
             "\"allow_missing_exp\":true,\"credential_change\":\"suspend\"}]}",
             jwk_rsa, jwk_p256, jwk_p384);
    CHECK_EQ_INT(load(text, &t, err), 0);
    if (t == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    CHECK_EQ_INT(t->n, 2);
    const tk_idp_issuer *a = tk_idp_find(t, TK_SLICE_LIT("https://a"));
    const tk_idp_issuer *b = tk_idp_find(t, TK_SLICE_LIT("https://b"));
    CHECK(a != NULL && b != NULL && tk_idp_find(t, TK_SLICE_LIT("https://a/")) == NULL);
    if (a == NULL || b == NULL) {
        tk_idp_unref(t);
        return;
    }
    /* The P-384 key fits none of RS256/PS256/ES256 and the "enc" key is not
     * for signatures: a published JWKS may hold both, they are skipped. */
    CHECK_EQ_INT(a->nkeys, 2);
    CHECK(tk_idp_key_for(a, TK_SLICE_LIT("e2"), true) == NULL);
    CHECK_EQ_INT(a->leeway, 5);
    CHECK_EQ_INT(a->nsecrets, 1);
    CHECK_EQ_INT(a->secret_len[0], 24);
    const tk_idp_key *k = tk_idp_key_for(a, TK_SLICE_LIT("r1"), true);
    CHECK(k != NULL && k->algs == (TK_ALG_BIT(TK_ALG_RS256) | TK_ALG_BIT(TK_ALG_PS256)));
    k = tk_idp_key_for(a, TK_SLICE_LIT("e1"), true);
    CHECK(k != NULL && k->algs == TK_ALG_BIT(TK_ALG_ES256));
    CHECK(tk_idp_key_for(a, TK_SLICE_LIT("R1"), true) == NULL);
    CHECK(tk_idp_key_for(a, TK_SLICE_NULL, false) == NULL); /* no kid, two keys */
    CHECK(tk_idp_key_for(b, TK_SLICE_NULL, false) == &b->keys[0]);
    CHECK(tk_idp_key_for(b, TK_SLICE_LIT("x"), true) == NULL);
    CHECK_EQ_INT(b->keys[0].algs, TK_ALG_BIT(TK_ALG_ES256)); /* default for P-256 */
    CHECK(b->allow_missing_exp && !a->allow_missing_exp);
    CHECK_EQ_INT(b->credential_change, TK_IDP_SUSPEND);
    CHECK_EQ_INT(a->credential_change, TK_IDP_TERMINATE);
    CHECK_EQ_INT(b->leeway, TK_IDP_LEEWAY_DEFAULT);
    tk_idp_unref(t);
}

static void test_refusals(void)
{
    char err[512], text[4096];
    tk_idp_trust *t;
    const char *bad[] = {
        "[]",
        "{\"issuers\":[],\"x\":1}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\"}]}", /* nothing to verify */
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"typo\":1,"
        "\"webhook_secrets\":[\"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}]}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
        "\"webhook_secrets\":[\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}]}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
        "\"webhook_secrets\":[\"whsec_AAAA\"]}]}", /* too short */
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"leeway\":-1,"
        "\"webhook_secrets\":[\"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}]}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"algorithms\":[\"HS256\"],"
        "\"webhook_secrets\":[\"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}]}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"algorithms\":[\"none\"],"
        "\"webhook_secrets\":[\"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}]}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
        "\"jwks\":{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}}]}", /* skipped: none left */
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
        "\"jwks\":{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}}]}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
        "\"keys\":[{\"pem_file\":\"missing.pem\"}]}]}",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        int rc = load(bad[i], &t, err);
        CHECK(rc != 0 && t == NULL && err[0] != '\0');
        if (rc == 0) {
            fprintf(stderr, "accepted bad config %zu\n", i);
            tk_idp_unref(t);
        }
    }
    /* Keys that must be refused: private, short RSA, duplicate kid, alg unfit. */
    const char *fmt[] = {
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"jwks\":{\"keys\":[%s]}}]}",
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"jwks\":{\"keys\":[%s,%s]}}]}",
    };
    snprintf(text, sizeof text, fmt[0], jwk_small);
    CHECK(load(text, &t, err) != 0 && strstr(err, "2048") != NULL);
    snprintf(text, sizeof text, fmt[1], jwk_rsa, jwk_rsa);
    CHECK(load(text, &t, err) != 0 && strstr(err, "two keys") != NULL);
    char priv[1200];
    snprintf(priv, sizeof priv, "%.*s,\"d\":\"AAAA\"}", (int)strlen(jwk_rsa) - 1, jwk_rsa);
    snprintf(text, sizeof text, fmt[0], priv);
    CHECK(load(text, &t, err) != 0);
    snprintf(text, sizeof text,
             "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"algorithms\":"
             "[\"ES384\"],\"keys\":[{\"pem_file\":\"ec.pem\"}]}]}");
    CHECK(load(text, &t, err) != 0 && strstr(err, "none of the allowed") != NULL);
    /* A JWKS whose only key is unusable leaves nothing to verify with. */
    snprintf(text, sizeof text,
             "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"algorithms\":"
             "[\"ES256\"],\"jwks\":{\"keys\":[%s]}}]}",
             jwk_rsa);
    CHECK(load(text, &t, err) != 0 && strstr(err, "nothing could be verified") != NULL);
    snprintf(text, sizeof text,
             "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"jwks\":{\"keys\":[%s]}},"
             "{\"issuer\":\"https://a\",\"audience\":\"y\",\"jwks\":{\"keys\":[%s]}}]}",
             jwk_p256, jwk_p256);
    CHECK(load(text, &t, err) != 0 && strstr(err, "listed twice") != NULL);
}

/* Messages name the issuer they belong to (jcfg's where label), and only
 * that issuer; relative key files resolve under the trust file's folder. */
static void test_messages(void)
{
    char err[512], text[4096];
    tk_idp_trust *t;
    CHECK(load("{\"issuers\":[],\"x\":1}", &t, err) == TK_E_BADINPUT);
    CHECK_EQ_STR(err, "unknown member \"x\" in the top level");
    CHECK(load("{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"typo\":1}]}", &t,
               err) == TK_E_BADINPUT);
    CHECK_EQ_STR(err, "issuer \"https://a\": unknown member \"typo\" in an issuer");
    /* The second issuer's problem carries its own name, not the first's. */
    snprintf(text, sizeof text,
             "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"jwks\":{\"keys\":[%s]}},"
             "{\"issuer\":\"https://b\",\"audience\":\"\"}]}",
             jwk_p256);
    CHECK(load(text, &t, err) == TK_E_BADINPUT);
    CHECK_EQ_STR(err, "issuer \"https://b\": \"audience\" must be 1 to 512 bytes");
    /* An issuer that is not an object comes after a named one: no stale label. */
    snprintf(text, sizeof text,
             "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"jwks\":{\"keys\":[%s]}},"
             "7]}",
             jwk_p256);
    CHECK(load(text, &t, err) == TK_E_BADINPUT);
    CHECK_EQ_STR(err, "each of \"issuers\" must be an object");
    /* jwks_file and pem_file are read relative to the trust file's folder. */
    snprintf(text, sizeof text, "{\"keys\":[%s]}", jwk_p256);
    write_file("a.jwks.json", text);
    CHECK(
        load("{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
             "\"jwks_file\":\"a.jwks.json\",\"keys\":[{\"pem_file\":\"ec.pem\",\"kid\":\"p\"}]}]}",
             &t, err) == 0);
    CHECK(t != NULL && t->n == 1 && t->issuers[0].nkeys == 2);
    tk_idp_unref(t);
    CHECK(load("{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
               "\"jwks_file\":\"nope.json\"}]}",
               &t, err) == -ENOENT);
    char want[256];
    snprintf(want, sizeof want, "issuer \"https://a\": %s/nope.json: No such file or directory",
             dir);
    CHECK_EQ_STR(err, want);
    /* A JWKS file with a duplicate member is refused like the trust file. */
    write_file("dup.jwks.json", "{\"keys\":[],\"keys\":[]}");
    CHECK(load("{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
               "\"jwks_file\":\"dup.jwks.json\"}]}",
               &t, err) == TK_E_BADINPUT);
}

static void test_holder(void)
{
    char text[1024], err[512];
    snprintf(
        text, sizeof text,
        "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"jwks\":{\"keys\":[%s]}}]}",
        jwk_p256);
    tk_idp_trust *t1, *t2;
    CHECK_EQ_INT(load(text, &t1, err), 0);
    CHECK_EQ_INT(load("{\"issuers\":[]}", &t2, err), 0);
    tk_idp_holder *h;
    CHECK_EQ_INT(tk_idp_holder_new(t1, &h), 0);
    uint64_t g1 = 0, g2 = 0;
    tk_idp_trust *mine = tk_idp_holder_get(h, &g1);
    CHECK(mine == t1 && g1 == tk_idp_holder_gen(h));
    tk_idp_holder_swap(h, t2);
    CHECK(tk_idp_holder_gen(h) != g1);
    /* The worker still holds t1 (refs 1 after the swap): it stays usable. */
    CHECK(tk_idp_find(mine, TK_SLICE_LIT("https://a")) != NULL);
    tk_idp_unref(mine); /* frees t1 */
    mine = tk_idp_holder_get(h, &g2);
    CHECK(mine == t2 && mine->n == 0 && g2 != g1);
    tk_idp_unref(mine);
    tk_idp_holder_free(h);
}

/* jwks_uri: https, or http to a loopback host only; the issuer may then
 * have no key in the file at all (the key set is fetched: idp_jwks.h). */
static void test_jwks_uri(void)
{
    static const char *const good[] = {
        "https://idp.example/realms/a/protocol/openid-connect/certs",
        "https://idp.example:8443/keys",
        "http://127.0.0.1:8080/certs",
        "http://[::1]:8080/certs",
        "http://localhost/certs",
    };
    static const char *const bad[] = {
        "http://idp.example/certs",    /* plain http off loopback */
        "http://127.0.0.1.evil/certs", /* not the loopback host */
        "http://localhost.evil/certs", /* idem */
        "ftp://idp.example/certs",     /* not http(s) */
        "https://user@idp.example/x",  /* user info */
        "https://idp.example/certs#k", /* fragment */
        "https:///certs",              /* no host */
        "https://idp.example/a b",     /* a space */
        "idp.example/certs",           /* not a URL */
    };
    char text[512], err[512];
    tk_idp_trust *t = NULL;
    for (size_t i = 0; i < TK_ARRAY_LEN(good); i++) {
        snprintf(text, sizeof text,
                 "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
                 "\"algorithms\":[\"ES256\"],\"jwks_uri\":\"%s\"}]}",
                 good[i]);
        int rc = load(text, &t, err);
        CHECK_EQ_INT(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "refused %s: %s\n", good[i], err);
            continue;
        }
        CHECK_EQ_STR(t->issuers[0].jwks_uri, good[i]);
        CHECK_EQ_INT(t->issuers[0].jwks_uri_len, strlen(good[i]));
        CHECK_EQ_INT(t->issuers[0].nkeys, 0);
        CHECK_EQ_INT(t->issuers[0].algs, TK_ALG_BIT(TK_ALG_ES256));
        tk_idp_unref(t);
    }
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        snprintf(text, sizeof text,
                 "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
                 "\"jwks_uri\":\"%s\"}]}",
                 bad[i]);
        t = NULL;
        if (load(text, &t, err) == 0 || strstr(err, "jwks_uri") == NULL) {
            fprintf(stderr, "accepted %s (%s)\n", bad[i], err);
            CHECK(0);
            tk_idp_unref(t);
        }
    }
}

/* The sign-in members (login = oidc): what is kept, and every refusal. */
static void test_signin_members(void)
{
    char err[512];
    tk_idp_trust *t = NULL;
    int rc = load("{\"issuers\":[{\"issuer\":\"https://sso.example/realms/a\",\"audience\":"
                  "\"tokend\",\"client_id\":\"tokend\",\"client_secret\":\"s3\","
                  "\"token_endpoint_auth_method\":\"client_secret_post\",\"scopes\":\"email "
                  "profile\",\"end_session\":true}]}",
                  &t, err);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        const tk_idp_issuer *is = &t->issuers[0];
        CHECK_EQ_STR(is->client_id, "tokend");
        CHECK_EQ_STR(is->client_secret, "s3");
        CHECK(is->secret_post);
        CHECK(is->end_session);
        CHECK_EQ_STR(is->scopes, "openid email profile"); /* openid added */
        CHECK(!is->discovered);
        CHECK_EQ_INT(is->jwks_uri_len, 0); /* discovery names it */
        tk_idp_unref(t);
    }
    rc = load("{\"issuers\":[{\"issuer\":\"http://127.0.0.1:9\",\"audience\":\"t\","
              "\"client_id\":\"t\",\"client_secret\":\"s\",\"scopes\":\"x openid\"}]}",
              &t, err);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK(!t->issuers[0].secret_post); /* client_secret_basic by default */
        CHECK_EQ_STR(t->issuers[0].scopes, "x openid");
        tk_idp_unref(t);
    }
    static const struct {
        const char *members, *why;
    } bad[] = {
        {"\"client_secret\":\"s\"", "without \"client_id\""},
        {"\"scopes\":\"openid\"", "without \"client_id\""},
        {"\"client_id\":\"c\"", "client_secret"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"token_endpoint_auth_method\":"
         "\"none\"",
         "client_secret_basic"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"end_session\":1", "end_session"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"scopes\":\"a\\tb\"", "scopes"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"client_typo\":1", "client_typo"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",%s}]}",
                 bad[i].members);
        t = NULL;
        if (load(text, &t, err) == 0 || strstr(err, bad[i].why) == NULL) {
            fprintf(stderr, "case %zu: %s\n", i, err);
            CHECK(0);
            tk_idp_unref(t);
        }
    }
    /* A sign-in issuer must be https (http only on loopback): discovery. */
    rc = load("{\"issuers\":[{\"issuer\":\"http://sso.example\",\"audience\":\"t\","
              "\"client_id\":\"t\",\"client_secret\":\"s\"}]}",
              &t, err);
    CHECK(rc != 0 && strstr(err, "https") != NULL);
}

/* sender_certificate: one of subject, san, thumbprint; canonical; enough on
 * its own for an issuer; every malformed form refused with the member named. */
static void test_sender_certificate(void)
{
    char err[512], text[600];
    tk_idp_trust *t = NULL;
    static const char fmt[] = "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
                              "\"sender_certificate\":%s}]}";
    snprintf(text, sizeof text, fmt, "{\"san\":\"dns:Hooks.IdP.example\"}");
    CHECK_EQ_INT(load(text, &t, err), 0);
    const tk_idp_issuer *is = &t->issuers[0];
    CHECK(tk_idp_has_sender_cert(is));
    CHECK_EQ_STR(is->sender_san, "dns:hooks.idp.example");
    CHECK_EQ_INT(is->sender_subject_len, 0);
    tk_peer_cert pc = {.verified = true, .nsans = 1};
    tk_sha256("dns:hooks.idp.example", 21, pc.san[0]);
    CHECK(tk_idp_sender_cert_ok(is, &pc));
    pc.verified = false; /* a SAN counts only under tls-ca */
    CHECK(!tk_idp_sender_cert_ok(is, &pc));
    CHECK(!tk_idp_sender_cert_ok(is, NULL));
    tk_idp_unref(t);
    snprintf(text, sizeof text, fmt, "{\"subject\":\"cn=Hooks, O=IdP\"}");
    CHECK_EQ_INT(load(text, &t, err), 0);
    CHECK_EQ_STR(t->issuers[0].sender_subject, "CN=hooks,O=idp");
    tk_idp_unref(t);
    snprintf(
        text, sizeof text, fmt,
        "{\"thumbprint\":\"b4d87b6aef380fa00013de41308bcea546f70a36105b862fd6d892a4062eb330\"}");
    CHECK_EQ_INT(load(text, &t, err), 0);
    CHECK(t->issuers[0].has_sender_thumbprint && t->issuers[0].sender_thumbprint[0] == 0xb4);
    pc = (tk_peer_cert){.verified = false};
    memcpy(pc.sha256, t->issuers[0].sender_thumbprint, TK_HASH_LEN);
    CHECK(tk_idp_sender_cert_ok(&t->issuers[0], &pc)); /* self-signed is fine by thumbprint */
    pc.sha256[31] ^= 1;
    CHECK(!tk_idp_sender_cert_ok(&t->issuers[0], &pc));
    tk_idp_unref(t);
    /* an issuer with none names no certificate, and no certificate satisfies it */
    snprintf(text, sizeof text,
             "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\","
             "\"webhook_secrets\":[\"whsec_c2VjcmV0c2VjcmV0c2VjcmV0\"]}]}");
    CHECK_EQ_INT(load(text, &t, err), 0);
    CHECK(!tk_idp_has_sender_cert(&t->issuers[0]));
    memset(&pc, 0, sizeof pc);
    CHECK(!tk_idp_sender_cert_ok(&t->issuers[0], &pc));
    tk_idp_unref(t);
    static const char *const bad[] = {
        "\"dns:x\"",
        "{}",
        "{\"san\":\"dns:x\",\"subject\":\"CN=x\"}",
        "{\"san\":\"x.example\"}",
        "{\"san\":7}",
        "{\"subject\":\"not a dn\"}",
        "{\"thumbprint\":\"abc\"}",
        "{\"thumbprint\":\"zz87b6aef380fa00013de41308bcea546f70a36105b862fd6d892a4062eb330\"}",
        "{\"dns\":\"x.example\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, fmt, bad[i]);
        CHECK(load(text, &t, err) != 0 && strstr(err, "sender_certificate") != NULL);
    }
}

/* Several organisations: domains (lower-cased, unique across issuers, only
 * on sign-in IdPs), allowed_resources and allowed_scopes (absent: no limit;
 * []: nothing), and login_hint routing by the domain after the last '@'. */
static void test_org_members(void)
{
    char err[512];
    tk_idp_trust *t = NULL;
    int rc = load("{\"issuers\":["
                  "{\"issuer\":\"https://home.example\",\"audience\":\"t\",\"client_id\":\"t\","
                  "\"client_secret\":\"s\",\"domains\":[\"Home.Example\",\"corp.home.example\"]},"
                  "{\"issuer\":\"https://partner.example\",\"audience\":\"t\",\"client_id\":"
                  "\"t\",\"client_secret\":\"s\",\"domains\":[\"partner.example\"],"
                  "\"allowed_resources\":[\"https://shared.example/mcp\",\"https://x/y\"],"
                  "\"allowed_scopes\":[\"mcp:read\"]},"
                  "{\"issuer\":\"https://closed.example\",\"audience\":\"t\",\"client_id\":"
                  "\"t\",\"client_secret\":\"s\",\"allowed_resources\":[]},"
                  "{\"issuer\":\"https://events.example\",\"audience\":\"t\",\"jwks_uri\":"
                  "\"https://events.example/jwks\",\"allowed_scopes\":[\"a\",\"b\"]}]}",
                  &t, err);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const tk_idp_issuer *home = &t->issuers[0], *partner = &t->issuers[1], *closed = &t->issuers[2],
                        *events = &t->issuers[3];
    CHECK_EQ_INT(home->ndomains, 2);
    CHECK_EQ_STR(home->domains[0], "home.example");
    CHECK(!home->limit_resources && !home->limit_scopes);
    CHECK(partner->limit_resources && partner->limit_scopes);
    CHECK_EQ_STR(partner->allowed_resources, "https://shared.example/mcp https://x/y");
    CHECK_EQ_INT(partner->allowed_resources_len, 38);
    CHECK_EQ_STR(partner->allowed_scopes, "mcp:read");
    CHECK(closed->limit_resources && closed->allowed_resources_len == 0 && !closed->limit_scopes);
    CHECK(events->limit_scopes && strcmp(events->allowed_scopes, "a b") == 0);
    /* Routing: exact domain after the last '@', any case. */
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("alice@home.example")) == home);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("ALICE@HOME.EXAMPLE")) == home);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("a@b@corp.home.example")) == home);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("bob@partner.example")) == partner);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("bob@sub.partner.example")) == NULL);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("bob@partner.example.evil")) == NULL);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("bob@partner.exampl")) == NULL);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("partner.example")) == NULL); /* no '@' */
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("bob@")) == NULL);
    CHECK(tk_idp_for_hint(t, TK_SLICE_LIT("bob@partner.example@x")) == NULL);
    CHECK(tk_idp_for_hint(NULL, TK_SLICE_LIT("bob@partner.example")) == NULL);
    tk_idp_unref(t);
    static const struct {
        const char *members, *why;
    } bad[] = {
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":\"a.example\"", "array"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[1]", "string"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[\"\"]", "string"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[\"a..b\"]", "domain name"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[\".a.b\"]", "domain name"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[\"a.b.\"]", "domain name"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[\"@a.b\"]", "domain name"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[\"a b\"]", "domain name"},
        {"\"client_id\":\"c\",\"client_secret\":\"s\",\"domains\":[\"a.b\",\"A.B\"]",
         "listed twice"},
        {"\"jwks_uri\":\"https://a/j\",\"domains\":[\"a.b\"]", "without \"client_id\""},
        {"\"jwks_uri\":\"https://a/j\",\"allowed_resources\":[\"a b\"]", "without spaces"},
        {"\"jwks_uri\":\"https://a/j\",\"allowed_resources\":{}", "array"},
        {"\"jwks_uri\":\"https://a/j\",\"allowed_scopes\":[\"a\\\"b\"]", "quotes"},
        {"\"jwks_uri\":\"https://a/j\",\"allowed_scopes\":[null]", "string"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",%s}]}",
                 bad[i].members);
        t = NULL;
        if (load(text, &t, err) == 0 || strstr(err, bad[i].why) == NULL) {
            fprintf(stderr, "case %zu: %s\n", i, err);
            CHECK(0);
            tk_idp_unref(t);
        }
    }
    /* A domain listed by two issuers: one hint, one IdP. */
    rc = load("{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"client_id\":\"c\","
              "\"client_secret\":\"s\",\"domains\":[\"same.example\"]},{\"issuer\":"
              "\"https://b\",\"audience\":\"x\",\"client_id\":\"c\",\"client_secret\":\"s\","
              "\"domains\":[\"Same.Example\"]}]}",
              &t, err);
    CHECK(rc != 0 && strstr(err, "listed twice") != NULL && strstr(err, "https://a") != NULL);
    /* Too many entries, and a joined list beyond its length. */
    char big[TK_IDP_FILE_MAX / 4];
    int n = snprintf(big, sizeof big,
                     "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"client_id\":"
                     "\"c\",\"client_secret\":\"s\",\"domains\":[");
    for (int i = 0; i <= TK_IDP_DOMAINS_MAX; i++) {
        n += snprintf(big + n, sizeof big - (size_t)n, "%s\"d%d.example\"", i > 0 ? "," : "", i);
    }
    snprintf(big + n, sizeof big - (size_t)n, "]}]}");
    rc = load(big, &t, err);
    CHECK(rc != 0 && strstr(err, "at most 16") != NULL);
    n = snprintf(big, sizeof big,
                 "{\"issuers\":[{\"issuer\":\"https://a\",\"audience\":\"x\",\"jwks_uri\":"
                 "\"https://a/j\",\"allowed_resources\":[");
    for (int i = 0; i < TK_IDP_ORG_RESOURCES_MAX; i++) {
        n += snprintf(big + n, sizeof big - (size_t)n, "%s\"https://r%d.example/%0200d\"",
                      i > 0 ? "," : "", i, 0);
    }
    snprintf(big + n, sizeof big - (size_t)n, "]}]}");
    rc = load(big, &t, err);
    CHECK(rc != 0 && strstr(err, "longer than 4096") != NULL);
}

int main(void)
{
    strcpy(dir, "/tmp/tk_idp_XXXXXX");
    TK_ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/idp.json", dir);
    make_keys();
    RUN(test_load_keys);
    RUN(test_refusals);
    RUN(test_messages);
    RUN(test_holder);
    RUN(test_jwks_uri);
    RUN(test_signin_members);
    RUN(test_sender_certificate);
    RUN(test_org_members);
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    char p[160];
    const char *files[] = {"idp.json", "ec.pem", "a.jwks.json", "dup.jwks.json"};
    for (size_t i = 0; i < TK_ARRAY_LEN(files); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return check_report();
}
