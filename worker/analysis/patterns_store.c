/* The pattern engine's store: series of closes, the spectrum each memoises for searches,
 * and the FFT plans both are built with. The search itself is in patterns.c. */
#include "patterns_store.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dm_pseries {
    char *symbol;
    int64_t *ts;
    double *close;
    size_t n, cap;
    pthread_mutex_t memo_mu; /* guards building memo; upserts run alone (caller's lock) */
    dm_pspectrum *memo;
};

/* Made once, then only executed (fftw_execute is thread-safe, the planner is not; these
 * are the only plans this file makes). Owned by the process, never destroyed. */
static fftw_plan plan_r2c, plan_c2r;
static pthread_once_t plans_once = PTHREAD_ONCE_INIT;

static void make_plans(void)
{
    double *b = fftw_malloc(BLOCK * sizeof *b);
    fftw_complex *f = fftw_malloc(BINS * sizeof *f);
    if (b && f) {
        /* FFTW_ESTIMATE leaves the arrays alone while planning. */
        plan_r2c = fftw_plan_dft_r2c_1d(BLOCK, b, f, FFTW_ESTIMATE);
        plan_c2r = fftw_plan_dft_c2r_1d(BLOCK, f, b, FFTW_ESTIMATE);
    }
    fftw_free(b);
    fftw_free(f);
}

static bool plans_ready(void)
{
    pthread_once(&plans_once, make_plans);
    return plan_r2c && plan_c2r;
}

static void spectrum_free(dm_pspectrum *sp)
{
    if (sp == NULL)
        return;
    free(sp->mean);
    free(sp->norm);
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

/* The first index whose time is at or after t. */
static size_t lower_bound(const int64_t *ts, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool dm_pseries_upsert(dm_pseries *s, int64_t ts, double close)
{
    if (!isfinite(close))
        return false;
    size_t at = s->n > 0 && ts <= s->ts[s->n - 1] ? lower_bound(s->ts, s->n, ts) : s->n;
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

size_t dm_pseries_len(const dm_pseries *s)
{
    return s->n;
}
const char *dm_pseries_symbol(const dm_pseries *s)
{
    return s->symbol;
}
const int64_t *dm_pseries_ts(const dm_pseries *s)
{
    return s->ts;
}
const double *dm_pseries_close(const dm_pseries *s)
{
    return s->close;
}

size_t dm_pseries_bytes(const dm_pseries *s)
{
    size_t b = sizeof *s + strlen(s->symbol) + 1 + s->cap * (sizeof *s->ts + sizeof *s->close);
    if (s->memo)
        b +=
            sizeof *s->memo + s->memo->nblocks * (2 * sizeof(double) + BINS * sizeof(fftw_complex));
    return b;
}

size_t dm_pseries_windows(const dm_pseries *s, size_t w, int64_t start, int64_t end, size_t *m)
{
    *m = 0;
    if (s->n < w)
        return 0;
    size_t first = lower_bound(s->ts, s->n, start), lo = lower_bound(s->ts, s->n, end);
    if (lo >= w && lo - w + 1 > first)
        *m = lo - w + 1 - first;
    return first;
}

static void transform_block(const dm_pseries *s, dm_pspectrum *sp, size_t b, double *buf)
{
    size_t from = b * STEP, len = s->n - from < BLOCK ? s->n - from : BLOCK;
    double sum = 0, sq = 0;
    for (size_t k = 0; k < len; k++)
        sum += s->close[from + k];
    /* Without the mean, a USD/JPY series near 150 would swamp the FFT's precision. */
    sp->mean[b] = sum / (double)len;
    for (size_t k = 0; k < len; k++) {
        buf[k] = s->close[from + k] - sp->mean[b];
        sq += buf[k] * buf[k];
    }
    memset(buf + len, 0, (BLOCK - len) * sizeof *buf);
    sp->norm[b] = sqrt(sq);
    fftw_execute_dft_r2c(plan_r2c, buf, sp->x + b * BINS);
}

static dm_pspectrum *spectrum_build(const dm_pseries *s)
{
    dm_pspectrum *sp = calloc(1, sizeof *sp);
    double *buf = fftw_malloc(BLOCK * sizeof *buf);
    if (sp == NULL || buf == NULL || !plans_ready())
        goto fail;
    sp->nblocks = (s->n + STEP - 1) / STEP;
    sp->mean = malloc(sp->nblocks * sizeof *sp->mean);
    sp->norm = malloc(sp->nblocks * sizeof *sp->norm);
    sp->x = fftw_malloc(sp->nblocks * BINS * sizeof *sp->x);
    if (sp->mean == NULL || sp->norm == NULL || sp->x == NULL)
        goto fail;
    for (size_t b = 0; b < sp->nblocks; b++)
        transform_block(s, sp, b, buf);
    fftw_free(buf);
    return sp;
fail:
    fftw_free(buf);
    spectrum_free(sp);
    return NULL;
}

const dm_pspectrum *dm_pseries_spectrum(dm_pseries *s)
{
    pthread_mutex_lock(&s->memo_mu);
    if (s->memo == NULL)
        s->memo = spectrum_build(s);
    const dm_pspectrum *sp = s->memo;
    pthread_mutex_unlock(&s->memo_mu);
    return sp;
}

bool dm_pscratch_init(dm_pscratch *sc, const double *qn, size_t w)
{
    sc->q = fftw_malloc(BINS * sizeof *sc->q);
    sc->f = fftw_malloc(BINS * sizeof *sc->f);
    sc->out = fftw_malloc(BLOCK * sizeof *sc->out);
    if (sc->q == NULL || sc->f == NULL || sc->out == NULL || !plans_ready())
        return false;
    memcpy(sc->out, qn, w * sizeof *sc->out);
    memset(sc->out + w, 0, (BLOCK - w) * sizeof *sc->out);
    fftw_execute_dft_r2c(plan_r2c, sc->out, sc->q);
    return true;
}

void dm_pscratch_free(dm_pscratch *sc)
{
    fftw_free(sc->q);
    fftw_free(sc->f);
    fftw_free(sc->out);
}

void dm_pscratch_dots(const dm_pspectrum *sp, size_t b, dm_pscratch *sc)
{
    const fftw_complex *x = sp->x + b * BINS;
    for (size_t k = 0; k < BINS; k++)
        sc->f[k] = x[k] * conj(sc->q[k]);
    fftw_execute_dft_c2r(plan_c2r, sc->f, sc->out);
}
