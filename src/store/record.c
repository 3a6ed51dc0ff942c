/*
 * Record codec: msgpack maps with small integer keys, key 0 the version.
 *
 * Each record kind is described once, by a table of fields (key, type,
 * whether required, size or range limits, where it lives in the struct); one
 * generic encoder and one generic strict decoder walk that table. Encoding
 * goes through msgpack-c's packer writing into the caller's buffer; decoding
 * is our own reader, which accepts only what the encoder emits: a fixmap or
 * map16, integer keys in ascending-free order with no duplicates, ints of any
 * width (range-checked), str up to str16, bin8 of exactly 32 bytes.
 *
 * Records stay compact because the hot path touches them among millions:
 * optional strings that are empty and optional ints that are zero are not
 * written at all, so the decoder rejects an optional field that is present
 * but empty or zero (there is exactly one encoding of each record).
 * Versions other than TK_RECORD_VERSION are rejected until a newer one exists.
 */
#include <msgpack.h>
#include <stddef.h>
#include <string.h>

#include "tokend/record.h"

/* ---- Field tables -------------------------------------------------------- */

enum ftype { F_STR = 1, F_INT = 2, F_HASH = 3 };

#define NO_FLAG SIZE_MAX

typedef struct field {
    uint8_t key;    /* 1..31 (0 is the version) */
    uint8_t type;   /* enum ftype */
    bool required;  /* always written; strings must be non-empty */
    uint16_t max;   /* F_STR: longest length */
    uint8_t size;   /* F_INT: sizeof the struct member (1, 4 or 8; 4 is unsigned) */
    int64_t lo, hi; /* F_INT: accepted range (optional ints: 0 = absent) */
    size_t off;     /* member offset */
    size_t flag;    /* F_HASH optional: offset of the bool saying it is set */
} field;

#define KEY_MAX 31

#define STR(k, req, m, T, mem)                                                                     \
    {                                                                                              \
        .key = (k), .type = F_STR, .required = (req), .max = (m), .off = offsetof(T, mem)          \
    }
#define TIME(k, req, T, mem)                                                                       \
    {                                                                                              \
        .key = (k), .type = F_INT, .required = (req), .size = 8, .lo = (req) ? 0 : 1,              \
        .hi = TK_TIME_MAX, .off = offsetof(T, mem)                                                 \
    }
#define ENUM(k, req, l, h, T, mem)                                                                 \
    {                                                                                              \
        .key = (k), .type = F_INT, .required = (req), .size = 1, .lo = (l), .hi = (h),             \
        .off = offsetof(T, mem)                                                                    \
    }
/* A counter that starts absent (0): optional, 1..UINT32_MAX, a uint32_t member. */
#define GEN(k, T, mem)                                                                             \
    {                                                                                              \
        .key = (k), .type = F_INT, .required = false, .size = 4, .lo = 1, .hi = UINT32_MAX,        \
        .off = offsetof(T, mem)                                                                    \
    }
#define HASH(k, req, T, mem, fl)                                                                   \
    {                                                                                              \
        .key = (k), .type = F_HASH, .required = (req), .off = offsetof(T, mem), .flag = (fl)       \
    }

static const field token_fields[] = {
    ENUM(1, true, TK_TOKEN_ACCESS, TK_TOKEN_REFRESH, tk_token_rec, kind),
    STR(2, true, TK_ID_MAX, tk_token_rec, client_id),
    STR(3, false, TK_SUB_MAX, tk_token_rec, sub),
    STR(4, false, TK_ID_MAX, tk_token_rec, sid),
    STR(5, false, TK_ID_MAX, tk_token_rec, grant_id),
    STR(6, false, TK_SCOPE_MAX, tk_token_rec, scope),
    STR(7, false, TK_AUD_MAX, tk_token_rec, aud),
    HASH(8, false, tk_token_rec, parent, offsetof(tk_token_rec, has_parent)),
    TIME(9, true, tk_token_rec, iat),
    TIME(10, false, tk_token_rec, nbf),
    TIME(11, true, tk_token_rec, exp),
    TIME(12, false, tk_token_rec, revoked_at),
    GEN(13, tk_token_rec, client_gen),
    TIME(14, false, tk_token_rec, rotated_at),
    HASH(15, false, tk_token_rec, successor, offsetof(tk_token_rec, has_successor)),
    HASH(16, false, tk_token_rec, cnf_x5t, offsetof(tk_token_rec, has_cnf)),
    HASH(17, false, tk_token_rec, jkt, offsetof(tk_token_rec, has_jkt)),
};

static const field session_fields[] = {
    STR(1, true, TK_SUB_MAX, tk_session_rec, sub),
    STR(2, false, TK_URL_MAX, tk_session_rec, issuer),
    STR(3, false, TK_REASON_MAX, tk_session_rec, reason),
    ENUM(4, true, TK_SESSION_ACTIVE, TK_SESSION_TERMINATED, tk_session_rec, state),
    TIME(5, true, tk_session_rec, created),
    TIME(6, false, tk_session_rec, expires),
    TIME(7, false, tk_session_rec, ended_at),
    STR(8, false, TK_ID_MAX, tk_session_rec, idp_sid),
    ENUM(9, false, 1, TK_HOLDS_ALL, tk_session_rec, holds),
};

static const field grant_fields[] = {
    STR(1, true, TK_ID_MAX, tk_grant_rec, client_id),
    STR(2, false, TK_SUB_MAX, tk_grant_rec, sub),
    STR(3, false, TK_ID_MAX, tk_grant_rec, sid),
    STR(4, false, TK_SCOPE_MAX, tk_grant_rec, scope),
    ENUM(5, true, TK_GRANT_ACTIVE, TK_GRANT_REVOKED, tk_grant_rec, state),
    TIME(6, true, tk_grant_rec, created),
    TIME(7, false, tk_grant_rec, revoked_at),
    STR(8, false, TK_AUD_MAX, tk_grant_rec, resource),
};

