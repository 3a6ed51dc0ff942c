/*
 * libFuzzer target for Client ID Metadata Documents (oauth_cimd.h). The
 * input is a client_id URL, a newline, and a document. Besides the
 * sanitizers it checks the contracts: an accepted URL is https with a host
 * slice inside it, no fragment, no userinfo, a path, and maps to a key of
 * TK_CIMD_KEY_LEN that is itself never a URL; a refused document gives one
 * of the registration errors with a clean description and a zeroed struct;
 * an accepted one names exactly the URL as its client_id, is public, and
 * obeys the registration rules (its redirect URIs pass the RFC 7591 check).
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/oauth_cimd.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check_desc(const tk_oauth_err *e)
{
    EXPECT(e->description != NULL && e->description[0] != '\0');
    for (const char *p = e->description; *p != '\0'; p++) {
        EXPECT(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
    }
}

static void check_url(tk_slice url)
{
    tk_slice host;
    const char *why = NULL;
    if (tk_oauth_cimd_url_check(url, &host, &why) != 0) {
        EXPECT(why != NULL && why[0] != '\0' && host.p == NULL);
        return;
    }
    EXPECT(url.len >= 10 && url.len <= TK_CIMD_URL_MAX && memcmp(url.p, "https://", 8) == 0);
    EXPECT(tk_oauth_cimd_candidate(url));
    EXPECT(host.len > 0 && host.p >= url.p && host.p + host.len <= url.p + url.len);
    EXPECT(memchr(url.p, '#', url.len) == NULL);
    EXPECT(memchr(host.p, '@', host.len) == NULL);
    EXPECT(memchr(url.p + 8, '/', url.len - 8) != NULL);
    char key[TK_CIMD_KEY_LEN + 1];
    tk_oauth_cimd_key(url, key);
    EXPECT(strlen(key) == TK_CIMD_KEY_LEN && tk_oauth_cimd_is_key(tk_slice_from_str(key)));
    EXPECT(!tk_oauth_cimd_candidate(tk_slice_from_str(key)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ulen = nl != NULL ? (size_t)(nl - data) : 0;
    size_t doff = nl != NULL ? ulen + 1 : 0;
    char *url = malloc(ulen > 0 ? ulen : 1); /* exact lengths: over-reads are caught */
    char *doc = malloc(size - doff > 0 ? size - doff : 1);
    if (ulen > 0) {
        memcpy(url, data, ulen);
    }
    if (size > doff) {
        memcpy(doc, data + doff, size - doff);
    }
    tk_slice u = {url, ulen};
    check_url(u);
    static tk_oauth_client_meta m;
    tk_oauth_err e = {0};
    int rc = tk_oauth_cimd_parse(doc, size - doff, u, &m, &e);
    if (rc != 0) {
        static const tk_oauth_client_meta zero;
        EXPECT(rc == TK_E_INVALID);
        EXPECT(e.code == TK_OAUTH_INVALID_CLIENT_METADATA ||
               e.code == TK_OAUTH_INVALID_REDIRECT_URI);
        check_desc(&e);
        EXPECT(memcmp(&m, &zero, sizeof m) == 0);
    } else {
        EXPECT(size - doff <= TK_CIMD_DOC_MAX);
        EXPECT(m.auth_method == TK_OAUTH_AUTH_NONE);
        json_error_t je;
        json_t *root = json_loadb(doc, size - doff, 0, &je);
        EXPECT(root != NULL);
        json_t *id = json_object_get(root, "client_id");
        EXPECT(json_is_string(id) && json_string_length(id) == ulen &&
               (ulen == 0 || memcmp(json_string_value(id), url, ulen) == 0));
        EXPECT(json_object_get(root, "client_secret") == NULL);
        json_decref(root);
        for (size_t i = 0; i < m.redirect_count; i++) {
            enum tk_oauth_redirect_kind kind;
            EXPECT(tk_oauth_redirect_check(tk_slice_from_str(m.redirect_uris[i]), &kind, NULL) ==
                   0);
            EXPECT(tk_oauth_redirect_allowed(kind, m.native));
        }
    }
    free(url);
    free(doc);
    return 0;
}
