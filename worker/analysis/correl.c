#include "correl.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* calloc checks n * size for overflow; asking for at least one element keeps a NULL
 * return meaning out of memory only. */
static void *alloc_n(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

static dm_code out_of_memory(dm_err *err)
{
    return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
}

dm_code dm_corr_window(int64_t end, int64_t tf_ms, int window_candles, int64_t *window_start,
                       int64_t *window_end, dm_err *err)
{
    if (tf_ms <= 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "timeframe",
                       "timeframe length %" PRId64 " ms must be positive", tf_ms);
    if (window_candles <= 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "window", "window of %d candles must be positive",
                       window_candles);
    /* C division truncates toward zero; a window must end at the candle boundary at or
     * before end, also for times before 1970. */
    int64_t q = end / tf_ms;
    if (end % tf_ms != 0 && end < 0)
        q--;
    int64_t we, span, ws;
    if (__builtin_mul_overflow(q, tf_ms, &we) ||
        __builtin_mul_overflow((int64_t)window_candles, tf_ms, &span) ||
        __builtin_sub_overflow(we, span, &ws))
        return dm_fail(err, DM_E_INVALID_FIELD, "window",
                       "a window of %d x %" PRId64 " ms ending at %" PRId64
                       " falls outside the time range",
                       window_candles, tf_ms, end);
    *window_start = ws;
    *window_end = we;
    return DM_OK;
}

/* ---- the matrix ---- */

/* The returns of one series inside the window, at the times they belong to. */
typedef struct {
    const int64_t *ts;
    double *ret;
    size_t n;
    size_t from; /* index in the series of the first return */
} run;

/* First index whose time is after t (n when none is). */
static size_t first_after(const int64_t *ts, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static dm_code locate(const dm_corr_series *s, int64_t ws, int64_t we, run *out, bool *in_window,
                      dm_err *err)
{
    if (s->symbol == NULL)
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "a series has no symbol");
    if (s->n > 0 && (s->ts == NULL || s->close == NULL))
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "%s has %zu candles but no data",
                       s->symbol, s->n);
    size_t lo = first_after(s->ts, s->n, ws), hi = first_after(s->ts, s->n, we);
    *in_window = hi > lo;
    /* The first candle of a series has no return; the one before the window lends its
     * close to the window's first return. */
    out->from = lo > 0 ? lo : 1;
    out->n = hi > out->from ? hi - out->from : 0;
    out->ts = out->n ? s->ts + out->from : NULL;
    return DM_OK;
}

/* Checks the slice the returns come from, then takes them. */
static dm_code take_returns(const dm_corr_series *s, run *r, dm_err *err)
{
    if (r->n == 0)
        return DM_OK;
    for (size_t k = r->from - 1; k < r->from + r->n; k++) {
        double c = s->close[k];
        if (!(isfinite(c) && c > 0))
            return dm_fail(err, DM_E_INVALID_FIELD, "close",
                           "%s close %g at %" PRId64 " must be a positive number", s->symbol, c,
                           s->ts[k]);
        if (k >= r->from && s->ts[k] <= s->ts[k - 1])
            return dm_fail(err, DM_E_INVALID_FIELD, "ts",
                           "%s candle times must ascend: %" PRId64 " follows %" PRId64, s->symbol,
                           s->ts[k], s->ts[k - 1]);
        if (k >= r->from)
            r->ret[k - r->from] = log(c / s->close[k - 1]);
    }
    return DM_OK;
}

/* Two passes (means, then centred sums): the one-pass formula loses its digits to
 * cancellation when the mean is large next to the spread. Zero variance is judged on the
 * values themselves, since a constant run's rounded mean can leave a centred sum of
 * rounding dust that would pass for a variance. */
static bool pearson(const double *x, const double *y, size_t n, double *r)
{
    if (n == 0)
        return false;
    double mx = 0, my = 0;
    bool x_varies = false, y_varies = false;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
        x_varies |= x[i] != x[0];
        y_varies |= y[i] != y[0];
    }
    if (!(x_varies && y_varies))
        return false;
    mx /= (double)n;
    my /= (double)n;
    double sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    double den = sqrt(sxx) * sqrt(syy);
    if (!(den > 0))
        return false;
    double v = sxy / den;
    *r = v > 1 ? 1 : v < -1 ? -1 : v;
    return true;
}

/* Merges two runs on their times into x and y (room for the shorter run). */
static size_t shared(const run *a, const run *b, double *x, double *y)
{
    size_t i = 0, j = 0, k = 0;
    while (i < a->n && j < b->n) {
        if (a->ts[i] < b->ts[j]) {
            i++;
        } else if (a->ts[i] > b->ts[j]) {
            j++;
        } else {
            x[k] = a->ret[i++];
            y[k++] = b->ret[j++];
        }
    }
    return k;
}

static dm_code check_symbols(const dm_corr_series *s, size_t n_sym, dm_err *err)
{
    for (size_t i = 0; i < n_sym; i++)
        for (size_t j = i + 1; j < n_sym; j++)
            if (s[i].symbol && s[j].symbol && strcmp(s[i].symbol, s[j].symbol) == 0)
                return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "%s appears twice", s[i].symbol);
    return DM_OK;
}

static dm_code matrix_alloc(dm_corr_matrix *m, size_t n_sym)
{
    if (n_sym > 0 && n_sym > SIZE_MAX / n_sym)
        return DM_E_INTERNAL;
    size_t cells = n_sym * n_sym;
    m->n_sym = n_sym;
    m->r = alloc_n(cells, sizeof *m->r);
    m->pairs = alloc_n(cells, sizeof *m->pairs);
    m->has = alloc_n(cells, sizeof *m->has);
    m->has_candles = alloc_n(n_sym, sizeof *m->has_candles);
    m->in_window = alloc_n(n_sym, sizeof *m->in_window);
    return m->r && m->pairs && m->has && m->has_candles && m->in_window ? DM_OK : DM_E_INTERNAL;
}

