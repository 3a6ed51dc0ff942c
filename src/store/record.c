/*
 * Record codec: msgpack maps with small integer keys, key 0 the version.
 *
 * Each record kind is described once, by a table of fields (key, type,
 * whether required, size or range limits, where it lives in the struct); one
 * generic encoder and one generic strict decoder walk that table. Encoding
 * is a small writer into the caller's buffer that emits exactly what
 * msgpack-c's packer would (below); decoding is our own reader, which accepts only what the encoder
 * emits: a fixmap or map16, integer keys in ascending-free order with no duplicates, ints of any
 * width (range-checked), str up to str16, bin8 of exactly 32 bytes (and,
 * for the op codec in op.c only, bin8/bin16 of a bounded length and
 * unsigned 64-bit integers).
 *
 * Records stay compact because the hot path touches them among millions:
 * optional strings that are empty and optional ints that are zero are not
 * written at all, so the decoder rejects an optional field that is present
 * but empty or zero (there is exactly one encoding of each record).
 * Versions other than TK_RECORD_VERSION are rejected until a newer one exists.
 */
#include <stddef.h>
#include <string.h>

#include "codec_int.h"

/* ---- Field tables -------------------------------------------------------- */

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
    {.key = 18,
     .type = F_INT,
     .required = false,
     .size = 8,
     .lo = 1,
     .hi = TK_TOKEN_ID_MAX,
     .off = offsetof(tk_token_rec, tid)},
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
    TIME(10, false, tk_session_rec, auth_time),
    STR(11, false, TK_ACR_MAX, tk_session_rec, acr),
    STR(12, false, TK_AMR_MAX, tk_session_rec, amr),
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
    STR(9, false, TK_URL_MAX, tk_grant_rec, iss),
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
    STR(18, false, TK_CERT_SAN_MAX, tk_client_rec, tls_san),
    STR(19, false, TK_CIMD_URL_MAX, tk_client_rec, metadata_url),
    TIME(20, false, tk_client_rec, metadata_until),
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
    ENUM(12, false, 1, 1, tk_code_rec, redirect_given),
    {.key = 13,
     .type = F_INT,
     .required = false,
     .size = 8,
     .lo = 1,
     .hi = TK_TOKEN_ID_MAX,
     .off = offsetof(tk_code_rec, id)},
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
    STR(13, false, TK_LOGIN_HINT_MAX, tk_authreq_rec, login_hint),
    ENUM(14, false, 1, 1, tk_authreq_rec, redirect_given),
    HASH(15, false, tk_authreq_rec, prelogin, offsetof(tk_authreq_rec, has_prelogin)),
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

/* Keeps TK_RECORD_MAX honest (WORST_*: codec_int.h). */
_Static_assert(3 + 2 + WORST_INT + 4 * WORST_STR(TK_ID_MAX) + WORST_STR(TK_SUB_MAX) +
                       WORST_STR(TK_SCOPE_MAX) + WORST_STR(TK_AUD_MAX) + 4 * WORST_HASH +
                       8 * WORST_INT <=
                   TK_RECORD_MAX,
               "a token record at its limits fits TK_RECORD_MAX");
_Static_assert(3 + 2 + WORST_STR(TK_SUB_MAX) + WORST_STR(TK_URL_MAX) + WORST_STR(TK_REASON_MAX) +
                       WORST_STR(TK_ID_MAX) + WORST_STR(TK_ACR_MAX) + WORST_STR(TK_AMR_MAX) +
                       6 * WORST_INT <=
                   TK_RECORD_MAX,
               "a session record at its limits fits TK_RECORD_MAX");
_Static_assert(3 + 2 + WORST_HASH + WORST_STR(TK_NAME_MAX) + WORST_STR(TK_SCOPE_MAX) +
                       WORST_STR(TK_AUD_MAX) + 4 * WORST_INT <=
                   TK_RECORD_MAX,
               "a client record at its limits fits TK_RECORD_MAX");
_Static_assert(3 + 2 + 3 * WORST_HASH + WORST_STR(TK_NAME_MAX) + WORST_STR(TK_SCOPE_MAX) +
                       WORST_STR(TK_AUD_MAX) + WORST_STR(TK_CLIENT_REDIRECTS_MAX) +
                       WORST_STR(TK_OAUTH_SOFTWARE_MAX) + WORST_STR(TK_DELEGATE_MAX) +
                       WORST_STR(TK_CERT_DN_MAX) + WORST_STR(TK_CERT_SAN_MAX) +
                       WORST_STR(TK_CIMD_URL_MAX) + 8 * WORST_INT <=
                   TK_RECORD_MAX,
               "a client record with every field at its limit fits TK_RECORD_MAX");
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

