#include "fallback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/correl.h"
#include "analysis/patterns.h"

typedef struct {
    dm_backend base;
    dm_fallback_config cfg;
} fallback;

dm_bstatus dm_fallback_read_closes(void *ctx, dm_tf tf, const char *symbol, dm_close_sink sink,
                                   void *sink_ctx, dm_err *err)
{
    const dm_fallback_config *cfg = ctx;
    if (cfg->timescale == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "no PostgreSQL to load closes from");
    if (cfg->fresh && !dm_fresh_caught_up(cfg->fresh, DM_BK_TIMESCALE, DM_FRESH_CANDLES))
        return dm_bfail(err, DM_BS_TRANSIENT, "", "PostgreSQL is catching up on candles: closes load once it has");
    dm_backend *pg = dm_pool_acquire(cfg->timescale, err);
    if (pg == NULL)
        return DM_BS_TRANSIENT;
    dm_bstatus st = pg->ops->closes(pg, tf, symbol, sink, sink_ctx, err);
    dm_pool_release(cfg->timescale, pg, st == DM_BS_TRANSIENT);
    return st;
}

static dm_bstatus around(void *self, const dm_candle *c, const uint64_t *seqs, size_t n, size_t w,
                         dm_window_sink sink, void *sink_ctx, dm_err *err)
{
    dm_fallback_config *cfg = self;
    return dm_series_write_around(cfg->store, dm_fallback_read_closes, cfg, c, seqs, n, w, sink, sink_ctx, err);
}

dm_window_source dm_fallback_window_source(dm_fallback_config *cfg)
{
    return (dm_window_source){around, cfg};
}

static dm_bstatus acquire(fallback *f, dm_tf tf, dm_series_view *v, dm_err *err)
{
    return dm_series_acquire(f->cfg.store, tf, dm_fallback_read_closes, &f->cfg, v, err);
}

/* ---- patterns ------------------------------------------------------------------------ */

static dm_bstatus to_matches(dm_pseries *const *series, const dm_pattern_hits *hits, size_t w,
                             dm_pattern_vec *out, dm_err *err)
{
    for (size_t i = 0; i < hits->n; i++) {
        const dm_pattern_hit *h = &hits->v[i];
        const int64_t *ts = dm_pseries_ts(series[h->series]);
        dm_pattern_match *m = dm_pattern_vec_push(out);
        if (m == NULL)
            return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
        snprintf(m->symbol, sizeof m->symbol, "%s", dm_pseries_symbol(series[h->series]));
        m->start_timestamp = ts[h->first];
        m->timestamp = ts[h->first + w - 1];
        m->score = h->score;
    }
    out->exact = true;
    return DM_BS_OK;
}

static dm_bstatus fb_patterns(dm_backend *b, const dm_pattern_request *q, dm_pattern_vec *out,
                              dm_err *err)
{
    fallback *f = (fallback *)b;
    dm_series_view v;
    dm_bstatus st = acquire(f, q->tf, &v, err);
    if (st != DM_BS_OK)
        return st;
    dm_pseries *one[1];
    dm_pseries *const *series = v.series;
    size_t n = v.n;
    if (q->symbol) {
        one[0] = dm_series_find(&v, q->symbol);
        series = one;
        n = one[0] ? 1 : 0;
    }
    if (q->symbol && n == 0) {
        dm_series_release(f->cfg.store, q->tf);
        return DM_BS_MISS;
    }
    dm_pattern_query pq = {.query = q->query, .w = q->w, .similar = q->similar,
                           .threshold = q->threshold, .limit = q->limit, .start = q->start,
                           .end = q->end, .zone = q->zone};
    dm_pattern_hits hits = {0};
    dm_code c = dm_pattern_search(series, n, &pq, &hits, err);
    st = c == DM_OK ? to_matches(series, &hits, q->w, out, err) : DM_BS_PERMANENT;
    dm_series_release(f->cfg.store, q->tf);
    dm_pattern_hits_free(&hits);
    return st;
}

/* ---- correlations -------------------------------------------------------------------- */

/* The store's series as the correlation engine reads them. */
static dm_corr_series *corr_view(const dm_series_view *v)
{
    dm_corr_series *s = calloc(v->n ? v->n : 1, sizeof *s);
    for (size_t i = 0; s && i < v->n; i++)
        s[i] = (dm_corr_series){dm_pseries_symbol(v->series[i]), dm_pseries_ts(v->series[i]),
                                dm_pseries_close(v->series[i]), dm_pseries_len(v->series[i])};
    return s;
}

typedef dm_bstatus (*corr_answer_fn)(const dm_corr_matrix *m, const dm_corr_series *s, size_t start,
                                     const dm_corr_request *q, void *out, dm_err *err);

/* Computes the window's matrix over every series of the timeframe and hands it to `answer`;
 * MISS when the symbol has no candles in the timeframe. */
static dm_bstatus with_matrix(fallback *f, const dm_corr_request *q, corr_answer_fn answer, void *out,
                              dm_err *err)
{
    dm_series_view v;
    dm_bstatus st = acquire(f, q->tf, &v, err);
    if (st != DM_BS_OK)
        return st;
    dm_pseries *me = dm_series_find(&v, q->symbol);
    dm_corr_series *s = me ? corr_view(&v) : NULL;
    dm_corr_matrix m = {0};
    if (me == NULL)
        st = DM_BS_MISS;
    else if (s == NULL)
        st = dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    else if (dm_corr_matrix_compute(s, v.n, q->window_start, q->window_end, q->min_pairs, &m, err))
        st = DM_BS_PERMANENT;
    else {
        size_t start = 0;
        while (s[start].symbol != dm_pseries_symbol(me))
            start++;
        st = answer(&m, s, start, q, out, err);
    }
    dm_corr_matrix_free(&m);
    free(s);
    dm_series_release(f->cfg.store, q->tf);
    return st;
}

