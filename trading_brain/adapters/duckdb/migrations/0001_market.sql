-- 0001: foundation and market data.
CREATE TABLE IF NOT EXISTS system_meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Candles keyed by (symbol, timeframe, ts); ts is the bar open time, the bar covers [ts, ts+Δ).
-- No PRIMARY KEY on purpose: the store upserts with delete+insert in one transaction (≈3× faster
-- bulk loads than an ART index); the candles_no_duplicates asset check guards the invariant.
CREATE TABLE IF NOT EXISTS candles (
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    source VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);

-- Rows refused by validation, kept for inspection and reported by a check; never read as candles.
CREATE TABLE IF NOT EXISTS candles_quarantine (
    symbol VARCHAR,
    timeframe VARCHAR,
    ts TIMESTAMPTZ,
    open DOUBLE,
    high DOUBLE,
    low DOUBLE,
    close DOUBLE,
    volume DOUBLE,
    source VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS indicators (
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    ema_9 DOUBLE,
    ema_21 DOUBLE,
    ema_50 DOUBLE,
    sma_20 DOUBLE,
    sma_50 DOUBLE,
    rsi_14 DOUBLE,
    macd DOUBLE,
    macd_signal DOUBLE,
    macd_hist DOUBLE,
    bb_upper DOUBLE,
    bb_middle DOUBLE,
    bb_lower DOUBLE,
    atr_14 DOUBLE,
    volume_ratio DOUBLE,
    regime VARCHAR,
    computed_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS asset_pairs (
    symbol VARCHAR PRIMARY KEY,
    market VARCHAR NOT NULL,
    pair JSON NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS fee_schedule (
    symbol VARCHAR NOT NULL,
    market VARCHAR NOT NULL,
    fee_taker DOUBLE NOT NULL,
    fee_maker DOUBLE NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, market, valid_from)
);

-- Open times inside a fetched window for which the venue returned no bar (Kraken omits intervals
-- without trades). The gap check tolerates exactly these; any other missing bar is a real gap.
CREATE TABLE IF NOT EXISTS candle_omissions (
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts)
);

-- Resumable bootstrap: one row per (symbol, timeframe) with the newest open time loaded so far.
CREATE TABLE IF NOT EXISTS bootstrap_progress (
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    start_ts TIMESTAMPTZ NOT NULL,
    done_until TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, timeframe)
);
