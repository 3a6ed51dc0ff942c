/*
 * src/keys: the thumbprint, the keys folder (first key, reload, rotation,
 * the cap on kept keys, refused files), publishing windows, the JWKS, and
 * ES256 signatures checked by our own verifier (src/idp), never by the code
 * that made them.
 */
#include "check.h"

#include "tokend/crypto.h"
#include "tokend/jose.h"
#include "tokend/keys.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[512];

static void make_dir(char *dir)
{
    strcpy(dir, "/tmp/tk_keys_XXXXXX");
    TK_ASSERT(mkdtemp(dir) != NULL);
}

static void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    TK_ASSERT(system(cmd) == 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    TK_ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 0777 : 01000;
}

/* RFC 7517 Appendix A.1's EC public key; the expected value was computed
 * independently (Python: sha256 of the RFC 7638 §3.2 JSON, base64url). The
 * RFC 7638 §3.1 example is an RSA key, which tokend never signs with. */
static void test_thumbprint(void)
{
    uint8_t x[32], y[32];
    size_t xl, yl;
    const char *xs = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
    const char *ys = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";
    CHECK(tk_b64url_decode(xs, strlen(xs), x, sizeof x, &xl) == 0 && xl == 32);
    CHECK(tk_b64url_decode(ys, strlen(ys), y, sizeof y, &yl) == 0 && yl == 32);
    char kid[TK_KID_LEN + 1];
    tk_keys_thumbprint(x, y, kid);
    CHECK_EQ_STR(kid, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s");
    y[31] ^= 1; /* any other key, another kid */
    tk_keys_thumbprint(x, y, kid);
    CHECK(strcmp(kid, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s") != 0);
}

static void test_first_key_and_reload(void)
{
    char dir[64], path[256];
    make_dir(dir);
    tk_keyset *ks = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, false, 1000, &ks, err, sizeof err), TK_E_NOTFOUND);
    CHECK(ks == NULL);
    CHECK_EQ_INT(tk_keys_load(dir, true, 1000, &ks, err, sizeof err), 0);
    TK_ASSERT(ks != NULL);
    CHECK_EQ_INT(tk_keys_count(ks), 1);
    const tk_key_info *in = tk_keys_info(ks, 0);
    CHECK_EQ_INT(strlen(in->kid), TK_KID_LEN);
    CHECK_EQ_INT(in->created, 1000);
    CHECK_EQ_INT(in->retired, 0);
    CHECK(snprintf(path, sizeof path, "%s/keys", dir) < (int)sizeof path);
    CHECK_EQ_INT(mode_of(path), 0700);
    CHECK(snprintf(path, sizeof path, "%s/keys/%s.pem", dir, in->kid) < (int)sizeof path);
    CHECK_EQ_INT(mode_of(path), 0600);
    /* Loading again (with or without create) finds the same key. */
    tk_keyset *again = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, false, 2000, &again, err, sizeof err), 0);
    TK_ASSERT(again != NULL);
    CHECK_EQ_STR(tk_keys_info(again, 0)->kid, in->kid);
    CHECK_EQ_INT(tk_keys_info(again, 0)->created, 1000);
    tk_keys_free(again);
    CHECK_EQ_INT(tk_keys_load(dir, true, 3000, &again, err, sizeof err), 0);
    TK_ASSERT(again != NULL);
    CHECK_EQ_STR(tk_keys_info(again, 0)->kid, in->kid);
    tk_keys_free(again);
    tk_keys_free(ks);
    remove_tree(dir);
}

