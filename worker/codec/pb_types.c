/* Which message of schemas/market_data.proto each subject carries: one table, read by the
 * worker, dmctl, the tests and the fuzzers alike. */
#include "pb.h"

#include <string.h>

#include "market_data.pb-c.h"
#include "model/names.h"

static const struct {
    const char *prefix; /* market.<kind>. */
    const ProtobufCMessageDescriptor *type;
} PAYLOADS[] = {
    {"market.tick.", &dm__v1__tick__descriptor},
    {"market.candle.", &dm__v1__candle__descriptor},
    {"market.candles.", &dm__v1__candle_batch__descriptor},
    {"market.event.", &dm__v1__economic_event__descriptor},
};

static const struct {
    const char *subject;
    const ProtobufCMessageDescriptor *request, *reply;
} REQUESTS[] = {
    {DM_SUBJ_TICK_LATEST, &dm__v1__tick_latest_request__descriptor, &dm__v1__tick_reply__descriptor},
    {DM_SUBJ_CANDLES_LATEST, &dm__v1__candles_latest_request__descriptor, &dm__v1__candles_reply__descriptor},
    {DM_SUBJ_CANDLES_HISTORY, &dm__v1__candles_history_request__descriptor, &dm__v1__candles_reply__descriptor},
    {DM_SUBJ_EVENTS, &dm__v1__events_request__descriptor, &dm__v1__events_reply__descriptor},
    {DM_SUBJ_AGGREGATES, &dm__v1__aggregates_request__descriptor, &dm__v1__aggregates_reply__descriptor},
    {DM_SUBJ_PATTERNS_FIND, &dm__v1__patterns_find_request__descriptor, &dm__v1__patterns_reply__descriptor},
    {DM_SUBJ_PATTERNS_SIMILAR, &dm__v1__patterns_similar_request__descriptor, &dm__v1__patterns_reply__descriptor},
    {DM_SUBJ_CORRELATIONS, &dm__v1__correlations_request__descriptor, &dm__v1__correlations_reply__descriptor},
    {DM_SUBJ_GRAPH, &dm__v1__graph_request__descriptor, &dm__v1__graph_reply__descriptor},
};

const ProtobufCMessageDescriptor *dm_pb_payload_type(const char *subject)
{
    for (size_t i = 0; subject && i < sizeof PAYLOADS / sizeof *PAYLOADS; i++)
        if (strncmp(subject, PAYLOADS[i].prefix, strlen(PAYLOADS[i].prefix)) == 0)
            return PAYLOADS[i].type;
    return NULL;
}

static int request_index(const char *subject)
{
    for (size_t i = 0; subject && i < sizeof REQUESTS / sizeof *REQUESTS; i++)
        if (strcmp(subject, REQUESTS[i].subject) == 0)
            return (int)i;
    return -1;
}

const ProtobufCMessageDescriptor *dm_pb_request_type(const char *subject)
{
    int i = request_index(subject);
    return i < 0 ? NULL : REQUESTS[i].request;
}

const ProtobufCMessageDescriptor *dm_pb_reply_type(const char *subject)
{
    int i = request_index(subject);
    return i < 0 ? NULL : REQUESTS[i].reply;
}

const ProtobufCMessageDescriptor *dm_pb_error_type(void)
{
    return &dm__v1__error_reply__descriptor;
}
