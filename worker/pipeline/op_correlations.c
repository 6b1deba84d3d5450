/* get_correlations and graph_analysis: which symbols' returns move together over a window
 * of candles, and how the market clusters (subjects/README.md has the exact definitions). */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/correl.h"
#include "codec/doc.h"
#include "obs/metrics.h"
#include "util/log.h"

#define CORR_THRESHOLD_DEFAULT 0.6
#define GRAPH_DEPTH_DEFAULT 2
#define WINDOW_CANDLES_MIN 30
#define WINDOW_CANDLES_MAX 10000

typedef struct {
    dm_corr_request rq;
    char symbol[DM_SYMBOL_MAX + 1];
    dm_corr_vec rows;
    dm_graph_answer graph;
} corr_q;

static dm_code req_window(dm_serve *s, const cJSON *req, corr_q *q, dm_err *err)
{
    int64_t end = dm_now_ms(), wc = s->st->correlations.window_candles;
    bool has_end = false;
    dm_code c;
    if ((c = dm_get_time(req, "end_date", &end, false, &has_end, err)) ||
        (c = dm_get_int(req, "window_candles", &wc, WINDOW_CANDLES_MIN, WINDOW_CANDLES_MAX, false, NULL, err)))
        return c;
    if ((c = dm_corr_window(end, dm_tf_ms(q->rq.tf), (int)wc, &q->rq.window_start, &q->rq.window_end, err)))
        return c;
    int64_t now_start, now_end;
    dm_err ignored = {0};
    q->rq.window_candles = (int)wc;
    q->rq.default_window = wc == s->st->correlations.window_candles &&
                           dm_corr_window(dm_now_ms(), dm_tf_ms(q->rq.tf), (int)wc, &now_start, &now_end, &ignored) == DM_OK &&
                           now_end == q->rq.window_end;
    return DM_OK;
}

static dm_code corr_request(dm_serve *s, const cJSON *req, bool graph, corr_q *q, dm_err *err)
{
    double threshold = CORR_THRESHOLD_DEFAULT;
    int64_t depth = GRAPH_DEPTH_DEFAULT;
    dm_code c;
    if ((c = req_symbol(req, graph ? "start_symbol" : "symbol", q->symbol, err)) ||
        (c = dm_get_num(req, "threshold", &threshold, false, NULL, err)) ||
        (graph && (c = dm_get_int(req, "depth", &depth, DM_CORR_DEPTH_MIN, DM_CORR_DEPTH_MAX, false, NULL, err))) ||
        (c = req_tf_or(req, DM_TF_1H, &q->rq.tf, err)))
        return c;
    if (!(threshold >= 0 && threshold <= 1))
        return dm_fail(err, DM_E_INVALID_FIELD, "threshold", "threshold must be in [0, 1] (|r| at least this)");
    q->rq.symbol = q->symbol;
    q->rq.threshold = threshold;
    q->rq.depth = (int)depth;
    q->rq.min_pairs = s->st->correlations.min_pairs;
    return req_window(s, req, q, err);
}

static dm_bstatus try_correlations(dm_backend *b, void *q, dm_err *err)
{
    corr_q *c = q;
    c->rows.n = 0;
    return b->ops->correlations(b, &c->rq, &c->rows, err);
}

static dm_bstatus try_graph(dm_backend *b, void *q, dm_err *err)
{
    corr_q *c = q;
    dm_graph_answer_free(&c->graph);
    return b->ops->graph(b, &c->rq, &c->graph, err);
}

static void encode_window(dm_enc *e, const corr_q *q)
{
    dm_enc_key(e, "window_start");
    dm_enc_i64(e, q->rq.window_start);
    dm_enc_key(e, "window_end");
    dm_enc_i64(e, q->rq.window_end);
}

