/* bench_patterns: dm.v1.patterns.find latency and exactness, beside a direct scan of the
 * same closes and a bare NATS echo.
 *
 *   bench_patterns [--queries N] [--warmup W] [--block B] [--seed X] [--timeout S]
 *
 * Needs the hourly files loaded (bench/run.sh publishes them with dmctl and waits for the
 * consumers): EUR/USD (data/EURUSD_H1_2010-10_2021-04.csv), EURB/USD
 * (data/EURUSD_H1_2021-01_2026-04.csv, its own symbol: the two files overlap in 2021 on
 * different clocks), GBP/USD and USD/JPY (the 2021-2026 files).
 *
 * Four query sets of N each: W = 32 and W = 128, over every series and with a symbol
 * filter; limit 10, default exclusion zone ceil(W/4). A query is a window of one of the
 * four series (taken in turn) plus Gaussian noise of a quarter of its standard deviation;
 * a quarter are exact copies, and without a filter every eighth is an exact copy from the
 * stretch of 2021 that EUR/USD and EURB/USD both hold, so its answer ties across symbols.
 *
 * Three series per set, in alternating blocks of B queries so drift on the shared machine
 * hits all alike:
 * - find: the query to dm.v1.patterns.find (round trip timed);
 * - brute force: the same search done here directly from the definition in
 *   subjects/README.md over every 1h close PostgreSQL holds (what the workers load):
 *   Pearson per window in two passes, flat windows skipped, a full sort, tie runs within
 *   1e-9 by symbol then time, the greedy exclusion zone. It is the floor for exactness,
 *   not for speed: the worker's engine screens with an FFT and rescores only what decides
 *   the answer;
 * - echo: the same request to a responder in this process that answers at once with a
 *   reply of the size of the set's first real reply.
 * Every find reply must equal the brute force's answer for its query: same windows in the
 * same order (symbol, start_timestamp, timestamp) and scores within 1e-6.
 *
 * Rows: per set, find p50 / p99 beside the echo (ratio of the p50s; target p50 <= 10 ms),
 * and the queries equal to the brute force (target: all). Notes: the brute force's
 * figures, warm-up (the first find of a worker loads the closes), reply sizes. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../worker/model/names.h"
#include "common.h"

#define LIMIT 10
#define FLAT_STD 1e-7  /* subjects/README.md: a window below this std is never returned */
#define TIE 1e-9       /* scores this close are ties: symbol, then time */
#define SCORE_TOL 1e-6 /* the target's tolerance on returned scores */
#define TARGET_P50_MS 10.0
#define REQUEST_TIMEOUT_MS 10000
#define W_MAX 128
#define N_SETS 4
#define SYMBOL_MAX 32
/* EURB/USD's first 1,300 windows: 2021-01..03, which EUR/USD holds too (the same closes
 * two hours later on the older file's clock), so an exact copy scores 1 in both: a tie. */
#define OVERLAP_STARTS 1300

static const char *const DATA_SYMBOLS[] = {"EUR/USD", "EURB/USD", "GBP/USD", "USD/JPY"};
#define N_DATA (sizeof DATA_SYMBOLS / sizeof *DATA_SYMBOLS)

/* ---- the closes, as PostgreSQL holds them ---- */

typedef struct {
    char symbol[SYMBOL_MAX];
    int64_t *ts;
    double *close;
    size_t n, cap;
} pseries;

typedef struct {
    pseries *v; /* by symbol (strcmp), as the ranking orders ties */
    size_t n, closes;
} store;

static int cmp_series(const void *a, const void *b)
{
    return strcmp(((const pseries *)a)->symbol, ((const pseries *)b)->symbol);
}

static bool series_push(pseries *s, int64_t ts, double close)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        int64_t *t = realloc(s->ts, cap * sizeof *t);
        if (t)
            s->ts = t;
        double *c = t ? realloc(s->close, cap * sizeof *c) : NULL;
        if (c == NULL)
            return false;
        s->close = c;
        s->cap = cap;
    }
    s->ts[s->n] = ts;
    s->close[s->n++] = close;
    return true;
}

