/*
 * TLS 1.2/1.3 on a listener: OpenSSL over a BIO pair fed and drained by the
 * worker's ring (tls.h says how the bytes flow). The idea to keep in mind:
 * OpenSSL never touches a socket here; it only sees two fixed buffers, so
 * every wait (a slow handshake, a peer that stops reading) is a buffer that
 * stays full and a deadline that the server's timer enforces.
 *
 * Policy: TLS 1.2 with ECDHE and AEAD suites only, TLS 1.3 with OpenSSL's
 * defaults; no compression; no renegotiation (an attempt closes the
 * connection); ALPN http/1.1 or nothing; stateless session tickets for both
 * versions under a key shared by all workers and all reloaded contexts,
 * rotated every TK_TLS_TICKET_ROTATE_S with the previous key still accepted
 * (its tickets are renewed).
 *
 * Client certificates (RFC 8705): every TLS listener asks for one without
 * requiring it, and accepts whatever is presented; whether it chains to
 * tls-ca is recorded (SSL_get_verify_result), not enforced, because a
 * self_signed_tls_client_auth client is identified by its thumbprint alone.
 * The application decides per client (src/core); no OpenSSL type leaves
 * this file: once the handshake is done the certificate is summarised in a
 * tk_peer_cert (cert.h) that the connection owns.
 */
#include "tls.h"
#include "tokend/cert.h"
#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* conn.tls_flags */
#define TLSF_RENEGOTIATE 0x01 /* the peer asked for a renegotiation */
#define TLSF_NOTIFIED    0x02 /* close_notify queued */

static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const unsigned char alpn_http11[] = "\x08http/1.1";

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};

struct tk_tls {
    pthread_mutex_t lock; /* ctx and the ticket keys */
    SSL_CTX *ctx;
    char *cert, *key;
    char *ca;                  /* tls-ca, or NULL: client certificates are then never verified */
    struct ticket_key keys[2]; /* [0] current, [1] previous */
    bool have_prev;
    uint64_t rotated_ms;
};

static int ex_tls = -1; /* SSL_CTX ex_data index of the owning tk_tls */

/* The first OpenSSL error's reason, for logs (names a cause, never a key). */
static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    return r != NULL ? r : "unknown";
}

/* ---- Session-ticket keys ------------------------------------------------- */

static int new_ticket_key(struct ticket_key *k)
{
    return RAND_bytes((unsigned char *)k, (int)sizeof(*k)) == 1 ? 0 : -EIO;
}

/* Called under t->lock: rotate when the current key is a period old. */
static void maybe_rotate(tk_tls *t)
{
    uint64_t now = tk_mono_ms();
    if (now - t->rotated_ms < (uint64_t)TK_TLS_TICKET_ROTATE_S * 1000) {
        return;
    }
    struct ticket_key k;
    if (new_ticket_key(&k) != 0) {
        return; /* keep the current key; try again on the next ticket */
    }
    t->keys[1] = t->keys[0];
    t->keys[0] = k;
    t->have_prev = true;
    t->rotated_ms = now;
    OPENSSL_cleanse(&k, sizeof(k));
}

static int set_ticket_ctx(const struct ticket_key *k, const unsigned char *iv, EVP_CIPHER_CTX *cctx,
                          EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[3];
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) != 1 ||
        EVP_MAC_CTX_set_params(hctx, params) != 1) {
        return -1;
    }
    return 0;
}

/* OpenSSL's ticket callback: 1 = key set, 2 = key set and renew the ticket,
 * 0 = no such key (full handshake), -1 = error. A ticket that decrypts is
 * always renewed: OpenSSL clients use a TLS 1.3 ticket once (RFC 8446
 * §C.4), so without a new one every other reconnection would be a full
 * handshake; and a ticket under the previous key moves to the current. */
