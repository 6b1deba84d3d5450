/* Server tests: each publishes through JetStream or asks over request/reply, against the
 * real NATS, PostgreSQL and Redis of the stack tests/run.sh started, with two workers. */
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define H1_FILE DM_SOURCE_DIR "/data/EURUSD_H1_2010-10_2021-04.csv"
#define M1_FILE DM_SOURCE_DIR "/data/EURUSD_M1_2020-01-09_2020-01-20.csv"
#define T0 1578528000000LL /* 2020-01-09 00:00 UTC */

double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const cJSON *data(const reply *r) { return cJSON_GetObjectItemCaseSensitive(r->body, "data"); }

int run_cmd(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The publisher is a test client here: a long PubAck timeout (acks lag on a loaded 2-core
 * machine with sanitizer builds), and no leak check, because a loaded full run has shown
 * one 163-byte message leaked inside libnats 3.4.1's async publish that no standalone run
 * reproduces; the workers under test keep their leak check. */
const char *dmctl(void)
{
    static char cmd[600];
    snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=0 %s --timeout 30000",
             env_or("DM_DMCTL", "build-asan/cli/dmctl"));
    return cmd;
}

/* ---- round trips ---------------------------------------------------------------------- */

static void tick_round_trips_every_field(void)
{
    const char *tick = "{\"symbol\":\"TRT/USD\",\"timestamp\":1578528000123,\"bid\":1.11154,"
                       "\"ask\":1.11156,\"spread\":0.00002,\"volume\":12.5,\"source\":\"oanda\"}";
    CHECK(publish_json("market.tick.TRTUSD", tick, "tick:TRTUSD:1578528000123:oanda") > 0, "publish");
    CHECK(wait_idle(20), "consumers did not drain");
    for (int mp = 0; mp < 2; mp++) {
        reply r;
        CHECK(request("dm.v1.tick.latest", "{\"symbol\":\"TRT/USD\"}", mp, &r), "no reply");
        const cJSON *d = data(&r);
        bool ok = r.status == 200 && strcmp(str(d, "symbol"), "TRT/USD") == 0 &&
                  num(d, "timestamp") == 1578528000123.0 && num(d, "bid") == 1.11154 &&
                  num(d, "ask") == 1.11156 && num(d, "spread") == 0.00002 &&
                  num(d, "volume") == 12.5 && strcmp(str(d, "source"), "oanda") == 0 &&
                  (strcmp(str(r.body, "served_by"), "dragonfly") == 0 ||
                   strcmp(str(r.body, "served_by"), "l1") == 0);
        char *txt = cJSON_PrintUnformatted(r.body);
        reply_free(&r);
        CHECK(ok, "reply (%s) differs from the published tick: %s", mp ? "msgpack" : "json", txt);
        free(txt);
    }
    /* The same answer from PostgreSQL when no cache has it (a symbol never read: no L1
     * entry in any worker; its Redis key removed). */
    const char *tick2 = "{\"symbol\":\"TRU/USD\",\"timestamp\":1578528000123,\"bid\":1.11154,"
                        "\"ask\":1.11156,\"spread\":0.00002,\"volume\":12.5,\"source\":\"oanda\"}";
    CHECK(publish_json("market.tick.TRUUSD", tick2, NULL) > 0, "publish");
    CHECK(wait_idle(20), "consumers did not drain");
    CHECK(redis_del("tick:latest:{TRUUSD}") == 1, "cache key tick:latest:{TRUUSD} missing");
    reply r;
    CHECK(request("dm.v1.tick.latest", "{\"symbol\":\"TRUUSD\"}", false, &r), "no reply");
    bool ok = num(data(&r), "bid") == 1.11154 && num(data(&r), "volume") == 12.5 &&
              strcmp(str(r.body, "served_by"), "timescale") == 0;
    char *txt = cJSON_PrintUnformatted(r.body);
    reply_free(&r);
    CHECK(ok, "timescale answer differs: %s", txt);
    free(txt);
}

static void latest_tick_stays_newest_when_an_older_one_arrives_late(void)
{
    publish_json("market.tick.TLAUSD", "{\"symbol\":\"TLA/USD\",\"timestamp\":1578528060000,"
                 "\"bid\":1.2,\"ask\":1.3,\"spread\":0.1,\"source\":\"oanda\"}", NULL);
    CHECK(wait_idle(20), "drain");
    publish_json("market.tick.TLAUSD", "{\"symbol\":\"TLA/USD\",\"timestamp\":1578528000000,"
                 "\"bid\":1.0,\"ask\":1.1,\"spread\":0.1,\"source\":\"oanda\"}", NULL);
    CHECK(wait_idle(20), "drain");
    reply r;
    CHECK(request("dm.v1.tick.latest", "{\"symbol\":\"TLA/USD\"}", false, &r), "no reply");
    double ts = num(data(&r), "timestamp");
    bool null_volume = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(data(&r), "volume"));
    reply_free(&r);
    CHECK(ts == 1578528060000.0, "latest tick went back in time: %.0f", ts);
    CHECK(null_volume, "a tick published without volume must read back volume null");
}

/* A tick stored again under another message id (a collector resending a corrected price)
 * and one that appears twice in a batch: the worker's plain insert meets the stored key,
 * its upsert writes the newer values; one row per key. */
static void a_tick_stored_again_takes_the_newer_values(void)
{
    const char *first = "{\"symbol\":\"TRS/USD\",\"timestamp\":1578528000000,\"bid\":1.1,"
                        "\"ask\":1.2,\"spread\":0.1,\"source\":\"oanda\"}";
    const char *again = "{\"symbol\":\"TRS/USD\",\"timestamp\":1578528000000,\"bid\":1.3,"
                        "\"ask\":1.4,\"spread\":0.1,\"source\":\"oanda\"}";
    CHECK(publish_json("market.tick.TRSUSD", first, "trs-1") > 0, "publish");
    CHECK(wait_idle(20), "drain");
    CHECK(publish_json("market.tick.TRSUSD", again, "trs-2") > 0, "publish again");
    /* the same key twice (same values: two workers may commit them in either order)
     * among new ones, one batch most likely */
    static const char *const batch[3][2] = {{"1578528001000", "1.5"}, {"1578528002000", "1.6"},
                                            {"1578528001000", "1.5"}};
    char buf[256], id[16];
    for (int i = 0; i < 3; i++) {
        snprintf(buf, sizeof buf, "{\"symbol\":\"TRS/USD\",\"timestamp\":%s,\"bid\":%s,"
                 "\"ask\":1.9,\"spread\":0.1,\"source\":\"oanda\"}", batch[i][0], batch[i][1]);
        snprintf(id, sizeof id, "trs-b%d", i);
        CHECK(publish_json("market.tick.TRSUSD", buf, id) > 0, "publish batch");
    }
    CHECK(wait_idle(20), "drain");
    PGresult *r = pg_query("SELECT ts, bid, ask FROM ticks WHERE symbol = $1 ORDER BY ts", "TRS/USD");
    CHECK(r != NULL, "query");
    bool ok = PQntuples(r) == 3 && strcmp(PQgetvalue(r, 0, 0), "1578528000000") == 0 &&
              atof(PQgetvalue(r, 0, 1)) == 1.3 && atof(PQgetvalue(r, 0, 2)) == 1.4 &&
              strcmp(PQgetvalue(r, 1, 0), "1578528001000") == 0 && atof(PQgetvalue(r, 1, 1)) == 1.5 &&
              strcmp(PQgetvalue(r, 2, 0), "1578528002000") == 0 && atof(PQgetvalue(r, 2, 1)) == 1.6;
    int rows = PQntuples(r);
    PQclear(r);
    CHECK(ok, "expected 3 rows, the resent one with the newer values; got %d rows (or older values)",
          rows);
}

static void candles_round_trip_oldest_first_with_limit(void)
{
    char buf[512];
    for (int i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf,
                 "{\"symbol\":\"CRT/USD\",\"timeframe\":\"1h\",\"timestamp\":%lld,\"open\":1.1%d,"
                 "\"high\":1.2%d,\"low\":1.0%d,\"close\":1.15%d,\"volume\":%d,\"source\":\"oanda\"}",
                 T0 + i * 3600000LL, i, i, i, i, 100 + i);
        CHECK(publish_json("market.candle.CRTUSD.1h", buf, NULL) > 0, "publish");
    }
    CHECK(wait_idle(20), "drain");
    for (int mp = 0; mp < 2; mp++) {
        reply r;
        CHECK(request("dm.v1.candles.latest", "{\"symbol\":\"CRT/USD\",\"timeframe\":\"1h\",\"limit\":3}",
                      mp, &r), "no reply");
        const cJSON *d = data(&r);
        int n = cJSON_GetArraySize(d);
        const cJSON *first = cJSON_GetArrayItem(d, 0), *last = cJSON_GetArrayItem(d, 2);
        bool ok = n == 3 && num(first, "timestamp") == (double)(T0 + 2 * 3600000LL) &&
                  num(last, "timestamp") == (double)(T0 + 4 * 3600000LL) && num(last, "open") == 1.14 &&
                  num(last, "high") == 1.24 && num(last, "low") == 1.04 && num(last, "close") == 1.154 &&
                  num(last, "volume") == 104 && strcmp(str(last, "timeframe"), "1h") == 0 &&
                  strcmp(str(last, "symbol"), "CRT/USD") == 0 && strcmp(str(last, "source"), "oanda") == 0;
        char *txt = cJSON_PrintUnformatted(r.body);
        reply_free(&r);
        CHECK(ok, "latest candles wrong: %s", txt);
        free(txt);
    }
}

static void latest_candles_fall_back_to_timescale_and_refill_the_cache(void)
{
    CHECK(redis_del("candle:latest:{CRTUSD}:1h") == 1, "cache key missing");
    const char *q = "{\"symbol\":\"CRT/USD\",\"timeframe\":\"1h\",\"limit\":5}";
    reply r;
    CHECK(request("dm.v1.candles.latest", q, false, &r), "no reply");
    bool from_db = strcmp(str(r.body, "served_by"), "timescale") == 0 && cJSON_GetArraySize(data(&r)) == 5;
    reply_free(&r);
    CHECK(from_db, "expected 5 candles from timescale after the cache was emptied");
    CHECK(request("dm.v1.candles.latest", q, false, &r), "no reply");
    bool from_cache = (strcmp(str(r.body, "served_by"), "dragonfly") == 0 ||
                       strcmp(str(r.body, "served_by"), "l1") == 0) &&
                      cJSON_GetArraySize(data(&r)) == 5;
    reply_free(&r);
    CHECK(from_cache, "the database answer did not refill the cache");
    /* More than the cache holds for this key: the database answers, never a short list. */
    CHECK(request("dm.v1.candles.latest", "{\"symbol\":\"CRT/USD\",\"timeframe\":\"1h\",\"limit\":50}", false, &r), "no reply");
    int n = cJSON_GetArraySize(data(&r));
    reply_free(&r);
    CHECK(n == 5, "asked 50 of 5 stored candles, got %d", n);
}

/* ---- history -------------------------------------------------------------------------- */

typedef struct {
    long long ts;
    double o, h, l, c, v;
} row;

static int load_h1(row **out)
{
    FILE *f = fopen(H1_FILE, "r");
    if (f == NULL)
        return -1;
    char line[256];
    int n = 0, cap = 70000;
    row *rows = malloc(sizeof *rows * (size_t)cap);
    if (fgets(line, sizeof line, f) == NULL) { /* header */
        fclose(f);
        free(rows);
        return -1;
    }
    while (fgets(line, sizeof line, f) && n < cap) {
        struct tm tm = {0};
        row r;
        if (sscanf(line, "%d.%d.%d %d:%d,%lf,%lf,%lf,%lf,%lf", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &r.o, &r.h, &r.l, &r.c, &r.v) != 10)
            continue;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        r.ts = (long long)timegm(&tm) * 1000;
        rows[n++] = r;
    }
    fclose(f);
    *out = rows;
    return n;
}

