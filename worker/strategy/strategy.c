#include "strategy.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/file.h"

#define DM_STRATEGY_MAX_BYTES (1 << 20)

static const char *const BACKENDS[DM_BK_COUNT] = {"timescale", "clickhouse", "dragonfly",
                                                  "weaviate",  "arangodb",   "l1", "fallback"};
static const char *const OPS[DM_OP_COUNT] = {
    "save_tick",      "save_candle",        "save_candles_bulk", "save_event",
    "get_latest_tick", "get_candles",       "get_historical",    "get_events",
    "compute_aggregates", "find_patterns",  "similarity_search", "get_correlations",
    "graph_analysis"};

const char *dm_backend_name(dm_backend_id id) { return id < DM_BK_COUNT ? BACKENDS[id] : "?"; }
const char *dm_op_name(dm_op op) { return op < DM_OP_COUNT ? OPS[op] : "?"; }

bool dm_backend_parse(const char *s, dm_backend_id *out)
{
    if (strcmp(s, "dragonfly_cache") == 0) {
        *out = DM_BK_DRAGONFLY;
        return true;
    }
    for (int i = 0; i < DM_BK_COUNT; i++) {
        if (strcmp(s, BACKENDS[i]) == 0) {
            *out = (dm_backend_id)i;
            return true;
        }
    }
    return false;
}

bool dm_route_has(const dm_route *r, dm_backend_id id)
{
    for (int i = 0; i < r->n; i++)
        if (r->targets[i] == id)
            return true;
    return false;
}

static void route(dm_strategy *s, dm_op op, int n, const dm_backend_id *ids)
{
    s->routing[op].n = n;
    memcpy(s->routing[op].targets, ids, sizeof(dm_backend_id) * (size_t)n);
}

void dm_strategy_defaults(dm_strategy *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->version, sizeof s->version, "builtin");
    const dm_backend_id T = DM_BK_TIMESCALE, C = DM_BK_CLICKHOUSE, D = DM_BK_DRAGONFLY,
                        W = DM_BK_WEAVIATE, A = DM_BK_ARANGODB, F = DM_BK_FALLBACK;
    route(s, DM_OP_SAVE_TICK, 2, (dm_backend_id[]){T, D});
    route(s, DM_OP_SAVE_CANDLE, 3, (dm_backend_id[]){T, C, D});
    route(s, DM_OP_SAVE_CANDLES_BULK, 3, (dm_backend_id[]){T, C, D});
    route(s, DM_OP_SAVE_EVENT, 1, (dm_backend_id[]){T});
    route(s, DM_OP_GET_LATEST_TICK, 2, (dm_backend_id[]){D, T});
    route(s, DM_OP_GET_CANDLES, 3, (dm_backend_id[]){D, C, T});
    route(s, DM_OP_GET_HISTORICAL, 2, (dm_backend_id[]){C, T});
    route(s, DM_OP_GET_EVENTS, 1, (dm_backend_id[]){T});
    route(s, DM_OP_COMPUTE_AGGREGATES, 2, (dm_backend_id[]){C, T});
    route(s, DM_OP_FIND_PATTERNS, 2, (dm_backend_id[]){W, F});
    route(s, DM_OP_SIMILARITY_SEARCH, 2, (dm_backend_id[]){W, F});
    route(s, DM_OP_GET_CORRELATIONS, 2, (dm_backend_id[]){A, F});
    route(s, DM_OP_GRAPH_ANALYSIS, 2, (dm_backend_id[]){A, F});
    s->cache.tick_ttl_s = 3600;
    s->cache.candle_ttl_s = 3600;
    s->cache.historical_ttl_s = 0;
    s->cache.aggregates_ttl_s = 300;
    s->cache.patterns_ttl_s = 0;
    s->cache.correlations_ttl_s = 3600;
    s->cache.l1_ttl_ms = 60000;
    s->cache.l1_max_entries = 1000;
    s->cache.candle_cache_depth = 1000;
    s->pools[DM_BK_TIMESCALE] = (dm_pool_cfg){5, 20, 30};
    s->pools[DM_BK_CLICKHOUSE] = (dm_pool_cfg){0, 10, 30};
    s->pools[DM_BK_DRAGONFLY] = (dm_pool_cfg){5, 50, 5};
    s->pools[DM_BK_WEAVIATE] = (dm_pool_cfg){0, 10, 30};
    s->pools[DM_BK_ARANGODB] = (dm_pool_cfg){0, 10, 30};
    s->perf.batch_size = 1000;
    s->perf.query_timeout_s = 30;
    s->perf.retry_max_attempts = 3;
    s->perf.retry_backoff_multiplier = 2;
    s->perf.circuit_breaker_threshold = 5;
    s->perf.circuit_breaker_timeout_s = 60;
    s->perf.clickhouse_batch_linger_ms = 500;
    s->perf.batch_linger_ms = 5;
    s->perf.max_deliveries = 30;
    s->patterns.window = 32;
    s->patterns.timeframes = 1u << DM_TF_1H;
    s->patterns.hnsw = false;
    s->patterns.max_closes = 5000000;
    s->correlations.min_pairs = 30;
    s->correlations.window_candles = 720;
    s->correlations.refresh_s = 3600;
    s->correlations.timeframes = 1u << DM_TF_1H;
    s->opt.query_cache = s->opt.prepared_statements = true;
    s->opt.connection_pooling = s->opt.batch_operations = true;
}

