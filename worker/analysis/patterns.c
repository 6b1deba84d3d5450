#include "patterns.h"

#include <complex.h> /* before fftw3.h, so fftw_complex is double complex */
#include <fftw3.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* How the search stays exact while the FFT does the heavy part (MASS: all sliding dot
 * products of the z-normalised query with a series in O(n log n)):
 * 1. Screening gives every window an approximate score and a bound on its error: the FFT's
 *    norm-wise error, the rolling standard deviation's tracked error, the query's rounding.
 * 2. Only the best limit * (2 * zone + 1) windows can be reached by the greedy walk (each
 *    taken window excludes at most 2 * zone others), so windows whose upper bound falls
 *    below that many lower bounds (less the tie band) are dropped unseen.
 * 3. The survivors are ordered by approximate score and split where the bounds prove the
 *    order; wherever they do not (ties, near-flat windows), and for every returned window,
 *    the score is computed directly from the closes, as a brute force would. */

#define EPS DBL_EPSILON
/* FFT convolution error: |error| <= FFT_C * eps * log2(N) * |x|_2 * |q|_2, the norm-wise
 * bound for FFTs with a constant well above the largest ratio seen on random walks and the
 * real files (about 0.05), since a bound too loose only costs direct rescoring. */
#define FFT_C 8.0
/* Rolling statistics restart from a direct two-pass computation this often, so their
 * error cannot drift far from the window they describe. */
#define RESYNC 64
/* Two direct computations of one score (ours, a client's brute force) differ by rounding
 * only; this covers that, so the tie band is never cut short. */
#define SLACK 1e-12

/* ---- series ---- */

/* The FFT of the de-meaned series, padded to nfft, with the plans that fit its size.
 * Built by the first search after a change, under the series' mutex, and read-only after. */
typedef struct {
    size_t nfft;
    double mean, norm; /* the mean subtracted and the 2-norm of what is left */
    fftw_complex *x;   /* nfft / 2 + 1 bins */
    fftw_plan r2c, c2r;
} spectrum;

struct dm_pseries {
    char *symbol;
    int64_t *ts;
    double *close;
    size_t n, cap;
    pthread_mutex_t memo_mu; /* guards building memo; upserts run alone (caller's lock) */
    spectrum *memo;
};

/* FFTW's planner is not thread-safe (only fftw_execute is): every plan made or destroyed
 * in this file goes through this lock. Shared by all threads of the process. */
static pthread_mutex_t planner_mu = PTHREAD_MUTEX_INITIALIZER;

static void spectrum_free(spectrum *sp)
{
    if (sp == NULL)
        return;
    pthread_mutex_lock(&planner_mu);
    if (sp->r2c)
        fftw_destroy_plan(sp->r2c);
    if (sp->c2r)
        fftw_destroy_plan(sp->c2r);
    pthread_mutex_unlock(&planner_mu);
    fftw_free(sp->x);
    free(sp);
}

dm_pseries *dm_pseries_create(const char *symbol)
{
    dm_pseries *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->symbol = strdup(symbol ? symbol : "");
    if (s->symbol == NULL || pthread_mutex_init(&s->memo_mu, NULL) != 0) {
        free(s->symbol);
        free(s);
        return NULL;
    }
    return s;
}

void dm_pseries_destroy(dm_pseries *s)
{
    if (s == NULL)
        return;
    spectrum_free(s->memo);
    pthread_mutex_destroy(&s->memo_mu);
    free(s->symbol);
    free(s->ts);
    free(s->close);
    free(s);
}

static bool grow(dm_pseries *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    int64_t *ts = realloc(s->ts, cap * sizeof *ts);
    if (ts == NULL)
        return false;
    s->ts = ts;
    double *close = realloc(s->close, cap * sizeof *close);
    if (close == NULL)
        return false; /* ts is just roomier than cap says */
    s->close = close;
    s->cap = cap;
    return true;
}