/* Every 1h close, read with the query the workers load them with. */
static bool store_load(store *st)
{
    PGconn *pg = bench_pg_connect();
    if (pg == NULL)
        return false;
    PGresult *r = PQexec(pg, "SELECT symbol, ts, close FROM candles WHERE timeframe = '1h' "
                             "ORDER BY symbol, ts");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "bench: reading the closes: %s", PQerrorMessage(pg));
    int rows = ok ? PQntuples(r) : 0;
    pseries *cur = NULL;
    for (int i = 0; ok && i < rows; i++) {
        const char *sym = PQgetvalue(r, i, 0);
        if (cur == NULL || strcmp(cur->symbol, sym) != 0) {
            pseries *v = realloc(st->v, (st->n + 1) * sizeof *v);
            ok = v != NULL;
            if (!ok)
                break;
            st->v = v;
            cur = &st->v[st->n++];
            memset(cur, 0, sizeof *cur);
            snprintf(cur->symbol, sizeof cur->symbol, "%s", sym);
        }
        ok = series_push(cur, strtoll(PQgetvalue(r, i, 1), NULL, 10),
                         strtod(PQgetvalue(r, i, 2), NULL));
    }
    PQclear(r);
    PQfinish(pg);
    if (ok)
        qsort(st->v, st->n, sizeof *st->v, cmp_series);
    st->closes = (size_t)rows;
    return ok;
}

static const pseries *store_find(const store *st, const char *symbol)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->v[i].symbol, symbol) == 0)
            return &st->v[i];
    return NULL;
}

static void store_free(store *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->v[i].ts);
        free(st->v[i].close);
    }
    free(st->v);
}

/* ---- the brute force ---- */

typedef struct {
    char symbol[SYMBOL_MAX];
    int64_t start_ts, ts;
    double score;
} hit;

typedef struct {
    double score;
    unsigned series, first;
} cand;

typedef struct {
    cand *v;
    size_t cap;
} cand_buf;

static int cmp_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->series != y->series ? (x->series < y->series ? -1 : 1)
                                  : (x->first > y->first) - (x->first < y->first);
}

