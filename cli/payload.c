#include "payload.h"

#include <math.h>
#include <stdint.h>

void payload_tick(dm_enc *e, const symbol *sym, const char *source, const tick *t)
{
    dm_enc_map(e, 7);
    dm_enc_key(e, "symbol");
    dm_enc_str(e, sym->name);
    dm_enc_key(e, "timestamp");
    dm_enc_i64(e, t->ts);
    dm_enc_key(e, "bid");
    dm_enc_f64(e, t->bid);
    dm_enc_key(e, "ask");
    dm_enc_f64(e, t->ask);
    dm_enc_key(e, "spread");
    dm_enc_f64(e, t->spread);
    dm_enc_key(e, "volume");
    dm_enc_i64(e, 0); /* derived ticks carry no traded volume */
    dm_enc_key(e, "source");
    dm_enc_str(e, source);
    dm_enc_map_end(e);
}

void payload_candle(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                    const candle *c)
{
    dm_enc_map(e, 9);
    dm_enc_key(e, "symbol");
    dm_enc_str(e, sym->name);
    dm_enc_key(e, "timeframe");
    dm_enc_str(e, tf);
    dm_enc_key(e, "timestamp");
    dm_enc_i64(e, c->ts);
    dm_enc_key(e, "open");
    dm_enc_f64(e, c->open);
    dm_enc_key(e, "high");
    dm_enc_f64(e, c->high);
    dm_enc_key(e, "low");
    dm_enc_f64(e, c->low);
    dm_enc_key(e, "close");
    dm_enc_f64(e, c->close);
    dm_enc_key(e, "volume");
    /* broker volumes are tick counts: keep them integers on the wire */
    if (c->volume < 9007199254740992.0 && c->volume == floor(c->volume))
        dm_enc_i64(e, (int64_t)c->volume);
    else
        dm_enc_f64(e, c->volume);
    dm_enc_key(e, "source");
    dm_enc_str(e, source);
    dm_enc_map_end(e);
}

void payload_bulk(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                  const candle *rows, size_t n)
{
    dm_enc_map(e, 1);
    dm_enc_key(e, "candles");
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++)
        payload_candle(e, sym, tf, source, &rows[i]);
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
}

static void opt_value(dm_enc *e, const opt_num *v)
{
    if (v->set)
        dm_enc_f64(e, v->v);
    else
        dm_enc_null(e);
}

void payload_event(dm_enc *e, const event *ev)
{
    dm_enc_map(e, 9);
    dm_enc_key(e, "event_id");
    dm_enc_str(e, ev->event_id);
    dm_enc_key(e, "timestamp");
    dm_enc_i64(e, ev->ts);
    dm_enc_key(e, "country");
    dm_enc_str(e, ev->country);
    dm_enc_key(e, "event_name");
    dm_enc_str(e, ev->event_name);
    dm_enc_key(e, "actual");
    opt_value(e, &ev->actual);
    dm_enc_key(e, "forecast");
    opt_value(e, &ev->forecast);
    dm_enc_key(e, "previous");
    opt_value(e, &ev->previous);
    dm_enc_key(e, "impact");
    dm_enc_str(e, ev->impact);
    dm_enc_key(e, "currency_impact");
    dm_enc_arr(e, 1);
    dm_enc_str(e, ev->currency);
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
}
