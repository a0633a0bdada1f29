-- 0003: the trading loop — scans, signals, intents, orders, fills, positions, ledger, risk.
CREATE TABLE IF NOT EXISTS scans (
    scan_id VARCHAR PRIMARY KEY,      -- deterministic: scan of (bar_time, strategy versions)
    bar_time TIMESTAMPTZ NOT NULL,    -- open time of the newest closed 5m bar the scan decided on
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE NOT NULL,
    symbols INTEGER NOT NULL,
    signals INTEGER NOT NULL,
    intents INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    details JSON NOT NULL             -- per symbol: indicator state, regime, signal, rejections
);

CREATE TABLE IF NOT EXISTS signals (
    scan_id VARCHAR NOT NULL,
    strategy_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    slot VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    bar_time TIMESTAMPTZ NOT NULL,
    action VARCHAR NOT NULL,
    size DOUBLE NOT NULL,
    stop_loss DOUBLE,
    take_profit DOUBLE,
    intent VARCHAR NOT NULL,
    confidence DOUBLE NOT NULL,
    regime VARCHAR,
    risk_decision VARCHAR,            -- approved | resized | rejected | null (hold)
    risk_reason VARCHAR,
    PRIMARY KEY (strategy_id, version, slot, symbol, bar_time)
);

CREATE TABLE IF NOT EXISTS order_intents (
    intent_id VARCHAR PRIMARY KEY,
    scan_id VARCHAR NOT NULL,
    strategy_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    slot VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    bar_time TIMESTAMPTZ NOT NULL,
    action VARCHAR NOT NULL,
    quantity DECIMAL(38, 18) NOT NULL,
    limit_price DECIMAL(38, 18),
    reference_price DECIMAL(38, 18) NOT NULL,
    stop_loss DOUBLE,
    take_profit DOUBLE,
    intent_type VARCHAR NOT NULL,
    confidence DOUBLE NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Write-ahead: a row is 'submitting' before the venue is called (client_order_id derived from
-- the intent id), then updated with the venue's answer; 'unresolved' until a lookup settles it.
CREATE TABLE IF NOT EXISTS orders (
    client_order_id VARCHAR PRIMARY KEY,
    intent_id VARCHAR,
    venue VARCHAR NOT NULL,           -- paper | kraken
    venue_order_id VARCHAR,
    symbol VARCHAR NOT NULL,
    side VARCHAR NOT NULL,
    order_type VARCHAR NOT NULL,
    purpose VARCHAR NOT NULL,         -- entry | exit | stop_loss | take_profit | kill
    quantity DECIMAL(38, 18) NOT NULL,
    limit_price DECIMAL(38, 18),
    stop_price DECIMAL(38, 18),
    state VARCHAR NOT NULL,
    filled_qty DECIMAL(38, 18) NOT NULL,
    avg_price DECIMAL(38, 18),
    fee DECIMAL(38, 18) NOT NULL,
    reason VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS fills (
    fill_id VARCHAR PRIMARY KEY,
    client_order_id VARCHAR NOT NULL,
    venue_order_id VARCHAR,
    symbol VARCHAR NOT NULL,
    side VARCHAR NOT NULL,
    qty DECIMAL(38, 18) NOT NULL,
    price DECIMAL(38, 18) NOT NULL,
    fee DECIMAL(38, 18) NOT NULL,
    fee_currency VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS positions (
    position_id VARCHAR PRIMARY KEY,  -- the entry intent id
    symbol VARCHAR NOT NULL,
    slot VARCHAR NOT NULL,
    strategy_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    intent_type VARCHAR NOT NULL,
    status VARCHAR NOT NULL,          -- open | closed
    quantity DECIMAL(38, 18) NOT NULL,
    entry_price DECIMAL(38, 18) NOT NULL,
    entry_fee DECIMAL(38, 18) NOT NULL,
    entry_time TIMESTAMPTZ NOT NULL,
    stop_loss_price DECIMAL(38, 18),
    take_profit_price DECIMAL(38, 18),
    max_adverse_excursion DOUBLE NOT NULL,
    exit_price DECIMAL(38, 18),
    exit_fee DECIMAL(38, 18),
    exit_time TIMESTAMPTZ,
    exit_reason VARCHAR,              -- signal | stop_loss | take_profit | kill
    realized_pnl DECIMAL(38, 18),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Every cash movement with its cause; balance_after makes the ledger self-checking.
CREATE TABLE IF NOT EXISTS cash_ledger (
    entry_id VARCHAR PRIMARY KEY,     -- deterministic from its cause (fill id + kind)
    ts TIMESTAMPTZ NOT NULL,
    slot VARCHAR NOT NULL,
    amount DECIMAL(38, 18) NOT NULL,  -- + in, - out
    balance_after DECIMAL(38, 18) NOT NULL,
    cause VARCHAR NOT NULL,           -- deposit | buy | sell | fee
    ref VARCHAR,                      -- fill_id / position_id
    symbol VARCHAR
);

CREATE TABLE IF NOT EXISTS portfolio_snapshots (
    ts TIMESTAMPTZ NOT NULL,
    slot VARCHAR NOT NULL,
    equity DECIMAL(38, 18) NOT NULL,
    cash DECIMAL(38, 18) NOT NULL,
    positions_value DECIMAL(38, 18) NOT NULL,
    exposure DOUBLE NOT NULL,
    peak_equity DECIMAL(38, 18) NOT NULL,
    drawdown DOUBLE NOT NULL,
    daily_pnl DECIMAL(38, 18) NOT NULL,
    fees_paid DECIMAL(38, 18) NOT NULL,
    realized_pnl DECIMAL(38, 18) NOT NULL,
    unrealized_pnl DECIMAL(38, 18) NOT NULL,
    PRIMARY KEY (ts, slot)
);

CREATE TABLE IF NOT EXISTS risk_events (
    event_id VARCHAR PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    kind VARCHAR NOT NULL,
    symbol VARCHAR,
    reason VARCHAR NOT NULL,
    details JSON NOT NULL
);

CREATE TABLE IF NOT EXISTS risk_state (
    slot VARCHAR PRIMARY KEY,
    state JSON NOT NULL,              -- domain.risk.RiskState
    updated_at TIMESTAMPTZ NOT NULL
);
