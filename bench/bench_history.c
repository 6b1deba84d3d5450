/* bench_history: ten years of hourly candles through dm.v1.candles.history against the raw
 * reads of the same rows, and one bulk message of 10,000 candles from publish to committed
 * in every backend.
 *
 *   bench_history [--repeats N] [--rounds R] [--rows N] [--bulk N] [--depth D]
 *                 [--workers K] [--phase all|history|bulk] [--no-optimize] [--timeout S]
 *
 * Needs the EUR/USD 1h candles loaded and written by every consumer (bench/run.sh publishes
 * data/EURUSD_H1_2010-10_2021-04.csv with dmctl and runs dmctl lag --wait first); the bench
 * checks that PostgreSQL and ClickHouse (FINAL) each hold --rows (65,000) of them.
 *
 * (a) history. The range is [first candle, last candle + 1h): 65,000 candles, 7 pages of
 * 10,000. Each series below reads all of it: one first pass of each (reported apart as
 * "first", not in the verdicts), then --repeats (5) timed passes, the series interleaved so
 * drift on the shared machine hits all of them alike; median and min of the passes.
 *
 *   dm json      dm.v1.candles.history, JSON request (Content-Type application/json),
 *                page_size 10000, following next_cursor until null. Time: first request
 *                sent -> last page in hand, with what a client must do to go on (count the
 *                rows, take next_cursor; a light scan, no full parse). Every page of every
 *                pass is then checked untimed: Status 200, parsed with the worker's own
 *                decoder, every candle's timestamp and close equal to PostgreSQL's row of
 *                the same rank, 65,000 in all, next_cursor null exactly on the last page;
 *                served_by is tallied.
 *   dm msgpack   the same with a msgpack map request (Content-Type application/msgpack).
 *   ch JSONEachRow  libcurl POST to ClickHouse's HTTP port, one keep-alive connection:
 *                SELECT symbol, timeframe, ts, open, high, low, close, volume, source FROM
 *                dm.candles FINAL WHERE symbol='EUR/USD' AND timeframe='1h' AND ts >= X AND
 *                ts < Y ORDER BY ts LIMIT 10000 FORMAT JSONEachRow, paging on ts the same
 *                way (X = the range start, then last ts + 1; Y = the range end): 7 queries.
 *                Client work: count lines, read the last ts.
 *   ch RowBinary the same query in RowBinary (rows walked to count them).
 *   pg COPY one  COPY (SELECT ... FROM candles WHERE symbol/timeframe ORDER BY ts) TO STDOUT
 *                through libpq's PQgetCopyData: one query.
 *   pg COPY paged the same in 7 queries of LIMIT 10000 paged on ts.
 *
 * Diagnostics, to say where the worker's time goes:
 *   ch JSONEachRow exact pages  the raw JSONEachRow read with each page's own ts bounds
 *                   (from PostgreSQL), so no query reads past its page: the tightest raw
 *                   read of the same pages (the baseline has no upper page bound,
 *                   and FINAL on 18.16 merges the whole rest of the range before LIMIT).
 *   ch worker SQL   exactly the queries the worker sends for each page (its column casts,
 *                   FINAL, its window of 2 x page spans, LIMIT page+1, RowBinary,
 *                   wait_end_of_query=1). In a pass it follows full-range reads of the
 *                   same rows and has run in half the time the workers waited for the same
 *                   queries (18-19 against 37-42 ms a page, one run, the workers traced),
 *                   so the breakdown takes ClickHouse's part from the workers' own timing
 *                   of their calls (backends.clickhouse.query_ms in dm.v1.metrics, read
 *                   before and after the timed passes).
 *   echo json/msgpack  a bare NATS request/reply (responder in this process) moving exactly
 *                   the bytes of each real reply page: the transport part.
 *   encode json/msgpack  the worker's own reply encoder (dm_enc + dm_candle_encode, linked
 *                   from dm_core) writing the same 7 replies in this process; checked once
 *                   to reproduce the worker's reply bytes exactly.
 *   CPU seconds per fetch of the workers, ClickHouse, nats-server and this process (/proc),
 *   and the workers' own get_historical p50/p95/p99 from dm.v1.metrics.
 *
 * All of (a) runs twice: as a user finds the table after the load (the active part count is
 * reported), then after OPTIMIZE TABLE dm.candles FINAL (--no-optimize skips the second).
 *
 * Targets (issue): msgpack median <= 200 ms end to end; JSON median <= 2 x the raw
 * ClickHouse JSONEachRow median of the same pages.
 *
 * (b) bulk. Per round (--rounds, 5) a fresh symbol (BKA/USD, BKB/USD, ...; letters that
 * earlier runs used on this stack are skipped) gets one market.candles.<TOKEN>.1m message of
 * --bulk (10,000) valid 1m candles, aligned minutes ending a day before now. Published with
 * js_PublishMsg (sync), Nats-Msg-Id candles:<TOKEN>:1m:<first>:<last>:<n>. Times from the
 * publish call: the PubAck; PostgreSQL count(*) = n; ClickHouse count() FINAL = n; Redis
 * ZCARD candle:latest:{TOKEN}:1m = min(n, depth) with the newest member's score = the last
 * candle's ts; and all three. Each condition is polled by its own thread on its own
 * connection every 2 ms from the PubAck on (a time is the end of the first poll that saw it
 * true, an upper bound). Rounds start when the consumers of MARKET have no backlog.
 * Baseline: the same bytes published (sync) to a throwaway file-storage stream
 * BENCH_HIST_RAW, interleaved with the rounds. After each round the three writing
 * consumers' info says when nats-server last delivered to them and got their ack
 * (Delivered.Last, AckFloor.Last): transport vs the worker's own time.
 * Targets (issue): PubAck median <= 50 ms; committed everywhere median <= 500 ms.
 *
 * Output: ROW/NOTE lines on stdout for bench/run.sh, progress and details on stderr. */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../worker/codec/doc.h"
#include "../worker/codec/enc.h"
#include "../worker/codec/models.h"
#include "../worker/model/names.h"
#include "../worker/util/b64.h"
#include "common.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
#define MIN_MS 60000LL
#define DAY_MS 86400000LL
#define SYMBOL "EUR/USD"
#define TF "1h"
#define TF_MS 3600000LL
#define PAGE 10000
#define MAX_PAGES 64
#define REQUEST_TIMEOUT_MS 30000
#define MAX_WORKERS 8
#define MAX_ROUNDS 26
#define POLL_MS 2
#define COMMIT_WAIT_S 60
#define SUBJ_HISTORY "dm.v1.candles.history"
#define SUBJ_ECHO "bench.history.echo"
#define RAW_STREAM "BENCH_HIST_RAW"
#define RAW_SUBJECTS "benchhistraw.>"
#define BULK_SOURCE "bench-history"

/* The worker's candle columns (worker/backend/clickhouse.c, CANDLE_COLUMNS). */
#define WORKER_COLUMNS                                                                             \
    "toString(symbol), toString(timeframe), toInt64(ts), toFloat64(open), toFloat64(high), "       \
    "toFloat64(low), toFloat64(close), CAST(volume AS Nullable(Float64)), toString(source)"
#define RAW_COLUMNS "symbol, timeframe, ts, open, high, low, close, volume, source"

/* ------------------------------------------------------------- helpers --- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static void token_of(const char *symbol, char *token, size_t cap)
{
    size_t k = 0;
    for (const char *p = symbol; *p && k + 1 < cap; p++)
        if (*p != '/')
            token[k++] = *p;
    token[k] = '\0';
}

static const char *mem_rfind(const char *h, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m > n)
        return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (h[i] == needle[0] && memcmp(h + i, needle, m) == 0)
            return h + i;
    return NULL;
}

/* Sorted copy's median / min / max in ms (the samples are sorted in place). */
static double med_ms(bench_samples *s)
{
    bench_samples_sort(s);
    return bench_pct_ms(s, 50);
}

static double min_ms(bench_samples *s)
{
    bench_samples_sort(s);
    return s->n ? ms(s->v[0]) : NAN;
}

static double max_ms(bench_samples *s)
{
    bench_samples_sort(s);
    return bench_max_ms(s);
}

/* CPU seconds of the stack's ClickHouse server (its pid file in $DM_STACK_DIR). */
static double ch_cpu_s(void)
{
    const char *dir = getenv("DM_STACK_DIR");
    if (dir == NULL || *dir == '\0')
        return 0;
    char path[4096], buf[1024];
    snprintf(path, sizeof path, "%s/clickhouse/clickhouse.pid", dir);
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    /* after ") ": field 3 (state) ... field 14 utime, 15 stime */
    p += 2;
    long long v[13] = {0};
    for (int i = 0; i < 13 && p; i++) {
        v[i] = i == 0 ? 0 : strtoll(p, NULL, 10);
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return (double)(v[11] + v[12]) / (double)sysconf(_SC_CLK_TCK);
}

enum { CPU_WORKERS, CPU_CH, CPU_NATS, CPU_PG, CPU_SELF, CPU_N };
static const char *const CPU_NAMES[CPU_N] = {"workers", "clickhouse", "nats", "postgres", "bench"};

static void cpu_snap(double out[CPU_N])
{
    double c[BENCH_CPU_COUNT];
    bench_cpu_snapshot(c);
    out[CPU_WORKERS] = c[BENCH_CPU_WORKERS];
    out[CPU_NATS] = c[BENCH_CPU_NATS];
    out[CPU_PG] = c[BENCH_CPU_PG];
    out[CPU_SELF] = c[BENCH_CPU_SELF];
    out[CPU_CH] = ch_cpu_s();
}

/* ---------------------------------------------------- ClickHouse (HTTP) --- */

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} mem;

static size_t mem_write(char *p, size_t size, size_t nmemb, void *ud)
{
    mem *m = ud;
    size_t n = size * nmemb;
    if (m->len + n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 1 << 16;
        while (cap < m->len + n + 1)
            cap *= 2;
        char *q = realloc(m->data, cap);
        if (q == NULL) {
            m->oom = true;
            return 0;
        }
        m->data = q;
        m->cap = cap;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
    m->data[m->len] = '\0';
    return n;
}

typedef struct {
    CURL *h;
    char base[256];
    mem body;
    struct curl_slist *hdr;
    char err[300];
} chc;

static bool ch_init(chc *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->base, sizeof c->base, "%s", bench_env("DM_CH_URL", "http://127.0.0.1:18123"));
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->h = curl_easy_init();
    if (c->h == NULL)
        return false;
    c->hdr = curl_slist_append(NULL, "Expect:");
    char user[200], key[300];
    snprintf(user, sizeof user, "X-ClickHouse-User: %s", bench_env("DM_CH_USER", "default"));
    snprintf(key, sizeof key, "X-ClickHouse-Key: %s", bench_env("DM_CH_PASSWORD", ""));
    c->hdr = curl_slist_append(curl_slist_append(c->hdr, user), key);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdr);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    return true;
}

static void ch_free(chc *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdr);
    free(c->body.data);
    memset(c, 0, sizeof *c);
}

/* POSTs sql to base/?params; the reply body in c->body. */
static bool ch_query(chc *c, const char *params, const char *sql)
{
    char url[512];
    snprintf(url, sizeof url, "%s/%s%s", c->base, params && *params ? "?" : "",
             params ? params : "");
    c->body.len = 0;
    c->body.oom = false;
    if (c->body.data)
        c->body.data[0] = '\0';
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(sql));
    CURLcode rc = curl_easy_perform(c->h);
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
        snprintf(c->err, sizeof c->err, "clickhouse %s: %s, HTTP %ld: %.200s", c->base,
                 curl_easy_strerror(rc), status, c->body.data ? c->body.data : "");
        return false;
    }
    return true;
}

