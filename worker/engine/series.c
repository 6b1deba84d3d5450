#include "series.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "util/hash.h"
#include "util/log.h"

/* The newest stream sequence applied per (symbol, timeframe, open time), in a table that
 * forgets on collision: a forgotten entry only lets one late revision through until the
 * next notice of that candle, which the table then remembers again. */
#define SEQ_SLOTS (1u << 16)

typedef struct {
    uint64_t key;
    uint64_t seq;
} seq_slot;

typedef enum { TF_EMPTY, TF_LOADING, TF_READY } tf_state;

/* Commits heard while a timeframe is not loaded: PostgreSQL may not hold them yet when it
 * is read (another backend committed first), so the load adds those it lacks. Recent ones
 * only: PostgreSQL lags by milliseconds, not by thousands of commits. */
#define RECENT_MAX 20000

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    int64_t ts;
    double close;
} recent_row;

typedef struct {
    dm_candle c;
    uint64_t seq;
} pending_row;

typedef struct {
    pthread_rwlock_t lock;    /* series, n, state, pending, stale flags */
    pthread_mutex_t load_mu;  /* one loader at a time */
    tf_state state;
    dm_pseries **series;      /* sorted by symbol */
    size_t n, cap;
    bool *stale;              /* per series: PostgreSQL holds candles no notice carried */
    bool any_stale;
    bool rereading;           /* stale series are being read again */
    pending_row *pending;     /* heard while loading or rereading */
    char (*stale_later)[DM_SYMBOL_MAX + 1]; /* marked stale while loading: marked after it */
    recent_row *recent;       /* a ring of RECENT_MAX, heard while not loaded */
    size_t recent_head, n_recent;
    size_t n_stale_later, cap_stale_later;
    size_t n_pending, cap_pending;
} tf_slot;

struct dm_series_store {
    tf_slot tf[DM_TF_COUNT];
    size_t max_closes;
    atomic_size_t closes;
    _Atomic uint64_t heard[DM_TF_COUNT]; /* newest candle seq heard per timeframe */
    pthread_mutex_t seq_mu;
    seq_slot *seqs;
};

dm_series_store *dm_series_create(size_t max_closes)
{
    dm_series_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->seqs = calloc(SEQ_SLOTS, sizeof *s->seqs)) == NULL) {
        free(s);
        return NULL;
    }
    s->max_closes = max_closes;
    pthread_mutex_init(&s->seq_mu, NULL);
    /* Searches are many and notices steady: writers first, or a busy reader side would
     * keep commits out. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (int i = 0; i < DM_TF_COUNT; i++) {
        pthread_rwlock_init(&s->tf[i].lock, &attr);
        pthread_mutex_init(&s->tf[i].load_mu, NULL);
    }
    pthread_rwlockattr_destroy(&attr);
    return s;
}

static void clear_slot(dm_series_store *s, tf_slot *t)
{
    for (size_t i = 0; i < t->n; i++) {
        atomic_fetch_sub(&s->closes, dm_pseries_len(t->series[i]));
        dm_pseries_destroy(t->series[i]);
    }
    free(t->series);
    free(t->stale);
    free(t->pending);
    free(t->stale_later);
    t->series = NULL;
    t->stale = NULL;
    t->pending = NULL;
    t->stale_later = NULL;
    t->n = t->cap = t->n_pending = t->cap_pending = 0;
    t->n_stale_later = t->cap_stale_later = 0;
    t->any_stale = false;
    t->state = TF_EMPTY;
}

void dm_series_destroy(dm_series_store *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < DM_TF_COUNT; i++) {
        clear_slot(s, &s->tf[i]);
        free(s->tf[i].recent);
        pthread_rwlock_destroy(&s->tf[i].lock);
        pthread_mutex_destroy(&s->tf[i].load_mu);
    }
    pthread_mutex_destroy(&s->seq_mu);
    free(s->seqs);
    free(s);
}

/* ---- series sets --------------------------------------------------------------------- */

