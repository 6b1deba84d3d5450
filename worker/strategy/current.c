#include "current.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#include "util/log.h"

/* One version. `s` is the first member so that the pointer handed out by acquire converts
 * back to its snapshot (container_of) without a lookup.
 * refs is a plain int because every change to it happens under the holder's mutex: the
 * same lock that makes "read h->cur, then take a reference" one step in acquire, so a
 * reader can never pick up a snapshot that a concurrent swap is about to free. An atomic
 * counter alone would not close that window. */
typedef struct {
    dm_strategy s;
    int refs;
} snapshot;

struct dm_strategy_holder {
    pthread_mutex_t mu;
    snapshot *cur; /* the holder owns one reference on it */
    uint64_t generation;
};

static snapshot *snapshot_of(const dm_strategy *s)
{
    return (snapshot *)((char *)(uintptr_t)s - offsetof(snapshot, s));
}

static snapshot *snapshot_new(const dm_strategy *s)
{
    snapshot *snap = malloc(sizeof *snap);
    if (snap == NULL)
        return NULL;
    snap->s = *s;
    snap->refs = 1;
    return snap;
}

/* Drops one reference; the caller holds h->mu. Returns the snapshot to free once the lock
 * is released (freeing under the lock would only lengthen the readers' wait), or NULL. */
static snapshot *unref_locked(snapshot *snap)
{
    return --snap->refs == 0 ? snap : NULL;
}

dm_strategy_holder *dm_strategy_holder_create(const dm_strategy *initial)
{
    dm_strategy_holder *h = malloc(sizeof *h);
    if (h == NULL)
        return NULL;
    h->cur = snapshot_new(initial);
    if (h->cur == NULL || pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h->cur);
        free(h);
        return NULL;
    }
    h->generation = 1;
    return h;
}

void dm_strategy_holder_destroy(dm_strategy_holder *h)
{
    if (h == NULL)
        return;
    /* A reference still out here is a caller bug that would turn into a use-after-free
     * somewhere far away; say so, and free anyway, as the contract allows. */
    if (h->cur->refs != 1)
        DM_ERROR("strategy", "holder destroyed with %d reference(s) to version %s unreleased",
                 h->cur->refs - 1, h->cur->s.version);
    free(h->cur);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const dm_strategy *dm_strategy_acquire(dm_strategy_holder *h)
{
    pthread_mutex_lock(&h->mu);
    snapshot *snap = h->cur;
    snap->refs++;
    pthread_mutex_unlock(&h->mu);
    return &snap->s;
}

void dm_strategy_release(dm_strategy_holder *h, const dm_strategy *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    snapshot *dead = unref_locked(snapshot_of(s));
    pthread_mutex_unlock(&h->mu);
    free(dead);
}

uint64_t dm_strategy_swap(dm_strategy_holder *h, const dm_strategy *next)
{
    /* Copy outside the lock: readers only ever wait for a pointer exchange. */
    snapshot *fresh = snapshot_new(next);
    pthread_mutex_lock(&h->mu);
    if (fresh == NULL) {
        /* Out of memory: the running version stays, and the unchanged generation tells
         * the caller that nothing was swapped. */
        uint64_t g = h->generation;
        pthread_mutex_unlock(&h->mu);
        DM_ERROR("strategy", "out of memory; version %s not installed", next->version);
        return g;
    }
    snapshot *dead = unref_locked(h->cur);
    h->cur = fresh;
    uint64_t g = ++h->generation;
    pthread_mutex_unlock(&h->mu);
    free(dead);
    return g;
}

uint64_t dm_strategy_generation(dm_strategy_holder *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t g = h->generation;
    pthread_mutex_unlock(&h->mu);
    return g;
}
