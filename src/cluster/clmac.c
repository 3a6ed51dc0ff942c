/*
 * Entry authentication of the cluster op log (include/tokend/cluster.h,
 * docs/ARCHITECTURE.md §10): the key file (the signing key and the keys
 * still accepted), the Tokend-Mac header and HMAC-SHA256 over the stream
 * subject, the message id, the publisher's time and the entry
 * (tk_hmac_sha256); and the other files cluster mode reads.
 */
#include "tokend/cluster.h"

#include "tokend/crypto.h"
#include "tokend/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the MAC covers before the entry: subject, message id and time, each
 * followed by a NUL (so no field can run into the next). */
#define MAC_PREFIX_MAX 256

static int mac_compute(const tk_cluster_key *k, const char *subject, const char *msg_id,
                       uint64_t time_ms, const uint8_t *data, size_t len,
                       uint8_t out[TK_CLUSTER_MAC_LEN])
{
    _Static_assert(TK_CLUSTER_MAC_LEN == TK_HASH_LEN, "the MAC is one HMAC-SHA256");
    char prefix[MAC_PREFIX_MAX];
    size_t sl = strlen(subject), il = strlen(msg_id);
    if (sl + il + 2 + 21 > sizeof prefix) {
        return TK_E_TOOBIG;
    }
    memcpy(prefix, subject, sl + 1);
    memcpy(prefix + sl + 1, msg_id, il + 1);
    int n = snprintf(prefix + sl + il + 2, 21, "%" PRIu64, time_ms);
    TK_ASSERT(n > 0 && n < 21);
    return tk_hmac_sha256(k->key, k->len, prefix, sl + il + 2 + (size_t)n + 1, data, len, out);
}

/* A key's id: the first bytes of its HMAC over a fixed label. It names the
 * key in every entry (so a node tries one key, not all) and says nothing of
 * the key itself. */
static int key_id(tk_cluster_key *k)
{
    static const char label[] = "tokend cluster key id";
    uint8_t h[TK_HASH_LEN];
    if (tk_hmac_sha256(k->key, k->len, label, sizeof label - 1, NULL, 0, h) != 0) {
        return -EIO;
    }
    memcpy(k->kid, h, sizeof k->kid);
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 2n lowercase hex digits at s into out[n]; the end, or NULL. */
static const char *unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]);
        int lo = hi >= 0 ? hexval(s[2 * i + 1]) : -1;
        if (lo < 0) {
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return s + 2 * n;
}

int tk_cluster_mac_hdr_parse(const char *s, tk_cluster_mac_hdr *out)
{
    if (s == NULL || (s = unhex(s, out->kid, sizeof out->kid)) == NULL || *s++ != '.' || *s < '1' ||
        *s > '9') {
        return TK_E_BADINPUT;
    }
    uint64_t t = 0;
    unsigned digits = 0;
    for (; *s >= '0' && *s <= '9' && digits < TK_CLUSTER_TIME_DIGITS_MAX; s++, digits++) {
        t = t * 10 + (uint64_t)(*s - '0');
    }
    if (*s++ != '.' || (s = unhex(s, out->mac, sizeof out->mac)) == NULL || *s != '\0') {
        return TK_E_BADINPUT;
    }
    out->time_ms = t;
    return 0;
}

int tk_cluster_sign(const tk_cluster_key *k, const char *subject, const char *msg_id,
                    uint64_t time_ms, const uint8_t *data, size_t len,
                    char out[TK_CLUSTER_MAC_HDR_MAX])
{
    uint8_t mac[TK_CLUSTER_MAC_LEN];
    if (time_ms == 0 || time_ms > TK_CLUSTER_TIME_MAX) {
        return TK_E_INVALID;
    }
    int rc = mac_compute(k, subject, msg_id, time_ms, data, len, mac);
    if (rc != 0) {
        return rc;
    }
    char kid[2 * TK_CLUSTER_KID_LEN + 1], m[2 * TK_CLUSTER_MAC_LEN + 1];
    tk_hex(k->kid, sizeof k->kid, kid);
    tk_hex(mac, sizeof mac, m);
    int n = snprintf(out, TK_CLUSTER_MAC_HDR_MAX, "%s.%" PRIu64 ".%s", kid, time_ms, m);
    TK_ASSERT(n > 0 && n < TK_CLUSTER_MAC_HDR_MAX);
    return 0;
}

