/* The ArangoDB adapter as a dm_backend: the `arangodb` source of the correlation routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/correl.h"
#include "util/config.h"
#include "util/log.h"
#include "arangodb.h"

typedef struct {
    dm_backend base;
    dm_arango *ar;
} ar_backend;

static dm_bstatus oom(dm_err *err)
{
    return dm_fail(err, DM_E_INTERNAL, "", "out of memory"), DM_BS_TRANSIENT;
}

static bool same_window(const dm_arango_window *w, const dm_corr_request *q)
{
    return w->window_start == q->window_start && w->window_end == q->window_end &&
           w->window_candles == q->window_candles;
}

static dm_bstatus other_window(const dm_corr_request *q, dm_err *err)
{
    return dm_fail(err, DM_E_NOT_FOUND, "window",
                   "arangodb holds another %s window than the one ending %lld", dm_tf_name(q->tf),
                   (long long)q->window_end),
           DM_BS_MISS;
}

static dm_bstatus unknown_symbol(const dm_corr_request *q, dm_err *err)
{
    return dm_fail(err, DM_E_NOT_FOUND, "symbol", "arangodb has no %s pair of %s",
                   dm_tf_name(q->tf), q->symbol),
           DM_BS_MISS;
}

/* The stored pairs laid out as correl.h's matrix: symbols by strcmp, every symbol in the
 * window. s[i].symbol points into *names (caller frees s, names and the matrix). */
typedef struct {
    dm_corr_series *s;
    char (*names)[DM_SYMBOL_MAX + 1];
    dm_corr_matrix m;
} laid_out;

static void laid_out_free(laid_out *l)
{
    free(l->s);
    free(l->names);
    dm_corr_matrix_free(&l->m);
}

static int by_name(const void *x, const void *y)
{
    return strcmp(x, y);
}

static size_t index_of(const laid_out *l, const char *symbol)
{
    const char(*p)[DM_SYMBOL_MAX + 1] =
        bsearch(symbol, l->names, l->m.n_sym, sizeof *l->names, by_name);
    return p ? (size_t)(p - l->names) : SIZE_MAX;
}

static dm_bstatus lay_out(const dm_arango_edge *e, size_t n, const dm_corr_request *q, laid_out *l,
                          dm_err *err)
{
    memset(l, 0, sizeof *l);
    size_t k = 0;
    l->names = calloc(2 * n + 1, sizeof *l->names);
    for (size_t i = 0; l->names && i < n; i++) {
        snprintf(l->names[k++], sizeof *l->names, "%s", e[i].a);
        snprintf(l->names[k++], sizeof *l->names, "%s", e[i].b);
    }
    if (l->names == NULL)
        return oom(err);
    qsort(l->names, k, sizeof *l->names, by_name);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(l->names[i], l->names[u - 1]) != 0)
            memmove(l->names[u++], l->names[i], sizeof *l->names);
    dm_corr_matrix *m = &l->m;
    *m = (dm_corr_matrix){.n_sym = u,
                          .window_start = q->window_start,
                          .window_end = q->window_end,
                          .min_pairs = q->min_pairs};
    size_t cells = u ? u * u : 1;
    m->r = calloc(cells, sizeof *m->r);
    m->pairs = calloc(cells, sizeof *m->pairs);
    m->has = calloc(cells, sizeof *m->has);
    m->has_candles = calloc(u ? u : 1, sizeof *m->has_candles);
    m->in_window = calloc(u ? u : 1, sizeof *m->in_window);
    l->s = calloc(u ? u : 1, sizeof *l->s);
    if (!m->r || !m->pairs || !m->has || !m->has_candles || !m->in_window || !l->s)
        return laid_out_free(l), oom(err);
    for (size_t i = 0; i < u; i++) {
        m->has_candles[i] = m->in_window[i] = true;
        l->s[i].symbol = l->names[i];
    }
    for (size_t i = 0; i < n; i++) {
        size_t a = index_of(l, e[i].a), b = index_of(l, e[i].b);
        size_t ab = dm_corr_cell(m, a, b), ba = dm_corr_cell(m, b, a);
        m->r[ab] = m->r[ba] = e[i].r;
        m->pairs[ab] = m->pairs[ba] = e[i].n;
        m->has[ab] = m->has[ba] = true;
    }
    return DM_BS_OK;
}

