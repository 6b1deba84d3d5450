#include "publish.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "dead_check.h"
#include "codec/enc.h"
#include "timeutil.h"

typedef struct msg_list {
    natsMsg **v;
    size_t n, cap;
} msg_list;

struct publisher {
    pub_config cfg;
    jsCtx *js;
    int64_t ack_wait_ms; /* grows on each retry round */
    double t0;
    double last_progress;
    bool progress; /* stderr is a tty and not --quiet */

    /* written by the producer thread only */
    size_t sent_msgs, sent_records, retried_msgs;
    bool fatal;

    /* Shared with the ack handler, which nats.c runs on its own thread. */
    pthread_mutex_t mu;
    size_t acked_msgs, acked_records, dup_records;
    msg_list failed;  /* messages that got an error instead of a PubAck (owned) */
    bool no_stream;   /* the server had no responder for a subject */
    char last_err[256];
    uint64_t first_seq, last_seq; /* of the PubAcks */

    dead_check_mark *dlq_mark; /* where the DLQ stood before publishing, asked at start */
};

static bool list_push(msg_list *l, natsMsg *m)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        natsMsg **v = realloc(l->v, nc * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        l->cap = nc;
    }
    l->v[l->n++] = m;
    return true;
}

static void list_free(msg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        natsMsg_Destroy(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* How many records a message holds; bulk ids end in ":<count>". Reading it
 * back from the id avoids a side table keyed by message. */
static size_t records_of(const publisher *p, natsMsg *m)
{
    if (!p->cfg.bulk_ids)
        return 1;
    const char *id = NULL;
    if (natsMsgHeader_Get(m, DM_HDR_MSG_ID, &id) != NATS_OK || !id)
        return 1;
    const char *c = strrchr(id, ':');
    return c ? (size_t)strtoull(c + 1, NULL, 10) : 1;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    publisher *p = closure;
    size_t recs = records_of(p, msg);
    bool keep = false;

    pthread_mutex_lock(&p->mu);
    if (pa) {
        if (p->first_seq == 0 || pa->Sequence < p->first_seq)
            p->first_seq = pa->Sequence;
        if (pa->Sequence > p->last_seq)
            p->last_seq = pa->Sequence;
        p->acked_msgs++;
        p->acked_records += recs;
        if (pa->Duplicate) /* already stored: a re-run or a retry */
            p->dup_records += recs;
    } else if (pae) {
        if (pae->Err == NATS_NO_RESPONDERS || pae->ErrCode == JSStreamNotFoundErr)
            p->no_stream = true;
        if (pae->ErrCode)
            snprintf(p->last_err, sizeof p->last_err, "%s (JetStream error %d)",
                     pae->ErrText ? pae->ErrText : "error", (int)pae->ErrCode);
        else
            snprintf(p->last_err, sizeof p->last_err, "%s",
                     pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
        /* keep the message for the retry rounds in pub_finish */
        keep = list_push(&p->failed, msg);
    }
    pthread_mutex_unlock(&p->mu);
    if (!keep)
        natsMsg_Destroy(msg);
}

publisher *pub_create(natsConnection *nc, const pub_config *cfg)
{
    publisher *p = calloc(1, sizeof *p);
    if (!p) {
        fprintf(stderr, "dmctl: out of memory\n");
        return NULL;
    }
    p->cfg = *cfg;
    pthread_mutex_init(&p->mu, NULL);

    jsOptions jo;
    natsStatus s = jsOptions_Init(&jo);
    if (s == NATS_OK) {
        jo.Wait = cfg->ack_wait_ms;
        jo.PublishAsync.MaxPending = cfg->max_pending;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = p;
        /* a publish blocked on MaxPending returns NATS_TIMEOUT once no ack
         * has freed a slot for this long: that is how lost acks show up */
        jo.PublishAsync.StallWait = cfg->ack_wait_ms;
        s = natsConnection_JetStream(&p->js, nc, &jo);
    }
    if (s != NATS_OK) {
        dm_nats_error("cannot create JetStream context", s);
        pub_destroy(p);
        return NULL;
    }
    /* No per-message jsPubOptions.MaxWait: nats.c 3.4 then queues a timer
     * message for every publish, even acked ones, and can leak them at
     * shutdown. Lost acks are found by stall/no-progress checks instead. */
    p->ack_wait_ms = cfg->ack_wait_ms;
    p->dlq_mark = dead_check_mark_ask(nc);
    p->progress = !cfg->quiet && isatty(STDERR_FILENO);
    p->t0 = tu_now_ms();
    p->last_progress = p->t0;
    return p;
}

void pub_destroy(publisher *p)
{
    if (!p)
        return;
    jsCtx_Destroy(p->js);
    dead_check_mark_free(p->dlq_mark);
    list_free(&p->failed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void snapshot(publisher *p, size_t *acked, size_t *dups)
{
    pthread_mutex_lock(&p->mu);
    *acked = p->acked_records;
    *dups = p->dup_records;
    pthread_mutex_unlock(&p->mu);
}

static void show_progress(publisher *p, bool force)
{
    double now = tu_now_ms();
    if (!p->progress || (!force && now - p->last_progress < 1000))
        return;
    p->last_progress = now;
    size_t acked, dups;
    snapshot(p, &acked, &dups);
    char rate[32];
    double secs = (now - p->t0) / 1000;
    dm_fmt_grouped(rate, sizeof rate, secs > 0 ? (uint64_t)(acked / secs) : 0);
    double pct = p->cfg.total_records ? 100.0 * (double)p->sent_records / (double)p->cfg.total_records : 0;
    fprintf(stderr, "\r\033[Kpublished %zu/%zu %s (%.0f%%): %zu acked (%zu duplicate) %.1f s (%s/s)",
            p->sent_records, p->cfg.total_records, p->cfg.unit, pct, acked, dups, secs, rate);
    fflush(stderr);
}

static bool saw_no_stream(publisher *p)
{
    pthread_mutex_lock(&p->mu);
    bool ns = p->no_stream;
    pthread_mutex_unlock(&p->mu);
    return ns;
}

/* Takes back every message still waiting for its PubAck and queues it
 * for a retry round (late acks for them are then ignored by the library;
 * the retry comes back as a duplicate). */
static void reclaim_pending(publisher *p, const char *why)
{
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, p->js) != NATS_OK)
        return; /* NATS_NOT_FOUND: nothing pending */
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < pending.Count; i++) {
        if (list_push(&p->failed, pending.Msgs[i]))
            pending.Msgs[i] = NULL; /* now owned by the failed list */
    }
    snprintf(p->last_err, sizeof p->last_err, "%s", why);
    pthread_mutex_unlock(&p->mu);
    natsMsgList_Destroy(&pending); /* destroys any message not taken */
}

/* Hands *m to the library; on success *m is NULL. NATS_TIMEOUT here means
 * MaxPending acks are outstanding and none arrived for StallWait (lost in
 * a reconnect, say): reclaim them for a retry round, which frees the slots. */
static bool publish_async(publisher *p, natsMsg **m)
{
    natsStatus s = NATS_TIMEOUT;
    for (int attempt = 0; attempt < 3 && s == NATS_TIMEOUT; attempt++) {
        if (saw_no_stream(p))
            return false;
        s = js_PublishMsgAsync(p->js, m, NULL);
        if (s == NATS_TIMEOUT)
            reclaim_pending(p, "no PubAck received (stalled)");
    }
    if (s != NATS_OK) {
        dm_nats_error("publish failed", s);
        p->fatal = true;
        return false;
    }
    return true;
}

bool pub_send(publisher *p, const char *subject, const char *msg_id, const char *content_type,
              const void *data, size_t len, size_t records)
{
    if (p->fatal || saw_no_stream(p)) {
        p->fatal = true;
        return false;
    }
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, DM_HDR_MSG_ID, msg_id);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, DM_HDR_CONTENT_TYPE, content_type);
    if (s != NATS_OK) {
        dm_nats_error("cannot build message", s);
        natsMsg_Destroy(m);
        p->fatal = true;
        return false;
    }
    bool ok = publish_async(p, &m);
    natsMsg_Destroy(m); /* no-op when the library took it */
    if (!ok)
        return false;
    p->sent_msgs++;
    p->sent_records += records;
    show_progress(p, false);
    return true;
}

