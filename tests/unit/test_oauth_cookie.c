/*
 * Unit tests for the browser-session cookie: finding ours among others
 * (RFC 6265 §4.2.1 framing), every malformed header, a planted duplicate,
 * foreign cookies that browsers send as stored, the bound, and the
 * Set-Cookie value with its attributes.
 */
#include "check.h"

#include "tokend/crypto.h"
#include "tokend/oauth_cookie.h"

#include <stdio.h>
#include <stdlib.h>

#define V  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 43 base64url characters */
#define V2 "Zm9vYmFyLV9fLS1fXy0tX18tLV9fLS1fXy0tX18tLV8"
#define N  TK_OAUTH_COOKIE_NAME

static tk_slice got;

static int find(const char *h)
{
    got = (tk_slice){"poison", 6};
    return tk_oauth_cookie_find(tk_slice_from_str(h), &got);
}

static void test_find(void)
{
    CHECK_EQ_INT(find(N "=" V), 0);
    CHECK_SLICE(got, V);
    CHECK_EQ_INT(find("a=1; " N "=" V "; b=2"), 0);
    CHECK_SLICE(got, V);
    CHECK_EQ_INT(find("a=1; b=2; " N "=" V2), 0);
    CHECK_SLICE(got, V2);
    /* foreign cookies as browsers store them: spaces, quotes, commas, JSON, '=' */
    CHECK_EQ_INT(find("a=1 ; " N "=" V), 0); /* "1 ": a foreign value may hold spaces */
    CHECK_EQ_INT(find("pref={\"a\":[1,2]}; x=\"q\"; y=a b; z=; e==x=; " N "=" V), 0);
    CHECK_SLICE(got, V);
    /* names that only look like ours */
    CHECK_EQ_INT(find("__Host-tokend-sessio=" V "; __host-tokend-session=" V), TK_E_NOTFOUND);
    CHECK(got.p == NULL);
    CHECK_EQ_INT(find(N "x=" V "; x" N "=" V "; __Secure-tokend-session=" V), TK_E_NOTFOUND);
    CHECK_EQ_INT(find("a=1"), TK_E_NOTFOUND);
}

static void test_refusals(void)
{
    const char *bad[] = {
        "",
        ";",
        N "=" V ";",                                      /* trailing separator */
        N "=" V "; ",                                     /* trailing separator */
        "a=1;" N "=" V,                                   /* no space after ';' */
        "a=1;  " N "=" V,                                 /* two spaces */
        " " N "=" V,                                      /* leading space */
        N "=",                                            /* our value empty */
        N "=" V "A",                                      /* 44 characters */
        N "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* 42 */
        N "=\"" V "\"",                                   /* quoted */
        N "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* padding */
        N "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", /* base64, not base64url */
        N "= " V,
        N " =" V,
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        int rc = find(bad[i]);
        if (rc != TK_E_BADINPUT) {
            fprintf(stderr, "case %zu: %d\n", i, rc);
        }
        CHECK_EQ_INT(rc, TK_E_BADINPUT);
        CHECK(got.p == NULL && got.len == 0);
    }
    /* a NUL byte */
    got = (tk_slice){"x", 1};
    CHECK_EQ_INT(tk_oauth_cookie_find((tk_slice){"a=\0; " N "=" V, 5 + sizeof(N) + 43}, &got),
                 TK_E_BADINPUT);
    /* our cookie twice (a planted one): refused, even with equal values */
    CHECK_EQ_INT(find(N "=" V "; " N "=" V2), TK_E_DUPLICATE);
    CHECK(got.p == NULL);
    CHECK_EQ_INT(find(N "=" V "; a=1; " N "=" V), TK_E_DUPLICATE);
    /* ... even when the second one is malformed */
    CHECK_EQ_INT(find(N "=" V "; " N "=x"), TK_E_DUPLICATE);
}

/* Another application's malformed cookies (browsers send UTF-8 values and
 * pairs without '=') are skipped: refusing the whole header would sign the
 * user out for good. Ours is still found, and still checked strictly. */
