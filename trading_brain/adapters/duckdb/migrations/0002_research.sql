-- 0002: research — strategy versions and backtests.
-- One row per released (strategy_id, version); source and sha256 never change once recorded.
CREATE TABLE IF NOT EXISTS strategy_versions (
    strategy_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    path VARCHAR,
    parent_version INTEGER,
    reason VARCHAR NOT NULL,
    warmup_bars INTEGER NOT NULL,
    params_default JSON NOT NULL,
    param_space JSON NOT NULL,
    status VARCHAR NOT NULL,          -- registered | active | retired | rejected
    validation JSON,                  -- static gate / sandbox / look-ahead results
    created_at TIMESTAMPTZ NOT NULL,
    deployed_at TIMESTAMPTZ,
    retired_at TIMESTAMPTZ,
    PRIMARY KEY (strategy_id, version)
);

-- Every deploy / rollback, newest last: rollback returns to the previous entry.
CREATE TABLE IF NOT EXISTS deployments_log (
    seq INTEGER PRIMARY KEY,
    strategy_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    action VARCHAR NOT NULL,          -- deploy | rollback
    reason VARCHAR NOT NULL,
    logged_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS backtests (
    backtest_id VARCHAR PRIMARY KEY,  -- sha of (strategy@version, params, data, engine, costs)
    strategy_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    engine VARCHAR NOT NULL,
    params JSON NOT NULL,
    symbols JSON NOT NULL,
    start_ts TIMESTAMPTZ,
    end_ts TIMESTAMPTZ,
    cash DOUBLE NOT NULL,
    fee DOUBLE NOT NULL,
    slippage DOUBLE NOT NULL,
    metrics JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS backtest_trades (
    backtest_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    symbol VARCHAR NOT NULL,
    entry_time TIMESTAMPTZ NOT NULL,
    exit_time TIMESTAMPTZ,
    entry_price DOUBLE NOT NULL,
    exit_price DOUBLE,
    quantity DOUBLE NOT NULL,
    pnl DOUBLE,
    fees DOUBLE NOT NULL,
    exit_reason VARCHAR,
    PRIMARY KEY (backtest_id, seq)
);
