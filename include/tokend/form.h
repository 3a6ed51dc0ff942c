/*
 * application/x-www-form-urlencoded decoding, in one pass, without
 * allocation. The caller names the fields it wants; unknown fields are
 * ignored (RFC 7662 §2.1, RFC 7009 §2.1) and a wanted field that appears
 * twice is an error (RFC 6749 §3.1: parameters must not repeat).
 */
#ifndef TOKEND_FORM_H
#define TOKEND_FORM_H

#include "tokend/common.h"

typedef struct tk_form_field {
    const char *name; /* in: field name to look for (exact, case-sensitive) */
    char *buf;        /* in: where the decoded value goes (NUL-terminated) */
    size_t cap;       /* in: size of buf, including room for the NUL */
    size_t len;       /* out: decoded length */
    bool present;     /* out: the field appeared */
    bool binary;      /* in: the value may hold NUL bytes (%00): it is used by
                         length only, never as a C string (e.g. a token that is
                         hashed: garbage must be answered as unknown, not 400) */
} tk_form_field;

/*
 * Decode body (len bytes, not NUL-terminated) into the wanted fields.
 * '+' decodes to space, %XX to the byte (hex digits of either case).
 * Returns 0 (fields filled, absent ones have present = false),
 * TK_E_BADINPUT (bad %-escape, NUL byte in a name or a non-binary value, or more than
 * TK_FORM_PAIRS_MAX pairs), TK_E_DUPLICATE (a wanted field repeated), or
 * TK_E_TOOBIG (a wanted value does not fit its buffer).
 * Strict: a bad %-escape or a NUL byte (raw or %00) anywhere in the body,
 * in names and in values of fields not wanted, is TK_E_BADINPUT. Names are
 * percent-decoded before matching. Empty pairs ("a&&b", a trailing '&')
 * are skipped and not counted; a pair without '=' has an empty value. The
 * first error in body order wins, and on any error every field is reset
 * (present = false, len = 0, buf = ""). Wanted names must be shorter than
 * 64 bytes. Thread-safe: touches only its arguments.
 */
int tk_form_parse(const char *body, size_t len, tk_form_field *fields, size_t nfields);

/* Percent-decode in[0..n) into out (cap includes the NUL); '+' becomes a
 * space. Used for client credentials in HTTP Basic (RFC 6749 §2.3.1).
 * Returns 0, TK_E_BADINPUT (bad escape, NUL byte) or TK_E_TOOBIG (cap too
 * small, including cap == 0); *out_len receives the length. On error out is
 * "" (when cap >= 1) and *out_len is 0. */
int tk_form_unescape(const char *in, size_t n, char *out, size_t cap, size_t *out_len);

#endif
