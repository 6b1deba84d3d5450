/* Protobuf (worker/codec/pb*.c): messages of schemas/market_data.proto become the document
 * JSON gives and back, protobuf-c's own generated code agrees with the generic walk, and
 * hostile bytes are refused with the right code before anything is allocated for them. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/models.h"
#include "codec/pb.h"
#include "market_data.pb-c.h"
#include "model/names.h"

#define NOW 1779000000000LL /* 2026-05-17: after every example */

static cJSON *load_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

/* JSON's null is protobuf's absent: the document a message gives back has no nulls. */
static void strip_nulls(cJSON *j)
{
    cJSON *c = j ? j->child : NULL;
    while (c) {
        cJSON *next = c->next;
        if (cJSON_IsNull(c) && cJSON_IsObject(j))
            cJSON_Delete(cJSON_DetachItemViaPointer(j, c));
        else
            strip_nulls(c);
        c = next;
    }
}

static cJSON *round_trip(const ProtobufCMessageDescriptor *type, const cJSON *doc, bool strict)
{
    dm_buf b;
    dm_err err = {0};
    cJSON *back = NULL;
    dm_buf_init(&b);
    if (dm_pb_encode(type, doc, &b, &err) != DM_OK)
        fail_msg("encode %s: %s [%s]", type->name, err.message, err.field);
    if (dm_pb_decode(type, b.data, b.len, strict, &back, &err) != DM_OK)
        fail_msg("decode %s: %s", type->name, err.message);
    dm_buf_free(&b);
    return back;
}

static dm_code decode(const ProtobufCMessageDescriptor *type, const void *p, size_t n, bool strict, dm_err *err)
{
    cJSON *doc = NULL;
    dm_code c = dm_pb_decode(type, p, n, strict, &doc, err);
    cJSON_Delete(doc);
    return c;
}

/* ---- the same values as JSON ------------------------------------------------------------ */

/* A collector using protoc's generated code: its candle decodes to the candle JSON gives. */
static void generated_candle_decodes_to_the_json_candle(void **state)
{
    (void)state;
    Dm__V1__Candle c = DM__V1__CANDLE__INIT;
    c.symbol = "EUR/USD", c.timeframe = "1h", c.source = "broker-csv";
    c.has_timestamp = c.has_open = c.has_high = c.has_low = c.has_close = c.has_volume = 1;
    c.timestamp = 1578574800000LL, c.open = 1.11172, c.high = 1.1119, c.low = 1.10983, c.close = 1.10993;
    c.volume = 2767;
    uint8_t wire[256];
    size_t n = dm__v1__candle__pack(&c, wire);
    cJSON *from_pb = NULL, *from_json = load_json(DM_SOURCE_DIR "/subjects/examples/market.candle.EURUSD.1h.payload.json");
    dm_err err = {0};
    assert_int_equal(dm_pb_decode(&dm__v1__candle__descriptor, wire, n, false, &from_pb, &err), DM_OK);
    dm_candle a, b;
    assert_int_equal(dm_candle_decode(from_pb, NOW, &a, &err), DM_OK);
    assert_int_equal(dm_candle_decode(from_json, NOW, &b, &err), DM_OK);
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(cJSON_Compare(from_pb, from_json, true));
    cJSON_Delete(from_pb);
    cJSON_Delete(from_json);
}

/* The generic encoder writes exactly the bytes protobuf-c's generated code writes. */
static void generic_encoder_writes_what_generated_code_writes(void **state)
{
    (void)state;
    cJSON *doc = load_json(DM_SOURCE_DIR "/subjects/examples/market.tick.EURUSD.payload.json");
    dm_buf b;
    dm_err err = {0};
    dm_buf_init(&b);
    assert_int_equal(dm_pb_encode(&dm__v1__tick__descriptor, doc, &b, &err), DM_OK);
    Dm__V1__Tick *t = dm__v1__tick__unpack(NULL, b.len, (const uint8_t *)b.data);
    assert_non_null(t);
    assert_string_equal(t->symbol, "EUR/USD");
    assert_true(t->has_timestamp && t->timestamp == 1579564794588LL);
    assert_true(t->has_bid && t->bid == 1.10992 && t->has_ask && t->ask == 1.10993);
    assert_true(t->has_volume && t->volume == 0); /* present and zero is not absent */
    uint8_t again[256];
    assert_int_equal(dm__v1__tick__pack(t, again), b.len);
    assert_memory_equal(again, b.data, b.len);
    dm__v1__tick__free_unpacked(t, NULL);
    dm_buf_free(&b);
    cJSON_Delete(doc);
}

