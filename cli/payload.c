#include "payload.h"

#include <math.h>
#include <stdint.h>

void payload_tick(enc *e, const symbol *sym, const char *source, const tick *t)
{
    enc_map(e, 7);
    enc_key(e, "symbol");
    enc_str(e, sym->name);
    enc_key(e, "timestamp");
    enc_i64(e, t->ts);
    enc_key(e, "bid");
    enc_f64(e, t->bid);
    enc_key(e, "ask");
    enc_f64(e, t->ask);
    enc_key(e, "spread");
    enc_f64(e, t->spread);
    enc_key(e, "volume");
    enc_i64(e, 0); /* derived ticks carry no traded volume */
    enc_key(e, "source");
    enc_str(e, source);
    enc_map_end(e);
}

void payload_candle(enc *e, const symbol *sym, const char *tf, const char *source,
                    const candle *c)
{
    enc_map(e, 9);
    enc_key(e, "symbol");
    enc_str(e, sym->name);
    enc_key(e, "timeframe");
    enc_str(e, tf);
    enc_key(e, "timestamp");
    enc_i64(e, c->ts);
    enc_key(e, "open");
    enc_f64(e, c->open);
    enc_key(e, "high");
    enc_f64(e, c->high);
    enc_key(e, "low");
    enc_f64(e, c->low);
    enc_key(e, "close");
    enc_f64(e, c->close);
    enc_key(e, "volume");
    /* broker volumes are tick counts: keep them integers on the wire */
    if (c->volume < 9007199254740992.0 && c->volume == floor(c->volume))
        enc_i64(e, (int64_t)c->volume);
    else
        enc_f64(e, c->volume);
    enc_key(e, "source");
    enc_str(e, source);
    enc_map_end(e);
}

void payload_bulk(enc *e, const symbol *sym, const char *tf, const char *source,
                  const candle *rows, size_t n)
{
    enc_map(e, 1);
    enc_key(e, "candles");
    enc_array(e, n);
    for (size_t i = 0; i < n; i++)
        payload_candle(e, sym, tf, source, &rows[i]);
    enc_array_end(e);
    enc_map_end(e);
}

static void opt_value(enc *e, const opt_num *v)
{
    if (v->set)
        enc_f64(e, v->v);
    else
        enc_nil(e);
}

void payload_event(enc *e, const event *ev)
{
    enc_map(e, 9);
    enc_key(e, "event_id");
    enc_str(e, ev->event_id);
    enc_key(e, "timestamp");
    enc_i64(e, ev->ts);
    enc_key(e, "country");
    enc_str(e, ev->country);
    enc_key(e, "event_name");
    enc_str(e, ev->event_name);
    enc_key(e, "actual");
    opt_value(e, &ev->actual);
    enc_key(e, "forecast");
    opt_value(e, &ev->forecast);
    enc_key(e, "previous");
    opt_value(e, &ev->previous);
    enc_key(e, "impact");
    enc_str(e, ev->impact);
    enc_key(e, "currency_impact");
    enc_array(e, 1);
    enc_str(e, ev->currency);
    enc_array_end(e);
    enc_map_end(e);
}
