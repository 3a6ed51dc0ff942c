/*
 * Fuzz the cluster op log's authentication parsers (clmac.c): the Tokend-Mac
 * header value every node reads from the stream (anyone who can publish on
 * the subject chooses it) and the key file's text. The first byte picks
 * which. A header that parses has exactly one spelling: formatted again it
 * is the input. A key file that parses holds 1 to TK_CLUSTER_KEYS_MAX
 * printable keys of allowed length with distinct ids, and written back one a
 * line it parses to the same keys. Whatever parses as a header never
 * verifies against a key it was not signed with, and the entry signed with
 * the file's first key under the header's time verifies.
 */
#include "fuzz_common.h"

#include <stdbool.h>
#include <string.h>

#include "tokend/cluster.h"
#include "tokend/crypto.h"

static char text[TK_CLUSTER_KEY_FILE_MAX + 1];
static char again[TK_CLUSTER_KEYS_MAX * (TK_CLUSTER_KEY_MAX + 1) + 1];

static void header(const char *s)
{
    tk_cluster_mac_hdr h;
    if (tk_cluster_mac_hdr_parse(s, &h) != 0) {
        return;
    }
    char kid[2 * TK_CLUSTER_KID_LEN + 1], mac[2 * TK_CLUSTER_MAC_LEN + 1];
    char out[TK_CLUSTER_MAC_HDR_MAX];
    tk_hex(h.kid, sizeof h.kid, kid);
    tk_hex(h.mac, sizeof h.mac, mac);
    EXPECT(h.time_ms >= 1 && h.time_ms <= TK_CLUSTER_TIME_MAX);
    snprintf(out, sizeof out, "%s.%llu.%s", kid, (unsigned long long)h.time_ms, mac);
    EXPECT(strcmp(out, s) == 0);
    /* A fixed key the fuzzer cannot know: its own id is the only way in. */
    static const char k[] = "fuzz-key-0123456789abcdef0123456789abcdef";
    tk_cluster_keys ks;
    char err[160];
    EXPECT(tk_cluster_keys_parse(k, sizeof k - 1, &ks, err, sizeof err) == 0);
    uint64_t t = 0;
    tk_cluster_verdict v =
        tk_cluster_verify(&ks, "TOKEND.ops", "a-1-1", s, (const uint8_t *)"entry", 5, &t);
    EXPECT(v != TK_CLUSTER_MAC_OK);
    EXPECT(tk_cluster_sign(&ks.k[0], "TOKEND.ops", "a-1-1", h.time_ms, (const uint8_t *)"entry", 5,
                           out) == 0);
    EXPECT(tk_cluster_verify(&ks, "TOKEND.ops", "a-1-1", out, (const uint8_t *)"entry", 5, &t) ==
               TK_CLUSTER_MAC_OK &&
           t == h.time_ms);
}

static void key_file(const char *s, size_t len)
{
    tk_cluster_keys ks, ks2;
    char err[160];
    if (tk_cluster_keys_parse(s, len, &ks, err, sizeof err) != 0) {
        EXPECT(err[0] != '\0');
        return;
    }
    EXPECT(ks.n >= 1 && ks.n <= TK_CLUSTER_KEYS_MAX);
    size_t at = 0;
    for (unsigned i = 0; i < ks.n; i++) {
        EXPECT(ks.k[i].len >= TK_CLUSTER_KEY_MIN && ks.k[i].len <= TK_CLUSTER_KEY_MAX);
        for (size_t j = 0; j < ks.k[i].len; j++) {
            EXPECT(ks.k[i].key[j] >= 0x20 && ks.k[i].key[j] <= 0x7e);
        }
        for (unsigned j = 0; j < i; j++) {
            EXPECT(memcmp(ks.k[i].kid, ks.k[j].kid, TK_CLUSTER_KID_LEN) != 0);
        }
        memcpy(again + at, ks.k[i].key, ks.k[i].len);
        at += ks.k[i].len;
        again[at++] = '\n';
    }
    EXPECT(tk_cluster_keys_parse(again, at, &ks2, err, sizeof err) == 0 && ks2.n == ks.n);
    for (unsigned i = 0; i < ks.n; i++) {
        EXPECT(ks2.k[i].len == ks.k[i].len && memcmp(ks2.k[i].key, ks.k[i].key, ks.k[i].len) == 0 &&
               memcmp(ks2.k[i].kid, ks.k[i].kid, TK_CLUSTER_KID_LEN) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > TK_CLUSTER_KEY_FILE_MAX) {
        return 0;
    }
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 1) {
        key_file(text, size - 1);
    } else if (strlen(text) == size - 1) {
        header(text);
    }
    return 0;
}
