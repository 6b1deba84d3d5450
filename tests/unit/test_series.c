/* The closes the analysis engines search: loaded once per timeframe, kept current from
 * commit notices in stream order, read again when stale, forgotten when notices may have
 * been missed, within a bound on memory; and the windows around written candles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "engine/series.h"

#define HOUR_MS 3600000LL
#define T0 (1600000000000LL / HOUR_MS * HOUR_MS)
#define AT(i) (T0 + (int64_t)(i)*HOUR_MS)

/* ---- a fake PostgreSQL `closes` ------------------------------------------------------ */

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    dm_tf tf;
    int64_t ts;
    double close;
} row;

#define ROWS_MAX 4096

/* A table of closes, read as PostgreSQL would (ordered by symbol, then open time). It
 * counts reads, remembers the symbol asked for, can fail TRANSIENT, and can hear commit
 * notices in the middle of a read. */
typedef struct {
    row rows[ROWS_MAX];
    size_t n;
    atomic_int reads;
    char asked[DM_SYMBOL_MAX + 1]; /* "" for a whole timeframe */
    bool fail;
    dm_series_store *store; /* where notices heard during a read go */
    dm_candle heard[8];
    uint64_t heard_seqs[8];
    size_t n_heard;
} fake_pg;

static void pg_put(fake_pg *pg, const char *symbol, dm_tf tf, int64_t ts, double close)
{
    for (size_t i = 0; i < pg->n; i++)
        if (strcmp(pg->rows[i].symbol, symbol) == 0 && pg->rows[i].tf == tf &&
            pg->rows[i].ts == ts) {
            pg->rows[i].close = close;
            return;
        }
    assert_true(pg->n < ROWS_MAX);
    row *r = &pg->rows[pg->n++];
    snprintf(r->symbol, sizeof r->symbol, "%s", symbol);
    r->tf = tf;
    r->ts = ts;
    r->close = close;
}

/* closes i0..i1-1 of symbol in tf, close = base + i */
static void pg_fill(fake_pg *pg, const char *symbol, dm_tf tf, int i0, int i1, double base)
{
    for (int i = i0; i < i1; i++)
        pg_put(pg, symbol, tf, AT(i), base + i);
}

static int by_symbol_then_ts(const void *a, const void *b)
{
    const row *x = a, *y = b;
    int c = strcmp(x->symbol, y->symbol);
    return c ? c : (x->ts > y->ts) - (x->ts < y->ts);
}

/* Loads of two timeframes may read at once. */
static pthread_mutex_t asked_mu = PTHREAD_MUTEX_INITIALIZER;

static dm_bstatus pg_read(void *ctx, dm_tf tf, const char *symbol, dm_close_sink sink,
                          void *sink_ctx, dm_err *err)
{
    fake_pg *pg = ctx;
    atomic_fetch_add(&pg->reads, 1);
    pthread_mutex_lock(&asked_mu);
    snprintf(pg->asked, sizeof pg->asked, "%s", symbol ? symbol : "");
    pthread_mutex_unlock(&asked_mu);
    if (pg->fail)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "PostgreSQL is down");
    /* the read's snapshot is taken; commits published meanwhile are heard by the worker */
    if (pg->n_heard)
        dm_series_note(pg->store, pg->heard, pg->heard_seqs, pg->n_heard);
    row *v = malloc((pg->n ? pg->n : 1) * sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    for (size_t i = 0; i < pg->n; i++)
        if (pg->rows[i].tf == tf && (symbol == NULL || strcmp(pg->rows[i].symbol, symbol) == 0))
            v[k++] = pg->rows[i];
    qsort(v, k, sizeof *v, by_symbol_then_ts);
    dm_bstatus st = DM_BS_OK;
    for (size_t i = 0; i < k && st == DM_BS_OK; i++)
        if (!sink(sink_ctx, v[i].symbol, v[i].ts, v[i].close))
            st = dm_bfail(err, DM_BS_PERMANENT, "",
                          "closes of %s not loaded: over the memory bound", dm_tf_name(tf));
    free(v);
    return st;
}

/* ---- helpers ------------------------------------------------------------------------- */

static dm_candle candle(const char *symbol, dm_tf tf, int i, double close)
{
    dm_candle c;
    memset(&c, 0, sizeof c);
    snprintf(c.symbol, sizeof c.symbol, "%s", symbol);
    c.tf = tf;
    c.ts = AT(i);
    c.open = c.high = c.low = c.close = close;
    snprintf(c.source, sizeof c.source, "oanda");
    return c;
}

static void note1(dm_series_store *s, const char *symbol, dm_tf tf, int i, double close,
                  uint64_t seq)
{
    dm_candle c = candle(symbol, tf, i, close);
    dm_series_note(s, &c, &seq, 1);
}

typedef struct {
    dm_series_store *s;
    fake_pg pg;
} fixture;

