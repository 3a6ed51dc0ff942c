/*
 * Unit tests for the form decoder: the happy paths of RFC 7662/7009 bodies,
 * and the negative space — every malformed escape, NUL bytes, duplicates,
 * values one byte too long, the pair limit — plus tk_form_unescape.
 */
#include "check.h"

#include "tokend/common.h"
#include "tokend/form.h"
#include "tokend/limits.h"

#include <stdlib.h>

enum { F_TOKEN, F_HINT, F_ID, F_NFIELDS };

static char token_buf[64], hint_buf[32], id_buf[8];

static void setup(tk_form_field f[F_NFIELDS])
{
    f[F_TOKEN] = (tk_form_field){.name = "token", .buf = token_buf, .cap = sizeof(token_buf)};
    f[F_HINT] =
        (tk_form_field){.name = "token_type_hint", .buf = hint_buf, .cap = sizeof(hint_buf)};
    f[F_ID] = (tk_form_field){.name = "client_id", .buf = id_buf, .cap = sizeof(id_buf)};
    /* Poison: the parser must reset every field itself. */
    memset(token_buf, 'Q', sizeof(token_buf));
    memset(hint_buf, 'Q', sizeof(hint_buf));
    memset(id_buf, 'Q', sizeof(id_buf));
    for (int i = 0; i < F_NFIELDS; i++) {
        f[i].len = 99;
        f[i].present = true;
    }
}

static int parse(const char *body, tk_form_field f[F_NFIELDS])
{
    setup(f);
    return tk_form_parse(body, strlen(body), f, F_NFIELDS);
}

static void check_reset(const tk_form_field f[F_NFIELDS])
{
    for (int i = 0; i < F_NFIELDS; i++) {
        CHECK(!f[i].present);
        CHECK_EQ_INT(f[i].len, 0);
        CHECK_EQ_STR(f[i].buf, "");
    }
}

static void test_basic(void)
{
    tk_form_field f[F_NFIELDS];
    CHECK_EQ_INT(parse("token=tkd_at_abc&token_type_hint=access_token", f), 0);
    CHECK(f[F_TOKEN].present);
    CHECK_EQ_STR(f[F_TOKEN].buf, "tkd_at_abc");
    CHECK_EQ_INT(f[F_TOKEN].len, 10);
    CHECK(f[F_HINT].present);
    CHECK_EQ_STR(f[F_HINT].buf, "access_token");
    CHECK(!f[F_ID].present);
    CHECK_EQ_INT(f[F_ID].len, 0);
    CHECK_EQ_STR(f[F_ID].buf, "");

    /* order does not matter; unknown fields are ignored */
    CHECK_EQ_INT(parse("foo=bar&token_type_hint=x&extra&token=t&zzz=%41", f), 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "t");
    CHECK_EQ_STR(f[F_HINT].buf, "x");

    CHECK_EQ_INT(parse("", f), 0);
    check_reset(f);
    setup(f);
    CHECK_EQ_INT(tk_form_parse(NULL, 0, f, F_NFIELDS), 0);
    check_reset(f);
    CHECK_EQ_INT(tk_form_parse("token=a", 7, NULL, 0), 0);
}

static void test_decoding(void)
{
    tk_form_field f[F_NFIELDS];
    CHECK_EQ_INT(parse("token=a+b%2Fc%2fd%20e%7E", f), 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "a b/c/d e~");
    CHECK_EQ_INT(f[F_TOKEN].len, 10);
    CHECK_EQ_INT(parse("token=%26%3D%2B%25", f), 0); /* escaped separators */
    CHECK_EQ_STR(f[F_TOKEN].buf, "&=+%");
    CHECK_EQ_INT(parse("token=a=b=c", f), 0); /* '=' in a value is literal */
    CHECK_EQ_STR(f[F_TOKEN].buf, "a=b=c");
    CHECK_EQ_INT(parse("token=%C3%A9", f), 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "\xc3\xa9");
    CHECK_EQ_INT(parse("tok%65n=named+by+escape", f), 0); /* names are decoded */
    CHECK_EQ_STR(f[F_TOKEN].buf, "named by escape");
    CHECK_EQ_INT(parse("client%5Fid=c", f), 0);
    CHECK_EQ_STR(f[F_ID].buf, "c");
    CHECK_EQ_INT(parse("Token=a&token+=b&+token=c", f), 0); /* exact names only */
    CHECK(!f[F_TOKEN].present);
}

