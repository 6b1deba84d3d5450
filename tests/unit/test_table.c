/* dmctl's query tables (cli/table.c), fed replies shaped like subjects/examples: every row
 * shown, every statistic of an aggregate, times formatted alike and labelled UTC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cli/table.h"

#define AGGREGATE_ROWS                                                                             \
    "[{\"period_start\":1583107200000,\"open\":1.10407,\"high\":1.13546,\"low\":1.10362,"          \
    "\"close\":1.12901,\"mean\":1.1166551666666662,\"stddev_returns\":0.0012710190501119413,"      \
    "\"range\":0.03183999999999987,\"volume\":385483,\"count\":120}]"

#define TICK_REPLY                                                                                 \
    "{\"data\":{\"symbol\":\"EUR/USD\",\"timestamp\":1579564794588,\"bid\":1.10992,"              \
    "\"ask\":1.10993,\"spread\":1e-05,\"volume\":0,\"source\":\"m1-derived\"},"                   \
    "\"served_by\":\"dragonfly\"}"

/* What table_print_array (rows) or table_print_object (reply) prints; caller frees. */
static char *render(const char *json, bool rows)
{
    char *out = NULL;
    size_t len;
    FILE *f = open_memstream(&out, &len);
    cJSON *j = cJSON_Parse(json);
    assert_non_null(f);
    assert_non_null(j);
    if (rows)
        table_print_array(f, j);
    else
        table_print_object(f, j, NULL);
    fclose(f);
    cJSON_Delete(j);
    return out;
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void every_row_of_a_long_answer_is_shown(void **state)
{
    (void)state;
    char json[8192] = "[";
    for (int i = 0; i < 22; i++) {
        char row[256];
        snprintf(row, sizeof row,
                 "%s{\"timestamp\":%lld,\"open\":1.1,\"high\":1.2,\"low\":1.0,\"close\":1.15,"
                 "\"volume\":%d,\"source\":\"x\"}",
                 i ? "," : "", 1583107200000LL + i * 3600000LL, i);
        strcat(json, row);
    }
    strcat(json, "]");
    char *out = render(json, true);
    assert_int_equal(lines(out), 23); /* the header and 22 rows */
    assert_null(strstr(out, "..."));
    assert_non_null(strstr(out, "2020-03-02 10:00:00")); /* a middle row */
    free(out);
}

static void aggregates_show_period_start_in_utc_and_every_statistic(void **state)
{
    (void)state;
    char *out = render(AGGREGATE_ROWS, true);
    assert_non_null(strstr(out, "period_start (UTC)"));
    const char *const titles[] = {"mean", "stddev_returns", "range", "volume", "count"};
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
        assert_non_null(strstr(out, titles[i]));
    assert_non_null(strstr(out, "2020-03-02 00:00:00  1.10407"));
    assert_non_null(strstr(out, "1.11666"));    /* mean, six significant digits */
    assert_non_null(strstr(out, "0.00127102")); /* stddev_returns */
    assert_non_null(strstr(out, "0.03184"));    /* range */
    assert_non_null(strstr(out, "385483"));
    assert_non_null(strstr(out, "  120\n"));
    assert_null(strstr(out, " - "));
    free(out);
}

static void a_tick_reply_shows_its_time_like_the_rows_in_utc(void **state)
{
    (void)state;
    char *out = render(TICK_REPLY, false);
    assert_non_null(strstr(out, "data.timestamp: 2020-01-20 23:59:54.588 UTC\n"));
    assert_non_null(strstr(out, "data.bid: 1.10992\n"));
    free(out);
    out = render("[{\"timestamp\":1579564794588,\"bid\":1.1,\"ask\":1.2,\"spread\":0.1}]", true);
    assert_non_null(strstr(out, "time (UTC)"));
    assert_non_null(strstr(out, "2020-01-20 23:59:54.588"));
    free(out);
}

static void candle_and_event_times_are_labelled_utc(void **state)
{
    (void)state;
    char *out = render("[{\"timestamp\":1583107200000,\"open\":1,\"high\":1,\"low\":1,"
                       "\"close\":1}]",
                       true);
    assert_non_null(strstr(out, "time (UTC)"));
    assert_non_null(strstr(out, "2020-03-02 00:00:00"));
    free(out);
    out = render("[{\"timestamp\":1583107200000,\"country\":\"US\",\"event_name\":\"CPI\"}]", true);
    assert_non_null(strstr(out, "time (UTC)"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_of_a_long_answer_is_shown),
        cmocka_unit_test(aggregates_show_period_start_in_utc_and_every_statistic),
        cmocka_unit_test(a_tick_reply_shows_its_time_like_the_rows_in_utc),
        cmocka_unit_test(candle_and_event_times_are_labelled_utc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