static int setup_bounded(void **state, size_t max_closes)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->s = dm_series_create(max_closes);
    assert_non_null(f->s);
    f->pg.store = f->s;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_bounded(state, 1000000);
}
static int setup_small(void **state)
{
    return setup_bounded(state, 10);
}

static int teardown(void **state)
{
    fixture *f = *state;
    dm_series_destroy(f->s);
    free(f);
    return 0;
}

static dm_series_view acquire_ok(fixture *f, dm_tf tf)
{
    dm_series_view v = {0};
    dm_err err = {0};
    assert_int_equal(dm_series_acquire(f->s, tf, pg_read, &f->pg, &v, &err), DM_BS_OK);
    return v;
}

/* The close of symbol at AT(i) in tf; -1 when absent. */
static double close_at(fixture *f, dm_tf tf, const char *symbol, int i)
{
    dm_series_view v = acquire_ok(f, tf);
    double out = -1;
    dm_pseries *p = dm_series_find(&v, symbol);
    for (size_t j = 0; p && j < dm_pseries_len(p); j++)
        if (dm_pseries_ts(p)[j] == AT(i))
            out = dm_pseries_close(p)[j];
    dm_series_release(f->s, tf);
    return out;
}

static size_t len_of(fixture *f, dm_tf tf, const char *symbol)
{
    dm_series_view v = acquire_ok(f, tf);
    dm_pseries *p = dm_series_find(&v, symbol);
    size_t n = p ? dm_pseries_len(p) : 0;
    dm_series_release(f->s, tf);
    return n;
}

static void assert_ascending(const dm_pseries *p)
{
    for (size_t j = 1; j < dm_pseries_len(p); j++)
        assert_true(dm_pseries_ts(p)[j - 1] < dm_pseries_ts(p)[j]);
}

/* ---- loads --------------------------------------------------------------------------- */

static void a_first_acquire_loads_the_timeframe_once_sorted_by_symbol(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "USD/JPY", DM_TF_1H, 0, 3, 100);
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    pg_fill(&f->pg, "GBP/USD", DM_TF_1H, 0, 4, 2);
    pg_fill(&f->pg, "EUR/USD", DM_TF_1D, 0, 7, 1); /* another timeframe */

    dm_series_view v = acquire_ok(f, DM_TF_1H);
    assert_int_equal(f->pg.reads, 1);
    assert_string_equal(f->pg.asked, ""); /* the whole timeframe in one read */
    assert_int_equal(v.n, 3);
    assert_string_equal(dm_pseries_symbol(v.series[0]), "EUR/USD");
    assert_string_equal(dm_pseries_symbol(v.series[1]), "GBP/USD");
    assert_string_equal(dm_pseries_symbol(v.series[2]), "USD/JPY");

    dm_pseries *gbp = dm_series_find(&v, "GBP/USD");
    assert_ptr_equal(gbp, v.series[1]);
    assert_int_equal(dm_pseries_len(gbp), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(dm_pseries_ts(gbp)[i], AT(i));
        assert_true(dm_pseries_close(gbp)[i] == 2 + i);
    }
    assert_null(dm_series_find(&v, "AUD/USD")); /* before the first */
    assert_null(dm_series_find(&v, "FOO/BAR")); /* between two */
    assert_null(dm_series_find(&v, "ZAR/JPY")); /* after the last */
    dm_series_release(f->s, DM_TF_1H);
    assert_int_equal(dm_series_closes(f->s), 12);

    v = acquire_ok(f, DM_TF_1H);
    assert_int_equal(v.n, 3);
    dm_series_release(f->s, DM_TF_1H);
    assert_int_equal(f->pg.reads, 1); /* held: not read again */
}

static void an_empty_timeframe_loads_to_an_empty_view(void **state)
{
    fixture *f = *state;
    dm_series_view v = acquire_ok(f, DM_TF_1W);
    assert_int_equal(v.n, 0);
    assert_null(dm_series_find(&v, "EUR/USD"));
    dm_series_release(f->s, DM_TF_1W);
    (void)acquire_ok(f, DM_TF_1W);
    dm_series_release(f->s, DM_TF_1W);
    assert_int_equal(f->pg.reads, 1);
}

static void a_failed_load_leaves_nothing_and_the_next_acquire_tries_again(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    f->pg.fail = true;
    dm_series_view v = {0};
    dm_err err = {0};
    assert_int_equal(dm_series_acquire(f->s, DM_TF_1H, pg_read, &f->pg, &v, &err), DM_BS_TRANSIENT);
    assert_string_equal(err.message, "PostgreSQL is down");
    assert_int_equal(dm_series_closes(f->s), 0);

    f->pg.fail = false;
    v = acquire_ok(f, DM_TF_1H);
    assert_int_equal(f->pg.reads, 2);
    assert_int_equal(v.n, 1);
    assert_int_equal(dm_pseries_len(v.series[0]), 5);
    dm_series_release(f->s, DM_TF_1H);
}

