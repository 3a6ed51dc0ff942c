/*
 * RFC 7591 registration documents: jansson reads the JSON (duplicate
 * members refused), and each member we keep is checked and copied into the
 * fixed tk_oauth_client_meta. Defaults are filled in here, once, so the
 * store and the 201 answer see the same values.
 */
#include "tokend/oauth_register.h"

#include <jansson.h>
#include <string.h>

_Static_assert(TK_OAUTH_REGISTER_BODY_MAX == 16384 && TK_NAME_MAX == 128 &&
                   TK_OAUTH_SOFTWARE_MAX == 128 && TK_SCOPE_MAX == 1024 &&
                   TK_OAUTH_REDIRECTS_MAX == 8,
               "the descriptions below name these limits");

static int bad_meta(tk_oauth_err *err, const char *why)
{
    return tk_oauth_refuse(err, TK_OAUTH_INVALID_CLIENT_METADATA, why);
}

/* ---- Members -------------------------------------------------------------- */

/* An optional string member: absent or null leaves *s empty and returns 0;
 * a string is returned in *s (NUL-free, jansson's memory); any other type
 * is refused with why. */
static int opt_string(json_t *root, const char *key, tk_slice *s, tk_oauth_err *err,
                      const char *why)
{
    json_t *v = json_object_get(root, key);
    *s = TK_SLICE_NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        return bad_meta(err, why);
    }
    *s = (tk_slice){json_string_value(v), json_string_length(v)};
    return 0;
}

static void copy(char *dst, size_t cap, tk_slice s)
{
    TK_ASSERT(s.len < cap);
    if (s.len > 0) {
        memcpy(dst, s.p, s.len);
    }
    dst[s.len] = '\0';
}

static int parse_auth_method(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    static const char why[] = "token_endpoint_auth_method must be none, client_secret_basic "
                              "or client_secret_post";
    tk_slice s;
    int rc = opt_string(root, "token_endpoint_auth_method", &s, err, why);
    m->auth_method = TK_OAUTH_AUTH_CLIENT_SECRET_BASIC; /* RFC 7591 §2 */
    if (rc != 0 || s.p == NULL) {
        return rc;
    }
    for (int i = 0; i <= TK_OAUTH_AUTH_CLIENT_SECRET_POST; i++) {
        if (tk_slice_eq_str(s, tk_oauth_auth_method_name((enum tk_oauth_auth_method)i))) {
            m->auth_method = (enum tk_oauth_auth_method)i;
            return 0;
        }
    }
    return bad_meta(err, why);
}

/* An optional array of strings, each at most 64 elements long: *arr_out is
 * NULL when absent or null. */
static int opt_string_array(json_t *root, const char *key, json_t **arr_out, tk_oauth_err *err,
                            const char *why)
{
    json_t *v = json_object_get(root, key);
    *arr_out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > 64) {
        return bad_meta(err, why);
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (!json_is_string(json_array_get(v, i))) {
            return bad_meta(err, why);
        }
    }
    *arr_out = v;
    return 0;
}

static tk_slice elem(json_t *arr, size_t i)
{
    json_t *v = json_array_get(arr, i);
    return (tk_slice){json_string_value(v), json_string_length(v)};
}

static int parse_grants(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    json_t *arr;
    int rc =
        opt_string_array(root, "grant_types", &arr, err, "grant_types must be an array of strings");
    m->grant_types = TK_OAUTH_GRANT_AUTHORIZATION_CODE; /* RFC 7591 §2 */
    if (rc != 0 || arr == NULL) {
        return rc;
    }
    if (json_array_size(arr) == 0) {
        return bad_meta(err, "grant_types must name at least one grant type");
    }
    m->grant_types = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        enum tk_oauth_grant g;
        rc = tk_oauth_grant_parse(elem(arr, i), TK_OAUTH_INVALID_CLIENT_METADATA, &g, err);
        if (rc != 0) {
            return rc;
        }
        m->grant_types |= (unsigned)g;
    }
    return 0;
}

