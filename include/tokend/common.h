/*
 * Types and conventions every tokend module shares: byte slices, the single
 * error space (0 or a negative errno / negative TK_E_* code), and the always-on
 * assertion that turns a broken invariant into a crash with a location.
 */
#ifndef TOKEND_COMMON_H
#define TOKEND_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* A borrowed run of bytes. Who owns the memory, and for how long it stays
 * valid, is stated by whichever function hands the slice out. */
typedef struct tk_slice {
    const char *p;
    size_t len;
} tk_slice;

#define TK_SLICE_LIT(s) ((tk_slice){(s), sizeof(s) - 1})
#define TK_SLICE_NULL   ((tk_slice){NULL, 0})

bool tk_slice_eq(tk_slice a, tk_slice b);
/* n bytes at a and b equal, ignoring the case of ASCII letters (exactly:
 * no other byte folds); it stops at the first differing word. */
bool tk_mem_eq_nocase(const char *a, const char *b, size_t n);

/* The lengths are compared first, inline: for a literal s its length is a
 * constant, so most mismatches cost one compare and no call. */
static inline bool tk_slice_eq_str(tk_slice a, const char *s)
{
    size_t n = __builtin_strlen(s);
    return a.len == n && (n == 0 || __builtin_memcmp(a.p, s, n) == 0);
}

/* ASCII case-insensitive comparison (HTTP header names, schemes). */
static inline bool tk_slice_eq_nocase(tk_slice a, const char *s)
{
    size_t n = __builtin_strlen(s);
    return a.len == n && tk_mem_eq_nocase(a.p, s, n);
}
tk_slice tk_slice_from_str(const char *s);

#define TK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The value of an ASCII hexadecimal digit (either case), or -1. */
static inline int tk_hex_digit(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * Project error codes. Functions that can fail return 0 on success or a
 * negative value: either -errno (as io_uring's cqe->res does) or one of these.
 * tk_strerror() names both kinds.
 */
enum tk_error {
    TK_E_NOTFOUND = -20001,    /* no such record / parameter */
    TK_E_CORRUPT = -20002,     /* a stored record or input failed strict decoding */
    TK_E_FULL = -20003,        /* the LMDB map is full (MDB_MAP_FULL) */
    TK_E_STORE = -20004,       /* any other LMDB failure; details were logged */
    TK_E_TOOBIG = -20005,      /* a value exceeds its limit (see limits.h) */
    TK_E_BADINPUT = -20006,    /* malformed input */
    TK_E_DUPLICATE = -20007,   /* a parameter that may appear once appeared twice */
    TK_E_QUEUEFULL = -20008,   /* the committer queue is full: answer 503 */
    TK_E_AUTH = -20009,        /* caller authentication failed */
    TK_E_FORBIDDEN = -20010,   /* authenticated, but not allowed */
    TK_E_EXISTS = -20011,      /* a record that must be new already exists */
    TK_E_INVALID = -20012,     /* a request that is well-formed but not acceptable */
    TK_E_READERS = -20013,     /* LMDB reader table full (MDB_READERS_FULL) */
    TK_E_UNAVAILABLE = -20014, /* cluster mode: the op log did not take the write: answer 503 */
};

/* A static, human-readable name for any error value (never NULL). */
const char *tk_strerror(int err);

/* Always-on assertion: prints the expression, file and line, then aborts. */
_Noreturn void tk_assert_fail(const char *expr, const char *file, int line);
#define TK_ASSERT(e) ((e) ? (void)0 : tk_assert_fail(#e, __FILE__, __LINE__))

#define TK_LIKELY(x)   __builtin_expect(!!(x), 1)
#define TK_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
