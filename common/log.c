#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

log_level_t log_threshold = LOG_INFO;

static const char *s_prog = "qjob";
static bool s_json;
static long s_pid;
static const char *const s_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *prog, log_level_t level, bool json)
{
    s_prog = prog;
    log_threshold = level;
    s_json = json;
    s_pid = (long)getpid();
}

int log_parse_level(const char *s, log_level_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, s_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    return -1;
}

void log_write(log_level_t level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    if (s_json) {
        /* jansson escapes the message: it may hold peer-supplied text. */
        json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s}", "ts", ts, "prog", s_prog,
                              "pid", (json_int_t)s_pid, "level", s_names[level], "msg", msg);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (line)
            fprintf(stderr, "%s\n", line);
        free(line);
        json_decref(o);
    } else {
        fprintf(stderr, "%s %s[%ld] %s: %s\n", ts, s_prog, s_pid, s_names[level], msg);
    }
}
