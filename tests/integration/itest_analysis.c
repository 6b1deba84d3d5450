/* Server tests of the analysis operations: pattern search and return correlations,
 * compared with a brute force written here from the contract's definitions over the
 * closes read straight from PostgreSQL, on real prices published under new symbols. */
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define DAY_MS 86400000LL
#define H4_MS (4 * 3600000LL)
#define BASE_MS 1609459200000LL /* 2021-01-01T00:00:00Z */

typedef struct {
    char symbol[32];
    int64_t *ts;
    double *close;
    int n;
} series;

typedef struct {
    series *v;
    int n;
} series_set;

static void set_free(series_set *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->v[i].ts);
        free(s->v[i].close);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* Every series of a timeframe as PostgreSQL holds it: what an independent client sees. */
static bool read_all(const char *tf, series_set *out)
{
    PGresult *r = pg_query("SELECT symbol, ts, close FROM candles WHERE timeframe = $1 ORDER BY symbol, ts", tf);
    if (r == NULL)
        return false;
    int rows = PQntuples(r);
    out->v = calloc((size_t)rows + 1, sizeof *out->v);
    out->n = 0;
    for (int i = 0; i < rows; i++) {
        const char *sym = PQgetvalue(r, i, 0);
        if (out->n == 0 || strcmp(out->v[out->n - 1].symbol, sym) != 0) {
            series *s = &out->v[out->n++];
            snprintf(s->symbol, sizeof s->symbol, "%s", sym);
            s->ts = malloc((size_t)rows * sizeof *s->ts);
            s->close = malloc((size_t)rows * sizeof *s->close);
        }
        series *s = &out->v[out->n - 1];
        s->ts[s->n] = atoll(PQgetvalue(r, i, 1));
        s->close[s->n++] = strtod(PQgetvalue(r, i, 2), NULL);
    }
    PQclear(r);
    return true;
}

/* Closes of a 2021-2026 hourly file (Date,Time,Open,High,Low,Close,Volume), keyed by hour. */
static int read_hourly(const char *name, long long *key, double *close, int max)
{
    char path[512], line[256];
    snprintf(path, sizeof path, "%s/data/%s", DM_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (f == NULL)
        return 0;
    while (n < max && fgets(line, sizeof line, f)) {
        int y, mo, d, h, mi;
        double o, hi, lo, c;
        if (sscanf(line, "%d.%d.%d,%d:%d,%lf,%lf,%lf,%lf", &y, &mo, &d, &h, &mi, &o, &hi, &lo, &c) == 9) {
            key[n] = ((long long)y * 10000 + mo * 100 + d) * 100 + h;
            close[n++] = c;
        }
    }
    fclose(f);
    return n;
}

/* Publishes closes as candles (open = high = low = close) in bulk messages. */
static bool publish_series(const char *symbol, const char *tf, const int64_t *ts, const double *close, int n)
{
    char token[32], subject[96];
    int k = 0;
    for (const char *p = symbol; *p; p++)
        if (*p != '/')
            token[k++] = *p;
    token[k] = '\0';
    snprintf(subject, sizeof subject, "market.candles.%s.%s", token, tf);
    for (int from = 0; from < n; from += 1000) {
        int to = from + 1000 < n ? from + 1000 : n;
        char *body = malloc((size_t)(to - from) * 200 + 32);
        int off = sprintf(body, "{\"candles\":[");
        for (int i = from; i < to; i++)
            off += sprintf(body + off, "%s{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"timestamp\":%lld,\"open\":%.10g,"
                           "\"high\":%.10g,\"low\":%.10g,\"close\":%.10g,\"source\":\"oanda\"}",
                           i > from ? "," : "", symbol, tf, (long long)ts[i], close[i], close[i], close[i], close[i]);
        sprintf(body + off, "]}");
        uint64_t seq = publish_json(subject, body, NULL);
        free(body);
        if (seq == 0)
            return false;
    }
    return true;
}

/* Waits until dm.v1.candles.latest answers the series' last candle. */
static bool readable(const char *symbol, const char *tf, int64_t last, int timeout_s)
{
    char q[160];
    snprintf(q, sizeof q, "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"limit\":1}", symbol, tf);
    for (int i = 0; i < timeout_s * 20; i++) {
        reply r;
        bool ok = request("dm.v1.candles.latest", q, false, &r) && r.status == 200 &&
                  cJSON_GetArraySize(cJSON_GetObjectItem(r.body, "data")) == 1 &&
                  (int64_t)cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r.body, "data"), 0),
                                               "timestamp")->valuedouble == last;
        reply_free(&r);
        if (ok)
            return true;
        usleep(50000);
    }
    return false;
}