/* Series are sorted by symbol, so their index orders ties as the symbol does. */
static int cmp_tie(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* Pearson of x against the centred query qc (sum of squares sqq); false when x is flat. */
static bool pearson(const double *x, const double *qc, double sqq, int w, double *r)
{
    double mx = 0, sxx = 0, sxq = 0;
    for (int k = 0; k < w; k++)
        mx += x[k];
    mx /= w;
    for (int k = 0; k < w; k++) {
        double d = x[k] - mx;
        sxx += d * d;
        sxq += d * qc[k];
    }
    if (sqrt(sxx / w) < FLAT_STD)
        return false;
    double v = sxq / sqrt(sxx * sqq);
    *r = v > 1 ? 1 : v < -1 ? -1 : v;
    return true;
}

/* Scores every window of the chosen series (symbol NULL: all). */
static size_t score_all(const store *st, const char *symbol, const double *q, int w, cand_buf *cb)
{
    double mq = 0, qc[W_MAX], sqq = 0;
    for (int k = 0; k < w; k++)
        mq += q[k];
    mq /= w;
    for (int k = 0; k < w; k++) {
        qc[k] = q[k] - mq;
        sqq += qc[k] * qc[k];
    }
    size_t n = 0;
    for (size_t s = 0; s < st->n; s++) {
        const pseries *ps = &st->v[s];
        if ((symbol && strcmp(ps->symbol, symbol) != 0) || ps->n < (size_t)w)
            continue;
        for (size_t i = 0; i + (size_t)w <= ps->n; i++) {
            double r;
            if (pearson(ps->close + i, qc, sqq, w, &r))
                cb->v[n++] = (cand){r, (unsigned)s, (unsigned)i};
        }
    }
    return n;
}

/* The greedy walk over the ranking: runs of scores each within TIE of the next are
 * ordered by symbol then time; a window within zone of a taken one of its series is
 * left out. Returns the hits taken (at most LIMIT). */
static int brute_force(const store *st, const char *symbol, const double *q, int w, cand_buf *cb,
                       hit out[LIMIT])
{
    size_t n = score_all(st, symbol, q, w, cb);
    qsort(cb->v, n, sizeof *cb->v, cmp_score);
    int zone = (w + 3) / 4, taken = 0;
    cand got[LIMIT];
    for (size_t k = 0; k < n && taken < LIMIT;) {
        size_t e = k;
        while (e + 1 < n && cb->v[e].score - cb->v[e + 1].score <= TIE)
            e++;
        qsort(cb->v + k, e - k + 1, sizeof *cb->v, cmp_tie);
        for (; k <= e && taken < LIMIT; k++) {
            const cand *c = &cb->v[k];
            bool excluded = false;
            for (int j = 0; j < taken && !excluded; j++)
                excluded =
                    got[j].series == c->series && labs((long)got[j].first - (long)c->first) <= zone;
            if (!excluded)
                got[taken++] = *c;
        }
        k = e + 1;
    }
    for (int j = 0; j < taken; j++) {
        const pseries *ps = &st->v[got[j].series];
        snprintf(out[j].symbol, sizeof out[j].symbol, "%s", ps->symbol);
        out[j].start_ts = ps->ts[got[j].first];
        out[j].ts = ps->ts[got[j].first + (unsigned)w - 1];
        out[j].score = got[j].score;
    }
    return taken;
}

/* ---- queries ---- */

typedef struct {
    double q[W_MAX];
    int w;
    const char *symbol; /* the filter, or NULL */
    char *body;
    int body_len;
    hit real[LIMIT], brute[LIMIT];
    int n_real, n_brute; /* -1: not answered */
} query;

typedef struct {
    int w;
    bool filter;
    char name[32];
    query *q;
    bench_samples find, brute, echo;
    long errors;
    char last_error[256];
    char echo_subject[64];
    int reply_len;
    double warm_max_ms;
    bench_echo *echo_responder;
} query_set;

static uint64_t rng_state;

static double uniform(void)
{
    rng_state ^= rng_state << 13; /* xorshift64 */
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static double gaussian(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* A window of `src` starting at random before `starts`, noisy unless `exact`; false when
 * flat. */
static bool make_vector(const pseries *src, size_t starts, int w, bool exact, double *q)
{
    size_t first = (size_t)(uniform() * (double)starts);
    double mean = 0, var = 0;
    for (int k = 0; k < w; k++)
        mean += src->close[first + (size_t)k];
    mean /= w;
    for (int k = 0; k < w; k++)
        var += pow(src->close[first + (size_t)k] - mean, 2);
    double sd = sqrt(var / w);
    for (int k = 0; k < w; k++)
        q[k] = src->close[first + (size_t)k] + (exact ? 0 : 0.25 * sd * gaussian());
    return sd >= 100 * FLAT_STD;
}

static bool make_body(query *q)
{
    size_t cap = (size_t)q->w * 26 + 128;
    q->body = malloc(cap);
    if (q->body == NULL)
        return false;
    size_t k = (size_t)snprintf(q->body, cap, "{\"pattern_vector\":[");
    for (int i = 0; i < q->w; i++) /* %.17g: the worker parses back the same doubles */
        k += (size_t)snprintf(q->body + k, cap - k, "%s%.17g", i ? "," : "", q->q[i]);
    k += (size_t)snprintf(q->body + k, cap - k, "],\"limit\":%d", LIMIT);
    if (q->symbol)
        k += (size_t)snprintf(q->body + k, cap - k, ",\"symbol\":\"%s\"", q->symbol);
    k += (size_t)snprintf(q->body + k, cap - k, "}");
    q->body_len = (int)k;
    return k < cap;
}

static bool make_queries(const store *st, query_set *set, int n)
{
    set->q = calloc((size_t)n, sizeof *set->q);
    if (set->q == NULL)
        return false;
    for (int i = 0; i < n; i++) {
        query *q = &set->q[i];
        const char *sym = DATA_SYMBOLS[(size_t)i % N_DATA];
        const pseries *src = store_find(st, sym);
        size_t starts = src->n - (size_t)set->w + 1;
        bool exact = (i / (int)N_DATA) % 4 == 0; /* a quarter, from each series alike */
        if (!set->filter && i % 8 == 4) {        /* exact, in the stretch both EURUSD files hold */
            src = store_find(st, "EURB/USD");
            starts = OVERLAP_STARTS;
            exact = true;
        }
        q->w = set->w;
        q->symbol = set->filter ? sym : NULL;
        q->n_real = q->n_brute = -1;
        while (!make_vector(src, starts, set->w, exact, q->q))
            ;
        if (!make_body(q))
            return false;
    }
    return true;
}

/* ---- the three series ---- */

static void set_error(query_set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(query_set *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
    s->errors++;
}

/* Parses a find reply into q->real; false (and an error) when it is not one. */
static bool parse_find(query_set *s, query *q, natsMsg *r)
{
    const char *data = natsMsg_GetData(r);
    int len = natsMsg_GetDataLength(r);
    int status = bench_reply_status(r);
    if (status != 200) {
        set_error(s, "status %d: %.200s", status, data ? data : "");
        return false;
    }
    cJSON *doc = cJSON_ParseWithLength(data, (size_t)len);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "data"), *it;
    const cJSON *exact = cJSON_GetObjectItemCaseSensitive(doc, "exact");
    bool ok = cJSON_IsArray(arr) && cJSON_GetArraySize(arr) <= LIMIT && cJSON_IsTrue(exact);
    q->n_real = 0;
    if (!ok)
        arr = NULL;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *sym = cJSON_GetObjectItemCaseSensitive(it, "symbol");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "timestamp");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "start_timestamp");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(it, "score");
        if (!cJSON_IsString(sym) || !cJSON_IsNumber(ts) || !cJSON_IsNumber(st) ||
            !cJSON_IsNumber(sc)) {
            ok = false;
            break;
        }
        hit *h = &q->real[q->n_real++];
        snprintf(h->symbol, sizeof h->symbol, "%s", sym->valuestring);
        h->ts = (int64_t)ts->valuedouble;
        h->start_ts = (int64_t)st->valuedouble;
        h->score = sc->valuedouble;
    }
    cJSON_Delete(doc);
    if (!ok) {
        q->n_real = -1;
        set_error(s, "not a find reply with exact true: %.200s", data ? data : "");
    }
    return ok;
}

