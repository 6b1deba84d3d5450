/* fault_load: the load and the judge of one fault case (tests/fault/run.sh injects the
 * fault itself).
 *
 *   fault_load --tag T --n N --duration S [--nats URLS] [--max-gap-ms MS]
 *              [--settle-timeout S] [--seed X]
 *   fault_load --leader [--nats URLS]      prints the server name of MARKET's leader
 *
 * A case publishes N messages, half ticks on market.tick.<SYM>, half candles on
 * market.candle.<SYM>.<1m|1h>, over four symbols named after the tag (T "F1": F1A/USD ..
 * F1D/USD), so every case owns its keys. Each message has a unique natural key and a
 * Nats-Msg-Id derived from it; a message whose PubAck fails or does not come is published
 * again under the same id until it is acked, so the stream's dedupe window keeps it once
 * and the acked set is the published set.
 *
 * The first messages (at least one of each series) are published at once; when reads
 * answer for every series the program prints "ready" and paces the rest evenly over S
 * seconds, so the fault run.sh injects meanwhile lands in the middle of the ingest.
 * Meanwhile a second connection asks dm.v1.tick.latest, dm.v1.candles.latest (1m, 1h) and
 * dm.v1.candles.history in turn, about 100 a second, each with a 1 s timeout. SIGUSR1 marks the
 * start of the fault, SIGUSR2 its end (the service is back); read figures are taken over that
 * window.
 *
 * Then it waits (bounded by --settle-timeout, 120 s) until PostgreSQL and ClickHouse hold
 * every acked row and Redis the newest acked values, and compares row by row:
 *   stored   rows of the case's symbols in the backend
 *   lost     acked keys not stored
 *   dup      keys stored more than once (in ClickHouse: more than once under FINAL, what
 *            a reader can see)
 *   extra    stored keys that were never published; wrong: stored values that differ
 *   sums     sum over rows of a 64-bit hash of key and values, acked vs stored
 *   unmerged ClickHouse only: rows without FINAL minus rows with FINAL, redelivered copies
 *            a ReplacingMergeTree keeps until it merges (readers never see them)
 * Redis: the newest tick of each symbol and the newest candle of each (symbol, timeframe)
 * must be the newest acked one, value for value.
 *
 * Output: one "key value" line per figure on stdout (run.sh builds its table from them);
 * progress and diagnostics on stderr. Exit status 0 when nothing was lost, duplicated or
 * wrong and reads never stopped for longer than --max-gap-ms during the fault, 1 when
 * something was, 2 when the case could not run. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSYM 4
#define NTF 2
#define TS0 1609718400000LL /* 2021-01-04 00:00 UTC, a Monday: aligned for every timeframe */
#define TICK_STEP_MS 1000
#define SOURCE "fault"
#define PX_SCALE 100000 /* prices are whole 1e-5 units, printed with five decimals */

#define WINDOW 1000         /* publishes awaiting their PubAck */
#define ACK_TIMEOUT_MS 4000 /* a PubAck this late was lost (reconnect, dead leader) */
#define RETRY_EVERY_MS 200  /* refused publishes go again no faster than this, */
#define RETRY_MAX_MS 2000   /* and slower while nothing gets acked (no stream leader) */
#define PUBLISH_GRACE_S 120 /* after the paced phase, how long to keep retrying */
#define READ_TIMEOUT_MS 1000
#define READ_EVERY_MS 10
#define READY_TIMEOUT_S 60
#define FAULT_END_WAIT_S 240 /* run.sh always signals the end; this only bounds a bug */

enum { K_TICK, K_CANDLE };
enum { ST_NEW, ST_FLIGHT, ST_ACKED, ST_RETRY };

static const char *const TF_NAME[NTF] = {"1m", "1h"};
static const int64_t TF_MS[NTF] = {60000, 3600000};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* ------------------------------------------------------------ the case's data --- */

static char g_tag[16];
static int g_n;
static uint64_t g_seed = 0x5eed;

/* One message, derived from its index alone, so nothing of the set is kept in memory
 * but a state byte per message. */
typedef struct {
    int kind, sym, tf;
    int64_t ts;
    int64_t px[4]; /* tick: bid ask spread; candle: open high low close (1e-5 units) */
    int64_t volume;
} item;

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void symbol_of(int sym, char *symbol, size_t scap, char *token, size_t tcap)
{
    if (symbol)
        snprintf(symbol, scap, "%s%c/USD", g_tag, 'A' + sym);
    if (token)
        snprintf(token, tcap, "%s%cUSD", g_tag, 'A' + sym);
}

/* Messages alternate tick, candle; pairs walk the symbols; candles alternate 1m, 1h. */
static void gen(int i, item *it)
{
    memset(it, 0, sizeof *it);
    int j = i / 2;
    int r = j / NSYM;
    uint64_t h = mix64(g_seed ^ (uint64_t)i);
    it->sym = j % NSYM;
    if (i % 2 == 0) {
        it->kind = K_TICK;
        it->ts = TS0 + (int64_t)r * TICK_STEP_MS;
        int64_t bid = PX_SCALE + (int64_t)(h % 50000), spread = 1 + (int64_t)((h >> 17) % 20);
        it->px[0] = bid;
        it->px[1] = bid + spread;
        it->px[2] = spread;
    } else {
        it->kind = K_CANDLE;
        it->tf = r % NTF;
        it->ts = TS0 + (int64_t)(r / NTF) * TF_MS[it->tf];
        int64_t open = PX_SCALE + (int64_t)(h % 50000);
        int64_t close = open + (int64_t)((h >> 17) % 201) - 100;
        it->px[0] = open;
        it->px[1] = (open > close ? open : close) + (int64_t)((h >> 25) % 50);
        it->px[2] = (open < close ? open : close) - (int64_t)((h >> 31) % 50);
        it->px[3] = close;
    }
    it->volume = (int64_t)((h >> 40) % 10000);
}

/* The inverse of gen over natural keys; -1 for a key the case never made. */
static int index_of(int kind, int sym, int tf, int64_t ts)
{
    if (sym < 0 || sym >= NSYM || ts < TS0)
        return -1;
    int64_t i;
    if (kind == K_TICK) {
        if ((ts - TS0) % TICK_STEP_MS)
            return -1;
        i = 2 * (((ts - TS0) / TICK_STEP_MS) * NSYM + sym);
    } else {
        if (tf < 0 || tf >= NTF || (ts - TS0) % TF_MS[tf])
            return -1;
        int64_t r = ((ts - TS0) / TF_MS[tf]) * NTF + tf;
        i = 2 * (r * NSYM + sym) + 1;
    }
    return i < g_n ? (int)i : -1;
}

static int sym_of(const char *s, bool token)
{
    char want[32];
    for (int k = 0; k < NSYM; k++) {
        if (token)
            symbol_of(k, NULL, 0, want, sizeof want);
        else
            symbol_of(k, want, sizeof want, NULL, 0);
        if (strcmp(s, want) == 0)
            return k;
    }
    return -1;
}

static int tf_of(const char *s)
{
    for (int k = 0; k < NTF; k++)
        if (strcmp(s, TF_NAME[k]) == 0)
            return k;
    return -1;
}

static void fmt_px(char *buf, size_t cap, int64_t v)
{
    snprintf(buf, cap, "%" PRId64 ".%05" PRId64, v / PX_SCALE, v % PX_SCALE);
}

/* What the worker parses from the payload text: the value a backend must hold. */
static double px_value(int64_t v)
{
    char buf[32];
    fmt_px(buf, sizeof buf, v);
    return strtod(buf, NULL);
}

static void subject_and_id(const item *it, char *subj, size_t scap, char *id, size_t icap)
{
    char token[32];
    symbol_of(it->sym, NULL, 0, token, sizeof token);
    if (it->kind == K_TICK) {
        snprintf(subj, scap, "market.tick.%s", token);
        snprintf(id, icap, "tick:%s:%" PRId64 ":" SOURCE, token, it->ts);
    } else {
        snprintf(subj, scap, "market.candle.%s.%s", token, TF_NAME[it->tf]);
        snprintf(id, icap, "candle:%s:%s:%" PRId64, token, TF_NAME[it->tf], it->ts);
    }
}

