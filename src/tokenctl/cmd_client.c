/*
 * tokenctl client commands: add (mints the client secret, stores only its
 * hash and prints the secret this one time), approve / disable (the store's
 * idempotent TK_OP_CLIENT_STATUS op, the same one the daemon would apply),
 * rotate-secret (TK_OP_CLIENT_SECRET, the same write path) and list.
 *
 * Disabling is final for every token the client has: it bumps the client's
 * generation, and approving it again brings none of them back (the client
 * starts with no live token and must obtain new ones). rotate-secret is the
 * other half of letting a compromised client back in: the old secret stops
 * working with the commit.
 *
 * RFC 8705: add --tls-subject DN registers a tls_client_auth client (its
 * certificate must chain to tokend's tls-ca and carry that subject; stored
 * in the canonical form of cert.h), --tls-san the same with a subject
 * alternative name (dns:, uri:, ip:, email:), --tls-thumbprint the SHA-256 of a
 * self-signed certificate (64 hex digits, or base64url as in x5t#S256).
 * Such a client gets no secret: nobody knows the hash it stores.
 */
#include "ctl.h"

#include "tokend/cert.h"
#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/limits.h"
#include "tokend/oauth_cimd.h"
#include "tokend/oauth_register.h"
#include "tokend/oauth_uri.h"

#include <stdio.h>
#include <string.h>

/* ==== client add ========================================================= */

typedef struct client_args {
    const char *name, *role_s, *scope, *resource, *delegate_to;
    uint8_t role;
    bool pending, public, native;
    char redirects[TK_CLIENT_REDIRECTS_MAX + 1];
    char tls_subject[TK_CERT_DN_MAX + 1]; /* canonical; "" = none */
    char tls_san[TK_CERT_SAN_MAX + 1];    /* canonical; "" = none */
    bool has_thumbprint;
    uint8_t thumbprint[TK_HASH_LEN];
} client_args;

/* --tls-subject / --tls-san / --tls-thumbprint: at most one of them, each
 * well-formed. */
static int client_cert_args(const ctl *c, client_args *a)
{
    const char *dn = ctl_opt_str(c, "tls-subject");
    const char *san = ctl_opt_str(c, "tls-san");
    const char *tp = ctl_opt_str(c, "tls-thumbprint");
    if ((dn != NULL) + (san != NULL) + (tp != NULL) > 1) {
        return ctl_usage(c, "--tls-subject, --tls-san and --tls-thumbprint: one of them");
    }
    if ((dn != NULL || san != NULL || tp != NULL) && a->public) {
        return ctl_usage(c, "--public clients present no credential; --tls-* is one");
    }
    size_t n = 0;
    if (dn != NULL &&
        tk_cert_dn_canon(tk_slice_from_str(dn), a->tls_subject, sizeof a->tls_subject, &n) != 0) {
        return ctl_usage(c,
                         "--tls-subject: expected an RFC 4514 DN such as \"CN=rs,O=Example\" "
                         "(at most %d bytes)",
                         TK_CERT_DN_MAX);
    }
    if (san != NULL &&
        tk_cert_san_canon(tk_slice_from_str(san), a->tls_san, sizeof a->tls_san, &n) != 0) {
        return ctl_usage(c,
                         "--tls-san: expected dns:NAME, uri:URI, ip:ADDRESS or email:ADDRESS "
                         "(at most %d bytes)",
                         TK_CERT_SAN_MAX);
    }
    if (tp == NULL) {
        return CTL_OK;
    }
    if (tk_cert_thumbprint_parse(tk_slice_from_str(tp), a->thumbprint) != 0) {
        return ctl_usage(c, "--tls-thumbprint: 64 hex digits or 43 base64url characters");
    }
    a->has_thumbprint = true;
    return CTL_OK;
}

/* "*", or space-separated client ids. */
static int check_delegate(const ctl *c, const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > TK_DELEGATE_MAX) {
        return ctl_usage(c, "--delegate-to must be * or client ids (at most %d bytes)",
                         TK_DELEGATE_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 0x21 && !(v[i] == ' ' && i > 0 && i + 1 < n && v[i - 1] != ' ')) {
            return ctl_usage(c, "--delegate-to: ids separated by single spaces");
        }
        if (v[i] == 0x7f) {
            return ctl_usage(c, "--delegate-to: no control characters");
        }
    }
    return CTL_OK;
}

/* The registration side of client add: redirect URIs (checked as /register
 * checks them), public, native, delegate-to. */
