/* One interface for every database. The contract, stated once:
 *
 * - Every call returns DM_BS_OK, DM_BS_MISS (this source has no answer: try the next),
 *   DM_BS_TRANSIENT (connection lost, timeout, overload: retry later or elsewhere) or
 *   DM_BS_PERMANENT (the database refused this data; retrying will not help).
 * - One error channel: the dm_bstatus is the verdict, and callers act on it alone. A
 *   backend that returns TRANSIENT or PERMANENT fills the dm_err through dm_bfail, whose
 *   code is derived from the status by dm_bstatus_code and nothing else:
 *     TRANSIENT -> DM_E_UNAVAILABLE (retry later: nak, next source, 503)
 *     PERMANENT -> DM_E_INVALID_FIELD (the data or the request was refused: dead-letter)
 *     MISS      -> DM_E_NOT_FOUND (when a backend says why it has no answer at all)
 *   so the code in an error can never contradict the status beside it, and a caller never
 *   rewrites it. The message says what happened (out of memory, SQLSTATE text, a
 *   ClickHouse code) and the field names the value refused, when one was; err.file and
 *   err.line name the line of the backend that failed, for logs ("[backend/timescale.c:141]").
 * - A NULL operation means the backend does not offer it; the router skips it. Called
 *   anyway through a wrapper below, it is PERMANENT.
 * - Writes are idempotent upserts on the natural key and atomic per call: when a write
 *   returns anything but OK, none of it may be assumed committed.
 * - A backend instance is used by one thread at a time (per-thread connections); it
 *   reconnects by itself on the next call after a failure.
 * - Backends know nothing of NATS, of each other or of the strategy file: what they need
 *   from the strategy (TTLs, cache depth) comes in dm_cache_opts.
 *
 * Call sites use the dm_backend_* wrappers at the end of this file, never b->ops. */
#ifndef DM_BACKEND_H
#define DM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "analysis_ops.h"
#include "strategy/strategy.h"
#include "util/err.h"

typedef enum { DM_BS_OK, DM_BS_MISS, DM_BS_TRANSIENT, DM_BS_PERMANENT } dm_bstatus;

/* The code every error of status st carries (see the contract above). */
dm_code dm_bstatus_code(dm_bstatus st);
/* Fills err with the code of st, the field, the message and the caller's file and line;
 * returns st, so a backend can `return dm_bfail(err, DM_BS_TRANSIENT, "", ...)`. */
