/* Correlations and the correlation graph (worker/analysis/correl): every pair agrees with a
 * plain reference on real hourly data, returns span gaps as the contract says, and the
 * graph's nodes, edges, clusters and spanning tree come out in the promised order. */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "analysis/correl.h"

#define HOUR 3600000LL
#define TOL 1e-9

/* ---- the real hourly files ---- */

typedef struct {
    int64_t *ts;
    double *close;
    size_t n;
} loaded;

enum { EURUSD, GBPUSD, USDJPY, EURGBP, RNDWLK, N_REAL };
static const char *const REAL_SYMBOLS[N_REAL] = {"EUR/USD", "GBP/USD", "USD/JPY", "EUR/GBP",
                                                 "RND/WLK"};
static loaded real[N_REAL];
static dm_corr_series real_series[N_REAL];

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t at(int y, int mo, int d, int h)
{
    return days_from_civil(y, mo, d) * 24 * HOUR + h * HOUR;
}

static void load_csv(const char *name, loaded *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DM_DATA_DIR, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    size_t cap = 40000;
    out->ts = malloc(cap * sizeof *out->ts);
    out->close = malloc(cap * sizeof *out->close);
    out->n = 0;
    char line[256];
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        int y, mo, d, h, mi;
        double o, hi, lo, c;
        if (sscanf(line, "%d.%d.%d,%d:%d,%lf,%lf,%lf,%lf", &y, &mo, &d, &h, &mi, &o, &hi, &lo,
                   &c) != 9)
            fail_msg("bad row in %s: %s", name, line);
        assert_true(out->n < cap);
        out->ts[out->n] = at(y, mo, d, h) + mi * 60000LL;
        out->close[out->n++] = c;
    }
    fclose(f);
}