static const ProtobufCMessageDescriptor *example_type(const char *name, bool *request)
{
    char subject[256]; /* a d_name */
    snprintf(subject, sizeof subject, "%s", name);
    char *dot = strstr(subject, ".payload.json");
    *request = strstr(subject, ".request.json") != NULL;
    if (dot) {
        *dot = '\0';
        return dm_pb_payload_type(subject);
    }
    if ((dot = strstr(subject, *request ? ".request.json" : ".reply.json")) == NULL)
        return NULL;
    *dot = '\0';
    return *request ? dm_pb_request_type(subject) : dm_pb_reply_type(subject);
}

/* Every example of subjects/ with a protobuf form: payloads and replies survive the trip
 * (nulls become absent); every member of a request example is a field of its message. */
static void every_example_of_the_contract_fits_the_schema(void **state)
{
    (void)state;
    DIR *d = opendir(DM_SOURCE_DIR "/subjects/examples");
    assert_non_null(d);
    int checked = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        bool request;
        const ProtobufCMessageDescriptor *type = example_type(e->d_name, &request);
        if (type == NULL)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/subjects/examples/%s", DM_SOURCE_DIR, e->d_name);
        cJSON *doc = load_json(path);
        strip_nulls(doc);
        for (const cJSON *m = doc->child; request && m; m = m->next)
            if (protobuf_c_message_descriptor_get_field_by_name(type, m->string) == NULL)
                fail_msg("%s: %s is not a field of %s", e->d_name, m->string, type->name);
        if (!request) {
            cJSON *back = round_trip(type, doc, false);
            if (!cJSON_Compare(doc, back, true))
                fail_msg("%s: %s changed on the way", e->d_name, type->name);
            cJSON_Delete(back);
        }
        cJSON_Delete(doc);
        checked++;
    }
    closedir(d);
    assert_int_equal(checked, 4 + 9 * 2); /* 4 payloads, 9 data subjects' requests and replies */
}

/* GraphReply.clusters is a list of lists: [["GBP/USD", "USD/JPY"]] both ways. */
static void clusters_travel_as_lists_of_symbols(void **state)
{
    (void)state;
    cJSON *doc = cJSON_Parse("{\"clusters\":[[\"GBP/USD\",\"USD/JPY\"],[],[\"EUR/USD\"]],\"served_by\":\"fallback\"}");
    cJSON *back = round_trip(&dm__v1__graph_reply__descriptor, doc, true);
    assert_true(cJSON_Compare(doc, back, true));
    cJSON_Delete(back);
    cJSON_Delete(doc);
}

/* ---- hostile and wrong input ------------------------------------------------------------ */

typedef struct {
    const char *what;
    const char *bytes;
    size_t len;
} bad_wire;

#define BAD(what, lit) {what, lit, sizeof lit - 1}

