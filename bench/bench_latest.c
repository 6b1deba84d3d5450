/* bench_latest: request/reply latency of dm.v1.candles.latest against a bare NATS echo.
 *
 *   bench_latest [--requests N] [--warmup W] [--block B] [--timeout S]
 *
 * Needs EUR/USD 1h candles loaded (bench/run.sh publishes data/EURUSD_H1_2010-10_2021-04.csv
 * with dmctl and waits for the consumers first).
 *
 * Baseline (the floor): an echo responder in this process, on its own connection with
 * natsOptions_SetSendAsap (every publish is written at once, no flusher in between), with
 * a core subscription on bench.echo.<enc>, replying a fixed byte string of exactly the
 * size of the real limit=100 reply in that encoding (measured with one real request
 * first), with the same Content-Type and Status headers the worker sets.
 *
 * Real: {"symbol":"EUR/USD","timeframe":"1h","limit":100} to dm.v1.candles.latest, in
 * JSON and in msgpack (Content-Type application/msgpack, msgpack map body). Every reply
 * must be status 200 with 100 candles and a served_by.
 *
 * One requester, sequential round trips. After W warm-up requests of each series, the
 * series (echo json, real json, echo msgpack, real msgpack, slow echo json) run in
 * alternating blocks of B requests until each has N samples, so drift on the shared
 * machine hits all of them alike. Only the round trip is timed (message creation and
 * reply checks are outside the clock).
 *
 * Targets: p50 <= 1.5 x and p99 <= 2 x the floor echo of the same encoding. A fifth,
 * informational series is the same JSON echo on a connection with the client library's
 * defaults, whose flusher thread waits for more data before it writes a reply (up to
 * 1 ms): a slower baseline, reported as an extra row named as such.
 *
 * CPU: the stack's processes (workers, nats-server) and this process are sampled around
 * every timed block, so each series gets its own CPU microseconds per request.
 *
 * Output: ROW/NOTE lines on stdout for bench/run.sh, progress on stderr. */
#include <getopt.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../worker/codec/doc.h"
#include "common.h"

#define SUBJ_REAL "dm.v1.candles.latest"
#define SUBJ_ECHO_JSON "bench.echo.json"
#define SUBJ_ECHO_MSGPACK "bench.echo.msgpack"
#define SUBJ_ECHO_SLOW "bench.echo.slow"
#define REQ_JSON "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":100}"
#define LIMIT 100
#define REQUEST_TIMEOUT_MS 5000
#define MAX_SERVED 8

enum { S_ECHO_JSON, S_REAL_JSON, S_ECHO_MP, S_REAL_MP, S_ECHO_SLOW, S_COUNT };
static const char *const SERIES_NAMES[S_COUNT] = {"echo json", "real json", "echo msgpack",
                                                  "real msgpack", "slow echo json"};

typedef struct {
    const char *subject;
    const char *body;
    int body_len;
    const char *content_type;
    bool real;
    int expect_len; /* echo: exact reply size */
    bench_samples lat;
    double cpu[BENCH_CPU_COUNT]; /* CPU seconds over the timed blocks of this series */
    long errors;
    char served_name[MAX_SERVED][24];
    long served_count[MAX_SERVED];
    int n_served;
    int last_len;
    char last_error[256];
} series;

static void count_served(series *s, const char *name)
{
    for (int i = 0; i < s->n_served; i++)
        if (strcmp(s->served_name[i], name) == 0) {
            s->served_count[i]++;
            return;
        }
    if (s->n_served < MAX_SERVED) {
        snprintf(s->served_name[s->n_served], sizeof s->served_name[0], "%s", name);
        s->served_count[s->n_served++] = 1;
    }
}

