/*
 * Client-certificate helpers (cert.h): the canonical subject DN both sides of
 * a tls_client_auth comparison go through, and the strict parser of a
 * certificate forwarded by a proxy in a header, and the canonical form of a
 * subject alternative name. Both read untrusted bytes
 * (a registration argument, a request header) in one bounded forward scan
 * and write into fixed buffers; neither allocates.
 */
#include "tokend/cert.h"
#include "tokend/crypto.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- Subject DN ---------------------------------------------------------- */

struct dn_out {
    char *p;
    size_t cap, len;
    bool full;
};

static void put(struct dn_out *o, char ch)
{
    if (o->len + 1 >= o->cap) {
        o->full = true;
        return;
    }
    o->p[o->len++] = ch;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static char lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

static char upper(unsigned char c)
{
    return (char)(c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
}

static void skip_spaces(tk_slice in, size_t *i)
{
    while (*i < in.len && in.p[*i] == ' ') {
        (*i)++;
    }
}

/* attributeType: a name (ALPHA *(ALPHA / DIGIT / '-')) or a dotted OID. */
static int dn_type(tk_slice in, size_t *i, struct dn_out *o)
{
    size_t start = *i;
    const unsigned char *s = (const unsigned char *)in.p;
    if (*i < in.len && is_alpha(s[*i])) {
        while (*i < in.len && (is_alpha(s[*i]) || is_digit(s[*i]) || s[*i] == '-')) {
            put(o, upper(s[(*i)++]));
        }
    } else {
        bool need_digit = true;
        while (*i < in.len && (is_digit(s[*i]) || (s[*i] == '.' && !need_digit))) {
            need_digit = s[*i] == '.';
            put(o, (char)s[(*i)++]);
        }
        if (need_digit) {
            return TK_E_BADINPUT;
        }
    }
    return *i > start ? 0 : TK_E_BADINPUT;
}

/* One value up to an unescaped ',' or '+' or the end, folded as cert.h says. */
static int dn_value(tk_slice in, size_t *i, struct dn_out *o)
{
    const unsigned char *s = (const unsigned char *)in.p;
    bool any = false, space = false;
    if (*i < in.len && s[*i] == '#') { /* hexstring: the BER of the value */
        put(o, '#');
        (*i)++;
        size_t n = 0;
        while (*i < in.len && tk_hex_digit(s[*i]) >= 0) {
            put(o, lower(s[(*i)++]));
            n++;
        }
        skip_spaces(in, i);
        return n > 0 && n % 2 == 0 ? 0 : TK_E_BADINPUT;
    }
    while (*i < in.len && s[*i] != ',' && s[*i] != '+') {
        unsigned char c = s[(*i)++];
        if (c == '\\') {
            if (*i >= in.len) {
                return TK_E_BADINPUT;
            }
            unsigned char e = s[(*i)++];
            int hi = tk_hex_digit(e);
            if (hi >= 0) {
                int lo = *i < in.len ? tk_hex_digit(s[*i]) : -1;
                if (lo < 0) {
                    return TK_E_BADINPUT;
                }
                (*i)++;
                c = (unsigned char)(hi * 16 + lo);
            } else if (strchr(" \"#+,;<=>\\", e) != NULL && e != '\0') {
                c = e;
            } else {
                return TK_E_BADINPUT;
            }
        } else if (c == '"' || c == ';' || c == '<' || c == '>') {
            return TK_E_BADINPUT; /* must be escaped (RFC 4514 §3) */
        }
        if (c < 0x20 || c == 0x7f) {
            return TK_E_BADINPUT;
        }
        if (c == ' ') {
            space = any; /* leading spaces vanish, inner runs fold */
            continue;
        }
        if (space) {
            put(o, ' ');
            space = false;
        }
        if (strchr(",+\"\\<>;=", c) != NULL || (c == '#' && !any)) {
            put(o, '\\'); /* a leading '#' would read as a hexstring */
        }
        put(o, lower(c));
        any = true;
    }
    return 0; /* a trailing space run is dropped */
}

int tk_cert_dn_canon(tk_slice in, char *out, size_t cap, size_t *len_out)
{
    TK_ASSERT(cap > 0);
    struct dn_out o = {out, cap, 0, false};
    out[0] = '\0';
    if (in.len == 0 || in.p == NULL) {
        return TK_E_BADINPUT;
    }
    size_t i = 0;
    for (;;) { /* each turn consumes at least one byte or fails: bounded by in.len */
        skip_spaces(in, &i);
        if (dn_type(in, &i, &o) != 0) {
            return TK_E_BADINPUT;
        }
        skip_spaces(in, &i);
        if (i >= in.len || in.p[i] != '=') {
            return TK_E_BADINPUT;
        }
        put(&o, '=');
        i++;
        if (dn_value(in, &i, &o) != 0) {
            return TK_E_BADINPUT;
        }
        if (i >= in.len) {
            break;
        }
        if (in.p[i] != ',' && in.p[i] != '+') {
            return TK_E_BADINPUT; /* after a hexstring: anything else */
        }
        put(&o, in.p[i]); /* another attribute must follow */
        i++;
    }
    if (o.full) {
        out[0] = '\0';
        return TK_E_TOOBIG;
    }
    out[o.len] = '\0';
    *len_out = o.len;
    return 0;
}

/* ---- Subject alternative names -------------------------------------------- */

/* A DNS name: LDH labels of 1..63 bytes separated by single dots, an
 * optional leading "*." label, no trailing dot, lower-cased. */
static int san_dns(tk_slice v, struct dn_out *o)
{
    size_t label = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c == '.') {
            if (label == 0 || i + 1 == v.len) {
                return TK_E_BADINPUT;
            }
            label = 0;
        } else if (c == '*') {
            if (i != 0 || v.len < 3 || v.p[1] != '.') {
                return TK_E_BADINPUT;
            }
            label = 1;
        } else if (is_alpha(c) || is_digit(c) || c == '-') {
            if (++label > 63) {
                return TK_E_BADINPUT;
            }
        } else {
            return TK_E_BADINPUT;
        }
        put(o, lower(c));
    }
    return v.len == 0 || v.len > 253 ? TK_E_BADINPUT : 0;
}

