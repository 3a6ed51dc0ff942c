/*
 * Record codec tests: round trips at the limits, compact typical records, and
 * the negative space of the strict decoder (every truncation, a wrong type at
 * every type tag, oversized strings, bad enums, duplicates, trailing bytes,
 * wrong versions), built with a tiny hand-rolled msgpack writer.
 */
#include <stdlib.h>

#include "check.h"
#include "tokend/record.h"

#include "../../src/store/codec_int.h"

#include <msgpack.h>

/* ---- A minimal msgpack writer for hand-made inputs ---------------------------- */

typedef struct mw {
    uint8_t b[8192];
    size_t n;
} mw;

static void mw_byte(mw *w, uint8_t c)
{
    w->b[w->n++] = c;
}

static void mw_be(mw *w, uint64_t v, size_t bytes)
{
    for (size_t i = bytes; i > 0; i--) {
        mw_byte(w, (uint8_t)(v >> ((i - 1) * 8)));
    }
}

static void mw_map(mw *w, unsigned n)
{
    mw_byte(w, (uint8_t)(0x80 | n));
}

static void mw_uint(mw *w, uint64_t v)
{
    if (v < 128) {
        mw_byte(w, (uint8_t)v);
    } else if (v < 65536) {
        mw_byte(w, 0xcd);
        mw_be(w, v, 2);
    } else {
        mw_byte(w, 0xcf);
        mw_be(w, v, 8);
    }
}

static void mw_str(mw *w, const char *s, size_t len)
{
    if (len < 32) {
        mw_byte(w, (uint8_t)(0xa0 | len));
    } else if (len < 256) {
        mw_byte(w, 0xd9);
        mw_byte(w, (uint8_t)len);
    } else {
        mw_byte(w, 0xda);
        mw_be(w, len, 2);
    }
    memcpy(w->b + w->n, s, len);
    w->n += len;
}

static void mw_kv(mw *w, unsigned key, uint64_t v)
{
    mw_uint(w, key);
    mw_uint(w, v);
}

static void mw_ks(mw *w, unsigned key, const char *s)
{
    mw_uint(w, key);
    mw_str(w, s, strlen(s));
}

/* ---- Fixtures --------------------------------------------------------------------- */

static char big[8][TK_RECORD_MAX];

/* A string of n bytes, distinct per slot. */
static tk_slice fill(int slot, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        big[slot][i] = (char)('a' + (slot * 7 + (int)i) % 26);
    }
    return (tk_slice){big[slot], n};
}

static bool slice_eq(tk_slice a, tk_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static tk_token_rec typical_token(void)
{
    tk_token_rec t = {
        .kind = TK_TOKEN_ACCESS,
        .client_id = TK_SLICE_LIT("tkc_q2W9xZr4TtY7uP0aBcDeFg"),
        .sub = TK_SLICE_LIT("alice@example.com"),
        .sid = TK_SLICE_LIT("tks_Hk3LmN8pQr5sTu1vWx2yZa"),
        .grant_id = TK_SLICE_LIT("tkg_Ab4Cd6Ef8Gh0Ij2Kl4Mn6O"),
        .scope = TK_SLICE_LIT("files:read files:write"),
        .aud = TK_SLICE_LIT("https://files.example.com"),
        .iat = 1795000000,
        .nbf = 1795000000,
        .exp = 1795003600,
        .client_gen = 3,
    };
    return t;
}

static tk_token_rec limit_token(void)
{
    tk_token_rec t = {
        .kind = TK_TOKEN_REFRESH,
        .client_id = fill(0, TK_ID_MAX),
        .sub = fill(1, TK_SUB_MAX),
        .sid = fill(2, TK_ID_MAX),
        .grant_id = fill(3, TK_ID_MAX),
        .scope = fill(4, TK_SCOPE_MAX),
        .aud = fill(5, TK_AUD_MAX),
        .has_parent = true,
        .iat = TK_TIME_MAX,
        .nbf = TK_TIME_MAX,
        .exp = TK_TIME_MAX,
        .revoked_at = TK_TIME_MAX,
        .client_gen = UINT32_MAX,
        .has_jkt = true,
    };
    memset(t.parent, 0xff, TK_HASH_LEN);
    memset(t.jkt, 0xee, TK_HASH_LEN);
    return t;
}

static void check_token_eq(const tk_token_rec *a, const tk_token_rec *b)
{
    CHECK_EQ_INT(a->kind, b->kind);
    CHECK(slice_eq(a->client_id, b->client_id));
    CHECK(slice_eq(a->sub, b->sub));
    CHECK(slice_eq(a->sid, b->sid));
    CHECK(slice_eq(a->grant_id, b->grant_id));
    CHECK(slice_eq(a->scope, b->scope));
    CHECK(slice_eq(a->aud, b->aud));
    CHECK_EQ_INT(a->has_parent, b->has_parent);
    CHECK(!a->has_parent || memcmp(a->parent, b->parent, TK_HASH_LEN) == 0);
    CHECK_EQ_INT(a->iat, b->iat);
    CHECK_EQ_INT(a->nbf, b->nbf);
    CHECK_EQ_INT(a->exp, b->exp);
    CHECK_EQ_INT(a->revoked_at, b->revoked_at);
    CHECK_EQ_INT(a->client_gen, b->client_gen);
    CHECK_EQ_INT(a->has_jkt, b->has_jkt);
    CHECK(!a->has_jkt || memcmp(a->jkt, b->jkt, TK_HASH_LEN) == 0);
}

/* ---- Round trips -------------------------------------------------------------------- */

static void test_token_roundtrip(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_token_rec in = typical_token(), out;
    CHECK_EQ_INT(tk_record_encode_token(&in, buf, sizeof(buf), &len), 0);
    printf("typical token record: %zu bytes\n", len);
    CHECK(len <= 200);
    CHECK_EQ_INT(tk_record_decode_token(buf, len, &out), 0);
    check_token_eq(&in, &out);

    in = limit_token();
    CHECK_EQ_INT(tk_record_encode_token(&in, buf, sizeof(buf), &len), 0);
    printf("token record at every limit: %zu bytes\n", len);
    CHECK_EQ_INT(tk_record_decode_token(buf, len, &out), 0);
    check_token_eq(&in, &out);
    /* Decoded slices point into the encoded bytes. */
    CHECK((const uint8_t *)out.scope.p > buf && (const uint8_t *)out.scope.p < buf + len);

    /* Minimal: only the required fields. */
    tk_token_rec m = {.kind = TK_TOKEN_ACCESS, .client_id = TK_SLICE_LIT("c"), .exp = 5};
    CHECK_EQ_INT(tk_record_encode_token(&m, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(len, 12); /* map, 0:1, 1:1, 2:"c", 9:0, 11:5 */
    CHECK_EQ_INT(tk_record_decode_token(buf, len, &out), 0);
    check_token_eq(&m, &out);
    CHECK(!out.has_jkt); /* a record without key 17 (every one before DPoP): unbound */

    /* DPoP: key 17 is a 32-byte bin, optional; it round-trips alone. */
    m.has_jkt = true;
    for (size_t i = 0; i < TK_HASH_LEN; i++) {
        m.jkt[i] = (uint8_t)i;
    }
    CHECK_EQ_INT(tk_record_encode_token(&m, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(len, 12 + 1 + 2 + TK_HASH_LEN);
    CHECK_EQ_INT(tk_record_decode_token(buf, len, &out), 0);
    check_token_eq(&m, &out);
}

static void test_session_roundtrip(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_session_rec in = {
        .sub = fill(0, TK_SUB_MAX),
        .issuer = fill(1, TK_URL_MAX),
        .reason = fill(2, TK_REASON_MAX),
        .state = TK_SESSION_TERMINATED,
        .created = 0,
        .expires = TK_TIME_MAX,
        .ended_at = 1,
    };
    tk_session_rec out;
    CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_session(buf, len, &out), 0);
    CHECK(slice_eq(in.sub, out.sub) && slice_eq(in.issuer, out.issuer));
    CHECK(slice_eq(in.reason, out.reason));
    CHECK_EQ_INT(out.state, TK_SESSION_TERMINATED);
    CHECK_EQ_INT(out.created, 0);
    CHECK_EQ_INT(out.expires, TK_TIME_MAX);
    CHECK_EQ_INT(out.ended_at, 1);

    tk_session_rec s = {.sub = TK_SLICE_LIT("bob"), .state = TK_SESSION_ACTIVE, .created = 7};
    CHECK_EQ_INT(tk_record_encode_session(&s, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_session(buf, len, &out), 0);
    CHECK_EQ_INT(out.issuer.len + out.reason.len, 0);
    CHECK_EQ_INT(out.expires + out.ended_at, 0);
    CHECK_EQ_INT(out.created, 7);
}

static void test_grant_roundtrip(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_grant_rec in = {
        .client_id = fill(0, TK_ID_MAX),
        .sub = fill(1, TK_SUB_MAX),
        .sid = fill(2, TK_ID_MAX),
        .scope = fill(3, TK_SCOPE_MAX),
        .resource = fill(4, TK_AUD_MAX),
        .iss = fill(5, TK_URL_MAX),
        .state = TK_GRANT_REVOKED,
        .created = TK_TIME_MAX,
        .revoked_at = TK_TIME_MAX,
    };
    tk_grant_rec out;
    CHECK_EQ_INT(tk_record_encode_grant(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_grant(buf, len, &out), 0);
    CHECK(slice_eq(in.client_id, out.client_id) && slice_eq(in.sub, out.sub));
    CHECK(slice_eq(in.sid, out.sid) && slice_eq(in.scope, out.scope));
    CHECK(slice_eq(in.resource, out.resource) && slice_eq(in.iss, out.iss));
    CHECK_EQ_INT(out.state, TK_GRANT_REVOKED);
    CHECK_EQ_INT(out.created, TK_TIME_MAX);
    CHECK_EQ_INT(out.revoked_at, TK_TIME_MAX);
}

static void test_client_roundtrip(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_client_rec in = {
        .name = fill(0, TK_NAME_MAX),
        .scope = fill(1, TK_SCOPE_MAX),
        .resource = fill(2, TK_AUD_MAX),
        .role = TK_ROLE_ADMIN,
        .status = TK_CLIENT_DISABLED,
        .created = TK_TIME_MAX,
    };
    for (int i = 0; i < TK_HASH_LEN; i++) {
        in.secret_hash[i] = (uint8_t)(i * 9);
    }
    tk_client_rec out;
    CHECK_EQ_INT(tk_record_encode_client(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_client(buf, len, &out), 0);
    CHECK(memcmp(in.secret_hash, out.secret_hash, TK_HASH_LEN) == 0);
    CHECK(slice_eq(in.name, out.name) && slice_eq(in.scope, out.scope));
    CHECK(slice_eq(in.resource, out.resource));
    CHECK_EQ_INT(out.role, TK_ROLE_ADMIN);
    CHECK_EQ_INT(out.status, TK_CLIENT_DISABLED);
    CHECK_EQ_INT(out.created, TK_TIME_MAX);
    CHECK(out.tls_subject.len == 0 && !out.has_tls_thumbprint); /* absent keys */

    /* RFC 8705 keys 16 and 17: optional, kept exactly */
    in.tls_subject = fill(3, TK_CERT_DN_MAX);
    in.has_tls_thumbprint = true;
    memset(in.tls_thumbprint, 0x5a, TK_HASH_LEN);
    CHECK_EQ_INT(tk_record_encode_client(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_client(buf, len, &out), 0);
    CHECK(slice_eq(in.tls_subject, out.tls_subject));
    CHECK(out.has_tls_thumbprint &&
          memcmp(out.tls_thumbprint, in.tls_thumbprint, TK_HASH_LEN) == 0);
    in.tls_subject = fill(3, TK_CERT_DN_MAX + 1);
    CHECK(tk_record_encode_client(&in, buf, sizeof(buf), &len) != 0);
}

static void test_token_cnf(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0, plain_len = 0;
    tk_token_rec in = typical_token(), out;
    CHECK_EQ_INT(tk_record_encode_token(&in, buf, sizeof(buf), &plain_len), 0);
    CHECK_EQ_INT(tk_record_decode_token(buf, plain_len, &out), 0);
    CHECK(!out.has_cnf);
    in.has_cnf = true;
    for (int i = 0; i < TK_HASH_LEN; i++) {
        in.cnf_x5t[i] = (uint8_t)(255 - i);
    }
    CHECK_EQ_INT(tk_record_encode_token(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(len, plain_len + 1 + 2 + TK_HASH_LEN); /* key 16, bin8 header, 32 bytes */
    CHECK_EQ_INT(tk_record_decode_token(buf, len, &out), 0);
    CHECK(out.has_cnf && memcmp(out.cnf_x5t, in.cnf_x5t, TK_HASH_LEN) == 0);
    check_token_eq(&in, &out);
}

/* ---- Encoder validation ------------------------------------------------------------------ */

static void test_encode_rejects(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_token_rec t = typical_token();
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), 0);
    size_t full = len;
    for (size_t cap = 0; cap < full; cap++) {
        CHECK_EQ_INT(tk_record_encode_token(&t, buf, cap, &len), TK_E_TOOBIG);
    }
    t.scope = fill(0, TK_SCOPE_MAX + 1);
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), TK_E_INVALID);
    t = typical_token();
    t.kind = 3;
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), TK_E_INVALID);
    t.kind = 0;
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), TK_E_INVALID);
    t = typical_token();
    t.exp = -1;
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), TK_E_INVALID);
    t.exp = TK_TIME_MAX + 1;
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), TK_E_INVALID);
    t = typical_token();
    t.client_id = TK_SLICE_NULL;
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), TK_E_INVALID);

    tk_session_rec s = {.sub = TK_SLICE_LIT("u"), .state = 4, .created = 1};
    CHECK_EQ_INT(tk_record_encode_session(&s, buf, sizeof(buf), &len), TK_E_INVALID);
    s.state = TK_SESSION_ACTIVE;
    s.reason = fill(1, TK_REASON_MAX + 1);
    CHECK_EQ_INT(tk_record_encode_session(&s, buf, sizeof(buf), &len), TK_E_INVALID);
    tk_grant_rec g = {.client_id = TK_SLICE_LIT("c"), .state = 0};
    CHECK_EQ_INT(tk_record_encode_grant(&g, buf, sizeof(buf), &len), TK_E_INVALID);
    tk_client_rec c = {.role = TK_ROLE_AGENT, .status = 0};
    CHECK_EQ_INT(tk_record_encode_client(&c, buf, sizeof(buf), &len), TK_E_INVALID);
    c.status = TK_CLIENT_PENDING;
    c.role = 4;
    CHECK_EQ_INT(tk_record_encode_client(&c, buf, sizeof(buf), &len), TK_E_INVALID);
    c.role = TK_ROLE_AGENT;
    c.name = fill(2, TK_NAME_MAX + 1);
    CHECK_EQ_INT(tk_record_encode_client(&c, buf, sizeof(buf), &len), TK_E_INVALID);
}