/* Checks a real reply: status 200, data = 100 candles, served_by a string. */
static bool check_real(series *s, natsMsg *r)
{
    const char *st = NULL, *ct = NULL;
    int status = natsMsgHeader_Get(r, "Status", &st) == NATS_OK && st ? atoi(st) : 200;
    natsMsgHeader_Get(r, "Content-Type", &ct);
    const char *data = natsMsg_GetData(r);
    size_t len = (size_t)natsMsg_GetDataLength(r);
    if (status != 200) {
        snprintf(s->last_error, sizeof s->last_error, "status %d: %.150s", status,
                 data ? data : "");
        return false;
    }
    cJSON *doc = NULL;
    dm_err err = {0};
    dm_encoding enc = dm_doc_detect(ct, data, len);
    if (dm_doc_parse(data, len, enc, 64u << 20, &doc, &err) != DM_OK || doc == NULL) {
        snprintf(s->last_error, sizeof s->last_error, "unparsable reply: %.200s", err.message);
        return false;
    }
    bool ok = true;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(doc, "served_by");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != LIMIT) {
        snprintf(s->last_error, sizeof s->last_error, "expected %d candles, got %d", LIMIT,
                 cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1);
        ok = false;
    } else if (!cJSON_IsString(by) || by->valuestring[0] == '\0') {
        snprintf(s->last_error, sizeof s->last_error, "reply without served_by");
        ok = false;
    } else {
        count_served(s, by->valuestring);
    }
    cJSON_Delete(doc);
    return ok;
}

/* One timed round trip; record = false for warm-up. */
static void one_request(natsConnection *nc, series *s, bool record)
{
    natsMsg *m = NULL, *r = NULL;
    if (natsMsg_Create(&m, s->subject, NULL, s->body, s->body_len) != NATS_OK ||
        natsMsgHeader_Set(m, "Content-Type", s->content_type) != NATS_OK) {
        natsMsg_Destroy(m);
        s->errors++;
        return;
    }
    int64_t t = bench_now_ns();
    natsStatus st = natsConnection_RequestMsg(&r, nc, m, REQUEST_TIMEOUT_MS);
    int64_t dt = bench_now_ns() - t;
    natsMsg_Destroy(m);
    if (st != NATS_OK) {
        snprintf(s->last_error, sizeof s->last_error, "request: %s", natsStatus_GetText(st));
        s->errors++;
        return;
    }
    s->last_len = natsMsg_GetDataLength(r);
    bool ok = s->real ? check_real(s, r) : s->last_len == s->expect_len;
    if (!ok && !s->real)
        snprintf(s->last_error, sizeof s->last_error, "echo reply of %d bytes, expected %d",
                 s->last_len, s->expect_len);
    natsMsg_Destroy(r);
    if (!ok)
        s->errors++;
    else if (record)
        bench_samples_add(&s->lat, dt);
}

/* The real reply's body size in one encoding (one untimed request). Right after the load
 * a worker may still judge its sources' copies behind (its progress check runs apart
 * from dmctl lag) and answer 503 for a while: asked again for up to 60 s. */
static int measure_reply(natsConnection *nc, series *s)
{
    s->n_served = 0;
    int64_t give_up = bench_now_ns() + 60 * 1000000000LL;
    for (;;) {
        s->errors = 0;
        one_request(nc, s, false);
        if (!s->errors || bench_now_ns() > give_up)
            break;
        bench_sleep_ms(100);
    }
    if (s->errors) {
        fprintf(stderr, "bench: %s (%s): %s\n", s->subject, s->content_type, s->last_error);
        return -1;
    }
    memset(s->served_count, 0, sizeof s->served_count);
    s->n_served = 0;
    return s->last_len;
}

