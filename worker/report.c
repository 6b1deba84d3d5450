#include "report.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "obs/metrics.h"
#include "pipeline/ingest.h"

#define DM_MAX_CONSUMERS (DM_KIND_COUNT * DM_BK_COUNT)

static size_t consumer_names(unsigned mask, char names[][48])
{
    size_t n = 0;
    for (int k = 0; k < DM_KIND_COUNT; k++)
        for (int id = 0; id < DM_BK_COUNT; id++)
            if (mask & (1u << (k * DM_BK_COUNT + id)))
                snprintf(names[n++], 48, "%s-%s", dm_backend_name((dm_backend_id)id),
                         dm_kind_name((dm_kind)k));
    return n;
}

/* Health: the consumers this worker runs (so an operator, or a test, sees a strategy edit
 * take effect on the write side), how far each is behind, and the dead letters held.
 * Runs on responder threads: reads only the mask, asks NATS for the rest. */
void dm_report_health(const dm_report *r, dm_enc *e)
{
    char names[DM_MAX_CONSUMERS][48];
    size_t n = consumer_names(atomic_load(r->consumers_running), names);
    dm_enc_key(e, "consumers");
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++)
        dm_enc_str(e, names[i]);
    dm_enc_arr_end(e);
    dm_enc_key(e, "consumer_lag");
    dm_enc_map(e, n);
    for (size_t i = 0; i < n; i++) {
        dm_consumer_lag lag;
        dm_enc_key(e, names[i]);
        if (!dm_bus_consumer_lag(*r->bus, names[i], &lag)) {
            dm_enc_null(e);
            continue;
        }
        dm_enc_map(e, 3);
        dm_enc_key(e, "pending"); dm_enc_i64(e, (int64_t)lag.pending);
        dm_enc_key(e, "ack_pending"); dm_enc_i64(e, (int64_t)lag.ack_pending);
        dm_enc_key(e, "redelivered"); dm_enc_i64(e, (int64_t)lag.redelivered);
        dm_enc_map_end(e);
    }
    dm_enc_map_end(e);
    int64_t dead = dm_bus_dead_letters(*r->bus);
    dm_enc_key(e, "dead_letters");
    if (dead < 0)
        dm_enc_null(e);
    else
        dm_enc_i64(e, dead);
}


/* Each family in one group, as the text format wants. */
static void prom_pools(const dm_report *r, dm_buf *out)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"dm_pool_waits_total", "Requests that waited for a free connection.", offsetof(dm_pool_stats, waited)},
        {"dm_pool_timeouts_total", "Requests that found no free connection in time.", offsetof(dm_pool_stats, timeouts)},
        {"dm_pool_replaced_total", "Connections closed as broken and opened again.", offsetof(dm_pool_stats, replaced)}};
    dm_pool_stats ps[DM_BK_COUNT];
    for (int id = 0; id < DM_BK_COUNT; id++)
        if (r->pools[id])
            dm_pool_stats_of(r->pools[id], &ps[id]);
    dm_buf_puts(out, "# HELP dm_pool_connections Read connections per backend: open, in use, and the most allowed.\n"
                     "# TYPE dm_pool_connections gauge\n");
    for (int id = 0; id < DM_BK_COUNT; id++) {
        if (r->pools[id] == NULL)
            continue;
        const char *b = dm_backend_name((dm_backend_id)id);
        dm_buf_printf(out, "dm_pool_connections{backend=\"%s\",state=\"open\"} %d\n", b, ps[id].open);
        dm_buf_printf(out, "dm_pool_connections{backend=\"%s\",state=\"in_use\"} %d\n", b, ps[id].in_use);
        dm_buf_printf(out, "dm_pool_connections{backend=\"%s\",state=\"max\"} %d\n", b, ps[id].max);
    }
    for (size_t c = 0; c < sizeof counters / sizeof *counters; c++) {
        dm_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name, counters[c].help,
                      counters[c].name);
        for (int id = 0; id < DM_BK_COUNT; id++) {
            uint64_t v;
            if (r->pools[id] == NULL)
                continue;
            memcpy(&v, (const char *)&ps[id] + counters[c].offset, sizeof v);
            dm_buf_printf(out, "%s{backend=\"%s\"} %llu\n", counters[c].name,
                          dm_backend_name((dm_backend_id)id), (unsigned long long)v);
        }
    }
}