/* ---- Decoder negative space ---------------------------------------------------------------- */

typedef int (*decode_fn)(const uint8_t *buf, size_t len, void *out);

static int dec_token(const uint8_t *b, size_t n, void *o)
{
    return tk_record_decode_token(b, n, o);
}
static int dec_session(const uint8_t *b, size_t n, void *o)
{
    return tk_record_decode_session(b, n, o);
}
static int dec_grant(const uint8_t *b, size_t n, void *o)
{
    return tk_record_decode_grant(b, n, o);
}
static int dec_client(const uint8_t *b, size_t n, void *o)
{
    return tk_record_decode_client(b, n, o);
}
static int dec_op(const uint8_t *b, size_t n, void *o)
{
    return tk_op_decode(b, n, o);
}

/* Every proper prefix fails; each is copied to an exact-size heap block so
 * ASan catches any read past its end. */
static void check_truncations(const uint8_t *buf, size_t len, decode_fn dec)
{
    union {
        tk_token_rec t;
        tk_session_rec s;
        tk_grant_rec g;
        tk_client_rec c;
        tk_op op;
    } out;
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        int rc = dec(copy, n, &out);
        if (rc != TK_E_CORRUPT) {
            fprintf(stderr, "prefix of %zu/%zu bytes decoded\n", n, len);
        }
        CHECK_EQ_INT(rc, TK_E_CORRUPT);
        free(copy);
    }
    uint8_t *copy = malloc(len);
    memcpy(copy, buf, len);
    CHECK_EQ_INT(dec(copy, len, &out), 0);
    free(copy);
}

enum tclass { C_INT, C_STR, C_BIN, C_MAP, C_OTHER };

static enum tclass class_of(uint8_t c)
{
    if (c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3)) {
        return C_INT;
    }
    if ((c & 0xe0) == 0xa0 || (c >= 0xd9 && c <= 0xdb)) {
        return C_STR;
    }
    if (c >= 0xc4 && c <= 0xc6) {
        return C_BIN;
    }
    if ((c & 0xf0) == 0x80 || c == 0xde || c == 0xdf) {
        return C_MAP;
    }
    return C_OTHER;
}

/* Size of the object starting at b (the subset the encoder emits). */
static size_t obj_size(const uint8_t *b)
{
    uint8_t c = b[0];
    if (c <= 0x7f || c >= 0xe0) {
        return 1;
    }
    if (c >= 0xcc && c <= 0xcf) {
        return 1 + ((size_t)1 << (c - 0xcc));
    }
    if (c >= 0xd0 && c <= 0xd3) {
        return 1 + ((size_t)1 << (c - 0xd0));
    }
    if ((c & 0xe0) == 0xa0) {
        return 1 + (c & 0x1fu);
    }
    if (c == 0xd9 || c == 0xc4) {
        return 2 + b[1];
    }
    if (c == 0xda) {
        return 3 + ((size_t)b[1] << 8 | b[2]);
    }
    return 0;
}

/* At each type tag of a valid encoding, every byte of another type class
 * makes the decoder fail. */
