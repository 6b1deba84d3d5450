-- PostgreSQL / TimescaleDB schema of the Data Manager. Applied by every worker at start
-- under an advisory lock; every statement is idempotent. Times are Unix milliseconds
-- (UTC) in bigint columns, exactly as they travel in payloads.
-- Hypertables are created by the worker only when the timescaledb extension is present.

CREATE TABLE IF NOT EXISTS ticks (
    symbol  text             NOT NULL,
    ts      bigint           NOT NULL,
    bid     double precision NOT NULL,
    ask     double precision NOT NULL,
    spread  double precision NOT NULL,
    volume  double precision,
    source  text             NOT NULL,
    PRIMARY KEY (symbol, ts, source)
);

CREATE TABLE IF NOT EXISTS candles (
    symbol    text             NOT NULL,
    timeframe text             NOT NULL,
    ts        bigint           NOT NULL,
    open      double precision NOT NULL,
    high      double precision NOT NULL,
    low       double precision NOT NULL,
    close     double precision NOT NULL,
    volume    double precision,
    source    text             NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts)
);

CREATE TABLE IF NOT EXISTS economic_events (
    event_id        text             PRIMARY KEY,
    ts              bigint           NOT NULL,
    country         text             NOT NULL,
    event_name      text             NOT NULL,
    actual          double precision,
    forecast        double precision,
    previous        double precision,
    impact          text             NOT NULL CHECK (impact IN ('high', 'medium', 'low')),
    currency_impact text[]           NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS economic_events_ts ON economic_events (ts, event_id);

-- The default window's correlation matrix, recomputed on schedule (strategy
-- correlations.refresh_s) by exactly one worker per interval: one row per unordered pair
-- (a < b) that has a correlation; correlation_runs says which interval and window it is and
-- how often that interval was computed (1, unless a worker died mid-way).
CREATE TABLE IF NOT EXISTS correlations (
    timeframe      text             NOT NULL,
    a              text             NOT NULL,
    b              text             NOT NULL,
    r              double precision NOT NULL,
    n              bigint           NOT NULL,
    window_start   bigint           NOT NULL,
    window_end     bigint           NOT NULL,
    window_candles integer          NOT NULL,
    PRIMARY KEY (timeframe, a, b)
);

CREATE TABLE IF NOT EXISTS correlation_runs (
    timeframe      text        PRIMARY KEY,
    run            bigint      NOT NULL,
    window_start   bigint      NOT NULL,
    window_end     bigint      NOT NULL,
    window_candles integer     NOT NULL,
    computations   integer     NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now()
);

-- How far a resumable job got (the Weaviate backfill: the open time of the last candle
-- whose windows are stored, per timeframe and symbol).
CREATE TABLE IF NOT EXISTS dm_progress (
    key        text        PRIMARY KEY,
    value      bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS dm_schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dm_schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;
