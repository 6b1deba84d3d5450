#include "backoff.h"

#include <stdlib.h>
#include <time.h>

int64_t dm_backoff_ms(const dm_backoff *b, int failures)
{
    double d = b->base_ms;
    for (int i = 1; i < failures && d < b->cap_ms; i++)
        d *= b->multiplier < 1 ? 1 : b->multiplier;
    if (d > b->cap_ms)
        d = b->cap_ms;
    d *= 0.75 + 0.5 * (double)rand() / RAND_MAX;
    if (d > b->cap_ms)
        d = b->cap_ms;
    return d < 0 ? 0 : (int64_t)d;
}

bool dm_sleep_ms(int64_t ms, const atomic_bool *stop)
{
    while (ms > 0) {
        if (stop && atomic_load(stop))
            return false;
        int64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !(stop && atomic_load(stop));
}
