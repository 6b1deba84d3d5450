/* bench_correlations: dm.v1.correlations and dm.v1.graph latency, on demand and repeated,
 * beside a bare NATS echo of the same reply size.
 *
 *   bench_correlations [--requests N] [--warmup W] [--block B] [--timeout S]
 *
 * Needs GBP/USD, USD/JPY and an EURUSD series of 2021-2026 loaded in 1h (bench/run.sh
 * publishes the three data/..._H1_2021-01_2026-04.csv files with dmctl and waits for the consumers;
 * the EURUSD file goes in as EURB/USD). Every 1h series the workers hold takes part, as in
 * production.
 *
 * Requests, default window (the strategy's window_candles, 720 hours):
 *   {"symbol":"GBP/USD","threshold":0,"timeframe":"1h","end_date":T}
 *   {"start_symbol":"GBP/USD","depth":2,"threshold":0.3,"timeframe":"1h","end_date":T}
 * - on demand: every request a window no request asked before: T walks distinct hours of
 *   2021-03..2026-03 (a permutation), never repeated within a run;
 * - repeated: one fixed T (2025-06-30), answered once untimed, then asked again and again:
 *   what a cache would serve. Every repeated answer must be byte-equal to the first.
 * - echo: a responder in this process answering at once with a reply of the size of the
 *   real one (one echo per subject).
 * The six series run in alternating blocks of B requests, so drift on the shared machine
 * hits all alike. Every real reply must be status 200 with the expected window_end.
 *
 * Rows: per subject, on demand p50 / p99 (target p99 <= 50 ms) and repeated p50 / p99
 * against the echo (target p99 <= 2x the echo's p99). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../worker/model/names.h"
#include "common.h"

#define HOUR_MS 3600000LL
#define FIRST_END_MS 1614556800000LL /* 2021-03-01T00:00Z: a full window of 2021 data before it */
#define END_HOURS 44544              /* to 2026-03-31: hours on demand requests pick from */
#define STRIDE 7919 /* prime, coprime to END_HOURS: k -> k * STRIDE is a permutation */
#define REPEAT_END_MS 1751241600000LL /* 2025-06-30T00:00Z */
#define ON_DEMAND_TARGET_MS 50.0
#define CACHED_TARGET_RATIO 2.0
#define REQUEST_TIMEOUT_MS 10000

enum { K_CORR, K_GRAPH, K_COUNT };
enum { M_ECHO, M_DEMAND, M_REPEAT, M_COUNT };
static const char *const KIND_NAMES[K_COUNT] = {"correlations", "graph"};
/* The same answer: every byte up to "served_by" (a repeat may come from the cache). */
static bool same_answer(const char *a, int alen, const char *b, int blen)
{
    const char *ka = memmem(a, (size_t)alen, "\"served_by\"", 11), *kb = memmem(b, (size_t)blen, "\"served_by\"", 11);
    int na = ka ? (int)(ka - a) : alen, nb = kb ? (int)(kb - b) : blen;
    return na == nb && memcmp(a, b, (size_t)na) == 0;
}

static const char *const MODE_NAMES[M_COUNT] = {"echo", "on demand", "repeated"};

typedef struct {
    bench_samples lat;
    long errors;
    char last_error[256];
} series;

typedef struct {
    const char *subject;
    char echo_subject[64];
    bench_echo *echo;
    char *first;        /* the first answer to the repeated request */
    int first_len;      /* also the echo's reply size */
    long next_end;      /* on demand: the next permutation index */
    int symbols;        /* graph: symbols with candles in the window (its clusters) */
    double first_ms;    /* the first answer (a worker's first may load every close) */
    double warm_max_ms; /* the slowest untimed request */
    series s[M_COUNT];
} kind;

