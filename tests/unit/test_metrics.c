/* Prometheus counters of the write consumers (worker/obs/metrics): messages by outcome and
 * the batches they came in, per kind and backend, so an operator can read the batch size
 * the linger gave (messages over batches). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "obs/metrics.h"

static const char *const KINDS[] = {"tick", "candle"};

static const char *scrape(dm_buf *b)
{
    dm_buf_reset(b);
    dm_metrics_prometheus(b, KINDS, 2);
    dm_buf_put(b, "", 1);
    return b->data;
}

static void every_settled_batch_is_counted_once_with_its_messages(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_metrics_ingest(0, DM_BK_TIMESCALE, 120, 0, 0);
    dm_metrics_ingest(0, DM_BK_TIMESCALE, 80, 1, 2);
    dm_metrics_ingest(1, DM_BK_DRAGONFLY, 5, 0, 0);
    const char *text = scrape(&b);
    assert_non_null(strstr(text, "# TYPE dm_ingest_batches_total counter\n"));
    assert_non_null(strstr(text, "dm_ingest_batches_total{kind=\"tick\",backend=\"timescale\"} 2\n"));
    assert_non_null(strstr(text, "dm_ingest_batches_total{kind=\"candle\",backend=\"dragonfly\"} 1\n"));
    assert_non_null(strstr(text, "dm_ingest_messages_total{kind=\"tick\",backend=\"timescale\",outcome=\"acked\"} 200\n"));
    /* A pair that settled nothing is not listed. */
    assert_null(strstr(text, "dm_ingest_batches_total{kind=\"tick\",backend=\"dragonfly\"}"));
    dm_buf_free(&b);
}

static void a_kind_outside_the_table_counts_nothing(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    char *before = strdup(scrape(&b));
    assert_non_null(before);
    dm_metrics_ingest(-1, DM_BK_TIMESCALE, 1, 0, 0);
    dm_metrics_ingest(1 << 20, DM_BK_TIMESCALE, 1, 0, 0);
    assert_string_equal(scrape(&b), before);
    free(before);
    dm_buf_free(&b);
}

/* The time spent in read calls adds up per backend, in seconds, so an operator sees which
 * database a request's time went to (a backend's average: the seconds over its queries). */
static void read_call_time_adds_up_per_backend(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_metrics_backend(DM_BK_CLICKHOUSE, false, 40 * 1000000LL);
    dm_metrics_backend(DM_BK_CLICKHOUSE, true, 2500000LL);
    dm_metrics_backend(DM_BK_TIMESCALE, false, 1000);
    dm_metrics_backend(DM_BK_TIMESCALE, false, -5); /* a clock that went back adds nothing */
    const char *text = scrape(&b);
    assert_non_null(strstr(text, "# TYPE dm_backend_query_seconds_total counter\n"));
    assert_non_null(strstr(text, "dm_backend_query_seconds_total{backend=\"clickhouse\"} 0.042500\n"));
    assert_non_null(strstr(text, "dm_backend_query_seconds_total{backend=\"timescale\"} 0.000001\n"));
    assert_non_null(strstr(text, "dm_backend_queries_total{backend=\"clickhouse\"} 2\n"));
    assert_non_null(strstr(text, "dm_backend_failures_total{backend=\"clickhouse\"} 1\n"));
    assert_non_null(strstr(text, "dm_backend_query_seconds_total{backend=\"dragonfly\"} 0.000000\n"));
    dm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_call_time_adds_up_per_backend),
        cmocka_unit_test(every_settled_batch_is_counted_once_with_its_messages),
        cmocka_unit_test(a_kind_outside_the_table_counts_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
