/*
 * What the two halves of the resources table share: the table itself (an
 * immutable array in file order, the match order, and the arena that holds
 * every string) and the few byte helpers both need. load.c builds it (cold),
 * match.c reads it (hot path).
 */
#ifndef TOKEND_RESOURCES_INT_H
#define TOKEND_RESOURCES_INT_H

#include "tokend/resources.h"

typedef struct block {
    struct block *next;
    size_t cap, len;
    char data[];
} block;

struct tk_resources {
    block *arena;
    unsigned trusted;
    enum tk_http_params params;
    bool windows_allowed; /* "windows_paths": "allow" */
    size_t n;
    tk_resource *r;                   /* file order */
    uint16_t order[TK_RESOURCES_MAX]; /* match order */
};

_Static_assert(TK_RESOURCES_MAX <= UINT16_MAX, "order indices fit uint16_t");

static inline char res_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static inline bool res_eq_nocase(tk_slice a, tk_slice b)
{
    if (a.len != b.len) {
        return false;
    }
    for (size_t i = 0; i < a.len; i++) {
        if (res_lower(a.p[i]) != res_lower(b.p[i])) {
            return false;
        }
    }
    return true;
}

#endif
