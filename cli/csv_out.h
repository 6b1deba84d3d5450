/* Rows written as CSV (RFC 4180) for spreadsheets and loaders: a header of the first row's
 * member names, then one line per row in that column order (a member a later row lacks is
 * an empty cell; one it adds is not written). Numbers as JSON writes them, text quoted
 * where it must be, arrays and objects as their JSON text. */
#ifndef DMCTL_CSV_OUT_H
#define DMCTL_CSV_OUT_H

#include <stdbool.h>
#include <stdio.h>

#include <cJSON.h>

typedef struct csv_out {
    char **cols;
    size_t n;
    bool started;
} csv_out;

/* False when out of memory. */
bool csv_out_row(csv_out *o, FILE *f, const cJSON *row);
void csv_out_free(csv_out *o);

#endif