static dm_code parse_routing(const cJSON *obj, dm_strategy *s, dm_err *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        int op = -1;
        for (int i = 0; i < DM_OP_COUNT; i++)
            if (strcmp(it->string, OPS[i]) == 0)
                op = i;
        if (op < 0)
            return dm_fail(err, DM_E_INVALID_FIELD, "routing", "routing.%.40s: unknown operation",
                           it->string);
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) > DM_ROUTE_MAX)
            return dm_fail(err, DM_E_INVALID_FIELD, "routing",
                           "routing.%s must be an array of at most %d backend names", it->string,
                           DM_ROUTE_MAX);
        dm_route r = {.n = 0};
        const cJSON *b;
        cJSON_ArrayForEach(b, it)
        {
            dm_backend_id id;
            if (!cJSON_IsString(b) || !dm_backend_parse(b->valuestring, &id))
                return dm_fail(err, DM_E_INVALID_FIELD, "routing",
                               "routing.%s[%d]: unknown backend '%.40s' (timescale clickhouse "
                               "dragonfly weaviate arangodb l1 fallback)",
                               it->string, r.n, cJSON_IsString(b) ? b->valuestring : "(not a string)");
            if (dm_route_has(&r, id))
                return dm_fail(err, DM_E_INVALID_FIELD, "routing", "routing.%s lists %s twice",
                               it->string, BACKENDS[id]);
            r.targets[r.n++] = id;
        }
        s->routing[op] = r;
    }
    return DM_OK;
}

/* Integer setting in [min, max]; absent keeps the default. */
static dm_code get_int(const cJSON *obj, const char *section, const char *key, int min, int max,
                       int *out, dm_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v == NULL)
        return DM_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max)
        return dm_fail(err, DM_E_INVALID_FIELD, key, "%s.%s must be an integer in [%d, %d]",
                       section, key, min, max);
    *out = (int)v->valuedouble;
    return DM_OK;
}

static dm_code get_bool(const cJSON *obj, const char *key, bool *out, dm_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v == NULL)
        return DM_OK;
    if (!cJSON_IsBool(v))
        return dm_fail(err, DM_E_INVALID_FIELD, key, "optimization.%s must be true or false", key);
    *out = cJSON_IsTrue(v);
    return DM_OK;
}

