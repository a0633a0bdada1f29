-- 0006: stored candles are evidence. A stored bar whose values change (an import with --replace,
-- or the live sync storing a bar the venue revised) leaves its old values here, one row per
-- change; nothing is ever deleted from this table.
CREATE TABLE IF NOT EXISTS candle_revisions (
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    old_open DOUBLE NOT NULL,
    old_high DOUBLE NOT NULL,
    old_low DOUBLE NOT NULL,
    old_close DOUBLE NOT NULL,
    old_volume DOUBLE NOT NULL,
    old_source VARCHAR NOT NULL,          -- source of the replaced row (e.g. "import:x.csv", "kraken")
    new_open DOUBLE NOT NULL,
    new_high DOUBLE NOT NULL,
    new_low DOUBLE NOT NULL,
    new_close DOUBLE NOT NULL,
    new_volume DOUBLE NOT NULL,
    source VARCHAR NOT NULL,              -- source of the new row
    reason VARCHAR NOT NULL,              -- "import --replace" | "sync"
    revised_at TIMESTAMPTZ NOT NULL
);