static int payload(const item *it, char *buf, size_t cap)
{
    char symbol[32], p[4][32];
    symbol_of(it->sym, symbol, sizeof symbol, NULL, 0);
    for (int k = 0; k < 4; k++)
        fmt_px(p[k], sizeof p[k], it->px[k]);
    if (it->kind == K_TICK)
        return snprintf(buf, cap,
                        "{\"symbol\":\"%s\",\"timestamp\":%" PRId64 ",\"bid\":%s,\"ask\":%s,"
                        "\"spread\":%s,\"volume\":%" PRId64 ",\"source\":\"" SOURCE "\"}",
                        symbol, it->ts, p[0], p[1], p[2], it->volume);
    return snprintf(buf, cap,
                    "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"timestamp\":%" PRId64
                    ",\"open\":%s,\"high\":%s,\"low\":%s,\"close\":%s,\"volume\":%" PRId64
                    ",\"source\":\"" SOURCE "\"}",
                    symbol, TF_NAME[it->tf], it->ts, p[0], p[1], p[2], p[3], it->volume);
}

/* "tick:<token>:<ts>:fault" or "candle:<token>:<tf>:<ts>" back to the index. */
static int index_of_id(const char *id)
{
    char buf[128], *f[5];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", id);
    for (char *save = NULL, *t = strtok_r(buf, ":", &save); t && n < 5;
         t = strtok_r(NULL, ":", &save))
        f[n++] = t;
    if (n == 4 && strcmp(f[0], "tick") == 0)
        return index_of(K_TICK, sym_of(f[1], true), 0, strtoll(f[2], NULL, 10));
    if (n == 4 && strcmp(f[0], "candle") == 0)
        return index_of(K_CANDLE, sym_of(f[1], true), tf_of(f[2]), strtoll(f[3], NULL, 10));
    return -1;
}

/* A row's fingerprint: key and values, exactly (the bits of each double). */
typedef struct {
    int kind, sym, tf;
    int64_t ts;
    double v[4];
    bool has_volume;
    double volume;
    char source[72];
} row;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t row_hash(const row *r)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    int head[3] = {r->kind, r->sym, r->kind == K_CANDLE ? r->tf : 0};
    h = fnv(h, head, sizeof head);
    h = fnv(h, &r->ts, sizeof r->ts);
    for (int k = 0; k < (r->kind == K_TICK ? 3 : 4); k++)
        h = fnv(h, &r->v[k], sizeof r->v[k]);
    double vol = r->has_volume ? r->volume : -1;
    h = fnv(h, &vol, sizeof vol);
    h = fnv(h, r->source, strlen(r->source));
    return mix64(h); /* summed: spread the bits so sums of near hashes do not cancel */
}

static void expected_row(int i, row *r)
{
    item it;
    gen(i, &it);
    memset(r, 0, sizeof *r);
    r->kind = it.kind;
    r->sym = it.sym;
    r->tf = it.tf;
    r->ts = it.ts;
    for (int k = 0; k < 4; k++)
        r->v[k] = px_value(it.px[k]);
    r->has_volume = true;
    r->volume = (double)it.volume;
    snprintf(r->source, sizeof r->source, "%s", SOURCE);
}

/* ------------------------------------------------------------------- NATS --- */

static natsStatus nats_connect(const char *urls, const char *name, natsConnection **nc)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    char buf[1024];
    const char *list[8];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", urls);
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t && n < 8;
         t = strtok_r(NULL, ", ", &save))
        list[n++] = t;
    if (s == NATS_OK)
        s = n > 0 ? natsOptions_SetServers(o, list, n) : NATS_INVALID_ARG;
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    /* The fault may take the server away: never give up, and buffer what is published. */
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, 64 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

/* ------------------------------------------------------------- publishing --- */

typedef struct {
    natsConnection *nc;
    jsCtx *js;
    _Atomic uint8_t *state;
    int64_t *sent_ms; /* publishing thread only */
    atomic_int inflight;
    atomic_long acked, ack_errors, dup_acks;
    atomic_llong last_ack_ms, max_ack_gap_ms; /* how long the stream took nothing */
    uint64_t *seq;    /* stream sequence from the PubAck: finds a lost message in the stream */
    _Atomic int64_t *ack_ms; /* when the PubAck came (now_ms), 0 before: freshness */
    long republished; /* publishing thread only */
    pthread_mutex_t mu;
    int *retry; /* indices to publish again, under mu */
    size_t nretry, cap;
    char last_err[200];
} publisher;

static publisher g_pub;

static void push_retry(publisher *p, int idx)
{
    pthread_mutex_lock(&p->mu);
    if (p->nretry == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 1024;
        int *v = realloc(p->retry, nc * sizeof *v);
        if (v == NULL) { /* out of memory: the stale-flight sweep picks it up again */
            pthread_mutex_unlock(&p->mu);
            return;
        }
        p->retry = v;
        p->cap = nc;
    }
    p->retry[p->nretry++] = idx;
    pthread_mutex_unlock(&p->mu);
}

/* FLIGHT -> RETRY once, whoever sees the failure first. */
static void flight_failed(publisher *p, int idx)
{
    uint8_t want = ST_FLIGHT;
    if (atomic_compare_exchange_strong(&p->state[idx], &want, ST_RETRY)) {
        atomic_fetch_sub(&p->inflight, 1);
        push_retry(p, idx);
    }
}

static int msg_index(natsMsg *m)
{
    const char *id = NULL;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || id == NULL)
        return -1;
    return index_of_id(id);
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    publisher *p = closure;
    int idx = msg_index(msg);
    if (idx >= 0 && pa) {
        uint8_t want = ST_FLIGHT;
        if (atomic_compare_exchange_strong(&p->state[idx], &want, ST_ACKED)) {
            p->seq[idx] = pa->Sequence; /* read only after publishing is over */
            atomic_store(&p->ack_ms[idx], now_ms());
            atomic_fetch_sub(&p->inflight, 1);
            atomic_fetch_add(&p->acked, 1);
        }
        long long now = now_ms(), prev = atomic_exchange(&p->last_ack_ms, now);
        if (prev > 0 && now - prev > atomic_load(&p->max_ack_gap_ms))
            atomic_store(&p->max_ack_gap_ms, now - prev); /* one ack thread: no lost update */
        if (pa->Duplicate)
            atomic_fetch_add(&p->dup_acks, 1);
    } else if (idx >= 0) {
        atomic_fetch_add(&p->ack_errors, 1);
        pthread_mutex_lock(&p->mu);
        snprintf(p->last_err, sizeof p->last_err, "%s (%d)",
                 pae && pae->ErrText ? pae->ErrText
                 : pae               ? natsStatus_GetText(pae->Err)
                                     : "?",
                 pae ? (int)pae->ErrCode : 0);
        pthread_mutex_unlock(&p->mu);
        flight_failed(p, idx);
    }
    natsMsg_Destroy(msg);
}

static void send_one(publisher *p, int idx)
{
    item it;
    char subj[64], id[96], body[512];
    gen(idx, &it);
    subject_and_id(&it, subj, sizeof subj, id, sizeof id);
    int len = payload(&it, body, sizeof body);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subj, NULL, body, len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Content-Type", "application/json");
    /* In flight before the call: the PubAck may arrive before it returns. */
    p->sent_ms[idx] = now_ms();
    atomic_store(&p->state[idx], ST_FLIGHT);
    atomic_fetch_add(&p->inflight, 1);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(p->js, &m, NULL);
    natsMsg_Destroy(m); /* no-op when the library took it */
    if (s != NATS_OK)
        flight_failed(p, idx);
}

/* A PubAck lost with a connection never comes: take every pending message back (the
 * library hands over all or nothing) and publish them again; those that were stored come
 * back as duplicates of the same Nats-Msg-Id. */
static void reclaim(publisher *p)
{
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK) {
        for (int k = 0; k < pending.Count; k++) {
            int idx = msg_index(pending.Msgs[k]);
            if (idx >= 0)
                flight_failed(p, idx);
        }
        natsMsgList_Destroy(&pending);
    }
    /* Anything still in flight that old is no longer known to the library either. */
    int64_t old = now_ms() - 2 * ACK_TIMEOUT_MS;
    for (int i = 0; i < g_n; i++)
        if (atomic_load(&p->state[i]) == ST_FLIGHT && p->sent_ms[i] < old)
            flight_failed(p, i);
}

