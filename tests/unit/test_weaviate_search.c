/* Weaviate adapter searches against the stub: the GraphQL nearVector queries it sends and
 * what it makes of documented, erroneous and malformed replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <math.h>

#include "test_weaviate_fixture.h"
/* ---- search -------------------------------------------------------------------------- */

#define ID_A "\"9ff5511f-9682-5326-9381-2f19c18997d3\""
#define ID_B "\"3c6a1497-b1d7-55b6-83c1-a9d754724065\""
#define HIT(sym, tf, ts, start, add)                                                               \
    "{\"symbol\":" sym ",\"timeframe\":" tf ",\"timestamp\":" ts ",\"start_timestamp\":" start     \
    ",\"_additional\":" add "}"
#define GOOD_HIT                                                                                   \
    HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",           \
        "{\"id\":" ID_A ",\"distance\":0.1}")
#define GET(hits) "{\"data\":{\"Get\":{\"PriceWindow\":[" hits "]}}}"

static const char TWO_HITS[] =
    GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
            "{\"id\":" ID_A
            ",\"distance\":0.0123}") "," HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-15T13:00:00.5Z\"",
                                             "\"2024-01-15T10:00:00Z\"",
                                             "{\"id\":" ID_B ",\"distance\":0.15}"));

static dm_weaviate_query full_query(void)
{
    return (dm_weaviate_query){RISING,    4,    0.2,   5,
                               "EUR/USD", "1h", JAN_1, 1706745600000LL /* 2024-02-01 */};
}

static void searches_with_near_vector_distance_and_where_filter(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/graphql",
         "Authorization",
         BEARER,
         {"nearVector", "distance: 0.20000000000000001", "valueDate", NULL},
         200,
         TWO_HITS,
         0},
    };
    fixture f;
    open_stub(&f, steps, 1);
    dm_weaviate_query q = full_query();
    dm_weaviate_hit *hits = NULL;
    size_t n = 0;
    dm_err err = {0};
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_OK);
    double z[4];
    znorm(RISING, 4, z);
    char want[1024];
    snprintf(want, sizeof want,
             "{ Get { PriceWindow(nearVector: {vector: [%.17g, %.17g, %.17g, %.17g], distance: "
             "0.20000000000000001}, limit: 5, where: {operator: And, operands: ["
             "{path: [\"symbol\"], operator: Equal, valueText: \"EUR/USD\"}, "
             "{path: [\"timeframe\"], operator: Equal, valueText: \"1h\"}, "
             "{path: [\"start_timestamp\"], operator: GreaterThanEqual, valueDate: "
             "\"2024-01-01T00:00:00.000Z\"}, "
             "{path: [\"timestamp\"], operator: LessThan, valueDate: "
             "\"2024-02-01T00:00:00.000Z\"}]}) "
             "{ symbol timeframe timestamp start_timestamp _additional { id distance } } } }",
             z[0], z[1], z[2], z[3]);
    cJSON *body = cJSON_Parse(dm_stub_body(f.stub, 0));
    assert_int_equal(cJSON_GetArraySize(body), 1);
    assert_string_equal(cJSON_GetObjectItem(body, "query")->valuestring, want);
    cJSON_Delete(body);
    assert_int_equal(n, 2);
    assert_string_equal(hits[0].symbol, "EUR/USD");
    assert_string_equal(hits[0].timeframe, "1h");
    assert_int_equal(hits[0].timestamp, JAN_1 + 3 * HOUR);
    assert_int_equal(hits[0].start_timestamp, JAN_1);
    assert_true(fabs(hits[0].score - (1 - 0.0123)) < 1e-12);
    assert_int_equal(hits[1].timestamp, JAN_1 + 14 * 24 * HOUR + 13 * HOUR + 500);
    assert_true(fabs(hits[1].score - 0.85) < 1e-12);
    free(hits);
    finish(&f);
}

