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
    /* Searchable within 1 s of the PubAck (the contract's bound): the worker asked may hear
     * the commit a moment after the one that answered candles.latest. */
    bool empty = false;
    char raw[300] = "";
    for (int i = 0; i < 20 && !empty; i++) {
        reply r;
        CHECK(request(F, body, false, &r), "no reply");
        empty = r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(r.body, "data")) == 0;
        snprintf(raw, sizeof raw, "%.290s", r.raw ? r.raw : "");
        reply_free(&r);
        if (!empty)
            usleep(50000);
    }
    CHECK(empty, "a series shorter than the query must answer data: [] within 1 s: %s", raw);
}


/* ---- correlations, by the contract's definition --------------------------------------- */

/* r and n of two series' log returns at shared open times in (ws, we]; false: none. */
static bool corr_of(const series *x, const series *y, int64_t ws, int64_t we, int min_pairs, double *r, int *n)
{
    double *rx = malloc(sizeof(double) * (size_t)(x->n + 1)), *ry = malloc(sizeof(double) * (size_t)(y->n + 1));
    int k = 0;
    for (int i = 1; i < x->n; i++) {
        if (x->ts[i] <= ws || x->ts[i] > we)
            continue;
        for (int j = 1; j < y->n; j++)
            if (y->ts[j] == x->ts[i]) {
                rx[k] = log(x->close[i] / x->close[i - 1]);
                ry[k++] = log(y->close[j] / y->close[j - 1]);
            }
    }
    double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < k; i++)
        mx += rx[i], my += ry[i];
    if (k)
        mx /= k, my /= k;
    for (int i = 0; i < k; i++) {
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
        sxy += (rx[i] - mx) * (ry[i] - my);
    }
    free(rx);
    free(ry);
    *n = k;
    if (k < min_pairs || sxx == 0 || syy == 0)
        return false;
    *r = sxy / sqrt(sxx * syy);
    return true;
}

static bool has_in_window(const series *x, int64_t ws, int64_t we)
{
    for (int i = 0; i < x->n; i++)
        if (x->ts[i] > ws && x->ts[i] <= we)
            return true;
    return false;
}

static int find_symbol(const series_set *set, const char *sym)
{
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->v[i].symbol, sym) == 0)
            return i;
    return -1;
}

/* dm.v1.correlations for `sym` against the definition: every other symbol, |r| >= t. */
static bool check_correlations(const series_set *set, const char *sym, double t, int64_t end, int wc,
                               char *why, size_t cap)
{
    int64_t we = end / DAY_MS * DAY_MS, ws = we - wc * DAY_MS;
    char body[256];
    snprintf(body, sizeof body, "{\"symbol\":\"%s\",\"threshold\":%g,\"timeframe\":\"1d\",\"end_date\":%lld,"
             "\"window_candles\":%d}", sym, t, (long long)end, wc);
    reply rep;
    if (!request("dm.v1.correlations", body, false, &rep) || rep.status != 200)
        return snprintf(why, cap, "%s: %.200s", body, rep.raw), reply_free(&rep), false;
    bool ok = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(rep.body, "window_start")) == ws &&
              (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(rep.body, "window_end")) == we;
    if (!ok)
        snprintf(why, cap, "%s: window bounds %.200s", sym, rep.raw);
    int me = find_symbol(set, sym), want = 0;
    const cJSON *data = cJSON_GetObjectItem(rep.body, "data");
    for (int o = 0; ok && o < set->n; o++) {
        double r;
        int n;
        if (o == me || !corr_of(&set->v[me], &set->v[o], ws, we, 30, &r, &n) || fabs(r) < t)
            continue;
        want++;
        const cJSON *it = NULL, *row;
        cJSON_ArrayForEach(row, data)
            if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(row, "symbol")), set->v[o].symbol) == 0)
                it = row;
        if (!it || fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "r")) - r) > 1e-6 ||
            (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "n")) != n)
            ok = (snprintf(why, cap, "%s vs %s: want r %.9f n %d in %.300s", sym, set->v[o].symbol, r, n, rep.raw), false);
    }
    if (ok && cJSON_GetArraySize(data) != want)
        ok = (snprintf(why, cap, "%s: %d rows, want %d: %.300s", sym, cJSON_GetArraySize(data), want, rep.raw), false);
    for (int i = 1; ok && i < cJSON_GetArraySize(data); i++) /* by |r| descending */
        if (fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(data, i), "r"))) >
            fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(data, i - 1), "r"))))
            ok = (snprintf(why, cap, "%s: rows not by |r| descending", sym), false);
    reply_free(&rep);
    return ok;
}