/* EUR/GBP from the two USD quotes on the hours both have. */
static void make_cross(const loaded *eur, const loaded *gbp, loaded *out)
{
    out->ts = malloc(eur->n * sizeof *out->ts);
    out->close = malloc(eur->n * sizeof *out->close);
    out->n = 0;
    for (size_t i = 0, j = 0; i < eur->n && j < gbp->n;) {
        if (eur->ts[i] < gbp->ts[j]) {
            i++;
        } else if (eur->ts[i] > gbp->ts[j]) {
            j++;
        } else {
            out->ts[out->n] = eur->ts[i];
            out->close[out->n++] = eur->close[i++] / gbp->close[j++];
        }
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* A random walk on EUR/USD's hours, unrelated to any market. */
static void make_walk(const loaded *like, loaded *out)
{
    out->n = like->n;
    out->ts = malloc(out->n * sizeof *out->ts);
    out->close = malloc(out->n * sizeof *out->close);
    double lx = 0;
    for (size_t i = 0; i < out->n; i++) {
        lx += (uniform() - 0.5) * 0.002;
        out->ts[i] = like->ts[i];
        out->close[i] = exp(lx);
    }
}

static int load_real(void **state)
{
    (void)state;
    load_csv("EURUSD_H1_2021-01_2026-04.csv", &real[EURUSD]);
    load_csv("GBPUSD_H1_2021-01_2026-04.csv", &real[GBPUSD]);
    load_csv("USDJPY_H1_2021-01_2026-04.csv", &real[USDJPY]);
    make_cross(&real[EURUSD], &real[GBPUSD], &real[EURGBP]);
    make_walk(&real[EURUSD], &real[RNDWLK]);
    for (int k = 0; k < N_REAL; k++)
        real_series[k] = (dm_corr_series){REAL_SYMBOLS[k], real[k].ts, real[k].close, real[k].n};
    return 0;
}

static int free_real(void **state)
{
    (void)state;
    for (int k = 0; k < N_REAL; k++) {
        free(real[k].ts);
        free(real[k].close);
    }
    return 0;
}

/* ---- the reference: each return looked up on its own, sums in long double ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool ref_corr(const dm_corr_series *a, const dm_corr_series *b, int64_t ws, int64_t we,
                     int min_pairs, double *r, int64_t *n)
{
    long double *x = malloc((a->n + 1) * sizeof *x), *y = malloc((a->n + 1) * sizeof *y);
    size_t k = 0;
    for (size_t i = 1; i < a->n; i++) {
        if (a->ts[i] <= ws || a->ts[i] > we)
            continue;
        const int64_t *hit = bsearch(&a->ts[i], b->ts, b->n, sizeof *b->ts, cmp_i64);
        if (hit == NULL || hit == b->ts)
            continue;
        size_t j = (size_t)(hit - b->ts);
        x[k] = logl((long double)a->close[i] / a->close[i - 1]);
        y[k++] = logl((long double)b->close[j] / b->close[j - 1]);
    }
    *n = (int64_t)k;
    long double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < k; i++) {
        mx += x[i] / k;
        my += y[i] / k;
    }
    for (size_t i = 0; i < k; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    free(x);
    free(y);
    if ((int64_t)k < min_pairs || sxx == 0 || syy == 0)
        return false;
    *r = (double)(sxy / sqrtl(sxx * syy));
    return true;
}

static void expect_matches_reference(const dm_corr_series *s, size_t n_sym, int64_t ws, int64_t we,
                                     int min_pairs)
{
    dm_corr_matrix m;
    dm_err err = {0};
    assert_int_equal(dm_corr_matrix_compute(s, n_sym, ws, we, min_pairs, &m, &err), DM_OK);
    for (size_t i = 0; i < n_sym; i++) {
        for (size_t j = 0; j < n_sym; j++) {
            size_t c = dm_corr_cell(&m, i, j);
            if (i == j) {
                assert_false(m.has[c]);
                continue;
            }
            double r = 0;
            int64_t n = 0;
            bool has = ref_corr(&s[i], &s[j], ws, we, min_pairs, &r, &n);
            if (m.pairs[c] != n || m.has[c] != has)
                fail_msg("%s/%s: n %" PRId64 " has %d, reference n %" PRId64 " has %d", s[i].symbol,
                         s[j].symbol, m.pairs[c], m.has[c], n, has);
            if (has && fabs(m.r[c] - r) > TOL)
                fail_msg("%s/%s: r %.15f, reference %.15f", s[i].symbol, s[j].symbol, m.r[c], r);
        }
    }
    dm_corr_matrix_free(&m);
}

/* ---- real data ---- */

static void every_pair_matches_the_reference_on_real_hours(void **state)
{
    (void)state;
    const int64_t ends[] = {at(2021, 3, 1, 0), at(2022, 3, 15, 12), at(2023, 11, 2, 7),
                            at(2024, 7, 1, 0), at(2025, 1, 6, 3),   at(2026, 4, 8, 22),
                            at(2026, 4, 30, 0)};
    for (size_t k = 0; k < sizeof ends / sizeof *ends; k++) {
        int64_t ws, we;
        dm_err err = {0};
        assert_int_equal(dm_corr_window(ends[k] + 1234567, HOUR, 720, &ws, &we, &err), DM_OK);
        expect_matches_reference(real_series, N_REAL, ws, we, 30);
    }
    /* 10,000 hours: the longest window, once over the files' first candle */
    const int64_t long_ends[] = {at(2021, 6, 1, 0), at(2026, 4, 1, 0)};
    for (size_t k = 0; k < 2; k++) {
        int64_t ws, we;
        dm_err err = {0};
        assert_int_equal(dm_corr_window(long_ends[k], HOUR, 10000, &ws, &we, &err), DM_OK);
        expect_matches_reference(real_series, N_REAL, ws, we, 30);
    }
}

static void eurusd_moves_against_usdjpy_and_with_gbpusd(void **state)
{
    (void)state;
    int64_t ws, we;
    dm_err err = {0};
    assert_int_equal(dm_corr_window(at(2025, 6, 30, 0), HOUR, 720, &ws, &we, &err), DM_OK);
    dm_corr_matrix m;
    assert_int_equal(dm_corr_matrix_compute(real_series, N_REAL, ws, we, 30, &m, &err), DM_OK);
    double eg = m.r[dm_corr_cell(&m, EURUSD, GBPUSD)], ej = m.r[dm_corr_cell(&m, EURUSD, USDJPY)];
    print_message("window to 2025-06-30: EUR/USD~GBP/USD %.4f, EUR/USD~USD/JPY %.4f\n", eg, ej);
    assert_true(eg > 0.5);
    assert_true(ej < -0.3);
    /* 30 days, about 21 of them trading */
    assert_true(m.pairs[dm_corr_cell(&m, EURUSD, GBPUSD)] > 450);
    /* the random walk follows nothing */
    for (int k = 0; k < RNDWLK; k++)
        assert_true(fabs(m.r[dm_corr_cell(&m, RNDWLK, k)]) < 0.15);
    /* EUR/GBP = EUR/USD / GBP/USD: rises with the first, falls with the second */
    assert_true(m.r[dm_corr_cell(&m, EURGBP, EURUSD)] > 0);
    assert_true(m.r[dm_corr_cell(&m, EURGBP, GBPUSD)] < 0);

    dm_corr_row *rows;
    size_t n;
    assert_int_equal(dm_corr_for(&m, real_series, EURUSD, 0.3, &rows, &n, &err), DM_OK);
    assert_true(n >= 2);
    assert_int_equal(rows[0].other, GBPUSD); /* strongest first */
    bool jpy = false;
    for (size_t k = 0; k < n; k++) {
        assert_true(fabs(rows[k].r) >= 0.3);
        jpy |= rows[k].other == USDJPY && rows[k].r < 0;
        if (k > 0)
            assert_true(fabs(rows[k - 1].r) >= fabs(rows[k].r));
    }
    assert_true(jpy);
    free(rows);
    dm_corr_matrix_free(&m);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void three_symbols_over_720_hours_take_well_under_a_millisecond(void **state)
{
    (void)state;
    int64_t ws, we;
    dm_err err = {0};
    assert_int_equal(dm_corr_window(at(2026, 4, 1, 0), HOUR, 720, &ws, &we, &err), DM_OK);
    double best = 1e9;
    for (int batch = 0; batch < 5; batch++) {
        double t0 = now_s();
        for (int k = 0; k < 50; k++) {
            dm_corr_matrix m;
            assert_int_equal(dm_corr_matrix_compute(real_series, 3, ws, we, 30, &m, &err), DM_OK);
            dm_corr_matrix_free(&m);
        }
        double each = (now_s() - t0) / 50;
        best = each < best ? each : best;
    }
    print_message("3 symbols x 720 hours: %.1f us per matrix\n", best * 1e6);
    assert_true(best < 1e-3); /* optimised builds take about 10 us; sanitizers 20 times more */
}

/* ---- synthetic series ---- */

static double pearson(const double *x, const double *y, size_t n)
{
    double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i] / (double)n;
        my += y[i] / (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

static void
counts_only_shared_times_and_takes_each_first_return_from_before_the_window(void **state)
{
    (void)state;
    /* window (3h, 10h]: A every hour from 0; B far back at -100h, then 4, 5, 7, 8, 10 */
    int64_t ats[11], bts[6] = {-100 * HOUR, 4 * HOUR, 5 * HOUR, 7 * HOUR, 8 * HOUR, 10 * HOUR};
    double ac[11] = {1.00, 1.01, 0.99, 1.02, 1.05, 1.03, 1.00, 1.04, 1.07, 1.06, 1.10};
    double bc[6] = {2.00, 2.30, 2.25, 2.40, 2.35, 2.50};
    for (int h = 0; h <= 10; h++)
        ats[h] = h * HOUR;
    dm_corr_series s[2] = {{"A", ats, ac, 11}, {"B", bts, bc, 6}};
    dm_corr_matrix m;
    dm_err err = {0};
    assert_int_equal(dm_corr_matrix_compute(s, 2, 3 * HOUR, 10 * HOUR, 2, &m, &err), DM_OK);
    const int hours[5] = {4, 5, 7, 8, 10};
    double x[5], y[5];
    for (int k = 0; k < 5; k++) {
        x[k] = log(ac[hours[k]] / ac[hours[k] - 1]); /* A at 4 uses A's close at 3h */
        y[k] = log(bc[k + 1] / bc[k]);               /* B at 4 uses its close from -100h */
    }
    assert_int_equal(m.pairs[dm_corr_cell(&m, 0, 1)], 5);
    assert_true(m.has[dm_corr_cell(&m, 1, 0)]);
    assert_true(fabs(m.r[dm_corr_cell(&m, 0, 1)] - pearson(x, y, 5)) < 1e-12);
    assert_true(m.r[dm_corr_cell(&m, 0, 1)] == m.r[dm_corr_cell(&m, 1, 0)]);
    assert_true(m.in_window[0] && m.in_window[1]);
    dm_corr_matrix_free(&m);
    expect_matches_reference(s, 2, 3 * HOUR, 10 * HOUR, 2);
    /* a window holding only B's first candle: it has no return, so no pairs */
    assert_int_equal(dm_corr_matrix_compute(s, 2, -101 * HOUR, -99 * HOUR, 0, &m, &err), DM_OK);
    assert_int_equal(m.pairs[dm_corr_cell(&m, 0, 1)], 0);
    assert_false(m.has[dm_corr_cell(&m, 0, 1)]);
    assert_false(m.in_window[0]);
    assert_true(m.in_window[1]);
    dm_corr_matrix_free(&m);
}

static void fewer_pairs_than_min_pairs_have_no_correlation(void **state)
{
    (void)state;
    int64_t ts[6];
    double a[6] = {1, 1.1, 1.05, 1.2, 1.1, 1.3}, b[6] = {5, 5.2, 5.1, 5.5, 5.3, 5.2};
    for (int h = 0; h < 6; h++)
        ts[h] = h * HOUR;
    dm_corr_series s[2] = {{"A", ts, a, 6}, {"B", ts, b, 6}};
    dm_corr_matrix m;
    dm_err err = {0};
    assert_int_equal(dm_corr_matrix_compute(s, 2, 0, 5 * HOUR, 6, &m, &err), DM_OK);
    assert_int_equal(m.pairs[1], 5); /* reported even without a correlation */
    assert_false(m.has[1]);
    dm_corr_matrix_free(&m);
    assert_int_equal(dm_corr_matrix_compute(s, 2, 0, 5 * HOUR, 5, &m, &err), DM_OK);
    assert_true(m.has[1] && m.has[2]);
    dm_corr_matrix_free(&m);
}

static void a_constant_series_has_no_correlation(void **state)
{
    (void)state;
    int64_t ts[11];
    double flat[11], moving[11], growing[11];
    for (int h = 0; h < 11; h++) {
        ts[h] = h * HOUR;
        flat[h] = 1.2345;
        moving[h] = 1 + 0.01 * (h % 3);
        /* every return exactly ln 8, yet the mean of ten of them rounds off ln 8 */
        growing[h] = ldexp(1, 3 * h);
    }
    dm_corr_series s[4] = {{"FLAT", ts, flat, 11},
                           {"MOVE", ts, moving, 11},
                           {"MOV2", ts, moving, 11},
                           {"GROW", ts, growing, 11}};
    dm_corr_matrix m;
    dm_err err = {0};
    assert_int_equal(dm_corr_matrix_compute(s, 4, 0, 11 * HOUR, 2, &m, &err), DM_OK);
    assert_false(m.has[dm_corr_cell(&m, 0, 1)]);
    assert_false(m.has[dm_corr_cell(&m, 2, 0)]);
    assert_false(m.has[dm_corr_cell(&m, 3, 1)]);
    assert_false(m.has[dm_corr_cell(&m, 3, 0)]);
    assert_int_equal(m.pairs[dm_corr_cell(&m, 0, 1)], 10);
    assert_true(m.has[dm_corr_cell(&m, 1, 2)]);
    assert_true(m.r[dm_corr_cell(&m, 1, 2)] <= 1.0); /* identical series: clamped, not 1+eps */
    assert_true(fabs(m.r[dm_corr_cell(&m, 1, 2)] - 1.0) < 1e-12);
    dm_corr_row *rows;
    size_t n;
    assert_int_equal(dm_corr_for(&m, s, 0, 0, &rows, &n, &err), DM_OK);
    assert_int_equal(n, 0);
    assert_null(rows);
    dm_corr_matrix_free(&m);
}

static void refuses_unordered_times_bad_closes_and_duplicate_symbols(void **state)
{
    (void)state;
    int64_t ts[4] = {0, HOUR, HOUR, 3 * HOUR}, ok_ts[4] = {0, HOUR, 2 * HOUR, 3 * HOUR};
    double c[4] = {1, 1.1, 1.2, 1.3}, bad[4] = {1, 1.1, -1.2, 1.3};
    dm_corr_matrix m;
    dm_err err = {0};
    dm_corr_series unordered[1] = {{"A", ts, c, 4}};
    assert_int_equal(dm_corr_matrix_compute(unordered, 1, 0, 4 * HOUR, 2, &m, &err),
                     DM_E_INVALID_FIELD);
    assert_string_equal(err.field, "ts");
    assert_null(m.r);
    dm_corr_series negative[1] = {{"A", ok_ts, bad, 4}};
    assert_int_equal(dm_corr_matrix_compute(negative, 1, 0, 4 * HOUR, 2, &m, &err),
                     DM_E_INVALID_FIELD);
    assert_string_equal(err.field, "close");
    dm_corr_series twice[2] = {{"A", ok_ts, c, 4}, {"A", ok_ts, c, 4}};
    assert_int_equal(dm_corr_matrix_compute(twice, 2, 0, 4 * HOUR, 2, &m, &err),
                     DM_E_INVALID_FIELD);
    assert_string_equal(err.field, "symbol");
    /* outside the window the order is the caller's promise, not checked */
    dm_corr_series late[1] = {{"A", ts, c, 4}};
    assert_int_equal(dm_corr_matrix_compute(late, 1, 2 * HOUR, 4 * HOUR, 2, &m, &err), DM_OK);
    dm_corr_matrix_free(&m);
}

/* ---- answers from a matrix set by hand ---- */

#define HAND_MAX 8

typedef struct {
    dm_corr_matrix m;
    dm_corr_series s[HAND_MAX];
    double r[HAND_MAX * HAND_MAX];
    int64_t pairs[HAND_MAX * HAND_MAX];
    bool has[HAND_MAX * HAND_MAX], candles[HAND_MAX], in_window[HAND_MAX];
} hand;

/* symbols: one string of space-separated names, in series order */
static void hand_init(hand *h, const char *symbols)
{
    static char names[HAND_MAX][8];
    memset(h, 0, sizeof *h);
    size_t n = 0;
    for (const char *p = symbols; *p; n++) {
        size_t len = strcspn(p, " ");
        memcpy(names[n], p, len);
        names[n][len] = '\0';
        h->s[n] = (dm_corr_series){names[n], NULL, NULL, 0};
        h->candles[n] = h->in_window[n] = true;
        p += len + (p[len] == ' ');
    }
    h->m = (dm_corr_matrix){n, 0, 0, 2, h->r, h->pairs, h->has, h->candles, h->in_window};
}

static void hand_set(hand *h, size_t i, size_t j, double r)
{
    size_t n = h->m.n_sym;
    h->r[i * n + j] = h->r[j * n + i] = r;
    h->has[i * n + j] = h->has[j * n + i] = true;
    h->pairs[i * n + j] = h->pairs[j * n + i] = (int64_t)(100 + i + j);
}

static void threshold_keeps_strong_negative_correlations(void **state)
{
    (void)state;
    hand h;
    hand_init(&h, "X A B C D");
    hand_set(&h, 0, 1, 0.4);
    hand_set(&h, 0, 2, -0.8);
    hand_set(&h, 0, 3, 0.6);
    hand_set(&h, 0, 4, -0.49);
    dm_corr_row *rows;
    size_t n;
    dm_err err = {0};
    assert_int_equal(dm_corr_for(&h.m, h.s, 0, 0.5, &rows, &n, &err), DM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].other, 2);
    assert_true(rows[0].r == -0.8);
    assert_int_equal(rows[0].n, 102);
    assert_int_equal(rows[1].other, 3);
    free(rows);
    assert_int_equal(dm_corr_for(&h.m, h.s, 0, 1.5, &rows, &n, &err), DM_E_INVALID_FIELD);
    assert_string_equal(err.field, "threshold");
    assert_int_equal(dm_corr_for(&h.m, h.s, 0, NAN, &rows, &n, &err), DM_E_INVALID_FIELD);
}

static void equal_strengths_are_ordered_by_symbol(void **state)
{
    (void)state;
    hand h;
    hand_init(&h, "EUR/USD USD/JPY AUD/USD GBP/USD EUR/GBP");
    hand_set(&h, 0, 1, -0.7);
    hand_set(&h, 0, 2, 0.7);
    hand_set(&h, 0, 3, 0.9);
    hand_set(&h, 0, 4, 0.7);
    dm_corr_row *rows;
    size_t n;
    dm_err err = {0};
    assert_int_equal(dm_corr_for(&h.m, h.s, 0, 0, &rows, &n, &err), DM_OK);
    assert_int_equal(n, 4);
    const size_t want[4] = {3, 2, 4, 1}; /* GBP/USD, then AUD/USD, EUR/GBP, USD/JPY */
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(rows[k].other, want[k]);
    free(rows);
}

static void depth_two_reaches_through_a_chain_and_keeps_weak_pairs_out_of_edges(void **state)
{
    (void)state;
    hand h;
    hand_init(&h, "C B A");
    hand_set(&h, 2, 1, 0.9); /* A-B */
    hand_set(&h, 1, 0, 0.8); /* B-C */
    hand_set(&h, 2, 0, 0.3); /* A-C, under the threshold */
    dm_corr_graph g;
    dm_err err = {0};
    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 2, 1, 0.5, &g, &err), DM_OK);
    assert_int_equal(g.n_nodes, 2);
    assert_int_equal(g.node[0], 2);
    assert_int_equal(g.depth[0], 0);
    assert_int_equal(g.node[1], 1);
    assert_int_equal(g.depth[1], 1);
    assert_int_equal(g.n_edges, 1);
    assert_int_equal(g.edge[0].a, 2);
    assert_int_equal(g.edge[0].b, 1);
    assert_int_equal(g.n_mst, 1);
    assert_int_equal(g.n_clusters, 1); /* clusters cover every symbol, not only the nodes */
    assert_int_equal(g.cluster_len[0], 3);
    dm_corr_graph_free(&g);

    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 2, 2, 0.5, &g, &err), DM_OK);
    assert_int_equal(g.n_nodes, 3);
    const size_t nodes[3] = {2, 1, 0};
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(g.node[k], nodes[k]);
        assert_int_equal(g.depth[k], (int)k);
    }
    assert_int_equal(g.n_edges, 2); /* A-B, B-C; A-C stays out */
    assert_int_equal(g.edge[0].a, 2);
    assert_int_equal(g.edge[0].b, 1);
    assert_true(g.edge[0].r == 0.9);
    assert_int_equal(g.edge[0].n, 103);
    assert_int_equal(g.edge[1].a, 1);
    assert_int_equal(g.edge[1].b, 0);
    assert_int_equal(g.n_mst, 2);
    assert_int_equal(g.mst[0].a, 2);
    assert_int_equal(g.mst[0].b, 1);
    assert_int_equal(g.mst[1].a, 1);
    assert_int_equal(g.mst[1].b, 0);
    dm_corr_graph_free(&g);

    /* at threshold 0 every correlated pair is an edge, A-C included */
    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 2, 1, 0, &g, &err), DM_OK);
    assert_int_equal(g.n_nodes, 3);
    assert_int_equal(g.n_edges, 3);
    assert_int_equal(g.edge[0].a, 2);
    assert_int_equal(g.edge[0].b, 1);
    assert_int_equal(g.edge[1].a, 2);
    assert_int_equal(g.edge[1].b, 0);
    dm_corr_graph_free(&g);
}

