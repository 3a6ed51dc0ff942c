/*
 * Private to the server: TLS on a listener, with OpenSSL over a BIO pair so
 * that the ring stays the only I/O path. Received ciphertext is written into
 * the pair (tk_tls_feed), OpenSSL decrypts it into the connection's input
 * buffer (tk_tls_pump_in), the plain HTTP answer in the output buffer is
 * encrypted into the pair (tk_tls_pump_out), and the ring sends straight
 * from the pair's buffer (tk_tls_pending / tk_tls_sent). Both directions of
 * the pair have a fixed size (TK_TLS_NET_IN, TK_TLS_NET_OUT), so a
 * connection's memory is bounded whatever the peer does.
 *
 * One tk_tls per server holds the current SSL_CTX (replaced whole by
 * tk_tls_reload: connections keep the context they started with) and the
 * session-ticket keys, which outlive reloads and rotate on their own.
 */
#ifndef TOKEND_SERVER_TLS_H
#define TOKEND_SERVER_TLS_H

#include "conn.h"

typedef struct tk_tls tk_tls;

/* What tk_tls_pump_in saw. */
enum tk_tls_event {
    TK_TLS_NONE = 0,      /* nothing new, or plaintext appended to c->in */
    TK_TLS_HANDSHAKE = 1, /* the handshake finished in this call */
    TK_TLS_EOF = 2,       /* the peer sent close_notify */
    TK_TLS_FAILED = 3,    /* a fatal alert, bad record, renegotiation: close */
};

/* Load cert (a PEM chain, leaf first) and key (PEM, unencrypted) into a
 * new context; ca (PEM, NULL or "" for none) is what client certificates
 * are verified against (tk_peer_cert.verified). Returns 0, or TK_E_INVALID
 * with the reason logged (never key material). The paths are copied. */
int tk_tls_new(const char *cert, const char *key, const char *ca, tk_tls **out);
/* A new context from the same paths for connections accepted from now on.
 * On any failure the context in use stays, the reason is logged, and
 * TK_E_INVALID is returned. Thread-safe against accepting workers. */
int tk_tls_reload(tk_tls *t);
/* After every worker stopped. */
void tk_tls_free(tk_tls *t);

/* Start TLS on a freshly accepted connection: c->ssl and c->net set.
 * -ENOMEM when OpenSSL cannot allocate. Thread-safe. */
int tk_tls_conn_start(tk_tls *t, struct conn *c);
/* Free the connection's TLS state; no send may be in flight. */
void tk_tls_conn_end(struct conn *c);
/* Bytes of ciphertext the incoming side can take now. */
size_t tk_tls_room(const struct conn *c);
/* Queue received ciphertext (n <= tk_tls_room). */
void tk_tls_feed(struct conn *c, const char *p, size_t n);
/* Advance the handshake and decrypt into c->in up to in_cap bytes. When the
 * handshake finishes, c->cert is set if the client presented a certificate
 * (freed by tk_tls_conn_end). */
enum tk_tls_event tk_tls_pump_in(struct conn *c, size_t in_cap);
/* Encrypt c->out from out_sent on, as far as the outgoing side takes;
 * advances c->out_sent. False on a fatal error. */
bool tk_tls_pump_out(struct conn *c);
/* Queue close_notify. */
void tk_tls_close_notify(struct conn *c);
/* Ciphertext ready to send: a contiguous run of the outgoing buffer, valid
 * until tk_tls_sent or tk_tls_conn_end. Returns its length (0: none). */
size_t tk_tls_pending(const struct conn *c, const char **p_out);
/* n bytes of the pending run were sent. */
void tk_tls_sent(struct conn *c, size_t n);
/* True once the handshake finished. */
bool tk_tls_ready(const struct conn *c);

#endif
