/* One durable pull consumer (<backend>-<kind>) and the thread that drains it:
 * fetch a batch -> ingest -> ack what committed, dead-letter what never can, nak the rest.
 * The thread owns its subscription, its ingest state and its backend connection. */
#ifndef DM_CONSUMER_H
#define DM_CONSUMER_H

#include "backend/backend.h"
#include "pipeline/ingest.h"
#include "resilience/breaker.h"
#include "strategy/current.h"
#include "bus.h"

typedef struct dm_consumer dm_consumer;

/* Takes ownership of backend. Each batch runs with the strategy version current when it
 * was fetched. After a commit the consumer publishes the committed values for the other
 * workers' L1 (dm.cache.v1.update) when it is the kind's cache writer: the dragonfly
 * consumer, or timescale's when the route has no dragonfly. A tick consumer shares what it
 * decodes with the worker's other tick consumers through `ticks` (may be NULL), which
 * outlives it. */
dm_consumer *dm_consumer_start(dm_bus *bus, dm_kind kind, dm_backend *backend,
                               dm_strategy_holder *strategies, dm_breaker *breaker,
                               dm_tick_share *ticks, dm_err *err);
dm_backend_id dm_consumer_backend(const dm_consumer *c);
dm_kind dm_consumer_kind(const dm_consumer *c);
/* Asks the thread to stop after its in-flight batch. */
void dm_consumer_stop(dm_consumer *c);
/* Waits for the thread, then frees everything. */
void dm_consumer_destroy(dm_consumer *c);

#endif
