/*
 * The shared vocabulary: slice comparisons, the one error space, and the
 * always-on assertion. tk_strerror() names project codes itself and errno
 * values through glibc's static descriptions, so it is safe from any thread.
 */
#include "tokend/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool tk_slice_eq(tk_slice a, tk_slice b)
{
    if (a.len != b.len) {
        return false;
    }
    return a.len == 0 || memcmp(a.p, b.p, a.len) == 0;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* x with every ASCII upper-case letter made lower-case, eight lanes at once:
 * in each lane's low seven bits, adding 0x3f sets bit 7 from 'A' up and adding
 * 0x25 from 'Z' + 1 up (neither carries out of the lane); their difference,
 * outside bytes with bit 7 already set, marks exactly 'A'..'Z'. */
static uint64_t fold_word(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t low7 = x & ~high;
    uint64_t from_a = low7 + ones * (0x80 - 'A');
    uint64_t past_z = low7 + ones * (0x80 - 'Z' - 1);
    uint64_t upper = (from_a ^ past_z) & ~x & high;
    return x | (upper >> 2); /* bit 7 of the lane -> bit 5 (0x20) */
}

static uint64_t word_at(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

bool tk_mem_eq_nocase(const char *a, const char *b, size_t n)
{
    if (n < 8) {
        for (size_t i = 0; i < n; i++) {
            if (ascii_lower(a[i]) != ascii_lower(b[i])) {
                return false;
            }
        }
        return true;
    }
    for (size_t i = 0; i + 8 < n; i += 8) {
        if (fold_word(word_at(a + i)) != fold_word(word_at(b + i))) {
            return false;
        }
    }
    /* the last eight bytes, overlapping the previous word when n % 8 != 0 */
    return fold_word(word_at(a + n - 8)) == fold_word(word_at(b + n - 8));
}

tk_slice tk_slice_from_str(const char *s)
{
    if (s == NULL) {
        return TK_SLICE_NULL;
    }
    return (tk_slice){s, strlen(s)};
}

static const char *project_error(int err)
{
    switch (err) {
    case TK_E_NOTFOUND:
        return "not found";
    case TK_E_CORRUPT:
        return "corrupt record or input";
    case TK_E_FULL:
        return "store map full";
    case TK_E_STORE:
        return "store failure";
    case TK_E_TOOBIG:
        return "value too big";
    case TK_E_BADINPUT:
        return "malformed input";
    case TK_E_DUPLICATE:
        return "duplicate parameter";
    case TK_E_QUEUEFULL:
        return "commit queue full";
    case TK_E_AUTH:
        return "authentication failed";
    case TK_E_FORBIDDEN:
        return "forbidden";
    case TK_E_EXISTS:
        return "already exists";
    case TK_E_INVALID:
        return "invalid request";
    case TK_E_READERS:
        return "store reader table full";
    case TK_E_UNAVAILABLE:
        return "cluster op log unavailable";
    default:
        return NULL;
    }
}

const char *tk_strerror(int err)
{
    if (err == 0) {
        return "success";
    }
    const char *s = project_error(err);
    if (s != NULL) {
        return s;
    }
    if (err < 0 && err > -4096) {
        /* strerrordesc_np returns a static, untranslated string (or NULL),
         * unlike strerror, whose buffer for unknown codes is shared. */
        s = strerrordesc_np(-err);
        if (s != NULL) {
            return s;
        }
    }
    return "unknown error";
}

_Noreturn void tk_assert_fail(const char *expr, const char *file, int line)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "tokend: assertion failed: %s (%s:%d)\n", expr, file, line);
    if (n > 0) {
        size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
        ssize_t w = write(STDERR_FILENO, buf, len);
        (void)w;
    }
    abort();
}
