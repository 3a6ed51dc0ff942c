/*
 * tokend-revoke-io: what one group commit of revocations writes to disk.
 * It opens a seeded store and applies --groups write transactions of --group
 * revocations each (distinct tokens drawn at random from --tokens, never one
 * revoked before), exactly as the committer does (tk_store_apply of
 * TK_OP_REVOKE_TOKEN, one tk_store_commit with its fsync per group). Around
 * each commit it reads this process's /proc/self/io: wchar (bytes handed to
 * write syscalls: LMDB writes every dirty page once, plus the meta page) and
 * write_bytes (what reached the block layer). Load-independent: the same
 * store and seed give the same counts on a busy machine.
 *
 * tokend-revoke-io --data DIR --tokens FILE [--group N] [--groups N] [--seed N]
 */
#include "proc_io.h"
#include "tokend/crypto.h"
#include "tokend/record.h"
#include "tokend/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_LEN 50

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *tokens = NULL;
    long group = 1000, groups = 5;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0) {
            data = argv[i + 1];
        } else if (strcmp(argv[i], "--tokens") == 0) {
            tokens = argv[i + 1];
        } else if (strcmp(argv[i], "--group") == 0) {
            group = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--groups") == 0) {
            groups = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--seed") == 0) {
            seed = strtoull(argv[i + 1], NULL, 10) | 1;
        }
    }
    int fd = tokens != NULL ? open(tokens, O_RDONLY) : -1;
    struct stat sb;
    if (data == NULL || fd < 0 || fstat(fd, &sb) != 0 || group <= 0 || groups <= 0) {
        fprintf(stderr, "usage: tokend-revoke-io --data DIR --tokens FILE [--group N] "
                        "[--groups N] [--seed N]\n");
        return 2;
    }
    size_t ntok = (size_t)sb.st_size / (TOKEN_LEN + 1);
    const char *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    size_t need = (size_t)group * (size_t)groups;
    if (map == MAP_FAILED || need > ntok) {
        fprintf(stderr, "tokend-revoke-io: need %zu tokens, the file has %zu\n", need, ntok);
        return 2;
    }
    /* Distinct random tokens: a partial Fisher-Yates over the indices. */
    uint32_t *idx = malloc(ntok * sizeof *idx);
    tk_store *st = NULL;
    tk_store_opts so = {.dir = data, .map_size = 16ull << 30};
    if (idx == NULL || tk_store_open(&so, &st) != 0) {
        fprintf(stderr, "tokend-revoke-io: cannot open %s\n", data);
        return 1;
    }
    for (size_t i = 0; i < ntok; i++) {
        idx[i] = (uint32_t)i;
    }
    for (size_t i = 0; i < need; i++) {
        size_t j = i + (size_t)(rnd(&seed) % (ntok - i));
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    unsigned long long sum_w = 0, sum_b = 0, sum_c = 0;
    long changed_total = 0;
    for (long g = 0; g < groups; g++) {
        tk_txn *txn = NULL;
        if (tk_store_write_begin(st, &txn) != 0) {
            return 1;
        }
        for (long k = 0; k < group; k++) {
            const char *tok = map + (size_t)idx[(size_t)(g * group + k)] * (TOKEN_LEN + 1);
            tk_op op = tk_op_make(TK_OP_REVOKE_TOKEN, 1800000000 + g);
            tk_sha256(tok, TOKEN_LEN, op.revoke_token.hash);
            bool ch = false;
            if (tk_store_apply(txn, &op, &ch) != 0) {
                fprintf(stderr, "tokend-revoke-io: apply failed\n");
                return 1;
            }
            changed_total += ch ? 1 : 0;
        }
        io_counts a, b;
        read_io(&a);
        if (tk_store_commit(txn) != 0) {
            fprintf(stderr, "tokend-revoke-io: commit failed\n");
            return 1;
        }
        read_io(&b);
        unsigned long long w = b.wchar - a.wchar, wb = b.write_bytes - a.write_bytes;
        sum_w += w;
        sum_b += wb;
        sum_c += b.syscw - a.syscw;
        printf("group %ld: %ld revocations, wchar %llu B (%.1f pages of 4 KiB), "
               "write_bytes %llu, write calls %llu\n",
               g, group, w, (double)w / 4096.0, wb, b.syscw - a.syscw);
    }
    printf("tokens %zu, groups %ld x %ld, changed %ld\n", ntok, groups, group, changed_total);
    printf("per commit: %.1f pages written (wchar), %.0f write_bytes; per revocation: %.0f B "
           "wchar, %.0f B write_bytes; write calls per commit %.1f\n",
           (double)sum_w / 4096.0 / (double)groups, (double)sum_b / (double)groups,
           (double)sum_w / (double)(group * groups), (double)sum_b / (double)(group * groups),
           (double)sum_c / (double)groups);
    tk_store_close(st);
    return 0;
}