/* /metrics: the process counters, then what only the worker knows. Runs on the HTTP
 * thread; reads atomics, the shared breakers and pools (locked a moment each), and asks
 * NATS for the consumers' lag. */
void dm_report_prometheus(const dm_report *r, dm_buf *out)
{
    dm_metrics_prometheus(out, dm_kind_names(), DM_KIND_COUNT);
    const dm_strategy *st = dm_strategy_acquire(*r->strategies);
    dm_buf_printf(out, "# HELP dm_strategy_info The strategy version this worker runs.\n"
                       "# TYPE dm_strategy_info gauge\ndm_strategy_info{version=\"%s\"} 1\n", st->version);
    dm_strategy_release(*r->strategies, st);
    dm_buf_printf(out,
                  "# HELP dm_strategy_reloads_total Strategy files applied after the first.\n"
                  "# TYPE dm_strategy_reloads_total counter\ndm_strategy_reloads_total %llu\n"
                  "# HELP dm_strategy_reload_failures_total Strategy files refused (invalid or half-written).\n"
                  "# TYPE dm_strategy_reload_failures_total counter\n"
                  "dm_strategy_reload_failures_total %llu\n",
                  *r->watch ? (unsigned long long)dm_strategy_reloads(*r->watch) : 0ULL,
                  *r->watch ? (unsigned long long)dm_strategy_reload_failures(*r->watch) : 0ULL);
    dm_buf_puts(out, "# HELP dm_breaker_state Circuit breaker per backend: 0 closed, 1 open, 2 half open.\n"
                     "# TYPE dm_breaker_state gauge\n");
    for (int id = 0; id < DM_BK_COUNT; id++)
        if (r->breakers[id])
            dm_buf_printf(out, "dm_breaker_state{backend=\"%s\"} %d\n", dm_backend_name((dm_backend_id)id),
                          (int)dm_breaker_state_of(r->breakers[id]));
    prom_pools(r, out);
    char names[DM_MAX_CONSUMERS][48];
    size_t n = consumer_names(atomic_load(r->consumers_running), names);
    dm_consumer_lag lag[DM_MAX_CONSUMERS];
    bool known[DM_MAX_CONSUMERS];
    for (size_t i = 0; i < n; i++)
        known[i] = dm_bus_consumer_lag(*r->bus, names[i], &lag[i]);
    dm_buf_puts(out, "# HELP dm_consumer_pending Messages in MARKET not yet delivered to the consumer.\n"
                     "# TYPE dm_consumer_pending gauge\n");
    for (size_t i = 0; i < n; i++)
        if (known[i])
            dm_buf_printf(out, "dm_consumer_pending{consumer=\"%s\"} %llu\n", names[i],
                          (unsigned long long)lag[i].pending);
    dm_buf_puts(out, "# HELP dm_consumer_ack_pending Messages delivered, not yet committed and acked.\n"
                     "# TYPE dm_consumer_ack_pending gauge\n");
    for (size_t i = 0; i < n; i++)
        if (known[i])
            dm_buf_printf(out, "dm_consumer_ack_pending{consumer=\"%s\"} %llu\n", names[i],
                          (unsigned long long)lag[i].ack_pending);
    int64_t dead = dm_bus_dead_letters(*r->bus);
    if (dead >= 0)
        dm_buf_printf(out, "# HELP dm_dead_letters Messages held in the DLQ stream.\n"
                           "# TYPE dm_dead_letters gauge\ndm_dead_letters %lld\n", (long long)dead);
}

