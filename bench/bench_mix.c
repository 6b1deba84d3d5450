/* bench_mix: a realistic mix in one run, with the cache hit rate per level, the latency
 * per operation split by the level that answered, and the staleness window.
 *
 *   bench_mix [--seconds S] [--warmup W] [--rate N] [--threads T] [--stale N]
 *             [--stale-interval MS] [--gap-interval MS] [--cold N] [--block B]
 *             [--workers K] [--overlap-probes]
 *
 * Load (all at once, for S seconds after W seconds of untimed warm-up):
 *
 *  collector  one connection publishing with js_PublishMsgAsync: N ticks/s (default 1,000)
 *             round robin over MXA/USD, MXB/USD, MXC/USD (a 1 ms timer loop), and one 1m
 *             candle per symbol per second. Candle open times are successive minutes
 *             starting 10 days ago (a historical replay: aligned and never in the future),
 *             after 200 preloaded candles per symbol so limit 100 is servable.
 *  engine     T threads (default 4), each on its own connection, alternating
 *             dm.v1.candles.latest {random symbol, 1m, limit 100} and dm.v1.tick.latest
 *             {random symbol}, sequentially, as fast as the answers come. Every reply must
 *             be Status 200 with a served_by (and 100 candles). Latency is recorded per
 *             operation and per served_by level (l1, dragonfly = L2, timescale).
 *  baseline   one thread on its own connection, sequential, in blocks of B (default 100)
 *             running alongside the engine for the whole timed phase (so it sees the same
 *             load): a bare NATS echo replying bytes of exactly the size of a real
 *             candles.latest limit 100 reply, the same for a tick.latest reply (sizes
 *             measured with one real request each), a hiredis GET of a 16-byte key on
 *             the stack's Redis (the workers' Dragonfly), and requests for cold series
 *             (--cold N, default 1,500; 0 = none): N fresh series (1m, 100 candles each,
 *             new names every run) preloaded and first asked for in the timed phase,
 *             walked in order. They are more than an L1 holds (1,000 entries a kind in
 *             the default strategy), so an LRU L1 mostly lacks the one asked for (each
 *             worker sees a series again after about 750 others, so about a third are
 *             still there) while Dragonfly has them all: their dragonfly-served answers
 *             are L2 hits as such. Each cold request is followed by one echo of the
 *             candles reply size and one GET, timed apart: the L2 reads' baseline, taken
 *             in their rhythm. A block of GETs keeps Redis busy with one client, its best
 *             case (GET p50 8 us, against 70-85 us for a GET between other work), and a
 *             worker's L2 read never meets Redis in that state. The L2-hit verdict is
 *             against this interleaved echo and GET; the ratio against the blocks is
 *             reported beside it.
 *  staleness  a dedicated symbol MXS/USD with 200 hourly candles preloaded and its L1
 *             entries warmed (limit 5) on every worker. Every 50 ms (default, N = 200) the
 *             next hourly candle k is published with JetStream (waiting for the PubAck),
 *             then dm.v1.candles.latest limit 5 is polled from another connection until the
 *             newest timestamp is candle k's. Recorded from the PubAck: the first fresh
 *             answer, and the first of 20 consecutive fresh answers. A request goes to
 *             whichever worker the queue group picks and the reply does not name it, so
 *             "the other worker" cannot be chosen: 20 fresh answers in a row come from
 *             both of 2 workers unless the group picked one worker 20 times running
 *             (probability 2 x 2^-20). The bench also listens on dm.cache.v1.update and
 *             records when the coherence update of candle k went by, to split the window
 *             into "worker consumed + committed + published" and "merged + answered".
 *  gap probe  (--gap-interval, default 50 ms; 0 disables) L2 hits at their worst moment:
 *             a dedicated symbol MXG/USD (200 1m candles) gets a candle two periods after
 *             its newest every interval: coherence cannot merge a gap, so every worker
 *             drops its L1 entry and its next limit 100 answer comes from Dragonfly, while
 *             the workers are committing that very write. It is polled like the staleness
 *             probe; its dragonfly-served answers have their own row (no target). It
 *             starts when the staleness probe is done (--overlap-probes: at the same
 *             time; then the two candle streams share the workers' candle consumers,
 *             which shows in the staleness tail), so with the default 20 s each gets
 *             about 10 s.
 *  collector  its candles are timed too: PubAck -> their coherence update.
 *
 * Before and after the timed phase, dm.v1.metrics is asked until every worker (--workers,
 * default 2) has answered; the cache counters of the timed phase are the differences. The
 * workers' own latency percentiles are since they started (bench/run.sh runs this before
 * bench_latest so they hold this benchmark's requests only).
 *
 * Targets (issue): cache hit rate >= 95% per operation (spec: > 85%); L1-hit p99 <= 1.5 x
 * echo p99 of the same reply size (both back to back); L2-hit p99 <= echo p99 + 2 x Redis
 * GET p99 (the echo and GET taken right after each cold request); tail against tails, all
 * from this run; staleness p99 < 50 ms.
 *
 * Re-runs against the same stack continue after the newest stored candle of each symbol.
 *
 * Output: ROW/NOTE lines on stdout for bench/run.sh, progress and details on stderr. */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../worker/codec/doc.h"
#include "common.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define REQUEST_TIMEOUT_MS 5000
#define LIMIT 100
#define PRELOAD 200
#define NSYM 3
#define MAX_THREADS 16
#define MAX_WORKERS 8
#define STALE_SYMBOL "MXS/USD"
#define STALE_LIMIT 5
#define GAP_SYMBOL "MXG/USD"
#define FRESH_STREAK 20
#define PROBE_WAIT_MS 5000 /* give up on one probe candle after this */
#define PUB_MAX_PENDING 4000
#define SOURCE "bench-mix"
#define MARKET_STREAM "MARKET"
#define SUBJ_CANDLES "dm.v1.candles.latest"
#define SUBJ_TICK "dm.v1.tick.latest"
#define SUBJ_METRICS "dm.v1.metrics"
#define SUBJ_UPDATE "dm.cache.v1.update"
#define SUBJ_ECHO_CANDLES "bench.mix.echo.candles"
#define SUBJ_ECHO_TICK "bench.mix.echo.tick"
#define REDIS_KEY "bench:mix:get"
#define REDIS_VALUE "0123456789abcdef"

static const char *const SYMBOLS[NSYM] = {"MXA/USD", "MXB/USD", "MXC/USD"};

enum { OP_CANDLES, OP_TICK, OP_COUNT };
static const char *const OP_NAMES[OP_COUNT] = {"candles.latest", "tick.latest"};
static const char *const OP_STRATEGY[OP_COUNT] = {"get_candles", "get_latest_tick"};
enum { LV_L1, LV_DF, LV_TS, LV_OTHER, LV_COUNT };
static const char *const LV_NAMES[LV_COUNT] = {"l1", "dragonfly", "timescale", "other"};

/* ------------------------------------------------------------- helpers --- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void token_of(const char *symbol, char *token, size_t cap)
{
    size_t k = 0;
    for (const char *p = symbol; *p && k + 1 < cap; p++)
        if (*p != '/')
            token[k++] = *p;
    token[k] = '\0';
}

static bool samples_append(bench_samples *dst, const bench_samples *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (!bench_samples_add(dst, src->v[i]))
            return false;
    return true;
}

/* What a reply says: Status, served_by level, candles in data, newest timestamp. */
typedef struct {
    int status, level, ncandles, len;
    int64_t newest;
    char text[160]; /* the start of the body, for error messages */
} rinfo;

static int level_of(const char *name, size_t n)
{
    for (int i = 0; i < LV_OTHER; i++)
        if (strlen(LV_NAMES[i]) == n && memcmp(LV_NAMES[i], name, n) == 0)
            return i;
    return LV_OTHER;
}

/* The worker writes compact JSON; spaces are skipped anyway. */
static void parse_reply(natsMsg *r, rinfo *ri)
{
    memset(ri, 0, sizeof *ri);
    ri->level = -1;
    const char *st = NULL;
    ri->status = natsMsgHeader_Get(r, "Status", &st) == NATS_OK && st ? atoi(st) : 200;
    const char *d = natsMsg_GetData(r);
    int len = natsMsg_GetDataLength(r);
    ri->len = len;
    if (d == NULL || len <= 0)
        return;
    snprintf(ri->text, sizeof ri->text, "%.*s", len < 150 ? len : 150, d);
    const char *end = d + len;
    static const char TS[] = "\"timestamp\"", SB[] = "\"served_by\"";
    const char *p = d, *last_ts = NULL, *sb = NULL;
    while (p < end && (p = memmem(p, (size_t)(end - p), TS, sizeof TS - 1)) != NULL) {
        ri->ncandles++;
        last_ts = p;
        p += sizeof TS - 1;
    }
    if (last_ts) {
        const char *q = last_ts + sizeof TS - 1;
        while (q < end && (*q == ':' || *q == ' '))
            q++;
        int64_t v = 0;
        while (q < end && *q >= '0' && *q <= '9')
            v = v * 10 + (*q++ - '0');
        ri->newest = v;
    }
    for (p = d; p < end && (p = memmem(p, (size_t)(end - p), SB, sizeof SB - 1)) != NULL;
         p += sizeof SB - 1)
        sb = p;
    if (sb) {
        const char *q = sb + sizeof SB - 1;
        while (q < end && (*q == ':' || *q == ' '))
            q++;
        if (q < end && *q == '"') {
            q++;
            const char *e = memchr(q, '"', (size_t)(end - q));
            if (e)
                ri->level = level_of(q, (size_t)(e - q));
        }
    }
}

/* One round trip; only RequestMsg is timed (message creation is outside the clock). */
static natsStatus request(natsConnection *nc, const char *subject, const char *body, int64_t *rtt,
                          natsMsg **reply)
{
    natsMsg *m = NULL;
    *reply = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, body, (int)strlen(body));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Content-Type", DM_CT_JSON);
    if (s == NATS_OK) {
        int64_t t = bench_now_ns();
        s = natsConnection_RequestMsg(reply, nc, m, REQUEST_TIMEOUT_MS);
        *rtt = bench_now_ns() - t;
    }
    natsMsg_Destroy(m);
    return s;
}

/* An untimed request; false (and a message) unless Status 200. */
static bool ask(natsConnection *nc, const char *subject, const char *body, rinfo *ri)
{
    natsMsg *r = NULL;
    int64_t rtt;
    natsStatus s = request(nc, subject, body, &rtt, &r);
    if (s != NATS_OK) {
        memset(ri, 0, sizeof *ri);
        snprintf(ri->text, sizeof ri->text, "request: %s", natsStatus_GetText(s));
        return false;
    }
    parse_reply(r, ri);
    natsMsg_Destroy(r);
    return ri->status == 200;
}

