/* The graph views of a correlation matrix: the neighbourhood of a symbol, its edges, the
 * clusters at a threshold and the minimum spanning forest. The matrix is in correl.c. */
#include "correl_priv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Disjoint sets; the lower index stays the root, so results never hang on union order. */
static size_t uf_find(size_t *parent, size_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static bool uf_union(size_t *parent, size_t a, size_t b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a != b)
        parent[a > b ? a : b] = a < b ? a : b;
    return a != b;
}

typedef struct {
    const char *symbol;
    size_t idx;
} named;

static int by_symbol(const void *pa, const void *pb)
{
    const named *a = pa, *b = pb;
    return strcmp(a->symbol, b->symbol);
}

typedef struct {
    const dm_corr_matrix *m;
    double threshold;
    size_t *order;   /* series indices in symbol order; owns the arrays below */
    size_t *by_rank; /* the graph's nodes in symbol order */
    size_t *dep;     /* breadth-first depth per series, SIZE_MAX when not reached */
    size_t *scratch; /* the search's queue, then the clusters' sets */
} graph_ctx;

static dm_code ctx_init(graph_ctx *g, const dm_corr_matrix *m, const dm_corr_series *s,
                        double threshold, dm_err *err)
{
    size_t n = m->n_sym; /* n * n cells exist, so 4 * n cannot overflow */
    *g = (graph_ctx){.m = m, .threshold = threshold, .order = alloc_n(4 * n, sizeof(size_t))};
    named *tmp = alloc_n(n, sizeof *tmp);
    if (!(g->order && tmp)) {
        free(tmp);
        return out_of_memory(err);
    }
    g->by_rank = g->order + n;
    g->dep = g->order + 2 * n;
    g->scratch = g->order + 3 * n;
    for (size_t i = 0; i < n; i++)
        tmp[i] = (named){s[i].symbol, i};
    qsort(tmp, n, sizeof *tmp, by_symbol);
    for (size_t k = 0; k < n; k++)
        g->order[k] = tmp[k].idx;
    free(tmp);
    return DM_OK;
}

static void reach(graph_ctx *g, size_t start, size_t max_depth)
{
    size_t n = g->m->n_sym, *queue = g->scratch, head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        g->dep[i] = SIZE_MAX;
    g->dep[start] = 0;
    queue[tail++] = start;
    while (head < tail) {
        size_t u = queue[head++];
        for (size_t v = 0; v < n && g->dep[u] < max_depth; v++) {
            if (g->dep[v] == SIZE_MAX && v != u && linked(g->m, u, v, g->threshold)) {
                g->dep[v] = g->dep[u] + 1;
                queue[tail++] = v;
            }
        }
    }
}

static dm_code collect_nodes(graph_ctx *g, size_t max_depth, dm_corr_graph *out, dm_err *err)
{
    size_t n = g->m->n_sym, count = 0;
    for (size_t k = 0; k < n; k++)
        if (g->dep[g->order[k]] != SIZE_MAX)
            g->by_rank[count++] = g->order[k];
    out->node = alloc_n(count, sizeof *out->node);
    out->depth = alloc_n(count, sizeof *out->depth);
    if (!(out->node && out->depth))
        return out_of_memory(err);
    for (size_t d = 0; d <= max_depth; d++) {
        for (size_t k = 0; k < count; k++) {
            if (g->dep[g->by_rank[k]] == d) {
                out->node[out->n_nodes] = g->by_rank[k];
                out->depth[out->n_nodes++] = (int)d;
            }
        }
    }
    return DM_OK;
}

static size_t pairs_among(size_t n)
{
    return n < 2 ? 0 : n * (n - 1) / 2;
}

static dm_code collect_edges(const graph_ctx *g, dm_corr_graph *out, dm_err *err)
{
    size_t nn = out->n_nodes;
    if ((out->edge = alloc_n(pairs_among(nn), sizeof *out->edge)) == NULL)
        return out_of_memory(err);
    for (size_t p = 0; p < nn; p++) {
        for (size_t q = p + 1; q < nn; q++) {
            size_t a = g->by_rank[p], b = g->by_rank[q], c = dm_corr_cell(g->m, a, b);
            if (linked(g->m, a, b, g->threshold))
                out->edge[out->n_edges++] = (dm_corr_edge){a, b, g->m->r[c], g->m->pairs[c]};
        }
    }
    return DM_OK;
}

typedef struct {
    size_t len, id;
} cluster_size;

static int largest_first(const void *pa, const void *pb)
{
    const cluster_size *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Numbers the components of the symbols in the window in the order of their first
 * symbol: comp[i] is series i's, SIZE_MAX outside the window. */
static size_t components(const graph_ctx *g, size_t *comp)
{
    const dm_corr_matrix *m = g->m;
    size_t n = m->n_sym, count = 0, *parent = g->scratch;
    for (size_t i = 0; i < n; i++)
        parent[i] = i;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (m->in_window[i] && m->in_window[j] && linked(m, i, j, g->threshold))
                uf_union(parent, i, j);
    for (size_t i = 0; i < n; i++)
        comp[i] = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        size_t i = g->order[k], root = uf_find(parent, i);
        if (m->in_window[i] && comp[root] == SIZE_MAX)
            comp[root] = count++;
        comp[i] = m->in_window[i] ? comp[root] : SIZE_MAX;
    }
    return count;
}

