/* Contract payloads (TickData, CandleData, bulk candles, EconomicEvent). */
#ifndef DMCTL_PAYLOAD_H
#define DMCTL_PAYLOAD_H

#include <stddef.h>

#include "enc.h"
#include "model.h"

void payload_tick(enc *e, const symbol *sym, const char *source, const tick *t);
void payload_candle(enc *e, const symbol *sym, const char *tf, const char *source,
                    const candle *c);
/* {"candles":[CandleData,...]} */
void payload_bulk(enc *e, const symbol *sym, const char *tf, const char *source,
                  const candle *rows, size_t n);
void payload_event(enc *e, const event *ev);

#endif
