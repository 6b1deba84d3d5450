/* Protobuf through the pipeline: serve answers in the encoding the Accept header names (the
 * same answer in all three), errors are ErrorReply, and ingest stores from a protobuf
 * payload exactly the rows JSON gives, dead-lettering what does not decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/pb.h"
#include "market_data.pb-c.h"
#include "pipeline/ingest.h"
#include "pipeline/serve.h"

#define HOUR_MS 3600000LL
#define FIRST_TS (1600000000000LL / HOUR_MS * HOUR_MS)

/* ---- serve against one fake database --------------------------------------------------- */

static dm_bstatus db_latest_candles(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err)
{
    (void)b, (void)tf, (void)err;
    if (strcmp(symbol, "EUR/USD") != 0)
        return DM_BS_MISS;
    for (size_t i = 0; i < limit && i < 3; i++) {
        dm_candle *c = dm_candle_vec_push(out);
        memset(c, 0, sizeof *c);
        snprintf(c->symbol, sizeof c->symbol, "EUR/USD");
        snprintf(c->source, sizeof c->source, "oanda");
        c->tf = DM_TF_1H;
        c->ts = FIRST_TS + (int64_t)i * HOUR_MS;
        c->open = 1.1, c->high = 1.2 + (double)i / 100, c->low = 1.0, c->close = 1.15;
        c->has_volume = i != 1; /* one candle without a volume: null in JSON, absent here */
        c->volume = 100.5 * (double)i;
    }
    return DM_BS_OK;
}

static void db_destroy(dm_backend *b) { (void)b; }

static const dm_backend_ops DB_OPS = {.latest_candles = db_latest_candles, .destroy = db_destroy};

typedef struct {
    dm_strategy_holder *h;
    dm_backend db;
    dm_serve *serve;
    dm_reply r;
} serve_fx;

static int serve_setup(void **state)
{
    static serve_fx f;
    memset(&f, 0, sizeof f);
    dm_strategy st;
    dm_strategy_defaults(&st);
    st.routing[DM_OP_GET_CANDLES].n = 1;
    st.routing[DM_OP_GET_CANDLES].targets[0] = DM_BK_TIMESCALE;
    f.h = dm_strategy_holder_create(&st);
    f.db = (dm_backend){.ops = &DB_OPS, .id = DM_BK_TIMESCALE};
    dm_serve_config cfg = {.worker_name = "w1", .strategies = f.h};
    cfg.backends[DM_BK_TIMESCALE] = &f.db;
    f.serve = dm_serve_create(&cfg);
    assert_non_null(f.serve);
    dm_buf_init(&f.r.body);
    *state = &f;
    return 0;
}

static int serve_teardown(void **state)
{
    serve_fx *f = *state;
    dm_serve_destroy(f->serve);
    dm_strategy_holder_destroy(f->h);
    dm_buf_free(&f->r.body);
    return 0;
}

/* The request given as JSON, sent in `enc`, answered as `accept` asks; the reply as a tree. */
static cJSON *ask(serve_fx *f, const char *subject, const char *json, dm_encoding enc, const char *accept)
{
    cJSON *req = cJSON_Parse(json), *out = NULL;
    dm_buf body;
    dm_enc e;
    dm_err err = {0};
    dm_buf_init(&body);
    if (enc == DM_ENC_PROTOBUF) {
        assert_int_equal(dm_pb_encode(dm_pb_request_type(subject), req, &body, &err), DM_OK);
    } else {
        dm_enc_init(&e, enc, &body);
        assert_true(dm_enc_cjson(&e, req));
    }
    dm_serve_handle_accept(f->serve, subject, body.data, body.len, dm_content_type(enc), accept, &f->r);
    const ProtobufCMessageDescriptor *type = f->r.status >= 400 ? dm_pb_error_type() : dm_pb_reply_type(subject);
    if (f->r.enc == DM_ENC_PROTOBUF)
        assert_int_equal(dm_pb_decode(type, f->r.body.data, f->r.body.len, true, &out, &err), DM_OK);
    else if (f->r.enc == DM_ENC_MSGPACK)
        assert_int_equal(dm_doc_parse_msgpack_value(f->r.body.data, f->r.body.len, &out, &err), DM_OK);
    else
        out = cJSON_ParseWithLength(f->r.body.data, f->r.body.len);
    assert_non_null(out);
    dm_buf_free(&body);
    cJSON_Delete(req);
    return out;
}

static void drop_nulls(cJSON *j)
{
    for (cJSON *c = j->child, *next; c; c = next) {
        next = c->next;
        if (cJSON_IsNull(c) && cJSON_IsObject(j))
            cJSON_Delete(cJSON_DetachItemViaPointer(j, c));
        else
            drop_nulls(c);
    }
}

#define LATEST "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":3}"

