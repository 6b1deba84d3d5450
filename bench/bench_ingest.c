/* bench_ingest: tick ingest throughput of the Data Manager against raw JetStream.
 *
 *   bench_ingest [--ticks N] [--rounds R] [--timeout S] [--workers K]
 *
 * Each round measures, on the same N tick payloads (same bytes, same kind of
 * Nats-Msg-Id and Content-Type headers):
 *
 *  raw  A throwaway file-storage stream BENCH_RAW on benchraw.> with one durable pull
 *       consumer, drained by K threads (like K workers; --workers, default 2, the
 *       number of workers the stack runs), each on its own connection, fetching batches
 *       of 1000 with nats.c's own pull API and acking every message on its own. Time:
 *       first publish -> the N-th ack. The worker's pull loop (worker/bus/pull.c) in these
 *       threads instead was no cheaper: best of 8 one-consumer rounds each, 34.6 (5 ms
 *       linger) and 41.7 (none) against 34.5 us per tick, on one machine.
 *  raw2 An extra row, not a baseline: the same with two durable consumers that each take
 *       every message (K threads each), as the worker's timescale-tick and dragonfly-tick
 *       do: what the design's fan-out costs bare JetStream.
 *  dm   The same payloads to market.tick.<TOKEN> (a fresh symbol per round), then
 *       polling until PostgreSQL holds N rows for the symbol and Redis'
 *       tick:latest:{TOKEN} holds the newest tick. Time: first publish -> both true. The
 *       poll is light (a prepared probe of the newest stored tick every 10 ms, the rows
 *       counted once it is there; the consumer list, which makes nats-server compute every
 *       consumer's pending count, every 200 ms): the raw rounds have no observer to pay
 *       for. The CPU is read when the work is seen done, before the count that finds
 *       every row (that count costs PostgreSQL tens of milliseconds). Before it MARKET's
 *       duplicate window goes to 100 ms and back, so nats-server forgets the earlier
 *       rounds' message ids (the raw round's fresh stream has none; see forget_msg_ids).
 *
 * Both publish with js_PublishMsgAsync (MaxPending 4000, like dmctl) and wait for every
 * PubAck. The best round of each is reported (least disturbed by the shared machine);
 * every round is printed to stderr. Diagnostics say where the time goes: the PubAck-only
 * rate, when each tick consumer of MARKET went idle, the PostgreSQL row rate, the CPU
 * seconds each part of the stack used (from /proc, found through the stack's pid files)
 * and, once at the end, how fast PostgreSQL alone takes the worker's upsert.
 *
 * Cost: CPU microseconds per tick, end to end (workers, nats-server, PostgreSQL, Redis
 * and this process, which publishes in both and holds the raw consumers), of the best
 * round of each. Targets: rate >= 0.65 x raw, CPU per tick <= 1.6 x raw. bench/run.sh
 * runs this with 1, 2 and 3 workers for the scaling table.
 *
 * Output: ROW/NOTE lines on stdout for bench/run.sh, progress on stderr. */
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
#define RAW_STREAM "BENCH_RAW"
#define RAW_DURABLE "bench-raw"
#define RAW_SUBJECTS "benchraw.>"
#define PUB_MAX_PENDING 4000
#define FETCH_BATCH 1000
#define FETCH_MAX_BYTES (32 * 1024 * 1024)
#define IDLE_WAIT_MS 500
#define POLL_SLOW_MS 200 /* consumer list and row count: see monitor_run */
#define TS_BASE 1578528000000LL /* 2020-01-09 00:00 UTC */
#define TS_STEP 10
#define MAX_CONSUMERS 8
#define MAX_ROUNDS 10

/* ------------------------------------------------------------ payloads --- */

typedef struct {
    int n;
    char symbol[16], token[16];
    char *buf;     /* all payloads back to back */
    size_t *off;   /* payload i = buf + off[i], len[i] bytes */
    int *len;
    char (*id)[64];
    int64_t last_ts;
} tickset;

static bool tickset_make(tickset *t, int n, const char *symbol)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    snprintf(t->symbol, sizeof t->symbol, "%s", symbol);
    size_t k = 0;
    for (const char *p = symbol; *p; p++)
        if (*p != '/')
            t->token[k++] = *p;
    t->token[k] = '\0';
    size_t cap = (size_t)n * 160;
    t->buf = malloc(cap);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->id = malloc((size_t)n * sizeof *t->id);
    if (!t->buf || !t->off || !t->len || !t->id)
        return false;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        int64_t ts = TS_BASE + (int64_t)i * TS_STEP;
        int w = snprintf(t->buf + pos, cap - pos,
                         "{\"symbol\":\"%s\",\"timestamp\":%" PRId64 ",\"bid\":1.10001,"
                         "\"ask\":1.10003,\"spread\":0.00002,\"volume\":1,\"source\":\"bench\"}",
                         symbol, ts);
        if (w < 0 || (size_t)w >= cap - pos)
            return false;
        t->off[i] = pos;
        t->len[i] = w;
        pos += (size_t)w;
        snprintf(t->id[i], sizeof t->id[i], "tick:%s:%" PRId64 ":bench", t->token, ts);
        t->last_ts = ts;
    }
    return true;
}

static void tickset_free(tickset *t)
{
    free(t->buf);
    free(t->off);
    free(t->len);
    free(t->id);
    memset(t, 0, sizeof *t);
}

/* ----------------------------------------------------------- publisher --- */

typedef struct {
    atomic_long ok, dup, err;
    atomic_llong last_ack_ns;
    pthread_mutex_t mu;
    char last_err[256];
} pubstats;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    pubstats *p = closure;
    if (pa) {
        atomic_fetch_add(&p->ok, 1);
        if (pa->Duplicate)
            atomic_fetch_add(&p->dup, 1);
    } else {
        atomic_fetch_add(&p->err, 1);
        pthread_mutex_lock(&p->mu);
        snprintf(p->last_err, sizeof p->last_err, "%s (%d)",
                 pae && pae->ErrText ? pae->ErrText : pae ? natsStatus_GetText(pae->Err) : "?",
                 pae ? (int)pae->ErrCode : 0);
        pthread_mutex_unlock(&p->mu);
    }
    atomic_store(&p->last_ack_ns, bench_now_ns());
    natsMsg_Destroy(msg);
}

