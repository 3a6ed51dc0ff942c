/*
 * Loading the IdP trust file (idp.h): JSON read with jansson, issuers
 * checked member by member (their keys are idp_keys.c's), and the snapshot
 * holder. Every member is checked strictly and every problem is reported with
 * the issuer (or file) it belongs to; nothing partial is ever returned.
 *
 * The snapshot holder is a mutex-protected pointer plus a generation
 * counter: workers read the counter (one relaxed atomic load per batch) and
 * only take the mutex when it moved, i.e. after a reload.
 */
#include "idp_int.h"

#include "tokend/crypto.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Algorithms ------------------------------------------------------------------ */

static const char *const alg_names[TK_ALG_COUNT] = {
    NULL, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
};

uint8_t tk_jws_alg_parse(tk_slice name)
{
    for (uint8_t a = 1; a < TK_ALG_COUNT; a++) {
        if (tk_slice_eq_str(name, alg_names[a])) {
            return a;
        }
    }
    return 0;
}

const char *tk_jws_alg_name(uint8_t alg)
{
    return alg > 0 && alg < TK_ALG_COUNT ? alg_names[alg] : "unknown";
}

/* ---- Errors and small readers ------------------------------------------------------ */

int tk_idp_fail(loader *l, int code, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l->where != NULL) {
        snprintf(l->err, l->errcap, "issuer \"%.200s\": %s", l->where, msg);
    } else {
        snprintf(l->err, l->errcap, "%s", msg);
    }
    return code;
}

/* A printable string member of at most max bytes (no control characters). */
int tk_idp_get_str(loader *l, json_t *obj, const char *name, size_t max, bool required,
                   const char **out, size_t *len)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    *len = 0;
    if (v == NULL) {
        return required ? tk_idp_fail(l, TK_E_BADINPUT, "\"%s\" is required", name) : 0;
    }
    if (!json_is_string(v)) {
        return tk_idp_fail(l, TK_E_BADINPUT, "\"%s\" must be a string", name);
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        return tk_idp_fail(l, TK_E_BADINPUT, "\"%s\" must be 1 to %zu bytes", name, max);
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return tk_idp_fail(l, TK_E_BADINPUT, "\"%s\" holds a control character", name);
        }
    }
    *out = s;
    *len = n;
    return 0;
}

static int get_int(loader *l, json_t *obj, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL) {
        return 0; /* keeps the default */
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return tk_idp_fail(l, TK_E_BADINPUT, "\"%s\" must be a whole number in [%lld, %lld]", name,
                           (long long)lo, (long long)hi);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Every member of obj is one of names (NULL-terminated). */
int tk_idp_only_members(loader *l, json_t *obj, const char *const *names, const char *what)
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
            return tk_idp_fail(l, TK_E_BADINPUT, "unknown member \"%.64s\" in %s", key, what);
        }
    }
    return 0;
}

/* Resolve a file name against the config file's folder. */
int tk_idp_resolve(loader *l, const char *name, char *out, size_t cap)
{
    int n =
        name[0] == '/' ? snprintf(out, cap, "%s", name) : snprintf(out, cap, "%s/%s", l->dir, name);
    if (n < 0 || (size_t)n >= cap) {
        return tk_idp_fail(l, TK_E_TOOBIG, "file name too long");
    }
    return 0;
}

/* Read a JSON file of at most TK_IDP_FILE_MAX bytes, duplicates refused. */
int tk_idp_load_json(loader *l, const char *path, json_t **out)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        return tk_idp_fail(l, -e, "%s: %s", path, strerror(e));
    }
    if (sb.st_size > TK_IDP_FILE_MAX) {
        return tk_idp_fail(l, TK_E_TOOBIG, "%s: larger than %d bytes", path, TK_IDP_FILE_MAX);
    }
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL) {
        return tk_idp_fail(l, TK_E_BADINPUT, "%s:%d: %s", path, je.line, je.text);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return tk_idp_fail(l, TK_E_BADINPUT, "%s: not a JSON object", path);
    }
    return 0;
}