static size_t lower_bound(dm_pseries *const *v, size_t n, const char *symbol)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(dm_pseries_symbol(v[mid]), symbol) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

dm_pseries *dm_series_find(const dm_series_view *v, const char *symbol)
{
    size_t i = lower_bound(v->series, v->n, symbol);
    return i < v->n && strcmp(dm_pseries_symbol(v->series[i]), symbol) == 0 ? v->series[i] : NULL;
}

/* The series of symbol in t, created (in symbol order) when absent; NULL out of memory. */
static dm_pseries *series_of(tf_slot *t, const char *symbol, size_t *index)
{
    size_t i = lower_bound(t->series, t->n, symbol);
    if (i < t->n && strcmp(dm_pseries_symbol(t->series[i]), symbol) == 0) {
        *index = i;
        return t->series[i];
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        dm_pseries **v = realloc(t->series, cap * sizeof *v);
        bool *st = v ? realloc(t->stale, cap * sizeof *st) : NULL;
        if (v)
            t->series = v;
        if (st == NULL)
            return NULL;
        t->stale = st;
        t->cap = cap;
    }
    dm_pseries *p = dm_pseries_create(symbol);
    if (p == NULL)
        return NULL;
    memmove(&t->series[i + 1], &t->series[i], (t->n - i) * sizeof *t->series);
    memmove(&t->stale[i + 1], &t->stale[i], (t->n - i) * sizeof *t->stale);
    t->series[i] = p;
    t->stale[i] = false;
    t->n++;
    *index = i;
    return p;
}

static size_t index_of(const int64_t *ts, size_t n, int64_t t)
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

/* Adds or revises one close; false when over the bound or out of memory. A revision adds
 * nothing, so it is never over the bound. */
static bool put_close(dm_series_store *s, tf_slot *t, const char *symbol, int64_t ts, double close)
{
    size_t i;
    dm_pseries *p = series_of(t, symbol, &i);
    if (p == NULL)
        return false;
    size_t before = dm_pseries_len(p), at = index_of(dm_pseries_ts(p), before, ts);
    bool grows = at == before || dm_pseries_ts(p)[at] != ts;
    if (grows && atomic_load(&s->closes) >= s->max_closes)
        return false;
    if (!dm_pseries_upsert(p, ts, close))
        return false;
    atomic_fetch_add(&s->closes, dm_pseries_len(p) - before);
    return true;
}

/* ---- notices ------------------------------------------------------------------------- */

static uint64_t candle_key(const dm_candle *c)
{
    uint64_t h = dm_fnv1a(c->symbol, strlen(c->symbol));
    h ^= (uint64_t)c->tf * 0x9E3779B97F4A7C15ULL;
    h ^= (uint64_t)c->ts * 0xC2B2AE3D27D4EB4FULL;
    return h | 1; /* 0 marks an empty slot */
}

/* Whether the revision from `seq` is at least as new as the last one applied. */
static bool newest(dm_series_store *s, const dm_candle *c, uint64_t seq)
{
    uint64_t key = candle_key(c);
    seq_slot *slot = &s->seqs[key & (SEQ_SLOTS - 1)];
    pthread_mutex_lock(&s->seq_mu);
    bool ok = slot->key != key || seq >= slot->seq;
    if (ok) {
        slot->key = key;
        slot->seq = seq;
    }
    pthread_mutex_unlock(&s->seq_mu);
    return ok;
}

static void hold_pending(tf_slot *t, const dm_candle *c, uint64_t seq)
{
    if (t->n_pending == t->cap_pending) {
        size_t cap = t->cap_pending ? t->cap_pending * 2 : 256;
        pending_row *p = realloc(t->pending, cap * sizeof *p);
        if (p == NULL)
            return; /* the load then misses it: forget and load again is the cure */
        t->pending = p;
        t->cap_pending = cap;
    }
    t->pending[t->n_pending++] = (pending_row){*c, seq};
}