static void clusters_hold_every_symbol_in_the_window_largest_first(void **state)
{
    (void)state;
    hand h;
    /*              0 1 2 3 4 5 6 7 */
    hand_init(&h, "E D C B A G F H");
    hand_set(&h, 0, 1, 0.9);  /* E-D */
    hand_set(&h, 1, 3, -0.8); /* D-B, negative still joins */
    hand_set(&h, 4, 2, 0.7);  /* A-C */
    hand_set(&h, 0, 6, 0.2);  /* E-F, too weak */
    hand_set(&h, 5, 7, 0.95); /* G-H, but H has no candle in the window */
    h.in_window[7] = false;
    dm_corr_graph g;
    dm_err err = {0};
    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 0, 3, 0.5, &g, &err), DM_OK);
    assert_int_equal(g.n_clusters, 4);
    const size_t sizes[4] = {3, 2, 1, 1};
    const size_t members[4][3] = {{3, 1, 0}, {4, 2}, {6}, {5}}; /* B D E, A C, F, G */
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(g.cluster_len[k], sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++)
            assert_int_equal(g.cluster[k][i], members[k][i]);
    }
    assert_int_equal(g.n_nodes, 3); /* E, D, B */
    assert_int_equal(g.node[0], 0);
    assert_int_equal(g.node[1], 1);
    assert_int_equal(g.node[2], 3);
    assert_int_equal(g.depth[2], 2);
    dm_corr_graph_free(&g);

    /* equal sizes: the cluster with the first symbol leads */
    hand_set(&h, 6, 5, 0.6); /* F-G */
    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 0, 3, 0.5, &g, &err), DM_OK);
    assert_int_equal(g.n_clusters, 3);
    assert_int_equal(g.cluster_len[1], 2);
    assert_int_equal(g.cluster[1][0], 4); /* A C before F G */
    assert_int_equal(g.cluster[2][0], 6);
    dm_corr_graph_free(&g);
}