static void one_find(natsConnection *nc, query_set *s, query *q, bool record)
{
    natsMsg *r = NULL;
    int64_t ns = 0;
    natsStatus st =
        bench_request(nc, DM_SUBJ_PATTERNS_FIND, q->body, q->body_len, REQUEST_TIMEOUT_MS, &r, &ns);
    if (st != NATS_OK) {
        set_error(s, "find: %s", natsStatus_GetText(st));
    } else {
        s->reply_len = s->reply_len ? s->reply_len : natsMsg_GetDataLength(r);
        if (parse_find(s, q, r) && record)
            bench_samples_add(&s->find, ns);
        if (!record && (double)ns / 1e6 > s->warm_max_ms)
            s->warm_max_ms = (double)ns / 1e6;
    }
    natsMsg_Destroy(r);
}

static void one_echo(natsConnection *nc, query_set *s, const query *q)
{
    natsMsg *r = NULL;
    int64_t ns = 0;
    natsStatus st =
        bench_request(nc, s->echo_subject, q->body, q->body_len, REQUEST_TIMEOUT_MS, &r, &ns);
    if (st != NATS_OK)
        set_error(s, "echo: %s", natsStatus_GetText(st));
    else if (natsMsg_GetDataLength(r) != s->reply_len)
        set_error(s, "echo: a reply of %d bytes, not %d", natsMsg_GetDataLength(r), s->reply_len);
    else
        bench_samples_add(&s->echo, ns);
    natsMsg_Destroy(r);
}

