/*
 * Structured log lines on stderr, one write(2) per line so lines from
 * different threads never interleave:
 *   ts=2026-11-28T18:00:00.123Z level=info event=revoke token=sha256:1a2b3c4d …
 * The event is a fixed word; the rest is key=value pairs from a printf
 * format. Never pass a token or secret: use tk_hash_ref() (crypto.h).
 */
#ifndef TOKEND_LOG_H
#define TOKEND_LOG_H

enum tk_log_level { TK_LOG_DEBUG = 0, TK_LOG_INFO = 1, TK_LOG_WARN = 2, TK_LOG_ERROR = 3 };

/* Lines below this level are dropped (default TK_LOG_INFO). Not thread-safe
 * to change while other threads log; set it at start-up. */
void tk_log_set_level(enum tk_log_level level);
/* Parse "debug" / "info" / "warn" / "error"; returns 0 or TK_E_BADINPUT. */
int tk_log_level_parse(const char *s, enum tk_log_level *out);

__attribute__((format(printf, 3, 4))) void tk_log(enum tk_log_level level, const char *event,
                                                  const char *fmt, ...);

#define tk_log_debug(ev, ...) tk_log(TK_LOG_DEBUG, ev, __VA_ARGS__)
#define tk_log_info(ev, ...)  tk_log(TK_LOG_INFO, ev, __VA_ARGS__)
#define tk_log_warn(ev, ...)  tk_log(TK_LOG_WARN, ev, __VA_ARGS__)
#define tk_log_error(ev, ...) tk_log(TK_LOG_ERROR, ev, __VA_ARGS__)

#endif
