#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define DM_KINDS 4

typedef struct {
    atomic_ullong count, errors, client_errors, total_ns;
    atomic_ullong buckets[DM_LAT_BUCKETS];
} op_stats;

/* The last server error of each operation (service discovery's last_error). */
static pthread_mutex_t g_last_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_last_error[DM_OP_COUNT][DM_LAST_ERROR_MAX];

static struct {
    op_stats ops[DM_OP_COUNT];
    atomic_ullong served[DM_BK_COUNT];
    atomic_ullong hits[DM_BK_COUNT], misses[DM_BK_COUNT];
    atomic_ullong queries[DM_BK_COUNT], failures[DM_BK_COUNT], query_ns[DM_BK_COUNT];
    atomic_ullong acked[DM_KINDS][DM_BK_COUNT], dead[DM_KINDS][DM_BK_COUNT],
        retried[DM_KINDS][DM_BK_COUNT], batches[DM_KINDS][DM_BK_COUNT];
} g_m;

double dm_metrics_bucket_upper_ms(int i) { return 0.025 * pow(1.5, i); }

void dm_metrics_op(dm_op op, double ms, int status, const char *message)
{
    op_stats *s = &g_m.ops[op];
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->total_ns, (unsigned long long)(ms * 1e6), memory_order_relaxed);
    if (status >= 500) {
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
        pthread_mutex_lock(&g_last_mu);
        snprintf(g_last_error[op], sizeof g_last_error[op], "%d %s", status, message ? message : "");
        pthread_mutex_unlock(&g_last_mu);
    } else if (status >= 400) {
        atomic_fetch_add_explicit(&s->client_errors, 1, memory_order_relaxed);
    }
    int i = 0;
    while (i < DM_LAT_BUCKETS - 1 && ms > dm_metrics_bucket_upper_ms(i))
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
}

void dm_metrics_op_snapshot(dm_op op, dm_op_snapshot *out)
{
    op_stats *s = &g_m.ops[op];
    out->count = atomic_load_explicit(&s->count, memory_order_relaxed);
    out->errors = atomic_load_explicit(&s->errors, memory_order_relaxed);
    out->client_errors = atomic_load_explicit(&s->client_errors, memory_order_relaxed);
    out->total_ns = atomic_load_explicit(&s->total_ns, memory_order_relaxed);
    pthread_mutex_lock(&g_last_mu);
    snprintf(out->last_error, sizeof out->last_error, "%s", g_last_error[op]);
    pthread_mutex_unlock(&g_last_mu);
}

void dm_metrics_served(dm_backend_id id)
{
    atomic_fetch_add_explicit(&g_m.served[id], 1, memory_order_relaxed);
}

void dm_metrics_cache(dm_backend_id level, bool hit)
{
    atomic_fetch_add_explicit(hit ? &g_m.hits[level] : &g_m.misses[level], 1, memory_order_relaxed);
}

void dm_metrics_backend(dm_backend_id id, bool failed, int64_t elapsed_ns)
{
    atomic_fetch_add_explicit(&g_m.queries[id], 1, memory_order_relaxed);
    if (elapsed_ns > 0)
        atomic_fetch_add_explicit(&g_m.query_ns[id], (unsigned long long)elapsed_ns,
                                  memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&g_m.failures[id], 1, memory_order_relaxed);
}

void dm_metrics_ingest(int kind, dm_backend_id id, unsigned acked, unsigned dead, unsigned retried)
{
    if (kind < 0 || kind >= DM_KINDS)
        return;
    atomic_fetch_add_explicit(&g_m.acked[kind][id], acked, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_m.dead[kind][id], dead, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_m.retried[kind][id], retried, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_m.batches[kind][id], 1, memory_order_relaxed);
}

static unsigned long long ld(atomic_ullong *a) { return atomic_load_explicit(a, memory_order_relaxed); }

void dm_metrics_op_histogram(dm_op op, unsigned long long buckets[DM_LAT_BUCKETS])
{
    for (int i = 0; i < DM_LAT_BUCKETS; i++)
        buckets[i] = ld(&g_m.ops[op].buckets[i]);
}

