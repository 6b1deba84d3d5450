/* JetStream async publisher: bounded in-flight acks, PubAck accounting
 * (duplicates counted apart), retries of un-acked messages, progress and
 * the summary line. One publisher per command run. */
#ifndef DMCTL_PUBLISH_H
#define DMCTL_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#define PUB_MAX_RETRIES 3

typedef struct publisher publisher;

typedef struct pub_config {
    const char *unit;     /* "candles", "ticks", "events" */
    size_t total_records; /* for progress only */
    int64_t max_pending;  /* outstanding acks (jsOptions.PublishAsync.MaxPending) */
    int64_t ack_wait_ms;  /* give up on PubAcks after this long without any */
    bool bulk_ids;        /* msg ids end in ":<count>" (bulk candles) */
    bool quiet;
} pub_config;

/* NULL on failure (message printed). */
publisher *pub_create(natsConnection *nc, const pub_config *cfg);

/* Queues one message carrying `records` records. Returns false on a fatal
 * error (no stream, connection lost): stop producing and call pub_finish. */
bool pub_send(publisher *p, const char *subject, const char *msg_id, const char *content_type,
              const void *data, size_t len, size_t records);

/* Marks the run as failed by the caller (bad payload...): pub_finish still
 * settles what was sent but returns failure. */
void pub_abort(publisher *p);

/* Waits for acks, retries failures, prints the summary (unless nothing was
 * sent before a fatal error); returns an exit code. */
int pub_finish(publisher *p, size_t skipped_rows);

void pub_destroy(publisher *p);

#endif
