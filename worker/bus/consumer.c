#include "consumer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/coherence.h"
#include "hand.h"
#include "lease.h"
#include "pull.h"
#include "util/log.h"
#include "obs/metrics.h"

#define NS_PER_MS 1000000LL
#define DM_ACK_WAIT_S 10 /* a batch commits in milliseconds; a dead worker's batch returns in 10 s */
/* Candles: a dead lease holder's messages come back to the next holder this long after
 * their delivery, which is before its lease expires (bus/lease.h). */
#define DM_ORDERED_ACK_WAIT_MS 2000
#define DM_IDLE_WAIT_MS 500
#define DM_BULK_BATCH 8 /* bulk messages carry up to 10,000 candles each */
/* A takeover waits this long at most for a predecessor's messages to come back (they do
 * after their AckWait, unless a stalled worker keeps renewing them). */
#define DM_GATHER_MAX_MS 10000

struct dm_consumer {
    dm_bus *bus;
    dm_kind kind;
    dm_backend *backend;
    dm_ingest *ingest;
    dm_strategy_holder *strategies;
    dm_breaker *breaker;   /* the backend's, shared with the worker's other threads */
    const dm_strategy *st; /* the version of the batch in hand (thread-local use) */
    dm_buf update;         /* coherence message scratch */
    dm_pull *pull;
    dm_lease *lease;   /* candle kinds: written by one worker at a time; NULL for the rest */
    natsMsg **fetched; /* the batch in hand, DM_FETCH_MAX long */
    pthread_t thread;
    atomic_bool stop;
    char durable[48];
    int failures; /* consecutive failed batches, for backoff */
    bool behind;  /* the last fetch ended with a backlog at the server: linger longer */
    dm_ingest_msg *msgs;
    natsMsg **batch; /* the NATS message of each msgs[i] */
    int *batch_at;   /* batch[k] is got[batch_at[k]] of process() */
    size_t msgs_cap;
    /* Ordered kinds (bus/hand.h): what this worker holds, in stream order; whether a
     * delivery may be elsewhere (a predecessor's, or lost with a connection) so nothing
     * is written before it is back in hand; the consumer sequence of the last delivery;
     * the newest stream sequence settled since this worker took the lease. */
    dm_hand hand;
    bool *keep; /* per message handed to process(): held for another attempt */
    bool must_gather;
    bool exact; /* everything outstanding was in hand when writing began: settled_seq holds */
    uint64_t last_cseq, settled_seq;
};

static int batch_size(const dm_consumer *c)
{
    int n = c->st->perf.batch_size;
    return c->kind == DM_KIND_CANDLES && n > DM_BULK_BATCH ? DM_BULK_BATCH : n;
}

/* Candles are written in stream order (bus/lease.h); a tick's latest value is the newest
 * whatever the order, so every worker writes ticks. */
static bool ordered(const dm_consumer *c)
{
    return c->kind == DM_KIND_CANDLE || c->kind == DM_KIND_CANDLES;
}

static natsStatus bind_consumer(dm_consumer *c, dm_err *err)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = c->durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = ordered(c) ? DM_ORDERED_ACK_WAIT_MS * NS_PER_MS : DM_ACK_WAIT_S * 1000 * NS_PER_MS;
    cc.MaxDeliver = -1; /* a write waits for its backend however long it is down */
    cc.FilterSubject = dm_kind_filter(c->kind);
    cc.DeliverPolicy = js_DeliverAll;
    /* Room for every worker to have a few batches in flight. */
    cc.MaxAckPending = (int64_t)batch_size(c) * 16 < 1000 ? 1000 : (int64_t)batch_size(c) * 16;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, c->bus->js, DM_STREAM_MARKET, &cc, NULL, &jerr);
    if (s != NATS_OK) /* exists with other settings (an older version): bring it in line */
        s = js_UpdateConsumer(&ci, c->bus->js, DM_STREAM_MARKET, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK)
        c->pull = dm_pull_create(c->bus->nc, DM_STREAM_MARKET, c->durable, &s);
    if (s != NATS_OK)
        dm_fail(err, DM_E_UNAVAILABLE, "", "consumer %s: %s (%d)", c->durable, natsStatus_GetText(s),
                (int)jerr);
    return s;
}

