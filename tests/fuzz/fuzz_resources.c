/*
 * libFuzzer target for the protected-resources file (JSON, read at start-up
 * and on reload). Not network input, but an operator's typo must give a
 * message, never a crash, and it is cheap to fuzz. The input goes to
 * tk_resources_parse; an accepted table is walked whole and asked to match
 * a few hosts and paths (derived from the input too) and metadata paths.
 * Checks: only documented results, an error message NUL-terminated within
 * its buffer, every entry reachable, every host and prefix already in normal
 * form, matches inside the table and covering the path.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/http_uri.h"
#include "tokend/resources.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool in_table(const tk_resources *rs, const tk_resource *r)
{
    for (size_t i = 0; i < tk_resources_count(rs); i++) {
        if (tk_resources_at(rs, i) == r) {
            return true;
        }
    }
    return false;
}

/* Host and path as a request sends them: normalised (when they can be) the
 * way forward-auth does before matching. */
static void probe(const tk_resources *rs, tk_slice host, tk_slice path)
{
    char hb[TK_HTTP_HOST_MAX + 1], pb[128];
    tk_http_host h;
    size_t n;
    if (tk_http_host_normalize(host, hb, sizeof hb, &h) == 0 &&
        tk_http_path_normalize(path, tk_resources_path_params(rs), pb, sizeof pb, &n, NULL) == 0) {
        const tk_resource *r = tk_resources_match(rs, &h, (tk_slice){pb, n});
        EXPECT(r == NULL || in_table(rs, r));
        EXPECT(r == NULL || (n >= r->prefix.len && memcmp(pb, r->prefix.p, r->prefix.len) == 0));
    }
    const tk_resource *m = tk_resources_by_metadata_path(rs, path, host);
    EXPECT(m == NULL || in_table(rs, m));
}

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
        /* Every loaded host and prefix is already in normal form. */
        const tk_resource *r = tk_resources_at(rs, i);
        EXPECT(r != NULL && r->prefix.len >= 1 && r->prefix.p[0] == '/');
        EXPECT(r->host_any || (r->vhost.name.len >= 1 && r->host_port == (r->vhost.port != 0)));
        char pb[1024];
        size_t pn;
        EXPECT(tk_http_path_normalize(r->prefix, TK_HTTP_PARAMS_REFUSE, pb, sizeof pb, &pn, NULL) ==
                   0 &&
               pn == r->prefix.len && memcmp(pb, r->prefix.p, pn) == 0);
    }
    enum tk_http_params pp = tk_resources_path_params(rs);
    EXPECT(pp == TK_HTTP_PARAMS_REFUSE || pp == TK_HTTP_PARAMS_STRIP);
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