static void spanning_tree_of_four_symbols_uses_signed_distance(void **state)
{
    (void)state;
    hand h;
    hand_init(&h, "D C B A");
    /* distances sqrt(2(1-r)): AB 0.632, BC 0.775, BD 0.894, CD 1.265, AD 1.342, AC 1.949 */
    hand_set(&h, 3, 2, 0.8);
    hand_set(&h, 3, 1, -0.9); /* strongest |r|, yet farthest apart */
    hand_set(&h, 3, 0, 0.1);
    hand_set(&h, 2, 1, 0.7);
    hand_set(&h, 2, 0, 0.6);
    hand_set(&h, 1, 0, 0.2);
    dm_corr_graph g;
    dm_err err = {0};
    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 3, 1, 0.95, &g, &err), DM_OK);
    assert_int_equal(g.n_nodes, 1); /* the tree spans the nodes only */
    assert_int_equal(g.n_mst, 0);
    dm_corr_graph_free(&g);
    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 3, 1, 0, &g, &err), DM_OK);
    assert_int_equal(g.n_nodes, 4);
    assert_int_equal(g.n_mst, 3);
    const size_t want[3][2] = {{3, 2}, {2, 1}, {2, 0}}; /* A-B, B-C, B-D */
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(g.mst[k].a, want[k][0]);
        assert_int_equal(g.mst[k].b, want[k][1]);
    }
    assert_true(g.mst[0].r == 0.8);
    dm_corr_graph_free(&g);

    /* all distances equal: ties go by a, then b */
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            hand_set(&h, i, j, 0.5);
    assert_int_equal(dm_corr_graph_build(&h.m, h.s, 0, 1, 0, &g, &err), DM_OK);
    assert_int_equal(g.n_mst, 3);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(g.mst[k].a, 3); /* A-B, A-C, A-D */
        assert_int_equal(g.mst[k].b, 2 - k);
    }
    dm_corr_graph_free(&g);
}