/* ---- notices ------------------------------------------------------------------------- */

static void commits_heard_before_a_load_join_it_where_postgresql_lacks_them(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 3, 1);
    assert_int_equal(dm_series_heard(f->s, DM_TF_1H), 0);
    note1(f->s, "EUR/USD", DM_TF_1H, 7, 42, 5);
    note1(f->s, "EUR/USD", DM_TF_1H, 8, 43, 3); /* heard is the newest, not the last */
    note1(f->s, "EUR/USD", DM_TF_1H, 1, 99, 2); /* PostgreSQL holds that candle: its close stands */
    assert_int_equal(dm_series_heard(f->s, DM_TF_1H), 5);
    assert_int_equal(dm_series_heard(f->s, DM_TF_1D), 0);
    assert_int_equal(dm_series_closes(f->s), 0); /* nothing loaded, nothing held */

    /* Another backend committed 7 and 8 before PostgreSQL did: the load must not lose them. */
    assert_int_equal(len_of(f, DM_TF_1H, "EUR/USD"), 5);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 7) == 42);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 1) != 99);
}

static void notices_after_the_load_append_revise_and_insert(void **state)
{
    fixture *f = *state;
    pg_put(&f->pg, "EUR/USD", DM_TF_1H, AT(0), 1.0);
    pg_put(&f->pg, "EUR/USD", DM_TF_1H, AT(2), 1.2);
    pg_put(&f->pg, "EUR/USD", DM_TF_1H, AT(4), 1.4);
    pg_put(&f->pg, "USD/JPY", DM_TF_1H, AT(0), 100);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);

    note1(f->s, "EUR/USD", DM_TF_1H, 5, 1.5, 10);  /* append */
    note1(f->s, "EUR/USD", DM_TF_1H, 2, 1.25, 11); /* revise */
    note1(f->s, "EUR/USD", DM_TF_1H, 3, 1.3, 12);  /* insert in the middle */
    note1(f->s, "GBP/USD", DM_TF_1H, 0, 2.0, 13);  /* new symbols, in order */
    note1(f->s, "AUD/USD", DM_TF_1H, 0, 0.7, 14);
    note1(f->s, "ZAR/JPY", DM_TF_1H, 0, 8.0, 15);
    assert_int_equal(dm_series_heard(f->s, DM_TF_1H), 15);

    dm_series_view v = acquire_ok(f, DM_TF_1H);
    assert_int_equal(f->pg.reads, 1);
    const char *order[] = {"AUD/USD", "EUR/USD", "GBP/USD", "USD/JPY", "ZAR/JPY"};
    assert_int_equal(v.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(dm_pseries_symbol(v.series[i]), order[i]);
    dm_pseries *eur = dm_series_find(&v, "EUR/USD");
    const double want[] = {1.0, 1.25, 1.3, 1.4, 1.5};
    const int at[] = {0, 2, 3, 4, 5};
    assert_int_equal(dm_pseries_len(eur), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(dm_pseries_ts(eur)[i], AT(at[i]));
        assert_true(dm_pseries_close(eur)[i] == want[i]);
    }
    dm_series_release(f->s, DM_TF_1H);
    assert_int_equal(dm_series_closes(f->s), 9);
}

static void a_notice_heard_during_the_load_is_applied_after_it(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1); /* the read's snapshot: close at 2 is 3 */
    f->pg.heard[0] = candle("EUR/USD", DM_TF_1H, 2, 9.0);
    f->pg.heard[1] = candle("EUR/USD", DM_TF_1H, 5, 6.0);
    f->pg.heard[2] = candle("GBP/USD", DM_TF_1H, 0, 2.0);
    f->pg.heard_seqs[0] = 20, f->pg.heard_seqs[1] = 21, f->pg.heard_seqs[2] = 22;
    f->pg.n_heard = 3;

    dm_series_view v = acquire_ok(f, DM_TF_1H);
    assert_int_equal(v.n, 2);
    dm_series_release(f->s, DM_TF_1H);
    f->pg.n_heard = 0;
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 2) == 9.0); /* the notice, not the snapshot */
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 5) == 6.0);
    assert_true(close_at(f, DM_TF_1H, "GBP/USD", 0) == 2.0);
    assert_int_equal(len_of(f, DM_TF_1H, "EUR/USD"), 6);
    assert_int_equal(dm_series_heard(f->s, DM_TF_1H), 22);
    assert_int_equal(f->pg.reads, 1);
}

