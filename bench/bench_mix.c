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
 *             measured with one real request each), both from a connection that sends at
 *             once (natsOptions_SetSendAsap: the floor), the candles-size echo again from a
 *             connection with nats.c's defaults (an extra row, no verdict), a hiredis GET of a 16-byte key on
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
 * Targets (issue): cache hit rate >= 95% per operation (spec: > 85%); L1-hit p99 <= 2 x
 * the floor echo's p99 of the same reply size (both under the same load); L2-hit p99 <= echo p99 + 2 x Redis
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
#include "../worker/model/names.h"
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
#define SUBJ_UPDATE "dm.cache.v1.update"
#define SUBJ_ECHO_CANDLES "bench.mix.echo.candles"
#define SUBJ_ECHO_TICK "bench.mix.echo.tick"
#define SUBJ_ECHO_SLOW "bench.mix.echo.slow"
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

/* B_ECHO_SLOW: the candles-size echo on a connection with nats.c's defaults (its flusher
 * coalesces writes), an extra row beside the floor, never a verdict's baseline. */
enum { B_ECHO_CANDLES, B_ECHO_TICK, B_REDIS, B_ECHO_SLOW, B_COLD, B_COUNT };

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

/* k: B_ECHO_CANDLES, B_ECHO_TICK (the reply size to ask for) or B_ECHO_SLOW. */
static bool echo_once(baseline *b, int k, int64_t *rtt)
{
    natsMsg *r = NULL;
    const char *subj = k == B_ECHO_TICK ? SUBJ_ECHO_TICK
                       : k == B_ECHO_SLOW ? SUBJ_ECHO_SLOW
                                          : SUBJ_ECHO_CANDLES;
    natsStatus s = request(b->nc, subj, "{}", rtt, &r);
    bool ok = s == NATS_OK && natsMsg_GetDataLength(r) == b->echo_len[k == B_ECHO_TICK];
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

/* One poll of the probe's series; the newest open time answered, or -1 after an error. */
static int64_t probe_poll_once(probe *p, const char *body, int64_t *t_reply)
{
    natsMsg *r = NULL;
    int64_t rtt = 0;
    natsStatus s = request(p->poll_nc, SUBJ_CANDLES, body, &rtt, &r);
    *t_reply = bench_now_ns();
    p->polls++;
    if (s != NATS_OK) {
        p->poll.errors++;
        snprintf(p->poll.last_error, sizeof p->poll.last_error, "request: %s",
                 natsStatus_GetText(s));
        return -1;
    }
    rinfo ri;
    parse_reply(r, &ri);
    natsMsg_Destroy(r);
    if (ri.status != 200 || ri.level < 0 || ri.ncandles != p->limit) {
        p->poll.errors++;
        snprintf(p->poll.last_error, sizeof p->poll.last_error, "status %d: %s", ri.status,
                 ri.text);
        return -1;
    }
    p->poll.served[ri.level]++;
    bench_samples_add(&p->poll.lat[ri.level], rtt);
    bench_samples_add(&p->poll.all, rtt);
    return ri.newest;
}

/* Polls until FRESH_STREAK answers in a row hold the candle at `ts` acked at t_ack, or
 * PROBE_WAIT_MS have passed. */
static void probe_wait_fresh(probe *p, const char *body, int64_t ts, int64_t t_ack)
{
    int streak = 0;
    int64_t first = 0, streak_start = 0, give_up = t_ack + PROBE_WAIT_MS * NS_PER_MS;
    bool settled = false;
    while (!settled && bench_now_ns() < give_up) {
        int64_t t_reply;
        int64_t newest = probe_poll_once(p, body, &t_reply);
        if (newest == ts) {
            if (first == 0)
                first = t_reply;
            if (streak++ == 0)
                streak_start = t_reply;
            if (streak == FRESH_STREAK) {
                settled = true;
                bench_samples_add(&p->all, streak_start - t_ack);
                bench_samples_add(&p->last20, t_reply - t_ack);
            }
            continue;
        }
        streak = 0;
        if (newest > ts) {
            p->poll.errors++;
            snprintf(p->poll.last_error, sizeof p->poll.last_error,
                     "newest %" PRId64 " is after the candle just published (%" PRId64
                     "): another writer on %s?",
                     newest, ts, p->sp.symbol);
        }
    }
    if (first)
        bench_samples_add(&p->first, first - t_ack);
    else
        p->never_fresh++;
    if (!settled)
        p->unsettled++;
}

/* Publishes probe candle k (open time ts) and waits for its PubAck; its time, or 0. */
static int64_t probe_publish(probe *p, jsCtx *js, const char *subject, const char *token, int k,
                             int64_t ts)
{
    char buf[512], id[128];
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
        return 0;
    }
    p->ack_ns[k] = t_ack;
    bench_samples_add(&p->ack, t_ack - t_pub);
    return t_ack;
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
    char body[128], token[32], subject[96];
    candles_body(body, sizeof body, p->sp.symbol, p->sp.tf, p->limit);
    token_of(p->sp.symbol, token, sizeof token);
    snprintf(subject, sizeof subject, DM_SUBJ_CANDLE_FMT, token, p->sp.tf);
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
        int64_t t_ack = probe_publish(p, js, subject, token, k, ts);
        if (t_ack == 0)
            continue;
        probe_wait_fresh(p, body, ts, t_ack);
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

static void fill_metrics(void *ctx, int i, const char *worker, const cJSON *doc)
{
    wmetrics *m = (wmetrics *)ctx + i;
    memset(m, 0, sizeof *m);
    snprintf(m->worker, sizeof m->worker, "%s", worker);
    m->l1_hits = bench_num_at(doc, "cache", "l1", "hits");
    m->l1_misses = bench_num_at(doc, "cache", "l1", "misses");
    m->df_hits = bench_num_at(doc, "cache", "dragonfly", "hits");
    m->df_misses = bench_num_at(doc, "cache", "dragonfly", "misses");
    m->total_rate = bench_num_at(doc, "cache", "total_hit_rate", NULL);
    for (int op = 0; op < OP_COUNT; op++) {
        m->op_count[op] = bench_num_at(doc, "operations", OP_STRATEGY[op], "count");
        m->op_p50[op] = bench_num_at(doc, "operations", OP_STRATEGY[op], "p50_ms");
        m->op_p95[op] = bench_num_at(doc, "operations", OP_STRATEGY[op], "p95_ms");
        m->op_p99[op] = bench_num_at(doc, "operations", OP_STRATEGY[op], "p99_ms");
    }
    m->l1_tick_entries = bench_num_at(doc, "l1", "ticks", "entries");
    m->l1_candle_entries = bench_num_at(doc, "l1", "candles", "entries");
}

/* Asks dm.v1.metrics until `want` workers have answered (or 200 tries); returns how many. */
static int read_metrics(natsConnection *nc, int want, wmetrics *out)
{
    return bench_read_metrics(nc, want, MAX_WORKERS, fill_metrics, out);
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

typedef struct {
    int seconds, warmup, rate, threads, stale_n, stale_iv, gap_iv, block, workers, overlap,
        cold_n;
    int gap_n; /* gap probe candles: an upper bound from the run's length */
} mix_opts;

/* Everything one run holds, phase to phase. main's thread owns it; the threads it starts
 * get pointers into it and are joined before the next phase reads what they wrote. */
typedef struct {
    mix_opts o;
    /* echo_nc: SendAsap (the floor); slow_nc: nats.c's defaults (the extra row) */
    natsConnection *nc, *coll_nc, *echo_nc, *slow_nc, *base_nc, *probe_nc[4], *eng_nc[MAX_THREADS];
    redisContext *rc;
    jsCtx *js;
    int64_t collector_candles;
    series_plan eng_sp[NSYM], stale_sp, gap_sp;
    char (*cold)[COLD_SYMBOL_LEN];
    int64_t cold_newest;
    collector *col;
    int echo_len[2]; /* reply sizes: candles, tick */
    bench_echo *echo[2], *slow;
    atomic_bool stop;
    engine *eng;
    baseline base;
    wmetrics before[MAX_WORKERS], after[MAX_WORKERS];
    int n_before, n_after;
    probe pr[2];
    /* the timed phase */
    double cpu0[BENCH_CPU_COUNT], cpu[BENCH_CPU_COUNT];
    long long backlog_end;
    char backlog_detail[512];
    long ticks0, candles0, ticks1, candles1;
    double secs;
    int64_t timed_t0, timed_t1;
    /* results */
    opstats tot[OP_COUNT];
    long requests;
    double echo50[2], echo99[2], slow50, slow99, redis50, redis99, l2_budget, aecho99, aget99, l2_budget_amid;
    bench_samples l2c, *l2g, cupd;
    long cmiss;
} mix;

/* 0: run; otherwise the exit code (help or a bad option). */
static int parse_options(int argc, char **argv, mix_opts *o)
{
    *o = (mix_opts){.seconds = 20, .warmup = 3, .rate = 1000, .threads = 4, .stale_n = 200,
                    .stale_iv = 50, .gap_iv = 50, .block = 100, .workers = 2, .cold_n = 1500};
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
        case 's': o->seconds = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 'r': o->rate = atoi(optarg); break;
        case 't': o->threads = atoi(optarg); break;
        case 'n': o->stale_n = atoi(optarg); break;
        case 'i': o->stale_iv = atoi(optarg); break;
        case 'g': o->gap_iv = atoi(optarg); break;
        case 'c': o->cold_n = atoi(optarg); break;
        case 'b': o->block = atoi(optarg); break;
        case 'k': o->workers = atoi(optarg); break;
        case 'o': o->overlap = 1; break;
        default: usage(); return c == 'h' ? 0 : 64;
        }
    }
    if (o->seconds < 1 || o->seconds > 600 || o->warmup < 0 || o->warmup > 60 || o->rate < 0 ||
        o->rate > 100000 || o->threads < 1 || o->threads > MAX_THREADS || o->stale_n < 0 ||
        o->stale_n > 1000 || o->stale_iv < 1 || o->stale_iv > 10000 || o->gap_iv < 0 ||
        o->gap_iv > 10000 || o->cold_n < 0 || o->cold_n > 9999 || o->block < 1 ||
        o->workers < 1 || o->workers > MAX_WORKERS) {
        usage();
        return 64;
    }
    o->gap_n = o->gap_iv ? o->seconds * 1000 / o->gap_iv + 1 : 0;
    if (o->gap_n > 3000)
        o->gap_n = 3000;
    return -1;
}