typedef struct {
    int64_t t0, t_sent, t_acked; /* first publish, last publish call, all PubAcks */
    long ok, dup, err;
} pubresult;

/* Publishes every payload of t to the subject subj_fmt makes of its token; returns false if a PubAck is missing. */
static bool publish_all(natsConnection *nc, const char *subj_fmt, const tickset *t, int timeout_s,
                        pubresult *r, atomic_llong *t0_out)
{
    memset(r, 0, sizeof *r);
    pubstats ps;
    memset(&ps, 0, sizeof ps);
    pthread_mutex_init(&ps.mu, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    jo.PublishAsync.MaxPending = PUB_MAX_PENDING;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &ps;
    jo.PublishAsync.StallWait = 10000;
    jsCtx *js = NULL;
    natsStatus s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        bench_nats_fail("JetStream context", s);
        return false;
    }
    char subject[96];
    snprintf(subject, sizeof subject, subj_fmt, t->token);
    r->t0 = bench_now_ns();
    if (t0_out)
        atomic_store(t0_out, (long long)r->t0);
    for (int i = 0; i < t->n && s == NATS_OK; i++) {
        natsMsg *m = NULL;
        s = natsMsg_Create(&m, subject, NULL, t->buf + t->off[i], t->len[i]);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, DM_HDR_MSG_ID, t->id[i]);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, DM_HDR_CONTENT_TYPE, DM_CT_JSON);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, NULL); /* takes m on success */
        natsMsg_Destroy(m);
    }
    r->t_sent = bench_now_ns();
    if (s != NATS_OK)
        bench_nats_fail("publish", s);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = (int64_t)timeout_s * 1000;
    natsStatus c = js_PublishAsyncComplete(js, &po);
    if (c != NATS_OK)
        bench_nats_fail("waiting for PubAcks", c);
    int64_t last = atomic_load(&ps.last_ack_ns);
    r->t_acked = last ? last : bench_now_ns();
    r->ok = atomic_load(&ps.ok);
    r->dup = atomic_load(&ps.dup);
    r->err = atomic_load(&ps.err);
    jsCtx_Destroy(js);
    if (r->err)
        fprintf(stderr, "bench: %ld publish errors, last: %s\n", r->err, ps.last_err);
    pthread_mutex_destroy(&ps.mu);
    return s == NATS_OK && c == NATS_OK && r->ok == t->n && r->dup == 0;
}

/* ------------------------------------------------------- raw baseline --- */

typedef struct {
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    pthread_t th;
    int target;
    atomic_long *acked;
    atomic_llong *t_done;
    atomic_bool *stop;
    int64_t deadline_ns;
    long mine, fetches;
} rawc;

/* A no-wait batch; when nothing is pending, wait for one message, then top up without
 * waiting. */
static int raw_fetch(rawc *c, natsMsgList lists[2])
{
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = FETCH_BATCH;
    req.NoWait = true;
    req.Expires = 2000 * NS_PER_MS;
    req.MaxBytes = FETCH_MAX_BYTES;
    if (natsSubscription_FetchRequest(&lists[0], c->sub, &req) == NATS_OK)
        return 1;
    jsFetchRequest_Init(&req);
    req.Batch = 1;
    req.Expires = IDLE_WAIT_MS * NS_PER_MS;
    if (natsSubscription_FetchRequest(&lists[0], c->sub, &req) != NATS_OK)
        return 0;
    jsFetchRequest_Init(&req);
    req.Batch = FETCH_BATCH - 1;
    req.NoWait = true;
    req.Expires = 2000 * NS_PER_MS;
    req.MaxBytes = FETCH_MAX_BYTES;
    return natsSubscription_FetchRequest(&lists[1], c->sub, &req) == NATS_OK ? 2 : 1;
}

static void *raw_run(void *arg)
{
    rawc *c = arg;
    while (!atomic_load(c->stop) && bench_now_ns() < c->deadline_ns) {
        natsMsgList lists[2];
        memset(lists, 0, sizeof lists);
        int nl = raw_fetch(c, lists);
        long got = 0;
        for (int l = 0; l < nl; l++) {
            for (int i = 0; i < lists[l].Count; i++)
                natsMsg_Ack(lists[l].Msgs[i], NULL);
            got += lists[l].Count;
            natsMsgList_Destroy(&lists[l]);
        }
        if (got) {
            c->fetches++;
            c->mine += got;
            long total = atomic_fetch_add(c->acked, got) + got;
            if (total >= c->target) {
                long long zero = 0;
                atomic_compare_exchange_strong(c->t_done, &zero, (long long)bench_now_ns());
                atomic_store(c->stop, true);
            }
        }
    }
    nats_ReleaseThreadMemory();
    return NULL;
}

typedef struct {
    double rate, pub_rate, secs;
    long per_consumer[MAX_CONSUMERS];
    double cpu[BENCH_CPU_COUNT]; /* CPU seconds used during the measurement */
} rawresult;

static void cpu_delta(const double before[BENCH_CPU_COUNT], double out[BENCH_CPU_COUNT])
{
    double now[BENCH_CPU_COUNT];
    bench_cpu_snapshot(now);
    for (int i = 0; i < BENCH_CPU_COUNT; i++)
        out[i] = now[i] - before[i];
}

/* The raw stream and its durable pull consumer, made as the workers' are. */
static bool raw_stream_create(jsCtx *js)
{
    jsErrCode jerr = 0;
    js_DeleteStream(js, RAW_STREAM, NULL, &jerr); /* left over from an aborted run */
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
    if (s != NATS_OK) {
        fprintf(stderr, "bench: create stream %s: %s (%d)\n", RAW_STREAM, natsStatus_GetText(s),
                (int)jerr);
        return false;
    }
    return true;
}

