/* Model validation (worker/model): what a market could never produce is refused, and the
 * error names the field and says what was wrong with it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"

#define T0 1578528000000LL     /* Thursday 2020-01-09 00:00 UTC */
#define MONDAY 1578873600000LL /* Monday 2020-01-13 00:00 UTC */
#define HOUR_MS 3600000LL
#define NOW 1579478400000LL /* 2020-01-20 00:00 UTC: "now" for every check below */

/* The error has this code and field, and its message mentions every needle. */
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

static dm_tick eurusd_tick(void)
{
    dm_tick t;
    memset(&t, 0, sizeof t);
    strcpy(t.symbol, "EUR/USD");
    t.ts = T0 + 1234;
    t.bid = 1.11032;
    t.ask = 1.11047;
    t.spread = 0.00015;
    t.volume = 12.5;
    t.has_volume = true;
    strcpy(t.source, "twelve-data");
    return t;
}

static dm_candle eurusd_h1(void)
{
    dm_candle c;
    memset(&c, 0, sizeof c);
    strcpy(c.symbol, "EUR/USD");
    c.tf = DM_TF_1H;
    c.ts = T0 + 9 * HOUR_MS;
    c.open = 1.1105;
    c.high = 1.1121;
    c.low = 1.1098;
    c.close = 1.1112;
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
    e.ts = 1578663000000LL; /* 2020-01-10 13:30 UTC */
    strcpy(e.country, "US");
    strcpy(e.event_name, "Non-Farm Payrolls");
    e.actual = 145;
    e.has_actual = true;
    e.forecast = 160;
    e.has_forecast = true;
    e.impact = DM_IMPACT_HIGH;
    strcpy(e.currency_impact[0], "USD");
    e.n_currency = 1;
    return e;
}

/* ---- ticks ---------------------------------------------------------------------- */

static void accepts_a_real_eurusd_tick(void **state)
{
    (void)state;
    dm_tick t = eurusd_tick();
    dm_err e = {0};
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_OK);
    assert_int_equal(e.code, DM_OK);
}

static void accepts_a_usdjpy_tick_with_zero_spread(void **state)
{
    (void)state;
    dm_tick t = eurusd_tick();
    strcpy(t.symbol, "USD/JPY");
    t.bid = t.ask = 109.512;
    t.spread = 0;
    t.has_volume = false;
    dm_err e = {0};
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_OK);
}

static void rejects_ask_below_bid(void **state)
{
    (void)state;
    dm_tick t = eurusd_tick();
    t.bid = 1.11047;
    t.ask = 1.11032;
    dm_err e = {0};
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "ask", "ask", "1.11032", "below", "bid", "1.11047");
}

static void rejects_non_positive_tick_prices(void **state)
{
    (void)state;
    dm_err e = {0};
    dm_tick t = eurusd_tick();
    t.bid = 0;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "bid", "bid 0", "positive");

    t = eurusd_tick();
    t.ask = -1.11047;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "ask", "ask -1.11047", "positive");

    t = eurusd_tick();
    t.bid = -109.5;
    t.ask = -109.4;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "bid", "bid -109.5", "positive");
}

static void rejects_nan_and_infinite_tick_numbers(void **state)
{
    (void)state;
    dm_err e = {0};
    dm_tick t = eurusd_tick();
    t.bid = NAN;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "bid", "bid", "finite");

    t = eurusd_tick();
    t.ask = INFINITY;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "ask", "ask", "finite");

    t = eurusd_tick();
    t.ask = -INFINITY;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "ask", "ask", "finite");

    t = eurusd_tick();
    t.spread = NAN;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "spread", "spread", "finite");

    t = eurusd_tick();
    t.volume = INFINITY;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "volume", "volume", "finite");
}

static void rejects_negative_spread(void **state)
{
    (void)state;
    dm_tick t = eurusd_tick();
    t.spread = -0.00015;
    dm_err e = {0};
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "spread", "spread -0.00015", ">= 0");
}

static void rejects_negative_volume_only_when_present(void **state)
{
    (void)state;
    dm_tick t = eurusd_tick();
    t.volume = -3;
    dm_err e = {0};
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "volume", "volume -3");

    t.has_volume = false; /* an absent volume's slot is not looked at */
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_OK);
}