static void hold_recent(tf_slot *t, const dm_candle *c)
{
    if (t->recent == NULL && (t->recent = malloc(RECENT_MAX * sizeof *t->recent)) == NULL)
        return;
    recent_row *r = &t->recent[(t->recent_head + t->n_recent) % RECENT_MAX];
    if (t->n_recent == RECENT_MAX)
        t->recent_head = (t->recent_head + 1) % RECENT_MAX;
    else
        t->n_recent++;
    snprintf(r->symbol, sizeof r->symbol, "%s", c->symbol);
    r->ts = c->ts;
    r->close = c->close;
}

/* After a load: the recent commits PostgreSQL did not hold yet. Only candles it lacks are
 * added: one it holds is at least as new as the notice (PostgreSQL commits in stream order,
 * and a later revision's own notice comes after the load). */
static void apply_recent(dm_series_store *s, tf_slot *t)
{
    for (size_t k = 0; k < t->n_recent; k++) {
        const recent_row *r = &t->recent[(t->recent_head + k) % RECENT_MAX];
        dm_series_view v = {t->series, t->n};
        dm_pseries *p = dm_series_find(&v, r->symbol);
        size_t len = p ? dm_pseries_len(p) : 0, at = p ? index_of(dm_pseries_ts(p), len, r->ts) : 0;
        if (p == NULL || at == len || dm_pseries_ts(p)[at] != r->ts)
            put_close(s, t, r->symbol, r->ts, r->close);
    }
    free(t->recent);
    t->recent = NULL;
    t->recent_head = t->n_recent = 0;
}

void dm_series_note(dm_series_store *s, const dm_candle *c, const uint64_t *seqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t h = atomic_load(&s->heard[c[i].tf]);
        while (seqs[i] > h && !atomic_compare_exchange_weak(&s->heard[c[i].tf], &h, seqs[i]))
            ;
        tf_slot *t = &s->tf[c[i].tf];
        pthread_rwlock_wrlock(&t->lock);
        if (t->state == TF_EMPTY) {
            hold_recent(t, &c[i]);
        } else if (t->state == TF_LOADING) {
            hold_pending(t, &c[i], seqs[i]);
        } else if (t->state == TF_READY) {
            /* a series being read again may be swapped for a read that missed this commit */
            if (t->rereading)
                hold_pending(t, &c[i], seqs[i]);
            if (newest(s, &c[i], seqs[i]) && !put_close(s, t, c[i].symbol, c[i].ts, c[i].close)) {
                DM_WARN("series", "%s closes dropped: over the bound of %zu closes; they load again on next use",
                        dm_tf_name(c[i].tf), s->max_closes);
                clear_slot(s, t);
            }
        }
        pthread_rwlock_unlock(&t->lock);
    }
}

void dm_series_stale(dm_series_store *s, const char *symbol, dm_tf tf, uint64_t seq)
{
    (void)seq; /* PostgreSQL sent it, so it holds everything up to seq */
    tf_slot *t = &s->tf[tf];
    pthread_rwlock_wrlock(&t->lock);
    size_t i;
    if (t->state == TF_READY && series_of(t, symbol, &i)) {
        t->stale[i] = true;
        t->any_stale = true;
    } else if (t->state == TF_LOADING) {
        if (t->n_stale_later == t->cap_stale_later) {
            size_t cap = t->cap_stale_later ? t->cap_stale_later * 2 : 8;
            void *v = realloc(t->stale_later, cap * sizeof *t->stale_later);
            if (v) {
                t->stale_later = v;
                t->cap_stale_later = cap;
            }
        }
        if (t->n_stale_later < t->cap_stale_later)
            snprintf(t->stale_later[t->n_stale_later++], DM_SYMBOL_MAX + 1, "%s", symbol);
    }
    pthread_rwlock_unlock(&t->lock);
}

