/* Model decoders (worker/codec/models): a payload becomes a validated tick, candle or event
 * whatever its encoding, and a refusal names the field and what was wrong with it. */
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/doc.h"
#include "codec/models.h"

#define T0 1578528000000LL     /* Thursday 2020-01-09 00:00 UTC */
#define MONDAY 1578873600000LL /* Monday 2020-01-13 00:00 UTC */
#define NOW 1579478400000LL    /* 2020-01-20 00:00 UTC */

#define assert_err(e, code, field, ...)                                                     \
    check_err(&(e), code, field, (const char *const[]){__VA_ARGS__, NULL}, __FILE__, __LINE__)

static void check_err(const dm_err *e, dm_code code, const char *field,
                      const char *const *needles, const char *file, int line)
{
    if (e->code != code)
        fail_msg("%s:%d: code %s, want %s (field '%s': %s)", file, line, dm_code_name(e->code),
                 dm_code_name(code), e->field, e->message);
    if (strcmp(e->field, field) != 0)
        fail_msg("%s:%d: field '%s', want '%s' (%s)", file, line, e->field, field, e->message);
    for (; *needles; needles++)
        if (strstr(e->message, *needles) == NULL)
            fail_msg("%s:%d: message \"%s\" does not mention \"%s\"", file, line, e->message,
                     *needles);
}

/* Parses a JSON object whose single quotes stand for double quotes (readable literals). */
static cJSON *doc(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *o = cJSON_Parse(s);
    if (o == NULL)
        fail_msg("test JSON does not parse: %s", s);
    free(s);
    return o;
}

#define TICK_JSON                                                                            \
    "{'symbol':'EUR/USD','timestamp':1578528001234,'bid':1.09551,'ask':1.09563,"             \
    "'spread':0.00012,'volume':12.5,'source':'twelve-data'}"
#define CANDLE_JSON                                                                          \
    "{'symbol':'USD/JPY','timeframe':'1h','timestamp':1578560400000,'open':109.512,"         \
    "'high':109.604,'low':109.487,'close':109.571,'volume':3021,'source':'oanda'}"
#define EVENT_JSON                                                                           \
    "{'event_id':'us-nfp-2020-01','timestamp':1578663000000,'country':'US',"                 \
    "'event_name':'Non-Farm Payrolls','actual':145,'forecast':160,'previous':256,"           \
    "'impact':'high','currency_impact':['USD','EUR','JPY']}"

/* `base` with member `key` replaced by value_json, or removed when value_json is NULL. */
static cJSON *with(const char *base, const char *key, const char *value_json)
{
    cJSON *o = doc(base);
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (value_json) {
        char *s = strdup(value_json);
        for (char *p = s; *p; p++)
            if (*p == '\'')
                *p = '"';
        cJSON *v = cJSON_Parse(s);
        if (v == NULL)
            fail_msg("test value does not parse: %s", s);
        cJSON_AddItemToObject(o, key, v);
        free(s);
    }
    return o;
}

static dm_code tick_with(const char *key, const char *value_json, dm_tick *t, dm_err *e)
{
    cJSON *o = with(TICK_JSON, key, value_json);
    memset(e, 0, sizeof *e);
    dm_code c = dm_tick_decode(o, NOW, t, e);
    cJSON_Delete(o);
    return c;
}

static dm_code candle_with(const char *key, const char *value_json, dm_candle *k, dm_err *e)
{
    cJSON *o = with(CANDLE_JSON, key, value_json);
    memset(e, 0, sizeof *e);
    dm_code c = dm_candle_decode(o, NOW, k, e);
    cJSON_Delete(o);
    return c;
}

static dm_code event_with(const char *key, const char *value_json, dm_event *ev, dm_err *e)
{
    cJSON *o = with(EVENT_JSON, key, value_json);
    memset(e, 0, sizeof *e);
    dm_code c = dm_event_decode(o, NOW, ev, e);
    cJSON_Delete(o);
    return c;
}

/* ---- ticks ----------------------------------------------------------------------- */

