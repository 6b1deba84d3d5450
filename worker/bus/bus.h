/* NATS: the connection, the MARKET stream (the write-ahead log) and the DLQ stream.
 * The only layer that includes nats.h. */
#ifndef DM_BUS_H
#define DM_BUS_H

#include <cjson/cJSON.h>
#include <nats/nats.h>

#include "../util/err.h"

#define DM_STREAM_MARKET "MARKET"
#define DM_STREAM_DLQ "DLQ"
#define DM_SUBJ_DLQ_ALL "dm.dlq.>"
#define DM_QUEUE_GROUP "dm"

typedef struct {
    natsConnection *nc;
    jsCtx *js;
    int replicas;
} dm_bus;

/* cfg: deploy/config/nats.json ({"url", "stream": {...}}); may be NULL for defaults. */
dm_code dm_bus_connect(dm_bus *bus, const cJSON *cfg, const char *name, dm_err *err);
/* Creates or updates MARKET and DLQ so every worker agrees on their settings. */
dm_code dm_bus_ensure_streams(dm_bus *bus, const cJSON *cfg, dm_err *err);
void dm_bus_close(dm_bus *bus);

/* How far a durable consumer of MARKET is behind: for health. One request to the server
 * each; false when NATS does not answer. */
typedef struct {
    uint64_t pending;     /* in the stream, not yet delivered */
    uint64_t ack_pending; /* delivered, not yet acked */
    uint64_t redelivered;
} dm_consumer_lag;
bool dm_bus_consumer_lag(dm_bus *bus, const char *durable, dm_consumer_lag *out);
/* Messages held in the DLQ stream; -1 when NATS does not answer. */
int64_t dm_bus_dead_letters(dm_bus *bus);

#endif
