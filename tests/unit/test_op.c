/*
 * The op codec (src/store/op.c) as a replication unit.
 *
 * 1. Ops stored or replicated before the authorization-server ops had a
 *    wire form still decode, and re-encode to the very same bytes.
 * 2. Every kind round-trips (decode(encode(op)) is op with the members
 *    apply ignores zeroed) and its encoding is held strictly: every
 *    truncation, a trailing byte, each key dropped, each key of another
 *    kind added, each key twice, each value of the wrong type, values out
 *    of range, and members apply would ignore are all refused.
 * 3. Determinism: one mixed sequence of every kind, each op through
 *    encode → decode, applied to two fresh stores (one op per txn on the
 *    first, through the committer's group commit on the second, a second
 *    apart) leaves every DBI identical byte for byte; and so does applying
 *    each op twice (idempotence; AGENT_ACCESS, the counter, once).
 */
#include <lmdb.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tokend/committer.h"
#include "tokend/store.h"

#define AT 1795000000

static void h(uint8_t tag, uint8_t out[TK_HASH_LEN])
{
    memset(out, tag, TK_HASH_LEN);
}

static tk_slice cstr(const char *s)
{
    return (tk_slice){s, strlen(s)};
}

static char big[4][TK_RECORD_MAX + 2];

static tk_slice fill(int slot, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        big[slot][i] = (char)('a' + (slot * 7 + (int)i) % 26);
    }
    return (tk_slice){big[slot], n};
}

/* ---- A small msgpack map editor ------------------------------------------------- */

/* An encoded op as its entries: key and the bytes of its value. */
typedef struct entry {
    unsigned key;
    const uint8_t *v;
    size_t n;
} entry;

typedef struct omap {
    entry e[64];
    size_t n;
} omap;

static size_t be(const uint8_t *b, size_t n)
{
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | b[i];
    }
    return v;
}

/* Size of the msgpack object at b (the forms the op encoder writes). */
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
    if (c == 0xda || c == 0xc5) {
        return 3 + be(b + 1, 2);
    }
    tk_assert_fail("unexpected msgpack tag", __FILE__, __LINE__);
    return 0;
}

static void parse(const uint8_t *b, size_t len, omap *m)
{
    size_t i = 1, n = b[0] & 0x0fu;
    if (b[0] == 0xde) {
        n = be(b + 1, 2);
        i = 3;
    }
    TK_ASSERT((b[0] & 0xf0) == 0x80 || b[0] == 0xde);
    m->n = 0;
    for (size_t k = 0; k < n; k++) {
        TK_ASSERT(b[i] <= 0x7f);
        entry *e = &m->e[m->n++];
        e->key = b[i++];
        e->v = b + i;
        e->n = obj_size(b + i);
        i += e->n;
    }
    TK_ASSERT(i == len);
}

/* The entries in ascending key order (the encoder's), duplicates kept. */
static void sort(omap *m)
{
    for (size_t i = 1; i < m->n; i++) {
        for (size_t j = i; j > 0 && m->e[j - 1].key > m->e[j].key; j--) {
            entry t = m->e[j];
            m->e[j] = m->e[j - 1];
            m->e[j - 1] = t;
        }
    }
}

static size_t build(const omap *in, uint8_t *out, size_t cap)
{
    omap sorted = *in;
    const omap *m = &sorted;
    sort(&sorted);
    size_t i = 0;
    if (m->n < 16) {
        out[i++] = (uint8_t)(0x80 | m->n);
    } else {
        out[i++] = 0xde;
        out[i++] = 0;
        out[i++] = (uint8_t)m->n;
    }
    for (size_t k = 0; k < m->n; k++) {
        TK_ASSERT(i + 1 + m->e[k].n <= cap);
        out[i++] = (uint8_t)m->e[k].key;
        memcpy(out + i, m->e[k].v, m->e[k].n);
        i += m->e[k].n;
    }
    return i;
}

static int find(const omap *m, unsigned key)
{
    for (size_t k = 0; k < m->n; k++) {
        if (m->e[k].key == key) {
            return (int)k;
        }
    }
    return -1;
}

/* Decode an exact-size heap copy (ASan sees any read past the end); a
 * decoded op is released at once. */
static int dec(const uint8_t *b, size_t n, tk_op *out)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, b, n);
    int rc = tk_op_decode(copy, n, out);
    free(copy);
    return rc;
}

/* Decodes, and re-encodes to exactly these bytes. */
static bool stable(const uint8_t *b, size_t n)
{
    tk_op op;
    if (dec(b, n, &op) != 0) {
        return false;
    }
    static uint8_t again[TK_OP_WIRE_MAX];
    size_t len = 0;
    bool ok =
        tk_op_encode(&op, again, sizeof again, &len) == 0 && len == n && memcmp(again, b, n) == 0;
    tk_op_release(&op);
    return ok;
}

/* ---- Keys: what the header documents ---------------------------------------------- */

enum vtype { V_ENUM, V_TIME, V_HASH, V_STR, V_BIN, V_COUNT, V_U32, V_U64 };

static const struct {
    uint8_t type;
    int64_t lo, hi;
} key_type[43] = {
    [1] = {V_ENUM, TK_OP_REVOKE_TOKEN, TK_OP_TYPE_LAST},
    [2] = {V_ENUM, 1, 3},
    [3] = {V_HASH, 0, 0},
    [4] = {V_STR, 0, TK_ID_MAX},
    [5] = {V_STR, 0, TK_REASON_MAX},
    [6] = {V_TIME, 0, 0},
    [7] = {V_ENUM, 1, 3},
    [8] = {V_HASH, 0, 0},
    [9] = {V_TIME, 0, 0},
    [10] = {V_STR, 0, TK_IDP_ISS_MAX},
    [11] = {V_COUNT, 0, 0},
    [12] = {V_COUNT, 0, 0},
    [13] = {V_STR, 0, TK_ACCESS_RESOURCE_MAX},
    [14] = {V_ENUM, 1, TK_HOLD_LAST},
    [15] = {V_HASH, 0, 0},
    [16] = {V_ENUM, 1, 2},
    [17] = {V_BIN, 0, TK_RECORD_MAX},
    [18] = {V_STR, 0, TK_SUB_MAX},
    [19] = {V_HASH, 0, 0},
    [20] = {V_HASH, 0, 0},
    [21] = {V_TIME, 0, 0},
    [22] = {V_TIME, 0, 0},
    [23] = {V_STR, 0, TK_ID_MAX},
    [24] = {V_STR, 0, TK_ID_MAX},
    [25] = {V_ENUM, 1, 3},
    [26] = {V_HASH, 0, 0},
    [27] = {V_TIME, 0, 0},
    [28] = {V_STR, 0, TK_ID_MAX},
    [29] = {V_HASH, 0, 0},
    [30] = {V_HASH, 0, 0},
    [31] = {V_TIME, 0, 0},
    [32] = {V_TIME, 0, 0},
    [33] = {V_HASH, 0, 0},
    [34] = {V_HASH, 0, 0},
    [35] = {V_ENUM, 1, 1},
    [36] = {V_U32, 0, 0},
    [37] = {V_U64, 0, 0},
    [38] = {V_TIME, 0, 0},
    [39] = {V_STR, 0, TK_ACR_MAX},
    [40] = {V_STR, 0, TK_AMR_MAX},
    [41] = {V_ENUM, 1, 1},
    [42] = {V_U64, 0, 0},
};

