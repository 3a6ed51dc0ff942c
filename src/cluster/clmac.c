/*
 * Entry authentication of the cluster op log (include/tokend/cluster.h,
 * docs/ARCHITECTURE.md §10): HMAC-SHA256 over the stream subject and the
 * entry (tk_hmac_sha256), and the key file it is keyed with.
 */
#include "tokend/cluster.h"

#include "tokend/crypto.h"
#include "tokend/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tk_cluster_mac(const uint8_t *key, size_t key_len, const char *subject, const uint8_t *data,
                   size_t len, uint8_t out[TK_CLUSTER_MAC_LEN])
{
    _Static_assert(TK_CLUSTER_MAC_LEN == TK_HASH_LEN, "the MAC is one HMAC-SHA256");
    /* The subject with its NUL binds the entry to its stream. */
    return tk_hmac_sha256(key, key_len, subject, strlen(subject) + 1, data, len, out);
}

bool tk_cluster_mac_ok(const uint8_t *key, size_t key_len, const char *subject, const uint8_t *data,
                       size_t len, const char *hex)
{
    uint8_t mac[TK_CLUSTER_MAC_LEN];
    char want[2 * TK_CLUSTER_MAC_LEN + 1];
    if (hex == NULL || strlen(hex) != 2 * TK_CLUSTER_MAC_LEN ||
        tk_cluster_mac(key, key_len, subject, data, len, mac) != 0) {
        return false;
    }
    tk_hex(mac, sizeof mac, want);
    return tk_ct_equal(want, hex, 2 * TK_CLUSTER_MAC_LEN);
}

int tk_cluster_file_check(const char *what, const char *path, bool private, char *err,
                          size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s %s: not a regular file", what, path);
        rc = TK_E_INVALID;
    } else if (private && (st.st_mode & 077)) {
        snprintf(err, errcap, "%s %s: readable by group or others (mode %03o)", what, path,
                 (unsigned)(st.st_mode & 0777));
        rc = TK_E_INVALID;
    }
    close(fd);
    return rc;
}

/* A secret file named by config key `what`: regular, private, at least min
 * bytes once trailing whitespace is dropped, shorter than cap. */
static int load_private(const char *what, size_t min, const char *path, uint8_t *key, size_t cap,
                        size_t *len_out, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    size_t n = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s %s: not a regular file", what, path);
        rc = TK_E_INVALID;
    } else if (st.st_mode & 077) {
        snprintf(err, errcap, "%s %s: readable by group or others (mode %03o)", what, path,
                 (unsigned)(st.st_mode & 0777));
        rc = TK_E_INVALID;
    } else {
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

int tk_cluster_key_load(const char *path, uint8_t *key, size_t cap, size_t *len_out, char *err,
                        size_t errcap)
{
    return load_private("cluster-key-file", TK_CLUSTER_KEY_MIN, path, key, cap, len_out, err,
                        errcap);
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
