/* A lease on one durable consumer, held by at most one worker at a time.
 *
 * A latest-N read must never see a hole, so the candles of a key must reach a database in
 * stream order. Two workers draining one durable consumer commit neighbouring batches at
 * once, and for a moment the later batch is stored without the earlier one. So the candle
 * consumers fetch only while their worker holds the consumer's lease: one writer per
 * (backend, kind) at a time, across all workers; ticks, whose latest value is simply the
 * newest, keep every worker writing.
 *
 * The lease is an entry <durable> = <holder> in the KV bucket DM_LEASES; entries expire
 * DM_LEASE_TTL_MS after their last write. The holder renews it before each fetch (at most
 * every DM_LEASE_RENEW_MS) and while it waits. A worker that dies loses it when it
 * expires. The next holder writes nothing before every message the consumer has
 * outstanding is in its hand, sorted by stream sequence (bus/hand.h, consumer.c's gather):
 * the dead worker's come back after their AckWait. A write that outlasts the lease may
 * overlap with the next holder's first batch; the holder finds the lease gone at its next
 * fetch and stops, handing back what it holds. A
 * stopping worker releases it (an empty value), so another takes over at once. One
 * dm_lease belongs to one consumer thread. */
#ifndef DM_LEASE_H
#define DM_LEASE_H

#include <stdbool.h>

#include "bus.h"

#define DM_LEASE_BUCKET "DM_LEASES"
#define DM_LEASE_TTL_MS 4000
#define DM_LEASE_RENEW_MS 500
/* The longest a lease request waits for JetStream's answer: well inside the TTL, so a
 * renewal that meets an election fails in time to be tried again before the lease lapses. */
#define DM_LEASE_WAIT_MS 1000

typedef struct dm_lease dm_lease;

dm_lease *dm_lease_create(dm_bus *bus, const char *durable, const char *holder);
/* Takes the lease when it is free, renews it when held and due; true while held.
 * *taken (may be NULL) says whether it was taken just now. */
bool dm_lease_hold(dm_lease *l, bool *taken);
/* Gives it up (when held), so another worker may take it at once. */
void dm_lease_release(dm_lease *l);
/* False on a server without the lease bucket: every worker writes, in no common order. */
bool dm_lease_exclusive(const dm_lease *l);
void dm_lease_destroy(dm_lease *l);

#endif
