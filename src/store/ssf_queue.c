/*
 * The SSF transmitter's durable queues (ssf DBI): the receivers tokend
 * pushes security events to, and per receiver the events not yet delivered.
 *
 * The one idea: an event is queued in the write txn of the change it
 * reports (tk_store_ssf_note, called by the op appliers), so a committed
 * change always has its events queued and a crash loses none; an event
 * leaves its queue only through TK_OP_SSF_ACK, after its receiver answered
 * 2xx. Delivery is therefore at-least-once, in queue order.
 *
 * Keys (one DBI, three kinds told apart by the first byte):
 *   'Q' len id seq  → tk_ssf_event_rec   (len: 1 byte; seq: 8 bytes big-endian)
 *   'R' id          → tk_ssf_receiver_rec
 *   'S'             → the last sequence used (8 bytes big-endian)
 * The sequence is global and never reused, so an ack (which names one
 * sequence) can never delete an event other than the one it acknowledges,
 * even after a receiver was removed and added again. A full queue does not
 * refuse the change (a receiver that is down must never block a
 * revocation): it queues one OVERFLOW event, which tells the receiver to
 * drop every cached answer, and counts what it did not queue.
 */
#include <string.h>

#include "store_int.h"
#include "tokend/log.h"

#define QKEY_MAX (2 + TK_SSF_ID_MAX + 8)
#define SEQ_KEY  "S"

