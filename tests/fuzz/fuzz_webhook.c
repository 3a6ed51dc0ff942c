/*
 * libFuzzer target for the Standard Webhooks input: the first line of the
 * input is a webhook-signature header value, the rest a body. The header
 * parser (ev_webhook_sigs) must stay within its output array and agree with
 * a naive reference count of well-formed "v1," entries; the body goes
 * through the JSON reader and claim checks the endpoint uses.
 */
#include "fuzz_common.h"

#include "../../src/endpoints/events_int.h"

#include "tokend/crypto.h"

#include <stdlib.h>
#include <string.h>

/* Reference: split on spaces, count entries "v1," + padded base64 of 32 bytes. */
static unsigned ref_count(const char *p, size_t n, unsigned max)
{
    unsigned count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] == ' ') {
            i++;
        }
        size_t s = i;
        while (i < n && p[i] != ' ') {
            i++;
        }
        uint8_t out[64];
        size_t len = 0;
        if (i - s > 3 && memcmp(p + s, "v1,", 3) == 0 &&
            tk_b64_decode(p + s + 3, i - s - 3, out, sizeof out, &len) == 0 && len == 32) {
            count++;
        }
    }
    return count < max ? count : max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    size_t hlen = nl ? (size_t)(nl - p) : size;
    uint8_t sigs[TK_WEBHOOK_SIGS_MAX + 1][32];
    memset(sigs[TK_WEBHOOK_SIGS_MAX], 0xa5, 32); /* canary past the array we pass */
    unsigned n = ev_webhook_sigs((tk_slice){p, hlen}, sigs, TK_WEBHOOK_SIGS_MAX);
    EXPECT(n == ref_count(p, hlen, TK_WEBHOOK_SIGS_MAX));
    for (int i = 0; i < 32; i++) {
        EXPECT(sigs[TK_WEBHOOK_SIGS_MAX][i] == 0xa5);
    }
    if (nl == NULL) {
        return 0;
    }
    json_error_t je;
    json_t *body = json_loadb(nl + 1, size - hlen - 1, JSON_REJECT_DUPLICATES, &je);
    if (json_is_object(body)) {
        static const char *const names[] = {"type", "iss", "sid", "sub"};
        for (size_t i = 0; i < TK_ARRAY_LEN(names); i++) {
            tk_slice s;
            if (ev_claim_str(body, names[i], TK_SUB_MAX, &s) == EV_OK && s.p != NULL) {
                for (size_t k = 0; k < s.len; k++) {
                    EXPECT((unsigned char)s.p[k] >= 0x20 && s.p[k] != 0x7f);
                }
            }
        }
    }
    json_decref(body);
    return 0;
}