/* One connection per role, so no role's traffic queues behind another's. */
static bool connect_all(mix *m)
{
    m->nc = bench_nats_connect("bench-mix");
    m->coll_nc = bench_nats_connect("bench-mix-collector");
    m->echo_nc = bench_nats_connect_ex("bench-mix-echo", true);
    m->slow_nc = bench_nats_connect("bench-mix-echo-default");
    m->base_nc = bench_nats_connect("bench-mix-baseline");
    static const char *const probe_names[4] = {"bench-mix-stale-pub", "bench-mix-stale-poll",
                                               "bench-mix-gap-pub", "bench-mix-gap-poll"};
    bool conn_ok = m->nc && m->coll_nc && m->echo_nc && m->slow_nc && m->base_nc;
    for (int k = 0; k < 4; k++)
        conn_ok = (m->probe_nc[k] = bench_nats_connect(probe_names[k])) != NULL && conn_ok;
    for (int i = 0; i < m->o.threads && conn_ok; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-mix-engine-%d", i + 1);
        conn_ok = (m->eng_nc[i] = bench_nats_connect(name)) != NULL;
    }
    m->rc = bench_redis_connect();
    if (!conn_ok || m->rc == NULL)
        return false;
    redisReply *rr = redisCommand(m->rc, "SET %s %s", REDIS_KEY, REDIS_VALUE);
    bool redis_ok = rr && rr->type == REDIS_REPLY_STATUS;
    freeReplyObject(rr);
    if (!redis_ok) {
        fprintf(stderr, "bench: Redis SET %s failed\n", REDIS_KEY);
        return false;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    natsStatus st = natsConnection_JetStream(&m->js, m->nc, &jo);
    if (st != NATS_OK)
        return bench_nats_fail("JetStream", st), false;
    return true;
}

/* Where each series starts: after whatever earlier runs stored. */
static bool plan_series(mix *m)
{
    m->collector_candles = m->o.warmup + m->o.seconds + 120; /* 1 per second, with slack */
    for (int i = 0; i < NSYM; i++) {
        m->eng_sp[i] = (series_plan){.symbol = SYMBOLS[i], .tf = "1m", .tf_ms = MIN_MS};
        if (!plan(m->nc, &m->eng_sp[i], 10 * DAY_MS, PRELOAD + m->collector_candles))
            return false;
    }
    /* one base for the three, so the collector's 3 candles of a second share a minute and
     * travel together (as a real feed publishes a closed minute for all its symbols) */
    for (int i = 1; i < NSYM; i++)
        if (m->eng_sp[i].base > m->eng_sp[0].base)
            m->eng_sp[0].base = m->eng_sp[i].base;
    for (int i = 1; i < NSYM; i++)
        m->eng_sp[i].base = m->eng_sp[0].base;
    m->stale_sp = (series_plan){.symbol = STALE_SYMBOL, .tf = "1h", .tf_ms = HOUR_MS};
    m->gap_sp = (series_plan){.symbol = GAP_SYMBOL, .tf = "1m", .tf_ms = MIN_MS};
    return plan(m->nc, &m->stale_sp, 365 * DAY_MS, PRELOAD + m->o.stale_n) &&
           (!m->o.gap_n || plan(m->nc, &m->gap_sp, 10 * DAY_MS, PRELOAD + 2LL * m->o.gap_n));
}

static bool preload_cold(mix *m)
{
    int cold_n = m->o.cold_n;
    if ((m->cold = calloc((size_t)cold_n, sizeof *m->cold)) == NULL)
        return false;
    cold_names(m->cold, cold_n);
    series_plan cp = {.tf = "1m", .tf_ms = MIN_MS,
                      .base = (wall_ms() - 10 * DAY_MS) / MIN_MS * MIN_MS};
    m->cold_newest = cp.base + (LIMIT - 1) * MIN_MS;
    fprintf(stderr, "mix: preloading %d cold series (%s .. %s), %d 1m candles each\n", cold_n,
            m->cold[0], m->cold[cold_n - 1], LIMIT);
    bool ok = true;
    for (int i = 0; i < cold_n && ok; i++) {
        cp.symbol = m->cold[i];
        ok = preload_n(m->js, &cp, LIMIT);
    }
    return ok;
}

/* Preloads every series and waits until both workers answer them fresh. */
static bool preload_all(mix *m)
{
    fprintf(stderr, "mix: preloading %d 1m candles for %s %s %s, %d 1h for %s%s%s\n", PRELOAD,
            SYMBOLS[0], SYMBOLS[1], SYMBOLS[2], PRELOAD, STALE_SYMBOL,
            m->o.gap_n ? ", 1m for " : "", m->o.gap_n ? GAP_SYMBOL : "");
    bool ok = true;
    for (int i = 0; i < NSYM && ok; i++)
        ok = preload(m->js, &m->eng_sp[i]);
    if (ok)
        ok = preload(m->js, &m->stale_sp);
    if (ok && m->o.gap_n)
        ok = preload(m->js, &m->gap_sp);
    if (ok && m->o.cold_n)
        ok = preload_cold(m);
    if (!ok || !wait_backlog(m->js, 120) ||
        (m->o.cold_n && !cold_in_dragonfly(m->rc, m->cold, m->o.cold_n)))
        return false;
    /* Every worker fills its L1 on its first miss: 40 fresh answers in a row reach both. */
    for (int i = 0; i < NSYM && ok; i++)
        ok = wait_fresh(m->nc, SYMBOLS[i], "1m", LIMIT,
                        m->eng_sp[i].base + (PRELOAD - 1) * MIN_MS, 40, 30);
    if (ok)
        ok = wait_fresh(m->nc, STALE_SYMBOL, "1h", STALE_LIMIT,
                        m->stale_sp.base + (PRELOAD - 1) * HOUR_MS, 40, 30);
    if (ok && m->o.gap_n)
        ok = wait_fresh(m->nc, GAP_SYMBOL, "1m", LIMIT, m->gap_sp.base + (PRELOAD - 1) * MIN_MS,
                        40, 30);
    return ok;
}

/* false: a setup failure that ends the run at once. */
static bool start_collector(mix *m)
{
    collector *col = m->col = calloc(1, sizeof *col);
    if (col == NULL)
        return false;
    col->nc = m->coll_nc;
    col->rate = m->o.rate;
    pthread_mutex_init(&col->mu, NULL);
    for (int i = 0; i < NSYM; i++)
        col->candle_ts[i] = m->eng_sp[i].base + PRELOAD * MIN_MS;
    col->first_candle_ts = col->candle_ts[0];
    col->max_candles = (int)m->collector_candles;
    col->cand_ack = calloc((size_t)m->collector_candles * NSYM, sizeof *col->cand_ack);
    col->cand_upd = calloc((size_t)m->collector_candles * NSYM, sizeof *col->cand_upd);
    if (!col->cand_ack || !col->cand_upd)
        return false;
    for (int64_t i = 0; i < m->collector_candles * NSYM; i++) {
        atomic_init(&col->cand_ack[i], 0);
        atomic_init(&col->cand_upd[i], 0);
    }
    natsStatus st;
    if ((st = natsConnection_Subscribe(&col->upd_sub, m->coll_nc, SUBJ_UPDATE,
                                       on_collector_update, col)) != NATS_OK ||
        (st = natsConnection_Flush(m->coll_nc)) != NATS_OK)
        return bench_nats_fail("subscribe " SUBJ_UPDATE, st), false;
    jsOptions cjo;
    jsOptions_Init(&cjo);
    cjo.Wait = 10000;
    cjo.PublishAsync.MaxPending = PUB_MAX_PENDING;
    cjo.PublishAsync.AckHandler = on_ack;
    cjo.PublishAsync.AckHandlerClosure = col;
    cjo.PublishAsync.StallWait = 10000;
    if ((st = natsConnection_JetStream(&col->js, m->coll_nc, &cjo)) != NATS_OK)
        return bench_nats_fail("collector JetStream", st), false;
    if (pthread_create(&col->th, NULL, collector_run, col) != 0)
        return false;
    fprintf(stderr, "mix: collector started (%d ticks/s over 3 symbols, 1 candle/s each)\n",
            m->o.rate);
    return true;
}

/* tick.latest answers once the collector's first ticks are in. */
static bool wait_ticks(mix *m)
{
    bool ok = true;
    int64_t deadline = bench_now_ns() + 30 * NS_PER_S;
    for (int i = 0; i < NSYM && ok; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"symbol\":\"%s\"}", SYMBOLS[i]);
        rinfo ri;
        while (!(ok = ask(m->nc, SUBJ_TICK, body, &ri)) && bench_now_ns() < deadline)
            bench_sleep_ms(20);
        if (!ok)
            fprintf(stderr, "bench: tick.latest %s: %s\n", SYMBOLS[i], ri.text);
    }
    return ok;
}

