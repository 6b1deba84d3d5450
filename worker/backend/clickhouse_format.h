/* What the ClickHouse adapter exchanges besides SQL text: the strict checks of the few
 * values SQL text may hold (18.16 has no query parameters), the order a batch is sent in,
 * and RowBinary replies read back into rows. Private to the adapter's files, except the
 * checks, which the unit tests use. */
#ifndef DM_CLICKHOUSE_FORMAT_H
#define DM_CLICKHOUSE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/enc.h"
#include "backend.h"
#include "clickhouse.h"

/* ---- checks ---------------------------------------------------------------------------- */

/* A symbol that may be spliced into SQL between single quotes: the canonical form
 * [A-Z0-9]+/[A-Z0-9]+ of at most DM_SYMBOL_MAX characters (what dm_symbol_normalize
 * produces), or the 6-character token form [A-Z0-9]{6}. */
bool dm_clickhouse_safe_symbol(const char *s);
/* One of the fixed timeframe names (1m 5m 15m 30m 1h 4h 1d 1w). */
bool dm_clickhouse_safe_timeframe(const char *s);
/* [A-Za-z_][A-Za-z0-9_]*, at most DM_CH_IDENT_MAX characters: a database name. */
bool dm_clickhouse_safe_ident(const char *s);
/* No control characters: a value that may go into an HTTP header (user, password). */
bool dm_clickhouse_safe_header(const char *s);

/* ---- batches --------------------------------------------------------------------------- */

/* One table a batch is written to. The objects live in clickhouse.c as static const
 * tables of literals: their names reach SQL text. */
typedef struct {
    const char *what, *table, *columns;
    int64_t (*ts)(const void *rows, size_t i);
    int (*cmp)(const void *rows, size_t a, size_t b); /* natural key */
    void (*encode)(dm_buf *out, const void *rows, size_t i, uint64_t version);
} table_def;

typedef struct {
    uint32_t month;
    uint32_t idx;
} ch_row_key;

/* Fills keys[0..n) and sorts them by (month, natural key, batch order). */
void ch_batch_order(const table_def *def, const void *rows, size_t n, ch_row_key *keys);
/* Encodes into body (reset first) the rows of keys[i..) that fit one INSERT: at most
 * DM_CH_PARTITIONS_PER_INSERT months, the last copy of each key only. Returns where the
 * next slice starts (n when done). */
size_t ch_batch_slice(const table_def *def, const void *rows, const ch_row_key *keys, size_t n,
                      size_t i, uint64_t version, dm_buf *body);

/* ---- replies --------------------------------------------------------------------------- */

/* Each appends what a RowBinary reply holds, or on an unreadable reply appends nothing and
 * returns PERMANENT (out of memory: TRANSIENT), err filled with dm_bfail. */
dm_bstatus ch_read_candles(const dm_buf *reply, const char *what, dm_candle_vec *out,
                           dm_err *err);
dm_bstatus ch_read_aggregates(const dm_buf *reply, dm_period period, dm_agg_vec *out,
                              dm_err *err);
/* Reverses out->v[from..n): rows read newest first, returned oldest first. */
void ch_reverse_candles(dm_candle_vec *out, size_t from);
/* A reply of exactly two Int64 values. */
dm_bstatus ch_read_two_i64(const dm_buf *reply, const char *what, int64_t *a, int64_t *b,
                           dm_err *err);

#endif