#define DM_FETCH_MAX 10000 /* the largest batch_size the strategy allows */
/* A consumer this far behind (messages JetStream had yet to deliver to it, as its last
 * delivery said) lingers at least DM_BEHIND_LINGER_MS: its messages are late already, and
 * larger batches are what lets it catch up, since each batch costs a statement and a
 * commit, a cache update, a burst of acks and nats-server's work on them whatever its
 * size. Workers sharing the consumer split its backlog: nats-server deals it to their
 * waiting requests in turn, so each fills at 1/K of the rate. With 3 workers a 20 ms
 * linger made 320-416 tick batches per 100,000 ticks, 60 ms 152-165, and cost workers
 * 1.07-1.38 against 1.28-1.64 CPU s (3 alternating pairs of rounds). A consumer that
 * keeps up keeps the strategy's linger, and the freshness it buys. */
#define DM_BEHIND_PENDING 1000
#define DM_BEHIND_LINGER_MS 60

/* Returns with as many messages as arrive within the linger (up to a batch). A consumer of
 * ticks or single candles lingers, so a steady stream is written a few milliseconds at a
 * time instead of a round trip per message: briefly for PostgreSQL and Dragonfly (the
 * latest values wait at most that long), long for ClickHouse, which wants few large
 * inserts. The linger runs from the start of the fetch, so a message that ends a quiet
 * spell is written at once. */
static int fetch(dm_consumer *c)
{
    int batch = batch_size(c);
    if (batch > DM_FETCH_MAX)
        batch = DM_FETCH_MAX;
    /* Bulk messages are large batches already: only ticks and single candles linger. */
    bool small = c->kind == DM_KIND_TICK || c->kind == DM_KIND_CANDLE;
    int linger = !small                                ? 0
                 : c->backend->id == DM_BK_CLICKHOUSE ? c->st->perf.clickhouse_batch_linger_ms
                                                      : c->st->perf.batch_linger_ms;
    if (small && c->behind && linger < DM_BEHIND_LINGER_MS)
        linger = DM_BEHIND_LINGER_MS;
    int n = dm_pull_fetch(c->pull, c->fetched, batch, DM_IDLE_WAIT_MS, linger, &c->stop);
    dm_pull_meta last;
    c->behind = n > 0 && dm_pull_meta_of(c->fetched[n - 1], &last) && last.pending >= DM_BEHIND_PENDING;
    return n;
}

static void set_header(natsMsg *m, const char *k, const char *v)
{
    if (v && *v)
        natsMsgHeader_Set(m, k, v);
}

/* Dead letters keep the original payload and say why in headers. The id is derived from
 * the stream sequence so every consumer that meets the message makes the same entry. */