/* The echo responder answers with as many bytes as the real replies. */
static bool start_echo(mix *m)
{
    char body[128];
    rinfo ri;
    candles_body(body, sizeof body, SYMBOLS[0], "1m", LIMIT);
    bool ok = ask(m->nc, SUBJ_CANDLES, body, &ri);
    m->echo_len[0] = ri.len;
    snprintf(body, sizeof body, "{\"symbol\":\"%s\"}", SYMBOLS[0]);
    ok = ok && ask(m->nc, SUBJ_TICK, body, &ri);
    m->echo_len[1] = ri.len;
    ok = ok && m->echo_len[0] > 0 && m->echo_len[1] > 0;
    for (int k = 0; k < 2 && ok; k++)
        ok = (m->echo[k] = bench_echo_start(m->echo_nc, k ? SUBJ_ECHO_TICK : SUBJ_ECHO_CANDLES,
                                            m->echo_len[k], DM_CT_JSON)) != NULL;
    ok = ok && (m->slow = bench_echo_start(m->slow_nc, SUBJ_ECHO_SLOW, m->echo_len[0],
                                           DM_CT_JSON)) != NULL;
    if (!ok)
        fprintf(stderr, "bench: sizing or starting the echo failed\n");
    return ok;
}

/* Starts the engine threads (seed: their first random state); returns how many started. */
static int start_engines(mix *m, bool record, unsigned seed, unsigned seed_step)
{
    int started = 0;
    for (int i = 0; i < m->o.threads; i++) {
        m->eng[i] = (engine){.nc = m->eng_nc[i], .stop = &m->stop, .record = record,
                             .seed = seed + (unsigned)i * seed_step};
        if (pthread_create(&m->eng[i].th, NULL, engine_run, &m->eng[i]) == 0)
            started++;
    }
    return started;
}

