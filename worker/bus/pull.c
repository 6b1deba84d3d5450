#include "pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define NS_PER_MS ((int64_t)1000000)
#define DM_PULL_STEP_MS 100 /* longest wait between looks at the stop flag */
#define DM_PULL_MAX_BYTES (32 * 1024 * 1024)

struct dm_pull {
    natsConnection *nc;
    natsSubscription *sub;
    natsInbox *inbox;
    char next_subject[192];
    /* The pull request open at the server, as far as we know: until when, and how many
     * messages it may still bring. One at a time, so a worker never asks for more than
     * a batch ahead of what it is writing. */
    int64_t open_until_ms;
    int left;
};

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
    *st = natsInbox_Create(&p->inbox);
    if (*st == NATS_OK)
        *st = natsConnection_SubscribeSync(&p->sub, nc, p->inbox);
    /* A batch of bulk messages is large: no client-side limit may drop part of it. */
    if (*st == NATS_OK)
        *st = natsSubscription_SetPendingLimits(p->sub, -1, -1);
    if (*st != NATS_OK) {
        dm_pull_destroy(p);
        return NULL;
    }
    return p;
}

static void give_back(dm_pull *p);

void dm_pull_destroy(dm_pull *p)
{
    if (p == NULL)
        return;
    if (p->sub) {
        give_back(p);
        natsSubscription_Unsubscribe(p->sub);
        natsSubscription_Destroy(p->sub);
    }
    natsInbox_Destroy(p->inbox);
    free(p);
}

static void request(dm_pull *p, int batch, int64_t expires_ms)
{
    char body[128];
    snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld,\"max_bytes\":%d}", batch,
             (long long)(expires_ms * NS_PER_MS), DM_PULL_MAX_BYTES);
    if (natsConnection_PublishRequestString(p->nc, p->next_subject, p->inbox, body) == NATS_OK) {
        p->open_until_ms = dm_mono_ms() + expires_ms;
        p->left = batch;
    }
}

/* A status message (no payload, a Status header) ends the open request: 404 nothing
 * pending, 408 expired, 409 leadership or consumer changes. 100 is a heartbeat. */
static bool is_status(dm_pull *p, natsMsg *m)
{
    const char *status = NULL;
    if (natsMsg_GetDataLength(m) != 0 || natsMsgHeader_Get(m, "Status", &status) != NATS_OK ||
        !status)
        return false;
    if (strcmp(status, "100") != 0)
        p->open_until_ms = 0;
    return true;
}

static int queued(dm_pull *p)
{
    int n = 0;
    return natsSubscription_GetPending(p->sub, &n, NULL) == NATS_OK ? n : 0;
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

int dm_pull_fetch(dm_pull *p, natsMsg **out, int max, int64_t wait_ms, int64_t linger_ms,
                  atomic_bool *stop)
{
    int64_t start = dm_mono_ms(), first_by = start + wait_ms, linger_by = start + linger_ms;
    int n = 0;
    while (n < max && !atomic_load(stop)) {
        int64_t now = dm_mono_ms();
        int64_t until = n == 0 ? first_by : linger_by;
        if (now >= until && queued(p) == 0)
            break;
        if (queued(p) == 0 && (p->left <= 0 || now >= p->open_until_ms)) {
            int64_t expires = until - now;
            request(p, max - n, expires < 10 ? 10 : expires);
        }
        int64_t step = until - now;
        natsMsg *m = take(p, step > DM_PULL_STEP_MS ? DM_PULL_STEP_MS : step);
        if (m)
            out[n++] = m;
    }
    return n;
}

bool dm_pull_meta_of(natsMsg *m, dm_pull_meta *out)
{
    const char *reply = natsMsg_GetReply(m);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
        return false;
    /* v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>;
     * v2 adds <domain>.<account hash> before the stream and a token at the end. */
    const char *tok[16];
    int n = 0;
    for (const char *s = reply; s && n < 16; s = strchr(s, '.') ? strchr(s, '.') + 1 : NULL)
        tok[n++] = s;
    int at = n == 9 ? 4 : n >= 11 ? 6 : -1;
    if (at < 0)
        return false;
    out->delivered = strtoull(tok[at], NULL, 10);
    out->stream_seq = strtoull(tok[at + 1], NULL, 10);
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

void dm_pull_nak(dm_pull *p, natsMsg *m, int64_t delay_ms)
{
    char body[64] = "-NAK";
    if (delay_ms > 0)
        snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", (long long)(delay_ms * NS_PER_MS));
    reply(p, m, body);
}

/* At shutdown the open request may still bring messages nobody here will write: hand
 * them back at once (a nak without delay), until the request has expired, so another
 * worker takes them now rather than after the AckWait. Bounded by the request's expiry. */
static void give_back(dm_pull *p)
{
    for (;;) {
        int64_t wait = p->open_until_ms - dm_mono_ms();
        if (queued(p) == 0 && wait <= 0)
            return;
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, p->sub,
                                     wait > DM_PULL_STEP_MS ? DM_PULL_STEP_MS
                                     : wait > 0             ? wait
                                                            : 1) != NATS_OK)
            continue;
        if (!is_status(p, m))
            dm_pull_nak(p, m, 0);
        natsMsg_Destroy(m);
    }
}
