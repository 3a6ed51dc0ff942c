/*
 * Client ID Metadata Documents, the pure half (oauth_cimd.h): the rules of
 * a client_id URL, of the document fetched from it, and the client's store
 * key. The document is a registration document with a few more rules, so
 * tk_oauth_register_parse does the RFC 7591 part and this file the rest.
 */
#include "tokend/oauth_cimd.h"

#include "tokend/crypto.h"
#include "tokend/oauth_uri.h"

#include <jansson.h>
#include <string.h>

_Static_assert(TK_CIMD_DOC_MAX == 5120, "the description below names this limit");

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool prefix_nocase(tk_slice s, const char *p)
{
    size_t n = strlen(p);
    if (s.len < n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (lower(s.p[i]) != p[i]) {
            return false;
        }
    }
    return true;
}

bool tk_oauth_cimd_candidate(tk_slice client_id)
{
    return prefix_nocase(client_id, "http:") || prefix_nocase(client_id, "https:");
}

bool tk_oauth_cimd_is_key(tk_slice id)
{
    return id.len >= 4 && memcmp(id.p, TK_CIMD_KEY_PREFIX, 4) == 0;
}

/* A path segment that is "." or "..", each dot possibly written %2e. */
static bool dot_segment(tk_slice seg)
{
    size_t dots = 0, i = 0;
    while (i < seg.len) { /* each turn consumes one dot */
        if (seg.p[i] == '.') {
            i++;
        } else if (i + 2 < seg.len && seg.p[i] == '%' && seg.p[i + 1] == '2' &&
                   lower(seg.p[i + 2]) == 'e') {
            i += 3;
        } else {
            return false;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

static bool has_dot_segment(tk_slice path)
{
    size_t i = 0;
    while (i <= path.len) { /* each turn moves past one segment */
        const char *slash = i < path.len ? memchr(path.p + i, '/', path.len - i) : NULL;
        size_t end = slash != NULL ? (size_t)(slash - path.p) : path.len;
        if (dot_segment((tk_slice){path.p + i, end - i})) {
            return true;
        }
        i = end + 1;
    }
    return false;
}

int tk_oauth_cimd_url_check(tk_slice url, tk_slice *host, const char **why)
{
    tk_oauth_uri u;
    *host = TK_SLICE_NULL;
    if (!tk_oauth_vschar_valid(url, TK_CIMD_URL_MAX) || tk_oauth_uri_parse(url, &u) != 0) {
        *why = "The client_id is not a URL of at most 512 printable characters.";
        return TK_E_INVALID;
    }
    if (!tk_slice_eq_str(u.scheme, "https")) {
        *why = "A client_id URL must use https.";
        return TK_E_INVALID;
    }
    if (!u.has_authority || u.host.len == 0) {
        *why = "A client_id URL must name a host.";
        return TK_E_INVALID;
    }
    if (u.has_userinfo) {
        *why = "A client_id URL must not carry a user name or password.";
        return TK_E_INVALID;
    }
    if (u.has_fragment) {
        *why = "A client_id URL must not have a fragment.";
        return TK_E_INVALID;
    }
    if (u.path.len == 0 || tk_slice_eq_str(u.path, "/")) {
        *why = "A client_id URL must have a path.";
        return TK_E_INVALID;
    }
    if (has_dot_segment(u.path)) {
        *why = "A client_id URL must not have . or .. path segments.";
        return TK_E_INVALID;
    }
    *host = u.host;
    return 0;
}

void tk_oauth_cimd_key(tk_slice url, char out[TK_CIMD_KEY_LEN + 1])
{
    uint8_t h[TK_HASH_LEN];
    tk_sha256(url.p, url.len, h);
    memcpy(out, TK_CIMD_KEY_PREFIX, 4);
    TK_ASSERT(tk_b64url_encode(h, sizeof h, out + 4, TK_SECRET_B64_LEN + 1) == 0);
    TK_ASSERT(strlen(out) == TK_CIMD_KEY_LEN);
}

bool tk_oauth_cimd_json_type(tk_slice ct)
{
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t') {
        n++;
    }
    tk_slice t = {ct.p, n};
    if (tk_slice_eq_nocase(t, "application/json")) {
        return true;
    }
    /* application/<something>+json (RFC 6839 §3.1) */
    return n > 17 && prefix_nocase(t, "application/") &&
           prefix_nocase((tk_slice){t.p + n - 5, 5}, "+json");
}

bool tk_oauth_cimd_host_listed(tk_slice host, const char *list)
{
    if (list == NULL || host.len == 0) {
        return false;
    }
    const char *p = list;
    while (*p != '\0') { /* each turn moves past one name */
        while (*p == ' ') {
            p++;
        }
        size_t n = strcspn(p, " ");
        if (n == host.len) {
            bool same = true;
            for (size_t i = 0; same && i < n; i++) {
                same = lower(p[i]) == lower(host.p[i]);
            }
            if (same) {
                return true;
            }
        }
        p += n;
    }
    return false;
}

/* ---- The document ------------------------------------------------------------ */

static int bad_meta(tk_oauth_err *err, const char *why)
{
    return tk_oauth_refuse(err, TK_OAUTH_INVALID_CLIENT_METADATA, why);
}

/* The rules a registration document does not have. */
static int check_extra(json_t *root, tk_slice url, tk_oauth_err *err)
{
    json_t *id = json_object_get(root, "client_id");
    if (!json_is_string(id) ||
        !tk_slice_eq((tk_slice){json_string_value(id), json_string_length(id)}, url)) {
        return bad_meta(err, "the document's client_id must equal the URL it was fetched from");
    }
    if (json_object_get(root, "client_secret") != NULL ||
        json_object_get(root, "client_secret_expires_at") != NULL) {
        return bad_meta(err, "a client metadata document must not carry a client secret");
    }
    json_t *m = json_object_get(root, "token_endpoint_auth_method");
    if (m == NULL || json_is_null(m)) {
        return 0; /* no secret can exist: a public client */
    }
    const char *s = json_is_string(m) ? json_string_value(m) : "";
    if (strcmp(s, "none") == 0) {
        return 0;
    }
    if (strcmp(s, "private_key_jwt") == 0) {
        return bad_meta(err, "token_endpoint_auth_method private_key_jwt is not supported by "
                             "this server; use none (PKCE)");
    }
    return bad_meta(err, "token_endpoint_auth_method must be none: shared-secret methods are "
                         "not allowed for a client metadata document");
}

int tk_oauth_cimd_parse(const char *doc, size_t len, tk_slice url, tk_oauth_client_meta *out,
                        tk_oauth_err *err)
{
    TK_ASSERT(out != NULL && (doc != NULL || len == 0));
    memset(out, 0, sizeof *out);
    if (len > TK_CIMD_DOC_MAX) {
        return bad_meta(err, "the client metadata document is larger than 5120 bytes");
    }
    json_error_t je;
    json_t *root = len > 0 ? json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return bad_meta(err, "the client metadata document must be one JSON object with no "
                             "repeated member");
    }
    int rc = check_extra(root, url, err);
    json_decref(root);
    if (rc == 0) {
        rc = tk_oauth_register_parse(doc, len, out, err);
    }
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->auth_method = TK_OAUTH_AUTH_NONE;
    return 0;
}