int ensure_h1_loaded(void)
{
    static int loaded;
    if (!loaded && run_cmd("%s publish-candles --symbol EUR/USD --timeframe 1h --file %s --quiet >/dev/null",
                           dmctl(), H1_FILE) == 0 && wait_idle(120))
        loaded = 1;
    return loaded;
}

/* Pages through the whole history; returns rows seen or -1. */
static int page_all(bool msgpack, const row *want, int n_want, int page_size, int *pages)
{
    char cursor[256] = "", q[512];
    int seen = 0;
    *pages = 0;
    for (;;) {
        snprintf(q, sizeof q,
                 "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2010-01-01\","
                 "\"end_date\":\"2021-12-31T00:00:00Z\",\"page_size\":%d%s%s%s}",
                 page_size, cursor[0] ? ",\"cursor\":\"" : "", cursor, cursor[0] ? "\"" : "");
        reply r;
        if (!request("dm.v1.candles.history", q, msgpack, &r) || r.status != 200) {
            reply_free(&r);
            return -1;
        }
        (*pages)++;
        const cJSON *it;
        cJSON_ArrayForEach(it, data(&r))
        {
            const row *w = seen < n_want ? &want[seen] : NULL;
            if (w == NULL || num(it, "timestamp") != (double)w->ts || num(it, "open") != w->o ||
                num(it, "high") != w->h || num(it, "low") != w->l || num(it, "close") != w->c ||
                num(it, "volume") != w->v) {
                fprintf(stderr, "  row %d differs (ts %.0f)\n", seen, num(it, "timestamp"));
                reply_free(&r);
                return -1;
            }
            seen++;
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(r.body, "next_cursor");
        bool more = cJSON_IsString(next);
        if (more)
            snprintf(cursor, sizeof cursor, "%s", next->valuestring);
        reply_free(&r);
        if (!more)
            return seen;
    }
}

static void history_pages_reassemble_to_the_published_set(void)
{
    row *rows = NULL;
    int n = load_h1(&rows);
    CHECK(n == 65000, "could not read %s (%d rows)", H1_FILE, n);
    if (!ensure_h1_loaded()) {
        free(rows);
        CHECK(false, "backfill of the H1 file did not finish");
    }
    int pages = 0;
    int got = page_all(false, rows, n, 7000, &pages);
    int got_mp = page_all(true, rows, n, 10000, &pages);
    free(rows);
    CHECK(got == 65000, "JSON pages reassembled %d of 65000 rows", got);
    CHECK(got_mp == 65000 && pages == 7, "msgpack pages reassembled %d rows in %d pages", got_mp, pages);
    CHECK(pg_count("SELECT count(*) FROM candles WHERE symbol = $1 AND timeframe = '1h'", "EUR/USD") == 65000,
          "PostgreSQL holds other than 65000 candles");
}

static void json_and_msgpack_answers_are_identical(void)
{
    const char *qs[][2] = {
        {"dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":1262304000000,\"end_date\":\"2011-01-01\",\"page_size\":500}"},
        {"dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":100}"},
        {"dm.v1.tick.latest", "{\"symbol\":\"TRT/USD\"}"},
        {"dm.v1.events", "{\"start_date\":\"2026-01-01\",\"end_date\":\"2027-01-01\"}"},
        {"dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2012-01-01\",\"end_date\":\"2011-01-01\"}"},
    };
    CHECK(ensure_h1_loaded(), "backfill");
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        reply a, b;
        CHECK(request(qs[i][0], qs[i][1], false, &a) && request(qs[i][0], qs[i][1], true, &b), "no reply");
        /* served_by may differ (the second read can hit a cache the first one filled). */
        const char *keys[] = {"data", "next_cursor", "error"};
        bool same = a.status == b.status;
        for (size_t k = 0; k < 3; k++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(a.body, keys[k]);
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b.body, keys[k]);
            same = same && ((x == NULL && y == NULL) || cJSON_Compare(x, y, true));
        }
        char ja[256];
        char *txt = cJSON_PrintUnformatted(a.body);
        snprintf(ja, sizeof ja, "%s", txt ? txt : "");
        free(txt);
        reply_free(&a);
        reply_free(&b);
        CHECK(same, "%s %s: JSON and msgpack answers differ (%.200s)", qs[i][0], qs[i][1], ja);
    }
}

static void history_edges_empty_range_unknown_symbol_and_foreign_cursor(void)
{
    reply r;
    CHECK(ensure_h1_loaded(), "backfill");
    CHECK(request("dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"1999-01-01\",\"end_date\":\"2000-01-01\"}", false, &r), "no reply");
    bool empty = r.status == 200 && cJSON_IsArray(data(&r)) && cJSON_GetArraySize(data(&r)) == 0 &&
                 cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r.body, "next_cursor"));
    reply_free(&r);
    CHECK(empty, "an empty range must be data: [] with next_cursor null");
    CHECK(request("dm.v1.candles.history", "{\"symbol\":\"ZZZ/USD\",\"timeframe\":\"1h\",\"start_date\":\"2010-01-01\",\"end_date\":\"2011-01-01\"}", false, &r), "no reply");
    bool nf = r.status == 404 && strcmp(str(cJSON_GetObjectItemCaseSensitive(r.body, "error"), "code"), "not_found") == 0;
    reply_free(&r);
    CHECK(nf, "a symbol never seen must be not_found");
    CHECK(request("dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2010-01-01\",\"end_date\":\"2011-01-01\",\"page_size\":10}", false, &r), "no reply");
    char cursor[256];
    snprintf(cursor, sizeof cursor, "%s", str(r.body, "next_cursor"));
    reply_free(&r);
    char q[512];
    snprintf(q, sizeof q, "{\"symbol\":\"EUR/USD\",\"timeframe\":\"4h\",\"start_date\":\"2010-01-01\",\"end_date\":\"2011-01-01\",\"cursor\":\"%s\"}", cursor);
    CHECK(request("dm.v1.candles.history", q, false, &r), "no reply");
    bool bad = r.status == 400 && strcmp(str(cJSON_GetObjectItemCaseSensitive(r.body, "error"), "field"), "cursor") == 0;
    reply_free(&r);
    CHECK(bad, "a cursor used with another timeframe must be refused");
}


/* ---- aggregates ----------------------------------------------------------------------- */

static char *edit_strategy(const char *from, const char *to, const char *version);
bool restore_strategy(char *orig);

typedef struct {
    long long start;
    double open, high, low, close, sum_close, volume;
    long long count;
    double *rets;
    int n_rets, cap_rets;
} agg_expect;

