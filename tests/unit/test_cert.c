/*
 * Unit tests for src/util/cert.c: the canonical subject DN (every rule of
 * cert.h, and every rejection) and the forwarded-certificate parser (nginx's
 * URL-encoded PEM and RFC 9440's sf-binary, with one certificate made by the
 * openssl CLI and its SHA-256 from `openssl x509 -outform DER | sha256sum`),
 * and configured thumbprints (hex or base64url).
 */
#include "check.h"

#include "tokend/cert.h"
#include "tokend/crypto.h"

#include <stdio.h>
#include <string.h>

static const char pem[] = "-----BEGIN CERTIFICATE-----\n"
                          "MIIBozCCAUmgAwIBAgIUE7Wj1JP7G9bLFmJN4Gx1ZvJ0DOcwCgYIKoZIzj0EAwIw\n"
                          "JzEUMBIGA1UECgwLRXhhbXBsZSBPcmcxDzANBgNVBAMMBnJzIG9uZTAeFw0yNjEy\n"
                          "MDIwNjEzMDZaFw0zNjExMjkwNjEzMDZaMCcxFDASBgNVBAoMC0V4YW1wbGUgT3Jn\n"
                          "MQ8wDQYDVQQDDAZycyBvbmUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATr4aUH\n"
                          "KOo6hORWc9M8pMH+61+dcWewb07zvXrrlpLK3794mNhps/jB09buQt7Yq+MLR6YH\n"
                          "p8dKkxyfFTwcbPEOo1MwUTAdBgNVHQ4EFgQU5UGpdl8EQMtZRp9T3G8kQxusfSYw\n"
                          "HwYDVR0jBBgwFoAU5UGpdl8EQMtZRp9T3G8kQxusfSYwDwYDVR0TAQH/BAUwAwEB\n"
                          "/zAKBggqhkjOPQQDAgNIADBFAiEAz9XY/Fn2nU6zZxhVhBMPwXguARO6SFZlAIZ8\n"
                          "JDny7WoCIAfaP2gw5aWv1kaEBAqjS5isstBS3zCMplhp41v+esZw\n"
                          "-----END CERTIFICATE-----\n";
static const char der_b64[] =
    "MIIBozCCAUmgAwIBAgIUE7Wj1JP7G9bLFmJN4Gx1ZvJ0DOcwCgYIKoZIzj0EAwIwJzEUMBIGA1UECgwLRXhhbXBsZSBPcm"
    "cxDzANBgNVBAMMBnJzIG9uZTAeFw0yNjEyMDIwNjEzMDZaFw0zNjExMjkwNjEzMDZaMCcxFDASBgNVBAoMC0V4YW1wbGUg"
    "T3JnMQ8wDQYDVQQDDAZycyBvbmUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATr4aUHKOo6hORWc9M8pMH+61+"
    "dcWewb07zvXrrlpLK3794mNhps/"
    "jB09buQt7Yq+"
    "MLR6YHp8dKkxyfFTwcbPEOo1MwUTAdBgNVHQ4EFgQU5UGpdl8EQMtZRp9T3G8kQxusfSYwHwYDVR0jBBgwFoAU5UGpdl8E"
    "QMtZRp9T3G8kQxusfSYwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAz9XY/"
    "Fn2nU6zZxhVhBMPwXguARO6SFZlAIZ8JDny7WoCIAfaP2gw5aWv1kaEBAqjS5isstBS3zCMplhp41v+esZw";
static const char want_hex[] = "b4d87b6aef380fa00013de41308bcea546f70a36105b862fd6d892a4062eb330";

static char canon_buf[TK_CERT_DN_MAX + 1];

static const char *canon(const char *in)
{
    size_t n = 0;
    int rc = tk_cert_dn_canon(tk_slice_from_str(in), canon_buf, sizeof canon_buf, &n);
    if (rc != 0) {
        return rc == TK_E_TOOBIG ? "<toobig>" : "<bad>";
    }
    CHECK_EQ_INT(n, strlen(canon_buf));
    return canon_buf;
}