/* ---- One issuer ------------------------------------------------------------------------ */

static int get_algs(loader *l, json_t *obj, unsigned *out)
{
    json_t *arr = json_object_get(obj, "algorithms");
    *out = 0;
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return tk_idp_fail(l, TK_E_BADINPUT, "\"algorithms\" must be a non-empty array");
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        uint8_t a = tk_jws_alg_parse(tk_slice_from_str(s));
        if (a == 0) {
            return tk_idp_fail(
                l, TK_E_BADINPUT,
                "algorithm \"%.16s\" refused (asymmetric RS/PS/ES only, never none or HS)", s);
        }
        *out |= TK_ALG_BIT(a);
    }
    return 0;
}

static int get_secrets(loader *l, json_t *obj, tk_idp_issuer *is)
{
    json_t *arr = json_object_get(obj, "webhook_secrets");
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) > TK_IDP_SECRETS_MAX) {
        return tk_idp_fail(l, TK_E_BADINPUT, "\"webhook_secrets\" must be an array of at most %d",
                           TK_IDP_SECRETS_MAX);
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        size_t n = strlen(s), len = 0;
        if (strncmp(s, "whsec_", 6) != 0 ||
            tk_b64_decode(s + 6, n - 6, is->secret[i], TK_IDP_SECRET_MAX, &len) != 0 || len < 16) {
            return tk_idp_fail(l, TK_E_BADINPUT,
                               "webhook secret %zu: expected whsec_ + base64 of 16 to %d bytes", i,
                               TK_IDP_SECRET_MAX);
        }
        is->secret_len[i] = len;
        is->nsecrets++;
    }
    return 0;
}

static int get_action(loader *l, json_t *obj, uint8_t *out)
{
    const char *s;
    size_t n;
    *out = TK_IDP_TERMINATE;
    int rc = tk_idp_get_str(l, obj, "credential_change", 16, false, &s, &n);
    if (rc != 0 || s == NULL) {
        return rc;
    }
    if (strcmp(s, "terminate") == 0 || strcmp(s, "suspend") == 0 || strcmp(s, "ignore") == 0) {
        *out = s[0] == 't' ? TK_IDP_TERMINATE : s[0] == 's' ? TK_IDP_SUSPEND : TK_IDP_IGNORE;
        return 0;
    }
    return tk_idp_fail(l, TK_E_BADINPUT,
                       "\"credential_change\" must be terminate, suspend or ignore");
}

static int issuer_basics(loader *l, json_t *obj, tk_idp_issuer *is)
{
    const char *s;
    size_t n;
    int rc = tk_idp_get_str(l, obj, "audience", TK_URL_MAX, true, &s, &n);
    if (rc == 0) {
        memcpy(is->audience, s, n + 1);
        is->audience_len = n;
    }
    is->leeway = TK_IDP_LEEWAY_DEFAULT;
    is->max_age = TK_IDP_MAX_AGE_DEFAULT;
    rc = rc != 0 ? rc : get_int(l, obj, "leeway", 0, 600, &is->leeway);
    rc = rc != 0 ? rc : get_int(l, obj, "max_age", 60, 30 * 86400, &is->max_age);
    json_t *ame = json_object_get(obj, "allow_missing_exp");
    if (rc == 0 && ame != NULL && !json_is_boolean(ame)) {
        rc = tk_idp_fail(l, TK_E_BADINPUT, "\"allow_missing_exp\" must be true or false");
    }
    is->allow_missing_exp = json_is_true(ame);
    rc = rc != 0 ? rc : tk_idp_get_str(l, obj, "ssf_bearer", TK_IDP_BEARER_MAX, false, &s, &n);
    if (rc == 0 && s != NULL) {
        memcpy(is->ssf_bearer, s, n + 1);
        is->ssf_bearer_len = n;
    }
    rc = rc != 0 ? rc : get_action(l, obj, &is->credential_change);
    return rc != 0 ? rc : get_secrets(l, obj, is);
}