static bool raw_consumer_create(jsCtx *js, const char *durable)
{
    jsErrCode jerr = 0;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = 10000 * NS_PER_MS;
    cc.MaxDeliver = -1;
    cc.FilterSubject = RAW_SUBJECTS;
    cc.DeliverPolicy = js_DeliverAll;
    cc.MaxAckPending = FETCH_BATCH * 16; /* as the workers' consumers */
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_AddConsumer(&ci, js, RAW_STREAM, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        bench_nats_fail("create raw consumer", s);
    return s == NATS_OK;
}

/* K consumer threads sharing the raw durable, as K workers share theirs. */
typedef struct {
    atomic_long acked;
    atomic_llong t_done;
    atomic_bool stop;
    rawc cons[2 * MAX_CONSUMERS];
    int started;
} rawrun;

static bool raw_consumer_start(rawrun *rr, int k, const tickset *t, int64_t deadline, const char *durable, int copies)
{
    rawc *c = &rr->cons[k];
    natsStatus s;
    jsErrCode jerr = 0;
    c->target = (long)t->n * copies;
    c->acked = &rr->acked;
    c->t_done = &rr->t_done;
    c->stop = &rr->stop;
    c->deadline_ns = deadline;
    char name[32];
    snprintf(name, sizeof name, "bench-raw-%d", k + 1);
    if ((c->nc = bench_nats_connect(name)) == NULL)
        return false;
    if ((s = natsConnection_JetStream(&c->js, c->nc, NULL)) != NATS_OK)
        return bench_nats_fail("JetStream", s), false;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = RAW_STREAM;
    so.Consumer = durable;
    s = js_PullSubscribe(&c->sub, c->js, RAW_SUBJECTS, durable, NULL, &so, &jerr);
    if (s != NATS_OK)
        return bench_nats_fail("raw pull subscribe", s), false;
    if (pthread_create(&c->th, NULL, raw_run, c) != 0)
        return false;
    rr->started++;
    return true;
}

static void raw_consumers_join(rawrun *rr)
{
    for (int k = 0; k < rr->started; k++)
        pthread_join(rr->cons[k].th, NULL);
    rr->started = 0;
}

static void raw_consumers_close(rawrun *rr)
{
    for (int k = 0; k < 2 * MAX_CONSUMERS; k++) {
        rawc *c = &rr->cons[k];
        if (c->nc)
            natsConnection_Flush(c->nc);
        natsSubscription_Destroy(c->sub);
        jsCtx_Destroy(c->js);
        natsConnection_Destroy(c->nc);
    }
}

/* Whether every tick was acked in time; fills out's rates when so. */
static bool raw_result(rawrun *rr, int k, int copies, const tickset *t, int timeout_s,
                       const pubresult *pr, rawresult *out)
{
    int64_t done = atomic_load(&rr->t_done);
    if (done == 0 || atomic_load(&rr->acked) < (long)t->n * copies) {
        fprintf(stderr, "bench: raw consumers acked %ld of %ld within %d s\n",
                atomic_load(&rr->acked), (long)t->n * copies, timeout_s);
        return false;
    }
    const rawc *c = rr->cons;
    out->secs = (double)(done - pr->t0) / 1e9;
    out->rate = t->n / out->secs;
    out->pub_rate = t->n / ((double)(pr->t_acked - pr->t0) / 1e9);
    fprintf(stderr, "  raw%s: %d ticks in %.3f s = %.0f/s (PubAcks done after %.3f s; acked",
            copies > 1 ? " x2 consumers" : "", t->n, out->secs, out->rate,
            (double)(pr->t_acked - pr->t0) / 1e9);
    for (int j = 0; j < k * copies; j++) {
        if (j < MAX_CONSUMERS)
            out->per_consumer[j] = c[j].mine;
        fprintf(stderr, "%s %ld in %ld fetches", j ? "," : "", c[j].mine, c[j].fetches);
    }
    fprintf(stderr, ")\n");
    return true;
}

/* copies: durable consumers that each take every message (1: the baseline; 2: the
 * worker's fan-out to timescale-tick and dragonfly-tick on bare JetStream), each drained
 * by k threads. */
static bool run_raw(natsConnection *nc, const tickset *t, int timeout_s, int k, int copies,
                    rawresult *out)
{
    memset(out, 0, sizeof *out);
    jsCtx *js = NULL;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
        return bench_nats_fail("JetStream", s), false;
    if (!raw_stream_create(js)) {
        jsCtx_Destroy(js);
        return false;
    }
    static const char *const durables[2] = {RAW_DURABLE, RAW_DURABLE "-b"};
    bool ok = true;
    for (int d = 0; d < copies && ok; d++)
        ok = raw_consumer_create(js, durables[d]);
    rawrun rr;
    memset(&rr, 0, sizeof rr);
    atomic_init(&rr.acked, 0);
    atomic_init(&rr.t_done, 0);
    atomic_init(&rr.stop, false);
    int64_t deadline = bench_now_ns() + (int64_t)timeout_s * 1000 * NS_PER_MS;
    for (int d = 0; d < copies; d++)
        for (int j = 0; j < k && ok; j++)
            ok = raw_consumer_start(&rr, d * k + j, t, deadline, durables[d], copies);
    pubresult pr;
    double cpu0[BENCH_CPU_COUNT];
    bench_cpu_snapshot(cpu0);
    if (ok)
        ok = publish_all(nc, "benchraw.tick.%s", t, timeout_s, &pr, NULL);
    if (!ok)
        atomic_store(&rr.stop, true);
    raw_consumers_join(&rr);
    cpu_delta(cpu0, out->cpu);
    ok = ok && raw_result(&rr, k, copies, t, timeout_s, &pr, out);
    raw_consumers_close(&rr);
    jsErrCode jerr = 0;
    s = js_DeleteStream(js, RAW_STREAM, NULL, &jerr);
    if (s != NATS_OK)
        bench_nats_fail("delete stream " RAW_STREAM, s);
    jsCtx_Destroy(js);
    return ok;
}

/* ------------------------------------------------------ data manager --- */

typedef struct {
    char name[48];
    int64_t t_idle; /* first time idle after the last PubAck, 0 = never */
} consstate;

typedef struct {
    /* inputs */
    const tickset *t;
    int timeout_s;
    atomic_bool published; /* every PubAck is in */
    atomic_bool abort;
    atomic_llong t0;
    /* results */
    int64_t t_redis, t_pg, t_done;
    long long pg_final;
    int pg_counts; /* full counts of the symbol's rows the monitor made */
    /* CPU when the Data Manager was seen done: before the count that found every row, or
     * when Redis was seen to hold the newest tick if that came last */
    double cpu_end[BENCH_CPU_COUNT];
    consstate cons[MAX_CONSUMERS];
    int ncons;
    /* PostgreSQL progress samples: (time, position of the newest stored tick) */
    int64_t pg_t[4096];
    long long pg_n[4096];
    int pg_samples;
    bool failed;
} monitor;

static long long pg_count(PGconn *pg, const char *symbol)
{
    const char *vals[1] = {symbol};
    PGresult *r = PQexecParams(pg, "SELECT count(*) FROM ticks WHERE symbol = $1", 1, NULL, vals,
                               NULL, NULL, 0);
    long long n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = atoll(PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "bench: count: %s", PQresultErrorMessage(r));
    PQclear(r);
    return n;
}

/* How far the stored ticks reach: the position (1-based) of the newest one stored, 0 for
 * none, -1 on error. One index probe, cheap enough to ask every 10 ms; a count of the
 * symbol's rows reads every one of them (tens of milliseconds of PostgreSQL's CPU at
 * 100,000 fresh rows, which would be charged to the Data Manager). Ticks are numbered by
 * their timestamps, so the newest stored says how far the writes got; with several
 * workers an earlier batch may still be in flight, which only the final count sees. */
static long long pg_reach(PGconn *pg, const tickset *t)
{
    const char *vals[1] = {t->symbol};
    PGresult *r = PQexecPrepared(pg, "reach", 1, vals, NULL, NULL, 0);
    long long n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = PQgetisnull(r, 0, 0) ? 0 : (atoll(PQgetvalue(r, 0, 0)) - TS_BASE) / TS_STEP + 1;
    else
        fprintf(stderr, "bench: newest tick: %s", PQresultErrorMessage(r));
    PQclear(r);
    return n;
}

/* The probe is planned once: planning it on each call costs PostgreSQL more than running
 * it while rows pour in (the planner looks at the index's ends, where the new rows are). */
static bool reach_prepare(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SET plan_cache_mode = force_generic_plan");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok) {
        r = PQprepare(pg, "reach", "SELECT max(ts) FROM ticks WHERE symbol = $1", 1, NULL);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "bench: prepare: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    return ok;
}

/* Does tick:latest:{TOKEN} hold the newest tick (member "ts|bid|ask|spread|volume|source")? */
static bool redis_has_latest(redisContext *rc, const tickset *t)
{
    redisReply *r = redisCommand(rc, "ZRANGE tick:latest:{%s} -1 -1", t->token);
    bool ok = false;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        char want[32];
        int w = snprintf(want, sizeof want, "%" PRId64 "|", t->last_ts);
        ok = strncmp(r->element[0]->str, want, (size_t)w) == 0;
    }
    freeReplyObject(r);
    return ok;
}

