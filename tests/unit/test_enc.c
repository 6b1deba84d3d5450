/* Reply encoder (worker/codec/enc): streamed JSON is valid and exact, doubles round-trip,
 * msgpack carries the same values, and models use the contract's field names. */
#include <float.h>
#include <math.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/enc.h"
#include "codec/models.h"

#define NOW 1579478400000LL /* 2020-01-20 00:00 UTC */

static dm_tick eurusd_tick(void)
{
    dm_tick t;
    memset(&t, 0, sizeof t);
    strcpy(t.symbol, "EUR/USD");
    t.ts = 1578528001234LL;
    t.bid = 1.09551;
    t.ask = 1.09563;
    t.spread = 0.00012;
    t.volume = 12.5;
    t.has_volume = true;
    strcpy(t.source, "twelve-data");
    return t;
}

static dm_candle usdjpy_h1(void)
{
    dm_candle c;
    memset(&c, 0, sizeof c);
    strcpy(c.symbol, "USD/JPY");
    c.tf = DM_TF_1H;
    c.ts = 1578560400000LL;
    c.open = 109.512;
    c.high = 109.604;
    c.low = 109.487;
    c.close = 109.571;
    c.volume = 3021;
    c.has_volume = true;
    strcpy(c.source, "oanda");
    return c;
}

static dm_event us_nfp(void)
{
    dm_event e;
    memset(&e, 0, sizeof e);
    strcpy(e.event_id, "us-nfp-2020-01");
    e.ts = 1578663000000LL;
    strcpy(e.country, "US");
    strcpy(e.event_name, "Non-Farm Payrolls");
    e.actual = 145;
    e.has_actual = true;
    e.forecast = 160;
    e.has_forecast = true;
    e.impact = DM_IMPACT_HIGH;
    strcpy(e.currency_impact[0], "USD");
    strcpy(e.currency_impact[1], "EUR");
    e.n_currency = 2;
    return e;
}

/* Output as a C string (the buffer keeps a NUL after its bytes). */
static const char *text(const dm_buf *b) { return b->data ? b->data : ""; }

static void write_nested(dm_enc *e)
{
    dm_enc_map(e, 5);
    dm_enc_key(e, "symbol");
    dm_enc_str(e, "EUR/USD");
    dm_enc_key(e, "data");
    dm_enc_arr(e, 2);
    dm_enc_map(e, 2);
    dm_enc_key(e, "a");
    dm_enc_i64(e, 1);
    dm_enc_key(e, "b");
    dm_enc_arr(e, 3);
    dm_enc_bool(e, true);
    dm_enc_bool(e, false);
    dm_enc_null(e);
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
    dm_enc_arr(e, 0);
    dm_enc_arr_end(e);
    dm_enc_arr_end(e);
    dm_enc_key(e, "n");
    dm_enc_i64(e, -1578528000000LL);
    dm_enc_key(e, "empty");
    dm_enc_map(e, 0);
    dm_enc_map_end(e);
    dm_enc_key(e, "price");
    dm_enc_f64(e, 1.09551);
    dm_enc_map_end(e);
}

static void writes_nested_maps_and_arrays_as_json(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_JSON, &b);
    write_nested(&e);
    assert_false(b.oom);
    assert_string_equal(text(&b), "{\"symbol\":\"EUR/USD\",\"data\":[{\"a\":1,\"b\":[true,false,"
                                  "null]},[]],\"n\":-1578528000000,\"empty\":{},\"price\":1.09551}");
    cJSON *root = cJSON_ParseWithLength(b.data, b.len);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "symbol")->valuestring, "EUR/USD");
    cJSON *data = cJSON_GetObjectItem(root, "data");
    assert_int_equal(cJSON_GetArraySize(data), 2);
    cJSON *first = cJSON_GetArrayItem(data, 0);
    assert_true(cJSON_GetObjectItem(first, "a")->valuedouble == 1);
    cJSON *bl = cJSON_GetObjectItem(first, "b");
    assert_true(cJSON_IsTrue(cJSON_GetArrayItem(bl, 0)));
    assert_true(cJSON_IsFalse(cJSON_GetArrayItem(bl, 1)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(bl, 2)));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(data, 1)), 0);
    assert_true(cJSON_GetObjectItem(root, "n")->valuedouble == -1578528000000.0);
    assert_true(cJSON_GetObjectItem(root, "price")->valuedouble == 1.09551);
    cJSON_Delete(root);
    dm_buf_free(&b);
}

