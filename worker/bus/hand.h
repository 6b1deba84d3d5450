/* The messages an ordered consumer holds: delivered to this worker and not yet settled,
 * kept in stream order whatever order they arrived in (a redelivery comes after newer
 * messages), one entry per stream sequence (a second delivery of a message in hand is
 * dropped: the ack of either settles both). Owned by the consumer's thread. */
#ifndef DM_HAND_H
#define DM_HAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

typedef struct {
    natsMsg **msg;
    uint64_t *seq; /* msg[i]'s stream sequence, rising */
    size_t n, cap;
} dm_hand;

bool dm_hand_has(const dm_hand *h, uint64_t seq);
/* Takes m (destroys it when its sequence is in hand already). False when out of memory:
 * m is left to the caller. */
bool dm_hand_add(dm_hand *h, natsMsg *m, uint64_t seq);
/* The first k were handed to a write: those with keep[i] false are settled and go (their
 * messages destroyed), the others stay in front, in order. */
void dm_hand_settle(dm_hand *h, size_t k, const bool *keep);
/* Destroys every message (after they were handed back or acked). */
void dm_hand_clear(dm_hand *h);
void dm_hand_free(dm_hand *h);

#endif
