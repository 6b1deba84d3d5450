/* Contract payloads (TickData, CandleData, bulk candles, EconomicEvent). */
#ifndef DMCTL_PAYLOAD_H
#define DMCTL_PAYLOAD_H

#include <stddef.h>

#include "codec/enc.h"
#include "model.h"

void payload_tick(dm_enc *e, const symbol *sym, const char *source, const tick *t);
void payload_candle(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                    const candle *c);
/* {"candles":[CandleData,...]} */
void payload_bulk(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                  const candle *rows, size_t n);
void payload_event(dm_enc *e, const event *ev);

#endif
