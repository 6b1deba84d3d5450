/* The Weaviate adapter as the `weaviate` source of the pattern routes, against the stub:
 * which requests it answers, what it asks Weaviate, how it ranks and applies the exclusion
 * zone, when it says exact, and when it hands the question to the next source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "test_weaviate_fixture.h"

#define TF_1H (1u << DM_TF_1H)
/* A hit of EUR/USD 1h starting `start` hours after JAN_1 and ending `end` hours after. */
#define WHIT(start, end, dist)                                                                     \
    "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"timestamp\":\"2024-01-01T" end                 \
    ":00:00Z\",\"start_timestamp\":\"2024-01-01T" start ":00:00Z\",\"_additional\":{\"id\":"       \
    "\"9ff5511f-9682-5326-9381-2f19c18997d3\",\"distance\":" dist "}}"
#define WGET(hits) "{\"data\":{\"Get\":{\"PriceWindow\":[" hits "]}}}"
#define COUNT(n) "{\"data\":{\"Aggregate\":{\"PriceWindow\":[{\"meta\":{\"count\":" #n "}}]}}}"

typedef struct {
    dm_stub *stub;
    dm_backend *b;
} bfix;

static void start(bfix *f, const dm_stub_step *steps, size_t n, bool hnsw)
{
    char url[64], cfg[160];
    f->stub = dm_stub_start(steps, n);
    assert_non_null(f->stub);
    snprintf(cfg, sizeof cfg, "{\"url\":\"%s\",\"api_key\":\"" KEY "\"}",
             dm_stub_url(f->stub, url, sizeof url));
    cJSON *c = cJSON_Parse(cfg);
    f->b = dm_weaviate_backend_create(c, 4, hnsw, TF_1H, 2, NULL);
    cJSON_Delete(c);
    assert_non_null(f->b);
    assert_int_equal(f->b->id, DM_BK_WEAVIATE);
}

static void stop(bfix *f)
{
    char why[700];
    bool ok = dm_stub_verify(f->stub, why, sizeof why);
    dm_backend_destroy(f->b);
    dm_stub_stop(f->stub);
    if (!ok)
        fail_msg("stub: %s", why);
}

static dm_pattern_request find(size_t limit, int zone)
{
    return (dm_pattern_request){.query = RISING,
                                .w = 4,
                                .limit = limit,
                                .symbol = "EUR/USD",
                                .tf = DM_TF_1H,
                                .start = INT64_MIN,
                                .end = INT64_MAX,
                                .zone = zone};
}

static void misses_other_lengths_and_unindexed_timeframes_without_asking(void **state)
{
    (void)state;
    bfix f;
    start(&f, NULL, 0, false);
    dm_pattern_vec out = {0};
    dm_err err = {0};
    dm_pattern_request q = find(2, 1);
    q.w = 3;
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_MISS);
    q = find(2, 1);
    q.tf = DM_TF_4H;
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_MISS);
    assert_int_equal(out.n, 0);
    stop(&f);
}

static void fetches_limit_times_the_zone_span_and_excludes_like_the_engine(void **state)
{
    (void)state;
    /* limit 2, zone 1: 2 * 3 neighbours. 01:00 starts one candle after 00:00 (excluded);
     * 05:00 starts after the end of 00:00's window, 4 candles on at least. The reply's
     * order is Weaviate's; ties in score go by start. */
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/graphql",
         "Authorization",
         BEARER,
         {"nearVector: {vector: [", "}, limit: 6", "valueText: \\\"EUR/USD\\\"",
          "valueText: \\\"1h\\\"", NULL},
         200,
         WGET(WHIT("05", "08", "0.25") "," WHIT("01", "04", "0.125") "," WHIT("00", "03", "0.125")),
         0},
    };
    bfix f;
    start(&f, steps, 1, false);
    dm_pattern_vec out = {0};
    dm_err err = {0};
    dm_pattern_request q = find(2, 1);
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_OK);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.v[0].symbol, "EUR/USD");
    assert_true(out.v[0].start_timestamp == JAN_1 && out.v[0].timestamp == JAN_1 + 3 * HOUR);
    assert_true(out.v[0].score == 0.875);
    assert_true(out.v[1].start_timestamp == JAN_1 + 5 * HOUR && out.v[1].score == 0.75);
    assert_true(out.exact);
    dm_pattern_vec_free(&out);
    stop(&f);
}

static void is_not_exact_when_a_gap_hides_the_candle_distance(void **state)
{
    (void)state;
    /* 00:00's window spans 5 hours for 4 candles (a gap): 03:00 is 3 hours on, which may
     * be 1 to 3 candles: kept, and the answer cannot promise the engine's. */
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/graphql",
         NULL,
         NULL,
         {"limit: 6", NULL},
         200,
         WGET(WHIT("00", "05", "0.125") "," WHIT("03", "06", "0.25")),
         0},
    };
    bfix f;
    start(&f, steps, 1, false);
    dm_pattern_vec out = {0};
    dm_err err = {0};
    dm_pattern_request q = find(2, 1);
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_OK);
    assert_int_equal(out.n, 2);
    assert_false(out.exact);
    dm_pattern_vec_free(&out);
    stop(&f);
}