/* Consumers of MARKET that read ticks; records when each is idle after the publish. */
static void poll_consumers(jsCtx *js, monitor *m, int64_t now)
{
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    char tick_filter[32];
    snprintf(tick_filter, sizeof tick_filter, DM_SUBJ_TICK_FMT, ">");
    if (js_Consumers(&list, js, DM_STREAM_MARKET, NULL, &jerr) != NATS_OK)
        return;
    for (int k = 0; k < list->Count; k++) {
        jsConsumerInfo *ci = list->List[k];
        if (!ci->Config || !ci->Config->FilterSubject ||
            strcmp(ci->Config->FilterSubject, tick_filter) != 0)
            continue;
        int j = 0;
        while (j < m->ncons && strcmp(m->cons[j].name, ci->Name) != 0)
            j++;
        if (j == m->ncons) {
            if (m->ncons == MAX_CONSUMERS)
                continue;
            snprintf(m->cons[m->ncons++].name, sizeof m->cons[0].name, "%s", ci->Name);
        }
        if (atomic_load(&m->published) && m->cons[j].t_idle == 0 && ci->NumPending == 0 &&
            ci->NumAckPending == 0)
            m->cons[j].t_idle = now;
    }
    jsConsumerInfoList_Destroy(list);
}

static void *monitor_run(void *arg)
{
    monitor *m = arg;
    PGconn *pg = bench_pg_connect();
    redisContext *rc = bench_redis_connect();
    natsConnection *nc = bench_nats_connect("bench-monitor");
    jsCtx *js = NULL;
    if (!pg || !rc || !nc || natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
        !reach_prepare(pg)) {
        m->failed = true;
        goto out;
    }
    while (atomic_load(&m->t0) == 0)
        bench_sleep_ms(1);
    int64_t t0 = atomic_load(&m->t0);
    int64_t deadline = t0 + (int64_t)m->timeout_s * 1000 * NS_PER_MS, last_cons = 0;
    while (!(m->t_redis && m->t_pg)) {
        int64_t now = bench_now_ns();
        if (now > deadline || atomic_load(&m->abort)) {
            m->failed = true;
            break;
        }
        if (!m->t_redis && redis_has_latest(rc, m->t)) {
            m->t_redis = now;
            if (m->t_pg)
                bench_cpu_snapshot(m->cpu_end);
        }
        /* The observer must not load what it measures (the raw round has none): the
         * consumer list makes nats-server compute every consumer's pending count, so it is
         * sampled every 200 ms; every 10 ms there is only an index probe for the newest
         * stored tick, and the rows are counted once that is the last one (again until
         * all are there: with several workers an earlier batch may commit later). */
        if (now - last_cons >= POLL_SLOW_MS * NS_PER_MS) {
            last_cons = now;
            poll_consumers(js, m, now);
        }
        if (!m->t_pg) {
            long long reach = pg_reach(pg, m->t);
            int64_t at = bench_now_ns();
            if (reach >= 0 && m->pg_samples < 4096) {
                m->pg_t[m->pg_samples] = at;
                m->pg_n[m->pg_samples++] = reach;
            }
            if (reach == m->t->n) { /* the count's snapshot is taken when it is asked */
                /* Counting 100,000 fresh rows costs PostgreSQL tens of milliseconds (a
                 * heap fetch per row): the observer's, so the CPU is read before it. */
                double before[BENCH_CPU_COUNT];
                bench_cpu_snapshot(before);
                int64_t asked = bench_now_ns();
                long long n = pg_count(pg, m->t->symbol);
                m->pg_counts++;
                m->pg_final = n;
                if (n == m->t->n) {
                    m->t_pg = asked;
                    if (m->t_redis)
                        memcpy(m->cpu_end, before, sizeof before);
                }
            }
        }
        bench_sleep_ms(10);
    }
    if (m->failed && !m->t_pg) /* for the report: how many did arrive */
        m->pg_final = pg_count(pg, m->t->symbol);
    m->t_done = m->t_redis > m->t_pg ? m->t_redis : m->t_pg;
    if (!m->failed) /* a consumer not seen idle yet is, by now: "done by" this time */
        poll_consumers(js, m, bench_now_ns());
out:
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (rc)
        redisFree(rc);
    if (pg)
        PQfinish(pg);
    nats_ReleaseThreadMemory();
    return NULL;
}

