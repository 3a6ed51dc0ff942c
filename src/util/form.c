/*
 * application/x-www-form-urlencoded decoding in one pass over the body,
 * without allocation. Each pair's name is decoded into a small stack buffer
 * and matched against the wanted fields; a wanted value is decoded straight
 * into its field's buffer, any other value is only validated.
 *
 * Strictness, decided here and relied on by the endpoints:
 *  - a malformed %-escape ("%", "%4", "%zz") anywhere in the body, in a name
 *    or in any value, wanted or not, fails the whole body (TK_E_BADINPUT);
 *  - so does a NUL byte, raw or as %00, anywhere in the body, except in the
 *    value of a wanted field marked binary (used by length, never as a C
 *    string);
 *  - names are percent-decoded before matching ("tok%65n" is "token");
 *  - empty pairs ("a=1&&b=2", a trailing '&') are skipped and not counted;
 *    every other pair counts toward TK_FORM_PAIRS_MAX, wanted or not;
 *  - a pair without '=' has an empty value;
 *  - the first error in body order is returned, and on any error every
 *    field is reset (present = false, len = 0, buf = "").
 */
#include "tokend/form.h"

#include "tokend/limits.h"

#include <string.h>

/* Decoded names longer than this cannot be wanted (asserted on entry). */
#define NAME_BUF 64

enum { STOP_AMP = 1, STOP_EQ = 2, STOP_NUL_OK = 4 };

/* A byte that decodes to itself and stops nothing: not '%', '+', '&', '='
 * or NUL. */
static const bool plain_tab[256] = {
    [0x01 ... '%' - 1] = true,
    ['&' + 1 ... '+' - 1] = true,
    ['+' + 1 ... '=' - 1] = true,
    ['=' + 1 ... 0xff] = true,
};

static inline bool plain(unsigned char c)
{
    return plain_tab[c];
}

/* Length of the run of plain bytes at p[0..n); four at a time first, so the
 * bound is checked once per four bytes. */
static inline size_t plain_span(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i + 4 <= n && plain(u[i]) && plain(u[i + 1]) && plain(u[i + 2]) && plain(u[i + 3])) {
        i += 4;
    }
    while (i < n && plain(u[i])) {
        i++;
    }
    return i;
}

/* Decode from p up to end or a stop byte. Keeps the first cap - 1 decoded
 * bytes in out (out may be NULL: validate only) and counts all of them in
 * *len. Returns where it stopped; *err is set on a bad escape, or on a NUL
 * unless STOP_NUL_OK is among the flags. Runs of plain bytes (tokens, ids,
 * URLs: nearly every byte of a form) are copied whole. */
static const char *decode_run(const char *p, const char *end, int stops, char *out, size_t cap,
                              size_t *len, int *err)
{
    size_t n = 0;
    while (p < end) { /* advances at least one byte per turn */
        const char *q = p + plain_span(p, (size_t)(end - p));
        if (q > p) {
            size_t k = (size_t)(q - p);
            size_t room = out != NULL && n + 1 < cap ? cap - 1 - n : 0;
            if (room > 0) {
                memcpy(out + n, p, k < room ? k : room);
            }
            n += k;
            p = q;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if (((stops & STOP_AMP) && c == '&') || ((stops & STOP_EQ) && c == '=')) {
            break;
        }
        if (c == '%') {
            int hi = end - p >= 3 ? tk_hex_digit((unsigned char)p[1]) : -1;
            int lo = hi >= 0 ? tk_hex_digit((unsigned char)p[2]) : -1;
            if (lo < 0) {
                *err = TK_E_BADINPUT;
                return p;
            }
            c = (unsigned char)(hi << 4 | lo);
            p += 3;
        } else {
            c = c == '+' ? ' ' : c;
            p++;
        }
        if (c == '\0' && !(stops & STOP_NUL_OK)) {
            *err = TK_E_BADINPUT;
            return p;
        }
        if (out != NULL && n + 1 < cap) {
            out[n] = (char)c;
        }
        n++;
    }
    *len = n;
    return p;
}

static void reset_fields(tk_form_field *fields, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        TK_ASSERT(fields[i].buf != NULL && fields[i].cap >= 1);
        fields[i].buf[0] = '\0';
        fields[i].len = 0;
        fields[i].present = false;
    }
}

