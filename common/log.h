/* log.h -- one line per notable event, on stderr.
 *
 * Text:  2026-11-22T10:00:00.123Z qbroker[42] info: worker host:7/0 joined (4 slots)
 * JSON:  {"ts":"…","prog":"qbroker","pid":42,"level":"info","msg":"…"}
 * A message below the configured level costs one comparison. */
#ifndef QJ_LOG_H
#define QJ_LOG_H

#include <stdbool.h>

typedef enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level_t;

extern log_level_t log_threshold;

/* Set the program name, level and format (json or text).  Call once at
 * start-up (and again after fork to update the pid). */
void log_init(const char *prog, log_level_t level, bool json);

/* Parse "error" | "warn" | "info" | "debug".  Returns 0 or -1. */
int log_parse_level(const char *s, log_level_t *out);

void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) do { if (log_threshold >= LOG_WARN) log_write(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_threshold >= LOG_INFO) log_write(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_threshold >= LOG_DEBUG) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