static void candles_body(char *buf, size_t cap, const char *symbol, const char *tf, int limit)
{
    snprintf(buf, cap, "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"limit\":%d}", symbol, tf, limit);
}

/* A valid candle: open/close around 1.1, high above both, low below both. */
static int candle_json(char *buf, size_t cap, const char *symbol, const char *tf, int64_t ts,
                       long i)
{
    double o = 1.1 + (double)(i % 500) * 1e-5, c = o + ((i & 1) ? 2e-5 : -2e-5);
    double hi = (o > c ? o : c) + 5e-5, lo = (o < c ? o : c) - 5e-5;
    return snprintf(buf, cap,
                    "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"timestamp\":%" PRId64
                    ",\"open\":%.5f,\"high\":%.5f,\"low\":%.5f,\"close\":%.5f,\"volume\":10,"
                    "\"source\":\"" SOURCE "\"}",
                    symbol, tf, ts, o, hi, lo, c);
}

static natsMsg *make_msg(const char *subject, const char *data, int len, const char *id)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Content-Type", DM_CT_JSON);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

static bool js_publish_sync(jsCtx *js, natsMsg *m, const char *what)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_PublishMsg(&pa, js, m, &po, &jerr);
    jsPubAck_Destroy(pa);
    if (s != NATS_OK) {
        fprintf(stderr, "bench: publish %s: %s (%d)\n", what, natsStatus_GetText(s), (int)jerr);
        return false;
    }
    return true;
}

/* ----------------------------------------------------------- data plan --- */

typedef struct {
    const char *symbol, *tf;
    int64_t tf_ms;
    int64_t base; /* open time of the first preloaded candle */
} series_plan;

/* Starts `back_ms` ago (aligned), or after the newest stored candle when a previous run
 * left some; `periods` candles from there must all be closed by now. */
static bool plan(natsConnection *nc, series_plan *p, int64_t back_ms, int64_t periods)
{
    int64_t now = wall_ms();
    p->base = (now - back_ms) / p->tf_ms * p->tf_ms;
    char body[128];
    candles_body(body, sizeof body, p->symbol, p->tf, 1);
    rinfo ri;
    if (ask(nc, SUBJ_CANDLES, body, &ri)) {
        if (ri.ncandles == 1 && ri.newest + p->tf_ms > p->base)
            p->base = ri.newest + p->tf_ms;
    } else if (ri.status != 404) {
        fprintf(stderr, "bench: %s %s: %s\n", SUBJ_CANDLES, p->symbol, ri.text);
        return false;
    }
    if (p->base + periods * p->tf_ms > now) {
        fprintf(stderr,
                "bench: %s %s: no room for %" PRId64 " more candles before now after the ones "
                "earlier runs stored; use a fresh stack (bench/run.sh starts one)\n",
                p->symbol, p->tf, periods);
        return false;
    }
    return true;
}

/* `count` candles from p->base, one market.candles bulk. */
static bool preload_n(jsCtx *js, const series_plan *p, int count)
{
    size_t cap = (size_t)count * 256 + 64;
    char *buf = malloc(cap);
    if (buf == NULL)
        return false;
    size_t k = (size_t)snprintf(buf, cap, "{\"candles\":[");
    for (int i = 0; i < count; i++) {
        if (i)
            buf[k++] = ',';
        k += (size_t)candle_json(buf + k, cap - k, p->symbol, p->tf, p->base + i * p->tf_ms, i);
    }
    k += (size_t)snprintf(buf + k, cap - k, "]}");
    char token[32], subject[96], id[160];
    token_of(p->symbol, token, sizeof token);
    snprintf(subject, sizeof subject, "market.candles.%s.%s", token, p->tf);
    snprintf(id, sizeof id, "candles:%s:%s:%" PRId64 ":%" PRId64 ":%d", token, p->tf, p->base,
             p->base + (count - 1) * p->tf_ms, count);
    natsMsg *m = make_msg(subject, buf, (int)k, id);
    bool ok = m && js_publish_sync(js, m, subject);
    natsMsg_Destroy(m);
    free(buf);
    return ok;
}

static bool preload(jsCtx *js, const series_plan *p) { return preload_n(js, p, PRELOAD); }

/* Pending + unacked messages over the consumers of MARKET; -1 on error. */
static long long market_backlog(jsCtx *js, char *detail, size_t cap)
{
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    if (js_Consumers(&list, js, MARKET_STREAM, NULL, &jerr) != NATS_OK)
        return -1;
    long long total = 0;
    size_t k = 0;
    if (detail && cap)
        detail[0] = '\0';
    for (int i = 0; i < list->Count; i++) {
        jsConsumerInfo *ci = list->List[i];
        long long n = (long long)ci->NumPending + (long long)ci->NumAckPending;
        total += n;
        if (detail && n > 0 && k < cap)
            k += (size_t)snprintf(detail + k, cap - k, "%s%s %lld", k ? ", " : "", ci->Name, n);
    }
    jsConsumerInfoList_Destroy(list);
    return total;
}

static bool wait_backlog(jsCtx *js, int timeout_s)
{
    int64_t deadline = bench_now_ns() + (int64_t)timeout_s * NS_PER_S;
    while (bench_now_ns() < deadline) {
        if (market_backlog(js, NULL, 0) == 0)
            return true;
        bench_sleep_ms(50);
    }
    char d[512];
    long long n = market_backlog(js, d, sizeof d);
    fprintf(stderr, "bench: MARKET consumers still hold %lld messages after %d s (%s)\n", n,
            timeout_s, d);
    return false;
}

/* Asks until `want_fresh` consecutive answers hold `limit` candles ending at `newest`. */
static bool wait_fresh(natsConnection *nc, const char *symbol, const char *tf, int limit,
                       int64_t newest, int want_fresh, int timeout_s)
{
    char body[128];
    candles_body(body, sizeof body, symbol, tf, limit);
    int64_t deadline = bench_now_ns() + (int64_t)timeout_s * NS_PER_S;
    int streak = 0;
    rinfo ri = {0};
    while (bench_now_ns() < deadline) {
        if (ask(nc, SUBJ_CANDLES, body, &ri) && ri.ncandles == limit && ri.newest == newest) {
            if (++streak == want_fresh)
                return true;
        } else {
            streak = 0;
            bench_sleep_ms(20);
        }
    }
    fprintf(stderr,
            "bench: %s %s limit %d did not answer with candles up to %" PRId64
            " within %d s (last: status %d, %d candles, newest %" PRId64 ": %s)\n",
            symbol, tf, limit, newest, timeout_s, ri.status, ri.ncandles, ri.newest, ri.text);
    return false;
}

/* ----------------------------------------------------------- collector --- */

typedef struct {
    natsConnection *nc;
    jsCtx *js;
    int rate;
    int64_t candle_ts[NSYM]; /* open time of the next candle per symbol */
    int64_t first_candle_ts; /* open time of the first one (the same for every symbol) */
    int max_candles;         /* per symbol, size of the arrays below / NSYM */
    atomic_llong *cand_ack;  /* [minute * NSYM + symbol]: PubAck seen */
    atomic_llong *cand_upd;  /* [minute * NSYM + symbol]: its coherence update seen */
    natsSubscription *upd_sub;
    int64_t tick_ts[NSYM]; /* timestamp of the last tick per symbol */
    atomic_bool stop;
    atomic_long ticks, candles, acked, ack_err;
    pthread_mutex_t mu;
    char last_err[200];
    bool failed;
    int64_t t0, t1;
    pthread_t th;
} collector;

/* Slot of a collector candle (symbol, open time), -1 if not one. */
static int candle_slot(const collector *c, const char *symbol_or_token, int64_t ts)
{
    int s = 0;
    while (s < NSYM && strcmp(SYMBOLS[s], symbol_or_token) != 0) {
        char tok[16];
        token_of(SYMBOLS[s], tok, sizeof tok);
        if (strcmp(tok, symbol_or_token) == 0)
            break;
        s++;
    }
    int64_t off = ts - c->first_candle_ts;
    if (s == NSYM || off < 0 || off % MIN_MS != 0 || off / MIN_MS >= c->max_candles)
        return -1;
    return (int)(off / MIN_MS) * NSYM + s;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    collector *c = closure;
    if (pa) {
        int64_t now = bench_now_ns();
        atomic_fetch_add(&c->acked, 1);
        const char *id = NULL;
        char tok[32];
        long long ts;
        if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id &&
            sscanf(id, "candle:%31[^:]:1m:%lld", tok, &ts) == 2) {
            int k = candle_slot(c, tok, ts);
            long long zero = 0;
            if (k >= 0)
                atomic_compare_exchange_strong(&c->cand_ack[k], &zero, (long long)now);
        }
    } else {
        atomic_fetch_add(&c->ack_err, 1);
        pthread_mutex_lock(&c->mu);
        snprintf(c->last_err, sizeof c->last_err, "%s",
                 pae && pae->ErrText ? pae->ErrText
                 : pae               ? natsStatus_GetText(pae->Err)
                                     : "?");
        pthread_mutex_unlock(&c->mu);
    }
    natsMsg_Destroy(msg);
}

/* Coherence updates holding collector candles (tick updates carry no "candles" key). */
static void on_collector_update(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                                void *closure)
{
    (void)nc, (void)sub;
    collector *c = closure;
    int64_t now = bench_now_ns();
    const char *d = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    if (d && len > 0 && memmem(d, (size_t)len, "candles", 7) && memmem(d, (size_t)len, "MX", 2)) {
        cJSON *root = NULL;
        dm_err err = {0};
        if (dm_doc_parse(d, (size_t)len, DM_ENC_MSGPACK, 8u << 20, &root, &err) == DM_OK && root) {
            const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "candles"), *it;
            cJSON_ArrayForEach(it, arr)
            {
                const cJSON *sym = cJSON_GetObjectItemCaseSensitive(it, "symbol");
                const cJSON *tf = cJSON_GetObjectItemCaseSensitive(it, "timeframe");
                const cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "timestamp");
                if (!cJSON_IsString(sym) || !cJSON_IsString(tf) || strcmp(tf->valuestring, "1m") ||
                    !cJSON_IsNumber(ts))
                    continue;
                int k = candle_slot(c, sym->valuestring, (int64_t)ts->valuedouble);
                long long zero = 0;
                if (k >= 0)
                    atomic_compare_exchange_strong(&c->cand_upd[k], &zero, (long long)now);
            }
        }
        cJSON_Delete(root);
    }
    natsMsg_Destroy(msg);
}

