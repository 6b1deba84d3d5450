/* The Weaviate adapter as a dm_backend: the `weaviate` source of the pattern routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/log.h"
#include "weaviate.h"

typedef struct {
    dm_backend base;
    dm_weaviate *wv;
    int window;
    bool hnsw;
    unsigned timeframes;
    dm_window_source src; /* the worker's series, to build windows of written candles */
    bool class_ready;     /* the class was checked (created) by this connection */
} wv_backend;

/* Neighbours fetched so the greedy walk can reach `limit`: each window it takes excludes
 * at most 2 * zone others of its series. */
static size_t fetch_size(size_t limit, int zone, bool *capped)
{
    size_t span = 2 * (size_t)(zone > 0 ? zone : 0) + 1;
    *capped = limit > DM_WV_LIMIT_MAX / span;
    return *capped ? DM_WV_LIMIT_MAX : limit * span;
}

/* Ranking of the in-worker engine: score descending, then symbol, then start. */
static int by_rank(const void *x, const void *y)
{
    const dm_weaviate_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    int c = strcmp(a->symbol, b->symbol);
    if (c)
        return c;
    return (a->start_timestamp > b->start_timestamp) - (a->start_timestamp < b->start_timestamp);
}

typedef enum { ZONE_OUT, ZONE_IN, ZONE_UNKNOWN } zone_verdict;

/* Whether two windows of one symbol start within `zone` candles of each other, from their
 * times: candles are at least tf_ms apart, so dt / tf_ms bounds the candles between the
 * starts from above. From below: all of the earlier window's candles when the later one
 * starts after its end, dt / tf_ms itself when the earlier window is gap-free (its candles
 * are exactly tf_ms apart), else one. */
static zone_verdict within_zone(const dm_weaviate_hit *a, const dm_weaviate_hit *b, int zone,
                                int window, int64_t tf_ms)
{
    const dm_weaviate_hit *lo = a->start_timestamp <= b->start_timestamp ? a : b;
    const dm_weaviate_hit *hi = lo == a ? b : a;
    int64_t upper = (hi->start_timestamp - lo->start_timestamp) / tf_ms, lower = 1;
    if (hi->start_timestamp > lo->timestamp)
        lower = window;
    else if (lo->timestamp - lo->start_timestamp == (int64_t)(window - 1) * tf_ms)
        lower = upper;
    if (upper <= zone)
        return ZONE_IN;
    return lower > zone ? ZONE_OUT : ZONE_UNKNOWN;
}

/* The greedy walk over ranked hits into out; *certain false when a decision rested on
 * times alone. Returns how many were taken. */
static size_t walk(const wv_backend *b, const dm_pattern_request *q, const dm_weaviate_hit *h,
                   size_t n, dm_pattern_vec *out, bool *certain, dm_err *err)
{
    int64_t tf_ms = dm_tf_ms(q->tf);
    size_t first = out->n;
    *certain = true;
    for (size_t i = 0; i < n && out->n - first < q->limit; i++) {
        if (q->similar && h[i].score < q->threshold)
            continue; /* float32 distances stray a little past Weaviate's own cut */
        bool excluded = false;
        for (size_t k = first; k < out->n && !excluded && q->zone > 0; k++) {
            const dm_pattern_match *m = &out->v[k];
            if (strcmp(m->symbol, h[i].symbol) != 0)
                continue;
            dm_weaviate_hit taken = {.timestamp = m->timestamp,
                                     .start_timestamp = m->start_timestamp};
            zone_verdict v = within_zone(&taken, &h[i], q->zone, b->window, tf_ms);
            excluded = v == ZONE_IN;
            *certain = *certain && v != ZONE_UNKNOWN;
        }
        if (excluded)
            continue;
        dm_pattern_match *m = dm_pattern_vec_push(out);
        if (m == NULL) {
            dm_fail(err, DM_E_INTERNAL, "", "out of memory");
            return SIZE_MAX;
        }
        snprintf(m->symbol, sizeof m->symbol, "%.*s", DM_SYMBOL_MAX, h[i].symbol);
        m->timestamp = h[i].timestamp;
        m->start_timestamp = h[i].start_timestamp;
        m->score = h[i].score;
    }
    return out->n - first;
}

/* No hit: MISS when Weaviate holds nothing of the symbol (or timeframe) at all, so a
 * source that holds every candle decides whether the symbol exists. */
static dm_bstatus empty_answer(wv_backend *b, const dm_pattern_request *q, dm_pattern_vec *out,
                               dm_err *err)
{
    int64_t count = 0;
    dm_bstatus st = dm_weaviate_count(b->wv, q->symbol, dm_tf_name(q->tf), &count, err);
    if (st != DM_BS_OK)
        return st;
    if (count == 0)
        return dm_fail(err, DM_E_NOT_FOUND, "symbol", "weaviate holds no %s window of %s",
                       dm_tf_name(q->tf), q->symbol ? q->symbol : "any symbol"),
               DM_BS_MISS;
    out->exact = !b->hnsw;
    return DM_BS_OK;
}

