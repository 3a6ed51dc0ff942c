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

bool tk_slice_eq_str(tk_slice a, const char *s)
{
    return tk_slice_eq(a, tk_slice_from_str(s));
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool tk_slice_eq_nocase(tk_slice a, const char *s)
{
    size_t n = strlen(s);
    if (a.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(a.p[i]) != ascii_lower(s[i])) {
            return false;
        }
    }
    return true;
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
