/* Readable renderings of the analysis replies (dm.v1.patterns.find/similar,
 * dm.v1.correlations, dm.v1.graph): pure functions of what was asked and the reply, so
 * they can be tested without a server. Times print as UTC ("2020-03-09 10:00 UTC"),
 * scores and correlations with 4 decimals. A member missing from the reply prints "-". */
#ifndef DMCTL_ANALYSIS_FMT_H
#define DMCTL_ANALYSIS_FMT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>

/* What `dmctl patterns` asked: the query window and the search's bounds. */
typedef struct pattern_ask {
    const char *symbol, *timeframe;
    int64_t first_ts, last_ts; /* open times of the query window's first and last candle */
    int64_t window;            /* W, the number of closes */
    const char *in;            /* search only this symbol; NULL: every symbol */
    bool similar;              /* dm.v1.patterns.similar with threshold */
    double threshold;
    int64_t limit; /* below 1: not given (the worker's default) */
    bool has_start, has_end;
    int64_t start, end;
    int64_t zone; /* below 0: not given (the worker's default) */
} pattern_ask;

/* What `dmctl correlations` and `dmctl graph` asked. */
typedef struct correl_ask {
    const char *symbol, *timeframe;
    bool has_threshold;
    double threshold;
    int64_t depth; /* graph only; below 1: not given (the worker's default) */
} correl_ask;

void fmt_patterns(FILE *out, const pattern_ask *a, const cJSON *reply);
void fmt_correlations(FILE *out, const correl_ask *a, const cJSON *reply);
void fmt_graph(FILE *out, const correl_ask *a, const cJSON *reply);

#endif
