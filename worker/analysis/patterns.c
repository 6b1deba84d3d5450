#include "patterns_store.h"

#include <float.h>
#include <math.h>
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
 *    the score is computed directly from the closes, as a brute force would.
 * The FFT runs over overlapping blocks of BLOCK closes (overlap-save): the transforms stay
 * in cache, one plan size serves every series, one query transform serves every block,
 * and each block's error bound depends on its own values only. */

#define EPS DBL_EPSILON
/* FFT correlation error, per output: |error| <= FFT_C * eps * log2(N) * |x|_2 *
 * (2 |q|_2 + |q|_1). From the FFT's norm-wise error, c * eps * log2(N) relative in the 2-norm
 * (Higham, Accuracy and Stability of Numerical Algorithms, 24.1: c is about 5.5 for radix 2),
 * applied to the two forward transforms (Cauchy-Schwarz) and to the inverse one, whose
 * input is bounded by |x|_2 |q|_1. On the real files and on random walks the largest error
 * seen is below 1% of this bound; a bound too loose only costs direct rescoring. */
#define FFT_C 8.0
/* Rolling statistics restart from a direct two-pass computation this often, so their
 * error cannot drift far from the window they describe. */
#define RESYNC 64
/* Two direct computations of one score (ours, a client's brute force) differ by rounding
 * only; this covers that, so the tie band is never cut short. */
#define SLACK 1e-12

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
    r->em = 2 * EPS * mag;
    r->em2 = 4 * (double)w * EPS * ss;
    r->direct = true;
}

/* Welford's update for a window sliding by one: out leaves, in enters. iw is 1 / w
 * (a product, not a division, on the hot path; its rounding is in the bounds). */
static void roll_step(roll *r, double out, double in, double iw)
{
    double d = in - out;
    double m = r->m + d * iw;
    double t = d * ((in - m) + (out - r->m));
    double em = r->em + 4 * EPS * (fabs(m) + fabs(d) * iw);
    r->m2 += t;
    r->em2 += EPS * (fabs(r->m2) + 4 * fabs(t)) + fabs(d) * (em + r->em);
    r->em = em;
    r->m = m;
    r->direct = false;
}

/* ---- screening and selection ---- */

typedef struct {
    const char *symbol;
    size_t series, first;
    double s, e; /* score and its error bound; e is 0 once s is direct */
    bool exact;
    bool open; /* its tie run may go on among windows the screening dropped */
} cand;

/* Keeps what may still matter while screening streams windows in: a min-heap of the
 * `reach` largest lower bounds so far, and the windows whose upper bound clears the cut
 * those imply. The cut only rises, so nothing dropped on the way would survive the end.
 * Leaving a window out of the heap only lowers the cut, which stays safe. */
typedef struct {
    double floor; /* the threshold in similar mode, else -inf */
    size_t reach; /* limit * (2 * zone + 1): the most windows the greedy walk can reach */
    double *heap;
    size_t nheap, heap_cap;
    cand *c;
    size_t nc, cap;
    bool oom;
} sink;

static double cut(const sink *k)
{
    double c = k->nheap < k->reach ? -INFINITY : k->heap[0] - DM_PATTERN_TIE - SLACK;
    return c > k->floor ? c : k->floor; /* not fmax: this runs for every window */
}