static void test_rotate_and_cap(void)
{
    char dir[64], path[256];
    make_dir(dir);
    char kids[8][TK_KID_LEN + 1];
    unsigned dropped = 9;
    /* Rotating an empty folder makes the first key. */
    CHECK_EQ_INT(tk_keys_rotate(dir, 100, kids[0], &dropped, err, sizeof err), 0);
    CHECK_EQ_INT(dropped, 0);
    for (int i = 1; i < 6; i++) {
        CHECK_EQ_INT(tk_keys_rotate(dir, 100 + i, kids[i], &dropped, err, sizeof err), 0);
        CHECK_EQ_INT(dropped, i + 1 > TK_SIGNING_KEYS_MAX ? 1 : 0);
        CHECK(strcmp(kids[i], kids[i - 1]) != 0);
    }
    tk_keyset *ks = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, false, 200, &ks, err, sizeof err), 0);
    TK_ASSERT(ks != NULL);
    CHECK_EQ_INT(tk_keys_count(ks), TK_SIGNING_KEYS_MAX);
    for (unsigned i = 0; i < tk_keys_count(ks); i++) { /* newest first */
        const tk_key_info *in = tk_keys_info(ks, i);
        CHECK_EQ_STR(in->kid, kids[5 - i]);
        CHECK_EQ_INT(in->created, 100 + 5 - (int)i);
        CHECK_EQ_INT(in->retired, i == 0 ? 0 : 100 + 5 - (int)i + 1);
    }
    /* The dropped keys' files are gone, the kept ones stay 0600. */
    for (int i = 0; i < 6; i++) {
        CHECK(snprintf(path, sizeof path, "%s/keys/%s.pem", dir, kids[i]) < (int)sizeof path);
        bool kept = i >= 6 - TK_SIGNING_KEYS_MAX;
        CHECK_EQ_INT(access(path, F_OK) == 0, kept);
        if (kept) {
            CHECK_EQ_INT(mode_of(path), 0600);
        }
    }
    tk_keys_free(ks);
    remove_tree(dir);
}

static void test_retire_now(void)
{
    char dir[64], path[256], kids[3][TK_KID_LEN + 1], gone[TK_SIGNING_KEYS_MAX][TK_KID_LEN + 1];
    make_dir(dir);
    unsigned dropped = 9;
    CHECK_EQ_INT(tk_keys_retire_now(dir, gone, &dropped, err, sizeof err), TK_E_NOTFOUND);
    CHECK_EQ_INT(dropped, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(tk_keys_rotate(dir, 100 + i, kids[i], &dropped, err, sizeof err), 0);
    }
    CHECK_EQ_INT(tk_keys_retire_now(dir, gone, &dropped, err, sizeof err), 0);
    CHECK_EQ_INT(dropped, 2);
    CHECK_EQ_STR(gone[0], kids[1]);
    CHECK_EQ_STR(gone[1], kids[0]);
    tk_keyset *ks = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, false, 200, &ks, err, sizeof err), 0);
    TK_ASSERT(ks != NULL);
    CHECK_EQ_INT(tk_keys_count(ks), 1);
    CHECK_EQ_STR(tk_keys_info(ks, 0)->kid, kids[2]); /* the current key stays */
    for (int i = 0; i < 3; i++) {
        CHECK(snprintf(path, sizeof path, "%s/keys/%s.pem", dir, kids[i]) < (int)sizeof path);
        CHECK_EQ_INT(access(path, F_OK) == 0, i == 2);
    }
    tk_keys_free(ks);
    CHECK_EQ_INT(tk_keys_retire_now(dir, gone, &dropped, err, sizeof err), 0);
    CHECK_EQ_INT(dropped, 0); /* nothing left to drop */
    remove_tree(dir);
}