static bool dead_letter(dm_consumer *c, natsMsg *orig, const char *payload, size_t len,
                        const dm_err *e, int index, bool by_backend)
{
    dm_pull_meta meta;
    if (!dm_pull_meta_of(orig, &meta))
        return false;
    char subject[64], id[64], seq[24], idx[16], delivered[24];
    snprintf(subject, sizeof subject, DM_SUBJ_DLQ_FMT, dm_kind_name(c->kind));
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)meta.stream_seq);
    snprintf(delivered, sizeof delivered, "%llu", (unsigned long long)meta.delivered);
    /* Invalid input is the same for every consumer (one entry); a refusal by one database
     * is that backend's own (one entry per backend). */
    if (index >= 0)
        snprintf(id, sizeof id, "dlq:%s:%s", seq, (snprintf(idx, sizeof idx, "%d", index), idx));
    else if (by_backend)
        snprintf(id, sizeof id, "dlq:%s:%s", seq, dm_backend_label(c->backend));
    else
        snprintf(id, sizeof id, "dlq:%s", seq);

    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subject, NULL, payload, (int)len) != NATS_OK)
        return false;
    const char *ct = NULL;
    natsMsgHeader_Get(orig, DM_HDR_CONTENT_TYPE, &ct);
    set_header(m, DM_HDR_MSG_ID, id);
    set_header(m, DM_HDR_CONTENT_TYPE, index >= 0 ? "application/json" : ct);
    set_header(m, DM_HDR_REASON, e->message);
    set_header(m, DM_HDR_CODE, dm_code_name(e->code));
    set_header(m, DM_HDR_FIELD, e->field);
    set_header(m, DM_HDR_ORIGINAL_SUBJECT, natsMsg_GetSubject(orig));
    set_header(m, DM_HDR_STREAM_SEQ, seq);
    set_header(m, DM_HDR_CONSUMER, c->durable);
    if (by_backend)
        set_header(m, DM_HDR_BACKEND, dm_backend_label(c->backend));
    set_header(m, DM_HDR_DELIVERED, delivered);
    if (index >= 0)
        set_header(m, DM_HDR_INDEX, idx);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_PublishMsg(&pa, c->bus->js, m, NULL, &jerr);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        DM_WARN("ingest", "%s: dead-letter publish failed (%s): message will be redelivered",
                c->durable, natsStatus_GetText(s));
    return s == NATS_OK;
}

/* Between failed batches: from 250 ms up to 10 s. */
static int64_t backoff_ms(dm_consumer *c)
{
    const dm_backoff b = {250, c->st->perf.retry_backoff_multiplier, 10000};
    return dm_backoff_ms(&b, c->failures > 0 ? c->failures : 1);
}

/* In-place retries of one batch wait at most half its AckWait in all, so the batch is
 * settled (acked, or handed back) before JetStream would deliver it again. */
static int64_t retry_budget_ms(const dm_consumer *c)
{
    return (ordered(c) ? DM_ORDERED_ACK_WAIT_MS : DM_ACK_WAIT_S * 1000) / 2;
}

/* A message to try again. An ordered consumer keeps it in hand (keep non-NULL): handed
 * back, it would come again behind newer messages already delivered to this worker.
 * Others hand it back with a delay while newer messages proceed. */
static void again(dm_consumer *c, natsMsg *m, int64_t delay_ms, unsigned counts[3], bool *keep)
{
    if (keep)
        *keep = true;
    else
        dm_pull_nak(c->pull, m, delay_ms);
    counts[2]++;
}

static void settle(dm_consumer *c, natsMsg *m, dm_ingest_msg *im, unsigned counts[3], bool *keep)
{
    bool ok = true;
    for (size_t r = 0; r < im->n_rejects && ok; r++) {
        const dm_reject *rj = &im->rejects[r];
        ok = rj->payload && dead_letter(c, m, rj->payload, strlen(rj->payload), &rj->err, rj->index, false);
    }
    if (!ok) {
        again(c, m, 1000, counts, keep);
        return;
    }
    switch (im->verdict) {
    case DM_V_ACK:
        dm_pull_ack(c->pull, m);
        counts[0]++;
        break;
    case DM_V_DEAD:
        if (dead_letter(c, m, im->data, im->len, &im->err, -1, im->refused_by_backend)) {
            dm_pull_term(c->pull, m);
            counts[1]++;
            DM_INFO("ingest", "%s: dead-lettered %s: %s [%s:%d]", c->durable, im->subject,
                    im->err.message, im->err.file ? im->err.file : "?", im->err.line);
        } else {
            again(c, m, 1000, counts, keep);
        }
        break;
    case DM_V_RETRY:
        again(c, m, backoff_ms(c), counts, keep);
        break;
    }
}

/* Every backend that a read route answers this kind from tells the workers what it
 * committed, so no single backend's outage leaves an L1 stale. */