/* The stored window's generation, when it is the request's: MISS otherwise. */
static dm_bstatus check_window(ar_backend *b, const dm_corr_request *q,
                               char gen[DM_ARANGO_GEN_LEN + 1], dm_err *err)
{
    char key[DM_SYMBOL_MAX + 1];
    dm_arango_window w;
    if (!dm_arango_symbol_key(q->symbol, key)) /* a symbol ArangoDB cannot hold */
        return unknown_symbol(q, err);
    dm_bstatus st = dm_arango_stored_window_gen(b->ar, dm_tf_name(q->tf), &w, gen, err);
    if (st == DM_BS_OK && !same_window(&w, q))
        return other_window(q, err);
    return st;
}

static dm_bstatus put_rows(const laid_out *l, size_t me, const dm_corr_request *q, dm_corr_vec *out,
                           dm_err *err)
{
    dm_corr_row *rows = NULL;
    size_t n = 0;
    if (dm_corr_for(&l->m, l->s, me, q->threshold, &rows, &n, err))
        return DM_BS_PERMANENT;
    dm_bstatus st = DM_BS_OK;
    for (size_t i = 0; i < n && st == DM_BS_OK; i++) {
        dm_corr_entry *e = dm_corr_vec_push(out);
        if (e == NULL) {
            st = oom(err);
            break;
        }
        snprintf(e->symbol, sizeof e->symbol, "%s", l->s[rows[i].other].symbol);
        e->r = rows[i].r;
        e->n = rows[i].n;
    }
    free(rows);
    return st;
}

/* Every stored pair of the symbol (threshold 0), read between two looks at the window:
 * the same generation before and after means they were all of the request's window. */
static dm_bstatus ar_correlations(dm_backend *base, const dm_corr_request *q, dm_corr_vec *out,
                                  dm_err *err)
{
    ar_backend *b = (ar_backend *)base;
    const char *tf = dm_tf_name(q->tf);
    char gen[DM_ARANGO_GEN_LEN + 1], again[DM_ARANGO_GEN_LEN + 1];
    dm_arango_window w;
    dm_arango_edge *e = NULL;
    size_t n = 0;
    dm_bstatus st = check_window(b, q, gen, err);
    if (st == DM_BS_OK)
        st = dm_arango_correlations(b->ar, tf, q->symbol, 0, &e, &n, err);
    if (st == DM_BS_OK)
        st = dm_arango_stored_window_gen(b->ar, tf, &w, again, err);
    if (st == DM_BS_OK && strcmp(gen, again) != 0)
        st = same_window(&w, q)
                 ? (dm_fail(err, DM_E_UNAVAILABLE, "",
                            "arangodb: the %s window was rewritten during the read", tf),
                    DM_BS_TRANSIENT)
                 : other_window(q, err);
    if (st == DM_BS_OK && n == 0)
        st = unknown_symbol(q, err);
    laid_out l = {0};
    if (st == DM_BS_OK && (st = lay_out(e, n, q, &l, err)) == DM_BS_OK)
        st = put_rows(&l, index_of(&l, q->symbol), q, out, err);
    laid_out_free(&l);
    dm_arango_edges_free(e, n);
    return st;
}

static dm_bstatus ar_ping(dm_backend *base, dm_err *err)
{
    return dm_arango_available(((ar_backend *)base)->ar, err);
}

static void ar_destroy(dm_backend *base)
{
    ar_backend *b = (ar_backend *)base;
    if (b == NULL)
        return;
    dm_arango_close(b->ar);
    free(b);
}

/* ---- graph_analysis ------------------------------------------------------------------ */

static void pair_of(dm_corr_pair *p, const dm_corr_series *s, size_t a, size_t b, double r,
                    int64_t n)
{
    snprintf(p->a, sizeof p->a, "%s", s[a].symbol);
    snprintf(p->b, sizeof p->b, "%s", s[b].symbol);
    p->r = r;
    p->n = n;
}