static void one_brute(const store *st, query_set *s, query *q, cand_buf *cb)
{
    int64_t t = bench_now_ns();
    q->n_brute = brute_force(st, q->symbol, q->q, q->w, cb, q->brute);
    bench_samples_add(&s->brute, bench_now_ns() - t);
}

/* Whether the find reply equals the brute force; the first difference into why. */
static bool equal(const query *q, char *why, size_t cap)
{
    if (q->n_real != q->n_brute) {
        snprintf(why, cap, "%d windows, brute force %d", q->n_real, q->n_brute);
        return false;
    }
    for (int i = 0; i < q->n_real; i++) {
        const hit *a = &q->real[i], *b = &q->brute[i];
        if (strcmp(a->symbol, b->symbol) != 0 || a->ts != b->ts || a->start_ts != b->start_ts ||
            fabs(a->score - b->score) > SCORE_TOL) {
            snprintf(why, cap, "#%d: %s %lld..%lld %.12f, brute force %s %lld..%lld %.12f", i + 1,
                     a->symbol, (long long)a->start_ts, (long long)a->ts, a->score, b->symbol,
                     (long long)b->start_ts, (long long)b->ts, b->score);
            return false;
        }
    }
    return true;
}

/* ---- options, run, report ---- */

typedef struct {
    int n, warmup, block, timeout_s;
    unsigned long long seed;
} patterns_opts;

static void usage(void)
{
    fprintf(
        stderr,
        "usage: bench_patterns [--queries N] [--warmup W] [--block B] [--seed X] [--timeout S]\n"
        "  --queries N  timed queries per set (W 32/128, all series/one symbol; default 200)\n"
        "  --warmup W   untimed finds per set first (default 10)\n"
        "  --block B    queries per block when alternating series (default 20)\n"
        "  --seed X     query generator seed (default 1)\n"
        "  --timeout S  stop measuring after S seconds (default 900)\n");
}

/* -1: run; otherwise the exit code. */
static int parse_options(int argc, char **argv, patterns_opts *o)
{
    *o = (patterns_opts){.n = 200, .warmup = 10, .block = 20, .timeout_s = 900, .seed = 1};
    static const struct option opts[] = {{"queries", required_argument, 0, 'n'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"block", required_argument, 0, 'b'},
                                         {"seed", required_argument, 0, 's'},
                                         {"timeout", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o->n = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 'b': o->block = atoi(optarg); break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        case 't': o->timeout_s = atoi(optarg); break;
        default: usage(); return c == 'h' ? 0 : 64;
        }
    }
    if (o->n < 1 || o->n > 100000 || o->warmup < 0 || o->warmup > 10000 || o->block < 1 ||
        o->timeout_s < 1 || o->timeout_s > 7200) {
        usage();
        return 64;
    }
    return -1;
}

/* The data the benchmark is about must be there, whole. */
static bool check_store(const store *st)
{
    for (size_t i = 0; i < N_DATA; i++) {
        const pseries *s = store_find(st, DATA_SYMBOLS[i]);
        if (s == NULL || s->n < 20000) {
            fprintf(stderr,
                    "bench: %s 1h has %zu closes in PostgreSQL; load the hourly files "
                    "first (bench/run.sh --only patterns does)\n",
                    DATA_SYMBOLS[i], s ? s->n : 0);
            return false;
        }
    }
    return true;
}

