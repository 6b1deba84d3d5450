#include "models.h"

#include <string.h>

static dm_code get_symbol(const cJSON *obj, char *symbol, dm_err *err)
{
    char raw[DM_SYMBOL_MAX + 1], token[DM_TOKEN_MAX + 1];
    dm_code c = dm_get_str(obj, "symbol", raw, sizeof raw, true, NULL, err);
    if (c)
        return c;
    return dm_symbol_normalize(raw, symbol, token, "symbol", err);
}

static dm_code get_source(const cJSON *obj, char *source, dm_err *err)
{
    dm_code c = dm_get_str(obj, "source", source, DM_SOURCE_MAX + 1, true, NULL, err);
    if (c)
        return c;
    if (!dm_is_source(source))
        return dm_fail(err, DM_E_INVALID_FIELD, "source",
                       "source '%.64s' may hold only letters, digits and . _ - :", source);
    return DM_OK;
}

dm_code dm_tick_decode(const cJSON *obj, int64_t now_ms, dm_tick *t, dm_err *err)
{
    memset(t, 0, sizeof *t);
    dm_code c;
    if ((c = get_symbol(obj, t->symbol, err)) ||
        (c = dm_get_int(obj, "timestamp", &t->ts, INT64_MIN, INT64_MAX, true, NULL, err)) ||
        (c = dm_get_num(obj, "bid", &t->bid, true, NULL, err)) ||
        (c = dm_get_num(obj, "ask", &t->ask, true, NULL, err)) ||
        (c = dm_get_num(obj, "spread", &t->spread, true, NULL, err)) ||
        (c = dm_get_num(obj, "volume", &t->volume, false, &t->has_volume, err)) ||
        (c = get_source(obj, t->source, err)))
        return c;
    return dm_tick_validate(t, now_ms, err);
}

dm_code dm_candle_decode(const cJSON *obj, int64_t now_ms, dm_candle *k, dm_err *err)
{
    memset(k, 0, sizeof *k);
    char tf[8];
    dm_code c;
    if ((c = get_symbol(obj, k->symbol, err)) ||
        (c = dm_get_str(obj, "timeframe", tf, sizeof tf, true, NULL, err)))
        return c;
    if (!dm_tf_parse(tf, &k->tf))
        return dm_fail(err, DM_E_INVALID_FIELD, "timeframe",
                       "timeframe '%s' is unknown (1m 5m 15m 30m 1h 4h 1d 1w)", tf);
    if ((c = dm_get_int(obj, "timestamp", &k->ts, INT64_MIN, INT64_MAX, true, NULL, err)) ||
        (c = dm_get_num(obj, "open", &k->open, true, NULL, err)) ||
        (c = dm_get_num(obj, "high", &k->high, true, NULL, err)) ||
        (c = dm_get_num(obj, "low", &k->low, true, NULL, err)) ||
        (c = dm_get_num(obj, "close", &k->close, true, NULL, err)) ||
        (c = dm_get_num(obj, "volume", &k->volume, false, &k->has_volume, err)) ||
        (c = get_source(obj, k->source, err)))
        return c;
    return dm_candle_validate(k, now_ms, err);
}

static dm_code get_currencies(const cJSON *obj, dm_event *ev, dm_err *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "currency_impact");
    if (arr == NULL || cJSON_IsNull(arr))
        return DM_OK;
    if (!cJSON_IsArray(arr))
        return dm_fail(err, DM_E_INVALID_FIELD, "currency_impact",
                       "currency_impact must be an array of currency codes like [\"USD\"]");
    int n = cJSON_GetArraySize(arr);
    if (n > DM_CURRENCIES_MAX)
        return dm_fail(err, DM_E_INVALID_FIELD, "currency_impact",
                       "currency_impact has %d entries, at most %d allowed", n, DM_CURRENCIES_MAX);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || !dm_is_currency(it->valuestring))
            return dm_fail(err, DM_E_INVALID_FIELD, "currency_impact",
                           "currency_impact[%d] must be a three-letter upper-case currency code",
                           ev->n_currency);
        memcpy(ev->currency_impact[ev->n_currency++], it->valuestring, 4);
    }
    return DM_OK;
}