static int client_oauth_args(const ctl *c, client_args *a)
{
    a->public = ctl_opt_flag(c, "public");
    a->native = ctl_opt_flag(c, "native");
    a->delegate_to = ctl_opt_str(c, "delegate-to");
    if (a->delegate_to != NULL && check_delegate(c, a->delegate_to) != CTL_OK) {
        return CTL_USAGE;
    }
    size_t n = 0;
    bool all_native = true;
    for (unsigned i = 0; i < c->nredirects; i++) {
        tk_oauth_err err;
        enum tk_oauth_redirect_kind kind;
        tk_slice u = tk_slice_from_str(c->redirects[i]);
        if (tk_oauth_redirect_check(u, &kind, &err) != 0) {
            return ctl_usage(c, "--redirect-uri %s: %s", c->redirects[i], err.description);
        }
        all_native = all_native && kind != TK_OAUTH_REDIRECT_HTTPS;
        if (n + u.len + 1 > sizeof a->redirects) {
            return ctl_usage(c, "--redirect-uri: too many bytes");
        }
        if (n > 0) {
            a->redirects[n++] = ' ';
        }
        memcpy(a->redirects + n, u.p, u.len);
        n += u.len;
    }
    a->redirects[n] = '\0';
    a->native = a->native || (c->nredirects > 0 && all_native);
    if ((c->nredirects > 0 || a->public) && a->role != TK_ROLE_AGENT) {
        return ctl_usage(c, "--redirect-uri and --public are for --role agent");
    }
    for (unsigned i = 0; i < c->nredirects; i++) {
        enum tk_oauth_redirect_kind kind;
        TK_ASSERT(tk_oauth_redirect_check(tk_slice_from_str(c->redirects[i]), &kind, NULL) == 0);
        if (!tk_oauth_redirect_allowed(kind, a->native)) {
            return ctl_usage(c, "--redirect-uri %s is only for native clients (--native)",
                             c->redirects[i]);
        }
    }
    return CTL_OK;
}

static int client_add_args(const ctl *c, client_args *a)
{
    int rc = ctl_need_str(c, "name", TK_NAME_MAX, &a->name);
    if (rc == CTL_OK) {
        rc = ctl_need_str(c, "role", 32, &a->role_s);
    }
    if (rc == CTL_OK && tk_role_parse(a->role_s, &a->role) != 0) {
        rc = ctl_usage(c, "--role must be agent, resource_server or admin, not \"%s\"", a->role_s);
    }
    a->scope = ctl_opt_str(c, "scope");
    if (rc == CTL_OK && a->scope != NULL) {
        rc = ctl_check_scope(c, "--scope", a->scope);
    }
    a->resource = ctl_opt_str(c, "resource");
    if (rc == CTL_OK && a->resource != NULL) {
        rc = ctl_check_uri(c, "--resource", a->resource);
    }
    if (rc == CTL_OK && a->resource != NULL && a->role != TK_ROLE_RESOURCE_SERVER) {
        rc = ctl_usage(c, "--resource is only for --role resource_server");
    }
    a->pending = ctl_opt_flag(c, "pending");
    if (rc == CTL_OK) {
        rc = client_oauth_args(c, a);
    }
    if (rc == CTL_OK) {
        rc = client_cert_args(c, a);
    }
    return rc;
}

/* The RFC 8705 method and what it checks, for a certificate client. */
static void cert_json(tk_json *j, const tk_client_rec *rec)
{
    if (rec->tls_subject.len > 0) {
        tk_json_kv_cstr(j, "auth_method", "tls_client_auth");
        tk_json_kv_str(j, "tls_subject", rec->tls_subject);
    } else if (rec->tls_san.len > 0) {
        tk_json_kv_cstr(j, "auth_method", "tls_client_auth");
        tk_json_kv_str(j, "tls_san", rec->tls_san);
    } else if (rec->has_tls_thumbprint) {
        char b64[48]; /* 43 characters and the NUL */
        TK_ASSERT(tk_b64url_encode(rec->tls_thumbprint, TK_HASH_LEN, b64, sizeof b64) == 0);
        tk_json_kv_cstr(j, "auth_method", "self_signed_tls_client_auth");
        tk_json_kv_cstr(j, "tls_thumbprint", b64);
    }
}

static int client_store(ctl *c, const char *id, const tk_client_rec *rec)
{
    tk_txn *txn = NULL;
    int rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    rc = tk_store_put_client(txn, tk_slice_from_str(id), rec, TK_PUT_NEW);
    if (rc != 0) {
        tk_store_txn_end(txn);
        return ctl_fail_err(c, "storing the client", rc);
    }
    rc = tk_store_commit(txn);
    if (rc != 0) {
        return ctl_fail_err(c, "commit", rc);
    }
    return CTL_OK;
}