static bool is_update_source(const dm_consumer *c)
{
    if (c->kind == DM_KIND_EVENT)
        return false;
    dm_op read = c->kind == DM_KIND_TICK ? DM_OP_GET_LATEST_TICK : DM_OP_GET_CANDLES;
    return dm_route_has(&c->st->routing[read], c->backend->id);
}

/* Core NATS, fire and forget: a worker that may have missed one stops trusting its L1
 * (a reconnect or a slow-consumer drop restarts its cache, see cache/fresh.h). */
static void publish_update(dm_consumer *c, size_t n)
{
    if (!dm_coherence_encode(c->ingest, c->backend->id, c->msgs, n, &c->update))
        return;
    natsStatus s = natsConnection_Publish(c->bus->nc, DM_SUBJ_CACHE_UPDATE, c->update.data,
                                          (int)c->update.len);
    if (s != NATS_OK)
        DM_WARN("ingest", "%s: cache update not published: %s", c->durable, natsStatus_GetText(s));
}

/* The breaker hears how the backend did: a batch with rows either committed or met a
 * transient failure (invalid input says nothing about the backend). */
static void report_backend(dm_consumer *c, size_t n)
{
    bool wrote = false, failed = false;
    for (size_t i = 0; i < n; i++) {
        wrote = wrote || c->msgs[i].row_count > 0;
        failed = failed || (c->msgs[i].verdict == DM_V_RETRY && c->msgs[i].err.code == DM_E_UNAVAILABLE);
    }
    if (c->breaker && wrote)
        dm_breaker_report(c->breaker, !failed, dm_now_ms(), c->st->perf.circuit_breaker_threshold);
}

static bool reserve_msgs(dm_consumer *c, size_t n)
{
    if (n <= c->msgs_cap)
        return true;
    dm_ingest_msg *p = realloc(c->msgs, n * sizeof *p);
    if (p == NULL)
        return false;
    c->msgs = p;
    natsMsg **b = realloc(c->batch, n * sizeof *b);
    if (b == NULL)
        return false;
    c->batch = b;
    int *at = realloc(c->batch_at, n * sizeof *at);
    if (at == NULL)
        return false;
    c->batch_at = at;
    c->msgs_cap = n;
    return true;
}

/* A message this consumer has seen more often than the strategy allows leaves the stream
 * for the DLQ (one entry per backend: another backend may have stored it fine). */
static bool expire_if_over_delivered(dm_consumer *c, natsMsg *m, unsigned counts[3], bool *keep)
{
    dm_pull_meta meta;
    if (!dm_pull_meta_of(m, &meta))
        return false;
    uint64_t delivered = meta.delivered;
    int max = c->st->perf.max_deliveries;
    if (max <= 0 || delivered <= (uint64_t)max)
        return false;
    dm_err e = {0};
    dm_fail(&e, DM_E_UNAVAILABLE, "", "delivered %llu times to %s, more than max_deliveries %d",
            (unsigned long long)delivered, c->durable, max);
    if (dead_letter(c, m, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &e, -1, true)) {
        dm_pull_term(c->pull, m);
        counts[1]++;
        DM_WARN("ingest", "%s: dead-lettered %s: %s", c->durable, natsMsg_GetSubject(m), e.message);
    } else {
        again(c, m, 1000, counts, keep);
    }
    return true;
}

/* A header of the message, for the ingest (which never sees NATS); NULL when absent.
 * nats.c parses all of a message's headers on the first lookup, which a tick taken from
 * the worker's tick share never needs. */
static const char *header_of(const void *src, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get((natsMsg *)src, name, &v) == NATS_OK ? v : NULL;
}

/* Writes got[0..total). keep (ordered kinds) receives the messages held for another
 * attempt; the others are settled (acked, dead-lettered, or handed back). */
