-- 0004: ledger details for the executor (orders per slot, position cost basis) and the paper venue.
ALTER TABLE orders ADD COLUMN slot VARCHAR DEFAULT 'active';
ALTER TABLE positions ADD COLUMN cost_basis DECIMAL(38, 18) DEFAULT 0;   -- quote spent on the open qty
ALTER TABLE positions ADD COLUMN entry_cost DECIMAL(38, 18) DEFAULT 0;  -- quote spent on all buys
ALTER TABLE positions ADD COLUMN sold_qty DECIMAL(38, 18) DEFAULT 0;
ALTER TABLE positions ADD COLUMN exit_value DECIMAL(38, 18) DEFAULT 0;  -- sum of qty x price sold

-- The paper venue's own book (orders, balances, armed stops, fills) per account (= slot).
CREATE TABLE IF NOT EXISTS paper_accounts (
    account VARCHAR PRIMARY KEY,
    state JSON NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Insertion order of cash movements (balance_after chains along it).
ALTER TABLE cash_ledger ADD COLUMN seq BIGINT DEFAULT 0;
