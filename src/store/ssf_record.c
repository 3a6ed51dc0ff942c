/*
 * The SSF transmitter's records (ssf DBI, src/store/ssf_queue.c): a
 * receiver and a queued event, described by field tables for the shared
 * record codec (codec_int.h), and the names of the event kinds.
 */
#include <stddef.h>
#include <string.h>

#include "codec_int.h"

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
    STR(9, false, TK_URL_MAX, tk_ssf_event_rec, iss),
};

int tk_record_encode_ssf_receiver(const tk_ssf_receiver_rec *rec, uint8_t *buf, size_t cap,
                                  size_t *len)
{
    return tk_codec_encode(ssf_receiver_fields, NF(ssf_receiver_fields), rec, buf, cap, len);
}

int tk_record_decode_ssf_receiver(const uint8_t *buf, size_t len, tk_ssf_receiver_rec *rec)
{
    return tk_codec_decode(ssf_receiver_fields, NF(ssf_receiver_fields), buf, len, rec,
                           sizeof(*rec));
}

int tk_record_encode_ssf_event(const tk_ssf_event_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    return tk_codec_encode(ssf_event_fields, NF(ssf_event_fields), rec, buf, cap, len);
}

int tk_record_decode_ssf_event(const uint8_t *buf, size_t len, tk_ssf_event_rec *rec)
{
    return tk_codec_decode(ssf_event_fields, NF(ssf_event_fields), buf, len, rec, sizeof(*rec));
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
    return kind > 0 && kind < NF(ssf_kind_names) ? ssf_kind_names[kind] : "unknown";
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
