/*
 * tokenctl seed, the CPU-bound half: token generation on two threads straight
 * into the output file, the MSD radix sort of the (hash, number) pairs, and
 * progress reporting.
 */
#include "seed.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ==== Progress =========================================================== */

double ctl_seed_elapsed(const seed *s)
{
    return (double)(tk_mono_ns() - s->t0) / 1e9;
}

/* A phase begins: its first progress line comes a second later. */
void ctl_seed_phase_begin(seed *s)
{
    s->last_progress = tk_mono_ns();
}

/* At most one line per second per phase, plus the final one. */
void ctl_seed_progress(seed *s, const char *what, int64_t done, int64_t total)
{
    uint64_t now = tk_mono_ns();
    if (done != total && now - s->last_progress < 1000000000ull) {
        return;
    }
    s->last_progress = now;
    fprintf(stderr, "seed: %lld/%lld %s (%.1f s)\n", (long long)done, (long long)total, what,
            ctl_seed_elapsed(s));
}

/* ctl_seed_progress() from a hot loop: looks at the clock only every 65536 items. */
void ctl_seed_progress_tick(seed *s, const char *what, int64_t done, int64_t total)
{
    if (done == total || (done & 0xffff) == 0) {
        ctl_seed_progress(s, what, done, total);
    }
}

/* ==== Token generation ================================================== */

/*
 * Generation is CPU-bound (CSPRNG, base64url, SHA-256), so SEED_GEN_THREADS
 * workers each take a contiguous range of token numbers and write their lines
 * straight to their own region of the output file (every line is
 * TK_TOKEN_LEN + 1 bytes, so token i starts at byte i * (TK_TOKEN_LEN + 1)).
 */
#define SEED_GEN_THREADS 2
#define SEED_LINE        (TK_TOKEN_LEN + 1)
/* Lines buffered per worker before one pwrite (about 1 MiB). */
#define SEED_LINES_PER_WRITE 20000

typedef struct gen_worker {
    seed *s;
    int fd;
    int64_t from, to;
    int64_t done; /* atomic: tokens generated so far */
    int rc;
} gen_worker;

static int write_all(int fd, const char *buf, size_t len, off_t off)
{
    for (int tries = 0; len > 0 && tries < 1000; tries++) {
        ssize_t n = pwrite(fd, buf, len, off);
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
        n = n < 0 ? 0 : n;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return len == 0 ? 0 : -EIO;
}

/* Tokens [from, from + n): lines into buf, hashes into entries. */
static int gen_batch(seed *s, int64_t from, int64_t n, char *buf)
{
    uint8_t rnd[SEED_RAND_BATCH][TK_SECRET_BYTES];
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        size_t r = (size_t)(i % SEED_RAND_BATCH);
        if (r == 0) {
            int64_t want = n - i < SEED_RAND_BATCH ? n - i : SEED_RAND_BATCH;
            rc = tk_random_bytes(rnd, (size_t)want * TK_SECRET_BYTES);
        }
        char *line = buf + i * SEED_LINE;
        memcpy(line, "tkd_at_", TK_TOKEN_PREFIX_LEN);
        if (rc == 0) { /* writes the NUL where the newline goes */
            rc = tk_b64url_encode(rnd[r], TK_SECRET_BYTES, line + TK_TOKEN_PREFIX_LEN,
                                  TK_SECRET_B64_LEN + 1);
        }
        line[TK_TOKEN_LEN] = '\n';
        seed_entry *e = &s->entries[from + i];
        tk_sha256(line, TK_TOKEN_LEN, e->hash);
        e->idx = (uint32_t)(from + i);
    }
    tk_cleanse(rnd, sizeof rnd);
    return rc;
}

static void *gen_run(void *arg)
{
    gen_worker *w = arg;
    char *buf = malloc(SEED_LINES_PER_WRITE * SEED_LINE);
    int rc = buf == NULL ? -ENOMEM : 0;
    for (int64_t i = w->from; rc == 0 && i < w->to; i += SEED_LINES_PER_WRITE) {
        int64_t n = w->to - i < SEED_LINES_PER_WRITE ? w->to - i : SEED_LINES_PER_WRITE;
        rc = gen_batch(w->s, i, n, buf);
        if (rc == 0) {
            rc = write_all(w->fd, buf, (size_t)(n * SEED_LINE), (off_t)(i * SEED_LINE));
        }
        __atomic_store_n(&w->done, i + n - w->from, __ATOMIC_RELAXED);
    }
    if (buf != NULL) {
        tk_cleanse(buf, SEED_LINES_PER_WRITE * SEED_LINE);
        free(buf);
    }
    w->rc = rc;
    return NULL;
}

