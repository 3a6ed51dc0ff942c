/*
 * Fuzz the op-log entry decoder (tk_commit_req_decode, cluster mode: the
 * bytes every node reads from the JetStream stream). Whatever decodes must
 * re-encode (the decoder accepts nothing the encoder refuses), no longer
 * than the input, and that encoding must decode and encode again to the
 * same bytes; a failed decode leaves nothing to release.
 */
#include "fuzz_common.h"

#include <string.h>

#include "tokend/committer.h"

static uint8_t enc[TK_COMMIT_WIRE_MAX], enc2[TK_COMMIT_WIRE_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tk_commit_req req;
    if (tk_commit_req_decode(data, size, &req) != 0) {
        EXPECT(req.nops == 0); /* nothing half-decoded is left to release */
        return 0;
    }
    EXPECT(req.nops >= 1 && req.nops <= TK_OPS_PER_REQ);
    EXPECT(req.worker == 0 && req.cookie == 0);
    size_t len = 0, len2 = 0;
    EXPECT(tk_commit_req_encode(&req, enc, sizeof enc, &len) == 0);
    EXPECT(len <= size);
    tk_commit_req again;
    EXPECT(tk_commit_req_decode(enc, len, &again) == 0 && again.nops == req.nops);
    EXPECT(tk_commit_req_encode(&again, enc2, sizeof enc2, &len2) == 0);
    EXPECT(len2 == len && memcmp(enc, enc2, len) == 0);
    tk_commit_req_release(&again);
    tk_commit_req_release(&req);
    return 0;
}