static bool stale_flight(publisher *p)
{
    int64_t old = now_ms() - ACK_TIMEOUT_MS;
    for (int i = 0; i < g_n; i++)
        if (atomic_load(&p->state[i]) == ST_FLIGHT && p->sent_ms[i] < old)
            return true;
    return false;
}

static void send_retries(publisher *p)
{
    pthread_mutex_lock(&p->mu);
    int *v = p->retry;
    size_t n = p->nretry;
    p->retry = NULL;
    p->nretry = p->cap = 0;
    pthread_mutex_unlock(&p->mu);
    size_t k = 0;
    for (; k < n && atomic_load(&p->inflight) < WINDOW; k++) {
        if (atomic_load(&p->state[v[k]]) != ST_RETRY)
            continue;
        send_one(p, v[k]);
        p->republished++;
    }
    for (; k < n; k++) /* the window is full: next round */
        push_retry(p, v[k]);
    free(v);
}

static bool publisher_open(publisher *p, natsConnection *nc)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->nc = nc;
    p->state = calloc((size_t)g_n, sizeof *p->state);
    p->sent_ms = calloc((size_t)g_n, sizeof *p->sent_ms);
    p->seq = calloc((size_t)g_n, sizeof *p->seq);
    p->ack_ms = calloc((size_t)g_n, sizeof *p->ack_ms);
    if (p->state == NULL || p->sent_ms == NULL || p->seq == NULL || p->ack_ms == NULL)
        return false;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = p;
    /* Our own window bounds what is in flight; the library's limit is never reached. */
    jo.PublishAsync.MaxPending = 4 * WINDOW;
    jo.PublishAsync.StallWait = 1000;
    return natsConnection_JetStream(&p->js, nc, &jo) == NATS_OK;
}

/* Publishes [from, to), message i not before t0 + (i - from) * span_ms / (to - from), and
 * keeps publishing again what failed until all of [0, to) is acked or deadline passes. */
static void publish_range(publisher *p, int from, int to, int64_t t0, int64_t span_ms,
                          int64_t deadline)
{
    int next = from;
    int64_t last_retry = 0, last_sweep = now_ms(), retry_every = RETRY_EVERY_MS;
    long acked_at_retry = 0;
    while (atomic_load(&p->acked) < to && now_ms() < deadline) {
        int64_t now = now_ms();
        while (next < to && atomic_load(&p->inflight) < WINDOW &&
               (span_ms <= 0 || now >= t0 + (int64_t)(next - from) * span_ms / (to - from)))
            send_one(p, next++);
        if (now - last_retry >= retry_every) {
            long acked = atomic_load(&p->acked);
            retry_every = acked > acked_at_retry           ? RETRY_EVERY_MS
                          : retry_every * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                           : retry_every * 2;
            acked_at_retry = acked;
            send_retries(p);
            last_retry = now;
        }
        if (now - last_sweep >= 500) {
            if (stale_flight(p))
                reclaim(p);
            last_sweep = now;
        }
        sleep_ms(1);
    }
}

/* Deliveries by the MARKET consumers so far, and how many consumers read ticks and single
 * candles: every delivery beyond one per message and consumer is a redelivery (a batch of
 * a killed worker, a write that failed and was left for later). */
typedef struct {
    uint64_t delivered;
    int tick_consumers, candle_consumers;
    bool ok;
} deliveries;

static deliveries count_deliveries(jsCtx *js)
{
    deliveries d = {0};
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    if (js_Consumers(&list, js, "MARKET", NULL, &jerr) != NATS_OK)
        return d;
    for (int k = 0; k < list->Count; k++) {
        const jsConsumerInfo *ci = list->List[k];
        const char *filter =
            ci->Config && ci->Config->FilterSubject ? ci->Config->FilterSubject : "";
        d.delivered += ci->Delivered.Consumer;
        d.tick_consumers += strcmp(filter, "market.tick.>") == 0;
        d.candle_consumers += strcmp(filter, "market.candle.>") == 0;
    }
    jsConsumerInfoList_Destroy(list);
    d.ok = true;
    return d;
}

/* Where each consumer stands, for a case that did not settle: one that is done (nothing
 * pending, nothing unacked) yet misses rows acked something it never stored. */
static void print_consumers(jsCtx *js)
{
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    if (js_Consumers(&list, js, "MARKET", NULL, &jerr) != NATS_OK)
        return;
    for (int k = 0; k < list->Count; k++) {
        const jsConsumerInfo *ci = list->List[k];
        printf("consumer.%s pending %" PRIu64 ", ack pending %" PRId64 ", redelivered %" PRId64
               ", ack floor %" PRIu64 ", delivered %" PRIu64 "\n",
               ci->Name, ci->NumPending, ci->NumAckPending, ci->NumRedelivered, ci->AckFloor.Stream,
               ci->Delivered.Stream);
    }
    jsConsumerInfoList_Destroy(list);
}

/* ---------------------------------------------------------------- reading --- */

enum { SRC_L1, SRC_DRAGONFLY, SRC_TIMESCALE, SRC_CLICKHOUSE, SRC_OTHER, SRC_NONE, SRC_COUNT };
static const char *const SRC_NAME[SRC_COUNT] = {"l1",         "dragonfly", "timescale",
                                                "clickhouse", "other",     "none"};

typedef struct {
    int64_t t_ms; /* when the request was sent */
    int64_t newest_ts; /* latest reads: open time of the newest value answered; -1: none */
    int32_t lat_us;
    uint8_t ok, src, what, sym;
    int64_t gap_ts; /* the first open time a latest-N answer skipped; -1: none (judged at the
                     * end: hole_in) */
    uint8_t forged; /* a value that was never published */
    uint8_t worker; /* K of the answering worker wK (its Dm-Worker header); 0: unknown */
} sample;

typedef struct {
    natsConnection *nc;
    pthread_t thread;
    atomic_bool stop;
    sample *v; /* reader thread until joined */
    size_t n, cap;
    char last_err[200];
} reader;

static atomic_llong g_fault_start, g_fault_end; /* ms of now_ms(); 0 = not yet */

static int served_by(const char *data, int len)
{
    static const char key[] = "\"served_by\":\"";
    const char *p = memmem(data, (size_t)len, key, sizeof key - 1);
    if (p == NULL)
        return SRC_NONE;
    p += sizeof key - 1;
    for (int k = 0; k < SRC_OTHER; k++) {
        size_t n = strlen(SRC_NAME[k]);
        if ((size_t)(data + len - p) > n && strncmp(p, SRC_NAME[k], n) == 0 && p[n] == '"')
            return k;
    }
    return SRC_OTHER;
}

static bool same_px(const cJSON *obj, const char *name, int64_t px)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) && llround(v->valuedouble * PX_SCALE) == px;
}

/* Whether a tick or candle of the answer is exactly one that was published. */
static bool published(const cJSON *row, int kind, int sym, int tf, int64_t *ts)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(row, "timestamp");
    if (!cJSON_IsNumber(t))
        return false;
    *ts = (int64_t)t->valuedouble;
    int i = index_of(kind, sym, tf, *ts);
    if (i < 0 || atomic_load(&g_pub.state[i]) == ST_NEW)
        return false;
    item it;
    gen(i, &it);
    if (kind == K_TICK)
        return same_px(row, "bid", it.px[0]) && same_px(row, "ask", it.px[1]);
    return same_px(row, "open", it.px[0]) && same_px(row, "high", it.px[1]) &&
           same_px(row, "low", it.px[2]) && same_px(row, "close", it.px[3]);
}

static char g_first_bad[400]; /* the first answer with a hole or a foreign value */
static atomic_flag g_first_bad_taken = ATOMIC_FLAG_INIT;

/* A latest read's answer: the newest open time, no hole between its candles (the case's
 * series have one candle per period), every value one that was published. */
