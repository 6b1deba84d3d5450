#include "refresh.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/correl.h"
#include "engine/fallback.h"
#include "util/backoff.h"
#include "util/log.h"
#include "lease.h"

#define TICK_MS 1000

struct dm_refresh {
    dm_refresh_config cfg;
    dm_fallback_config loader; /* how the store loads closes */
    dm_lease *leases[DM_TF_COUNT];
    int64_t done[DM_TF_COUNT]; /* the last interval known stored, per timeframe */
    int64_t warned_ms[DM_TF_COUNT]; /* a failure is logged once a minute, not every tick */
    pthread_t thread;
    atomic_bool stop;
};

/* A computed window, owning its strings. */
typedef struct {
    dm_corr_snapshot sn;
    char (*names)[DM_SYMBOL_MAX + 1];
    const char **symbols;
    dm_corr_pair *pairs;
} snapshot;

static void snapshot_free(snapshot *s)
{
    free(s->names);
    free(s->symbols);
    free(s->pairs);
}

/* Every pair with a correlation and every symbol with candles in the window; the store's
 * series are sorted by symbol, so i < j is a < b. */
static dm_code collect(const dm_corr_matrix *m, const dm_corr_series *cs, size_t n, snapshot *s, dm_err *err)
{
    s->names = calloc(n ? n : 1, sizeof *s->names);
    s->symbols = calloc(n ? n : 1, sizeof *s->symbols);
    s->pairs = calloc(n * n / 2 + 1, sizeof *s->pairs);
    if (!s->names || !s->symbols || !s->pairs)
        return dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        snprintf(s->names[i], sizeof s->names[i], "%s", cs[i].symbol);
        if (m->in_window[i])
            s->symbols[s->sn.n_symbols++] = s->names[i];
        for (size_t j = i + 1; j < n; j++) {
            size_t c = dm_corr_cell(m, i, j);
            if (!m->has[c])
                continue;
            dm_corr_pair *p = &s->pairs[s->sn.n_pairs++];
            snprintf(p->a, sizeof p->a, "%s", cs[i].symbol);
            snprintf(p->b, sizeof p->b, "%s", cs[j].symbol);
            p->r = m->r[c];
            p->n = m->pairs[c];
        }
    }
    s->sn.symbols = s->symbols;
    s->sn.pairs = s->pairs;
    return DM_OK;
}

/* The default window of tf over the series store, now. */
static dm_bstatus compute(dm_refresh *r, const dm_strategy *st, dm_tf tf, int64_t run, snapshot *s, dm_err *err)
{
    memset(s, 0, sizeof *s);
    s->sn.tf = tf;
    s->sn.run = run;
    s->sn.window_candles = st->correlations.window_candles;
    if (dm_corr_window(dm_now_ms(), dm_tf_ms(tf), s->sn.window_candles, &s->sn.window_start, &s->sn.window_end, err))
        return DM_BS_PERMANENT;
    dm_series_view v;
    dm_bstatus bs = dm_series_acquire(r->cfg.store, tf, dm_fallback_read_closes, &r->loader, &v, err);
    if (bs != DM_BS_OK)
        return bs;
    dm_corr_series *cs = calloc(v.n ? v.n : 1, sizeof *cs);
    dm_corr_matrix m = {0};
    for (size_t i = 0; cs && i < v.n; i++)
        cs[i] = (dm_corr_series){dm_pseries_symbol(v.series[i]), dm_pseries_ts(v.series[i]),
                                 dm_pseries_close(v.series[i]), dm_pseries_len(v.series[i])};
    dm_code c = cs ? dm_corr_matrix_compute(cs, v.n, s->sn.window_start, s->sn.window_end,
                                            st->correlations.min_pairs, &m, err)
                   : dm_fail(err, DM_E_INTERNAL, "", "out of memory");
    if (c == DM_OK)
        c = collect(&m, cs, v.n, s, err);
    dm_series_release(r->cfg.store, tf);
    dm_corr_matrix_free(&m);
    free(cs);
    return c == DM_OK ? DM_BS_OK : DM_BS_PERMANENT;
}

/* Asks one pooled backend: fn(b) under a borrowed connection. */
static dm_bstatus with_pool(dm_pool *pool, dm_bstatus (*fn)(dm_backend *, void *, dm_err *), void *arg, dm_err *err)
{
    dm_backend *b = dm_pool_acquire(pool, err);
    if (b == NULL)
        return DM_BS_TRANSIENT;
    dm_bstatus st = fn(b, arg, err);
    dm_pool_release(pool, b, st == DM_BS_TRANSIENT);
    return st;
}

typedef struct {
    dm_tf tf;
    int64_t run;
} run_q;

