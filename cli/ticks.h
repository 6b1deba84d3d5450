/* Tick derivation from one-minute candles.
 *
 * These ticks are DERIVED from M1 candles: they are NOT real quotes. The
 * broker files only hold OHLC per minute, so a plausible quote path is
 * synthesised deterministically (same input -> same ticks, so re-runs are
 * de-duplicated by Nats-Msg-Id). */
#ifndef DMCTL_TICKS_H
#define DMCTL_TICKS_H

#include <stdbool.h>

#include "model.h"

#define TICKS_MAX_PER_MINUTE 60000 /* keeps >= 1 ms between ticks */

/* Fills out[0..k-1] for one M1 candle. Returns false if a tick would break
 * ask >= bid > 0 (only possible for prices below one point). */
bool ticks_from_m1(const symbol *sym, const candle *c, int k, tick *out);

#endif
