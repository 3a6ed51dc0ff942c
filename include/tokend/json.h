/*
 * A JSON writer into a caller-owned fixed buffer: no allocation, no
 * snprintf. Writes that would overflow set a sticky flag instead, so a
 * caller writes a whole document and checks once at the end.
 * Commas between members and elements are inserted automatically.
 * The buffer always holds a NUL after the text, so at most cap - 1 bytes of
 * JSON fit; j->len is the text length. Nesting deeper than
 * TK_JSON_DEPTH_MAX counts as an overflow. Not thread-safe per writer.
 */
#ifndef TOKEND_JSON_H
#define TOKEND_JSON_H

#include "tokend/common.h"

#define TK_JSON_DEPTH_MAX 16

typedef struct tk_json {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
    unsigned depth;
    bool need_comma[TK_JSON_DEPTH_MAX];
} tk_json;

void tk_json_init(tk_json *j, char *buf, size_t cap);
void tk_json_obj_begin(tk_json *j);
void tk_json_obj_end(tk_json *j);
void tk_json_arr_begin(tk_json *j);
void tk_json_arr_end(tk_json *j);
/* A member name inside an object; the next value call is its value. */
void tk_json_key(tk_json *j, const char *key);
/* Values. Strings are escaped per RFC 8259 (control characters as \u00XX);
 * invalid UTF-8 is written as U+FFFD so output is always valid JSON. */
void tk_json_str(tk_json *j, tk_slice s);
void tk_json_cstr(tk_json *j, const char *s); /* NULL writes null */
void tk_json_int(tk_json *j, int64_t v);
void tk_json_bool(tk_json *j, bool v);
void tk_json_null(tk_json *j);
/* Convenience: key + value. */
void tk_json_kv_str(tk_json *j, const char *key, tk_slice s);
void tk_json_kv_cstr(tk_json *j, const char *key, const char *s);
void tk_json_kv_int(tk_json *j, const char *key, int64_t v);
void tk_json_kv_bool(tk_json *j, const char *key, bool v);
/* 0 when the document fit and is closed, TK_E_TOOBIG on overflow,
 * TK_E_INVALID when an object or array was left open. */
int tk_json_finish(const tk_json *j);

/* True when s[0..n) can be written between quotes as it is: printable
 * ASCII with no '"' and no '\\' (fast writers check this, then memcpy). */
bool tk_json_is_plain(const char *s, size_t n);

/* Decimal digits of v into out (no NUL); returns the count (<= 20). */
size_t tk_fmt_u64(uint64_t v, char *out);
size_t tk_fmt_i64(int64_t v, char *out);

#endif