/* A URI or an e-mail address: printable ASCII without spaces, kept as
 * given (RFC 8705 §2.1.2 compares the string), except an e-mail's domain
 * (after the one '@'), which is case-insensitive. */
static int san_text(tk_slice v, bool email, struct dn_out *o)
{
    size_t at = 0, ats = 0;
    bool colon = false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < 0x21 || c > 0x7e) {
            return TK_E_BADINPUT;
        }
        if (c == '@') {
            at = i;
            ats++;
        }
        colon = colon || (c == ':' && i > 0);
    }
    if (v.len == 0 || (email && (ats != 1 || at == 0 || at + 1 == v.len)) || (!email && !colon)) {
        return TK_E_BADINPUT; /* a URI has a scheme */
    }
    for (size_t i = 0; i < v.len; i++) {
        put(o, email && i > at ? lower((unsigned char)v.p[i]) : v.p[i]);
    }
    return 0;
}

/* An IPv4 or IPv6 address in the text form inet_ntop writes (RFC 5952). */
static int san_ip(tk_slice v, struct dn_out *o)
{
    char in[INET6_ADDRSTRLEN + 1], text[INET6_ADDRSTRLEN];
    uint8_t raw[16];
    if (v.len == 0 || v.len >= sizeof in) {
        return TK_E_BADINPUT;
    }
    memcpy(in, v.p, v.len);
    in[v.len] = '\0';
    int af = memchr(v.p, ':', v.len) != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(af, in, raw) != 1 || inet_ntop(af, raw, text, sizeof text) == NULL) {
        return TK_E_BADINPUT;
    }
    for (size_t i = 0; text[i] != '\0'; i++) {
        put(o, text[i]);
    }
    return 0;
}