static bool prepare_sets(const store *st, natsConnection *nc, natsConnection *echo_nc,
                         query_set sets[N_SETS], const patterns_opts *o)
{
    for (int k = 0; k < N_SETS; k++) {
        query_set *s = &sets[k];
        s->w = k < 2 ? 32 : W_MAX;
        s->filter = k % 2 == 1;
        snprintf(s->name, sizeof s->name, "W=%d %s", s->w, s->filter ? "symbol" : "all");
        snprintf(s->echo_subject, sizeof s->echo_subject, "bench.echo.patterns.%d", k);
        if (!make_queries(st, s, o->n))
            return false;
        /* Warm-up: the first find of each worker loads every 1h close from PostgreSQL. */
        for (int i = 0; i < (o->warmup > 0 ? o->warmup : 1); i++)
            one_find(nc, s, &s->q[i % o->n], false);
        if (s->reply_len <= 0) {
            fprintf(stderr, "bench: %s %s did not answer: %s\n", DM_SUBJ_PATTERNS_FIND, s->name,
                    s->last_error);
            return false;
        }
        s->errors = 0;
        if ((s->echo_responder = bench_echo_start(echo_nc, s->echo_subject, s->reply_len,
                                                  "application/json")) == NULL)
            return false;
        fprintf(stderr, "patterns: %s: %d queries, reply %d bytes, warm-up max %.1f ms\n", s->name,
                o->n, s->reply_len, s->warm_max_ms);
    }
    return true;
}

static void run(const store *st, natsConnection *nc, query_set sets[N_SETS], const patterns_opts *o,
                cand_buf *cb)
{
    int64_t deadline = bench_now_ns() + (int64_t)o->timeout_s * 1000000000LL;
    bool timed_out = false;
    for (int done = 0; done < o->n && !timed_out;) {
        int b = o->n - done < o->block ? o->n - done : o->block;
        for (int k = 0; k < N_SETS && !timed_out; k++) {
            query_set *s = &sets[k];
            for (int i = done; i < done + b; i++)
                one_echo(nc, s, &s->q[i]);
            for (int i = done; i < done + b; i++)
                one_find(nc, s, &s->q[i], true);
            for (int i = done; i < done + b; i++)
                one_brute(st, s, &s->q[i], cb);
            timed_out = bench_now_ns() > deadline;
        }
        done += b;
        fprintf(stderr, "patterns: %d of %d queries per set\n", done, o->n);
    }
    if (timed_out)
        fprintf(stderr, "bench: time limit of %d s reached; reporting what was measured\n",
                o->timeout_s);
}

/* Rows and notes of one set; 1 when it had errors or no sample. */
static int report_set(query_set *s, int n)
{
    bench_samples_sort(&s->find);
    bench_samples_sort(&s->brute);
    bench_samples_sort(&s->echo);
    int compared = 0, same = 0, tied = 0;
    char why[320] = "", first_diff[320] = "";
    for (int i = 0; i < n; i++) {
        const query *q = &s->q[i];
        if (q->n_real < 0 || q->n_brute < 0)
            continue;
        compared++;
        for (int j = 0; j + 1 < q->n_brute; j++)
            if (q->brute[j].score - q->brute[j + 1].score <= TIE) {
                tied++;
                break;
            }
        if (equal(q, why, sizeof why))
            same++;
        else if (!first_diff[0])
            snprintf(first_diff, sizeof first_diff, "query %d: %s", i, why);
    }
    double p50 = bench_pct_ms(&s->find, 50), p99 = bench_pct_ms(&s->find, 99);
    double e50 = bench_pct_ms(&s->echo, 50), e99 = bench_pct_ms(&s->echo, 99);
    double b50 = bench_pct_ms(&s->brute, 50), b99 = bench_pct_ms(&s->brute, 99);
    char name[64], v[64], base[64];
    snprintf(name, sizeof name, "patterns %s p50 / p99", s->name);
    snprintf(v, sizeof v, "%.2f / %.2f ms", p50, p99);
    snprintf(base, sizeof base, "%.3f / %.3f ms echo", e50, e99);
    bench_row(name, v, base, p50 / e50, "p50 <= 10 ms",
              s->find.n > 0 && s->errors == 0 && p50 <= TARGET_P50_MS);
    snprintf(name, sizeof name, "patterns %s = brute force", s->name);
    snprintf(v, sizeof v, "%d of %d", same, compared);
    snprintf(base, sizeof base, "brute %.1f / %.1f ms", b50, b99);
    bench_row(name, v, base, compared ? (double)same / compared : 0, "all equal",
              compared == n && same == compared);
    bench_note(
        "patterns %s: %zu timed finds, mean %.2f ms, max %.2f ms; echo of %d bytes (the first "
        "reply's size) mean %.3f ms; brute force here (direct scan and full sort of every "
        "window, the floor for exactness, not for speed) p50 %.1f / p99 %.1f ms, find is "
        "%.0fx faster at p50; %d answers hold a tie; warm-up max %.1f ms; errors %ld%s%s%s%s",
        s->name, s->find.n, bench_mean_ms(&s->find), bench_max_ms(&s->find), s->reply_len,
        bench_mean_ms(&s->echo), b50, b99, b50 / p50, tied, s->warm_max_ms, s->errors,
        s->errors ? "; last: " : "", s->errors ? s->last_error : "",
        first_diff[0] ? "; first difference: " : "", first_diff);
    return s->errors || s->find.n == 0 || s->echo.n == 0;
}