static uint64_t get_u64(const field *f, const void *rec)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *)rec + f->off, sizeof(v));
    return v;
}

static bool hash_set(const field *f, const void *rec)
{
    if (f->flag == NO_FLAG) {
        return true;
    }
    return *((const bool *)((const uint8_t *)rec + f->flag));
}

/* Whether an optional field carries a value (required fields always do). */
bool tk_codec_present(const field *f, const void *rec)
{
    switch (f->type) {
    case F_STR:
    case F_BIN:
        return get_str(f, rec).len > 0;
    case F_INT:
        return get_int(f, rec) != 0;
    case F_U64:
        return get_u64(f, rec) != 0;
    default:
        return hash_set(f, rec);
    }
}

/* ---- Encoding ------------------------------------------------------------- */

/* The writer: msgpack in the smallest form of each value, byte for byte
 * what msgpack-c's packer writes (fixint / uint8..64 / int8..64, fixstr /
 * str8 / str16 / str32, bin8 / bin16 / bin32, fixmap / map16;
 * test_record holds it to the packer), with one bounds check per item
 * instead of a call through a write callback per header and body. */
typedef struct wbuf {
    uint8_t *p;
    size_t cap, len;
    bool full;
} wbuf;

/* n more bytes at the end of w, or NULL (and w full) when they do not fit. */
static uint8_t *w_take(wbuf *w, size_t n)
{
    if (w->full || n > w->cap - w->len) {
        w->full = true;
        return NULL;
    }
    uint8_t *q = w->p + w->len;
    w->len += n;
    return q;
}

