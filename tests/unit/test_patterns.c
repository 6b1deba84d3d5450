/* Pattern search (worker/analysis/patterns): answers equal a brute force (direct Pearson
 * per window, the contract's tie rule, greedy exclusion) on random walks, flat stretches,
 * duplicates, every zone, date bounds and both modes; bad queries are refused; the
 * series stays sorted; concurrent searches agree; timings on the real hourly files. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "analysis/patterns.h"

#define HOUR 3600000LL
#define T0 1600000000000LL

/* ---- a brute force, written from the contract alone ---- */

typedef struct {
    const char *symbol;
    size_t series, first;
    double score;
} ref_hit;

static double ref_pearson(const double *x, const double *q, size_t w)
{
    double mx = 0, mq = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t k = 0; k < w; k++) {
        mx += x[k];
        mq += q[k];
    }
    mx /= (double)w;
    mq /= (double)w;
    for (size_t k = 0; k < w; k++) {
        sxy += (x[k] - mx) * (q[k] - mq);
        sxx += (x[k] - mx) * (x[k] - mx);
        syy += (q[k] - mq) * (q[k] - mq);
    }
    if (sqrt(sxx / (double)w) < 1e-7)
        return NAN; /* flat */
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

static int ref_by_score(const void *pa, const void *pb)
{
    const ref_hit *a = pa, *b = pb;
    return a->score > b->score ? -1 : a->score < b->score;
}

