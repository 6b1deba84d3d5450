/* Cache coherence between workers: after a batch is committed to any backend that a read
 * route answers from, the committing worker publishes the newest committed values on a
 * core NATS subject that every worker hears (no queue group); each worker merges them into
 * its L1 and notes which backend holds which sequence (cache/fresh.h). So freshness hangs
 * on no single backend: with Dragonfly down, PostgreSQL's commits still reach every L1.
 * Payload (msgpack): {"backend": "timescale", "ticks": [TickData...], "seqs": [n...]} or
 * the same with "candles"; seqs[i] is row i's MARKET stream sequence. At most
 * DM_COHERENCE_PER_KEY newest values per key, oldest first; a candles update whose batch
 * held more for a key lists it in "partial": [[symbol, timeframe, newest seq], ...]. Only workers may publish it
 * (NATS permissions); a payload that does not decode to valid rows is dropped. */
#ifndef DM_COHERENCE_H
#define DM_COHERENCE_H

#include <stdbool.h>

#include "cache/l1_backend.h"
#include "codec/enc.h"
#include "engine/series.h"
#include "ingest.h"

#define DM_SUBJ_CACHE_UPDATE "dm.cache.v1.update"
#define DM_COHERENCE_PER_KEY 64

/* Encodes the rows of the batch's acked messages as committed by `from`; false when there
 * is nothing to say. */
bool dm_coherence_encode(const dm_ingest *ing, dm_backend_id from, const dm_ingest_msg *msgs,
                         size_t n, dm_buf *out);
/* Applies a received update to this worker's L1 and its series store (may be NULL). */
dm_code dm_coherence_apply(dm_l1_cache *c, dm_series_store *series, const char *data, size_t len,
                           dm_err *err);

#endif
