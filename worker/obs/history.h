/* The last few minutes of every operation's traffic, for the status page's charts: one
 * sample per interval holding each operation's request rate, server error rate and
 * p50/p99 latency over that interval. The latencies come from the difference of two
 * readings of the operation's histogram (obs/metrics), not from the histogram since
 * start, so a chart shows a slowdown when it happens and not diluted by hours of history.
 *
 * Threads: one thread samples (dm_history_tick; the worker's main loop); any thread may
 * encode. A mutex guards the samples; the previous reading belongs to the sampling thread. */
#ifndef DM_OBS_HISTORY_H
#define DM_OBS_HISTORY_H

#include <stdint.h>

#include "codec/enc.h"

#define DM_HISTORY_INTERVAL_MS 2000
#define DM_HISTORY_SAMPLES 150 /* five minutes at one sample per interval */

typedef struct dm_history dm_history;

/* NULL when out of memory. */
dm_history *dm_history_create(void);
void dm_history_destroy(dm_history *h);

/* Takes a sample when an interval has passed since the last (call it more often than
 * that; now_ms: dm_now_ms()). The first call only takes the reading the next compares
 * with. */
void dm_history_tick(dm_history *h, int64_t now_ms);

/* One map: interval_ms; t_ms (each sample's time, oldest first); operations: per
 * operation with a request in the samples held, arrays as long as t_ms of rate (requests
 * per second), errors (server errors per second), p50_ms and p99_ms (null for an interval
 * without a request). */
void dm_history_encode(dm_history *h, dm_enc *e);

#endif