/* Breadth-first depths from `start` over |r| >= t among every symbol of the set. */
static void bfs_depths(const series_set *set, int start, int depth_max, double t, int64_t ws, int64_t we, int *depth)
{
    for (int i = 0; i < set->n; i++)
        depth[i] = -1;
    depth[start] = 0;
    for (int d = 0; d < depth_max; d++)
        for (int i = 0; i < set->n; i++) {
            if (depth[i] != d)
                continue;
            for (int j = 0; j < set->n; j++) {
                double r;
                int n;
                if (depth[j] < 0 && j != i && corr_of(&set->v[i], &set->v[j], ws, we, 30, &r, &n) && fabs(r) >= t)
                    depth[j] = d + 1;
            }
        }
}

/* dm.v1.graph from `sym`: nodes with depths, edges among them, and the start's cluster. */
static bool check_graph(const series_set *set, const char *sym, int depth_max, double t, int64_t end, int wc,
                        char *why, size_t cap)
{
    int64_t we = end / DAY_MS * DAY_MS, ws = we - wc * DAY_MS;
    char body[256];
    snprintf(body, sizeof body, "{\"start_symbol\":\"%s\",\"depth\":%d,\"threshold\":%g,\"timeframe\":\"1d\","
             "\"end_date\":%lld,\"window_candles\":%d}", sym, depth_max, t, (long long)end, wc);
    reply rep;
    if (!request("dm.v1.graph", body, false, &rep) || rep.status != 200)
        return snprintf(why, cap, "%s: %.200s", body, rep.raw), reply_free(&rep), false;
    int *depth = malloc(sizeof(int) * (size_t)set->n), *reach = malloc(sizeof(int) * (size_t)set->n);
    bfs_depths(set, find_symbol(set, sym), depth_max, t, ws, we, depth);
    bfs_depths(set, find_symbol(set, sym), set->n, t, ws, we, reach);
    int want_nodes = 0, want_edges = 0, cluster = 0;
    bool ok = true;
    const cJSON *nodes = cJSON_GetObjectItem(rep.body, "nodes"), *row;
    for (int i = 0; i < set->n; i++) {
        if (reach[i] >= 0 && has_in_window(&set->v[i], ws, we))
            cluster++;
        if (depth[i] < 0)
            continue;
        want_nodes++;
        bool found = false;
        cJSON_ArrayForEach(row, nodes)
            found = found || (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(row, "symbol")), set->v[i].symbol) == 0 &&
                              (int)cJSON_GetNumberValue(cJSON_GetObjectItem(row, "depth")) == depth[i]);
        if (!found)
            ok = (snprintf(why, cap, "%s at depth %d missing: %.300s", set->v[i].symbol, depth[i], rep.raw), false);
        for (int j = i + 1; j < set->n; j++) {
            double r;
            int n;
            if (depth[j] >= 0 && corr_of(&set->v[i], &set->v[j], ws, we, 30, &r, &n) && fabs(r) >= t)
                want_edges++;
        }
    }
    if (ok && (cJSON_GetArraySize(nodes) != want_nodes ||
               cJSON_GetArraySize(cJSON_GetObjectItem(rep.body, "edges")) != want_edges))
        ok = (snprintf(why, cap, "%s: want %d nodes, %d edges: %.400s", sym, want_nodes, want_edges, rep.raw), false);
    bool in_cluster = false;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(rep.body, "clusters"))
    {
        const cJSON *m;
        bool mine = false;
        cJSON_ArrayForEach(m, row)
            mine = mine || strcmp(cJSON_GetStringValue(m), sym) == 0;
        if (mine)
            in_cluster = cJSON_GetArraySize(row) == cluster;
    }
    if (ok && !in_cluster)
        ok = (snprintf(why, cap, "%s: its cluster should hold %d symbols: %.400s", sym, cluster, rep.raw), false);
    free(depth);
    free(reach);
    reply_free(&rep);
    return ok;
}

