/*
 * The outbound thread's pure parts and its contract without a real peer:
 * response header lookup, Cache-Control max-age, what submit refuses, the
 * pool bound, and stop completing every request (canceled). Transfers
 * against real HTTP(S) servers are tests/integration/test_outbound.py's.
 */
#include "check.h"

#include "tokend/outbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static tk_outbound_resp resp_with(const char *headers)
{
    tk_outbound_resp r;
    memset(&r, 0, sizeof r);
    r.headers = headers;
    r.headers_len = strlen(headers);
    r.body = "";
    return r;
}

static void test_header(void)
{
    tk_outbound_resp r = resp_with("HTTP/1.1 200 OK\r\nContent-Type:  application/json \r\n"
                                   "cache-control: max-age=60\r\nX-Empty:\r\n\r\n");
    CHECK_SLICE(tk_outbound_header(&r, "content-type"), "application/json");
    CHECK_SLICE(tk_outbound_header(&r, "Cache-Control"), "max-age=60");
    CHECK_SLICE(tk_outbound_header(&r, "x-empty"), "");
    CHECK(tk_outbound_header(&r, "x-empty").p != NULL);
    CHECK(tk_outbound_header(&r, "content").p == NULL); /* a prefix is not a name */
    CHECK(tk_outbound_header(&r, "missing").p == NULL);
    tk_outbound_resp none = resp_with("");
    CHECK(tk_outbound_header(&none, "cache-control").p == NULL);
    /* The last line without a newline still counts. */
    tk_outbound_resp tail = resp_with("HTTP/1.1 200 OK\r\nAge: 5");
    CHECK_SLICE(tk_outbound_header(&tail, "age"), "5");
}

static int max_age(const char *cc, int64_t *out)
{
    *out = -1;
    return tk_outbound_max_age(tk_slice_from_str(cc), out);
}