typedef struct {
    double rate, secs, pub_secs, redis_secs, pg_secs, pg_mid_rate;
    int ncons;
    char cons_name[MAX_CONSUMERS][48];
    double cons_idle_secs[MAX_CONSUMERS]; /* 0: not seen idle */
    double cpu[BENCH_CPU_COUNT];
} dmresult;

static bool run_dm(natsConnection *nc, const tickset *t, int timeout_s, dmresult *out)
{
    memset(out, 0, sizeof *out);
    monitor *m = calloc(1, sizeof *m);
    if (m == NULL)
        return false;
    m->t = t;
    m->timeout_s = timeout_s;
    atomic_init(&m->published, false);
    atomic_init(&m->abort, false);
    atomic_init(&m->t0, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, monitor_run, m) != 0) {
        free(m);
        return false;
    }
    bench_sleep_ms(200); /* let the monitor connect before the clock starts */
    pubresult pr;
    double cpu0[BENCH_CPU_COUNT];
    bench_cpu_snapshot(cpu0);
    bool ok = publish_all(nc, DM_SUBJ_TICK_FMT, t, timeout_s, &pr, &m->t0);
    if (!ok) {
        atomic_store(&m->t0, (long long)bench_now_ns()); /* unblock the monitor */
        atomic_store(&m->abort, true);
    }
    atomic_store(&m->published, true);
    pthread_join(th, NULL);
    cpu_delta(cpu0, out->cpu);
    if (ok && !m->failed) /* up to the moment the work was seen done, not the monitor's tail */
        for (int i = 0; i < BENCH_CPU_COUNT; i++)
            out->cpu[i] = m->cpu_end[i] - cpu0[i];
    if (ok && m->failed) {
        fprintf(stderr,
                "bench: Data Manager did not finish within %d s: PostgreSQL has %lld of %d rows, "
                "Redis latest %s\n",
                timeout_s, m->pg_final, t->n, m->t_redis ? "ok" : "missing");
        ok = false;
    }
    if (ok) {
        out->secs = (double)(m->t_done - pr.t0) / 1e9;
        out->rate = t->n / out->secs;
        out->pub_secs = (double)(pr.t_acked - pr.t0) / 1e9;
        out->redis_secs = (double)(m->t_redis - pr.t0) / 1e9;
        out->pg_secs = (double)(m->t_pg - pr.t0) / 1e9;
        /* Steady-state row rate: between the samples nearest 10% and 90% of N. */
        int a = -1, b = -1;
        for (int i = 0; i < m->pg_samples; i++) {
            if (a < 0 && m->pg_n[i] >= t->n / 10)
                a = i;
            if (b < 0 && m->pg_n[i] >= t->n * 9LL / 10)
                b = i;
        }
        if (a >= 0 && b > a && m->pg_t[b] > m->pg_t[a])
            out->pg_mid_rate =
                (double)(m->pg_n[b] - m->pg_n[a]) / ((double)(m->pg_t[b] - m->pg_t[a]) / 1e9);
        out->ncons = m->ncons;
        for (int j = 0; j < m->ncons; j++) {
            snprintf(out->cons_name[j], sizeof out->cons_name[j], "%s", m->cons[j].name);
            out->cons_idle_secs[j] =
                m->cons[j].t_idle ? (double)(m->cons[j].t_idle - pr.t0) / 1e9 : 0;
        }
        fprintf(stderr,
                "  dm:  %d ticks in %.3f s = %.0f/s (PubAcks done %.3f s = %.0f/s; Redis latest "
                "at %.3f s; PostgreSQL %d rows at %.3f s, newest stored tick from 10%% to 90%% "
                "at %.0f ticks/s; rows counted %d time%s",
                t->n, out->secs, out->rate, out->pub_secs, t->n / out->pub_secs, out->redis_secs,
                t->n, out->pg_secs, out->pg_mid_rate, m->pg_counts, m->pg_counts == 1 ? "" : "s");
        for (int j = 0; j < m->ncons; j++)
            if (m->cons[j].t_idle)
                fprintf(stderr, "; %s idle at %.3f s", m->cons[j].name,
                        (double)(m->cons[j].t_idle - pr.t0) / 1e9);
        fprintf(stderr, ")\n");
    }
    free(m);
    return ok;
}