static long long ch_scalar(chc *c, const char *sql, bool *ok)
{
    *ok = ch_query(c, NULL, sql) && c->body.len > 0;
    return *ok ? strtoll(c->body.data, NULL, 10) : -1;
}

/* RowBinary rows of the candle columns (String, String, Int64, 4 x Float64,
 * Nullable(Float64), String): the count, the ts of row `mark` (0-based) and of the last
 * row. -1 when the bytes do not walk. */
static uint64_t rb_varint(const unsigned char **p, const unsigned char *end, bool *bad)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) {
            *bad = true;
            return 0;
        }
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    *bad = true;
    return 0;
}

static long rb_walk(const char *data, size_t len, long mark, int64_t *mark_ts, int64_t *last_ts)
{
    const unsigned char *p = (const unsigned char *)data, *end = p + len;
    bool bad = false;
    long rows = 0;
    while (p < end && !bad) {
        for (int s = 0; s < 2 && !bad; s++) { /* symbol, timeframe */
            uint64_t n = rb_varint(&p, end, &bad);
            if (!bad && (uint64_t)(end - p) < n)
                bad = true;
            else
                p += n;
        }
        if (bad || end - p < 8 + 32 + 1) {
            bad = true;
            break;
        }
        int64_t ts;
        memcpy(&ts, p, 8); /* little-endian like the host */
        p += 8 + 32;
        if (*p++ == 0) { /* Nullable: 0 = a value follows */
            if (end - p < 8) {
                bad = true;
                break;
            }
            p += 8;
        }
        uint64_t n = rb_varint(&p, end, &bad);
        if (bad || (uint64_t)(end - p) < n) {
            bad = true;
            break;
        }
        p += n;
        if (rows == mark && mark_ts)
            *mark_ts = ts;
        if (last_ts)
            *last_ts = ts;
        rows++;
    }
    return bad ? -1 : rows;
}

/* JSONEachRow: one row a line; the ts of the last row (quoted or not: 18.16 quotes Int64). */
static long jer_walk(const char *data, size_t len, int64_t *last_ts)
{
    long rows = 0;
    const char *p = data, *end = data + len, *last = NULL;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        if (nl > p) {
            rows++;
            last = p;
        }
        p = nl + 1;
    }
    if (last) {
        const char *k = memmem(last, (size_t)(end - last), "\"ts\":", 5);
        if (k == NULL)
            return -1;
        k += 5;
        while (k < end && (*k == ' ' || *k == '"'))
            k++;
        *last_ts = strtoll(k, NULL, 10);
    }
    return rows;
}

/* ---------------------------------------------------------- msgpack scan --- */

enum { MP_NIL, MP_BOOL, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARR, MP_MAP, MP_EXT, MP_BAD };

typedef struct {
    const unsigned char *p, *end;
    bool bad;
} mpr;

static uint64_t mp_be(mpr *r, int n)
{
    if (r->end - r->p < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | *r->p++;
    return v;
}

static int mp_head(mpr *r, uint64_t *v)
{
    *v = 0;
    if (r->p >= r->end) {
        r->bad = true;
        return MP_BAD;
    }
    unsigned char b = *r->p++;
    if (b <= 0x7f || b >= 0xe0) {
        *v = b;
        return MP_INT;
    }
    if ((b & 0xf0) == 0x80) {
        *v = b & 0x0f;
        return MP_MAP;
    }
    if ((b & 0xf0) == 0x90) {
        *v = b & 0x0f;
        return MP_ARR;
    }
    if ((b & 0xe0) == 0xa0) {
        *v = b & 0x1f;
        return MP_STR;
    }
    switch (b) {
    case 0xc0: return MP_NIL;
    case 0xc2:
    case 0xc3: *v = b & 1; return MP_BOOL;
    case 0xc4: *v = mp_be(r, 1); return MP_BIN;
    case 0xc5: *v = mp_be(r, 2); return MP_BIN;
    case 0xc6: *v = mp_be(r, 4); return MP_BIN;
    case 0xc7: *v = mp_be(r, 1) + 1; return MP_EXT; /* + the type byte */
    case 0xc8: *v = mp_be(r, 2) + 1; return MP_EXT;
    case 0xc9: *v = mp_be(r, 4) + 1; return MP_EXT;
    case 0xca: *v = mp_be(r, 4); return MP_FLOAT;
    case 0xcb: *v = mp_be(r, 8); return MP_FLOAT;
    case 0xcc: case 0xd0: *v = mp_be(r, 1); return MP_INT;
    case 0xcd: case 0xd1: *v = mp_be(r, 2); return MP_INT;
    case 0xce: case 0xd2: *v = mp_be(r, 4); return MP_INT;
    case 0xcf: case 0xd3: *v = mp_be(r, 8); return MP_INT;
    case 0xd4: *v = 2; return MP_EXT;
    case 0xd5: *v = 3; return MP_EXT;
    case 0xd6: *v = 5; return MP_EXT;
    case 0xd7: *v = 9; return MP_EXT;
    case 0xd8: *v = 17; return MP_EXT;
    case 0xd9: *v = mp_be(r, 1); return MP_STR;
    case 0xda: *v = mp_be(r, 2); return MP_STR;
    case 0xdb: *v = mp_be(r, 4); return MP_STR;
    case 0xdc: *v = mp_be(r, 2); return MP_ARR;
    case 0xdd: *v = mp_be(r, 4); return MP_ARR;
    case 0xde: *v = mp_be(r, 2); return MP_MAP;
    case 0xdf: *v = mp_be(r, 4); return MP_MAP;
    default: r->bad = true; return MP_BAD;
    }
}

static void mp_skip(mpr *r, int depth)
{
    uint64_t v;
    int k = mp_head(r, &v);
    if (r->bad)
        return;
    if (depth > 32) {
        r->bad = true;
    } else if (k == MP_STR || k == MP_BIN || k == MP_EXT) {
        if ((uint64_t)(r->end - r->p) < v)
            r->bad = true;
        else
            r->p += v;
    } else if (k == MP_ARR || k == MP_MAP) {
        uint64_t n = k == MP_MAP ? 2 * v : v;
        for (uint64_t i = 0; i < n && !r->bad; i++)
            mp_skip(r, depth + 1);
    }
}

/* ------------------------------------------------------ reply light scan --- */

/* What a client must take from a page to go on: the row count and next_cursor. */
static bool scan_reply(const char *d, size_t n, dm_encoding enc, long *rows, char *cursor,
                       size_t cap, bool *more)
{
    *rows = 0;
    *more = false;
    cursor[0] = '\0';
    if (d == NULL || n == 0)
        return false;
    if (enc == DM_ENC_JSON) {
        static const char K[] = "\"timestamp\":";
        const char *p = d, *end = d + n;
        while ((p = memmem(p, (size_t)(end - p), K, sizeof K - 1)) != NULL) {
            (*rows)++;
            p += sizeof K - 1;
        }
        const char *c = mem_rfind(d, n, "\"next_cursor\":");
        if (c == NULL)
            return false;
        c += 14;
        while (c < end && *c == ' ')
            c++;
        if (c < end && *c == '"') {
            const char *q = memchr(c + 1, '"', (size_t)(end - c - 1));
            if (q == NULL || (size_t)(q - c - 1) >= cap)
                return false;
            memcpy(cursor, c + 1, (size_t)(q - c - 1));
            cursor[q - c - 1] = '\0';
            *more = true;
        }
        return true;
    }
    mpr r = {(const unsigned char *)d, (const unsigned char *)d + n, false};
    uint64_t keys;
    if (mp_head(&r, &keys) != MP_MAP)
        return false;
    for (uint64_t i = 0; i < keys && !r.bad; i++) {
        uint64_t kl, v;
        if (mp_head(&r, &kl) != MP_STR || (uint64_t)(r.end - r.p) < kl)
            return false;
        const char *key = (const char *)r.p;
        r.p += kl;
        if (kl == 4 && memcmp(key, "data", 4) == 0) {
            if (mp_head(&r, &v) != MP_ARR)
                return false;
            *rows = (long)v;
            for (uint64_t j = 0; j < v && !r.bad; j++)
                mp_skip(&r, 1);
        } else if (kl == 11 && memcmp(key, "next_cursor", 11) == 0) {
            int t = mp_head(&r, &v);
            if (t == MP_STR) {
                if (v >= cap || (uint64_t)(r.end - r.p) < v)
                    return false;
                memcpy(cursor, r.p, v);
                cursor[v] = '\0';
                r.p += v;
                *more = true;
            } else if (t != MP_NIL) {
                return false;
            }
        } else {
            mp_skip(&r, 1);
        }
    }
    return !r.bad && r.p == r.end;
}

/* ------------------------------------------------------------- context --- */

typedef struct {
    char name[24];
    long n;
} tally;

#define MAX_TALLY 6

static void tally_add(tally *t, const char *name)
{
    int i = 0;
    while (i < MAX_TALLY && t[i].name[0] && strcmp(t[i].name, name) != 0)
        i++;
    if (i == MAX_TALLY)
        return;
    if (t[i].name[0] == '\0')
        snprintf(t[i].name, sizeof t[i].name, "%.23s", name);
    t[i].n++;
}

static void tally_str(const tally *t, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < MAX_TALLY && t[i].name[0] && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s=%ld", i ? " " : "", t[i].name, t[i].n);
    if (k == 0)
        snprintf(buf, cap, "none");
}

typedef struct {
    natsConnection *nc;
    PGconn *pg;
    chc ch;
    int64_t start, end; /* [start, end) */
    long expect;
    /* PostgreSQL's rows, in ts order: the reference of every check and the encode input */
    dm_candle *rows;
    int64_t *ts;
    /* msgpack request prefix reused per page */
    int workers;
    int64_t deadline;
    /* echo */
    natsConnection *echo_nc;
    natsSubscription *echo_sub;
    dm_done echo_done; /* only echo_sub's delivery thread touches it */
    char *echo_buf;
    size_t echo_cap;
} hist;

/* One pass of one series: the whole range. */
typedef struct {
    int64_t total;
    int64_t rtt; /* sum of the round trips (dm and echo) */
    int n; /* pages or queries */
    int64_t page_ns[MAX_PAGES];
    size_t page_bytes[MAX_PAGES];
    size_t bytes;
    long rows;
    natsMsg *msg[MAX_PAGES]; /* dm series: the replies, for the checks after the clock */
    char err[400];
} pass;

static void pass_free(pass *p)
{
    for (int i = 0; i < p->n && i < MAX_PAGES; i++) {
        natsMsg_Destroy(p->msg[i]);
        p->msg[i] = NULL;
    }
}

/* ------------------------------------------------------------- dm fetch --- */

static char *mp_request(const hist *h, const char *cursor, int *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, cursor ? 6 : 5);
    msgpack_pack_str_with_body(&pk, "symbol", 6);
    msgpack_pack_str_with_body(&pk, SYMBOL, strlen(SYMBOL));
    msgpack_pack_str_with_body(&pk, "timeframe", 9);
    msgpack_pack_str_with_body(&pk, TF, strlen(TF));
    msgpack_pack_str_with_body(&pk, "start_date", 10);
    msgpack_pack_int64(&pk, h->start);
    msgpack_pack_str_with_body(&pk, "end_date", 8);
    msgpack_pack_int64(&pk, h->end);
    msgpack_pack_str_with_body(&pk, "page_size", 9);
    msgpack_pack_int(&pk, PAGE);
    if (cursor) {
        msgpack_pack_str_with_body(&pk, "cursor", 6);
        msgpack_pack_str_with_body(&pk, cursor, strlen(cursor));
    }
    *len = (int)sb.size;
    return sb.data;
}