static void encode_rows(dm_enc *e, const dm_corr_vec *rows)
{
    dm_enc_arr(e, rows->n);
    for (size_t i = 0; i < rows->n; i++) {
        dm_enc_map(e, 3);
        dm_enc_key(e, "symbol"); dm_enc_str(e, rows->v[i].symbol);
        dm_enc_key(e, "r"); dm_enc_f64(e, rows->v[i].r);
        dm_enc_key(e, "n"); dm_enc_i64(e, rows->v[i].n);
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
}

static void encode_pairs(dm_enc *e, const char *key, const dm_corr_pair *p, size_t n, bool with_n)
{
    dm_enc_key(e, key);
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++) {
        dm_enc_map(e, with_n ? 4 : 3);
        dm_enc_key(e, "a"); dm_enc_str(e, p[i].a);
        dm_enc_key(e, "b"); dm_enc_str(e, p[i].b);
        dm_enc_key(e, "r"); dm_enc_f64(e, p[i].r);
        if (with_n) {
            dm_enc_key(e, "n");
            dm_enc_i64(e, p[i].n);
        }
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
}

static void encode_graph(dm_enc *e, const dm_graph_answer *g)
{
    dm_enc_key(e, "nodes");
    dm_enc_arr(e, g->n_nodes);
    for (size_t i = 0; i < g->n_nodes; i++) {
        dm_enc_map(e, 2);
        dm_enc_key(e, "symbol"); dm_enc_str(e, g->nodes[i].symbol);
        dm_enc_key(e, "depth"); dm_enc_i64(e, g->nodes[i].depth);
        dm_enc_map_end(e);
    }
    dm_enc_arr_end(e);
    encode_pairs(e, "edges", g->edges, g->n_edges, true);
    dm_enc_key(e, "clusters");
    dm_enc_arr(e, g->n_clusters);
    for (size_t i = 0, k = 0; i < g->n_clusters; i++) {
        dm_enc_arr(e, g->cluster_len[i]);
        for (size_t j = 0; j < g->cluster_len[i]; j++, k++)
            dm_enc_str(e, g->cluster_symbols[k]);
        dm_enc_arr_end(e);
    }
    dm_enc_arr_end(e);
    encode_pairs(e, "mst", g->mst, g->n_mst, false);
}

/* ---- the shared cache ------------------------------------------------------------------
 * corr:{EURUSD}:1h:<window_end>:<window_candles>:<threshold>, a msgpack map {"seq", "rows":
 * [[symbol, r, n], ...]}, for cache.correlations_ttl_seconds. "seq" is the newest candle
 * commit of the timeframe the computing worker had heard of: a reader takes the entry only
 * when it has heard of nothing newer, so no commit, backfill or correction outlives it. */

static void corr_key(char *key, size_t cap, const corr_q *q)
{
    char base[96];
    serve_key(base, sizeof base, "corr", q->symbol, q->rq.tf);
    snprintf(key, cap, "%s:%lld:%d:%.17g", base, (long long)q->rq.window_end, q->rq.window_candles,
             q->rq.threshold);
}

static bool cache_rows(const cJSON *rows, dm_corr_vec *out)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, rows)
    {
        const cJSON *sym = cJSON_GetArrayItem(it, 0), *r = cJSON_GetArrayItem(it, 1), *n = cJSON_GetArrayItem(it, 2);
        dm_corr_entry *e;
        if (!cJSON_IsString(sym) || strlen(sym->valuestring) > DM_SYMBOL_MAX || !cJSON_IsNumber(r) ||
            !cJSON_IsNumber(n) || (e = dm_corr_vec_push(out)) == NULL)
            return false;
        snprintf(e->symbol, sizeof e->symbol, "%s", sym->valuestring);
        e->r = r->valuedouble;
        e->n = (int64_t)n->valuedouble;
    }
    return true;
}

static bool cache_get(dm_serve *s, const char *key, uint64_t heard, dm_corr_vec *out)
{
    const dm_backend_ops *ops = serve_source_ops(s, DM_BK_DRAGONFLY);
    dm_err e = {0};
    dm_backend *d = ops && ops->blob_get ? serve_borrow(s, DM_BK_DRAGONFLY, &e) : NULL;
    void *blob = NULL;
    size_t len = 0;
    if (d == NULL)
        return false;
    dm_bstatus st = d->ops->blob_get(d, key, &blob, &len, &e);
    serve_note_status(s, DM_BK_DRAGONFLY, st);
    cJSON *doc = NULL;
    bool hit = st == DM_BS_OK && dm_doc_parse(blob, len, DM_ENC_MSGPACK, 1u << 20, &doc, &e) == DM_OK;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(doc, "seq");
    hit = hit && cJSON_IsNumber(seq) && seq->valuedouble >= (double)heard &&
          cache_rows(cJSON_GetObjectItemCaseSensitive(doc, "rows"), out);
    if (!hit)
        out->n = 0;
    if (st == DM_BS_OK || st == DM_BS_MISS)
        dm_metrics_cache(DM_BK_DRAGONFLY, hit);
    cJSON_Delete(doc);
    free(blob);
    return hit;
}

