/*
 * Fuzz the strict record and op decoders. Each input is decoded as every
 * record kind and as an op; whatever decodes must re-encode (the decoder
 * accepts nothing the encoder would refuse) and decode again to the same
 * fields (round trip stable), and the second encoding must equal the first.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "tokend/record.h"

static bool same(tk_slice a, tk_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static uint8_t enc1[TK_OP_WIRE_MAX], enc2[TK_OP_WIRE_MAX]; /* an op embeds a record */

static void token(const uint8_t *d, size_t n)
{
    tk_token_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_token(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_token(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_token(enc1, l1, &b) == 0);
    EXPECT(a.kind == b.kind && a.iat == b.iat && a.nbf == b.nbf && a.exp == b.exp);
    EXPECT(a.revoked_at == b.revoked_at && a.has_parent == b.has_parent);
    EXPECT(a.client_gen == b.client_gen && a.rotated_at == b.rotated_at);
    EXPECT(a.has_successor == b.has_successor);
    EXPECT(!a.has_successor || memcmp(a.successor, b.successor, TK_HASH_LEN) == 0);
    EXPECT(!a.has_parent || memcmp(a.parent, b.parent, TK_HASH_LEN) == 0);
    EXPECT(same(a.client_id, b.client_id) && same(a.sub, b.sub) && same(a.sid, b.sid));
    EXPECT(same(a.grant_id, b.grant_id) && same(a.scope, b.scope) && same(a.aud, b.aud));
    EXPECT(tk_record_encode_token(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

static void session(const uint8_t *d, size_t n)
{
    tk_session_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_session(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_session(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_session(enc1, l1, &b) == 0);
    EXPECT(same(a.sub, b.sub) && same(a.issuer, b.issuer) && same(a.reason, b.reason));
    EXPECT(a.state == b.state && a.created == b.created && a.expires == b.expires);
    EXPECT(a.ended_at == b.ended_at && same(a.idp_sid, b.idp_sid));
    /* The holds invariant; a suspended record of before holds (no key 9)
     * decodes as an admin hold and is written back with it (2 bytes more). */
    EXPECT(a.holds == b.holds && (a.state != TK_SESSION_ACTIVE || a.holds == 0));
    EXPECT(a.state != TK_SESSION_SUSPENDED || a.holds != 0);
    EXPECT(tk_record_encode_session(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n + 2);
}

static void grant(const uint8_t *d, size_t n)
{
    tk_grant_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_grant(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_grant(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_grant(enc1, l1, &b) == 0);
    EXPECT(same(a.client_id, b.client_id) && same(a.sub, b.sub) && same(a.sid, b.sid));
    EXPECT(same(a.scope, b.scope) && a.state == b.state && a.created == b.created);
    EXPECT(a.revoked_at == b.revoked_at && same(a.resource, b.resource));
    EXPECT(tk_record_encode_grant(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

static void client(const uint8_t *d, size_t n)
{
    tk_client_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_client(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_client(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_client(enc1, l1, &b) == 0);
    EXPECT(memcmp(a.secret_hash, b.secret_hash, TK_HASH_LEN) == 0);
    EXPECT(same(a.name, b.name) && same(a.scope, b.scope) && same(a.resource, b.resource));
    EXPECT(a.role == b.role && a.status == b.status && a.created == b.created);
    EXPECT(a.generation == b.generation && same(a.redirect_uris, b.redirect_uris));
    EXPECT(a.auth_method == b.auth_method && a.grant_types == b.grant_types);
    EXPECT(a.flags == b.flags && same(a.software_id, b.software_id));
    EXPECT(same(a.delegate_to, b.delegate_to) && a.has_identity == b.has_identity);
    EXPECT(!a.has_identity || memcmp(a.identity, b.identity, TK_HASH_LEN) == 0);
    EXPECT(tk_record_encode_client(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

static void agent_access(const uint8_t *d, size_t n)
{
    tk_agent_access_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_agent_access(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_agent_access(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_agent_access(enc1, l1, &b) == 0);
    EXPECT(memcmp(&a, &b, sizeof(a)) == 0);
    EXPECT(tk_record_encode_agent_access(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

static void audit(const uint8_t *d, size_t n)
{
    tk_audit_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_audit(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_audit(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_audit(enc1, l1, &b) == 0);
    EXPECT(a.source == b.source && a.state == b.state && a.hold == b.hold);
    EXPECT(same(a.issuer, b.issuer) && same(a.event_id, b.event_id));
    EXPECT(same(a.reason, b.reason) && same(a.sids, b.sids));
    EXPECT(a.at == b.at && a.matched == b.matched && a.changed == b.changed);
    EXPECT(tk_record_encode_audit(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

/* The authorization server's records. */
static void code(const uint8_t *d, size_t n)
{
    tk_code_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_code(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_code(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_code(enc1, l1, &b) == 0);
    EXPECT(same(a.client_id, b.client_id) && same(a.redirect_uri, b.redirect_uri));
    EXPECT(same(a.resource, b.resource) && same(a.scope, b.scope) && same(a.sid, b.sid));
    EXPECT(same(a.sub, b.sub) && same(a.grant_id, b.grant_id));
    EXPECT(memcmp(a.challenge, b.challenge, TK_HASH_LEN) == 0);
    EXPECT(a.exp == b.exp && a.created == b.created && a.used_at == b.used_at);
    EXPECT(tk_record_encode_code(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

static void authreq(const uint8_t *d, size_t n)
{
    tk_authreq_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_authreq(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_authreq(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_authreq(enc1, l1, &b) == 0);
    EXPECT(same(a.client_id, b.client_id) && same(a.redirect_uri, b.redirect_uri));
    EXPECT(same(a.state, b.state) && same(a.scope, b.scope) && same(a.resource, b.resource));
    EXPECT(same(a.login_hint, b.login_hint));
    EXPECT(a.prompt == b.prompt && a.has_browser == b.has_browser);
    EXPECT(memcmp(a.challenge, b.challenge, TK_HASH_LEN) == 0);
    EXPECT(memcmp(a.csrf_key, b.csrf_key, TK_HASH_LEN) == 0);
    EXPECT(!a.has_browser || memcmp(a.browser, b.browser, TK_HASH_LEN) == 0);
    EXPECT(a.exp == b.exp && a.created == b.created && a.used_at == b.used_at);
    EXPECT(tk_record_encode_authreq(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

static void browser(const uint8_t *d, size_t n)
{
    tk_browser_rec a, b;
    size_t l1, l2;
    if (tk_record_decode_browser(d, n, &a) != 0) {
        return;
    }
    EXPECT(tk_record_encode_browser(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_record_decode_browser(enc1, l1, &b) == 0);
    EXPECT(same(a.sid, b.sid) && memcmp(a.csrf_key, b.csrf_key, TK_HASH_LEN) == 0);
    EXPECT(a.created == b.created && a.exp == b.exp);
    EXPECT(tk_record_encode_browser(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
}

/* Every op kind, the authorization server's included. A decoded PUT_NEW
 * owns a copy of its record (op.h): the bytes compare, the pointers differ,
 * and both copies are released (a leak fails the run). */
static void op(const uint8_t *d, size_t n)
{
    tk_op a, b;
    size_t l1, l2;
    int rc = tk_op_decode(d, n, &a);
    EXPECT(rc == 0 || rc == TK_E_CORRUPT);
    if (rc != 0) {
        return;
    }
    EXPECT(tk_op_validate(&a) == 0);
    if (a.type == TK_OP_PUT_NEW) { /* its own copy, not a pointer into the input */
        uintptr_t r = (uintptr_t)a.put_new.rec, in = (uintptr_t)d;
        EXPECT(r != 0 && (r + a.put_new.len <= in || r >= in + n));
    }
    EXPECT(tk_op_encode(&a, enc1, sizeof(enc1), &l1) == 0);
    EXPECT(tk_op_decode(enc1, l1, &b) == 0);
    if (a.type == TK_OP_PUT_NEW) {
        EXPECT(a.put_new.len == b.put_new.len);
        EXPECT(memcmp(a.put_new.rec, b.put_new.rec, a.put_new.len) == 0);
        EXPECT(a.put_new.rec != b.put_new.rec);
        tk_op_release(&b);
        b.put_new.rec = a.put_new.rec; /* so the structs compare whole */
    }
    /* Decoding zeroes the whole op, then fills only the member its type
     * names (a tagged union), so the structs compare whole. */
    EXPECT(memcmp(&a, &b, sizeof(a)) == 0);
    EXPECT(tk_op_encode(&b, enc2, sizeof(enc2), &l2) == 0);
    EXPECT(l1 == l2 && memcmp(enc1, enc2, l1) == 0 && l1 <= n);
    tk_op_release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    token(data, size);
    session(data, size);
    grant(data, size);
    client(data, size);
    agent_access(data, size);
    audit(data, size);
    code(data, size);
    authreq(data, size);
    browser(data, size);
    op(data, size);
    return 0;
}