static void test_publishing(void)
{
    char dir[64];
    make_dir(dir);
    char k1[TK_KID_LEN + 1], k2[TK_KID_LEN + 1];
    unsigned dropped;
    tk_keyset *old = NULL, *ks = NULL;
    CHECK_EQ_INT(tk_keys_rotate(dir, 1000, k1, &dropped, err, sizeof err), 0);
    CHECK_EQ_INT(tk_keys_load(dir, false, 1000, &old, err, sizeof err), 0);
    CHECK_EQ_INT(tk_keys_rotate(dir, 2000, k2, &dropped, err, sizeof err), 0);
    CHECK_EQ_INT(tk_keys_load(dir, false, 2000, &ks, err, sizeof err), 0);
    TK_ASSERT(old != NULL && ks != NULL);
    /* Retired at 2000, overlap 600: published up to 2599. */
    CHECK(tk_keys_published(ks, 0, 999999, 600));
    CHECK(tk_keys_published(ks, 1, 2599, 600));
    CHECK(!tk_keys_published(ks, 1, 2600, 600));
    CHECK(!tk_keys_published(ks, 1, 2000, 0));
    /* This process kept signing with k1 until 2300 (SIGHUP late): the
     * window starts there. */
    tk_keys_carry(ks, old, 2300);
    CHECK(tk_keys_published(ks, 1, 2899, 600));
    CHECK(!tk_keys_published(ks, 1, 2900, 600));
    /* A carry from a set whose current key is not retired changes nothing. */
    tk_keys_carry(ks, ks, 5000);
    CHECK(!tk_keys_published(ks, 1, 2900, 600));

    char buf[2048];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_keys_jwks(ks, 2500, 600, &j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    json_error_t je;
    json_t *doc = json_loads(buf, JSON_REJECT_DUPLICATES, &je);
    TK_ASSERT(doc != NULL);
    json_t *keys = json_object_get(doc, "keys");
    CHECK_EQ_INT(json_array_size(keys), 2);
    static const char *const members[] = {"kty", "crv", "x", "y", "kid", "use", "alg"};
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i);
        CHECK_EQ_INT(json_object_size(k), 7); /* public members only: no "d" */
        for (size_t m = 0; m < 7; m++) {
            CHECK(json_is_string(json_object_get(k, members[m])));
        }
        CHECK_EQ_STR(json_string_value(json_object_get(k, "kty")), "EC");
        CHECK_EQ_STR(json_string_value(json_object_get(k, "crv")), "P-256");
        CHECK_EQ_STR(json_string_value(json_object_get(k, "use")), "sig");
        CHECK_EQ_STR(json_string_value(json_object_get(k, "alg")), "ES256");
        /* The kid is the thumbprint of the published coordinates. */
        uint8_t x[32], y[32];
        size_t xl = 0, yl = 0;
        const char *xs = json_string_value(json_object_get(k, "x"));
        const char *ys = json_string_value(json_object_get(k, "y"));
        CHECK(tk_b64url_decode(xs, strlen(xs), x, 32, &xl) == 0 && xl == 32);
        CHECK(tk_b64url_decode(ys, strlen(ys), y, 32, &yl) == 0 && yl == 32);
        char kid[TK_KID_LEN + 1];
        tk_keys_thumbprint(x, y, kid);
        CHECK_EQ_STR(json_string_value(json_object_get(k, "kid")), kid);
        CHECK_EQ_STR(kid, i == 0 ? k2 : k1);
    }
    json_decref(doc);
    tk_json_init(&j, buf, sizeof buf); /* after the window: the current key alone */
    tk_keys_jwks(ks, 2900, 600, &j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK(strstr(buf, k2) != NULL && strstr(buf, k1) == NULL);
    tk_keys_free(old);
    tk_keys_free(ks);
    remove_tree(dir);
}

/* An issuer whose one key is the public half of the PEM file of kid. */
static void verifier_for(const char *dir, const char *kid, tk_idp_issuer *is)
{
    char path[256];
    CHECK(snprintf(path, sizeof path, "%s/keys/%s.pem", dir, kid) < (int)sizeof path);
    FILE *f = fopen(path, "r");
    TK_ASSERT(f != NULL);
    memset(is, 0, sizeof *is);
    is->keys[0].pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    TK_ASSERT(is->keys[0].pkey != NULL);
    memcpy(is->keys[0].kid, kid, TK_KID_LEN + 1);
    is->keys[0].kid_len = TK_KID_LEN;
    is->keys[0].algs = TK_ALG_BIT(TK_ALG_ES256);
    is->nkeys = 1;
}

static void test_sign_verifies(void)
{
    char dir[64];
    make_dir(dir);
    tk_keyset *ks = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, true, 1000, &ks, err, sizeof err), 0);
    TK_ASSERT(ks != NULL);
    const char *kid = tk_keys_info(ks, 0)->kid;
    tk_idp_issuer *is = calloc(1, sizeof *is);
    TK_ASSERT(is != NULL);
    verifier_for(dir, kid, is);
    const char *typ = "token-introspection+jwt";
    char payload[200], jws[1024];
    int bad = 0;
    /* Enough signatures that short r or s values (1 in 128 each) occur. */
    for (int i = 0; i < 600; i++) {
        int pl = snprintf(payload, sizeof payload, "{\"iat\":%d,\"token_introspection\":{}}", i);
        size_t len = 0;
        if (tk_keys_sign(ks, typ, payload, (size_t)pl, jws, sizeof jws, &len) != 0 ||
            len != tk_keys_jws_len(typ, (size_t)pl) || strlen(jws) != len) {
            bad++;
            continue;
        }
        ev_jws j;
        const char *why = NULL;
        if (ev_jws_parse((tk_slice){jws, len}, &j, &why) != EV_OK) {
            bad++;
            continue;
        }
        bool ok = ev_jws_verify(&j, is, &why) == EV_OK && j.alg == TK_ALG_ES256 &&
                  j.sig_len == 64 && j.kid.len == TK_KID_LEN &&
                  memcmp(j.kid.p, kid, TK_KID_LEN) == 0 && ev_typ_is(j.typ, typ) &&
                  json_integer_value(json_object_get(j.claims, "iat")) == i;
        bad += ok ? 0 : 1;
        ev_jws_free(&j);
    }
    CHECK_EQ_INT(bad, 0);
    /* A changed payload byte does not verify. */
    size_t len = 0;
    CHECK_EQ_INT(tk_keys_sign(ks, typ, "{\"a\":1}", 7, jws, sizeof jws, &len), 0);
    char *dot = strchr(jws, '.');
    TK_ASSERT(dot != NULL);
    dot[2] = dot[2] == 'A' ? 'B' : 'A';
    ev_jws j;
    const char *why = NULL;
    if (ev_jws_parse((tk_slice){jws, len}, &j, &why) == EV_OK) {
        CHECK(ev_jws_verify(&j, is, &why) == EV_BAD_SIGNATURE);
        ev_jws_free(&j);
    }
    /* A buffer one byte short is refused, not overrun. */
    size_t need = tk_keys_jws_len(typ, 7);
    CHECK_EQ_INT(tk_keys_sign(ks, typ, "{\"a\":1}", 7, jws, need, &len), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_keys_sign(ks, typ, "{\"a\":1}", 7, jws, need + 1, &len), 0);
    EVP_PKEY_free(is->keys[0].pkey);
    free(is);
    tk_keys_free(ks);
    remove_tree(dir);
}