static void a_late_revision_does_not_turn_a_close_back(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);

    note1(f->s, "EUR/USD", DM_TF_1H, 2, 2.5, 20);
    note1(f->s, "EUR/USD", DM_TF_1H, 2, 2.1, 15); /* from a lagging backend */
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 2) == 2.5);

    /* the same in one batch, and a later revision still applies */
    dm_candle c[2] = {candle("EUR/USD", DM_TF_1H, 3, 3.9), candle("EUR/USD", DM_TF_1H, 3, 3.1)};
    uint64_t seqs[2] = {31, 30};
    dm_series_note(f->s, c, seqs, 2);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 3) == 3.9);
    note1(f->s, "EUR/USD", DM_TF_1H, 2, 2.7, 32);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 2) == 2.7);
    /* the same candle in another timeframe is another candle */
    note1(f->s, "EUR/USD", DM_TF_1H, 4, 4.4, 40);
    (void)acquire_ok(f, DM_TF_1D);
    dm_series_release(f->s, DM_TF_1D);
    note1(f->s, "EUR/USD", DM_TF_1D, 4, 7.0, 33);
    assert_true(close_at(f, DM_TF_1D, "EUR/USD", 4) == 7.0);
}

static void a_late_notice_heard_during_the_load_does_not_turn_a_close_back(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    f->pg.heard[0] = candle("EUR/USD", DM_TF_1H, 2, 9.0);
    f->pg.heard[1] = candle("EUR/USD", DM_TF_1H, 2, 8.0);
    f->pg.heard_seqs[0] = 20, f->pg.heard_seqs[1] = 19;
    f->pg.n_heard = 2;
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    f->pg.n_heard = 0;
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 2) == 9.0);
}

/* ---- stale series, forgetting -------------------------------------------------------- */

static void a_stale_series_is_read_again_before_it_is_searched(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    pg_fill(&f->pg, "GBP/USD", DM_TF_1H, 0, 3, 2);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);

    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 5, 40, 1); /* a backfill no notice carried */
    pg_fill(&f->pg, "GBP/USD", DM_TF_1H, 3, 6, 2);  /* not marked: stays as held */
    dm_series_stale(f->s, "EUR/USD", DM_TF_1H, 99);

    dm_series_view v = acquire_ok(f, DM_TF_1H);
    assert_int_equal(f->pg.reads, 2);
    assert_string_equal(f->pg.asked, "EUR/USD");
    assert_int_equal(v.n, 2);
    dm_pseries *eur = dm_series_find(&v, "EUR/USD");
    assert_int_equal(dm_pseries_len(eur), 40);
    assert_ascending(eur);
    assert_true(dm_pseries_close(eur)[39] == 40);
    assert_int_equal(dm_pseries_len(dm_series_find(&v, "GBP/USD")), 3);
    dm_series_release(f->s, DM_TF_1H);
    assert_int_equal(dm_series_closes(f->s), 43);

    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    assert_int_equal(f->pg.reads, 2); /* swapped in: no longer stale */
}

static void a_stale_symbol_not_yet_held_is_read(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    pg_fill(&f->pg, "NZD/USD", DM_TF_1H, 0, 4, 0.6);
    dm_series_stale(f->s, "NZD/USD", DM_TF_1H, 7);
    assert_int_equal(len_of(f, DM_TF_1H, "NZD/USD"), 4);
    assert_string_equal(f->pg.asked, "NZD/USD");
    assert_int_equal(f->pg.reads, 2);
}

static void a_failed_reread_keeps_the_series_stale(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 5, 8, 1);
    dm_series_stale(f->s, "EUR/USD", DM_TF_1H, 9);
    f->pg.fail = true;
    dm_series_view v = {0};
    dm_err err = {0};
    assert_int_equal(dm_series_acquire(f->s, DM_TF_1H, pg_read, &f->pg, &v, &err), DM_BS_TRANSIENT);
    f->pg.fail = false;
    assert_int_equal(len_of(f, DM_TF_1H, "EUR/USD"), 8);
    assert_int_equal(f->pg.reads, 3);
}

static void a_notice_heard_while_a_stale_series_is_read_again_is_kept(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 5, 8, 1);
    dm_series_stale(f->s, "EUR/USD", DM_TF_1H, 30);
    /* committed after the re-read's snapshot was taken */
    f->pg.heard[0] = candle("EUR/USD", DM_TF_1H, 8, 9.0);
    f->pg.heard[1] = candle("EUR/USD", DM_TF_1H, 1, 7.0);
    f->pg.heard_seqs[0] = 31, f->pg.heard_seqs[1] = 32;
    f->pg.n_heard = 2;
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    f->pg.n_heard = 0;
    assert_int_equal(f->pg.reads, 2);
    assert_int_equal(len_of(f, DM_TF_1H, "EUR/USD"), 9);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 8) == 9.0);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 1) == 7.0);
    assert_int_equal(dm_series_closes(f->s), 9);
}

