/* Progress of the durable consumers, watched by the main thread:
 * - which backends have caught up with what the others had committed when this worker
 *   last started over (start, reconnect, dropped updates), so that a copy can be trusted
 *   for keys this worker has not heard about since (cache/fresh.h);
 * - which consumers are stalled: messages pending and the ack floor still for
 *   DM_STALL_MS (health says degraded, and why).
 * Owner: the main thread; health reads the issues from responder threads (a mutex
 * around a copy of the text). */
#ifndef DM_PROGRESS_H
#define DM_PROGRESS_H

#include <stddef.h>

#include "cache/fresh.h"
#include "pipeline/serve.h"
#include "strategy/strategy.h"
#include "bus.h"

#define DM_ISSUE_MAX DM_HEALTH_ISSUE_MAX
#define DM_STALL_MS 5000

typedef struct dm_progress dm_progress;

dm_progress *dm_progress_create(dm_bus *bus, dm_fresh *fresh);
void dm_progress_destroy(dm_progress *p);
/* One look (cheap when nothing is due): asks JetStream about the consumers of st's write
 * routes. */
void dm_progress_check(dm_progress *p, const dm_strategy *st);
/* Whether every source of the latest-value routes has caught up (cache/fresh.h). */
bool dm_progress_caught_up(dm_progress *p, const dm_strategy *st);
/* Copies up to max reasons for a degraded health ("timescale-candle stalled: ..."). */
size_t dm_progress_issues(dm_progress *p, char (*out)[DM_ISSUE_MAX], size_t max);

#endif