int ctl_cmd_client_add(ctl *c)
{
    client_args a = {0};
    int rc = client_add_args(c, &a);
    if (rc != CTL_OK) {
        return rc;
    }
    char id[TK_ID_MAX + 1], secret[TK_TOKEN_LEN + 1] = "";
    tk_client_rec rec = {.name = tk_slice_from_str(a.name),
                         .scope = tk_slice_from_str(a.scope ? a.scope : ""),
                         .resource = tk_slice_from_str(a.resource ? a.resource : ""),
                         .role = a.role,
                         .status = a.pending ? TK_CLIENT_PENDING : TK_CLIENT_APPROVED,
                         .created = tk_now(),
                         .redirect_uris = tk_slice_from_str(a.redirects),
                         .delegate_to = tk_slice_from_str(a.delegate_to ? a.delegate_to : ""),
                         .tls_subject = tk_slice_from_str(a.tls_subject),
                         .tls_san = tk_slice_from_str(a.tls_san),
                         .has_tls_thumbprint = a.has_thumbprint};
    memcpy(rec.tls_thumbprint, a.thumbprint, TK_HASH_LEN);
    bool by_cert = a.has_thumbprint || a.tls_subject[0] != '\0' || a.tls_san[0] != '\0';
    if (c->nredirects > 0 || a.public) { /* an agent of the authorization server */
        rec.grant_types = TK_OAUTH_GRANTS_ALL;
        rec.auth_method =
            (uint8_t)((a.public ? TK_OAUTH_AUTH_NONE : TK_OAUTH_AUTH_CLIENT_SECRET_BASIC) + 1);
        rec.flags =
            (uint8_t)((a.public ? TK_CLIENT_F_PUBLIC : 0) | (a.native ? TK_CLIENT_F_NATIVE : 0));
    }
    rc = tk_id_new("tkc_", id, sizeof id);
    if (rc == 0 && (a.public || by_cert)) {
        rc = tk_random_bytes(rec.secret_hash, TK_HASH_LEN); /* no secret anyone knows */
    } else if (rc == 0) {
        rc = tk_secret_new(TK_SECRET_CLIENT, secret, sizeof secret, rec.secret_hash);
    }
    if (rc != 0) {
        return ctl_fail_err(c, "random generator", rc);
    }
    rc = ctl_open(c, false);
    if (rc == CTL_OK) {
        rc = client_store(c, id, &rec);
    }
    if (rc == CTL_OK) {
        char buf[CTL_JSON_MAX];
        tk_json j;
        tk_json_init(&j, buf, sizeof buf);
        tk_json_obj_begin(&j);
        tk_json_kv_cstr(&j, "client_id", id);
        if (!a.public && !by_cert) {
            tk_json_kv_cstr(&j, "client_secret", secret);
        }
        cert_json(&j, &rec);
        tk_json_kv_cstr(&j, "name", a.name);
        tk_json_kv_cstr(&j, "role", tk_role_name(rec.role));
        tk_json_kv_cstr(&j, "status", tk_client_status_name(rec.status));
        tk_json_obj_end(&j);
        rc = ctl_print_json(c, &j);
        tk_cleanse(buf, sizeof buf);
    }
    tk_cleanse(secret, sizeof secret);
    return rc;
}

/* ==== client approve / disable =========================================== */

/* Apply a client op in one write txn; *out gets the client record
 * afterwards (only its scalar fields are used: the slices die with the txn). */
static int client_apply(ctl *c, const char *id, const tk_op *op, tk_client_rec *out)
{
    tk_txn *txn = NULL;
    tk_client_rec rec;
    int rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    rc = tk_store_get_client(txn, tk_slice_from_str(id), &rec);
    if (rc == 0) {
        rc = tk_store_apply(txn, op, NULL);
    }
    if (rc == 0) {
        rc = tk_store_get_client(txn, tk_slice_from_str(id), &rec);
    }
    if (rc != 0) {
        tk_store_txn_end(txn);
        if (rc == TK_E_NOTFOUND) {
            return ctl_fail(c, "no client %s", id);
        }
        return ctl_fail_err(c, "updating the client", rc);
    }
    *out = rec;
    out->name = out->scope = out->resource = TK_SLICE_NULL;
    rc = tk_store_commit(txn);
    return rc == 0 ? CTL_OK : ctl_fail_err(c, "commit", rc);
}

/* The store id of a CLIENT_ID argument: a client known by its Client ID
 * Metadata Document is named by its URL, stored under the key derived from
 * it (oauth_cimd.h). Any other id is itself. */
