/* Process-wide counters. Every field is an atomic updated with relaxed ordering from any
 * thread: figures, not synchronisation. Owner: nobody; written by responder and consumer
 * threads, read by whoever encodes a metrics or health reply. */
#ifndef DM_METRICS_H
#define DM_METRICS_H

#include <stdbool.h>

#include "codec/enc.h"
#include "strategy/strategy.h"

#define DM_LAT_BUCKETS 40 /* 25 us .. ~10 min, x1.5 per bucket */

#define DM_LAST_ERROR_MAX 160

/* One answered request: its time and Status (5xx: a server error, remembered as the last;
 * 4xx: the client's mistake, counted apart). */
void dm_metrics_op(dm_op op, double ms, int status, const char *message);

typedef struct {
    unsigned long long count, errors, client_errors, total_ns;
    char last_error[DM_LAST_ERROR_MAX];
} dm_op_snapshot;
void dm_metrics_op_snapshot(dm_op op, dm_op_snapshot *out);
/* The operation's latency histogram since start: request counts per bucket, bucket i
 * holding times up to dm_metrics_bucket_upper_ms(i) (the last: everything above). Each
 * bucket is read alone, so a request counted meanwhile may show in one reading and not in
 * another: figures, not a consistent snapshot. */
void dm_metrics_op_histogram(dm_op op, unsigned long long buckets[DM_LAT_BUCKETS]);
double dm_metrics_bucket_upper_ms(int i);
/* The upper bound of the bucket holding quantile q of `total` requests: an estimate within
 * one bucket (x1.5); 0 when total is 0. Works on any histogram of these buckets, such as
 * the difference of two readings (the requests between them). */
double dm_metrics_quantile_ms(const unsigned long long buckets[DM_LAT_BUCKETS],
                              unsigned long long total, double q);
void dm_metrics_served(dm_backend_id id);            /* which source answered */
void dm_metrics_cache(dm_backend_id level, bool hit); /* l1 / dragonfly hit or miss */
/* A read call to a source while serving, and how long it took (monotonic ns): where a
 * request's time went, per database. */
void dm_metrics_backend(dm_backend_id id, bool failed, int64_t elapsed_ns);
void dm_metrics_ingest(int kind, dm_backend_id id, unsigned acked, unsigned dead, unsigned retried);
/* Writes four members, "cache", "operations", "backends" and "ingest", into a map the
 * caller opened (msgpack: counted as 4 entries). */
void dm_metrics_encode(dm_enc *e, const char *const *kind_names, int n_kinds);
/* The same counters in the Prometheus text format (version 0.0.4), appended to out:
 * dm_requests_total, dm_request_errors_total, dm_request_duration_seconds (histogram),
 * dm_served_total, dm_cache_hits_total, dm_cache_misses_total, dm_backend_queries_total,
 * dm_backend_failures_total, dm_backend_query_seconds_total,
 * dm_ingest_messages_total{outcome}, dm_ingest_batches_total. */
void dm_metrics_prometheus(dm_buf *out, const char *const *kind_names, int n_kinds);

#endif