static void process(dm_consumer *c, natsMsg **got, int total, bool *keep)
{
    if (!reserve_msgs(c, (size_t)total)) {
        for (int i = 0; keep && i < total; i++)
            keep[i] = true;
        c->failures++;
        return; /* unacked: redelivered after AckWait, or kept in hand */
    }
    unsigned counts[3] = {0, 0, 0}; /* acked, dead, retried */
    size_t n = 0;
    for (int i = 0; i < total; i++) {
        natsMsg *m = got[i];
        if (expire_if_over_delivered(c, m, counts, keep ? &keep[i] : NULL))
            continue;
        dm_ingest_msg *im = &c->msgs[n];
        c->batch_at[n] = i;
        c->batch[n++] = m;
        memset(im, 0, sizeof *im);
        im->subject = natsMsg_GetSubject(m);
        im->data = natsMsg_GetData(m);
        im->len = (size_t)natsMsg_GetDataLength(m);
        im->header = header_of; /* asked only when the payload is parsed */
        im->src = m;
        dm_pull_meta meta;
        if (dm_pull_meta_of(m, &meta)) {
            im->seq = meta.stream_seq;
            im->stored_ns = meta.stored_ns;
        }
    }
    if (n > 0) {
        const dm_backoff in_place = {100, c->st->perf.retry_backoff_multiplier, 2000};
        dm_ingest_set_retry(c->ingest, c->st->perf.retry_max_attempts, &in_place, retry_budget_ms(c),
                            &c->stop);
        const dm_cache_opts opts = {
            .ttl_s = c->kind == DM_KIND_TICK ? c->st->cache.tick_ttl_s : c->st->cache.candle_ttl_s,
            .depth = c->st->cache.candle_cache_depth};
        dm_ingest_batch(c->ingest, c->msgs, n, &opts);
        for (size_t k = 0; k < n; k++)
            settle(c, c->batch[k], &c->msgs[k], counts, keep ? &keep[c->batch_at[k]] : NULL);
    }
    dm_metrics_ingest((int)c->kind, c->backend->id, counts[0], counts[1], counts[2]);
    report_backend(c, n);
    if (counts[0] > 0 && is_update_source(c))
        publish_update(c, n);
    if (counts[2] > 0) {
        c->failures++;
        const dm_ingest_msg *bad = NULL;
        for (size_t i = 0; i < n && !bad; i++)
            if (c->msgs[i].verdict == DM_V_RETRY)
                bad = &c->msgs[i];
        DM_WARN("ingest", "%s: %u message(s) left for redelivery: %s [%s:%d]", c->durable, counts[2],
                bad ? bad->err.message : "dead-letter publish failed",
                bad && bad->err.file ? bad->err.file : "bus/consumer.c", bad ? bad->err.line : 0);
    } else {
        c->failures = 0;
    }
}

static void sleep_interruptible(dm_consumer *c, int64_t ms)
{
    dm_sleep_ms(ms, &c->stop);
}

/* ---- ordered kinds: one writer, in stream order ----------------------------------- */

/* Everything in hand goes back to the stream at once, then whatever the open pull request
 * still brings: the next writer (this worker again, or another) collects it all before
 * writing (gather). */
static void hand_back(dm_consumer *c)
{
    for (size_t i = 0; i < c->hand.n; i++)
        dm_pull_nak(c->pull, c->hand.msg[i], 0);
    dm_hand_clear(&c->hand);
    dm_pull_give_back(c->pull);
    c->must_gather = true;
    c->exact = false;
    c->last_cseq = c->settled_seq = 0;
}

/* Fetched messages into the hand. A gap in the consumer's delivery counter means a
 * delivery this worker never saw (lost with a connection): nothing is written until it is
 * back. A message at or below what was settled since the takeover is a second delivery
 * of it (its first was in hand before): acked again, not written again. */
