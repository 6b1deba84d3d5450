/* Strategy (worker/strategy): the repository's strategy file loads as written, the spec's
 * aliases are understood, and a bad file is refused whole, naming the offending field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strategy/strategy.h"

#ifndef DM_STRATEGY_JSON
#error "DM_STRATEGY_JSON must name strategy/strategy.json"
#endif

#define assert_err(e, code, field, ...)                                                     \
    check_err(&(e), code, field, (const char *const[]){__VA_ARGS__, NULL}, __FILE__, __LINE__)

static void check_err(const dm_err *e, dm_code code, const char *field,
                      const char *const *needles, const char *file, int line)
{
    if (e->code != code)
        fail_msg("%s:%d: code %s, want %s (field '%s': %s)", file, line, dm_code_name(e->code),
                 dm_code_name(code), e->field, e->message);
    if (strcmp(e->field, field) != 0)
        fail_msg("%s:%d: field '%s', want '%s' (%s)", file, line, e->field, field, e->message);
    for (; *needles; needles++)
        if (strstr(e->message, *needles) == NULL)
            fail_msg("%s:%d: message \"%s\" does not mention \"%s\"", file, line, e->message,
                     *needles);
}

static void assert_route(const dm_route *r, int n, const dm_backend_id *want)
{
    if (r->n != n)
        fail_msg("route has %d targets, want %d", r->n, n);
    for (int i = 0; i < n; i++)
        if (r->targets[i] != want[i])
            fail_msg("target %d is %s, want %s", i, dm_backend_name(r->targets[i]),
                     dm_backend_name(want[i]));
}

#define ROUTE(s, op, ...)                                                                    \
    assert_route(&(s).routing[op], (int)(sizeof((dm_backend_id[]){__VA_ARGS__}) /           \
                                         sizeof(dm_backend_id)),                             \
                 (dm_backend_id[]){__VA_ARGS__})

/* Parses `json` (single quotes stand for double quotes) into a poisoned strategy. */
static dm_code parse(const char *json, dm_strategy *s, dm_err *e)
{
    char *text = strdup(json);
    for (char *p = text; *p; p++)
        if (*p == '\'')
            *p = '"';
    memset(s, 0xA5, sizeof *s);
    memset(e, 0, sizeof *e);
    dm_code c = dm_strategy_parse(text, strlen(text), s, e);
    free(text);
    return c;
}

