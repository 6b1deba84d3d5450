/* The closes the in-worker analysis engines search (pattern windows, return correlations),
 * per timeframe: loaded on first use from PostgreSQL, the complete store, and kept current
 * from the commits every worker hears (dm.cache.v1.update), within a bound on memory.
 *
 * Why it stays right:
 * - A timeframe is loaded only once PostgreSQL has caught up on candles (cache/fresh.h);
 *   commits heard while it loads are applied after the load, so none falls between.
 * - Revisions of one candle are applied in stream order (a late notice from a lagging
 *   backend cannot turn a close back).
 * - A commit notice carries at most the newest DM_COHERENCE_PER_KEY candles of a key; when
 *   PostgreSQL committed more (a bulk backfill), the series is marked stale and read again
 *   from PostgreSQL, which has them, before it is searched.
 * - A worker that may have missed notices forgets everything (dm_series_forget).
 *
 * Threads: each timeframe has a rwlock. Responders search under the read lock; the update
 * subscription's thread and loads write under the write lock; one loader per timeframe. */
#ifndef DM_SERIES_H
#define DM_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis/patterns.h"
#include "backend/backend.h"

typedef struct dm_series_store dm_series_store;

/* max_closes: across every timeframe loaded; a load or a notice beyond it fails clearly. */
dm_series_store *dm_series_create(size_t max_closes);
void dm_series_destroy(dm_series_store *s);

/* Reads closes for a load: PostgreSQL's `closes` (NULL symbol: the whole timeframe). */
typedef dm_bstatus (*dm_series_reader)(void *ctx, dm_tf tf, const char *symbol,
                                       dm_close_sink sink, void *sink_ctx, dm_err *err);

/* A timeframe's series, sorted by symbol, readable until dm_series_release. */
typedef struct {
    dm_pseries *const *series;
    size_t n;
} dm_series_view;

/* Loads tf (or reloads its stale series) if needed, then holds it for reading. */
dm_bstatus dm_series_acquire(dm_series_store *s, dm_tf tf, dm_series_reader read, void *ctx,
                             dm_series_view *view, dm_err *err);
void dm_series_release(dm_series_store *s, dm_tf tf);
/* The series of `symbol` in an acquired view; NULL when it has none. */
dm_pseries *dm_series_find(const dm_series_view *v, const char *symbol);

/* Durable candles being written to an index of windows: applies them (loading tf first when
 * needed; seqs may be NULL) and calls sink per series touched with the closes around them
 * (analysis_ops.h, dm_window_sink), outside the lock. */
dm_bstatus dm_series_write_around(dm_series_store *s, dm_series_reader read, void *ctx, const dm_candle *c,
                                  const uint64_t *seqs, size_t n, size_t w, dm_window_sink sink,
                                  void *sink_ctx, dm_err *err);

/* Committed candles heard on dm.cache.v1.update, with their stream sequences. */
void dm_series_note(dm_series_store *s, const dm_candle *c, const uint64_t *seqs, size_t n);
/* PostgreSQL committed candles of (symbol, tf) up to seq that no notice carried. */
void dm_series_stale(dm_series_store *s, const char *symbol, dm_tf tf, uint64_t seq);
/* Notices may have been missed: drop everything; the next search loads again. */
void dm_series_forget(dm_series_store *s);
/* The newest stream sequence of a committed candle of tf this worker has heard of since it
 * started (or forgot): 0 when none. A derived answer computed when this was S is current
 * for a reader whose own figure is at most S. */
uint64_t dm_series_heard(dm_series_store *s, dm_tf tf);
/* Closes held, for health and metrics. */
size_t dm_series_closes(dm_series_store *s);

#endif
