/* ClickHouse adapter (HTTP interface, libcurl): the analytics copy of ticks and candles.
 *
 * - Writes are RowBinary bodies of `INSERT INTO db.t (cols) FORMAT RowBinary`: values
 *   never appear in SQL text, and doubles and 64-bit integers travel bit-exact. Tables
 *   are ReplacingMergeTree(version), version = insertion time in ms, so redelivery only
 *   replaces rows. A batch is sorted by (month, key) and keeps the last copy of a key, and
 *   is sent in slices of at most DM_CH_PARTITIONS_PER_INSERT months (current servers
 *   refuse an INSERT touching more partitions than max_partitions_per_insert_block, 100).
 *   A write that fails may have committed some slices; replaying them is harmless.
 * - Reads are SELECT ... FINAL with result types pinned by casts and read as RowBinary
 *   with wait_end_of_query=1, so an error can never arrive in the middle of a 200 reply.
 * - ClickHouse 18.16 has no query parameters: the few values that reach SQL text
 *   (database name, symbol, timeframe, numbers the adapter formats) pass
 *   the strict checks of clickhouse_format.h first.
 * - Errors: every transport failure, overload and timeout, a missing database or table
 *   (the schema is applied at start, and again by a writer that meets one) and credential
 *   or permission refusals are transient (the data is fine: an operator fixes the account
 *   while the messages wait in the stream); everything else ClickHouse refuses is
 *   permanent (clickhouse_http.h has the details).
 * - The password travels in the X-ClickHouse-Key header only: never in a URL or a log. */
#ifndef DM_CLICKHOUSE_H
#define DM_CLICKHOUSE_H

#include <cjson/cJSON.h>

#include "backend.h"

#define DM_CH_PARTITIONS_PER_INSERT 100
#define DM_CH_IDENT_MAX 64 /* database names accepted by dm_clickhouse_safe_ident */

/* Applies schemas/clickhouse.sql (embedded at build time): CREATE DATABASE IF NOT EXISTS
 * for the configured database, then each statement in turn. Logs the server version. */
dm_code dm_clickhouse_migrate(const cJSON *cfg, dm_err *err);
/* Connects lazily: creation succeeds while the server is down. NULL (and a logged
 * reason) when the config is unusable: url not http(s)://, credentials inside the url,
 * or a database name that is not a plain identifier. */
dm_backend *dm_clickhouse_create(const cJSON *cfg, int timeout_s);

/* The checks of values spliced into SQL are in clickhouse_format.h, the parsing and
 * classification of error replies in clickhouse_http.h. */

#endif
