/*
 * Client certificates (RFC 8705) as tokend sees them: never an OpenSSL type,
 * only what the application compares. The TLS listener (src/server/tls.c)
 * fills a tk_peer_cert when a client presented a certificate; a proxy in
 * front of tokend forwards one in a header, which tk_cert_forwarded parses.
 *
 * Subject DNs are compared in a canonical form (tk_cert_dn_canon) of the
 * RFC 4514 string: the one an administrator registers and the one OpenSSL
 * prints for the certificate go through the same function.
 * Thread-safety: pure functions; any thread.
 */
#ifndef TOKEND_CERT_H
#define TOKEND_CERT_H

#include "tokend/common.h"
#include "tokend/limits.h"

/* The certificate a TLS client presented, filled once its handshake is
 * done. verified: it chains to tls-ca (tls_client_auth); a self-signed
 * certificate is accepted unverified and only its thumbprint can
 * authenticate it (self_signed_tls_client_auth). subject: canonical DN, ""
 * when it could not be rendered within TK_CERT_DN_MAX. */
typedef struct tk_peer_cert {
    bool verified;
    uint8_t sha256[TK_HASH_LEN]; /* SHA-256 of the DER: x5t#S256 */
    uint16_t subject_len;
    char subject[TK_CERT_DN_MAX + 1];
    /* Its subject alternative names (DNS, URI, IP, e-mail) as SHA-256 of
     * their canonical form (tk_cert_san_canon), at most TK_CERT_SANS_MAX:
     * a certificate with more has the rest ignored (never matched). */
    uint8_t nsans;
    uint8_t san[TK_CERT_SANS_MAX][TK_HASH_LEN];
} tk_peer_cert;

/*
 * Canonical form of an RFC 4514 DN string: attribute types upper-cased;
 * values unescaped (\c and \XX), leading and trailing spaces dropped, runs of
 * spaces folded to one, ASCII letters lower-cased (caseIgnoreMatch), then
 * written back with ',', '+', '"', '\\', '<', '>', ';', '=' and a leading '#'
 * escaped as \c.
 * RDN order and multi-valued RDN order are kept as given. Writes at most
 * cap - 1 bytes and a NUL. Returns 0 (*len_out set), TK_E_BADINPUT (empty,
 * a type that is not a name or dotted OID, no '=', a bad escape, a control
 * byte, an empty RDN) or TK_E_TOOBIG.
 */
int tk_cert_dn_canon(tk_slice in, char *out, size_t cap, size_t *len_out);

/*
 * Canonical form of a subject alternative name as tokend names one (RFC 8705
 * §2.1.2 tls_client_auth_san_*): "dns:" a DNS name (LDH labels, an optional
 * leading "*." label, lower-cased), "uri:" a URI (printable ASCII with a
 * scheme, exact), "ip:" an IPv4 or IPv6 address (rewritten as inet_ntop
 * writes it), "email:" an address (printable ASCII, one '@', the domain
 * lower-cased). The registered value and each name of a presented
 * certificate go through it, so they compare as strings. Writes at most
 * cap - 1 bytes and a NUL. Returns 0 (*len_out set), TK_E_BADINPUT or
 * TK_E_TOOBIG (longer than TK_CERT_SAN_MAX).
 */
int tk_cert_san_canon(tk_slice in, char *out, size_t cap, size_t *len_out);

/* What a certificate must show to authenticate someone (a client, an IdP's
 * event sender): each member set is required, at least one is set. subject
 * and san are canonical (tk_cert_dn_canon, tk_cert_san_canon) and hold only
 * for a certificate that chains to tls-ca; thumbprint (NULL = none) for
 * any, compared in constant time. */
typedef struct tk_cert_want {
    tk_slice subject;
    tk_slice san;
    const uint8_t *thumbprint;
} tk_cert_want;

/* pc (NULL: no certificate) satisfies w. Pure. */
bool tk_cert_satisfies(const tk_peer_cert *pc, const tk_cert_want *w);

/*
 * The SHA-256 thumbprint of a certificate a proxy forwarded in a header,
 * strictly: either URL-encoded PEM (nginx $ssl_client_escaped_cert: one
 * "-----BEGIN CERTIFICATE-----" block, base64 lines, the END line, optional
 * trailing newline; nothing else) or RFC 9440 Client-Cert (":" base64 DER
 * ":"). The DER must be at most TK_CERT_DER_MAX bytes and be one DER
 * SEQUENCE whose length covers it exactly. Returns 0 or TK_E_BADINPUT.
 * The certificate itself is not parsed further: only its hash is compared.
 */
int tk_cert_forwarded(tk_slice value, uint8_t sha256_out[TK_HASH_LEN]);

/* A SHA-256 thumbprint as configured (a client's, an IdP sender's): 64 hex
 * digits (either case) or 43 base64url characters. Returns 0 (out filled)
 * or TK_E_BADINPUT. Pure. */
int tk_cert_thumbprint_parse(tk_slice s, uint8_t out[TK_HASH_LEN]);

#endif