static bool dm_fetch(hist *h, dm_encoding enc, pass *out)
{
    memset(out, 0, sizeof *out);
    char cursor[300] = "", body[512];
    bool more = false;
    int64_t t0 = bench_now_ns();
    for (;;) {
        if (out->n == MAX_PAGES) {
            snprintf(out->err, sizeof out->err, "more than %d pages", MAX_PAGES);
            return false;
        }
        /* Building the request is the client's work too: inside the clock. */
        natsMsg *m = NULL, *r = NULL;
        char *mp = NULL;
        int len;
        const char *data;
        if (enc == DM_ENC_JSON) {
            len = snprintf(body, sizeof body,
                           "{\"symbol\":\"" SYMBOL "\",\"timeframe\":\"" TF "\",\"start_date\":%" PRId64
                           ",\"end_date\":%" PRId64 ",\"page_size\":%d%s%s%s}",
                           h->start, h->end, PAGE, more ? ",\"cursor\":\"" : "", more ? cursor : "",
                           more ? "\"" : "");
            data = body;
        } else {
            mp = mp_request(h, more ? cursor : NULL, &len);
            data = mp;
        }
        natsStatus s = natsMsg_Create(&m, SUBJ_HISTORY, NULL, data, len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, DM_HDR_CONTENT_TYPE, enc == DM_ENC_JSON ? DM_CT_JSON : DM_CT_MSGPACK);
        int64_t tp = bench_now_ns();
        if (s == NATS_OK)
            s = natsConnection_RequestMsg(&r, h->nc, m, REQUEST_TIMEOUT_MS);
        out->page_ns[out->n] = bench_now_ns() - tp;
        out->rtt += out->page_ns[out->n];
        natsMsg_Destroy(m);
        free(mp);
        if (s != NATS_OK) {
            snprintf(out->err, sizeof out->err, "page %d: request: %s", out->n + 1,
                     natsStatus_GetText(s));
            return false;
        }
        out->msg[out->n] = r;
        size_t n = (size_t)natsMsg_GetDataLength(r);
        out->page_bytes[out->n] = n;
        out->bytes += n;
        out->n++;
        const char *st = NULL;
        if (natsMsgHeader_Get(r, "Status", &st) != NATS_OK || st == NULL || strcmp(st, "200") != 0) {
            snprintf(out->err, sizeof out->err, "page %d: Status %s: %.200s", out->n,
                     st ? st : "(none)", natsMsg_GetData(r) ? natsMsg_GetData(r) : "");
            return false;
        }
        long rows;
        if (!scan_reply(natsMsg_GetData(r), n, enc, &rows, cursor, sizeof cursor, &more)) {
            snprintf(out->err, sizeof out->err, "page %d: reply does not scan: %.200s", out->n,
                     natsMsg_GetData(r) ? natsMsg_GetData(r) : "");
            return false;
        }
        out->rows += rows;
        if (!more)
            break;
    }
    out->total = bench_now_ns() - t0;
    return true;
}

/* After the clock: every page parsed with the worker's decoder, every candle against
 * PostgreSQL's row of the same rank. */
static bool dm_check(const hist *h, const pass *p, dm_encoding enc, tally *served, char *err,
                     size_t cap)
{
    long k = 0;
    for (int i = 0; i < p->n; i++) {
        natsMsg *r = p->msg[i];
        cJSON *doc = NULL;
        dm_err e = {0};
        const char *ct = NULL;
        natsMsgHeader_Get(r, DM_HDR_CONTENT_TYPE, &ct);
        const char *want_ct = enc == DM_ENC_JSON ? DM_CT_JSON : DM_CT_MSGPACK;
        if (ct == NULL || strcmp(ct, want_ct) != 0) {
            snprintf(err, cap, "page %d: Content-Type %s, expected %s", i + 1, ct ? ct : "(none)",
                     want_ct);
            return false;
        }
        if (dm_doc_parse(natsMsg_GetData(r), (size_t)natsMsg_GetDataLength(r), enc, 256u << 20,
                         &doc, &e) != DM_OK ||
            doc == NULL) {
            snprintf(err, cap, "page %d: unparsable: %s", i + 1, e.message);
            return false;
        }
        bool ok = true;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data"), *it;
        const cJSON *nc = cJSON_GetObjectItemCaseSensitive(doc, "next_cursor");
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(doc, "served_by");
        if (!cJSON_IsArray(data)) {
            snprintf(err, cap, "page %d: no data array", i + 1);
            ok = false;
        } else if (i + 1 < p->n ? !cJSON_IsString(nc) : !cJSON_IsNull(nc)) {
            snprintf(err, cap, "page %d of %d: next_cursor %s", i + 1, p->n,
                     cJSON_IsNull(nc) ? "null before the last page" : "not null on the last page");
            ok = false;
        } else if (!cJSON_IsString(by)) {
            snprintf(err, cap, "page %d: no served_by", i + 1);
            ok = false;
        } else {
            tally_add(served, by->valuestring);
        }
        cJSON_ArrayForEach(it, data)
        {
            if (!ok)
                break;
            const cJSON *sym = cJSON_GetObjectItemCaseSensitive(it, "symbol");
            const cJSON *tf = cJSON_GetObjectItemCaseSensitive(it, "timeframe");
            const cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "timestamp");
            const cJSON *cl = cJSON_GetObjectItemCaseSensitive(it, "close");
            if (k >= h->expect) {
                snprintf(err, cap, "page %d: more than %ld candles", i + 1, h->expect);
                ok = false;
            } else if (!cJSON_IsString(sym) || strcmp(sym->valuestring, SYMBOL) != 0 ||
                       !cJSON_IsString(tf) || strcmp(tf->valuestring, TF) != 0 ||
                       !cJSON_IsNumber(ts) || !cJSON_IsNumber(cl) ||
                       (int64_t)ts->valuedouble != h->rows[k].ts ||
                       cl->valuedouble != h->rows[k].close) {
                snprintf(err, cap,
                         "page %d: candle %ld differs from PostgreSQL's (ts %" PRId64
                         ", close %.17g)",
                         i + 1, k, h->rows[k].ts, h->rows[k].close);
                ok = false;
            }
            k++;
        }
        cJSON_Delete(doc);
        if (!ok)
            return false;
    }
    if (k != h->expect) {
        snprintf(err, cap, "%ld candles in all, expected %ld", k, h->expect);
        return false;
    }
    return true;
}

/* ------------------------------------------------------ ClickHouse reads --- */

typedef enum { CH_JSONEACHROW, CH_ROWBINARY, CH_WORKER, CH_JSON_EXACT } ch_kind;

/* What one page query of ch_fetch came to. */
typedef enum { STEP_MORE, STEP_DONE, STEP_FAIL, STEP_UNREADABLE } step;

static void page_done(pass *out, int64_t tp, size_t bytes, long rows)
{
    out->page_ns[out->n] = bench_now_ns() - tp;
    out->page_bytes[out->n] = bytes;
    out->bytes += bytes;
    out->n++;
    out->rows += rows;
}

/* The worker's way (worker/backend/clickhouse.c ch_candle_range): a window of 2 x limit
 * spans first, the rest only when gaps left it short; limit = page + 1. */
static step ch_page_worker(hist *h, int64_t *x, pass *out)
{
    char sql[1024];
    int64_t tp = bench_now_ns(), last = 0, mark = 0;
    int64_t limit = PAGE + 1, w = 2 * limit * TF_MS, mid = *x + w;
    const char *params = "wait_end_of_query=1&max_execution_time=30";
    bool one = mid >= h->end;
    snprintf(sql, sizeof sql,
             "SELECT " WORKER_COLUMNS " FROM dm.candles FINAL WHERE symbol = '" SYMBOL
             "' AND timeframe = '" TF "' AND ts >= %" PRId64 " AND ts < %" PRId64
             " ORDER BY ts LIMIT %" PRId64 " FORMAT RowBinary",
             *x, one ? h->end : mid, limit);
    if (!ch_query(&h->ch, params, sql))
        return STEP_FAIL;
    size_t bytes = h->ch.body.len;
    long got = rb_walk(h->ch.body.data, h->ch.body.len, PAGE - 1, &mark, &last);
    if (got < 0)
        return STEP_UNREADABLE;
    if (!one && got < limit) {
        int64_t mark2 = 0;
        snprintf(sql, sizeof sql,
                 "SELECT " WORKER_COLUMNS " FROM dm.candles FINAL WHERE symbol = '" SYMBOL
                 "' AND timeframe = '" TF "' AND ts >= %" PRId64 " AND ts < %" PRId64
                 " ORDER BY ts LIMIT %" PRId64 " FORMAT RowBinary",
                 mid, h->end, limit - got);
        if (!ch_query(&h->ch, params, sql))
            return STEP_FAIL;
        bytes += h->ch.body.len;
        long got2 = rb_walk(h->ch.body.data, h->ch.body.len, PAGE - 1 - got, &mark2, &last);
        if (got2 < 0)
            return STEP_UNREADABLE;
        if (got <= PAGE - 1 && got2 > PAGE - 1 - got)
            mark = mark2;
        got += got2;
    }
    page_done(out, tp, bytes, got > PAGE ? PAGE : got);
    if (got <= PAGE)
        return STEP_DONE;
    *x = mark + 1;
    return STEP_MORE;
}

/* Page i's own bounds, known from PostgreSQL: no row outside the page is read. */
static step ch_page_exact(hist *h, pass *out)
{
    char sql[1024];
    int64_t tp = bench_now_ns(), last = 0;
    long first = (long)out->n * PAGE;
    if (first >= h->expect)
        return STEP_DONE;
    long n = h->expect - first < PAGE ? h->expect - first : PAGE;
    snprintf(sql, sizeof sql,
             "SELECT " RAW_COLUMNS " FROM dm.candles FINAL WHERE symbol='" SYMBOL
             "' AND timeframe='" TF "' AND ts >= %" PRId64 " AND ts < %" PRId64
             " ORDER BY ts LIMIT %d FORMAT JSONEachRow",
             h->rows[first].ts, h->rows[first + n - 1].ts + 1, PAGE);
    if (!ch_query(&h->ch, NULL, sql))
        return STEP_FAIL;
    long rows = jer_walk(h->ch.body.data, h->ch.body.len, &last);
    if (rows < 0)
        return STEP_UNREADABLE;
    page_done(out, tp, h->ch.body.len, rows);
    return STEP_MORE;
}

/* Keyset pages from *x on, in JSONEachRow or RowBinary. */
static step ch_page_plain(hist *h, ch_kind kind, int64_t *x, pass *out)
{
    char sql[1024];
    int64_t tp = bench_now_ns(), last = 0;
    snprintf(sql, sizeof sql,
             "SELECT " RAW_COLUMNS " FROM dm.candles FINAL WHERE symbol='" SYMBOL
             "' AND timeframe='" TF "' AND ts >= %" PRId64 " AND ts < %" PRId64
             " ORDER BY ts LIMIT %d FORMAT %s",
             *x, h->end, PAGE, kind == CH_JSONEACHROW ? "JSONEachRow" : "RowBinary");
    if (!ch_query(&h->ch, NULL, sql))
        return STEP_FAIL;
    long rows = kind == CH_JSONEACHROW ? jer_walk(h->ch.body.data, h->ch.body.len, &last)
                                       : rb_walk(h->ch.body.data, h->ch.body.len, -1, NULL, &last);
    if (rows < 0)
        return STEP_UNREADABLE;
    page_done(out, tp, h->ch.body.len, rows);
    if (rows < PAGE)
        return STEP_DONE;
    *x = last + 1;
    return STEP_MORE;
}

