/*
 * Server-rendered HTML for the authorization server's pages (sign-in,
 * consent, errors). The one idea: every byte that did not come from a
 * string literal here goes through ep_html_text, which escapes it, and no
 * page carries script, so a self-declared client name like
 * <img src=x onerror=alert(1)> is shown as text and cannot run. The pages
 * work without JavaScript and fit a phone's screen.
 */
#include "endpoints_int.h"

#include "tokend/log.h"
#include "tokend/oauth_uri.h"

#include <stdio.h>
#include <string.h>

static void put(ep_html *h, const char *s, size_t n)
{
    if (h->overflow || n > h->cap - h->len) {
        h->overflow = true;
        return;
    }
    memcpy(h->buf + h->len, s, n);
    h->len += n;
}

void ep_html_raw(ep_html *h, const char *s)
{
    put(h, s, strlen(s));
}

void ep_html_text(ep_html *h, tk_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        switch (c) {
        case '&':
            put(h, "&amp;", 5);
            break;
        case '<':
            put(h, "&lt;", 4);
            break;
        case '>':
            put(h, "&gt;", 4);
            break;
        case '"':
            put(h, "&quot;", 6);
            break;
        case '\'':
            put(h, "&#39;", 5);
            break;
        default:
            put(h, &c, 1);
            break;
        }
    }
}

void ep_html_begin(ep_html *h, char *buf, size_t cap, const char *title)
{
    *h = (ep_html){.buf = buf, .cap = cap};
    ep_html_raw(h, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                   "<style>body{font-family:system-ui,sans-serif;max-width:34em;margin:2em auto;"
                   "padding:0 1em;line-height:1.4}button,input{font-size:1em;padding:.5em}"
                   ".untrusted{font-style:italic}.note{color:#555}</style><title>");
    ep_html_text(h, (tk_slice){title, strlen(title)});
    ep_html_raw(h, "</title></head><body>");
}

void ep_html_end(ep_html *h)
{
    ep_html_raw(h, "</body></html>");
}

/* The CSP source of a redirect URI's origin: "scheme://authority" for
 * http(s), "scheme:" for a private-use scheme. 0 when unusable. */
static size_t origin_of(tk_slice uri, char *out, size_t cap)
{
    tk_oauth_uri u;
    if (uri.len == 0 || tk_oauth_uri_parse(uri, &u) != 0 || u.scheme.len + 1 >= cap) {
        return 0;
    }
    size_t n = u.scheme.len;
    memcpy(out, u.scheme.p, n);
    out[n++] = ':';
    if (u.has_authority) {
        if (n + 2 + u.authority.len >= cap) {
            return 0;
        }
        memcpy(out + n, "//", 2);
        memcpy(out + n + 2, u.authority.p, u.authority.len);
        n += 2 + u.authority.len;
    }
    out[n] = '\0';
    /* A CSP source is tokens without ';', ',' or space: URI syntax has no space
     * here, and the parser refuses the rest where it matters. */
    return strpbrk(out, ";, '\"") == NULL ? n : 0;
}

void ep_reply_page(ep_req *r, int status, const ep_html *h, tk_slice form_target, const char *extra)
{
    if (h->overflow) {
        tk_log_error("page_too_big", "endpoint=%s", r->route->label);
        ep_reply(r, 500, "text/plain; charset=utf-8", NULL, "page too big\n", 13);
        return;
    }
    char origin[TK_OAUTH_URI_MAX + 8];
    size_t on = origin_of(form_target, origin, sizeof origin);
    char hdr[TK_OAUTH_URI_MAX + TK_OAUTH_SET_COOKIE_MAX + 512];
    TK_ASSERT(extra == NULL || strlen(extra) < TK_OAUTH_SET_COOKIE_MAX + 32);
    int n = snprintf(hdr, sizeof hdr,
                     "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
                     "form-action 'self'%s%s; frame-ancestors 'none'; base-uri 'none'\r\n"
                     "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
                     "X-Content-Type-Options: nosniff\r\n%s",
                     on > 0 ? " " : "", on > 0 ? origin : "", extra != NULL ? extra : "");
    TK_ASSERT(n > 0 && (size_t)n < sizeof hdr);
    ep_reply(r, status, "text/html; charset=utf-8", hdr, h->buf, h->len);
}

void ep_reply_error_page(ep_req *r, int status, const char *code, const char *description)
{
    ep_html h;
    ep_html_begin(&h, r->w->scratch, sizeof r->w->scratch, "Authorization error");
    ep_html_raw(&h, "<h1>This request cannot continue</h1><p>Error: <code id=\"error\">");
    ep_html_text(&h, (tk_slice){code, strlen(code)});
    ep_html_raw(&h, "</code></p><p id=\"error_description\">");
    ep_html_text(&h, (tk_slice){description, strlen(description)});
    ep_html_raw(&h, "</p><p class=\"note\">Go back to the application and start again.</p>");
    ep_html_end(&h);
    ep_reply_page(r, status, &h, TK_SLICE_NULL, NULL);
}
