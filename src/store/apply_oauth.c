/*
 * The authorization server's ops: decided here, inside the write txn, from
 * the state found there, so two requests racing on one code, one refresh
 * token or one pending request cannot both win (the committer applies one
 * batch at a time). Each reports an outcome (record.h, enum tk_op_outcome)
 * that travels back to the worker with the completion. An INVALID outcome
 * writes nothing; REPLAYED revokes the grant the replayed secret belongs to.
 *
 * Slices read from LMDB in a write txn die at the next put, so each op
 * copies what it needs into a local struct (owned bytes) before writing.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* A bounded owned copy of a slice. */
#define BUF(name, cap)                                                                             \
    char name##_b[cap];                                                                            \
    size_t name##_n

static bool cp(char *dst, size_t cap, size_t *n, tk_slice s)
{
    if (s.len > cap) {
        return false;
    }
    if (s.len > 0) {
        memcpy(dst, s.p, s.len);
    }
    *n = s.len;
    return true;
}

#define CP(name, s) cp(name##_b, sizeof name##_b, &name##_n, (s))
#define SL(name)    ((tk_slice){name##_b, name##_n})

static int read_rc(int rc)
{
    return rc == TK_E_CORRUPT ? TK_E_NOTFOUND : rc;
}

static bool session_active(const tk_session_rec *s, int64_t now)
{
    return s->state == TK_SESSION_ACTIVE && s->holds == 0 && (s->expires == 0 || now < s->expires);
}

/* True when every space-separated token of sub appears in super. */
static bool subset(tk_slice sub, tk_slice super)
{
    size_t i = 0;
    while (i < sub.len) {
        size_t j = i;
        while (j < sub.len && sub.p[j] != ' ') {
            j++;
        }
        bool found = false;
        size_t k = 0;
        while (k < super.len && !found) {
            size_t m = k;
            while (m < super.len && super.p[m] != ' ') {
                m++;
            }
            found = m - k == j - i && memcmp(super.p + k, sub.p + i, j - i) == 0;
            k = m + 1;
        }
        if (!found && j > i) {
            return false;
        }
        i = j + 1;
    }
    return true;
}

/* The scope tokens of s whose bit is set in mask (bit i: i-th token;
 * UINT64_MAX keeps every one). */
static tk_slice masked(tk_slice s, uint64_t mask, char *out)
{
    if (mask == UINT64_MAX) {
        if (s.len > 0) {
            memcpy(out, s.p, s.len);
        }
        return (tk_slice){out, s.len};
    }
    size_t n = 0, i = 0;
    unsigned t = 0;
    while (i < s.len) {
        size_t j = i;
        while (j < s.len && s.p[j] != ' ') {
            j++;
        }
        if (t < 64 && (mask >> t & 1u) != 0) {
            if (n > 0) {
                out[n++] = ' ';
            }
            memcpy(out + n, s.p + i, j - i);
            n += j - i;
        }
        t++;
        i = j + 1;
    }
    return (tk_slice){out, n};
}

/* Revoke grant id if active: the family of a replayed code or refresh token. */
static int revoke_grant(tk_txn *txn, tk_slice id, int64_t at, bool *changed)
{
    tk_grant_rec g;
    int rc = read_rc(tk_store_get_grant(txn, id, &g));
    if (rc != 0 || g.state == TK_GRANT_REVOKED) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    g.state = TK_GRANT_REVOKED;
    g.revoked_at = at;
    char sub[TK_SUB_MAX], client[TK_ID_MAX]; /* the put may rewrite g's page */
    tk_ssf_event_rec ev = {.kind = TK_SSF_GRANT_REVOKED,
                           .at = at,
                           .id = id,
                           .sub = tk_store_keep(g.sub, sub, sizeof sub),
                           .client = tk_store_keep(g.client_id, client, sizeof client)};
    rc = tk_store_put_grant(txn, id, &g, TK_PUT_NO_INDEX);
    rc = rc != 0 ? rc : tk_store_ssf_note(txn, &ev);
    *changed = rc == 0;
    return rc;
}

static bool grant_active(tk_txn *txn, tk_slice id, int *err)
{
    tk_grant_rec g;
    int rc = read_rc(tk_store_get_grant(txn, id, &g));
    *err = rc == TK_E_NOTFOUND ? 0 : rc;
    return rc == 0 && g.state == TK_GRANT_ACTIVE;
}

