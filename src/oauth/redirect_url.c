/*
 * The Location of an /authorize answer: the client's redirect URI, its own
 * query kept, with our parameters appended percent-encoded. Only the
 * unreserved characters go out as they are, so nothing a client sent us
 * (state) can change the URL's structure.
 */
#include "tokend/oauth_uri.h"

#include <string.h>

static void append(tk_oauth_url *u, const char *p, size_t n)
{
    if (u->overflow || n + 1 > u->cap - u->len) {
        u->overflow = true;
        return;
    }
    if (n > 0) {
        memcpy(u->buf + u->len, p, n);
    }
    u->len += n;
    u->buf[u->len] = '\0';
}

void tk_oauth_url_init(tk_oauth_url *u, char *buf, size_t cap, tk_slice redirect_uri)
{
    TK_ASSERT(u != NULL && buf != NULL && cap > 0);
    TK_ASSERT(redirect_uri.len == 0 || memchr(redirect_uri.p, '#', redirect_uri.len) == NULL);
    *u = (tk_oauth_url){.buf = buf, .cap = cap};
    buf[0] = '\0';
    append(u, redirect_uri.p, redirect_uri.len);
    u->has_query = redirect_uri.len > 0 && memchr(redirect_uri.p, '?', redirect_uri.len) != NULL;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void tk_oauth_url_param(tk_oauth_url *u, const char *name, tk_slice value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t nl = strlen(name);
    for (size_t i = 0; i < nl; i++) {
        TK_ASSERT(unreserved((unsigned char)name[i]));
    }
    /* "cb?" and "cb?a=1&" already end in a separator */
    char last = u->len > 0 ? u->buf[u->len - 1] : '\0';
    bool joined = u->has_query && (last == '?' || last == '&');
    append(u, u->has_query ? "&" : "?", joined ? 0 : 1);
    u->has_query = true;
    append(u, name, nl);
    append(u, "=", 1);
    for (size_t i = 0; i < value.len; i++) {
        unsigned char c = (unsigned char)value.p[i];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        append(u, unreserved(c) ? (const char *)&value.p[i] : esc, unreserved(c) ? 1 : 3);
    }
}

int tk_oauth_url_finish(const tk_oauth_url *u)
{
    return u->overflow ? TK_E_TOOBIG : 0;
}

static int done(const tk_oauth_url *u, size_t *len_out)
{
    int rc = tk_oauth_url_finish(u);
    *len_out = rc == 0 ? u->len : 0;
    if (rc != 0) {
        u->buf[0] = '\0';
    }
    return rc;
}

int tk_oauth_authz_success_url(char *buf, size_t cap, tk_slice redirect_uri, tk_slice code,
                               tk_slice state, tk_slice iss, size_t *len_out)
{
    tk_oauth_url u;
    tk_oauth_url_init(&u, buf, cap, redirect_uri);
    tk_oauth_url_param(&u, "code", code);
    if (state.p != NULL) {
        tk_oauth_url_param(&u, "state", state);
    }
    tk_oauth_url_param(&u, "iss", iss);
    return done(&u, len_out);
}

int tk_oauth_authz_error_url(char *buf, size_t cap, tk_slice redirect_uri, const tk_oauth_err *err,
                             tk_slice state, tk_slice iss, size_t *len_out)
{
    TK_ASSERT(err != NULL && err->code != TK_OAUTH_OK && err->description != NULL);
    tk_oauth_url u;
    tk_oauth_url_init(&u, buf, cap, redirect_uri);
    tk_oauth_url_param(&u, "error", tk_slice_from_str(tk_oauth_code_name(err->code)));
    tk_oauth_url_param(&u, "error_description", tk_slice_from_str(err->description));
    if (state.p != NULL) {
        tk_oauth_url_param(&u, "state", state);
    }
    tk_oauth_url_param(&u, "iss", iss);
    return done(&u, len_out);
}