static void test_empty_values_and_pairs(void)
{
    tk_form_field f[F_NFIELDS];
    CHECK_EQ_INT(parse("token=", f), 0);
    CHECK(f[F_TOKEN].present);
    CHECK_EQ_INT(f[F_TOKEN].len, 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "");
    CHECK_EQ_INT(parse("token", f), 0); /* no '=': empty value */
    CHECK(f[F_TOKEN].present);
    CHECK_EQ_INT(f[F_TOKEN].len, 0);
    CHECK_EQ_INT(parse("&&token=x&&&client_id=y&", f), 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "x");
    CHECK_EQ_STR(f[F_ID].buf, "y");
    CHECK_EQ_INT(parse("=x&token=y&=", f), 0); /* empty names match nothing */
    CHECK_EQ_STR(f[F_TOKEN].buf, "y");
    CHECK_EQ_INT(parse("&&&&", f), 0);
    check_reset(f);
}

static void test_bad_escapes(void)
{
    static const char *const bad[] = {
        "token=%",
        "token=%4",
        "token=%zz",
        "token=%4g",
        "token=%g4",
        "token=abc%",
        "token=%%41",
        "token=%+4",
        "token=%-1",
        "token=a%2",
        "to%ken=a",
        "%=a",
        "x=%zz&token=a", /* an unwanted value is still validated */
        "token=a&x=%",   /* even after the wanted fields were filled */
        "token=a&%zz",   /* a bad name without a value */
        "token=%00",     /* decoded NUL */
        "x=%00&token=a", /* decoded NUL in a field nobody asked for */
        "token=%&a",     /* '%' followed by a separator */
        "token=%2&client_id=x",
    };
    tk_form_field f[F_NFIELDS];
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        int rc = parse(bad[i], f);
        if (rc != TK_E_BADINPUT) {
            fprintf(stderr, "  body: %s -> %d\n", bad[i], rc);
        }
        CHECK_EQ_INT(rc, TK_E_BADINPUT);
        check_reset(f);
    }
}

static void test_raw_nul(void)
{
    tk_form_field f[F_NFIELDS];
    static const char body[] = "token=a\0b";
    setup(f);
    CHECK_EQ_INT(tk_form_parse(body, sizeof(body) - 1, f, F_NFIELDS), TK_E_BADINPUT);
    check_reset(f);
    static const char body2[] = "x=\0&token=a";
    setup(f);
    CHECK_EQ_INT(tk_form_parse(body2, sizeof(body2) - 1, f, F_NFIELDS), TK_E_BADINPUT);
    /* the length is honoured: bytes after len are not read */
    setup(f);
    CHECK_EQ_INT(tk_form_parse("token=abc%zz", 9, f, F_NFIELDS), 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "abc");
}

static void test_duplicates(void)
{
    tk_form_field f[F_NFIELDS];
    CHECK_EQ_INT(parse("token=a&token=b", f), TK_E_DUPLICATE);
    check_reset(f);
    CHECK_EQ_INT(parse("token=a&token=a", f), TK_E_DUPLICATE);
    CHECK_EQ_INT(parse("token&token", f), TK_E_DUPLICATE);
    CHECK_EQ_INT(parse("token=&token=x", f), TK_E_DUPLICATE);
    CHECK_EQ_INT(parse("token=a&tok%65n=b", f), TK_E_DUPLICATE);
    CHECK_EQ_INT(parse("client_id=a&token=x&client_id=b", f), TK_E_DUPLICATE);
    CHECK_EQ_INT(parse("x=1&x=2&token=t", f), 0); /* unwanted repeats are fine */
    CHECK_EQ_STR(f[F_TOKEN].buf, "t");
    /* the first error in body order wins */
    CHECK_EQ_INT(parse("token=a&token=b&x=%zz", f), TK_E_DUPLICATE);
    CHECK_EQ_INT(parse("x=%zz&token=a&token=b", f), TK_E_BADINPUT);
}

