/* Freshness: which copy of a key is current.
 *
 * Every consumer that commits ticks or candles to a backend that a read route answers from
 * publishes, per row, the MARKET stream sequence of the message it came from
 * (dm.cache.v1.update). Each worker keeps, per cache key and backend, the highest sequence
 * that backend is known to have committed. A backend's copy of a key is current when no
 * other backend is known to have committed anything newer for it; a lagging copy (a cache
 * catching up after an outage, the analytics copy's batch linger) is not asked.
 *
 * Commits made before this worker could hear them (it started, or it lost NATS for a
 * while) are unknown: a backend counts as caught up on a class of data only once its
 * consumers have acknowledged everything that any source of the read route had
 * acknowledged at that moment (bus/progress.h). Until then it is not current for any key,
 * so reads go to one that is (or fail), never to a copy behind another.
 *
 * While the worker may be missing updates (NATS disconnected, a dropped update) L1 is
 * suspended: every L1 read misses and nothing is filled, until the worker has forgotten
 * what it knew and starts over.
 *
 * Threads: marks are written by the update subscription's thread and read by responders
 * (a dm_l1 store, locked per shard); latches and the suspension are atomics. */
#ifndef DM_FRESH_H
#define DM_FRESH_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"

typedef enum { DM_FRESH_TICKS, DM_FRESH_CANDLES, DM_FRESH_CLASSES } dm_fresh_class;

typedef struct dm_fresh dm_fresh;

dm_fresh *dm_fresh_create(size_t max_keys);
void dm_fresh_destroy(dm_fresh *f);

/* Backend b committed a row of `key` from stream sequence seq. */
void dm_fresh_note(dm_fresh *f, const char *key, dm_backend_id b, uint64_t seq);
/* Whether b's copy of key may be read: b is caught up on the class and no backend of
 * `peers` (a mask of 1 << dm_backend_id: the read route's sources) committed a newer row of
 * key. *seq (may be NULL): the sequence b's answer includes at least, for stamping a
 * cache fill. */
bool dm_fresh_current(dm_fresh *f, const char *key, dm_fresh_class cls, dm_backend_id b,
                      unsigned peers, uint64_t *seq);

/* Caught-up latches, set by the worker's catch-up check. */
void dm_fresh_set_caught_up(dm_fresh *f, dm_backend_id b, dm_fresh_class cls, bool on);
bool dm_fresh_caught_up(dm_fresh *f, dm_backend_id b, dm_fresh_class cls);

/* Updates may be missing from now on: L1 is bypassed until dm_fresh_restart. */
void dm_fresh_suspend(dm_fresh *f);
bool dm_fresh_suspended(dm_fresh *f);
/* Forgets every mark and latch and lifts the suspension; the generation moves on, so a
 * fill prepared before the restart is dropped and the catch-up check starts over. */
void dm_fresh_restart(dm_fresh *f);
uint64_t dm_fresh_generation(dm_fresh *f);

#endif
