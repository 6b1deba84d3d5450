#include "history.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "metrics.h"

typedef struct {
    int64_t t_ms;
    double rate[DM_OP_COUNT], errors[DM_OP_COUNT]; /* per second over the interval */
    double p50[DM_OP_COUNT], p99[DM_OP_COUNT];     /* ms; meaningless where rate is 0 */
} sample;

/* What one reading of the counters held: the next sample is the difference. */
typedef struct {
    int64_t t_ms;
    unsigned long long count[DM_OP_COUNT], errors[DM_OP_COUNT];
    unsigned long long buckets[DM_OP_COUNT][DM_LAT_BUCKETS];
} reading;

struct dm_history {
    pthread_mutex_t mu; /* guards ring, head and n */
    sample ring[DM_HISTORY_SAMPLES];
    size_t head, n; /* the next slot to write; samples held */
    reading last;   /* the sampling thread's own */
    bool primed;    /* last holds a reading */
};

dm_history *dm_history_create(void)
{
    dm_history *h = calloc(1, sizeof *h);
    if (h)
        pthread_mutex_init(&h->mu, NULL);
    return h;
}

void dm_history_destroy(dm_history *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void read_counters(reading *r, int64_t now_ms)
{
    r->t_ms = now_ms;
    for (int op = 0; op < DM_OP_COUNT; op++) {
        dm_op_snapshot snap;
        dm_metrics_op_snapshot((dm_op)op, &snap);
        r->count[op] = snap.count;
        r->errors[op] = snap.errors;
        dm_metrics_op_histogram((dm_op)op, r->buckets[op]);
    }
}

/* The requests between two readings. Counters only grow, but each is read apart from the
 * others: a difference that would be negative counts as none. */
static unsigned long long since(unsigned long long now, unsigned long long then)
{
    return now > then ? now - then : 0;
}

static void difference(const reading *then, const reading *now, sample *s)
{
    double secs = (double)(now->t_ms - then->t_ms) / 1000.0;
    s->t_ms = now->t_ms;
    for (int op = 0; op < DM_OP_COUNT; op++) {
        unsigned long long b[DM_LAT_BUCKETS], n = 0;
        for (int i = 0; i < DM_LAT_BUCKETS; i++)
            n += b[i] = since(now->buckets[op][i], then->buckets[op][i]);
        s->rate[op] = (double)since(now->count[op], then->count[op]) / secs;
        s->errors[op] = (double)since(now->errors[op], then->errors[op]) / secs;
        s->p50[op] = dm_metrics_quantile_ms(b, n, 0.50);
        s->p99[op] = dm_metrics_quantile_ms(b, n, 0.99);
    }
}

void dm_history_tick(dm_history *h, int64_t now_ms)
{
    /* A clock set back starts over rather than waiting for the old time to come again. */
    if (h->primed && now_ms >= h->last.t_ms && now_ms - h->last.t_ms < DM_HISTORY_INTERVAL_MS)
        return;
    reading now;
    read_counters(&now, now_ms);
    if (h->primed && now_ms > h->last.t_ms) {
        sample s;
        difference(&h->last, &now, &s);
        pthread_mutex_lock(&h->mu);
        h->ring[h->head] = s;
        h->head = (h->head + 1) % DM_HISTORY_SAMPLES;
        h->n += h->n < DM_HISTORY_SAMPLES;
        pthread_mutex_unlock(&h->mu);
    }
    h->last = now;
    h->primed = true;
}

/* The i-th held sample, oldest first. Called with the mutex held. */
static const sample *held(const dm_history *h, size_t i)
{
    return &h->ring[(h->head + DM_HISTORY_SAMPLES - h->n + i) % DM_HISTORY_SAMPLES];
}

enum series { RATE, ERRORS, P50, P99 };
static const char *const SERIES_KEYS[] = {"rate", "errors", "p50_ms", "p99_ms"};

static void encode_series(const dm_history *h, dm_enc *e, int op, enum series which)
{
    dm_enc_key(e, SERIES_KEYS[which]);
    dm_enc_arr(e, h->n);
    for (size_t i = 0; i < h->n; i++) {
        const sample *s = held(h, i);
        if (which == RATE)
            dm_enc_f64(e, s->rate[op]);
        else if (which == ERRORS)
            dm_enc_f64(e, s->errors[op]);
        else if (s->rate[op] == 0) /* no request, no latency: a gap in the chart, not a 0 */
            dm_enc_null(e);
        else
            dm_enc_f64(e, which == P50 ? s->p50[op] : s->p99[op]);
    }
    dm_enc_arr_end(e);
}

static bool op_seen(const dm_history *h, int op)
{
    for (size_t i = 0; i < h->n; i++)
        if (held(h, i)->rate[op] > 0)
            return true;
    return false;
}

void dm_history_encode(dm_history *h, dm_enc *e)
{
    pthread_mutex_lock(&h->mu);
    dm_enc_map(e, 3);
    dm_enc_key(e, "interval_ms");
    dm_enc_i64(e, DM_HISTORY_INTERVAL_MS);
    dm_enc_key(e, "t_ms");
    dm_enc_arr(e, h->n);
    for (size_t i = 0; i < h->n; i++)
        dm_enc_i64(e, held(h, i)->t_ms);
    dm_enc_arr_end(e);
    size_t ops = 0;
    for (int op = 0; op < DM_OP_COUNT; op++)
        ops += op_seen(h, op);
    dm_enc_key(e, "operations");
    dm_enc_map(e, ops);
    for (int op = 0; op < DM_OP_COUNT; op++) {
        if (!op_seen(h, op))
            continue;
        dm_enc_key(e, dm_op_name((dm_op)op));
        dm_enc_map(e, 4);
        for (int which = RATE; which <= P99; which++)
            encode_series(h, e, op, (enum series)which);
        dm_enc_map_end(e);
    }
    dm_enc_map_end(e);
    dm_enc_map_end(e);
    pthread_mutex_unlock(&h->mu);
}