static void test_too_long(void)
{
    tk_form_field f[F_NFIELDS];
    /* id_buf holds 7 bytes + NUL */
    CHECK_EQ_INT(parse("client_id=1234567", f), 0);
    CHECK_EQ_STR(f[F_ID].buf, "1234567");
    CHECK_EQ_INT(f[F_ID].len, 7);
    CHECK_EQ_INT(parse("client_id=12345678", f), TK_E_TOOBIG);
    check_reset(f);
    /* the limit is on the decoded length */
    CHECK_EQ_INT(parse("client_id=%41%42%43%44%45%46%47", f), 0);
    CHECK_EQ_STR(f[F_ID].buf, "ABCDEFG");
    CHECK_EQ_INT(parse("client_id=%41%42%43%44%45%46%47%48", f), TK_E_TOOBIG);
    CHECK_EQ_INT(parse("client_id=%41%42%43%44%45%46%47+", f), TK_E_TOOBIG);
    CHECK_EQ_INT(parse("token=t&client_id=123456789012345678901234567890", f), TK_E_TOOBIG);
    check_reset(f);
    /* unwanted values have no length limit of their own */
    char body[4096];
    memset(body, 'a', sizeof(body) - 1);
    memcpy(body, "other=", 6);
    body[sizeof(body) - 1] = '\0';
    CHECK_EQ_INT(parse(body, f), 0);
    /* a long name cannot match any wanted field, and is still validated */
    memset(body, 'n', 200);
    strcpy(body + 200, "=v&token=t");
    CHECK_EQ_INT(parse(body, f), 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "t");
    memcpy(body + 100, "%zz", 3);
    CHECK_EQ_INT(parse(body, f), TK_E_BADINPUT);
}

/* A body of n pairs "a=1&a=1&…", the wanted token last. */
static size_t pairs_body(char *out, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        memcpy(out + len, "a=1&", 4);
        len += 4;
    }
    memcpy(out + len, "token=t", 8);
    return len + 7;
}

/* A field marked binary takes NUL bytes (used by length); names and other
 * fields still refuse them. */
static void test_binary_field(void)
{
    tk_form_field f[F_NFIELDS];
    setup(f);
    f[F_TOKEN].binary = true;
    const char body[] = "token=a%00b&client_id=c";
    CHECK_EQ_INT(tk_form_parse(body, strlen(body), f, F_NFIELDS), 0);
    CHECK(f[F_TOKEN].present);
    CHECK_EQ_INT(f[F_TOKEN].len, 3);
    CHECK(memcmp(f[F_TOKEN].buf, "a\0b", 3) == 0);
    CHECK_EQ_STR(f[F_ID].buf, "c");
    setup(f);
    f[F_TOKEN].binary = true;
    const char bad_other[] = "token=a%00b&client_id=c%00";
    CHECK_EQ_INT(tk_form_parse(bad_other, strlen(bad_other), f, F_NFIELDS), TK_E_BADINPUT);
    check_reset(f);
    setup(f);
    f[F_TOKEN].binary = true;
    const char bad_name[] = "tok%00en=a";
    CHECK_EQ_INT(tk_form_parse(bad_name, strlen(bad_name), f, F_NFIELDS), TK_E_BADINPUT);
}

static void test_pair_limit(void)
{
    tk_form_field f[F_NFIELDS];
    char body[(TK_FORM_PAIRS_MAX + 2) * 4 + 16];
    size_t len = pairs_body(body, TK_FORM_PAIRS_MAX);
    setup(f);
    CHECK_EQ_INT(tk_form_parse(body, len, f, F_NFIELDS), 0);
    CHECK_EQ_STR(f[F_TOKEN].buf, "t");
    len = pairs_body(body, TK_FORM_PAIRS_MAX + 1);
    setup(f);
    CHECK_EQ_INT(tk_form_parse(body, len, f, F_NFIELDS), TK_E_BADINPUT);
    check_reset(f);
    /* empty pairs do not count */
    char sparse[TK_FORM_PAIRS_MAX * 6 + 16];
    size_t n = 0;
    for (size_t i = 0; i < TK_FORM_PAIRS_MAX; i++) {
        memcpy(sparse + n, "&&a=1&", 6);
        n += 6;
    }
    setup(f);
    CHECK_EQ_INT(tk_form_parse(sparse, n, f, F_NFIELDS), 0);
    memcpy(sparse + n, "b", 1);
    setup(f);
    CHECK_EQ_INT(tk_form_parse(sparse, n + 1, f, F_NFIELDS), TK_E_BADINPUT);
}

