/* The dm.v1.health reply, encoded from plain figures: the layer that probes the backends
 * fills a dm_health and this writes it, so the reply's shape lives in one place and obs
 * needs nothing from the layers above it.
 *
 * Reply (one map): status, issues, worker, version, strategy_version, uptime_s, backends
 * (a map by backend name: status, latency_ms, breaker when it has one, pool when it has
 * one, error when down), then whatever the extra callback writes. */
#ifndef DM_OBS_HEALTH_H
#define DM_OBS_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/enc.h"

/* A connection pool's figures (backend/pool.h's dm_pool_stats, as plain numbers). */
typedef struct {
    int64_t open, in_use, min, max, timeout_s;
    int64_t borrowed, waited, timeouts, replaced;
} dm_health_pool;

/* One probed backend. */
typedef struct {
    const char *name;           /* "timescale" */
    bool up;                    /* the probe succeeded */
    double latency_ms;          /* how long the probe took, borrow included */
    const char *error;          /* why it is down; read only when !up */
    const char *breaker;        /* its breaker's state name; NULL: no breaker */
    const dm_health_pool *pool; /* NULL: no pool */
} dm_health_backend;

typedef struct {
    const char *worker, *version, *strategy_version;
    int64_t uptime_s;
    const dm_health_backend *backends;
    size_t n_backends;
    const char *const *issues; /* why the worker is degraded, in the order given */
    size_t n_issues;
    /* Writes n_extra more members into the reply's map; NULL: none. */
    void (*extra)(void *ctx, dm_enc *e);
    int n_extra;
    void *extra_ctx;
} dm_health;

/* "unhealthy" when backends were probed and none is up, else "degraded" when there is an
 * issue, else "healthy". */
const char *dm_health_status(const dm_health *h);

/* Writes the whole reply as one map. */
void dm_health_encode(dm_enc *e, const dm_health *h);

#endif
