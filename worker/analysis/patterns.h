/* Exact pattern search over stored closes: which windows of W consecutive candles move
 * most like a query of W values. Pure (no I/O): the caller loads series and holds them.
 *
 * Contract (v1, checked by independent clients):
 * - A window is W consecutive candles of one series (time gaps ignored); window i covers
 *   candles i..i+W-1, starts at ts[i] and ends at ts[i+W-1].
 * - Its score is the Pearson correlation of its closes with the query. A window or query is
 *   flat when the population standard deviation of its values is below DM_PATTERN_FLAT
 *   (STUMPY's threshold): flat windows are never returned, a flat query is invalid.
 * - Ranking: score descending; scores within DM_PATTERN_TIE of each other tie and are
 *   ordered by symbol (strcmp), then start index. So that the order is always defined, a
 *   run of scores each within DM_PATTERN_TIE of the next ties as a whole. Walking that
 *   ranking, a window is left out when an already taken one of the same series starts
 *   within `zone` candles of it.
 * - Answers equal a brute-force double-precision computation: same windows, same order,
 *   scores within DM_PATTERN_TIE. The FFT only screens; every score that decides an order
 *   or is returned is computed directly from the closes.
 *
 * Concurrency: any number of threads may search the same series at once while none
 * upserts it (callers hold a read lock around searches, a write lock around upserts). The
 * spectrum a series memoises for searches is built under the series' own mutex. */
#ifndef DM_PATTERNS_H
#define DM_PATTERNS_H

#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_PATTERN_W_MIN 8
#define DM_PATTERN_W_MAX 512
#define DM_PATTERN_FIND_LIMIT_MAX 100
#define DM_PATTERN_SIMILAR_LIMIT_MAX 1000
#define DM_PATTERN_ZONE_MAX 512
#define DM_PATTERN_FLAT 1e-7
#define DM_PATTERN_TIE 1e-9

/* One (symbol, timeframe) series held in memory: closes ascending by open time. */
typedef struct dm_pseries dm_pseries;

dm_pseries *dm_pseries_create(const char *symbol);
void dm_pseries_destroy(dm_pseries *s);
/* Inserts or replaces the close at ts, keeping ts ascending and unique (appends are O(1)
 * amortised). Drops the memoised spectrum. false, leaving the series unchanged, when memory
 * runs out or close is not finite. */
bool dm_pseries_upsert(dm_pseries *s, int64_t ts, double close);
size_t dm_pseries_len(const dm_pseries *s);
const char *dm_pseries_symbol(const dm_pseries *s);
const int64_t *dm_pseries_ts(const dm_pseries *s);
const double *dm_pseries_close(const dm_pseries *s);
/* Memory held, memo included, for a bound the caller keeps over all series. */
size_t dm_pseries_bytes(const dm_pseries *s);

typedef struct {
    const double *query; /* w finite values, not flat */
    size_t w;            /* DM_PATTERN_W_MIN..DM_PATTERN_W_MAX */
    bool similar;        /* false: find, the best `limit`; true: every score >= threshold */
    double threshold;    /* similar mode only, in [-1, 1] */
    size_t limit;        /* find: 1..100; similar: 1..1000 */
    int64_t start, end;  /* window qualifies when start <= ts[i] and ts[i+w-1] < end */
    int zone;            /* exclusion zone in candles; < 0: ceil(w/4); 0: none; max 512 */
    const char *field;   /* names the query in errors; NULL: "pattern_vector" */
} dm_pattern_query;

typedef struct {
    size_t series; /* index into the array searched */
    size_t first;  /* start index of the window in that series */
    double score;  /* in [-1, 1] */
} dm_pattern_hit;

typedef struct {
    dm_pattern_hit *v;
    size_t n, cap;
} dm_pattern_hits;

/* Searches the n series (one for a symbol filter) and fills *out with the hits, best
 * first, reusing its buffer (the caller zero-initialises it once and frees it with
 * dm_pattern_hits_free). A series shorter than w has no windows and is no error.
 * DM_E_INVALID_FIELD for a query out of contract (out untouched), DM_E_INTERNAL when
 * memory runs out (out then empty). */
dm_code dm_pattern_search(dm_pseries *const *series, size_t n, const dm_pattern_query *q,
                          dm_pattern_hits *out, dm_err *err);
void dm_pattern_hits_free(dm_pattern_hits *h);

/* z-normalises x (population mean and std, two passes) into out, which may be x. false,
 * leaving out untouched, when x is flat or not finite: the same rule the search applies,
 * for adapters that store normalised windows elsewhere. */
bool dm_znorm(const double *x, size_t w, double *out);

#endif
