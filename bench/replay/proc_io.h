/*
 * This process's write counters from /proc/self/io, read around a commit by
 * tokend-revoke-io and tokend-as-io: wchar is what LMDB handed to write(2),
 * a count that does not depend on the machine's load.
 */
#ifndef TOKEND_BENCH_PROC_IO_H
#define TOKEND_BENCH_PROC_IO_H

#include <stdio.h>

typedef struct io_counts {
    unsigned long long wchar, write_bytes, syscw;
} io_counts;

static inline int read_io(io_counts *c)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    if (f == NULL) {
        return -1;
    }
    *c = (io_counts){0};
    while (fgets(line, sizeof line, f) != NULL) {
        sscanf(line, "wchar: %llu", &c->wchar);
        sscanf(line, "syscw: %llu", &c->syscw);
        sscanf(line, "write_bytes: %llu", &c->write_bytes);
    }
    fclose(f);
    return 0;
}

#endif
