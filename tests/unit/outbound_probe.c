/*
 * A driver for the outbound thread (outbound.h) that the python test
 * (tests/integration/test_outbound.py) runs against its own HTTP(S) servers.
 *
 * usage: outbound_probe [--ca FILE] [--timeout MS] [--connect-timeout MS]
 *        [--max-bytes N] [--queue N] [--transfers N] [--workers N]
 *        [--callback] [--follow] [--post BODY] URL...
 *
 * Every URL is submitted at once (request i has cookie i): with workers, to
 * worker i % N, whose completions come back through its eventfd and
 * tk_outbound_drain, exactly as a tokend worker gets them; with --callback,
 * through a callback on the outbound thread. One JSON line per request
 * ({"i", "result", "status", "len", "body", "cache_control", "error"}), a
 * submit refused at once prints {"i", "submit": "<error>"}, and the last
 * line is the statistics ({"stats": {"<purpose>/<result>": n}, "count": n}).
 */
#include "tokend/outbound.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_URLS 256

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned outstanding;

static void put_json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20 || c >= 0x7f) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void print_resp(const tk_outbound_resp *r)
{
    tk_slice cc = tk_outbound_header(r, "cache-control");
    printf("{\"i\": %llu, \"result\": \"%s\", \"status\": %d, \"len\": %zu, \"body\": ",
           (unsigned long long)r->cookie, tk_outbound_result_name(r->result), r->status,
           r->body_len);
    put_json_str(r->body, r->body_len);
    printf(", \"cache_control\": ");
    put_json_str(cc.p != NULL ? cc.p : "", cc.len);
    printf(", \"ms\": %llu, \"error\": ", (unsigned long long)(r->elapsed_ns / 1000000));
    put_json_str(r->error, strlen(r->error));
    printf("}\n");
    fflush(stdout);
}

static void on_done(void *arg, const tk_outbound_resp *r)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    print_resp(r);
    outstanding--;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* Worker mode: wait on every worker's eventfd, drain, print, release. */
static void run_workers(tk_outbound *ob, unsigned nworkers)
{
    struct pollfd pfd[TK_WORKERS_MAX];
    for (unsigned w = 0; w < nworkers; w++) {
        pfd[w] = (struct pollfd){.fd = tk_outbound_event_fd(ob, w), .events = POLLIN};
    }
    while (outstanding > 0) { /* bounded: every submitted request completes once */
        if (poll(pfd, nworkers, 60000) <= 0) {
            fprintf(stderr, "outbound_probe: no completion within 60 s\n");
            exit(1);
        }
        for (unsigned w = 0; w < nworkers; w++) {
            uint64_t v;
            if (!(pfd[w].revents & POLLIN) || read(pfd[w].fd, &v, sizeof v) != sizeof v) {
                continue;
            }
            const tk_outbound_resp *got[8];
            size_t n;
            do {
                n = tk_outbound_drain(ob, w, got, 8);
                for (size_t i = 0; i < n; i++) {
                    print_resp(got[i]);
                    tk_outbound_release(ob, got[i]);
                    outstanding--;
                }
            } while (n == 8);
        }
    }
}

static void print_stats(const tk_outbound *ob)
{
    tk_outbound_stats s;
    tk_outbound_stats_get(ob, &s);
    printf("{\"stats\": {");
    const char *sep = "";
    uint64_t total = 0;
    for (unsigned p = 0; p < TK_OB_PURPOSES; p++) {
        for (unsigned r = 0; r < TK_OB_RESULTS; r++) {
            if (s.requests[p][r] != 0) {
                printf("%s\"%s/%s\": %llu", sep, tk_outbound_purpose_name(p),
                       tk_outbound_result_name(r), (unsigned long long)s.requests[p][r]);
                sep = ", ";
            }
        }
        for (unsigned b = 0; b <= TK_OB_DUR_BUCKETS; b++) {
            total += s.dur[p][b];
        }
    }
    printf("}, \"count\": %llu}\n", (unsigned long long)total);
}

int main(int argc, char **argv)
{
    tk_outbound_cfg cfg = {.nworkers = 2};
    bool callback = false, follow = false;
    const char *post = NULL;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--callback") || !strcmp(a, "--follow")) {
            *(!strcmp(a, "--callback") ? &callback : &follow) = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "outbound_probe: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long n = strtoul(v, NULL, 10);
        if (!strcmp(a, "--ca")) {
            cfg.ca_file = v;
        } else if (!strcmp(a, "--post")) {
            post = v;
        } else if (!strcmp(a, "--timeout")) {
            cfg.timeout_ms = (unsigned)n;
        } else if (!strcmp(a, "--connect-timeout")) {
            cfg.connect_timeout_ms = (unsigned)n;
        } else if (!strcmp(a, "--max-bytes")) {
            cfg.max_bytes = n;
        } else if (!strcmp(a, "--queue")) {
            cfg.queue_cap = (unsigned)n;
        } else if (!strcmp(a, "--transfers")) {
            cfg.max_transfers = (unsigned)n;
        } else if (!strcmp(a, "--workers")) {
            cfg.nworkers = (unsigned)n;
        } else {
            fprintf(stderr, "outbound_probe: unknown option %s\n", a);
            return 2;
        }
    }
    if (tk_outbound_global_init() != 0) {
        return 1;
    }
    tk_outbound *ob = NULL;
    int rc = tk_outbound_start(&cfg, &ob);
    if (rc != 0) {
        fprintf(stderr, "outbound_probe: start: %s\n", tk_strerror(rc));
        return 1;
    }
    for (int k = 0; i < argc && k < MAX_URLS; i++, k++) {
        tk_outbound_req req = {
            .purpose = TK_OB_OTHER,
            .method = post != NULL ? TK_OB_POST : TK_OB_GET,
            .url = argv[i],
            .body = post,
            .body_len = post != NULL ? strlen(post) : 0,
            .content_type = post != NULL ? "application/x-www-form-urlencoded" : NULL,
            .accept = "application/json",
            .follow_redirects = follow,
            .cookie = (uint64_t)k,
            .cb = callback ? on_done : NULL,
            .worker = cfg.nworkers > 0 ? (unsigned)k % cfg.nworkers : 0,
        };
        pthread_mutex_lock(&mu);
        rc = tk_outbound_submit(ob, &req);
        if (rc == 0) {
            outstanding++;
        } else {
            printf("{\"i\": %d, \"submit\": \"%s\"}\n", k, tk_strerror(rc));
            fflush(stdout);
        }
        pthread_mutex_unlock(&mu);
    }
    if (callback) {
        pthread_mutex_lock(&mu);
        while (outstanding > 0) { /* bounded: every submitted request completes once */
            pthread_cond_wait(&cv, &mu);
        }
        pthread_mutex_unlock(&mu);
    } else {
        run_workers(ob, cfg.nworkers);
    }
    print_stats(ob);
    tk_outbound_stop(ob);
    tk_outbound_global_cleanup();
    return 0;
}
