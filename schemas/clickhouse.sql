-- ClickHouse schema of the Data Manager (analytics copy of ticks and candles).
--
-- dm-worker embeds this file and applies it at start (worker/backend/clickhouse.c,
-- dm_clickhouse_migrate): it first runs CREATE DATABASE IF NOT EXISTS for the database
-- named in deploy/config/clickhouse.json ("dm"), then sends the statements below one by
-- one over HTTP with that database as the current one. By hand:
--   clickhouse-client --query 'CREATE DATABASE IF NOT EXISTS dm'
--   clickhouse-client --database dm --multiquery < schemas/clickhouse.sql
-- Statements are separated by ';' and the file is split on it: keep ';' out of comments
-- and literals.
--
-- Written for ClickHouse 18.16 (Debian's) and current releases alike:
-- - times are Unix milliseconds in Int64 (18.16 has no DateTime64);
-- - plain String, not LowCardinality(String) (experimental in 18.16);
-- - idempotent writes: ReplacingMergeTree(version) keyed on the natural key, where
--   version is the insertion time in ms, so a redelivered or corrected row replaces the
--   older copy at merge time; readers use FINAL to see one row per key before merges.
-- - partitions are UTC months computed from ts alone, so every copy of a key lands in
--   the same partition (FINAL deduplicates within a partition) whatever the server's
--   time zone.
-- Aggregates are computed at query time over FINAL rows, not kept in a materialized
-- view: a view over inserts would count a redelivered batch twice.

CREATE TABLE IF NOT EXISTS candles
(
    symbol    String,            -- EUR/USD
    timeframe String,            -- 1m 5m 15m 30m 1h 4h 1d 1w
    ts        Int64,             -- open time, Unix ms UTC
    open      Float64,
    high      Float64,
    low       Float64,
    close     Float64,
    volume    Nullable(Float64),
    source    String,            -- market-data feed
    version   UInt64             -- insertion time, Unix ms: the newest copy wins
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(ts, 1000), 'UTC'))
ORDER BY (symbol, timeframe, ts);

CREATE TABLE IF NOT EXISTS ticks
(
    symbol  String,
    ts      Int64,               -- Unix ms UTC
    bid     Float64,
    ask     Float64,
    spread  Float64,
    volume  Nullable(Float64),
    source  String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(ts, 1000), 'UTC'))
ORDER BY (symbol, ts, source);