/* Run the workers; this thread reports their progress. */
static int generate(seed *s, int fd)
{
    gen_worker w[SEED_GEN_THREADS];
    pthread_t tid[SEED_GEN_THREADS];
    bool threaded[SEED_GEN_THREADS];
    unsigned nw = s->ntokens >= 100000 ? SEED_GEN_THREADS : 1;
    ctl_seed_phase_begin(s);
    for (unsigned k = 0; k < nw; k++) {
        w[k] = (gen_worker){s, fd, s->ntokens * k / nw, s->ntokens * (k + 1) / nw, 0, 0};
        threaded[k] = pthread_create(&tid[k], NULL, gen_run, &w[k]) == 0;
        if (!threaded[k]) {
            gen_run(&w[k]); /* no thread: do the work here */
        }
    }
    for (int spin = 0; spin < 1000000; spin++) { /* 10 ms steps: ~3 hours at most */
        int64_t done = 0;
        for (unsigned k = 0; k < nw; k++) {
            done += __atomic_load_n(&w[k].done, __ATOMIC_RELAXED);
        }
        if (done == s->ntokens) {
            break;
        }
        ctl_seed_progress(s, "tokens generated", done, s->ntokens);
        usleep(10000);
    }
    int rc = 0;
    for (unsigned k = 0; k < nw; k++) {
        if (threaded[k]) {
            pthread_join(tid[k], NULL);
        }
        rc = rc != 0 ? rc : w[k].rc;
    }
    ctl_seed_progress(s, "tokens generated", s->ntokens, s->ntokens);
    return rc;
}

int ctl_seed_generate(seed *s)
{
    int rc = generate(s, s->out_fd);
    if (close(s->out_fd) != 0 && rc == 0) {
        rc = -errno;
    }
    s->out_fd = -1;
    return rc == 0 ? CTL_OK : ctl_fail(s->c, "writing %s: %s", s->out_path, tk_strerror(rc));
}

/* ==== Sort =============================================================== */

static size_t top16(const seed_entry *e)
{
    return (size_t)e->hash[0] << 8 | e->hash[1];
}

static void insertion_sort(seed_entry *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        seed_entry x = a[i];
        size_t j = i;
        for (; j > 0 && memcmp(a[j - 1].hash, x.hash, TK_HASH_LEN) > 0; j--) {
            a[j] = a[j - 1];
        }
        a[j] = x;
    }
}

/* Sort one bucket (equal first two bytes) from src into dst: a counting sort
 * on the third byte, then insertion sort of the (tiny) runs left. */
static void sort_bucket(const seed_entry *src, seed_entry *dst, size_t n)
{
    if (n <= 32) {
        memcpy(dst, src, n * sizeof *dst);
        insertion_sort(dst, n);
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) {
        start[src[i].hash[2] + 1]++;
    }
    for (size_t b = 0; b < 256; b++) {
        start[b + 1] += start[b];
    }
    size_t end[256];
    memcpy(end, start, sizeof end);
    for (size_t i = 0; i < n; i++) {
        dst[end[src[i].hash[2]]++] = src[i];
    }
    for (size_t b = 0; b < 256; b++) {
        insertion_sort(dst + start[b], start[b + 1] - start[b]);
    }
}

/*
 * Sort entries by hash, MSD radix: one counting-sort pass on the first 16
 * bits into a second array (hashes are uniform: ~n / 65536 per bucket), then
 * each bucket back into place by its third byte. Two passes over memory
 * instead of the n log n callback comparisons of qsort.
 */
int ctl_seed_sort(seed *s)
{
    size_t n = (size_t)s->ntokens;
    seed_entry *tmp = malloc(n * sizeof *tmp);
    size_t *start = calloc(65537, sizeof *start);
    if (tmp == NULL || start == NULL) {
        free(tmp);
        free(start);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        start[top16(&s->entries[i]) + 1]++;
    }
    for (size_t b = 0; b < 65536; b++) {
        start[b + 1] += start[b];
    }
    size_t *end = malloc(65536 * sizeof *end);
    if (end == NULL) {
        free(tmp);
        free(start);
        return -ENOMEM;
    }
    memcpy(end, start, 65536 * sizeof *end);
    for (size_t i = 0; i < n; i++) {
        tmp[end[top16(&s->entries[i])]++] = s->entries[i];
    }
    for (size_t b = 0; b < 65536; b++) {
        sort_bucket(tmp + start[b], s->entries + start[b], start[b + 1] - start[b]);
    }
    free(end);
    free(start);
    free(tmp);
    return 0;
}
