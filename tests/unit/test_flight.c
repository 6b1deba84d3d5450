/* Single flight (worker/cache/flight): one leader per key at a time, followers wake when
 * it is done or when their wait runs out, and keys do not wait for each other. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "cache/flight.h"

#define LONG_WAIT_MS 10000

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
}

static dm_flight *make(void)
{
    dm_flight *f = dm_flight_create();
    assert_non_null(f);
    return f;
}

/* A thread that calls begin once. Threads never assert: cmocka's failures longjmp. */
typedef struct {
    dm_flight *f;
    const char *key;
    int wait_ms;
    atomic_int *ready;      /* counted just before begin */
    atomic_bool *done_seen; /* set by the leader just before done() */
    bool led, after_done;
    int64_t returned_ms, elapsed_ms;
} caller;

static void *call_begin(void *arg)
{
    caller *c = arg;
    if (c->ready)
        atomic_fetch_add(c->ready, 1);
    int64_t t0 = mono_ms();
    c->led = dm_flight_begin(c->f, c->key, c->wait_ms);
    c->returned_ms = mono_ms();
    c->elapsed_ms = c->returned_ms - t0;
    c->after_done = c->done_seen && atomic_load(c->done_seen);
    if (c->led)
        dm_flight_done(c->f, c->key);
    return NULL;
}

static void start(pthread_t *th, caller *c)
{
    assert_int_equal(pthread_create(th, NULL, call_begin, c), 0);
}

/* Waits until n callers are about to call begin, then gives them time to block in it. */
static void let_them_queue(atomic_int *ready, int n)
{
    while (atomic_load(ready) < n)
        sleep_ms(1);
    sleep_ms(100);
}

static void one_leader_many_followers(void **state)
{
    (void)state;
    enum { N = 7 };
    dm_flight *f = make();
    atomic_int ready = 0;
    atomic_bool done_seen = false;
    assert_true(dm_flight_begin(f, "candle:latest:{EURUSD}:1m", LONG_WAIT_MS));
    pthread_t th[N];
    caller c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (caller){.f = f, .key = "candle:latest:{EURUSD}:1m", .wait_ms = LONG_WAIT_MS,
                        .ready = &ready, .done_seen = &done_seen};
        start(&th[i], &c[i]);
    }
    let_them_queue(&ready, N);
    atomic_store(&done_seen, true);
    dm_flight_done(f, "candle:latest:{EURUSD}:1m");
    int followers = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        /* A thread slow enough to arrive after done() may lead a new flight; none may
         * lead while the first one is in flight. */
        if (c[i].led)
            assert_true(c[i].after_done);
        followers += !c[i].led;
    }
    assert_true(followers >= 1);
    dm_flight_destroy(f);
}

static void followers_return_when_the_leader_is_done(void **state)
{
    (void)state;
    enum { N = 4 };
    dm_flight *f = make();
    atomic_int ready = 0;
    atomic_bool done_seen = false;
    assert_true(dm_flight_begin(f, "k", LONG_WAIT_MS));
    pthread_t th[N];
    caller c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (caller){.f = f, .key = "k", .wait_ms = LONG_WAIT_MS, .ready = &ready,
                        .done_seen = &done_seen};
        start(&th[i], &c[i]);
    }
    let_them_queue(&ready, N);
    atomic_store(&done_seen, true);
    int64_t done_ms = mono_ms();
    dm_flight_done(f, "k");
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (c[i].led)
            continue; /* came after done(): see one_leader_many_followers */
        assert_true(c[i].after_done);
        assert_true(c[i].returned_ms - done_ms < LONG_WAIT_MS / 2);
    }
    /* the flight is over: the next caller leads at once */
    assert_true(dm_flight_begin(f, "k", 0));
    dm_flight_done(f, "k");
    dm_flight_destroy(f);
}