/* Acked plus failed: any change means acks are still arriving. */
static size_t answered(publisher *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->acked_msgs + p->failed.n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Waits until every in-flight message has been acked or failed. If no ack
 * arrives for ack_wait_ms the rest are pulled back into the failed list. */
static void wait_all(publisher *p)
{
    jsPubOptions wo;
    if (jsPubOptions_Init(&wo) != NATS_OK)
        return;
    /* wake up at least every second for progress and the no-ack check */
    wo.MaxWait = p->ack_wait_ms < 1000 ? p->ack_wait_ms : 1000;
    size_t seen = answered(p);
    double last_change = tu_now_ms();
    for (;;) {
        natsStatus s = js_PublishAsyncComplete(p->js, &wo);
        if (s == NATS_OK)
            return;
        show_progress(p, false);
        size_t now_seen = answered(p);
        if (now_seen != seen) {
            seen = now_seen;
            last_change = tu_now_ms();
        }
        if (s != NATS_TIMEOUT || tu_now_ms() - last_change > (double)p->ack_wait_ms)
            break;
    }
    reclaim_pending(p, "no PubAck received");
}

static msg_list take_failed(publisher *p)
{
    pthread_mutex_lock(&p->mu);
    msg_list l = p->failed;
    memset(&p->failed, 0, sizeof p->failed);
    pthread_mutex_unlock(&p->mu);
    return l;
}

/* Re-publishes everything that failed, up to PUB_MAX_RETRIES rounds. The
 * Nats-Msg-Id header makes a retry of a message that was in fact stored
 * a harmless duplicate. */
static void retry_failed(publisher *p)
{
    for (int round = 1; round <= PUB_MAX_RETRIES && !p->fatal && !saw_no_stream(p); round++) {
        msg_list l = take_failed(p);
        if (l.n == 0) {
            free(l.v);
            return;
        }
        usleep((useconds_t)(200000 * round));
        /* a server slow enough to miss one deadline gets a longer one */
        p->ack_wait_ms *= 2;
        for (size_t i = 0; i < l.n && !p->fatal; i++) {
            if (publish_async(p, &l.v[i]))
                p->retried_msgs++;
        }
        list_free(&l); /* destroys only those not handed back to the library */
        wait_all(p);
    }
}

static size_t count_failed_records(publisher *p, size_t *msgs)
{
    size_t recs = 0;
    pthread_mutex_lock(&p->mu);
    *msgs = p->failed.n;
    for (size_t i = 0; i < p->failed.n; i++)
        recs += records_of(p, p->failed.v[i]);
    pthread_mutex_unlock(&p->mu);
    return recs;
}

static void print_summary(publisher *p, size_t skipped, double secs)
{
    size_t acked, dups;
    snapshot(p, &acked, &dups);
    char rate[32];
    dm_fmt_grouped(rate, sizeof rate, secs > 0 ? (uint64_t)((double)acked / secs) : 0);
    char line[512];
    int n = snprintf(line, sizeof line,
                     "published %zu %s in %zu messages: %zu acked (%zu duplicate) in %.2f s (%s/s)",
                     p->sent_records, p->cfg.unit, p->sent_msgs, acked, dups, secs, rate);
    if (skipped && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ", %zu bad rows skipped", skipped);
    if (p->retried_msgs && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, ", %zu messages retried", p->retried_msgs);
    if (p->progress)
        fputs("\r\033[K", stderr);
    /* once, on stdout: a log keeping both streams (2>&1) would show a copy twice */
    printf("%s\n", line);
    fflush(stdout);
}

/* Stored is not written: a worker may still refuse what it was given (a database refusing a
 * value, or a rule dmctl does not know). Said on stderr, exit status 3. */
static int check_dead_letters(publisher *p)
{
    size_t acked, dups;
    snapshot(p, &acked, &dups);
    uint64_t dlq_from = 0;
    bool known = dead_check_mark_take(p->dlq_mark, &dlq_from);
    p->dlq_mark = NULL;
    if (!known || acked == 0)
        return EXIT_OK;
    char why[256];
    long n = dead_check_count(p->js, dlq_from, p->first_seq, p->last_seq, p->ack_wait_ms, why,
                              sizeof why);
    if (n < 0 && !p->cfg.quiet)
        fprintf(stderr, "dmctl: dead letters not checked: %s\n", why);
    if (n <= 0)
        return EXIT_OK;
    fprintf(stderr, "dmctl: %ld of these messages were dead-lettered by the workers (first: %s): "
                    "dmctl dlq list shows them\n", n, why);
    return EXIT_DEAD_LETTERED;
}

void pub_abort(publisher *p)
{
    p->fatal = true;
}

int pub_finish(publisher *p, size_t skipped_rows)
{
    wait_all(p);
    retry_failed(p);
    double secs = (tu_now_ms() - p->t0) / 1000;
    if (saw_no_stream(p)) {
        /* nothing was stored: a "published N" summary would mislead */
        if (p->progress)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "dmctl: " NO_STREAM_MSG "\n");
        return EXIT_FAIL;
    }
    if (p->sent_msgs > 0 || !p->fatal)
        print_summary(p, skipped_rows, secs);
    size_t fmsgs;
    size_t frecs = count_failed_records(p, &fmsgs);
    if (fmsgs > 0) {
        fprintf(stderr, "dmctl: %zu messages (%zu %s) not acknowledged after %d retries: %s\n",
                fmsgs, frecs, p->cfg.unit, PUB_MAX_RETRIES, p->last_err);
        return EXIT_FAIL;
    }
    if (p->fatal)
        return EXIT_FAIL;
    return check_dead_letters(p);
}
