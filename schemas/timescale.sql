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

CREATE TABLE IF NOT EXISTS dm_schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dm_schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;