static int ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    tk_tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), ex_tls);
    struct ticket_key k;
    int ret = 1;
    pthread_mutex_lock(&t->lock);
    maybe_rotate(t);
    if (enc) {
        k = t->keys[0];
    } else if (CRYPTO_memcmp(name, t->keys[0].name, 16) == 0) {
        k = t->keys[0];
        ret = 2;
    } else if (t->have_prev && CRYPTO_memcmp(name, t->keys[1].name, 16) == 0) {
        k = t->keys[1];
        ret = 2;
    } else {
        ret = 0;
    }
    pthread_mutex_unlock(&t->lock);
    if (ret == 0) {
        return 0;
    }
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, 16) != 1) {
            ret = -1;
        }
    }
    if (ret > 0 && set_ticket_ctx(&k, iv, cctx, hctx, enc) != 0) {
        ret = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return ret;
}

/* ---- Contexts ------------------------------------------------------------ */

/* ALPN: http/1.1 when offered; a client that offers only other protocols is
 * refused (RFC 7301 §3.2) rather than spoken to in a protocol it did not ask
 * for. */
static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s;
    (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, alpn_http11, sizeof(alpn_http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A key file that wants a passphrase fails instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* Ask for a client certificate, never require one, and let the handshake
 * go on whatever the verification says: the result stays in the session
 * (SSL_get_verify_result) for peer_record. */
static int accept_any_cert(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static SSL_CTX *build_ctx(tk_tls *t)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tk_log_error("tls_context", "error=\"%s\"", ossl_reason());
        return NULL;
    }
    const char *what = NULL;
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        what = "tls-cert";
    } else if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
        what = "tls-key";
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        what = "tls-key does not match tls-cert";
    } else if (t->ca != NULL && SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
        what = "tls-ca";
    } else if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
               SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
               SSL_CTX_set_ex_data(ctx, ex_tls, t) != 1 ||
               SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
        what = "settings";
    }
    if (what != NULL) {
        tk_log_error("tls_context", "cert=\"%s\" key=\"%s\" failed=\"%s\" error=\"%s\"", t->cert,
                     t->key, what, ossl_reason());
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only: stateless */
    SSL_CTX_set_timeout(ctx, TK_TLS_TICKET_LIFETIME_S);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    /* With a peer certificate requested, OpenSSL resumes only sessions of
     * a named context (a resumed session carries the client certificate
     * and its verification result along). */
    static const unsigned char sid_ctx[] = "tokend";
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1) != 1) {
        tk_log_error("tls_context", "failed=\"session id context\"");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tk_tls_new(const char *cert, const char *key, const char *ca, tk_tls **out)
{
    if (ex_tls < 0) {
        ex_tls = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    tk_tls *t = calloc(1, sizeof(*t));
    if (t == NULL || ex_tls < 0) {
        free(t);
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->cert = strdup(cert);
    t->key = strdup(key);
    t->ca = ca != NULL && ca[0] != '\0' ? strdup(ca) : NULL;
    t->rotated_ms = tk_mono_ms();
    if (t->cert == NULL || t->key == NULL || (ca != NULL && ca[0] != '\0' && t->ca == NULL) ||
        new_ticket_key(&t->keys[0]) != 0) {
        tk_tls_free(t);
        return -ENOMEM;
    }
    t->ctx = build_ctx(t);
    if (t->ctx == NULL) {
        tk_tls_free(t);
        return TK_E_INVALID;
    }
    *out = t;
    return 0;
}

int tk_tls_reload(tk_tls *t)
{
    SSL_CTX *ctx = build_ctx(t);
    if (ctx == NULL) {
        return TK_E_INVALID;
    }
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* connections made with it hold their own reference */
    return 0;
}

void tk_tls_free(tk_tls *t)
{
    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ctx);
    free(t->cert);
    free(t->key);
    free(t->ca);
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* ---- Connections --------------------------------------------------------- */

/* Renegotiation (TLS 1.2 and earlier) is refused by SSL_OP_NO_RENEGOTIATION
 * with a no_renegotiation alert; the connection is then closed rather than
 * kept talking to a client that wanted something we do not do. */
static void info_cb(const SSL *s, int where, int ret)
{
    struct conn *c = SSL_get_app_data(s);
    if (c == NULL) {
        return;
    }
    bool renegotiating = (where & SSL_CB_HANDSHAKE_START) && SSL_is_init_finished(s) &&
                         SSL_version(s) < TLS1_3_VERSION;
    bool refused = (where & SSL_CB_WRITE_ALERT) && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION;
    if (renegotiating || refused) {
        c->tls_flags |= TLSF_RENEGOTIATE;
    }
}

int tk_tls_conn_start(tk_tls *t, struct conn *c)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    BIO *inner = NULL, *net = NULL;
    if (ssl == NULL || BIO_new_bio_pair(&inner, TK_TLS_NET_OUT, &net, TK_TLS_NET_IN) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_bio(ssl, inner, inner); /* the SSL owns the inner half */
    SSL_set_accept_state(ssl);
    SSL_set_app_data(ssl, c);
    SSL_set_info_callback(ssl, info_cb);
    c->ssl = ssl;
    c->net = net;
    c->tls_flags = 0;
    c->cert = NULL;
    return 0;
}

void tk_tls_conn_end(struct conn *c)
{
    SSL_free(c->ssl);
    BIO_free(c->net);
    free(c->cert);
    c->ssl = NULL;
    c->net = NULL;
    c->cert = NULL;
}

/* The subject as RFC 4514 text, canonical (cert.h); "" when OpenSSL cannot
 * render it or the canonical form does not fit. */
static void peer_subject(X509 *x, tk_peer_cert *pc)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL) {
        return;
    }
    char *p = NULL;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) > 0) {
        long n = BIO_get_mem_data(b, &p);
        size_t len = 0;
        if (n > 0 && n <= 4 * TK_CERT_DN_MAX &&
            tk_cert_dn_canon((tk_slice){p, (size_t)n}, pc->subject, sizeof pc->subject, &len) ==
                0) {
            pc->subject_len = (uint16_t)len;
        }
    }
    BIO_free(b);
}