static void rejects_tick_timestamp_in_seconds(void **state)
{
    (void)state;
    dm_tick t = eurusd_tick();
    t.ts = T0 / 1000; /* 1578528000: the classic seconds-for-milliseconds slip */
    dm_err e = {0};
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1578528000 ", "1971", "milliseconds");

    t.ts = 0;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    t.ts = -T0;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "-1578528000000");
}

static void rejects_tick_more_than_a_day_ahead(void **state)
{
    (void)state;
    dm_tick t = eurusd_tick();
    dm_err e = {0};
    t.ts = NOW + DM_DAY_MS; /* clock skew of a day is tolerated */
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_OK);
    t.ts = NOW + DM_DAY_MS + 1;
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1579564800001", "future");
    t.ts = T0 * 1000; /* microseconds: year 52000 */
    assert_int_equal(dm_tick_validate(&t, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1578528000000000", "future");
}

/* ---- candles -------------------------------------------------------------------- */

static void accepts_a_real_eurusd_hourly_candle(void **state)
{
    (void)state;
    dm_candle c = eurusd_h1();
    dm_err e = {0};
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_OK);
}

static void accepts_a_flat_candle(void **state)
{
    (void)state;
    dm_candle c = eurusd_h1();
    c.open = c.high = c.low = c.close = 109.52; /* USDJPY, nothing traded */
    c.volume = 0;
    dm_err e = {0};
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_OK);
}

static void rejects_high_below_low(void **state)
{
    (void)state;
    dm_candle c = eurusd_h1();
    c.high = 1.1098;
    c.low = 1.1121;
    c.open = c.close = 1.1110;
    dm_err e = {0};
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "high", "candle.high 1.1098", "below", "candle.low 1.1121");
}

static void rejects_high_below_open_or_close(void **state)
{
    (void)state;
    dm_err e = {0};
    dm_candle c = eurusd_h1();
    c.open = 1.1125;
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "high", "candle.high 1.1121", "candle.open 1.1125");

    c = eurusd_h1();
    c.close = 1.11215;
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "high", "candle.high 1.1121", "candle.close 1.11215");
}

static void rejects_low_above_open_or_close(void **state)
{
    (void)state;
    dm_err e = {0};
    dm_candle c = eurusd_h1();
    c.open = 1.1097;
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "low", "candle.low 1.1098", "above", "candle.open 1.1097");

    c = eurusd_h1();
    c.close = 1.10979;
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "low", "candle.low 1.1098", "candle.close 1.10979");
}

static void rejects_non_positive_candle_prices(void **state)
{
    (void)state;
    static const char *const fields[] = {"open", "high", "low", "close"};
    for (int i = 0; i < 4; i++) {
        for (int sign = 0; sign < 2; sign++) {
            dm_candle c = eurusd_h1();
            double *slot[] = {&c.open, &c.high, &c.low, &c.close};
            *slot[i] = sign ? -1.1105 : 0;
            dm_err e = {0};
            assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
            char want[32];
            snprintf(want, sizeof want, "%s %s", fields[i], sign ? "-1.1105" : "0");
            assert_err(e, DM_E_INVALID_FIELD, fields[i], want, "positive");
        }
    }
}

static void rejects_nan_and_infinite_candle_numbers(void **state)
{
    (void)state;
    static const char *const fields[] = {"open", "high", "low", "close"};
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 3; k++) {
            dm_candle c = eurusd_h1();
            double *slot[] = {&c.open, &c.high, &c.low, &c.close};
            *slot[i] = bad[k];
            dm_err e = {0};
            assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
            assert_err(e, DM_E_INVALID_FIELD, fields[i], fields[i], "finite");
        }
    }
    dm_candle c = eurusd_h1();
    c.volume = NAN;
    dm_err e = {0};
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "volume", "volume");
}