static int parse_responses(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    json_t *arr;
    bool code_grant = (m->grant_types & TK_OAUTH_GRANT_AUTHORIZATION_CODE) != 0;
    int rc = opt_string_array(root, "response_types", &arr, err,
                              "response_types must be an array of strings");
    /* Absent: the RFC's default [code] where it makes sense, else none. */
    m->response_types = code_grant ? TK_OAUTH_RESPONSE_CODE : 0;
    if (rc != 0 || arr == NULL) {
        return rc;
    }
    m->response_types = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (!tk_slice_eq_str(elem(arr, i), "code")) {
            return bad_meta(err, "response_types may only contain code");
        }
        m->response_types = TK_OAUTH_RESPONSE_CODE;
    }
    return 0;
}

/* RFC 7591 §2.1: grant_types and response_types must agree. */
static int check_consistency(const tk_oauth_client_meta *m, tk_oauth_err *err)
{
    bool code_grant = (m->grant_types & TK_OAUTH_GRANT_AUTHORIZATION_CODE) != 0;
    if (code_grant != (m->response_types == TK_OAUTH_RESPONSE_CODE)) {
        return bad_meta(err, "grant type authorization_code and response type code go together "
                             "(RFC 7591 2.1)");
    }
    if ((m->grant_types & TK_OAUTH_GRANT_REFRESH_TOKEN) != 0 && !code_grant) {
        return bad_meta(err, "refresh_token needs the authorization_code grant type");
    }
    return 0;
}

static int parse_redirects(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    json_t *v = json_object_get(root, "redirect_uris");
    bool needed = (m->grant_types & TK_OAUTH_GRANT_AUTHORIZATION_CODE) != 0;
    if ((v == NULL || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0)) &&
        !needed) {
        return 0; /* a client that only exchanges tokens is never redirected to */
    }
    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > TK_OAUTH_REDIRECTS_MAX) {
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REDIRECT_URI,
                               "redirect_uris must be an array of 1 to 8 URIs");
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            return tk_oauth_refuse(err, TK_OAUTH_INVALID_REDIRECT_URI,
                                   "redirect_uris must be an array of strings");
        }
        tk_slice s = elem(v, i);
        int rc = tk_oauth_redirect_check(s, &m->redirect_kinds[i], err);
        if (rc != 0) {
            return rc;
        }
        for (size_t k = 0; k < i; k++) {
            if (tk_slice_eq_str(s, m->redirect_uris[k])) {
                return tk_oauth_refuse(err, TK_OAUTH_INVALID_REDIRECT_URI,
                                       "a redirect URI is listed twice");
            }
        }
        copy(m->redirect_uris[i], sizeof m->redirect_uris[i], s);
        m->redirect_count = i + 1;
    }
    return 0;
}

/* application_type (OpenID Connect Registration §2, MCP): explicit, or
 * native when every redirect URI is one only a native app can use — the
 * MCP SDK registers loopback redirects without application_type. */
static int parse_app_type(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    static const char why[] = "application_type must be web or native";
    tk_slice s;
    int rc = opt_string(root, "application_type", &s, err, why);
    if (rc != 0) {
        return rc;
    }
    if (s.p == NULL) {
        m->native_inferred = true;
        m->native = m->redirect_count > 0;
        for (size_t i = 0; i < m->redirect_count; i++) {
            m->native = m->native && m->redirect_kinds[i] != TK_OAUTH_REDIRECT_HTTPS;
        }
    } else if (tk_slice_eq_str(s, "native") || tk_slice_eq_str(s, "web")) {
        m->native = tk_slice_eq_str(s, "native");
    } else {
        return bad_meta(err, why);
    }
    for (size_t i = 0; i < m->redirect_count; i++) {
        if (!tk_oauth_redirect_allowed(m->redirect_kinds[i], m->native)) {
            return tk_oauth_refuse(err, TK_OAUTH_INVALID_REDIRECT_URI,
                                   "a web client's redirect URIs must use https; loopback "
                                   "and private-use redirects need application_type native");
        }
    }
    return 0;
}

/* Length of a character that may not appear in a displayed name, at p
 * (valid UTF-8, as jansson guarantees), or 0: C0 controls and DEL, C1
 * controls, U+061C, U+200E-U+200F, U+2028-U+202E and U+2066-U+2069 (line
 * breaks and direction controls that can make a name display as another). */
