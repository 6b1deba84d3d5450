#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Set once by main before any thread starts; read-only afterwards. */
static dm_log_level g_level = DM_LOG_INFO;
static char g_name[32] = "dm";

void dm_log_set_level(dm_log_level level) { g_level = level; }

void dm_log_set_name(const char *worker_name)
{
    snprintf(g_name, sizeof g_name, "%s", worker_name);
}

void dm_log(dm_log_level level, const char *component, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < g_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line so lines from different threads do not interleave. */
    fprintf(stderr, "%s.%03ldZ %s %-5s %s: %s\n", when, ts.tv_nsec / 1000000L, g_name,
            names[level], component, msg);
}
