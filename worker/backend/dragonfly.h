/* Dragonfly / Redis adapter (hiredis): the shared L2 cache of latest values.
 *
 * Keys (the platform spec's patterns, symbol token as a hash tag so one symbol's keys
 * share a cluster slot): tick:latest:{EURUSD} and candle:latest:{EURUSD}:1h, both sorted
 * sets scored by time. A sorted set makes "newest wins" hold whatever order workers
 * commit in: an older redelivered value sinks below the trim line. Members are compact
 * text ("ts|open|high|low|close|volume|source"), readable by an operator and cheap to
 * parse on the hot path. */
#ifndef DM_DRAGONFLY_H
#define DM_DRAGONFLY_H

#include <cjson/cJSON.h>

#include "backend.h"


dm_backend *dm_dragonfly_create(const cJSON *cfg, int timeout_s);

#endif