static const struct {
    const char *prefix;
    unsigned char kind;
} san_kinds[] = {{"dns:", 'd'}, {"uri:", 'u'}, {"ip:", 'i'}, {"email:", 'e'}};

int tk_cert_san_canon(tk_slice in, char *out, size_t cap, size_t *len_out)
{
    TK_ASSERT(cap > 0);
    struct dn_out o = {out, cap, 0, false};
    out[0] = '\0';
    if (in.p == NULL || in.len > TK_CERT_SAN_MAX) {
        return in.p == NULL ? TK_E_BADINPUT : TK_E_TOOBIG;
    }
    int rc = TK_E_BADINPUT;
    for (size_t k = 0; k < sizeof san_kinds / sizeof san_kinds[0]; k++) {
        size_t n = strlen(san_kinds[k].prefix);
        if (in.len < n || memcmp(in.p, san_kinds[k].prefix, n) != 0) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            put(&o, san_kinds[k].prefix[i]);
        }
        tk_slice v = {in.p + n, in.len - n};
        switch (san_kinds[k].kind) {
        case 'd':
            rc = san_dns(v, &o);
            break;
        case 'i':
            rc = san_ip(v, &o);
            break;
        default:
            rc = san_text(v, san_kinds[k].kind == 'e', &o);
            break;
        }
        break;
    }
    if (rc != 0 || o.full) {
        out[0] = '\0';
        return rc != 0 ? rc : TK_E_TOOBIG;
    }
    out[o.len] = '\0';
    *len_out = o.len;
    return 0;
}

bool tk_cert_satisfies(const tk_peer_cert *pc, const tk_cert_want *w)
{
    if (pc == NULL || (w->subject.len == 0 && w->san.len == 0 && w->thumbprint == NULL)) {
        return false;
    }
    bool ok = true;
    if (w->thumbprint != NULL) {
        ok = tk_ct_equal(pc->sha256, w->thumbprint, TK_HASH_LEN);
    }
    if (w->subject.len > 0) {
        ok = ok && pc->verified && pc->subject_len == w->subject.len &&
             memcmp(pc->subject, w->subject.p, w->subject.len) == 0;
    }
    if (w->san.len > 0) {
        uint8_t want[TK_HASH_LEN];
        bool named = false;
        tk_sha256(w->san.p, w->san.len, want);
        for (unsigned i = 0; i < pc->nsans && i < TK_CERT_SANS_MAX; i++) {
            named = named || memcmp(pc->san[i], want, TK_HASH_LEN) == 0;
        }
        ok = ok && pc->verified && named;
    }
    return ok;
}

/* ---- Forwarded certificate ------------------------------------------------ */

#define B64_CAP   ((TK_CERT_DER_MAX + 2) / 3 * 4)
#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END   "-----END CERTIFICATE-----"

/* The DER is one SEQUENCE (definite length, minimal) covering all n bytes. */
static bool der_whole(const uint8_t *d, size_t n)
{
    if (n < 2 || d[0] != 0x30) {
        return false;
    }
    size_t len = 0, hdr = 0;
    if (d[1] < 0x80) {
        len = d[1];
        hdr = 2;
    } else if (d[1] == 0x81 && n >= 3 && d[2] >= 0x80) {
        len = d[2];
        hdr = 3;
    } else if (d[1] == 0x82 && n >= 4 && d[2] != 0) {
        len = ((size_t)d[2] << 8) | d[3];
        hdr = 4;
    } else {
        return false;
    }
    return hdr + len == n;
}

static int thumbprint(const char *b64, size_t n, uint8_t out[TK_HASH_LEN])
{
    uint8_t der[TK_CERT_DER_MAX];
    size_t dlen = 0;
    if (n == 0 || tk_b64_decode(b64, n, der, sizeof der, &dlen) != 0 || !der_whole(der, dlen)) {
        return TK_E_BADINPUT;
    }
    tk_sha256(der, dlen, out);
    return 0;
}