static long long period_start(long long ts, int period)
{
    long long day = ts / 86400000LL;
    if (period == 0)
        return day * 86400000LL;
    if (period == 1) /* ISO weeks: 1970-01-05 was a Monday */
        return (day - (day + 3) % 7) * 86400000LL;
    time_t t = (time_t)(ts / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (long long)timegm(&tm) * 1000;
}

static int expect_aggregates(const row *rows, int n, int period, agg_expect **out)
{
    agg_expect *v = calloc((size_t)n, sizeof *v);
    int k = -1;
    for (int i = 0; i < n; i++) {
        long long p = period_start(rows[i].ts, period);
        if (k < 0 || v[k].start != p) {
            k++;
            v[k] = (agg_expect){.start = p, .open = rows[i].o, .high = rows[i].h, .low = rows[i].l};
        } else {
            agg_expect *a = &v[k];
            if (a->n_rets == a->cap_rets) {
                a->cap_rets = a->cap_rets ? a->cap_rets * 2 : 32;
                a->rets = realloc(a->rets, sizeof *a->rets * (size_t)a->cap_rets);
            }
            a->rets[a->n_rets++] = rows[i].c / rows[i - 1].c - 1;
        }
        agg_expect *a = &v[k];
        a->high = rows[i].h > a->high ? rows[i].h : a->high;
        a->low = rows[i].l < a->low ? rows[i].l : a->low;
        a->close = rows[i].c;
        a->sum_close += rows[i].c;
        a->volume += rows[i].v;
        a->count++;
    }
    *out = v;
    return k + 1;
}

static double sample_stddev(const double *x, int n)
{
    double mean = 0, ss = 0;
    for (int i = 0; i < n; i++)
        mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    return sqrt(ss / (n - 1));
}

static bool close_enough(double got, double want)
{
    double tol = 1e-9 * fabs(want);
    return fabs(got - want) <= (tol > 1e-15 ? tol : 1e-15);
}

/* Compares every period of the three period kinds with the computation above;
 * `extra` adds request members (a range makes a distinct cache key). */
static bool check_aggregates(const row *rows, int n, const char *extra, char *served, size_t cap,
                             char *bad, size_t bad_cap)
{
    const char *names[] = {"1d", "1w", "1mo"};
    bad[0] = served[0] = '\0';
    for (int p = 0; p < 3 && !bad[0]; p++) {
        agg_expect *want = NULL;
        int nw = expect_aggregates(rows, n, p, &want);
        char q[256];
        snprintf(q, sizeof q, "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"period\":\"%s\"%s}", names[p], extra);
        reply r;
        bool got = request("dm.v1.aggregates", q, p == 1, &r);
        int ng = got ? cJSON_GetArraySize(data(&r)) : -1;
        if (got)
            snprintf(served, cap, "%s", str(r.body, "served_by"));
        if (ng != nw)
            snprintf(bad, bad_cap, "%s: %d periods, want %d", names[p], ng, nw);
        for (int i = 0; got && i < ng && i < nw && !bad[0]; i++) {
            const cJSON *a = cJSON_GetArrayItem(data(&r), i);
            agg_expect *w = &want[i];
            const cJSON *sd = cJSON_GetObjectItemCaseSensitive(a, "stddev_returns");
            bool sd_ok = w->n_rets < 2 ? cJSON_IsNull(sd)
                                       : cJSON_IsNumber(sd) && close_enough(sd->valuedouble, sample_stddev(w->rets, w->n_rets));
            if (num(a, "period_start") != (double)w->start || !close_enough(num(a, "open"), w->open) ||
                !close_enough(num(a, "high"), w->high) || !close_enough(num(a, "low"), w->low) ||
                !close_enough(num(a, "close"), w->close) || !close_enough(num(a, "mean"), w->sum_close / (double)w->count) ||
                !close_enough(num(a, "range"), w->high - w->low) || !close_enough(num(a, "volume"), w->volume) ||
                num(a, "count") != (double)w->count || !sd_ok)
                snprintf(bad, bad_cap, "%s period %d (start %lld) differs", names[p], i, w->start);
        }
        for (int i = 0; i < nw; i++)
            free(want[i].rets);
        free(want);
        reply_free(&r);
    }
    return bad[0] == '\0';
}

static void aggregates_match_an_independent_computation(void)
{
    row *rows = NULL;
    int n = load_h1(&rows);
    CHECK(n == 65000 && ensure_h1_loaded(), "data");
    char served[32], bad[300];
    bool first = check_aggregates(rows, n, "", served, sizeof served, bad, sizeof bad);
    char served_first[32];
    snprintf(served_first, sizeof served_first, "%s", served);
    /* The same from PostgreSQL alone (a range makes a key no earlier answer cached). */
    char *orig = edit_strategy("\"compute_aggregates\": [\"clickhouse\", \"timescale\"]",
                               "\"compute_aggregates\": [\"timescale\"]", "aggregates-pg");
    char served_pg[32] = "", bad_pg[300] = "";
    bool second = orig && check_aggregates(rows, n, ",\"start_date\":\"2000-01-02\"", served_pg,
                                           sizeof served_pg, bad_pg, sizeof bad_pg);
    bool restored = restore_strategy(orig);
    free(rows);
    CHECK(first, "%s (served by %s)", bad, served_first);
    CHECK(strcmp(served_first, "clickhouse") == 0, "aggregates served by %s, want clickhouse first", served_first);
    CHECK(restored && second && strcmp(served_pg, "timescale") == 0, "timescale: %s (served by %s)", bad_pg, served_pg);
    /* The second ask of the same aggregates comes from the cache. */
    reply r;
    CHECK(request("dm.v1.aggregates", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"period\":\"1w\"}", false, &r), "no reply");
    bool cached = strcmp(str(r.body, "served_by"), "dragonfly") == 0;
    reply_free(&r);
    CHECK(cached, "aggregates asked twice were not served from the cache");
    CHECK(request("dm.v1.aggregates", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"period\":\"1mo\",\"start_date\":\"2020-01-01\",\"end_date\":\"2020-04-01\"}", false, &r), "no reply");
    int months = cJSON_GetArraySize(data(&r));
    double first_start = num(cJSON_GetArrayItem(data(&r), 0), "period_start");
    reply_free(&r);
    CHECK(months == 3 && first_start == 1577836800000.0, "Q1 2020 by month: %d periods from %.0f", months, first_start);
    CHECK(request("dm.v1.aggregates", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"period\":\"2w\"}", false, &r), "no reply");
    bool refused = r.status == 400 && strcmp(str(cJSON_GetObjectItemCaseSensitive(r.body, "error"), "field"), "period") == 0;
    reply_free(&r);
    CHECK(refused, "period 2w must be invalid_field period");
}

/* ---- events --------------------------------------------------------------------------- */

static void events_are_filtered_by_country_currency_and_impact(void)
{
    /* Values of the US CPI release of 2026-04-10 are illustrative test numbers. */
    const char *evs[][2] = {
        {"market.event.US", "{\"event_id\":\"t-us-cpi\",\"timestamp\":1775824200000,\"country\":\"US\",\"event_name\":\"CPI\",\"actual\":3.1,\"forecast\":3.0,\"previous\":2.9,\"impact\":\"high\",\"currency_impact\":[\"USD\"]}"},
        {"market.event.EU", "{\"event_id\":\"t-eu-ecb\",\"timestamp\":1776435300000,\"country\":\"EU\",\"event_name\":\"ECB Rate Decision\",\"impact\":\"high\",\"currency_impact\":[\"EUR\"]}"},
        {"market.event.US", "{\"event_id\":\"t-us-claims\",\"timestamp\":1775737800000,\"country\":\"US\",\"event_name\":\"Jobless Claims\",\"impact\":\"medium\",\"currency_impact\":[\"USD\"]}"},
    };
    for (size_t i = 0; i < 3; i++)
        CHECK(publish_json(evs[i][0], evs[i][1], NULL) > 0, "publish");
    CHECK(wait_idle(20), "drain");
    const char *range = "\"start_date\":\"2026-04-09\",\"end_date\":\"2026-04-18\"";
    struct { const char *filter; int n; const char *first; } cases[] = {
        {"", 3, "t-us-claims"}, {",\"country\":\"US\"", 2, "t-us-claims"},
        {",\"currency\":\"EUR\"", 1, "t-eu-ecb"}, {",\"impact\":\"high\"", 2, "t-us-cpi"},
        {",\"country\":\"US\",\"impact\":\"high\"", 1, "t-us-cpi"}, {",\"country\":\"JP\"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char q[256];
        snprintf(q, sizeof q, "{%s%s}", range, cases[i].filter);
        reply r;
        CHECK(request("dm.v1.events", q, false, &r), "no reply");
        int n = cJSON_GetArraySize(data(&r));
        const cJSON *first = cJSON_GetArrayItem(data(&r), 0);
        bool ok = r.status == 200 && n == cases[i].n &&
                  (!cases[i].first || strcmp(str(first, "event_id"), cases[i].first) == 0);
        if (ok && cases[i].first && strcmp(cases[i].first, "t-us-cpi") == 0)
            ok = num(first, "actual") == 3.1 && num(first, "forecast") == 3.0 && num(first, "previous") == 2.9 &&
                 strcmp(str(first, "impact"), "high") == 0 &&
                 strcmp(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(first, "currency_impact"), 0)->valuestring, "USD") == 0;
        char *txt = cJSON_PrintUnformatted(r.body);
        reply_free(&r);
        CHECK(ok, "events %s: expected %d, got %s", q, cases[i].n, txt);
        free(txt);
    }
}

/* ---- bad input ------------------------------------------------------------------------ */

typedef struct {
    const char *subject, *payload, *code, *field;
    int status;
} bad_request;

static void bad_requests_get_a_code_a_field_and_a_status(void)
{
    static const bad_request cases[] = {
        {"dm.v1.tick.latest", "{bad", "invalid_json", NULL, 400},
        {"dm.v1.tick.latest", "[1,2]", "invalid_json", NULL, 400},
        {"dm.v1.tick.latest", "{}", "missing_field", "symbol", 400},
        {"dm.v1.tick.latest", "{\"symbol\":5}", "invalid_field", "symbol", 400},
        {"dm.v1.tick.latest", "{\"symbol\":\"eur/usd; drop table ticks\"}", "invalid_field", "symbol", 400},
        {"dm.v1.tick.latest", "{\"symbol\":\"NOP/USD\"}", "not_found", "symbol", 404},
        {"dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"2h\"}", "invalid_field", "timeframe", 400},
        {"dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":0}", "invalid_field", "limit", 400},
        {"dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":1001}", "invalid_field", "limit", 400},
        {"dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":2.5}", "invalid_field", "limit", 400},
        {"dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":\"5\"}", "invalid_field", "limit", 400},
        {"dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2020-01-01\"}", "missing_field", "end_date", 400},
        {"dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2020-13-01\",\"end_date\":\"2021-01-01\"}", "invalid_field", "start_date", 400},
        {"dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2021-01-01\",\"end_date\":\"2020-01-01\"}", "invalid_field", "end_date", 400},
        {"dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2020-01-01\",\"end_date\":\"2021-01-01\",\"page_size\":10001}", "invalid_field", "page_size", 400},
        {"dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2020-01-01\",\"end_date\":\"2021-01-01\",\"cursor\":\"!!\"}", "invalid_field", "cursor", 400},
        {"dm.v1.events", "{\"start_date\":\"2026-01-01\",\"end_date\":\"2027-01-01\",\"impact\":\"extreme\"}", "invalid_field", "impact", 400},
        {"dm.v1.events", "{\"start_date\":\"2026-01-01\",\"end_date\":\"2027-01-01\",\"country\":\"USA\"}", "invalid_field", "country", 400},
        {"dm.v1.nothing.here", "{}", "not_found", "subject", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const bad_request *c = &cases[i];
        reply r;
        CHECK(request_raw(c->subject, c->payload, (int)strlen(c->payload), "application/json", &r),
              "no reply to %s", c->payload);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r.body, "error");
        const cJSON *field = cJSON_GetObjectItemCaseSensitive(e, "field");
        bool ok = r.status == c->status && strcmp(str(e, "code"), c->code) == 0 &&
                  strlen(str(e, "message")) > 10 &&
                  (c->field ? strcmp(str(e, "field"), c->field) == 0 : cJSON_IsNull(field));
        char *txt = cJSON_PrintUnformatted(r.body);
        int st = r.status;
        reply_free(&r);
        CHECK(ok, "%s %s: want %s/%s/%d, got %d %s", c->subject, c->payload, c->code,
              c->field ? c->field : "null", c->status, st, txt);
        free(txt);
    }
    /* msgpack garbage and an oversized request */
    reply r;
    const char junk[] = {(char)0x82, (char)0xa1, 'a'};
    CHECK(request_raw("dm.v1.tick.latest", junk, sizeof junk, "application/msgpack", &r), "no reply");
    bool mp = r.status == 400 && strstr(r.raw, "invalid_msgpack") != NULL;
    reply_free(&r);
    CHECK(mp, "truncated msgpack must be invalid_msgpack");
    size_t big = (1u << 20) + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"symbol\":\"EUR/USD\"", 19);
    huge[big - 1] = '}';
    huge[big] = '\0';
    bool got = request_raw("dm.v1.tick.latest", huge, (int)big, "application/json", &r);
    free(huge);
    CHECK(got, "no reply to an oversized request");
    bool tl = r.status == 413 && strstr(r.raw, "too_large") != NULL;
    reply_free(&r);
    CHECK(tl, "a request over 1 MB must be too_large (413)");
}

typedef struct {
    const char *subject, *payload, *field; /* field the reason must name */
    bool msgpack;
} bad_publish;

static void bad_publishes_are_dead_lettered_once_and_never_stored(void)
{
    static const bad_publish cases[] = {
        {"market.tick.BADUSD", "{bad json", "JSON", false},
        {"market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":\"1.1\",\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}", "bid", false},
        {"market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":1.1,\"spread\":0.1,\"source\":\"x\"}", "ask", false},
        {"market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":1.2,\"ask\":1.1,\"spread\":0.1,\"source\":\"x\"}", "ask", false},
        {"market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":0,\"ask\":1.1,\"spread\":0.1,\"source\":\"x\"}", "bid", false},
        {"market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000,\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}", "timestamp", false},
        {"market.tick.BADUSD", "{\"symbol\":\"EUR/USD\",\"timestamp\":1578528000000,\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}", "subject token", false},
        {"market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", "source", false},
        {"market.candle.BADUSD.1h", "{\"symbol\":\"BAD/USD\",\"timeframe\":\"1h\",\"timestamp\":1578528000000,\"open\":1.1,\"high\":1.0,\"low\":1.2,\"close\":1.1,\"source\":\"x\"}", "high", false},
        {"market.candle.BADUSD.1h", "{\"symbol\":\"BAD/USD\",\"timeframe\":\"1h\",\"timestamp\":1578528060000,\"open\":1.1,\"high\":1.2,\"low\":1.0,\"close\":1.1,\"source\":\"x\"}", "aligned", false},
        {"market.candle.BADUSD.2h", "{\"symbol\":\"BAD/USD\",\"timeframe\":\"2h\",\"timestamp\":1578528000000,\"open\":1.1,\"high\":1.2,\"low\":1.0,\"close\":1.1,\"source\":\"x\"}", "timeframe", false},
        {"market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":1e999,\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}", "bid", false},
    };
    uint64_t seqs[sizeof cases / sizeof *cases];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK((seqs[i] = publish_json(cases[i].subject, cases[i].payload, NULL)) > 0, "publish %zu", i);
    /* msgpack: truncated document, and a NaN price (JSON cannot even say NaN) */
    const char trunc[] = {(char)0x87, (char)0xa6, 's', 'y', 'm'};
    uint64_t seq_trunc = publish("market.tick.BADUSD", trunc, sizeof trunc, "application/msgpack", NULL);
    int nlen = 0;
    char *nan_mp = msgpack_from_json("{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":1.5,\"ask\":1.6,\"spread\":0.1,\"source\":\"x\"}", &nlen);
    /* patch bid 1.5 (float64 0x3ff8000000000000) into NaN */
    for (int i = 0; i + 8 < nlen; i++)
        if ((unsigned char)nan_mp[i] == 0xcb && (unsigned char)nan_mp[i + 1] == 0x3f && (unsigned char)nan_mp[i + 2] == 0xf8) {
            memcpy(nan_mp + i + 1, "\x7f\xf8\x00\x00\x00\x00\x00\x00", 8);
            break;
        }
    uint64_t seq_nan = publish("market.tick.BADUSD", nan_mp, nlen, "application/msgpack", NULL);
    free(nan_mp);
    uint64_t good = publish_json("market.tick.BADUSD", "{\"symbol\":\"BAD/USD\",\"timestamp\":1578528000000,\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}", NULL);
    CHECK(seq_trunc && seq_nan && good, "publish");
    CHECK(wait_idle(30), "bad messages are still pending: they must be terminated, not redelivered");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char reason[400];
        int n = dlq_count(seqs[i], reason, sizeof reason);
        CHECK(n == 1, "case %zu (%s): %d dead letters, want exactly 1", i, cases[i].payload, n);
        CHECK(strstr(reason, cases[i].field) != NULL, "case %zu: reason '%s' does not name %s", i,
              reason, cases[i].field);
    }
    char reason[400];
    CHECK(dlq_count(seq_trunc, reason, sizeof reason) == 1 && strstr(reason, "msgpack"), "truncated msgpack: %s", reason);
    CHECK(dlq_count(seq_nan, reason, sizeof reason) == 1 && strstr(reason, "bid"), "NaN bid: %s", reason);
    CHECK(dlq_count(good, NULL, 0) == 0, "a valid tick was dead-lettered");
    CHECK(pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "BAD/USD") == 1,
          "exactly the one valid BAD/USD tick must be stored");
    CHECK(pg_count("SELECT count(*) FROM candles WHERE symbol = $1", "BAD/USD") == 0, "bad candles stored");
}