static void searches_with_one_condition_and_no_distance(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/graphql",
         "Content-Type",
         "application/json",
         {NULL},
         200,
         "{\"data\":{\"Get\":{\"PriceWindow\":[]}},\"errors\":null}",
         0},
        {"POST", "/v1/graphql", NULL, NULL, {NULL}, 200, GET(GOOD_HIT), 0},
    };
    fixture f;
    open_stub(&f, steps, 2);
    dm_weaviate_query q = {RISING, 4, -1, 3, "EUR/USD", NULL, INT64_MIN, INT64_MAX};
    dm_weaviate_hit *hits = NULL;
    size_t n = 7;
    dm_err err = {0};
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_OK);
    assert_int_equal(n, 0);
    assert_null(hits);
    cJSON *body = cJSON_Parse(dm_stub_body(f.stub, 0));
    const char *text = cJSON_GetObjectItem(body, "query")->valuestring;
    assert_contains(text, "]}, limit: 3, where: {path: [\"symbol\"], operator: Equal, valueText: "
                          "\"EUR/USD\"}) {");
    assert_null(strstr(text, "distance:"));
    assert_null(strstr(text, "operator: And"));
    cJSON_Delete(body);
    q.symbol = NULL;
    q.limit = 1;
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_OK);
    assert_int_equal(n, 1);
    free(hits);
    assert_null(strstr(dm_stub_body(f.stub, 1), "where"));
    finish(&f);
}

static void answers_impossible_queries_without_asking(void **state)
{
    (void)state;
    fixture f;
    open_stub(&f, NULL, 0);
    dm_weaviate_hit *hits = NULL;
    size_t n = 0;
    dm_err err = {0};
    const double five[] = {1, 2, 3, 4, 5};
    dm_weaviate_query q = full_query();
    q.vector = five;
    q.w = 5;
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_MISS);
    assert_contains(err.message, "5 closes");
    q = full_query();
    q.vector = FLAT;
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_MISS);
    q = full_query();
    q.limit = 0;
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_OK);
    assert_int_equal(n, 0);
    q = full_query();
    q.start = INT64_MAX - 1; /* no date can be that late */
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_OK);
    assert_int_equal(n, 0);
    q = full_query();
    q.symbol = "EUR\"USD";
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_PERMANENT);
    q = full_query();
    q.max_distance = NAN;
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_PERMANENT);
    assert_null(hits);
    finish(&f);
}

static void treats_graphql_errors_in_a_200_as_failures(void **state)
{
    (void)state;
    static const struct {
        const char *reply;
        dm_bstatus want;
        const char *says;
    } cases[] = {
        {"{\"data\":{\"Get\":{\"PriceWindow\":null}},\"errors\":[{\"locations\":[{\"column\":6,"
         "\"line\":1}],\"message\":\"explorer: get class: vector search: shard pricewindow_x: "
         "context deadline exceeded\",\"path\":[\"Get\",\"PriceWindow\"]}]}",
         DM_BS_TRANSIENT, "context deadline exceeded"},
        {"{\"errors\":[{\"locations\":[{\"column\":3,\"line\":1}],\"message\":\"Syntax Error "
         "GraphQL request (1:3) Expected Name, found EOF\"}]}",
         DM_BS_PERMANENT, "Syntax Error"},
        {"{\"errors\":[{\"message\":\"Cannot query field \\\"PriceWindow\\\" on type "
         "\\\"GetObjectsObj\\\".\"}]}",
         DM_BS_TRANSIENT, "GetObjectsObj"},
        {"{\"errors\":[{\"message\":\"invalid 'where' filter: data type filter cannot use "
         "\\\"valueInt\\\" on type \\\"date\\\"\"}]}",
         DM_BS_PERMANENT, "invalid 'where' filter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const dm_stub_step steps[] = {
            {"POST", "/v1/graphql", NULL, NULL, {NULL}, 200, cases[i].reply, 0},
        };
        fixture f;
        open_stub(&f, steps, 1);
        dm_weaviate_query q = full_query();
        dm_weaviate_hit *hits = NULL;
        size_t n = 0;
        dm_err err = {0};
        dm_bstatus st = dm_weaviate_search(f.w, &q, &hits, &n, &err);
        if (st != cases[i].want)
            fail_msg("case %zu: status %d, want %d (%s)", i, st, cases[i].want, err.message);
        assert_contains(err.message, cases[i].says);
        assert_null(hits);
        finish(&f);
    }
}