/* Untimed: the engine, then the baseline's paths (not the cold series: first asked when
 * timed). */
static bool warm_up(mix *m)
{
    int threads = m->o.threads;
    if (m->o.warmup > 0) {
        fprintf(stderr, "mix: warm-up %d s, %d engine threads\n", m->o.warmup, threads);
        int started = start_engines(m, false, 1234u, 1u);
        bench_sleep_ms(m->o.warmup * 1000);
        atomic_store(&m->stop, true);
        for (int i = 0; i < started; i++)
            pthread_join(m->eng[i].th, NULL);
        for (int i = 0; i < threads; i++)
            for (int op = 0; op < OP_COUNT; op++) {
                if (m->eng[i].op[op].errors)
                    fprintf(stderr, "mix: warm-up %s errors %ld, last: %s\n", OP_NAMES[op],
                            m->eng[i].op[op].errors, m->eng[i].op[op].last_error);
                opstats_free(&m->eng[i].op[op]);
            }
        if (started != threads)
            return false;
    }
    return true;
}

static void init_baseline(mix *m, bool warm)
{
    m->base = (baseline){.nc = m->base_nc, .rc = m->rc, .stop = &m->stop, .block = m->o.block,
                         .echo_len = {m->echo_len[0], m->echo_len[1]}, .cold = m->cold,
                         .n_cold = m->o.cold_n, .cold_newest = m->cold_newest};
    if (warm)
        for (int k = 0; k < B_COLD; k++)
            for (int i = 0; i < 200; i++)
                baseline_one(&m->base, k, false);
    m->base.errors = 0;
}

static bool setup_probes(mix *m)
{
    probe *pr = m->pr;
    memset(pr, 0, sizeof m->pr);
    pr[0] = (probe){.name = "staleness", .sp = m->stale_sp, .limit = STALE_LIMIT, .step = 1,
                    .first_ts = m->stale_sp.base + PRELOAD * HOUR_MS, .n = m->o.stale_n,
                    .interval_ms = m->o.stale_iv, .pub_nc = m->probe_nc[0],
                    .poll_nc = m->probe_nc[1], .stop = &m->stop};
    pr[1] = (probe){.name = "gap (L2)", .sp = m->gap_sp, .limit = LIMIT, .step = 2,
                    .first_ts = m->gap_sp.base + (PRELOAD + 1) * MIN_MS, .n = m->o.gap_n,
                    .interval_ms = m->o.gap_iv ? m->o.gap_iv : 1, .pub_nc = m->probe_nc[2],
                    .poll_nc = m->probe_nc[3], .stop = &m->stop};
    atomic_init(&pr[0].finished, false);
    atomic_init(&pr[1].finished, false);
    if (!m->o.overlap && m->o.stale_n > 0)
        pr[1].start_after = &pr[0].finished;
    bool ok = true;
    for (int k = 0; k < 2 && ok; k++) {
        int n = pr[k].n > 0 ? pr[k].n : 1;
        pr[k].upd_ns = calloc((size_t)n, sizeof *pr[k].upd_ns);
        pr[k].ack_ns = calloc((size_t)n, sizeof *pr[k].ack_ns);
        ok = pr[k].upd_ns && pr[k].ack_ns;
        if (ok && pr[k].n > 0) {
            for (int i = 0; i < n; i++)
                atomic_init(&pr[k].upd_ns[i], 0);
            natsStatus st = natsConnection_Subscribe(&pr[k].upd_sub, pr[k].pub_nc, SUBJ_UPDATE,
                                                     on_update, &pr[k]);
            ok = st == NATS_OK && natsConnection_Flush(pr[k].pub_nc) == NATS_OK;
        }
    }
    return ok;
}

/* The engine, the baseline and the probes together for --seconds; false if a thread did
 * not start. */
static bool run_timed(mix *m)
{
    const mix_opts *o = &m->o;
    fprintf(stderr,
            "mix: timed phase %d s: %d engine threads, baseline, staleness probe (%d "
            "candles every %d ms), %s gap probe (one every %d ms)\n",
            o->seconds, o->threads, o->stale_n, o->stale_iv, o->overlap ? "with it" : "then",
            o->gap_iv);
    atomic_store(&m->stop, false);
    bench_cpu_snapshot(m->cpu0);
    m->ticks0 = atomic_load(&m->col->ticks);
    m->candles0 = atomic_load(&m->col->candles);
    int64_t t0 = m->timed_t0 = bench_now_ns();
    int started = start_engines(m, true, 777u, 31u);
    bool base_started = pthread_create(&m->base.th, NULL, baseline_run, &m->base) == 0;
    bool probe_started[2] = {false, false};
    for (int k = 0; k < 2; k++)
        if (m->pr[k].n > 0)
            probe_started[k] = pthread_create(&m->pr[k].th, NULL, probe_run, &m->pr[k]) == 0;
    while (bench_now_ns() < t0 + (int64_t)o->seconds * NS_PER_S)
        bench_sleep_ms(100);
    m->backlog_end = market_backlog(m->js, m->backlog_detail, sizeof m->backlog_detail);
    m->ticks1 = atomic_load(&m->col->ticks);
    m->candles1 = atomic_load(&m->col->candles);
    atomic_store(&m->stop, true);
    m->timed_t1 = bench_now_ns();
    m->secs = (double)(m->timed_t1 - t0) / 1e9;
    for (int i = 0; i < started; i++)
        pthread_join(m->eng[i].th, NULL);
    bench_cpu_snapshot(m->cpu);
    if (base_started)
        pthread_join(m->base.th, NULL);
    for (int k = 0; k < 2; k++)
        if (probe_started[k])
            pthread_join(m->pr[k].th, NULL);
    return started == o->threads && base_started;
}

/* Stops the collector and the subscriptions; reads the workers' metrics first if the run
 * went through. */
static void stop_all(mix *m, bool ran)
{
    m->n_after = ran ? read_metrics(m->nc, m->o.workers, m->after) : 0;
    atomic_store(&m->col->stop, true);
    pthread_join(m->col->th, NULL);
    bench_sleep_ms(200); /* the last updates */
    natsSubscription_Destroy(m->col->upd_sub);
    m->col->upd_sub = NULL;
    for (int k = 0; k < 2; k++) {
        natsSubscription_Destroy(m->pr[k].upd_sub);
        m->pr[k].upd_sub = NULL;
    }
    for (int k = 0; k < 2; k++) {
        bench_echo_stop(m->echo[k]);
        m->echo[k] = NULL;
    }
    bench_echo_stop(m->slow);
    m->slow = NULL;
}

