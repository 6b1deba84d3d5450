/* Records read from CSV files, before they are encoded as contract payloads. */
#ifndef DMCTL_MODEL_H
#define DMCTL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Symbol as given ("EUR/USD") plus its subject token ("EURUSD"). */
typedef struct symbol {
    char name[16];
    char token[16];
    int decimals; /* 3 for JPY pairs, else 5 */
    double pip;   /* 0.01 for JPY pairs, else 0.0001 */
} symbol;

/* Returns false (with a message on stderr) if the symbol cannot be a subject token. */
bool symbol_parse(const char *s, symbol *out);

/* "1m","5m","1h","4h","1d","1w": returns the period in ms; "1M" (month)
 * returns 0, meaning no alignment check. false if malformed. */
bool timeframe_parse(const char *tf, int64_t *period_ms);

/* Rounds to the symbol's price precision (integer points, then back). */
int64_t price_to_points(const symbol *sym, double price);
double points_to_price(const symbol *sym, int64_t points);

#endif
