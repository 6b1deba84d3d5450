/* Connection pool of one backend in one worker, shared by its responder threads.
 *
 * A request borrows a connection for as long as it runs and gives it back; a connection
 * that met a transient failure is given back broken and replaced. The keeper (one thread
 * per worker calling dm_pool_maintain every second) keeps `min` connections open and
 * checked: an idle connection is pinged every few seconds and replaced when the ping
 * fails, so a backend that comes back is reconnected within about a second. Idle
 * connections above `min` close after a minute. At most `max` exist; a borrower waits up
 * to the pool timeout for one, then gets DM_E_UNAVAILABLE.
 *
 * Write consumers do not borrow: each holds its own connection for its whole life, so a
 * commit never waits behind reads. */
#ifndef DM_POOL_H
#define DM_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

typedef struct dm_pool dm_pool;

/* Makes a new, not yet connected backend instance (backends connect on first use). */
typedef dm_backend *(*dm_pool_factory)(void *ctx);

typedef struct {
    int open, in_use, min, max, timeout_s;
    bool up; /* the last connection check or use succeeded */
    uint64_t borrowed, waited, timeouts, replaced;
} dm_pool_stats;

/* NULL when the factory makes nothing (backend not configured) or out of memory. */
dm_pool *dm_pool_create(dm_backend_id id, dm_pool_factory make, void *ctx, const dm_pool_cfg *cfg);
void dm_pool_destroy(dm_pool *p);

/* New sizes and timeout (a strategy reload); extra connections close as they come back. */
void dm_pool_configure(dm_pool *p, const dm_pool_cfg *cfg);

/* The backend's operations, to know what it offers without borrowing. */
const dm_backend_ops *dm_pool_ops(const dm_pool *p);

/* Borrows a connection, waiting up to the pool timeout; NULL with err set on timeout. */
dm_backend *dm_pool_acquire(dm_pool *p, dm_err *err);
/* broken: the connection met a transient failure; it is closed and replaced. */
void dm_pool_release(dm_pool *p, dm_backend *b, bool broken);

/* The keeper's round at now_ms (dm_mono_ms()): ping idle connections, replace broken
 * ones, open up to min, close long-idle extras. Pings run outside the lock: borrowers
 * never wait for them. */
void dm_pool_maintain(dm_pool *p, int64_t now_ms);

void dm_pool_stats_of(dm_pool *p, dm_pool_stats *out);

#endif
