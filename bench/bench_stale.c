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

#include "common.h"

#define HOUR_MS 3600000LL
#define PRELOAD 60
#define LIMIT 50
#define IN_A_ROW 20
#define TIMEOUT_NS (5LL * 1000000000LL) /* one candle never fresh within this: counted, skipped */

typedef struct {
    char symbol[32], token[32];
    long long base; /* open time of candle 0 */
} series;

static double close_of(int i) { return 1.1 + i / 1e5; }

static bool publish(jsCtx *js, const series *s, int i)
{
    char subject[64], body[300];
    snprintf(subject, sizeof subject, "market.candle.%s.1h", s->token);
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
    if (natsConnection_RequestString(&r, nc, "dm.v1.candles.latest", q, 2000) != NATS_OK)
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

int main(int argc, char **argv)
{
    const char *symbol = "STA/USD", *label = "";
    int n = 200, interval = 50;
    static const struct option longs[] = {{"symbol", required_argument, 0, 's'},
                                          {"candles", required_argument, 0, 'n'},
                                          {"interval", required_argument, 0, 'i'},
                                          {"label", required_argument, 0, 'l'},
                                          {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 's': symbol = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'i': interval = atoi(optarg); break;
        case 'l': label = optarg; break;
        default:
            fprintf(stderr, "usage: bench_stale [--symbol S] [--candles N] [--interval MS] [--label TEXT]\n");
            return 2;
        }
    }
    if (n < 1 || n > 5000 || interval < 1 || interval > 10000 || strlen(symbol) > 20 || !strchr(symbol, '/')) {
        fprintf(stderr, "bench_stale: --candles 1..5000, --interval 1..10000, --symbol like ABC/USD\n");
        return 2;
    }
    series s;
    snprintf(s.symbol, sizeof s.symbol, "%s", symbol);
    size_t k = 0;
    for (const char *p = symbol; *p; p++)
        if (*p != '/')
            s.token[k++] = *p;
    s.token[k] = '\0';
    /* A fresh stretch of hours per run: from the current hour, 20,000 hours back (a past
     * no earlier run of the same symbol reaches, since each run starts later). */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s.base = ((long long)now.tv_sec * 1000 / HOUR_MS - 20000) * HOUR_MS;
    natsConnection *pub = bench_nats_connect("bench-stale-pub"), *poll = bench_nats_connect_ex("bench-stale-poll", true);
    jsCtx *js = NULL;
    if (pub == NULL || poll == NULL || natsConnection_JetStream(&js, pub, NULL) != NATS_OK)
        return 1;
    for (int i = 0; i < PRELOAD; i++)
        if (!publish(js, &s, i))
            return 1;
    bool bad;
    int64_t until = bench_now_ns() + 30LL * 1000000000LL;
    int warm = 0;
    while (warm < 40 && bench_now_ns() < until) {
        warm = newest(poll, &s, &bad) == PRELOAD - 1 && !bad ? warm + 1 : 0;
        bench_sleep_ms(5);
    }
    if (warm < 40) {
        fprintf(stderr, "bench_stale: the first %d candles were not answered within 30 s\n", PRELOAD);
        return 1;
    }
    bench_samples first = {0}, all = {0};
    long holes = 0, answers = 0, never = 0;
    for (int i = PRELOAD; i < PRELOAD + n; i++) {
        int64_t t0 = bench_now_ns();
        if (!publish(js, &s, i))
            return 1;
        int64_t acked = bench_now_ns(), first_ns = -1;
        int row = 0;
        while (row < IN_A_ROW && bench_now_ns() - acked < TIMEOUT_NS) {
            int got = newest(poll, &s, &bad);
            answers += got >= 0;
            holes += got >= 0 && bad;
            row = got == i && !bad ? row + 1 : 0;
            if (row == 1 && first_ns < 0)
                first_ns = bench_now_ns() - acked;
        }
        if (row < IN_A_ROW) {
            never++;
        } else {
            bench_samples_add(&first, first_ns);
            bench_samples_add(&all, bench_now_ns() - acked);
        }
        int64_t wait_ms = interval - (bench_now_ns() - t0) / 1000000;
        if (wait_ms > 0)
            bench_sleep_ms((int)wait_ms);
    }
    bench_samples_sort(&first);
    bench_samples_sort(&all);
    char name[128], v[96];
    const char *what[2] = {"first fresh", "20 fresh in a row"};
    bench_samples *sm[2] = {&first, &all};
    for (int j = 0; j < 2; j++) {
        double p99 = bench_pct_ms(sm[j], 99);
        snprintf(name, sizeof name, "staleness%s: %s", label, what[j]);
        snprintf(v, sizeof v, "%.2f / %.2f ms", bench_pct_ms(sm[j], 50), p99);
        bench_row(name, v, "p50 / p99 from PubAck", p99 / 50.0, "p99 < 50 ms", sm[j]->n > 0 && never == 0 && p99 < 50.0);
    }
    snprintf(name, sizeof name, "holes%s", label);
    snprintf(v, sizeof v, "%ld of %ld answers", holes, answers);
    bench_row(name, v, "a hole or a value never published", (double)holes, "0", holes == 0 && answers > 0);
    bench_note("staleness%s: %d candles of %s one every %d ms, %ld never fresh within 5 s; max %.2f ms first fresh, %.2f ms 20 in a row",
               label, n, symbol, interval, never, bench_max_ms(&first), bench_max_ms(&all));
    bench_samples_free(&first);
    bench_samples_free(&all);
    jsCtx_Destroy(js);
    natsConnection_Destroy(pub);
    natsConnection_Destroy(poll);
    nats_Close();
    return 0;
}