/* The engine threads' figures merged, the baselines' percentiles and the L2 samples. */
static void gather(mix *m)
{
    for (int i = 0; i < BENCH_CPU_COUNT; i++)
        m->cpu[i] -= m->cpu0[i];
    for (int i = 0; i < m->o.threads; i++) {
        m->requests += m->eng[i].requests;
        for (int op = 0; op < OP_COUNT; op++) {
            opstats *o = &m->eng[i].op[op], *t = &m->tot[op];
            for (int l = 0; l < LV_COUNT; l++) {
                t->served[l] += o->served[l];
                samples_append(&t->lat[l], &o->lat[l]);
            }
            samples_append(&t->all, &o->all);
            t->errors += o->errors;
            if (o->errors)
                snprintf(t->last_error, sizeof t->last_error, "%s", o->last_error);
            opstats_free(o);
        }
    }
    baseline *base = &m->base;
    for (int k = 0; k < B_COLD; k++)
        bench_samples_sort(&base->lat[k]);
    for (int k = 0; k < 2; k++) {
        m->echo50[k] = bench_pct_ms(&base->lat[k], 50);
        m->echo99[k] = bench_pct_ms(&base->lat[k], 99);
    }
    m->slow50 = bench_pct_ms(&base->lat[B_ECHO_SLOW], 50);
    m->slow99 = bench_pct_ms(&base->lat[B_ECHO_SLOW], 99);
    m->redis50 = bench_pct_ms(&base->lat[B_REDIS], 50);
    m->redis99 = bench_pct_ms(&base->lat[B_REDIS], 99);
    m->l2_budget = m->echo99[0] + 2 * m->redis99;
    /* L2 answers of candles.latest (same reply size): the cold series' and the engine's,
     * taken whenever they come; the gap probe's, all at an invalidating write, apart */
    m->l2g = &m->pr[1].poll.lat[LV_DF];
    samples_append(&m->l2c, &base->cold_stats.lat[LV_DF]);
    samples_append(&m->l2c, &m->tot[OP_CANDLES].lat[LV_DF]);
    bench_samples_sort(&m->l2c);
    bench_samples_sort(&base->amid_get);
    bench_samples_sort(&base->amid_echo);
    m->aecho99 = bench_pct_ms(&base->amid_echo, 99);
    m->aget99 = bench_pct_ms(&base->amid_get, 99);
    m->l2_budget_amid = m->aecho99 + 2 * m->aget99;
    bench_samples_sort(m->l2g);
}

static void report_engine(mix *m)
{
    const collector *col = m->col;
    fprintf(stderr,
            "\nmix: %.1f s, engine %ld requests = %.0f/s (%d threads); collector %ld "
            "ticks = %.0f/s, %ld candles; PubAck errors %ld%s%s\n",
            m->secs, m->requests, m->requests / m->secs, m->o.threads, m->ticks1 - m->ticks0,
            (m->ticks1 - m->ticks0) / m->secs, m->candles1 - m->candles0,
            atomic_load(&col->ack_err), col->last_err[0] ? ", last: " : "", col->last_err);
    for (int op = 0; op < OP_COUNT; op++) {
        opstats *t = &m->tot[op];
        char sv[160], what[64];
        served_list(t->served, sv, sizeof sv);
        fprintf(stderr, " %s: served_by %s; errors %ld%s%s\n", OP_NAMES[op], sv, t->errors,
                t->errors ? ", last: " : "", t->last_error);
        snprintf(what, sizeof what, "%s all", OP_NAMES[op]);
        pct_line(what, &t->all);
        for (int l = 0; l < LV_COUNT; l++)
            if (t->lat[l].n) {
                snprintf(what, sizeof what, "%s %s", OP_NAMES[op], LV_NAMES[l]);
                pct_line(what, &t->lat[l]);
            }
    }
}

static void report_baseline(mix *m)
{
    baseline *base = &m->base;
    fprintf(stderr, " baseline (1 thread alongside the engine, blocks of %d; errors %ld%s%s):\n",
            m->o.block, base->errors, base->errors ? ", last: " : "", base->last_error);
    char what[64];
    snprintf(what, sizeof what, "echo %d B (candles size)", m->echo_len[0]);
    pct_line(what, &base->lat[B_ECHO_CANDLES]);
    snprintf(what, sizeof what, "echo %d B (tick size)", m->echo_len[1]);
    pct_line(what, &base->lat[B_ECHO_TICK]);
    pct_line("redis GET (16 B value)", &base->lat[B_REDIS]);
    snprintf(what, sizeof what, "slow echo %d B (default conn)", m->echo_len[0]);
    pct_line(what, &base->lat[B_ECHO_SLOW]);
    opstats *cs = &base->cold_stats;
    if (m->o.cold_n) {
        char sv[160];
        served_list(cs->served, sv, sizeof sv);
        fprintf(stderr, " cold series (%d, in the baseline's blocks): served_by %s; errors %ld%s%s\n",
                m->o.cold_n, sv, cs->errors, cs->errors ? ", last: " : "", cs->last_error);
        for (int l = 0; l < LV_COUNT; l++)
            if (cs->lat[l].n) {
                snprintf(what, sizeof what, "cold served by %s", LV_NAMES[l]);
                pct_line(what, &cs->lat[l]);
            }
    }
}

/* PubAck -> coherence update of the probe's candles; *no_upd: acked without one seen. */
static void probe_updates(const probe *p, bench_samples *upd, long *no_upd)
{
    *no_upd = 0;
    for (int i = 0; i < p->done && i < p->n; i++) {
        long long u = atomic_load(&p->upd_ns[i]);
        if (p->ack_ns[i] && u)
            bench_samples_add(upd, u - p->ack_ns[i]);
        else if (p->ack_ns[i])
            (*no_upd)++;
    }
}

static void print_probe(probe *p, bench_samples *upd)
{
    char sv[160], what[64];
    served_list(p->poll.served, sv, sizeof sv);
    fprintf(stderr,
            " %s probe (%s %s limit %d): %d candles, %d never fresh within %d s, %d "
            "without %d fresh in a row; %ld polls served_by %s; errors publish %ld "
            "poll %ld%s%s\n",
            p->name, p->sp.symbol, p->sp.tf, p->limit, p->done, p->never_fresh,
            PROBE_WAIT_MS / 1000, p->unsettled, FRESH_STREAK, p->polls, sv, p->errors,
            p->poll.errors, p->poll.errors ? ", last: " : "", p->poll.last_error);
    pct_line("PubAck (publish -> ack)", &p->ack);
    pct_line("ack -> coherence update seen", upd);
    pct_line("ack -> first fresh answer", &p->first);
    pct_line("ack -> first of 20 fresh in a row", &p->all);
    pct_line("ack -> 20th fresh in a row", &p->last20);
    for (int l = 0; l < LV_COUNT; l++)
        if (p->poll.lat[l].n) {
            snprintf(what, sizeof what, "poll served by %s", LV_NAMES[l]);
            pct_line(what, &p->poll.lat[l]);
        }
}