static void test_foreign_malformed_skipped(void)
{
    const char *ok[] = {
        "=1; " N "=" V,         /* empty name */
        "a; " N "=" V,          /* no '=' */
        "a b=1; " N "=" V,      /* space in a name */
        "a\"=1; " N "=" V,      /* quote in a name */
        "a=\x01; " N "=" V,     /* control in a value */
        "a=\t; " N "=" V,       /* tab */
        "a=\xc3\xa9; " N "=" V, /* non-ASCII */
        "a=\x7f; " N "=" V,     /* DEL */
        N "=" V "; x=\xc3\xa9", /* after ours */
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(ok); i++) {
        CHECK_EQ_INT(find(ok[i]), 0);
        CHECK(got.len == 43 && memcmp(got.p, V, 43) == 0);
    }
    CHECK_EQ_INT(find(" "), TK_E_NOTFOUND); /* a lone foreign "pair": no cookie of ours */
    /* Malformed but ours: still refused. */
    CHECK_EQ_INT(find("a=\xc3\xa9; " N " =" V), TK_E_BADINPUT);
    CHECK_EQ_INT(find("a=\xc3\xa9; " N), TK_E_BADINPUT);
}

static void test_bound(void)
{
    size_t cap = TK_OAUTH_COOKIE_HEADER_MAX;
    char *h = malloc(cap + 2);
    /* pad=xxxx…; <ours> exactly at the limit */
    const char *tail = "; " N "=" V;
    size_t tl = strlen(tail);
    memcpy(h, "pad=", 4);
    memset(h + 4, 'x', cap - 4 - tl);
    memcpy(h + cap - tl, tail, tl);
    got = TK_SLICE_NULL;
    CHECK_EQ_INT(tk_oauth_cookie_find((tk_slice){h, cap}, &got), 0);
    CHECK_SLICE(got, V);
    memset(h + 4, 'x', cap + 1 - 4 - tl);
    memcpy(h + cap + 1 - tl, tail, tl);
    CHECK_EQ_INT(tk_oauth_cookie_find((tk_slice){h, cap + 1}, &got), TK_E_TOOBIG);
    CHECK(got.p == NULL);
    free(h);
}

static void test_set_cookie(void)
{
    char out[TK_OAUTH_SET_COOKIE_MAX];
    size_t len = 99;
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V), 3600, out, sizeof out, &len), 0);
    CHECK_EQ_STR(out, N "=" V "; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax");
    CHECK_EQ_INT(len, strlen(out));
    /* what we set, a browser sends back, and we find */
    char header[128];
    snprintf(header, sizeof header, "%.*s", (int)(strchr(out, ';') - out), out);
    CHECK_EQ_INT(find(header), 0);
    CHECK_SLICE(got, V);
    /* a fresh random value round-trips */
    uint8_t rnd[TK_SECRET_BYTES];
    char val[TK_OAUTH_COOKIE_VALUE_LEN + 1];
    CHECK_EQ_INT(tk_random_bytes(rnd, sizeof rnd), 0);
    CHECK_EQ_INT(tk_b64url_encode(rnd, sizeof rnd, val, sizeof val), 0);
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(val), 400 * 86400, out, sizeof out, &len),
                 0);
    /* clearing: empty value, Max-Age=0 */
    CHECK_EQ_INT(tk_oauth_cookie_set(TK_SLICE_NULL, 0, out, sizeof out, &len), 0);
    CHECK_EQ_STR(out, N "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax");
    /* refusals */
    CHECK_EQ_INT(tk_oauth_cookie_set(TK_SLICE_NULL, 10, out, sizeof out, &len), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V), -1, out, sizeof out, &len),
                 TK_E_BADINPUT);
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V), 400 * 86400 + 1, out, sizeof out, &len),
                 TK_E_BADINPUT);
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V "A"), 1, out, sizeof out, &len),
                 TK_E_BADINPUT);
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA;"
                                                       "A"),
                                     1, out, sizeof out, &len),
                 TK_E_BADINPUT);
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_STR(out, "");
    /* a buffer one byte short, then exactly enough */
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V), 3600, out, sizeof out, &len), 0);
    size_t need = len + 1;
    char small[TK_OAUTH_SET_COOKIE_MAX];
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V), 3600, small, need - 1, &len),
                 TK_E_TOOBIG);
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V), 3600, small, need, &len), 0);
    CHECK_EQ_INT(tk_oauth_cookie_set(tk_slice_from_str(V), 3600, small, 0, &len), TK_E_TOOBIG);
}

int main(void)
{
    RUN(test_find);
    RUN(test_refusals);
    RUN(test_foreign_malformed_skipped);
    RUN(test_bound);
    RUN(test_set_cookie);
    return check_report();
}