static bool ch_fetch(hist *h, ch_kind kind, pass *out)
{
    memset(out, 0, sizeof *out);
    int64_t x = h->start;
    int64_t t0 = bench_now_ns();
    step st = STEP_MORE;
    while (st == STEP_MORE) {
        if (out->n == MAX_PAGES) {
            snprintf(out->err, sizeof out->err, "more than %d pages", MAX_PAGES);
            return false;
        }
        st = kind == CH_WORKER       ? ch_page_worker(h, &x, out)
             : kind == CH_JSON_EXACT ? ch_page_exact(h, out)
                                     : ch_page_plain(h, kind, &x, out);
    }
    if (st == STEP_FAIL) {
        snprintf(out->err, sizeof out->err, "%s", h->ch.err);
        return false;
    }
    if (st == STEP_UNREADABLE) {
        snprintf(out->err, sizeof out->err, "query %d: reply does not walk (%zu bytes)",
                 out->n + 1, h->ch.body.len);
        return false;
    }
    out->total = bench_now_ns() - t0;
    return true;
}

/* ------------------------------------------------------- PostgreSQL COPY --- */

static bool pg_copy(PGconn *pg, const char *sql, long *rows, int64_t *last_ts, size_t *bytes,
                    char *err, size_t cap)
{
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        snprintf(err, cap, "COPY: %s", PQerrorMessage(pg));
        PQclear(res);
        return false;
    }
    PQclear(res);
    char *buf = NULL;
    int n;
    while ((n = PQgetCopyData(pg, &buf, 0)) > 0) {
        (*rows)++;
        *bytes += (size_t)n;
        /* third column: ts */
        const char *t = memchr(buf, '\t', (size_t)n);
        t = t ? memchr(t + 1, '\t', (size_t)(n - (t + 1 - buf))) : NULL;
        if (t)
            *last_ts = strtoll(t + 1, NULL, 10);
        PQfreemem(buf);
    }
    bool ok = n == -1;
    while ((res = PQgetResult(pg)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            ok = false;
        PQclear(res);
    }
    if (!ok)
        snprintf(err, cap, "COPY: %s", PQerrorMessage(pg));
    return ok;
}

static bool pg_fetch(hist *h, bool paged, pass *out)
{
    memset(out, 0, sizeof *out);
    char sql[600];
    int64_t x = h->start;
    int64_t t0 = bench_now_ns();
    for (;;) {
        if (out->n == MAX_PAGES) {
            snprintf(out->err, sizeof out->err, "more than %d pages", MAX_PAGES);
            return false;
        }
        if (paged)
            snprintf(sql, sizeof sql,
                     "COPY (SELECT " RAW_COLUMNS " FROM candles WHERE symbol='" SYMBOL
                     "' AND timeframe='" TF "' AND ts >= %" PRId64 " AND ts < %" PRId64
                     " ORDER BY ts LIMIT %d) TO STDOUT",
                     x, h->end, PAGE);
        else
            snprintf(sql, sizeof sql,
                     "COPY (SELECT " RAW_COLUMNS " FROM candles WHERE symbol='" SYMBOL
                     "' AND timeframe='" TF "' ORDER BY ts) TO STDOUT");
        long rows = 0;
        int64_t last = 0;
        size_t bytes = 0;
        int64_t tp = bench_now_ns();
        if (!pg_copy(h->pg, sql, &rows, &last, &bytes, out->err, sizeof out->err))
            return false;
        out->page_ns[out->n] = bench_now_ns() - tp;
        out->page_bytes[out->n] = bytes;
        out->bytes += bytes;
        out->n++;
        out->rows += rows;
        if (!paged || rows < PAGE)
            break;
        x = last + 1;
    }
    out->total = bench_now_ns() - t0;
    return true;
}

/* ------------------------------------------------------------------ echo --- */

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    hist *h = closure;
    const char *ct = NULL;
    natsMsgHeader_Get(msg, DM_HDR_CONTENT_TYPE, &ct);
    long want = natsMsg_GetData(msg) ? atol(natsMsg_GetData(msg)) : 0;
    if (want > 0 && (size_t)want <= h->echo_cap)
        bench_echo_answer(nc, msg, h->echo_buf, (int)want, ct ? ct : DM_CT_JSON, &h->echo_done);
    else
        dm_done_add(&h->echo_done, msg);
}

static bool echo_start(hist *h, size_t cap)
{
    h->echo_buf = malloc(cap);
    if (h->echo_buf == NULL)
        return false;
    memset(h->echo_buf, 'x', cap);
    h->echo_cap = cap;
    h->echo_nc = bench_nats_connect_ex("bench-history-echo", true);
    if (h->echo_nc == NULL)
        return false;
    natsStatus s = natsConnection_Subscribe(&h->echo_sub, h->echo_nc, SUBJ_ECHO, on_echo, h);
    if (s == NATS_OK)
        s = natsConnection_Flush(h->echo_nc);
    if (s != NATS_OK) {
        bench_nats_fail("echo subscribe", s);
        return false;
    }
    return true;
}

/* One round trip per page of `sizes`, each reply exactly that many bytes. */
static bool echo_fetch(hist *h, const size_t *sizes, int n, const char *ct, pass *out)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        char body[32];
        int len = snprintf(body, sizeof body, "%zu", sizes[i]);
        natsMsg *m = NULL, *r = NULL;
        natsStatus s = natsMsg_Create(&m, SUBJ_ECHO, NULL, body, len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, DM_HDR_CONTENT_TYPE, ct);
        int64_t tp = bench_now_ns();
        if (s == NATS_OK)
            s = natsConnection_RequestMsg(&r, h->nc, m, REQUEST_TIMEOUT_MS);
        out->page_ns[i] = bench_now_ns() - tp;
        natsMsg_Destroy(m);
        if (s != NATS_OK || (size_t)natsMsg_GetDataLength(r) != sizes[i]) {
            snprintf(out->err, sizeof out->err, "echo %d: %s", i + 1,
                     s != NATS_OK ? natsStatus_GetText(s) : "wrong size");
            natsMsg_Destroy(r);
            return false;
        }
        out->page_bytes[i] = sizes[i];
        out->bytes += sizes[i];
        natsMsg_Destroy(r);
        out->n++;
    }
    out->total = bench_now_ns() - t0;
    return true;
}

/* ---------------------------------------------------------------- encode --- */

/* The worker's reply for page i (worker/pipeline/serve.c op_history), into out. */
static void encode_page(const hist *h, dm_encoding enc, long first, long n, bool more,
                        const char *served_by, dm_buf *out)
{
    dm_buf_reset(out);
    dm_enc e;
    dm_enc_init(&e, enc, out);
    dm_enc_map(&e, 3);
    dm_enc_key(&e, "data");
    dm_enc_arr(&e, (size_t)n);
    for (long i = first; i < first + n; i++)
        dm_candle_encode(&e, &h->rows[i]);
    dm_enc_arr_end(&e);
    dm_enc_key(&e, "next_cursor");
    if (more) {
        char raw[128], b64[256];
        snprintf(raw, sizeof raw, "c1|%s|%s|%" PRId64, SYMBOL, TF, h->rows[first + n - 1].ts);
        dm_b64url_encode(raw, strlen(raw), b64, sizeof b64);
        dm_enc_str(&e, b64);
    } else {
        dm_enc_null(&e);
    }
    dm_enc_key(&e, "served_by");
    dm_enc_str(&e, served_by);
    dm_enc_map_end(&e);
}

static bool encode_fetch(const hist *h, dm_encoding enc, const char *served_by, dm_buf *buf,
                         pass *out)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = bench_now_ns();
    for (long first = 0; first < h->expect; first += PAGE) {
        long n = h->expect - first < PAGE ? h->expect - first : PAGE;
        int64_t tp = bench_now_ns();
        encode_page(h, enc, first, n, first + n < h->expect, served_by, buf);
        out->page_ns[out->n] = bench_now_ns() - tp;
        out->page_bytes[out->n] = buf->len;
        out->bytes += buf->len;
        out->rows += n;
        out->n++;
    }
    out->total = bench_now_ns() - t0;
    return !buf->oom;
}

/* Does the in-process encoder write the worker's replies byte for byte? */
static int encode_identical(const hist *h, const pass *p, dm_encoding enc, const char *served_by)
{
    dm_buf b;
    dm_buf_init(&b);
    int same = 1;
    long first = 0;
    for (int i = 0; i < p->n && same; i++) {
        long n = h->expect - first < PAGE ? h->expect - first : PAGE;
        encode_page(h, enc, first, n, first + n < h->expect, served_by, &b);
        if (b.len != (size_t)natsMsg_GetDataLength(p->msg[i]) ||
            memcmp(b.data, natsMsg_GetData(p->msg[i]), b.len) != 0)
            same = 0;
        first += n;
    }
    dm_buf_free(&b);
    return same;
}

/* --------------------------------------------------------------- metrics --- */

typedef struct {
    char worker[64];
    double count, p50, p95, p99;
    double ch_ms, ch_calls; /* backends.clickhouse: query_ms and queries */
} wmetric;

static void fill_metrics(void *ctx, int i, const char *worker, const cJSON *doc)
{
    wmetric *m = (wmetric *)ctx + i;
    snprintf(m->worker, sizeof m->worker, "%s", worker);
    m->count = bench_num_at(doc, "operations", "get_historical", "count");
    m->p50 = bench_num_at(doc, "operations", "get_historical", "p50_ms");
    m->p95 = bench_num_at(doc, "operations", "get_historical", "p95_ms");
    m->p99 = bench_num_at(doc, "operations", "get_historical", "p99_ms");
    m->ch_ms = bench_num_at(doc, "backends", "clickhouse", "query_ms");
    m->ch_calls = bench_num_at(doc, "backends", "clickhouse", "queries");
}

static int read_metrics(natsConnection *nc, int want, wmetric *out)
{
    return bench_read_metrics(nc, want, MAX_WORKERS, fill_metrics, out);
}

/* ------------------------------------------------------------- phase (a) --- */

enum { S_DM_JSON, S_DM_MP, S_CH_JSON, S_CH_RB, S_CH_JSON_EX, S_CH_WK, S_PG_ONE, S_PG_PAGED,
       S_ECHO_JSON, S_ECHO_MP, S_ENC_JSON, S_ENC_MP, S_COUNT };
static const char *const S_NAMES[S_COUNT] = {
    "dm json",       "dm msgpack",    "ch JSONEachRow", "ch RowBinary",
    "ch JSONEachRow exact pages",     "ch worker SQL",  "pg COPY one",
    "pg COPY paged", "echo json",     "echo msgpack",   "encode json",
    "encode msgpack"};

typedef struct {
    bench_samples total;
    bench_samples client; /* dm: end to end minus the round trips */
    bench_samples page[MAX_PAGES];
    int64_t first;
    int pages;
    size_t bytes;
    double cpu[CPU_N];
    int cpu_runs;
    long errors;
    char last_error[400];
} sstats;

typedef struct {
    const char *label;
    sstats s[S_COUNT];
    tally served_all[2][MAX_TALLY]; /* [0] json, [1] msgpack: pages per served_by */
    long long parts, part_rows, partitions;
    int identical[2]; /* encode reproduces the worker's bytes: 1 yes, 0 no, -1 unknown */
    wmetric wm[MAX_WORKERS];
    int nwm;
    /* The workers' own ClickHouse calls over the timed passes (every worker read before
     * and after): ms and calls summed, and the dm fetches that made them; 0 fetches when
     * a worker did not answer. */
    double wch_ms, wch_calls;
    int wch_fetches;
    bool ran;
} phase;

static void phase_free(phase *ph)
{
    for (int k = 0; k < S_COUNT; k++) {
        bench_samples_free(&ph->s[k].total);
        bench_samples_free(&ph->s[k].client);
        for (int i = 0; i < MAX_PAGES; i++)
            bench_samples_free(&ph->s[k].page[i]);
    }
}

static void ch_parts(hist *h, phase *ph)
{
    ph->parts = ph->part_rows = ph->partitions = -1;
    if (ch_query(&h->ch, NULL,
                 "SELECT count(), sum(rows), uniqExact(partition) FROM system.parts WHERE "
                 "database = 'dm' AND table = 'candles' AND active FORMAT TSV"))
        sscanf(h->ch.body.data, "%lld\t%lld\t%lld", &ph->parts, &ph->part_rows, &ph->partitions);
}

