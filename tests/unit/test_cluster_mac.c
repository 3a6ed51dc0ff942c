/*
 * Unit tests for the cluster op log's entry authentication (clmac.c): the
 * MAC is HMAC-SHA256(key, subject NUL entry) (checked against an independent
 * computation), and every way an entry can be forged fails: no MAC, a wrong
 * key, any flipped bit of the entry or of the MAC, a truncated or extended
 * entry, a MAC of the wrong length or case, and an entry replayed from
 * another stream's subject. The key file is refused unless private and long.
 */
#include "check.h"

#include "tokend/cluster.h"
#include "tokend/common.h"
#include "tokend/crypto.h"
#include "tokend/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t key[] = "0123456789abcdef0123456789abcdef";
#define KEY_LEN (sizeof key - 1)
static const uint8_t entry[] = "entry";
#define ENTRY_LEN (sizeof entry - 1)

static void mac_hex(const uint8_t *k, size_t kl, const char *subject, const uint8_t *d, size_t n,
                    char out[2 * TK_CLUSTER_MAC_LEN + 1])
{
    uint8_t mac[TK_CLUSTER_MAC_LEN];
    CHECK_EQ_INT(tk_cluster_mac(k, kl, subject, d, n, mac), 0);
    tk_hex(mac, sizeof mac, out);
}

static void test_vector(void)
{
    char hex[2 * TK_CLUSTER_MAC_LEN + 1];
    /* python3: hmac.new(key, b"TOKEND.ops\0entry", hashlib.sha256).hexdigest() */
    mac_hex(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, hex);
    CHECK_EQ_STR(hex, "a3816d1f096b8aaee7734e37e3fbcf58311d0fc769af0d4c761ece387628f806");
    CHECK(tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, hex));
}

static void test_forgeries(void)
{
    char hex[2 * TK_CLUSTER_MAC_LEN + 1];
    mac_hex(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, hex);
    /* No MAC, an empty one. */
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, NULL));
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, ""));
    /* Another key (one byte off; a prefix of it). */
    uint8_t other[sizeof key];
    memcpy(other, key, sizeof key);
    other[0] ^= 1;
    CHECK(!tk_cluster_mac_ok(other, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, hex));
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN - 1, "TOKEND.ops", entry, ENTRY_LEN, hex));
    /* Every flipped bit of the entry. */
    uint8_t e[sizeof entry];
    for (size_t i = 0; i < ENTRY_LEN * 8; i++) {
        memcpy(e, entry, sizeof entry);
        e[i / 8] ^= (uint8_t)(1u << (i % 8));
        CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", e, ENTRY_LEN, hex));
    }
    /* Truncated, extended, empty entry. */
    for (size_t n = 0; n < ENTRY_LEN; n++) {
        CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, n, hex));
    }
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN + 1, hex));
    /* Every changed hex digit of the MAC; truncated, extended, upper case. */
    char h[2 * TK_CLUSTER_MAC_LEN + 2];
    for (size_t i = 0; i < 2 * TK_CLUSTER_MAC_LEN; i++) {
        strcpy(h, hex);
        h[i] = h[i] == '0' ? '1' : '0';
        CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, h));
    }
    strcpy(h, hex);
    h[2 * TK_CLUSTER_MAC_LEN - 1] = '\0';
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, h));
    strcpy(h, hex);
    strcat(h, "0");
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, h));
    bool upper_differs = false;
    strcpy(h, hex);
    for (size_t i = 0; i < 2 * TK_CLUSTER_MAC_LEN; i++) {
        upper_differs = upper_differs || (h[i] >= 'a' && h[i] <= 'f');
        h[i] = h[i] >= 'a' && h[i] <= 'f' ? (char)(h[i] - 'a' + 'A') : h[i];
    }
    CHECK(upper_differs);
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, h));
    /* Replayed on another stream's subject, or with the boundary moved. */
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "OTHER.ops", entry, ENTRY_LEN, hex));
    CHECK(!tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.op", (const uint8_t *)"sentry", 6, hex));
    /* The genuine one still passes. */
    CHECK(tk_cluster_mac_ok(key, KEY_LEN, "TOKEND.ops", entry, ENTRY_LEN, hex));
}