double dm_metrics_quantile_ms(const unsigned long long buckets[DM_LAT_BUCKETS],
                              unsigned long long total, double q)
{
    unsigned long long want = (unsigned long long)ceil(q * (double)total), seen = 0;
    for (int i = 0; i < DM_LAT_BUCKETS; i++) {
        seen += buckets[i];
        if (seen >= want && want > 0)
            return dm_metrics_bucket_upper_ms(i);
    }
    return 0;
}

static double quantile(op_stats *s, unsigned long long total, double q)
{
    unsigned long long b[DM_LAT_BUCKETS];
    for (int i = 0; i < DM_LAT_BUCKETS; i++)
        b[i] = ld(&s->buckets[i]);
    return dm_metrics_quantile_ms(b, total, q);
}

static void encode_ops(dm_enc *e)
{
    size_t n = 0;
    for (int i = 0; i < DM_OP_COUNT; i++)
        n += ld(&g_m.ops[i].count) > 0;
    dm_enc_map(e, n);
    for (int i = 0; i < DM_OP_COUNT; i++) {
        op_stats *s = &g_m.ops[i];
        unsigned long long c = ld(&s->count);
        if (c == 0)
            continue;
        dm_enc_key(e, dm_op_name((dm_op)i));
        dm_enc_map(e, 6);
        dm_enc_key(e, "count"); dm_enc_i64(e, (int64_t)c);
        dm_enc_key(e, "errors"); dm_enc_i64(e, (int64_t)ld(&s->errors));
        dm_enc_key(e, "client_errors"); dm_enc_i64(e, (int64_t)ld(&s->client_errors));
        dm_enc_key(e, "p50_ms"); dm_enc_f64(e, quantile(s, c, 0.50));
        dm_enc_key(e, "p95_ms"); dm_enc_f64(e, quantile(s, c, 0.95));
        dm_enc_key(e, "p99_ms"); dm_enc_f64(e, quantile(s, c, 0.99));
        dm_enc_map_end(e);
    }
    dm_enc_map_end(e);
}

static void encode_backends(dm_enc *e)
{
    dm_enc_map(e, DM_BK_COUNT);
    for (int i = 0; i < DM_BK_COUNT; i++) {
        dm_enc_key(e, dm_backend_name((dm_backend_id)i));
        dm_enc_map(e, 6);
        dm_enc_key(e, "queries"); dm_enc_i64(e, (int64_t)ld(&g_m.queries[i]));
        dm_enc_key(e, "failures"); dm_enc_i64(e, (int64_t)ld(&g_m.failures[i]));
        dm_enc_key(e, "query_ms"); dm_enc_f64(e, (double)ld(&g_m.query_ns[i]) / 1e6);
        dm_enc_key(e, "served"); dm_enc_i64(e, (int64_t)ld(&g_m.served[i]));
        dm_enc_key(e, "cache_hits"); dm_enc_i64(e, (int64_t)ld(&g_m.hits[i]));
        dm_enc_key(e, "cache_misses"); dm_enc_i64(e, (int64_t)ld(&g_m.misses[i]));
        dm_enc_map_end(e);
    }
    dm_enc_map_end(e);
}

static void encode_ingest(dm_enc *e, const char *const *kind_names, int n_kinds)
{
    size_t n = 0;
    for (int k = 0; k < n_kinds && k < DM_KINDS; k++)
        for (int b = 0; b < DM_BK_COUNT; b++)
            n += ld(&g_m.acked[k][b]) + ld(&g_m.dead[k][b]) + ld(&g_m.retried[k][b]) > 0;
    dm_enc_map(e, n);
    for (int k = 0; k < n_kinds && k < DM_KINDS; k++) {
        for (int b = 0; b < DM_BK_COUNT; b++) {
            if (ld(&g_m.acked[k][b]) + ld(&g_m.dead[k][b]) + ld(&g_m.retried[k][b]) == 0)
                continue;
            char name[48];
            snprintf(name, sizeof name, "%s-%s", dm_backend_name((dm_backend_id)b), kind_names[k]);
            dm_enc_key(e, name);
            dm_enc_map(e, 3);
            dm_enc_key(e, "acked"); dm_enc_i64(e, (int64_t)ld(&g_m.acked[k][b]));
            dm_enc_key(e, "dead_lettered"); dm_enc_i64(e, (int64_t)ld(&g_m.dead[k][b]));
            dm_enc_key(e, "retried"); dm_enc_i64(e, (int64_t)ld(&g_m.retried[k][b]));
            dm_enc_map_end(e);
        }
    }
    dm_enc_map_end(e);
}