static void test_unescape(void)
{
    char out[16];
    size_t len = 99;
    CHECK_EQ_INT(tk_form_unescape("my%20client+id", 14, out, sizeof(out), &len), 0);
    CHECK_EQ_STR(out, "my client id");
    CHECK_EQ_INT(len, 12);
    /* separators are plain bytes here */
    CHECK_EQ_INT(tk_form_unescape("a&b=c%3A%3a", 11, out, sizeof(out), &len), 0);
    CHECK_EQ_STR(out, "a&b=c::");
    CHECK_EQ_INT(tk_form_unescape("", 0, out, sizeof(out), &len), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_INT(tk_form_unescape(NULL, 0, out, 1, &len), 0);
    CHECK_EQ_STR(out, "");
    /* exact fit, then one byte too many */
    CHECK_EQ_INT(tk_form_unescape("abc", 3, out, 4, &len), 0);
    CHECK_EQ_STR(out, "abc");
    CHECK_EQ_INT(tk_form_unescape("abcd", 4, out, 4, &len), TK_E_TOOBIG);
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(tk_form_unescape("%41%42%43", 9, out, 4, &len), 0);
    CHECK_EQ_STR(out, "ABC");
    CHECK_EQ_INT(tk_form_unescape("a", 1, out, 0, &len), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_form_unescape("", 0, out, 0, &len), TK_E_TOOBIG);

    static const char *const bad[] = {"%", "%4", "%zz", "a%", "a%4", "%4z", "%00", "x%00y"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        len = 99;
        memset(out, 'Q', sizeof(out));
        CHECK_EQ_INT(tk_form_unescape(bad[i], strlen(bad[i]), out, sizeof(out), &len),
                     TK_E_BADINPUT);
        CHECK_EQ_INT(len, 0);
        CHECK_EQ_STR(out, "");
    }
    CHECK_EQ_INT(tk_form_unescape("a\0b", 3, out, sizeof(out), &len), TK_E_BADINPUT);
}

/* Every byte value at every position of plain runs of 1 to 19 bytes (of
 * letters that are no hex digit; the decoder scans runs four bytes at a
 * time, then one by one), in a value and in a name, against the rules: NUL and a '%' not starting
 * an escape fail the body, '+' is a space, '&' ends the pair, '=' ends a name and is a plain byte
 * in a value, anything else is itself. */
static void test_every_byte_in_runs(void)
{
    tk_form_field f[F_NFIELDS];
    long wrong = 0;
    for (size_t n = 1; n < 20; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (int b = 0; b < 256; b++) {
                char body[64] = "token=", want[32];
                size_t len = 6;
                for (size_t k = 0; k < n; k++) {
                    body[len++] = k == pos ? (char)b : (char)('g' + k);
                    want[k] = k == pos ? (char)(b == '+' ? ' ' : b) : (char)('g' + k);
                }
                setup(f);
                int rc = tk_form_parse(body, len, f, F_NFIELDS);
                bool ok;
                if (b == 0 || b == '%') {
                    ok = rc == TK_E_BADINPUT && !f[F_TOKEN].present;
                } else if (b == '&') {
                    ok = rc == 0 && f[F_TOKEN].len == pos && memcmp(f[F_TOKEN].buf, want, pos) == 0;
                } else {
                    ok = rc == 0 && f[F_TOKEN].len == n && memcmp(f[F_TOKEN].buf, want, n) == 0 &&
                         f[F_TOKEN].buf[n] == '\0';
                }
                /* the same byte inside the name "token" + run: never a match,
                 * only the errors and the pair's end may change the outcome */
                char nbody[64] = "token";
                size_t nlen = 5;
                nbody[nlen++] = (char)b;
                nbody[nlen++] = '=';
                nbody[nlen++] = 'v';
                setup(f);
                int nrc = tk_form_parse(nbody, nlen, f, F_NFIELDS);
                bool nok = b == 0 || b == '%'     ? nrc == TK_E_BADINPUT
                           : b == '&' || b == '=' ? nrc == 0 && f[F_TOKEN].present
                                                  : nrc == 0 && !f[F_TOKEN].present;
                if (!ok || !nok) {
                    wrong++;
                }
            }
        }
    }
    CHECK_EQ_INT(wrong, 0);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_decoding);
    RUN(test_empty_values_and_pairs);
    RUN(test_bad_escapes);
    RUN(test_raw_nul);
    RUN(test_duplicates);
    RUN(test_too_long);
    RUN(test_binary_field);
    RUN(test_pair_limit);
    RUN(test_unescape);
    RUN(test_every_byte_in_runs);
    return check_report();
}
