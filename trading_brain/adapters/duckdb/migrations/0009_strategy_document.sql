-- 0009: the weekly reflection's strategy document and the advisor-written analysis versions
-- (issue 12). Both are append-only: a new version is a new row, an old one is never changed.

-- The strategy document, versioned (1, 2, ...); the newest is the one the advisor reads.
CREATE TABLE IF NOT EXISTS strategy_documents (
    version INTEGER PRIMARY KEY,
    week VARCHAR NOT NULL UNIQUE,         -- ISO week of the reflection, e.g. 2026-W40
    cycle_id VARCHAR,
    author VARCHAR NOT NULL,              -- offline | anthropic
    content VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Analysis modules written by the advisor's coder (update_market_analysis /
-- update_trade_analysis), after the static gate; the file is <home>/var/analyses/<id>/v<N>.py.
CREATE TABLE IF NOT EXISTS analysis_versions (
    analysis_id VARCHAR NOT NULL,         -- market_analysis | trade_performance
    version INTEGER NOT NULL,
    sha256 VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    cycle_id VARCHAR,
    reason VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (analysis_id, version)
);