/* Runs series k once; record: into the samples (else into first). */
static bool run_series(hist *h, phase *ph, int k, bool record, dm_buf *encbuf,
                       size_t page_sizes[2][MAX_PAGES], int npages[2])
{
    sstats *st = &ph->s[k];
    pass p;
    double c0[CPU_N], c1[CPU_N];
    cpu_snap(c0);
    bool ok;
    switch (k) {
    case S_DM_JSON: ok = dm_fetch(h, DM_ENC_JSON, &p); break;
    case S_DM_MP: ok = dm_fetch(h, DM_ENC_MSGPACK, &p); break;
    case S_CH_JSON: ok = ch_fetch(h, CH_JSONEACHROW, &p); break;
    case S_CH_RB: ok = ch_fetch(h, CH_ROWBINARY, &p); break;
    case S_CH_WK: ok = ch_fetch(h, CH_WORKER, &p); break;
    case S_CH_JSON_EX: ok = ch_fetch(h, CH_JSON_EXACT, &p); break;
    case S_PG_ONE: ok = pg_fetch(h, false, &p); break;
    case S_PG_PAGED: ok = pg_fetch(h, true, &p); break;
    case S_ECHO_JSON: ok = echo_fetch(h, page_sizes[0], npages[0], DM_CT_JSON, &p); break;
    case S_ECHO_MP: ok = echo_fetch(h, page_sizes[1], npages[1], DM_CT_MSGPACK, &p); break;
    case S_ENC_JSON: ok = encode_fetch(h, DM_ENC_JSON, "clickhouse", encbuf, &p); break;
    default: ok = encode_fetch(h, DM_ENC_MSGPACK, "clickhouse", encbuf, &p); break;
    }
    cpu_snap(c1);
    bool is_dm = k == S_DM_JSON || k == S_DM_MP;
    bool is_echo = k == S_ECHO_JSON || k == S_ECHO_MP;
    if (ok && !is_echo && p.rows != h->expect) {
        snprintf(p.err, sizeof p.err, "%ld rows, expected %ld", p.rows, h->expect);
        ok = false;
    }
    if (ok && is_dm) {
        int e = k == S_DM_JSON ? 0 : 1;
        tally served[MAX_TALLY];
        memset(served, 0, sizeof served);
        ok = dm_check(h, &p, e ? DM_ENC_MSGPACK : DM_ENC_JSON, served, p.err, sizeof p.err);
        for (int i = 0; i < MAX_TALLY && served[i].name[0]; i++)
            for (long j = 0; j < served[i].n; j++)
                tally_add(ph->served_all[e], served[i].name);
        if (ok && !record) { /* first pass: sizes for the echo, the byte-for-byte check */
            npages[e] = p.n;
            for (int i = 0; i < p.n; i++)
                page_sizes[e][i] = p.page_bytes[i];
            ph->identical[e] =
                encode_identical(h, &p, e ? DM_ENC_MSGPACK : DM_ENC_JSON,
                                 served[0].name[0] ? served[0].name : "clickhouse");
        }
    }
    pass_free(&p);
    if (!ok) {
        st->errors++;
        snprintf(st->last_error, sizeof st->last_error, "%s", p.err);
        fprintf(stderr, "bench: %s %s: %s\n", ph->label, S_NAMES[k], p.err);
        return false;
    }
    st->pages = p.n;
    st->bytes = p.bytes;
    if (!record) {
        st->first = p.total;
        return true;
    }
    bench_samples_add(&st->total, p.total);
    if (is_dm)
        bench_samples_add(&st->client, p.total - p.rtt);
    for (int i = 0; i < p.n && i < MAX_PAGES; i++)
        bench_samples_add(&st->page[i], p.page_ns[i]);
    for (int c = 0; c < CPU_N; c++)
        st->cpu[c] += c1[c] - c0[c];
    st->cpu_runs++;
    return true;
}

static const int ORDER[S_COUNT] = {S_DM_JSON,   S_CH_JSON,  S_DM_MP,     S_CH_RB,
                                   S_CH_JSON_EX, S_CH_WK,   S_PG_ONE,    S_PG_PAGED,
                                   S_ECHO_JSON, S_ECHO_MP,  S_ENC_JSON,  S_ENC_MP};

static bool run_phase(hist *h, phase *ph, int repeats)
{
    size_t sizes[2][MAX_PAGES] = {{0}};
    int npages[2] = {0, 0};
    dm_buf encbuf;
    dm_buf_init(&encbuf);
    ph->identical[0] = ph->identical[1] = -1;
    ch_parts(h, ph);
    fprintf(stderr, "history %s: dm.candles has %lld active parts (%lld rows, %lld partitions)\n",
            ph->label, ph->parts, ph->part_rows, ph->partitions);
    bool ok = true;
    /* First pass: what a user meets first; also the page sizes for the echo. */
    for (int i = 0; i < S_COUNT && ok; i++) {
        int k = ORDER[i];
        if ((k == S_ECHO_JSON || k == S_ECHO_MP) && h->echo_sub == NULL) {
            size_t mx = 0;
            for (int e = 0; e < 2; e++)
                for (int j = 0; j < npages[e]; j++)
                    mx = sizes[e][j] > mx ? sizes[e][j] : mx;
            if (!echo_start(h, mx + 1)) {
                ok = false;
                break;
            }
        }
        ok = run_series(h, ph, k, false, &encbuf, sizes, npages);
        fprintf(stderr, "  first %-15s %9.1f ms\n", S_NAMES[k], ms(ph->s[k].first));
    }
    wmetric w0[MAX_WORKERS];
    int n0 = read_metrics(h->nc, h->workers, w0);
    int fetches0 = ph->s[S_DM_JSON].total.n + ph->s[S_DM_MP].total.n;
    for (int r = 0; r < repeats && ok; r++) {
        for (int i = 0; i < S_COUNT && ok; i++)
            ok = run_series(h, ph, ORDER[i], true, &encbuf, sizes, npages);
        if (ok)
            fprintf(stderr, "  pass %d/%d: dm json %.1f ms, dm msgpack %.1f ms, ch JSONEachRow %.1f ms\n",
                    r + 1, repeats, ms(ph->s[S_DM_JSON].total.v[ph->s[S_DM_JSON].total.n - 1]),
                    ms(ph->s[S_DM_MP].total.v[ph->s[S_DM_MP].total.n - 1]),
                    ms(ph->s[S_CH_JSON].total.v[ph->s[S_CH_JSON].total.n - 1]));
        if (ok && bench_now_ns() > h->deadline) {
            fprintf(stderr, "bench: time limit reached after %d passes\n", r + 1);
            break;
        }
    }
    dm_buf_free(&encbuf);
    ph->nwm = read_metrics(h->nc, h->workers, ph->wm);
    ph->wch_fetches = 0;
    if (ok && n0 == h->workers && ph->nwm == n0) {
        ph->wch_ms = ph->wch_calls = 0;
        for (int i = 0; i < n0; i++) {
            ph->wch_ms += ph->wm[i].ch_ms - w0[i].ch_ms;
            ph->wch_calls += ph->wm[i].ch_calls - w0[i].ch_calls;
        }
        ph->wch_fetches = ph->s[S_DM_JSON].total.n + ph->s[S_DM_MP].total.n - fetches0;
    }
    ph->ran = ok;
    return ok;
}

static bool optimize(hist *h, double *secs, int *extra)
{
    int64_t t0 = bench_now_ns();
    *extra = 0;
    if (!ch_query(&h->ch, NULL, "OPTIMIZE TABLE dm.candles FINAL")) {
        fprintf(stderr, "bench: %s\n", h->ch.err);
        return false;
    }
    /* Partitions a table-wide OPTIMIZE left with more than one part, one by one. */
    if (!ch_query(&h->ch, NULL,
                  "SELECT partition FROM system.parts WHERE database = 'dm' AND table = "
                  "'candles' AND active GROUP BY partition HAVING count() > 1 FORMAT TSV")) {
        fprintf(stderr, "bench: %s\n", h->ch.err);
        return false;
    }
    char *list = strdup(h->ch.body.data ? h->ch.body.data : "");
    for (char *save = NULL, *line = strtok_r(list, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char sql[128];
        snprintf(sql, sizeof sql, "OPTIMIZE TABLE dm.candles PARTITION %s FINAL", line);
        if (!ch_query(&h->ch, NULL, sql)) {
            fprintf(stderr, "bench: %s\n", h->ch.err);
            free(list);
            return false;
        }
        (*extra)++;
    }
    free(list);
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    return true;
}

static void pages_str(sstats *s, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->pages && i < MAX_PAGES && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%.1f", i ? " " : "", med_ms(&s->page[i]));
}

static double page_med_sum(sstats *s)
{
    double t = 0;
    for (int i = 0; i < s->pages && i < MAX_PAGES; i++)
        t += med_ms(&s->page[i]);
    return t;
}

/* The two table rows of a phase: msgpack against the 200 ms target, json against
 * ClickHouse's own JSONEachRow. */
static void report_rows(phase *ph, const char *tag)
{
    sstats *s = ph->s;
    char name[80], v[64], b[64];
    double mp = med_ms(&s[S_DM_MP].total), js = med_ms(&s[S_DM_JSON].total);
    double chj = med_ms(&s[S_CH_JSON].total), chb = med_ms(&s[S_CH_RB].total);
    bool clean = s[S_DM_MP].errors == 0 && s[S_DM_JSON].errors == 0 && s[S_CH_JSON].errors == 0;

    snprintf(name, sizeof name, "history 65k msgpack%s", tag);
    snprintf(v, sizeof v, "%.1f / %.1f ms", mp, min_ms(&s[S_DM_MP].total));
    snprintf(b, sizeof b, "%.1f ms CH RowBinary", chb);
    bench_row(name, v, b, mp / 200.0, "<= 200 ms", ph->ran && clean && mp <= 200.0);
    snprintf(name, sizeof name, "history 65k json%s", tag);
    snprintf(v, sizeof v, "%.1f / %.1f ms", js, min_ms(&s[S_DM_JSON].total));
    snprintf(b, sizeof b, "%.1f ms CH JSONEachRow", chj);
    bench_row(name, v, b, js / chj, "<= 2.00", ph->ran && clean && js <= 2.0 * chj);
}

/* Passes, parts, served_by, every baseline, first fetches and the exact-pages ratio. */
static void report_baselines(phase *ph, const char *tag)
{
    sstats *s = ph->s;
    char buf[512], buf2[512];
    double js = med_ms(&s[S_DM_JSON].total);
    tally_str(ph->served_all[0], buf, sizeof buf);
    tally_str(ph->served_all[1], buf2, sizeof buf2);
    bench_note("history%s: %zu passes of each series, values median / min of whole 65,000-row "
               "fetches; dm.candles had %lld active parts (%lld rows, %lld partitions); pages "
               "served_by json: %s; msgpack: %s",
               tag, s[S_DM_JSON].total.n, ph->parts, ph->part_rows, ph->partitions, buf, buf2);
    size_t k = 0;
    for (int i = 0; i < S_COUNT; i++) {
        int x = ORDER[i];
        if (x == S_DM_JSON || x == S_DM_MP)
            continue;
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s %.1f/%.1f", k ? ", " : "", S_NAMES[x],
                              med_ms(&s[x].total), min_ms(&s[x].total));
        if (k >= sizeof buf)
            break;
    }
    bench_note("history%s baselines and diagnostics, median/min ms per 65,000 rows (7 pages or "
               "queries unless one): %s",
               tag, buf);
    bench_note("history%s first fetch after %s: dm json %.1f ms, dm msgpack %.1f ms, ch "
               "JSONEachRow %.1f ms, ch RowBinary %.1f ms, pg COPY one %.1f ms; reply bytes per "
               "fetch: json %zu, msgpack %zu, JSONEachRow %zu, RowBinary %zu",
               tag, *tag ? "OPTIMIZE" : "the load", ms(s[S_DM_JSON].first), ms(s[S_DM_MP].first),
               ms(s[S_CH_JSON].first), ms(s[S_CH_RB].first), ms(s[S_PG_ONE].first),
               s[S_DM_JSON].bytes, s[S_DM_MP].bytes, s[S_CH_JSON].bytes, s[S_CH_RB].bytes);
    double jex = med_ms(&s[S_CH_JSON_EX].total);
    bench_note("history%s json against the tightest raw read of the same pages (JSONEachRow, "
               "FINAL, each page's own ts bounds, so no query reads past its page): %.1f ms, "
               "ratio %.2f (the issue's baseline pages on ts >= X with no upper page bound, "
               "and FINAL on 18.16 merges the whole rest of the range before LIMIT)",
               tag, jex, js / jex);
}

