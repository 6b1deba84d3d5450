/* One durable pull consumer (<backend>-<kind>) and the thread that drains it:
 * fetch a batch -> ingest -> ack what committed, dead-letter what never can, nak the rest.
 * The thread owns its subscription, its ingest state and its backend connection. */
#ifndef DM_CONSUMER_H
#define DM_CONSUMER_H

#include "../backend/backend.h"
#include "../pipeline/ingest.h"
#include "bus.h"

typedef struct dm_consumer dm_consumer;

/* Takes ownership of backend. The strategy must outlive the consumer. */
dm_consumer *dm_consumer_start(dm_bus *bus, dm_kind kind, dm_backend *backend,
                               const dm_strategy *st, dm_err *err);
/* Asks the thread to stop after its in-flight batch. */
void dm_consumer_stop(dm_consumer *c);
/* Waits for the thread, then frees everything. */
void dm_consumer_destroy(dm_consumer *c);

#endif
