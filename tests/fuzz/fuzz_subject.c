/*
 * libFuzzer target for SSF subject identifiers (ev_parse_subject): the input
 * is parsed as JSON (as a SET's sub_id would be) and mapped to a session
 * match. Invariants: a match has a kind, a value within the limits of what
 * the store indexes, and a filter only for complex subjects with both a user
 * and a session.
 */
#include "fuzz_common.h"

#include "../../src/endpoints/events_int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TK_JWT_PAYLOAD_MAX) {
        return 0; /* the JWS layer never hands over more */
    }
    json_error_t je;
    json_t *v = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL) {
        return 0;
    }
    ev_match m;
    const char *why = NULL;
    int rc = ev_parse_subject(v, TK_SLICE_LIT("https://idp.test"), &m, &why);
    if (rc == EV_OK) {
        EXPECT(m.kind == TK_IDP_KEY_SID || m.kind == TK_IDP_KEY_SUB);
        EXPECT(m.value.len > 0 && m.value.len <= TK_SUB_MAX);
        EXPECT(m.kind == TK_IDP_KEY_SUB || m.value.len <= TK_ID_MAX);
        EXPECT(!m.has_filter || (m.kind == TK_IDP_KEY_SID && m.filter_sub.len > 0));
        uint8_t key[TK_HASH_LEN];
        tk_store_idp_key(m.kind, TK_SLICE_LIT("https://idp.test"), m.value, key);
    } else {
        EXPECT(why != NULL && (rc == EV_MALFORMED || rc == EV_BAD_CLAIMS));
    }
    json_decref(v);
    return 0;
}