static bool collector_publish(collector *c, const char *subject, const char *data, int len,
                              const char *id)
{
    natsMsg *m = make_msg(subject, data, len, id);
    if (m == NULL)
        return false;
    natsStatus s = js_PublishMsgAsync(c->js, &m, NULL); /* takes m on success */
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        pthread_mutex_lock(&c->mu);
        snprintf(c->last_err, sizeof c->last_err, "publish %s: %s", subject, natsStatus_GetText(s));
        pthread_mutex_unlock(&c->mu);
    }
    return s == NATS_OK;
}

static void *collector_run(void *arg)
{
    collector *c = arg;
    char tok[NSYM][16], tick_subj[NSYM][64], candle_subj[NSYM][80], buf[512], id[160];
    for (int i = 0; i < NSYM; i++) {
        token_of(SYMBOLS[i], tok[i], sizeof tok[i]);
        snprintf(tick_subj[i], sizeof tick_subj[i], "market.tick.%s", tok[i]);
        snprintf(candle_subj[i], sizeof candle_subj[i], "market.candle.%s.1m", tok[i]);
    }
    long sent = 0, ncandles = 0;
    c->t0 = bench_now_ns();
    int64_t next_candle = c->t0 + NS_PER_S;
    while (!atomic_load(&c->stop) && !c->failed) {
        int64_t now = bench_now_ns();
        long due = (long)((double)(now - c->t0) / 1e9 * c->rate);
        while (sent < due && !c->failed) {
            int s = (int)(sent % NSYM);
            int64_t ts = wall_ms();
            if (ts <= c->tick_ts[s])
                ts = c->tick_ts[s] + 1;
            c->tick_ts[s] = ts;
            double bid = 1.1 + (double)(sent % 1000) * 1e-5;
            int len =
                snprintf(buf, sizeof buf,
                         "{\"symbol\":\"%s\",\"timestamp\":%" PRId64 ",\"bid\":%.5f,"
                         "\"ask\":%.5f,\"spread\":0.00002,\"volume\":1,\"source\":\"" SOURCE "\"}",
                         SYMBOLS[s], ts, bid, bid + 2e-5);
            snprintf(id, sizeof id, "tick:%s:%" PRId64 ":" SOURCE, tok[s], ts);
            c->failed = !collector_publish(c, tick_subj[s], buf, len, id);
            sent++;
            atomic_store(&c->ticks, sent);
        }
        if (now >= next_candle) {
            for (int s = 0; s < NSYM && !c->failed; s++) {
                int len = candle_json(buf, sizeof buf, SYMBOLS[s], "1m", c->candle_ts[s], ncandles);
                snprintf(id, sizeof id, "candle:%s:1m:%" PRId64, tok[s], c->candle_ts[s]);
                c->failed = !collector_publish(c, candle_subj[s], buf, len, id);
                c->candle_ts[s] += MIN_MS;
                ncandles++;
            }
            atomic_store(&c->candles, ncandles);
            next_candle += NS_PER_S;
        }
        bench_sleep_ms(1);
    }
    c->t1 = bench_now_ns();
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 20000;
    if (js_PublishAsyncComplete(c->js, &po) != NATS_OK)
        c->failed = true;
    nats_ReleaseThreadMemory();
    return NULL;
}

/* -------------------------------------------------------------- engine --- */

typedef struct {
    bench_samples lat[LV_COUNT]; /* by the level that answered */
    bench_samples all;
    long served[LV_COUNT];
    long errors;
    char last_error[200];
} opstats;

static void opstats_free(opstats *o)
{
    for (int l = 0; l < LV_COUNT; l++)
        bench_samples_free(&o->lat[l]);
    bench_samples_free(&o->all);
}

/* One timed request whose reply must be Status 200 with a served_by and, for candles,
 * `want_candles` candles and (unless 0) the newest at `want_newest`. Counts an error in o
 * or, when `record`, the latency under the level that answered. */
static void timed_request(natsConnection *nc, const char *subject, const char *body,
                          int want_candles, int64_t want_newest, bool record, opstats *o)
{
    natsMsg *r = NULL;
    int64_t rtt = 0;
    natsStatus s = request(nc, subject, body, &rtt, &r);
    if (s != NATS_OK) {
        o->errors++;
        snprintf(o->last_error, sizeof o->last_error, "request: %s", natsStatus_GetText(s));
        return;
    }
    rinfo ri;
    parse_reply(r, &ri);
    natsMsg_Destroy(r);
    if (ri.status != 200 || ri.level < 0 || (want_candles && ri.ncandles != want_candles) ||
        (want_newest && ri.newest != want_newest)) {
        o->errors++;
        snprintf(o->last_error, sizeof o->last_error,
                 "status %d, %d candles, newest %" PRId64 ": %s", ri.status, ri.ncandles,
                 ri.newest, ri.text);
    } else if (record) {
        o->served[ri.level]++;
        bench_samples_add(&o->lat[ri.level], rtt);
        bench_samples_add(&o->all, rtt);
    }
}

typedef struct {
    natsConnection *nc;
    atomic_bool *stop;
    bool record;
    unsigned seed;
    long requests;
    opstats op[OP_COUNT];
    pthread_t th;
} engine;

static void *engine_run(void *arg)
{
    engine *e = arg;
    char cbody[NSYM][128], tbody[NSYM][64];
    for (int i = 0; i < NSYM; i++) {
        candles_body(cbody[i], sizeof cbody[i], SYMBOLS[i], "1m", LIMIT);
        snprintf(tbody[i], sizeof tbody[i], "{\"symbol\":\"%s\"}", SYMBOLS[i]);
    }
    for (long i = 0; !atomic_load(e->stop); i++) {
        int op = (int)(i & 1), sym = (int)(rand_r(&e->seed) % NSYM);
        e->requests++;
        timed_request(e->nc, op == OP_CANDLES ? SUBJ_CANDLES : SUBJ_TICK,
                      op == OP_CANDLES ? cbody[sym] : tbody[sym], op == OP_CANDLES ? LIMIT : 0, 0,
                      e->record, &e->op[op]);
    }
    nats_ReleaseThreadMemory();
    return NULL;
}

/* ------------------------------------------------------------ baseline --- */

typedef struct {
    char *data;
    int len;
} echo_reply;

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    const echo_reply *e = closure;
    const char *reply_to = natsMsg_GetReply(msg);
    if (reply_to && *reply_to) {
        natsMsg *out = NULL;
        natsStatus s = natsMsg_Create(&out, reply_to, NULL, e->data, e->len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(out, "Content-Type", DM_CT_JSON);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(out, "Status", "200");
        if (s == NATS_OK)
            natsConnection_PublishMsg(nc, out);
        natsMsg_Destroy(out);
    }
    natsMsg_Destroy(msg);
}

enum { B_ECHO_CANDLES, B_ECHO_TICK, B_REDIS, B_COLD, B_COUNT };

#define COLD_SYMBOL_LEN 16

typedef struct {
    natsConnection *nc;
    redisContext *rc;
    atomic_bool *stop;
    int block;
    int echo_len[2];
    bench_samples lat[B_COLD]; /* the cold requests are timed in cold_stats */
    long errors;
    char last_error[200];
    /* cold series: more than an L1 holds, walked in order, so most requests miss L1 */
    char (*cold)[COLD_SYMBOL_LEN];
    int n_cold;
    long next_cold;
    int64_t cold_newest; /* open time of the newest preloaded candle, the same in every one */
    opstats cold_stats;  /* by the level that answered */
    /* after each cold request, one echo of the candles size and one GET: the baseline of
     * the L2 reads, taken in the same rhythm (see baseline_one) */
    bench_samples amid_echo, amid_get;
    pthread_t th;
} baseline;