static void forget_drops_everything_and_the_next_acquire_loads_again(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 5, 1);
    pg_fill(&f->pg, "EUR/USD", DM_TF_1D, 0, 2, 1);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    (void)acquire_ok(f, DM_TF_1D);
    dm_series_release(f->s, DM_TF_1D);
    note1(f->s, "EUR/USD", DM_TF_1H, 5, 6.5, 50);
    note1(f->s, "EUR/USD", DM_TF_1D, 1, 2.5, 51);
    assert_int_equal(dm_series_closes(f->s), 8);

    dm_series_forget(f->s);
    assert_int_equal(dm_series_closes(f->s), 0);
    assert_int_equal(dm_series_heard(f->s, DM_TF_1H), 0);
    assert_int_equal(dm_series_heard(f->s, DM_TF_1D), 0);
    note1(f->s, "EUR/USD", DM_TF_1H, 6, 7.5, 52); /* heard before the next load: joins it */

    assert_int_equal(len_of(f, DM_TF_1H, "EUR/USD"), 6); /* what PostgreSQL holds, and that commit */
    assert_int_equal(f->pg.reads, 3);
    assert_true(close_at(f, DM_TF_1D, "EUR/USD", 1) == 2); /* PostgreSQL's, notice forgotten */
    assert_int_equal(f->pg.reads, 4);
    /* forgotten revisions no longer order the ones to come */
    note1(f->s, "EUR/USD", DM_TF_1H, 4, 4.4, 1);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 4) == 4.4);
}

/* ---- the bound on memory (10 closes) ------------------------------------------------- */

static void a_load_over_the_memory_bound_fails_clearly(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 6, 1);
    pg_fill(&f->pg, "GBP/USD", DM_TF_1H, 0, 6, 2);
    dm_series_view v = {0};
    dm_err err = {0};
    assert_int_equal(dm_series_acquire(f->s, DM_TF_1H, pg_read, &f->pg, &v, &err), DM_BS_PERMANENT);
    assert_non_null(strstr(err.message, "over the memory bound"));
    assert_int_equal(dm_series_closes(f->s), 0); /* nothing half-loaded */

    memset(&err, 0, sizeof err);
    assert_int_equal(dm_series_acquire(f->s, DM_TF_1H, pg_read, &f->pg, &v, &err), DM_BS_PERMANENT);
    assert_int_equal(f->pg.reads, 2); /* tried again, not remembered as loaded */
    assert_int_equal(dm_series_closes(f->s), 0);
}

static void the_bound_is_across_every_timeframe(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 7, 1);
    pg_fill(&f->pg, "EUR/USD", DM_TF_1D, 0, 7, 1);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    dm_series_view v = {0};
    dm_err err = {0};
    assert_int_equal(dm_series_acquire(f->s, DM_TF_1D, pg_read, &f->pg, &v, &err), DM_BS_PERMANENT);
    assert_int_equal(dm_series_closes(f->s), 7); /* 1h still held */
    assert_int_equal(len_of(f, DM_TF_1H, "EUR/USD"), 7);
}

static void notices_beyond_the_memory_bound_drop_the_timeframe(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 8, 1);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);

    note1(f->s, "EUR/USD", DM_TF_1H, 8, 9, 1);
    note1(f->s, "EUR/USD", DM_TF_1H, 9, 10, 2);
    assert_int_equal(dm_series_closes(f->s), 10); /* at the bound: still held */
    note1(f->s, "EUR/USD", DM_TF_1H, 3, 3.5, 3);  /* a revision adds nothing */
    assert_int_equal(dm_series_closes(f->s), 10);
    note1(f->s, "EUR/USD", DM_TF_1H, 10, 11, 4); /* beyond */
    assert_int_equal(dm_series_closes(f->s), 0);

    assert_int_equal(len_of(f, DM_TF_1H, "EUR/USD"), 8); /* loads again */
    assert_int_equal(f->pg.reads, 2);
}

/* ---- windows around written candles -------------------------------------------------- */

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    dm_tf tf;
    int64_t ts[64];
    double close[64];
    size_t n, first, last;
} window_call;

typedef struct {
    window_call calls[8];
    size_t n;
    dm_bstatus answer;
} window_log;

static dm_bstatus log_windows(void *ctx, const char *symbol, dm_tf tf, const int64_t *ts,
                              const double *close, size_t n, size_t first, size_t last, dm_err *err)
{
    window_log *l = ctx;
    assert_true(l->n < 8 && n <= 64);
    window_call *c = &l->calls[l->n++];
    snprintf(c->symbol, sizeof c->symbol, "%s", symbol);
    c->tf = tf;
    memcpy(c->ts, ts, n * sizeof *ts);
    memcpy(c->close, close, n * sizeof *close);
    c->n = n, c->first = first, c->last = last;
    if (l->answer != DM_BS_OK)
        return dm_bfail(err, l->answer, "", "index unreachable");
    return DM_BS_OK;
}

/* The call holds the open times AT(from)..AT(to), the written ones at first..last. */
static void assert_window(const window_call *c, const char *symbol, dm_tf tf, int from, int to,
                          size_t first, size_t last)
{
    assert_string_equal(c->symbol, symbol);
    assert_int_equal(c->tf, tf);
    assert_int_equal(c->n, (size_t)(to - from + 1));
    for (int i = from; i <= to; i++)
        assert_int_equal(c->ts[i - from], AT(i));
    assert_int_equal(c->first, first);
    assert_int_equal(c->last, last);
}

