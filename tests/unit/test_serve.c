/* Serve: how a latest-value request meets the single flight. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/flight.h"
#include "cache/l1_backend.h"
#include "pipeline/serve.h"

#define FLIGHT_KEY "candle:latest:{EURUSD}:1h"
#define HOUR_MS 3600000LL
#define FIRST_TS 1600000000000LL / HOUR_MS * HOUR_MS

static void candle_at(dm_candle *c, int i)
{
    memset(c, 0, sizeof *c);
    snprintf(c->symbol, sizeof c->symbol, "EUR/USD");
    c->tf = DM_TF_1H;
    c->ts = FIRST_TS + i * HOUR_MS;
    c->open = c->close = 1.1;
    c->high = 1.2;
    c->low = 1.0;
    snprintf(c->source, sizeof c->source, "oanda");
}

/* The database: counts the questions, answers with ten candles. */
typedef struct {
    dm_backend base;
    int asked;
} counting_db;

static dm_bstatus db_latest_candles(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err)
{
    (void)symbol, (void)tf, (void)err;
    ((counting_db *)b)->asked++;
    for (size_t i = 0; i < limit && i < 10; i++)
        candle_at(dm_candle_vec_push(out), (int)(10 - (limit < 10 ? limit : 10) + i));
    return DM_BS_OK;
}

static void db_destroy(dm_backend *b) { (void)b; }

static const dm_backend_ops DB_OPS = {.latest_candles = db_latest_candles, .destroy = db_destroy};

typedef struct {
    dm_strategy_holder *h;
    dm_l1_cache *l1;
    dm_flight *flight;
    counting_db db;
    dm_serve *serve;
} fixture;

/* L1 holds the newest five candles of EUR/USD 1h; the database holds ten. */
static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    dm_strategy st;
    dm_strategy_defaults(&st);
    st.routing[DM_OP_GET_CANDLES].n = 2; /* as strategy/strategy.json: L1 first */
    st.routing[DM_OP_GET_CANDLES].targets[0] = DM_BK_L1;
    st.routing[DM_OP_GET_CANDLES].targets[1] = DM_BK_TIMESCALE;
    f.h = dm_strategy_holder_create(&st);
    f.l1 = dm_l1_cache_create(100, 1u << 20);
    dm_l1_cache_set_ttl(f.l1, 60000, 60000);
    dm_fresh_set_caught_up(dm_l1_cache_fresh(f.l1), DM_BK_TIMESCALE, DM_FRESH_CANDLES, true);
    f.flight = dm_flight_create();
    f.db = (counting_db){.base = {.ops = &DB_OPS, .id = DM_BK_TIMESCALE}};
    dm_serve_config cfg = {.worker_name = "w1", .strategies = f.h, .flight = f.flight, .l1 = f.l1};
    cfg.backends[DM_BK_L1] = dm_l1_backend_create(f.l1);
    cfg.backends[DM_BK_TIMESCALE] = &f.db.base;
    assert_non_null(f.h);
    assert_non_null(f.l1);
    assert_non_null(f.flight);
    assert_non_null(cfg.backends[DM_BK_L1]);
    /* a fill is taken only after a miss of the same key */
    dm_backend *l1 = dm_l1_backend_create(f.l1);
    dm_candle_vec none = {0}, five = {0};
    dm_err err = {0};
    assert_int_equal(l1->ops->latest_candles(l1, "EUR/USD", DM_TF_1H, 5, &none, &err), DM_BS_MISS);
    for (int i = 5; i < 10; i++)
        candle_at(dm_candle_vec_push(&five), i);
    dm_cache_opts o = {.ttl_s = 3600, .depth = 1000};
    assert_int_equal(l1->ops->write_candles(l1, five.v, five.n, &o, &err), DM_BS_OK);
    l1->ops->destroy(l1);
    dm_candle_vec_free(&none);
    dm_candle_vec_free(&five);
    f.serve = dm_serve_create(&cfg);
    assert_non_null(f.serve);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dm_serve_destroy(f->serve);
    dm_flight_destroy(f->flight);
    dm_l1_cache_destroy(f->l1);
    dm_strategy_holder_destroy(f->h);
    return 0;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static bool served_by(const dm_reply *r, const char *level)
{
    char want[64];
    int n = snprintf(want, sizeof want, "\"served_by\":\"%s\"", level);
    bool ok = r->body.data && memmem(r->body.data, r->body.len, want, (size_t)n) != NULL;
    if (!ok)
        print_message("reply (%zu bytes): %.*s\n", r->body.len, (int)r->body.len,
                      r->body.data ? r->body.data : "");
    return ok;
}