/* URL-decoded bytes of the value, one at a time: -1 at the end, -2 on a bad
 * escape or a byte that has no place in a PEM (only the base64 alphabet,
 * '-', ' ', and CR/LF once decoded). */
static int next_byte(tk_slice v, size_t *i)
{
    if (*i >= v.len) {
        return -1;
    }
    unsigned char c = (unsigned char)v.p[(*i)++];
    if (c == '%') {
        int hi = *i + 1 < v.len ? tk_hex_digit((unsigned char)v.p[*i]) : -1;
        int lo = hi >= 0 ? tk_hex_digit((unsigned char)v.p[*i + 1]) : -1;
        if (lo < 0) {
            return -2;
        }
        *i += 2;
        c = (unsigned char)(hi * 16 + lo);
        if (c == '\n' || c == '\r') {
            return c;
        }
    }
    bool ok =
        is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=' || c == '-' || c == ' ';
    return ok ? c : -2;
}

/* Expect the literal s next. */
static bool expect(tk_slice v, size_t *i, const char *s)
{
    for (; *s != '\0'; s++) {
        if (next_byte(v, i) != (unsigned char)*s) {
            return false;
        }
    }
    return true;
}

/* A line end: "\n" or "\r\n". c is the byte already read. */
static bool line_end(tk_slice v, size_t *i, int c)
{
    if (c == '\r') {
        c = next_byte(v, i);
    }
    return c == '\n';
}

static int forwarded_pem(tk_slice v, uint8_t out[TK_HASH_LEN])
{
    char b64[B64_CAP];
    size_t n = 0, i = 0;
    if (!expect(v, &i, PEM_BEGIN) || !line_end(v, &i, next_byte(v, &i))) {
        return TK_E_BADINPUT;
    }
    size_t col = 0;
    for (;;) { /* every turn consumes a byte: bounded by v.len */
        int c = next_byte(v, &i);
        if (c == '-' && col == 0) {
            break; /* the END line */
        }
        if (c == '\r' || c == '\n') {
            if (col == 0 || !line_end(v, &i, c)) {
                return TK_E_BADINPUT; /* empty line or bare CR */
            }
            col = 0;
            continue;
        }
        if (c < 0 || c == ' ' || c == '-' || col >= 76 || n >= sizeof b64) {
            return TK_E_BADINPUT;
        }
        b64[n++] = (char)c;
        col++;
    }
    if (!expect(v, &i, &PEM_END[1])) { /* its first '-' was read */
        return TK_E_BADINPUT;
    }
    int c = next_byte(v, &i);
    if (c != -1 && (!line_end(v, &i, c) || next_byte(v, &i) != -1)) {
        return TK_E_BADINPUT;
    }
    return thumbprint(b64, n, out);
}

int tk_cert_forwarded(tk_slice value, uint8_t sha256_out[TK_HASH_LEN])
{
    if (value.p == NULL || value.len < 2) {
        return TK_E_BADINPUT;
    }
    if (value.p[0] == ':') { /* RFC 9440: an sf-binary of the DER */
        if (value.p[value.len - 1] != ':' || value.len - 2 > B64_CAP) {
            return TK_E_BADINPUT;
        }
        return thumbprint(value.p + 1, value.len - 2, sha256_out);
    }
    return forwarded_pem(value, sha256_out);
}

int tk_cert_thumbprint_parse(tk_slice s, uint8_t out[TK_HASH_LEN])
{
    if (s.len == 2 * TK_HASH_LEN) {
        for (size_t i = 0; i < TK_HASH_LEN; i++) {
            int hi = tk_hex_digit((unsigned char)s.p[2 * i]);
            int lo = tk_hex_digit((unsigned char)s.p[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                return TK_E_BADINPUT;
            }
            out[i] = (uint8_t)(hi * 16 + lo);
        }
        return 0;
    }
    size_t n = 0;
    return tk_b64url_decode(s.p, s.len, out, TK_HASH_LEN, &n) == 0 && n == TK_HASH_LEN
               ? 0
               : TK_E_BADINPUT;
}
