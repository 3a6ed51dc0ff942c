/*
 * Strict JSON config loader tests (jcfg.h): the folder and label of a load,
 * the message format ("<where>: <problem>", exactly), files of bounded size
 * with duplicate members refused, unknown members refused, string members
 * checked for presence, type, length (both edges) and every control
 * character, relative names resolved under the config file's folder.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tokend/jcfg.h"

static char dir[64];

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    TK_ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void test_init_where_fail(void)
{
    tk_jcfg c;
    char err[128] = "old";
    CHECK_EQ_INT(tk_jcfg_init(&c, "/etc/tokend/idp.json", err, sizeof err), 0);
    CHECK_EQ_STR(c.dir, "/etc/tokend");
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(tk_jcfg_init(&c, "idp.json", err, sizeof err), 0);
    CHECK_EQ_STR(c.dir, ".");
    /* No label: the message alone; the code comes back unchanged. */
    CHECK_EQ_INT(tk_jcfg_fail(&c, TK_E_TOOBIG, "x %d", 7), TK_E_TOOBIG);
    CHECK_EQ_STR(err, "x 7");
    tk_jcfg_where(&c, "issuer \"%s\"", "https://a");
    CHECK_EQ_INT(tk_jcfg_fail(&c, -ENOENT, "gone"), -ENOENT);
    CHECK_EQ_STR(err, "issuer \"https://a\": gone");
    tk_jcfg_where(&c, NULL);
    tk_jcfg_fail(&c, TK_E_BADINPUT, "plain");
    CHECK_EQ_STR(err, "plain");
    /* Long labels and messages are cut to the buffers, never overrun. */
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tk_jcfg_where(&c, "%s", big);
    CHECK(strlen(c.where) == TK_JCFG_WHERE_MAX - 1);
    tk_jcfg_fail(&c, TK_E_BADINPUT, "%s", big);
    CHECK(strlen(err) == sizeof err - 1);
    /* A config path longer than PATH_MAX is refused with a message. */
    static char longpath[PATH_MAX + 10];
    memset(longpath, 'p', sizeof longpath - 1);
    CHECK_EQ_INT(tk_jcfg_init(&c, longpath, err, sizeof err), TK_E_TOOBIG);
    CHECK(err[0] != '\0');
}

static void test_load(void)
{
    tk_jcfg c;
    char err[256], path[160];
    json_t *v = (json_t *)1;
    write_file("ok.json", "{\"a\":1,\"b\":\"x\"}", path, sizeof path);
    CHECK_EQ_INT(tk_jcfg_init(&c, path, err, sizeof err), 0);
    CHECK_EQ_STR(c.dir, dir);
    CHECK_EQ_INT(tk_jcfg_load(&c, path, 1024, &v), 0);
    CHECK(json_is_object(v) && json_object_size(v) == 2);
    json_decref(v);
    /* Exactly max bytes loads; one more does not. */
    size_t len = strlen("{\"a\":1,\"b\":\"x\"}");
    CHECK_EQ_INT(tk_jcfg_load(&c, path, len, &v), 0);
    json_decref(v);
    v = (json_t *)1;
    CHECK_EQ_INT(tk_jcfg_load(&c, path, len - 1, &v), TK_E_TOOBIG);
    CHECK(v == NULL && strstr(err, "larger than") != NULL);
    /* Duplicate members, syntax errors (with the line), non-objects, missing files. */
    const char *bad[] = {"{\"a\":1,\"a\":2}", "{\"a\":1,\n\"b\":}", "[1,2]", "\"s\"", "",
                         "{\"a\":1} {}"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        write_file("bad.json", bad[i], path, sizeof path);
        v = (json_t *)1;
        CHECK_EQ_INT(tk_jcfg_load(&c, path, 1024, &v), TK_E_BADINPUT);
        CHECK(v == NULL && strncmp(err, path, strlen(path)) == 0);
    }
    write_file("bad.json", "{\"a\":1,\n\"b\":}", path, sizeof path);
    tk_jcfg_load(&c, path, 1024, &v);
    CHECK(strstr(err, "bad.json:2:") != NULL);
    snprintf(path, sizeof path, "%s/missing.json", dir);
    CHECK_EQ_INT(tk_jcfg_load(&c, path, 1024, &v), -ENOENT);
    CHECK(v == NULL && strstr(err, "missing.json") != NULL);
}

