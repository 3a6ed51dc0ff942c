/*
 * What the scenarios share: the token file written by `tokenctl seed` (every
 * line is exactly one 50-byte token, so token i is found by arithmetic), a
 * seeded and started tokend, client registration through tokenctl, request
 * formatting, and folding runs into report series.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int token_file_open(const char *path, token_file *tf)
{
    memset(tf, 0, sizeof *tf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < TOKEN_LEN + 1) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    tf->bytes = (size_t)st.st_size;
    tf->map = mmap(NULL, tf->bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (tf->map == MAP_FAILED) {
        tf->map = NULL;
        return -1;
    }
    tf->n = tf->bytes / (TOKEN_LEN + 1);
    /* Every line must be one token of ours: check the first and the last. */
    if (tf->bytes % (TOKEN_LEN + 1) != 0 || tf->map[TOKEN_LEN] != '\n' ||
        tf->map[tf->bytes - 1] != '\n' || memcmp(tf->map, "tkd_", 4) != 0) {
        bench_log("%s: not a file of %d-byte tokens, one per line", path, TOKEN_LEN);
        token_file_close(tf);
        return -1;
    }
    return 0;
}

void token_file_close(token_file *tf)
{
    if (tf->map != NULL) {
        munmap(tf->map, tf->bytes);
    }
    memset(tf, 0, sizeof *tf);
}

int basic_header(const char *id, const char *secret, char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char raw[400];
    int n = snprintf(raw, sizeof raw, "%s:%s", id, secret);
    if (n <= 0 || (size_t)n >= sizeof raw) {
        return -1;
    }
    size_t pos = (size_t)snprintf(out, cap, "Authorization: Basic ");
    const unsigned char *r = (const unsigned char *)raw;
    for (size_t i = 0; i < (size_t)n; i += 3) {
        if (pos + 6 >= cap) {
            return -1;
        }
        uint32_t v = (uint32_t)r[i] << 16;
        v |= i + 1 < (size_t)n ? (uint32_t)r[i + 1] << 8 : 0;
        v |= i + 2 < (size_t)n ? r[i + 2] : 0;
        out[pos++] = tbl[v >> 18 & 63];
        out[pos++] = tbl[v >> 12 & 63];
        out[pos++] = i + 1 < (size_t)n ? tbl[v >> 6 & 63] : '=';
        out[pos++] = i + 2 < (size_t)n ? tbl[v & 63] : '=';
    }
    if (pos + 3 > cap) {
        return -1;
    }
    memcpy(out + pos, "\r\n", 3);
    return 0;
}

size_t form_request(char *buf, size_t cap, const char *path, const char *authz, const char *tok,
                    size_t tok_len)
{
    int n = snprintf(buf, cap,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: "
                     "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\ntoken=",
                     path, authz, tok_len + 6);
    if (n <= 0 || (size_t)n + tok_len >= cap) {
        return 0;
    }
    memcpy(buf + n, tok, tok_len);
    return (size_t)n + tok_len;
}

/* ---- tokenctl ------------------------------------------------------------------------------- */

static int client_add_with(const char *tokenctl, const char *data, const char *role, char *id,
                           size_t id_cap, char *secret, size_t secret_cap);

int ctl_client_add(const bench_opts *o, const char *data, const char *role, char *id, size_t id_cap,
                   char *secret, size_t secret_cap)
{
    return client_add_with(o->tokenctl, data, role, id, id_cap, secret, secret_cap);
}

static int client_add_with(const char *tokenctl, const char *data, const char *role, char *id,
                           size_t id_cap, char *secret, size_t secret_cap)
{
    char *out = NULL;
    char name[64];
    snprintf(name, sizeof name, "bench-%s", role);
    char *argv[] = {(char *)tokenctl, "--data", (char *)data, "client",     "add",
                    "--name",         name,     "--role",     (char *)role, NULL};
    int rc = bench_run(argv, &out);
    if (rc == 0 && (json_get_str(out, "client_id", id, id_cap) != 0 ||
                    json_get_str(out, "client_secret", secret, secret_cap) != 0)) {
        rc = -1;
    }
    free(out);
    if (rc != 0) {
        bench_log("tokenctl client add --role %s failed", role);
    }
    return rc == 0 ? 0 : -1;
}

static int seed_tokens(const char *tokenctl, size_t n, seeded *s)
{
    /* At least n: whole sessions of `per`, the last one maybe beyond n (a
     * scenario may count on tokens past the ones it uses, cluster does). */
    size_t per = n < 100 ? n : 100, nsess = (n + per - 1) / per;
    char sessions[32], per_s[32];
    snprintf(sessions, sizeof sessions, "%zu", nsess);
    snprintf(per_s, sizeof per_s, "%zu", per);
    char *argv[] = {
        (char *)tokenctl,       "--data", s->data, "seed",        "--sessions", sessions,
        "--tokens-per-session", per_s,    "--out", s->token_path, NULL};
    char *out = NULL;
    uint64_t t0 = bench_now_ns();
    int rc = bench_run(argv, &out);
    if (rc == 0 &&
        (json_get_str(out, "client_id", s->agent_id, sizeof s->agent_id) != 0 ||
         json_get_str(out, "client_secret", s->agent_secret, sizeof s->agent_secret) != 0)) {
        rc = -1;
    }
    free(out);
    if (rc != 0) {
        bench_log("tokenctl seed failed");
        return -1;
    }
    bench_log("seeded %zu tokens in %.1f s", nsess * per, (double)(bench_now_ns() - t0) / 1e9);
    return 0;
}

