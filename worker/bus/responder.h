/* Request/reply: one queue subscription on dm.v1.> (group "dm"). Each responder has its
 * own delivery thread and its own dm_serve (and so its own database connections):
 * several responders per worker answer in parallel without sharing a lock. */
#ifndef DM_RESPONDER_H
#define DM_RESPONDER_H

#include "pipeline/serve.h"
#include "bus.h"

typedef struct dm_responder dm_responder;

/* Takes ownership of serve. Subscribes on dm_bus_reply_conn(bus): open the responders'
 * connection (dm_bus_connect_replies) first for replies that leave at once. */
dm_responder *dm_responder_start(dm_bus *bus, dm_serve *serve, dm_err *err);
/* Drains: requests already received are answered, then the subscription closes. */
void dm_responder_destroy(dm_responder *r);

#endif
