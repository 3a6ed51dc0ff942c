/*
 * Protected resources, the hot half: which resource covers a request, which
 * one a metadata path names, which scope rule a method needs. Pure scans of
 * the table load.c built; no allocation, any thread.
 */
#include "resources_int.h"

#include <string.h>

/* ---- Matching ------------------------------------------------------------------------ */

static bool host_covers(const tk_resource *r, const tk_http_host *host)
{
    if (r->host_any) {
        return true;
    }
    if (!tk_slice_eq(r->vhost.name, host->name)) {
        return false;
    }
    return r->vhost.port == 0 || tk_http_host_eq(&r->vhost, host);
}

static bool prefix_covers(tk_slice prefix, tk_slice path)
{
    if (path.len < prefix.len || memcmp(path.p, prefix.p, prefix.len) != 0) {
        return false;
    }
    return path.len == prefix.len || prefix.p[prefix.len - 1] == '/' || path.p[prefix.len] == '/';
}

/* prefix_covers with the path's and the prefix's ASCII letters folded. */
static bool prefix_covers_nocase(tk_slice prefix, tk_slice path)
{
    if (path.len < prefix.len) {
        return false;
    }
    for (size_t i = 0; i < prefix.len; i++) {
        char a = path.p[i], b = prefix.p[i];
        a = a >= 'A' && a <= 'Z' ? (char)(a + 32) : a;
        b = b >= 'A' && b <= 'Z' ? (char)(b + 32) : b;
        if (a != b) {
            return false;
        }
    }
    return path.len == prefix.len || prefix.p[prefix.len - 1] == '/' || path.p[prefix.len] == '/';
}

const tk_resource *tk_resources_match_nocase(const tk_resources *rs, const tk_http_host *host,
                                             tk_slice path)
{
    if (rs == NULL) {
        return NULL;
    }
    TK_ASSERT(rs->n <= TK_RESOURCES_MAX);
    for (size_t i = 0; i < rs->n; i++) {
        const tk_resource *r = &rs->r[rs->order[i]];
        if (prefix_covers_nocase(r->prefix, path) && host_covers(r, host)) {
            return r;
        }
    }
    return NULL;
}

const tk_resource *tk_resources_match(const tk_resources *rs, const tk_http_host *host,
                                      tk_slice path)
{
    if (rs == NULL) {
        return NULL;
    }
    TK_ASSERT(rs->n <= TK_RESOURCES_MAX);
    for (size_t i = 0; i < rs->n; i++) {
        const tk_resource *r = &rs->r[rs->order[i]];
        if (prefix_covers(r->prefix, path) && host_covers(r, host)) {
            return r;
        }
    }
    return NULL;
}

const tk_resource *tk_resources_by_metadata_path(const tk_resources *rs, tk_slice path,
                                                 tk_slice host)
{
    char buf[TK_HTTP_HOST_MAX + 1];
    tk_http_host h;
    bool valid = tk_http_host_normalize(host, buf, sizeof buf, &h) == 0;
    const tk_resource *only = NULL, *on_host = NULL;
    unsigned hits = 0;
    for (size_t i = 0; rs != NULL && i < rs->n; i++) {
        const tk_resource *r = &rs->r[i];
        if (!tk_slice_eq(r->metadata_path, path)) {
            continue;
        }
        hits++;
        only = r;
        if (on_host == NULL && valid && tk_http_host_eq(&r->id_host, &h)) {
            on_host = r; /* unique: metadata URLs are unique (checked at load) */
        }
    }
    return hits == 1 ? only : on_host;
}

const tk_scope_rule *tk_resource_rule(const tk_resource *r, tk_slice method)
{
    const tk_scope_rule *get = NULL, *any = NULL;
    TK_ASSERT(r->nrules <= TK_RESOURCE_RULES_MAX);
    for (unsigned i = 0; i < r->nrules; i++) {
        const tk_scope_rule *u = &r->rules[i];
        if (tk_slice_eq(u->method, method)) {
            return u;
        }
        if (tk_slice_eq_str(u->method, "GET")) {
            get = u;
        } else if (tk_slice_eq_str(u->method, "*")) {
            any = u;
        }
    }
    if (get != NULL && tk_slice_eq_str(method, "HEAD")) {
        return get;
    }
    return any;
}

size_t tk_resources_count(const tk_resources *rs)
{
    return rs == NULL ? 0 : rs->n;
}

const tk_resource *tk_resources_at(const tk_resources *rs, size_t i)
{
    TK_ASSERT(rs != NULL && i < rs->n);
    return &rs->r[i];
}

unsigned tk_resources_trusted(const tk_resources *rs)
{
    return rs == NULL ? 0 : rs->trusted;
}

enum tk_http_params tk_resources_path_params(const tk_resources *rs)
{
    return rs == NULL ? TK_HTTP_PARAMS_REFUSE : rs->params;
}

bool tk_resources_windows_refused(const tk_resources *rs)
{
    return rs == NULL || !rs->windows_allowed;
}
