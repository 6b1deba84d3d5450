/* Market data models (DESIGN.md "Models") and their validation. Pure: no I/O.
 * Strings are fixed-size so batches are plain arrays with no ownership questions. */
#ifndef DM_MODEL_H
#define DM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define DM_SYMBOL_MAX 24     /* "EUR/USD"; room for longer instrument names */
#define DM_TOKEN_MAX 24      /* symbol without the slash, as in subjects */
#define DM_SOURCE_MAX 64
#define DM_EVENT_ID_MAX 128
#define DM_EVENT_NAME_MAX 256
#define DM_CURRENCIES_MAX 16
#define DM_BULK_MAX 10000    /* candles in one market.candles message */

/* Plausible market times: nothing before 1971 or more than a day ahead (an event
 * calendar may look two years ahead). A seconds timestamp lands in 1970 and is caught. */
#define DM_TS_MIN_MS 31536000000LL
#define DM_DAY_MS 86400000LL
#define DM_EVENT_AHEAD_MS (2LL * 366 * DM_DAY_MS)

typedef enum {
    DM_TF_1M, DM_TF_5M, DM_TF_15M, DM_TF_30M, DM_TF_1H, DM_TF_4H, DM_TF_1D, DM_TF_1W,
    DM_TF_COUNT
} dm_tf;

typedef enum { DM_IMPACT_LOW, DM_IMPACT_MEDIUM, DM_IMPACT_HIGH } dm_impact;

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    int64_t ts;
    double bid, ask, spread, volume;
    bool has_volume;
    char source[DM_SOURCE_MAX + 1];
} dm_tick;

typedef struct {
    char symbol[DM_SYMBOL_MAX + 1];
    dm_tf tf;
    int64_t ts; /* open time */
    double open, high, low, close, volume;
    bool has_volume;
    char source[DM_SOURCE_MAX + 1];
} dm_candle;

typedef struct {
    char event_id[DM_EVENT_ID_MAX + 1];
    int64_t ts;
    char country[3];
    char event_name[DM_EVENT_NAME_MAX + 1];
    double actual, forecast, previous;
    bool has_actual, has_forecast, has_previous;
    dm_impact impact;
    char currency_impact[DM_CURRENCIES_MAX][4];
    int n_currency;
} dm_event;

const char *dm_tf_name(dm_tf tf);
bool dm_tf_parse(const char *s, dm_tf *out);
int64_t dm_tf_ms(dm_tf tf);
/* Weeks open on Monday 00:00 UTC; every other timeframe divides the epoch evenly. */
bool dm_tf_aligned(dm_tf tf, int64_t ts);

const char *dm_impact_name(dm_impact impact);
bool dm_impact_parse(const char *s, dm_impact *out);

/* Accepts "EUR/USD" (canonical) and the 6-letter token form "EURUSD"; writes the
 * canonical symbol and its subject token ("EURUSD"). */
dm_code dm_symbol_normalize(const char *in, char out[DM_SYMBOL_MAX + 1],
                            char token[DM_TOKEN_MAX + 1], const char *field, dm_err *err);
/* The subject/key token of a canonical symbol: "EUR/USD" -> "EURUSD". */
void dm_symbol_token(const char *symbol, char token[DM_TOKEN_MAX + 1]);

/* Cache keys of the latest values (Dragonfly's, L1's and the freshness marks'): the
 * symbol token, and for candles the timeframe. */
#define DM_KEY_TICK_LATEST "tick:latest:{%s}"
#define DM_KEY_CANDLE_LATEST "candle:latest:{%s}:%s"
bool dm_is_source(const char *s);
bool dm_is_country(const char *s);
bool dm_is_currency(const char *s);
bool dm_is_text(const char *s, size_t max); /* valid UTF-8, no control characters */

int64_t dm_now_ms(void);  /* wall clock: timestamps */
int64_t dm_mono_ms(void); /* monotonic: deadlines and intervals */
int64_t dm_mono_ns(void); /* monotonic, for timing calls */

dm_code dm_tick_validate(const dm_tick *t, int64_t now_ms, dm_err *err);
dm_code dm_candle_validate(const dm_candle *c, int64_t now_ms, dm_err *err);
dm_code dm_event_validate(const dm_event *e, int64_t now_ms, dm_err *err);

#endif