static void judge_latest(sample *s, const char *data, int len)
{
    cJSON *root = cJSON_ParseWithLength(data, (size_t)len);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
    int64_t ts = -1, prev = -1;
    char seen[300] = ""; /* the answer's open times, minutes after TS0, for the report */
    size_t used = 0;
    if (s->what == 0 && cJSON_IsObject(d)) {
        s->forged = !published(d, K_TICK, s->sym, 0, &ts);
    } else if (cJSON_IsArray(d)) {
        int tf = s->what - 1;
        const cJSON *row;
        cJSON_ArrayForEach(row, d)
        {
            if (!published(row, K_CANDLE, s->sym, tf, &ts))
                s->forged = 1;
            if (prev >= 0 && ts != prev + TF_MS[tf] && s->gap_ts < 0)
                s->gap_ts = prev + TF_MS[tf];
            prev = ts;
            if (used < sizeof seen - 24)
                used += (size_t)snprintf(seen + used, sizeof seen - used, " %lld",
                                         (long long)((ts - TS0) / 60000));
        }
    } else {
        s->forged = 1; /* a 200 without data */
    }
    s->newest_ts = ts;
    cJSON_Delete(root);
    if (s->forged && !atomic_flag_test_and_set(&g_first_bad_taken))
        snprintf(g_first_bad, sizeof g_first_bad, "%s sym %d served by %d: %s%s (minutes after TS0)",
                 s->what == 0 ? "tick" : TF_NAME[s->what - 1], s->sym,
                 served_by(data, len), s->forged ? "a value never published;" : "", seen);
}

/* One request; a reply counts when its Status is 200 (absent means 200). Requests cycle
 * through the latest tick, the latest 1m and 1h candles, and a page of 1h history (whose
 * route starts at ClickHouse, where the others start at Redis). */
#define READ_KINDS 4

