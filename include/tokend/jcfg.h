/*
 * Strict JSON configuration files: the small loader every JSON config of
 * tokend shares (the IdP trust file today, the resources file next).
 *
 * The one idea: a load carries one context (tk_jcfg) that knows the file's
 * folder, a "where" label naming the part being read (e.g. an issuer), and
 * the caller's error buffer. Every helper checks one thing strictly and, on
 * failure, writes one message ("<where>: <problem>") and returns the error
 * code, so a loader is a chain of `rc = rc != 0 ? rc : check(...)` and the
 * first problem is the one reported. Unknown members and duplicate members
 * are errors: a typo must never silently weaken a check.
 *
 * Cold path only (start-up, SIGHUP): jansson allocates. Not thread-safe per
 * context; separate contexts are independent.
 */
#ifndef TOKEND_JCFG_H
#define TOKEND_JCFG_H

#include "tokend/common.h"
#include "tokend/limits.h"

#include <jansson.h>
#include <limits.h>

typedef struct tk_jcfg {
    char *err; /* caller's buffer: the message of the failure */
    size_t errcap;
    char dir[PATH_MAX];            /* the config file's folder */
    char where[TK_JCFG_WHERE_MAX]; /* prefix of messages; "" for none */
} tk_jcfg;

/* Start loading the file at path: dir = path's folder, no where label, err
 * emptied. err must hold at least one byte. Returns 0, or TK_E_TOOBIG (with
 * a message) when path does not fit PATH_MAX. */
int tk_jcfg_init(tk_jcfg *c, const char *path, char *err, size_t errcap);

/* Set the where label (printf-style; truncated to TK_JCFG_WHERE_MAX - 1
 * bytes). tk_jcfg_where(c, NULL) clears it. */
__attribute__((format(printf, 2, 3))) void tk_jcfg_where(tk_jcfg *c, const char *fmt, ...);

/* Write "<where>: <message>" (or the message alone without a label) to the
 * error buffer and return code, so callers write `return tk_jcfg_fail(...)`. */
__attribute__((format(printf, 3, 4))) int tk_jcfg_fail(tk_jcfg *c, int code, const char *fmt, ...);

/* Read the JSON object in the file at path, of at most max bytes, duplicate
 * members refused. Returns 0 with *out (the caller owns it: json_decref), or
 * -errno (cannot stat or read), TK_E_TOOBIG (larger than max) or
 * TK_E_BADINPUT (not JSON, with the line, or not an object); *out NULL then. */
int tk_jcfg_load(tk_jcfg *c, const char *path, size_t max, json_t **out);

/* Every member of obj is one of names (a NULL-terminated list); what names
 * obj in the message ("unknown member \"x\" in <what>"). 0 or TK_E_BADINPUT. */
int tk_jcfg_only_members(tk_jcfg *c, json_t *obj, const char *const *names, const char *what);

/* The string member name of obj: 1..max bytes, printable (no control
 * character, no DEL). *out points into obj (valid while obj lives, and
 * NUL-terminated); TK_SLICE_NULL when absent and not required. Returns 0 or
 * TK_E_BADINPUT (absent but required, not a string, empty, too long, or
 * holding a control character). */
int tk_jcfg_get_str(tk_jcfg *c, json_t *obj, const char *name, size_t max, bool required,
                    tk_slice *out);

/* A file name as the config file means it: absolute names as they are,
 * relative ones under the config file's folder. Writes a NUL-terminated path
 * to out; 0 or TK_E_TOOBIG when it does not fit cap. */
int tk_jcfg_resolve(tk_jcfg *c, const char *name, char *out, size_t cap);

#endif