/* Names no earlier run used: a base-36 stamp of the start second, then the index. */
static void cold_names(char (*names)[COLD_SYMBOL_LEN], int n)
{
    static const char DIG[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    long long t = wall_ms() / 1000;
    char stamp[5];
    for (int i = 3; i >= 0; i--, t /= 36)
        stamp[i] = DIG[t % 36];
    stamp[4] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(names[i], COLD_SYMBOL_LEN, "Q%s%04d/USD", stamp, i);
}

/* Every preloaded series is in Dragonfly, whole, before anything asks for it. */
static bool cold_in_dragonfly(redisContext *rc, char (*names)[COLD_SYMBOL_LEN], int n)
{
    for (int i = 0; i < n; i++) {
        char token[32];
        token_of(names[i], token, sizeof token);
        redisReply *r = redisCommand(rc, "ZCARD candle:latest:{%s}:1m", token);
        long long have = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        freeReplyObject(r);
        if (have != LIMIT) {
            fprintf(stderr, "bench: %s holds %lld candles in Redis, not %d\n", names[i], have,
                    LIMIT);
            return false;
        }
    }
    return true;
}

static void cold_one(baseline *b)
{
    char body[128];
    candles_body(body, sizeof body, b->cold[b->next_cold++ % b->n_cold], "1m", LIMIT);
    timed_request(b->nc, SUBJ_CANDLES, body, LIMIT, b->cold_newest, true, &b->cold_stats);
}

static bool redis_get(baseline *b, int64_t *rtt)
{
    int64_t t = bench_now_ns();
    redisReply *r = redisCommand(b->rc, "GET %s", REDIS_KEY);
    *rtt = bench_now_ns() - t;
    bool ok = r && r->type == REDIS_REPLY_STRING && r->len == strlen(REDIS_VALUE);
    if (!ok)
        snprintf(b->last_error, sizeof b->last_error, "redis GET: %s",
                 r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply") : b->rc->errstr);
    freeReplyObject(r);
    return ok;
}

/* k: B_ECHO_CANDLES or B_ECHO_TICK, the reply size to ask for. */
static bool echo_once(baseline *b, int k, int64_t *rtt)
{
    natsMsg *r = NULL;
    natsStatus s = request(b->nc, k == B_ECHO_CANDLES ? SUBJ_ECHO_CANDLES : SUBJ_ECHO_TICK, "{}",
                           rtt, &r);
    bool ok = s == NATS_OK && natsMsg_GetDataLength(r) == b->echo_len[k];
    if (!ok)
        snprintf(b->last_error, sizeof b->last_error, "echo: %s",
                 s == NATS_OK ? "wrong reply size" : natsStatus_GetText(s));
    natsMsg_Destroy(r);
    return ok;
}

/* A block of GETs keeps Redis busy with this one client: its best case (p50 8 us where a
 * GET between other work takes 70 us). A worker's L2 read meets Redis between other
 * clients' commands. So the L2 reads get a baseline taken in their own rhythm: each cold
 * request is followed by one echo of the candles reply size and one GET, each timed. */
static void baseline_one(baseline *b, int k, bool record)
{
    int64_t rtt = 0;
    bool ok;
    if (k == B_COLD) {
        if (!record)
            return;
        cold_one(b);
        if (echo_once(b, B_ECHO_CANDLES, &rtt))
            bench_samples_add(&b->amid_echo, rtt);
        else
            b->errors++;
        if (redis_get(b, &rtt))
            bench_samples_add(&b->amid_get, rtt);
        else
            b->errors++;
        return;
    }
    ok = k == B_REDIS ? redis_get(b, &rtt) : echo_once(b, k, &rtt);
    if (!ok)
        b->errors++;
    else if (record)
        bench_samples_add(&b->lat[k], rtt);
}

static void *baseline_run(void *arg)
{
    baseline *b = arg;
    while (!atomic_load(b->stop))
        for (int k = 0; k < (b->n_cold ? B_COUNT : B_COLD) && !atomic_load(b->stop); k++)
            for (int i = 0; i < b->block && !atomic_load(b->stop); i++)
                baseline_one(b, k, true);
    nats_ReleaseThreadMemory();
    return NULL;
}

/* --------------------------------------------------------------- probes --- */

typedef struct {
    const char *name;
    series_plan sp;
    int limit, step;  /* step: periods between probe candles (1 = next, 2 = a gap) */
    int64_t first_ts; /* open time of probe candle 0 */
    int n, interval_ms;
    natsConnection *pub_nc, *poll_nc;
    natsSubscription *upd_sub;
    atomic_bool *stop;
    atomic_bool *start_after; /* wait for this before the first candle (may be NULL) */
    atomic_bool finished;     /* set when this probe is done */
    atomic_llong *upd_ns;     /* per candle: when its coherence update went by */
    int64_t *ack_ns;          /* per candle: when the PubAck came (0: not published) */
    /* results */
    int done, unsettled, never_fresh;
    long polls;
    bench_samples ack, first, all, last20;
    opstats poll;
    long errors;
    char last_error[200];
    pthread_t th;
} probe;

static void on_update(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc, (void)sub;
    probe *p = closure;
    int64_t now = bench_now_ns();
    const char *d = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    if (d && len > 0 && memmem(d, (size_t)len, p->sp.symbol, strlen(p->sp.symbol))) {
        cJSON *root = NULL;
        dm_err err = {0};
        if (dm_doc_parse(d, (size_t)len, DM_ENC_MSGPACK, 8u << 20, &root, &err) == DM_OK && root) {
            const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "candles"), *it;
            int64_t per = p->sp.tf_ms * p->step;
            cJSON_ArrayForEach(it, arr)
            {
                const cJSON *sym = cJSON_GetObjectItemCaseSensitive(it, "symbol");
                const cJSON *tf = cJSON_GetObjectItemCaseSensitive(it, "timeframe");
                const cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "timestamp");
                if (!cJSON_IsString(sym) || strcmp(sym->valuestring, p->sp.symbol) != 0 ||
                    !cJSON_IsString(tf) || strcmp(tf->valuestring, p->sp.tf) != 0 ||
                    !cJSON_IsNumber(ts))
                    continue;
                int64_t off = (int64_t)ts->valuedouble - p->first_ts;
                if (off >= 0 && off % per == 0 && off / per < p->n) {
                    long long zero = 0;
                    atomic_compare_exchange_strong(&p->upd_ns[off / per], &zero, (long long)now);
                }
            }
        }
        cJSON_Delete(root);
    }
    natsMsg_Destroy(msg);
}

static void *probe_run(void *arg)
{
    probe *p = arg;
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, p->pub_nc, NULL) != NATS_OK) {
        p->errors++;
        snprintf(p->last_error, sizeof p->last_error, "JetStream context");
        return NULL;
    }
    char body[128], token[32], subject[96], buf[512], id[128];
    candles_body(body, sizeof body, p->sp.symbol, p->sp.tf, p->limit);
    token_of(p->sp.symbol, token, sizeof token);
    snprintf(subject, sizeof subject, "market.candle.%s.%s", token, p->sp.tf);
    while (p->start_after && !atomic_load(p->start_after) && !atomic_load(p->stop))
        bench_sleep_ms(1);
    int64_t per = p->sp.tf_ms * p->step, start = bench_now_ns();
    for (int k = 0; k < p->n && !atomic_load(p->stop); k++) {
        int64_t due = start + (int64_t)k * p->interval_ms * NS_PER_MS;
        while (bench_now_ns() < due && !atomic_load(p->stop))
            bench_sleep_ms(1);
        if (atomic_load(p->stop))
            break;
        int64_t ts = p->first_ts + k * per;
        int len = candle_json(buf, sizeof buf, p->sp.symbol, p->sp.tf, ts, PRELOAD + k);
        snprintf(id, sizeof id, "candle:%s:%s:%" PRId64, token, p->sp.tf, ts);
        natsMsg *m = make_msg(subject, buf, len, id);
        int64_t t_pub = bench_now_ns();
        bool ok = m && js_publish_sync(js, m, subject);
        int64_t t_ack = bench_now_ns();
        natsMsg_Destroy(m);
        if (!ok) {
            p->errors++;
            snprintf(p->last_error, sizeof p->last_error, "publish of candle %d failed", k);
            continue;
        }
        p->ack_ns[k] = t_ack;
        bench_samples_add(&p->ack, t_ack - t_pub);
        int streak = 0;
        int64_t first = 0, streak_start = 0, give_up = t_ack + PROBE_WAIT_MS * NS_PER_MS;
        bool settled = false;
        while (!settled && bench_now_ns() < give_up) {
            natsMsg *r = NULL;
            int64_t rtt = 0;
            natsStatus s = request(p->poll_nc, SUBJ_CANDLES, body, &rtt, &r);
            int64_t t_reply = bench_now_ns();
            p->polls++;
            if (s != NATS_OK) {
                p->poll.errors++;
                snprintf(p->poll.last_error, sizeof p->poll.last_error, "request: %s",
                         natsStatus_GetText(s));
                streak = 0;
                continue;
            }
            rinfo ri;
            parse_reply(r, &ri);
            natsMsg_Destroy(r);
            if (ri.status != 200 || ri.level < 0 || ri.ncandles != p->limit) {
                p->poll.errors++;
                snprintf(p->poll.last_error, sizeof p->poll.last_error, "status %d: %s", ri.status,
                         ri.text);
                streak = 0;
                continue;
            }
            p->poll.served[ri.level]++;
            bench_samples_add(&p->poll.lat[ri.level], rtt);
            bench_samples_add(&p->poll.all, rtt);
            if (ri.newest == ts) {
                if (first == 0)
                    first = t_reply;
                if (streak++ == 0)
                    streak_start = t_reply;
                if (streak == FRESH_STREAK) {
                    settled = true;
                    bench_samples_add(&p->all, streak_start - t_ack);
                    bench_samples_add(&p->last20, t_reply - t_ack);
                }
            } else {
                streak = 0;
                if (ri.newest > ts) {
                    p->poll.errors++;
                    snprintf(p->poll.last_error, sizeof p->poll.last_error,
                             "newest %" PRId64 " is after the candle just published (%" PRId64
                             "): another writer on %s?",
                             ri.newest, ts, p->sp.symbol);
                }
            }
        }
        if (first)
            bench_samples_add(&p->first, first - t_ack);
        else
            p->never_fresh++;
        if (!settled)
            p->unsettled++;
        p->done++;
    }
    jsCtx_Destroy(js);
    atomic_store(&p->finished, true);
    nats_ReleaseThreadMemory();
    return NULL;
}

/* -------------------------------------------------------------- metrics --- */

typedef struct {
    char worker[64];
    double l1_hits, l1_misses, df_hits, df_misses, total_rate;
    double op_count[OP_COUNT], op_p50[OP_COUNT], op_p95[OP_COUNT], op_p99[OP_COUNT];
    double l1_tick_entries, l1_candle_entries;
} wmetrics;

static double num_at(const cJSON *o, const char *a, const char *b, const char *c)
{
    const char *path[3] = {a, b, c};
    for (int i = 0; i < 3 && path[i] && o; i++)
        o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
    return cJSON_IsNumber(o) ? o->valuedouble : 0;
}

/* Asks dm.v1.metrics until `want` workers have answered (or 200 tries); returns how many. */
static int read_metrics(natsConnection *nc, int want, wmetrics *out)
{
    int n = 0;
    for (int tries = 0; tries < 200 && n < want; tries++) {
        natsMsg *r = NULL;
        int64_t rtt;
        if (request(nc, SUBJ_METRICS, "{}", &rtt, &r) != NATS_OK)
            continue;
        cJSON *doc = NULL;
        dm_err err = {0};
        if (dm_doc_parse(natsMsg_GetData(r), (size_t)natsMsg_GetDataLength(r), DM_ENC_JSON,
                         64u << 20, &doc, &err) == DM_OK &&
            doc) {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(doc, "worker");
            int i = 0;
            while (cJSON_IsString(w) && i < n && strcmp(out[i].worker, w->valuestring) != 0)
                i++;
            if (cJSON_IsString(w) && i == n) {
                wmetrics *m = &out[n++];
                memset(m, 0, sizeof *m);
                snprintf(m->worker, sizeof m->worker, "%s", w->valuestring);
                m->l1_hits = num_at(doc, "cache", "l1", "hits");
                m->l1_misses = num_at(doc, "cache", "l1", "misses");
                m->df_hits = num_at(doc, "cache", "dragonfly", "hits");
                m->df_misses = num_at(doc, "cache", "dragonfly", "misses");
                m->total_rate = num_at(doc, "cache", "total_hit_rate", NULL);
                for (int op = 0; op < OP_COUNT; op++) {
                    m->op_count[op] = num_at(doc, "operations", OP_STRATEGY[op], "count");
                    m->op_p50[op] = num_at(doc, "operations", OP_STRATEGY[op], "p50_ms");
                    m->op_p95[op] = num_at(doc, "operations", OP_STRATEGY[op], "p95_ms");
                    m->op_p99[op] = num_at(doc, "operations", OP_STRATEGY[op], "p99_ms");
                }
                m->l1_tick_entries = num_at(doc, "l1", "ticks", "entries");
                m->l1_candle_entries = num_at(doc, "l1", "candles", "entries");
            }
        }
        cJSON_Delete(doc);
        natsMsg_Destroy(r);
    }
    return n;
}

static const wmetrics *find_worker(const wmetrics *m, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].worker, name) == 0)
            return &m[i];
    return NULL;
}

