/*
 * GET /.well-known/oauth-authorization-server (RFC 8414), the RFC 9728
 * protected-resource metadata (GET /.well-known/oauth-protected-resource
 * followed by the resource identifier's path) and GET /healthz.
 *
 * The metadata is rendered per request from the configured issuer, because
 * main may only learn the issuer (http://HOST:PORT of the bound address)
 * after the app was created. Endpoint URLs are the issuer plus the path,
 * without doubling a trailing '/'. Members we have nothing for are omitted
 * rather than sent as empty arrays (§3.2).
 */
#include "endpoints_int.h"

#include "tokend/oauth.h"

#include <string.h>

/* url = issuer (without a trailing '/') + path. */
static tk_slice join(tk_slice issuer, const char *path, char *url, size_t cap)
{
    size_t n = issuer.len;
    if (n > 0 && issuer.p[n - 1] == '/') {
        n--;
    }
    size_t plen = strlen(path);
    TK_ASSERT(n + plen <= cap);
    memcpy(url, issuer.p, n);
    memcpy(url + n, path, plen);
    return (tk_slice){url, n + plen};
}

/* RFC 8705 §2: the certificate methods, when some listener speaks TLS. */
static void tls_methods(tk_json *j, bool tls)
{
    if (tls) {
        tk_json_cstr(j, "tls_client_auth");
        tk_json_cstr(j, "self_signed_tls_client_auth");
    }
}

static void auth_methods(tk_json *j, const char *key, bool tls)
{
    tk_json_key(j, key);
    tk_json_arr_begin(j);
    tk_json_cstr(j, "client_secret_basic");
    tk_json_cstr(j, "client_secret_post");
    tls_methods(j, tls);
    tk_json_arr_end(j);
}

/* scopes_supported: every resource's scopes, each once (bounded by the
 * resources table: at most count x TK_RESOURCE_SCOPES_MAX comparisons each). */
static void scopes_union(tk_json *j, const tk_resources *rs, size_t nres)
{
    bool any = false;
    for (size_t i = 0; i < nres && !any; i++) {
        any = tk_resources_at(rs, i)->nscopes > 0;
    }
    if (!any) {
        return;
    }
    tk_json_key(j, "scopes_supported");
    tk_json_arr_begin(j);
    for (size_t i = 0; i < nres; i++) {
        const tk_resource *res = tk_resources_at(rs, i);
        for (unsigned k = 0; k < res->nscopes; k++) {
            bool seen = false;
            for (size_t pi = 0; pi <= i && !seen; pi++) {
                const tk_resource *p = tk_resources_at(rs, pi);
                unsigned lim = pi == i ? k : p->nscopes;
                for (unsigned pk = 0; pk < lim && !seen; pk++) {
                    seen = tk_slice_eq(p->scopes[pk], res->scopes[k]);
                }
            }
            if (!seen && j->len + res->scopes[k].len + 64 <= j->cap) {
                tk_json_str(j, res->scopes[k]);
            }
        }
    }
    tk_json_arr_end(j);
}