void dm_series_forget(dm_series_store *s)
{
    for (int i = 0; i < DM_TF_COUNT; i++) {
        tf_slot *t = &s->tf[i];
        pthread_mutex_lock(&t->load_mu);
        pthread_rwlock_wrlock(&t->lock);
        clear_slot(s, t);
        pthread_rwlock_unlock(&t->lock);
        pthread_mutex_unlock(&t->load_mu);
    }
    pthread_mutex_lock(&s->seq_mu);
    memset(s->seqs, 0, SEQ_SLOTS * sizeof *s->seqs);
    pthread_mutex_unlock(&s->seq_mu);
    for (int i = 0; i < DM_TF_COUNT; i++)
        atomic_store(&s->heard[i], 0);
}

uint64_t dm_series_heard(dm_series_store *s, dm_tf tf)
{
    return atomic_load(&s->heard[tf]);
}

size_t dm_series_closes(dm_series_store *s)
{
    return atomic_load(&s->closes);
}

/* ---- loads --------------------------------------------------------------------------- */

typedef struct {
    dm_series_store *s;
    tf_slot *t;
} load_ctx;

static bool load_sink(void *ctx, const char *symbol, int64_t ts, double close)
{
    load_ctx *l = ctx;
    pthread_rwlock_wrlock(&l->t->lock);
    bool ok = put_close(l->s, l->t, symbol, ts, close);
    pthread_rwlock_unlock(&l->t->lock);
    return ok;
}

/* Applies what was heard during the load, in order. */
static void apply_pending(dm_series_store *s, tf_slot *t)
{
    for (size_t i = 0; i < t->n_pending; i++)
        if (newest(s, &t->pending[i].c, t->pending[i].seq))
            put_close(s, t, t->pending[i].c.symbol, t->pending[i].c.ts, t->pending[i].c.close);
    free(t->pending);
    t->pending = NULL;
    t->n_pending = t->cap_pending = 0;
    for (size_t i = 0, k; i < t->n_stale_later; i++)
        if (series_of(t, t->stale_later[i], &k)) {
            t->stale[k] = true;
            t->any_stale = true;
        }
    free(t->stale_later);
    t->stale_later = NULL;
    t->n_stale_later = t->cap_stale_later = 0;
}

static dm_bstatus load_all(dm_series_store *s, tf_slot *t, dm_tf tf, dm_series_reader read,
                           void *ctx, dm_err *err)
{
    pthread_rwlock_wrlock(&t->lock);
    clear_slot(s, t);
    t->state = TF_LOADING;
    pthread_rwlock_unlock(&t->lock);
    load_ctx l = {s, t};
    dm_bstatus st = read(ctx, tf, NULL, load_sink, &l, err);
    pthread_rwlock_wrlock(&t->lock);
    if (st == DM_BS_OK) {
        apply_recent(s, t);
        apply_pending(s, t);
        t->state = TF_READY;
        DM_INFO("series", "%s: %zu series loaded, %zu closes held in all", dm_tf_name(tf), t->n,
                dm_series_closes(s));
    } else {
        clear_slot(s, t);
    }
    pthread_rwlock_unlock(&t->lock);
    return st;
}

typedef struct {
    dm_pseries *p;
} one_ctx;

static bool one_sink(void *ctx, const char *symbol, int64_t ts, double close)
{
    (void)symbol;
    return dm_pseries_upsert(((one_ctx *)ctx)->p, ts, close);
}

/* Reads each stale series again from PostgreSQL and swaps it in, then applies again what
 * was heard meanwhile (a revision already applied passes newest() again). */