static dm_bstatus corr_rows(const dm_corr_matrix *m, const dm_corr_series *s, size_t start,
                            const dm_corr_request *q, void *out, dm_err *err)
{
    dm_corr_row *rows = NULL;
    size_t n = 0;
    if (dm_corr_for(m, s, start, q->threshold, &rows, &n, err))
        return DM_BS_PERMANENT;
    dm_bstatus st = DM_BS_OK;
    for (size_t i = 0; i < n && st == DM_BS_OK; i++) {
        dm_corr_entry *e = dm_corr_vec_push(out);
        if (e == NULL) {
            st = dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
            break;
        }
        snprintf(e->symbol, sizeof e->symbol, "%s", s[rows[i].other].symbol);
        e->r = rows[i].r;
        e->n = rows[i].n;
    }
    free(rows);
    return st;
}

static dm_bstatus fb_correlations(dm_backend *b, const dm_corr_request *q, dm_corr_vec *out,
                                  dm_err *err)
{
    return with_matrix((fallback *)b, q, corr_rows, out, err);
}

static void pair_of(dm_corr_pair *p, const dm_corr_series *s, size_t a, size_t b, double r, int64_t n)
{
    snprintf(p->a, sizeof p->a, "%s", s[a].symbol);
    snprintf(p->b, sizeof p->b, "%s", s[b].symbol);
    p->r = r;
    p->n = n;
}

static dm_bstatus graph_copy(const dm_corr_graph *g, const dm_corr_series *s, dm_graph_answer *out)
{
    size_t members = 0;
    for (size_t i = 0; i < g->n_clusters; i++)
        members += g->cluster_len[i];
    out->nodes = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *out->nodes);
    out->edges = calloc(g->n_edges ? g->n_edges : 1, sizeof *out->edges);
    out->mst = calloc(g->n_mst ? g->n_mst : 1, sizeof *out->mst);
    out->cluster_len = calloc(g->n_clusters ? g->n_clusters : 1, sizeof *out->cluster_len);
    out->cluster_symbols = calloc(members ? members : 1, sizeof *out->cluster_symbols);
    if (!out->nodes || !out->edges || !out->mst || !out->cluster_len || !out->cluster_symbols)
        return DM_BS_TRANSIENT;
    for (size_t i = 0; i < g->n_nodes; i++) {
        snprintf(out->nodes[i].symbol, sizeof out->nodes[i].symbol, "%s", s[g->node[i]].symbol);
        out->nodes[i].depth = g->depth[i];
    }
    for (size_t i = 0; i < g->n_edges; i++)
        pair_of(&out->edges[i], s, g->edge[i].a, g->edge[i].b, g->edge[i].r, g->edge[i].n);
    for (size_t i = 0; i < g->n_mst; i++)
        pair_of(&out->mst[i], s, g->mst[i].a, g->mst[i].b, g->mst[i].r, 0);
    size_t k = 0;
    for (size_t i = 0; i < g->n_clusters; i++) {
        out->cluster_len[i] = g->cluster_len[i];
        for (size_t j = 0; j < g->cluster_len[i]; j++, k++)
            snprintf(out->cluster_symbols[k], sizeof out->cluster_symbols[k], "%s", s[g->cluster[i][j]].symbol);
    }
    out->n_nodes = g->n_nodes;
    out->n_edges = g->n_edges;
    out->n_mst = g->n_mst;
    out->n_clusters = g->n_clusters;
    out->n_cluster_symbols = members;
    return DM_BS_OK;
}

static dm_bstatus graph_answer(const dm_corr_matrix *m, const dm_corr_series *s, size_t start,
                               const dm_corr_request *q, void *out, dm_err *err)
{
    dm_corr_graph g = {0};
    if (dm_corr_graph_build(m, s, start, q->depth, q->threshold, &g, err))
        return DM_BS_PERMANENT;
    dm_bstatus st = graph_copy(&g, s, out);
    dm_corr_graph_free(&g);
    return st == DM_BS_OK ? st : dm_bfail(err, st, "", "out of memory");
}

static dm_bstatus fb_graph(dm_backend *b, const dm_corr_request *q, dm_graph_answer *out, dm_err *err)
{
    return with_matrix((fallback *)b, q, graph_answer, out, err);
}

static dm_bstatus fb_ping(dm_backend *b, dm_err *err)
{
    (void)b;
    (void)err;
    return DM_BS_OK;
}

static void fb_destroy(dm_backend *b)
{
    free(b);
}

static const dm_backend_ops OPS = {
    .patterns = fb_patterns,
    .correlations = fb_correlations,
    .graph = fb_graph,
    .ping = fb_ping,
    .destroy = fb_destroy,
};

dm_backend *dm_fallback_create(const dm_fallback_config *cfg)
{
    fallback *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->base.ops = &OPS;
    f->base.id = DM_BK_FALLBACK;
    f->cfg = *cfg;
    return &f->base;
}