/* Where the time goes, per fetch (sums of per-page medians). */
static void report_breakdown(phase *ph, const char *tag)
{
    sstats *s = ph->s;
    char buf[512], buf2[512];
    for (int e = 0; e < 2; e++) {
        int dm = e ? S_DM_MP : S_DM_JSON, echo = e ? S_ECHO_MP : S_ECHO_JSON;
        int enc = e ? S_ENC_MP : S_ENC_JSON;
        double t = page_med_sum(&s[dm]), chw = page_med_sum(&s[S_CH_WK]);
        double tr = page_med_sum(&s[echo]), en = page_med_sum(&s[enc]);
        pages_str(&s[dm], buf, sizeof buf);
        pages_str(&s[S_CH_WK], buf2, 200);
        /* The workers' own timing of their ClickHouse calls, when every worker answered:
         * the bench's run of the same SQL follows full-range reads of the same rows in each
         * pass and has been measured at half of what the workers wait. */
        bool own = ph->wch_fetches > 0 && ph->wch_calls > 0;
        double ch = own ? ph->wch_ms / ph->wch_fetches : chw;
        char chs[200];
        if (own)
            snprintf(chs, sizeof chs,
                     "ClickHouse as the workers timed their calls (query, transfer, RowBinary "
                     "decode; mean of %d fetches, %.0f calls, %.1f ms each) %.1f",
                     ph->wch_fetches, ph->wch_calls, ph->wch_ms / ph->wch_calls, ch);
        else
            snprintf(chs, sizeof chs, "ClickHouse with the worker's SQL (the bench's run) %.1f",
                     ch);
        bench_note("history%s %s where the time goes (ms): end to end %.1f = client work (request, "
                   "reply scan) %.1f + round trips; round trips (sums of per-page medians) %.1f = "
                   "%s + the worker's encoder (in-process%s) %.1f + NATS moving the same bytes "
                   "(echo) %.1f + rest (request handling, CPU contention) %.1f; per page: dm [%s], "
                   "the bench's run of the worker's SQL [%s], %.1f in all",
                   tag, e ? "msgpack" : "json", med_ms(&s[dm].total), med_ms(&s[dm].client), t,
                   chs,
                   ph->identical[e] == 1   ? ", byte-identical replies"
                   : ph->identical[e] == 0 ? ", NOT byte-identical"
                                           : "",
                   en, tr, t - ch - en - tr, buf, buf2, chw);
    }
}

/* CPU per fetch, and the workers' own latency figures. */
static void report_cpu_and_workers(phase *ph, const char *tag)
{
    sstats *s = ph->s;
    char buf[512] = "";
    size_t k = 0;
    int cs[4] = {S_DM_JSON, S_DM_MP, S_CH_JSON, S_CH_WK};
    for (int i = 0; i < 4; i++) {
        sstats *x = &s[cs[i]];
        if (x->cpu_runs == 0)
            continue;
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s:", i ? "; " : "", S_NAMES[cs[i]]);
        for (int c = 0; c < CPU_N && k < sizeof buf; c++)
            if (c != CPU_PG)
                k += (size_t)snprintf(buf + k, sizeof buf - k, " %s %.3f", CPU_NAMES[c],
                                      x->cpu[c] / x->cpu_runs);
        if (k >= sizeof buf)
            break;
    }
    bench_note("history%s CPU seconds per fetch: %s", tag, buf);
    k = 0;
    buf[0] = '\0';
    for (int i = 0; i < ph->nwm && k < sizeof buf; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s count %.0f p50 %.2f p95 %.2f p99 %.2f",
                              i ? "; " : "", ph->wm[i].worker, ph->wm[i].count, ph->wm[i].p50,
                              ph->wm[i].p95, ph->wm[i].p99);
    bench_note("history%s workers' own get_historical latency per page (dm.v1.metrics, ms, "
               "histogram bucket bounds, since the workers started: %s): %s",
               tag, *tag ? "both phases" : "the first phase", ph->nwm ? buf : "no answer");
}

static void report_phase(phase *ph, const char *tag)
{
    report_rows(ph, tag);
    report_baselines(ph, tag);
    report_breakdown(ph, tag);
    report_cpu_and_workers(ph, tag);
}

/* ------------------------------------------------------------------ bulk --- */

enum { B_PG, B_CH, B_REDIS, B_COUNT };
static const char *const B_NAMES[B_COUNT] = {"postgres", "clickhouse", "redis"};
/* The durable consumers of MARKET that write a market.candles message, per backend. */
static const char *const B_CONSUMERS[B_COUNT] = {"timescale-candles", "clickhouse-candles",
                                                 "dragonfly-candles"};

typedef struct {
    int kind;
    PGconn *pg;
    chc ch;
    redisContext *rc;
    char symbol[16], token[16];
    long want;
    int depth;
    int64_t last_ts;
    atomic_bool go, stop;
    int64_t done_ns; /* 0: not seen */
    long polls;
    char err[300];
    pthread_t th;
} poller;

static bool poll_once(poller *p)
{
    char sql[256];
    switch (p->kind) {
    case B_PG: {
        const char *params[1] = {p->symbol};
        PGresult *r = PQexecParams(p->pg,
                                   "SELECT count(*) FROM candles WHERE symbol = $1 AND "
                                   "timeframe = '1m'",
                                   1, NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && atol(PQgetvalue(r, 0, 0)) == p->want;
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            snprintf(p->err, sizeof p->err, "postgres: %s", PQerrorMessage(p->pg));
        PQclear(r);
        return ok;
    }
    case B_CH: {
        snprintf(sql, sizeof sql,
                 "SELECT count() FROM dm.candles FINAL WHERE symbol = '%s' AND timeframe = '1m' "
                 "FORMAT TSV",
                 p->symbol);
        bool ok;
        long long n = ch_scalar(&p->ch, sql, &ok);
        if (!ok)
            snprintf(p->err, sizeof p->err, "%s", p->ch.err);
        return ok && n == p->want;
    }
    default: {
        char key[96];
        snprintf(key, sizeof key, "candle:latest:{%s}:1m", p->token);
        redisAppendCommand(p->rc, "ZCARD %s", key);
        redisAppendCommand(p->rc, "ZRANGE %s -1 -1 WITHSCORES", key);
        redisReply *a = NULL, *b = NULL;
        bool ok = redisGetReply(p->rc, (void **)&a) == REDIS_OK &&
                  redisGetReply(p->rc, (void **)&b) == REDIS_OK;
        long want = p->want < p->depth ? p->want : p->depth;
        if (!ok)
            snprintf(p->err, sizeof p->err, "redis: %s", p->rc->errstr);
        ok = ok && a && a->type == REDIS_REPLY_INTEGER && a->integer == want && b &&
             b->type == REDIS_REPLY_ARRAY && b->elements == 2 &&
             b->element[1]->type == REDIS_REPLY_STRING &&
             strtoll(b->element[1]->str, NULL, 10) == p->last_ts;
        freeReplyObject(a);
        freeReplyObject(b);
        return ok;
    }
    }
}

static void *poller_run(void *arg)
{
    poller *p = arg;
    while (!atomic_load(&p->go) && !atomic_load(&p->stop))
        bench_sleep_ms(0);
    int64_t deadline = bench_now_ns() + COMMIT_WAIT_S * NS_PER_S;
    while (!atomic_load(&p->stop) && bench_now_ns() < deadline) {
        p->polls++;
        if (poll_once(p)) {
            p->done_ns = bench_now_ns();
            break;
        }
        bench_sleep_ms(POLL_MS);
    }
    if (p->done_ns == 0 && p->err[0] == '\0')
        snprintf(p->err, sizeof p->err, "%s: not committed within %d s", B_NAMES[p->kind],
                 COMMIT_WAIT_S);
    return NULL;
}

static long long market_backlog(jsCtx *js)
{
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    if (js_Consumers(&list, js, DM_STREAM_MARKET, NULL, &jerr) != NATS_OK)
        return -1;
    long long total = 0;
    for (int i = 0; i < list->Count; i++)
        total += (long long)list->List[i]->NumPending + (long long)list->List[i]->NumAckPending;
    jsConsumerInfoList_Destroy(list);
    return total;
}

static bool wait_backlog(jsCtx *js, int timeout_s)
{
    int64_t deadline = bench_now_ns() + (int64_t)timeout_s * NS_PER_S;
    long long n = -1;
    while (bench_now_ns() < deadline) {
        if ((n = market_backlog(js)) == 0)
            return true;
        bench_sleep_ms(50);
    }
    fprintf(stderr, "bench: MARKET consumers still hold %lld messages after %d s\n", n, timeout_s);
    return false;
}

static char *bulk_payload(const char *symbol, int64_t base, long n, size_t *len)
{
    size_t cap = (size_t)n * 200 + 64, k = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    k += (size_t)snprintf(buf, cap, "{\"candles\":[");
    for (long i = 0; i < n; i++) {
        double o = 1.1 + (double)(i % 500) * 1e-5, c = o + ((i & 1) ? 2e-5 : -2e-5);
        double hi = (o > c ? o : c) + 5e-5, lo = (o < c ? o : c) - 5e-5;
        k += (size_t)snprintf(buf + k, cap - k,
                              "%s{\"symbol\":\"%s\",\"timeframe\":\"1m\",\"timestamp\":%" PRId64
                              ",\"open\":%.5f,\"high\":%.5f,\"low\":%.5f,\"close\":%.5f,"
                              "\"volume\":%ld,\"source\":\"" BULK_SOURCE "\"}",
                              i ? "," : "", symbol, (int64_t)(base + i * MIN_MS), o, hi, lo, c,
                              10 + i % 90);
    }
    k += (size_t)snprintf(buf + k, cap - k, "]}");
    *len = k;
    return buf;
}

static natsMsg *make_msg(const char *subject, const char *data, size_t len, const char *id)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, DM_HDR_MSG_ID, id);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, DM_HDR_CONTENT_TYPE, DM_CT_JSON);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

/* Sync publish; the time to the PubAck (and the stream sequence), -1 on failure. */
static int64_t publish_sync(jsCtx *js, natsMsg *m, const char *what, uint64_t *seq)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 20000;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    int64_t t0 = bench_now_ns();
    natsStatus s = js_PublishMsg(&pa, js, m, &po, &jerr);
    int64_t dt = bench_now_ns() - t0;
    bool dup = pa && pa->Duplicate;
    if (seq)
        *seq = pa ? pa->Sequence : 0;
    jsPubAck_Destroy(pa);
    if (s != NATS_OK || dup) {
        fprintf(stderr, "bench: publish %s: %s (%d)\n", what,
                dup ? "duplicate (an earlier run used this Nats-Msg-Id)" : natsStatus_GetText(s),
                (int)jerr);
        return -1;
    }
    return dt;
}