static void loads_the_repository_strategy_file(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e = {0};
    if (dm_strategy_load(DM_STRATEGY_JSON, &s, &e) != DM_OK)
        fail_msg("%s: %s (field %s)", DM_STRATEGY_JSON, e.message, e.field);
    assert_string_equal(s.version, "2");
    const dm_backend_id T = DM_BK_TIMESCALE, C = DM_BK_CLICKHOUSE, D = DM_BK_DRAGONFLY,
                        W = DM_BK_WEAVIATE, A = DM_BK_ARANGODB, F = DM_BK_FALLBACK, L = DM_BK_L1;
    ROUTE(s, DM_OP_SAVE_TICK, T, D);
    ROUTE(s, DM_OP_SAVE_CANDLE, T, C, D, W);
    ROUTE(s, DM_OP_SAVE_CANDLES_BULK, T, C, D, W);
    ROUTE(s, DM_OP_SAVE_EVENT, T);
    ROUTE(s, DM_OP_GET_LATEST_TICK, L, D, T);
    ROUTE(s, DM_OP_GET_CANDLES, L, D, T, C);
    ROUTE(s, DM_OP_GET_HISTORICAL, C, T);
    ROUTE(s, DM_OP_GET_EVENTS, T);
    ROUTE(s, DM_OP_COMPUTE_AGGREGATES, C, T);
    ROUTE(s, DM_OP_FIND_PATTERNS, W, F);
    ROUTE(s, DM_OP_SIMILARITY_SEARCH, W, F);
    ROUTE(s, DM_OP_GET_CORRELATIONS, A, F);
    ROUTE(s, DM_OP_GRAPH_ANALYSIS, A, F);
    assert_int_equal(s.cache.tick_ttl_s, 3600);
    assert_int_equal(s.cache.aggregates_ttl_s, 300);
    assert_int_equal(s.cache.historical_ttl_s, 0);
    assert_int_equal(s.cache.l1_ttl_ms, 60000);
    assert_int_equal(s.cache.candle_cache_depth, 1000);
    assert_int_equal(s.pools[DM_BK_TIMESCALE].min_size, 5);
    assert_int_equal(s.pools[DM_BK_TIMESCALE].max_size, 20);
    assert_int_equal(s.pools[DM_BK_TIMESCALE].timeout_s, 30);
    /* the spec's other spelling: min_connections / max_connections */
    assert_int_equal(s.pools[DM_BK_DRAGONFLY].min_size, 5);
    assert_int_equal(s.pools[DM_BK_DRAGONFLY].max_size, 50);
    assert_int_equal(s.pools[DM_BK_DRAGONFLY].timeout_s, 5);
    assert_int_equal(s.pools[DM_BK_CLICKHOUSE].max_size, 10);
    assert_int_equal(s.perf.batch_size, 1000);
    assert_int_equal(s.perf.retry_max_attempts, 3);
    assert_true(s.perf.retry_backoff_multiplier == 2.0);
    assert_int_equal(s.perf.circuit_breaker_threshold, 5);
    assert_int_equal(s.perf.circuit_breaker_timeout_s, 60);
    assert_int_equal(s.perf.clickhouse_batch_linger_ms, 500);
    assert_int_equal(s.perf.batch_linger_ms, 5);
    assert_int_equal(s.perf.max_deliveries, 30);
    assert_true(s.opt.query_cache && s.opt.prepared_statements && s.opt.connection_pooling &&
                s.opt.batch_operations);
}

static void dragonfly_cache_is_an_alias_of_dragonfly(void **state)
{
    (void)state;
    dm_backend_id id = DM_BK_COUNT;
    assert_true(dm_backend_parse("dragonfly_cache", &id));
    assert_int_equal(id, DM_BK_DRAGONFLY);
    assert_string_equal(dm_backend_name(id), "dragonfly");
    static const char *const names[] = {"timescale", "clickhouse", "dragonfly", "weaviate",
                                        "arangodb",  "l1",         "fallback"};
    for (int i = 0; i < DM_BK_COUNT; i++) {
        assert_true(dm_backend_parse(names[i], &id));
        assert_int_equal(id, i);
        assert_string_equal(dm_backend_name(id), names[i]);
    }
    assert_false(dm_backend_parse("Timescale", &id));
    assert_false(dm_backend_parse("postgres", &id));
    assert_false(dm_backend_parse("", &id));
    assert_string_equal(dm_op_name(DM_OP_SAVE_CANDLES_BULK), "save_candles_bulk");
    assert_string_equal(dm_op_name(DM_OP_COUNT), "?");
}

static void a_minimal_strategy_keeps_the_builtin_defaults(void **state)
{
    (void)state;
    dm_strategy s, d;
    dm_err e;
    assert_int_equal(parse("{'version':'2020-01'}", &s, &e), DM_OK);
    assert_string_equal(s.version, "2020-01");
    dm_strategy_defaults(&d);
    /* member by member: struct assignment need not copy padding */
    assert_memory_equal(s.routing, d.routing, sizeof s.routing);
    assert_memory_equal(&s.cache, &d.cache, sizeof s.cache);
    assert_memory_equal(s.pools, d.pools, sizeof s.pools);
    assert_int_equal(s.perf.batch_size, d.perf.batch_size);
    assert_int_equal(s.perf.query_timeout_s, d.perf.query_timeout_s);
    assert_int_equal(s.perf.retry_max_attempts, d.perf.retry_max_attempts);
    assert_true(s.perf.retry_backoff_multiplier == d.perf.retry_backoff_multiplier);
    assert_int_equal(s.perf.circuit_breaker_threshold, d.perf.circuit_breaker_threshold);
    assert_int_equal(s.perf.circuit_breaker_timeout_s, d.perf.circuit_breaker_timeout_s);
    assert_memory_equal(&s.opt, &d.opt, sizeof s.opt);
}

