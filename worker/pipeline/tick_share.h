/* Decoded ticks shared by one worker's tick consumers.
 *
 * Every tick reaches each tick consumer (timescale-tick, dragonfly-tick), and parsing the
 * payload is most of what a consumer spends on a tick. When both deliveries of a tick land
 * in the same worker, the consumer that comes second takes the tick the first one decoded
 * and validated. Entries are keyed by the message's stream sequence and the time the
 * stream stored it (both in every delivery's ack subject): a stream made anew restarts its
 * sequences, never at the same nanosecond. Only ticks that passed validation are kept; the
 * only check that reads the clock (a timestamp at most a day ahead) may see the two
 * consumers' clocks a batch apart, against a bound of a day.
 *
 * A fixed ring of slots (a newer tick takes an older one's slot). Shared by the consumer
 * threads of one worker under one mutex, taken once per batch to look up and once to
 * store; created before the consumers start and destroyed after they stop. */
#ifndef DM_TICK_SHARE_H
#define DM_TICK_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct dm_tick_share dm_tick_share;

/* A worker's ring: about 4 MB. */
#define DM_TICK_SHARE_SLOTS 32768

/* slots is rounded up to a power of two; NULL when out of memory. */
dm_tick_share *dm_tick_share_create(size_t slots);
void dm_tick_share_destroy(dm_tick_share *s);

/* The key of one message; stored_ns 0 or seq 0 means unknown (never shared). */
typedef struct {
    uint64_t seq;
    uint64_t stored_ns;
} dm_tick_key;

/* For each of the n keys found, copies its tick to out[i] and sets found[i]; the others
 * get found[i] = false. Returns how many were found. */
size_t dm_tick_share_find(dm_tick_share *s, const dm_tick_key *keys, size_t n, dm_tick *out,
                          bool *found);
/* Keeps the n ticks under their keys (keys with a zero part are skipped). */
void dm_tick_share_put(dm_tick_share *s, const dm_tick_key *keys, const dm_tick *ticks, size_t n);

#endif