static int ref_by_place(const void *pa, const void *pb)
{
    const ref_hit *a = pa, *b = pb;
    int c = strcmp(a->symbol, b->symbol);
    if (c != 0)
        return c;
    if (a->series != b->series)
        return a->series < b->series ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* Score descending; a run of scores each within 1e-9 of the next ties as a whole. */
static void ref_rank(ref_hit *v, size_t n)
{
    qsort(v, n, sizeof *v, ref_by_score);
    for (size_t r = 0, e; r < n; r = e) {
        for (e = r + 1; e < n && v[e - 1].score - v[e].score <= 1e-9;)
            e++;
        qsort(v + r, e - r, sizeof *v, ref_by_place);
    }
}

/* The hits a brute force returns; caller frees. */
static ref_hit *brute(dm_pseries **s, size_t n, const dm_pattern_query *q, size_t *nout)
{
    size_t total = 0, w = q->w, nh = 0;
    for (size_t k = 0; k < n; k++)
        total += dm_pseries_len(s[k]) >= w ? dm_pseries_len(s[k]) - w + 1 : 0;
    ref_hit *all = malloc((total + 1) * sizeof *all), *out = malloc((q->limit + 1) * sizeof *out);
    assert_true(all && out);
    size_t na = 0, zone = q->zone < 0 ? (w + 3) / 4 : (size_t)q->zone;
    for (size_t k = 0; k < n; k++) {
        const int64_t *ts = dm_pseries_ts(s[k]);
        for (size_t i = 0; i + w <= dm_pseries_len(s[k]); i++) {
            if (ts[i] < q->start || ts[i + w - 1] >= q->end)
                continue;
            double r = ref_pearson(dm_pseries_close(s[k]) + i, q->query, w);
            if (isnan(r) || (q->similar && r < q->threshold))
                continue;
            all[na++] = (ref_hit){dm_pseries_symbol(s[k]), k, i, r};
        }
    }
    ref_rank(all, na);
    for (size_t a = 0; a < na && nh < q->limit; a++) {
        bool excluded = false;
        for (size_t t = 0; t < nh && !excluded; t++)
            excluded = out[t].series == all[a].series &&
                       (out[t].first > all[a].first ? out[t].first - all[a].first
                                                    : all[a].first - out[t].first) <= zone;
        if (!excluded)
            out[nh++] = all[a];
    }
    free(all);
    *nout = nh;
    return out;
}

/* Runs the search and the brute force and insists they agree exactly. */
static void check(dm_pseries **s, size_t n, const dm_pattern_query *q)
{
    dm_pattern_hits got = {0};
    dm_err err = {0};
    assert_int_equal(dm_pattern_search(s, n, q, &got, &err), DM_OK);
    size_t nw;
    ref_hit *want = brute(s, n, q, &nw);
    bool same = got.n == nw;
    for (size_t k = 0; same && k < nw; k++)
        same = got.v[k].series == want[k].series && got.v[k].first == want[k].first &&
               fabs(got.v[k].score - want[k].score) <= 1e-9;
    if (!same) {
        fprintf(stderr, "w=%zu zone=%d limit=%zu similar=%d thr=%g: got %zu, want %zu\n", q->w,
                q->zone, q->limit, q->similar, q->threshold, got.n, nw);
        for (size_t k = 0; k < got.n || k < nw; k++)
            fprintf(stderr, "  %zu: got %zu/%zu %.15f  want %zu/%zu %.15f\n", k,
                    k < got.n ? got.v[k].series : 0, k < got.n ? got.v[k].first : 0,
                    k < got.n ? got.v[k].score : 0, k < nw ? want[k].series : 0,
                    k < nw ? want[k].first : 0, k < nw ? want[k].score : 0);
    }
    assert_true(same);
    free(want);
    dm_pattern_hits_free(&got);
}

/* ---- data ---- */

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double gauss(void) { return uniform() + uniform() + uniform() + uniform() - 2; }

static dm_pseries *walk(const char *symbol, size_t n, double start, double vol)
{
    dm_pseries *s = dm_pseries_create(symbol);
    assert_non_null(s);
    double p = start;
    for (size_t i = 0; i < n; i++) {
        p += vol * gauss();
        assert_true(dm_pseries_upsert(s, T0 + (int64_t)i * HOUR, p));
    }
    return s;
}

/* Overwrites closes[at..at+len) with vals (keeping the times). */
static void paste(dm_pseries *s, size_t at, const double *vals, size_t len)
{
    for (size_t k = 0; k < len; k++)
        assert_true(dm_pseries_upsert(s, dm_pseries_ts(s)[at + k], vals[k]));
}

static dm_pattern_query find_q(const double *query, size_t w, size_t limit, int zone)
{
    return (dm_pattern_query){.query = query, .w = w, .limit = limit, .zone = zone,
                              .start = INT64_MIN, .end = INT64_MAX};
}

/* A query near window `at` of s: its closes plus noise of `noise` times their scale. */
static void query_near(const dm_pseries *s, size_t at, size_t w, double noise, double *q)
{
    for (size_t k = 0; k < w; k++)
        q[k] = dm_pseries_close(s)[at + k] * (1 + noise * gauss());
}

static void destroy_all(dm_pseries **s, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dm_pseries_destroy(s[k]);
}

/* ---- promises ---- */

static void find_matches_brute_force_on_random_walks(void **state)
{
    (void)state;
    static const size_t lens[] = {8, 9, 60, 700, 3000};
    static const size_t ws[] = {8, 13, 32, 100, 512};
    double q[512];
    for (size_t a = 0; a < sizeof lens / sizeof *lens; a++) {
        dm_pseries *s[3] = {walk("EURUSD", lens[a], 1.1, 3e-4),
                            walk("USDJPY", lens[a] + 17, 150, 4e-2),
                            walk("GBPUSD", lens[a] / 2 + 5, 1.3, 4e-4)};
        for (size_t b = 0; b < sizeof ws / sizeof *ws; b++) {
            size_t w = ws[b];
            for (int round = 0; round < 3; round++) {
                if (round < 2 && dm_pseries_len(s[1]) >= w)
                    query_near(s[1], (dm_pseries_len(s[1]) - w) / (round + 2), w,
                               round * 1e-4, q);
                else
                    for (size_t k = 0; k < w; k++)
                        q[k] = gauss() + (double)k * 0.01;
                dm_pattern_query fq = find_q(q, w, round == 2 ? 100 : 10, -1);
                check(s, 3, &fq);
                check(s + 1, 1, &fq);
            }
        }
        destroy_all(s, 3);
    }
}

static void flat_windows_are_never_returned(void **state)
{
    (void)state;
    dm_pseries *s[2] = {walk("EURUSD", 2000, 1.1, 3e-4), walk("USDJPY", 2000, 150, 4e-2)};
    double flat[300], almost[300];
    for (size_t k = 0; k < 300; k++) {
        flat[k] = 1.2345;
        /* standard deviations around the 1e-7 threshold, on both sides */
        almost[k] = 150 + (k % 2 ? 1 : -1) * (0.5e-7 + 1e-9 * (double)k);
    }
    paste(s[0], 100, flat, 300);
    paste(s[0], 1000, flat, 40);
    paste(s[1], 500, almost, 300);
    paste(s[1], 1500, flat, 10);
    double q[64];
    for (size_t w = 8; w <= 64; w *= 2) {
        for (size_t k = 0; k < w; k++)
            q[k] = (k % 2 ? 1 : -1) * 1e-3 + 1e-5 * (double)k;
        dm_pattern_query fq = find_q(q, w, 100, 0);
        check(s, 2, &fq);
        fq.similar = true, fq.threshold = -1, fq.limit = 1000, fq.zone = -1;
        check(s, 2, &fq);
        dm_pattern_hits got = {0};
        dm_err err = {0};
        assert_int_equal(dm_pattern_search(s, 2, &fq, &got, &err), DM_OK);
        for (size_t h = 0; h < got.n; h++) {
            double z[64];
            assert_true(dm_znorm(dm_pseries_close(s[got.v[h].series]) + got.v[h].first, w, z));
        }
        dm_pattern_hits_free(&got);
    }
    destroy_all(s, 2);
}

static void duplicate_windows_tie_by_symbol_then_time(void **state)
{
    (void)state;
    /* Passed with "GBPUSD" first: the order must come from the symbols, not the array. */
    dm_pseries *s[2] = {walk("GBPUSD", 600, 1.3, 4e-4), walk("EURUSD", 600, 1.1, 3e-4)};
    const double *src = dm_pseries_close(s[1]) + 50;
    double seg[40];
    memcpy(seg, src, sizeof seg);
    paste(s[1], 400, seg, 40);
    paste(s[0], 10, seg, 40);
    paste(s[0], 300, seg, 40);
    dm_pattern_query fq = find_q(seg, 40, 5, -1);
    check(s, 2, &fq);
    dm_pattern_hits got = {0};
    dm_err err = {0};
    assert_int_equal(dm_pattern_search(s, 2, &fq, &got, &err), DM_OK);
    assert_true(got.n >= 4);
    static const size_t want[][2] = {{1, 50}, {1, 400}, {0, 10}, {0, 300}};
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(got.v[k].series, want[k][0]);
        assert_int_equal(got.v[k].first, want[k][1]);
        assert_true(fabs(got.v[k].score - 1) <= 1e-9);
    }
    dm_pattern_hits_free(&got);
    destroy_all(s, 2);
}