static void free_sets(query_set sets[N_SETS], int n)
{
    for (int k = 0; k < N_SETS; k++) {
        for (int i = 0; sets[k].q && i < n; i++)
            free(sets[k].q[i].body);
        free(sets[k].q);
        bench_echo_stop(sets[k].echo_responder);
        bench_samples_free(&sets[k].find);
        bench_samples_free(&sets[k].brute);
        bench_samples_free(&sets[k].echo);
    }
}

int main(int argc, char **argv)
{
    patterns_opts o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rng_state = o.seed * 0x9E3779B97F4A7C15ull + 1;
    store st = {0};
    if (!store_load(&st) || !check_store(&st))
        return 1;
    cand_buf cb = {.cap = st.closes};
    cb.v = malloc((cb.cap ? cb.cap : 1) * sizeof *cb.v);
    natsConnection *nc = bench_nats_connect("bench-patterns");
    natsConnection *echo_nc = bench_nats_connect_ex("bench-patterns-echo", true);
    query_set sets[N_SETS];
    memset(sets, 0, sizeof sets);
    if (cb.v == NULL || nc == NULL || echo_nc == NULL || !prepare_sets(&st, nc, echo_nc, sets, &o))
        return 1;
    fprintf(stderr,
            "patterns: %zu series, %zu closes of 1h in PostgreSQL; %d queries per set in "
            "blocks of %d\n",
            st.n, st.closes, o.n, o.block);
    run(&st, nc, sets, &o, &cb);
    rc = 0;
    bench_note("patterns: dm.v1.patterns.find over every 1h series PostgreSQL holds: %zu series, "
               "%zu closes (EUR/USD %zu, EURB/USD %zu, GBP/USD %zu, USD/JPY %zu); limit %d, zone "
               "ceil(W/4); queries: windows of those four plus noise, a quarter exact, without a "
               "filter every eighth an exact one from the 2021 stretch both EURUSD files hold "
               "(ties across symbols); seed %llu",
               st.n, st.closes, store_find(&st, "EUR/USD")->n, store_find(&st, "EURB/USD")->n,
               store_find(&st, "GBP/USD")->n, store_find(&st, "USD/JPY")->n, LIMIT, o.seed);
    for (int k = 0; k < N_SETS; k++)
        rc |= report_set(&sets[k], o.n);
    free_sets(sets, o.n);
    free(cb.v);
    store_free(&st);
    natsConnection_Destroy(echo_nc);
    natsConnection_Destroy(nc);
    nats_Close();
    return rc;
}