dm_bstatus dm_bfail_at(const char *file, int line, dm_err *err, dm_bstatus st, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define dm_bfail(err, st, field, ...) dm_bfail_at(__FILE__, __LINE__, err, st, field, __VA_ARGS__)
/* For a backend that judges a failure it already reported anew (a ping or a connect
 * takes every failure for the server being down): err keeps its message and origin and
 * takes the code of st. Returns st. */
dm_bstatus dm_brejudge(dm_err *err, dm_bstatus st);

/* What an index of windows (Weaviate) asks of the worker when candles are written: the
 * worker adds them to its copy of their series (revisions ordered by stream sequence) and
 * hands back, per series touched, its closes from W-1 candles before the first written
 * position to W-1 after the last, with those positions (first, last) in that range: every
 * window that holds a written candle lies inside. */
typedef dm_bstatus (*dm_window_sink)(void *ctx, const char *symbol, dm_tf tf, const int64_t *ts,
                                     const double *close, size_t n, size_t first, size_t last,
                                     dm_err *err);
typedef struct {
    dm_bstatus (*around)(void *self, const dm_candle *c, const uint64_t *seqs, size_t n, size_t w,
                         dm_window_sink sink, void *sink_ctx, dm_err *err);
    void *self;
} dm_window_source;

typedef struct { dm_candle *v; size_t n, cap; } dm_candle_vec;
typedef struct { dm_event *v; size_t n, cap; } dm_event_vec;

dm_candle *dm_candle_vec_push(dm_candle_vec *vec);
dm_event *dm_event_vec_push(dm_event_vec *vec);
void dm_candle_vec_free(dm_candle_vec *vec);
void dm_event_vec_free(dm_event_vec *vec);

typedef struct {
    int ttl_s; /* expiry of cached latest values */
    int depth; /* newest candles kept per (symbol, timeframe) */
    uint64_t seq; /* a fill: the stream sequence the answering source had committed (L1) */
    const uint64_t *seqs; /* a write: per row, its message's MARKET sequence; NULL: unknown */
} dm_cache_opts;

/* Candles of one (symbol, timeframe) with start <= ts < end, oldest first, at most limit. */
typedef struct {
    const char *symbol;
    dm_tf tf;
    int64_t start, end;
    size_t limit;
} dm_range_query;

/* Events with start <= ts < end, ordered by (ts, event_id), after the cursor key. */
typedef struct {
    int64_t start, end;
    const char *country;  /* NULL: any */
    const char *currency; /* NULL: any */
    int impact;           /* -1: any, else dm_impact */
    int64_t after_ts;     /* cursor: (ts, event_id) > (after_ts, after_id) */
    const char *after_id; /* NULL: no cursor */
    size_t limit;
} dm_event_query;

typedef enum { DM_PERIOD_1D, DM_PERIOD_1W, DM_PERIOD_1MO } dm_period;

/* Aggregates of one (symbol, timeframe) per UTC period (weeks are ISO weeks from Monday,
 * months are calendar months) over candles with start <= ts < end. */
typedef struct {
    const char *symbol;
    dm_tf tf;
    dm_period period;
    int64_t start, end;
} dm_agg_query;

/* One period: open of its first candle, close of its last, mean of closes, sample
 * standard deviation (n-1) of the simple returns close[i]/close[i-1]-1 between
 * consecutive candles inside the period (has_stddev false with fewer than two returns),
 * range = high - low, volume summed (candles without volume count as 0). */
typedef struct {
    int64_t period_start;
    double open, high, low, close, mean, stddev_returns, range, volume;
    bool has_stddev;
    int64_t count;
} dm_agg_row;

typedef struct { dm_agg_row *v; size_t n, cap; } dm_agg_vec;
dm_agg_row *dm_agg_vec_push(dm_agg_vec *vec);
void dm_agg_vec_free(dm_agg_vec *vec);
const char *dm_period_name(dm_period p);
bool dm_period_parse(const char *s, dm_period *out);

typedef struct dm_backend dm_backend;

typedef struct {
    dm_bstatus (*write_ticks)(dm_backend *b, const dm_tick *t, size_t n, const dm_cache_opts *o,
                              dm_err *err);
    dm_bstatus (*write_candles)(dm_backend *b, const dm_candle *c, size_t n,
                                const dm_cache_opts *o, dm_err *err);
    dm_bstatus (*write_events)(dm_backend *b, const dm_event *e, size_t n, dm_err *err);
    dm_bstatus (*latest_tick)(dm_backend *b, const char *symbol, dm_tick *out, dm_err *err);
    /* Newest `limit` candles, returned oldest first. MISS when fewer than limit are known
     * here and the source cannot tell whether more exist (a cache). */
    dm_bstatus (*latest_candles)(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                 dm_candle_vec *out, dm_err *err);
    dm_bstatus (*candle_range)(dm_backend *b, const dm_range_query *q, dm_candle_vec *out,
                               dm_err *err);
    dm_bstatus (*events)(dm_backend *b, const dm_event_query *q, dm_event_vec *out, dm_err *err);
    /* Periods oldest first; computed over deduplicated rows, so redelivery never counts a
     * candle twice. OK with no rows for an empty range. */
    dm_bstatus (*aggregates)(dm_backend *b, const dm_agg_query *q, dm_agg_vec *out, dm_err *err);
    /* A cache of derived results (aggregates): opaque bytes under a key, with a TTL.
     * blob_get gives a malloc'd copy (caller frees); MISS when absent. */
    dm_bstatus (*blob_get)(dm_backend *b, const char *key, void **out, size_t *len, dm_err *err);
    dm_bstatus (*blob_put)(dm_backend *b, const char *key, const void *data, size_t len, int ttl_s,
                           dm_err *err);
    /* Every close of timeframe tf (of one symbol, or all when NULL), by symbol then open
     * time, handed to sink (what the in-worker analysis engines load). */
    dm_bstatus (*closes)(dm_backend *b, dm_tf tf, const char *symbol, dm_close_sink sink, void *ctx,
                         dm_err *err);
    /* The analysis operations (analysis_ops.h). MISS: this source cannot answer this
     * question (a query length or window it does not hold; from the in-worker engines: a
     * symbol with no candles in the timeframe). */
    dm_bstatus (*patterns)(dm_backend *b, const dm_pattern_request *q, dm_pattern_vec *out,
                           dm_err *err);
    dm_bstatus (*correlations)(dm_backend *b, const dm_corr_request *q, dm_corr_vec *out,
                               dm_err *err);
    dm_bstatus (*graph)(dm_backend *b, const dm_corr_request *q, dm_graph_answer *out,
                        dm_err *err);
    /* The scheduled refresh: stores a window's matrix (replacing the timeframe's previous
     * one), and tells which interval was stored last (MISS: none). */
    dm_bstatus (*put_correlations)(dm_backend *b, const dm_corr_snapshot *s, dm_err *err);
    dm_bstatus (*correlations_run)(dm_backend *b, dm_tf tf, int64_t *run, dm_err *err);
    /* How far a resumable job got, under a key of its own (MISS: never started). */
    dm_bstatus (*get_progress)(dm_backend *b, const char *key, int64_t *value, dm_err *err);
    dm_bstatus (*set_progress)(dm_backend *b, const char *key, int64_t value, dm_err *err);
    dm_bstatus (*ping)(dm_backend *b, dm_err *err);
    void (*destroy)(dm_backend *b);
} dm_backend_ops;

struct dm_backend {
    const dm_backend_ops *ops;
    dm_backend_id id;
};

static inline const char *dm_backend_label(const dm_backend *b) { return dm_backend_name(b->id); }

/* Whether backend b offers operation `op` (a member of dm_backend_ops). */
#define dm_backend_offers(b, op) ((b)->ops->op != NULL)

/* ---- the operations ------------------------------------------------------------------
 * Each returns what the contract above promises: OK, MISS (reads only), TRANSIENT or
 * PERMANENT, with err filled by dm_bfail on the last two. Outputs are appended to `out`
 * only on OK; an operation b does not offer is PERMANENT. */

dm_bstatus dm_backend_not_offered(const dm_backend *b, const char *op, dm_err *err);

/* Upserts n rows; nothing may be assumed committed unless OK. */
static inline dm_bstatus dm_backend_write_ticks(dm_backend *b, const dm_tick *t, size_t n,
                                                const dm_cache_opts *o, dm_err *err)
{
    return b->ops->write_ticks ? b->ops->write_ticks(b, t, n, o, err)
                               : dm_backend_not_offered(b, "write_ticks", err);
}

static inline dm_bstatus dm_backend_write_candles(dm_backend *b, const dm_candle *c, size_t n,
                                                  const dm_cache_opts *o, dm_err *err)
{
    return b->ops->write_candles ? b->ops->write_candles(b, c, n, o, err)
                                 : dm_backend_not_offered(b, "write_candles", err);
}

static inline dm_bstatus dm_backend_write_events(dm_backend *b, const dm_event *e, size_t n,
                                                 dm_err *err)
{
    return b->ops->write_events ? b->ops->write_events(b, e, n, err)
                                : dm_backend_not_offered(b, "write_events", err);
}

/* MISS: no tick of that symbol here. */
static inline dm_bstatus dm_backend_latest_tick(dm_backend *b, const char *symbol, dm_tick *out,
                                                dm_err *err)
{
    return b->ops->latest_tick ? b->ops->latest_tick(b, symbol, out, err)
                               : dm_backend_not_offered(b, "latest_tick", err);
}

static inline dm_bstatus dm_backend_latest_candles(dm_backend *b, const char *symbol, dm_tf tf,
                                                   size_t limit, dm_candle_vec *out, dm_err *err)
{
    return b->ops->latest_candles ? b->ops->latest_candles(b, symbol, tf, limit, out, err)
                                  : dm_backend_not_offered(b, "latest_candles", err);
}

static inline dm_bstatus dm_backend_candle_range(dm_backend *b, const dm_range_query *q,
                                                 dm_candle_vec *out, dm_err *err)
{
    return b->ops->candle_range ? b->ops->candle_range(b, q, out, err)
                                : dm_backend_not_offered(b, "candle_range", err);
}

static inline dm_bstatus dm_backend_events(dm_backend *b, const dm_event_query *q,
                                           dm_event_vec *out, dm_err *err)
{
    return b->ops->events ? b->ops->events(b, q, out, err)
                          : dm_backend_not_offered(b, "events", err);
}

static inline dm_bstatus dm_backend_aggregates(dm_backend *b, const dm_agg_query *q,
                                               dm_agg_vec *out, dm_err *err)
{
    return b->ops->aggregates ? b->ops->aggregates(b, q, out, err)
                              : dm_backend_not_offered(b, "aggregates", err);
}

/* OK with a malloc'd copy the caller frees; MISS when the key is absent or expired. */
static inline dm_bstatus dm_backend_blob_get(dm_backend *b, const char *key, void **out,
                                             size_t *len, dm_err *err)
{
    return b->ops->blob_get ? b->ops->blob_get(b, key, out, len, err)
                            : dm_backend_not_offered(b, "blob_get", err);
}

static inline dm_bstatus dm_backend_blob_put(dm_backend *b, const char *key, const void *data,
                                             size_t len, int ttl_s, dm_err *err)
{
    return b->ops->blob_put ? b->ops->blob_put(b, key, data, len, ttl_s, err)
                            : dm_backend_not_offered(b, "blob_put", err);
}

/* OK when the server answers and the account works; anything else means "down". */
static inline dm_bstatus dm_backend_ping(dm_backend *b, dm_err *err)
{
    return b->ops->ping ? b->ops->ping(b, err) : dm_backend_not_offered(b, "ping", err);
}

/* curl_global_init, once per process, for the HTTP adapters (thread-safe). */
void dm_backend_curl_init(void);

static inline void dm_backend_destroy(dm_backend *b)
{
    if (b)
        b->ops->destroy(b);
}

#endif