#define K(k) (1ull << (k))
/* The kinds' keys, as the table in op.h lists them (besides 0, 1, 6). */
static const uint64_t kind_keys[TK_OP_TYPE_LAST + 1] = {
    [TK_OP_REVOKE_TOKEN] = K(3),
    [TK_OP_REVOKE_GRANT] = K(4),
    [TK_OP_SESSION_STATE] = K(2) | K(4) | K(5) | K(14),
    [TK_OP_CLIENT_STATUS] = K(2) | K(4),
    [TK_OP_AGENT_ACCESS] = K(4) | K(11) | K(12) | K(13),
    [TK_OP_IDP_EVENT] = K(2) | K(3) | K(4) | K(5) | K(7) | K(8) | K(9) | K(10) | K(14),
    [TK_OP_CLIENT_SECRET] = K(4) | K(15),
    [TK_OP_PUT_NEW] = K(4) | K(16) | K(17) | K(41),
    [TK_OP_SIGN_IN] = K(4) | K(10) | K(18) | K(19) | K(20) | K(21) | K(22) | K(23) | K(24) | K(38) |
                      K(39) | K(40),
    [TK_OP_CODE_ISSUE] = K(19) | K(23) | K(25) | K(26) | K(27) | K(28),
    [TK_OP_CODE_REDEEM] = K(26) | K(29) | K(30) | K(31) | K(32) | K(33) | K(34) | K(35),
    [TK_OP_REFRESH] = K(3) | K(29) | K(30) | K(31) | K(32) | K(33) | K(34) | K(35) | K(36) | K(37),
    [TK_OP_EXCHANGE] = K(3) | K(4) | K(29) | K(31) | K(33) | K(34) | K(37),
    [TK_OP_SSF_ACK] = K(4) | K(42),
};
/* Keys whose loss must be refused (the others are optional members). */
static const uint64_t kind_required[TK_OP_TYPE_LAST + 1] = {
    [TK_OP_PUT_NEW] = K(4) | K(16) | K(17),
    [TK_OP_SIGN_IN] = K(4) | K(18) | K(19) | K(20) | K(21) | K(22),
    [TK_OP_CODE_ISSUE] = K(19) | K(23) | K(25),
    [TK_OP_CODE_REDEEM] = K(26) | K(29) | K(31),
    [TK_OP_REFRESH] = K(3) | K(29) | K(30) | K(31) | K(32) | K(37),
    [TK_OP_EXCHANGE] = K(3) | K(4) | K(29) | K(31) | K(37),
};

/* A valid-looking value of each key's type, written into out. */
static size_t sample(unsigned key, uint8_t *out)
{
    switch (key_type[key].type) {
    case V_ENUM:
        out[0] = (uint8_t)key_type[key].lo;
        return 1;
    case V_TIME:
        out[0] = 0xce; /* uint32 AT + 100 */
        for (int i = 0; i < 4; i++) {
            out[1 + i] = (uint8_t)((AT + 100) >> (24 - 8 * i));
        }
        return 5;
    case V_HASH:
        out[0] = 0xc4;
        out[1] = TK_HASH_LEN;
        memset(out + 2, 0x42, TK_HASH_LEN);
        return 2 + TK_HASH_LEN;
    case V_STR:
        out[0] = 0xa1;
        out[1] = 'x';
        return 2;
    case V_BIN:
        out[0] = 0xc4;
        out[1] = 1;
        out[2] = 0x80;
        return 3;
    default: /* counts, window, mask */
        out[0] = 7;
        return 1;
    }
}

/* ---- Sample ops of the authorization server -------------------------------------------- */

static uint8_t client_rec[TK_RECORD_MAX], authreq_rec[TK_RECORD_MAX];
static size_t client_len, authreq_len;

static void make_records(void)
{
    tk_client_rec c = {.role = TK_ROLE_AGENT,
                       .status = TK_CLIENT_APPROVED,
                       .created = AT,
                       .redirect_uris = TK_SLICE_LIT("http://127.0.0.1:9/cb"),
                       .grant_types = 3,
                       .delegate_to = TK_SLICE_LIT("*")};
    h(0x01, c.secret_hash);
    TK_ASSERT(tk_record_encode_client(&c, client_rec, sizeof client_rec, &client_len) == 0);
    tk_authreq_rec a = {.client_id = TK_SLICE_LIT("tkc_agent"),
                        .redirect_uri = TK_SLICE_LIT("http://127.0.0.1:9/cb"),
                        .state = TK_SLICE_LIT("st"),
                        .scope = TK_SLICE_LIT("mcp:read mcp:write"),
                        .resource = TK_SLICE_LIT("https://mcp.test/mcp"),
                        .exp = AT + 600,
                        .created = AT};
    h(0xc5, a.csrf_key);
    h(0xcc, a.challenge);
    TK_ASSERT(tk_record_encode_authreq(&a, authreq_rec, sizeof authreq_rec, &authreq_len) == 0);
}

static tk_op put_new(uint8_t db, const char *key, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_PUT_NEW, at);
    op.put_new.db = db;
    TK_ASSERT(tk_op_id_set(&op.put_new.key, cstr(key)) == 0);
    op.put_new.rec = db == TK_OP_DB_CLIENT ? client_rec : authreq_rec;
    op.put_new.len = (uint16_t)(db == TK_OP_DB_CLIENT ? client_len : authreq_len);
    return op;
}

static tk_op sign_in(const char *sid, uint8_t browser, const char *request, const char *idp_sid,
                     int64_t at)
{
    tk_op op = tk_op_make(TK_OP_SIGN_IN, at);
    TK_ASSERT(tk_op_id_set(&op.sign_in.sid, cstr(sid)) == 0);
    TK_ASSERT(tk_op_sub_set(&op.sign_in.sub, TK_SLICE_LIT("alice")) == 0);
    op.sign_in.session_exp = at + 3600;
    op.sign_in.browser_exp = at + 1800;
    h(browser, op.sign_in.browser);
    h(0x5e, op.sign_in.csrf_key);
    TK_ASSERT(tk_op_id_set(&op.sign_in.request, cstr(request)) == 0);
    if (idp_sid != NULL) {
        TK_ASSERT(tk_op_iss_set(&op.sign_in.idp_iss, TK_SLICE_LIT("https://idp.example")) == 0);
        TK_ASSERT(tk_op_id_set(&op.sign_in.idp_sid, cstr(idp_sid)) == 0);
    }
    return op;
}

static tk_op code_issue(const char *request, uint8_t browser, uint8_t decision, uint8_t code,
                        const char *grant, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_CODE_ISSUE, at);
    TK_ASSERT(tk_op_id_set(&op.code_issue.request, cstr(request)) == 0);
    h(browser, op.code_issue.browser);
    op.code_issue.decision = decision;
    if (decision != TK_DECIDE_DENY) {
        h(code, op.code_issue.code);
        op.code_issue.code_exp = at + 60;
        TK_ASSERT(tk_op_id_set(&op.code_issue.grant, cstr(grant)) == 0);
    }
    return op;
}

