#include "dead_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/names.h"
#include "timeutil.h"

#define POLL_MS 100

bool dead_check_mark(jsCtx *js, uint64_t *dlq_last)
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
    if (!dead_check_mark(js, &dlq_last))
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