static void cache_put(dm_serve *s, const char *key, uint64_t heard, const dm_corr_vec *rows)
{
    const dm_backend_ops *ops = serve_source_ops(s, DM_BK_DRAGONFLY);
    dm_err e = {0};
    dm_backend *d = ops && ops->blob_put ? serve_borrow(s, DM_BK_DRAGONFLY, &e) : NULL;
    if (d == NULL)
        return;
    dm_buf b;
    dm_enc enc;
    dm_buf_init(&b);
    dm_enc_init(&enc, DM_ENC_MSGPACK, &b);
    dm_enc_map(&enc, 2);
    dm_enc_key(&enc, "seq");
    dm_enc_i64(&enc, (int64_t)heard);
    dm_enc_key(&enc, "rows");
    dm_enc_arr(&enc, rows->n);
    for (size_t i = 0; i < rows->n; i++) {
        dm_enc_arr(&enc, 3);
        dm_enc_str(&enc, rows->v[i].symbol);
        dm_enc_f64(&enc, rows->v[i].r);
        dm_enc_i64(&enc, rows->v[i].n);
        dm_enc_arr_end(&enc);
    }
    dm_enc_arr_end(&enc);
    dm_enc_map_end(&enc);
    dm_bstatus st = b.oom ? DM_BS_OK : d->ops->blob_put(d, key, b.data, b.len, s->st->cache.correlations_ttl_s, &e);
    serve_note_status(s, DM_BK_DRAGONFLY, st);
    if (st != DM_BS_OK)
        DM_WARN("serve", "correlations not cached: %s [%s:%d]", e.message, e.file ? e.file : "?", e.line);
    dm_buf_free(&b);
}

/* Correlations through the shared cache when this worker has heard of a commit of the
 * timeframe (before that it cannot judge an entry's age). */
static dm_code cached_correlations(dm_serve *s, corr_q *q, serve_walk_result *w, dm_err *err)
{
    uint64_t heard = s->cfg.series ? dm_series_heard(s->cfg.series, q->rq.tf) : 0;
    bool use = heard > 0 && s->st->cache.correlations_ttl_s > 0;
    char key[256];
    corr_key(key, sizeof key, q);
    if (use && cache_get(s, key, heard, &q->rows)) {
        w->served_by = DM_BK_DRAGONFLY;
        dm_metrics_served(DM_BK_DRAGONFLY);
        return DM_OK;
    }
    dm_code c = serve_walk(s, DM_OP_GET_CORRELATIONS, SERVE_OP(correlations), try_correlations, q, NULL, w, err);
    if (c == DM_OK && use)
        cache_put(s, key, heard, &q->rows);
    return c;
}

static dm_code op_corr(dm_serve *s, const cJSON *req, bool graph, dm_reply *out, dm_err *err)
{
    corr_q *q = calloc(1, sizeof *q);
    if (q == NULL)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    serve_walk_result w = {0};
    dm_code c = corr_request(s, req, graph, q, err);
    if (c == DM_OK)
        c = graph ? serve_walk(s, DM_OP_GRAPH_ANALYSIS, SERVE_OP(graph), try_graph, q, NULL, &w, err)
                  : cached_correlations(s, q, &w, err);
    if (c == DM_E_NOT_FOUND)
        dm_fail(err, c, graph ? "start_symbol" : "symbol", "no %s candles stored for %s",
                dm_tf_name(q->rq.tf), q->symbol);
    if (c == DM_OK) {
        dm_enc e;
        dm_buf_reset(&out->body);
        dm_enc_init(&e, out->enc, &out->body);
        out->status = 200;
        dm_enc_map(&e, graph ? 7 : 4);
        if (graph) {
            encode_graph(&e, &q->graph);
        } else {
            dm_enc_key(&e, "data");
            encode_rows(&e, &q->rows);
        }
        encode_window(&e, q);
        reply_end_data(&e, w.served_by);
    }
    dm_corr_vec_free(&q->rows);
    dm_graph_answer_free(&q->graph);
    free(q);
    return c;
}

dm_code op_correlations(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    return op_corr(s, req, false, out, err);
}

dm_code op_graph(dm_serve *s, const cJSON *req, dm_reply *out, dm_err *err)
{
    return op_corr(s, req, true, out, err);
}
