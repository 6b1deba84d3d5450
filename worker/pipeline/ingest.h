/* Ingest: decode -> validate -> write one batch to one backend -> a verdict per message.
 * The bus turns verdicts into ack / nak / dead-letter + term; this layer never sees NATS.
 * One dm_ingest belongs to one consumer thread. */
#ifndef DM_INGEST_H
#define DM_INGEST_H

#include <stddef.h>

#include "backend/backend.h"
#include "pipeline/tick_share.h"
#include "util/backoff.h"
#include "util/err.h"

typedef enum { DM_KIND_TICK, DM_KIND_CANDLE, DM_KIND_CANDLES, DM_KIND_EVENT, DM_KIND_COUNT } dm_kind;

const char *dm_kind_name(dm_kind kind);     /* tick candle candles event */
const char *const *dm_kind_names(void);      /* all DM_KIND_COUNT of them, in order */
const char *dm_kind_filter(dm_kind kind);   /* market.tick.> ... */
dm_op dm_kind_op(dm_kind kind);             /* save_tick ... */
/* Does this backend implement the write this kind needs? */
bool dm_kind_supported(dm_kind kind, const dm_backend *b);

#define DM_INGEST_MAX_BYTES (8u << 20) /* the stack's max_payload */

typedef enum {
    DM_V_ACK,   /* committed (or nothing to commit) */
    DM_V_RETRY, /* backend unavailable: redeliver later */
    DM_V_DEAD,  /* can never be stored: dead-letter with err, then terminate */
} dm_verdict;

/* A rejected item inside an otherwise good bulk message. */
typedef struct {
    int index;
    dm_err err;
    char *payload; /* the item as JSON, owned by the ingest until the next batch */
} dm_reject;

typedef struct {
    /* in */
    const char *subject;
    const char *data;
    size_t len;
    const char *content_type; /* NULL: asked of header (when set) if needed, else detected */
    const char *(*header)(const void *src, const char *name);
    const void *src;     /* header's argument: the message the payload came in */
    uint64_t seq;        /* its MARKET stream sequence (0: unknown), for coherence */
    uint64_t stored_ns;  /* when the stream stored it (0: unknown): with seq, its identity */
    /* out */
    dm_verdict verdict;
    dm_err err;
    bool refused_by_backend; /* DEAD because this backend refused it, not invalid input */
    dm_reject *rejects;
    size_t n_rejects;
    /* private */
    size_t row_start, row_count;
} dm_ingest_msg;

typedef struct dm_ingest dm_ingest;

dm_ingest *dm_ingest_create(dm_kind kind, dm_backend *backend);
/* Tick ingests of one worker share what they decode (pipeline/tick_share.h); share (may be
 * NULL) outlives the ingest. */
void dm_ingest_share_ticks(dm_ingest *ing, dm_tick_share *share);
void dm_ingest_destroy(dm_ingest *ing);
/* Transient write failures are retried in place up to `attempts` times in all (1: no
 * retry), waiting by `backoff` between them, while the waits add up to at most budget_ms
 * (the caller keeps it below the consumer's AckWait, so a batch is settled before it is
 * delivered again) and *stop (may be NULL) stays false; then the batch is left to
 * redelivery. */
void dm_ingest_set_retry(dm_ingest *ing, int attempts, const dm_backoff *backoff, int64_t budget_ms,
                         const atomic_bool *stop);
/* Fills every message's verdict. When the backend fails transiently every message with
 * rows is DM_V_RETRY; when it refuses data, messages are retried one by one so only the
 * offending ones are dead-lettered. */
void dm_ingest_batch(dm_ingest *ing, dm_ingest_msg *msgs, size_t n, const dm_cache_opts *opts);
dm_kind dm_ingest_kind(const dm_ingest *ing);
/* The decoded rows of the last batch (dm_tick, dm_candle or dm_event by kind); a
 * message's rows are [row_start, row_start + row_count). Valid until the next batch. */
const void *dm_ingest_rows(const dm_ingest *ing);

#endif
