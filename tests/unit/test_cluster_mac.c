/*
 * Unit tests for the cluster op log's entry authentication (clmac.c): the
 * Tokend-Mac value is "<key id>.<time>.<HMAC-SHA256(key, subject NUL msg-id
 * NUL time NUL entry)>" (checked against an independent computation), its
 * parser is strict, and every way an entry can be forged fails: no MAC, a
 * key not held, a wrong key, any flipped bit of the entry, of the MAC, of
 * the message id or of the time, a truncated or extended entry, and an entry
 * replayed from another stream's subject. Key rotation: the file's first key
 * signs, every key verifies. The key file is refused unless private, and
 * each key unless long and printable.
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

static const char key_text[] = "0123456789abcdef0123456789abcdef";
static const uint8_t entry[] = "entry";
#define ENTRY_LEN (sizeof entry - 1)
#define ID        "a-00112233-7"
#define T         1764676800000ull

static tk_cluster_keys keys_of(const char *text)
{
    tk_cluster_keys ks;
    char err[160];
    CHECK_EQ_INT(tk_cluster_keys_parse(text, strlen(text), &ks, err, sizeof err), 0);
    return ks;
}

static tk_cluster_verdict verify(const tk_cluster_keys *ks, const char *subject, const char *id,
                                 const char *hdr, const uint8_t *d, size_t n)
{
    uint64_t t = 0;
    tk_cluster_verdict v = tk_cluster_verify(ks, subject, id, hdr, d, n, &t);
    CHECK(v != TK_CLUSTER_MAC_OK || t == T);
    return v;
}

static void test_vector(void)
{
    tk_cluster_keys ks = keys_of(key_text);
    CHECK_EQ_INT(ks.n, 1);
    char hdr[TK_CLUSTER_MAC_HDR_MAX];
    CHECK_EQ_INT(tk_cluster_sign(&ks.k[0], "TOKEND.ops", ID, T, entry, ENTRY_LEN, hdr), 0);
    /* python3: hmac.new(key, b"tokend cluster key id", sha256).hexdigest()[:16], and
     * hmac.new(key, b"TOKEND.ops\0a-00112233-7\01764676800000\0entry", sha256).hexdigest() */
    CHECK_EQ_STR(hdr, "4eae2bb878f7bc26.1764676800000."
                      "87305acdab84ec36af4010d2909e5e9f3f8bed103c71f54296de042b71504879");
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_OK);
    CHECK(tk_cluster_sign(&ks.k[0], "TOKEND.ops", ID, 0, entry, ENTRY_LEN, hdr) != 0);
    CHECK(tk_cluster_sign(&ks.k[0], "TOKEND.ops", ID, TK_CLUSTER_TIME_MAX + 1, entry, ENTRY_LEN,
                          hdr) != 0);
}

static void test_header_parser(void)
{
    tk_cluster_mac_hdr h;
    const char *mac = "87305acdab84ec36af4010d2909e5e9f3f8bed103c71f54296de042b71504879";
    char s[256];
    snprintf(s, sizeof s, "4eae2bb878f7bc26.1.%s", mac);
    CHECK_EQ_INT(tk_cluster_mac_hdr_parse(s, &h), 0);
    CHECK_EQ_INT(h.time_ms, 1);
    snprintf(s, sizeof s, "4eae2bb878f7bc26.999999999999999.%s", mac);
    CHECK_EQ_INT(tk_cluster_mac_hdr_parse(s, &h), 0);
    CHECK(h.time_ms == TK_CLUSTER_TIME_MAX);
    static const char *const bad[] = {
        "",
        "4eae2bb878f7bc26",
        "4eae2bb878f7bc26.1764676800000",
        "4eae2bb878f7bc26.1764676800000.",
        "4eae2bb878f7bc2.1764676800000.%s",     /* short id */
        "4eae2bb878f7bc266.1764676800000.%s",   /* long id */
        "4EAE2BB878F7BC26.1764676800000.%s",    /* upper case */
        "4eae2bb878f7bc26.01764676800000.%s",   /* leading zero */
        "4eae2bb878f7bc26.0.%s",                /* no time */
        "4eae2bb878f7bc26..%s",                 /* empty time */
        "4eae2bb878f7bc26.-1.%s",               /* sign */
        "4eae2bb878f7bc26.1000000000000000.%s", /* 16 digits */
        "4eae2bb878f7bc26.1764676800000.%s0",   /* long MAC */
        "4eae2bb878f7bc26.1764676800000.%s.",   /* trailing */
        " 4eae2bb878f7bc26.1764676800000.%s",   /* leading blank */
        "4eae2bb878f7bc26.1764676800000.%s ",   /* trailing blank */
        "4eae2bb878f7bc26:1764676800000:%s",    /* separators */
        "%s",                                   /* the old form: a bare MAC */
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        snprintf(s, sizeof s, bad[i], mac);
        CHECK_EQ_INT(tk_cluster_mac_hdr_parse(s, &h), TK_E_BADINPUT);
    }
    snprintf(s, sizeof s, "4eae2bb878f7bc26.1764676800000.%.63s", mac); /* short MAC */
    CHECK_EQ_INT(tk_cluster_mac_hdr_parse(s, &h), TK_E_BADINPUT);
    snprintf(s, sizeof s, "4eae2bb878f7bc26.1764676800000.%.63sG", mac);
    CHECK_EQ_INT(tk_cluster_mac_hdr_parse(s, &h), TK_E_BADINPUT);
    CHECK_EQ_INT(tk_cluster_mac_hdr_parse(NULL, &h), TK_E_BADINPUT);
}

