/* compute_aggregates: per-period figures from the analytics store (or PostgreSQL),
 * cached in Dragonfly for aggregates_ttl_seconds. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/doc.h"
#include "obs/metrics.h"
#include "util/log.h"

/* ---- aggregates ----------------------------------------------------------------------- */

typedef struct {
    dm_agg_query aq;
    dm_agg_vec out;
} agg_q;

static dm_bstatus try_aggregates(dm_backend *b, void *q, dm_err *err)
{
    agg_q *a = q;
    a->out.n = 0;
    return dm_backend_aggregates(b, &a->aq, &a->out, err);
}

#define DM_AGG_CACHE_MAGIC "dmagg1" /* cached rows are this build's struct layout */

/* agg:{EURUSD}:1h:1d for the whole history, with :start:end when a range was asked. */
static void agg_key(char *key, size_t cap, const dm_agg_query *q, bool ranged)
{
    char base[96];
    serve_key(base, sizeof base, "agg", q->symbol, q->tf);
    if (ranged)
        snprintf(key, cap, "%s:%s:%lld:%lld", base, dm_period_name(q->period), (long long)q->start,
                 (long long)q->end);
    else
        snprintf(key, cap, "%s:%s", base, dm_period_name(q->period));
}

static bool agg_cache_get(dm_serve *s, const char *key, dm_agg_vec *out)
{
    const dm_backend_ops *ops = serve_source_ops(s, DM_BK_DRAGONFLY);
    void *blob = NULL;
    size_t len = 0, magic = sizeof DM_AGG_CACHE_MAGIC;
    dm_err e = {0};
    if (ops == NULL || s->st->cache.aggregates_ttl_s <= 0 || !ops->blob_get)
        return false;
    dm_backend *d = serve_borrow(s, DM_BK_DRAGONFLY, &e);
    if (d == NULL)
        return false;
    int64_t t0 = dm_mono_ns();
    dm_bstatus st = dm_backend_blob_get(d, key, &blob, &len, &e);
    int64_t took = dm_mono_ns() - t0;
    serve_note_status(s, DM_BK_DRAGONFLY, st);
    bool failed = st == DM_BS_TRANSIENT || st == DM_BS_PERMANENT;
    dm_metrics_backend(DM_BK_DRAGONFLY, failed, took);
    if (failed)
        DM_WARN("serve", "aggregates cache read failed, computing instead: %s [%s:%d]", e.message,
                e.file ? e.file : "?", e.line);
    bool hit = st == DM_BS_OK && len >= magic && memcmp(blob, DM_AGG_CACHE_MAGIC, magic) == 0 &&
               (len - magic) % sizeof(dm_agg_row) == 0;
    if (st == DM_BS_OK || st == DM_BS_MISS)
        dm_metrics_cache(DM_BK_DRAGONFLY, hit);
    for (size_t i = 0; hit && i < (len - magic) / sizeof(dm_agg_row); i++) {
        dm_agg_row *row = dm_agg_vec_push(out);
        if (row == NULL)
            hit = false;
        else
            memcpy(row, (char *)blob + magic + i * sizeof *row, sizeof *row);
    }
    free(blob);
    return hit;
}

static void agg_cache_put(dm_serve *s, const char *key, const dm_agg_vec *v)
{
    const dm_backend_ops *ops = serve_source_ops(s, DM_BK_DRAGONFLY);
    dm_err e = {0};
    if (ops == NULL || s->st->cache.aggregates_ttl_s <= 0 || !ops->blob_put)
        return;
    dm_backend *d = serve_borrow(s, DM_BK_DRAGONFLY, &e);
    if (d == NULL)
        return;
    size_t magic = sizeof DM_AGG_CACHE_MAGIC, len = magic + v->n * sizeof(dm_agg_row);
    char *blob = malloc(len);
    if (blob == NULL)
        return;
    memcpy(blob, DM_AGG_CACHE_MAGIC, magic);
    if (v->n)
        memcpy(blob + magic, v->v, v->n * sizeof(dm_agg_row));
    dm_bstatus st = dm_backend_blob_put(d, key, blob, len, s->st->cache.aggregates_ttl_s, &e);
    serve_note_status(s, DM_BK_DRAGONFLY, st);
    if (st != DM_BS_OK)
        DM_WARN("serve", "aggregates not cached: %s [%s:%d]", e.message, e.file ? e.file : "?",
                e.line);
    free(blob);
}