static void a_start_without_candles_is_not_found(void **state)
{
    (void)state;
    int64_t ts[3] = {0, HOUR, 2 * HOUR};
    double c[3] = {1, 1.1, 1.2};
    dm_corr_series s[3] = {{"A", ts, c, 3}, {"NONE", NULL, NULL, 0}, {"OLD", ts, c, 2}};
    dm_corr_matrix m;
    dm_err err = {0};
    assert_int_equal(dm_corr_matrix_compute(s, 3, HOUR, 3 * HOUR, 1, &m, &err), DM_OK);
    assert_false(m.has_candles[1]);
    assert_true(m.has_candles[2]);
    assert_false(m.in_window[2]); /* OLD's last candle is at 1h, the window's start */
    dm_corr_graph g;
    assert_int_equal(dm_corr_graph_build(&m, s, 1, 2, 0.5, &g, &err), DM_E_NOT_FOUND);
    assert_string_equal(err.field, "symbol");
    assert_null(g.node);
    /* candles before the window: found, alone, and in no cluster */
    assert_int_equal(dm_corr_graph_build(&m, s, 2, 2, 0.5, &g, &err), DM_OK);
    assert_int_equal(g.n_nodes, 1);
    assert_int_equal(g.node[0], 2);
    assert_int_equal(g.n_clusters, 1);
    assert_int_equal(g.cluster[0][0], 0);
    dm_corr_graph_free(&g);
    assert_int_equal(dm_corr_graph_build(&m, s, 0, 0, 0.5, &g, &err), DM_E_INVALID_FIELD);
    assert_string_equal(err.field, "depth");
    assert_int_equal(dm_corr_graph_build(&m, s, 0, 6, 0.5, &g, &err), DM_E_INVALID_FIELD);
    assert_int_equal(dm_corr_graph_build(&m, s, 3, 1, 0.5, &g, &err), DM_E_INVALID_FIELD);
    dm_corr_matrix_free(&m);
}