static void overrides_only_what_the_file_names(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e;
    assert_int_equal(parse("{'version':3,'routing':{'get_candles':['timescale']},"
                           "'cache':{'candle_cache_depth':50},'performance':{'batch_size':250,"
                           "'retry_backoff_multiplier':1.5},'optimization':"
                           "{'enable_query_cache':false}}",
                           &s, &e),
                     DM_OK);
    assert_string_equal(s.version, "3");
    ROUTE(s, DM_OP_GET_CANDLES, DM_BK_TIMESCALE);
    ROUTE(s, DM_OP_SAVE_TICK, DM_BK_TIMESCALE, DM_BK_DRAGONFLY); /* default kept */
    assert_int_equal(s.cache.candle_cache_depth, 50);
    assert_int_equal(s.cache.tick_ttl_s, 3600);
    assert_int_equal(s.perf.batch_size, 250);
    assert_true(s.perf.retry_backoff_multiplier == 1.5);
    assert_false(s.opt.query_cache);
    assert_true(s.opt.batch_operations);
}

static void rejects_unknown_backend(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e;
    assert_int_equal(parse("{'version':1,'routing':{'save_tick':['timescale','mongodb']}}", &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "routing.save_tick[1]", "unknown backend");
    assert_int_equal(parse("{'version':1,'routing':{'save_tick':['timescale',7]}}", &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "routing.save_tick[1]");
    assert_int_equal(parse("{'version':1,'connection_pools':{'mongodb':{'timeout':3}}}", &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "connection_pools", "connection_pools.mongodb",
               "unknown backend");
    /* l1 and fallback live in the worker: they have no connection pool */
    assert_int_equal(parse("{'version':1,'connection_pools':{'l1':{'timeout':3}}}", &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "connection_pools", "connection_pools.l1");
}

static void rejects_unknown_operation(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e;
    assert_int_equal(parse("{'version':1,'routing':{'save_trade':['timescale']}}", &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "routing.save_trade", "unknown operation");
}

static void rejects_backend_listed_twice_in_a_route(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e;
    assert_int_equal(parse("{'version':1,'routing':{'get_candles':['timescale','timescale']}}",
                           &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "routing.get_candles", "timescale twice");
    /* an alias is the same backend */
    assert_int_equal(parse("{'version':1,'routing':{'get_latest_tick':['dragonfly',"
                           "'dragonfly_cache']}}",
                           &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "routing.get_latest_tick", "dragonfly twice");
}

static void rejects_malformed_routes(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e;
    assert_int_equal(parse("{'version':1,'routing':{'save_tick':'timescale'}}", &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "routing.save_tick must be an array");
    assert_int_equal(parse("{'version':1,'routing':{'save_tick':['timescale','clickhouse',"
                           "'dragonfly','weaviate','arangodb','l1','fallback','timescale',"
                           "'clickhouse']}}",
                           &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "at most 8");
    assert_int_equal(parse("{'version':1,'routing':['timescale']}", &s, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "routing", "routing must be an object");
}

static void rejects_wrong_types_and_ranges_naming_the_setting(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field, *needle;
    } bad[] = {
        {"{'version':1,'performance':{'batch_size':'x'}}", "batch_size",
         "performance.batch_size must be an integer in [1, 10000]"},
        {"{'version':1,'performance':{'batch_size':0}}", "batch_size", "performance.batch_size"},
        {"{'version':1,'performance':{'batch_size':10001}}", "batch_size", "[1, 10000]"},
        {"{'version':1,'performance':{'batch_size':2.5}}", "batch_size", "integer"},
        {"{'version':1,'performance':{'batch_linger_ms':1001}}", "batch_linger_ms",
         "performance.batch_linger_ms must be an integer in [0, 1000]"},
        {"{'version':1,'performance':{'batch_linger_ms':-1}}", "batch_linger_ms", "[0, 1000]"},
        {"{'version':1,'performance':{'retry_backoff_multiplier':0.5}}",
         "retry_backoff_multiplier", "[1, 10]"},
        {"{'version':1,'performance':{'retry_backoff_multiplier':'2'}}",
         "retry_backoff_multiplier", "performance.retry_backoff_multiplier"},
        {"{'version':1,'cache':{'tick_ttl_seconds':-1}}", "tick_ttl_seconds",
         "cache.tick_ttl_seconds"},
        {"{'version':1,'cache':{'candle_cache_depth':0}}", "candle_cache_depth",
         "cache.candle_cache_depth must be an integer in [1, 10000]"},
        {"{'version':1,'connection_pools':{'timescale':{'timeout':0}}}", "timeout",
         "connection_pools.timescale.timeout"},
        {"{'version':1,'connection_pools':{'timescale':{'max_size':null}}}", "max_size",
         "max_size"},
        {"{'version':1,'connection_pools':{'timescale':5}}", "connection_pools",
         "connection_pools.timescale must be an object"},
        {"{'version':1,'optimization':{'enable_query_cache':'yes'}}", "enable_query_cache",
         "optimization.enable_query_cache must be true or false"},
        {"{'version':1,'optimization':{'enable_batch_operations':1}}",
         "enable_batch_operations", "true or false"},
        /* switches for what the service always does: false would be a silent lie */
        {"{'version':1,'optimization':{'enable_prepared_statements':false}}",
         "enable_prepared_statements", "must be true: every PostgreSQL statement is prepared"},
        {"{'version':1,'optimization':{'enable_connection_pooling':false}}",
         "enable_connection_pooling", "must be true: requests always borrow pooled connections"},
        {"{'version':1,'optimization':{'enable_batch_operations':false}}",
         "enable_batch_operations", "performance.batch_size 1"},
        {"{'version':1,'cache':{'historical_ttl_seconds':60}}", "historical_ttl_seconds",
         "must be 0: history pages are not cached"},
        {"{'version':1,'cache':[]}", "cache", "cache must be an object"},
        {"{'version':1,'performance':'fast'}", "performance", "performance must be an object"},
        {"{'version':1,'optimization':true}", "optimization", "optimization must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dm_strategy s;
        dm_err e;
        if (parse(bad[i].json, &s, &e) != DM_E_INVALID_FIELD)
            fail_msg("%s: accepted or wrong code (%s)", bad[i].json, e.message);
        check_err(&e, DM_E_INVALID_FIELD, bad[i].field, (const char *const[]){bad[i].needle, NULL},
                  bad[i].json, (int)i);
    }
}

static void rejects_pool_with_min_above_max(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e;
    assert_int_equal(parse("{'version':1,'connection_pools':{'timescale':{'min_size':30,"
                           "'max_size':20}}}",
                           &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "connection_pools", "connection_pools.timescale",
               "min 30 is above max 20");
    /* against the default maximum (timescale: 20) when only min is given */
    assert_int_equal(parse("{'version':1,'connection_pools':{'timescale':{'min_connections':25}}}",
                           &s, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "connection_pools", "min 25 is above max 20");
    assert_int_equal(parse("{'version':1,'connection_pools':{'dragonfly_cache':{'min_size':10,"
                           "'max_size':10}}}",
                           &s, &e),
                     DM_OK);
    assert_int_equal(s.pools[DM_BK_DRAGONFLY].min_size, 10);
}

static void rejects_missing_or_empty_version(void **state)
{
    (void)state;
    dm_strategy s;
    dm_err e;
    assert_int_equal(parse("{'routing':{'save_tick':['timescale']}}", &s, &e), DM_E_MISSING_FIELD);
    assert_err(e, DM_E_MISSING_FIELD, "version", "version is required");
    assert_int_equal(parse("{'version':''}", &s, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "version", "version must be");
    assert_int_equal(parse("{'version':null}", &s, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "version", "version");
    assert_int_equal(parse("{'version':['1']}", &s, &e), DM_E_INVALID_FIELD);
    char longv[128];
    snprintf(longv, sizeof longv, "{'version':'%064d'}", 1);
    assert_int_equal(parse(longv, &s, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "version", "under 64 bytes");
}

static void rejects_documents_that_are_not_json_objects(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "[]", "{'version':1", "version: 1", "42"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dm_strategy s;
        dm_err e;
        assert_int_equal(parse(bad[i], &s, &e), DM_E_INVALID_JSON);
        assert_err(e, DM_E_INVALID_JSON, "", "not a JSON object");
    }
}

static void a_failed_parse_leaves_the_strategy_untouched(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{'version':1,'routing':{'save_tick':['timescale','mongodb']}}",
        /* an error late in the file, after routing and cache were already read */
        "{'version':1,'routing':{'save_tick':['clickhouse']},'cache':{'tick_ttl_seconds':5},"
        "'optimization':{'enable_query_cache':'no'}}",
        "{'routing':{}}",
        "not json",
    };
    dm_strategy before;
    memset(&before, 0xA5, sizeof before);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dm_strategy s;
        dm_err e;
        assert_int_not_equal(parse(bad[i], &s, &e), DM_OK);
        assert_memory_equal(&s, &before, sizeof s);
    }
    /* and a good load over a good strategy replaces it whole */
    dm_strategy s;
    dm_err e = {0};
    assert_int_equal(dm_strategy_load(DM_STRATEGY_JSON, &s, &e), DM_OK);
    dm_strategy kept;
    memcpy(&kept, &s, sizeof kept);
    const char *json = "{\"version\":1,\"performance\":{\"batch_size\":\"x\"}}";
    assert_int_equal(dm_strategy_parse(json, strlen(json), &s, &e), DM_E_INVALID_FIELD);
    assert_memory_equal(&s, &kept, sizeof s);
}

static void reports_a_missing_strategy_file_by_path(void **state)
{
    (void)state;
    dm_strategy s;
    memset(&s, 0xA5, sizeof s);
    dm_strategy before = s;
    dm_err e = {0};
    assert_int_equal(dm_strategy_load("/nonexistent/dm/strategy.json", &s, &e), DM_E_INTERNAL);
    assert_non_null(strstr(e.message, "/nonexistent/dm/strategy.json"));
    assert_memory_equal(&s, &before, sizeof s);
}

static void route_has_finds_listed_backends_only(void **state)
{
    (void)state;
    dm_strategy s;
    dm_strategy_defaults(&s);
    assert_true(dm_route_has(&s.routing[DM_OP_SAVE_TICK], DM_BK_DRAGONFLY));
    assert_false(dm_route_has(&s.routing[DM_OP_SAVE_TICK], DM_BK_CLICKHOUSE));
    assert_true(dm_route_has(&s.routing[DM_OP_FIND_PATTERNS], DM_BK_FALLBACK));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_the_repository_strategy_file),
        cmocka_unit_test(dragonfly_cache_is_an_alias_of_dragonfly),
        cmocka_unit_test(a_minimal_strategy_keeps_the_builtin_defaults),
        cmocka_unit_test(overrides_only_what_the_file_names),
        cmocka_unit_test(rejects_unknown_backend),
        cmocka_unit_test(rejects_unknown_operation),
        cmocka_unit_test(rejects_backend_listed_twice_in_a_route),
        cmocka_unit_test(rejects_malformed_routes),
        cmocka_unit_test(rejects_wrong_types_and_ranges_naming_the_setting),
        cmocka_unit_test(rejects_pool_with_min_above_max),
        cmocka_unit_test(rejects_missing_or_empty_version),
        cmocka_unit_test(rejects_documents_that_are_not_json_objects),
        cmocka_unit_test(a_failed_parse_leaves_the_strategy_untouched),
        cmocka_unit_test(reports_a_missing_strategy_file_by_path),
        cmocka_unit_test(route_has_finds_listed_backends_only),
    };
    return cmocka_run_group_tests_name("strategy", tests, NULL, NULL);
}