tk_cluster_verdict tk_cluster_verify(const tk_cluster_keys *ks, const char *subject,
                                     const char *msg_id, const char *hdr, const uint8_t *data,
                                     size_t len, uint64_t *time_ms)
{
    tk_cluster_mac_hdr h;
    if (tk_cluster_mac_hdr_parse(hdr, &h) != 0) {
        return TK_CLUSTER_MAC_MISSING;
    }
    const tk_cluster_key *k = NULL;
    for (unsigned i = 0; i < ks->n && k == NULL; i++) {
        k = memcmp(ks->k[i].kid, h.kid, sizeof h.kid) == 0 ? &ks->k[i] : NULL; /* ids are public */
    }
    if (k == NULL) {
        return TK_CLUSTER_MAC_UNKNOWN_KEY;
    }
    uint8_t mac[TK_CLUSTER_MAC_LEN];
    if (msg_id == NULL || mac_compute(k, subject, msg_id, h.time_ms, data, len, mac) != 0 ||
        !tk_ct_equal(mac, h.mac, sizeof mac)) {
        return TK_CLUSTER_MAC_WRONG;
    }
    *time_ms = h.time_ms;
    return TK_CLUSTER_MAC_OK;
}

bool tk_cluster_entry_timely(uint64_t signed_ms, uint64_t server_ms, uint64_t window_ms)
{
    return signed_ms + window_ms >= server_ms && signed_ms <= server_ms + window_ms / 2;
}

bool tk_cluster_own_clock_ok(uint64_t signed_ms, uint64_t server_ms, uint64_t window_ms)
{
    return signed_ms <= server_ms + window_ms / 4 && signed_ms + window_ms / 2 >= server_ms;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int tk_cluster_keys_parse(const char *text, size_t len, tk_cluster_keys *out, char *err,
                          size_t errcap)
{
    memset(out, 0, sizeof *out);
    unsigned lines[TK_CLUSTER_KEYS_MAX] = {0};
    unsigned line = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t b = at, e = nl != NULL ? (size_t)(nl - text) : len;
        at = e + 1;
        line++;
        while (b < e && blank(text[b])) {
            b++;
        }
        while (e > b && blank(text[e - 1])) {
            e--;
        }
        if (b == e || text[b] == '#') {
            continue; /* blank, or a comment */
        }
        for (size_t i = b; i < e; i++) {
            if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e) {
                snprintf(err, errcap,
                         "line %u: a key is one line of printable ASCII (e.g. openssl rand -hex "
                         "32)",
                         line);
                return TK_E_INVALID;
            }
        }
        if (e - b < TK_CLUSTER_KEY_MIN || e - b > TK_CLUSTER_KEY_MAX) {
            snprintf(err, errcap, "line %u: a key is at least %d and at most %d bytes", line,
                     TK_CLUSTER_KEY_MIN, TK_CLUSTER_KEY_MAX);
            return TK_E_INVALID;
        }
        if (out->n == TK_CLUSTER_KEYS_MAX) {
            snprintf(err, errcap, "line %u: more than %d keys", line, TK_CLUSTER_KEYS_MAX);
            return TK_E_INVALID;
        }
        tk_cluster_key *k = &out->k[out->n];
        memcpy(k->key, text + b, e - b);
        k->len = e - b;
        if (key_id(k) != 0) {
            snprintf(err, errcap, "line %u: key id: OpenSSL failed", line);
            return -EIO;
        }
        for (unsigned i = 0; i < out->n; i++) {
            if (memcmp(out->k[i].kid, k->kid, sizeof k->kid) == 0) {
                snprintf(err, errcap, "line %u: the same key as line %u", line, lines[i]);
                return TK_E_INVALID;
            }
        }
        lines[out->n++] = line;
    }
    if (out->n == 0) {
        snprintf(err, errcap, "no key: at least %d bytes on a line (e.g. openssl rand -hex 32)",
                 TK_CLUSTER_KEY_MIN);
        return TK_E_INVALID;
    }
    return 0;
}

