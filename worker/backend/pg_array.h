/* One-dimensional arrays in PostgreSQL's binary wire format (array_recv), built as a
 * statement parameter. A batch goes to PostgreSQL as one array per column and unnest makes
 * rows of them; in binary form neither side prints or parses a number (a double is sent
 * as its exact bits), and text elements need no quoting. */
#ifndef DM_PG_ARRAY_H
#define DM_PG_ARRAY_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/enc.h"

/* Element type OIDs (pg_type.h); the statement's cast ($1::text[] ...) must agree. */
#define DM_PG_INT8 20
#define DM_PG_TEXT 25
#define DM_PG_FLOAT8 701

typedef struct {
    dm_buf buf;
    int32_t n;
    bool has_null;
} dm_pg_array;

void dm_pg_array_begin(dm_pg_array *a, uint32_t elem_oid);
void dm_pg_array_text(dm_pg_array *a, const char *s);
void dm_pg_array_i64(dm_pg_array *a, int64_t v);
void dm_pg_array_f64(dm_pg_array *a, double v, bool present); /* NULL when !present */
/* Completes the header; false when the buffer ran out of memory or grew past 1 GB. Then
 * a->buf.data and a->buf.len are the parameter (format 1). */
bool dm_pg_array_end(dm_pg_array *a);
void dm_pg_array_free(dm_pg_array *a);

#endif
