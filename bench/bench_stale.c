/* bench_stale: how soon a committed candle is what every worker answers, and whether a
 * latest-N answer ever has a hole, with every backend up or one stopped by the caller.
 *
 *   bench_stale [--symbol S] [--candles N] [--interval MS] [--label TEXT]
 *
 * Publishes 60 hourly candles of S (default STA/USD) and reads them until both workers'
 * L1 hold them; then publishes N more (default 200), one every MS ms (default 50), each
 * with a synchronous PubAck, and after each polls dm.v1.candles.latest (limit 50) on a
 * send-at-once connection until the new candle is the newest answered, then until 20
 * answers in a row had it (requests go to either worker). Every answer is checked: one
 * candle per hour without a hole, closes as published.
 *
 * Rows: "staleness<label>: first fresh" and "...: 20 fresh in a row", p50 / p99 from the
 * PubAck (the time the write was safe), target p99 < 50 ms; "holes<label>": answers with a
 * hole or a value never published, target 0. bench/run.sh runs it with every backend up
 * and again with Redis (Dragonfly) stopped. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../worker/model/model.h"
#include "../worker/model/names.h"
#include "../worker/model/names.h"
#include "common.h"

#define HOUR_MS 3600000LL
#define PRELOAD 60
#define LIMIT 50
#define IN_A_ROW 20
#define TIMEOUT_NS (5LL * 1000000000LL) /* one candle never fresh within this: counted, skipped */

typedef struct {
    char symbol[32], token[DM_TOKEN_MAX + 1];
    long long base; /* open time of candle 0 */
} series;

static double close_of(int i) { return 1.1 + i / 1e5; }

static bool publish(jsCtx *js, const series *s, int i)
{
    char subject[64], body[300];
    snprintf(subject, sizeof subject, DM_SUBJ_CANDLE_FMT, s->token, "1h");
    snprintf(body, sizeof body,
             "{\"symbol\":\"%s\",\"timeframe\":\"1h\",\"timestamp\":%lld,\"open\":1.1,\"high\":1.2,"
             "\"low\":1.0,\"close\":%.5f,\"source\":\"bench\"}",
             s->symbol, s->base + i * HOUR_MS, close_of(i));
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_Publish(&pa, js, subject, body, (int)strlen(body), NULL, &jerr);
    jsPubAck_Destroy(pa);
    if (st != NATS_OK)
        bench_nats_fail("publish", st);
    return st == NATS_OK;
}

/* The newest candle index answered; -1 on no answer. *bad: a hole or a foreign value. */
static int newest(natsConnection *nc, const series *s, bool *bad)
{
    char q[160];
    snprintf(q, sizeof q, "{\"symbol\":\"%s\",\"timeframe\":\"1h\",\"limit\":%d}", s->symbol, LIMIT);
    natsMsg *r = NULL;
    *bad = false;
    if (natsConnection_RequestString(&r, nc, DM_SUBJ_CANDLES_LATEST, q, 2000) != NATS_OK)
        return -1;
    cJSON *root = cJSON_ParseWithLength(natsMsg_GetData(r), (size_t)natsMsg_GetDataLength(r));
    natsMsg_Destroy(r);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data"), *c;
    int last = -1;
    cJSON_ArrayForEach(c, d)
    {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(c, "timestamp");
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(c, "close");
        int i = cJSON_IsNumber(ts) ? (int)(((long long)ts->valuedouble - s->base) / HOUR_MS) : -2;
        if (!cJSON_IsNumber(cl) || fabs(cl->valuedouble - close_of(i)) > 1e-9 || (last >= 0 && i != last + 1))
            *bad = true;
        last = i;
    }
    if (!cJSON_IsArray(d))
        last = -1;
    cJSON_Delete(root);
    return last;
}

typedef struct {
    const char *symbol, *label;
    int n, interval;
} stale_opts;

/* -1: run; otherwise the exit code. */
static int parse_options(int argc, char **argv, stale_opts *o)
{
    *o = (stale_opts){.symbol = "STA/USD", .label = "", .n = 200, .interval = 50};
    static const struct option longs[] = {{"symbol", required_argument, 0, 's'},
                                          {"candles", required_argument, 0, 'n'},
                                          {"interval", required_argument, 0, 'i'},
                                          {"label", required_argument, 0, 'l'},
                                          {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 's': o->symbol = optarg; break;
        case 'n': o->n = atoi(optarg); break;
        case 'i': o->interval = atoi(optarg); break;
        case 'l': o->label = optarg; break;
        default:
            fprintf(stderr, "usage: bench_stale [--symbol S] [--candles N] [--interval MS] [--label TEXT]\n");
            return 2;
        }
    }
    if (o->n < 1 || o->n > 5000 || o->interval < 1 || o->interval > 10000 ||
        strlen(o->symbol) > 20 || !strchr(o->symbol, '/')) {
        fprintf(stderr, "bench_stale: --candles 1..5000, --interval 1..10000, --symbol like ABC/USD\n");
        return 2;
    }
    return -1;
}