static dm_bstatus write_around(fixture *f, const dm_candle *c, const uint64_t *seqs, size_t n,
                               size_t w, window_log *l)
{
    memset(l, 0, sizeof *l);
    dm_err err = {0};
    return dm_series_write_around(f->s, pg_read, &f->pg, c, seqs, n, w, log_windows, l, &err);
}

static void write_around_loads_then_hands_the_closes_around_a_written_candle(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 20, 0); /* close i at AT(i) */
    window_log l;
    dm_candle c = candle("EUR/USD", DM_TF_1H, 10, 100);
    assert_int_equal(write_around(f, &c, NULL, 1, 4, &l), DM_BS_OK);
    assert_int_equal(f->pg.reads, 1);
    assert_int_equal(l.n, 1);
    assert_window(&l.calls[0], "EUR/USD", DM_TF_1H, 7, 13, 3, 3); /* W-1 = 3 either side */
    assert_true(l.calls[0].close[3] == 100);
    assert_true(l.calls[0].close[0] == 7 && l.calls[0].close[6] == 13);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 10) == 100); /* applied */

    c = candle("EUR/USD", DM_TF_1H, 11, 110);
    assert_int_equal(write_around(f, &c, NULL, 1, 4, &l), DM_BS_OK);
    assert_int_equal(f->pg.reads, 1); /* held: not loaded again */
}

static void write_around_slices_at_the_start_middle_and_end(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 20, 0);
    window_log l;

    dm_candle start = candle("EUR/USD", DM_TF_1H, 1, 50);
    assert_int_equal(write_around(f, &start, NULL, 1, 5, &l), DM_BS_OK);
    assert_int_equal(l.n, 1);
    assert_window(&l.calls[0], "EUR/USD", DM_TF_1H, 0, 5, 1, 1); /* clipped at the first */

    dm_candle first = candle("EUR/USD", DM_TF_1H, 0, 51);
    assert_int_equal(write_around(f, &first, NULL, 1, 5, &l), DM_BS_OK);
    assert_window(&l.calls[0], "EUR/USD", DM_TF_1H, 0, 4, 0, 0);

    /* two candles, out of order, in the middle: from W-1 before the first to W-1 after the last */
    dm_candle mid[2] = {candle("EUR/USD", DM_TF_1H, 9, 52), candle("EUR/USD", DM_TF_1H, 6, 53)};
    assert_int_equal(write_around(f, mid, NULL, 2, 5, &l), DM_BS_OK);
    assert_int_equal(l.n, 1);
    assert_window(&l.calls[0], "EUR/USD", DM_TF_1H, 2, 13, 4, 7);
    assert_true(l.calls[0].close[4] == 53 && l.calls[0].close[7] == 52);

    dm_candle last = candle("EUR/USD", DM_TF_1H, 18, 54);
    assert_int_equal(write_around(f, &last, NULL, 1, 5, &l), DM_BS_OK);
    assert_window(&l.calls[0], "EUR/USD", DM_TF_1H, 14, 19, 4, 4); /* clipped at the last */

    dm_candle append = candle("EUR/USD", DM_TF_1H, 20, 55);
    assert_int_equal(write_around(f, &append, NULL, 1, 5, &l), DM_BS_OK);
    assert_window(&l.calls[0], "EUR/USD", DM_TF_1H, 16, 20, 4, 4);
    assert_true(l.calls[0].close[4] == 55);
}

static void write_around_inserts_between_held_closes(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 10; i++)
        pg_put(&f->pg, "EUR/USD", DM_TF_1H, AT(2 * i), i); /* every other hour */
    window_log l;
    dm_candle c = candle("EUR/USD", DM_TF_1H, 9, 99); /* between AT(8) and AT(10) */
    assert_int_equal(write_around(f, &c, NULL, 1, 3, &l), DM_BS_OK);
    assert_int_equal(l.n, 1);
    const window_call *w = &l.calls[0];
    const int64_t want[] = {AT(6), AT(8), AT(9), AT(10), AT(12)};
    assert_int_equal(w->n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(w->ts[i], want[i]);
    assert_int_equal(w->first, 2);
    assert_int_equal(w->last, 2);
    assert_true(w->close[2] == 99);
}