static void test_dn_canon(void)
{
    CHECK_EQ_STR(canon("CN=rs one,O=Example Org"), "CN=rs one,O=example org");
    /* the same DN written differently: one canonical form */
    const char *same[] = {"cn=RS ONE, o=Example Org", " CN = rs  one ,O=Example\\20Org ",
                          "Cn=\\52S one,o=EXAMPLE ORG", "CN=rs one,O=Example Org   "};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        CHECK_EQ_STR(canon(same[i]), "CN=rs one,O=example org");
    }
    /* order matters, and a different value differs */
    CHECK_EQ_STR(canon("O=Example Org,CN=rs one"), "O=example org,CN=rs one");
    CHECK(strcmp(canon("CN=rs two,O=Example Org"), "CN=rs one,O=example org") != 0);
    /* escapes survive in one spelling */
    CHECK_EQ_STR(canon("CN=a\\,b,O=x\\+y"), "CN=a\\,b,O=x\\+y");
    CHECK_EQ_STR(canon("CN=a\\2cb"), "CN=a\\,b");
    CHECK_EQ_STR(canon("CN=a=b"), "CN=a\\=b");
    CHECK_EQ_STR(canon("CN=x+UID=Y"), "CN=x+UID=y");
    CHECK_EQ_STR(canon("2.5.4.3=Z"), "2.5.4.3=z");
    CHECK_EQ_STR(canon("CN=#04024869"), "CN=#04024869");
    CHECK_EQ_STR(canon("CN=#04024869 ,O=x"), "CN=#04024869,O=x");
    CHECK_EQ_STR(canon("CN=\\C3\\A9t\\C3\\A9"), "CN=\xc3\xa9t\xc3\xa9");
    CHECK_EQ_STR(canon("CN="), "CN=");
    CHECK_EQ_STR(canon("CN=\\#x"), "CN=\\#x"); /* a leading # stays escaped */
    CHECK_EQ_STR(canon("CN=x#"), "CN=x#");
    /* rejections */
    const char *bad[] = {"",         "CN",      "=x",      "CN=x,",    "CN=x+",
                         ",CN=x",    "CN=a\"b", "CN=a;b",  "CN=a<b",   "CN=a>b",
                         "CN=a\\",   "CN=a\\q", "CN=a\\4", "CN=a\\4g", "CN=a\\00",
                         "CN=a\x01", "C N=x",   "1.=x",    "1..2=x",   ".1=x",
                         "CN=#0",    "CN=#",    "CN=#zz",  "CN=x;O=y", "-CN=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_STR(canon(bad[i]), "<bad>");
    }
    /* size bound: the exact fit passes, one more byte is TOOBIG */
    char big[TK_CERT_DN_MAX + 8];
    memcpy(big, "CN=", 3);
    memset(big + 3, 'a', TK_CERT_DN_MAX - 3);
    big[TK_CERT_DN_MAX] = '\0';
    CHECK_EQ_INT(strlen(canon(big)), TK_CERT_DN_MAX);
    big[TK_CERT_DN_MAX] = 'a';
    big[TK_CERT_DN_MAX + 1] = '\0';
    CHECK_EQ_STR(canon(big), "<toobig>");
}

/* %XX-encode every byte that is not a letter or digit, as nginx does. */
static size_t url_encode(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in != '\0'; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-') {
            CHECK(n + 1 < cap);
            out[n++] = (char)c;
        } else {
            CHECK(n + 3 < cap);
            snprintf(out + n, 4, "%%%02X", c);
            n += 3;
        }
    }
    out[n] = '\0';
    return n;
}

static int fwd(const char *v, uint8_t out[TK_HASH_LEN])
{
    return tk_cert_forwarded(tk_slice_from_str(v), out);
}

static void hex(const uint8_t *h, char *out)
{
    for (size_t i = 0; i < TK_HASH_LEN; i++) {
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    }
}

static char enc[8192];