static void writes_the_same_values_as_msgpack(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_MSGPACK, &b);
    write_nested(&e);
    assert_false(b.oom);

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, b.data, b.len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b.len); /* declared counts match what was written */
    msgpack_object root = up.data;
    assert_int_equal(root.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(root.via.map.size, 5);
    msgpack_object_kv *kv = root.via.map.ptr;
    assert_memory_equal(kv[0].key.via.str.ptr, "symbol", 6);
    assert_int_equal(kv[0].val.type, MSGPACK_OBJECT_STR);
    assert_int_equal(kv[0].val.via.str.size, 7);
    assert_memory_equal(kv[0].val.via.str.ptr, "EUR/USD", 7);
    msgpack_object data = kv[1].val;
    assert_int_equal(data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(data.via.array.size, 2);
    msgpack_object inner = data.via.array.ptr[0];
    assert_int_equal(inner.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(inner.via.map.ptr[0].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(inner.via.map.ptr[0].val.via.u64, 1);
    msgpack_object bl = inner.via.map.ptr[1].val;
    assert_int_equal(bl.via.array.size, 3);
    assert_int_equal(bl.via.array.ptr[0].type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(bl.via.array.ptr[0].via.boolean);
    assert_false(bl.via.array.ptr[1].via.boolean);
    assert_int_equal(bl.via.array.ptr[2].type, MSGPACK_OBJECT_NIL);
    assert_int_equal(data.via.array.ptr[1].via.array.size, 0);
    assert_int_equal(kv[2].val.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(kv[2].val.via.i64, -1578528000000LL);
    assert_int_equal(kv[3].val.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(kv[3].val.via.map.size, 0);
    assert_int_equal(kv[4].val.type, MSGPACK_OBJECT_FLOAT64);
    assert_true(kv[4].val.via.f64 == 1.09551);
    msgpack_unpacked_destroy(&up);
    dm_buf_free(&b);
}

static const char *fmt(double v)
{
    static char buf[64];
    int n = dm_fmt_double(buf, sizeof buf, v);
    assert_int_equal(n, (int)strlen(buf));
    return buf;
}

static void prints_prices_in_shortest_exact_form(void **state)
{
    (void)state;
    assert_string_equal(fmt(1.09551), "1.09551");
    assert_string_equal(fmt(1.1), "1.1");
    assert_string_equal(fmt(109.512), "109.512");
    assert_string_equal(fmt(0.00012), "0.00012");
    assert_string_equal(fmt(3021), "3021");
    assert_string_equal(fmt(1.1234567), "1.1234567"); /* more than 6 digits */
    assert_string_equal(fmt(-0.3), "-0.3");
    assert_string_equal(fmt(0), "0");
}

/* The old way: shortest %g that reads back. The fast form must read back too and never
 * be longer. */
static int slow_len(double v)
{
    char b[64];
    for (int prec = 1; prec <= 17; prec++) {
        int n = snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtod(b, NULL) == v)
            return n;
    }
    return 64;
}

/* The i-th of a mix: FX prices, JPY-like and negative values, volumes, and any magnitude
 * within 10^+-(spread/2). */
static double random_double(int i, int spread)
{
    switch (i % 4) {
    case 0: return (double)(rand() % 2000000) / 100000.0;
    case 1: return (double)(rand() % 20000000) / 1000.0 - 5000;
    case 2: return (double)rand() * rand();
    default: return ((double)rand() / RAND_MAX) * pow(10, rand() % spread - spread / 2);
    }
}

static void every_double_reads_back_exactly_and_no_longer_than_shortest_g(void **state)
{
    (void)state;
    srand(7);
    for (int i = 0; i < 200000; i++) {
        double v = random_double(i, 40);
        char buf[64];
        int n = dm_fmt_double(buf, sizeof buf, v);
        assert_int_equal(n, (int)strlen(buf));
        if (strtod(buf, NULL) != v)
            fail_msg("%.17g printed as %s", v, buf);
        /* %g may write 1e+15 where the fast form writes every digit: compare digits only
         * where %g itself needs no exponent. */
        if (fabs(v) >= 1e-4 && fabs(v) < 1e15 && n > slow_len(v))
            fail_msg("%.17g printed as %s, longer than %%g's %d characters", v, buf, slow_len(v));
    }
}

/* The reader gives exactly strtod's double, bit for bit, for everything the formatter
 * writes and for decimals typed by hand; it refuses what strtod would stop short on. */
static void reads_decimals_exactly_as_strtod(void **state)
{
    (void)state;
    srand(11);
    for (int i = 0; i < 200000; i++) {
        double v = random_double(i, 60);
        char buf[64];
        int n = dm_fmt_double(buf, sizeof buf, v);
        double got = 0;
        if (!dm_parse_double(buf, (size_t)n, &got) || memcmp(&got, &v, sizeof v) != 0)
            fail_msg("%s read as %.17g, want %.17g", buf, got, v);
    }
    static const char *const ok[] = {"0",     "-0",      "1.",     ".5",   "007.250",
                                     "1e5",   "-1.5E-3", "+2",     "1.17606", "123456789012345",
                                     "1234567890123456789", "0.1000000000000000055511151231257827",
                                     "1e-320", "0.0000000000000000000000012"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        double got = 42, want = strtod(ok[i], NULL);
        if (!dm_parse_double(ok[i], strlen(ok[i]), &got) || memcmp(&got, &want, sizeof got) != 0)
            fail_msg("%s read as %.17g, strtod says %.17g", ok[i], got, want);
    }
    static const char *const bad[] = {"", ".", "-", "1.2.3", "1,5", "1.5x", "--1", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double got = 42;
        if (dm_parse_double(bad[i], strlen(bad[i]), &got) || got != 42)
            fail_msg("'%s' accepted as %.17g", bad[i], got);
    }
    double got = 0; /* the length bounds the read: no terminator needed */
    assert_true(dm_parse_double("1.25|7", 4, &got) && got == 1.25);
}

static void prints_17_digits_when_fewer_do_not_read_back(void **state)
{
    (void)state;
    double v = 0.1 + 0.2;
    const char *s = fmt(v);
    assert_string_equal(s, "0.30000000000000004");
    assert_true(strtod(s, NULL) == v);
    v = 1.1 * 3; /* 3.3000000000000003 */
    assert_true(strtod(fmt(v), NULL) == v);
    assert_string_equal(fmt(v), "3.3000000000000003");
}

static void every_double_reads_back_exactly(void **state)
{
    (void)state;
    const double special[] = {DBL_MAX, -DBL_MAX, DBL_MIN, 5e-324, 1e-7, 123456789012345678.0,
                              9007199254740993.0, 1578528000000.0, 109.99999999999999};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        if (strtod(fmt(special[i]), NULL) != special[i])
            fail_msg("%.17g printed as %s", special[i], fmt(special[i]));
    /* EURUSD-like and USDJPY-like prices built by arithmetic, as a feed would */
    double p = 1.0, q = 100.0;
    for (int i = 0; i < 200000; i++) {
        p += 0.00001;
        q += 0.001;
        double mid = (p + p * 1.00001) / 2;
        if (strtod(fmt(p), NULL) != p || strtod(fmt(q), NULL) != q ||
            strtod(fmt(mid), NULL) != mid)
            fail_msg("round trip failed at step %d: %.17g %.17g %.17g", i, p, q, mid);
    }
}

static void writes_non_finite_numbers_as_null(void **state)
{
    (void)state;
    for (int enc = 0; enc < 2; enc++) {
        dm_buf b;
        dm_buf_init(&b);
        dm_enc e;
        dm_enc_init(&e, enc ? DM_ENC_MSGPACK : DM_ENC_JSON, &b);
        dm_enc_arr(&e, 3);
        dm_enc_f64(&e, NAN);
        dm_enc_f64(&e, INFINITY);
        dm_enc_f64(&e, 1.5);
        dm_enc_arr_end(&e);
        if (enc == 0) {
            assert_string_equal(text(&b), "[null,null,1.5]");
        } else {
            msgpack_unpacked up;
            msgpack_unpacked_init(&up);
            size_t off = 0;
            assert_int_equal(msgpack_unpack_next(&up, b.data, b.len, &off),
                             MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(up.data.via.array.ptr[0].type, MSGPACK_OBJECT_NIL);
            assert_int_equal(up.data.via.array.ptr[1].type, MSGPACK_OBJECT_NIL);
            assert_true(up.data.via.array.ptr[2].via.f64 == 1.5);
            msgpack_unpacked_destroy(&up);
        }
        dm_buf_free(&b);
    }
}

static void escapes_quotes_backslashes_and_control_characters(void **state)
{
    (void)state;
    const char *raw = "say \"hi\" C:\\fx\\eur\n\t\x01\x1f\r end \xc3\x8dndice \x7f";
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_JSON, &b);
    dm_enc_map(&e, 1);
    dm_enc_key(&e, "k\"\n");
    dm_enc_str(&e, raw);
    dm_enc_map_end(&e);
    assert_string_equal(text(&b), "{\"k\\\"\\u000a\":\"say \\\"hi\\\" C:\\\\fx\\\\eur\\u000a"
                                  "\\u0009\\u0001\\u001f\\u000d end \xc3\x8dndice \x7f\"}");
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] < 0x20)
            fail_msg("raw control byte 0x%02x at %zu", (unsigned char)b.data[i], i);
    cJSON *root = cJSON_ParseWithLength(b.data, b.len);
    assert_non_null(root);
    cJSON *v = cJSON_GetObjectItem(root, "k\"\n");
    assert_non_null(v);
    assert_string_equal(v->valuestring, raw);
    cJSON_Delete(root);
    dm_buf_free(&b);
}

static void writes_empty_strings_and_lists_of_values(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_JSON, &b);
    dm_enc_arr(&e, 4);
    dm_enc_str(&e, "");
    dm_enc_i64(&e, INT64_MIN);
    dm_enc_i64(&e, INT64_MAX);
    dm_enc_map(&e, 1);
    dm_enc_key(&e, "");
    dm_enc_null(&e);
    dm_enc_map_end(&e);
    dm_enc_arr_end(&e);
    assert_string_equal(text(&b),
                        "[\"\",-9223372036854775808,9223372036854775807,{\"\":null}]");
    dm_buf_free(&b);
}

static void grows_the_buffer_for_a_10000_candle_reply(void **state)
{
    (void)state;
    dm_candle c = usdjpy_h1();
    c.tf = DM_TF_1M;
    for (int enc = 0; enc < 2; enc++) {
        dm_buf b;
        dm_buf_init(&b);
        dm_enc e;
        dm_enc_init(&e, enc ? DM_ENC_MSGPACK : DM_ENC_JSON, &b);
        dm_enc_map(&e, 1);
        dm_enc_key(&e, "data");
        dm_enc_arr(&e, 10000);
        for (int i = 0; i < 10000; i++) {
            c.ts = 1578528000000LL + 60000LL * i;
            dm_candle_encode(&e, &c);
        }
        dm_enc_arr_end(&e);
        dm_enc_map_end(&e);
        assert_false(b.oom);
        cJSON *root = NULL;
        dm_err err = {0};
        assert_int_equal(dm_doc_parse(b.data, b.len, enc ? DM_ENC_MSGPACK : DM_ENC_JSON,
                                      8u << 20, &root, &err),
                         DM_OK);
        cJSON *data = cJSON_GetObjectItem(root, "data");
        assert_int_equal(cJSON_GetArraySize(data), 10000);
        cJSON *last = cJSON_GetArrayItem(data, 9999);
        assert_true(cJSON_GetObjectItem(last, "timestamp")->valuedouble ==
                    1578528000000.0 + 60000.0 * 9999);
        cJSON_Delete(root);
        dm_buf_free(&b);
    }
}

static void buffer_appends_formatted_text(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_buf_puts(&b, "market.tick.");
    dm_buf_printf(&b, "%s:%d", "EURUSD", 7);
    dm_buf_put(&b, "xyz", 1);
    assert_string_equal(text(&b), "market.tick.EURUSD:7x");
    assert_int_equal(b.len, 21);
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dm_buf_printf(&b, "%s", big);
    assert_int_equal(b.len, 21 + sizeof big - 1);
    assert_int_equal(b.data[b.len], '\0');
    dm_buf_reset(&b);
    assert_int_equal(b.len, 0);
    dm_buf_puts(&b, "ok");
    assert_string_equal(text(&b), "ok");
    dm_buf_free(&b);
}

/* ---- models ---------------------------------------------------------------------- */

static const char *encode_json(dm_buf *b, int kind, const void *v)
{
    dm_enc e;
    dm_buf_reset(b);
    dm_enc_init(&e, DM_ENC_JSON, b);
    if (kind == 0)
        dm_tick_encode(&e, v);
    else if (kind == 1)
        dm_candle_encode(&e, v);
    else
        dm_event_encode(&e, v);
    return text(b);
}

static void tick_encoding_uses_contract_field_names(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_tick t = eurusd_tick();
    assert_string_equal(encode_json(&b, 0, &t),
                        "{\"symbol\":\"EUR/USD\",\"timestamp\":1578528001234,\"bid\":1.09551,"
                        "\"ask\":1.09563,\"spread\":0.00012,\"volume\":12.5,"
                        "\"source\":\"twelve-data\"}");
    t.has_volume = false;
    assert_non_null(strstr(encode_json(&b, 0, &t), "\"volume\":null,"));
    dm_buf_free(&b);
}

static void candle_encoding_uses_contract_field_names(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_candle c = usdjpy_h1();
    assert_string_equal(encode_json(&b, 1, &c),
                        "{\"symbol\":\"USD/JPY\",\"timeframe\":\"1h\",\"timestamp\":1578560400000,"
                        "\"open\":109.512,\"high\":109.604,\"low\":109.487,\"close\":109.571,"
                        "\"volume\":3021,\"source\":\"oanda\"}");
    c.tf = DM_TF_1W;
    assert_non_null(strstr(encode_json(&b, 1, &c), "\"timeframe\":\"1w\""));
    dm_buf_free(&b);
}

static void event_encoding_uses_contract_field_names(void **state)
{
    (void)state;
    dm_buf b;
    dm_buf_init(&b);
    dm_event ev = us_nfp();
    assert_string_equal(encode_json(&b, 2, &ev),
                        "{\"event_id\":\"us-nfp-2020-01\",\"timestamp\":1578663000000,"
                        "\"country\":\"US\",\"event_name\":\"Non-Farm Payrolls\",\"actual\":145,"
                        "\"forecast\":160,\"previous\":null,\"impact\":\"high\","
                        "\"currency_impact\":[\"USD\",\"EUR\"]}");
    ev.n_currency = 0;
    ev.impact = DM_IMPACT_LOW;
    const char *s = encode_json(&b, 2, &ev);
    assert_non_null(strstr(s, "\"impact\":\"low\",\"currency_impact\":[]}"));
    dm_buf_free(&b);
}

static cJSON *reparse(dm_buf *b, dm_encoding enc)
{
    cJSON *root = NULL;
    dm_err e = {0};
    if (dm_doc_parse(b->data, b->len, enc, 1 << 20, &root, &e) != DM_OK)
        fail_msg("encoder output does not parse: %s", e.message);
    return root;
}

static void encoded_models_decode_to_identical_structs(void **state)
{
    (void)state;
    for (int enc = 0; enc < 2; enc++) {
        dm_encoding en = enc ? DM_ENC_MSGPACK : DM_ENC_JSON;
        dm_buf b;
        dm_buf_init(&b);
        dm_enc e;
        dm_err err = {0};

        dm_tick t = eurusd_tick(), t2;
        dm_enc_init(&e, en, &b);
        dm_tick_encode(&e, &t);
        cJSON *root = reparse(&b, en);
        assert_int_equal(dm_tick_decode(root, NOW, &t2, &err), DM_OK);
        assert_memory_equal(&t, &t2, sizeof t);
        cJSON_Delete(root);

        dm_candle c = usdjpy_h1(), c2;
        c.has_volume = false;
        c.volume = 0;
        dm_buf_reset(&b);
        dm_enc_init(&e, en, &b);
        dm_candle_encode(&e, &c);
        root = reparse(&b, en);
        assert_int_equal(dm_candle_decode(root, NOW, &c2, &err), DM_OK);
        assert_memory_equal(&c, &c2, sizeof c);
        cJSON_Delete(root);

        dm_event ev = us_nfp(), ev2;
        strcpy(ev.event_name, "\xc3\x8dndice \"IPC\" y/y");
        dm_buf_reset(&b);
        dm_enc_init(&e, en, &b);
        dm_event_encode(&e, &ev);
        root = reparse(&b, en);
        assert_int_equal(dm_event_decode(root, NOW, &ev2, &err), DM_OK);
        assert_memory_equal(&ev, &ev2, sizeof ev);
        cJSON_Delete(root);
        dm_buf_free(&b);
    }
}

static void writes_a_json_tree_as_json_and_msgpack_alike(void **state)
{
    (void)state;
    cJSON *req = cJSON_Parse("{\"symbol\":\"EUR/USD\",\"limit\":100,\"price\":1.0955,"
                             "\"big\":1e300,\"tags\":[true,false,null,\"x\"],\"cursor\":{}}");
    assert_non_null(req);
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_JSON, &b);
    assert_true(dm_enc_cjson(&e, req));
    assert_string_equal(b.data, "{\"symbol\":\"EUR/USD\",\"limit\":100,\"price\":1.0955,"
                                "\"big\":1e+300,\"tags\":[true,false,null,\"x\"],\"cursor\":{}}");
    dm_buf_reset(&b);
    dm_enc_init(&e, DM_ENC_MSGPACK, &b);
    assert_true(dm_enc_cjson(&e, req));
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, b.data, b.len, NULL), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object_map *m = &u.data.via.map;
    assert_int_equal(m->size, 6);
    assert_int_equal(m->ptr[1].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER); /* whole: an int */
    assert_int_equal(m->ptr[1].val.via.u64, 100);
    assert_int_equal(m->ptr[2].val.type, MSGPACK_OBJECT_FLOAT64);
    assert_true(m->ptr[2].val.via.f64 == 1.0955);
    assert_int_equal(m->ptr[3].val.type, MSGPACK_OBJECT_FLOAT64); /* beyond int64 */
    assert_int_equal(m->ptr[4].val.via.array.size, 4);
    msgpack_unpacked_destroy(&u);
    dm_buf_free(&b);
    cJSON_Delete(req);
}

