/* Exact correlations between symbols over one window of one timeframe, and the graph
 * views derived from them. Pure: no I/O, no globals; the caller loads the candles, keeps
 * them alive for the call and owns them.
 *
 * The contract (checked by independent clients to 1e-6; n and the window bounds exact):
 * - The return at a candle is ln(close / close of the previous stored candle of the same
 *   series), whatever the gap: the first return in a window uses a close from before
 *   window_start, and a series' first candle has no return.
 * - r of two symbols is the Pearson correlation of their returns at the open times t both
 *   series have, window_start < t <= window_end; n counts those times. n < min_pairs, or
 *   zero variance on either side: no correlation. r is clamped to [-1, 1].
 * - Everything ordered "by symbol" uses strcmp on the series' symbols. */
#ifndef DM_CORREL_H
#define DM_CORREL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define DM_CORR_DEPTH_MIN 1
#define DM_CORR_DEPTH_MAX 5

/* One symbol's candles in one timeframe. Times are strictly ascending and closes > 0 and
 * finite; both are checked on the slice a window uses (the candle before it included),
 * the rest is the caller's promise, since the window is found by binary search. */
typedef struct {
    const char *symbol; /* "EUR/USD"; unique among the series of a call */
    const int64_t *ts;  /* candle open times, Unix ms */
    const double *close;
    size_t n;
} dm_corr_series;

/* window_end = end rounded down to a multiple of tf_ms (floor, also below zero);
 * window_start = window_end - window_candles * tf_ms. invalid_field when tf_ms or
 * window_candles is not positive or a bound falls outside int64. */
dm_code dm_corr_window(int64_t end, int64_t tf_ms, int window_candles, int64_t *window_start,
                       int64_t *window_end, dm_err *err);

/* Every pair at once for one window: the scheduled refresh keeps this and each request
 * derives its answer from it. Cell (i, j) is at i * n_sym + j; the matrix is symmetric and
 * the diagonal never has a correlation. */
typedef struct {
    size_t n_sym;
    int64_t window_start, window_end;
    int min_pairs;
    double *r;         /* meaningful where has */
    int64_t *pairs;    /* shared return times, also where there is no correlation */
    bool *has;         /* the pair has a correlation */
    bool *has_candles; /* per symbol: any candle in the timeframe (else a request is not_found) */
    bool *in_window;   /* per symbol: a candle with window_start < ts <= window_end */
} dm_corr_matrix;

static inline size_t dm_corr_cell(const dm_corr_matrix *m, size_t i, size_t j)
{
    return i * m->n_sym + j;
}

/* O(n_sym^2 x window): each series' window is found by binary search, each pair merges
 * two sorted runs of times and sums in two passes (means, then centred sums). On failure
 * *out is left empty (safe to free). */
dm_code dm_corr_matrix_compute(const dm_corr_series *s, size_t n_sym, int64_t window_start,
                               int64_t window_end, int min_pairs, dm_corr_matrix *out, dm_err *err);
void dm_corr_matrix_free(dm_corr_matrix *m);

typedef struct {
    size_t other; /* index into the series */
    double r;
    int64_t n;
} dm_corr_row;

/* The correlations of symbol i: every other symbol with a correlation and |r| >= threshold
 * (0..1), by |r| descending, ties by symbol. *rows is malloc'd (caller frees; NULL when
 * *n_rows is 0). */
dm_code dm_corr_for(const dm_corr_matrix *m, const dm_corr_series *s, size_t i, double threshold,
                    dm_corr_row **rows, size_t *n_rows, dm_err *err);

typedef struct {
    size_t a, b; /* symbol of a < symbol of b */
    double r;
    int64_t n;
} dm_corr_edge;

typedef struct {
    size_t a, b; /* symbol of a < symbol of b */
    double r;
} dm_corr_link;

typedef struct {
    /* Reachable from the start within depth hops over pairs with |r| >= threshold, with
     * their breadth-first depth (start 0), by depth then symbol. */
    size_t *node;
    int *depth;
    size_t n_nodes;
    /* Every pair of nodes with |r| >= threshold, by a then b. */
    dm_corr_edge *edge;
    size_t n_edges;
    /* Connected components at the threshold of every symbol with a candle in the window,
     * singletons included; each by symbol, largest first, ties by first symbol. */
    size_t **cluster;
    size_t *cluster_len;
    size_t n_clusters;
    size_t *cluster_member; /* storage behind cluster[] */
    /* Mantegna's minimum spanning forest of the nodes over every pair with a correlation,
     * on the distance sqrt(2 (1 - r)); Kruskal, ties by distance, then a, then b;
     * listed by a then b. */
    dm_corr_link *mst;
    size_t n_mst;
} dm_corr_graph;

/* depth 1..5, threshold 0..1 (invalid_field otherwise); not_found when the start symbol
 * has no candle in the timeframe. On failure *out is left empty (safe to free). */
dm_code dm_corr_graph_build(const dm_corr_matrix *m, const dm_corr_series *s, size_t start,
                            int depth, double threshold, dm_corr_graph *out, dm_err *err);
void dm_corr_graph_free(dm_corr_graph *g);

#endif