static const cJSON *section(const cJSON *root, const char *name, dm_code *c, dm_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    *c = DM_OK;
    if (v != NULL && !cJSON_IsObject(v)) {
        *c = dm_fail(err, DM_E_INVALID_FIELD, name, "%s must be an object", name);
        return NULL;
    }
    return v;
}

static dm_code parse_cache(const cJSON *o, dm_strategy *s, dm_err *err)
{
    const int day = 86400 * 30;
    dm_code c;
    if ((c = get_int(o, "cache", "tick_ttl_seconds", 0, day, &s->cache.tick_ttl_s, err)) ||
        (c = get_int(o, "cache", "candle_ttl_seconds", 0, day, &s->cache.candle_ttl_s, err)) ||
        (c = get_int(o, "cache", "historical_ttl_seconds", 0, day, &s->cache.historical_ttl_s, err)) ||
        (c = get_int(o, "cache", "aggregates_ttl_seconds", 0, day, &s->cache.aggregates_ttl_s, err)) ||
        (c = get_int(o, "cache", "patterns_ttl_seconds", 0, day, &s->cache.patterns_ttl_s, err)) ||
        (c = get_int(o, "cache", "correlations_ttl_seconds", 0, day, &s->cache.correlations_ttl_s, err)) ||
        (c = get_int(o, "cache", "l1_ttl_ms", 0, 3600000, &s->cache.l1_ttl_ms, err)) ||
        (c = get_int(o, "cache", "l1_max_entries", 0, 1000000, &s->cache.l1_max_entries, err)) ||
        (c = get_int(o, "cache", "candle_cache_depth", 1, 10000, &s->cache.candle_cache_depth, err)))
        return c;
    /* A key that would promise what no code does is refused, not ignored. */
    if (s->cache.patterns_ttl_s != 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "patterns_ttl_seconds",
                       "cache.patterns_ttl_seconds must be 0: pattern searches are exact over the "
                       "newest candles and never cached");
    if (s->cache.historical_ttl_s != 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "historical_ttl_seconds",
                       "cache.historical_ttl_seconds must be 0: history pages are not cached (each is "
                       "read from ClickHouse or PostgreSQL, which hold it complete)");
    return DM_OK;
}

static dm_code parse_pools(const cJSON *o, dm_strategy *s, dm_err *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        dm_backend_id id;
        if (!dm_backend_parse(it->string, &id) || id >= DM_BK_L1)
            return dm_fail(err, DM_E_INVALID_FIELD, "connection_pools",
                           "connection_pools.%.40s: unknown backend", it->string);
        if (!cJSON_IsObject(it))
            return dm_fail(err, DM_E_INVALID_FIELD, "connection_pools",
                           "connection_pools.%s must be an object", it->string);
        dm_pool_cfg p = s->pools[id];
        dm_code c;
        char where[80];
        snprintf(where, sizeof where, "connection_pools.%s", it->string);
        /* The spec spells sizes two ways (min_size/max_size, min/max_connections). */
        if ((c = get_int(it, where, "min_size", 0, 1000, &p.min_size, err)) ||
            (c = get_int(it, where, "min_connections", 0, 1000, &p.min_size, err)) ||
            (c = get_int(it, where, "max_size", 1, 1000, &p.max_size, err)) ||
            (c = get_int(it, where, "max_connections", 1, 1000, &p.max_size, err)) ||
            (c = get_int(it, where, "timeout", 1, 3600, &p.timeout_s, err)))
            return c;
        if (p.min_size > p.max_size)
            return dm_fail(err, DM_E_INVALID_FIELD, "connection_pools",
                           "connection_pools.%s: min %d is above max %d", it->string, p.min_size,
                           p.max_size);
        s->pools[id] = p;
    }
    return DM_OK;
}

