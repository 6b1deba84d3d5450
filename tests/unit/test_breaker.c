/* The circuit breaker's promises, with explicit clocks (no sleeping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "resilience/breaker.h"

#define THRESHOLD 5
#define TIMEOUT_S 60

static void opens_after_threshold_consecutive_failures(void **state)
{
    (void)state;
    dm_breaker *b = dm_breaker_create();
    for (int i = 0; i < THRESHOLD - 1; i++) {
        assert_true(dm_breaker_allow(b, 1000, TIMEOUT_S));
        dm_breaker_report(b, false, 1000, THRESHOLD);
        assert_int_equal(dm_breaker_state_of(b), DM_BREAKER_CLOSED);
    }
    dm_breaker_report(b, false, 1000, THRESHOLD);
    assert_int_equal(dm_breaker_state_of(b), DM_BREAKER_OPEN);
    assert_false(dm_breaker_allow(b, 1000 + 59999, TIMEOUT_S));
    dm_breaker_destroy(b);
}

static void a_success_resets_the_failure_count(void **state)
{
    (void)state;
    dm_breaker *b = dm_breaker_create();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < THRESHOLD - 1; i++)
            dm_breaker_report(b, false, 0, THRESHOLD);
        dm_breaker_report(b, true, 0, THRESHOLD);
    }
    assert_int_equal(dm_breaker_state_of(b), DM_BREAKER_CLOSED);
    dm_breaker_destroy(b);
}

static void after_the_timeout_exactly_one_probe_goes_through(void **state)
{
    (void)state;
    dm_breaker *b = dm_breaker_create();
    for (int i = 0; i < THRESHOLD; i++)
        dm_breaker_report(b, false, 0, THRESHOLD);
    assert_true(dm_breaker_allow(b, TIMEOUT_S * 1000, TIMEOUT_S)); /* the probe */
    assert_int_equal(dm_breaker_state_of(b), DM_BREAKER_HALF_OPEN);
    assert_false(dm_breaker_allow(b, TIMEOUT_S * 1000 + 1, TIMEOUT_S));
    assert_false(dm_breaker_allow(b, TIMEOUT_S * 1000 + 2, TIMEOUT_S));
    dm_breaker_destroy(b);
}

static void a_good_probe_closes_it(void **state)
{
    (void)state;
    dm_breaker *b = dm_breaker_create();
    for (int i = 0; i < THRESHOLD; i++)
        dm_breaker_report(b, false, 0, THRESHOLD);
    assert_true(dm_breaker_allow(b, 60000, TIMEOUT_S));
    dm_breaker_report(b, true, 60001, THRESHOLD);
    assert_int_equal(dm_breaker_state_of(b), DM_BREAKER_CLOSED);
    assert_true(dm_breaker_allow(b, 60002, TIMEOUT_S));
    assert_true(dm_breaker_allow(b, 60003, TIMEOUT_S));
    dm_breaker_destroy(b);
}

static void a_failed_probe_opens_it_for_another_timeout(void **state)
{
    (void)state;
    dm_breaker *b = dm_breaker_create();
    for (int i = 0; i < THRESHOLD; i++)
        dm_breaker_report(b, false, 0, THRESHOLD);
    assert_true(dm_breaker_allow(b, 60000, TIMEOUT_S));
    dm_breaker_report(b, false, 60000, THRESHOLD); /* one failure is enough when probing */
    assert_int_equal(dm_breaker_state_of(b), DM_BREAKER_OPEN);
    assert_false(dm_breaker_allow(b, 119999, TIMEOUT_S));
    assert_true(dm_breaker_allow(b, 120000, TIMEOUT_S));
    dm_breaker_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opens_after_threshold_consecutive_failures),
        cmocka_unit_test(a_success_resets_the_failure_count),
        cmocka_unit_test(after_the_timeout_exactly_one_probe_goes_through),
        cmocka_unit_test(a_good_probe_closes_it),
        cmocka_unit_test(a_failed_probe_opens_it_for_another_timeout),
    };
    return cmocka_run_group_tests_name("breaker", tests, NULL, NULL);
}