bool dm_pseries_upsert(dm_pseries *s, int64_t ts, double close)
{
    size_t at = s->n;
    if (s->n > 0 && ts <= s->ts[s->n - 1]) {
        size_t lo = 0, hi = s->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->ts[mid] < ts)
                lo = mid + 1;
            else
                hi = mid;
        }
        at = lo;
    }
    if (at < s->n && s->ts[at] == ts) {
        s->close[at] = close;
    } else {
        if (s->n == s->cap && !grow(s))
            return false;
        memmove(s->ts + at + 1, s->ts + at, (s->n - at) * sizeof *s->ts);
        memmove(s->close + at + 1, s->close + at, (s->n - at) * sizeof *s->close);
        s->ts[at] = ts;
        s->close[at] = close;
        s->n++;
    }
    spectrum_free(s->memo);
    s->memo = NULL;
    return true;
}

size_t dm_pseries_len(const dm_pseries *s) { return s->n; }
const char *dm_pseries_symbol(const dm_pseries *s) { return s->symbol; }
const int64_t *dm_pseries_ts(const dm_pseries *s) { return s->ts; }
const double *dm_pseries_close(const dm_pseries *s) { return s->close; }

size_t dm_pseries_bytes(const dm_pseries *s)
{
    size_t b = sizeof *s + strlen(s->symbol) + 1 + s->cap * (sizeof *s->ts + sizeof *s->close);
    if (s->memo)
        b += sizeof *s->memo + (s->memo->nfft / 2 + 1) * sizeof(fftw_complex);
    return b;
}

/* The smallest 7-smooth size >= n: FFTW is fastest on those, and a correlation needs
 * no padding beyond the series (see sliding_dots). */
static size_t fft_size(size_t n)
{
    for (size_t m = n;; m++) {
        size_t r = m;
        for (size_t p = 2; p <= 7; p++)
            while (r % p == 0)
                r /= p;
        if (r == 1)
            return m;
    }
}

static spectrum *spectrum_build(const dm_pseries *s)
{
    spectrum *sp = calloc(1, sizeof *sp);
    if (sp == NULL)
        return NULL;
    sp->nfft = fft_size(s->n);
    double *buf = fftw_malloc(sp->nfft * sizeof *buf);
    sp->x = fftw_malloc((sp->nfft / 2 + 1) * sizeof *sp->x);
    if (buf && sp->x) {
        pthread_mutex_lock(&planner_mu);
        /* FFTW_ESTIMATE leaves the arrays alone while planning. */
        sp->r2c = fftw_plan_dft_r2c_1d((int)sp->nfft, buf, sp->x, FFTW_ESTIMATE);
        sp->c2r = fftw_plan_dft_c2r_1d((int)sp->nfft, sp->x, buf, FFTW_ESTIMATE);
        pthread_mutex_unlock(&planner_mu);
    }
    if (buf == NULL || sp->x == NULL || sp->r2c == NULL || sp->c2r == NULL) {
        fftw_free(buf);
        spectrum_free(sp);
        return NULL;
    }
    /* Without the mean, a USD/JPY series near 150 would swamp the FFT's precision. */
    double sum = 0, sq = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->close[i];
    sp->mean = sum / (double)s->n;
    for (size_t i = 0; i < s->n; i++) {
        buf[i] = s->close[i] - sp->mean;
        sq += buf[i] * buf[i];
    }
    memset(buf + s->n, 0, (sp->nfft - s->n) * sizeof *buf);
    sp->norm = sqrt(sq);
    fftw_execute_dft_r2c(sp->r2c, buf, sp->x);
    fftw_free(buf);
    return sp;
}

static const spectrum *spectrum_of(dm_pseries *s)
{
    pthread_mutex_lock(&s->memo_mu);
    if (s->memo == NULL)
        s->memo = spectrum_build(s);
    const spectrum *sp = s->memo;
    pthread_mutex_unlock(&s->memo_mu);
    return sp;
}

/* dots[i] = sum_k (x[i + k] - mean) * qn[k] for i = 0..n-w: a circular correlation of
 * size nfft >= n never wraps for those i, since i + k <= n - 1. */
