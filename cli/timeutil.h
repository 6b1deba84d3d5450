/* UTC calendar conversions without timegm()/TZ so results never depend on
 * the machine's time zone. */
#ifndef DMCTL_TIMEUTIL_H
#define DMCTL_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct civil {
    int year, month, day, hour, minute, second, ms;
} civil;

/* Accepts "YYYY.MM.DD", "YYYY-MM-DD", "DD/MM/YYYY", each optionally followed
 * by " HH:MM[:SS]" (or 'T'); `time` (may be NULL) is a separate "HH:MM[:SS]"
 * column. Returns Unix milliseconds treating the text as UTC. */
bool tu_parse(const char *date, const char *time, int64_t *ms_out);

void tu_to_civil(int64_t ms, civil *c);

/* "YYYY-MM-DD HH:MM:SS" or with ".mmm" */
void tu_fmt_utc(char out[32], int64_t ms, bool with_ms);

/* "YYYY-MM-DD HH:MM UTC", with ":SS" or ":SS.mmm" only when the time has them */
void tu_fmt_minute(char out[32], int64_t ms);

/* A time typed on the command line: Unix milliseconds, an ISO-8601 instant with its zone
 * (as the worker reads request dates), or any tu_parse form taken as UTC. */
bool tu_parse_when(const char *s, int64_t *ms_out);

double tu_now_ms(void); /* monotonic clock, for durations */

#endif
