/* Broker CSV files -> validated candles / events. The format is detected
 * from the first line; see dmctl --help for the accepted layouts. */
#ifndef DMCTL_CSV_H
#define DMCTL_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct load_opts {
    int64_t shift_ms;  /* added to every timestamp (--shift-hours) */
    int64_t align_ms;  /* broker times must be multiples of this (0 = no check) */
    bool skip_bad;     /* skip and count bad rows instead of failing */
    bool quiet;        /* do not print skipped-row messages */
} load_opts;

typedef struct candle_set {
    candle *rows;
    size_t n, cap;
    size_t bad; /* rows skipped with --skip-bad */
} candle_set;

typedef struct event_set {
    event *rows;
    size_t n, cap;
    size_t bad;
} event_set;

/* Both return 0 on success; on failure they have printed file:line errors. */
int csv_load_candles(const char *path, const load_opts *o, candle_set *out);
int csv_load_events(const char *path, const load_opts *o, event_set *out);

void candle_set_free(candle_set *s);
void event_set_free(event_set *s);

/* Splits one CSV line in place (handles "quoted, fields" and a trailing CR).
 * Returns the number of fields, or -1 if there are more than max. */
int csv_split(char *line, char **fields, int max);

#endif