static bool sliding_dots(const dm_pseries *s, const spectrum *sp, const double *qn, size_t w,
                         double *dots)
{
    size_t nb = sp->nfft / 2 + 1;
    double *buf = fftw_malloc(sp->nfft * sizeof *buf);
    fftw_complex *f = fftw_malloc(nb * sizeof *f);
    if (buf == NULL || f == NULL) {
        fftw_free(buf);
        fftw_free(f);
        return false;
    }
    memcpy(buf, qn, w * sizeof *buf);
    memset(buf + w, 0, (sp->nfft - w) * sizeof *buf);
    fftw_execute_dft_r2c(sp->r2c, buf, f);
    for (size_t k = 0; k < nb; k++)
        f[k] = sp->x[k] * conj(f[k]);
    fftw_execute_dft_c2r(sp->c2r, f, buf);
    for (size_t i = 0; i + w <= s->n; i++)
        dots[i] = buf[i] / (double)sp->nfft;
    fftw_free(buf);
    fftw_free(f);
    return true;
}

/* ---- window statistics ---- */

bool dm_znorm(const double *x, size_t w, double *out)
{
    if (w == 0)
        return false;
    double sum = 0, ss = 0;
    for (size_t k = 0; k < w; k++)
        sum += x[k];
    double m = sum / (double)w;
    for (size_t k = 0; k < w; k++)
        ss += (x[k] - m) * (x[k] - m);
    double sd = sqrt(ss / (double)w);
    if (!isfinite(sd) || sd < DM_PATTERN_FLAT)
        return false;
    for (size_t k = 0; k < w; k++)
        out[k] = (x[k] - m) / sd;
    return true;
}

/* The Pearson correlation of a window with the normalised query, computed the way a brute
 * force does (two passes over the window), clamped to [-1, 1]. */
