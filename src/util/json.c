/*
 * A JSON writer into a fixed, caller-owned buffer. Every append checks the
 * room first; a write that does not fit sets the sticky overflow flag and
 * nothing more is written, so callers write a whole document and check once
 * with tk_json_finish(). The buffer always holds a NUL after the text
 * (cap - 1 bytes of content), so it can be printed as a C string.
 *
 * Strings are escaped per RFC 8259 §7 and validated as UTF-8 (RFC 3629):
 * each maximal ill-formed subsequence becomes one U+FFFD, the practice the
 * Unicode standard recommends, so the output is always valid JSON.
 */
#include "tokend/json.h"

#include <string.h>

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* ---- Buffer ---------------------------------------------------------------- */

static void append(tk_json *j, const char *p, size_t n)
{
    if (j->overflow) {
        return;
    }
    if (n >= j->cap - j->len) { /* keep one byte for the NUL */
        j->overflow = true;
        return;
    }
    memcpy(j->buf + j->len, p, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void append_byte(tk_json *j, char c)
{
    append(j, &c, 1);
}

void tk_json_init(tk_json *j, char *buf, size_t cap)
{
    TK_ASSERT(buf != NULL && cap >= 1);
    memset(j, 0, sizeof(*j));
    j->buf = buf;
    j->cap = cap;
    buf[0] = '\0';
}

/* ---- Structure ------------------------------------------------------------ */

/* need_comma slot of the current level. Nesting deeper than the array is
 * recorded as an overflow (the depth still counts, so ends stay paired). */
static bool *comma_slot(tk_json *j)
{
    if (j->depth >= TK_JSON_DEPTH_MAX) {
        j->overflow = true;
        return &j->need_comma[TK_JSON_DEPTH_MAX - 1];
    }
    return &j->need_comma[j->depth];
}

/* Called before every value: the comma between siblings. After a key the
 * slot is false, so the value follows the colon directly. */
static void before_value(tk_json *j)
{
    bool *slot = comma_slot(j);
    if (*slot) {
        append_byte(j, ',');
    }
    *slot = true;
}

static void open_container(tk_json *j, char c)
{
    before_value(j);
    append_byte(j, c);
    j->depth++;
    *comma_slot(j) = false;
}

static void close_container(tk_json *j, char c)
{
    TK_ASSERT(j->depth > 0);
    j->depth--;
    append_byte(j, c);
}

void tk_json_obj_begin(tk_json *j)
{
    open_container(j, '{');
}

void tk_json_obj_end(tk_json *j)
{
    close_container(j, '}');
}

void tk_json_arr_begin(tk_json *j)
{
    open_container(j, '[');
}

void tk_json_arr_end(tk_json *j)
{
    close_container(j, ']');
}

/* ---- Strings -------------------------------------------------------------- */

static void append_escape(tk_json *j, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
    switch (c) {
    case '"':
        append(j, "\\\"", 2);
        return;
    case '\\':
        append(j, "\\\\", 2);
        return;
    case '\b':
        append(j, "\\b", 2);
        return;
    case '\f':
        append(j, "\\f", 2);
        return;
    case '\n':
        append(j, "\\n", 2);
        return;
    case '\r':
        append(j, "\\r", 2);
        return;
    case '\t':
        append(j, "\\t", 2);
        return;
    default:
        append(j, esc, sizeof(esc));
        return;
    }
}

/* Length of the well-formed UTF-8 sequence at p[0..n) (lead byte >= 0x80),
 * or 0 when ill-formed; *bad then receives the length of the maximal
 * ill-formed subpart to replace (at least 1). Ranges per RFC 3629 §4. */
static size_t utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlongs */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        lo = c == 0xf0 ? 0x90 : 0x80; /* no overlongs */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xbf;
        if (p[i] < min || p[i] > max) {
            break;
        }
    }
    if (i == need) {
        return need;
    }
    *bad = i;
    return 0;
}

static bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Non-zero when some byte of v is below 0x20, above 0x7f, '"' or '\\'.
 * Word-at-a-time: ((x - 0x01..) & ~x & 0x80..) flags a zero byte of x
 * (exactly for the lowest one; borrows may also flag bytes above it, which
 * only sends the caller to the byte loop early). */
static uint64_t special_bytes(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
    uint64_t ctl = (v - ones * 0x20) & ~v;
    quote = (quote - ones) & ~quote;
    bslash = (bslash - ones) & ~bslash;
    return (v | ctl | quote | bslash) & high;
}

/* Bytes from p that need no escaping and are plain ASCII: eight at a time,
 * then byte by byte from the first word that holds a special byte. */
static size_t plain_run(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (special_bytes(v) != 0) {
            break;
        }
        i += 8;
    }
    while (i < n && plain_byte(p[i])) {
        i++;
    }
    return i;
}

/* One pass without an early exit: the strings checked are short ids,
 * URLs and scopes, and most are plain. Words at 0, 8, … and the last eight
 * bytes (overlapping: a byte checked twice changes no verdict), or byte by
 * byte below eight. special_bytes is exact as a yes/no for each word. */
