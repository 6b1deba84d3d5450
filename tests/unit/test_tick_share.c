/* The worker's ring of decoded ticks (worker/pipeline/tick_share): found only under the
 * exact (sequence, stored time) it was kept under, overwritten by a newer tick in its
 * slot, and never keyed by an unknown part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/tick_share.h"

static dm_tick tick(int64_t ts)
{
    dm_tick t;
    memset(&t, 0, sizeof t);
    strcpy(t.symbol, "EUR/USD");
    strcpy(t.source, "oanda");
    t.ts = ts;
    t.bid = 1.1;
    t.ask = 1.2;
    return t;
}

static void found_only_under_its_exact_key(void **state)
{
    (void)state;
    dm_tick_share *s = dm_tick_share_create(10); /* rounded up to 16 */
    assert_non_null(s);
    dm_tick_key put[2] = {{5, 111}, {6, 222}};
    dm_tick ticks[2] = {tick(1000), tick(2000)};
    dm_tick_share_put(s, put, ticks, 2);
    dm_tick_key ask[4] = {{6, 222}, {5, 112}, {7, 111}, {5, 111}};
    dm_tick out[4];
    bool found[4];
    assert_int_equal(dm_tick_share_find(s, ask, 4, out, found), 2);
    assert_true(found[0]);
    assert_int_equal(out[0].ts, 2000);
    assert_false(found[1]); /* same sequence, stored at another time */
    assert_false(found[2]);
    assert_true(found[3]);
    assert_int_equal(out[3].ts, 1000);
    dm_tick_share_destroy(s);
}

static void a_newer_tick_takes_the_slot(void **state)
{
    (void)state;
    dm_tick_share *s = dm_tick_share_create(16);
    dm_tick_key k[2] = {{3, 1}, {3 + 16, 2}};
    dm_tick t[2] = {tick(1), tick(2)};
    dm_tick_share_put(s, k, t, 2);
    dm_tick out[2];
    bool found[2];
    assert_int_equal(dm_tick_share_find(s, k, 2, out, found), 1);
    assert_false(found[0]);
    assert_true(found[1]);
    assert_int_equal(out[1].ts, 2);
    dm_tick_share_destroy(s);
}

static void unknown_keys_are_never_kept_or_found(void **state)
{
    (void)state;
    dm_tick_share *s = dm_tick_share_create(16);
    /* A kept tick in the slot an unknown key would take: it must survive the put. */
    dm_tick_key kept = {4, 7};
    dm_tick t0 = tick(7);
    dm_tick_share_put(s, &kept, &t0, 1);
    dm_tick_key k[2] = {{0, 9}, {4, 0}};
    dm_tick t[2] = {tick(1), tick(2)};
    dm_tick_share_put(s, k, t, 2);
    dm_tick out[3];
    bool found[3];
    dm_tick_key ask[3] = {{0, 9}, {4, 0}, {4, 7}};
    assert_int_equal(dm_tick_share_find(s, ask, 3, out, found), 1);
    assert_false(found[0]);
    assert_false(found[1]); /* a fresh slot is {0, 0}: an unknown key must not match it */
    assert_true(found[2]);
    assert_int_equal(out[2].ts, 7);
    dm_tick_share_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(found_only_under_its_exact_key),
        cmocka_unit_test(a_newer_tick_takes_the_slot),
        cmocka_unit_test(unknown_keys_are_never_kept_or_found),
    };
    return cmocka_run_group_tests_name("tick_share", tests, NULL, NULL);
}