static void bulk_keeps_valid_candles_and_dead_letters_the_rest(void)
{
    char *body = malloc(1 << 16);
    int off = sprintf(body, "{\"candles\":[");
    for (int i = 0; i < 10; i++) {
        bool bad = i == 2 || i == 5 || i == 9;
        off += sprintf(body + off, "%s{\"symbol\":\"BLK/USD\",\"timeframe\":\"1h\",\"timestamp\":%lld,"
                       "\"open\":1.1,\"high\":%s,\"low\":1.0,\"close\":1.15,\"source\":\"oanda\"}",
                       i ? "," : "", T0 + i * 3600000LL + (i == 5 ? 1 : 0), bad && i != 5 ? "0.9" : "1.2");
    }
    sprintf(body + off, "]}");
    uint64_t seq = publish_json("market.candles.BLKUSD.1h", body, NULL);
    free(body);
    CHECK(seq > 0, "publish");
    CHECK(wait_idle(30), "drain");
    CHECK(pg_count("SELECT count(*) FROM candles WHERE symbol = $1", "BLK/USD") == 7, "want the 7 valid candles stored");
    CHECK(dlq_count(seq, NULL, 0) == 3, "want 3 dead letters for the 3 invalid candles");
    /* More than 10,000 candles in one message is refused whole. */
    size_t cap = 10001 * 160 + 64;
    char *big = malloc(cap);
    off = sprintf(big, "{\"candles\":[");
    for (int i = 0; i < 10001; i++)
        off += sprintf(big + off, "%s{\"symbol\":\"BLK/USD\",\"timeframe\":\"1m\",\"timestamp\":%lld,\"open\":1.1,\"high\":1.2,\"low\":1.0,\"close\":1.15,\"source\":\"oanda\"}",
                       i ? "," : "", T0 + i * 60000LL);
    sprintf(big + off, "]}");
    uint64_t seq_big = publish_json("market.candles.BLKUSD.1m", big, NULL);
    free(big);
    CHECK(seq_big > 0, "publish of the oversized bulk");
    CHECK(wait_idle(30), "drain");
    char reason[400];
    CHECK(dlq_count(seq_big, reason, sizeof reason) == 1 && strstr(reason, "10000"), "oversized bulk: %s", reason);
    CHECK(pg_count("SELECT count(*) FROM candles WHERE symbol = $1 AND timeframe = '1m'", "BLK/USD") == 0, "oversized bulk partly stored");
}

/* ---- workers -------------------------------------------------------------------------- */

static int ask_metrics_acked(const char *worker)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        reply r;
        if (!request("dm.v1.metrics", "{}", false, &r))
            return -1;
        int acked = -1;
        if (strcmp(str(r.body, "worker"), worker) == 0) {
            const cJSON *ing = cJSON_GetObjectItemCaseSensitive(r.body, "ingest");
            const cJSON *tt = cJSON_GetObjectItemCaseSensitive(ing, "timescale-tick");
            acked = (int)num(tt, "acked");
            if (isnan(num(tt, "acked")))
                acked = 0;
        }
        reply_free(&r);
        if (acked >= 0)
            return acked;
    }
    return -1;
}

static void two_workers_share_the_load_and_write_nothing_twice(void)
{
    int a0 = ask_metrics_acked("w1"), b0 = ask_metrics_acked("w2");
    CHECK(a0 >= 0 && b0 >= 0, "metrics of both workers");
    CHECK(run_cmd("%s publish-ticks --symbol SHR/USD --file %s --per-minute 2 --limit 20000 --quiet >/dev/null",
                  dmctl(), M1_FILE) == 0, "dmctl publish-ticks failed");
    CHECK(wait_idle(60), "drain");
    CHECK(pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "SHR/USD") == 20000, "want 20000 ticks");
    int a = ask_metrics_acked("w1") - a0, b = ask_metrics_acked("w2") - b0;
    CHECK(a > 0 && b > 0, "both workers must have committed ticks (w1 %d, w2 %d)", a, b);
    /* Each message was committed by exactly one worker: none was processed twice. */
    CHECK(a + b == 20000, "w1 acked %d + w2 acked %d != 20000 published", a, b);
}

/* Idle, a consumer thread keeps two or three pull requests waiting at nats-server (one
 * sent each second, each living 2.5 s). Bursts must leave no more behind: the expiry of an
 * older request once counted as the newest's end and made another request, so every extra
 * request of a burst stayed for good, and the queue at nats-server only grew. */
static void bursts_leave_no_extra_pull_requests_waiting(void)
{
    static const char *const symbols[] = {"PQA/USD", "PQB/USD", "PQC/USD", "PQD/USD", "PQE/USD"};
    for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++) {
        CHECK(run_cmd("%s publish-ticks --symbol %s --file %s --per-minute 2 --limit 3000 --quiet "
                      ">/dev/null",
                      dmctl(), symbols[i], M1_FILE) == 0,
              "dmctl publish-ticks failed");
        nats_Sleep(1500);
    }
    CHECK(wait_idle(60), "drain");
    nats_Sleep(6000); /* every request of the bursts has expired by now */
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    CHECK(js_Consumers(&list, g_js, "MARKET", NULL, &jerr) == NATS_OK, "consumer list (%d)", (int)jerr);
    char worst[64] = "";
    int64_t most = -1;
    for (int k = 0; k < list->Count; k++) {
        if (list->List[k]->NumWaiting > most) {
            most = list->List[k]->NumWaiting;
            snprintf(worst, sizeof worst, "%s", list->List[k]->Name);
        }
    }
    jsConsumerInfoList_Destroy(list);
    /* Two workers: at most three live requests per thread, and one sent as we counted. */
    CHECK(most >= 0 && most <= 7, "%s: %lld pull requests waiting", worst, (long long)most);
}

static pid_t read_pid(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/workers/%s.pid", env_or("DM_STACK_DIR", "."), name);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

static void killed_worker_loses_no_tick(void)
{
    long long before = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "EUR/USD");
    CHECK(before == 0, "EUR/USD ticks must not exist before this test");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s publish-ticks --symbol EUR/USD --file %s --limit 100000 --quiet >/dev/null",
             dmctl(), M1_FILE);
    pid_t pub = fork();
    if (pub == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* Kill w1 while ticks are flowing, mid-batch as likely as not. */
    long long n = 0;
    for (int i = 0; i < 200 && n < 20000; i++) {
        usleep(20000);
        n = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "EUR/USD");
    }
    pid_t w1 = read_pid("w1");
    bool killed = w1 > 0 && kill(w1, SIGKILL) == 0;
    int status = 0;
    waitpid(pub, &status, 0);
    /* Restart first, so a failure here does not leave later tests with one worker. */
    bool restarted = run_cmd("%s/deploy/stack.sh start-worker w1 >/dev/null", DM_SOURCE_DIR) == 0;
    CHECK(killed, "could not kill -9 w1");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "publisher failed");
    CHECK(restarted, "restart w1");
    CHECK(wait_idle(90), "consumers did not catch up after the restart");
    long long after = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "EUR/USD");
    long long distinct = pg_count("SELECT count(DISTINCT (ts, source)) FROM ticks WHERE symbol = $1", "EUR/USD");
    CHECK(after == 100000 && distinct == 100000, "after kill -9: %lld rows (%lld distinct), want 100000", after, distinct);
}

static bool wait_gone(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 20; i++) {
        if (kill(pid, 0) != 0)
            return true;
        char path[64], state = 0;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (f) { /* a zombie has exited: its parent is not us, so it may linger */
            if (fscanf(f, "%*d %*s %c", &state) != 1)
                state = 0;
            fclose(f);
        }
        if (state == 'Z')
            return true;
        usleep(50000);
    }
    return false;
}

static bool log_has(const char *name, const char *needle)
{
    char path[512], line[2048];
    snprintf(path, sizeof path, "%s/workers/%s.log", env_or("DM_STACK_DIR", "."), name);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void sigterm_mid_replay_finishes_in_flight_batches_and_exits(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s publish-ticks --symbol SIG/USD --file %s --per-minute 3 --limit 30000 --quiet >/dev/null",
             dmctl(), M1_FILE);
    pid_t pub = fork();
    if (pub == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "SIG/USD") < 3000; i++)
        usleep(10000);
    pid_t w2 = read_pid("w2");
    CHECK(w2 > 0 && kill(w2, SIGTERM) == 0, "could not SIGTERM w2");
    bool gone = wait_gone(w2, 15);
    int status = 0;
    waitpid(pub, &status, 0);
    bool restarted = gone && run_cmd("%s/deploy/stack.sh start-worker w2 >/dev/null", DM_SOURCE_DIR) == 0;
    CHECK(gone, "w2 still running 15 s after SIGTERM");
    CHECK(restarted, "restart w2");
    CHECK(log_has("w2", "draining") && log_has("w2", "stopped"), "w2 did not log a clean drain");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "publisher failed");
    /* Nothing w2 had in flight is lost. */
    CHECK(wait_idle(60), "drain");
    long long n = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "SIG/USD");
    CHECK(n == 30000, "after SIGTERM of w2: %lld of 30000 ticks stored", n);
}


/* ---- caches, coherence, strategy ------------------------------------------------------ */

/* One figure of one worker's dm.v1.metrics (requests land on any worker: ask until the
 * named one answers). NAN when absent. */
static double worker_metric(const char *worker, const char *a, const char *b, const char *c)
{
    for (int attempt = 0; attempt < 400; attempt++) {
        reply r;
        if (!request("dm.v1.metrics", "{}", false, &r))
            return NAN;
        double v = NAN;
        bool mine = strcmp(str(r.body, "worker"), worker) == 0;
        if (mine) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(r.body, a);
            if (b)
                n = cJSON_GetObjectItemCaseSensitive(n, b);
            if (c)
                n = cJSON_GetObjectItemCaseSensitive(n, c);
            v = cJSON_IsNumber(n) ? n->valuedouble : NAN;
        }
        reply_free(&r);
        if (mine)
            return v;
    }
    return NAN;
}

static const char *worker_version(const char *worker, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int attempt = 0; attempt < 400 && !buf[0]; attempt++) {
        reply r;
        if (!request("dm.v1.metrics", "{}", false, &r))
            break;
        if (strcmp(str(r.body, "worker"), worker) == 0)
            snprintf(buf, cap, "%s", str(r.body, "strategy_version"));
        reply_free(&r);
    }
    return buf;
}

static uint64_t publish_hourly(const char *symbol, const char *token, long long first, int n)
{
    size_t cap = (size_t)n * 220 + 64;
    char *body = malloc(cap);
    int off = sprintf(body, "{\"candles\":[");
    for (int i = 0; i < n; i++)
        off += sprintf(body + off, "%s{\"symbol\":\"%s\",\"timeframe\":\"1h\",\"timestamp\":%lld,"
                       "\"open\":1.1,\"high\":1.2,\"low\":1.0,\"close\":1.1%d,\"volume\":%d,\"source\":\"oanda\"}",
                       i ? "," : "", symbol, first + i * 3600000LL, i % 10, i);
    sprintf(body + off, "]}");
    char subject[64];
    snprintf(subject, sizeof subject, "market.candles.%s.1h", token);
    uint64_t seq = publish_json(subject, body, NULL);
    free(body);
    return seq;
}