static double ratio_or_zero(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* ----------------------------------------------------------------- main --- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_mix [--seconds S] [--warmup W] [--rate N] [--threads T] [--stale N]\n"
            "                 [--stale-interval MS] [--gap-interval MS] [--cold N] [--block B]\n"
            "                 [--workers K] [--overlap-probes]\n"
            "  --seconds S         timed phase (default 20)\n"
            "  --warmup W          untimed engine warm-up first (default 3)\n"
            "  --rate N            ticks/s published by the collector (default 1000)\n"
            "  --threads T         engine threads, one connection each (default 4)\n"
            "  --stale N           staleness probe candles (default 200)\n"
            "  --stale-interval MS one staleness candle every MS ms (default 50)\n"
            "  --gap-interval MS   one L2 probe candle every MS ms, 0 = none (default 50)\n"
            "  --cold N            cold series in the baseline's blocks, 0 = none (default 1500)\n"
            "  --block B           baseline requests per block (default 100)\n"
            "  --workers K         workers expected to answer dm.v1.metrics (default 2)\n"
            "  --overlap-probes    run the gap probe at the same time as the staleness probe\n"
            "                      (default: after it, so its candles do not share the\n"
            "                      candle consumers with the staleness candles)\n");
}

static void pct_line(const char *what, bench_samples *s)
{
    bench_samples_sort(s);
    fprintf(stderr, "  %-34s n=%-7zu p50 %8.3f  p99 %8.3f  max %8.3f ms\n", what, s->n,
            bench_pct_ms(s, 50), bench_pct_ms(s, 99), bench_max_ms(s));
}

static void served_list(const long served[LV_COUNT], char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int l = 0; l < LV_COUNT && k < cap; l++)
        if (served[l])
            k += (size_t)snprintf(buf + k, cap - k, "%s%s=%ld", k ? " " : "", LV_NAMES[l],
                                  served[l]);
}