static dm_bstatus wv_patterns(dm_backend *base, const dm_pattern_request *q, dm_pattern_vec *out,
                              dm_err *err)
{
    wv_backend *b = (wv_backend *)base;
    if (q->w != (size_t)b->window || (int)q->tf < 0 || !(b->timeframes & (1u << q->tf)))
        return dm_fail(err, DM_E_INVALID_FIELD, "pattern_vector",
                       "weaviate indexes windows of %d closes in other timeframes", b->window),
               DM_BS_MISS;
    bool capped;
    size_t want = fetch_size(q->limit, q->zone, &capped);
    dm_weaviate_query wq = {q->query, q->w,      q->similar ? 1 - q->threshold : -1,
                            want,     q->symbol, dm_tf_name(q->tf),
                            q->start, q->end};
    dm_weaviate_hit *hits = NULL;
    size_t n = 0;
    dm_bstatus st = dm_weaviate_search(b->wv, &wq, &hits, &n, err);
    if (st != DM_BS_OK)
        return st;
    if (n == 0)
        return empty_answer(b, q, out, err);
    qsort(hits, n, sizeof *hits, by_rank);
    bool certain;
    size_t taken = walk(b, q, hits, n, out, &certain, err);
    free(hits);
    if (taken == SIZE_MAX)
        return DM_BS_TRANSIENT;
    /* Fewer than asked for: Weaviate had no more. Otherwise the walk must have ended
     * inside what was fetched. */
    bool sufficed = n < want || taken == q->limit;
    out->exact = !b->hnsw && certain && sufficed;
    return DM_BS_OK;
}

static dm_bstatus wv_ping(dm_backend *base, dm_err *err)
{
    return dm_weaviate_ready(((wv_backend *)base)->wv, err);
}

static void wv_destroy(dm_backend *base)
{
    wv_backend *b = (wv_backend *)base;
    if (b == NULL)
        return;
    dm_weaviate_close(b->wv);
    free(b);
}

/* ---- writes: the windows that hold written candles ------------------------------------ */

/* Every window of W closes that holds a position in [first, last] of the closes around. */
static dm_bstatus put_around(void *ctx, const char *symbol, dm_tf tf, const int64_t *ts, const double *close,
                             size_t n, size_t first, size_t last, dm_err *err)
{
    wv_backend *b = ctx;
    size_t w = (size_t)b->window;
    if (n < w)
        return DM_BS_OK;
    size_t j0 = first > w - 1 ? first : w - 1, j1 = last + w - 1 < n ? last + w - 1 : n - 1;
    if (j0 > j1)
        return DM_BS_OK;
    dm_pattern_window *win = calloc(j1 - j0 + 1, sizeof *win);
    if (win == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    for (size_t j = j0; j <= j1; j++)
        win[j - j0] = (dm_pattern_window){.symbol = symbol, .timeframe = dm_tf_name(tf), .timestamp = ts[j],
                                          .start_timestamp = ts[j - w + 1], .closes = close + j - w + 1};
    dm_bstatus st = dm_weaviate_put_windows(b->wv, win, j1 - j0 + 1, err);
    free(win);
    return st;
}

/* A write consumer of candles: durable, acked only once Weaviate confirmed every window
 * (uuid5 ids, so a redelivery overwrites). Candles of timeframes it does not index pass. */
static dm_bstatus wv_write_candles(dm_backend *base, const dm_candle *c, size_t n, const dm_cache_opts *o,
                                   dm_err *err)
{
    wv_backend *b = (wv_backend *)base;
    dm_candle *kept = malloc((n ? n : 1) * sizeof *kept);
    uint64_t *seqs = malloc((n ? n : 1) * sizeof *seqs);
    size_t k = 0;
    dm_bstatus st = kept && seqs ? DM_BS_OK : dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    for (size_t i = 0; st == DM_BS_OK && i < n; i++)
        if (b->timeframes & (1u << c[i].tf)) {
            seqs[k] = o && o->seqs ? o->seqs[i] : 0;
            kept[k++] = c[i];
        }
    if (st == DM_BS_OK && k > 0 && !b->class_ready && (st = dm_weaviate_ensure_class(b->wv, err)) == DM_BS_OK)
        b->class_ready = true;
    if (st == DM_BS_OK && k > 0)
        st = b->src.around(b->src.self, kept, o && o->seqs ? seqs : NULL, k, (size_t)b->window, put_around, b, err);
    free(kept);
    free(seqs);
    return st;
}

static const dm_backend_ops OPS = {
    .patterns = wv_patterns,
    .ping = wv_ping,
    .destroy = wv_destroy,
};

static const dm_backend_ops OPS_WRITE = {
    .write_candles = wv_write_candles,
    .patterns = wv_patterns,
    .ping = wv_ping,
    .destroy = wv_destroy,
};

dm_backend *dm_weaviate_backend_create(const cJSON *cfg, int window, bool hnsw, unsigned timeframes,
                                       int timeout_s, const dm_window_source *src)
{
    const char *key = dm_cfg_str(cfg, "api_key", NULL);
    dm_weaviate_config wc = {
        .url = dm_cfg_str(cfg, "url", NULL),
        .api_key = key && key[0] ? key : NULL, /* "ENV?:NAME" unset: a server without auth */
        .class_name = dm_cfg_str(cfg, "class", "PriceWindow"),
        .index_type = hnsw ? "hnsw" : "flat",
        .window = window,
        .timeout_ms = timeout_s > 0 ? timeout_s * 1000 : 0,
    };
    dm_err err = {0};
    wv_backend *b = calloc(1, sizeof *b);
    if (b == NULL || (b->wv = dm_weaviate_open(&wc, &err)) == NULL) {
        DM_ERROR("weaviate", "%s", b ? err.message : "out of memory");
        free(b);
        return NULL;
    }
    b->base.ops = src && src->around ? &OPS_WRITE : &OPS;
    if (src)
        b->src = *src;
    b->base.id = DM_BK_WEAVIATE;
    b->window = window;
    b->hnsw = hnsw;
    b->timeframes = timeframes;
    return &b->base;
}