/* The same question in JSON, msgpack and protobuf gets the same answer, in each encoding. */
static void latest_candles_are_the_same_answer_in_all_three_encodings(void **state)
{
    serve_fx *f = *state;
    cJSON *want = ask(f, DM_SUBJ_CANDLES_LATEST, LATEST, DM_ENC_JSON, NULL);
    assert_int_equal(f->r.status, 200);
    drop_nulls(want);
    static const dm_encoding encs[] = {DM_ENC_JSON, DM_ENC_MSGPACK, DM_ENC_PROTOBUF};
    for (size_t in = 0; in < 3; in++)
        for (size_t out = 0; out < 3; out++) {
            cJSON *got = ask(f, DM_SUBJ_CANDLES_LATEST, LATEST, encs[in], dm_content_type(encs[out]));
            assert_int_equal(f->r.enc, encs[out]);
            drop_nulls(got);
            if (!cJSON_Compare(want, got, true))
                fail_msg("request %d, reply %d: %s", (int)in, (int)out, cJSON_PrintUnformatted(got));
            cJSON_Delete(got);
        }
    cJSON_Delete(want);
}

/* Without Accept the reply is in the request's encoding; protoc's generated code reads it. */
static void a_protobuf_request_gets_a_candles_reply_protoc_code_reads(void **state)
{
    serve_fx *f = *state;
    cJSON *tree = ask(f, DM_SUBJ_CANDLES_LATEST, LATEST, DM_ENC_PROTOBUF, NULL);
    cJSON_Delete(tree);
    assert_int_equal(f->r.enc, DM_ENC_PROTOBUF);
    Dm__V1__CandlesReply *r = dm__v1__candles_reply__unpack(NULL, f->r.body.len, (const uint8_t *)f->r.body.data);
    assert_non_null(r);
    assert_int_equal(r->n_data, 3);
    assert_string_equal(r->served_by, "timescale");
    assert_null(r->next_cursor);
    assert_true(r->data[0]->has_timestamp && r->data[0]->timestamp == FIRST_TS);
    assert_true(r->data[2]->has_high && r->data[2]->high == 1.22);
    assert_false(r->data[1]->has_volume);
    assert_string_equal(r->data[1]->timeframe, "1h");
    dm__v1__candles_reply__free_unpacked(r, NULL);
}

static void expect_error(serve_fx *f, cJSON *reply, int status, const char *code, const char *field)
{
    assert_int_equal(f->r.enc, DM_ENC_PROTOBUF);
    assert_int_equal(f->r.status, status);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(reply, "code");
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(reply, "field");
    if (!cJSON_IsString(c) || strcmp(c->valuestring, code) != 0)
        fail_msg("want %s: %s", code, cJSON_PrintUnformatted(reply));
    if (field)
        assert_string_equal(fl->valuestring, field);
    else
        assert_null(fl);
    cJSON_Delete(reply);
}

/* A 4xx/5xx reply is an ErrorReply {code, message, field}, whatever went wrong. */
static void errors_are_error_replies(void **state)
{
    serve_fx *f = *state;
    expect_error(f, ask(f, DM_SUBJ_CANDLES_LATEST, "{\"timeframe\":\"1h\"}", DM_ENC_PROTOBUF, NULL), 400,
                 "missing_field", "symbol");
    expect_error(f, ask(f, DM_SUBJ_CANDLES_LATEST, "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"limit\":1001}",
                        DM_ENC_JSON, DM_CT_PROTOBUF), 400, "invalid_field", "limit");
    expect_error(f, ask(f, DM_SUBJ_CANDLES_LATEST, "{\"symbol\":\"NOP/USD\",\"timeframe\":\"1h\"}", DM_ENC_PROTOBUF,
                        NULL), 404, "not_found", "symbol");
    expect_error(f, ask(f, "dm.v1.candle.latest", "{}", DM_ENC_JSON, DM_CT_PROTOBUF), 404, "not_found", "subject");
    /* bytes that are no protobuf, and a field number the request does not have */
    dm_err err = {0};
    cJSON *r = NULL;
    dm_serve_handle(f->serve, DM_SUBJ_CANDLES_LATEST, "\x0a\x09" "EUR", 5, DM_CT_PROTOBUF, &f->r);
    assert_int_equal(dm_pb_decode(dm_pb_error_type(), f->r.body.data, f->r.body.len, true, &r, &err), DM_OK);
    expect_error(f, r, 400, "invalid_protobuf", NULL);
    dm_serve_handle(f->serve, DM_SUBJ_CANDLES_LATEST, "\x0a\x03" "EUR" "\x50\x01", 7, DM_CT_PROTOBUF, &f->r);
    assert_int_equal(dm_pb_decode(dm_pb_error_type(), f->r.body.data, f->r.body.len, true, &r, &err), DM_OK);
    expect_error(f, r, 400, "invalid_field", "10");
}

/* Health and metrics have no protobuf form: asked for it, they answer JSON. */
static void health_asked_in_protobuf_answers_json(void **state)
{
    serve_fx *f = *state;
    dm_serve_handle_accept(f->serve, DM_SUBJ_HEALTH, "", 0, DM_CT_PROTOBUF, DM_CT_PROTOBUF, &f->r);
    assert_int_equal(f->r.enc, DM_ENC_JSON);
    assert_int_equal(f->r.status, 200);
    assert_int_equal(f->r.body.data[0], '{');
}