/* Open the file named by config key `what` and check it is a regular file
 * and, when private, not readable by group or others: its fd, or a
 * negative error with err set. */
static int open_checked(const char *what, const char *path, bool private, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = fd;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s %s: not a regular file", what, path);
        rc = TK_E_INVALID;
    } else if (private && (st.st_mode & 077)) {
        snprintf(err, errcap, "%s %s: readable by group or others (mode %03o)", what, path,
                 (unsigned)(st.st_mode & 0777));
        rc = TK_E_INVALID;
    }
    if (rc < 0) {
        close(fd);
    }
    return rc;
}

int tk_cluster_file_check(const char *what, const char *path, bool private, char *err,
                          size_t errcap)
{
    int fd = open_checked(what, path, private, err, errcap);
    if (fd < 0) {
        return fd;
    }
    close(fd);
    return 0;
}

/* A secret file named by config key `what`: regular, private, at least min
 * bytes once trailing whitespace is dropped, shorter than cap. */
static int load_private(const char *what, size_t min, const char *path, uint8_t *key, size_t cap,
                        size_t *len_out, char *err, size_t errcap)
{
    *len_out = 0;
    int fd = open_checked(what, path, true, err, errcap);
    if (fd < 0) {
        return fd;
    }
    int rc = 0;
    size_t n = 0;
    for (unsigned i = 0; i < 64 && n < cap; i++) { /* bounded: a regular file ends */
        ssize_t r = read(fd, key + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break;
        }
        n += (size_t)r;
    }
    if (rc == 0 && n == cap) {
        snprintf(err, errcap, "%s %s: longer than %zu bytes", what, path, cap - 1);
        rc = TK_E_INVALID;
    }
    close(fd);
    while (rc == 0 && n > 0 &&
           (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' ' || key[n - 1] == '\t')) {
        n--;
    }
    if (rc == 0 && n < min) {
        snprintf(err, errcap, "%s %s: at least %zu bytes%s", what, path, min,
                 min > 1 ? " (e.g. openssl rand -hex 32)" : "");
        rc = TK_E_INVALID;
    } else if (rc < 0 && rc != TK_E_INVALID) {
        snprintf(err, errcap, "%s %s: %s", what, path, strerror(-rc));
    }
    *len_out = rc == 0 ? n : 0;
    return rc;
}

int tk_cluster_keys_load(const char *path, tk_cluster_keys *out, char *err, size_t errcap)
{
    static _Thread_local char text[TK_CLUSTER_KEY_FILE_MAX + 1];
    size_t n = 0;
    int rc =
        load_private("cluster-key-file", 0, path, (uint8_t *)text, sizeof text, &n, err, errcap);
    char why[160];
    if (rc == 0 && (rc = tk_cluster_keys_parse(text, n, out, why, sizeof why)) != 0) {
        snprintf(err, errcap, "cluster-key-file %s: %s", path, why);
    }
    tk_cleanse(text, sizeof text);
    if (rc != 0) {
        tk_cleanse(out, sizeof *out);
    }
    return rc;
}

int tk_cluster_password_load(const char *path, char *out, size_t cap, char *err, size_t errcap)
{
    size_t n = 0;
    int rc =
        load_private("cluster-nats-password-file", 1, path, (uint8_t *)out, cap, &n, err, errcap);
    if (rc == 0 && memchr(out, '\0', n) != NULL) {
        snprintf(err, errcap, "cluster-nats-password-file %s: holds a NUL byte", path);
        rc = TK_E_INVALID;
    }
    out[rc == 0 ? n : 0] = '\0';
    return rc;
}
