/* dmctl's readable renderings of the analysis replies (cli/analysis_fmt.c), fed the
 * replies documented in subjects/README.md: UTC times, 4 decimals, every row shown, and
 * "-" instead of a crash when the reply lacks a member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cli/analysis_fmt.h"

#define PATTERNS_REPLY                                                                             \
    "{\"data\":[{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"timestamp\":1583859600000,"         \
    "\"start_timestamp\":1583748000000,\"score\":1},{\"symbol\":\"EUR/USD\",\"timeframe\":"        \
    "\"1h\",\"timestamp\":1428566400000,\"start_timestamp\":1428454800000,\"score\":"              \
    "0.9165775829942097}],\"exact\":true,\"served_by\":\"fallback\"}"

#define CORREL_REPLY                                                                               \
    "{\"data\":[{\"symbol\":\"USD/JPY\",\"r\":-0.5870507390579596,\"n\":481}],"                    \
    "\"window_start\":1748649600000,\"window_end\":1751241600000,\"served_by\":\"fallback\"}"

#define GRAPH_REPLY                                                                                \
    "{\"nodes\":[{\"symbol\":\"GBP/USD\",\"depth\":0},{\"symbol\":\"USD/JPY\",\"depth\":1}],"      \
    "\"edges\":[{\"a\":\"GBP/USD\",\"b\":\"USD/JPY\",\"r\":-0.5870507390579596,\"n\":481}],"       \
    "\"clusters\":[[\"GBP/USD\",\"USD/JPY\"]],\"mst\":[{\"a\":\"GBP/USD\",\"b\":\"USD/JPY\","      \
    "\"r\":-0.5870507390579596}],\"window_start\":1748649600000,\"window_end\":1751241600000,"     \
    "\"served_by\":\"fallback\"}"

static const pattern_ask PATTERN_ASK = {
    .symbol = "EUR/USD",
    .timeframe = "1h",
    .first_ts = 1583748000000,
    .last_ts = 1583859600000,
    .window = 32,
    .limit = 5,
    .zone = -1,
};

static const correl_ask CORREL_ASK = {
    .symbol = "GBP/USD", .timeframe = "1h", .has_threshold = true, .threshold = 0.3, .depth = 2};

/* What one rendering of `json` prints (caller frees). */
#define RENDER(out, fn, ask, json)                                                                 \
    do {                                                                                           \
        size_t len_;                                                                               \
        FILE *f_ = open_memstream(&(out), &len_);                                                  \
        cJSON *j_ = cJSON_Parse(json);                                                             \
        assert_non_null(f_);                                                                       \
        assert_non_null(j_);                                                                       \
        fn(f_, ask, j_);                                                                           \
        fclose(f_);                                                                                \
        cJSON_Delete(j_);                                                                          \
    } while (0)

static void patterns_show_rank_utc_windows_and_4_decimals(void **state)
{
    (void)state;
    char *out = NULL;
    RENDER(out, fmt_patterns, &PATTERN_ASK, PATTERNS_REPLY);
    assert_non_null(strstr(out, "query: EUR/USD 1h, 32 closes, candles 2020-03-09 10:00 UTC .. "
                                "2020-03-10 17:00 UTC\n"));
    assert_non_null(strstr(out, "search: every symbol 1h, best 5 (dm.v1.patterns.find)\n"));
    assert_non_null(strstr(out, "served_by: fallback  exact: true\n"));
    assert_non_null(
        strstr(out, "   1  EUR/USD  2020-03-09 10:00 UTC  2020-03-10 17:00 UTC   1.0000\n"));
    assert_non_null(
        strstr(out, "   2  EUR/USD  2015-04-08 01:00 UTC  2015-04-09 08:00 UTC   0.9166\n"));
    free(out);
}

static void similar_header_names_threshold_and_range(void **state)
{
    (void)state;
    pattern_ask a = PATTERN_ASK;
    a.similar = true;
    a.threshold = 0.9;
    a.in = "USD/JPY";
    a.has_start = a.has_end = true;
    a.start = 1420070400000; /* 2015-01-01 */
    a.end = 1577836800000;   /* 2020-01-01 */
    a.zone = 0;
    char *out = NULL;
    RENDER(out, fmt_patterns, &a, "{\"data\":[],\"exact\":true,\"served_by\":\"fallback\"}");
    assert_non_null(strstr(out, "search: USD/JPY 1h, score >= 0.9, at most 5, from 2015-01-01 "
                                "00:00 UTC, before 2020-01-01 00:00 UTC, exclusion zone 0 "
                                "(dm.v1.patterns.similar)\n"));
    assert_non_null(strstr(out, "matches: 0"));
    free(out);
}

static void correlations_table_is_signed_with_window_in_utc(void **state)
{
    (void)state;
    char *out = NULL;
    RENDER(out, fmt_correlations, &CORREL_ASK, CORREL_REPLY);
    assert_non_null(strstr(out, "window: 2025-05-31 00:00 UTC < t <= 2025-06-30 00:00 UTC (720 x "
                                "1h)\n"));
    assert_non_null(strstr(out, "symbol         r    n\nUSD/JPY  -0.5871  481\n"));
    free(out);
}

static void graph_lists_neighbours_clusters_and_forest(void **state)
{
    (void)state;
    char *out = NULL;
    RENDER(out, fmt_graph, &CORREL_ASK, GRAPH_REPLY);
    assert_non_null(strstr(out, "  GBP/USD  depth 0: USD/JPY -0.5871\n"));
    assert_non_null(strstr(out, "  USD/JPY  depth 1: GBP/USD -0.5871\n"));
    assert_non_null(strstr(out, "  1. GBP/USD, USD/JPY\n"));
    assert_non_null(strstr(out, "minimum spanning forest: 1 edge"));
    assert_non_null(strstr(out, "  GBP/USD - USD/JPY  r -0.5871\n"));
    free(out);
}

static void members_missing_from_a_reply_print_as_dashes(void **state)
{
    (void)state;
    char *out = NULL;
    RENDER(out, fmt_patterns, &PATTERN_ASK, "{\"data\":[{\"symbol\":7}]}");
    assert_non_null(strstr(out, "served_by: -  exact: -\n"));
    assert_non_null(strstr(out, "   1  -       -      -            -\n"));
    free(out);
    RENDER(out, fmt_graph, &CORREL_ASK, "{\"nodes\":[{\"symbol\":\"EUR/USD\"}],\"edges\":7}");
    assert_non_null(strstr(out, "window: - < t <= -\n"));
    assert_non_null(strstr(out, "  EUR/USD  depth -: (no neighbour)\n"));
    assert_non_null(strstr(out, "clusters: 0"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(patterns_show_rank_utc_windows_and_4_decimals),
        cmocka_unit_test(similar_header_names_threshold_and_range),
        cmocka_unit_test(correlations_table_is_signed_with_window_in_utc),
        cmocka_unit_test(graph_lists_neighbours_clusters_and_forest),
        cmocka_unit_test(members_missing_from_a_reply_print_as_dashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