static void fail(series *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(series *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
    s->errors++;
}

static int make_body(int k, long long end_ms, char *buf, size_t cap)
{
    if (k == K_CORR)
        return snprintf(
            buf, cap,
            "{\"symbol\":\"GBP/USD\",\"threshold\":0,\"timeframe\":\"1h\",\"end_date\":%lld}",
            end_ms);
    return snprintf(
        buf, cap,
        "{\"start_symbol\":\"GBP/USD\",\"depth\":2,\"threshold\":0.3,\"timeframe\":\"1h\","
        "\"end_date\":%lld}",
        end_ms);
}

/* Distinct windows: corr takes even permutation indices, graph odd ones, off the hour. */
static long long demand_end(int k, long i)
{
    long idx = (2 * i + k) % END_HOURS;
    return FIRST_END_MS + (long long)((idx * (long long)STRIDE) % END_HOURS) * HOUR_MS + 1234;
}

/* Checks a real reply: 200, the window asked, the subject's arrays. */
static bool check(kind *kd, int k, series *s, natsMsg *r, long long end_ms)
{
    const char *data = natsMsg_GetData(r);
    int len = natsMsg_GetDataLength(r), status = bench_reply_status(r);
    if (status != 200) {
        fail(s, "status %d: %.200s", status, data ? data : "");
        return false;
    }
    cJSON *doc = cJSON_ParseWithLength(data, (size_t)len);
    const cJSON *we = cJSON_GetObjectItemCaseSensitive(doc, "window_end");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(doc, "served_by");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, k == K_CORR ? "data" : "nodes");
    bool ok = cJSON_IsNumber(we) && (long long)we->valuedouble == end_ms / HOUR_MS * HOUR_MS &&
              cJSON_IsString(by) && cJSON_IsArray(arr) &&
              (k == K_CORR || cJSON_GetArraySize(arr) > 0);
    if (ok && k == K_GRAPH) {
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(doc, "clusters"), *c;
        int n = 0;
        cJSON_ArrayForEach(c, cl) n += cJSON_GetArraySize(c);
        kd->symbols = n;
    }
    cJSON_Delete(doc);
    if (!ok)
        fail(s, "not the %s answer for window_end %lld: %.200s", KIND_NAMES[k],
             end_ms / HOUR_MS * HOUR_MS, data ? data : "");
    return ok;
}

static void one_request(natsConnection *nc, kind *kd, int k, int mode, bool record)
{
    series *s = &kd->s[mode];
    char body[256];
    long long end_ms = mode == M_DEMAND ? demand_end(k, kd->next_end++) : REPEAT_END_MS;
    int len = make_body(k, end_ms, body, sizeof body);
    natsMsg *r = NULL;
    int64_t ns = 0;
    natsStatus st = bench_request(nc, mode == M_ECHO ? kd->echo_subject : kd->subject, body, len,
                                  REQUEST_TIMEOUT_MS, &r, &ns);
    bool ok = st == NATS_OK;
    if (!ok)
        fail(s, "%s: %s", MODE_NAMES[mode], natsStatus_GetText(st));
    else if (mode == M_ECHO && (ok = natsMsg_GetDataLength(r) == kd->first_len) == false)
        fail(s, "echo: a reply of %d bytes, not %d", natsMsg_GetDataLength(r), kd->first_len);
    else if (mode != M_ECHO)
        ok = check(kd, k, s, r, end_ms);
    if (ok && mode == M_REPEAT && kd->first &&
        !same_answer(natsMsg_GetData(r), natsMsg_GetDataLength(r), kd->first, kd->first_len)) {
        fail(s, "a repeated answer differs from the first: %.200s", natsMsg_GetData(r));
        ok = false;
    }
    if (ok && mode == M_REPEAT && kd->first == NULL) {
        kd->first_len = natsMsg_GetDataLength(r);
        kd->first = malloc((size_t)kd->first_len);
        if (kd->first)
            memcpy(kd->first, natsMsg_GetData(r), (size_t)kd->first_len);
    }
    if (ok && record)
        bench_samples_add(&s->lat, ns);
    if (ok && !record && mode != M_ECHO && (double)ns / 1e6 > kd->warm_max_ms)
        kd->warm_max_ms = (double)ns / 1e6;
    natsMsg_Destroy(r);
}