static tk_op redeem(uint8_t code, uint8_t access, uint8_t refresh, bool bind, int64_t at)
{
    tk_op op = tk_op_make(TK_OP_CODE_REDEEM, at);
    tk_op_code_redeem *x = &op.code_redeem;
    h(code, x->code);
    h(access, x->access);
    x->access_exp = at + 300;
    if (refresh != 0) {
        x->has_refresh = true;
        h(refresh, x->refresh);
        x->refresh_exp = at + 86400;
    }
    if (bind) {
        x->has_cnf = true;
        h(0xce, x->cnf);
        x->has_jkt = true;
        h(0x1c, x->jkt);
        x->bind_refresh = refresh != 0;
    }
    return op;
}

static tk_op refresh(uint8_t old, uint8_t access, uint8_t newr, uint64_t mask, bool bind,
                     int64_t at)
{
    tk_op op = tk_op_make(TK_OP_REFRESH, at);
    tk_op_refresh *x = &op.refresh;
    h(old, x->old);
    h(access, x->access);
    h(newr, x->refresh);
    x->access_exp = at + 300;
    x->refresh_exp = at + 86400;
    x->window = 5;
    x->scope_mask = mask;
    if (bind) {
        x->has_cnf = true;
        h(0xce, x->cnf);
        x->has_jkt = true;
        h(0x1c, x->jkt);
        x->bind_refresh = true;
    }
    return op;
}

static tk_op exchange(uint8_t parent, uint8_t child, const char *client, uint64_t mask, bool bind,
                      int64_t at)
{
    tk_op op = tk_op_make(TK_OP_EXCHANGE, at);
    tk_op_exchange *x = &op.exchange;
    h(parent, x->parent);
    h(child, x->child);
    TK_ASSERT(tk_op_id_set(&x->client, cstr(client)) == 0);
    x->exp = at + 300;
    x->scope_mask = mask;
    if (bind) {
        x->has_cnf = true;
        h(0xce, x->cnf);
        x->has_jkt = true;
        h(0x1c, x->jkt);
    }
    return op;
}

/* Every authorization-server kind, with its optional members set and not. */
static size_t as_samples(tk_op *out)
{
    size_t n = 0;
    out[n++] = put_new(TK_OP_DB_CLIENT, "tkc_agent", AT);
    out[n++] = put_new(TK_OP_DB_AUTHREQ, "tka_1", AT);
    out[n] = put_new(TK_OP_DB_CLIENT, "tkm_doc", AT); /* a metadata document's client */
    out[n++].put_new.metadata = true;
    out[n++] = sign_in("tks_1", 0xb1, "tka_1", "idp-sid-1", AT);
    out[n] = sign_in("tks_2", 0xb2, "", NULL, AT);
    TK_ASSERT(tk_op_sub_set(&out[n].sign_in.sub, fill(0, TK_SUB_MAX)) == 0);
    TK_ASSERT(tk_op_id_set(&out[n++].sign_in.sid, fill(1, TK_ID_MAX)) == 0);
    out[n] = sign_in("tks_3", 0xb3, "tka_3", NULL, AT); /* an IdP issuer without its sid */
    TK_ASSERT(tk_op_iss_set(&out[n++].sign_in.idp_iss, fill(2, TK_IDP_ISS_MAX)) == 0);
    out[n] = sign_in("tks_4", 0xb4, "", "idp-sid-4", AT); /* how the user signed in upstream */
    out[n].sign_in.auth_time = AT - 30;
    TK_ASSERT(tk_op_acr_set(&out[n].sign_in.acr, TK_SLICE_LIT("urn:mace:incommon:iap:silver")) ==
              0);
    TK_ASSERT(tk_op_amr_set(&out[n++].sign_in.amr, TK_SLICE_LIT("pwd otp hwk")) == 0);
    out[n++] = code_issue("tka_1", 0xb1, TK_DECIDE_APPROVE, 0xd1, "tkg_1", AT);
    out[n++] = code_issue("tka_1", 0xb1, TK_DECIDE_GRANTED, 0xd1, "tkg_1", AT);
    out[n++] = code_issue("tka_1", 0xb1, TK_DECIDE_DENY, 0, NULL, AT);
    out[n++] = redeem(0xd1, 0xa1, 0xf1, true, AT);
    out[n++] = redeem(0xd1, 0xa1, 0, false, AT);
    out[n++] = redeem(0xd1, 0xa1, 0xf1, false, AT);
    out[n++] = refresh(0xf1, 0xa2, 0xf2, UINT64_MAX, true, AT);
    out[n] = refresh(0xf1, 0xa2, 0xf2, 5, false, AT);
    out[n++].refresh.window = 0;
    out[n] = refresh(0xf1, 0xa2, 0xf2, 1, true, AT);
    out[n].refresh.window = UINT32_MAX;
    out[n++].refresh.refresh_exp = TK_TIME_MAX;
    out[n++] = exchange(0xa2, 0xe1, "tkc_other", UINT64_MAX, true, AT);
    out[n++] = exchange(0xa2, 0xe1, "tkc_other", (uint64_t)1 << 63, false, AT);
    out[n] = tk_op_make(TK_OP_SSF_ACK, AT); /* not the AS's, but the newest kind */
    TK_ASSERT(tk_op_id_set(&out[n].ssf_ack.receiver, TK_SLICE_LIT("edge-1")) == 0);
    out[n++].ssf_ack.seq = (uint64_t)INT64_MAX;
    return n;
}