static int issuer_keys(loader *l, json_t *obj, tk_idp_issuer *is)
{
    unsigned algs;
    int rc = get_algs(l, obj, &algs);
    const char *file;
    size_t n;
    rc = rc != 0 ? rc : tk_idp_get_str(l, obj, "jwks_file", PATH_MAX - 1, false, &file, &n);
    if (rc == 0 && file != NULL) {
        char path[PATH_MAX];
        json_t *jwks = NULL;
        rc = tk_idp_resolve(l, file, path, sizeof path);
        rc = rc != 0 ? rc : tk_idp_load_json(l, path, &jwks);
        rc = rc != 0 ? rc : tk_idp_add_jwks(l, is, jwks, algs);
        json_decref(jwks);
    }
    json_t *inline_jwks = json_object_get(obj, "jwks");
    if (rc == 0 && inline_jwks != NULL) {
        rc = tk_idp_add_jwks(l, is, inline_jwks, algs);
    }
    json_t *keys = json_object_get(obj, "keys");
    if (rc == 0 && keys != NULL && !json_is_array(keys)) {
        rc = tk_idp_fail(l, TK_E_BADINPUT, "\"keys\" must be an array");
    }
    size_t i;
    json_t *spec;
    json_array_foreach(keys, i, spec)
    {
        rc = rc != 0 ? rc : tk_idp_add_pem(l, is, spec, algs);
    }
    if (rc == 0 && is->nkeys == 0 && is->nsecrets == 0) {
        rc = tk_idp_fail(l, TK_E_BADINPUT,
                         "no keys and no webhook secrets: nothing could be verified");
    }
    return rc;
}

static const char *const issuer_members[] = {"issuer",
                                             "audience",
                                             "jwks_file",
                                             "jwks",
                                             "keys",
                                             "algorithms",
                                             "leeway",
                                             "max_age",
                                             "allow_missing_exp",
                                             "ssf_bearer",
                                             "webhook_secrets",
                                             "credential_change",
                                             NULL};

static int load_issuer(loader *l, json_t *obj, tk_idp_trust *t)
{
    l->where = NULL;
    if (!json_is_object(obj)) {
        return tk_idp_fail(l, TK_E_BADINPUT, "each of \"issuers\" must be an object");
    }
    const char *iss;
    size_t n;
    int rc = tk_idp_get_str(l, obj, "issuer", TK_IDP_ISS_MAX, true, &iss, &n);
    if (rc != 0) {
        return rc;
    }
    l->where = iss;
    if (tk_idp_find(t, (tk_slice){iss, n}) != NULL) {
        return tk_idp_fail(l, TK_E_BADINPUT, "listed twice");
    }
    tk_idp_issuer *is = &t->issuers[t->n];
    memcpy(is->issuer, iss, n + 1);
    is->issuer_len = n;
    t->n++; /* counted now, so a failure below frees its keys */
    rc = tk_idp_only_members(l, obj, issuer_members, "an issuer");
    rc = rc != 0 ? rc : issuer_basics(l, obj, is);
    return rc != 0 ? rc : issuer_keys(l, obj, is);
}

/* ---- Load / free ------------------------------------------------------------------------- */

static void trust_free(tk_idp_trust *t)
{
    for (unsigned i = 0; t->issuers != NULL && i < t->n; i++) {
        tk_idp_issuer *is = &t->issuers[i];
        for (unsigned k = 0; k < is->nkeys; k++) {
            EVP_PKEY_free(is->keys[k].pkey);
        }
        tk_cleanse(is, sizeof *is);
    }
    free(t->issuers);
    free(t);
}

