/* The `fallback` source of the analysis routes: exact pattern search and return
 * correlations computed in the worker over the closes of the series store, as
 * subjects/README.md defines them. It answers whatever Weaviate or ArangoDB cannot (a
 * query length they do not index, another window, an outage) and is the only source on a
 * machine without them.
 *
 * One instance per responder thread (like every dm_backend); the store and the PostgreSQL
 * pool it loads from are the worker's, shared. */
#ifndef DM_FALLBACK_H
#define DM_FALLBACK_H

#include "backend/backend.h"
#include "backend/pool.h"
#include "cache/fresh.h"
#include "series.h"

typedef struct {
    dm_series_store *store;
    dm_pool *timescale; /* where loads read closes */
    dm_fresh *fresh;    /* PostgreSQL's catch-up latch on candles; NULL: taken as caught up */
} dm_fallback_config;

dm_backend *dm_fallback_create(const dm_fallback_config *cfg);

/* Reads closes from PostgreSQL through the pool, once it has caught up on candles (the
 * store's loader; ctx is a dm_fallback_config). */
dm_bstatus dm_fallback_read_closes(void *ctx, dm_tf tf, const char *symbol, dm_close_sink sink,
                                   void *sink_ctx, dm_err *err);

/* The series store as the window source of an index (backend.h, dm_window_source): written
 * candles join the store and their windows are read from it. cfg must outlive it. */
dm_window_source dm_fallback_window_source(dm_fallback_config *cfg);

#endif
