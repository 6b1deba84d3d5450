/* Server tests of the protobuf encoding (schemas/market_data.proto): the same market data
 * published in JSON, msgpack and protobuf reads back the same, every Accept gets the same
 * answer, and protobuf that does not decode is dead-lettered, never stored. Protobuf is
 * built and read here with protoc-c's generated code, not the worker's descriptor walk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/pb.h"
#include "harness.h"
#include "market_data.pb-c.h"

#define T0 1622505600000LL /* 2021-06-01 00:00 UTC, a Tuesday no other test uses */
#define HOUR_MS 3600000LL

/* One symbol per encoding, the same values otherwise. */
static const char *const SYMBOLS[3] = {"PBJ/USD", "PBM/USD", "PBP/USD"};
static const char *const TOKENS[3] = {"PBJUSD", "PBMUSD", "PBPUSD"};

static const double OPEN[4] = {1.20, 1.21, 1.22, 1.23}, HIGH[4] = {1.30, 1.31, 1.32, 1.33},
                    LOW[4] = {1.10, 1.11, 1.12, 1.13};

static void candle_doc(char *out, size_t cap, int k, int i)
{
    snprintf(out, cap,
             "{\"symbol\":\"%s\",\"timeframe\":\"1h\",\"timestamp\":%lld,\"open\":%.2f,\"high\":%.2f,"
             "\"low\":%.2f,\"close\":1.25,%s\"source\":\"oanda\"}",
             SYMBOLS[k], T0 + i * HOUR_MS, OPEN[i], HIGH[i], LOW[i], i == 2 ? "" : "\"volume\":1250.5,");
}

static Dm__V1__Candle candle_pb(int i)
{
    Dm__V1__Candle c = DM__V1__CANDLE__INIT;
    c.symbol = (char *)SYMBOLS[2], c.timeframe = "1h", c.source = "oanda";
    c.has_timestamp = c.has_open = c.has_high = c.has_low = c.has_close = 1;
    c.timestamp = T0 + i * HOUR_MS, c.open = OPEN[i], c.high = HIGH[i], c.low = LOW[i], c.close = 1.25;
    c.has_volume = i != 2, c.volume = 1250.5; /* the third candle has no volume */
    return c;
}

static uint64_t publish_pb(const char *subject, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    protobuf_c_message_pack(m, buf);
    uint64_t seq = publish(subject, buf, (int)n, DM_CT_PROTOBUF, NULL);
    free(buf);
    return seq;
}

/* Encoding k: a single candle at T0, a bulk of T0+1h..T0+3h and a tick at T0. */
static bool publish_in(int k)
{
    char subject[64], docs[4][320], bulk[1400], tick[256];
    for (int i = 0; i < 4; i++)
        candle_doc(docs[i], sizeof docs[i], k, i);
    snprintf(bulk, sizeof bulk, "{\"candles\":[%s,%s,%s]}", docs[1], docs[2], docs[3]);
    snprintf(tick, sizeof tick, "{\"symbol\":\"%s\",\"timestamp\":%lld,\"bid\":1.2001,\"ask\":1.2003,"
             "\"spread\":0.0002,\"source\":\"oanda\"}", SYMBOLS[k], T0);
    const char *bodies[3] = {docs[0], bulk, tick};
    const char *fmts[3] = {"market.candle.%s.1h", "market.candles.%s.1h", "market.tick.%s"};
    for (int b = 0; b < 3; b++) {
        snprintf(subject, sizeof subject, fmts[b], TOKENS[k]);
        int len = 0;
        char *mp = k == 1 ? msgpack_from_json(bodies[b], &len) : NULL;
        uint64_t seq = k == 0 ? publish_json(subject, bodies[b], NULL)
                              : publish(subject, mp, len, DM_CT_MSGPACK, NULL);
        free(mp);
        if (seq == 0)
            return false;
    }
    return true;
}

