/*
 * The processes the harness starts and what it reads about them: tokend on a
 * temporary data folder, nginx with a generated configuration (one process,
 * master_process off, so its CPU time is one /proc entry; with
 * bench_server_workers(N > 1) a master and N worker processes, each with its
 * own SO_REUSEPORT listener as tokend's workers have), tokenctl runs with
 * their stdout captured, and the /proc files that give a server's CPU time
 * (schedstat: nanoseconds, summed over threads and worker processes) and its
 * memory (smaps_rollup). Every server is pinned before exec when a CPU is
 * given (to N CPUs from it with N workers) and dies with the harness
 * (PR_SET_PDEATHSIG).
 */
#include "bench.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void bench_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tokend-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int bench_pin(int cpu)
{
    return bench_pin_n(cpu, 1);
}

int bench_pin_n(int cpu, unsigned n)
{
    if (cpu < 0) {
        return 0;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned k = 0; k < n && k < CPU_SETSIZE; k++) {
        CPU_SET((unsigned)cpu + k, &set);
    }
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

static unsigned server_workers = 1; /* bench_server_workers */

void bench_server_workers(unsigned n)
{
    server_workers = n >= 1 && n <= SERVER_KIDS_MAX ? n : 1;
}

int bench_mkdtemp(const char *what, char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/tokend-bench-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", what);
    return mkdtemp(out) != NULL ? 0 : -errno;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void bench_rmtree(const char *dir)
{
    if (dir[0] != '\0' && strncmp(dir, "/", 1) == 0 && strstr(dir, "tokend-bench-") != NULL) {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* fork + exec with stdout to out_fd (-1: inherit) and stderr to err_path
 * (NULL: inherit), pinned to ncpu CPUs from cpu. */
static pid_t spawn(char *const argv[], int out_fd, const char *err_path, int cpu, unsigned ncpu)
{
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (out_fd >= 0) {
        dup2(out_fd, 1);
    }
    if (err_path != NULL) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
        }
    }
    bench_pin_n(cpu, ncpu);
    execvp(argv[0], argv);
    fprintf(stderr, "tokend-bench: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int bench_run(char *const argv[], char **out)
{
    int p[2] = {-1, -1};
    if (out != NULL && pipe2(p, O_CLOEXEC) != 0) {
        return -1;
    }
    pid_t pid = spawn(argv, p[1], NULL, -1, 1);
    if (p[1] >= 0) {
        close(p[1]);
    }
    size_t len = 0, cap = 4096;
    char *buf = out ? malloc(cap) : NULL;
    while (out != NULL && buf != NULL) { /* until EOF; grows geometrically */
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(p[0], buf + len, cap - len - 1);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            break;
        }
        len += n > 0 ? (size_t)n : 0;
    }
    if (p[0] >= 0) {
        close(p[0]);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) {
        free(buf);
        return -1;
    }
    if (out != NULL) {
        if (buf != NULL) {
            buf[len] = '\0';
        }
        *out = buf;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The first 4 KiB of a log file on stderr. */
static void dump_file(const char *path)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    fwrite(buf, 1, n, stderr);
    if (f != NULL) {
        fclose(f);
    }
}

static bool port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static char tls_cert[256], tls_key[256]; /* bench_tls_servers; "" = plain */
static char tokend_extra[1024];          /* bench_tokend_extra: more tokend options */
static char nginx_extra[2048];           /* bench_nginx_extra: more location directives */

void bench_tokend_extra(const char *args)
{
    snprintf(tokend_extra, sizeof tokend_extra, "%s", args ? args : "");
}

void bench_nginx_extra(const char *conf)
{
    snprintf(nginx_extra, sizeof nginx_extra, "%s", conf ? conf : "");
}

void bench_tls_servers(const char *cert, const char *key)
{
    snprintf(tls_cert, sizeof tls_cert, "%s", cert);
    snprintf(tls_key, sizeof tls_key, "%s", key);
}

static uint16_t read_port(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned port = 0;
    if (f != NULL) {
        if (fscanf(f, "%u", &port) != 1 || port >= 65536) {
            port = 0;
        }
        fclose(f);
    }
    return (uint16_t)port;
}

/* tokend warms its map on a thread of its own after it starts serving (see
 * README, "Map prefault"); until that thread is gone, lookups may still
 * fault, or wait for a range being re-read as 2 MiB pages. Measure after it
 * (at most 180 s), and say how long it took. */
static bool prefault_running(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d != NULL && !found && (e = readdir(d)) != NULL;) {
        char path[384], comm[32] = "";
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            found =
                fgets(comm, sizeof comm, f) != NULL && strncmp(comm, "tokend-prefault", 15) == 0;
            fclose(f);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return found;
}

static void wait_prefault(pid_t pid)
{
    uint64_t t0 = bench_now_ns();
    int i = 0;
    for (; i < 1800 && prefault_running(pid); i++) {
        sleep_ms(100);
    }
    if (i > 0) {
        bench_log("tokend %d: waited %.1f s for its start-up map prefault", (int)pid,
                  (double)(bench_now_ns() - t0) / 1e9);
    }
}

int tokend_start(const char *tokend, const char *data_dir, int cpu, server_proc *sp)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->name, sizeof sp->name, "tokend");
    int rc = bench_mkdtemp("run", sp->dir, sizeof sp->dir);
    if (rc != 0) {
        return rc;
    }
    char port_file[300], tls_port_file[300], log[300];
    snprintf(port_file, sizeof port_file, "%s/port", sp->dir);
    snprintf(tls_port_file, sizeof tls_port_file, "%s/tls-port", sp->dir);
    snprintf(log, sizeof log, "%s/tokend.log", sp->dir);
    char workers[16];
    snprintf(workers, sizeof workers, "%u", server_workers);
    char *args[] = {(char *)tokend, "--listen", "127.0.0.1:0", "--port-file", port_file, "--data",
                    (char *)data_dir, "--workers", workers, "--log-level", "warn",
                    /* with bench_tls_servers: a TLS listener beside the plain one */
                    tls_cert[0] ? "--listen" : NULL, "127.0.0.1:0 tls", "--tls-cert", tls_cert,
                    "--tls-key", tls_key, "--tls-port-file", tls_port_file, NULL};
    /* TOKEND_BENCH_WRAP="valgrind --tool=callgrind ...": run tokend under a tool. */
    char *argv[40], wrap[512];
    size_t n = 0;
    const char *w = getenv("TOKEND_BENCH_WRAP");
    snprintf(wrap, sizeof wrap, "%s", w ? w : "");
    for (char *save = NULL, *t = strtok_r(wrap, " ", &save); t && n < 24;
         t = strtok_r(NULL, " ", &save)) {
        argv[n++] = t;
    }
    for (size_t k = 0; k + 1 < sizeof args / sizeof args[0] && args[k] != NULL; k++) {
        argv[n++] = args[k];
    }
    /* TOKEND_BENCH_ARGS: more tokend options (e.g. a smaller --map-size for valgrind). */
    char extra[1600];
    const char *x = getenv("TOKEND_BENCH_ARGS");
    snprintf(extra, sizeof extra, "%s %s", tokend_extra, x ? x : "");
    for (char *save = NULL, *t = strtok_r(extra, " ", &save); t && n < 38;
         t = strtok_r(NULL, " ", &save)) {
        argv[n++] = t;
    }
    argv[n] = NULL;
    sp->pid = spawn(argv, -1, log, cpu, server_workers);
    for (int i = 0; sp->pid > 0 && i < 600; i++) { /* 60 s */
        FILE *f = fopen(port_file, "r");
        unsigned port = 0;
        if (f != NULL && fscanf(f, "%u", &port) == 1 && port > 0 && port < 65536) {
            fclose(f);
            sp->port = (uint16_t)port;
            sp->tls_port = tls_cert[0] ? read_port(tls_port_file) : 0; /* written before */
            wait_prefault(sp->pid);
            return 0;
        }
        if (f != NULL) {
            fclose(f);
        }
        if (waitpid(sp->pid, NULL, WNOHANG) == sp->pid) {
            sp->pid = 0;
            break;
        }
        sleep_ms(100);
    }
    bench_log("tokend did not start; its log:");
    dump_file(log);
    server_stop(sp);
    return -1;
}

bool nginx_available(void)
{
    return access("/usr/sbin/nginx", X_OK) == 0;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static int nginx_conf(const server_proc *sp, const char *body, size_t body_len, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -errno;
    }
    /* One process, or a master and N workers with a listener each (reuseport). */
    bool multi = server_workers > 1;
    fprintf(f,
            "daemon off;\nmaster_process %s;\nworker_processes %u;\npid %s/nginx.pid;\n"
            "error_log %s/error.log warn;\nevents { worker_connections 8192; }\n"
            "http {\n  access_log off;\n  keepalive_requests 1000000000;\n"
            "  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fcgi;\n  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  server {\n    listen 127.0.0.1:%u%s%s;\n",
            multi ? "on" : "off", server_workers, sp->dir, sp->dir, sp->dir, sp->dir, sp->dir,
            sp->dir, sp->dir, sp->port, tls_cert[0] ? " ssl" : "", multi ? " reuseport" : "");
    if (tls_cert[0]) { /* nginx's defaults otherwise: tickets on, TLS 1.2 and 1.3 */
        fprintf(f,
                "    ssl_certificate %s;\n    ssl_certificate_key %s;\n"
                "    ssl_protocols TLSv1.2 TLSv1.3;\n",
                tls_cert, tls_key);
    }
    fprintf(f,
            "    location / {\n"
            "      default_type application/json;\n      add_header Cache-Control no-store;\n"
            "%s      return 200 '%.*s';\n    }\n  }\n}\n",
            nginx_extra, (int)body_len, body);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* sp->pid's child processes (nginx's workers): 0 when there are want of them. */
static int find_kids(server_proc *sp, unsigned want)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    sp->nkids = 0;
    for (int n = 0; d != NULL && n < 1000000 && (e = readdir(d)) != NULL; n++) {
        char path[300], line[512];
        if (e->d_name[0] < '1' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        bool got = f != NULL && fgets(line, sizeof line, f) != NULL;
        if (f != NULL) {
            fclose(f);
        }
        const char *p = got ? strrchr(line, ')') : NULL;
        int ppid = 0;
        if (p != NULL && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == (int)sp->pid &&
            sp->nkids < SERVER_KIDS_MAX) {
            sp->kids[sp->nkids++] = (pid_t)atoi(e->d_name);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return sp->nkids >= want ? 0 : -1;
}

int nginx_start(const char *body, size_t body_len, int cpu, server_proc *sp)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->name, sizeof sp->name, "nginx");
    if (memchr(body, '\'', body_len) || memchr(body, '\\', body_len) ||
        memchr(body, '$', body_len)) {
        return -EINVAL; /* would need escaping in the config */
    }
    int rc = bench_mkdtemp("nginx", sp->dir, sizeof sp->dir);
    sp->port = free_port();
    sp->tls_port = tls_cert[0] ? sp->port : 0;
    char conf[300], log[300];
    snprintf(conf, sizeof conf, "%s/nginx.conf", sp->dir);
    snprintf(log, sizeof log, "%s/error.log", sp->dir);
    if (rc == 0) {
        rc = nginx_conf(sp, body, body_len, conf);
    }
    if (rc != 0 || sp->port == 0) {
        return rc ? rc : -EADDRNOTAVAIL;
    }
    char *argv[] = {"/usr/sbin/nginx", "-p", sp->dir, "-c", conf, "-e", log, NULL};
    sp->pid = spawn(argv, -1, log, cpu, server_workers);
    for (int i = 0; sp->pid > 0 && i < 100; i++) { /* 10 s */
        if ((server_workers == 1 || find_kids(sp, server_workers) == 0) && port_open(sp->port)) {
            return 0;
        }
        if (waitpid(sp->pid, NULL, WNOHANG) == sp->pid) {
            sp->pid = 0;
            break;
        }
        sleep_ms(100);
    }
    bench_log("nginx did not start; its log:");
    dump_file(log);
    server_stop(sp);
    return -1;
}

uint16_t bench_free_port(void)
{
    return free_port();
}

int bench_spawn_server(char *const argv[], server_proc *sp)
{
    char log[300];
    snprintf(log, sizeof log, "%s/server.log", sp->dir);
    sp->pid = spawn(argv, -1, log, -1, 1);
    for (int i = 0; sp->pid > 0 && i < 150; i++) { /* 15 s */
        if (port_open(sp->port)) {
            return 0;
        }
        if (waitpid(sp->pid, NULL, WNOHANG) == sp->pid) {
            sp->pid = 0;
            break;
        }
        sleep_ms(100);
    }
    bench_log("%s did not listen on %u; its log:", argv[0], (unsigned)sp->port);
    dump_file(log);
    server_stop(sp);
    return -1;
}

void server_stop(server_proc *sp)
{
    if (sp->pid > 0) {
        kill(sp->pid, SIGTERM);
        int i = 0;
        for (; i < 150 && waitpid(sp->pid, NULL, WNOHANG) != sp->pid; i++) { /* 15 s */
            sleep_ms(100);
        }
        if (i == 150) {
            kill(sp->pid, SIGKILL);
            waitpid(sp->pid, NULL, 0);
        }
        sp->pid = 0;
    }
    if (sp->dir[0] != '\0') {
        bench_rmtree(sp->dir);
        sp->dir[0] = '\0';
    }
}

/* ---- /proc -------------------------------------------------------------------------------- */

int proc_cpu_read(pid_t pid, proc_cpu *out)
{
    memset(out, 0, sizeof *out);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    char line[1024];
    if (f == NULL || fgets(line, sizeof line, f) == NULL) {
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    const char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    out->user_ticks = ut;
    out->sys_ticks = st;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    struct dirent *e;
    for (int n = 0; d != NULL && n < 4096 && (e = readdir(d)) != NULL; n++) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char sp[300];
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *sf = fopen(sp, "r");
        unsigned long long ns = 0;
        if (sf != NULL && fscanf(sf, "%llu", &ns) == 1) {
            out->total_ns += ns;
        }
        if (sf != NULL) {
            fclose(sf);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return 0;
}

int server_cpu_read(const server_proc *sp, proc_cpu *out)
{
    int rc = proc_cpu_read(sp->pid, out);
    for (unsigned k = 0; rc == 0 && k < sp->nkids; k++) {
        proc_cpu kid;
        rc = proc_cpu_read(sp->kids[k], &kid);
        out->total_ns += kid.total_ns;
        out->user_ticks += kid.user_ticks;
        out->sys_ticks += kid.sys_ticks;
    }
    return rc;
}

int proc_mem_read(pid_t pid, proc_mem *out)
{
    memset(out, 0, sizeof *out);
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    for (int n = 0; n < 64 && fgets(line, sizeof line, f) != NULL; n++) {
        unsigned long long kb = 0;
        if (sscanf(line, "Rss: %llu", &kb) == 1) {
            out->rss_kb = kb;
        } else if (sscanf(line, "Private_Clean: %llu", &kb) == 1) {
            out->private_clean_kb = kb;
        } else if (sscanf(line, "Private_Dirty: %llu", &kb) == 1) {
            out->private_dirty_kb = kb;
        } else if (sscanf(line, "Anonymous: %llu", &kb) == 1) {
            out->anon_kb = kb;
        }
    }
    fclose(f);
    return 0;
}

int json_get_str(const char *doc, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = doc ? strstr(doc, pat) : NULL;
    if (p == NULL) {
        return -1;
    }
    p += strlen(pat);
    const char *q = strchr(p, '"');
    if (q == NULL || (size_t)(q - p) >= cap) {
        return -1;
    }
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return 0;
}