static const char *store_id(const char *id, char key[TK_CIMD_KEY_LEN + 1])
{
    tk_slice s = tk_slice_from_str(id), host;
    const char *why;
    if (tk_oauth_cimd_candidate(s) && tk_oauth_cimd_url_check(s, &host, &why) == 0) {
        tk_oauth_cimd_key(s, key);
        return key;
    }
    return id;
}

static size_t id_max(const char *id)
{
    return tk_oauth_cimd_candidate(tk_slice_from_str(id)) ? TK_CIMD_URL_MAX : TK_ID_MAX;
}

static int client_status_cmd(ctl *c, uint8_t status)
{
    const char *shown = c->pos[0];
    char key[TK_CIMD_KEY_LEN + 1];
    uint8_t now_status = 0;
    int rc = ctl_check_str(c, "CLIENT_ID", shown, shown != NULL ? id_max(shown) : TK_ID_MAX);
    const char *id = rc == CTL_OK ? store_id(shown, key) : shown;
    if (rc == CTL_OK) {
        rc = ctl_open(c, false);
    }
    tk_op op = ctl_op(TK_OP_CLIENT_STATUS);
    op.client_status.status = status;
    tk_client_rec rec;
    if (rc == CTL_OK && tk_op_id_set(&op.client_status.client, tk_slice_from_str(id)) != 0) {
        rc = ctl_usage(c, "CLIENT_ID too long");
    }
    if (rc == CTL_OK) {
        rc = client_apply(c, id, &op, &rec);
        now_status = rec.status;
    }
    if (rc != CTL_OK) {
        return rc;
    }
    if (now_status != status) {
        return ctl_fail(c, "client %s is %s and stays so", shown,
                        tk_client_status_name(now_status));
    }
    char buf[CTL_JSON_MAX + TK_CIMD_URL_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "client_id", shown);
    tk_json_kv_cstr(&j, "status", tk_client_status_name(now_status));
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}

int ctl_cmd_client_disable(ctl *c)
{
    return client_status_cmd(c, TK_CLIENT_DISABLED);
}

int ctl_cmd_client_approve(ctl *c)
{
    return client_status_cmd(c, TK_CLIENT_APPROVED);
}

/* ==== client rotate-secret =============================================== */

int ctl_cmd_client_rotate_secret(ctl *c)
{
    const char *id = c->pos[0];
    int rc = ctl_check_str(c, "CLIENT_ID", id, TK_ID_MAX);
    if (rc != CTL_OK) {
        return rc;
    }
    tk_op op = ctl_op(TK_OP_CLIENT_SECRET);
    TK_ASSERT(tk_op_id_set(&op.client_secret.client, tk_slice_from_str(id)) == 0);
    char secret[TK_TOKEN_LEN + 1];
    rc = tk_secret_new(TK_SECRET_CLIENT, secret, sizeof secret, op.client_secret.secret_hash);
    if (rc != 0) {
        return ctl_fail_err(c, "random generator", rc);
    }
    tk_client_rec rec;
    rc = ctl_open(c, false);
    if (rc == CTL_OK) {
        rc = client_apply(c, id, &op, &rec);
    }
    if (rc == CTL_OK) {
        char buf[CTL_JSON_MAX];
        tk_json j;
        tk_json_init(&j, buf, sizeof buf);
        tk_json_obj_begin(&j);
        tk_json_kv_cstr(&j, "client_id", id);
        tk_json_kv_cstr(&j, "client_secret", secret);
        tk_json_kv_cstr(&j, "status", tk_client_status_name(rec.status));
        tk_json_obj_end(&j);
        rc = ctl_print_json(c, &j);
        tk_cleanse(buf, sizeof buf);
    }
    tk_cleanse(secret, sizeof secret);
    tk_cleanse(&op, sizeof op);
    return rc;
}

/* ==== client list ======================================================== */

typedef struct list_state {
    const ctl *c;
    uint64_t n;
    bool pending_only;
} list_state;

static void redirects_json(tk_json *j, tk_slice all)
{
    tk_json_key(j, "redirect_uris");
    tk_json_arr_begin(j);
    size_t i = 0;
    while (i < all.len) {
        size_t k = i;
        while (k < all.len && all.p[k] != ' ') {
            k++;
        }
        tk_json_str(j, (tk_slice){all.p + i, k - i});
        i = k + 1;
    }
    tk_json_arr_end(j);
}