static void test_forgeries(void)
{
    tk_cluster_keys ks = keys_of(key_text);
    char hdr[TK_CLUSTER_MAC_HDR_MAX];
    CHECK_EQ_INT(tk_cluster_sign(&ks.k[0], "TOKEND.ops", ID, T, entry, ENTRY_LEN, hdr), 0);
    /* No MAC, an empty one, no message id. */
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, NULL, entry, ENTRY_LEN), TK_CLUSTER_MAC_MISSING);
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, "", entry, ENTRY_LEN), TK_CLUSTER_MAC_MISSING);
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", NULL, hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_WRONG);
    /* A key this node does not hold: by its id, and by its MAC under our id. */
    tk_cluster_keys other = keys_of("1123456789abcdef0123456789abcdef");
    CHECK_EQ_INT(verify(&other, "TOKEND.ops", ID, hdr, entry, ENTRY_LEN),
                 TK_CLUSTER_MAC_UNKNOWN_KEY);
    memcpy(other.k[0].kid, ks.k[0].kid, TK_CLUSTER_KID_LEN);
    CHECK_EQ_INT(verify(&other, "TOKEND.ops", ID, hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_WRONG);
    /* Every flipped bit of the entry. */
    uint8_t e[sizeof entry];
    for (size_t i = 0; i < ENTRY_LEN * 8; i++) {
        memcpy(e, entry, sizeof entry);
        e[i / 8] ^= (uint8_t)(1u << (i % 8));
        CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, hdr, e, ENTRY_LEN), TK_CLUSTER_MAC_WRONG);
    }
    /* Truncated, extended entry. */
    for (size_t n = 0; n < ENTRY_LEN; n++) {
        CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, hdr, entry, n), TK_CLUSTER_MAC_WRONG);
    }
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, hdr, entry, ENTRY_LEN + 1), TK_CLUSTER_MAC_WRONG);
    /* Every changed digit of the header: the id names no key, a time or
     * MAC digit makes the MAC wrong (a replay under a new time or id). */
    char h[TK_CLUSTER_MAC_HDR_MAX];
    for (size_t i = 0; hdr[i] != '\0'; i++) {
        if (hdr[i] == '.') {
            continue;
        }
        strcpy(h, hdr);
        h[i] = h[i] == '1' ? '2' : '1';
        tk_cluster_verdict want =
            i < 2 * TK_CLUSTER_KID_LEN ? TK_CLUSTER_MAC_UNKNOWN_KEY : TK_CLUSTER_MAC_WRONG;
        CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, h, entry, ENTRY_LEN), want);
    }
    /* Another message id (a replay dodging JetStream's duplicate window), a
     * field boundary moved. */
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", "a-00112233-8", hdr, entry, ENTRY_LEN),
                 TK_CLUSTER_MAC_WRONG);
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", "", hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_WRONG);
    CHECK_EQ_INT(verify(&ks, "TOKEND.op", "s\0" ID, hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_WRONG);
    /* Replayed on another stream's subject. */
    CHECK_EQ_INT(verify(&ks, "OTHER.ops", ID, hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_WRONG);
    /* An overlong id: refused, never truncated into a match. */
    char long_id[300];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CHECK(tk_cluster_sign(&ks.k[0], "TOKEND.ops", long_id, T, entry, ENTRY_LEN, h) != 0);
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", long_id, hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_WRONG);
    /* The genuine one still passes. */
    CHECK_EQ_INT(verify(&ks, "TOKEND.ops", ID, hdr, entry, ENTRY_LEN), TK_CLUSTER_MAC_OK);
}

/* Rotation: the first key signs; an entry signed with any key of the file
 * verifies; a key dropped from the file no longer does. */
static void test_rotation(void)
{
    const char *old_k = "old-key-0123456789abcdef0123456789";
    const char *new_k = "new-key-0123456789abcdef0123456789";
    char text[256];
    tk_cluster_keys olds = keys_of(old_k);
    tk_cluster_keys news = keys_of(new_k);
    snprintf(text, sizeof text, "# current\n%s\n\n  # next, accepted\n\t%s  \r\n", old_k, new_k);
    tk_cluster_keys step1 = keys_of(text);
    snprintf(text, sizeof text, "%s\n%s\n", new_k, old_k);
    tk_cluster_keys step2 = keys_of(text);
    CHECK_EQ_INT(step1.n, 2);
    CHECK(memcmp(step1.k[0].kid, olds.k[0].kid, TK_CLUSTER_KID_LEN) == 0);
    CHECK(memcmp(step1.k[1].kid, news.k[0].kid, TK_CLUSTER_KID_LEN) == 0);
    CHECK(memcmp(step2.k[0].kid, news.k[0].kid, TK_CLUSTER_KID_LEN) == 0);
    CHECK_EQ_INT(step2.k[0].len, strlen(new_k));
    char by_old[TK_CLUSTER_MAC_HDR_MAX], by_new[TK_CLUSTER_MAC_HDR_MAX];
    CHECK_EQ_INT(tk_cluster_sign(&step1.k[0], "TOKEND.ops", ID, T, entry, ENTRY_LEN, by_old), 0);
    CHECK_EQ_INT(tk_cluster_sign(&step2.k[0], "TOKEND.ops", ID, T, entry, ENTRY_LEN, by_new), 0);
    const tk_cluster_keys *all[] = {&step1, &step2};
    for (size_t i = 0; i < TK_ARRAY_LEN(all); i++) {
        CHECK_EQ_INT(verify(all[i], "TOKEND.ops", ID, by_old, entry, ENTRY_LEN), TK_CLUSTER_MAC_OK);
        CHECK_EQ_INT(verify(all[i], "TOKEND.ops", ID, by_new, entry, ENTRY_LEN), TK_CLUSTER_MAC_OK);
    }
    CHECK_EQ_INT(verify(&olds, "TOKEND.ops", ID, by_new, entry, ENTRY_LEN),
                 TK_CLUSTER_MAC_UNKNOWN_KEY);
    CHECK_EQ_INT(verify(&news, "TOKEND.ops", ID, by_old, entry, ENTRY_LEN),
                 TK_CLUSTER_MAC_UNKNOWN_KEY);
}

/* The replay window: at most W older than the stream's timestamp, at most
 * W/2 newer (a publisher's clock ahead); the bounds included. */
static void test_timely(void)
{
    const uint64_t w = 60000, s = T;
    CHECK(tk_cluster_entry_timely(s, s, w));
    CHECK(tk_cluster_entry_timely(s - 5, s, w)); /* the usual: signed just before it was stored */
    CHECK(tk_cluster_entry_timely(s - w, s, w));
    CHECK(!tk_cluster_entry_timely(s - w - 1, s, w));
    CHECK(!tk_cluster_entry_timely(s - 2 * w, s, w)); /* replayed after the duplicate window */
    CHECK(tk_cluster_entry_timely(s + w / 2, s, w));
    CHECK(!tk_cluster_entry_timely(s + w / 2 + 1, s, w));
    CHECK(!tk_cluster_entry_timely(1, s, w));
    CHECK(!tk_cluster_entry_timely(TK_CLUSTER_TIME_MAX, s, w));
    CHECK(!tk_cluster_entry_timely(s, 0, w)); /* no stream time: refused */
}

/* A node's own clock: it stops writing at half the drift the others refuse. */
static void test_own_clock(void)
{
    const uint64_t w = 60000, s = T;
    CHECK(tk_cluster_own_clock_ok(s - 3, s, w));
    CHECK(tk_cluster_own_clock_ok(s + w / 4, s, w));
    CHECK(!tk_cluster_own_clock_ok(s + w / 4 + 1, s, w));
    CHECK(tk_cluster_own_clock_ok(s - w / 2, s, w));
    CHECK(!tk_cluster_own_clock_ok(s - w / 2 - 1, s, w));
    /* Whatever this node still writes, every node accepts. */
    for (uint64_t t = s - w; t <= s + w; t += 250) {
        CHECK(!tk_cluster_own_clock_ok(t, s, w) || tk_cluster_entry_timely(t, s, w));
    }
}

static void test_key_text(void)
{
    tk_cluster_keys ks;
    char err[160];
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "no key"},
        {"# only a comment\n\n", "no key"},
        {"0123456789abcdef0123456789abcde\n", "at least 32"},
        {"0123456789abcdef\x01"
         "0123456789abcdef\n",
         "printable"},
        {"0123456789abcdef\xc3\xa9"
         "0123456789abcdef\n",
         "printable"},
        {"0123456789abcdef0123456789abcdef\n0123456789abcdef0123456789abcdef\n", "same key"},
        {"k1-456789abcdef0123456789abcdef0\nk2-456789abcdef0123456789abcdef0\n"
         "k3-456789abcdef0123456789abcdef0\nk4-456789abcdef0123456789abcdef0\n"
         "k5-456789abcdef0123456789abcdef0\n",
         "more than 4"},
    };
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK(tk_cluster_keys_parse(bad[i].text, strlen(bad[i].text), &ks, err, sizeof err) != 0);
        CHECK(strstr(err, bad[i].why) != NULL);
    }
    /* A NUL inside the text is no key byte either. */
    CHECK(tk_cluster_keys_parse("0123456789abcdef\0"
                                "0123456789abcdef",
                                33, &ks, err, sizeof err) != 0);
    /* Inner blanks belong to the key; four keys are fine. */
    const char *four = "k1 456789abcdef0123456789abcdef0\nk2-456789abcdef0123456789abcdef0\n"
                       "k3-456789abcdef0123456789abcdef0\nk4-456789abcdef0123456789abcdef0";
    CHECK_EQ_INT(tk_cluster_keys_parse(four, strlen(four), &ks, err, sizeof err), 0);
    CHECK_EQ_INT(ks.n, 4);
    CHECK_EQ_INT(ks.k[0].len, 32);
    CHECK(memcmp(ks.k[0].key, "k1 4", 4) == 0);
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
    tk_cluster_keys ks;
    char err[256];
    const char *good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    CHECK_EQ_INT(write_key(path, good, 0600), 0);
    CHECK_EQ_INT(tk_cluster_keys_load(path, &ks, err, sizeof err), 0);
    CHECK_EQ_INT(ks.n, 1);
    CHECK_EQ_INT(ks.k[0].len, 64); /* the newline dropped */
    CHECK(memcmp(ks.k[0].key, good, 64) == 0);
    CHECK_EQ_INT(write_key(path, good, 0400), 0);
    CHECK_EQ_INT(tk_cluster_keys_load(path, &ks, err, sizeof err), 0);
    /* Group- or other-readable (or writable): refused. */
    static const mode_t loose[] = {0640, 0604, 0620, 0602, 0644};
    for (size_t i = 0; i < TK_ARRAY_LEN(loose); i++) {
        CHECK_EQ_INT(write_key(path, good, loose[i]), 0);
        CHECK(tk_cluster_keys_load(path, &ks, err, sizeof err) != 0);
        CHECK(strstr(err, "group or others") != NULL);
    }
    /* Too short, empty: the reason names the file. */
    CHECK_EQ_INT(write_key(path, "0123456789abcdef0123456789abcde\n", 0600), 0);
    CHECK(tk_cluster_keys_load(path, &ks, err, sizeof err) != 0);
    CHECK(strstr(err, "at least") != NULL && strstr(err, path) != NULL);
    CHECK_EQ_INT(write_key(path, "", 0600), 0);
    CHECK(tk_cluster_keys_load(path, &ks, err, sizeof err) != 0);
    /* Too long: a key over TK_CLUSTER_KEY_MAX, a file over TK_CLUSTER_KEY_FILE_MAX. */
    char *big = malloc(TK_CLUSTER_KEY_FILE_MAX + 2);
    CHECK(big != NULL);
    if (big != NULL) {
        memset(big, 'a', TK_CLUSTER_KEY_MAX + 1);
        big[TK_CLUSTER_KEY_MAX + 1] = '\0';
        CHECK_EQ_INT(write_key(path, big, 0600), 0);
        CHECK(tk_cluster_keys_load(path, &ks, err, sizeof err) != 0);
        big[TK_CLUSTER_KEY_MAX] = '\0';
        CHECK_EQ_INT(write_key(path, big, 0600), 0);
        CHECK_EQ_INT(tk_cluster_keys_load(path, &ks, err, sizeof err), 0);
        CHECK_EQ_INT(ks.k[0].len, TK_CLUSTER_KEY_MAX);
        memset(big, '#', TK_CLUSTER_KEY_FILE_MAX + 1);
        big[TK_CLUSTER_KEY_FILE_MAX + 1] = '\0';
        CHECK_EQ_INT(write_key(path, big, 0600), 0);
        CHECK(tk_cluster_keys_load(path, &ks, err, sizeof err) != 0);
        CHECK(strstr(err, "longer than") != NULL);
        free(big);
    }
    /* Missing, a directory. */
    unlink(path);
    CHECK(tk_cluster_keys_load(path, &ks, err, sizeof err) != 0);
    CHECK(tk_cluster_keys_load(dir, &ks, err, sizeof err) != 0);
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
    RUN(test_header_parser);
    RUN(test_forgeries);
    RUN(test_rotation);
    RUN(test_key_text);
    RUN(test_timely);
    RUN(test_own_clock);
    RUN(test_key_file);
    RUN(test_password_file);
    return check_report();
}