/* One name of the certificate, if it is of a kind tokend matches and its
 * canonical form fits: its hash joins pc->san. */
static void peer_san(const GENERAL_NAME *g, tk_peer_cert *pc)
{
    char text[TK_CERT_SAN_MAX + 1], canon[TK_CERT_SAN_MAX + 1];
    const char *prefix = NULL;
    const ASN1_STRING *v = NULL;
    switch (g->type) {
    case GEN_DNS:
        prefix = "dns:", v = g->d.dNSName;
        break;
    case GEN_URI:
        prefix = "uri:", v = g->d.uniformResourceIdentifier;
        break;
    case GEN_EMAIL:
        prefix = "email:", v = g->d.rfc822Name;
        break;
    case GEN_IPADD:
        prefix = "ip:", v = g->d.iPAddress;
        break;
    default:
        return;
    }
    const unsigned char *d = ASN1_STRING_get0_data(v);
    int n = ASN1_STRING_length(v);
    size_t plen = strlen(prefix), len = 0;
    if (d == NULL || n <= 0) {
        return;
    }
    memcpy(text, prefix, plen);
    if (g->type == GEN_IPADD) {
        char ip[INET6_ADDRSTRLEN];
        int af = n == 4 ? AF_INET : AF_INET6;
        if ((n != 4 && n != 16) || inet_ntop(af, d, ip, sizeof ip) == NULL) {
            return;
        }
        len = plen + strlen(ip);
        memcpy(text + plen, ip, len - plen);
    } else {
        /* An IA5String: a NUL inside it would hide the rest; refused by
         * the canonical form like any byte outside printable ASCII. */
        if ((size_t)n > TK_CERT_SAN_MAX - plen) {
            return;
        }
        memcpy(text + plen, d, (size_t)n);
        len = plen + (size_t)n;
    }
    size_t clen = 0;
    if (tk_cert_san_canon((tk_slice){text, len}, canon, sizeof canon, &clen) == 0) {
        tk_sha256(canon, clen, pc->san[pc->nsans++]);
    }
}