static void check_type_flips(const uint8_t *buf, size_t len, decode_fn dec)
{
    static const uint8_t wrong[] = {0x05, 0xcc, 0xd3, 0xe0, 0xa1, 0xd9, 0xc4, 0x81,
                                    0xde, 0xc0, 0xc1, 0xc2, 0xc3, 0xca, 0xcb, 0x91,
                                    0xdc, 0xd4, 0xc7, 0xdb, 0xc5, 0xdf};
    uint8_t copy[TK_RECORD_MAX];
    union {
        tk_token_rec t;
        tk_op op;
        tk_client_rec c;
    } out;
    size_t tags[64], ntags = 0;
    TK_ASSERT(class_of(buf[0]) == C_MAP && buf[0] < 0x90);
    tags[ntags++] = 0;
    for (size_t pos = 1; pos < len && ntags < 64;) {
        tags[ntags++] = pos;
        size_t sz = obj_size(buf + pos);
        TK_ASSERT(sz > 0);
        pos += sz;
    }
    for (size_t t = 0; t < ntags; t++) {
        for (size_t w = 0; w < TK_ARRAY_LEN(wrong); w++) {
            if (class_of(wrong[w]) == class_of(buf[tags[t]])) {
                continue;
            }
            memcpy(copy, buf, len);
            copy[tags[t]] = wrong[w];
            int rc = dec(copy, len, &out);
            if (rc != TK_E_CORRUPT) {
                fprintf(stderr, "tag at %zu -> 0x%02x decoded\n", tags[t], wrong[w]);
            }
            CHECK_EQ_INT(rc, TK_E_CORRUPT);
        }
    }
}

static void test_truncations_and_flips(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_token_rec t = typical_token();
    t.has_parent = true;
    t.revoked_at = 1795001000;
    memset(t.parent, 0xc0, TK_HASH_LEN);
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), 0);
    check_truncations(buf, len, dec_token);
    check_type_flips(buf, len, dec_token);
    t = limit_token();
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof(buf), &len), 0);
    check_truncations(buf, len, dec_token);
    check_type_flips(buf, len, dec_token);

    tk_session_rec s = {.sub = TK_SLICE_LIT("u"),
                        .issuer = TK_SLICE_LIT("https://idp"),
                        .reason = TK_SLICE_LIT("logout"),
                        .state = TK_SESSION_SUSPENDED,
                        .holds = TK_HOLD_BIT(TK_HOLD_ADMIN) | TK_HOLD_BIT(TK_HOLD_DEVICE),
                        .created = 10,
                        .expires = 99999,
                        .ended_at = 70000};
    CHECK_EQ_INT(tk_record_encode_session(&s, buf, sizeof(buf), &len), 0);
    check_truncations(buf, len, dec_session);
    check_type_flips(buf, len, dec_session);

    tk_grant_rec g = {.client_id = TK_SLICE_LIT("tkc_1"),
                      .sub = TK_SLICE_LIT("u"),
                      .sid = TK_SLICE_LIT("tks_1"),
                      .scope = TK_SLICE_LIT("a b"),
                      .state = TK_GRANT_ACTIVE,
                      .created = 1000000};
    CHECK_EQ_INT(tk_record_encode_grant(&g, buf, sizeof(buf), &len), 0);
    check_truncations(buf, len, dec_grant);
    check_type_flips(buf, len, dec_grant);

    tk_client_rec c = {.name = TK_SLICE_LIT("n"),
                       .resource = TK_SLICE_LIT("https://r"),
                       .role = TK_ROLE_RESOURCE_SERVER,
                       .status = TK_CLIENT_APPROVED,
                       .created = 1};
    CHECK_EQ_INT(tk_record_encode_client(&c, buf, sizeof(buf), &len), 0);
    check_truncations(buf, len, dec_client);
    check_type_flips(buf, len, dec_client);
}

/* A valid session: map(4) {0:1, 1:"u", 4:1, 5:5}, then variants. */
static void session_base(mw *w, unsigned extra)
{
    w->n = 0;
    mw_map(w, 4 + extra);
    mw_kv(w, 0, 1);
    mw_ks(w, 1, "u");
    mw_kv(w, 4, 1);
    mw_kv(w, 5, 5);
}

static int dec_s(const mw *w)
{
    tk_session_rec s;
    return tk_record_decode_session(w->b, w->n, &s);
}

static void test_handmade_inputs(void)
{
    mw w;
    tk_session_rec s;
    session_base(&w, 0);
    CHECK_EQ_INT(dec_s(&w), 0);

    /* Wider encodings of the same values are accepted: ints of every width, map16. */
    w.n = 0;
    mw_byte(&w, 0xde);
    mw_be(&w, 4, 2);
    mw_kv(&w, 0, 1);
    mw_byte(&w, 0xd3); /* key 1 as int64 */
    mw_be(&w, 1, 8);
    mw_byte(&w, 0xd9); /* "u" as str8 */
    mw_byte(&w, 1);
    mw_byte(&w, 'u');
    mw_kv(&w, 4, 1);
    mw_uint(&w, 5);
    mw_byte(&w, 0xd2); /* created as int32 */
    mw_be(&w, 123456, 4);
    CHECK_EQ_INT(tk_record_decode_session(w.b, w.n, &s), 0);
    CHECK_EQ_INT(s.created, 123456);

    session_base(&w, 0);
    mw_byte(&w, 0xc0); /* trailing byte */
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    session_base(&w, 1);
    mw_kv(&w, 4, 2); /* duplicate key */
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    session_base(&w, 1);
    mw_kv(&w, 9, 1); /* unknown key */
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    session_base(&w, 1);
    mw_kv(&w, 40, 1); /* key beyond the key space */
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    session_base(&w, 1);
    mw_ks(&w, 2, ""); /* optional string present but empty */
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    session_base(&w, 1);
    mw_kv(&w, 6, 0); /* optional int present but zero */
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    session_base(&w, 1);
    mw_uint(&w, 3); /* reason one byte over its limit */
    mw_str(&w, big[0], TK_REASON_MAX + 1);
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    session_base(&w, 1);
    mw_uint(&w, 3); /* reason exactly at its limit */
    mw_str(&w, big[0], TK_REASON_MAX);
    CHECK_EQ_INT(dec_s(&w), 0);

    for (uint64_t bad = 0; bad < 8; bad += 4) { /* state 0 and 4: out of range */
        w.n = 0;
        mw_map(&w, 4);
        mw_kv(&w, 0, 1);
        mw_ks(&w, 1, "u");
        mw_kv(&w, 4, bad);
        mw_kv(&w, 5, 5);
        CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);
    }

    w.n = 0; /* missing required key 5 */
    mw_map(&w, 3);
    mw_kv(&w, 0, 1);
    mw_ks(&w, 1, "u");
    mw_kv(&w, 4, 1);
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    for (uint64_t v = 0; v < 4; v += 2) { /* version 0 and 2 */
        w.n = 0;
        mw_map(&w, 4);
        mw_kv(&w, 0, v);
        mw_ks(&w, 1, "u");
        mw_kv(&w, 4, 1);
        mw_kv(&w, 5, 5);
        CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);
    }

    w.n = 0; /* version not first */
    mw_map(&w, 4);
    mw_ks(&w, 1, "u");
    mw_kv(&w, 0, 1);
    mw_kv(&w, 4, 1);
    mw_kv(&w, 5, 5);
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    w.n = 0; /* map count larger than the pairs present */
    mw_map(&w, 5);
    mw_kv(&w, 0, 1);
    mw_ks(&w, 1, "u");
    mw_kv(&w, 4, 1);
    mw_kv(&w, 5, 5);
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    w.n = 0; /* negative and oversized times */
    mw_map(&w, 4);
    mw_kv(&w, 0, 1);
    mw_ks(&w, 1, "u");
    mw_kv(&w, 4, 1);
    mw_uint(&w, 5);
    mw_byte(&w, 0xff); /* -1 */
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);
    w.n--;
    mw_uint(&w, (uint64_t)TK_TIME_MAX + 1);
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);
    w.n -= 9;
    mw_byte(&w, 0xcf); /* uint64 above INT64_MAX */
    mw_be(&w, UINT64_MAX, 8);
    CHECK_EQ_INT(dec_s(&w), TK_E_CORRUPT);

    CHECK_EQ_INT(tk_record_decode_session(NULL, 0, &s), TK_E_CORRUPT);
}

/* A minimal token (5 entries: version, kind, client, iat, exp) and one extra entry. */
static void token_plus(mw *w)
{
    w->n = 0;
    mw_map(w, 6);
    mw_kv(w, 0, 1);
    mw_kv(w, 1, TK_TOKEN_ACCESS);
    mw_ks(w, 2, "c");
    mw_kv(w, 9, 1);
    mw_kv(w, 11, 5);
}

/* The decoder finds each key's field by index: every key lands in its own
 * member with its own type and bounds, and every key outside the kind (or
 * repeated) is refused, for the whole key space. */
