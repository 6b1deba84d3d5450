/* Protobuf bytes through the codec (worker/codec/pb*.c) as any message of
 * schemas/market_data.proto: the wire scan, protobuf-c's unpack, the tree it gives and the
 * way back. A message that decodes must encode, and its encoding must decode to a tree
 * that encodes to the same bytes (nothing is lost or invented on the way). A payload that
 * decodes goes on through its model decoder, and a row that passes must validate.
 *
 * Input: byte 0 selects, the rest is the body.
 *   bits 0-6  the message, modulo 23: the four payloads, then each data subject's request
 *             and reply, then ErrorReply (the order of TYPES below)
 *   bit 7     strict (requests refuse unknown field numbers; payloads skip them) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/models.h"
#include "codec/pb.h"
#include "model/names.h"

#define N_TYPES 23

static const char *const PAYLOADS[4] = {"market.tick.EURUSD", "market.candle.EURUSD.1h",
                                        "market.candles.EURUSD.1h", "market.event.US"};
static const char *const SUBJECTS[9] = {
    DM_SUBJ_TICK_LATEST, DM_SUBJ_CANDLES_LATEST, DM_SUBJ_CANDLES_HISTORY, DM_SUBJ_EVENTS, DM_SUBJ_AGGREGATES,
    DM_SUBJ_PATTERNS_FIND, DM_SUBJ_PATTERNS_SIMILAR, DM_SUBJ_CORRELATIONS, DM_SUBJ_GRAPH};

static const ProtobufCMessageDescriptor *type_of(unsigned i)
{
    if (i < 4)
        return dm_pb_payload_type(PAYLOADS[i]);
    if (i < 4 + 2 * 9)
        return (i - 4) % 2 ? dm_pb_reply_type(SUBJECTS[(i - 4) / 2]) : dm_pb_request_type(SUBJECTS[(i - 4) / 2]);
    return dm_pb_error_type();
}

/* The payload's model decoder: what ingest does next. */
static void decode_model(unsigned i, const cJSON *doc)
{
    dm_err err = {0};
    int64_t now = dm_now_ms();
    if (i == 0) {
        dm_tick t;
        if (dm_tick_decode(doc, now, &t, &err) == DM_OK && dm_tick_validate(&t, now, &err) != DM_OK)
            abort();
    } else if (i == 1) {
        dm_candle k;
        if (dm_candle_decode(doc, now, &k, &err) == DM_OK && dm_candle_validate(&k, now, &err) != DM_OK)
            abort();
    } else if (i == 3) {
        dm_event e;
        if (dm_event_decode(doc, now, &e, &err) == DM_OK && dm_event_validate(&e, now, &err) != DM_OK)
            abort();
    } else if (i == 2) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc, "candles"))
        {
            dm_candle k;
            if (dm_candle_decode(c, now, &k, &err) == DM_OK && dm_candle_validate(&k, now, &err) != DM_OK)
                abort();
        }
    }
}

/* decode(encode(doc)) encodes to the same bytes encode(doc) gave. */
static void check_round_trip(const ProtobufCMessageDescriptor *type, const cJSON *doc)
{
    dm_buf a, b;
    dm_err err = {0};
    cJSON *back = NULL;
    dm_buf_init(&a);
    dm_buf_init(&b);
    if (dm_pb_encode(type, doc, &a, &err) != DM_OK)
        abort(); /* a tree the decoder made must fit its own type */
    if (dm_pb_decode(type, a.data, a.len, true, &back, &err) != DM_OK)
        abort();
    if (dm_pb_encode(type, back, &b, &err) != DM_OK || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)))
        abort();
    cJSON_Delete(back);
    dm_buf_free(&a);
    dm_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned i = (data[0] & 0x7fu) % N_TYPES;
    const ProtobufCMessageDescriptor *type = type_of(i);
    cJSON *doc = NULL;
    dm_err err = {0};
    if (dm_pb_decode(type, data + 1, size - 1, (data[0] & 0x80) != 0, &doc, &err) == DM_OK) {
        check_round_trip(type, doc);
        if (i < 4)
            decode_model(i, doc);
    } else if (doc != NULL || err.code == DM_OK) {
        abort(); /* a failure says why and leaves nothing behind */
    }
    cJSON_Delete(doc);
    return 0;
}