static void similar_asks_for_one_minus_threshold_and_keeps_scores_above_it(void **state)
{
    (void)state;
    /* 1 - 0.75 = 0.25 exactly; 0.2500005 is within Weaviate's float32 slack but scores
     * below 0.75: dropped. Two hits for a limit of 5: Weaviate had no more, so exact. */
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/graphql",
         NULL,
         NULL,
         {"distance: 0.25}, limit: 5", NULL},
         200,
         WGET(WHIT("00", "03", "0.125") "," WHIT("09", "12", "0.2500005")),
         0},
    };
    bfix f;
    start(&f, steps, 1, false);
    dm_pattern_vec out = {0};
    dm_err err = {0};
    dm_pattern_request q = find(5, 0);
    q.similar = true;
    q.threshold = 0.75;
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_OK);
    assert_int_equal(out.n, 1);
    assert_true(out.v[0].score == 0.875);
    assert_true(out.exact);
    dm_pattern_vec_free(&out);
    stop(&f);
}

static void hnsw_answers_are_never_exact(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/graphql",
         NULL,
         NULL,
         {"limit: 1", NULL},
         200,
         WGET(WHIT("00", "03", "0.125")),
         0},
    };
    bfix f;
    start(&f, steps, 1, true);
    dm_pattern_vec out = {0};
    dm_err err = {0};
    dm_pattern_request q = find(1, 0);
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_OK);
    assert_int_equal(out.n, 1);
    assert_false(out.exact);
    dm_pattern_vec_free(&out);
    stop(&f);
}

static void no_hit_misses_only_when_weaviate_holds_nothing_of_the_symbol(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST", "/v1/graphql", NULL, NULL, {"nearVector", NULL}, 200, WGET(""), 0},
        {"POST",
         "/v1/graphql",
         NULL,
         NULL,
         {"{ Aggregate { PriceWindow(where: {operator: And, operands: [{path: [\\\"symbol\\\"], "
          "operator: Equal, valueText: \\\"EUR/USD\\\"}, {path: [\\\"timeframe\\\"], operator: "
          "Equal, valueText: \\\"1h\\\"}]}) { meta { count } } } }",
          NULL},
         200,
         COUNT(0),
         0},
        {"POST", "/v1/graphql", NULL, NULL, {"nearVector", NULL}, 200, WGET(""), 0},
        {"POST", "/v1/graphql", NULL, NULL, {"Aggregate", NULL}, 200, COUNT(42), 0},
    };
    bfix f;
    start(&f, steps, 4, false);
    dm_pattern_vec out = {0};
    dm_err err = {0};
    dm_pattern_request q = find(3, 0);
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_MISS);
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_OK);
    assert_int_equal(out.n, 0);
    assert_true(out.exact);
    stop(&f);
}

static void failures_keep_weaviates_statuses(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST", "/v1/graphql", NULL, NULL, {NULL}, 500, "{\"error\":[{\"message\":\"boom\"}]}", 0},
        {"POST", "/v1/graphql", NULL, NULL, {NULL}, 200, "{\"data\":{\"Get\":{}}}", 0},
        {"GET", "/v1/.well-known/ready", "Authorization", BEARER, {NULL}, 200, NULL, 0},
        {"GET", "/v1/.well-known/ready", NULL, NULL, {NULL}, 503, NULL, 0},
    };
    bfix f;
    start(&f, steps, 4, false);
    dm_pattern_vec out = {0};
    dm_err err = {0};
    dm_pattern_request q = find(3, 0);
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_TRANSIENT);
    assert_non_null(strstr(err.message, "boom"));
    assert_int_equal(f.b->ops->patterns(f.b, &q, &out, &err), DM_BS_TRANSIENT);
    assert_int_equal(f.b->ops->ping(f.b, &err), DM_BS_OK);
    assert_int_equal(f.b->ops->ping(f.b, &err), DM_BS_TRANSIENT);
    assert_null(f.b->ops->correlations);
    assert_null(f.b->ops->write_candles);
    stop(&f);
}

