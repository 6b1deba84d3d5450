/* The running strategy: an immutable snapshot shared by every thread, replaced as a
 * whole on reload. A caller takes a reference for the span of one request or one batch
 * and releases it after, so work in flight finishes with the version it started with and
 * an old version is freed when its last user lets go.
 * Owner: the worker; swapped by the reload thread, read by all others. */
#ifndef DM_STRATEGY_CURRENT_H
#define DM_STRATEGY_CURRENT_H

#include <stdint.h>

#include "strategy.h"

typedef struct dm_strategy_holder dm_strategy_holder;

/* Takes a copy of the initial strategy. */
dm_strategy_holder *dm_strategy_holder_create(const dm_strategy *initial);
void dm_strategy_holder_destroy(dm_strategy_holder *h); /* after every reference is released */

const dm_strategy *dm_strategy_acquire(dm_strategy_holder *h);
void dm_strategy_release(dm_strategy_holder *h, const dm_strategy *s);
/* Replaces the current version (copied); returns the new generation number. */
uint64_t dm_strategy_swap(dm_strategy_holder *h, const dm_strategy *next);
uint64_t dm_strategy_generation(dm_strategy_holder *h); /* 1 for the initial version */

#endif
