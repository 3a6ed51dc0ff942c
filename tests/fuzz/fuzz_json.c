/*
 * libFuzzer target for the JSON writer. The writer is output-only, but what
 * it escapes comes from the network and the store (subjects, scopes, client
 * ids), so its output must always be valid JSON. Byte 0 picks the buffer
 * size; the rest is read as a little program (open/close object or array,
 * key, string, integer, bool, null) whose strings are raw input bytes.
 * Checks: a finished document parses with jansson (an independent reader);
 * a single string value round-trips exactly when the input is valid UTF-8
 * (jansson's own check) and otherwise parses as valid UTF-8; an overflowed
 * writer stays NUL-terminated inside its buffer.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MAX 8192

static char out[BUF_MAX];

/* One string value on its own: exact round trip for valid UTF-8. */
static void check_string(const char *p, size_t n)
{
    tk_json j;
    tk_json_init(&j, out, sizeof out);
    tk_json_str(&j, (tk_slice){p, n});
    if (tk_json_finish(&j) != 0) {
        return; /* too long for the buffer */
    }
    json_error_t err;
    json_t *v = json_loadb(j.buf, j.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    EXPECT(v != NULL && json_is_string(v));
    json_t *ref = json_stringn(p, n); /* NULL when p is not valid UTF-8 */
    if (ref != NULL) {
        EXPECT(json_string_length(v) == n && memcmp(json_string_value(v), p, n) == 0);
        json_decref(ref);
    }
    json_decref(v);
}

/* Take up to 16 bytes of input as a string argument. */
static tk_slice take(const uint8_t **d, size_t *n)
{
    size_t want = *n > 0 ? (size_t)((*d)[0] & 0x0f) : 0;
    if (*n > 0) {
        (*d)++;
        (*n)--;
    }
    if (want > *n) {
        want = *n;
    }
    tk_slice s = {(const char *)*d, want};
    *d += want;
    *n -= want;
    return s;
}

/* A structurally valid document driven by the input. */
static void check_program(const uint8_t *d, size_t n, size_t cap)
{
    tk_json j;
    tk_json_init(&j, out, cap);
    bool in_obj[64] = {false};
    unsigned depth = 1; /* one top-level array holds everything */
    tk_json_arr_begin(&j);
    char key[17];
    for (size_t steps = 0; n > 0 && steps < 512; steps++) {
        uint8_t op = d[0] % 8;
        d++;
        n--;
        bool obj = in_obj[depth - 1];
        if (op == 0 && depth < 60) { /* open: object or array */
            if (obj) {
                tk_json_key(&j, "k");
            }
            bool o = n > 0 && (d[0] & 1);
            o ? tk_json_obj_begin(&j) : tk_json_arr_begin(&j);
            in_obj[depth++] = o;
            continue;
        }
        if (op == 1 && depth > 1) {
            in_obj[--depth] ? tk_json_obj_end(&j) : tk_json_arr_end(&j);
            continue;
        }
        tk_slice s = take(&d, &n);
        if (obj) { /* a member: keys are C strings */
            size_t kl = strnlen(s.p ? s.p : "", s.len);
            memcpy(key, s.p ? s.p : "", kl);
            key[kl] = '\0';
            tk_json_key(&j, key);
        }
        switch (op) {
        case 2:
        case 3:
            tk_json_str(&j, s);
            break;
        case 4: {
            int64_t v = 0;
            memcpy(&v, s.p ? s.p : "", s.len < 8 ? s.len : 8);
            tk_json_int(&j, v);
            break;
        }
        case 5:
            tk_json_bool(&j, s.len % 2 == 0);
            break;
        default:
            tk_json_null(&j);
            break;
        }
    }
    while (depth > 0) {
        in_obj[--depth] ? tk_json_obj_end(&j) : tk_json_arr_end(&j);
    }
    EXPECT(j.len < cap && out[j.len] == '\0');
    int rc = tk_json_finish(&j);
    EXPECT(rc == 0 || rc == TK_E_TOOBIG);
    if (rc == 0 && j.len > 0) {
        json_error_t err;
        json_t *v = json_loadb(j.buf, j.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (v == NULL) {
            fprintf(stderr, "jansson: %s at %d: %.*s\n", err.text, err.position, (int)j.len, j.buf);
        }
        EXPECT(v != NULL);
        json_decref(v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t cap = data[0] == 0 ? 1 : (size_t)data[0] * 32;
    check_string((const char *)data + 1, size - 1);
    check_program(data + 1, size - 1, cap < BUF_MAX ? cap : BUF_MAX);
    return 0;
}
