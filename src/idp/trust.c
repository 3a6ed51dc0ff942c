/*
 * Loading the IdP trust file (idp.h): JSON read with jansson, issuers
 * checked member by member (their keys are keys.c's), and the snapshot
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
#include <limits.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Small readers ------------------------------------------------------------------ */

static int get_int(tk_jcfg *l, json_t *obj, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL) {
        return 0; /* keeps the default */
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "\"%s\" must be a whole number in [%lld, %lld]", name,
                            (long long)lo, (long long)hi);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* ---- One issuer ------------------------------------------------------------------------ */

static int get_algs(tk_jcfg *l, json_t *obj, unsigned *out)
{
    json_t *arr = json_object_get(obj, "algorithms");
    *out = 0;
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "\"algorithms\" must be a non-empty array");
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        uint8_t a = tk_jws_alg_parse(tk_slice_from_str(s));
        if (a == 0) {
            return tk_jcfg_fail(
                l, TK_E_BADINPUT,
                "algorithm \"%.16s\" refused (asymmetric RS/PS/ES only, never none or HS)", s);
        }
        *out |= TK_ALG_BIT(a);
    }
    return 0;
}

static int get_secrets(tk_jcfg *l, json_t *obj, tk_idp_issuer *is)
{
    json_t *arr = json_object_get(obj, "webhook_secrets");
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) > TK_IDP_SECRETS_MAX) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "\"webhook_secrets\" must be an array of at most %d",
                            TK_IDP_SECRETS_MAX);
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        size_t n = strlen(s), len = 0;
        if (strncmp(s, "whsec_", 6) != 0 ||
            tk_b64_decode(s + 6, n - 6, is->secret[i], TK_IDP_SECRET_MAX, &len) != 0 ||
            len < TK_IDP_SECRET_MIN) {
            return tk_jcfg_fail(l, TK_E_BADINPUT,
                                "webhook secret %zu: expected whsec_ + base64 of %d to %d bytes", i,
                                TK_IDP_SECRET_MIN, TK_IDP_SECRET_MAX);
        }
        is->secret_len[i] = len;
        is->nsecrets++;
    }
    return 0;
}

static int get_action(tk_jcfg *l, json_t *obj, uint8_t *out)
{
    tk_slice v;
    *out = TK_IDP_TERMINATE;
    int rc = tk_jcfg_get_str(l, obj, "credential_change", 16, false, &v);
    if (rc != 0 || v.p == NULL) {
        return rc;
    }
    const char *s = v.p; /* NUL-terminated by jansson */
    if (strcmp(s, "terminate") == 0 || strcmp(s, "suspend") == 0 || strcmp(s, "ignore") == 0) {
        *out = s[0] == 't' ? TK_IDP_TERMINATE : s[0] == 's' ? TK_IDP_SUSPEND : TK_IDP_IGNORE;
        return 0;
    }
    return tk_jcfg_fail(l, TK_E_BADINPUT,
                        "\"credential_change\" must be terminate, suspend or ignore");
}

/* sender_certificate: an object with exactly one of subject, san,
 * thumbprint, each well-formed (stored canonical). */
static int get_sender_cert(tk_jcfg *l, json_t *obj, tk_idp_issuer *is)
{
    json_t *sc = json_object_get(obj, "sender_certificate");
    if (sc == NULL) {
        return 0;
    }
    static const char msg[] = "\"sender_certificate\" must be an object with one of \"subject\" "
                              "(an RFC 4514 DN), \"san\" (dns:|uri:|ip:|email:…) or "
                              "\"thumbprint\" (SHA-256: 64 hex digits or base64url)";
    if (!json_is_object(sc) || json_object_size(sc) != 1) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, msg);
    }
    json_t *v = json_object_get(sc, "subject");
    v = v != NULL ? v : json_object_get(sc, "san");
    v = v != NULL ? v : json_object_get(sc, "thumbprint");
    if (!json_is_string(v)) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, msg);
    }
    tk_slice s = {json_string_value(v), json_string_length(v)};
    size_t n = 0;
    int rc = TK_E_BADINPUT;
    if (json_object_get(sc, "subject") != NULL) {
        rc = tk_cert_dn_canon(s, is->sender_subject, sizeof is->sender_subject, &n);
        is->sender_subject_len = rc == 0 ? n : 0;
    } else if (json_object_get(sc, "san") != NULL) {
        rc = tk_cert_san_canon(s, is->sender_san, sizeof is->sender_san, &n);
        is->sender_san_len = rc == 0 ? n : 0;
    } else {
        rc = tk_cert_thumbprint_parse(s, is->sender_thumbprint);
        is->has_sender_thumbprint = rc == 0;
    }
    return rc == 0 ? 0 : tk_jcfg_fail(l, TK_E_BADINPUT, msg);
}

