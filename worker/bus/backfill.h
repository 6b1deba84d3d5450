/* The Weaviate backfill: an index of windows added to a running system is filled with the
 * windows of the candles already stored, resumably. Per indexed timeframe one worker at a
 * time (a lease in DM_LEASES, bus/lease.h) walks every series of the store oldest first
 * and hands the candles, in chunks, to the Weaviate backend's candle writer (the same code
 * as the write consumers: windows built from the series, uuid5 ids, so work done twice
 * overwrites). After each chunk the open time of its last candle is recorded in
 * PostgreSQL's dm_progress ("weaviate:<tf>:<symbol>"), so a restart continues where it
 * stopped; progress is logged. Candles that arrive meanwhile are indexed by the write
 * consumers.
 *
 * Threads: one thread of its own; it owns its leases and borrows pooled connections. */
#ifndef DM_BACKFILL_H
#define DM_BACKFILL_H

#include "backend/pool.h"
#include "engine/fallback.h"
#include "strategy/current.h"
#include "bus.h"

typedef struct {
    dm_bus *bus;
    const char *holder;
    dm_strategy_holder *strategies;
    dm_fallback_config *loader; /* the series store and how it loads */
    dm_pool *timescale;         /* progress */
    dm_pool *weaviate;          /* the index */
} dm_backfill_config;

typedef struct dm_backfill dm_backfill;

/* NULL (err says why) when Weaviate or PostgreSQL is not configured. */
dm_backfill *dm_backfill_start(const dm_backfill_config *cfg, dm_err *err);
void dm_backfill_stop(dm_backfill *b);

#endif