/* Forty copies of one segment, each a little further from it, so that their scores fall
 * in steps of 0.5e-9: one tie run, wider than the band, placed worst first. The run ties
 * as a whole, so the earliest copies come first although they score lowest. */
static void a_tie_run_wider_than_the_band_ties_as_a_whole(void **state)
{
    (void)state;
    dm_pseries *s = walk("EURUSD", 3600, 1.1, 3e-4);
    double b[32], noise[32], mb = 0, mn = 0, bn = 0, bb = 0, nn = 0;
    memcpy(b, dm_pseries_close(s) + 3500, sizeof b);
    for (size_t k = 0; k < 32; k++) {
        noise[k] = gauss();
        mb += b[k] / 32, mn += noise[k] / 32;
    }
    for (size_t k = 0; k < 32; k++)
        bn += (b[k] - mb) * (noise[k] - mn), bb += (b[k] - mb) * (b[k] - mb);
    for (size_t k = 0; k < 32; k++) { /* zero mean, orthogonal to the segment */
        noise[k] -= mn + bn / bb * (b[k] - mb);
        nn += noise[k] * noise[k];
    }
    /* r(b + t noise) = 1 / sqrt(1 + t^2 nn / bb), about 1 - t^2 nn / (2 bb) */
    for (size_t c = 0; c < 40; c++) {
        double t = sqrt((double)c * 1e-9 * bb / nn), v[32];
        for (size_t k = 0; k < 32; k++)
            v[k] = b[k] + t * noise[k];
        paste(s, 100 + (39 - c) * 80, v, 32);
    }
    dm_pattern_query fq = find_q(b, 32, 5, 0);
    check(&s, 1, &fq);
    dm_pattern_hits got = {0};
    dm_err err = {0};
    assert_int_equal(dm_pattern_search(&s, 1, &fq, &got, &err), DM_OK);
    assert_int_equal(got.n, 5);
    for (size_t h = 0; h < 5; h++)
        assert_int_equal(got.v[h].first, 100 + h * 80);
    assert_true(got.v[0].score < got.v[4].score);
    dm_pattern_hits_free(&got);
    dm_pseries_destroy(s);
}