static void take_delivered(dm_consumer *c, int got)
{
    for (int i = 0; i < got; i++) {
        natsMsg *m = c->fetched[i];
        dm_pull_meta meta = {0};
        dm_pull_meta_of(m, &meta);
        if (c->last_cseq && meta.consumer_seq && meta.consumer_seq != c->last_cseq + 1 && !c->must_gather) {
            if (meta.consumer_seq > c->last_cseq)
                DM_INFO("lease", "%s: deliveries %llu..%llu never reached this worker: "
                                 "collecting them first",
                        c->durable, (unsigned long long)c->last_cseq + 1,
                        (unsigned long long)meta.consumer_seq - 1);
            else /* a new consumer leader whose count is behind the old one's */
                DM_INFO("lease", "%s: delivery count went back from %llu to %llu: "
                                 "collecting what is outstanding first",
                        c->durable, (unsigned long long)c->last_cseq,
                        (unsigned long long)meta.consumer_seq);
            c->must_gather = true;
        }
        if (meta.consumer_seq)
            c->last_cseq = meta.consumer_seq;
        if (meta.stream_seq && meta.stream_seq <= c->settled_seq &&
            !dm_hand_has(&c->hand, meta.stream_seq)) {
            dm_pull_ack(c->pull, m);
            natsMsg_Destroy(m);
        } else if (!dm_hand_add(&c->hand, m, meta.stream_seq)) {
            natsMsg_Destroy(m); /* unacked: it comes back after its AckWait */
            c->must_gather = true;
        }
    }
}

/* What is held must stay this worker's while it waits: its AckWait starts again. */
static void renew_hand(dm_consumer *c)
{
    for (size_t i = 0; i < c->hand.n; i++)
        dm_pull_progress(c->pull, c->hand.msg[i]);
}

/* Before anything is written after a takeover or a lost delivery, every message this
 * consumer has outstanding must be in hand: a dead predecessor's come back when their
 * AckWait runs out, and newer ones wait in hand, sorted, until then. False when the lease
 * went meanwhile (everything handed back) or the worker stops. */
static bool gather(dm_consumer *c)
{
    int64_t start = dm_mono_ms(), renewed = start, told = start;
    for (;;) {
        dm_consumer_lag lag = {0};
        bool known = dm_bus_consumer_lag(c->bus, c->durable, &lag);
        if (known && lag.ack_pending <= c->hand.n)
            break;
        int64_t now = dm_mono_ms();
        if (now - told >= 1000) { /* what a slow takeover waits for, in the log */
            told = now;
            if (known)
                DM_INFO("lease", "%s: collecting: %llu outstanding, %zu in hand, ack floor %llu",
                        c->durable, (unsigned long long)lag.ack_pending, c->hand.n,
                        (unsigned long long)lag.ack_floor);
            else
                DM_INFO("lease", "%s: collecting: NATS did not say what is outstanding; %zu in hand",
                        c->durable, c->hand.n);
        }
        if (now - start > DM_GATHER_MAX_MS) {
            DM_WARN("lease", "%s: %llu message(s) outstanding, %zu in hand after %d ms: writing what is in hand, "
                             "and every later delivery as it comes",
                    c->durable, (unsigned long long)lag.ack_pending, c->hand.n, DM_GATHER_MAX_MS);
            c->must_gather = false;
            c->settled_seq = 0;
            c->exact = false;
            return true;
        }
        if (atomic_load(&c->stop))
            return false;
        if (!dm_lease_hold(c->lease, NULL)) {
            hand_back(c);
            return false;
        }
        if (now - renewed >= DM_ORDERED_ACK_WAIT_MS / 2) {
            renew_hand(c);
            renewed = now;
        }
        take_delivered(c, dm_pull_fetch(c->pull, c->fetched, DM_FETCH_MAX, 100, 0, &c->stop));
    }
    int64_t took = dm_mono_ms() - start;
    if (took >= 100)
        DM_INFO("lease", "%s: outstanding messages collected in %lld ms: %zu in hand, in stream order",
                c->durable, (long long)took, c->hand.n);
    c->must_gather = false;
    c->exact = true;
    return true;
}