void ep_metadata(ep_req *r)
{
    ep_worker *w = r->w;
    const char *iss = w->app->cfg.issuer;
    tk_slice issuer = {iss, strnlen(iss, TK_URL_MAX)};
    char url[TK_URL_MAX + TK_ENDPOINT_PATH_MAX];
    tk_json j;
    tk_json_init(&j, w->scratch, sizeof w->scratch);
    tk_json_obj_begin(&j);
    tk_json_kv_str(&j, "issuer", issuer);
    tk_json_kv_str(&j, "introspection_endpoint", join(issuer, "/introspect", url, sizeof url));
    tk_json_kv_str(&j, "revocation_endpoint", join(issuer, "/revoke", url, sizeof url));
    bool tls = w->app->cfg.tls_auth;
    auth_methods(&j, "introspection_endpoint_auth_methods_supported", tls);
    auth_methods(&j, "revocation_endpoint_auth_methods_supported", tls);
    /* The authorization server (RFC 8414 §2; RFC 9207). */
    tk_json_kv_str(&j, "authorization_endpoint", join(issuer, "/authorize", url, sizeof url));
    tk_json_kv_str(&j, "token_endpoint", join(issuer, "/token", url, sizeof url));
    tk_json_kv_str(&j, "registration_endpoint", join(issuer, "/register", url, sizeof url));
    tk_json_key(&j, "response_types_supported");
    tk_json_arr_begin(&j);
    tk_json_cstr(&j, "code");
    tk_json_arr_end(&j);
    tk_json_key(&j, "grant_types_supported");
    tk_json_arr_begin(&j);
    tk_json_cstr(&j, "authorization_code");
    tk_json_cstr(&j, "refresh_token");
    tk_json_cstr(&j, TK_OAUTH_GRANT_TOKEN_EXCHANGE_NAME);
    tk_json_arr_end(&j);
    tk_json_key(&j, "code_challenge_methods_supported");
    tk_json_arr_begin(&j);
    tk_json_cstr(&j, "S256");
    tk_json_arr_end(&j);
    tk_json_key(&j, "token_endpoint_auth_methods_supported");
    tk_json_arr_begin(&j);
    tk_json_cstr(&j, "client_secret_basic");
    tk_json_cstr(&j, "client_secret_post");
    tk_json_cstr(&j, "none");
    tls_methods(&j, tls);
    tk_json_arr_end(&j);
    tk_json_kv_bool(&j, "authorization_response_iss_parameter_supported", true);
    /* A client_id may be an https URL naming its metadata document (cimd.c). */
    tk_json_kv_bool(&j, "client_id_metadata_document_supported", w->app->cfg.outbound != NULL);
    if (tls) { /* RFC 8705 §3.3 */
        tk_json_kv_bool(&j, "tls_client_certificate_bound_access_tokens", true);
    }
    tk_json_key(&j, "dpop_signing_alg_values_supported"); /* RFC 9449 §5.1 */
    tk_json_arr_begin(&j);
    tk_json_cstr(&j, "ES256");
    tk_json_arr_end(&j);
    if (w->app->cfg.keys != NULL) { /* RFC 9701 §6 */
        tk_json_kv_str(&j, "jwks_uri", join(issuer, "/jwks.json", url, sizeof url));
        tk_json_key(&j, "introspection_signing_alg_values_supported");
        tk_json_arr_begin(&j);
        tk_json_cstr(&j, "ES256");
        tk_json_arr_end(&j);
    }
    size_t nres = tk_resources_count(w->res);
    scopes_union(&j, w->res, nres);
    if (nres > 0) { /* RFC 9728 §4 */
        tk_json_key(&j, "protected_resources");
        tk_json_arr_begin(&j);
        for (size_t i = 0; i < nres; i++) {
            tk_slice id = tk_resources_at(w->res, i)->id;
            if (j.len + id.len + 64 > j.cap) {
                break; /* the page has one buffer: list what fits (ids are plain ASCII) */
            }
            tk_json_str(&j, id);
        }
        tk_json_arr_end(&j);
    }
    tk_json_obj_end(&j);
    ep_reply_json(r, 200, &j);
}

/* The host a metadata request was made for: X-Forwarded-Host when trusted
 * (tokend usually sits behind the resource's proxy), else Host. */
static tk_slice request_host(const ep_req *r)
{
    if (tk_resources_trusted(r->w->res) & TK_TRUST_FWD_HOST) {
        tk_slice h = tk_http_header_get(r->http, "X-Forwarded-Host");
        if (h.p != NULL) {
            return h;
        }
    }
    return r->http->host;
}

/* RFC 9728 §3.2: resource (exactly the identifier), authorization_servers,
 * scopes_supported, bearer_methods_supported, resource_name. */
void ep_resource_metadata(ep_req *r)
{
    ep_worker *w = r->w;
    const tk_resource *res = tk_resources_by_metadata_path(w->res, r->http->path, request_host(r));
    if (res == NULL) {
        ep_reply_error(r, 404, "not_found", NULL);
        return;
    }
    const char *iss = w->app->cfg.issuer;
    tk_json j;
    tk_json_init(&j, w->scratch, sizeof w->scratch);
    tk_json_obj_begin(&j);
    tk_json_kv_str(&j, "resource", res->id);
    tk_json_key(&j, "authorization_servers");
    tk_json_arr_begin(&j);
    tk_json_str(&j, (tk_slice){iss, strnlen(iss, TK_URL_MAX)});
    tk_json_arr_end(&j);
    if (res->nscopes > 0) {
        tk_json_key(&j, "scopes_supported");
        tk_json_arr_begin(&j);
        for (unsigned i = 0; i < res->nscopes; i++) {
            tk_json_str(&j, res->scopes[i]);
        }
        tk_json_arr_end(&j);
    }
    tk_json_key(&j, "bearer_methods_supported");
    tk_json_arr_begin(&j);
    tk_json_cstr(&j, "header");
    tk_json_arr_end(&j);
    if (res->name.len > 0) {
        tk_json_kv_str(&j, "resource_name", res->name);
    }
    tk_json_obj_end(&j);
    ep_reply_json(r, 200, &j);
}

void ep_healthz(ep_req *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    const struct tk_cluster *cl = r->w->app->cfg.cluster;
    if (cl != NULL && !tk_cluster_fresh(cl, tk_mono_ns())) {
        /* Catching up, or nothing heard from the op log within max-staleness. */
        static const char stale[] = "{\"status\":\"not_ready\",\"reason\":\"cluster_stale\"}";
        ep_reply(r, 503, "application/json", "Retry-After: 1\r\n", stale, sizeof stale - 1);
        return;
    }
    ep_reply(r, 200, "application/json", NULL, body, sizeof body - 1);
}
