/*
 * The Accept matcher behind RFC 9701 signed introspection (src/endpoints/
 * signed.c, ep_accepts): which Accept values ask for a signed answer. The
 * media type must be the exact type of one element (ASCII case-insensitive);
 * parameters are ignored except q=0, which refuses it; wildcards, other
 * types, prefixes and quoted look-alikes do not match.
 */
#include "check.h"

#include "../../src/endpoints/endpoints_int.h"

#include <stdlib.h>

#define JWT "application/token-introspection+jwt"

static bool acc(const char *v)
{
    return ep_accepts((tk_slice){v, strlen(v)}, JWT);
}

static void test_matches(void)
{
    static const char *const yes[] = {
        JWT,
        "Application/Token-Introspection+JWT",
        " " JWT " ",
        "\t" JWT,
        "application/json, " JWT,
        JWT ", application/json",
        "text/html,application/xhtml+xml,," JWT,
        JWT ";q=1",
        JWT ";q=0.5",
        JWT " ; q=0.001",
        JWT ";charset=utf-8",
        JWT ";q=0.0001", /* not a valid qvalue: not a refusal either */
        JWT ";q=",
        JWT ";q=1;q=0.5",
        "text/plain; x=\"a,b\", " JWT,
        "text/plain; x=\"a\\\"," JWT "\", " JWT, /* an escaped quote inside */
        JWT ";q=0, " JWT,                        /* refused once, asked again */
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(yes); i++) {
        if (!acc(yes[i])) {
            fprintf(stderr, "should match: [%s]\n", yes[i]);
            CHECK(false);
        }
    }
}

static void test_no_match(void)
{
    static const char *const no[] = {
        "",
        " ",
        ",",
        "*/*",
        "application/*",
        "application/json",
        "application/jwt",
        "application/token-introspection",
        "application/token-introspection+json",
        JWT "x",
        "x" JWT,
        JWT "/",
        "application /token-introspection+jwt",
        JWT ";q=0",
        JWT "; Q=0",
        JWT ";q=0.0",
        JWT ";q = 0.00",
        JWT ";q=0.000",
        JWT ";charset=utf-8;q=0",
        "application/json; x=\"" JWT "\"",
        "application/json; x=\"a, " JWT "\"",
        "\"" JWT "\"",
        "application/json;" JWT,
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(no); i++) {
        if (acc(no[i])) {
            fprintf(stderr, "should not match: [%s]\n", no[i]);
            CHECK(false);
        }
    }
}

/* Every prefix of a matching value is read within its bounds (ASan checks
 * the slice: the copy below has no byte after it). */
static void test_truncations(void)
{
    const char *v = "text/plain; x=\"a,b\", " JWT ";q=0.5";
    size_t n = strlen(v);
    for (size_t k = 0; k <= n; k++) {
        char *copy = malloc(k + 1);
        TK_ASSERT(copy != NULL);
        memcpy(copy, v, k);
        bool got = ep_accepts((tk_slice){copy, k}, JWT);
        free(copy);
        size_t full = strlen("text/plain; x=\"a,b\", " JWT);
        /* Matches once the whole type is there, except while the cut
         * weight reads ";q=0" or ";q=0." (a refusal). */
        CHECK_EQ_INT(got, k >= full && k != full + 4 && k != full + 5);
    }
}

int main(void)
{
    RUN(test_matches);
    RUN(test_no_match);
    RUN(test_truncations);
    return check_report();
}
