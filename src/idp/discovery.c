/*
 * OpenID Connect discovery for the sign-in IdPs (login = oidc): each issuer
 * of a freshly loaded trust file that names a client_id gets its
 * issuer/.well-known/openid-configuration fetched through the outbound
 * thread (idp_jwks.h, tk_idp_discover), and its endpoints (and its
 * jwks_uri, unless the file names one) copied into the issuer entry before
 * the snapshot is published. Main thread, at start and at every SIGHUP.
 *
 * The document is checked the way OpenID Connect Discovery 1.0 §4.3 asks:
 * its "issuer" must equal the configured issuer exactly, and every endpoint
 * we use must be https (plain http only to a loopback host, i.e. a test IdP).
 */
#include "idp_int.h"

#include "tokend/idp_jwks.h"
#include "tokend/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct disc {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned waiting;
    tk_idp_trust *t;
} disc;

static bool loopback_host(const char *rest)
{
    static const char *const names[] = {"127.0.0.1", "[::1]", "localhost"};
    for (size_t i = 0; i < TK_ARRAY_LEN(names); i++) {
        size_t n = strlen(names[i]);
        if (strncmp(rest, names[i], n) == 0 &&
            (rest[n] == '\0' || rest[n] == ':' || rest[n] == '/')) {
            return true;
        }
    }
    return false;
}

/* An endpoint we may call: https (http only on loopback), no fragment, no
 * user info, no blanks, at most TK_URL_MAX bytes. */
static bool endpoint_ok(const char *u)
{
    size_t n = strnlen(u, TK_URL_MAX + 1);
    if (n == 0 || n > TK_URL_MAX || strpbrk(u, "# @\\\"<>") != NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e) {
            return false;
        }
    }
    if (strncmp(u, "https://", 8) == 0) {
        return u[8] != '\0' && u[8] != '/';
    }
    return strncmp(u, "http://", 7) == 0 && loopback_host(u + 7);
}

static const char *member(json_t *doc, const char *name)
{
    json_t *v = json_object_get(doc, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Parse a discovery document into is; a static reason on failure. */
static const char *apply_doc(tk_idp_issuer *is, const tk_outbound_resp *resp)
{
    if (resp->result != TK_OB_OK) {
        return resp->error[0] != '\0' ? resp->error : tk_outbound_result_name(resp->result);
    }
    json_error_t e;
    json_t *doc =
        json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &e);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        return "the discovery document is not a JSON object";
    }
    const char *why = NULL;
    const char *iss = member(doc, "issuer"), *authz = member(doc, "authorization_endpoint"),
               *tok = member(doc, "token_endpoint"), *jwks = member(doc, "jwks_uri"),
               *end = member(doc, "end_session_endpoint");
    if (iss == NULL || strcmp(iss, is->issuer) != 0) {
        why = "the document's issuer is not the configured issuer";
    } else if (authz == NULL || !endpoint_ok(authz) || tok == NULL || !endpoint_ok(tok)) {
        why = "authorization_endpoint and token_endpoint must be https URLs";
    } else if (is->jwks_uri_len == 0 && (jwks == NULL || !endpoint_ok(jwks))) {
        why = "jwks_uri must be an https URL";
    } else if (end != NULL && !endpoint_ok(end)) {
        why = "end_session_endpoint must be an https URL";
    }
    if (why == NULL) {
        snprintf(is->authorization_endpoint, sizeof is->authorization_endpoint, "%s", authz);
        snprintf(is->token_endpoint, sizeof is->token_endpoint, "%s", tok);
        snprintf(is->end_session_endpoint, sizeof is->end_session_endpoint, "%s",
                 end != NULL ? end : "");
        if (is->jwks_uri_len == 0) {
            is->jwks_uri_len = strlen(jwks);
            memcpy(is->jwks_uri, jwks, is->jwks_uri_len + 1);
        }
        /* RFC 9207 §2.4: an IdP that says it sends iss must send it. */
        is->iss_param =
            json_is_true(json_object_get(doc, "authorization_response_iss_parameter_supported"));
        is->discovered = true;
    }
    json_decref(doc);
    return why;
}

/* On the outbound thread. */
static void on_doc(void *arg, const tk_outbound_resp *resp)
{
    disc *d = arg;
    pthread_mutex_lock(&d->mu);
    tk_idp_issuer *is = &d->t->issuers[resp->cookie];
    const char *why = apply_doc(is, resp);
    if (why != NULL) {
        tk_log_warn("oidc_discovery_failed", "iss=\"%s\" status=%d why=\"%s\"", is->issuer,
                    resp->status, why);
    } else {
        tk_log_info("oidc_discovered", "iss=\"%s\" jwks_uri=\"%s\" end_session=%s", is->issuer,
                    is->jwks_uri, is->end_session_endpoint[0] != '\0' ? "yes" : "no");
    }
    d->waiting--;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

unsigned tk_idp_discover(tk_idp_trust *t, tk_outbound *ob)
{
    if (t == NULL) {
        return 0;
    }
    disc d = {.t = t};
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    unsigned failed = 0;
    for (unsigned i = 0; i < t->n; i++) {
        tk_idp_issuer *is = &t->issuers[i];
        if (is->client_id_len == 0) {
            continue;
        }
        char url[TK_URL_MAX + 1];
        size_t n = is->issuer_len;
        while (n > 0 && is->issuer[n - 1] == '/') { /* bounded by the issuer's length */
            n--;
        }
        int w =
            snprintf(url, sizeof url, "%.*s/.well-known/openid-configuration", (int)n, is->issuer);
        tk_outbound_req req = {.purpose = TK_OB_DISCOVERY,
                               .method = TK_OB_GET,
                               .url = url,
                               .accept = "application/json",
                               .timeout_ms = TK_OIDC_DISCOVERY_WAIT_MS,
                               .cookie = i,
                               .cb = on_doc,
                               .cb_arg = &d};
        pthread_mutex_lock(&d.mu);
        int rc = w > 0 && (size_t)w < sizeof url && ob != NULL ? tk_outbound_submit(ob, &req)
                                                               : TK_E_INVALID;
        d.waiting += rc == 0 ? 1 : 0;
        pthread_mutex_unlock(&d.mu);
        if (rc != 0) {
            tk_log_warn("oidc_discovery_failed", "iss=\"%s\" why=\"%s\"", is->issuer,
                        tk_strerror(rc));
        }
    }
    /* Every submitted request completes exactly once, within its timeout
     * (or canceled at stop), so this wait is bounded. */
    pthread_mutex_lock(&d.mu);
    while (d.waiting > 0) {
        pthread_cond_wait(&d.cv, &d.mu);
    }
    pthread_mutex_unlock(&d.mu);
    for (unsigned i = 0; i < t->n; i++) {
        failed += t->issuers[i].client_id_len > 0 && !t->issuers[i].discovered ? 1 : 0;
    }
    pthread_cond_destroy(&d.cv);
    pthread_mutex_destroy(&d.mu);
    return failed;
}
