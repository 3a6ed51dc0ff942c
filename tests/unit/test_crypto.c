/*
 * Unit tests for the util basics (common, clock, log) and crypto: published
 * test vectors (RFC 4648 §10, RFC 7636 appendix B, FIPS 180-2 "abc"), every
 * rejection of the strict base64 decoders, and the secret/id formats.
 */
#include "check.h"

#include "tokend/clock.h"
#include "tokend/common.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- common ---------------------------------------------------------------- */

static void test_slices(void)
{
    tk_slice a = TK_SLICE_LIT("token");
    CHECK(tk_slice_eq(a, tk_slice_from_str("token")));
    CHECK(!tk_slice_eq(a, TK_SLICE_LIT("toke")));
    CHECK(!tk_slice_eq(a, TK_SLICE_LIT("tokeN")));
    CHECK(tk_slice_eq(TK_SLICE_NULL, TK_SLICE_LIT("")));
    CHECK(tk_slice_eq_str(a, "token"));
    CHECK(!tk_slice_eq_str(a, "tokens"));
    CHECK(tk_slice_eq_nocase(TK_SLICE_LIT("Content-TYPE"), "content-type"));
    CHECK(!tk_slice_eq_nocase(TK_SLICE_LIT("Content-Typ"), "content-type"));
    CHECK(!tk_slice_eq_nocase(TK_SLICE_LIT("Content_Type"), "content-type"));
    CHECK(tk_slice_eq_nocase(TK_SLICE_NULL, ""));
    CHECK(tk_slice_from_str(NULL).p == NULL);
    CHECK_EQ_INT(tk_slice_from_str("abc").len, 3);
}

static char ref_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* tk_mem_eq_nocase against a byte-wise reference: every pair of byte values
 * at every position of strings of every length up to 24 (the short loop, the
 * words, the overlapping last word), so no byte folds onto another but a
 * letter's two cases. */