static dm_code parse_perf(const cJSON *o, dm_strategy *s, dm_err *err)
{
    dm_code c;
    if ((c = get_int(o, "performance", "batch_size", 1, 10000, &s->perf.batch_size, err)) ||
        (c = get_int(o, "performance", "query_timeout_seconds", 1, 3600, &s->perf.query_timeout_s, err)) ||
        (c = get_int(o, "performance", "retry_max_attempts", 1, 100, &s->perf.retry_max_attempts, err)) ||
        (c = get_int(o, "performance", "circuit_breaker_threshold", 1, 1000,
                     &s->perf.circuit_breaker_threshold, err)) ||
        (c = get_int(o, "performance", "circuit_breaker_timeout", 1, 86400,
                     &s->perf.circuit_breaker_timeout_s, err)) ||
        (c = get_int(o, "performance", "clickhouse_batch_linger_ms", 0, 10000,
                     &s->perf.clickhouse_batch_linger_ms, err)) ||
        (c = get_int(o, "performance", "batch_linger_ms", 0, 1000, &s->perf.batch_linger_ms, err)) ||
        (c = get_int(o, "performance", "max_deliveries", 1, 100000, &s->perf.max_deliveries, err)))
        return c;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "retry_backoff_multiplier");
    if (m != NULL) {
        if (!cJSON_IsNumber(m) || m->valuedouble < 1 || m->valuedouble > 10)
            return dm_fail(err, DM_E_INVALID_FIELD, "retry_backoff_multiplier",
                           "performance.retry_backoff_multiplier must be a number in [1, 10]");
        s->perf.retry_backoff_multiplier = m->valuedouble;
    }
    return DM_OK;
}

/* The platform spec's switches for what this service always does: true is the only
 * behaviour there is, so false is refused with what to set instead. */
static dm_code refuse_false_switches(const dm_strategy *s, dm_err *err)
{
    if (!s->opt.prepared_statements)
        return dm_fail(err, DM_E_INVALID_FIELD, "enable_prepared_statements",
                       "optimization.enable_prepared_statements must be true: every PostgreSQL "
                       "statement is prepared once per connection, values travel as parameters");
    if (!s->opt.connection_pooling)
        return dm_fail(err, DM_E_INVALID_FIELD, "enable_connection_pooling",
                       "optimization.enable_connection_pooling must be true: requests always borrow "
                       "pooled connections (size them with connection_pools, e.g. max_size 1)");
    if (!s->opt.batch_operations)
        return dm_fail(err, DM_E_INVALID_FIELD, "enable_batch_operations",
                       "optimization.enable_batch_operations must be true: writes are always "
                       "batched (performance.batch_size 1 writes one message at a time)");
    return DM_OK;
}

/* ["1h", "4h"] as a mask of 1 << dm_tf. */
static dm_code get_timeframes(const cJSON *o, const char *where, unsigned *mask, dm_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "timeframes"), *it;
    if (v == NULL)
        return DM_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "timeframes", "%s.timeframes must be a non-empty array such as [\"1h\"]", where);
    unsigned m = 0;
    cJSON_ArrayForEach(it, v)
    {
        dm_tf tf;
        if (!cJSON_IsString(it) || !dm_tf_parse(it->valuestring, &tf))
            return dm_fail(err, DM_E_INVALID_FIELD, "timeframes",
                           "%s.timeframes: '%.20s' is not a timeframe (1m 5m 15m 30m 1h 4h 1d 1w)", where,
                           cJSON_IsString(it) ? it->valuestring : "(not a string)");
        m |= 1u << tf;
    }
    *mask = m;
    return DM_OK;
}

static dm_code parse_patterns(const cJSON *o, dm_strategy *s, dm_err *err)
{
    dm_code c;
    if ((c = get_int(o, "patterns", "window", 8, 512, &s->patterns.window, err)) ||
        (c = get_int(o, "patterns", "max_closes", 1000, 100000000, &s->patterns.max_closes, err)) ||
        (c = get_timeframes(o, "patterns", &s->patterns.timeframes, err)))
        return c;
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(o, "index_type");
    if (ix != NULL) {
        if (!cJSON_IsString(ix) || (strcmp(ix->valuestring, "flat") != 0 && strcmp(ix->valuestring, "hnsw") != 0))
            return dm_fail(err, DM_E_INVALID_FIELD, "index_type",
                           "patterns.index_type must be \"flat\" (exact) or \"hnsw\" (approximate)");
        s->patterns.hnsw = strcmp(ix->valuestring, "hnsw") == 0;
    }
    return DM_OK;
}