static void accepts_aligned_open_times_for_every_timeframe(void **state)
{
    (void)state;
    for (dm_tf tf = DM_TF_1M; tf < DM_TF_COUNT; tf++) {
        dm_candle c = eurusd_h1();
        c.tf = tf;
        /* 2020-01-09 00:00 starts a minute, hour, 4 hours and a day; weeks start Mondays */
        c.ts = tf == DM_TF_1W ? MONDAY : T0;
        dm_err e = {0};
        if (dm_candle_validate(&c, NOW, &e) != DM_OK)
            fail_msg("%s at %lld: %s", dm_tf_name(tf), (long long)c.ts, e.message);
        c.ts -= 3 * dm_tf_ms(tf);
        if (dm_candle_validate(&c, NOW, &e) != DM_OK)
            fail_msg("%s at %lld: %s", dm_tf_name(tf), (long long)c.ts, e.message);
    }
}

static void rejects_misaligned_open_times_for_1m_to_1d(void **state)
{
    (void)state;
    for (dm_tf tf = DM_TF_1M; tf <= DM_TF_1D; tf++) {
        const int64_t offsets[] = {1, 1000, dm_tf_ms(tf) / 2, dm_tf_ms(tf) - 1};
        for (size_t k = 0; k < sizeof offsets / sizeof *offsets; k++) {
            dm_candle c = eurusd_h1();
            c.tf = tf;
            c.ts = T0 + offsets[k];
            dm_err e = {0};
            if (dm_candle_validate(&c, NOW, &e) != DM_E_INVALID_FIELD)
                fail_msg("%s candle at %lld was accepted", dm_tf_name(tf), (long long)c.ts);
            char ts[32], tfname[16];
            snprintf(ts, sizeof ts, "%lld", (long long)c.ts);
            snprintf(tfname, sizeof tfname, "%s timeframe", dm_tf_name(tf));
            assert_err(e, DM_E_INVALID_FIELD, "timestamp", ts, "not aligned", tfname);
        }
    }
}

static void rejects_weekly_candle_not_opening_monday_utc(void **state)
{
    (void)state;
    /* Thursday 2020-01-09 is a whole number of weeks after the epoch (a Thursday), so a
     * naive "ts % 7 days" check would accept it; then Sunday and Monday 01:00. */
    const int64_t bad[] = {T0, MONDAY - DM_DAY_MS, MONDAY + HOUR_MS};
    assert_int_equal(T0 % (7 * DM_DAY_MS), 0);
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        dm_candle c = eurusd_h1();
        c.tf = DM_TF_1W;
        c.ts = bad[k];
        dm_err e = {0};
        if (dm_candle_validate(&c, NOW, &e) != DM_E_INVALID_FIELD)
            fail_msg("weekly candle at %lld was accepted", (long long)c.ts);
        char ts[32];
        snprintf(ts, sizeof ts, "%lld", (long long)c.ts);
        assert_err(e, DM_E_INVALID_FIELD, "timestamp", ts, "1w", "Monday 00:00 UTC");
    }
}

static void accepts_weekly_candle_opening_monday_utc(void **state)
{
    (void)state;
    dm_candle c = eurusd_h1();
    c.tf = DM_TF_1W;
    dm_err e = {0};
    const int64_t mondays[] = {MONDAY, MONDAY - 7 * DM_DAY_MS, MONDAY - 52 * 7 * DM_DAY_MS,
                               345600000LL /* 1970-01-05 */ + 7 * DM_DAY_MS * 53};
    for (size_t k = 0; k < sizeof mondays / sizeof *mondays; k++) {
        c.ts = mondays[k];
        if (dm_candle_validate(&c, NOW, &e) != DM_OK)
            fail_msg("Monday %lld refused: %s", (long long)c.ts, e.message);
    }
}

