/* Freshness: a read never comes from a copy that is behind another backend's commits, a
 * late update never turns a cached value back, and a worker that may have missed updates
 * does not trust its L1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/l1_backend.h"
#include "pipeline/serve.h"

#define HOUR_MS 3600000LL
#define FIRST_TS (1600000000000LL / HOUR_MS * HOUR_MS)
#define KEY "candle:latest:{EURUSD}:1h"

static void candle_at(dm_candle *c, int i, double close)
{
    memset(c, 0, sizeof *c);
    snprintf(c->symbol, sizeof c->symbol, "EUR/USD");
    c->tf = DM_TF_1H;
    c->ts = FIRST_TS + i * HOUR_MS;
    c->open = c->high = c->low = c->close = close;
    snprintf(c->source, sizeof c->source, "oanda");
}

/* A source holding candles 0..9, the newest (9) closing at `close`; `miss` answers none. */
typedef struct {
    dm_backend base;
    int asked;
    double close;
    bool miss;
} fake_db;

static dm_bstatus db_latest_candles(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err)
{
    (void)symbol, (void)tf, (void)err;
    fake_db *d = (fake_db *)b;
    d->asked++;
    if (d->miss)
        return DM_BS_MISS;
    size_t n = limit < 10 ? limit : 10;
    for (size_t i = 0; i < n; i++)
        candle_at(dm_candle_vec_push(out), (int)(10 - n + i), i + 1 == n ? d->close : 1.0);
    return DM_BS_OK;
}

static dm_bstatus db_write_candles(dm_backend *b, const dm_candle *c, size_t n, const dm_cache_opts *o,
                                   dm_err *err)
{
    (void)b, (void)c, (void)n, (void)o, (void)err;
    return DM_BS_OK;
}

static void db_destroy(dm_backend *b) { (void)b; }

static const dm_backend_ops DB_OPS = {
    .latest_candles = db_latest_candles, .write_candles = db_write_candles, .destroy = db_destroy};

typedef struct {
    dm_strategy_holder *h;
    dm_l1_cache *l1;
    dm_fresh *fresh;
    fake_db pg, df;
    dm_breaker *df_breaker;
    dm_serve *serve;
} fixture;

/* Routes as shipped: l1, dragonfly, timescale. Dragonfly is stale (close 1.1), PostgreSQL
 * has the newest revision (close 1.2). */
static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    dm_strategy st;
    dm_strategy_defaults(&st);
    dm_route *r = &st.routing[DM_OP_GET_CANDLES];
    r->n = 3;
    r->targets[0] = DM_BK_L1;
    r->targets[1] = DM_BK_DRAGONFLY;
    r->targets[2] = DM_BK_TIMESCALE;
    f.h = dm_strategy_holder_create(&st);
    f.l1 = dm_l1_cache_create(100, 1u << 20);
    assert_non_null(f.h);
    assert_non_null(f.l1);
    dm_l1_cache_set_ttl(f.l1, 60000, 60000);
    f.fresh = dm_l1_cache_fresh(f.l1);
    dm_fresh_set_caught_up(f.fresh, DM_BK_TIMESCALE, DM_FRESH_CANDLES, true);
    dm_fresh_set_caught_up(f.fresh, DM_BK_DRAGONFLY, DM_FRESH_CANDLES, true);
    f.pg = (fake_db){.base = {.ops = &DB_OPS, .id = DM_BK_TIMESCALE}, .close = 1.2};
    f.df = (fake_db){.base = {.ops = &DB_OPS, .id = DM_BK_DRAGONFLY}, .close = 1.1};
    f.df_breaker = dm_breaker_create();
    dm_serve_config cfg = {.worker_name = "w1", .strategies = f.h, .l1 = f.l1};
    cfg.backends[DM_BK_L1] = dm_l1_backend_create(f.l1);
    cfg.backends[DM_BK_TIMESCALE] = &f.pg.base;
    cfg.backends[DM_BK_DRAGONFLY] = &f.df.base;
    cfg.breakers[DM_BK_DRAGONFLY] = f.df_breaker;
    f.serve = dm_serve_create(&cfg);
    assert_non_null(f.serve);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dm_serve_destroy(f->serve);
    dm_breaker_destroy(f->df_breaker);
    dm_l1_cache_destroy(f->l1);
    dm_strategy_holder_destroy(f->h);
    return 0;
}

typedef struct {
    int status;
    char served_by[16];
    double newest_close;
    char code[32];
} answer;

static answer ask(fixture *f, int limit)
{
    char req[128];
    int n = snprintf(req, sizeof req, "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":%d}", limit);
    dm_reply r = {0};
    dm_buf_init(&r.body);
    dm_serve_handle(f->serve, DM_SUBJ_CANDLES_LATEST, req, (size_t)n, DM_CT_JSON, &r);
    answer a = {.status = r.status};
    dm_buf_put(&r.body, "", 1);
    const char *body = r.body.data;
    const char *sb = strstr(body, "\"served_by\":\"");
    if (sb)
        sscanf(sb + 13, "%15[^\"]", a.served_by);
    const char *last = NULL;
    for (const char *p = strstr(body, "\"close\":"); p; p = strstr(p + 1, "\"close\":"))
        last = p;
    if (last)
        sscanf(last + 8, "%lf", &a.newest_close);
    const char *code = strstr(body, "\"code\":\"");
    if (code)
        sscanf(code + 8, "%31[^\"]", a.code);
    dm_buf_free(&r.body);
    return a;
}