static void refuses_a_json_tree_deeper_than_the_encoder(void **state)
{
    (void)state;
    char text[2 * (DM_ENC_MAX_DEPTH + 1) + 1];
    for (int i = 0; i <= DM_ENC_MAX_DEPTH; i++) {
        text[i] = '[';
        text[2 * (DM_ENC_MAX_DEPTH + 1) - 1 - i] = ']';
    }
    text[sizeof text - 1] = '\0';
    cJSON *deep = cJSON_Parse(text);
    assert_non_null(deep);
    dm_buf b;
    dm_buf_init(&b);
    dm_enc e;
    dm_enc_init(&e, DM_ENC_MSGPACK, &b);
    assert_false(dm_enc_cjson(&e, deep));
    cJSON_Delete(deep);
    dm_buf_free(&b);
}

static void reads_fields_with_blanks_around_and_nothing_else(void **state)
{
    (void)state;
    double d = 7;
    assert_true(dm_parse_field_double(" 1.09551\t", &d));
    assert_true(d == 1.09551);
    assert_true(dm_parse_field_double("-2e-5", &d));
    assert_true(d == -2e-5);
    d = 7;
    assert_false(dm_parse_field_double("", &d));
    assert_false(dm_parse_field_double("  ", &d));
    assert_false(dm_parse_field_double("1.2x", &d));
    assert_false(dm_parse_field_double("1.2 3", &d));
    assert_false(dm_parse_field_double("nan", &d));
    assert_false(dm_parse_field_double("inf", &d));
    assert_false(dm_parse_field_double("1e999", &d));
    assert_true(d == 7);

    int64_t v = 7;
    assert_true(dm_parse_field_i64(" 5000 ", &v));
    assert_int_equal(v, 5000);
    assert_true(dm_parse_field_i64("-9223372036854775808", &v));
    assert_true(v == INT64_MIN);
    assert_true(dm_parse_field_i64("+9223372036854775807", &v));
    assert_true(v == INT64_MAX);
    v = 7;
    assert_false(dm_parse_field_i64("9223372036854775808", &v));
    assert_false(dm_parse_field_i64("-9223372036854775809", &v));
    assert_false(dm_parse_field_i64("1.5", &v));
    assert_false(dm_parse_field_i64("-", &v));
    assert_false(dm_parse_field_i64("", &v));
    assert_false(dm_parse_field_i64("12ms", &v));
    assert_int_equal(v, 7);
}