static sample read_once(reader *r, unsigned k)
{
    char symbol[32], body[200];
    int sym = (int)((k / READ_KINDS) % NSYM), what = (int)(k % READ_KINDS);
    symbol_of(sym, symbol, sizeof symbol, NULL, 0);
    const char *subj = what == 0   ? "dm.v1.tick.latest"
                       : what == 3 ? "dm.v1.candles.history"
                                   : "dm.v1.candles.latest";
    if (what == 0)
        snprintf(body, sizeof body, "{\"symbol\":\"%s\"}", symbol);
    else if (what == 3)
        snprintf(body, sizeof body,
                 "{\"symbol\":\"%s\",\"timeframe\":\"1h\",\"start_date\":%lld,"
                 "\"end_date\":%lld,\"page_size\":50}",
                 symbol, (long long)TS0, (long long)(TS0 + 7 * 24 * 3600 * 1000LL));
    else
        snprintf(body, sizeof body, "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"limit\":5}", symbol,
                 TF_NAME[what - 1]);
    sample s = {.t_ms = now_ms(), .src = SRC_NONE, .what = (uint8_t)what, .sym = (uint8_t)sym,
                .newest_ts = -1, .gap_ts = -1};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    natsMsg *reply = NULL;
    natsStatus st = natsConnection_RequestString(&reply, r->nc, subj, body, READ_TIMEOUT_MS);
    clock_gettime(CLOCK_MONOTONIC, &b);
    s.lat_us = (int32_t)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000);
    if (st == NATS_OK) {
        const char *status = NULL;
        bool good = natsMsgHeader_Get(reply, "Status", &status) != NATS_OK || status == NULL ||
                    strcmp(status, "200") == 0;
        s.ok = good;
        s.src = (uint8_t)served_by(natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
        const char *w = NULL;
        if (natsMsgHeader_Get(reply, "Dm-Worker", &w) == NATS_OK && w && w[0] == 'w')
            s.worker = (uint8_t)atoi(w + 1);
        if (good && what != 3)
            judge_latest(&s, natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
        if (!good)
            snprintf(r->last_err, sizeof r->last_err, "%s %s: Status %s: %.*s", subj, symbol,
                     status,
                     natsMsg_GetDataLength(reply) > 120 ? 120 : natsMsg_GetDataLength(reply),
                     natsMsg_GetData(reply));
    } else {
        snprintf(r->last_err, sizeof r->last_err, "%s %s: %s", subj, symbol,
                 natsStatus_GetText(st));
    }
    natsMsg_Destroy(reply);
    return s;
}

static void *reader_run(void *arg)
{
    reader *r = arg;
    for (unsigned k = 0; !atomic_load(&r->stop); k++) {
        sample s = read_once(r, k);
        if (r->n == r->cap) {
            size_t nc = r->cap ? r->cap * 2 : 4096;
            sample *v = realloc(r->v, nc * sizeof *v);
            if (v == NULL)
                break;
            r->v = v;
            r->cap = nc;
        }
        r->v[r->n++] = s;
        int64_t wait = s.t_ms + READ_EVERY_MS - now_ms();
        if (wait > 0)
            sleep_ms(wait);
    }
    nats_ReleaseThreadMemory();
    return NULL;
}

/* Until every series answers: the fault must meet a service that was serving. */
static bool wait_readable(reader *r, int timeout_s)
{
    int64_t end = now_ms() + timeout_s * 1000LL;
    for (unsigned k = 0; k < NSYM * READ_KINDS && now_ms() < end;) {
        sample s = read_once(r, k);
        if (s.ok)
            k++;
        else
            sleep_ms(100);
    }
    return now_ms() < end;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    long total, failed, by_src[SRC_COUNT];
    double p50_ms, p99_ms, max_gap_ms;
} read_stats;

/* Figures over the samples sent in [from, to]; the gap is the longest time in it with no
 * answered read, from its start to its end. */
static read_stats read_figures(const reader *r, int64_t from, int64_t to)
{
    read_stats st = {0};
    st.p50_ms = st.p99_ms = -1;
    int32_t *lat = malloc((r->n + 1) * sizeof *lat);
    size_t nl = 0;
    int64_t last_answer = from, gap = 0;
    for (size_t i = 0; i < r->n; i++) {
        const sample *s = &r->v[i];
        if (s->t_ms < from || s->t_ms > to)
            continue;
        st.total++;
        if (!s->ok) {
            st.failed++;
            continue;
        }
        st.by_src[s->src]++;
        if (lat)
            lat[nl++] = s->lat_us;
        int64_t done = s->t_ms + s->lat_us / 1000;
        if (done - last_answer > gap)
            gap = done - last_answer;
        last_answer = done;
    }
    if (to - last_answer > gap)
        gap = to - last_answer;
    st.max_gap_ms = (double)gap;
    if (nl > 0) {
        qsort(lat, nl, sizeof *lat, cmp_i32);
        st.p50_ms = lat[(nl - 1) * 50 / 100] / 1000.0;
        st.p99_ms = lat[(nl - 1) * 99 / 100] / 1000.0;
    }
    free(lat);
    return st;
}

/* Freshness: a latest read sent at t is stale by t - a when a value newer than the one it
 * answered had been acked (PubAck) at a < t; 0 when it answered the newest acked value.
 * One series' PubAck times in time order, with the earliest PubAck of every suffix. */
typedef struct {
    long reads, stale_50, holes, forged;
    double p50_ms, p99_ms, max_ms;
    char worst[224]; /* the stalest read: what, which series, when, from where */
} fresh_stats;

static int series_index(int what, int sym, long r)
{
    if (what == 0)
        return (int)(2 * (r * NSYM + sym));
    return (int)(2 * ((r * NTF + (what - 1)) * NSYM + sym) + 1);
}

static int64_t *suffix_min_ack(int what, int sym, long *count)
{
    long n = 0;
    while (series_index(what, sym, n) < g_n)
        n++;
    int64_t *m = malloc((size_t)(n + 1) * sizeof *m);
    if (m == NULL)
        return NULL;
    m[n] = INT64_MAX;
    for (long r = n - 1; r >= 0; r--) {
        int64_t a = atomic_load(&g_pub.ack_ms[series_index(what, sym, r)]);
        m[r] = a > 0 && a < m[r + 1] ? a : m[r + 1];
    }
    *count = n;
    return m;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A skipped candle is a hole when it stood earlier in the stream than the newest candle
 * answered and was acked before the read was sent: the service writes each backend's
 * candles in stream order. A candle whose publish failed and went again later stands
 * after newer ones in the stream; until it is written, a gap in time there is no hole. */
static char g_first_hole[200]; /* main thread, after the reads */

static bool hole_in(const sample *s)
{
    if (s->gap_ts < 0 || s->what == 0)
        return false;
    int tf = s->what - 1;
    int gap = index_of(K_CANDLE, s->sym, tf, s->gap_ts), newest = index_of(K_CANDLE, s->sym, tf, s->newest_ts);
    if (gap < 0 || newest < 0)
        return true;
    int64_t acked = atomic_load(&g_pub.ack_ms[gap]);
    return g_pub.seq[gap] != 0 && g_pub.seq[gap] < g_pub.seq[newest] && acked > 0 && acked < s->t_ms;
}

static fresh_stats fresh_figures(const reader *rd, int64_t from, int64_t to)
{
    fresh_stats f = {0};
    int64_t *mins[3][NSYM] = {{0}};
    long counts[3][NSYM] = {{0}};
    for (int w = 0; w < 3; w++)
        for (int k = 0; k < NSYM; k++)
            mins[w][k] = suffix_min_ack(w, k, &counts[w][k]);
    int64_t *st = malloc((rd->n + 1) * sizeof *st);
    const sample *worst = NULL; /* the stalest read, named in f.worst */
    int64_t worst_stale = 0, worst_acked = 0;
    for (size_t i = 0; st && i < rd->n; i++) {
        const sample *s = &rd->v[i];
        if (s->t_ms < from || s->t_ms > to || !s->ok || s->what == 3 || mins[s->what][s->sym] == NULL)
            continue;
        if (hole_in(s) && f.holes++ == 0)
            snprintf(g_first_hole, sizeof g_first_hole,
                     "%s sym %d: skipped %lld, newest %lld (minutes after TS0), served by %s",
                     TF_NAME[s->what - 1], s->sym, (long long)((s->gap_ts - TS0) / 60000),
                     (long long)((s->newest_ts - TS0) / 60000), SRC_NAME[s->src]);
        f.forged += s->forged;
        int64_t step = s->what == 0 ? TICK_STEP_MS : TF_MS[s->what - 1];
        long first_newer = s->newest_ts < TS0 ? 0 : (long)((s->newest_ts - TS0) / step) + 1;
        if (first_newer > counts[s->what][s->sym])
            first_newer = counts[s->what][s->sym];
        int64_t acked = mins[s->what][s->sym][first_newer];
        int64_t stale = acked < s->t_ms ? s->t_ms - acked : 0;
        f.stale_50 += stale > 50;
        if (worst == NULL || stale > worst_stale) {
            worst = s;
            worst_stale = stale;
            worst_acked = acked;
        }
        st[f.reads++] = stale;
    }
    if (worst) {
        int64_t fault = atomic_load(&g_fault_start);
        int k = snprintf(f.worst, sizeof f.worst,
                         "%s sym %d, %lld ms after the fault began, served by %s of w%d, newest ts %lld",
                         worst->what == 0 ? "tick" : TF_NAME[worst->what - 1], worst->sym,
                         (long long)(worst->t_ms - fault), SRC_NAME[worst->src], worst->worker,
                         (long long)worst->newest_ts);
        if (worst_stale > 0 && k > 0 && (size_t)k < sizeof f.worst)
            snprintf(f.worst + k, sizeof f.worst - (size_t)k, "; a newer one was acked %lld ms after the fault began",
                     (long long)(worst_acked - fault));
    }
    if (st && f.reads > 0) {
        qsort(st, (size_t)f.reads, sizeof *st, cmp_i64);
        f.p50_ms = (double)st[(f.reads - 1) * 50 / 100];
        f.p99_ms = (double)st[(f.reads - 1) * 99 / 100];
        f.max_ms = (double)st[f.reads - 1];
    }
    free(st);
    for (int w = 0; w < 3; w++)
        for (int k = 0; k < NSYM; k++)
            free(mins[w][k]);
    return f;
}

static void print_fresh(const char *prefix, const fresh_stats *f)
{
    printf("%s.reads %ld\n%s.p50_ms %.0f\n%s.p99_ms %.0f\n%s.max_ms %.0f\n%s.over_50ms %ld\n"
           "%s.holes %ld\n%s.forged %ld\n",
           prefix, f->reads, prefix, f->p50_ms, prefix, f->p99_ms, prefix, f->max_ms, prefix,
           f->stale_50, prefix, f->holes, prefix, f->forged);
}

/* ----------------------------------------------------------- the backends --- */

typedef struct {
    long stored, lost, dup, extra, wrong, unmerged;
    uint64_t sum_acked, sum_stored;
    char lost_keys[256]; /* the first few, with their stream sequence */
} store_figures;

/* Row-by-row judgement of one backend's rows against the acked set. */
typedef struct {
    uint16_t *seen;
    store_figures f;
} judge;

static bool judge_open(judge *j)
{
    memset(j, 0, sizeof *j);
    j->seen = calloc((size_t)g_n, sizeof *j->seen);
    return j->seen != NULL;
}

static bool same_row(const row *a, const row *b)
{
    for (int k = 0; k < 4; k++)
        if (a->v[k] != b->v[k])
            return false;
    return a->has_volume == b->has_volume && (!a->has_volume || a->volume == b->volume) &&
           strcmp(a->source, b->source) == 0;
}

static void judge_row(judge *j, const row *r)
{
    j->f.stored++;
    j->f.sum_stored += row_hash(r);
    int i = index_of(r->kind, r->sym, r->tf, r->ts);
    if (i < 0 || atomic_load(&g_pub.state[i]) != ST_ACKED) {
        j->f.extra++;
        return;
    }
    if (j->seen[i] < UINT16_MAX)
        j->seen[i]++;
    if (j->seen[i] > 1) {
        j->f.dup++;
        return;
    }
    row want;
    expected_row(i, &want);
    if (!same_row(r, &want))
        j->f.wrong++;
}

static store_figures judge_close(judge *j)
{
    for (int i = 0; i < g_n; i++) {
        if (atomic_load(&g_pub.state[i]) != ST_ACKED)
            continue;
        row want;
        expected_row(i, &want);
        j->f.sum_acked += row_hash(&want);
        if (j->seen[i] == 0 && j->f.lost++ < 3) {
            char symbol[32], *out = j->f.lost_keys;
            size_t used = strlen(out);
            symbol_of(want.sym, symbol, sizeof symbol, NULL, 0);
            snprintf(out + used, sizeof j->f.lost_keys - used,
                     "%s%s %s%s%s ts %" PRId64 " seq %" PRIu64, used ? "; " : "",
                     want.kind == K_TICK ? "tick" : "candle", symbol,
                     want.kind == K_TICK ? "" : " ", want.kind == K_TICK ? "" : TF_NAME[want.tf],
                     want.ts, g_pub.seq[i]);
        }
    }
    free(j->seen);
    j->seen = NULL;
    return j->f;
}

/* PostgreSQL -------------------------------------------------------------- */

static PGconn *g_pg; /* main thread only */

static PGconn *pg(void)
{
    if (g_pg && PQstatus(g_pg) == CONNECTION_OK)
        return g_pg;
    if (g_pg)
        PQfinish(g_pg);
    const char *keys[] = {"host", "port", "dbname", "user", "password", "connect_timeout", NULL};
    const char *vals[] = {env_or("DM_PG_HOST", "127.0.0.1"),
                          env_or("DM_PG_PORT", "30432"),
                          "dm",
                          "dm",
                          env_or("DM_PG_PASSWORD", ""),
                          "3",
                          NULL};
    g_pg = PQconnectdbParams(keys, vals, 0);
    return g_pg;
}

static void pg_symbols(char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "{");
    for (int k = 0; k < NSYM && n < cap; k++) {
        char symbol[32];
        symbol_of(k, symbol, sizeof symbol, NULL, 0);
        n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\"", k ? "," : "", symbol);
    }
    if (n < cap)
        snprintf(buf + n, cap - n, "}");
}