dm_code dm_event_decode(const cJSON *obj, int64_t now_ms, dm_event *ev, dm_err *err)
{
    memset(ev, 0, sizeof *ev);
    char impact[16];
    dm_code c;
    if ((c = dm_get_str(obj, "event_id", ev->event_id, sizeof ev->event_id, true, NULL, err)))
        return c;
    if (!ev->event_id[0] || !dm_is_text(ev->event_id, DM_EVENT_ID_MAX))
        return dm_fail(err, DM_E_INVALID_FIELD, "event_id", "event_id must be non-empty printable text");
    if ((c = dm_get_int(obj, "timestamp", &ev->ts, INT64_MIN, INT64_MAX, true, NULL, err)) ||
        (c = dm_get_str(obj, "country", ev->country, sizeof ev->country, true, NULL, err)))
        return c;
    if (!dm_is_country(ev->country))
        return dm_fail(err, DM_E_INVALID_FIELD, "country",
                       "country '%s' must be an ISO 3166 alpha-2 code (EU for the euro area)", ev->country);
    if ((c = dm_get_str(obj, "event_name", ev->event_name, sizeof ev->event_name, true, NULL, err)))
        return c;
    if (!ev->event_name[0] || !dm_is_text(ev->event_name, DM_EVENT_NAME_MAX))
        return dm_fail(err, DM_E_INVALID_FIELD, "event_name",
                       "event_name must be non-empty UTF-8 text without control characters");
    if ((c = dm_get_num(obj, "actual", &ev->actual, false, &ev->has_actual, err)) ||
        (c = dm_get_num(obj, "forecast", &ev->forecast, false, &ev->has_forecast, err)) ||
        (c = dm_get_num(obj, "previous", &ev->previous, false, &ev->has_previous, err)) ||
        (c = dm_get_str(obj, "impact", impact, sizeof impact, true, NULL, err)))
        return c;
    if (!dm_impact_parse(impact, &ev->impact))
        return dm_fail(err, DM_E_INVALID_FIELD, "impact", "impact '%s' must be high, medium or low", impact);
    if ((c = get_currencies(obj, ev, err)))
        return c;
    return dm_event_validate(ev, now_ms, err);
}

void dm_tick_encode(dm_enc *e, const dm_tick *t)
{
    dm_enc_map(e, 7);
    dm_enc_key(e, "symbol"); dm_enc_str(e, t->symbol);
    dm_enc_key(e, "timestamp"); dm_enc_i64(e, t->ts);
    dm_enc_key(e, "bid"); dm_enc_f64(e, t->bid);
    dm_enc_key(e, "ask"); dm_enc_f64(e, t->ask);
    dm_enc_key(e, "spread"); dm_enc_f64(e, t->spread);
    dm_enc_key(e, "volume");
    if (t->has_volume) dm_enc_f64(e, t->volume); else dm_enc_null(e);
    dm_enc_key(e, "source"); dm_enc_str(e, t->source);
    dm_enc_map_end(e);
}

void dm_candle_encode(dm_enc *e, const dm_candle *c)
{
    dm_enc_map(e, 9);
    dm_enc_key(e, "symbol"); dm_enc_str(e, c->symbol);
    dm_enc_key(e, "timeframe"); dm_enc_str(e, dm_tf_name(c->tf));
    dm_enc_key(e, "timestamp"); dm_enc_i64(e, c->ts);
    dm_enc_key(e, "open"); dm_enc_f64(e, c->open);
    dm_enc_key(e, "high"); dm_enc_f64(e, c->high);
    dm_enc_key(e, "low"); dm_enc_f64(e, c->low);
    dm_enc_key(e, "close"); dm_enc_f64(e, c->close);
    dm_enc_key(e, "volume");
    if (c->has_volume) dm_enc_f64(e, c->volume); else dm_enc_null(e);
    dm_enc_key(e, "source"); dm_enc_str(e, c->source);
    dm_enc_map_end(e);
}

static void opt_num(dm_enc *e, const char *key, bool has, double v)
{
    dm_enc_key(e, key);
    if (has) dm_enc_f64(e, v); else dm_enc_null(e);
}

void dm_event_encode(dm_enc *e, const dm_event *ev)
{
    dm_enc_map(e, 9);
    dm_enc_key(e, "event_id"); dm_enc_str(e, ev->event_id);
    dm_enc_key(e, "timestamp"); dm_enc_i64(e, ev->ts);
    dm_enc_key(e, "country"); dm_enc_str(e, ev->country);
    dm_enc_key(e, "event_name"); dm_enc_str(e, ev->event_name);
    opt_num(e, "actual", ev->has_actual, ev->actual);
    opt_num(e, "forecast", ev->has_forecast, ev->forecast);
    opt_num(e, "previous", ev->has_previous, ev->previous);
    dm_enc_key(e, "impact"); dm_enc_str(e, dm_impact_name(ev->impact));
    dm_enc_key(e, "currency_impact");
    dm_enc_arr(e, (size_t)ev->n_currency);
    for (int i = 0; i < ev->n_currency; i++)
        dm_enc_str(e, ev->currency_impact[i]);
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
}