static void correlations_and_graph_match_an_independent_computation(void)
{
    enum { N = 400 };
    long long key_e[N * 2], key_g[N * 2];
    double e[N * 2], g[N * 2], walk[N];
    int64_t ts_e[N], ts_g[N], ts_w[N];
    double ce[N], cg[N], cx[N];
    int ne = 0, ng = 0, nx = 0;
    char se[32], sg[32], sx[32], sw[32], why[600] = "";
    int n_e = read_hourly("EURUSD_H1_2021-01_2026-04.csv", key_e, e, N * 2);
    int n_g = read_hourly("GBPUSD_H1_2021-01_2026-04.csv", key_g, g, N * 2);
    CHECK(n_e == N * 2 && n_g == N * 2, "data files missing");
    /* Hour k of each file becomes day k; GBP/USD misses every 17th day, the cross rate
     * EUR/GBP exists where both do, a random walk everywhere but a few days. */
    for (int k = 0, j = 0; k < N && j < n_g; k++) {
        while (j < n_g && key_g[j] < key_e[k])
            j++;
        ts_e[ne] = BASE_MS + k * DAY_MS, ce[ne++] = e[k];
        if (j < n_g && key_g[j] == key_e[k] && k % 17 != 5) {
            ts_g[ng] = BASE_MS + k * DAY_MS, cg[ng++] = g[j];
            ts_w[nx] = BASE_MS + k * DAY_MS, cx[nx++] = e[k] / g[j];
        }
    }
    pattern_series(walk, NULL, N, 7);
    int nw = 0;
    int64_t ts_r[N];
    double cr[N];
    for (int k = 0; k < N; k++)
        if (k % 29 != 3)
            ts_r[nw] = BASE_MS + k * DAY_MS, cr[nw++] = walk[k];
    random_symbol(se, sizeof se, "USD"), random_symbol(sg, sizeof sg, "USD");
    random_symbol(sx, sizeof sx, "GBP"), random_symbol(sw, sizeof sw, "CHF");
    CHECK(publish_series(se, "1d", ts_e, ce, ne) && publish_series(sg, "1d", ts_g, cg, ng) &&
              publish_series(sx, "1d", ts_w, cx, nx) && publish_series(sw, "1d", ts_r, cr, nw),
          "publish failed");
    CHECK(readable(se, "1d", ts_e[ne - 1], 20) && readable(sg, "1d", ts_g[ng - 1], 20) &&
              readable(sx, "1d", ts_w[nx - 1], 20) && readable(sw, "1d", ts_r[nw - 1], 20),
          "the candles were not readable within 20 s");
    sleep(1);
    series_set set = {0};
    CHECK(read_all("1d", &set), "cannot read PostgreSQL");
    int64_t end = ts_e[ne - 1] + 5 * 3600000LL; /* not aligned: rounded down to the day */
    const char *syms[] = {se, sg, sx, sw};
    bool ok = true;
    for (int i = 0; ok && i < 4; i++)
        ok = check_correlations(&set, syms[i], 0.1, end, 300, why, sizeof why) &&
             check_correlations(&set, syms[i], 0.0, end - 50 * DAY_MS, 120, why, sizeof why);
    if (ok)
        ok = check_graph(&set, se, 1, 0.5, end, 300, why, sizeof why) &&
             check_graph(&set, sg, 2, 0.3, end, 300, why, sizeof why) &&
             check_graph(&set, sw, 3, 0.2, end, 200, why, sizeof why);
    set_free(&set);
    CHECK(ok, "%s", why);
}

/* Asks the same correlations twice; returns the second answer's served_by and data. */
static bool ask_twice(const char *body, char *served, size_t cap, char **data_json)
{
    reply r1, r2 = {0};
    bool ok = request("dm.v1.correlations", body, false, &r1) && r1.status == 200 &&
              request("dm.v1.correlations", body, false, &r2) && r2.status == 200;
    if (!ok)
        snprintf(served, cap, "%.200s %.200s", r1.raw ? r1.raw : "", r2.raw ? r2.raw : "");
    if (ok) {
        snprintf(served, cap, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(r2.body, "served_by")));
        *data_json = cJSON_PrintUnformatted(cJSON_GetObjectItem(r2.body, "data"));
        char *first = cJSON_PrintUnformatted(cJSON_GetObjectItem(r1.body, "data"));
        ok = strcmp(first, *data_json) == 0;
        free(first);
    }
    reply_free(&r2);
    reply_free(&r1);
    return ok;
}