/* --------------------------------------------------- PostgreSQL probe --- */

/* Diagnostic, not a baseline: how fast PostgreSQL alone takes the rows, written the way
 * worker/backend/timescale.c writes ticks (one upsert of 1000 rows through unnest() per
 * statement, autocommit) from two connections at once, with NATS and the workers idle.
 * The statement is a copy of the worker's SQL_UPSERT_TICKS; keep them alike. */
#define PROBE_SQL                                                                               \
    "INSERT INTO ticks (symbol, ts, bid, ask, spread, volume, source) "                         \
    "SELECT DISTINCT ON (symbol, ts, source) symbol, ts, bid, ask, spread, volume, source "     \
    "FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], "          \
    "$6::float8[], $7::text[]) WITH ORDINALITY AS u(symbol, ts, bid, ask, spread, volume, "     \
    "source, ord) ORDER BY symbol, ts, source, ord DESC "                                       \
    "ON CONFLICT (symbol, ts, source) DO UPDATE SET bid = EXCLUDED.bid, ask = EXCLUDED.ask, "   \
    "spread = EXCLUDED.spread, volume = EXCLUDED.volume"

typedef struct {
    const char *symbol;
    int n, k; /* batches k, k+2, k+4, ... */
    bool ok;
    pthread_t th;
} probe;

static void *probe_run(void *arg)
{
    probe *p = arg;
    PGconn *pg = bench_pg_connect();
    size_t cap = FETCH_BATCH * 40 + 64;
    char *col[7];
    for (int c = 0; c < 7; c++)
        col[c] = malloc(cap);
    p->ok = pg != NULL;
    if (p->ok) {
        PGresult *r = PQprepare(pg, "probe", PROBE_SQL, 7, NULL);
        p->ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!p->ok)
            fprintf(stderr, "bench: probe prepare: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    for (int first = p->k * FETCH_BATCH; p->ok && first < p->n; first += 2 * FETCH_BATCH) {
        int last = first + FETCH_BATCH < p->n ? first + FETCH_BATCH : p->n;
        size_t len[7] = {0};
        for (int c = 0; c < 7; c++)
            col[c][len[c]++] = '{';
        for (int i = first; i < last; i++) {
            const char *sep = i > first ? "," : "";
            int64_t ts = TS_BASE + (int64_t)i * TS_STEP;
            len[0] += (size_t)snprintf(col[0] + len[0], cap - len[0], "%s\"%s\"", sep, p->symbol);
            len[1] += (size_t)snprintf(col[1] + len[1], cap - len[1], "%s%" PRId64, sep, ts);
            len[2] += (size_t)snprintf(col[2] + len[2], cap - len[2], "%s1.10001", sep);
            len[3] += (size_t)snprintf(col[3] + len[3], cap - len[3], "%s1.10003", sep);
            len[4] += (size_t)snprintf(col[4] + len[4], cap - len[4], "%s0.00002", sep);
            len[5] += (size_t)snprintf(col[5] + len[5], cap - len[5], "%s1", sep);
            len[6] += (size_t)snprintf(col[6] + len[6], cap - len[6], "%s\"bench\"", sep);
        }
        const char *vals[7];
        for (int c = 0; c < 7; c++) {
            snprintf(col[c] + len[c], cap - len[c], "}");
            vals[c] = col[c];
        }
        PGresult *r = PQexecPrepared(pg, "probe", 7, vals, NULL, NULL, 0);
        p->ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!p->ok)
            fprintf(stderr, "bench: probe insert: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    for (int c = 0; c < 7; c++)
        free(col[c]);
    if (pg)
        PQfinish(pg);
    return NULL;
}

/* Rows per second, 0 on failure. */
static double pg_probe(const char *symbol, int n)
{
    probe p[2];
    int64_t t0 = bench_now_ns();
    for (int k = 0; k < 2; k++) {
        p[k] = (probe){.symbol = symbol, .n = n, .k = k};
        if (pthread_create(&p[k].th, NULL, probe_run, &p[k]) != 0)
            return 0;
    }
    for (int k = 0; k < 2; k++)
        pthread_join(p[k].th, NULL);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    return p[0].ok && p[1].ok ? n / secs : 0;
}

/* A symbol nobody used: FIRST + two random letters + /USD (BQX/USD travels as BQXUSD). */
static bool fresh_symbol(PGconn *pg, char first, char *out, size_t cap)
{
    for (int tries = 0; tries < 50; tries++) {
        snprintf(out, cap, "%c%c%c/USD", first, 'A' + rand() % 26, 'A' + rand() % 26);
        long long n = pg_count(pg, out);
        if (n == 0)
            return true;
        if (n < 0)
            return false;
    }
    return false;
}

/* ---------------------------------------------------------------- main --- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_ingest [--ticks N] [--rounds R] [--timeout S] [--workers K]\n"
                    "  --ticks N    ticks per measurement (default 100000)\n"
                    "  --rounds R   raw/Data Manager rounds, best of each reported (default 5)\n"
                    "  --timeout S  give up on one measurement after S seconds (default 120)\n"
                    "  --workers K  workers the stack runs = raw consumer threads (default 2)\n");
}

typedef struct {
    int n, rounds, timeout_s, workers;
} ingest_args;

/* 0 to run, else the exit code (usage printed). */
static int parse_args(int argc, char **argv, ingest_args *a)
{
    *a = (ingest_args){.n = 100000, .rounds = 5, .timeout_s = 120, .workers = 2};
    static const struct option opts[] = {{"ticks", required_argument, 0, 'n'},
                                         {"rounds", required_argument, 0, 'r'},
                                         {"timeout", required_argument, 0, 't'},
                                         {"workers", required_argument, 0, 'k'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': a->n = atoi(optarg); break;
        case 'r': a->rounds = atoi(optarg); break;
        case 't': a->timeout_s = atoi(optarg); break;
        case 'k': a->workers = atoi(optarg); break;
        default: usage(); return c == 'h' ? 0 : 64;
        }
    }
    if (a->n < 1 || a->n > 5000000 || a->rounds < 1 || a->rounds > MAX_ROUNDS ||
        a->timeout_s < 1 || a->timeout_s > 3600 || a->workers < 1 || a->workers > MAX_CONSUMERS) {
        usage();
        return 64;
    }
    return -1;
}

typedef struct {
    rawresult raw[MAX_ROUNDS], bestraw;
    rawresult raw2[MAX_ROUNDS], bestraw2; /* two consumers: an extra row, not the baseline */
    dmresult dm[MAX_ROUNDS], bestdm;
} ingest_results;

/* The round's ticks leave MARKET once stored: the raw baseline runs on a stream made for
 * the round, and nats-server 2.9 walks a stream's blocks on every delivery, so a MARKET
 * grown by the earlier rounds (and worker counts) would make each DM round dearer than the
 * last. Only the round's own subject goes; anything else in the stream stays. */
static void purge_round(natsConnection *nc, const tickset *t)
{
    jsCtx *js = NULL;
    jsOptions o;
    jsOptions_Init(&o);
    char subject[64];
    snprintf(subject, sizeof subject, DM_SUBJ_TICK_FMT, t->token);
    o.Stream.Purge.Subject = subject;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK)
        s = js_PurgeStream(js, DM_STREAM_MARKET, &o, &jerr);
    if (s != NATS_OK)
        fprintf(stderr, "bench: could not purge %s from %s: %s (%d)\n", subject, DM_STREAM_MARKET,
                natsStatus_GetText(s), (int)jerr);
    jsCtx_Destroy(js);
}