/* The session is active: *expires gets its expiry (0 = none). */
static bool sid_active(tk_txn *txn, tk_slice sid, int64_t at, int64_t *expires, int *err)
{
    tk_session_rec s;
    int rc = read_rc(tk_store_get_session(txn, sid, &s));
    *err = rc == TK_E_NOTFOUND ? 0 : rc;
    if (rc != 0) {
        return false;
    }
    *expires = s.expires;
    return session_active(&s, at);
}

/* The client is approved; *gen gets its generation. */
static bool client_ok(tk_txn *txn, tk_slice id, uint32_t *gen, int *err)
{
    tk_client_rec c;
    int rc = read_rc(tk_store_get_client(txn, id, &c));
    *err = rc == TK_E_NOTFOUND ? 0 : rc;
    if (rc != 0) {
        return false;
    }
    *gen = c.generation;
    return c.status == TK_CLIENT_APPROVED;
}

static int64_t min_exp(int64_t a, int64_t session_expires)
{
    return session_expires != 0 && session_expires < a ? session_expires : a;
}

/* An op that issues tokens names the new access token's hash, which the
 * worker drew at random for this op alone: finding that token means this
 * very op was applied before (a log replayed, a publish delivered twice).
 * It then changes nothing and reports OK, as it did the first time;
 * without this, a second CODE_REDEEM would find its code used and revoke
 * the grant it had just issued under (REPLAYED), and a second REFRESH with
 * a zero reuse window would revoke the family.
 *
 * Looked up only where the op would not issue: applying it spends its code
 * or rotates its refresh token in the same txn, so an unspent code or an
 * unrotated token means it was never applied (and an exchange finds its
 * child's key taken). The usual answer then costs no search of the tokens
 * tree for a key that is not there. */
static bool applied_before(tk_txn *txn, const uint8_t access[TK_HASH_LEN], int *err)
{
    tk_token_rec t;
    int rc = read_rc(tk_store_get_token(txn, access, &t));
    *err = rc == TK_E_NOTFOUND ? 0 : rc;
    return rc == 0;
}

/* The outcome of an op that will not issue (INVALID, or what the caller
 * decides next) unless it was applied before: then OK and true. */
static bool again(tk_txn *txn, const uint8_t access[TK_HASH_LEN], uint8_t *outcome, int *rc)
{
    if (applied_before(txn, access, rc) || *rc != 0) {
        *outcome = *rc == 0 ? TK_OUT_OK : TK_OUT_NONE;
        return true;
    }
    return false;
}

/* ---- PUT_NEW ------------------------------------------------------------------- */

/* A metadata-document client, new or re-fetched: the document's values,
 * the existing record's standing (approval, disables, age, delegation). */
static int put_metadata_client(tk_txn *txn, tk_slice key, tk_client_rec *c, uint8_t *outcome)
{
    if (c->metadata_url.len == 0) {
        return TK_E_INVALID;
    }
    tk_client_rec old;
    int rc = tk_store_get_client(txn, key, &old);
    if (rc == TK_E_NOTFOUND) {
        return tk_store_put_client(txn, key, c, TK_PUT_NEW);
    }
    if (rc != 0) {
        return rc;
    }
    if (!tk_slice_eq(old.metadata_url, c->metadata_url)) {
        *outcome = TK_OUT_INVALID;
        return TK_E_EXISTS;
    }
    bool upgrade = old.status == TK_CLIENT_PENDING && c->status == TK_CLIENT_APPROVED;
    c->status = upgrade ? TK_CLIENT_APPROVED : old.status;
    c->generation = old.generation;
    c->created = old.created;
    c->delegate_to = old.delegate_to; /* slices into the map: encoded before the put */
    memcpy(c->secret_hash, old.secret_hash, TK_HASH_LEN);
    return tk_store_put_client(txn, key, c, 0);
}