static void series_init(series *s, const char *symbol)
{
    snprintf(s->symbol, sizeof s->symbol, "%s", symbol);
    dm_symbol_token(symbol, s->token);
    /* A fresh stretch of hours per run: from the current hour, 20,000 hours back (a past
     * no earlier run of the same symbol reaches, since each run starts later). */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s->base = ((long long)now.tv_sec * 1000 / HOUR_MS - 20000) * HOUR_MS;
}

/* The first PRELOAD candles, then until 40 answers in a row hold them all. */
static bool preload(jsCtx *js, natsConnection *poll, const series *s)
{
    for (int i = 0; i < PRELOAD; i++)
        if (!publish(js, s, i))
            return false;
    bool bad;
    int64_t until = bench_now_ns() + 30LL * 1000000000LL;
    int warm = 0;
    while (warm < 40 && bench_now_ns() < until) {
        warm = newest(poll, s, &bad) == PRELOAD - 1 && !bad ? warm + 1 : 0;
        bench_sleep_ms(5);
    }
    if (warm < 40)
        fprintf(stderr, "bench_stale: the first %d candles were not answered within 30 s\n", PRELOAD);
    return warm >= 40;
}

typedef struct {
    bench_samples first, all;
    long holes, answers, never;
} stale_result;

/* Publishes candle i and polls until IN_A_ROW answers hold it (or TIMEOUT_NS). */
static bool measure_one(jsCtx *js, natsConnection *poll, const series *s, int i, stale_result *r)
{
    if (!publish(js, s, i))
        return false;
    bool bad;
    int64_t acked = bench_now_ns(), first_ns = -1;
    int row = 0;
    while (row < IN_A_ROW && bench_now_ns() - acked < TIMEOUT_NS) {
        int got = newest(poll, s, &bad);
        r->answers += got >= 0;
        r->holes += got >= 0 && bad;
        row = got == i && !bad ? row + 1 : 0;
        if (row == 1 && first_ns < 0)
            first_ns = bench_now_ns() - acked;
    }
    if (row < IN_A_ROW) {
        r->never++;
    } else {
        bench_samples_add(&r->first, first_ns);
        bench_samples_add(&r->all, bench_now_ns() - acked);
    }
    return true;
}

static bool measure(jsCtx *js, natsConnection *poll, const series *s, const stale_opts *o,
                    stale_result *r)
{
    for (int i = PRELOAD; i < PRELOAD + o->n; i++) {
        int64_t t0 = bench_now_ns();
        if (!measure_one(js, poll, s, i, r))
            return false;
        int64_t wait_ms = o->interval - (bench_now_ns() - t0) / 1000000;
        if (wait_ms > 0)
            bench_sleep_ms((int)wait_ms);
    }
    return true;
}

static void report(const stale_opts *o, stale_result *r)
{
    bench_samples_sort(&r->first);
    bench_samples_sort(&r->all);
    char name[128], v[96];
    const char *what[2] = {"first fresh", "20 fresh in a row"};
    bench_samples *sm[2] = {&r->first, &r->all};
    for (int j = 0; j < 2; j++) {
        double p99 = bench_pct_ms(sm[j], 99);
        snprintf(name, sizeof name, "staleness%s: %s", o->label, what[j]);
        snprintf(v, sizeof v, "%.2f / %.2f ms", bench_pct_ms(sm[j], 50), p99);
        bench_row(name, v, "p50 / p99 from PubAck", p99 / 50.0, "p99 < 50 ms", sm[j]->n > 0 && r->never == 0 && p99 < 50.0);
    }
    snprintf(name, sizeof name, "holes%s", o->label);
    snprintf(v, sizeof v, "%ld of %ld answers", r->holes, r->answers);
    bench_row(name, v, "a hole or a value never published", (double)r->holes, "0", r->holes == 0 && r->answers > 0);
    bench_note("staleness%s: %d candles of %s one every %d ms, %ld never fresh within 5 s; max %.2f ms first fresh, %.2f ms 20 in a row",
               o->label, o->n, o->symbol, o->interval, r->never, bench_max_ms(&r->first), bench_max_ms(&r->all));
}

int main(int argc, char **argv)
{
    stale_opts o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    series s;
    series_init(&s, o.symbol);
    natsConnection *pub = bench_nats_connect("bench-stale-pub"), *poll = bench_nats_connect_ex("bench-stale-poll", true);
    jsCtx *js = NULL;
    if (pub == NULL || poll == NULL || natsConnection_JetStream(&js, pub, NULL) != NATS_OK)
        return 1;
    stale_result r = {0};
    if (!preload(js, poll, &s) || !measure(js, poll, &s, &o, &r))
        return 1;
    report(&o, &r);
    bench_samples_free(&r.first);
    bench_samples_free(&r.all);
    jsCtx_Destroy(js);
    natsConnection_Destroy(pub);
    natsConnection_Destroy(poll);
    nats_Close();
    return 0;
}
