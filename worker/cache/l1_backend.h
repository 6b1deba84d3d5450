/* L1 as a backend: the memory cache answers latest ticks and latest candles like any
 * other source in a strategy route, and is filled the same way as Dragonfly when a
 * slower source answers. Coherence updates (a write committed by any worker) are merged
 * in place through dm_l1_cache_apply_*.
 *
 * Keys are the Dragonfly ones (tick:latest:{EURUSD}, candle:latest:{EURUSD}:1h); values
 * are a dm_tick, or the newest candles of a key, oldest first.
 *
 * A fill must not undo an update that landed while the slower source was being read
 * (that would pin a stale value until the TTL): every update bumps an epoch of the key's
 * slot, a read remembers the epoch it saw when it missed, and the fill is dropped if the
 * epoch moved meanwhile. */
#ifndef DM_L1_BACKEND_H
#define DM_L1_BACKEND_H

#include "backend/backend.h"
#include "fresh.h"
#include "l1.h"

typedef struct dm_l1_cache dm_l1_cache; /* the worker's L1: one store per kind + epochs */

dm_l1_cache *dm_l1_cache_create(size_t max_entries_per_kind, size_t max_bytes);
void dm_l1_cache_destroy(dm_l1_cache *c);
/* TTL per kind: latest ticks and latest candles. */
void dm_l1_cache_set_ttl(dm_l1_cache *c, int64_t tick_ttl_ms, int64_t candle_ttl_ms);
void dm_l1_cache_set_limits(dm_l1_cache *c, size_t max_entries_per_kind, size_t max_bytes);
dm_l1_stats dm_l1_cache_stats(dm_l1_cache *c, bool candles);

/* One per responder thread (it remembers the epoch of its last miss). */
dm_backend *dm_l1_backend_create(dm_l1_cache *c);

/* The keys of L1, Dragonfly and the freshness marks (key holds DM_L1_KEY_MAX bytes). */
void dm_l1_tick_key(const char *symbol, char *key);
void dm_l1_candle_key(const char *symbol, dm_tf tf, char *key);

/* Merge rows that backend `from` committed, seqs[i] being row i's stream sequence: a
 * newer tick replaces the cached one; candles replace the same open time (unless the
 * cached row is from a later sequence) or extend the list by exactly one period, anything
 * else drops the entry. The rows also move the freshness marks. */
void dm_l1_cache_apply_ticks(dm_l1_cache *c, dm_backend_id from, const dm_tick *t,
                             const uint64_t *seqs, size_t n);
void dm_l1_cache_apply_candles(dm_l1_cache *c, dm_backend_id from, const dm_candle *k,
                               const uint64_t *seqs, size_t n);

/* The worker's freshness state (owned by the cache). */
dm_fresh *dm_l1_cache_fresh(dm_l1_cache *c);
/* The worker may have missed updates: drop every entry, forget every mark, start over. */
void dm_l1_cache_restart(dm_l1_cache *c);

#endif