bool tk_store_ssf_id_ok(tk_slice id)
{
    if (id.len == 0 || id.len > TK_SSF_ID_MAX || id.p == NULL) {
        return false;
    }
    for (size_t i = 0; i < id.len; i++) { /* bounded by TK_SSF_ID_MAX */
        char c = id.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* ---- Keys ---------------------------------------------------------------------- */

static size_t qkey(tk_slice id, uint64_t seq, uint8_t out[QKEY_MAX])
{
    TK_ASSERT(id.len > 0 && id.len <= TK_SSF_ID_MAX);
    out[0] = 'Q';
    out[1] = (uint8_t)id.len;
    memcpy(out + 2, id.p, id.len);
    for (int i = 0; i < 8; i++) {
        out[2 + id.len + (size_t)i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    return 2 + id.len + 8;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static size_t rkey(tk_slice id, uint8_t out[1 + TK_SSF_ID_MAX])
{
    TK_ASSERT(id.len > 0 && id.len <= TK_SSF_ID_MAX);
    out[0] = 'R';
    memcpy(out + 1, id.p, id.len);
    return 1 + id.len;
}

/* ---- Raw helpers ------------------------------------------------------------------ */

static int del_key(tk_txn *t, const uint8_t *key, size_t len)
{
    TK_ASSERT(t->write);
    if (t->failed != 0) {
        return t->failed;
    }
    MDB_val k = val_of(key, len);
    int rc = mdb_del(t->txn, t->st->dbi[DB_SSF], &k, NULL);
    if (rc == MDB_NOTFOUND) {
        return TK_E_NOTFOUND;
    }
    if (rc != 0) {
        t->failed = tk_store_err(rc, "ssf_del");
        return t->failed;
    }
    return 0;
}

static int get_receiver(tk_txn *t, tk_slice id, tk_ssf_receiver_rec *out)
{
    uint8_t kb[1 + TK_SSF_ID_MAX];
    MDB_val k = val_of(kb, rkey(id, kb)), v;
    int rc = tk_store_raw_get(t, DB_SSF, &k, &v);
    if (rc == 0 && tk_record_decode_ssf_receiver(v.mv_data, v.mv_size, out) != 0) {
        tk_store_log_corrupt_id("ssf", id);
        return TK_E_CORRUPT;
    }
    return rc;
}

/* Encode first, put second: rec's slices may point into the page the put
 * rewrites. */
static int put_receiver(tk_txn *t, tk_slice id, const tk_ssf_receiver_rec *rec, unsigned flags)
{
    uint8_t buf[TK_RECORD_MAX], kb[1 + TK_SSF_ID_MAX];
    size_t len;
    int rc = tk_record_encode_ssf_receiver(rec, buf, sizeof buf, &len);
    if (rc != 0) {
        return rc;
    }
    return tk_store_raw_put(t, DB_SSF, (tk_slice){(const char *)kb, rkey(id, kb)}, buf, len, flags);
}

/* ---- Receivers -------------------------------------------------------------------- */

int tk_store_ssf_receiver_get(tk_txn *txn, tk_slice id, tk_ssf_receiver_rec *out)
{
    if (!tk_store_ssf_id_ok(id)) {
        return TK_E_INVALID;
    }
    return get_receiver(txn, id, out);
}

typedef struct count_ctx {
    unsigned n;
} count_ctx;

static int count_one(void *arg, tk_slice id, const tk_ssf_receiver_rec *rec)
{
    (void)id;
    (void)rec;
    ((count_ctx *)arg)->n++;
    return 0;
}

int tk_store_ssf_receiver_put(tk_txn *txn, tk_slice id, const tk_ssf_receiver_rec *rec)
{
    if (!tk_store_ssf_id_ok(id) || rec->depth != 0 || rec->dropped != 0 || rec->overflowed != 0 ||
        (rec->want & ~TK_SSF_WANT_ALL) != 0) {
        return TK_E_INVALID;
    }
    tk_ssf_receiver_rec old;
    int rc = get_receiver(txn, id, &old);
    if (rc == TK_E_NOTFOUND) {
        count_ctx cc = {0};
        rc = tk_store_ssf_each_receiver(txn, count_one, &cc);
        if (rc == 0 && cc.n >= TK_SSF_RECEIVERS_MAX) {
            return TK_E_TOOBIG;
        }
        return rc != 0 ? rc : put_receiver(txn, id, rec, 0);
    }
    if (rc != 0) {
        return rc;
    }
    /* Replacing a registration keeps its queue and counters. */
    tk_ssf_receiver_rec r = *rec;
    r.depth = old.depth;
    r.dropped = old.dropped;
    r.overflowed = old.overflowed;
    return put_receiver(txn, id, &r, 0);
}

int tk_store_ssf_each_receiver(tk_txn *txn, tk_ssf_receiver_fn fn, void *arg)
{
    MDB_cursor *cur;
    size_t entries;
    int rc = tk_store_raw_cursor(txn, DB_SSF, &cur, &entries);
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    uint8_t first = 'R';
    MDB_val k = val_of(&first, 1), v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    /* Bounded: at most TK_SSF_RECEIVERS_MAX are ever registered. */
    for (unsigned i = 0; i <= TK_SSF_RECEIVERS_MAX && mrc == 0 && rc == 0; i++) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < 2 || kp[0] != 'R') {
            break;
        }
        tk_slice id = {(const char *)kp + 1, k.mv_size - 1};
        tk_ssf_receiver_rec r;
        if (!tk_store_ssf_id_ok(id) ||
            tk_record_decode_ssf_receiver(v.mv_data, v.mv_size, &r) != 0) {
            tk_log_error("store_corrupt", "dbi=ssf key=receiver");
            rc = TK_E_CORRUPT;
            break;
        }
        rc = fn(arg, id, &r);
        if (rc == 0) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = tk_store_err(mrc, "ssf_cursor");
    }
    return rc;
}

int tk_store_ssf_receiver_remove(tk_txn *txn, tk_slice id, uint64_t *events_out)
{
    *events_out = 0;
    if (!tk_store_ssf_id_ok(id)) {
        return TK_E_INVALID;
    }
    uint8_t kb[1 + TK_SSF_ID_MAX];
    int rc = del_key(txn, kb, rkey(id, kb));
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur;
    size_t entries;
    rc = tk_store_raw_cursor(txn, DB_SSF, &cur, &entries);
    if (rc != 0) {
        return rc;
    }
    uint8_t qb[QKEY_MAX];
    size_t plen = qkey(id, 0, qb) - 8;
    MDB_val k = val_of(qb, plen), v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (size_t i = 0; i < entries && mrc == 0; i++) { /* bounded by the DBI's size */
        if (k.mv_size != plen + 8 || memcmp(k.mv_data, qb, plen) != 0) {
            break;
        }
        mrc = mdb_cursor_del(cur, 0);
        if (mrc == 0) {
            ++*events_out;
            k = val_of(qb, plen);
            mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        txn->failed = tk_store_err(mrc, "ssf_remove");
        return txn->failed;
    }
    return 0;
}

/* ---- Queue ------------------------------------------------------------------------ */

int tk_store_ssf_next(tk_txn *txn, tk_slice id, uint64_t after, uint64_t *seq_out,
                      tk_ssf_event_rec *out)
{
    if (!tk_store_ssf_id_ok(id) || after >= (uint64_t)INT64_MAX) {
        return TK_E_INVALID;
    }
    MDB_cursor *cur;
    size_t entries;
    int rc = tk_store_raw_cursor(txn, DB_SSF, &cur, &entries);
    if (rc != 0) {
        return rc;
    }
    uint8_t qb[QKEY_MAX];
    size_t klen = qkey(id, after + 1, qb);
    MDB_val k = val_of(qb, klen), v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND ||
        (mrc == 0 && (k.mv_size != klen || memcmp(k.mv_data, qb, klen - 8) != 0))) {
        rc = TK_E_NOTFOUND;
    } else if (mrc != 0) {
        rc = tk_store_err(mrc, "ssf_next");
    } else if (tk_record_decode_ssf_event(v.mv_data, v.mv_size, out) != 0) {
        tk_store_log_corrupt_id("ssf", id);
        rc = TK_E_CORRUPT;
    } else {
        *seq_out = be64((const uint8_t *)k.mv_data + klen - 8);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* The next global sequence (written back in this txn). */
static int next_seq(tk_txn *txn, uint64_t *out)
{
    MDB_val k = val_of(SEQ_KEY, 1), v;
    uint64_t seq = 0;
    int rc = tk_store_raw_get(txn, DB_SSF, &k, &v);
    if (rc == 0 && v.mv_size == 8) {
        seq = be64(v.mv_data);
    } else if (rc == 0) {
        tk_log_error("store_corrupt", "dbi=ssf key=sequence");
        return TK_E_CORRUPT;
    } else if (rc != TK_E_NOTFOUND) {
        return rc;
    }
    if (seq >= (uint64_t)INT64_MAX) {
        return TK_E_INVALID; /* 2^63 events: never */
    }
    seq++;
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    *out = seq;
    return tk_store_raw_put(txn, DB_SSF, (tk_slice){SEQ_KEY, 1}, b, sizeof b, 0);
}

/* Queue ev (or, the queue being full, the OVERFLOW event) for receiver id. */
static int append_one(tk_txn *txn, tk_slice id, uint64_t seq, const tk_ssf_event_rec *ev)
{
    tk_ssf_receiver_rec r;
    int rc = get_receiver(txn, id, &r);
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc;
    }
    tk_ssf_event_rec e = *ev;
    bool queue = true;
    if (r.overflowed) {
        queue = false; /* the queued OVERFLOW event covers this one */
        r.dropped = r.dropped < INT64_MAX ? r.dropped + 1 : r.dropped;
    } else if (r.depth >= r.queue_max) {
        e = (tk_ssf_event_rec){.kind = TK_SSF_OVERFLOW, .at = ev->at};
        r.overflowed = 1;
        r.dropped = r.dropped < INT64_MAX ? r.dropped + 1 : r.dropped;
        tk_log_warn("ssf_queue_full",
                    "receiver=%.*s depth=%lld note=\"an overflow event is queued: the receiver "
                    "must drop every cached answer\"",
                    (int)id.len, id.p, (long long)r.depth);
    }
    uint8_t rb[TK_RECORD_MAX], eb[TK_RECORD_MAX], qb[QKEY_MAX];
    size_t rlen, elen = 0;
    r.depth += queue ? 1 : 0;
    rc = tk_record_encode_ssf_receiver(&r, rb, sizeof rb, &rlen);
    if (rc == 0 && queue) {
        rc = tk_record_encode_ssf_event(&e, eb, sizeof eb, &elen);
    }
    if (rc == 0 && queue) {
        rc = tk_store_raw_put(txn, DB_SSF, (tk_slice){(const char *)qb, qkey(id, seq, qb)}, eb,
                              elen, 0);
    }
    uint8_t kb[1 + TK_SSF_ID_MAX];
    return rc != 0 ? rc
                   : tk_store_raw_put(txn, DB_SSF, (tk_slice){(const char *)kb, rkey(id, kb)}, rb,
                                      rlen, 0);
}

typedef struct interest {
    unsigned n;
    uint8_t kind;
    char ids[TK_SSF_RECEIVERS_MAX][TK_SSF_ID_MAX];
    size_t lens[TK_SSF_RECEIVERS_MAX];
} interest;

static int collect(void *arg, tk_slice id, const tk_ssf_receiver_rec *rec)
{
    interest *in = arg;
    if ((rec->want & TK_SSF_BIT(in->kind)) == 0 || in->n >= TK_SSF_RECEIVERS_MAX) {
        return 0;
    }
    memcpy(in->ids[in->n], id.p, id.len); /* the writes below may move pages */
    in->lens[in->n++] = id.len;
    return 0;
}

/* Whose sub a revoked grant names, read in the txn of the revocation: the
 * session may be gone by the time the event is pushed. A grant made for a
 * session (tokenctl token issue) has its sid: the issuer is that session's
 * (the IdP's; empty for a session without one, which the SET names as
 * tokend's own). A consent grant (the authorization server's) spans the
 * user's sessions and keeps none: it is the grant of a user without an IdP
 * when the consent key without an issuer leads to it. *iss is copied into
 * buf. TK_E_NOTFOUND when the issuer cannot be told (the session is
 * missing, or a consent made at an IdP). */
static int grant_issuer(tk_txn *txn, tk_slice grant, char *buf, size_t cap, tk_slice *iss)
{
    tk_grant_rec g;
    int rc = tk_store_get_grant(txn, grant, &g);
    if (rc == 0 && g.iss.len > 0) { /* recorded at consent (grant key 9) */
        *iss = tk_store_keep(g.iss, buf, cap);
        return 0;
    }
    if (rc == 0 && g.sid.len > 0) {
        tk_session_rec s;
        rc = tk_store_get_session(txn, g.sid, &s);
        *iss = rc == 0 ? tk_store_keep(s.issuer, buf, cap) : TK_SLICE_NULL;
        return rc;
    }
    if (rc != 0) {
        return rc;
    }
    _Static_assert(TK_SUB_MAX <= TK_AUD_MAX && TK_ID_MAX <= TK_AUD_MAX, "a consent key's parts");
    uint8_t key[TK_HASH_LEN];
    tk_slice found;
    tk_store_consent_key(TK_SLICE_NULL, g.sub, g.client_id, g.resource, key);
    rc = tk_store_get_consent(txn, key, &found);
    *iss = TK_SLICE_NULL;
    return rc == 0 && !tk_slice_eq(found, grant) ? TK_E_NOTFOUND : rc;
}

int tk_store_ssf_note(tk_txn *txn, const tk_ssf_event_rec *ev)
{
    TK_ASSERT(txn->write);
    TK_ASSERT(ev->kind >= TK_SSF_SESSION_REVOKED && ev->kind < TK_SSF_OVERFLOW);
    interest in = {.kind = ev->kind};
    int rc = tk_store_ssf_each_receiver(txn, collect, &in);
    if (rc != 0 || in.n == 0) {
        return rc; /* the common case: nobody listens, one lookup */
    }
    /* ev's slices may point into the map: copied before anything is written. */
    char id[TK_ID_MAX], sub[TK_SUB_MAX], client[TK_ID_MAX], reason[TK_REASON_MAX];
    char iss[TK_URL_MAX];
    tk_ssf_event_rec e = *ev;
    e.id = tk_store_keep(ev->id, id, sizeof id);
    e.sub = tk_store_keep(ev->sub, sub, sizeof sub);
    e.client = tk_store_keep(ev->client, client, sizeof client);
    e.reason = tk_store_keep(ev->reason, reason, sizeof reason);
    e.iss = tk_store_keep(ev->iss, iss, sizeof iss);
    if (e.kind == TK_SSF_GRANT_REVOKED && e.iss.len == 0 && e.sub.len > 0) {
        rc = grant_issuer(txn, e.id, iss, sizeof iss, &e.iss);
        if (rc == TK_E_NOTFOUND || rc == TK_E_CORRUPT) {
            /* Whose sub it is cannot be told: the subject names the client
             * alone, which covers every answer the grant's tokens can have
             * (rather than a guessed issuer, or a refused revocation). */
            e.sub = TK_SLICE_NULL;
            rc = 0;
        }
    }
    uint64_t seq = 0;
    rc = rc != 0 ? rc : next_seq(txn, &seq);
    for (unsigned i = 0; i < in.n && rc == 0; i++) {
        rc = append_one(txn, (tk_slice){in.ids[i], in.lens[i]}, seq, &e);
    }
    return rc;
}

int tk_store_ssf_ack(tk_txn *txn, tk_slice id, uint64_t seq, bool *changed)
{
    *changed = false;
    uint8_t qb[QKEY_MAX];
    size_t klen = qkey(id, seq, qb);
    MDB_val k = val_of(qb, klen), v;
    int rc = tk_store_raw_get(txn, DB_SSF, &k, &v);
    if (rc != 0) {
        return rc == TK_E_NOTFOUND ? 0 : rc; /* delivered and acknowledged before */
    }
    tk_ssf_event_rec e;
    if (tk_record_decode_ssf_event(v.mv_data, v.mv_size, &e) != 0) {
        tk_store_log_corrupt_id("ssf", id);
        return TK_E_CORRUPT;
    }
    tk_ssf_receiver_rec r;
    rc = get_receiver(txn, id, &r);
    uint8_t rb[TK_RECORD_MAX];
    size_t rlen = 0;
    if (rc == 0) {
        r.depth = r.depth > 0 ? r.depth - 1 : 0;
        r.overflowed = e.kind == TK_SSF_OVERFLOW ? 0 : r.overflowed;
        rc = tk_record_encode_ssf_receiver(&r, rb, sizeof rb, &rlen);
    } else if (rc == TK_E_NOTFOUND) {
        rc = 0; /* a removed receiver's queue is removed with it; be tolerant */
    }
    if (rc == 0) {
        rc = del_key(txn, qb, klen);
    }
    if (rc == 0 && rlen > 0) {
        uint8_t kb[1 + TK_SSF_ID_MAX];
        rc = tk_store_raw_put(txn, DB_SSF, (tk_slice){(const char *)kb, rkey(id, kb)}, rb, rlen, 0);
    }
    *changed = rc == 0;
    return rc;
}