static const field client_fields[] = {
    HASH(1, true, tk_client_rec, secret_hash, NO_FLAG),
    STR(2, false, TK_NAME_MAX, tk_client_rec, name),
    STR(3, false, TK_SCOPE_MAX, tk_client_rec, scope),
    STR(4, false, TK_AUD_MAX, tk_client_rec, resource),
    ENUM(5, true, TK_ROLE_AGENT, TK_ROLE_ADMIN, tk_client_rec, role),
    ENUM(6, true, TK_CLIENT_PENDING, TK_CLIENT_DISABLED, tk_client_rec, status),
    TIME(7, true, tk_client_rec, created),
    GEN(8, tk_client_rec, generation),
    STR(9, false, TK_CLIENT_REDIRECTS_MAX, tk_client_rec, redirect_uris),
    ENUM(10, false, 1, 3, tk_client_rec, auth_method),
    ENUM(11, false, 1, 7, tk_client_rec, grant_types),
    ENUM(12, false, 1, TK_CLIENT_F_ALL, tk_client_rec, flags),
    STR(13, false, TK_OAUTH_SOFTWARE_MAX, tk_client_rec, software_id),
    HASH(14, false, tk_client_rec, identity, offsetof(tk_client_rec, has_identity)),
    STR(15, false, TK_DELEGATE_MAX, tk_client_rec, delegate_to),
    STR(16, false, TK_CERT_DN_MAX, tk_client_rec, tls_subject),
    HASH(17, false, tk_client_rec, tls_thumbprint, offsetof(tk_client_rec, has_tls_thumbprint)),
};

static const field code_fields[] = {
    STR(1, true, TK_ID_MAX, tk_code_rec, client_id),
    STR(2, true, TK_OAUTH_URI_MAX, tk_code_rec, redirect_uri),
    HASH(3, true, tk_code_rec, challenge, NO_FLAG),
    STR(4, true, TK_AUD_MAX, tk_code_rec, resource),
    STR(5, false, TK_SCOPE_MAX, tk_code_rec, scope),
    STR(6, true, TK_ID_MAX, tk_code_rec, sid),
    STR(7, false, TK_SUB_MAX, tk_code_rec, sub),
    STR(8, true, TK_ID_MAX, tk_code_rec, grant_id),
    TIME(9, true, tk_code_rec, exp),
    TIME(10, true, tk_code_rec, created),
    TIME(11, false, tk_code_rec, used_at),
};

static const field authreq_fields[] = {
    STR(1, true, TK_ID_MAX, tk_authreq_rec, client_id),
    STR(2, true, TK_OAUTH_URI_MAX, tk_authreq_rec, redirect_uri),
    STR(3, false, TK_OAUTH_STATE_MAX, tk_authreq_rec, state),
    HASH(4, true, tk_authreq_rec, challenge, NO_FLAG),
    STR(5, false, TK_SCOPE_MAX, tk_authreq_rec, scope),
    STR(6, true, TK_AUD_MAX, tk_authreq_rec, resource),
    ENUM(7, false, 1, 7, tk_authreq_rec, prompt),
    HASH(8, true, tk_authreq_rec, csrf_key, NO_FLAG),
    HASH(9, false, tk_authreq_rec, browser, offsetof(tk_authreq_rec, has_browser)),
    TIME(10, true, tk_authreq_rec, exp),
    TIME(11, false, tk_authreq_rec, used_at),
    TIME(12, true, tk_authreq_rec, created),
};

static const field browser_fields[] = {
    STR(1, true, TK_ID_MAX, tk_browser_rec, sid),
    HASH(2, true, tk_browser_rec, csrf_key, NO_FLAG),
    TIME(3, true, tk_browser_rec, created),
    TIME(4, true, tk_browser_rec, exp),
};

/* Running totals (agent access records): required, may be 0. */
#define TOTAL(k, T, mem)                                                                           \
    {                                                                                              \
        .key = (k), .type = F_INT, .required = true, .size = 8, .lo = 0, .hi = INT64_MAX,          \
        .off = offsetof(T, mem)                                                                    \
    }

static const field agent_access_fields[] = {
    TOTAL(1, tk_agent_access_rec, allowed),
    TOTAL(2, tk_agent_access_rec, denied),
    TIME(3, true, tk_agent_access_rec, first_seen),
    TIME(4, true, tk_agent_access_rec, last_seen),
};

/* Counts (audit records): optional, 0 = absent. */
#define COUNT(k, T, mem)                                                                           \
    {                                                                                              \
        .key = (k), .type = F_INT, .required = false, .size = 8, .lo = 1, .hi = UINT32_MAX,        \
        .off = offsetof(T, mem)                                                                    \
    }

static const field audit_fields[] = {
    ENUM(1, true, TK_SOURCE_BACKCHANNEL, TK_SOURCE_ADMIN, tk_audit_rec, source),
    ENUM(2, true, TK_SESSION_ACTIVE, TK_SESSION_TERMINATED, tk_audit_rec, state),
    STR(3, false, TK_URL_MAX, tk_audit_rec, issuer),
    STR(4, false, TK_EVENT_ID_MAX, tk_audit_rec, event_id),
    STR(5, false, TK_REASON_MAX, tk_audit_rec, reason),
    STR(6, false, TK_AUDIT_SIDS_BYTES, tk_audit_rec, sids),
    TIME(7, true, tk_audit_rec, at),
    COUNT(8, tk_audit_rec, matched),
    COUNT(9, tk_audit_rec, changed),
    ENUM(10, false, TK_HOLD_ADMIN, TK_HOLD_LAST, tk_audit_rec, hold),
};

/* The wire form of an op: one flat struct of slices, one key per field; each
 * op kind uses its own subset of the keys (op_keys below). */
typedef struct op_wire {
    uint8_t type, state, source, hold;
    bool has_hash, has_filter, has_secret;
    uint8_t hash[TK_HASH_LEN], filter[TK_HASH_LEN], secret[TK_HASH_LEN];
    tk_slice id, reason, iss, resource;
    int64_t at, until;
    int64_t allowed, denied;
} op_wire;

static const field op_fields[] = {
    ENUM(1, true, TK_OP_REVOKE_TOKEN, TK_OP_WIRE_LAST, op_wire, type),
    ENUM(2, false, 1, 3, op_wire, state),
    HASH(3, false, op_wire, hash, offsetof(op_wire, has_hash)),
    STR(4, false, TK_ID_MAX, op_wire, id),
    STR(5, false, TK_REASON_MAX, op_wire, reason),
    {.key = 6,
     .type = F_INT,
     .required = true,
     .size = 8,
     .lo = 1,
     .hi = TK_TIME_MAX,
     .off = offsetof(op_wire, at)},
    ENUM(7, false, TK_SOURCE_BACKCHANNEL, TK_SOURCE_WEBHOOK, op_wire, source),
    HASH(8, false, op_wire, filter, offsetof(op_wire, has_filter)),
    TIME(9, false, op_wire, until),
    STR(10, false, TK_IDP_ISS_MAX, op_wire, iss),
    {.key = 11,
     .type = F_INT,
     .size = 8,
     .lo = 1,
     .hi = UINT32_MAX,
     .off = offsetof(op_wire, allowed)},
    {.key = 12,
     .type = F_INT,
     .size = 8,
     .lo = 1,
     .hi = UINT32_MAX,
     .off = offsetof(op_wire, denied)},
    STR(13, false, TK_ACCESS_RESOURCE_MAX, op_wire, resource),
    ENUM(14, false, TK_HOLD_ADMIN, TK_HOLD_LAST, op_wire, hold),
    HASH(15, false, op_wire, secret, offsetof(op_wire, has_secret)),
};