static double newest_ts(const char *q, char *served, size_t cap)
{
    reply r;
    if (!request("dm.v1.candles.latest", q, false, &r))
        return NAN;
    int n = cJSON_GetArraySize(data(&r));
    double ts = n > 0 ? num(cJSON_GetArrayItem(data(&r), n - 1), "timestamp") : NAN;
    if (served)
        snprintf(served, cap, "%s", str(r.body, "served_by"));
    reply_free(&r);
    return ts;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void both_workers_serve_a_new_candle_within_a_second(void)
{
    CHECK(publish_hourly("COH/USD", "COHUSD", T0, 10) > 0, "publish");
    CHECK(wait_idle(20), "drain");
    const char *q = "{\"symbol\":\"COH/USD\",\"timeframe\":\"1h\",\"limit\":5}";
    int from_l1 = 0;
    for (int i = 0; i < 40; i++) { /* warm both workers' L1 */
        char served[32];
        CHECK(newest_ts(q, served, sizeof served) == (double)(T0 + 9 * 3600000LL), "warm-up read");
        from_l1 += strcmp(served, "l1") == 0;
    }
    CHECK(from_l1 > 0, "no read was served from L1: the test would prove nothing");
    long long next = T0 + 10 * 3600000LL;
    char body[300];
    snprintf(body, sizeof body, "{\"symbol\":\"COH/USD\",\"timeframe\":\"1h\",\"timestamp\":%lld,"
             "\"open\":1.1,\"high\":1.3,\"low\":1.0,\"close\":1.25,\"source\":\"oanda\"}", next);
    CHECK(publish_json("market.candle.COHUSD.1h", body, NULL) > 0, "publish");
    double t0 = now_ms();
    int fresh_in_a_row = 0;
    while (fresh_in_a_row < 40 && now_ms() - t0 < 1000) {
        double ts = newest_ts(q, NULL, 0);
        fresh_in_a_row = ts == (double)next ? fresh_in_a_row + 1 : 0;
    }
    CHECK(fresh_in_a_row >= 40, "1 s after the publish, reads still return the old newest candle");
}

/* An operator who deletes the lease bucket must not stop every candle write for good: the
 * holders find it gone and create it again. */
static void a_deleted_lease_bucket_is_created_again_and_candles_flow(void)
{
    CHECK(js_DeleteKeyValue(g_js, "DM_LEASES") == NATS_OK, "could not delete the lease bucket");
    kvStore *kv = NULL;
    natsStatus s = NATS_NOT_FOUND;
    for (int i = 0; i < 150 && s != NATS_OK; i++) { /* a holder renews every 500 ms */
        nats_Sleep(100);
        s = js_KeyValue(&kv, g_js, "DM_LEASES");
    }
    kvStore_Destroy(kv);
    CHECK(s == NATS_OK, "15 s after it was deleted, the lease bucket was not created again");
    CHECK(publish_hourly("LBD/USD", "LBDUSD", T0, 5) > 0, "publish");
    long long stored = 0;
    for (int i = 0; i < 150 && stored < 5; i++) {
        nats_Sleep(100);
        stored = pg_count("SELECT count(*) FROM candles WHERE symbol = $1", "LBD/USD");
    }
    CHECK(stored == 5, "%lld of 5 candles stored 15 s after the publish", stored);
    CHECK(wait_idle(20), "drain");
    const char *q = "{\"symbol\":\"LBD/USD\",\"timeframe\":\"1h\",\"limit\":5}";
    CHECK(newest_ts(q, NULL, 0) == (double)(T0 + 4 * 3600000LL), "the newest candle is not served");
}

typedef struct {
    const char *q;
    int ok;
} flight_arg;

static void *fire(void *arg)
{
    flight_arg *a = arg;
    reply r;
    if (request("dm.v1.candles.latest", a->q, false, &r) && r.status == 200 &&
        cJSON_GetArraySize(data(&r)) == 100)
        a->ok = 1;
    reply_free(&r);
    return NULL;
}

static void concurrent_misses_make_one_database_query_per_worker(void)
{
    CHECK(publish_hourly("SFL/USD", "SFLUSD", T0, 200) > 0, "publish");
    CHECK(wait_idle(20), "drain");
    CHECK(redis_del("candle:latest:{SFLUSD}:1h") == 1, "cache key missing");
    double before = worker_metric("w1", "backends", "timescale", "queries") +
                    worker_metric("w2", "backends", "timescale", "queries");
    double ms_before = worker_metric("w1", "backends", "timescale", "query_ms") +
                       worker_metric("w2", "backends", "timescale", "query_ms");
    enum { N = 100 };
    pthread_t th[N];
    flight_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (flight_arg){"{\"symbol\":\"SFL/USD\",\"timeframe\":\"1h\",\"limit\":100}", 0};
        pthread_create(&th[i], NULL, fire, &args[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    double after = worker_metric("w1", "backends", "timescale", "queries") +
                   worker_metric("w2", "backends", "timescale", "queries");
    double ms_after = worker_metric("w1", "backends", "timescale", "query_ms") +
                      worker_metric("w2", "backends", "timescale", "query_ms");
    CHECK(ok == N, "%d of %d concurrent requests got 100 candles", ok, N);
    /* The queries' time is counted too: more than nothing, less than the whole wait. */
    CHECK(!isnan(ms_before) && ms_after > ms_before && ms_after - ms_before < 5000,
          "timescale query_ms moved %.3f ms over the queries", ms_after - ms_before);
    CHECK(!isnan(before) && after - before >= 1 && after - before <= 2,
          "100 concurrent misses made %.0f database queries (want 1 or 2: one per worker at most)",
          after - before);
}

char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Writes like an editor: a temp file renamed over the original. */
bool write_by_rename(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp-edit", path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return false;
    fputs(text, f);
    fclose(f);
    return rename(tmp, path) == 0;
}

char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (at == NULL)
        return NULL;
    size_t n = strlen(text) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    size_t head = (size_t)(at - text);
    memcpy(out, text, head);
    strcpy(out + head, to);
    strcat(out, at + strlen(from));
    return out;
}

typedef struct {
    volatile int stop;
    int sent, failed;
} load_arg;

static void *keep_asking(void *arg)
{
    load_arg *a = arg;
    while (!a->stop) {
        reply r;
        bool ok = request("dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":100}", false, &r) &&
                  r.status == 200 && cJSON_GetArraySize(data(&r)) == 100;
        reply_free(&r);
        a->sent++;
        a->failed += !ok;
    }
    return NULL;
}

bool wait_version(const char *want, int timeout_s)
{
    double t0 = now_ms();
    char v1[64], v2[64];
    while (now_ms() - t0 < timeout_s * 1000.0) {
        if (strcmp(worker_version("w1", v1, sizeof v1), want) == 0 &&
            strcmp(worker_version("w2", v2, sizeof v2), want) == 0)
            return true;
        usleep(50000);
    }
    return false;
}

static void strategy_edit_reroutes_reads_without_restart_or_failed_request(void)
{
    const char *path = getenv("DM_STRATEGY");
    CHECK(path && ensure_h1_loaded(), "DM_STRATEGY unset or no data");
    char *orig = read_file(path);
    CHECK(orig, "cannot read %s", path);
    char *only_db = replace(orig, "\"get_candles\": [\"l1\", \"dragonfly_cache\", \"timescale\", \"clickhouse\"]",
                            "\"get_candles\": [\"timescale\"]");
    char *edited = only_db ? replace(only_db, "\"version\": 2,", "\"version\": \"reroute-test\",") : NULL;
    free(only_db);
    if (edited == NULL) {
        free(orig);
        CHECK(false, "strategy file does not have the expected get_candles route");
    }
    load_arg load = {0};
    pthread_t th;
    pthread_create(&th, NULL, keep_asking, &load);
    bool wrote = write_by_rename(path, edited);
    bool applied = wrote && wait_version("reroute-test", 5);
    char served[32] = "";
    if (applied)
        newest_ts("{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":100}", served, sizeof served);
    /* Back as `cp` would write it: truncate and write in place. */
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(orig, f);
        fclose(f);
    }
    bool restored = wait_version("2", 5);
    char served_after[32] = "";
    for (int i = 0; i < 5; i++)
        newest_ts("{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":100}", served_after, sizeof served_after);
    /* Both reloads can land within a few hundred ms: keep asking until the load is big enough to mean something. */
    for (double t0 = now_ms(); load.sent <= 50 && now_ms() - t0 < 5000;)
        usleep(10000);
    load.stop = 1;
    pthread_join(th, NULL);
    free(orig);
    free(edited);
    CHECK(applied, "the edited strategy was not applied by both workers within 5 s");
    CHECK(strcmp(served, "timescale") == 0, "after the edit, served_by %s (want timescale)", served);
    CHECK(restored, "the restored strategy was not applied within 5 s");
    CHECK(strcmp(served_after, "l1") == 0 || strcmp(served_after, "dragonfly") == 0,
          "after restoring, served_by %s", served_after);
    CHECK(load.sent > 50 && load.failed == 0, "%d of %d requests failed during the reloads", load.failed, load.sent);
}


/* Waits until `worker`'s health lists (or no longer lists) consumer `name`. */
static bool wait_consumer(const char *worker, const char *name, bool present, int timeout_s)
{
    double t0 = now_ms();
    while (now_ms() - t0 < timeout_s * 1000.0) {
        reply r;
        if (!request("dm.v1.health", "{}", false, &r))
            return false;
        bool mine = strcmp(str(r.body, "worker"), worker) == 0, found = false;
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.body, "consumers"))
            found = found || (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0);
        reply_free(&r);
        if (mine && found == present)
            return true;
        usleep(20000);
    }
    return false;
}

static void strategy_edit_changes_write_fan_out(void)
{
    const char *path = getenv("DM_STRATEGY");
    CHECK(path, "DM_STRATEGY unset");
    char *orig = read_file(path);
    CHECK(orig, "cannot read %s", path);
    const char *from = strstr(orig, "\"save_tick\": [");
    const char *to = from ? strchr(from, ']') : NULL;
    if (to == NULL) {
        free(orig);
        CHECK(false, "no save_tick route in %s", path);
    }
    size_t head = (size_t)(from - orig);
    char *edited = malloc(strlen(orig) + 64);
    memcpy(edited, orig, head);
    /* Dragonfly out, ClickHouse in: the clickhouse-tick consumer starts. */
    sprintf(edited + head, "\"save_tick\": [\"timescale\", \"clickhouse\"%s", to);
    char *versioned = replace(edited, "\"version\": 2,", "\"version\": \"no-tick-cache\",");
    free(edited);
    bool applied = versioned && write_by_rename(path, versioned) && wait_version("no-tick-cache", 5) &&
                   wait_consumer("w1", "dragonfly-tick", false, 5) &&
                   wait_consumer("w2", "dragonfly-tick", false, 5) &&
                   wait_consumer("w1", "clickhouse-tick", true, 5) &&
                   wait_consumer("w2", "clickhouse-tick", true, 5);
    uint64_t seq = applied ? publish_json("market.tick.FANUSD", "{\"symbol\":\"FAN/USD\",\"timestamp\":1578528000000,"
                                          "\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"oanda\"}", NULL) : 0;
    bool idle = seq && wait_idle_except(20, "dragonfly-tick");
    long long stored = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "FAN/USD");
    long long in_ch = ch_count("SELECT count() FROM dm.ticks FINAL WHERE symbol = 'FAN/USD'");
    int cached = redis_exists("tick:latest:{FANUSD}");
    write_by_rename(path, orig);
    bool restored = wait_version("2", 5) && wait_consumer("w1", "clickhouse-tick", false, 5) &&
                    wait_consumer("w2", "clickhouse-tick", false, 5);
    /* Out of the route, clickhouse-tick has no reader left: remove it, or every later
     * "all consumers idle" wait would wait for it. */
    jsErrCode jerr = 0;
    bool removed = js_DeleteConsumer(g_js, "MARKET", "clickhouse-tick", NULL, &jerr) == NATS_OK;
    /* Back in the route, the dragonfly-tick consumer resumes where it stopped. */
    bool caught_up = restored && wait_idle(20);
    int cached_after = redis_exists("tick:latest:{FANUSD}");
    free(orig);
    free(versioned);
    CHECK(applied, "the edited strategy was not applied within 5 s");
    CHECK(idle && stored == 1, "the tick must still be stored in timescale (%lld)", stored);
    CHECK(in_ch == 1, "with clickhouse in save_tick, the tick must reach ClickHouse (%lld)", in_ch);
    CHECK(cached == 0, "with dragonfly out of save_tick, the tick must not reach Redis");
    CHECK(caught_up && cached_after == 1, "back in the route, dragonfly-tick must catch up (%d)", cached_after);
    CHECK(removed, "could not remove the clickhouse-tick consumer");
}