bool tk_idp_has_sender_cert(const tk_idp_issuer *is)
{
    return is->sender_subject_len > 0 || is->sender_san_len > 0 || is->has_sender_thumbprint;
}

bool tk_idp_sender_cert_ok(const tk_idp_issuer *is, const tk_peer_cert *pc)
{
    tk_cert_want w = {.subject = {is->sender_subject, is->sender_subject_len},
                      .san = {is->sender_san, is->sender_san_len},
                      .thumbprint = is->has_sender_thumbprint ? is->sender_thumbprint : NULL};
    return tk_cert_satisfies(pc, &w);
}

static int issuer_basics(tk_jcfg *l, json_t *obj, tk_idp_issuer *is)
{
    tk_slice s;
    int rc = tk_jcfg_get_str(l, obj, "audience", TK_URL_MAX, true, &s);
    if (rc == 0) {
        memcpy(is->audience, s.p, s.len + 1);
        is->audience_len = s.len;
    }
    is->leeway = TK_IDP_LEEWAY_DEFAULT;
    is->max_age = TK_IDP_MAX_AGE_DEFAULT;
    rc = rc != 0 ? rc : get_int(l, obj, "leeway", 0, TK_IDP_LEEWAY_MAX, &is->leeway);
    rc = rc != 0 ? rc
                 : get_int(l, obj, "max_age", TK_IDP_MAX_AGE_MIN, TK_IDP_MAX_AGE_MAX, &is->max_age);
    json_t *ame = json_object_get(obj, "allow_missing_exp");
    if (rc == 0 && ame != NULL && !json_is_boolean(ame)) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "\"allow_missing_exp\" must be true or false");
    }
    is->allow_missing_exp = json_is_true(ame);
    rc = rc != 0 ? rc : tk_jcfg_get_str(l, obj, "ssf_bearer", TK_IDP_BEARER_MAX, false, &s);
    if (rc == 0 && s.p != NULL) {
        memcpy(is->ssf_bearer, s.p, s.len + 1);
        is->ssf_bearer_len = s.len;
    }
    rc = rc != 0 ? rc : get_action(l, obj, &is->credential_change);
    rc = rc != 0 ? rc : get_sender_cert(l, obj, is);
    return rc != 0 ? rc : get_secrets(l, obj, is);
}

/* The host of an http(s) URL after the scheme: up to '/', '?', '#' or the end. */
static tk_slice url_host(const char *rest)
{
    size_t n = strcspn(rest, "/?#");
    tk_slice host = {rest, n};
    if (n > 0 && rest[0] == '[') { /* [v6]:port */
        const char *close = memchr(rest, ']', n);
        return close != NULL ? (tk_slice){rest, (size_t)(close - rest) + 1} : host;
    }
    const char *colon = memchr(rest, ':', n);
    return colon != NULL ? (tk_slice){rest, (size_t)(colon - rest)} : host;
}

/* jwks_uri: https with a host, no fragment, no user info; http only to a
 * loopback host, which only a test IdP is. */