static void random_symbol(char *out, size_t cap, const char *quote)
{
    static unsigned salt;
    unsigned x = (unsigned)time(NULL) * 2654435761u + (unsigned)getpid() * 40503u + salt++ * 7919u;
    snprintf(out, cap, "Q%c%c%c%u/%s", 'A' + x % 26, 'A' + (x / 26) % 26, 'A' + (x / 676) % 26, salt, quote);
}

/* ---- pattern search, by the contract's definition ------------------------------------ */

typedef struct {
    int s, i;
    double score;
} cand;

static const series_set *g_rank_set;

static int rank(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (fabs(x->score - y->score) > 1e-9)
        return x->score > y->score ? -1 : 1;
    int c = strcmp(g_rank_set->v[x->s].symbol, g_rank_set->v[y->s].symbol);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static double pearson_window(const double *q, const double *x, int w, bool *flat)
{
    double mq = 0, mx = 0, sqq = 0, sxx = 0, sqx = 0;
    for (int k = 0; k < w; k++) {
        mq += q[k];
        mx += x[k];
    }
    mq /= w;
    mx /= w;
    for (int k = 0; k < w; k++) {
        sqq += (q[k] - mq) * (q[k] - mq);
        sxx += (x[k] - mx) * (x[k] - mx);
        sqx += (q[k] - mq) * (x[k] - mx);
    }
    *flat = sqrt(sxx / w) < 1e-7;
    return *flat ? 0 : sqx / sqrt(sqq * sxx);
}

/* The expected answer: every qualifying window scored, ranked, thinned by the zone. */
static int brute_patterns(const series_set *set, const char *only, const double *q, int w, bool similar,
                          double threshold, int limit, int64_t start, int64_t end, int zone, cand *out)
{
    size_t cap = 0;
    for (int s = 0; s < set->n; s++)
        cap += (size_t)set->v[s].n;
    cand *all = malloc((cap + 1) * sizeof *all);
    int n = 0;
    for (int s = 0; s < set->n; s++) {
        const series *x = &set->v[s];
        if (only && strcmp(x->symbol, only) != 0)
            continue;
        for (int i = 0; i + w <= x->n; i++) {
            bool flat;
            double r = pearson_window(q, x->close + i, w, &flat);
            if (!flat && x->ts[i] >= start && x->ts[i + w - 1] < end && (!similar || r >= threshold))
                all[n++] = (cand){s, i, r};
        }
    }
    g_rank_set = set;
    qsort(all, (size_t)n, sizeof *all, rank);
    int taken = 0;
    for (int k = 0; k < n && taken < limit; k++) {
        bool near = false;
        for (int j = 0; j < taken && !near; j++)
            near = out[j].s == all[k].s && abs(out[j].i - all[k].i) <= zone;
        if (!near)
            out[taken++] = all[k];
    }
    free(all);
    return taken;
}

/* Compares a reply's data with the expected windows: same windows, same order, scores to 1e-6. */
static bool same_windows(const cJSON *data, const series_set *set, const cand *want, int n, int w, char *why,
                         size_t cap)
{
    if (cJSON_GetArraySize(data) != n)
        return snprintf(why, cap, "%d windows, want %d", cJSON_GetArraySize(data), n), false;
    for (int k = 0; k < n; k++) {
        const cJSON *it = cJSON_GetArrayItem(data, k);
        const series *x = &set->v[want[k].s];
        const char *sym = cJSON_GetStringValue(cJSON_GetObjectItem(it, "symbol"));
        int64_t ts = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "timestamp"));
        int64_t st = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "start_timestamp"));
        double score = cJSON_GetNumberValue(cJSON_GetObjectItem(it, "score"));
        if (!sym || strcmp(sym, x->symbol) != 0 || st != x->ts[want[k].i] || ts != x->ts[want[k].i + w - 1] ||
            fabs(score - want[k].score) > 1e-6)
            return snprintf(why, cap, "window %d: got %s %lld..%lld %.9f, want %s %lld..%lld %.9f", k,
                            sym ? sym : "?", (long long)st, (long long)ts, score, x->symbol,
                            (long long)x->ts[want[k].i], (long long)x->ts[want[k].i + w - 1], want[k].score),
                   false;
    }
    return true;
}