static void test_key_table(void)
{
    mw w;
    tk_token_rec t;
    for (unsigned k = 0; k < 128; k++) {
        token_plus(&w);
        mw_kv(&w, k, 7);
        int rc = tk_record_decode_token(w.b, w.n, &t);
        bool int_key = k == 10 || k == 12 || k == 13 || k == 14 || k == 18;
        CHECK_EQ_INT(rc,
                     int_key ? 0 : TK_E_CORRUPT); /* 0,1,2,9,11 repeat; strings; hashes; beyond */
    }
    for (unsigned k = 0; k < 128; k++) {
        token_plus(&w);
        mw_ks(&w, k, "x");
        bool str_key = k >= 3 && k <= 7;
        CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), str_key ? 0 : TK_E_CORRUPT);
    }
    token_plus(&w);
    mw_kv(&w, 10, 2);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), 0);
    CHECK(t.nbf == 2 && t.revoked_at == 0 && t.rotated_at == 0 && t.client_gen == 0);
    /* Both sides of the one-byte integer: 127 as a fixint, 128 as uint8, -1 refused. */
    token_plus(&w);
    mw_kv(&w, 10, 127);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), 0);
    CHECK_EQ_INT(t.nbf, 127);
    token_plus(&w);
    mw_uint(&w, 10);
    mw_byte(&w, 0xcc);
    mw_byte(&w, 128);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), 0);
    CHECK_EQ_INT(t.nbf, 128);
    token_plus(&w);
    mw_uint(&w, 10);
    mw_byte(&w, 0xff);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), TK_E_CORRUPT);
    token_plus(&w);
    mw_byte(&w, 0xcc); /* key 10 as uint8 */
    mw_byte(&w, 10);
    mw_uint(&w, 4);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), 0);
    CHECK_EQ_INT(t.nbf, 4);
    token_plus(&w);
    mw_kv(&w, 10, 4);
    w.n--; /* the last value cut off */
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), TK_E_CORRUPT);
    token_plus(&w);
    mw_kv(&w, 12, 3);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), 0);
    CHECK(t.revoked_at == 3 && t.nbf == 0 && t.exp == 5 && t.iat == 1);
    token_plus(&w);
    mw_ks(&w, 6, "s");
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), 0);
    CHECK(slice_eq(t.scope, TK_SLICE_LIT("s")) && t.aud.len == 0 && t.sub.len == 0);
    token_plus(&w);
    mw_kv(&w, 1, TK_TOKEN_ACCESS); /* a required key twice */
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), TK_E_CORRUPT);

    /* A grant: keys 1..9; 10 and up are refused, and so is an int under 9 (iss,
     * a string); 7 (revoked_at) is an int. */
    tk_grant_rec g;
    for (unsigned k = 9; k < 40; k++) {
        w.n = 0;
        mw_map(&w, 5);
        mw_kv(&w, 0, 1);
        mw_ks(&w, 1, "c");
        mw_kv(&w, 5, TK_GRANT_ACTIVE);
        mw_kv(&w, 6, 1);
        mw_kv(&w, k, 7);
        CHECK_EQ_INT(tk_record_decode_grant(w.b, w.n, &g), TK_E_CORRUPT);
    }
    w.n = 0;
    mw_map(&w, 5);
    mw_kv(&w, 0, 1);
    mw_ks(&w, 1, "c");
    mw_kv(&w, 5, TK_GRANT_ACTIVE);
    mw_kv(&w, 6, 1);
    mw_kv(&w, 7, 9);
    CHECK_EQ_INT(tk_record_decode_grant(w.b, w.n, &g), 0);
    CHECK(g.revoked_at == 9 && g.created == 1 && g.state == TK_GRANT_ACTIVE);
}

static void test_handmade_hashes(void)
{
    mw w;
    tk_client_rec c;
    uint8_t h[TK_HASH_LEN + 1] = {0};
    for (size_t n = TK_HASH_LEN - 1; n <= TK_HASH_LEN + 1; n++) {
        w.n = 0;
        mw_map(&w, 5);
        mw_kv(&w, 0, 1);
        mw_uint(&w, 1);
        mw_byte(&w, 0xc4);
        mw_byte(&w, (uint8_t)n);
        memcpy(w.b + w.n, h, n);
        w.n += n;
        mw_kv(&w, 5, TK_ROLE_AGENT);
        mw_kv(&w, 6, TK_CLIENT_PENDING);
        mw_kv(&w, 7, 1);
        CHECK_EQ_INT(tk_record_decode_client(w.b, w.n, &c), n == TK_HASH_LEN ? 0 : TK_E_CORRUPT);
    }
}

/* ---- Ops
 * ------------------------------------------------------------------------------------------ */

static tk_op make_op(uint8_t type)
{
    return tk_op_make(type, 1795000000);
}

static void set_id(tk_op_id *d, const char *s)
{
    TK_ASSERT(tk_op_id_set(d, tk_slice_from_str(s)) == 0);
}

static tk_op session_op(uint8_t state, uint8_t hold, const char *sid)
{
    tk_op op = make_op(TK_OP_SESSION_STATE);
    op.session.state = state;
    op.session.hold = hold;
    set_id(&op.session.sid, sid);
    return op;
}

static tk_op client_op(uint8_t status, const char *id)
{
    tk_op op = make_op(TK_OP_CLIENT_STATUS);
    op.client_status.status = status;
    set_id(&op.client_status.client, id);
    return op;
}

/* Decoding zeroes the bytes the op's kind does not use, so a decoded op
 * compares whole with an op built by tk_op_make and filled. */
static void check_op_roundtrip(const tk_op *in)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_op out;
    CHECK_EQ_INT(tk_op_encode(in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_op_decode(buf, len, &out), 0);
    CHECK(memcmp(&out, in, sizeof out) == 0);
    check_truncations(buf, len, dec_op);
    check_type_flips(buf, len, dec_op);
}

static void test_ops(void)
{
    tk_op op = make_op(TK_OP_REVOKE_TOKEN);
    memset(op.revoke_token.hash, 0xab, TK_HASH_LEN);
    check_op_roundtrip(&op);
    op = make_op(TK_OP_REVOKE_GRANT);
    set_id(&op.revoke_grant.grant, "tkg_x");
    check_op_roundtrip(&op);
    op = session_op(TK_SESSION_TERMINATED, 0, "s");
    TK_ASSERT(tk_op_id_set(&op.session.sid, fill(0, TK_ID_MAX)) == 0);
    TK_ASSERT(tk_op_reason_set(&op.session.reason, fill(1, TK_REASON_MAX)) == 0);
    op.at = TK_TIME_MAX;
    check_op_roundtrip(&op);
    for (uint8_t h = TK_HOLD_ADMIN; h <= TK_HOLD_LAST; h++) {
        op = session_op(TK_SESSION_SUSPENDED, h, "tks_1");
        check_op_roundtrip(&op);
        op.session.state = TK_SESSION_ACTIVE;
        check_op_roundtrip(&op);
    }
    op = client_op(TK_CLIENT_DISABLED, "tkc_x");
    check_op_roundtrip(&op);
    op = make_op(TK_OP_CLIENT_SECRET);
    set_id(&op.client_secret.client, "tkc_x");
    memset(op.client_secret.secret_hash, 0x5c, TK_HASH_LEN);
    check_op_roundtrip(&op);

    /* Validation. */
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    tk_op bad[] = {
        make_op(0),
        make_op(TK_OP_TYPE_LAST + 1),
        make_op(TK_OP_IDP_EVENT), /* no iss/source/until/event id */
        make_op(TK_OP_REVOKE_GRANT),
        session_op(0, 0, "s"),
        session_op(4, 0, "s"),
        session_op(TK_SESSION_SUSPENDED, 0, "s"), /* a hold needs an owner */
        session_op(TK_SESSION_ACTIVE, 0, "s"),    /* so does lifting one */
        session_op(TK_SESSION_SUSPENDED, TK_HOLD_LAST + 1, "s"),
        session_op(TK_SESSION_TERMINATED, TK_HOLD_ADMIN, "s"), /* termination has no owner */
        client_op(TK_CLIENT_PENDING, "c"),
        client_op(4, "c"),
        make_op(TK_OP_CLIENT_SECRET), /* no client */
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(tk_op_validate(&bad[i]), TK_E_INVALID);
        CHECK_EQ_INT(tk_op_encode(&bad[i], buf, sizeof(buf), &len), TK_E_INVALID);
    }
    op = make_op(TK_OP_REVOKE_GRANT);
    set_id(&op.revoke_grant.grant, "g");
    op.at = 0;
    CHECK_EQ_INT(tk_op_validate(&op), TK_E_INVALID);
    op.at = 1;
    op.revoke_grant.grant.len = TK_ID_MAX + 1; /* past the member's capacity */
    CHECK_EQ_INT(tk_op_validate(&op), TK_E_INVALID);
    op = session_op(TK_SESSION_TERMINATED, 0, "s");
    op.session.reason.len = TK_REASON_MAX + 1;
    CHECK_EQ_INT(tk_op_validate(&op), TK_E_INVALID);
    tk_op_reason r;
    CHECK_EQ_INT(tk_op_reason_set(&r, fill(1, TK_REASON_MAX + 1)), TK_E_INVALID);

    /* Decoder: a hash on a grant op, or a token op without one. */
    mw w;
    tk_op out;
    w.n = 0;
    mw_map(&w, 4);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, TK_OP_REVOKE_GRANT);
    mw_ks(&w, 4, "g");
    mw_kv(&w, 6, 5);
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), 0);
    CHECK_SLICE(tk_op_id_get(&out.revoke_grant.grant), "g");
    mw_uint(&w, 3);
    mw_byte(&w, 0xc4);
    mw_byte(&w, TK_HASH_LEN);
    memset(w.b + w.n, 1, TK_HASH_LEN);
    w.n += TK_HASH_LEN;
    w.b[0] = 0x85;
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), TK_E_CORRUPT);
    w.n = 0;
    mw_map(&w, 3);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, TK_OP_REVOKE_TOKEN);
    mw_kv(&w, 6, 5);
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), TK_E_CORRUPT);

    /* A key of another kind is refused, even when its value is valid: a
     * hold on a client op, a resource on a session op, a secret hash on a
     * revoke-token op. */
    w.n = 0;
    mw_map(&w, 5);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, TK_OP_CLIENT_STATUS);
    mw_kv(&w, 2, TK_CLIENT_DISABLED);
    mw_ks(&w, 4, "c");
    mw_kv(&w, 6, 5);
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), 0);
    mw_kv(&w, 14, TK_HOLD_ADMIN);
    w.b[0] = 0x86;
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), TK_E_CORRUPT);
    w.n = 0;
    mw_map(&w, 6);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, TK_OP_SESSION_STATE);
    mw_kv(&w, 2, TK_SESSION_SUSPENDED);
    mw_ks(&w, 4, "s");
    mw_kv(&w, 6, 5);
    mw_kv(&w, 14, TK_HOLD_DEVICE);
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), 0);
    CHECK_EQ_INT(out.session.hold, TK_HOLD_DEVICE);
    mw_ks(&w, 13, "https://r");
    w.b[0] = 0x87;
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), TK_E_CORRUPT);
    w.n = 0;
    mw_map(&w, 4);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, TK_OP_REVOKE_TOKEN);
    mw_kv(&w, 6, 5);
    mw_uint(&w, 15);
    mw_byte(&w, 0xc4);
    mw_byte(&w, TK_HASH_LEN);
    memset(w.b + w.n, 1, TK_HASH_LEN);
    w.n += TK_HASH_LEN;
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), TK_E_CORRUPT);
    /* A session suspend without its hold (the form before holds) is refused. */
    w.n = 0;
    mw_map(&w, 5);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, TK_OP_SESSION_STATE);
    mw_kv(&w, 2, TK_SESSION_SUSPENDED);
    mw_ks(&w, 4, "s");
    mw_kv(&w, 6, 5);
    CHECK_EQ_INT(tk_op_decode(w.b, w.n, &out), TK_E_CORRUPT);
}

