#include "correl_priv.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

dm_code dm_corr_window(int64_t end, int64_t tf_ms, int window_candles, int64_t *window_start,
                       int64_t *window_end, dm_err *err)
{
    if (tf_ms <= 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "timeframe",
                       "timeframe length %" PRId64 " ms must be positive", tf_ms);
    if (window_candles <= 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "window", "window of %d candles must be positive",
                       window_candles);
    /* C division truncates toward zero; a window must end at the candle boundary at or
     * before end, also for times before 1970. */
    int64_t q = end / tf_ms;
    if (end % tf_ms != 0 && end < 0)
        q--;
    int64_t we, span, ws;
    if (__builtin_mul_overflow(q, tf_ms, &we) ||
        __builtin_mul_overflow((int64_t)window_candles, tf_ms, &span) ||
        __builtin_sub_overflow(we, span, &ws))
        return dm_fail(err, DM_E_INVALID_FIELD, "window",
                       "a window of %d x %" PRId64 " ms ending at %" PRId64
                       " falls outside the time range",
                       window_candles, tf_ms, end);
    *window_start = ws;
    *window_end = we;
    return DM_OK;
}

/* ---- the matrix ---- */

/* The returns of one series inside the window, at the times they belong to. */
typedef struct {
    const int64_t *ts;
    double *ret;
    size_t n;
    size_t from; /* index in the series of the first return */
} run;

/* First index whose time is after t (n when none is). */
static size_t first_after(const int64_t *ts, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static dm_code locate(const dm_corr_series *s, int64_t ws, int64_t we, run *out, bool *in_window,
                      dm_err *err)
{
    if (s->symbol == NULL)
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "a series has no symbol");
    if (s->n > 0 && (s->ts == NULL || s->close == NULL))
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "%s has %zu candles but no data",
                       s->symbol, s->n);
    size_t lo = first_after(s->ts, s->n, ws), hi = first_after(s->ts, s->n, we);
    *in_window = hi > lo;
    /* The first candle of a series has no return; the one before the window lends its
     * close to the window's first return. */
    out->from = lo > 0 ? lo : 1;
    out->n = hi > out->from ? hi - out->from : 0;
    out->ts = out->n ? s->ts + out->from : NULL;
    return DM_OK;
}

/* Checks the slice the returns come from, then takes them. */
static dm_code take_returns(const dm_corr_series *s, run *r, dm_err *err)
{
    if (r->n == 0)
        return DM_OK;
    for (size_t k = r->from - 1; k < r->from + r->n; k++) {
        double c = s->close[k];
        if (!(isfinite(c) && c > 0))
            return dm_fail(err, DM_E_INVALID_FIELD, "close",
                           "%s close %g at %" PRId64 " must be a positive number", s->symbol, c,
                           s->ts[k]);
        if (k >= r->from && s->ts[k] <= s->ts[k - 1])
            return dm_fail(err, DM_E_INVALID_FIELD, "ts",
                           "%s candle times must ascend: %" PRId64 " follows %" PRId64, s->symbol,
                           s->ts[k], s->ts[k - 1]);
        if (k >= r->from)
            r->ret[k - r->from] = log(c / s->close[k - 1]);
    }
    return DM_OK;
}

/* Two passes (means, then centred sums): the one-pass formula loses its digits to
 * cancellation when the mean is large next to the spread. Zero variance is judged on the
 * values themselves, since a constant run's rounded mean can leave a centred sum of
 * rounding dust that would pass for a variance. */
static bool pearson(const double *x, const double *y, size_t n, double *r)
{
    if (n == 0)
        return false;
    double mx = 0, my = 0;
    bool x_varies = false, y_varies = false;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
        x_varies |= x[i] != x[0];
        y_varies |= y[i] != y[0];
    }
    if (!(x_varies && y_varies))
        return false;
    mx /= (double)n;
    my /= (double)n;
    double sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    double den = sqrt(sxx) * sqrt(syy);
    if (!(den > 0))
        return false;
    double v = sxy / den;
    *r = v > 1 ? 1 : v < -1 ? -1 : v;
    return true;
}

/* Merges two runs on their times into x and y (room for the shorter run). */
static size_t shared(const run *a, const run *b, double *x, double *y)
{
    size_t i = 0, j = 0, k = 0;
    while (i < a->n && j < b->n) {
        if (a->ts[i] < b->ts[j]) {
            i++;
        } else if (a->ts[i] > b->ts[j]) {
            j++;
        } else {
            x[k] = a->ret[i++];
            y[k++] = b->ret[j++];
        }
    }
    return k;
}

static dm_code check_symbols(const dm_corr_series *s, size_t n_sym, dm_err *err)
{
    for (size_t i = 0; i < n_sym; i++)
        for (size_t j = i + 1; j < n_sym; j++)
            if (s[i].symbol && s[j].symbol && strcmp(s[i].symbol, s[j].symbol) == 0)
                return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "%s appears twice", s[i].symbol);
    return DM_OK;
}

static dm_code matrix_alloc(dm_corr_matrix *m, size_t n_sym)
{
    if (n_sym > 0 && n_sym > SIZE_MAX / n_sym)
        return DM_E_INTERNAL;
    size_t cells = n_sym * n_sym;
    m->n_sym = n_sym;
    m->r = alloc_n(cells, sizeof *m->r);
    m->pairs = alloc_n(cells, sizeof *m->pairs);
    m->has = alloc_n(cells, sizeof *m->has);
    m->has_candles = alloc_n(n_sym, sizeof *m->has_candles);
    m->in_window = alloc_n(n_sym, sizeof *m->in_window);
    return m->r && m->pairs && m->has && m->has_candles && m->in_window ? DM_OK : DM_E_INTERNAL;
}

