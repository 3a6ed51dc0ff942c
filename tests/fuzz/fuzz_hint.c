/*
 * Fuzz the batch hint's request scan (src/endpoints/hint.c, ep_hint_scan):
 * over any bytes it must stay inside them, report a request length within
 * them, and a token only inside that request (an introspection's plain:
 * no % or +).
 * Each input is scanned as a receive would be, request after request.
 */
#include "fuzz_common.h"

#include <string.h>

#include "../../src/endpoints/endpoints_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1); /* exactly the bytes: a read beyond them is caught */
    EXPECT(buf != NULL);
    memcpy(buf, data, size);
    const char *p = buf;
    size_t left = size;
    for (unsigned r = 0; r < 16; r++) {
        tk_slice tok;
        size_t used = ep_hint_scan(p, left, &tok);
        EXPECT(used <= left);
        if (used == 0) {
            EXPECT(tok.len == 0);
            break;
        }
        if (tok.len > 0) {
            EXPECT(tok.p > p && tok.p + tok.len <= p + used);
            EXPECT(p[0] != 'P' || (memchr(tok.p, '%', tok.len) == NULL &&
                                   memchr(tok.p, '+', tok.len) == NULL)); /* a form's value */
            EXPECT(tok.len <= TK_TOKEN_IN_MAX);
        }
        p += used;
        left -= used;
    }
    free(buf);
    return 0;
}