/* tk_keys_sign_pkey (private_key_jwt): ES256 with a P-256 key, RS256 with
 * an RSA key, each verified by our own verifier with the public half; the
 * kid is in the header only when given; other keys and short buffers are
 * refused. */
static void test_sign_pkey(void)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    TK_ASSERT(ec && rsa && p384 && small);
    const char *payload = "{\"iss\":\"c\",\"sub\":\"c\",\"aud\":\"https://idp\"}";
    size_t pl = strlen(payload);
    struct {
        EVP_PKEY *k;
        const char *kid;
        uint8_t alg;
        size_t sig;
    } ok[] = {{ec, "rp-1", TK_ALG_ES256, 64},
              {ec, NULL, TK_ALG_ES256, 64},
              {rsa, "r", TK_ALG_RS256, 256},
              {rsa, "", TK_ALG_RS256, 256}};
    for (size_t i = 0; i < TK_ARRAY_LEN(ok); i++) {
        for (int round = 0; round < 40; round++) { /* short r or s values too */
            char jws[2048];
            size_t len = 0;
            CHECK_EQ_INT(
                tk_keys_sign_pkey(ok[i].k, ok[i].kid, "JWT", payload, pl, jws, sizeof jws, &len),
                0);
            CHECK_EQ_INT(strlen(jws), len);
            ev_jws j;
            const char *why = NULL;
            if (ev_jws_parse((tk_slice){jws, len}, &j, &why) != EV_OK) {
                CHECK(0);
                continue;
            }
            CHECK(ev_jws_verify_pkey(&j, ok[i].k, ok[i].alg, &why) == EV_OK);
            CHECK(j.alg == ok[i].alg && j.sig_len == ok[i].sig && ev_typ_is(j.typ, "JWT"));
            bool has_kid = ok[i].kid != NULL && ok[i].kid[0] != '\0';
            CHECK(has_kid ? tk_slice_eq_str(j.kid, ok[i].kid) : j.kid.p == NULL);
            CHECK_EQ_STR(json_string_value(json_object_get(j.claims, "aud")), "https://idp");
            /* Another key of the same kind does not verify it. */
            EVP_PKEY *other =
                ok[i].alg == TK_ALG_ES256 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") : NULL;
            if (other != NULL) {
                CHECK(ev_jws_verify_pkey(&j, other, ok[i].alg, &why) == EV_BAD_SIGNATURE);
                EVP_PKEY_free(other);
            }
            ev_jws_free(&j);
            const char *alg = NULL;
            CHECK_EQ_INT(tk_keys_sign_alg(ok[i].k, &alg), 0);
            CHECK_EQ_STR(alg, ok[i].alg == TK_ALG_ES256 ? "ES256" : "RS256");
            if (ok[i].alg == TK_ALG_RS256) {
                break; /* RSA signatures have a fixed length: once is enough */
            }
        }
    }
    char jws[2048];
    size_t len = 0;
    CHECK_EQ_INT(tk_keys_sign_pkey(p384, "k", "JWT", payload, pl, jws, sizeof jws, &len),
                 TK_E_INVALID);
    CHECK_EQ_INT(tk_keys_sign_pkey(small, "k", "JWT", payload, pl, jws, sizeof jws, &len),
                 TK_E_INVALID);
    CHECK_EQ_INT(tk_keys_sign_pkey(rsa, "k", "JWT", payload, pl, jws, 300, &len), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_keys_sign_pkey(ec, "k", "JWT", payload, pl, jws, 100, &len), TK_E_TOOBIG);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(small);
}