static void broken_bytes_are_invalid_protobuf(void **state)
{
    (void)state;
    static const bad_wire cases[] = {
        BAD("length past the end", "\x0a\x05" "EU"),
        BAD("varint cut short", "\x10\xff\xff"),
        BAD("varint of 11 bytes", "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        BAD("a group", "\x0b\x0c"),
        BAD("wire type 6", "\x0e\x00"),
        BAD("field number 0", "\x02\x00"),
        BAD("symbol as a varint", "\x08\x05"),
        BAD("bid as fixed32", "\x1d\x00\x00\x80\x3f"),
        BAD("a NUL inside symbol", "\x0a\x07" "EUR\0USD"),
        BAD("fixed64 cut short", "\x19\x00\x00\x00"),
        BAD("only a key", "\x0a"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dm_err err = {0};
        dm_code c = decode(&dm__v1__tick__descriptor, cases[i].bytes, cases[i].len, false, &err);
        if (c != DM_E_INVALID_PROTOBUF)
            fail_msg("%s: %s (%s), want invalid_protobuf", cases[i].what, dm_code_name(c), err.message);
    }
    dm_err err = {0}; /* a packed run of doubles whose length is not a multiple of 8 */
    assert_int_equal(decode(&dm__v1__patterns_find_request__descriptor, "\x0a\x03\x00\x00\x00", 5, true, &err),
                     DM_E_INVALID_PROTOBUF);
}

/* A request field number this version does not know is invalid_field, naming it; the same
 * field in a payload is skipped, as JSON's unknown members are, but only so many. */
static void unknown_fields_are_refused_in_requests_and_skipped_in_payloads(void **state)
{
    (void)state;
    const char req[] = "\x0a\x07" "EUR/USD" "\x78\x01"; /* symbol, then field 15 = 1 */
    dm_err err = {0};
    assert_int_equal(decode(&dm__v1__tick_latest_request__descriptor, req, sizeof req - 1, true, &err),
                     DM_E_INVALID_FIELD);
    assert_string_equal(err.field, "15");
    assert_non_null(strstr(err.message, "unknown field number 15"));
    assert_non_null(strstr(err.message, "symbol = 1"));
    assert_int_equal(decode(&dm__v1__tick__descriptor, req, sizeof req - 1, false, &err), DM_OK);
    char many[2 * (DM_PB_UNKNOWN_MAX + 1)];
    for (size_t i = 0; i < sizeof many; i += 2)
        many[i] = 0x78, many[i + 1] = 0x01;
    assert_int_equal(decode(&dm__v1__tick__descriptor, many, sizeof many, false, &err), DM_E_INVALID_PROTOBUF);
}

/* Two bytes announce an empty candle, which protobuf-c would allocate: counts over the
 * limits are refused from the wire, as a bulk over 10,000 candles is in JSON. */
static void counts_beyond_the_limits_are_refused_from_the_wire(void **state)
{
    (void)state;
    size_t n = DM_PB_REPEATED_MAX + 1;
    char *bulk = malloc(2 * n);
    assert_non_null(bulk);
    for (size_t i = 0; i < n; i++)
        bulk[2 * i] = 0x0a, bulk[2 * i + 1] = 0x00;
    dm_err err = {0};
    assert_int_equal(decode(&dm__v1__candle_batch__descriptor, bulk, 2 * n, false, &err), DM_E_TOO_LARGE);
    assert_string_equal(err.field, "candles");
    assert_int_equal(decode(&dm__v1__candle_batch__descriptor, bulk, 2 * (n - 1), false, &err), DM_OK);
    free(bulk);
    size_t fields = DM_PB_FIELDS_MAX + 1; /* timestamp = 1, again and again */
    char *ts = malloc(2 * fields);
    assert_non_null(ts);
    for (size_t i = 0; i < fields; i++)
        ts[2 * i] = 0x10, ts[2 * i + 1] = 0x01;
    assert_int_equal(decode(&dm__v1__tick__descriptor, ts, 2 * fields, false, &err), DM_E_TOO_LARGE);
    free(ts);
}

/* A protobuf double may be NaN, which JSON cannot say: validation refuses it by name. */
static void nan_price_reaches_validation_and_is_refused(void **state)
{
    (void)state;
    Dm__V1__Tick t = DM__V1__TICK__INIT;
    t.symbol = "EUR/USD", t.source = "oanda";
    t.has_timestamp = t.has_bid = t.has_ask = t.has_spread = 1;
    t.timestamp = 1578528000000LL, t.bid = NAN, t.ask = 1.1, t.spread = 0.0001;
    uint8_t wire[128];
    size_t n = dm__v1__tick__pack(&t, wire);
    cJSON *doc = NULL;
    dm_err err = {0};
    assert_int_equal(dm_pb_decode(&dm__v1__tick__descriptor, wire, n, false, &doc, &err), DM_OK);
    dm_tick tick;
    assert_int_equal(dm_tick_decode(doc, NOW, &tick, &err), DM_E_INVALID_FIELD);
    assert_string_equal(err.field, "bid");
    cJSON_Delete(doc);
}

static void encoder_refuses_what_the_schema_cannot_hold(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"symbol\":\"EUR/USD\",\"bogus\":1}", "{\"timestamp\":1.5}", "{\"timestamp\":\"1\"}",
        "{\"bid\":\"1.1\"}", "{\"symbol\":5}", "{\"symbol\":\"A\",\"symbol\":\"B\"}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        cJSON *doc = cJSON_Parse(docs[i]);
        dm_buf b;
        dm_err err = {0};
        dm_buf_init(&b);
        if (dm_pb_encode(&dm__v1__tick__descriptor, doc, &b, &err) != DM_E_INVALID_FIELD)
            fail_msg("%s: encoded, want invalid_field", docs[i]);
        dm_buf_free(&b);
        cJSON_Delete(doc);
    }
}

static void bodies_pick_their_decoder_and_keep_the_size_limit(void **state)
{
    (void)state;
    cJSON *doc = NULL;
    dm_err err = {0};
    assert_int_equal(dm_pb_parse_body("\x0a\x01" "A", 3, DM_ENC_PROTOBUF, 2, &dm__v1__tick__descriptor, false, &doc, &err),
                     DM_E_TOO_LARGE);
    assert_int_equal(dm_pb_parse_body("\x0a\x01" "A", 3, DM_ENC_PROTOBUF, 16, NULL, true, &doc, &err),
                     DM_E_INVALID_PROTOBUF);
    assert_int_equal(dm_pb_parse_body("{\"a\":1}", 7, DM_ENC_JSON, 16, NULL, true, &doc, &err), DM_OK);
    cJSON_Delete(doc);
    assert_int_equal(dm_doc_detect("application/x-protobuf", "{", 1), DM_ENC_PROTOBUF);
    assert_int_equal(dm_doc_detect(NULL, "\x0a", 1), DM_ENC_JSON); /* never guessed */
    assert_int_equal(dm_doc_accept(DM_CT_PROTOBUF, DM_ENC_JSON), DM_ENC_PROTOBUF);
    assert_int_equal(dm_doc_accept("application/msgpack, application/protobuf", DM_ENC_JSON), DM_ENC_MSGPACK);
    assert_int_equal(dm_doc_accept("*/*", DM_ENC_MSGPACK), DM_ENC_MSGPACK);
    assert_int_equal(dm_doc_accept(NULL, DM_ENC_PROTOBUF), DM_ENC_PROTOBUF);
}

/* Every message type fits the scan's per-type counters, and every data subject has both. */
static void every_subject_has_its_messages(void **state)
{
    (void)state;
    static const char *const data[] = {DM_SUBJ_TICK_LATEST, DM_SUBJ_CANDLES_LATEST, DM_SUBJ_CANDLES_HISTORY,
                                       DM_SUBJ_EVENTS, DM_SUBJ_AGGREGATES, DM_SUBJ_PATTERNS_FIND,
                                       DM_SUBJ_PATTERNS_SIMILAR, DM_SUBJ_CORRELATIONS, DM_SUBJ_GRAPH};
    for (size_t i = 0; i < sizeof data / sizeof *data; i++) {
        assert_non_null(dm_pb_request_type(data[i]));
        assert_non_null(dm_pb_reply_type(data[i]));
        assert_true(dm_pb_reply_type(data[i])->n_fields <= DM_PB_TYPE_FIELDS_MAX);
    }
    assert_null(dm_pb_request_type(DM_SUBJ_HEALTH));
    assert_null(dm_pb_reply_type(DM_SUBJ_METRICS));
    assert_ptr_equal(dm_pb_payload_type("market.candles.EURUSD.1h"), &dm__v1__candle_batch__descriptor);
    assert_ptr_equal(dm_pb_payload_type("market.candle.EURUSD.1h"), &dm__v1__candle__descriptor);
    assert_null(dm_pb_payload_type("market.quote.EURUSD"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_candle_decodes_to_the_json_candle),
        cmocka_unit_test(generic_encoder_writes_what_generated_code_writes),
        cmocka_unit_test(every_example_of_the_contract_fits_the_schema),
        cmocka_unit_test(clusters_travel_as_lists_of_symbols),
        cmocka_unit_test(broken_bytes_are_invalid_protobuf),
        cmocka_unit_test(unknown_fields_are_refused_in_requests_and_skipped_in_payloads),
        cmocka_unit_test(counts_beyond_the_limits_are_refused_from_the_wire),
        cmocka_unit_test(nan_price_reaches_validation_and_is_refused),
        cmocka_unit_test(encoder_refuses_what_the_schema_cannot_hold),
        cmocka_unit_test(bodies_pick_their_decoder_and_keep_the_size_limit),
        cmocka_unit_test(every_subject_has_its_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
