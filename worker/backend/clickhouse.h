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
 *   (database name, symbol, timeframe, numbers this file formats) pass the strict checks
 *   below first.
 * - Errors: any status but 200 is an error whose body starts "Code: N" (18.16:
 *   "Code: 60, e.displayText() = DB::Exception: ...", current: "Code: 60. DB::Exception:
 *   ... (UNKNOWN_TABLE) (version ...)"); current servers also send the code in the
 *   X-ClickHouse-Exception-Code header. Transient: every transport failure, overload and
 *   timeout codes, a missing database or table (the schema is applied at start, and again
 *   by a writer that meets one), and credential or permission refusals (the data is fine:
 *   an operator fixes the account while the messages wait in the stream). Everything
 *   else ClickHouse refuses is permanent.
 * - The password travels in the X-ClickHouse-Key header only: never in a URL or a log. */
#ifndef DM_CLICKHOUSE_H
#define DM_CLICKHOUSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

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

/* ---- checks and parsers, exposed for the unit tests ---------------------------------- */

/* A symbol that may be spliced into SQL between single quotes: the canonical form
 * [A-Z0-9]+/[A-Z0-9]+ of at most DM_SYMBOL_MAX characters (what dm_symbol_normalize
 * produces), or the 6-character token form [A-Z0-9]{6}. */
bool dm_clickhouse_safe_symbol(const char *s);
/* One of the fixed timeframe names (1m 5m 15m 30m 1h 4h 1d 1w). */
bool dm_clickhouse_safe_timeframe(const char *s);
/* [A-Za-z_][A-Za-z0-9_]*, at most DM_CH_IDENT_MAX characters: a database name. */
bool dm_clickhouse_safe_ident(const char *s);

/* The error code of a ClickHouse error body ("Code: N, ..." or "Code: N. ..."), or -1
 * when the body is not one. When msg is not NULL it receives the readable part of the
 * first line (the exception text without the "e.displayText() = DB::Exception: "
 * wrapping), truncated to cap. */
int dm_clickhouse_parse_error(const char *body, size_t len, char *msg, size_t cap);
/* Transient or permanent for an HTTP status other than 200 and the parsed code (-1: none,
 * as from a proxy in front of the server). */
dm_bstatus dm_clickhouse_classify(long http_status, int code);

#endif
