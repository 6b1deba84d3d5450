/* What the PostgreSQL adapter's files share (private to worker/backend/timescale*.c):
 * the connection, prepared statements, the column arrays of a batch, and the analysis
 * operations that live in timescale_analysis.c. */
#ifndef DM_TIMESCALE_PRIV_H
#define DM_TIMESCALE_PRIV_H

#include <libpq-fe.h>

#include "codec/enc.h"
#include "backend.h"
#include "pg_array.h"

typedef struct {
    dm_backend base;
    PGconn *conn;
    char host[256], port[16], dbname[64], user[64], password[256], app[64];
    char options[64];
    dm_pg_array arrays[9]; /* the batch being written, one binary array per column */
    char sqlstate[6]; /* of the last failed statement, "" when it had none */
} timescale;

/* Runs a statement prepared at connect (STATEMENTS in timescale.c), once more on a fresh
 * connection when a reused one turned out dead. *out (may be NULL) gets the rows. */
dm_bstatus ts_exec_prepared(timescale *ts, const char *stmt, int n, const char *const *vals,
                            PGresult **out, dm_err *err);
/* The same with the column arrays ts->arrays[0..ncols) as parameters first..first+ncols-1
 * (binary); vals[0..first) are text parameters before them. */
dm_bstatus ts_exec_arrays(timescale *ts, const char *stmt, const char *const *vals, int first,
                          int ncols, dm_err *err);
/* Starts one array per letter of types in ts->arrays: t text, i int8, f float8. */
void ts_arr_begin(timescale *ts, const char *types);
double ts_num(const PGresult *r, int row, int col);

/* timescale_read.c: the reads of the route sources. */
dm_bstatus ts_latest_tick(dm_backend *b, const char *symbol, dm_tick *out, dm_err *err);
dm_bstatus ts_latest_candles(dm_backend *b, const char *symbol, dm_tf tf, size_t limit,
                                    dm_candle_vec *out, dm_err *err);
dm_bstatus ts_candle_range(dm_backend *b, const dm_range_query *q, dm_candle_vec *out,
                                  dm_err *err);
dm_bstatus ts_events(dm_backend *b, const dm_event_query *q, dm_event_vec *out,
                            dm_err *err);
dm_bstatus ts_aggregates(dm_backend *b, const dm_agg_query *q, dm_agg_vec *out, dm_err *err);

/* timescale_analysis.c: what the analysis engines and jobs read and store. */
dm_bstatus ts_closes(dm_backend *b, dm_tf tf, const char *symbol, dm_close_sink sink, void *ctx,
                     dm_err *err);
dm_bstatus ts_put_correlations(dm_backend *b, const dm_corr_snapshot *sn, dm_err *err);
dm_bstatus ts_correlations_run(dm_backend *b, dm_tf tf, int64_t *run, dm_err *err);
dm_bstatus ts_get_progress(dm_backend *b, const char *key, int64_t *value, dm_err *err);
dm_bstatus ts_set_progress(dm_backend *b, const char *key, int64_t value, dm_err *err);

#endif