static void test_mem_eq_nocase(void)
{
    char a[24], b[24];
    long mismatches = 0;
    for (size_t n = 1; n <= sizeof a; n++) {
        for (size_t pos = 0; pos < n; pos += (n > 9 ? 3 : 1)) {
            for (int x = 0; x < 256; x++) {
                for (int y = 0; y < 256; y++) {
                    memset(a, 'q', n);
                    memset(b, 'Q', n);
                    a[pos] = (char)x;
                    b[pos] = (char)y;
                    bool want = ref_lower((char)x) == ref_lower((char)y);
                    if (tk_mem_eq_nocase(a, b, n) != want) {
                        mismatches++;
                    }
                }
            }
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(tk_mem_eq_nocase("application/x-www-form-urlencoded", "APPLICATION/X-WWW-FORM-URLENCODED",
                           33));
    CHECK(!tk_mem_eq_nocase("application/x-www-form-urlencodeD",
                            "application/x-www-form-urlencodex", 33));
    CHECK(tk_mem_eq_nocase("", "x", 0));
}

static void test_strerror(void)
{
    static const int codes[] = {TK_E_NOTFOUND, TK_E_CORRUPT,   TK_E_FULL,      TK_E_STORE,
                                TK_E_TOOBIG,   TK_E_BADINPUT,  TK_E_DUPLICATE, TK_E_QUEUEFULL,
                                TK_E_AUTH,     TK_E_FORBIDDEN, TK_E_EXISTS,    TK_E_INVALID,
                                TK_E_READERS};
    for (size_t i = 0; i < TK_ARRAY_LEN(codes); i++) {
        const char *s = tk_strerror(codes[i]);
        CHECK(s != NULL && strcmp(s, "unknown error") != 0);
        for (size_t k = 0; k < i; k++) {
            CHECK(strcmp(s, tk_strerror(codes[k])) != 0);
        }
    }
    CHECK_EQ_STR(tk_strerror(-ENOENT), "No such file or directory");
    CHECK_EQ_STR(tk_strerror(-EIO), "Input/output error");
    CHECK_EQ_STR(tk_strerror(0), "success");
    CHECK_EQ_STR(tk_strerror(-19999), "unknown error");
    CHECK_EQ_STR(tk_strerror(12345), "unknown error");
    CHECK_EQ_STR(tk_strerror(-4000), "unknown error");
}

static void test_assert_aborts(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(STDERR_FILENO); /* keep the expected message out of the log */
        TK_ASSERT(1 + 1 == 3);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    TK_ASSERT(1 + 1 == 2); /* a true assertion is silent */
}

/* ---- clock ----------------------------------------------------------------- */

static void test_clock(void)
{
    int64_t now = tk_now();
    CHECK(now > 1700000000); /* after 2023 */
    uint64_t a = tk_mono_ns();
    uint64_t b = tk_mono_ns();
    CHECK(b >= a);
    uint64_t ms = tk_mono_ms();
    CHECK(ms >= a / 1000000u && ms <= tk_mono_ns() / 1000000u);
}

/* ---- log ------------------------------------------------------------------- */

/* Run fn with fd 2 redirected to a temporary file; return what it wrote. */
static size_t capture_stderr(void (*fn)(void), char *out, size_t cap)
{
    char path[] = "/tmp/tk_test_log_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    close(fd);
    size_t len = n > 0 ? (size_t)n : 0;
    out[len] = '\0';
    return len;
}

static void log_basic(void)
{
    tk_log_info("revoke", "token=%s n=%d", "sha256:1a2b3c4d", 7);
}

static void log_filtered(void)
{
    tk_log_debug("noise", "x=%d", 1);
    tk_log_warn("kept", "x=%d", 2);
}

static void log_injection(void)
{
    tk_log_error("evil", "reason=\"%s\"", "a\nts=forged level=error\r\tb");
}

static void log_long(void)
{
    static char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tk_log_info("long", "v=%s", big);
}

static void log_long_utf8(void)
{
    /* 1000 two-byte characters: the cut must not split one. */
    static char big[2001];
    for (size_t i = 0; i < 1000; i++) {
        big[2 * i] = (char)0xc3;
        big[2 * i + 1] = (char)0xa9;
    }
    tk_log_info("long", "%s", big);
}

static void log_empty_rest(void)
{
    tk_log_info("bare", "%s", "");
}

static bool starts_with_ts(const char *s)
{
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    const char *shape = "ts=dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; shape[i] != '\0'; i++) {
        bool digit = s[i] >= '0' && s[i] <= '9';
        if (shape[i] == 'd' ? !digit : s[i] != shape[i]) {
            return false;
        }
    }
    return true;
}

static void test_log(void)
{
    char out[8192];
    size_t n = capture_stderr(log_basic, out, sizeof(out));
    CHECK(starts_with_ts(out));
    CHECK(strstr(out, " level=info event=revoke token=sha256:1a2b3c4d n=7\n") != NULL);
    CHECK(n > 0 && out[n - 1] == '\n');

    capture_stderr(log_filtered, out, sizeof(out));
    CHECK(strstr(out, "noise") == NULL);
    CHECK(strstr(out, "level=warn event=kept x=2\n") != NULL);

    tk_log_set_level(TK_LOG_ERROR);
    capture_stderr(log_basic, out, sizeof(out));
    CHECK_EQ_INT(strlen(out), 0);
    tk_log_set_level(TK_LOG_DEBUG);
    capture_stderr(log_filtered, out, sizeof(out));
    CHECK(strstr(out, "event=noise x=1\n") != NULL);
    tk_log_set_level(TK_LOG_INFO);

    n = capture_stderr(log_injection, out, sizeof(out));
    CHECK(strchr(out, '\n') == out + n - 1); /* exactly one line */
    CHECK(strstr(out, "reason=\"a ts=forged level=error  b\"\n") != NULL);

    n = capture_stderr(log_long, out, sizeof(out));
    CHECK(n <= 2048);
    CHECK(n > 2000);
    CHECK(strchr(out, '\n') == out + n - 1);
    CHECK(n > 4 && memcmp(out + n - 4, "\xe2\x80\xa6\n", 4) == 0);

    n = capture_stderr(log_long_utf8, out, sizeof(out));
    CHECK(n <= 2048 && n > 4 && memcmp(out + n - 4, "\xe2\x80\xa6\n", 4) == 0);
    const char *body = strstr(out, "event=long ") + strlen("event=long ");
    CHECK_EQ_INT((size_t)(out + n - 4 - body) % 2, 0); /* whole characters only */

    capture_stderr(log_empty_rest, out, sizeof(out));
    CHECK(strstr(out, "level=info event=bare\n") != NULL);
}

static void test_log_level_parse(void)
{
    enum tk_log_level l = TK_LOG_INFO;
    CHECK_EQ_INT(tk_log_level_parse("debug", &l), 0);
    CHECK_EQ_INT(l, TK_LOG_DEBUG);
    CHECK_EQ_INT(tk_log_level_parse("info", &l), 0);
    CHECK_EQ_INT(l, TK_LOG_INFO);
    CHECK_EQ_INT(tk_log_level_parse("warn", &l), 0);
    CHECK_EQ_INT(l, TK_LOG_WARN);
    CHECK_EQ_INT(tk_log_level_parse("error", &l), 0);
    CHECK_EQ_INT(l, TK_LOG_ERROR);
    CHECK_EQ_INT(tk_log_level_parse("ERROR", &l), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_log_level_parse("warning", &l), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_log_level_parse("", &l), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_log_level_parse(NULL, &l), TK_E_BADINPUT);
    CHECK_EQ_INT(l, TK_LOG_ERROR); /* untouched on error */
}

/* ---- SHA-256, comparison, randomness --------------------------------------- */

static void sha_hex(const char *s, char out[65])
{
    uint8_t h[TK_HASH_LEN];
    tk_sha256(s, strlen(s), h);
    tk_hex(h, sizeof(h), out);
}

static void test_sha256(void)
{
    char hex[65];
    sha_hex("abc", hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex("", hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha_hex("abc", hex); /* the reused context starts clean */
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_pkce_vector(void)
{
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    uint8_t h[TK_HASH_LEN];
    char challenge[64];
    tk_sha256(verifier, strlen(verifier), h);
    CHECK_EQ_INT(tk_b64url_encode(h, sizeof(h), challenge, sizeof(challenge)), 0);
    CHECK_EQ_STR(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

static void *sha_thread(void *arg)
{
    int *ok = arg;
    *ok = 1;
    for (int i = 0; i < 1000; i++) {
        char hex[65];
        sha_hex("abc", hex);
        if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0) {
            *ok = 0;
        }
    }
    return NULL;
}

static void test_sha256_threads(void)
{
    pthread_t t[4];
    int ok[4] = {0};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(pthread_create(&t[i], NULL, sha_thread, &ok[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(ok[i], 1);
    }
}

static void test_ct_equal_cleanse(void)
{
    CHECK(tk_ct_equal("abcdef", "abcdef", 6));
    CHECK(!tk_ct_equal("abcdef", "abcdeg", 6));
    CHECK(!tk_ct_equal("xbcdef", "abcdef", 6));
    CHECK(tk_ct_equal("a", "b", 0));
    char secret[16] = "hunter2hunter2!";
    tk_cleanse(secret, sizeof(secret));
    for (size_t i = 0; i < sizeof(secret); i++) {
        CHECK_EQ_INT(secret[i], 0);
    }
}

static void test_random(void)
{
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    CHECK_EQ_INT(tk_random_bytes(a, sizeof(a)), 0);
    CHECK_EQ_INT(tk_random_bytes(b, sizeof(b)), 0);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    CHECK(memcmp(a, zero, sizeof(a)) != 0);
    CHECK_EQ_INT(tk_random_bytes(a, 0), 0);
}

/* ---- base64 ----------------------------------------------------------------- */

static const struct {
    const char *plain, *b64, *b64url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_b64url_encode(void)
{
    char out[32];
    for (size_t i = 0; i < TK_ARRAY_LEN(rfc4648); i++) {
        size_t n = strlen(rfc4648[i].plain);
        CHECK_EQ_INT(tk_b64url_encoded_len(n), strlen(rfc4648[i].b64url));
        CHECK_EQ_INT(tk_b64url_encode(rfc4648[i].plain, n, out, sizeof(out)), 0);
        CHECK_EQ_STR(out, rfc4648[i].b64url);
    }
    const uint8_t url_chars[] = {0xfb, 0xff, 0xbf};
    CHECK_EQ_INT(tk_b64url_encode(url_chars, 3, out, sizeof(out)), 0);
    CHECK_EQ_STR(out, "-_-_");
    CHECK_EQ_INT(tk_b64url_encoded_len(32), TK_SECRET_B64_LEN);
    /* cap must hold the text and the NUL */
    CHECK_EQ_INT(tk_b64url_encode("foobar", 6, out, 9), 0);
    CHECK_EQ_INT(tk_b64url_encode("foobar", 6, out, 8), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_b64url_encode("", 0, out, 1), 0);
    CHECK_EQ_INT(tk_b64url_encode("", 0, out, 0), TK_E_TOOBIG);
}

static void test_b64url_decode(void)
{
    uint8_t out[32];
    size_t len = 99;
    for (size_t i = 0; i < TK_ARRAY_LEN(rfc4648); i++) {
        const char *in = rfc4648[i].b64url;
        CHECK_EQ_INT(tk_b64url_decode(in, strlen(in), out, sizeof(out), &len), 0);
        CHECK_EQ_INT(len, strlen(rfc4648[i].plain));
        CHECK(memcmp(out, rfc4648[i].plain, len) == 0);
    }
    CHECK_EQ_INT(tk_b64url_decode("-_-_", 4, out, sizeof(out), &len), 0);
    CHECK(len == 3 && out[0] == 0xfb && out[1] == 0xff && out[2] == 0xbf);

    static const char *const bad[] = {
        "Zg==",  /* padding is not base64url */
        "Zm8=",  /* idem */
        "Zm9v=", /* idem */
        "Zm9vY", /* 5 characters: a lone 6-bit group */
        "Z",     /* idem */
        "Zh",    /* trailing bits not zero (canonical is "Zg") */
        "Zm9",   /* trailing bits not zero (canonical is "Zm8") */
        "+/8",   /* standard alphabet */
        "Zm 9v", /* whitespace */
        "Zm9v\n", "Zm.v",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        len = 99;
        CHECK_EQ_INT(tk_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &len),
                     TK_E_BADINPUT);
        CHECK_EQ_INT(len, 0);
    }
    CHECK_EQ_INT(tk_b64url_decode("Zm\0v", 4, out, sizeof(out), &len), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_b64url_decode("Zm9vYmFy", 8, out, 6, &len), 0);
    CHECK_EQ_INT(tk_b64url_decode("Zm9vYmFy", 8, out, 5, &len), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_b64url_decode("Zm8", 3, out, 1, &len), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_b64url_decode(NULL, 0, out, 0, &len), 0);
    CHECK_EQ_INT(len, 0);
}

static void test_b64_decode(void)
{
    uint8_t out[32];
    size_t len = 99;
    for (size_t i = 0; i < TK_ARRAY_LEN(rfc4648); i++) {
        const char *in = rfc4648[i].b64;
        CHECK_EQ_INT(tk_b64_decode(in, strlen(in), out, sizeof(out), &len), 0);
        CHECK_EQ_INT(len, strlen(rfc4648[i].plain));
        CHECK(memcmp(out, rfc4648[i].plain, len) == 0);
    }
    CHECK_EQ_INT(tk_b64_decode("+/+/", 4, out, sizeof(out), &len), 0);
    CHECK(len == 3 && out[0] == 0xfb && out[1] == 0xff && out[2] == 0xbf);
    /* "client:secret" as HTTP Basic sends it */
    CHECK_EQ_INT(tk_b64_decode("Y2xpZW50OnNlY3JldA==", 20, out, sizeof(out), &len), 0);
    CHECK(len == 13 && memcmp(out, "client:secret", 13) == 0);

    static const char *const bad[] = {
        "Zg",       /* padding missing */
        "Zm8",      /* idem */
        "Zg=",      /* padding short */
        "Zg===",    /* too much padding */
        "Z===",     /* three '=' */
        "====",     /* idem */
        "Zg=a",     /* '=' inside */
        "=Zg=",     /* '=' first */
        "Zm9v====", /* a padding-only group */
        "Zh==",     /* trailing bits not zero */
        "Zm9=",     /* idem */
        "-_-_",     /* url alphabet */
        "Zm9v\r\n", /* whitespace */
        " Zm9v",    "Zm9vY",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        len = 99;
        CHECK_EQ_INT(tk_b64_decode(bad[i], strlen(bad[i]), out, sizeof(out), &len), TK_E_BADINPUT);
        CHECK_EQ_INT(len, 0);
    }
    CHECK_EQ_INT(tk_b64_decode("Zm9vYg==", 8, out, 4, &len), 0);
    CHECK_EQ_INT(tk_b64_decode("Zm9vYg==", 8, out, 3, &len), TK_E_TOOBIG);
}

/* ---- hex, secrets, ids ----------------------------------------------------- */

static void test_hex(void)
{
    char out[16];
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xff, 0x7e};
    tk_hex(in, sizeof(in), out);
    CHECK_EQ_STR(out, "0001abff7e");
    tk_hex(in, 0, out);
    CHECK_EQ_STR(out, "");
}

static void check_secret(enum tk_secret_kind kind, const char *prefix)
{
    char s[TK_TOKEN_LEN + 1];
    char t[TK_TOKEN_LEN + 1];
    uint8_t h[TK_HASH_LEN], h2[TK_HASH_LEN], expect[TK_HASH_LEN];
    CHECK_EQ_INT(tk_secret_new(kind, s, sizeof(s), h), 0);
    CHECK_EQ_INT(strlen(s), TK_TOKEN_LEN);
    CHECK_EQ_INT(strlen(s), 50);
    CHECK(strncmp(s, prefix, TK_TOKEN_PREFIX_LEN) == 0);
    tk_sha256(s, strlen(s), expect);
    CHECK(memcmp(h, expect, sizeof(h)) == 0);
    uint8_t raw[TK_SECRET_BYTES + 1];
    size_t len = 0;
    CHECK_EQ_INT(
        tk_b64url_decode(s + TK_TOKEN_PREFIX_LEN, TK_SECRET_B64_LEN, raw, sizeof(raw), &len), 0);
    CHECK_EQ_INT(len, TK_SECRET_BYTES);
    CHECK_EQ_INT(tk_secret_new(kind, t, sizeof(t), h2), 0);
    CHECK(strcmp(s, t) != 0);
    CHECK(memcmp(h, h2, sizeof(h)) != 0);
}

static void test_secret_new(void)
{
    check_secret(TK_SECRET_ACCESS, "tkd_at_");
    check_secret(TK_SECRET_REFRESH, "tkd_rt_");
    check_secret(TK_SECRET_CLIENT, "tkd_cs_");
    /* Two at once (one draw): each of its kind, hashed, and distinct. */
    char a[TK_TOKEN_LEN + 1], r[TK_TOKEN_LEN + 1];
    uint8_t ha[TK_HASH_LEN], hr[TK_HASH_LEN], expect[TK_HASH_LEN];
    static const enum tk_secret_kind kinds[] = {TK_SECRET_ACCESS, TK_SECRET_REFRESH};
    char *const out[] = {a, r};
    uint8_t *const hash[] = {ha, hr};
    CHECK_EQ_INT(tk_secrets_new(2, kinds, out, hash), 0);
    CHECK(strlen(a) == TK_TOKEN_LEN && strncmp(a, "tkd_at_", TK_TOKEN_PREFIX_LEN) == 0);
    CHECK(strlen(r) == TK_TOKEN_LEN && strncmp(r, "tkd_rt_", TK_TOKEN_PREFIX_LEN) == 0);
    CHECK(strcmp(a + TK_TOKEN_PREFIX_LEN, r + TK_TOKEN_PREFIX_LEN) != 0);
    tk_sha256(a, TK_TOKEN_LEN, expect);
    CHECK(memcmp(ha, expect, TK_HASH_LEN) == 0);
    tk_sha256(r, TK_TOKEN_LEN, expect);
    CHECK(memcmp(hr, expect, TK_HASH_LEN) == 0);
}

static void test_id_new(void)
{
    char id[TK_ID_MAX];
    char id2[TK_ID_MAX];
    CHECK_EQ_INT(tk_id_new("tkc_", id, sizeof(id)), 0);
    CHECK_EQ_INT(strlen(id), 4 + 22);
    CHECK(strncmp(id, "tkc_", 4) == 0);
    uint8_t raw[17];
    size_t len = 0;
    CHECK_EQ_INT(tk_b64url_decode(id + 4, 22, raw, sizeof(raw), &len), 0);
    CHECK_EQ_INT(len, 16);
    CHECK_EQ_INT(tk_id_new("tkc_", id2, sizeof(id2)), 0);
    CHECK(strcmp(id, id2) != 0);
    CHECK_EQ_INT(tk_id_new("tks_", id, 27), 0);
    CHECK_EQ_INT(strlen(id), 26);
    CHECK_EQ_INT(tk_id_new("tks_", id, 26), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_id_new("", id, 23), 0);
    CHECK_EQ_INT(strlen(id), 22);
}

static void test_hash_ref(void)
{
    uint8_t h[TK_HASH_LEN];
    char ref[16];
    memset(ref, 'X', sizeof(ref));
    tk_sha256("abc", 3, h);
    tk_hash_ref(h, ref);
    CHECK_EQ_STR(ref, "sha256:ba7816bf");
    CHECK_EQ_INT(strlen(ref), 15);
}

int main(void)
{
    RUN(test_slices);
    RUN(test_mem_eq_nocase);
    RUN(test_strerror);
    RUN(test_assert_aborts);
    RUN(test_clock);
    RUN(test_log);
    RUN(test_log_level_parse);
    RUN(test_sha256);
    RUN(test_pkce_vector);
    RUN(test_sha256_threads);
    RUN(test_ct_equal_cleanse);
    RUN(test_random);
    RUN(test_b64url_encode);
    RUN(test_b64url_decode);
    RUN(test_b64_decode);
    RUN(test_hex);
    RUN(test_secret_new);
    RUN(test_id_new);
    RUN(test_hash_ref);
    return check_report();
}
