/* health_check and metrics: what this worker and its backends are doing. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/health.h"
#include "obs/metrics.h"
#include "ingest.h"

#define DM_VERSION "0.1.0"

typedef struct {
    dm_backend_id id;
    bool up;
    double ms;
    dm_err err;
} probe;

#define DM_HEALTH_ISSUES 32

/* Why the worker is degraded: a backend down, a breaker not closed, what the layer above
 * reports (stalled consumers, L1 suspended). */
static size_t health_issues(dm_serve *s, const probe *probes, int n,
                            char (*out)[DM_HEALTH_ISSUE_MAX])
{
    size_t k = 0;
    for (int i = 0; i < n && k < DM_HEALTH_ISSUES; i++)
        if (!probes[i].up)
            snprintf(out[k++], DM_HEALTH_ISSUE_MAX, "%s down: %.120s", dm_backend_name(probes[i].id),
                     probes[i].err.message);
    for (int id = 0; id < DM_BK_COUNT && k < DM_HEALTH_ISSUES; id++) {
        dm_breaker *br = s->cfg.breakers[id];
        dm_breaker_state bs = br ? dm_breaker_state_of(br) : DM_BREAKER_CLOSED;
        if (bs != DM_BREAKER_CLOSED)
            snprintf(out[k++], DM_HEALTH_ISSUE_MAX, "%s circuit %s: reads skip it, its writes wait in the stream",
                     dm_backend_name((dm_backend_id)id), dm_breaker_name(bs));
    }
    if (s->cfg.health_issues)
        k += s->cfg.health_issues(s->cfg.health_ctx, out + k, DM_HEALTH_ISSUES - k);
    return k;
}

/* Pings every configured backend over the request's own connection; returns how many. */
static int probe_backends(dm_serve *s, probe *probes)
{
    int n = 0;
    for (int i = 0; i < DM_BK_COUNT; i++) {
        if (serve_source_ops(s, (dm_backend_id)i) == NULL)
            continue;
        probe *p = &probes[n++];
        struct timespec t0;
        memset(p, 0, sizeof *p);
        p->id = (dm_backend_id)i;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        dm_backend *b = serve_borrow(s, p->id, &p->err);
        dm_bstatus st = b ? dm_backend_ping(b, &p->err) : DM_BS_TRANSIENT;
        serve_note_status(s, p->id, st);
        p->up = st == DM_BS_OK;
        p->ms = serve_elapsed_ms(&t0);
    }
    return n;
}

static dm_health_pool pool_figures(dm_pool *pool)
{
    dm_pool_stats ps;
    dm_pool_stats_of(pool, &ps);
    return (dm_health_pool){.open = ps.open, .in_use = ps.in_use, .min = ps.min, .max = ps.max,
                            .timeout_s = ps.timeout_s, .borrowed = (int64_t)ps.borrowed,
                            .waited = (int64_t)ps.waited, .timeouts = (int64_t)ps.timeouts,
                            .replaced = (int64_t)ps.replaced};
}

void op_health(dm_serve *s, dm_reply *out)
{
    probe probes[DM_BK_COUNT];
    int n = probe_backends(s, probes);
    dm_health_backend backends[DM_BK_COUNT];
    dm_health_pool pools[DM_BK_COUNT];
    for (int i = 0; i < n; i++) {
        dm_breaker *br = s->cfg.breakers[probes[i].id];
        dm_pool *pool = s->cfg.pools[probes[i].id];
        if (pool)
            pools[i] = pool_figures(pool);
        backends[i] = (dm_health_backend){
            .name = dm_backend_name(probes[i].id), .up = probes[i].up,
            .latency_ms = probes[i].ms, .error = probes[i].err.message,
            .breaker = br ? dm_breaker_name(dm_breaker_state_of(br)) : NULL,
            .pool = pool ? &pools[i] : NULL};
    }
    char issues[DM_HEALTH_ISSUES][DM_HEALTH_ISSUE_MAX];
    const char *issue_ptr[DM_HEALTH_ISSUES];
    size_t n_issues = health_issues(s, probes, n, issues);
    for (size_t i = 0; i < n_issues; i++)
        issue_ptr[i] = issues[i];
    dm_health h = {.worker = s->cfg.worker_name, .version = DM_VERSION,
                   .strategy_version = s->st->version,
                   .uptime_s = (dm_now_ms() - s->started_ms) / 1000,
                   .backends = backends, .n_backends = (size_t)n,
                   .issues = issue_ptr, .n_issues = n_issues,
                   .extra = s->cfg.health_extra, .n_extra = s->cfg.health_extra_members,
                   .extra_ctx = s->cfg.health_ctx};
    dm_enc e;
    dm_buf_reset(&out->body);
    dm_enc_init(&e, out->enc, &out->body);
    dm_health_encode(&e, &h);
    out->status = 200;
}

static void encode_strategy(dm_serve *s, dm_enc *e)
{
    dm_enc_key(e, "strategy");
    dm_enc_map(e, 4);
    dm_enc_key(e, "version"); dm_enc_str(e, s->st->version);
    dm_enc_key(e, "generation"); dm_enc_i64(e, (int64_t)dm_strategy_generation(s->cfg.strategies));
    dm_enc_key(e, "reloads");
    dm_enc_i64(e, s->cfg.watch ? (int64_t)dm_strategy_reloads(s->cfg.watch) : 0);
    dm_enc_key(e, "reload_failures");
    dm_enc_i64(e, s->cfg.watch ? (int64_t)dm_strategy_reload_failures(s->cfg.watch) : 0);
    dm_enc_map_end(e);
}

static void encode_l1_kind(dm_enc *e, const char *name, dm_l1_stats st)
{
    dm_enc_key(e, name);
    dm_enc_map(e, 4);
    dm_enc_key(e, "entries"); dm_enc_i64(e, (int64_t)st.entries);
    dm_enc_key(e, "bytes"); dm_enc_i64(e, (int64_t)st.bytes);
    dm_enc_key(e, "evictions"); dm_enc_i64(e, (int64_t)st.evictions);
    dm_enc_key(e, "expirations"); dm_enc_i64(e, (int64_t)st.expirations);
    dm_enc_map_end(e);
}

static void encode_l1(dm_serve *s, dm_enc *e)
{
    dm_enc_key(e, "l1");
    if (s->cfg.l1 == NULL) {
        dm_enc_null(e);
        return;
    }
    dm_enc_map(e, 2);
    encode_l1_kind(e, "ticks", dm_l1_cache_stats(s->cfg.l1, false));
    encode_l1_kind(e, "candles", dm_l1_cache_stats(s->cfg.l1, true));
    dm_enc_map_end(e);
}

void op_metrics(dm_serve *s, dm_reply *out)
{
    dm_enc e;
    dm_buf_reset(&out->body);
    dm_enc_init(&e, out->enc, &out->body);
    dm_enc_map(&e, 4 + 4); /* dm_metrics_encode writes four members */
    dm_enc_key(&e, "worker"); dm_enc_str(&e, s->cfg.worker_name);
    dm_enc_key(&e, "strategy_version"); dm_enc_str(&e, s->st->version);
    encode_strategy(s, &e);
    encode_l1(s, &e);
    dm_metrics_encode(&e, dm_kind_names(), DM_KIND_COUNT);
    dm_enc_map_end(&e);
    out->status = 200;
}

