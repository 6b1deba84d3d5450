#include "payload.h"

#include <stdio.h>
#include <string.h>

#include "codec/models.h"

/* Copies s into dst[cap]; false, saying which field, when it does not fit. */
static bool put_field(dm_enc *e, char *dst, size_t cap, const char *field, const char *s)
{
    size_t n = strlen(s);
    if (n < cap) {
        memcpy(dst, s, n + 1);
        return true;
    }
    fprintf(stderr, "dmctl: %s has %zu bytes; the contract allows %zu\n", field, n, cap - 1);
    e->out->oom = true;
    return false;
}

bool payload_tick(dm_enc *e, const symbol *sym, const char *source, const tick *t)
{
    /* derived ticks carry no traded volume */
    dm_tick m = {.ts = t->ts, .bid = t->bid, .ask = t->ask, .spread = t->spread, .volume = 0,
                 .has_volume = true};
    if (!put_field(e, m.symbol, sizeof m.symbol, "symbol", sym->name) ||
        !put_field(e, m.source, sizeof m.source, "source", source))
        return false;
    dm_tick_encode(e, &m);
    return true;
}

static bool to_candle(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                      const candle *c, dm_candle *m)
{
    *m = (dm_candle){.ts = c->ts, .open = c->open, .high = c->high, .low = c->low,
                     .close = c->close, .volume = c->volume, .has_volume = true};
    if (!dm_tf_parse(tf, &m->tf)) {
        fprintf(stderr, "dmctl: unknown timeframe '%s'\n", tf);
        e->out->oom = true;
        return false;
    }
    return put_field(e, m->symbol, sizeof m->symbol, "symbol", sym->name) &&
           put_field(e, m->source, sizeof m->source, "source", source);
}

bool payload_candle(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                    const candle *c)
{
    dm_candle m;
    if (!to_candle(e, sym, tf, source, c, &m))
        return false;
    dm_candle_encode(e, &m);
    return true;
}

bool payload_bulk(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                  const candle *rows, size_t n)
{
    dm_candle m;
    /* symbol, timeframe and source are the same for every row: checked once */
    if (n > 0 && !to_candle(e, sym, tf, source, &rows[0], &m))
        return false;
    dm_enc_map(e, 1);
    dm_enc_key(e, "candles");
    dm_enc_arr(e, n);
    for (size_t i = 0; i < n; i++) {
        m.ts = rows[i].ts;
        m.open = rows[i].open;
        m.high = rows[i].high;
        m.low = rows[i].low;
        m.close = rows[i].close;
        m.volume = rows[i].volume;
        dm_candle_encode(e, &m);
    }
    dm_enc_arr_end(e);
    dm_enc_map_end(e);
    return true;
}

bool payload_event(dm_enc *e, const event *ev)
{
    dm_event m = {.ts = ev->ts,
                  .actual = ev->actual.v, .has_actual = ev->actual.set,
                  .forecast = ev->forecast.v, .has_forecast = ev->forecast.set,
                  .previous = ev->previous.v, .has_previous = ev->previous.set,
                  .n_currency = 1};
    if (!dm_impact_parse(ev->impact, &m.impact)) {
        fprintf(stderr, "dmctl: unknown impact '%s'\n", ev->impact);
        e->out->oom = true;
        return false;
    }
    if (!put_field(e, m.event_id, sizeof m.event_id, "event_id", ev->event_id) ||
        !put_field(e, m.event_name, sizeof m.event_name, "event_name", ev->event_name) ||
        !put_field(e, m.country, sizeof m.country, "country", ev->country) ||
        !put_field(e, m.currency_impact[0], sizeof m.currency_impact[0], "currency",
                   ev->currency))
        return false;
    dm_event_encode(e, &m);
    return true;
}