static void repeated_correlations_come_from_the_cache_until_a_commit(void)
{
    enum { N = 120 };
    int64_t ts[N];
    double a[N], b[N];
    char sa[32], sb[32], body[256], served[512] = "", *data = NULL;
    pattern_series(a, NULL, N, (unsigned)time(NULL) ^ (unsigned)getpid());
    for (int i = 0; i < N; i++) {
        ts[i] = BASE_MS + i * DAY_MS;
        b[i] = a[i] * (1 + ((i * 7919) % 13) * 1e-4);
    }
    random_symbol(sa, sizeof sa, "USD"), random_symbol(sb, sizeof sb, "USD");
    CHECK(publish_series(sa, "1d", ts, a, N) && publish_series(sb, "1d", ts, b, N - 1), "publish failed");
    CHECK(readable(sa, "1d", ts[N - 1], 20) && readable(sb, "1d", ts[N - 2], 20), "not readable within 20 s");
    snprintf(body, sizeof body, "{\"symbol\":\"%s\",\"timeframe\":\"1d\",\"threshold\":0.2,\"end_date\":%lld,"
             "\"window_candles\":100}", sa, (long long)ts[N - 1]);
    bool same = ask_twice(body, served, sizeof served, &data);
    bool cached = same && strcmp(served, "dragonfly") == 0 && strstr(data, sb);
    free(data);
    CHECK(cached, "repeat served by %s (want dragonfly)", served);
    /* A commit to the timeframe (the missing last candle of B) makes every cached answer
     * of it too old: the next answer is computed again and counts the new pair. */
    CHECK(publish_series(sb, "1d", ts + N - 1, b + N - 1, 1) && readable(sb, "1d", ts[N - 1], 20), "publish failed");
    usleep(200000);
    reply r;
    CHECK(request("dm.v1.correlations", body, false, &r) && r.status == 200, "no answer");
    const char *by = cJSON_GetStringValue(cJSON_GetObjectItem(r.body, "served_by"));
    const cJSON *row, *mine = NULL;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(r.body, "data"))
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(row, "symbol")), sb) == 0)
            mine = row;
    int n = mine ? (int)cJSON_GetNumberValue(cJSON_GetObjectItem(mine, "n")) : -1;
    bool fresh = by && strcmp(by, "fallback") == 0 && n == 100;
    char raw[300];
    snprintf(raw, sizeof raw, "%.290s", r.raw);
    reply_free(&r);
    CHECK(fresh, "after a commit: %s (want fallback, n 100 for %s)", raw, sb);
}

/* The scheduled refresh of the default window: one computation per interval, whichever
 * worker, stored in PostgreSQL. */
static void scheduled_correlations_are_computed_once_per_interval(void)
{
    long long run = -1, computations = -1;
    for (int i = 0; i < 100 && run < 0; i++) {
        run = pg_count("SELECT run FROM correlation_runs WHERE timeframe = $1", "1h");
        if (run < 0)
            usleep(100000);
    }
    CHECK(run >= 0, "no correlation run stored for 1h within 10 s of the workers' start");
    sleep(3); /* both workers tick every second: neither may compute the interval again */
    long long run2 = pg_count("SELECT run FROM correlation_runs WHERE timeframe = $1", "1h");
    computations = pg_count("SELECT computations FROM correlation_runs WHERE timeframe = $1", "1h");
    long long we = pg_count("SELECT window_end FROM correlation_runs WHERE timeframe = $1", "1h");
    long long now_run = (long long)(time(NULL) / 3600);
    CHECK(run2 == now_run && computations == 1, "run %lld (now %lld) computed %lld times", run2, now_run,
          computations);
    CHECK(we % 3600000 == 0 && we <= (long long)time(NULL) * 1000 && we > (long long)time(NULL) * 1000 - 2 * 3600000,
          "window_end %lld is not the current hour", we);
}

const itest ANALYSIS_TESTS[] = {
    {"scheduled_correlations_are_computed_once_per_interval", scheduled_correlations_are_computed_once_per_interval},
    {"repeated_correlations_come_from_the_cache_until_a_commit", repeated_correlations_come_from_the_cache_until_a_commit},
    {"patterns_match_an_independent_brute_force", patterns_match_an_independent_brute_force},
    {"correlations_and_graph_match_an_independent_computation",
     correlations_and_graph_match_an_independent_computation},
    {"bad_analysis_requests_get_clear_errors", bad_analysis_requests_get_clear_errors},
};
const size_t N_ANALYSIS_TESTS = sizeof ANALYSIS_TESTS / sizeof *ANALYSIS_TESTS;