static void refuses_malformed_search_replies(void **state)
{
    (void)state;
    /* limit 2, symbol EUR/USD, timeframe 1h, January 2024 */
    static char huge[200000];
    if (huge[0] == '\0') {
        char *p = huge + sprintf(huge, "{\"data\":{\"Get\":{\"PriceWindow\":[");
        while (p < huge + sizeof huge - 64)
            p += sprintf(p, "0,");
        sprintf(p, "0]}}}");
    }
    static const char *const bad[] = {
        "not json", "null", "{}", "{\"data\":{\"Get\":{\"PriceWindow\":{}}}}",
        "{\"data\":{\"Get\":{\"Other\":[]}}}", "{\"errors\":\"boom\"}",
        "{\"errors\":[{\"nomessage\":1}]}", GET("5"),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "1704067200000", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.1}")),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-02-30T00:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.1}")),
        GET(HIT("\"EUR/USDXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"", "\"1h\"",
                "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.1}")),
        GET(HIT("\"EUR\\\"USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.1}")),
        GET(HIT("\"EUR/USD\"", "\"1y\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.1}")),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":\"0.1\"}")),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":7}")),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":\"123\",\"distance\":0.1}")),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "null")),
        /* outside the filter: another symbol, a window starting before the range, a
         * distance beyond the threshold */
        GET(HIT("\"GBP/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.1}")),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2023-12-31T23:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.1}")),
        GET(HIT("\"EUR/USD\"", "\"1h\"", "\"2024-01-01T03:00:00Z\"", "\"2024-01-01T00:00:00Z\"",
                "{\"id\":" ID_A ",\"distance\":0.5}")),
        GET(GOOD_HIT "," GOOD_HIT "," GOOD_HIT), /* more than the limit */
        huge,                                    /* far more than any limit's worth of bytes */
    };
    enum { N = sizeof bad / sizeof *bad };
    dm_stub_step steps[N];
    for (size_t i = 0; i < N; i++)
        steps[i] = (dm_stub_step){"POST", "/v1/graphql", NULL, NULL, {NULL}, 200, bad[i], 0};
    fixture f;
    open_stub(&f, steps, N);
    for (size_t i = 0; i < N; i++) {
        dm_weaviate_query q = full_query();
        q.limit = 2;
        dm_weaviate_hit *hits = NULL;
        size_t n = 0;
        dm_err err = {0};
        dm_bstatus st = dm_weaviate_search(f.w, &q, &hits, &n, &err);
        if (st != DM_BS_TRANSIENT)
            fail_msg("reply #%zu: status %d (%s)", i, st, err.message);
        assert_null(hits);
        assert_int_equal(n, 0);
    }
    finish(&f);
}

static void accepts_the_same_reply_when_it_is_well_formed(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST", "/v1/graphql", NULL, NULL, {NULL}, 200, GET(GOOD_HIT "," GOOD_HIT), 0},
    };
    fixture f;
    open_stub(&f, steps, 1);
    dm_weaviate_query q = full_query();
    q.limit = 2;
    dm_weaviate_hit *hits = NULL;
    size_t n = 0;
    dm_err err = {0};
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_OK);
    assert_int_equal(n, 2);
    free(hits);
    finish(&f);
}

static void refuses_a_rejected_api_key_on_search(void **state)
{
    (void)state;
    const dm_stub_step steps[] = {
        {"POST",
         "/v1/graphql",
         NULL,
         NULL,
         {NULL},
         401,
         "{\"code\":401,\"message\":\"unauthorized: invalid api key\"}",
         0},
    };
    fixture f;
    open_stub(&f, steps, 1);
    dm_weaviate_query q = full_query();
    dm_weaviate_hit *hits = NULL;
    size_t n = 0;
    dm_err err = {0};
    assert_int_equal(dm_weaviate_search(f.w, &q, &hits, &n, &err), DM_BS_PERMANENT);
    assert_contains(err.message, "API key was refused");
    assert_null(strstr(err.message, KEY)); /* never the key itself */
    finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(searches_with_near_vector_distance_and_where_filter),
        cmocka_unit_test(searches_with_one_condition_and_no_distance),
        cmocka_unit_test(answers_impossible_queries_without_asking),
        cmocka_unit_test(treats_graphql_errors_in_a_200_as_failures),
        cmocka_unit_test(refuses_malformed_search_replies),
        cmocka_unit_test(accepts_the_same_reply_when_it_is_well_formed),
        cmocka_unit_test(refuses_a_rejected_api_key_on_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
