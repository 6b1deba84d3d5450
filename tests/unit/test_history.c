/* The status page's history (worker/obs/history): each sample holds the requests of its
 * own interval, so a slow moment shows as slow however many fast requests came before;
 * an interval without requests has no latency (a gap, not a zero); the ring keeps the
 * last DM_HISTORY_SAMPLES samples. The metrics counters are process-wide: every test
 * looks only at differences. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "obs/history.h"
#include "obs/metrics.h"

static cJSON *encode(dm_history *h)
{
    dm_buf b;
    dm_enc e;
    dm_buf_init(&b);
    dm_enc_init(&e, DM_ENC_JSON, &b);
    dm_history_encode(h, &e);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    dm_buf_free(&b);
    assert_non_null(j);
    return j;
}

static cJSON *series(cJSON *j, const char *op, const char *name)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "operations"), op), name);
}

static double at(cJSON *arr, int i) { return cJSON_GetArrayItem(arr, i)->valuedouble; }

static void requests(dm_op op, int n, double ms)
{
    for (int i = 0; i < n; i++)
        dm_metrics_op(op, ms, 200, NULL);
}

static void each_sample_holds_only_its_own_interval(void **state)
{
    (void)state;
    dm_history *h = dm_history_create();
    dm_history_tick(h, 10000);
    requests(DM_OP_GET_CANDLES, 10, 1.0);
    dm_history_tick(h, 12000);
    requests(DM_OP_GET_CANDLES, 4, 100.0);
    dm_history_tick(h, 14000);
    dm_history_tick(h, 16000);
    cJSON *j = encode(h);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "t_ms")), 3);
    assert_int_equal(at(cJSON_GetObjectItem(j, "t_ms"), 0), 12000);
    cJSON *rate = series(j, "get_candles", "rate"), *p50 = series(j, "get_candles", "p50_ms");
    assert_true(fabs(at(rate, 0) - 5.0) < 1e-9);
    assert_true(fabs(at(rate, 1) - 2.0) < 1e-9);
    assert_true(at(rate, 2) == 0);
    /* 100 ms requests after ten fast ones: the second interval's median is 100 ms's bucket. */
    assert_true(at(p50, 0) >= 1.0 && at(p50, 0) < 1.5);
    assert_true(at(p50, 1) >= 100.0 && at(p50, 1) < 150.0);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(p50, 2)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(series(j, "get_candles", "p99_ms"), 2)));
    /* An operation without a request in the samples held is left out. */
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "operations"), "get_events"));
    cJSON_Delete(j);
    dm_history_destroy(h);
}

static void samples_once_per_interval(void **state)
{
    (void)state;
    dm_history *h = dm_history_create();
    dm_history_tick(h, 0); /* the first reading: no sample */
    dm_history_tick(h, 500);
    dm_history_tick(h, DM_HISTORY_INTERVAL_MS - 1);
    cJSON *j = encode(h);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "t_ms")), 0);
    cJSON_Delete(j);
    dm_history_tick(h, DM_HISTORY_INTERVAL_MS);
    j = encode(h);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "t_ms")), 1);
    assert_int_equal(cJSON_GetObjectItem(j, "interval_ms")->valueint, DM_HISTORY_INTERVAL_MS);
    cJSON_Delete(j);
    dm_history_destroy(h);
}

static void keeps_the_newest_samples_oldest_first(void **state)
{
    (void)state;
    dm_history *h = dm_history_create();
    for (int i = 0; i <= DM_HISTORY_SAMPLES + 20; i++) {
        requests(DM_OP_GET_LATEST_TICK, 1, 0.5);
        dm_history_tick(h, (int64_t)i * DM_HISTORY_INTERVAL_MS);
    }
    cJSON *j = encode(h), *t = cJSON_GetObjectItem(j, "t_ms");
    assert_int_equal(cJSON_GetArraySize(t), DM_HISTORY_SAMPLES);
    assert_int_equal(at(t, 0), 21.0 * DM_HISTORY_INTERVAL_MS);
    assert_int_equal(at(t, DM_HISTORY_SAMPLES - 1), (DM_HISTORY_SAMPLES + 20.0) * DM_HISTORY_INTERVAL_MS);
    assert_int_equal(cJSON_GetArraySize(series(j, "get_latest_tick", "rate")), DM_HISTORY_SAMPLES);
    cJSON_Delete(j);
    dm_history_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_sample_holds_only_its_own_interval),
        cmocka_unit_test(samples_once_per_interval),
        cmocka_unit_test(keeps_the_newest_samples_oldest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
