/* Records read from CSV files, before they are encoded as contract payloads. */
#ifndef DMCTL_MODEL_H
#define DMCTL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h" /* the contract's symbols and timeframes: the worker's own rules */

typedef struct candle {
    int64_t ts; /* Unix ms UTC (after --shift-hours) */
    double open, high, low, close, volume;
} candle;

typedef struct tick {
    int64_t ts;
    double bid, ask, spread;
} tick;

typedef struct opt_num {
    bool set;
    double v;
} opt_num;

typedef struct event {
    int64_t ts;
    char *event_id;   /* owned */
    char *event_name; /* owned */
    char country[3];
    char currency[4];
    char impact[16];
    opt_num actual, forecast, previous;
} event;

/* Symbol as the contract writes it ("EUR/USD") plus its subject token ("EURUSD"). */
typedef struct symbol {
    char name[DM_SYMBOL_MAX + 1];
    char token[DM_TOKEN_MAX + 1];
    int decimals; /* 3 for JPY pairs, else 5 */
    double pip;   /* 0.01 for JPY pairs, else 0.0001 */
} symbol;

/* Exactly the worker's rule (dm_symbol_normalize): "EUR/USD" or "EURUSD", upper-case
 * letters and digits; false, with the worker's message on stderr, for anything it would
 * refuse. */
bool symbol_parse(const char *s, symbol *out);

/* Exactly the worker's timeframes (1m 5m 15m 30m 1h 4h 1d 1w): the period in ms, or 0 for
 * 1w (weeks open on Monday: the worker checks that alignment itself); false otherwise. */
bool timeframe_parse(const char *tf, int64_t *period_ms);

/* Rounds to the symbol's price precision (integer points, then back). */
int64_t price_to_points(const symbol *sym, double price);
double points_to_price(const symbol *sym, int64_t points);

#endif