/* MARKET's duplicate-detection memory starts each DM round empty, as the raw round's stream
 * made for it does. nats-server keeps every Nats-Msg-Id of the window (120 s) in one map,
 * and the earlier rounds' 100,000 ids each made the next DM round's nats-server dearer
 * (measured: 3.3-3.5 s of CPU per round on a fresh server, up to 5.4 s back to back). A
 * config update that changes the window makes nats-server expire the map against the new
 * window at once (stream.go, update); 100 ms forgets the ids of rounds that ended before,
 * and the window is set back before any tick of this round is published. */
static bool forget_msg_ids(natsConnection *nc)
{
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL, *up = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK)
        s = js_GetStreamInfo(&si, js, DM_STREAM_MARKET, NULL, &jerr);
    if (s == NATS_OK && si->Config->Duplicates > 100 * NS_PER_MS) {
        int64_t window = si->Config->Duplicates;
        si->Config->Duplicates = 100 * NS_PER_MS;
        s = js_UpdateStream(&up, js, si->Config, NULL, &jerr);
        jsStreamInfo_Destroy(up);
        up = NULL;
        bench_sleep_ms(20); /* the expiry runs on nats-server's timer, not in the update */
        si->Config->Duplicates = window;
        natsStatus s2 = js_UpdateStream(&up, js, si->Config, NULL, &jerr);
        jsStreamInfo_Destroy(up);
        if (s == NATS_OK)
            s = s2;
    }
    if (s != NATS_OK)
        fprintf(stderr, "bench: could not reset the duplicate window of %s: %s (%d)\n",
                DM_STREAM_MARKET, natsStatus_GetText(s), (int)jerr);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return s == NATS_OK;
}

/* Each round: a fresh symbol, the raw baseline, then the Data Manager. */
static bool run_rounds(natsConnection *nc, PGconn *pg, const ingest_args *a, ingest_results *res)
{
    for (int r = 0; r < a->rounds; r++) {
        char symbol[16];
        tickset t;
        if (!fresh_symbol(pg, 'B', symbol, sizeof symbol)) {
            fprintf(stderr, "bench: no unused symbol B<letter><letter>/USD found\n");
            return false;
        }
        if (!tickset_make(&t, a->n, symbol)) {
            fprintf(stderr, "bench: out of memory\n");
            return false;
        }
        fprintf(stderr, "round %d/%d: %d ticks, symbol %s (%d-byte payloads)\n", r + 1, a->rounds,
                a->n, symbol, t.len[0]);
        bool ok = run_raw(nc, &t, a->timeout_s, a->workers, 1, &res->raw[r]) &&
                  run_raw(nc, &t, a->timeout_s, a->workers, 2, &res->raw2[r]) &&
                  forget_msg_ids(nc) && run_dm(nc, &t, a->timeout_s, &res->dm[r]);
        purge_round(nc, &t);
        tickset_free(&t);
        if (!ok)
            return false;
        if (res->raw[r].rate > res->bestraw.rate)
            res->bestraw = res->raw[r];
        if (res->raw2[r].rate > res->bestraw2.rate)
            res->bestraw2 = res->raw2[r];
        if (res->dm[r].rate > res->bestdm.rate)
            res->bestdm = res->dm[r];
    }
    return true;
}

/* CPU microseconds per tick, end to end: every part of the stack and this process. */
static double cpu_per_tick_us(const double cpu[BENCH_CPU_COUNT], int n)
{
    double sum = 0;
    for (int i = 0; i < BENCH_CPU_COUNT; i++)
        sum += cpu[i];
    return sum * 1e6 / n;
}