static size_t forbidden_at(const unsigned char *p, size_t n)
{
    if (p[0] < 0x20 || p[0] == 0x7f) {
        return 1;
    }
    if (n >= 2 &&
        ((p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) || (p[0] == 0xd8 && p[1] == 0x9c))) {
        return 2;
    }
    if (n >= 3 && p[0] == 0xe2 &&
        ((p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae))) ||
         (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))) {
        return 3;
    }
    return 0;
}

static int parse_name(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    static const char why[] = "client_name must be 1 to 128 bytes of text without control "
                              "or direction-override characters";
    tk_slice s;
    int rc = opt_string(root, "client_name", &s, err, why);
    m->name_untrusted = true;
    if (rc != 0 || s.p == NULL) {
        return rc;
    }
    if (s.len == 0 || s.len > TK_NAME_MAX) {
        return bad_meta(err, why);
    }
    const unsigned char *p = (const unsigned char *)s.p;
    for (size_t i = 0; i < s.len; i++) {
        if (forbidden_at(p + i, s.len - i) != 0) {
            return bad_meta(err, why);
        }
    }
    copy(m->client_name, sizeof m->client_name, s);
    return 0;
}

/* printable ASCII that needs no escaping in JSON */
static bool plain_text(tk_slice s, size_t max)
{
    return tk_oauth_vschar_valid(s, max) && memchr(s.p, '"', s.len) == NULL &&
           memchr(s.p, '\\', s.len) == NULL;
}

static int parse_texts(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    static const char why_scope[] = "scope must be space-separated scope tokens, at most "
                                    "1024 bytes (RFC 6749 3.3)";
    static const char why_sw[] = "software_id and software_version must be 1 to 128 printable "
                                 "ASCII characters without quotes or backslashes";
    tk_slice scope, id, ver;
    int rc = opt_string(root, "scope", &scope, err, why_scope);
    rc = rc != 0 ? rc : opt_string(root, "software_id", &id, err, why_sw);
    rc = rc != 0 ? rc : opt_string(root, "software_version", &ver, err, why_sw);
    if (rc != 0) {
        return rc;
    }
    if (scope.p != NULL && !tk_oauth_scope_valid(scope)) {
        return bad_meta(err, why_scope);
    }
    if ((id.p != NULL && !plain_text(id, TK_OAUTH_SOFTWARE_MAX)) ||
        (ver.p != NULL && !plain_text(ver, TK_OAUTH_SOFTWARE_MAX))) {
        return bad_meta(err, why_sw);
    }
    copy(m->scope, sizeof m->scope, scope);
    copy(m->software_id, sizeof m->software_id, id);
    copy(m->software_version, sizeof m->software_version, ver);
    return 0;
}

static int parse_client_uri(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    static const char why[] = "client_uri must be an absolute https URL with a host, without "
                              "user information or fragment, at most 512 bytes";
    tk_slice s;
    int rc = opt_string(root, "client_uri", &s, err, why);
    if (rc != 0 || s.p == NULL) {
        return rc;
    }
    tk_oauth_uri u;
    if (tk_oauth_uri_parse(s, &u) != 0 || !tk_slice_eq_nocase(u.scheme, "https") ||
        !u.has_authority || u.host.len == 0 || u.has_userinfo || u.has_fragment) {
        return bad_meta(err, why);
    }
    copy(m->client_uri, sizeof m->client_uri, s);
    return 0;
}

/* ---- Document ------------------------------------------------------------- */

static int parse_root(json_t *root, tk_oauth_client_meta *m, tk_oauth_err *err)
{
    int rc = parse_auth_method(root, m, err);
    rc = rc != 0 ? rc : parse_grants(root, m, err);
    rc = rc != 0 ? rc : parse_responses(root, m, err);
    rc = rc != 0 ? rc : check_consistency(m, err);
    rc = rc != 0 ? rc : parse_redirects(root, m, err);
    rc = rc != 0 ? rc : parse_app_type(root, m, err);
    rc = rc != 0 ? rc : parse_name(root, m, err);
    rc = rc != 0 ? rc : parse_texts(root, m, err);
    return rc != 0 ? rc : parse_client_uri(root, m, err);
}