int main(int argc, char **argv)
{
    int seconds = 20, warmup = 3, rate = 1000, threads = 4, stale_n = 200, stale_iv = 50;
    int gap_iv = 50, block = 100, workers = 2, overlap = 0, cold_n = 1500;
    static const struct option opts[] = {{"seconds", required_argument, 0, 's'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"threads", required_argument, 0, 't'},
                                         {"stale", required_argument, 0, 'n'},
                                         {"stale-interval", required_argument, 0, 'i'},
                                         {"gap-interval", required_argument, 0, 'g'},
                                         {"cold", required_argument, 0, 'c'},
                                         {"block", required_argument, 0, 'b'},
                                         {"workers", required_argument, 0, 'k'},
                                         {"overlap-probes", no_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': seconds = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'r': rate = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'n': stale_n = atoi(optarg); break;
        case 'i': stale_iv = atoi(optarg); break;
        case 'g': gap_iv = atoi(optarg); break;
        case 'c': cold_n = atoi(optarg); break;
        case 'b': block = atoi(optarg); break;
        case 'k': workers = atoi(optarg); break;
        case 'o': overlap = 1; break;
        default: usage(); return c == 'h' ? 0 : 64;
        }
    }
    if (seconds < 1 || seconds > 600 || warmup < 0 || warmup > 60 || rate < 0 || rate > 100000 ||
        threads < 1 || threads > MAX_THREADS || stale_n < 0 || stale_n > 1000 || stale_iv < 1 ||
        stale_iv > 10000 || gap_iv < 0 || gap_iv > 10000 || cold_n < 0 || cold_n > 9999 ||
        block < 1 || workers < 1 ||
        workers > MAX_WORKERS) {
        usage();
        return 64;
    }
    int gap_n = gap_iv ? seconds * 1000 / gap_iv + 1 : 0; /* an upper bound */
    if (gap_n > 3000)
        gap_n = 3000;

    /* ---- connections ---- */
    natsConnection *nc = bench_nats_connect("bench-mix");
    natsConnection *coll_nc = bench_nats_connect("bench-mix-collector");
    natsConnection *echo_nc = bench_nats_connect("bench-mix-echo");
    natsConnection *base_nc = bench_nats_connect("bench-mix-baseline");
    natsConnection *probe_nc[4] = {
        bench_nats_connect("bench-mix-stale-pub"), bench_nats_connect("bench-mix-stale-poll"),
        bench_nats_connect("bench-mix-gap-pub"), bench_nats_connect("bench-mix-gap-poll")};
    natsConnection *eng_nc[MAX_THREADS] = {0};
    bool conn_ok = nc && coll_nc && echo_nc && base_nc && probe_nc[0] && probe_nc[1] &&
                   probe_nc[2] && probe_nc[3];
    for (int i = 0; i < threads && conn_ok; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-mix-engine-%d", i + 1);
        conn_ok = (eng_nc[i] = bench_nats_connect(name)) != NULL;
    }
    redisContext *rc = bench_redis_connect();
    if (!conn_ok || rc == NULL)
        return 1;
    redisReply *rr = redisCommand(rc, "SET %s %s", REDIS_KEY, REDIS_VALUE);
    bool redis_ok = rr && rr->type == REDIS_REPLY_STATUS;
    freeReplyObject(rr);
    if (!redis_ok) {
        fprintf(stderr, "bench: Redis SET %s failed\n", REDIS_KEY);
        return 1;
    }
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    natsStatus st = natsConnection_JetStream(&js, nc, &jo);
    if (st != NATS_OK)
        return bench_nats_fail("JetStream", st), 1;

    /* ---- data plan and preload ---- */
    int64_t collector_candles = warmup + seconds + 120; /* 1 per second, with slack */
    series_plan eng_sp[NSYM];
    for (int i = 0; i < NSYM; i++) {
        eng_sp[i] = (series_plan){.symbol = SYMBOLS[i], .tf = "1m", .tf_ms = MIN_MS};
        if (!plan(nc, &eng_sp[i], 10 * DAY_MS, PRELOAD + collector_candles))
            return 1;
    }
    /* one base for the three, so the collector's 3 candles of a second share a minute and
     * travel together (as a real feed publishes a closed minute for all its symbols) */
    for (int i = 1; i < NSYM; i++)
        if (eng_sp[i].base > eng_sp[0].base)
            eng_sp[0].base = eng_sp[i].base;
    for (int i = 1; i < NSYM; i++)
        eng_sp[i].base = eng_sp[0].base;
    series_plan stale_sp = {.symbol = STALE_SYMBOL, .tf = "1h", .tf_ms = HOUR_MS};
    series_plan gap_sp = {.symbol = GAP_SYMBOL, .tf = "1m", .tf_ms = MIN_MS};
    if (!plan(nc, &stale_sp, 365 * DAY_MS, PRELOAD + stale_n) ||
        (gap_n && !plan(nc, &gap_sp, 10 * DAY_MS, PRELOAD + 2LL * gap_n)))
        return 1;
    fprintf(stderr, "mix: preloading %d 1m candles for %s %s %s, %d 1h for %s%s%s\n", PRELOAD,
            SYMBOLS[0], SYMBOLS[1], SYMBOLS[2], PRELOAD, STALE_SYMBOL, gap_n ? ", 1m for " : "",
            gap_n ? GAP_SYMBOL : "");
    bool ok = true;
    for (int i = 0; i < NSYM && ok; i++)
        ok = preload(js, &eng_sp[i]);
    if (ok)
        ok = preload(js, &stale_sp);
    if (ok && gap_n)
        ok = preload(js, &gap_sp);
    char(*cold)[COLD_SYMBOL_LEN] = NULL;
    int64_t cold_newest = 0;
    if (ok && cold_n) {
        if ((cold = calloc((size_t)cold_n, sizeof *cold)) == NULL)
            return 1;
        cold_names(cold, cold_n);
        series_plan cp = {.tf = "1m", .tf_ms = MIN_MS, .base = (wall_ms() - 10 * DAY_MS) / MIN_MS * MIN_MS};
        cold_newest = cp.base + (LIMIT - 1) * MIN_MS;
        fprintf(stderr, "mix: preloading %d cold series (%s .. %s), %d 1m candles each\n", cold_n,
                cold[0], cold[cold_n - 1], LIMIT);
        for (int i = 0; i < cold_n && ok; i++) {
            cp.symbol = cold[i];
            ok = preload_n(js, &cp, LIMIT);
        }
    }
    if (!ok || !wait_backlog(js, 120) || (cold_n && !cold_in_dragonfly(rc, cold, cold_n)))
        return 1;
    /* Every worker fills its L1 on its first miss: 40 fresh answers in a row reach both. */
    for (int i = 0; i < NSYM && ok; i++)
        ok = wait_fresh(nc, SYMBOLS[i], "1m", LIMIT, eng_sp[i].base + (PRELOAD - 1) * MIN_MS, 40,
                        30);
    if (ok)
        ok = wait_fresh(nc, STALE_SYMBOL, "1h", STALE_LIMIT,
                        stale_sp.base + (PRELOAD - 1) * HOUR_MS, 40, 30);
    if (ok && gap_n)
        ok = wait_fresh(nc, GAP_SYMBOL, "1m", LIMIT, gap_sp.base + (PRELOAD - 1) * MIN_MS, 40, 30);
    if (!ok)
        return 1;

    /* ---- collector ---- */
    collector *col = calloc(1, sizeof *col);
    if (col == NULL)
        return 1;
    col->nc = coll_nc;
    col->rate = rate;
    pthread_mutex_init(&col->mu, NULL);
    for (int i = 0; i < NSYM; i++)
        col->candle_ts[i] = eng_sp[i].base + PRELOAD * MIN_MS;
    col->first_candle_ts = col->candle_ts[0];
    col->max_candles = (int)collector_candles;
    col->cand_ack = calloc((size_t)collector_candles * NSYM, sizeof *col->cand_ack);
    col->cand_upd = calloc((size_t)collector_candles * NSYM, sizeof *col->cand_upd);
    if (!col->cand_ack || !col->cand_upd)
        return 1;
    for (int64_t i = 0; i < collector_candles * NSYM; i++) {
        atomic_init(&col->cand_ack[i], 0);
        atomic_init(&col->cand_upd[i], 0);
    }
    if ((st = natsConnection_Subscribe(&col->upd_sub, coll_nc, SUBJ_UPDATE, on_collector_update,
                                       col)) != NATS_OK ||
        (st = natsConnection_Flush(coll_nc)) != NATS_OK)
        return bench_nats_fail("subscribe " SUBJ_UPDATE, st), 1;
    jsOptions cjo;
    jsOptions_Init(&cjo);
    cjo.Wait = 10000;
    cjo.PublishAsync.MaxPending = PUB_MAX_PENDING;
    cjo.PublishAsync.AckHandler = on_ack;
    cjo.PublishAsync.AckHandlerClosure = col;
    cjo.PublishAsync.StallWait = 10000;
    if ((st = natsConnection_JetStream(&col->js, coll_nc, &cjo)) != NATS_OK)
        return bench_nats_fail("collector JetStream", st), 1;
    if (pthread_create(&col->th, NULL, collector_run, col) != 0)
        return 1;
    fprintf(stderr, "mix: collector started (%d ticks/s over 3 symbols, 1 candle/s each)\n", rate);
    /* tick.latest answers once the first ticks are in */
    int64_t deadline = bench_now_ns() + 30 * NS_PER_S;
    for (int i = 0; i < NSYM && ok; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"symbol\":\"%s\"}", SYMBOLS[i]);
        rinfo ri;
        while (!(ok = ask(nc, SUBJ_TICK, body, &ri)) && bench_now_ns() < deadline)
            bench_sleep_ms(20);
        if (!ok)
            fprintf(stderr, "bench: tick.latest %s: %s\n", SYMBOLS[i], ri.text);
    }

    /* ---- echo responder, sized like the real replies ---- */
    echo_reply er[2] = {{0}};
    natsSubscription *echo_sub[2] = {0};
    if (ok) {
        char body[128];
        rinfo ri;
        candles_body(body, sizeof body, SYMBOLS[0], "1m", LIMIT);
        ok = ask(nc, SUBJ_CANDLES, body, &ri);
        er[0].len = ri.len;
        snprintf(body, sizeof body, "{\"symbol\":\"%s\"}", SYMBOLS[0]);
        ok = ok && ask(nc, SUBJ_TICK, body, &ri);
        er[1].len = ri.len;
        for (int k = 0; k < 2 && ok; k++) {
            ok = er[k].len > 0 && (er[k].data = malloc((size_t)er[k].len)) != NULL;
            if (ok) {
                memset(er[k].data, 'x', (size_t)er[k].len);
                st = natsConnection_Subscribe(
                    &echo_sub[k], echo_nc, k ? SUBJ_ECHO_TICK : SUBJ_ECHO_CANDLES, on_echo, &er[k]);
                ok = st == NATS_OK;
            }
        }
        ok = ok && natsConnection_Flush(echo_nc) == NATS_OK;
        if (!ok)
            fprintf(stderr, "bench: sizing or starting the echo failed\n");
    }
    fprintf(stderr,
            "mix: real replies %d bytes (candles.latest limit %d), %d bytes (tick.latest)\n",
            er[0].len, LIMIT, er[1].len);

    /* ---- engine warm-up (untimed) ---- */
    atomic_bool stop;
    atomic_init(&stop, false);
    engine *eng = calloc((size_t)threads, sizeof *eng);
    if (eng == NULL)
        return 1;
    int started = 0;
    if (ok && warmup > 0) {
        fprintf(stderr, "mix: warm-up %d s, %d engine threads\n", warmup, threads);
        for (int i = 0; i < threads; i++) {
            eng[i] = (engine){.nc = eng_nc[i], .stop = &stop, .seed = 1234u + (unsigned)i};
            if (pthread_create(&eng[i].th, NULL, engine_run, &eng[i]) == 0)
                started++;
        }
        bench_sleep_ms(warmup * 1000);
        atomic_store(&stop, true);
        for (int i = 0; i < started; i++)
            pthread_join(eng[i].th, NULL);
        for (int i = 0; i < threads; i++)
            for (int op = 0; op < OP_COUNT; op++) {
                if (eng[i].op[op].errors)
                    fprintf(stderr, "mix: warm-up %s errors %ld, last: %s\n", OP_NAMES[op],
                            eng[i].op[op].errors, eng[i].op[op].last_error);
                opstats_free(&eng[i].op[op]);
            }
        ok = started == threads;
    }
    baseline base = {.nc = base_nc, .rc = rc, .stop = &stop, .block = block,
                     .echo_len = {er[0].len, er[1].len}, .cold = cold, .n_cold = cold_n,
                     .cold_newest = cold_newest};
    if (ok) /* warm the baseline paths too (not the cold series: first asked when timed) */
        for (int k = 0; k < B_COLD; k++)
            for (int i = 0; i < 200; i++)
                baseline_one(&base, k, false);
    base.errors = 0;

    wmetrics before[MAX_WORKERS], after[MAX_WORKERS];
    int n_before = ok ? read_metrics(nc, workers, before) : 0;
    if (ok && n_before < workers)
        fprintf(stderr, "mix: only %d of %d workers answered dm.v1.metrics before the run\n",
                n_before, workers);

    /* ---- probes ---- */
    probe pr[2];
    memset(pr, 0, sizeof pr);
    pr[0] = (probe){.name = "staleness",
                    .sp = stale_sp,
                    .limit = STALE_LIMIT,
                    .step = 1,
                    .first_ts = stale_sp.base + PRELOAD * HOUR_MS,
                    .n = stale_n,
                    .interval_ms = stale_iv,
                    .pub_nc = probe_nc[0],
                    .poll_nc = probe_nc[1],
                    .stop = &stop};
    pr[1] = (probe){.name = "gap (L2)",
                    .sp = gap_sp,
                    .limit = LIMIT,
                    .step = 2,
                    .first_ts = gap_sp.base + (PRELOAD + 1) * MIN_MS,
                    .n = gap_n,
                    .interval_ms = gap_iv ? gap_iv : 1,
                    .pub_nc = probe_nc[2],
                    .poll_nc = probe_nc[3],
                    .stop = &stop};
    atomic_init(&pr[0].finished, false);
    atomic_init(&pr[1].finished, false);
    if (!overlap && stale_n > 0)
        pr[1].start_after = &pr[0].finished;
    for (int k = 0; k < 2 && ok; k++) {
        int n = pr[k].n > 0 ? pr[k].n : 1;
        pr[k].upd_ns = calloc((size_t)n, sizeof *pr[k].upd_ns);
        pr[k].ack_ns = calloc((size_t)n, sizeof *pr[k].ack_ns);
        ok = pr[k].upd_ns && pr[k].ack_ns;
        if (ok && pr[k].n > 0) {
            for (int i = 0; i < n; i++)
                atomic_init(&pr[k].upd_ns[i], 0);
            st = natsConnection_Subscribe(&pr[k].upd_sub, pr[k].pub_nc, SUBJ_UPDATE, on_update,
                                          &pr[k]);
            ok = st == NATS_OK && natsConnection_Flush(pr[k].pub_nc) == NATS_OK;
        }
    }

    /* ---- timed phase ---- */
    int rc_exit = 0;
    double cpu0[BENCH_CPU_COUNT], cpu[BENCH_CPU_COUNT];
    long long backlog_end = -1;
    char backlog_detail[512] = "";
    long ticks0 = 0, candles0 = 0, ticks1 = 0, candles1 = 0;
    double secs = 0;
    int64_t timed_t0 = 0, timed_t1 = 0;
    if (ok) {
        fprintf(stderr,
                "mix: timed phase %d s: %d engine threads, baseline, staleness probe (%d "
                "candles every %d ms), %s gap probe (one every %d ms)\n",
                seconds, threads, stale_n, stale_iv, overlap ? "with it" : "then", gap_iv);
        atomic_store(&stop, false);
        bench_cpu_snapshot(cpu0);
        ticks0 = atomic_load(&col->ticks);
        candles0 = atomic_load(&col->candles);
        int64_t t0 = bench_now_ns();
        timed_t0 = t0;
        started = 0;
        for (int i = 0; i < threads; i++) {
            eng[i] = (engine){
                .nc = eng_nc[i], .stop = &stop, .record = true, .seed = 777u + (unsigned)i * 31u};
            if (pthread_create(&eng[i].th, NULL, engine_run, &eng[i]) == 0)
                started++;
        }
        bool base_started = pthread_create(&base.th, NULL, baseline_run, &base) == 0;
        bool probe_started[2] = {false, false};
        for (int k = 0; k < 2; k++)
            if (pr[k].n > 0)
                probe_started[k] = pthread_create(&pr[k].th, NULL, probe_run, &pr[k]) == 0;
        while (bench_now_ns() < t0 + (int64_t)seconds * NS_PER_S)
            bench_sleep_ms(100);
        backlog_end = market_backlog(js, backlog_detail, sizeof backlog_detail);
        ticks1 = atomic_load(&col->ticks);
        candles1 = atomic_load(&col->candles);
        atomic_store(&stop, true);
        timed_t1 = bench_now_ns();
        secs = (double)(timed_t1 - t0) / 1e9;
        for (int i = 0; i < started; i++)
            pthread_join(eng[i].th, NULL);
        bench_cpu_snapshot(cpu);
        if (base_started)
            pthread_join(base.th, NULL);
        for (int k = 0; k < 2; k++)
            if (probe_started[k])
                pthread_join(pr[k].th, NULL);
        if (started != threads || !base_started)
            rc_exit = 1;
    } else {
        rc_exit = 1;
    }
    int n_after = rc_exit == 0 ? read_metrics(nc, workers, after) : 0;
    atomic_store(&col->stop, true);
    pthread_join(col->th, NULL);
    bench_sleep_ms(200); /* the last updates */
    natsSubscription_Destroy(col->upd_sub);
    col->upd_sub = NULL;
    for (int k = 0; k < 2; k++) {
        natsSubscription_Destroy(pr[k].upd_sub);
        pr[k].upd_sub = NULL;
    }
    for (int k = 0; k < 2; k++)
        natsSubscription_Destroy(echo_sub[k]);
    if (rc_exit) {
        fprintf(stderr, "bench: the mix did not run\n");
        return 1;
    }
    for (int i = 0; i < BENCH_CPU_COUNT; i++)
        cpu[i] -= cpu0[i];
    /* let the workers finish what the collector sent, for whatever runs next */
    wait_backlog(js, 60);

    /* ---- results ---- */
    opstats tot[OP_COUNT];
    memset(tot, 0, sizeof tot);
    long requests = 0;
    for (int i = 0; i < threads; i++) {
        requests += eng[i].requests;
        for (int op = 0; op < OP_COUNT; op++) {
            opstats *o = &eng[i].op[op];
            for (int l = 0; l < LV_COUNT; l++) {
                tot[op].served[l] += o->served[l];
                samples_append(&tot[op].lat[l], &o->lat[l]);
            }
            samples_append(&tot[op].all, &o->all);
            tot[op].errors += o->errors;
            if (o->errors)
                snprintf(tot[op].last_error, sizeof tot[op].last_error, "%s", o->last_error);
            opstats_free(o);
        }
    }
    for (int k = 0; k < B_COLD; k++)
        bench_samples_sort(&base.lat[k]);
    double echo50[2], echo99[2];
    for (int k = 0; k < 2; k++) {
        echo50[k] = bench_pct_ms(&base.lat[k], 50);
        echo99[k] = bench_pct_ms(&base.lat[k], 99);
    }
    double redis50 = bench_pct_ms(&base.lat[B_REDIS], 50),
           redis99 = bench_pct_ms(&base.lat[B_REDIS], 99);
    double l2_budget = echo99[0] + 2 * redis99;

    fprintf(stderr,
            "\nmix: %.1f s, engine %ld requests = %.0f/s (%d threads); collector %ld "
            "ticks = %.0f/s, %ld candles; PubAck errors %ld%s%s\n",
            secs, requests, requests / secs, threads, ticks1 - ticks0, (ticks1 - ticks0) / secs,
            candles1 - candles0, atomic_load(&col->ack_err), col->last_err[0] ? ", last: " : "",
            col->last_err);
    for (int op = 0; op < OP_COUNT; op++) {
        char sv[160], what[64];
        served_list(tot[op].served, sv, sizeof sv);
        fprintf(stderr, " %s: served_by %s; errors %ld%s%s\n", OP_NAMES[op], sv, tot[op].errors,
                tot[op].errors ? ", last: " : "", tot[op].last_error);
        snprintf(what, sizeof what, "%s all", OP_NAMES[op]);
        pct_line(what, &tot[op].all);
        for (int l = 0; l < LV_COUNT; l++)
            if (tot[op].lat[l].n) {
                snprintf(what, sizeof what, "%s %s", OP_NAMES[op], LV_NAMES[l]);
                pct_line(what, &tot[op].lat[l]);
            }
    }
    fprintf(stderr, " baseline (1 thread alongside the engine, blocks of %d; errors %ld%s%s):\n",
            block, base.errors, base.errors ? ", last: " : "", base.last_error);
    char what[64];
    snprintf(what, sizeof what, "echo %d B (candles size)", er[0].len);
    pct_line(what, &base.lat[B_ECHO_CANDLES]);
    snprintf(what, sizeof what, "echo %d B (tick size)", er[1].len);
    pct_line(what, &base.lat[B_ECHO_TICK]);
    pct_line("redis GET (16 B value)", &base.lat[B_REDIS]);

    /* L2 answers of candles.latest (same reply size): the cold series' and the engine's,
     * taken whenever they come; the gap probe's, all at an invalidating write, apart */
    opstats *cs = &base.cold_stats;
    bench_samples l2c = {0}, *l2g = &pr[1].poll.lat[LV_DF];
    samples_append(&l2c, &cs->lat[LV_DF]);
    samples_append(&l2c, &tot[OP_CANDLES].lat[LV_DF]);
    bench_samples_sort(&l2c);
    bench_samples_sort(&base.amid_get);
    bench_samples_sort(&base.amid_echo);
    double aecho99 = bench_pct_ms(&base.amid_echo, 99), aget99 = bench_pct_ms(&base.amid_get, 99);
    double l2_budget_amid = aecho99 + 2 * aget99;
    bench_samples_sort(l2g);
    if (cold_n) {
        char sv[160];
        served_list(cs->served, sv, sizeof sv);
        fprintf(stderr, " cold series (%d, in the baseline's blocks): served_by %s; errors %ld%s%s\n",
                cold_n, sv, cs->errors, cs->errors ? ", last: " : "", cs->last_error);
        for (int l = 0; l < LV_COUNT; l++)
            if (cs->lat[l].n) {
                snprintf(what, sizeof what, "cold served by %s", LV_NAMES[l]);
                pct_line(what, &cs->lat[l]);
            }
    }
    for (int k = 0; k < 2; k++) {
        probe *p = &pr[k];
        if (p->n == 0)
            continue;
        char sv[160];
        served_list(p->poll.served, sv, sizeof sv);
        fprintf(stderr,
                " %s probe (%s %s limit %d): %d candles, %d never fresh within %d s, %d "
                "without %d fresh in a row; %ld polls served_by %s; errors publish %ld "
                "poll %ld%s%s\n",
                p->name, p->sp.symbol, p->sp.tf, p->limit, p->done, p->never_fresh,
                PROBE_WAIT_MS / 1000, p->unsettled, FRESH_STREAK, p->polls, sv, p->errors,
                p->poll.errors, p->poll.errors ? ", last: " : "", p->poll.last_error);
        pct_line("PubAck (publish -> ack)", &p->ack);
        bench_samples upd = {0};
        long no_upd = 0;
        for (int i = 0; i < p->done && i < p->n; i++) {
            long long u = atomic_load(&p->upd_ns[i]);
            if (p->ack_ns[i] && u)
                bench_samples_add(&upd, u - p->ack_ns[i]);
            else if (p->ack_ns[i])
                no_upd++;
        }
        pct_line("ack -> coherence update seen", &upd);
        pct_line("ack -> first fresh answer", &p->first);
        pct_line("ack -> first of 20 fresh in a row", &p->all);
        pct_line("ack -> 20th fresh in a row", &p->last20);
        for (int l = 0; l < LV_COUNT; l++)
            if (p->poll.lat[l].n) {
                snprintf(what, sizeof what, "poll served by %s", LV_NAMES[l]);
                pct_line(what, &p->poll.lat[l]);
            }
        if (k == 0) {
            bench_note("mix staleness (%s 1h, %d candles, one per %d ms, polled limit %d during "
                       "the mix): PubAck -> coherence update on %s p50 %.2f / p99 %.2f ms "
                       "(%zu seen, %ld not seen); -> first fresh answer p50 %.2f / p99 %.2f / "
                       "max %.2f ms; -> first of %d fresh answers in a row (both workers fresh "
                       "unless the queue group picked one worker %d times running, p = 2^-%d) "
                       "p50 %.2f / p99 %.2f / max %.2f ms, 20th %.2f ms p99; %d never fresh "
                       "within %d s",
                       STALE_SYMBOL, p->done, stale_iv, STALE_LIMIT, SUBJ_UPDATE,
                       bench_pct_ms(&upd, 50), bench_pct_ms(&upd, 99), upd.n, no_upd,
                       bench_pct_ms(&p->first, 50), bench_pct_ms(&p->first, 99),
                       bench_max_ms(&p->first), FRESH_STREAK, FRESH_STREAK, FRESH_STREAK - 1,
                       bench_pct_ms(&p->all, 50), bench_pct_ms(&p->all, 99), bench_max_ms(&p->all),
                       bench_pct_ms(&p->last20, 99), p->never_fresh, PROBE_WAIT_MS / 1000);
        } else {
            bench_note("mix L2 probe (%s 1m, %s the staleness probe: a candle two periods after "
                       "the newest every %d ms, so coherence drops the L1 entry and the next "
                       "answer of each worker comes from Dragonfly): %d candles, polls served_by "
                       "%s; dragonfly-served p50 %.3f / p99 %.3f ms; PubAck -> coherence update "
                       "p50 %.2f / p99 %.2f ms; -> first fresh p50 %.2f / p99 %.2f ms",
                       GAP_SYMBOL, overlap ? "alongside" : "after", gap_iv, p->done, sv,
                       bench_pct_ms(&p->poll.lat[LV_DF], 50), bench_pct_ms(&p->poll.lat[LV_DF], 99),
                       bench_pct_ms(&upd, 50), bench_pct_ms(&upd, 99), bench_pct_ms(&p->first, 50),
                       bench_pct_ms(&p->first, 99));
        }
        bench_samples_free(&upd);
    }

    /* collector candles acked in the timed phase: PubAck -> coherence update */
    bench_samples cupd = {0};
    long cmiss = 0;
    for (int64_t i = 0; i < collector_candles * NSYM; i++) {
        long long a = atomic_load(&col->cand_ack[i]), u = atomic_load(&col->cand_upd[i]);
        if (a < timed_t0 || a > timed_t1)
            continue;
        if (u)
            bench_samples_add(&cupd, u - a);
        else
            cmiss++;
    }
    fprintf(stderr,
            " collector candles (%d per second, one per symbol, published together), "
            "%ld without an update seen:\n",
            NSYM, cmiss);
    pct_line("PubAck -> coherence update seen", &cupd);
    bench_note("mix collector candles (the %d of each second published together): PubAck -> "
               "coherence update on %s p50 %.2f / p99 %.2f / max %.2f ms over %zu candles (%ld "
               "acked without an update seen)",
               NSYM, SUBJ_UPDATE, bench_pct_ms(&cupd, 50), bench_pct_ms(&cupd, 99),
               bench_max_ms(&cupd), cupd.n, cmiss);

    /* ---- rows ---- */
    char name[64], v[64], b[64];
    for (int op = 0; op < OP_COUNT; op++) {
        long all = 0, hit = tot[op].served[LV_L1] + tot[op].served[LV_DF];
        for (int l = 0; l < LV_COUNT; l++)
            all += tot[op].served[l];
        double hr = all ? (double)hit / (double)all : 0;
        snprintf(name, sizeof name, "mix %s cache hit rate", OP_NAMES[op]);
        snprintf(v, sizeof v, "%.2f%%", 100 * hr);
        snprintf(b, sizeof b, "l1 %.2f%% + L2 %.2f%%",
                 all ? 100.0 * tot[op].served[LV_L1] / all : 0,
                 all ? 100.0 * tot[op].served[LV_DF] / all : 0);
        bench_row(name, v, b, hr / 0.95, ">= 95%", all > 0 && hr >= 0.95 && tot[op].errors == 0);
    }
    for (int op = 0; op < OP_COUNT; op++) {
        bench_samples *s = &tot[op].lat[LV_L1];
        double p99 = bench_pct_ms(s, 99);
        snprintf(name, sizeof name, "mix %s L1-hit p50 / p99", OP_NAMES[op]);
        snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(s, 50), p99);
        snprintf(b, sizeof b, "%.3f / %.3f ms echo", echo50[op], echo99[op]);
        bench_row(name, v, b, p99 / echo99[op], "<= 1.50", s->n > 0 && p99 <= 1.5 * echo99[op]);
    }
    {
        double p99 = bench_pct_ms(&l2c, 99);
        snprintf(name, sizeof name, "mix candles.latest L2-hit p50 / p99");
        snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(&l2c, 50), p99);
        snprintf(b, sizeof b, "%.3f ms = echo+2xGET", l2_budget_amid);
        bench_row(name, v, b, p99 / l2_budget_amid, "<= 1.00",
                  l2c.n >= 100 && base.amid_get.n >= 100 ? p99 <= l2_budget_amid : -1);
        snprintf(name, sizeof name, "mix L2-hit vs the block baseline");
        snprintf(b, sizeof b, "%.3f ms = echo+2xGET", l2_budget);
        bench_row(name, v, b, p99 / l2_budget, "info", -1);
        if (l2g->n > 0) {
            double g99 = bench_pct_ms(l2g, 99);
            snprintf(name, sizeof name, "mix L2-hit at an invalidating write");
            snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(l2g, 50), g99);
            bench_row(name, v, b, g99 / l2_budget, "worst case", -1);
        }
        bench_samples *t = &tot[OP_TICK].lat[LV_DF];
        double tb = echo99[1] + 2 * redis99;
        if (t->n > 0) {
            double t99 = bench_pct_ms(t, 99);
            snprintf(name, sizeof name, "mix tick.latest L2-hit p50 / p99");
            snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(t, 50), t99);
            snprintf(b, sizeof b, "%.3f ms = echo+2xGET", tb);
            bench_row(name, v, b, t99 / tb, "<= 1.00", t->n >= 100 ? t99 <= tb : -1);
        }
    }
    const char *row_names[2] = {"mix staleness: first fresh", "mix staleness: 20 fresh in a row"};
    bench_samples *row_s[2] = {&pr[0].first, &pr[0].all};
    for (int k = 0; k < 2 && stale_n > 0; k++) {
        double p99 = bench_pct_ms(row_s[k], 99);
        snprintf(v, sizeof v, "%.2f / %.2f ms", bench_pct_ms(row_s[k], 50), p99);
        bench_row(row_names[k], v, "p50 / p99 from PubAck", p99 / 50.0, "p99 < 50 ms",
                  row_s[k]->n > 0 && pr[0].never_fresh == 0 && p99 < 50.0);
    }

    /* ---- notes ---- */
    {
        char sv[OP_COUNT][160];
        for (int op = 0; op < OP_COUNT; op++)
            served_list(tot[op].served, sv[op], sizeof sv[op]);
        bench_note("mix: %.1f s timed after %d s warm-up; engine %d threads, %s requests/s "
                   "(candles.latest limit %d + tick.latest alternating, random of %s %s %s); "
                   "collector %.0f ticks/s + %ld candles (PubAck errors %ld); MARKET backlog at "
                   "the end %lld%s%s%s",
                   secs, warmup, threads, bench_thousands(requests / secs, b, sizeof b), LIMIT,
                   SYMBOLS[0], SYMBOLS[1], SYMBOLS[2], (ticks1 - ticks0) / secs,
                   candles1 - candles0, atomic_load(&col->ack_err), backlog_end,
                   backlog_detail[0] ? " (" : "", backlog_detail, backlog_detail[0] ? ")" : "");
        for (int op = 0; op < OP_COUNT; op++) {
            bench_samples *s = &tot[op].all;
            bench_note("mix %s: all answers p50 %.3f / p99 %.3f / max %.3f ms; served_by %s; "
                       "L1 p50 %.3f / p99 %.3f ms; L2 n=%zu p50 %.3f / p99 %.3f ms; errors %ld%s%s",
                       OP_NAMES[op], bench_pct_ms(s, 50), bench_pct_ms(s, 99), bench_max_ms(s),
                       sv[op], bench_pct_ms(&tot[op].lat[LV_L1], 50),
                       bench_pct_ms(&tot[op].lat[LV_L1], 99), tot[op].lat[LV_DF].n,
                       bench_pct_ms(&tot[op].lat[LV_DF], 50), bench_pct_ms(&tot[op].lat[LV_DF], 99),
                       tot[op].errors, tot[op].errors ? "; last: " : "", tot[op].last_error);
        }
        bench_note("mix baseline (1 thread, sequential, in blocks of %d alongside the engine for "
                   "the whole timed phase): echo %d B p50 %.3f / p99 %.3f ms, echo %d B p50 %.3f / "
                   "p99 %.3f ms, Redis GET p50 %.3f / p99 %.3f ms; L2 budget = echo p99 + 2 x GET "
                   "p99 = %.3f ms; candles L2 answers: %zu from the cold series + %zu from the "
                   "engine%s (and %zu from the gap probe, in their own row)",
                   block, er[0].len, echo50[0], echo99[0], er[1].len, echo50[1], echo99[1], redis50,
                   redis99, l2_budget, cs->lat[LV_DF].n, tot[OP_CANDLES].lat[LV_DF].n,
                   l2c.n < 100 ? " (under 100: no verdict)" : "", l2g->n);
        if (cold_n) {
            char sv[160];
            served_list(cs->served, sv, sizeof sv);
            bench_note("mix cold series (%d of 100 1m candles preloaded, first asked in the timed "
                       "phase, walked in order in the baseline's blocks: more than the L1's "
                       "entries, so most requests miss L1): served_by %s; dragonfly-served p50 "
                       "%.3f / p99 %.3f ms; l1-served (asked again before the LRU dropped it) p50 "
                       "%.3f / p99 %.3f ms; right after each cold request, echo %d B p50 %.3f / p99 "
                       "%.3f ms and GET p50 %.3f / p99 %.3f ms (in blocks: %.3f / %.3f and %.3f / "
                       "%.3f); L2 budget %.3f + 2 x %.3f = %.3f ms; errors %ld%s%s",
                       cold_n, sv, bench_pct_ms(&cs->lat[LV_DF], 50), bench_pct_ms(&cs->lat[LV_DF], 99),
                       bench_pct_ms(&cs->lat[LV_L1], 50), bench_pct_ms(&cs->lat[LV_L1], 99),
                       er[0].len, bench_pct_ms(&base.amid_echo, 50), aecho99,
                       bench_pct_ms(&base.amid_get, 50), aget99, echo50[0], echo99[0], redis50,
                       redis99, aecho99, aget99, l2_budget_amid,
                       cs->errors, cs->errors ? "; last: " : "", cs->last_error);
        }
    }
    if (n_after > 0) {
        char list[1024];
        size_t k = 0;
        for (int i = 0; i < n_after; i++) {
            const wmetrics *a = &after[i], *z = find_worker(before, n_before, a->worker);
            wmetrics d = *a;
            if (z) {
                d.l1_hits -= z->l1_hits, d.l1_misses -= z->l1_misses;
                d.df_hits -= z->df_hits, d.df_misses -= z->df_misses;
            }
            double l1r = ratio_or_zero(d.l1_hits, d.l1_hits + d.l1_misses);
            double dfr = ratio_or_zero(d.df_hits, d.df_hits + d.df_misses);
            double totr = ratio_or_zero(d.l1_hits + d.df_hits, d.l1_hits + d.l1_misses);
            fprintf(stderr,
                    " worker %s: timed phase: l1 %.0f hits / %.0f misses (%.2f%%), dragonfly %.0f "
                    "/ %.0f (%.2f%%), total %.2f%%; since start total_hit_rate %.4f; "
                    "get_candles p50/p95/p99 %.3f/%.3f/%.3f ms (n=%.0f), get_latest_tick "
                    "%.3f/%.3f/%.3f ms (n=%.0f); L1 entries ticks %.0f candles %.0f\n",
                    a->worker, d.l1_hits, d.l1_misses, 100 * l1r, d.df_hits, d.df_misses, 100 * dfr,
                    100 * totr, a->total_rate, a->op_p50[0], a->op_p95[0], a->op_p99[0],
                    a->op_count[0], a->op_p50[1], a->op_p95[1], a->op_p99[1], a->op_count[1],
                    a->l1_tick_entries, a->l1_candle_entries);
            if (k < sizeof list)
                k += (size_t)snprintf(list + k, sizeof list - k,
                                      "%s%s: l1 %.2f%% (%.0f/%.0f), dragonfly %.2f%% (%.0f/%.0f), "
                                      "total %.2f%%; own p50/p99 candles %.3f/%.3f, tick "
                                      "%.3f/%.3f ms",
                                      i ? "; " : "", a->worker, 100 * l1r, d.l1_hits,
                                      d.l1_hits + d.l1_misses, 100 * dfr, d.df_hits,
                                      d.df_hits + d.df_misses, 100 * totr, a->op_p50[0],
                                      a->op_p99[0], a->op_p50[1], a->op_p99[1]);
        }
        bench_note("mix dm.v1.metrics, cache counters over the timed phase (engine + probes), "
                   "latency since the worker started (server side: parse to encoded reply, "
                   "histogram buckets x1.5): %s%s",
                   list, n_after < workers ? " (not every worker answered)" : "");
    } else {
        bench_note("mix dm.v1.metrics: no worker answered after the run");
    }
    {
        char list[256];
        size_t k = 0;
        double sum = 0;
        for (int i = 0; i < BENCH_CPU_COUNT; i++) {
            sum += cpu[i];
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s %.2f", i ? ", " : "",
                                  bench_cpu_names[i], cpu[i]);
        }
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        bench_note("mix CPU seconds in the timed phase (%.1f s wall x %ld cores = %.1f available): "
                   "%s; total %.2f",
                   secs, cores, secs * (double)cores, list, sum);
    }

    int rc_final = 0;
    for (int op = 0; op < OP_COUNT; op++)
        if (tot[op].errors || tot[op].all.n == 0)
            rc_final = 1;
    if (base.errors || cs->errors || atomic_load(&col->ack_err) || col->failed)
        rc_final = 1;
    if (rc_final)
        fprintf(stderr, "bench: errors during the mix (above)\n");

    for (int op = 0; op < OP_COUNT; op++)
        opstats_free(&tot[op]);
    for (int k = 0; k < 2; k++) {
        opstats_free(&pr[k].poll);
        bench_samples_free(&pr[k].ack);
        bench_samples_free(&pr[k].first);
        bench_samples_free(&pr[k].all);
        bench_samples_free(&pr[k].last20);
        free(pr[k].upd_ns);
        free(pr[k].ack_ns);
    }
    for (int k = 0; k < B_COLD; k++)
        bench_samples_free(&base.lat[k]);
    bench_samples_free(&l2c);
    bench_samples_free(&base.amid_get);
    bench_samples_free(&base.amid_echo);
    opstats_free(cs);
    free(cold);
    bench_samples_free(&cupd);
    free(col->cand_ack);
    free(col->cand_upd);
    for (int k = 0; k < 2; k++)
        free(er[k].data);
    free(eng);
    jsCtx_Destroy(col->js);
    pthread_mutex_destroy(&col->mu);
    free(col);
    jsCtx_Destroy(js);
    redisFree(rc);
    for (int i = 0; i < threads; i++)
        natsConnection_Destroy(eng_nc[i]);
    for (int k = 0; k < 4; k++)
        natsConnection_Destroy(probe_nc[k]);
    natsConnection_Destroy(base_nc);
    natsConnection_Destroy(echo_nc);
    natsConnection_Destroy(coll_nc);
    natsConnection_Destroy(nc);
    nats_Close();
    return rc_final;
}
