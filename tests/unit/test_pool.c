/* The connection pool's promises, with a fake backend whose health the test sets and an
 * explicit clock for the keeper. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/pool.h"

typedef struct {
    dm_backend base;
    int serial;
} fake;

static bool g_down;  /* pings fail while set */
static int g_made, g_destroyed, g_pings;

static dm_bstatus fake_ping(dm_backend *b, dm_err *err)
{
    (void)b;
    g_pings++;
    if (!g_down)
        return DM_BS_OK;
    dm_fail(err, DM_E_UNAVAILABLE, "", "down");
    return DM_BS_TRANSIENT;
}

static void fake_destroy(dm_backend *b)
{
    g_destroyed++;
    free(b);
}

static const dm_backend_ops OPS = {.ping = fake_ping, .destroy = fake_destroy};

static dm_backend *make(void *ctx)
{
    (void)ctx;
    fake *f = calloc(1, sizeof *f);
    f->base.ops = &OPS;
    f->base.id = DM_BK_TIMESCALE;
    f->serial = ++g_made;
    return &f->base;
}

static int setup(void **state)
{
    (void)state;
    g_down = false;
    g_made = g_destroyed = g_pings = 0;
    return 0;
}

static dm_pool_stats stats(dm_pool *p)
{
    dm_pool_stats s;
    dm_pool_stats_of(p, &s);
    return s;
}

static void keeper_opens_min_connections_and_checks_them(void **state)
{
    (void)state;
    dm_pool *p = dm_pool_create(DM_BK_TIMESCALE, make, NULL, &(dm_pool_cfg){3, 5, 1});
    dm_pool_maintain(p, dm_mono_ms());
    assert_int_equal(stats(p).open, 3);
    assert_int_equal(g_pings, 3); /* each one connected (pinged) before it counts */
    assert_true(stats(p).up);
    dm_pool_destroy(p);
    assert_int_equal(g_destroyed, g_made);
}

static void never_more_than_max_and_a_waiter_times_out_with_a_clear_error(void **state)
{
    (void)state;
    dm_pool *p = dm_pool_create(DM_BK_TIMESCALE, make, NULL, &(dm_pool_cfg){0, 2, 1});
    dm_err e = {0};
    dm_backend *a = dm_pool_acquire(p, &e), *b = dm_pool_acquire(p, &e);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_null(dm_pool_acquire(p, &e)); /* waits the 1 s timeout */
    assert_int_equal(e.code, DM_E_UNAVAILABLE);
    assert_non_null(strstr(e.message, "pool exhausted"));
    dm_pool_stats s = stats(p);
    assert_int_equal(s.open, 2);
    assert_int_equal(s.in_use, 2);
    assert_int_equal(s.timeouts, 1);
    dm_pool_release(p, a, false);
    dm_backend *c = dm_pool_acquire(p, &e);
    assert_ptr_equal(c, a); /* the idle one is reused, no new connection */
    dm_pool_release(p, b, false);
    dm_pool_release(p, c, false);
    assert_int_equal(g_made, 2);
    dm_pool_destroy(p);
}

typedef struct {
    dm_pool *p;
    dm_backend *got;
} waiter;

static void *wait_for_one(void *arg)
{
    waiter *w = arg;
    dm_err e = {0};
    w->got = dm_pool_acquire(w->p, &e);
    return NULL;
}

static void a_waiter_gets_the_connection_given_back(void **state)
{
    (void)state;
    dm_pool *p = dm_pool_create(DM_BK_TIMESCALE, make, NULL, &(dm_pool_cfg){0, 1, 5});
    dm_err e = {0};
    dm_backend *a = dm_pool_acquire(p, &e);
    waiter w = {p, NULL};
    pthread_t t;
    pthread_create(&t, NULL, wait_for_one, &w);
    usleep(100 * 1000);
    dm_pool_release(p, a, false);
    pthread_join(t, NULL);
    assert_ptr_equal(w.got, a);
    assert_int_equal(stats(p).waited, 1);
    dm_pool_release(p, w.got, false);
    dm_pool_destroy(p);
}

static void a_broken_connection_is_replaced(void **state)
{
    (void)state;
    dm_pool *p = dm_pool_create(DM_BK_TIMESCALE, make, NULL, &(dm_pool_cfg){0, 2, 1});
    dm_err e = {0};
    dm_backend *a = dm_pool_acquire(p, &e);
    dm_pool_release(p, a, true);
    assert_int_equal(g_destroyed, 1);
    assert_int_equal(stats(p).replaced, 1);
    assert_false(stats(p).up);
    dm_backend *b = dm_pool_acquire(p, &e); /* a new one */
    assert_int_equal(((fake *)b)->serial, 2);
    dm_pool_release(p, b, false);
    assert_true(stats(p).up);
    dm_pool_destroy(p);
}

static void a_backend_that_comes_back_is_reconnected_on_the_next_round(void **state)
{
    (void)state;
    dm_pool *p = dm_pool_create(DM_BK_TIMESCALE, make, NULL, &(dm_pool_cfg){2, 4, 1});
    int64_t now = dm_mono_ms();
    dm_pool_maintain(p, now);
    assert_int_equal(stats(p).open, 2);
    g_down = true;
    now += 6000; /* idle connections are due for a check */
    dm_pool_maintain(p, now);
    assert_int_equal(stats(p).open, 0);
    assert_false(stats(p).up);
    dm_pool_maintain(p, now + 1000); /* still down: nothing opens */
    assert_int_equal(stats(p).open, 0);
    g_down = false;
    dm_pool_maintain(p, now + 2000); /* one round (a second) after it is back */
    assert_int_equal(stats(p).open, 2);
    assert_true(stats(p).up);
    dm_pool_destroy(p);
    assert_int_equal(g_destroyed, g_made);
}

static void idle_extras_close_and_a_smaller_max_applies(void **state)
{
    (void)state;
    dm_pool *p = dm_pool_create(DM_BK_TIMESCALE, make, NULL, &(dm_pool_cfg){1, 4, 1});
    dm_err e = {0};
    dm_backend *v[4];
    for (int i = 0; i < 4; i++)
        v[i] = dm_pool_acquire(p, &e);
    dm_pool_configure(p, &(dm_pool_cfg){1, 2, 1});
    for (int i = 0; i < 4; i++)
        dm_pool_release(p, v[i], false);
    assert_int_equal(stats(p).open, 2); /* two closed on return: over the new max */
    dm_pool_maintain(p, dm_mono_ms() + 61000);
    assert_int_equal(stats(p).open, 1); /* down to min after a minute idle */
    dm_pool_destroy(p);
    assert_int_equal(g_destroyed, g_made);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(keeper_opens_min_connections_and_checks_them, setup),
        cmocka_unit_test_setup(never_more_than_max_and_a_waiter_times_out_with_a_clear_error, setup),
        cmocka_unit_test_setup(a_waiter_gets_the_connection_given_back, setup),
        cmocka_unit_test_setup(a_broken_connection_is_replaced, setup),
        cmocka_unit_test_setup(a_backend_that_comes_back_is_reconnected_on_the_next_round, setup),
        cmocka_unit_test_setup(idle_extras_close_and_a_smaller_max_applies, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