/* Worst case of one record: map16 header, version, and per field a key (1
 * byte), a str16 header or bin8 header, or an int64. Keeps TK_RECORD_MAX honest. */
#define WORST_STR(n) (1 + 3 + (n))
#define WORST_INT    (1 + 9)
#define WORST_HASH   (1 + 2 + TK_HASH_LEN)
_Static_assert(3 + 2 + WORST_INT + 4 * WORST_STR(TK_ID_MAX) + WORST_STR(TK_SUB_MAX) +
                       WORST_STR(TK_SCOPE_MAX) + WORST_STR(TK_AUD_MAX) + 3 * WORST_HASH +
                       7 * WORST_INT <=
                   TK_RECORD_MAX,
               "a token record at its limits fits TK_RECORD_MAX");
_Static_assert(3 + 2 + WORST_STR(TK_SUB_MAX) + WORST_STR(TK_URL_MAX) + WORST_STR(TK_REASON_MAX) +
                       WORST_STR(TK_ID_MAX) + 5 * WORST_INT <=
                   TK_RECORD_MAX,
               "a session record at its limits fits TK_RECORD_MAX");
_Static_assert(3 + 2 + WORST_HASH + WORST_STR(TK_NAME_MAX) + WORST_STR(TK_SCOPE_MAX) +
                       WORST_STR(TK_AUD_MAX) + 4 * WORST_INT <=
                   TK_RECORD_MAX,
               "a client record at its limits fits TK_RECORD_MAX");
_Static_assert(3 + 2 + 2 * WORST_INT + WORST_STR(TK_URL_MAX) + WORST_STR(TK_EVENT_ID_MAX) +
                       WORST_STR(TK_REASON_MAX) + WORST_STR(TK_AUDIT_SIDS_BYTES) + 4 * WORST_INT <=
                   TK_RECORD_MAX,
               "an audit record at its limits fits TK_RECORD_MAX");

/* ---- Field access ---------------------------------------------------------- */

static int64_t get_int(const field *f, const void *rec)
{
    const uint8_t *m = (const uint8_t *)rec + f->off;
    if (f->size == 1) {
        return *m;
    }
    if (f->size == 4) {
        uint32_t u;
        memcpy(&u, m, sizeof(u));
        return u;
    }
    int64_t v;
    memcpy(&v, m, sizeof(v));
    return v;
}

static void set_int(const field *f, void *rec, int64_t v)
{
    uint8_t *m = (uint8_t *)rec + f->off;
    if (f->size == 1) {
        TK_ASSERT(v >= 0 && v <= UINT8_MAX);
        *m = (uint8_t)v;
    } else if (f->size == 4) {
        TK_ASSERT(v >= 0 && v <= UINT32_MAX);
        uint32_t u = (uint32_t)v;
        memcpy(m, &u, sizeof(u));
    } else {
        memcpy(m, &v, sizeof(v));
    }
}

static tk_slice get_str(const field *f, const void *rec)
{
    tk_slice s;
    memcpy(&s, (const uint8_t *)rec + f->off, sizeof(s));
    return s;
}

static bool hash_set(const field *f, const void *rec)
{
    if (f->flag == NO_FLAG) {
        return true;
    }
    return *((const bool *)((const uint8_t *)rec + f->flag));
}

/* Whether an optional field carries a value (required fields always do). */
static bool present(const field *f, const void *rec)
{
    switch (f->type) {
    case F_STR:
        return get_str(f, rec).len > 0;
    case F_INT:
        return get_int(f, rec) != 0;
    default:
        return hash_set(f, rec);
    }
}

/* ---- Encoding ------------------------------------------------------------- */

static int check_fields(const field *fs, size_t nf, const void *rec)
{
    for (size_t i = 0; i < nf; i++) {
        const field *f = &fs[i];
        if (f->type == F_STR) {
            tk_slice s = get_str(f, rec);
            if (s.len > f->max || (s.len > 0 && s.p == NULL) || (f->required && s.len == 0)) {
                return TK_E_INVALID;
            }
        } else if (f->type == F_INT) {
            int64_t v = get_int(f, rec);
            bool absent_ok = !f->required && v == 0;
            if (!absent_ok && (v < f->lo || v > f->hi)) {
                return TK_E_INVALID;
            }
        }
    }
    return 0;
}

typedef struct wbuf {
    uint8_t *p;
    size_t cap, len;
} wbuf;

/* The packer's write callback: append to the fixed buffer or fail. */
static int wbuf_write(void *data, const char *b, size_t n)
{
    wbuf *w = data;
    if (n > w->cap - w->len) {
        return -1;
    }
    if (n > 0) {
        memcpy(w->p + w->len, b, n);
    }
    w->len += n;
    return 0;
}

static int pack_field(msgpack_packer *pk, const field *f, const void *rec)
{
    int rc = msgpack_pack_uint8(pk, f->key);
    if (rc == 0 && f->type == F_STR) {
        tk_slice s = get_str(f, rec);
        rc = msgpack_pack_str_with_body(pk, s.p, s.len);
    } else if (rc == 0 && f->type == F_INT) {
        rc = msgpack_pack_int64(pk, get_int(f, rec));
    } else if (rc == 0) {
        rc = msgpack_pack_bin_with_body(pk, (const uint8_t *)rec + f->off, TK_HASH_LEN);
    }
    return rc;
}

