/* One contract: dmctl refuses exactly what the worker refuses. Each symbol/timeframe pair
 * goes through dmctl's parsers (cli/model.c) and through the worker's own decoding of a
 * candle payload (codec/models.c, the path every published candle takes); the verdicts
 * and the normalised symbol must agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../cli/model.h"
#include "codec/models.h"

#define MONDAY 1609718400000LL /* 2021-01-04 00:00 UTC: aligned for every timeframe */

typedef struct {
    const char *symbol, *timeframe;
} pair;

static const pair PAIRS[] = {
    {"EUR/USD", "1h"},  {"EURUSD", "1h"},   {"eurusd", "1h"},    {"eur/usd", "1h"},
    {"XAU/USD", "1h"},  {"XAUUSD", "1h"},   {"BTCUSDT", "1h"},   {"BTC/USDT", "1h"},
    {"US30", "1h"},     {"GER40/EUR", "1h"}, {"EUR/USD/JPY", "1h"}, {"/USD", "1h"},
    {"EUR/", "1h"},     {"E/U", "1h"},      {"EUR USD", "1h"},   {"EUR.USD", "1h"},
    {"EUR*USD", "1h"},  {"EURUS", "1h"},    {"", "1h"},          {"ABCDEFGHIJKL/MNOPQRSTUVW", "1h"},
    {"ABCDEFGHIJKL/MNOPQRSTUVWX", "1h"}, {"USDJPY", "1h"}, {"GBP/JPY", "1h"}, {"EUR-USD", "1h"},
    {"EUR/USD", "1m"},  {"EUR/USD", "5m"},  {"EUR/USD", "15m"},  {"EUR/USD", "30m"},
    {"EUR/USD", "4h"},  {"EUR/USD", "1d"},  {"EUR/USD", "1w"},   {"EUR/USD", "2h"},
    {"EUR/USD", "30s"}, {"EUR/USD", "1M"},  {"EUR/USD", "1H"},   {"EUR/USD", "60m"},
    {"EUR/USD", ""},    {"EUR/USD", "1h "}, {"XAUUSD", "4h"},    {"eurusd", "1d"},
};

static bool worker_accepts(const pair *p, char *normalised, size_t cap)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"timestamp\":%lld,\"open\":1.1,\"high\":1.2,"
             "\"low\":1.0,\"close\":1.15,\"volume\":1,\"source\":\"csv\"}",
             p->symbol, p->timeframe, MONDAY);
    cJSON *obj = cJSON_Parse(json);
    assert_non_null(obj);
    dm_candle c;
    dm_err err = {0};
    bool ok = dm_candle_decode(obj, MONDAY + 3600000LL, &c, &err) == DM_OK;
    cJSON_Delete(obj);
    if (ok)
        snprintf(normalised, cap, "%s", c.symbol);
    return ok;
}

static bool dmctl_accepts(const pair *p, char *normalised, size_t cap)
{
    symbol sym;
    int64_t period;
    bool ok = symbol_parse(p->symbol, &sym) && timeframe_parse(p->timeframe, &period);
    if (ok)
        snprintf(normalised, cap, "%s", sym.name);
    return ok;
}

static void dmctl_and_worker_agree_on_every_pair(void **state)
{
    (void)state;
    size_t n = sizeof PAIRS / sizeof *PAIRS, accepted = 0;
    for (size_t i = 0; i < n; i++) {
        char w[64] = "", d[64] = "";
        bool wok = worker_accepts(&PAIRS[i], w, sizeof w), dok = dmctl_accepts(&PAIRS[i], d, sizeof d);
        if (wok != dok || strcmp(w, d) != 0)
            fail_msg("'%s' '%s': worker %s (%s), dmctl %s (%s)", PAIRS[i].symbol, PAIRS[i].timeframe,
                     wok ? "accepts" : "refuses", w, dok ? "accepts" : "refuses", d);
        accepted += wok;
    }
    /* The table must hold both kinds, or agreement proves nothing. */
    assert_true(n >= 30);
    assert_true(accepted >= 10 && accepted <= n - 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dmctl_and_worker_agree_on_every_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