static void note_staleness(const mix *m, probe *p, bench_samples *upd, long no_upd)
{
    bench_note("mix staleness (%s 1h, %d candles, one per %d ms, polled limit %d during "
               "the mix): PubAck -> coherence update on %s p50 %.2f / p99 %.2f ms "
               "(%zu seen, %ld not seen); -> first fresh answer p50 %.2f / p99 %.2f / "
               "max %.2f ms; -> first of %d fresh answers in a row (both workers fresh "
               "unless the queue group picked one worker %d times running, p = 2^-%d) "
               "p50 %.2f / p99 %.2f / max %.2f ms, 20th %.2f ms p99; %d never fresh "
               "within %d s",
               STALE_SYMBOL, p->done, m->o.stale_iv, STALE_LIMIT, SUBJ_UPDATE,
               bench_pct_ms(upd, 50), bench_pct_ms(upd, 99), upd->n, no_upd,
               bench_pct_ms(&p->first, 50), bench_pct_ms(&p->first, 99),
               bench_max_ms(&p->first), FRESH_STREAK, FRESH_STREAK, FRESH_STREAK - 1,
               bench_pct_ms(&p->all, 50), bench_pct_ms(&p->all, 99), bench_max_ms(&p->all),
               bench_pct_ms(&p->last20, 99), p->never_fresh, PROBE_WAIT_MS / 1000);
}

static void note_gap(const mix *m, probe *p, bench_samples *upd)
{
    char sv[160];
    served_list(p->poll.served, sv, sizeof sv);
    bench_note("mix L2 probe (%s 1m, %s the staleness probe: a candle two periods after "
               "the newest every %d ms, so coherence drops the L1 entry and the next "
               "answer of each worker comes from Dragonfly): %d candles, polls served_by "
               "%s; dragonfly-served p50 %.3f / p99 %.3f ms; PubAck -> coherence update "
               "p50 %.2f / p99 %.2f ms; -> first fresh p50 %.2f / p99 %.2f ms",
               GAP_SYMBOL, m->o.overlap ? "alongside" : "after", m->o.gap_iv, p->done, sv,
               bench_pct_ms(&p->poll.lat[LV_DF], 50), bench_pct_ms(&p->poll.lat[LV_DF], 99),
               bench_pct_ms(upd, 50), bench_pct_ms(upd, 99), bench_pct_ms(&p->first, 50),
               bench_pct_ms(&p->first, 99));
}

static void report_probes(mix *m)
{
    for (int k = 0; k < 2; k++) {
        probe *p = &m->pr[k];
        if (p->n == 0)
            continue;
        bench_samples upd = {0};
        long no_upd;
        probe_updates(p, &upd, &no_upd);
        print_probe(p, &upd);
        if (k == 0)
            note_staleness(m, p, &upd, no_upd);
        else
            note_gap(m, p, &upd);
        bench_samples_free(&upd);
    }
}

/* The collector's candles acked in the timed phase: PubAck -> coherence update. */
static void report_collector_candles(mix *m)
{
    const collector *col = m->col;
    for (int64_t i = 0; i < m->collector_candles * NSYM; i++) {
        long long a = atomic_load(&col->cand_ack[i]), u = atomic_load(&col->cand_upd[i]);
        if (a < m->timed_t0 || a > m->timed_t1)
            continue;
        if (u)
            bench_samples_add(&m->cupd, u - a);
        else
            m->cmiss++;
    }
    fprintf(stderr,
            " collector candles (%d per second, one per symbol, published together), "
            "%ld without an update seen:\n",
            NSYM, m->cmiss);
    pct_line("PubAck -> coherence update seen", &m->cupd);
    bench_note("mix collector candles (the %d of each second published together): PubAck -> "
               "coherence update on %s p50 %.2f / p99 %.2f / max %.2f ms over %zu candles (%ld "
               "acked without an update seen)",
               NSYM, SUBJ_UPDATE, bench_pct_ms(&m->cupd, 50), bench_pct_ms(&m->cupd, 99),
               bench_max_ms(&m->cupd), m->cupd.n, m->cmiss);
}

static void rows_per_op(mix *m)
{
    char name[64], v[64], b[64];
    for (int op = 0; op < OP_COUNT; op++) {
        const opstats *t = &m->tot[op];
        long all = 0, hit = t->served[LV_L1] + t->served[LV_DF];
        for (int l = 0; l < LV_COUNT; l++)
            all += t->served[l];
        double hr = all ? (double)hit / (double)all : 0;
        snprintf(name, sizeof name, "mix %s cache hit rate", OP_NAMES[op]);
        snprintf(v, sizeof v, "%.2f%%", 100 * hr);
        snprintf(b, sizeof b, "l1 %.2f%% + L2 %.2f%%", all ? 100.0 * t->served[LV_L1] / all : 0,
                 all ? 100.0 * t->served[LV_DF] / all : 0);
        bench_row(name, v, b, hr / 0.95, ">= 95%", all > 0 && hr >= 0.95 && t->errors == 0);
    }
    for (int op = 0; op < OP_COUNT; op++) {
        bench_samples *s = &m->tot[op].lat[LV_L1];
        double p99 = bench_pct_ms(s, 99), e99 = m->echo99[op];
        snprintf(name, sizeof name, "mix %s L1-hit p50 / p99", OP_NAMES[op]);
        snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(s, 50), p99);
        snprintf(b, sizeof b, "%.3f / %.3f ms floor echo", m->echo50[op], e99);
        bench_row(name, v, b, p99 / e99, "<= 2.00", s->n > 0 && p99 <= 2.0 * e99);
    }
    bench_samples *c1 = &m->tot[OP_CANDLES].lat[LV_L1];
    snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(c1, 50), bench_pct_ms(c1, 99));
    snprintf(b, sizeof b, "%.3f / %.3f ms slow echo", m->slow50, m->slow99);
    bench_row("mix candles L1 vs default-conn echo", v, b, bench_pct_ms(c1, 99) / m->slow99,
              "info", -1);
}