/* How many wanted names have their length measured once per body; a
 * caller with more (none today) has the rest measured at each pair. */
#define KNOWN_LENS 32

/* The wanted fields and their names' lengths. */
typedef struct wanted {
    tk_form_field *fields;
    size_t n;
    uint8_t name_len[KNOWN_LENS];
} wanted;

static size_t name_len(const wanted *wf, size_t i)
{
    return i < KNOWN_LENS ? wf->name_len[i] : strlen(wf->fields[i].name);
}

static tk_form_field *find_field(const wanted *wf, const char *name, size_t len)
{
    for (size_t i = 0; i < wf->n; i++) {
        if (name_len(wf, i) == len && memcmp(wf->fields[i].name, name, len) == 0) {
            return &wf->fields[i];
        }
    }
    return NULL;
}

/* One name[=value] pair starting at *pp; advances *pp to the '&' or end. */
static int parse_pair(const char **pp, const char *end, const wanted *wf)
{
    char name[NAME_BUF];
    size_t nlen = 0;
    size_t vlen = 0;
    int err = 0;
    const char *p = decode_run(*pp, end, STOP_AMP | STOP_EQ, name, sizeof(name), &nlen, &err);
    if (err != 0) {
        return err;
    }
    tk_form_field *f = nlen < sizeof(name) ? find_field(wf, name, nlen) : NULL;
    if (f != NULL && f->present) {
        return TK_E_DUPLICATE;
    }
    if (p < end && *p == '=') {
        p++;
    }
    int stops = STOP_AMP | (f != NULL && f->binary ? STOP_NUL_OK : 0);
    p = decode_run(p, end, stops, f ? f->buf : NULL, f ? f->cap : 0, &vlen, &err);
    if (err != 0) {
        return err;
    }
    if (f != NULL) {
        if (vlen >= f->cap) {
            return TK_E_TOOBIG;
        }
        f->buf[vlen] = '\0';
        f->len = vlen;
        f->present = true;
    }
    *pp = p;
    return 0;
}

int tk_form_parse(const char *body, size_t len, tk_form_field *fields, size_t nfields)
{
    reset_fields(fields, nfields);
    wanted wf = {.fields = fields, .n = nfields};
    for (size_t i = 0; i < nfields; i++) {
        size_t n = strlen(fields[i].name);
        TK_ASSERT(n < NAME_BUF);
        if (i < KNOWN_LENS) {
            wf.name_len[i] = (uint8_t)n;
        }
    }
    if (len == 0) {
        return 0; /* body may be NULL */
    }
    const char *p = body;
    const char *end = body + len;
    size_t pairs = 0;
    while (p < end) { /* every turn consumes at least one byte */
        if (*p == '&') {
            p++;
            continue;
        }
        int rc = ++pairs > TK_FORM_PAIRS_MAX ? TK_E_BADINPUT : parse_pair(&p, end, &wf);
        if (rc != 0) {
            reset_fields(fields, nfields);
            return rc;
        }
    }
    return 0;
}

int tk_form_unescape(const char *in, size_t n, char *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (cap == 0) {
        return TK_E_TOOBIG;
    }
    size_t len = 0;
    int err = 0;
    if (n > 0) {
        decode_run(in, in + n, 0, out, cap, &len, &err);
    }
    if (err == 0 && len >= cap) {
        err = TK_E_TOOBIG;
    }
    if (err != 0) {
        out[0] = '\0';
        return err;
    }
    out[len] = '\0';
    *out_len = len;
    return 0;
}