static void follower_times_out_when_the_leader_hangs(void **state)
{
    (void)state;
    dm_flight *f = make();
    assert_true(dm_flight_begin(f, "k", LONG_WAIT_MS)); /* and never done, for now */
    pthread_t th;
    caller c = {.f = f, .key = "k", .wait_ms = 150};
    start(&th, &c);
    pthread_join(th, NULL);
    assert_false(c.led);
    assert_true(c.elapsed_ms >= 149);
    assert_true(c.elapsed_ms < LONG_WAIT_MS / 2);
    /* the leader is still in flight: a timed-out follower does not end it */
    int64_t t0 = mono_ms();
    assert_false(dm_flight_begin(f, "k", 0));
    assert_true(mono_ms() - t0 < 100); /* no wait asked, none made */
    dm_flight_done(f, "k");
    assert_true(dm_flight_begin(f, "k", 0));
    dm_flight_done(f, "k");
    dm_flight_destroy(f);
}

static void different_keys_do_not_wait_for_each_other(void **state)
{
    (void)state;
    dm_flight *f = make();
    assert_true(dm_flight_begin(f, "tick:latest:{EURUSD}", LONG_WAIT_MS));
    pthread_t th;
    caller c = {.f = f, .key = "tick:latest:{GBPUSD}", .wait_ms = LONG_WAIT_MS};
    start(&th, &c);
    pthread_join(th, NULL);
    assert_true(c.led);
    assert_true(c.elapsed_ms < LONG_WAIT_MS / 2);
    /* a key that merely starts like another one is another key */
    assert_true(dm_flight_begin(f, "tick:latest:{EURUSD}x", 0));
    dm_flight_done(f, "tick:latest:{EURUSD}x");
    dm_flight_done(f, "tick:latest:{EURUSD}");
    dm_flight_destroy(f);
}

static void done_without_a_flight_is_harmless(void **state)
{
    (void)state;
    dm_flight *f = make();
    dm_flight_done(f, "never-begun");
    assert_true(dm_flight_begin(f, "k", 0));
    dm_flight_done(f, "k");
    dm_flight_done(f, "k"); /* twice */
    assert_true(dm_flight_begin(f, "k", 0));
    dm_flight_destroy(f); /* with a flight still open: freed, not leaked */
}

/* ---- many rounds, many threads ---- */

#define ROUND_THREADS 8
#define ROUND_KEYS 3

typedef struct {
    dm_flight *f;
    atomic_int *leading; /* per key: how many callers lead it right now */
    atomic_bool *stop;
    int id;
    unsigned long led, followed, overlaps;
} rounds_arg;

static void *rounds(void *arg)
{
    rounds_arg *a = arg;
    static const char *const keys[ROUND_KEYS] = {"a", "b", "c"};
    for (int i = 0; !atomic_load(a->stop); i++) {
        int k = (a->id + i) % ROUND_KEYS;
        if (!dm_flight_begin(a->f, keys[k], LONG_WAIT_MS)) {
            a->followed++;
            continue;
        }
        a->overlaps += atomic_fetch_add(&a->leading[k], 1) != 0;
        struct timespec t = {.tv_nsec = 200000}; /* a short backend query */
        nanosleep(&t, NULL);
        atomic_fetch_sub(&a->leading[k], 1);
        a->led++;
        dm_flight_done(a->f, keys[k]);
    }
    return NULL;
}

static void at_most_one_leader_per_key_under_contention(void **state)
{
    (void)state;
    dm_flight *f = make();
    atomic_int leading[ROUND_KEYS] = {0};
    atomic_bool stop = false;
    pthread_t th[ROUND_THREADS];
    rounds_arg args[ROUND_THREADS];
    for (int i = 0; i < ROUND_THREADS; i++) {
        args[i] = (rounds_arg){.f = f, .leading = leading, .stop = &stop, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, rounds, &args[i]), 0);
    }
    sleep_ms(300);
    atomic_store(&stop, true);
    unsigned long led = 0, followed = 0, overlaps = 0;
    for (int i = 0; i < ROUND_THREADS; i++) {
        pthread_join(th[i], NULL);
        led += args[i].led;
        followed += args[i].followed;
        overlaps += args[i].overlaps;
    }
    assert_int_equal(overlaps, 0);
    assert_true(led > 0);
    assert_true(followed > 0);
    dm_flight_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_leader_many_followers),
        cmocka_unit_test(followers_return_when_the_leader_is_done),
        cmocka_unit_test(follower_times_out_when_the_leader_hangs),
        cmocka_unit_test(different_keys_do_not_wait_for_each_other),
        cmocka_unit_test(done_without_a_flight_is_harmless),
        cmocka_unit_test(at_most_one_leader_per_key_under_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