/* The subject alternative names, up to TK_CERT_SANS_MAX. */
static void peer_sans(X509 *x, tk_peer_cert *pc)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) {
        return;
    }
    int n = sk_GENERAL_NAME_num(names);
    for (int i = 0; i < n && pc->nsans < TK_CERT_SANS_MAX; i++) {
        peer_san(sk_GENERAL_NAME_value(names, i), pc);
    }
    GENERAL_NAMES_free(names);
}

/* Once the handshake is done: summarise the client's certificate, if any,
 * into c->cert. An allocation failure leaves it NULL, which the
 * application treats as "no certificate" (fails closed). */
static void peer_record(struct conn *c)
{
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    if (x == NULL) {
        return;
    }
    tk_peer_cert *pc = calloc(1, sizeof *pc);
    if (pc == NULL) {
        return;
    }
    unsigned len = 0;
    if (X509_digest(x, EVP_sha256(), pc->sha256, &len) != 1 || len != TK_HASH_LEN) {
        ERR_clear_error();
        free(pc);
        return;
    }
    pc->verified = SSL_get_verify_result(c->ssl) == X509_V_OK;
    peer_subject(x, pc);
    peer_sans(x, pc);
    ERR_clear_error();
    c->cert = pc;
}

size_t tk_tls_room(const struct conn *c)
{
    return BIO_ctrl_get_write_guarantee(c->net);
}

void tk_tls_feed(struct conn *c, const char *p, size_t n)
{
    TK_ASSERT(n <= tk_tls_room(c));
    int w = BIO_write(c->net, p, (int)n);
    TK_ASSERT(w == (int)n);
}

bool tk_tls_ready(const struct conn *c)
{
    return SSL_is_init_finished(c->ssl);
}

/* What a failed SSL call means for the connection. */
static enum tk_tls_event classify(struct conn *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return TK_TLS_NONE;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        return TK_TLS_EOF;
    }
    tk_log_debug("tls_failed", "error=\"%s\"", ossl_reason());
    ERR_clear_error(); /* the queue is per thread: leave it clean for others */
    return TK_TLS_FAILED;
}

enum tk_tls_event tk_tls_pump_in(struct conn *c, size_t in_cap)
{
    enum tk_tls_event ev = TK_TLS_NONE;
    if (!SSL_is_init_finished(c->ssl)) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            return classify(c, r);
        }
        ev = TK_TLS_HANDSHAKE;
        peer_record(c);
    }
    for (unsigned i = 0; i < TK_TLS_RECORDS_PER_TURN && c->in_len < in_cap; i++) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, c->in + c->in_len, (int)(in_cap - c->in_len));
        if (n <= 0) {
            enum tk_tls_event e = classify(c, n);
            if (e != TK_TLS_NONE) {
                return e;
            }
            break;
        }
        c->in_len += (size_t)n;
    }
    return (c->tls_flags & TLSF_RENEGOTIATE) ? TK_TLS_FAILED : ev;
}

bool tk_tls_pump_out(struct conn *c)
{
    for (unsigned i = 0; i < TK_TLS_RECORDS_PER_TURN && c->out_sent < c->out.len; i++) {
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->out.buf + c->out_sent, (int)(c->out.len - c->out_sent));
        if (n <= 0) {
            return classify(c, n) == TK_TLS_NONE;
        }
        c->out_sent += (size_t)n;
    }
    return true;
}

void tk_tls_close_notify(struct conn *c)
{
    if (!(c->tls_flags & TLSF_NOTIFIED)) {
        c->tls_flags |= TLSF_NOTIFIED;
        ERR_clear_error();
        SSL_shutdown(c->ssl); /* queues the alert; we do not wait for the peer's */
        ERR_clear_error();
    }
}

size_t tk_tls_pending(const struct conn *c, const char **p_out)
{
    char *p = NULL;
    int n = BIO_nread0(c->net, &p);
    if (n <= 0) {
        return 0;
    }
    *p_out = p;
    return (size_t)n;
}

void tk_tls_sent(struct conn *c, size_t n)
{
    char *p = NULL;
    int got = BIO_nread(c->net, &p, (int)n);
    TK_ASSERT(got == (int)n);
}