/* The returns of every series go into one buffer, followed by room for one pair's values
 * (x and y, as long as the longest run). */
static dm_code load_runs(const dm_corr_series *s, dm_corr_matrix *m, run *runs, double **buf,
                         double **x, double **y, dm_err *err)
{
    size_t total = 0, longest = 0;
    for (size_t i = 0; i < m->n_sym; i++) {
        dm_code c = locate(&s[i], m->window_start, m->window_end, &runs[i], &m->in_window[i], err);
        if (c != DM_OK)
            return c;
        m->has_candles[i] = s[i].n > 0;
        total += runs[i].n;
        longest = runs[i].n > longest ? runs[i].n : longest;
    }
    if ((*buf = alloc_n(total + 2 * longest, sizeof **buf)) == NULL)
        return out_of_memory(err);
    *x = *buf + total;
    *y = *x + longest;
    for (size_t i = 0, off = 0; i < m->n_sym; off += runs[i].n, i++) {
        runs[i].ret = *buf + off;
        dm_code c = take_returns(&s[i], &runs[i], err);
        if (c != DM_OK)
            return c;
    }
    return DM_OK;
}

static void fill_pairs(dm_corr_matrix *m, const run *runs, double *x, double *y)
{
    size_t n = m->n_sym;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            size_t k = shared(&runs[i], &runs[j], x, y);
            double r = 0;
            bool has = (int64_t)k >= m->min_pairs && pearson(x, y, k, &r);
            m->pairs[i * n + j] = m->pairs[j * n + i] = (int64_t)k;
            m->has[i * n + j] = m->has[j * n + i] = has;
            m->r[i * n + j] = m->r[j * n + i] = has ? r : 0;
        }
    }
}

dm_code dm_corr_matrix_compute(const dm_corr_series *s, size_t n_sym, int64_t window_start,
                               int64_t window_end, int min_pairs, dm_corr_matrix *out, dm_err *err)
{
    memset(out, 0, sizeof *out);
    if (window_end < window_start)
        return dm_fail(err, DM_E_INVALID_FIELD, "window",
                       "window end %" PRId64 " is before its start %" PRId64, window_end,
                       window_start);
    if (min_pairs < 0)
        return dm_fail(err, DM_E_INVALID_FIELD, "min_pairs", "min_pairs %d must not be negative",
                       min_pairs);
    dm_code c = check_symbols(s, n_sym, err);
    if (c != DM_OK)
        return c;
    if (matrix_alloc(out, n_sym) != DM_OK) {
        dm_corr_matrix_free(out);
        return out_of_memory(err);
    }
    out->window_start = window_start;
    out->window_end = window_end;
    out->min_pairs = min_pairs;
    run *runs = alloc_n(n_sym, sizeof *runs);
    double *buf = NULL, *x = NULL, *y = NULL;
    c = runs ? load_runs(s, out, runs, &buf, &x, &y, err) : out_of_memory(err);
    if (c == DM_OK)
        fill_pairs(out, runs, x, y);
    else
        dm_corr_matrix_free(out);
    free(buf);
    free(runs);
    return c;
}

void dm_corr_matrix_free(dm_corr_matrix *m)
{
    free(m->r);
    free(m->pairs);
    free(m->has);
    free(m->has_candles);
    free(m->in_window);
    memset(m, 0, sizeof *m);
}

/* ---- answers derived from the matrix ---- */

typedef struct {
    double key;
    const char *symbol;
    dm_corr_row row;
} ranked_row;

static int by_strength(const void *pa, const void *pb)
{
    const ranked_row *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return strcmp(a->symbol, b->symbol);
}

dm_code dm_corr_for(const dm_corr_matrix *m, const dm_corr_series *s, size_t i, double threshold,
                    dm_corr_row **rows, size_t *n_rows, dm_err *err)
{
    *rows = NULL;
    *n_rows = 0;
    if (i >= m->n_sym)
        return dm_fail(err, DM_E_INVALID_FIELD, "symbol", "symbol index %zu of %zu", i, m->n_sym);
    dm_code c = check_threshold(threshold, err);
    if (c != DM_OK)
        return c;
    ranked_row *tmp = alloc_n(m->n_sym, sizeof *tmp);
    if (tmp == NULL)
        return out_of_memory(err);
    size_t n = 0;
    for (size_t j = 0; j < m->n_sym; j++) {
        if (j == i || !linked(m, i, j, threshold))
            continue;
        size_t cell = dm_corr_cell(m, i, j);
        tmp[n++] = (ranked_row){fabs(m->r[cell]), s[j].symbol, {j, m->r[cell], m->pairs[cell]}};
    }
    qsort(tmp, n, sizeof *tmp, by_strength);
    if (n > 0 && (*rows = malloc(n * sizeof **rows)) == NULL) {
        free(tmp);
        return out_of_memory(err);
    }
    for (size_t k = 0; k < n; k++)
        (*rows)[k] = tmp[k].row;
    *n_rows = n;
    free(tmp);
    return DM_OK;
}
