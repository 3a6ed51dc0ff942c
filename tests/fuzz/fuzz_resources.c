/*
 * libFuzzer target for the protected-resources file (JSON, read at start-up
 * and on reload). Not network input, but an operator's typo must give a
 * message, never a crash, and it is cheap to fuzz. The input goes to
 * tk_resources_parse; an accepted table is walked whole and asked to match
 * a few hosts and paths (derived from the input too) and metadata paths.
 * Checks: only documented results, an error message NUL-terminated within
 * its buffer, every entry reachable, matches inside the table.
 */
#include "tokend/common.h"
#include "tokend/resources.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void fail(const char *what, int line)
{
    fprintf(stderr, "fuzz_resources: invariant failed at line %d: %s\n", line, what);
    abort();
}

#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fail(#c, __LINE__);                                                                    \
        }                                                                                          \
    } while (0)

static bool in_table(const tk_resources *rs, const tk_resource *r)
{
    for (size_t i = 0; i < tk_resources_count(rs); i++) {
        if (tk_resources_at(rs, i) == r) {
            return true;
        }
    }
    return false;
}

static void probe(const tk_resources *rs, tk_slice host, tk_slice path)
{
    const tk_resource *r = tk_resources_match(rs, host, path);
    EXPECT(r == NULL || in_table(rs, r));
    r = tk_resources_by_metadata_path(rs, path, host);
    EXPECT(r == NULL || in_table(rs, r));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    memset(err, 'x', sizeof err);
    tk_resources *rs = NULL;
    int rc = tk_resources_parse((const char *)data, size, &rs, err, sizeof err);
    EXPECT(rc == 0 || rc == TK_E_INVALID || rc == -ENOMEM);
    if (rc != 0) {
        EXPECT(rs == NULL || rc == 0);
        EXPECT(memchr(err, '\0', sizeof err) != NULL);
        return 0;
    }
    EXPECT(rs != NULL);
    size_t n = tk_resources_count(rs);
    for (size_t i = 0; i < n; i++) {
        EXPECT(tk_resources_at(rs, i) != NULL);
    }
    (void)tk_resources_trusted(rs);
    probe(rs, TK_SLICE_LIT("wiki.example.com"), TK_SLICE_LIT("/"));
    probe(rs, TK_SLICE_LIT("TOOLS.example.com:443"), TK_SLICE_LIT("/mcp/x"));
    probe(rs, TK_SLICE_LIT("a.test"), TK_SLICE_LIT("/.well-known/oauth-protected-resource"));
    size_t cut = size > 64 ? 64 : size;
    probe(rs, (tk_slice){(const char *)data, cut / 2},
          (tk_slice){(const char *)data + cut / 2, cut - cut / 2});
    tk_resources_free(rs);
    return 0;
}