/* Sessions gained idp_sid (key 8) within version 1: a record written before
 * (no key 8) still decodes, one with it round-trips, an empty one is refused. */
static void test_session_idp_sid(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_session_rec out;
    /* Version 1 as written before idp_sid existed: {0:1, 1:"bob", 4:1, 5:7}. */
    static const uint8_t old[] = {0x84, 0x00, 0x01, 0x01, 0xa3, 'b',
                                  'o',  'b',  0x04, 0x01, 0x05, 0x07};
    CHECK_EQ_INT(tk_record_decode_session(old, sizeof old, &out), 0);
    CHECK_SLICE(out.sub, "bob");
    CHECK_EQ_INT(out.idp_sid.len, 0);
    tk_session_rec in = {.sub = TK_SLICE_LIT("bob"),
                         .issuer = TK_SLICE_LIT("https://idp.example"),
                         .idp_sid = fill(3, TK_ID_MAX),
                         .state = TK_SESSION_ACTIVE,
                         .created = 7};
    CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_session(buf, len, &out), 0);
    CHECK(slice_eq(out.idp_sid, in.idp_sid) && slice_eq(out.issuer, in.issuer));
    check_truncations(buf, len, dec_session);
    in.idp_sid = fill(3, TK_ID_MAX + 1);
    CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), TK_E_INVALID);
    /* {0:1, 1:"bob", 4:1, 5:7, 8:""}: an optional string present but empty. */
    static const uint8_t empty[] = {0x85, 0x00, 0x01, 0x01, 0xa3, 'b',  'o',
                                    'b',  0x04, 0x01, 0x05, 0x07, 0x08, 0xa0};
    CHECK_EQ_INT(tk_record_decode_session(empty, sizeof empty, &out), TK_E_CORRUPT);
}

/* auth_time, acr, amr (keys 10..12): old records decode with none of them;
 * they round-trip at their limits; acr and amr hold printable tokens only
 * (amr single-space separated), refused on encode and as corrupt on decode. */
static void test_session_sign_in_claims(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_session_rec out;
    static const uint8_t old[] = {0x84, 0x00, 0x01, 0x01, 0xa3, 'b',
                                  'o',  'b',  0x04, 0x01, 0x05, 0x07};
    CHECK_EQ_INT(tk_record_decode_session(old, sizeof old, &out), 0);
    CHECK(out.auth_time == 0 && out.acr.len == 0 && out.amr.len == 0);
    char amr[TK_AMR_MAX];
    for (size_t i = 0; i < sizeof amr; i++) {
        amr[i] = i % 4 == 3 ? ' ' : (char)('a' + i % 26);
    }
    tk_session_rec in = {.sub = TK_SLICE_LIT("bob"),
                         .issuer = TK_SLICE_LIT("https://idp.example"),
                         .state = TK_SESSION_ACTIVE,
                         .created = 7,
                         .auth_time = TK_TIME_MAX,
                         .acr = fill(4, TK_ACR_MAX),
                         .amr = {amr, sizeof amr - 1}}; /* not ending in a space */
    CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_session(buf, len, &out), 0);
    CHECK(out.auth_time == TK_TIME_MAX && slice_eq(out.acr, in.acr) && slice_eq(out.amr, in.amr));
    check_truncations(buf, len, dec_session);
    in.acr = fill(4, TK_ACR_MAX + 1);
    CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), TK_E_INVALID);
    in.acr = TK_SLICE_LIT("urn:okta:loa:2fa:any");
    static const char *const bad_amr[] = {" pwd",  "pwd ",  "pwd  mfa", "pw\"d",
                                          "pw\\d", "p\twd", "p\x7fwd",  "\xc3\xa9"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_amr); i++) {
        in.amr = tk_slice_from_str(bad_amr[i]);
        CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), TK_E_INVALID);
    }
    in.amr = TK_SLICE_LIT("pwd mfa");
    static const char *const bad_acr[] = {"a b", "a\"", "\\", "\x01"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad_acr); i++) {
        in.acr = tk_slice_from_str(bad_acr[i]);
        CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), TK_E_INVALID);
    }
    in.auth_time = -1;
    in.acr = TK_SLICE_LIT("1");
    CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof(buf), &len), TK_E_INVALID);
    /* {0:1, 1:"bob", 4:1, 5:7, 11:"a b"}: an acr with a space, made by hand. */
    static const uint8_t spaced[] = {0x85, 0x00, 0x01, 0x01, 0xa3, 'b', 'o', 'b', 0x04,
                                     0x01, 0x05, 0x07, 0x0b, 0xa3, 'a', ' ', 'b'};
    CHECK_EQ_INT(tk_record_decode_session(spaced, sizeof spaced, &out), TK_E_CORRUPT);
    /* The same with "a-b": fine; and 10: 0 (optional time present as zero) is not. */
    static const uint8_t fine[] = {0x85, 0x00, 0x01, 0x01, 0xa3, 'b', 'o', 'b', 0x04,
                                   0x01, 0x05, 0x07, 0x0b, 0xa3, 'a', '-', 'b'};
    CHECK_EQ_INT(tk_record_decode_session(fine, sizeof fine, &out), 0);
    CHECK_SLICE(out.acr, "a-b");
    static const uint8_t zero[] = {0x85, 0x00, 0x01, 0x01, 0xa3, 'b',  'o',
                                   'b',  0x04, 0x01, 0x05, 0x07, 0x0a, 0x00};
    CHECK_EQ_INT(tk_record_decode_session(zero, sizeof zero, &out), TK_E_CORRUPT);
}

