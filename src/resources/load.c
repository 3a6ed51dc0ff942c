/*
 * Protected resources, the cold half: reading the JSON file into the
 * immutable table that match.c scans.
 *
 * The idea: do every bit of string work once, at load. The table keeps each
 * resource's challenges, header prefixes and metadata URL ready to copy, and
 * an order array sorted by specificity (host:port, host, "*"; then longer
 * prefixes first), so the first covering resource in that order is the
 * answer. Strings live in a small arena freed with the table.
 */
#include "resources_int.h"

#include "tokend/http_uri.h"
#include "tokend/jcfg.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Arena ------------------------------------------------------------------ */

#define BLOCK_SIZE 65536

static char *arena_alloc(tk_resources *rs, size_t n)
{
    block *b = rs->arena;
    if (b == NULL || b->cap - b->len < n) {
        size_t cap = n > BLOCK_SIZE ? n : BLOCK_SIZE;
        b = malloc(sizeof(block) + cap);
        if (b == NULL) {
            return NULL;
        }
        b->cap = cap;
        b->len = 0;
        b->next = rs->arena;
        rs->arena = b;
    }
    char *p = b->data + b->len;
    b->len += n;
    return p;
}

/* A string builder over a bounded stack buffer; the result is copied into
 * the arena by sb_done. Overflow is sticky. */
typedef struct sb {
    char buf[4096];
    size_t len;
    bool overflow;
} sb;