static void invalid_strategy_is_refused_counted_and_the_old_one_keeps_serving(void)
{
    const char *path = getenv("DM_STRATEGY");
    CHECK(path, "DM_STRATEGY unset");
    char *orig = read_file(path);
    CHECK(orig, "cannot read %s", path);
    char *bad = replace(orig, "\"get_historical\": [\"clickhouse\", \"timescale\"]",
                        "\"get_historical\": [\"clickhouse\", \"nosuchdb\"]");
    double f1 = worker_metric("w1", "strategy", "reload_failures", NULL);
    double f2 = worker_metric("w2", "strategy", "reload_failures", NULL);
    bool wrote = bad && write_by_rename(path, bad);
    double t0 = now_ms();
    bool counted = false;
    while (wrote && !counted && now_ms() - t0 < 5000) {
        counted = worker_metric("w1", "strategy", "reload_failures", NULL) > f1 &&
                  worker_metric("w2", "strategy", "reload_failures", NULL) > f2;
        usleep(50000);
    }
    char v[64];
    bool kept = strcmp(worker_version("w1", v, sizeof v), "2") == 0;
    reply r;
    bool serving = request("dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":3}", false, &r) &&
                   r.status == 200;
    reply_free(&r);
    write_by_rename(path, orig);
    free(orig);
    free(bad);
    CHECK(wrote, "could not write the invalid strategy");
    CHECK(counted, "reload failures did not rise on both workers");
    CHECK(kept && serving, "the running strategy must stay and keep serving");
    CHECK(log_has("w1", "routing.get_historical"), "the log must name the field at fault");
}


/* ---- ClickHouse ----------------------------------------------------------------------- */

/* Rewrites the test stack's strategy: `from` -> `to`, with a new version name, and waits
 * until both workers run it. Returns the original text (to restore) or NULL. */
static char *edit_strategy(const char *from, const char *to, const char *version)
{
    const char *path = getenv("DM_STRATEGY");
    char *orig = path ? read_file(path) : NULL;
    char *a = orig ? replace(orig, from, to) : NULL;
    char vline[96];
    snprintf(vline, sizeof vline, "\"version\": \"%s\",", version);
    char *b = a ? replace(a, "\"version\": 2,", vline) : NULL;
    bool ok = b && write_by_rename(path, b) && wait_version(version, 5);
    free(a);
    free(b);
    if (!ok) {
        free(orig);
        return NULL;
    }
    return orig;
}

bool restore_strategy(char *orig)
{
    const char *path = getenv("DM_STRATEGY");
    bool ok = orig && write_by_rename(path, orig) && wait_version("2", 5);
    free(orig);
    return ok;
}

/* Pages the whole ten years through dm.v1.candles.history; keeps every page's rows. */
static int history_pages(cJSON **all, char *served, size_t cap)
{
    char cursor[256] = "", q[512];
    *all = cJSON_CreateArray();
    served[0] = '\0';
    for (;;) {
        snprintf(q, sizeof q,
                 "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2010-01-01\","
                 "\"end_date\":\"2022-01-01\",\"page_size\":10000%s%s%s}",
                 cursor[0] ? ",\"cursor\":\"" : "", cursor, cursor[0] ? "\"" : "");
        reply r;
        if (!request("dm.v1.candles.history", q, true, &r) || r.status != 200) {
            reply_free(&r);
            return -1;
        }
        snprintf(served, cap, "%s", str(r.body, "served_by"));
        cJSON *it;
        cJSON *d = cJSON_DetachItemFromObjectCaseSensitive(r.body, "data");
        while ((it = cJSON_DetachItemFromArray(d, 0)) != NULL)
            cJSON_AddItemToArray(*all, it);
        cJSON_Delete(d);
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(r.body, "next_cursor");
        bool more = cJSON_IsString(next);
        if (more)
            snprintf(cursor, sizeof cursor, "%s", next->valuestring);
        reply_free(&r);
        if (!more)
            return cJSON_GetArraySize(*all);
    }
}

static void clickhouse_and_timescale_give_the_same_ten_years(void)
{
    CHECK(ensure_h1_loaded(), "backfill");
    CHECK(ch_count("SELECT count() FROM dm.candles FINAL WHERE symbol = 'EUR/USD' AND timeframe = '1h'") == 65000,
          "ClickHouse does not hold the 65000 candles");
    cJSON *ch = NULL, *pg = NULL;
    char served_ch[32], served_pg[32];
    int n_ch = history_pages(&ch, served_ch, sizeof served_ch);
    char *orig = edit_strategy("\"get_historical\": [\"clickhouse\", \"timescale\"]",
                               "\"get_historical\": [\"timescale\"]", "history-pg");
    int n_pg = orig ? history_pages(&pg, served_pg, sizeof served_pg) : -1;
    bool restored = restore_strategy(orig);
    bool same = n_ch == 65000 && n_pg == 65000 && cJSON_Compare(ch, pg, true);
    cJSON_Delete(ch);
    cJSON_Delete(pg);
    CHECK(restored, "strategy edit/restore failed");
    CHECK(strcmp(served_ch, "clickhouse") == 0 && strcmp(served_pg, "timescale") == 0,
          "served_by %s / %s", served_ch, served_pg);
    CHECK(same, "ten years from clickhouse (%d rows) and timescale (%d rows) differ", n_ch, n_pg);
}

static void a_cursor_begun_on_clickhouse_continues_on_timescale(void)
{
    CHECK(ensure_h1_loaded(), "backfill");
    const char *q1 = "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2015-01-01\",\"end_date\":\"2015-02-01\",\"page_size\":100}";
    reply r;
    CHECK(request("dm.v1.candles.history", q1, false, &r), "no reply");
    char cursor[256], served1[32];
    snprintf(cursor, sizeof cursor, "%s", str(r.body, "next_cursor"));
    snprintf(served1, sizeof served1, "%s", str(r.body, "served_by"));
    double last = num(cJSON_GetArrayItem(data(&r), 99), "timestamp");
    reply_free(&r);
    char *orig = edit_strategy("\"get_historical\": [\"clickhouse\", \"timescale\"]",
                               "\"get_historical\": [\"timescale\"]", "cursor-pg");
    char q2[512];
    snprintf(q2, sizeof q2, "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2015-01-01\",\"end_date\":\"2015-02-01\",\"page_size\":100,\"cursor\":\"%s\"}", cursor);
    bool got = orig && request("dm.v1.candles.history", q2, false, &r);
    double first = got ? num(cJSON_GetArrayItem(data(&r), 0), "timestamp") : NAN;
    char served2[32] = "";
    if (got)
        snprintf(served2, sizeof served2, "%s", str(r.body, "served_by"));
    reply_free(&r);
    bool restored = restore_strategy(orig);
    CHECK(restored, "strategy edit/restore failed");
    CHECK(strcmp(served1, "clickhouse") == 0 && strcmp(served2, "timescale") == 0, "served_by %s then %s", served1, served2);
    CHECK(first == last + 3600000.0, "page 2 starts at %.0f, page 1 ended at %.0f", first, last);
}

static void clickhouse_down_history_from_timescale_then_it_catches_up(void)
{
    CHECK(run_cmd("%s/deploy/stack.sh stop-service clickhouse >/dev/null 2>&1", DM_SOURCE_DIR) == 0, "stop clickhouse");
    CHECK(publish_hourly("CHD/USD", "CHDUSD", T0, 500) > 0, "publish while ClickHouse is down");
    /* PostgreSQL and Redis are not held up by the outage. */
    bool pg_done = false;
    for (int i = 0; i < 100 && !pg_done; i++) {
        pg_done = pg_count("SELECT count(*) FROM candles WHERE symbol = $1", "CHD/USD") == 500 &&
                  redis_exists("candle:latest:{CHDUSD}:1h") == 1;
        usleep(100000);
    }
    reply r;
    bool asked = request("dm.v1.candles.history", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2020-01-01\",\"end_date\":\"2020-01-02\"}", false, &r);
    bool from_pg = asked && r.status == 200 && strcmp(str(r.body, "served_by"), "timescale") == 0 &&
                   cJSON_GetArraySize(data(&r)) > 0;
    reply_free(&r);
    bool started = run_cmd("%s/deploy/stack.sh start-service clickhouse >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    bool caught_up = started && wait_idle(90);
    long long in_ch = ch_count("SELECT count() FROM dm.candles FINAL WHERE symbol = 'CHD/USD'");
    CHECK(pg_done, "PostgreSQL and Redis writes waited for ClickHouse");
    CHECK(from_pg, "with ClickHouse down, history must come from timescale");
    CHECK(caught_up && in_ch == 500, "after restart ClickHouse holds %lld of 500", in_ch);
}

static void bulk_backfill_lands_in_all_three_backends(void)
{
    CHECK(ensure_h1_loaded(), "backfill");
    long long pg = pg_count("SELECT count(*) FROM candles WHERE symbol = $1 AND timeframe = '1h'", "EUR/USD");
    long long ch = ch_count("SELECT count() FROM dm.candles FINAL WHERE symbol = 'EUR/USD' AND timeframe = '1h'");
    reply r;
    CHECK(request("dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":1000}", false, &r), "no reply");
    int n = cJSON_GetArraySize(data(&r));
    reply_free(&r);
    CHECK(pg == 65000 && ch == 65000 && n == 1000, "PostgreSQL %lld, ClickHouse %lld, latest 1000 -> %d", pg, ch, n);
    /* A second backfill of the same file changes no count (idempotent upserts, FINAL). */
    CHECK(run_cmd("%s publish-candles --symbol EUR/USD --timeframe 1h --file %s --quiet >/dev/null", dmctl(), H1_FILE) == 0, "republish");
    CHECK(wait_idle(120), "drain");
    CHECK(pg_count("SELECT count(*) FROM candles WHERE symbol = $1 AND timeframe = '1h'", "EUR/USD") == 65000 &&
          ch_count("SELECT count() FROM dm.candles FINAL WHERE symbol = 'EUR/USD' AND timeframe = '1h'") == 65000,
          "a second backfill changed the counts");
}


/* The breaker state of `backend` in `worker`'s health ("" when not reported). */
static void breaker_of(const char *worker, const char *backend, char *out, size_t cap)
{
    out[0] = '\0';
    for (int attempt = 0; attempt < 400 && !out[0]; attempt++) {
        reply r;
        if (!request("dm.v1.health", "{}", false, &r))
            return;
        if (strcmp(str(r.body, "worker"), worker) == 0) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r.body, "backends"), backend);
            snprintf(out, cap, "%s", cJSON_IsObject(b) ? str(b, "breaker") : "?");
        }
        reply_free(&r);
    }
}