static void zone_default_zero_and_large_match_brute_force(void **state)
{
    (void)state;
    dm_pseries *s[2] = {walk("EURUSD", 5000, 1.1, 3e-4), walk("GBPUSD", 3000, 1.3, 4e-4)};
    static const int zones[] = {-1, 0, 1, 7, 100, 512};
    double q[128];
    for (size_t w = 8; w <= 128; w *= 4) {
        query_near(s[0], 1234, w, 1e-5, q);
        for (size_t z = 0; z < sizeof zones / sizeof *zones; z++) {
            dm_pattern_query fq = find_q(q, w, 100, zones[z]);
            check(s, 2, &fq);
            fq.limit = 3;
            check(s, 2, &fq);
        }
    }
    /* Zone 0 lets a window's neighbours in; the default keeps 8 candles clear of it. */
    query_near(s[0], 2000, 32, 0, q);
    for (int zone = -1; zone <= 0; zone++) {
        dm_pattern_query fq = find_q(q, 32, 100, zone);
        dm_pattern_hits got = {0};
        dm_err err = {0};
        assert_int_equal(dm_pattern_search(s, 2, &fq, &got, &err), DM_OK);
        assert_int_equal(got.v[0].first, 2000);
        size_t near = 0;
        for (size_t h = 1; h < got.n; h++)
            near += got.v[h].series == 0 && got.v[h].first >= 1992 && got.v[h].first <= 2008;
        assert_true(zone == 0 ? near > 0 : near == 0);
        dm_pattern_hits_free(&got);
    }
    destroy_all(s, 2);
}

static void date_bounds_select_windows_by_start_and_end(void **state)
{
    (void)state;
    dm_pseries *s[2] = {walk("EURUSD", 3000, 1.1, 3e-4), walk("USDJPY", 2500, 150, 4e-2)};
    double q[32];
    query_near(s[0], 1500, 32, 1e-5, q);
    static const int64_t bounds[][2] = {
        {T0 + 1000 * HOUR, T0 + 2000 * HOUR}, {T0 + 1500 * HOUR, T0 + 1531 * HOUR},
        {T0 + 1500 * HOUR, T0 + 1532 * HOUR}, {INT64_MIN, T0 + 40 * HOUR},
        {T0 + 2900 * HOUR, INT64_MAX},        {T0 + 10 * HOUR, T0 + 10 * HOUR}};
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        dm_pattern_query fq = find_q(q, 32, 20, -1);
        fq.start = bounds[b][0], fq.end = bounds[b][1];
        check(s, 2, &fq);
        dm_pattern_hits got = {0};
        dm_err err = {0};
        assert_int_equal(dm_pattern_search(s, 2, &fq, &got, &err), DM_OK);
        for (size_t h = 0; h < got.n; h++) {
            const int64_t *ts = dm_pseries_ts(s[got.v[h].series]);
            assert_true(ts[got.v[h].first] >= fq.start);
            assert_true(ts[got.v[h].first + 31] < fq.end);
        }
        /* one window fits [1500 h, 1532 h) in each series; none fits the shorter spans */
        assert_int_equal(got.n, b == 1 || b == 5 ? 0 : b == 2 ? 2 : got.n);
        dm_pattern_hits_free(&got);
    }
    destroy_all(s, 2);
}