static int apply_put_new(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    const tk_op_put_new *x = &op->put_new;
    tk_slice key = tk_op_id_get(&x->key);
    int rc;
    if (x->db == TK_OP_DB_CLIENT) {
        tk_client_rec c;
        if (tk_record_decode_client(x->rec, x->len, &c) != 0) {
            return TK_E_INVALID;
        }
        rc = x->metadata ? put_metadata_client(txn, key, &c, outcome)
                         : tk_store_put_client(txn, key, &c, TK_PUT_NEW);
    } else {
        tk_authreq_rec a;
        if (tk_record_decode_authreq(x->rec, x->len, &a) != 0) {
            return TK_E_INVALID;
        }
        rc = tk_store_put_authreq(txn, key, &a, TK_PUT_NEW);
    }
    if (rc == TK_E_EXISTS) {
        *outcome = TK_OUT_INVALID;
        return 0;
    }
    *changed = rc == 0;
    *outcome = rc == 0 ? TK_OUT_OK : TK_OUT_NONE;
    return rc;
}

/* ---- SIGN_IN ------------------------------------------------------------------- */

static int apply_sign_in(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    const tk_op_sign_in *x = &op->sign_in;
    tk_slice sid = tk_op_id_get(&x->sid);
    tk_session_rec s;
    int rc = read_rc(tk_store_get_session(txn, sid, &s));
    if (rc == TK_E_NOTFOUND) {
        s = (tk_session_rec){.sub = tk_op_sub_get(&x->sub),
                             .issuer = tk_op_iss_get(&x->idp_iss),
                             .idp_sid = tk_op_id_get(&x->idp_sid),
                             .auth_time = x->auth_time,
                             .acr = tk_op_acr_get(&x->acr),
                             .amr = tk_op_amr_get(&x->amr),
                             .state = TK_SESSION_ACTIVE,
                             .created = op->at,
                             .expires = x->session_exp};
        rc = tk_store_put_session(txn, sid, &s, TK_PUT_NEW);
        *changed = *changed || rc == 0;
    }
    if (rc != 0) {
        return rc;
    }
    tk_browser_rec b;
    rc = read_rc(tk_store_get_browser(txn, x->browser, &b));
    if (rc == TK_E_NOTFOUND) {
        b = (tk_browser_rec){.sid = sid, .created = op->at, .exp = x->browser_exp};
        memcpy(b.csrf_key, x->csrf_key, TK_HASH_LEN);
        rc = tk_store_put_browser(txn, x->browser, &b, TK_PUT_NEW);
        *changed = *changed || rc == 0;
    }
    if (rc != 0) {
        return rc;
    }
    tk_slice req = tk_op_id_get(&x->request);
    if (req.len > 0) {
        tk_authreq_rec a;
        rc = read_rc(tk_store_get_authreq(txn, req, &a));
        if (rc == 0 && !a.has_browser && a.used_at == 0 && a.exp > op->at) {
            a.has_browser = true;
            memcpy(a.browser, x->browser, TK_HASH_LEN);
            rc = tk_store_put_authreq(txn, req, &a, 0);
            *changed = *changed || rc == 0;
        }
        rc = rc == TK_E_NOTFOUND ? 0 : rc;
    }
    *outcome = TK_OUT_OK;
    return rc;
}

/* ---- CODE_ISSUE ---------------------------------------------------------------- */

typedef struct pending {
    BUF(client, TK_ID_MAX);
    BUF(redirect, TK_OAUTH_URI_MAX);
    BUF(scope, TK_SCOPE_MAX);
    BUF(resource, TK_AUD_MAX);
    BUF(sid, TK_ID_MAX);
    BUF(sub, TK_SUB_MAX);
    BUF(iss, TK_URL_MAX); /* the session's IdP issuer: part of the consent key */
    BUF(gid, TK_ID_MAX);
    BUF(gscope, TK_SCOPE_MAX);
    uint8_t challenge[TK_HASH_LEN];
    uint8_t redirect_given;
} pending;

