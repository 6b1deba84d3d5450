/* Contract payloads (TickData, CandleData, bulk candles, EconomicEvent), written by the
 * worker's own encoders (codec/models.h) from the records dmctl reads.
 *
 * Each returns false, with a line on stderr, when a field does not fit the contract's
 * limit (a source above DM_SOURCE_MAX, an event name above DM_EVENT_NAME_MAX...); the
 * buffer is then marked unusable (out->oom), so the caller publishes nothing rather than a
 * shortened record. */
#ifndef DMCTL_PAYLOAD_H
#define DMCTL_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/enc.h"
#include "model.h"

bool payload_tick(dm_enc *e, const symbol *sym, const char *source, const tick *t);
bool payload_candle(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                    const candle *c);
/* {"candles":[CandleData,...]} */
bool payload_bulk(dm_enc *e, const symbol *sym, const char *tf, const char *source,
                  const candle *rows, size_t n);
bool payload_event(dm_enc *e, const event *ev);

#endif
