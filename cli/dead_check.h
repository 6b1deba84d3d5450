/* After a publish: did the workers dead-letter any of it? The publisher notes where the DLQ
 * stood before it started and the stream sequences its PubAcks gave; once every MARKET
 * consumer has settled them (acked, or handed to the DLQ), the DLQ entries made since
 * that name one of those sequences are counted. Needs the rights to read consumer and
 * stream state (the operator's): without them it says it could not tell. */
#ifndef DMCTL_DEAD_CHECK_H
#define DMCTL_DEAD_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

/* Where the DLQ stands before a publish, asked without waiting: a role that may not read
 * stream state gets no answer, and the publish must not wait for one. dead_check_mark_take
 * reads the answer if it came (false otherwise: the check is skipped); both free the mark. */
typedef struct dead_check_mark dead_check_mark;
dead_check_mark *dead_check_mark_ask(natsConnection *nc);
bool dead_check_mark_take(dead_check_mark *m, uint64_t *dlq_last);
void dead_check_mark_free(dead_check_mark *m);

/* Waits up to wait_ms for the consumers to settle market sequences [first, last], then
 * counts the dead letters among them made after dlq_from; the first one's reason goes to
 * `first_reason`. -1 when it cannot tell, with why in `first_reason`. */
long dead_check_count(jsCtx *js, uint64_t dlq_from, uint64_t first, uint64_t last, int64_t wait_ms,
                      char *first_reason, size_t cap);

#endif