static dm_code parse_correlations(const cJSON *o, dm_strategy *s, dm_err *err)
{
    dm_code c;
    if ((c = get_int(o, "correlations", "min_pairs", 3, 10000, &s->correlations.min_pairs, err)) ||
        (c = get_int(o, "correlations", "window_candles", 30, 10000, &s->correlations.window_candles, err)) ||
        (c = get_int(o, "correlations", "refresh_s", 60, 86400 * 7, &s->correlations.refresh_s, err)) ||
        (c = get_timeframes(o, "correlations", &s->correlations.timeframes, err)))
        return c;
    return DM_OK;
}

static dm_code parse_root(const cJSON *root, dm_strategy *s, dm_err *err)
{
    dm_code c;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (v == NULL)
        return dm_fail(err, DM_E_MISSING_FIELD, "version", "version is required");
    if (cJSON_IsNumber(v))
        snprintf(s->version, sizeof s->version, "%.15g", v->valuedouble);
    else if (cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) < sizeof s->version)
        snprintf(s->version, sizeof s->version, "%s", v->valuestring);
    else
        return dm_fail(err, DM_E_INVALID_FIELD, "version",
                       "version must be a number or a non-empty string under 64 bytes");
    const cJSON *sec;
    if (((sec = section(root, "routing", &c, err)) && (c = parse_routing(sec, s, err))) || c)
        return c;
    if (((sec = section(root, "cache", &c, err)) && (c = parse_cache(sec, s, err))) || c)
        return c;
    if (((sec = section(root, "connection_pools", &c, err)) && (c = parse_pools(sec, s, err))) || c)
        return c;
    if (((sec = section(root, "performance", &c, err)) && (c = parse_perf(sec, s, err))) || c)
        return c;
    if (((sec = section(root, "patterns", &c, err)) && (c = parse_patterns(sec, s, err))) || c)
        return c;
    if (((sec = section(root, "correlations", &c, err)) && (c = parse_correlations(sec, s, err))) || c)
        return c;
    if ((sec = section(root, "optimization", &c, err)) != NULL) {
        if ((c = get_bool(sec, "enable_query_cache", &s->opt.query_cache, err)) ||
            (c = get_bool(sec, "enable_prepared_statements", &s->opt.prepared_statements, err)) ||
            (c = get_bool(sec, "enable_connection_pooling", &s->opt.connection_pooling, err)) ||
            (c = get_bool(sec, "enable_batch_operations", &s->opt.batch_operations, err)))
            return c;
        c = refuse_false_switches(s, err);
    }
    return c;
}

dm_code dm_strategy_parse(const char *json, size_t len, dm_strategy *out, dm_err *err)
{
    if (len > DM_STRATEGY_MAX_BYTES)
        return dm_fail(err, DM_E_TOO_LARGE, "", "strategy file is larger than 1 MB");
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return dm_fail(err, DM_E_INVALID_JSON, "", "strategy is not a JSON object");
    }
    dm_strategy s;
    dm_strategy_defaults(&s);
    dm_code c = parse_root(root, &s, err);
    cJSON_Delete(root);
    if (c == DM_OK)
        *out = s;
    return c;
}

dm_code dm_strategy_load(const char *path, dm_strategy *s, dm_err *err)
{
    char *buf;
    size_t n;
    if (dm_read_file(path, DM_STRATEGY_MAX_BYTES + 1, &buf, &n, err) != DM_OK)
        return err->code;
    dm_code c = dm_strategy_parse(buf, n, s, err);
    free(buf);
    return c;
}