static void window_ends_on_the_candle_boundary_at_or_before_end(void **state)
{
    (void)state;
    int64_t ws, we;
    dm_err err = {0};
    assert_int_equal(dm_corr_window(3 * HOUR + 5 * 60000 + 7, HOUR, 720, &ws, &we, &err), DM_OK);
    assert_int_equal(we, 3 * HOUR);
    assert_int_equal(ws, 3 * HOUR - 720 * HOUR);
    assert_int_equal(dm_corr_window(3 * HOUR, HOUR, 2, &ws, &we, &err), DM_OK);
    assert_int_equal(we, 3 * HOUR);
    assert_int_equal(ws, HOUR);
    /* before 1970: floor, not truncation toward zero */
    assert_int_equal(dm_corr_window(-1, HOUR, 1, &ws, &we, &err), DM_OK);
    assert_int_equal(we, -HOUR);
    assert_int_equal(ws, -2 * HOUR);
    assert_int_equal(dm_corr_window(-HOUR, HOUR, 1, &ws, &we, &err), DM_OK);
    assert_int_equal(we, -HOUR);
    assert_int_equal(dm_corr_window(-HOUR - 1, 4 * HOUR, 3, &ws, &we, &err), DM_OK);
    assert_int_equal(we, -4 * HOUR);
    assert_int_equal(ws, -16 * HOUR);
    assert_int_equal(dm_corr_window(0, HOUR, 720, &ws, &we, &err), DM_OK);
    assert_int_equal(we, 0);
    assert_int_equal(dm_corr_window(at(2026, 4, 8, 22) + 59 * 60000, HOUR, 720, &ws, &we, &err),
                     DM_OK);
    assert_int_equal(we, at(2026, 4, 8, 22));
    assert_int_equal(ws, at(2026, 3, 9, 22));

    assert_int_equal(dm_corr_window(0, 0, 720, &ws, &we, &err), DM_E_INVALID_FIELD);
    assert_int_equal(dm_corr_window(0, HOUR, 0, &ws, &we, &err), DM_E_INVALID_FIELD);
    /* the floor of INT64_MIN + 1 to a multiple of 3 lies below INT64_MIN */
    assert_int_equal(dm_corr_window(INT64_MIN + 1, 3, 1, &ws, &we, &err), DM_E_INVALID_FIELD);
    assert_int_equal(dm_corr_window(INT64_MIN + 2 * HOUR, HOUR, 3, &ws, &we, &err),
                     DM_E_INVALID_FIELD);
}