static void similar_returns_every_window_above_threshold(void **state)
{
    (void)state;
    dm_pseries *s[3] = {walk("EURUSD", 4000, 1.1, 3e-4), walk("USDJPY", 3000, 150, 4e-2),
                        walk("GBPUSD", 100, 1.3, 4e-4)};
    static const double thr[] = {-1, 0.5, 0.99};
    static const size_t limits[] = {1, 10, 1000};
    double q[64];
    for (size_t w = 16; w <= 64; w *= 2) {
        query_near(s[1], 777, w, 1e-4, q);
        for (size_t t = 0; t < 3; t++)
            for (size_t l = 0; l < 3; l++)
                for (int zone = -1; zone <= 0; zone++) {
                    dm_pattern_query sq = find_q(q, w, limits[l], zone);
                    sq.similar = true, sq.threshold = thr[t];
                    check(s, 3, &sq);
                }
    }
    destroy_all(s, 3);
}

static void limit_larger_than_the_windows_returns_them_all(void **state)
{
    (void)state;
    dm_pseries *s = walk("EURUSD", 40, 1.1, 3e-4);
    double q[16];
    query_near(s, 3, 16, 1e-3, q);
    dm_pattern_query fq = find_q(q, 16, 100, 0);
    dm_pattern_hits got = {0};
    dm_err err = {0};
    assert_int_equal(dm_pattern_search(&s, 1, &fq, &got, &err), DM_OK);
    assert_int_equal(got.n, 40 - 16 + 1);
    check(&s, 1, &fq);
    dm_pattern_hits_free(&got);
    dm_pseries_destroy(s);
}

