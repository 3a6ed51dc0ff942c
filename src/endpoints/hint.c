/*
 * The batch hint (docs/ARCHITECTURE.md §4, "Prefetching a batch"): before
 * a worker handles any completion of a batch, the server shows it the bytes
 * of the batch's receives that begin requests (server.h, hint hook). Each
 * introspection (a form's plain token) and forward-auth request (a Bearer
 * or DPoP credential) found there complete has its token hashed, and the store's walker starts
 * loading the B-tree pages that every one of them will need, all at once
 * (tk_store_prefetch_tokens).
 *
 * The one idea: this is a hint and nothing more. The scan below is not the
 * request parser and needs not agree with it: anything it does not expect
 * (another method or path, a request split across receives, a percent- or
 * plus-encoded token, a chunked body, TLS, which never reaches here) just
 * gives no hint, and whatever it hints, the request is then parsed,
 * authenticated and answered by the normal path exactly as without it. A
 * wrong hint costs a prefetch. No allocation; bounded by the batch.
 *
 * The hashes are kept for the batch (ep_hint_memo), so that introspection
 * does not hash the same token twice: ep_token_hash takes a kept hash only
 * when the token it is given has exactly the bytes that were hashed
 * (compared in constant time), so what it returns is always the SHA-256
 * of its input, whatever the scan made of the request.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"

#define HINT_LINE     "POST /introspect HTTP/1.1\r\n"
#define HINT_LINE_LEN (sizeof(HINT_LINE) - 1)
/* Requests looked at per receive: the pipelining a client may do. */
#define HINT_PER_RECV 8
/* Kept hashes tried per introspection from the first unused one: requests
 * are handled in the order they were hinted, but a hinted request may stop
 * before it hashes (a failed client authentication). */
#define HINT_LOOKAHEAD 3

/* Whether the n bytes at p start with lit (lower case letters, '-' and
 * ':'), ignoring case: eight bytes at a time, each byte ORed with 0x20
 * (which maps only upper-case letters, among the bytes lit can match, to
 * lit's bytes; a byte that maps to ':' or '-' from elsewhere is a control
 * byte, whose line the request parser refuses anyway: a hint only). */
static bool starts_ci(const char *p, size_t n, const char *lit, size_t len)
{
    if (n < len) {
        return false;
    }
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, lit + i, 8);
        if ((a | 0x2020202020202020ull) != b) {
            return false;
        }
    }
    for (; i < len; i++) {
        if ((char)(p[i] | 0x20) != lit[i]) {
            return false;
        }
    }
    return true;
}

/* A Content-Length value (the line after the colon): digits between
 * optional blanks, at most TK_HTTP_BODY_MAX. SIZE_MAX when not that. */
