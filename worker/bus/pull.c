#include "pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"

#define NS_PER_MS ((int64_t)1000000)
#define DM_PULL_STEP_MS 100 /* longest wait between looks at the stop flag */
/* A lingering fetch looks for more this often: short enough that a request running dry
 * is renewed at once and a full batch leaves without waiting out the linger. */
#define DM_PULL_NAP_MS 1
/* nats-server 2.9 loses a redelivery it picked for a pull request that turns out to have
 * expired when no other request is waiting (it puts the message back as pending, not to
 * be redelivered before another AckWait), so newer messages overtake it; a dead worker's
 * requests stay queued, invalid, until they expire, and take what is redelivered. A
 * request here therefore lives 2.5 s and the next one is queued behind it after 1 s (a
 * request for one message when the worker is still busy with what came): one that has not
 * expired is always waiting while the worker fetches, and a dead worker's are gone before
 * its candle leases expire (4 s), so the next holder collects its messages after their
 * AckWait instead of after the dead requests (with 5 s, takeovers waited 4.4-5.1 s in the
 * worker-kill case; with 2.5 s, 2.0-2.6 s, once 4.6 s). */
#define DM_PULL_EXPIRES_MS 2500
#define DM_PULL_OVERLAP_AFTER_MS 1000
#define DM_PULL_MAX_BYTES (32 * 1024 * 1024)

struct dm_pull {
    natsConnection *nc;
    natsSubscription *sub; /* NULL after a failed resubscribe: fetches return nothing */
    natsInbox *inbox;
    char next_subject[192];
    /* The newest pull request open at the server, as far as we know: when it was sent and
     * how many messages it may still bring. A new one goes out only once everything
     * delivered was taken, so a worker asks for little more than a batch ahead. */
    int64_t sent_ms;
    int left;
};

static natsStatus subscribe(dm_pull *p)
{
    natsStatus st = natsInbox_Create(&p->inbox);
    if (st == NATS_OK)
        st = natsConnection_SubscribeSync(&p->sub, p->nc, p->inbox);
    /* A batch of bulk messages is large: no client-side limit may drop part of it. */
    if (st == NATS_OK)
        st = natsSubscription_SetPendingLimits(p->sub, -1, -1);
    p->sent_ms = 0;
    p->left = 0;
    return st;
}

static void unsubscribe(dm_pull *p)
{
    if (p->sub) {
        natsSubscription_Unsubscribe(p->sub);
        natsSubscription_Destroy(p->sub);
        p->sub = NULL;
    }
    natsInbox_Destroy(p->inbox);
    p->inbox = NULL;
}

dm_pull *dm_pull_create(natsConnection *nc, const char *stream, const char *consumer,
                        natsStatus *st)
{
    dm_pull *p = calloc(1, sizeof *p);
    if (p == NULL) {
        *st = NATS_NO_MEMORY;
        return NULL;
    }
    p->nc = nc;
    snprintf(p->next_subject, sizeof p->next_subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream,
             consumer);
    *st = subscribe(p);
    if (*st != NATS_OK) {
        dm_pull_destroy(p);
        return NULL;
    }
    return p;
}

void dm_pull_destroy(dm_pull *p)
{
    if (p == NULL)
        return;
    dm_pull_give_back(p);
    unsubscribe(p);
    free(p);
}

static void request(dm_pull *p, int batch)
{
    char body[128];
    snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld,\"max_bytes\":%d}", batch,
             (long long)(DM_PULL_EXPIRES_MS * NS_PER_MS), DM_PULL_MAX_BYTES);
    if (natsConnection_PublishRequestString(p->nc, p->next_subject, p->inbox, body) == NATS_OK) {
        p->sent_ms = dm_mono_ms();
        p->left = batch;
    }
}

bool dm_pull_status_ends_newest(const char *status, int64_t newest_age_ms)
{
    if (strcmp(status, "100") == 0)
        return false;
    /* Requests overlap (see DM_PULL_OVERLAP_AFTER_MS), and all share the inbox: an expiry
     * that comes before the newest request can have expired is an older one's. Taking it
     * for the newest's sent one more request for every expiry, so each request made
     * another before it went and the queue at the server only grew (3 workers, idle after
     * a burst: 68-116 requests waiting, 49 new ones a second, against 2.5 per consumer
     * thread). The newest's own expiry taken for an older one's (a millisecond early by
     * our clock) costs nothing: a request that old is renewed anyway (aging). */
    return strcmp(status, "408") != 0 || newest_age_ms >= DM_PULL_EXPIRES_MS;
}

/* A status message (no payload, a Status header) ends a request: 404 nothing pending,
 * 408 expired, 409 leadership or consumer changes. 100 is a heartbeat. */
static bool is_status(dm_pull *p, natsMsg *m)
{
    const char *status = NULL;
    if (natsMsg_GetDataLength(m) != 0 || natsMsgHeader_Get(m, "Status", &status) != NATS_OK ||
        !status)
        return false;
    if (dm_pull_status_ends_newest(status, dm_mono_ms() - p->sent_ms))
        p->sent_ms = 0;
    return true;
}