/* ---- 1. The first wire form still decodes, to the same bytes ------------------------------ */

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        TK_ASSERT(sscanf(s + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void test_old_ops_unchanged(void)
{
    /* Encodings written before this wire form grew (tests/fuzz/corpus/record). */
    static const char *const old[] = {
        "860001010504a5746b635f6106ce6afd86c00b030db268747470733a2f2f77696b692e746573742f",
        "8500010104020304ba746b635f71325739785a7234547459377550306142634465466706ce6afd8aa8",
        "850001010704ba746b635f71325739785a7234547459377550306142634465466706ce6afd86c00fc420"
        "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c",
        "8c00010106020103c4201111111111111111111111111111111111111111111111111111111111111111"
        "04a56a74692d3105b5636165703a6465766963652d636f6d706c69616e7406ce6afd86c0070208c420"
        "222222222222222222222222222222222222222222222222222222222222222209ce6afd86fc0ab36874"
        "7470733a2f2f6964702e6578616d706c650e02",
        "840001010103c420777777777777777777777777777777777777777777777777777777777777777706ce"
        "6afd8aa8",
        "8600010103020104ba746b735f486b334c6d4e38705172357354753176577832795a6106ce6afd86c00e01",
        "8700010103020204ba746b735f486b334c6d4e38705172357354753176577832795a6105b86465766963"
        "652d636f6d706c69616e63652d6368616e676506ce6afd86c00e02",
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(old); i++) {
        uint8_t b[512];
        size_t n = unhex(old[i], b);
        CHECK(stable(b, n));
    }
}

/* ---- 2. Round trips and strictness ------------------------------------------------------- */

/* What decode(encode(op)) must give: op with the members apply never reads
 * zeroed. */
static tk_op canonical(const tk_op *in)
{
    tk_op c;
    memcpy(&c, in, sizeof c); /* padding too: ops compare whole */
    if (c.type == TK_OP_CODE_ISSUE && c.code_issue.decision == TK_DECIDE_DENY) {
        memset(c.code_issue.code, 0, TK_HASH_LEN);
        c.code_issue.code_exp = 0;
        memset(&c.code_issue.grant, 0, sizeof c.code_issue.grant);
    }
    if (c.type == TK_OP_CODE_REDEEM) {
        tk_op_code_redeem *x = &c.code_redeem;
        if (!x->has_refresh) {
            memset(x->refresh, 0, TK_HASH_LEN);
            x->refresh_exp = 0;
        }
        x->bind_refresh = x->bind_refresh && x->has_jkt && x->has_refresh;
    }
    return c;
}

static bool same_op(const tk_op *a, const tk_op *b)
{
    if (a->type != TK_OP_PUT_NEW || b->type != TK_OP_PUT_NEW) {
        return memcmp(a, b, sizeof *a) == 0;
    }
    tk_op x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    bool rec =
        x.put_new.len == y.put_new.len && memcmp(x.put_new.rec, y.put_new.rec, x.put_new.len) == 0;
    x.put_new.rec = y.put_new.rec = NULL;
    return rec && memcmp(&x, &y, sizeof x) == 0;
}

static size_t encode(const tk_op *op, uint8_t *buf)
{
    size_t len = 0;
    CHECK_EQ_INT(tk_op_encode(op, buf, TK_OP_WIRE_MAX, &len), 0);
    return len;
}

static void check_roundtrip(const tk_op *op)
{
    static uint8_t buf[TK_OP_WIRE_MAX];
    size_t len = encode(op, buf);
    tk_op out, want = canonical(op);
    CHECK_EQ_INT(dec(buf, len, &out), 0);
    CHECK(same_op(&out, &want));
    if (out.type == TK_OP_PUT_NEW) {
        CHECK(out.put_new.rec != op->put_new.rec); /* the op's own copy */
    }
    tk_op_release(&out);
    CHECK(stable(buf, len));
    /* Members apply ignores do not change the bytes. */
    static uint8_t again[TK_OP_WIRE_MAX];
    CHECK(encode(&want, again) == len && memcmp(again, buf, len) == 0);
    /* Every proper prefix, and one trailing byte, are refused. */
    for (size_t n = 0; n < len; n++) {
        CHECK_EQ_INT(dec(buf, n, &out), TK_E_CORRUPT);
    }
    buf[len] = 0;
    CHECK_EQ_INT(dec(buf, len + 1, &out), TK_E_CORRUPT);
}

/* Drop each key, add each foreign key, repeat each key, give each key a
 * value of another type. */
static void check_keys(const tk_op *op)
{
    static uint8_t buf[TK_OP_WIRE_MAX], out[TK_OP_WIRE_MAX + 64];
    size_t len = encode(op, buf);
    omap m, x;
    parse(buf, len, &m);
    tk_op got;
    for (size_t k = 0; k < m.n; k++) { /* drop */
        x = m;
        unsigned key = x.e[k].key;
        x.e[k] = x.e[--x.n];
        size_t n = build(&x, out, sizeof out);
        bool required = key == 0 || key == 1 || key == 6 || (kind_required[op->type] & K(key));
        if (required) {
            CHECK_EQ_INT(dec(out, n, &got), TK_E_CORRUPT);
        } else if (dec(out, n, &got) == 0) {
            tk_op_release(&got);
            CHECK(stable(out, n));
        }
    }
    uint8_t v[64];
    for (unsigned key = 2; key <= 42; key++) { /* a foreign or absent key */
        if (find(&m, key) >= 0) {
            continue;
        }
        x = m;
        x.e[x.n++] = (entry){key, v, sample(key, v)};
        size_t n = build(&x, out, sizeof out);
        if (!(kind_keys[op->type] & K(key))) {
            if (dec(out, n, &got) != TK_E_CORRUPT) {
                fprintf(stderr, "type %u accepted key %u\n", op->type, key);
            }
            CHECK_EQ_INT(dec(out, n, &got), TK_E_CORRUPT);
        } else if (dec(out, n, &got) == 0) {
            tk_op_release(&got);
            CHECK(stable(out, n));
        }
    }
    static const uint8_t one[] = {1};
    for (unsigned key = 43; key <= 127; key++) { /* past the last key */
        x = m;
        x.e[x.n++] = (entry){key, one, 1};
        CHECK_EQ_INT(dec(out, build(&x, out, sizeof out), &got), TK_E_CORRUPT);
    }
    static const uint8_t wrong_int[] = {0xa1, 'x'}, wrong_str[] = {0x05}, nil[] = {0xc0};
    static const uint8_t wrong_hash[] = {0xa2, 'x', 'y'}, map[] = {0x80};
    for (size_t k = 0; k < m.n; k++) {
        x = m; /* twice */
        x.e[x.n++] = m.e[k];
        CHECK_EQ_INT(dec(out, build(&x, out, sizeof out), &got), TK_E_CORRUPT);
        uint8_t t = key_type[m.e[k].key].type;
        const uint8_t *w = t == V_STR                  ? wrong_str
                           : t == V_HASH || t == V_BIN ? wrong_hash
                                                       : wrong_int;
        size_t wn = t == V_STR ? 1 : t == V_HASH || t == V_BIN ? 3 : 2;
        const uint8_t *bad[] = {w, nil, map};
        size_t badn[] = {wn, 1, 1};
        for (size_t i = 0; i < 3 && m.e[k].key != 0; i++) { /* of another type */
            x = m;
            x.e[k].v = bad[i];
            x.e[k].n = badn[i];
            CHECK_EQ_INT(dec(out, build(&x, out, sizeof out), &got), TK_E_CORRUPT);
        }
    }
}

/* The value of key in the encoding of op replaced by v. */
static int with_value(const tk_op *op, unsigned key, const uint8_t *v, size_t n)
{
    static uint8_t buf[TK_OP_WIRE_MAX], out[TK_OP_WIRE_MAX + 64];
    size_t len = encode(op, buf);
    omap m;
    parse(buf, len, &m);
    int k = find(&m, key);
    if (k < 0) {
        k = (int)m.n++;
        m.e[k].key = key;
    }
    m.e[k].v = v;
    m.e[k].n = n;
    tk_op got;
    int rc = dec(out, build(&m, out, sizeof out), &got);
    if (rc == 0) {
        tk_op_release(&got);
    }
    return rc;
}

static void check_int(const tk_op *op, unsigned key, uint64_t v, int want)
{
    uint8_t b[9] = {0xcf};
    for (int i = 0; i < 8; i++) {
        b[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    }
    int rc = with_value(op, key, b, 9);
    if (rc != want) {
        fprintf(stderr, "type %u key %u value %llu: %d\n", op->type, key, (unsigned long long)v,
                rc);
    }
    CHECK_EQ_INT(rc, want);
}

static void check_neg(const tk_op *op, unsigned key)
{
    static const uint8_t m1[] = {0xff}, m2[] = {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(with_value(op, key, m1, 1), TK_E_CORRUPT);
    CHECK_EQ_INT(with_value(op, key, m2, 9), TK_E_CORRUPT);
}

static void check_hash_len(const tk_op *op, unsigned key)
{
    uint8_t b[2 + TK_HASH_LEN + 1] = {0xc4};
    memset(b + 2, 7, sizeof b - 2);
    b[1] = TK_HASH_LEN - 1;
    CHECK_EQ_INT(with_value(op, key, b, 2 + TK_HASH_LEN - 1), TK_E_CORRUPT);
    b[1] = TK_HASH_LEN + 1;
    CHECK_EQ_INT(with_value(op, key, b, 2 + TK_HASH_LEN + 1), TK_E_CORRUPT);
    b[1] = TK_HASH_LEN;
    CHECK_EQ_INT(with_value(op, key, b, 2 + TK_HASH_LEN), 0);
}

static void check_str_len(const tk_op *op, unsigned key, size_t max)
{
    static uint8_t b[3 + TK_RECORD_MAX + 1];
    b[0] = 0xda;
    b[1] = (uint8_t)((max + 1) >> 8);
    b[2] = (uint8_t)(max + 1);
    memset(b + 3, 'a', max + 1);
    CHECK_EQ_INT(with_value(op, key, b, 3 + max + 1), TK_E_CORRUPT);
    b[1] = (uint8_t)(max >> 8);
    b[2] = (uint8_t)max;
    CHECK_EQ_INT(with_value(op, key, b, 3 + max), 0);
    b[0] = 0xa0; /* present but empty */
    CHECK_EQ_INT(with_value(op, key, b, 1), TK_E_CORRUPT);
}

/* Every time key: 0 when present, past TK_TIME_MAX, negative; an expiry
 * not after at. */
static void check_time(const tk_op *op, unsigned key)
{
    check_int(op, key, 0, TK_E_CORRUPT);
    check_int(op, key, (uint64_t)TK_TIME_MAX + 1, TK_E_CORRUPT);
    check_int(op, key, (uint64_t)op->at, TK_E_CORRUPT);
    check_int(op, key, (uint64_t)op->at + 1, 0);
    check_neg(op, key);
}

static void test_as_kinds(void)
{
    tk_op s[32];
    size_t n = as_samples(s);
    for (size_t i = 0; i < n; i++) {
        check_roundtrip(&s[i]);
        check_keys(&s[i]);
    }
    bool seen[TK_OP_TYPE_LAST + 1] = {false};
    for (size_t i = 0; i < n; i++) {
        seen[s[i].type] = true;
    }
    for (unsigned t = TK_OP_PUT_NEW; t <= TK_OP_TYPE_LAST; t++) {
        CHECK(seen[t]);
    }
}

static void test_ranges(void)
{
    /* PUT_NEW: the DBI, the record's size and kind. */
    tk_op p = put_new(TK_OP_DB_CLIENT, "tkc_agent", AT);
    check_int(&p, 16, 0, TK_E_CORRUPT);
    check_int(&p, 16, 3, TK_E_CORRUPT);
    check_int(&p, 16, TK_OP_DB_AUTHREQ, TK_E_CORRUPT); /* a client record as a request */
    check_str_len(&p, 4, TK_ID_MAX);
    static uint8_t b[3 + TK_RECORD_MAX + 1];
    b[0] = 0xc5;
    b[1] = (uint8_t)((TK_RECORD_MAX + 1) >> 8);
    b[2] = (uint8_t)(TK_RECORD_MAX + 1);
    memcpy(b + 3, client_rec, client_len);
    CHECK_EQ_INT(with_value(&p, 17, b, 3 + TK_RECORD_MAX + 1), TK_E_CORRUPT);
    b[1] = 0;
    b[2] = 0;
    CHECK_EQ_INT(with_value(&p, 17, b, 3), TK_E_CORRUPT); /* empty */
    b[2] = (uint8_t)(client_len - 1);
    b[1] = (uint8_t)((client_len - 1) >> 8);
    CHECK_EQ_INT(with_value(&p, 17, b, 3 + client_len - 1), TK_E_CORRUPT); /* cut record */
    b[0] = 0xa1;                                                           /* a str, not bin */
    b[1] = 'x';
    CHECK_EQ_INT(with_value(&p, 17, b, 2), TK_E_CORRUPT);
    tk_op q = p; /* the encoder refuses what the decoder would */
    q.put_new.db = TK_OP_DB_AUTHREQ;
    size_t len;
    static uint8_t out[TK_OP_WIRE_MAX];
    CHECK_EQ_INT(tk_op_encode(&q, out, sizeof out, &len), TK_E_INVALID);
    q = put_new(TK_OP_DB_AUTHREQ, "tka_1", AT);
    q.put_new.len--;
    CHECK_EQ_INT(tk_op_encode(&q, out, sizeof out, &len), TK_E_INVALID);
    q = put_new(TK_OP_DB_AUTHREQ, "tka_1", AT);
    CHECK_EQ_INT(tk_op_encode(&q, out, 40, &len), TK_E_TOOBIG);

    /* SIGN_IN */
    tk_op si = sign_in("tks_1", 0xb1, "tka_1", "idp-sid-1", AT);
    check_time(&si, 21);
    check_time(&si, 22);
    check_hash_len(&si, 19);
    check_hash_len(&si, 20);
    check_str_len(&si, 18, TK_SUB_MAX);
    check_str_len(&si, 23, TK_ID_MAX);
    check_str_len(&si, 24, TK_ID_MAX);
    check_str_len(&si, 10, TK_IDP_ISS_MAX);
    static uint8_t drop[TK_OP_WIRE_MAX], cut[TK_OP_WIRE_MAX];
    omap m;
    parse(drop, encode(&si, drop), &m); /* an IdP sid without its issuer */
    int k = find(&m, 10);
    m.e[k] = m.e[--m.n];
    tk_op got;
    CHECK_EQ_INT(dec(cut, build(&m, cut, sizeof cut), &got), TK_E_CORRUPT);

    /* CODE_ISSUE */
    tk_op ci = code_issue("tka_1", 0xb1, TK_DECIDE_APPROVE, 0xd1, "tkg_1", AT);
    check_int(&ci, 25, 0, TK_E_CORRUPT);
    check_int(&ci, 25, 4, TK_E_CORRUPT);
    check_int(&ci, 25, TK_DECIDE_GRANTED, 0);
    check_int(&ci, 25, TK_DECIDE_DENY, TK_E_CORRUPT); /* a denial carrying a code */
    check_time(&ci, 27);
    check_hash_len(&ci, 26);
    check_str_len(&ci, 28, TK_ID_MAX);
    tk_op deny = code_issue("tka_1", 0xb1, TK_DECIDE_DENY, 0, NULL, AT);
    check_int(&deny, 25, TK_DECIDE_APPROVE, TK_E_CORRUPT); /* an approval without one */
    check_int(&deny, 27, AT + 60, TK_E_CORRUPT);

    /* CODE_REDEEM */
    tk_op r = redeem(0xd1, 0xa1, 0xf1, true, AT);
    check_time(&r, 31);
    check_time(&r, 32);
    check_int(&r, 35, 0, TK_E_CORRUPT);
    check_int(&r, 35, 2, TK_E_CORRUPT);
    for (unsigned key = 26; key <= 34; key++) {
        if (key_type[key].type == V_HASH) {
            check_hash_len(&r, key);
        }
    }
    tk_op r0 = redeem(0xd1, 0xa1, 0, true, AT); /* no refresh token: nothing to bind */
    check_int(&r0, 35, 1, TK_E_CORRUPT);
    check_int(&r0, 32, AT + 60, TK_E_CORRUPT);
    tk_op rb = redeem(0xd1, 0xa1, 0xf1, false, AT); /* no key: nothing to bind to */
    check_int(&rb, 35, 1, TK_E_CORRUPT);

    /* REFRESH */
    tk_op rf = refresh(0xf1, 0xa2, 0xf2, 3, true, AT);
    check_time(&rf, 31);
    check_time(&rf, 32);
    check_int(&rf, 36, 0, TK_E_CORRUPT);
    check_int(&rf, 36, UINT32_MAX, 0);
    check_int(&rf, 36, (uint64_t)UINT32_MAX + 1, TK_E_CORRUPT);
    check_int(&rf, 37, 0, TK_E_CORRUPT);
    check_int(&rf, 37, UINT64_MAX, 0);
    check_neg(&rf, 37);
    check_neg(&rf, 36);
    check_hash_len(&rf, 3);

    /* EXCHANGE */
    tk_op ex = exchange(0xa2, 0xe1, "tkc_other", 3, true, AT);
    check_time(&ex, 31);
    check_int(&ex, 37, 0, TK_E_CORRUPT);
    check_int(&ex, 35, 1, TK_E_CORRUPT); /* no refresh token to bind */
    check_str_len(&ex, 4, TK_ID_MAX);

    /* The common keys: at and type. */
    check_int(&ex, 6, 0, TK_E_CORRUPT);
    check_int(&ex, 6, (uint64_t)TK_TIME_MAX + 1, TK_E_CORRUPT);
    check_int(&ex, 1, TK_OP_TYPE_LAST + 1, TK_E_CORRUPT);
    check_int(&ex, 1, TK_OP_REFRESH, TK_E_CORRUPT); /* the same keys as another kind */
}

/* Hardening of tk_op_validate: a length past a member's capacity. */
static void test_validate_lengths(void)
{
    tk_op si = sign_in("tks_1", 0xb1, "tka_1", "idp-sid-1", AT);
    si.sign_in.request.len = TK_ID_MAX + 1;
    CHECK_EQ_INT(tk_op_validate(&si), TK_E_INVALID);
    si = sign_in("tks_1", 0xb1, "tka_1", "idp-sid-1", AT);
    si.sign_in.idp_sid.len = TK_ID_MAX + 1;
    CHECK_EQ_INT(tk_op_validate(&si), TK_E_INVALID);
    si = sign_in("tks_1", 0xb1, "tka_1", "idp-sid-1", AT);
    si.sign_in.idp_iss.len = TK_IDP_ISS_MAX + 1;
    CHECK_EQ_INT(tk_op_validate(&si), TK_E_INVALID);
    tk_op z = tk_op_make(TK_OP_PUT_NEW, AT);
    tk_op_release(&z); /* owns nothing */
    CHECK(z.put_new.rec == NULL);
}

/* ---- 3. Determinism --------------------------------------------------------------------- */

typedef struct node {
    char dir[64];
    tk_store *st;
} node;

static void node_open(node *n)
{
    strcpy(n->dir, "/tmp/tk_op_XXXXXX");
    TK_ASSERT(mkdtemp(n->dir) != NULL);
    tk_store_opts o = {.dir = n->dir, .map_size = 64 << 20};
    TK_ASSERT(tk_store_open(&o, &n->st) == 0);
}

static void node_reopen(node *n)
{
    tk_store_opts o = {.dir = n->dir, .map_size = 64 << 20};
    TK_ASSERT(tk_store_open(&o, &n->st) == 0);
}

static void node_remove(node *n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", n->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", n->dir);
    unlink(p);
    rmdir(n->dir);
}

/* The mixed sequence: every kind, with the outcomes that make it worth
 * replaying (a race lost, a replay, a reuse inside and outside the window,
 * an IdP event twice). */
static size_t sequence(tk_op *s)
{
    size_t n = 0;
    int64_t t = AT;
    s[n++] = put_new(TK_OP_DB_CLIENT, "tkc_agent", t);
    s[n++] = put_new(TK_OP_DB_CLIENT, "tkc_other", t);
    s[n++] = put_new(TK_OP_DB_CLIENT, "tkc_agent", t); /* exists: INVALID */
    s[n++] = put_new(TK_OP_DB_AUTHREQ, "tka_1", t);
    s[n++] = sign_in("tks_1", 0xb1, "tka_1", "idp-sid-1", t + 1);
    s[n++] = code_issue("tka_1", 0xb1, TK_DECIDE_APPROVE, 0xd1, "tkg_1", t + 2);
    s[n++] = redeem(0xd1, 0xa1, 0xf1, true, t + 3);
    s[n++] = refresh(0xf1, 0xa2, 0xf2, 1, true, t + 4);
    s[n++] = refresh(0xf1, 0xa3, 0xf3, UINT64_MAX, false, t + 6); /* in the window: sibling */
    s[n++] = exchange(0xa2, 0xe1, "tkc_other", UINT64_MAX, true, t + 7);
    s[n++] = put_new(TK_OP_DB_AUTHREQ, "tka_2", t + 8);
    s[n++] = sign_in("tks_2", 0xb2, "tka_2", NULL, t + 8);
    s[n++] = code_issue("tka_2", 0xb2, TK_DECIDE_DENY, 0, NULL, t + 9);
    s[n++] = put_new(TK_OP_DB_AUTHREQ, "tka_3", t + 10);
    s[n++] = sign_in("tks_1", 0xb1, "tka_3", "idp-sid-1", t + 10); /* binds only */
    s[n++] = code_issue("tka_3", 0xb1, TK_DECIDE_GRANTED, 0xd3, "tkg_unused", t + 11);
    s[n++] = redeem(0xd3, 0xa4, 0, false, t + 12);
    s[n++] = redeem(0xd1, 0xa5, 0xf5, false, t + 13); /* used code: REPLAYED */
    tk_op op = tk_op_make(TK_OP_AGENT_ACCESS, t + 14);
    TK_ASSERT(tk_op_id_set(&op.agent_access.client, TK_SLICE_LIT("tkc_agent")) == 0);
    TK_ASSERT(tk_op_resource_set(&op.agent_access.resource, TK_SLICE_LIT("https://r")) == 0);
    op.agent_access.allowed = 3;
    op.agent_access.denied = 1;
    s[n++] = op;
    op.at = t + 15;
    s[n++] = op;
    op = tk_op_make(TK_OP_REVOKE_TOKEN, t + 16);
    h(0xa3, op.revoke_token.hash);
    s[n++] = op;
    op = tk_op_make(TK_OP_SESSION_STATE, t + 17);
    TK_ASSERT(tk_op_id_set(&op.session.sid, TK_SLICE_LIT("tks_2")) == 0);
    op.session.state = TK_SESSION_SUSPENDED;
    op.session.hold = TK_HOLD_ADMIN;
    TK_ASSERT(tk_op_reason_set(&op.session.reason, TK_SLICE_LIT("review")) == 0);
    s[n++] = op;
    op.at = t + 18;
    op.session.state = TK_SESSION_ACTIVE;
    s[n++] = op;
    op = tk_op_make(TK_OP_IDP_EVENT, t + 19);
    tk_op_idp_event *e = &op.idp_event;
    tk_store_idp_key(TK_IDP_KEY_SID, TK_SLICE_LIT("https://idp.example"), TK_SLICE_LIT("idp-sid-1"),
                     e->match);
    e->state = TK_SESSION_SUSPENDED;
    e->hold = TK_HOLD_DEVICE;
    e->source = TK_SOURCE_SSF;
    TK_ASSERT(tk_op_id_set(&e->event_id, TK_SLICE_LIT("jti-1")) == 0);
    TK_ASSERT(tk_op_iss_set(&e->iss, TK_SLICE_LIT("https://idp.example")) == 0);
    e->until = t + 600;
    s[n++] = op;
    op.at = t + 20; /* the same event again: its replay record says no */
    s[n++] = op;
    op = tk_op_make(TK_OP_CLIENT_SECRET, t + 21);
    TK_ASSERT(tk_op_id_set(&op.client_secret.client, TK_SLICE_LIT("tkc_agent")) == 0);
    h(0x77, op.client_secret.secret_hash);
    s[n++] = op;
    op = tk_op_make(TK_OP_CLIENT_STATUS, t + 22);
    TK_ASSERT(tk_op_id_set(&op.client_status.client, TK_SLICE_LIT("tkc_other")) == 0);
    op.client_status.status = TK_CLIENT_DISABLED;
    s[n++] = op;
    s[n++] = refresh(0xf2, 0xa6, 0xf6, 1, true, t + 23);   /* the session is suspended */
    s[n++] = refresh(0xf1, 0xa7, 0xf7, 1, false, t + 100); /* reuse after the window */
    op = tk_op_make(TK_OP_REVOKE_GRANT, t + 101);
    TK_ASSERT(tk_op_id_set(&op.revoke_grant.grant, TK_SLICE_LIT("tkg_1")) == 0);
    s[n++] = op;
    op = tk_op_make(TK_OP_IDP_EVENT, t + 102); /* terminate by (issuer, sub) */
    tk_store_idp_key(TK_IDP_KEY_SUB, TK_SLICE_LIT("https://idp.example"), TK_SLICE_LIT("alice"),
                     op.idp_event.match);
    op.idp_event.state = TK_SESSION_TERMINATED;
    op.idp_event.source = TK_SOURCE_BACKCHANNEL;
    TK_ASSERT(tk_op_id_set(&op.idp_event.event_id, TK_SLICE_LIT("jti-2")) == 0);
    TK_ASSERT(tk_op_iss_set(&op.idp_event.iss, TK_SLICE_LIT("https://idp.example")) == 0);
    op.idp_event.until = t + 700;
    s[n++] = op;
    op = tk_op_make(TK_OP_SSF_ACK, t + 103); /* no such receiver: changes nothing */
    TK_ASSERT(tk_op_id_set(&op.ssf_ack.receiver, TK_SLICE_LIT("edge-1")) == 0);
    op.ssf_ack.seq = 7;
    s[n++] = op;
    bool kinds[TK_OP_TYPE_LAST + 1] = {false};
    for (size_t i = 0; i < n; i++) {
        kinds[s[i].type] = true;
    }
    for (unsigned k = 1; k <= TK_OP_TYPE_LAST; k++) {
        TK_ASSERT(kinds[k]); /* every kind is in the sequence */
    }
    return n;
}

/* Through the wire: what the other node would receive. */
static tk_op wire(const tk_op *op)
{
    static uint8_t buf[TK_OP_WIRE_MAX];
    size_t len = encode(op, buf);
    tk_op out;
    CHECK_EQ_INT(tk_op_decode(buf, len, &out), 0);
    return out;
}

/* Node A: one op per write txn, applied directly; with twice, every op
 * but AGENT_ACCESS (the one counter, record.h) a second time in its own
 * txn, as a log delivered twice would. */
static void apply_direct(node *a, const tk_op *s, size_t n, uint8_t *outcomes, bool twice)
{
    for (size_t i = 0; i < n; i++) {
        tk_op op = wire(&s[i]);
        unsigned times = twice && op.type != TK_OP_AGENT_ACCESS ? 2 : 1;
        for (unsigned k = 0; k < times; k++) {
            tk_txn *w;
            TK_ASSERT(tk_store_write_begin(a->st, &w) == 0);
            bool ch = false;
            uint8_t out = 0;
            CHECK_EQ_INT(tk_store_apply_outcome(w, &op, &ch, &out), 0);
            TK_ASSERT(tk_store_commit(w) == 0);
            if (k == 0) {
                outcomes[i] = out;
            } else if (op.type >= TK_OP_CODE_REDEEM) { /* issuing ops answer as before */
                CHECK_EQ_INT(out, outcomes[i]);
            }
        }
        tk_op_release(&op);
    }
}

/* Node B: through the committer, all submitted at once (group commit; the
 * committer frees each decoded PUT_NEW's record). */
static void apply_committer(node *b, const tk_op *s, size_t n, uint8_t *outcomes)
{
    tk_committer *c;
    TK_ASSERT(tk_committer_start(b->st, 1, 64, &c) == 0);
    for (size_t i = 0; i < n; i++) {
        tk_commit_req r = {.worker = 0, .cookie = i, .nops = 1};
        r.ops[0] = wire(&s[i]);
        TK_ASSERT(tk_committer_submit(c, &r) == 0);
    }
    size_t got = 0;
    tk_commit_done d[64];
    for (int i = 0; i < 500 && got < n; i++) {
        struct pollfd p = {.fd = tk_committer_event_fd(c, 0), .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            uint64_t v;
            TK_ASSERT(read(p.fd, &v, sizeof v) == (ssize_t)sizeof v);
        }
        got += tk_committer_drain(c, 0, d + got, 64 - got);
    }
    tk_committer_stop(c);
    CHECK_EQ_INT(got, n);
    for (size_t i = 0; i < got; i++) {
        CHECK_EQ_INT(d[i].result, 0);
        outcomes[d[i].cookie] = d[i].outcome;
    }
}

typedef struct raw {
    MDB_env *env;
    MDB_txn *txn;
} raw;

static void raw_open(raw *r, const char *dir)
{
    TK_ASSERT(mdb_env_create(&r->env) == 0);
    TK_ASSERT(mdb_env_set_maxdbs(r->env, 64) == 0);
    TK_ASSERT(mdb_env_open(r->env, dir, MDB_RDONLY, 0600) == 0);
    TK_ASSERT(mdb_txn_begin(r->env, NULL, MDB_RDONLY, &r->txn) == 0);
}

static void raw_close(raw *r)
{
    mdb_txn_abort(r->txn);
    mdb_env_close(r->env);
}

static bool quiet; /* a difference is expected: do not print it */

static void dump(const char *what, const MDB_val *v)
{
    if (quiet) {
        return;
    }
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < v->mv_size; i++) {
        fprintf(stderr, "%02x", ((const uint8_t *)v->mv_data)[i]);
    }
    fprintf(stderr, "\n");
}

/* Walk one DBI of both stores in step; returns how many entries matched,
 * or -1 at the first difference. */
static long same_dbi(raw *a, raw *b, const char *name)
{
    MDB_dbi da, db;
    TK_ASSERT(mdb_dbi_open(a->txn, name, 0, &da) == 0);
    if (mdb_dbi_open(b->txn, name, 0, &db) != 0) {
        return -1;
    }
    MDB_cursor *ca, *cb;
    TK_ASSERT(mdb_cursor_open(a->txn, da, &ca) == 0);
    TK_ASSERT(mdb_cursor_open(b->txn, db, &cb) == 0);
    MDB_val ka, va, kb, vb;
    long n = 0;
    int ra = mdb_cursor_get(ca, &ka, &va, MDB_FIRST), rb = mdb_cursor_get(cb, &kb, &vb, MDB_FIRST);
    while (ra == 0 && rb == 0) {
        if (ka.mv_size != kb.mv_size || va.mv_size != vb.mv_size ||
            memcmp(ka.mv_data, kb.mv_data, ka.mv_size) != 0 ||
            memcmp(va.mv_data, vb.mv_data, va.mv_size) != 0) {
            if (!quiet) {
                fprintf(stderr, "dbi %s differs at entry %ld\n", name, n);
            }
            dump("a key", &ka);
            dump("a value", &va);
            dump("b key", &kb);
            dump("b value", &vb);
            n = -1;
            break;
        }
        n++;
        ra = mdb_cursor_get(ca, &ka, &va, MDB_NEXT);
        rb = mdb_cursor_get(cb, &kb, &vb, MDB_NEXT);
    }
    if (n >= 0 && (ra != MDB_NOTFOUND || rb != MDB_NOTFOUND)) {
        fprintf(stderr, "dbi %s: one store has more entries\n", name);
        n = -1;
    }
    mdb_cursor_close(ca);
    mdb_cursor_close(cb);
    return n;
}

/* Every DBI of a equals b's, and b has no other; *filled counts the
 * non-empty ones. */
static bool same_stores(const char *dir_a, const char *dir_b, unsigned *filled)
{
    raw a, b;
    raw_open(&a, dir_a);
    raw_open(&b, dir_b);
    /* The main DB lists the DBIs by name (its values are page numbers,
     * which depend on how the writes were grouped into txns). */
    MDB_dbi ma, mb;
    TK_ASSERT(mdb_dbi_open(a.txn, NULL, 0, &ma) == 0);
    TK_ASSERT(mdb_dbi_open(b.txn, NULL, 0, &mb) == 0);
    MDB_cursor *cur, *cur_b;
    TK_ASSERT(mdb_cursor_open(a.txn, ma, &cur) == 0);
    TK_ASSERT(mdb_cursor_open(b.txn, mb, &cur_b) == 0);
    MDB_val k, v, kb, vb;
    *filled = 0;
    bool same = true;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    int rcb = mdb_cursor_get(cur_b, &kb, &vb, MDB_FIRST);
    for (; rc == 0 && rcb == 0 && same; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT),
                                        rcb = mdb_cursor_get(cur_b, &kb, &vb, MDB_NEXT)) {
        char name[64];
        TK_ASSERT(k.mv_size < sizeof name);
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        long n = kb.mv_size == k.mv_size && memcmp(kb.mv_data, k.mv_data, k.mv_size) == 0
                     ? same_dbi(&a, &b, name)
                     : -1;
        same = n >= 0;
        *filled += n > 0 ? 1u : 0u;
    }
    same = same && rc == MDB_NOTFOUND && rcb == MDB_NOTFOUND;
    mdb_cursor_close(cur);
    mdb_cursor_close(cur_b);
    raw_close(&a);
    raw_close(&b);
    return same;
}

static void test_determinism(void)
{
    static tk_op s[64];
    size_t n = sequence(s);
    node a, b;
    node_open(&a);
    node_open(&b);
    uint8_t out_a[64] = {0}, out_b[64] = {0};
    apply_direct(&a, s, n, out_a, false);
    sleep(1); /* a decision taken from the wall clock would show */
    apply_committer(&b, s, n, out_b);
    CHECK(memcmp(out_a, out_b, n) == 0);
    /* The sequence did what it is there for. */
    CHECK_EQ_INT(out_a[2], TK_OUT_INVALID); /* a second PUT_NEW of one key */
    CHECK_EQ_INT(out_a[6], TK_OUT_OK);      /* redeemed */
    CHECK_EQ_INT(out_a[8], TK_OUT_OK);      /* sibling inside the window */
    CHECK_EQ_INT(out_a[9], TK_OUT_OK);      /* exchanged */
    CHECK_EQ_INT(out_a[12], TK_OUT_OK);     /* denied */
    CHECK_EQ_INT(out_a[16], TK_OUT_OK);     /* granted by the consent */
    CHECK_EQ_INT(out_a[17], TK_OUT_REPLAYED);
    CHECK_EQ_INT(out_a[n - 4], TK_OUT_REPLAYED); /* reuse after the window */
    tk_store_close(a.st);
    tk_store_close(b.st);
    unsigned filled = 0;
    CHECK(same_stores(a.dir, b.dir, &filled));
    fprintf(stderr, "%u DBIs compared non-empty\n", filled);
    CHECK(filled >= 16); /* the sequence writes to every DBI */

    /* Idempotent: every op applied twice (AGENT_ACCESS once) gives the
     * same store. */
    node c;
    node_open(&c);
    uint8_t out_c[64] = {0};
    apply_direct(&c, s, n, out_c, true);
    CHECK(memcmp(out_a, out_c, n) == 0);
    tk_store_close(c.st);
    CHECK(same_stores(a.dir, c.dir, &filled));
    node_remove(&c);

    /* The comparison can fail: one more op on b only. */
    node_reopen(&b);
    tk_op extra = tk_op_make(TK_OP_REVOKE_TOKEN, AT + 200);
    h(0xa4, extra.revoke_token.hash);
    tk_txn *w;
    TK_ASSERT(tk_store_write_begin(b.st, &w) == 0);
    TK_ASSERT(tk_store_apply(w, &extra, NULL) == 0);
    TK_ASSERT(tk_store_commit(w) == 0);
    tk_store_close(b.st);
    quiet = true;
    CHECK(!same_stores(a.dir, b.dir, &filled));
    quiet = false;
    node_remove(&a);
    node_remove(&b);
}

int main(void)
{
    make_records();
    RUN(test_old_ops_unchanged);
    RUN(test_as_kinds);
    RUN(test_ranges);
    RUN(test_validate_lengths);
    RUN(test_determinism);
    return check_report();
}