/* One step of an ordered consumer: the oldest messages in hand are written first; a batch
 * that failed stays in front of the hand for the next attempt. */
static void step_ordered(dm_consumer *c)
{
    if (c->hand.n == 0 || c->must_gather)
        take_delivered(c, fetch(c));
    if (c->must_gather && !gather(c))
        return;
    size_t k = c->hand.n < (size_t)batch_size(c) ? c->hand.n : (size_t)batch_size(c);
    if (k == 0)
        return;
    memset(c->keep, 0, k * sizeof *c->keep);
    process(c, c->hand.msg, (int)k, c->keep);
    for (size_t i = 0; c->exact && i < k; i++)
        if (!c->keep[i] && c->hand.seq[i] > c->settled_seq)
            c->settled_seq = c->hand.seq[i];
    dm_hand_settle(&c->hand, k, c->keep);
}

/* The pause after a failed batch. A held batch keeps its lease and its messages. */
static void pause_holding(dm_consumer *c, int64_t ms)
{
    for (int64_t left = ms; left > 0 && !atomic_load(&c->stop); left -= DM_LEASE_RENEW_MS) {
        if (c->hand.n > 0) {
            if (!dm_lease_hold(c->lease, NULL)) {
                hand_back(c);
                return;
            }
            renew_hand(c);
        }
        sleep_interruptible(c, left < DM_LEASE_RENEW_MS ? left : DM_LEASE_RENEW_MS);
    }
}

/* A worker that may not write now hands back what it holds, once. */
static void let_go(dm_consumer *c)
{
    if (c->lease && (c->hand.n > 0 || !c->must_gather))
        hand_back(c);
}

static void idle(dm_consumer *c, int64_t ms)
{
    let_go(c);
    dm_strategy_release(c->strategies, c->st);
    c->st = NULL;
    sleep_interruptible(c, ms);
}

static void step_unordered(dm_consumer *c)
{
    int got = fetch(c);
    if (got > 0)
        process(c, c->fetched, got, NULL); /* a started batch always finishes, even when stopping */
    for (int i = 0; i < got; i++)
        natsMsg_Destroy(c->fetched[i]);
}

static void *run(void *arg)
{
    dm_consumer *c = arg;
    while (!atomic_load(&c->stop)) {
        c->st = dm_strategy_acquire(c->strategies);
        /* Backend open: leave the messages in the stream, no fetch, until a probe passes. */
        if (c->breaker && !dm_breaker_allow(c->breaker, dm_now_ms(), c->st->perf.circuit_breaker_timeout_s)) {
            let_go(c);
            dm_lease_release(c->lease); /* another worker may reach the backend */
            idle(c, 200);
            continue;
        }
        bool taken = false;
        if (c->lease && !dm_lease_hold(c->lease, &taken)) {
            if (c->breaker) /* a probe handed to a thread that will not write goes back */
                dm_breaker_abandon(c->breaker);
            idle(c, DM_LEASE_RENEW_MS);
            continue;
        }
        if (taken) /* a predecessor may have left messages outstanding */
            c->must_gather = true;
        /* The probe is a ping, not a batch: a failed probe then costs no delivery, so a long
         * outage never pushes messages towards max_deliveries. */
        if (c->breaker && dm_breaker_state_of(c->breaker) == DM_BREAKER_HALF_OPEN) {
            dm_err e = {0};
            bool up = dm_backend_ping(c->backend, &e) == DM_BS_OK;
            dm_breaker_report(c->breaker, up, dm_now_ms(), c->st->perf.circuit_breaker_threshold);
            if (!up) {
                dm_strategy_release(c->strategies, c->st);
                c->st = NULL;
                continue;
            }
            DM_INFO("ingest", "%s: %s answers again: fetching", c->durable, dm_backend_label(c->backend));
        }
        if (c->lease && dm_lease_exclusive(c->lease))
            step_ordered(c);
        else
            step_unordered(c);
        int64_t pause = c->failures > 0 ? backoff_ms(c) : 0;
        dm_strategy_release(c->strategies, c->st);
        c->st = NULL;
        if (pause > 0)
            pause_holding(c, pause);
    }
    if (c->lease && c->hand.n > 0)
        hand_back(c); /* stopping with a batch that could not be written */
    nats_ReleaseThreadMemory();
    return NULL;
}

