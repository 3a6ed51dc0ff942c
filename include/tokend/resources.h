/*
 * Protected resources: the applications behind an edge proxy that tokend
 * guards through forward-auth (/auth) and describes with RFC 9728 metadata.
 *
 * A JSON file (config key `resources`) lists them; it is parsed once into an
 * immutable table in which everything a request needs is precomputed: the
 * match order, the WWW-Authenticate challenges (RFC 6750 §3 + RFC 9728 §5.1),
 * the identity header prefixes, the metadata path. Matching a request is a
 * scan of that table with no allocation.
 *
 * Matching (deterministic): hosts and paths are first normalised the way
 * the upstream routes on them (tokend/http_uri.h; what servers read
 * differently is refused before matching). A resource covers (host, path)
 * when its host matches (same name after normalisation; a host with a port
 * matches only that port, a request without a port counting as 443; one
 * without a port matches any port; "*" matches every host) and its path
 * prefix covers the path on a segment boundary ("/wiki" covers "/wiki" and
 * "/wiki/x", not "/wikis"; "/" covers everything). Among the resources that
 * cover a request the most specific host wins (host:port, then host, then
 * "*"), then the longest prefix. Two resources with the same host and the
 * same prefix are refused at load, so there is never a tie.
 *
 * File format:
 * {
 *   "trusted_headers": ["X-Forwarded-Method", "X-Forwarded-Host", ...],
 *   "identity_headers": {"subject": "X-Auth-Subject", "client": ...,
 *                        "scope": ..., "session": ..., "actor": ...,
 *                        "issuer": ...},
 *   "path_parameters": "refuse",                 (or "strip": enum tk_http_params)
 *   "windows_paths": "refuse",                   (or "allow": tk_http_path_windows_alias)
 *   "resources": [{
 *     "resource": "https://wiki.example.com/",   (https, no query/fragment)
 *     "host": "wiki.example.com",                (default: the identifier's)
 *     "path_prefix": "/",                        (default: the identifier's path,
 *                                                 without a trailing '/')
 *     "name": "Company wiki",
 *     "realm": "wiki",                           (default "tokend")
 *     "scopes_supported": ["wiki:read", "wiki:write"],
 *     "required_scopes": {"GET": ["wiki:read"], "*": ["wiki:write"]},
 *     "identity_headers": {...}                  (overrides the global names)
 *   }]
 * }
 * Unknown members are errors (a typo must not silently open a resource).
 */
#ifndef TOKEND_RESOURCES_H
#define TOKEND_RESOURCES_H

#include "tokend/common.h"
#include "tokend/http_uri.h"
#include "tokend/limits.h"

/* Resources in one file: the match is a linear scan of at most this many. */
#define TK_RESOURCES_MAX 256
/* A resource identifier travels in the audit op's reason field. */
#define TK_RESOURCE_ID_MAX TK_REASON_MAX
/* Per-method scope rules of one resource. */
#define TK_RESOURCE_RULES_MAX 16
/* Scopes listed in scopes_supported / one rule. */
#define TK_RESOURCE_SCOPES_MAX 64
/* Header names (identity headers). */
#define TK_HEADER_NAME_MAX 64
/* HTTP method names in rules. */
#define TK_METHOD_MAX 16
/* The resources file itself. */
#define TK_RESOURCES_FILE_MAX (1 << 20)

_Static_assert(TK_RESOURCE_ID_MAX <= TK_AUD_MAX, "a resource identifier fits a token audience");

/* The identity headers a 200 carries, in this order. */
enum tk_ident {
    TK_IDENT_SUBJECT = 0,
    TK_IDENT_CLIENT,
    TK_IDENT_SCOPE,
    TK_IDENT_SESSION,
    TK_IDENT_ACTOR,
    TK_IDENT_ISSUER, /* the session's IdP issuer: a sub is unique only with it */
    TK_IDENT_COUNT
};

/* Original-request headers tokend may trust (a bit each). */
enum tk_trusted {
    TK_TRUST_FWD_METHOD = 1 << 0,  /* X-Forwarded-Method */
    TK_TRUST_ORIG_METHOD = 1 << 1, /* X-Original-Method */
    TK_TRUST_FWD_HOST = 1 << 2,    /* X-Forwarded-Host */
    TK_TRUST_FWD_URI = 1 << 3,     /* X-Forwarded-Uri */
    TK_TRUST_ORIG_URI = 1 << 4,    /* X-Original-URI */
    TK_TRUST_ORIG_URL = 1 << 5,    /* X-Original-URL (absolute: host and path) */
    TK_TRUST_ALL = (1 << 6) - 1,
};