static PGresult *pg_query(const char *sql)
{
    char syms[256];
    pg_symbols(syms, sizeof syms);
    const char *params[1] = {syms};
    PGresult *r = PQexecParams(pg(), sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        PQfinish(g_pg); /* the server may have restarted under us: once more, anew */
        g_pg = NULL;
        r = PQexecParams(pg(), sql, 1, NULL, params, NULL, NULL, 0);
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "fault_load: postgres: %s", PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

static long pg_count(void)
{
    PGresult *r = pg_query("SELECT (SELECT count(*) FROM ticks WHERE symbol = ANY($1::text[])) +"
                           " (SELECT count(*) FROM candles WHERE symbol = ANY($1::text[]))");
    long n = r && PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
}

static void pg_row_common(PGresult *res, int i, int first_px, int npx, row *r)
{
    for (int k = 0; k < npx; k++)
        r->v[k] = strtod(PQgetvalue(res, i, first_px + k), NULL);
    r->has_volume = !PQgetisnull(res, i, first_px + npx);
    r->volume = r->has_volume ? strtod(PQgetvalue(res, i, first_px + npx), NULL) : 0;
    snprintf(r->source, sizeof r->source, "%s", PQgetvalue(res, i, first_px + npx + 1));
}

static bool pg_judge(store_figures *out)
{
    judge j;
    if (!judge_open(&j))
        return false;
    /* float8 text is the shortest exact form (PostgreSQL 12+): strtod gives the bits back. */
    PGresult *t = pg_query("SELECT symbol, ts, bid, ask, spread, volume, source FROM ticks"
                           " WHERE symbol = ANY($1::text[])");
    PGresult *c = pg_query("SELECT symbol, timeframe, ts, open, high, low, close, volume, source"
                           " FROM candles WHERE symbol = ANY($1::text[])");
    bool ok = t && c;
    for (int i = 0; ok && i < PQntuples(t); i++) {
        row r = {.kind = K_TICK, .sym = sym_of(PQgetvalue(t, i, 0), false)};
        r.ts = strtoll(PQgetvalue(t, i, 1), NULL, 10);
        pg_row_common(t, i, 2, 3, &r);
        judge_row(&j, &r);
    }
    for (int i = 0; ok && i < PQntuples(c); i++) {
        row r = {.kind = K_CANDLE, .sym = sym_of(PQgetvalue(c, i, 0), false)};
        r.tf = tf_of(PQgetvalue(c, i, 1));
        r.ts = strtoll(PQgetvalue(c, i, 2), NULL, 10);
        pg_row_common(c, i, 3, 4, &r);
        judge_row(&j, &r);
    }
    PQclear(t);
    PQclear(c);
    *out = judge_close(&j);
    return ok;
}

/* ClickHouse over HTTP --------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *closure)
{
    buf *b = closure;
    size_t n = size * nmemb;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 65536;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *p = realloc(b->p, nc);
        if (p == NULL)
            return 0;
        b->p = p;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

/* The SQL is this program's own text with its own symbols, never data from a reply. */
static bool ch_query(const char *sql, buf *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return false;
    char url[256];
    snprintf(url, sizeof url, "%s/", env_or("DM_CH_URL", "http://127.0.0.1:48123"));
    curl_easy_setopt(c, CURLOPT_URL, url);
    char user[200], key[300];
    snprintf(user, sizeof user, "X-ClickHouse-User: %s", env_or("DM_CH_USER", "default"));
    snprintf(key, sizeof key, "X-ClickHouse-Key: %s", env_or("DM_CH_PASSWORD", ""));
    struct curl_slist *hdr = curl_slist_append(curl_slist_append(NULL, user), key);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "fault_load: clickhouse: %s (HTTP %ld) %.200s\n", curl_easy_strerror(rc),
                status, out->p ? out->p : "");
        free(out->p);
        memset(out, 0, sizeof *out);
        return false;
    }
    return true;
}

static const char *ch_db(void)
{
    return env_or("DM_CH_DATABASE", "dm");
}

static void ch_in_list(char *b, size_t cap)
{
    size_t n = (size_t)snprintf(b, cap, "(");
    for (int k = 0; k < NSYM && n < cap; k++) {
        char symbol[32];
        symbol_of(k, symbol, sizeof symbol, NULL, 0);
        n += (size_t)snprintf(b + n, cap - n, "%s'%s'", k ? "," : "", symbol);
    }
    if (n < cap)
        snprintf(b + n, cap - n, ")");
}

static long ch_count(const char *table, bool final)
{
    char in[256], sql[512];
    ch_in_list(in, sizeof in);
    snprintf(sql, sizeof sql, "SELECT count() FROM %s.%s%s WHERE symbol IN %s", ch_db(), table,
             final ? " FINAL" : "", in);
    buf b;
    if (!ch_query(sql, &b))
        return -1;
    long n = atol(b.p ? b.p : "-1");
    free(b.p);
    return n;
}

/* RowBinary: strings as a LEB128 length and bytes, Int64/Float64 little-endian, Nullable
 * as a byte (1 = NULL) before the value. Exact doubles, no text round trip. */
typedef struct {
    const unsigned char *p, *end;
    bool bad;
} rb;

static uint64_t rb_varint(rb *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static void rb_str(rb *r, char *out, size_t cap)
{
    uint64_t n = rb_varint(r);
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    size_t k = n < cap - 1 ? (size_t)n : cap - 1;
    memcpy(out, r->p, k);
    out[k] = '\0';
    r->p += n;
}

static void rb_fixed(rb *r, void *out, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n); /* x86-64 and ClickHouse are both little-endian */
    r->p += n;
}

/* The columns both tables end with: Nullable(Float64) volume, then source. */
static void rb_volume_source(rb *r, row *x)
{
    uint8_t null = 1;
    rb_fixed(r, &null, 1);
    x->has_volume = !null;
    if (x->has_volume)
        rb_fixed(r, &x->volume, 8);
    rb_str(r, x->source, sizeof x->source);
}

static bool ch_judge(store_figures *out)
{
    judge j;
    if (!judge_open(&j))
        return false;
    char in[256], sql[1024];
    ch_in_list(in, sizeof in);
    buf t, c;
    snprintf(sql, sizeof sql,
             "SELECT symbol, ts, bid, ask, spread, volume, source FROM %s.ticks FINAL"
             " WHERE symbol IN %s FORMAT RowBinary",
             ch_db(), in);
    bool ok = ch_query(sql, &t);
    snprintf(sql, sizeof sql,
             "SELECT symbol, timeframe, ts, open, high, low, close, volume, source FROM %s.candles"
             " FINAL WHERE symbol IN %s FORMAT RowBinary",
             ch_db(), in);
    ok = ch_query(sql, &c) && ok;
    for (rb r = {(unsigned char *)t.p, (unsigned char *)t.p + t.n, false}; ok && r.p < r.end;) {
        row x = {.kind = K_TICK};
        char s[64];
        rb_str(&r, s, sizeof s);
        x.sym = sym_of(s, false);
        rb_fixed(&r, &x.ts, 8);
        for (int k = 0; k < 3; k++)
            rb_fixed(&r, &x.v[k], 8);
        rb_volume_source(&r, &x);
        ok = !r.bad;
        if (ok)
            judge_row(&j, &x);
    }
    for (rb r = {(unsigned char *)c.p, (unsigned char *)c.p + c.n, false}; ok && r.p < r.end;) {
        row x = {.kind = K_CANDLE};
        char s[64];
        rb_str(&r, s, sizeof s);
        x.sym = sym_of(s, false);
        rb_str(&r, s, sizeof s);
        x.tf = tf_of(s);
        rb_fixed(&r, &x.ts, 8);
        for (int k = 0; k < 4; k++)
            rb_fixed(&r, &x.v[k], 8);
        rb_volume_source(&r, &x);
        ok = !r.bad;
        if (ok)
            judge_row(&j, &x);
    }
    if (!ok)
        fprintf(stderr, "fault_load: clickhouse: unreadable RowBinary reply\n");
    free(t.p);
    free(c.p);
    *out = judge_close(&j);
    long raw_t = ch_count("ticks", false), raw_c = ch_count("candles", false);
    out->unmerged = raw_t < 0 || raw_c < 0 ? -1 : raw_t + raw_c - out->stored;
    return ok;
}

/* Redis ------------------------------------------------------------------- */

typedef struct {
    int keys, stale, missing;
    char first_problem[256];
} cache_figures;

/* The newest acked message of each series: ticks and candles rise with the index. */
static void newest_acked(int newest[NSYM][1 + NTF])
{
    for (int s = 0; s < NSYM; s++)
        for (int k = 0; k < 1 + NTF; k++)
            newest[s][k] = -1;
    for (int i = 0; i < g_n; i++) {
        if (atomic_load(&g_pub.state[i]) != ST_ACKED)
            continue;
        item it;
        gen(i, &it);
        newest[it.sym][it.kind == K_TICK ? 0 : 1 + it.tf] = i;
    }
}