static bool publish_protobuf(void)
{
    char subject[64];
    Dm__V1__Candle c[4] = {candle_pb(0), candle_pb(1), candle_pb(2), candle_pb(3)};
    Dm__V1__Candle *items[3] = {&c[1], &c[2], &c[3]};
    Dm__V1__CandleBatch batch = DM__V1__CANDLE_BATCH__INIT;
    batch.n_candles = 3, batch.candles = items;
    Dm__V1__Tick t = DM__V1__TICK__INIT;
    t.symbol = (char *)SYMBOLS[2], t.source = "oanda";
    t.has_timestamp = t.has_bid = t.has_ask = t.has_spread = 1;
    t.timestamp = T0, t.bid = 1.2001, t.ask = 1.2003, t.spread = 0.0002;
    snprintf(subject, sizeof subject, "market.candle.%s.1h", TOKENS[2]);
    bool ok = publish_pb(subject, &c[0].base) > 0;
    snprintf(subject, sizeof subject, "market.candles.%s.1h", TOKENS[2]);
    ok = ok && publish_pb(subject, &batch.base) > 0;
    snprintf(subject, sizeof subject, "market.tick.%s", TOKENS[2]);
    return ok && publish_pb(subject, &t.base) > 0;
}

/* The reply's data as JSON text with the symbol made neutral, for comparison. */
static void data_text(const cJSON *body, const char *symbol, char *out, size_t cap)
{
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(body, "data"));
    snprintf(out, cap, "%s", s ? s : "(none)");
    free(s);
    for (char *p = strstr(out, symbol); p; p = strstr(p, symbol))
        memcpy(p, "XXX/USD", 7);
}

static void the_same_market_data_in_json_msgpack_and_protobuf_reads_back_the_same(void)
{
    for (int k = 0; k < 2; k++)
        CHECK(publish_in(k), "publish in encoding %d", k);
    CHECK(publish_protobuf(), "publish protobuf");
    CHECK(wait_idle(30), "drain");
    static char candles[3][4096], ticks[3][1024];
    for (int k = 0; k < 3; k++) {
        char q[128];
        reply r, t;
        snprintf(q, sizeof q, "{\"symbol\":\"%s\",\"timeframe\":\"1h\",\"limit\":4}", SYMBOLS[k]);
        CHECK(request("dm.v1.candles.latest", q, false, &r), "no reply");
        snprintf(q, sizeof q, "{\"symbol\":\"%s\"}", SYMBOLS[k]);
        CHECK(request("dm.v1.tick.latest", q, false, &t), "no reply");
        bool four = r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.body, "data")) == 4;
        data_text(r.body, SYMBOLS[k], candles[k], sizeof candles[k]);
        data_text(t.body, SYMBOLS[k], ticks[k], sizeof ticks[k]);
        reply_free(&r);
        reply_free(&t);
        CHECK(four, "%s: want the 4 candles published: %s", SYMBOLS[k], candles[k]);
    }
    for (int k = 1; k < 3; k++) {
        CHECK(strcmp(candles[k], candles[0]) == 0, "%s candles differ from JSON's:\n%s\n%s", SYMBOLS[k],
              candles[k], candles[0]);
        CHECK(strcmp(ticks[k], ticks[0]) == 0, "%s tick differs from JSON's:\n%s\n%s", SYMBOLS[k], ticks[k],
              ticks[0]);
    }
}

/* A request with headers; the raw reply and its Status. */
static natsMsg *ask(const char *subject, const void *body, size_t len, const char *ct, const char *accept)
{
    natsMsg *m = NULL, *r = NULL;
    natsMsg_Create(&m, subject, NULL, body, (int)len);
    natsMsgHeader_Set(m, "Content-Type", ct);
    if (accept)
        natsMsgHeader_Set(m, "Accept", accept);
    natsStatus s = natsConnection_RequestMsg(&r, g_nc, m, 10000);
    natsMsg_Destroy(m);
    return s == NATS_OK ? r : NULL;
}

static const char *header(natsMsg *m, const char *k)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, k, &v) == NATS_OK ? v : "";
}