/* Required scopes for one method ("*" = any method without its own rule). */
typedef struct tk_scope_rule {
    tk_slice method;
    tk_slice scope;        /* space-separated; empty = none required */
    const char *challenge; /* "WWW-Authenticate: Bearer …insufficient_scope…\r\n" */
} tk_scope_rule;

typedef struct tk_resource {
    tk_slice id;           /* the identifier exactly as configured */
    tk_slice id_authority; /* host[:port] of the identifier, lower case */
    tk_http_host id_host;  /* the same, normalised (metadata lookup) */
    tk_slice host;         /* normalised host[:port] to match; "*" = any */
    bool host_any;         /* host is "*" */
    bool host_port;        /* host carries a port */
    tk_http_host vhost;    /* host normalised: name and port (0 = any port) */
    tk_slice prefix;       /* normalised path prefix, starts with '/' */
    bool prefix_default;   /* prefix taken from the identifier's path */
    tk_slice name, realm;
    tk_slice metadata_url;  /* absolute RFC 9728 metadata URL */
    tk_slice metadata_path; /* its path: /.well-known/oauth-protected-resource… */
    unsigned nscopes;
    tk_slice scopes[TK_RESOURCE_SCOPES_MAX]; /* scopes_supported */
    unsigned nrules;
    tk_scope_rule rules[TK_RESOURCE_RULES_MAX];
    const char *challenge_missing;  /* 401, no error code (RFC 6750 §3.1) */
    const char *challenge_invalid;  /* 401 error="invalid_token" */
    tk_slice ident[TK_IDENT_COUNT]; /* "X-Auth-Subject: " … (name, colon, space) */
    uint32_t id_hash;               /* of id, for the audit table */
} tk_resource;

typedef struct tk_resources tk_resources;

/*
 * Load and check a resources file. Returns 0 with *out (free with
 * tk_resources_free), -errno (file), -ENOMEM, or TK_E_INVALID with a message
 * naming the problem in err. Not for the hot path (allocates).
 */
int tk_resources_load(const char *path, tk_resources **out, char *err, size_t errcap);
/* The same from a buffer (tests, fuzzing). */
int tk_resources_parse(const char *json, size_t len, tk_resources **out, char *err, size_t errcap);
void tk_resources_free(tk_resources *rs);

size_t tk_resources_count(const tk_resources *rs);
/* In file order. */
const tk_resource *tk_resources_at(const tk_resources *rs, size_t i);
/* Which original-request headers are trusted (enum tk_trusted bits). */
unsigned tk_resources_trusted(const tk_resources *rs);
/* How request paths treat ';' parameters (file member "path_parameters";
 * TK_HTTP_PARAMS_REFUSE by default and without a table). */
enum tk_http_params tk_resources_path_params(const tk_resources *rs);
/* Whether paths Windows reads as another (tk_http_path_windows_alias) are
 * refused (file member "windows_paths"; true by default and without a table). */
bool tk_resources_windows_refused(const tk_resources *rs);

/* The resource covering (host, path), or NULL. host normalised
 * (tk_http_host_normalize), path normalised (tk_http_path_normalize with
 * tk_resources_path_params). Pure, no allocation; any thread. */
/* The same match with ASCII case folded in the path and the prefixes. An
 * upstream that routes paths case-insensitively (Express by default, IIS,
 * ASP.NET) serves "/ADMIN/x" as "/admin/x": forward-auth refuses a path
 * whose folded match differs from its exact one. */
const tk_resource *tk_resources_match_nocase(const tk_resources *rs, const tk_http_host *host,
                                             tk_slice path);
const tk_resource *tk_resources_match(const tk_resources *rs, const tk_http_host *host,
                                      tk_slice path);

/* The resource whose RFC 9728 metadata path is path; when several share it
 * (same path on different hosts), the one whose identifier authority is
 * host (as sent; compared normalised, tk_http_host_eq). NULL when none. */
const tk_resource *tk_resources_by_metadata_path(const tk_resources *rs, tk_slice path,
                                                 tk_slice host);

/* The scope rule for a method: its own, for HEAD the GET rule, else "*";
 * NULL when none applies (no scope required). */
const tk_scope_rule *tk_resource_rule(const tk_resource *r, tk_slice method);

#endif
