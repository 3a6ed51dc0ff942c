/*
 * libFuzzer target for the configuration reader. A config file is not
 * network input, but it is cheap to fuzz and a crash there would stop the
 * daemon from starting. The input is written to a memfd and read back with
 * tk_config_load_file, then validated; it is also split at the first '='
 * and at the first NUL into a key and a value for tk_config_set. Checks:
 * only documented results, an error message always NUL-terminated within
 * its buffer, and every accepted configuration inside the documented ranges.
 */
#include "fuzz_common.h"

#include "tokend/common.h"
#include "tokend/config.h"
#include "tokend/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;

static void check_ranges(const tk_config *c)
{
    EXPECT(c->workers <= TK_WORKERS_MAX);
    EXPECT(c->max_conns >= 1 && c->max_conns <= TK_CONNS_MAX);
    EXPECT(c->max_depth <= TK_DEPTH_MAX);
    EXPECT(c->max_body <= TK_HTTP_BODY_MAX);
    EXPECT(c->commit_queue >= 1 && c->commit_queue <= TK_COMMIT_QUEUE_MAX);
    EXPECT(c->map_size <= TK_MAP_SIZE_MAX);
    EXPECT(memchr(c->host, '\0', sizeof c->host) != NULL);
    EXPECT(memchr(c->data_dir, '\0', sizeof c->data_dir) != NULL);
    EXPECT(memchr(c->issuer, '\0', sizeof c->issuer) != NULL);
    EXPECT(c->nmore <= TK_API_LISTEN_MAX - 1);
    for (unsigned i = 0; i < c->nmore; i++) {
        EXPECT(memchr(c->more[i].host, '\0', sizeof c->more[i].host) != NULL);
    }
    EXPECT(memchr(c->tls_cert, '\0', sizeof c->tls_cert) != NULL);
    EXPECT(memchr(c->tls_key, '\0', sizeof c->tls_key) != NULL);
    EXPECT(memchr(c->outbound_ca_file, '\0', sizeof c->outbound_ca_file) != NULL);
    EXPECT(c->outbound_queue >= 1 && c->outbound_queue <= TK_OUTBOUND_QUEUE_MAX);
    EXPECT(c->outbound_transfers >= 1 && c->outbound_transfers <= TK_OUTBOUND_TRANSFERS_MAX);
    EXPECT(c->outbound_timeout_ms <= TK_OUTBOUND_TIMEOUT_MS_MAX);
    EXPECT(c->outbound_connect_timeout_ms <= TK_OUTBOUND_TIMEOUT_MS_MAX);
    EXPECT(c->outbound_max_bytes >= 1024 && c->outbound_max_bytes <= TK_OUTBOUND_BODY_MAX);
    EXPECT(c->jwks_refresh_min >= 1 && c->jwks_refresh_max <= TK_JWKS_REFRESH_CEILING);
    EXPECT(c->jwks_kid_interval >= 1 && c->jwks_kid_interval <= TK_JWKS_KID_INTERVAL_MAX);
}

static void check_file(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size) {
        return;
    }
    char path[64], err[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    tk_config cfg;
    tk_config_defaults(&cfg);
    memset(err, 'x', sizeof err);
    int rc = tk_config_load_file(&cfg, path, err, sizeof err);
    EXPECT(rc == 0 || rc == TK_E_BADINPUT || rc < 0);
    if (rc != 0) {
        EXPECT(memchr(err, '\0', sizeof err) != NULL);
        return;
    }
    check_ranges(&cfg);
    memset(err, 'x', sizeof err);
    rc = tk_config_validate(&cfg, err, sizeof err);
    EXPECT(rc == 0 || rc == TK_E_INVALID);
    EXPECT(rc == 0 || memchr(err, '\0', sizeof err) != NULL);
}

static void check_set(const uint8_t *data, size_t size)
{
    char buf[2048];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    char *eq = strchr(buf, '=');
    const char *value = "";
    if (eq != NULL) {
        *eq = '\0';
        value = eq + 1;
    }
    tk_config cfg;
    tk_config_defaults(&cfg);
    char err[64];
    int rc = tk_config_set(&cfg, buf, value, err, sizeof err);
    EXPECT(rc == 0 || rc == TK_E_BADINPUT);
    EXPECT(rc == 0 || memchr(err, '\0', sizeof err) != NULL);
    if (rc == 0) {
        check_ranges(&cfg);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
    return memfd < 0 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_file(data, size);
    check_set(data, size);
    return 0;
}