static void heap_offer(sink *k, double lo)
{
    double *h = k->heap;
    size_t i;
    if (k->reach == SIZE_MAX) /* keeping every window */
        return;
    if (k->nheap == k->reach) {
        if (lo <= h[0])
            return;
        for (i = 0;;) { /* the root goes, lo sifts down */
            size_t c = 2 * i + 1;
            if (c >= k->nheap)
                break;
            if (c + 1 < k->nheap && h[c + 1] < h[c])
                c++;
            if (h[c] >= lo)
                break;
            h[i] = h[c];
            i = c;
        }
        h[i] = lo;
        return;
    }
    if (k->nheap == k->heap_cap) {
        size_t cap = k->heap_cap ? k->heap_cap * 2 : 256;
        cap = cap < k->reach ? cap : k->reach;
        if ((h = realloc(k->heap, cap * sizeof *h)) == NULL) {
            k->oom = true;
            return;
        }
        k->heap = h;
        k->heap_cap = cap;
    }
    for (i = k->nheap++; i > 0 && h[(i - 1) / 2] > lo; i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = lo;
}

static void prune(sink *k)
{
    double c = cut(k);
    size_t kept = 0;
    for (size_t j = 0; j < k->nc; j++)
        if (k->c[j].s + k->c[j].e >= c)
            k->c[kept++] = k->c[j];
    k->nc = kept;
}

static void offer(sink *k, const cand *c)
{
    if (c->s + c->e < cut(k))
        return;
    heap_offer(k, c->s - c->e);
    if (k->nc == k->cap) {
        prune(k);
        if (k->nc >= k->cap / 2) { /* keep pruning rare */
            size_t cap = k->cap ? k->cap * 2 : 1024;
            cand *v = realloc(k->c, cap * sizeof *v);
            if (v == NULL) {
                k->oom = true;
                return;
            }
            k->c = v;
            k->cap = cap;
        }
    }
    k->c[k->nc++] = *c;
}

typedef struct {
    const double *qn;
    size_t w;
    double qsum;  /* sum of qn: zero but for rounding; it couples each window's mean in */
    double qnorm; /* 2 |qn|_2 + |qn|_1, for the FFT's error bound */
} qinfo;

/* Offers windows first..first+m-1 of series idx with approximate scores and bounds. */
static void score_windows(const dm_pseries *s, size_t idx, const dm_pspectrum *sp, const qinfo *qi,
                          dm_pscratch *sc, size_t first, size_t m, sink *k)
{
    size_t w = qi->w, block = SIZE_MAX;
    double fw = (double)w, iw = 1 / fw, fft_err = 0;
    const double *close = dm_pseries_close(s);
    const char *symbol = dm_pseries_symbol(s);
    roll r = {0};
    for (size_t j = 0; j < m && !k->oom; j++) {
        size_t i = first + j;
        const double *x = close + i;
        if (i / STEP != block) {
            block = i / STEP;
            dm_pscratch_dots(sp, block, sc);
            fft_err = FFT_C * EPS * log2(BLOCK) * sp->norm[block] * qi->qnorm;
        }
        if (j % RESYNC == 0)
            roll_direct(&r, x, w);
        else
            roll_step(&r, x[-1], x[w - 1], iw);
        double sd = r.m2 > 0 ? sqrt(r.m2 * iw) : 0;
        /* Near the flat threshold, or when cancellation ate the rolling value, decide on
         * the two-pass value, computed as a brute force would. */
        if (r.direct || 4 * r.em2 > r.m2 || sd < 4 * DM_PATTERN_FLAT) {
            if (!r.direct)
                roll_direct(&r, x, w);
            sd = sqrt(r.m2 / fw);
        }
        if (sd < DM_PATTERN_FLAT)
            continue;
        double inv = 1 / (fw * sd); /* the one division per window */
        double dz = fft_err + (fabs(r.m - sp->mean[block]) + r.em) * fabs(qi->qsum);
        double dot = sc->out[i - block * STEP] * (1.0 / BLOCK);
        cand c = {.symbol = symbol, .series = idx, .first = i, .s = dot * inv};
        /* 2 em2 / m2 bounds the relative error of sd (and of 1 / sd) */
        c.e = dz * inv * (1 + 4 * EPS) + 2 * r.em2 * inv * inv * fw + 16 * fw * EPS;
        offer(k, &c);
    }
}

static bool screen_series(dm_pseries *s, size_t idx, const qinfo *qi, const dm_pattern_query *q,
                          dm_pscratch *sc, sink *k)
{
    size_t m, first = dm_pseries_windows(s, qi->w, q->start, q->end, &m);
    if (m == 0)
        return true;
    const dm_pspectrum *sp = dm_pseries_spectrum(s);
    if (sp == NULL)
        return false;
    score_windows(s, idx, sp, qi, sc, first, m, k);
    return !k->oom;
}

/* ---- order and the greedy walk ---- */

typedef struct {
    dm_pseries *const *series;
    size_t n;
    const dm_pattern_query *q;
    qinfo qi;
    size_t zone;
    cand *c; /* the candidates the screening kept */
    size_t nc;
    double floor, cut; /* the threshold (or -inf) and the screening's final cut */
} search;

static void rescore(const search *x, cand *c)
{
    if (c->exact)
        return;
    c->s = direct_score(dm_pseries_close(x->series[c->series]) + c->first, x->qi.qn, x->qi.w);
    c->e = 0;
    c->exact = true;
}

static int by_score(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    return a->s > b->s ? -1 : a->s < b->s;
}

/* Order within a tie run. Two series of one symbol (two timeframes) fall back to their
 * order in the caller's array, so the order is always total. */
static int by_place(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    int c = strcmp(a->symbol, b->symbol);
    if (c != 0)
        return c;
    if (a->series != b->series)
        return a->series < b->series ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* Whether a tie run whose lowest score is low may continue below the screening's cut. */
static bool near_cut(const search *x, double low)
{
    return x->cut > x->floor && low <= x->cut + DM_PATTERN_TIE + SLACK;
}

/* Candidates c[a..b) whose bounds do not separate them by more than the tie band: their
 * order needs direct scores, then each tie run (scores each within the band of the next)
 * goes in place order. A lone one needs its direct score only to tell whether it clears
 * the threshold or lies within the band of a dropped window (below the cut). */
static void settle(search *x, size_t a, size_t b)
{
    cand *c = x->c;
    if (b - a == 1) {
        double low = c[a].s - c[a].e;
        if ((x->q->similar && low < x->q->threshold) || near_cut(x, low))
            rescore(x, &c[a]);
        c[a].open = near_cut(x, c[a].s);
        return;
    }
    for (size_t k = a; k < b; k++)
        rescore(x, &c[k]);
    qsort(c + a, b - a, sizeof *c, by_score);
    /* Windows below the threshold are no part of the ranking, nor of its tie runs. */
    while (x->q->similar && b > a && c[b - 1].s < x->q->threshold)
        c[--b].open = false;
    for (size_t r = a, e; r < b; r = e) {
        for (e = r + 1; e < b && c[e - 1].s - c[e].s <= DM_PATTERN_TIE;)
            e++;
        bool open = near_cut(x, c[e - 1].s);
        qsort(c + r, e - r, sizeof *c, by_place);
        for (size_t k = r; k < e; k++)
            c[k].open = open;
    }
}

/* Sorts the candidates into the contract's ranking: by approximate score, then cut into
 * groups wherever every lower bound before the cut clears every upper bound after it by
 * more than the tie band, so only a group's own members need direct scores. */
static bool order(search *x)
{
    if (x->nc == 0)
        return true;
    qsort(x->c, x->nc, sizeof *x->c, by_score);
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

typedef enum { WALK_DONE, WALK_OOM, WALK_WIDEN } walk;

/* The greedy walk: in rank order, take a window unless a taken one of its series starts
 * within zone of it. blocked[k] marks, per series, the starts already excluded. Reaching a
 * tie run that may go on below the cut means the screening dropped too much: WALK_WIDEN. */
static walk take(search *x, dm_pattern_hits *out)
{
    unsigned char **blocked = calloc(x->n ? x->n : 1, sizeof *blocked);
    walk rc = blocked ? WALK_DONE : WALK_OOM;
    for (size_t k = 0; rc == WALK_DONE && k < x->nc && out->n < x->q->limit; k++) {
        cand *c = &x->c[k];
        if (c->open) {
            rc = WALK_WIDEN;
            break;
        }
        if (blocked[c->series] && blocked[c->series][c->first])
            continue;
        rescore(x, c);
        if (x->q->similar && c->s < x->q->threshold)
            continue;
        size_t len = dm_pseries_len(x->series[c->series]);
        if (!push_hit(out, c) ||
            (x->zone > 0 && !blocked[c->series] && !(blocked[c->series] = calloc(len, 1)))) {
            rc = WALK_OOM;
            break;
        }
        if (x->zone == 0)
            continue;
        size_t from = c->first > x->zone ? c->first - x->zone : 0;
        size_t to = c->first + x->zone < len ? c->first + x->zone : len - 1;
        memset(blocked[c->series] + from, 1, to - from + 1);
    }
    for (size_t k = 0; blocked && k < x->n; k++)
        free(blocked[k]);
    free(blocked);
    return rc;
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
                       "%s is flat (standard deviation below %g): it correlates with nothing", f,
                       DM_PATTERN_FLAT);
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

/* Screens every series keeping what `reach` windows imply, then orders and walks. */
static walk run(search *x, size_t reach, dm_pattern_hits *out)
{
    sink k = {.floor = x->q->similar ? x->q->threshold : -INFINITY, .reach = reach};
    dm_pscratch sc;
    bool ok = dm_pscratch_init(&sc, x->qi.qn, x->qi.w);
    for (size_t j = 0; ok && j < x->n; j++)
        ok = screen_series(x->series[j], j, &x->qi, x->q, &sc, &k);
    dm_pscratch_free(&sc);
    prune(&k);
    x->c = k.c;
    x->nc = k.nc;
    x->floor = k.floor;
    x->cut = cut(&k);
    free(k.heap);
    walk rc = ok && order(x) ? take(x, out) : WALK_OOM;
    free(x->c);
    return rc;
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
    double qsum = 0, q1 = 0;
    for (size_t k = 0; k < q->w; k++) {
        qsum += qn[k];
        q1 += fabs(qn[k]);
    }
    /* |qn|_2 is sqrt(w): qn has population variance 1 */
    x.qi = (qinfo){.qn = qn, .w = q->w, .qsum = qsum, .qnorm = 2 * sqrt((double)q->w) + q1};
    walk w = run(&x, q->limit * (2 * x.zone + 1), out);
    if (w == WALK_WIDEN) { /* scores chained within the tie band across the cut: rare */
        out->n = 0;
        w = run(&x, SIZE_MAX, out);
    }
    if (w != WALK_DONE) {
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