static double rate(unsigned long long hits, unsigned long long total)
{
    return total ? (double)hits / (double)total : 0;
}

/* Hit rates per level, and overall: of the requests that looked in a cache, the share a
 * cache level answered. Dragonfly is also asked without L1 first (correlations,
 * aggregates), so neither level's lookups alone count those requests: each sum below is
 * no more than their number, and the larger is used (the rate never passes 1). */
static void encode_cache(dm_enc *e)
{
    unsigned long long h1 = ld(&g_m.hits[DM_BK_L1]), m1 = ld(&g_m.misses[DM_BK_L1]);
    unsigned long long h2 = ld(&g_m.hits[DM_BK_DRAGONFLY]), m2 = ld(&g_m.misses[DM_BK_DRAGONFLY]);
    dm_enc_map(e, 3);
    dm_enc_key(e, "l1");
    dm_enc_map(e, 3);
    dm_enc_key(e, "hits"); dm_enc_i64(e, (int64_t)h1);
    dm_enc_key(e, "misses"); dm_enc_i64(e, (int64_t)m1);
    dm_enc_key(e, "hit_rate"); dm_enc_f64(e, rate(h1, h1 + m1));
    dm_enc_map_end(e);
    dm_enc_key(e, "dragonfly");
    dm_enc_map(e, 3);
    dm_enc_key(e, "hits"); dm_enc_i64(e, (int64_t)h2);
    dm_enc_key(e, "misses"); dm_enc_i64(e, (int64_t)m2);
    dm_enc_key(e, "hit_rate"); dm_enc_f64(e, rate(h2, h2 + m2));
    dm_enc_map_end(e);
    dm_enc_key(e, "total_hit_rate");
    unsigned long long asked = h1 + m1 > h1 + h2 + m2 ? h1 + m1 : h1 + h2 + m2;
    dm_enc_f64(e, rate(h1 + h2, asked));
    dm_enc_map_end(e);
}

void dm_metrics_encode(dm_enc *e, const char *const *kind_names, int n_kinds)
{
    dm_enc_key(e, "cache");
    encode_cache(e);
    dm_enc_key(e, "operations");
    encode_ops(e);
    dm_enc_key(e, "backends");
    encode_backends(e);
    dm_enc_key(e, "ingest");
    encode_ingest(e, kind_names, n_kinds);
}