typedef struct {
    int n, warmup, block, timeout_s;
} corr_opts;

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_correlations [--requests N] [--warmup W] [--block B] [--timeout S]\n"
            "  --requests N  timed requests per series (default 300; on demand at most %d)\n"
            "  --warmup W    untimed requests per series first (default 20)\n"
            "  --block B     requests per block when alternating series (default 25)\n"
            "  --timeout S   stop measuring after S seconds (default 600)\n",
            END_HOURS / 2 - 10000);
}

/* -1: run; otherwise the exit code. */
static int parse_options(int argc, char **argv, corr_opts *o)
{
    *o = (corr_opts){.n = 300, .warmup = 20, .block = 25, .timeout_s = 600};
    static const struct option opts[] = {
        {"requests", required_argument, 0, 'n'}, {"warmup", required_argument, 0, 'w'},
        {"block", required_argument, 0, 'b'},    {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o->n = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 'b': o->block = atoi(optarg); break;
        case 't': o->timeout_s = atoi(optarg); break;
        default: usage(); return c == 'h' ? 0 : 64;
        }
    }
    /* on demand windows never repeat: warm-up and timed requests share the permutation */
    if (o->n < 1 || o->warmup < 0 || o->n + o->warmup > END_HOURS / 2 - 10000 || o->block < 1 ||
        o->timeout_s < 1 || o->timeout_s > 7200) {
        usage();
        return 64;
    }
    return -1;
}

/* The first repeated answer (its size sizes the echo), then the echo. */
static bool prepare(natsConnection *nc, natsConnection *echo_nc, kind kd[K_COUNT])
{
    for (int k = 0; k < K_COUNT; k++) {
        kd[k].subject = k == K_CORR ? DM_SUBJ_CORRELATIONS : DM_SUBJ_GRAPH;
        snprintf(kd[k].echo_subject, sizeof kd[k].echo_subject, "bench.echo.%s", KIND_NAMES[k]);
        int64_t t = bench_now_ns();
        one_request(nc, &kd[k], k, M_REPEAT, false);
        if (kd[k].first == NULL) {
            fprintf(stderr,
                    "bench: %s did not answer: %s (load the hourly files first; "
                    "bench/run.sh --only correlations does)\n",
                    kd[k].subject, kd[k].s[M_REPEAT].last_error);
            return false;
        }
        kd[k].first_ms = (double)(bench_now_ns() - t) / 1e6;
        fprintf(stderr, "correlations: first %s answer %d bytes in %.1f ms\n", kd[k].subject,
                kd[k].first_len, kd[k].first_ms);
        if ((kd[k].echo = bench_echo_start(echo_nc, kd[k].echo_subject, kd[k].first_len,
                                           "application/json")) == NULL)
            return false;
    }
    return true;
}

static void run(natsConnection *nc, kind kd[K_COUNT], const corr_opts *o)
{
    for (int k = 0; k < K_COUNT; k++)
        for (int m = 0; m < M_COUNT; m++) {
            for (int i = 0; i < o->warmup; i++)
                one_request(nc, &kd[k], k, m, false);
            kd[k].s[m].errors = 0;
        }
    int64_t deadline = bench_now_ns() + (int64_t)o->timeout_s * 1000000000LL;
    bool timed_out = false;
    for (int done = 0; done < o->n && !timed_out;) {
        int b = o->n - done < o->block ? o->n - done : o->block;
        for (int k = 0; k < K_COUNT && !timed_out; k++)
            for (int m = 0; m < M_COUNT && !timed_out; m++) {
                for (int i = 0; i < b; i++)
                    one_request(nc, &kd[k], k, m, true);
                timed_out = bench_now_ns() > deadline;
            }
        done += b;
    }
    if (timed_out)
        fprintf(stderr, "bench: time limit of %d s reached; reporting what was measured\n",
                o->timeout_s);
}