static bool both_breakers(const char *backend, const char *want, int timeout_s)
{
    double t0 = now_ms();
    char a[32], b[32];
    while (now_ms() - t0 < timeout_s * 1000.0) {
        /* Reads give the breaker its failures (and later its probe). */
        reply r;
        if (request("dm.v1.events", "{\"start_date\":\"2026-01-01\",\"end_date\":\"2027-01-01\"}", false, &r))
            reply_free(&r);
        breaker_of("w1", backend, a, sizeof a);
        breaker_of("w2", backend, b, sizeof b);
        if (strcmp(a, want) == 0 && strcmp(b, want) == 0)
            return true;
        usleep(50000);
    }
    return false;
}

static void breaker_skips_a_down_database_and_closes_when_it_returns(void)
{
    char *orig = edit_strategy("\"circuit_breaker_timeout\": 60", "\"circuit_breaker_timeout\": 2", "breaker-test");
    CHECK(orig, "strategy edit failed");
    bool stopped = run_cmd("%s/deploy/stack.sh stop-service postgres >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    char body[256];
    for (int i = 0; stopped && i < 200; i++) {
        snprintf(body, sizeof body, "{\"symbol\":\"BRK/USD\",\"timestamp\":%lld,\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"oanda\"}",
                 T0 + i * 1000LL);
        publish_json("market.tick.BRKUSD", body, NULL);
    }
    bool opened = stopped && both_breakers("timescale", "open", 15);
    reply r;
    bool skipped = request("dm.v1.events", "{\"start_date\":\"2026-01-01\",\"end_date\":\"2027-01-01\"}", false, &r) &&
                   r.status == 503 && strstr(r.raw, "circuit open") != NULL;
    reply_free(&r);
    /* The cache keeps answering what it has. */
    bool tick = request("dm.v1.tick.latest", "{\"symbol\":\"BRK/USD\"}", false, &r) && r.status == 200;
    reply_free(&r);
    bool started = run_cmd("%s/deploy/stack.sh start-service postgres >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    bool closed = started && both_breakers("timescale", "closed", 20);
    bool drained = closed && wait_idle(30);
    long long n = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "BRK/USD");
    bool restored = restore_strategy(orig);
    CHECK(stopped && started, "could not stop/start PostgreSQL");
    CHECK(opened, "the timescale breaker did not open on both workers");
    CHECK(skipped, "with the breaker open, timescale-only reads must fail fast with 'circuit open'");
    CHECK(tick, "the latest tick must still come from the cache");
    CHECK(closed, "the breakers did not close after PostgreSQL came back");
    CHECK(drained && n == 200, "after the outage %lld of 200 ticks reached PostgreSQL", n);
    CHECK(restored, "strategy restore failed");
}

/* The latest 15-minute candles of `q`: the newest open time, and whether they run without
 * a hole (one candle every 15 minutes) with closes as published (close = 1.1 + i/1e5). */
static double newest_gap_free(const char *q, bool *gap_free)
{
    reply r;
    *gap_free = false;
    if (!request("dm.v1.candles.latest", q, false, &r) || r.status != 200) {
        if (r.body)
            reply_free(&r);
        return NAN;
    }
    int n = cJSON_GetArraySize(data(&r));
    double prev = NAN, ts = NAN;
    bool ok = n > 0;
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(data(&r), i);
        ts = num(c, "timestamp");
        long long k = (long long)((ts - (double)T0) / 900000.0);
        ok = ok && (i == 0 || ts == prev + 900000.0) && fabs(num(c, "close") - (1.1 + (double)k / 1e5)) < 1e-9;
        prev = ts;
    }
    reply_free(&r);
    *gap_free = ok;
    return ts;
}

static void fifteen_minute(char *body, size_t cap, const char *symbol, int i)
{
    snprintf(body, cap, "{\"symbol\":\"%s\",\"timeframe\":\"15m\",\"timestamp\":%lld,\"open\":1.1,"
             "\"high\":1.2,\"low\":1.0,\"close\":%.5f,\"source\":\"oanda\"}",
             symbol, T0 + i * 900000LL, 1.1 + i / 1e5);
}

/* Redis (Dragonfly) stopped: PostgreSQL's commits still reach every worker's L1, so the
 * newest candle and tick are answered within a second of their PubAck; latest answers
 * have no hole; an unknown symbol is not_found, not unavailable; health says degraded. */
static void redis_down_reads_stay_fresh_and_gap_free(void)
{
    /* A short breaker timeout, so the test also sees health come back after Redis does. */
    char *orig = edit_strategy("\"circuit_breaker_timeout\": 60", "\"circuit_breaker_timeout\": 2",
                               "redis-down-test");
    CHECK(orig, "strategy edit failed");
    char body[300];
    const char *q = "{\"symbol\":\"RDF/USD\",\"timeframe\":\"15m\",\"limit\":50}";
    for (int i = 0; i < 60; i++) {
        fifteen_minute(body, sizeof body, "RDF/USD", i);
        CHECK(publish_json("market.candle.RDFUSD.15m", body, NULL) > 0, "publish");
    }
    CHECK(wait_idle(20), "drain");
    for (int i = 0; i < 40; i++) { /* both workers' L1 hold the first fill */
        bool ok;
        CHECK(newest_gap_free(q, &ok) == (double)(T0 + 59 * 900000LL) && ok, "warm-up read");
    }
    bool stopped = run_cmd("%s/deploy/stack.sh stop-service redis >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    for (int i = 60; stopped && i < 260; i++) {
        fifteen_minute(body, sizeof body, "RDF/USD", i);
        publish_json("market.candle.RDFUSD.15m", body, NULL);
    }
    snprintf(body, sizeof body, "{\"symbol\":\"RDN/USD\",\"timestamp\":%lld,\"bid\":1.1,\"ask\":1.2,"
             "\"spread\":0.1,\"source\":\"oanda\"}", T0);
    uint64_t last = stopped ? publish_json("market.tick.RDNUSD", body, NULL) : 0;
    double acked = now_ms(), fresh_at = -1;
    int holes = 0, fresh_in_a_row = 0, answered = 0, asked = 0;
    while (last && now_ms() - acked < 3000 && fresh_in_a_row < 100) {
        bool ok;
        double ts = newest_gap_free(q, &ok);
        reply t;
        bool tick = request("dm.v1.tick.latest", "{\"symbol\":\"RDN/USD\"}", false, &t) && t.status == 200;
        if (t.body)
            reply_free(&t);
        asked++;
        answered += !isnan(ts);
        holes += !isnan(ts) && !ok;
        bool fresh = ts == (double)(T0 + 259 * 900000LL) && tick;
        if (fresh && fresh_in_a_row == 0)
            fresh_at = now_ms() - acked;
        fresh_in_a_row = fresh ? fresh_in_a_row + 1 : 0;
        usleep(10000);
    }
    reply r;
    bool not_found = request("dm.v1.candles.latest", "{\"symbol\":\"NOX/USD\",\"timeframe\":\"15m\"}", false, &r) &&
                     r.status == 404;
    reply_free(&r);
    bool nf_tick = request("dm.v1.tick.latest", "{\"symbol\":\"NOX/USD\"}", false, &r) && r.status == 404;
    reply_free(&r);
    bool degraded = request("dm.v1.health", "{}", false, &r) && strcmp(str(r.body, "status"), "degraded") == 0 &&
                    strstr(r.raw, "dragonfly") != NULL;
    reply_free(&r);
    bool started = run_cmd("%s/deploy/stack.sh start-service redis >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    /* Back: breakers close, the dragonfly consumers catch up, health says healthy again. */
    bool closed = started && both_breakers("dragonfly", "closed", 30) && wait_idle(30);
    int healthy = 0;
    for (int i = 0; closed && i < 300 && healthy < 10; i++) {
        healthy = request("dm.v1.health", "{}", false, &r) && strcmp(str(r.body, "status"), "healthy") == 0
                      ? healthy + 1
                      : 0;
        reply_free(&r);
        usleep(healthy ? 0 : 100000);
    }
    bool restored = restore_strategy(orig);
    printf("     fresh %.0f ms after the last PubAck; %d/%d reads answered, %d with a hole\n", fresh_at,
           answered, asked, holes);
    CHECK(stopped && started, "could not stop/start Redis");
    CHECK(restored, "strategy restore failed");
    CHECK(closed && healthy >= 10, "after Redis came back, the breakers did not close or health did not say healthy");
    CHECK(fresh_in_a_row >= 100 && fresh_at >= 0 && fresh_at <= 1000,
          "with Redis down the newest candle and tick were not answered within 1 s (fresh after %.0f ms)", fresh_at);
    CHECK(holes == 0, "%d latest answers had a hole or a value never published", holes);
    CHECK(answered == asked, "only %d of %d reads answered", answered, asked);
    CHECK(not_found && nf_tick, "an unknown symbol with Redis down must be not_found");
    CHECK(degraded, "health must say degraded, naming dragonfly, while Redis is down");
}

/* The DLQ entry of `stream_seq` made by `backend`'s consumer, read through dmctl; 0 if none. */
static uint64_t dlq_entry(uint64_t stream_seq, const char *backend, cJSON **entry)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "%s dlq list --kind tick --json 2>/dev/null", dmctl());
    FILE *f = popen(cmd, "r");
    char line[8192];
    uint64_t found = 0;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
        if (!found && atoll(str(h, "Dm-Stream-Seq")) == (long long)stream_seq &&
            strcmp(str(h, "Dm-Backend"), backend) == 0) {
            found = (uint64_t)num(o, "seq");
            *entry = o;
            continue;
        }
        cJSON_Delete(o);
    }
    if (f)
        pclose(f);
    return found;
}

/* Keeps the breaker shut, retries nothing in place and allows 2 deliveries, so every
 * failed batch is a delivery and the third goes to the DLQ; the strategy as it was goes to
 * *orig (for restore_strategy). */
bool strategy_for_dead_letters(const char *version, char **orig)
{
    const char *path = getenv("DM_STRATEGY");
    *orig = path ? read_file(path) : NULL;
    char tag[80];
    snprintf(tag, sizeof tag, "\"version\": \"%s\",", version);
    char *a = *orig ? replace(*orig, "\"circuit_breaker_threshold\": 5", "\"circuit_breaker_threshold\": 1000") : NULL;
    char *b = a ? replace(a, "\"max_deliveries\": 30", "\"max_deliveries\": 2") : NULL;
    char *c = b ? replace(b, "\"retry_max_attempts\": 3", "\"retry_max_attempts\": 1") : NULL;
    char *d = c ? replace(c, "\"version\": 2,", tag) : NULL;
    bool edited = d && write_by_rename(path, d) && wait_version(version, 5);
    free(a), free(b), free(c), free(d);
    return edited;
}