static char *msgpack_request(int *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "symbol", 6);
    msgpack_pack_str_with_body(&pk, "EUR/USD", 7);
    msgpack_pack_str_with_body(&pk, "timeframe", 9);
    msgpack_pack_str_with_body(&pk, "1h", 2);
    msgpack_pack_str_with_body(&pk, "limit", 5);
    msgpack_pack_int(&pk, LIMIT);
    *len = (int)sb.size;
    return sb.data; /* free() releases it */
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_latest [--requests N] [--warmup W] [--block B] [--timeout S]\n"
            "  --requests N  timed requests per series (default 20000)\n"
            "  --warmup W    untimed requests per series first (default 1000)\n"
            "  --block B     requests per block when alternating series (default 1000)\n"
            "  --timeout S   stop measuring after S seconds (default 600)\n");
}

/* Microseconds of CPU per timed request of a series: part c, or every part when c < 0. */
static double cpu_us(const series *s, int c)
{
    double sum = 0;
    for (int i = 0; i < BENCH_CPU_COUNT; i++)
        if (c < 0 || c == i)
            sum += s->cpu[i];
    return s->lat.n ? sum * 1e6 / (double)s->lat.n : 0;
}

/* The verdicts against the floor echo of the same encoding: p50 <= 1.5x, p99 <= 2x. */
static void row_for(const char *enc, series *echo, series *real)
{
    char name[64], v[64], b[64];
    double p50 = bench_pct_ms(&real->lat, 50), e50 = bench_pct_ms(&echo->lat, 50);
    double p99 = bench_pct_ms(&real->lat, 99), e99 = bench_pct_ms(&echo->lat, 99);
    bool clean = real->errors == 0 && echo->errors == 0;
    snprintf(name, sizeof name, "candles.latest p50 (%s)", enc);
    snprintf(v, sizeof v, "%.3f ms", p50);
    snprintf(b, sizeof b, "%.3f ms floor echo", e50);
    bench_row(name, v, b, p50 / e50, "<= 1.50", clean && p50 <= 1.5 * e50);
    snprintf(name, sizeof name, "candles.latest p99 (%s)", enc);
    snprintf(v, sizeof v, "%.3f ms", p99);
    snprintf(b, sizeof b, "%.3f ms floor echo", e99);
    bench_row(name, v, b, p99 / e99, "<= 2.00", clean && p99 <= 2.0 * e99);
    char served[256] = "";
    size_t k = 0;
    for (int i = 0; i < real->n_served; i++)
        k += (size_t)snprintf(served + k, sizeof served - k, "%s%s=%ld", i ? " " : "",
                              real->served_name[i], real->served_count[i]);
    bench_note("latest %s: %zu timed requests each; real mean %.3f ms, max %.3f ms; floor echo "
               "mean %.3f ms, max %.3f ms; reply %d bytes; served_by %s; CPU per request: "
               "real %.1f us (workers %.1f, nats-server %.1f, bench %.1f), floor echo %.1f us "
               "(nats-server %.1f, bench %.1f); errors real %ld echo %ld%s%s",
               enc, real->lat.n, bench_mean_ms(&real->lat), bench_max_ms(&real->lat),
               bench_mean_ms(&echo->lat), bench_max_ms(&echo->lat), echo->expect_len, served,
               cpu_us(real, -1), cpu_us(real, BENCH_CPU_WORKERS), cpu_us(real, BENCH_CPU_NATS),
               cpu_us(real, BENCH_CPU_SELF), cpu_us(echo, -1), cpu_us(echo, BENCH_CPU_NATS),
               cpu_us(echo, BENCH_CPU_SELF), real->errors, echo->errors,
               real->errors ? "; last: " : "", real->errors ? real->last_error : "");
}

typedef struct {
    int n, warmup, block, timeout_s;
} latest_opts;