int seeded_start(const bench_opts *o, size_t n, seeded *s)
{
    return seeded_start_bins(o, n, o->tokend, o->tokenctl, s);
}

int seeded_start_bins(const bench_opts *o, size_t n, const char *tokend, const char *tokenctl,
                      seeded *s)
{
    memset(s, 0, sizeof *s);
    if (n == 0 || bench_mkdtemp("data", s->data, sizeof s->data) != 0) {
        return -1;
    }
    snprintf(s->token_path, sizeof s->token_path, "%s/tokens.txt", s->data);
    int rc = seed_tokens(tokenctl, n, s);
    if (rc == 0) {
        rc = client_add_with(tokenctl, s->data, "resource_server", s->rs_id, sizeof s->rs_id,
                             s->rs_secret, sizeof s->rs_secret);
    }
    if (rc == 0) {
        rc = basic_header(s->agent_id, s->agent_secret, s->agent_authz, sizeof s->agent_authz);
    }
    if (rc == 0) {
        rc = basic_header(s->rs_id, s->rs_secret, s->rs_authz, sizeof s->rs_authz);
    }
    if (rc == 0) {
        rc = token_file_open(s->token_path, &s->tf);
    }
    if (rc == 0) {
        rc = tokend_start(tokend, s->data, o->server_cpu, &s->srv);
    }
    if (rc != 0) {
        seeded_stop(o, s);
    }
    return rc;
}

void seeded_stop(const bench_opts *o, seeded *s)
{
    server_stop(&s->srv);
    token_file_close(&s->tf);
    if (!o->keep) {
        bench_rmtree(s->data);
    } else if (s->data[0] != '\0') {
        bench_log("kept %s", s->data);
    }
}

/* ---- Series ------------------------------------------------------------------------------- */

void series_window(bench_series *s, const server_proc *sp, bool start, proc_cpu *mark)
{
    proc_cpu now;
    if (sp->pid <= 0 || server_cpu_read(sp, &now) != 0) {
        s->have_cpu = false;
        return;
    }
    if (start) {
        *mark = now;
        return;
    }
    mark->total_ns = now.total_ns - mark->total_ns;
    mark->user_ticks = now.user_ticks - mark->user_ticks;
    mark->sys_ticks = now.sys_ticks - mark->sys_ticks;
}

void series_add_run(bench_series *s, const load_result *r, const proc_cpu *cpu)
{
    if (s->nrounds == 0 && s->r.requests == 0) {
        hist_reset(&s->r.lat);
        s->have_cpu = cpu != NULL;
    }
    hist_merge(&s->r.lat, &r->lat);
    s->r.requests += r->requests;
    s->r.ok += r->ok;
    for (int e = 0; e < ERR_KINDS; e++) {
        s->r.errors[e] += r->errors[e];
    }
    s->r.seconds += r->seconds;
    s->r.client_cpu_ns += r->client_cpu_ns;
    if (cpu != NULL) {
        s->cpu.total_ns += cpu->total_ns;
        s->cpu.user_ticks += cpu->user_ticks;
        s->cpu.sys_ticks += cpu->sys_ticks;
    } else {
        s->have_cpu = false;
    }
    if (s->nrounds < ROUNDS_MAX) {
        bench_round *rd = &s->rounds[s->nrounds++];
        rd->rps = r->seconds > 0 ? (double)r->requests / r->seconds : 0;
        rd->p99_us = (double)hist_quantile(&r->lat, 0.99) / 1e3;
        rd->cpu_us_per_req =
            cpu != NULL && r->requests ? (double)cpu->total_ns / 1e3 / (double)r->requests : -1;
    }
}

/* ---- Small helpers ----------------------------------------------------------------------------
 */

int parse_sizes(const char *s, size_t *out, int max)
{
    int n = 0;
    const char *p = s;
    while (p != NULL && *p != '\0' && n < max) { /* bounded by max */
        char *end = NULL;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p) {
            return -1;
        }
        if (*end == 'k' || *end == 'K') {
            v *= 1000;
            end++;
        } else if (*end == 'M' || *end == 'm') {
            v *= 1000000;
            end++;
        }
        if (*end != ',' && *end != '\0') {
            return -1;
        }
        out[n++] = (size_t)v;
        p = *end == ',' ? end + 1 : NULL;
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double median(double *v, unsigned n)
{
    if (n == 0) {
        return -1;
    }
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

size_t first_size(const char *list)
{
    size_t v[4];
    return list[0] != '\0' && parse_sizes(list, v, 4) > 0 ? v[0] : 0;
}