static dm_bstatus ask_run(dm_backend *b, void *arg, dm_err *err)
{
    run_q *q = arg;
    if (b->ops->correlations_run == NULL)
        return dm_bfail(err, DM_BS_PERMANENT, "", "%s cannot store correlations", dm_backend_label(b));
    return b->ops->correlations_run(b, q->tf, &q->run, err);
}

static dm_bstatus put(dm_backend *b, void *arg, dm_err *err)
{
    if (b->ops->put_correlations == NULL)
        return dm_bfail(err, DM_BS_PERMANENT, "", "%s cannot store correlations", dm_backend_label(b));
    return b->ops->put_correlations(b, arg, err);
}

/* Under the lease: compute and store the interval unless a worker already did. */
static void refresh_held(dm_refresh *r, const dm_strategy *st, dm_tf tf, int64_t run)
{
    dm_err err = {0};
    run_q q = {tf, 0};
    dm_bstatus bs = with_pool(r->cfg.timescale, ask_run, &q, &err);
    if (bs == DM_BS_OK && q.run >= run) {
        r->done[tf] = q.run;
        return;
    }
    if (bs != DM_BS_OK && bs != DM_BS_MISS) {
        if (dm_now_ms() - r->warned_ms[tf] >= 60000) {
            r->warned_ms[tf] = dm_now_ms();
            DM_WARN("refresh", "correlations %s: stored run unknown (asked again every second): %s [%s:%d]",
                    dm_tf_name(tf), err.message, err.file ? err.file : "?", err.line);
        }
        return;
    }
    snapshot s;
    bs = compute(r, st, tf, run, &s, &err);
    if (bs == DM_BS_OK)
        bs = with_pool(r->cfg.timescale, put, &s.sn, &err);
    if (bs != DM_BS_OK) {
        if (dm_now_ms() - r->warned_ms[tf] >= 60000) {
            r->warned_ms[tf] = dm_now_ms();
            DM_WARN("refresh", "correlations %s not refreshed (tried again every second): %s [%s:%d]",
                    dm_tf_name(tf), err.message, err.file ? err.file : "?", err.line);
        }
        snapshot_free(&s);
        return;
    }
    r->done[tf] = run;
    DM_INFO("refresh", "correlations %s: window (%lld, %lld], %zu symbols, %zu pairs stored", dm_tf_name(tf),
            (long long)s.sn.window_start, (long long)s.sn.window_end, s.sn.n_symbols, s.sn.n_pairs);
    if (r->cfg.arangodb && with_pool(r->cfg.arangodb, put, &s.sn, &err) != DM_BS_OK)
        DM_WARN("refresh", "correlations %s not stored in ArangoDB (requests for it go to the fallback): %s",
                dm_tf_name(tf), err.message);
    snapshot_free(&s);
}

static void tick(dm_refresh *r)
{
    const dm_strategy *st = dm_strategy_acquire(r->cfg.strategies);
    int64_t run = dm_now_ms() / (1000LL * st->correlations.refresh_s);
    for (int tf = 0; tf < DM_TF_COUNT && !atomic_load(&r->stop); tf++) {
        if (!(st->correlations.timeframes & (1u << tf)) || r->done[tf] >= run)
            continue;
        if (r->leases[tf] == NULL) {
            char key[48];
            snprintf(key, sizeof key, "correlations-refresh-%s", dm_tf_name((dm_tf)tf));
            r->leases[tf] = dm_lease_create(r->cfg.bus, key, r->cfg.holder);
        }
        if (r->leases[tf] && dm_lease_hold(r->leases[tf], NULL)) {
            refresh_held(r, st, (dm_tf)tf, run);
            dm_lease_release(r->leases[tf]);
        }
    }
    dm_strategy_release(r->cfg.strategies, st);
}

static void *run_thread(void *arg)
{
    dm_refresh *r = arg;
    while (!atomic_load(&r->stop)) {
        tick(r);
        dm_sleep_ms(TICK_MS, &r->stop);
    }
    return NULL;
}

dm_refresh *dm_refresh_start(const dm_refresh_config *cfg, dm_err *err)
{
    if (cfg->timescale == NULL || cfg->bus->leases == NULL) {
        dm_fail(err, DM_E_UNAVAILABLE, "", "scheduled correlations need PostgreSQL and the NATS KV store");
        return NULL;
    }
    dm_refresh *r = calloc(1, sizeof *r);
    if (r == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    r->loader = (dm_fallback_config){.store = cfg->store, .timescale = cfg->timescale, .fresh = cfg->fresh};
    atomic_init(&r->stop, false);
    if (pthread_create(&r->thread, NULL, run_thread, r) != 0) {
        free(r);
        dm_fail(err, DM_E_INTERNAL, "", "cannot start the correlations refresh thread");
        return NULL;
    }
    return r;
}

void dm_refresh_stop(dm_refresh *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    for (int i = 0; i < DM_TF_COUNT; i++)
        dm_lease_destroy(r->leases[i]);
    free(r);
}