static char *vector_json(const char *key, const double *q, int w)
{
    char *s = malloc((size_t)w * 28 + 64);
    int off = sprintf(s, "\"%s\":[", key);
    for (int k = 0; k < w; k++)
        off += sprintf(s + off, "%s%.17g", k ? "," : "", q[k]);
    sprintf(s + off, "]");
    return s;
}

/* One request against the brute force; returns a failure message or NULL. */
static const char *check_patterns(const series_set *set, const char *only, const double *q, int w, bool similar,
                                  double threshold, int limit, int64_t start, int64_t end, int zone, char *why,
                                  size_t cap)
{
    char *vec = vector_json(similar ? "query_vector" : "pattern_vector", q, w);
    char *body = malloc(strlen(vec) + 512), extra[256] = "";
    if (only)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"symbol\":\"%s\"", only);
    if (similar)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"threshold\":%.17g", threshold);
    if (start > INT64_MIN)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"start_date\":%lld,\"end_date\":%lld",
                 (long long)start, (long long)end);
    sprintf(body, "{%s,\"timeframe\":\"4h\",\"limit\":%d,\"exclusion_zone\":%d%s}", vec, limit, zone, extra);
    reply r;
    bool got = request(similar ? "dm.v1.patterns.similar" : "dm.v1.patterns.find", body, false, &r);
    free(vec);
    free(body);
    cand *want = malloc((size_t)limit * sizeof *want);
    int n = brute_patterns(set, only, q, w, similar, threshold, limit, start, end, zone, want);
    const char *fail = NULL;
    if (!got || r.status != 200) {
        snprintf(why, cap, "status %d: %.200s", got ? r.status : 0, got ? r.raw : "");
        fail = why;
    }
    else if (!cJSON_IsTrue(cJSON_GetObjectItem(r.body, "exact")))
        fail = "the answer does not say exact: true";
    else if (!same_windows(cJSON_GetObjectItem(r.body, "data"), set, want, n, w, why, cap))
        fail = why;
    free(want);
    reply_free(&r);
    return fail;
}

static void pattern_series(double *c, const double *src, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        c[i] = src ? src[i] : (i ? c[i - 1] : 1.0) * (1.0 + ((double)(seed >> 8 & 0xffff) / 65535.0 - 0.5) * 0.004);
    }
}

