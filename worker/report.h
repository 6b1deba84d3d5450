/* What a worker reports about itself beyond the process counters (obs/metrics): the
 * Prometheus text of /metrics and the consumer members of dm.v1.health. Reads the
 * worker's shared state through the pointers below (atomics; breakers and pools locked a
 * moment each) and asks NATS for consumer lag; runs on the HTTP and responder threads. */
#ifndef DM_REPORT_H
#define DM_REPORT_H

#include <stdatomic.h>

#include "backend/pool.h"
#include "bus/bus.h"
#include "codec/enc.h"
#include "resilience/breaker.h"
#include "strategy/current.h"
#include "strategy/watch.h"

typedef struct {
    dm_bus **bus;                      /* NULL until connected */
    dm_strategy_holder **strategies;
    dm_strategy_watch **watch;         /* NULL: hot reload off */
    dm_breaker **breakers;             /* DM_BK_COUNT, NULL where not configured */
    dm_pool **pools;                   /* DM_BK_COUNT, NULL where not configured */
    atomic_uint *consumers_running;    /* bit kind * DM_BK_COUNT + backend */
} dm_report;

/* The consumers this worker runs, their lag and the dead letters: 3 members. */
#define DM_REPORT_HEALTH_MEMBERS 3
void dm_report_health(const dm_report *r, dm_enc *e);
/* /metrics beyond the process counters: strategy, breakers, pools, consumer lag, DLQ. */
void dm_report_prometheus(const dm_report *r, dm_buf *out);

#endif
