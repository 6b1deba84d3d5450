/* Human-readable rendering of query replies: candle, tick and event rows
 * as aligned tables, other objects as "key: value" lines. */
#ifndef DMCTL_TABLE_H
#define DMCTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include <cJSON.h>

/* Prints every row of rows[0..n): candle, tick, event and aggregate rows in fixed columns
 * with times as "YYYY-MM-DD HH:MM:SS" under a "(UTC)" title, other rows in the first
 * row's keys. */
void table_print_rows(FILE *out, const cJSON *const *rows, size_t n);

/* Every row of a JSON array, as table_print_rows. */
void table_print_array(FILE *out, const cJSON *arr);

/* "key: value" lines, nested objects flattened as "a.b: value", times (timestamp,
 * period_start...) as "YYYY-MM-DD HH:MM:SS[.mmm] UTC"; top-level
 * members named in the NULL-terminated `skip` list (may be NULL) are left out. */
void table_print_object(FILE *out, const cJSON *obj, const char *const *skip);

/* Scalar as display text ("-" for null/missing); nested values as compact JSON. */
void table_cell_text(const cJSON *v, char *out, size_t n);

#endif