int tk_oauth_register_parse(const char *body, size_t len, tk_oauth_client_meta *out,
                            tk_oauth_err *err)
{
    TK_ASSERT(out != NULL && (body != NULL || len == 0));
    memset(out, 0, sizeof *out);
    if (len > TK_OAUTH_REGISTER_BODY_MAX) {
        return bad_meta(err, "the registration document is larger than 16384 bytes");
    }
    json_error_t je;
    json_t *root = len > 0 ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return bad_meta(err, "the registration document must be one JSON object with no "
                             "repeated member");
    }
    int rc = parse_root(root, out, err);
    json_decref(root);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- The 201 answer ------------------------------------------------------- */

const char *tk_oauth_auth_method_name(enum tk_oauth_auth_method m)
{
    switch (m) {
    case TK_OAUTH_AUTH_NONE:
        return "none";
    case TK_OAUTH_AUTH_CLIENT_SECRET_BASIC:
        return "client_secret_basic";
    case TK_OAUTH_AUTH_CLIENT_SECRET_POST:
        return "client_secret_post";
    }
    tk_assert_fail("a known token_endpoint_auth_method", __FILE__, __LINE__);
}

static void kv_opt(tk_json *j, const char *key, const char *v)
{
    if (v[0] != '\0') {
        tk_json_kv_cstr(j, key, v);
    }
}

size_t tk_oauth_redirects_join(const tk_oauth_client_meta *m, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->redirect_count; i++) { /* at most TK_OAUTH_REDIRECTS_MAX */
        size_t l = strlen(m->redirect_uris[i]);
        TK_ASSERT(n + l + 1 <= cap);
        if (i > 0) {
            out[n++] = ' ';
        }
        memcpy(out + n, m->redirect_uris[i], l);
        n += l;
    }
    return n;
}

void tk_oauth_register_write_members(tk_json *j, const tk_oauth_client_meta *m)
{
    TK_ASSERT(m->redirect_count <= TK_OAUTH_REDIRECTS_MAX);
    TK_ASSERT(m->grant_types != 0 && (m->grant_types & ~TK_OAUTH_GRANTS_ALL) == 0);
    tk_json_key(j, "redirect_uris");
    tk_json_arr_begin(j);
    for (size_t i = 0; i < m->redirect_count; i++) {
        tk_json_cstr(j, m->redirect_uris[i]);
    }
    tk_json_arr_end(j);
    tk_json_kv_cstr(j, "token_endpoint_auth_method", tk_oauth_auth_method_name(m->auth_method));
    tk_json_key(j, "grant_types");
    tk_json_arr_begin(j);
    for (unsigned bit = 1; bit <= TK_OAUTH_GRANTS_ALL; bit <<= 1) {
        if ((m->grant_types & bit) != 0) {
            tk_json_cstr(j, tk_oauth_grant_name((enum tk_oauth_grant)bit));
        }
    }
    tk_json_arr_end(j);
    tk_json_key(j, "response_types");
    tk_json_arr_begin(j);
    if (m->response_types == TK_OAUTH_RESPONSE_CODE) {
        tk_json_cstr(j, "code");
    }
    tk_json_arr_end(j);
    tk_json_kv_cstr(j, "application_type", m->native ? "native" : "web");
    kv_opt(j, "client_name", m->client_name);
    kv_opt(j, "scope", m->scope);
    kv_opt(j, "software_id", m->software_id);
    kv_opt(j, "software_version", m->software_version);
    kv_opt(j, "client_uri", m->client_uri);
}

int tk_oauth_register_answer(tk_json *j, const tk_oauth_client_meta *m,
                             const tk_oauth_client_issued *issued)
{
    TK_ASSERT(issued != NULL && issued->client_id.len > 0);
    tk_json_obj_begin(j);
    tk_json_kv_str(j, "client_id", issued->client_id);
    tk_json_kv_int(j, "client_id_issued_at", issued->issued_at);
    if (issued->client_secret.p != NULL) {
        tk_json_kv_str(j, "client_secret", issued->client_secret);
        tk_json_kv_int(j, "client_secret_expires_at", 0);
    }
    tk_oauth_register_write_members(j, m);
    tk_json_obj_end(j);
    return tk_json_finish(j);
}