/* Every kind of bad folder content is refused with a message naming it. */
static void test_refused(void)
{
    char dir[64], path[512], manifest[256];
    make_dir(dir);
    tk_keyset *ks = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, true, 1000, &ks, err, sizeof err), 0);
    TK_ASSERT(ks != NULL);
    char kid[TK_KID_LEN + 1];
    memcpy(kid, tk_keys_info(ks, 0)->kid, sizeof kid);
    tk_keys_free(ks);
    CHECK(snprintf(path, sizeof path, "%s/keys/%s.pem", dir, kid) < (int)sizeof path);
    snprintf(manifest, sizeof manifest, "%s/keys/keys.json", dir);

    CHECK_EQ_INT(chmod(path, 0640), 0); /* readable by the group */
    ks = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, false, 1000, &ks, err, sizeof err), TK_E_BADINPUT);
    CHECK(ks == NULL && strstr(err, "chmod 600") != NULL && strstr(err, path) != NULL);
    CHECK_EQ_INT(chmod(path, 0600), 0);

    struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"{\"keys\":[]}", "1 to"},
        {"{\"keys\":[{\"kid\":\"%s\",\"created\":5,\"retired\":6}]}", "no \"retired\""},
        {"{\"keys\":[{\"kid\":\"%s\",\"created\":5,\"extra\":1}]}", "extra"},
        {"{\"keys\":[{\"kid\":\"%s\",\"created\":5}],\"more\":1}", "more"},
        {"{\"keys\":[{\"kid\":\"%s\"}]}", "created"},
        {"{\"keys\":[{\"kid\":\"%s\",\"created\":-5}]}", "Unix seconds"},
        {"{\"keys\":[{\"kid\":\"../../etc/passwd\",\"created\":5}]}", "thumbprint"},
        {"{\"keys\":[{\"kid\":\"%s\",\"created\":5},{\"kid\":\"%s\",\"created\":5,"
         "\"retired\":6}]}",
         "twice"},
        {"{\"keys\":[{\"kid\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"created\":5}]}",
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.pem"},
        {"not json", "keys.json"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        char text[512];
        snprintf(text, sizeof text, bad[i].text, kid, kid);
        write_text(manifest, text);
        ks = NULL;
        int rc = tk_keys_load(dir, true, 1000, &ks, err, sizeof err);
        CHECK(rc != 0 && ks == NULL);
        if (strstr(err, bad[i].why) == NULL || strstr(err, "keys") == NULL) {
            fprintf(stderr, "case %zu: message \"%s\" lacks \"%s\"\n", i, err, bad[i].why);
            CHECK(false);
        }
    }
    /* A key file holding another key than its name says. */
    char other[TK_KID_LEN + 1];
    unsigned dropped;
    char text[512];
    snprintf(text, sizeof text, "{\"keys\":[{\"kid\":\"%s\",\"created\":5}]}", kid);
    write_text(manifest, text);
    CHECK_EQ_INT(tk_keys_rotate(dir, 2000, other, &dropped, err, sizeof err), 0);
    char other_path[512];
    snprintf(other_path, sizeof other_path, "%s/keys/%s.pem", dir, other);
    CHECK_EQ_INT(rename(path, other_path), 0); /* the old key under the new name */
    ks = NULL;
    CHECK_EQ_INT(tk_keys_load(dir, false, 1000, &ks, err, sizeof err), TK_E_BADINPUT);
    CHECK(ks == NULL && strstr(err, "thumbprint") != NULL && strstr(err, other) != NULL);
    /* A manifest naming a key whose file is gone. */
    snprintf(text, sizeof text, "{\"keys\":[{\"kid\":\"%s\",\"created\":5}]}", kid);
    write_text(manifest, text);
    CHECK_EQ_INT(tk_keys_load(dir, false, 1000, &ks, err, sizeof err), -ENOENT);
    CHECK(ks == NULL && strstr(err, kid) != NULL);
    remove_tree(dir);
}

int main(void)
{
    RUN(test_thumbprint);
    RUN(test_first_key_and_reload);
    RUN(test_rotate_and_cap);
    RUN(test_retire_now);
    RUN(test_publishing);
    RUN(test_sign_verifies);
    RUN(test_sign_pkey);
    RUN(test_refused);
    return check_report();
}
