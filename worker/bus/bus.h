/* NATS: the connection, the MARKET stream (the write-ahead log) and the DLQ stream.
 * The only layer that includes nats.h. */
#ifndef DM_BUS_H
#define DM_BUS_H

#include <cjson/cJSON.h>
#include <nats/nats.h>

#include "model/names.h"
#include "util/err.h"

#define DM_QUEUE_GROUP "dm"

/* What the connection went through: DOWN (disconnected), UP (reconnected), LOST (a
 * subscription dropped messages: slow consumer). After DOWN or LOST this worker may have
 * missed cache updates. Called on a NATS library thread. */
typedef enum { DM_LINK_DOWN, DM_LINK_UP, DM_LINK_LOST } dm_link_event;
typedef void (*dm_link_fn)(dm_link_event ev, void *ctx);

typedef struct {
    natsConnection *nc;
    /* The responders' own connection (dm_bus_connect_replies), or NULL: the responders
     * then share nc. It writes every publish at once instead of leaving it to nats.c's
     * flusher, which waits for more data to coalesce (about a millisecond on an idle
     * link): right for replies, one at a time per request, and wrong for the consumers'
     * acks, which nc keeps batching. */
    natsConnection *replies;
    char name[64]; /* this worker's (--name): replies carry it in a Dm-Worker header */
    jsCtx *js;
    /* For the leases only: a short wait (DM_LEASE_WAIT_MS), so a lease request that meets a
     * JetStream election holds a consumer thread for a second, not for js's ten. */
    jsCtx *lease_js;
    int replicas;
    /* DM_LEASES (bus/lease.h), bound to lease_js; NULL when the server offers no KV */
    kvStore *leases;
    dm_link_fn on_link;
    void *link_ctx;
} dm_bus;

/* cfg: deploy/config/nats.json ({"url", "stream": {...}}); may be NULL for defaults.
 * on_link (may be NULL) hears disconnects, reconnects and dropped messages. */
dm_code dm_bus_connect(dm_bus *bus, const cJSON *cfg, const char *name, dm_link_fn on_link,
                       void *link_ctx, dm_err *err);
/* Opens bus->replies with the settings of dm_bus_connect (the same URL, CA and
 * reconnection), named "<name>-replies". Its disconnects are logged only: the cache
 * updates that on_link is about arrive on nc. */
dm_code dm_bus_connect_replies(dm_bus *bus, const cJSON *cfg, const char *name, dm_err *err);
/* The connection the responders subscribe and reply on: replies when open, else nc. */
static inline natsConnection *dm_bus_reply_conn(const dm_bus *bus)
{
    return bus->replies ? bus->replies : bus->nc;
}
/* Creates or updates MARKET and DLQ so every worker agrees on their settings, and binds
 * the consumers' lease bucket. */
dm_code dm_bus_ensure_streams(dm_bus *bus, const cJSON *cfg, dm_err *err);
void dm_bus_close(dm_bus *bus);

/* How far a durable consumer of MARKET is behind: for health. One request to the server
 * each; false when NATS does not answer. */
typedef struct {
    uint64_t pending;     /* in the stream, not yet delivered */
    uint64_t ack_pending; /* delivered, not yet acked */
    uint64_t redelivered;
    uint64_t ack_floor;   /* stream sequence below which every message is acked */
} dm_consumer_lag;
bool dm_bus_consumer_lag(dm_bus *bus, const char *durable, dm_consumer_lag *out);
/* Creates the lease bucket (bus/lease.h) when it is missing; binds bus->leases once. */
dm_code dm_bus_ensure_leases(dm_bus *bus, dm_err *err);
/* One quick look (no retries, lease_js's wait): creates the lease bucket again only when
 * JetStream says its stream does not exist. True when it did. For a bucket deleted while
 * workers run; during an election the bucket may merely look absent, and then nothing is
 * done. */
bool dm_bus_recreate_leases_if_gone(dm_bus *bus);
/* Messages held in the DLQ stream; -1 when NATS does not answer. */
int64_t dm_bus_dead_letters(dm_bus *bus);

#endif