static void sb_put(sb *s, const char *p, size_t n)
{
    if (s->overflow || n > sizeof s->buf - 1 - s->len) {
        s->overflow = true;
        return;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void sb_str(sb *s, const char *p)
{
    sb_put(s, p, strlen(p));
}

static void sb_slice(sb *s, tk_slice v)
{
    sb_put(s, v.p, v.len);
}

/* Copy into the arena, NUL-terminated; NULL on overflow or no memory. */
static const char *sb_done(tk_resources *rs, const sb *s, tk_slice *out)
{
    if (s->overflow) {
        return NULL;
    }
    char *p = arena_alloc(rs, s->len + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, s->buf, s->len);
    p[s->len] = '\0';
    if (out != NULL) {
        *out = (tk_slice){p, s->len};
    }
    return p;
}

void tk_resources_free(tk_resources *rs)
{
    if (rs == NULL) {
        return;
    }
    block *b = rs->arena;
    while (b != NULL) { /* bounded by the blocks allocated at load */
        block *next = b->next;
        free(b);
        b = next;
    }
    free(rs->r);
    free(rs);
}

/* ---- Character classes ---------------------------------------------------------- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 9110 tchar. */
static bool is_tchar(char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 6749 §3.3 scope-token character: also safe inside a quoted-string. */
static bool is_scope_char(char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

/* Printable ASCII without '"' and '\': safe inside a quoted-string as is. */
static bool is_qtext(char c)
{
    return c == ' ' || is_scope_char(c);
}

/* What forward-auth accepts as a request method (forward_auth.c: method_ok). */
static bool is_method_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The same, case-blind: a key that is a method written in lower case. */
static bool is_lower_method_char(char c)
{
    return is_method_char(c) || (c >= 'a' && c <= 'z');
}

static bool all_of(tk_slice s, bool (*ok)(char))
{
    for (size_t i = 0; i < s.len; i++) {
        if (!ok(s.p[i])) {
            return false;
        }
    }
    return true;
}

/* ---- Loading: helpers ------------------------------------------------------------------- */

typedef struct loader {
    tk_resources *rs;
    tk_jcfg jc; /* the shared strict-JSON checks (util/jcfg.c) write the message */
    tk_slice ident[TK_IDENT_COUNT]; /* global names (no suffix) */
} loader;

/* Every refusal of this file is TK_E_INVALID (resources.h): the jcfg checks
 * answer TK_E_BADINPUT, mapped here at the one place they are called. */
static int refused(int rc)
{
    return rc == TK_E_BADINPUT ? TK_E_INVALID : rc;
}

__attribute__((format(printf, 2, 3))) static int bad(loader *ld, const char *fmt, ...)
{
    char msg[TK_JCFG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tk_jcfg_where(&ld->jc, NULL);
    return tk_jcfg_fail(&ld->jc, TK_E_INVALID, "%s", msg);
}

static tk_slice jstr(const json_t *v)
{
    return (tk_slice){json_string_value(v), json_string_length(v)};
}

/* Copy a slice into the arena (NUL-terminated). */
static int keep(loader *ld, tk_slice s, tk_slice *out)
{
    char *p = arena_alloc(ld->rs, s.len + 1);
    if (p == NULL) {
        return -ENOMEM;
    }
    if (s.len > 0) {
        memcpy(p, s.p, s.len);
    }
    p[s.len] = '\0';
    *out = (tk_slice){p, s.len};
    return 0;
}

/* Only these members are allowed in obj (where names it in the message). */
static int only_members(loader *ld, const json_t *obj, const char *where, const char *const *names)
{
    tk_jcfg_where(&ld->jc, NULL); /* "unknown member "x" in <where>" */
    return refused(tk_jcfg_only_members(&ld->jc, (json_t *)obj, names, where));
}

/* A printable string member of 1..max bytes: required or optional (*out
 * empty when absent). */
static int get_string(loader *ld, const json_t *obj, const char *key, const char *where,
                      bool required, size_t max, tk_slice *out)
{
    tk_jcfg_where(&ld->jc, "%s", where);
    return refused(tk_jcfg_get_str(&ld->jc, (json_t *)obj, key, max, required, out));
}

/* An array of scope tokens joined by single spaces into the arena. */
static int scope_list(loader *ld, const json_t *arr, const char *where, tk_slice *joined,
                      tk_slice *each, unsigned *n)
{
    if (!json_is_array(arr) || json_array_size(arr) > TK_RESOURCE_SCOPES_MAX) {
        return bad(ld, "%s: expected an array of at most %d scopes", where, TK_RESOURCE_SCOPES_MAX);
    }
    sb s = {.len = 0};
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        tk_slice t = json_is_string(v) ? jstr(v) : TK_SLICE_NULL;
        if (t.len == 0 || !all_of(t, is_scope_char)) {
            return bad(ld, "%s: scope %zu is not a scope token (RFC 6749 §3.3)", where, i);
        }
        if (each != NULL && keep(ld, t, &each[i]) != 0) {
            return -ENOMEM;
        }
        if (i > 0) {
            sb_put(&s, " ", 1);
        }
        sb_slice(&s, t);
    }
    if (n != NULL) {
        *n = (unsigned)json_array_size(arr);
    }
    if (s.len > TK_SCOPE_MAX || sb_done(ld->rs, &s, joined) == NULL) {
        return bad(ld, "%s: scopes longer than %d bytes", where, TK_SCOPE_MAX);
    }
    return 0;
}

/* ---- Loading: one resource ------------------------------------------------------------------- */

/* A normalised host: its name copied into the arena. */
static int keep_host(loader *ld, tk_slice raw, tk_http_host *out)
{
    char buf[TK_HTTP_HOST_MAX + 1];
    tk_http_host h;
    int rc = tk_http_host_normalize(raw, buf, sizeof buf, &h);
    if (rc != 0) {
        return rc;
    }
    rc = keep(ld, h.name, &h.name);
    *out = h;
    return rc;
}

/* "https://" authority [path]; no query, no fragment. */
static int parse_identifier(loader *ld, tk_resource *r, const char *where)
{
    tk_slice id = r->id;
    static const char https[] = "https://";
    if (id.len <= sizeof https - 1 || memcmp(id.p, https, sizeof https - 1) != 0) {
        return bad(ld, "%s: \"resource\" must be an https URL (RFC 9728 §1.2)", where);
    }
    for (size_t i = 0; i < id.len; i++) {
        char c = id.p[i];
        if (c == '?' || c == '#' || (unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f ||
            c == '"' || c == '\\') {
            return bad(ld,
                       "%s: \"resource\" must have no query, fragment, space, quote or "
                       "control character",
                       where);
        }
    }
    size_t a = sizeof https - 1, e = a;
    while (e < id.len && id.p[e] != '/') {
        e++;
    }
    tk_slice auth = {id.p + a, e - a};
    int rc = keep_host(ld, auth, &r->id_host);
    if (rc == TK_E_BADINPUT) {
        return bad(ld,
                   "%s: \"resource\" has a bad host (letters, digits, '-', '_', '.' or an "
                   "IPv6 literal, then an optional port)",
                   where);
    }
    if (rc != 0) {
        return rc;
    }
    sb s = {.len = 0};
    for (size_t i = 0; i < auth.len; i++) {
        char c = res_lower(auth.p[i]);
        sb_put(&s, &c, 1);
    }
    if (sb_done(ld->rs, &s, &r->id_authority) == NULL) {
        return -ENOMEM;
    }
    /* RFC 9728 §3.1: the well-known segment goes between host and path; a
     * path of just "/" is dropped. */
    tk_slice path = {id.p + e, id.len - e};
    s.len = 0;
    sb_str(&s, "/.well-known/oauth-protected-resource");
    if (!(path.len == 1 && path.p[0] == '/')) {
        sb_slice(&s, path);
    }
    if (sb_done(ld->rs, &s, &r->metadata_path) == NULL) {
        return -ENOMEM;
    }
    s.len = 0;
    sb_str(&s, https);
    sb_slice(&s, auth);
    sb_slice(&s, r->metadata_path);
    return sb_done(ld->rs, &s, &r->metadata_url) == NULL ? -ENOMEM : 0;
}

/* "*", or host[:port] normalised (tk_http_host_normalize). */
static int parse_host(loader *ld, tk_resource *r, const json_t *o, const char *where)
{
    tk_slice h;
    int rc = get_string(ld, o, "host", where, false, 255, &h);
    if (rc != 0) {
        return rc;
    }
    if (h.len == 1 && h.p[0] == '*') {
        r->host_any = true;
        return keep(ld, h, &r->host);
    }
    if (h.len == 0) {
        h = r->id_authority;
    }
    rc = keep_host(ld, h, &r->vhost);
    if (rc == TK_E_BADINPUT) {
        return bad(ld,
                   "%s: \"host\" must be \"*\" or host[:port] (letters, digits, '-', '_', "
                   "'.' or an IPv6 literal; a port of 1 to 65535)",
                   where);
    }
    if (rc != 0) {
        return rc;
    }
    r->host_port = r->vhost.port != 0;
    sb s = {.len = 0};
    sb_slice(&s, r->vhost.name);
    if (r->host_port) {
        char port[8];
        int n = snprintf(port, sizeof port, ":%u", (unsigned)r->vhost.port);
        sb_put(&s, port, (size_t)n);
    }
    return sb_done(ld->rs, &s, &r->host) == NULL ? -ENOMEM : 0;
}

/* A prefix is a path that normalises to itself (so a request path can be
 * compared to it byte for byte). Default: the identifier's path, without a
 * trailing '/' ("https://api.example.com/v1/" covers /v1 and /v1/…). */
static int parse_prefix(loader *ld, tk_resource *r, const json_t *o, const char *where)
{
    tk_slice p;
    int rc = get_string(ld, o, "path_prefix", where, false, 1024, &p);
    if (rc != 0) {
        return rc;
    }
    if (p.len == 0) {
        r->prefix_default = true;
        size_t at = sizeof "https://" - 1 + r->id_authority.len;
        p = (tk_slice){r->id.p + at, r->id.len - at};
        if (p.len > 1 && p.p[p.len - 1] == '/') {
            p.len--;
        }
        if (p.len == 0) {
            p = TK_SLICE_LIT("/");
        }
    }
    char buf[1024];
    size_t n;
    if (p.len > sizeof buf || p.p[0] != '/' ||
        tk_http_path_normalize(p, TK_HTTP_PARAMS_REFUSE, buf, sizeof buf, &n, NULL) != 0 ||
        n != p.len || memcmp(buf, p.p, n) != 0) {
        if (r->prefix_default) {
            return bad(ld,
                       "%s: the identifier's path \"%.*s\" is not a normalised path; give "
                       "\"path_prefix\" (the path it covers, e.g. \"/\")",
                       where, (int)p.len, p.p);
        }
        return bad(ld,
                   "%s: \"path_prefix\" must be a normalised path starting with '/' (no "
                   "%%-escapes, ';', '\\', '//', '.', '..', '?' or '#')",
                   where);
    }
    return keep(ld, p, &r->prefix);
}

/* realm="R", [error=…, scope="S", ] resource_metadata="URL" */
static const char *challenge(loader *ld, const tk_resource *r, const char *error, tk_slice scope)
{
    sb s = {.len = 0};
    sb_str(&s, "WWW-Authenticate: Bearer realm=\"");
    sb_slice(&s, r->realm);
    sb_str(&s, "\"");
    if (error != NULL) {
        sb_str(&s, ", error=\"");
        sb_str(&s, error);
        sb_str(&s, "\"");
    }
    if (scope.p != NULL) {
        sb_str(&s, ", scope=\"");
        sb_slice(&s, scope);
        sb_str(&s, "\"");
    }
    sb_str(&s, ", resource_metadata=\"");
    sb_slice(&s, r->metadata_url);
    sb_str(&s, "\"\r\n");
    return sb_done(ld->rs, &s, NULL);
}

static int parse_rules(loader *ld, tk_resource *r, const json_t *o, const char *where)
{
    json_t *rules = json_object_get(o, "required_scopes");
    if (rules == NULL) {
        return 0;
    }
    if (!json_is_object(rules) || json_object_size(rules) > TK_RESOURCE_RULES_MAX) {
        return bad(ld, "%s: \"required_scopes\" must be an object of at most %d methods", where,
                   TK_RESOURCE_RULES_MAX);
    }
    const char *m;
    json_t *v;
    json_object_foreach(rules, m, v)
    {
        tk_slice method = tk_slice_from_str(m);
        bool any = method.len == 1 && m[0] == '*';
        if (method.len == 0 || method.len > TK_METHOD_MAX || (!any && !all_of(method, is_tchar))) {
            return bad(ld, "%s (%s): required_scopes: \"%s\" is not a method", where, r->id.p, m);
        }
        /* Forward-auth takes only upper-case methods ([A-Z0-9_-], every
         * registered one) and compares them exactly: any other key never
         * matches, and its requests would silently get the "*" rule. */
        if (!any && !all_of(method, is_method_char)) {
            return bad(ld,
                       "%s (%s): required_scopes: \"%s\" can never match: methods are "
                       "compared as sent, upper-case letters, digits, '-' and '_' only%s",
                       where, r->id.p, m,
                       all_of(method, is_lower_method_char) ? " (write it in upper case)" : "");
        }
        tk_scope_rule *u = &r->rules[r->nrules];
        char w[300];
        snprintf(w, sizeof w, "%s: required_scopes.%s", where, m);
        int rc = keep(ld, method, &u->method);
        rc = rc != 0 ? rc : scope_list(ld, v, w, &u->scope, NULL, NULL);
        if (rc != 0) {
            return rc;
        }
        u->challenge = challenge(ld, r, "insufficient_scope", u->scope);
        if (u->challenge == NULL) {
            return bad(ld, "%s: challenge too long", w);
        }
        r->nrules++;
    }
    return 0;
}

static const char *const ident_keys[TK_IDENT_COUNT] = {"subject", "client", "scope",
                                                       "session", "actor",  "issuer"};
static const char *const ident_defaults[TK_IDENT_COUNT] = {"X-Auth-Subject", "X-Auth-Client",
                                                           "X-Auth-Scope",   "X-Auth-Session",
                                                           "X-Auth-Actor",   "X-Auth-Issuer"};

/* An identity_headers object onto names (missing keys keep their value). */
static int parse_ident(loader *ld, const json_t *o, const char *where, tk_slice names[])
{
    if (o == NULL) {
        return 0;
    }
    static const char *const allowed[] = {"subject", "client", "scope", "session",
                                          "actor",   "issuer", NULL};
    if (!json_is_object(o)) {
        return bad(ld, "%s: \"identity_headers\" must be an object", where);
    }
    int rc = only_members(ld, o, where, allowed);
    for (size_t i = 0; i < TK_IDENT_COUNT && rc == 0; i++) {
        tk_slice n;
        rc = get_string(ld, o, ident_keys[i], where, false, TK_HEADER_NAME_MAX, &n);
        if (rc == 0 && n.len > 0 && !all_of(n, is_tchar)) {
            rc = bad(ld, "%s: identity header \"%s\" is not a header name", where, n.p);
        }
        if (rc == 0 && n.len > 0) {
            rc = keep(ld, n, &names[i]);
        }
    }
    return rc;
}

static int ident_prefixes(loader *ld, tk_resource *r, const tk_slice names[])
{
    for (size_t i = 0; i < TK_IDENT_COUNT; i++) {
        sb s = {.len = 0};
        sb_slice(&s, names[i]);
        sb_str(&s, ": ");
        if (sb_done(ld->rs, &s, &r->ident[i]) == NULL) {
            return -ENOMEM;
        }
    }
    return 0;
}

static uint32_t fnv1a(tk_slice s)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < s.len; i++) {
        h = (h ^ (uint8_t)s.p[i]) * 16777619u;
    }
    return h;
}

static int parse_resource(loader *ld, const json_t *o, size_t idx, tk_resource *r)
{
    static const char *const allowed[] = {"resource",
                                          "host",
                                          "path_prefix",
                                          "name",
                                          "realm",
                                          "scopes_supported",
                                          "required_scopes",
                                          "identity_headers",
                                          NULL};
    char where[64];
    snprintf(where, sizeof where, "resources[%zu]", idx);
    if (!json_is_object(o)) {
        return bad(ld, "%s: expected an object", where);
    }
    int rc = only_members(ld, o, where, allowed);
    tk_slice id, name, realm;
    rc = rc != 0 ? rc : get_string(ld, o, "resource", where, true, TK_RESOURCE_ID_MAX, &id);
    rc = rc != 0 ? rc : get_string(ld, o, "name", where, false, TK_NAME_MAX, &name);
    rc = rc != 0 ? rc : get_string(ld, o, "realm", where, false, TK_NAME_MAX, &realm);
    rc = rc != 0 ? rc : keep(ld, id, &r->id);
    rc = rc != 0 ? rc : keep(ld, name, &r->name);
    if (rc == 0 && realm.len > 0 && !all_of(realm, is_qtext)) {
        rc = bad(ld, "%s: \"realm\" must be printable ASCII without '\"' or '\\'", where);
    }
    rc = rc != 0 ? rc : keep(ld, realm.len > 0 ? realm : TK_SLICE_LIT("tokend"), &r->realm);
    rc = rc != 0 ? rc : parse_identifier(ld, r, where);
    rc = rc != 0 ? rc : parse_host(ld, r, o, where);
    rc = rc != 0 ? rc : parse_prefix(ld, r, o, where);
    json_t *ss = json_object_get(o, "scopes_supported");
    tk_slice joined = TK_SLICE_NULL;
    if (rc == 0 && ss != NULL) {
        rc = scope_list(ld, ss, where, &joined, r->scopes, &r->nscopes);
    }
    rc = rc != 0 ? rc : parse_rules(ld, r, o, where);
    tk_slice names[TK_IDENT_COUNT];
    memcpy(names, ld->ident, sizeof names);
    rc = rc != 0 ? rc : parse_ident(ld, json_object_get(o, "identity_headers"), where, names);
    rc = rc != 0 ? rc : ident_prefixes(ld, r, names);
    if (rc == 0) {
        /* The 401s name the scopes the resource offers (scope="…", RFC 6750
         * §3): what an MCP client asks for at /authorize. */
        tk_slice hint = joined.len > 0 ? joined : TK_SLICE_NULL;
        r->challenge_missing = challenge(ld, r, NULL, hint);
        r->challenge_invalid = challenge(ld, r, "invalid_token", hint);
        if (r->challenge_missing == NULL || r->challenge_invalid == NULL) {
            rc = -ENOMEM;
        }
        r->id_hash = fnv1a(r->id);
    }
    return rc;
}

/* ---- Loading: the file ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} trusted_names[] = {
    {"X-Forwarded-Method", TK_TRUST_FWD_METHOD}, {"X-Original-Method", TK_TRUST_ORIG_METHOD},
    {"X-Forwarded-Host", TK_TRUST_FWD_HOST},     {"X-Forwarded-Uri", TK_TRUST_FWD_URI},
    {"X-Original-URI", TK_TRUST_ORIG_URI},       {"X-Original-URL", TK_TRUST_ORIG_URL},
};

static int parse_trusted(loader *ld, const json_t *arr)
{
    if (arr == NULL) {
        ld->rs->trusted = TK_TRUST_ALL;
        return 0;
    }
    if (!json_is_array(arr)) {
        return bad(ld, "\"trusted_headers\" must be an array of header names");
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        tk_slice n = json_is_string(v) ? jstr(v) : TK_SLICE_NULL;
        unsigned bit = 0;
        for (size_t k = 0; k < TK_ARRAY_LEN(trusted_names) && bit == 0; k++) {
            bit = res_eq_nocase(n, tk_slice_from_str(trusted_names[k].name)) ? trusted_names[k].bit
                                                                             : 0;
        }
        if (bit == 0) {
            return bad(ld,
                       "trusted_headers[%zu]: not one of X-Forwarded-Method, X-Original-Method, "
                       "X-Forwarded-Host, X-Forwarded-Uri, X-Original-URI, X-Original-URL",
                       i);
        }
        ld->rs->trusted |= bit;
    }
    return 0;
}

/* "path_parameters": what ';' in a request path means (enum tk_http_params). */
static int parse_params(loader *ld, const json_t *root)
{
    tk_slice v;
    int rc = get_string(ld, root, "path_parameters", "file", false, 16, &v);
    if (rc != 0 || v.len == 0 || tk_slice_eq_str(v, "refuse")) {
        ld->rs->params = TK_HTTP_PARAMS_REFUSE;
        return rc;
    }
    if (tk_slice_eq_str(v, "strip")) {
        ld->rs->params = TK_HTTP_PARAMS_STRIP;
        return 0;
    }
    return bad(ld, "\"path_parameters\" must be \"refuse\" (the default) or \"strip\"");
}

/* "windows_paths": whether forward-auth refuses a path segment Windows reads
 * as another name (tk_http_path_windows_alias): "refuse" (the default) or
 * "allow", for upstreams that are not Windows and serve such names. */
static int parse_windows(loader *ld, const json_t *root)
{
    tk_slice v;
    int rc = get_string(ld, root, "windows_paths", "file", false, 16, &v);
    ld->rs->windows_allowed = false;
    if (rc != 0 || v.len == 0 || tk_slice_eq_str(v, "refuse")) {
        return rc;
    }
    if (tk_slice_eq_str(v, "allow")) {
        ld->rs->windows_allowed = true;
        return 0;
    }
    return bad(ld, "\"windows_paths\" must be \"refuse\" (the default) or \"allow\"");
}

static unsigned specificity(const tk_resource *r)
{
    if (r->host_any) {
        return 0;
    }
    return r->host_port ? 2 : 1;
}

/* Sort the match order (insertion sort: n <= TK_RESOURCES_MAX, once). */
static void sort_order(tk_resources *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        rs->order[i] = (uint16_t)i;
    }
    for (size_t i = 1; i < rs->n; i++) {
        uint16_t x = rs->order[i];
        const tk_resource *a = &rs->r[x];
        size_t j = i;
        while (j > 0) {
            const tk_resource *b = &rs->r[rs->order[j - 1]];
            bool before = specificity(a) > specificity(b) ||
                          (specificity(a) == specificity(b) && a->prefix.len > b->prefix.len);
            if (!before) {
                break;
            }
            rs->order[j] = rs->order[j - 1];
            j--;
        }
        rs->order[j] = x;
    }
}

static int check_unique(loader *ld)
{
    tk_resources *rs = ld->rs;
    for (size_t i = 0; i < rs->n; i++) {
        for (size_t j = 0; j < i; j++) {
            const tk_resource *a = &rs->r[i], *b = &rs->r[j];
            if (tk_slice_eq(a->id, b->id)) {
                return bad(ld, "resources[%zu] and [%zu]: same \"resource\" identifier", j, i);
            }
            if (tk_slice_eq(a->metadata_url, b->metadata_url)) {
                return bad(ld,
                           "resources[%zu] and [%zu]: same metadata URL (identifiers differ "
                           "only by a trailing '/')",
                           j, i);
            }
            if (tk_slice_eq(a->host, b->host) && tk_slice_eq(a->prefix, b->prefix)) {
                return bad(ld,
                           "resources[%zu] and [%zu]: both cover host \"%s\" and path prefix "
                           "\"%s\"%s; give one of them a \"path_prefix\" (or \"host\") of "
                           "its own",
                           j, i, a->host.p, a->prefix.p,
                           a->prefix_default && b->prefix_default
                               ? " (the default: each identifier's path)"
                               : "");
            }
        }
    }
    return 0;
}

static int parse_root(loader *ld, const json_t *root)
{
    static const char *const allowed[] = {"trusted_headers", "identity_headers", "path_parameters",
                                          "windows_paths",   "resources",        NULL};
    if (!json_is_object(root)) {
        return bad(ld, "the file must hold a JSON object");
    }
    int rc = only_members(ld, root, "file", allowed);
    rc = rc != 0 ? rc : parse_params(ld, root);
    rc = rc != 0 ? rc : parse_windows(ld, root);
    rc = rc != 0 ? rc : parse_trusted(ld, json_object_get(root, "trusted_headers"));
    for (size_t i = 0; i < TK_IDENT_COUNT; i++) {
        ld->ident[i] = tk_slice_from_str(ident_defaults[i]);
    }
    rc = rc != 0 ? rc
                 : parse_ident(ld, json_object_get(root, "identity_headers"), "file", ld->ident);
    json_t *arr = json_object_get(root, "resources");
    if (rc == 0 && (!json_is_array(arr) || json_array_size(arr) > TK_RESOURCES_MAX)) {
        rc = bad(ld, "\"resources\" must be an array of at most %d resources", TK_RESOURCES_MAX);
    }
    if (rc != 0) {
        return rc;
    }
    size_t n = json_array_size(arr);
    ld->rs->r = calloc(n > 0 ? n : 1, sizeof(tk_resource));
    if (ld->rs->r == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = parse_resource(ld, json_array_get(arr, i), i, &ld->rs->r[i]);
        ld->rs->n = rc == 0 ? i + 1 : ld->rs->n;
    }
    rc = rc != 0 ? rc : check_unique(ld);
    if (rc == 0) {
        sort_order(ld->rs);
    }
    return rc;
}

/* The table of a parsed document; root stays the caller's. */
static int build(json_t *root, tk_jcfg *jc, tk_resources **out)
{
    tk_resources *rs = calloc(1, sizeof *rs);
    if (rs == NULL) {
        return tk_jcfg_fail(jc, -ENOMEM, "out of memory");
    }
    loader ld = {.rs = rs, .jc = *jc};
    int rc = parse_root(&ld, root);
    if (rc != 0) {
        if (rc == -ENOMEM && ld.jc.err[0] == '\0') {
            snprintf(ld.jc.err, ld.jc.errcap, "out of memory");
        }
        tk_resources_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

int tk_resources_parse(const char *json, size_t len, tk_resources **out, char *err, size_t errcap)
{
    TK_ASSERT(err != NULL && errcap > 0);
    err[0] = '\0';
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(err, errcap, "line %d: %s", je.line, je.text);
        return TK_E_INVALID;
    }
    tk_jcfg jc;
    int rc = tk_jcfg_init(&jc, ".", err, errcap);
    rc = rc != 0 ? rc : build(root, &jc, out);
    json_decref(root);
    return refused(rc);
}

int tk_resources_load(const char *path, tk_resources **out, char *err, size_t errcap)
{
    TK_ASSERT(err != NULL && errcap > 0);
    char msg[256];
    tk_jcfg jc;
    json_t *root = NULL;
    int rc = tk_jcfg_init(&jc, path, msg, sizeof msg);
    rc = rc != 0 ? rc : tk_jcfg_load(&jc, path, TK_RESOURCES_FILE_MAX, &root);
    if (rc != 0) {
        snprintf(err, errcap, "%s", msg); /* jcfg's load messages name the file */
        return refused(rc == TK_E_TOOBIG ? TK_E_INVALID : rc);
    }
    rc = build(root, &jc, out);
    json_decref(root);
    if (rc != 0) {
        snprintf(err, errcap, "%s: %s", path, msg);
    }
    return refused(rc);
}