static void test_forwarded(void)
{
    uint8_t h[TK_HASH_LEN];
    char hx[2 * TK_HASH_LEN + 1];
    url_encode(pem, enc, sizeof enc);
    CHECK_EQ_INT(fwd(enc, h), 0);
    hex(h, hx);
    CHECK_EQ_STR(hx, want_hex);
    /* raw base64 characters left unescaped (only newlines must be) */
    char mixed[8192];
    size_t m = 0;
    for (const char *p = pem; *p != '\0'; p++) {
        if (*p == '\n') {
            memcpy(mixed + m, "%0A", 3);
            m += 3;
        } else if (*p == ' ') {
            memcpy(mixed + m, "%20", 3);
            m += 3;
        } else {
            mixed[m++] = *p;
        }
    }
    mixed[m] = '\0';
    CHECK_EQ_INT(fwd(mixed, h), 0);
    hex(h, hx);
    CHECK_EQ_STR(hx, want_hex);
    /* without the trailing newline, and with CRLF */
    char v[8192];
    snprintf(v, sizeof v, "%.*s", (int)(strlen(pem) - 1), pem);
    url_encode(v, enc, sizeof enc);
    CHECK_EQ_INT(fwd(enc, h), 0);
    /* RFC 9440 */
    snprintf(v, sizeof v, ":%s:", der_b64);
    CHECK_EQ_INT(fwd(v, h), 0);
    hex(h, hx);
    CHECK_EQ_STR(hx, want_hex);

    /* rejections: each a small change of a good value */
    const char *bad_pem[] = {
        "",
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    };
    for (size_t i = 0; i < sizeof bad_pem / sizeof bad_pem[0]; i++) {
        url_encode(bad_pem[i], enc, sizeof enc);
        CHECK_EQ_INT(fwd(enc, h), TK_E_BADINPUT);
    }
    struct {
        const char *find, *repl;
    } edits[] = {
        {"-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\n\n"}, /* empty line */
        {"-----BEGIN CERTIFICATE-----\n", "x-----BEGIN CERTIFICATE-----\n"},  /* prefix */
        {"-----END CERTIFICATE-----\n", "-----END CERTIFICATE-----\nx"},      /* trailer */
        {"-----END CERTIFICATE-----\n", "-----END CERTIFICATE-----\n\n"},
        {"-----END CERTIFICATE-----\n", "-----END CERTIFICATE----\n"},
        {"MIIBoz", "MIIBo z"},  /* a space */
        {"MIIBoz", "MIIBo\rz"}, /* bare CR */
        {"MIIBoz", "MIIBo=z"},  /* padding inside */
        {"MIIBoz", "MIIBozAA"}, /* DER length */
        {"MIIBoz", "MIIBo"},    /* base64 length */
        {"esZw\n", "esZw\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIB\n"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *at = strstr(pem, edits[i].find);
        CHECK(at != NULL);
        snprintf(v, sizeof v, "%.*s%s%s", (int)(at - pem), pem, edits[i].repl,
                 at + strlen(edits[i].find));
        url_encode(v, enc, sizeof enc);
        if (fwd(enc, h) != TK_E_BADINPUT) {
            fprintf(stderr, "edit %zu accepted\n", i);
            CHECK(0);
        }
    }
    /* a bad escape, a raw newline or other byte, an unterminated %X */
    url_encode(pem, enc, sizeof enc);
    size_t n = strlen(enc);
    const char *tails[] = {"%", "%0", "%zz", "\n", "!", "%00"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        snprintf(v, sizeof v, "%.*s%s", (int)n, enc, tails[i]);
        CHECK_EQ_INT(fwd(v, h), TK_E_BADINPUT);
    }
    /* RFC 9440 rejections */
    snprintf(v, sizeof v, ":%s", der_b64);
    CHECK_EQ_INT(fwd(v, h), TK_E_BADINPUT);
    snprintf(v, sizeof v, ":%sAAAA:", der_b64);
    CHECK_EQ_INT(fwd(v, h), TK_E_BADINPUT);
    CHECK_EQ_INT(fwd("::", h), TK_E_BADINPUT);
    CHECK_EQ_INT(fwd(":MAE=:", h), TK_E_BADINPUT); /* SEQUENCE of length 1, no byte */
    CHECK_EQ_INT(fwd(":MAAA:", h), TK_E_BADINPUT); /* one byte past the SEQUENCE */
    CHECK_EQ_INT(fwd(":MAA:", h), TK_E_BADINPUT);  /* bad padding */
    CHECK_EQ_INT(fwd(":MAA=", h), TK_E_BADINPUT);
    /* a DER over TK_CERT_DER_MAX is refused before decoding */
    static char huge[(TK_CERT_DER_MAX + 3) / 3 * 4 + 16];
    huge[0] = ':';
    memset(huge + 1, 'A', sizeof huge - 3);
    huge[sizeof huge - 2] = ':';
    huge[sizeof huge - 1] = '\0';
    CHECK_EQ_INT(fwd(huge, h), TK_E_BADINPUT);
}

static char san_buf[TK_CERT_SAN_MAX + 1];

static const char *san(const char *in)
{
    size_t n = 0;
    int rc = tk_cert_san_canon(tk_slice_from_str(in), san_buf, sizeof san_buf, &n);
    if (rc != 0) {
        return rc == TK_E_TOOBIG ? "<toobig>" : "<bad>";
    }
    CHECK_EQ_INT(n, strlen(san_buf));
    return san_buf;
}

/* Every kind, its canonical form, and the refusals of each rule. */
static void test_san_canon(void)
{
    CHECK_EQ_STR(san("dns:RS.Example.COM"), "dns:rs.example.com");
    CHECK_EQ_STR(san("dns:*.example.com"), "dns:*.example.com");
    CHECK_EQ_STR(san("dns:a-1.b"), "dns:a-1.b");
    CHECK_EQ_STR(san("uri:spiffe://Example.org/ns/RS"), "uri:spiffe://Example.org/ns/RS");
    CHECK_EQ_STR(san("email:Ops+rs@Example.ORG"), "email:Ops+rs@example.org");
    CHECK_EQ_STR(san("ip:192.0.2.7"), "ip:192.0.2.7");
    CHECK_EQ_STR(san("ip:2001:DB8:0:0:0:0:0:1"), "ip:2001:db8::1");
    CHECK_EQ_STR(san("ip:::ffff:192.0.2.7"), "ip:::ffff:192.0.2.7");
    static const char *const bad[] = {
        "",
        "dns:",
        "DNS:rs.example.com",
        "rs.example.com",
        "dns:rs..example.com",
        "dns:.example.com",
        "dns:example.com.",
        "dns:a*.example.com",
        "dns:*example.com",
        "dns:rs.*.com",
        "dns:rs_example.com",
        "dns:r s.com",
        "dns:\xc3\xa9.com",
        "uri:",
        "uri:noscheme",
        "uri::x",
        "uri:https://a b",
        "uri:https://a\tb",
        "email:",
        "email:rs",
        "email:@x",
        "email:rs@",
        "email:a@b@c",
        "email:r s@x",
        "ip:",
        "ip:192.0.2",
        "ip:192.0.2.256",
        "ip:example.com",
        "ip:1::2::3",
        "ip: 192.0.2.7",
        "x509:CN=rs",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_STR(san(bad[i]), "<bad>");
    }
    /* label and name lengths: 63 per label, 253 in all */
    char name[300] = "dns:";
    memset(name + 4, 'a', 63);
    name[67] = '\0';
    CHECK(strcmp(san(name), "<bad>") != 0);
    name[67] = 'a';
    name[68] = '\0';
    CHECK_EQ_STR(san(name), "<bad>");
    size_t len = 4;
    for (int l = 0; l < 4; l++) { /* 4 x 63 + 3 dots = 255 > 253: past TK_CERT_SAN_MAX too */
        memset(name + len, 'b', 63);
        len += 63;
        name[len++] = '.';
    }
    name[len - 1] = '\0';
    CHECK_EQ_STR(san(name), "<toobig>");
    char big[TK_CERT_SAN_MAX + 8] = "uri:x:";
    memset(big + 6, 'y', sizeof big - 7);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_STR(san(big), "<toobig>");
    /* the output buffer too small: refused, never truncated */
    char small[8];
    size_t n = 0;
    CHECK_EQ_INT(
        tk_cert_san_canon(tk_slice_from_str("dns:rs.example.com"), small, sizeof small, &n),
        TK_E_TOOBIG);
    CHECK_EQ_STR(small, "");
}

static void test_thumbprint_parse(void)
{
    static const char hex[] = "000102030405060708090A0B0C0D0E0F"
                              "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    uint8_t want[TK_HASH_LEN], got[TK_HASH_LEN];
    for (int i = 0; i < 16; i++) {
        want[i] = (uint8_t)i;
        want[16 + i] = (uint8_t)(0xf0 + i);
    }
    CHECK_EQ_INT(tk_cert_thumbprint_parse(TK_SLICE_LIT(hex), got), 0);
    CHECK(memcmp(got, want, TK_HASH_LEN) == 0);
    char b64[TK_SECRET_B64_LEN + 1];
    CHECK_EQ_INT(tk_b64url_encode(want, TK_HASH_LEN, b64, sizeof b64), 0);
    memset(got, 0, sizeof got);
    CHECK_EQ_INT(tk_cert_thumbprint_parse(tk_slice_from_str(b64), got), 0);
    CHECK(memcmp(got, want, TK_HASH_LEN) == 0);
    char bad[sizeof hex];
    memcpy(bad, hex, sizeof hex);
    bad[63] = 'g'; /* not a hex digit, and 64 characters are never base64url here */
    CHECK_EQ_INT(tk_cert_thumbprint_parse(TK_SLICE_LIT(bad), got), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_cert_thumbprint_parse((tk_slice){hex, 62}, got), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_cert_thumbprint_parse((tk_slice){b64, 42}, got), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_cert_thumbprint_parse(TK_SLICE_NULL, got), TK_E_BADINPUT);
}

int main(void)
{
    RUN(test_dn_canon);
    RUN(test_san_canon);
    RUN(test_forwarded);
    RUN(test_thumbprint_parse);
    return check_report();
}