static void write_around_calls_the_sink_once_per_series_touched(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 20, 0);
    pg_fill(&f->pg, "GBP/USD", DM_TF_1H, 0, 20, 100);
    pg_fill(&f->pg, "EUR/USD", DM_TF_1D, 0, 10, 200);
    window_log l;
    dm_candle c[5] = {
        candle("EUR/USD", DM_TF_1D, 5, 1),  candle("GBP/USD", DM_TF_1H, 2, 2),
        candle("EUR/USD", DM_TF_1H, 10, 3), candle("GBP/USD", DM_TF_1H, 4, 4),
        candle("EUR/USD", DM_TF_1H, 12, 5),
    };
    uint64_t seqs[5] = {1, 2, 3, 4, 5};
    assert_int_equal(write_around(f, c, seqs, 5, 3, &l), DM_BS_OK);
    assert_int_equal(f->pg.reads, 2); /* each timeframe loaded once */
    assert_int_equal(l.n, 3);
    const window_call *eur1h = NULL, *gbp1h = NULL, *eur1d = NULL;
    for (size_t i = 0; i < l.n; i++) {
        const window_call *w = &l.calls[i];
        if (w->tf == DM_TF_1D)
            eur1d = w;
        else if (strcmp(w->symbol, "EUR/USD") == 0)
            eur1h = w;
        else
            gbp1h = w;
    }
    assert_non_null(eur1h);
    assert_non_null(gbp1h);
    assert_non_null(eur1d);
    assert_window(eur1h, "EUR/USD", DM_TF_1H, 8, 14, 2, 4);
    assert_true(eur1h->close[2] == 3 && eur1h->close[3] == 11 && eur1h->close[4] == 5);
    assert_window(gbp1h, "GBP/USD", DM_TF_1H, 0, 6, 2, 4);
    assert_true(gbp1h->close[2] == 2 && gbp1h->close[4] == 4 && gbp1h->close[0] == 100);
    assert_window(eur1d, "EUR/USD", DM_TF_1D, 3, 7, 2, 2);
    assert_true(eur1d->close[2] == 1 && eur1d->close[0] == 203);
}

static void a_written_candle_older_than_a_heard_notice_is_not_applied(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 20, 0);
    (void)acquire_ok(f, DM_TF_1H);
    dm_series_release(f->s, DM_TF_1H);
    note1(f->s, "EUR/USD", DM_TF_1H, 10, 50, 30);

    window_log l;
    dm_candle c = candle("EUR/USD", DM_TF_1H, 10, 40);
    uint64_t seq = 20;
    assert_int_equal(write_around(f, &c, &seq, 1, 4, &l), DM_BS_OK);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 10) == 50);
    for (size_t i = 0; i < l.n; i++) /* any window handed over holds the newer close */
        assert_true(l.calls[i].close[l.calls[i].first] == 50);

    c.close = 60;
    seq = 31;
    assert_int_equal(write_around(f, &c, &seq, 1, 4, &l), DM_BS_OK);
    assert_int_equal(l.n, 1);
    assert_true(l.calls[0].close[l.calls[0].first] == 60);
    assert_true(close_at(f, DM_TF_1H, "EUR/USD", 10) == 60);
}

static void write_around_reports_a_failed_load_and_a_failed_sink(void **state)
{
    fixture *f = *state;
    pg_fill(&f->pg, "EUR/USD", DM_TF_1H, 0, 20, 0);
    window_log l;
    dm_candle c = candle("EUR/USD", DM_TF_1H, 10, 100);
    f->pg.fail = true;
    assert_int_equal(write_around(f, &c, NULL, 1, 4, &l), DM_BS_TRANSIENT);
    assert_int_equal(l.n, 0);
    f->pg.fail = false;
    memset(&l, 0, sizeof l);
    l.answer = DM_BS_TRANSIENT;
    dm_err err = {0};
    assert_int_equal(
        dm_series_write_around(f->s, pg_read, &f->pg, &c, NULL, 1, 4, log_windows, &l, &err),
        DM_BS_TRANSIENT);
    assert_string_equal(err.message, "index unreachable");
}

/* ---- threads ------------------------------------------------------------------------- */

typedef struct {
    fixture *f;
    atomic_bool stop;
    atomic_int broken; /* a view seen out of order */
    atomic_long searches;
    atomic_long notices;
} stress;

static void check_view(stress *st, const dm_series_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (i > 0 &&
            strcmp(dm_pseries_symbol(v->series[i - 1]), dm_pseries_symbol(v->series[i])) >= 0)
            atomic_fetch_add(&st->broken, 1);
        const int64_t *ts = dm_pseries_ts(v->series[i]);
        const double *cl = dm_pseries_close(v->series[i]);
        double sum = 0;
        for (size_t j = 0; j < dm_pseries_len(v->series[i]); j++) {
            sum += cl[j];
            if (j > 0 && ts[j - 1] >= ts[j])
                atomic_fetch_add(&st->broken, 1);
        }
        if (sum < 0)
            atomic_fetch_add(&st->broken, 1);
    }
}

