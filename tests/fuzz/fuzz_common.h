/*
 * What every libFuzzer target in tests/fuzz shares: the prototypes of the
 * entry points libFuzzer calls (the build warns about a global function
 * defined without one), and EXPECT, the check a target states its
 * invariants with. A failed EXPECT prints the expression with its file and
 * line and aborts; libFuzzer reports the abort as a crash and saves the
 * input that caused it. EXPECT is always on: fuzz builds keep NDEBUG off,
 * but a check must not depend on that.
 */
#ifndef TOKEND_FUZZ_COMMON_H
#define TOKEND_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv); /* optional: defined by targets that seed */

static inline _Noreturn void fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    abort();
}

#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fuzz_fail(#c, __FILE__, __LINE__);                                                     \
        }                                                                                          \
    } while (0)

#endif
