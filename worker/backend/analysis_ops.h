/* The queries and answers of the analysis operations (find_patterns, similarity_search,
 * get_correlations, graph_analysis) as every source of their routes sees them: Weaviate,
 * ArangoDB and the in-worker engines (`fallback`). Requests arrive validated and resolved
 * (defaults applied, windows rounded), so every source answers the same question; the
 * definitions of scores and correlations are in subjects/README.md. */
#ifndef DM_ANALYSIS_OPS_H
#define DM_ANALYSIS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define DM_PATTERN_W_MIN 8
#define DM_PATTERN_W_MAX 512

typedef struct {
    const double *query; /* the W closes asked for */
    size_t w;
    bool similar;        /* false: the best `limit`; true: every score >= threshold, at most limit */
    double threshold;
    size_t limit;
    const char *symbol; /* NULL: every series of the timeframe */
    dm_tf tf;
    int64_t start, end; /* a window qualifies when start <= its first open time, its last < end */
    int zone;           /* exclusion zone in candles, resolved (>= 0) */
} dm_pattern_request;

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    int64_t timestamp;       /* open time of the window's last candle */
    int64_t start_timestamp; /* of its first */
    double score;
} dm_pattern_match;

typedef struct {
    dm_pattern_match *v;
    size_t n, cap;
    bool exact; /* false only from an approximate index */
} dm_pattern_vec;

dm_pattern_match *dm_pattern_vec_push(dm_pattern_vec *vec);
void dm_pattern_vec_free(dm_pattern_vec *vec);

typedef struct {
    const char *symbol; /* the start symbol of a graph */
    dm_tf tf;
    int64_t window_start, window_end; /* (start, end], Unix ms, end a multiple of tf */
    int window_candles;
    bool default_window; /* window_end and window_candles are the strategy's defaults */
    double threshold;
    int min_pairs;
    int depth; /* graph only */
} dm_corr_request;

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    double r;
    int64_t n;
} dm_corr_entry;

typedef struct {
    dm_corr_entry *v;
    size_t n, cap;
} dm_corr_vec;

typedef struct {
    char a[DM_SYMBOL_MAX + 1], b[DM_SYMBOL_MAX + 1];
    double r;
    int64_t n;
} dm_corr_pair;

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    int depth;
} dm_graph_node;

/* A graph answer: nodes by depth then symbol; edges and mst by a then b; clusters as runs
 * of `cluster_symbols` (cluster_len[i] symbols each), largest first. */
typedef struct {
    dm_graph_node *nodes;
    size_t n_nodes;
    dm_corr_pair *edges;
    size_t n_edges;
    dm_corr_pair *mst; /* n unused */
    size_t n_mst;
    char (*cluster_symbols)[DM_SYMBOL_MAX + 1];
    size_t *cluster_len;
    size_t n_clusters, n_cluster_symbols;
} dm_graph_answer;

dm_corr_entry *dm_corr_vec_push(dm_corr_vec *vec);
void dm_corr_vec_free(dm_corr_vec *vec);
void dm_graph_answer_free(dm_graph_answer *g);

/* The default window's matrix as the scheduled refresh stores it. */
typedef struct {
    dm_tf tf;
    int64_t run; /* the refresh interval it belongs to: floor(now / refresh_s) */
    int64_t window_start, window_end;
    int window_candles;
    const char *const *symbols; /* those with candles in the window */
    size_t n_symbols;
    const dm_corr_pair *pairs; /* every pair with a correlation, a < b */
    size_t n_pairs;
} dm_corr_snapshot;

/* Where a backend hands series closes while reading a timeframe: rows come ordered by
 * symbol, then open time. Returns false to stop (out of memory, over a bound). */
typedef bool (*dm_close_sink)(void *ctx, const char *symbol, int64_t ts, double close);

#endif