/* -1: run; otherwise the exit code. */
static int parse_options(int argc, char **argv, latest_opts *o)
{
    *o = (latest_opts){.n = 20000, .warmup = 1000, .block = 1000, .timeout_s = 600};
    static const struct option opts[] = {{"requests", required_argument, 0, 'n'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"block", required_argument, 0, 'b'},
                                         {"timeout", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
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
    if (o->n < 1 || o->n > 10000000 || o->warmup < 0 || o->warmup > 1000000 || o->block < 1 ||
        o->timeout_s < 1 || o->timeout_s > 7200) {
        usage();
        return 64;
    }
    return -1;
}

static void init_series(series s[S_COUNT], const char *mp_body, int mp_len)
{
    memset(s, 0, sizeof(series) * S_COUNT);
    s[S_REAL_JSON] = (series){.subject = SUBJ_REAL, .body = REQ_JSON,
                              .body_len = (int)strlen(REQ_JSON),
                              .content_type = DM_CT_JSON, .real = true};
    s[S_REAL_MP] = (series){.subject = SUBJ_REAL, .body = mp_body, .body_len = mp_len,
                            .content_type = DM_CT_MSGPACK, .real = true};
    s[S_ECHO_JSON] = (series){.subject = SUBJ_ECHO_JSON, .body = REQ_JSON,
                              .body_len = (int)strlen(REQ_JSON), .content_type = DM_CT_JSON};
    s[S_ECHO_MP] = (series){.subject = SUBJ_ECHO_MSGPACK, .body = mp_body, .body_len = mp_len,
                            .content_type = DM_CT_MSGPACK};
    s[S_ECHO_SLOW] = (series){.subject = SUBJ_ECHO_SLOW, .body = REQ_JSON,
                              .body_len = (int)strlen(REQ_JSON), .content_type = DM_CT_JSON};
}

typedef struct {
    natsConnection *nc, *floor_nc, *slow_nc; /* floor: SendAsap; slow: library defaults */
    bench_echo *json, *mp, *slow;
} echoes;

/* Sizes the echo's replies like the real ones (so it moves the same bytes) and starts it. */
static bool start_echo(echoes *e, series s[S_COUNT])
{
    int json_len = measure_reply(e->nc, &s[S_REAL_JSON]);
    int mp_reply_len = json_len > 0 ? measure_reply(e->nc, &s[S_REAL_MP]) : -1;
    if (json_len <= 0 || mp_reply_len <= 0) {
        fprintf(stderr, "bench: " SUBJ_REAL " EUR/USD 1h limit 100 did not answer with %d "
                        "candles; load them first (bench/run.sh does)\n", LIMIT);
        return false;
    }
    fprintf(stderr, "latest: real reply %d bytes (json), %d bytes (msgpack)\n", json_len,
            mp_reply_len);
    s[S_ECHO_JSON].expect_len = json_len;
    s[S_ECHO_MP].expect_len = mp_reply_len;
    s[S_ECHO_SLOW].expect_len = json_len;
    e->json = bench_echo_start(e->floor_nc, SUBJ_ECHO_JSON, json_len, DM_CT_JSON);
    e->mp = bench_echo_start(e->floor_nc, SUBJ_ECHO_MSGPACK, mp_reply_len, DM_CT_MSGPACK);
    e->slow = bench_echo_start(e->slow_nc, SUBJ_ECHO_SLOW, json_len, DM_CT_JSON);
    return e->json && e->mp && e->slow;
}

/* Warm-up, then the series in turn, a block each, until n requests each or the time
 * limit. */
static void run(natsConnection *nc, series s[S_COUNT], const latest_opts *o)
{
    int64_t deadline = bench_now_ns() + (int64_t)o->timeout_s * 1000000000LL;
    fprintf(stderr, "latest: warm-up %d requests per series\n", o->warmup);
    for (int k = 0; k < S_COUNT; k++)
        for (int i = 0; i < o->warmup; i++)
            one_request(nc, &s[k], false);
    for (int k = 0; k < S_COUNT; k++) { /* warm-up results do not count */
        s[k].errors = 0;
        s[k].n_served = 0;
    }
    fprintf(stderr, "latest: %d timed requests per series in blocks of %d\n", o->n, o->block);
    bool timed_out = false;
    for (int done = 0; done < o->n && !timed_out;) {
        int b = o->n - done < o->block ? o->n - done : o->block;
        for (int k = 0; k < S_COUNT && !timed_out; k++) {
            double c0[BENCH_CPU_COUNT], c1[BENCH_CPU_COUNT];
            bench_cpu_snapshot(c0);
            for (int i = 0; i < b; i++)
                one_request(nc, &s[k], true);
            bench_cpu_snapshot(c1);
            for (int c = 0; c < BENCH_CPU_COUNT; c++)
                s[k].cpu[c] += c1[c] - c0[c];
            timed_out = bench_now_ns() > deadline;
        }
        done += b;
    }
    if (timed_out)
        fprintf(stderr, "bench: time limit of %d s reached; reporting what was measured\n",
                o->timeout_s);
}

/* Prints the figures, rows and note; 1 if a series had errors or no answer. */
static int report(series s[S_COUNT])
{
    for (int k = 0; k < S_COUNT; k++) {
        bench_samples_sort(&s[k].lat);
        fprintf(stderr, "  %-15s n=%zu p50 %.3f ms p99 %.3f ms mean %.3f ms errors %ld\n",
                SERIES_NAMES[k], s[k].lat.n, bench_pct_ms(&s[k].lat, 50),
                bench_pct_ms(&s[k].lat, 99), bench_mean_ms(&s[k].lat), s[k].errors);
    }
    row_for("json", &s[S_ECHO_JSON], &s[S_REAL_JSON]);
    row_for("msgpack", &s[S_ECHO_MP], &s[S_REAL_MP]);
    /* The slower baseline, kept as information: what the floor echo saves over an echo on
     * a default connection (nats.c's flusher coalescing its writes). */
    const bench_samples *slow = &s[S_ECHO_SLOW].lat, *real = &s[S_REAL_JSON].lat;
    char v[64], b[64];
    snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(real, 50), bench_pct_ms(real, 99));
    snprintf(b, sizeof b, "%.3f / %.3f ms slow echo", bench_pct_ms(slow, 50),
             bench_pct_ms(slow, 99));
    bench_row("latest json vs default-conn echo", v, b,
              bench_pct_ms(real, 99) / bench_pct_ms(slow, 99), "info", -1);
    bench_note("latest: the slow echo is the floor echo's responder on a connection with nats.c's "
               "defaults (its flusher waits up to 1 ms to coalesce writes): p50 %.3f / p99 %.3f "
               "ms against the floor's %.3f / %.3f ms",
               bench_pct_ms(slow, 50), bench_pct_ms(slow, 99),
               bench_pct_ms(&s[S_ECHO_JSON].lat, 50), bench_pct_ms(&s[S_ECHO_JSON].lat, 99));
    int rc = 0;
    for (int k = 0; k < S_COUNT; k++)
        if (s[k].errors || s[k].lat.n == 0)
            rc = 1;
    return rc;
}

int main(int argc, char **argv)
{
    latest_opts o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    echoes e = {.nc = bench_nats_connect("bench-latest"),
                .floor_nc = bench_nats_connect_ex("bench-echo", true),
                .slow_nc = bench_nats_connect("bench-echo-default")};
    if (!e.nc || !e.floor_nc || !e.slow_nc)
        return 1;
    int mp_len = 0;
    char *mp_body = msgpack_request(&mp_len);
    series s[S_COUNT];
    init_series(s, mp_body, mp_len);
    if (!start_echo(&e, s))
        return 1;
    run(e.nc, s, &o);
    rc = report(s);
    bench_echo_stop(e.json);
    bench_echo_stop(e.mp);
    bench_echo_stop(e.slow);
    natsConnection_Destroy(e.floor_nc);
    natsConnection_Destroy(e.slow_nc);
    natsConnection_Destroy(e.nc);
    for (int k = 0; k < S_COUNT; k++)
        bench_samples_free(&s[k].lat);
    free(mp_body);
    nats_Close();
    return rc;
}