static dm_bstatus reload_stale(dm_series_store *s, tf_slot *t, dm_tf tf, dm_series_reader read,
                               void *ctx, dm_err *err)
{
    pthread_rwlock_wrlock(&t->lock);
    size_t n = t->n;
    char (*names)[DM_SYMBOL_MAX + 1] = malloc((n ? n : 1) * sizeof *names);
    t->rereading = names != NULL;
    size_t k = 0;
    /* The flags are taken now: one raised while the read runs stays for the next acquire. */
    for (size_t i = 0; names && i < n; i++)
        if (t->stale[i]) {
            strcpy(names[k++], dm_pseries_symbol(t->series[i]));
            t->stale[i] = false;
        }
    pthread_rwlock_unlock(&t->lock);
    if (names == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    dm_bstatus st = DM_BS_OK;
    size_t j = 0;
    for (; j < k && st == DM_BS_OK; j++) {
        one_ctx o = {dm_pseries_create(names[j])};
        st = o.p ? read(ctx, tf, names[j], one_sink, &o, err) : DM_BS_TRANSIENT;
        pthread_rwlock_wrlock(&t->lock);
        size_t i;
        dm_pseries *old = st == DM_BS_OK ? series_of(t, names[j], &i) : NULL;
        if (old) {
            atomic_fetch_sub(&s->closes, dm_pseries_len(old));
            atomic_fetch_add(&s->closes, dm_pseries_len(o.p));
            dm_pseries_destroy(old);
            t->series[i] = o.p;
            o.p = NULL;
        } else if (st != DM_BS_OK && t->state == TF_READY && series_of(t, names[j], &i)) {
            t->stale[i] = true; /* not read again: still stale */
        }
        pthread_rwlock_unlock(&t->lock);
        dm_pseries_destroy(o.p);
    }
    pthread_rwlock_wrlock(&t->lock);
    for (size_t i; j < k && t->state == TF_READY; j++) /* not reached after a failure: still stale */
        if (series_of(t, names[j], &i))
            t->stale[i] = true;
    free(names);
    apply_pending(s, t); /* none when the timeframe was dropped meanwhile */
    t->rereading = false;
    t->any_stale = false;
    for (size_t i = 0; i < t->n; i++)
        t->any_stale = t->any_stale || t->stale[i];
    pthread_rwlock_unlock(&t->lock);
    return st;
}

dm_bstatus dm_series_acquire(dm_series_store *s, dm_tf tf, dm_series_reader read, void *ctx,
                             dm_series_view *view, dm_err *err)
{
    tf_slot *t = &s->tf[tf];
    for (int attempt = 0; attempt < 3; attempt++) {
        pthread_rwlock_rdlock(&t->lock);
        if (t->state == TF_READY && !t->any_stale) {
            view->series = t->series;
            view->n = t->n;
            return DM_BS_OK; /* the read lock is the caller's until dm_series_release */
        }
        pthread_rwlock_unlock(&t->lock);
        pthread_mutex_lock(&t->load_mu);
        pthread_rwlock_rdlock(&t->lock);
        tf_state state = t->state;
        bool stale = t->any_stale;
        pthread_rwlock_unlock(&t->lock);
        dm_bstatus st = DM_BS_OK;
        if (state != TF_READY)
            st = load_all(s, t, tf, read, ctx, err);
        else if (stale)
            st = reload_stale(s, t, tf, read, ctx, err);
        pthread_mutex_unlock(&t->load_mu);
        if (st != DM_BS_OK)
            return st;
    }
    return dm_bfail(err, DM_BS_TRANSIENT, "", "%s closes keep changing under the load; try again",
                   dm_tf_name(tf));
}

void dm_series_release(dm_series_store *s, dm_tf tf)
{
    pthread_rwlock_unlock(&s->tf[tf].lock);
}

/* ---- windows around written candles ------------------------------------------------- */

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    int64_t ts[2]; /* first and last open time written */
} touched;

/* Copies the closes around one touched series (under the caller's lock); false: gone. */
static bool copy_around(tf_slot *t, const touched *k, size_t w, int64_t **ts, double **cl, size_t *n,
                        size_t *first, size_t *last)
{
    dm_series_view v = {t->series, t->n};
    dm_pseries *p = dm_series_find(&v, k->symbol);
    if (p == NULL)
        return false;
    const int64_t *all = dm_pseries_ts(p);
    size_t len = dm_pseries_len(p), lo = index_of(all, len, k->ts[0]), hi = index_of(all, len, k->ts[1]);
    if (hi >= len)
        hi = len - 1;
    size_t from = lo >= w - 1 ? lo - (w - 1) : 0, to = hi + w - 1 < len ? hi + w - 1 : len - 1;
    *n = to - from + 1;
    *ts = malloc(*n * sizeof **ts);
    *cl = malloc(*n * sizeof **cl);
    if (*ts == NULL || *cl == NULL)
        return false;
    memcpy(*ts, all + from, *n * sizeof **ts);
    memcpy(*cl, dm_pseries_close(p) + from, *n * sizeof **cl);
    *first = lo - from;
    *last = hi - from;
    return true;
}

