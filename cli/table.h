/* Human-readable rendering of query replies: candle, tick and event rows
 * as aligned tables, other objects as "key: value" lines. */
#ifndef DMCTL_TABLE_H
#define DMCTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include <cJSON.h>

#define TABLE_HEAD 10 /* with more than HEAD+TAIL rows the middle is elided */
#define TABLE_TAIL 10

/* Prints rows[0..n); if gap_rows > 0 a "... gap_rows rows ..." line goes
 * before rows[gap_at]. Columns are chosen from the first row's keys. */
void table_print_rows(FILE *out, const cJSON *const *rows, size_t n, size_t gap_at,
                      size_t gap_rows);

/* A JSON array of rows, eliding the middle when it is long. */
void table_print_array(FILE *out, const cJSON *arr);

/* "key: value" lines, nested objects flattened as "a.b: value"; top-level
 * members named in the NULL-terminated `skip` list (may be NULL) are left out. */
void table_print_object(FILE *out, const cJSON *obj, const char *const *skip);

/* Scalar as display text ("-" for null/missing); nested values as compact JSON. */
void table_cell_text(const cJSON *v, char *out, size_t n);

#endif
