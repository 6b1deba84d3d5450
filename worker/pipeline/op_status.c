/* health_check and metrics: what this worker and its backends are doing. */
#include "serve_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../obs/metrics.h"
#include "ingest.h"

#define DM_VERSION "0.1.0"

typedef struct {
    dm_backend_id id;
    bool up;
    double ms;
    dm_err err;
} probe;

static void encode_pool(dm_enc *e, dm_pool *pool)
{
    dm_pool_stats ps;
    dm_pool_stats_of(pool, &ps);
    dm_enc_key(e, "pool");
    dm_enc_map(e, 9);
    dm_enc_key(e, "open"); dm_enc_i64(e, ps.open);
    dm_enc_key(e, "in_use"); dm_enc_i64(e, ps.in_use);
    dm_enc_key(e, "min"); dm_enc_i64(e, ps.min);
    dm_enc_key(e, "max"); dm_enc_i64(e, ps.max);
    dm_enc_key(e, "timeout_s"); dm_enc_i64(e, ps.timeout_s);
    dm_enc_key(e, "borrowed"); dm_enc_i64(e, (int64_t)ps.borrowed);
    dm_enc_key(e, "waited"); dm_enc_i64(e, (int64_t)ps.waited);
    dm_enc_key(e, "timeouts"); dm_enc_i64(e, (int64_t)ps.timeouts);
    dm_enc_key(e, "replaced"); dm_enc_i64(e, (int64_t)ps.replaced);
    dm_enc_map_end(e);
}

static void encode_probe(dm_enc *e, const probe *p, dm_breaker *br, dm_pool *pool)
{
    dm_enc_key(e, dm_backend_name(p->id));
    dm_enc_map(e, (p->up ? 2 : 3) + (br ? 1 : 0) + (pool ? 1 : 0));
    dm_enc_key(e, "status"); dm_enc_str(e, p->up ? "up" : "down");
    dm_enc_key(e, "latency_ms"); dm_enc_f64(e, p->ms);
    if (br) {
        dm_enc_key(e, "breaker");
        dm_enc_str(e, dm_breaker_name(dm_breaker_state_of(br)));
    }
    if (pool)
        encode_pool(e, pool);
    if (!p->up) {
        dm_enc_key(e, "error");
        dm_enc_str(e, p->err.message);
    }
    dm_enc_map_end(e);
}

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

void op_health(dm_serve *s, dm_reply *out)
{
    probe probes[DM_BK_COUNT];
    int n = 0, up = 0;
    for (int i = 0; i < DM_BK_COUNT; i++) {
        if (serve_source_ops(s, (dm_backend_id)i) == NULL)
            continue;
        probe *p = &probes[n++];
        struct timespec t0;
        memset(p, 0, sizeof *p);
        p->id = (dm_backend_id)i;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        dm_backend *b = serve_borrow(s, p->id, &p->err);
        dm_bstatus st = b ? b->ops->ping(b, &p->err) : DM_BS_TRANSIENT;
        serve_note_status(s, p->id, st);
        p->up = st == DM_BS_OK;
        p->ms = serve_elapsed_ms(&t0);
        up += p->up;
    }
    char issues[DM_HEALTH_ISSUES][DM_HEALTH_ISSUE_MAX];
    size_t n_issues = health_issues(s, probes, n, issues);
    int extra = s->cfg.health_extra ? s->cfg.health_extra_members : 0;
    dm_enc e;
    dm_buf_reset(&out->body);
    dm_enc_init(&e, out->enc, &out->body);
    dm_enc_map(&e, 7 + (size_t)extra);
    dm_enc_key(&e, "status");
    dm_enc_str(&e, up == 0 && n > 0 ? "unhealthy" : n_issues > 0 ? "degraded" : "healthy");
    dm_enc_key(&e, "issues");
    dm_enc_arr(&e, n_issues);
    for (size_t i = 0; i < n_issues; i++)
        dm_enc_str(&e, issues[i]);
    dm_enc_arr_end(&e);
    dm_enc_key(&e, "worker"); dm_enc_str(&e, s->cfg.worker_name);
    dm_enc_key(&e, "version"); dm_enc_str(&e, DM_VERSION);
    dm_enc_key(&e, "strategy_version"); dm_enc_str(&e, s->st->version);
    dm_enc_key(&e, "uptime_s"); dm_enc_i64(&e, (dm_now_ms() - s->started_ms) / 1000);
    dm_enc_key(&e, "backends");
    dm_enc_map(&e, (size_t)n);
    for (int i = 0; i < n; i++)
        encode_probe(&e, &probes[i], s->cfg.breakers[probes[i].id], s->cfg.pools[probes[i].id]);
    dm_enc_map_end(&e);
    if (extra)
        s->cfg.health_extra(s->cfg.health_ctx, &e);
    dm_enc_map_end(&e);
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