int main(void)
{
    const struct CMUnitTest real_tests[] = {
        cmocka_unit_test(every_pair_matches_the_reference_on_real_hours),
        cmocka_unit_test(eurusd_moves_against_usdjpy_and_with_gbpusd),
        cmocka_unit_test(three_symbols_over_720_hours_take_well_under_a_millisecond),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            counts_only_shared_times_and_takes_each_first_return_from_before_the_window),
        cmocka_unit_test(fewer_pairs_than_min_pairs_have_no_correlation),
        cmocka_unit_test(a_constant_series_has_no_correlation),
        cmocka_unit_test(refuses_unordered_times_bad_closes_and_duplicate_symbols),
        cmocka_unit_test(threshold_keeps_strong_negative_correlations),
        cmocka_unit_test(equal_strengths_are_ordered_by_symbol),
        cmocka_unit_test(depth_two_reaches_through_a_chain_and_keeps_weak_pairs_out_of_edges),
        cmocka_unit_test(clusters_hold_every_symbol_in_the_window_largest_first),
        cmocka_unit_test(spanning_tree_of_four_symbols_uses_signed_distance),
        cmocka_unit_test(a_start_without_candles_is_not_found),
        cmocka_unit_test(window_ends_on_the_candle_boundary_at_or_before_end),
    };
    int failed = cmocka_run_group_tests_name("real hours", real_tests, load_real, free_real);
    return failed + cmocka_run_group_tests_name("correl", tests, NULL, NULL);
}