/* The request, its browser and session, copied; false: INVALID (or *err). */
static bool load_pending(tk_txn *txn, const tk_op *op, pending *p, int *err)
{
    const tk_op_code_issue *x = &op->code_issue;
    tk_authreq_rec a;
    int rc = read_rc(tk_store_get_authreq(txn, tk_op_id_get(&x->request), &a));
    *err = rc == TK_E_NOTFOUND ? 0 : rc;
    if (rc != 0 || a.used_at != 0 || a.exp <= op->at || !a.has_browser ||
        memcmp(a.browser, x->browser, TK_HASH_LEN) != 0) {
        return false;
    }
    if (!CP(p->client, a.client_id) || !CP(p->redirect, a.redirect_uri) || !CP(p->scope, a.scope) ||
        !CP(p->resource, a.resource)) {
        return false;
    }
    memcpy(p->challenge, a.challenge, TK_HASH_LEN);
    p->redirect_given = a.redirect_given;
    tk_browser_rec b;
    rc = read_rc(tk_store_get_browser(txn, x->browser, &b));
    *err = rc == TK_E_NOTFOUND ? 0 : rc;
    if (rc != 0 || b.exp <= op->at || !CP(p->sid, b.sid)) {
        return false;
    }
    tk_session_rec s;
    rc = read_rc(tk_store_get_session(txn, SL(p->sid), &s));
    *err = rc == TK_E_NOTFOUND ? 0 : rc;
    return rc == 0 && session_active(&s, op->at) && CP(p->sub, s.sub) && CP(p->iss, s.issuer);
}

static int consume(tk_txn *txn, const tk_op *op)
{
    tk_authreq_rec a;
    tk_slice id = tk_op_id_get(&op->code_issue.request);
    int rc = tk_store_get_authreq(txn, id, &a);
    if (rc == 0) {
        a.used_at = op->at;
        rc = tk_store_put_authreq(txn, id, &a, 0);
    }
    return rc;
}

/* Find the active consent grant of (sub, client, resource): *found, with
 * its id and scope copied into p. */
static int find_grant(tk_txn *txn, const uint8_t key[TK_HASH_LEN], pending *p, bool *found)
{
    *found = false;
    tk_slice gid;
    int rc = read_rc(tk_store_get_consent(txn, key, &gid));
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    if (!CP(p->gid, gid)) {
        return 0;
    }
    tk_grant_rec g;
    rc = read_rc(tk_store_get_grant(txn, SL(p->gid), &g));
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    *found = g.state == TK_GRANT_ACTIVE && CP(p->gscope, g.scope);
    return 0;
}

/* Approve: extend the found grant's scope, or create the consent grant. */
static int record_consent(tk_txn *txn, const tk_op *op, const uint8_t key[TK_HASH_LEN], pending *p,
                          bool found)
{
    if (found && subset(SL(p->scope), SL(p->gscope))) {
        return 0;
    }
    if (found) { /* widen: the union of what was and what is consented */
        size_t need = p->gscope_n + 1 + p->scope_n;
        if (need > TK_SCOPE_MAX) {
            return TK_E_INVALID;
        }
        tk_grant_rec g;
        int rc = tk_store_get_grant(txn, SL(p->gid), &g);
        if (rc != 0) {
            return rc;
        }
        char u[TK_SCOPE_MAX];
        size_t n = p->gscope_n;
        memcpy(u, p->gscope_b, n);
        size_t i = 0;
        while (i < p->scope_n) { /* append the tokens not there yet */
            size_t j = i;
            while (j < p->scope_n && p->scope_b[j] != ' ') {
                j++;
            }
            tk_slice t = {p->scope_b + i, j - i};
            if (t.len > 0 && !subset(t, (tk_slice){u, n})) {
                if (n > 0) {
                    u[n++] = ' ';
                }
                memcpy(u + n, t.p, t.len);
                n += t.len;
            }
            i = j + 1;
        }
        g.scope = (tk_slice){u, n};
        return tk_store_put_grant(txn, SL(p->gid), &g, TK_PUT_NO_INDEX);
    }
    tk_slice gid = tk_op_id_get(&op->code_issue.grant);
    if (!CP(p->gid, gid)) {
        return TK_E_INVALID;
    }
    tk_grant_rec g = {.client_id = SL(p->client),
                      .sub = SL(p->sub),
                      .scope = SL(p->scope),
                      .resource = SL(p->resource),
                      .iss = SL(p->iss),
                      .state = TK_GRANT_ACTIVE,
                      .created = op->at};
    int rc = tk_store_put_grant(txn, gid, &g, TK_PUT_NEW);
    return rc != 0 ? rc : tk_store_put_consent(txn, key, gid);
}

