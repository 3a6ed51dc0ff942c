/*
 * The keys folder (DATA/keys): the manifest keys.json, one PEM private key
 * per kid, and the lock that serialises writers (tokend's first start,
 * tokenctl keys rotate) and keeps readers from seeing half a rotation.
 *
 * The one idea: the manifest is the truth. A new key's file is written and
 * fsync'd before the manifest that names it is renamed into place, and a
 * dropped key's file is removed only after; so a crash leaves at worst an
 * unnamed file, never a manifest naming a missing or partial key. Key files
 * are created 0600 with O_EXCL and refused on load when group or others may
 * read them. PEM bytes pass only through cleansed buffers.
 */
#include "keys_int.h"

#include "tokend/crypto.h"
#include "tokend/jcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Paths, lock, small file helpers ------------------------------------------- */

typedef struct folder {
    char dir[PATH_MAX];
    int lock_fd;
} folder;

int keys_fail(char *err, size_t errcap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return code;
}

static int path_in(const folder *f, const char *name, const char *ext, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s%s", f->dir, name, ext);
    return n > 0 && (size_t)n < cap ? 0 : TK_E_TOOBIG;
}

/* Open (creating with create) DATA/keys and lock it: exclusive for writers,
 * shared for readers. */
static int folder_open(folder *f, const char *data_dir, bool create, bool exclusive, char *err,
                       size_t errcap)
{
    f->lock_fd = -1;
    int n = snprintf(f->dir, sizeof f->dir, "%s/keys", data_dir);
    if (n < 0 || (size_t)n + 32 >= sizeof f->dir) {
        return keys_fail(err, errcap, TK_E_TOOBIG, "%s: path too long", data_dir);
    }
    if (create && mkdir(f->dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        return keys_fail(err, errcap, -e, "%s: %s", f->dir, strerror(e));
    }
    char lock[PATH_MAX];
    TK_ASSERT(path_in(f, "lock", "", lock, sizeof lock) == 0);
    f->lock_fd = open(lock, (create ? O_CREAT : 0) | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f->lock_fd < 0) {
        int e = errno;
        return e == ENOENT ? keys_fail(err, errcap, TK_E_NOTFOUND, "%s: no signing keys", f->dir)
                           : keys_fail(err, errcap, -e, "%s: %s", lock, strerror(e));
    }
    if (flock(f->lock_fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        int e = errno;
        close(f->lock_fd);
        f->lock_fd = -1;
        return keys_fail(err, errcap, -e, "%s: lock: %s", lock, strerror(e));
    }
    return 0;
}

static void folder_close(folder *f)
{
    if (f->lock_fd >= 0) {
        close(f->lock_fd); /* releases the flock */
        f->lock_fd = -1;
    }
}

static int sync_dir(const folder *f)
{
    int fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Write all of buf to a new file at path (mode 0600) and fsync it. */
static int write_file(const char *path, const void *buf, size_t len, bool exclusive)
{
    int fl = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (exclusive ? O_EXCL : O_TRUNC);
    int fd = open(path, fl, 0600);
    if (fd < 0) {
        return -errno;
    }
    const char *p = buf;
    size_t done = 0;
    int rc = 0;
    while (done < len && rc == 0) { /* bounded: each turn writes at least one byte or fails */
        ssize_t w = write(fd, p + done, len - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno != EINTR) {
            rc = -errno;
        } else if (w == 0) {
            rc = -EIO;
        }
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
    }
    return rc;
}

/* ---- PEM files ------------------------------------------------------------------ */

/* Read a key file: refused when group or others may read it (like ssh). */
static int pem_read(const folder *f, tk_key *k, char *err, size_t errcap)
{
    char path[PATH_MAX];
    if (path_in(f, k->info.kid, ".pem", path, sizeof path) != 0) {
        return keys_fail(err, errcap, TK_E_TOOBIG, "%s: path too long", f->dir);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        return keys_fail(err, errcap, -e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    char pem[TK_KEYS_PEM_MAX];
    ssize_t n = -1;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = keys_fail(err, errcap, TK_E_BADINPUT, "%s: not a regular file", path);
    } else if (st.st_mode & 077) {
        rc = keys_fail(err, errcap, TK_E_BADINPUT,
                       "%s: mode %03o lets others read a private key; chmod 600 it", path,
                       (unsigned)(st.st_mode & 0777));
    } else if ((n = read(fd, pem, sizeof pem)) <= 0 || (size_t)n >= sizeof pem) {
        rc = keys_fail(err, errcap, TK_E_BADINPUT, "%s: empty, unreadable or too large", path);
    }
    close(fd);
    if (rc == 0) {
        BIO *b = BIO_new_mem_buf(pem, (int)n);
        k->pkey = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        rc = k->pkey != NULL
                 ? 0
                 : keys_fail(err, errcap, TK_E_BADINPUT, "%s: no PEM private key", path);
    }
    tk_cleanse(pem, sizeof pem);
    return rc;
}

/* PKCS#8 PEM through a secure-memory BIO (cleansed when freed), into a new
 * file that must not exist yet. */
static int pem_write(const folder *f, const tk_key *k)
{
    char path[PATH_MAX];
    if (path_in(f, k->info.kid, ".pem", path, sizeof path) != 0) {
        return TK_E_TOOBIG;
    }
    BIO *b = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long len = 0;
    int rc = -EIO;
    if (b != NULL && PEM_write_bio_PrivateKey(b, k->pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
        (len = BIO_get_mem_data(b, &data)) > 0) {
        rc = write_file(path, data, (size_t)len, true);
    }
    BIO_free(b);
    return rc;
}

static void pem_remove(const folder *f, const char *kid)
{
    char path[PATH_MAX];
    if (path_in(f, kid, ".pem", path, sizeof path) == 0) {
        unlink(path); /* best effort: an orphan file is harmless */
    }
}

/* ---- Manifest ------------------------------------------------------------------- */

static bool kid_ok(const char *s, size_t n)
{
    if (n != TK_KID_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int get_time(tk_jcfg *c, json_t *e, const char *name, bool required, int64_t *out)
{
    json_t *v = json_object_get(e, name);
    *out = 0;
    if (v == NULL) {
        return required ? tk_jcfg_fail(c, TK_E_BADINPUT, "\"%s\" is missing", name) : 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > TK_TIME_MAX) {
        return tk_jcfg_fail(c, TK_E_BADINPUT, "\"%s\" must be Unix seconds", name);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int entry_read(tk_jcfg *c, json_t *e, unsigned i, tk_keyset *ks)
{
    static const char *const members[] = {"kid", "created", "retired", NULL};
    tk_key *k = &ks->k[i];
    tk_slice kid;
    tk_jcfg_where(c, "keys[%u]", i);
    int rc = json_is_object(e) ? 0 : tk_jcfg_fail(c, TK_E_BADINPUT, "not an object");
    rc = rc != 0 ? rc : tk_jcfg_only_members(c, e, members, "a key entry");
    rc = rc != 0 ? rc : tk_jcfg_get_str(c, e, "kid", TK_KID_LEN, true, &kid);
    if (rc == 0 && !kid_ok(kid.p, kid.len)) {
        rc = tk_jcfg_fail(c, TK_E_BADINPUT, "\"kid\" is not an RFC 7638 thumbprint");
    }
    rc = rc != 0 ? rc : get_time(c, e, "created", true, &k->info.created);
    rc = rc != 0 ? rc : get_time(c, e, "retired", i > 0, &k->info.retired);
    if (rc == 0 && i == 0 && k->info.retired != 0) {
        rc = tk_jcfg_fail(c, TK_E_BADINPUT, "the first key is the current one: no \"retired\"");
    }
    for (unsigned j = 0; rc == 0 && j < i; j++) {
        if (memcmp(ks->k[j].info.kid, kid.p, TK_KID_LEN) == 0) {
            rc = tk_jcfg_fail(c, TK_E_BADINPUT, "kid listed twice");
        }
    }
    if (rc == 0) {
        memcpy(k->info.kid, kid.p, TK_KID_LEN + 1);
    }
    return rc;
}

/* The manifest's entries into ks (kids and times; no key loaded yet). */
static int manifest_read(const folder *f, tk_keyset *ks, char *err, size_t errcap)
{
    char path[PATH_MAX];
    TK_ASSERT(path_in(f, "keys", ".json", path, sizeof path) == 0);
    tk_jcfg c;
    json_t *root = NULL;
    int rc = tk_jcfg_init(&c, path, err, errcap);
    rc = rc != 0 ? rc : tk_jcfg_load(&c, path, TK_KEYS_MANIFEST_MAX, &root);
    if (rc == -ENOENT) {
        json_decref(root);
        return keys_fail(err, errcap, TK_E_NOTFOUND, "%s: no signing keys yet", path);
    }
    static const char *const members[] = {"keys", NULL};
    json_t *arr = root != NULL ? json_object_get(root, "keys") : NULL;
    rc = rc != 0 ? rc : tk_jcfg_only_members(&c, root, members, "the manifest");
    if (rc == 0 && (!json_is_array(arr) || json_array_size(arr) == 0 ||
                    json_array_size(arr) > TK_SIGNING_KEYS_MAX)) {
        rc = tk_jcfg_fail(&c, TK_E_BADINPUT, "\"keys\" must be an array of 1 to %d keys",
                          TK_SIGNING_KEYS_MAX);
    }
    ks->n = 0;
    for (unsigned i = 0; rc == 0 && i < json_array_size(arr); i++) {
        rc = entry_read(&c, json_array_get(arr, i), i, ks);
        ks->n = rc == 0 ? i + 1 : ks->n;
    }
    json_decref(root);
    if (rc != 0 && strstr(err, path) == NULL) { /* name the file in every message */
        char msg[TK_JCFG_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err);
        keys_fail(err, errcap, rc, "%s: %s", path, msg);
    }
    return rc;
}

static int manifest_write(const folder *f, const tk_keyset *ks)
{
    char buf[TK_KEYS_MANIFEST_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_key(&j, "keys");
    tk_json_arr_begin(&j);
    for (unsigned i = 0; i < ks->n; i++) {
        const tk_key_info *in = &ks->k[i].info;
        tk_json_obj_begin(&j);
        tk_json_kv_cstr(&j, "kid", in->kid);
        tk_json_kv_int(&j, "created", in->created);
        if (in->retired != 0) {
            tk_json_kv_int(&j, "retired", in->retired);
        }
        tk_json_obj_end(&j);
    }
    tk_json_arr_end(&j);
    tk_json_obj_end(&j);
    TK_ASSERT(tk_json_finish(&j) == 0); /* TK_SIGNING_KEYS_MAX short entries */
    buf[j.len++] = '\n';
    char tmp[PATH_MAX], path[PATH_MAX];
    TK_ASSERT(path_in(f, "keys", ".json.tmp", tmp, sizeof tmp) == 0);
    TK_ASSERT(path_in(f, "keys", ".json", path, sizeof path) == 0);
    int rc = write_file(tmp, buf, j.len, false);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
    }
    return rc != 0 ? rc : sync_dir(f);
}

/* ---- Load, create, rotate ------------------------------------------------------- */

/* A fresh key as entry k (created now), its file written. */
static int key_create(const folder *f, tk_key *k, int64_t now, char *err, size_t errcap)
{
    memset(k, 0, sizeof *k);
    int rc = keys_generate(&k->pkey);
    rc = rc != 0 ? rc : keys_fill_public(k);
    k->info.created = now;
    rc = rc != 0 ? rc : pem_write(f, k);
    return rc == 0
               ? 0
               : keys_fail(err, errcap, rc, "%s: cannot create a key: %s", f->dir, tk_strerror(rc));
}

static int keys_read_all(const folder *f, tk_keyset *ks, char *err, size_t errcap)
{
    int rc = manifest_read(f, ks, err, errcap);
    for (unsigned i = 0; rc == 0 && i < ks->n; i++) {
        tk_key *k = &ks->k[i];
        char kid[TK_KID_LEN + 1];
        memcpy(kid, k->info.kid, sizeof kid);
        rc = pem_read(f, k, err, errcap);
        rc = rc != 0 ? rc : keys_fill_public(k);
        if (rc == TK_E_BADINPUT && strstr(err, f->dir) == NULL) {
            keys_fail(err, errcap, rc, "%s/%s.pem: not an EC P-256 key", f->dir, kid);
        } else if (rc == 0 && memcmp(kid, k->info.kid, sizeof kid) != 0) {
            rc = keys_fail(err, errcap, TK_E_BADINPUT,
                           "%s/%s.pem: the key's thumbprint is not its kid", f->dir, kid);
        }
    }
    return rc;
}

/* The first key of an empty folder: its file, then the manifest naming it. */
static int first_key(const folder *f, tk_keyset *ks, int64_t now, char *err, size_t errcap)
{
    for (unsigned i = 0; i < TK_SIGNING_KEYS_MAX; i++) {
        EVP_PKEY_free(ks->k[i].pkey); /* whatever a partial read loaded */
    }
    memset(ks, 0, sizeof *ks);
    int rc = key_create(f, &ks->k[0], now, err, errcap);
    if (rc != 0) {
        return rc;
    }
    ks->n = 1;
    rc = manifest_write(f, ks);
    if (rc != 0) {
        pem_remove(f, ks->k[0].info.kid);
        return keys_fail(err, errcap, rc, "%s: cannot write keys.json: %s", f->dir,
                         tk_strerror(rc));
    }
    return 0;
}

int tk_keys_load(const char *data_dir, bool create, int64_t now, tk_keyset **out, char *err,
                 size_t errcap)
{
    *out = NULL;
    tk_keyset *ks = calloc(1, sizeof *ks);
    if (ks == NULL) {
        return -ENOMEM;
    }
    folder f;
    int rc = folder_open(&f, data_dir, create, create, err, errcap);
    rc = rc != 0 ? rc : keys_read_all(&f, ks, err, errcap);
    if (rc == TK_E_NOTFOUND && create) { /* first start: under the exclusive lock */
        rc = first_key(&f, ks, now, err, errcap);
    }
    folder_close(&f);
    if (rc != 0) {
        tk_keys_free(ks);
        return rc;
    }
    *out = ks;
    return 0;
}

int tk_keys_rotate(const char *data_dir, int64_t now, char new_kid[TK_KID_LEN + 1],
                   unsigned *dropped, char *err, size_t errcap)
{
    *dropped = 0;
    folder f;
    tk_keyset *ks = calloc(1, sizeof *ks);
    if (ks == NULL) {
        return -ENOMEM;
    }
    int rc = folder_open(&f, data_dir, true, true, err, errcap);
    rc = rc != 0 ? rc : manifest_read(&f, ks, err, errcap);
    if (rc == TK_E_NOTFOUND) {
        ks->n = 0; /* no key yet: the new one is the first */
        rc = 0;
    }
    tk_key fresh = {0};
    rc = rc != 0 ? rc : key_create(&f, &fresh, now, err, errcap);
    if (rc != 0) {
        EVP_PKEY_free(fresh.pkey);
    } else {
        char gone[TK_SIGNING_KEYS_MAX][TK_KID_LEN + 1];
        unsigned keep = ks->n < TK_SIGNING_KEYS_MAX ? ks->n : TK_SIGNING_KEYS_MAX - 1;
        for (unsigned i = keep; i < ks->n; i++) {
            memcpy(gone[(*dropped)++], ks->k[i].info.kid, TK_KID_LEN + 1);
        }
        memmove(&ks->k[1], &ks->k[0], keep * sizeof ks->k[0]);
        ks->k[0] = fresh;
        ks->n = keep + 1;
        if (keep > 0) {
            ks->k[1].info.retired = now;
        }
        rc = manifest_write(&f, ks);
        if (rc != 0) {
            pem_remove(&f, fresh.info.kid);
            *dropped = 0;
            keys_fail(err, errcap, rc, "%s: cannot write keys.json: %s", f.dir, tk_strerror(rc));
        }
        for (unsigned i = 0; i < *dropped; i++) {
            pem_remove(&f, gone[i]);
        }
        memcpy(new_kid, fresh.info.kid, TK_KID_LEN + 1);
    }
    folder_close(&f);
    tk_keys_free(ks); /* frees fresh's key too: it sits in k[0] */
    return rc;
}

int tk_keys_retire_now(const char *data_dir, char dropped_kids[][TK_KID_LEN + 1], unsigned *dropped,
                       char *err, size_t errcap)
{
    *dropped = 0;
    folder f;
    tk_keyset *ks = calloc(1, sizeof *ks);
    if (ks == NULL) {
        return -ENOMEM;
    }
    int rc = folder_open(&f, data_dir, false, true, err, errcap);
    rc = rc != 0 ? rc : manifest_read(&f, ks, err, errcap);
    if (rc == 0 && ks->n > 1) {
        unsigned n = ks->n;
        for (unsigned i = 1; i < n; i++) {
            memcpy(dropped_kids[i - 1], ks->k[i].info.kid, TK_KID_LEN + 1);
        }
        ks->n = 1;
        /* The manifest first: a crash between the two leaves stray files
         * (harmless), never a manifest naming a missing file. */
        rc = manifest_write(&f, ks);
        if (rc != 0) {
            keys_fail(err, errcap, rc, "%s: cannot write keys.json: %s", f.dir, tk_strerror(rc));
        }
        for (unsigned i = 1; rc == 0 && i < n; i++) {
            pem_remove(&f, dropped_kids[i - 1]);
        }
        *dropped = rc == 0 ? n - 1 : 0;
    }
    folder_close(&f);
    tk_keys_free(ks);
    return rc;
}