static void rejects_candle_timestamp_in_seconds_or_far_future(void **state)
{
    (void)state;
    dm_candle c = eurusd_h1();
    c.tf = DM_TF_1D;
    c.ts = T0 / 1000;
    dm_err e = {0};
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1578528000", "1971");
    c.ts = NOW + 2 * DM_DAY_MS;
    assert_int_equal(dm_candle_validate(&c, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1579651200000", "future");
}

/* ---- timeframes, impacts, symbols, strings ------------------------------------- */

static void timeframe_names_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {"1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"};
    static const int64_t ms[] = {60000, 300000, 900000, 1800000, 3600000, 14400000, 86400000,
                                 604800000};
    for (int i = 0; i < DM_TF_COUNT; i++) {
        dm_tf tf = DM_TF_COUNT;
        assert_true(dm_tf_parse(names[i], &tf));
        assert_int_equal(tf, i);
        assert_string_equal(dm_tf_name(tf), names[i]);
        assert_int_equal(dm_tf_ms(tf), ms[i]);
    }
}

static void rejects_unknown_timeframe_names(void **state)
{
    (void)state;
    static const char *const bad[] = {"2h", "1H", "1M", "", "60", "1mo", "1h ", "h1", "1w1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dm_tf tf = DM_TF_1H;
        if (dm_tf_parse(bad[i], &tf))
            fail_msg("timeframe '%s' accepted", bad[i]);
        assert_int_equal(tf, DM_TF_1H); /* untouched */
    }
    assert_string_equal(dm_tf_name(DM_TF_COUNT), "?");
}

static void parses_impact_case_insensitively(void **state)
{
    (void)state;
    dm_impact i = DM_IMPACT_LOW;
    assert_true(dm_impact_parse("high", &i));
    assert_int_equal(i, DM_IMPACT_HIGH);
    assert_true(dm_impact_parse("Medium", &i));
    assert_int_equal(i, DM_IMPACT_MEDIUM);
    assert_true(dm_impact_parse("LOW", &i));
    assert_int_equal(i, DM_IMPACT_LOW);
    assert_false(dm_impact_parse("extreme", &i));
    assert_false(dm_impact_parse("", &i));
    assert_false(dm_impact_parse("hi", &i));
    assert_string_equal(dm_impact_name(DM_IMPACT_MEDIUM), "medium");
}

static void normalizes_symbol_token_to_canonical_form(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"EURUSD", "EUR/USD", "EURUSD"},   {"EUR/USD", "EUR/USD", "EURUSD"},
        {"USDJPY", "USD/JPY", "USDJPY"},   {"BTC/USDT", "BTC/USDT", "BTCUSDT"},
        {"XAU/USD", "XAU/USD", "XAUUSD"},  {"US30/USD", "US30/USD", "US30USD"},
        {"DE40/EUR", "DE40/EUR", "DE40EUR"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[DM_SYMBOL_MAX + 1], token[DM_TOKEN_MAX + 1];
        dm_err e = {0};
        if (dm_symbol_normalize(cases[i][0], out, token, "symbol", &e) != DM_OK)
            fail_msg("'%s' refused: %s", cases[i][0], e.message);
        assert_string_equal(out, cases[i][1]);
        assert_string_equal(token, cases[i][2]);
    }
}

static void accepts_symbol_of_exactly_24_characters(void **state)
{
    (void)state;
    char out[DM_SYMBOL_MAX + 1], token[DM_TOKEN_MAX + 1];
    dm_err e = {0};
    const char *s = "ABCDEFGHIJK/MNOPQRSTUVWX"; /* 11 + 1 + 12 */
    assert_int_equal(strlen(s), DM_SYMBOL_MAX);
    assert_int_equal(dm_symbol_normalize(s, out, token, "symbol", &e), DM_OK);
    assert_string_equal(out, s);
    assert_string_equal(token, "ABCDEFGHIJKMNOPQRSTUVWX");
}

static void rejects_badly_shaped_symbols(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "eur/usd", "EUR-USD", "EUR USD", "EUR/USD/JPY", "/USD", "EUR/", "EURUSDX", "EURUS",
        "",        "E/",      "EUR//USD", "EUR/usd",    "EURUS\xc3\x89", "ABCDEFGHIJKL/MNOPQRSTUVWX",
        "EUR_USD", "eurusd",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[DM_SYMBOL_MAX + 1], token[DM_TOKEN_MAX + 1];
        dm_err e = {0};
        if (dm_symbol_normalize(bad[i], out, token, "symbol", &e) != DM_E_INVALID_FIELD)
            fail_msg("symbol '%s' accepted", bad[i]);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_err(e, DM_E_INVALID_FIELD, "symbol", quoted, "EUR/USD");
    }
}