static void test_audit(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_audit_rec in = {.source = TK_SOURCE_SSF,
                       .state = TK_SESSION_SUSPENDED,
                       .issuer = fill(0, TK_URL_MAX),
                       .event_id = fill(1, TK_EVENT_ID_MAX),
                       .reason = fill(2, TK_REASON_MAX),
                       .sids = fill(3, TK_AUDIT_SIDS_BYTES),
                       .at = TK_TIME_MAX,
                       .matched = UINT32_MAX,
                       .changed = 1};
    tk_audit_rec out;
    CHECK_EQ_INT(tk_record_encode_audit(&in, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_audit(buf, len, &out), 0);
    CHECK_EQ_INT(out.source, TK_SOURCE_SSF);
    CHECK_EQ_INT(out.state, TK_SESSION_SUSPENDED);
    CHECK(slice_eq(out.issuer, in.issuer) && slice_eq(out.event_id, in.event_id));
    CHECK(slice_eq(out.reason, in.reason) && slice_eq(out.sids, in.sids));
    CHECK_EQ_INT(out.at, TK_TIME_MAX);
    CHECK_EQ_INT(out.matched, UINT32_MAX);
    CHECK_EQ_INT(out.changed, 1);
    tk_audit_rec min = {.source = TK_SOURCE_ADMIN, .state = TK_SESSION_ACTIVE, .at = 1};
    CHECK_EQ_INT(tk_record_encode_audit(&min, buf, sizeof(buf), &len), 0);
    CHECK_EQ_INT(tk_record_decode_audit(buf, len, &out), 0);
    CHECK_EQ_INT(out.matched + out.changed + (int64_t)out.sids.len, 0);
    min.source = 5;
    CHECK_EQ_INT(tk_record_encode_audit(&min, buf, sizeof(buf), &len), TK_E_INVALID);
    CHECK_EQ_STR(tk_event_source_name(TK_SOURCE_BACKCHANNEL), "backchannel_logout");
    CHECK_EQ_STR(tk_event_source_name(9), "unknown");
}

static tk_op idp_event_op(uint8_t state, uint8_t hold)
{
    tk_op op = make_op(TK_OP_IDP_EVENT);
    tk_op_idp_event *e = &op.idp_event;
    memset(e->match, 0x11, TK_HASH_LEN);
    e->state = state;
    e->hold = hold;
    e->source = TK_SOURCE_BACKCHANNEL;
    e->until = op.at + 60;
    set_id(&e->event_id, "jti-1");
    TK_ASSERT(tk_op_iss_set(&e->iss, fill(4, TK_IDP_ISS_MAX)) == 0);
    return op;
}

static void test_idp_op(void)
{
    tk_op op = idp_event_op(TK_SESSION_TERMINATED, 0);
    check_op_roundtrip(&op);
    op = idp_event_op(TK_SESSION_ACTIVE, TK_HOLD_DEVICE);
    op.idp_event.source = TK_SOURCE_SSF;
    op.idp_event.has_filter = true;
    memset(op.idp_event.filter, 0x22, TK_HASH_LEN);
    TK_ASSERT(tk_op_reason_set(&op.idp_event.reason, TK_SLICE_LIT("caep:device-compliant")) == 0);
    check_op_roundtrip(&op);
    tk_op bad = op;
    bad.idp_event.until = op.at - 1; /* the replay record must outlive the op */
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = op;
    bad.idp_event.source = TK_SOURCE_ADMIN;
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = op;
    bad.idp_event.iss.len = 0;
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = op;
    bad.idp_event.hold = 0; /* a resume must say whose hold it lifts */
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = idp_event_op(TK_SESSION_TERMINATED, TK_HOLD_DEVICE);
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = op;
    bad.idp_event.event_id.len = 0;
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
}

static void test_names(void)
{
    uint8_t v = 0;
    CHECK_EQ_STR(tk_role_name(TK_ROLE_RESOURCE_SERVER), "resource_server");
    CHECK_EQ_STR(tk_role_name(0), "unknown");
    CHECK_EQ_STR(tk_role_name(9), "unknown");
    CHECK_EQ_INT(tk_role_parse("admin", &v), 0);
    CHECK_EQ_INT(v, TK_ROLE_ADMIN);
    CHECK_EQ_INT(tk_role_parse("Admin", &v), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_role_parse("", &v), TK_E_BADINPUT);
    CHECK_EQ_STR(tk_client_status_name(TK_CLIENT_PENDING), "pending");
    CHECK_EQ_INT(tk_client_status_parse("disabled", &v), 0);
    CHECK_EQ_INT(v, TK_CLIENT_DISABLED);
    CHECK_EQ_INT(tk_client_status_parse("unknown", &v), TK_E_BADINPUT);
    CHECK_EQ_STR(tk_session_state_name(TK_SESSION_SUSPENDED), "suspended");
    CHECK_EQ_STR(tk_session_state_name(TK_SESSION_TERMINATED), "terminated");
    CHECK_EQ_STR(tk_token_kind_name(TK_TOKEN_ACCESS), "access_token");
    CHECK_EQ_STR(tk_token_kind_name(TK_TOKEN_REFRESH), "refresh_token");
}

/* ---- Agent access: the record and the op -------------------------------------------------- */

static int dec_access(const uint8_t *b, size_t n, void *o)
{
    return tk_record_decode_agent_access(b, n, o);
}

static void test_agent_access(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_agent_access_rec in = {.allowed = 0, .denied = INT64_MAX, .first_seen = 1, .last_seen = 2},
                        out;
    CHECK_EQ_INT(tk_record_encode_agent_access(&in, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(tk_record_decode_agent_access(buf, len, &out), 0);
    CHECK(memcmp(&in, &out, sizeof in) == 0);
    check_truncations(buf, len, dec_access);
    in.allowed = -1;
    CHECK_EQ_INT(tk_record_encode_agent_access(&in, buf, sizeof buf, &len), TK_E_INVALID);

    tk_op op = make_op(TK_OP_AGENT_ACCESS);
    set_id(&op.agent_access.client, "tkc_agent");
    TK_ASSERT(tk_op_resource_set(&op.agent_access.resource, fill(2, TK_ACCESS_RESOURCE_MAX)) == 0);
    op.agent_access.allowed = UINT32_MAX;
    op.agent_access.denied = 0;
    check_op_roundtrip(&op);
    op.agent_access.allowed = 0;
    op.agent_access.denied = 7;
    check_op_roundtrip(&op);

    tk_op bad = op;
    bad.agent_access.allowed = bad.agent_access.denied = 0; /* nothing to add */
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = op;
    bad.agent_access.resource.len = 0; /* no resource */
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = op;
    bad.agent_access.resource.len = TK_ACCESS_RESOURCE_MAX + 1;
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
    bad = op;
    bad.agent_access.client.len = 0;
    CHECK_EQ_INT(tk_op_validate(&bad), TK_E_INVALID);
}

/* ---- Client generations and session holds (optional keys of version 1) ---------------- */

static void test_generations(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    /* A token written before generations: {0:1, 1:1, 2:"c", 9:0, 11:5}. */
    static const uint8_t old_tok[] = {0x85, 0x00, 0x01, 0x01, 0x01, 0x02,
                                      0xa1, 'c',  0x09, 0x00, 0x0b, 0x05};
    tk_token_rec t;
    CHECK_EQ_INT(tk_record_decode_token(old_tok, sizeof old_tok, &t), 0);
    CHECK_EQ_INT(t.client_gen, 0);
    /* Generation 0 is not written: the encoding is the old one, byte for byte. */
    CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof buf, &len), 0);
    CHECK(len == sizeof old_tok && memcmp(buf, old_tok, len) == 0);
    uint32_t gens[] = {1, 127, 128, 65536, UINT32_MAX};
    for (size_t i = 0; i < TK_ARRAY_LEN(gens); i++) {
        t.client_gen = gens[i];
        tk_token_rec back;
        CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof buf, &len), 0);
        CHECK_EQ_INT(tk_record_decode_token(buf, len, &back), 0);
        CHECK_EQ_INT(back.client_gen, gens[i]);
        check_truncations(buf, len, dec_token);
    }
    /* Key 13 present but 0, negative, or past 32 bits: refused. */
    mw w = {.n = 0};
    memcpy(w.b, old_tok, sizeof old_tok);
    w.n = sizeof old_tok;
    w.b[0] = 0x86;
    size_t base = w.n;
    mw_kv(&w, 13, 0);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), TK_E_CORRUPT);
    w.n = base;
    mw_kv(&w, 13, (uint64_t)UINT32_MAX + 1);
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), TK_E_CORRUPT);
    w.n = base;
    mw_uint(&w, 13);
    mw_byte(&w, 0xff); /* -1 */
    CHECK_EQ_INT(tk_record_decode_token(w.b, w.n, &t), TK_E_CORRUPT);

    /* Clients: absent = 0, and the generation round-trips. */
    tk_client_rec c = {.role = TK_ROLE_AGENT, .status = TK_CLIENT_APPROVED, .created = 1};
    tk_client_rec back;
    CHECK_EQ_INT(tk_record_encode_client(&c, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(tk_record_decode_client(buf, len, &back), 0);
    CHECK_EQ_INT(back.generation, 0);
    size_t old_len = len;
    c.generation = UINT32_MAX;
    CHECK_EQ_INT(tk_record_encode_client(&c, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(len, old_len + 1 + 5); /* key 8, uint32 */
    CHECK_EQ_INT(tk_record_decode_client(buf, len, &back), 0);
    CHECK_EQ_INT(back.generation, UINT32_MAX);
    check_truncations(buf, len, dec_client);
    check_type_flips(buf, len, dec_client);
}

static void test_holds(void)
{
    uint8_t buf[TK_RECORD_MAX];
    size_t len = 0;
    tk_session_rec s;
    /* A suspended session written before holds ({0:1, 1:"bob", 4:2, 5:7})
     * decodes as one admin hold, so stores migrate on read. */
    static const uint8_t old_susp[] = {0x84, 0x00, 0x01, 0x01, 0xa3, 'b',
                                       'o',  'b',  0x04, 0x02, 0x05, 0x07};
    CHECK_EQ_INT(tk_record_decode_session(old_susp, sizeof old_susp, &s), 0);
    CHECK_EQ_INT(s.state, TK_SESSION_SUSPENDED);
    CHECK_EQ_INT(s.holds, TK_HOLD_BIT(TK_HOLD_ADMIN));
    /* ...and is written back with the hold explicit. */
    CHECK_EQ_INT(tk_record_encode_session(&s, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(len, sizeof old_susp + 2);
    tk_session_rec back;
    CHECK_EQ_INT(tk_record_decode_session(buf, len, &back), 0);
    CHECK_EQ_INT(back.holds, TK_HOLD_BIT(TK_HOLD_ADMIN));
    /* Active and terminated records of before decode with no hold. */
    static const uint8_t old_act[] = {0x84, 0x00, 0x01, 0x01, 0xa3, 'b',
                                      'o',  'b',  0x04, 0x01, 0x05, 0x07};
    CHECK_EQ_INT(tk_record_decode_session(old_act, sizeof old_act, &s), 0);
    CHECK_EQ_INT(s.holds, 0);
    static const uint8_t old_term[] = {0x84, 0x00, 0x01, 0x01, 0xa3, 'b',
                                       'o',  'b',  0x04, 0x03, 0x05, 0x07};
    CHECK_EQ_INT(tk_record_decode_session(old_term, sizeof old_term, &s), 0);
    CHECK_EQ_INT(s.holds, 0);

    /* Every set of holds round-trips on a suspended session. */
    for (unsigned h = 1; h <= TK_HOLDS_ALL; h++) {
        tk_session_rec in = {.sub = TK_SLICE_LIT("u"),
                             .state = TK_SESSION_SUSPENDED,
                             .holds = (uint8_t)h,
                             .created = 1,
                             .ended_at = 2};
        CHECK_EQ_INT(tk_record_encode_session(&in, buf, sizeof buf, &len), 0);
        CHECK_EQ_INT(tk_record_decode_session(buf, len, &back), 0);
        CHECK_EQ_INT(back.holds, h);
    }
    /* Hand-made: an active session with a hold, an unknown hold bit, and a
     * present-but-empty set are refused; a terminated one keeps its holds. */
    mw w = {.n = 0};
    memcpy(w.b, old_act, sizeof old_act);
    w.n = sizeof old_act;
    w.b[0] = 0x85;
    size_t base = w.n;
    mw_kv(&w, 9, TK_HOLD_BIT(TK_HOLD_DEVICE));
    CHECK_EQ_INT(tk_record_decode_session(w.b, w.n, &s), TK_E_CORRUPT);
    memcpy(w.b, old_susp, sizeof old_susp);
    w.b[0] = 0x85;
    w.n = base;
    mw_kv(&w, 9, TK_HOLDS_ALL + 1u);
    CHECK_EQ_INT(tk_record_decode_session(w.b, w.n, &s), TK_E_CORRUPT);
    w.n = base;
    mw_kv(&w, 9, 0);
    CHECK_EQ_INT(tk_record_decode_session(w.b, w.n, &s), TK_E_CORRUPT);
    w.n = base;
    mw_kv(&w, 9, TK_HOLD_BIT(TK_HOLD_CREDENTIAL));
    CHECK_EQ_INT(tk_record_decode_session(w.b, w.n, &s), 0);
    CHECK_EQ_INT(s.holds, TK_HOLD_BIT(TK_HOLD_CREDENTIAL));
    memcpy(w.b, old_term, sizeof old_term);
    w.b[0] = 0x85;
    CHECK_EQ_INT(tk_record_decode_session(w.b, w.n, &s), 0);
    CHECK_EQ_INT(s.state, TK_SESSION_TERMINATED);
    CHECK_EQ_INT(s.holds, TK_HOLD_BIT(TK_HOLD_CREDENTIAL));

    /* The encoder keeps the invariant too. */
    tk_session_rec bad = {.sub = TK_SLICE_LIT("u"), .state = TK_SESSION_ACTIVE, .holds = 1};
    CHECK_EQ_INT(tk_record_encode_session(&bad, buf, sizeof buf, &len), TK_E_INVALID);
    bad.state = TK_SESSION_SUSPENDED;
    bad.holds = 0;
    CHECK_EQ_INT(tk_record_encode_session(&bad, buf, sizeof buf, &len), TK_E_INVALID);
    bad.holds = TK_HOLDS_ALL + 1;
    CHECK_EQ_INT(tk_record_encode_session(&bad, buf, sizeof buf, &len), TK_E_INVALID);

    /* Audit records name the hold (optional key 10). */
    tk_audit_rec a = {
        .source = TK_SOURCE_SSF, .state = TK_SESSION_ACTIVE, .at = 5, .hold = TK_HOLD_DEVICE};
    tk_audit_rec ab;
    CHECK_EQ_INT(tk_record_encode_audit(&a, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(tk_record_decode_audit(buf, len, &ab), 0);
    CHECK_EQ_INT(ab.hold, TK_HOLD_DEVICE);
    a.hold = 0;
    CHECK_EQ_INT(tk_record_encode_audit(&a, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(tk_record_decode_audit(buf, len, &ab), 0);
    CHECK_EQ_INT(ab.hold, 0);
    a.hold = TK_HOLD_LAST + 1;
    CHECK_EQ_INT(tk_record_encode_audit(&a, buf, sizeof buf, &len), TK_E_INVALID);

    uint8_t v = 0;
    CHECK_EQ_STR(tk_hold_name(TK_HOLD_ADMIN), "admin");
    CHECK_EQ_STR(tk_hold_name(TK_HOLD_DEVICE), "device");
    CHECK_EQ_STR(tk_hold_name(TK_HOLD_CREDENTIAL), "credential");
    CHECK_EQ_STR(tk_hold_name(0), "unknown");
    CHECK_EQ_STR(tk_hold_name(TK_HOLD_LAST + 1), "unknown");
    CHECK_EQ_INT(tk_hold_parse("device", &v), 0);
    CHECK_EQ_INT(v, TK_HOLD_DEVICE);
    CHECK_EQ_INT(tk_hold_parse("Device", &v), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_hold_parse("", &v), TK_E_BADINPUT);
}

/* An authorization request's login_hint (key 13, optional): round trip,
 * absent when empty, bounded by TK_LOGIN_HINT_MAX. */
static void test_authreq_login_hint(void)
{
    tk_authreq_rec a = {.client_id = TK_SLICE_LIT("tkc_a"),
                        .redirect_uri = TK_SLICE_LIT("http://127.0.0.1/cb"),
                        .resource = TK_SLICE_LIT("https://mcp.example"),
                        .login_hint = TK_SLICE_LIT("bob@partner.example"),
                        .exp = 100,
                        .created = 1};
    uint8_t buf[TK_RECORD_MAX], buf2[TK_RECORD_MAX];
    size_t len = 0, len2 = 0;
    CHECK_EQ_INT(tk_record_encode_authreq(&a, buf, sizeof buf, &len), 0);
    tk_authreq_rec b;
    CHECK_EQ_INT(tk_record_decode_authreq(buf, len, &b), 0);
    CHECK(tk_slice_eq(b.login_hint, a.login_hint));
    a.login_hint = TK_SLICE_NULL;
    CHECK_EQ_INT(tk_record_encode_authreq(&a, buf2, sizeof buf2, &len2), 0);
    CHECK(len2 + 2 + 19 == len); /* key, str header, the hint: nothing else */
    CHECK_EQ_INT(tk_record_decode_authreq(buf2, len2, &b), 0);
    CHECK_EQ_INT(b.login_hint.len, 0);
    char hint[TK_LOGIN_HINT_MAX + 1];
    memset(hint, 'h', sizeof hint);
    a.login_hint = (tk_slice){hint, TK_LOGIN_HINT_MAX};
    CHECK_EQ_INT(tk_record_encode_authreq(&a, buf, sizeof buf, &len), 0);
    a.login_hint = (tk_slice){hint, TK_LOGIN_HINT_MAX + 1};
    CHECK_EQ_INT(tk_record_encode_authreq(&a, buf, sizeof buf, &len), TK_E_INVALID);
}

/* An authorization request's pre-login cookie hash (key 15, optional):
 * round trip, absent when not set. */
static void test_authreq_prelogin(void)
{
    tk_authreq_rec a = {.client_id = TK_SLICE_LIT("tkc_a"),
                        .redirect_uri = TK_SLICE_LIT("http://127.0.0.1/cb"),
                        .resource = TK_SLICE_LIT("https://mcp.example"),
                        .has_prelogin = true,
                        .exp = 100,
                        .created = 1};
    memset(a.prelogin, 0xa5, TK_HASH_LEN);
    uint8_t buf[TK_RECORD_MAX], buf2[TK_RECORD_MAX];
    size_t len = 0, len2 = 0;
    CHECK_EQ_INT(tk_record_encode_authreq(&a, buf, sizeof buf, &len), 0);
    tk_authreq_rec b;
    CHECK_EQ_INT(tk_record_decode_authreq(buf, len, &b), 0);
    CHECK(b.has_prelogin);
    CHECK(memcmp(b.prelogin, a.prelogin, TK_HASH_LEN) == 0);
    a.has_prelogin = false;
    CHECK_EQ_INT(tk_record_encode_authreq(&a, buf2, sizeof buf2, &len2), 0);
    CHECK(len2 + 1 + 2 + TK_HASH_LEN == len); /* key, bin header, the hash: nothing else */
    CHECK_EQ_INT(tk_record_decode_authreq(buf2, len2, &b), 0);
    CHECK(!b.has_prelogin);
}

/* ---- Integer widths: the decoder's inline uint32 path and the general one ---------------- */

/* A token {0:1, 1:1, 2:"c", 9:0, 11:<tag, bytes>}: exp written with the
 * given msgpack tag and big-endian width. */
static int decode_exp(uint8_t tag, uint64_t v, size_t bytes, int64_t *exp)
{
    mw w = {.n = 0};
    mw_map(&w, 5);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, 1);
    mw_ks(&w, 2, "c");
    mw_kv(&w, 9, 0);
    mw_uint(&w, 11);
    mw_byte(&w, tag);
    mw_be(&w, v, bytes);
    tk_token_rec t;
    int rc = tk_record_decode_token(w.b, w.n, &t);
    *exp = rc == 0 ? t.exp : -1;
    return rc;
}

static void test_int_widths(void)
{
    /* Every width the encoder picks round-trips, times included. */
    int64_t vals[] = {1,     127,        128,        255,        256,         65535,
                      65536, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, TK_TIME_MAX};
    uint8_t buf[TK_RECORD_MAX];
    size_t len;
    for (size_t i = 0; i < TK_ARRAY_LEN(vals); i++) {
        tk_token_rec t = {.kind = TK_TOKEN_ACCESS,
                          .client_id = TK_SLICE_LIT("c"),
                          .iat = vals[i],
                          .exp = vals[i],
                          .nbf = vals[i]};
        tk_token_rec back;
        CHECK_EQ_INT(tk_record_encode_token(&t, buf, sizeof buf, &len), 0);
        CHECK_EQ_INT(tk_record_decode_token(buf, len, &back), 0);
        CHECK_EQ_INT(back.iat, vals[i]);
        CHECK_EQ_INT(back.exp, vals[i]);
        CHECK_EQ_INT(back.nbf, vals[i]);
        check_truncations(buf, len, dec_token);
    }
    /* Any width reads the same value: uint32 (inline), uint8/16/64, int8..64. */
    static const struct {
        uint8_t tag;
        uint64_t raw;
        unsigned width;
    } widths[] = {{0xce, 5, 4},           {0xce, 0xfedcba98, 4},  {0xcc, 200, 1},
                  {0xcd, 0x1234, 2},      {0xcf, 0x123456789, 8}, {0xd2, 0x01020304, 4},
                  {0xd3, 0x0102030405, 8}};
    int64_t exp;
    for (size_t i = 0; i < TK_ARRAY_LEN(widths); i++) {
        exp = -1;
        CHECK_EQ_INT(decode_exp(widths[i].tag, widths[i].raw, widths[i].width, &exp), 0);
        CHECK_EQ_INT(exp, (int64_t)widths[i].raw);
    }
    /* Out of the field's range in any width: refused. */
    CHECK_EQ_INT(decode_exp(0xd2, 0xffffffff, 4, &exp), TK_E_CORRUPT); /* -1 */
    CHECK_EQ_INT(decode_exp(0xcf, TK_TIME_MAX + 1, 8, &exp), TK_E_CORRUPT);
    CHECK_EQ_INT(decode_exp(0xcf, UINT64_MAX, 8, &exp), TK_E_CORRUPT);
    /* A uint32 cut short at the end of the record: refused, never read past. */
    mw w = {.n = 0};
    mw_map(&w, 5);
    mw_kv(&w, 0, 1);
    mw_kv(&w, 1, 1);
    mw_ks(&w, 2, "c");
    mw_kv(&w, 9, 0);
    mw_uint(&w, 11);
    mw_byte(&w, 0xce);
    mw_be(&w, 0x01020304, 4);
    for (size_t cut = 1; cut <= 4; cut++) {
        uint8_t *copy = malloc(w.n - cut);
        memcpy(copy, w.b, w.n - cut);
        tk_token_rec t;
        CHECK_EQ_INT(tk_record_decode_token(copy, w.n - cut, &t), TK_E_CORRUPT);
        free(copy);
    }
}

/* ---- The writer against msgpack-c's packer ------------------------------------------------ */

typedef struct every {
    tk_slice s, b;
    int64_t i;
    uint64_t u;
    uint8_t h[TK_HASH_LEN];
} every;

static const field every_fields[] = {
    {.key = 1, .type = F_STR, .required = false, .max = UINT16_MAX, .off = offsetof(every, s)},
    {.key = 2,
     .type = F_INT,
     .required = true,
     .size = 8,
     .lo = INT64_MIN,
     .hi = INT64_MAX,
     .off = offsetof(every, i)},
    {.key = 3, .type = F_BIN, .required = false, .max = UINT16_MAX, .off = offsetof(every, b)},
    {.key = 4, .type = F_U64, .required = false, .size = 8, .off = offsetof(every, u)},
    {.key = 63, .type = F_HASH, .required = true, .off = offsetof(every, h), .flag = NO_FLAG},
};

/* What msgpack-c's packer writes for e (the encoder before our own writer). */
static void packer_bytes(const every *e, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    size_t n = 3 + (e->s.len > 0) + (e->b.len > 0) + (e->u != 0);
    msgpack_pack_map(&pk, n);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, TK_RECORD_VERSION);
    if (e->s.len > 0) {
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_str_with_body(&pk, e->s.p, e->s.len);
    }
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_int64(&pk, e->i);
    if (e->b.len > 0) {
        msgpack_pack_uint8(&pk, 3);
        msgpack_pack_bin_with_body(&pk, e->b.p, e->b.len);
    }
    if (e->u != 0) {
        msgpack_pack_uint8(&pk, 4);
        msgpack_pack_uint64(&pk, e->u);
    }
    msgpack_pack_uint8(&pk, 63);
    msgpack_pack_bin_with_body(&pk, e->h, TK_HASH_LEN);
}

/* Every width of every kind of value, and every length class of str and
 * bin, encodes to exactly the packer's bytes (so stores and op logs written
 * before are written the same way now); a buffer one byte short is refused. */
static void test_writer_is_packer(void)
{
    static const int64_t ints[] = {
        0,         1,  127, 128, 255,  256,  65535,  65536,  0xffffffffll, 0x100000000ll,
        INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN,    (int64_t)INT32_MIN - 1,
        INT64_MIN};
    static const uint64_t u64s[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffffull, 0x100000000ull, UINT64_MAX};
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535};
    static char bytes[65535];
    memset(bytes, 'x', sizeof bytes);
    static uint8_t out[2 * 65535 + 256];
    size_t cases = 0;
    for (size_t a = 0; a < TK_ARRAY_LEN(ints); a++) {
        for (size_t k = 0; k < TK_ARRAY_LEN(lens); k++) {
            every e = {.s = {bytes, lens[k]},
                       .b = {bytes, lens[(k + a) % TK_ARRAY_LEN(lens)]},
                       .i = ints[a],
                       .u = u64s[(a + k) % TK_ARRAY_LEN(u64s)]};
            memset(e.h, (int)(a * 7 + k), sizeof e.h);
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            packer_bytes(&e, &sb);
            size_t len = 0;
            CHECK_EQ_INT(tk_codec_encode(every_fields, TK_ARRAY_LEN(every_fields), &e, out,
                                         sizeof out, &len),
                         0);
            CHECK_EQ_INT(len, sb.size);
            CHECK(len == sb.size && memcmp(out, sb.data, len) == 0);
            CHECK_EQ_INT(tk_codec_encode(every_fields, TK_ARRAY_LEN(every_fields), &e, out,
                                         sb.size - 1, &len),
                         TK_E_TOOBIG);
            msgpack_sbuffer_destroy(&sb);
            cases++;
        }
    }
    CHECK_EQ_INT(cases, TK_ARRAY_LEN(ints) * TK_ARRAY_LEN(lens));

    /* 16 entries and more (the version and 15 or 16 fields): a map16. */
    int64_t v[16];
    field many[16];
    for (unsigned i = 0; i < 16; i++) {
        v[i] = (int64_t)i * 1000;
        many[i] = (field){.key = (uint8_t)(i + 1),
                          .type = F_INT,
                          .required = i > 0,
                          .size = 8,
                          .lo = 0,
                          .hi = INT64_MAX,
                          .off = i * sizeof v[0]};
    }
    for (size_t nf = 15; nf <= 16; nf++) {
        for (int64_t first = 0; first <= 1; first++) { /* field 1 absent (0) or present */
            v[0] = first;
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, nf + (size_t)first);
            msgpack_pack_uint8(&pk, 0);
            msgpack_pack_uint8(&pk, TK_RECORD_VERSION);
            for (unsigned i = first ? 0 : 1; i < nf; i++) {
                msgpack_pack_uint8(&pk, (uint8_t)(i + 1));
                msgpack_pack_int64(&pk, v[i]);
            }
            size_t len = 0;
            CHECK_EQ_INT(tk_codec_encode(many, nf, v, out, sizeof out, &len), 0);
            CHECK(len == sb.size && memcmp(out, sb.data, len) == 0);
            CHECK_EQ_INT(tk_codec_encode(many, nf, v, out, sb.size - 1, &len), TK_E_TOOBIG);
            msgpack_sbuffer_destroy(&sb);
        }
    }
    /* A bad field is refused before the buffer's size matters. */
    v[3] = -1;
    size_t len = 0;
    CHECK_EQ_INT(tk_codec_encode(many, 16, v, out, 1, &len), TK_E_INVALID);
}

int main(void)
{
    RUN(test_writer_is_packer);
    RUN(test_token_roundtrip);
    RUN(test_session_roundtrip);
    RUN(test_grant_roundtrip);
    RUN(test_client_roundtrip);
    RUN(test_token_cnf);
    RUN(test_encode_rejects);
    RUN(test_truncations_and_flips);
    RUN(test_handmade_inputs);
    RUN(test_handmade_hashes);
    RUN(test_key_table);
    RUN(test_authreq_login_hint);
    RUN(test_authreq_prelogin);
    RUN(test_ops);
    RUN(test_agent_access);
    RUN(test_names);
    RUN(test_session_idp_sid);
    RUN(test_session_sign_in_claims);
    RUN(test_audit);
    RUN(test_idp_op);
    RUN(test_generations);
    RUN(test_holds);
    RUN(test_int_widths);
    return check_report();
}