/* Members are "ts|bid|ask|spread|volume|source" and "ts|open|high|low|close|volume|source". */
static bool member_matches(const char *m, const item *it)
{
    char tmp[256], *f[8];
    int n = 0;
    snprintf(tmp, sizeof tmp, "%s", m);
    for (char *p = tmp; n < 8;) {
        f[n++] = p;
        char *bar = strchr(p, '|');
        if (bar == NULL)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    int npx = it->kind == K_TICK ? 3 : 4;
    if (n != npx + 3 || strtoll(f[0], NULL, 10) != it->ts)
        return false;
    for (int k = 0; k < npx; k++)
        if (strtod(f[1 + k], NULL) != px_value(it->px[k]))
            return false;
    return strtod(f[npx + 1], NULL) == (double)it->volume && strcmp(f[npx + 2], SOURCE) == 0;
}

static cache_figures redis_check(void)
{
    cache_figures cf = {0};
    int newest[NSYM][1 + NTF];
    newest_acked(newest);
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout(env_or("DM_REDIS_HOST", "127.0.0.1"),
                                               atoi(env_or("DM_REDIS_PORT", "46379")), tv);
    if (rc && !rc->err && *env_or("DM_REDIS_PASSWORD", "")) {
        redisReply *a = redisCommand(rc, "AUTH %s", env_or("DM_REDIS_PASSWORD", ""));
        freeReplyObject(a);
    }
    for (int s = 0; s < NSYM; s++) {
        for (int k = 0; k < 1 + NTF; k++) {
            if (newest[s][k] < 0)
                continue;
            item it;
            gen(newest[s][k], &it);
            char token[32], key[96];
            symbol_of(s, NULL, 0, token, sizeof token);
            if (k == 0)
                snprintf(key, sizeof key, "tick:latest:{%s}", token);
            else
                snprintf(key, sizeof key, "candle:latest:{%s}:%s", token, TF_NAME[k - 1]);
            cf.keys++;
            redisReply *r = rc && !rc->err ? redisCommand(rc, "ZRANGE %s -1 -1", key) : NULL;
            const char *member = r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                                         r->element[0]->type == REDIS_REPLY_STRING
                                     ? r->element[0]->str
                                     : NULL;
            bool good = member && member_matches(member, &it);
            if (member == NULL)
                cf.missing++;
            else if (!good)
                cf.stale++;
            if (!good && cf.first_problem[0] == '\0')
                snprintf(cf.first_problem, sizeof cf.first_problem,
                         "%s holds %s, newest acked ts %" PRId64, key, member ? member : "nothing",
                         it.ts);
            freeReplyObject(r);
        }
    }
    redisFree(rc);
    return cf;
}

/* ------------------------------------------------------------- the signals --- */

static void *signal_run(void *arg)
{
    sigset_t *set = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGUSR1)
            atomic_store(&g_fault_start, (long long)now_ms());
        else if (sig == SIGUSR2)
            atomic_store(&g_fault_end, (long long)now_ms());
    }
    return NULL;
}

/* -------------------------------------------------------------------- main --- */

static int print_leader(const char *urls)
{
    natsConnection *nc = NULL;
    if (nats_connect(urls, "fault-leader", &nc) != NATS_OK)
        return 2;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    int rc = 2;
    if (natsConnection_JetStream(&js, nc, &jo) == NATS_OK) {
        /* Right after a failover the stream may have no leader for a moment. */
        for (int i = 0; i < 50 && rc; i++) {
            jsStreamInfo *si = NULL;
            jsErrCode jerr = 0;
            if (js_GetStreamInfo(&si, js, "MARKET", NULL, &jerr) == NATS_OK && si->Cluster &&
                si->Cluster->Leader && *si->Cluster->Leader) {
                printf("%s\n", si->Cluster->Leader);
                rc = 0;
            } else {
                sleep_ms(200);
            }
            jsStreamInfo_Destroy(si);
        }
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

typedef struct {
    const char *nats, *tag;
    int n, duration_s, settle_s, max_gap_ms, max_stale_ms;
    int stale_after_pause_ms; /* > 0: the bound is at least the PubAck pause plus this */
    int stale_after_publish_ms; /* > 0: and at least the publishing after the fault plus this */
    bool leader;
} options;

static void usage(void)
{
    fprintf(stderr, "usage: fault_load --tag T --n N --duration S [--nats URLS] [--max-gap-ms MS]"
                    " [--max-stale-ms MS] [--stale-after-pause-ms MS] [--stale-after-publish-ms MS]"
                    " [--settle-timeout S]"
                    " [--seed X]\n"
                    "       fault_load --leader [--nats URLS]\n");
    exit(2);
}

static options parse_args(int argc, char **argv)
{
    options o = {.nats = env_or("DM_NATS_URL", "nats://127.0.0.1:30222"),
                 .tag = "F0",
                 .n = 20000,
                 .duration_s = 10,
                 .settle_s = 120,
                 .max_gap_ms = 3000,
                 .max_stale_ms = 1000};
    static const struct option longs[] = {{"tag", required_argument, 0, 't'},
                                          {"n", required_argument, 0, 'n'},
                                          {"duration", required_argument, 0, 'd'},
                                          {"nats", required_argument, 0, 'u'},
                                          {"max-gap-ms", required_argument, 0, 'g'},
                                          {"max-stale-ms", required_argument, 0, 'f'},
                                          {"stale-after-pause-ms", required_argument, 0, 'p'},
                                          {"stale-after-publish-ms", required_argument, 0, 'P'},
                                          {"settle-timeout", required_argument, 0, 's'},
                                          {"seed", required_argument, 0, 'x'},
                                          {"leader", no_argument, 0, 'l'},
                                          {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 't': o.tag = optarg; break;
        case 'n': o.n = atoi(optarg); break;
        case 'd': o.duration_s = atoi(optarg); break;
        case 'u': o.nats = optarg; break;
        case 'g': o.max_gap_ms = atoi(optarg); break;
        case 'f': o.max_stale_ms = atoi(optarg); break;
        case 'p': o.stale_after_pause_ms = atoi(optarg); break;
        case 'P': o.stale_after_publish_ms = atoi(optarg); break;
        case 's': o.settle_s = atoi(optarg); break;
        case 'x': g_seed = strtoull(optarg, NULL, 0); break;
        case 'l': o.leader = true; break;
        default: usage();
        }
    }
    /* Upper-case letters and digits, short enough for a 24-character symbol. */
    bool tag_ok = strlen(o.tag) >= 1 && strlen(o.tag) <= 12;
    for (const char *p = o.tag; *p; p++)
        tag_ok = tag_ok && ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));
    if (!o.leader && (!tag_ok || o.n < 64 || o.duration_s < 0 || o.settle_s < 1))
        usage();
    snprintf(g_tag, sizeof g_tag, "%s", o.tag);
    g_n = o.n;
    return o;
}

static bool stored_everywhere(long expect, long *pg_n, long *ch_n, cache_figures *cf)
{
    *pg_n = pg_count();
    long t = ch_count("ticks", true), c = ch_count("candles", true);
    *ch_n = t < 0 || c < 0 ? -1 : t + c;
    *cf = redis_check();
    return *pg_n >= expect && *ch_n >= expect && cf->stale == 0 && cf->missing == 0;
}

static void print_store(const char *name, const store_figures *f, bool ch)
{
    printf("%s.stored %ld\n%s.lost %ld\n%s.dup %ld\n%s.extra %ld\n%s.wrong %ld\n", name, f->stored,
           name, f->lost, name, f->dup, name, f->extra, name, f->wrong);
    printf("%s.sum_acked %016" PRIx64 "\n%s.sum_stored %016" PRIx64 "\n", name, f->sum_acked, name,
           f->sum_stored);
    if (ch)
        printf("%s.unmerged %ld\n", name, f->unmerged);
    if (f->lost_keys[0])
        printf("%s.lost_keys %s\n", name, f->lost_keys);
}

static bool store_clean(const store_figures *f)
{
    return f->lost == 0 && f->dup == 0 && f->extra == 0 && f->wrong == 0 &&
           f->sum_acked == f->sum_stored;
}