static void refuses_unusable_configs(void **state)
{
    (void)state;
    cJSON *c = cJSON_Parse("{\"url\":\"ftp://example.com\"}");
    assert_null(dm_weaviate_backend_create(c, 4, false, TF_1H, 2, NULL));
    cJSON_Delete(c);
    c = cJSON_Parse("{\"url\":\"http://127.0.0.1:1\",\"class\":\"lower\"}");
    assert_null(dm_weaviate_backend_create(c, 4, false, TF_1H, 2, NULL));
    cJSON_Delete(c);
    /* "ENV?:" unset reads as "": a server without auth, not an empty key. */
    c = cJSON_Parse("{\"url\":\"http://127.0.0.1:1\",\"api_key\":\"\"}");
    dm_backend *b = dm_weaviate_backend_create(c, 4, false, TF_1H, 2, NULL);
    assert_non_null(b);
    dm_backend_destroy(b);
    cJSON_Delete(c);
}

/* A window source that knows six hourly closes of EUR/USD, the last two just written. */
static const double AROUND[] = {1.10, 1.12, 1.11, 1.15, 1.14, 1.18};

static dm_bstatus fake_around(void *self, const dm_candle *c, const uint64_t *seqs, size_t n, size_t w,
                              dm_window_sink sink, void *sink_ctx, dm_err *err)
{
    int *calls = self;
    (*calls)++;
    (void)seqs;
    assert_int_equal(n, 2);
    assert_int_equal(w, 4);
    assert_int_equal(c[0].tf, DM_TF_1H);
    int64_t ts[6];
    for (int i = 0; i < 6; i++)
        ts[i] = JAN_1 + i * HOUR;
    return sink(sink_ctx, "EUR/USD", DM_TF_1H, ts, AROUND, 6, 4, 5, err);
}

static void written_candles_store_every_window_that_holds_them(void **state)
{
    (void)state;
    const char reply[] = "[{\"result\":{}},{\"result\":{}}]";
    const dm_stub_step steps[] = {
        {"POST", "/v1/schema", "Authorization", BEARER, {"\"PriceWindow\"", NULL}, 200, "{}", 0},
        {"POST", "/v1/batch/objects", "Authorization", BEARER, {"\"objects\"", NULL}, 200, reply, 0},
    };
    char url[64], cfg[160];
    dm_stub *stub = dm_stub_start(steps, 2);
    snprintf(cfg, sizeof cfg, "{\"url\":\"%s\",\"api_key\":\"" KEY "\"}", dm_stub_url(stub, url, sizeof url));
    cJSON *c = cJSON_Parse(cfg);
    int calls = 0;
    dm_window_source src = {fake_around, &calls};
    dm_backend *b = dm_weaviate_backend_create(c, 4, false, TF_1H, 2, &src);
    cJSON_Delete(c);
    assert_non_null(b->ops->write_candles);
    dm_candle k[3] = {{.symbol = "EUR/USD", .tf = DM_TF_1H, .ts = JAN_1 + 4 * HOUR, .close = 1.14},
                      {.symbol = "EUR/USD", .tf = DM_TF_4H, .ts = JAN_1, .close = 1.2},
                      {.symbol = "EUR/USD", .tf = DM_TF_1H, .ts = JAN_1 + 5 * HOUR, .close = 1.18}};
    uint64_t seqs[3] = {7, 8, 9};
    dm_cache_opts o = {.seqs = seqs};
    dm_err err = {0};
    dm_bstatus st = b->ops->write_candles(b, k, 3, &o, &err);
    if (st != DM_BS_OK)
        fail_msg("write: %s", err.message);
    assert_int_equal(calls, 1); /* the 4h candle is not indexed: only the two 1h ones went */
    /* Positions 4 and 5 changed: the windows ending at 4 and 5 hold them (ending at 3 does not). */
    cJSON *body = cJSON_Parse(dm_stub_body(stub, 1));
    const cJSON *objs = cJSON_GetObjectItem(body, "objects");
    assert_int_equal(cJSON_GetArraySize(objs), 2);
    char id[40];
    assert_true(dm_weaviate_uuid5("EUR/USD|1h|1704085200000", id));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(objs, 1), "id")), id);
    cJSON_Delete(body);
    char why[700];
    bool ok = dm_stub_verify(stub, why, sizeof why);
    dm_backend_destroy(b);
    dm_stub_stop(stub);
    if (!ok)
        fail_msg("stub: %s", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(misses_other_lengths_and_unindexed_timeframes_without_asking),
        cmocka_unit_test(fetches_limit_times_the_zone_span_and_excludes_like_the_engine),
        cmocka_unit_test(is_not_exact_when_a_gap_hides_the_candle_distance),
        cmocka_unit_test(similar_asks_for_one_minus_threshold_and_keeps_scores_above_it),
        cmocka_unit_test(hnsw_answers_are_never_exact),
        cmocka_unit_test(no_hit_misses_only_when_weaviate_holds_nothing_of_the_symbol),
        cmocka_unit_test(failures_keep_weaviates_statuses),
        cmocka_unit_test(refuses_unusable_configs),
        cmocka_unit_test(written_candles_store_every_window_that_holds_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