static void test_only_members(void)
{
    tk_jcfg c;
    char err[256];
    tk_jcfg_init(&c, "/x/y.json", err, sizeof err);
    json_t *o = json_loads("{\"a\":1,\"b\":2}", 0, NULL);
    static const char *const ab[] = {"a", "b", NULL}, *const abc[] = {"c", "b", "a", NULL},
                             *const a[] = {"a", NULL}, *const none[] = {NULL};
    CHECK_EQ_INT(tk_jcfg_only_members(&c, o, ab, "t"), 0);
    CHECK_EQ_INT(tk_jcfg_only_members(&c, o, abc, "t"), 0);
    tk_jcfg_where(&c, "resource \"r\"");
    CHECK_EQ_INT(tk_jcfg_only_members(&c, o, a, "a thing"), TK_E_BADINPUT);
    CHECK_EQ_STR(err, "resource \"r\": unknown member \"b\" in a thing");
    CHECK_EQ_INT(tk_jcfg_only_members(&c, o, none, "x"), TK_E_BADINPUT);
    json_t *empty = json_object();
    CHECK_EQ_INT(tk_jcfg_only_members(&c, empty, none, "x"), 0);
    /* Case matters: "A" is not "a". */
    json_t *upper = json_loads("{\"A\":1}", 0, NULL);
    CHECK_EQ_INT(tk_jcfg_only_members(&c, upper, a, "x"), TK_E_BADINPUT);
    json_decref(upper);
    json_decref(empty);
    json_decref(o);
}

static void test_get_str(void)
{
    tk_jcfg c;
    char err[256];
    tk_jcfg_init(&c, "/x/y.json", err, sizeof err);
    json_t *o = json_loads("{\"s\":\"abc\",\"n\":5,\"e\":\"\",\"nul\":\"a\\u0000b\","
                           "\"u\":\"caf\\u00e9\",\"null\":null}",
                           JSON_ALLOW_NUL, NULL);
    TK_ASSERT(o != NULL);
    tk_slice s;
    CHECK_EQ_INT(tk_jcfg_get_str(&c, o, "s", 3, true, &s), 0);
    CHECK_SLICE(s, "abc");
    CHECK(s.p[3] == '\0');
    CHECK_EQ_INT(tk_jcfg_get_str(&c, o, "s", 2, true, &s), TK_E_BADINPUT); /* max edge */
    CHECK(s.p == NULL && strstr(err, "1 to 2 bytes") != NULL);
    CHECK_EQ_INT(tk_jcfg_get_str(&c, o, "absent", 8, false, &s), 0);
    CHECK(s.p == NULL && s.len == 0);
    CHECK_EQ_INT(tk_jcfg_get_str(&c, o, "absent", 8, true, &s), TK_E_BADINPUT);
    CHECK_EQ_STR(err, "\"absent\" is required");
    const char *wrong[] = {"n", "e", "nul", "null"};
    for (size_t i = 0; i < TK_ARRAY_LEN(wrong); i++) {
        CHECK_EQ_INT(tk_jcfg_get_str(&c, o, wrong[i], 64, false, &s), TK_E_BADINPUT);
        CHECK(s.p == NULL);
    }
    CHECK_EQ_INT(tk_jcfg_get_str(&c, o, "u", 5, true, &s), 0); /* UTF-8 is printable */
    CHECK(s.len == 5);
    json_decref(o);
    /* Every control character and DEL, anywhere in the string, is refused. */
    for (int ch = 0; ch < 0x80; ch++) {
        bool ctl = ch < 0x20 || ch == 0x7f;
        char text[8] = {'x', (char)ch, 'y', '\0'};
        json_t *obj = json_object();
        json_object_set_new(obj, "k", json_stringn(text, 3));
        int rc = tk_jcfg_get_str(&c, obj, "k", 8, true, &s);
        CHECK_EQ_INT(rc, ctl ? TK_E_BADINPUT : 0);
        json_decref(obj);
    }
}

static void test_resolve(void)
{
    tk_jcfg c;
    char err[256], out[64];
    tk_jcfg_init(&c, "/etc/tokend/idp.json", err, sizeof err);
    CHECK_EQ_INT(tk_jcfg_resolve(&c, "k.pem", out, sizeof out), 0);
    CHECK_EQ_STR(out, "/etc/tokend/k.pem");
    CHECK_EQ_INT(tk_jcfg_resolve(&c, "sub/k.pem", out, sizeof out), 0);
    CHECK_EQ_STR(out, "/etc/tokend/sub/k.pem");
    CHECK_EQ_INT(tk_jcfg_resolve(&c, "/abs/k.pem", out, sizeof out), 0);
    CHECK_EQ_STR(out, "/abs/k.pem");
    /* Exactly fitting (with its NUL) works; one byte short does not. */
    CHECK_EQ_INT(tk_jcfg_resolve(&c, "k.pem", out, strlen("/etc/tokend/k.pem") + 1), 0);
    CHECK_EQ_INT(tk_jcfg_resolve(&c, "k.pem", out, strlen("/etc/tokend/k.pem")), TK_E_TOOBIG);
    CHECK_EQ_INT(tk_jcfg_resolve(&c, "/abs/k.pem", out, 10), TK_E_TOOBIG);
    CHECK_EQ_STR(err, "file name too long");
}

int main(void)
{
    strcpy(dir, "/tmp/tk_jcfg_XXXXXX");
    TK_ASSERT(mkdtemp(dir) != NULL);
    RUN(test_init_where_fail);
    RUN(test_load);
    RUN(test_only_members);
    RUN(test_get_str);
    RUN(test_resolve);
    const char *files[] = {"ok.json", "bad.json"};
    char p[160];
    for (size_t i = 0; i < TK_ARRAY_LEN(files); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return check_report();
}