static int get_jwks_uri(tk_jcfg *l, json_t *obj, tk_idp_issuer *is)
{
    tk_slice u;
    int rc = tk_jcfg_get_str(l, obj, "jwks_uri", TK_URL_MAX, false, &u);
    if (rc != 0 || u.p == NULL) {
        return rc;
    }
    bool https = strncmp(u.p, "https://", 8) == 0, http = strncmp(u.p, "http://", 7) == 0;
    tk_slice host = url_host(u.p + (https ? 8 : 7));
    bool loopback = tk_slice_eq_str(host, "127.0.0.1") || tk_slice_eq_str(host, "[::1]") ||
                    tk_slice_eq_str(host, "localhost");
    if ((!https && !http) || host.len == 0 || strpbrk(u.p, "# @\\") != NULL) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "\"jwks_uri\" must be an https URL with a host (no fragment, no "
                            "user info)");
    }
    if (http && !loopback) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "\"jwks_uri\" must be https (plain http only to a loopback host)");
    }
    memcpy(is->jwks_uri, u.p, u.len + 1);
    is->jwks_uri_len = u.len;
    return 0;
}

/* A string member copied into a fixed buffer; absent leaves it "". */
static int get_copy(tk_jcfg *l, json_t *obj, const char *name, char *buf, size_t cap,
                    size_t *len_out)
{
    tk_slice s;
    int rc = tk_jcfg_get_str(l, obj, name, cap - 1, false, &s);
    if (rc == 0 && s.p != NULL) {
        memcpy(buf, s.p, s.len + 1);
        *len_out = s.len;
    }
    return rc;
}

/* private_key_jwt: the client key (a private key in PEM, not readable by
 * group or others), its kid and the assertion's audience. */
static int get_client_key(tk_jcfg *l, json_t *obj, tk_idp_issuer *is, bool want)
{
    tk_slice file, aud;
    size_t kl = 0;
    int rc = tk_jcfg_get_str(l, obj, "client_key_file", PATH_MAX - 1, false, &file);
    rc = rc != 0 ? rc
                 : get_copy(l, obj, "client_key_kid", is->client_key_kid, sizeof is->client_key_kid,
                            &kl);
    rc = rc != 0 ? rc : tk_jcfg_get_str(l, obj, "client_assertion_aud", 16, false, &aud);
    if (rc != 0) {
        return rc;
    }
    if (!want) {
        return file.p != NULL || kl > 0 || aud.p != NULL
                   ? tk_jcfg_fail(l, TK_E_BADINPUT,
                                  "\"client_key_file\", \"client_key_kid\" and "
                                  "\"client_assertion_aud\" need \"token_endpoint_auth_method\": "
                                  "\"private_key_jwt\"")
                   : 0;
    }
    if (file.p == NULL) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "private_key_jwt needs \"client_key_file\"");
    }
    if (aud.p != NULL && strcmp(aud.p, "issuer") != 0 && strcmp(aud.p, "token_endpoint") != 0) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "\"client_assertion_aud\" must be issuer or token_endpoint");
    }
    is->assertion_aud_token_endpoint = aud.p != NULL && aud.p[0] == 't';
    for (size_t i = 0; i < kl; i++) {
        unsigned char c = (unsigned char)is->client_key_kid[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            return tk_jcfg_fail(l, TK_E_BADINPUT, "\"client_key_kid\": printable, no quotes");
        }
    }
    char path[PATH_MAX], pem[TK_KEYS_PEM_MAX];
    rc = tk_jcfg_resolve(l, file.p, path, sizeof path);
    if (rc != 0) {
        return rc;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return tk_jcfg_fail(l, -e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "%s: not a regular file", path);
    } else if (st.st_mode & 077) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT,
                          "%s: mode %03o lets others read a private key; chmod 600 it", path,
                          (unsigned)(st.st_mode & 0777));
    } else if ((n = read(fd, pem, sizeof pem)) <= 0 || (size_t)n >= sizeof pem) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "%s: empty, unreadable or too large", path);
    }
    close(fd);
    if (rc == 0) {
        BIO *b = BIO_new_mem_buf(pem, (int)n);
        is->client_key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        rc = is->client_key != NULL
                 ? 0
                 : tk_jcfg_fail(l, TK_E_BADINPUT, "%s: no PEM private key", path);
    }
    tk_cleanse(pem, sizeof pem);
    char group[16] = "";
    size_t gl = 0;
    EVP_PKEY *k = is->client_key;
    bool p256 = k != NULL && EVP_PKEY_is_a(k, "EC") &&
                EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl) == 1 &&
                strcmp(group, "prime256v1") == 0;
    bool rsa = k != NULL && EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= TK_RSA_BITS_MIN &&
               EVP_PKEY_get_bits(k) <= TK_JWS_SIG_MAX * 8;
    if (rc == 0 && !p256 && !rsa) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT,
                          "%s: the client key must be EC P-256 (ES256) or RSA of %d to %d bits "
                          "(RS256)",
                          path, TK_RSA_BITS_MIN, TK_JWS_SIG_MAX * 8);
    }
    return rc; /* a key loaded but refused is freed with the issuer */
}

