#include "tick_share.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    dm_tick_key key;
    dm_tick tick;
} slot;

struct dm_tick_share {
    pthread_mutex_t mu;
    size_t mask;
    slot *slots; /* guarded by mu */
};

dm_tick_share *dm_tick_share_create(size_t slots)
{
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    dm_tick_share *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->slots = calloc(n, sizeof *s->slots);
    if (s->slots == NULL) {
        free(s);
        return NULL;
    }
    s->mask = n - 1;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void dm_tick_share_destroy(dm_tick_share *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->slots);
    free(s);
}

static bool usable(const dm_tick_key *k)
{
    return k->seq != 0 && k->stored_ns != 0;
}

size_t dm_tick_share_find(dm_tick_share *s, const dm_tick_key *keys, size_t n, dm_tick *out,
                          bool *found)
{
    size_t hits = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        const slot *x = &s->slots[keys[i].seq & s->mask];
        found[i] =
            usable(&keys[i]) && x->key.seq == keys[i].seq && x->key.stored_ns == keys[i].stored_ns;
        if (found[i]) {
            out[i] = x->tick;
            hits++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return hits;
}

void dm_tick_share_put(dm_tick_share *s, const dm_tick_key *keys, const dm_tick *ticks, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        if (!usable(&keys[i]))
            continue;
        slot *x = &s->slots[keys[i].seq & s->mask];
        x->key = keys[i];
        x->tick = ticks[i];
    }
    pthread_mutex_unlock(&s->mu);
}