static void prom_head(dm_buf *out, const char *name, const char *type, const char *help)
{
    dm_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_ops(dm_buf *out)
{
    prom_head(out, "dm_requests_total", "counter", "Requests answered, per operation.");
    for (int i = 0; i < DM_OP_COUNT; i++)
        if (ld(&g_m.ops[i].count))
            dm_buf_printf(out, "dm_requests_total{op=\"%s\"} %llu\n", dm_op_name((dm_op)i),
                          ld(&g_m.ops[i].count));
    prom_head(out, "dm_request_errors_total", "counter",
              "Requests answered with a server error (unavailable, internal: Status 5xx).");
    for (int i = 0; i < DM_OP_COUNT; i++)
        if (ld(&g_m.ops[i].count))
            dm_buf_printf(out, "dm_request_errors_total{op=\"%s\"} %llu\n", dm_op_name((dm_op)i),
                          ld(&g_m.ops[i].errors));
    prom_head(out, "dm_request_client_errors_total", "counter",
              "Requests refused as the client's mistake (invalid input, not_found: Status 4xx).");
    for (int i = 0; i < DM_OP_COUNT; i++)
        if (ld(&g_m.ops[i].count))
            dm_buf_printf(out, "dm_request_client_errors_total{op=\"%s\"} %llu\n", dm_op_name((dm_op)i),
                          ld(&g_m.ops[i].client_errors));
    prom_head(out, "dm_request_duration_seconds", "histogram",
              "Time from request to reply inside the worker.");
    for (int i = 0; i < DM_OP_COUNT; i++) {
        op_stats *s = &g_m.ops[i];
        unsigned long long total = ld(&s->count), cum = 0;
        if (total == 0)
            continue;
        const char *op = dm_op_name((dm_op)i);
        for (int b = 0; b < DM_LAT_BUCKETS - 1; b++) {
            cum += ld(&s->buckets[b]);
            dm_buf_printf(out, "dm_request_duration_seconds_bucket{op=\"%s\",le=\"%.6g\"} %llu\n", op,
                          dm_metrics_bucket_upper_ms(b) / 1000, cum);
        }
        /* No sum is kept: the histogram's buckets are what the quantiles come from. */
        dm_buf_printf(out, "dm_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n", op, total);
        dm_buf_printf(out, "dm_request_duration_seconds_count{op=\"%s\"} %llu\n", op, total);
    }
}

static void prom_per_backend(dm_buf *out, const char *name, const char *help, atomic_ullong *v,
                             bool caches_only)
{
    prom_head(out, name, "counter", help);
    for (int i = 0; i < DM_BK_COUNT; i++)
        if (!caches_only || i == DM_BK_L1 || i == DM_BK_DRAGONFLY)
            dm_buf_printf(out, "%s{backend=\"%s\"} %llu\n", name, dm_backend_name((dm_backend_id)i),
                          ld(&v[i]));
}

void dm_metrics_prometheus(dm_buf *out, const char *const *kind_names, int n_kinds)
{
    prom_ops(out);
    prom_per_backend(out, "dm_served_total", "Requests answered by each source.", g_m.served, false);
    prom_per_backend(out, "dm_cache_hits_total", "Cache lookups that hit, per level.", g_m.hits, true);
    prom_per_backend(out, "dm_cache_misses_total", "Cache lookups that missed, per level.", g_m.misses, true);
    prom_per_backend(out, "dm_backend_queries_total", "Read calls made to each backend.", g_m.queries, false);
    prom_per_backend(out, "dm_backend_failures_total", "Read calls that failed.", g_m.failures, false);
    prom_head(out, "dm_backend_query_seconds_total", "counter",
              "Time spent in read calls to each backend.");
    for (int i = 0; i < DM_BK_COUNT; i++)
        dm_buf_printf(out, "dm_backend_query_seconds_total{backend=\"%s\"} %.6f\n",
                      dm_backend_name((dm_backend_id)i), (double)ld(&g_m.query_ns[i]) / 1e9);
    prom_head(out, "dm_ingest_messages_total", "counter",
              "Messages settled by the write consumers: acked, dead_lettered, retried.");
    static const char *const outcomes[] = {"acked", "dead_lettered", "retried"};
    for (int k = 0; k < n_kinds && k < DM_KINDS; k++)
        for (int b = 0; b < DM_BK_COUNT; b++) {
            atomic_ullong *v[3] = {&g_m.acked[k][b], &g_m.dead[k][b], &g_m.retried[k][b]};
            if (ld(v[0]) + ld(v[1]) + ld(v[2]) == 0)
                continue;
            for (int o = 0; o < 3; o++)
                dm_buf_printf(out,
                              "dm_ingest_messages_total{kind=\"%s\",backend=\"%s\","
                              "outcome=\"%s\"} %llu\n",
                              kind_names[k], dm_backend_name((dm_backend_id)b), outcomes[o], ld(v[o]));
        }
    /* Messages over batches is the batch size the linger and the backlog gave. */
    prom_head(out, "dm_ingest_batches_total", "counter", "Batches the write consumers processed.");
    for (int k = 0; k < n_kinds && k < DM_KINDS; k++)
        for (int b = 0; b < DM_BK_COUNT; b++)
            if (ld(&g_m.batches[k][b]) > 0)
                dm_buf_printf(out, "dm_ingest_batches_total{kind=\"%s\",backend=\"%s\"} %llu\n",
                              kind_names[k], dm_backend_name((dm_backend_id)b), ld(&g_m.batches[k][b]));
}