static double direct_score(const double *x, const double *qn, size_t w)
{
    double sum = 0, ss = 0, dot = 0;
    for (size_t k = 0; k < w; k++)
        sum += x[k];
    double m = sum / (double)w;
    for (size_t k = 0; k < w; k++) {
        ss += (x[k] - m) * (x[k] - m);
        dot += (x[k] - m) * qn[k];
    }
    double r = dot / ((double)w * sqrt(ss / (double)w));
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

/* Mean and sum of squared deviations of the current window, with bounds on their errors
 * (em, em2); direct when they come from a two-pass computation, as the flat test needs. */
typedef struct {
    double m, m2, em, em2;
    bool direct;
} roll;

static void roll_direct(roll *r, const double *x, size_t w)
{
    double sum = 0, ss = 0, mag = 0;
    for (size_t k = 0; k < w; k++) {
        sum += x[k];
        mag += fabs(x[k]);
    }
    r->m = sum / (double)w;
    for (size_t k = 0; k < w; k++)
        ss += (x[k] - r->m) * (x[k] - r->m);
    r->m2 = ss;
    r->em = 2 * (double)w * EPS * mag / (double)w;
    r->em2 = 4 * (double)w * EPS * ss;
    r->direct = true;
}

/* Welford's update for a window sliding by one: out leaves, in enters. */
static void roll_step(roll *r, double out, double in, size_t w)
{
    double d = in - out;
    double m = r->m + d / (double)w;
    double t = d * ((in - m) + (out - r->m));
    double em = r->em + 2 * EPS * (fabs(m) + fabs(d) / (double)w);
    r->m2 += t;
    r->em2 += EPS * (fabs(r->m2) + 4 * fabs(t)) + fabs(d) * (em + r->em);
    r->em = em;
    r->m = m;
    r->direct = false;
}

/* ---- screening ---- */

/* Approximate scores of one series' qualifying windows first..first+m-1, with error
 * bounds; NAN marks a flat window. */
typedef struct {
    size_t first, m;
    double *s, *e;
} screen;

typedef struct {
    const double *qn;
    size_t w;
    double qsum; /* sum of qn: zero but for rounding; it couples each window's mean in */
} qinfo;

static void window_range(const dm_pseries *s, size_t w, int64_t start, int64_t end, screen *sc)
{
    sc->first = sc->m = 0;
    if (s->n < w)
        return;
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* first candle at or after start */
        size_t mid = lo + (hi - lo) / 2;
        if (s->ts[mid] < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t first = lo;
    lo = 0, hi = s->n;
    while (lo < hi) { /* first candle at or after end */
        size_t mid = lo + (hi - lo) / 2;
        if (s->ts[mid] < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= w && lo - w + 1 > first) {
        sc->first = first;
        sc->m = lo - w + 1 - first;
    }
}

static void score_windows(const dm_pseries *s, const spectrum *sp, const qinfo *qi,
                          const double *dots, screen *sc)
{
    size_t w = qi->w;
    double fw = (double)w;
    double fft_err = FFT_C * EPS * log2((double)sp->nfft) * sp->norm * sqrt(fw);
    roll r = {0};
    for (size_t k = 0; k < sc->m; k++) {
        size_t i = sc->first + k;
        const double *x = s->close + i;
        if (k % RESYNC == 0)
            roll_direct(&r, x, w);
        else
            roll_step(&r, x[-1], x[w - 1], w);
        double sd = sqrt(fmax(r.m2, 0) / fw);
        /* Near the flat threshold, or when cancellation ate the rolling value, decide on
         * the two-pass value a brute force would use. */
        if (!r.direct && (r.em2 > r.m2 / 4 || sd < 4 * DM_PATTERN_FLAT)) {
            roll_direct(&r, x, w);
            sd = sqrt(r.m2 / fw);
        }
        if (sd < DM_PATTERN_FLAT) {
            sc->s[k] = NAN;
            continue;
        }
        double rel = r.em2 / r.m2;
        double dz = fft_err + (fabs(r.m - sp->mean) + r.em) * fabs(qi->qsum);
        sc->s[k] = dots[i] / (fw * sd);
        sc->e[k] = dz / (fw * sd) + 2 * rel + 16 * fw * EPS;
    }
}

static bool screen_series(dm_pseries *s, const qinfo *qi, int64_t start, int64_t end,
                          screen *sc)
{
    window_range(s, qi->w, start, end, sc);
    if (sc->m == 0)
        return true;
    const spectrum *sp = spectrum_of(s);
    size_t nw = s->n - qi->w + 1;
    double *dots = malloc(nw * sizeof *dots);
    sc->s = malloc(sc->m * sizeof *sc->s);
    sc->e = malloc(sc->m * sizeof *sc->e);
    bool ok = sp && dots && sc->s && sc->e && sliding_dots(s, sp, qi->qn, qi->w, dots);
    if (ok)
        score_windows(s, sp, qi, dots, sc);
    free(dots);
    return ok;
}

/* ---- selection, order and the greedy walk ---- */

typedef struct {
    const char *symbol;
    size_t series, first;
    double s, e; /* score and its error bound; e is 0 once s is direct */
    bool exact;
} cand;

typedef struct {
    dm_pseries *const *series;
    size_t n;
    const dm_pattern_query *q;
    qinfo qi;
    size_t zone;
    screen *sc; /* one per series */
    cand *c;
    size_t nc;
} search;

static void rescore(const search *x, cand *c)
{
    if (c->exact)
        return;
    c->s = direct_score(x->series[c->series]->close + c->first, x->qi.qn, x->qi.w);
    c->e = 0;
    c->exact = true;
}

static int by_approx(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    return a->s > b->s ? -1 : a->s < b->s;
}

/* The contract's ranking, on direct scores. Two series of one symbol (two timeframes)
 * fall back to their order in the caller's array, so the order is always total. */
static int by_rank(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (fabs(a->s - b->s) > DM_PATTERN_TIE)
        return a->s > b->s ? -1 : 1;
    int c = strcmp(a->symbol, b->symbol);
    if (c != 0)
        return c;
    if (a->series != b->series)
        return a->series < b->series ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* The k-th largest of v[0..n) (k from 0), reordering v: a three-way quickselect, since
 * duplicate windows give runs of equal values. */
static double kth_largest(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double p = v[lo + (hi - lo) / 2], t;
        size_t lt = lo, i = lo, gt = hi + 1; /* [lo,lt) > p, [lt,i) == p, [gt,hi] < p */
        while (i < gt) {
            if (v[i] > p) {
                t = v[lt], v[lt++] = v[i], v[i++] = t;
            } else if (v[i] < p) {
                t = v[--gt], v[gt] = v[i], v[i] = t;
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt - 1;
        else if (k >= gt)
            lo = gt;
        else
            return p;
    }
    return v[k];
}

/* The lowest upper bound a window may have and still matter: below the threshold it
 * cannot qualify; below the lower bounds of limit * (2 * zone + 1) others, less the tie
 * band, the greedy walk stops before it. */
static bool select_cut(const search *x, double *cut)
{
    *cut = x->q->similar ? x->q->threshold : -INFINITY;
    size_t total = 0, reach = x->q->limit * (2 * x->zone + 1);
    for (size_t k = 0; k < x->n; k++)
        for (size_t j = 0; j < x->sc[k].m; j++)
            total += !isnan(x->sc[k].s[j]);
    if (total <= reach)
        return true;
    double *lo = malloc(total * sizeof *lo);
    if (lo == NULL)
        return false;
    size_t at = 0;
    for (size_t k = 0; k < x->n; k++)
        for (size_t j = 0; j < x->sc[k].m; j++)
            if (!isnan(x->sc[k].s[j]))
                lo[at++] = x->sc[k].s[j] - x->sc[k].e[j];
    double kth = kth_largest(lo, total, reach - 1);
    free(lo);
    *cut = fmax(*cut, kth - DM_PATTERN_TIE - SLACK);
    return true;
}

static bool gather(search *x, double cut)
{
    size_t nc = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < x->n; k++) {
            const screen *sc = &x->sc[k];
            for (size_t j = 0; j < sc->m; j++) {
                if (isnan(sc->s[j]) || sc->s[j] + sc->e[j] < cut)
                    continue;
                if (pass == 1)
                    x->c[nc] = (cand){.symbol = x->series[k]->symbol, .series = k,
                                      .first = sc->first + j, .s = sc->s[j], .e = sc->e[j]};
                nc++;
            }
        }
        if (pass == 0) {
            x->c = malloc((nc ? nc : 1) * sizeof *x->c);
            if (x->c == NULL)
                return false;
            x->nc = nc;
            nc = 0;
        }
    }
    return true;
}

/* Candidates c[a..b) whose bounds do not separate them by more than the tie band: their
 * order needs direct scores. A lone one needs its direct score only to tell whether it
 * clears the threshold. */
static void settle(const search *x, size_t a, size_t b)
{
    if (b - a > 1) {
        for (size_t k = a; k < b; k++)
            rescore(x, &x->c[k]);
        qsort(x->c + a, b - a, sizeof *x->c, by_rank);
    } else if (x->q->similar && x->c[a].s - x->c[a].e < x->q->threshold) {
        rescore(x, &x->c[a]);
    }
}

/* Sorts the candidates into the contract's ranking: by approximate score, then cut into
 * groups wherever every lower bound before the cut clears every upper bound after it by
 * more than the tie band, so only a group's own members need direct scores. */
static bool order(search *x)
{
    if (x->nc == 0)
        return true;
    qsort(x->c, x->nc, sizeof *x->c, by_approx);
    double *after = malloc((x->nc + 1) * sizeof *after); /* max upper bound from k on */
    if (after == NULL)
        return false;
    after[x->nc] = -INFINITY;
    for (size_t k = x->nc; k-- > 0;)
        after[k] = fmax(after[k + 1], x->c[k].s + x->c[k].e);
    size_t a = 0;
    double low = INFINITY;
    for (size_t k = 0; k < x->nc; k++) {
        low = fmin(low, x->c[k].s - x->c[k].e);
        if (low - DM_PATTERN_TIE - SLACK > after[k + 1] || k + 1 == x->nc) {
            settle(x, a, k + 1);
            a = k + 1;
            low = INFINITY;
        }
    }
    free(after);
    return true;
}

static bool push_hit(dm_pattern_hits *out, const cand *c)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        dm_pattern_hit *v = realloc(out->v, cap * sizeof *v);
        if (v == NULL)
            return false;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = (dm_pattern_hit){.series = c->series, .first = c->first, .score = c->s};
    return true;
}

/* The greedy walk: in rank order, take a window unless a taken one of its series starts
 * within zone of it. blocked[k] marks, per series, the starts already excluded. */
static bool take(search *x, dm_pattern_hits *out)
{
    unsigned char **blocked = calloc(x->n ? x->n : 1, sizeof *blocked);
    bool ok = blocked != NULL;
    for (size_t k = 0; ok && k < x->nc && out->n < x->q->limit; k++) {
        cand *c = &x->c[k];
        if (blocked[c->series] && blocked[c->series][c->first])
            continue;
        rescore(x, c);
        if (x->q->similar && c->s < x->q->threshold)
            continue;
        ok = push_hit(out, c);
        if (!ok || x->zone == 0)
            continue;
        size_t len = x->series[c->series]->n;
        if (blocked[c->series] == NULL && (blocked[c->series] = calloc(len, 1)) == NULL) {
            ok = false;
            continue;
        }
        size_t from = c->first > x->zone ? c->first - x->zone : 0;
        size_t to = c->first + x->zone < len ? c->first + x->zone : len - 1;
        memset(blocked[c->series] + from, 1, to - from + 1);
    }
    for (size_t k = 0; blocked && k < x->n; k++)
        free(blocked[k]);
    free(blocked);
    return ok;
}

/* ---- the search ---- */

static dm_code validate(const dm_pattern_query *q, double *qn, size_t *zone, dm_err *err)
{
    const char *f = q->field ? q->field : "pattern_vector";
    if (q->query == NULL || q->w < DM_PATTERN_W_MIN || q->w > DM_PATTERN_W_MAX)
        return dm_fail(err, DM_E_INVALID_FIELD, f, "%s has %zu values; %d to %d are allowed", f,
                       q->query ? q->w : 0, DM_PATTERN_W_MIN, DM_PATTERN_W_MAX);
    for (size_t k = 0; k < q->w; k++)
        if (!isfinite(q->query[k]))
            return dm_fail(err, DM_E_INVALID_FIELD, f, "%s[%zu] is not a finite number", f, k);
    if (!dm_znorm(q->query, q->w, qn))
        return dm_fail(err, DM_E_INVALID_FIELD, f,
                       "%s is flat (standard deviation below %g): it correlates with nothing",
                       f, DM_PATTERN_FLAT);
    size_t max = q->similar ? DM_PATTERN_SIMILAR_LIMIT_MAX : DM_PATTERN_FIND_LIMIT_MAX;
    if (q->limit < 1 || q->limit > max)
        return dm_fail(err, DM_E_INVALID_FIELD, "limit", "limit %zu is outside 1..%zu", q->limit,
                       max);
    if (q->similar && !(q->threshold >= -1 && q->threshold <= 1))
        return dm_fail(err, DM_E_INVALID_FIELD, "threshold", "threshold %g is outside -1..1",
                       q->threshold);
    if (q->zone > DM_PATTERN_ZONE_MAX)
        return dm_fail(err, DM_E_INVALID_FIELD, "zone", "zone %d is above %d", q->zone,
                       DM_PATTERN_ZONE_MAX);
    /* STUMPY's exclusion zone for matrix profiles: a quarter of the window, rounded up. */
    *zone = q->zone < 0 ? (q->w + 3) / 4 : (size_t)q->zone;
    return DM_OK;
}

dm_code dm_pattern_search(dm_pseries *const *series, size_t n, const dm_pattern_query *q,
                          dm_pattern_hits *out, dm_err *err)
{
    double qn[DM_PATTERN_W_MAX];
    search x = {.series = series, .n = n, .q = q};
    dm_code rc = validate(q, qn, &x.zone, err);
    if (rc != DM_OK)
        return rc;
    out->n = 0;
    double qsum = 0, cut = 0;
    for (size_t k = 0; k < q->w; k++)
        qsum += qn[k];
    x.qi = (qinfo){.qn = qn, .w = q->w, .qsum = qsum};
    x.sc = calloc(n ? n : 1, sizeof *x.sc);
    bool ok = x.sc != NULL;
    for (size_t k = 0; ok && k < n; k++)
        ok = screen_series(series[k], &x.qi, q->start, q->end, &x.sc[k]);
    ok = ok && select_cut(&x, &cut) && gather(&x, cut);
    for (size_t k = 0; x.sc && k < n; k++) {
        free(x.sc[k].s);
        free(x.sc[k].e);
    }
    free(x.sc);
    ok = ok && order(&x) && take(&x, out);
    free(x.c);
    if (!ok) {
        out->n = 0;
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory searching %zu series", n);
    }
    return DM_OK;
}

void dm_pattern_hits_free(dm_pattern_hits *h)
{
    free(h->v);
    *h = (dm_pattern_hits){0};
}