static int queued(dm_pull *p)
{
    int n = 0;
    return p->sub && natsSubscription_GetPending(p->sub, &n, NULL) == NATS_OK ? n : 0;
}

/* Takes one message waiting up to wait_ms (0: only if one is queued). */
static natsMsg *take(dm_pull *p, int64_t wait_ms)
{
    natsMsg *m = NULL;
    if (wait_ms <= 0 && queued(p) == 0)
        return NULL;
    if (natsSubscription_NextMsg(&m, p->sub, wait_ms > 0 ? wait_ms : 1) != NATS_OK)
        return NULL;
    if (is_status(p, m)) {
        natsMsg_Destroy(m);
        return NULL;
    }
    p->left--;
    return m;
}

static void nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * NS_PER_MS};
    nanosleep(&ts, NULL);
}

int dm_pull_fetch(dm_pull *p, natsMsg **out, int max, int64_t wait_ms, int64_t linger_ms,
                  atomic_bool *stop)
{
    int64_t start = dm_mono_ms(), first_by = start + wait_ms, linger_by = start + linger_ms;
    int n = 0;
    if (p->sub == NULL && subscribe(p) != NATS_OK) {
        unsubscribe(p);
        return 0;
    }
    while (n < max && !atomic_load(stop)) {
        int64_t now = dm_mono_ms();
        int64_t until = n == 0 ? first_by : linger_by;
        int q = queued(p);
        if (now >= until && q == 0)
            break;
        bool aging = now - p->sent_ms >= DM_PULL_OVERLAP_AFTER_MS;
        if (q == 0 && (p->left <= 0 || aging))
            request(p, max - n);
        else if (aging) /* busy with what came: a small request keeps one waiting */
            request(p, 1);
        if (q > 0) { /* what is queued is taken without waiting */
            for (; q > 0 && n < max; q--) {
                natsMsg *m = take(p, 1);
                if (m)
                    out[n++] = m;
            }
            continue;
        }
        int64_t step = until - now;
        if (n > 0) {
            /* Lingering: nap, then take what came meanwhile. Waiting on the subscription
             * instead wakes this thread for nearly every message (the reader signals
             * whenever the queue was empty), and on a VM a wakeup costs more than the
             * message. */
            nap_ms(step > DM_PULL_NAP_MS ? DM_PULL_NAP_MS : step);
            continue;
        }
        natsMsg *m = take(p, step > DM_PULL_STEP_MS ? DM_PULL_STEP_MS : step);
        if (m)
            out[n++] = m;
    }
    return n;
}

/* A decimal token up to the next '.' or the end; false on anything else or overflow. */
static bool token_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return p > s && (*p == '.' || *p == '\0');
}

/* Called for every delivery, twice: one pass over the subject, no strtoull (whose
 * locale-aware generality cost more than the rest of the message's bookkeeping). */
bool dm_pull_meta_of(natsMsg *m, dm_pull_meta *out)
{
    const char *reply = natsMsg_GetReply(m);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
        return false;
    /* v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>;
     * v2 adds <domain>.<account hash> before the stream and a token at the end. */
    const char *tok[16];
    int n = 0;
    tok[n++] = reply;
    for (const char *s = reply; *s && n < 16; s++)
        if (*s == '.')
            tok[n++] = s + 1;
    int at = n == 9 ? 4 : n >= 11 ? 6 : -1;
    if (at < 0)
        return false;
    if (!token_u64(tok[at], &out->delivered) || !token_u64(tok[at + 1], &out->stream_seq) ||
        !token_u64(tok[at + 2], &out->consumer_seq) || !token_u64(tok[at + 3], &out->stored_ns) ||
        !token_u64(tok[at + 4], &out->pending))
        return false;
    return out->delivered > 0 && out->stream_seq > 0;
}

static void reply(dm_pull *p, natsMsg *m, const char *body)
{
    const char *r = natsMsg_GetReply(m);
    if (r)
        natsConnection_PublishString(p->nc, r, body);
}

void dm_pull_ack(dm_pull *p, natsMsg *m)
{
    reply(p, m, "+ACK");
}
void dm_pull_term(dm_pull *p, natsMsg *m)
{
    reply(p, m, "+TERM");
}

void dm_pull_progress(dm_pull *p, natsMsg *m)
{
    reply(p, m, "+WPI");
}

void dm_pull_nak(dm_pull *p, natsMsg *m, int64_t delay_ms)
{
    char body[64] = "-NAK";
    if (delay_ms > 0)
        snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", (long long)(delay_ms * NS_PER_MS));
    reply(p, m, body);
}

/* Whatever was delivered and not taken goes back at once (a nak without delay); the inbox
 * goes too, so the requests still open at the server end there and bring nothing more:
 * what was on its way returns after its AckWait. The next fetch subscribes again. */
void dm_pull_give_back(dm_pull *p)
{
    natsMsg *m = NULL;
    while (queued(p) > 0 && natsSubscription_NextMsg(&m, p->sub, 1) == NATS_OK) {
        if (!is_status(p, m))
            dm_pull_nak(p, m, 0);
        natsMsg_Destroy(m);
        m = NULL;
    }
    unsubscribe(p);
}
