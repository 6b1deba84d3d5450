/* The scheduled recomputation of the default correlation window (strategy
 * correlations.refresh_s and .timeframes): once per interval, exactly one worker computes
 * the matrix over the series store and stores it in PostgreSQL (tables correlations and
 * correlation_runs) and, when configured, in ArangoDB.
 *
 * Exclusion is a lease per timeframe in the KV bucket DM_LEASES (bus/lease.h), not an
 * election of our own; which interval is stored is PostgreSQL's correlation_runs, read
 * after taking the lease. A worker that dies mid-way loses the lease within its TTL and
 * leaves the interval to the next holder, which finds it not stored and computes it.
 * Cached correlation answers need no invalidation: they are stamped with the commits they
 * were computed over (pipeline/op_correlations.c).
 *
 * Threads: one thread of its own; it owns its leases and borrows pooled connections. */
#ifndef DM_REFRESH_H
#define DM_REFRESH_H

#include "backend/pool.h"
#include "cache/fresh.h"
#include "engine/series.h"
#include "strategy/current.h"
#include "bus.h"

typedef struct {
    dm_bus *bus;
    const char *holder; /* this worker's name */
    dm_strategy_holder *strategies;
    dm_series_store *store;
    dm_pool *timescale; /* required: where the matrix is stored and closes are read */
    dm_pool *arangodb;  /* NULL: not configured */
    dm_fresh *fresh;
} dm_refresh_config;

typedef struct dm_refresh dm_refresh;

dm_refresh *dm_refresh_start(const dm_refresh_config *cfg, dm_err *err);
void dm_refresh_stop(dm_refresh *r);

#endif