static int write_key(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

static void test_key_file(void)
{
    char dir[] = "/tmp/tokend-clkey-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof path, "%s/k", dir);
    uint8_t k[TK_CLUSTER_KEY_MAX + 1];
    size_t kl = 99;
    char err[256];
    const char *good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    CHECK_EQ_INT(write_key(path, good, 0600), 0);
    CHECK_EQ_INT(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err), 0);
    CHECK_EQ_INT(kl, 64); /* the newline dropped */
    CHECK(memcmp(k, good, 64) == 0);
    CHECK_EQ_INT(write_key(path, good, 0400), 0);
    CHECK_EQ_INT(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err), 0);
    /* Group- or other-readable (or writable): refused. */
    static const mode_t loose[] = {0640, 0604, 0620, 0602, 0644};
    for (size_t i = 0; i < TK_ARRAY_LEN(loose); i++) {
        CHECK_EQ_INT(write_key(path, good, loose[i]), 0);
        CHECK(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err) != 0);
        CHECK(strstr(err, "group or others") != NULL);
        CHECK_EQ_INT(kl, 0);
    }
    /* Too short (31 bytes, or 32 counting the newline), empty. */
    CHECK_EQ_INT(write_key(path, "0123456789abcdef0123456789abcde\n", 0600), 0);
    CHECK(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err) != 0);
    CHECK(strstr(err, "at least") != NULL);
    CHECK_EQ_INT(write_key(path, "", 0600), 0);
    CHECK(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err) != 0);
    /* Too long. */
    char *big = malloc(TK_CLUSTER_KEY_MAX + 2);
    CHECK(big != NULL);
    if (big != NULL) {
        memset(big, 'a', TK_CLUSTER_KEY_MAX + 1);
        big[TK_CLUSTER_KEY_MAX + 1] = '\0';
        CHECK_EQ_INT(write_key(path, big, 0600), 0);
        CHECK(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err) != 0);
        big[TK_CLUSTER_KEY_MAX] = '\0';
        CHECK_EQ_INT(write_key(path, big, 0600), 0);
        CHECK_EQ_INT(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err), 0);
        CHECK_EQ_INT(kl, TK_CLUSTER_KEY_MAX);
        free(big);
    }
    /* Missing, a directory. */
    unlink(path);
    CHECK(tk_cluster_key_load(path, k, sizeof k, &kl, err, sizeof err) != 0);
    CHECK(tk_cluster_key_load(dir, k, sizeof k, &kl, err, sizeof err) != 0);
    rmdir(dir);
}

static void test_password_file(void)
{
    char dir[] = "/tmp/tokend-clpw-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64], pw[16], err[256];
    snprintf(path, sizeof path, "%s/p", dir);
    CHECK_EQ_INT(write_key(path, "s3cret\n", 0600), 0);
    CHECK_EQ_INT(tk_cluster_password_load(path, pw, sizeof pw, err, sizeof err), 0);
    CHECK_EQ_STR(pw, "s3cret");
    CHECK_EQ_INT(write_key(path, "s3cret\n", 0640), 0);
    CHECK(tk_cluster_password_load(path, pw, sizeof pw, err, sizeof err) != 0);
    CHECK(strstr(err, "cluster-nats-password-file") != NULL);
    CHECK_EQ_STR(pw, "");
    CHECK_EQ_INT(write_key(path, "\n", 0600), 0);
    CHECK(tk_cluster_password_load(path, pw, sizeof pw, err, sizeof err) != 0);
    CHECK_EQ_INT(write_key(path, "0123456789abcdef", 0600), 0); /* 16 bytes: no room for NUL */
    CHECK(tk_cluster_password_load(path, pw, sizeof pw, err, sizeof err) != 0);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite("ab\0cd", 1, 5, f);
        fclose(f);
    }
    CHECK(tk_cluster_password_load(path, pw, sizeof pw, err, sizeof err) != 0);
    CHECK(strstr(err, "NUL") != NULL);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    RUN(test_vector);
    RUN(test_forgeries);
    RUN(test_key_file);
    RUN(test_password_file);
    return check_report();
}
