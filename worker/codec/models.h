/* Models <-> documents. Decoders check types and shapes, then run the model validation,
 * so a decoded value is always one a market could produce. */
#ifndef DM_CODEC_MODELS_H
#define DM_CODEC_MODELS_H

#include <cjson/cJSON.h>

#include "model/model.h"
#include "enc.h"

dm_code dm_tick_decode(const cJSON *obj, int64_t now_ms, dm_tick *out, dm_err *err);
dm_code dm_candle_decode(const cJSON *obj, int64_t now_ms, dm_candle *out, dm_err *err);
dm_code dm_event_decode(const cJSON *obj, int64_t now_ms, dm_event *out, dm_err *err);

void dm_tick_encode(dm_enc *e, const dm_tick *t);
void dm_candle_encode(dm_enc *e, const dm_candle *c);
void dm_event_encode(dm_enc *e, const dm_event *ev);

#endif