static void *searcher(void *arg)
{
    stress *st = arg;
    const dm_tf tfs[2] = {DM_TF_1H, DM_TF_5M};
    for (unsigned k = 0; !atomic_load(&st->stop); k++) {
        dm_tf tf = tfs[k % 2];
        dm_series_view v;
        dm_err err = {0};
        if (dm_series_acquire(st->f->s, tf, pg_read, &st->f->pg, &v, &err) != DM_BS_OK)
            continue;
        check_view(st, &v);
        dm_pseries *p = dm_series_find(&v, "GBP/USD");
        if (p && strcmp(dm_pseries_symbol(p), "GBP/USD") != 0)
            atomic_fetch_add(&st->broken, 1);
        dm_series_release(st->f->s, tf);
        atomic_fetch_add(&st->searches, 1);
    }
    return NULL;
}

static dm_bstatus ignore_windows(void *ctx, const char *symbol, dm_tf tf, const int64_t *ts,
                                 const double *close, size_t n, size_t first, size_t last,
                                 dm_err *err)
{
    (void)symbol, (void)tf, (void)err;
    stress *st = ctx;
    if (first > last || last >= n || ts[first] > ts[last] || close[first] < 0)
        atomic_fetch_add(&st->broken, 1);
    return DM_BS_OK;
}

static void *writer(void *arg)
{
    stress *st = arg;
    const char *symbols[] = {"AUD/USD", "EUR/USD", "GBP/USD", "NZD/USD", "USD/JPY"};
    uint64_t seq = 1;
    for (unsigned k = 0; !atomic_load(&st->stop); k++) {
        dm_candle c[4];
        uint64_t seqs[4];
        for (int i = 0; i < 4; i++) {
            dm_tf tf = (k + i) % 2 ? DM_TF_1H : DM_TF_5M;
            c[i] =
                candle(symbols[(k + i) % 5], tf, 190 + (int)((k * 7 + i) % 40), (double)(k % 100));
            seqs[i] = seq++;
        }
        dm_series_note(st->f->s, c, seqs, 4);
        atomic_fetch_add(&st->notices, 4);
        if (k % 500 == 499)
            dm_series_stale(st->f->s, symbols[k % 5], DM_TF_1H, seq);
        if (k % 1000 == 999) {
            dm_err err = {0};
            dm_series_write_around(st->f->s, pg_read, &st->f->pg, c, seqs, 4, 8, ignore_windows, st,
                                   &err);
        }
        if (k % 5000 == 4999)
            dm_series_forget(st->f->s);
    }
    return NULL;
}

static void searches_and_notices_from_several_threads_at_once(void **state)
{
    fixture *f = *state;
    const char *symbols[] = {"EUR/USD", "GBP/USD", "USD/JPY"};
    for (int i = 0; i < 3; i++) {
        pg_fill(&f->pg, symbols[i], DM_TF_1H, 0, 200, i + 1);
        pg_fill(&f->pg, symbols[i], DM_TF_5M, 0, 200, i + 1);
    }
    stress st = {.f = f};
    pthread_t t[4];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, searcher, &st), 0);
    assert_int_equal(pthread_create(&t[3], NULL, writer, &st), 0);
    struct timespec pause = {1, 500000000};
    nanosleep(&pause, NULL);
    atomic_store(&st.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&st.broken), 0);
    assert_true(atomic_load(&st.searches) > 0);
    assert_true(atomic_load(&st.notices) > 0);
    print_message("%ld searches, %ld notices, %d reads\n", atomic_load(&st.searches),
                  atomic_load(&st.notices), atomic_load(&f->pg.reads));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_first_acquire_loads_the_timeframe_once_sorted_by_symbol,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(an_empty_timeframe_loads_to_an_empty_view, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_failed_load_leaves_nothing_and_the_next_acquire_tries_again, setup, teardown),
        cmocka_unit_test_setup_teardown(commits_heard_before_a_load_join_it_where_postgresql_lacks_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(notices_after_the_load_append_revise_and_insert, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_notice_heard_during_the_load_is_applied_after_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_late_revision_does_not_turn_a_close_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_late_notice_heard_during_the_load_does_not_turn_a_close_back, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stale_series_is_read_again_before_it_is_searched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_stale_symbol_not_yet_held_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_reread_keeps_the_series_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(a_notice_heard_while_a_stale_series_is_read_again_is_kept,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(forget_drops_everything_and_the_next_acquire_loads_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_load_over_the_memory_bound_fails_clearly, setup_small,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_bound_is_across_every_timeframe, setup_small, teardown),
        cmocka_unit_test_setup_teardown(notices_beyond_the_memory_bound_drop_the_timeframe,
                                        setup_small, teardown),
        cmocka_unit_test_setup_teardown(
            write_around_loads_then_hands_the_closes_around_a_written_candle, setup, teardown),
        cmocka_unit_test_setup_teardown(write_around_slices_at_the_start_middle_and_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(write_around_inserts_between_held_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(write_around_calls_the_sink_once_per_series_touched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_written_candle_older_than_a_heard_notice_is_not_applied,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(write_around_reports_a_failed_load_and_a_failed_sink, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(searches_and_notices_from_several_threads_at_once, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