/* Applies the candles of tf under the write lock; collects the series touched. */
static size_t apply_tf(dm_series_store *s, tf_slot *t, dm_tf tf, const dm_candle *c, const uint64_t *seqs,
                       size_t n, touched *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].tf != tf || (seqs && !newest(s, &c[i], seqs[i])) || !put_close(s, t, c[i].symbol, c[i].ts, c[i].close))
            continue;
        size_t j = 0;
        while (j < k && strcmp(out[j].symbol, c[i].symbol) != 0)
            j++;
        if (j == k) {
            snprintf(out[k].symbol, sizeof out[k].symbol, "%s", c[i].symbol);
            out[k].ts[0] = out[k].ts[1] = c[i].ts;
            k++;
        }
        out[j].ts[0] = c[i].ts < out[j].ts[0] ? c[i].ts : out[j].ts[0];
        out[j].ts[1] = c[i].ts > out[j].ts[1] ? c[i].ts : out[j].ts[1];
    }
    return k;
}

static dm_bstatus around_tf(dm_series_store *s, dm_tf tf, dm_series_reader read, void *ctx, const dm_candle *c,
                            const uint64_t *seqs, size_t n, size_t w, dm_window_sink sink, void *sink_ctx,
                            dm_err *err)
{
    dm_series_view v;
    dm_bstatus st = dm_series_acquire(s, tf, read, ctx, &v, err); /* loads tf when needed */
    if (st != DM_BS_OK)
        return st;
    dm_series_release(s, tf);
    tf_slot *t = &s->tf[tf];
    touched *k = calloc(n, sizeof *k);
    if (k == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    pthread_rwlock_wrlock(&t->lock);
    size_t nk = t->state == TF_READY ? apply_tf(s, t, tf, c, seqs, n, k) : 0;
    bool ready = t->state == TF_READY;
    pthread_rwlock_unlock(&t->lock);
    if (!ready)
        st = dm_bfail(err, DM_BS_TRANSIENT, "", "%s closes were dropped while writing: try again", dm_tf_name(tf));
    for (size_t i = 0; i < nk && st == DM_BS_OK; i++) {
        int64_t *ts = NULL;
        double *cl = NULL;
        size_t m = 0, first = 0, last = 0;
        pthread_rwlock_rdlock(&t->lock);
        bool ok = copy_around(t, &k[i], w, &ts, &cl, &m, &first, &last);
        pthread_rwlock_unlock(&t->lock);
        st = ok ? sink(sink_ctx, k[i].symbol, tf, ts, cl, m, first, last, err) : st;
        free(ts);
        free(cl);
    }
    free(k);
    return st;
}

dm_bstatus dm_series_write_around(dm_series_store *s, dm_series_reader read, void *ctx, const dm_candle *c,
                                  const uint64_t *seqs, size_t n, size_t w, dm_window_sink sink,
                                  void *sink_ctx, dm_err *err)
{
    bool seen[DM_TF_COUNT] = {false};
    for (size_t i = 0; i < n; i++)
        seen[c[i].tf] = true;
    dm_bstatus st = DM_BS_OK;
    for (int tf = 0; tf < DM_TF_COUNT && st == DM_BS_OK; tf++)
        if (seen[tf])
            st = around_tf(s, (dm_tf)tf, read, ctx, c, seqs, n, w, sink, sink_ctx, err);
    return st;
}