static void rows_l2(mix *m)
{
    char name[64], v[64], b[64];
    double p99 = bench_pct_ms(&m->l2c, 99);
    snprintf(name, sizeof name, "mix candles.latest L2-hit p50 / p99");
    snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(&m->l2c, 50), p99);
    snprintf(b, sizeof b, "%.3f ms = echo+2xGET", m->l2_budget_amid);
    bench_row(name, v, b, p99 / m->l2_budget_amid, "<= 1.00",
              m->l2c.n >= 100 && m->base.amid_get.n >= 100 ? p99 <= m->l2_budget_amid : -1);
    snprintf(name, sizeof name, "mix L2-hit vs the block baseline");
    snprintf(b, sizeof b, "%.3f ms = echo+2xGET", m->l2_budget);
    bench_row(name, v, b, p99 / m->l2_budget, "info", -1);
    if (m->l2g->n > 0) {
        double g99 = bench_pct_ms(m->l2g, 99);
        snprintf(name, sizeof name, "mix L2-hit at an invalidating write");
        snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(m->l2g, 50), g99);
        bench_row(name, v, b, g99 / m->l2_budget, "worst case", -1);
    }
    bench_samples *t = &m->tot[OP_TICK].lat[LV_DF];
    double tb = m->echo99[1] + 2 * m->redis99;
    if (t->n > 0) {
        double t99 = bench_pct_ms(t, 99);
        snprintf(name, sizeof name, "mix tick.latest L2-hit p50 / p99");
        snprintf(v, sizeof v, "%.3f / %.3f ms", bench_pct_ms(t, 50), t99);
        snprintf(b, sizeof b, "%.3f ms = echo+2xGET", tb);
        bench_row(name, v, b, t99 / tb, "<= 1.00", t->n >= 100 ? t99 <= tb : -1);
    }
}

static void rows_staleness(mix *m)
{
    const char *row_names[2] = {"mix staleness: first fresh", "mix staleness: 20 fresh in a row"};
    bench_samples *row_s[2] = {&m->pr[0].first, &m->pr[0].all};
    char v[64];
    for (int k = 0; k < 2 && m->o.stale_n > 0; k++) {
        double p99 = bench_pct_ms(row_s[k], 99);
        snprintf(v, sizeof v, "%.2f / %.2f ms", bench_pct_ms(row_s[k], 50), p99);
        bench_row(row_names[k], v, "p50 / p99 from PubAck", p99 / 50.0, "p99 < 50 ms",
                  row_s[k]->n > 0 && m->pr[0].never_fresh == 0 && p99 < 50.0);
    }
}

static void notes_engine(mix *m)
{
    char b[64], sv[OP_COUNT][160];
    for (int op = 0; op < OP_COUNT; op++)
        served_list(m->tot[op].served, sv[op], sizeof sv[op]);
    bench_note("mix: %.1f s timed after %d s warm-up; engine %d threads, %s requests/s "
               "(candles.latest limit %d + tick.latest alternating, random of %s %s %s); "
               "collector %.0f ticks/s + %ld candles (PubAck errors %ld); MARKET backlog at "
               "the end %lld%s%s%s",
               m->secs, m->o.warmup, m->o.threads,
               bench_thousands(m->requests / m->secs, b, sizeof b), LIMIT, SYMBOLS[0],
               SYMBOLS[1], SYMBOLS[2], (m->ticks1 - m->ticks0) / m->secs,
               m->candles1 - m->candles0, atomic_load(&m->col->ack_err), m->backlog_end,
               m->backlog_detail[0] ? " (" : "", m->backlog_detail,
               m->backlog_detail[0] ? ")" : "");
    for (int op = 0; op < OP_COUNT; op++) {
        opstats *t = &m->tot[op];
        bench_samples *s = &t->all;
        bench_note("mix %s: all answers p50 %.3f / p99 %.3f / max %.3f ms; served_by %s; "
                   "L1 p50 %.3f / p99 %.3f ms; L2 n=%zu p50 %.3f / p99 %.3f ms; errors %ld%s%s",
                   OP_NAMES[op], bench_pct_ms(s, 50), bench_pct_ms(s, 99), bench_max_ms(s),
                   sv[op], bench_pct_ms(&t->lat[LV_L1], 50), bench_pct_ms(&t->lat[LV_L1], 99),
                   t->lat[LV_DF].n, bench_pct_ms(&t->lat[LV_DF], 50),
                   bench_pct_ms(&t->lat[LV_DF], 99), t->errors, t->errors ? "; last: " : "",
                   t->last_error);
    }
}

static void notes_baseline(mix *m)
{
    baseline *base = &m->base;
    opstats *cs = &base->cold_stats;
    bench_note("mix baseline (1 thread, sequential, in blocks of %d alongside the engine for "
               "the whole timed phase): echo %d B p50 %.3f / p99 %.3f ms, echo %d B p50 %.3f / "
               "p99 %.3f ms, Redis GET p50 %.3f / p99 %.3f ms; L2 budget = echo p99 + 2 x GET "
               "p99 = %.3f ms; candles L2 answers: %zu from the cold series + %zu from the "
               "engine%s (and %zu from the gap probe, in their own row)",
               m->o.block, m->echo_len[0], m->echo50[0], m->echo99[0], m->echo_len[1], m->echo50[1],
               m->echo99[1], m->redis50, m->redis99, m->l2_budget, cs->lat[LV_DF].n,
               m->tot[OP_CANDLES].lat[LV_DF].n, m->l2c.n < 100 ? " (under 100: no verdict)" : "",
               m->l2g->n);
    if (!m->o.cold_n)
        return;
    char sv[160];
    served_list(cs->served, sv, sizeof sv);
    bench_note("mix cold series (%d of 100 1m candles preloaded, first asked in the timed "
               "phase, walked in order in the baseline's blocks: more than the L1's "
               "entries, so most requests miss L1): served_by %s; dragonfly-served p50 "
               "%.3f / p99 %.3f ms; l1-served (asked again before the LRU dropped it) p50 "
               "%.3f / p99 %.3f ms; right after each cold request, echo %d B p50 %.3f / p99 "
               "%.3f ms and GET p50 %.3f / p99 %.3f ms (in blocks: %.3f / %.3f and %.3f / "
               "%.3f); L2 budget %.3f + 2 x %.3f = %.3f ms; errors %ld%s%s",
               m->o.cold_n, sv, bench_pct_ms(&cs->lat[LV_DF], 50),
               bench_pct_ms(&cs->lat[LV_DF], 99), bench_pct_ms(&cs->lat[LV_L1], 50),
               bench_pct_ms(&cs->lat[LV_L1], 99), m->echo_len[0],
               bench_pct_ms(&base->amid_echo, 50), m->aecho99, bench_pct_ms(&base->amid_get, 50),
               m->aget99, m->echo50[0], m->echo99[0], m->redis50, m->redis99, m->aecho99,
               m->aget99, m->l2_budget_amid, cs->errors, cs->errors ? "; last: " : "",
               cs->last_error);
}