static int list_one(void *arg, tk_slice id, const tk_client_rec *rec)
{
    list_state *ls = arg;
    if (ls->pending_only && rec->status != TK_CLIENT_PENDING) {
        return 0;
    }
    char buf[CTL_JSON_MAX + TK_CLIENT_REDIRECTS_MAX + TK_CIMD_URL_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    if (rec->metadata_url.len > 0) { /* a Client ID Metadata Document client */
        tk_json_kv_str(&j, "client_id", rec->metadata_url);
        tk_json_kv_str(&j, "key", id);
        tk_json_kv_int(&j, "metadata_until", rec->metadata_until);
    } else {
        tk_json_kv_str(&j, "client_id", id);
    }
    tk_json_kv_str(&j, "name", rec->name);
    tk_json_kv_cstr(&j, "role", tk_role_name(rec->role));
    tk_json_kv_cstr(&j, "status", tk_client_status_name(rec->status));
    tk_json_kv_str(&j, "scope", rec->scope);
    if (rec->resource.len > 0) {
        tk_json_kv_str(&j, "resource", rec->resource);
    }
    tk_json_kv_int(&j, "created", rec->created);
    tk_json_kv_int(&j, "generation", rec->generation);
    if (rec->redirect_uris.len > 0) {
        redirects_json(&j, rec->redirect_uris);
    }
    if (rec->auth_method > 0) {
        tk_json_kv_bool(&j, "public", (rec->flags & TK_CLIENT_F_PUBLIC) != 0);
        tk_json_kv_bool(&j, "registered", (rec->flags & TK_CLIENT_F_DYNAMIC) != 0);
    }
    if (rec->software_id.len > 0) {
        tk_json_kv_str(&j, "software_id", rec->software_id);
    }
    if (rec->delegate_to.len > 0) {
        tk_json_kv_str(&j, "delegate_to", rec->delegate_to);
    }
    cert_json(&j, rec);
    tk_json_obj_end(&j);
    if (tk_json_finish(&j) != 0) {
        return TK_E_TOOBIG;
    }
    fputs(ls->n++ == 0 ? "\n  " : ",\n  ", stdout);
    fwrite(buf, 1, j.len, stdout);
    return 0;
}

int ctl_cmd_client_list(ctl *c)
{
    tk_txn *txn = NULL;
    int rc = ctl_open(c, true);
    if (rc != CTL_OK) {
        return rc;
    }
    rc = tk_store_read_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    list_state ls = {c, 0, ctl_opt_flag(c, "pending")};
    fputc('[', stdout);
    rc = tk_store_each_client(txn, list_one, &ls);
    tk_store_txn_end(txn);
    fputs(ls.n > 0 ? "\n]\n" : "]\n", stdout);
    if (rc != 0) {
        return ctl_fail_err(c, "listing clients", rc);
    }
    return fflush(stdout) == 0 ? CTL_OK : ctl_fail(c, "writing stdout failed");
}

/* ==== client set ========================================================= */

/* Replace the client's delegate_to list ("-" clears it) in one write txn. */
int ctl_cmd_client_set(ctl *c)
{
    const char *shown = c->pos[0];
    char key[TK_CIMD_KEY_LEN + 1];
    const char *dt = NULL;
    int rc = ctl_check_str(c, "CLIENT_ID", shown, shown != NULL ? id_max(shown) : TK_ID_MAX);
    const char *id = rc == CTL_OK ? store_id(shown, key) : shown;
    if (rc == CTL_OK) {
        rc = ctl_need_str(c, "delegate-to", TK_DELEGATE_MAX, &dt);
    }
    if (rc == CTL_OK && strcmp(dt, "-") != 0) {
        rc = check_delegate(c, dt);
    }
    if (rc == CTL_OK) {
        rc = ctl_open(c, false);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    tk_txn *txn = NULL;
    tk_client_rec rec;
    rc = tk_store_write_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "write transaction", rc);
    }
    rc = tk_store_get_client(txn, tk_slice_from_str(id), &rec);
    if (rc == 0) {
        rec.delegate_to = tk_slice_from_str(strcmp(dt, "-") == 0 ? "" : dt);
        rc = tk_store_put_client(txn, tk_slice_from_str(id), &rec, 0);
    }
    if (rc != 0) {
        tk_store_txn_end(txn);
        return rc == TK_E_NOTFOUND ? ctl_fail(c, "no client %s", shown)
                                   : ctl_fail_err(c, "updating the client", rc);
    }
    rc = tk_store_commit(txn);
    if (rc != 0) {
        return ctl_fail_err(c, "commit", rc);
    }
    char buf[CTL_JSON_MAX + TK_CIMD_URL_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "client_id", shown);
    tk_json_kv_cstr(&j, "delegate_to", strcmp(dt, "-") == 0 ? "" : dt);
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}