static void decodes_a_json_tick(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    assert_int_equal(tick_with("x", NULL, &t, &e), DM_OK);
    assert_string_equal(t.symbol, "EUR/USD");
    assert_int_equal(t.ts, 1578528001234LL);
    assert_true(t.bid == 1.09551 && t.ask == 1.09563 && t.spread == 0.00012);
    assert_true(t.has_volume && t.volume == 12.5);
    assert_string_equal(t.source, "twelve-data");
}

static void decodes_token_form_symbol_to_canonical(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    assert_int_equal(tick_with("symbol", "'EURUSD'", &t, &e), DM_OK);
    assert_string_equal(t.symbol, "EUR/USD");
}

static void treats_null_or_absent_volume_as_unknown(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    assert_int_equal(tick_with("volume", "null", &t, &e), DM_OK);
    assert_false(t.has_volume);
    assert_int_equal(tick_with("volume", NULL, &t, &e), DM_OK);
    assert_false(t.has_volume);
}

static void reports_each_missing_tick_field(void **state)
{
    (void)state;
    static const char *const required[] = {"symbol", "timestamp", "bid", "ask", "spread",
                                           "source"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        dm_tick t;
        dm_err e;
        assert_int_equal(tick_with(required[i], NULL, &t, &e), DM_E_MISSING_FIELD);
        char want[64];
        snprintf(want, sizeof want, "%s is required", required[i]);
        assert_err(e, DM_E_MISSING_FIELD, required[i], want);
        assert_int_equal(tick_with(required[i], "null", &t, &e), DM_E_MISSING_FIELD);
    }
}

