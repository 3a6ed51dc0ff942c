/*
 * libFuzzer target for the form decoder. The input goes to tk_form_parse
 * with a few wanted fields (one of them with room for nothing but the NUL)
 * and to tk_form_unescape at several buffer sizes. Besides the sanitizers,
 * it checks the contract's invariants and compares every result with a
 * deliberately naive reference decoder written from form.h alone.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/form.h"
#include "tokend/limits.h"

#include <stdlib.h>
#include <string.h>

#define NFIELDS 4

static const char *const names[NFIELDS] = {"token", "client_id", "client_secret", "a"};
static const size_t caps[NFIELDS] = {64, 8, 1, 300};

/* ---- Reference: split first, then decode, no cleverness -------------------- */

static int ref_hex(unsigned char c)
{
    const char *digits = "0123456789abcdef0123456789ABCDEF";
    const char *hit = c != 0 ? strchr(digits, c) : NULL;
    return hit == NULL ? -1 : (int)((hit - digits) % 16);
}

/* Decode p[0..n) into out (room for n bytes); -1 on a bad escape or NUL. */
static long ref_decode(const char *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= n || ref_hex((unsigned char)p[i + 1]) < 0 ||
                ref_hex((unsigned char)p[i + 2]) < 0) {
                return -1;
            }
            c = ref_hex((unsigned char)p[i + 1]) * 16 + ref_hex((unsigned char)p[i + 2]);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0) {
            return -1;
        }
        out[o++] = (char)c;
    }
    return (long)o;
}

struct ref_field {
    bool present;
    size_t len;
    char *val;
};

static int ref_pair(const char *seg, size_t n, struct ref_field *rf, char *scratch)
{
    const char *eq = memchr(seg, '=', n);
    size_t nlen = eq != NULL ? (size_t)(eq - seg) : n;
    long dn = ref_decode(seg, nlen, scratch);
    if (dn < 0) {
        return TK_E_BADINPUT;
    }
    int hit = -1;
    for (int f = 0; f < NFIELDS; f++) {
        if (strlen(names[f]) == (size_t)dn && memcmp(names[f], scratch, (size_t)dn) == 0) {
            hit = f;
        }
    }
    if (hit >= 0 && rf[hit].present) {
        return TK_E_DUPLICATE;
    }
    const char *v = eq != NULL ? eq + 1 : seg + n;
    long dv = ref_decode(v, (size_t)(seg + n - v), scratch);
    if (dv < 0) {
        return TK_E_BADINPUT;
    }
    if (hit >= 0) {
        if ((size_t)dv >= caps[hit]) {
            return TK_E_TOOBIG;
        }
        memcpy(rf[hit].val, scratch, (size_t)dv);
        rf[hit].len = (size_t)dv;
        rf[hit].present = true;
    }
    return 0;
}

static int ref_parse(const char *body, size_t len, struct ref_field *rf, char *scratch)
{
    size_t pairs = 0;
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - body) : len;
        if (end > i) {
            if (++pairs > TK_FORM_PAIRS_MAX) {
                return TK_E_BADINPUT;
            }
            int rc = ref_pair(body + i, end - i, rf, scratch);
            if (rc != 0) {
                return rc;
            }
        }
        i = end + 1;
    }
    return 0;
}

/* ---- Checks --------------------------------------------------------------- */

static void check_parse(const char *data, size_t size)
{
    char bufs[NFIELDS][301]; /* one canary byte past the largest cap */
    tk_form_field fields[NFIELDS];
    for (int f = 0; f < NFIELDS; f++) {
        memset(bufs[f], 'Q', sizeof(bufs[f]));
        fields[f] = (tk_form_field){.name = names[f], .buf = bufs[f], .cap = caps[f]};
    }
    int rc = tk_form_parse(data, size, fields, NFIELDS);
    TK_ASSERT(rc == 0 || rc == TK_E_BADINPUT || rc == TK_E_DUPLICATE || rc == TK_E_TOOBIG);
    for (int f = 0; f < NFIELDS; f++) {
        TK_ASSERT(fields[f].len < fields[f].cap);
        TK_ASSERT(bufs[f][fields[f].len] == '\0');
        TK_ASSERT(strlen(bufs[f]) == fields[f].len); /* no NUL inside a value */
        TK_ASSERT(bufs[f][fields[f].cap] == 'Q');    /* nothing past cap */
        TK_ASSERT(rc == 0 || (!fields[f].present && fields[f].len == 0));
        TK_ASSERT(fields[f].present || fields[f].len == 0);
    }
    char *scratch = malloc(size + 1);
    char vals[NFIELDS][300];
    struct ref_field rf[NFIELDS];
    for (int f = 0; f < NFIELDS; f++) {
        rf[f] = (struct ref_field){.val = vals[f]};
    }
    int ref = ref_parse(data, size, rf, scratch);
    free(scratch);
    TK_ASSERT(ref == rc);
    for (int f = 0; rc == 0 && f < NFIELDS; f++) {
        TK_ASSERT(rf[f].present == fields[f].present);
        TK_ASSERT(rf[f].len == fields[f].len);
        TK_ASSERT(memcmp(rf[f].val, bufs[f], rf[f].len) == 0);
    }
}

static void check_unescape(const char *data, size_t size)
{
    size_t full = size + 1;
    char *big = malloc(full);
    size_t big_len = 12345;
    int rc_big = tk_form_unescape(data, size, big, full, &big_len);
    TK_ASSERT(rc_big == 0 || rc_big == TK_E_BADINPUT); /* size + 1 always fits */
    TK_ASSERT(big_len < full && big[big_len] == '\0');
    TK_ASSERT(rc_big == 0 || big_len == 0);
    if (rc_big == 0) {
        TK_ASSERT(strlen(big) == big_len);
    }
    const size_t small_caps[] = {0, 1, 2, 16, big_len, big_len + 1};
    for (size_t i = 0; i < TK_ARRAY_LEN(small_caps); i++) {
        size_t cap = small_caps[i];
        char *out = malloc(cap + 1); /* +1: a canary ASan does not see */
        out[cap] = 'Q';
        size_t len = 12345;
        int rc = tk_form_unescape(data, size, out, cap, &len);
        TK_ASSERT(out[cap] == 'Q');
        TK_ASSERT(rc == 0 || len == 0);
        if (cap > 0) {
            TK_ASSERT(len < cap && out[len] == '\0');
        }
        if (rc == 0) {
            TK_ASSERT(rc_big == 0 && len == big_len && memcmp(out, big, len) == 0);
        } else if (rc_big == 0) {
            TK_ASSERT(rc == TK_E_TOOBIG && cap <= big_len);
        } else {
            /* a bad escape may be found before or after the buffer fills */
            TK_ASSERT(rc == TK_E_BADINPUT || rc == TK_E_TOOBIG);
        }
        free(out);
    }
    free(big);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of the exact length, so any over-read is caught. */
    char *copy = malloc(size > 0 ? size : 1);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    check_parse(copy, size);
    check_unescape(copy, size);
    free(copy);
    return 0;
}
