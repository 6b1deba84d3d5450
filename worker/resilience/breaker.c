#include "breaker.h"

#include <pthread.h>
#include <stdlib.h>

/* A mutex, not atomics: the transitions read and write three fields together, and the
 * lock is held for a few instructions once per backend call. */
struct dm_breaker {
    pthread_mutex_t mu;
    dm_breaker_state state;
    int failures;          /* consecutive, while CLOSED */
    int64_t opened_ms;     /* when it last opened */
    bool probe_out;        /* HALF_OPEN: the probe has been handed out */
};

dm_breaker *dm_breaker_create(void)
{
    dm_breaker *b = calloc(1, sizeof *b);
    if (b)
        pthread_mutex_init(&b->mu, NULL);
    return b;
}

void dm_breaker_destroy(dm_breaker *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

bool dm_breaker_allow(dm_breaker *b, int64_t now_ms, int timeout_s)
{
    pthread_mutex_lock(&b->mu);
    bool allow = true;
    if (b->state == DM_BREAKER_OPEN && now_ms - b->opened_ms >= (int64_t)timeout_s * 1000) {
        b->state = DM_BREAKER_HALF_OPEN;
        b->probe_out = false;
    }
    if (b->state == DM_BREAKER_OPEN)
        allow = false;
    else if (b->state == DM_BREAKER_HALF_OPEN) {
        allow = !b->probe_out;
        b->probe_out = true;
    }
    pthread_mutex_unlock(&b->mu);
    return allow;
}

void dm_breaker_report(dm_breaker *b, bool ok, int64_t now_ms, int threshold)
{
    pthread_mutex_lock(&b->mu);
    if (ok) {
        b->state = DM_BREAKER_CLOSED;
        b->failures = 0;
    } else if (b->state == DM_BREAKER_HALF_OPEN ||
               (b->state == DM_BREAKER_CLOSED && ++b->failures >= threshold)) {
        b->state = DM_BREAKER_OPEN;
        b->opened_ms = now_ms;
        b->failures = 0;
    }
    pthread_mutex_unlock(&b->mu);
}

void dm_breaker_abandon(dm_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->state == DM_BREAKER_HALF_OPEN)
        b->probe_out = false;
    pthread_mutex_unlock(&b->mu);
}

dm_breaker_state dm_breaker_state_of(dm_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    dm_breaker_state s = b->state;
    pthread_mutex_unlock(&b->mu);
    return s;
}

const char *dm_breaker_name(dm_breaker_state s)
{
    static const char *const names[] = {"closed", "open", "half_open"};
    return names[s];
}