static dm_code collect_clusters(const graph_ctx *g, dm_corr_graph *out, dm_err *err)
{
    size_t n = g->m->n_sym, *comp = alloc_n(2 * n, sizeof *comp);
    cluster_size *size = alloc_n(n, sizeof *size);
    out->cluster = alloc_n(n, sizeof *out->cluster);
    out->cluster_len = alloc_n(n, sizeof *out->cluster_len);
    out->cluster_member = alloc_n(n, sizeof *out->cluster_member);
    if (!(comp && size && out->cluster && out->cluster_len && out->cluster_member)) {
        free(comp);
        free(size);
        return out_of_memory(err);
    }
    size_t *place = comp + n, count = components(g, comp);
    for (size_t id = 0; id < count; id++)
        size[id] = (cluster_size){0, id};
    for (size_t i = 0; i < n; i++)
        if (comp[i] != SIZE_MAX)
            size[comp[i]].len++;
    qsort(size, count, sizeof *size, largest_first);
    for (size_t k = 0, at = 0; k < count; at += size[k].len, k++) {
        place[size[k].id] = k;
        out->cluster[k] = out->cluster_member + at;
    }
    out->n_clusters = count;
    for (size_t k = 0; k < n; k++) { /* in symbol order, so each cluster comes out sorted */
        size_t i = g->order[k];
        if (comp[i] != SIZE_MAX) {
            size_t p = place[comp[i]];
            out->cluster[p][out->cluster_len[p]++] = i;
        }
    }
    free(comp);
    free(size);
    return DM_OK;
}

/* p < q: places of a < b among the nodes in symbol order. */
typedef struct {
    double d;
    size_t p, q;
} candidate;

static int by_place(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    if (a->p != b->p)
        return a->p < b->p ? -1 : 1;
    return a->q < b->q ? -1 : a->q > b->q;
}

static int by_distance(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    if (a->d != b->d)
        return a->d < b->d ? -1 : 1;
    return by_place(pa, pb);
}

/* Kruskal over every correlated pair of nodes, whatever the threshold; signed r, so
 * anti-correlated symbols lie far apart (distance up to 2). */
static dm_code collect_mst(const graph_ctx *g, dm_corr_graph *out, dm_err *err)
{
    const dm_corr_matrix *m = g->m;
    size_t nn = out->n_nodes, nc = 0, chosen = 0;
    candidate *cand = alloc_n(pairs_among(nn), sizeof *cand);
    size_t *parent = alloc_n(nn, sizeof *parent);
    out->mst = alloc_n(nn, sizeof *out->mst);
    if (!(cand && parent && out->mst)) {
        free(cand);
        free(parent);
        return out_of_memory(err);
    }
    for (size_t p = 0; p < nn; p++) {
        parent[p] = p;
        for (size_t q = p + 1; q < nn; q++) {
            size_t c = dm_corr_cell(m, g->by_rank[p], g->by_rank[q]);
            if (m->has[c])
                cand[nc++] = (candidate){sqrt(2 * (1 - m->r[c])), p, q};
        }
    }
    qsort(cand, nc, sizeof *cand, by_distance);
    for (size_t k = 0; k < nc; k++)
        if (uf_union(parent, cand[k].p, cand[k].q))
            cand[chosen++] = cand[k];
    qsort(cand, chosen, sizeof *cand, by_place);
    for (size_t k = 0; k < chosen; k++) {
        size_t a = g->by_rank[cand[k].p], b = g->by_rank[cand[k].q];
        out->mst[k] = (dm_corr_link){a, b, m->r[dm_corr_cell(m, a, b)]};
    }
    out->n_mst = chosen;
    free(cand);
    free(parent);
    return DM_OK;
}

static dm_code check_graph_args(const dm_corr_matrix *m, const dm_corr_series *s, size_t start,
                                int depth, double threshold, dm_err *err)
{
    if (start >= m->n_sym)
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "symbol index %zu of %zu", start,
                       m->n_sym);
    if (depth < DM_CORR_DEPTH_MIN || depth > DM_CORR_DEPTH_MAX)
        return dm_fail(err, DM_E_INVALID_FIELD, "depth", "depth %d must be within %d..%d", depth,
                       DM_CORR_DEPTH_MIN, DM_CORR_DEPTH_MAX);
    dm_code c = check_threshold(threshold, err);
    if (c != DM_OK)
        return c;
    if (!m->has_candles[start])
        return dm_fail(err, DM_E_NOT_FOUND, "symbol", "no %s candles in this timeframe",
                       s[start].symbol);
    return DM_OK;
}

dm_code dm_corr_graph_build(const dm_corr_matrix *m, const dm_corr_series *s, size_t start,
                            int depth, double threshold, dm_corr_graph *out, dm_err *err)
{
    memset(out, 0, sizeof *out);
    dm_code c = check_graph_args(m, s, start, depth, threshold, err);
    if (c != DM_OK)
        return c;
    graph_ctx g;
    c = ctx_init(&g, m, s, threshold, err);
    if (c == DM_OK) {
        reach(&g, start, (size_t)depth);
        c = collect_nodes(&g, (size_t)depth, out, err);
    }
    if (c == DM_OK)
        c = collect_edges(&g, out, err);
    if (c == DM_OK)
        c = collect_clusters(&g, out, err);
    if (c == DM_OK)
        c = collect_mst(&g, out, err);
    if (c != DM_OK)
        dm_corr_graph_free(out);
    free(g.order);
    return c;
}

void dm_corr_graph_free(dm_corr_graph *g)
{
    free(g->node);
    free(g->depth);
    free(g->edge);
    free(g->cluster);
    free(g->cluster_len);
    free(g->cluster_member);
    free(g->mst);
    memset(g, 0, sizeof *g);
}
