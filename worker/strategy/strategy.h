/* The routing/caching/pool/performance strategy (the platform spec's
 * DATA_MANAGER_STRATEGY as JSON). Pure data: parse + validate + defaults, no I/O
 * besides reading the file. A strategy is immutable once loaded. */
#ifndef DM_STRATEGY_H
#define DM_STRATEGY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

typedef enum {
    DM_BK_TIMESCALE, DM_BK_CLICKHOUSE, DM_BK_DRAGONFLY, DM_BK_WEAVIATE, DM_BK_ARANGODB,
    DM_BK_L1, DM_BK_FALLBACK, DM_BK_COUNT
} dm_backend_id;

/* Operation names are the platform spec's strategy keys. */
typedef enum {
    DM_OP_SAVE_TICK, DM_OP_SAVE_CANDLE, DM_OP_SAVE_CANDLES_BULK, DM_OP_SAVE_EVENT,
    DM_OP_GET_LATEST_TICK, DM_OP_GET_CANDLES, DM_OP_GET_HISTORICAL, DM_OP_GET_EVENTS,
    DM_OP_COMPUTE_AGGREGATES, DM_OP_FIND_PATTERNS, DM_OP_SIMILARITY_SEARCH,
    DM_OP_GET_CORRELATIONS, DM_OP_GRAPH_ANALYSIS, DM_OP_COUNT
} dm_op;

#define DM_ROUTE_MAX 8

typedef struct {
    dm_backend_id targets[DM_ROUTE_MAX];
    int n;
} dm_route;

typedef struct {
    int min_size, max_size;
    int timeout_s;
} dm_pool_cfg;

typedef struct {
    char version[64];
    dm_route routing[DM_OP_COUNT];
    struct {
        int tick_ttl_s, candle_ttl_s, historical_ttl_s, aggregates_ttl_s, patterns_ttl_s,
            correlations_ttl_s;
        int l1_ttl_ms, l1_max_entries;
        int candle_cache_depth; /* newest candles kept per (symbol, timeframe) in L2 */
    } cache;
    dm_pool_cfg pools[DM_BK_COUNT];
    struct {
        int batch_size, query_timeout_s, retry_max_attempts;
        double retry_backoff_multiplier;
        int circuit_breaker_threshold, circuit_breaker_timeout_s;
        /* A ClickHouse consumer waits this long to fill a batch: ClickHouse wants few,
         * large inserts (each makes a part to merge), not one per handful of ticks. */
        int clickhouse_batch_linger_ms;
        int batch_linger_ms; /* the other backends' consumers of ticks and single candles */
        /* A message delivered more often than this (a poison message, a backend that
         * keeps failing on it) goes to the DLQ instead of looping forever. A consumer
         * whose backend is down does not fetch, so an outage does not count. */
        int max_deliveries;
    } perf;
    struct {
        bool query_cache, prepared_statements, connection_pooling, batch_operations;
    } opt;
    struct {
        int window;           /* closes per window Weaviate indexes */
        unsigned timeframes;  /* mask of 1 << dm_tf indexed in Weaviate */
        bool hnsw;            /* Weaviate's index: HNSW (approximate) or flat (exact) */
        int max_closes;       /* closes the in-worker engines may hold, every timeframe */
    } patterns;
    struct {
        int min_pairs;        /* fewer shared returns: no correlation */
        int window_candles;   /* the default window */
        int refresh_s;        /* the scheduled recomputation of the default window */
        unsigned timeframes;  /* mask of 1 << dm_tf refreshed on schedule */
    } correlations;
} dm_strategy;

const char *dm_backend_name(dm_backend_id id);
/* Accepts the spec's alias "dragonfly_cache". */
bool dm_backend_parse(const char *s, dm_backend_id *out);
const char *dm_op_name(dm_op op);

void dm_strategy_defaults(dm_strategy *s);
/* Parses and validates completely; on error *s is untouched and err names the field. */
dm_code dm_strategy_parse(const char *json, size_t len, dm_strategy *s, dm_err *err);
dm_code dm_strategy_load(const char *path, dm_strategy *s, dm_err *err);
bool dm_route_has(const dm_route *r, dm_backend_id id);

#endif