static void rejects_json_tick_with_ask_below_bid(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    assert_int_equal(tick_with("ask", "1.09549", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "ask", "1.09549", "below", "1.09551");
}

static void rejects_tick_fields_of_the_wrong_type(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    assert_int_equal(tick_with("bid", "'1.09551'", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "bid", "bid must be a number, got string");
    assert_int_equal(tick_with("symbol", "6", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "symbol", "symbol must be a string, got number");
    assert_int_equal(tick_with("timestamp", "1578528000000.5", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "integer", "1578528000000.5");
    assert_int_equal(tick_with("timestamp", "'2020-01-09T00:00:00Z'", &t, &e),
                     DM_E_INVALID_FIELD); /* payload times are Unix ms, not strings */
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "timestamp");
    assert_int_equal(tick_with("volume", "'12'", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "volume", "volume must be a number");
}

static void rejects_tick_timestamp_in_seconds(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    assert_int_equal(tick_with("timestamp", "1578528001", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1578528001", "milliseconds");
}

static void rejects_oversized_symbol_and_source(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    /* 25 characters: one over DM_SYMBOL_MAX */
    assert_int_equal(tick_with("symbol", "'ABCDEFGHIJKL/MNOPQRSTUVWX'", &t, &e),
                     DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "symbol", "symbol is 25 bytes long", "at most 24");
    char src[DM_SOURCE_MAX + 8];
    snprintf(src, sizeof src, "'%065d'", 7); /* 65 characters */
    assert_int_equal(tick_with("source", src, &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "source", "source is 65 bytes long", "at most 64");
    snprintf(src, sizeof src, "'%064d'", 7); /* 64 is allowed */
    assert_int_equal(tick_with("source", src, &t, &e), DM_OK);
}

static void rejects_badly_shaped_symbol_and_source(void **state)
{
    (void)state;
    dm_tick t;
    dm_err e;
    assert_int_equal(tick_with("symbol", "'eur/usd'", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "symbol", "'eur/usd'");
    assert_int_equal(tick_with("symbol", "'EUR-USD'", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "symbol", "'EUR-USD'");
    assert_int_equal(tick_with("source", "'twelve data'", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "source", "'twelve data'");
    assert_int_equal(tick_with("source", "''", &t, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "source", "source ''");
}

/* ---- candles --------------------------------------------------------------------- */

static void decodes_a_json_candle(void **state)
{
    (void)state;
    dm_candle k;
    dm_err e;
    assert_int_equal(candle_with("x", NULL, &k, &e), DM_OK);
    assert_string_equal(k.symbol, "USD/JPY");
    assert_int_equal(k.tf, DM_TF_1H);
    assert_int_equal(k.ts, 1578560400000LL);
    assert_true(k.open == 109.512 && k.high == 109.604 && k.low == 109.487 && k.close == 109.571);
    assert_true(k.has_volume && k.volume == 3021);
    assert_string_equal(k.source, "oanda");
}

static void rejects_unknown_timeframe(void **state)
{
    (void)state;
    static const char *const bad[] = {"'2h'", "'1H'", "'H1'", "'1mo'", "''"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dm_candle k;
        dm_err e;
        assert_int_equal(candle_with("timeframe", bad[i], &k, &e), DM_E_INVALID_FIELD);
        char want[32];
        snprintf(want, sizeof want, "timeframe %s", bad[i]);
        assert_err(e, DM_E_INVALID_FIELD, "timeframe", want, "unknown", "1m 5m 15m");
    }
    dm_candle k;
    dm_err e;
    assert_int_equal(candle_with("timeframe", "'60minutes'", &k, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timeframe", "timeframe");
    assert_int_equal(candle_with("timeframe", "60", &k, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timeframe", "must be a string");
}

static void rejects_json_candle_with_high_below_low(void **state)
{
    (void)state;
    dm_candle k;
    dm_err e;
    assert_int_equal(candle_with("high", "109.4", &k, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "high", "candle.high 109.4", "candle.low 109.487");
}

static void rejects_json_candle_not_aligned_to_its_timeframe(void **state)
{
    (void)state;
    dm_candle k;
    dm_err e;
    assert_int_equal(candle_with("timestamp", "1578562200000", &k, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1578562200000", "1h");
}

static void accepts_weekly_json_candle_on_monday(void **state)
{
    (void)state;
    cJSON *o = with(CANDLE_JSON, "timeframe", "'1w'");
    cJSON_ReplaceItemInObject(o, "timestamp", cJSON_CreateNumber((double)MONDAY));
    dm_candle k;
    dm_err e = {0};
    assert_int_equal(dm_candle_decode(o, NOW, &k, &e), DM_OK);
    assert_int_equal(k.tf, DM_TF_1W);
    cJSON_ReplaceItemInObject(o, "timestamp", cJSON_CreateNumber((double)T0)); /* Thursday */
    assert_int_equal(dm_candle_decode(o, NOW, &k, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "Monday");
    cJSON_Delete(o);
}

/* ---- events ---------------------------------------------------------------------- */

static void decodes_a_json_event(void **state)
{
    (void)state;
    dm_event ev;
    dm_err e;
    assert_int_equal(event_with("x", NULL, &ev, &e), DM_OK);
    assert_string_equal(ev.event_id, "us-nfp-2020-01");
    assert_int_equal(ev.ts, 1578663000000LL);
    assert_string_equal(ev.country, "US");
    assert_string_equal(ev.event_name, "Non-Farm Payrolls");
    assert_true(ev.has_actual && ev.actual == 145);
    assert_true(ev.has_forecast && ev.forecast == 160);
    assert_true(ev.has_previous && ev.previous == 256);
    assert_int_equal(ev.impact, DM_IMPACT_HIGH);
    assert_int_equal(ev.n_currency, 3);
    assert_string_equal(ev.currency_impact[2], "JPY");
}

static void accepts_event_without_figures_or_currencies(void **state)
{
    (void)state;
    cJSON *o = doc("{'event_id':'ecb-rate-2020-01','timestamp':1579788000000,'country':'EU',"
                   "'event_name':'ECB Main Refinancing Rate','actual':null,'impact':'High'}");
    dm_event ev;
    dm_err e = {0};
    assert_int_equal(dm_event_decode(o, NOW, &ev, &e), DM_OK);
    assert_false(ev.has_actual || ev.has_forecast || ev.has_previous);
    assert_int_equal(ev.n_currency, 0);
    assert_int_equal(ev.impact, DM_IMPACT_HIGH);
    cJSON_Delete(o);
}

static void rejects_bad_country(void **state)
{
    (void)state;
    dm_event ev;
    dm_err e;
    assert_int_equal(event_with("country", "'us'", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "country", "country 'us'", "ISO 3166");
    assert_int_equal(event_with("country", "'U1'", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "country", "'U1'");
    assert_int_equal(event_with("country", "'USA'", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "country", "country is 3 bytes long", "at most 2");
    assert_int_equal(event_with("country", "''", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "country", "country ''");
    assert_int_equal(event_with("country", NULL, &ev, &e), DM_E_MISSING_FIELD);
    assert_err(e, DM_E_MISSING_FIELD, "country", "country is required");
}

static void rejects_bad_impact(void **state)
{
    (void)state;
    dm_event ev;
    dm_err e;
    assert_int_equal(event_with("impact", "'extreme'", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "impact", "impact 'extreme'", "high, medium or low");
    assert_int_equal(event_with("impact", "3", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "impact", "impact must be a string");
    assert_int_equal(event_with("impact", NULL, &ev, &e), DM_E_MISSING_FIELD);
    assert_err(e, DM_E_MISSING_FIELD, "impact", "impact is required");
}

static void rejects_more_than_16_currencies(void **state)
{
    (void)state;
    const char *ccy17 = "['USD','EUR','JPY','GBP','CHF','CAD','AUD','NZD','SEK','NOK','DKK',"
                        "'PLN','CZK','HUF','TRY','ZAR','MXN']";
    dm_event ev;
    dm_err e;
    assert_int_equal(event_with("currency_impact", ccy17, &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "currency_impact", "currency_impact has 17 entries",
               "at most 16");
    const char *ccy16 = "['USD','EUR','JPY','GBP','CHF','CAD','AUD','NZD','SEK','NOK','DKK',"
                        "'PLN','CZK','HUF','TRY','ZAR']";
    assert_int_equal(event_with("currency_impact", ccy16, &ev, &e), DM_OK);
    assert_int_equal(ev.n_currency, 16);
    assert_string_equal(ev.currency_impact[15], "ZAR");
}

static void rejects_currencies_that_are_not_three_upper_case_letters(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"['USD','usd']", "currency_impact[1]"}, {"['USDT']", "currency_impact[0]"},
        {"['EUR','JPY','US']", "currency_impact[2]"}, {"[840]", "currency_impact[0]"},
        {"['']", "currency_impact[0]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dm_event ev;
        dm_err e;
        assert_int_equal(event_with("currency_impact", bad[i][0], &ev, &e), DM_E_INVALID_FIELD);
        assert_err(e, DM_E_INVALID_FIELD, "currency_impact", bad[i][1], "three-letter");
    }
    dm_event ev;
    dm_err e;
    assert_int_equal(event_with("currency_impact", "'USD'", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "currency_impact", "must be an array");
}

static void rejects_oversized_or_empty_event_name(void **state)
{
    (void)state;
    char name[DM_EVENT_NAME_MAX + 8];
    name[0] = '\'';
    memset(name + 1, 'N', DM_EVENT_NAME_MAX + 1);
    strcpy(name + DM_EVENT_NAME_MAX + 2, "'");
    dm_event ev;
    dm_err e;
    assert_int_equal(event_with("event_name", name, &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "event_name", "event_name is 257 bytes long",
               "at most 256");
    strcpy(name + DM_EVENT_NAME_MAX + 1, "'"); /* exactly 256 */
    assert_int_equal(event_with("event_name", name, &ev, &e), DM_OK);
    assert_int_equal(strlen(ev.event_name), DM_EVENT_NAME_MAX);
    assert_int_equal(event_with("event_name", "''", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "event_name", "event_name", "non-empty");
}

static void rejects_invalid_utf8_in_event_name(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Non-Farm \xff Payrolls", "CPI \xc3", "\xc0\xaf" "etc", "\xe6\x97 GDP", "\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *o = doc(EVENT_JSON);
        cJSON_ReplaceItemInObject(o, "event_name", cJSON_CreateString(bad[i]));
        dm_event ev;
        dm_err e = {0};
        if (dm_event_decode(o, NOW, &ev, &e) != DM_E_INVALID_FIELD)
            fail_msg("event_name #%zu with broken UTF-8 accepted", i);
        assert_err(e, DM_E_INVALID_FIELD, "event_name", "event_name", "UTF-8");
        cJSON_Delete(o);
    }
    cJSON *o = doc(EVENT_JSON);
    cJSON_ReplaceItemInObject(o, "event_name", cJSON_CreateString("Non-Farm\tPayrolls"));
    dm_event ev;
    dm_err e = {0};
    assert_int_equal(dm_event_decode(o, NOW, &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "event_name", "control characters");
    cJSON_ReplaceItemInObject(o, "event_name",
                              cJSON_CreateString("\xc3\x8dndice de Precios al Consumidor"));
    assert_int_equal(dm_event_decode(o, NOW, &ev, &e), DM_OK);
    cJSON_Delete(o);
}

static void rejects_bad_event_id_and_figures(void **state)
{
    (void)state;
    dm_event ev;
    dm_err e;
    assert_int_equal(event_with("event_id", "''", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "event_id", "event_id");
    assert_int_equal(event_with("actual", "'145K'", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "actual", "actual must be a number, got string");
    assert_int_equal(event_with("timestamp", "1578663000", &ev, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1578663000", "1971");
}

/* ---- msgpack and JSON agree -------------------------------------------------------- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp;

static void mp_init(mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_str(mp *m, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, s, n);
}

static cJSON *parse_msgpack(mp *m)
{
    cJSON *root = NULL;
    dm_err e = {0};
    if (dm_doc_parse(m->sb.data, m->sb.size, DM_ENC_MSGPACK, 1 << 20, &root, &e) != DM_OK)
        fail_msg("msgpack does not parse: %s", e.message);
    msgpack_sbuffer_destroy(&m->sb);
    return root;
}

static cJSON *parse_json(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *root = NULL;
    dm_err e = {0};
    if (dm_doc_parse(s, strlen(s), DM_ENC_JSON, 1 << 20, &root, &e) != DM_OK)
        fail_msg("JSON does not parse: %s", e.message);
    free(s);
    return root;
}

static void msgpack_and_json_decode_to_the_same_tick(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 7);
    mp_str(&m, "symbol"), mp_str(&m, "EUR/USD");
    mp_str(&m, "timestamp"), msgpack_pack_uint64(&m.pk, 1578528001234ULL);
    mp_str(&m, "bid"), msgpack_pack_double(&m.pk, 1.09551);
    mp_str(&m, "ask"), msgpack_pack_double(&m.pk, 1.09563);
    mp_str(&m, "spread"), msgpack_pack_double(&m.pk, 0.00012);
    mp_str(&m, "volume"), msgpack_pack_double(&m.pk, 12.5);
    mp_str(&m, "source"), mp_str(&m, "twelve-data");
    cJSON *a = parse_msgpack(&m), *b = parse_json(TICK_JSON);
    dm_tick ta, tb;
    dm_err e = {0};
    assert_int_equal(dm_tick_decode(a, NOW, &ta, &e), DM_OK);
    assert_int_equal(dm_tick_decode(b, NOW, &tb, &e), DM_OK);
    assert_memory_equal(&ta, &tb, sizeof ta);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void msgpack_and_json_decode_to_the_same_candle(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 9);
    mp_str(&m, "source"), mp_str(&m, "oanda"); /* member order does not matter */
    mp_str(&m, "symbol"), mp_str(&m, "USDJPY");  /* token form: normalised */
    mp_str(&m, "timeframe"), mp_str(&m, "1h");
    mp_str(&m, "timestamp"), msgpack_pack_int64(&m.pk, 1578560400000LL);
    mp_str(&m, "open"), msgpack_pack_double(&m.pk, 109.512);
    mp_str(&m, "high"), msgpack_pack_double(&m.pk, 109.604);
    mp_str(&m, "low"), msgpack_pack_double(&m.pk, 109.487);
    mp_str(&m, "close"), msgpack_pack_double(&m.pk, 109.571);
    mp_str(&m, "volume"), msgpack_pack_uint16(&m.pk, 3021); /* an integer volume */
    cJSON *a = parse_msgpack(&m), *b = parse_json(CANDLE_JSON);
    dm_candle ka, kb;
    dm_err e = {0};
    assert_int_equal(dm_candle_decode(a, NOW, &ka, &e), DM_OK);
    assert_int_equal(dm_candle_decode(b, NOW, &kb, &e), DM_OK);
    assert_memory_equal(&ka, &kb, sizeof ka);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void msgpack_and_json_decode_to_the_same_event(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 9);
    mp_str(&m, "event_id"), mp_str(&m, "us-nfp-2020-01");
    mp_str(&m, "timestamp"), msgpack_pack_uint64(&m.pk, 1578663000000ULL);
    mp_str(&m, "country"), mp_str(&m, "US");
    mp_str(&m, "event_name"), mp_str(&m, "Non-Farm Payrolls");
    mp_str(&m, "actual"), msgpack_pack_int32(&m.pk, 145);
    mp_str(&m, "forecast"), msgpack_pack_double(&m.pk, 160);
    mp_str(&m, "previous"), msgpack_pack_uint16(&m.pk, 256);
    mp_str(&m, "impact"), mp_str(&m, "high");
    mp_str(&m, "currency_impact"), msgpack_pack_array(&m.pk, 3), mp_str(&m, "USD"),
        mp_str(&m, "EUR"), mp_str(&m, "JPY");
    cJSON *a = parse_msgpack(&m), *b = parse_json(EVENT_JSON);
    dm_event ea, eb;
    dm_err e = {0};
    assert_int_equal(dm_event_decode(a, NOW, &ea, &e), DM_OK);
    assert_int_equal(dm_event_decode(b, NOW, &eb, &e), DM_OK);
    assert_memory_equal(&ea, &eb, sizeof ea);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void msgpack_nil_volume_means_unknown(void **state)
{
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 7);
    mp_str(&m, "symbol"), mp_str(&m, "EUR/USD");
    mp_str(&m, "timestamp"), msgpack_pack_uint64(&m.pk, 1578528001234ULL);
    mp_str(&m, "bid"), msgpack_pack_double(&m.pk, 1.09551);
    mp_str(&m, "ask"), msgpack_pack_double(&m.pk, 1.09563);
    mp_str(&m, "spread"), msgpack_pack_double(&m.pk, 0.00012);
    mp_str(&m, "volume"), msgpack_pack_nil(&m.pk);
    mp_str(&m, "source"), mp_str(&m, "twelve-data");
    cJSON *a = parse_msgpack(&m);
    dm_tick t;
    dm_err e = {0};
    assert_int_equal(dm_tick_decode(a, NOW, &t, &e), DM_OK);
    assert_false(t.has_volume);
    cJSON_Delete(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_a_json_tick),
        cmocka_unit_test(decodes_token_form_symbol_to_canonical),
        cmocka_unit_test(treats_null_or_absent_volume_as_unknown),
        cmocka_unit_test(reports_each_missing_tick_field),
        cmocka_unit_test(rejects_json_tick_with_ask_below_bid),
        cmocka_unit_test(rejects_tick_fields_of_the_wrong_type),
        cmocka_unit_test(rejects_tick_timestamp_in_seconds),
        cmocka_unit_test(rejects_oversized_symbol_and_source),
        cmocka_unit_test(rejects_badly_shaped_symbol_and_source),
        cmocka_unit_test(decodes_a_json_candle),
        cmocka_unit_test(rejects_unknown_timeframe),
        cmocka_unit_test(rejects_json_candle_with_high_below_low),
        cmocka_unit_test(rejects_json_candle_not_aligned_to_its_timeframe),
        cmocka_unit_test(accepts_weekly_json_candle_on_monday),
        cmocka_unit_test(decodes_a_json_event),
        cmocka_unit_test(accepts_event_without_figures_or_currencies),
        cmocka_unit_test(rejects_bad_country),
        cmocka_unit_test(rejects_bad_impact),
        cmocka_unit_test(rejects_more_than_16_currencies),
        cmocka_unit_test(rejects_currencies_that_are_not_three_upper_case_letters),
        cmocka_unit_test(rejects_oversized_or_empty_event_name),
        cmocka_unit_test(rejects_invalid_utf8_in_event_name),
        cmocka_unit_test(rejects_bad_event_id_and_figures),
        cmocka_unit_test(msgpack_and_json_decode_to_the_same_tick),
        cmocka_unit_test(msgpack_and_json_decode_to_the_same_candle),
        cmocka_unit_test(msgpack_and_json_decode_to_the_same_event),
        cmocka_unit_test(msgpack_nil_volume_means_unknown),
    };
    return cmocka_run_group_tests_name("codec_models", tests, NULL, NULL);
}