bool tk_json_is_plain(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n < 8) {
        bool plain = true;
        for (size_t i = 0; i < n; i++) {
            plain &= plain_byte(p[i]);
        }
        return plain;
    }
    uint64_t special = 0;
    for (size_t i = 0; i + 8 < n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        special |= special_bytes(v);
    }
    uint64_t last;
    memcpy(&last, p + n - 8, 8);
    return (special | special_bytes(last)) == 0;
}

static void append_string(tk_json *j, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    append_byte(j, '"');
    size_t i = 0;
    while (i < n && !j->overflow) { /* every turn consumes at least one byte */
        size_t run = plain_run(p + i, n - i);
        if (run > 0) {
            append(j, s + i, run);
            i += run;
            continue;
        }
        if (p[i] < 0x80) {
            append_escape(j, p[i]);
            i++;
            continue;
        }
        size_t bad = 0;
        size_t ok = utf8_seq(p + i, n - i, &bad);
        if (ok > 0) {
            append(j, s + i, ok);
            i += ok;
        } else {
            append(j, replacement, sizeof(replacement) - 1);
            i += bad;
        }
    }
    append_byte(j, '"');
}

/* ---- Keys and values ------------------------------------------------------ */

void tk_json_key(tk_json *j, const char *key)
{
    before_value(j);
    append_string(j, key, strlen(key));
    append_byte(j, ':');
    *comma_slot(j) = false; /* the value follows the colon */
}

void tk_json_str(tk_json *j, tk_slice s)
{
    before_value(j);
    append_string(j, s.len > 0 ? s.p : "", s.len);
}

void tk_json_cstr(tk_json *j, const char *s)
{
    if (s == NULL) {
        tk_json_null(j);
        return;
    }
    before_value(j);
    append_string(j, s, strlen(s));
}

void tk_json_int(tk_json *j, int64_t v)
{
    char digits[24];
    size_t n = tk_fmt_i64(v, digits);
    before_value(j);
    append(j, digits, n);
}

void tk_json_bool(tk_json *j, bool v)
{
    before_value(j);
    if (v) {
        append(j, "true", 4);
    } else {
        append(j, "false", 5);
    }
}

void tk_json_null(tk_json *j)
{
    before_value(j);
    append(j, "null", 4);
}

void tk_json_kv_str(tk_json *j, const char *key, tk_slice s)
{
    tk_json_key(j, key);
    tk_json_str(j, s);
}

void tk_json_kv_cstr(tk_json *j, const char *key, const char *s)
{
    tk_json_key(j, key);
    tk_json_cstr(j, s);
}

void tk_json_kv_int(tk_json *j, const char *key, int64_t v)
{
    tk_json_key(j, key);
    tk_json_int(j, v);
}

void tk_json_kv_bool(tk_json *j, const char *key, bool v)
{
    tk_json_key(j, key);
    tk_json_bool(j, v);
}

int tk_json_finish(const tk_json *j)
{
    if (j->overflow) {
        return TK_E_TOOBIG;
    }
    return j->depth == 0 ? 0 : TK_E_INVALID;
}

/* ---- Integers ------------------------------------------------------------- */

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
                                  "25262728293031323334353637383940414243444546474849"
                                  "50515253545556575859606162636465666768697071727374"
                                  "75767778798081828384858687888990919293949596979899";

/* Decimal digits of v, without a loop: 1233 / 4096 is just above log10(2),
 * so t below is floor(log10) of v or one more; one compare settles it. */
static size_t digit_count(uint64_t v)
{
    static const uint64_t pow10[20] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull,
                                       10000000000000000ull,
                                       100000000000000000ull,
                                       1000000000000000000ull,
                                       10000000000000000000ull};
    uint64_t x = v | 1; /* 0 has one digit, like 1 */
    unsigned bits = 64u - (unsigned)__builtin_clzll(x);
    unsigned t = (bits * 1233u) >> 12; /* <= 19 */
    return (size_t)t + (x >= pow10[t] ? 1u : 0u);
}

/* Writes the n digits of v ending at out + n, two per step. Values below
 * 2^32 (every time tokend writes) take 32-bit divisions. */
static void put_digits(uint64_t v, char *out, size_t n)
{
    size_t i = n;
    while (v > UINT32_MAX) { /* at most 5 turns */
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        out[--i] = digit_pairs[d + 1];
        out[--i] = digit_pairs[d];
    }
    uint32_t w = (uint32_t)v;
    while (w >= 100) { /* at most 4 turns */
        unsigned d = (w % 100) * 2;
        w /= 100;
        out[--i] = digit_pairs[d + 1];
        out[--i] = digit_pairs[d];
    }
    if (w >= 10) {
        out[--i] = digit_pairs[w * 2 + 1];
        out[--i] = digit_pairs[w * 2];
    } else {
        out[--i] = (char)('0' + w);
    }
    TK_ASSERT(i == 0);
}

size_t tk_fmt_u64(uint64_t v, char *out)
{
    size_t n = digit_count(v);
    put_digits(v, out, n);
    return n;
}

size_t tk_fmt_i64(int64_t v, char *out)
{
    if (v >= 0) {
        return tk_fmt_u64((uint64_t)v, out);
    }
    out[0] = '-';
    /* Negate in unsigned arithmetic: exact for INT64_MIN too. */
    return 1 + tk_fmt_u64((uint64_t)0 - (uint64_t)v, out + 1);
}