static void symbol_errors_name_the_field_they_were_given(void **state)
{
    (void)state;
    char out[DM_SYMBOL_MAX + 1], token[DM_TOKEN_MAX + 1];
    dm_err e = {0};
    assert_int_equal(dm_symbol_normalize("EUR.USD", out, token, "pair", &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "pair", "pair 'EUR.USD'");
}

static void recognises_countries_currencies_and_sources(void **state)
{
    (void)state;
    assert_true(dm_is_country("US"));
    assert_true(dm_is_country("EU"));
    assert_false(dm_is_country("us"));
    assert_false(dm_is_country("USA"));
    assert_false(dm_is_country("U"));
    assert_false(dm_is_country(""));
    assert_true(dm_is_currency("USD"));
    assert_true(dm_is_currency("JPY"));
    assert_false(dm_is_currency("usd"));
    assert_false(dm_is_currency("US"));
    assert_false(dm_is_currency("USDT"));
    assert_false(dm_is_currency("U$D"));
    assert_true(dm_is_source("twelve-data"));
    assert_true(dm_is_source("oanda"));
    assert_true(dm_is_source("fxcm:v2.1_live"));
    assert_false(dm_is_source(""));
    assert_false(dm_is_source("twelve data"));
    assert_false(dm_is_source("feed/1"));
    char longest[DM_SOURCE_MAX + 2];
    memset(longest, 'a', DM_SOURCE_MAX);
    longest[DM_SOURCE_MAX] = '\0';
    assert_true(dm_is_source(longest));
    longest[DM_SOURCE_MAX] = 'a';
    longest[DM_SOURCE_MAX + 1] = '\0';
    assert_false(dm_is_source(longest));
}

static void text_accepts_utf8_and_rejects_broken_bytes_and_controls(void **state)
{
    (void)state;
    assert_true(dm_is_text("Non-Farm Payrolls", 256));
    assert_true(dm_is_text("\xc3\x8dndice de Precios al Consumidor", 256)); /* Índice */
    assert_true(dm_is_text("\xe6\x97\xa5\xe6\x9c\xac GDP", 256));           /* 日本 GDP */
    assert_true(dm_is_text("\xf0\x9f\x93\x88 chart", 256));                 /* U+1F4C8 */
    assert_false(dm_is_text("Non-Farm \xff Payrolls", 256));
    assert_false(dm_is_text("CPI \xc3", 256));            /* truncated at the end */
    assert_false(dm_is_text("CPI \xe6\x97 y/y", 256));     /* truncated in the middle */
    assert_false(dm_is_text("\xc0\xaf", 256));            /* overlong '/' */
    assert_false(dm_is_text("\x80 stray continuation", 256));
    assert_false(dm_is_text("\xf5\x80\x80\x80", 256));    /* beyond U+10FFFF */
    assert_false(dm_is_text("tab\there", 256));
    assert_false(dm_is_text("line\nbreak", 256));
    assert_false(dm_is_text("del\x7f", 256));
    assert_true(dm_is_text("12345", 5));
    assert_false(dm_is_text("123456", 5));
    assert_false(dm_is_text("1234\xc3\x89", 5)); /* 6 bytes: the limit counts bytes */
}

/* ---- events --------------------------------------------------------------------- */

static void accepts_a_real_event_and_one_scheduled_next_year(void **state)
{
    (void)state;
    dm_event ev = us_nfp();
    dm_err e = {0};
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_OK);
    ev.ts = NOW + 400 * DM_DAY_MS; /* calendars look ahead */
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_OK);
}

static void rejects_event_beyond_two_years_or_in_seconds(void **state)
{
    (void)state;
    dm_event ev = us_nfp();
    dm_err e = {0};
    ev.ts = NOW + DM_EVENT_AHEAD_MS + 1;
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "future");
    ev.ts = 1578663000;
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "timestamp", "1578663000", "1971");
}