static bool raw_stream(jsCtx *js, bool create)
{
    jsErrCode jerr = 0;
    js_DeleteStream(js, RAW_STREAM, NULL, &jerr);
    if (!create)
        return true;
    const char *subjects[] = {RAW_SUBJECTS};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = RAW_STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.MaxMsgSize = 8 * 1024 * 1024;
    sc.Duplicates = 120LL * 1000 * NS_PER_MS; /* as MARKET */
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        fprintf(stderr, "bench: create stream %s: %s (%d)\n", RAW_STREAM, natsStatus_GetText(s),
                (int)jerr);
    return s == NATS_OK;
}

/* A letter no earlier run used on this stack: nothing in PostgreSQL, ClickHouse or Redis. */
static bool fresh_symbol(hist *h, redisContext *rc, char *letter, char *symbol, char *token)
{
    for (; *letter <= 'Z'; (*letter)++) {
        snprintf(symbol, 16, "BK%c/USD", *letter);
        token_of(symbol, token, 16);
        const char *params[1] = {symbol};
        PGresult *r = PQexecParams(h->pg, "SELECT count(*) FROM candles WHERE symbol = $1", 1,
                                   NULL, params, NULL, NULL, 0);
        long pgn = PQresultStatus(r) == PGRES_TUPLES_OK ? atol(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count() FROM dm.candles WHERE symbol = '%s' FORMAT TSV",
                 symbol);
        bool ok;
        long long chn = ch_scalar(&h->ch, sql, &ok);
        redisReply *x = redisCommand(rc, "EXISTS candle:latest:{%s}:1m", token);
        long long rn = x && x->type == REDIS_REPLY_INTEGER ? x->integer : -1;
        freeReplyObject(x);
        if (pgn < 0 || !ok || rn < 0) {
            fprintf(stderr, "bench: checking %s: %s%s\n", symbol, PQerrorMessage(h->pg),
                    ok ? "" : h->ch.err);
            return false;
        }
        if (pgn == 0 && chn == 0 && rn == 0) {
            (*letter)++;
            return true;
        }
    }
    fprintf(stderr, "bench: BKA/USD .. BKZ/USD all hold candles from earlier runs; use a fresh "
                    "stack (bench/run.sh starts one)\n");
    return false;
}

/* One bulk measurement: its connections, its pollers and what the rounds gathered. */
typedef struct {
    hist *h;
    jsCtx *js;
    redisContext *rc;
    long n;
    int depth, rounds, done;
    poller pl[B_COUNT];
    bench_samples ack, raw, all, per[B_COUNT];
    bench_samples delivered[B_COUNT], acked[B_COUNT];
    int held[B_COUNT]; /* rounds with >= 1.9 s between delivery and ack */
    char letter, used[MAX_ROUNDS * 12];
    size_t payload_len;
    double cpu[CPU_N];
} bulk;

static bool bulk_pollers_connect(bulk *k)
{
    bool ok = true;
    for (int b = 0; b < B_COUNT && ok; b++) {
        poller *p = &k->pl[b];
        p->kind = b;
        p->depth = k->depth;
        p->want = k->n;
        if (b == B_PG)
            ok = (p->pg = bench_pg_connect()) != NULL;
        else if (b == B_CH)
            ok = ch_init(&p->ch);
        else
            ok = (p->rc = bench_redis_connect()) != NULL;
    }
    return ok;
}

static void bulk_free(bulk *k)
{
    for (int b = 0; b < B_COUNT; b++) {
        PQfinish(k->pl[b].pg);
        ch_free(&k->pl[b].ch);
        redisFree(k->pl[b].rc);
        bench_samples_free(&k->per[b]);
        bench_samples_free(&k->delivered[b]);
        bench_samples_free(&k->acked[b]);
    }
    bench_samples_free(&k->ack);
    bench_samples_free(&k->raw);
    bench_samples_free(&k->all);
}

static void pollers_start(bulk *k, const char *symbol, const char *token, int64_t last)
{
    for (int b = 0; b < B_COUNT; b++) {
        poller *p = &k->pl[b];
        snprintf(p->symbol, sizeof p->symbol, "%s", symbol);
        snprintf(p->token, sizeof p->token, "%s", token);
        p->last_ts = last;
        p->done_ns = 0;
        p->polls = 0;
        p->err[0] = '\0';
        atomic_store(&p->go, false);
        atomic_store(&p->stop, false);
        pthread_create(&p->th, NULL, poller_run, p);
    }
}

/* Publishes m (taking it) and waits for the pollers; the PubAck's time, < 0 on failure. */
static int64_t publish_and_poll(bulk *k, natsMsg *m, const char *subject, uint64_t *seq)
{
    int64_t dt = publish_sync(k->js, m, subject, seq);
    /* Polling starts at the PubAck, so it takes no CPU from the publish; a backend that
     * committed before that is seen by the first poll. */
    for (int b = 0; b < B_COUNT; b++)
        atomic_store(&k->pl[b].go, true);
    natsMsg_Destroy(m);
    if (dt < 0)
        for (int b = 0; b < B_COUNT; b++)
            atomic_store(&k->pl[b].stop, true);
    for (int b = 0; b < B_COUNT; b++)
        pthread_join(k->pl[b].th, NULL);
    return dt;
}

/* The time until every backend had committed, from t0; < 0 when one never did. */
static int64_t round_commits(bulk *k, const char *symbol, int64_t t0)
{
    int64_t worst = 0;
    bool ok = true;
    for (int b = 0; b < B_COUNT; b++) {
        if (k->pl[b].done_ns == 0) {
            fprintf(stderr, "bench: bulk %s: %s\n", symbol, k->pl[b].err);
            ok = false;
            continue;
        }
        int64_t t = k->pl[b].done_ns - t0;
        bench_samples_add(&k->per[b], t);
        worst = t > worst ? t : worst;
    }
    return ok ? worst : -1;
}

/* Where the time went, from the server's side: when it last delivered to and got an ack
 * from each writing consumer (nats-server's clock, this machine's). */
static void server_side(bulk *k, uint64_t seq, int64_t w0, char *where, size_t cap)
{
    size_t wl = 0;
    where[0] = '\0';
    for (int b = 0; b < B_COUNT; b++) {
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        if (js_GetConsumerInfo(&ci, k->js, DM_STREAM_MARKET, B_CONSUMERS[b], NULL, &jerr) ==
                NATS_OK &&
            ci && ci->Delivered.Stream >= seq && ci->Delivered.Last > 0) {
            int64_t d = ci->Delivered.Last - w0;
            bench_samples_add(&k->delivered[b], d);
            if (ci->AckFloor.Stream >= seq && ci->AckFloor.Last > 0) {
                bench_samples_add(&k->acked[b], ci->AckFloor.Last - w0);
                if (ci->AckFloor.Last - ci->Delivered.Last >= 1900 * NS_PER_MS)
                    k->held[b]++;
            }
            wl += (size_t)snprintf(where + wl, cap - wl, "%s%s delivered %.1f acked %.1f",
                                   b ? ", " : "", B_CONSUMERS[b], ms(d),
                                   ci->AckFloor.Stream >= seq ? ms(ci->AckFloor.Last - w0) : NAN);
        }
        jsConsumerInfo_Destroy(ci);
    }
}

/* The same bytes to a stream nobody consumes: the PubAck's time, < 0 on failure. */
static int64_t raw_publish(bulk *k, const char *payload, int r)
{
    char rid[64];
    snprintf(rid, sizeof rid, "raw:%" PRId64 ":%d", wall_ms(), r);
    natsMsg *rm = make_msg("benchhistraw.candles", payload, k->payload_len, rid);
    int64_t rdt = rm ? publish_sync(k->js, rm, RAW_STREAM, NULL) : -1;
    natsMsg_Destroy(rm);
    return rdt;
}

/* One round: a fresh symbol, one market.candles message of n candles, the time until each
 * backend committed it, then the raw baseline. */
static bool bulk_round(bulk *k, int r)
{
    char symbol[16], token[16], subject[64], id[160], where[400];
    if (!fresh_symbol(k->h, k->rc, &k->letter, symbol, token) || !wait_backlog(k->js, 120))
        return false;
    /* aligned minutes, the last one a day before now */
    int64_t base = (wall_ms() / MIN_MS - k->n - 1440) * MIN_MS, last = base + (k->n - 1) * MIN_MS;
    char *payload = bulk_payload(symbol, base, k->n, &k->payload_len);
    snprintf(subject, sizeof subject, DM_SUBJ_CANDLES_FMT, token, "1m");
    snprintf(id, sizeof id, "candles:%s:1m:%" PRId64 ":%" PRId64 ":%ld", token, base, last, k->n);
    natsMsg *m = payload ? make_msg(subject, payload, k->payload_len, id) : NULL;
    if (m == NULL) {
        free(payload);
        return false;
    }
    pollers_start(k, symbol, token, last);
    double c0[CPU_N], c1[CPU_N];
    cpu_snap(c0);
    int64_t t0 = bench_now_ns();
    uint64_t seq = 0;
    int64_t w0 = wall_ns();
    int64_t dt = publish_and_poll(k, m, subject, &seq);
    cpu_snap(c1);
    int64_t worst = dt < 0 ? -1 : round_commits(k, symbol, t0);
    if (worst < 0) {
        free(payload);
        return false;
    }
    bench_samples_add(&k->ack, dt);
    bench_samples_add(&k->all, worst);
    server_side(k, seq, w0, where, sizeof where);
    for (int c = 0; c < CPU_N; c++)
        k->cpu[c] += c1[c] - c0[c];
    int64_t rdt = raw_publish(k, payload, r);
    free(payload);
    if (rdt < 0)
        return false;
    bench_samples_add(&k->raw, rdt);
    size_t ul = strlen(k->used);
    snprintf(k->used + ul, sizeof k->used - ul, "%s%s", ul ? " " : "", symbol);
    fprintf(stderr,
            "  bulk %d/%d %s: PubAck %.1f ms (raw %.1f), postgres %.1f, clickhouse %.1f, redis "
            "%.1f, all %.1f ms (polls %ld/%ld/%ld)\n",
            r + 1, k->rounds, symbol, ms(dt), ms(rdt), ms(k->pl[B_PG].done_ns - t0),
            ms(k->pl[B_CH].done_ns - t0), ms(k->pl[B_REDIS].done_ns - t0), ms(worst),
            k->pl[B_PG].polls, k->pl[B_CH].polls, k->pl[B_REDIS].polls);
    fprintf(stderr, "    server side (ms from the publish call): %s\n", where);
    k->done++;
    return true;
}

static void bulk_report_rows(bulk *k, bool ok)
{
    char v[64], b[64], name[64], x[32];
    double am = med_ms(&k->ack), cm = med_ms(&k->all);
    snprintf(name, sizeof name, "bulk %s candles: PubAck",
             bench_thousands((double)k->n, x, sizeof x));
    snprintf(v, sizeof v, "%.1f / %.1f ms", am, max_ms(&k->ack));
    snprintf(b, sizeof b, "%.1f ms raw JS", med_ms(&k->raw));
    bench_row(name, v, b, am / 50.0, "<= 50 ms", ok && am <= 50.0);
    snprintf(name, sizeof name, "bulk %s candles: committed all 3", x);
    snprintf(v, sizeof v, "%.1f / %.1f ms", cm, max_ms(&k->all));
    snprintf(b, sizeof b, "PG %.0f CH %.0f Redis %.0f", med_ms(&k->per[B_PG]),
             med_ms(&k->per[B_CH]), med_ms(&k->per[B_REDIS]));
    bench_row(name, v, b, cm / 500.0, "<= 500 ms", ok && cm <= 500.0);
}