/* Every field of every request message is a member its operation takes: a protobuf request
 * can never carry a field the JSON contract would refuse as unknown. */
static void every_request_field_is_a_member_the_operation_takes(void **state)
{
    serve_fx *f = *state;
    static const char *const subjects[] = {DM_SUBJ_TICK_LATEST, DM_SUBJ_CANDLES_LATEST, DM_SUBJ_CANDLES_HISTORY,
                                           DM_SUBJ_EVENTS, DM_SUBJ_AGGREGATES, DM_SUBJ_PATTERNS_FIND,
                                           DM_SUBJ_PATTERNS_SIMILAR, DM_SUBJ_CORRELATIONS, DM_SUBJ_GRAPH};
    for (size_t i = 0; i < sizeof subjects / sizeof *subjects; i++) {
        const ProtobufCMessageDescriptor *d = dm_pb_request_type(subjects[i]);
        for (unsigned k = 0; k < d->n_fields; k++) {
            char json[128];
            snprintf(json, sizeof json, "{\"%s\":null}", d->fields[k].name);
            dm_serve_handle(f->serve, subjects[i], json, strlen(json), DM_CT_JSON, &f->r);
            if (strstr(f->r.body.data, "unknown field"))
                fail_msg("%s: %s is not taken: %s", subjects[i], d->fields[k].name, f->r.body.data);
        }
    }
}

/* ---- ingest ------------------------------------------------------------------------------ */

typedef struct {
    dm_backend base;
    dm_candle candles[16];
    size_t n;
} sink_db;

static dm_bstatus sink_candles(dm_backend *b, const dm_candle *c, size_t n, const dm_cache_opts *o, dm_err *err)
{
    (void)o, (void)err;
    sink_db *s = (sink_db *)b;
    assert_true(s->n + n <= 16);
    memcpy(s->candles + s->n, c, n * sizeof *c);
    s->n += n;
    return DM_BS_OK;
}

static const dm_backend_ops SINK_OPS = {.write_candles = sink_candles, .destroy = db_destroy};

#define BULK "{\"candles\":[{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"timestamp\":1578528000000,\"open\":1.11112," \
             "\"high\":1.11147,\"low\":1.11098,\"close\":1.11118,\"volume\":1454,\"source\":\"broker-csv\"}," \
             "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"timestamp\":1578531600000,\"open\":1.11118,"       \
             "\"high\":1.11126,\"low\":1.11016,\"close\":1.11053,\"source\":\"broker-csv\"}]}"

/* A bulk in protobuf stores the rows the same bulk in JSON stores; broken protobuf is
 * dead-lettered as invalid_protobuf and stores nothing. */
static void ingest_stores_from_protobuf_what_json_stores(void **state)
{
    (void)state;
    const char *subject = "market.candles.EURUSD.1h";
    cJSON *doc = cJSON_Parse(BULK);
    dm_buf pb;
    dm_err err = {0};
    dm_buf_init(&pb);
    assert_int_equal(dm_pb_encode(dm_pb_payload_type(subject), doc, &pb, &err), DM_OK);
    sink_db db = {.base = {.ops = &SINK_OPS, .id = DM_BK_TIMESCALE}};
    dm_ingest *ing = dm_ingest_create(DM_KIND_CANDLES, &db.base);
    dm_ingest_msg msgs[3] = {
        {.subject = subject, .data = BULK, .len = strlen(BULK), .content_type = DM_CT_JSON},
        {.subject = subject, .data = pb.data, .len = pb.len, .content_type = DM_CT_PROTOBUF},
        {.subject = subject, .data = "\x0a\x7f\x0a", .len = 3, .content_type = DM_CT_PROTOBUF},
    };
    dm_cache_opts opts = {0};
    dm_ingest_batch(ing, msgs, 3, &opts);
    assert_int_equal(msgs[0].verdict, DM_V_ACK);
    assert_int_equal(msgs[1].verdict, DM_V_ACK);
    assert_int_equal(msgs[2].verdict, DM_V_DEAD);
    assert_int_equal(msgs[2].err.code, DM_E_INVALID_PROTOBUF);
    assert_int_equal(db.n, 4);
    assert_memory_equal(&db.candles[0], &db.candles[2], 2 * sizeof(dm_candle));
    assert_false(db.candles[3].has_volume);
    dm_ingest_destroy(ing);
    dm_buf_free(&pb);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(latest_candles_are_the_same_answer_in_all_three_encodings, serve_setup,
                                        serve_teardown),
        cmocka_unit_test_setup_teardown(a_protobuf_request_gets_a_candles_reply_protoc_code_reads, serve_setup,
                                        serve_teardown),
        cmocka_unit_test_setup_teardown(errors_are_error_replies, serve_setup, serve_teardown),
        cmocka_unit_test_setup_teardown(health_asked_in_protobuf_answers_json, serve_setup, serve_teardown),
        cmocka_unit_test_setup_teardown(every_request_field_is_a_member_the_operation_takes, serve_setup,
                                        serve_teardown),
        cmocka_unit_test(ingest_stores_from_protobuf_what_json_stores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
