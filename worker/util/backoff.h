/* One backoff for every wait between attempts: exponential, capped, jittered (+-25%, so
 * workers that failed together do not retry together), and a sleep that a stop request
 * cuts short. Pure apart from rand() and the sleep. */
#ifndef DM_BACKOFF_H
#define DM_BACKOFF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double base_ms;    /* the wait after the first failure */
    double multiplier; /* >= 1 */
    double cap_ms;     /* no single wait longer than this */
} dm_backoff;

/* The wait after `failures` consecutive failures (>= 1), jittered, in [0, cap_ms]. */
int64_t dm_backoff_ms(const dm_backoff *b, int failures);
/* Sleeps ms, looking at *stop (may be NULL) every 100 ms; false when stopped early. */
bool dm_sleep_ms(int64_t ms, const atomic_bool *stop);

#endif
