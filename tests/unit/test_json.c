/*
 * Unit tests for the JSON writer: document shapes and commas, RFC 8259
 * escaping, U+FFFD for every kind of ill-formed UTF-8 (RFC 3629), the
 * sticky overflow flag at every buffer size, and integer formatting at the
 * edges of int64/uint64.
 */
#include "check.h"

#include "tokend/common.h"
#include "tokend/json.h"

#include <stdlib.h>

#define FFFD "\xef\xbf\xbd"

static void test_object(void)
{
    char buf[256];
    tk_json j;
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_obj_begin(&j);
    tk_json_kv_bool(&j, "active", true);
    tk_json_kv_cstr(&j, "scope", "read write");
    tk_json_kv_str(&j, "sub", TK_SLICE_LIT("alice"));
    tk_json_kv_int(&j, "exp", 1767225600);
    tk_json_kv_int(&j, "neg", -5);
    tk_json_kv_bool(&j, "no", false);
    tk_json_key(&j, "aud");
    tk_json_null(&j);
    tk_json_obj_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK_EQ_STR(buf, "{\"active\":true,\"scope\":\"read write\",\"sub\":\"alice\","
                      "\"exp\":1767225600,\"neg\":-5,\"no\":false,\"aud\":null}");
    CHECK_EQ_INT(j.len, strlen(buf));
}

static void test_nesting(void)
{
    char buf[256];
    tk_json j;
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_obj_begin(&j);
    tk_json_key(&j, "a");
    tk_json_arr_begin(&j);
    tk_json_int(&j, 1);
    tk_json_int(&j, 2);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "b", NULL);
    tk_json_obj_end(&j);
    tk_json_arr_begin(&j);
    tk_json_arr_end(&j);
    tk_json_arr_end(&j);
    tk_json_key(&j, "c");
    tk_json_obj_begin(&j);
    tk_json_obj_end(&j);
    tk_json_key(&j, "act");
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "sub", "tkc_x");
    tk_json_key(&j, "act");
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "sub", "tkc_y");
    tk_json_obj_end(&j);
    tk_json_obj_end(&j);
    tk_json_obj_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK_EQ_STR(buf, "{\"a\":[1,2,{\"b\":null},[]],\"c\":{},"
                      "\"act\":{\"sub\":\"tkc_x\",\"act\":{\"sub\":\"tkc_y\"}}}");

    /* a top-level array of strings, and an empty object */
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_arr_begin(&j);
    tk_json_cstr(&j, "client_secret_basic");
    tk_json_cstr(&j, "client_secret_post");
    tk_json_str(&j, TK_SLICE_NULL);
    tk_json_bool(&j, true);
    tk_json_arr_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK_EQ_STR(buf, "[\"client_secret_basic\",\"client_secret_post\",\"\",true]");
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_obj_begin(&j);
    tk_json_obj_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK_EQ_STR(buf, "{}");
}

static void test_unclosed_and_depth(void)
{
    char buf[256];
    tk_json j;
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_obj_begin(&j);
    CHECK_EQ_INT(tk_json_finish(&j), TK_E_INVALID);
    tk_json_init(&j, buf, sizeof(buf));
    for (int i = 0; i < TK_JSON_DEPTH_MAX - 1; i++) {
        tk_json_arr_begin(&j);
    }
    for (int i = 0; i < TK_JSON_DEPTH_MAX - 1; i++) {
        tk_json_arr_end(&j);
    }
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    tk_json_init(&j, buf, sizeof(buf));
    for (int i = 0; i < TK_JSON_DEPTH_MAX + 2; i++) {
        tk_json_arr_begin(&j);
    }
    CHECK(j.overflow);
    for (int i = 0; i < TK_JSON_DEPTH_MAX + 2; i++) {
        tk_json_arr_end(&j);
    }
    CHECK_EQ_INT(j.depth, 0);
    CHECK_EQ_INT(tk_json_finish(&j), TK_E_TOOBIG);
}

/* The JSON text of one string value. */
static const char *str_json(const char *s, size_t n)
{
    static char buf[512];
    tk_json j;
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_str(&j, (tk_slice){s, n});
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    return buf;
}

#define STR_JSON(lit) str_json(lit, sizeof(lit) - 1)