static size_t length_of(const char *p, size_t n)
{
    size_t i = 0, v = 0, digits = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    for (; i < n && p[i] >= '0' && p[i] <= '9' && digits < 6; i++, digits++) {
        v = v * 10 + (size_t)(p[i] - '0');
    }
    while (i < n && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    return i == n && digits > 0 && v <= TK_HTTP_BODY_MAX ? v : SIZE_MAX;
}

/* The form's first token= value, when plain (no %, no +) and 1 to
 * TK_TOKEN_IN_MAX bytes; else an empty slice. */
static tk_slice token_of(const char *body, size_t n)
{
    size_t i = 0;
    while (i < n) { /* bounded: each turn moves past one parameter */
        const char *amp = memchr(body + i, '&', n - i);
        size_t end = amp != NULL ? (size_t)(amp - body) : n;
        if (end - i > 6 && memcmp(body + i, "token=", 6) == 0) {
            tk_slice v = {body + i + 6, end - i - 6};
            if (v.len > TK_TOKEN_IN_MAX || memchr(v.p, '%', v.len) != NULL ||
                memchr(v.p, '+', v.len) != NULL) {
                break;
            }
            return v;
        }
        i = end + 1;
    }
    return (tk_slice){NULL, 0};
}

/* The token of an Authorization value "Bearer T" or "DPoP T" (scheme in
 * any case, blanks around T), or an empty slice. */
static tk_slice credential_of(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    if (starts_ci(v + i, n - i, "bearer ", 7)) {
        i += 7;
    } else if (starts_ci(v + i, n - i, "dpop ", 5)) {
        i += 5;
    } else {
        return (tk_slice){NULL, 0};
    }
    while (i < n && v[i] == ' ') {
        i++;
    }
    while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    if (n == i || n - i > TK_TOKEN_IN_MAX) {
        return (tk_slice){NULL, 0};
    }
    return (tk_slice){v + i, n - i};
}

/* The length of the request line when p starts one the hint knows (the
 * introspection POST, a forward-auth GET), else 0; *post says which. */
static size_t request_line(const char *p, size_t n, bool *post)
{
    if (n >= HINT_LINE_LEN && memcmp(p, HINT_LINE, HINT_LINE_LEN) == 0) {
        *post = true;
        return HINT_LINE_LEN;
    }
    if (n > 10 && memcmp(p, "GET /auth", 9) == 0 && (p[9] == ' ' || p[9] == '/')) {
        const char *nl = memchr(p, '\n', n);
        *post = false;
        return nl != NULL ? (size_t)(nl - p) + 1 : 0;
    }
    return 0;
}

size_t ep_hint_scan(const char *p, size_t n, tk_slice *tok)
{
    *tok = (tk_slice){NULL, 0};
    bool post = false;
    size_t i = request_line(p, n, &post), clen = 0;
    if (i == 0) {
        return 0;
    }
    bool ended = false, length_seen = false;
    tk_slice auth = {NULL, 0};
    for (unsigned lines = 0; lines <= TK_HTTP_HEADERS_MAX && !ended; lines++) {
        const char *nl = memchr(p + i, '\n', n - i);
        if (nl == NULL || nl == p + i || nl[-1] != '\r') {
            return 0;
        }
        size_t end = (size_t)(nl - p) - 1; /* at the \r */
        if (end == i) {
            ended = true;
        } else if (starts_ci(p + i, end - i, "content-length:", 15)) {
            if (length_seen) {
                return 0;
            }
            length_seen = true;
            clen = length_of(p + i + 15, end - i - 15);
        } else if (starts_ci(p + i, end - i, "transfer-encoding:", 18)) {
            return 0;
        } else if (!post && starts_ci(p + i, end - i, "authorization:", 14)) {
            if (auth.p != NULL) {
                return 0;
            }
            auth = (tk_slice){p + i + 14, end - i - 14};
        }
        i = end + 2;
    }
    if (!ended || (post && !length_seen) || clen > n - i) { /* clen SIZE_MAX: a bad length */
        return 0;
    }
    *tok = post ? token_of(p + i, clen) : auth.p != NULL ? credential_of(auth.p, auth.len) : *tok;
    return i + clen;
}

void ep_hint_clear(ep_worker *w)
{
    ep_hint_memo *m = &w->hint;
    for (unsigned i = 0; i < m->n; i++) {
        tk_cleanse(m->e[i].tok, m->e[i].len);
    }
    m->n = m->next = 0;
}

void ep_token_hash(ep_worker *w, const char *tok, size_t len, uint8_t out[TK_HASH_LEN])
{
    ep_hint_memo *m = &w->hint;
    for (unsigned i = m->next; i < m->n && i < m->next + HINT_LOOKAHEAD; i++) {
        if (m->e[i].len == len && tk_ct_equal(m->e[i].tok, tok, len)) {
            memcpy(out, m->e[i].hash, TK_HASH_LEN);
            m->next = i + 1;
            return;
        }
    }
    tk_sha256(tok, len, out);
}

void ep_hint(ep_worker *w, const tk_server_hint *h, size_t n)
{
    ep_hint_clear(w);
    int mode = w->app->cfg.prefetch;
    /* tk_store_prefetch_wanted reads the trees' roots once per snapshot
     * (three reads of the main DBI, per batch when commits are frequent)
     * and answers from them after: cheaper than scanning every request of
     * a store too small to walk. */
    if (!w->txn_ok || mode == TK_PREFETCH_OFF ||
        (mode == TK_PREFETCH_AUTO && !tk_store_prefetch_wanted(w->txn))) {
        return;
    }
    tk_slice toks[TK_PREFETCH_MAX]; /* into the receive buffers, valid during the call */
    size_t k = 0;
    for (size_t i = 0; i < n && k < TK_PREFETCH_MAX; i++) {
        const char *p = h[i].data;
        size_t left = h[i].len;
        for (unsigned r = 0; r < HINT_PER_RECV && k < TK_PREFETCH_MAX; r++) {
            size_t used = ep_hint_scan(p, left, &toks[k]);
            if (used == 0) {
                break;
            }
            k += toks[k].len > 0;
            p += used;
            left -= used;
        }
    }
    if (k == 0) {
        return;
    }
    ep_hint_memo *m = &w->hint;
    uint8_t hashes[TK_PREFETCH_MAX][TK_HASH_LEN];
    for (size_t i = 0; i < k; i++) {
        tk_sha256(toks[i].p, toks[i].len, hashes[i]);
        if (toks[i].len <= EP_HINT_TOKEN_MAX) {
            memcpy(m->e[m->n].tok, toks[i].p, toks[i].len);
            memcpy(m->e[m->n].hash, hashes[i], TK_HASH_LEN);
            m->e[m->n++].len = toks[i].len;
        }
    }
    ep_add(&w->m.prefetch_hinted, k);
    ep_add(&w->m.prefetch_found, tk_store_prefetch_tokens(w->txn, hashes, k));
}
