/* Health reply encoder (worker/obs/health): the status follows the backends and issues,
 * a backend lists breaker, pool and error only when it has them, and the extra members
 * the layer above writes land in the same map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "obs/health.h"

static const char *encode(dm_buf *b, const dm_health *h)
{
    dm_enc e;
    dm_buf_reset(b);
    dm_enc_init(&e, DM_ENC_JSON, b);
    dm_health_encode(&e, h);
    dm_buf_put(b, "", 1);
    return b->data;
}

static void consumers(void *ctx, dm_enc *e)
{
    (void)ctx;
    dm_enc_key(e, "consumers");
    dm_enc_arr(e, 0);
    dm_enc_arr_end(e);
}

static void writes_every_member_in_order(void **state)
{
    (void)state;
    dm_health_pool pool = {.open = 2, .in_use = 1, .min = 1, .max = 4, .timeout_s = 5,
                           .borrowed = 10, .waited = 3, .timeouts = 1, .replaced = 0};
    dm_health_backend bk[] = {
        {.name = "timescale", .up = true, .latency_ms = 1.5, .breaker = "closed", .pool = &pool},
        {.name = "clickhouse", .up = false, .latency_ms = 2, .error = "connection refused"},
    };
    const char *issues[] = {"clickhouse down: connection refused"};
    dm_health h = {.worker = "w1", .version = "0.1.0", .strategy_version = "v7", .uptime_s = 42,
                   .backends = bk, .n_backends = 2, .issues = issues, .n_issues = 1,
                   .extra = consumers, .n_extra = 1};
    dm_buf b;
    dm_buf_init(&b);
    assert_string_equal(
        encode(&b, &h),
        "{\"status\":\"degraded\",\"issues\":[\"clickhouse down: connection refused\"],"
        "\"worker\":\"w1\",\"version\":\"0.1.0\",\"strategy_version\":\"v7\",\"uptime_s\":42,"
        "\"backends\":{\"timescale\":{\"status\":\"up\",\"latency_ms\":1.5,\"breaker\":\"closed\","
        "\"pool\":{\"open\":2,\"in_use\":1,\"min\":1,\"max\":4,\"timeout_s\":5,\"borrowed\":10,"
        "\"waited\":3,\"timeouts\":1,\"replaced\":0}},"
        "\"clickhouse\":{\"status\":\"down\",\"latency_ms\":2,\"error\":\"connection refused\"}},"
        "\"consumers\":[]}");
    dm_buf_free(&b);
}

static void unhealthy_when_no_probed_backend_is_up(void **state)
{
    (void)state;
    dm_health_backend bk = {.name = "dragonfly", .up = false, .error = "timeout"};
    dm_health h = {.backends = &bk, .n_backends = 1};
    assert_string_equal(dm_health_status(&h), "unhealthy");
}

static void healthy_without_issues_and_with_no_backend_probed(void **state)
{
    (void)state;
    dm_health h = {0};
    assert_string_equal(dm_health_status(&h), "healthy");
    const char *issues[] = {"L1 suspended: cache updates may have been missed"};
    h.issues = issues;
    h.n_issues = 1;
    assert_string_equal(dm_health_status(&h), "degraded");
}

static void msgpack_map_counts_the_extra_members(void **state)
{
    (void)state;
    dm_health h = {.worker = "w", .version = "v", .strategy_version = "s",
                   .extra = consumers, .n_extra = 1};
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_MSGPACK, &b);
    dm_health_encode(&e, &h);
    assert_true(b.len > 0);
    assert_int_equal((unsigned char)b.data[0], 0x80 | 8); /* fixmap of 7 + 1 */
    dm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_every_member_in_order),
        cmocka_unit_test(unhealthy_when_no_probed_backend_is_up),
        cmocka_unit_test(healthy_without_issues_and_with_no_backend_probed),
        cmocka_unit_test(msgpack_map_counts_the_extra_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