static void test_max_age(void)
{
    int64_t v;
    CHECK_EQ_INT(max_age("max-age=300", &v), 0);
    CHECK_EQ_INT(v, 300);
    CHECK_EQ_INT(max_age("public, MAX-AGE=3600, must-revalidate", &v), 0);
    CHECK_EQ_INT(v, 3600);
    CHECK_EQ_INT(max_age("max-age=\"20\"", &v), 0);
    CHECK_EQ_INT(v, 20);
    CHECK_EQ_INT(max_age("max-age=0", &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(max_age("no-store", &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(max_age("max-age=600, no-cache", &v), 0); /* no-cache wins */
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(max_age("max-age=10, max-age=99", &v), 0); /* the first one */
    CHECK_EQ_INT(v, 10);
    /* Nothing usable. */
    const char *bad[] = {"",           "public",     "max-age=",
                         "max-age=-5", "max-age=1x", "max-age=1 2",
                         "max-age =5", "s-maxage=5", "max-age=99999999999",
                         ",,,",        "max-agex=5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (max_age(bad[i], &v) != TK_E_NOTFOUND) {
            fprintf(stderr, "accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
}

static void test_names(void)
{
    CHECK_EQ_STR(tk_outbound_purpose_name(TK_OB_JWKS), "jwks");
    CHECK_EQ_STR(tk_outbound_result_name(TK_OB_OK), "ok");
    CHECK_EQ_STR(tk_outbound_result_name(TK_OB_TOO_BIG), "too_big");
    CHECK_EQ_STR(tk_outbound_result_name(TK_OB_RESULTS), "unknown");
}

/* ---- The thread -------------------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned canceled, other;

static void on_done(void *arg, const tk_outbound_resp *r)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    if (r->result == TK_OB_CANCELED) {
        canceled++;
    } else {
        other++;
    }
    pthread_mutex_unlock(&mu);
}

/* A loopback port that accepts connections into its backlog and never
 * answers: a transfer to it hangs until its timeout. */
static int silent_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_submit_refusals(void)
{
    tk_outbound_cfg cfg = {.nworkers = 1, .queue_cap = 4};
    tk_outbound *ob = NULL;
    CHECK_EQ_INT(tk_outbound_start(&cfg, &ob), 0);
    tk_outbound_req r = {.url = "ftp://example.test/x", .cb = on_done};
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    r.url = "file:///etc/passwd";
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    r.url = "gopher://x/";
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    r.url = "https://example.test/a b";
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    r.url = "https://example.test/\r\nX: y";
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    char longurl[TK_URL_MAX + 32];
    memset(longurl, 'a', sizeof longurl);
    memcpy(longurl, "https://", 8);
    longurl[sizeof longurl - 1] = '\0';
    r.url = longurl;
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_TOOBIG);
    r.url = "https://example.test/";
    r.authorization = "Basic a\nb";
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    r.authorization = NULL;
    r.method = TK_OB_POST;
    r.body = "x";
    r.body_len = TK_OUTBOUND_REQ_BODY_MAX + 1;
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_TOOBIG);
    r.method = TK_OB_GET;
    r.purpose = TK_OB_PURPOSES;
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    r.purpose = TK_OB_JWKS;
    r.cb = NULL;
    r.worker = 1; /* only worker 0 exists */
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_INVALID);
    tk_outbound_stop(ob);
    CHECK_EQ_INT(other + canceled, 0); /* nothing refused ever completes */
}

static void test_bad_config(void)
{
    tk_outbound *ob = NULL;
    tk_outbound_cfg c1 = {.queue_cap = TK_OUTBOUND_QUEUE_MAX + 1};
    CHECK_EQ_INT(tk_outbound_start(&c1, &ob), -EINVAL);
    tk_outbound_cfg c2 = {.max_transfers = TK_OUTBOUND_TRANSFERS_MAX + 1};
    CHECK_EQ_INT(tk_outbound_start(&c2, &ob), -EINVAL);
    tk_outbound_cfg c3 = {.timeout_ms = 1000, .connect_timeout_ms = 2000};
    CHECK_EQ_INT(tk_outbound_start(&c3, &ob), -EINVAL);
    tk_outbound_cfg c4 = {.max_bytes = TK_OUTBOUND_BODY_MAX + 1};
    CHECK_EQ_INT(tk_outbound_start(&c4, &ob), -EINVAL);
    tk_outbound_cfg c5 = {.nworkers = TK_WORKERS_MAX + 1};
    CHECK_EQ_INT(tk_outbound_start(&c5, &ob), -EINVAL);
}

/* The pool bound and stop: requests to a peer that never answers fill the
 * pool; the next submit is refused at once; stop cancels them all. */
static void test_pool_and_stop(void)
{
    uint16_t port = 0;
    int lfd = silent_listener(&port);
    CHECK(lfd >= 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/slow", (unsigned)port);
    tk_outbound_cfg cfg = {.queue_cap = 3, .max_transfers = 1, .timeout_ms = 60000};
    tk_outbound *ob = NULL;
    CHECK_EQ_INT(tk_outbound_start(&cfg, &ob), 0);
    canceled = other = 0;
    tk_outbound_req r = {.url = url, .cb = on_done, .purpose = TK_OB_JWKS};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(tk_outbound_submit(ob, &r), 0);
    }
    CHECK_EQ_INT(tk_outbound_submit(ob, &r), TK_E_QUEUEFULL);
    usleep(100 * 1000); /* one transfer connected, two waiting */
    tk_outbound_stats s;
    tk_outbound_stats_get(ob, &s);
    CHECK_EQ_INT(s.requests[TK_OB_JWKS][TK_OB_QUEUE_FULL], 1);
    tk_outbound_stop(ob);
    CHECK_EQ_INT(canceled, 3);
    CHECK_EQ_INT(other, 0);
    close(lfd);
}

int main(void)
{
    CHECK_EQ_INT(tk_outbound_global_init(), 0);
    RUN(test_header);
    RUN(test_max_age);
    RUN(test_names);
    RUN(test_submit_refusals);
    RUN(test_bad_config);
    RUN(test_pool_and_stop);
    tk_outbound_global_cleanup();
    return check_report();
}