static void candles_latest_is_the_same_answer_in_json_msgpack_and_protobuf(void)
{
    static const char q[] = "{\"symbol\":\"PBP/USD\",\"timeframe\":\"1h\",\"limit\":4}";
    static const char *const accepts[] = {DM_CT_JSON, DM_CT_MSGPACK, DM_CT_PROTOBUF};
    cJSON *answers[3] = {0};
    for (int i = 0; i < 3; i++) {
        natsMsg *r = ask("dm.v1.candles.latest", q, sizeof q - 1, DM_CT_JSON, accepts[i]);
        CHECK(r, "no reply");
        bool typed = strcmp(header(r, "Content-Type"), accepts[i]) == 0 && strcmp(header(r, "Status"), "200") == 0;
        const char *data = natsMsg_GetData(r);
        size_t len = (size_t)natsMsg_GetDataLength(r);
        dm_err err = {0};
        if (i == 2) {
            Dm__V1__CandlesReply *pb = dm__v1__candles_reply__unpack(NULL, len, (const uint8_t *)data);
            typed = typed && pb && pb->n_data == 4 && pb->data[0]->timestamp == T0 && !pb->data[2]->has_volume &&
                    pb->next_cursor == NULL;
            dm__v1__candles_reply__free_unpacked(pb, NULL);
            dm_pb_decode(dm_pb_reply_type("dm.v1.candles.latest"), data, len, true, &answers[i], &err);
        } else {
            dm_pb_parse_body(data, len, (dm_encoding)i, 64u << 20, NULL, false, &answers[i], &err);
        }
        natsMsg_Destroy(r);
        CHECK(typed && answers[i], "Accept %s: wrong reply (%s)", accepts[i], err.message);
    }
    /* JSON says null where protobuf leaves a field out; served_by may differ (caches). */
    bool same = true;
    for (int i = 0; i < 3; i++) {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(answers[i], "data"), *c;
        cJSON_ArrayForEach(c, d)
        {
            if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c, "volume")))
                cJSON_DeleteItemFromObjectCaseSensitive(c, "volume");
        }
        same = same && cJSON_Compare(cJSON_GetObjectItemCaseSensitive(answers[0], "data"), d, true);
    }
    for (int i = 0; i < 3; i++)
        cJSON_Delete(answers[i]);
    CHECK(same, "the three encodings answered different candles");
}

static void broken_protobuf_is_dead_lettered_and_never_stored(void)
{
    static const char garbage[] = "\x0a\x07PBX/USD\x12\x7f\x01"; /* a length past the end */
    uint64_t seq = publish("market.candle.PBXUSD.1h", garbage, sizeof garbage - 1, DM_CT_PROTOBUF, NULL);
    CHECK(seq > 0, "publish");
    CHECK(wait_idle(30), "a broken message must be acked (terminated), not redelivered");
    char reason[400] = "";
    CHECK(dlq_count(seq, reason, sizeof reason) == 1, "want exactly one dead letter");
    CHECK(strstr(reason, "protobuf") != NULL, "reason '%s' does not say protobuf", reason);
    CHECK(pg_count("SELECT count(*) FROM candles WHERE symbol = $1", "PBX/USD") == 0, "a broken candle was stored");
    /* A request field number this version does not know: invalid_field, as ErrorReply. */
    static const char req[] = "\x0a\x07PBP/USD\x50\x01";
    natsMsg *r = ask("dm.v1.candles.latest", req, sizeof req - 1, DM_CT_PROTOBUF, NULL);
    CHECK(r, "no reply");
    Dm__V1__ErrorReply *e = dm__v1__error_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(r),
                                                        (const uint8_t *)natsMsg_GetData(r));
    bool ok = strcmp(header(r, "Status"), "400") == 0 && e && e->code && strcmp(e->code, "invalid_field") == 0 &&
              e->field && strcmp(e->field, "10") == 0;
    dm__v1__error_reply__free_unpacked(e, NULL);
    natsMsg_Destroy(r);
    CHECK(ok, "an unknown request field must be invalid_field naming its number");
}

const itest PROTOBUF_TESTS[] = {
    {"the_same_market_data_in_json_msgpack_and_protobuf_reads_back_the_same",
     the_same_market_data_in_json_msgpack_and_protobuf_reads_back_the_same},
    {"candles_latest_is_the_same_answer_in_json_msgpack_and_protobuf", candles_latest_is_the_same_answer_in_json_msgpack_and_protobuf},
    {"broken_protobuf_is_dead_lettered_and_never_stored", broken_protobuf_is_dead_lettered_and_never_stored},
};
const size_t N_PROTOBUF_TESTS = sizeof PROTOBUF_TESTS / sizeof *PROTOBUF_TESTS;