/* The sign-in members (login = oidc): client_id, client_secret, its method,
 * scopes (space-separated printable tokens; "openid" added when missing),
 * end_session. The issuer must be an https URL (http only on loopback):
 * discovery fetches issuer/.well-known/openid-configuration. */
static int issuer_signin(tk_jcfg *l, json_t *obj, tk_idp_issuer *is)
{
    size_t slen = 0, mlen = 0;
    char scopes[TK_IDP_SCOPES_MAX + 1] = "", method[32] = "";
    int rc = get_copy(l, obj, "client_id", is->client_id, sizeof is->client_id, &is->client_id_len);
    rc = rc != 0 ? rc
                 : get_copy(l, obj, "client_secret", is->client_secret, sizeof is->client_secret,
                            &is->client_secret_len);
    rc = rc != 0 ? rc : get_copy(l, obj, "scopes", scopes, sizeof scopes - 7, &slen);
    rc =
        rc != 0 ? rc : get_copy(l, obj, "token_endpoint_auth_method", method, sizeof method, &mlen);
    json_t *es = json_object_get(obj, "end_session");
    if (rc == 0 && es != NULL && !json_is_boolean(es)) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "\"end_session\" must be true or false");
    }
    if (rc != 0) {
        return rc;
    }
    is->end_session = json_is_true(es);
    bool any = is->client_secret_len > 0 || slen > 0 || mlen > 0 || es != NULL ||
               json_object_get(obj, "client_key_file") != NULL ||
               json_object_get(obj, "client_key_kid") != NULL ||
               json_object_get(obj, "client_assertion_aud") != NULL;
    if (is->client_id_len == 0) {
        return any ? tk_jcfg_fail(l, TK_E_BADINPUT, "sign-in members without \"client_id\"") : 0;
    }
    bool pkjwt = mlen > 0 && strcmp(method, "private_key_jwt") == 0;
    if (mlen == 0 || strcmp(method, "client_secret_basic") == 0) {
        is->secret_post = false;
    } else if (strcmp(method, "client_secret_post") == 0) {
        is->secret_post = true;
    } else if (!pkjwt) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "\"token_endpoint_auth_method\" must be client_secret_basic, "
                            "client_secret_post or private_key_jwt");
    }
    rc = get_client_key(l, obj, is, pkjwt);
    if (rc != 0) {
        return rc;
    }
    if (pkjwt && is->client_secret_len > 0) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "private_key_jwt: no \"client_secret\" (one way to authenticate)");
    }
    if (!pkjwt && is->client_secret_len == 0) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "\"client_id\" needs its \"client_secret\" (or private_key_jwt "
                            "with a \"client_key_file\")");
    }
    bool has_openid = false;
    for (size_t i = 0; i < slen; i++) {
        unsigned char c = (unsigned char)scopes[i];
        if (c < 0x21 && c != ' ') {
            return tk_jcfg_fail(l, TK_E_BADINPUT, "\"scopes\": printable tokens and spaces");
        }
        if (c == '"' || c == '\\' || c > 0x7e) {
            return tk_jcfg_fail(l, TK_E_BADINPUT, "\"scopes\": printable tokens and spaces");
        }
    }
    for (const char *p = scopes; *p != '\0';) { /* bounded by slen */
        size_t n = strcspn(p, " ");
        has_openid = has_openid || (n == 6 && strncmp(p, "openid", 6) == 0);
        p += n;
        p += *p == ' ' ? 1 : 0;
    }
    int w = has_openid ? snprintf(is->scopes, sizeof is->scopes, "%s", scopes)
            : slen > 0 ? snprintf(is->scopes, sizeof is->scopes, "openid %s", scopes)
                       : snprintf(is->scopes, sizeof is->scopes, "openid");
    TK_ASSERT(w > 0 && (size_t)w < sizeof is->scopes);
    bool https = strncmp(is->issuer, "https://", 8) == 0,
         http = strncmp(is->issuer, "http://", 7) == 0;
    tk_slice host = url_host(is->issuer + (https ? 8 : 7));
    bool loopback = tk_slice_eq_str(host, "127.0.0.1") || tk_slice_eq_str(host, "[::1]") ||
                    tk_slice_eq_str(host, "localhost");
    if ((!https && !(http && loopback)) || host.len == 0 || strpbrk(is->issuer, "#?@ \\") != NULL) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "a sign-in issuer must be an https URL (plain http only to a loopback "
                            "host): discovery fetches issuer/.well-known/openid-configuration");
    }
    return 0;
}

