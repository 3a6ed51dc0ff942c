/*
 * logfmt lines on stderr. Each line is assembled in a stack buffer and
 * handed to the kernel with a single write(2), so lines from concurrent
 * threads never interleave. A line longer than the buffer is cut and marked
 * with "…"; control characters in the formatted part become spaces so a
 * value can never forge a second log line.
 */
#include "tokend/log.h"

#include "tokend/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048
#define WRITE_TRIES    8

static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026, UTF-8 */

static enum tk_log_level min_level = TK_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void tk_log_set_level(enum tk_log_level level)
{
    TK_ASSERT(level >= TK_LOG_DEBUG && level <= TK_LOG_ERROR);
    min_level = level;
}

int tk_log_level_parse(const char *s, enum tk_log_level *out)
{
    if (s == NULL) {
        return TK_E_BADINPUT;
    }
    for (size_t i = 0; i < TK_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum tk_log_level)i;
            return 0;
        }
    }
    return TK_E_BADINPUT;
}

/* "ts=2026-11-28T18:00:00.123Z level=info event=EV"; returns its length. */
static size_t format_prefix(char *buf, size_t cap, enum tk_log_level level, const char *event)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, level_names[level], event != NULL ? event : "-");
    if (n < 0) {
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Control characters (newlines above all) would let a value start a forged
 * line; turn them into spaces. */
static void neutralise(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f) {
            p[i] = ' ';
        }
    }
}

/* Length of p[0..n) without a trailing UTF-8 sequence the cut left
 * incomplete, so a truncated line stays valid UTF-8. */
static size_t utf8_trim(const char *p, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = (unsigned char)p[n - back];
        if ((c & 0xc0) == 0x80) {
            continue; /* continuation byte: keep looking for the lead */
        }
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > back ? n - back : n;
    }
    return n;
}

static void write_line(const char *buf, size_t len)
{
    for (int i = 0; i < WRITE_TRIES && len > 0; i++) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return; /* nowhere to report a logging failure */
        }
        buf += w;
        len -= (size_t)w;
    }
}

void tk_log(enum tk_log_level level, const char *event, const char *fmt, ...)
{
    if (level < min_level || level > TK_LOG_ERROR) {
        return;
    }
    /* Room reserved at the end for the truncation marker and newline. */
    char buf[LINE_MAX_BYTES];
    const size_t body_cap = sizeof(buf) - (sizeof(ellipsis) - 1) - 1;
    size_t len = format_prefix(buf, body_cap, level, event);
    if (len + 1 < body_cap) {
        buf[len] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf + len + 1, body_cap - len - 1, fmt, ap);
        va_end(ap);
        size_t room = body_cap - len - 2; /* bytes vsnprintf could keep */
        if (n > 0) {
            size_t kept = (size_t)n <= room ? (size_t)n : utf8_trim(buf + len + 1, room);
            neutralise(buf + len + 1, kept);
            len += 1 + kept;
            if ((size_t)n > room) {
                memcpy(buf + len, ellipsis, sizeof(ellipsis) - 1);
                len += sizeof(ellipsis) - 1;
            }
        }
    }
    buf[len++] = '\n';
    TK_ASSERT(len <= sizeof(buf));
    write_line(buf, len);
}