static int encode_fields(const field *fs, size_t nf, const void *rec, uint8_t *buf, size_t cap,
                         size_t *len)
{
    TK_ASSERT(buf != NULL || cap == 0);
    int rc = check_fields(fs, nf, rec);
    if (rc != 0) {
        return rc;
    }
    size_t n = 1;
    for (size_t i = 0; i < nf; i++) {
        n += (fs[i].required || present(&fs[i], rec)) ? 1 : 0;
    }
    wbuf w = {.p = buf, .cap = cap, .len = 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, wbuf_write);
    rc = msgpack_pack_map(&pk, n);
    rc = rc != 0 ? rc : msgpack_pack_uint8(&pk, 0);
    rc = rc != 0 ? rc : msgpack_pack_uint8(&pk, TK_RECORD_VERSION);
    for (size_t i = 0; i < nf && rc == 0; i++) {
        if (fs[i].required || present(&fs[i], rec)) {
            rc = pack_field(&pk, &fs[i], rec);
        }
    }
    if (rc != 0) {
        return TK_E_TOOBIG;
    }
    *len = w.len;
    return 0;
}

/* ---- Strict reader ---------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static bool rd_take(rd *r, size_t n, const uint8_t **out)
{
    if ((size_t)(r->end - r->p) < n) {
        return false;
    }
    *out = r->p;
    r->p += n;
    return true;
}

/* Big-endian unsigned of n bytes (1, 2, 4 or 8). */
static bool rd_be(rd *r, size_t n, uint64_t *out)
{
    const uint8_t *b;
    if (!rd_take(r, n, &b)) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | b[i];
    }
    *out = v;
    return true;
}

/* Sign-extend an n-byte two's complement value. */
static int64_t sext(uint64_t v, size_t n)
{
    if (n == 8) {
        return (int64_t)v;
    }
    uint64_t sign = 1ULL << (n * 8 - 1);
    return (int64_t)(v ^ sign) - (int64_t)sign;
}

static bool rd_int_wide(rd *r, int64_t *out);

/* Any msgpack integer that fits int64; a positive fixint (every key and most
 * small values) is read here, inline, the rest by rd_int_wide. */
static inline bool rd_int(rd *r, int64_t *out)
{
    if (TK_LIKELY(r->p < r->end && *r->p <= 0x7f)) {
        *out = *r->p++;
        return true;
    }
    return rd_int_wide(r, out);
}

/* The general case: every msgpack integer format, held to int64. */
static bool rd_int_wide(rd *r, int64_t *out)
{
    const uint8_t *t;
    if (!rd_take(r, 1, &t)) {
        return false;
    }
    uint8_t c = *t;
    if (c <= 0x7f || c >= 0xe0) {
        *out = (int8_t)c;
        return true;
    }
    uint64_t v;
    if (c >= 0xcc && c <= 0xcf) {
        size_t n = (size_t)1 << (c - 0xcc);
        if (!rd_be(r, n, &v) || v > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)v;
        return true;
    }
    if (c >= 0xd0 && c <= 0xd3) {
        size_t n = (size_t)1 << (c - 0xd0);
        if (!rd_be(r, n, &v)) {
            return false;
        }
        *out = sext(v, n);
        return true;
    }
    return false;
}

static bool rd_str(rd *r, size_t max, tk_slice *out)
{
    const uint8_t *t;
    if (!rd_take(r, 1, &t)) {
        return false;
    }
    uint64_t n;
    if ((*t & 0xe0) == 0xa0) {
        n = *t & 0x1fu;
    } else if (*t == 0xd9 || *t == 0xda) {
        if (!rd_be(r, *t == 0xd9 ? 1 : 2, &n)) {
            return false;
        }
    } else {
        return false;
    }
    const uint8_t *b;
    if (n > max || !rd_take(r, (size_t)n, &b)) {
        return false;
    }
    *out = (tk_slice){(const char *)b, (size_t)n};
    return true;
}

static bool rd_hash(rd *r, uint8_t out[TK_HASH_LEN])
{
    const uint8_t *b;
    if (!rd_take(r, 2, &b) || b[0] != 0xc4 || b[1] != TK_HASH_LEN) {
        return false;
    }
    if (!rd_take(r, TK_HASH_LEN, &b)) {
        return false;
    }
    memcpy(out, b, TK_HASH_LEN);
    return true;
}

static bool rd_map(rd *r, uint64_t *n)
{
    const uint8_t *t;
    if (!rd_take(r, 1, &t)) {
        return false;
    }
    if ((*t & 0xf0) == 0x80) {
        *n = *t & 0x0fu;
        return true;
    }
    return *t == 0xde && rd_be(r, 2, n);
}

/* ---- Decoding ------------------------------------------------------------- */

/* The tables list their keys 1, 2, 3, ... in order, so a key is found by
 * index (and that entry's key compared); a table that did not would still be
 * read correctly by the scan. */
static const field *find_field(const field *fs, size_t nf, int64_t key)
{
    if (TK_LIKELY(key >= 1 && (size_t)key <= nf && fs[key - 1].key == key)) {
        return &fs[key - 1];
    }
    for (size_t i = 0; i < nf; i++) {
        if (fs[i].key == key) {
            return &fs[i];
        }
    }
    return NULL;
}

static bool decode_value(rd *r, const field *f, void *rec)
{
    if (f->type == F_STR) {
        tk_slice s;
        if (!rd_str(r, f->max, &s) || s.len == 0) {
            return false;
        }
        memcpy((uint8_t *)rec + f->off, &s, sizeof(s));
        return true;
    }
    if (f->type == F_INT) {
        int64_t v;
        if (!rd_int(r, &v) || v < f->lo || v > f->hi || (!f->required && v == 0)) {
            return false;
        }
        set_int(f, rec, v);
        return true;
    }
    if (!rd_hash(r, (uint8_t *)rec + f->off)) {
        return false;
    }
    if (f->flag != NO_FLAG) {
        *((bool *)((uint8_t *)rec + f->flag)) = true;
    }
    return true;
}

/* Decode into rec (zeroed first, size bytes). */
static int decode_fields(const field *fs, size_t nf, const uint8_t *buf, size_t len, void *rec,
                         size_t size)
{
    memset(rec, 0, size);
    rd r = {buf, buf + len};
    uint64_t n;
    int64_t key, version;
    if (buf == NULL || !rd_map(&r, &n) || n < 1 || n > nf + 1) {
        return TK_E_CORRUPT;
    }
    /* The version comes first: it says how to read the rest. */
    if (!rd_int(&r, &key) || key != 0 || !rd_int(&r, &version) || version != TK_RECORD_VERSION) {
        return TK_E_CORRUPT;
    }
    uint32_t seen = 1;
    for (uint64_t i = 1; i < n; i++) {
        if (!rd_int(&r, &key) || key < 1 || key > KEY_MAX || (seen & (1u << key))) {
            return TK_E_CORRUPT;
        }
        seen |= 1u << key;
        const field *f = find_field(fs, nf, key);
        if (f == NULL || !decode_value(&r, f, rec)) {
            return TK_E_CORRUPT;
        }
    }
    if (r.p != r.end) {
        return TK_E_CORRUPT;
    }
    for (size_t i = 0; i < nf; i++) {
        if (fs[i].required && !(seen & (1u << fs[i].key))) {
            return TK_E_CORRUPT;
        }
    }
    /* What we accept we can write back: decode_value held each present value
     * to the bounds check_fields applies (length, range, non-empty, non-zero
     * when optional), absent optional ones stay zero, and every required key
     * was seen; so no second pass over the record here (fuzz_record encodes
     * every record it decodes and fails if that is refused). */
    return 0;
}

