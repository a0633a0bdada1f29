-- 0008: the nightly evolution loop (DESIGN §8, issue 11): its inputs, decisions and grades.
-- Every table is keyed so that a cycle killed at any step and re-run writes no second row
-- (see adapters/duckdb/evolution_tables.py for the write rules of each table).

-- Truth benchmarks, LONG format: one row per (as_of, slot, scope, subject, metric). Long because
-- the metric set grows (rejections by reason are open-ended: "rejections:<reason>") and a
-- prediction grades one (subject, metric) series. scope: slot (subject '') | version
-- (subject 'family@N') | symbol (subject 'BTC/USD'). value NULL = undefined (e.g. a Sharpe of
-- fewer than 2 daily returns); text carries a label (strategy_version: 'ema_cross@1').
-- Definitions of every metric: adapters/duckdb/benchmark_sql.py.
CREATE TABLE IF NOT EXISTS truth_benchmarks (
    as_of TIMESTAMPTZ NOT NULL,           -- the ledger cut-off the values describe
    slot VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,               -- slot | version | symbol
    subject VARCHAR NOT NULL,             -- '' | family@N | symbol
    metric VARCHAR NOT NULL,
    value DOUBLE,
    text VARCHAR,
    since TIMESTAMPTZ,                    -- window start (NULL: all history)
    cycle_id VARCHAR,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (as_of, slot, scope, subject, metric)
);

-- Reports of the analysis modules (analyses/<id>/v<N>.py); a crash or timeout is a report too.
CREATE TABLE IF NOT EXISTS analysis_reports (
    analysis_id VARCHAR NOT NULL,         -- market_analysis | trade_performance
    version INTEGER NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    cycle_id VARCHAR,
    status VARCHAR NOT NULL,              -- ok | error | timeout
    report JSON,                          -- the module's dict (NULL unless ok)
    error VARCHAR,                        -- what went wrong (NULL when ok)
    duration_ms DOUBLE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (analysis_id, version, as_of)
);

-- One row per nightly cycle; cycle_id is deterministic from the night's date and the home.
CREATE TABLE IF NOT EXISTS evolution_cycles (
    cycle_id VARCHAR PRIMARY KEY,         -- cycle-YYYY-MM-DD-<sha256(home)[:8]>
    night DATE NOT NULL,
    home VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,              -- running | done | failed | rejected
    advisor VARCHAR NOT NULL,             -- offline | anthropic
    decision JSON,                        -- the validated Decision, or NULL
    error VARCHAR,                        -- why a cycle failed / the advisor output was rejected
    tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL DEFAULT 0
);

-- The thought spool: every prompt and reply of a cycle, in order per step.
CREATE TABLE IF NOT EXISTS ai_thoughts (
    cycle_id VARCHAR NOT NULL,
    step VARCHAR NOT NULL,                -- context | decision | candidate | review ...
    seq INTEGER NOT NULL,
    role VARCHAR NOT NULL,                -- system | user | assistant | tool | host
    content VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cycle_id, step, seq)
);

-- Institutional memory: what a cycle learnt (id = cycle_id:n).
CREATE TABLE IF NOT EXISTS observations (
    observation_id VARCHAR PRIMARY KEY,
    cycle_id VARCHAR NOT NULL,
    subject VARCHAR,                      -- active | family@N | NULL (general)
    content VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Falsifiable predictions, graded later from truth_benchmarks (id = cycle_id:n).
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id VARCHAR PRIMARY KEY,
    cycle_id VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,             -- active | family@N
    claim VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    comparator VARCHAR NOT NULL,          -- > | >= | < | <=
    threshold DOUBLE NOT NULL,
    deadline TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,              -- open | confirmed | refuted | partial | inconclusive
    graded_at TIMESTAMPTZ,
    graded_value DOUBLE,
    grade_reason VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);

-- Shadow paper tests of candidates (id = family@N:slot).
CREATE TABLE IF NOT EXISTS paper_tests (
    test_id VARCHAR PRIMARY KEY,
    strategy_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    slot VARCHAR NOT NULL,                -- candidate_1 .. candidate_3
    tier INTEGER NOT NULL,                -- 1 tweak | 2 restructure | 3 overhaul
    started_at TIMESTAMPTZ NOT NULL,
    min_until TIMESTAMPTZ NOT NULL,
    min_trades INTEGER NOT NULL,
    status VARCHAR NOT NULL,              -- running | passed | failed | inconclusive | cancelled
    finished_at TIMESTAMPTZ,
    reason VARCHAR,
    metrics JSON,
    cycle_id VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Every promotion graded later against the incumbent it replaced, on the bars after it.
CREATE TABLE IF NOT EXISTS promotion_reviews (
    promotion_id VARCHAR PRIMARY KEY,
    strategy_id VARCHAR NOT NULL,         -- promoted
    version INTEGER NOT NULL,
    incumbent_strategy_id VARCHAR NOT NULL,
    incumbent_version INTEGER NOT NULL,
    promoted_at TIMESTAMPTZ NOT NULL,
    reviewed_at TIMESTAMPTZ,
    bars_start TIMESTAMPTZ,
    bars_end TIMESTAMPTZ,
    bars INTEGER,
    promoted_return DOUBLE,
    incumbent_return DOUBLE,
    edge DOUBLE,                          -- promoted_return - incumbent_return
    verdict VARCHAR NOT NULL,             -- pending | won | lost | tie
    details JSON
);

-- Every variant ever tried per family: N of the deflated Sharpe ratio. A variant is its params
-- (kind 'params') or its source (kind 'source') hash; trying it again adds nothing.
CREATE TABLE IF NOT EXISTS variant_trials (
    family VARCHAR NOT NULL,
    variant_hash VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,                -- params | source
    cycle_id VARCHAR,
    tried_at TIMESTAMPTZ NOT NULL,
    params JSON,
    PRIMARY KEY (family, variant_hash)
);

-- Tokens and cost of every advisor call (call_id from the API or the cycle + step + seq).
CREATE TABLE IF NOT EXISTS token_usage (
    call_id VARCHAR PRIMARY KEY,
    cycle_id VARCHAR,
    role VARCHAR NOT NULL,                -- analyst | reviewer | coder ...
    model VARCHAR NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- strategy_versions.status stays a VARCHAR: DuckDB 2.0 cannot add a CHECK constraint with ALTER
-- TABLE (and rebuilding the table would be a copy under a lock). Its vocabulary is now
-- registered | active | candidate | retired | cancelled | rolled_back | rejected; the store
-- refuses other values (evolution_tables.VERSION_STATUSES). Why and when the status last changed:
ALTER TABLE strategy_versions ADD COLUMN status_reason VARCHAR;
ALTER TABLE strategy_versions ADD COLUMN status_changed_at TIMESTAMPTZ;
-- deployments_log.action gains promote | auto_rollback beside deploy | rollback (no change).
