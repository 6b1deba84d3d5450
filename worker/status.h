/* /status.json, the document the status page polls: the dm.v1.health and dm.v1.metrics
 * replies exactly as a NATS client gets them (answered by a dm_serve of its own, set up
 * as a responder's), and the last minutes of traffic per operation (obs/history). The
 * page therefore shows nothing the contract does not, in the same shape
 * (subjects/README.md).
 *
 * Threads: the HTTP server's connection threads call dm_status_json, possibly at once; a
 * dm_serve belongs to one thread at a time, so a mutex lets one document be made at a time
 * (a health probe takes milliseconds; a page polls every 2 s). */
#ifndef DM_STATUS_H
#define DM_STATUS_H

#include "codec/enc.h"
#include "obs/history.h"
#include "pipeline/serve.h"

typedef struct dm_status dm_status;

/* Takes serve (destroyed with the status); history stays the caller's and must outlive
 * it. NULL when out of memory (serve is destroyed then too). */
dm_status *dm_status_create(dm_serve *serve, dm_history *history);
void dm_status_destroy(dm_status *s);

/* Appends {"now_ms", "health", "metrics", "history"} as JSON. */
void dm_status_json(dm_status *s, dm_buf *out);

#endif