/* Asks for the newest `limit` candles; returns how long the answer took. */
static double ask(fixture *f, int limit, dm_reply *r)
{
    char req[128];
    int n = snprintf(req, sizeof req, "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":%d}", limit);
    double t0 = now_ms();
    dm_serve_handle(f->serve, DM_SUBJ_CANDLES_LATEST, req, (size_t)n, DM_CT_JSON, r);
    return now_ms() - t0;
}

/* Another request's database query for the same key must not hold up an answer L1 has:
 * the wait for a leader is meant for misses only. */
static void l1_hit_does_not_wait_for_a_flight_on_its_key(void **state)
{
    fixture *f = *state;
    assert_true(dm_flight_begin(f->flight, FLIGHT_KEY, 0)); /* a leader that takes its time */
    dm_reply r = {0};
    dm_buf_init(&r.body);
    double took = ask(f, 5, &r);
    dm_flight_done(f->flight, FLIGHT_KEY);
    int status = r.status;
    bool from_l1 = served_by(&r, "l1");
    dm_buf_free(&r.body);
    assert_int_equal(status, 200);
    assert_true(from_l1);
    assert_true(took < 500); /* a follower would wait the flight's 2 s */
    assert_int_equal(f->db.asked, 0);
}

static void *finish_after(void *arg)
{
    fixture *f = arg;
    usleep(300 * 1000);
    dm_flight_done(f->flight, FLIGHT_KEY);
    return NULL;
}

/* A miss still joins the flight: it waits for the leader and then asks the database
 * itself only because the leader (the test) filled nothing. */
static void l1_miss_still_waits_for_the_leader(void **state)
{
    fixture *f = *state;
    assert_true(dm_flight_begin(f->flight, FLIGHT_KEY, 0));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, finish_after, f), 0);
    dm_reply r = {0};
    dm_buf_init(&r.body);
    double took = ask(f, 10, &r); /* L1 holds 5: a miss */
    pthread_join(th, NULL);
    int status = r.status;
    bool from_db = served_by(&r, "timescale");
    dm_buf_free(&r.body);
    assert_int_equal(status, 200);
    assert_true(from_db);
    assert_true(took >= 250);
    assert_int_equal(f->db.asked, 1);
}

/* Wrong subjects, strictness: a typo is answered with the subject meant, an unknown member
 * of a request is refused by name. */
static void a_mistyped_subject_or_unknown_member_is_named(void **state)
{
    fixture *f = *state;
    dm_reply r = {0};
    dm_buf_init(&r.body);
    dm_serve_handle(f->serve, "dm.v1.candle.latest", "{}", 2, DM_CT_JSON, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.data, "did you mean dm.v1.candles.latest?"));
    dm_serve_handle(f->serve, "dm.v1.nothing.like.it", "{}", 2, DM_CT_JSON, &r);
    assert_null(strstr(r.body.data, "did you mean"));
    const char req[] = "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":5,\"limt\":3}";
    dm_serve_handle(f->serve, DM_SUBJ_CANDLES_LATEST, req, sizeof req - 1, DM_CT_JSON, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "\"field\":\"limt\""));
    dm_buf_free(&r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(l1_hit_does_not_wait_for_a_flight_on_its_key, setup, teardown),
        cmocka_unit_test_setup_teardown(l1_miss_still_waits_for_the_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(a_mistyped_subject_or_unknown_member_is_named, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