static void bulk_report_notes(bulk *k)
{
    bench_samples *per = k->per;
    bench_note("bulk: %d rounds (%s), one market.candles message of %ld 1m candles, %zu bytes "
               "of JSON; values median / max from the publish call; PubAck max %.1f ms, raw "
               "JetStream (file stream, same bytes) median %.1f max %.1f ms; committed: "
               "postgres %.1f / %.1f, clickhouse (count() FINAL) %.1f / %.1f, redis (ZCARD "
               "%d, newest = last) %.1f / %.1f ms; polled every %d ms per backend",
               k->done, k->used, k->n, k->payload_len, max_ms(&k->ack), med_ms(&k->raw),
               max_ms(&k->raw), med_ms(&per[B_PG]), max_ms(&per[B_PG]), med_ms(&per[B_CH]),
               max_ms(&per[B_CH]), (int)(k->n < k->depth ? k->n : k->depth),
               med_ms(&per[B_REDIS]), max_ms(&per[B_REDIS]), POLL_MS);
    char srv[600];
    size_t sl = 0;
    for (int b = 0; b < B_COUNT && sl < sizeof srv; b++)
        sl += (size_t)snprintf(srv + sl, sizeof srv - sl,
                               "%s%s: delivered %.1f / %.1f, acked %.1f / %.1f (held >= 1.9 s "
                               "after delivery in %d)",
                               b ? "; " : "", B_CONSUMERS[b], med_ms(&k->delivered[b]),
                               max_ms(&k->delivered[b]), med_ms(&k->acked[b]),
                               max_ms(&k->acked[b]), k->held[b]);
    bench_note("bulk, server side (nats-server's last delivery to and last ack from each writing "
               "consumer, ms from the publish call, median / max): %s",
               srv);
    const double *cpu = k->cpu;
    bench_note("bulk CPU seconds per round (publish -> all committed, with the pollers): "
               "workers %.3f, clickhouse %.3f, postgres %.3f, nats %.3f, bench %.3f",
               cpu[CPU_WORKERS] / k->done, cpu[CPU_CH] / k->done, cpu[CPU_PG] / k->done,
               cpu[CPU_NATS] / k->done, cpu[CPU_SELF] / k->done);
}

static bool run_bulk(hist *h, int rounds, long n, int depth)
{
    bulk k = {.h = h, .n = n, .depth = depth, .rounds = rounds, .letter = 'A'};
    natsStatus s = natsConnection_JetStream(&k.js, h->nc, NULL);
    if (s != NATS_OK)
        return bench_nats_fail("JetStream", s), false;
    k.rc = bench_redis_connect();
    if (k.rc == NULL || !raw_stream(k.js, true)) {
        redisFree(k.rc);
        jsCtx_Destroy(k.js);
        return false;
    }
    bool ok = bulk_pollers_connect(&k);
    for (int r = 0; r < rounds && ok; r++)
        ok = bulk_round(&k, r);
    if (k.done > 0) {
        bulk_report_rows(&k, ok);
        bulk_report_notes(&k);
    }
    raw_stream(k.js, false);
    bulk_free(&k);
    redisFree(k.rc);
    jsCtx_Destroy(k.js);
    return ok;
}

/* ----------------------------------------------------------------- setup --- */

/* PostgreSQL's rows of the series in ts order, and the range; both stores must hold expect. */
static bool load_reference(hist *h)
{
    PGresult *r = PQexec(h->pg, "SELECT ts, open, high, low, close, volume, source FROM candles "
                                "WHERE symbol = '" SYMBOL "' AND timeframe = '" TF "' ORDER BY ts");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench: PostgreSQL: %s", PQerrorMessage(h->pg));
        PQclear(r);
        return false;
    }
    long n = PQntuples(r);
    if (n != h->expect) {
        fprintf(stderr,
                "bench: PostgreSQL holds %ld " SYMBOL " " TF " candles, expected %ld; load "
                "data/EURUSD_H1_2010-10_2021-04.csv first (dmctl publish-candles, then dmctl lag "
                "--wait 120; bench/run.sh does)\n",
                n, h->expect);
        PQclear(r);
        return false;
    }
    h->rows = calloc((size_t)n, sizeof *h->rows);
    if (h->rows == NULL) {
        PQclear(r);
        return false;
    }
    for (long i = 0; i < n; i++) {
        dm_candle *c = &h->rows[i];
        snprintf(c->symbol, sizeof c->symbol, "%s", SYMBOL);
        dm_tf_parse(TF, &c->tf);
        c->ts = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        c->open = strtod(PQgetvalue(r, (int)i, 1), NULL);
        c->high = strtod(PQgetvalue(r, (int)i, 2), NULL);
        c->low = strtod(PQgetvalue(r, (int)i, 3), NULL);
        c->close = strtod(PQgetvalue(r, (int)i, 4), NULL);
        c->has_volume = !PQgetisnull(r, (int)i, 5);
        c->volume = c->has_volume ? strtod(PQgetvalue(r, (int)i, 5), NULL) : 0;
        snprintf(c->source, sizeof c->source, "%s", PQgetvalue(r, (int)i, 6));
    }
    PQclear(r);
    h->start = h->rows[0].ts;
    h->end = h->rows[n - 1].ts + TF_MS;
    bool ok;
    long long chn = ch_scalar(&h->ch,
                              "SELECT count() FROM dm.candles FINAL WHERE symbol = '" SYMBOL
                              "' AND timeframe = '" TF "' FORMAT TSV",
                              &ok);
    if (!ok || chn != h->expect) {
        fprintf(stderr, "bench: ClickHouse holds %lld " SYMBOL " " TF " candles (FINAL), expected "
                        "%ld%s%s\n",
                chn, h->expect, ok ? "" : ": ", ok ? "" : h->ch.err);
        return false;
    }
    return true;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_history [--repeats N] [--rounds R] [--rows N] [--bulk N] [--depth D]\n"
            "                     [--workers K] [--phase all|history|bulk] [--no-optimize]\n"
            "                     [--timeout S]\n"
            "  --repeats N    timed passes of each history series (default 5)\n"
            "  --rounds R     bulk rounds, a fresh symbol each (default 5, at most 26)\n"
            "  --rows N       EUR/USD 1h candles expected in each store (default 65000)\n"
            "  --bulk N       candles in the bulk message (default 10000, at most 10000)\n"
            "  --depth D      the strategy's candle_cache_depth (default 1000)\n"
            "  --workers K    workers expected to answer dm.v1.metrics (default 2)\n"
            "  --phase P      history, bulk or all (default all)\n"
            "  --no-optimize  skip the second history phase after OPTIMIZE TABLE ... FINAL\n"
            "  --timeout S    stop repeating after S seconds (default 900)\n");
}

typedef struct {
    int repeats, rounds, depth, workers, timeout_s;
    long rows, bulk;
    bool do_hist, do_bulk, do_opt;
} hist_args;

/* --phase all|history|bulk; false for anything else. */
static bool parse_phase(const char *v, hist_args *a)
{
    a->do_hist = strcmp(v, "bulk") != 0;
    a->do_bulk = strcmp(v, "history") != 0;
    return !strcmp(v, "all") || !strcmp(v, "bulk") || !strcmp(v, "history");
}

/* -1 to run, else the exit code (usage printed). */
static int parse_args(int argc, char **argv, hist_args *a)
{
    *a = (hist_args){.repeats = 5, .rounds = 5, .depth = 1000, .workers = 2, .timeout_s = 900,
                     .rows = 65000, .bulk = 10000, .do_hist = true, .do_bulk = true,
                     .do_opt = true};
    static const struct option opts[] = {{"repeats", required_argument, 0, 'n'},
                                         {"rounds", required_argument, 0, 'r'},
                                         {"rows", required_argument, 0, 'x'},
                                         {"bulk", required_argument, 0, 'b'},
                                         {"depth", required_argument, 0, 'd'},
                                         {"workers", required_argument, 0, 'w'},
                                         {"phase", required_argument, 0, 'p'},
                                         {"no-optimize", no_argument, 0, 'o'},
                                         {"timeout", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': a->repeats = atoi(optarg); break;
        case 'r': a->rounds = atoi(optarg); break;
        case 'x': a->rows = atol(optarg); break;
        case 'b': a->bulk = atol(optarg); break;
        case 'd': a->depth = atoi(optarg); break;
        case 'w': a->workers = atoi(optarg); break;
        case 'o': a->do_opt = false; break;
        case 't': a->timeout_s = atoi(optarg); break;
        case 'p':
            if (!parse_phase(optarg, a)) {
                usage();
                return 64;
            }
            break;
        default: usage(); return c == 'h' ? 0 : 64;
        }
    }
    if (a->repeats < 1 || a->repeats > 1000 || a->rounds < 1 || a->rounds > MAX_ROUNDS ||
        a->rows < 1 || a->rows > (long)PAGE * (MAX_PAGES - 1) || a->bulk < 1 ||
        a->bulk > 10000 || a->depth < 1 || a->workers < 1 || a->workers > MAX_WORKERS ||
        a->timeout_s < 1) {
        usage();
        return 64;
    }
    return -1;
}

/* The second phase: OPTIMIZE FINAL, then the same passes again. */
static bool run_optimized(hist *h, phase *ph, int repeats)
{
    double secs = 0;
    int extra = 0;
    long long before = ph[0].parts;
    if (!optimize(h, &secs, &extra))
        return false;
    fprintf(stderr, "history: OPTIMIZE TABLE dm.candles FINAL took %.1f s\n", secs);
    bool ok = run_phase(h, &ph[1], repeats);
    bench_note("history: OPTIMIZE TABLE dm.candles FINAL took %.1f s (%d partitions "
               "needed their own OPTIMIZE ... PARTITION ... FINAL): %lld active "
               "parts -> %lld",
               secs, extra, before, ph[1].parts);
    if (ph[1].s[S_DM_JSON].total.n > 0)
        report_phase(&ph[1], " (optimized)");
    return ok;
}

/* The history phases: as found, then (unless told not to) after OPTIMIZE FINAL. */
static bool run_history(hist *h, phase *ph, const hist_args *a)
{
    if (!load_reference(h))
        return false;
    fprintf(stderr, "history: %ld " SYMBOL " " TF " candles in [%" PRId64 ", %" PRId64
                    "), pages of %d, %d passes\n",
            h->expect, h->start, h->end, PAGE, a->repeats);
    bool ok = run_phase(h, &ph[0], a->repeats);
    if (ph[0].s[S_DM_JSON].total.n > 0)
        report_phase(&ph[0], "");
    if (ok && a->do_opt)
        ok = run_optimized(h, ph, a->repeats);
    return ok;
}

static void hist_free(hist *h)
{
    bench_sub_close(h->echo_sub, &h->echo_done);
    natsConnection_Destroy(h->echo_nc);
    free(h->echo_buf);
    natsConnection_Destroy(h->nc);
    PQfinish(h->pg);
    ch_free(&h->ch);
    free(h->rows);
}

int main(int argc, char **argv)
{
    hist_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hist h;
    memset(&h, 0, sizeof h);
    h.expect = a.rows;
    h.workers = a.workers;
    h.deadline = bench_now_ns() + (int64_t)a.timeout_s * NS_PER_S;
    h.nc = bench_nats_connect("bench-history");
    h.pg = bench_pg_connect();
    if (h.nc == NULL || h.pg == NULL || !ch_init(&h.ch))
        return 1;
    rc = 0;
    phase ph[2];
    memset(ph, 0, sizeof ph);
    ph[0].label = "as found";
    ph[1].label = "after OPTIMIZE FINAL";
    if (a.do_hist && !run_history(&h, ph, &a))
        rc = 1;
    if (a.do_bulk) {
        fprintf(stderr, "bulk: %d rounds of %ld candles\n", a.rounds, a.bulk);
        if (!run_bulk(&h, a.rounds, a.bulk, a.depth))
            rc = 1;
    }
    for (int i = 0; i < 2; i++)
        phase_free(&ph[i]);
    hist_free(&h);
    curl_global_cleanup();
    nats_Close();
    return rc;
}