/* Rows and a note per subject; 1 when a series had errors or no sample. */
static int report(kind *kd, int k)
{
    for (int m = 0; m < M_COUNT; m++)
        bench_samples_sort(&kd->s[m].lat);
    const bench_samples *e = &kd->s[M_ECHO].lat, *d = &kd->s[M_DEMAND].lat,
                        *r = &kd->s[M_REPEAT].lat;
    double e50 = bench_pct_ms(e, 50), e99 = bench_pct_ms(e, 99);
    long errors = kd->s[M_ECHO].errors + kd->s[M_DEMAND].errors + kd->s[M_REPEAT].errors;
    char name[64], v[64], base[64];
    snprintf(base, sizeof base, "%.3f / %.3f ms echo", e50, e99);
    snprintf(name, sizeof name, "%s on demand p50 / p99", KIND_NAMES[k]);
    snprintf(v, sizeof v, "%.2f / %.2f ms", bench_pct_ms(d, 50), bench_pct_ms(d, 99));
    bench_row(name, v, base, bench_pct_ms(d, 99) / e99, "p99 <= 50 ms",
              d->n > 0 && kd->s[M_DEMAND].errors == 0 &&
                  bench_pct_ms(d, 99) <= ON_DEMAND_TARGET_MS);
    snprintf(name, sizeof name, "%s repeated p50 / p99", KIND_NAMES[k]);
    snprintf(v, sizeof v, "%.2f / %.2f ms", bench_pct_ms(r, 50), bench_pct_ms(r, 99));
    bench_row(name, v, base, bench_pct_ms(r, 99) / e99, "<= 2.00",
              r->n > 0 && e->n > 0 && kd->s[M_REPEAT].errors == 0 &&
                  bench_pct_ms(r, 99) <= CACHED_TARGET_RATIO * e99);
    const series *bad = NULL;
    for (int m = 0; m < M_COUNT; m++)
        if (kd->s[m].errors)
            bad = &kd->s[m];
    bench_note(
        "%s: %zu / %zu / %zu timed (echo / on demand / repeated); p50 ratios on demand %.1f, "
        "repeated %.1f; max on demand %.2f ms, repeated %.2f ms; reply %d bytes; untimed: "
        "first answer %.1f ms, slowest %.1f ms (a worker's first request loads every 1h close "
        "from PostgreSQL); errors %ld%s%s",
        kd->subject, e->n, d->n, r->n, bench_pct_ms(d, 50) / e50, bench_pct_ms(r, 50) / e50,
        bench_max_ms(d), bench_max_ms(r), kd->first_len, kd->first_ms, kd->warm_max_ms, errors,
        bad ? "; last: " : "", bad ? bad->last_error : "");
    return errors || e->n == 0 || d->n == 0 || r->n == 0;
}

int main(int argc, char **argv)
{
    corr_opts o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    natsConnection *nc = bench_nats_connect("bench-correlations");
    natsConnection *echo_nc = bench_nats_connect_ex("bench-correlations-echo", true);
    kind kd[K_COUNT];
    memset(kd, 0, sizeof kd);
    if (nc == NULL || echo_nc == NULL || !prepare(nc, echo_nc, kd))
        return 1;
    fprintf(stderr, "correlations: warm-up %d, then %d timed requests per series in blocks of %d\n",
            o.warmup, o.n, o.block);
    run(nc, kd, &o);
    bench_note("correlations: window 720 hours (the default), GBP/USD, all 1h series the workers "
               "hold (%d with candles in the graph's last window); on demand: a window_end no "
               "request asked before (distinct hours of 2021-03..2026-03), repeated: 2025-06-30 "
               "again and again; a repeated correlations answer comes from Dragonfly's cache (the "
               "first one computed it), a repeated graph is computed again with warm caches "
               "(graphs are not cached)",
               kd[K_GRAPH].symbols);
    rc = 0;
    for (int k = 0; k < K_COUNT; k++)
        rc |= report(&kd[k], k);
    for (int k = 0; k < K_COUNT; k++) {
        bench_echo_stop(kd[k].echo);
        free(kd[k].first);
        for (int m = 0; m < M_COUNT; m++)
            bench_samples_free(&kd[k].s[m].lat);
    }
    natsConnection_Destroy(echo_nc);
    natsConnection_Destroy(nc);
    nats_Close();
    return rc;
}
