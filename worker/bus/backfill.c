#include "backfill.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/backoff.h"
#include "util/log.h"
#include "lease.h"

#define CHUNK 2000        /* candles per write: a few hundred KB of windows */
#define RETRY_MS 5000     /* after a failure, or while another worker holds the lease */

struct dm_backfill {
    dm_backfill_config cfg;
    dm_lease *leases[DM_TF_COUNT];
    bool done[DM_TF_COUNT];
    pthread_t thread;
    atomic_bool stop;
};

/* One series, copied out of the store so no lock is held across HTTP. */
typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    int64_t *ts;
    double *close;
    size_t n;
} series_copy;

static void copies_free(series_copy *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].ts);
        free(c[i].close);
    }
    free(c);
}

static dm_bstatus copy_all(dm_backfill *b, dm_tf tf, series_copy **out, size_t *n, dm_err *err)
{
    dm_series_view v;
    dm_bstatus st = dm_series_acquire(b->cfg.loader->store, tf, dm_fallback_read_closes, b->cfg.loader, &v, err);
    if (st != DM_BS_OK)
        return st;
    series_copy *c = calloc(v.n ? v.n : 1, sizeof *c);
    for (size_t i = 0; c && i < v.n; i++) {
        size_t len = dm_pseries_len(v.series[i]);
        snprintf(c[i].symbol, sizeof c[i].symbol, "%s", dm_pseries_symbol(v.series[i]));
        c[i].ts = malloc((len ? len : 1) * sizeof *c[i].ts);
        c[i].close = malloc((len ? len : 1) * sizeof *c[i].close);
        if (c[i].ts && c[i].close) {
            memcpy(c[i].ts, dm_pseries_ts(v.series[i]), len * sizeof *c[i].ts);
            memcpy(c[i].close, dm_pseries_close(v.series[i]), len * sizeof *c[i].close);
            c[i].n = len;
        }
    }
    dm_series_release(b->cfg.loader->store, tf);
    if (c == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    *out = c;
    *n = v.n;
    return DM_BS_OK;
}

static dm_bstatus progress(dm_backfill *b, const char *key, int64_t *value, bool set, dm_err *err)
{
    dm_backend *pg = dm_pool_acquire(b->cfg.timescale, err);
    if (pg == NULL)
        return DM_BS_TRANSIENT;
    dm_bstatus st = set ? pg->ops->set_progress(pg, key, *value, err) : pg->ops->get_progress(pg, key, value, err);
    dm_pool_release(b->cfg.timescale, pg, st == DM_BS_TRANSIENT);
    return st;
}

/* Writes one chunk of candles through the Weaviate backend's candle writer. */
static dm_bstatus write_chunk(dm_backfill *b, const series_copy *s, dm_tf tf, size_t from, size_t to, dm_err *err)
{
    dm_candle *c = calloc(to - from, sizeof *c);
    if (c == NULL)
        return dm_bfail(err, DM_BS_TRANSIENT, "", "out of memory");
    for (size_t i = from; i < to; i++) {
        dm_candle *k = &c[i - from];
        snprintf(k->symbol, sizeof k->symbol, "%s", s->symbol);
        k->tf = tf;
        k->ts = s->ts[i];
        k->open = k->high = k->low = k->close = s->close[i];
    }
    dm_backend *wv = dm_pool_acquire(b->cfg.weaviate, err);
    dm_bstatus st = wv ? dm_backend_write_candles(wv, c, to - from, &(dm_cache_opts){0}, err) : DM_BS_TRANSIENT;
    if (wv)
        dm_pool_release(b->cfg.weaviate, wv, st == DM_BS_TRANSIENT);
    free(c);
    return st;
}

/* One series from where the last run stopped; false when it must stop (failure, lease). */
static bool fill_series(dm_backfill *b, dm_lease *lease, dm_tf tf, const series_copy *s)
{
    char key[96];
    snprintf(key, sizeof key, "weaviate:%s:%s", dm_tf_name(tf), s->symbol);
    dm_err err = {0};
    int64_t done_to = INT64_MIN;
    dm_bstatus st = progress(b, key, &done_to, false, &err);
    if (st != DM_BS_OK && st != DM_BS_MISS)
        return DM_WARN("backfill", "%s: progress unknown: %s", key, err.message), false;
    size_t i = 0;
    while (i < s->n && s->ts[i] <= done_to)
        i++;
    for (size_t start = i; i < s->n;) {
        if (atomic_load(&b->stop) || !dm_lease_hold(lease, NULL))
            return false;
        size_t to = i + CHUNK < s->n ? i + CHUNK : s->n;
        if ((st = write_chunk(b, s, tf, i, to, &err)) != DM_BS_OK ||
            (st = progress(b, key, &s->ts[to - 1], true, &err)) != DM_BS_OK)
            return DM_WARN("backfill", "%s: stopped at %zu of %zu candles, resumes later: %s [%s:%d]", key, i,
                           s->n, err.message, err.file ? err.file : "?", err.line), false;
        i = to;
        DM_INFO("backfill", "%s: %zu of %zu candles indexed (%zu this run)", key, i, s->n, i - start);
    }
    return true;
}

static void fill_tf(dm_backfill *b, dm_tf tf)
{
    if (b->leases[tf] == NULL) {
        char key[48];
        snprintf(key, sizeof key, "weaviate-backfill-%s", dm_tf_name(tf));
        b->leases[tf] = dm_lease_create(b->cfg.bus, key, b->cfg.holder);
    }
    if (b->leases[tf] == NULL || !dm_lease_hold(b->leases[tf], NULL))
        return;
    series_copy *c = NULL;
    size_t n = 0;
    dm_err err = {0};
    if (copy_all(b, tf, &c, &n, &err) != DM_BS_OK) {
        DM_WARN("backfill", "weaviate %s: series not loaded, tried again later: %s", dm_tf_name(tf), err.message);
        dm_lease_release(b->leases[tf]);
        return;
    }
    bool all = true;
    for (size_t i = 0; i < n && all; i++)
        all = fill_series(b, b->leases[tf], tf, &c[i]);
    copies_free(c, n);
    dm_lease_release(b->leases[tf]);
    if (all) {
        b->done[tf] = true;
        DM_INFO("backfill", "weaviate %s: every stored candle's windows are indexed", dm_tf_name(tf));
    }
}

static void *run_thread(void *arg)
{
    dm_backfill *b = arg;
    for (bool pending = true; pending && !atomic_load(&b->stop);) {
        const dm_strategy *st = dm_strategy_acquire(b->cfg.strategies);
        unsigned mask = st->patterns.timeframes;
        dm_strategy_release(b->cfg.strategies, st);
        pending = false;
        for (int tf = 0; tf < DM_TF_COUNT && !atomic_load(&b->stop); tf++)
            if ((mask & (1u << tf)) && !b->done[tf]) {
                fill_tf(b, (dm_tf)tf);
                pending = pending || !b->done[tf];
            }
        if (pending)
            dm_sleep_ms(RETRY_MS, &b->stop);
    }
    return NULL;
}

dm_backfill *dm_backfill_start(const dm_backfill_config *cfg, dm_err *err)
{
    if (cfg->weaviate == NULL || cfg->timescale == NULL || cfg->bus->leases == NULL) {
        dm_fail(err, DM_E_UNAVAILABLE, "", "no Weaviate configured (or no PostgreSQL or NATS KV store)");
        return NULL;
    }
    const dm_backend_ops *ops = dm_pool_ops(cfg->weaviate);
    if (ops == NULL || ops->write_candles == NULL) {
        dm_fail(err, DM_E_UNAVAILABLE, "", "the Weaviate backend cannot write windows");
        return NULL;
    }
    dm_backfill *b = calloc(1, sizeof *b);
    if (b == NULL) {
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    atomic_init(&b->stop, false);
    if (pthread_create(&b->thread, NULL, run_thread, b) != 0) {
        free(b);
        dm_fail(err, DM_E_INTERNAL, "", "cannot start the backfill thread");
        return NULL;
    }
    return b;
}

void dm_backfill_stop(dm_backfill *b)
{
    if (b == NULL)
        return;
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
    for (int i = 0; i < DM_TF_COUNT; i++)
        dm_lease_destroy(b->leases[i]);
    free(b);
}