static void patterns_match_an_independent_brute_force(void)
{
    enum { N = 1500 };
    long long key[N];
    double gbp[N], eur[N], walk[N], q32[32], q128[128];
    int64_t ts[N];
    char a[32], b[32], c[32], why[512] = "";
    CHECK(read_hourly("GBPUSD_H1_2021-01_2026-04.csv", key, gbp, N) == N &&
              read_hourly("EURUSD_H1_2021-01_2026-04.csv", key, eur, N) == N, "data files missing");
    pattern_series(walk, NULL, N, 42);
    for (int i = 600; i < 640; i++)
        walk[i] = walk[600]; /* a flat stretch: its windows are never returned */
    for (int i = 0; i < N; i++)
        ts[i] = BASE_MS + i * H4_MS;
    random_symbol(a, sizeof a, "USD"), random_symbol(b, sizeof b, "USD"), random_symbol(c, sizeof c, "USD");
    /* Asked once before the data exists, so the worker's copy must follow the commits. */
    reply r0;
    request("dm.v1.patterns.find", "{\"pattern_vector\":[1,2,3,4,5,6,7,9],\"timeframe\":\"4h\"}", false, &r0);
    reply_free(&r0);
    CHECK(publish_series(a, "4h", ts, gbp, N) && publish_series(b, "4h", ts, eur + 100, N - 100) &&
              publish_series(c, "4h", ts, walk, N), "publish failed");
    CHECK(readable(a, "4h", ts[N - 1], 20) && readable(b, "4h", ts[N - 101], 20) && readable(c, "4h", ts[N - 1], 20),
          "the candles were not readable within 20 s");
    sleep(1);
    series_set set = {0};
    CHECK(read_all("4h", &set), "cannot read PostgreSQL");
    for (int k = 0; k < 32; k++)
        q32[k] = gbp[700 + k] + (k % 3) * 1e-5;
    for (int k = 0; k < 128; k++)
        q128[k] = walk[200 + k] * (1 + (k % 5) * 1e-4);
    const char *fail = check_patterns(&set, a, q32, 32, false, 0, 10, INT64_MIN, INT64_MAX, 8, why, sizeof why);
    if (!fail)
        fail = check_patterns(&set, NULL, q32, 32, false, 0, 10, INT64_MIN, INT64_MAX, 8, why, sizeof why);
    if (!fail)
        fail = check_patterns(&set, NULL, q32, 32, true, 0.9, 50, INT64_MIN, INT64_MAX, 8, why, sizeof why);
    if (!fail)
        fail = check_patterns(&set, NULL, q128, 128, false, 0, 20, ts[100], ts[1400], 0, why, sizeof why);
    if (!fail)
        fail = check_patterns(&set, c, q128, 128, true, -0.5, 1000, INT64_MIN, INT64_MAX, 40, why, sizeof why);
    set_free(&set);
    CHECK(fail == NULL, "%s", fail);
}

static void expect_code(const char *subject, const char *body, int status, const char *code, const char *field,
                        char *why, size_t cap)
{
    reply r;
    if (!request(subject, body, false, &r)) {
        snprintf(why, cap, "%s %s: no reply", subject, body);
        return;
    }
    const cJSON *e = cJSON_GetObjectItem(r.body, "error");
    const char *got_code = cJSON_GetStringValue(cJSON_GetObjectItem(e, "code"));
    const char *got_field = cJSON_GetStringValue(cJSON_GetObjectItem(e, "field"));
    if (r.status != status || !got_code || strcmp(got_code, code) != 0 ||
        (field && (!got_field || strcmp(got_field, field) != 0)))
        snprintf(why, cap, "%s %.120s: status %d %.200s (want %d %s %s)", subject, body, r.status, r.raw, status,
                 code, field ? field : "");
    reply_free(&r);
}