dm_backend_id dm_consumer_backend(const dm_consumer *c) { return c->backend->id; }
dm_kind dm_consumer_kind(const dm_consumer *c) { return c->kind; }

dm_consumer *dm_consumer_start(dm_bus *bus, dm_kind kind, dm_backend *backend,
                               dm_strategy_holder *strategies, dm_breaker *breaker,
                               dm_tick_share *ticks, dm_err *err)
{
    dm_consumer *c = calloc(1, sizeof *c);
    if (c == NULL) {
        dm_backend_destroy(backend);
        dm_fail(err, DM_E_INTERNAL, "", "out of memory");
        return NULL;
    }
    c->bus = bus;
    c->kind = kind;
    c->backend = backend;
    c->strategies = strategies;
    c->breaker = breaker;
    dm_buf_init(&c->update);
    atomic_init(&c->stop, false);
    snprintf(c->durable, sizeof c->durable, "%s-%s", dm_backend_label(backend), dm_kind_name(kind));
    c->ingest = dm_ingest_create(kind, backend);
    if (c->ingest && kind == DM_KIND_TICK)
        dm_ingest_share_ticks(c->ingest, ticks);
    if (ordered(c)) {
        char host[64] = "", holder[96];
        gethostname(host, sizeof host - 1);
        snprintf(holder, sizeof holder, "%s/%ld", host, (long)getpid());
        c->lease = dm_lease_create(bus, c->durable, holder);
    }
    c->st = dm_strategy_acquire(strategies); /* until the thread takes over */
    c->fetched = calloc(DM_FETCH_MAX, sizeof *c->fetched);
    c->keep = calloc(DM_FETCH_MAX, sizeof *c->keep);
    c->must_gather = true;
    bool bound = c->ingest != NULL && c->fetched != NULL && c->keep != NULL && bind_consumer(c, err) == NATS_OK;
    int batch = batch_size(c);
    dm_strategy_release(strategies, c->st);
    c->st = NULL;
    if (!bound || pthread_create(&c->thread, NULL, run, c) != 0) {
        if (c->ingest && err->code == DM_OK)
            dm_fail(err, DM_E_INTERNAL, "", "cannot start thread for %s", c->durable);
        dm_pull_destroy(c->pull);
        dm_lease_destroy(c->lease);
        dm_ingest_destroy(c->ingest);
        dm_backend_destroy(backend);
        free(c->fetched);
        free(c->keep);
        free(c);
        return NULL;
    }
    /* The durable's name in top -H and /proc (cut to the kernel's 15 characters). */
    char tname[16];
    snprintf(tname, sizeof tname, "%.15s", c->durable);
    pthread_setname_np(c->thread, tname);
    DM_INFO("ingest", "consumer %s on %s (batch %d)", c->durable, dm_kind_filter(kind), batch);
    return c;
}

void dm_consumer_stop(dm_consumer *c)
{
    if (c)
        atomic_store(&c->stop, true);
}

void dm_consumer_destroy(dm_consumer *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    /* The durable consumer survives the worker: only our inbox goes, and the lease after
     * the messages still arriving were handed back. */
    dm_pull_destroy(c->pull);
    dm_lease_destroy(c->lease);
    dm_ingest_destroy(c->ingest);
    dm_backend_destroy(c->backend);
    dm_buf_free(&c->update);
    free(c->msgs);
    free(c->batch);
    free(c->batch_at);
    free(c->fetched);
    free(c->keep);
    dm_hand_free(&c->hand);
    free(c);
}