/* The returns of every series go into one buffer, followed by room for one pair's values
 * (x and y, as long as the longest run). */
static dm_code load_runs(const dm_corr_series *s, dm_corr_matrix *m, run *runs, double **buf,
                         double **x, double **y, dm_err *err)
{
    size_t total = 0, longest = 0;
    for (size_t i = 0; i < m->n_sym; i++) {
        dm_code c = locate(&s[i], m->window_start, m->window_end, &runs[i], &m->in_window[i], err);
        if (c != DM_OK)
            return c;
        m->has_candles[i] = s[i].n > 0;
        total += runs[i].n;
        longest = runs[i].n > longest ? runs[i].n : longest;
    }
    if ((*buf = alloc_n(total + 2 * longest, sizeof **buf)) == NULL)
        return out_of_memory(err);
    *x = *buf + total;
    *y = *x + longest;
    for (size_t i = 0, off = 0; i < m->n_sym; off += runs[i].n, i++) {
        runs[i].ret = *buf + off;
        dm_code c = take_returns(&s[i], &runs[i], err);
        if (c != DM_OK)
            return c;
    }
    return DM_OK;
}

static void fill_pairs(dm_corr_matrix *m, const run *runs, double *x, double *y)
{
    size_t n = m->n_sym;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            size_t k = shared(&runs[i], &runs[j], x, y);
            double r = 0;
            bool has = (int64_t)k >= m->min_pairs && pearson(x, y, k, &r);
            m->pairs[i * n + j] = m->pairs[j * n + i] = (int64_t)k;
            m->has[i * n + j] = m->has[j * n + i] = has;
            m->r[i * n + j] = m->r[j * n + i] = has ? r : 0;
        }
    }
}

dm_code dm_corr_matrix_compute(const dm_corr_series *s, size_t n_sym, int64_t window_start,
                               int64_t window_end, int min_pairs, dm_corr_matrix *out, dm_err *err)
{
    memset(out, 0, sizeof *out);
    if (window_end < window_start)
        return dm_fail(err, DM_E_INVALID_FIELD, "window",
                       "window end %" PRId64 " is before its start %" PRId64, window_end,
                       window_start);
    if (min_pairs < 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "min_pairs", "min_pairs %d must not be negative",
                       min_pairs);
    dm_code c = check_symbols(s, n_sym, err);
    if (c != DM_OK)
        return c;
    if (matrix_alloc(out, n_sym) != DM_OK) {
        dm_corr_matrix_free(out);
        return out_of_memory(err);
    }
    out->window_start = window_start;
    out->window_end = window_end;
    out->min_pairs = min_pairs;
    run *runs = alloc_n(n_sym, sizeof *runs);
    double *buf = NULL, *x = NULL, *y = NULL;
    c = runs ? load_runs(s, out, runs, &buf, &x, &y, err) : out_of_memory(err);
    if (c == DM_OK)
        fill_pairs(out, runs, x, y);
    else
        dm_corr_matrix_free(out);
    free(buf);
    free(runs);
    return c;
}

void dm_corr_matrix_free(dm_corr_matrix *m)
{
    free(m->r);
    free(m->pairs);
    free(m->has);
    free(m->has_candles);
    free(m->in_window);
    memset(m, 0, sizeof *m);
}

/* ---- answers derived from the matrix ---- */

static bool linked(const dm_corr_matrix *m, size_t i, size_t j, double threshold)
{
    size_t c = dm_corr_cell(m, i, j);
    return m->has[c] && fabs(m->r[c]) >= threshold;
}

static dm_code check_threshold(double threshold, dm_err *err)
{
    if (!(threshold >= 0 && threshold <= 1))
        return dm_fail(err, DM_E_INVALID_FIELD, "threshold", "threshold %g must be within 0..1",
                       threshold);
    return DM_OK;
}

typedef struct {
    double key;
    const char *symbol;
    dm_corr_row row;
} ranked_row;

static int by_strength(const void *pa, const void *pb)
{
    const ranked_row *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return strcmp(a->symbol, b->symbol);
}

dm_code dm_corr_for(const dm_corr_matrix *m, const dm_corr_series *s, size_t i, double threshold,
                    dm_corr_row **rows, size_t *n_rows, dm_err *err)
{
    *rows = NULL;
    *n_rows = 0;
    if (i >= m->n_sym)
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "symbol index %zu of %zu", i, m->n_sym);
    dm_code c = check_threshold(threshold, err);
    if (c != DM_OK)
        return c;
    ranked_row *tmp = alloc_n(m->n_sym, sizeof *tmp);
    if (tmp == NULL)
        return out_of_memory(err);
    size_t n = 0;
    for (size_t j = 0; j < m->n_sym; j++) {
        if (j == i || !linked(m, i, j, threshold))
            continue;
        size_t cell = dm_corr_cell(m, i, j);
        tmp[n++] = (ranked_row){fabs(m->r[cell]), s[j].symbol, {j, m->r[cell], m->pairs[cell]}};
    }
    qsort(tmp, n, sizeof *tmp, by_strength);
    if (n > 0 && (*rows = malloc(n * sizeof **rows)) == NULL) {
        free(tmp);
        return out_of_memory(err);
    }
    for (size_t k = 0; k < n; k++)
        (*rows)[k] = tmp[k].row;
    *n_rows = n;
    free(tmp);
    return DM_OK;
}

/* ---- the graph ---- */

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