/* ---- Several organisations ------------------------------------------------------- */

/* A JSON array of at most max strings, or NULL when absent. */
static int get_list(tk_jcfg *l, json_t *obj, const char *name, size_t max, json_t **out)
{
    json_t *arr = json_object_get(obj, name);
    *out = arr;
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) > max) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "\"%s\" must be an array of at most %zu strings",
                            name, max);
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            return tk_jcfg_fail(l, TK_E_BADINPUT, "\"%s\": entry %zu is not a non-empty string",
                                name, i);
        }
    }
    return 0;
}

/* A DNS name: labels of letters, digits and '-', separated by single dots. */
static bool domain_ok(const char *s, size_t n)
{
    if (n == 0 || n > TK_IDP_DOMAIN_MAX || s[0] == '.' || s[n - 1] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && !(c == '.' && s[i + 1] != '.')) {
            return false;
        }
    }
    return true;
}

/* Space-separated list entries: printable ASCII without space, '"' or '\\'
 * (scope tokens, RFC 6749 §3.3, and resource identifiers alike). */
static bool token_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c > 0x7e || c == '"' || c == '\\') {
            return false;
        }
    }
    return n > 0;
}

/* Join the strings of arr with spaces into buf (cap bytes with the NUL). */
static int join(tk_jcfg *l, json_t *arr, const char *name, size_t item_max, char *buf, size_t cap,
                size_t *len_out)
{
    size_t n = 0, i;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        size_t sl = json_string_length(v);
        if (sl > item_max || !token_ok(s, sl)) {
            return tk_jcfg_fail(l, TK_E_BADINPUT,
                                "\"%s\": entry %zu must be 1 to %zu printable characters without "
                                "spaces or quotes",
                                name, i, item_max);
        }
        if (n + (n > 0) + sl + 1 > cap) {
            return tk_jcfg_fail(l, TK_E_BADINPUT, "\"%s\" is longer than %zu characters", name,
                                cap - 1);
        }
        if (n > 0) {
            buf[n++] = ' ';
        }
        memcpy(buf + n, s, sl + 1);
        n += sl;
    }
    *len_out = n;
    return 0;
}

/* domains (a sign-in IdP's: lower-cased, unique across the file),
 * allowed_resources, allowed_scopes. */