/* One worker's cache counters over the timed phase (after - before) and its latencies. */
static size_t note_worker(const mix *m, int i, char *list, size_t cap)
{
    const wmetrics *a = &m->after[i], *z = find_worker(m->before, m->n_before, a->worker);
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
    return (size_t)snprintf(list, cap,
                            "%s%s: l1 %.2f%% (%.0f/%.0f), dragonfly %.2f%% (%.0f/%.0f), "
                            "total %.2f%%; own p50/p99 candles %.3f/%.3f, tick "
                            "%.3f/%.3f ms",
                            i ? "; " : "", a->worker, 100 * l1r, d.l1_hits,
                            d.l1_hits + d.l1_misses, 100 * dfr, d.df_hits,
                            d.df_hits + d.df_misses, 100 * totr, a->op_p50[0], a->op_p99[0],
                            a->op_p50[1], a->op_p99[1]);
}

static void notes_workers(const mix *m)
{
    if (m->n_after <= 0) {
        bench_note("mix dm.v1.metrics: no worker answered after the run");
        return;
    }
    char list[1024];
    size_t k = 0;
    for (int i = 0; i < m->n_after; i++)
        if (k < sizeof list)
            k += note_worker(m, i, list + k, sizeof list - k);
    bench_note("mix dm.v1.metrics, cache counters over the timed phase (engine + probes), "
               "latency since the worker started (server side: parse to encoded reply, "
               "histogram buckets x1.5): %s%s",
               list, m->n_after < m->o.workers ? " (not every worker answered)" : "");
}

static void notes_cpu(const mix *m)
{
    char list[256];
    size_t k = 0;
    double sum = 0;
    for (int i = 0; i < BENCH_CPU_COUNT; i++) {
        sum += m->cpu[i];
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s %.2f", i ? ", " : "",
                              bench_cpu_names[i], m->cpu[i]);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    bench_note("mix CPU seconds in the timed phase (%.1f s wall x %ld cores = %.1f available): "
               "%s; total %.2f",
               m->secs, cores, m->secs * (double)cores, list, sum);
    /* Per engine request: the collector's ingest, the probes and the baseline thread run in
     * the same phase, so these are upper bounds, comparable between runs of the same mix. */
    double req = m->requests > 0 ? (double)m->requests : 1;
    bench_note("mix CPU per engine request (all work of the phase / %ld requests): workers %.1f "
               "us, nats-server %.1f us, stack + bench %.1f us",
               m->requests, m->cpu[BENCH_CPU_WORKERS] * 1e6 / req,
               m->cpu[BENCH_CPU_NATS] * 1e6 / req, sum * 1e6 / req);
}

/* The report: figures on stderr, the table's rows on stdout, notes under the table. */
static void report(mix *m)
{
    report_engine(m);
    report_baseline(m);
    report_probes(m);
    report_collector_candles(m);
    rows_per_op(m);
    rows_l2(m);
    rows_staleness(m);
    notes_engine(m);
    notes_baseline(m);
    notes_workers(m);
    notes_cpu(m);
}

/* 1 if anything failed during the mix. */
static int verdict(const mix *m)
{
    int rc = 0;
    for (int op = 0; op < OP_COUNT; op++)
        if (m->tot[op].errors || m->tot[op].all.n == 0)
            rc = 1;
    if (m->base.errors || m->base.cold_stats.errors || atomic_load(&m->col->ack_err) ||
        m->col->failed)
        rc = 1;
    if (rc)
        fprintf(stderr, "bench: errors during the mix (above)\n");
    return rc;
}

static void free_results(mix *m)
{
    for (int op = 0; op < OP_COUNT; op++)
        opstats_free(&m->tot[op]);
    for (int k = 0; k < 2; k++) {
        probe *p = &m->pr[k];
        opstats_free(&p->poll);
        bench_samples_free(&p->ack);
        bench_samples_free(&p->first);
        bench_samples_free(&p->all);
        bench_samples_free(&p->last20);
        free(p->upd_ns);
        free(p->ack_ns);
    }
    for (int k = 0; k < B_COLD; k++)
        bench_samples_free(&m->base.lat[k]);
    bench_samples_free(&m->l2c);
    bench_samples_free(&m->base.amid_get);
    bench_samples_free(&m->base.amid_echo);
    opstats_free(&m->base.cold_stats);
    bench_samples_free(&m->cupd);
}

static void cleanup(mix *m)
{
    free_results(m);
    free(m->cold);
    free(m->col->cand_ack);
    free(m->col->cand_upd);
    for (int k = 0; k < 2; k++)
        bench_echo_stop(m->echo[k]); /* a run that stopped early */
    bench_echo_stop(m->slow);
    free(m->eng);
    jsCtx_Destroy(m->col->js);
    pthread_mutex_destroy(&m->col->mu);
    free(m->col);
    jsCtx_Destroy(m->js);
    redisFree(m->rc);
    for (int i = 0; i < m->o.threads; i++)
        natsConnection_Destroy(m->eng_nc[i]);
    for (int k = 0; k < 4; k++)
        natsConnection_Destroy(m->probe_nc[k]);
    natsConnection_Destroy(m->base_nc);
    natsConnection_Destroy(m->echo_nc);
    natsConnection_Destroy(m->slow_nc);
    natsConnection_Destroy(m->coll_nc);
    natsConnection_Destroy(m->nc);
    free(m);
    nats_Close();
}

/* Setup failures end the run at once, as a benchmark that cannot measure should. */
int main(int argc, char **argv)
{
    mix *m = calloc(1, sizeof *m);
    if (m == NULL)
        return 1;
    int rc = parse_options(argc, argv, &m->o);
    if (rc >= 0)
        return rc;
    if (!connect_all(m) || !plan_series(m) || !preload_all(m) || !start_collector(m))
        return 1;
    bool ok = wait_ticks(m);
    if (ok)
        ok = start_echo(m);
    fprintf(stderr,
            "mix: real replies %d bytes (candles.latest limit %d), %d bytes (tick.latest)\n",
            m->echo_len[0], LIMIT, m->echo_len[1]);
    atomic_init(&m->stop, false);
    if ((m->eng = calloc((size_t)m->o.threads, sizeof *m->eng)) == NULL)
        return 1;
    if (ok)
        ok = warm_up(m);
    init_baseline(m, ok);
    m->n_before = ok ? read_metrics(m->nc, m->o.workers, m->before) : 0;
    if (ok && m->n_before < m->o.workers)
        fprintf(stderr, "mix: only %d of %d workers answered dm.v1.metrics before the run\n",
                m->n_before, m->o.workers);
    if (ok)
        ok = setup_probes(m);
    ok = ok && run_timed(m);
    stop_all(m, ok);
    if (!ok) {
        fprintf(stderr, "bench: the mix did not run\n");
        return 1;
    }
    /* let the workers finish what the collector sent, for whatever runs next */
    wait_backlog(m->js, 60);
    gather(m);
    report(m);
    rc = verdict(m);
    cleanup(m);
    return rc;
}
