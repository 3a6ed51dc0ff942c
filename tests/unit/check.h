/*
 * The unit-test harness: CHECK records a failure and goes on, so one run
 * shows every broken case; RUN runs one test function; the last line is
 * "N passed, N failed" and the exit code is 0 only when nothing failed.
 */
#ifndef TOKEND_TEST_CHECK_H
#define TOKEND_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_passed_tests;
static int check_failed_tests;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, check_a_, check_b_);                                                   \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (strcmp(check_a_, check_b_) != 0) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, check_a_, check_b_);                                         \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

/* A slice (tk_slice) equal to a C string. */
#define CHECK_SLICE(s, str)                                                                        \
    do {                                                                                           \
        const char *check_b_ = (str);                                                              \
        if ((s).len != strlen(check_b_) || memcmp((s).p, check_b_, (s).len) != 0) {                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == \"%s\" (got \"%.*s\")\n", __FILE__,        \
                    __LINE__, #s, check_b_, (int)(s).len, (s).p ? (s).p : "");                     \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int check_before_ = check_failures;                                                        \
        fn();                                                                                      \
        if (check_failures == check_before_) {                                                     \
            check_passed_tests++;                                                                  \
        } else {                                                                                   \
            check_failed_tests++;                                                                  \
            fprintf(stderr, "FAIL %s\n", #fn);                                                     \
        }                                                                                          \
    } while (0)

static inline int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed_tests, check_failed_tests);
    return check_failed_tests == 0 ? 0 : 1;
}

#endif
