/*
 * Private to the store: the table-driven msgpack codec that the record codec
 * (record.c) and the op codec (op.c) share. A kind of record is a table of
 * fields (key, type, whether required, size or range limits, where it lives
 * in the struct); tk_codec_encode writes the map the table describes and
 * tk_codec_decode reads it back strictly (record.c's header comment says
 * exactly what it accepts).
 */
#ifndef TOKEND_CODEC_INT_H
#define TOKEND_CODEC_INT_H

#include <stddef.h>

#include "tokend/record.h"

/* ---- Field tables: one entry per key ---------------------------------------- */

/* F_BIN: bytes of 1..max (bin8 / bin16), a tk_slice member; F_U64: an
 * unsigned 64-bit member, optional only (0 = absent), any other value. */
enum ftype { F_STR = 1, F_INT = 2, F_HASH = 3, F_BIN = 4, F_U64 = 5 };

#define NO_FLAG SIZE_MAX

typedef struct field {
    uint8_t key;    /* 1..31 (0 is the version) */
    uint8_t type;   /* enum ftype */
    bool required;  /* always written; strings must be non-empty */
    uint16_t max;   /* F_STR, F_BIN: longest length */
    uint8_t size;   /* F_INT: sizeof the struct member (1, 4 or 8; 4 is unsigned) */
    int64_t lo, hi; /* F_INT: accepted range (optional ints: 0 = absent) */
    size_t off;     /* member offset */
    size_t flag;    /* F_HASH optional: offset of the bool saying it is set */
} field;

#define KEY_MAX 63 /* the decoder keeps the keys it saw in a uint64_t */

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
#define BIN(k, m, T, mem)                                                                          \
    {                                                                                              \
        .key = (k), .type = F_BIN, .required = false, .max = (m), .off = offsetof(T, mem)          \
    }
#define U64(k, T, mem)                                                                             \
    {                                                                                              \
        .key = (k), .type = F_U64, .required = false, .size = 8, .off = offsetof(T, mem)           \
    }
#define HASH(k, req, T, mem, fl)                                                                   \
    {                                                                                              \
        .key = (k), .type = F_HASH, .required = (req), .off = offsetof(T, mem), .flag = (fl)       \
    }

#define NF(t) TK_ARRAY_LEN(t)

/* Worst case of one encoded map: map16 header, version, and per field a key (1
 * byte), a str16 or bin16 header and its bytes, a bin8 hash, or an int64.
 * The static asserts beside each table keep the size limits honest. */
#define WORST_STR(n) (1 + 3 + (n))
#define WORST_INT    (1 + 9)
#define WORST_HASH   (1 + 2 + TK_HASH_LEN)

/* Encode rec as the map the table describes: 0, TK_E_INVALID (a field out of
 * its bounds), TK_E_TOOBIG (cap too small). */
int tk_codec_encode(const field *fs, size_t nf, const void *rec, uint8_t *buf, size_t cap,
                    size_t *len);
/* Decode buf into rec (size bytes, zeroed first): 0 or TK_E_CORRUPT. */
int tk_codec_decode(const field *fs, size_t nf, const uint8_t *buf, size_t len, void *rec,
                    size_t size);
/* Whether an optional field carries a value (required fields always do). */
bool tk_codec_present(const field *f, const void *rec);

#endif