/* A tag byte followed by v as an n-byte big-endian number (n 0, 1, 2, 4, 8). */
static void w_tagged(wbuf *w, uint8_t tag, uint64_t v, unsigned n)
{
    uint8_t *q = w_take(w, 1 + n);
    if (q != NULL) {
        q[0] = tag;
        for (unsigned i = 0; i < n; i++) {
            q[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
        }
    }
}

static void w_uint(wbuf *w, uint64_t v)
{
    if (v < 0x80) {
        w_tagged(w, (uint8_t)v, 0, 0);
    } else if (v <= UINT8_MAX) {
        w_tagged(w, 0xcc, v, 1);
    } else if (v <= UINT16_MAX) {
        w_tagged(w, 0xcd, v, 2);
    } else if (v <= UINT32_MAX) {
        w_tagged(w, 0xce, v, 4);
    } else {
        w_tagged(w, 0xcf, v, 8);
    }
}

static void w_int(wbuf *w, int64_t v)
{
    if (v >= 0) {
        w_uint(w, (uint64_t)v);
    } else if (v >= -32) {
        w_tagged(w, (uint8_t)v, 0, 0); /* negative fixint */
    } else if (v >= INT8_MIN) {
        w_tagged(w, 0xd0, (uint64_t)v, 1);
    } else if (v >= INT16_MIN) {
        w_tagged(w, 0xd1, (uint64_t)v, 2);
    } else if (v >= INT32_MIN) {
        w_tagged(w, 0xd2, (uint64_t)v, 4);
    } else {
        w_tagged(w, 0xd3, (uint64_t)v, 8);
    }
}

/* A str (bin false) or bin header for n bytes, then the bytes. */
static void w_bytes(wbuf *w, bool bin, const void *p, size_t n)
{
    if (!bin && n < 32) {
        w_tagged(w, (uint8_t)(0xa0 | n), 0, 0);
    } else if (n <= UINT8_MAX) {
        w_tagged(w, bin ? 0xc4 : 0xd9, n, 1);
    } else if (n <= UINT16_MAX) {
        w_tagged(w, bin ? 0xc5 : 0xda, n, 2);
    } else {
        w_tagged(w, bin ? 0xc6 : 0xdb, n, 4);
    }
    uint8_t *q = n > 0 ? w_take(w, n) : NULL;
    if (q != NULL) {
        memcpy(q, p, n);
    }
}

/* Whether f is written, after checking its value (*bad: refused). */
static bool field_written(const field *f, const void *rec, bool *bad)
{
    if (f->type == F_STR || f->type == F_BIN) {
        tk_slice s = get_str(f, rec);
        *bad = s.len > f->max || (s.len > 0 && s.p == NULL) || (f->required && s.len == 0);
        return s.len > 0 || f->required;
    }
    if (f->type == F_INT) {
        int64_t v = get_int(f, rec);
        bool absent_ok = !f->required && v == 0;
        *bad = !absent_ok && (v < f->lo || v > f->hi);
        return !absent_ok;
    }
    *bad = false;
    return f->required || tk_codec_present(f, rec);
}

static void pack_field(wbuf *w, const field *f, const void *rec)
{
    w_uint(w, f->key);
    if (f->type == F_STR || f->type == F_BIN) {
        tk_slice s = get_str(f, rec);
        w_bytes(w, f->type == F_BIN, s.p, s.len);
    } else if (f->type == F_INT) {
        w_int(w, get_int(f, rec));
    } else if (f->type == F_U64) {
        w_uint(w, get_u64(f, rec));
    } else {
        w_bytes(w, true, (const uint8_t *)rec + f->off, TK_HASH_LEN);
    }
}

/* One pass: each field checked and written; the map's header is written
 * last, into the byte kept for it (a fixmap), or as a map16 with the body
 * moved up by two bytes when the record has 16 entries or more. A bad
 * field refuses the record whatever the buffer's size. */
int tk_codec_encode(const field *fs, size_t nf, const void *rec, uint8_t *buf, size_t cap,
                    size_t *len)
{
    TK_ASSERT(buf != NULL || cap == 0);
    TK_ASSERT(nf < UINT16_MAX);
    wbuf w = {.p = buf, .cap = cap, .len = 0, .full = false};
    (void)w_take(&w, 1);
    w_uint(&w, 0);
    w_uint(&w, TK_RECORD_VERSION);
    size_t n = 1;
    for (size_t i = 0; i < nf; i++) {
        bool bad;
        if (!field_written(&fs[i], rec, &bad)) {
            continue;
        }
        if (bad) {
            return TK_E_INVALID;
        }
        n++;
        if (!w.full) {
            pack_field(&w, &fs[i], rec);
        }
    }
    if (w.full || (n >= 16 && cap - w.len < 2)) {
        return TK_E_TOOBIG;
    }
    if (n < 16) {
        buf[0] = (uint8_t)(0x80 | n);
    } else {
        memmove(buf + 3, buf + 1, w.len - 1);
        buf[0] = 0xde;
        buf[1] = (uint8_t)(n >> 8);
        buf[2] = (uint8_t)n;
        w.len += 2;
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

static uint64_t be32(const uint8_t *b)
{
    return (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
}

/* Big-endian unsigned of n bytes (1, 2, 4 or 8); each width is one load
 * (times, the commonest wide integers, are 4 bytes). */
static inline __attribute__((always_inline)) bool rd_be(rd *r, size_t n, uint64_t *out)
{
    const uint8_t *b;
    if (!rd_take(r, n, &b)) {
        return false;
    }
    switch (n) {
    case 1:
        *out = b[0];
        break;
    case 2:
        *out = (uint64_t)b[0] << 8 | b[1];
        break;
    case 4:
        *out = be32(b);
        break;
    default:
        TK_ASSERT(n == 8);
        *out = be32(b) << 32 | be32(b + 4);
        break;
    }
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
 * small values) and a uint32 (every time) are read here, inline, the rest by
 * rd_int_wide. */
static inline bool rd_int(rd *r, int64_t *out)
{
    if (TK_LIKELY(r->p < r->end && *r->p <= 0x7f)) {
        *out = *r->p++;
        return true;
    }
    if (r->end - r->p >= 5 && *r->p == 0xce) {
        *out = (int64_t)be32(r->p + 1);
        r->p += 5;
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

static inline __attribute__((always_inline)) bool rd_str(rd *r, size_t max, tk_slice *out)
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

/* bin8 or bin16 of 1..max bytes. */
static bool rd_bin(rd *r, size_t max, tk_slice *out)
{
    const uint8_t *t;
    uint64_t n;
    if (!rd_take(r, 1, &t) || (*t != 0xc4 && *t != 0xc5) || !rd_be(r, *t == 0xc4 ? 1 : 2, &n)) {
        return false;
    }
    const uint8_t *b;
    if (n == 0 || n > max || !rd_take(r, (size_t)n, &b)) {
        return false;
    }
    *out = (tk_slice){(const char *)b, (size_t)n};
    return true;
}

/* A non-negative integer of up to 64 bits: positive fixint or uint 8..64. */
static bool rd_u64(rd *r, uint64_t *out)
{
    const uint8_t *t;
    if (!rd_take(r, 1, &t)) {
        return false;
    }
    if (*t <= 0x7f) {
        *out = *t;
        return true;
    }
    return *t >= 0xcc && *t <= 0xcf && rd_be(r, (size_t)1 << (*t - 0xcc), out);
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

/* Inlined into decode_fields: it runs once per field of every record read. */
static inline __attribute__((always_inline)) bool decode_value(rd *r, const field *f, void *rec)
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
    if (f->type == F_BIN) {
        tk_slice s;
        if (!rd_bin(r, f->max, &s)) {
            return false;
        }
        memcpy((uint8_t *)rec + f->off, &s, sizeof(s));
        return true;
    }
    if (f->type == F_U64) {
        uint64_t v;
        if (!rd_u64(r, &v) || v == 0) {
            return false;
        }
        memcpy((uint8_t *)rec + f->off, &v, sizeof(v));
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

/* Decode into rec (zeroed first, size bytes). Inlined into each kind's
 * decoder so the table, its length and the size are constants there (the
 * hot path decodes a token, a grant, a session and a client per request). */
static inline __attribute__((always_inline)) int
decode_fields(const field *fs, size_t nf, const uint8_t *buf, size_t len, void *rec, size_t size)
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
    uint64_t seen = 1;
    for (uint64_t i = 1; i < n; i++) {
        if (!rd_int(&r, &key) || key < 1 || key > KEY_MAX || (seen & (1ull << key))) {
            return TK_E_CORRUPT;
        }
        seen |= 1ull << key;
        const field *f = find_field(fs, nf, key);
        if (f == NULL || !decode_value(&r, f, rec)) {
            return TK_E_CORRUPT;
        }
    }
    if (r.p != r.end) {
        return TK_E_CORRUPT;
    }
    for (size_t i = 0; i < nf; i++) {
        if (fs[i].required && !(seen & (1ull << fs[i].key))) {
            return TK_E_CORRUPT;
        }
    }
    /* What we accept we can write back: decode_value held each present value
     * to the bounds field_written applies (length, range, non-empty, non-zero
     * when optional), absent optional ones stay zero, and every required key
     * was seen; so no second pass over the record here (fuzz_record encodes
     * every record it decodes and fails if that is refused). */
    return 0;
}

/* The same, out of line, for the op codec (codec_int.h). */
int tk_codec_decode(const field *fs, size_t nf, const uint8_t *buf, size_t len, void *rec,
                    size_t size)
{
    return decode_fields(fs, nf, buf, len, rec, size);
}

/* ---- Records ---------------------------------------------------------------- */

int tk_record_encode_token(const tk_token_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return tk_codec_encode(token_fields, NF(token_fields), rec, buf, cap, len);
}

bool tk_session_claims_ok(tk_slice acr, tk_slice amr)
{
    for (size_t i = 0; i < acr.len; i++) {
        unsigned char c = (unsigned char)acr.p[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            return false;
        }
    }
    for (size_t i = 0; i < amr.len; i++) {
        unsigned char c = (unsigned char)amr.p[i];
        bool space_ok = c == ' ' && i > 0 && i + 1 < amr.len && amr.p[i - 1] != ' ';
        if (!space_ok && (c < 0x21 || c > 0x7e || c == '"' || c == '\\')) {
            return false;
        }
    }
    return true;
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
    if (!session_holds_ok(rec) || !tk_session_claims_ok(rec->acr, rec->amr)) {
        return TK_E_INVALID;
    }
    return tk_codec_encode(session_fields, NF(session_fields), rec, buf, cap, len);
}

int tk_record_encode_grant(const tk_grant_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return tk_codec_encode(grant_fields, NF(grant_fields), rec, buf, cap, len);
}

int tk_record_encode_client(const tk_client_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return tk_codec_encode(client_fields, NF(client_fields), rec, buf, cap, len);
}

int tk_record_encode_audit(const tk_audit_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return tk_codec_encode(audit_fields, NF(audit_fields), rec, buf, cap, len);
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
    if (rc == 0 && (!session_holds_ok(rec) || !tk_session_claims_ok(rec->acr, rec->amr))) {
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
    return tk_codec_encode(agent_access_fields, NF(agent_access_fields), rec, buf, cap, len);
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
    return tk_codec_encode(code_fields, NF(code_fields), rec, buf, cap, len);
}

int tk_record_decode_code(const uint8_t *buf, size_t len, tk_code_rec *rec)
{
    return decode_fields(code_fields, NF(code_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_encode_authreq(const tk_authreq_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return tk_codec_encode(authreq_fields, NF(authreq_fields), rec, buf, cap, len);
}

int tk_record_decode_authreq(const uint8_t *buf, size_t len, tk_authreq_rec *rec)
{
    return decode_fields(authreq_fields, NF(authreq_fields), buf, len, rec, sizeof(*rec));
}

int tk_record_encode_browser(const tk_browser_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return tk_codec_encode(browser_fields, NF(browser_fields), rec, buf, cap, len);
}

int tk_record_decode_browser(const uint8_t *buf, size_t len, tk_browser_rec *rec)
{
    return decode_fields(browser_fields, NF(browser_fields), buf, len, rec, sizeof(*rec));
}
