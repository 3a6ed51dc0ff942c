/*
 * Warming the map at start-up (tk_store_prefault): page tables populated so
 * that first lookups take no fault, and, where the kernel and file system
 * allow it, the map backed by 2 MiB pages so that a random lookup in a
 * gigabyte-sized tree is not also a TLB miss (docs/ARCHITECTURE.md §7).
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tokend/log.h"
#include "store_int.h"

#define HUGE_SIZE       (2u << 20)
#define HUGE_PROBE      (16u << 20) /* reloaded before deciding whether reloading pays */
#define SMAPS_LINES_MAX 1000000u

typedef struct map_span {
    uintptr_t base;
    uint64_t used, size, gen;
} map_span;

static int span_of(tk_store *st, map_span *m)
{
    MDB_envinfo info;
    MDB_stat es;
    int rc = mdb_env_info(st->env, &info);
    if (rc == 0) {
        rc = mdb_env_stat(st->env, &es);
    }
    if (rc != 0) {
        return tk_store_err(rc, "prefault_info");
    }
    pthread_mutex_lock(&st->map_mu);
    m->gen = st->map_gen;
    pthread_mutex_unlock(&st->map_mu);
    m->base = st->map_base;
    m->size = info.me_mapsize;
    m->used = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
    if (m->used > m->size) {
        m->used = m->size;
    }
    return m->base == 0 ? -ENOENT : 0;
}

static bool stopped(const int *stop)
{
    return stop != NULL && __atomic_load_n(stop, __ATOMIC_RELAXED);
}

static int populate(const map_span *m, const int *stop, uint64_t *done)
{
    int advice = MADV_POPULATE_READ;
    *done = 0;
    for (uint64_t off = 0; off < m->used; off += TK_PREFAULT_CHUNK) { /* bounded by the map */
        if (stopped(stop)) {
            break;
        }
        size_t n = (size_t)(m->used - off < TK_PREFAULT_CHUNK ? m->used - off : TK_PREFAULT_CHUNK);
        int r = madvise((void *)(m->base + off), n, advice);
        if (r != 0 && errno == EINVAL && advice == MADV_POPULATE_READ) {
            advice = MADV_WILLNEED; /* kernel older than 5.14: read-ahead only */
            r = madvise((void *)(m->base + off), n, advice);
        }
        if (r != 0) {
            return -errno; /* e.g. the map was grown and moved: stop, harmlessly */
        }
        *done += n;
    }
    return 0;
}

/* FilePmdMapped summed over the map's areas in /proc/self/smaps; false when
 * it cannot be read (no descriptor to spare, no such field). */
static bool pmd_mapped(const map_span *m, uint64_t *bytes)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    if (f == NULL) {
        return false;
    }
    char line[512];
    bool inside = false, seen = false;
    *bytes = 0;
    for (unsigned i = 0; i < SMAPS_LINES_MAX && fgets(line, sizeof(line), f) != NULL; i++) {
        unsigned long start, end, kb;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2) { /* an area's first line */
            inside = start >= m->base && start < m->base + m->size;
        } else if (inside && sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) {
            *bytes += (uint64_t)kb << 10;
            seen = true;
        }
    }
    fclose(f);
    return seen;
}

/* One 2 MiB range, under the map lock so that no remap happens meanwhile:
 * this process's mappings dropped, the clean cached pages dropped, the range
 * populated again (read-ahead makes a 2 MiB folio where none of it is left
 * cached). 1: the map moved (stop for good), 0: done, -errno. */
static int reload(tk_store *st, const map_span *m, int fd, uint64_t off)
{
    int rc = 0;
    pthread_mutex_lock(&st->map_mu);
    void *p = (void *)(m->base + off);
    if (st->map_gen != m->gen) {
        rc = 1;
    } else if (madvise(p, HUGE_SIZE, MADV_DONTNEED) != 0) {
        rc = -errno;
    } else {
        /* Advice only: a failure leaves the pages cached and mapped as before. */
        (void)posix_fadvise(fd, (off_t)off, HUGE_SIZE, POSIX_FADV_DONTNEED);
        if (madvise(p, HUGE_SIZE, MADV_POPULATE_READ) != 0) {
            rc = -errno;
        }
    }
    pthread_mutex_unlock(&st->map_mu);
    return rc;
}

static int make_huge(tk_store *st, const map_span *m, const int *stop, tk_prefault_result *out)
{
    uint64_t before = 0;
    if (!pmd_mapped(m, &before)) {
        out->huge_unavailable = true;
        return 0;
    }
    out->huge_bytes = before;
    uint64_t whole = m->used - m->used % HUGE_SIZE;
    if (before >= whole - whole / 10) {
        return 0; /* read from disk since start: already in 2 MiB pages */
    }
    int fd = -1;
    if (mdb_env_get_fd(st->env, &fd) != 0 || fd < 0) {
        return 0;
    }
    int rc = 0;
    for (uint64_t off = 0; off < whole && !stopped(stop); off += HUGE_SIZE) {
        rc = reload(st, m, fd, off);
        if (rc != 0) {
            break;
        }
        out->reloaded_bytes += HUGE_SIZE;
        uint64_t now = 0;
        if (out->reloaded_bytes == HUGE_PROBE && (!pmd_mapped(m, &now) || now <= before)) {
            out->huge_unavailable = true;
            break;
        }
    }
    (void)pmd_mapped(m, &out->huge_bytes);
    return rc > 0 ? -EAGAIN : rc;
}

int tk_store_prefault(tk_store *st, const int *stop, bool huge, tk_prefault_result *out)
{
    tk_prefault_result res = {0};
    map_span m = {0};
    int rc = span_of(st, &m);
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (rc == 0 && huge && pages > 0 && psize > 0 &&
        m.used > (uint64_t)pages * (uint64_t)psize / 2) {
        huge = false; /* a miss would read 2 MiB from disk: not for a map this large */
        res.huge_too_large = true;
    }
    if (rc == 0 && huge &&
        (m.base % HUGE_SIZE != 0 || madvise((void *)m.base, m.size, MADV_HUGEPAGE) != 0)) {
        huge = false; /* unaligned map, or a kernel without transparent huge pages */
        res.huge_unavailable = true;
    }
    if (rc == 0) {
        rc = populate(&m, stop, &res.bytes);
    }
    if (rc == 0 && huge && !stopped(stop)) {
        rc = make_huge(st, &m, stop, &res);
    }
    if (out != NULL) {
        *out = res;
    }
    return rc;
}