/* The traversal's nodes must be the breadth-first nodes of the stored pairs: the start at
 * depth 0, then the same symbols at the same depths, in the same order. */
static bool agree(const dm_corr_graph *g, const dm_corr_series *s, const dm_arango_node *nodes,
                  size_t n)
{
    if (g->n_nodes != n + 1 || g->depth[0] != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (g->depth[i + 1] != nodes[i].depth || strcmp(s[g->node[i + 1]].symbol, nodes[i].symbol))
            return false;
    return true;
}

/* Nodes (the start, then the traversal's), edges, clusters and forest into out. */
static dm_bstatus graph_copy(const dm_corr_graph *g, const dm_corr_series *s,
                             const dm_arango_node *nodes, size_t n, dm_graph_answer *out,
                             dm_err *err)
{
    size_t members = 0;
    for (size_t i = 0; i < g->n_clusters; i++)
        members += g->cluster_len[i];
    out->nodes = calloc(n + 1, sizeof *out->nodes);
    out->edges = calloc(g->n_edges ? g->n_edges : 1, sizeof *out->edges);
    out->mst = calloc(g->n_mst ? g->n_mst : 1, sizeof *out->mst);
    out->cluster_len = calloc(g->n_clusters ? g->n_clusters : 1, sizeof *out->cluster_len);
    out->cluster_symbols = calloc(members ? members : 1, sizeof *out->cluster_symbols);
    if (!out->nodes || !out->edges || !out->mst || !out->cluster_len || !out->cluster_symbols)
        return dm_graph_answer_free(out), oom(err);
    snprintf(out->nodes[0].symbol, sizeof out->nodes[0].symbol, "%s", s[g->node[0]].symbol);
    for (size_t i = 0; i < n; i++)
        out->nodes[i + 1] = (dm_graph_node){.depth = nodes[i].depth};
    for (size_t i = 0; i < n; i++)
        snprintf(out->nodes[i + 1].symbol, sizeof out->nodes[i + 1].symbol, "%.*s", DM_SYMBOL_MAX,
                 nodes[i].symbol);
    for (size_t i = 0; i < g->n_edges; i++)
        pair_of(&out->edges[i], s, g->edge[i].a, g->edge[i].b, g->edge[i].r, g->edge[i].n);
    for (size_t i = 0; i < g->n_mst; i++)
        pair_of(&out->mst[i], s, g->mst[i].a, g->mst[i].b, g->mst[i].r, 0);
    for (size_t i = 0, k = 0; i < g->n_clusters; i++) {
        out->cluster_len[i] = g->cluster_len[i];
        for (size_t j = 0; j < g->cluster_len[i]; j++, k++)
            snprintf(out->cluster_symbols[k], sizeof *out->cluster_symbols, "%s",
                     s[g->cluster[i][j]].symbol);
    }
    out->n_nodes = n + 1;
    out->n_edges = g->n_edges;
    out->n_mst = g->n_mst;
    out->n_clusters = g->n_clusters;
    out->n_cluster_symbols = members;
    return DM_BS_OK;
}

/* Builds the answer from every stored pair of the window (read after the traversal as one
 * snapshot of the generation checked before it) and the traversal's nodes. */
static dm_bstatus answer_graph(const dm_arango_edge *all, size_t n_all, const dm_arango_node *nodes,
                               size_t n_nodes, const dm_corr_request *q, dm_graph_answer *out,
                               dm_err *err)
{
    laid_out l;
    dm_corr_graph g = {0};
    dm_bstatus st = lay_out(all, n_all, q, &l, err);
    if (st != DM_BS_OK)
        return st;
    size_t start = index_of(&l, q->symbol);
    if (start == SIZE_MAX)
        st = unknown_symbol(q, err);
    else if (dm_corr_graph_build(&l.m, l.s, start, q->depth, q->threshold, &g, err))
        st = DM_BS_PERMANENT;
    else if (!agree(&g, l.s, nodes, n_nodes))
        st = (dm_fail(err, DM_E_UNAVAILABLE, "",
                      "arangodb: the traversal from %s disagrees with the stored %s pairs",
                      q->symbol, dm_tf_name(q->tf)),
              DM_BS_PERMANENT);
    else
        st = graph_copy(&g, l.s, nodes, n_nodes, out, err);
    dm_corr_graph_free(&g);
    laid_out_free(&l);
    return st;
}

static dm_bstatus ar_graph(dm_backend *base, const dm_corr_request *q, dm_graph_answer *out,
                           dm_err *err)
{
    ar_backend *b = (ar_backend *)base;
    const char *tf = dm_tf_name(q->tf);
    if (q->depth < 1 || q->depth > DM_ARANGO_MAX_DEPTH)
        return dm_fail(err, DM_E_INVALID_FIELD, "depth", "arangodb traverses at most %d steps",
                       DM_ARANGO_MAX_DEPTH),
               DM_BS_MISS;
    char gen[DM_ARANGO_GEN_LEN + 1], again[DM_ARANGO_GEN_LEN + 1];
    dm_arango_window w;
    dm_arango_node *nodes = NULL;
    dm_arango_edge *met = NULL, *all = NULL;
    size_t n_nodes = 0, n_met = 0, n_all = 0;
    dm_bstatus st = check_window(b, q, gen, err);
    if (st == DM_BS_OK)
        st = dm_arango_traverse(b->ar, tf, q->symbol, q->depth, q->threshold, &nodes, &n_nodes,
                                &met, &n_met, err);
    if (st == DM_BS_OK)
        st = dm_arango_window_edges(b->ar, tf, &w, again, &all, &n_all, err);
    if (st == DM_BS_OK && strcmp(gen, again) != 0)
        st = same_window(&w, q)
                 ? (dm_fail(err, DM_E_UNAVAILABLE, "",
                            "arangodb: the %s window was rewritten during the read", tf),
                    DM_BS_TRANSIENT)
                 : other_window(q, err);
    if (st == DM_BS_OK)
        st = answer_graph(all, n_all, nodes, n_nodes, q, out, err);
    free(nodes);
    dm_arango_edges_free(met, n_met);
    dm_arango_edges_free(all, n_all);
    return st;
}

/* The scheduled refresh's window: vertices, edges, then the window document (the adapter
 * switches readers to it last and removes the pairs of the window before). */
static dm_bstatus ar_put_correlations(dm_backend *b, const dm_corr_snapshot *sn, dm_err *err)
{
    dm_arango_edge *edges = calloc(sn->n_pairs ? sn->n_pairs : 1, sizeof *edges);
    if (edges == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    for (size_t i = 0; i < sn->n_pairs; i++)
        edges[i] = (dm_arango_edge){sn->pairs[i].a, sn->pairs[i].b, sn->pairs[i].r, sn->pairs[i].n};
    dm_arango_window w = {dm_tf_name(sn->tf), sn->window_start, sn->window_end, sn->window_candles};
    dm_bstatus st = dm_arango_put_window(((ar_backend *)b)->ar, &w, sn->symbols, sn->n_symbols, edges,
                                         sn->n_pairs, err);
    free(edges);
    return st;
}

static const dm_backend_ops OPS = {
    .put_correlations = ar_put_correlations,
    .correlations = ar_correlations,
    .graph = ar_graph,
    .ping = ar_ping,
    .destroy = ar_destroy,
};

dm_backend *dm_arango_backend_create(const cJSON *cfg, int timeout_s)
{
    dm_arango_config ac = {
        .url = dm_cfg_str(cfg, "url", NULL),
        .database = dm_cfg_str(cfg, "database", NULL),
        .username = dm_cfg_str(cfg, "username", NULL),
        .password = dm_cfg_str(cfg, "password", NULL),
        .timeout_ms = timeout_s > 0 ? timeout_s * 1000 : 0,
    };
    dm_err err = {0};
    ar_backend *b = calloc(1, sizeof *b);
    if (b == NULL || (b->ar = dm_arango_open(&ac, &err)) == NULL) {
        DM_ERROR("arangodb", "%s", b ? err.message : "out of memory");
        free(b);
        return NULL;
    }
    b->base.ops = &OPS;
    b->base.id = DM_BK_ARANGODB;
    return &b->base;
}