static void over_delivered_write_goes_to_the_dlq_and_replays(void)
{
    const char *path = getenv("DM_STRATEGY");
    char *orig = NULL;
    bool edited = strategy_for_dead_letters("dlq-test", &orig);
    bool stopped = edited && run_cmd("%s/deploy/stack.sh stop-service postgres >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    uint64_t seq = stopped ? publish_json("market.tick.DLQUSD",
                                          "{\"symbol\":\"DLQ/USD\",\"timestamp\":1767225600000,\"bid\":1.1,"
                                          "\"ask\":1.2,\"spread\":0.1,\"source\":\"oanda\"}", NULL)
                                : 0;
    cJSON *entry = NULL;
    uint64_t dlq_seq = 0;
    for (int i = 0; seq && i < 150 && !dlq_seq; i++) {
        usleep(200000);
        dlq_seq = dlq_entry(seq, "timescale", &entry);
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(entry, "headers");
    bool headers = dlq_seq && strcmp(str(h, "Dm-Delivered"), "3") == 0 &&
                   strcmp(str(h, "Dm-Code"), "unavailable") == 0 &&
                   strstr(str(h, "Dm-Reason"), "max_deliveries 2") != NULL &&
                   strcmp(str(h, "Dm-Original-Subject"), "market.tick.DLQUSD") == 0;
    char *txt = entry ? cJSON_PrintUnformatted(entry) : NULL;
    cJSON_Delete(entry);
    bool started = run_cmd("%s/deploy/stack.sh start-service postgres >/dev/null 2>&1", DM_SOURCE_DIR) == 0;
    bool restored = orig && write_by_rename(path, orig) && wait_version("2", 5);
    free(orig);
    long long before = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "DLQ/USD");
    bool replayed = dlq_seq && run_cmd("%s dlq replay --seq %llu >/dev/null", dmctl(), (unsigned long long)dlq_seq) == 0;
    bool drained = replayed && wait_idle(30);
    long long after = pg_count("SELECT count(*) FROM ticks WHERE symbol = $1", "DLQ/USD");
    cJSON *gone = NULL;
    bool deleted = replayed && dlq_entry(seq, "timescale", &gone) == 0;
    cJSON_Delete(gone);
    CHECK(edited && stopped && started && restored, "strategy edit or PostgreSQL stop/start failed");
    CHECK(dlq_seq, "no DLQ entry by timescale for stream seq %llu after max_deliveries", (unsigned long long)seq);
    CHECK(headers, "DLQ entry headers: %s", txt ? txt : "(none)");
    free(txt);
    CHECK(before == 0, "the tick reached PostgreSQL before the replay (%lld rows)", before);
    CHECK(replayed && drained && after == 1, "after replay: %lld rows of DLQ/USD in PostgreSQL", after);
    CHECK(deleted, "a replayed entry must leave the DLQ");
}

/* GET (or another method) on a worker's HTTP port; the status, and the body in buf. */
static int http_get(int worker, const char *method, const char *path, char *buf, size_t cap)
{
    char cmd[512];
    int port = atoi(env_or("DM_HTTP_PORT", "29460")) + worker;
    snprintf(cmd, sizeof cmd, "curl -s -X %s -w '\\n%%{http_code}' http://127.0.0.1:%d%s", method, port, path);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        pclose(f);
    buf[n] = '\0';
    char *last = strrchr(buf, '\n');
    if (last == NULL)
        return -1;
    *last = '\0';
    return atoi(last + 1);
}

static void http_port_serves_prometheus_metrics_and_probes(void)
{
    reply r;
    bool asked = request("dm.v1.candles.latest", "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":5}", false, &r);
    reply_free(&r);
    static char body[1 << 20];
    char small[256];
    int health = http_get(1, "GET", "/healthz", small, sizeof small);
    int ready = http_get(2, "GET", "/readyz", small, sizeof small);
    int post = http_get(1, "POST", "/metrics", small, sizeof small);
    int missing = http_get(1, "GET", "/nope", small, sizeof small);
    /* Either worker may have answered: the counter is on one of them. */
    bool counted = false;
    int metrics = 0;
    for (int w = 1; w <= 2; w++) {
        metrics = http_get(w, "GET", "/metrics", body, sizeof body);
        counted = counted || strstr(body, "dm_requests_total{op=\"get_candles\"}") != NULL;
    }
    CHECK(asked, "no reply to candles.latest");
    CHECK(health == 200 && ready == 200, "/healthz %d, /readyz %d", health, ready);
    CHECK(post == 405 && missing == 404, "POST /metrics %d (want 405), /nope %d (want 404)", post, missing);
    CHECK(metrics == 200 && counted, "/metrics %d; get_candles counted: %d", metrics, counted);
    CHECK(strstr(body, "dm_breaker_state{backend=\"timescale\"} 0") &&
              strstr(body, "dm_pool_connections{backend=\"timescale\",state=\"max\"} 20") &&
              strstr(body, "dm_consumer_pending{consumer=\"timescale-tick\"}") &&
              strstr(body, "# TYPE dm_request_duration_seconds histogram") &&
              strstr(body, "dm_strategy_info{version=\"2\"} 1"),
          "/metrics lacks a family: %.2000s", body);
    /* Every family says what it counts. */
    int types = 0, helps = 0;
    for (const char *p = body; (p = strstr(p, "\n# TYPE ")) != NULL; p++) {
        types++;
        const char *name = p + 8;
        size_t len = strcspn(name, " ");
        char help[160];
        snprintf(help, sizeof help, "# HELP %.*s ", (int)len, name);
        helps += strstr(body, help) != NULL;
    }
    CHECK(types > 10 && helps == types, "%d of %d metric families have a # HELP line", helps, types);
}

static void health_reports_each_backend(void)
{
    reply r;
    CHECK(request("dm.v1.health", "{}", false, &r), "no reply");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(r.body, "backends");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(b, "timescale");
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(ts, "pool");
    const cJSON *lag = cJSON_GetObjectItemCaseSensitive(r.body, "consumer_lag");
    const cJSON *tick_lag = cJSON_GetObjectItemCaseSensitive(lag, "timescale-tick");
    bool ok = strcmp(str(r.body, "status"), "healthy") == 0 &&
              strcmp(str(ts, "status"), "up") == 0 &&
              strcmp(str(cJSON_GetObjectItemCaseSensitive(b, "dragonfly"), "status"), "up") == 0 &&
              strcmp(str(ts, "breaker"), "closed") == 0 &&
              /* the strategy's pool sizes, and the keeper has opened min connections */
              num(pool, "min") == 5 && num(pool, "max") == 20 && num(pool, "open") >= 5 &&
              num(pool, "in_use") >= 1 && /* the health request itself holds one */
              cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tick_lag, "pending")) &&
              cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r.body, "dead_letters")) &&
              strcmp(str(r.body, "strategy_version"), "2") == 0;
    char txt[1200];
    char *full = cJSON_PrintUnformatted(r.body);
    snprintf(txt, sizeof txt, "%s", full ? full : "");
    free(full);
    reply_free(&r);
    CHECK(ok, "health: %s", txt);
}

static const itest TESTS[] = {
    {"tick_round_trips_every_field", tick_round_trips_every_field},
    {"latest_tick_stays_newest_when_an_older_one_arrives_late", latest_tick_stays_newest_when_an_older_one_arrives_late},
    {"a_tick_stored_again_takes_the_newer_values", a_tick_stored_again_takes_the_newer_values},
    {"candles_round_trip_oldest_first_with_limit", candles_round_trip_oldest_first_with_limit},
    {"latest_candles_fall_back_to_timescale_and_refill_the_cache", latest_candles_fall_back_to_timescale_and_refill_the_cache},
    {"history_pages_reassemble_to_the_published_set", history_pages_reassemble_to_the_published_set},
    {"json_and_msgpack_answers_are_identical", json_and_msgpack_answers_are_identical},
    {"history_edges_empty_range_unknown_symbol_and_foreign_cursor", history_edges_empty_range_unknown_symbol_and_foreign_cursor},
    {"aggregates_match_an_independent_computation", aggregates_match_an_independent_computation},
    {"events_are_filtered_by_country_currency_and_impact", events_are_filtered_by_country_currency_and_impact},
    {"bad_requests_get_a_code_a_field_and_a_status", bad_requests_get_a_code_a_field_and_a_status},
    {"bad_publishes_are_dead_lettered_once_and_never_stored", bad_publishes_are_dead_lettered_once_and_never_stored},
    {"bulk_keeps_valid_candles_and_dead_letters_the_rest", bulk_keeps_valid_candles_and_dead_letters_the_rest},
    {"two_workers_share_the_load_and_write_nothing_twice", two_workers_share_the_load_and_write_nothing_twice},
    {"bursts_leave_no_extra_pull_requests_waiting", bursts_leave_no_extra_pull_requests_waiting},
    {"killed_worker_loses_no_tick", killed_worker_loses_no_tick},
    {"sigterm_mid_replay_finishes_in_flight_batches_and_exits", sigterm_mid_replay_finishes_in_flight_batches_and_exits},
    {"both_workers_serve_a_new_candle_within_a_second", both_workers_serve_a_new_candle_within_a_second},
    {"a_deleted_lease_bucket_is_created_again_and_candles_flow", a_deleted_lease_bucket_is_created_again_and_candles_flow},
    {"concurrent_misses_make_one_database_query_per_worker", concurrent_misses_make_one_database_query_per_worker},
    {"strategy_edit_reroutes_reads_without_restart_or_failed_request", strategy_edit_reroutes_reads_without_restart_or_failed_request},
    {"strategy_edit_changes_write_fan_out", strategy_edit_changes_write_fan_out},
    {"invalid_strategy_is_refused_counted_and_the_old_one_keeps_serving", invalid_strategy_is_refused_counted_and_the_old_one_keeps_serving},
    {"clickhouse_and_timescale_give_the_same_ten_years", clickhouse_and_timescale_give_the_same_ten_years},
    {"a_cursor_begun_on_clickhouse_continues_on_timescale", a_cursor_begun_on_clickhouse_continues_on_timescale},
    {"bulk_backfill_lands_in_all_three_backends", bulk_backfill_lands_in_all_three_backends},
    {"clickhouse_down_history_from_timescale_then_it_catches_up", clickhouse_down_history_from_timescale_then_it_catches_up},
    {"breaker_skips_a_down_database_and_closes_when_it_returns", breaker_skips_a_down_database_and_closes_when_it_returns},
    {"over_delivered_write_goes_to_the_dlq_and_replays", over_delivered_write_goes_to_the_dlq_and_replays},
    {"redis_down_reads_stay_fresh_and_gap_free", redis_down_reads_stay_fresh_and_gap_free},
    {"health_reports_each_backend", health_reports_each_backend},
    {"http_port_serves_prometheus_metrics_and_probes", http_port_serves_prometheus_metrics_and_probes},
};

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    /* The operator's URL (deploy/stack.sh env); over TLS when the stack serves it. */
    natsOptions *no = NULL;
    const char *ca = env_or("DM_NATS_CA", "");
    bool opts_ok = natsOptions_Create(&no) == NATS_OK &&
                   natsOptions_SetURL(no, env_or("DM_NATS_URL", "nats://127.0.0.1:24222")) == NATS_OK &&
                   (!*ca || (natsOptions_SetSecure(no, true) == NATS_OK &&
                             natsOptions_LoadCATrustedCertificates(no, ca) == NATS_OK));
    natsStatus cs = opts_ok ? natsConnection_Connect(&g_nc, no) : NATS_ERR;
    natsOptions_Destroy(no);
    if (cs != NATS_OK ||
        natsConnection_JetStream(&g_js, g_nc, NULL) != NATS_OK) {
        fprintf(stderr, "cannot reach NATS at %s\n", env_or("DM_NATS_URL", "nats://127.0.0.1:24222"));
        return 1;
    }
    int passed = 0, failed = 0;
    size_t n_main = sizeof TESTS / sizeof *TESTS, n_disc = n_main + N_ANALYSIS_TESTS + N_DISCOVERY_TESTS;
    for (size_t k = 0; k < n_disc + N_PROTOBUF_TESTS; k++) {
        const itest *t = k < n_main                      ? &TESTS[k]
                         : k < n_main + N_ANALYSIS_TESTS ? &ANALYSIS_TESTS[k - n_main]
                         : k < n_disc                    ? &DISCOVERY_TESTS[k - n_main - N_ANALYSIS_TESTS]
                                                         : &PROTOBUF_TESTS[k - n_disc];
        if (only && strstr(t->name, only) == NULL)
            continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        g_failure = NULL;
        t->fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (g_failure) {
            failed++;
            printf("FAIL %s (%.0f ms)\n     %s\n", t->name, ms, g_failure);
        } else {
            passed++;
            printf("ok   %s (%.0f ms)\n", t->name, ms);
        }
        fflush(stdout);
    }
    jsCtx_Destroy(g_js);
    natsConnection_Destroy(g_nc);
    nats_Close();
    printf("integration: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