int tk_idp_load(const char *path, tk_idp_trust **out, char *err, size_t errcap)
{
    loader l = {.err = err, .errcap = errcap};
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(l.dir, sizeof l.dir, "%s", dirname(tmp));
    json_t *root = NULL;
    int rc = tk_idp_load_json(&l, path, &root);
    json_t *arr = rc == 0 ? json_object_get(root, "issuers") : NULL;
    static const char *const top[] = {"issuers", NULL};
    rc = rc != 0 ? rc : tk_idp_only_members(&l, root, top, "the top level");
    if (rc == 0 && (!json_is_array(arr) || json_array_size(arr) > TK_IDP_MAX)) {
        rc = tk_idp_fail(&l, TK_E_BADINPUT, "\"issuers\" must be an array of at most %d",
                         TK_IDP_MAX);
    }
    tk_idp_trust *t = calloc(1, sizeof *t);
    if (t != NULL) {
        t->issuers = calloc(TK_IDP_MAX, sizeof *t->issuers);
    }
    if (rc == 0 && (t == NULL || t->issuers == NULL)) {
        rc = -ENOMEM;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(arr, i, obj)
    {
        rc = rc != 0 ? rc : load_issuer(&l, obj, t);
    }
    json_decref(root);
    if (rc != 0) {
        if (t != NULL) {
            trust_free(t);
        }
        return rc;
    }
    t->refs = 1;
    *out = t;
    return 0;
}

void tk_idp_ref(tk_idp_trust *t)
{
    if (t != NULL) {
        __atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
    }
}

void tk_idp_unref(tk_idp_trust *t)
{
    if (t != NULL && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        trust_free(t);
    }
}

const tk_idp_issuer *tk_idp_find(const tk_idp_trust *t, tk_slice iss)
{
    for (unsigned i = 0; t != NULL && i < t->n; i++) {
        const tk_idp_issuer *is = &t->issuers[i];
        if (is->issuer_len == iss.len && memcmp(is->issuer, iss.p, iss.len) == 0) {
            return is;
        }
    }
    return NULL;
}

const tk_idp_key *tk_idp_key_for(const tk_idp_issuer *iss, tk_slice kid, bool has_kid)
{
    if (!has_kid) {
        return iss->nkeys == 1 ? &iss->keys[0] : NULL;
    }
    for (unsigned i = 0; i < iss->nkeys; i++) {
        const tk_idp_key *k = &iss->keys[i];
        if (k->kid_len > 0 && k->kid_len == kid.len && memcmp(k->kid, kid.p, kid.len) == 0) {
            return k;
        }
    }
    return NULL;
}

/* ---- Holder ------------------------------------------------------------------------------- */

struct tk_idp_holder {
    pthread_mutex_t mu;
    tk_idp_trust *cur;
    uint64_t gen; /* atomic */
};

int tk_idp_holder_new(tk_idp_trust *initial, tk_idp_holder **out)
{
    tk_idp_holder *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return -ENOMEM;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->cur = initial;
    h->gen = 1;
    *out = h;
    return 0;
}

void tk_idp_holder_free(tk_idp_holder *h)
{
    if (h != NULL) {
        tk_idp_unref(h->cur);
        pthread_mutex_destroy(&h->mu);
        free(h);
    }
}

void tk_idp_holder_swap(tk_idp_holder *h, tk_idp_trust *t)
{
    pthread_mutex_lock(&h->mu);
    tk_idp_trust *old = h->cur;
    h->cur = t;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&h->mu);
    tk_idp_unref(old); /* freed here or by the last worker still holding it */
}

uint64_t tk_idp_holder_gen(const tk_idp_holder *h)
{
    return __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
}

tk_idp_trust *tk_idp_holder_get(tk_idp_holder *h, uint64_t *gen)
{
    pthread_mutex_lock(&h->mu);
    tk_idp_trust *t = h->cur;
    tk_idp_ref(t);
    *gen = __atomic_load_n(&h->gen, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&h->mu);
    return t;
}