static int issuer_org(tk_jcfg *l, json_t *obj, const tk_idp_trust *t, tk_idp_issuer *is)
{
    json_t *dom, *res, *sc;
    int rc = get_list(l, obj, "domains", TK_IDP_DOMAINS_MAX, &dom);
    rc = rc != 0 ? rc : get_list(l, obj, "allowed_resources", TK_IDP_ORG_RESOURCES_MAX, &res);
    rc = rc != 0 ? rc : get_list(l, obj, "allowed_scopes", TK_SCOPE_MAX / 2, &sc);
    if (rc != 0) {
        return rc;
    }
    if (dom != NULL && is->client_id_len == 0) {
        return tk_jcfg_fail(l, TK_E_BADINPUT,
                            "\"domains\" without \"client_id\" (only a "
                            "sign-in IdP is chosen by login_hint)");
    }
    size_t i;
    json_t *v;
    json_array_foreach(dom, i, v)
    {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (!domain_ok(s, n)) {
            return tk_jcfg_fail(l, TK_E_BADINPUT,
                                "\"domains\": \"%.64s\" is not a domain name (letters, digits, "
                                "'-', dots between labels)",
                                s);
        }
        char *d = is->domains[is->ndomains];
        for (size_t k = 0; k <= n; k++) {
            char c = s[k];
            d[k] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
        }
        for (unsigned j = 0; j < t->n; j++) { /* this issuer included */
            const tk_idp_issuer *o = &t->issuers[j];
            for (unsigned k = 0; k < o->ndomains; k++) {
                if (strcmp(o->domains[k], d) == 0) {
                    return tk_jcfg_fail(l, TK_E_BADINPUT,
                                        "domain \"%.64s\" is listed twice (here or by issuer "
                                        "\"%.200s\"): a login_hint must route to one IdP",
                                        d, o->issuer);
                }
            }
        }
        is->ndomains++;
    }
    is->limit_resources = res != NULL;
    rc = res == NULL ? 0
                     : join(l, res, "allowed_resources", TK_AUD_MAX, is->allowed_resources,
                            sizeof is->allowed_resources, &is->allowed_resources_len);
    is->limit_scopes = sc != NULL;
    rc = rc != 0 || sc == NULL ? rc
                               : join(l, sc, "allowed_scopes", TK_SCOPE_MAX, is->allowed_scopes,
                                      sizeof is->allowed_scopes, &is->allowed_scopes_len);
    return rc;
}

static int issuer_keys(tk_jcfg *l, json_t *obj, tk_idp_issuer *is)
{
    unsigned algs;
    int rc = get_algs(l, obj, &algs);
    is->algs = algs;
    rc = rc != 0 ? rc : get_jwks_uri(l, obj, is);
    tk_slice file;
    rc = rc != 0 ? rc : tk_jcfg_get_str(l, obj, "jwks_file", PATH_MAX - 1, false, &file);
    if (rc == 0 && file.p != NULL) {
        char path[PATH_MAX];
        json_t *jwks = NULL;
        rc = tk_jcfg_resolve(l, file.p, path, sizeof path);
        rc = rc != 0 ? rc : tk_jcfg_load(l, path, TK_IDP_FILE_MAX, &jwks);
        rc = rc != 0 ? rc : tk_idp_add_jwks(l, is, jwks, algs);
        json_decref(jwks);
    }
    json_t *inline_jwks = json_object_get(obj, "jwks");
    if (rc == 0 && inline_jwks != NULL) {
        rc = tk_idp_add_jwks(l, is, inline_jwks, algs);
    }
    json_t *keys = json_object_get(obj, "keys");
    if (rc == 0 && keys != NULL && !json_is_array(keys)) {
        rc = tk_jcfg_fail(l, TK_E_BADINPUT, "\"keys\" must be an array");
    }
    size_t i;
    json_t *spec;
    json_array_foreach(keys, i, spec)
    {
        rc = rc != 0 ? rc : tk_idp_add_pem(l, is, spec, algs);
    }
    if (rc == 0 && is->nkeys == 0 && is->nsecrets == 0 && is->jwks_uri_len == 0 &&
        is->client_id_len == 0 &&
        !tk_idp_has_sender_cert(is)) { /* a sign-in IdP's discovery names its jwks_uri */
        rc = tk_jcfg_fail(l, TK_E_BADINPUT,
                          "no keys, no jwks_uri, no webhook secrets and no sender certificate: "
                          "nothing could be verified");
    }
    return rc;
}

