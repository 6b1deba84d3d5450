#include "flight.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One mutex and one condition variable for all keys. A done() wakes every waiter, also
 * those of other keys; with as many waiters as responder threads that costs less than a
 * condition variable per key, whose lifetime would have to follow its last waiter.
 *
 * Memory safety: done() unlinks and frees the key's flight at once. A waiter never keeps
 * a pointer across pthread_cond_timedwait: it remembers the generation of the flight it
 * waits for and, on every wake-up, looks the key up again under the mutex. The flight is
 * over when the key is gone or carries another generation (a new leader came after the
 * old one finished). Generations come from one counter that only grows, so a freed
 * flight's generation is never seen again, even if malloc hands back the same address. */

typedef struct flight {
    struct flight *next;
    uint64_t gen;
    char key[];
} flight;

struct dm_flight {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC: a wall clock step must not stretch a wait */
    flight *head;      /* in-flight keys; few at a time, so a list */
    uint64_t next_gen;
};

dm_flight *dm_flight_create(void)
{
    dm_flight *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        goto fail;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&f->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        goto fail;
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        pthread_cond_destroy(&f->cv);
        goto fail;
    }
    return f;
fail:
    free(f);
    return NULL;
}

/* Flights still open belong to leaders that never called done(); nobody may be waiting. */
void dm_flight_destroy(dm_flight *f)
{
    if (f == NULL)
        return;
    for (flight *fl = f->head, *next; fl; fl = next) {
        next = fl->next;
        free(fl);
    }
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static flight **find_slot(dm_flight *f, const char *key)
{
    flight **p = &f->head;
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

static struct timespec deadline_after(int wait_ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += wait_ms / 1000;
    t.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Called with f->mu held; returns with it held. */
static void wait_for(dm_flight *f, const char *key, uint64_t gen, int wait_ms)
{
    if (wait_ms <= 0)
        return;
    struct timespec until = deadline_after(wait_ms);
    for (;;) {
        int rc = pthread_cond_timedwait(&f->cv, &f->mu, &until);
        flight *fl = *find_slot(f, key);
        if (fl == NULL || fl->gen != gen || rc == ETIMEDOUT)
            return;
    }
}

bool dm_flight_begin(dm_flight *f, const char *key, int wait_ms)
{
    pthread_mutex_lock(&f->mu);
    flight **slot = find_slot(f, key);
    if (*slot) {
        wait_for(f, key, (*slot)->gen, wait_ms);
        pthread_mutex_unlock(&f->mu);
        return false;
    }
    size_t n = strlen(key);
    flight *fl = malloc(sizeof *fl + n + 1);
    /* Without memory the caller still leads, only nobody can wait for it: done() then
     * finds no flight, which it ignores. */
    if (fl) {
        memcpy(fl->key, key, n + 1);
        fl->gen = f->next_gen++;
        fl->next = f->head;
        f->head = fl;
    }
    pthread_mutex_unlock(&f->mu);
    return true;
}

void dm_flight_done(dm_flight *f, const char *key)
{
    pthread_mutex_lock(&f->mu);
    flight **slot = find_slot(f, key);
    flight *fl = *slot;
    if (fl) {
        *slot = fl->next;
        free(fl);
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
}