static void bad_analysis_requests_get_clear_errors(void)
{
    char why[512] = "", few[32], body[512];
    const char *F = "dm.v1.patterns.find", *S = "dm.v1.patterns.similar", *C = "dm.v1.correlations",
               *G = "dm.v1.graph";
    const char *v8 = "[1,2,3,4,5,6,7,8]";
    struct { const char *subject, *body, *code, *field; int status; } cases[] = {
        {F, "{}", "missing_field", "pattern_vector", 400},
        {F, "{\"pattern_vector\":[1,2,3]}", "invalid_field", "pattern_vector", 400},
        {F, "{\"pattern_vector\":[1,2,3,4,5,6,7,\"8\"]}", "invalid_field", "pattern_vector", 400},
        {F, "{\"pattern_vector\":[2,2,2,2,2,2,2,2]}", "invalid_field", "pattern_vector", 400},
        {F, "{\"pattern_vector\":\"1,2,3\"}", "invalid_field", "pattern_vector", 400},
        {S, "{\"query_vector\":[1,2,3,4,5,6,7,8],\"threshold\":1.5}", "invalid_field", "threshold", 400},
        {S, "{\"query_vector\":[1,2,3,4,5,6,7,8],\"limit\":1001}", "invalid_field", "limit", 400},
        {F, "{\"pattern_vector\":[1,2,3,4,5,6,7,8],\"limit\":0}", "invalid_field", "limit", 400},
        {F, "{\"pattern_vector\":[1,2,3,4,5,6,7,8],\"symbol\":\"eur-usd\"}", "invalid_field", "symbol", 400},
        {F, "{\"pattern_vector\":[1,2,3,4,5,6,7,8],\"timeframe\":\"2h\"}", "invalid_field", "timeframe", 400},
        {F, "{\"pattern_vector\":[1,2,3,4,5,6,7,8],\"exclusion_zone\":513}", "invalid_field", "exclusion_zone", 400},
        {F, "{\"pattern_vector\":[1,2,3,4,5,6,7,8],\"top_k\":3}", "invalid_field", "top_k", 400},
        {F, "{\"pattern_vector\":[1,2,3,4,5,6,7,8],\"symbol\":\"NOPE9/USD\"}", "not_found", "symbol", 404},
        {C, "{}", "missing_field", "symbol", 400},
        {C, "{\"symbol\":\"EUR/USD\",\"threshold\":1.5}", "invalid_field", "threshold", 400},
        {C, "{\"symbol\":\"EUR/USD\",\"window_candles\":10}", "invalid_field", "window_candles", 400},
        {C, "{\"symbol\":\"NOPE9/USD\"}", "not_found", "symbol", 404},
        {G, "{\"start_symbol\":\"EUR/USD\",\"depth\":6}", "invalid_field", "depth", 400},
        {G, "{\"start_symbol\":\"EUR/USD\",\"threshold\":-0.1}", "invalid_field", "threshold", 400},
        {G, "{\"start_symbol\":\"NOPE9/USD\",\"timeframe\":\"1d\"}", "not_found", "start_symbol", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases && !why[0]; i++)
        expect_code(cases[i].subject, cases[i].body, cases[i].status, cases[i].code, cases[i].field, why, sizeof why);
    CHECK(!why[0], "%s", why);
    /* A known symbol with fewer candles than the query is long: no windows, no error. */
    int64_t ts[5];
    double cl[5] = {1.1, 1.2, 1.15, 1.3, 1.25};
    for (int i = 0; i < 5; i++)
        ts[i] = BASE_MS + i * H4_MS;
    random_symbol(few, sizeof few, "JPY");
    CHECK(publish_series(few, "4h", ts, cl, 5) && readable(few, "4h", ts[4], 20), "publish failed");
    snprintf(body, sizeof body, "{\"pattern_vector\":%s,\"symbol\":\"%s\",\"timeframe\":\"4h\"}", v8, few);
    reply r;
    CHECK(request(F, body, false, &r), "no reply");
    bool empty = r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(r.body, "data")) == 0;
    reply_free(&r);
    CHECK(empty, "a series shorter than the query must answer data: []");
}

const itest ANALYSIS_TESTS[] = {
    {"patterns_match_an_independent_brute_force", patterns_match_an_independent_brute_force},
    {"bad_analysis_requests_get_clear_errors", bad_analysis_requests_get_clear_errors},
};
const size_t N_ANALYSIS_TESTS = sizeof ANALYSIS_TESTS / sizeof *ANALYSIS_TESTS;