static const char *const issuer_members[] = {"issuer",
                                             "audience",
                                             "jwks_file",
                                             "jwks",
                                             "jwks_uri",
                                             "domains",
                                             "allowed_resources",
                                             "allowed_scopes",
                                             "keys",
                                             "algorithms",
                                             "leeway",
                                             "max_age",
                                             "allow_missing_exp",
                                             "ssf_bearer",
                                             "webhook_secrets",
                                             "sender_certificate",
                                             "credential_change",
                                             "client_id",
                                             "client_secret",
                                             "token_endpoint_auth_method",
                                             "scopes",
                                             "end_session",
                                             "client_key_file",
                                             "client_key_kid",
                                             "client_assertion_aud",
                                             NULL};

static int load_issuer(tk_jcfg *l, json_t *obj, tk_idp_trust *t)
{
    tk_jcfg_where(l, NULL);
    if (!json_is_object(obj)) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "each of \"issuers\" must be an object");
    }
    tk_slice iss;
    int rc = tk_jcfg_get_str(l, obj, "issuer", TK_IDP_ISS_MAX, true, &iss);
    if (rc != 0) {
        return rc;
    }
    tk_jcfg_where(l, "issuer \"%.200s\"", iss.p);
    if (tk_idp_find(t, iss) != NULL) {
        return tk_jcfg_fail(l, TK_E_BADINPUT, "listed twice");
    }
    tk_idp_issuer *is = &t->issuers[t->n];
    memcpy(is->issuer, iss.p, iss.len + 1);
    is->issuer_len = iss.len;
    t->n++; /* counted now, so a failure below frees its keys */
    rc = tk_jcfg_only_members(l, obj, issuer_members, "an issuer");
    rc = rc != 0 ? rc : issuer_basics(l, obj, is);
    rc = rc != 0 ? rc : issuer_signin(l, obj, is);
    rc = rc != 0 ? rc : issuer_org(l, obj, t, is);
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
        EVP_PKEY_free(is->client_key);
        tk_cleanse(is, sizeof *is);
    }
    free(t->issuers);
    free(t);
}

tk_idp_trust *tk_idp_trust_alloc(void)
{
    tk_idp_trust *t = calloc(1, sizeof *t);
    if (t != NULL) {
        t->issuers = calloc(TK_IDP_MAX, sizeof *t->issuers);
        if (t->issuers == NULL) {
            free(t);
            return NULL;
        }
        t->refs = 1;
    }
    return t;
}

int tk_idp_load(const char *path, tk_idp_trust **out, char *err, size_t errcap)
{
    tk_jcfg l;
    json_t *root = NULL;
    int rc = tk_jcfg_init(&l, path, err, errcap);
    rc = rc != 0 ? rc : tk_jcfg_load(&l, path, TK_IDP_FILE_MAX, &root);
    json_t *arr = rc == 0 ? json_object_get(root, "issuers") : NULL;
    static const char *const top[] = {"issuers", NULL};
    rc = rc != 0 ? rc : tk_jcfg_only_members(&l, root, top, "the top level");
    if (rc == 0 && (!json_is_array(arr) || json_array_size(arr) > TK_IDP_MAX)) {
        rc = tk_jcfg_fail(&l, TK_E_BADINPUT, "\"issuers\" must be an array of at most %d",
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

const tk_idp_issuer *tk_idp_for_hint(const tk_idp_trust *t, tk_slice hint)
{
    const char *at = NULL;
    for (size_t i = 0; i < hint.len; i++) {
        at = hint.p[i] == '@' ? hint.p + i : at;
    }
    if (at == NULL) {
        return NULL;
    }
    tk_slice dom = {at + 1, hint.len - (size_t)(at + 1 - hint.p)};
    for (unsigned i = 0; t != NULL && i < t->n; i++) {
        const tk_idp_issuer *is = &t->issuers[i];
        for (unsigned k = 0; is->client_id_len > 0 && k < is->ndomains; k++) {
            if (dom.len > 0 && tk_slice_eq_nocase(dom, is->domains[k])) {
                return is;
            }
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