static void report_rows(const ingest_args *a, const ingest_results *res)
{
    char v[48], b[64], name[64], x[32], y[32];
    const dmresult *dm = &res->bestdm;
    double ratio = dm->rate / res->bestraw.rate;
    int k = a->workers;
    snprintf(name, sizeof name, "ingest ticks/s, %d worker%s", k, k > 1 ? "s" : "");
    snprintf(v, sizeof v, "%s/s", bench_thousands(dm->rate, x, sizeof x));
    snprintf(b, sizeof b, "%s/s raw JS x%d", bench_thousands(res->bestraw.rate, y, sizeof y), k);
    bench_row(name, v, b, ratio, ">= 0.65", ratio >= 0.65);
    double dm_us = cpu_per_tick_us(dm->cpu, a->n), raw_us = cpu_per_tick_us(res->bestraw.cpu, a->n);
    snprintf(name, sizeof name, "ingest CPU us/tick, %d worker%s", k, k > 1 ? "s" : "");
    snprintf(v, sizeof v, "%.1f us", dm_us);
    snprintf(b, sizeof b, "%.1f us raw JS", raw_us);
    bench_row(name, v, b, dm_us / raw_us, "<= 1.60", dm_us <= 1.6 * raw_us);
    /* Not a baseline: what bare JetStream costs when every tick goes to two durable
     * consumers, as the worker's go to timescale-tick and dragonfly-tick. */
    double raw2_us = cpu_per_tick_us(res->bestraw2.cpu, a->n);
    snprintf(name, sizeof name, "  raw JS, 2 consumers, %d worker%s", k, k > 1 ? "s" : "");
    snprintf(v, sizeof v, "%.1f us", raw2_us);
    bench_row(name, v, b, raw2_us / raw_us, "info", -1);
    if (k == 2) {
        snprintf(v, sizeof v, "%s/s", bench_thousands(dm->rate, x, sizeof x));
        bench_row("ingest ticks/s absolute", v, "-", dm->rate / 50000.0, ">= 50,000/s",
                  dm->rate >= 50000);
    }
}

/* Where the time went in the best rounds: publish, caches, PostgreSQL, each consumer. */
static void report_timings(const ingest_args *a, const ingest_results *res)
{
    char x[32], y[32], all[512] = "", cs[512] = "";
    const dmresult *dm = &res->bestdm;
    const rawresult *raw = &res->bestraw;
    int n = a->n;
    size_t k = 0;
    for (int r = 0; r < a->rounds; r++)
        k += (size_t)snprintf(all + k, sizeof all - k, "%s%.0f/%.0f/%.0f", r ? ", " : "",
                              res->dm[r].rate, res->raw[r].rate, res->raw2[r].rate);
    bench_note("ingest %d: rounds (dm/raw/raw with 2 consumers ticks/s): %s; best of each reported",
               a->workers, all);
    bench_note("ingest %d: best dm round: PubAcks in %.3f s (%s/s publish-only), Redis latest "
               "at %.3f s, PostgreSQL %d rows at %.3f s (the newest stored tick went from 10%% to "
               "90%% at %s ticks/s)",
               a->workers, dm->pub_secs, bench_thousands(n / dm->pub_secs, x, sizeof x), dm->redis_secs, n,
               dm->pg_secs,
               dm->pg_mid_rate > 0 ? bench_thousands(dm->pg_mid_rate, y, sizeof y) : "n/a");
    k = 0;
    for (int j = 0; j < dm->ncons; j++)
        if (dm->cons_idle_secs[j] > 0)
            k += (size_t)snprintf(cs + k, sizeof cs - k, "%s%s done by %.3f s (%s/s)",
                                  k ? ", " : "", dm->cons_name[j], dm->cons_idle_secs[j],
                                  bench_thousands(n / dm->cons_idle_secs[j], x, sizeof x));
    if (k)
        bench_note("ingest %d: tick consumers of MARKET (%d workers each): %s", a->workers,
                   a->workers, cs);
    char per[128] = "";
    k = 0;
    for (int j = 0; j < a->workers && k < sizeof per; j++)
        k += (size_t)snprintf(per + k, sizeof per - k, "%s%ld", j ? " + " : "", raw->per_consumer[j]);
    bench_note("ingest %d: raw baseline best round: PubAcks in %.3f s (%s/s publish-only), "
               "consumers acked %s",
               a->workers, n / raw->pub_rate, bench_thousands(raw->pub_rate, x, sizeof x), per);
}

static void report_cpu(const ingest_args *a, const ingest_results *res)
{
    static const char *const what[3] = {"dm", "raw", "raw 2-consumer"};
    for (int w = 0; w < 3; w++) {
        const rawresult *raw = w == 1 ? &res->bestraw : &res->bestraw2;
        const double *cpu = w ? raw->cpu : res->bestdm.cpu;
        double wall = w ? raw->secs : res->bestdm.secs, sum = 0;
        char list[256];
        size_t l = 0;
        for (int i = 0; i < BENCH_CPU_COUNT; i++) {
            sum += cpu[i];
            l += (size_t)snprintf(list + l, sizeof list - l, "%s%s %.2f", i ? ", " : "",
                                  bench_cpu_names[i], cpu[i]);
        }
        bench_note("ingest %d: CPU seconds in the best %s round (%.2f s wall x %ld cores = %.2f "
                   "available): %s; total %.2f = %.1f us per tick",
                   a->workers, what[w], wall, sysconf(_SC_NPROCESSORS_ONLN),
                   wall * (double)sysconf(_SC_NPROCESSORS_ONLN), list, sum, sum * 1e6 / a->n);
    }
}

static void report_pg_alone(PGconn *pg, int n)
{
    char psym[16], x[32];
    double prate = fresh_symbol(pg, 'P', psym, sizeof psym) ? pg_probe(psym, n) : 0;
    if (prate > 0)
        bench_note("ingest: PostgreSQL alone (the worker's unnest upsert, 1000 rows per "
                   "statement, 2 connections, NATS idle): %s rows/s",
                   bench_thousands(prate, x, sizeof x));
}

int main(int argc, char **argv)
{
    ingest_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    natsConnection *nc = bench_nats_connect("bench-ingest");
    PGconn *pg = bench_pg_connect();
    if (!nc || !pg)
        return 1;
    ingest_results res = {0};
    rc = run_rounds(nc, pg, &a, &res) ? 0 : 1;
    if (rc == 0) {
        report_rows(&a, &res);
        report_timings(&a, &res);
        report_cpu(&a, &res);
        if (a.workers == 2) /* once per bench/run.sh, which runs 1, 2 and 3 workers */
            report_pg_alone(pg, a.n);
    }
    PQfinish(pg);
    natsConnection_Destroy(nc);
    nats_Close();
    return rc;
}