static void groups_thousands_for_people(void **state)
{
    (void)state;
    char b[32];
    assert_int_equal(dm_fmt_grouped(b, sizeof b, 0), 1);
    assert_string_equal(b, "0");
    dm_fmt_grouped(b, sizeof b, 999);
    assert_string_equal(b, "999");
    dm_fmt_grouped(b, sizeof b, 52845);
    assert_string_equal(b, "52,845");
    dm_fmt_grouped(b, sizeof b, 1000000);
    assert_string_equal(b, "1,000,000");
    dm_fmt_grouped(b, sizeof b, UINT64_MAX);
    assert_string_equal(b, "18,446,744,073,709,551,615");
    char small[4];
    dm_fmt_grouped(small, sizeof small, 52845); /* cut short, still terminated */
    assert_int_equal(strlen(small), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_nested_maps_and_arrays_as_json),
        cmocka_unit_test(writes_the_same_values_as_msgpack),
        cmocka_unit_test(prints_prices_in_shortest_exact_form),
        cmocka_unit_test(every_double_reads_back_exactly_and_no_longer_than_shortest_g),
        cmocka_unit_test(prints_17_digits_when_fewer_do_not_read_back),
        cmocka_unit_test(reads_decimals_exactly_as_strtod),
        cmocka_unit_test(every_double_reads_back_exactly),
        cmocka_unit_test(writes_non_finite_numbers_as_null),
        cmocka_unit_test(escapes_quotes_backslashes_and_control_characters),
        cmocka_unit_test(writes_empty_strings_and_lists_of_values),
        cmocka_unit_test(grows_the_buffer_for_a_10000_candle_reply),
        cmocka_unit_test(buffer_appends_formatted_text),
        cmocka_unit_test(tick_encoding_uses_contract_field_names),
        cmocka_unit_test(candle_encoding_uses_contract_field_names),
        cmocka_unit_test(event_encoding_uses_contract_field_names),
        cmocka_unit_test(encoded_models_decode_to_identical_structs),
        cmocka_unit_test(writes_a_json_tree_as_json_and_msgpack_alike),
        cmocka_unit_test(refuses_a_json_tree_deeper_than_the_encoder),
        cmocka_unit_test(reads_fields_with_blanks_around_and_nothing_else),
        cmocka_unit_test(groups_thousands_for_people),
    };
    return cmocka_run_group_tests_name("enc", tests, NULL, NULL);
}