static void test_escaping(void)
{
    CHECK_EQ_STR(STR_JSON("plain / text ~"), "\"plain / text ~\"");
    CHECK_EQ_STR(STR_JSON("say \"hi\""), "\"say \\\"hi\\\"\"");
    CHECK_EQ_STR(STR_JSON("back\\slash"), "\"back\\\\slash\"");
    CHECK_EQ_STR(STR_JSON("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
    CHECK_EQ_STR(STR_JSON("\x01\x1f\x0b"), "\"\\u0001\\u001f\\u000b\"");
    CHECK_EQ_STR(STR_JSON("a\0b"), "\"a\\u0000b\"");
    CHECK_EQ_STR(STR_JSON("\x7f"), "\"\x7f\""); /* DEL needs no escape */
    CHECK_EQ_STR(STR_JSON(""), "\"\"");
    /* keys are escaped too */
    char buf[64];
    tk_json j;
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_obj_begin(&j);
    tk_json_kv_int(&j, "k\"\n", 0);
    tk_json_obj_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK_EQ_STR(buf, "{\"k\\\"\\n\":0}");
}

static void test_utf8_valid(void)
{
    CHECK_EQ_STR(STR_JSON("caf\xc3\xa9"), "\"caf\xc3\xa9\"");           /* U+00E9 */
    CHECK_EQ_STR(STR_JSON("\xc2\x80"), "\"\xc2\x80\"");                 /* U+0080 */
    CHECK_EQ_STR(STR_JSON("\xe2\x82\xac"), "\"\xe2\x82\xac\"");         /* U+20AC */
    CHECK_EQ_STR(STR_JSON("\xe0\xa0\x80"), "\"\xe0\xa0\x80\"");         /* U+0800 */
    CHECK_EQ_STR(STR_JSON("\xed\x9f\xbf"), "\"\xed\x9f\xbf\"");         /* U+D7FF */
    CHECK_EQ_STR(STR_JSON("\xee\x80\x80"), "\"\xee\x80\x80\"");         /* U+E000 */
    CHECK_EQ_STR(STR_JSON("\xef\xbf\xbf"), "\"\xef\xbf\xbf\"");         /* U+FFFF */
    CHECK_EQ_STR(STR_JSON("\xf0\x9d\x84\x9e"), "\"\xf0\x9d\x84\x9e\""); /* U+1D11E */
    CHECK_EQ_STR(STR_JSON("\xf0\x90\x80\x80"), "\"\xf0\x90\x80\x80\""); /* U+10000 */
    CHECK_EQ_STR(STR_JSON("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}

static void test_utf8_invalid(void)
{
    CHECK_EQ_STR(STR_JSON("\x80"), "\"" FFFD "\""); /* lone continuation */
    CHECK_EQ_STR(STR_JSON("a\xbf"
                          "b"),
                 "\"a" FFFD "b\"");
    CHECK_EQ_STR(STR_JSON("\xc0\xaf"), "\"" FFFD FFFD "\""); /* overlong '/' */
    CHECK_EQ_STR(STR_JSON("\xc1\xbf"), "\"" FFFD FFFD "\"");
    CHECK_EQ_STR(STR_JSON("\xe0\x80\xaf"), "\"" FFFD FFFD FFFD "\""); /* overlong 3-byte */
    CHECK_EQ_STR(STR_JSON("\xf0\x80\x80\xaf"), "\"" FFFD FFFD FFFD FFFD "\"");
    CHECK_EQ_STR(STR_JSON("\xed\xa0\x80"), "\"" FFFD FFFD FFFD "\"");          /* surrogate D800 */
    CHECK_EQ_STR(STR_JSON("\xed\xbf\xbf"), "\"" FFFD FFFD FFFD "\"");          /* surrogate DFFF */
    CHECK_EQ_STR(STR_JSON("\xf4\x90\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    CHECK_EQ_STR(STR_JSON("\xf5\x80"), "\"" FFFD FFFD "\"");
    CHECK_EQ_STR(STR_JSON("\xfe\xff"), "\"" FFFD FFFD "\"");
    /* truncated sequences: one U+FFFD for the maximal subpart */
    CHECK_EQ_STR(STR_JSON("\xc3"), "\"" FFFD "\"");
    CHECK_EQ_STR(STR_JSON("\xe2\x82"), "\"" FFFD "\"");
    CHECK_EQ_STR(STR_JSON("\xe2\x82"
                          "A"),
                 "\"" FFFD "A\"");
    CHECK_EQ_STR(STR_JSON("\xf0\x9d\x84"), "\"" FFFD "\"");
    CHECK_EQ_STR(STR_JSON("\xf0\x9d\x84\"x"), "\"" FFFD "\\\"x\"");
    CHECK_EQ_STR(STR_JSON("\xe2\x82\xe2\x82\xac"), "\"" FFFD "\xe2\x82\xac\"");
    CHECK_EQ_STR(STR_JSON("\xc3\x0a"), "\"" FFFD "\\n\"");
}

static void test_overflow(void)
{
    /* The full document, then every smaller buffer. */
    char full[128];
    tk_json j;
    tk_json_init(&j, full, sizeof(full));
    tk_json_obj_begin(&j);
    tk_json_kv_bool(&j, "active", true);
    tk_json_kv_cstr(&j, "scope", "a \"b\"\n");
    tk_json_kv_int(&j, "exp", INT64_MIN);
    tk_json_obj_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    size_t need = j.len;
    for (size_t cap = 1; cap <= need + 1; cap++) {
        char *buf = malloc(cap); /* exact size, so ASan sees any overrun */
        tk_json_init(&j, buf, cap);
        tk_json_obj_begin(&j);
        tk_json_kv_bool(&j, "active", true);
        tk_json_kv_cstr(&j, "scope", "a \"b\"\n");
        tk_json_kv_int(&j, "exp", INT64_MIN);
        tk_json_obj_end(&j);
        bool fits = cap >= need + 1;
        CHECK_EQ_INT(j.overflow, !fits);
        CHECK_EQ_INT(tk_json_finish(&j), fits ? 0 : TK_E_TOOBIG);
        CHECK(j.len < cap);
        CHECK_EQ_INT(strlen(buf), j.len); /* always NUL-terminated */
        CHECK(strncmp(buf, full, j.len) == 0);
        free(buf);
    }
    /* sticky: a small write after an overflow does not get in */
    char small[4];
    tk_json_init(&j, small, sizeof(small));
    tk_json_cstr(&j, "toolong");
    tk_json_null(&j);
    CHECK(j.overflow);
    CHECK_EQ_INT(tk_json_finish(&j), TK_E_TOOBIG);
}

static const char *fmt_u(uint64_t v)
{
    static char out[32];
    size_t n = tk_fmt_u64(v, out);
    out[n] = '\0';
    return out;
}

static const char *fmt_i(int64_t v)
{
    static char out[32];
    size_t n = tk_fmt_i64(v, out);
    out[n] = '\0';
    return out;
}

static void test_fmt(void)
{
    CHECK_EQ_STR(fmt_u(0), "0");
    CHECK_EQ_STR(fmt_u(7), "7");
    CHECK_EQ_STR(fmt_u(10), "10");
    CHECK_EQ_STR(fmt_u(1234567890), "1234567890");
    CHECK_EQ_STR(fmt_u(UINT64_MAX), "18446744073709551615");
    CHECK_EQ_INT(tk_fmt_u64(UINT64_MAX, (char[24]){0}), 20);
    CHECK_EQ_STR(fmt_i(0), "0");
    CHECK_EQ_STR(fmt_i(-1), "-1");
    CHECK_EQ_STR(fmt_i(42), "42");
    CHECK_EQ_STR(fmt_i(-1000), "-1000");
    CHECK_EQ_STR(fmt_i(INT64_MAX), "9223372036854775807");
    CHECK_EQ_STR(fmt_i(INT64_MIN), "-9223372036854775808");
    CHECK_EQ_INT(tk_fmt_i64(INT64_MIN, (char[24]){0}), 20);
    /* Every digit count and both sides of each power of ten and of two
     * (where the count's estimate changes), against snprintf. */
    uint64_t p10 = 1;
    for (int k = 0; k < 20; k++, p10 *= 10) {
        for (int64_t dv = -1; dv <= 1; dv++) {
            uint64_t v = p10 + (uint64_t)dv;
            char want[32];
            snprintf(want, sizeof want, "%llu", (unsigned long long)v);
            CHECK_EQ_STR(fmt_u(v), want);
            if (v <= INT64_MAX) {
                snprintf(want, sizeof want, "-%llu", (unsigned long long)v);
                CHECK_EQ_STR(fmt_i(-(int64_t)v), v == 0 ? "0" : want);
            }
        }
    }
    for (int b = 0; b < 64; b++) {
        for (int64_t dv = -1; dv <= 1; dv++) {
            uint64_t v = (1ull << b) + (uint64_t)dv;
            char want[32];
            snprintf(want, sizeof want, "%llu", (unsigned long long)v);
            CHECK_EQ_STR(fmt_u(v), want);
        }
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 100000; k++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = (x * 0x2545F4914F6CDD1Dull) >> (k % 64);
        char want[32];
        snprintf(want, sizeof want, "%llu", (unsigned long long)v);
        CHECK_EQ_STR(fmt_u(v), want);
    }
    char buf[64];
    tk_json j;
    tk_json_init(&j, buf, sizeof(buf));
    tk_json_arr_begin(&j);
    tk_json_int(&j, INT64_MIN);
    tk_json_int(&j, INT64_MAX);
    tk_json_int(&j, 0);
    tk_json_arr_end(&j);
    CHECK_EQ_INT(tk_json_finish(&j), 0);
    CHECK_EQ_STR(buf, "[-9223372036854775808,9223372036854775807,0]");
}

/* tk_json_is_plain against its definition (printable ASCII or DEL, no '"'
 * and no '\\'): every byte value at every position of strings of 0 to 24
 * bytes (the byte loop, the words, the overlapping last word). */
static void test_is_plain(void)
{
    char s[24];
    long wrong = 0;
    CHECK(tk_json_is_plain(NULL, 0));
    for (size_t n = 1; n <= sizeof s; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (int b = 0; b < 256; b++) {
                memset(s, 'k', n);
                s[pos] = (char)b;
                bool want = b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
                wrong += tk_json_is_plain(s, n) != want;
            }
        }
    }
    CHECK_EQ_INT(wrong, 0);
}

int main(void)
{
    RUN(test_object);
    RUN(test_nesting);
    RUN(test_unclosed_and_depth);
    RUN(test_escaping);
    RUN(test_utf8_valid);
    RUN(test_utf8_invalid);
    RUN(test_overflow);
    RUN(test_fmt);
    RUN(test_is_plain);
    return check_report();
}