static void series_shorter_than_the_query_has_no_hits(void **state)
{
    (void)state;
    dm_pseries *s[2] = {walk("EURUSD", 31, 1.1, 3e-4), dm_pseries_create("GBPUSD")};
    double q[32];
    for (size_t k = 0; k < 32; k++)
        q[k] = (double)k;
    dm_pattern_query fq = find_q(q, 32, 10, -1);
    dm_pattern_hits got = {0};
    dm_err err = {0};
    assert_int_equal(dm_pattern_search(s, 2, &fq, &got, &err), DM_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(dm_pattern_search(s, 0, &fq, &got, &err), DM_OK);
    assert_int_equal(got.n, 0);
    dm_pattern_hits_free(&got);
    destroy_all(s, 2);
}

static void refuse(dm_pseries *s, dm_pattern_query q, const char *field)
{
    dm_pattern_hits got = {0};
    dm_err err = {0};
    assert_int_equal(dm_pattern_search(&s, 1, &q, &got, &err), DM_E_INVALID_FIELD);
    assert_string_equal(err.field, field);
    assert_true(err.message[0] != '\0');
    dm_pattern_hits_free(&got);
}

static void bad_queries_are_invalid_fields(void **state)
{
    (void)state;
    dm_pseries *s = walk("EURUSD", 500, 1.1, 3e-4);
    double q[600];
    for (size_t k = 0; k < 600; k++)
        q[k] = 1.1 + 1e-4 * (double)(k % 7);
    double flat[32];
    for (size_t k = 0; k < 32; k++)
        flat[k] = 1.1 + (k % 2) * 1e-8; /* std 5e-9 */
    refuse(s, find_q(flat, 32, 10, -1), "pattern_vector");
    dm_pattern_query named = find_q(flat, 32, 10, -1);
    named.field = "vector";
    refuse(s, named, "vector");
    q[5] = NAN;
    refuse(s, find_q(q, 32, 10, -1), "pattern_vector");
    q[5] = INFINITY;
    refuse(s, find_q(q, 32, 10, -1), "pattern_vector");
    q[5] = 1.1;
    refuse(s, find_q(q, 7, 10, -1), "pattern_vector");
    refuse(s, find_q(q, 513, 10, -1), "pattern_vector");
    refuse(s, find_q(NULL, 32, 10, -1), "pattern_vector");
    refuse(s, find_q(q, 32, 0, -1), "limit");
    refuse(s, find_q(q, 32, 101, -1), "limit");
    refuse(s, find_q(q, 32, 10, 513), "zone");
    dm_pattern_query sq = find_q(q, 32, 1001, -1);
    sq.similar = true;
    refuse(s, sq, "limit");
    sq.limit = 1000, sq.threshold = 1.5;
    refuse(s, sq, "threshold");
    sq.threshold = NAN;
    refuse(s, sq, "threshold");
    dm_pseries_destroy(s);
}

static void a_stored_window_as_query_scores_one_and_comes_first(void **state)
{
    (void)state;
    dm_pseries *s[2] = {walk("USDJPY", 5000, 150, 4e-2), walk("EURUSD", 5000, 1.1, 3e-4)};
    for (size_t w = 8; w <= 512; w *= 4) {
        for (size_t k = 0; k < 2; k++) {
            size_t at = 4000 - w;
            dm_pattern_query fq = find_q(dm_pseries_close(s[k]) + at, w, 10, -1);
            dm_pattern_hits got = {0};
            dm_err err = {0};
            assert_int_equal(dm_pattern_search(s, 2, &fq, &got, &err), DM_OK);
            assert_true(got.n > 0);
            assert_int_equal(got.v[0].series, k);
            assert_int_equal(got.v[0].first, at);
            assert_true(fabs(got.v[0].score - 1) <= 1e-9);
            dm_pattern_hits_free(&got);
            check(s, 2, &fq);
        }
    }
    destroy_all(s, 2);
}

static void upsert_keeps_the_series_sorted_and_unique(void **state)
{
    (void)state;
    dm_pseries *s = dm_pseries_create("EURUSD");
    static const int64_t order[] = {5, 1, 9, 3, 7, 5, 0, 9, 2, 8, 4, 6};
    for (size_t k = 0; k < sizeof order / sizeof *order; k++)
        assert_true(dm_pseries_upsert(s, T0 + order[k] * HOUR, 1.0 + (double)k));
    assert_int_equal(dm_pseries_len(s), 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(dm_pseries_ts(s)[i], T0 + (int64_t)i * HOUR);
    assert_true(dm_pseries_close(s)[5] == 6.0); /* the second write of hour 5 */
    assert_true(dm_pseries_close(s)[9] == 8.0);
    assert_string_equal(dm_pseries_symbol(s), "EURUSD");
    assert_false(dm_pseries_upsert(s, T0 + 20 * HOUR, NAN));
    assert_false(dm_pseries_upsert(s, T0 + 20 * HOUR, INFINITY));
    assert_int_equal(dm_pseries_len(s), 10);
    assert_true(dm_pseries_bytes(s) >= 10 * 16);

    /* A search after an upsert sees the new closes (the memo is dropped). */
    double q[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    dm_pattern_query fq = find_q(q, 8, 10, 0);
    check(&s, 1, &fq);
    for (size_t i = 0; i < 10; i++)
        assert_true(dm_pseries_upsert(s, T0 + (int64_t)i * HOUR, (double)i));
    check(&s, 1, &fq);
    dm_pattern_hits got = {0};
    dm_err err = {0};
    assert_int_equal(dm_pattern_search(&s, 1, &fq, &got, &err), DM_OK);
    assert_true(fabs(got.v[0].score - 1) <= 1e-9);
    dm_pattern_hits_free(&got);
    dm_pseries_destroy(s);
}

typedef struct {
    dm_pseries **s;
    const dm_pattern_query *q;
    dm_pattern_hits got;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    dm_err err = {0};
    if (dm_pattern_search(j->s, 3, j->q, &j->got, &err) != DM_OK)
        j->got.n = SIZE_MAX;
    return NULL;
}

static void concurrent_searches_of_one_series_agree(void **state)
{
    (void)state;
    dm_pseries *s[3] = {walk("EURUSD", 20000, 1.1, 3e-4), walk("USDJPY", 9000, 150, 4e-2),
                        walk("GBPUSD", 7000, 1.3, 4e-4)};
    double q[64];
    query_near(s[0], 9999, 64, 1e-4, q);
    dm_pattern_query fq = find_q(q, 64, 10, -1);
    job jobs[6];
    pthread_t th[6];
    for (size_t k = 0; k < 6; k++) {
        jobs[k] = (job){.s = s, .q = &fq};
        assert_int_equal(pthread_create(&th[k], NULL, run_job, &jobs[k]), 0);
    }
    for (size_t k = 0; k < 6; k++)
        pthread_join(th[k], NULL);
    check(s, 3, &fq);
    assert_int_equal(jobs[0].got.n, 10);
    for (size_t k = 1; k < 6; k++) {
        assert_int_equal(jobs[k].got.n, jobs[0].got.n);
        assert_memory_equal(jobs[k].got.v, jobs[0].got.v, jobs[0].got.n * sizeof *jobs[0].got.v);
    }
    for (size_t k = 0; k < 6; k++)
        dm_pattern_hits_free(&jobs[k].got);
    destroy_all(s, 3);
}

/* Stretches that stress the rolling statistics and the FFT's precision: a spike followed
 * by near-flat closes (cancellation), a constant run, a copied segment. */
static void roughen(dm_pseries *s, double level)
{
    size_t n = dm_pseries_len(s);
    double v[400];
    if (n < 450)
        return;
    size_t at = (size_t)(uniform() * (double)(n - 420));
    for (size_t k = 0; k < 400; k++)
        v[k] = level * (1 + (k == 0 ? 0.5 : 0) + 1.5e-7 * gauss() / (k < 200 ? 1 : level));
    paste(s, at, v, 400);
    for (size_t k = 0; k < 60; k++)
        v[k] = level;
    paste(s, (size_t)(uniform() * (double)(n - 60)), v, 60);
    memcpy(v, dm_pseries_close(s) + n - 100, 100 * sizeof *v);
    paste(s, (size_t)(uniform() * (double)(n - 200)), v, 100);
}

static void random_queries_match_brute_force(void **state)
{
    (void)state;
    static const double levels[] = {1.1, 150, 25000};
    double q[512] = {0};
    for (int round = 0; round < 40; round++) {
        size_t ns = 1 + (size_t)round % 3, w = 8 + (size_t)(uniform() * uniform() * 505);
        size_t n = 1 + (size_t)(uniform() * (round % 4 == 0 ? 20000 : 2000));
        dm_pseries *s[3];
        char sym[3][8];
        for (size_t k = 0; k < ns; k++) {
            double level = levels[(size_t)(uniform() * 3)];
            snprintf(sym[k], sizeof sym[k], "S%d", (int)(uniform() * 3)); /* repeats too */
            s[k] = walk(sym[k], n + k * 13, level, level * 1e-4 * uniform());
            roughen(s[k], level);
        }
        double z[512];
        if (dm_pseries_len(s[0]) >= w && uniform() < 0.7)
            query_near(s[0], (size_t)(uniform() * (double)(dm_pseries_len(s[0]) - w + 1)), w,
                       uniform() < 0.5 ? 0 : 1e-5, q);
        if (!dm_znorm(q, w, z)) /* not taken from a series, or taken from a flat run */
            for (size_t k = 0; k < w; k++)
                q[k] = gauss();
        dm_pattern_query fq = find_q(q, w, 1 + (size_t)(uniform() * 100), -1);
        double r = uniform();
        fq.zone = r < 0.3 ? -1 : r < 0.5 ? 0 : (int)(uniform() * 513);
        if (uniform() < 0.3) {
            fq.start = T0 + (int64_t)(uniform() * (double)n) * HOUR;
            fq.end = fq.start + (int64_t)(uniform() * (double)n) * HOUR;
        }
        check(s, ns, &fq);
        fq.similar = true, fq.limit = 1 + (size_t)(uniform() * 1000);
        fq.threshold = uniform() < 0.3 ? -1 : 2 * uniform() - 1;
        check(s, ns, &fq);
        destroy_all(s, ns);
    }
}

static void znorm_refuses_flat_and_normalises(void **state)
{
    (void)state;
    double x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, z[8], c[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    assert_true(dm_znorm(x, 8, z));
    double sum = 0, ss = 0;
    for (size_t k = 0; k < 8; k++)
        sum += z[k], ss += z[k] * z[k];
    assert_true(fabs(sum) < 1e-12 && fabs(ss / 8 - 1) < 1e-12);
    assert_false(dm_znorm(c, 8, z));
}

/* ---- the real files ---- */

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* Both layouts: "YYYY.MM.DD HH:MM,O,H,L,C,V" and "YYYY.MM.DD,HH:MM,O,H,L,C,V". */
static dm_pseries *load(const char *file, const char *symbol)
{
    char path[512], line[256];
    snprintf(path, sizeof path, "%s/%s", DM_DATA_DIR, file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    dm_pseries *s = dm_pseries_create(symbol);
    while (fgets(line, sizeof line, f)) {
        int y, mo, d, h, mi;
        double o, hi, lo, c;
        if (sscanf(line, "%d.%d.%d%*[ ,]%d:%d,%lf,%lf,%lf,%lf", &y, &mo, &d, &h, &mi, &o, &hi,
                   &lo, &c) != 9)
            continue;
        int64_t ts = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000;
        assert_true(dm_pseries_upsert(s, ts, c));
    }
    fclose(f);
    return s;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double time_search(dm_pseries **s, size_t n, const dm_pattern_query *q, int reps)
{
    dm_pattern_hits got = {0};
    dm_err err = {0};
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t = now_ms();
        assert_int_equal(dm_pattern_search(s, n, q, &got, &err), DM_OK);
        best = fmin(best, now_ms() - t);
    }
    dm_pattern_hits_free(&got);
    return best;
}

static void real_files_match_brute_force_and_print_timings(void **state)
{
    (void)state;
    dm_pseries *s[4] = {load("EURUSD_H1_2010-10_2021-04.csv", "EURUSD.old"),
                        load("EURUSD_H1_2021-01_2026-04.csv", "EURUSD"),
                        load("GBPUSD_H1_2021-01_2026-04.csv", "GBPUSD"),
                        load("USDJPY_H1_2021-01_2026-04.csv", "USDJPY")};
    if (!s[0] || !s[1] || !s[2] || !s[3]) {
        destroy_all(s, 4);
        skip();
    }
    static const size_t ws[] = {32, 128};
    for (size_t b = 0; b < 2; b++) {
        size_t w = ws[b];
        /* The query: a recent USD/JPY week, as a client would send it. */
        const double *q = dm_pseries_close(s[3]) + dm_pseries_len(s[3]) - w - 100;
        dm_pattern_query fq = find_q(q, w, 10, -1);
        double first = time_search(s, 4, &fq, 1);
        double all = time_search(s, 4, &fq, 5);
        printf("patterns: W=%zu limit=10 over 4 series (%zu+%zu+%zu+%zu closes): first %.2f ms "
               "(spectra built), then %.2f ms (best of 5)\n",
               w, dm_pseries_len(s[0]), dm_pseries_len(s[1]), dm_pseries_len(s[2]),
               dm_pseries_len(s[3]), first, all);
        for (size_t k = 0; k < 4; k++)
            printf("patterns:   W=%zu %s alone (%zu closes): %.2f ms\n", w,
                   dm_pseries_symbol(s[k]), dm_pseries_len(s[k]), time_search(s + k, 1, &fq, 5));
        dm_pattern_query sq = fq;
        sq.similar = true, sq.threshold = 0.9, sq.limit = 1000;
        printf("patterns:   W=%zu similar >= 0.9 limit 1000: %.2f ms\n", w,
               time_search(s, 4, &sq, 3));
        check(s, 4, &fq);
        check(s, 4, &sq);
    }
    destroy_all(s, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(find_matches_brute_force_on_random_walks),
        cmocka_unit_test(flat_windows_are_never_returned),
        cmocka_unit_test(duplicate_windows_tie_by_symbol_then_time),
        cmocka_unit_test(a_tie_run_wider_than_the_band_ties_as_a_whole),
        cmocka_unit_test(zone_default_zero_and_large_match_brute_force),
        cmocka_unit_test(date_bounds_select_windows_by_start_and_end),
        cmocka_unit_test(similar_returns_every_window_above_threshold),
        cmocka_unit_test(limit_larger_than_the_windows_returns_them_all),
        cmocka_unit_test(series_shorter_than_the_query_has_no_hits),
        cmocka_unit_test(bad_queries_are_invalid_fields),
        cmocka_unit_test(a_stored_window_as_query_scores_one_and_comes_first),
        cmocka_unit_test(upsert_keeps_the_series_sorted_and_unique),
        cmocka_unit_test(concurrent_searches_of_one_series_agree),
        cmocka_unit_test(random_queries_match_brute_force),
        cmocka_unit_test(znorm_refuses_flat_and_normalises),
        cmocka_unit_test(real_files_match_brute_force_and_print_timings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