static int apply_code_issue(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    const tk_op_code_issue *x = &op->code_issue;
    pending p;
    int rc = 0;
    *outcome = TK_OUT_INVALID;
    if (!load_pending(txn, op, &p, &rc)) {
        return rc;
    }
    if (x->decision == TK_DECIDE_DENY) {
        rc = consume(txn, op);
        *changed = rc == 0;
        *outcome = rc == 0 ? TK_OUT_OK : TK_OUT_NONE;
        return rc;
    }
    uint8_t key[TK_HASH_LEN];
    tk_store_consent_key(SL(p.iss), SL(p.sub), SL(p.client), SL(p.resource), key);
    bool found;
    rc = find_grant(txn, key, &p, &found);
    if (rc != 0) {
        return rc;
    }
    if (x->decision == TK_DECIDE_GRANTED) {
        if (!found || !subset(SL(p.scope), SL(p.gscope))) {
            return 0; /* the grant went (or narrowed) since the worker looked */
        }
    } else {
        rc = record_consent(txn, op, key, &p, found);
        if (rc == TK_E_INVALID) {
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
    }
    tk_code_rec c = {.client_id = SL(p.client),
                     .redirect_uri = SL(p.redirect),
                     .resource = SL(p.resource),
                     .scope = SL(p.scope),
                     .sid = SL(p.sid),
                     .sub = SL(p.sub),
                     .grant_id = SL(p.gid),
                     .exp = x->code_exp,
                     .created = op->at,
                     .redirect_given = p.redirect_given};
    memcpy(c.challenge, p.challenge, TK_HASH_LEN);
    rc = tk_store_put_code(txn, x->code, &c, TK_PUT_NEW);
    if (rc == 0) {
        rc = consume(txn, op);
    }
    *changed = rc == 0;
    *outcome = rc == 0 ? TK_OUT_OK : TK_OUT_NONE;
    return rc;
}

/* ---- Tokens ---------------------------------------------------------------------- */

typedef struct family {
    BUF(client, TK_ID_MAX);
    BUF(sub, TK_SUB_MAX);
    BUF(sid, TK_ID_MAX);
    BUF(gid, TK_ID_MAX);
    BUF(scope, TK_SCOPE_MAX);
    BUF(aud, TK_AUD_MAX);
    uint32_t gen;
    int64_t session_expires;
    const uint8_t *cnf; /* the access token's cnf.x5t#S256, or NULL */
} family;

/* A new token record of f; TK_E_EXISTS when hash is taken (nothing written). */
static int put_tok_new(tk_txn *txn, const family *f, uint8_t kind, const uint8_t hash[TK_HASH_LEN],
                       int64_t at, int64_t exp, const uint8_t *parent, const uint8_t *jkt)
{
    tk_token_rec t = {.kind = kind,
                      .client_id = SL(f->client),
                      .sub = SL(f->sub),
                      .sid = SL(f->sid),
                      .grant_id = SL(f->gid),
                      .scope = SL(f->scope),
                      .aud = SL(f->aud),
                      .iat = at,
                      .exp = exp,
                      .client_gen = f->gen};
    if (parent != NULL) {
        t.has_parent = true;
        memcpy(t.parent, parent, TK_HASH_LEN);
    }
    if (kind == TK_TOKEN_ACCESS && f->cnf != NULL) { /* RFC 8705 §3 */
        t.has_cnf = true;
        memcpy(t.cnf_x5t, f->cnf, TK_HASH_LEN);
    }
    if (jkt != NULL) { /* RFC 9449 */
        t.has_jkt = true;
        memcpy(t.jkt, jkt, TK_HASH_LEN);
    }
    return tk_store_put_token(txn, hash, &t, TK_PUT_NEW);
}

static int put_tok(tk_txn *txn, const family *f, uint8_t kind, const uint8_t hash[TK_HASH_LEN],
                   int64_t at, int64_t exp, const uint8_t *parent, const uint8_t *jkt)
{
    int rc = put_tok_new(txn, f, kind, hash, at, exp, parent, jkt);
    return rc == TK_E_EXISTS ? TK_E_INVALID : rc;
}

/* Grant, session and client of f are live; false: INVALID (or *err). */
static bool family_live(tk_txn *txn, family *f, int64_t at, int *err)
{
    if (!grant_active(txn, SL(f->gid), err) || *err != 0) {
        return false;
    }
    if (!sid_active(txn, SL(f->sid), at, &f->session_expires, err) || *err != 0) {
        return false;
    }
    return client_ok(txn, SL(f->client), &f->gen, err);
}

/* A code written before code ids (schema 2 and older): used_at goes into
 * its record, as it always did. */
static int mark_used_in_record(tk_txn *txn, const uint8_t code[TK_HASH_LEN], int64_t at)
{
    tk_code_rec c;
    int rc = tk_store_get_code(txn, code, &c);
    if (rc != 0) {
        return rc;
    }
    c.used_at = at; /* put_code encodes c (slices into the map) before it writes */
    return tk_store_put_code(txn, code, &c, 0);
}

static int apply_code_redeem(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    const tk_op_code_redeem *x = &op->code_redeem;
    *outcome = TK_OUT_INVALID;
    tk_code_rec c;
    int rc = read_rc(tk_store_get_code(txn, x->code, &c));
    if (rc != 0 && rc != TK_E_NOTFOUND) {
        return rc;
    }
    int err = 0;
    if ((rc != 0 || c.used_at != 0) && again(txn, x->access, outcome, &err)) {
        return err;
    }
    if (rc != 0) {
        return 0;
    }
    family f;
    f.cnf = x->has_cnf ? x->cnf : NULL;
    if (!CP(f.client, c.client_id) || !CP(f.sub, c.sub) || !CP(f.sid, c.sid) ||
        !CP(f.gid, c.grant_id) || !CP(f.scope, c.scope) || !CP(f.aud, c.resource)) {
        return 0;
    }
    if (c.used_at != 0) { /* RFC 6749 §4.1.2: revoke what the code issued */
        *outcome = TK_OUT_REPLAYED;
        return revoke_grant(txn, SL(f.gid), op->at, changed);
    }
    if (c.exp <= op->at) {
        return 0;
    }
    uint64_t id = c.id;
    if (!family_live(txn, &f, op->at, &rc)) {
        return rc;
    }
    rc = id != 0 ? tk_store_spend(txn, id, op->at) : mark_used_in_record(txn, x->code, op->at);
    if (rc == 0) {
        rc = put_tok(txn, &f, TK_TOKEN_ACCESS, x->access, op->at, x->access_exp, NULL,
                     x->has_jkt ? x->jkt : NULL);
    }
    if (rc == 0 && x->has_refresh) {
        rc = put_tok(txn, &f, TK_TOKEN_REFRESH, x->refresh, op->at,
                     min_exp(x->refresh_exp, f.session_expires), NULL,
                     x->has_jkt && x->bind_refresh ? x->jkt : NULL);
    }
    *changed = rc == 0;
    *outcome = rc == 0 ? TK_OUT_OK : TK_OUT_NONE;
    return rc;
}

static int apply_refresh(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    const tk_op_refresh *x = &op->refresh;
    *outcome = TK_OUT_INVALID;
    tk_token_rec t;
    int rc = read_rc(tk_store_get_token(txn, x->old, &t));
    if (rc != 0 && rc != TK_E_NOTFOUND) {
        return rc;
    }
    int err = 0;
    if ((rc != 0 || t.rotated_at != 0) && again(txn, x->access, outcome, &err)) {
        return err;
    }
    if (rc != 0) {
        return 0;
    }
    family f;
    f.cnf = x->has_cnf ? x->cnf : NULL;
    char sc[TK_SCOPE_MAX];
    if (t.kind != TK_TOKEN_REFRESH || t.revoked_at != 0 || t.exp <= op->at || t.grant_id.len == 0 ||
        !CP(f.client, t.client_id) || !CP(f.sub, t.sub) || !CP(f.sid, t.sid) ||
        !CP(f.gid, t.grant_id) || !CP(f.aud, t.aud)) {
        return 0;
    }
    tk_slice ms = masked(t.scope, x->scope_mask, sc);
    if (!CP(f.scope, ms)) {
        return 0;
    }
    int64_t rotated = t.rotated_at;
    uint32_t tok_gen = t.client_gen;
    /* Reuse is allowed while fewer than window whole seconds have passed
     * since the rotation, so never longer than configured; window 0 is
     * strict: any reuse of a rotated-away token is a replay. */
    if (rotated != 0 && op->at - rotated >= (int64_t)x->window) {
        *outcome = TK_OUT_REPLAYED; /* theft: the whole family goes */
        return revoke_grant(txn, SL(f.gid), op->at, changed);
    }
    if (!family_live(txn, &f, op->at, &rc)) {
        return rc;
    }
    if (f.gen != tok_gen) {
        return 0;
    }
    if (rotated == 0 && t.tid != 0) {
        rc = tk_store_spend(txn, t.tid, op->at);
    } else if (rotated == 0) { /* a record older than token ids: the old way */
        t.rotated_at = op->at;
        t.has_successor = true;
        memcpy(t.successor, x->refresh, TK_HASH_LEN);
        rc = tk_store_put_token(txn, x->old, &t, TK_PUT_NO_INDEX);
    }
    if (rc == 0) {
        rc = put_tok(txn, &f, TK_TOKEN_ACCESS, x->access, op->at, x->access_exp, NULL,
                     x->has_jkt ? x->jkt : NULL);
    }
    if (rc == 0) {
        rc = put_tok(txn, &f, TK_TOKEN_REFRESH, x->refresh, op->at,
                     min_exp(x->refresh_exp, f.session_expires), NULL,
                     x->has_jkt && x->bind_refresh ? x->jkt : NULL);
    }
    *changed = rc == 0;
    *outcome = rc == 0 ? TK_OUT_OK : TK_OUT_NONE;
    return rc;
}

/* The exchange's family from the subject token (read into t): false when
 * it may not be exchanged (INVALID, or *err). */
static bool exchange_family(tk_txn *txn, const tk_op *op, const tk_token_rec *t, family *f,
                            char sc[TK_SCOPE_MAX], int *err)
{
    const tk_op_exchange *x = &op->exchange;
    f->cnf = x->has_cnf ? x->cnf : NULL;
    if (t->kind != TK_TOKEN_ACCESS || t->revoked_at != 0 || t->exp <= op->at ||
        !CP(f->client, tk_op_id_get(&x->client)) || !CP(f->sub, t->sub) || !CP(f->sid, t->sid) ||
        !CP(f->gid, t->grant_id) || !CP(f->aud, t->aud) ||
        !CP(f->scope, masked(t->scope, x->scope_mask, sc))) {
        return false;
    }
    return client_ok(txn, SL(f->client), &f->gen, err);
}

static int apply_exchange(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    const tk_op_exchange *x = &op->exchange;
    *outcome = TK_OUT_INVALID;
    tk_token_rec t;
    int rc = read_rc(tk_store_get_token(txn, x->parent, &t));
    if (rc != 0 && rc != TK_E_NOTFOUND) {
        return rc;
    }
    family f;
    char sc[TK_SCOPE_MAX];
    int err = 0;
    if (rc != 0 || !exchange_family(txn, op, &t, &f, sc, &err)) {
        if (err == 0) {
            (void)again(txn, x->child, outcome, &err);
        }
        return err;
    }
    int64_t exp = x->exp < t.exp ? x->exp : t.exp;
    rc = put_tok_new(txn, &f, TK_TOKEN_ACCESS, x->child, op->at, exp, x->parent,
                     x->has_jkt ? x->jkt : NULL);
    if (rc == TK_E_EXISTS) { /* this very op, applied before: its child is there */
        *outcome = TK_OUT_OK;
        return 0;
    }
    if (rc == TK_E_INVALID) {
        return 0;
    }
    *changed = rc == 0;
    *outcome = rc == 0 ? TK_OUT_OK : TK_OUT_NONE;
    return rc;
}

int tk_store_apply_oauth(tk_txn *txn, const tk_op *op, bool *changed, uint8_t *outcome)
{
    switch (op->type) {
    case TK_OP_PUT_NEW:
        return apply_put_new(txn, op, changed, outcome);
    case TK_OP_SIGN_IN:
        return apply_sign_in(txn, op, changed, outcome);
    case TK_OP_CODE_ISSUE:
        return apply_code_issue(txn, op, changed, outcome);
    case TK_OP_CODE_REDEEM:
        return apply_code_redeem(txn, op, changed, outcome);
    case TK_OP_REFRESH:
        return apply_refresh(txn, op, changed, outcome);
    default:
        TK_ASSERT(op->type == TK_OP_EXCHANGE);
        return apply_exchange(txn, op, changed, outcome);
    }
}
