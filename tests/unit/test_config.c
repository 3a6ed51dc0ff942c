/*
 * Configuration: defaults, the shared setter's range checks, file parsing
 * with line-numbered errors, and validation of the issuer URL.
 */
#include "check.h"
#include "tokend/config.h"

#include <stdlib.h>
#include <unistd.h>

static char err[512];

static void test_defaults(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_STR(c.host, "127.0.0.1");
    CHECK_EQ_INT(c.port, 7662);
    CHECK_EQ_INT(c.max_depth, TK_DEPTH_DEFAULT);
    CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
}

static void test_listen(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "0.0.0.0:80", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.host, "0.0.0.0");
    CHECK_EQ_INT(c.port, 80);
    CHECK_EQ_INT(tk_config_set(&c, "listen", "[::1]:0", err, sizeof(err)), 0);
    CHECK_EQ_STR(c.host, "::1");
    CHECK_EQ_INT(c.port, 0);
    CHECK(tk_config_set(&c, "listen", "localhost:80", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", "127.0.0.1", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", "127.0.0.1:65536", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", "127.0.0.1:-1", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "listen", ":80", err, sizeof(err)) != 0);
    CHECK_EQ_STR(c.host, "::1"); /* failures leave the value alone */
}

static void test_numbers(void)
{
    tk_config c;
    tk_config_defaults(&c);
    CHECK_EQ_INT(tk_config_set(&c, "workers", "3", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.workers, 3);
    CHECK_EQ_INT(tk_config_set(&c, "max-depth", "8", err, sizeof(err)), 0);
    CHECK(tk_config_set(&c, "max-depth", "9", err, sizeof(err)) != 0);
    CHECK(strstr(err, "max-depth") != NULL);
    CHECK(tk_config_set(&c, "workers", "", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "workers", "2x", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "workers", "+2", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "max-body", "99999999999999999999999", err, sizeof(err)) != 0);
    CHECK_EQ_INT(tk_config_set(&c, "map-size", "1099511627776", err, sizeof(err)), 0);
    CHECK(c.map_size == 1099511627776ULL);
    CHECK_EQ_INT(tk_config_set(&c, "access-ttl", "60", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.access_ttl, 60);
    CHECK(tk_config_set(&c, "no-such-key", "1", err, sizeof(err)) != 0);
    CHECK(strstr(err, "no-such-key") != NULL);
    CHECK_EQ_INT(tk_config_set(&c, "pin-cpus", "yes", err, sizeof(err)), 0);
    CHECK(c.pin_cpus);
    CHECK(tk_config_set(&c, "pin-cpus", "maybe", err, sizeof(err)) != 0);
    CHECK(tk_config_set(&c, "log-level", "loud", err, sizeof(err)) != 0);
}

static void test_issuer(void)
{
    tk_config c;
    tk_config_defaults(&c);
    const char *good[] = {"https://auth.example.com", "http://127.0.0.1:7662",
                          "https://example.com/tenant1"};
    const char *bad[] = {"ftp://x",  "https://x?q=1",    "https://x#f",
                         "https://", "auth.example.com", "https://x/"};
    for (size_t i = 0; i < TK_ARRAY_LEN(good); i++) {
        CHECK_EQ_INT(tk_config_set(&c, "issuer", good[i], err, sizeof(err)), 0);
        CHECK_EQ_INT(tk_config_validate(&c, err, sizeof(err)), 0);
    }
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(tk_config_set(&c, "issuer", bad[i], err, sizeof(err)), 0);
        CHECK(tk_config_validate(&c, err, sizeof(err)) != 0);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_file(void)
{
    char path[] = "/tmp/tokend-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    tk_config c;
    tk_config_defaults(&c);
    write_file(path, "# comment\n\nlisten = 127.0.0.2:9000  # trailing\nworkers=2\r\n"
                     "issuer = https://auth.example.com\n");
    CHECK_EQ_INT(tk_config_load_file(&c, path, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.host, "127.0.0.2");
    CHECK_EQ_INT(c.port, 9000);
    CHECK_EQ_INT(c.workers, 2);
    CHECK_EQ_STR(c.issuer, "https://auth.example.com");

    write_file(path, "workers = 2\nbogus line\n");
    CHECK(tk_config_load_file(&c, path, err, sizeof(err)) != 0);
    CHECK(strstr(err, ":2:") != NULL);
    write_file(path, "workers = 2\nmax-conns = 0\n");
    CHECK(tk_config_load_file(&c, path, err, sizeof(err)) != 0);
    CHECK(strstr(err, ":2:") != NULL && strstr(err, "max-conns") != NULL);
    unlink(path);
    CHECK(tk_config_load_file(&c, path, err, sizeof(err)) < 0);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_listen);
    RUN(test_numbers);
    RUN(test_issuer);
    RUN(test_file);
    return check_report();
}