static void encode_aggregates(dm_enc *e, const dm_agg_vec *v)
{
    dm_enc_arr(e, v->n);
    for (size_t i = 0; i < v->n; i++) {
        const dm_agg_row *a = &v->v[i];
        dm_enc_map(e, 10);
        dm_enc_key(e, "period_start"); dm_enc_i64(e, a->period_start);
        dm_enc_key(e, "open"); dm_enc_f64(e, a->open);
        dm_enc_key(e, "high"); dm_enc_f64(e, a->high);
        dm_enc_key(e, "low"); dm_enc_f64(e, a->low);
        dm_enc_key(e, "close"); dm_enc_f64(e, a->close);
        dm_enc_key(e, "mean"); dm_enc_f64(e, a->mean);
        dm_enc_key(e, "stddev_returns");
        if (a->has_stddev) dm_enc_f64(e, a->stddev_returns); else dm_enc_null(e);
        dm_enc_key(e, "range"); dm_enc_f64(e, a->range);
        dm_enc_key(e, "volume"); dm_enc_f64(e, a->volume);
        dm_enc_key(e, "count"); dm_enc_i64(e, a->count);
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
}

static dm_code agg_request(const cJSON *req, agg_q *q, char *symbol, bool *ranged, dm_err *err)
{
    char period[8];
    bool has_start = false, has_end = false;
    dm_code c;
    if ((c = req_symbol(req, "symbol", symbol, err)) || (c = req_tf(req, &q->aq.tf, err)) ||
        (c = dm_get_str(req, "period", period, sizeof period, true, NULL, err)))
        return c;
    if (!dm_period_parse(period, &q->aq.period))
        return dm_fail(err, DM_E_INVALID_FIELD, "period", "period '%s' must be 1d, 1w or 1mo", period);
    q->aq.symbol = symbol;
    q->aq.start = 0;
    q->aq.end = INT64_MAX;
    if ((c = dm_get_time(req, "start_date", &q->aq.start, false, &has_start, err)) ||
        (c = dm_get_time(req, "end_date", &q->aq.end, false, &has_end, err)))
        return c;
    if (q->aq.end < q->aq.start)
        return dm_fail(err, DM_E_INVALID_FIELD, "end_date",
                       "end_date %lld is before start_date %lld (the range is [start, end))",
                       (long long)q->aq.end, (long long)q->aq.start);
    *ranged = has_start || has_end;
    return DM_OK;
}

dm_code op_aggregates(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    char symbol[DM_SYMBOL_MAX + 1], key[192];
    agg_q q = {0};
    bool ranged = false;
    serve_walk_result w = {0};
    dm_code c = agg_request(req, &q, symbol, &ranged, err);
    if (c)
        return c;
    agg_key(key, sizeof key, &q.aq, ranged);
    bool lead = serve_flight_begin(s, key);
    if (agg_cache_get(s, key, &q.out)) {
        w.served_by = DM_BK_DRAGONFLY;
    } else {
        c = serve_walk(s, DM_OP_COMPUTE_AGGREGATES, SERVE_OP(aggregates), try_aggregates, &q, NULL, &w, err);
        if (c == DM_OK && q.out.n == 0 && !serve_candles_known(s, w.served_by, symbol, q.aq.tf))
            c = DM_E_NOT_FOUND;
        else if (c == DM_OK)
            agg_cache_put(s, key, &q.out);
    }
    serve_flight_end(s, key, lead);
    if (c == DM_E_NOT_FOUND)
        dm_fail(err, c, "symbol", "no %s candles stored for %s", dm_tf_name(q.aq.tf), symbol);
    if (c == DM_OK) {
        dm_enc e;
        reply_begin_data(&e, out, 2);
        encode_aggregates(&e, &q.out);
        reply_end_data(&e, w.served_by);
    }
    dm_agg_vec_free(&q.out);
    return c;
}

