/*
 * libFuzzer target for the DPoP proof checker (src/endpoints/dpop.c): the
 * input is taken as a proof (compact JWS, typ, alg, jwk, claims) and checked
 * against a fixed request, and as an htu URL (ep_dpop_url). Invariants: a
 * proof never passes without a signature by its own jwk (the fuzzer cannot
 * forge ES256, so every input must be refused, with or without a server
 * nonce demanded), a refusal says why, no input of another length is a
 * current nonce, and a parsed URL has a scheme of http or https and a path starting with '/'.
 */
#include "fuzz_common.h"

#include "../../src/endpoints/endpoints_int.h"

#include <string.h>

static ep_dpop_seen *seen;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (seen == NULL) {
        EXPECT(ep_dpop_seen_new(TK_DPOP_RATE_MIN, &seen) == 0);
    }
    ep_dpop_want want;
    memset(&want, 0, sizeof want);
    want.htm = TK_SLICE_LIT("GET");
    want.now = 1700000000;
    EXPECT(ep_dpop_url(TK_SLICE_LIT("https://api.example/docs"), &want.url) == 0);
    tk_slice in = {(const char *)data, size};
    ep_dpop_proof out;
    const char *why = NULL;
    int rc = ep_dpop_check(in, &want, &out, &why);
    EXPECT(rc != EP_DPOP_OK && why != NULL);
    want.nonces = seen; /* and with a server nonce demanded */
    rc = ep_dpop_check(in, &want, &out, &why);
    EXPECT(rc != EP_DPOP_OK && why != NULL);
    EXPECT(!ep_dpop_nonce_ok(seen, in, want.now) || size == EP_DPOP_NONCE_LEN);
    ep_dpop_url_parts u;
    if (ep_dpop_url(in, &u) == 0) {
        EXPECT(u.scheme.len == 4 || u.scheme.len == 5);
        EXPECT(u.path.len > 0 && u.path.p[0] == '/');
    }
    return 0;
}