static void rejects_nan_event_figures_only_when_present(void **state)
{
    (void)state;
    dm_event ev = us_nfp();
    dm_err e = {0};
    ev.actual = NAN;
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "actual", "actual", "finite");
    ev = us_nfp();
    ev.forecast = INFINITY;
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "forecast", "forecast", "finite");
    ev = us_nfp();
    ev.previous = -INFINITY;
    ev.has_previous = true;
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_E_INVALID_FIELD);
    assert_err(e, DM_E_INVALID_FIELD, "previous", "previous", "finite");
    ev.has_previous = false; /* not reported: its slot is not looked at */
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_OK);
    ev.actual = -0.3; /* figures may be negative (a GDP contraction) */
    assert_int_equal(dm_event_validate(&ev, NOW, &e), DM_OK);
}

static void error_codes_map_to_contract_names_and_statuses(void **state)
{
    (void)state;
    static const struct {
        dm_code code;
        const char *name;
        int status;
    } want[] = {
        {DM_OK, "ok", 200},
        {DM_E_INVALID_JSON, "invalid_json", 400},
        {DM_E_INVALID_MSGPACK, "invalid_msgpack", 400},
        {DM_E_INVALID_PROTOBUF, "invalid_protobuf", 400},
        {DM_E_MISSING_FIELD, "missing_field", 400},
        {DM_E_INVALID_FIELD, "invalid_field", 400},
        {DM_E_TOO_LARGE, "too_large", 413},
        {DM_E_NOT_FOUND, "not_found", 404},
        {DM_E_UNAVAILABLE, "unavailable", 503},
        {DM_E_INTERNAL, "internal", 500},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_string_equal(dm_code_name(want[i].code), want[i].name);
        assert_int_equal(dm_code_status(want[i].code), want[i].status);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_a_real_eurusd_tick),
        cmocka_unit_test(accepts_a_usdjpy_tick_with_zero_spread),
        cmocka_unit_test(rejects_ask_below_bid),
        cmocka_unit_test(rejects_non_positive_tick_prices),
        cmocka_unit_test(rejects_nan_and_infinite_tick_numbers),
        cmocka_unit_test(rejects_negative_spread),
        cmocka_unit_test(rejects_negative_volume_only_when_present),
        cmocka_unit_test(rejects_tick_timestamp_in_seconds),
        cmocka_unit_test(rejects_tick_more_than_a_day_ahead),
        cmocka_unit_test(accepts_a_real_eurusd_hourly_candle),
        cmocka_unit_test(accepts_a_flat_candle),
        cmocka_unit_test(rejects_high_below_low),
        cmocka_unit_test(rejects_high_below_open_or_close),
        cmocka_unit_test(rejects_low_above_open_or_close),
        cmocka_unit_test(rejects_non_positive_candle_prices),
        cmocka_unit_test(rejects_nan_and_infinite_candle_numbers),
        cmocka_unit_test(accepts_aligned_open_times_for_every_timeframe),
        cmocka_unit_test(rejects_misaligned_open_times_for_1m_to_1d),
        cmocka_unit_test(rejects_weekly_candle_not_opening_monday_utc),
        cmocka_unit_test(accepts_weekly_candle_opening_monday_utc),
        cmocka_unit_test(rejects_candle_timestamp_in_seconds_or_far_future),
        cmocka_unit_test(timeframe_names_round_trip),
        cmocka_unit_test(rejects_unknown_timeframe_names),
        cmocka_unit_test(parses_impact_case_insensitively),
        cmocka_unit_test(normalizes_symbol_token_to_canonical_form),
        cmocka_unit_test(accepts_symbol_of_exactly_24_characters),
        cmocka_unit_test(rejects_badly_shaped_symbols),
        cmocka_unit_test(symbol_errors_name_the_field_they_were_given),
        cmocka_unit_test(recognises_countries_currencies_and_sources),
        cmocka_unit_test(text_accepts_utf8_and_rejects_broken_bytes_and_controls),
        cmocka_unit_test(accepts_a_real_event_and_one_scheduled_next_year),
        cmocka_unit_test(rejects_event_beyond_two_years_or_in_seconds),
        cmocka_unit_test(rejects_nan_event_figures_only_when_present),
        cmocka_unit_test(error_codes_map_to_contract_names_and_statuses),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
