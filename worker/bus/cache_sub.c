#include "cache_sub.h"

#include <stdlib.h>

#include "bus/msg_done.h"
#include "pipeline/coherence.h"
#include "util/log.h"

struct dm_cache_sub {
    natsSubscription *sub;
    dm_l1_cache *l1;
    dm_series_store *series;
    dm_done done; /* only the subscription's delivery thread touches it */
};

static void on_update(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc, (void)sub;
    dm_cache_sub *s = closure;
    dm_err err = {0};
    if (dm_coherence_apply(s->l1, s->series, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &err))
        DM_WARN("cache", "cache update ignored: %s", err.message);
    dm_done_add(&s->done, msg); /* one update per batch written: a wakeup saved for each */
}

dm_cache_sub *dm_cache_sub_start(dm_bus *bus, dm_l1_cache *l1, dm_series_store *series, dm_err *err)
{
    dm_cache_sub *s = calloc(1, sizeof *s);
    if (s == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    s->l1 = l1;
    s->series = series;
    natsStatus st = natsConnection_Subscribe(&s->sub, bus->nc, DM_SUBJ_CACHE_UPDATE, on_update, s);
    /* A dropped update is a stale L1: room for bursts (the bus restarts L1 on a drop). */
    if (st == NATS_OK)
        st = natsSubscription_SetPendingLimits(s->sub, 1000000, 512 * 1024 * 1024);
    if (st != NATS_OK) {
        natsSubscription_Destroy(s->sub);
        dm_fail(err, DM_E_UNAVAILABLE, "", "subscribe %s: %s", DM_SUBJ_CACHE_UPDATE,
                natsStatus_GetText(st));
        free(s);
        return NULL;
    }
    return s;
}

void dm_cache_sub_stop(dm_cache_sub *s)
{
    if (s == NULL)
        return;
    if (natsSubscription_Drain(s->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(s->sub, 5000);
    natsSubscription_Destroy(s->sub);
    dm_done_release(&s->done);
    free(s);
}