static void apply_newest(fixture *f, dm_backend_id from, double close, uint64_t seq)
{
    dm_candle c;
    candle_at(&c, 9, close);
    dm_l1_cache_apply_candles(f->l1, from, &c, &seq, 1);
}

/* PostgreSQL committed seq 10 of the key, Dragonfly only seq 9: Dragonfly is not asked. */
static void a_copy_behind_on_the_key_is_not_asked(void **state)
{
    fixture *f = *state;
    apply_newest(f, DM_BK_TIMESCALE, 1.2, 10);
    apply_newest(f, DM_BK_DRAGONFLY, 1.1, 9);
    assert_false(dm_fresh_current(f->fresh, KEY, DM_FRESH_CANDLES, DM_BK_DRAGONFLY, ~0u, NULL));
    answer a = ask(f, 5);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.served_by, "timescale");
    assert_int_equal(f->df.asked, 0);
    assert_true(a.newest_close == 1.2);
    /* Dragonfly catches up: it is current again. */
    apply_newest(f, DM_BK_DRAGONFLY, 1.2, 10);
    assert_true(dm_fresh_current(f->fresh, KEY, DM_FRESH_CANDLES, DM_BK_DRAGONFLY, ~0u, NULL));
}

/* The fill from PostgreSQL is stamped with what PostgreSQL had committed (seq 10): a
 * late update of the same candle from a lagging Dragonfly (seq 9) does not turn it back. */
static void a_late_update_does_not_turn_a_cached_value_back(void **state)
{
    fixture *f = *state;
    apply_newest(f, DM_BK_TIMESCALE, 1.2, 10);
    answer a = ask(f, 5); /* miss, Dragonfly behind: PostgreSQL answers and fills L1 */
    assert_string_equal(a.served_by, "timescale");
    apply_newest(f, DM_BK_DRAGONFLY, 1.1, 9);
    a = ask(f, 5);
    assert_string_equal(a.served_by, "l1");
    assert_true(a.newest_close == 1.2);
    /* a newer revision does replace it */
    apply_newest(f, DM_BK_DRAGONFLY, 1.3, 11);
    a = ask(f, 5);
    assert_string_equal(a.served_by, "l1");
    assert_true(a.newest_close == 1.3);
}

/* Until a backend has caught up with the stream, no copy of it is current. */
static void a_backend_not_caught_up_is_not_asked(void **state)
{
    fixture *f = *state;
    dm_fresh_set_caught_up(f->fresh, DM_BK_DRAGONFLY, DM_FRESH_CANDLES, false);
    answer a = ask(f, 5);
    assert_string_equal(a.served_by, "timescale");
    assert_int_equal(f->df.asked, 0);
    dm_fresh_set_caught_up(f->fresh, DM_BK_TIMESCALE, DM_FRESH_CANDLES, false);
    dm_l1_cache_restart(f->l1); /* empty L1 again */
    a = ask(f, 5);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.code, "unavailable");
}

/* A suspended L1 (NATS lost) answers nothing and takes no fill; a restart empties it. */
static void a_suspended_l1_is_bypassed(void **state)
{
    fixture *f = *state;
    answer a = ask(f, 5);
    assert_string_equal(a.served_by, "dragonfly"); /* fills L1 */
    a = ask(f, 5);
    assert_string_equal(a.served_by, "l1");
    dm_fresh_suspend(f->fresh);
    f->df.asked = 0;
    a = ask(f, 5);
    assert_string_equal(a.served_by, "dragonfly");
    a = ask(f, 5);
    assert_string_equal(a.served_by, "dragonfly"); /* nothing was filled meanwhile */
    assert_int_equal(f->df.asked, 2);
    dm_l1_cache_restart(f->l1);
    assert_false(dm_fresh_suspended(f->fresh));
    assert_false(dm_fresh_caught_up(f->fresh, DM_BK_DRAGONFLY, DM_FRESH_CANDLES));
}

/* PostgreSQL holds every candle: when it has none, the symbol is not_found, even though
 * Dragonfly was skipped with its circuit open. */
static void not_found_when_the_complete_store_has_none(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 5; i++)
        dm_breaker_report(f->df_breaker, false, dm_now_ms(), 5);
    assert_int_equal(dm_breaker_state_of(f->df_breaker), DM_BREAKER_OPEN);
    f->pg.miss = true;
    answer a = ask(f, 5);
    assert_int_equal(a.status, 404);
    assert_string_equal(a.code, "not_found");
    /* a cache that misses alone is not a not_found */
    f->pg.miss = false;
    dm_fresh_set_caught_up(f->fresh, DM_BK_TIMESCALE, DM_FRESH_CANDLES, false);
    a = ask(f, 5);
    assert_int_equal(a.status, 503);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_copy_behind_on_the_key_is_not_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(a_late_update_does_not_turn_a_cached_value_back, setup, teardown),
        cmocka_unit_test_setup_teardown(a_backend_not_caught_up_is_not_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(a_suspended_l1_is_bypassed, setup, teardown),
        cmocka_unit_test_setup_teardown(not_found_when_the_complete_store_has_none, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