static void print_reads(const char *prefix, const read_stats *s)
{
    printf("%s.total %ld\n%s.failed %ld\n%s.p50_ms %.2f\n%s.p99_ms %.2f\n%s.max_gap_ms %.0f\n",
           prefix, s->total, prefix, s->failed, prefix, s->p50_ms, prefix, s->p99_ms, prefix,
           s->max_gap_ms);
    printf("%s.served_by", prefix);
    bool any = false;
    for (int k = 0; k < SRC_COUNT; k++)
        if (s->by_src[k]) {
            printf("%s%s:%ld", any ? "," : " ", SRC_NAME[k], s->by_src[k]);
            any = true;
        }
    printf("%s\n", any ? "" : " -");
}

int main(int argc, char **argv)
{
    /* Before any thread exists, so every thread nats.c starts inherits the mask and only
     * the signal thread takes the fault markers. */
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    options o = parse_args(argc, argv);
    if (o.leader)
        return print_leader(o.nats);
    pthread_t sig_thread;
    pthread_create(&sig_thread, NULL, signal_run, &set);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    natsConnection *pub_nc = NULL;
    reader rd;
    memset(&rd, 0, sizeof rd);
    if (nats_connect(o.nats, "fault-load", &pub_nc) != NATS_OK ||
        nats_connect(o.nats, "fault-reads", &rd.nc) != NATS_OK || !publisher_open(&g_pub, pub_nc)) {
        fprintf(stderr, "fault_load: cannot connect to NATS at %s: %s\n", o.nats,
                nats_GetLastError(NULL));
        return 2;
    }

    deliveries before = count_deliveries(g_pub.js);
    /* Warm-up: every series exists and answers before the fault. */
    int warm = o.n / 100 > 64 ? o.n / 100 : 64;
    int64_t t_start = now_ms();
    publish_range(&g_pub, 0, warm, 0, 0, now_ms() + READY_TIMEOUT_S * 1000LL);
    if (atomic_load(&g_pub.acked) < warm || !wait_readable(&rd, READY_TIMEOUT_S)) {
        fprintf(stderr,
                "fault_load: the service did not take or answer the first %d messages: %s%s\n",
                warm, g_pub.last_err, rd.last_err);
        return 2;
    }
    printf("ready\n");
    rd.last_err[0] = '\0'; /* misses before the data arrived are not the fault's */
    pthread_create(&rd.thread, NULL, reader_run, &rd);

    int64_t t0 = now_ms();
    atomic_store(&g_pub.last_ack_ms, (long long)t0); /* the warm-up's pause is no fault's */
    atomic_store(&g_pub.max_ack_gap_ms, 0);
    publish_range(&g_pub, warm, o.n, t0, o.duration_s * 1000LL,
                  t0 + (o.duration_s + PUBLISH_GRACE_S) * 1000LL);
    int64_t t_published = now_ms();
    long acked = atomic_load(&g_pub.acked);
    fprintf(stderr, "fault_load: %ld/%d acked after %.1f s, %ld published again\n", acked, o.n,
            (t_published - t0) / 1000.0, g_pub.republished);

    /* Reads go on until the service is back, then a little longer. */
    int64_t wait_end = now_ms() + FAULT_END_WAIT_S * 1000LL;
    while (atomic_load(&g_fault_end) == 0 && now_ms() < wait_end)
        sleep_ms(50);
    sleep_ms(1000);
    atomic_store(&rd.stop, true);
    pthread_join(rd.thread, NULL);

    int64_t fs = atomic_load(&g_fault_start), fe = atomic_load(&g_fault_end);
    if (fs == 0)
        fs = t0;
    if (fe == 0 || fe < fs)
        fe = now_ms();

    /* Settle: bounded wait until every backend holds everything acked. */
    int64_t t_settle = now_ms();
    long pg_n = -1, ch_n = -1;
    cache_figures cf = {0};
    bool settled = false;
    while (!(settled = stored_everywhere(acked, &pg_n, &ch_n, &cf)) &&
           now_ms() - t_settle < o.settle_s * 1000LL)
        sleep_ms(500);
    int64_t settle_ms = now_ms() - (fe > t_published ? fe : t_published);
    fprintf(stderr,
            "fault_load: %s after %.1f s: postgres %ld, clickhouse %ld of %ld rows, redis %d/%d\n",
            settled ? "settled" : "NOT settled", (now_ms() - t_settle) / 1000.0, pg_n, ch_n, acked,
            cf.keys - cf.stale - cf.missing, cf.keys);

    if (!settled)
        print_consumers(g_pub.js);
    deliveries after = count_deliveries(g_pub.js);
    long redelivered = -1;
    if (before.ok && after.ok)
        redelivered = (long)(after.delivered - before.delivered) -
                      (long)after.tick_consumers * ((o.n + 1) / 2) -
                      (long)after.candle_consumers * (o.n / 2);
    store_figures ts = {0}, ch = {0};
    bool ts_ok = pg_judge(&ts), ch_ok = ch_judge(&ch);
    read_stats during = read_figures(&rd, fs, fe), calm = read_figures(&rd, t0, fs);
    fresh_stats fresh = fresh_figures(&rd, fs, fe), fresh_all = fresh_figures(&rd, t0, INT64_MAX);

    printf("published %d\nacked %ld\nrepublished %ld\npub_ack_errors %ld\npub_dup_acks %ld\n", o.n,
           acked, g_pub.republished, atomic_load(&g_pub.ack_errors), atomic_load(&g_pub.dup_acks));
    printf("redelivered %ld\npub_max_gap_ms %lld\n", redelivered,
           (long long)atomic_load(&g_pub.max_ack_gap_ms));
    if (g_pub.last_err[0])
        printf("pub_last_error %s\n", g_pub.last_err);
    printf("fault_ms %" PRId64 "\nsettle_ms %" PRId64 "\nsetup_ms %" PRId64 "\n", fe - fs,
           settle_ms, t0 - t_start);
    print_store("timescale", &ts, false);
    print_store("clickhouse", &ch, true);
    printf("dragonfly.keys %d\ndragonfly.stale %d\ndragonfly.missing %d\n", cf.keys, cf.stale,
           cf.missing);
    if (cf.first_problem[0])
        printf("dragonfly.problem %s\n", cf.first_problem);
    print_reads("read", &during);
    print_reads("read_before", &calm);
    if (rd.last_err[0])
        printf("read.last_error %s\n", rd.last_err);
    print_fresh("fresh", &fresh);
    if (fresh_all.worst[0])
        printf("fresh_all.worst %s\n", fresh_all.worst);
    print_fresh("fresh_all", &fresh_all);
    if (g_first_bad[0])
        printf("fresh.first_bad %s\n", g_first_bad);
    if (g_first_hole[0])
        printf("fresh.first_hole %s\n", g_first_hole);

    /* A message is delivered to no consumer before its stream has a leader: while the
     * stream elects one, publishes get no PubAck, and what was acked just before waits
     * with them. Where the case allows for it, reads may lag that pause plus a margin. */
    int64_t stale_bound = o.max_stale_ms;
    int64_t pause = atomic_load(&g_pub.max_ack_gap_ms);
    if (o.stale_after_pause_ms > 0 && pause + o.stale_after_pause_ms > stale_bound)
        stale_bound = pause + o.stale_after_pause_ms;
    /* nats-server 2.9.10 delivers a taken-over consumer that lags in the first half of the
     * stream's last block one message per recount of its pending messages (README, "Faults,
     * fuzzing, security"): it catches up once the stream stops growing past it. Where the case
     * allows for it, reads may lag until a little after the last publish. */
    int64_t after_fault = t_published - fs;
    if (o.stale_after_publish_ms > 0 && after_fault + o.stale_after_publish_ms > stale_bound)
        stale_bound = after_fault + o.stale_after_publish_ms;
    printf("stale_bound_ms %" PRId64 "\n", stale_bound);
    bool pass = acked == o.n && ts_ok && ch_ok && store_clean(&ts) && store_clean(&ch) &&
                cf.stale == 0 && cf.missing == 0 && during.total > 0 &&
                during.max_gap_ms <= o.max_gap_ms && fresh_all.holes == 0 && fresh_all.forged == 0 &&
                fresh_all.max_ms <= stale_bound;
    printf("result %s\n", pass ? "pass" : "fail");

    natsConnection_Destroy(rd.nc);
    free(rd.v);
    jsCtx_Destroy(g_pub.js);
    natsConnection_Destroy(pub_nc);
    PQfinish(g_pg);
    curl_global_cleanup();
    nats_Close();
    return pass ? 0 : 1;
}
