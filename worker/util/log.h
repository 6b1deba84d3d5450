/* Logging: one line per event on stderr, "LEVEL component: message".
 * Callers never pass secrets or DSNs: configs hand out values, not strings to print. */
#ifndef DM_LOG_H
#define DM_LOG_H

#include <stdarg.h>

typedef enum { DM_LOG_DEBUG, DM_LOG_INFO, DM_LOG_WARN, DM_LOG_ERROR } dm_log_level;

void dm_log_set_level(dm_log_level level);
void dm_log_set_name(const char *worker_name);
void dm_log(dm_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define DM_DEBUG(comp, ...) dm_log(DM_LOG_DEBUG, comp, __VA_ARGS__)
#define DM_INFO(comp, ...) dm_log(DM_LOG_INFO, comp, __VA_ARGS__)
#define DM_WARN(comp, ...) dm_log(DM_LOG_WARN, comp, __VA_ARGS__)
#define DM_ERROR(comp, ...) dm_log(DM_LOG_ERROR, comp, __VA_ARGS__)

#endif