/* ---- Records ---------------------------------------------------------------- */

#define NF(t) TK_ARRAY_LEN(t)

int tk_record_encode_token(const tk_token_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(token_fields, NF(token_fields), rec, buf, cap, len);
}

/* The holds invariant (record.h): active <=> no hold, suspended <=> some. */
static bool session_holds_ok(const tk_session_rec *rec)
{
    if (rec->state == TK_SESSION_ACTIVE) {
        return rec->holds == 0;
    }
    return rec->state != TK_SESSION_SUSPENDED || rec->holds != 0;
}

int tk_record_encode_session(const tk_session_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    if (!session_holds_ok(rec)) {
        return TK_E_INVALID;
    }
    return encode_fields(session_fields, NF(session_fields), rec, buf, cap, len);
}

int tk_record_encode_grant(const tk_grant_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(grant_fields, NF(grant_fields), rec, buf, cap, len);
}

int tk_record_encode_client(const tk_client_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(client_fields, NF(client_fields), rec, buf, cap, len);
}

int tk_record_encode_audit(const tk_audit_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(audit_fields, NF(audit_fields), rec, buf, cap, len);
}

int tk_record_decode_token(const uint8_t *buf, size_t len, tk_token_rec *rec)
{
    return decode_fields(token_fields, NF(token_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_decode_session(const uint8_t *buf, size_t len, tk_session_rec *rec)
{
    int rc = decode_fields(session_fields, NF(session_fields), buf, len, rec, sizeof(*rec));
    if (rc == 0 && rec->state == TK_SESSION_SUSPENDED && rec->holds == 0) {
        rec->holds = TK_HOLD_BIT(TK_HOLD_ADMIN); /* written before holds existed */
    }
    if (rc == 0 && !session_holds_ok(rec)) {
        memset(rec, 0, sizeof(*rec));
        return TK_E_CORRUPT;
    }
    return rc;
}

int tk_record_decode_grant(const uint8_t *buf, size_t len, tk_grant_rec *rec)
{
    return decode_fields(grant_fields, NF(grant_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_decode_client(const uint8_t *buf, size_t len, tk_client_rec *rec)
{
    return decode_fields(client_fields, NF(client_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_encode_agent_access(const tk_agent_access_rec *rec, uint8_t *buf, size_t cap,
                                  size_t *len)
{
    return encode_fields(agent_access_fields, NF(agent_access_fields), rec, buf, cap, len);
}

int tk_record_decode_agent_access(const uint8_t *buf, size_t len, tk_agent_access_rec *rec)
{
    return decode_fields(agent_access_fields, NF(agent_access_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_decode_audit(const uint8_t *buf, size_t len, tk_audit_rec *rec)
{
    return decode_fields(audit_fields, NF(audit_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_encode_code(const tk_code_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(code_fields, NF(code_fields), rec, buf, cap, len);
}

int tk_record_decode_code(const uint8_t *buf, size_t len, tk_code_rec *rec)
{
    return decode_fields(code_fields, NF(code_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_encode_authreq(const tk_authreq_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(authreq_fields, NF(authreq_fields), rec, buf, cap, len);
}

int tk_record_decode_authreq(const uint8_t *buf, size_t len, tk_authreq_rec *rec)
{
    return decode_fields(authreq_fields, NF(authreq_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_encode_browser(const tk_browser_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(browser_fields, NF(browser_fields), rec, buf, cap, len);
}

int tk_record_decode_browser(const uint8_t *buf, size_t len, tk_browser_rec *rec)
{
    return decode_fields(browser_fields, NF(browser_fields), buf, len, rec, sizeof(*rec));
}

/* ---- Ops --------------------------------------------------------------------- */

static bool id_ok(tk_slice s, size_t max)
{
    return s.len > 0 && s.len <= max;
}

/* A session change {state, hold}: terminate carries no hold, suspend and
 * resume name the owner whose hold they set or lift. */
static bool state_hold_ok(uint8_t state, uint8_t hold)
{
    if (state == TK_SESSION_TERMINATED) {
        return hold == 0;
    }
    return (state == TK_SESSION_ACTIVE || state == TK_SESSION_SUSPENDED) && hold >= TK_HOLD_ADMIN &&
           hold <= TK_HOLD_LAST;
}

static bool idp_event_ok(const tk_op *op)
{
    const tk_op_idp_event *e = &op->idp_event;
    return state_hold_ok(e->state, e->hold) && e->source >= TK_SOURCE_BACKCHANNEL &&
           e->source <= TK_SOURCE_WEBHOOK && id_ok(tk_op_id_get(&e->event_id), TK_EVENT_ID_MAX) &&
           id_ok(tk_op_iss_get(&e->iss), TK_IDP_ISS_MAX) && e->reason.len <= TK_REASON_MAX &&
           e->until >= op->at && e->until <= TK_TIME_MAX;
}

int tk_op_validate(const tk_op *op)
{
    bool ok = op->at >= 1 && op->at <= TK_TIME_MAX;
    switch (op->type) {
    case TK_OP_REVOKE_TOKEN:
        break;
    case TK_OP_REVOKE_GRANT:
        ok = ok && id_ok(tk_op_id_get(&op->revoke_grant.grant), TK_ID_MAX);
        break;
    case TK_OP_SESSION_STATE:
        ok = ok && id_ok(tk_op_id_get(&op->session.sid), TK_ID_MAX) &&
             state_hold_ok(op->session.state, op->session.hold) &&
             op->session.reason.len <= TK_REASON_MAX;
        break;
    case TK_OP_CLIENT_STATUS:
        ok = ok && id_ok(tk_op_id_get(&op->client_status.client), TK_ID_MAX) &&
             (op->client_status.status == TK_CLIENT_APPROVED ||
              op->client_status.status == TK_CLIENT_DISABLED);
        break;
    case TK_OP_CLIENT_SECRET:
        ok = ok && id_ok(tk_op_id_get(&op->client_secret.client), TK_ID_MAX);
        break;
    case TK_OP_AGENT_ACCESS:
        ok = ok && id_ok(tk_op_id_get(&op->agent_access.client), TK_ID_MAX) &&
             id_ok(tk_op_resource_get(&op->agent_access.resource), TK_ACCESS_RESOURCE_MAX) &&
             (op->agent_access.allowed > 0 || op->agent_access.denied > 0);
        break;
    case TK_OP_IDP_EVENT:
        ok = ok && idp_event_ok(op);
        break;
    case TK_OP_PUT_NEW:
        ok = ok && (op->put_new.db == TK_OP_DB_CLIENT || op->put_new.db == TK_OP_DB_AUTHREQ) &&
             id_ok(tk_op_id_get(&op->put_new.key), TK_ID_MAX) && op->put_new.rec != NULL &&
             op->put_new.len > 0 && op->put_new.len <= TK_RECORD_MAX;
        break;
    case TK_OP_SIGN_IN:
        ok = ok && id_ok(tk_op_id_get(&op->sign_in.sid), TK_ID_MAX) &&
             id_ok(tk_op_sub_get(&op->sign_in.sub), TK_SUB_MAX) &&
             op->sign_in.session_exp > op->at && op->sign_in.session_exp <= TK_TIME_MAX &&
             op->sign_in.browser_exp > op->at && op->sign_in.browser_exp <= TK_TIME_MAX &&
             (op->sign_in.idp_sid.len == 0 || op->sign_in.idp_iss.len > 0);
        break;
    case TK_OP_CODE_ISSUE:
        ok = ok && id_ok(tk_op_id_get(&op->code_issue.request), TK_ID_MAX) &&
             op->code_issue.decision >= TK_DECIDE_APPROVE &&
             op->code_issue.decision <= TK_DECIDE_DENY &&
             (op->code_issue.decision == TK_DECIDE_DENY ||
              (id_ok(tk_op_id_get(&op->code_issue.grant), TK_ID_MAX) &&
               op->code_issue.code_exp > op->at && op->code_issue.code_exp <= TK_TIME_MAX));
        break;
    case TK_OP_CODE_REDEEM:
        ok = ok && op->code_redeem.access_exp > op->at &&
             op->code_redeem.access_exp <= TK_TIME_MAX &&
             (!op->code_redeem.has_refresh ||
              (op->code_redeem.refresh_exp > op->at && op->code_redeem.refresh_exp <= TK_TIME_MAX));
        break;
    case TK_OP_REFRESH:
        ok = ok && op->refresh.access_exp > op->at && op->refresh.access_exp <= TK_TIME_MAX &&
             op->refresh.refresh_exp > op->at && op->refresh.refresh_exp <= TK_TIME_MAX &&
             op->refresh.scope_mask != 0;
        break;
    case TK_OP_SSF_ACK:
        ok = ok && id_ok(tk_op_id_get(&op->ssf_ack.receiver), TK_SSF_ID_MAX) &&
             op->ssf_ack.seq >= 1 && op->ssf_ack.seq <= INT64_MAX;
        break;
    case TK_OP_EXCHANGE:
        ok = ok && id_ok(tk_op_id_get(&op->exchange.client), TK_ID_MAX) &&
             op->exchange.exp > op->at && op->exchange.exp <= TK_TIME_MAX &&
             op->exchange.scope_mask != 0;
        break;
    default:
        ok = false;
        break;
    }
    return ok ? 0 : TK_E_INVALID;
}

/* Wire keys each op kind may carry (bit k = key k), beside 0, 1 and 6; and
 * the hash keys it must carry (the encoder always writes them). */
#define K(k) (1u << (k))
static const struct {
    uint32_t allowed, hashes;
} op_keys[TK_OP_WIRE_LAST + 1] = {
    [TK_OP_REVOKE_TOKEN] = {K(3), K(3)},
    [TK_OP_REVOKE_GRANT] = {K(4), 0},
    [TK_OP_SESSION_STATE] = {K(2) | K(4) | K(5) | K(14), 0},
    [TK_OP_CLIENT_STATUS] = {K(2) | K(4), 0},
    [TK_OP_AGENT_ACCESS] = {K(4) | K(11) | K(12) | K(13), 0},
    [TK_OP_IDP_EVENT] = {K(2) | K(3) | K(4) | K(5) | K(7) | K(8) | K(9) | K(10) | K(14), K(3)},
    [TK_OP_CLIENT_SECRET] = {K(4) | K(15), K(15)},
};
#define OP_COMMON_KEYS (K(0) | K(1) | K(6))

/* The keys present in w (what the encoder writes: required ones, and
 * optional ones that are set). */
static uint32_t wire_keys(const op_wire *w)
{
    uint32_t m = 0;
    for (size_t i = 0; i < NF(op_fields); i++) {
        if (op_fields[i].required || present(&op_fields[i], w)) {
            m |= K(op_fields[i].key);
        }
    }
    return m | K(0);
}

static void to_wire(const tk_op *op, op_wire *w)
{
    memset(w, 0, sizeof(*w));
    w->type = op->type;
    w->at = op->at;
    switch (op->type) {
    case TK_OP_REVOKE_TOKEN:
        w->has_hash = true;
        memcpy(w->hash, op->revoke_token.hash, TK_HASH_LEN);
        break;
    case TK_OP_REVOKE_GRANT:
        w->id = tk_op_id_get(&op->revoke_grant.grant);
        break;
    case TK_OP_SESSION_STATE:
        w->id = tk_op_id_get(&op->session.sid);
        w->state = op->session.state;
        w->hold = op->session.hold;
        w->reason = tk_op_reason_get(&op->session.reason);
        break;
    case TK_OP_CLIENT_STATUS:
        w->id = tk_op_id_get(&op->client_status.client);
        w->state = op->client_status.status;
        break;
    case TK_OP_CLIENT_SECRET:
        w->id = tk_op_id_get(&op->client_secret.client);
        w->has_secret = true;
        memcpy(w->secret, op->client_secret.secret_hash, TK_HASH_LEN);
        break;
    case TK_OP_AGENT_ACCESS:
        w->id = tk_op_id_get(&op->agent_access.client);
        w->resource = tk_op_resource_get(&op->agent_access.resource);
        w->allowed = op->agent_access.allowed;
        w->denied = op->agent_access.denied;
        break;
    default: {
        TK_ASSERT(op->type == TK_OP_IDP_EVENT);
        const tk_op_idp_event *e = &op->idp_event;
        w->has_hash = true;
        memcpy(w->hash, e->match, TK_HASH_LEN);
        w->state = e->state;
        w->hold = e->hold;
        w->source = e->source;
        w->has_filter = e->has_filter;
        memcpy(w->filter, e->filter, TK_HASH_LEN);
        w->id = tk_op_id_get(&e->event_id);
        w->iss = tk_op_iss_get(&e->iss);
        w->reason = tk_op_reason_get(&e->reason);
        w->until = e->until;
        break;
    }
    }
}

/* Slices in w were checked against the field limits, which equal the op
 * members' capacities, so the set calls cannot fail. */
static void set_checked(int rc)
{
    TK_ASSERT(rc == 0);
}

static void from_wire(const op_wire *w, tk_op *op)
{
    *op = tk_op_make(w->type, w->at);
    switch (w->type) {
    case TK_OP_REVOKE_TOKEN:
        memcpy(op->revoke_token.hash, w->hash, TK_HASH_LEN);
        break;
    case TK_OP_REVOKE_GRANT:
        set_checked(tk_op_id_set(&op->revoke_grant.grant, w->id));
        break;
    case TK_OP_SESSION_STATE:
        set_checked(tk_op_id_set(&op->session.sid, w->id));
        op->session.state = w->state;
        op->session.hold = w->hold;
        set_checked(tk_op_reason_set(&op->session.reason, w->reason));
        break;
    case TK_OP_CLIENT_STATUS:
        set_checked(tk_op_id_set(&op->client_status.client, w->id));
        op->client_status.status = w->state;
        break;
    case TK_OP_CLIENT_SECRET:
        set_checked(tk_op_id_set(&op->client_secret.client, w->id));
        memcpy(op->client_secret.secret_hash, w->secret, TK_HASH_LEN);
        break;
    case TK_OP_AGENT_ACCESS:
        set_checked(tk_op_id_set(&op->agent_access.client, w->id));
        set_checked(tk_op_resource_set(&op->agent_access.resource, w->resource));
        op->agent_access.allowed = (uint32_t)w->allowed; /* range-checked by the field table */
        op->agent_access.denied = (uint32_t)w->denied;
        break;
    default: {
        TK_ASSERT(w->type == TK_OP_IDP_EVENT);
        tk_op_idp_event *e = &op->idp_event;
        memcpy(e->match, w->hash, TK_HASH_LEN);
        e->state = w->state;
        e->hold = w->hold;
        e->source = w->source;
        e->has_filter = w->has_filter;
        memcpy(e->filter, w->filter, TK_HASH_LEN);
        set_checked(tk_op_id_set(&e->event_id, w->id));
        set_checked(tk_op_iss_set(&e->iss, w->iss));
        set_checked(tk_op_reason_set(&e->reason, w->reason));
        e->until = w->until;
        break;
    }
    }
}

/* TK_OP_SSF_ACK's wire form: a table of its own (keys 0, 1, 4, 6 as every
 * op, 16 the sequence), tried by the decoder only when the shared table
 * refuses the bytes (its type range ends before TK_OP_SSF_ACK). */
typedef struct ssf_ack_wire {
    uint8_t type;
    tk_slice receiver;
    int64_t at, seq;
} ssf_ack_wire;

static const field ssf_ack_fields[] = {
    ENUM(1, true, TK_OP_SSF_ACK, TK_OP_SSF_ACK, ssf_ack_wire, type),
    STR(4, true, TK_SSF_ID_MAX, ssf_ack_wire, receiver),
    {.key = 6,
     .type = F_INT,
     .required = true,
     .size = 8,
     .lo = 1,
     .hi = TK_TIME_MAX,
     .off = offsetof(ssf_ack_wire, at)},
    {.key = 16,
     .type = F_INT,
     .required = true,
     .size = 8,
     .lo = 1,
     .hi = INT64_MAX,
     .off = offsetof(ssf_ack_wire, seq)},
};

static int ssf_ack_encode(const tk_op *op, uint8_t *buf, size_t cap, size_t *len)
{
    ssf_ack_wire w = {.type = op->type,
                      .receiver = tk_op_id_get(&op->ssf_ack.receiver),
                      .at = op->at,
                      .seq = (int64_t)op->ssf_ack.seq};
    return encode_fields(ssf_ack_fields, NF(ssf_ack_fields), &w, buf, cap, len);
}

static int ssf_ack_decode(const uint8_t *buf, size_t len, tk_op *op)
{
    ssf_ack_wire w;
    int rc = decode_fields(ssf_ack_fields, NF(ssf_ack_fields), buf, len, &w, sizeof(w));
    if (rc != 0) {
        return rc;
    }
    *op = tk_op_make(TK_OP_SSF_ACK, w.at);
    set_checked(tk_op_id_set(&op->ssf_ack.receiver, w.receiver));
    op->ssf_ack.seq = (uint64_t)w.seq;
    if (tk_op_validate(op) != 0) {
        memset(op, 0, sizeof(*op));
        return TK_E_CORRUPT;
    }
    return 0;
}

int tk_op_encode(const tk_op *op, uint8_t *buf, size_t cap, size_t *len)
{
    int rc = tk_op_validate(op);
    if (rc == 0 && op->type == TK_OP_SSF_ACK) {
        return ssf_ack_encode(op, buf, cap, len);
    }
    if (rc != 0 || op->type > TK_OP_WIRE_LAST) {
        return TK_E_INVALID; /* the AS ops have no wire form yet */
    }
    op_wire w;
    to_wire(op, &w);
    TK_ASSERT((wire_keys(&w) & ~(op_keys[op->type].allowed | OP_COMMON_KEYS)) == 0);
    return encode_fields(op_fields, NF(op_fields), &w, buf, cap, len);
}

int tk_op_decode(const uint8_t *buf, size_t len, tk_op *op)
{
    op_wire w;
    memset(op, 0, sizeof(*op));
    int rc = decode_fields(op_fields, NF(op_fields), buf, len, &w, sizeof(w));
    if (rc != 0) {
        return ssf_ack_decode(buf, len, op);
    }
    uint32_t keys = wire_keys(&w), allowed = op_keys[w.type].allowed | OP_COMMON_KEYS;
    uint32_t hashes = op_keys[w.type].hashes;
    if ((keys & ~allowed) != 0 || (keys & hashes) != hashes) {
        return TK_E_CORRUPT; /* a key of another kind, or a missing hash */
    }
    from_wire(&w, op);
    if (tk_op_validate(op) != 0) {
        memset(op, 0, sizeof(*op));
        return TK_E_CORRUPT;
    }
    return 0;
}

/* ---- Enum names ------------------------------------------------------------- */

static const char *const role_names[] = {NULL, "agent", "resource_server", "admin"};
static const char *const status_names[] = {NULL, "pending", "approved", "disabled"};
static const char *const state_names[] = {NULL, "active", "suspended", "terminated"};
static const char *const kind_names[] = {NULL, "access_token", "refresh_token"};
static const char *const source_names[] = {NULL, "backchannel_logout", "ssf", "webhook", "admin"};
static const char *const hold_names[] = {NULL, "admin", "device", "credential"};
_Static_assert(TK_ARRAY_LEN(hold_names) == TK_HOLD_LAST + 1, "a name for every hold");

static const char *name_of(const char *const *names, size_t n, uint8_t v)
{
    return (v > 0 && v < n) ? names[v] : "unknown";
}

static int parse_name(const char *const *names, size_t n, const char *s, uint8_t *out)
{
    for (size_t i = 1; s != NULL && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    }
    return TK_E_BADINPUT;
}

const char *tk_role_name(uint8_t role)
{
    return name_of(role_names, NF(role_names), role);
}

int tk_role_parse(const char *s, uint8_t *out)
{
    return parse_name(role_names, NF(role_names), s, out);
}

const char *tk_client_status_name(uint8_t status)
{
    return name_of(status_names, NF(status_names), status);
}

int tk_client_status_parse(const char *s, uint8_t *out)
{
    return parse_name(status_names, NF(status_names), s, out);
}

const char *tk_session_state_name(uint8_t state)
{
    return name_of(state_names, NF(state_names), state);
}

const char *tk_token_kind_name(uint8_t kind)
{
    return name_of(kind_names, NF(kind_names), kind);
}

const char *tk_event_source_name(uint8_t source)
{
    return name_of(source_names, NF(source_names), source);
}

const char *tk_hold_name(uint8_t hold)
{
    return name_of(hold_names, NF(hold_names), hold);
}

int tk_hold_parse(const char *s, uint8_t *out)
{
    return parse_name(hold_names, NF(hold_names), s, out);
}

/* ---- SSF transmitter records (ssf DBI) ---------------------------------------- */

static const field ssf_receiver_fields[] = {
    STR(1, true, TK_URL_MAX, tk_ssf_receiver_rec, url),
    STR(2, true, TK_AUD_MAX, tk_ssf_receiver_rec, audience),
    STR(3, false, TK_SSF_BEARER_MAX, tk_ssf_receiver_rec, bearer),
    ENUM(4, true, 1, TK_SSF_WANT_ALL, tk_ssf_receiver_rec, want),
    TIME(5, true, tk_ssf_receiver_rec, created),
    {.key = 6,
     .type = F_INT,
     .required = true,
     .size = 8,
     .lo = 1,
     .hi = TK_SSF_QUEUE_MAX,
     .off = offsetof(tk_ssf_receiver_rec, queue_max)},
    {.key = 7,
     .type = F_INT,
     .size = 8,
     .lo = 1,
     .hi = TK_SSF_QUEUE_MAX + 1, /* the OVERFLOW event past a full queue */
     .off = offsetof(tk_ssf_receiver_rec, depth)},
    {.key = 8,
     .type = F_INT,
     .size = 8,
     .lo = 1,
     .hi = INT64_MAX,
     .off = offsetof(tk_ssf_receiver_rec, dropped)},
    ENUM(9, false, 1, 1, tk_ssf_receiver_rec, overflowed),
};

static const field ssf_event_fields[] = {
    ENUM(1, true, TK_SSF_SESSION_REVOKED, TK_SSF_KIND_LAST, tk_ssf_event_rec, kind),
    TIME(2, true, tk_ssf_event_rec, at),
    STR(3, false, TK_ID_MAX, tk_ssf_event_rec, id),
    HASH(4, false, tk_ssf_event_rec, hash, offsetof(tk_ssf_event_rec, has_hash)),
    STR(5, false, TK_SUB_MAX, tk_ssf_event_rec, sub),
    STR(6, false, TK_ID_MAX, tk_ssf_event_rec, client),
    STR(7, false, TK_REASON_MAX, tk_ssf_event_rec, reason),
    ENUM(8, false, TK_HOLD_ADMIN, TK_HOLD_LAST, tk_ssf_event_rec, hold),
};

int tk_record_encode_ssf_receiver(const tk_ssf_receiver_rec *rec, uint8_t *buf, size_t cap,
                                  size_t *len)
{
    return encode_fields(ssf_receiver_fields, NF(ssf_receiver_fields), rec, buf, cap, len);
}

int tk_record_decode_ssf_receiver(const uint8_t *buf, size_t len, tk_ssf_receiver_rec *rec)
{
    return decode_fields(ssf_receiver_fields, NF(ssf_receiver_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_encode_ssf_event(const tk_ssf_event_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_fields(ssf_event_fields, NF(ssf_event_fields), rec, buf, cap, len);
}

int tk_record_decode_ssf_event(const uint8_t *buf, size_t len, tk_ssf_event_rec *rec)
{
    return decode_fields(ssf_event_fields, NF(ssf_event_fields), buf, len, rec, sizeof(*rec));
}

static const char *const ssf_kind_names[] = {NULL,
                                             "session-revoked",
                                             "session-suspended",
                                             "session-resumed",
                                             "token-revoked",
                                             "grant-revoked",
                                             "client-disabled",
                                             "overflow"};
_Static_assert(TK_ARRAY_LEN(ssf_kind_names) == TK_SSF_KIND_LAST + 1, "a name for every kind");

const char *tk_ssf_kind_name(uint8_t kind)
{
    return name_of(ssf_kind_names, NF(ssf_kind_names), kind);
}

int tk_ssf_kind_parse(tk_slice s, uint8_t *out)
{
    for (size_t i = 1; s.p != NULL && i < NF(ssf_kind_names); i++) {
        if (tk_slice_eq_str(s, ssf_kind_names[i])) {
            *out = (uint8_t)i;
            return 0;
        }
    }
    return TK_E_BADINPUT;
}
