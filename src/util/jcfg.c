/*
 * Strict JSON configuration files (jcfg.h): the checks every JSON config
 * loader shares, each writing its one message through tk_jcfg_fail. Moved
 * here from the IdP trust loader so that its parts (and the resources
 * loader) share one copy instead of calling into each other.
 */
#include "tokend/jcfg.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tk_jcfg_init(tk_jcfg *c, const char *path, char *err, size_t errcap)
{
    TK_ASSERT(err != NULL && errcap > 0);
    memset(c, 0, sizeof *c);
    c->err = err;
    c->errcap = errcap;
    err[0] = '\0';
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return tk_jcfg_fail(c, TK_E_TOOBIG, "config file name too long");
    }
    snprintf(c->dir, sizeof c->dir, "%s", dirname(tmp)); /* dirname's result is shorter */
    return 0;
}

void tk_jcfg_where(tk_jcfg *c, const char *fmt, ...)
{
    c->where[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->where, sizeof c->where, fmt, ap);
        va_end(ap);
    }
}

int tk_jcfg_fail(tk_jcfg *c, int code, const char *fmt, ...)
{
    char msg[TK_JCFG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->where[0] != '\0') {
        snprintf(c->err, c->errcap, "%s: %s", c->where, msg);
    } else {
        snprintf(c->err, c->errcap, "%s", msg);
    }
    return code;
}

int tk_jcfg_load(tk_jcfg *c, const char *path, size_t max, json_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        return tk_jcfg_fail(c, -e, "%s: %s", path, strerror(e));
    }
    /* Read at most max + 1 bytes: the size is judged on what was read, so a
     * file that grows after a stat cannot slip a larger document through. */
    char *buf = malloc(max + 1);
    size_t n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
    bool read_err = ferror(f) != 0;
    fclose(f);
    if (buf == NULL) {
        return tk_jcfg_fail(c, -ENOMEM, "%s: out of memory", path);
    }
    if (read_err || n > max) {
        free(buf);
        return read_err ? tk_jcfg_fail(c, -EIO, "%s: read error", path)
                        : tk_jcfg_fail(c, TK_E_TOOBIG, "%s: larger than %zu bytes", path, max);
    }
    json_error_t je;
    *out = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (*out == NULL) {
        return tk_jcfg_fail(c, TK_E_BADINPUT, "%s:%d: %s", path, je.line, je.text);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return tk_jcfg_fail(c, TK_E_BADINPUT, "%s: not a JSON object", path);
    }
    return 0;
}

int tk_jcfg_only_members(tk_jcfg *c, json_t *obj, const char *const *names, const char *what)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; names[i] != NULL && !known; i++) {
            known = strcmp(key, names[i]) == 0;
        }
        if (!known) {
            return tk_jcfg_fail(c, TK_E_BADINPUT, "unknown member \"%.64s\" in %s", key, what);
        }
    }
    return 0;
}

int tk_jcfg_get_str(tk_jcfg *c, json_t *obj, const char *name, size_t max, bool required,
                    tk_slice *out)
{
    json_t *v = json_object_get(obj, name);
    *out = TK_SLICE_NULL;
    if (v == NULL) {
        return required ? tk_jcfg_fail(c, TK_E_BADINPUT, "\"%s\" is required", name) : 0;
    }
    if (!json_is_string(v)) {
        return tk_jcfg_fail(c, TK_E_BADINPUT, "\"%s\" must be a string", name);
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        return tk_jcfg_fail(c, TK_E_BADINPUT, "\"%s\" must be 1 to %zu bytes", name, max);
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return tk_jcfg_fail(c, TK_E_BADINPUT, "\"%s\" holds a control character", name);
        }
    }
    *out = (tk_slice){s, n};
    return 0;
}

int tk_jcfg_resolve(tk_jcfg *c, const char *name, char *out, size_t cap)
{
    int n =
        name[0] == '/' ? snprintf(out, cap, "%s", name) : snprintf(out, cap, "%s/%s", c->dir, name);
    if (n < 0 || (size_t)n >= cap) {
        return tk_jcfg_fail(c, TK_E_TOOBIG, "file name too long");
    }
    return 0;
}
