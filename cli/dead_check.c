#include "dead_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "model/names.h"
#include "timeutil.h"

#define POLL_MS 100

struct dead_check_mark {
    natsInbox *inbox;
    natsSubscription *sub;
};

dead_check_mark *dead_check_mark_ask(natsConnection *nc)
{
    dead_check_mark *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (natsInbox_Create(&m->inbox) != NATS_OK ||
        natsConnection_SubscribeSync(&m->sub, nc, m->inbox) != NATS_OK ||
        natsConnection_PublishRequestString(nc, "$JS.API.STREAM.INFO." DM_STREAM_DLQ, m->inbox, "") !=
            NATS_OK) {
        dead_check_mark_free(m);
        return NULL;
    }
    return m;
}

bool dead_check_mark_take(dead_check_mark *m, uint64_t *dlq_last)
{
    natsMsg *msg = NULL;
    bool ok = false;
    /* The publish took at least a round trip: an answer that was coming is here. */
    if (m && natsSubscription_NextMsg(&msg, m->sub, 50) == NATS_OK) {
        cJSON *info = cJSON_ParseWithLength(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(info, "state"), "last_seq");
        if (cJSON_IsNumber(last) && last->valuedouble >= 0) {
            *dlq_last = (uint64_t)last->valuedouble;
            ok = true;
        }
        cJSON_Delete(info);
        natsMsg_Destroy(msg);
    }
    dead_check_mark_free(m);
    return ok;
}

void dead_check_mark_free(dead_check_mark *m)
{
    if (m == NULL)
        return;
    natsSubscription_Destroy(m->sub);
    natsInbox_Destroy(m->inbox);
    free(m);
}

static bool dead_check_last(jsCtx *js, uint64_t *dlq_last)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, js, DM_STREAM_DLQ, NULL, &jerr) != NATS_OK)
        return false;
    *dlq_last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return true;
}

/* Every consumer has acked up to `last`, or has nothing left to deliver or to ack. */
static int settled(jsCtx *js, uint64_t last)
{
    jsConsumerInfoList *l = NULL;
    jsErrCode jerr = 0;
    if (js_Consumers(&l, js, DM_STREAM_MARKET, NULL, &jerr) != NATS_OK)
        return -1;
    bool all = l->Count > 0;
    for (int i = 0; i < l->Count && all; i++) {
        const jsConsumerInfo *c = l->List[i];
        all = c->AckFloor.Stream >= last || (c->NumPending == 0 && c->NumAckPending == 0);
    }
    jsConsumerInfoList_Destroy(l);
    return all;
}

static long count_since(jsCtx *js, uint64_t from, uint64_t first, uint64_t last, char *reason,
                        size_t cap)
{
    uint64_t dlq_last = 0;
    if (!dead_check_last(js, &dlq_last))
        return -1;
    long n = 0;
    for (uint64_t seq = from + 1; seq <= dlq_last; seq++) {
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        if (js_GetMsg(&m, js, DM_STREAM_DLQ, seq, NULL, &jerr) != NATS_OK)
            continue; /* replayed and deleted meanwhile */
        const char *sseq = NULL, *why = NULL;
        natsMsgHeader_Get(m, DM_HDR_STREAM_SEQ, &sseq);
        uint64_t s = sseq ? strtoull(sseq, NULL, 10) : 0;
        if (s >= first && s <= last) {
            if (n++ == 0 && natsMsgHeader_Get(m, DM_HDR_REASON, &why) == NATS_OK && why)
                snprintf(reason, cap, "%s", why);
        }
        natsMsg_Destroy(m);
    }
    return n;
}

long dead_check_count(jsCtx *js, uint64_t dlq_from, uint64_t first, uint64_t last, int64_t wait_ms,
                      char *first_reason, size_t cap)
{
    first_reason[0] = '\0';
    double until = tu_now_ms() + (double)wait_ms;
    int done;
    while ((done = settled(js, last)) == 0 && tu_now_ms() < until)
        usleep(POLL_MS * 1000);
    if (done < 0) {
        snprintf(first_reason, cap, "the consumers' state cannot be read with these credentials");
        return -1;
    }
    if (done == 0) {
        snprintf(first_reason, cap, "the workers had not settled every message after %lld ms",
                 (long long)wait_ms);
        return -1;
    }
    long n = count_since(js, dlq_from, first, last, first_reason, cap);
    if (n < 0)
        snprintf(first_reason, cap, "the DLQ cannot be read with these credentials");
    return n;
}
